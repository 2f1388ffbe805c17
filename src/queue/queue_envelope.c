/*
 * Queue envelopes (queue/ID.env): the text recording a queued message's
 * sender and each recipient's state, its untrusted values in xtext (RFC
 * 3461 4) so that no byte they carry adds a line or a field.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "queue/queue_envelope.h"

#define QE_XTEXT_BAD	(-1)
#define QE_XTEXT_OVER	(-2)

enum qe_key {
	QE_KEY_QUEUE_ID,
	QE_KEY_CREATED,
	QE_KEY_SENDER,
	QE_KEY_SMTPUTF8,
	QE_KEY_BODY,
	QE_KEY_ATTEMPTS,
	QE_KEY_NEXT_ATTEMPT,
	QE_KEY_WARNED,
	QE_KEY_AUTH,
	QE_KEY_RECIPIENT,
	QE_KEY_VERSION,
	QE_KEY_COUNT,
};

static const struct {
	const char *name;
	bool in_v1;		/* a key of version 1 files */
	bool required;		/* in a file of its version */
} qe_keys[QE_KEY_COUNT] = {
	[QE_KEY_QUEUE_ID] = { "queue-id", true, true },
	[QE_KEY_CREATED] = { "created", false, true },
	[QE_KEY_SENDER] = { "sender", true, true },
	[QE_KEY_SMTPUTF8] = { "smtputf8", false, true },
	[QE_KEY_BODY] = { "body", false, true },
	[QE_KEY_ATTEMPTS] = { "attempts", false, true },
	[QE_KEY_NEXT_ATTEMPT] = { "next-attempt", false, true },
	[QE_KEY_WARNED] = { "warned", false, true },
	[QE_KEY_AUTH] = { "auth", false, false },
	[QE_KEY_RECIPIENT] = { "recipient", true, false },
	[QE_KEY_VERSION] = { "version", true, false },
};

static const char *const qe_bodies[] = {
	[QUEUE_BODY_7BIT] = "7bit",
	[QUEUE_BODY_8BITMIME] = "8bitmime",
	[QUEUE_BODY_BINARYMIME] = "binarymime",
};

static const char *const qe_states[] = {
	[QUEUE_RCPT_PENDING] = "pending",
	[QUEUE_RCPT_DELIVERED] = "delivered",
	[QUEUE_RCPT_FAILED] = "failed",
};

#define QE_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

struct qe_parser {
	struct queue_envelope *env;
	unsigned version;
	size_t lineno;
	bool seen[QE_KEY_COUNT];
	size_t cap;		/* of env->rcpts */
	char *err;
	size_t errsize;
};

/* Output of queue_envelope_format, bounded so that what is stored loads. */
struct qe_buf {
	char *p;
	size_t len, cap;
	bool over;
};

static const char qe_hex[] = "0123456789ABCDEF";

static bool
qe_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* RFC 3461 4 says "upper case hexadecimal digits": lower case is refused. */
static int
qe_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The decoded length, QE_XTEXT_BAD or QE_XTEXT_OVER. */
static ssize_t
qe_xtext_decode(const char *in, size_t len, char *out, size_t max)
{
	size_t i, o = 0;
	unsigned char c;
	int hi, lo;

	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c == '+') {
			if (len - i < 3 || (hi = qe_hexval(in[i + 1])) < 0 ||
			    (lo = qe_hexval(in[i + 2])) < 0)
				return QE_XTEXT_BAD;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (!qe_xchar(c))
			return QE_XTEXT_BAD;
		if (o == max)
			return QE_XTEXT_OVER;
		out[o++] = (char)c;
	}
	return (ssize_t)o;
}

ssize_t
queue_xtext_decode(const char *in, size_t len, char *out, size_t max)
{
	ssize_t r;

	if (max > SSIZE_MAX)
		max = SSIZE_MAX;
	r = qe_xtext_decode(in, len, out, max);
	return r < 0 ? -1 : r;
}

/* Writes the xtext of in to out (room for 3 * len bytes); the length. */
static size_t
qe_xtext_put(const char *in, size_t len, char *out)
{
	size_t i, o = 0;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (qe_xchar(c))
			out[o++] = (char)c;
		else {
			out[o++] = '+';
			out[o++] = qe_hex[c >> 4];
			out[o++] = qe_hex[c & 0x0f];
		}
	}
	return o;
}

char *
queue_xtext_encode(const char *in, size_t len)
{
	char *out = xreallocarray(NULL, len + 1, 3);

	out[qe_xtext_put(in, len, out)] = '\0';
	return out;
}

static int
qe_fail(struct qe_parser *p, size_t lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
qe_fail(struct qe_parser *p, size_t lineno, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err == NULL || p->errsize == 0)
		return -1;
	n = snprintf(p->err, p->errsize, "%zu: ", lineno);
	if (n >= 0 && (size_t)n < p->errsize) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errsize - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool
qe_is(const char *v, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(v, word, len) == 0;
}

/* Decimal digits only: no sign, no leading zero, nothing over max. */
static bool
qe_number(const char *v, size_t len, uint64_t max, uint64_t *out_r)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0 || (len > 1 && v[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		if (n > (max - (uint64_t)(v[i] - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out_r = n;
	return true;
}

/* RFC 3463 2: class "." subject "." detail, as smtp_reply.h takes it. */
static bool
qe_status_valid(const char *v, size_t len)
{
	size_t i = 1, part, digits;

	if (len < 5 || (v[0] != '2' && v[0] != '4' && v[0] != '5'))
		return false;
	for (part = 0; part < 2; part++) {
		if (i >= len || v[i++] != '.')
			return false;
		for (digits = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return false;
	}
	return i == len;
}

/* Decodes an xtext value into a new string; "what" names it in errors. */
static int
qe_text(struct qe_parser *p, const char *v, size_t len, size_t max,
    const char *what, char **out_r)
{
	char *s = xmalloc((len < max ? len : max) + 1);
	ssize_t n;

	n = qe_xtext_decode(v, len, s, max);
	if (n == QE_XTEXT_OVER) {
		free(s);
		return qe_fail(p, p->lineno, "%s over %zu bytes", what, max);
	}
	if (n < 0) {
		free(s);
		return qe_fail(p, p->lineno, "bad xtext in %s", what);
	}
	if (memchr(s, '\0', (size_t)n) != NULL) {
		free(s);
		return qe_fail(p, p->lineno, "NUL byte in %s", what);
	}
	s[n] = '\0';
	*out_r = s;
	return 0;
}

/* A version 1 "<ADDR>", taken verbatim. */
static int
qe_v1_path(struct qe_parser *p, const char *v, size_t len, const char *what,
    char **out_r)
{
	char *s;

	if (len < 2 || v[0] != '<' || v[len - 1] != '>')
		return qe_fail(p, p->lineno, "%s not in <>", what);
	if (len - 2 > QUEUE_ADDRESS_MAX)
		return qe_fail(p, p->lineno, "%s over %d bytes", what,
		    QUEUE_ADDRESS_MAX);
	s = xmalloc(len - 1);
	memcpy(s, v + 1, len - 2);
	s[len - 2] = '\0';
	*out_r = s;
	return 0;
}

/* REMOTE or DIAGNOSTIC: "-" for none. */
static int
qe_optional(struct qe_parser *p, const char *v, size_t len, size_t max,
    const char *what, char **out_r)
{
	if (qe_is(v, len, "-"))
		return 0;
	return qe_text(p, v, len, max, what, out_r);
}

static struct queue_rcpt *
qe_add_rcpt(struct qe_parser *p)
{
	struct queue_envelope *env = p->env;

	if (env->n_rcpts == QUEUE_RECIPIENTS_MAX)
		return NULL;
	if (env->n_rcpts == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		if (p->cap > QUEUE_RECIPIENTS_MAX)
			p->cap = QUEUE_RECIPIENTS_MAX;
		env->rcpts = xreallocarray(env->rcpts, p->cap,
		    sizeof(*env->rcpts));
	}
	memset(&env->rcpts[env->n_rcpts], 0, sizeof(*env->rcpts));
	return &env->rcpts[env->n_rcpts++];
}

/* "ADDRESS STATE [TIME REMOTE STATUS DIAGNOSTIC]" of version 2. */
static int
qe_recipient(struct qe_parser *p, struct queue_rcpt *r, const char *v,
    size_t len)
{
	const char *f[6], *sp, *end = v + len;
	size_t fl[6], nf = 0, i;
	uint64_t t;

	while (v <= end) {
		sp = memchr(v, ' ', (size_t)(end - v));
		if (nf == QE_NELEM(f))
			return qe_fail(p, p->lineno, "recipient has more than "
			    "6 fields");
		f[nf] = v;
		fl[nf] = (size_t)((sp != NULL ? sp : end) - v);
		if (fl[nf] == 0)
			return qe_fail(p, p->lineno, "empty field in "
			    "recipient");
		nf++;
		if (sp == NULL)
			break;
		v = sp + 1;
	}
	if (nf != 2 && nf != 6)
		return qe_fail(p, p->lineno, "recipient has %zu fields, not 2 "
		    "or 6", nf);
	if (qe_text(p, f[0], fl[0], QUEUE_ADDRESS_MAX, "recipient address",
	    &r->address) == -1)
		return -1;
	if (r->address[0] == '\0')
		return qe_fail(p, p->lineno, "empty recipient address");
	for (i = 0; i < QE_NELEM(qe_states); i++)
		if (qe_is(f[1], fl[1], qe_states[i]))
			break;
	if (i == QE_NELEM(qe_states))
		return qe_fail(p, p->lineno, "bad recipient state");
	r->state = (enum queue_rcpt_state)i;
	if (nf == 2) {
		if (r->state != QUEUE_RCPT_PENDING)
			return qe_fail(p, p->lineno, "%s recipient without "
			    "time, remote, status and diagnostic",
			    qe_states[r->state]);
		return 0;
	}
	if (!qe_number(f[2], fl[2], UINT64_MAX, &t))
		return qe_fail(p, p->lineno, "bad recipient time");
	r->time = t;
	if (qe_optional(p, f[3], fl[3], QUEUE_ADDRESS_MAX, "recipient remote",
	    &r->remote) == -1)
		return -1;
	if (!qe_is(f[4], fl[4], "-")) {
		if (!qe_status_valid(f[4], fl[4]))
			return qe_fail(p, p->lineno, "bad recipient status");
		memcpy(r->status, f[4], fl[4]);
		r->status[fl[4]] = '\0';
	}
	return qe_optional(p, f[5], fl[5], QUEUE_DIAGNOSTIC_MAX,
	    "recipient diagnostic", &r->diagnostic);
}

static int
qe_bool(struct qe_parser *p, const char *v, size_t len, const char *what,
    bool *out_r)
{
	if (qe_is(v, len, "yes"))
		*out_r = true;
	else if (qe_is(v, len, "no"))
		*out_r = false;
	else
		return qe_fail(p, p->lineno, "%s is not yes or no", what);
	return 0;
}

/* One "KEY VALUE" line after the version line. */
static int
qe_line(struct qe_parser *p, const char *line, size_t n)
{
	struct queue_envelope *env = p->env;
	const char *sp = memchr(line, ' ', n), *v;
	size_t klen = sp != NULL ? (size_t)(sp - line) : n, len, k;
	struct queue_rcpt *r;
	uint64_t u;

	for (k = 0; k < QE_KEY_COUNT; k++)
		if ((p->version == 2 || qe_keys[k].in_v1) &&
		    qe_is(line, klen, qe_keys[k].name))
			break;
	if (k == QE_KEY_COUNT)
		return qe_fail(p, p->lineno, "unknown key");
	if (k == QE_KEY_VERSION || (k != QE_KEY_RECIPIENT && p->seen[k]))
		return qe_fail(p, p->lineno, "repeated %s", qe_keys[k].name);
	p->seen[k] = true;
	if (sp == NULL)
		return qe_fail(p, p->lineno, "%s without a value",
		    qe_keys[k].name);
	v = sp + 1;
	len = n - klen - 1;

	switch ((enum qe_key)k) {
	case QE_KEY_QUEUE_ID:
		if (len != sizeof(env->queue_id) - 1)
			return qe_fail(p, p->lineno, "bad queue-id");
		memcpy(env->queue_id, v, len);
		env->queue_id[len] = '\0';
		if (!queue_id_valid(env->queue_id))
			return qe_fail(p, p->lineno, "bad queue-id");
		return 0;
	case QE_KEY_CREATED:
		if (!qe_number(v, len, UINT64_MAX, &env->created))
			return qe_fail(p, p->lineno, "bad created");
		return 0;
	case QE_KEY_SENDER:
		if (p->version == 1)
			return qe_v1_path(p, v, len, "sender", &env->sender);
		return qe_text(p, v, len, QUEUE_ADDRESS_MAX, "sender",
		    &env->sender);
	case QE_KEY_SMTPUTF8:
		return qe_bool(p, v, len, "smtputf8", &env->smtputf8);
	case QE_KEY_BODY:
		for (k = 0; k < QE_NELEM(qe_bodies); k++)
			if (qe_is(v, len, qe_bodies[k]))
				break;
		if (k == QE_NELEM(qe_bodies))
			return qe_fail(p, p->lineno, "bad body");
		env->body = (enum queue_body)k;
		return 0;
	case QE_KEY_ATTEMPTS:
		if (!qe_number(v, len, UINT_MAX, &u))
			return qe_fail(p, p->lineno, "bad attempts");
		env->attempts = (unsigned)u;
		return 0;
	case QE_KEY_NEXT_ATTEMPT:
		if (!qe_number(v, len, UINT64_MAX, &env->next_attempt))
			return qe_fail(p, p->lineno, "bad next-attempt");
		return 0;
	case QE_KEY_WARNED:
		return qe_bool(p, v, len, "warned", &env->warned);
	case QE_KEY_AUTH:
		return qe_text(p, v, len, QUEUE_ADDRESS_MAX, "auth",
		    &env->auth);
	case QE_KEY_RECIPIENT:
		if ((r = qe_add_rcpt(p)) == NULL)
			return qe_fail(p, p->lineno, "more than %d recipients",
			    QUEUE_RECIPIENTS_MAX);
		if (p->version == 2)
			return qe_recipient(p, r, v, len);
		if (qe_v1_path(p, v, len, "recipient", &r->address) == -1)
			return -1;
		if (r->address[0] == '\0')
			return qe_fail(p, p->lineno, "empty recipient "
			    "address");
		return 0;
	case QE_KEY_VERSION:
	case QE_KEY_COUNT:
		break;
	}
	return qe_fail(p, p->lineno, "unknown key");
}

static bool
qe_has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s > 127)
			return true;
	return false;
}

/* What a version 1 file does not say, inferred as the header explains. */
static void
qe_v1_defaults(struct queue_envelope *env, uint64_t created_v1)
{
	size_t i;

	env->created = created_v1;
	env->body = QUEUE_BODY_8BITMIME;
	env->smtputf8 = qe_has_8bit(env->sender);
	for (i = 0; i < env->n_rcpts; i++)
		if (qe_has_8bit(env->rcpts[i].address))
			env->smtputf8 = true;
}

int
queue_envelope_parse(const char *text, size_t len, uint64_t created_v1,
    struct queue_envelope *env, char *err, size_t errsize)
{
	struct qe_parser p = {
		.env = env, .err = err, .errsize = errsize,
	};
	const char *line = text, *end = text + len, *nl;
	size_t n, k;

	memset(env, 0, sizeof(*env));
	if (err != NULL && errsize > 0)
		err[0] = '\0';
	if (len == 0)
		return qe_fail(&p, 1, "empty envelope");
	for (p.lineno = 1; line < end; p.lineno++, line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		n = (size_t)((nl != NULL ? nl : end) - line);
		if (memchr(line, '\0', n) != NULL)
			return qe_fail(&p, p.lineno, "NUL byte");
		if (nl == NULL)
			return qe_fail(&p, p.lineno, "line without its LF");
		if (p.lineno > 1) {
			if (qe_line(&p, line, n) == -1)
				return -1;
		} else if (qe_is(line, n, "version 1"))
			p.version = 1;
		else if (qe_is(line, n, "version 2"))
			p.version = 2;
		else
			return qe_fail(&p, 1, "%s", n >= 8 &&
			    memcmp(line, "version ", 8) == 0 ?
			    "unsupported version" : "no version line");
	}
	for (k = 0; k < QE_KEY_COUNT; k++)
		if (qe_keys[k].required && !p.seen[k] &&
		    (p.version == 2 || qe_keys[k].in_v1))
			return qe_fail(&p, p.lineno, "missing %s",
			    qe_keys[k].name);
	if (env->n_rcpts == 0)
		return qe_fail(&p, p.lineno, "no recipient");
	if (p.version == 1)
		qe_v1_defaults(env, created_v1);
	return 0;
}

static void
qe_put(struct qe_buf *b, const char *s, size_t n)
{
	if (b->over)
		return;
	if (n > QUEUE_ENVELOPE_MAX - b->len) {
		b->over = true;
		return;
	}
	if (b->len + n > b->cap) {
		while (b->len + n > b->cap)
			b->cap = b->cap ? b->cap * 2 : 1024;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
qe_puts(struct qe_buf *b, const char *s)
{
	qe_put(b, s, strlen(s));
}

static void
qe_put_u64(struct qe_buf *b, uint64_t u)
{
	char num[24];

	qe_put(b, num, (size_t)snprintf(num, sizeof(num), "%" PRIu64, u));
}

static void
qe_put_xtext(struct qe_buf *b, const char *s)
{
	char enc[3 * QUEUE_DIAGNOSTIC_MAX];
	size_t len = strlen(s);

	/* Callers checked len against QUEUE_DIAGNOSTIC_MAX or less. */
	qe_put(b, enc, qe_xtext_put(s, len, enc));
}

/* REMOTE or DIAGNOSTIC: none is "-", so a "-" itself is "+2D". */
static void
qe_put_optional(struct qe_buf *b, const char *s)
{
	if (s == NULL || s[0] == '\0')
		qe_puts(b, "-");
	else if (strcmp(s, "-") == 0)
		qe_puts(b, "+2D");
	else
		qe_put_xtext(b, s);
}

static bool
qe_text_ok(const char *s, size_t max, bool may_be_empty)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strnlen(s, max + 1);
	return len <= max && (may_be_empty || len > 0);
}

/* Whether parse would take env back: format refuses what it could not. */
static bool
qe_format_ok(const struct queue_envelope *env)
{
	const struct queue_rcpt *r;
	size_t i, slen;

	if (!queue_id_valid(env->queue_id) ||
	    !qe_text_ok(env->sender, QUEUE_ADDRESS_MAX, true) ||
	    (env->auth != NULL &&
	    !qe_text_ok(env->auth, QUEUE_ADDRESS_MAX, true)) ||
	    (unsigned)env->body >= QE_NELEM(qe_bodies) ||
	    env->rcpts == NULL || env->n_rcpts == 0 ||
	    env->n_rcpts > QUEUE_RECIPIENTS_MAX)
		return false;
	for (i = 0; i < env->n_rcpts; i++) {
		r = &env->rcpts[i];
		slen = strnlen(r->status, sizeof(r->status));
		if (!qe_text_ok(r->address, QUEUE_ADDRESS_MAX, false) ||
		    (unsigned)r->state >= QE_NELEM(qe_states) ||
		    (r->remote != NULL &&
		    !qe_text_ok(r->remote, QUEUE_ADDRESS_MAX, true)) ||
		    (r->diagnostic != NULL &&
		    !qe_text_ok(r->diagnostic, QUEUE_DIAGNOSTIC_MAX, true)) ||
		    slen == sizeof(r->status) ||
		    (slen > 0 && !qe_status_valid(r->status, slen)))
			return false;
	}
	return true;
}

char *
queue_envelope_format(const struct queue_envelope *env, size_t *len_r)
{
	struct qe_buf b = { 0 };
	const struct queue_rcpt *r;
	size_t i;

	if (!qe_format_ok(env))
		return NULL;
	qe_puts(&b, "version 2\nqueue-id ");
	qe_puts(&b, env->queue_id);
	qe_puts(&b, "\ncreated ");
	qe_put_u64(&b, env->created);
	qe_puts(&b, "\nsender ");
	qe_put_xtext(&b, env->sender);
	qe_puts(&b, env->smtputf8 ? "\nsmtputf8 yes" : "\nsmtputf8 no");
	qe_puts(&b, "\nbody ");
	qe_puts(&b, qe_bodies[env->body]);
	qe_puts(&b, "\nattempts ");
	qe_put_u64(&b, env->attempts);
	qe_puts(&b, "\nnext-attempt ");
	qe_put_u64(&b, env->next_attempt);
	qe_puts(&b, env->warned ? "\nwarned yes\n" : "\nwarned no\n");
	if (env->auth != NULL) {
		qe_puts(&b, "auth ");
		qe_put_xtext(&b, env->auth);
		qe_puts(&b, "\n");
	}
	for (i = 0; i < env->n_rcpts; i++) {
		r = &env->rcpts[i];
		qe_puts(&b, "recipient ");
		qe_put_xtext(&b, r->address);
		qe_puts(&b, " ");
		qe_puts(&b, qe_states[r->state]);
		if (r->state != QUEUE_RCPT_PENDING || r->time != 0 ||
		    (r->remote != NULL && r->remote[0] != '\0') ||
		    r->status[0] != '\0' ||
		    (r->diagnostic != NULL && r->diagnostic[0] != '\0')) {
			qe_puts(&b, " ");
			qe_put_u64(&b, r->time);
			qe_puts(&b, " ");
			qe_put_optional(&b, r->remote);
			qe_puts(&b, " ");
			qe_puts(&b, r->status[0] != '\0' ? r->status : "-");
			qe_puts(&b, " ");
			qe_put_optional(&b, r->diagnostic);
		}
		qe_puts(&b, "\n");
	}
	if (b.over) {
		free(b.p);
		return NULL;
	}
	*len_r = b.len;
	return b.p;
}

void
queue_envelope_free(struct queue_envelope *env)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; i < env->n_rcpts; i++) {
		free(env->rcpts[i].address);
		free(env->rcpts[i].remote);
		free(env->rcpts[i].diagnostic);
	}
	free(env->rcpts);
	free(env->sender);
	free(env->auth);
	memset(env, 0, sizeof(*env));
}

bool
queue_envelope_done(const struct queue_envelope *env)
{
	size_t i;

	for (i = 0; i < env->n_rcpts; i++)
		if (env->rcpts[i].state == QUEUE_RCPT_PENDING)
			return false;
	return true;
}

static int
qe_err(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
qe_err(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errsize > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errsize, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Reads all of fd, at most QUEUE_ENVELOPE_MAX bytes. */
static int
qe_read(int fd, size_t hint, char **text_r, size_t *len_r)
{
	size_t cap = hint + 1, len = 0;
	char *buf;
	ssize_t r;

	if (cap > QUEUE_ENVELOPE_MAX + 1)
		cap = QUEUE_ENVELOPE_MAX + 1;
	buf = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap == QUEUE_ENVELOPE_MAX + 1) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			cap = cap * 2 > QUEUE_ENVELOPE_MAX + 1 ?
			    QUEUE_ENVELOPE_MAX + 1 : cap * 2;
			buf = xreallocarray(buf, cap, 1);
		}
		r = read(fd, buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			int saved = errno;

			free(buf);
			errno = saved;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > QUEUE_ENVELOPE_MAX) {
		free(buf);
		errno = EFBIG;
		return -1;
	}
	*text_r = buf;
	*len_r = len;
	return 0;
}

int
queue_envelope_load(const char *queue_dir, const char *queue_id,
    struct queue_envelope *env, char *err, size_t errsize)
{
	char path[PATH_MAX], *text;
	struct stat st;
	size_t len;
	int fd, saved, r;

	memset(env, 0, sizeof(*env));
	if (!queue_id_valid(queue_id)) {
		qe_err(err, errsize, "bad queue id");
		errno = EINVAL;
		return -1;
	}
	if (path_join(path, sizeof(path), "%s/%s.env", queue_dir,
	    queue_id) == -1) {
		qe_err(err, errsize, "%s/%s.env: path too long", queue_dir,
		    queue_id);
		errno = ENAMETOOLONG;
		return -1;
	}
	/* O_NONBLOCK: a FIFO planted under the name must not block us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1 || fstat(fd, &st) == -1) {
		saved = errno;
		if (fd != -1)
			close(fd);
		qe_err(err, errsize, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		qe_err(err, errsize, "%s: not a regular file", path);
		errno = EINVAL;
		return -1;
	}
	if (st.st_size > QUEUE_ENVELOPE_MAX ||
	    qe_read(fd, (size_t)st.st_size, &text, &len) == -1) {
		saved = st.st_size > QUEUE_ENVELOPE_MAX ? EFBIG : errno;
		close(fd);
		if (saved == EFBIG)
			qe_err(err, errsize, "%s: over %d bytes", path,
			    QUEUE_ENVELOPE_MAX);
		else
			qe_err(err, errsize, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	close(fd);
	r = queue_envelope_parse(text, len, st.st_mtim.tv_sec > 0 ?
	    (uint64_t)st.st_mtim.tv_sec : 0, env, err, errsize);
	free(text);
	if (r == 0 && strcmp(env->queue_id, queue_id) != 0)
		r = qe_err(err, errsize, "%s: queue-id %s does not match the "
		    "file name", path, env->queue_id);
	if (r == -1)
		errno = EINVAL;
	return r;
}

int
queue_envelope_store(const char *queue_dir,
    const struct queue_envelope *env, char *err, size_t errsize)
{
	char path[PATH_MAX], tmp[PATH_MAX], unique[17], *text;
	size_t len;
	int fd, saved;

	if ((text = queue_envelope_format(env, &len)) == NULL) {
		qe_err(err, errsize, "envelope has a field over its limit or "
		    "out of range");
		errno = EINVAL;
		return -1;
	}
	queue_id_new(unique);
	if (path_join(path, sizeof(path), "%s/%s.env", queue_dir,
	    env->queue_id) == -1 || path_join(tmp, sizeof(tmp), "%s.tmp.%s",
	    path, unique) == -1) {
		free(text);
		qe_err(err, errsize, "%s/%s.env: path too long", queue_dir,
		    env->queue_id);
		errno = ENAMETOOLONG;
		return -1;
	}
	/* A name of its own (O_EXCL): a second writer cannot truncate or
	 * interleave with this one's bytes before the rename. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		saved = errno;
		free(text);
		qe_err(err, errsize, "%s: %s", tmp, strerror(saved));
		errno = saved;
		return -1;
	}
	if (write_all(fd, text, len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		goto fail;
	}
	free(text);
	text = NULL;
	if (close(fd) == -1) {
		saved = errno;
		goto fail;
	}
	if (rename(tmp, path) == -1) {
		saved = errno;
		goto fail;
	}
	if (fsync_dir(queue_dir) == -1) {
		/* Renamed, but not known to survive a crash: the caller
		 * must not act on it as if it were durable. */
		saved = errno;
		qe_err(err, errsize, "%s: fsync: %s", queue_dir,
		    strerror(saved));
		errno = saved;
		return -1;
	}
	return 0;
fail:
	free(text);
	(void)unlink(tmp);
	qe_err(err, errsize, "%s: %s", tmp, strerror(saved));
	errno = saved;
	return -1;
}
