/*
 * `tegami queue list|show|flush|delete|bounce`: list and show read the
 * envelopes in STATE_DIR/queue/ (queue_envelope.h, versions 1 and 2) and
 * the message's header section (RFC 5322 2.1); flush, delete and bounce
 * ask the running queue process over STATE_DIR/run/queue-control
 * (docs/queue.md), so that they never race a delivery in flight.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/util.h"
#include "queue/queue_envelope.h"

#define QUEUE_DIR_NAME "queue"
#define CONTROL_PATH_NAME "run/queue-control"
#define QUEUE_NAME_SHOWN_MAX 64
#define LIST_DIAG_SHOWN_MAX 200		/* diagnostic bytes in list */
#define SHOW_HEADERS_MAX (64 * 1024)	/* header bytes show reads */
#define CONTROL_REPLY_MAX 1024		/* bytes the client takes */
#define CONTROL_TIMEOUT_SECONDS 60	/* a bounce fsyncs a few files */
#define ENVELOPE_WHY_MAX (PATH_MAX + 512)

struct qentry {
	char *id;		/* the file name without .msg / .env */
	bool has_msg, has_env;
	off_t size;		/* of ID.msg */
	time_t mtime;		/* of ID.msg, else of ID.env */
};

struct qlist {
	struct qentry *v;
	size_t n, cap;
};

static const char *const rcpt_states[] = {
	[QUEUE_RCPT_PENDING] = "pending",
	[QUEUE_RCPT_DELIVERED] = "delivered",
	[QUEUE_RCPT_FAILED] = "failed",
};

static const char *const bodies[] = {
	[QUEUE_BODY_7BIT] = "7bit",
	[QUEUE_BODY_8BITMIME] = "8bitmime",
	[QUEUE_BODY_BINARYMIME] = "binarymime",
};

static int
queue_usage(void)
{
	fprintf(stderr,
	    "usage: tegami [-c CONF] queue list\n"
	    "       tegami [-c CONF] queue show ID\n"
	    "       tegami [-c CONF] queue flush [ID]\n"
	    "       tegami [-c CONF] queue delete ID\n"
	    "       tegami [-c CONF] queue bounce ID\n");
	return 2;
}

/* Names, addresses and headers come from files and the network: show only
 * printable ASCII (and tabs when tab is true), the rest as '?'. */
static void
print_safe_tab(const char *s, size_t n, bool tab)
{
	size_t i;

	for (i = 0; i < n; i++)
		putchar(((unsigned char)s[i] >= ' ' &&
		    (unsigned char)s[i] < 0x7f) || (tab && s[i] == '\t') ?
		    s[i] : '?');
}

static void
print_safe(const char *s, size_t n)
{
	print_safe_tab(s, n, false);
}

static void
print_str(const char *s)
{
	print_safe(s, strlen(s));
}

static int
queue_dir_path(const struct tegami_config *cfg, char *dir, size_t dirsize)
{
	if (path_join(dir, dirsize, "%s/%s", cfg->state_dir,
	    QUEUE_DIR_NAME) == -1) {
		fprintf(stderr, "tegami: %s: path too long\n", cfg->state_dir);
		return -1;
	}
	return 0;
}

static bool
id_argument_ok(const char *id)
{
	if (queue_id_valid(id))
		return true;
	fputs("tegami: bad queue id \"", stderr);
	for (; *id != '\0'; id++)
		fputc((unsigned char)*id >= ' ' && (unsigned char)*id < 0x7f ?
		    *id : '?', stderr);
	fputs("\" (16 upper-case hex digits, as queue list shows)\n",
	    stderr);
	return false;
}

/* ---- Times ------------------------------------------------------------- */

/* "42s", "3m05s", "2h03m", "4d05h". */
static void
format_span(long long s, char *out, size_t outsize)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, outsize, "%llds", s);
	else if (s < 3600)
		snprintf(out, outsize, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, outsize, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		snprintf(out, outsize, "%lldd%02lldh", s / 86400,
		    s / 3600 % 24);
}

static void
format_age(time_t now, time_t then, char *out, size_t outsize)
{
	format_span(now > then ? (long long)(now - then) : 0, out, outsize);
}

/* "2026-11-27 20:30:55 +0000" in local time. */
static void
format_time(uint64_t t, char *out, size_t outsize)
{
	time_t tt = t > (uint64_t)INT64_MAX ? (time_t)INT64_MAX : (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(out, outsize, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(out, outsize, "%llu", (unsigned long long)t);
}

/* "in 59m12s" or "now" (also when it is past). */
static void
format_next(time_t now, uint64_t next, char *out, size_t outsize)
{
	char span[32];

	if (next <= (uint64_t)now) {
		snprintf(out, outsize, "now");
		return;
	}
	format_span(next - (uint64_t)now > (uint64_t)LLONG_MAX ? LLONG_MAX :
	    (long long)(next - (uint64_t)now), span, sizeof(span));
	snprintf(out, outsize, "in %s", span);
}

/* ---- The queue directory ----------------------------------------------- */

static struct qentry *
qlist_get(struct qlist *l, const char *id, size_t len)
{
	struct qentry *e;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strlen(l->v[i].id) == len && memcmp(l->v[i].id, id,
		    len) == 0)
			return &l->v[i];
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	e->id = xmalloc(len + 1);
	memcpy(e->id, id, len);
	e->id[len] = '\0';
	return e;
}

/* Collects the regular files ID.msg and ID.env directly in dir. */
static int
queue_scan(const char *dir, struct qlist *l)
{
	struct dirent *de;
	struct stat st;
	struct qentry *e;
	DIR *d;
	size_t len;
	bool msg;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "tegami: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 4 || de->d_name[0] == '.')
			continue;
		if (strcmp(de->d_name + len - 4, ".msg") == 0)
			msg = true;
		else if (strcmp(de->d_name + len - 4, ".env") == 0)
			msg = false;
		else
			continue;
		/* Not followed: a link or a directory (incoming/ is the
		 * spool) is no queued message. */
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)	/* delivered meanwhile */
				continue;
			fprintf(stderr, "tegami: %s/%s: %s\n", dir, de->d_name,
			    strerror(errno));
			closedir(d);
			return 1;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		e = qlist_get(l, de->d_name, len - 4);
		if (msg) {
			e->has_msg = true;
			e->size = st.st_size;
			e->mtime = st.st_mtime;
		} else {
			e->has_env = true;
			if (!e->has_msg)
				e->mtime = st.st_mtime;
		}
	}
	if (errno != 0) {
		fprintf(stderr, "tegami: %s: %s\n", dir, strerror(errno));
		closedir(d);
		return 1;
	}
	closedir(d);
	return 0;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct qentry *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->id, y->id);
}


/*
 * Loads dir/ID.env. On failure: why says what is wrong, without the path
 * the loader puts first, and "malformed" (what tegami would not write) or
 * "unreadable" (an I/O error) in kind.
 */
static int
envelope_load(const char *dir, const char *id, struct queue_envelope *env,
    char *why, size_t whysize, const char **kind_r)
{
	char err[PATH_MAX + 256], prefix[PATH_MAX];
	const char *p = err;
	size_t n;
	int saved;

	if (queue_envelope_load(dir, id, env, err, sizeof(err)) == 0)
		return 0;
	saved = errno;
	queue_envelope_free(env);
	if (path_join(prefix, sizeof(prefix), "%s/%s.env: ", dir, id) == 0 &&
	    strncmp(err, prefix, strlen(prefix)) == 0)
		p += strlen(prefix);
	/* The parser's "LINE: what" reads better as "line LINE: what". */
	n = strspn(p, "0123456789");
	snprintf(why, whysize, "%s%s", saved == EINVAL && n > 0 &&
	    p[n] == ':' ? "line " : "", p);
	*kind_r = saved == EINVAL || saved == EFBIG ? "malformed" :
	    "unreadable";
	errno = saved;
	return -1;
}

static time_t
clamp_time(uint64_t t)
{
	return t > (uint64_t)INT64_MAX ? (time_t)INT64_MAX : (time_t)t;
}

/*
 * "  recipient <ADDR> STATE" and, when known, the last attempt's time,
 * the remote host, the status and the diagnostic (cut at diag_max bytes
 * in the list, with "..." to say so).
 */
static void
print_rcpt(const struct queue_rcpt *r, time_t now, size_t diag_max)
{
	char when[64], age[32];
	size_t n;

	fputs("  recipient <", stdout);
	print_str(r->address);
	printf("> %s", rcpt_states[r->state]);
	if (r->time != 0) {
		format_time(r->time, when, sizeof(when));
		format_age(now, clamp_time(r->time), age, sizeof(age));
		printf("  last attempt %s (%s ago)", when, age);
	}
	if (r->remote != NULL) {
		fputs("  remote ", stdout);
		print_str(r->remote);
	}
	if (r->status[0] != '\0') {
		fputs("  status ", stdout);
		print_str(r->status);
	}
	if (r->diagnostic != NULL) {
		n = strlen(r->diagnostic);
		fputs("  \"", stdout);
		print_safe(r->diagnostic, n < diag_max ? n : diag_max);
		fputs(n > diag_max ? "...\"" : "\"", stdout);
	}
	putchar('\n');
}

static void
print_sender(const struct queue_envelope *env)
{
	fputs("  sender <", stdout);
	print_str(env->sender);
	fputs(">\n", stdout);
}

/* ---- queue list -------------------------------------------------------- */

static void
print_entry(const char *dir, const struct qentry *e, time_t now)
{
	struct queue_envelope env;
	const char *kind = NULL;
	char age[32], next[48], why[ENVELOPE_WHY_MAX];
	bool valid = queue_id_valid(e->id), loaded = false;
	size_t i;

	if (e->has_env && valid)
		loaded = envelope_load(dir, e->id, &env, why, sizeof(why),
		    &kind) == 0;
	print_safe(e->id, strlen(e->id) < QUEUE_NAME_SHOWN_MAX ?
	    strlen(e->id) : QUEUE_NAME_SHOWN_MAX);
	if (strlen(e->id) > QUEUE_NAME_SHOWN_MAX)
		printf("...");
	if (!valid)
		printf(" (not a tegami queue id)");
	if (e->has_msg)
		printf("  size %lld", (long long)e->size);
	else
		printf("  message file missing");
	format_age(now, loaded ? clamp_time(env.created) : e->mtime, age,
	    sizeof(age));
	printf("  age %s", age);
	if (loaded) {
		format_next(now, env.next_attempt, next, sizeof(next));
		printf("  attempts %u  next attempt %s", env.attempts, next);
	}
	putchar('\n');
	if (!e->has_env) {
		printf("  envelope missing (no .env file)\n");
		return;
	}
	if (!valid) {
		printf("  envelope not read (not a tegami queue id)\n");
		return;
	}
	if (!loaded) {
		printf("  envelope %s: ", kind);
		print_str(why);
		putchar('\n');
		return;
	}
	print_sender(&env);
	for (i = 0; i < env.n_rcpts; i++)
		print_rcpt(&env.rcpts[i], now, LIST_DIAG_SHOWN_MAX);
	queue_envelope_free(&env);
}

static int
queue_list(const struct tegami_config *cfg)
{
	struct qlist l = { NULL, 0, 0 };
	char dir[PATH_MAX];
	size_t i, n_msgs = 0;
	time_t now = time(NULL);
	int rc;

	if (queue_dir_path(cfg, dir, sizeof(dir)) < 0)
		return 1;
	if ((rc = queue_scan(dir, &l)) == 0) {
		if (l.n > 0)	/* qsort(NULL, 0, ...) is undefined */
			qsort(l.v, l.n, sizeof(*l.v), cmp_entry);
		for (i = 0; i < l.n; i++) {
			if (i > 0)
				putchar('\n');
			print_entry(dir, &l.v[i], now);
			if (l.v[i].has_msg)
				n_msgs++;
		}
		if (l.n == 0)
			printf("queue is empty\n");
		else
			printf("\n%zu message%s\n", n_msgs,
			    n_msgs == 1 ? "" : "s");
		rc = cli_stdout_done();
	}
	for (i = 0; i < l.n; i++)
		free(l.v[i].id);
	free(l.v);
	return rc;
}

/* ---- queue show -------------------------------------------------------- */

/*
 * The header section of dir/ID.msg (up to the empty line), each line
 * indented, at most SHOW_HEADERS_MAX bytes of it. 0, or -1 when the file
 * cannot be read (said on stdout).
 */
static int
print_headers(const char *dir, const char *id)
{
	char path[PATH_MAX], *buf, *p, *end, *nl;
	struct stat st;
	size_t len = 0, n;
	ssize_t r = 0;
	bool blank = false;
	int fd;

	printf("headers:\n");
	if (path_join(path, sizeof(path), "%s/%s.msg", dir, id) == -1)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		printf("  message file %s\n", fd == -1 ? strerror(errno) :
		    "is not a regular file");
		if (fd != -1)
			close(fd);
		return -1;
	}
	buf = xmalloc(SHOW_HEADERS_MAX);
	while (len < SHOW_HEADERS_MAX) {
		r = read(fd, buf + len, SHOW_HEADERS_MAX - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (r == -1) {
		printf("  message file: %s\n", strerror(errno));
		free(buf);
		return -1;
	}
	for (p = buf, end = buf + len; p < end; p = nl + 1) {
		/* Without LF: the file ends, or the limit cuts this line. */
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (nl != end && n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0 && nl != end) {
			blank = true;	/* the end of the header section */
			break;
		}
		fputs("  ", stdout);
		print_safe_tab(p, n, true);
		putchar('\n');
		if (nl == end)
			break;
	}
	/* Stopped by the limit, not by the empty line: say so. */
	if (!blank && len == SHOW_HEADERS_MAX)
		printf("  ... (headers cut at %d KiB)\n",
		    SHOW_HEADERS_MAX / 1024);
	free(buf);
	return 0;
}

static int
queue_show(const struct tegami_config *cfg, const char *id)
{
	struct queue_envelope env;
	const char *kind = NULL;
	char dir[PATH_MAX], path[PATH_MAX], when[64], age[32], next[48];
	char why[ENVELOPE_WHY_MAX];
	struct stat st;
	time_t now = time(NULL);
	bool has_msg, has_env;
	size_t i;
	int rc = 0;

	if (!id_argument_ok(id))
		return 1;
	if (queue_dir_path(cfg, dir, sizeof(dir)) < 0)
		return 1;
	has_msg = path_join(path, sizeof(path), "%s/%s.msg", dir, id) == 0 &&
	    lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	has_env = path_join(path, sizeof(path), "%s/%s.env", dir, id) == 0 &&
	    lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (!has_msg && !has_env) {
		fprintf(stderr, "tegami: no message %s in the queue\n", id);
		return 1;
	}
	printf("queue id %s\n", id);
	if (has_msg && path_join(path, sizeof(path), "%s/%s.msg", dir,
	    id) == 0 && stat(path, &st) == 0)
		printf("  size %lld\n", (long long)st.st_size);
	if (!has_env) {
		printf("  envelope missing (no .env file)\n");
		rc = 1;
	} else if (envelope_load(dir, id, &env, why, sizeof(why),
	    &kind) < 0) {
		printf("  envelope %s: ", kind);
		print_str(why);
		putchar('\n');
		rc = 1;
	} else {
		format_time(env.created, when, sizeof(when));
		format_age(now, clamp_time(env.created), age, sizeof(age));
		printf("  created %s (%s ago)\n", when, age);
		print_sender(&env);
		if (env.auth != NULL) {
			fputs("  submitted by ", stdout);
			print_str(env.auth);
			putchar('\n');
		}
		printf("  body %s  smtputf8 %s\n", bodies[env.body],
		    env.smtputf8 ? "yes" : "no");
		format_next(now, env.next_attempt, next, sizeof(next));
		printf("  attempts %u  next attempt %s", env.attempts, next);
		if (env.next_attempt > (uint64_t)now) {
			format_time(env.next_attempt, when, sizeof(when));
			printf(" (%s)", when);
		}
		printf("  delay warning %s\n", env.warned ? "sent" :
		    "not sent");
		for (i = 0; i < env.n_rcpts; i++)
			print_rcpt(&env.rcpts[i], now, QUEUE_DIAGNOSTIC_MAX);
		queue_envelope_free(&env);
	}
	if (has_msg) {
		if (print_headers(dir, id) < 0)
			rc = 1;
	} else {
		printf("  message file missing\n");
		rc = 1;
	}
	if (cli_stdout_done() != 0)
		return 1;
	return rc;
}

/* ---- The control socket ------------------------------------------------ */

enum control_result {
	CONTROL_REPLIED,	/* reply holds the server's line */
	CONTROL_NOT_RUNNING,	/* nothing listens there (said on stderr
				 * only when quiet is false) */
	CONTROL_FAILED,		/* said on stderr */
};

/*
 * Sends "REQUEST\n" to STATE/run/queue-control and reads the one reply
 * line (bounded in size and time). The path goes through
 * /proc/self/fd/N when it is too long for sun_path.
 */
static enum control_result
control_request(const struct tegami_config *cfg, const char *request,
    bool quiet, char *reply, size_t replysize)
{
	struct sockaddr_un sun;
	struct timeval tv = { CONTROL_TIMEOUT_SECONDS, 0 };
	char path[PATH_MAX], run[PATH_MAX], line[128];
	size_t len = 0;
	ssize_t r;
	int fd, run_fd = -1, n;

	if (path_join(path, sizeof(path), "%s/%s", cfg->state_dir,
	    CONTROL_PATH_NAME) == -1 ||
	    path_join(run, sizeof(run), "%s/run", cfg->state_dir) == -1) {
		fprintf(stderr, "tegami: %s: path too long\n", cfg->state_dir);
		return CONTROL_FAILED;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path_join(sun.sun_path, sizeof(sun.sun_path), "%s", path) == -1) {
		run_fd = open(run, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (run_fd == -1 || path_join(sun.sun_path,
		    sizeof(sun.sun_path), "/proc/self/fd/%d/queue-control",
		    run_fd) == -1)
			goto not_running;
	}
	n = snprintf(line, sizeof(line), "%s\n", request);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		fprintf(stderr, "tegami: request too long\n");
		goto fail_run;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "tegami: socket: %s\n", strerror(errno));
		goto fail_run;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int saved = errno;

		close(fd);
		if (saved == ENOENT || saved == ECONNREFUSED ||
		    saved == ENOTDIR)
			goto not_running;
		fprintf(stderr, "tegami: %s: %s%s\n", path, strerror(saved),
		    saved == EACCES ? " (run as root or as the user tegami "
		    "runs as)" : "");
		goto fail_run;
	}
	if (run_fd != -1)
		close(run_fd);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		fprintf(stderr, "tegami: %s: %s\n", path, strerror(errno));
		close(fd);
		return CONTROL_FAILED;
	}
	while (len < replysize - 1) {
		r = recv(fd, reply + len, replysize - 1 - len, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (memchr(reply, '\n', len) != NULL)
			break;
	}
	close(fd);
	reply[len] = '\0';
	if (r == -1 || strchr(reply, '\n') == NULL) {
		fprintf(stderr, "tegami: %s: %s\n", path, r == -1 ?
		    (errno == EAGAIN ? "no reply in time" : strerror(errno)) :
		    "no complete reply from the queue process");
		return CONTROL_FAILED;
	}
	*strchr(reply, '\n') = '\0';
	return CONTROL_REPLIED;

 not_running:
	if (run_fd != -1)
		close(run_fd);
	if (!quiet)
		fprintf(stderr, "tegami: tegami is not running (no %s)\n",
		    path);
	return CONTROL_NOT_RUNNING;
 fail_run:
	if (run_fd != -1)
		close(run_fd);
	return CONTROL_FAILED;
}

/* Prints an "ok ..." reply on stdout (0), anything else on stderr (1). */
static int
control_print(const char *reply)
{
	if (strncmp(reply, "ok ", 3) == 0) {
		print_str(reply + 3);
		putchar('\n');
		return cli_stdout_done();
	}
	fputs("tegami: ", stderr);
	for (; *reply != '\0'; reply++)
		fputc((unsigned char)*reply >= ' ' &&
		    (unsigned char)*reply < 0x7f ? *reply : '?', stderr);
	fputc('\n', stderr);
	return 1;
}

static int
queue_control(const struct tegami_config *cfg, const char *cmd,
    const char *id)
{
	char request[64], reply[CONTROL_REPLY_MAX];

	if (id != NULL && !id_argument_ok(id))
		return 1;
	snprintf(request, sizeof(request), "%s%s%s", cmd, id != NULL ? " " :
	    "", id != NULL ? id : "");
	switch (control_request(cfg, request, false, reply, sizeof(reply))) {
	case CONTROL_REPLIED:
		return control_print(reply);
	case CONTROL_NOT_RUNNING:
	case CONTROL_FAILED:
		break;
	}
	return 1;
}

/* Unlinks dir/ID.EXT; 1 when it was there, 0 when not, -1 on error. */
static int
remove_file(const char *dir, const char *id, const char *ext)
{
	char path[PATH_MAX];

	if (path_join(path, sizeof(path), "%s/%s.%s", dir, id, ext) == -1)
		return -1;
	if (unlink(path) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	fprintf(stderr, "tegami: %s: %s\n", path, strerror(errno));
	return -1;
}

/*
 * `queue delete ID` while no queue process runs (also one that keeps
 * crashing on a message): the files go directly, the envelope first, as
 * queue_remove does. A queue process that starts meanwhile is asked to
 * delete it as well, which cancels an attempt it may have begun.
 */
static int
queue_delete_offline(const struct tegami_config *cfg, const char *id)
{
	char dir[PATH_MAX], request[64], reply[CONTROL_REPLY_MAX];
	int env, msg;

	if (queue_dir_path(cfg, dir, sizeof(dir)) < 0)
		return 1;
	env = remove_file(dir, id, "env");
	msg = remove_file(dir, id, "msg");
	if (env < 0 || msg < 0)
		return 1;
	if (fsync_dir(dir) == -1) {
		fprintf(stderr, "tegami: fsync %s: %s\n", dir,
		    strerror(errno));
		return 1;
	}
	snprintf(request, sizeof(request), "delete %s", id);
	if (control_request(cfg, request, true, reply, sizeof(reply)) ==
	    CONTROL_REPLIED) {
		/* It started meanwhile: "no message" is what we expect. */
		if (strncmp(reply, "ok ", 3) == 0)
			env = 1;
		else if (strncmp(reply, "error no message ", 17) != 0)
			return control_print(reply);
	}
	if (env == 0 && msg == 0) {
		fprintf(stderr, "tegami: no message %s in the queue\n", id);
		return 1;
	}
	printf("delete %s: removed (tegami is not running)\n", id);
	return cli_stdout_done();
}

static int
queue_delete(const struct tegami_config *cfg, const char *id)
{
	char request[64], reply[CONTROL_REPLY_MAX];

	if (!id_argument_ok(id))
		return 1;
	snprintf(request, sizeof(request), "delete %s", id);
	switch (control_request(cfg, request, true, reply, sizeof(reply))) {
	case CONTROL_REPLIED:
		return control_print(reply);
	case CONTROL_NOT_RUNNING:
		return queue_delete_offline(cfg, id);
	case CONTROL_FAILED:
		break;
	}
	return 1;
}

int
cli_queue(const struct tegami_config *cfg, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return queue_list(cfg);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return queue_show(cfg, argv[2]);
	if ((argc == 2 || argc == 3) && strcmp(argv[1], "flush") == 0)
		return queue_control(cfg, "flush", argc == 3 ? argv[2] : NULL);
	if (argc == 3 && strcmp(argv[1], "delete") == 0)
		return queue_delete(cfg, argv[2]);
	if (argc == 3 && strcmp(argv[1], "bounce") == 0)
		return queue_control(cfg, "bounce", argv[2]);
	return queue_usage();
}
