/*
 * SMTP AUTH (RFC 4954) on the submission services, with the PLAIN (RFC
 * 4616) and LOGIN mechanisms, offered only over TLS. The password goes to
 * the auth process (auth_client.c) and the session waits without blocking
 * anyone; a failure's reply is held back as long as the auth process says.
 * Also the submission rule that users send only as themselves.
 */
#include <stdio.h>
#include <string.h>

#include "auth/accounts.h"
#include "auth/auth_client.h"
#include "auth/sasl.h"
#include "core/log.h"
#include "net/io.h"
#include "smtp/smtp_session_private.h"

#define R_AUTH_OK	"235 2.7.0 Authentication successful"
#define R_AUTH_FAILED	"535 5.7.8 Authentication credentials invalid"
#define R_AUTH_TEMP	"454 4.7.0 Temporary authentication failure"
#define R_AUTH_THROTTLED \
	"454 4.7.0 Too many failed logins; try again later"
#define R_AUTH_CANCELLED "501 5.0.0 Authentication cancelled"
#define R_AUTH_BASE64	"501 5.5.2 Cannot decode response"

bool
smtp_auth_offered(const struct smtp_session *s)
{
	return s->service != SMTP_SERVICE_MX && io_is_tls(s->io);
}

void
smtp_auth_abort(struct smtp_session *s)
{
	if (s->auth_handle != 0 && s->srv->auth != NULL)
		auth_client_cancel(s->srv->auth, s->auth_handle);
	s->auth_handle = 0;
	s->auth_checking = false;
	sasl_exchange_reset(&s->sasl);
}

/* Back to commands, with a reply that counts as an error. */
static void
smtp_auth_fail(struct smtp_session *s, const char *reply)
{
	smtp_auth_abort(s);
	smtp_set_state(s, SMTP_STATE_COMMAND);
	smtp_reply_error(s, reply);
}

static void
smtp_auth_result(void *arg, enum auth_result_code code, unsigned delay_ms,
    const char *account)
{
	struct smtp_session *s = arg;

	s->auth_handle = 0;
	s->auth_checking = false;
	smtp_set_state(s, SMTP_STATE_COMMAND);
	/* Hold first: from here a reply is sent at once. */
	if (code == AUTH_FAILED || code == AUTH_THROTTLED)
		io_hold(s->io, delay_ms);
	switch (code) {
	case AUTH_OK:
		s->authenticated = true;
		snprintf(s->account, sizeof(s->account), "%s", account);
		log_info("session=%s authenticated user=<%s>", s->id,
		    s->account);
		smtp_reply(s, R_AUTH_OK);
		break;
	case AUTH_FAILED:
		if (!smtp_reply_error(s, R_AUTH_FAILED))
			return;
		break;
	case AUTH_THROTTLED:
		if (!smtp_reply_error(s, R_AUTH_THROTTLED))
			return;
		break;
	case AUTH_TEMPFAIL:
		smtp_reply(s, R_AUTH_TEMP);
		break;
	}
	sasl_exchange_reset(&s->sasl);
	io_resume(s->io);
}

/* Hands the name and password to the auth process and waits. */
static void
smtp_auth_check(struct smtp_session *s, const char *user,
    const char *password)
{
	if (s->srv->auth == NULL) {
		smtp_auth_abort(s);
		smtp_set_state(s, SMTP_STATE_COMMAND);
		smtp_reply(s, R_AUTH_TEMP);
		return;
	}
	smtp_set_state(s, SMTP_STATE_AUTH);
	s->auth_checking = true;
	/* Nothing more is read until the answer: RFC 4954 4 lets no command
	 * follow AUTH before its reply. */
	io_pause(s->io);
	s->auth_handle = auth_client_check(s->srv->auth,
	    smtp_service_name(s->service), io_peer_address(s->io), user,
	    password, smtp_auth_result, s);
}

/* One decoded client response, for the step the exchange is at. */
static void
smtp_auth_step(struct smtp_session *s, const unsigned char *msg, size_t len)
{
	char password[ACCOUNTS_PASSWORD_MAX + 1], line[64];
	const char *challenge, *why;

	switch (sasl_exchange_step(&s->sasl, msg, len, &challenge, password,
	    &why)) {
	case SASL_EXCHANGE_CHALLENGE:
		smtp_set_state(s, SMTP_STATE_AUTH);
		snprintf(line, sizeof(line), "334 %s", challenge);
		smtp_reply(s, line);
		break;
	case SASL_EXCHANGE_CHECK:
		smtp_auth_check(s, s->sasl.user, password);
		break;
	case SASL_EXCHANGE_REFUSED:
		log_info("session=%s AUTH refused: %s", s->id, why);
		smtp_auth_fail(s, R_AUTH_FAILED);
		break;
	}
	explicit_bzero(password, sizeof(password));
}

/*
 * Decodes a response: the initial one on the AUTH line ("=" is the empty
 * one, RFC 4954 4) or a line after 334. Returns false when it replied.
 */
static bool
smtp_auth_decode(struct smtp_session *s, const char *text, size_t len,
    bool initial, unsigned char *out, size_t *out_len_r)
{
	bool cancel = false;
	ssize_t n;

	if (initial)
		n = sasl_decode_initial_response(text, len, out,
		    SASL_RESPONSE_MAX);
	else
		n = sasl_decode_response(text, len, &cancel, out,
		    SASL_RESPONSE_MAX);
	if (cancel) {
		smtp_auth_abort(s);
		smtp_set_state(s, SMTP_STATE_COMMAND);
		smtp_reply_error(s, R_AUTH_CANCELLED);
		return false;
	}
	if (n < 0) {
		smtp_auth_fail(s, R_AUTH_BASE64);
		return false;
	}
	*out_len_r = (size_t)n;
	return true;
}

void
smtp_do_auth(struct smtp_session *s, const char *args, size_t len)
{
	unsigned char msg[SASL_RESPONSE_MAX];
	enum sasl_mechanism mech;
	const char *err, *initial, *challenge;
	size_t initial_len, msg_len;
	char line[64];

	if (s->service == SMTP_SERVICE_MX) {
		smtp_reply_error(s, "502 5.5.1 AUTH not available on this "
		    "service; use the submission port");
		return;
	}
	if (!io_is_tls(s->io)) {
		smtp_reply_error(s, "538 5.7.11 Encryption required for "
		    "requested authentication mechanism");
		return;
	}
	if (s->helo[0] == '\0') {
		smtp_reply_error(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->authenticated) {
		smtp_reply_error(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->mail_seen) {
		smtp_reply_error(s, "503 5.5.1 Error: AUTH not permitted "
		    "during a mail transaction");
		return;
	}
	err = sasl_parse_auth_args(args, len, &mech, &initial, &initial_len);
	if (err != NULL) {
		smtp_reply_error(s, err);
		return;
	}
	if (mech == SASL_MECH_UNKNOWN) {
		smtp_reply_error(s, "504 5.5.4 Unrecognized authentication "
		    "type; use PLAIN or LOGIN");
		return;
	}
	smtp_set_state(s, SMTP_STATE_AUTH);
	challenge = sasl_exchange_start(&s->sasl, mech);
	if (initial != NULL) {
		if (!smtp_auth_decode(s, initial, initial_len, true, msg,
		    &msg_len))
			return;
		smtp_auth_step(s, msg, msg_len);
		explicit_bzero(msg, sizeof(msg));
		return;
	}
	snprintf(line, sizeof(line), "334 %s", challenge);
	smtp_reply(s, line);
}

bool
smtp_auth_input(struct smtp_session *s)
{
	unsigned char msg[SASL_RESPONSE_MAX];
	enum io_line_result r;
	size_t len, msg_len;
	char *line;

	if (s->auth_checking)
		return false;
	r = io_get_line(s->io, SASL_LINE_MAX, &line, &len);
	if (r == IO_LINE_NONE)
		return false;
	if (r == IO_LINE_TOO_LONG) {
		smtp_auth_fail(s, "500 5.5.6 Authentication exchange line is "
		    "too long");
		return true;
	}
	if (smtp_auth_decode(s, line, len, false, msg, &msg_len))
		smtp_auth_step(s, msg, msg_len);
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(line, len);
	return true;
}

const char *
smtp_auth_check_sender(struct smtp_session *s)
{
	static char reply[SMTP_PATH_MAX + 128];
	char shown[SMTP_PATH_MAX + 1];
	size_t i;

	if (s->service == SMTP_SERVICE_MX)
		return NULL;
	if (!s->authenticated)
		return "530 5.7.0 Authentication required";
	if (accounts_may_send_as(s->srv->accounts, s->account, s->from))
		return NULL;
	/* The address goes back to the client: printable ASCII only. */
	snprintf(shown, sizeof(shown), "%s", s->from);
	for (i = 0; shown[i] != '\0'; i++)
		if ((unsigned char)shown[i] < 0x20 ||
		    (unsigned char)shown[i] > 0x7e)
			shown[i] = '?';
	log_info("session=%s user=<%s> may not send as <%s>", s->id,
	    s->account, shown);
	snprintf(reply, sizeof(reply), "553 5.7.1 <%s>: Sender address "
	    "rejected: not owned by the authenticated user", shown);
	return reply;
}
