/*
 * Tests for src/dns: the name and RDATA parsers byte by byte, then real
 * lookups through libunbound against tests/dns_server.py on 127.0.0.1
 * (MX order and shuffling, RFC 5321 5.1 implicit MX, RFC 7505 null MX,
 * A/AAAA, TLSA, failures, timeouts, cancel and free with queries pending,
 * and DNSSEC: secure, bogus and insecure answers from a signed zone).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"
#include "unit.h"

/* A running tests/dns_server.py. */
struct server {
	pid_t pid;
	unsigned port;
	char zone_path[PATH_MAX], log_path[PATH_MAX];
	char anchor_path[PATH_MAX];	/* --sign only */
};

static struct event_base *base;
static char tmpdir[] = "/tmp/test_dns.XXXXXX";
static struct server srv = { .pid = -1 }, signed_srv = { .pid = -1 };
static struct dns_resolver *res;
static bool in_call;		/* a lookup call is running */
static int cb_inside_call;	/* callbacks that ran inside one */

static const char zone[] =
    "example.test MX 10 mx.example.test\n"
    "example.test MX 20 mx2.example.test\n"
    "mx.example.test A 127.0.0.2\n"
    "mx.example.test A 127.0.0.3\n"
    "mx.example.test AAAA ::1\n"
    "mx.example.test AAAA 2001:db8::2\n"
    "mx2.example.test A 127.0.0.4\n"
    "only4.test A 127.0.0.5\n"
    "only6.test AAAA 2001:db8::6\n"
    "order.test MX 20 b.order.test\n"
    "order.test MX 10 a.order.test\n"
    "order.test MX 30 c.order.test\n"
    "shuf.test MX 20 m1.shuf.test\n"
    "shuf.test MX 20 m2.shuf.test\n"
    "shuf.test MX 5 first.shuf.test\n"
    "shuf.test MX 20 m3.shuf.test\n"
    "shuf.test MX 90 last.shuf.test\n"
    "implicit.test A 127.0.0.6\n"
    "implicit6.test AAAA 2001:db8::7\n"
    "nodata.test TXT hello\n"
    "null.test MX 0 .\n"
    "null10.test MX 10 .\n"
    "mixed.test MX 0 .\n"
    "mixed.test MX 10 mx.mixed.test\n"
    "iplit.test MX 10 192.0.2.1\n"
    "iplit.test MX 20 mx.iplit.test\n"
    "onlyip.test MX 10 192.0.2.1\n"
    "onlyip.test A 127.0.0.8\n"
    "dup.test MX 20 a.dup.test\n"
    "dup.test MX 10 A.dup.test\n"
    "dup.test MX 30 b.dup.test\n"
    "alias.test CNAME example.test\n"
    "broken.test SERVFAIL\n"
    "refused.test REFUSED\n"
    "half.test A 127.0.0.9\n"
    "half.test AAAA 2001:db8::9\n"
    "half.test SERVFAIL AAAA\n"
    "halfdrop.test A 127.0.0.10\n"
    "halfdrop.test DROP AAAA\n"
    "black.test DROP\n"
    "slow.test DELAY 0.3\n"
    "slow.test MX 10 mx.example.test\n"
    "slow.test A 127.0.0.11\n"
    "slow.test AAAA 2001:db8::11\n"
    "_25._tcp.slow.test TLSA 3 1 1 "
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
    "_25._tcp.slow.test DELAY 0.3\n"
    "_25._tcp.mx.example.test TLSA 3 1 1 "
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
    "_25._tcp.mx.example.test TLSA 2 0 2 "
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
    "_25._tcp.mx.example.test TLSA 3 0 0 0102030405\n"
    "_25._tcp.mx.example.test TLSA 3 1 1 0011\n"
    "_25._tcp.mx.example.test TLSA 3 0 0 "
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    "00\n"
    "_465._tcp.mx.example.test TLSA 3 1 1 0011\n";

/* Helpers: a DNS server on 127.0.0.1, the loop, results. */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * tests/dns_server.py, found from this file's path as the compiler saw
 * it: absolute, or relative to the build directory, which is two levels
 * above this program (BUILD/tests/unit/test_dns).
 */
static int
find_server_script(char *out, size_t outsize)
{
	char exe[PATH_MAX], src[PATH_MAX * 2];
	ssize_t n;
	char *slash;
	int i;

	if (__FILE__[0] == '/') {
		snprintf(src, sizeof(src), "%s", __FILE__);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return -1;
		exe[n] = '\0';
		for (i = 0; i < 3; i++) {	/* test_dns, unit, tests */
			if ((slash = strrchr(exe, '/')) == NULL)
				return -1;
			*slash = '\0';
		}
		snprintf(src, sizeof(src), "%s/%s", exe, __FILE__);
	}
	for (i = 0; i < 2; i++) {	/* test_dns.c, unit */
		if ((slash = strrchr(src, '/')) == NULL)
			return -1;
		*slash = '\0';
	}
	if ((size_t)snprintf(out, outsize, "%s/dns_server.py", src) >=
	    outsize || access(out, R_OK) == -1)
		return -1;
	return 0;
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/*
 * Starts tests/dns_server.py on a free 127.0.0.1 port with zone text, in
 * tmpdir under files named for name; sign_apex non-NULL signs the zone.
 */
static int
start_server(struct server *sv, const char *name, const char *text,
    const char *sign_apex)
{
	char script[PATH_MAX], buf[256], *p;
	size_t len = 0;
	int fds[2];
	uint64_t deadline;
	struct pollfd pfd;
	ssize_t n;

	if (find_server_script(script, sizeof(script)) == -1) {
		fprintf(stderr, "tests/dns_server.py not found from %s\n",
		    __FILE__);
		return -1;
	}
	snprintf(sv->zone_path, sizeof(sv->zone_path), "%s/%s.zone", tmpdir,
	    name);
	snprintf(sv->log_path, sizeof(sv->log_path), "%s/%s.queries",
	    tmpdir, name);
	snprintf(sv->anchor_path, sizeof(sv->anchor_path), "%s/%s.anchor",
	    tmpdir, name);
	if (write_file(sv->zone_path, text) == -1 ||
	    write_file(sv->log_path, "") == -1 || pipe(fds) == -1)
		return -1;
	sv->pid = fork();
	if (sv->pid == -1)
		return -1;
	if (sv->pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		if (sign_apex != NULL)
			execl("/usr/bin/python3", "python3", script,
			    "--listen", "127.0.0.1", "--port", "0", "--zone",
			    sv->zone_path, "--log", sv->log_path, "--sign",
			    sign_apex, "--anchor-out", sv->anchor_path,
			    (char *)NULL);
		else
			execl("/usr/bin/python3", "python3", script,
			    "--listen", "127.0.0.1", "--port", "0", "--zone",
			    sv->zone_path, "--log", sv->log_path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	deadline = now_ms() + 15000;
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (now_ms() < deadline && len < sizeof(buf) - 1) {
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "ready\n") != NULL)
			break;
	}
	close(fds[0]);
	buf[len] = '\0';
	if (strstr(buf, "ready\n") == NULL ||
	    (p = strstr(buf, "port ")) == NULL ||
	    (sv->port = (unsigned)strtoul(p + 5, NULL, 10)) == 0) {
		fprintf(stderr, "dns_server.py did not start: \"%s\"\n", buf);
		return -1;
	}
	return 0;
}

static void
stop_server(struct server *sv)
{
	int status, i;

	if (sv->pid <= 0)
		return;
	kill(sv->pid, SIGTERM);
	for (i = 0; i < 50; i++) {
		if (waitpid(sv->pid, &status, WNOHANG) == sv->pid)
			break;
		usleep(100000);
	}
	if (i == 50) {
		kill(sv->pid, SIGKILL);
		waitpid(sv->pid, &status, 0);
	}
	sv->pid = -1;
	unlink(sv->zone_path);
	unlink(sv->log_path);
	unlink(sv->anchor_path);
}

static struct dns_resolver *
resolver_for(unsigned port)
{
	char fwd[64], err[256];
	struct dns_resolver *r;

	snprintf(fwd, sizeof(fwd), "127.0.0.1@%u", port);
	r = dns_resolver_new(base, fwd, NULL, err, sizeof(err));
	if (r == NULL)
		fprintf(stderr, "dns_resolver_new: %s\n", err);
	return r;
}

/* Runs the loop until *count reaches want or ms pass. */
static void
run_until(const int *count, int want, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;
	struct timeval tv = { 0, 20000 };

	while ((count == NULL || *count < want) && now_ms() < deadline) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

struct mx_wait {
	int calls;
	struct dns_mx_result r;
};

struct addr_wait {
	int calls;
	struct dns_addr_result r;
};

struct tlsa_wait {
	int calls;
	struct dns_tlsa_result r;
};

static void
mx_cb(void *arg, const struct dns_mx_result *r)
{
	struct mx_wait *w = arg;

	if (in_call)
		cb_inside_call++;
	w->calls++;
	w->r = *r;
}

static void
addr_cb(void *arg, const struct dns_addr_result *r)
{
	struct addr_wait *w = arg;

	if (in_call)
		cb_inside_call++;
	w->calls++;
	w->r = *r;
}

static void
tlsa_cb(void *arg, const struct dns_tlsa_result *r)
{
	struct tlsa_wait *w = arg;

	if (in_call)
		cb_inside_call++;
	w->calls++;
	w->r = *r;
}

static struct dns_mx_result
mx_of(struct dns_resolver *r, const char *domain)
{
	struct mx_wait w;
	uint64_t h;

	memset(&w, 0, sizeof(w));
	w.r.status = (enum dns_status)-1;
	in_call = true;
	h = dns_lookup_mx(r, domain, mx_cb, &w);
	in_call = false;
	CHECK(h != 0);
	run_until(&w.calls, 1, 10000);
	CHECK(w.calls == 1);
	run_until(NULL, 0, 30);	/* a second callback would show here */
	CHECK(w.calls == 1);
	return w.r;
}

static struct dns_addr_result
addrs_of(struct dns_resolver *r, const char *host, unsigned port)
{
	struct addr_wait w;
	uint64_t h;

	memset(&w, 0, sizeof(w));
	w.r.status = (enum dns_status)-1;
	in_call = true;
	h = dns_lookup_addrs(r, host, port, addr_cb, &w);
	in_call = false;
	CHECK(h != 0);
	run_until(&w.calls, 1, 10000);
	CHECK(w.calls == 1);
	run_until(NULL, 0, 30);
	CHECK(w.calls == 1);
	return w.r;
}

static struct dns_tlsa_result
tlsa_of(struct dns_resolver *r, const char *host, unsigned port)
{
	struct tlsa_wait w;
	uint64_t h;

	memset(&w, 0, sizeof(w));
	w.r.status = (enum dns_status)-1;
	in_call = true;
	h = dns_lookup_tlsa(r, host, port, tlsa_cb, &w);
	in_call = false;
	CHECK(h != 0);
	run_until(&w.calls, 1, 10000);
	CHECK(w.calls == 1);
	run_until(NULL, 0, 30);
	CHECK(w.calls == 1);
	return w.r;
}

/* The queries the server saw so far (its --log file). */
static char *
query_log(void)
{
	static char buf[1 << 16];
	FILE *f = fopen(srv.log_path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* Pure parsers. */

static void
test_status_names(void)
{
	CHECK_STR(dns_status_name(DNS_OK), "ok");
	CHECK_STR(dns_status_name(DNS_NXDOMAIN), "nxdomain");
	CHECK_STR(dns_status_name(DNS_NODATA), "nodata");
	CHECK_STR(dns_status_name(DNS_NULL_MX), "null-mx");
	CHECK_STR(dns_status_name(DNS_TEMPFAIL), "tempfail");
	CHECK_STR(dns_status_name(DNS_BOGUS), "bogus");
	CHECK_STR(dns_status_name((enum dns_status)99), "unknown");
}

static int
norm(const char *in, char *out)
{
	return dns_name_normalize(in, out, DNS_NAME_MAX + 1);
}

static void
test_name_normalize(void)
{
	char out[DNS_NAME_MAX + 1], name[400], label[70];
	size_t i;

	CHECK(norm("Example.TEST", out) == 0);
	CHECK_STR(out, "example.test");
	CHECK(norm("mx-1.example.test.", out) == 0);
	CHECK_STR(out, "mx-1.example.test");
	CHECK(norm("localhost", out) == 0);
	CHECK(norm("123.example", out) == 0);
	CHECK(norm("xn--bcher-kva.example", out) == 0);
	CHECK(norm("a", out) == 0);

	CHECK(norm("", out) == -1);
	CHECK(norm(".", out) == -1);
	CHECK(norm("..", out) == -1);
	CHECK(norm(".example.test", out) == -1);
	CHECK(norm("a..b", out) == -1);
	CHECK(norm("example.test..", out) == -1);
	CHECK(norm("-a.test", out) == -1);
	CHECK(norm("a-.test", out) == -1);
	CHECK(norm("a_b.test", out) == -1);
	CHECK(norm("a b.test", out) == -1);
	CHECK(norm("a\tb.test", out) == -1);
	CHECK(norm("a\r\n.test", out) == -1);
	CHECK(norm("\xc3\xa9.test", out) == -1);
	CHECK(norm("[127.0.0.1]", out) == -1);
	CHECK(norm("192.0.2.1", out) == -1);
	CHECK(norm("192.0.2.1.", out) == -1);
	CHECK(norm("example.123", out) == -1);
	CHECK(norm("a@b.test", out) == -1);
	CHECK(norm("a/b.test", out) == -1);
	CHECK(norm(NULL, out) == -1);
	CHECK(dns_name_normalize("a.test", out, DNS_NAME_MAX) == -1);

	/* A label of 63 octets, not 64. */
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(name, sizeof(name), "%s.test", label);
	CHECK(norm(name, out) == 0);
	CHECK_STR(out, name);
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(name, sizeof(name), "%s.test", label);
	CHECK(norm(name, out) == -1);

	/* 253 octets, with and without the trailing dot, not 254. */
	memset(name, 0, sizeof(name));
	for (i = 0; i < 253; i++)
		name[i] = (i % 2 == 1) ? '.' : 'a';
	CHECK(strlen(name) == 253);
	CHECK(norm(name, out) == 0);
	CHECK_STR(out, name);
	name[253] = '.';
	CHECK(norm(name, out) == 0);
	name[253] = 'a';
	name[252] = 'a';	/* "...a.aa": 254 octets */
	CHECK(norm(name, out) == -1);
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK(norm(name, out) == -1);
}

/* Builds MX RDATA: preference, then the dotted name in wire format. */
static size_t
mx_rdata(unsigned char *buf, unsigned pref, const char *name)
{
	size_t n = 2, start;
	const char *p = name, *dot;

	buf[0] = (unsigned char)(pref >> 8);
	buf[1] = (unsigned char)pref;
	while (*p != '\0') {
		dot = strchr(p, '.');
		start = dot ? (size_t)(dot - p) : strlen(p);
		buf[n++] = (unsigned char)start;
		memcpy(buf + n, p, start);
		n += start;
		p += start;
		if (*p == '.')
			p++;
	}
	buf[n++] = 0;
	return n;
}

static void
test_mx_rdata(void)
{
	unsigned char buf[600];
	struct dns_mx mx;
	char name[300];
	size_t n, i;

	n = mx_rdata(buf, 10, "MX.Example.test");
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == 0);
	CHECK_STR(mx.host, "mx.example.test");
	CHECK(mx.preference == 10);
	/* Every shorter prefix is malformed; one byte more too. */
	for (i = 0; i < n; i++)
		CHECK(dns_mx_rdata_parse(buf, i, &mx) == -1);
	buf[n] = 0;
	CHECK(dns_mx_rdata_parse(buf, n + 1, &mx) == -1);

	n = mx_rdata(buf, 65535, "a");
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == 0);
	CHECK(mx.preference == 65535);

	/* "." */
	buf[0] = 0;
	buf[1] = 0;
	buf[2] = 0;
	CHECK(dns_mx_rdata_parse(buf, 3, &mx) == 1);
	CHECK_STR(mx.host, "");
	buf[1] = 10;
	CHECK(dns_mx_rdata_parse(buf, 3, &mx) == 1);
	CHECK(mx.preference == 10);

	/* A compression pointer cannot be followed in RDATA alone. */
	n = mx_rdata(buf, 10, "mx");
	buf[n - 1] = 0xc0;
	buf[n] = 0x0c;
	CHECK(dns_mx_rdata_parse(buf, n + 1, &mx) == -1);
	buf[2] = 0xc0;
	buf[3] = 0x02;
	CHECK(dns_mx_rdata_parse(buf, 4, &mx) == -1);
	/* Extended label types 0x40 and 0x80. */
	buf[2] = 0x41;
	CHECK(dns_mx_rdata_parse(buf, 4, &mx) == -1);
	buf[2] = 0x81;
	CHECK(dns_mx_rdata_parse(buf, 4, &mx) == -1);
	/* A length past the end. */
	buf[2] = 5;
	memcpy(buf + 3, "ab", 2);
	buf[5] = 0;
	CHECK(dns_mx_rdata_parse(buf, 6, &mx) == -1);

	/* Labels with a dot, a NUL, a space, an underscore, high bytes. */
	n = mx_rdata(buf, 10, "ab.test");
	buf[4] = '.';
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);
	buf[4] = '\0';
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);
	buf[4] = ' ';
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);
	buf[4] = '_';
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);
	buf[4] = 0xff;
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);
	buf[4] = 'b';
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == 0);

	/* IP literals and other bad host names. */
	n = mx_rdata(buf, 10, "192.0.2.1");
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);
	n = mx_rdata(buf, 10, "-mx.test");
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);

	/* 255 octets in wire format (253 as text) is the most; 256 not. */
	memset(name, 0, sizeof(name));
	for (i = 0; i < 253; i++)
		name[i] = (i % 2 == 1) ? '.' : 'a';
	n = mx_rdata(buf, 1, name);
	CHECK(n == 2 + 255);
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == 0);
	CHECK_STR(mx.host, name);
	name[252] = 'a';
	name[253] = 'a';	/* "...a.aaa": 256 in wire format */
	n = mx_rdata(buf, 1, name);
	CHECK(n == 2 + 256);
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);
	/* 64-octet label. */
	memset(name, 'a', 64);
	name[64] = '\0';
	n = mx_rdata(buf, 1, name);
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == -1);
	name[63] = '\0';
	n = mx_rdata(buf, 1, name);
	CHECK(dns_mx_rdata_parse(buf, n, &mx) == 0);

	CHECK(dns_mx_rdata_parse(NULL, 0, &mx) == -1);
}

static void
test_tlsa_rdata(void)
{
	unsigned char buf[200];
	struct dns_tlsa t;
	size_t i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)i;
	buf[0] = 3;
	buf[1] = 1;
	buf[2] = 1;
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 32, &t) == 0);
	CHECK(t.usage == 3 && t.selector == 1 && t.mtype == 1);
	CHECK(t.data_len == 32);
	CHECK(memcmp(t.data, buf + 3, 32) == 0);
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 31, &t) == -1);
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 33, &t) == -1);

	buf[2] = 2;
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 64, &t) == 0);
	CHECK(t.data_len == 64 && t.mtype == 2);
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 63, &t) == -1);
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 65, &t) == -1);

	buf[2] = 0;
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 64, &t) == 0);
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 65, &t) == -1);
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 1, &t) == 0);
	CHECK(t.data_len == 1);
	CHECK(dns_tlsa_rdata_parse(buf, 3, &t) == -1);
	CHECK(dns_tlsa_rdata_parse(buf, 2, &t) == -1);
	CHECK(dns_tlsa_rdata_parse(buf, 0, &t) == -1);

	/* Unknown parameters are passed on for the caller to judge. */
	buf[0] = 7;
	buf[1] = 9;
	buf[2] = 200;
	CHECK(dns_tlsa_rdata_parse(buf, 3 + 10, &t) == 0);
	CHECK(t.usage == 7 && t.selector == 9 && t.mtype == 200);
	CHECK(dns_tlsa_rdata_parse(NULL, 0, &t) == -1);
}

static void
test_resolver_setup(void)
{
	const char *bad[] = { "localhost", "127.0.0.1@0", "127.0.0.1@65536",
	    "127.0.0.1@", "127.0.0.1@+53", "127.0.0.1@53x", "127.0.0.1#x",
	    "[::1]@53", "127.0.0.1 ", " 127.0.0.1", "1.2.3", "@53",
	    "127.0.0.1@053", NULL };
	const char *good[] = { "127.0.0.1", "127.0.0.1@5353", "::1",
	    "::1@65535", "127.0.0.1@1", NULL };
	char err[256], ta[PATH_MAX];
	struct dns_resolver *r;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		err[0] = '\0';
		r = dns_resolver_new(base, bad[i], NULL, err, sizeof(err));
		CHECK(r == NULL);
		CHECK(err[0] != '\0');
		dns_resolver_free(&r);
	}
	for (i = 0; good[i] != NULL; i++) {
		r = dns_resolver_new(base, good[i], NULL, err, sizeof(err));
		CHECK(r != NULL);
		dns_resolver_free(&r);
		CHECK(r == NULL);
	}
	/* The system's resolver (resolv.conf, hosts), created only. */
	r = dns_resolver_new(base, NULL, NULL, err, sizeof(err));
	CHECK(r != NULL);
	dns_resolver_free(&r);
	r = dns_resolver_new(base, "", NULL, err, sizeof(err));
	CHECK(r != NULL);
	dns_resolver_free(&r);

	/* A missing or unparsable trust anchor is refused at once. */
	r = dns_resolver_new(base, "127.0.0.1", "/nonexistent/root.key", err,
	    sizeof(err));
	CHECK(r == NULL);
	CHECK(strstr(err, "/nonexistent/root.key") != NULL);
	snprintf(ta, sizeof(ta), "%s/bad.key", tmpdir);
	CHECK(write_file(ta, "this is not a trust anchor\n") == 0);
	r = dns_resolver_new(base, "127.0.0.1", ta, err, sizeof(err));
	CHECK(r == NULL);
	unlink(ta);
}

/* Lookups against the test server. */

static void
test_mx_order(void)
{
	struct dns_mx_result m;

	m = mx_of(res, "order.test");
	CHECK(m.status == DNS_OK);
	CHECK(!m.implicit);
	CHECK(!m.secure);
	CHECK(m.n_hosts == 3);
	CHECK_STR(m.hosts[0].host, "a.order.test");
	CHECK(m.hosts[0].preference == 10);
	CHECK_STR(m.hosts[1].host, "b.order.test");
	CHECK(m.hosts[1].preference == 20);
	CHECK_STR(m.hosts[2].host, "c.order.test");
	CHECK(m.hosts[2].preference == 30);

	/* Case and trailing dot do not matter; answers are lowercased. */
	m = mx_of(res, "EXAMPLE.Test.");
	CHECK(m.status == DNS_OK);
	CHECK(m.n_hosts == 2);
	CHECK_STR(m.hosts[0].host, "mx.example.test");
	CHECK_STR(m.hosts[1].host, "mx2.example.test");

	/* Through a CNAME. */
	m = mx_of(res, "alias.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.n_hosts == 2);
	CHECK_STR(m.hosts[0].host, "mx.example.test");
}

static void
test_mx_shuffle(void)
{
	struct dns_mx_result m;
	bool seen[3][3][3];
	int i, distinct = 0, a, b, c;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < 300 && distinct < 6; i++) {
		m = mx_of(res, "shuf.test");
		CHECK(m.status == DNS_OK);
		if (m.n_hosts != 5) {
			CHECK(m.n_hosts == 5);
			return;
		}
		CHECK_STR(m.hosts[0].host, "first.shuf.test");
		CHECK_STR(m.hosts[4].host, "last.shuf.test");
		a = m.hosts[1].host[1] - '1';
		b = m.hosts[2].host[1] - '1';
		c = m.hosts[3].host[1] - '1';
		CHECK(a >= 0 && a < 3 && b >= 0 && b < 3 && c >= 0 && c < 3);
		CHECK(a != b && b != c && a != c);
		CHECK(m.hosts[1].preference == 20 &&
		    m.hosts[3].preference == 20);
		if (a < 0 || a > 2 || b < 0 || b > 2 || c < 0 || c > 2)
			return;
		if (!seen[a][b][c]) {
			seen[a][b][c] = true;
			distinct++;
		}
	}
	CHECK(distinct == 6);	/* all orders of the three seen */
}

static void
test_mx_implicit(void)
{
	struct dns_mx_result m;

	m = mx_of(res, "implicit.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.implicit);
	CHECK(m.n_hosts == 1);
	CHECK_STR(m.hosts[0].host, "implicit.test");
	CHECK(m.hosts[0].preference == 0);

	m = mx_of(res, "Implicit6.TEST");
	CHECK(m.status == DNS_OK);
	CHECK(m.implicit);
	CHECK(m.n_hosts == 1);
	CHECK_STR(m.hosts[0].host, "implicit6.test");

	/* The name exists, no MX, no address: NODATA. */
	m = mx_of(res, "nodata.test");
	CHECK(m.status == DNS_NODATA);
	CHECK(!m.implicit);
	CHECK(m.n_hosts == 0);

	m = mx_of(res, "nope.test");
	CHECK(m.status == DNS_NXDOMAIN);
	CHECK(m.n_hosts == 0);
	m = mx_of(res, "deeper.nope.test");
	CHECK(m.status == DNS_NXDOMAIN);
}

static void
test_mx_null_and_dropped(void)
{
	struct dns_mx_result m;

	m = mx_of(res, "null.test");
	CHECK(m.status == DNS_NULL_MX);
	CHECK(m.n_hosts == 0);
	CHECK(!m.implicit);
	m = mx_of(res, "null10.test");
	CHECK(m.status == DNS_NULL_MX);

	/* "." among others is dropped. */
	m = mx_of(res, "mixed.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.n_hosts == 1);
	CHECK_STR(m.hosts[0].host, "mx.mixed.test");

	/* IP literals are dropped; with nothing left, NODATA, and the
	 * domain's own address is not used (MX records exist). */
	m = mx_of(res, "iplit.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.n_hosts == 1);
	CHECK_STR(m.hosts[0].host, "mx.iplit.test");
	m = mx_of(res, "onlyip.test");
	CHECK(m.status == DNS_NODATA);
	CHECK(!m.implicit);
	CHECK(m.n_hosts == 0);

	/* A host named twice is kept once, at its best preference. */
	m = mx_of(res, "dup.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.n_hosts == 2);
	CHECK_STR(m.hosts[0].host, "a.dup.test");
	CHECK(m.hosts[0].preference == 10);
	CHECK_STR(m.hosts[1].host, "b.dup.test");
}

static void
test_mx_many(void)
{
	struct dns_mx_result m;
	char line[200], *z, path[PATH_MAX + 8];
	size_t i, len = strlen(zone);
	FILE *f;
	int ok = 1;

	/* 40 MX records with long names: over 1232 octets, so the answer
	 * comes truncated over UDP and again over TCP. */
	z = malloc(len + 40 * sizeof(line));
	CHECK(z != NULL);
	if (z == NULL)
		return;
	memcpy(z, zone, len + 1);
	for (i = 0; i < 40; i++) {
		snprintf(line, sizeof(line), "many.test MX %zu "
		    "a-rather-long-mail-exchanger-name-%02zu.many.test\n",
		    39 - i, i);
		strcat(z, line);
	}
	snprintf(path, sizeof(path), "%s.new", srv.zone_path);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(z, f);
		fclose(f);
		CHECK(rename(path, srv.zone_path) == 0);
		kill(srv.pid, SIGHUP);
		usleep(500000);	/* the server polls its signals */
	}
	free(z);
	m = mx_of(res, "many.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.n_hosts == DNS_MX_MAX);
	for (i = 0; i < m.n_hosts && i < DNS_MX_MAX; i++) {
		snprintf(line, sizeof(line),
		    "a-rather-long-mail-exchanger-name-%02zu.many.test",
		    39 - i);
		if (m.hosts[i].preference != i ||
		    strcmp(m.hosts[i].host, line) != 0)
			ok = 0;
	}
	CHECK(ok);
	CHECK(strstr(query_log(), "many.test MX tcp\n") != NULL);
}

static bool
has_addr(const struct dns_addr_result *a, size_t from, size_t to,
    const char *text, unsigned port)
{
	unsigned char want[16];
	size_t i;

	for (i = from; i < to && i < a->n_addrs; i++) {
		const struct sockaddr_storage *ss = &a->addrs[i];

		if (ss->ss_family == AF_INET6 &&
		    inet_pton(AF_INET6, text, want) == 1) {
			const struct sockaddr_in6 *s6 = (const void *)ss;

			if (a->lens[i] == sizeof(*s6) &&
			    ntohs(s6->sin6_port) == port &&
			    memcmp(&s6->sin6_addr, want, 16) == 0)
				return true;
		}
		if (ss->ss_family == AF_INET &&
		    inet_pton(AF_INET, text, want) == 1) {
			const struct sockaddr_in *s4 = (const void *)ss;

			if (a->lens[i] == sizeof(*s4) &&
			    ntohs(s4->sin_port) == port &&
			    memcmp(&s4->sin_addr, want, 4) == 0)
				return true;
		}
	}
	return false;
}

static void
test_addrs(void)
{
	struct dns_addr_result a;

	a = addrs_of(res, "mx.example.test", 25);
	CHECK(a.status == DNS_OK);
	CHECK(!a.secure);
	CHECK(a.n_addrs == 4);
	/* AAAA first, then A. */
	CHECK(has_addr(&a, 0, 2, "::1", 25));
	CHECK(has_addr(&a, 0, 2, "2001:db8::2", 25));
	CHECK(has_addr(&a, 2, 4, "127.0.0.2", 25));
	CHECK(has_addr(&a, 2, 4, "127.0.0.3", 25));

	a = addrs_of(res, "only4.test", 587);
	CHECK(a.status == DNS_OK);
	CHECK(a.n_addrs == 1);
	CHECK(has_addr(&a, 0, 1, "127.0.0.5", 587));
	a = addrs_of(res, "only6.test", 25);
	CHECK(a.status == DNS_OK);
	CHECK(a.n_addrs == 1);
	CHECK(has_addr(&a, 0, 1, "2001:db8::6", 25));

	a = addrs_of(res, "nope.test", 25);
	CHECK(a.status == DNS_NXDOMAIN);
	CHECK(a.n_addrs == 0);
	a = addrs_of(res, "example.test", 25);
	CHECK(a.status == DNS_NODATA);
	CHECK(a.n_addrs == 0);

	/* AAAA fails, A answers: the A answer is used. */
	a = addrs_of(res, "half.test", 25);
	CHECK(a.status == DNS_OK);
	CHECK(a.n_addrs == 1);
	CHECK(has_addr(&a, 0, 1, "127.0.0.9", 25));

	/* Numeric addresses come back without a query. */
	a = addrs_of(res, "192.0.2.7", 2525);
	CHECK(a.status == DNS_OK);
	CHECK(a.n_addrs == 1);
	CHECK(has_addr(&a, 0, 1, "192.0.2.7", 2525));
	a = addrs_of(res, "2001:db8::25", 25);
	CHECK(a.status == DNS_OK);
	CHECK(a.n_addrs == 1);
	CHECK(has_addr(&a, 0, 1, "2001:db8::25", 25));
	CHECK(strstr(query_log(), "192.0.2.7") == NULL);

	a = addrs_of(res, "only4.test", 65536);
	CHECK(a.status == DNS_NXDOMAIN);
}

static void
test_tlsa(void)
{
	struct dns_tlsa_result t;
	size_t i;
	bool saw311 = false, saw202 = false, saw300 = false;

	t = tlsa_of(res, "MX.example.test", 25);
	CHECK(t.status == DNS_OK);
	CHECK(!t.secure);
	/* The short SHA-256 and the 65-octet full match are skipped. */
	CHECK(t.n_records == 3);
	for (i = 0; i < t.n_records && i < DNS_TLSA_MAX; i++) {
		const struct dns_tlsa *r = &t.records[i];

		if (r->usage == 3 && r->selector == 1 && r->mtype == 1 &&
		    r->data_len == 32 && r->data[0] == 0x00 &&
		    r->data[1] == 0x11 && r->data[31] == 0xff)
			saw311 = true;
		if (r->usage == 2 && r->selector == 0 && r->mtype == 2 &&
		    r->data_len == 64 && r->data[63] == 0xff)
			saw202 = true;
		if (r->usage == 3 && r->selector == 0 && r->mtype == 0 &&
		    r->data_len == 5 && memcmp(r->data, "\1\2\3\4\5", 5) == 0)
			saw300 = true;
	}
	CHECK(saw311 && saw202 && saw300);

	/* An RRset with no usable record: OK, none. */
	t = tlsa_of(res, "mx.example.test", 465);
	CHECK(t.status == DNS_OK);
	CHECK(t.n_records == 0);

	t = tlsa_of(res, "mx2.example.test", 25);
	CHECK(t.status == DNS_NXDOMAIN);
	t = tlsa_of(res, "mx.example.test", 0);
	CHECK(t.status == DNS_NXDOMAIN);
	t = tlsa_of(res, "broken.test", 25);
	CHECK(t.status == DNS_NXDOMAIN);	/* _25._tcp.broken.test */
}

static void
test_servfail(void)
{
	struct dns_mx_result m;
	struct dns_addr_result a;
	uint64_t t0 = now_ms();

	m = mx_of(res, "broken.test");
	CHECK(m.status == DNS_TEMPFAIL);
	CHECK(m.n_hosts == 0);
	a = addrs_of(res, "broken.test", 25);
	CHECK(a.status == DNS_TEMPFAIL);
	CHECK(a.n_addrs == 0);
	m = mx_of(res, "refused.test");
	CHECK(m.status == DNS_TEMPFAIL);
	CHECK(now_ms() - t0 < 10000);
	/* The forwarder is still used for other names afterwards. */
	m = mx_of(res, "order.test");
	CHECK(m.status == DNS_OK);
}

static void
test_bad_names(void)
{
	const char *bad[] = { "bad..marker.test", "-badmarker.test",
	    "bad_marker.test", "bad marker.test", "", ".", "198.51.100.1",
	    "badmarker.test\n", NULL };
	char big[300];
	size_t i;
	struct dns_mx_result m;
	struct dns_addr_result a;
	struct dns_tlsa_result t;

	for (i = 0; bad[i] != NULL; i++) {
		m = mx_of(res, bad[i]);
		CHECK(m.status == DNS_NXDOMAIN);
		if (strcmp(bad[i], "198.51.100.1") != 0) {
			a = addrs_of(res, bad[i], 25);
			CHECK(a.status == DNS_NXDOMAIN);
		}
		t = tlsa_of(res, bad[i], 25);
		CHECK(t.status == DNS_NXDOMAIN);
	}
	m = mx_of(res, NULL);
	CHECK(m.status == DNS_NXDOMAIN);
	/* 253 octets is a name, but "_25._tcp." makes it too long. */
	memset(big, 0, sizeof(big));
	for (i = 0; i < 253; i++)
		big[i] = (i % 2 == 1) ? '.' : 'b';
	t = tlsa_of(res, big, 25);
	CHECK(t.status == DNS_NXDOMAIN);
	memcpy(big + 243, "markr.test", 10);
	t = tlsa_of(res, big, 25);
	CHECK(t.status == DNS_NXDOMAIN);
	CHECK(strstr(query_log(), "marker") == NULL);
	CHECK(strstr(query_log(), "markr") == NULL);
	CHECK(strstr(query_log(), "198.51.100.1") == NULL);
}

static void
test_callbacks_outside_calls(void)
{
	/* Every callback above ran from the loop, never inside a call. */
	CHECK(cb_inside_call == 0);
}

static struct dns_resolver *cancel_res;
static uint64_t cancel_other;
static int cancel_calls;

static void
count_mx_cb(void *arg, const struct dns_mx_result *r)
{
	cancel_calls++;
}

static void
count_addr_cb(void *arg, const struct dns_addr_result *r)
{
	cancel_calls++;
}

static void
count_tlsa_cb(void *arg, const struct dns_tlsa_result *r)
{
	cancel_calls++;
}

/* Cancels another query from inside a callback. */
static void
cancelling_cb(void *arg, const struct dns_mx_result *r)
{
	cancel_calls++;
	dns_cancel(cancel_res, cancel_other);
}

static void
test_cancel(void)
{
	uint64_t h1, h2, h3, h4;
	struct mx_wait w;

	cancel_calls = 0;
	/* Answered after 0.3 s: cancelled before that. */
	h1 = dns_lookup_mx(res, "slow.test", count_mx_cb, NULL);
	h2 = dns_lookup_addrs(res, "slow.test", 25, count_addr_cb, NULL);
	h3 = dns_lookup_tlsa(res, "slow.test", 25, count_tlsa_cb, NULL);
	/* Decided at once (bad name), cancelled before delivery. */
	h4 = dns_lookup_mx(res, "bad..name", count_mx_cb, NULL);
	CHECK(h1 != 0 && h2 != 0 && h3 != 0 && h4 != 0);
	CHECK(h1 != h2 && h2 != h3 && h3 != h4);
	dns_cancel(res, h4);
	run_until(NULL, 0, 100);
	dns_cancel(res, h1);
	dns_cancel(res, h2);
	dns_cancel(res, h3);
	dns_cancel(res, h4);		/* twice: no effect */
	dns_cancel(res, 0);		/* never a handle */
	dns_cancel(res, 999999);	/* unknown */
	run_until(NULL, 0, 1800);
	CHECK(cancel_calls == 0);

	/* The answers were cached meanwhile: lookups still work. */
	memset(&w, 0, sizeof(w));
	dns_lookup_mx(res, "slow.test", mx_cb, &w);
	run_until(&w.calls, 1, 5000);
	CHECK(w.calls == 1);
	CHECK(w.r.status == DNS_OK);

	/* A callback cancels the other, still pending, query. */
	cancel_calls = 0;
	cancel_res = res;
	dns_lookup_mx(res, "no-such-name..x", cancelling_cb, NULL);
	cancel_other = dns_lookup_mx(res, "nope.test", count_mx_cb, NULL);
	run_until(NULL, 0, 1000);
	CHECK(cancel_calls == 1);
}

static void
free_in_cb(void *arg, const struct dns_mx_result *r)
{
	cancel_calls++;
	dns_resolver_free(&cancel_res);
}

static void
test_free_pending(void)
{
	struct dns_resolver *r;
	int i;

	/* Freed with queries in flight: no callback, no leak (ASan). */
	cancel_calls = 0;
	r = resolver_for(srv.port);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	for (i = 0; i < 3; i++) {
		dns_lookup_mx(r, "slow.test", count_mx_cb, NULL);
		dns_lookup_addrs(r, "slow.test", 25, count_addr_cb, NULL);
		dns_lookup_tlsa(r, "slow.test", 25, count_tlsa_cb, NULL);
	}
	dns_lookup_mx(r, "bad..name", count_mx_cb, NULL);
	dns_lookup_addrs(r, "127.0.0.1", 25, count_addr_cb, NULL);
	run_until(NULL, 0, 200);	/* the thread is busy with them */
	CHECK(cancel_calls == 2);	/* the two decided at once */
	cancel_calls = 0;
	for (i = 0; i < 3; i++)
		dns_lookup_mx(r, "slow.test", count_mx_cb, NULL);
	dns_lookup_mx(r, "bad..name", count_mx_cb, NULL);
	dns_resolver_free(&r);
	CHECK(r == NULL);
	run_until(NULL, 0, 1500);
	CHECK(cancel_calls == 0);

	/* Never used at all. */
	r = resolver_for(srv.port);
	CHECK(r != NULL);
	dns_resolver_free(&r);
	dns_resolver_free(&r);	/* NULL: no effect */

	/* Freed from inside a callback while others are pending. */
	cancel_calls = 0;
	cancel_res = resolver_for(srv.port);
	CHECK(cancel_res != NULL);
	if (cancel_res == NULL)
		return;
	dns_lookup_mx(cancel_res, "bad..name", free_in_cb, NULL);
	dns_lookup_mx(cancel_res, "slow.test", count_mx_cb, NULL);
	dns_lookup_mx(cancel_res, "bad..again", count_mx_cb, NULL);
	run_until(NULL, 0, 1500);
	CHECK(cancel_calls == 1);
	CHECK(cancel_res == NULL);
}

static void
test_timeouts(void)
{
	struct dns_resolver *r;
	struct dns_mx_result m;
	struct dns_addr_result a;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	uint64_t t0;
	int fd;

	/* A name the server never answers; AAAA never answered, A is. */
	r = resolver_for(srv.port);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	dns_resolver_set_timeout_ms(r, 1500);
	t0 = now_ms();
	m = mx_of(r, "black.test");
	CHECK(m.status == DNS_TEMPFAIL);
	CHECK(now_ms() - t0 < 3000);
	t0 = now_ms();
	a = addrs_of(r, "halfdrop.test", 25);
	CHECK(a.status == DNS_OK);
	CHECK(a.n_addrs == 1);
	CHECK(has_addr(&a, 0, 1, "127.0.0.10", 25));
	CHECK(now_ms() - t0 < 3000);
	dns_resolver_free(&r);

	/* A forwarder where nothing listens (port refused). */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &slen) == 0);
	close(fd);
	r = resolver_for(ntohs(sin.sin_port));
	CHECK(r != NULL);
	if (r == NULL)
		return;
	dns_resolver_set_timeout_ms(r, 2000);
	t0 = now_ms();
	m = mx_of(r, "example.test");
	CHECK(m.status == DNS_TEMPFAIL);
	CHECK(now_ms() - t0 < 3500);
	a = addrs_of(r, "mx.example.test", 25);
	CHECK(a.status == DNS_TEMPFAIL);
	CHECK(a.n_addrs == 0);
	CHECK(now_ms() - t0 < 7000);
	dns_resolver_free(&r);

	/* A forwarder that takes the packets and never answers. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sin.sin_port = 0;
	slen = sizeof(sin);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &slen) == 0);
	r = resolver_for(ntohs(sin.sin_port));
	CHECK(r != NULL);
	if (r != NULL) {
		dns_resolver_set_timeout_ms(r, 1000);
		t0 = now_ms();
		m = mx_of(r, "example.test");
		CHECK(m.status == DNS_TEMPFAIL);
		CHECK(now_ms() - t0 < 2500);
		dns_resolver_free(&r);
	}
	close(fd);
}

static void
test_bogus(void)
{
	char ta[PATH_MAX], fwd[64], err[256];
	struct dns_resolver *r;
	struct dns_mx_result m;

	/* A trust anchor for test. that the server cannot match (it signs
	 * nothing): answers under test. are bogus, never secure. */
	snprintf(ta, sizeof(ta), "%s/test.key", tmpdir);
	CHECK(write_file(ta, "test. IN DS 12345 13 2 "
	    "0123456789ABCDEF0123456789ABCDEF"
	    "0123456789ABCDEF0123456789ABCDEF\n") == 0);
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%u", srv.port);
	r = dns_resolver_new(base, fwd, ta, err, sizeof(err));
	CHECK(r != NULL);
	if (r == NULL) {
		fprintf(stderr, "%s\n", err);
		unlink(ta);
		return;
	}
	m = mx_of(r, "example.test");
	CHECK(m.status == DNS_BOGUS);
	CHECK(!m.secure);
	CHECK(m.n_hosts == 0);
	dns_resolver_free(&r);
	unlink(ta);
}

static const char signed_zone[] =
    "example.test MX 10 mx.example.test\n"
    "mx.example.test A 127.0.0.2\n"
    "mx.example.test AAAA 2001:db8::2\n"
    "_25._tcp.mx.example.test TLSA 3 1 1 "
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
    "implicit.test A 127.0.0.6\n"
    "nodata.test TXT hello\n"
    "alias.test CNAME example.test\n"
    "spoilt.test MX 10 mx.example.test\n"
    "spoilt.test A 127.0.0.7\n"
    "spoilt.test BADSIG\n"
    "halfbad.test A 127.0.0.8\n"
    "halfbad.test AAAA 2001:db8::8\n"
    "halfbad.test BADSIG AAAA\n"
    "_25._tcp.tlsabad.test TLSA 3 1 1 "
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
    "_25._tcp.tlsabad.test BADSIG\n"
    "tlsabad.test A 127.0.0.9\n"
    "example.org MX 10 mx.example.org\n"
    "mx.example.org A 127.0.0.10\n";

static void
test_dnssec(void)
{
	char fwd[64], err[256];
	struct dns_resolver *r;
	struct dns_mx_result m;
	struct dns_addr_result a;
	struct dns_tlsa_result t;

	/* A zone signed under test., its key the trust anchor. */
	if (start_server(&signed_srv, "signed", signed_zone, "test") == -1) {
		CHECK(!"signed dns_server.py started");
		return;
	}
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%u", signed_srv.port);
	r = dns_resolver_new(base, fwd, signed_srv.anchor_path, err,
	    sizeof(err));
	CHECK(r != NULL);
	if (r == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}

	m = mx_of(r, "example.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.secure);
	CHECK(m.n_hosts == 1);
	CHECK_STR(m.hosts[0].host, "mx.example.test");
	m = mx_of(r, "alias.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.secure);
	a = addrs_of(r, "mx.example.test", 25);
	CHECK(a.status == DNS_OK);
	CHECK(a.secure);
	CHECK(a.n_addrs == 2);
	t = tlsa_of(r, "mx.example.test", 25);
	CHECK(t.status == DNS_OK);
	CHECK(t.secure);
	CHECK(t.n_records == 1);

	/* Proven absence: NODATA, and the implicit MX after it. */
	m = mx_of(r, "nodata.test");
	CHECK(m.status == DNS_NODATA);
	CHECK(m.secure);
	m = mx_of(r, "implicit.test");
	CHECK(m.status == DNS_OK);
	CHECK(m.implicit);
	CHECK(m.secure);
	t = tlsa_of(r, "example.test", 25);	/* NXDOMAIN, unproven */
	CHECK(t.status == DNS_BOGUS);
	CHECK(!t.secure);

	/* Bad signatures: bogus, nothing returned. */
	m = mx_of(r, "spoilt.test");
	CHECK(m.status == DNS_BOGUS);
	CHECK(!m.secure);
	CHECK(m.n_hosts == 0);
	a = addrs_of(r, "spoilt.test", 25);
	CHECK(a.status == DNS_BOGUS);
	CHECK(a.n_addrs == 0);
	t = tlsa_of(r, "tlsabad.test", 25);
	CHECK(t.status == DNS_BOGUS);
	CHECK(t.n_records == 0);
	/* The AAAA answer is bogus: only the A answer is used. */
	a = addrs_of(r, "halfbad.test", 25);
	CHECK(a.status == DNS_OK);
	CHECK(a.secure);
	CHECK(a.n_addrs == 1);
	CHECK(has_addr(&a, 0, 1, "127.0.0.8", 25));
	/* A forged NXDOMAIN (no proof) is bogus, not permanent. */
	m = mx_of(r, "nope.test");
	CHECK(m.status == DNS_BOGUS);

	/* Outside the trust anchor: answers, never secure. */
	m = mx_of(r, "example.org");
	CHECK(m.status == DNS_OK);
	CHECK(!m.secure);
	CHECK(m.n_hosts == 1);
	dns_resolver_free(&r);

	/* Without a trust anchor nothing is secure, nothing bogus. */
	r = resolver_for(signed_srv.port);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	m = mx_of(r, "example.test");
	CHECK(m.status == DNS_OK);
	CHECK(!m.secure);
	m = mx_of(r, "spoilt.test");
	CHECK(m.status == DNS_OK);
	CHECK(!m.secure);
	dns_resolver_free(&r);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (base == NULL)
		return 1;
	UNIT_RUN(test_status_names);
	UNIT_RUN(test_name_normalize);
	UNIT_RUN(test_mx_rdata);
	UNIT_RUN(test_tlsa_rdata);
	if (mkdtemp(tmpdir) == NULL ||
	    start_server(&srv, "plain", zone, NULL) == -1) {
		unit_tests_failed++;
		stop_server(&srv);
		rmdir(tmpdir);
		return unit_finish();
	}
	UNIT_RUN(test_resolver_setup);
	res = resolver_for(srv.port);
	if (res == NULL) {
		unit_tests_failed++;
		stop_server(&srv);
		rmdir(tmpdir);
		return unit_finish();
	}
	UNIT_RUN(test_mx_order);
	UNIT_RUN(test_mx_shuffle);
	UNIT_RUN(test_mx_implicit);
	UNIT_RUN(test_mx_null_and_dropped);
	UNIT_RUN(test_addrs);
	UNIT_RUN(test_tlsa);
	UNIT_RUN(test_servfail);
	UNIT_RUN(test_bad_names);
	UNIT_RUN(test_cancel);
	UNIT_RUN(test_free_pending);
	UNIT_RUN(test_timeouts);
	UNIT_RUN(test_bogus);
	UNIT_RUN(test_mx_many);
	UNIT_RUN(test_dnssec);
	UNIT_RUN(test_callbacks_outside_calls);
	dns_resolver_free(&res);
	stop_server(&srv);
	stop_server(&signed_srv);
	rmdir(tmpdir);
	event_base_free(base);
	return unit_finish();
}
