/*
 * The outbound SMTP client (RFC 5321) for one connection to one server:
 * banner, EHLO (HELO fallback), STARTTLS (RFC 3207) by policy, AUTH PLAIN
 * or LOGIN (RFC 4954) for a smarthost, MAIL with SIZE/BODY/SMTPUTF8, RCPT
 * (pipelined per RFC 2920 when offered), DATA with dot-stuffing or BDAT
 * (RFC 3030) when offered, QUIT. It never blocks: it runs on the caller's
 * libevent loop and reports once, with the outcome of every recipient.
 * The peer is untrusted (security-tests.md 42): replies go through
 * smtp_reply.c, every wait has the RFC 5321 4.5.3.2 timeout.
 */
#ifndef TEGAMI_SMTP_CLIENT_H
#define TEGAMI_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "dns/dns.h"

struct event_base;
struct smtp_client;

enum smtp_tls_policy {
	SMTP_TLS_NONE,		/* never STARTTLS */
	SMTP_TLS_MAY,		/* STARTTLS when offered; unverified is fine;
				 * a failed handshake is a failed connection
				 * (the caller may retry without TLS) */
	SMTP_TLS_ENCRYPT,	/* TLS required, certificate not checked */
	SMTP_TLS_VERIFY,	/* TLS required, certificate verified against
				 * tls_ctx's trust store and peer_name */
	SMTP_TLS_DANE,		/* TLS required, verified by the TLSA records
				 * (RFC 7672) through SSL_dane_* */
};

/* RFC 5321 4.5.3.2, in seconds; zero fields take these defaults. */
struct smtp_client_timeouts {
	unsigned connect;	/* 30 */
	unsigned banner;	/* 300: initial 220 */
	unsigned command;	/* 300: EHLO, MAIL, RCPT, AUTH, STARTTLS, QUIT */
	unsigned data_init;	/* 120: the 354 */
	unsigned data_block;	/* 180: each write of content */
	unsigned data_final;	/* 600: the reply after the final dot */
};

struct smtp_client_params {
	const struct sockaddr *addr;	/* where to connect (port set) */
	socklen_t addr_len;
	const char *peer_name;		/* MX or relay host name: SNI,
					 * verification, logs */
	const char *helo_name;		/* ours */
	enum smtp_tls_policy tls;
	bool implicit_tls;		/* TLS from the first byte (465) */
	SSL_CTX *tls_ctx;		/* a client context (tls != NONE) */
	const struct dns_tlsa *tlsa;	/* SMTP_TLS_DANE: secure records */
	size_t n_tlsa;
	const char *auth_user;		/* NULL: no AUTH; else AUTH PLAIN
					 * (or LOGIN) after TLS, required */
	const char *auth_password;
	const char *sender;		/* "" for <> */
	const char *const *rcpts;	/* addresses without <> */
	size_t n_rcpts;
	int msg_fd;			/* the content, read with pread from 0 */
	uint64_t msg_size;
	bool smtputf8;			/* needs SMTPUTF8 (refused when the
					 * peer lacks it: permanent 5.6.7) */
	bool eightbit;			/* BODY=8BITMIME */
	struct smtp_client_timeouts timeouts;
};

enum smtp_rcpt_outcome {
	SMTP_RCPT_DELIVERED,	/* 2xx to RCPT and to the content */
	SMTP_RCPT_TEMPFAIL,	/* 4xx, or the session broke before 250 */
	SMTP_RCPT_PERMFAIL,	/* 5xx */
};

struct smtp_client_rcpt {
	enum smtp_rcpt_outcome outcome;
	int code;			/* the deciding reply, 0 if none */
	char status[16];		/* its enhanced code, or a derived one */
	char diagnostic[512];		/* "550 5.1.1 text", or what broke */
};

struct smtp_client_result {
	/*
	 * true when the failure was about this server, not the message:
	 * no connection, a failed handshake, 4xx to the banner, EHLO or
	 * MAIL, a broken connection before any recipient's fate was decided.
	 * The caller then tries the next MX host. Recipients keep TEMPFAIL.
	 */
	bool try_next_host;
	bool tls;			/* the session was encrypted */
	bool verified;			/* and the peer authenticated */
	char tls_info[128];		/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
	char error[256];		/* session-level cause, for logs */
	struct smtp_client_rcpt *rcpts;	/* n_rcpts, in params order */
	size_t n_rcpts;
};

typedef void (*smtp_client_cb)(void *arg,
    const struct smtp_client_result *result);

/*
 * Starts the session; cb runs exactly once, later (never inside this
 * call), unless smtp_client_cancel is called first. params and the
 * strings it points to must stay valid until then; msg_fd is not closed.
 */
struct smtp_client *smtp_client_start(struct event_base *base,
    const struct smtp_client_params *params, smtp_client_cb cb, void *arg);

/* Closes the connection at once; the callback will not run. */
void smtp_client_cancel(struct smtp_client *c);

#endif
