/*
 * One SASL exchange, PLAIN or LOGIN, server side (sasl_exchange.h).
 */
#include "auth/sasl_exchange.h"

#include <string.h>

const char *
sasl_exchange_start(struct sasl_exchange *x, enum sasl_mechanism mech)
{
	sasl_exchange_reset(x);
	if (mech == SASL_MECH_PLAIN) {
		x->step = SASL_EXCHANGE_PLAIN_RESPONSE;
		return "";
	}
	x->step = SASL_EXCHANGE_LOGIN_USER;
	return SASL_LOGIN_USERNAME_CHALLENGE;
}

enum sasl_exchange_result
sasl_exchange_step(struct sasl_exchange *x, const unsigned char *msg,
    size_t len, const char **challenge_r, char *password_r,
    const char **why_r)
{
	struct sasl_plain plain;
	const char *why;

	*challenge_r = NULL;
	*why_r = NULL;
	password_r[0] = '\0';
	switch (x->step) {
	case SASL_EXCHANGE_PLAIN_RESPONSE:
		why = sasl_plain_parse(msg, len, &plain);
		if (why == NULL) {
			memcpy(x->user, plain.authcid, sizeof(x->user));
			memcpy(password_r, plain.passwd, sizeof(plain.passwd));
		}
		explicit_bzero(&plain, sizeof(plain));
		x->step = SASL_EXCHANGE_IDLE;
		if (why != NULL) {
			*why_r = why;
			return SASL_EXCHANGE_REFUSED;
		}
		return SASL_EXCHANGE_CHECK;
	case SASL_EXCHANGE_LOGIN_USER:
		why = sasl_login_field(msg, len, x->user, SASL_NAME_MAX);
		if (why != NULL) {
			x->step = SASL_EXCHANGE_IDLE;
			*why_r = why;
			return SASL_EXCHANGE_REFUSED;
		}
		x->step = SASL_EXCHANGE_LOGIN_PASSWORD;
		*challenge_r = SASL_LOGIN_PASSWORD_CHALLENGE;
		return SASL_EXCHANGE_CHALLENGE;
	case SASL_EXCHANGE_LOGIN_PASSWORD:
		x->step = SASL_EXCHANGE_IDLE;
		why = sasl_login_field(msg, len, password_r,
		    ACCOUNTS_PASSWORD_MAX);
		if (why != NULL) {
			*why_r = why;
			return SASL_EXCHANGE_REFUSED;
		}
		return SASL_EXCHANGE_CHECK;
	case SASL_EXCHANGE_IDLE:
		break;
	}
	*why_r = "no exchange in progress";
	return SASL_EXCHANGE_REFUSED;
}

void
sasl_exchange_reset(struct sasl_exchange *x)
{
	x->step = SASL_EXCHANGE_IDLE;
	explicit_bzero(x->user, sizeof(x->user));
}
