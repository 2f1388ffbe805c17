/*
 * The server side of one SASL exchange with PLAIN (RFC 4616) or LOGIN
 * (draft-murchison-sasl-login), the same for SMTP AUTH (RFC 4954) and
 * POP3 AUTH (RFC 5034): it takes the client's decoded responses and says
 * what to do next (send a challenge, check a password, refuse). The
 * protocols only frame the lines ("334 ", "+ ") and run the check.
 */
#ifndef TEGAMI_SASL_EXCHANGE_H
#define TEGAMI_SASL_EXCHANGE_H

#include <stddef.h>

#include "auth/accounts.h"
#include "auth/sasl.h"

enum sasl_exchange_step {
	SASL_EXCHANGE_IDLE = 0,
	SASL_EXCHANGE_PLAIN_RESPONSE,	/* waiting for PLAIN's message */
	SASL_EXCHANGE_LOGIN_USER,	/* "Username:" was sent */
	SASL_EXCHANGE_LOGIN_PASSWORD,	/* "Password:" was sent */
};

struct sasl_exchange {
	enum sasl_exchange_step step;
	char user[SASL_NAME_MAX + 1];	/* the name, once given */
};

enum sasl_exchange_result {
	SASL_EXCHANGE_CHALLENGE,	/* send *challenge_r, read another */
	SASL_EXCHANGE_CHECK,		/* check x->user with password_r */
	SASL_EXCHANGE_REFUSED,		/* *why_r says why, for the log */
};

/*
 * Starts an exchange for mech (PLAIN or LOGIN). Returns the first
 * challenge to send when the client gave no initial response: "" for
 * PLAIN, base64 "Username:" for LOGIN.
 */
const char *sasl_exchange_start(struct sasl_exchange *x,
    enum sasl_mechanism mech);

/*
 * Takes one decoded response. On SASL_EXCHANGE_CHECK, x->user and
 * password_r (ACCOUNTS_PASSWORD_MAX + 1 bytes, NUL-terminated) hold the
 * credentials and the exchange is over; on REFUSED it is over too. The
 * caller wipes password_r after use.
 */
enum sasl_exchange_result sasl_exchange_step(struct sasl_exchange *x,
    const unsigned char *msg, size_t len, const char **challenge_r,
    char *password_r, const char **why_r);

/* Ends the exchange and wipes the name. */
void sasl_exchange_reset(struct sasl_exchange *x);

#endif
