/*
 * libFuzzer target for the request lines of the queue's control socket
 * (`tegami queue`, docs/queue.md) and pickup socket (`tegami sendmail`,
 * RFC 3461 4 xtext addresses), queue_request.h. The first input byte
 * picks the parser and a size limit; each result is compared with a
 * model of the contract: an accepted line is exactly its canonical form,
 * an accepted address formats, encodes and parses back to itself, and
 * every refusal is one of the documented reply lines.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_envelope.h"
#include "queue/queue_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BAD_ID "error bad queue id (16 upper-case hex digits)"
#define UNKNOWN "error unknown command (flush [ID], delete ID, bounce ID)"
#define BAD_LINE "error request line too long or with a NUL byte"
#define ENCODING "perm 5.1.3 bad address encoding or length"
#define SYNTAX "perm 5.1.3 bad address syntax"
#define BAD_SIZE "perm 5.5.4 bad size"
#define TOO_BIG "perm 5.3.4 message size exceeds message_size_limit"

static const uint64_t limits[] = {
	0, 1, 10485760, UINT64_C(9999999999999999998), UINT64_MAX,
};

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static bool
same(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* ---- The control socket ------------------------------------------------ */

static const char *const control_names[] = { "flush", "delete", "bounce" };

static bool
hex16(const char *s, size_t len)
{
	size_t i;

	if (len != 16)
		return false;
	for (i = 0; i < 16; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static void
fuzz_control(const char *line, size_t len)
{
	struct queue_request_control req;
	enum queue_request_result rc;
	char reply[256], canon[64], small[12];
	const char *sp, *want;
	size_t vlen, i;
	int n, cmd = -1;

	memset(reply, 'X', sizeof(reply));
	rc = queue_request_control_parse(line, len, &req, reply,
	    sizeof(reply));
	/* the model */
	sp = memchr(line, ' ', len);
	vlen = sp != NULL ? (size_t)(sp - line) : len;
	for (i = 0; i < 3; i++)
		if (strlen(control_names[i]) == vlen &&
		    memcmp(control_names[i], line, vlen) == 0)
			cmd = (int)i;
	if (len >= QUEUE_REQUEST_CONTROL_LINE_MAX ||
	    memchr(line, '\0', len) != NULL)
		want = BAD_LINE;
	else if (cmd < 0)
		want = UNKNOWN;
	else if (sp == NULL)
		want = cmd == 0 ? NULL : cmd == 1 ?
		    "error delete needs a queue id" :
		    "error bounce needs a queue id";
	else
		want = hex16(sp + 1, len - vlen - 1) ? NULL : BAD_ID;
	check(rc == (want == NULL ? QUEUE_REQUEST_OK : same(want, BAD_LINE) ?
	    QUEUE_REQUEST_BAD_LINE : QUEUE_REQUEST_REFUSED));
	if (want != NULL) {
		check(strcmp(reply, want) == 0);
		/* cut to a small reply buffer, still terminated */
		check(queue_request_control_parse(line, len, &req, small,
		    sizeof(small)) == rc);
		check(strlen(small) == sizeof(small) - 1 &&
		    strncmp(small, want, sizeof(small) - 1) == 0);
		return;
	}
	/* accepted: the line is exactly its canonical form */
	check(reply[0] == 'X');
	check((int)req.cmd == cmd && strcmp(req.name, control_names[cmd]) == 0);
	check(req.id[0] == '\0' || hex16(req.id, strlen(req.id)));
	n = snprintf(canon, sizeof(canon), "%s%s%s", req.name,
	    req.id[0] != '\0' ? " " : "", req.id);
	check(n > 0 && (size_t)n == len && memcmp(canon, line, len) == 0);
	check(req.cmd == QUEUE_REQUEST_FLUSH || req.id[0] != '\0');
}

/* ---- The pickup socket ------------------------------------------------- */

/* An accepted address: within bounds, printable, and a fixed point of
 * xtext encoding and parsing. */
static void
check_address(const struct smtp_address *a, const char *formatted)
{
	struct smtp_address b;
	char again[QUEUE_ADDRESS_MAX + 1], *x;
	size_t len = strlen(formatted), i;

	check(len >= 3 && len <= SMTP_PATH_MAX - 2);
	check(!a->is_null && a->domain[0] != '\0');
	check(strchr(formatted, '@') != NULL);
	/* RFC 5321 4.1.2: no control character, even quoted */
	for (i = 0; i < len; i++)
		check((unsigned char)formatted[i] >= 0x20 &&
		    formatted[i] != 0x7f);
	x = queue_xtext_encode(formatted, len);
	check(queue_request_pickup_address(x, strlen(x), &b, again,
	    sizeof(again)) == NULL);
	check(strcmp(again, formatted) == 0);
	check(strcmp(a->local, b.local) == 0 &&
	    strcmp(a->domain, b.domain) == 0 && a->utf8 == b.utf8);
	free(x);
}

/* The address check, and the contract's claims on the buffer size. */
static const char *
fuzz_address(const char *arg, size_t len)
{
	struct smtp_address a, big_a;
	char out[QUEUE_ADDRESS_MAX + 1], big[4096], dec[4096];
	const char *err, *big_err;
	ssize_t n;

	err = queue_request_pickup_address(arg, len, &a, out, sizeof(out));
	check(err == NULL || strcmp(err, ENCODING) == 0 ||
	    strcmp(err, SYNTAX) == 0);
	/* a bigger buffer changes nothing: QUEUE_ADDRESS_MAX + 1 is enough */
	big_err = queue_request_pickup_address(arg, len, &big_a, big,
	    sizeof(big));
	check(same(err, big_err));
	/* the encoding refusal is exactly bad xtext or a bad length */
	n = len <= sizeof(dec) ? queue_xtext_decode(arg, len, dec,
	    sizeof(dec)) : -1;
	if (len <= sizeof(dec))
		check((err != NULL && strcmp(err, ENCODING) == 0) ==
		    (n <= 0 || n > SMTP_PATH_MAX - 2));
	if (err != NULL)
		return err;
	check(strcmp(out, big) == 0);
	check_address(&a, out);
	return NULL;
}

static void
fuzz_sender(const char *arg, size_t len)
{
	char out[QUEUE_ADDRESS_MAX + 1];
	const char *err, *addr_err;

	memcpy(out, "untouched", 10);
	err = queue_request_pickup_sender(arg, len, out, sizeof(out));
	addr_err = fuzz_address(arg, len);
	if (len == 2 && memcmp(arg, "<>", 2) == 0) {
		check(err == NULL && out[0] == '\0');
		check(same(addr_err, SYNTAX));
	} else
		check(same(err, addr_err));
}

static void
fuzz_size(const char *arg, size_t len, uint64_t limit)
{
	uint64_t v = 42, want = 0;
	const char *err, *model = NULL;
	size_t i;

	err = queue_request_pickup_size(arg, len, limit, &v);
	if (len == 0 || len > 19 || (len > 1 && arg[0] == '0'))
		model = BAD_SIZE;
	for (i = 0; i < len && model == NULL; i++) {
		if (arg[i] < '0' || arg[i] > '9')
			model = BAD_SIZE;
		else
			want = want * 10 + (uint64_t)(arg[i] - '0');
	}
	if (model == NULL && want > limit)
		model = TOO_BIG;
	check(same(err, model));
	if (err != NULL) {
		check(v == 42);
		return;
	}
	check(v == want && v <= limit);
	/* printed back, it is the argument */
	{
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%llu",
		    (unsigned long long)v);

		check(n > 0 && (size_t)n == len && memcmp(buf, arg, len) == 0);
	}
}

static void
fuzz_pickup(const char *line, size_t len, uint64_t limit)
{
	static const char *const verbs[] = {
		"sender", "recipient", "size", "data",
	};
	struct queue_request_pickup req;
	const char *err, *verb;
	size_t vlen;

	err = queue_request_pickup_parse(line, len, &req);
	if (err != NULL) {
		check(strcmp(err, "perm 5.5.1 unknown command") == 0);
		/* refused: no verb, or "data" with something after it */
		check(!(len == 4 && memcmp(line, "data", 4) == 0));
		check(!(len > 6 && memcmp(line, "sender ", 7) == 0));
		check(!(len > 9 && memcmp(line, "recipient ", 10) == 0));
		check(!(len > 4 && memcmp(line, "size ", 5) == 0));
		return;
	}
	check((unsigned)req.verb < 4);
	verb = verbs[req.verb];
	vlen = strlen(verb);
	check(req.arg >= line && req.arg_len <= len &&
	    req.arg + req.arg_len == line + len);
	/* the line is the verb, and for the others a space and the arg */
	if (req.verb == QUEUE_REQUEST_DATA)
		check(len == 4 && memcmp(line, "data", 4) == 0 &&
		    req.arg_len == 0);
	else
		check(len == vlen + 1 + req.arg_len &&
		    memcmp(line, verb, vlen) == 0 && line[vlen] == ' ' &&
		    req.arg == line + vlen + 1);
	switch (req.verb) {
	case QUEUE_REQUEST_SENDER:
		fuzz_sender(req.arg, req.arg_len);
		break;
	case QUEUE_REQUEST_RECIPIENT:
		fuzz_address(req.arg, req.arg_len);
		break;
	case QUEUE_REQUEST_SIZE:
		fuzz_size(req.arg, req.arg_len, limit);
		break;
	case QUEUE_REQUEST_DATA:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in;
	size_t len;
	uint64_t limit;

	if (size < 1)
		return 0;
	/* the rest in a heap block of its exact size, for ASan */
	len = size - 1;
	if ((in = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(in, data + 1, len);
	limit = limits[(data[0] / 4) % (sizeof(limits) / sizeof(limits[0]))];
	switch (data[0] % 4) {
	case 0:
		fuzz_control(in, len);
		break;
	case 1:
		fuzz_pickup(in, len, limit);
		break;
	case 2:
		fuzz_sender(in, len);
		break;
	default:
		fuzz_size(in, len, limit);
		break;
	}
	free(in);
	return 0;
}
