/*
 * A POP3 session's life (RFC 1939 3-4): greeting, the command table and
 * its states, CAPA (RFC 2449), STLS (RFC 2595 4), NOOP and QUIT, limits
 * on bad commands and idle time, and closing.
 */
#include "pop3/pop3_session.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/conn_limit.h"
#include "net/io.h"
#include "net/tls.h"

static const char *const pop3_state_names[] = {
	[POP3_STATE_AUTHORIZATION] = "AUTHORIZATION",
	[POP3_STATE_SASL] = "SASL",
	[POP3_STATE_CHECKING] = "CHECKING",
	[POP3_STATE_TRANSACTION] = "TRANSACTION",
	[POP3_STATE_SENDING] = "SENDING",
	[POP3_STATE_DISK] = "DISK",
	[POP3_STATE_CLOSING] = "CLOSING",
};

/* Where a command may be used (RFC 1939 4 and 5). */
#define IN_AUTHORIZATION	0x01
#define IN_TRANSACTION		0x02

struct pop3_command_entry {
	enum pop3_verb verb;
	unsigned states;
	void (*handler)(struct pop3_session *, const struct pop3_command *);
};

static void pop3_do_capa(struct pop3_session *, const struct pop3_command *);
static void pop3_do_stls(struct pop3_session *, const struct pop3_command *);
static void pop3_do_noop(struct pop3_session *, const struct pop3_command *);
static void pop3_do_quit(struct pop3_session *, const struct pop3_command *);

static const struct pop3_command_entry pop3_commands[] = {
	{ POP3_VERB_CAPA, IN_AUTHORIZATION | IN_TRANSACTION, pop3_do_capa },
	{ POP3_VERB_QUIT, IN_AUTHORIZATION | IN_TRANSACTION, pop3_do_quit },
	{ POP3_VERB_STLS, IN_AUTHORIZATION, pop3_do_stls },
	{ POP3_VERB_USER, IN_AUTHORIZATION, pop3_do_user },
	{ POP3_VERB_PASS, IN_AUTHORIZATION, pop3_do_pass },
	{ POP3_VERB_AUTH, IN_AUTHORIZATION, pop3_do_auth },
	{ POP3_VERB_APOP, IN_AUTHORIZATION, pop3_do_apop },
	{ POP3_VERB_STAT, IN_TRANSACTION, pop3_do_stat },
	{ POP3_VERB_LIST, IN_TRANSACTION, pop3_do_list },
	{ POP3_VERB_UIDL, IN_TRANSACTION, pop3_do_uidl },
	{ POP3_VERB_RETR, IN_TRANSACTION, pop3_do_retr },
	{ POP3_VERB_TOP, IN_TRANSACTION, pop3_do_top },
	{ POP3_VERB_DELE, IN_TRANSACTION, pop3_do_dele },
	{ POP3_VERB_RSET, IN_TRANSACTION, pop3_do_rset },
	{ POP3_VERB_NOOP, IN_TRANSACTION, pop3_do_noop },
};

static void pop3_input(void *arg);
static void pop3_io_event(void *arg, enum io_event ev);

struct tegami_config *
pop3_cfg(const struct pop3_session *s)
{
	return s->srv->cfg;
}

void
pop3_set_state(struct pop3_session *s, enum pop3_state state)
{
	if (s->state != state)
		log_debug("session=%s state %s -> %s", s->id,
		    pop3_state_names[s->state], pop3_state_names[state]);
	s->state = state;
}

void
pop3_reply(struct pop3_session *s, const char *line)
{
	io_reply(s->io, line);
}

bool
pop3_reply_error(struct pop3_session *s, const char *line)
{
	pop3_reply(s, line);
	if (++s->errors < pop3_cfg(s)->pop3_error_limit)
		return true;
	log_info("session=%s too many errors (%u)", s->id, s->errors);
	pop3_close(s, "-ERR Too many bad commands; closing");
	return false;
}

void
pop3_close(struct pop3_session *s, const char *reply)
{
	if (s->state == POP3_STATE_CLOSING)
		return;
	if (s->state == POP3_STATE_DISK) {
		/* A disk thread uses the mailbox: after it. */
		s->close_after_disk = reply;
		return;
	}
	if (reply != NULL)
		pop3_reply(s, reply);
	pop3_login_abort(s);
	pop3_mailbox_close(s);
	pop3_set_state(s, POP3_STATE_CLOSING);
	io_close_after_flush(s->io);
}

static void
pop3_free(struct pop3_session *s)
{
	struct pop3_server *srv = s->srv;

	pop3_login_abort(s);
	pop3_mailbox_close(s);
	log_info("session=%s disconnect errors=%u", s->id, s->errors);
	conn_limit_release((struct sockaddr *)&s->peer);
	TAILQ_REMOVE(&srv->sessions, s, entry);
	io_free(&s->io);
	free(s);
	pop3_server_session_ended(srv);
}

static void
pop3_disk_done(struct commit_job *job)
{
	struct pop3_session *s = job->owner;

	/* then leaves POP3_STATE_DISK before it may close (orphaned: it
	 * only logs, and the session is freed here). */
	s->disk_then(s);
	if (s->disk_orphaned) {
		pop3_free(s);
		return;
	}
	if (s->close_after_disk != NULL) {
		pop3_close(s, s->close_after_disk);
		s->close_after_disk = NULL;
	}
	if (s->state != POP3_STATE_CLOSING)
		io_resume(s->io);
}

void
pop3_disk_start(struct pop3_session *s, void (*run)(struct commit_job *job),
    void (*then)(struct pop3_session *s))
{
	memset(&s->disk, 0, sizeof(s->disk));
	s->disk.fd = -1;
	s->disk.owner = s;
	s->disk.run = run;
	s->disk.task_done = pop3_disk_done;
	s->disk_then = then;
	pop3_set_state(s, POP3_STATE_DISK);
	commit_submit(s->srv->commit, &s->disk);
}

static void
pop3_greeting(struct pop3_session *s)
{
	/* No APOP timestamp: APOP (MD5 of a shared secret) is not offered. */
	pop3_reply(s, "+OK tegami POP3 server ready");
	pop3_set_state(s, POP3_STATE_AUTHORIZATION);
}

void
pop3_session_start(struct pop3_server *srv, int fd,
    const struct sockaddr *sa, socklen_t salen, enum pop3_service service)
{
	static const struct io_callbacks cb = { pop3_input, pop3_io_event };
	const struct tegami_config *cfg = srv->cfg;
	struct pop3_session *s;
	SSL *ssl;

	if (srv->shutting_down || !conn_limit_acquire(sa, cfg->max_connections,
	    cfg->max_connections_per_ip)) {
		static const char too_many[] =
		    "-ERR [SYS/TEMP] Too many connections; try again later\r\n";

		/* On 995 the client expects TLS first: it sees a closed
		 * connection, which is what it would see anyway. */
		if (service == POP3_SERVICE_POP3)
			(void)!write(fd, too_many, sizeof(too_many) - 1);
		close(fd);
		log_info("connection refused: too many connections");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->service = service;
	s->lock_fd = -1;
	s->send_fd = -1;
	memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
	snprintf(s->id, sizeof(s->id), "%016" PRIx64, srv->next_session_id++);
	TAILQ_INSERT_TAIL(&srv->sessions, s, entry);
	srv->n_sessions++;
	s->io = io_new(srv->base, fd, POP3_INPUT_MAX, &cb, s);
	io_set_timeout(s->io, cfg->pop3_idle_timeout);
	/* A client that asks for a big message and stops reading it. */
	io_set_write_timeout(s->io, cfg->pop3_idle_timeout);
	log_info("session=%s connect from=%s service=%s", s->id,
	    io_peer_address(s->io), pop3_service_name(service));

	if (service == POP3_SERVICE_POP3S) {
		/* RFC 8314 3.3: the handshake comes before the greeting. */
		if (srv->tls == NULL || (ssl = tls_server_ssl(srv->tls)) == NULL ||
		    io_start_tls(s->io, ssl) < 0) {
			log_warnx("session=%s cannot start TLS", s->id);
			pop3_free(s);
			return;
		}
	}
	pop3_greeting(s);
}

/* ---- Commands ---------------------------------------------------------- */

static void
pop3_do_capa(struct pop3_session *s, const struct pop3_command *cmd)
{
	bool before_login = s->state == POP3_STATE_AUTHORIZATION;

	(void)cmd;
	io_printf(s->io, "+OK Capability list follows\r\n"
	    "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
	    "EXPIRE NEVER\r\n");
	if (before_login && s->service == POP3_SERVICE_POP3 &&
	    !io_is_tls(s->io) && s->srv->tls != NULL)
		io_printf(s->io, "STLS\r\n");
	/* RFC 2595 4 and RFC 8314: no password before TLS, so nothing
	 * that would take one is advertised before it. */
	if (before_login && pop3_login_allowed(s))
		io_printf(s->io, "USER\r\nSASL PLAIN LOGIN\r\n");
	io_printf(s->io, "IMPLEMENTATION tegami\r\n.\r\n");
}

static void
pop3_do_stls(struct pop3_session *s, const struct pop3_command *cmd)
{
	SSL *ssl;

	(void)cmd;
	if (s->service != POP3_SERVICE_POP3 || io_is_tls(s->io)) {
		pop3_reply_error(s, "-ERR Command not permitted when TLS "
		    "active");
		return;
	}
	if (s->srv->tls == NULL) {
		pop3_reply_error(s, "-ERR STLS not available: the server has "
		    "no certificate");
		return;
	}
	if ((ssl = tls_server_ssl(s->srv->tls)) == NULL) {
		pop3_reply(s, "-ERR [SYS/TEMP] TLS not available now");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	/* io_start_tls throws away whatever was pipelined after STLS: it
	 * came in plaintext and must not count (RFC 2595 4, CVE-2011-0411). */
	if (io_start_tls(s->io, ssl) < 0) {
		pop3_close(s, NULL);
		return;
	}
	/* RFC 2595 4: forget what the client said before TLS. */
	pop3_login_abort(s);
	log_info("session=%s starttls", s->id);
}

static void
pop3_do_noop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK");
}

static void
pop3_do_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	if (s->state == POP3_STATE_TRANSACTION) {
		pop3_mailbox_update(s);
		return;
	}
	pop3_close(s, "+OK tegami POP3 server signing off");
}

static void
pop3_command(struct pop3_session *s, const char *line, size_t len)
{
	const struct pop3_command_entry *e = NULL;
	struct pop3_command cmd;
	const char *err;
	unsigned here;
	size_t i;

	err = pop3_parse_command(line, len, &cmd);
	if (err != NULL) {
		pop3_reply_error(s, err);
		return;
	}
	for (i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++)
		if (pop3_commands[i].verb == cmd.verb) {
			e = &pop3_commands[i];
			break;
		}
	if (e == NULL) {
		pop3_reply_error(s, "-ERR Unknown command");
		return;
	}
	here = s->state == POP3_STATE_TRANSACTION ? IN_TRANSACTION :
	    IN_AUTHORIZATION;
	if (!(e->states & here)) {
		pop3_reply_error(s, here == IN_TRANSACTION ?
		    "-ERR Already logged in" :
		    "-ERR Not logged in; use USER and PASS, or AUTH");
		return;
	}
	e->handler(s, &cmd);
}

static void
pop3_input(void *arg)
{
	struct pop3_session *s = arg;
	enum io_line_result r;
	char *line;
	size_t len;

	for (;;) {
		if (io_held(s->io))
			return;	/* io calls again when the delay is over */
		switch (s->state) {
		case POP3_STATE_AUTHORIZATION:
		case POP3_STATE_TRANSACTION:
			r = io_get_line(s->io, POP3_COMMAND_LINE_MAX, &line,
			    &len);
			if (r == IO_LINE_NONE)
				return;
			if (r == IO_LINE_TOO_LONG) {
				/* RFC 2449 4: 255 octets. Whatever follows
				 * is not to be trusted as commands. */
				log_info("session=%s command line too long",
				    s->id);
				pop3_close(s, "-ERR Line too long; closing");
				return;
			}
			pop3_command(s, line, len);
			/* It may hold a password (PASS). */
			explicit_bzero(line, len);
			break;
		case POP3_STATE_SASL:
			if (!pop3_sasl_input(s))
				return;
			break;
		case POP3_STATE_CHECKING:
		case POP3_STATE_SENDING:
		case POP3_STATE_DISK:
		case POP3_STATE_CLOSING:
			return;
		}
	}
}

static void
pop3_io_event(void *arg, enum io_event ev)
{
	struct pop3_session *s = arg;

	switch (ev) {
	case IO_EVENT_TIMEOUT:
		/* The disk thread's work ends by itself; the client waits
		 * for its reply. */
		if (s->state == POP3_STATE_DISK)
			return;
		/* RFC 1939 3: an autologout timer ends the session without
		 * the UPDATE state: nothing is deleted. */
		log_info("session=%s idle timeout in state %s", s->id,
		    pop3_state_names[s->state]);
		pop3_close(s, "-ERR Disconnected for inactivity");
		return;
	case IO_EVENT_EOF:
	case IO_EVENT_ERROR:
	case IO_EVENT_CLOSED:
		if (s->state == POP3_STATE_TRANSACTION ||
		    s->state == POP3_STATE_SENDING)
			log_info("session=%s connection lost before QUIT: "
			    "nothing deleted", s->id);
		if (s->state == POP3_STATE_DISK) {
			/* Freed when the disk thread is done with it; a QUIT
			 * in progress still completes. */
			s->disk_orphaned = true;
			return;
		}
		pop3_free(s);
		return;
	}
}

void
pop3_session_shutdown(struct pop3_session *s)
{
	pop3_close(s, "-ERR [SYS/TEMP] Server shutting down; nothing was "
	    "deleted");
}

struct pop3_session *
pop3_session_next(struct pop3_session *s)
{
	return TAILQ_NEXT(s, entry);
}
