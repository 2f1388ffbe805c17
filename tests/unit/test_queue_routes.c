/*
 * Unit tests of the routes file (queue_routes.h): every syntax, every
 * refusal with its FILE:LINE message, the matching precedence (exact,
 * longest ".suffix", "*", none), relay_host's HOST[:PORT] syntax, every
 * prefix of a file, and the file side: loading, change stamps, credential
 * files and their secrecy, routes_file resolved against state_dir.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "queue/queue_routes.h"
#include "unit.h"

static char tmpdir[64];

static struct queue_routes *
parse_ok(const char *text)
{
	struct queue_routes *t = NULL;
	char err[512] = "";

	if (queue_routes_parse("routes", text, strlen(text), &t, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "unexpected error: %s\n  for: %s\n", err, text);
		return NULL;
	}
	return t;
}

/* Expects text to be refused with exactly the message want. */
static void
refused(const char *text, const char *want, int line)
{
	struct queue_routes *t = (struct queue_routes *)1;
	char err[512] = "";

	if (queue_routes_parse("routes", text, strlen(text), &t, err,
	    sizeof(err)) != -1 || t != NULL || strcmp(err, want) != 0) {
		fprintf(stderr, "%s:%d: refusal mismatch for \"%s\"\n"
		    "  got:      \"%s\"\n  expected: \"%s\"\n", __FILE__, line,
		    text, err, want);
		unit_checks_failed_in_test++;
	}
	if (t != NULL && t != (struct queue_routes *)1)
		queue_routes_free(&t);
}

#define REFUSED(text, want) refused((text), (want), __LINE__)

/* The pattern of the route domain matches, or "-" for none. */
static const char *
matched(const struct queue_routes *t, const char *domain, char *buf,
    size_t size)
{
	const struct queue_route *r = queue_routes_match(t, domain);

	if (r == NULL)
		return "-";
	return queue_route_pattern(r, buf, size);
}

static void
test_empty_and_comments(void)
{
	struct queue_routes *t;
	char buf[300];

	t = parse_ok("");
	CHECK(t != NULL && t->n == 0);
	CHECK(queue_routes_match(t, "example.com") == NULL);
	queue_routes_free(&t);
	CHECK(t == NULL);
	queue_routes_free(&t);		/* NULL is fine */
	CHECK(queue_routes_match(NULL, "example.com") == NULL);

	/* "#" inside a word is not a comment: "a#b.test" is no domain */
	REFUSED("# a comment\n\n   \t\n#example.com relay=mx\r\n"
	    "example.com tls=none # why: the peer's TLS is broken\r\n"
	    "  \t other.test\ttls=verify\t#\n"
	    "a#b.test tls=none\n", "routes:7: \"a#b.test\": not a domain, "
	    "\".domain\" or \"*\"");
	t = parse_ok("# a comment\n\n   \t\n#example.com relay=mx\r\n"
	    "example.com tls=none # why: the peer's TLS is broken\r\n"
	    "  \t other.test\ttls=verify\t#\n"
	    "last.test tls=may");	/* no final line end */
	CHECK(t != NULL && t->n == 3);
	if (t == NULL)
		return;
	CHECK_STR(matched(t, "example.com", buf, sizeof(buf)), "example.com");
	CHECK(queue_routes_match(t, "example.com")->tls ==
	    QUEUE_ROUTE_TLS_NONE);
	CHECK(queue_routes_match(t, "example.com")->line == 5);
	CHECK(queue_routes_match(t, "other.test")->tls ==
	    QUEUE_ROUTE_TLS_VERIFY);
	CHECK(queue_routes_match(t, "other.test")->line == 6);
	CHECK(queue_routes_match(t, "last.test")->line == 7);
	CHECK(queue_routes_match(t, "nowhere.test") == NULL);
	queue_routes_free(&t);
}

static void
test_every_key(void)
{
	struct queue_routes *t;
	const struct queue_route *r;

	t = parse_ok("A.Example.COM relay=mx tls=encrypt\n"
	    ".Sub.Example.com relay=smtp.isp.test tls=none auth=isp-auth\n"
	    "* relay=SMTP.Other.test:2525 tls=verify auth=/etc/tegami/a\n"
	    "ip4.test relay=192.0.2.1\n"
	    "ip4port.test relay=[192.0.2.1]:465\n"
	    "ip6.test relay=[2001:db8::1]:25\n"
	    "ip6noport.test relay=[2001:db8::2]\n"
	    "named-mx.test relay=[mx]\n"
	    "upper-mx.test relay=MX\n"
	    "may.test tls=may\n"
	    "bare.test\n"
	    "auth-only.test auth=x\n");
	CHECK(t != NULL && t->n == 12);
	if (t == NULL)
		return;
	r = queue_routes_match(t, "a.example.com");
	CHECK(r != NULL && r->kind == QUEUE_ROUTE_EXACT);
	CHECK_STR(r->domain, "a.example.com");
	CHECK(r->relay == QUEUE_ROUTE_RELAY_MX);
	CHECK(r->tls == QUEUE_ROUTE_TLS_ENCRYPT);
	CHECK(r->auth == NULL && r->auth_user == NULL);

	r = queue_routes_match(t, "x.sub.example.com");
	CHECK(r != NULL && r->kind == QUEUE_ROUTE_SUFFIX);
	CHECK_STR(r->domain, "sub.example.com");
	CHECK(r->relay == QUEUE_ROUTE_RELAY_HOST);
	CHECK_STR(r->host, "smtp.isp.test");
	CHECK(r->port == 587);
	CHECK(r->tls == QUEUE_ROUTE_TLS_NONE);
	CHECK_STR(r->auth, "isp-auth");

	r = queue_routes_match(t, "anything.else");
	CHECK(r != NULL && r->kind == QUEUE_ROUTE_DEFAULT);
	CHECK_STR(r->domain, "");
	CHECK_STR(r->host, "smtp.other.test");
	CHECK(r->port == 2525);
	CHECK(r->tls == QUEUE_ROUTE_TLS_VERIFY);
	CHECK_STR(r->auth, "/etc/tegami/a");

	r = queue_routes_match(t, "ip4.test");
	CHECK(r != NULL && strcmp(r->host, "192.0.2.1") == 0 && r->port == 587);
	CHECK(r->tls == QUEUE_ROUTE_TLS_GLOBAL);
	r = queue_routes_match(t, "ip4port.test");
	CHECK(r != NULL && strcmp(r->host, "192.0.2.1") == 0 && r->port == 465);
	r = queue_routes_match(t, "ip6.test");
	CHECK(r != NULL && strcmp(r->host, "2001:db8::1") == 0 && r->port == 25);
	r = queue_routes_match(t, "ip6noport.test");
	CHECK(r != NULL && strcmp(r->host, "2001:db8::2") == 0 &&
	    r->port == 587);
	r = queue_routes_match(t, "named-mx.test");
	CHECK(r != NULL && r->relay == QUEUE_ROUTE_RELAY_HOST &&
	    strcmp(r->host, "mx") == 0);
	r = queue_routes_match(t, "upper-mx.test");
	CHECK(r != NULL && r->relay == QUEUE_ROUTE_RELAY_MX);
	r = queue_routes_match(t, "may.test");
	CHECK(r != NULL && r->tls == QUEUE_ROUTE_TLS_MAY &&
	    r->relay == QUEUE_ROUTE_RELAY_GLOBAL);
	r = queue_routes_match(t, "bare.test");
	CHECK(r != NULL && r->relay == QUEUE_ROUTE_RELAY_GLOBAL &&
	    r->tls == QUEUE_ROUTE_TLS_GLOBAL && r->auth == NULL);
	r = queue_routes_match(t, "auth-only.test");
	CHECK(r != NULL && r->relay == QUEUE_ROUTE_RELAY_GLOBAL &&
	    strcmp(r->auth, "x") == 0);
	queue_routes_free(&t);

	CHECK_STR(queue_route_tls_name(QUEUE_ROUTE_TLS_NONE), "none");
	CHECK_STR(queue_route_tls_name(QUEUE_ROUTE_TLS_MAY), "may");
	CHECK_STR(queue_route_tls_name(QUEUE_ROUTE_TLS_ENCRYPT), "encrypt");
	CHECK_STR(queue_route_tls_name(QUEUE_ROUTE_TLS_VERIFY), "verify");
	CHECK_STR(queue_route_tls_name(QUEUE_ROUTE_TLS_GLOBAL), "");
}

static void
test_precedence(void)
{
	struct queue_routes *t;
	char buf[300];

	t = parse_ok("example.com tls=none\n"
	    ".example.com tls=may\n"
	    ".deep.example.com tls=encrypt\n"
	    "x.deep.example.com tls=verify\n"
	    ".com relay=mx\n");
	CHECK(t != NULL);
	if (t == NULL)
		return;
	/* exact first, in any case */
	CHECK_STR(matched(t, "example.com", buf, sizeof(buf)), "example.com");
	CHECK_STR(matched(t, "EXAMPLE.Com", buf, sizeof(buf)), "example.com");
	/* ".example.com" is any subdomain, not example.com itself */
	CHECK_STR(matched(t, "a.example.com", buf, sizeof(buf)),
	    ".example.com");
	CHECK_STR(matched(t, "a.b.example.com", buf, sizeof(buf)),
	    ".example.com");
	/* the longest suffix wins */
	CHECK_STR(matched(t, "y.deep.example.com", buf, sizeof(buf)),
	    ".deep.example.com");
	CHECK_STR(matched(t, "z.y.deep.example.com", buf, sizeof(buf)),
	    ".deep.example.com");
	CHECK_STR(matched(t, "deep.example.com", buf, sizeof(buf)),
	    ".example.com");
	/* an exact route beats every suffix, also a longer one */
	CHECK_STR(matched(t, "x.deep.example.com", buf, sizeof(buf)),
	    "x.deep.example.com");
	CHECK_STR(matched(t, "X.Deep.Example.COM", buf, sizeof(buf)),
	    "x.deep.example.com");
	CHECK_STR(matched(t, "other.com", buf, sizeof(buf)), ".com");
	CHECK_STR(matched(t, "com", buf, sizeof(buf)), "-");
	/* no "*": no route */
	CHECK_STR(matched(t, "example.org", buf, sizeof(buf)), "-");
	/* no partial labels: "badexample.com" is not below example.com */
	CHECK_STR(matched(t, "badexample.com", buf, sizeof(buf)), ".com");
	CHECK_STR(matched(t, "", buf, sizeof(buf)), "-");
	CHECK_STR(matched(t, ".", buf, sizeof(buf)), "-");
	CHECK_STR(matched(t, "example.com.", buf, sizeof(buf)), "-");
	CHECK_STR(matched(t, "[192.0.2.1]", buf, sizeof(buf)), "-");
	queue_routes_free(&t);

	t = parse_ok("* tls=encrypt\n.example.com tls=may\nexample.com\n");
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK_STR(matched(t, "example.org", buf, sizeof(buf)), "*");
	CHECK_STR(matched(t, "a.example.com", buf, sizeof(buf)),
	    ".example.com");
	/* a route without keys still wins: its domain takes the globals */
	CHECK_STR(matched(t, "example.com", buf, sizeof(buf)), "example.com");
	CHECK(queue_routes_match(t, "example.com")->tls ==
	    QUEUE_ROUTE_TLS_GLOBAL);
	/* a name too long for any route still gets the default */
	{
		char longname[400];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		CHECK_STR(matched(t, longname, buf, sizeof(buf)), "*");
	}
	queue_routes_free(&t);
}

static void
test_refusals(void)
{
	char line[QUEUE_ROUTES_LINE_MAX + 64], want[128];

	/* DOMAIN */
	REFUSED("bad_domain.test tls=none\n",
	    "routes:1: \"bad_domain.test\": not a domain, \".domain\" or "
	    "\"*\"");
	REFUSED("\n.\n", "routes:2: \".\": not a domain, \".domain\" or "
	    "\"*\"");
	REFUSED("..example.com\n", "routes:1: \"..example.com\": not a "
	    "domain, \".domain\" or \"*\"");
	REFUSED("*.example.com\n", "routes:1: \"*.example.com\": not a "
	    "domain, \".domain\" or \"*\"");
	REFUSED("example.com.\n", "routes:1: \"example.com.\": not a "
	    "domain, \".domain\" or \"*\"");
	REFUSED("-a.test\n", "routes:1: \"-a.test\": not a domain, "
	    "\".domain\" or \"*\"");
	REFUSED("192.0.2.1\n", "routes:1: \"192.0.2.1\": not a domain, "
	    "\".domain\" or \"*\"");
	REFUSED("**\n", "routes:1: \"**\": not a domain, \".domain\" or "
	    "\"*\"");
	REFUSED("tls=none\n", "routes:1: \"tls=none\": not a domain, "
	    "\".domain\" or \"*\"");
	REFUSED("caf\xc3\xa9.test\n", "routes:1: \"caf??.test\": not a "
	    "domain, \".domain\" or \"*\"");
	/* repeated domains, in any case; the earliest repeat is named */
	REFUSED("a.test\nb.test\nA.TEST tls=none\nb.test\n",
	    "routes:3: a.test given twice (first on line 1)");
	REFUSED("x.test\nb.test\nc.test\nb.test\nx.test\n",
	    "routes:4: b.test given twice (first on line 2)");
	REFUSED("b.test\nb.test\nb.test\n",
	    "routes:2: b.test given twice (first on line 1)");
	REFUSED(".a.test\n.A.test\n",
	    "routes:2: .a.test given twice (first on line 1)");
	REFUSED("* tls=may\n* tls=none\n",
	    "routes:2: * given twice (first on line 1)");
	/* words */
	REFUSED("a.test none\n", "routes:1: \"none\": want KEY=VALUE "
	    "(relay, tls or auth)");
	REFUSED("a.test via=mx\n", "routes:1: unknown key \"via\" (relay, "
	    "tls or auth)");
	REFUSED("a.test TLS=none\n", "routes:1: unknown key \"TLS\" (relay, "
	    "tls or auth)");
	REFUSED("a.test =x\n", "routes:1: unknown key \"\" (relay, tls or "
	    "auth)");
	REFUSED("a.test tls=none tls=may\n", "routes:1: tls given twice");
	REFUSED("a.test relay=mx relay=b.test\n",
	    "routes:1: relay given twice");
	REFUSED("a.test auth=x auth=y\n", "routes:1: auth given twice");
	REFUSED("a.test tls=\n", "routes:1: tls: no value");
	REFUSED("a.test relay=\n", "routes:1: relay: no value");
	REFUSED("a.test auth=\n", "routes:1: auth: no value");
	REFUSED("a.test tls = none\n", "routes:1: \"tls\": want KEY=VALUE "
	    "(relay, tls or auth)");
	/* tls */
	REFUSED("a.test tls=dane\n", "routes:1: tls=dane: want none, may, "
	    "encrypt or verify");
	REFUSED("a.test tls=MAY\n", "routes:1: tls=MAY: want none, may, "
	    "encrypt or verify");
	REFUSED("a.test tls=may,verify\n", "routes:1: tls=may,verify: want "
	    "none, may, encrypt or verify");
	/* relay */
	REFUSED("a.test relay=h.test:0\n",
	    "routes:1: relay=h.test:0: bad port (1..65535)");
	REFUSED("a.test relay=h.test:65536\n",
	    "routes:1: relay=h.test:65536: bad port (1..65535)");
	REFUSED("a.test relay=h.test:\n",
	    "routes:1: relay=h.test:: bad port (1..65535)");
	REFUSED("a.test relay=h.test:25x\n",
	    "routes:1: relay=h.test:25x: bad port (1..65535)");
	REFUSED("a.test relay=h.test:-25\n",
	    "routes:1: relay=h.test:-25: bad port (1..65535)");
	REFUSED("a.test relay=h.test:0000025\n",
	    "routes:1: relay=h.test:0000025: bad port (1..65535)");
	REFUSED("a.test relay=:25\n", "routes:1: relay=:25: no host");
	REFUSED("a.test relay=[]:25\n", "routes:1: relay=[]:25: no host");
	REFUSED("a.test relay=[::1\n", "routes:1: relay=[::1: no ']' after "
	    "'['");
	REFUSED("a.test relay=[::1]25\n", "routes:1: relay=[::1]25: want "
	    "[HOST]:PORT");
	REFUSED("a.test relay=::1\n", "routes:1: relay=::1: an IPv6 address "
	    "needs brackets: [ADDRESS]:PORT");
	REFUSED("a.test relay=2001:db8::1:25\n", "routes:1: "
	    "relay=2001:db8::1:25: an IPv6 address needs brackets: "
	    "[ADDRESS]:PORT");
	REFUSED("a.test relay=bad_host.test\n", "routes:1: "
	    "relay=bad_host.test: not a host name or address");
	REFUSED("a.test relay=[bad host]\n", "routes:1: relay=[bad: no ']' "
	    "after '['");
	REFUSED("a.test relay=h.test.\n", "routes:1: relay=h.test.: not a "
	    "host name or address");
	REFUSED("a.test relay=192.0.2.300\n", "routes:1: relay=192.0.2.300: "
	    "not a host name or address");
	/* auth= with MX delivery */
	REFUSED("a.test relay=mx auth=f\n", "routes:1: auth= with relay=mx: "
	    "MX hosts take no AUTH");
	REFUSED("a.test auth=f relay=mx\n", "routes:1: auth= with relay=mx: "
	    "MX hosts take no AUTH");
	/* bytes */
	{
		static const char nul[] = "a.test\nb.test\0 tls=none\n";
		struct queue_routes *t = NULL;
		char err[64];

		CHECK(queue_routes_parse("routes", nul, sizeof(nul) - 1, &t,
		    err, sizeof(err)) == -1 && t == NULL);
		CHECK_STR(err, "routes:2: NUL byte");
	}
	REFUSED("a.test tls=none\x01\n", "routes:1: control character "
	    "(0x01)");
	REFUSED("a.test\x7f\n", "routes:1: control character (0x7f)");
	REFUSED("a.test\rtls=none\n", "routes:1: control character (0x0d)");
	REFUSED("a.test auth=\x1b[31m\n", "routes:1: control character "
	    "(0x1b)");
	/* a comment may hold anything but a NUL */
	{
		struct queue_routes *t = parse_ok("# \x01\x1b[0m\xff\n");

		CHECK(t != NULL && t->n == 0);
		queue_routes_free(&t);
	}
	/* the longest line */
	memset(line, 'x', sizeof(line));
	memcpy(line, "a.test auth=", 12);
	line[QUEUE_ROUTES_LINE_MAX] = '\n';
	line[QUEUE_ROUTES_LINE_MAX + 1] = '\0';
	{
		struct queue_routes *t = parse_ok(line);

		CHECK(t != NULL && t->n == 1 &&
		    strlen(t->routes[0].auth) == QUEUE_ROUTES_LINE_MAX - 12);
		queue_routes_free(&t);
	}
	/* a CR before the LF does not count */
	line[QUEUE_ROUTES_LINE_MAX] = '\r';
	line[QUEUE_ROUTES_LINE_MAX + 1] = '\n';
	line[QUEUE_ROUTES_LINE_MAX + 2] = '\0';
	{
		struct queue_routes *t = parse_ok(line);

		CHECK(t != NULL && t->n == 1);
		queue_routes_free(&t);
	}
	line[QUEUE_ROUTES_LINE_MAX] = 'x';
	line[QUEUE_ROUTES_LINE_MAX + 1] = '\n';
	line[QUEUE_ROUTES_LINE_MAX + 2] = '\0';
	snprintf(want, sizeof(want), "routes:1: line longer than %d bytes",
	    QUEUE_ROUTES_LINE_MAX);
	REFUSED(line, want);
	/* a bad word in a message is shown cut and escaped */
	memset(line, 'k', 200);
	memcpy(line, "a.test ", 7);
	memcpy(line + 200, "=v\n", 4);
	REFUSED(line, "routes:1: unknown key \"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...\" (relay, tls or auth)");
}

static void
test_limits(void)
{
	size_t cap = (QUEUE_ROUTES_MAX + 2) * 24, off = 0;
	char *text = malloc(cap), err[256];
	struct queue_routes *t;
	unsigned i;

	CHECK(text != NULL);
	if (text == NULL)
		return;
	off += (size_t)snprintf(text, cap, "# many\n");
	for (i = 0; i < QUEUE_ROUTES_MAX; i++)
		off += (size_t)snprintf(text + off, cap - off,
		    "d%u.test tls=none\n", i);
	t = parse_ok(text);
	CHECK(t != NULL && t->n == QUEUE_ROUTES_MAX);
	if (t != NULL) {
		const struct queue_route *r = queue_routes_match(t,
		    "D9999.TEST");

		CHECK(r != NULL && r->line == 10001);
		CHECK(queue_routes_match(t, "d10000.test") == NULL);
		queue_routes_free(&t);
	}
	snprintf(text + off, cap - off, "\n# fine\n\nover.test tls=may\n");
	t = (struct queue_routes *)1;
	CHECK(queue_routes_parse("big", text, strlen(text), &t, err,
	    sizeof(err)) == -1 && t == NULL);
	CHECK_STR(err, "big:10005: more than 10000 routes");
	free(text);
}

/* Every prefix of a valid file parses or fails cleanly, and the routes
 * found are those of the complete lines (and the last, cut one). */
static void
test_every_prefix(void)
{
	static const char text[] = "# routes\r\n"
	    "b.test relay=mx tls=may\n"
	    ".b.test relay=[192.0.2.7]:2525 tls=verify auth=b-auth\n"
	    "* relay=smtp.isp.test:465 auth=/etc/isp\n";
	size_t len = strlen(text), i;
	char err[256];

	for (i = 0; i <= len; i++) {
		struct queue_routes *t = NULL;
		int rc;

		memset(err, 'x', sizeof(err));
		rc = queue_routes_parse("p", text, i, &t, err, sizeof(err));
		if (rc == 0) {
			CHECK(t != NULL && t->n <= 3);
			queue_routes_free(&t);
		} else {
			CHECK(rc == -1 && t == NULL);
			CHECK(memchr(err, '\0', sizeof(err)) != NULL);
			CHECK(strncmp(err, "p:", 2) == 0);
		}
	}
}

static void
test_parse_relay(void)
{
	char host[DNS_NAME_MAX + 1], err[128];
	unsigned port = 0;
	char name[300];

#define RELAY_OK(s, h, p) do {						\
	CHECK(queue_routes_parse_relay((s), strlen(s), host,		\
	    sizeof(host), &port, err, sizeof(err)) == 0);		\
	CHECK_STR(host, (h));						\
	CHECK(port == (p));						\
} while (0)
	RELAY_OK("smtp.isp.test", "smtp.isp.test", 587);
	RELAY_OK("SMTP.ISP.test:465", "smtp.isp.test", 465);
	RELAY_OK("h:1", "h", 1);
	RELAY_OK("h:65535", "h", 65535);
	RELAY_OK("[h.test]:25", "h.test", 25);
	RELAY_OK("127.0.0.1:10587", "127.0.0.1", 10587);
	RELAY_OK("[::1]:25", "::1", 25);
	RELAY_OK("[::1]", "::1", 587);
#undef RELAY_OK
	CHECK(queue_routes_parse_relay("", 0, host, sizeof(host), &port, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "no host");
	/* the length given counts, not the NUL */
	CHECK(queue_routes_parse_relay("h.test:25junk", 9, host, sizeof(host),
	    &port, err, sizeof(err)) == 0 && port == 25);
	CHECK(queue_routes_parse_relay("h\0x", 3, host, sizeof(host), &port,
	    err, sizeof(err)) == -1);
	/* names at and over DNS_NAME_MAX */
	memset(name, 'a', sizeof(name));
	for (size_t i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	name[DNS_NAME_MAX] = '\0';
	if (name[DNS_NAME_MAX - 1] == '.')
		name[DNS_NAME_MAX - 1] = 'a';
	CHECK(queue_routes_parse_relay(name, DNS_NAME_MAX, host, sizeof(host),
	    &port, err, sizeof(err)) == 0);
	name[DNS_NAME_MAX] = 'a';
	CHECK(queue_routes_parse_relay(name, DNS_NAME_MAX + 1, host,
	    sizeof(host), &port, err, sizeof(err)) == -1);
	CHECK_STR(err, "host name too long");
	/* a host buffer too small is an error, never a cut name */
	CHECK(queue_routes_parse_relay("abcdef.test", 11, host, 8, &port, err,
	    sizeof(err)) == -1);
}

/* ---- Files ------------------------------------------------------------- */

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
	CHECK(chmod(path, mode) == 0);
}

static void
test_load_and_stamps(void)
{
	char path[128], err[512], want[256];
	struct queue_routes *t;
	struct queue_routes_stamp st;
	struct timespec ts[2];
	int fd;

	snprintf(path, sizeof(path), "%s/routes", tmpdir);
	/* missing: no routes */
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == 0);
	CHECK(t != NULL && t->n == 0 && !st.exists && st.error == ENOENT);
	queue_routes_free(&t);
	CHECK(!queue_routes_changed(path, &st));

	write_file(path, "a.test relay=mx\n", 0644);
	CHECK(queue_routes_changed(path, &st));
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == 0);
	CHECK(t != NULL && t->n == 1 && st.exists);
	CHECK_STR(t->name, path);
	queue_routes_free(&t);
	CHECK(!queue_routes_changed(path, &st));

	/* the same size, another time: a change */
	write_file(path, "b.test relay=mx\n", 0644);
	ts[0].tv_sec = ts[1].tv_sec = 1000000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
	CHECK(queue_routes_changed(path, &st));
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == 0);
	CHECK(t != NULL && queue_routes_match(t, "b.test") != NULL);
	queue_routes_free(&t);
	CHECK(!queue_routes_changed(path, &st));

	/* broken: refused with the file's name, but stamped */
	write_file(path, "ok.test\nbad..test\n", 0644);
	CHECK(queue_routes_changed(path, &st));
	t = (struct queue_routes *)1;
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == -1);
	CHECK(t == NULL);
	snprintf(want, sizeof(want), "%s:2: \"bad..test\": not a domain, "
	    "\".domain\" or \"*\"", path);
	CHECK_STR(err, want);
	CHECK(st.exists && !queue_routes_changed(path, &st));

	/* writable by others: refused */
	write_file(path, "a.test relay=mx\n", 0664);
	CHECK(queue_routes_changed(path, &st));
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s: group or others may write it "
	    "(chmod go-w)", path);
	CHECK_STR(err, want);
	CHECK(!queue_routes_changed(path, &st));
	CHECK(chmod(path, 0602) == 0);
	CHECK(queue_routes_changed(path, &st));		/* the mode */
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == -1);
	CHECK_STR(err, want);
	CHECK(chmod(path, 0600) == 0);
	CHECK(queue_routes_changed(path, &st));
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == 0);
	queue_routes_free(&t);

	/* removed: a change, and no routes again */
	CHECK(unlink(path) == 0);
	CHECK(queue_routes_changed(path, &st));

	/* not a regular file */
	CHECK(mkdir(path, 0755) == 0);
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	CHECK_STR(err, want);
	CHECK(!queue_routes_changed(path, &st));
	CHECK(rmdir(path) == 0);

	/* too large */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, QUEUE_ROUTES_FILE_MAX + 1) == 0);
	close(fd);
	CHECK(queue_routes_load(path, &t, &st, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s: larger than %d bytes", path,
	    QUEUE_ROUTES_FILE_MAX);
	CHECK_STR(err, want);
	CHECK(unlink(path) == 0);
}

static void
test_credentials(void)
{
	char path[128], err[512], want[256], big[QUEUE_ROUTES_CRED_MAX + 8];
	char *user, *pw;

	snprintf(path, sizeof(path), "%s/cred", tmpdir);
	write_file(path, "relay@isp.test pass word with spaces\r\nignored\n",
	    0600);
	CHECK(queue_routes_read_credentials(path, 12345, &user, &pw, err,
	    sizeof(err)) == 0);
	CHECK_STR(user, "relay@isp.test");
	CHECK_STR(pw, "pass word with spaces");
	free(user);
	free(pw);
	write_file(path, "u p", 0400);
	CHECK(queue_routes_read_credentials(path, 12345, &user, &pw, err,
	    sizeof(err)) == 0);
	CHECK_STR(user, "u");
	CHECK_STR(pw, "p");
	free(user);
	free(pw);

#define CRED_REFUSED(text, mode, why) do {				\
	write_file(path, (text), (mode));				\
	user = pw = (char *)1;						\
	CHECK(queue_routes_read_credentials(path, 12345, &user, &pw,	\
	    err, sizeof(err)) == -1);					\
	CHECK(user == NULL && pw == NULL);				\
	snprintf(want, sizeof(want), "%s: %s", path, (why));		\
	CHECK_STR(err, want);						\
} while (0)
	CRED_REFUSED("u p\n", 0640, "group or others have access (it holds "
	    "a password: chmod 600)");
	CRED_REFUSED("u p\n", 0604, "group or others have access (it holds "
	    "a password: chmod 600)");
	CRED_REFUSED("u p\n", 0620, "group or others have access (it holds "
	    "a password: chmod 600)");
	CRED_REFUSED("", 0600, "want one line \"USER PASSWORD\"");
	CRED_REFUSED("\nu p\n", 0600, "want one line \"USER PASSWORD\"");
	CRED_REFUSED("useronly\n", 0600, "want one line \"USER PASSWORD\"");
	CRED_REFUSED("user \n", 0600, "want one line \"USER PASSWORD\"");
	CRED_REFUSED(" pass\n", 0600, "want one line \"USER PASSWORD\"");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[1] = ' ';
	CRED_REFUSED(big, 0600, "line longer than 1024 bytes");
#undef CRED_REFUSED
	/* a NUL in the line */
	{
		int fd = open(path, O_WRONLY | O_TRUNC);

		CHECK(fd >= 0 && write(fd, "u p\0q\n", 6) == 6);
		close(fd);
		CHECK(queue_routes_read_credentials(path, 12345, &user, &pw,
		    err, sizeof(err)) == -1);
	}
	/* another owner (when the test can make one) */
	if (geteuid() == 0) {
		write_file(path, "u p\n", 0600);
		CHECK(chown(path, 12345, 12345) == 0);
		CHECK(queue_routes_read_credentials(path, 12345, &user, &pw,
		    err, sizeof(err)) == 0);
		free(user);
		free(pw);
		CHECK(queue_routes_read_credentials(path, 54321, &user, &pw,
		    err, sizeof(err)) == -1);
		snprintf(want, sizeof(want), "%s: owned by someone other than "
		    "root or the user setting's account", path);
		CHECK_STR(err, want);
	}
	CHECK(unlink(path) == 0);
	CHECK(queue_routes_read_credentials(path, 12345, &user, &pw, err,
	    sizeof(err)) == -1 && errno == ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	CHECK_STR(err, want);
	CHECK(mkdir(path, 0700) == 0);
	CHECK(queue_routes_read_credentials(path, 12345, &user, &pw, err,
	    sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	CHECK_STR(err, want);
	CHECK(rmdir(path) == 0);
}

static void
test_load_credentials(void)
{
	char abs[128], rel[128], text[512], err[512], want[512];
	struct queue_routes *t, *t2;
	const struct queue_route *r;
	size_t kept = 99;

	snprintf(abs, sizeof(abs), "%s/abs-auth", tmpdir);
	snprintf(rel, sizeof(rel), "%s/sub/rel-auth", tmpdir);
	snprintf(text, sizeof(text), "%s/sub", tmpdir);
	CHECK(mkdir(text, 0755) == 0);
	write_file(abs, "abs-user abs-pass\n", 0600);
	write_file(rel, "rel-user rel-pass\n", 0600);
	snprintf(text, sizeof(text), "a.test relay=h.test auth=%s\n"
	    "b.test relay=h.test auth=sub/rel-auth\n"
	    "c.test relay=h.test\n", abs);
	t = parse_ok(text);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK(queue_routes_load_credentials(t, tmpdir, 12345, NULL, 0, &kept,
	    err, sizeof(err)) == 0);
	CHECK(kept == 0);
	r = queue_routes_match(t, "a.test");
	CHECK(r != NULL && strcmp(r->auth_user, "abs-user") == 0 &&
	    strcmp(r->auth_password, "abs-pass") == 0);
	r = queue_routes_match(t, "b.test");
	CHECK(r != NULL && strcmp(r->auth_user, "rel-user") == 0 &&
	    strcmp(r->auth_password, "rel-pass") == 0);
	r = queue_routes_match(t, "c.test");
	CHECK(r != NULL && r->auth_user == NULL && r->auth_password == NULL);

	/* a file that cannot be read: the route's line is named */
	CHECK(chmod(rel, 0644) == 0);
	t2 = parse_ok(text);
	CHECK(t2 != NULL);
	if (t2 != NULL) {
		CHECK(queue_routes_load_credentials(t2, tmpdir, 12345,
		    (const struct queue_routes *const *)&t, 1, NULL, err,
		    sizeof(err)) == -1);
		snprintf(want, sizeof(want), "routes:2: auth=sub/rel-auth: "
		    "%s: group or others have access (it holds a password: "
		    "chmod 600)", rel);
		CHECK_STR(err, want);
		queue_routes_free(&t2);
	}
	CHECK(unlink(rel) == 0);
	t2 = parse_ok(text);
	if (t2 != NULL) {
		CHECK(queue_routes_load_credentials(t2, tmpdir, 12345,
		    (const struct queue_routes *const *)&t, 1, NULL, err,
		    sizeof(err)) == -1);
		snprintf(want, sizeof(want), "routes:2: auth=sub/rel-auth: "
		    "%s: No such file or directory", rel);
		CHECK_STR(err, want);
		queue_routes_free(&t2);
	}
	queue_routes_free(&t);
	CHECK(unlink(abs) == 0);
	snprintf(text, sizeof(text), "%s/sub", tmpdir);
	CHECK(rmdir(text) == 0);
}

/*
 * After the queue process drops root, root's credential files cannot be
 * opened: the credentials an older table read for the same auth= value
 * are kept. Needs root (to be someone else in a child).
 */
static void
test_credentials_kept_without_root(void)
{
	char path[128], text[256], err[512];
	struct queue_routes *t;
	pid_t pid;
	int status;

	if (geteuid() != 0)
		fprintf(stderr, "test_credentials_kept_without_root: not root, "
		    "only the first half runs\n");
	snprintf(path, sizeof(path), "%s/root-auth", tmpdir);
	write_file(path, "root-user root-pass\n", 0600);
	snprintf(text, sizeof(text), "a.test relay=h.test auth=%s\n", path);
	t = parse_ok(text);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK(queue_routes_load_credentials(t, tmpdir, 0, NULL, 0, NULL, err,
	    sizeof(err)) == 0);
	if (geteuid() != 0) {
		queue_routes_free(&t);
		CHECK(unlink(path) == 0);
		return;
	}
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		const struct queue_routes *old[2] = { NULL, t };
		struct queue_routes *t2 = parse_ok(text), *t3;
		const struct queue_route *r;
		size_t kept = 0;
		int ok;

		if (setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0 || t2 == NULL)
			_exit(2);
		ok = queue_routes_load_credentials(t2, tmpdir, 0, old, 2,
		    &kept, err, sizeof(err)) == 0 && kept == 1;
		r = ok ? queue_routes_match(t2, "a.test") : NULL;
		ok = ok && r != NULL && strcmp(r->auth_user, "root-user") == 0 &&
		    strcmp(r->auth_password, "root-pass") == 0;
		/* without an older table: refused, naming the route */
		t3 = parse_ok(text);
		ok = ok && t3 != NULL && queue_routes_load_credentials(t3,
		    tmpdir, 0, NULL, 0, NULL, err, sizeof(err)) == -1 &&
		    strstr(err, "routes:1: auth=") == err &&
		    strstr(err, "Permission denied") != NULL;
		_exit(ok ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	queue_routes_free(&t);
	CHECK(unlink(path) == 0);
}

/* routes_file: "routes" below state_dir by default, relative values
 * below state_dir, absolute ones as they are. */
static void
test_routes_file_setting(void)
{
	static const char base[] = "hostname = mx.a.test\ndomains = a.test\n"
	    "state_dir = /var/lib/tegami\n";
	struct tegami_config *cfg;
	char text[512], err[512];

	CHECK(config_parse("t.conf", base, strlen(base), &cfg, err,
	    sizeof(err)) == 0);
	if (cfg != NULL)
		CHECK_STR(cfg->routes_file, "/var/lib/tegami/routes");
	config_free(&cfg);
	snprintf(text, sizeof(text), "%sroutes_file = conf/routes.txt\n", base);
	CHECK(config_parse("t.conf", text, strlen(text), &cfg, err,
	    sizeof(err)) == 0);
	if (cfg != NULL)
		CHECK_STR(cfg->routes_file, "/var/lib/tegami/conf/routes.txt");
	config_free(&cfg);
	snprintf(text, sizeof(text), "%sroutes_file = /etc/tegami/routes\n",
	    base);
	CHECK(config_parse("t.conf", text, strlen(text), &cfg, err,
	    sizeof(err)) == 0);
	if (cfg != NULL)
		CHECK_STR(cfg->routes_file, "/etc/tegami/routes");
	config_free(&cfg);
	snprintf(text, sizeof(text), "%sroutes_file = a\x01\n", base);
	CHECK(config_parse("t.conf", text, strlen(text), &cfg, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "t.conf:4: routes_file: contains a control character");
	CHECK(config_check_value("routes_file", "routes", err,
	    sizeof(err)) == 0);
}

int
main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_queue_routes.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	UNIT_RUN(test_empty_and_comments);
	UNIT_RUN(test_every_key);
	UNIT_RUN(test_precedence);
	UNIT_RUN(test_refusals);
	UNIT_RUN(test_limits);
	UNIT_RUN(test_every_prefix);
	UNIT_RUN(test_parse_relay);
	UNIT_RUN(test_load_and_stamps);
	UNIT_RUN(test_credentials);
	UNIT_RUN(test_load_credentials);
	UNIT_RUN(test_credentials_kept_without_root);
	UNIT_RUN(test_routes_file_setting);
	rmdir(tmpdir);
	return unit_finish();
}
