/*
 * The outbound SMTP client for one connection (RFC 5321 3.3, 4.1, 4.5.3.2):
 * EHLO/HELO, STARTTLS (RFC 3207) and DANE (RFC 7672), AUTH PLAIN/LOGIN
 * (RFC 4954), pipelined MAIL/RCPT/DATA (RFC 2920), dot-stuffed content
 * (4.5.2) streamed from disk or BDAT chunks (RFC 3030) when offered,
 * per-recipient outcomes.
 */
#include "smtp/smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "auth/sasl.h"
#include "core/log.h"
#include "core/util.h"
#include "smtp/smtp_reply.h"

#define SMTP_CLIENT_BLOCK_SIZE	65536	/* content bytes per pread */
/* Content is added while less than this is waiting to be sent, and the
 * next block is read when it drops below the low mark: the message is
 * never all in memory. */
#define SMTP_CLIENT_OUT_HIGH	(2 * SMTP_CLIENT_BLOCK_SIZE)
#define SMTP_CLIENT_OUT_LOW	32768
/* BDAT: raw bytes per chunk, so that CR LF repair (at most 2 bytes per
 * byte, plus a CR held over and the end's CR LF) keeps a chunk within
 * SMTP_CLIENT_BLOCK_SIZE. */
#define SMTP_CLIENT_BDAT_RAW	((SMTP_CLIENT_BLOCK_SIZE - 3) / 2)
#define SMTP_CLIENT_INPUT_MAX	65536	/* replies buffered, unread */
/* BDAT chunks sent ahead of their replies when the peer offers
 * PIPELINING (RFC 3030 4.2): one round trip per window, not per chunk. */
#define SMTP_CLIENT_BDAT_WINDOW	4
#define SMTP_CLIENT_ADDR_MAX	900	/* an address in MAIL or RCPT */
#define SMTP_CLIENT_AUTH_MAX	1024	/* user plus password */

enum client_state {
	CS_CONNECT,		/* TCP connect */
	CS_HANDSHAKE,		/* TLS handshake (implicit or STARTTLS) */
	CS_BANNER,
	CS_EHLO,
	CS_HELO,
	CS_STARTTLS,
	CS_AUTH,
	CS_TXN,			/* replies to MAIL, RCPT..., DATA */
	CS_CONTENT,		/* streaming the message */
	CS_BDAT,		/* BDAT chunks sent, their replies awaited */
	CS_FINAL,		/* the reply after the final dot or LAST */
	CS_DOT_ONLY,		/* 354 with no recipient: "." sent alone */
	CS_QUIT,
	CS_DONE,		/* closed; the callback is scheduled */
	CS_IDLE,		/* between transactions (params.reuse) */
};

static const char *const client_state_names[] = {
	"connect", "handshake", "banner", "ehlo", "helo", "starttls", "auth",
	"txn", "content", "bdat", "final", "dot-only", "quit", "done",
	"idle",
};

/* What this session knows of each recipient. */
enum rcpt_state {
	RS_PENDING = 0,		/* nothing decided yet */
	RS_ACCEPTED,		/* 2xx to RCPT; the content's reply decides */
	RS_FINAL,		/* outcome set */
};

struct smtp_client {
	struct event_base *base;
	struct smtp_client_params p;	/* copy; strings are the caller's */
	smtp_client_cb cb;
	void *cb_arg;
	enum client_state state;

	struct bufferevent *bev;	/* the socket's, or TLS over it */
	struct event *timer;		/* the current wait's timeout */
	struct event *done_ev;		/* runs cb from the event loop */
	const char *waiting_for;	/* for the timeout's message */
	unsigned waiting_secs;

	struct smtp_reply_parser parser;
	struct smtp_reply reply;
	char line[SMTP_REPLY_LINE_MAX + 3];

	struct smtp_ehlo ehlo;
	bool esmtp;			/* EHLO was accepted */
	bool starttls_refused;		/* MAY: go on in plaintext */
	bool dane_usable;		/* at least one TLSA record in use */
	bool auth_login;		/* LOGIN rather than PLAIN */
	unsigned auth_step;

	/* The transaction: command 0 is MAIL, 1..n_valid the RCPTs of
	 * valid[], n_valid + 1 DATA (none with CHUNKING: BDAT follows the
	 * replies to RCPT). */
	size_t *valid;
	size_t n_valid;
	size_t txn_replies;
	bool pipelining;
	bool chunking;			/* content by BDAT (RFC 3030) */
	bool mail_failed;
	size_t n_accepted;
	unsigned char *rstate;		/* enum rcpt_state per recipient */
	bool peer_decided;		/* the peer made some outcome final */

	struct smtp_client_dotstuff stuff;
	uint64_t data_off;
	unsigned bdat_unanswered;	/* chunks sent, reply not read yet */
	bool bdat_last_sent;
	bool bdat_refused;		/* a chunk was refused: the replies
					 * still due are read and ignored */
	char *block;
	char *chunk;			/* BDAT: one repaired chunk */
	struct evbuffer_cb_entry *drain_cb;	/* data_block on progress */

	char peer[SOCKADDR_TEXT_MAX];	/* "[addr]:port" for messages */
	struct smtp_client_result result;

	/* Idle between transactions: parked (closed_cb set) or not yet. */
	smtp_client_closed_cb closed_cb;
	void *closed_arg;
	bool idle_broken;		/* the peer closed or spoke while idle */
};

static void client_read_cb(struct bufferevent *, void *);
static void client_write_cb(struct bufferevent *, void *);
static void client_event_cb(struct bufferevent *, short, void *);
static void client_after_hello(struct smtp_client *);
static void client_fill_content(struct smtp_client *);
static void client_fail(struct smtp_client *, bool, int, const char *,
    const char *, ...) __attribute__((format(printf, 5, 6)));
static void client_quit(struct smtp_client *);

/* Dot-stuffing */

void
smtp_client_dotstuff_init(struct smtp_client_dotstuff *st)
{
	st->bol = true;
	st->cr = false;
}

/* CR LF repair, and dot-stuffing when stuff is set (not for BDAT). */
static size_t
client_crlf(struct smtp_client_dotstuff *st, const char *in, size_t len,
    char *out, bool stuff)
{
	size_t i, o = 0;
	char ch;

	for (i = 0; i < len; i++) {
		ch = in[i];
		if (st->cr) {
			/* CR LF, or a bare CR: either way one line end. */
			st->cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			st->bol = true;
			if (ch == '\n')
				continue;
		}
		if (ch == '\r') {
			st->cr = true;
			continue;
		}
		if (ch == '\n') {
			/* No bare LF on the wire (SMTP smuggling). */
			out[o++] = '\r';
			out[o++] = '\n';
			st->bol = true;
			continue;
		}
		if (stuff && st->bol && ch == '.')
			out[o++] = '.';
		out[o++] = ch;
		st->bol = false;
	}
	return o;
}

size_t
smtp_client_dotstuff(struct smtp_client_dotstuff *st, const char *in,
    size_t len, char *out)
{
	return client_crlf(st, in, len, out, true);
}

size_t
smtp_client_crlf(struct smtp_client_dotstuff *st, const char *in,
    size_t len, char *out)
{
	return client_crlf(st, in, len, out, false);
}

size_t
smtp_client_crlf_end(struct smtp_client_dotstuff *st, char *out)
{
	size_t o = 0;

	if (st->cr || !st->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	st->cr = false;
	st->bol = true;
	return o;
}

size_t
smtp_client_dotstuff_end(struct smtp_client_dotstuff *st, char *out)
{
	size_t o = smtp_client_crlf_end(st, out);

	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* Small helpers */

static void
client_set_state(struct smtp_client *c, enum client_state state)
{
	log_debug("smtp_client: peer=%s state=%s->%s", c->peer,
	    client_state_names[c->state], client_state_names[state]);
	c->state = state;
}

/* Untrusted bytes for a diagnostic: printable ASCII, others as '?'. */
static void
client_sanitize(const char *in, size_t len, char *out, size_t outsize)
{
	size_t i, n = len < outsize - 1 ? len : outsize - 1;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];

		out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[n] = '\0';
}

static bool
client_is_ip(const char *name)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, name, &a4) == 1 ||
	    inet_pton(AF_INET6, name, &a6) == 1;
}

/* Addresses go into command lines: no control byte may slip in. */
static bool
client_address_ok(const char *addr)
{
	const unsigned char *s;

	if (strlen(addr) > SMTP_CLIENT_ADDR_MAX)
		return false;
	for (s = (const unsigned char *)addr; *s != '\0'; s++)
		if (*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void
client_wait(struct smtp_client *c, const char *what, unsigned secs)
{
	struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };

	c->waiting_for = what;
	c->waiting_secs = secs;
	evtimer_add(c->timer, &tv);
}

static void
client_printf(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
client_printf(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

static void
client_secret_free(const void *data, size_t len, void *arg)
{
	(void)arg;
	OPENSSL_cleanse((void *)(uintptr_t)data, len);
	free((void *)(uintptr_t)data);
}

/* Queues an AUTH line: the buffer is wiped once it has been sent. */
static void
client_send_secret(struct smtp_client *c, const char *prefix,
    const unsigned char *secret, size_t len)
{
	size_t plen = strlen(prefix);
	size_t cap = plen + 4 * ((len + 2) / 3) + 3;
	char *buf = xmalloc(cap);
	size_t n;

	memcpy(buf, prefix, plen);
	n = sasl_base64_encode(secret, len, buf + plen, cap - plen);
	if (n == (size_t)-1)
		fatalx("smtp_client: base64 buffer too small");
	memcpy(buf + plen + n, "\r\n", 2);
	if (evbuffer_add_reference(bufferevent_get_output(c->bev), buf,
	    plen + n + 2, client_secret_free, NULL) < 0)
		fatalx("evbuffer_add_reference failed");
}

/* Outcomes */

/* The session-level cause for logs; cut to fit (it is only for logs). */
static void
client_set_error(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
client_set_error(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->result.error, sizeof(c->result.error), fmt, ap);
	va_end(ap);
}

static void
client_decide(struct smtp_client *c, size_t i, enum smtp_rcpt_outcome o,
    int code, const char *status, const char *diag)
{
	struct smtp_client_rcpt *r = &c->result.rcpts[i];

	r->outcome = o;
	r->code = code;
	snprintf(r->status, sizeof(r->status), "%s", status);
	snprintf(r->diagnostic, sizeof(r->diagnostic), "%s", diag);
	c->rstate[i] = RS_FINAL;
}

static const char *
client_status_of(const struct smtp_reply *r)
{
	if (r->status[0] != '\0')
		return r->status;
	return r->code >= 500 ? "5.0.0" : r->code >= 400 ? "4.0.0" : "2.0.0";
}

/* Every recipient in state from (or every undecided one, when from is
 * RS_PENDING) gets the outcome the reply's class gives. */
static void
client_decide_by_reply(struct smtp_client *c, const struct smtp_reply *r,
    enum rcpt_state from)
{
	char diag[sizeof(c->result.rcpts[0].diagnostic)];
	enum smtp_rcpt_outcome o;
	size_t i;

	smtp_reply_summary(r, diag, sizeof(diag));
	o = r->code >= 500 ? SMTP_RCPT_PERMFAIL : r->code >= 400 ?
	    SMTP_RCPT_TEMPFAIL : SMTP_RCPT_DELIVERED;
	for (i = 0; i < c->p.n_rcpts; i++) {
		if (c->rstate[i] == RS_FINAL ||
		    (from == RS_ACCEPTED && c->rstate[i] != RS_ACCEPTED))
			continue;
		client_decide(c, i, o, r->code, client_status_of(r), diag);
		if (o != SMTP_RCPT_TEMPFAIL)
			c->peer_decided = true;
	}
}

static void
client_stop_drain_cb(struct smtp_client *c)
{
	if (c->drain_cb != NULL && c->bev != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev),
		    c->drain_cb);
	c->drain_cb = NULL;
}

static void
client_free(struct smtp_client *c)
{
	client_stop_drain_cb(c);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->done_ev != NULL)
		event_free(c->done_ev);
	free(c->valid);
	free(c->rstate);
	free(c->block);
	free(c->chunk);
	free(c->result.rcpts);
	free(c);
}

/* Closes the connection; the callback runs from the loop. */
static void
client_finish(struct smtp_client *c)
{
	struct timeval now = { 0, 0 };

	if (c->state == CS_DONE)
		return;
	client_stop_drain_cb(c);
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	evtimer_del(c->timer);
	client_set_state(c, CS_DONE);
	evtimer_add(c->done_ev, &now);
}

static void
client_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	bool reusable;

	(void)fd;
	(void)what;
	if (c->closed_cb != NULL) {
		/* A parked connection ended. */
		c->closed_cb(c->closed_arg);
		client_free(c);
		return;
	}
	/* Reusable (idle): cb's caller owns c from then on. */
	reusable = c->state == CS_IDLE;
	c->cb(c->cb_arg, &c->result);
	if (!reusable)
		client_free(c);
}

/*
 * The transaction is over with the peer's final reply. With params.reuse
 * and nothing unread, the connection stays open for the next one;
 * otherwise QUIT.
 */
static void
client_end_transaction(struct smtp_client *c)
{
	struct timeval now = { 0, 0 };

	if (!c->p.reuse ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
		client_quit(c);
		return;
	}
	evtimer_del(c->timer);
	client_set_state(c, CS_IDLE);
	c->result.reusable = true;
	evtimer_add(c->done_ev, &now);
}

/*
 * The session failed: every undecided recipient (accepted ones too, as
 * their content's fate is unknown) becomes TEMPFAIL with the cause, and
 * the connection is closed without QUIT.
 */
static void
client_fail(struct smtp_client *c, bool try_next, int code,
    const char *status, const char *fmt, ...)
{
	char diag[sizeof(c->result.rcpts[0].diagnostic)];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(diag, sizeof(diag), fmt, ap);
	va_end(ap);
	for (i = 0; i < c->p.n_rcpts; i++)
		if (c->rstate[i] != RS_FINAL)
			client_decide(c, i, SMTP_RCPT_TEMPFAIL, code, status,
			    diag);
	if (c->result.error[0] == '\0')
		client_set_error(c, "%s", diag);
	if (try_next && !c->peer_decided)
		c->result.try_next_host = true;
	log_debug("smtp_client: peer=%s failed in state %s: %s", c->peer,
	    client_state_names[c->state], diag);
	client_finish(c);
}

/* A reply that ends the session (421, a reply nobody asked for). */
static void
client_fail_reply(struct smtp_client *c, const struct smtp_reply *r,
    const char *context)
{
	char sum[400];

	smtp_reply_summary(r, sum, sizeof(sum));
	client_fail(c, true, r->code, r->code >= 400 && r->code < 500 ?
	    client_status_of(r) : "4.5.0", "%s: %s", context, sum);
}

static void
client_quit(struct smtp_client *c)
{
	client_printf(c, "QUIT\r\n");
	client_set_state(c, CS_QUIT);
	client_wait(c, "QUIT", c->p.timeouts.command);
}

/* Connection and TLS */

/* Input that came while it was not expected must not wait for more. */
static void
client_kick_input(struct smtp_client *c)
{
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void
client_start_reading_banner(struct smtp_client *c)
{
	client_set_state(c, CS_BANNER);
	client_wait(c, "the greeting", c->p.timeouts.banner);
	client_kick_input(c);
}

static SSL *
client_new_ssl(struct smtp_client *c)
{
	const char *name = c->p.peer_name;
	bool have_name = name != NULL && name[0] != '\0';
	bool ip = have_name && client_is_ip(name);
	int usable = 0;
	size_t i;
	SSL *ssl;

	if ((ssl = SSL_new(c->p.tls_ctx)) == NULL)
		return NULL;
	/* RFC 6066 3: no IP literal in SNI. */
	if (have_name && !ip && !SSL_set_tlsext_host_name(ssl, name))
		goto fail;
	if (c->p.tls == SMTP_TLS_DANE && have_name) {
		if (SSL_CTX_dane_enable(c->p.tls_ctx) <= 0 ||
		    SSL_dane_enable(ssl, name) <= 0)
			goto fail;
		/* RFC 7672 3.1.1: DANE-EE(3) certificates' names are not
		 * checked. */
		SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
		for (i = 0; i < c->p.n_tlsa; i++) {
			const struct dns_tlsa *t = &c->p.tlsa[i];

			/* RFC 7672 3.1.3: PKIX-TA(0), PKIX-EE(1) unusable. */
			if (t->usage != 2 && t->usage != 3)
				continue;
			/* A malformed record is unusable (RFC 7671 4.1). */
			if (SSL_dane_tlsa_add(ssl, t->usage, t->selector,
			    t->mtype, t->data, t->data_len) > 0)
				usable++;
			ERR_clear_error();
		}
		c->dane_usable = usable > 0;
		SSL_set_verify(ssl, usable > 0 ? SSL_VERIFY_PEER :
		    SSL_VERIFY_NONE, NULL);
		return ssl;
	}
	/*
	 * The name is checked in every policy so that verified can be
	 * reported; only VERIFY aborts the handshake when it fails.
	 */
	if (have_name) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		if (ip) {
			if (!X509_VERIFY_PARAM_set1_ip_asc(vp, name))
				goto fail;
		} else {
			SSL_set_hostflags(ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (!SSL_set1_host(ssl, name))
				goto fail;
		}
	}
	SSL_set_verify(ssl, c->p.tls == SMTP_TLS_VERIFY ? SSL_VERIFY_PEER :
	    SSL_VERIFY_NONE, NULL);
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/*
 * Slides TLS under the session. Whatever the peer sent after its 220 and
 * before the handshake is dropped: it did not come over TLS and must not
 * be read as a reply to what we send next (RFC 3207 4.2, CVE-2011-0411,
 * security-tests.md 42).
 */
static void
client_start_tls(struct smtp_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct bufferevent *tls;
	size_t junk = evbuffer_get_length(in);
	SSL *ssl;

	if (junk > 0) {
		log_info("smtp_client: peer=%s discarded=%zu bytes sent "
		    "before the TLS handshake", c->peer, junk);
		evbuffer_drain(in, junk);
	}
	smtp_reply_parser_init(&c->parser);
	if ((ssl = client_new_ssl(c)) == NULL) {
		ERR_clear_error();
		client_fail(c, false, 0, "4.7.5",
		    "cannot set up TLS for %s", c->peer);
		return;
	}
	tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		client_fail(c, false, 0, "4.7.5",
		    "cannot set up TLS for %s", c->peer);
		return;
	}
	/* The filter moves records to the socket's buffer only up to its
	 * high mark; without one, the content would pile up there. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, SMTP_CLIENT_OUT_HIGH);
	c->bev = tls;
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	bufferevent_setwatermark(tls, EV_READ, 0, SMTP_CLIENT_INPUT_MAX);
	bufferevent_setcb(tls, client_read_cb, client_write_cb,
	    client_event_cb, c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	client_set_state(c, CS_HANDSHAKE);
	client_wait(c, "the TLS handshake", c->p.timeouts.command);
}

/* MAY over STARTTLS: the caller may try the same address in plaintext. */
static void
client_note_tls_failure(struct smtp_client *c, const char *why)
{
	if (c->p.tls != SMTP_TLS_MAY || c->p.implicit_tls)
		return;
	c->result.tls_failed = true;
	snprintf(c->result.tls_error, sizeof(c->result.tls_error),
	    "TLS handshake failed: %s", why);
}

static void
client_tls_failed(struct smtp_client *c, const char *how)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char msg[200] = "", vmsg[120] = "";
	unsigned long e, first = 0;
	long vr;

	/* libevent also queues SSL_get_error()'s code (no library set):
	 * the first error with a library is the cause. */
	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0 && ERR_GET_LIB(e) != 0)
			first = e;
	if (first != 0)
		ERR_error_string_n(first, msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "%s", how);
	client_note_tls_failure(c, msg);
	/* Only these policies abort the handshake for the certificate. */
	if (ssl != NULL && (c->p.tls == SMTP_TLS_VERIFY ||
	    (c->p.tls == SMTP_TLS_DANE && c->dane_usable)) &&
	    (vr = SSL_get_verify_result(ssl)) != X509_V_OK)
		snprintf(vmsg, sizeof(vmsg), " (%s)",
		    X509_verify_cert_error_string(vr));
	ERR_clear_error();
	client_fail(c, true, 0, "4.7.5", "TLS handshake with %s failed: %s%s",
	    c->peer, msg, vmsg);
}

static void
client_send_ehlo(struct smtp_client *c)
{
	client_printf(c, "EHLO %s\r\n", c->p.helo_name);
	client_set_state(c, CS_EHLO);
	client_wait(c, "the reply to EHLO", c->p.timeouts.command);
}

static void
client_tls_done(struct smtp_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	bool ok;

	evtimer_del(c->timer);
	ok = SSL_get0_peer_certificate(ssl) != NULL &&
	    SSL_get_verify_result(ssl) == X509_V_OK;
	if (c->p.tls == SMTP_TLS_DANE)
		ok = ok && c->dane_usable &&
		    SSL_get0_dane_authority(ssl, NULL, NULL) >= 0;
	else
		ok = ok && c->p.peer_name != NULL && c->p.peer_name[0] != '\0';
	c->result.tls = true;
	c->result.verified = ok;
	snprintf(c->result.tls_info, sizeof(c->result.tls_info), "%s %s",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	log_debug("smtp_client: peer=%s tls=\"%s\" verified=%s", c->peer,
	    c->result.tls_info, ok ? "yes" : "no");
	if (!ok && (c->p.tls == SMTP_TLS_VERIFY ||
	    (c->p.tls == SMTP_TLS_DANE && c->dane_usable))) {
		client_fail(c, true, 0, "4.7.5",
		    "TLS peer %s not authenticated", c->peer);
		return;
	}
	if (c->p.implicit_tls) {
		client_start_reading_banner(c);
		return;
	}
	/* RFC 3207 4.2: forget what was learnt before TLS, say EHLO again. */
	memset(&c->ehlo, 0, sizeof(c->ehlo));
	c->esmtp = false;
	client_send_ehlo(c);
}

static void
client_connected(struct smtp_client *c)
{
	evtimer_del(c->timer);
	if (c->p.implicit_tls)
		client_start_tls(c);
	else
		client_start_reading_banner(c);
}

/* The peer closed an idle connection or spoke unasked: it is over. */
static void
client_idle_broken(struct smtp_client *c)
{
	log_debug("smtp_client: peer=%s: the idle connection ended", c->peer);
	c->idle_broken = true;
	client_stop_drain_cb(c);
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->closed_cb != NULL)
		client_finish(c);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (bev != c->bev)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == CS_CONNECT)
			client_connected(c);
		else if (c->state == CS_HANDSHAKE)
			client_tls_done(c);
		return;
	}
	switch (c->state) {
	case CS_QUIT:
		client_finish(c);
		break;
	case CS_IDLE:
		client_idle_broken(c);
		break;
	case CS_CONNECT:
		client_fail(c, true, 0, "4.4.1", "connect to %s failed: %s",
		    c->peer, err != 0 ? strerror(err) : "error");
		break;
	case CS_HANDSHAKE:
		client_tls_failed(c, (what & BEV_EVENT_EOF) ?
		    "connection closed" : "connection error");
		break;
	default:
		if (what & BEV_EVENT_EOF)
			client_fail(c, true, 0, "4.4.2", "connection closed "
			    "by %s while waiting for %s", c->peer,
			    c->state == CS_CONTENT ? "it to take the content" :
			    c->waiting_for);
		else
			client_fail(c, true, 0, "4.4.2",
			    "connection to %s broken in state %s: %s", c->peer,
			    client_state_names[c->state], err != 0 ?
			    strerror(err) : "TLS error");
		break;
	}
}

static void
client_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CS_QUIT:
		client_finish(c);
		break;
	case CS_CONNECT:
		client_fail(c, true, 0, "4.4.1", "timeout (%u s) connecting "
		    "to %s", c->waiting_secs, c->peer);
		break;
	default:
		if (c->state == CS_HANDSHAKE)
			client_note_tls_failure(c, "timeout");
		client_fail(c, true, 0, "4.4.2", "timeout (%u s) waiting for "
		    "%s from %s", c->waiting_secs, c->waiting_for, c->peer);
		break;
	}
}

/* EHLO, STARTTLS, AUTH */

static void
client_banner(struct smtp_client *c, const struct smtp_reply *r)
{
	if (r->code / 100 != 2) {
		char sum[400];

		/* 4xx or 5xx: this host will not talk; another may. */
		smtp_reply_summary(r, sum, sizeof(sum));
		if (r->code >= 400) {
			client_fail(c, true, r->code, r->code >= 500 ?
			    "4.0.0" : client_status_of(r),
			    "greeting from %s: %s", c->peer, sum);
			return;
		}
		client_fail(c, true, r->code, "4.5.0", "unexpected greeting "
		    "from %s: %s", c->peer, sum);
		return;
	}
	client_send_ehlo(c);
}

static void
client_ehlo_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	if (r->code / 100 == 2 && c->state == CS_EHLO) {
		smtp_ehlo_parse(r, &c->ehlo);
		c->esmtp = true;
		client_after_hello(c);
	} else if (r->code >= 500 && c->state == CS_EHLO) {
		/* RFC 5321 3.2: an old server; no extensions then. */
		memset(&c->ehlo, 0, sizeof(c->ehlo));
		c->esmtp = false;
		client_printf(c, "HELO %s\r\n", c->p.helo_name);
		client_set_state(c, CS_HELO);
		client_wait(c, "the reply to HELO", c->p.timeouts.command);
	} else if (c->state == CS_HELO && r->code / 100 == 2) {
		client_after_hello(c);
	} else {
		char sum[400];

		smtp_reply_summary(r, sum, sizeof(sum));
		client_fail(c, true, r->code, r->code / 100 == 4 ?
		    client_status_of(r) : "4.5.0", "%s refused by %s: %s",
		    c->state == CS_HELO ? "HELO" : "EHLO", c->peer, sum);
	}
}

static void
client_starttls_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	if (r->code == 220) {
		client_start_tls(c);
		return;
	}
	if (c->p.tls == SMTP_TLS_MAY && r->code >= 400) {
		char sum[200];

		/* RFC 3207 4: the client may go on without TLS; a new
		 * connection would get the same answer. */
		smtp_reply_summary(r, sum, sizeof(sum));
		c->starttls_refused = true;
		c->result.tls_refused = true;
		snprintf(c->result.tls_error, sizeof(c->result.tls_error),
		    "STARTTLS refused: %s", sum);
		client_after_hello(c);
		return;
	}
	{
		char sum[400];

		smtp_reply_summary(r, sum, sizeof(sum));
		client_fail(c, true, r->code, "4.7.4",
		    "STARTTLS refused by %s: %s", c->peer, sum);
	}
}

static void
client_start_auth(struct smtp_client *c)
{
	size_t ul = strlen(c->p.auth_user);
	size_t pl = c->p.auth_password != NULL ?
	    strlen(c->p.auth_password) : 0;
	unsigned char buf[SMTP_CLIENT_AUTH_MAX + 2];

	if (ul + pl > SMTP_CLIENT_AUTH_MAX) {
		client_fail(c, false, 0, "4.7.0", "AUTH credentials too long");
		return;
	}
	client_set_state(c, CS_AUTH);
	c->auth_step = 0;
	if (c->ehlo.auth_plain) {
		/* RFC 4616 2: authzid (empty) NUL authcid NUL passwd. */
		c->auth_login = false;
		buf[0] = '\0';
		memcpy(buf + 1, c->p.auth_user, ul);
		buf[1 + ul] = '\0';
		if (pl > 0)
			memcpy(buf + 2 + ul, c->p.auth_password, pl);
		client_send_secret(c, "AUTH PLAIN ", buf, ul + pl + 2);
		OPENSSL_cleanse(buf, sizeof(buf));
	} else {
		c->auth_login = true;
		client_printf(c, "AUTH LOGIN\r\n");
	}
	client_wait(c, "the reply to AUTH", c->p.timeouts.command);
}

static void
client_start_transaction(struct smtp_client *);

static void
client_auth_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	const char *mech = c->auth_login ? "LOGIN" : "PLAIN";
	char sum[400];

	if (r->code / 100 == 2) {
		client_start_transaction(c);
		return;
	}
	smtp_reply_summary(r, sum, sizeof(sum));
	if (r->code == 334 && c->auth_login && c->auth_step < 2) {
		const char *s = c->auth_step == 0 ? c->p.auth_user :
		    c->p.auth_password != NULL ? c->p.auth_password : "";

		/* The prompts' text is not trusted: the order is RFC
		 * 4954's LOGIN as every server does it, user then password. */
		client_send_secret(c, "", (const unsigned char *)s, strlen(s));
		c->auth_step++;
		client_wait(c, "the reply to AUTH", c->p.timeouts.command);
		return;
	}
	if (r->code / 100 == 5) {
		char status[sizeof(r->status)];
		size_t i;

		/* Bad credentials are ours to fix: defer, do not bounce.
		 * The status says so too (5.7.8 becomes 4.7.8). */
		snprintf(status, sizeof(status), "%s", client_status_of(r));
		status[0] = '4';
		for (i = 0; i < c->p.n_rcpts; i++)
			if (c->rstate[i] != RS_FINAL)
				client_decide(c, i, SMTP_RCPT_TEMPFAIL,
				    r->code, status, sum);
		client_set_error(c, "AUTH %s refused by %s: %s", mech, c->peer,
		    sum);
		client_quit(c);
		return;
	}
	client_fail(c, r->code / 100 == 4, r->code, r->code / 100 == 4 ?
	    client_status_of(r) : "4.5.0", "AUTH %s with %s failed: %s", mech,
	    c->peer, sum);
}

static void
client_after_hello(struct smtp_client *c)
{
	bool required = c->p.tls >= SMTP_TLS_ENCRYPT;

	if (!c->result.tls) {
		if (c->p.tls != SMTP_TLS_NONE && !c->starttls_refused &&
		    c->esmtp && c->ehlo.starttls && c->p.tls_ctx != NULL) {
			client_printf(c, "STARTTLS\r\n");
			client_set_state(c, CS_STARTTLS);
			client_wait(c, "the reply to STARTTLS",
			    c->p.timeouts.command);
			return;
		}
		if (required) {
			client_fail(c, true, 0, "4.7.4", "TLS required but "
			    "%s does not offer STARTTLS", c->peer);
			return;
		}
	}
	if (c->p.auth_user != NULL) {
		/* Never a password in plaintext (DESIGN.md). */
		if (!c->result.tls) {
			client_fail(c, true, 0, "4.7.0", "AUTH required but "
			    "the session with %s is not encrypted", c->peer);
			return;
		}
		if (!c->esmtp || (!c->ehlo.auth_plain && !c->ehlo.auth_login)) {
			client_fail(c, true, 0, "4.7.0", "AUTH required but "
			    "%s offers neither PLAIN nor LOGIN", c->peer);
			return;
		}
		client_start_auth(c);
		return;
	}
	client_start_transaction(c);
}

/* The transaction */

static void
client_send_txn_command(struct smtp_client *c, size_t k)
{
	if (k == 0) {
		client_printf(c, "MAIL FROM:<%s>", c->p.sender);
		if (c->esmtp && c->ehlo.has_size)
			client_printf(c, " SIZE=%" PRIu64, c->p.msg_size);
		if (c->p.eightbit && c->esmtp && c->ehlo.eightbitmime)
			client_printf(c, " BODY=8BITMIME");
		if (c->p.smtputf8)
			client_printf(c, " SMTPUTF8");
		client_printf(c, "\r\n");
	} else if (k <= c->n_valid)
		client_printf(c, "RCPT TO:<%s>\r\n",
		    c->p.rcpts[c->valid[k - 1]]);
	else
		client_printf(c, "DATA\r\n");
}

static void
client_txn_wait(struct smtp_client *c)
{
	size_t k = c->txn_replies;

	if (k == 0)
		client_wait(c, "the reply to MAIL", c->p.timeouts.command);
	else if (k <= c->n_valid)
		client_wait(c, "the reply to RCPT", c->p.timeouts.command);
	else
		client_wait(c, "the reply to DATA", c->p.timeouts.data_init);
}

static void
client_start_transaction(struct smtp_client *c)
{
	size_t i, k;

	if (c->p.smtputf8 && !(c->esmtp && c->ehlo.smtputf8)) {
		for (i = 0; i < c->p.n_rcpts; i++)
			if (c->rstate[i] != RS_FINAL)
				client_decide(c, i, SMTP_RCPT_PERMFAIL, 0,
				    "5.6.7", "5.6.7 the message needs "
				    "SMTPUTF8, which the server lacks");
		client_set_error(c, "%s does not offer SMTPUTF8", c->peer);
		client_quit(c);
		return;
	}
	if (c->esmtp && c->ehlo.has_size && c->ehlo.size > 0 &&
	    c->p.msg_size > c->ehlo.size) {
		char diag[200];

		snprintf(diag, sizeof(diag), "5.3.4 message of %" PRIu64
		    " bytes exceeds the server's limit of %" PRIu64,
		    c->p.msg_size, c->ehlo.size);
		for (i = 0; i < c->p.n_rcpts; i++)
			if (c->rstate[i] != RS_FINAL)
				client_decide(c, i, SMTP_RCPT_PERMFAIL, 0,
				    "5.3.4", diag);
		client_set_error(c, "%s: %s", c->peer, diag);
		client_quit(c);
		return;
	}
	c->pipelining = c->esmtp && c->ehlo.pipelining;
	c->chunking = c->esmtp && c->ehlo.chunking;
	c->txn_replies = 0;
	client_set_state(c, CS_TXN);
	/* RFC 2920 3.1: MAIL, every RCPT and DATA in one write. With
	 * CHUNKING the first BDAT waits for the RCPT replies, so that a
	 * chunk is never sent with no recipient to take it. */
	if (c->pipelining) {
		for (k = 0; k <= c->n_valid + (c->chunking ? 0 : 1); k++)
			client_send_txn_command(c, k);
	} else
		client_send_txn_command(c, 0);
	client_txn_wait(c);
}

/* The peer took some content: it is alive, data_block starts again. */
static void
client_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct smtp_client *c = arg;

	(void)buf;
	if (info->n_deleted > 0 && c->state == CS_CONTENT)
		client_wait(c, "the peer to take the content",
		    c->p.timeouts.data_block);
	else if (info->n_deleted > 0 && c->state == CS_BDAT)
		client_wait(c, "the reply to BDAT", c->p.timeouts.data_block);
}

/*
 * Reads the next piece of the message, at most max bytes, into c->block.
 * Returns its length, or -1 after failing the session (a read error or a
 * file shorter than its size: 4.3.0, temporary).
 */
static ssize_t
client_read_block(struct smtp_client *c, size_t max)
{
	size_t want = c->p.msg_size - c->data_off < max ?
	    (size_t)(c->p.msg_size - c->data_off) : max;
	ssize_t got;

	do
		got = pread(c->p.msg_fd, c->block, want,
		    (off_t)(c->p.msg_offset + c->data_off));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		client_fail(c, false, 0, "4.3.0", "cannot read the message at "
		    "offset %" PRIu64 ": %s", c->data_off,
		    got < 0 ? strerror(errno) : "file too short");
		return -1;
	}
	return got;
}

/*
 * Sends the next BDAT chunk (RFC 3030 2): at most SMTP_CLIENT_BLOCK_SIZE
 * bytes with line ends repaired as for DATA but not dot-stuffed, and no
 * final dot; the last one (or "BDAT 0 LAST" for an empty message) says
 * LAST. false when reading the message failed the session.
 */
static bool
client_send_chunk(struct smtp_client *c)
{
	size_t n = 0;
	ssize_t got;

	if (c->data_off < c->p.msg_size) {
		/* On a failure LAST is never sent: the peer drops it. */
		if ((got = client_read_block(c, SMTP_CLIENT_BDAT_RAW)) < 0)
			return false;
		n = smtp_client_crlf(&c->stuff, c->block, (size_t)got,
		    c->chunk);
		c->data_off += (uint64_t)got;
	}
	c->bdat_last_sent = c->data_off >= c->p.msg_size;
	if (c->bdat_last_sent)
		n += smtp_client_crlf_end(&c->stuff, c->chunk + n);
	client_printf(c, "BDAT %zu%s\r\n", n, c->bdat_last_sent ? " LAST" :
	    "");
	if (n > 0 && evbuffer_add(bufferevent_get_output(c->bev), c->chunk,
	    n) < 0)
		fatalx("evbuffer_add failed");
	c->bdat_unanswered++;
	return true;
}

/* What the next reply answers: LAST (the final reply) or a chunk. */
static void
client_bdat_wait(struct smtp_client *c)
{
	if (!c->bdat_refused && c->bdat_last_sent &&
	    c->bdat_unanswered == 1) {
		client_stop_drain_cb(c);
		client_set_state(c, CS_FINAL);
		client_wait(c, "the reply to BDAT LAST",
		    c->p.timeouts.data_final);
	} else {
		client_set_state(c, CS_BDAT);
		client_wait(c, "the reply to BDAT", c->p.timeouts.data_block);
	}
}

/* Chunks up to the window (one without PIPELINING), then waits. */
static void
client_bdat_fill(struct smtp_client *c)
{
	unsigned window = c->pipelining ? SMTP_CLIENT_BDAT_WINDOW : 1;

	while (!c->bdat_last_sent && c->bdat_unanswered < window)
		if (!client_send_chunk(c))
			return;
	client_bdat_wait(c);
}

/* Anything buffered after the reply just read answers nothing we sent;
 * read later, it would pass for the reply to the next chunk. */
static bool
client_input_clean(struct smtp_client *c)
{
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		return true;
	client_fail(c, true, 0, "4.5.0", "protocol error from %s: a reply "
	    "nobody asked for before BDAT", c->peer);
	return false;
}

/* DATA or BDAT: the read buffer, fresh line-end state, and data_block
 * restarted whenever the peer takes some of the content. */
static void
client_content_begin(struct smtp_client *c)
{
	if (c->block == NULL)
		c->block = xmalloc(SMTP_CLIENT_BLOCK_SIZE);
	smtp_client_dotstuff_init(&c->stuff);
	c->data_off = 0;
	c->drain_cb = evbuffer_add_cb(bufferevent_get_output(c->bev),
	    client_drained, c);
	if (c->drain_cb == NULL)
		fatalx("evbuffer_add_cb failed");
}

static void
client_start_bdat(struct smtp_client *c)
{
	if (!client_input_clean(c))
		return;
	if (c->chunk == NULL)
		c->chunk = xmalloc(SMTP_CLIENT_BLOCK_SIZE);
	log_debug("smtp_client: peer=%s content by BDAT%s", c->peer,
	    c->pipelining ? ", pipelined" : "");
	client_content_begin(c);
	c->bdat_unanswered = 0;
	c->bdat_last_sent = false;
	c->bdat_refused = false;
	client_bdat_fill(c);
}

/* The reply to a BDAT chunk other than the last. */
static void
client_bdat_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	int class = r->code / 100;
	char sum[400];

	c->bdat_unanswered--;
	if (c->bdat_refused) {
		/* RFC 3030 2: the transaction failed already; these answer
		 * chunks that were on their way. */
		if (c->bdat_unanswered == 0)
			client_quit(c);
		else
			client_bdat_wait(c);
		return;
	}
	if (class == 2) {
		/* More input is fine while more replies are due. */
		if (c->bdat_unanswered == 0 && !client_input_clean(c))
			return;
		client_bdat_fill(c);
		return;
	}
	smtp_reply_summary(r, sum, sizeof(sum));
	if (class != 4 && class != 5) {
		client_fail(c, true, r->code, "4.5.0",
		    "unexpected reply to BDAT: %s", sum);
		return;
	}
	/* RFC 3030 2: a refused chunk ends the transaction; what the
	 * reply says holds for every recipient, as after DATA. No chunk
	 * follows; the replies to those already sent are read first. */
	client_stop_drain_cb(c);
	client_decide_by_reply(c, r, RS_ACCEPTED);
	client_set_error(c, "BDAT refused by %s: %s", c->peer, sum);
	c->bdat_refused = true;
	if (c->bdat_unanswered == 0)
		client_quit(c);
	else
		client_bdat_wait(c);
}

static void
client_start_content(struct smtp_client *c)
{
	client_content_begin(c);
	client_set_state(c, CS_CONTENT);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTP_CLIENT_OUT_LOW, 0);
	client_fill_content(c);
}

static void
client_txn_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	size_t k = c->txn_replies++;
	int class = r->code / 100;
	char sum[400];

	if (k == 0) {
		/* MAIL */
		if (class != 2) {
			if (class == 3) {
				smtp_reply_summary(r, sum, sizeof(sum));
				client_fail(c, true, r->code, "4.5.0",
				    "unexpected reply to MAIL: %s", sum);
				return;
			}
			c->mail_failed = true;
			client_decide_by_reply(c, r, RS_PENDING);
			if (class == 4)
				c->result.try_next_host = true;
			smtp_reply_summary(r, sum, sizeof(sum));
			client_set_error(c, "MAIL refused by %s: %s", c->peer,
			    sum);
		}
	} else if (k <= c->n_valid) {
		/* RCPT: after a refused MAIL every reply is meaningless. */
		size_t i = c->valid[k - 1];

		if (class == 3) {
			smtp_reply_summary(r, sum, sizeof(sum));
			client_fail(c, true, r->code, "4.5.0",
			    "unexpected reply to RCPT: %s", sum);
			return;
		}
		if (!c->mail_failed) {
			if (class == 2) {
				c->rstate[i] = RS_ACCEPTED;
				c->n_accepted++;
			} else {
				smtp_reply_summary(r, sum, sizeof(sum));
				client_decide(c, i, class == 4 ?
				    SMTP_RCPT_TEMPFAIL : SMTP_RCPT_PERMFAIL,
				    r->code, client_status_of(r), sum);
				if (class == 5)
					c->peer_decided = true;
			}
		}
	} else {
		/* DATA */
		if (r->code == 354) {
			/*
			 * Anything after the 354 came before the content
			 * was sent, so it cannot be the reply to it; read
			 * later, it would pass for one.
			 */
			if (evbuffer_get_length(bufferevent_get_input(c->bev))
			    > 0) {
				client_fail(c, true, 0, "4.5.0", "protocol "
				    "error from %s: reply before the content",
				    c->peer);
				return;
			}
			if (c->mail_failed || c->n_accepted == 0) {
				/* RFC 2920 3.1: a DATA accepted with no
				 * recipient gets a lone dot. */
				client_printf(c, ".\r\n");
				client_set_state(c, CS_DOT_ONLY);
				client_wait(c, "the reply to the final dot",
				    c->p.timeouts.data_final);
				return;
			}
			client_start_content(c);
			return;
		}
		if (class == 2 || class == 3) {
			smtp_reply_summary(r, sum, sizeof(sum));
			client_fail(c, true, r->code, "4.5.0",
			    "unexpected reply to DATA: %s", sum);
			return;
		}
		if (!c->mail_failed)
			client_decide_by_reply(c, r, RS_ACCEPTED);
		client_quit(c);
		return;
	}
	if (c->chunking && c->txn_replies == c->n_valid + 1) {
		/* Every RCPT answered: the content goes by BDAT. */
		if (c->mail_failed || c->n_accepted == 0)
			client_quit(c);
		else
			client_start_bdat(c);
		return;
	}
	if (c->pipelining) {
		client_txn_wait(c);
		return;
	}
	/* One command at a time. */
	if (c->mail_failed) {
		client_quit(c);
		return;
	}
	if (c->txn_replies <= c->n_valid ||
	    (c->txn_replies == c->n_valid + 1 && c->n_accepted > 0)) {
		client_send_txn_command(c, c->txn_replies);
		client_txn_wait(c);
		return;
	}
	/* Every RCPT refused: no DATA. */
	client_quit(c);
}

/* Adds content while the peer keeps up; never the whole message. */
static void
client_fill_content(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec v;
	size_t n;
	ssize_t got;

	while (c->state == CS_CONTENT &&
	    evbuffer_get_length(out) < SMTP_CLIENT_OUT_HIGH) {
		if (c->data_off >= c->p.msg_size) {
			char end[8];

			client_stop_drain_cb(c);
			n = smtp_client_dotstuff_end(&c->stuff, end);
			evbuffer_add(out, end, n);
			bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
			client_set_state(c, CS_FINAL);
			client_wait(c, "the reply to the final dot",
			    c->p.timeouts.data_final);
			return;
		}
		/* On a failure the final dot is never sent: the peer
		 * drops the message. */
		if ((got = client_read_block(c, SMTP_CLIENT_BLOCK_SIZE)) < 0)
			return;
		if (evbuffer_reserve_space(out, 2 * (size_t)got + 2, &v, 1) < 1)
			fatalx("evbuffer_reserve_space failed");
		v.iov_len = smtp_client_dotstuff(&c->stuff, c->block,
		    (size_t)got, v.iov_base);
		if (evbuffer_commit_space(out, &v, 1) < 0)
			fatalx("evbuffer_commit_space failed");
		c->data_off += (uint64_t)got;
	}
	if (c->state == CS_CONTENT)
		client_wait(c, "the peer to take the content",
		    c->p.timeouts.data_block);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	if (bev == c->bev && c->state == CS_CONTENT)
		client_fill_content(c);
}

static void
client_final_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	char sum[400];

	if (r->code / 100 == 3) {
		smtp_reply_summary(r, sum, sizeof(sum));
		client_fail(c, true, r->code, "4.5.0",
		    "unexpected reply to %s: %s", c->chunking ?
		    "BDAT LAST" : "the final dot", sum);
		return;
	}
	client_decide_by_reply(c, r, RS_ACCEPTED);
	client_end_transaction(c);
}

/* Replies */

static void
client_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	evtimer_del(c->timer);
	if (c->state == CS_QUIT) {
		client_finish(c);
		return;
	}
	if (c->state == CS_CONTENT) {
		client_fail_reply(c, r, "reply while sending the content");
		return;
	}
	if (r->code == 421) {
		/* RFC 5321 3.8: the server is going away. */
		client_fail_reply(c, r, c->state == CS_BANNER ?
		    "greeting" : "service closing");
		return;
	}
	switch (c->state) {
	case CS_BANNER:
		client_banner(c, r);
		break;
	case CS_EHLO:
	case CS_HELO:
		client_ehlo_reply(c, r);
		break;
	case CS_STARTTLS:
		client_starttls_reply(c, r);
		break;
	case CS_AUTH:
		client_auth_reply(c, r);
		break;
	case CS_TXN:
		client_txn_reply(c, r);
		break;
	case CS_BDAT:
		client_bdat_reply(c, r);
		break;
	case CS_FINAL:
		client_final_reply(c, r);
		break;
	case CS_DOT_ONLY:
		client_quit(c);
		break;
	default:
		client_fail_reply(c, r, "unexpected reply");
		break;
	}
}

static bool
client_reads_replies(const struct smtp_client *c)
{
	return c->state >= CS_BANNER && c->state <= CS_QUIT;
}

/*
 * The next line, without CR LF, in c->line: 1, 0 (none complete yet), or
 * -1 with *err_r (too long, bare LF).
 */
static int
client_get_line(struct smtp_client *c, size_t *len_r, const char **err_r)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t avail = evbuffer_get_length(in), len;
	struct evbuffer_ptr eol;

	if (avail == 0)
		return 0;
	eol = evbuffer_search(in, "\n", 1, NULL);
	if (eol.pos < 0) {
		/* Even with its CR the longest line leaves no room. */
		if (avail > SMTP_REPLY_LINE_MAX + 1) {
			*err_r = "reply line too long";
			return -1;
		}
		return 0;
	}
	len = (size_t)eol.pos;
	if (len > SMTP_REPLY_LINE_MAX + 1) {
		*err_r = "reply line too long";
		return -1;
	}
	evbuffer_remove(in, c->line, len + 1);
	if (len == 0 || c->line[len - 1] != '\r') {
		*err_r = "bare LF in reply";
		return -1;
	}
	len--;
	c->line[len] = '\0';
	*len_r = len;
	return 1;
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	const char *err = NULL;
	char excerpt[80];
	size_t len;
	int r;

	while (bev == c->bev && client_reads_replies(c)) {
		if ((r = client_get_line(c, &len, &err)) == 0)
			return;
		if (r < 0) {
			client_fail(c, true, 0, "4.5.0", "protocol error "
			    "from %s: %s", c->peer, err);
			return;
		}
		switch (smtp_reply_feed(&c->parser, c->line, len, &c->reply)) {
		case SMTP_REPLY_MORE:
			break;
		case SMTP_REPLY_BAD:
			client_sanitize(c->line, len, excerpt, sizeof(excerpt));
			client_fail(c, true, 0, "4.5.0", "protocol error "
			    "from %s: malformed reply line \"%s\"", c->peer,
			    excerpt);
			return;
		case SMTP_REPLY_DONE:
			client_reply(c, &c->reply);
			break;
		}
	}
	/* Idle: anything the peer says now (a 421 for its own idle
	 * timeout, most likely) ends the connection. */
	if (bev == c->bev && c->state == CS_IDLE &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		client_idle_broken(c);
	/* Nothing is expected (connecting, handshaking): leave it. */
}

/* Start and cancel */

static void
client_set_params(struct smtp_client *c,
    const struct smtp_client_params *params, smtp_client_cb cb, void *arg)
{
	struct smtp_client_timeouts *t = &c->p.timeouts;

	c->p = *params;
	c->cb = cb;
	c->cb_arg = arg;
	if (t->connect == 0)
		t->connect = 30;
	if (t->banner == 0)
		t->banner = 300;
	if (t->command == 0)
		t->command = 300;
	if (t->data_init == 0)
		t->data_init = 120;
	if (t->data_block == 0)
		t->data_block = 180;
	if (t->data_final == 0)
		t->data_final = 600;
	if (c->p.sender == NULL)
		c->p.sender = "";
}

/*
 * A transaction's own state, fresh, and everything that can be refused
 * without asking the peer. false: that decided every recipient and the
 * session is finishing.
 */
static bool
client_begin_transaction(struct smtp_client *c)
{
	size_t n = c->p.n_rcpts ? c->p.n_rcpts : 1, i;

	free(c->result.rcpts);
	free(c->rstate);
	free(c->valid);
	c->result.n_rcpts = c->p.n_rcpts;
	c->result.rcpts = xcalloc(n, sizeof(*c->result.rcpts));
	c->rstate = xcalloc(n, 1);
	c->valid = xcalloc(n, sizeof(size_t));
	c->n_valid = 0;
	c->txn_replies = 0;
	c->mail_failed = false;
	c->n_accepted = 0;
	c->peer_decided = false;
	c->result.try_next_host = false;
	c->result.reusable = false;
	c->result.error[0] = '\0';
	c->result.transactions++;
	smtp_reply_parser_init(&c->parser);

	if (!client_address_ok(c->p.sender)) {
		for (i = 0; i < c->p.n_rcpts; i++)
			client_decide(c, i, SMTP_RCPT_PERMFAIL, 0, "5.1.7",
			    "5.1.7 the sender address cannot be sent");
		client_set_error(c, "the sender address cannot be sent");
		client_finish(c);
		return false;
	}
	for (i = 0; i < c->p.n_rcpts; i++) {
		if (client_address_ok(c->p.rcpts[i]) && c->p.rcpts[i][0])
			c->valid[c->n_valid++] = i;
		else
			client_decide(c, i, SMTP_RCPT_PERMFAIL, 0, "5.1.3",
			    "5.1.3 the recipient address cannot be sent");
	}
	if (c->n_valid == 0) {
		client_set_error(c, "no recipient to send to");
		client_finish(c);
		return false;
	}
	return true;
}

struct smtp_client *
smtp_client_start(struct event_base *base,
    const struct smtp_client_params *params, smtp_client_cb cb, void *arg)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	const struct smtp_client_timeouts *t = &c->p.timeouts;

	c->base = base;
	client_set_params(c, params, cb, arg);
	c->state = CS_CONNECT;
	c->timer = evtimer_new(base, client_timeout_cb, c);
	c->done_ev = evtimer_new(base, client_done_cb, c);
	if (c->timer == NULL || c->done_ev == NULL)
		fatalx("evtimer_new failed");

	sockaddr_text(c->p.addr, c->peer, sizeof(c->peer));

	if (!client_begin_transaction(c))
		return c;
	if (c->p.addr == NULL || c->p.helo_name == NULL ||
	    !client_address_ok(c->p.helo_name) || c->p.helo_name[0] == '\0' ||
	    strchr(c->p.helo_name, ' ') != NULL) {
		client_fail(c, false, 0, "4.3.5", "bad client parameters "
		    "(address or HELO name)");
		return c;
	}
	if ((c->p.tls >= SMTP_TLS_ENCRYPT || c->p.implicit_tls) &&
	    c->p.tls_ctx == NULL) {
		client_fail(c, false, 0, "4.3.5", "TLS required but no TLS "
		    "context given");
		return c;
	}
	if ((c->p.tls == SMTP_TLS_VERIFY || c->p.tls == SMTP_TLS_DANE) &&
	    (c->p.peer_name == NULL || c->p.peer_name[0] == '\0')) {
		client_fail(c, false, 0, "4.3.5", "TLS verification needs "
		    "the peer's name");
		return c;
	}
	if (c->p.auth_user != NULL && c->p.tls_ctx == NULL) {
		client_fail(c, false, 0, "4.3.5", "AUTH needs TLS but no TLS "
		    "context given");
		return c;
	}

	if (c->p.source != NULL) {
		/* A server on one address of a multi-homed host speaks from
		 * that address: its PTR, SPF and the peer's logs match. */
		evutil_socket_t fd = socket(c->p.source->sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0 || bind(fd, c->p.source, c->p.source_len) < 0) {
			int err = errno;

			if (fd >= 0)
				close(fd);
			client_fail(c, true, 0, "4.4.1", "binding to the "
			    "source address failed: %s", strerror(err));
			return c;
		}
		c->bev = bufferevent_socket_new(base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	} else
		c->bev = bufferevent_socket_new(base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_setwatermark(c->bev, EV_READ, 0, SMTP_CLIENT_INPUT_MAX);
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	client_wait(c, "the connection", t->connect);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)(uintptr_t)
	    c->p.addr, (int)c->p.addr_len) < 0) {
		int err = EVUTIL_SOCKET_ERROR();

		client_fail(c, true, 0, "4.4.1", "connect to %s failed: %s",
		    c->peer, err != 0 ? strerror(err) : "error");
		return c;
	}
	return c;
}

void
smtp_client_cancel(struct smtp_client *c)
{
	if (c == NULL)
		return;
	client_free(c);
}

/* Reuse */

void
smtp_client_park(struct smtp_client *c, smtp_client_closed_cb closed,
    void *arg)
{
	struct smtp_client_params kept = { 0 };

	if (c->state != CS_IDLE || closed == NULL)
		fatalx("smtp_client_park: not an idle connection");
	c->closed_cb = closed;
	c->closed_arg = arg;
	/* The earlier params' strings belong to a finished delivery. */
	kept.timeouts = c->p.timeouts;
	c->p = kept;
	if (c->idle_broken)
		client_finish(c);
}

void
smtp_client_quit(struct smtp_client *c)
{
	/* Not idle any more: the peer went away, closed will run. */
	if (c->state != CS_IDLE)
		return;
	client_quit(c);
}

void
smtp_client_next(struct smtp_client *c,
    const struct smtp_client_params *params, smtp_client_cb cb, void *arg)
{
	if (c->state == CS_DONE && c->closed_cb != NULL) {
		/* Parked, gone while idle, closed not yet run: the new
		 * owner gets the failure instead. */
		evtimer_del(c->done_ev);
		client_set_state(c, CS_IDLE);
	}
	if (c->state != CS_IDLE)
		fatalx("smtp_client_next: not an idle connection");
	c->closed_cb = NULL;
	c->closed_arg = NULL;
	client_set_params(c, params, cb, arg);
	c->result.reused = true;
	if (!client_begin_transaction(c))
		return;
	if (c->idle_broken) {
		client_fail(c, true, 0, "4.4.2", "%s closed the connection "
		    "while it was idle", c->peer);
		return;
	}
	client_start_transaction(c);
}
