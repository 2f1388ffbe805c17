/*
 * The harness of the SMTP client tests (test_smtp_client.c,
 * test_smtp_client_reuse.c): tests/smtp_peer.py as a scriptable peer,
 * the client run on a libevent loop, a test CA and its contexts.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/log.h"
#include "core/util.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_reply.h"
#include "smtp_client_harness.h"
#include "unit.h"


char tmpdir[PATH_MAX];
char peer_py[PATH_MAX];
char ca_crt[PATH_MAX], chain_crt[PATH_MAX], leaf_key[PATH_MAX];
char leaf_crt[PATH_MAX];
SSL_CTX *ctx_ca;		/* trusts the test CA */
SSL_CTX *ctx_none;	/* trusts nothing */
SSL_CTX *ctx_dane;
static int n_peers;

const char *const rcpts1[] = { "a@x.test" };
const char *const rcpts3[] = { "a@x.test", "b@x.test", "c@x.test" };
const char msg_simple[] = MSG_SIMPLE;

/* Files and processes */

char *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (len + 65536 + 1 > cap) {
			cap = (len + 65536 + 1) * 2;
			buf = xreallocarray(buf, cap, 1);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	if (len_r != NULL)
		*len_r = len;
	return buf;
}

bool
spit(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	bool ok;

	if (fd < 0)
		return false;
	ok = write_all(fd, buf, len) == 0;
	close(fd);
	return ok;
}

int
run_cmd(char *const argv[])
{
	pid_t pid = fork();
	int st, devnull;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A message file; returns its descriptor. */
int
msg_file(const char *content, size_t len)
{
	char path[PATH_MAX];
	static int n;
	int fd;

	path_join(path, sizeof(path), "%s/msg%d", tmpdir, ++n);
	if (!spit(path, content, len))
		return -1;
	fd = open(path, O_RDONLY);
	unlink(path);
	return fd;
}


/* Starts smtp_peer.py with a script written with ' for " (JSON). */
bool
peer_start(struct peer *pe, const char *script)
{
	char path[PATH_MAX], buf[64], *json, *q;
	struct pollfd pfd;
	size_t got = 0;
	int fds[2];
	ssize_t n;

	memset(pe, 0, sizeof(*pe));
	path_join(pe->dir, sizeof(pe->dir), "%s/peer%d", tmpdir, ++n_peers);
	if (mkdir(pe->dir, 0700) < 0)
		return false;
	path_join(path, sizeof(path), "%s/script.json", pe->dir);
	path_join(pe->record, sizeof(pe->record), "%s/record", pe->dir);
	path_join(pe->data, sizeof(pe->data), "%s/data", pe->dir);
	json = xstrdup(script);
	for (q = json; *q != '\0'; q++)
		if (*q == '\'')
			*q = '"';
	if (!spit(path, json, strlen(json))) {
		free(json);
		return false;
	}
	free(json);
	if (pipe(fds) < 0)
		return false;
	pe->pid = fork();
	if (pe->pid < 0)
		return false;
	if (pe->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(PYTHON, PYTHON, peer_py, "--script", path, "--record",
		    pe->record, "--data", pe->data, "--cert", chain_crt,
		    "--key", leaf_key, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
		if (poll(&pfd, 1, 10000) <= 0)
			break;
		if ((n = read(fds[0], buf + got, sizeof(buf) - 1 - got)) <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	buf[got] = '\0';
	if (sscanf(buf, "ready %d", &pe->port) != 1) {
		fprintf(stderr, "peer did not start: \"%s\"\n", buf);
		kill(pe->pid, SIGKILL);
		waitpid(pe->pid, NULL, 0);
		return false;
	}
	return true;
}

/* Waits for the peer (killing it after wait_ms) and returns its record. */
char *
peer_finish(struct peer *pe, int wait_ms)
{
	int st, i;

	for (i = 0; i < wait_ms / 10; i++) {
		if (waitpid(pe->pid, &st, WNOHANG) == pe->pid) {
			pe->pid = 0;
			break;
		}
		usleep(10000);
	}
	if (pe->pid != 0) {
		kill(pe->pid, SIGKILL);
		waitpid(pe->pid, &st, 0);
		pe->pid = 0;
	}
	return slurp(pe->record, NULL);
}

/* The recv() number that brought the first command starting with cmd;
 * -1 if none. */
int
rec_batch(const char *rec, const char *cmd)
{
	const char *p = rec;
	int batch;
	size_t cl = strlen(cmd);

	while ((p = strchr(p, 'C')) != NULL) {
		const char *colon;

		if ((p == rec || p[-1] == '\n') &&
		    sscanf(p, "C%d: ", &batch) == 1 &&
		    (colon = strstr(p, ": ")) != NULL &&
		    strncmp(colon + 2, cmd, cl) == 0)
			return batch;
		p++;
	}
	return -1;
}

bool
rec_has(const char *rec, const char *s)
{
	return rec != NULL && strstr(rec, s) != NULL;
}

/* The client on a loop */


static void
run_cb(void *arg, const struct smtp_client_result *r)
{
	struct run *run = arg;
	size_t n = r->n_rcpts < MAX_RCPTS ? r->n_rcpts : MAX_RCPTS;

	run->calls++;
	if (run->in_start)
		run->cb_in_start = true;
	run->res = *r;
	memcpy(run->rcpts, r->rcpts, n * sizeof(*r->rcpts));
	run->res.rcpts = run->rcpts;
	event_base_loopexit(run->base, NULL);
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *run = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(run->base);
}

static void
cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *run = arg;

	(void)fd;
	(void)what;
	smtp_client_cancel(run->client);
	run->client = NULL;
}

void
client_run(const struct smtp_client_params *p, struct run *run)
{
	struct timeval tv = { .tv_sec = 40 };
	struct event *guard, *cancel = NULL;
	uint64_t t0;

	run->base = event_base_new();
	guard = evtimer_new(run->base, guard_cb, run);
	evtimer_add(guard, &tv);
	t0 = monotonic_ms();
	run->in_start = true;
	run->client = smtp_client_start(run->base, p, run_cb, run);
	run->in_start = false;
	CHECK(run->client != NULL);
	if (run->cancel_after_ms == 0) {
		smtp_client_cancel(run->client);
		run->client = NULL;
		/* Let anything left run: nothing must call back. */
		tv.tv_sec = 0;
		tv.tv_usec = 300000;
		evtimer_add(guard, &tv);
	} else if (run->cancel_after_ms > 0) {
		struct timeval ctv = { .tv_sec = run->cancel_after_ms / 1000,
		    .tv_usec = (run->cancel_after_ms % 1000) * 1000 };

		cancel = evtimer_new(run->base, cancel_cb, run);
		evtimer_add(cancel, &ctv);
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		evtimer_add(guard, &tv);
	}
	event_base_dispatch(run->base);
	run->ms = monotonic_ms() - t0;
	CHECK(!run->cb_in_start);
	if (cancel != NULL)
		event_free(cancel);
	event_free(guard);
	event_base_free(run->base);
}

struct sockaddr_in peer_sin;
int msg_fd_simple = -1;

void
params_init(struct smtp_client_params *p, int port,
    const char *const *rcpts, size_t n)
{
	memset(p, 0, sizeof(*p));
	memset(&peer_sin, 0, sizeof(peer_sin));
	peer_sin.sin_family = AF_INET;
	peer_sin.sin_port = htons((uint16_t)port);
	peer_sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->addr = (struct sockaddr *)&peer_sin;
	p->addr_len = sizeof(peer_sin);
	p->peer_name = "mx.test.example";
	p->helo_name = "client.test";
	p->tls = SMTP_TLS_NONE;
	p->sender = "from@a.test";
	p->rcpts = rcpts;
	p->n_rcpts = n;
	p->msg_fd = msg_fd_simple;
	p->msg_size = sizeof(msg_simple) - 1;
	p->timeouts.connect = T_SECS;
	p->timeouts.banner = T_SECS;
	p->timeouts.command = T_SECS;
	p->timeouts.data_init = T_SECS;
	p->timeouts.data_block = T_SECS;
	p->timeouts.data_final = T_SECS;
}

/*
 * One session: starts the peer with script, runs the client with
 * p (port filled in), returns the peer's record (caller frees) or NULL.
 */
char *
session(const char *script, struct smtp_client_params *p, struct run *run,
    struct peer *pe)
{
	memset(run, 0, sizeof(*run));
	run->cancel_after_ms = -1;
	if (!peer_start(pe, script)) {
		CHECK(!"peer started");
		return NULL;
	}
	peer_sin.sin_port = htons((uint16_t)pe->port);
	client_run(p, run);
	CHECK(run->calls == 1);
	return peer_finish(pe, 3000);
}

bool
data_is(const struct peer *pe, const char *want, size_t wlen)
{
	size_t len;
	char *d = slurp(pe->data, &len);
	bool ok = d != NULL && len == wlen && memcmp(d, want, len) == 0;

	if (!ok)
		fprintf(stderr, "  data: %zu bytes, expected %zu\n",
		    d != NULL ? len : 0, wlen);
	free(d);
	return ok;
}

void
check_all_res(const struct smtp_client_result *res, size_t n,
    enum smtp_rcpt_outcome o, int code)
{
	size_t i;

	CHECK(res->n_rcpts == n);
	for (i = 0; i < n && i < MAX_RCPTS; i++) {
		const struct smtp_client_rcpt *r = &res->rcpts[i];

		if (r->outcome != o || r->code != code)
			fprintf(stderr, "  rcpt %zu: outcome %d code %d: %s "
			    "(error: %s)\n", i, (int)r->outcome, r->code,
			    r->diagnostic, res->error);
		CHECK(r->outcome == o);
		CHECK(r->code == code);
		/* Diagnostics are one printable line. */
		CHECK(strchr(r->diagnostic, '\n') == NULL);
		CHECK(strchr(r->diagnostic, '\r') == NULL);
	}
}

void
check_all(const struct run *run, size_t n, enum smtp_rcpt_outcome o,
    int code)
{
	check_all_res(&run->res, n, o, code);
}

const char ehlo_tls[] = "'ehlo': ['250-peer.test', '250-STARTTLS', "
    "'250 PIPELINING'], 'ehlo_tls': ['250-peer.test', '250 PIPELINING']";

/* Set-up */

static bool
make_certs(void)
{
	char ca_key[PATH_MAX], csr[PATH_MAX], *a, *b, *chain;
	size_t al, bl;
	bool ok;

	path_join(ca_key, sizeof(ca_key), "%s/ca.key", tmpdir);
	path_join(ca_crt, sizeof(ca_crt), "%s/ca.crt", tmpdir);
	path_join(leaf_key, sizeof(leaf_key), "%s/leaf.key", tmpdir);
	path_join(leaf_crt, sizeof(leaf_crt), "%s/leaf.crt", tmpdir);
	path_join(chain_crt, sizeof(chain_crt), "%s/chain.crt", tmpdir);
	path_join(csr, sizeof(csr), "%s/leaf.csr", tmpdir);
	{
		char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec",
		    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
		    ca_key, "-out", ca_crt, "-days", "2", "-subj",
		    "/CN=tegami test CA", "-addext",
		    "basicConstraints=critical,CA:TRUE", "-addext",
		    "keyUsage=critical,keyCertSign,cRLSign", NULL };

		if (run_cmd(argv) != 0)
			return false;
	}
	{
		char *argv[] = { "openssl", "req", "-new", "-newkey", "ec",
		    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
		    leaf_key, "-out", csr, "-subj", "/CN=mx.test.example",
		    "-addext", "subjectAltName=DNS:mx.test.example", NULL };

		if (run_cmd(argv) != 0)
			return false;
	}
	{
		char *argv[] = { "openssl", "x509", "-req", "-in", csr, "-CA",
		    ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out",
		    leaf_crt, "-days", "2", "-copy_extensions", "copy", NULL };

		if (run_cmd(argv) != 0)
			return false;
	}
	a = slurp(leaf_crt, &al);
	b = slurp(ca_crt, &bl);
	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return false;
	}
	chain = xmalloc(al + bl);
	memcpy(chain, a, al);
	memcpy(chain + al, b, bl);
	ok = spit(chain_crt, chain, al + bl);
	free(a);
	free(b);
	free(chain);
	return ok;
}

static SSL_CTX *
client_ctx(const char *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (ca != NULL && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* The peer script beside this file: tests/smtp_peer.py. */
static bool
find_peer_script(void)
{
	char exe[PATH_MAX], *slash;
	ssize_t n;
	int i;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	/* BUILD/tests/unit/test_smtp_client*: BUILD is three levels up,
	 * and meson gives __FILE__ relative to BUILD. */
	for (i = 0; i < 3 && (slash = strrchr(exe, '/')) != NULL; i++)
		*slash = '\0';
	if (__FILE__[0] == '/')
		path_join(peer_py, sizeof(peer_py), "%s", __FILE__);
	else
		path_join(peer_py, sizeof(peer_py), "%s/%s", exe, __FILE__);
	slash = strstr(peer_py, "tests/unit/smtp_client_harness.c");
	if (slash == NULL)
		return false;
	strcpy(slash, "tests/smtp_peer.py");
	return access(peer_py, R_OK) == 0;
}

static void
remove_tree(const char *dir)
{
	char *argv[] = { "rm", "-rf", (char *)dir, NULL };

	run_cmd(argv);
}

bool
harness_setup(const char *name)
{
	const char *base = getenv("TMPDIR");

	signal(SIGPIPE, SIG_IGN);
	if (getenv("TEST_SMTP_CLIENT_VERBOSE") != NULL)
		log_set_verbose(1);
	path_join(tmpdir, sizeof(tmpdir), "%s/%s.XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp", name);
	if (mkdtemp(tmpdir) == NULL || !find_peer_script() || !make_certs()) {
		fprintf(stderr, "cannot set up: temp dir, %s or openssl\n",
		    peer_py);
		return false;
	}
	ctx_ca = client_ctx(ca_crt);
	ctx_none = client_ctx(NULL);
	ctx_dane = client_ctx(NULL);
	msg_fd_simple = msg_file(msg_simple, sizeof(msg_simple) - 1);
	if (ctx_ca == NULL || ctx_none == NULL || ctx_dane == NULL ||
	    msg_fd_simple < 0) {
		fprintf(stderr, "cannot set up TLS contexts\n");
		return false;
	}
	return true;
}

void
harness_teardown(void)
{
	close(msg_fd_simple);
	SSL_CTX_free(ctx_ca);
	SSL_CTX_free(ctx_none);
	SSL_CTX_free(ctx_dane);
	if (getenv("TEST_SMTP_CLIENT_KEEP") == NULL)
		remove_tree(tmpdir);
	else
		fprintf(stderr, "kept %s\n", tmpdir);
}
