/*
 * The queue's files (queue_private.h): local delivery of a queued message
 * into Maildirs, new messages made by the queue itself (bounces, delay
 * warnings), and removal once every recipient is done. Every change is
 * fsync'd, file and directory, before it counts; the removals of
 * finished messages share their fsync (queue_remove).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/recipient.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "queue/queue_private.h"
#include "smtp/smtp_address.h"
#include "store/maildir.h"

static int
queue_path(const struct queue_server *qs, const char *id, const char *ext,
    char *out, size_t outsize)
{
	return path_join(out, outsize, "%s/%s.%s", qs->queue_dir, id, ext);
}

int
queue_msg_open(struct queue_server *qs, const char *id, uint64_t *size_r,
    uint64_t *offset_r)
{
	static const char rp[] = "Return-Path:";
	char path[PATH_MAX], head[1024];
	struct stat st;
	ssize_t n;
	int fd;

	if (queue_path(qs, id, "msg", path, sizeof(path)) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	*size_r = (uint64_t)st.st_size;
	*offset_r = 0;
	/* Our Return-Path: is for final delivery (RFC 5321 4.4); another
	 * MTA must not get it. */
	n = pread(fd, head, sizeof(head) - 1, 0);
	if (n > 0) {
		char *eol;

		head[n] = '\0';
		eol = strstr(head, "\r\n");
		if (strncasecmp(head, rp, sizeof(rp) - 1) == 0 && eol != NULL)
			*offset_r = (uint64_t)(eol + 2 - head);
	}
	return fd;
}

/* Links queue/ID.msg into one Maildir's new/ and fsyncs new/. */
static int
queue_link_maildir(struct queue_server *qs, const char *msg_path,
    uint64_t size, const char *maildir)
{
	char name[NAME_MAX + 1], path[PATH_MAX], newdir[PATH_MAX];
	int tries;

	if (path_join(newdir, sizeof(newdir), "%s/new", maildir) < 0)
		return -1;
	for (tries = 0; tries < 3; tries++) {
		if (maildir_new_name(name, sizeof(name), qs->cfg->hostname,
		    size) < 0 ||
		    path_join(path, sizeof(path), "%s/%s", newdir, name) < 0)
			return -1;
		if (link(msg_path, path) == 0)
			return fsync_dir(newdir);
		if (errno == ENOENT && maildir_create(maildir) == 0)
			continue;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

int
queue_deliver_local(struct queue_server *qs, const char *id,
    const char *address, char ***remote_r, size_t *n_remote_r,
    char status_r[16], char *diag, size_t diagsize)
{
	struct recipient_list list = { 0 };
	struct smtp_address addr;
	char path[PATH_MAX], msg_path[PATH_MAX], wrapped[QUEUE_ADDRESS_MAX + 3];
	const char *err;
	struct stat st;
	size_t i, used;
	int n, rc = -1;

	*remote_r = NULL;
	*n_remote_r = 0;
	n = snprintf(wrapped, sizeof(wrapped), "<%s>", address);
	if (n < 0 || (size_t)n >= sizeof(wrapped) ||
	    smtp_address_parse_path(wrapped, (size_t)n, false, true, &addr,
	    &used) != SMTP_ADDRESS_OK) {
		snprintf(status_r, 16, "5.1.3");
		snprintf(diag, diagsize, "bad recipient address syntax");
		return -1;
	}
	err = recipient_resolve(qs->cfg, qs->accounts, &addr, true, &list);
	if (err != NULL) {
		/* "550 5.1.1 <x>: ..." -> its enhanced code and text. */
		snprintf(status_r, 16, "%.5s", strlen(err) > 4 ? err + 4 : "");
		if (status_r[0] != '4' && status_r[0] != '5')
			snprintf(status_r, 16, "%c.0.0", err[0]);
		snprintf(diag, diagsize, "%s", err);
		return -1;
	}
	if (queue_path(qs, id, "msg", msg_path, sizeof(msg_path)) < 0 ||
	    stat(msg_path, &st) < 0) {
		snprintf(status_r, 16, "4.3.0");
		snprintf(diag, diagsize, "queue file: %s", strerror(errno));
		goto done;
	}
	for (i = 0; i < list.n_targets; i++) {
		const struct recipient_target *t = &list.targets[i];

		if (!t->local) {
			*remote_r = xreallocarray(*remote_r, *n_remote_r + 1,
			    sizeof(**remote_r));
			(*remote_r)[(*n_remote_r)++] = xstrdup(t->address);
			continue;
		}
		if (maildir_path(path, sizeof(path), qs->mail_root,
		    t->address) < 0 ||
		    queue_link_maildir(qs, msg_path, (uint64_t)st.st_size,
		    path) < 0) {
			snprintf(status_r, 16, errno == ENOSPC ||
			    errno == EDQUOT ? "4.2.2" : "4.3.0");
			snprintf(diag, diagsize, "delivery to %s: %s",
			    t->address, strerror(errno));
			goto done;
		}
	}
	snprintf(status_r, 16, "2.0.0");
	snprintf(diag, diagsize, "delivered to mailbox");
	rc = 0;
 done:
	recipient_list_clear(&list);
	return rc;
}

int
queue_inject(struct queue_server *qs, const char *content, size_t len,
    struct queue_envelope *env)
{
	char path[PATH_MAX], err[256];
	int fd, saved;

	if (!queue_id_valid(env->queue_id))
		queue_id_new(env->queue_id);
	fd = open(qs->incoming_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, content, len) < 0 || fsync(fd) < 0 ||
	    queue_path(qs, env->queue_id, "msg", path, sizeof(path)) < 0 ||
	    fd_link(fd, path) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	/* The envelope last: a message counts once its envelope is there,
	 * and queue_envelope_store fsyncs the directory for both. */
	if (queue_envelope_store(qs->queue_dir, env, err, sizeof(err)) < 0) {
		saved = errno;
		log_warnx("queue: %s", err);
		(void)unlink(path);
		errno = saved;
		return -1;
	}
	return 0;
}

static void
queue_dir_sync(struct queue_server *qs)
{
	if (qs->dir_sync != NULL)
		evtimer_del(qs->dir_sync);
	if (fsync_dir(qs->queue_dir) < 0)
		log_warn("queue: fsync %s", qs->queue_dir);
}

void
queue_dir_sync_flush(struct queue_server *qs)
{
	/* The timer is pending exactly while a removal waits for it. */
	if (qs->dir_sync != NULL && evtimer_pending(qs->dir_sync, NULL))
		queue_dir_sync(qs);
}

void
queue_dir_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	queue_dir_sync(arg);
}

void
queue_remove(struct queue_server *qs, const char *id, bool sync_now)
{
	struct timeval soon = { 0, QUEUE_DIR_SYNC_MS * 1000 };
	char path[PATH_MAX];

	/* The envelope first: without it the message is not queued. */
	if (queue_path(qs, id, "env", path, sizeof(path)) == 0 &&
	    unlink(path) < 0 && errno != ENOENT)
		log_warn("queue: unlink %s", path);
	if (queue_path(qs, id, "msg", path, sizeof(path)) == 0 &&
	    unlink(path) < 0 && errno != ENOENT)
		log_warn("queue: unlink %s", path);
	if (sync_now || qs->dir_sync == NULL)
		queue_dir_sync(qs);
	else if (!evtimer_pending(qs->dir_sync, NULL))
		evtimer_add(qs->dir_sync, &soon);
}
