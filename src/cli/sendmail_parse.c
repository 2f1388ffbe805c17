/*
 * The pure parts of `tegami sendmail` (sendmail_parse.h): the sendmail(8)
 * command line, RFC 5322 3.4 address lists, CRLF line making (RFC 5322
 * 2.1, 2.3) and the header section (3.6; RFC 2047 for a non-ASCII name).
 */
#include "cli/sendmail_parse.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "core/util.h"

/* ---- The command line -------------------------------------------------- */

/* getopt letters that take a value (attached or the next argument). */
static const char opt_with_value[] = "ABCFLNORVXbfhopqr";
/* Letters accepted and ignored, without a value. */
static const char opt_ignored_flag[] = "GUmn";
/* Letters whose value is accepted and ignored. */
static const char opt_ignored_value[] = "ABLNORVXhp";

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int
option_value(char letter, const char *value, struct sendmail_options *o,
    char *err, size_t errsize)
{
	if (strchr(opt_ignored_value, letter) != NULL)
		return 0;
	switch (letter) {
	case 'f':
	case 'r':
		o->sender = value;
		return 0;
	case 'F':
		if (strlen(value) > SENDMAIL_NAME_MAX || has_control(value)) {
			set_err(err, errsize, "-F: the full name must be at "
			    "most %d octets without control characters",
			    SENDMAIL_NAME_MAX);
			return -1;
		}
		o->full_name = value;
		return 0;
	case 'b':
		if (strcmp(value, "m") == 0)
			o->mode = SENDMAIL_MODE_DELIVER;
		else if (strcmp(value, "i") == 0)
			o->mode = SENDMAIL_MODE_NOOP;
		else {
			set_err(err, errsize, "-b%s is not supported (only "
			    "-bm, and -bi which does nothing)", value);
			return -1;
		}
		return 0;
	case 'o':
		/* Sendmail's "-oXvalue" options: only -oi means anything
		 * here; the rest (-oem, -odi, -odb, -oQ...) are ignored
		 * as Postfix does. */
		if (value[0] == 'i' && value[1] == '\0')
			o->ignore_dots = true;
		return 0;
	case 'q':
		set_err(err, errsize, "-q%s is not supported (tegami queue "
		    "flush delivers the queue)", value);
		return -1;
	case 'C':
		set_err(err, errsize, "-C is not supported (set TEGAMI_CONFIG "
		    "or use tegami -c CONF sendmail)");
		return -1;
	}
	set_err(err, errsize, "-%c: unknown option", letter);
	return -1;
}

int
sendmail_options_parse(int argc, char **argv, struct sendmail_options *o,
    char *err, size_t errsize)
{
	bool options_done = false;
	int i;

	memset(o, 0, sizeof(*o));
	if (argc > 1)
		o->rcpt_args = xreallocarray(NULL, (size_t)argc,
		    sizeof(*o->rcpt_args));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *p;

		if (options_done || a[0] != '-' || a[1] == '\0') {
			if (a[0] == '-' && !options_done) {
				set_err(err, errsize, "\"-\" is not an "
				    "option or an address");
				return -1;
			}
			o->rcpt_args[o->n_rcpt_args++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		for (p = a + 1; *p != '\0'; p++) {
			char letter = *p;
			const char *value;

			if (strchr(opt_with_value, letter) != NULL) {
				if (p[1] != '\0')
					value = p + 1;
				else if (letter == 'o' || letter == 'b') {
					/* never a separate value: "-o x"
					 * would eat a recipient */
					set_err(err, errsize, "-%c needs a "
					    "letter after it", letter);
					return -1;
				} else if (letter == 'q')
					value = "";
				else if (i + 1 < argc)
					value = argv[++i];
				else {
					set_err(err, errsize, "-%c needs a "
					    "value", letter);
					return -1;
				}
				if (option_value(letter, value, o, err,
				    errsize) < 0)
					return -1;
				break;	/* the value used the rest */
			}
			switch (letter) {
			case 't':
				o->extract = true;
				break;
			case 'i':
				o->ignore_dots = true;
				break;
			case 'v':
				o->verbose = true;
				break;
			case 'I':
				o->mode = SENDMAIL_MODE_NOOP;
				break;
			default:
				if (strchr(opt_ignored_flag, letter) != NULL)
					break;
				if ((unsigned char)letter < 0x21 ||
				    (unsigned char)letter > 0x7e)
					set_err(err, errsize, "-\\x%02x: "
					    "unknown option",
					    (unsigned char)letter);
				else
					set_err(err, errsize, "-%c: unknown "
					    "option", letter);
				return -1;
			}
		}
	}
	return 0;
}

void
sendmail_options_free(struct sendmail_options *o)
{
	free(o->rcpt_args);
	o->rcpt_args = NULL;
	o->n_rcpt_args = 0;
}

/* ---- Address lists (RFC 5322 3.4, 3.2) --------------------------------- */

enum tok_type {
	TOK_END = 0,
	TOK_ATOM,
	TOK_QSTRING,	/* text: the quoted-string's content, raw */
	TOK_DLITERAL,	/* text: "[...]" whole */
	TOK_SPECIAL,	/* c: one of ()<>[]:;@\,. that starts no token */
	TOK_ERROR,
};

struct tok {
	enum tok_type type;
	const char *p;
	size_t len;
	char c;
};

struct lexer {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errsize;
};

static bool
is_atext(unsigned char c)
{
	return c != '\0' && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80 ||
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool
is_bad_byte(unsigned char c)
{
	return c == 0 || (c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
	    c == 0x7f;
}

/* Skips white space and comments (nested, with quoted pairs). */
static int
lex_cfws(struct lexer *lx)
{
	size_t depth = 0;

	while (lx->pos < lx->len) {
		unsigned char c = (unsigned char)lx->s[lx->pos];

		if (is_bad_byte(c)) {
			set_err(lx->err, lx->errsize, "a control character "
			    "or NUL at offset %zu", lx->pos);
			return -1;
		}
		if (depth > 0) {
			if (c == '\\') {
				if (lx->pos + 1 >= lx->len)
					break;
				lx->pos++;
				if (is_bad_byte((unsigned char)
				    lx->s[lx->pos])) {
					set_err(lx->err, lx->errsize, "a "
					    "control character or NUL at "
					    "offset %zu", lx->pos);
					return -1;
				}
			} else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			lx->pos++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			lx->pos++;
		else if (c == '(') {
			depth = 1;
			lx->pos++;
		} else
			return 0;
	}
	if (depth > 0) {
		set_err(lx->err, lx->errsize, "a comment without its \")\"");
		return -1;
	}
	return 0;
}

static struct tok
lex_next(struct lexer *lx)
{
	struct tok t = { .type = TOK_ERROR };
	size_t start;
	unsigned char c;

	if (lex_cfws(lx) < 0)
		return t;
	if (lx->pos >= lx->len) {
		t.type = TOK_END;
		return t;
	}
	start = lx->pos;
	c = (unsigned char)lx->s[start];
	if (is_atext(c)) {
		while (lx->pos < lx->len &&
		    is_atext((unsigned char)lx->s[lx->pos]))
			lx->pos++;
		t.type = TOK_ATOM;
		t.p = lx->s + start;
		t.len = lx->pos - start;
		return t;
	}
	if (c == '"' || c == '[') {
		char close = c == '"' ? '"' : ']';

		for (lx->pos++; lx->pos < lx->len; lx->pos++) {
			c = (unsigned char)lx->s[lx->pos];
			if (is_bad_byte(c))
				break;
			if (c == '\\') {
				if (++lx->pos >= lx->len ||
				    is_bad_byte((unsigned char)
				    lx->s[lx->pos]))
					break;
				continue;
			}
			if (close == ']' && c == '[')
				break;
			if (c == (unsigned char)close) {
				lx->pos++;
				t.type = close == '"' ? TOK_QSTRING :
				    TOK_DLITERAL;
				t.p = lx->s + start + (close == '"');
				t.len = lx->pos - start - 2 * (close == '"');
				return t;
			}
		}
		set_err(lx->err, lx->errsize, close == '"' ? "a quoted "
		    "string without its end" : "a domain literal without "
		    "its \"]\"");
		return t;
	}
	if (strchr("<>:;@,.", c) != NULL) {
		lx->pos++;
		t.type = TOK_SPECIAL;
		t.c = (char)c;
		return t;
	}
	set_err(lx->err, lx->errsize, "unexpected \"%c\" at offset %zu",
	    c >= 0x21 && c < 0x7f ? c : '?', start);
	return t;
}

static struct tok
lex_peek(struct lexer *lx)
{
	size_t save = lx->pos;
	struct tok t = lex_next(lx);

	lx->pos = save;
	return t;
}

static bool
tok_is(const struct tok *t, char c)
{
	return t->type == TOK_SPECIAL && t->c == c;
}

/* Appends the decoded text of a word (atom or quoted string) to buf. */
static int
word_append(const struct tok *t, char *buf, size_t bufsize, size_t *n)
{
	size_t i;

	for (i = 0; i < t->len; i++) {
		char c = t->p[i];

		if (t->type == TOK_QSTRING) {
			if (c == '\\' && i + 1 < t->len)
				c = t->p[++i];
			else if (c == '\r' || c == '\n')
				continue;	/* folding inside quotes */
		}
		if (*n + 1 >= bufsize)
			return -1;
		buf[(*n)++] = c;
	}
	buf[*n] = '\0';
	return 0;
}

/*
 * local-part ["@" domain]: word *("." word) then dot-atom or a domain
 * literal. The lexer has skipped CFWS between the pieces, as the obsolete
 * syntax (4.4) allows.
 */
static int
parse_addr_spec(struct lexer *lx, struct sendmail_mailbox *mb)
{
	struct tok t;
	size_t n = 0;

	memset(mb, 0, sizeof(*mb));
	for (;;) {
		t = lex_next(lx);
		if (t.type != TOK_ATOM && t.type != TOK_QSTRING) {
			if (t.type != TOK_ERROR)
				set_err(lx->err, lx->errsize, "expected an "
				    "address at offset %zu", lx->pos);
			return -1;
		}
		if (word_append(&t, mb->local, sizeof(mb->local), &n) < 0) {
			set_err(lx->err, lx->errsize, "a local part over %d "
			    "octets", SMTP_LOCALPART_MAX);
			return -1;
		}
		t = lex_peek(lx);
		if (!tok_is(&t, '.'))
			break;
		lex_next(lx);
		if (n + 1 >= sizeof(mb->local)) {
			set_err(lx->err, lx->errsize, "a local part over %d "
			    "octets", SMTP_LOCALPART_MAX);
			return -1;
		}
		mb->local[n++] = '.';
		mb->local[n] = '\0';
	}
	if (t.type == TOK_ERROR)
		return -1;
	if (n == 0) {
		set_err(lx->err, lx->errsize, "an empty local part");
		return -1;
	}
	if (!tok_is(&t, '@'))
		return 0;
	lex_next(lx);
	n = 0;
	t = lex_next(lx);
	if (t.type == TOK_DLITERAL) {
		if (t.len > SMTP_DOMAIN_MAX) {
			set_err(lx->err, lx->errsize, "a domain over %d "
			    "octets", SMTP_DOMAIN_MAX);
			return -1;
		}
		memcpy(mb->domain, t.p, t.len);
		mb->domain[t.len] = '\0';
		return 0;
	}
	for (;;) {
		if (t.type != TOK_ATOM) {
			if (t.type != TOK_ERROR)
				set_err(lx->err, lx->errsize, "expected a "
				    "domain at offset %zu", lx->pos);
			return -1;
		}
		/* the label, and later a dot, must leave room for the NUL */
		if (n + t.len >= sizeof(mb->domain)) {
			set_err(lx->err, lx->errsize, "a domain over %d "
			    "octets", SMTP_DOMAIN_MAX);
			return -1;
		}
		memcpy(mb->domain + n, t.p, t.len);
		n += t.len;
		mb->domain[n] = '\0';
		t = lex_peek(lx);
		if (t.type == TOK_ERROR)
			return -1;
		if (!tok_is(&t, '.'))
			return 0;
		lex_next(lx);
		if (n + 1 >= sizeof(mb->domain)) {
			set_err(lx->err, lx->errsize, "a domain over %d "
			    "octets", SMTP_DOMAIN_MAX);
			return -1;
		}
		mb->domain[n++] = '.';
		mb->domain[n] = '\0';
		t = lex_next(lx);
	}
}

enum address_kind { KIND_ADDR_SPEC, KIND_NAME_ADDR, KIND_GROUP };

/* Which kind of address starts here: the first of "<" (name-addr), ":"
 * (group), or "," ";" ">" or the end (a bare addr-spec). */
static int
address_kind(struct lexer *lx, enum address_kind *kind_r)
{
	size_t save = lx->pos;
	struct tok t;
	int rc = 0;

	for (;;) {
		t = lex_next(lx);
		if (t.type == TOK_ERROR) {
			rc = -1;
			break;
		}
		if (tok_is(&t, '<')) {
			*kind_r = KIND_NAME_ADDR;
			break;
		}
		if (tok_is(&t, ':')) {
			*kind_r = KIND_GROUP;
			break;
		}
		if (t.type == TOK_END || tok_is(&t, ',') || tok_is(&t, ';') ||
		    tok_is(&t, '>')) {
			*kind_r = KIND_ADDR_SPEC;
			break;
		}
	}
	lx->pos = save;
	return rc;
}

static int
list_add(struct sendmail_addrs *list, size_t max,
    const struct sendmail_mailbox *mb, struct lexer *lx)
{
	if (list->n >= max) {
		set_err(lx->err, lx->errsize, "more than %zu addresses", max);
		return -1;
	}
	if (list->n == list->cap) {
		list->cap = list->cap == 0 ? 8 : 2 * list->cap;
		list->v = xreallocarray(list->v, list->cap, sizeof(*list->v));
	}
	list->v[list->n++] = *mb;
	return 0;
}

/* A mailbox (name-addr or addr-spec), appended to list. */
static int
parse_mailbox(struct lexer *lx, enum address_kind kind,
    struct sendmail_addrs *list, size_t max)
{
	struct sendmail_mailbox mb;
	struct tok t;

	if (kind == KIND_ADDR_SPEC) {
		if (parse_addr_spec(lx, &mb) < 0)
			return -1;
		return list_add(list, max, &mb, lx);
	}
	/* The display name, whatever it holds, up to the "<". */
	do {
		t = lex_next(lx);
		if (t.type == TOK_ERROR || t.type == TOK_END)
			return -1;	/* END: address_kind saw a "<" */
	} while (!tok_is(&t, '<'));
	/* obs-route: "@a,@b:" before the address, dropped (RFC 5322 4.4) */
	t = lex_peek(lx);
	if (tok_is(&t, '@')) {
		do {
			t = lex_next(lx);
			if (t.type == TOK_ERROR || t.type == TOK_END) {
				if (t.type == TOK_END)
					set_err(lx->err, lx->errsize, "a "
					    "route without its \":\"");
				return -1;
			}
		} while (!tok_is(&t, ':'));
	}
	if (parse_addr_spec(lx, &mb) < 0)
		return -1;
	t = lex_next(lx);
	if (!tok_is(&t, '>')) {
		if (t.type != TOK_ERROR)
			set_err(lx->err, lx->errsize, "expected \">\" at "
			    "offset %zu", lx->pos);
		return -1;
	}
	return list_add(list, max, &mb, lx);
}

/* Elements separated by ",", empty ones allowed, until the end or (in a
 * group) ";". */
static int
parse_list(struct lexer *lx, bool in_group, struct sendmail_addrs *list,
    size_t max)
{
	enum address_kind kind;
	struct tok t;

	for (;;) {
		t = lex_peek(lx);
		if (t.type == TOK_ERROR)
			return -1;
		if (t.type == TOK_END)
			return 0;	/* a group's ";" may be missing */
		if (in_group && tok_is(&t, ';')) {
			lex_next(lx);
			return 0;
		}
		if (tok_is(&t, ',')) {
			lex_next(lx);
			continue;
		}
		if (address_kind(lx, &kind) < 0)
			return -1;
		if (kind == KIND_GROUP) {
			if (in_group) {
				set_err(lx->err, lx->errsize, "a group inside "
				    "a group");
				return -1;
			}
			do {
				t = lex_next(lx);
				if (t.type == TOK_ERROR ||
				    t.type == TOK_END)
					return -1;	/* saw a ":" */
			} while (!tok_is(&t, ':'));
			if (parse_list(lx, true, list, max) < 0)
				return -1;
		} else if (parse_mailbox(lx, kind, list, max) < 0)
			return -1;
		t = lex_peek(lx);
		if (t.type == TOK_ERROR)
			return -1;
		if (t.type == TOK_END || tok_is(&t, ',') ||
		    (in_group && tok_is(&t, ';')))
			continue;
		set_err(lx->err, lx->errsize, "expected \",\" after an address "
		    "at offset %zu", lx->pos);
		return -1;
	}
}

int
sendmail_address_list_parse(const char *s, size_t len, size_t max,
    struct sendmail_addrs *list, char *err, size_t errsize)
{
	struct lexer lx = { s, len, 0, err, errsize };
	size_t before = list->n;

	if (parse_list(&lx, false, list, max) < 0) {
		list->n = before;
		return -1;
	}
	return 0;
}

void
sendmail_addrs_free(struct sendmail_addrs *list)
{
	free(list->v);
	memset(list, 0, sizeof(*list));
}

int
sendmail_mailbox_format(const struct sendmail_mailbox *mb,
    const char *default_domain, char *out, size_t outsize, char *err,
    size_t errsize)
{
	struct smtp_address addr, check;
	char path[SENDMAIL_ADDRESS_MAX + 3];
	enum smtp_address_result r;
	size_t n, used;
	const char *domain = mb->domain[0] != '\0' ? mb->domain :
	    default_domain;

	memset(&addr, 0, sizeof(addr));
	if (strlen(mb->local) > SMTP_LOCALPART_MAX ||
	    strlen(domain) > SMTP_DOMAIN_MAX || domain[0] == '\0') {
		set_err(err, errsize, "not a valid address");
		return -1;
	}
	memcpy(addr.local, mb->local, strlen(mb->local) + 1);
	memcpy(addr.domain, domain, strlen(domain) + 1);
	n = smtp_address_format(&addr, path + 1, sizeof(path) - 2);
	if (n == (size_t)-1) {
		set_err(err, errsize, "address too long");
		return -1;
	}
	path[0] = '<';
	path[n + 1] = '>';
	path[n + 2] = '\0';
	r = smtp_address_parse_path(path, n + 2, false, true, &check, &used);
	if (r != SMTP_ADDRESS_OK || used != n + 2 || check.domain[0] == '\0') {
		set_err(err, errsize, "<%.*s>: %s", (int)n, path + 1,
		    r != SMTP_ADDRESS_OK ? smtp_address_strerror(r) :
		    "not a valid address");
		return -1;
	}
	/* The parser's form: domain lowercased, quoting minimal. */
	n = smtp_address_format(&check, out, outsize);
	if (n == (size_t)-1 || n > SENDMAIL_ADDRESS_MAX) {
		set_err(err, errsize, "address too long");
		return -1;
	}
	return (int)n;
}

int
sendmail_sender_parse(const char *arg, const char *default_domain,
    char *out, size_t outsize, char *err, size_t errsize)
{
	struct sendmail_addrs list = { 0 };
	int rc;

	if (arg[0] == '\0' || strcmp(arg, "<>") == 0) {
		if (outsize > 0)
			out[0] = '\0';
		return 0;
	}
	if (sendmail_address_list_parse(arg, strlen(arg), 1, &list, err,
	    errsize) < 0) {
		sendmail_addrs_free(&list);
		return -1;
	}
	if (list.n != 1) {
		set_err(err, errsize, "no address");
		sendmail_addrs_free(&list);
		return -1;
	}
	rc = sendmail_mailbox_format(&list.v[0], default_domain, out, outsize,
	    err, errsize);
	sendmail_addrs_free(&list);
	return rc < 0 ? -1 : 0;
}

/* ---- Lines (RFC 5322 2.1, 2.3) ----------------------------------------- */

static bool
is_dot_line(const char *line, size_t n)
{
	return (n == 1 && line[0] == '.') ||
	    (n == 2 && line[0] == '.' && line[1] == '\r');
}

bool
sendmail_find_dot_line(const char *buf, size_t len, size_t *pos_r)
{
	size_t pos = *pos_r;
	const char *lf;

	while (pos < len &&
	    (lf = memchr(buf + pos, '\n', len - pos)) != NULL) {
		if (is_dot_line(buf + pos, (size_t)(lf - (buf + pos)))) {
			*pos_r = pos;
			return true;
		}
		pos = (size_t)(lf - buf) + 1;
	}
	*pos_r = pos;
	return false;
}

int
sendmail_normalize(const char *in, size_t len, bool ignore_dots,
    size_t max, char **out_r, size_t *len_r, char *err, size_t errsize)
{
	size_t pos = 0, line_no = 0, n = 0, cap, line_len, end, i;
	char *out;

	*out_r = NULL;
	*len_r = 0;
	/* LF -> CR LF at most doubles; a bounded first guess. */
	cap = len + len / 16 + 3;
	if (cap > max + 3)
		cap = max + 3;
	out = xmalloc(cap);
	while (pos < len) {
		const char *lf = memchr(in + pos, '\n', len - pos);

		line_no++;
		end = lf != NULL ? (size_t)(lf - in) : len;
		line_len = end - pos;
		if (lf != NULL && line_len > 0 && in[end - 1] == '\r')
			line_len--;
		for (i = 0; i < line_len; i++) {
			if (in[pos + i] == '\0') {
				set_err(err, errsize, "line %zu: a NUL byte",
				    line_no);
				goto fail;
			}
			if (in[pos + i] == '\r') {
				set_err(err, errsize, "line %zu: a carriage "
				    "return that does not end the line",
				    line_no);
				goto fail;
			}
		}
		if (line_len > SENDMAIL_LINE_MAX) {
			set_err(err, errsize, "line %zu is longer than %d "
			    "characters (RFC 5322 2.1.1)", line_no,
			    SENDMAIL_LINE_MAX);
			goto fail;
		}
		if (!ignore_dots && line_len == 1 && in[pos] == '.')
			break;
		if (line_no == 1 && line_len >= 5 &&
		    memcmp(in + pos, "From ", 5) == 0) {
			pos = lf != NULL ? end + 1 : len;
			continue;
		}
		if (n + line_len + 2 > max) {
			set_err(err, errsize, "the message is larger than "
			    "message_size_limit (%zu octets)", max);
			goto fail;
		}
		while (n + line_len + 2 > cap) {
			cap = cap * 2 > max + 3 ? max + 3 : cap * 2;
			out = xreallocarray(out, cap, 1);
		}
		memcpy(out + n, in + pos, line_len);
		n += line_len;
		out[n++] = '\r';
		out[n++] = '\n';
		pos = lf != NULL ? end + 1 : len;
	}
	*out_r = out;
	*len_r = n;
	return 0;
 fail:
	free(out);
	return -1;
}

/* ---- The header section (RFC 5322 2.2, 3.6) ---------------------------- */

enum field_kind {
	FIELD_OTHER = 0,
	FIELD_FROM,
	FIELD_DATE,
	FIELD_MESSAGE_ID,
	FIELD_TO,		/* To, Cc */
	FIELD_BCC,
	FIELD_RESENT_TO,	/* Resent-To, Resent-Cc */
	FIELD_RESENT_BCC,
};

static enum field_kind
field_kind(const char *name, size_t n)
{
	static const struct {
		const char *name;
		enum field_kind kind;
	} names[] = {
		{ "from", FIELD_FROM },
		{ "date", FIELD_DATE },
		{ "message-id", FIELD_MESSAGE_ID },
		{ "to", FIELD_TO },
		{ "cc", FIELD_TO },
		{ "bcc", FIELD_BCC },
		{ "resent-to", FIELD_RESENT_TO },
		{ "resent-cc", FIELD_RESENT_TO },
		{ "resent-bcc", FIELD_RESENT_BCC },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n &&
		    strncasecmp(names[i].name, name, n) == 0)
			return names[i].kind;
	return FIELD_OTHER;
}

/* The length of the field name at line, or 0 when line is no field. */
static size_t
field_name_len(const char *line, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == ':')
			return i;
		if (c < 33 || c > 126)
			return 0;
	}
	return 0;
}

static void
head_put(struct sendmail_headers *h, size_t *cap, const char *p, size_t n)
{
	if (h->head_len + n > *cap) {
		*cap = 2 * (h->head_len + n);
		h->head = xreallocarray(h->head, *cap, 1);
	}
	memcpy(h->head + h->head_len, p, n);
	h->head_len += n;
}

/* The addresses of one field (msg[start..end), all its lines). */
static int
field_addresses(const char *field, size_t n, size_t name_len,
    struct sendmail_addrs *list, size_t max, char *err, size_t errsize)
{
	char why[256];

	/* The lexer takes CR LF as folding white space, so the body can be
	 * parsed unfolded as it is. */
	if (sendmail_address_list_parse(field + name_len + 1,
	    n - name_len - 1, max, list, why, sizeof(why)) < 0) {
		set_err(err, errsize, "%.*s: %s", (int)(name_len > 40 ? 40 :
		    name_len), field, why);
		return -1;
	}
	return 0;
}

int
sendmail_headers_scan(const char *msg, size_t len, bool extract,
    size_t rcpt_max, struct sendmail_headers *h, char *err, size_t errsize)
{
	struct sendmail_addrs plain = { 0 }, resent = { 0 };
	size_t pos = 0, cap = 0, field_start = 0, name_len = 0, next;
	bool in_field = false, any_resent = false;
	enum field_kind kind = FIELD_OTHER;
	int rc = -1;

	memset(h, 0, sizeof(*h));
	h->body_offset = len;
	for (;;) {
		const char *line = msg + pos, *crlf = NULL;
		size_t line_len = 0, nl = 0;
		bool ends, cont = false;

		if (pos < len) {
			crlf = memchr(line, '\n', len - pos);
			next = crlf != NULL ? (size_t)(crlf - msg) + 1 : len;
			line_len = next - pos;
			if (line_len > 0 && line[line_len - 1] == '\n')
				line_len--;
			if (line_len > 0 && line[line_len - 1] == '\r')
				line_len--;
			cont = line_len > 0 && (line[0] == ' ' ||
			    line[0] == '\t');
			if (!cont && line_len > 0)
				nl = field_name_len(line, line_len);
		} else
			next = len;
		ends = pos >= len || line_len == 0 || (cont && !in_field) ||
		    (!cont && nl == 0);
		if (in_field && !cont) {
			/* msg[field_start..pos) is one whole field. */
			const char *f = msg + field_start;
			size_t fl = pos - field_start;

			switch (kind) {
			case FIELD_FROM:
				h->has_from = true;
				break;
			case FIELD_DATE:
				h->has_date = true;
				break;
			case FIELD_MESSAGE_ID:
				h->has_message_id = true;
				break;
			case FIELD_TO:
			case FIELD_BCC:
				if (extract && field_addresses(f, fl, name_len,
				    &plain, rcpt_max, err, errsize) < 0)
					goto done;
				break;
			case FIELD_RESENT_TO:
			case FIELD_RESENT_BCC:
				any_resent = true;
				if (extract && field_addresses(f, fl, name_len,
				    &resent, rcpt_max, err, errsize) < 0)
					goto done;
				break;
			case FIELD_OTHER:
				break;
			}
			if (kind != FIELD_BCC && kind != FIELD_RESENT_BCC)
				head_put(h, &cap, f, fl);
			in_field = false;
		}
		if (ends) {
			h->body_offset = pos;
			h->separator = pos < len && line_len == 0;
			break;
		}
		if (!cont) {
			in_field = true;
			field_start = pos;
			name_len = nl;
			kind = field_kind(line, nl);
		}
		pos = next;
	}
	if (any_resent) {
		h->rcpts = resent;
		sendmail_addrs_free(&plain);
	} else {
		h->rcpts = plain;
		sendmail_addrs_free(&resent);
	}
	return 0;
 done:
	sendmail_addrs_free(&plain);
	sendmail_addrs_free(&resent);
	return rc;
}

void
sendmail_headers_free(struct sendmail_headers *h)
{
	free(h->head);
	sendmail_addrs_free(&h->rcpts);
	memset(h, 0, sizeof(*h));
}

/* ---- Fields added when missing (RFC 5322 3.6; RFC 2047) ---------------- */

/* The length of the UTF-8 sequence at s (n octets left), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t want, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		want = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		want = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		want = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n < want)
		return 0;
	for (i = 1; i < want; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((want == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (want == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return want;
}

struct outbuf {
	char *p;
	size_t size, n;
	bool over;
};

static void
ob_put(struct outbuf *o, const char *s, size_t n)
{
	if (o->over || o->n + n >= o->size) {
		o->over = true;
		return;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = '\0';
}

static void
ob_puts(struct outbuf *o, const char *s)
{
	ob_put(o, s, strlen(s));
}

/* Words of atext separated by single spaces: a phrase as it is. */
static bool
name_is_phrase(const char *name)
{
	size_t i;

	if (name[0] == ' ')
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		if (name[i] == ' ') {
			if (name[i + 1] == ' ' || name[i + 1] == '\0')
				return false;
		} else if (!is_atext((unsigned char)name[i]) ||
		    (unsigned char)name[i] >= 0x80)
			return false;
	}
	return true;
}

/* At most 45 octets a word: 60 base64 characters, 72 with the frame. */
#define ENCODED_WORD_OCTETS 45

size_t
sendmail_format_from(const char *name, const char *address, char *out,
    size_t outsize)
{
	struct outbuf o = { out, outsize, 0, false };
	size_t i, len, k;
	bool ascii = true;

	if (outsize == 0)
		return (size_t)-1;
	out[0] = '\0';
	if (address == NULL || address[0] == '\0' ||
	    strlen(address) > SENDMAIL_ADDRESS_MAX)
		return (size_t)-1;
	for (i = 0; address[i] != '\0'; i++)
		if ((unsigned char)address[i] < 0x20 || address[i] == 0x7f)
			return (size_t)-1;
	if (name == NULL)
		name = "";
	len = strlen(name);
	if (len > SENDMAIL_NAME_MAX)
		return (size_t)-1;
	for (i = 0; i < len; i += k) {
		const unsigned char *c = (const unsigned char *)name + i;

		if (*c < 0x20 || *c == 0x7f)
			return (size_t)-1;
		if ((k = utf8_len(c, len - i)) == 0)
			return (size_t)-1;
		if (*c >= 0x80)
			ascii = false;
	}
	ob_puts(&o, "From: ");
	if (len == 0) {
		ob_puts(&o, address);
		ob_puts(&o, "\r\n");
		return o.over ? (size_t)-1 : o.n;
	}
	if (ascii && name_is_phrase(name)) {
		ob_puts(&o, name);
	} else if (ascii) {
		ob_puts(&o, "\"");
		for (i = 0; i < len; i++) {
			if (name[i] == '"' || name[i] == '\\')
				ob_puts(&o, "\\");
			ob_put(&o, name + i, 1);
		}
		ob_puts(&o, "\"");
	} else {
		size_t start = 0;

		while (start < len) {
			unsigned char b64[4 * ENCODED_WORD_OCTETS / 3 + 4];
			size_t end = start;

			while (end < len) {
				k = utf8_len((const unsigned char *)name +
				    end, len - end);
				if (end + k - start > ENCODED_WORD_OCTETS)
					break;
				end += k;
			}
			EVP_EncodeBlock(b64, (const unsigned char *)name +
			    start, (int)(end - start));
			if (start > 0)
				ob_puts(&o, "\r\n ");
			ob_puts(&o, "=?UTF-8?B?");
			ob_puts(&o, (const char *)b64);
			ob_puts(&o, "?=");
			start = end;
		}
	}
	ob_puts(&o, " <");
	ob_puts(&o, address);
	ob_puts(&o, ">\r\n");
	return o.over ? (size_t)-1 : o.n;
}

void
sendmail_gecos_name(const char *gecos, const char *login, char *out,
    size_t outsize)
{
	struct outbuf o = { out, outsize, 0, false };
	size_t i, n;

	if (outsize == 0)
		return;
	out[0] = '\0';
	if (gecos == NULL)
		return;
	n = strcspn(gecos, ",");
	for (i = 0; i < n; i++) {
		if (gecos[i] == '&' && login != NULL && login[0] != '\0') {
			char first = login[0];

			if (first >= 'a' && first <= 'z')
				first = (char)(first - 'a' + 'A');
			ob_put(&o, &first, 1);
			ob_puts(&o, login + 1);
		} else
			ob_put(&o, gecos + i, 1);
	}
	if (o.over || o.n > SENDMAIL_NAME_MAX || has_control(out) ||
	    strspn(out, " ") == o.n)
		out[0] = '\0';
}

/* One field: "From:" ... CR LF, inner CR LF only before SP or HT. */
static bool
from_line_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 8 || strncmp(s, "From:", 5) != 0 ||
	    strcmp(s + n - 2, "\r\n") != 0)
		return false;
	for (i = 0; i < n - 2; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r') {
			if (s[i + 1] != '\n' ||
			    (s[i + 2] != ' ' && s[i + 2] != '\t'))
				return false;
			i++;
		} else if (c == '\n' || c == 0x7f ||
		    (c < 0x20 && c != '\t'))
			return false;
	}
	return true;
}

static bool
printable_ascii(const char *s, bool allow_space)
{
	if (s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < (allow_space ? 0x20 : 0x21) ||
		    (unsigned char)*s > 0x7e)
			return false;
	return true;
}

char *
sendmail_compose_head(const struct sendmail_headers *h, size_t msg_len,
    const char *from_line, const char *date, const char *message_id,
    size_t *len_r)
{
	size_t n, mid_len = message_id != NULL ? strlen(message_id) : 0;
	char *out, *p;

	if ((!h->has_from && (from_line == NULL ||
	    !from_line_ok(from_line))) ||
	    (!h->has_date && (date == NULL || !printable_ascii(date, true))) ||
	    (!h->has_message_id && (message_id == NULL ||
	    !printable_ascii(message_id, false) || mid_len < 3 ||
	    message_id[0] != '<' || message_id[mid_len - 1] != '>' ||
	    strpbrk(message_id + 1, "<") != NULL ||
	    strchr(message_id, '>') != message_id + mid_len - 1)))
		return NULL;
	n = h->head_len + 2 + 1;
	if (!h->has_from)
		n += strlen(from_line);
	if (!h->has_date)
		n += 8 + strlen(date);
	if (!h->has_message_id)
		n += 14 + mid_len;
	out = p = xmalloc(n);
	if (h->head_len > 0)
		memcpy(p, h->head, h->head_len);
	p += h->head_len;
	if (!h->has_from)
		p += sprintf(p, "%s", from_line);
	if (!h->has_date)
		p += sprintf(p, "Date: %s\r\n", date);
	if (!h->has_message_id)
		p += sprintf(p, "Message-ID: %s\r\n", message_id);
	if (!h->separator && h->body_offset < msg_len)
		p += sprintf(p, "\r\n");
	*len_r = (size_t)(p - out);
	return out;
}
