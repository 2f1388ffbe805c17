/*
 * What the two halves of an SMTP session share: smtp_session.c (the
 * connection, the command table and the commands) and smtp_message.c (the
 * message content: spooling DATA and BDAT, refusing or committing it).
 * Private to src/smtp; everyone else uses smtp_session.h.
 */
#ifndef TEGAMI_SMTP_SESSION_PRIVATE_H
#define TEGAMI_SMTP_SESSION_PRIVATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "auth/recipient.h"
#include "auth/sasl.h"
#include "auth/sasl_exchange.h"
#include "core/config.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_header_scan.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_server.h"
#include "smtp/smtp_session.h"

#define SMTP_INPUT_MAX (256 * 1024)	/* buffered from the peer, at most */
#define SMTP_SPOOL_BUFFER 65536		/* decoded bytes batched per write */
#define SMTP_HELO_MAX 256
/*
 * RCPTs past recipient_limit get 452 and are not errors at first, since an
 * honest client just sends them again in the next transaction; this many
 * more and each one counts as an error (Postfix's
 * smtpd_recipient_overshoot_limit), so that a flood ends in 421.
 */
#define SMTP_RCPT_OVERSHOOT_MAX 1000
#define SMTP_REPLY_TOO_MANY_RCPTS "452 4.5.3 Too many recipients"
#define SMTP_REPLY_SHELL_CHARS \
	"553 5.1.3 Address contains characters not accepted here"

/* Where an AUTH exchange stands. */
enum smtp_state {
	SMTP_STATE_GREETING,	/* waiting out the greeting delay */
	SMTP_STATE_COMMAND,	/* reading command lines */
	SMTP_STATE_DATA,	/* reading DATA content up to CRLF.CRLF */
	SMTP_STATE_BDAT,	/* reading a BDAT chunk */
	SMTP_STATE_AUTH,	/* an AUTH exchange (smtp_auth.c) */
	SMTP_STATE_COMMIT,	/* the disk threads hold our message */
	SMTP_STATE_CLOSING,	/* flushing the last reply */
};

struct smtp_session {
	TAILQ_ENTRY(smtp_session) entry;
	struct smtp_server *srv;
	struct io *io;
	struct sockaddr_storage peer;
	enum smtp_service service;
	char id[17];
	enum smtp_state state;
	struct event *timer;		/* greeting delay, DATA deadline */
	unsigned errors;
	bool esmtp;
	char helo[SMTP_HELO_MAX];
	bool shutdown_after_txn;	/* server is stopping */
	bool dead;			/* peer gone while committing */

	/* SMTP AUTH (RFC 4954), submission services only. */
	bool authenticated;
	char account[ACCOUNT_ADDRESS_MAX + 1];	/* who logged in */
	struct sasl_exchange sasl;	/* AUTH: PLAIN or LOGIN in progress */
	bool auth_checking;		/* the auth process has the password */
	uint64_t auth_handle;		/* the pending check, or 0 */

	/* The transaction. */
	bool mail_seen;
	struct smtp_mail_params mail;
	char from[SMTP_PATH_MAX + 1];	/* formatted, "" for <> */
	struct recipient_list rcpts;	/* resolved destinations */
	char **rcpt_given;		/* as the client wrote them */
	size_t n_rcpt_given, cap_rcpt_given;
	uint64_t rcpt_attempts;		/* RCPT commands, accepted or not */
	char queue_id[17];

	/* The message being received. */
	bool bdat_started;		/* CHUNKING transaction */
	bool bdat_discard;		/* chunk bytes are thrown away */
	bool bdat_last;
	uint64_t bdat_remaining;
	const char *bdat_error;		/* reply owed after the chunk */
	bool bdat_close;		/* close after the chunk's reply */
	struct smtp_data_decoder dec;
	int spool_fd;
	char spool_path[PATH_MAX];
	uint64_t header_size;		/* Return-Path and Received */
	uint64_t message_size;		/* the client's octets, decoded */
	bool too_big;
	int write_errno;
	/* RFC 6409 8: a user's message gets Message-ID and Date if missing,
	 * inserted where its header section ends. */
	bool add_fields;
	struct smtp_header_scan hscan;
	char *wbuf;			/* decoded content not yet written;
					 * allocated only during a message */
	size_t wlen;
};

static inline const struct tegami_config *
smtp_cfg(const struct smtp_session *s)
{
	return s->srv->cfg;
}

/* smtp_session.c */
void smtp_set_state(struct smtp_session *s, enum smtp_state state);
void smtp_reply(struct smtp_session *s, const char *line);
/* An error reply; false when it closed the session (too many errors). */
bool smtp_reply_error(struct smtp_session *s, const char *line);
void smtp_transaction_reset(struct smtp_session *s);
void smtp_close(struct smtp_session *s, const char *reply);
/* Ends the session: logs, releases its connection slot, frees it. */
void smtp_free(struct smtp_session *s);

/* smtp_auth.c */
/* The AUTH command. */
void smtp_do_auth(struct smtp_session *s, const char *args, size_t len);
/* Input during an exchange; false when more input is needed. */
bool smtp_auth_input(struct smtp_session *s);
/* Ends an exchange in progress (the session closes or resets). */
void smtp_auth_abort(struct smtp_session *s);
/* Whether EHLO lists AUTH: a submission service, over TLS. */
bool smtp_auth_offered(const struct smtp_session *s);
/* MAIL FROM on a submission service: NULL, or the refusal. */
const char *smtp_auth_check_sender(struct smtp_session *s);

/* smtp_message.c */
/* One log line for a message: result, and the reason when refused. */
void smtp_log_message(struct smtp_session *s, const char *result,
    const char *reason);
/* Creates the spool file with the trace headers; false: replied 4xx. */
bool smtp_spool_open(struct smtp_session *s);
/* Drops the spooled message, if any. */
void smtp_spool_discard(struct smtp_session *s);
/* Arms the DATA timeouts (smtp_timeout_data_block, smtp_data_deadline). */
void smtp_start_deadline(struct smtp_session *s);
/* Consume buffered DATA / BDAT input; false when more input is needed. */
bool smtp_data_input(struct smtp_session *s);
bool smtp_bdat_input(struct smtp_session *s);

#endif
