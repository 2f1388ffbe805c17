/*
 * The control socket of `tegami queue flush|delete|bounce`
 * (queue_private.h): STATE/run/queue-control, a unix stream socket that
 * only root and the queue's own user may use; one request line, one reply
 * line, then the server closes (protocol in docs/queue.md).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "queue/queue_private.h"
#include "queue/queue_request.h"

#define CONTROL_NAME "queue-control"
#define CONTROL_LINE_MAX QUEUE_REQUEST_CONTROL_LINE_MAX
#define CONTROL_REPLY_MAX 256		/* bytes of a reply, LF included */
#define CONTROL_CONNECTIONS_MAX 16
#define CONTROL_TIMEOUT_SECONDS 10	/* to send the request, or read */
#define CONTROL_BACKLOG 16
#define CONTROL_ACCEPT_PAUSE_MS 200	/* after EMFILE and the like */

/* The administrator's reason, in the DSN (RFC 3463 5.0.0: other). */
#define CONTROL_BOUNCE_STATUS "5.0.0"
#define CONTROL_BOUNCE_DIAG "returned by the administrator"

struct control_conn {
	TAILQ_ENTRY(control_conn) entry;
	struct queue_control *qc;
	struct bufferevent *bev;
	uid_t uid;
	bool replied;
};

TAILQ_HEAD(control_conn_list, control_conn);

struct queue_control {
	struct queue_server *qs;
	int fd;
	int run_fd;			/* STATE/run, for unlinkat/fstatat */
	dev_t dev;			/* of the socket we bound */
	ino_t ino;
	struct event *accept_ev, *pause_ev;
	struct control_conn_list conns;
	size_t n_conns;
};

/* ---- The commands ------------------------------------------------------ */

static bool
control_file_exists(const struct queue_server *qs, const char *id,
    const char *ext)
{
	char path[PATH_MAX];
	struct stat st;

	return path_join(path, sizeof(path), "%s/%s.%s", qs->queue_dir, id,
	    ext) == 0 && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The scheduler's entry for id, made when the envelope is there but the
 * scheduler has not seen it yet (inotify missed it, or it came while the
 * process started). NULL when there is no such message.
 */
static struct queue_msg *
control_msg(struct queue_server *qs, const char *id)
{
	struct queue_msg *m = queue_msg_lookup(qs, id);

	if (m == NULL && control_file_exists(qs, id, "env")) {
		queue_msg_add(qs, id, 0);
		m = queue_msg_lookup(qs, id);
	}
	return m;
}

static void
control_flush(struct queue_control *qc, const char *id, char *reply,
    size_t replysize)
{
	struct queue_server *qs = qc->qs;
	struct queue_msg *m;
	size_t due = 0, running = 0;

	if (id != NULL) {
		if ((m = control_msg(qs, id)) == NULL) {
			snprintf(reply, replysize, "error no message %s in "
			    "the queue", id);
			return;
		}
		if (m->attempt != NULL) {
			snprintf(reply, replysize, "ok flush %s: being "
			    "delivered now", id);
			return;
		}
		queue_msg_due_now(qs, m);
		queue_kick(qs);
		log_info("queue: id=%s flush", id);
		snprintf(reply, replysize, "ok flush %s: due now", id);
		return;
	}
	queue_flush_all(qs);
	TAILQ_FOREACH(m, &qs->msgs, entry) {
		if (m->attempt != NULL)
			running++;
		else
			due++;
	}
	log_info("queue: flush: %zu due now, %zu being delivered", due,
	    running);
	snprintf(reply, replysize, "ok flush: %zu message%s due now, %zu "
	    "being delivered", due, due == 1 ? "" : "s", running);
}

static void
control_delete(struct queue_control *qc, const char *id, char *reply,
    size_t replysize)
{
	struct queue_server *qs = qc->qs;
	struct queue_msg *m = queue_msg_lookup(qs, id);

	if (m == NULL && !control_file_exists(qs, id, "env") &&
	    !control_file_exists(qs, id, "msg")) {
		snprintf(reply, replysize, "error no message %s in the queue",
		    id);
		return;
	}
	/* A delivery in flight is abandoned: whatever it has not recorded
	 * yet is lost with the files (docs/queue.md, the duplicate window). */
	if (m != NULL && m->attempt != NULL)
		queue_attempt_cancel(m->attempt);
	queue_remove(qs, id, true);
	if (control_file_exists(qs, id, "env") ||
	    control_file_exists(qs, id, "msg")) {
		/* queue_remove logged why; the scheduler keeps the message. */
		snprintf(reply, replysize, "error delete %s: the files could "
		    "not be removed (see the log)", id);
		return;
	}
	if (m != NULL)
		queue_msg_forget(qs, m);
	log_info("queue: id=%s deleted by the administrator", id);
	snprintf(reply, replysize, "ok delete %s: removed", id);
}

/*
 * Every pending recipient fails with 5.0.0; the envelope says so durably,
 * and then an attempt runs at once: with nothing pending,
 * queue_attempt_start goes straight to its end, which sends the one DSN
 * for all failed recipients (never for the null sender) and removes the
 * message.
 */
static void
control_bounce(struct queue_control *qc, const char *id, char *reply,
    size_t replysize)
{
	struct queue_server *qs = qc->qs;
	struct queue_envelope env;
	struct queue_msg *m;
	char err[256];
	size_t i, n = 0;
	bool null_sender;

	if ((m = control_msg(qs, id)) == NULL) {
		snprintf(reply, replysize, "error no message %s in the queue",
		    id);
		return;
	}
	/* The running attempt would rewrite the envelope from its own copy
	 * when it ends, undoing ours: it goes first. */
	if (m->attempt != NULL)
		queue_attempt_cancel(m->attempt);
	if (queue_envelope_load(qs->queue_dir, id, &env, err,
	    sizeof(err)) < 0) {
		queue_envelope_free(&env);
		if (errno == ENOENT) {
			/* Removed meanwhile (a finished run): gone. */
			queue_msg_forget(qs, m);
			snprintf(reply, replysize, "error no message %s in "
			    "the queue", id);
			return;
		}
		log_warnx("queue: id=%s bounce: %s", id, err);
		snprintf(reply, replysize, "error bounce %s: the envelope "
		    "cannot be read (see the log)", id);
		return;
	}
	for (i = 0; i < env.n_rcpts; i++) {
		struct queue_rcpt *r = &env.rcpts[i];

		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		r->state = QUEUE_RCPT_FAILED;
		r->time = queue_now();
		free(r->remote);
		r->remote = NULL;
		snprintf(r->status, sizeof(r->status), "%s",
		    CONTROL_BOUNCE_STATUS);
		free(r->diagnostic);
		r->diagnostic = xstrdup(CONTROL_BOUNCE_DIAG);
		n++;
	}
	null_sender = env.sender[0] == '\0';
	if (n > 0 && queue_envelope_store(qs->queue_dir, &env, err,
	    sizeof(err)) < 0) {
		queue_envelope_free(&env);
		log_warnx("queue: id=%s bounce: %s", id, err);
		snprintf(reply, replysize, "error bounce %s: the envelope "
		    "cannot be written (see the log)", id);
		return;
	}
	queue_envelope_free(&env);
	log_info("queue: id=%s returned to the sender by the administrator: "
	    "failed=%zu", id, n);
	queue_msg_due_now(qs, m);
	queue_attempt_start(qs, m);	/* may free m */
	if (queue_msg_lookup(qs, id) != NULL) {
		snprintf(reply, replysize, "error bounce %s: recorded, but the "
		    "message could not be finished now (see the log); it will "
		    "be at its next attempt", id);
		return;
	}
	if (n == 0)
		snprintf(reply, replysize, "ok bounce %s: nothing was pending; "
		    "removed", id);
	else if (null_sender)
		snprintf(reply, replysize, "ok bounce %s: %zu recipient%s "
		    "failed; no bounce for the null sender; removed", id, n,
		    n == 1 ? "" : "s");
	else
		snprintf(reply, replysize, "ok bounce %s: %zu recipient%s "
		    "returned to the sender; removed", id, n,
		    n == 1 ? "" : "s");
}

/* ---- The connections --------------------------------------------------- */

static void
control_conn_free(struct control_conn *cc)
{
	struct queue_control *qc = cc->qc;

	TAILQ_REMOVE(&qc->conns, cc, entry);
	qc->n_conns--;
	bufferevent_free(cc->bev);
	free(cc);
	/* A slot is free again. */
	if (qc->pause_ev != NULL && !evtimer_pending(qc->pause_ev, NULL))
		event_add(qc->accept_ev, NULL);
}

/* Sends the reply line, then closes once it has gone out. */
static void
control_reply(struct control_conn *cc, const char *reply)
{
	char safe[CONTROL_REPLY_MAX];
	size_t i, n = strlen(reply);

	if (n > sizeof(safe) - 2)
		n = sizeof(safe) - 2;
	for (i = 0; i < n; i++)
		safe[i] = reply[i] >= ' ' && reply[i] < 0x7f ? reply[i] : '?';
	safe[n++] = '\n';
	cc->replied = true;
	bufferevent_disable(cc->bev, EV_READ);
	if (bufferevent_write(cc->bev, safe, n) < 0)
		control_conn_free(cc);
}

static void
control_read_cb(struct bufferevent *bev, void *arg)
{
	struct control_conn *cc = arg;
	struct queue_server *qs = cc->qc->qs;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct queue_request_control req;
	enum queue_request_result rc;
	char reply[CONTROL_REPLY_MAX], *line;
	const char *id;
	size_t len;

	if (cc->replied)
		return;
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) >= CONTROL_LINE_MAX)
			control_reply(cc, "error request line too long");
		return;
	}
	reply[0] = '\0';
	rc = queue_request_control_parse(line, len, &req, reply,
	    sizeof(reply));
	free(line);
	/* A bad line is answered as such even while stopping. */
	if (rc != QUEUE_REQUEST_BAD_LINE && qs->stopping)
		snprintf(reply, sizeof(reply), "error the queue process is "
		    "stopping");
	else if (rc == QUEUE_REQUEST_OK) {
		log_info("queue: control: uid=%u %s%s%s", (unsigned)cc->uid,
		    req.name, req.id[0] != '\0' ? " id=" : "", req.id);
		id = req.id[0] != '\0' ? req.id : NULL;
		switch (req.cmd) {
		case QUEUE_REQUEST_FLUSH:
			control_flush(cc->qc, id, reply, sizeof(reply));
			break;
		case QUEUE_REQUEST_DELETE:
			control_delete(cc->qc, id, reply, sizeof(reply));
			break;
		case QUEUE_REQUEST_BOUNCE:
			control_bounce(cc->qc, id, reply, sizeof(reply));
			break;
		}
	}
	control_reply(cc, reply);
}

static void
control_write_cb(struct bufferevent *bev, void *arg)
{
	struct control_conn *cc = arg;

	if (cc->replied && evbuffer_get_length(bufferevent_get_output(bev)) ==
	    0)
		control_conn_free(cc);
}

static void
control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct control_conn *cc = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		log_info("queue: control: uid=%u timed out", (unsigned)cc->uid);
	control_conn_free(cc);
}

static void
control_pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_control *qc = arg;

	(void)fd;
	(void)what;
	if (qc->n_conns < CONTROL_CONNECTIONS_MAX)
		event_add(qc->accept_ev, NULL);
}

/* Stops accepting for a moment (no descriptor left) or until a
 * connection ends (all slots taken). */
static void
control_pause(struct queue_control *qc, bool timed)
{
	struct timeval tv = { 0, CONTROL_ACCEPT_PAUSE_MS * 1000 };

	event_del(qc->accept_ev);
	if (timed)
		evtimer_add(qc->pause_ev, &tv);
}

static void
control_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct queue_control *qc = arg;
	struct timeval tv = { CONTROL_TIMEOUT_SECONDS, 0 };
	struct control_conn *cc;
	struct ucred cred;
	socklen_t credlen = sizeof(cred);
	int fd;

	(void)what;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_warn("queue: control: accept");
			control_pause(qc, true);
		}
		return;
	}
	/* The socket's mode already keeps others out; the peer's uid is
	 * checked as well, so that a loosened mode does not open it. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warnx("queue: control: refused a connection from uid %d",
		    credlen == sizeof(cred) ? (int)cred.uid : -1);
		close(fd);
		return;
	}
	cc = xcalloc(1, sizeof(*cc));
	cc->qc = qc;
	cc->uid = cred.uid;
	cc->bev = bufferevent_socket_new(qc->qs->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (cc->bev == NULL) {
		close(fd);
		free(cc);
		return;
	}
	TAILQ_INSERT_TAIL(&qc->conns, cc, entry);
	qc->n_conns++;
	bufferevent_setcb(cc->bev, control_read_cb, control_write_cb,
	    control_event_cb, cc);
	/* Reading stops at the limit, and the read callback refuses it. */
	bufferevent_setwatermark(cc->bev, EV_READ, 0, CONTROL_LINE_MAX);
	bufferevent_set_timeouts(cc->bev, &tv, &tv);
	bufferevent_enable(cc->bev, EV_READ);
	if (qc->n_conns >= CONTROL_CONNECTIONS_MAX)
		control_pause(qc, false);
}

/* ---- Start and stop ---------------------------------------------------- */

/*
 * The address of run/queue-control: the path itself, or, when that does
 * not fit into sun_path, the same file through /proc/self/fd/RUN_FD.
 */
static int
control_addr(struct queue_control *qc, const char *run,
    struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (path_join(sun->sun_path, sizeof(sun->sun_path), "%s/%s", run,
	    CONTROL_NAME) == 0)
		return 0;
	return path_join(sun->sun_path, sizeof(sun->sun_path),
	    "/proc/self/fd/%d/%s", qc->run_fd, CONTROL_NAME);
}

/* Removes a socket left by a queue process that is gone; refuses when one
 * still answers there, or when the name is not a socket. */
static int
control_clear_stale(struct queue_control *qc, const struct sockaddr_un *sun,
    char *err, size_t errsize)
{
	struct stat st;
	int fd;

	if (fstatat(qc->run_fd, CONTROL_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsize, "control socket: %s: %s", CONTROL_NAME,
		    strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errsize, "control socket: run/%s exists and is "
		    "not a socket", CONTROL_NAME);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)sun,
	    sizeof(*sun)) == 0) {
		close(fd);
		snprintf(err, errsize, "control socket: another queue process "
		    "serves run/%s", CONTROL_NAME);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	if (unlinkat(qc->run_fd, CONTROL_NAME, 0) < 0 && errno != ENOENT) {
		snprintf(err, errsize, "control socket: unlink run/%s: %s",
		    CONTROL_NAME, strerror(errno));
		return -1;
	}
	return 0;
}

static int
control_listen(struct queue_control *qc, const char *run, char *err,
    size_t errsize)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int saved;

	if (control_addr(qc, run, &sun) < 0) {
		snprintf(err, errsize, "control socket: path too long");
		return -1;
	}
	if (control_clear_stale(qc, &sun, err, errsize) < 0)
		return -1;
	qc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (qc->fd < 0) {
		snprintf(err, errsize, "control socket: %s", strerror(errno));
		return -1;
	}
	/* 0600 from the start: no moment in which others could connect. */
	old = umask(0177);
	if (bind(qc->fd, (const struct sockaddr *)&sun, sizeof(sun)) < 0) {
		saved = errno;
		umask(old);
		snprintf(err, errsize, "control socket: bind %s/%s: %s", run,
		    CONTROL_NAME, strerror(saved));
		return -1;
	}
	umask(old);
	if (fchmodat(qc->run_fd, CONTROL_NAME, 0600, 0) < 0 ||
	    fstatat(qc->run_fd, CONTROL_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    listen(qc->fd, CONTROL_BACKLOG) < 0) {
		snprintf(err, errsize, "control socket: %s/%s: %s", run,
		    CONTROL_NAME, strerror(errno));
		return -1;
	}
	qc->dev = st.st_dev;
	qc->ino = st.st_ino;
	return 0;
}

static void
control_free(struct queue_control *qc)
{
	struct stat st;

	while (!TAILQ_EMPTY(&qc->conns))
		control_conn_free(TAILQ_FIRST(&qc->conns));
	if (qc->accept_ev != NULL)
		event_free(qc->accept_ev);
	if (qc->pause_ev != NULL)
		event_free(qc->pause_ev);
	if (qc->fd >= 0) {
		close(qc->fd);
		/* Only our own socket: never one a later process made. */
		if (qc->ino != 0 && fstatat(qc->run_fd, CONTROL_NAME, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == qc->dev &&
		    st.st_ino == qc->ino)
			(void)unlinkat(qc->run_fd, CONTROL_NAME, 0);
	}
	if (qc->run_fd >= 0)
		close(qc->run_fd);
	free(qc);
}

int
queue_control_start(struct queue_server *qs, char *err, size_t errsize)
{
	struct queue_control *qc;
	char run[PATH_MAX];

	if (path_join(run, sizeof(run), "%s/run", qs->cfg->state_dir) < 0) {
		snprintf(err, errsize, "control socket: state_dir path too "
		    "long");
		return -1;
	}
	qc = xcalloc(1, sizeof(*qc));
	qc->qs = qs;
	qc->fd = -1;
	TAILQ_INIT(&qc->conns);
	/* The parent makes run/ (owned by the queue's user); a server not
	 * started as root makes it here. */
	if (mkdir(run, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errsize, "control socket: mkdir %s: %s", run,
		    strerror(errno));
		qc->run_fd = -1;
		control_free(qc);
		return -1;
	}
	qc->run_fd = open(run, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (qc->run_fd < 0) {
		snprintf(err, errsize, "control socket: %s: %s", run,
		    strerror(errno));
		control_free(qc);
		return -1;
	}
	if (control_listen(qc, run, err, errsize) < 0) {
		control_free(qc);
		return -1;
	}
	qc->accept_ev = event_new(qs->base, qc->fd, EV_READ | EV_PERSIST,
	    control_accept_cb, qc);
	qc->pause_ev = evtimer_new(qs->base, control_pause_cb, qc);
	if (qc->accept_ev == NULL || qc->pause_ev == NULL ||
	    event_add(qc->accept_ev, NULL) < 0) {
		snprintf(err, errsize, "control socket: event_add failed");
		control_free(qc);
		return -1;
	}
	qs->control = qc;
	return 0;
}

void
queue_control_stop(struct queue_server *qs)
{
	if (qs->control == NULL)
		return;
	control_free(qs->control);
	qs->control = NULL;
}
