/*
 * Tests for the outbound SMTP client (smtp_client.c): dot-stuffing in
 * every split against a reference, then whole sessions on a libevent loop
 * against tests/smtp_peer.py, a scriptable fake server on 127.0.0.1
 * (pipelining, CHUNKING, per-recipient outcomes, TLS policies, DANE,
 * AUTH, hostile replies from security-tests.md 42, wire hygiene from 43,
 * timeouts, cancellation). Connection reuse is in
 * test_smtp_client_reuse.c; the harness in smtp_client_harness.c. Needs
 * /usr/bin/python3 and the openssl command.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/log.h"
#include "core/util.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_reply.h"
#include "smtp_client_harness.h"
#include "unit.h"

/* Dot-stuffing */

/*
 * An independent reference: split into lines, join with CR LF; with
 * stuff, double a leading dot and end with the final dot (DATA), else
 * not (BDAT).
 */
static size_t
ref_lines(const char *in, size_t len, char *out, bool stuff)
{
	size_t i = 0, o = 0, start;

	while (i < len) {
		start = i;
		while (i < len && in[i] != '\r' && in[i] != '\n')
			i++;
		if (stuff && in[start] == '.' && start < i)
			out[o++] = '.';
		memcpy(out + o, in + start, i - start);
		o += i - start;
		out[o++] = '\r';
		out[o++] = '\n';
		if (i + 1 < len && in[i] == '\r' && in[i + 1] == '\n')
			i += 2;
		else if (i < len)
			i++;
	}
	if (stuff) {
		memcpy(out + o, ".\r\n", 3);
		o += 3;
	}
	return o;
}

static size_t
ref_stuff(const char *in, size_t len, char *out)
{
	return ref_lines(in, len, out, true);
}

static size_t
ref_crlf(const char *in, size_t len, char *out)
{
	return ref_lines(in, len, out, false);
}

/*
 * Feeds in, cut at the given points (ascending, < len), to the DATA
 * dot-stuffer or, with crlf_only, to BDAT's line-end repair, checking the
 * output bounds each promises.
 */
static size_t
feed_split(bool crlf_only, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, char *out)
{
	struct smtp_client_dotstuff st;
	size_t o = 0, from = 0, k, n, piece;

	smtp_client_dotstuff_init(&st);
	for (k = 0; k <= ncuts; k++) {
		piece = (k < ncuts ? cuts[k] : len) - from;
		if (crlf_only) {
			n = smtp_client_crlf(&st, in + from, piece, out + o);
			/* The bound SMTP_CLIENT_BDAT_RAW relies on. */
			CHECK(n <= 2 * piece + 1);
		} else {
			n = smtp_client_dotstuff(&st, in + from, piece,
			    out + o);
			CHECK(n <= 2 * piece + 2);
		}
		o += n;
		from += piece;
	}
	n = crlf_only ? smtp_client_crlf_end(&st, out + o) :
	    smtp_client_dotstuff_end(&st, out + o);
	CHECK(n <= (crlf_only ? 2u : 5u));
	return o + n;
}

/*
 * The DATA dot-stuffer (or, with crlf_only, BDAT's line-end repair) on
 * in: the golden output want when given, the reference's, and the same
 * whatever the cuts: every single cut, every pair, and byte by byte.
 */
static void
check_split(bool crlf_only, const char *in, size_t len, const char *want,
    size_t wlen)
{
	char out[512], ref[512];
	size_t cuts[64], n, i, j;

	n = feed_split(crlf_only, in, len, NULL, 0, out);
	if (want != NULL && (n != wlen || memcmp(out, want, n) != 0)) {
		fprintf(stderr, "  %s golden mismatch for %zu bytes\n",
		    crlf_only ? "crlf" : "dotstuff", len);
		CHECK(!"golden");
	}
	CHECK(ref_lines(in, len, ref, !crlf_only) == n &&
	    memcmp(ref, out, n) == 0);
	for (i = 1; i < len; i++) {
		cuts[0] = i;
		CHECK(feed_split(crlf_only, in, len, cuts, 1, out) == n &&
		    memcmp(ref, out, n) == 0);
		for (j = i + 1; j < len; j++) {
			cuts[1] = j;
			CHECK(feed_split(crlf_only, in, len, cuts, 2, out) ==
			    n && memcmp(ref, out, n) == 0);
		}
	}
	for (i = 1; i < len && i <= 64; i++)
		cuts[i - 1] = i;
	if (len > 1 && len <= 64) {
		CHECK(feed_split(crlf_only, in, len, cuts, len - 1, out) ==
		    n && memcmp(ref, out, n) == 0);
	}
}

/* count random inputs of up to 39 bytes from ".", CR, LF and "a". */
static void
check_random(bool crlf_only, unsigned seed, int count)
{
	static const char alphabet[] = ".\r\na";
	char in[40];
	size_t j, len;
	int i;

	for (i = 0; i < count; i++) {
		len = (seed = seed * 1103515245 + 12345) >> 16;
		len %= sizeof(in);
		for (j = 0; j < len; j++) {
			seed = seed * 1103515245 + 12345;
			in[j] = alphabet[(seed >> 16) % 4];
		}
		check_split(crlf_only, in, len, NULL, 0);
	}
}

#define STUFF(in, want) check_split(false, in, sizeof(in) - 1, want, \
    sizeof(want) - 1)

static void
test_dotstuff(void)
{
	STUFF("", ".\r\n");
	STUFF("a", "a\r\n.\r\n");
	STUFF("a\r\n", "a\r\n.\r\n");
	STUFF(".", "..\r\n.\r\n");
	STUFF(".\r\n", "..\r\n.\r\n");
	STUFF("..\r\n", "...\r\n.\r\n");
	STUFF("a\r\n.b\r\n", "a\r\n..b\r\n.\r\n");
	STUFF("x.\r\n.", "x.\r\n..\r\n.\r\n");
	STUFF("\r\n\r\n", "\r\n\r\n.\r\n");
	STUFF("\r\n.\r\n", "\r\n..\r\n.\r\n");
	/* Bare line ends become CR LF, so no bare "\n.\n" reaches the wire
	 * (security-tests.md 43). */
	STUFF("a\n.\nb", "a\r\n..\r\nb\r\n.\r\n");
	STUFF("a\r.\rb", "a\r\n..\r\nb\r\n.\r\n");
	STUFF("a\r", "a\r\n.\r\n");
	STUFF("a\r\r\nb", "a\r\n\r\nb\r\n.\r\n");
	STUFF("\n", "\r\n.\r\n");
	STUFF("\r", "\r\n.\r\n");
	STUFF("\r.", "\r\n..\r\n.\r\n");
	STUFF("a.b\r\n", "a.b\r\n.\r\n");
	/* The worst growth: every byte doubles. */
	STUFF("\n\n\n\n", "\r\n\r\n\r\n\r\n.\r\n");
	STUFF("\r.\r.\r.", "\r\n..\r\n..\r\n..\r\n.\r\n");

	check_random(false, 12345, 3000);
}

/* Sessions: delivery */

static void
test_plain_no_pipelining(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, mail[64];
	int b_mail, b_r1, b_r2, b_data;

	params_init(&p, 0, rcpts3, 2);
	/* Slow replies: a client that did not wait would be seen. */
	rec = session("{'ehlo': ['250-peer.test', '250-8BITMIME', "
	    "'250 SIZE 100000'], "
	    "'mail': {'lines': ['250 2.1.0 ok'], 'delay': 0.05}, "
	    "'rcpt': {'lines': ['250 2.1.5 ok'], 'delay': 0.05}, "
	    "'data': {'lines': ['354 go'], 'delay': 0.05}}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_DELIVERED, 250);
	CHECK_STR(run.rcpts[0].status, "2.0.0");
	CHECK(strstr(run.rcpts[0].diagnostic, "250 2.0.0 queued") != NULL);
	CHECK(!run.res.try_next_host && !run.res.tls && !run.res.verified);
	CHECK_STR(run.res.error, "");
	snprintf(mail, sizeof(mail), "MAIL FROM:<from@a.test> SIZE=%zu",
	    sizeof(msg_simple) - 1);
	CHECK(rec_has(rec, mail));
	CHECK(rec_has(rec, ": EHLO client.test\n"));
	CHECK(rec_has(rec, ": QUIT\n"));
	b_mail = rec_batch(rec, "MAIL");
	b_r1 = rec_batch(rec, "RCPT TO:<a@x.test>");
	b_r2 = rec_batch(rec, "RCPT TO:<b@x.test>");
	b_data = rec_batch(rec, "DATA");
	CHECK(b_mail > 0 && b_mail < b_r1 && b_r1 < b_r2 && b_r2 < b_data);
	CHECK(data_is(&pe, MSG_SIMPLE ".\r\n", sizeof(msg_simple) + 2));
	free(rec);
}

static void
test_plain_pipelining(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;
	int b;

	params_init(&p, 0, rcpts3, 3);
	rec = session("{'ehlo': ['250-peer.test', '250 PIPELINING']}",
	    &p, &run, &pe);
	check_all(&run, 3, SMTP_RCPT_DELIVERED, 250);
	/* RFC 2920: MAIL, every RCPT and DATA in one write. */
	b = rec_batch(rec, "MAIL FROM:<from@a.test>\n");
	CHECK(b > 0);
	CHECK(rec_batch(rec, "RCPT TO:<a@x.test>") == b);
	CHECK(rec_batch(rec, "RCPT TO:<c@x.test>") == b);
	CHECK(rec_batch(rec, "DATA") == b);
	CHECK(data_is(&pe, MSG_SIMPLE ".\r\n", sizeof(msg_simple) + 2));
	free(rec);
}

static void
test_byte_by_byte_replies(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	/* Every reply arrives one byte at a time: lines are reassembled. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{'chunk': 1, 'ehlo': ['250-peer.test', "
	    "'250-PIPELINING', '250 SIZE'], 'rcpt': {'a@x.test': "
	    "['250-first', '250 2.1.5 second'], 'b@x.test': "
	    "'550 5.1.1 no such user'}}", &p, &run, &pe);
	CHECK(run.rcpts[0].outcome == SMTP_RCPT_DELIVERED);
	CHECK(run.rcpts[1].outcome == SMTP_RCPT_PERMFAIL);
	CHECK(run.rcpts[1].code == 550);
	CHECK_STR(run.rcpts[1].status, "5.1.1");
	CHECK(rec_has(rec, "MAIL FROM:<from@a.test> SIZE="));
	free(rec);
}

/* Dot lines, bare LF and CR, and no final line end, for DATA and BDAT. */
#define WIRE_CONTENT ".\r\n..\r\n.x\r\nx.\r\n\r\n.\r\n" \
    "bare\n.\nlf\r.\rcr\r\n. \r\nlast"

static void
test_dotstuff_wire(void)
{
	static const char content[] = WIRE_CONTENT;
	static const char want[] = "..\r\n...\r\n..x\r\nx.\r\n\r\n..\r\n"
	    "bare\r\n..\r\nlf\r\n..\r\ncr\r\n.. \r\nlast\r\n.\r\n";
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts1, 1);
	p.msg_fd = msg_file(content, sizeof(content) - 1);
	p.msg_size = sizeof(content) - 1;
	rec = session("{}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(data_is(&pe, want, sizeof(want) - 1));
	close(p.msg_fd);
	free(rec);

	/* The content starts at msg_offset (the queue file's envelope
	 * comes first). */
	params_init(&p, 0, rcpts1, 1);
	p.msg_fd = msg_file("ENVELOPE\n.x\r\n" MSG_SIMPLE "TRAILER",
	    sizeof("ENVELOPE\n.x\r\n" MSG_SIMPLE "TRAILER") - 1);
	p.msg_offset = sizeof("ENVELOPE\n") - 1;
	p.msg_size = sizeof(".x\r\n" MSG_SIMPLE) - 1;
	rec = session("{}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(data_is(&pe, "..x\r\n" MSG_SIMPLE ".\r\n",
	    sizeof("..x\r\n" MSG_SIMPLE ".\r\n") - 1));
	close(p.msg_fd);
	free(rec);

	/* An empty message is just the dot. */
	params_init(&p, 0, rcpts1, 1);
	p.msg_fd = msg_file("", 0);
	p.msg_size = 0;
	rec = session("{}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(data_is(&pe, ".\r\n", 3));
	close(p.msg_fd);
	free(rec);
}

/* A message of about size bytes whose dots fall at block boundaries. */
static char *
big_message(size_t size, size_t *len_r)
{
	char *m = xmalloc(size + 1100);	/* the last line runs over */
	size_t len = 0, n = 0;

	while (len < size) {
		size_t ll = 1 + (n * 7919) % 997;

		/* A dot-led line starting right at each 64 KiB boundary,
		 * and one ending right before it. */
		if ((len + ll + 2) % 65536 == 0 || len % 65536 == 65535)
			m[len++] = '.';
		if (n % 5 == 0)
			m[len++] = '.';
		memset(m + len, 'a' + (char)(n % 26), ll);
		len += ll;
		m[len++] = '\r';
		m[len++] = '\n';
		n++;
	}
	*len_r = len;
	return m;
}

/*
 * A session that sends a big_message of size bytes to n_rcpts of rcpts3
 * (over verified STARTTLS when tls) to a peer running script. *want_r
 * (*wlen_r bytes, to be freed) is what the peer must store: the message
 * through ref. Returns the peer's record.
 */
static char *
big_session(size_t size, bool tls, const char *script, size_t n_rcpts,
    size_t (*ref)(const char *, size_t, char *), struct run *run,
    struct peer *pe, char **want_r, size_t *wlen_r)
{
	struct smtp_client_params p;
	char *m, *rec;
	size_t len;

	m = big_message(size, &len);
	*want_r = xmalloc(2 * len + 8);
	*wlen_r = ref(m, len, *want_r);
	params_init(&p, 0, rcpts3, n_rcpts);
	p.msg_fd = msg_file(m, len);
	p.msg_size = len;
	if (tls) {
		p.tls = SMTP_TLS_VERIFY;
		p.tls_ctx = ctx_ca;
	}
	rec = session(script, &p, run, pe);
	close(p.msg_fd);
	free(m);
	return rec;
}

static void
test_big_message(bool tls)
{
	struct peer pe;
	struct run run;
	char *rec, *want;
	size_t wlen;

	rec = big_session(tls ? 1500000 : 3000000, tls, "{'ehlo': "
	    "['250-peer.test', '250-STARTTLS', '250 PIPELINING'], "
	    "'ehlo_tls': ['250-peer.test', '250 PIPELINING']}", 1, ref_stuff,
	    &run, &pe, &want, &wlen);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(run.res.tls == tls && run.res.verified == tls);
	CHECK(data_is(&pe, want, wlen));
	free(want);
	free(rec);
}

static void
test_big_plain(void)
{
	test_big_message(false);
}

static void
test_big_tls(void)
{
	test_big_message(true);
}

static void
test_rcpt_mix(bool pipelining)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, script[600];

	snprintf(script, sizeof(script), "{'ehlo': ['250-peer.test', "
	    "'250 %s'], 'rcpt': {'a@x.test': '250 2.1.5 ok', 'b@x.test': "
	    "'450 4.2.0 greylisted', 'c@x.test': '550 5.1.1 no such user'}}",
	    pipelining ? "PIPELINING" : "8BITMIME");
	params_init(&p, 0, rcpts3, 3);
	rec = session(script, &p, &run, &pe);
	CHECK(run.rcpts[0].outcome == SMTP_RCPT_DELIVERED);
	CHECK(run.rcpts[0].code == 250);
	CHECK(run.rcpts[1].outcome == SMTP_RCPT_TEMPFAIL);
	CHECK(run.rcpts[1].code == 450);
	CHECK_STR(run.rcpts[1].status, "4.2.0");
	CHECK_STR(run.rcpts[1].diagnostic, "450 4.2.0 greylisted");
	CHECK(run.rcpts[2].outcome == SMTP_RCPT_PERMFAIL);
	CHECK(run.rcpts[2].code == 550);
	CHECK_STR(run.rcpts[2].status, "5.1.1");
	CHECK_STR(run.rcpts[2].diagnostic, "550 5.1.1 no such user");
	CHECK(!run.res.try_next_host);
	CHECK(data_is(&pe, MSG_SIMPLE ".\r\n", sizeof(msg_simple) + 2));
	free(rec);
}

static void
test_rcpt_mix_plain(void)
{
	test_rcpt_mix(false);
}

static void
test_rcpt_mix_pipelined(void)
{
	test_rcpt_mix(true);
}

static void
test_all_rcpt_failed(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	/* One at a time: no DATA at all. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{'rcpt': {'a@x.test': '550 5.1.1 no', 'b@x.test': "
	    "'451 4.3.0 later'}}", &p, &run, &pe);
	CHECK(run.rcpts[0].outcome == SMTP_RCPT_PERMFAIL);
	CHECK(run.rcpts[1].outcome == SMTP_RCPT_TEMPFAIL);
	CHECK(rec_batch(rec, "DATA") < 0);
	CHECK(rec_has(rec, ": QUIT\n"));
	CHECK(!rec_has(rec, "\nDATA "));
	free(rec);

	/* Pipelined: DATA went with the batch and is refused. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{'ehlo': ['250-peer.test', '250 PIPELINING'], "
	    "'rcpt': '550 5.1.1 no', 'data': '554 5.5.1 no valid recipients'}",
	    &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 550);
	CHECK(rec_batch(rec, "DATA") > 0);
	CHECK(!rec_has(rec, "\nDATA "));
	CHECK(rec_has(rec, ": QUIT\n"));
	free(rec);

	/* Pipelined, and the server says 354 anyway: a lone dot (RFC 2920
	 * 3.1), and its 250 delivers nothing. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{'ehlo': ['250-peer.test', '250 PIPELINING'], "
	    "'rcpt': '550 5.1.1 no'}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 550);
	CHECK(data_is(&pe, ".\r\n", 3));
	CHECK(rec_has(rec, ": QUIT\n"));
	free(rec);
}

static void
test_mail_refused(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts3, 2);
	rec = session("{'mail': '451 4.3.0 try later'}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 451);
	CHECK_STR(run.rcpts[0].status, "4.3.0");
	CHECK(run.res.try_next_host);
	CHECK(rec_batch(rec, "RCPT") < 0);
	free(rec);

	params_init(&p, 0, rcpts3, 2);
	rec = session("{'mail': '550 5.7.1 sender refused'}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 550);
	CHECK(!run.res.try_next_host);
	CHECK(strstr(run.res.error, "550 5.7.1 sender refused") != NULL);
	free(rec);

	/* Pipelined: the RCPT and DATA replies after a refused MAIL are
	 * not outcomes. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{'ehlo': ['250-peer.test', '250 PIPELINING'], "
	    "'mail': '550 5.7.1 sender refused', 'rcpt': '503 5.5.1 no MAIL',"
	    " 'data': '503 5.5.1 no valid recipients'}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 550);
	CHECK(!rec_has(rec, "\nDATA "));
	free(rec);
}

static void
test_data_refused(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts3, 2);
	rec = session("{'rcpt': {'a@x.test': '550 5.1.1 no', '*': '250 ok'},"
	    " 'data': '451 4.3.1 no space'}", &p, &run, &pe);
	CHECK(run.rcpts[0].outcome == SMTP_RCPT_PERMFAIL);
	CHECK(run.rcpts[1].outcome == SMTP_RCPT_TEMPFAIL);
	CHECK(run.rcpts[1].code == 451);
	CHECK(!rec_has(rec, "\nDATA "));
	free(rec);

	params_init(&p, 0, rcpts3, 2);
	rec = session("{'data': '554 5.6.0 no'}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 554);
	free(rec);
}

static void
test_final_refused(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts3, 2);
	rec = session("{'final': '451 4.3.0 queue full'}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 451);
	CHECK(!run.res.try_next_host);
	CHECK(data_is(&pe, MSG_SIMPLE ".\r\n", sizeof(msg_simple) + 2));
	free(rec);

	params_init(&p, 0, rcpts3, 2);
	rec = session("{'final': ['554-5.7.1 spam', '554 5.7.1 go away']}",
	    &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 554);
	CHECK_STR(run.rcpts[0].status, "5.7.1");
	CHECK_STR(run.rcpts[0].diagnostic, "554 5.7.1 spam go away");
	free(rec);
}

/* CHUNKING (RFC 3030): BDAT instead of DATA when offered */

#define EHLO_CHUNKING "'ehlo': ['250-peer.test', '250-8BITMIME', " \
    "'250 CHUNKING']"
#define EHLO_CHUNKING_PIPE "'ehlo': ['250-peer.test', '250-PIPELINING', " \
    "'250 CHUNKING']"

#define CRLF(in, want) check_split(true, in, sizeof(in) - 1, want, \
    sizeof(want) - 1)

static void
test_crlf(void)
{
	CRLF("", "");
	CRLF("a", "a\r\n");
	CRLF(".", ".\r\n");
	CRLF(".\r\n", ".\r\n");
	CRLF("a\r\n.\r\n", "a\r\n.\r\n");
	CRLF("a\n.\nb", "a\r\n.\r\nb\r\n");
	CRLF("a\r.\rb", "a\r\n.\r\nb\r\n");
	CRLF("\r", "\r\n");
	CRLF("a\r\r\nb", "a\r\n\r\nb\r\n");
	CRLF("\r.\r.\r.", "\r\n.\r\n.\r\n.\r\n");
	check_random(true, 54321, 2000);
}

/* The BDAT commands the peer saw. */
struct bdat_rec {
	int n;			/* BDAT commands */
	int n_last;		/* of which with LAST */
	bool last_is_last;	/* the final one has it */
	size_t max;		/* largest chunk */
	size_t total;		/* all chunks' octets */
};

static void
rec_bdat(const char *rec, struct bdat_rec *b)
{
	const char *p = rec, *nl;
	unsigned long size;
	int batch, used;

	memset(b, 0, sizeof(*b));
	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		if (sscanf(p, "C%d: BDAT %lu%n", &batch, &size, &used) == 2) {
			b->n++;
			b->last_is_last = strncmp(p + used, " LAST\n", 6) == 0;
			if (b->last_is_last)
				b->n_last++;
			if (size > b->max)
				b->max = size;
			b->total += size;
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
}

static void
test_bdat_wire(void)
{
	static const char content[] = WIRE_CONTENT;
	/* Line ends repaired, nothing stuffed, no final dot. */
	static const char want[] = ".\r\n..\r\n.x\r\nx.\r\n\r\n.\r\n"
	    "bare\r\n.\r\nlf\r\n.\r\ncr\r\n. \r\nlast\r\n";
	struct smtp_client_params p;
	struct bdat_rec b;
	struct peer pe;
	struct run run;
	char *rec, cmd[64];
	int pipe, bm;

	for (pipe = 0; pipe < 2; pipe++) {
		params_init(&p, 0, rcpts3, 2);
		p.msg_fd = msg_file(content, sizeof(content) - 1);
		p.msg_size = sizeof(content) - 1;
		rec = session(pipe ? "{" EHLO_CHUNKING_PIPE "}" :
		    "{" EHLO_CHUNKING "}", &p, &run, &pe);
		check_all(&run, 2, SMTP_RCPT_DELIVERED, 250);
		CHECK(strstr(run.rcpts[0].diagnostic, "250 2.0.0 queued") !=
		    NULL);
		CHECK(data_is(&pe, want, sizeof(want) - 1));
		snprintf(cmd, sizeof(cmd), ": BDAT %zu LAST\n",
		    sizeof(want) - 1);
		CHECK(rec_has(rec, cmd));
		rec_bdat(rec, &b);
		CHECK(b.n == 1 && b.n_last == 1);
		CHECK(rec_batch(rec, "DATA") < 0);
		CHECK(!rec_has(rec, "\nDATA "));
		CHECK(rec_has(rec, ": QUIT\n"));
		/* MAIL and RCPT pipelined; BDAT after their replies. */
		bm = rec_batch(rec, "MAIL");
		CHECK(bm > 0);
		CHECK((rec_batch(rec, "RCPT TO:<b@x.test>") == bm) == pipe);
		CHECK(rec_batch(rec, "BDAT") > rec_batch(rec,
		    "RCPT TO:<b@x.test>"));
		close(p.msg_fd);
		free(rec);
	}

	/* From msg_offset on, as from a queue file. */
	params_init(&p, 0, rcpts1, 1);
	p.msg_fd = msg_file("ENVELOPE\n.x\r\n" MSG_SIMPLE "TRAILER",
	    sizeof("ENVELOPE\n.x\r\n" MSG_SIMPLE "TRAILER") - 1);
	p.msg_offset = sizeof("ENVELOPE\n") - 1;
	p.msg_size = sizeof(".x\r\n" MSG_SIMPLE) - 1;
	rec = session("{" EHLO_CHUNKING_PIPE "}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(data_is(&pe, ".x\r\n" MSG_SIMPLE,
	    sizeof(".x\r\n" MSG_SIMPLE) - 1));
	close(p.msg_fd);
	free(rec);

	/* An empty message: "BDAT 0 LAST". */
	params_init(&p, 0, rcpts1, 1);
	p.msg_fd = msg_file("", 0);
	p.msg_size = 0;
	rec = session("{" EHLO_CHUNKING "}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(rec_has(rec, ": BDAT 0 LAST\n"));
	rec_bdat(rec, &b);
	CHECK(b.n == 1);
	CHECK(data_is(&pe, "", 0));
	close(p.msg_fd);
	free(rec);

	/* Not offered: DATA as before. */
	params_init(&p, 0, rcpts1, 1);
	rec = session("{'ehlo': ['250-peer.test', '250 PIPELINING']}", &p,
	    &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(rec_batch(rec, "DATA") > 0);
	CHECK(!rec_has(rec, "BDAT"));
	CHECK(data_is(&pe, MSG_SIMPLE ".\r\n", sizeof(msg_simple) + 2));
	free(rec);
}

static void
test_bdat_big(bool tls)
{
	struct bdat_rec b;
	struct peer pe;
	struct run run;
	char *rec, *want;
	size_t wlen;

	rec = big_session(tls ? 700000 : 1500000, tls, "{'ehlo': "
	    "['250-peer.test', '250-STARTTLS', '250 CHUNKING'], 'ehlo_tls': "
	    "['250-peer.test', '250-PIPELINING', '250 CHUNKING']}", 2,
	    ref_crlf, &run, &pe, &want, &wlen);
	check_all(&run, 2, SMTP_RCPT_DELIVERED, 250);
	CHECK(run.res.tls == tls);
	CHECK(data_is(&pe, want, wlen));
	rec_bdat(rec, &b);
	/* Chunks of at most 64 KiB, exactly one LAST, at the end. */
	CHECK(b.n > (int)(wlen / 65536));
	CHECK(b.n_last == 1 && b.last_is_last);
	CHECK(b.max <= 65536);
	CHECK(b.total == wlen);
	CHECK(!rec_has(rec, "\nDATA "));
	free(want);
	free(rec);
}

/*
 * RFC 3030 4.2: with PIPELINING, 4 chunks go out before their replies;
 * without it, one. A peer that never answers a chunk shows how many the
 * client sent before it waited (then the data_block timeout).
 */
static void
test_bdat_pipelined_window(void)
{
	struct smtp_client_params p;
	struct bdat_rec b;
	struct peer pe;
	struct run run;
	char *rec, *m;
	size_t len;
	int fd, pipe;

	m = big_message(400000, &len);
	fd = msg_file(m, len);
	for (pipe = 0; pipe < 2; pipe++) {
		params_init(&p, 0, rcpts3, 1);
		p.msg_fd = fd;
		p.msg_size = len;
		p.timeouts.data_block = 1;
		rec = session(pipe ? "{" EHLO_CHUNKING_PIPE ", 'bdat': null}" :
		    "{" EHLO_CHUNKING ", 'bdat': null}", &p, &run, &pe);
		check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
		CHECK(run.res.try_next_host);
		CHECK(strstr(run.res.error, "reply to BDAT") != NULL);
		rec_bdat(rec, &b);
		CHECK(b.n == (pipe ? 4 : 1) && b.n_last == 0);
		free(rec);
	}
	close(fd);
	free(m);
}

static void
test_bdat_big_plain(void)
{
	test_bdat_big(false);
}

static void
test_bdat_big_tls(void)
{
	test_bdat_big(true);
}

static void
test_bdat_refused(void)
{
	struct smtp_client_params p;
	struct bdat_rec b;
	struct peer pe;
	struct run run;
	char *rec, *m;
	size_t len;
	int fd;

	/* The reply to LAST decides, as the reply to the final dot. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{" EHLO_CHUNKING ", 'final': '451 4.3.0 queue full'}",
	    &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 451);
	CHECK_STR(run.rcpts[0].status, "4.3.0");
	CHECK(!run.res.try_next_host);
	CHECK(rec_has(rec, ": QUIT\n"));
	free(rec);

	params_init(&p, 0, rcpts3, 2);
	rec = session("{" EHLO_CHUNKING_PIPE ", 'final': ['554-5.7.1 spam', "
	    "'554 5.7.1 go away']}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 554);
	CHECK_STR(run.rcpts[0].status, "5.7.1");
	CHECK_STR(run.rcpts[0].diagnostic, "554 5.7.1 spam go away");
	free(rec);

	/* A refused intermediate chunk ends the transaction. */
	m = big_message(200000, &len);
	fd = msg_file(m, len);
	params_init(&p, 0, rcpts3, 2);
	p.msg_fd = fd;
	p.msg_size = len;
	rec = session("{" EHLO_CHUNKING ", 'bdat': '552 5.3.4 too big'}", &p,
	    &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 552);
	CHECK_STR(run.rcpts[1].status, "5.3.4");
	CHECK(!run.res.try_next_host);
	CHECK(strstr(run.res.error, "552 5.3.4 too big") != NULL);
	rec_bdat(rec, &b);
	CHECK(b.n == 1 && b.n_last == 0);
	CHECK(rec_has(rec, ": QUIT\n"));
	free(rec);

	params_init(&p, 0, rcpts3, 2);
	p.msg_fd = fd;
	p.msg_size = len;
	rec = session("{" EHLO_CHUNKING_PIPE ", 'bdat': '452 4.3.1 full'}",
	    &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 452);
	/* Pipelined: the window went out before the first reply, nothing
	 * after it, and every reply was read before QUIT. */
	rec_bdat(rec, &b);
	CHECK(b.n == 4 && b.n_last == 0);
	CHECK(rec_has(rec, ": QUIT\n"));
	CHECK(run.res.error[0] != '\0' &&
	    strstr(run.res.error, "452 4.3.1 full") != NULL);
	free(rec);

	/* 421 to a chunk: the server is going away. */
	params_init(&p, 0, rcpts3, 2);
	p.msg_fd = fd;
	p.msg_size = len;
	rec = session("{" EHLO_CHUNKING ", 'bdat': '421 4.3.2 bye'}", &p,
	    &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 421);
	free(rec);

	/* A 3xx to a chunk is nonsense: temporary, unknown fate. */
	params_init(&p, 0, rcpts3, 2);
	p.msg_fd = fd;
	p.msg_size = len;
	rec = session("{" EHLO_CHUNKING ", 'bdat': '354 what'}", &p, &run,
	    &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 354);
	rec_bdat(rec, &b);
	CHECK(b.n_last == 0);
	free(rec);
	close(fd);
	free(m);

	/* Some RCPTs refused: the others get the content. */
	params_init(&p, 0, rcpts3, 3);
	rec = session("{" EHLO_CHUNKING_PIPE ", 'rcpt': {'b@x.test': "
	    "'550 5.1.1 no such user'}}", &p, &run, &pe);
	CHECK(run.rcpts[0].outcome == SMTP_RCPT_DELIVERED);
	CHECK(run.rcpts[1].outcome == SMTP_RCPT_PERMFAIL);
	CHECK(run.rcpts[1].code == 550);
	CHECK(run.rcpts[2].outcome == SMTP_RCPT_DELIVERED);
	CHECK(data_is(&pe, MSG_SIMPLE, sizeof(msg_simple) - 1));
	free(rec);

	/* Every RCPT refused, or MAIL: no BDAT at all. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{" EHLO_CHUNKING_PIPE ", 'rcpt': {'a@x.test': "
	    "'550 5.1.1 no', 'b@x.test': '451 4.3.0 later'}}", &p, &run, &pe);
	CHECK(run.rcpts[0].outcome == SMTP_RCPT_PERMFAIL);
	CHECK(run.rcpts[1].outcome == SMTP_RCPT_TEMPFAIL);
	CHECK(!rec_has(rec, "BDAT"));
	CHECK(rec_has(rec, ": QUIT\n"));
	free(rec);

	params_init(&p, 0, rcpts3, 2);
	rec = session("{" EHLO_CHUNKING_PIPE ", 'mail': '550 5.7.1 no', "
	    "'rcpt': '503 5.5.1 no MAIL'}", &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 550);
	CHECK(!rec_has(rec, "BDAT"));
	free(rec);
}

static void
test_bdat_breaks(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, *m;
	size_t len;
	int fd;

	/* Closed after LAST before the reply: unknown fate, temporary. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{" EHLO_CHUNKING ", 'final': {'after': 'close'}}", &p,
	    &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(strstr(run.res.error, "closed") != NULL);
	CHECK(strstr(run.res.error, "BDAT LAST") != NULL);
	CHECK(rec_has(rec, " LAST\n"));
	free(rec);

	/* No reply to a chunk: data_block; none to LAST: data_final. */
	m = big_message(100000, &len);
	fd = msg_file(m, len);
	params_init(&p, 0, rcpts3, 2);
	p.msg_fd = fd;
	p.msg_size = len;
	p.timeouts.data_block = 1;
	rec = session("{" EHLO_CHUNKING ", 'bdat': {'after': 'hang'}}", &p,
	    &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(strstr(run.res.error, "timeout (1 s) waiting for the reply to "
	    "BDAT from") != NULL);
	free(rec);

	params_init(&p, 0, rcpts3, 2);
	p.timeouts.data_final = 1;
	rec = session("{" EHLO_CHUNKING ", 'final': {'after': 'hang'}}", &p,
	    &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(strstr(run.res.error, "timeout (1 s) waiting for the reply to "
	    "BDAT LAST") != NULL);
	free(rec);
	close(fd);
	free(m);

	/* The file is shorter than its size: LAST is never sent. */
	params_init(&p, 0, rcpts3, 1);
	p.msg_fd = msg_file(msg_simple, sizeof(msg_simple) - 1);
	p.msg_size = sizeof(msg_simple) - 1 + 100;
	rec = session("{" EHLO_CHUNKING "}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(!run.res.try_next_host);
	CHECK(strstr(run.res.error, "too short") != NULL);
	CHECK(!rec_has(rec, " LAST\n"));
	close(p.msg_fd);
	free(rec);

	/* A reply nobody asked for after the RCPT replies would pass for
	 * the reply to LAST (security-tests.md 42). */
	params_init(&p, 0, rcpts3, 1);
	rec = session("{" EHLO_CHUNKING_PIPE ", 'rcpt': ['250 2.1.5 ok', "
	    "'250 2.0.0 fake']}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.res.error, "protocol error") != NULL);
	CHECK(!rec_has(rec, "BDAT"));
	free(rec);
}

static void
test_421(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	/* Mid-session, after one recipient was refused for good. */
	params_init(&p, 0, rcpts3, 3);
	rec = session("{'rcpt': {'a@x.test': '550 5.1.1 no', 'b@x.test': "
	    "{'lines': ['421 4.3.2 shutting down'], 'after': 'close'}}}",
	    &p, &run, &pe);
	CHECK(run.rcpts[0].outcome == SMTP_RCPT_PERMFAIL);
	CHECK(run.rcpts[1].outcome == SMTP_RCPT_TEMPFAIL);
	CHECK(run.rcpts[1].code == 421);
	CHECK(run.rcpts[2].outcome == SMTP_RCPT_TEMPFAIL);
	CHECK(!run.res.try_next_host);
	CHECK(strstr(run.res.error, "421 4.3.2 shutting down") != NULL);
	free(rec);

	/* Pipelined, at MAIL: nothing decided, try the next host. */
	params_init(&p, 0, rcpts3, 3);
	rec = session("{'ehlo': ['250-peer.test', '250 PIPELINING'], "
	    "'mail': {'lines': ['421 4.3.2 bye'], 'after': 'close'}}",
	    &p, &run, &pe);
	check_all(&run, 3, SMTP_RCPT_TEMPFAIL, 421);
	CHECK(run.res.try_next_host);
	free(rec);

	/* At the greeting, and after the final dot. */
	params_init(&p, 0, rcpts3, 1);
	rec = session("{'banner': {'lines': ['421 4.3.2 busy'], "
	    "'after': 'close'}}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 421);
	CHECK(run.res.try_next_host);
	free(rec);

	params_init(&p, 0, rcpts3, 1);
	rec = session("{'final': {'lines': ['421 4.3.2 bye'], "
	    "'after': 'close'}}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 421);
	free(rec);
}

static void
test_greeting_refused(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts3, 2);
	rec = session("{'banner': '554 5.3.2 no service here'}", &p, &run,
	    &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 554);
	CHECK_STR(run.rcpts[0].status, "4.0.0");
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.rcpts[0].diagnostic, "554 5.3.2 no service") != NULL);
	CHECK(rec_batch(rec, "EHLO") < 0);
	free(rec);

	params_init(&p, 0, rcpts3, 1);
	rec = session("{'banner': '450 4.3.2 busy'}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 450);
	CHECK(run.res.try_next_host);
	free(rec);
}

static void
test_helo_fallback(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts3, 2);
	p.eightbit = true;
	rec = session("{'ehlo': '500 5.5.1 what', 'helo': '250 old.test'}",
	    &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_DELIVERED, 250);
	CHECK(rec_has(rec, ": HELO client.test\n"));
	/* No extension after HELO: no SIZE, no BODY. */
	CHECK(rec_has(rec, ": MAIL FROM:<from@a.test>\n"));
	free(rec);

	params_init(&p, 0, rcpts3, 1);
	rec = session("{'ehlo': '451 4.3.0 later'}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 451);
	CHECK(run.res.try_next_host);
	CHECK(rec_batch(rec, "HELO") < 0);
	free(rec);

	params_init(&p, 0, rcpts3, 1);
	rec = session("{'ehlo': '500 no', 'helo': '501 no'}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 501);
	CHECK(run.res.try_next_host);
	free(rec);
}

static void
test_null_sender_and_params(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts3, 1);
	p.sender = "";
	p.eightbit = true;
	p.smtputf8 = true;
	rec = session("{'ehlo': ['250-peer.test', '250-8BITMIME', "
	    "'250 SMTPUTF8']}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(rec_has(rec, ": MAIL FROM:<> BODY=8BITMIME SMTPUTF8\n"));
	free(rec);
}

/* TLS */


static void
test_starttls_may(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, script[300];

	snprintf(script, sizeof(script), "{%s}", ehlo_tls);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_MAY;
	p.tls_ctx = ctx_none;
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(run.res.tls && !run.res.verified);
	CHECK(strncmp(run.res.tls_info, "TLSv1.", 6) == 0);
	CHECK(strchr(run.res.tls_info, ' ') != NULL);
	CHECK(rec_has(rec, "\nTLS TLSv1.3 sni=mx.test.example\n"));
	/* EHLO again after TLS, and MAIL only after that. */
	CHECK(rec_batch(rec, "STARTTLS") > rec_batch(rec, "EHLO"));
	CHECK(strstr(strstr(rec, "\nTLS "), ": EHLO client.test") != NULL);
	CHECK(strstr(rec, "MAIL FROM") > strstr(rec, "\nTLS "));
	free(rec);

	/* Not offered: plaintext is fine for MAY. */
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_MAY;
	p.tls_ctx = ctx_none;
	rec = session("{}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(!run.res.tls);
	free(rec);

	/* Offered but refused with a reply: go on in plaintext. */
	snprintf(script, sizeof(script), "{%s, 'starttls': '454 4.7.0 "
	    "TLS not available'}", ehlo_tls);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_MAY;
	p.tls_ctx = ctx_none;
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(!run.res.tls);
	free(rec);

	/* A handshake that fails is a failed connection. */
	snprintf(script, sizeof(script), "{%s, 'starttls': {'lines': "
	    "['220 go'], 'tls': false, 'after': 'close'}}", ehlo_tls);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_MAY;
	p.tls_ctx = ctx_none;
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.res.error, "TLS handshake") != NULL);
	free(rec);
}

static void
test_starttls_verify(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, script[300];

	snprintf(script, sizeof(script), "{%s}", ehlo_tls);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(run.res.tls && run.res.verified);
	free(rec);

	/* MAY with a trusted certificate reports it verified too. */
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_MAY;
	p.tls_ctx = ctx_ca;
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(run.res.tls && run.res.verified);
	free(rec);

	/* The wrong name. */
	params_init(&p, 0, rcpts3, 2);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	p.peer_name = "other.example";
	rec = session(script, &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.res.error, "TLS handshake") != NULL);
	CHECK(strstr(run.res.error, "hostname mismatch") != NULL);
	CHECK_STR(run.rcpts[0].status, "4.7.5");
	CHECK(rec_batch(rec, "MAIL") < 0);
	CHECK(rec_has(rec, "sni=other.example"));
	free(rec);

	/* An untrusted CA. */
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_none;
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.res.error, "certificate") != NULL);
	CHECK(rec_batch(rec, "MAIL") < 0);
	free(rec);

	/* MAY with the wrong name: delivered, but not verified. */
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_MAY;
	p.tls_ctx = ctx_ca;
	p.peer_name = "other.example";
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(run.res.tls && !run.res.verified);
	free(rec);
}

static void
test_tls_required_not_offered(void)
{
	static const enum smtp_tls_policy pol[] = { SMTP_TLS_ENCRYPT,
	    SMTP_TLS_VERIFY };
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;
	size_t i;

	for (i = 0; i < 2; i++) {
		params_init(&p, 0, rcpts3, 2);
		p.tls = pol[i];
		p.tls_ctx = ctx_ca;
		rec = session("{}", &p, &run, &pe);
		check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 0);
		CHECK(run.res.try_next_host && !run.res.tls);
		CHECK(strstr(run.res.error, "STARTTLS") != NULL);
		CHECK_STR(run.rcpts[0].status, "4.7.4");
		CHECK(rec_batch(rec, "MAIL") < 0);
		free(rec);
	}

	/* ENCRYPT with an untrusted certificate is fine. */
	{
		char script[300];

		snprintf(script, sizeof(script), "{%s}", ehlo_tls);
		params_init(&p, 0, rcpts3, 1);
		p.tls = SMTP_TLS_ENCRYPT;
		p.tls_ctx = ctx_none;
		rec = session(script, &p, &run, &pe);
		check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
		CHECK(run.res.tls && !run.res.verified);
		free(rec);
	}
}

static void
test_starttls_injection(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, script[400];

	/*
	 * security-tests.md 42: "220 go\r\n250 x\r\n" in one segment. The
	 * "250 x" must not answer the EHLO sent over TLS.
	 */
	snprintf(script, sizeof(script), "{%s, 'starttls': {'raw': "
	    "'220 go\\r\\n250 x\\r\\n'}, 'ehlo_tls': {'lines': "
	    "['250-peer.test', '250 PIPELINING'], 'delay': 0.2}}", ehlo_tls);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(run.res.tls && run.res.verified);
	CHECK(rec_has(rec, "\nTLS "));
	free(rec);
}

static void
test_implicit_tls(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts3, 1);
	p.implicit_tls = true;
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	rec = session("{'implicit_tls': true}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(run.res.tls && run.res.verified);
	CHECK(rec_has(rec, "CONNECT\nTLS TLSv1.3 sni=mx.test.example\n"));
	free(rec);

	/* Implicit TLS with the wrong name. */
	params_init(&p, 0, rcpts3, 1);
	p.implicit_tls = true;
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	p.peer_name = "wrong.example";
	rec = session("{'implicit_tls': true}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	free(rec);

	/* A plaintext server on an implicit-TLS connection. */
	params_init(&p, 0, rcpts3, 1);
	p.implicit_tls = true;
	p.tls = SMTP_TLS_MAY;
	p.tls_ctx = ctx_none;
	rec = session("{}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host && !run.res.tls);
	free(rec);
}

/* DANE */

static bool
cert_digest(const char *path, bool spki, unsigned char *md, size_t *len_r)
{
	FILE *f = fopen(path, "r");
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	X509 *x;
	int n;

	if (f == NULL)
		return false;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return false;
	n = spki ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) :
	    i2d_X509(x, &der);
	X509_free(x);
	if (n <= 0)
		return false;
	EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	*len_r = mdlen;
	return mdlen == 32;
}

static void
dane_run(struct dns_tlsa *t, size_t n, const char *name, bool want_ok,
    bool want_verified)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, script[300];

	snprintf(script, sizeof(script), "{%s}", ehlo_tls);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_DANE;
	p.tls_ctx = ctx_dane;
	p.tlsa = t;
	p.n_tlsa = n;
	p.peer_name = name;
	rec = session(script, &p, &run, &pe);
	if (want_ok) {
		check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
		CHECK(run.res.tls && run.res.verified == want_verified);
	} else {
		check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
		CHECK(run.res.try_next_host);
		CHECK(rec_batch(rec, "MAIL") < 0);
	}
	free(rec);
}

static void
test_dane(void)
{
	struct dns_tlsa t[3];
	size_t len;

	memset(t, 0, sizeof(t));
	/* DANE-EE(3) SPKI(1) SHA-256(1): names are not checked. */
	t[0].usage = 3;
	t[0].selector = 1;
	t[0].mtype = 1;
	CHECK(cert_digest(leaf_crt, true, t[0].data, &len));
	t[0].data_len = len;
	dane_run(t, 1, "mx.test.example", true, true);
	dane_run(t, 1, "other.example", true, true);

	/* A digest that does not match. */
	t[0].data[0] ^= 0xff;
	dane_run(t, 1, "mx.test.example", false, false);
	t[0].data[0] ^= 0xff;

	/* DANE-TA(2) Cert(0) SHA-256(1) on the CA: names are checked. */
	t[1].usage = 2;
	t[1].selector = 0;
	t[1].mtype = 1;
	CHECK(cert_digest(ca_crt, false, t[1].data, &len));
	t[1].data_len = len;
	dane_run(&t[1], 1, "mx.test.example", true, true);
	dane_run(&t[1], 1, "other.example", false, false);

	/* Only PKIX usages and a malformed record: none usable, so
	 * encrypted but not authenticated (RFC 7672 2.2). */
	t[2] = t[0];
	t[2].usage = 1;
	t[0].data_len = 7;
	{
		struct dns_tlsa u[2] = { t[2], t[0] };

		dane_run(u, 2, "mx.test.example", true, false);
	}
}

/* AUTH */

static void
test_auth(void)
{
	static const char ehlo_auth[] = "'ehlo': ['250-peer.test', "
	    "'250-STARTTLS', '250 AUTH PLAIN LOGIN'], 'ehlo_tls': "
	    "['250-peer.test', '250-PIPELINING', '250 AUTH %s']";
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, script[600], e[200];

	/* PLAIN with the initial response. */
	snprintf(e, sizeof(e), ehlo_auth, "PLAIN LOGIN");
	snprintf(script, sizeof(script), "{%s}", e);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	p.auth_user = "user@a.test";
	p.auth_password = "s3cret";
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(rec_has(rec, ": AUTH PLAIN AHVzZXJAYS50ZXN0AHMzY3JldA==\n"));
	/* Never before TLS. */
	CHECK(strstr(rec, "AUTH") > strstr(rec, "\nTLS "));
	CHECK(strstr(rec, "MAIL") > strstr(rec, "AUTH"));
	free(rec);

	/* LOGIN only. */
	snprintf(e, sizeof(e), ehlo_auth, "LOGIN");
	snprintf(script, sizeof(script), "{%s, 'auth': '334 VXNlcm5hbWU6', "
	    "'auth_cont': ['334 UGFzc3dvcmQ6', '235 2.7.0 ok']}", e);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_ENCRYPT;
	p.tls_ctx = ctx_none;
	p.auth_user = "user@a.test";
	p.auth_password = "s3cret";
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(rec_has(rec, ": AUTH LOGIN\nC"));
	CHECK(rec_has(rec, ": dXNlckBhLnRlc3Q=\nC"));
	CHECK(rec_has(rec, ": czNjcmV0\nC"));
	free(rec);

	/* 535: deferred with the reply, not bounced. */
	snprintf(e, sizeof(e), ehlo_auth, "PLAIN");
	snprintf(script, sizeof(script), "{%s, 'auth': "
	    "'535 5.7.8 bad credentials'}", e);
	params_init(&p, 0, rcpts3, 2);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	p.auth_user = "user@a.test";
	p.auth_password = "wrong";
	rec = session(script, &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 535);
	CHECK_STR(run.rcpts[0].status, "4.7.8");
	CHECK_STR(run.rcpts[0].diagnostic, "535 5.7.8 bad credentials");
	CHECK(!run.res.try_next_host);
	CHECK(strstr(run.res.error, "AUTH PLAIN") != NULL);
	CHECK(rec_batch(rec, "MAIL") < 0);
	CHECK(rec_has(rec, ": QUIT\n"));
	free(rec);

	/* 454: a session failure, the next host may do. */
	snprintf(script, sizeof(script), "{%s, 'auth': "
	    "'454 4.7.0 temporary failure'}", e);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	p.auth_user = "user@a.test";
	p.auth_password = "s3cret";
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 454);
	CHECK(run.res.try_next_host);
	free(rec);

	/* Required but not offered. */
	snprintf(script, sizeof(script), "{%s}", ehlo_tls);
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	p.auth_user = "user@a.test";
	p.auth_password = "s3cret";
	rec = session(script, &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.res.error, "AUTH") != NULL);
	CHECK(rec_batch(rec, "AUTH") < 0 && rec_batch(rec, "MAIL") < 0);
	free(rec);

	/* Offered, but only in plaintext: the password is never sent. */
	params_init(&p, 0, rcpts3, 1);
	p.tls = SMTP_TLS_NONE;
	p.tls_ctx = ctx_ca;
	p.auth_user = "user@a.test";
	p.auth_password = "s3cret";
	rec = session("{'ehlo': ['250-peer.test', '250 AUTH PLAIN LOGIN']}",
	    &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.res.error, "not encrypted") != NULL);
	CHECK(rec_batch(rec, "AUTH") < 0);
	free(rec);
}

/* Message checks before MAIL */

static void
test_smtputf8_and_size(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, script[300];
	size_t sz = sizeof(msg_simple) - 1;

	params_init(&p, 0, rcpts3, 2);
	p.smtputf8 = true;
	rec = session("{'ehlo': ['250-peer.test', '250 8BITMIME']}", &p,
	    &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 0);
	CHECK_STR(run.rcpts[0].status, "5.6.7");
	CHECK(!run.res.try_next_host);
	CHECK(rec_batch(rec, "MAIL") < 0);
	CHECK(rec_has(rec, ": QUIT\n"));
	free(rec);

	/* One byte over the limit, at it, and no limit given. */
	snprintf(script, sizeof(script), "{'ehlo': ['250-peer.test', "
	    "'250 SIZE %zu']}", sz - 1);
	params_init(&p, 0, rcpts3, 2);
	rec = session(script, &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_PERMFAIL, 0);
	CHECK_STR(run.rcpts[1].status, "5.3.4");
	CHECK(rec_batch(rec, "MAIL") < 0);
	free(rec);

	snprintf(script, sizeof(script), "{'ehlo': ['250-peer.test', "
	    "'250 SIZE %zu']}", sz);
	params_init(&p, 0, rcpts3, 2);
	rec = session(script, &p, &run, &pe);
	check_all(&run, 2, SMTP_RCPT_DELIVERED, 250);
	free(rec);

	params_init(&p, 0, rcpts3, 1);
	rec = session("{'ehlo': ['250-peer.test', '250 SIZE']}", &p, &run,
	    &pe);
	check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	CHECK(rec_has(rec, " SIZE="));
	free(rec);
}

/* Hostile replies (security-tests.md 42) */

static void
hostile(const char *script, bool want_timeout)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;
	size_t i;

	params_init(&p, 0, rcpts3, 2);
	p.timeouts.banner = p.timeouts.command = 1;
	memset(&run, 0, sizeof(run));
	rec = session(script, &p, &run, &pe);
	CHECK(run.res.n_rcpts == 2);
	for (i = 0; i < 2; i++) {
		CHECK(run.rcpts[i].outcome == SMTP_RCPT_TEMPFAIL);
		CHECK(strchr(run.rcpts[i].diagnostic, '\n') == NULL);
	}
	CHECK(run.res.error[0] != '\0');
	CHECK(run.res.try_next_host);
	for (i = 0; run.res.error[i] != '\0'; i++)
		CHECK(run.res.error[i] >= 0x20 && run.res.error[i] < 0x7f);
	CHECK((strstr(run.res.error, "timeout") != NULL) == want_timeout);
	CHECK(!rec_has(rec, "\nDATA "));
	free(rec);
}

static void
test_hostile(void)
{
	char script[200];

	/* A 10 MB line. */
	hostile("{'ehlo': {'parts': [['250 ', 1], ['x', 10000000], "
	    "['\\r\\n', 1]]}}", false);
	/* A 1000-line reply. */
	hostile("{'ehlo': {'parts': [['250-x\\r\\n', 1000], "
	    "['250 end\\r\\n', 1]]}}", false);
	/* NUL bytes. */
	hostile("{'mail': {'raw': '250 o\\u0000k\\r\\n'}}", false);
	/* The code changes within a reply. */
	hostile("{'ehlo': {'raw': '250-peer\\r\\n251 x\\r\\n'}}", false);
	hostile("{'ehlo': {'raw': '250-peer\\r\\n550 x\\r\\n'}}", false);
	/* No CR LF ever: too long, or nothing more (a timeout). */
	hostile("{'banner': {'parts': [['2', 100000]], 'after': 'hang'}}",
	    false);
	hostile("{'banner': {'raw': '220 hello', 'after': 'hang'}}", true);
	/* A bare LF with lines to smuggle (CVE-2020-8794). */
	hostile("{'rcpt': {'raw': '550 5.1.1 x\\ntype: mda\\nmda-exec: id"
	    "\\r\\n'}}", false);
	/* A bare CR inside a line. */
	hostile("{'mail': {'raw': '250 ok\\rfake\\r\\n'}}", false);
	/* No code, a bad code, no separator. */
	hostile("{'banner': 'hello'}", false);
	hostile("{'banner': '999 what'}", false);
	hostile("{'banner': '220hello'}", false);
	/* A reply nobody asked for before the greeting is read is just
	 * the greeting; one during the content is not. */
	hostile("{'data': ['354 go', '250 2.0.0 fake']}", false);
	/* 354 to MAIL. */
	hostile("{'mail': '354 what'}", false);
	/* Exactly at the line limit is fine, one over is not. */
	snprintf(script, sizeof(script), "{'ehlo': {'parts': [['250 ', 1],"
	    " ['x', %d], ['\\r\\n', 1]]}}", SMTP_REPLY_LINE_MAX - 3);
	hostile(script, false);
	{
		struct smtp_client_params p;
		struct peer pe;
		struct run run;
		char *rec;

		snprintf(script, sizeof(script), "{'final': {'parts': "
		    "[['250 ', 1], ['x', %d], ['\\r\\n', 1]]}}",
		    SMTP_REPLY_LINE_MAX - 4);
		params_init(&p, 0, rcpts3, 1);
		rec = session(script, &p, &run, &pe);
		check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
		free(rec);

		/* "553-a" then a 3-character last line: valid, and the
		 * diagnostic is one sanitised line. */
		params_init(&p, 0, rcpts3, 2);
		rec = session("{'rcpt': {'a@x.test': {'raw': "
		    "'553-a\\r\\n553\\r\\n'}, 'b@x.test': {'raw': "
		    "'550-5.1.1 caf\\u00e9\\r\\n550 5.1.1 \\u0007bell"
		    "\\r\\n'}}}",
		    &p, &run, &pe);
		CHECK(run.rcpts[0].outcome == SMTP_RCPT_PERMFAIL);
		CHECK(run.rcpts[0].code == 553);
		CHECK_STR(run.rcpts[0].status, "5.0.0");
		CHECK(strncmp(run.rcpts[0].diagnostic, "553", 3) == 0);
		CHECK(run.rcpts[1].outcome == SMTP_RCPT_PERMFAIL);
		CHECK(strchr(run.rcpts[1].diagnostic, '\a') == NULL);
		CHECK(strchr(run.rcpts[1].diagnostic, '\xe9') == NULL);
		free(rec);
	}
}

/* Broken connections and local failures */

static void
test_connection_breaks(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec, *m;
	int fd;

	/* Closed after RCPT without a word. */
	params_init(&p, 0, rcpts3, 2);
	rec = session("{'rcpt': {'b@x.test': {'after': 'close'}}}", &p, &run,
	    &pe);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.res.error, "closed") != NULL);
	free(rec);

	/* Closed after the final dot: unknown fate, temporary. */
	params_init(&p, 0, rcpts3, 1);
	rec = session("{'final': {'after': 'close'}}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	free(rec);

	/* Connection refused: a port nobody listens on. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sin);

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
		CHECK(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
		params_init(&p, ntohs(sin.sin_port), rcpts3, 2);
	}
	close(fd);
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = -1;
	client_run(&p, &run);
	CHECK(run.calls == 1);
	check_all(&run, 2, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK_STR(run.rcpts[0].status, "4.4.1");
	CHECK(strstr(run.res.error, "refused") != NULL);

	/* The message file is shorter than its size: no final dot. */
	m = xstrdup(msg_simple);
	params_init(&p, 0, rcpts3, 1);
	p.msg_fd = msg_file(m, strlen(m));
	p.msg_size = strlen(m) + 100;
	rec = session("{}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(!run.res.try_next_host);
	CHECK(strstr(run.res.error, "too short") != NULL);
	CHECK(!rec_has(rec, "\nDATA "));
	CHECK(rec_has(rec, "\nEOF\n"));
	close(p.msg_fd);
	free(m);
	free(rec);

	/* An unreadable descriptor. */
	params_init(&p, 0, rcpts3, 1);
	p.msg_fd = 1000;
	rec = session("{}", &p, &run, &pe);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(strstr(run.res.error, "Bad file descriptor") != NULL);
	free(rec);
}

static void
test_local_checks(void)
{
	static const char *const bad[] = { "ok@x.test",
	    "bad@x.test>\r\nRCPT TO:<evil@x.test", "" };
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, bad, 3);
	rec = session("{}", &p, &run, &pe);
	CHECK(run.rcpts[0].outcome == SMTP_RCPT_DELIVERED);
	CHECK(run.rcpts[1].outcome == SMTP_RCPT_PERMFAIL);
	CHECK_STR(run.rcpts[1].status, "5.1.3");
	CHECK(run.rcpts[2].outcome == SMTP_RCPT_PERMFAIL);
	CHECK(!rec_has(rec, "evil"));
	free(rec);

	/* A bad sender: nothing is sent, no connection is made. */
	params_init(&p, 1, bad, 1);
	p.sender = "x\r\n@a.test";
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = -1;
	client_run(&p, &run);
	CHECK(run.calls == 1);
	check_all(&run, 1, SMTP_RCPT_PERMFAIL, 0);
	CHECK_STR(run.rcpts[0].status, "5.1.7");

	/* No recipient at all. */
	params_init(&p, 1, bad, 0);
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = -1;
	client_run(&p, &run);
	CHECK(run.calls == 1 && run.res.n_rcpts == 0);
	CHECK(run.res.error[0] != '\0');

	/* VERIFY without a context or a name. */
	params_init(&p, 1, bad, 1);
	p.tls = SMTP_TLS_VERIFY;
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = -1;
	client_run(&p, &run);
	CHECK(run.calls == 1);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(!run.res.try_next_host);
	params_init(&p, 1, bad, 1);
	p.tls = SMTP_TLS_VERIFY;
	p.tls_ctx = ctx_ca;
	p.peer_name = NULL;
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = -1;
	client_run(&p, &run);
	CHECK(run.calls == 1);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
}

/* Timeouts */

static void
timeout_case(const char *script, const char *what, void (*tweak)(
    struct smtp_client_params *), bool want_delivered)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	params_init(&p, 0, rcpts3, 1);
	p.timeouts.connect = p.timeouts.banner = p.timeouts.command = 1;
	p.timeouts.data_init = p.timeouts.data_block = 1;
	p.timeouts.data_final = 1;
	if (tweak != NULL)
		tweak(&p);
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = -1;
	if (!peer_start(&pe, script)) {
		CHECK(!"peer started");
		return;
	}
	peer_sin.sin_port = htons((uint16_t)pe.port);
	client_run(&p, &run);
	CHECK(run.calls == 1);
	rec = peer_finish(&pe, 0);
	if (want_delivered) {
		check_all(&run, 1, SMTP_RCPT_DELIVERED, 250);
	} else {
		check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
		CHECK(run.res.try_next_host);
		CHECK(strstr(run.res.error, "timeout (1 s)") != NULL);
		CHECK(strstr(run.res.error, what) != NULL);
		CHECK_STR(run.rcpts[0].status, "4.4.2");
	}
	if (strstr(run.res.error, what) == NULL || run.ms < 950 ||
	    run.ms >= 4000)
		fprintf(stderr, "  %s: %llu ms, error: %s\n", what,
		    (unsigned long long)run.ms, run.res.error);
	CHECK(run.ms >= 950 && run.ms < 4000);
	if (p.msg_fd != msg_fd_simple)
		close(p.msg_fd);
	free(rec);
}

/*
 * A 1 GiB sparse message for a peer that stops reading: the session can
 * only end within the timeout if the client streams it in bounded blocks
 * (reading it all would take far longer, and ASan would run out).
 */
static void
tweak_huge(struct smtp_client_params *p)
{
	char path[PATH_MAX];

	path_join(path, sizeof(path), "%s/huge", tmpdir);
	p->msg_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(p->msg_fd >= 0 && ftruncate(p->msg_fd, 1 << 30) == 0);
	unlink(path);
	p->msg_size = 1 << 30;
}

static void
tweak_huge_tls(struct smtp_client_params *p)
{
	tweak_huge(p);
	p->tls = SMTP_TLS_ENCRYPT;
	p->tls_ctx = ctx_none;
}

static void
tweak_starttls(struct smtp_client_params *p)
{
	p->tls = SMTP_TLS_ENCRYPT;
	p->tls_ctx = ctx_none;
}

static void
test_timeouts(void)
{
	struct smtp_client_params p;
	struct run run;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int ls, filler;
	char script[300];

	timeout_case("{'banner': null}", "greeting", NULL, false);
	timeout_case("{'ehlo': null}", "EHLO", NULL, false);
	timeout_case("{'mail': null}", "MAIL", NULL, false);
	timeout_case("{'rcpt': null}", "RCPT", NULL, false);
	timeout_case("{'data': null}", "DATA", NULL, false);
	timeout_case("{'final': null}", "final dot", NULL, false);
	/* A slow drip does not stretch a timeout: it counts from the
	 * command. */
	timeout_case("{'ehlo': {'raw': '250-peer\\r\\n250-X\\r\\n250-Y\\r\\n"
	    "250 Z\\r\\n', 'chunk': 1, 'pace': 0.05}}", "EHLO", NULL, false);
	/* The peer stops reading the content. */
	timeout_case("{'rcvbuf': 4096, 'data': {'lines': ['354 go'], "
	    "'after': 'stall'}}", "content", tweak_huge, false);
	snprintf(script, sizeof(script), "{%s, 'rcvbuf': 4096, 'data': "
	    "{'lines': ['354 go'], 'after': 'stall'}}", ehlo_tls);
	timeout_case(script, "content", tweak_huge_tls, false);
	/* A handshake that never ends. */
	snprintf(script, sizeof(script), "{%s, 'starttls': {'lines': "
	    "['220 go'], 'tls': false, 'after': 'hang'}}", ehlo_tls);
	timeout_case(script, "TLS handshake", tweak_starttls, false);
	/* No answer to QUIT: the outcome stands. */
	timeout_case("{'quit': {'after': 'hang'}}", "", NULL, true);

	/* Connect: a listener whose backlog is full drops our SYN. */
	ls = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(ls, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(listen(ls, 0) == 0);
	CHECK(getsockname(ls, (struct sockaddr *)&sin, &sl) == 0);
	filler = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(filler, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	usleep(50000);
	params_init(&p, ntohs(sin.sin_port), rcpts3, 1);
	p.timeouts.connect = 1;
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = -1;
	client_run(&p, &run);
	CHECK(run.calls == 1);
	check_all(&run, 1, SMTP_RCPT_TEMPFAIL, 0);
	CHECK(run.res.try_next_host);
	CHECK(strstr(run.res.error, "timeout (1 s) connecting") != NULL);
	CHECK(run.ms >= 950 && run.ms < 4000);
	close(filler);
	close(ls);
}

/* Cancel */

static void
test_cancel(void)
{
	struct smtp_client_params p;
	struct peer pe;
	struct run run;
	char *rec;

	/* At once: no callback, even for a session that failed in start. */
	CHECK(peer_start(&pe, "{}"));
	params_init(&p, pe.port, rcpts3, 1);
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = 0;
	client_run(&p, &run);
	CHECK(run.calls == 0);
	rec = peer_finish(&pe, 0);
	CHECK(!rec_has(rec, "MAIL"));
	free(rec);

	params_init(&p, 1, rcpts3, 1);
	p.sender = "bad\r\n";
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = 0;
	client_run(&p, &run);
	CHECK(run.calls == 0);

	/* During the session: the peer sees the connection go. */
	CHECK(peer_start(&pe, "{'ehlo': {'lines': ['250 peer'], "
	    "'delay': 0.5}}"));
	params_init(&p, pe.port, rcpts3, 1);
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = 200;
	client_run(&p, &run);
	CHECK(run.calls == 0);
	rec = peer_finish(&pe, 3000);
	CHECK(rec_has(rec, ": EHLO client.test\n"));
	CHECK(!rec_has(rec, "MAIL"));
	free(rec);

	/* During the content. */
	CHECK(peer_start(&pe, "{'rcvbuf': 4096, 'data': {'lines': "
	    "['354 go'], 'after': 'stall'}}"));
	params_init(&p, pe.port, rcpts3, 1);
	tweak_huge(&p);
	memset(&run, 0, sizeof(run));
	run.cancel_after_ms = 300;
	client_run(&p, &run);
	CHECK(run.calls == 0);
	rec = peer_finish(&pe, 0);
	CHECK(rec_has(rec, "STALL"));
	close(p.msg_fd);
	free(rec);
}

int
main(void)
{
	UNIT_RUN(test_dotstuff);
	UNIT_RUN(test_crlf);

	if (!harness_setup("test_smtp_client")) {
		unit_tests_failed++;
		return unit_finish();
	}

	UNIT_RUN(test_plain_no_pipelining);
	UNIT_RUN(test_plain_pipelining);
	UNIT_RUN(test_byte_by_byte_replies);
	UNIT_RUN(test_dotstuff_wire);
	UNIT_RUN(test_big_plain);
	UNIT_RUN(test_big_tls);
	UNIT_RUN(test_rcpt_mix_plain);
	UNIT_RUN(test_rcpt_mix_pipelined);
	UNIT_RUN(test_all_rcpt_failed);
	UNIT_RUN(test_mail_refused);
	UNIT_RUN(test_data_refused);
	UNIT_RUN(test_final_refused);
	UNIT_RUN(test_bdat_wire);
	UNIT_RUN(test_bdat_big_plain);
	UNIT_RUN(test_bdat_big_tls);
	UNIT_RUN(test_bdat_refused);
	UNIT_RUN(test_bdat_pipelined_window);
	UNIT_RUN(test_bdat_breaks);
	UNIT_RUN(test_421);
	UNIT_RUN(test_greeting_refused);
	UNIT_RUN(test_helo_fallback);
	UNIT_RUN(test_null_sender_and_params);
	UNIT_RUN(test_starttls_may);
	UNIT_RUN(test_starttls_verify);
	UNIT_RUN(test_tls_required_not_offered);
	UNIT_RUN(test_starttls_injection);
	UNIT_RUN(test_implicit_tls);
	UNIT_RUN(test_dane);
	UNIT_RUN(test_auth);
	UNIT_RUN(test_smtputf8_and_size);
	UNIT_RUN(test_hostile);
	UNIT_RUN(test_connection_breaks);
	UNIT_RUN(test_local_checks);
	UNIT_RUN(test_timeouts);
	UNIT_RUN(test_cancel);

	harness_teardown();
	return unit_finish();
}
