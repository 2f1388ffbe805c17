/*
 * Unit tests of queue envelopes: xtext (RFC 3461 4) of every byte, the
 * version 2 format's round trips and refusals, version 1 files as
 * smtp_message.c writes them, hostile bytes, and durable store/load.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "queue/queue_envelope.h"
#include "unit.h"

#define ID	"0123456789ABCDEF"
#define V2HEAD	"version 2\nqueue-id " ID "\ncreated 1795820000\n" \
		"sender alice@example.com\nsmtputf8 no\nbody 8bitmime\n" \
		"attempts 3\nnext-attempt 1795823600\nwarned no\n"

/* NULL and "" are the same for remote and diagnostic (the header). */
static bool
opt_equal(const char *a, const char *b)
{
	if (a == NULL || a[0] == '\0')
		return b == NULL || b[0] == '\0';
	return b != NULL && strcmp(a, b) == 0;
}

static bool
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
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

/* Parses text (NUL-terminated), expecting success. */
static int
parse_str(const char *text, uint64_t created_v1, struct queue_envelope *env,
    char *err, size_t errsize)
{
	return queue_envelope_parse(text, strlen(text), created_v1, env, err,
	    errsize);
}

/* Expects text to be refused with exactly the error want. */
static void
check_refused(const char *text, size_t len, const char *want, int line)
{
	struct queue_envelope env;
	char err[256];

	if (queue_envelope_parse(text, len, 7, &env, err, sizeof(err)) != -1) {
		fprintf(stderr, "%s:%d: parsed but should fail with \"%s\"\n",
		    __FILE__, line, want);
		unit_checks_failed_in_test++;
	} else if (strcmp(err, want) != 0) {
		fprintf(stderr, "%s:%d: error \"%s\", expected \"%s\"\n",
		    __FILE__, line, err, want);
		unit_checks_failed_in_test++;
	}
	queue_envelope_free(&env);
}

#define REFUSED(text, want) check_refused((text), strlen(text), (want), \
	__LINE__)
#define REFUSED_N(text, len, want) check_refused((text), (len), (want), \
	__LINE__)

/* format(env) -> parse -> equal, and format again byte-identical. */
static bool
round_trip(const struct queue_envelope *env)
{
	struct queue_envelope back;
	char *t1, *t2, err[256];
	size_t l1, l2;
	bool ok;

	if ((t1 = queue_envelope_format(env, &l1)) == NULL)
		return false;
	if (queue_envelope_parse(t1, l1, 0, &back, err, sizeof(err)) == -1) {
		fprintf(stderr, "round trip: %s\n", err);
		queue_envelope_free(&back);
		free(t1);
		return false;
	}
	ok = env_equal(env, &back);
	t2 = queue_envelope_format(&back, &l2);
	ok = ok && t2 != NULL && l1 == l2 && memcmp(t1, t2, l1) == 0;
	free(t1);
	free(t2);
	queue_envelope_free(&back);
	return ok;
}

static size_t
count_lines(const char *t, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += t[i] == '\n';
	return n;
}

static void
test_xtext_every_byte(void)
{
	char in[256], out[256], one[1], *enc, want[4];
	size_t i;
	ssize_t n;

	for (i = 0; i < 256; i++) {
		one[0] = (char)i;
		enc = queue_xtext_encode(one, 1);
		if (i >= 33 && i <= 126 && i != '+' && i != '=')
			snprintf(want, sizeof(want), "%c", (int)i);
		else
			snprintf(want, sizeof(want), "+%02X", (unsigned)i);
		CHECK_STR(enc, want);
		n = queue_xtext_decode(enc, strlen(enc), out, 1);
		CHECK(n == 1 && (unsigned char)out[0] == i);
		free(enc);
		in[i] = (char)i;
	}
	enc = queue_xtext_encode(in, sizeof(in));
	for (i = 0; enc[i] != '\0'; i++)
		CHECK(enc[i] >= 33 && enc[i] <= 126 && enc[i] != '=');
	CHECK(strlen(enc) == 94 - 2 + 3 * (256 - 92));
	n = queue_xtext_decode(enc, strlen(enc), out, sizeof(out));
	CHECK(n == 256 && memcmp(in, out, 256) == 0);
	/* Exactly at the limit and one over. */
	CHECK(queue_xtext_decode(enc, strlen(enc), out, 255) == -1);
	free(enc);
	enc = queue_xtext_encode("", 0);
	CHECK_STR(enc, "");
	free(enc);
}

static void
test_xtext_decode_refusals(void)
{
	char out[16];

	CHECK(queue_xtext_decode("", 0, out, 0) == 0);
	CHECK(queue_xtext_decode("abc", 3, out, 3) == 3);
	CHECK(queue_xtext_decode("abc", 3, out, 2) == -1);
	CHECK(queue_xtext_decode("+41", 3, out, 1) == 1 && out[0] == 'A');
	CHECK(queue_xtext_decode("+2B+3D", 6, out, 2) == 2 &&
	    memcmp(out, "+=", 2) == 0);
	CHECK(queue_xtext_decode("+00", 3, out, 1) == 1 && out[0] == '\0');
	CHECK(queue_xtext_decode("+G1", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("+1G", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("a+4", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("+", 1, out, 16) == -1);
	/* RFC 3461 4 says upper case hex digits; lower case is refused. */
	CHECK(queue_xtext_decode("+0a", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("+e9", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("a=b", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("a b", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("a\rb", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("a\nb", 3, out, 16) == -1);
	CHECK(queue_xtext_decode("\x7f", 1, out, 16) == -1);
	CHECK(queue_xtext_decode("\xc3\xa9", 2, out, 16) == -1);
	CHECK(queue_xtext_decode("a\0b", 3, out, 16) == -1);
}

static struct queue_rcpt full_rcpts[] = {
	{ .address = "bob@example.net", .state = QUEUE_RCPT_PENDING },
	{ .address = "carol@example.net", .state = QUEUE_RCPT_DELIVERED,
	  .time = 1795820100, .remote = "mx.example.net", .status = "2.0.0",
	  .diagnostic = "250 2.0.0 Ok" },
	{ .address = "dave@example.net", .state = QUEUE_RCPT_FAILED,
	  .time = 1795820100, .remote = "mx.example.net", .status = "5.1.1",
	  .diagnostic = "550 5.1.1 No such user" },
	{ .address = "erin@example.net", .state = QUEUE_RCPT_PENDING,
	  .time = 1795820200, .remote = "mx2.example.net", .status = "4.2.0",
	  .diagnostic = "421 4.2.0 Try later" },
	{ .address = "frank@example.net", .state = QUEUE_RCPT_FAILED,
	  .time = 0, .remote = NULL, .status = "",
	  .diagnostic = NULL },
};

static const char full_text[] =
    "version 2\n"
    "queue-id " ID "\n"
    "created 1795820000\n"
    "sender alice@example.com\n"
    "smtputf8 yes\n"
    "body binarymime\n"
    "attempts 3\n"
    "next-attempt 1795823600\n"
    "warned yes\n"
    "auth alice+2Btag@example.com\n"
    "recipient bob@example.net pending\n"
    "recipient carol@example.net delivered 1795820100 mx.example.net "
    "2.0.0 250+202.0.0+20Ok\n"
    "recipient dave@example.net failed 1795820100 mx.example.net 5.1.1 "
    "550+205.1.1+20No+20such+20user\n"
    "recipient erin@example.net pending 1795820200 mx2.example.net 4.2.0 "
    "421+204.2.0+20Try+20later\n"
    "recipient frank@example.net failed 0 - - -\n";

static void
full_env(struct queue_envelope *env)
{
	memset(env, 0, sizeof(*env));
	memcpy(env->queue_id, ID, sizeof(env->queue_id));
	env->created = 1795820000;
	env->sender = "alice@example.com";
	env->smtputf8 = true;
	env->body = QUEUE_BODY_BINARYMIME;
	env->attempts = 3;
	env->next_attempt = 1795823600;
	env->warned = true;
	env->auth = "alice+tag@example.com";
	env->rcpts = full_rcpts;
	env->n_rcpts = sizeof(full_rcpts) / sizeof(full_rcpts[0]);
}

static void
test_golden_format(void)
{
	struct queue_envelope env, back;
	char *t, err[256];
	size_t len;

	full_env(&env);
	t = queue_envelope_format(&env, &len);
	CHECK(t != NULL && len == sizeof(full_text) - 1 &&
	    memcmp(t, full_text, len) == 0);
	if (t != NULL && (len != sizeof(full_text) - 1 ||
	    memcmp(t, full_text, len) != 0))
		fprintf(stderr, "got:\n%.*s", (int)len, t);
	free(t);
	CHECK(parse_str(full_text, 0, &back, err, sizeof(err)) == 0);
	CHECK(env_equal(&env, &back));
	CHECK(back.rcpts[4].remote == NULL && back.rcpts[4].diagnostic == NULL);
	CHECK_STR(back.rcpts[3].diagnostic, "421 4.2.0 Try later");
	CHECK_STR(back.auth, "alice+tag@example.com");
	queue_envelope_free(&back);
	CHECK(back.rcpts == NULL && back.n_rcpts == 0);
	CHECK(round_trip(&env));
}

/* Each field on its own, so that no two can cover for each other. */
static void
test_round_trip_fields(void)
{
	struct queue_envelope env;
	struct queue_rcpt r[2];

	full_env(&env);
	env.sender = "";
	CHECK(round_trip(&env));
	env.auth = NULL;
	CHECK(round_trip(&env));
	env.auth = "";
	CHECK(round_trip(&env));
	env.created = 0;
	env.next_attempt = UINT64_MAX;
	env.attempts = UINT_MAX;
	env.smtputf8 = false;
	env.warned = false;
	env.body = QUEUE_BODY_7BIT;
	CHECK(round_trip(&env));
	env.body = QUEUE_BODY_8BITMIME;
	env.created = UINT64_MAX;
	env.next_attempt = 0;
	env.attempts = 0;
	CHECK(round_trip(&env));

	/* A remote or diagnostic that is just "-" is not "none". */
	memset(r, 0, sizeof(r));
	r[0].address = "-";
	r[0].state = QUEUE_RCPT_FAILED;
	r[0].remote = "-";
	r[0].diagnostic = "-";
	r[0].time = UINT64_MAX;
	strcpy(r[0].status, "5.999.999");
	r[1].address = "x@y";
	r[1].state = QUEUE_RCPT_PENDING;
	r[1].status[0] = '\0';
	r[1].remote = "";		/* reads back as none */
	env.rcpts = r;
	env.n_rcpts = 2;
	CHECK(round_trip(&env));
	{
		char *t, err[256];
		size_t len;
		struct queue_envelope back;

		t = queue_envelope_format(&env, &len);
		CHECK(t != NULL && strstr(t,
		    "recipient - failed 18446744073709551615 +2D 5.999.999 "
		    "+2D\nrecipient x@y pending\n") != NULL);
		CHECK(queue_envelope_parse(t, len, 0, &back, err,
		    sizeof(err)) == 0);
		CHECK_STR(back.rcpts[0].remote, "-");
		CHECK_STR(back.rcpts[0].diagnostic, "-");
		CHECK(back.rcpts[1].remote == NULL);
		queue_envelope_free(&back);
		free(t);
	}
	/* Every state with and without details. */
	r[1].remote = NULL;
	r[1].time = 5;
	CHECK(round_trip(&env));
	r[1].time = 0;
	strcpy(r[1].status, "4.4.1");
	CHECK(round_trip(&env));
	r[1].status[0] = '\0';
	r[1].diagnostic = "x";
	CHECK(round_trip(&env));
	r[1].state = QUEUE_RCPT_DELIVERED;
	r[1].diagnostic = NULL;
	CHECK(round_trip(&env));
}

/* The example in queue_envelope.h, as text, with its comments removed. */
static void
test_header_example(void)
{
	static const char text[] =
	    "version 2\n"
	    "queue-id 0123456789ABCDEF\n"
	    "created 1795820000\n"
	    "sender alice@example.com\n"
	    "smtputf8 no\n"
	    "body 8bitmime\n"
	    "attempts 3\n"
	    "next-attempt 1795823600\n"
	    "warned no\n"
	    "auth alice@example.com\n"
	    "recipient bob@example.net pending\n"
	    "recipient carol@example.net delivered 1795820100 mx.example.net "
	    "2.0.0 250+202.0.0+20Ok\n"
	    "recipient dave@example.net failed 1795820100 mx.example.net 5.1.1 "
	    "550+205.1.1+20No+20such+20user\n";
	struct queue_envelope env;
	char err[256], *t;
	size_t len;

	CHECK(parse_str(text, 0, &env, err, sizeof(err)) == 0);
	CHECK_STR(env.queue_id, ID);
	CHECK(env.created == 1795820000 && env.attempts == 3 &&
	    env.next_attempt == 1795823600 && !env.warned && !env.smtputf8 &&
	    env.body == QUEUE_BODY_8BITMIME);
	CHECK_STR(env.sender, "alice@example.com");
	CHECK_STR(env.auth, "alice@example.com");
	CHECK(env.n_rcpts == 3);
	CHECK(env.rcpts[0].state == QUEUE_RCPT_PENDING &&
	    env.rcpts[0].time == 0 && env.rcpts[0].remote == NULL &&
	    env.rcpts[0].status[0] == '\0' && env.rcpts[0].diagnostic == NULL);
	CHECK(env.rcpts[1].state == QUEUE_RCPT_DELIVERED &&
	    env.rcpts[1].time == 1795820100);
	CHECK_STR(env.rcpts[1].remote, "mx.example.net");
	CHECK_STR(env.rcpts[1].status, "2.0.0");
	CHECK_STR(env.rcpts[1].diagnostic, "250 2.0.0 Ok");
	CHECK(env.rcpts[2].state == QUEUE_RCPT_FAILED);
	CHECK_STR(env.rcpts[2].diagnostic, "550 5.1.1 No such user");
	CHECK(!queue_envelope_done(&env));
	/* The writer's own output is canonical: it writes this text back. */
	t = queue_envelope_format(&env, &len);
	CHECK(t != NULL && len == sizeof(text) - 1 &&
	    memcmp(t, text, len) == 0);
	free(t);
	queue_envelope_free(&env);

	/* Keys in another order are read the same. */
	CHECK(parse_str("version 2\nrecipient b@x pending\nwarned no\n"
	    "next-attempt 0\nattempts 0\nbody 7bit\nsmtputf8 no\nsender \n"
	    "created 1\nqueue-id " ID "\n", 0, &env, err, sizeof(err)) == 0);
	CHECK_STR(env.sender, "");
	CHECK(env.auth == NULL && env.created == 1 && env.n_rcpts == 1);
	queue_envelope_free(&env);
}

/* What smtp_envelope_text() in smtp_message.c writes, byte for byte. */
static char *
v1_text(const char *from, const char *const *rcpts, size_t n, size_t *len_r)
{
	size_t i, cap = 4096, len;
	char *buf = xmalloc(cap);

	len = (size_t)snprintf(buf, cap, "version 1\nqueue-id %s\n"
	    "sender <%s>\n", ID, from);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len,
		    "recipient <%s>\n", rcpts[i]);
	*len_r = len;
	return buf;
}

static void
test_v1(void)
{
	static const char *const rcpts[] = {
		"\"john doe\"@example.com",
		"j\xc3\xb6rg@\xe4\xbe\x8b\xe3\x81\x88.jp",
		"\"a>b <c>\"@example.net",
		"plain@example.org",
	};
	struct queue_envelope env;
	char err[256], *t;
	size_t len, i;

	t = v1_text("", rcpts, 4, &len);
	CHECK(queue_envelope_parse(t, len, 1795820000, &env, err,
	    sizeof(err)) == 0);
	free(t);
	CHECK_STR(env.queue_id, ID);
	CHECK_STR(env.sender, "");
	CHECK(env.created == 1795820000 && env.attempts == 0 &&
	    env.next_attempt == 0 && !env.warned && env.auth == NULL);
	CHECK(env.body == QUEUE_BODY_8BITMIME);
	CHECK(env.smtputf8);	/* a UTF-8 recipient */
	CHECK(env.n_rcpts == 4);
	for (i = 0; i < 4 && i < env.n_rcpts; i++) {
		CHECK_STR(env.rcpts[i].address, rcpts[i]);
		CHECK(env.rcpts[i].state == QUEUE_RCPT_PENDING &&
		    env.rcpts[i].time == 0 && env.rcpts[i].remote == NULL &&
		    env.rcpts[i].diagnostic == NULL &&
		    env.rcpts[i].status[0] == '\0');
	}
	CHECK(!queue_envelope_done(&env));
	/* Rewritten as version 2, every address survives. */
	CHECK(round_trip(&env));
	t = queue_envelope_format(&env, &len);
	CHECK(t != NULL && strstr(t, "recipient \"john+20doe\"@example.com "
	    "pending\nrecipient j+C3+B6rg@+E4+BE+8B+E3+81+88.jp pending\n")
	    != NULL);
	free(t);
	queue_envelope_free(&env);

	/* ASCII only: no SMTPUTF8; a UTF-8 sender alone sets it. */
	t = v1_text("a@example.com", rcpts + 3, 1, &len);
	CHECK(queue_envelope_parse(t, len, 5, &env, err, sizeof(err)) == 0);
	CHECK(!env.smtputf8 && env.created == 5);
	CHECK_STR(env.sender, "a@example.com");
	free(t);
	queue_envelope_free(&env);
	t = v1_text(rcpts[1], rcpts + 3, 1, &len);
	CHECK(queue_envelope_parse(t, len, 5, &env, err, sizeof(err)) == 0);
	CHECK(env.smtputf8);
	free(t);
	queue_envelope_free(&env);

	/* The longest path the fronts take (SMTP_PATH_MAX 256). */
	{
		char addr[255];

		memset(addr, 'a', sizeof(addr) - 1);
		addr[sizeof(addr) - 1] = '\0';
		addr[10] = '@';
		{
			const char *one[] = { addr };

			t = v1_text(addr, one, 1, &len);
		}
		CHECK(queue_envelope_parse(t, len, 5, &env, err,
		    sizeof(err)) == 0);
		CHECK_STR(env.sender, addr);
		free(t);
		queue_envelope_free(&env);
	}

	/* Version 1 refusals. */
	REFUSED("version 1\nqueue-id " ID "\nsender <>\n", "4: no recipient");
	REFUSED("version 1\nqueue-id " ID "\nrecipient <a@b>\n",
	    "4: missing sender");
	REFUSED("version 1\nsender <>\nrecipient <a@b>\n",
	    "4: missing queue-id");
	REFUSED("version 1\nqueue-id " ID "\nsender <>\nrecipient <>\n",
	    "4: empty recipient address");
	REFUSED("version 1\nqueue-id " ID "\nsender a@b\nrecipient <a@b>\n",
	    "3: sender not in <>");
	REFUSED("version 1\nqueue-id " ID "\nsender <a@b\nrecipient <a@b>\n",
	    "3: sender not in <>");
	REFUSED("version 1\nqueue-id " ID "\nsender <>\nrecipient a@b>\n",
	    "4: recipient not in <>");
	REFUSED("version 1\nqueue-id " ID "\nsender <>\nrecipient <a@b> \n",
	    "4: recipient not in <>");
	REFUSED("version 1\nqueue-id " ID "\nsender <>\nsender <>\n",
	    "4: repeated sender");
	REFUSED("version 1\nqueue-id " ID "\ncreated 5\nsender <>\n",
	    "3: unknown key");
	REFUSED("version 1\nqueue-id " ID "\nsender <>\nrecipient <a@b>\n"
	    "recipient b@c pending\n", "5: recipient not in <>");
	{
		static const char nul[] = "version 1\nqueue-id " ID "\n"
		    "sender <>\nrecipient <a\0b>\n";

		REFUSED_N(nul, sizeof(nul) - 1, "4: NUL byte");
	}
	{
		char line[QUEUE_ADDRESS_MAX + 2];
		const char *one[] = { line };

		memset(line, 'a', sizeof(line) - 1);
		line[sizeof(line) - 1] = '\0';
		t = v1_text("", one, 1, &len);
		REFUSED_N(t, len, "4: recipient over 320 bytes");
		free(t);
		line[sizeof(line) - 2] = '\0';	/* exactly the limit */
		t = v1_text(line, one, 1, &len);
		CHECK(queue_envelope_parse(t, len, 5, &env, err,
		    sizeof(err)) == 0);
		CHECK(strlen(env.sender) == QUEUE_ADDRESS_MAX);
		free(t);
		queue_envelope_free(&env);
	}
}

static void
test_refusals(void)
{
	REFUSED("", "1: empty envelope");
	REFUSED("\n", "1: no version line");
	REFUSED("version 3\n", "1: unsupported version");
	REFUSED("version 2 \n", "1: unsupported version");
	REFUSED("version 02\n", "1: unsupported version");
	REFUSED("Version 2\n", "1: no version line");
	REFUSED("queue-id " ID "\n", "1: no version line");
	REFUSED("version 2", "1: line without its LF");
	REFUSED("version 2\r\n", "1: unsupported version");
	REFUSED_N("version 2\0\n", 11, "1: NUL byte");
	REFUSED_N(V2HEAD "recipient a pending\0", sizeof(V2HEAD) - 1 + 20,
	    "10: NUL byte");
	REFUSED(V2HEAD "recipient a pending", "10: line without its LF");
	REFUSED(V2HEAD "recipient a pending\r\n", "10: bad recipient state");
	REFUSED(V2HEAD "recipient a pending\n\n", "11: unknown key");
	REFUSED(V2HEAD "recipient a pending\nfoo bar\n", "11: unknown key");
	REFUSED(V2HEAD "recipient a pending\nSender a\n", "11: unknown key");
	REFUSED(V2HEAD "recipient a pending\nversion 2\n",
	    "11: repeated version");
	REFUSED(V2HEAD "recipient a pending\nauth\n", "11: auth without a "
	    "value");
	REFUSED(V2HEAD "recipient a pending\nauth a\nauth b\n",
	    "12: repeated auth");
	REFUSED(V2HEAD "recipient a pending\nattempts 3\n",
	    "11: repeated attempts");
	REFUSED(V2HEAD, "10: no recipient");

	/* Each required key missing in turn, reported after the last line. */
	{
		static const char *const keys[] = { "queue-id", "created",
		    "sender", "smtputf8", "body", "attempts", "next-attempt",
		    "warned" };
		char text[1024], want[64];
		size_t k;

		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			const char *p = V2HEAD, *nl;
			size_t o = 0;

			while ((nl = strchr(p, '\n')) != NULL) {
				size_t n = (size_t)(nl - p) + 1;

				if (!(strncmp(p, keys[k], strlen(keys[k])) ==
				    0 && p[strlen(keys[k])] == ' ')) {
					memcpy(text + o, p, n);
					o += n;
				}
				p = nl + 1;
			}
			o += (size_t)snprintf(text + o, sizeof(text) - o,
			    "recipient a pending\n");
			snprintf(want, sizeof(want), "10: missing %s", keys[k]);
			REFUSED_N(text, o, want);
		}
	}

	/* Values. */
	REFUSED("version 2\nqueue-id 0123456789abcdef\n", "2: bad queue-id");
	REFUSED("version 2\nqueue-id 0123456789ABCDE\n", "2: bad queue-id");
	REFUSED("version 2\nqueue-id 0123456789ABCDEF0\n", "2: bad queue-id");
	REFUSED("version 2\nqueue-id ../../etc/passw\n", "2: bad queue-id");
	REFUSED("version 2\nqueue-id \n", "2: bad queue-id");
	REFUSED("version 2\ncreated \n", "2: bad created");
	REFUSED("version 2\ncreated +1\n", "2: bad created");
	REFUSED("version 2\ncreated -1\n", "2: bad created");
	REFUSED("version 2\ncreated 01\n", "2: bad created");
	REFUSED("version 2\ncreated 1 \n", "2: bad created");
	REFUSED("version 2\ncreated  1\n", "2: bad created");
	REFUSED("version 2\ncreated 0x10\n", "2: bad created");
	REFUSED("version 2\ncreated 18446744073709551616\n", "2: bad created");
	REFUSED("version 2\ncreated 99999999999999999999\n", "2: bad created");
	REFUSED("version 2\nnext-attempt 18446744073709551616\n",
	    "2: bad next-attempt");
	REFUSED("version 2\nattempts 4294967296\n", "2: bad attempts");
	REFUSED("version 2\nattempts -0\n", "2: bad attempts");
	REFUSED("version 2\nsmtputf8 YES\n", "2: smtputf8 is not yes or no");
	REFUSED("version 2\nwarned 1\n", "2: warned is not yes or no");
	REFUSED("version 2\nbody 8BITMIME\n", "2: bad body");
	REFUSED("version 2\nbody binary\n", "2: bad body");
	REFUSED("version 2\nsender a+G1\n", "2: bad xtext in sender");
	REFUSED("version 2\nsender a+4\n", "2: bad xtext in sender");
	REFUSED("version 2\nsender a+\n", "2: bad xtext in sender");
	REFUSED("version 2\nsender a+0d\n", "2: bad xtext in sender");
	REFUSED("version 2\nsender a=b\n", "2: bad xtext in sender");
	REFUSED("version 2\nsender a b\n", "2: bad xtext in sender");
	REFUSED("version 2\nsender \xc3\xa9@b\n", "2: bad xtext in sender");
	REFUSED("version 2\nsender a+00b\n", "2: NUL byte in sender");
	REFUSED("version 2\nauth a+00\n", "2: NUL byte in auth");
	REFUSED("version 2\nauth a\tb\n", "2: bad xtext in auth");

	/* Recipient lines. */
	REFUSED(V2HEAD "recipient \n", "10: empty field in recipient");
	REFUSED(V2HEAD "recipient a\n", "10: recipient has 1 fields, not 2 "
	    "or 6");
	REFUSED(V2HEAD "recipient a pending 5\n", "10: recipient has 3 "
	    "fields, not 2 or 6");
	REFUSED(V2HEAD "recipient a pending 5 - -\n", "10: recipient has 5 "
	    "fields, not 2 or 6");
	REFUSED(V2HEAD "recipient a pending 5 - - - x\n", "10: recipient has "
	    "more than 6 fields");
	REFUSED(V2HEAD "recipient a  pending\n", "10: empty field in "
	    "recipient");
	REFUSED(V2HEAD "recipient a pending \n", "10: empty field in "
	    "recipient");
	REFUSED(V2HEAD "recipient +00 pending\n", "10: NUL byte in recipient "
	    "address");
	REFUSED(V2HEAD "recipient a+4 pending\n", "10: bad xtext in "
	    "recipient address");
	REFUSED(V2HEAD "recipient a Pending\n", "10: bad recipient state");
	REFUSED(V2HEAD "recipient a done\n", "10: bad recipient state");
	REFUSED(V2HEAD "recipient a delivered\n", "10: delivered recipient "
	    "without time, remote, status and diagnostic");
	REFUSED(V2HEAD "recipient a failed\n", "10: failed recipient without "
	    "time, remote, status and diagnostic");
	REFUSED(V2HEAD "recipient a failed - - - -\n", "10: bad recipient "
	    "time");
	REFUSED(V2HEAD "recipient a failed +5 - - -\n", "10: bad recipient "
	    "time");
	REFUSED(V2HEAD "recipient a failed 18446744073709551616 - - -\n",
	    "10: bad recipient time");
	REFUSED(V2HEAD "recipient a failed 5 mx+ZZ - -\n", "10: bad xtext in "
	    "recipient remote");
	REFUSED(V2HEAD "recipient a failed 5 - 5.1 -\n", "10: bad recipient "
	    "status");
	REFUSED(V2HEAD "recipient a failed 5 - 3.1.1 -\n", "10: bad recipient "
	    "status");
	REFUSED(V2HEAD "recipient a failed 5 - 5.1.1000 -\n", "10: bad "
	    "recipient status");
	REFUSED(V2HEAD "recipient a failed 5 - 5..1 -\n", "10: bad recipient "
	    "status");
	REFUSED(V2HEAD "recipient a failed 5 - 5.1.1. -\n", "10: bad "
	    "recipient status");
	REFUSED(V2HEAD "recipient a failed 5 - +35.1.1 -\n", "10: bad "
	    "recipient status");
	REFUSED(V2HEAD "recipient a failed 5 - - 550+20x+0\n", "10: bad xtext "
	    "in recipient diagnostic");
	REFUSED(V2HEAD "recipient a failed 5 - - +00\n", "10: NUL byte in "
	    "recipient diagnostic");
	REFUSED(V2HEAD "recipient a failed 5 +00 - -\n", "10: NUL byte in "
	    "recipient remote");
	REFUSED(V2HEAD "recipient +20 pending\nrecipient  pending\n",
	    "11: empty field in recipient");
	/* An address that decodes to nothing cannot come from xtext (an
	 * empty field is refused first); the v1 form checks it above. */
}

static void
test_limits(void)
{
	struct queue_envelope env;
	struct queue_rcpt r = { .state = QUEUE_RCPT_FAILED, .time = 1,
	    .status = "5.0.0" };
	char addr[QUEUE_ADDRESS_MAX + 2], diag[QUEUE_DIAGNOSTIC_MAX + 2];
	char *text, *t, err[256];
	size_t len, o, i;

	full_env(&env);
	memset(addr, 'a', sizeof(addr));
	addr[QUEUE_ADDRESS_MAX] = '\0';
	memset(diag, '\n', sizeof(diag));
	diag[QUEUE_DIAGNOSTIC_MAX] = '\0';
	r.address = addr;
	r.remote = addr;
	r.diagnostic = diag;
	env.sender = addr;
	env.auth = addr;
	env.rcpts = &r;
	env.n_rcpts = 1;
	CHECK(round_trip(&env));	/* everything exactly at its limit */
	addr[QUEUE_ADDRESS_MAX] = 'a';
	addr[QUEUE_ADDRESS_MAX + 1] = '\0';
	CHECK(queue_envelope_format(&env, &len) == NULL);
	addr[QUEUE_ADDRESS_MAX] = '\0';
	diag[QUEUE_DIAGNOSTIC_MAX] = '\n';
	diag[QUEUE_DIAGNOSTIC_MAX + 1] = '\0';
	CHECK(queue_envelope_format(&env, &len) == NULL);
	diag[QUEUE_DIAGNOSTIC_MAX] = '\0';

	/* The same one over, as text: every field in its own line. */
	text = xmalloc(16384);
	o = (size_t)snprintf(text, 16384, V2HEAD "recipient ");
	memset(text + o, 'a', QUEUE_ADDRESS_MAX + 1);
	o += QUEUE_ADDRESS_MAX + 1;
	o += (size_t)snprintf(text + o, 16384 - o, " pending\n");
	REFUSED_N(text, o, "10: recipient address over 320 bytes");
	o = (size_t)snprintf(text, 16384, V2HEAD "recipient a failed 0 - - ");
	for (i = 0; i < QUEUE_DIAGNOSTIC_MAX + 1; i++)
		o += (size_t)snprintf(text + o, 16384 - o, "+0A");
	o += (size_t)snprintf(text + o, 16384 - o, "\n");
	REFUSED_N(text, o, "10: recipient diagnostic over 1024 bytes");
	o -= 4;		/* exactly the limit */
	text[o++] = '\n';
	CHECK(queue_envelope_parse(text, o, 0, &env, err, sizeof(err)) == 0);
	CHECK(env.n_rcpts == 1 &&
	    strlen(env.rcpts[0].diagnostic) == QUEUE_DIAGNOSTIC_MAX);
	queue_envelope_free(&env);
	o = (size_t)snprintf(text, 16384, "version 2\nsender ");
	memset(text + o, 'b', QUEUE_ADDRESS_MAX + 1);
	o += QUEUE_ADDRESS_MAX + 1;
	text[o++] = '\n';
	REFUSED_N(text, o, "2: sender over 320 bytes");
	o = (size_t)snprintf(text, 16384, "version 2\nauth ");
	memset(text + o, 'b', QUEUE_ADDRESS_MAX + 1);
	o += QUEUE_ADDRESS_MAX + 1;
	text[o++] = '\n';
	REFUSED_N(text, o, "2: auth over 320 bytes");
	o = (size_t)snprintf(text, 16384, V2HEAD "recipient a failed 0 ");
	memset(text + o, 'c', QUEUE_ADDRESS_MAX + 1);
	o += QUEUE_ADDRESS_MAX + 1;
	o += (size_t)snprintf(text + o, 16384 - o, " - -\n");
	REFUSED_N(text, o, "10: recipient remote over 320 bytes");
	free(text);

	/* QUEUE_RECIPIENTS_MAX recipients, then one more. */
	{
		size_t cap = sizeof(V2HEAD) + (QUEUE_RECIPIENTS_MAX + 1) * 32;
		struct queue_envelope many;

		text = xmalloc(cap);
		o = (size_t)snprintf(text, cap, V2HEAD);
		for (i = 0; i < QUEUE_RECIPIENTS_MAX; i++)
			o += (size_t)snprintf(text + o, cap - o,
			    "recipient r%zu@x pending\n", i);
		CHECK(queue_envelope_parse(text, o, 0, &many, err,
		    sizeof(err)) == 0);
		CHECK(many.n_rcpts == QUEUE_RECIPIENTS_MAX);
		CHECK(round_trip(&many));
		many.n_rcpts++;		/* format refuses one over */
		CHECK(queue_envelope_format(&many, &len) == NULL);
		many.n_rcpts--;
		queue_envelope_free(&many);
		o += (size_t)snprintf(text + o, cap - o,
		    "recipient x pending\n");
		REFUSED_N(text, o, "10010: more than 10000 recipients");
		free(text);
	}

	/* Fields each within their limit, but a file over
	 * QUEUE_ENVELOPE_MAX: format refuses it, so store cannot write
	 * what load would refuse. */
	{
		struct queue_rcpt *rs = xcalloc(QUEUE_RECIPIENTS_MAX,
		    sizeof(*rs));

		memset(diag, '\r', QUEUE_DIAGNOSTIC_MAX);
		diag[QUEUE_DIAGNOSTIC_MAX] = '\0';
		for (i = 0; i < QUEUE_RECIPIENTS_MAX; i++) {
			rs[i].address = addr;
			rs[i].state = QUEUE_RCPT_FAILED;
			rs[i].diagnostic = diag;
			rs[i].remote = addr;
		}
		full_env(&env);
		env.rcpts = rs;
		env.n_rcpts = QUEUE_RECIPIENTS_MAX;
		CHECK(queue_envelope_format(&env, &len) == NULL);
		env.n_rcpts = 1000;	/* about 4 MB */
		t = queue_envelope_format(&env, &len);
		CHECK(t != NULL && len < QUEUE_ENVELOPE_MAX);
		free(t);
		free(rs);
	}
}

/* format refuses what parse would refuse. */
static void
test_format_refusals(void)
{
	struct queue_envelope env;
	struct queue_rcpt r = { .address = "a@b" };
	size_t len;

	full_env(&env);
	env.rcpts = &r;
	env.n_rcpts = 1;
	CHECK(round_trip(&env));
	memcpy(env.queue_id, "0123456789abcdef", 17);
	CHECK(queue_envelope_format(&env, &len) == NULL);
	memcpy(env.queue_id, "../../../etc/pwd", 17);
	CHECK(queue_envelope_format(&env, &len) == NULL);
	memcpy(env.queue_id, ID, 17);
	env.sender = NULL;
	CHECK(queue_envelope_format(&env, &len) == NULL);
	env.sender = "";
	env.body = (enum queue_body)3;
	CHECK(queue_envelope_format(&env, &len) == NULL);
	env.body = QUEUE_BODY_7BIT;
	env.n_rcpts = 0;
	CHECK(queue_envelope_format(&env, &len) == NULL);
	env.n_rcpts = 1;
	r.address = "";
	CHECK(queue_envelope_format(&env, &len) == NULL);
	r.address = NULL;
	CHECK(queue_envelope_format(&env, &len) == NULL);
	r.address = "a@b";
	r.state = (enum queue_rcpt_state)3;
	CHECK(queue_envelope_format(&env, &len) == NULL);
	r.state = QUEUE_RCPT_FAILED;
	strcpy(r.status, "5.1");
	CHECK(queue_envelope_format(&env, &len) == NULL);
	strcpy(r.status, "5.1.1 x");
	CHECK(queue_envelope_format(&env, &len) == NULL);
	memset(r.status, '5', sizeof(r.status));	/* not terminated */
	CHECK(queue_envelope_format(&env, &len) == NULL);
	strcpy(r.status, "5.1.1");
	CHECK(round_trip(&env));
}

/* Security-tests 8: no byte in a value adds a line or a field. */
static void
test_hostile_bytes(void)
{
	static char hostile[][32] = {
		"a\r\nrecipient evil@x pending",
		"a\nqueue-id FFFFFFFFFFFFFFFF",
		"x pending\nrecipient y",
		"a b c d e f g",
		"+0A+0D=+20",
		"=?utf-8?q?x?=",
		"\r", "\n", " ", "+", "=", "-", "- - -", "\x7f\x80\xff",
		"x+41\x01\x1f",
	};
	struct queue_envelope env;
	struct queue_rcpt r[sizeof(hostile) / sizeof(hostile[0])];
	size_t i, j, len, n = sizeof(hostile) / sizeof(hostile[0]);
	char *t;

	full_env(&env);
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++) {
			memset(r, 0, sizeof(r));
			r[0].address = hostile[i];
			r[0].remote = hostile[j];
			r[0].diagnostic = hostile[(i + j) % n];
			r[0].state = QUEUE_RCPT_FAILED;
			r[0].time = 1;
			r[1].address = hostile[j];
			r[1].state = QUEUE_RCPT_PENDING;
			r[1].diagnostic = hostile[i];
			env.sender = hostile[i];
			env.auth = hostile[j];
			env.rcpts = r;
			env.n_rcpts = 2;
			t = queue_envelope_format(&env, &len);
			CHECK(t != NULL);
			if (t == NULL)
				continue;
			/* 10 lines before the recipients, auth included. */
			CHECK(count_lines(t, len) == 12);
			CHECK(memchr(t, '\r', len) == NULL);
			CHECK(round_trip(&env));
			free(t);
		}
	}
}

/* Every prefix of a valid text: refused at its unfinished line, or whole
 * lines that parse or fail cleanly; never more. */
static void
test_every_prefix(void)
{
	struct queue_envelope env;
	char err[256], want[64];
	size_t cut, lines;
	int r;

	for (cut = 0; cut <= sizeof(full_text) - 1; cut++) {
		r = queue_envelope_parse(full_text, cut, 0, &env, err,
		    sizeof(err));
		lines = count_lines(full_text, cut);
		if (cut == 0)
			CHECK_STR(err, "1: empty envelope");
		else if (full_text[cut - 1] != '\n') {
			snprintf(want, sizeof(want), "%zu: line without its "
			    "LF", lines + 1);
			CHECK_STR(err, want);
		} else if (lines < 11) {
			CHECK(r == -1 && strtoul(err, NULL, 10) == lines + 1);
		} else
			CHECK(r == 0 && env.n_rcpts == lines - 10);
		queue_envelope_free(&env);
	}
}

static void
test_done(void)
{
	struct queue_rcpt r[3] = {
		{ .address = "a", .state = QUEUE_RCPT_DELIVERED },
		{ .address = "b", .state = QUEUE_RCPT_FAILED },
		{ .address = "c", .state = QUEUE_RCPT_PENDING },
	};
	struct queue_envelope env = { .rcpts = r, .n_rcpts = 3 };

	CHECK(!queue_envelope_done(&env));
	r[2].state = QUEUE_RCPT_FAILED;
	CHECK(queue_envelope_done(&env));
	r[0].state = QUEUE_RCPT_PENDING;
	CHECK(!queue_envelope_done(&env));
	env.n_rcpts = 1;
	CHECK(!queue_envelope_done(&env));
	env.rcpts = r + 1;
	CHECK(queue_envelope_done(&env));
	/* A pending recipient with a temporary failure is still pending. */
	r[1].state = QUEUE_RCPT_PENDING;
	r[1].time = 9;
	strcpy(r[1].status, "4.0.0");
	CHECK(!queue_envelope_done(&env));
}

static char qdir[PATH_MAX];

static void
make_qdir(void)
{
	snprintf(qdir, sizeof(qdir), "/tmp/test_queue_envelope.XXXXXX");
	if (mkdtemp(qdir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
}

static void
rm_qdir(void)
{
	DIR *d = opendir(qdir);
	struct dirent *de;
	char p[PATH_MAX];

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (path_join(p, sizeof(p), "%s/%s", qdir, de->d_name) == 0 &&
		    unlink(p) == -1)
			(void)rmdir(p);
	}
	if (d != NULL)
		closedir(d);
	(void)rmdir(qdir);
}

/* Names in the queue directory, "|"-joined in sorted order. */
static void
dir_names(char *out, size_t outsize)
{
	struct dirent **list;
	int n, i;
	size_t o = 0;

	out[0] = '\0';
	n = scandir(qdir, &list, NULL, alphasort);
	for (i = 0; i < n; i++) {
		if (list[i]->d_name[0] != '.' && o < outsize)
			o += (size_t)snprintf(out + o, outsize - o, "%s%s",
			    o ? "|" : "", list[i]->d_name);
		free(list[i]);
	}
	if (n >= 0)
		free(list);
}

static void
write_file(const char *name, const char *text, size_t len)
{
	char p[PATH_MAX];
	int fd;

	CHECK(path_join(p, sizeof(p), "%s/%s", qdir, name) == 0);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write_all(fd, text, len) == 0);
	if (fd >= 0)
		close(fd);
}

static void
test_store_load(void)
{
	struct queue_envelope env, back;
	char err[256], names[512], p[PATH_MAX];
	struct stat st;
	mode_t old;

	make_qdir();
	old = umask(0);		/* the file is 0600 whatever the umask */
	full_env(&env);
	CHECK(queue_envelope_store(qdir, &env, err, sizeof(err)) == 0);
	umask(old);
	CHECK(path_join(p, sizeof(p), "%s/%s.env", qdir, ID) == 0);
	CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & 07777) == 0600);
	dir_names(names, sizeof(names));
	CHECK_STR(names, ID ".env");
	CHECK(queue_envelope_load(qdir, ID, &back, err, sizeof(err)) == 0);
	CHECK(env_equal(&env, &back));
	queue_envelope_free(&back);

	/* A rewrite after a delivery attempt replaces the state. */
	full_rcpts[0].state = QUEUE_RCPT_DELIVERED;
	full_rcpts[0].time = 42;
	env.attempts = 4;
	CHECK(queue_envelope_store(qdir, &env, err, sizeof(err)) == 0);
	CHECK(queue_envelope_load(qdir, ID, &back, err, sizeof(err)) == 0);
	CHECK(env_equal(&env, &back) && back.attempts == 4 &&
	    back.rcpts[0].state == QUEUE_RCPT_DELIVERED);
	queue_envelope_free(&back);
	dir_names(names, sizeof(names));
	CHECK_STR(names, ID ".env");

	/* A crash between writing the temp file and the rename leaves a
	 * temp file (of either naming) that load never reads. */
	write_file(ID ".env.tmp", "version 2\ngarbage\n", 18);
	write_file(ID ".env.tmp.FFFFFFFFFFFFFFFF", "version 2\nqueue-id " ID
	    "\n", 28);
	CHECK(queue_envelope_load(qdir, ID, &back, err, sizeof(err)) == 0);
	CHECK(env_equal(&env, &back));
	queue_envelope_free(&back);
	env.attempts = 5;
	CHECK(queue_envelope_store(qdir, &env, err, sizeof(err)) == 0);
	CHECK(queue_envelope_load(qdir, ID, &back, err, sizeof(err)) == 0);
	CHECK(back.attempts == 5);
	queue_envelope_free(&back);
	dir_names(names, sizeof(names));
	CHECK_STR(names, ID ".env|" ID ".env.tmp|" ID
	    ".env.tmp.FFFFFFFFFFFFFFFF");
	full_rcpts[0].state = QUEUE_RCPT_PENDING;
	full_rcpts[0].time = 0;

	/* Version 1 as the fronts write it: created from the mtime. */
	{
		static const char v1[] = "version 1\nqueue-id "
		    "00000000000000AA\nsender <>\nrecipient "
		    "<\"john doe\"@example.com>\n";
		struct timespec ts[2] = { { 1795820000, 0 },
		    { 1795820000, 0 } };

		write_file("00000000000000AA.env", v1, sizeof(v1) - 1);
		CHECK(path_join(p, sizeof(p), "%s/00000000000000AA.env",
		    qdir) == 0);
		CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
		CHECK(queue_envelope_load(qdir, "00000000000000AA", &back, err,
		    sizeof(err)) == 0);
		CHECK(back.created == 1795820000 && back.n_rcpts == 1);
		CHECK_STR(back.rcpts[0].address, "\"john doe\"@example.com");
		CHECK_STR(back.sender, "");
		/* Rewritten as version 2 in place. */
		CHECK(queue_envelope_store(qdir, &back, err, sizeof(err)) ==
		    0);
		queue_envelope_free(&back);
		CHECK(queue_envelope_load(qdir, "00000000000000AA", &back, err,
		    sizeof(err)) == 0);
		CHECK(back.created == 1795820000);
		CHECK_STR(back.rcpts[0].address, "\"john doe\"@example.com");
		queue_envelope_free(&back);
	}

	/* Refusals of load. */
	errno = 0;
	CHECK(queue_envelope_load(qdir, "00000000000000BB", &back, err,
	    sizeof(err)) == -1 && errno == ENOENT);
	CHECK(queue_envelope_load(qdir, "../etc/passwd", &back, err,
	    sizeof(err)) == -1 && errno == EINVAL);
	CHECK_STR(err, "bad queue id");
	CHECK(queue_envelope_load(qdir, "0123456789abcdef", &back, err,
	    sizeof(err)) == -1 && errno == EINVAL);
	CHECK(queue_envelope_load(qdir, ID "0", &back, err,
	    sizeof(err)) == -1 && errno == EINVAL);
	CHECK(path_join(p, sizeof(p), "%s/00000000000000CC.env", qdir) == 0);
	CHECK(symlink(ID ".env", p) == 0);
	CHECK(queue_envelope_load(qdir, "00000000000000CC", &back, err,
	    sizeof(err)) == -1 && errno == ELOOP);
	CHECK(path_join(p, sizeof(p), "%s/00000000000000DD.env", qdir) == 0);
	CHECK(mkfifo(p, 0600) == 0);
	CHECK(queue_envelope_load(qdir, "00000000000000DD", &back, err,
	    sizeof(err)) == -1 && errno == EINVAL);
	CHECK(strstr(err, "not a regular file") != NULL);
	/* A file that says another id than its name. */
	{
		char *t;
		size_t len;

		t = queue_envelope_format(&env, &len);
		write_file("00000000000000EE.env", t, len);
		free(t);
		CHECK(queue_envelope_load(qdir, "00000000000000EE", &back, err,
		    sizeof(err)) == -1 && errno == EINVAL);
		CHECK(strstr(err, "does not match the file name") != NULL);
		queue_envelope_free(&back);
	}
	/* A parse error keeps its "LINE: what". */
	write_file("00000000000000FF.env", "version 2\nx\n", 12);
	CHECK(queue_envelope_load(qdir, "00000000000000FF", &back, err,
	    sizeof(err)) == -1 && errno == EINVAL);
	CHECK_STR(err, "2: unknown key");
	queue_envelope_free(&back);
	/* Exactly QUEUE_ENVELOPE_MAX bytes is read; one more is refused. */
	{
		int fd;

		CHECK(path_join(p, sizeof(p), "%s/0000000000000100.env",
		    qdir) == 0);
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		CHECK(fd >= 0 && ftruncate(fd, QUEUE_ENVELOPE_MAX) == 0);
		close(fd);
		CHECK(queue_envelope_load(qdir, "0000000000000100", &back, err,
		    sizeof(err)) == -1 && errno == EINVAL);
		CHECK_STR(err, "1: NUL byte");
		fd = open(p, O_WRONLY | O_TRUNC, 0600);
		CHECK(fd >= 0 && ftruncate(fd, QUEUE_ENVELOPE_MAX + 1) == 0);
		close(fd);
		CHECK(queue_envelope_load(qdir, "0000000000000100", &back, err,
		    sizeof(err)) == -1 && errno == EFBIG);
	}
	/* store refuses a bad envelope and a missing directory. */
	memcpy(env.queue_id, "../0123456789ABC", 17);
	CHECK(queue_envelope_store(qdir, &env, err, sizeof(err)) == -1 &&
	    errno == EINVAL);
	memcpy(env.queue_id, ID, 17);
	CHECK(path_join(p, sizeof(p), "%s/missing", qdir) == 0);
	CHECK(queue_envelope_store(p, &env, err, sizeof(err)) == -1 &&
	    errno == ENOENT);
	rm_qdir();
}

/*
 * Two writers storing at once: every load in between sees one of the two
 * complete envelopes (never a mix), and no temp file is left.
 */
static void
test_concurrent_writers(void)
{
	struct queue_envelope env, back;
	char err[256], names[256];
	pid_t pid[2];
	int i, k, status, bad = 0, loads = 0;

	make_qdir();
	full_env(&env);
	CHECK(queue_envelope_store(qdir, &env, err, sizeof(err)) == 0);
	for (k = 0; k < 2; k++) {
		pid[k] = fork();
		if (pid[k] == 0) {
			struct queue_envelope mine;

			full_env(&mine);
			mine.attempts = 1000 + (unsigned)k;
			/* Lengths differ, so a mix would show. */
			mine.auth = k ? "x" : "a-much-longer-user-name@example";
			for (i = 0; i < 300; i++)
				if (queue_envelope_store(qdir, &mine, err,
				    sizeof(err)) == -1)
					_exit(1);
			_exit(0);
		}
	}
	for (i = 0; i < 300; i++) {
		if (queue_envelope_load(qdir, ID, &back, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "concurrent load: %s\n", err);
			bad++;
		} else {
			loads++;
			if (!(back.attempts == 3 ||
			    (back.attempts == 1000 &&
			    strcmp(back.auth, "a-much-longer-user-name@"
			    "example") == 0) ||
			    (back.attempts == 1001 &&
			    strcmp(back.auth, "x") == 0)))
				bad++;
		}
		queue_envelope_free(&back);
	}
	for (k = 0; k < 2; k++) {
		CHECK(waitpid(pid[k], &status, 0) == pid[k]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK(bad == 0 && loads == 300);
	dir_names(names, sizeof(names));
	CHECK_STR(names, ID ".env");
	rm_qdir();
}

int
main(void)
{
	UNIT_RUN(test_xtext_every_byte);
	UNIT_RUN(test_xtext_decode_refusals);
	UNIT_RUN(test_golden_format);
	UNIT_RUN(test_round_trip_fields);
	UNIT_RUN(test_header_example);
	UNIT_RUN(test_v1);
	UNIT_RUN(test_refusals);
	UNIT_RUN(test_limits);
	UNIT_RUN(test_format_refusals);
	UNIT_RUN(test_hostile_bytes);
	UNIT_RUN(test_every_prefix);
	UNIT_RUN(test_done);
	UNIT_RUN(test_store_load);
	UNIT_RUN(test_concurrent_writers);
	return unit_finish();
}
