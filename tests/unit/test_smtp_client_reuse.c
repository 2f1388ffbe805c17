/*
 * Connection reuse in the outbound SMTP client (smtp_client.c,
 * params.reuse, smtp_client_park/quit/next): two transactions on one
 * connection, reuse only when asked, and a peer that closes an idle
 * connection, against tests/smtp_peer.py (smtp_client_harness.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "smtp/smtp_client.h"
#include "smtp_client_harness.h"
#include "unit.h"

struct reuse_run {
	struct event_base *base;
	struct event *guard;
	int calls, closed;
	struct smtp_client_result res;
	struct smtp_client_rcpt rcpts[MAX_RCPTS];
};

static void
reuse_cb(void *arg, const struct smtp_client_result *r)
{
	struct reuse_run *rr = arg;
	size_t n = r->n_rcpts < MAX_RCPTS ? r->n_rcpts : MAX_RCPTS;

	rr->calls++;
	rr->res = *r;
	memcpy(rr->rcpts, r->rcpts, n * sizeof(*r->rcpts));
	rr->res.rcpts = rr->rcpts;
	event_base_loopexit(rr->base, NULL);
}

static void
reuse_closed_cb(void *arg)
{
	struct reuse_run *rr = arg;

	rr->closed++;
	event_base_loopexit(rr->base, NULL);
}

/* Runs the loop until a callback (or secs, for what must not call). */
static void
reuse_wait(struct reuse_run *rr, int secs)
{
	struct timeval tv = { .tv_sec = secs };

	evtimer_add(rr->guard, &tv);
	event_base_dispatch(rr->base);
	evtimer_del(rr->guard);
}

static void
reuse_guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

static void
reuse_init(struct reuse_run *rr)
{
	memset(rr, 0, sizeof(*rr));
	rr->base = event_base_new();
	rr->guard = evtimer_new(rr->base, reuse_guard_cb, rr->base);
}

static void
reuse_done(struct reuse_run *rr)
{
	event_free(rr->guard);
	event_base_free(rr->base);
}

/*
 * A peer with script and a client with params.reuse on it (verified TLS
 * when tls_ctx is given), run until its first result.
 */
static struct smtp_client *
reuse_first(struct reuse_run *rr, struct peer *pe, const char *script,
    struct smtp_client_params *p, SSL_CTX *tls_ctx)
{
	struct smtp_client *c;

	CHECK(peer_start(pe, script));
	params_init(p, pe->port, rcpts3, 1);
	if (tls_ctx != NULL) {
		p->tls = SMTP_TLS_VERIFY;
		p->tls_ctx = tls_ctx;
	}
	p->reuse = true;
	reuse_init(rr);
	c = smtp_client_start(rr->base, p, reuse_cb, rr);
	reuse_wait(rr, 40);
	CHECK(rr->calls == 1);
	return c;
}

static int
count_of(const char *hay, const char *needle)
{
	int n = 0;

	while (hay != NULL && (hay = strstr(hay, needle)) != NULL) {
		n++;
		hay++;
	}
	return n;
}

/*
 * Two transactions on one verified TLS connection: one connect, one
 * handshake, one EHLO after it, two MAILs, each message's own bytes; then
 * parked, QUIT on request and closed called once.
 */
static void
test_reuse_two_transactions(void)
{
	static const char msg2[] = "Subject: second\r\n\r\n.dot\r\n";
	struct smtp_client_params p, p2;
	struct smtp_client *c;
	struct reuse_run rr;
	struct peer pe;
	char *rec, script[300];

	snprintf(script, sizeof(script), "{%s}", ehlo_tls);
	c = reuse_first(&rr, &pe, script, &p, ctx_ca);
	check_all_res(&rr.res, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(rr.res.reusable && !rr.res.reused);
	CHECK(rr.res.transactions == 1);
	CHECK(rr.res.tls && rr.res.verified);

	p2 = p;
	p2.sender = "second@a.test";
	p2.rcpts = rcpts3 + 1;
	p2.n_rcpts = 2;
	p2.msg_fd = msg_file(msg2, sizeof(msg2) - 1);
	p2.msg_size = sizeof(msg2) - 1;
	smtp_client_next(c, &p2, reuse_cb, &rr);
	reuse_wait(&rr, 40);
	CHECK(rr.calls == 2);
	check_all_res(&rr.res, 2, SMTP_RCPT_DELIVERED, 250);
	CHECK(rr.res.reusable && rr.res.reused);
	CHECK(rr.res.transactions == 2);
	CHECK(rr.res.tls && rr.res.verified);

	smtp_client_park(c, reuse_closed_cb, &rr);
	smtp_client_quit(c);
	reuse_wait(&rr, 40);
	CHECK(rr.closed == 1 && rr.calls == 2);
	rec = peer_finish(&pe, 3000);
	CHECK(count_of(rec, "CONNECT") == 1);
	CHECK(count_of(rec, ": STARTTLS\n") == 1);
	CHECK(count_of(rec, ": EHLO ") == 2);	/* before and after TLS */
	CHECK(count_of(rec, ": MAIL FROM:") == 2);
	CHECK(rec_has(rec, ": MAIL FROM:<second@a.test>"));
	CHECK(rec_has(rec, ": RCPT TO:<c@x.test>"));
	CHECK(rec_has(rec, ": QUIT\n"));
	CHECK(!rec_has(rec, "RSET"));
	/* The peer keeps the last content: the second message, stuffed. */
	CHECK(data_is(&pe, "Subject: second\r\n\r\n..dot\r\n.\r\n",
	    sizeof(msg2) + 3));
	close(p2.msg_fd);
	free(rec);
	reuse_done(&rr);
}

/* Without params.reuse nothing changes: QUIT after the transaction. A
 * refused final reply still leaves a reusable connection. */
static void
test_reuse_only_when_asked(void)
{
	struct smtp_client_params p;
	struct smtp_client *c;
	struct reuse_run rr;
	struct run run;
	struct peer pe;
	char *rec;

	params_init(&p, 0, rcpts3, 1);
	rec = session("{}", &p, &run, &pe);
	CHECK(!run.res.reusable && !run.res.reused);
	CHECK(rec_has(rec, ": QUIT\n"));
	free(rec);

	c = reuse_first(&rr, &pe, "{'final': '554 5.7.1 no thanks'}", &p,
	    NULL);
	check_all_res(&rr.res, 1, SMTP_RCPT_PERMFAIL, 554);
	CHECK(rr.res.reusable);
	/* Freed without QUIT, and without a callback. */
	smtp_client_cancel(c);
	reuse_wait(&rr, 0);
	CHECK(rr.calls == 1 && rr.closed == 0);
	rec = peer_finish(&pe, 3000);
	CHECK(!rec_has(rec, "QUIT"));
	free(rec);
	reuse_done(&rr);
}

/*
 * The peer closes the connection after the transaction. Parked, the
 * client reports it through closed; taken again, the next transaction
 * fails at once with try_next_host and reused, so that the caller
 * connects anew rather than giving up on the host.
 */
static void
test_reuse_peer_closed_idle(void)
{
	static const char *const script = "{'final': {'lines': "
	    "['250 2.0.0 queued'], 'after': 'close'}}";
	struct smtp_client_params p;
	struct smtp_client *c;
	struct reuse_run rr;
	struct peer pe;
	char *rec;
	int round;

	for (round = 0; round < 2; round++) {
		c = reuse_first(&rr, &pe, script, &p, NULL);
		CHECK(rr.res.reusable);
		if (round == 0) {
			/* Parked at once: the close comes later. */
			smtp_client_park(c, reuse_closed_cb, &rr);
			reuse_wait(&rr, 40);
			CHECK(rr.closed == 1);
		} else {
			/* The close is seen while nobody holds it. */
			reuse_wait(&rr, 1);
			smtp_client_next(c, &p, reuse_cb, &rr);
			reuse_wait(&rr, 40);
			CHECK(rr.calls == 2);
			check_all_res(&rr.res, 1, SMTP_RCPT_TEMPFAIL, 0);
			CHECK(rr.res.try_next_host && rr.res.reused);
			CHECK(!rr.res.reusable);
			CHECK(strstr(rr.res.error, "idle") != NULL);
		}
		rec = peer_finish(&pe, 3000);
		CHECK(count_of(rec, ": MAIL FROM:") == 1);
		free(rec);
		reuse_done(&rr);
	}

	/* Parked after the close was seen: closed still runs, once. */
	c = reuse_first(&rr, &pe, script, &p, NULL);
	reuse_wait(&rr, 1);
	CHECK(rr.closed == 0);
	smtp_client_park(c, reuse_closed_cb, &rr);
	smtp_client_quit(c);		/* nothing to say QUIT to: no-op */
	reuse_wait(&rr, 40);
	CHECK(rr.closed == 1);
	free(peer_finish(&pe, 3000));
	reuse_done(&rr);
}

int
main(void)
{
	if (!harness_setup("test_smtp_client_reuse")) {
		unit_tests_failed++;
		return unit_finish();
	}
	UNIT_RUN(test_reuse_two_transactions);
	UNIT_RUN(test_reuse_only_when_asked);
	UNIT_RUN(test_reuse_peer_closed_idle);
	harness_teardown();
	return unit_finish();
}
