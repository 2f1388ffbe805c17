/*
 * SMTP server session: RFC 5321 commands, RFC 2920 PIPELINING, RFC 1870
 * SIZE, RFC 6152 8BITMIME, RFC 2034 ENHANCEDSTATUSCODES, RFC 6531
 * SMTPUTF8 and RFC 3030 CHUNKING. One state variable, one command table;
 * parsing lives in smtp_parse.c, the message content in smtp_message.c,
 * and the disk work in store/commit.c.
 */
#include "smtp/smtp_session.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/util.h"
#include "net/conn_limit.h"
#include "net/io.h"
#include "net/tls.h"
#include "smtp/smtp_session_private.h"

static const char *const smtp_state_names[] = {
	"greeting", "command", "data", "bdat", "auth", "commit", "closing",
};

/* Command flags, in the manner of Postfix's and OpenSMTPD's tables. */
#define CMD_NEEDS_HELO		0x01	/* 503 before HELO/EHLO */
#define CMD_LAST_IN_GROUP	0x02	/* RFC 2920 3.1: no input may follow */

struct smtp_command_entry {
	enum smtp_verb verb;
	unsigned flags;
	void (*handler)(struct smtp_session *s, const char *args, size_t len);
};

static void smtp_do_helo(struct smtp_session *, const char *, size_t);
static void smtp_do_ehlo(struct smtp_session *, const char *, size_t);
static void smtp_do_mail(struct smtp_session *, const char *, size_t);
static void smtp_do_rcpt(struct smtp_session *, const char *, size_t);
static void smtp_do_data(struct smtp_session *, const char *, size_t);
static void smtp_do_bdat(struct smtp_session *, const char *, size_t);
static void smtp_do_rset(struct smtp_session *, const char *, size_t);
static void smtp_do_noop(struct smtp_session *, const char *, size_t);
static void smtp_do_quit(struct smtp_session *, const char *, size_t);
static void smtp_do_help(struct smtp_session *, const char *, size_t);
static void smtp_do_vrfy(struct smtp_session *, const char *, size_t);
static void smtp_do_expn(struct smtp_session *, const char *, size_t);
static void smtp_do_starttls(struct smtp_session *, const char *, size_t);

static const struct smtp_command_entry smtp_commands[] = {
	{ SMTP_VERB_HELO, CMD_LAST_IN_GROUP, smtp_do_helo },
	{ SMTP_VERB_EHLO, CMD_LAST_IN_GROUP, smtp_do_ehlo },
	{ SMTP_VERB_MAIL, CMD_NEEDS_HELO, smtp_do_mail },
	{ SMTP_VERB_RCPT, CMD_NEEDS_HELO, smtp_do_rcpt },
	{ SMTP_VERB_DATA, CMD_NEEDS_HELO | CMD_LAST_IN_GROUP, smtp_do_data },
	{ SMTP_VERB_BDAT, 0, smtp_do_bdat },
	{ SMTP_VERB_RSET, 0, smtp_do_rset },
	{ SMTP_VERB_NOOP, CMD_LAST_IN_GROUP, smtp_do_noop },
	{ SMTP_VERB_QUIT, 0, smtp_do_quit },
	{ SMTP_VERB_HELP, 0, smtp_do_help },
	{ SMTP_VERB_VRFY, 0, smtp_do_vrfy },
	{ SMTP_VERB_EXPN, 0, smtp_do_expn },
	{ SMTP_VERB_STARTTLS, 0, smtp_do_starttls },
	{ SMTP_VERB_AUTH, 0, smtp_do_auth },
};

static void smtp_input(void *arg);
static void smtp_io_event(void *arg, enum io_event ev);

void
smtp_set_state(struct smtp_session *s, enum smtp_state state)
{
	if (s->state != state)
		log_debug("session=%s state %s -> %s", s->id,
		    smtp_state_names[s->state], smtp_state_names[state]);
	s->state = state;
}

void
smtp_reply(struct smtp_session *s, const char *line)
{
	io_reply(s->io, line);
}

/*
 * An error reply that counts towards smtp_error_limit (RFC 5321 is silent;
 * Postfix's smtpd_hard_error_limit is the model). Returns false when the
 * session was closed for too many errors.
 */
bool
smtp_reply_error(struct smtp_session *s, const char *line)
{
	char buf[300];

	smtp_reply(s, line);
	if (++s->errors < smtp_cfg(s)->smtp_error_limit) {
		/* Past the soft limit every error costs the client time. */
		if (s->errors > smtp_cfg(s)->smtp_soft_error_limit)
			io_hold(s->io, smtp_cfg(s)->smtp_error_delay_ms);
		return true;
	}
	log_info("session=%s too many errors (%u)", s->id, s->errors);
	snprintf(buf, sizeof(buf), "421 4.7.0 %s Error: too many errors",
	    smtp_cfg(s)->hostname);
	smtp_close(s, buf);
	return false;
}

void
smtp_transaction_reset(struct smtp_session *s)
{
	size_t i;

	smtp_spool_discard(s);
	s->mail_seen = false;
	memset(&s->mail, 0, sizeof(s->mail));
	s->from[0] = '\0';
	recipient_list_clear(&s->rcpts);
	for (i = 0; i < s->n_rcpt_given; i++)
		free(s->rcpt_given[i]);
	free(s->rcpt_given);
	s->rcpt_given = NULL;
	s->n_rcpt_given = 0;
	s->cap_rcpt_given = 0;
	s->rcpt_attempts = 0;
	s->queue_id[0] = '\0';
	s->bdat_started = false;
	s->bdat_discard = false;
	s->bdat_last = false;
	s->bdat_remaining = 0;
	s->bdat_error = NULL;
	s->header_size = 0;
	s->message_size = 0;
	s->too_big = false;
	s->write_errno = 0;
}

void
smtp_close(struct smtp_session *s, const char *reply)
{
	if (s->state == SMTP_STATE_CLOSING)
		return;
	if (reply != NULL)
		smtp_reply(s, reply);
	smtp_auth_abort(s);
	if (s->state != SMTP_STATE_COMMIT)
		smtp_transaction_reset(s);
	if (s->timer != NULL)
		evtimer_del(s->timer);
	smtp_set_state(s, SMTP_STATE_CLOSING);
	io_close_after_flush(s->io);
}

void
smtp_free(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;

	smtp_transaction_reset(s);
	smtp_auth_abort(s);
	log_info("session=%s disconnect errors=%u", s->id, s->errors);
	conn_limit_release((struct sockaddr *)&s->peer);
	TAILQ_REMOVE(&srv->sessions, s, entry);
	io_free(&s->io);
	if (s->timer != NULL)
		event_free(s->timer);
	free(s);
	smtp_server_session_ended(srv);
}

static void
smtp_banner(struct smtp_session *s)
{
	io_printf(s->io, "220 %s ESMTP tegami\r\n", smtp_cfg(s)->hostname);
	smtp_set_state(s, SMTP_STATE_COMMAND);
	io_set_timeout(s->io, smtp_cfg(s)->smtp_timeout_command);
}

static void
smtp_early_talker(struct smtp_session *s)
{
	log_info("session=%s client talked before the greeting", s->id);
	smtp_close(s, "554 5.5.0 Error: talked before the greeting");
}

static void
smtp_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	char buf[300];

	(void)fd;
	(void)what;
	switch (s->state) {
	case SMTP_STATE_GREETING:
		if (io_input_length(s->io) > 0)
			smtp_early_talker(s);
		else
			smtp_banner(s);
		break;
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
		/* The whole DATA took longer than smtp_data_deadline. */
		log_info("session=%s data deadline exceeded", s->id);
		snprintf(buf, sizeof(buf), "421 4.4.2 %s Error: timeout "
		    "exceeded", smtp_cfg(s)->hostname);
		smtp_close(s, buf);
		break;
	default:
		break;
	}
}

/* Port 465 (RFC 8314 3.3): the TLS handshake comes before the banner. */
static bool
smtp_implicit_tls(struct smtp_session *s)
{
	SSL *ssl;

	if (s->srv->tls == NULL || (ssl = tls_server_ssl(s->srv->tls)) == NULL ||
	    io_start_tls(s->io, ssl) < 0) {
		log_warnx("session=%s cannot start TLS", s->id);
		return false;
	}
	return true;
}

void
smtp_session_start(struct smtp_server *srv, int fd,
    const struct sockaddr *sa, socklen_t salen, enum smtp_service service)
{
	static const struct io_callbacks cb = { smtp_input, smtp_io_event };
	const struct tegami_config *cfg = srv->cfg;
	struct smtp_session *s;
	char buf[300], peek;

	if (srv->shutting_down || !conn_limit_acquire(sa, cfg->max_connections,
	    cfg->max_connections_per_ip)) {
		int n = snprintf(buf, sizeof(buf), "421 4.7.0 %s Too many "
		    "connections\r\n", cfg->hostname);

		if (srv->shutting_down)
			n = snprintf(buf, sizeof(buf), "421 4.3.2 %s Service "
			    "shutting down\r\n", cfg->hostname);
		(void)!write(fd, buf, (size_t)n);
		close(fd);
		log_info("connection refused: too many connections");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->service = service;
	memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
	snprintf(s->id, sizeof(s->id), "%016" PRIx64, srv->next_session_id++);
	s->spool_fd = -1;
	s->timer = evtimer_new(srv->base, smtp_timer_cb, s);
	if (s->timer == NULL)
		fatalx("evtimer_new failed");
	TAILQ_INSERT_TAIL(&srv->sessions, s, entry);
	srv->n_sessions++;
	s->io = io_new(srv->base, fd, SMTP_INPUT_MAX, &cb, s);
	log_info("session=%s connect from=%s service=%s", s->id,
	    io_peer_address(s->io), smtp_service_name(service));

	if (service == SMTP_SERVICE_SUBMISSIONS) {
		if (!smtp_implicit_tls(s)) {
			smtp_free(s);
			return;
		}
		smtp_banner(s);
		return;
	}
	/* A client that sent something before our banner is not an MTA. */
	if (recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
		smtp_early_talker(s);
		return;
	}
	/* The greeting delay is for the MX service: users' clients are not
	 * spam engines, and they are kept out by AUTH anyway. */
	if (cfg->smtp_greeting_delay_ms > 0 && service == SMTP_SERVICE_MX) {
		struct timeval tv = {
			.tv_sec = cfg->smtp_greeting_delay_ms / 1000,
			.tv_usec = (cfg->smtp_greeting_delay_ms % 1000) * 1000,
		};

		/* Input stays enabled: anything that arrives now is an early
		 * talker (smtp_input in SMTP_STATE_GREETING). */
		smtp_set_state(s, SMTP_STATE_GREETING);
		evtimer_add(s->timer, &tv);
		return;
	}
	smtp_banner(s);
}

/* ---- Commands ---------------------------------------------------------- */

static void
smtp_do_helo_common(struct smtp_session *s, const char *args, size_t len,
    bool esmtp)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	const char *err;
	char name[SMTP_HELO_MAX];

	err = smtp_parse_helo_args(args, len, name, sizeof(name));
	if (err != NULL) {
		smtp_reply_error(s, err);
		return;
	}
	/* RFC 5321 4.1.4: EHLO/HELO implies RSET. */
	smtp_transaction_reset(s);
	memcpy(s->helo, name, sizeof(s->helo));
	s->esmtp = esmtp;
	if (!esmtp) {
		io_printf(s->io, "250 %s\r\n", cfg->hostname);
		return;
	}
	io_printf(s->io,
	    "250-%s\r\n"
	    "%s"
	    "250-PIPELINING\r\n"
	    "250-SIZE %" PRIu64 "\r\n"
	    "250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-SMTPUTF8\r\n"
	    "%s"
	    "250 CHUNKING\r\n", cfg->hostname,
	    s->srv->tls != NULL && !io_is_tls(s->io) ? "250-STARTTLS\r\n" : "",
	    cfg->message_size_limit,
	    smtp_auth_offered(s) ? "250-AUTH PLAIN LOGIN\r\n" : "");
}

static void
smtp_do_helo(struct smtp_session *s, const char *args, size_t len)
{
	smtp_do_helo_common(s, args, len, false);
}

static void
smtp_do_ehlo(struct smtp_session *s, const char *args, size_t len)
{
	smtp_do_helo_common(s, args, len, true);
}

static bool
smtp_disk_space_low(struct smtp_session *s)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	struct statvfs sv;
	uint64_t free_bytes, need;

	if (statvfs(s->srv->spool_dir, &sv) < 0)
		return false;
	free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	need = cfg->min_free_space;
	if (s->mail.has_size && s->mail.size < UINT64_MAX - need)
		need += s->mail.size;
	return free_bytes < need;
}

static void
smtp_do_mail(struct smtp_session *s, const char *args, size_t len)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	const char *err;

	if (s->mail_seen) {
		smtp_reply_error(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	/* RFC 6409 4.3: submission is for authenticated users only. */
	if (s->service != SMTP_SERVICE_MX && !s->authenticated) {
		smtp_reply_error(s, "530 5.7.0 Authentication required");
		return;
	}
	err = smtp_parse_mail_args(args, len, s->esmtp, &s->mail);
	if (err != NULL) {
		memset(&s->mail, 0, sizeof(s->mail));
		smtp_reply_error(s, err);
		return;
	}
	if (smtp_address_has_shell_chars(&s->mail.from)) {
		memset(&s->mail, 0, sizeof(s->mail));
		smtp_reply_error(s, SMTP_REPLY_SHELL_CHARS);
		return;
	}
	if (!s->esmtp && (s->mail.has_size || s->mail.smtputf8 ||
	    s->mail.body != SMTP_BODY_7BIT)) {
		memset(&s->mail, 0, sizeof(s->mail));
		smtp_reply_error(s, "555 5.5.4 ESMTP parameters need EHLO");
		return;
	}
	if (s->mail.has_size && s->mail.size > cfg->message_size_limit) {
		memset(&s->mail, 0, sizeof(s->mail));
		smtp_reply_error(s, "552 5.3.4 Message size exceeds fixed "
		    "limit");
		return;
	}
	if (smtp_disk_space_low(s)) {
		memset(&s->mail, 0, sizeof(s->mail));
		log_warnx("session=%s refusing MAIL: free space in %s below "
		    "min_free_space", s->id, s->srv->spool_dir);
		smtp_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	if (smtp_address_format(&s->mail.from, s->from, sizeof(s->from)) ==
	    (size_t)-1) {
		memset(&s->mail, 0, sizeof(s->mail));
		smtp_reply_error(s, "501 5.1.7 Bad sender address syntax");
		return;
	}
	if ((err = smtp_auth_check_sender(s)) != NULL) {
		memset(&s->mail, 0, sizeof(s->mail));
		s->from[0] = '\0';
		smtp_reply_error(s, err);
		return;
	}
	s->mail_seen = true;
	queue_id_new(s->queue_id);
	smtp_reply(s, "250 2.1.0 Ok");
}

static void
smtp_do_rcpt(struct smtp_session *s, const char *args, size_t len)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	struct smtp_rcpt_params rcpt;
	char formatted[SMTP_PATH_MAX + 1];
	const char *err;

	if (!s->mail_seen) {
		smtp_reply_error(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	s->rcpt_attempts++;
	err = smtp_parse_rcpt_args(args, len, s->mail.smtputf8, &rcpt);
	if (err != NULL) {
		smtp_reply_error(s, err);
		return;
	}
	if (smtp_address_has_shell_chars(&rcpt.to)) {
		smtp_reply_error(s, SMTP_REPLY_SHELL_CHARS);
		return;
	}
	if (s->n_rcpt_given >= cfg->recipient_limit) {
		if (s->rcpt_attempts > (uint64_t)cfg->recipient_limit +
		    SMTP_RCPT_OVERSHOOT_MAX)
			smtp_reply_error(s, SMTP_REPLY_TOO_MANY_RCPTS);
		else
			smtp_reply(s, SMTP_REPLY_TOO_MANY_RCPTS);
		return;
	}
	err = recipient_resolve(cfg, s->srv->accounts, &rcpt.to,
	    s->authenticated, &s->rcpts);
	if (err != NULL) {
		char esc[SMTP_PATH_MAX * 4 + 8];

		smtp_address_format(&rcpt.to, formatted, sizeof(formatted));
		log_escape(formatted, strlen(formatted), esc, sizeof(esc));
		log_info("session=%s rcpt=<%s> rejected: %.3s", s->id, esc,
		    err);
		if (err[0] == '4')
			smtp_reply(s, err);
		else
			smtp_reply_error(s, err);
		return;
	}
	if (smtp_address_format(&rcpt.to, formatted, sizeof(formatted)) ==
	    (size_t)-1)
		formatted[0] = '\0';
	if (s->n_rcpt_given == s->cap_rcpt_given) {
		s->cap_rcpt_given = s->cap_rcpt_given ? s->cap_rcpt_given * 2 :
		    8;
		s->rcpt_given = xreallocarray(s->rcpt_given, s->cap_rcpt_given,
		    sizeof(*s->rcpt_given));
	}
	s->rcpt_given[s->n_rcpt_given++] = xstrdup(formatted);
	smtp_reply(s, "250 2.1.5 Ok");
}

/* RFC 5321 4.1.1.4 / RFC 3030 2: DATA or BDAT with nobody to deliver to. */
static const char *
smtp_no_recipients_reply(const struct smtp_session *s)
{
	if (s->rcpts.n_targets > 0)
		return NULL;
	if (s->rcpt_attempts == 0)
		return "503 5.5.1 Error: need RCPT command";
	return "554 5.5.1 Error: no valid recipients";
}

static void
smtp_do_data(struct smtp_session *s, const char *args, size_t len)
{
	if (len != 0) {
		smtp_reply_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (!s->mail_seen) {
		smtp_reply_error(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->bdat_started) {
		smtp_reply_error(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (smtp_no_recipients_reply(s) != NULL) {
		smtp_reply_error(s, smtp_no_recipients_reply(s));
		return;
	}
	if (!smtp_spool_open(s))
		return;
	smtp_data_decoder_init(&s->dec, true, SMTP_TEXT_LINE_MAX);
	smtp_set_state(s, SMTP_STATE_DATA);
	smtp_start_deadline(s);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
smtp_do_bdat(struct smtp_session *s, const char *args, size_t len)
{
	const struct tegami_config *cfg = smtp_cfg(s);
	uint64_t size;
	bool last;
	const char *err;

	err = smtp_parse_bdat_args(args, len, &size, &last);
	if (err != NULL) {
		/* The chunk's extent is unknown: the stream cannot resync. */
		smtp_close(s, err);
		return;
	}
	if (size > cfg->message_size_limit + SMTP_INPUT_MAX) {
		/* Too big to even skip; RFC 3030 leaves closing as the way. */
		smtp_close(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	s->bdat_remaining = size;
	s->bdat_last = last;
	s->bdat_error = NULL;
	s->bdat_close = false;
	s->bdat_discard = false;
	if (s->helo[0] == '\0')
		s->bdat_error = "503 5.5.1 Error: send HELO/EHLO first";
	else if (!s->mail_seen)
		s->bdat_error = "503 5.5.1 Error: need MAIL command";
	else
		s->bdat_error = smtp_no_recipients_reply(s);
	if (s->bdat_error != NULL) {
		s->bdat_discard = true;
	} else if (!s->bdat_started) {
		if (!smtp_spool_open(s)) {
			/* Replied already; the chunk still has to be skipped. */
			s->bdat_discard = true;
			s->bdat_error = "";
		} else {
			s->bdat_started = true;
			smtp_data_decoder_init(&s->dec, false,
			    SMTP_TEXT_LINE_MAX);
			smtp_start_deadline(s);
		}
	}
	smtp_set_state(s, SMTP_STATE_BDAT);
}

static void
smtp_do_rset(struct smtp_session *s, const char *args, size_t len)
{
	smtp_transaction_reset(s);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_do_noop(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_do_quit(struct smtp_session *s, const char *args, size_t len)
{
	smtp_close(s, "221 2.0.0 Bye");
}

static void
smtp_do_help(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
	    "RSET NOOP QUIT HELP VRFY; see RFC 5321");
}

static void
smtp_do_vrfy(struct smtp_session *s, const char *args, size_t len)
{
	/* Same answer for every argument: no user enumeration. */
	smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
smtp_do_expn(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply_error(s, "502 5.5.1 EXPN not available");
}

/* RFC 3207. */
static void
smtp_do_starttls(struct smtp_session *s, const char *args, size_t len)
{
	SSL *ssl;

	if (s->srv->tls == NULL) {
		smtp_reply_error(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (io_is_tls(s->io)) {
		smtp_reply_error(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (len != 0) {
		smtp_reply_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (!s->esmtp) {
		smtp_reply_error(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->mail_seen) {
		smtp_reply_error(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
		return;
	}
	if ((ssl = tls_server_ssl(s->srv->tls)) == NULL) {
		smtp_reply(s, "454 4.7.0 TLS not available due to temporary "
		    "reason");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (io_start_tls(s->io, ssl) < 0) {
		smtp_close(s, NULL);
		return;
	}
	/* RFC 3207 4.2: forget everything learnt before TLS, EHLO first. */
	smtp_transaction_reset(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	log_info("session=%s starttls", s->id);
}

static void
smtp_command(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_command_entry *e = NULL;
	struct smtp_command cmd;
	const char *err;
	char buf[300];
	size_t i;

	/* RFC 4954 4: an AUTH line with its initial response may be longer
	 * than other commands (smtp_input reads such lines on submission). */
	if (len > SMTP_COMMAND_LINE_MAX - 2 && len > 5 &&
	    strncasecmp(line, "AUTH ", 5) == 0) {
		smtp_do_auth(s, line + 5, len - 5);
		return;
	}
	err = smtp_parse_command(line, len, &cmd);
	if (err != NULL) {
		smtp_reply_error(s, err);
		return;
	}
	for (i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
		if (smtp_commands[i].verb == cmd.verb) {
			e = &smtp_commands[i];
			break;
		}
	if (e == NULL) {
		smtp_reply_error(s, "500 5.5.1 Command unrecognized");
		return;
	}
	if ((e->flags & CMD_LAST_IN_GROUP) && io_input_length(s->io) > 0) {
		/*
		 * RFC 2920 3.1: this command must end a group. More input
		 * already waiting means a client that does not wait for
		 * replies: a spam engine or a smuggling attempt.
		 */
		log_info("session=%s improper pipelining after %s", s->id,
		    smtp_verb_name(cmd.verb));
		smtp_close(s, "554 5.5.0 Error: improper command pipelining");
		return;
	}
	if ((e->flags & CMD_NEEDS_HELO) && s->helo[0] == '\0') {
		snprintf(buf, sizeof(buf), "503 5.5.1 Error: send HELO/EHLO "
		    "first");
		smtp_reply_error(s, buf);
		return;
	}
	e->handler(s, cmd.args, cmd.args_len);
}

/* ---- Message content --------------------------------------------------- */

static void
smtp_input(void *arg)
{
	struct smtp_session *s = arg;
	enum io_line_result r;
	char *line;
	size_t len;

	for (;;) {
		if (io_held(s->io))
			return;	/* io calls again when the delay is over */
		switch (s->state) {
		case SMTP_STATE_GREETING:
			smtp_early_talker(s);
			return;
		case SMTP_STATE_COMMAND:
			r = io_get_line(s->io, s->service == SMTP_SERVICE_MX ?
			    SMTP_COMMAND_LINE_MAX : SASL_LINE_MAX + 8, &line,
			    &len);
			if (r == IO_LINE_NONE)
				return;
			if (r == IO_LINE_TOO_LONG) {
				if (!smtp_reply_error(s, "500 5.5.2 Error: "
				    "line too long"))
					return;
				continue;
			}
			smtp_command(s, line, len);
			break;
		case SMTP_STATE_DATA:
			if (!smtp_data_input(s))
				return;
			break;
		case SMTP_STATE_BDAT:
			if (!smtp_bdat_input(s))
				return;
			break;
		case SMTP_STATE_AUTH:
			if (!smtp_auth_input(s))
				return;
			break;
		case SMTP_STATE_COMMIT:
		case SMTP_STATE_CLOSING:
			return;
		}
	}
}

static void
smtp_io_event(void *arg, enum io_event ev)
{
	struct smtp_session *s = arg;
	char buf[300];

	switch (ev) {
	case IO_EVENT_TIMEOUT:
		if (s->state == SMTP_STATE_COMMIT) {
			/* Our disk is slow, not the client: wait on. */
			io_resume(s->io);
			return;
		}
		log_info("session=%s timeout in state %s", s->id,
		    smtp_state_names[s->state]);
		snprintf(buf, sizeof(buf), "421 4.4.2 %s Error: timeout "
		    "exceeded", smtp_cfg(s)->hostname);
		smtp_close(s, buf);
		return;
	case IO_EVENT_EOF:
	case IO_EVENT_ERROR:
	case IO_EVENT_CLOSED:
		if (s->state == SMTP_STATE_COMMIT) {
			/* The disk threads still hold our message. */
			s->dead = true;
			io_pause(s->io);
			return;
		}
		smtp_free(s);
		return;
	}
}

void
smtp_session_shutdown(struct smtp_session *s)
{
	char buf[300];

	switch (s->state) {
	case SMTP_STATE_GREETING:
	case SMTP_STATE_COMMAND:
	case SMTP_STATE_AUTH:
		snprintf(buf, sizeof(buf), "421 4.3.2 %s Service shutting "
		    "down", smtp_cfg(s)->hostname);
		smtp_close(s, buf);
		break;
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
	case SMTP_STATE_COMMIT:
		s->shutdown_after_txn = true;
		break;
	case SMTP_STATE_CLOSING:
		break;
	}
}

void
smtp_session_shutdown_now(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT) {
		char buf[300];

		smtp_log_message(s, "aborted", "server shutting down");
		snprintf(buf, sizeof(buf), "421 4.3.2 %s Service shutting "
		    "down", smtp_cfg(s)->hostname);
		smtp_close(s, buf);
	}
}

struct smtp_session *
smtp_session_next(struct smtp_session *s)
{
	return TAILQ_NEXT(s, entry);
}
