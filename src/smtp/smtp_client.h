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
				 * a refused STARTTLS goes on in plaintext; a
				 * failed handshake is a failed connection
				 * with tls_failed (the caller retries
				 * without TLS) */
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
	unsigned data_final;	/* 600: the reply after the final dot
				 * or BDAT LAST */
};

struct smtp_client_params {
	const struct sockaddr *addr;	/* where to connect (port set) */
	socklen_t addr_len;
	const struct sockaddr *source;	/* bind to this first; NULL: any */
	socklen_t source_len;
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
	int msg_fd;			/* the content, read with pread */
	uint64_t msg_offset;		/* where it starts in msg_fd */
	uint64_t msg_size;		/* its bytes from msg_offset on */
	bool smtputf8;			/* needs SMTPUTF8 (refused when the
					 * peer lacks it: permanent 5.6.7) */
	bool eightbit;			/* BODY=8BITMIME */
	bool reuse;			/* keep the connection open after a
					 * transaction that ended cleanly
					 * (result->reusable) */
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
	/*
	 * SMTP_TLS_MAY without implicit TLS only: why the session is not
	 * encrypted although STARTTLS was offered. tls_refused: the reply
	 * to STARTTLS was 4xx/5xx and the session went on in plaintext.
	 * tls_failed: the handshake after the 220 failed or timed out; the
	 * session failed with try_next_host, and the caller may connect to
	 * the same address again with SMTP_TLS_NONE (Postfix does). The
	 * reply or the error is in tls_error.
	 */
	bool tls_refused;
	bool tls_failed;
	char tls_error[256];
	char error[256];		/* session-level cause, for logs */
	/*
	 * reusable (params.reuse only): the reply to the final dot or BDAT
	 * LAST came and the connection is open and idle. The client is
	 * then not freed after cb: its owner (whoever called start or
	 * next) must hand it on with smtp_client_park, smtp_client_next or
	 * smtp_client_cancel.
	 */
	bool reusable;
	/* This transaction ran on a connection that had carried another
	 * (smtp_client_next); transactions is how many it has carried,
	 * this one included. A reused connection that failed with
	 * try_next_host before the peer decided anything was most likely
	 * closed by the peer while idle: a fresh connection to the same
	 * address is the remedy, not the next host. */
	bool reused;
	unsigned transactions;
	struct smtp_client_rcpt *rcpts;	/* n_rcpts, in params order */
	size_t n_rcpts;
};

typedef void (*smtp_client_cb)(void *arg,
    const struct smtp_client_result *result);

/*
 * Starts the session; cb runs exactly once, later (never inside this
 * call), unless smtp_client_cancel is called first. params and the
 * strings it points to must stay valid until then; msg_fd is not closed.
 *
 * Details of the contract (additions):
 * - result and result->rcpts are valid only during cb; the client is freed
 *   when cb returns, so cb must not call smtp_client_cancel.
 * - msg_size bytes are read from msg_fd at msg_offset (pread, 64 KiB at a
 *   time); a file shorter than that fails the session (TEMPFAIL, the
 *   final dot or BDAT LAST is never sent). The content is sent with CR
 *   LF line ends whatever it holds: a bare CR or LF goes out as CR LF,
 *   a missing final CR LF is added (RFC 5321 2.3.8; security-tests.md
 *   43); after DATA lines are dot-stuffed (4.5.2).
 * - When EHLO offers CHUNKING the content goes by BDAT (RFC 3030) once
 *   every RCPT is answered: chunks of at most 64 KiB, the last with
 *   LAST (its reply with data_final decides as the reply to the final
 *   dot does). With PIPELINING too, up to 4 chunks go ahead of their
 *   replies (RFC 3030 4.2), else one at a time; each reply waits with
 *   data_block. A 4xx/5xx to an earlier chunk decides the same way and
 *   ends the transaction: no chunk follows, and the replies to chunks
 *   already sent are read before QUIT.
 * - A recipient (or sender) holding a control byte is never sent: that
 *   recipient (or every one) is PERMFAIL 5.1.3 (5.1.7) at once.
 * - SMTP_TLS_DANE calls SSL_CTX_dane_enable(tls_ctx) itself (it does
 *   nothing when already enabled). Only DANE-TA(2) and DANE-EE(3) records
 *   are used (RFC 7672 3.1.3); with none usable the session is encrypted
 *   but not authenticated (RFC 7672 2.2) and verified stays false. In the
 *   other policies the certificate is still checked against peer_name and
 *   the trust store so that verified can be reported, but only VERIFY
 *   and DANE fail the session when it does not verify.
 * - implicit_tls uses TLS whatever the policy (NONE and MAY then mean an
 *   unverified session); the TLS handshake has the command timeout.
 * - MAY: a STARTTLS refused with a reply goes on in plaintext
 *   (tls_refused); a failed or timed-out handshake is a session failure
 *   with try_next_host and tls_failed. Neither happens with implicit TLS
 *   or another policy (DANE never falls back).
 * - AUTH (PLAIN when offered, else LOGIN) is only sent over TLS; not
 *   offered or no TLS is a session failure with try_next_host. A 4xx
 *   reply to AUTH is a session failure with try_next_host; a 5xx (535 bad
 *   credentials) makes every recipient TEMPFAIL with that reply as the
 *   diagnostic and try_next_host false: a wrong smarthost password must
 *   not bounce mail at once, and the next host would refuse it too.
 * - A 5xx greeting is treated like a 4xx one (try_next_host; Postfix's
 *   smtp_skip_5xx_greeting). HELO is used when EHLO gets 5xx; EHLO 4xx
 *   is a session failure with try_next_host.
 * - SMTPUTF8 needed but not offered: every recipient PERMFAIL 5.6.7, no
 *   MAIL is sent. A SIZE limit below msg_size: PERMFAIL 5.3.4, likewise.
 * - 421 at any point ends the session: undecided recipients TEMPFAIL,
 *   try_next_host when no recipient was DELIVERED or PERMFAIL by the peer.
 * - A malformed or hostile reply (a line over SMTP_REPLY_LINE_MAX, a bare
 *   LF, a NUL, a code changing within a reply, too many lines, a reply
 *   nobody asked for) ends the session the same way; diagnostics hold
 *   only printable ASCII.
 * - Timeouts count from the command (not from the last byte), so a peer
 *   that drips a byte at a time cannot stretch them. data_block restarts
 *   whenever the peer takes content.
 */
struct smtp_client *smtp_client_start(struct event_base *base,
    const struct smtp_client_params *params, smtp_client_cb cb, void *arg);

/* Closes the connection at once; no callback will run. NULL is
 * allowed. */
void smtp_client_cancel(struct smtp_client *c);

/*
 * Connection reuse (Postfix's connection cache does the same): a client
 * whose result was reusable sits idle between transactions.
 *
 * smtp_client_park watches the idle connection: when the peer closes it
 * or says anything (a 421 for its idle timeout, say), closed(arg) runs
 * once from the loop and the client is freed. smtp_client_quit sends
 * QUIT to a parked client and closes once it is answered (or after the
 * command timeout); closed(arg) runs then too. A parked client may still
 * be taken by smtp_client_next or freed by smtp_client_cancel, and then
 * closed never runs.
 *
 * smtp_client_next starts a new transaction on the idle connection with
 * params (whose connection fields must describe the same connection: the
 * address, TLS policy and AUTH it was opened with). Its contract is
 * smtp_client_start's, with result->reused set. While parked, the client
 * uses none of the pointers of its earlier params.
 */
typedef void (*smtp_client_closed_cb)(void *arg);

void smtp_client_park(struct smtp_client *c, smtp_client_closed_cb closed,
    void *arg);
void smtp_client_quit(struct smtp_client *c);
void smtp_client_next(struct smtp_client *c,
    const struct smtp_client_params *params, smtp_client_cb cb, void *arg);

/*
 * Dot-stuffing with line-end repair (RFC 5321 4.5.2), exposed for tests:
 * the output does not depend on how the input is split. CR LF, a bare CR
 * and a bare LF each end a line and are written as CR LF; a line that
 * starts with "." gets another one.
 */
struct smtp_client_dotstuff {
	bool bol;		/* at the start of a line */
	bool cr;		/* a CR was seen and not yet written */
};

void smtp_client_dotstuff_init(struct smtp_client_dotstuff *st);
/* Writes at most 2 * len + 2 bytes to out; returns how many. */
size_t smtp_client_dotstuff(struct smtp_client_dotstuff *st,
    const char *in, size_t len, char *out);
/* The end: a CR LF if the content did not end with one, then ".\r\n".
 * Writes at most 5 bytes; returns how many. */
size_t smtp_client_dotstuff_end(struct smtp_client_dotstuff *st, char *out);

/* The same line-end repair without dot-stuffing, for BDAT (RFC 3030
 * content is not stuffed and has no final dot); the end only adds a
 * missing final CR LF (at most 2 bytes). */
size_t smtp_client_crlf(struct smtp_client_dotstuff *st,
    const char *in, size_t len, char *out);
size_t smtp_client_crlf_end(struct smtp_client_dotstuff *st, char *out);

#endif
