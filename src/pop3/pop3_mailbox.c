/*
 * The POP3 TRANSACTION and UPDATE states (RFC 1939 5-6) over a snapshot
 * of the user's Maildir taken at login: STAT, LIST, UIDL, RETR, TOP,
 * DELE, RSET; at QUIT, retrieved messages are marked seen and deleted
 * ones removed (fsync'd before +OK). A session that ends any other way
 * changes nothing. The listing and the QUIT work run on the front's
 * disk threads (store/commit.h), so that a mailbox of 100,000 messages
 * does not hold every other session of the front meanwhile.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/io.h"
#include "pop3/pop3_session.h"
#include "store/maildir.h"
#include "store/maildir_snapshot.h"

/* One event loop per process: the send buffers can be shared. */
static char pop3_read_buf[POP3_SEND_CHUNK];
static char pop3_stuff_buf[2 * POP3_SEND_CHUNK + 8];

/* On a disk thread: the listing, which takes a while for a big mailbox. */
static void
pop3_list_run(struct commit_job *job)
{
	struct pop3_session *s = job->owner;

	if (maildir_snapshot_take(s->work.path, s->work.max_messages,
	    &s->work.snap) < 0)
		s->work.error = errno;
}

static void
pop3_list_done(struct pop3_session *s)
{
	struct maildir_snapshot *snap = s->work.snap;

	if (s->disk_orphaned)
		return;		/* pop3_mailbox_close frees the listing */
	free(s->work.path);
	s->work.path = NULL;
	s->work.snap = NULL;
	pop3_set_state(s, POP3_STATE_AUTHORIZATION);
	if (snap == NULL) {
		if (s->work.error == EFBIG) {
			log_warnx("session=%s user=<%s> mailbox over "
			    "pop3_max_messages (%u)", s->id, s->account,
			    s->work.max_messages);
			pop3_reply(s, "-ERR [SYS/PERM] Mailbox too big for "
			    "POP3; remove messages with IMAP");
		} else {
			log_warnx("session=%s list the mailbox of <%s>: %s",
			    s->id, s->account, strerror(s->work.error));
			pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the "
			    "mailbox");
		}
		close(s->lock_fd);
		s->lock_fd = -1;
		return;
	}
	s->snap = snap;
	s->marks = xcalloc(snap->count > 0 ? snap->count : 1, 1);
	s->n_deleted = 0;
	s->deleted_size = 0;
	s->n_retrieved = 0;
	pop3_set_state(s, POP3_STATE_TRANSACTION);
	log_info("session=%s login user=<%s> messages=%zu octets=%" PRIu64,
	    s->id, s->account, snap->count, snap->total_size);
	io_printf(s->io, "+OK Logged in: %zu messages (%" PRIu64
	    " octets)\r\n", snap->count, snap->total_size);
}

void
pop3_mailbox_open(struct pop3_session *s)
{
	char path[PATH_MAX];
	int fd;

	if (maildir_path(path, sizeof(path), s->srv->mail_root,
	    s->account) < 0) {
		log_warnx("session=%s no valid Maildir path for <%s>", s->id,
		    s->account);
		pop3_reply(s, "-ERR [SYS/PERM] Cannot open the mailbox");
		return;
	}
	fd = maildir_pop3_lock(path);
	if (fd < 0) {
		if (errno == EWOULDBLOCK) {
			log_info("session=%s user=<%s> mailbox in use", s->id,
			    s->account);
			pop3_reply(s, "-ERR [IN-USE] Mailbox is in use by "
			    "another POP3 session");
		} else {
			log_warn("session=%s lock %s", s->id, path);
			pop3_reply(s, "-ERR [SYS/TEMP] Cannot lock the "
			    "mailbox");
		}
		return;
	}
	s->lock_fd = fd;
	/* The thread must not read the config, which a reload replaces. */
	memset(&s->work, 0, sizeof(s->work));
	s->work.path = xstrdup(path);
	s->work.max_messages = pop3_cfg(s)->pop3_max_messages;
	pop3_disk_start(s, pop3_list_run, pop3_list_done);
}

void
pop3_mailbox_close(struct pop3_session *s)
{
	if (s->send_fd >= 0) {
		close(s->send_fd);
		s->send_fd = -1;
	}
	maildir_snapshot_free(&s->snap);
	/* A listing whose session was lost meanwhile. */
	maildir_snapshot_free(&s->work.snap);
	free(s->work.path);
	s->work.path = NULL;
	free(s->marks);
	s->marks = NULL;
	if (s->lock_fd >= 0) {
		close(s->lock_fd);
		s->lock_fd = -1;
	}
}

/*
 * The message a command names: 1-based, in the snapshot and not deleted.
 * Returns its 0-based index, or replies (counting an error) and returns
 * SIZE_MAX.
 */
static size_t
pop3_message(struct pop3_session *s, uint32_t msg)
{
	char buf[128];

	if (msg == 0 || msg > s->snap->count) {
		pop3_reply_error(s, "-ERR No such message");
		return SIZE_MAX;
	}
	if (s->marks[msg - 1] & POP3_MARK_DELETED) {
		snprintf(buf, sizeof(buf), "-ERR Message %" PRIu32 " already "
		    "deleted", msg);
		pop3_reply_error(s, buf);
		return SIZE_MAX;
	}
	return msg - 1;
}

void
pop3_do_stat(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	io_printf(s->io, "+OK %zu %" PRIu64 "\r\n",
	    s->snap->count - s->n_deleted,
	    s->snap->total_size - s->deleted_size);
}

void
pop3_do_list(struct pop3_session *s, const struct pop3_command *cmd)
{
	size_t i;

	if (cmd->has_msg) {
		if ((i = pop3_message(s, cmd->msg)) == SIZE_MAX)
			return;
		io_printf(s->io, "+OK %zu %" PRIu64 "\r\n", i + 1,
		    s->snap->entries[i].size);
		return;
	}
	io_printf(s->io, "+OK %zu messages (%" PRIu64 " octets)\r\n",
	    s->snap->count - s->n_deleted,
	    s->snap->total_size - s->deleted_size);
	for (i = 0; i < s->snap->count; i++)
		if (!(s->marks[i] & POP3_MARK_DELETED))
			io_printf(s->io, "%zu %" PRIu64 "\r\n", i + 1,
			    s->snap->entries[i].size);
	io_write(s->io, ".\r\n", 3);
}

void
pop3_do_uidl(struct pop3_session *s, const struct pop3_command *cmd)
{
	char uidl[MAILDIR_UIDL_MAX + 1];
	size_t i;

	if (cmd->has_msg) {
		if ((i = pop3_message(s, cmd->msg)) == SIZE_MAX)
			return;
		maildir_entry_uidl(&s->snap->entries[i], uidl);
		io_printf(s->io, "+OK %zu %s\r\n", i + 1, uidl);
		return;
	}
	io_write(s->io, "+OK\r\n", 5);
	for (i = 0; i < s->snap->count; i++) {
		if (s->marks[i] & POP3_MARK_DELETED)
			continue;
		maildir_entry_uidl(&s->snap->entries[i], uidl);
		io_printf(s->io, "%zu %s\r\n", i + 1, uidl);
	}
	io_write(s->io, ".\r\n", 3);
}

/* The end of a RETR or TOP: the terminating line, back to commands. */
static void
pop3_send_finish(struct pop3_session *s)
{
	size_t n = pop3_stuff_end(&s->stuff, pop3_stuff_buf);

	io_write(s->io, pop3_stuff_buf, n);
	close(s->send_fd);
	s->send_fd = -1;
	if (s->state == POP3_STATE_SENDING) {
		io_set_drain_cb(s->io, 0, NULL);
		pop3_set_state(s, POP3_STATE_TRANSACTION);
		io_resume(s->io);
	}
}

/*
 * Sends pieces of the file while the socket keeps up. Returns true when
 * the whole response is queued, false when it waits for the drain
 * callback (or the session was closed).
 */
static bool
pop3_send_pieces(struct pop3_session *s)
{
	ssize_t n;
	size_t out;

	while (io_output_pending(s->io) <= POP3_SEND_LOW_WATER) {
		n = read(s->send_fd, pop3_read_buf, sizeof(pop3_read_buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* Half a message was sent: the response cannot be
			 * ended honestly, so the connection is. */
			log_warn("session=%s read of a message", s->id);
			pop3_close(s, NULL);
			return false;
		}
		if (n == 0) {
			pop3_send_finish(s);
			return true;
		}
		out = pop3_stuff(&s->stuff, pop3_read_buf, (size_t)n,
		    pop3_stuff_buf);
		io_write(s->io, pop3_stuff_buf, out);
		if (s->stuff.done) {
			pop3_send_finish(s);
			return true;
		}
	}
	return false;
}

void
pop3_send_more(void *arg)
{
	struct pop3_session *s = arg;

	if (s->state != POP3_STATE_SENDING)
		return;
	pop3_send_pieces(s);
}

/* RETR and TOP: "+OK", the stuffed message, ".". */
static void
pop3_send_message(struct pop3_session *s, uint32_t msg, int64_t top_lines)
{
	size_t i;
	int fd;

	if ((i = pop3_message(s, msg)) == SIZE_MAX)
		return;
	fd = maildir_snapshot_open(s->snap, i);
	if (fd < 0) {
		if (errno == ENOENT) {
			pop3_reply_error(s, "-ERR Message was removed by "
			    "another program");
			return;
		}
		log_warn("session=%s open message %zu", s->id, i + 1);
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the message");
		return;
	}
	s->send_fd = fd;
	pop3_stuff_init(&s->stuff, top_lines);
	if (top_lines < 0) {
		s->marks[i] |= POP3_MARK_RETRIEVED;
		s->n_retrieved++;
		io_printf(s->io, "+OK %" PRIu64 " octets\r\n",
		    s->snap->entries[i].size);
	} else
		io_write(s->io, "+OK\r\n", 5);
	if (pop3_send_pieces(s) || s->state == POP3_STATE_CLOSING)
		return;
	/* A big message: the rest goes out as the client reads it, and
	 * commands pipelined behind it wait. */
	pop3_set_state(s, POP3_STATE_SENDING);
	io_pause(s->io);
	io_set_drain_cb(s->io, POP3_SEND_LOW_WATER, pop3_send_more);
}

void
pop3_do_retr(struct pop3_session *s, const struct pop3_command *cmd)
{
	pop3_send_message(s, cmd->msg, -1);
}

void
pop3_do_top(struct pop3_session *s, const struct pop3_command *cmd)
{
	pop3_send_message(s, cmd->msg, cmd->lines);
}

void
pop3_do_dele(struct pop3_session *s, const struct pop3_command *cmd)
{
	char buf[96];
	size_t i;

	if ((i = pop3_message(s, cmd->msg)) == SIZE_MAX)
		return;
	s->marks[i] |= POP3_MARK_DELETED;
	s->n_deleted++;
	s->deleted_size += s->snap->entries[i].size;
	snprintf(buf, sizeof(buf), "+OK Message %zu deleted", i + 1);
	pop3_reply(s, buf);
}

void
pop3_do_rset(struct pop3_session *s, const struct pop3_command *cmd)
{
	size_t i;

	(void)cmd;
	for (i = 0; i < s->snap->count; i++)
		s->marks[i] &= (uint8_t)~POP3_MARK_DELETED;
	s->n_deleted = 0;
	s->deleted_size = 0;
	io_printf(s->io, "+OK %zu messages (%" PRIu64 " octets)\r\n",
	    s->snap->count, s->snap->total_size);
}

/*
 * On a disk thread: the UPDATE state's renames and removals, which take
 * seconds for 100,000 messages. The session's marks and snapshot are not
 * touched by the event loop meanwhile.
 */
static void
pop3_update_run(struct commit_job *job)
{
	struct pop3_session *s = job->owner;
	bool *remove;
	size_t i;

	for (i = 0; i < s->snap->count; i++) {
		if ((s->marks[i] & (POP3_MARK_RETRIEVED | POP3_MARK_DELETED)) !=
		    POP3_MARK_RETRIEVED || s->snap->entries[i].seen)
			continue;
		/* A lost seen flag is harmless: no fsync. */
		if (maildir_snapshot_mark_seen(s->snap, i) == 0)
			s->work.seen++;
		else if (errno != ENOENT && s->work.seen_failed++ == 0)
			s->work.seen_error = errno;
	}
	if (s->n_deleted == 0)
		return;
	remove = xcalloc(s->snap->count, sizeof(*remove));
	for (i = 0; i < s->snap->count; i++)
		remove[i] = (s->marks[i] & POP3_MARK_DELETED) != 0;
	s->work.removed = maildir_snapshot_remove(s->snap, remove);
	s->work.remove_error = errno;
	free(remove);
}

static void
pop3_update_done(struct pop3_session *s)
{
	char buf[128];

	if (s->work.seen_failed > 0)
		log_warnx("session=%s marking %zu messages seen failed: %s",
		    s->id, s->work.seen_failed, strerror(s->work.seen_error));
	log_info("session=%s logout user=<%s> retrieved=%u seen=%zu "
	    "deleted=%zu removed=%ld", s->id, s->account, s->n_retrieved,
	    s->work.seen, s->n_deleted, s->work.removed);
	if (s->work.removed < 0)
		log_warnx("session=%s removing deleted messages: %s", s->id,
		    strerror(s->work.remove_error));
	if (s->disk_orphaned)
		return;
	/* Back from DISK to a state pop3_close acts on. */
	pop3_set_state(s, POP3_STATE_TRANSACTION);
	if (s->work.removed < 0) {
		pop3_close(s, "-ERR [SYS/TEMP] Some deleted messages were not "
		    "removed");
		return;
	}
	snprintf(buf, sizeof(buf), "+OK tegami POP3 server signing off "
	    "(%zu messages deleted)", s->n_deleted);
	pop3_close(s, buf);
}

void
pop3_mailbox_update(struct pop3_session *s)
{
	memset(&s->work, 0, sizeof(s->work));
	pop3_disk_start(s, pop3_update_run, pop3_update_done);
}
