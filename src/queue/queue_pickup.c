/*
 * The local submission socket of `tegami sendmail` (queue_private.h,
 * docs/sendmail.md): STATE/run/pickup, a unix stream socket every local
 * user may connect to. A message handed over here gets its trace fields
 * (Return-Path, Received; RFC 5321 4.4) and is made durable in queue/
 * like any other before the client hears "ok", then delivered at once.
 *
 * The protocol (its lines parsed by queue_request.c): the client sends
 * lines (LF or CR LF, at most PICKUP_LINE_MAX octets), addresses in
 * xtext (RFC 3461 4):
 *
 *   sender ADDRESS        once; "sender <>" is the null sender
 *   recipient ADDRESS     1 to QUEUE_RECIPIENTS_MAX times
 *   size N                once: the octets that follow "data"
 *   data
 *
 * and the server answers "data" with "go"; the client then sends exactly
 * N octets: the message, CR LF lines of at most 998 octets (RFC 5322
 * 2.1.1), no NUL, no CR or LF alone, ending in CR LF. The server reads
 * all N octets, then answers one line: "ok QUEUEID" once the message and
 * its envelope are fsync'd, or "perm X.Y.Z TEXT" (refused, do not retry)
 * or "temp X.Y.Z TEXT" (try again later), and closes. A bad command, a
 * refused address or a size over message_size_limit gets "perm ..." (an
 * unknown local user 5.1.1) at once, instead of "go", and the
 * connection is closed; so does a line over PICKUP_LINE_MAX. Replies end
 * in CR LF and are at most 1024 octets.
 *
 * Who is submitting: the peer's uid (SO_PEERCRED) is logged and goes into
 * the Received field. Any user may set the envelope sender (-f), since
 * web applications and mailing scripts need to (Postfix allows it too);
 * when someone other than root and the queue's own user sets one that is
 * not their own login name at a local domain, the message gets
 * Sendmail's "X-Authentication-Warning: HOST: USER set sender to ADDRESS
 * using -f", so that a recipient can see the sender was claimed, not
 * proven.
 *
 * Bounds: PICKUP_CLIENTS_MAX connections at once (more wait in the listen
 * backlog: the listener pauses), PICKUP_TIMEOUT_SECONDS of silence, the
 * message streamed to an unnamed file in queue/incoming, never held in
 * memory. Connections are accepted only once the account list has come
 * from the auth process, so recipients can be checked.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "auth/recipient.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/io.h"
#include "queue/queue_private.h"
#include "queue/queue_request.h"
#include "smtp/smtp_address.h"

#define PICKUP_NAME "pickup"
#define PICKUP_CLIENTS_MAX 64
#define PICKUP_BACKLOG 128
#define PICKUP_LINE_MAX 2048		/* "recipient " + 320 octets xtext'd */
#define PICKUP_INPUT_MAX 65536		/* buffered from one client */
#define PICKUP_TIMEOUT_SECONDS 60
#define PICKUP_TEXT_LINE_MAX 998	/* RFC 5322 2.1.1, without CR LF */
#define PICKUP_READY_POLL_MS 50
#define PICKUP_USER_MAX 32

enum pickup_state {
	PICKUP_ENVELOPE = 0,
	PICKUP_DATA,
	PICKUP_DONE,		/* replied; closing */
};

struct pickup_client {
	TAILQ_ENTRY(pickup_client) entry;
	struct queue_pickup *p;
	struct io *io;
	uid_t uid;
	pid_t pid;
	char user[PICKUP_USER_MAX + 1];	/* login name, "" if none */
	enum pickup_state state;
	struct queue_envelope env;	/* sender, recipients so far */
	bool have_sender, have_size;
	uint64_t size, received;
	int fd;				/* the unnamed file, or -1 */
	int write_errno;		/* the first write error */
	/* The checks of the message's bytes. */
	const char *data_err;		/* the first problem, or NULL */
	uint64_t line_no;
	size_t line_len;
	bool cr, eight_bit;
};

TAILQ_HEAD(pickup_clients, pickup_client);

struct queue_pickup {
	struct queue_server *qs;
	int fd;				/* listening socket, until listener */
	struct evconnlistener *listener;
	struct event *ready_ev;		/* waits for the account list */
	struct event *kick_ev;		/* starts new messages' delivery */
	char (*kick)[17];		/* ids waiting for kick_ev */
	size_t n_kick;
	struct pickup_clients clients;
	unsigned n_clients;
	bool accepting;
	char path[PATH_MAX];
	dev_t dev;			/* of our socket file, to unlink */
	ino_t ino;			/* only ours */
};

static void pickup_client_free(struct pickup_client *c);

/* ---- Replies ---------------------------------------------------------- */

static void
pickup_finish(struct pickup_client *c, const char *reply)
{
	char esc[256];

	if (strncmp(reply, "ok ", 3) != 0)
		log_info("pickup: uid=%u user=%s refused: %s",
		    (unsigned)c->uid, c->user[0] ? c->user : "-",
		    log_escape(reply, strlen(reply), esc, sizeof(esc)));
	io_reply(c->io, reply);
	c->state = PICKUP_DONE;
	if (c->fd >= 0) {
		close(c->fd);	/* unnamed: it vanishes */
		c->fd = -1;
	}
	io_close_after_flush(c->io);
}

/* ---- The envelope ----------------------------------------------------- */

static void
pickup_sender(struct pickup_client *c, const char *arg, size_t len)
{
	char formatted[QUEUE_ADDRESS_MAX + 1];
	const char *err;

	if (c->have_sender) {
		pickup_finish(c, "perm 5.5.1 sender given twice");
		return;
	}
	if ((err = queue_request_pickup_sender(arg, len, formatted,
	    sizeof(formatted))) != NULL) {
		pickup_finish(c, err);
		return;
	}
	c->env.sender = xstrdup(formatted);
	c->have_sender = true;
}

static void
pickup_recipient(struct pickup_client *c, const char *arg, size_t len)
{
	struct queue_server *qs = c->p->qs;
	struct recipient_list list = { 0 };
	struct smtp_address addr;
	char formatted[QUEUE_ADDRESS_MAX + 1], reply[512];
	const char *err;
	size_t i;

	if (c->env.n_rcpts >= QUEUE_RECIPIENTS_MAX) {
		pickup_finish(c, "perm 5.5.3 too many recipients");
		return;
	}
	if ((err = queue_request_pickup_address(arg, len, &addr, formatted,
	    sizeof(formatted))) != NULL) {
		pickup_finish(c, err);
		return;
	}
	/* As for an authenticated user: other domains are fine; a local
	 * address must exist now rather than bounce later. */
	err = recipient_resolve(qs->cfg, qs->accounts, &addr, true, &list);
	recipient_list_clear(&list);
	if (err != NULL) {
		/* "550 5.1.1 <x>: ..." -> "perm 5.1.1 <x>: ..." */
		snprintf(reply, sizeof(reply), "%s %s", err[0] == '4' ?
		    "temp" : "perm", strlen(err) > 4 ? err + 4 : err);
		pickup_finish(c, reply);
		return;
	}
	for (i = 0; i < c->env.n_rcpts; i++)
		if (strcmp(c->env.rcpts[i].address, formatted) == 0)
			return;
	c->env.rcpts = xreallocarray(c->env.rcpts, c->env.n_rcpts + 1,
	    sizeof(*c->env.rcpts));
	memset(&c->env.rcpts[c->env.n_rcpts], 0, sizeof(*c->env.rcpts));
	c->env.rcpts[c->env.n_rcpts++].address = xstrdup(formatted);
}

static void
pickup_size(struct pickup_client *c, const char *arg, size_t len)
{
	const char *err;

	if (c->have_size) {
		pickup_finish(c, "perm 5.5.1 size given twice");
		return;
	}
	if ((err = queue_request_pickup_size(arg, len,
	    c->p->qs->cfg->message_size_limit, &c->size)) != NULL) {
		pickup_finish(c, err);
		return;
	}
	c->have_size = true;
}

/* Whether sender is the submitting user's own address (login@local). */
static bool
pickup_sender_is_own(const struct pickup_client *c)
{
	const char *at = strrchr(c->env.sender, '@');

	if (c->user[0] == '\0' || at == NULL)
		return false;
	return (size_t)(at - c->env.sender) == strlen(c->user) &&
	    strncasecmp(c->env.sender, c->user, strlen(c->user)) == 0 &&
	    config_is_local_domain(c->p->qs->cfg, at + 1);
}

/* Return-Path, Received and perhaps X-Authentication-Warning. */
static char *
pickup_trace(struct pickup_client *c, size_t *len_r)
{
	const struct tegami_config *cfg = c->p->qs->cfg;
	char date[64], *out;
	size_t size;
	int n, m = 0;

	rfc5322_date(date, sizeof(date));
	size = 2 * strlen(c->env.sender) + 3 * strlen(cfg->hostname) +
	    strlen(date) + PICKUP_USER_MAX + 256;
	out = xmalloc(size);
	n = snprintf(out, size, "Return-Path: <%s>\r\n"
	    "Received: by %s (tegami, from userid %u)\r\n"
	    "\tid %s; %s\r\n", c->env.sender, cfg->hostname,
	    (unsigned)c->uid, c->env.queue_id, date);
	if (n > 0 && (size_t)n < size && c->uid != 0 && c->uid != getuid() &&
	    !pickup_sender_is_own(c)) {
		char who[PICKUP_USER_MAX + 16];

		if (c->user[0] != '\0')
			snprintf(who, sizeof(who), "%s", c->user);
		else
			snprintf(who, sizeof(who), "uid %u", (unsigned)c->uid);
		m = snprintf(out + n, size - (size_t)n,
		    "X-Authentication-Warning: %s: %s set sender to <%s> "
		    "using -f\r\n", cfg->hostname, who, c->env.sender);
	}
	if (n < 0 || m < 0 || (size_t)n + (size_t)m >= size)
		fatalx("pickup: trace fields do not fit");
	*len_r = (size_t)n + (size_t)m;
	return out;
}

static bool
pickup_disk_low(struct queue_server *qs, uint64_t size)
{
	struct statvfs sv;
	uint64_t need = qs->cfg->min_free_space;

	if (statvfs(qs->queue_dir, &sv) < 0)
		return false;
	if (size < UINT64_MAX - need)
		need += size;
	return (uint64_t)sv.f_bavail * sv.f_frsize < need;
}

static void pickup_data_end(struct pickup_client *c);

static void
pickup_data(struct pickup_client *c)
{
	struct queue_server *qs = c->p->qs;
	char *trace;
	size_t tlen;

	if (!c->have_sender || c->env.n_rcpts == 0 || !c->have_size) {
		pickup_finish(c, "perm 5.5.1 data before sender, recipient "
		    "and size");
		return;
	}
	if (pickup_disk_low(qs, c->size)) {
		log_warnx("pickup: less than min_free_space left in %s",
		    qs->queue_dir);
		pickup_finish(c, "temp 4.3.1 insufficient system storage");
		return;
	}
	queue_id_new(c->env.queue_id);
	c->fd = open(qs->incoming_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC,
	    0600);
	if (c->fd < 0) {
		log_warn("pickup: temporary file in %s", qs->incoming_dir);
		pickup_finish(c, "temp 4.3.0 cannot write to the queue");
		return;
	}
	trace = pickup_trace(c, &tlen);
	if (write_all(c->fd, trace, tlen) < 0)
		c->write_errno = errno;
	free(trace);
	c->state = PICKUP_DATA;
	c->line_no = 1;
	io_reply(c->io, "go");
	if (c->size == 0)
		pickup_data_end(c);
}

static void
pickup_command(struct pickup_client *c, const char *line, size_t len)
{
	struct queue_request_pickup req;
	const char *err;

	if ((err = queue_request_pickup_parse(line, len, &req)) != NULL) {
		pickup_finish(c, err);
		return;
	}
	switch (req.verb) {
	case QUEUE_REQUEST_SENDER:
		pickup_sender(c, req.arg, req.arg_len);
		break;
	case QUEUE_REQUEST_RECIPIENT:
		pickup_recipient(c, req.arg, req.arg_len);
		break;
	case QUEUE_REQUEST_SIZE:
		pickup_size(c, req.arg, req.arg_len);
		break;
	case QUEUE_REQUEST_DATA:
		pickup_data(c);
		break;
	}
}

/* ---- The message ------------------------------------------------------ */

/* Checks one piece of the message (see the protocol above). */
static void
pickup_check(struct pickup_client *c, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && c->data_err == NULL; i++) {
		unsigned char b = p[i];

		if (c->cr) {
			if (b != '\n') {
				c->data_err = "perm 5.6.0 a CR not followed "
				    "by LF";
				break;
			}
			c->cr = false;
			c->line_len = 0;
			c->line_no++;
			continue;
		}
		if (b == '\r') {
			c->cr = true;
			continue;
		}
		if (b == '\n')
			c->data_err = "perm 5.6.0 a LF without its CR";
		else if (b == '\0')
			c->data_err = "perm 5.6.0 a NUL byte";
		else if (++c->line_len > PICKUP_TEXT_LINE_MAX)
			c->data_err = "perm 5.6.0 a line over 998 characters";
		if (b >= 0x80)
			c->eight_bit = true;
	}
}

static void
pickup_kick_add(struct queue_pickup *p, const char *id)
{
	struct timeval now = { 0, 0 };

	p->kick = xreallocarray(p->kick, p->n_kick + 1, sizeof(*p->kick));
	snprintf(p->kick[p->n_kick++], sizeof(p->kick[0]), "%s", id);
	evtimer_add(p->kick_ev, &now);
}

/* Makes the message durable in queue/ as queue_inject does: the
 * content linked into place and fsync'd, then the envelope. */
static void
pickup_commit(struct pickup_client *c)
{
	struct queue_server *qs = c->p->qs;
	char path[PATH_MAX], err[256], esc[QUEUE_ADDRESS_MAX * 4 + 8];
	char reply[64];
	size_t i;

	if (fsync(c->fd) < 0 || path_join(path, sizeof(path), "%s/%s.msg",
	    qs->queue_dir, c->env.queue_id) < 0 || fd_link(c->fd, path) < 0) {
		log_warn("pickup: id=%s cannot store the message",
		    c->env.queue_id);
		pickup_finish(c, errno == ENOSPC || errno == EDQUOT ?
		    "temp 4.3.1 insufficient system storage" :
		    "temp 4.3.0 cannot write to the queue");
		return;
	}
	close(c->fd);
	c->fd = -1;
	c->env.created = queue_now();
	c->env.body = c->eight_bit ? QUEUE_BODY_8BITMIME : QUEUE_BODY_7BIT;
	for (i = 0; c->env.sender[i] != '\0'; i++)
		if ((unsigned char)c->env.sender[i] >= 0x80)
			c->env.smtputf8 = true;
	for (i = 0; i < c->env.n_rcpts; i++) {
		const char *a = c->env.rcpts[i].address;

		for (; *a != '\0'; a++)
			if ((unsigned char)*a >= 0x80)
				c->env.smtputf8 = true;
	}
	if (queue_envelope_store(qs->queue_dir, &c->env, err,
	    sizeof(err)) < 0) {
		log_warnx("pickup: id=%s %s", c->env.queue_id, err);
		if (unlink(path) < 0)
			log_warn("pickup: unlink %s", path);
		pickup_finish(c, "temp 4.3.0 cannot write to the queue");
		return;
	}
	log_info("pickup: id=%s uid=%u user=%s pid=%ld from=<%s> nrcpt=%zu "
	    "size=%llu", c->env.queue_id, (unsigned)c->uid,
	    c->user[0] ? c->user : "-", (long)c->pid,
	    log_escape(c->env.sender, strlen(c->env.sender), esc,
	    sizeof(esc)), c->env.n_rcpts, (unsigned long long)c->size);
	snprintf(reply, sizeof(reply), "ok %s", c->env.queue_id);
	pickup_finish(c, reply);
	queue_msg_add(qs, c->env.queue_id, 0);
	pickup_kick_add(c->p, c->env.queue_id);
}

static void
pickup_data_end(struct pickup_client *c)
{
	char reply[128];

	if (c->data_err == NULL && (c->cr || c->line_len > 0))
		c->data_err = "perm 5.6.0 the message does not end with CR LF";
	if (c->data_err != NULL) {
		snprintf(reply, sizeof(reply), "%s (line %llu)", c->data_err,
		    (unsigned long long)c->line_no);
		pickup_finish(c, reply);
	} else if (c->write_errno != 0) {
		errno = c->write_errno;
		log_warn("pickup: id=%s writing the message", c->env.queue_id);
		pickup_finish(c, c->write_errno == ENOSPC ||
		    c->write_errno == EDQUOT ? "temp 4.3.1 insufficient "
		    "system storage" : "temp 4.3.0 cannot write to the queue");
	} else
		pickup_commit(c);
}

/* ---- The connection ---------------------------------------------------- */

static void
pickup_input(void *arg)
{
	struct pickup_client *c = arg;
	const char *p;
	char *line;
	size_t len, take;

	while (c->state == PICKUP_ENVELOPE) {
		switch (io_get_line(c->io, PICKUP_LINE_MAX, &line, &len)) {
		case IO_LINE_NONE:
			return;
		case IO_LINE_TOO_LONG:
			pickup_finish(c, "perm 5.5.2 line too long");
			return;
		case IO_LINE_OK:
			pickup_command(c, line, len);
			break;
		}
	}
	while (c->state == PICKUP_DATA &&
	    (p = io_input_peek(c->io, &len)) != NULL && len > 0) {
		take = c->size - c->received < len ?
		    (size_t)(c->size - c->received) : len;
		pickup_check(c, (const unsigned char *)p, take);
		if (c->data_err == NULL && c->write_errno == 0 &&
		    write_all(c->fd, p, take) < 0)
			c->write_errno = errno;
		io_input_drain(c->io, take);
		c->received += take;
		if (c->received == c->size)
			pickup_data_end(c);
	}
}

static void
pickup_event(void *arg, enum io_event ev)
{
	struct pickup_client *c = arg;

	if (c->state == PICKUP_DATA)
		log_info("pickup: uid=%u user=%s %s after %llu of %llu octets; "
		    "nothing queued", (unsigned)c->uid,
		    c->user[0] ? c->user : "-", ev == IO_EVENT_TIMEOUT ?
		    "timeout" : "connection lost",
		    (unsigned long long)c->received,
		    (unsigned long long)c->size);
	pickup_client_free(c);
}

static const struct io_callbacks pickup_io_callbacks = {
	pickup_input,
	pickup_event,
};

static void
pickup_listen_update(struct queue_pickup *p)
{
	bool want = p->n_clients < PICKUP_CLIENTS_MAX &&
	    p->qs->accounts != NULL && !p->qs->stopping;

	if (want == p->accepting || p->listener == NULL)
		return;
	if (want)
		evconnlistener_enable(p->listener);
	else
		evconnlistener_disable(p->listener);
	p->accepting = want;
}

static void
pickup_client_free(struct pickup_client *c)
{
	struct queue_pickup *p = c->p;

	TAILQ_REMOVE(&p->clients, c, entry);
	p->n_clients--;
	io_free(&c->io);
	if (c->fd >= 0)
		close(c->fd);
	queue_envelope_free(&c->env);
	free(c);
	pickup_listen_update(p);
}

static void
pickup_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct queue_pickup *p = arg;
	struct pickup_client *c;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct passwd *pw;
	size_t i;

	(void)l;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		log_warn("pickup: SO_PEERCRED");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->p = p;
	c->fd = -1;
	c->uid = cred.uid;
	c->pid = cred.pid;
	/* The name only shows who it was; never trusted beyond that. */
	if ((pw = getpwuid(cred.uid)) != NULL &&
	    strlen(pw->pw_name) <= PICKUP_USER_MAX) {
		snprintf(c->user, sizeof(c->user), "%s", pw->pw_name);
		for (i = 0; c->user[i] != '\0'; i++)
			if ((unsigned char)c->user[i] <= 0x20 ||
			    (unsigned char)c->user[i] >= 0x7f)
				c->user[0] = '\0';
	}
	c->io = io_new(p->qs->base, fd, PICKUP_INPUT_MAX, &pickup_io_callbacks,
	    c);
	io_set_timeout(c->io, PICKUP_TIMEOUT_SECONDS);
	TAILQ_INSERT_TAIL(&p->clients, c, entry);
	p->n_clients++;
	pickup_listen_update(p);
}

static void
pickup_accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	log_warn("pickup: accept");
}

/* Starts the deliveries of messages just queued, after the reply went. */
static void
pickup_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_pickup *p = arg;
	struct queue_server *qs = p->qs;
	struct queue_msg *m;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < p->n_kick; i++) {
		if (qs->stopping || qs->accounts == NULL)
			break;
		m = queue_msg_lookup(qs, p->kick[i]);
		if (m != NULL && m->attempt == NULL && !m->gone &&
		    m->next_attempt <= queue_now())
			queue_attempt_start(qs, m);
	}
	free(p->kick);
	p->kick = NULL;
	p->n_kick = 0;
}

static void
pickup_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_pickup *p = arg;
	struct timeval tv = { 0, PICKUP_READY_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	pickup_listen_update(p);
	if (!p->accepting && !p->qs->stopping)
		evtimer_add(p->ready_ev, &tv);
}

/* ---- Start and stop ---------------------------------------------------- */

/* sun for path, through /proc/self/fd/N of the directory when the path
 * is too long for sun_path (*dir_fd_r is then to be closed). */
static int
pickup_sockaddr(const char *dir, struct sockaddr_un *sun, int *dir_fd_r)
{
	char path[PATH_MAX];

	*dir_fd_r = -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (path_join(path, sizeof(path), "%s/%s", dir, PICKUP_NAME) < 0)
		return -1;
	if (path_join(sun->sun_path, sizeof(sun->sun_path), "%s", path) == 0)
		return 0;
	*dir_fd_r = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dir_fd_r < 0)
		return -1;
	return path_join(sun->sun_path, sizeof(sun->sun_path),
	    "/proc/self/fd/%d/%s", *dir_fd_r, PICKUP_NAME);
}

/* Binds and listens; -1 with err. A socket left by a dead queue process
 * is replaced; one that answers belongs to a live one: an error. */
static int
pickup_bind(struct queue_pickup *p, const char *run, char *err,
    size_t errsize)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd = -1, probe, dir_fd, saved;

	if (pickup_sockaddr(run, &sun, &dir_fd) < 0) {
		snprintf(err, errsize, "pickup: %s: %s", p->path,
		    strerror(errno));
		return -1;
	}
	if (lstat(sun.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsize, "pickup: %s exists and is not "
			    "a socket", p->path);
			goto fail;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(probe);
			snprintf(err, errsize, "pickup: %s is served by another "
			    "running tegami", p->path);
			goto fail;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(sun.sun_path) < 0 && errno != ENOENT) {
			snprintf(err, errsize, "pickup: unlink %s: %s",
			    p->path, strerror(errno));
			goto fail;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(sun.sun_path, 0666) < 0 || lstat(sun.sun_path, &st) < 0 ||
	    listen(fd, PICKUP_BACKLOG) < 0) {
		saved = errno;
		snprintf(err, errsize, "pickup: %s: %s", p->path,
		    strerror(saved));
		goto fail;
	}
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	p->fd = fd;
	if (dir_fd >= 0)
		close(dir_fd);
	return 0;
 fail:
	if (fd >= 0)
		close(fd);
	if (dir_fd >= 0)
		close(dir_fd);
	return -1;
}

int
queue_pickup_start(struct queue_server *qs, char *err, size_t errsize)
{
	struct queue_pickup *p;
	char run[PATH_MAX];

	if (path_join(run, sizeof(run), "%s/run", qs->cfg->state_dir) < 0) {
		snprintf(err, errsize, "pickup: %s: path too long",
		    qs->cfg->state_dir);
		return -1;
	}
	/* The parent makes run/ (as root, owned by us); a server started
	 * without root has none to make it for it. */
	if (mkdir(run, 0755) == 0) {
		/* every local user must reach the socket, whatever umask */
		if (chmod(run, 0755) < 0) {
			snprintf(err, errsize, "pickup: chmod %s: %s", run,
			    strerror(errno));
			return -1;
		}
	} else if (errno != EEXIST) {
		snprintf(err, errsize, "pickup: mkdir %s: %s", run,
		    strerror(errno));
		return -1;
	}
	p = xcalloc(1, sizeof(*p));
	p->qs = qs;
	p->fd = -1;
	TAILQ_INIT(&p->clients);
	if (path_join(p->path, sizeof(p->path), "%s/%s", run,
	    PICKUP_NAME) < 0 || pickup_bind(p, run, err, errsize) < 0) {
		if (err[0] == '\0')
			snprintf(err, errsize, "pickup: %s: path too long",
			    run);
		free(p);
		return -1;
	}
	p->listener = evconnlistener_new(qs->base, pickup_accept_cb, p,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED,
	    0, p->fd);
	p->ready_ev = evtimer_new(qs->base, pickup_ready_cb, p);
	p->kick_ev = evtimer_new(qs->base, pickup_kick_cb, p);
	if (p->listener == NULL || p->ready_ev == NULL || p->kick_ev == NULL)
		fatalx("pickup: cannot make its events");
	p->fd = -1;	/* the listener owns it */
	evconnlistener_set_error_cb(p->listener, pickup_accept_error_cb);
	qs->pickup = p;
	pickup_ready_cb(-1, 0, p);
	log_info("pickup: listening on %s", p->path);
	return 0;
}

void
queue_pickup_stop(struct queue_server *qs)
{
	struct queue_pickup *p = qs->pickup;
	struct sockaddr_un sun;
	struct stat st;
	int dir_fd;
	char run[PATH_MAX];

	if (p == NULL)
		return;
	while (!TAILQ_EMPTY(&p->clients))
		pickup_client_free(TAILQ_FIRST(&p->clients));
	if (p->listener != NULL)
		evconnlistener_free(p->listener);
	if (p->ready_ev != NULL)
		event_free(p->ready_ev);
	if (p->kick_ev != NULL)
		event_free(p->kick_ev);
	/* Only our own socket: a newer queue process may own the name. */
	if (path_join(run, sizeof(run), "%s/run", qs->cfg->state_dir) == 0 &&
	    pickup_sockaddr(run, &sun, &dir_fd) == 0) {
		if (lstat(sun.sun_path, &st) == 0 && st.st_dev == p->dev &&
		    st.st_ino == p->ino)
			(void)unlink(sun.sun_path);
		if (dir_fd >= 0)
			close(dir_fd);
	}
	free(p->kick);
	free(p);
	qs->pickup = NULL;
}
