/*
 * libFuzzer target for queue envelopes (queue_envelope.h): arbitrary text
 * that parses must format canonically and parse back to the same thing;
 * envelopes built from arbitrary bytes must survive format -> parse with
 * their structure intact (security-tests.md 8); xtext must round-trip.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "queue/queue_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PIECES_MAX 64

static bool
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* remote and diagnostic: "" is written as none (queue_envelope.h). */
static bool
opt_equal(const char *a, const char *b)
{
	if (a == NULL || a[0] == '\0')
		return b == NULL || b[0] == '\0';
	return b != NULL && strcmp(a, b) == 0;
}

static bool
env_equal(const struct queue_envelope *a, const struct queue_envelope *b)
{
	size_t i;

	if (strcmp(a->queue_id, b->queue_id) != 0 ||
	    a->created != b->created || !str_equal(a->sender, b->sender) ||
	    a->smtputf8 != b->smtputf8 || a->body != b->body ||
	    a->attempts != b->attempts ||
	    a->next_attempt != b->next_attempt || a->warned != b->warned ||
	    !str_equal(a->auth, b->auth) || a->n_rcpts != b->n_rcpts)
		return false;
	for (i = 0; i < a->n_rcpts; i++) {
		const struct queue_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];

		if (!str_equal(x->address, y->address) ||
		    x->state != y->state || x->time != y->time ||
		    !opt_equal(x->remote, y->remote) ||
		    strcmp(x->status, y->status) != 0 ||
		    !opt_equal(x->diagnostic, y->diagnostic))
			return false;
	}
	return true;
}

/* The lines a formatted envelope must have: nothing a value holds adds
 * one, and each starts with the key it should. */
static void
check_structure(const struct queue_envelope *env, const char *t, size_t len)
{
	size_t i, lines = 0, want = 9 + (env->auth != NULL) + env->n_rcpts;
	const char *line = t;

	for (i = 0; i < len; i++) {
		if ((unsigned char)t[i] < 32 && t[i] != '\n')
			abort();
		if (t[i] != '\n')
			continue;
		lines++;
		if (lines > 9 + (env->auth != NULL) &&
		    strncmp(line, "recipient ", 10) != 0)
			abort();
		line = t + i + 1;
	}
	if (lines != want || len == 0 || t[len - 1] != '\n')
		abort();
}

/* format -> parse -> equal -> format again, byte for byte. */
static void
check_round_trip(const struct queue_envelope *env)
{
	struct queue_envelope back;
	char err[256], *t1, *t2;
	size_t l1, l2;

	if ((t1 = queue_envelope_format(env, &l1)) == NULL)
		abort();
	check_structure(env, t1, l1);
	if (queue_envelope_parse(t1, l1, 0, &back, err, sizeof(err)) != 0) {
		fprintf(stderr, "formatted text refused: %s\n%.*s", err,
		    (int)l1, t1);
		abort();
	}
	if (!env_equal(env, &back))
		abort();
	if ((t2 = queue_envelope_format(&back, &l2)) == NULL || l1 != l2 ||
	    memcmp(t1, t2, l1) != 0)
		abort();
	free(t1);
	free(t2);
	queue_envelope_free(&back);
}

static void
fuzz_parse(const uint8_t *data, size_t size)
{
	struct queue_envelope env;
	char err[256], *end;
	unsigned long line;

	if (queue_envelope_parse((const char *)data, size, 1795820000, &env,
	    err, sizeof(err)) == 0) {
		if (env.n_rcpts == 0 || env.n_rcpts > QUEUE_RECIPIENTS_MAX)
			abort();
		check_round_trip(&env);
	} else {
		/* "LINE: what", LINE within the text (or just after). */
		line = strtoul(err, &end, 10);
		if (end == err || end[0] != ':' || end[1] != ' ' ||
		    line == 0 || line > size + 1)
			abort();
	}
	queue_envelope_free(&env);
}

static void
fuzz_xtext(const uint8_t *data, size_t size)
{
	char *enc, *dec, *again;
	size_t i, n;
	ssize_t r;

	enc = queue_xtext_encode((const char *)data, size);
	n = strlen(enc);
	for (i = 0; i < n; i++)
		if (enc[i] < 33 || enc[i] > 126 || enc[i] == '=')
			abort();
	dec = xmalloc(size + 1);
	r = queue_xtext_decode(enc, n, dec, size);
	if (r < 0 || (size_t)r != size || memcmp(dec, data, size) != 0)
		abort();
	if (size > 0 && queue_xtext_decode(enc, n, dec, size - 1) != -1)
		abort();
	free(enc);
	/* Raw input that decodes: never longer, and it re-encodes to text
	 * that decodes to the same bytes. */
	r = queue_xtext_decode((const char *)data, size, dec, size);
	if (r >= 0) {
		enc = queue_xtext_encode(dec, (size_t)r);
		again = xmalloc((size_t)r + 1);
		if (queue_xtext_decode(enc, strlen(enc), again,
		    (size_t)r) != r || memcmp(again, dec, (size_t)r) != 0)
			abort();
		free(again);
		free(enc);
	}
	free(dec);
}

static uint64_t
take_u64(const uint8_t *p)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * An envelope from bytes: 24 bytes of numbers and flags, then values
 * separated by NUL (a C string cannot hold one): sender, [auth], then per
 * recipient address, remote, diagnostic.
 */
static void
fuzz_build(const uint8_t *data, size_t size)
{
	static const char *const statuses[] = { "", "2.0.0", "4.4.1",
	    "5.1.1", "5.999.999", "4.7.0" };
	struct queue_envelope env;
	struct queue_rcpt rcpts[FUZZ_PIECES_MAX];
	char *pieces[FUZZ_PIECES_MAX * 3 + 2];
	size_t n = 0, i, k, start, len;
	bool ok = true, pending;
	char *t;
	uint8_t f;

	if (size < 24)
		return;
	memset(&env, 0, sizeof(env));
	f = data[0];
	memcpy(env.queue_id, "0123456789ABCDEF", sizeof(env.queue_id));
	env.smtputf8 = f & 1;
	env.warned = f & 2;
	env.body = (enum queue_body)((f >> 2) % 3);
	env.attempts = (unsigned)take_u64(data + 1);
	env.created = take_u64(data + 8);
	env.next_attempt = take_u64(data + 16) ^ data[0];
	for (start = 24; start <= size && n < sizeof(pieces) /
	    sizeof(pieces[0]); start += len + 1) {
		const uint8_t *z = memchr(data + start, 0, size - start);

		len = (z != NULL ? (size_t)(z - data) : size) - start;
		pieces[n] = xmalloc(len + 1);
		memcpy(pieces[n], data + start, len);
		pieces[n][len] = '\0';
		n++;
	}
	k = 0;
	env.sender = pieces[k++];
	if (strlen(env.sender) > QUEUE_ADDRESS_MAX)
		ok = false;
	if ((f & 0x20) && k < n) {
		env.auth = pieces[k++];
		if (strlen(env.auth) > QUEUE_ADDRESS_MAX)
			ok = false;
	}
	memset(rcpts, 0, sizeof(rcpts));
	for (; k < n && env.n_rcpts < FUZZ_PIECES_MAX; env.n_rcpts++) {
		struct queue_rcpt *r = &rcpts[env.n_rcpts];
		uint8_t s = data[(env.n_rcpts + 3) % 24];

		r->address = pieces[k++];
		r->state = (enum queue_rcpt_state)(s % 3);
		r->time = (s & 0x80) ? take_u64(data + 8) >> (s & 31) : 0;
		snprintf(r->status, sizeof(r->status), "%s",
		    statuses[(s >> 2) % 6]);
		if (k < n && (s & 0x40))
			r->remote = pieces[k++];
		if (k < n && (s & 0x20))
			r->diagnostic = pieces[k++];
		if (r->address[0] == '\0' ||
		    strlen(r->address) > QUEUE_ADDRESS_MAX ||
		    (r->remote != NULL &&
		    strlen(r->remote) > QUEUE_ADDRESS_MAX) ||
		    (r->diagnostic != NULL &&
		    strlen(r->diagnostic) > QUEUE_DIAGNOSTIC_MAX))
			ok = false;
	}
	env.rcpts = rcpts;
	if (env.n_rcpts == 0)
		ok = false;
	/* format refuses exactly what parse would refuse. */
	if (ok)
		check_round_trip(&env);
	else if ((t = queue_envelope_format(&env, &len)) != NULL)
		abort();
	for (i = 0, pending = false; i < env.n_rcpts; i++)
		pending |= rcpts[i].state == QUEUE_RCPT_PENDING;
	if (queue_envelope_done(&env) == pending)
		abort();
	for (i = 0; i < n; i++)
		free(pieces[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parse(data, size);
	fuzz_xtext(data, size);
	fuzz_build(data, size);
	return 0;
}
