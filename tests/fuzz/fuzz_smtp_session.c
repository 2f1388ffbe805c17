/*
 * libFuzzer target for a whole SMTP session (RFC 5321, 2920, 3030): the
 * input is played as a client over a socketpair into a real smtp_session,
 * so the state machine, the io layer, DATA/BDAT spooling and the group
 * commit disk threads run together, as Dovecot's fuzz-smtp-server.c does.
 *
 * Input: the first byte chooses how the rest is sent and with which
 * settings (see FUZZ_*); the rest is the client's bytes. Each input must
 * end with the session gone by itself after EOF, no commit pending, no
 * spool file, descriptor or connection slot left, every reply line
 * well-formed, and every delivered file clean and accounted for by a 250.
 * TEGAMI_FUZZ_TRACE=1 prints the replies; TEGAMI_FUZZ_LOG=1 keeps the
 * server's log on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "auth/accounts.h"
#include "core/config.h"
#include "core/log.h"
#include "net/conn_limit.h"
#include "smtp/smtp_server.h"
#include "smtp/smtp_session.h"
#include "store/commit.h"
#include "store/maildir.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte. After each packet the harness waits until the server
 * has read it, answered, and finished any commit ("settles"), so that the
 * same input always meets the server in the same state, as libFuzzer
 * wants; a packet is one write, and the server sees it in one read.
 */
#define FUZZ_MODE_MASK		0x03
#define FUZZ_MODE_LINES		0	/* one packet per line (up to LF) */
#define FUZZ_MODE_SEPARATED	1	/* packets split at FUZZ_SEPARATOR */
#define FUZZ_MODE_BULK		2	/* the whole input as one packet */
#define FUZZ_MODE_CHUNKS	3	/* packets of a fixed size */
#define FUZZ_CHUNK_SHIFT	2	/* chunks: bits 2-4 index chunk_sizes */
/* In the other modes, bits 2-4 are these: */
#define FUZZ_IPV6		0x04	/* the peer address is IPv6 */
#define FUZZ_TALK_EARLY		0x08	/* first packet without waiting for
					 * the banner (an early talker when
					 * the greeting is delayed) */
#define FUZZ_TALK_FIRST		0x10	/* first packet before the session
					 * starts (the MSG_PEEK check) */
#define FUZZ_SLOW		0x20	/* settings with the greeting delay
					 * and the error tarpit */
#define FUZZ_EARLY_EOF		0x40	/* EOF right after the last packet */
#define FUZZ_CLOSE		0x80	/* close() instead of shutdown(WR) */
#define FUZZ_SEPARATOR		0x1e	/* ASCII RS: never meaningful in SMTP;
					 * an empty packet (two in a row)
					 * shuts the server down */

static const size_t chunk_sizes[8] = { 1, 2, 3, 5, 8, 13, 64, 512 };

#define REPLY_LINE_MAX 512	/* RFC 5321 4.5.3.1.5, with CRLF */
#define WALL_LIMIT_MS 6000	/* a whole input; below -timeout=10 */
/* One settling, or the end of the session after EOF: well below the
 * server's own timeouts (5 s), so that they cannot hide a stuck session. */
#define PHASE_LIMIT_MS 2500
#define ITERATION_LIMIT 5000000
#define NEAR_TIMER_MS 200	/* timers due sooner are waited for */
#define FILE_CHECK_MAX (64 * 1024)
#define FIRST_PACKET_MAX 65536
#define STATE_DIR_PREFIX "tegami-fuzz-"
/* message_size_limit (2k) of client data after trace headers that
 * smtp_spool_open builds in 2048 octets at most. */
#define FILE_SIZE_MAX (2048 + 2048)

static const char fuzz_users[] =
    "alice@local.test:$y$j9T$fuzz$fuzz\n"
    "bob@local.test:$y$j9T$fuzz$fuzz\n"
    "carol@other.test:$y$j9T$fuzz$fuzz\n";

static const char fuzz_aliases[] =
    "postmaster@local.test: alice@local.test\n"
    "staff@local.test: alice@local.test, bob@local.test\n"
    "all@local.test: staff@local.test, carol@other.test, bob@local.test\n"
    "fwd@local.test: friend@remote.example\n"
    "mixed@other.test: carol@other.test, friend@remote.example\n"
    "loop1@local.test: loop2@local.test\n"
    "loop2@local.test: loop1@local.test\n"
    "ghost@local.test: nobody@local.test\n"
    /* remote targets enough to outgrow the envelope's first buffer */
    "list@other.test: first.remote.subscriber@lists.remote.example, "
    "second.remote.subscriber@lists.remote.example, "
    "third.remote.subscriber@lists.remote.example, "
    "fourth.remote.subscriber@lists.remote.example, "
    "fifth.remote.subscriber@lists.remote.example, alice@local.test\n";

/* Settings that keep sessions small and cheap; see the report. */
static const char fuzz_config_fmt[] =
    "state_dir = %s\n"
    "hostname = mail.local.test\n"
    "domains = local.test, other.test\n"
    "listen = 127.0.0.1\n"
    "message_size_limit = 2k\n"
    "recipient_limit = 5\n"
    "smtp_error_limit = 8\n"
    "smtp_timeout_command = 5s\n"
    "smtp_timeout_data_block = 5s\n"
    "smtp_data_deadline = 5s\n"
    "min_free_space = 1M\n"
    "disk_threads = 1\n"
    "%s%s";
/*
 * FUZZ_SLOW: a greeting delay, and the error tarpit where the server has
 * it (smtp_soft_error_limit is newer than the rest), both of 1 ms: the
 * harness waits for such near timers, so they cost time on every input.
 * A shutdown (see FUZZ_SEPARATOR) lets transactions finish here, while
 * the fast settings abort them at once.
 */
static const char fuzz_config_fast[] =
    "shutdown_grace = 0s\n";
static const char fuzz_config_slow[] =
    "shutdown_grace = 1s\n"
    "smtp_greeting_delay_ms = 1\n";
static const char fuzz_config_tarpit[] =
    "smtp_soft_error_limit = 6\n"
    "smtp_error_delay_ms = 1\n";

static struct {
	bool ready;
	char dir[PATH_MAX];
	struct event_base *base;
	struct tegami_config *cfg_fast, *cfg_slow;
	struct account_table *accounts;
	struct commit_pool *commit;
	struct smtp_server srv;
	int err_fd;		/* our own diagnostics */
	int baseline_fds;	/* open descriptors between inputs */
	bool trace;		/* TEGAMI_FUZZ_TRACE: print the replies */
} fz;

/* Queue ids, as replied or as found in delivered files. */
#define IDS_MAX 256
struct ids {
	char id[IDS_MAX][17];
	unsigned n;
	bool overflow;
};

/* Replies as the client sees them. */
struct reply_check {
	char line[REPLY_LINE_MAX + 1];
	size_t len;
	unsigned lines;
	bool continued;		/* the previous line was "NNN-" */
	bool closing;		/* a 221 or 421 was sent: nothing may follow */
	char code[3];
	struct ids queued;	/* "250 2.0.0 Ok: queued as ID" */
	bool eof;
};

static void fuzz_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
fuzz_fail(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(fz.err_fd, "fuzz_smtp_session: ", 19);
	(void)!write(fz.err_fd, buf, (size_t)n);
	abort();
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- Set-up ------------------------------------------------------------ */

static void
make_dir(const char *sub)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", fz.dir, sub);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		fuzz_fail("mkdir %s: %s", path, strerror(errno));
}

static int
remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static void
fuzz_cleanup(void)
{
	if (!fz.ready)
		return;
	fz.ready = false;
	commit_pool_free(&fz.commit);
	while (fz.srv.n_listeners > 0)
		evconnlistener_free(fz.srv.listeners[--fz.srv.n_listeners].listener);
	event_base_free(fz.base);
	config_free(&fz.cfg_fast);
	config_free(&fz.cfg_slow);
	accounts_free(&fz.accounts);
	(void)nftw(fz.dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * A crash ends the process without atexit: remove the state directories
 * of runs whose process is gone (the name holds the pid).
 */
static void
remove_stale_dirs(const char *parent)
{
	size_t pl = strlen(STATE_DIR_PREFIX);
	char path[PATH_MAX], *end;
	struct dirent *de;
	long pid;
	DIR *d;

	d = opendir(parent);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, STATE_DIR_PREFIX, pl) != 0)
			continue;
		pid = strtol(de->d_name + pl, &end, 10);
		if (end == de->d_name + pl || *end != '-' || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", parent, de->d_name);
		(void)nftw(path, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

static int
listen_loopback(void)
{
	struct sockaddr_in sin;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fuzz_fail("socket: %s", strerror(errno));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fd, 1) < 0)
		fuzz_fail("bind/listen 127.0.0.1:0: %s", strerror(errno));
	return fd;
}

/*
 * The server logs several lines per session to stderr, which would drown
 * libFuzzer's output and slow it down: unless asked otherwise, have
 * libFuzzer send its own output (and the sanitizers') to a copy of stderr
 * and point stderr at /dev/null (its documented -close_fd_mask=2).
 */
static void
quiet_server_logs(int *argc, char ***argv)
{
	static char flag[] = "-close_fd_mask=2";
	char **nargv;
	int i;

	if (getenv("TEGAMI_FUZZ_LOG") != NULL)
		return;
	for (i = 1; i < *argc; i++)
		if (strncmp((*argv)[i], "-close_fd_mask=", 15) == 0)
			return;
	/* Lives as long as the process: libFuzzer keeps pointers into it. */
	nargv = calloc((size_t)*argc + 2, sizeof(*nargv));
	if (nargv == NULL)
		abort();
	nargv[0] = (*argv)[0];
	nargv[1] = flag;
	for (i = 1; i < *argc; i++)
		nargv[i + 1] = (*argv)[i];
	nargv[*argc + 1] = NULL;
	*argc += 1;
	*argv = nargv;
}

/* The settings, with the tarpit where the server knows it. */
static void
load_config(struct tegami_config **cfg_r, const char *extra)
{
	char text[4096], err[1024];
	int n, tries;

	for (tries = 0; tries < 2; tries++) {
		n = snprintf(text, sizeof(text), fuzz_config_fmt, fz.dir,
		    extra, tries == 0 ? fuzz_config_tarpit : "");
		if (n < 0 || (size_t)n >= sizeof(text))
			fuzz_fail("config too long");
		if (config_parse("fuzz.conf", text, (size_t)n, cfg_r, err,
		    sizeof(err)) == 0)
			return;
	}
	fuzz_fail("config: %s", err);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[1024];
	const char *tmp;
	int listen_fd;

	fz.err_fd = dup(STDERR_FILENO);
	if (fz.err_fd < 0)
		fz.err_fd = STDERR_FILENO;
	fz.trace = getenv("TEGAMI_FUZZ_TRACE") != NULL;
	quiet_server_logs(argc, argv);
	log_set_role("fuzz");
	signal(SIGPIPE, SIG_IGN);

	/* tmpfs: the disk threads' fsyncs cost nothing there. */
	tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	remove_stale_dirs(tmp);
	snprintf(fz.dir, sizeof(fz.dir), "%s/" STATE_DIR_PREFIX "%ld-XXXXXX",
	    tmp, (long)getpid());
	if (mkdtemp(fz.dir) == NULL)
		fuzz_fail("mkdtemp %s: %s", fz.dir, strerror(errno));
	make_dir("mail");
	make_dir("queue");
	make_dir("queue/incoming");

	load_config(&fz.cfg_fast, fuzz_config_fast);
	load_config(&fz.cfg_slow, fuzz_config_slow);
	if (accounts_parse("users", fuzz_users, strlen(fuzz_users), "aliases",
	    fuzz_aliases, strlen(fuzz_aliases), false, &fz.accounts, err,
	    sizeof(err)) < 0)
		fuzz_fail("accounts: %s", err);

	/* The connection counters, so that their release is checked too. */
	conn_limit_init();
	conn_limit_set_slot(0);

	fz.base = event_base_new();
	if (fz.base == NULL)
		fuzz_fail("event_base_new failed");
	fz.commit = commit_pool_new(fz.base, 1, smtp_session_commit_done);
	/* A real listener that nobody connects to; sessions come from us. */
	listen_fd = listen_loopback();
	smtp_server_init(&fz.srv, fz.base, fz.cfg_fast, fz.accounts, fz.commit);
	smtp_server_listen(&fz.srv, listen_fd, SMTP_SERVICE_MX);
	fz.ready = true;
	fz.baseline_fds = -1;
	atexit(fuzz_cleanup);
	return 0;
}

/* ---- Checks ------------------------------------------------------------ */

/*
 * Descriptors the server could leak: sockets and files under the state
 * directory (pipes are left out: the sanitizers' symbolizer opens some).
 */
static int
count_fds(void)
{
	char path[64], target[PATH_MAX];
	size_t dl = strlen(fz.dir);
	struct dirent *de;
	ssize_t n;
	DIR *d;
	int count = 0;

	d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "socket:", 7) == 0 ||
		    strncmp(target, "anon_inode:", 11) == 0 ||
		    strncmp(target, fz.dir, dl) == 0)
			count++;
	}
	closedir(d);
	return count;
}

/* For the report of a leaked descriptor: what each one is. */
static void
list_fds(void)
{
	char path[PATH_MAX], target[PATH_MAX], line[2 * PATH_MAX];
	struct dirent *de;
	ssize_t n;
	DIR *d;
	int len;

	d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		len = snprintf(line, sizeof(line), "  fd %s -> %s\n",
		    de->d_name, target);
		if (len > 0)
			(void)!write(fz.err_fd, line, (size_t)len);
	}
	closedir(d);
}

static bool
ids_find(const struct ids *ids, const char *id)
{
	unsigned i;

	for (i = 0; i < ids->n; i++)
		if (memcmp(ids->id[i], id, 16) == 0)
			return true;
	return false;
}

static void
ids_add(struct ids *ids, const char *id)
{
	if (ids_find(ids, id))
		return;
	if (ids->n == IDS_MAX) {
		ids->overflow = true;
		return;
	}
	memcpy(ids->id[ids->n], id, 16);
	ids->id[ids->n][16] = '\0';
	ids->n++;
}

static void
reply_line(struct reply_check *rc)
{
	const char *l = rc->line;
	size_t i, len = rc->len;

	if (len < 6 || l[len - 2] != '\r')
		fuzz_fail("reply line without CRLF or text: \"%.*s\"",
		    (int)len, l);
	if (l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
	    l[2] < '0' || l[2] > '9' || (l[3] != ' ' && l[3] != '-'))
		fuzz_fail("malformed reply line: \"%.*s\"", (int)len, l);
	for (i = 0; i < len - 2; i++)
		if ((unsigned char)l[i] < 0x20 || (unsigned char)l[i] > 0x7e)
			fuzz_fail("byte 0x%02x in reply line \"%.*s\"",
			    (unsigned char)l[i], (int)len, l);
	if (rc->closing)
		fuzz_fail("reply after 221/421: \"%.*s\"", (int)len, l);
	/* The banner, or the early talker's (or a limit's) refusal. */
	if (rc->lines == 0 && memcmp(l, "220 ", 4) != 0 &&
	    memcmp(l, "554 ", 4) != 0 && memcmp(l, "421 ", 4) != 0)
		fuzz_fail("first reply is not the banner: \"%.*s\"",
		    (int)len, l);
	if (rc->continued && memcmp(rc->code, l, 3) != 0)
		fuzz_fail("multi-line reply changes code: \"%.*s\"",
		    (int)len, l);
	if (fz.trace)
		(void)!write(fz.err_fd, l, len);
	memcpy(rc->code, l, 3);
	rc->continued = l[3] == '-';
	/* RFC 5321 4.2.2: 221 and 421 close the transmission channel. */
	if (!rc->continued && (memcmp(l, "221", 3) == 0 ||
	    memcmp(l, "421", 3) == 0))
		rc->closing = true;
	if (len > 24 && memcmp(l, "250 2.0.0 Ok: queued as ", 24) == 0) {
		if (len - 26 != 16)
			fuzz_fail("odd queue id in \"%.*s\"", (int)len, l);
		if (ids_find(&rc->queued, l + 24))
			fuzz_fail("queue id replied twice: \"%.*s\"",
			    (int)len, l);
		ids_add(&rc->queued, l + 24);
	}
	rc->lines++;
}

static void
reply_feed(struct reply_check *rc, const char *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (rc->len == REPLY_LINE_MAX)
			fuzz_fail("reply line longer than %d octets: "
			    "\"%.60s...\"", REPLY_LINE_MAX, rc->line);
		rc->line[rc->len++] = buf[i];
		if (buf[i] == '\n') {
			rc->line[rc->len] = '\0';
			reply_line(rc);
			rc->len = 0;
		}
	}
}

/* Reads what the server sent; returns the bytes read. */
static size_t
drain_replies(int fd, struct reply_check *rc)
{
	char buf[16384];
	size_t total = 0;
	ssize_t n;

	if (fd < 0 || rc->eof)
		return 0;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			reply_feed(rc, buf, (size_t)n);
			total += (size_t)n;
			/* A short read emptied the socket: spare a syscall. */
			if ((size_t)n < sizeof(buf))
				return total;
			continue;
		}
		if (n == 0)
			rc->eof = true;
		else if (errno == EINTR)
			continue;
		else if (errno == ECONNRESET)
			rc->eof = true;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			fuzz_fail("recv: %s", strerror(errno));
		return total;
	}
}

struct near_timer {
	struct timeval now;
	bool found;
};

static int
near_timer_cb(const struct event_base *base, const struct event *ev,
    void *arg)
{
	struct near_timer *nt = arg;
	struct timeval tv;
	long long ms;

	(void)base;
	if (!event_pending(ev, EV_TIMEOUT, &tv))
		return 0;
	ms = (long long)(tv.tv_sec - nt->now.tv_sec) * 1000 +
	    (tv.tv_usec - nt->now.tv_usec) / 1000;
	if (ms < NEAR_TIMER_MS) {
		nt->found = true;
		return 1;
	}
	return 0;
}

/* True when a timer is due soon (a tarpit hold, a deferred close). */
static bool
timer_due_soon(void)
{
	struct near_timer nt = { .found = false };

	gettimeofday(&nt.now, NULL);
	event_base_foreach_event(fz.base, near_timer_cb, &nt);
	return nt.found;
}

/* ---- Running the session ----------------------------------------------- */

struct run {
	int fd;			/* our end; -1 once closed */
	struct reply_check rc;
	uint64_t deadline;
	uint64_t phase_deadline;
	unsigned long iterations;
	const char *phase;
};

/* One turn of the event loop, then read what came back. Returns true when
 * something happened (bytes received or events still to run). */
static bool
run_once(struct run *r)
{
	uint64_t now = now_ms();
	size_t got;

	if (++r->iterations > ITERATION_LIMIT || now > r->deadline ||
	    now > r->phase_deadline)
		fuzz_fail("hang: %s after %lu loop iterations (sessions %u, "
		    "commits pending %zu)", r->phase, r->iterations,
		    fz.srv.n_sessions, commit_pending(fz.commit));
	event_base_loop(fz.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	got = drain_replies(r->fd, &r->rc);
	return got > 0 ||
	    event_base_get_num_events(fz.base, EVENT_BASE_COUNT_ACTIVE) > 0;
}

/*
 * Waits until the server has read everything we sent, answered it, and
 * finished any commit: a loop turn in which nothing reached us and no
 * event is left to run, with no unread bytes in the socket, no commit
 * pending and no timer about to fire. (Output the server could not send
 * while the socket was full reaches us in the turn after we read.)
 */
static void
settle(struct run *r)
{
	int outq;

	r->phase = "settling";
	r->phase_deadline = now_ms() + PHASE_LIMIT_MS;
	for (;;) {
		if (run_once(r))
			continue;
		outq = 0;
		if (r->fd >= 0 && !r->rc.eof &&
		    ioctl(r->fd, SIOCOUTQ, &outq) < 0)
			fuzz_fail("SIOCOUTQ: %s", strerror(errno));
		if (outq == 0 && commit_pending(fz.commit) == 0 &&
		    !timer_due_soon())
			return;
		sched_yield();
	}
}

/* Sends one packet, turning the loop while the socket is full. Returns
 * false when the server is gone (no more input can be sent). */
static bool
send_packet(struct run *r, const uint8_t *p, size_t len)
{
	ssize_t n;

	r->phase = "sending";
	r->phase_deadline = now_ms() + PHASE_LIMIT_MS;
	while (len > 0) {
		if (r->rc.eof)
			return false;
		n = send(r->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return false;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)
			fuzz_fail("send: %s", strerror(errno));
		if (!run_once(r))
			sched_yield();
	}
	return true;
}

/* The length of the next packet at p (of len > 0 bytes). */
static size_t
next_packet(unsigned mode, size_t chunk, const uint8_t *p, size_t len,
    size_t *skip_r)
{
	const uint8_t *e;

	*skip_r = 0;
	switch (mode) {
	case FUZZ_MODE_LINES:
		e = memchr(p, '\n', len);
		return e != NULL ? (size_t)(e - p) + 1 : len;
	case FUZZ_MODE_SEPARATED:
		e = memchr(p, FUZZ_SEPARATOR, len);
		if (e == NULL)
			return len;
		*skip_r = 1;
		return (size_t)(e - p);
	case FUZZ_MODE_CHUNKS:
		return chunk < len ? chunk : len;
	default:
		return len;
	}
}

/* ---- Delivered files --------------------------------------------------- */

/*
 * The trace headers a file starts with (smtp_received.c): Return-Path,
 * then Received with its continuation lines, which must hold
 * "by HOSTNAME (tegami) with PROTOCOL id QUEUEID" and no control byte:
 * the HELO name and the addresses in them come from the client. Puts the
 * queue id into id.
 */
static void
check_trace_headers(const char *path, const char *buf, size_t len,
    char id[17])
{
	static const char by[] = "\tby mail.local.test (tegami) with ";
	const char *p, *end, *line, *q;
	size_t i;

	if (len < 16 || memcmp(buf, "Return-Path: <", 14) != 0)
		fuzz_fail("%s: no Return-Path first", path);
	p = strstr(buf, "\r\n");
	if (p == NULL || strncmp(p + 2, "Received: from ", 15) != 0)
		fuzz_fail("%s: no Received header second", path);
	/* The Received field ends before the first line without a tab. */
	for (line = p + 2; ; line = end + 2) {
		end = strstr(line, "\r\n");
		if (end == NULL)
			fuzz_fail("%s: trace headers without an end", path);
		if (end[2] != '\t')
			break;
	}
	end += 2;
	for (i = 0; buf + i < end; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == 0x7f || (c < 0x20 && c != '\r' && c != '\n' &&
		    c != '\t') || (c == '\t' && (i < 2 || buf[i - 1] != '\n')))
			fuzz_fail("%s: byte 0x%02x in the trace headers at %zu",
			    path, c, i);
	}
	q = memmem(p, (size_t)(end - p), by, sizeof(by) - 1);
	if (q == NULL)
		fuzz_fail("%s: Received without \"by ... with\"", path);
	q += sizeof(by) - 1;
	/* ESMTPSA, UTF8SMTPS (RFC 3848, RFC 6531): letters and digits. */
	while (q < end && ((*q >= 'A' && *q <= 'Z') ||
	    (*q >= '0' && *q <= '9')))
		q++;
	if (end - q < 21 || memcmp(q, " id ", 4) != 0)
		fuzz_fail("%s: Received without an id", path);
	q += 4;
	for (i = 0; i < 16; i++)
		if (!((q[i] >= '0' && q[i] <= '9') ||
		    (q[i] >= 'A' && q[i] <= 'F')))
			fuzz_fail("%s: bad queue id in Received", path);
	if (q[16] != ';' && q[16] != '\r')
		fuzz_fail("%s: bad queue id in Received", path);
	memcpy(id, q, 16);
	id[16] = '\0';
}

/*
 * A delivered file must be what the server promised to accept: trace
 * headers first, only CRLF line ends, no NUL, no line over 1000 octets
 * with its CRLF (RFC 5321 4.5.3.1.6), at most 2k of client data, and in a
 * Maildir the size its name gives. BDAT may leave the last line without
 * CRLF (RFC 3030), but not end in a bare CR.
 */
static void
check_message_file(const char *path, const char *name, bool in_maildir,
    char id[17])
{
	static char buf[FILE_CHECK_MAX + 1];
	size_t len = 0, i, line = 0;
	uint64_t named;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fuzz_fail("open %s: %s", path, strerror(errno));
	while (len < sizeof(buf) &&
	    (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len > FILE_SIZE_MAX)
		fuzz_fail("%s: %zu octets, more than message_size_limit "
		    "allows", path, len);
	if (in_maildir && (maildir_name_size(name, &named) < 0 ||
	    named != len))
		fuzz_fail("%s: S= does not match its %zu octets", path, len);
	buf[len] = '\0';
	check_trace_headers(path, buf, len, id);
	if (!in_maildir && (strlen(name) != 20 || memcmp(name, id, 16) != 0))
		fuzz_fail("%s: queue file name and Received id %s differ",
		    path, id);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		line++;
		if (c == '\0')
			fuzz_fail("%s: NUL at %zu", path, i);
		if (c == '\r' && (i + 1 == len || buf[i + 1] != '\n'))
			fuzz_fail("%s: bare CR at %zu", path, i);
		if (c == '\n' && (i == 0 || buf[i - 1] != '\r'))
			fuzz_fail("%s: bare LF at %zu", path, i);
		if (line > 1000)
			fuzz_fail("%s: line over 1000 octets at %zu", path, i);
		if (c == '\n')
			line = 0;
	}
}

enum take { TAKE_MAILDIR, TAKE_QUEUE, TAKE_ANY };

/*
 * Removes the files in dir and returns how many there were; TAKE_MAILDIR
 * checks each one, TAKE_QUEUE checks and counts the .msg files only.
 */
static unsigned
take_files(const char *dir, enum take what, unsigned *envelopes_r,
    struct ids *ids)
{
	char path[PATH_MAX], id[17];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);

		if (de->d_name[0] == '.' || de->d_type == DT_DIR)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (what == TAKE_MAILDIR) {
			check_message_file(path, de->d_name, true, id);
			ids_add(ids, id);
			n++;
		} else if (what == TAKE_QUEUE) {
			if (nl > 4 &&
			    strcmp(de->d_name + nl - 4, ".msg") == 0) {
				check_message_file(path, de->d_name, false,
				    id);
				ids_add(ids, id);
				n++;
			} else if (nl > 4 &&
			    strcmp(de->d_name + nl - 4, ".env") == 0)
				(*envelopes_r)++;
			else
				fuzz_fail("unexpected file %s", path);
		} else
			n++;
		if (unlink(path) < 0)
			fuzz_fail("unlink %s: %s", path, strerror(errno));
	}
	closedir(d);
	return n;
}

/* Every mailbox a message can reach here, and the remote queue: returns
 * the deliveries (files) made since the last call, and their queue ids. */
static unsigned
take_deliveries(struct ids *ids)
{
	static const char *const boxes[] = {
		"local.test/alice", "local.test/bob", "other.test/carol",
	};
	char path[PATH_MAX];
	unsigned files = 0, msgs, envs = 0, i;

	for (i = 0; i < sizeof(boxes) / sizeof(boxes[0]); i++) {
		snprintf(path, sizeof(path), "%s/mail/%s/new", fz.dir,
		    boxes[i]);
		files += take_files(path, TAKE_MAILDIR, NULL, ids);
		snprintf(path, sizeof(path), "%s/mail/%s/tmp", fz.dir,
		    boxes[i]);
		if (take_files(path, TAKE_ANY, NULL, NULL) > 0)
			fuzz_fail("file left in %s", path);
	}
	snprintf(path, sizeof(path), "%s/queue", fz.dir);
	msgs = take_files(path, TAKE_QUEUE, &envs, ids);
	if (msgs != envs)
		fuzz_fail("%u queued messages but %u envelopes", msgs, envs);
	return files + msgs;
}

static void
check_after(const struct run *r, bool settled)
{
	static struct ids delivered;
	char path[PATH_MAX];
	struct sockaddr_in probe;
	const struct ids *queued = &r->rc.queued;
	unsigned i;
	int fds;

	if (commit_pending(fz.commit) != 0)
		fuzz_fail("%zu commits pending after the session ended",
		    commit_pending(fz.commit));
	if (!TAILQ_EMPTY(&fz.srv.sessions))
		fuzz_fail("session list not empty");
	snprintf(path, sizeof(path), "%s/queue/incoming", fz.dir);
	if (take_files(path, TAKE_ANY, NULL, NULL) > 0)
		fuzz_fail("spool file left in %s", path);
	/*
	 * A 250 means delivered; and while every reply was read before EOF,
	 * nothing is delivered without one (after an early EOF, a message
	 * may be delivered with nobody told).
	 */
	memset(&delivered, 0, sizeof(delivered));
	take_deliveries(&delivered);
	for (i = 0; !queued->overflow && !delivered.overflow && i < queued->n;
	    i++)
		if (!ids_find(&delivered, queued->id[i]))
			fuzz_fail("%s: replied \"queued as\" but not delivered",
			    queued->id[i]);
	for (i = 0; settled && !queued->overflow && i < delivered.n; i++)
		if (!ids_find(queued, delivered.id[i]))
			fuzz_fail("%s: delivered without a 250",
			    delivered.id[i]);
	/* The connection slot must be free again (limits of one). */
	memset(&probe, 0, sizeof(probe));
	probe.sin_family = AF_INET;
	probe.sin_addr.s_addr = htonl(0xc0000201);
	if (!conn_limit_acquire((struct sockaddr *)&probe, 1, 1))
		fuzz_fail("connection slot not released");
	conn_limit_release((struct sockaddr *)&probe);
	fds = count_fds();
	if (fz.baseline_fds < 0)
		fz.baseline_fds = fds;
	else if (fds != fz.baseline_fds) {
		list_fds();
		fuzz_fail("%d descriptors open, %d before: one leaked", fds,
		    fz.baseline_fds);
	}
}

static void
shutdown_idle_cb(void *arg)
{
	unsigned *calls = arg;

	(*calls)++;
}

/*
 * After a shutdown: the server must have called idle_cb once, freed its
 * grace timer and listener; then it is set up afresh (a new front
 * process would do the same) for the next input.
 */
static void
server_restart(unsigned idle_calls)
{
	struct tegami_config *cfg = fz.srv.cfg;

	if (idle_calls != 1)
		fuzz_fail("idle_cb called %u times after the shutdown",
		    idle_calls);
	if (fz.srv.grace_timer != NULL)
		fuzz_fail("grace timer left after the last session");
	if (fz.srv.n_listeners != 0)
		fuzz_fail("listener left after the shutdown");
	smtp_server_init(&fz.srv, fz.base, cfg, fz.accounts, fz.commit);
	smtp_server_listen(&fz.srv, listen_loopback(), SMTP_SERVICE_MX);
}

/* Puts the settings for this input in place, as a reload would. */
static void
use_config(struct tegami_config *cfg)
{
	struct tegami_config *old_cfg;

	if (fz.srv.cfg == cfg)
		return;
	smtp_server_reload(&fz.srv, cfg, &old_cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct run r;
	unsigned mode, flags, before;
	size_t chunk, plen, skip;
	socklen_t salen;
	int sv[2];
	bool open_input = true, settled;
	unsigned idle_calls = 0;

	if (size < 1 || !fz.ready)
		return 0;
	mode = data[0] & FUZZ_MODE_MASK;
	flags = data[0];
	chunk = chunk_sizes[(flags >> FUZZ_CHUNK_SHIFT) & 7];
	if (mode == FUZZ_MODE_CHUNKS)
		flags &= ~(unsigned)(FUZZ_IPV6 | FUZZ_TALK_EARLY |
		    FUZZ_TALK_FIRST);
	data++;
	size--;
	memset(&r, 0, sizeof(r));
	r.deadline = now_ms() + WALL_LIMIT_MS;
	r.phase_deadline = r.deadline;
	use_config(flags & FUZZ_SLOW ? fz.cfg_slow : fz.cfg_fast);

	memset(&ss, 0, sizeof(ss));
	if (flags & FUZZ_IPV6) {
		sin6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr);
		sin6->sin6_port = htons(49152);
		salen = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(0xc0000201);	/* 192.0.2.1 */
		sin->sin_port = htons(49152);
		salen = sizeof(*sin);
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) < 0)
		fuzz_fail("socketpair: %s", strerror(errno));
	r.fd = sv[1];
	before = fz.srv.n_sessions;
	if ((flags & FUZZ_TALK_FIRST) && size > 0) {
		/* Nobody reads yet: no more than the socket surely holds. */
		plen = next_packet(mode, chunk, data, size, &skip);
		if (plen > FIRST_PACKET_MAX) {
			plen = FIRST_PACKET_MAX;
			skip = 0;
		}
		if (plen > 0 && !send_packet(&r, data, plen))
			fuzz_fail("the first packet was refused");
		data += plen + skip;
		size -= plen + skip;
	}
	smtp_session_start(&fz.srv, sv[0], (struct sockaddr *)&ss, salen,
	    SMTP_SERVICE_MX);
	if (fz.srv.n_sessions != before + 1)
		fuzz_fail("session refused");
	if (!(flags & FUZZ_TALK_EARLY))
		settle(&r);

	while (size > 0 && open_input) {
		plen = next_packet(mode, chunk, data, size, &skip);
		if (plen == 0 && skip > 0 && !fz.srv.shutting_down) {
			/* As SIGTERM does (smtp_server_shutdown). */
			r.phase = "shutting down";
			smtp_server_shutdown(&fz.srv, shutdown_idle_cb,
			    &idle_calls);
		}
		if (plen > 0 && !send_packet(&r, data, plen))
			open_input = false;
		data += plen + skip;
		size -= plen + skip;
		if (size == 0 && (flags & FUZZ_EARLY_EOF))
			break;
		settle(&r);
	}
	settled = !(flags & FUZZ_EARLY_EOF) || !open_input;

	/* The end of the input: the session must end by itself. */
	if (flags & FUZZ_CLOSE) {
		close(r.fd);
		r.fd = -1;
	} else if (shutdown(r.fd, SHUT_WR) < 0)
		fuzz_fail("shutdown: %s", strerror(errno));
	r.phase = "waiting for the session to end after EOF";
	r.phase_deadline = now_ms() + PHASE_LIMIT_MS;
	while (fz.srv.n_sessions != before)
		if (!run_once(&r))
			sched_yield();
	/* libevent may finish freeing the bufferevent a turn later. */
	settle(&r);
	if (r.fd >= 0) {
		drain_replies(r.fd, &r.rc);
		if (!r.rc.eof)
			fuzz_fail("server side of the socket still open");
		if (r.rc.len != 0)
			fuzz_fail("last reply line without LF: \"%.*s\"",
			    (int)r.rc.len, r.rc.line);
		if (r.rc.continued)
			fuzz_fail("multi-line reply without its last line");
		close(r.fd);
		r.fd = -1;
	}
	if (fz.srv.shutting_down)
		server_restart(idle_calls);
	check_after(&r, settled);
	return 0;
}
