/*
 * `tegami sendmail` (docs/sendmail.md): the sendmail(8) interface that
 * cron, scripts and PHP's mail() use. Makes stdin an RFC 5322 message
 * (sendmail_parse.c) and hands it to the running queue process over
 * STATE/run/pickup (queue_pickup.c has the protocol); exits 0 only when
 * the queue process has answered that the message is on disk. Exit
 * statuses are sendmail's, from sysexits.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/sendmail_parse.h"
#include "core/config.h"
#include "core/util.h"
#include "queue/queue_envelope.h"

#define PICKUP_NAME "pickup"
#define PICKUP_TIMEOUT_SECONDS 120	/* the queue fsyncs, no more */
#define PICKUP_REPLY_MAX 1024
/* Raw input beyond message_size_limit that may still shrink to fit (a
 * From_ line, Bcc fields); more is refused without reading it all. */
#define INPUT_SLACK (64 * 1024)
#define READ_CHUNK 65536

static const char *progname = "tegami sendmail";

static void
sm_usage(void)
{
	fprintf(stderr, "usage: sendmail [-t] [-i] [-f SENDER] [-F NAME] "
	    "[-v] [--] [ADDRESS...] < MESSAGE\n"
	    "       (tegami [-c CONF] sendmail ...; as \"sendmail\", CONF "
	    "is $TEGAMI_CONFIG or the default)\n");
}

static void
sm_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sm_warnx(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- Recipients ------------------------------------------------------ */

struct rcpt_set {
	char **v;
	size_t n;
};

static int
rcpt_add(struct rcpt_set *rs, const char *addr)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i], addr) == 0)
			return 0;
	if (rs->n >= QUEUE_RECIPIENTS_MAX) {
		sm_warnx("more than %d recipients", QUEUE_RECIPIENTS_MAX);
		return -1;
	}
	rs->v = xreallocarray(rs->v, rs->n + 1, sizeof(*rs->v));
	rs->v[rs->n++] = xstrdup(addr);
	return 0;
}

static void
rcpt_free(struct rcpt_set *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		free(rs->v[i]);
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}

/* Each mailbox of list, qualified with domain, into rs; EX_* or 0. */
static int
rcpt_add_list(struct rcpt_set *rs, const struct sendmail_addrs *list,
    const char *domain, const char *where)
{
	char addr[SENDMAIL_ADDRESS_MAX + 1], err[512];
	size_t i;

	for (i = 0; i < list->n; i++) {
		if (sendmail_mailbox_format(&list->v[i], domain, addr,
		    sizeof(addr), err, sizeof(err)) < 0) {
			sm_warnx("%s: %s", where, err);
			return EX_DATAERR;
		}
		if (rcpt_add(rs, addr) < 0)
			return EX_DATAERR;
	}
	return 0;
}

/* ---- The message from stdin ------------------------------------------ */

/*
 * Reads stdin until EOF or, without -i, the line "." (not waiting for
 * an EOF that a caller may never send). 0, EX_DATAERR when over max,
 * EX_IOERR on a read error.
 */
static int
read_input(bool ignore_dots, size_t max, char **buf_r, size_t *len_r)
{
	size_t len = 0, cap = READ_CHUNK, scan = 0;
	char *buf = xmalloc(cap);
	ssize_t n;

	for (;;) {
		if (cap - len < READ_CHUNK) {
			cap *= 2;
			buf = xreallocarray(buf, cap, 1);
		}
		n = read(STDIN_FILENO, buf + len, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sm_warnx("reading the message: %s", strerror(errno));
			free(buf);
			return EX_IOERR;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (!ignore_dots && sendmail_find_dot_line(buf, len, &scan)) {
			len = scan;	/* the "." line ends it */
			break;
		}
		if (len > max) {
			sm_warnx("the message is larger than "
			    "message_size_limit (%zu octets); not sent",
			    max - INPUT_SLACK);
			free(buf);
			return EX_DATAERR;
		}
	}
	*buf_r = buf;
	*len_r = len;
	return 0;
}

/* ---- Talking to the queue process ------------------------------------ */

static int
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One reply line (without its CR LF) into line; -1 on EOF, error or
 * timeout (errno EAGAIN). The server sends nothing unasked, so no byte
 * after the line can be lost by reading in blocks. */
static int
read_reply(int fd, char *line, size_t size)
{
	size_t len = 0;
	ssize_t r;
	char *lf;

	while (len < size - 1) {
		r = recv(fd, line + len, size - 1 - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			return -1;
		}
		len += (size_t)r;
		line[len] = '\0';
		if ((lf = memchr(line, '\n', len)) != NULL) {
			*lf = '\0';
			if (lf > line && lf[-1] == '\r')
				lf[-1] = '\0';
			return 0;
		}
	}
	errno = EMSGSIZE;
	return -1;
}

/* The exit status for a refusal "perm X.Y.Z text" (RFC 3463 codes). */
static int
perm_status(const char *code)
{
	if (strncmp(code, "5.1.1", 5) == 0 || strncmp(code, "5.1.6", 5) == 0)
		return EX_NOUSER;
	if (strncmp(code, "5.1.3", 5) == 0 || strncmp(code, "5.1.7", 5) == 0 ||
	    strncmp(code, "5.3.4", 5) == 0 || strncmp(code, "5.6.", 4) == 0)
		return EX_DATAERR;
	if (strncmp(code, "5.5.", 4) == 0)
		return EX_SOFTWARE;	/* we spoke the protocol wrong */
	return EX_UNAVAILABLE;
}

/* Maps a reply that is not "ok"/"go" to an exit status, saying why. */
static int
reply_status(const char *reply)
{
	char shown[PICKUP_REPLY_MAX];
	size_t i;

	snprintf(shown, sizeof(shown), "%s", reply);
	for (i = 0; shown[i] != '\0'; i++)
		if ((unsigned char)shown[i] < 0x20 || shown[i] == 0x7f)
			shown[i] = '?';
	if (strncmp(reply, "perm ", 5) == 0) {
		sm_warnx("refused: %s", shown + 5);
		return perm_status(reply + 5);
	}
	if (strncmp(reply, "temp ", 5) == 0) {
		sm_warnx("not queued, try again later: %s", shown + 5);
		return EX_TEMPFAIL;
	}
	sm_warnx("unexpected reply from the queue process: \"%s\"", shown);
	return EX_SOFTWARE;
}

/* Connects to STATE/run/pickup (through /proc/self/fd when the path is
 * too long for sun_path). -1 with a message: nothing was sent. */
static int
pickup_connect(const struct tegami_config *cfg)
{
	struct timeval tv = { PICKUP_TIMEOUT_SECONDS, 0 };
	char run[PATH_MAX], path[PATH_MAX];
	struct sockaddr_un sun;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct stat st;
	int fd = -1, run_fd = -1, saved;

	if (path_join(run, sizeof(run), "%s/run", cfg->state_dir) < 0 ||
	    path_join(path, sizeof(path), "%s/%s", run, PICKUP_NAME) < 0) {
		sm_warnx("%s: path too long", cfg->state_dir);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path_join(sun.sun_path, sizeof(sun.sun_path), "%s", path) < 0) {
		run_fd = open(run, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (run_fd < 0 || path_join(sun.sun_path,
		    sizeof(sun.sun_path), "/proc/self/fd/%d/%s", run_fd,
		    PICKUP_NAME) < 0)
			goto not_running;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		sm_warnx("socket: %s", strerror(errno));
		goto fail;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		saved = errno;
		if (saved == ENOENT || saved == ECONNREFUSED ||
		    saved == ENOTDIR)
			goto not_running;
		sm_warnx("%s: %s", path, strerror(saved));
		goto fail;
	}
	/*
	 * Only the queue process may get the message: whoever serves the
	 * socket must be root or own run/ (the user tegami runs as), so
	 * that a socket someone else managed to put there is refused.
	 */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
	    stat(run, &st) < 0) {
		sm_warnx("%s: %s", path, strerror(errno));
		goto fail;
	}
	if (cred.uid != 0 && cred.uid != st.st_uid) {
		sm_warnx("%s is served by uid %u, which owns neither %s nor "
		    "is root; not sending", path, (unsigned)cred.uid, run);
		goto fail;
	}
	if (run_fd >= 0)
		close(run_fd);
	return fd;

 not_running:
	sm_warnx("tegami is not running (no queue process at %s); the "
	    "message was not queued", path);
 fail:
	if (fd >= 0)
		close(fd);
	if (run_fd >= 0)
		close(run_fd);
	return -1;
}

/* Appends the line "KEY VALUE\n" (VALUE may be NULL). */
static void
buf_line(char **buf, size_t *len, const char *key, const char *value)
{
	size_t k = strlen(key), v = value != NULL ? strlen(value) : 0;

	*buf = xreallocarray(*buf, *len + k + v + 2, 1);
	memcpy(*buf + *len, key, k);
	*len += k;
	if (value != NULL) {
		(*buf)[(*len)++] = ' ';
		memcpy(*buf + *len, value, v);
		*len += v;
	}
	(*buf)[(*len)++] = '\n';
}

/* Hands the message over; the exit status. */
static int
pickup_submit(const struct tegami_config *cfg, const char *sender,
    const struct rcpt_set *rs, const char *head, size_t head_len,
    const char *body, size_t body_len, bool verbose)
{
	char reply[PICKUP_REPLY_MAX], size[32], *env = NULL, *x;
	size_t env_len = 0, i;
	int fd, status;

	x = sender[0] != '\0' ? queue_xtext_encode(sender, strlen(sender)) :
	    xstrdup("<>");
	buf_line(&env, &env_len, "sender", x);
	free(x);
	for (i = 0; i < rs->n; i++) {
		x = queue_xtext_encode(rs->v[i], strlen(rs->v[i]));
		buf_line(&env, &env_len, "recipient", x);
		free(x);
	}
	snprintf(size, sizeof(size), "%zu", head_len + body_len);
	buf_line(&env, &env_len, "size", size);
	buf_line(&env, &env_len, "data", NULL);

	if ((fd = pickup_connect(cfg)) < 0) {
		free(env);
		return EX_TEMPFAIL;
	}
	/* A refusal (a recipient, the size) may come before "go": even
	 * when sending failed, read what the queue process said. */
	(void)send_all(fd, env, env_len);
	free(env);
	if (read_reply(fd, reply, sizeof(reply)) < 0)
		goto lost;
	if (strcmp(reply, "go") != 0) {
		status = reply_status(reply);
		close(fd);
		return status;
	}
	if (send_all(fd, head, head_len) < 0 ||
	    send_all(fd, body, body_len) < 0 ||
	    read_reply(fd, reply, sizeof(reply)) < 0)
		goto lost;
	close(fd);
	if (strncmp(reply, "ok ", 3) == 0 && queue_id_valid(reply + 3)) {
		if (verbose)
			fprintf(stderr, "%s: queued as %s\n", progname,
			    reply + 3);
		return 0;
	}
	return reply_status(reply);

 lost:
	sm_warnx("the queue process did not confirm the message (%s); it "
	    "was not queued", errno == EAGAIN || errno == EWOULDBLOCK ?
	    "no answer in time" : strerror(errno));
	close(fd);
	return EX_TEMPFAIL;
}

/* ---- The command ----------------------------------------------------- */

/* The default sender: the login name at the first local domain. */
static int
default_sender(const struct passwd *pw, const char *domain, char *out,
    size_t outsize)
{
	struct sendmail_mailbox mb;
	char err[512];

	if (pw == NULL) {
		sm_warnx("uid %u has no user name; give the sender with -f",
		    (unsigned)getuid());
		return EX_NOUSER;
	}
	memset(&mb, 0, sizeof(mb));
	if (strlen(pw->pw_name) > SMTP_LOCALPART_MAX ||
	    pw->pw_name[0] == '\0') {
		sm_warnx("the user name \"%s\" cannot be an address; give the "
		    "sender with -f", pw->pw_name);
		return EX_NOUSER;
	}
	memcpy(mb.local, pw->pw_name, strlen(pw->pw_name) + 1);
	if (sendmail_mailbox_format(&mb, domain, out, outsize, err,
	    sizeof(err)) < 0) {
		sm_warnx("the user name \"%s\" cannot be an address (%s); give "
		    "the sender with -f", pw->pw_name, err);
		return EX_NOUSER;
	}
	return 0;
}

/* The full name for a From: field: -F, else $NAME, else the gecos. */
static void
full_name(const struct sendmail_options *o, const struct passwd *pw,
    char *out, size_t outsize)
{
	const char *env = getenv("NAME");
	size_t i;

	out[0] = '\0';
	if (o->full_name != NULL) {
		snprintf(out, outsize, "%s", o->full_name);
		return;
	}
	if (env != NULL && env[0] != '\0' && strlen(env) < outsize &&
	    strlen(env) <= SENDMAIL_NAME_MAX) {
		for (i = 0; env[i] != '\0'; i++)
			if ((unsigned char)env[i] < 0x20 || env[i] == 0x7f)
				break;
		if (env[i] == '\0') {
			snprintf(out, outsize, "%s", env);
			return;
		}
	}
	if (pw != NULL)
		sendmail_gecos_name(pw->pw_gecos, pw->pw_name, out, outsize);
}

/* The message as it will be queued: head (new) and body (in msg). */
static int
build_message(const struct tegami_config *cfg,
    const struct sendmail_options *o, const struct passwd *pw,
    const char *sender, struct rcpt_set *rs, char **msg_r, size_t *len_r,
    char **head_r, size_t *head_len_r, size_t *body_off_r)
{
	struct sendmail_headers h;
	char *raw = NULL, *msg = NULL, err[512], name[SENDMAIL_NAME_MAX + 1];
	char from_addr[SENDMAIL_ADDRESS_MAX + 1], from[4096], date[64];
	char mid[SMTP_DOMAIN_MAX + 64], rnd[17];
	size_t raw_len, len, max = (size_t)cfg->message_size_limit;
	const char *domain = cfg->domains[0];
	int status;

	memset(&h, 0, sizeof(h));
	status = read_input(o->ignore_dots, max + INPUT_SLACK, &raw,
	    &raw_len);
	if (status != 0)
		return status;
	if (sendmail_normalize(raw, raw_len, o->ignore_dots, max, &msg, &len,
	    err, sizeof(err)) < 0) {
		free(raw);
		sm_warnx("%s; not sent", err);
		return EX_DATAERR;
	}
	free(raw);
	if (sendmail_headers_scan(msg, len, o->extract, QUEUE_RECIPIENTS_MAX,
	    &h, err, sizeof(err)) < 0) {
		sm_warnx("%s; not sent", err);
		status = EX_DATAERR;
		goto done;
	}
	if (o->extract && (status = rcpt_add_list(rs, &h.rcpts, domain,
	    "in the header")) != 0)
		goto done;
	if (rs->n == 0) {
		if (o->extract)
			sm_warnx("no recipient addresses found in the header");
		else {
			sm_warnx("no recipients: give addresses, or -t");
			sm_usage();
		}
		status = o->extract ? EX_DATAERR : EX_USAGE;
		goto done;
	}
	full_name(o, pw, name, sizeof(name));
	if (sender[0] != '\0')
		snprintf(from_addr, sizeof(from_addr), "%s", sender);
	else {
		/* the null sender: the user's name would mislabel it */
		snprintf(from_addr, sizeof(from_addr), "MAILER-DAEMON@%s",
		    domain);
		if (o->full_name == NULL)
			name[0] = '\0';
	}
	if (sendmail_format_from(name, from_addr, from, sizeof(from)) ==
	    (size_t)-1 && sendmail_format_from(NULL, from_addr, from,
	    sizeof(from)) == (size_t)-1) {
		sm_warnx("cannot make a From: field for <%s>", from_addr);
		status = EX_SOFTWARE;
		goto done;
	}
	rfc5322_date(date, sizeof(date));
	queue_id_new(rnd);
	snprintf(mid, sizeof(mid), "<%llu.%s@%s>",
	    (unsigned long long)time(NULL), rnd, cfg->hostname);
	*head_r = sendmail_compose_head(&h, len, from, date, mid, head_len_r);
	if (*head_r == NULL) {
		sm_warnx("cannot add the missing header fields");
		status = EX_SOFTWARE;
		goto done;
	}
	if (*head_len_r + (len - h.body_offset) > max) {
		sm_warnx("the message is larger than message_size_limit (%zu "
		    "octets); not sent", max);
		free(*head_r);
		*head_r = NULL;
		status = EX_DATAERR;
		goto done;
	}
	*body_off_r = h.body_offset;
	*msg_r = msg;
	*len_r = len;
	msg = NULL;
	status = 0;
 done:
	sendmail_headers_free(&h);
	free(msg);
	return status;
}

int
cli_sendmail(const char *conf_path, int argc, char **argv)
{
	struct sendmail_options o;
	struct tegami_config *cfg = NULL;
	struct rcpt_set rs = { NULL, 0 };
	struct passwd *pw;
	char err[1024], sender[SENDMAIL_ADDRESS_MAX + 1];
	char *msg = NULL, *head = NULL;
	size_t len = 0, head_len = 0, body_off = 0, i;
	int status;

	if (sendmail_options_parse(argc, argv, &o, err, sizeof(err)) < 0) {
		sm_warnx("%s", err);
		sm_usage();
		sendmail_options_free(&o);
		return EX_USAGE;
	}
	if (o.mode == SENDMAIL_MODE_NOOP) {
		/* newaliases: tegami reads aliases by itself (docs). */
		sendmail_options_free(&o);
		return 0;
	}
	if (config_load(conf_path, &cfg, err, sizeof(err)) < 0) {
		sm_warnx("%s", err);
		sendmail_options_free(&o);
		return EX_CONFIG;
	}
	pw = getpwuid(getuid());
	if (o.sender != NULL) {
		if (sendmail_sender_parse(o.sender, cfg->domains[0], sender,
		    sizeof(sender), err, sizeof(err)) < 0) {
			sm_warnx("-f %s: %s", o.sender, err);
			status = EX_DATAERR;
			goto done;
		}
	} else if ((status = default_sender(pw, cfg->domains[0], sender,
	    sizeof(sender))) != 0)
		goto done;
	for (i = 0; i < o.n_rcpt_args; i++) {
		struct sendmail_addrs list = { 0 };

		if (sendmail_address_list_parse(o.rcpt_args[i],
		    strlen(o.rcpt_args[i]), QUEUE_RECIPIENTS_MAX, &list, err,
		    sizeof(err)) < 0) {
			sm_warnx("recipient \"%s\": %s", o.rcpt_args[i], err);
			sendmail_addrs_free(&list);
			status = EX_DATAERR;
			goto done;
		}
		status = rcpt_add_list(&rs, &list, cfg->domains[0],
		    "recipient");
		sendmail_addrs_free(&list);
		if (status != 0)
			goto done;
	}
	status = build_message(cfg, &o, pw, sender, &rs, &msg, &len, &head,
	    &head_len, &body_off);
	if (status != 0)
		goto done;
	status = pickup_submit(cfg, sender, &rs, head, head_len,
	    msg + body_off, len - body_off, o.verbose);
 done:
	free(head);
	free(msg);
	rcpt_free(&rs);
	sendmail_options_free(&o);
	config_free(&cfg);
	return status;
}
