/*
 * The content of an SMTP message (RFC 5321 4.1.1.4 DATA, RFC 3030 BDAT):
 * spooled to disk as it arrives through the smtp_data decoder, then either
 * refused (size, bare CR/LF, long lines, NUL, disk errors) or handed to the
 * group-commit disk threads, and answered only when they are done.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/util.h"
#include "net/io.h"
#include "queue/queue_envelope.h"
#include "smtp/smtp_received.h"
#include "smtp/smtp_session_private.h"
#include "store/commit.h"
#include "store/maildir.h"

void
smtp_log_message(struct smtp_session *s, const char *result,
    const char *reason)
{
	char from[SMTP_PATH_MAX * 4 + 8], to[1024], reason_esc[512];
	size_t i, o = 0;

	log_escape(s->from, strlen(s->from), from, sizeof(from));
	to[0] = '\0';
	for (i = 0; i < s->n_rcpt_given && o + 8 < sizeof(to); i++) {
		char esc[SMTP_PATH_MAX * 4 + 8];
		int n;

		log_escape(s->rcpt_given[i], strlen(s->rcpt_given[i]), esc,
		    sizeof(esc));
		n = snprintf(to + o, sizeof(to) - o, "%s<%s>",
		    i ? "," : "", esc);
		if (n < 0 || (size_t)n >= sizeof(to) - o) {
			to[o] = '\0';
			break;
		}
		o += (size_t)n;
	}
	if (reason != NULL) {
		log_escape(reason, strlen(reason), reason_esc,
		    sizeof(reason_esc));
		log_info("session=%s id=%s from=<%s> to=%s size=%" PRIu64
		    " result=%s reason=\"%s\"", s->id, s->queue_id, from, to,
		    s->message_size, result, reason_esc);
	} else
		log_info("session=%s id=%s from=<%s> to=%s size=%" PRIu64
		    " result=%s", s->id, s->queue_id, from, to,
		    s->message_size, result);
}

/* Drops the spooled message, if any, and the transaction with it. */
void
smtp_spool_discard(struct smtp_session *s)
{
	if (s->spool_fd >= 0) {
		close(s->spool_fd);
		s->spool_fd = -1;
		if (s->spool_path[0] != '\0')
			(void)unlink(s->spool_path);
	}
	s->spool_path[0] = '\0';
	s->wlen = 0;
	xfree(&s->wbuf);
}

/*
 * The Received: "with" keyword: RFC 3848 (S for TLS, A for AUTH) and RFC
 * 6531 (UTF8SMTP). AUTH implies ESMTP, since AUTH needs EHLO.
 */
static const char *
smtp_with_protocol(const struct smtp_session *s)
{
	static const char *const names[2][2][3] = {
		/* [tls][auth][smtp, esmtp, utf8] */
		{ { "SMTP", "ESMTP", "UTF8SMTP" },
		  { "ESMTPA", "ESMTPA", "UTF8SMTPA" } },
		{ { "SMTPS", "ESMTPS", "UTF8SMTPS" },
		  { "ESMTPSA", "ESMTPSA", "UTF8SMTPSA" } },
	};

	return names[io_is_tls(s->io)][s->authenticated]
	    [s->mail.smtputf8 ? 2 : s->esmtp ? 1 : 0];
}

/* Creates the spool file and writes the trace headers. false: replied. */
bool
smtp_spool_open(struct smtp_session *s)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	char headers[2048], tls[256];
	struct smtp_trace t = {
		.sender = s->from,
		.helo = s->helo,
		.peer_ip = io_peer_address(s->io),
		.hostname = cfg->hostname,
		.protocol = smtp_with_protocol(s),
		.queue_id = s->queue_id,
		.for_rcpt = s->n_rcpt_given == 1 ? s->rcpt_given[0] : NULL,
		.tls = io_tls_info(s->io, tls, sizeof(tls)) == 0 ? tls : NULL,
	};
	size_t n;

	/*
	 * An unnamed file (O_TMPFILE): it touches no directory until the disk
	 * threads link it into place, so sessions never contend for the spool
	 * directory's lock, nothing needs unlinking, and a crash leaves
	 * nothing behind. File systems without O_TMPFILE get a named file.
	 */
	s->spool_path[0] = '\0';
	s->spool_fd = open(s->srv->spool_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC,
	    0600);
	if (s->spool_fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR ||
	    errno == EINVAL)) {
		if (path_join(s->spool_path, sizeof(s->spool_path),
		    "%s/%s.%s", s->srv->spool_dir, s->queue_id, s->id) < 0)
			goto fail;
		s->spool_fd = open(s->spool_path, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
	}
	if (s->spool_fd < 0)
		goto fail;
	n = smtp_trace_headers(&t, headers, sizeof(headers));
	if (n == 0) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	if (write_all(s->spool_fd, headers, n) < 0)
		goto fail;
	s->header_size = n;
	s->message_size = 0;
	s->wlen = 0;
	s->add_fields = s->authenticated;
	smtp_header_scan_init(&s->hscan);
	if (s->wbuf == NULL)
		s->wbuf = xmalloc(SMTP_SPOOL_BUFFER);
	return true;
fail:
	log_warn("session=%s spool file in %s", s->id, s->srv->spool_dir);
	smtp_reply(s, errno == ENOSPC || errno == EDQUOT ?
	    "452 4.3.1 Insufficient system storage" :
	    "451 4.3.0 Error: queue file write error");
	smtp_spool_discard(s);
	return false;
}

void
smtp_start_deadline(struct smtp_session *s)
{
	struct timeval tv = {
		.tv_sec = smtp_cfg(s)->smtp_data_deadline, .tv_usec = 0,
	};

	io_set_timeout(s->io, smtp_cfg(s)->smtp_timeout_data_block);
	evtimer_add(s->timer, &tv);
}

/* Writes the first n buffered bytes and keeps the rest at the front. */
static void
smtp_spool_write(struct smtp_session *s, size_t n)
{
	if (n == 0 || s->spool_fd < 0)
		return;
	if (s->write_errno == 0 && write_all(s->spool_fd, s->wbuf, n) < 0)
		s->write_errno = errno;
	memmove(s->wbuf, s->wbuf + n, s->wlen - n);
	s->wlen -= n;
}

/*
 * Writes the buffer out, except, while the header section is being
 * scanned, the start of a line not yet judged: the fields may have to go
 * before it (smtp_header_scan.h, "Split lines").
 */
static void
smtp_spool_flush(struct smtp_session *s)
{
	size_t keep = 0;

	if (s->add_fields && !s->hscan.ended)
		keep = s->hscan.pending_line_len;
	smtp_spool_write(s, s->wlen - keep);
}

/* Writes the buffer up to at, then the missing Message-ID and Date. */
static void
smtp_spool_add_fields(struct smtp_session *s, size_t at, bool lead_crlf,
    bool separator)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	char fields[1024], date[64];
	size_t n;

	s->add_fields = false;
	rfc5322_date(date, sizeof(date));
	n = smtp_header_scan_additions(&s->hscan, s->queue_id, cfg->hostname,
	    date, lead_crlf, separator, fields, sizeof(fields));
	if (n == 0 || n == (size_t)-1)
		return;
	smtp_spool_write(s, at);
	if (s->write_errno == 0 && s->spool_fd >= 0 &&
	    write_all(s->spool_fd, fields, n) < 0)
		s->write_errno = errno;
	s->header_size += n;
}

/* The message is complete: its fields go in if the scan is still open. */
static void
smtp_spool_fields_at_end(struct smtp_session *s)
{
	if (!s->add_fields || s->too_big || s->write_errno != 0)
		return;
	smtp_header_scan_finish(&s->hscan);
	if (s->hscan.ended)
		smtp_spool_add_fields(s, s->wlen - s->hscan.pending_line_len,
		    false, !s->hscan.ended_on_empty);
	else	/* all header: the fields go at the very end */
		smtp_spool_add_fields(s, s->wlen, !s->hscan.at_line_start,
		    false);
}

/*
 * Decodes input straight into the spool buffer (the decoder never writes
 * more than it reads) and accounts for it. Returns the input used.
 */
static size_t
smtp_spool_decode(struct smtp_session *s, const char *in, size_t len,
    bool *done_r)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	size_t used, out_len;

	if (s->wlen == SMTP_SPOOL_BUFFER)
		smtp_spool_flush(s);
	if (len > SMTP_SPOOL_BUFFER - s->wlen)
		len = SMTP_SPOOL_BUFFER - s->wlen;
	used = smtp_data_decode(&s->dec, in, len, s->wbuf + s->wlen, &out_len,
	    done_r);
	s->message_size += out_len;
	if (s->message_size > cfg->message_size_limit)
		s->too_big = true;
	/* Past a limit or an error: read on to the end, store nothing. */
	if (!s->too_big && s->write_errno == 0) {
		size_t start = s->wlen, end;

		s->wlen += out_len;
		if (s->add_fields && out_len > 0 && (end =
		    smtp_header_scan_feed(&s->hscan, s->wbuf + start, out_len,
		    NULL)) != (size_t)-1)
			smtp_spool_add_fields(s, start + end -
			    s->hscan.pending_line_len, false,
			    !s->hscan.ended_on_empty);
	}
	return used;
}

/* The refusal for a finished message, or NULL when it may be committed. */
static const char *
smtp_message_refusal(struct smtp_session *s)
{
	const char *flaw;

	if (s->too_big)
		return "552 5.3.4 Message size exceeds fixed limit";
	flaw = smtp_data_flaw_reply(smtp_data_flaws(&s->dec));
	if (flaw != NULL)
		return flaw;
	if (s->write_errno == ENOSPC || s->write_errno == EDQUOT)
		return "452 4.3.1 Insufficient system storage";
	if (s->write_errno != 0)
		return "451 4.3.0 Error: queue file write error";
	return NULL;
}

/* The queue envelope (queue_envelope.h) for the remote recipients. */
static char *
smtp_envelope_text(struct smtp_session *s, size_t *len_r)
{
	struct queue_envelope env;
	size_t i;
	char *text;

	memset(&env, 0, sizeof(env));
	memcpy(env.queue_id, s->queue_id, sizeof(env.queue_id));
	env.created = (uint64_t)time(NULL);
	env.sender = s->from;
	env.smtputf8 = s->mail.smtputf8;
	env.body = s->mail.body == SMTP_BODY_8BITMIME ? QUEUE_BODY_8BITMIME :
	    QUEUE_BODY_7BIT;
	env.auth = s->authenticated ? s->account : NULL;
	env.rcpts = xcalloc(s->rcpts.n_targets, sizeof(*env.rcpts));
	for (i = 0; i < s->rcpts.n_targets; i++)
		if (!s->rcpts.targets[i].local)
			env.rcpts[env.n_rcpts++].address =
			    s->rcpts.targets[i].address;
	text = queue_envelope_format(&env, len_r);
	free(env.rcpts);
	return text;
}

/* The end of a message: refuse it, or hand it to the disk threads. */
static void
smtp_message_end(struct smtp_session *s)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	struct commit_job *job;
	const char *refusal;
	size_t i;

	evtimer_del(s->timer);
	io_set_timeout(s->io, cfg->smtp_timeout_command);
	smtp_spool_fields_at_end(s);
	s->add_fields = false;
	smtp_spool_flush(s);
	refusal = smtp_message_refusal(s);
	if (refusal != NULL) {
		smtp_log_message(s, "rejected", refusal);
		smtp_transaction_reset(s);
		smtp_set_state(s, SMTP_STATE_COMMAND);
		if (refusal[0] == '4')
			smtp_reply(s, refusal);
		else
			smtp_reply_error(s, refusal);
		return;
	}

	job = xcalloc(1, sizeof(*job));
	job->fd = s->spool_fd;
	job->spool_path = s->spool_path[0] != '\0' ? xstrdup(s->spool_path) :
	    NULL;
	job->size = s->header_size + s->message_size;
	job->hostname = xstrdup(cfg->hostname);
	job->owner = s;
	job->maildirs = xcalloc(s->rcpts.n_targets, sizeof(*job->maildirs));
	for (i = 0; i < s->rcpts.n_targets; i++) {
		const struct recipient_target *t = &s->rcpts.targets[i];
		char path[PATH_MAX];

		if (!t->local) {
			if (job->queue_path == NULL) {
				char p[PATH_MAX];

				if (path_join(p, sizeof(p), "%s/%s.msg",
				    s->srv->queue_dir, s->queue_id) == 0)
					job->queue_path = xstrdup(p);
				if (path_join(p, sizeof(p), "%s/%s.env",
				    s->srv->queue_dir, s->queue_id) == 0)
					job->envelope_path = xstrdup(p);
				job->envelope = smtp_envelope_text(s,
				    &job->envelope_len);
			}
			continue;
		}
		if (maildir_path(path, sizeof(path), s->srv->mail_root,
		    t->address) < 0) {
			log_warnx("session=%s bad mailbox %s", s->id,
			    t->address);
			continue;
		}
		job->maildirs[job->n_maildirs++] = xstrdup(path);
	}
	if (job->queue_path != NULL && job->envelope == NULL) {
		/* Cannot happen with addresses the parser accepted; never
		 * queue a message without its envelope. */
		job->fd = -1;
		commit_job_free(job);
		log_warnx("session=%s id=%s envelope too large", s->id,
		    s->queue_id);
		smtp_log_message(s, "deferred", "envelope too large");
		smtp_transaction_reset(s);
		smtp_set_state(s, SMTP_STATE_COMMAND);
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
		return;
	}
	/* The job owns the file now. */
	s->spool_fd = -1;
	s->spool_path[0] = '\0';
	/*
	 * Reading goes on while the disk threads work (no epoll changes per
	 * message): pipelined input is buffered, bounded by the io layer, and
	 * smtp_input ignores it until the reply is out.
	 */
	smtp_set_state(s, SMTP_STATE_COMMIT);
	commit_submit(s->srv->commit, job);
}

void
smtp_session_commit_done(struct commit_job *job)
{
	struct smtp_session *s = job->owner;
	char reply[128];

	if (s->dead) {
		/* The client left; the message is delivered or not, but
		 * nobody was told 250, so either is correct. */
		smtp_log_message(s, job->error ? "failed" : "delivered",
		    "client disconnected before the reply");
		commit_job_free(job);
		smtp_free(s);
		return;
	}
	if (job->error != 0) {
		errno = job->error;
		log_warn("session=%s id=%s commit failed", s->id, s->queue_id);
		snprintf(reply, sizeof(reply), "%s",
		    job->error == ENOSPC || job->error == EDQUOT ?
		    "452 4.3.1 Insufficient system storage" :
		    "451 4.3.0 Error: queue file write error");
		smtp_log_message(s, "deferred", reply);
	} else {
		snprintf(reply, sizeof(reply), "250 2.0.0 Ok: queued as %s",
		    s->queue_id);
		smtp_log_message(s, "delivered", NULL);
	}
	commit_job_free(job);
	smtp_transaction_reset(s);
	smtp_set_state(s, SMTP_STATE_COMMAND);
	smtp_reply(s, reply);
	if (s->shutdown_after_txn) {
		smtp_session_shutdown(s);
		return;
	}
	io_resume(s->io);
}

/* Feeds buffered DATA input through the decoder. false: wait for more. */
bool
smtp_data_input(struct smtp_session *s)
{
	const char *in;
	size_t avail, used;
	bool done = false;

	in = io_input_peek(s->io, &avail);
	if (avail == 0)
		return false;
	used = smtp_spool_decode(s, in, avail, &done);
	io_input_drain(s->io, used);
	if (done)
		smtp_message_end(s);
	return true;
}

bool
smtp_bdat_input(struct smtp_session *s)
{
	const char *in;
	size_t avail;
	bool done;

	if (s->bdat_remaining > 0) {
		in = io_input_peek(s->io, &avail);
		if (avail == 0)
			return false;
		if (avail > s->bdat_remaining)
			avail = (size_t)s->bdat_remaining;
		if (!s->bdat_discard)
			avail = smtp_spool_decode(s, in, avail, &done);
		io_input_drain(s->io, avail);
		s->bdat_remaining -= avail;
		if (s->bdat_remaining > 0)
			return true;
	}

	/* The chunk is complete. */
	smtp_set_state(s, SMTP_STATE_COMMAND);
	if (s->bdat_discard) {
		if (s->bdat_error[0] != '\0')
			smtp_reply_error(s, s->bdat_error);
		return s->state != SMTP_STATE_CLOSING;
	}
	if (s->bdat_last) {
		smtp_data_finish(&s->dec);
		smtp_message_end(s);
		return s->state == SMTP_STATE_COMMAND;
	}
	if (s->too_big) {
		smtp_spool_flush(s);
		smtp_log_message(s, "rejected", "too big");
		smtp_transaction_reset(s);
		smtp_reply_error(s, "552 5.3.4 Message size exceeds fixed "
		    "limit");
		return s->state != SMTP_STATE_CLOSING;
	}
	io_printf(s->io, "250 2.0.0 Ok: %" PRIu64 " octets received\r\n",
	    s->message_size);
	return true;
}
