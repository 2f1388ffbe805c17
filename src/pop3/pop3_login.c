/*
 * POP3 logins: USER/PASS (RFC 1939 7) and AUTH with SASL PLAIN or LOGIN
 * (RFC 5034), only over TLS unless pop3_plaintext_loopback allows a local
 * client (RFC 2595 2.1, RFC 8314). The password goes to the auth process,
 * which also throttles guessing for every service together; the session
 * waits without blocking anyone. Response codes from RFC 2449 and 3206.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_client.h"
#include "core/config.h"
#include "core/log.h"
#include "net/io.h"
#include "pop3/pop3_session.h"

#define R_PLAINTEXT "-ERR [AUTH] Plaintext authentication disallowed on " \
	"non-secure connections; use STLS or port 995"
#define R_AUTH_FAILED "-ERR [AUTH] Authentication failed"
#define R_AUTH_TEMP "-ERR [SYS/TEMP] Temporary authentication failure; " \
	"try again later"
#define R_AUTH_THROTTLED "-ERR [SYS/TEMP] Too many failed logins; try " \
	"again later"

static bool
pop3_peer_is_loopback(const struct pop3_session *s)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->peer;
	const struct sockaddr_in6 *sin6 =
	    (const struct sockaddr_in6 *)&s->peer;

	if (s->peer.ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	if (s->peer.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	return false;
}

bool
pop3_login_allowed(const struct pop3_session *s)
{
	return io_is_tls(s->io) || (pop3_cfg(s)->pop3_plaintext_loopback &&
	    pop3_peer_is_loopback(s));
}

void
pop3_login_abort(struct pop3_session *s)
{
	if (s->auth_handle != 0 && s->srv->auth != NULL)
		auth_client_cancel(s->srv->auth, s->auth_handle);
	s->auth_handle = 0;
	sasl_exchange_reset(&s->sasl);
	s->have_user = false;
	explicit_bzero(s->user, sizeof(s->user));
}

/* Back to AUTHORIZATION with an error that counts. */
static void
pop3_login_fail(struct pop3_session *s, const char *reply)
{
	pop3_login_abort(s);
	pop3_set_state(s, POP3_STATE_AUTHORIZATION);
	pop3_reply_error(s, reply);
}

static void
pop3_login_result(void *arg, enum auth_result_code code, unsigned delay_ms,
    const char *account)
{
	struct pop3_session *s = arg;

	s->auth_handle = 0;
	pop3_login_abort(s);
	pop3_set_state(s, POP3_STATE_AUTHORIZATION);
	/* Hold first: from here a reply is sent at once. */
	if (code == AUTH_FAILED || code == AUTH_THROTTLED)
		io_hold(s->io, delay_ms);
	switch (code) {
	case AUTH_OK:
		snprintf(s->account, sizeof(s->account), "%s", account);
		log_info("session=%s authenticated user=<%s>", s->id,
		    s->account);
		pop3_mailbox_open(s);
		break;
	case AUTH_FAILED:
		if (!pop3_reply_error(s, R_AUTH_FAILED))
			return;
		break;
	case AUTH_THROTTLED:
		if (!pop3_reply_error(s, R_AUTH_THROTTLED))
			return;
		break;
	case AUTH_TEMPFAIL:
		pop3_reply(s, R_AUTH_TEMP);
		break;
	}
	if (s->state != POP3_STATE_CLOSING)
		io_resume(s->io);
}

/* Hands the name and password to the auth process and waits. */
static void
pop3_login_check(struct pop3_session *s, const char *user,
    const char *password)
{
	if (s->srv->auth == NULL) {
		pop3_login_abort(s);
		pop3_set_state(s, POP3_STATE_AUTHORIZATION);
		pop3_reply(s, R_AUTH_TEMP);
		return;
	}
	pop3_set_state(s, POP3_STATE_CHECKING);
	/* Nothing more is read until the answer. */
	io_pause(s->io);
	s->auth_handle = auth_client_check(s->srv->auth,
	    pop3_service_name(s->service), io_peer_address(s->io), user,
	    password, pop3_login_result, s);
}

void
pop3_do_user(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (!pop3_login_allowed(s)) {
		pop3_reply_error(s, R_PLAINTEXT);
		return;
	}
	if (cmd->arg_len > SASL_NAME_MAX) {
		pop3_login_fail(s, "-ERR [AUTH] User name too long");
		return;
	}
	memcpy(s->user, cmd->arg, cmd->arg_len);
	s->user[cmd->arg_len] = '\0';
	s->have_user = true;
	pop3_reply(s, "+OK Send your password");
}

void
pop3_do_pass(struct pop3_session *s, const struct pop3_command *cmd)
{
	char password[ACCOUNTS_PASSWORD_MAX + 1];

	if (!pop3_login_allowed(s)) {
		pop3_reply_error(s, R_PLAINTEXT);
		return;
	}
	if (!s->have_user) {
		pop3_reply_error(s, "-ERR Send USER first");
		return;
	}
	if (cmd->arg_len == 0 || cmd->arg_len > ACCOUNTS_PASSWORD_MAX) {
		/* Not a password any account can have: no need to ask. */
		log_info("session=%s PASS refused: empty or too long", s->id);
		pop3_login_fail(s, R_AUTH_FAILED);
		return;
	}
	memcpy(password, cmd->arg, cmd->arg_len);
	password[cmd->arg_len] = '\0';
	pop3_login_check(s, s->user, password);
	explicit_bzero(password, sizeof(password));
}

void
pop3_do_apop(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	/* APOP needs the password in clear on the server and MD5. */
	pop3_reply_error(s, "-ERR APOP is not supported; use USER and PASS "
	    "or AUTH PLAIN over TLS");
}

/* One decoded client response, for the step the exchange is at. */
static void
pop3_sasl_step(struct pop3_session *s, const unsigned char *msg, size_t len)
{
	char password[ACCOUNTS_PASSWORD_MAX + 1], line[64];
	const char *challenge, *why;

	switch (sasl_exchange_step(&s->sasl, msg, len, &challenge, password,
	    &why)) {
	case SASL_EXCHANGE_CHALLENGE:
		pop3_set_state(s, POP3_STATE_SASL);
		snprintf(line, sizeof(line), "+ %s", challenge);
		pop3_reply(s, line);
		break;
	case SASL_EXCHANGE_CHECK:
		pop3_login_check(s, s->sasl.user, password);
		break;
	case SASL_EXCHANGE_REFUSED:
		log_info("session=%s AUTH refused: %s", s->id, why);
		pop3_login_fail(s, R_AUTH_FAILED);
		break;
	}
	explicit_bzero(password, sizeof(password));
}

void
pop3_do_auth(struct pop3_session *s, const struct pop3_command *cmd)
{
	unsigned char msg[SASL_RESPONSE_MAX];
	enum sasl_mechanism mech;
	const char *initial, *challenge;
	size_t initial_len, args_len;
	char line[64];
	ssize_t n;

	if (cmd->arg_len == 0) {
		/* "AUTH" alone: the mechanisms, as many clients ask (the
		 * list that CAPA's SASL line gives, RFC 5034 4). */
		if (!pop3_login_allowed(s))
			io_printf(s->io, "+OK\r\n.\r\n");
		else
			io_printf(s->io, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
		return;
	}
	if (!pop3_login_allowed(s)) {
		pop3_reply_error(s, R_PLAINTEXT);
		return;
	}
	args_len = cmd->arg2_len > 0 ?
	    (size_t)(cmd->arg2 + cmd->arg2_len - cmd->arg) : cmd->arg_len;
	if (sasl_parse_auth_args(cmd->arg, args_len, &mech, &initial,
	    &initial_len) != NULL) {
		pop3_reply_error(s, "-ERR Syntax error: AUTH mechanism "
		    "[initial-response]");
		return;
	}
	if (mech == SASL_MECH_UNKNOWN) {
		pop3_reply_error(s, "-ERR Unsupported authentication "
		    "mechanism; use PLAIN or LOGIN");
		return;
	}
	pop3_login_abort(s);
	challenge = sasl_exchange_start(&s->sasl, mech);
	if (initial != NULL) {
		n = sasl_decode_initial_response(initial, initial_len, msg,
		    sizeof(msg));
		if (n < 0) {
			pop3_login_fail(s, "-ERR Cannot decode the "
			    "response");
			return;
		}
		pop3_sasl_step(s, msg, (size_t)n);
		explicit_bzero(msg, sizeof(msg));
		return;
	}
	pop3_set_state(s, POP3_STATE_SASL);
	snprintf(line, sizeof(line), "+ %s", challenge);
	pop3_reply(s, line);
}

bool
pop3_sasl_input(struct pop3_session *s)
{
	unsigned char msg[SASL_RESPONSE_MAX];
	enum io_line_result r;
	bool cancel = false;
	size_t len;
	ssize_t n;
	char *line;

	r = io_get_line(s->io, POP3_SASL_LINE_MAX, &line, &len);
	if (r == IO_LINE_NONE)
		return false;
	if (r == IO_LINE_TOO_LONG) {
		pop3_login_fail(s, "-ERR Authentication line too long");
		return true;
	}
	n = sasl_decode_response(line, len, &cancel, msg, sizeof(msg));
	explicit_bzero(line, len);
	if (cancel)
		pop3_login_fail(s, "-ERR Authentication cancelled");
	else if (n < 0)
		pop3_login_fail(s, "-ERR Cannot decode the response");
	else
		pop3_sasl_step(s, msg, (size_t)n);
	explicit_bzero(msg, sizeof(msg));
	return true;
}
