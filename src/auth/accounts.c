/*
 * The users and aliases files: parsing into a table with a hash index (the
 * server does one lookup per RCPT), and the locked, atomic edits behind
 * `tegami user` and `tegami alias`, the import of Dovecot passwd-files, the
 * hash-free account list for the front processes and the MAIL FROM rule for
 * authenticated senders (RFC 6409 6.1). Addresses are RFC 5321 4.1.2
 * dot-atoms.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth/accounts.h"
#include "core/log.h"
#include "core/util.h"

#define INDEX_EMPTY SIZE_MAX
#define INDEX_SIZE_MIN 16
/* A guard against reading a device or a runaway file into memory. */
#define ACCOUNTS_FILE_MAX ((size_t)1 << 30)
#define USERS_NEW_MODE 0640	/* hashes: not for everyone to read */
#define ALIASES_NEW_MODE 0644
#define DOMAIN_LABEL_MAX 63
#define LOCALPART_MAX 64
#define LOCK_MARK '!'
#define SEND_AS_OPTION "send_as"
#define WHY_MAX 256	/* a reason, before "FILE:LINE: " */
#define SCHEME_SHOWN_MAX 24	/* bytes of an unknown scheme in an error */

/* The index reads the address at offset 0 of either entry type. */
_Static_assert(offsetof(struct account, address) == 0, "address first");
_Static_assert(offsetof(struct alias, address) == 0, "address first");
_Static_assert(ACCOUNTS_PASSWORD_MAX < CRYPT_MAX_PASSPHRASE_SIZE,
    "crypt_rn refuses longer pass phrases");

struct buf {
	char *p;
	size_t len, cap;
};

/* The hash schemes that libxcrypt's crypt(3) verifies and tegami accepts,
 * with Dovecot's names for them (for imports). */
static const struct {
	const char *prefix, *name;
} accepted_schemes[] = {
	{ "$y$", "YESCRYPT" },
	{ "$6$", "SHA512-CRYPT" },
	{ "$2b$", "BLF-CRYPT" },
	{ "$2y$", "BLF-CRYPT" },
	{ "$2a$", "BLF-CRYPT" },
};

/* Refused crypt(3) prefixes an import may meet, named as Dovecot does. */
static const struct {
	const char *prefix, *name;
} refused_schemes[] = {
	{ "$1$", "MD5-CRYPT" },
	{ "$5$", "SHA256-CRYPT" },
	{ "$7$", "SCRYPT" },
	{ "$gy$", "GOST-YESCRYPT" },
	{ "$argon2", "ARGON2" },
};

/* Where the fields of a users line are, for parsing and for edits that
 * change one field and keep the other bytes. */
struct user_fields {
	const char *hash;	/* between the first and second ':', trimmed, */
	size_t hash_len;	/* with its lock mark */
	const char *opts;	/* after the second ':', trimmed; or NULL */
	size_t opts_len;
};

struct lines {
	const char *p, *end;
	size_t lineno;
};

/* The capacities of a table being built; struct account_table has none. */
struct builder {
	struct account_table *t;
	size_t accounts_cap, aliases_cap;
};

static int fail(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	return -1;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xreallocarray(b->p, cap, 1);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* 64-bit FNV-1a. The keys come from the admin's files, so an attacker who
 * picks RCPT addresses can make lookups miss but cannot fill buckets. */
static uint64_t
addr_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t
index_find(const size_t *index, size_t size, const void *base, size_t stride,
    const char *address)
{
	size_t mask, i;

	if (size == 0)
		return INDEX_EMPTY;
	mask = size - 1;
	for (i = addr_hash(address) & mask; index[i] != INDEX_EMPTY;
	    i = (i + 1) & mask) {
		const char *key = (const char *)base + index[i] * stride;

		if (strcmp(key, address) == 0)
			return index[i];
	}
	return INDEX_EMPTY;
}

static void
index_insert(size_t *index, size_t size, const void *base, size_t stride,
    size_t pos)
{
	const char *key = (const char *)base + pos * stride;
	size_t mask = size - 1, i;

	for (i = addr_hash(key) & mask; index[i] != INDEX_EMPTY;
	    i = (i + 1) & mask)
		;
	index[i] = pos;
}

/* Keeps both indexes at most half full, so that probe runs stay short. */
static void
index_reserve(struct account_table *t, size_t n)
{
	size_t size = t->index_size ? t->index_size : INDEX_SIZE_MIN, i;
	size_t *ai, *li;

	while (size / 2 < n)
		size *= 2;
	if (size == t->index_size)
		return;
	ai = xreallocarray(NULL, size, sizeof(*ai));
	li = xreallocarray(NULL, size, sizeof(*li));
	for (i = 0; i < size; i++)
		ai[i] = li[i] = INDEX_EMPTY;
	for (i = 0; i < t->n_accounts; i++)
		index_insert(ai, size, t->accounts, sizeof(*t->accounts), i);
	for (i = 0; i < t->n_aliases; i++)
		index_insert(li, size, t->aliases, sizeof(*t->aliases), i);
	free(t->account_index);
	free(t->alias_index);
	t->account_index = ai;
	t->alias_index = li;
	t->index_size = size;
}

const struct account *
accounts_find_user(const struct account_table *t, const char *address)
{
	size_t pos;

	if (t == NULL)
		return NULL;
	pos = index_find(t->account_index, t->index_size, t->accounts,
	    sizeof(*t->accounts), address);
	return pos == INDEX_EMPTY ? NULL : &t->accounts[pos];
}

const struct alias *
accounts_find_alias(const struct account_table *t, const char *address)
{
	size_t pos;

	if (t == NULL)
		return NULL;
	pos = index_find(t->alias_index, t->index_size, t->aliases,
	    sizeof(*t->aliases), address);
	return pos == INDEX_EMPTY ? NULL : &t->aliases[pos];
}

/* RFC 5322 3.2.3 atext, ASCII only: the files hold no UTF-8 addresses. */
static bool
is_atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~",
	    c) != NULL);
}

static const char *
check_domain(const char *d, size_t len)
{
	size_t i, label = 0;

	if (len == 0)
		return "empty domain";
	if (len > 255)
		return "domain longer than 255 characters";
	for (i = 0; i < len; i++) {
		char c = d[i];

		if (c == '.') {
			if (label == 0)
				return "domain has an empty label";
			if (d[i - 1] == '-')
				return "domain label ends with '-'";
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return "domain has a character other than letters, "
			    "digits, '-' and '.'";
		if (c == '-' && label == 0)
			return "domain label starts with '-'";
		if (++label > DOMAIN_LABEL_MAX)
			return "domain label longer than 63 characters";
	}
	if (label == 0)
		return "domain has an empty label";
	if (d[len - 1] == '-')
		return "domain label ends with '-'";
	return NULL;
}

/*
 * The local part of an account must also be a safe path component for its
 * Maildir ('/' never) and must not start a comment line ('#'); '+', '%'
 * and '!' have meanings of their own (plus-addressing, relay tricks).
 */
static const char *
check_address(const char *address, char *out, bool allow_plus)
{
	const char *at, *why;
	size_t len, llen, i;

	len = strnlen(address, ACCOUNT_ADDRESS_MAX + 1);
	if (len == 0)
		return "empty address";
	if (len > ACCOUNT_ADDRESS_MAX)
		return "address longer than 320 characters";
	if ((at = memchr(address, '@', len)) == NULL)
		return "address has no '@domain'";
	if (memchr(at + 1, '@', len - (size_t)(at + 1 - address)) != NULL)
		return "address has more than one '@'";
	llen = (size_t)(at - address);
	if (llen == 0)
		return "empty local part";
	if (llen > LOCALPART_MAX)
		return "local part longer than 64 characters";
	for (i = 0; i < llen; i++) {
		char c = address[i];

		if (c == '.') {
			if (i == 0 || i == llen - 1 || address[i - 1] == '.')
				return "local part has a leading, trailing or "
				    "doubled '.'";
		} else if (c == '+' && !allow_plus) {
			return "'+' is reserved for plus-addressing";
		} else if (c == '%' || c == '!' || c == '/' || c == '#' ||
		    !is_atext(c)) {
			return "local part has a character that is not allowed "
			    "(letters, digits and !#$&'*+-=?^_`{|}~ without "
			    "'%', '!', '/', '#')";
		}
	}
	if ((why = check_domain(at + 1, len - llen - 1)) != NULL)
		return why;
	for (i = 0; i < len; i++)
		out[i] = lower(address[i]);
	out[len] = '\0';
	return NULL;
}

const char *
accounts_check_address(const char *address, char *out)
{
	return check_address(address, out, false);
}

const char *
accounts_check_target(const char *address, char *out)
{
	return check_address(address, out, true);
}

int
accounts_state_path(const char *state_dir, const char *name, char *out,
    size_t outsize)
{
	return path_join(out, outsize, "%s/%s", state_dir, name);
}

int
accounts_paths(const char *state_dir, char *users_r, char *aliases_r)
{
	if (accounts_state_path(state_dir, ACCOUNTS_USERS_FILE, users_r,
	    PATH_MAX) == -1 || accounts_state_path(state_dir,
	    ACCOUNTS_ALIASES_FILE, aliases_r, PATH_MAX) == -1)
		return -1;
	return 0;
}

/* Returns the next line without its "\n", or false at the end of text. */
static bool
lines_next(struct lines *it, const char **line_r, size_t *len_r)
{
	const char *nl;

	if (it->p >= it->end)
		return false;
	nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
	*line_r = it->p;
	*len_r = (size_t)((nl != NULL ? nl : it->end) - it->p);
	it->p = nl != NULL ? nl + 1 : it->end;
	it->lineno++;
	return true;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

/* Checks the text before the first ':' of a trimmed data line as an
 * address (targets: with '+' allowed) and lowercases it into out. */
static const char *
line_address(const char *s, size_t len, char *out, bool target)
{
	char tmp[ACCOUNT_ADDRESS_MAX + 1];

	trim(&s, &len);
	if (len > ACCOUNT_ADDRESS_MAX)
		return "address longer than 320 characters";
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return check_address(tmp, out, target);
}

/*
 * The key of a data line ("address" before ':'), lowercased, or false for
 * a blank line, a comment or a line whose key is not an address.
 */
static bool
line_key(const char *line, size_t len, char *out)
{
	const char *colon;

	trim(&line, &len);
	if (len == 0 || line[0] == '#' ||
	    (colon = memchr(line, ':', len)) == NULL)
		return false;
	return line_address(line, (size_t)(colon - line), out, false) == NULL;
}

/* The line on which a key first appears, for duplicate errors. */
static size_t
first_line_of(const char *text, size_t len, const char *address)
{
	struct lines it = { text, text + len, 0 };
	char key[ACCOUNT_ADDRESS_MAX + 1];
	const char *line;
	size_t n;

	while (lines_next(&it, &line, &n))
		if (line_key(line, n, key) && strcmp(key, address) == 0)
			return it.lineno;
	return 0;
}

/* The accepted scheme a hash is of (its prefix's index), or -1. */
static int
hash_scheme(const char *h, size_t len)
{
	size_t i, n;

	for (i = 0; i < sizeof(accepted_schemes) / sizeof(accepted_schemes[0]);
	    i++) {
		n = strlen(accepted_schemes[i].prefix);
		if (len >= n && memcmp(h, accepted_schemes[i].prefix, n) == 0)
			return (int)i;
	}
	return -1;
}

/* Untrusted text in an error message (shown_text): the start of it. */
static const char *
shown(const char *s, size_t n, char *out, size_t outsize)
{
	return shown_text(s, n, SCHEME_SHOWN_MAX, out, outsize);
}

/* The "$id$" prefix of a crypt(3) string, for messages. */
static const char *
hash_prefix(const char *h, size_t len, char *out, size_t outsize)
{
	const char *end = len > 1 ? memchr(h + 1, '$', len - 1) : NULL;

	return shown(h, end != NULL ? (size_t)(end + 1 - h) : len, out,
	    outsize);
}

/*
 * A password hash as stored (without its lock mark): empty for "no
 * password", else a crypt(3) string of an accepted scheme. Returns 0, or
 * -1 with the reason in why.
 */
static int
check_hash(const char *h, size_t len, char *why, size_t whysize)
{
	char pfx[SCHEME_SHOWN_MAX + 4];
	size_t i;
	int k;

	if (len == 0)
		return 0;
	if (len >= ACCOUNT_HASH_MAX)
		return fail(why, whysize, "password hash longer than 255 "
		    "characters");
	for (i = 0; i < len; i++)
		if (h[i] == ':' || (unsigned char)h[i] <= ' ' ||
		    (unsigned char)h[i] >= 0x7f)
			return fail(why, whysize, "password hash contains ':', "
			    "white space or a control character");
	if (h[0] != '$')
		return fail(why, whysize, "password hash is not a crypt(3) "
		    "hash (no leading '$')");
	if ((k = hash_scheme(h, len)) == -1)
		return fail(why, whysize, "password hash scheme \"%s\" is not "
		    "accepted (yescrypt \"$y$\", SHA512-CRYPT \"$6$\", bcrypt "
		    "\"$2b$\", \"$2y$\", \"$2a$\")",
		    hash_prefix(h, len, pfx, sizeof(pfx)));
	if (len == strlen(accepted_schemes[k].prefix))
		return fail(why, whysize, "password hash has nothing after "
		    "\"%s\"", accepted_schemes[k].prefix);
	return 0;
}

const char *
accounts_check_send_as(const char *pattern, char *out)
{
	const char *why;
	size_t len, i;

	if (strcmp(pattern, "*") == 0) {
		memcpy(out, "*", 2);
		return NULL;
	}
	if (pattern[0] != '@')
		return accounts_check_target(pattern, out);
	len = strnlen(pattern, ACCOUNT_ADDRESS_MAX + 1);
	if (len > ACCOUNT_ADDRESS_MAX)
		return "pattern longer than 320 characters";
	if ((why = check_domain(pattern + 1, len - 1)) != NULL)
		return why;
	for (i = 0; i <= len; i++)
		out[i] = lower(pattern[i]);
	return NULL;
}

static void
free_strings(char ***vp, size_t *np)
{
	size_t i;

	for (i = 0; i < *np; i++)
		free((*vp)[i]);
	free(*vp);
	*vp = NULL;
	*np = 0;
}

/*
 * The options field: comma-separated "name=value" items; send_as (any
 * number of times) is the only name so far, so an unknown one is a typo.
 * Appends to *send_as_r; the caller frees it also on error.
 */
static int
parse_options(const char *p, size_t len, char ***send_as_r, size_t *n_r,
    char *why, size_t whysize)
{
	char pat[ACCOUNT_ADDRESS_MAX + 1], name[SCHEME_SHOWN_MAX + 4];
	const char *end = p + len, *comma, *item, *eq, *val, *r;
	size_t n, nlen, vlen, k, cap = 0;

	if (len == 0)
		return 0;
	for (k = 1;; k++) {
		comma = memchr(p, ',', (size_t)(end - p));
		item = p;
		n = (size_t)((comma != NULL ? comma : end) - p);
		trim(&item, &n);
		if (n == 0)
			return fail(why, whysize, "option %zu is empty", k);
		eq = memchr(item, '=', n);
		nlen = (size_t)((eq != NULL ? eq : item + n) - item);
		val = eq != NULL ? eq + 1 : item + n;
		vlen = (size_t)(item + n - val);
		trim(&item, &nlen);
		trim(&val, &vlen);
		if (nlen != strlen(SEND_AS_OPTION) ||
		    memcmp(item, SEND_AS_OPTION, nlen) != 0)
			return fail(why, whysize, "unknown option \"%s\" (only "
			    "send_as=PATTERN)", shown(item, nlen, name,
			    sizeof(name)));
		if (vlen == 0)
			return fail(why, whysize, "option %zu: send_as needs a "
			    "pattern (send_as=PATTERN)", k);
		if (vlen > ACCOUNT_ADDRESS_MAX)
			r = "pattern longer than 320 characters";
		else {
			memcpy(pat, val, vlen);
			pat[vlen] = '\0';
			r = accounts_check_send_as(pat, pat);
		}
		if (r != NULL)
			return fail(why, whysize, "option %zu: bad send_as "
			    "pattern: %s", k, r);
		if (*n_r == cap) {
			cap = cap ? 2 * cap : 4;
			*send_as_r = xreallocarray(*send_as_r, cap,
			    sizeof(**send_as_r));
		}
		(*send_as_r)[(*n_r)++] = xstrdup(pat);
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

/*
 * Splits a users line "address:hash[:options]" (white space around each
 * field allowed) and checks the address into address. Returns 0, or -1
 * with the reason in why.
 */
static int
user_fields(const char *line, size_t len, char *address,
    struct user_fields *f, char *why, size_t whysize)
{
	const char *colon, *colon2, *end = line + len, *r;

	if ((colon = memchr(line, ':', len)) == NULL)
		return fail(why, whysize, "missing ':' between address and "
		    "password hash");
	if ((r = line_address(line, (size_t)(colon - line), address,
	    false)) != NULL)
		return fail(why, whysize, "%s", r);
	f->hash = colon + 1;
	colon2 = memchr(f->hash, ':', (size_t)(end - f->hash));
	f->hash_len = (size_t)((colon2 != NULL ? colon2 : end) - f->hash);
	trim(&f->hash, &f->hash_len);
	f->opts = NULL;
	f->opts_len = 0;
	if (colon2 != NULL) {
		f->opts = colon2 + 1;
		f->opts_len = (size_t)(end - f->opts);
		trim(&f->opts, &f->opts_len);
	}
	return 0;
}

static char *
dup_bytes(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Adds a (moved in, address not yet present) to the table being built. */
static void
builder_add_account(struct builder *b, const struct account *a)
{
	struct account_table *t = b->t;

	if (t->n_accounts == b->accounts_cap) {
		b->accounts_cap = b->accounts_cap ? 2 * b->accounts_cap : 64;
		t->accounts = xreallocarray(t->accounts, b->accounts_cap,
		    sizeof(*t->accounts));
	}
	index_reserve(t, t->n_accounts + 1);
	t->accounts[t->n_accounts] = *a;
	index_insert(t->account_index, t->index_size, t->accounts,
	    sizeof(*t->accounts), t->n_accounts);
	t->n_accounts++;
}

static int
parse_user_line(struct builder *b, const char *line, size_t len,
    bool with_hashes, char *address, char *why, size_t whysize)
{
	struct user_fields f;
	struct account a;

	if (user_fields(line, len, address, &f, why, whysize) == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	if (f.hash_len > 0 && f.hash[0] == LOCK_MARK) {
		a.locked = true;
		f.hash++;
		f.hash_len--;
	}
	if (check_hash(f.hash, f.hash_len, why, whysize) == -1)
		return -1;
	if (f.opts != NULL && parse_options(f.opts, f.opts_len, &a.send_as,
	    &a.n_send_as, why, whysize) == -1) {
		free_strings(&a.send_as, &a.n_send_as);
		return -1;
	}
	if (accounts_find_user(b->t, address) != NULL) {
		free_strings(&a.send_as, &a.n_send_as);
		return 1;
	}
	memcpy(a.address, address, strlen(address) + 1);
	if (with_hashes)
		a.hash = dup_bytes(f.hash, f.hash_len);
	builder_add_account(b, &a);
	return 0;
}

static bool
is_target_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\r';
}

static int
parse_alias_line(struct builder *b, const char *line, size_t len,
    char *address, char *why, size_t whysize)
{
	struct account_table *t = b->t;
	struct alias al;
	const char *colon, *p, *end, *r;
	char target[ACCOUNT_ADDRESS_MAX + 1];
	size_t cap = 0, i;
	int rc = -1;

	if ((colon = memchr(line, ':', len)) == NULL)
		return fail(why, whysize, "missing ':' after the alias");
	if ((r = line_address(line, (size_t)(colon - line), address,
	    false)) != NULL)
		return fail(why, whysize, "%s", r);
	memset(&al, 0, sizeof(al));
	memcpy(al.address, address, strlen(address) + 1);
	end = line + len;
	for (p = colon + 1; p < end; ) {
		const char *tok;

		while (p < end && is_target_sep(*p))
			p++;
		if (p == end)
			break;
		for (tok = p; p < end && !is_target_sep(*p); p++)
			;
		if (al.n_targets == ALIAS_TARGETS_MAX) {
			fail(why, whysize, "more than %d targets",
			    ALIAS_TARGETS_MAX);
			goto bad;
		}
		if ((size_t)(p - tok) > ACCOUNT_ADDRESS_MAX)
			r = "address longer than 320 characters";
		else {
			memcpy(target, tok, (size_t)(p - tok));
			target[p - tok] = '\0';
			r = accounts_check_target(target, target);
		}
		if (r != NULL) {
			fail(why, whysize, "target %zu: %s", al.n_targets + 1,
			    r);
			goto bad;
		}
		if (al.n_targets == cap) {
			cap = cap ? 2 * cap : 4;
			al.targets = xreallocarray(al.targets, cap,
			    sizeof(*al.targets));
		}
		al.targets[al.n_targets++] = xstrdup(target);
	}
	if (al.n_targets == 0) {
		fail(why, whysize, "alias has no targets");
		goto bad;
	}
	if (accounts_find_alias(t, address) != NULL) {
		rc = 1;
		goto bad;
	}
	if (t->n_aliases == b->aliases_cap) {
		b->aliases_cap = b->aliases_cap ? 2 * b->aliases_cap : 16;
		t->aliases = xreallocarray(t->aliases, b->aliases_cap,
		    sizeof(*t->aliases));
	}
	index_reserve(t, t->n_aliases + 1);
	t->aliases[t->n_aliases] = al;
	index_insert(t->alias_index, t->index_size, t->aliases,
	    sizeof(*t->aliases), t->n_aliases);
	t->n_aliases++;
	return 0;
 bad:
	for (i = 0; i < al.n_targets; i++)
		free(al.targets[i]);
	free(al.targets);
	return rc;
}

/*
 * Parses one file of either kind into b. Lines longer than line_max, NUL
 * bytes, bad entries and duplicates are errors "NAME:LINE: what".
 */
static int
parse_text(struct builder *b, const char *name, const char *text,
    size_t len, bool aliases, bool with_hashes, char *err, size_t errsize)
{
	struct lines it;
	size_t line_max = aliases ? ACCOUNTS_ALIASES_LINE_MAX :
	    ACCOUNTS_USERS_LINE_MAX;
	char address[ACCOUNT_ADDRESS_MAX + 1], why[WHY_MAX];
	const char *line;
	size_t n;
	int rc;

	/* An empty buffer may come as NULL (and NULL + 0 is undefined). */
	if (text == NULL)
		return 0;
	it = (struct lines){ text, text + len, 0 };
	if (name == NULL)
		name = aliases ? "aliases" : "users";
	/* Size the index once for the most entries the text can hold,
	 * instead of rehashing 100,000 users as it grows. */
	for (line = text, n = 1; (line = memchr(line, '\n',
	    (size_t)(text + len - line))) != NULL; line++)
		n++;
	index_reserve(b->t, n);
	while (lines_next(&it, &line, &n)) {
		if (n > line_max)
			return fail(err, errsize, "%s:%zu: line longer than "
			    "%zu bytes", name, it.lineno, line_max);
		if (memchr(line, '\0', n) != NULL)
			return fail(err, errsize, "%s:%zu: NUL byte", name,
			    it.lineno);
		trim(&line, &n);
		if (n == 0 || line[0] == '#')
			continue;
		if (aliases)
			rc = parse_alias_line(b, line, n, address, why,
			    sizeof(why));
		else
			rc = parse_user_line(b, line, n, with_hashes, address,
			    why, sizeof(why));
		if (rc == -1)
			return fail(err, errsize, "%s:%zu: %s", name,
			    it.lineno, why);
		if (rc != 0)
			return fail(err, errsize, "%s:%zu: duplicate %s %s "
			    "(first on line %zu)", name, it.lineno,
			    aliases ? "alias" : "user", address,
			    first_line_of(text, len, address));
	}
	return 0;
}

int
accounts_parse(const char *users_name, const char *users_text,
    size_t users_len, const char *aliases_name, const char *aliases_text,
    size_t aliases_len, bool with_hashes, struct account_table **table_r,
    char *err, size_t errsize)
{
	struct builder b;

	memset(&b, 0, sizeof(b));
	b.t = xcalloc(1, sizeof(*b.t));
	index_reserve(b.t, 0);
	if (parse_text(&b, users_name, users_text, users_len, false,
	    with_hashes, err, errsize) == -1 ||
	    parse_text(&b, aliases_name, aliases_text, aliases_len, true,
	    false, err, errsize) == -1) {
		accounts_free(&b.t);
		return -1;
	}
	*table_r = b.t;
	return 0;
}

/*
 * Reads a whole file; a missing one gives text NULL and *exists_r false.
 * st_r gets its mode and owner for rewriting it.
 */
static int
read_file(const char *path, char **text_r, size_t *len_r, struct stat *st_r,
    bool *exists_r, char *err, size_t errsize)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0, cap;
	ssize_t n;
	int fd, saved;

	*text_r = NULL;
	*len_r = 0;
	*exists_r = false;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		return fail(err, errsize, "%s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) == -1) {
		saved = errno;
		close(fd);
		return fail(err, errsize, "%s: %s", path, strerror(saved));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errsize, "%s: not a regular file", path);
	}
	cap = (size_t)st.st_size + 1;
	if (cap > ACCOUNTS_FILE_MAX)
		cap = ACCOUNTS_FILE_MAX;
	text = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap >= ACCOUNTS_FILE_MAX) {
				free(text);
				close(fd);
				return fail(err, errsize, "%s: larger than %zu "
				    "bytes", path, ACCOUNTS_FILE_MAX);
			}
			cap *= 2;
			text = xreallocarray(text, cap, 1);
		}
		n = read(fd, text + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			free(text);
			close(fd);
			return fail(err, errsize, "%s: %s", path,
			    strerror(saved));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*text_r = text;
	*len_r = len;
	*st_r = st;
	*exists_r = true;
	return 0;
}

int
accounts_load(const char *users_path, const char *aliases_path,
    bool with_hashes, struct account_table **table_r, char *err,
    size_t errsize)
{
	struct stat st;
	char *users = NULL, *aliases = NULL;
	size_t users_len = 0, aliases_len = 0;
	bool exists;
	int rc = -1;

	if (users_path != NULL && read_file(users_path, &users, &users_len,
	    &st, &exists, err, errsize) == -1)
		goto done;
	if (aliases_path != NULL && read_file(aliases_path, &aliases,
	    &aliases_len, &st, &exists, err, errsize) == -1)
		goto done;
	rc = accounts_parse(users_path, users, users_len, aliases_path,
	    aliases, aliases_len, with_hashes, table_r, err, errsize);
 done:
	if (users != NULL) {
		/* The hashes are secrets of a kind: leave no copy behind. */
		explicit_bzero(users, users_len);
		free(users);
	}
	free(aliases);
	return rc;
}

void
accounts_free(struct account_table **tablep)
{
	struct account_table *t = *tablep;
	size_t i, j;

	if (t == NULL)
		return;
	for (i = 0; i < t->n_accounts; i++) {
		if (t->accounts[i].hash != NULL) {
			explicit_bzero(t->accounts[i].hash,
			    strlen(t->accounts[i].hash));
			free(t->accounts[i].hash);
		}
		free_strings(&t->accounts[i].send_as,
		    &t->accounts[i].n_send_as);
	}
	for (i = 0; i < t->n_aliases; i++) {
		for (j = 0; j < t->aliases[i].n_targets; j++)
			free(t->aliases[i].targets[j]);
		free(t->aliases[i].targets);
	}
	free(t->accounts);
	free(t->aliases);
	free(t->account_index);
	free(t->alias_index);
	free(t);
	*tablep = NULL;
}

/*
 * An edit: given the current text of the file (NULL when it does not
 * exist), appends the new text to out or returns -1 with err set.
 */
typedef int (*edit_fn)(void *ctx, const char *path, const char *old,
    size_t oldlen, struct buf *out, char *err, size_t errsize);

/*
 * Runs fn under an exclusive lock on PATH.lock and replaces PATH with its
 * output atomically. The lock file stays: removing it would let a waiter
 * lock an unlinked file while a newcomer locks a new one.
 */
static int
accounts_edit(const char *path, mode_t new_mode, edit_fn fn, void *ctx,
    char *err, size_t errsize)
{
	char lockpath[PATH_MAX], tmppath[PATH_MAX], dirpath[PATH_MAX];
	struct stat st;
	struct buf out = { NULL, 0, 0 };
	char *old = NULL;
	size_t oldlen = 0;
	bool exists, created = false;
	int lockfd = -1, fd = -1, rc = -1, saved;

	if (path_join(lockpath, sizeof(lockpath), "%s.lock", path) == -1 ||
	    path_join(tmppath, sizeof(tmppath), "%s.tmp.%ld", path,
	    (long)getpid()) == -1)
		return fail(err, errsize, "%s: path too long", path);
	(void)path_dirname(path, dirpath, sizeof(dirpath));
	lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (lockfd == -1)
		return fail(err, errsize, "%s: %s", lockpath, strerror(errno));
	while (flock(lockfd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			fail(err, errsize, "%s: flock: %s", lockpath,
			    strerror(errno));
			goto done;
		}
	}
	if (read_file(path, &old, &oldlen, &st, &exists, err, errsize) == -1)
		goto done;
	if (fn(ctx, path, old, oldlen, &out, err, errsize) == -1)
		goto done;

	fd = open(tmppath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd == -1 && errno == EEXIST) {
		/* Left by a run that crashed with our pid; we hold the lock,
		 * so no live writer owns it. */
		if (unlink(tmppath) == 0)
			fd = open(tmppath, O_WRONLY | O_CREAT | O_EXCL |
			    O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd == -1) {
		fail(err, errsize, "%s: %s", tmppath, strerror(errno));
		goto done;
	}
	created = true;
	if (exists && (st.st_uid != geteuid() || st.st_gid != getegid()) &&
	    fchown(fd, st.st_uid, st.st_gid) == -1) {
		fail(err, errsize, "%s: fchown: %s", tmppath, strerror(errno));
		goto done;
	}
	if (fchmod(fd, exists ? st.st_mode & 0777 : new_mode) == -1) {
		fail(err, errsize, "%s: fchmod: %s", tmppath, strerror(errno));
		goto done;
	}
	if (write_all(fd, out.p != NULL ? out.p : "", out.len) == -1 ||
	    fsync(fd) == -1) {
		fail(err, errsize, "%s: %s", tmppath, strerror(errno));
		goto done;
	}
	saved = close(fd);
	fd = -1;
	if (saved == -1) {
		fail(err, errsize, "%s: %s", tmppath, strerror(errno));
		goto done;
	}
	if (rename(tmppath, path) == -1) {
		fail(err, errsize, "rename %s: %s", tmppath, strerror(errno));
		goto done;
	}
	created = false;
	if (fsync_dir(dirpath) == -1) {
		fail(err, errsize, "%s: fsync: %s", dirpath, strerror(errno));
		goto done;
	}
	rc = 0;
 done:
	if (fd != -1)
		close(fd);
	if (created)
		unlink(tmppath);
	if (old != NULL) {
		explicit_bzero(old, oldlen);
		free(old);
	}
	if (out.p != NULL) {
		explicit_bzero(out.p, out.len);
		free(out.p);
	}
	close(lockfd);
	return rc;
}

/* Appends old to out, ending in a newline so that a line can follow. */
static void
copy_old(struct buf *out, const char *old, size_t oldlen)
{
	if (oldlen == 0)
		return;
	buf_add(out, old, oldlen);
	if (old[oldlen - 1] != '\n')
		buf_add(out, "\n", 1);
}

/* Parses the current text of one file, to validate it and find the key. */
static int
parse_one(const char *path, const char *text, size_t len, bool aliases,
    struct account_table **t_r, char *err, size_t errsize)
{
	if (aliases)
		return accounts_parse(NULL, NULL, 0, path, text, len, false,
		    t_r, err, errsize);
	return accounts_parse(path, text, len, NULL, NULL, 0, false, t_r, err,
	    errsize);
}

static bool
has_key(const struct account_table *t, bool aliases, const char *address)
{
	return aliases ? accounts_find_alias(t, address) != NULL :
	    accounts_find_user(t, address) != NULL;
}

struct add_ctx {
	bool aliases;
	const char *address;
	const char *line;	/* the whole new line */
};

static int
add_edit(void *vctx, const char *path, const char *old, size_t oldlen,
    struct buf *out, char *err, size_t errsize)
{
	struct add_ctx *ctx = vctx;
	struct account_table *t;
	bool found;

	if (parse_one(path, old, oldlen, ctx->aliases, &t, err, errsize) == -1)
		return -1;
	found = has_key(t, ctx->aliases, ctx->address);
	accounts_free(&t);
	if (found) {
		if (ctx->aliases)
			return fail(err, errsize, "alias %s already exists; "
			    "del it first", ctx->address);
		return fail(err, errsize, "user %s already exists",
		    ctx->address);
	}
	copy_old(out, old, oldlen);
	buf_str(out, ctx->line);
	return 0;
}

/* What an edit does to the line of one address. */
enum line_change {
	CHANGE_DELETE,
	CHANGE_HASH,		/* text replaces the hash, a lock mark stays */
	CHANGE_LOCK,		/* a '!' before the hash, unless there is one */
	CHANGE_UNLOCK,		/* the '!' taken away, if there is one */
	CHANGE_OPTIONS		/* text (":..." or "") replaces the options */
};

struct line_ctx {
	bool aliases;
	const char *address;
	enum line_change change;
	const char *text;
};

/*
 * Appends the changed users line to out: the bytes of one span are
 * replaced and all others kept, so that unlocking gives back the very hash
 * that was locked. The line parsed before, so its fields are there.
 */
static int
change_user_line(const struct line_ctx *ctx, const char *line, size_t len,
    struct buf *out, char *err, size_t errsize)
{
	char address[ACCOUNT_ADDRESS_MAX + 1], why[WHY_MAX];
	struct user_fields f;
	const char *start, *end, *text;
	size_t before = out->len;
	bool locked;

	if (user_fields(line, len, address, &f, why, sizeof(why)) == -1)
		return fail(err, errsize, "%s: %s", ctx->address, why);
	locked = f.hash_len > 0 && f.hash[0] == LOCK_MARK;
	start = end = f.hash;
	text = ctx->text;
	switch (ctx->change) {
	case CHANGE_HASH:
		start = f.hash + (locked ? 1 : 0);
		end = f.hash + f.hash_len;
		break;
	case CHANGE_LOCK:
		text = locked ? "" : "!";
		break;
	case CHANGE_UNLOCK:
		end = f.hash + (locked ? 1 : 0);
		text = "";
		break;
	case CHANGE_OPTIONS:
		/* send_as is the only option: all of them are replaced. */
		start = f.hash + f.hash_len;
		end = f.opts != NULL ? f.opts + f.opts_len : start;
		break;
	case CHANGE_DELETE:
		return 0;
	}
	buf_add(out, line, (size_t)(start - line));
	buf_str(out, text);
	buf_add(out, end, (size_t)(line + len - end));
	if (out->len - before > ACCOUNTS_USERS_LINE_MAX)
		return fail(err, errsize, "the line of %s would be longer than "
		    "%d bytes", ctx->address, ACCOUNTS_USERS_LINE_MAX);
	return 0;
}

/* Deletes or changes the line of an address that must be in the file. */
static int
line_edit(void *vctx, const char *path, const char *old, size_t oldlen,
    struct buf *out, char *err, size_t errsize)
{
	struct line_ctx *ctx = vctx;
	struct account_table *t;
	struct lines it = { old, old + oldlen, 0 };
	char key[ACCOUNT_ADDRESS_MAX + 1];
	const char *line;
	size_t n;
	bool found;

	if (parse_one(path, old, oldlen, ctx->aliases, &t, err, errsize) == -1)
		return -1;
	found = has_key(t, ctx->aliases, ctx->address);
	accounts_free(&t);
	if (!found)
		return fail(err, errsize, "no such %s: %s",
		    ctx->aliases ? "alias" : "user", ctx->address);
	/* The file parsed, so exactly one line has the key. */
	while (lines_next(&it, &line, &n)) {
		if (line_key(line, n, key) && strcmp(key, ctx->address) == 0) {
			if (ctx->change == CHANGE_DELETE)
				continue;
			if (change_user_line(ctx, line, n, out, err,
			    errsize) == -1)
				return -1;
		} else
			buf_add(out, line, n);
		if (line + n < it.end)
			buf_add(out, "\n", 1);
	}
	return 0;
}

/* Runs one line_ctx edit on the address's line of path. */
static int
edit_line(const char *path, bool aliases, const char *address,
    enum line_change change, const char *text, char *err, size_t errsize)
{
	char addr[ACCOUNT_ADDRESS_MAX + 1];
	struct line_ctx ctx;
	const char *why;

	if ((why = accounts_check_address(address, addr)) != NULL)
		return fail(err, errsize, "bad address: %s", why);
	ctx.aliases = aliases;
	ctx.address = addr;
	ctx.change = change;
	ctx.text = text;
	return accounts_edit(path, aliases ? ALIASES_NEW_MODE : USERS_NEW_MODE,
	    line_edit, &ctx, err, errsize);
}

int
accounts_hash_password(const char *password, char *out, size_t outsize)
{
	struct crypt_data *cd;
	const char *h;
	char *setting, why[WHY_MAX];
	int rc = -1;

	if ((setting = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL)
		return -1;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, setting, cd, sizeof(*cd));
	/* libxcrypt may fall back or fail with a "*" token; accept only
	 * what was asked for. */
	if (h != NULL && strncmp(h, "$y$", 3) == 0 && strlen(h) < outsize &&
	    check_hash(h, strlen(h), why, sizeof(why)) == 0) {
		memcpy(out, h, strlen(h) + 1);
		rc = 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	free(setting);
	return rc;
}

/* Checks a new password and hashes it into hash (ACCOUNT_HASH_MAX). Done
 * before the file is locked: yescrypt is slow on purpose. */
static int
new_password_hash(const char *password, char *hash, char *err,
    size_t errsize)
{
	if (password[0] == '\0')
		return fail(err, errsize, "empty password refused");
	if (strnlen(password, ACCOUNTS_PASSWORD_MAX + 1) >
	    ACCOUNTS_PASSWORD_MAX)
		return fail(err, errsize, "password longer than %d bytes",
		    ACCOUNTS_PASSWORD_MAX);
	if (accounts_hash_password(password, hash, ACCOUNT_HASH_MAX) == -1)
		return fail(err, errsize, "hashing the password failed "
		    "(yescrypt)");
	return 0;
}

int
accounts_user_add(const char *users_path, const char *address,
    const char *password, char *err, size_t errsize)
{
	char addr[ACCOUNT_ADDRESS_MAX + 1], hash[ACCOUNT_HASH_MAX];
	char line[ACCOUNT_ADDRESS_MAX + ACCOUNT_HASH_MAX + 3];
	struct add_ctx ctx;
	const char *why;

	if ((why = accounts_check_address(address, addr)) != NULL)
		return fail(err, errsize, "bad address: %s", why);
	if (new_password_hash(password, hash, err, errsize) == -1)
		return -1;
	snprintf(line, sizeof(line), "%s:%s\n", addr, hash);
	ctx.aliases = false;
	ctx.address = addr;
	ctx.line = line;
	return accounts_edit(users_path, USERS_NEW_MODE, add_edit, &ctx, err,
	    errsize);
}

int
accounts_user_del(const char *users_path, const char *address, char *err,
    size_t errsize)
{
	return edit_line(users_path, false, address, CHANGE_DELETE, NULL, err,
	    errsize);
}

int
accounts_user_set_password(const char *users_path, const char *address,
    const char *password, char *err, size_t errsize)
{
	char addr[ACCOUNT_ADDRESS_MAX + 1], hash[ACCOUNT_HASH_MAX];
	const char *why;

	/* The address first: no slow hashing for a typo. */
	if ((why = accounts_check_address(address, addr)) != NULL)
		return fail(err, errsize, "bad address: %s", why);
	if (new_password_hash(password, hash, err, errsize) == -1)
		return -1;
	return edit_line(users_path, false, addr, CHANGE_HASH, hash, err,
	    errsize);
}

int
accounts_user_lock(const char *users_path, const char *address, bool lock,
    char *err, size_t errsize)
{
	return edit_line(users_path, false, address,
	    lock ? CHANGE_LOCK : CHANGE_UNLOCK, NULL, err, errsize);
}

int
accounts_user_set_send_as(const char *users_path, const char *address,
    char *const *patterns, size_t n_patterns, char *err, size_t errsize)
{
	char pat[ACCOUNT_ADDRESS_MAX + 1];
	struct buf opts = { NULL, 0, 0 };
	char **seen = NULL;
	const char *why;
	size_t i, j, n_seen = 0;
	int rc = -1;

	buf_str(&opts, "");
	if (n_patterns > 0)
		seen = xreallocarray(NULL, n_patterns, sizeof(*seen));
	for (i = 0; i < n_patterns; i++) {
		if ((why = accounts_check_send_as(patterns[i], pat)) != NULL) {
			fail(err, errsize, "bad send-as pattern %zu: %s", i + 1,
			    why);
			goto done;
		}
		for (j = 0; j < n_seen && strcmp(seen[j], pat) != 0; j++)
			;
		if (j < n_seen)
			continue;
		seen[n_seen++] = xstrdup(pat);
		buf_str(&opts, n_seen == 1 ? ":" : ",");
		buf_str(&opts, SEND_AS_OPTION "=");
		buf_str(&opts, pat);
	}
	rc = edit_line(users_path, false, address, CHANGE_OPTIONS, opts.p, err,
	    errsize);
 done:
	free_strings(&seen, &n_seen);
	free(opts.p);
	return rc;
}

int
accounts_alias_add(const char *aliases_path, const char *address,
    char *const *targets, size_t n_targets, char *err, size_t errsize)
{
	char addr[ACCOUNT_ADDRESS_MAX + 1], target[ACCOUNT_ADDRESS_MAX + 1];
	struct buf line = { NULL, 0, 0 };
	struct add_ctx ctx;
	const char *why;
	size_t i;
	int rc;

	if ((why = accounts_check_address(address, addr)) != NULL)
		return fail(err, errsize, "bad alias: %s", why);
	if (n_targets == 0)
		return fail(err, errsize, "alias %s: no targets", addr);
	if (n_targets > ALIAS_TARGETS_MAX)
		return fail(err, errsize, "alias %s: more than %d targets",
		    addr, ALIAS_TARGETS_MAX);
	buf_str(&line, addr);
	buf_str(&line, ":");
	for (i = 0; i < n_targets; i++) {
		if ((why = accounts_check_target(targets[i], target)) != NULL) {
			free(line.p);
			return fail(err, errsize, "bad target %zu: %s", i + 1,
			    why);
		}
		buf_str(&line, i == 0 ? " " : ", ");
		buf_str(&line, target);
	}
	buf_str(&line, "\n");
	ctx.aliases = true;
	ctx.address = addr;
	ctx.line = line.p;
	rc = accounts_edit(aliases_path, ALIASES_NEW_MODE, add_edit, &ctx, err,
	    errsize);
	free(line.p);
	return rc;
}

int
accounts_alias_del(const char *aliases_path, const char *address, char *err,
    size_t errsize)
{
	return edit_line(aliases_path, true, address, CHANGE_DELETE, NULL, err,
	    errsize);
}

/* The Dovecot name of the scheme of a crypt(3) string, for messages. */
static const char *
crypt_scheme_name(const char *h, size_t len, char *out, size_t outsize)
{
	char pfx[SCHEME_SHOWN_MAX + 4];
	size_t i, n;
	int k;

	if ((k = hash_scheme(h, len)) != -1)
		return accepted_schemes[k].name;
	if (len == 0 || h[0] != '$')
		return "DES-CRYPT";
	for (i = 0; i < sizeof(refused_schemes) / sizeof(refused_schemes[0]);
	    i++) {
		n = strlen(refused_schemes[i].prefix);
		if (len >= n && memcmp(h, refused_schemes[i].prefix, n) == 0)
			return refused_schemes[i].name;
	}
	snprintf(out, outsize, "CRYPT \"%s\"", hash_prefix(h, len, pfx,
	    sizeof(pfx)));
	return out;
}

static bool
scheme_is(const char *s, size_t len, const char *name)
{
	return len == strlen(name) && strncasecmp(s, name, len) == 0;
}

/*
 * The password field of a Dovecot passwd-file line: "{SCHEME}hash", a bare
 * crypt(3) string (Dovecot's default scheme there is CRYPT) or nothing.
 * Sets the hash to store (len 0: no password). Returns 0, or -1 with why.
 */
static int
import_hash(const char *pw, size_t len, const char **hash_r,
    size_t *hlen_r, char *why, size_t whysize)
{
	static const char *importable[] = {
		"SHA512-CRYPT", "BLF-CRYPT", "YESCRYPT", "CRYPT",
	};
	char name[SCHEME_SHOWN_MAX + 4], own_buf[SCHEME_SHOWN_MAX + 16];
	const char *scheme = NULL, *close, *own;
	size_t slen = 0, i;

	if (len > 0 && pw[0] == '{') {
		if ((close = memchr(pw, '}', len)) == NULL)
			return fail(why, whysize, "password field starts with "
			    "'{' but has no '}'");
		scheme = pw + 1;
		slen = (size_t)(close - scheme);
		len -= slen + 2;
		pw = close + 1;
		for (i = 0; i < sizeof(importable) / sizeof(importable[0]) &&
		    !scheme_is(scheme, slen, importable[i]); i++)
			;
		if (i == sizeof(importable) / sizeof(importable[0]))
			return fail(why, whysize, "scheme %s cannot be "
			    "imported; the user must set a new password",
			    shown(scheme, slen, name, sizeof(name)));
		if (len == 0)
			return fail(why, whysize, "no hash after {%s}",
			    shown(scheme, slen, name, sizeof(name)));
	}
	*hash_r = pw;
	*hlen_r = len;
	if (len == 0)
		return 0;
	own = crypt_scheme_name(pw, len, own_buf, sizeof(own_buf));
	if (hash_scheme(pw, len) == -1)
		return fail(why, whysize, "scheme %s cannot be imported; the "
		    "user must set a new password", own);
	if (scheme != NULL && !scheme_is(scheme, slen, "CRYPT") &&
	    !scheme_is(scheme, slen, own))
		return fail(why, whysize, "{%s} holds a %s hash",
		    shown(scheme, slen, name, sizeof(name)), own);
	return check_hash(pw, len, why, whysize);
}

/* The address of a passwd-file user name, with default_domain if it has
 * no '@'. */
static int
import_address(const char *user, size_t len, const char *default_domain,
    char *address, char *why, size_t whysize)
{
	char tmp[ACCOUNT_ADDRESS_MAX + 1], name[SCHEME_SHOWN_MAX + 4];
	const char *r;
	int n;

	if (len == 0)
		return fail(why, whysize, "empty user name");
	if (memchr(user, '@', len) != NULL) {
		if (len > ACCOUNT_ADDRESS_MAX)
			return fail(why, whysize, "bad user name: address "
			    "longer than 320 characters");
		memcpy(tmp, user, len);
		tmp[len] = '\0';
	} else {
		if (default_domain == NULL)
			return fail(why, whysize, "user name \"%s\" has no "
			    "@domain and no default domain was given",
			    shown(user, len, name, sizeof(name)));
		n = snprintf(tmp, sizeof(tmp), "%.*s@%s", (int)len, user,
		    default_domain);
		if (n < 0 || (size_t)n >= sizeof(tmp))
			return fail(why, whysize, "bad user name: address "
			    "longer than 320 characters");
	}
	if ((r = accounts_check_address(tmp, address)) != NULL)
		return fail(why, whysize, "bad user name: %s", r);
	return 0;
}

/*
 * accounts_import_parse, also giving the line of each account (lines_r,
 * malloc'd) for the errors of accounts_user_import.
 */
static int
import_parse(const char *name, const char *text, size_t len,
    const char *default_domain, struct account_table **table_r,
    size_t **lines_r, char *err, size_t errsize)
{
	struct builder b;
	struct lines it = { NULL, NULL, 0 };
	struct account a;
	char address[ACCOUNT_ADDRESS_MAX + 1], why[WHY_MAX];
	const char *line, *colon, *pw, *pw_end, *hash = NULL;
	size_t n, hlen = 0, *lines = NULL, i;

	if (name == NULL)
		name = "import";
	/* NULL + 0 is undefined: an empty text may come as NULL. */
	if (text != NULL)
		it = (struct lines){ text, text + len, 0 };
	memset(&b, 0, sizeof(b));
	b.t = xcalloc(1, sizeof(*b.t));
	index_reserve(b.t, 0);
	while (lines_next(&it, &line, &n)) {
		if (memchr(line, '\0', n) != NULL) {
			fail(why, sizeof(why), "NUL byte");
			goto bad;
		}
		trim(&line, &n);
		if (n == 0 || line[0] == '#')
			continue;
		colon = memchr(line, ':', n);
		pw = pw_end = line + n;
		if (colon != NULL) {
			pw = colon + 1;
			if ((pw_end = memchr(pw, ':', (size_t)(line + n -
			    pw))) == NULL)
				pw_end = line + n;
		} else
			colon = line + n;
		if (import_address(line, (size_t)(colon - line),
		    default_domain, address, why, sizeof(why)) == -1 ||
		    import_hash(pw, (size_t)(pw_end - pw), &hash, &hlen, why,
		    sizeof(why)) == -1)
			goto bad;
		if (accounts_find_user(b.t, address) != NULL) {
			for (i = 0; strcmp(b.t->accounts[i].address,
			    address) != 0; i++)
				;
			fail(why, sizeof(why), "duplicate user %s (first on "
			    "line %zu)", address, lines[i]);
			goto bad;
		}
		memset(&a, 0, sizeof(a));
		memcpy(a.address, address, strlen(address) + 1);
		a.hash = dup_bytes(hash, hlen);
		lines = xreallocarray(lines, b.t->n_accounts + 1,
		    sizeof(*lines));
		lines[b.t->n_accounts] = it.lineno;
		builder_add_account(&b, &a);
	}
	*table_r = b.t;
	if (lines_r != NULL)
		*lines_r = lines;
	else
		free(lines);
	return 0;
 bad:
	fail(err, errsize, "%s:%zu: %s", name, it.lineno, why);
	accounts_free(&b.t);
	free(lines);
	return -1;
}

int
accounts_import_parse(const char *name, const char *text, size_t len,
    const char *default_domain, struct account_table **table_r, char *err,
    size_t errsize)
{
	return import_parse(name, text, len, default_domain, table_r, NULL,
	    err, errsize);
}

/* Reads and parses an import file; its text is wiped (it holds hashes). */
static int
import_load(const char *import_path, const char *default_domain,
    struct account_table **table_r, size_t **lines_r, char *err,
    size_t errsize)
{
	struct stat st;
	char *text;
	size_t len;
	bool exists;
	int rc;

	if (read_file(import_path, &text, &len, &st, &exists, err,
	    errsize) == -1)
		return -1;
	if (!exists)
		return fail(err, errsize, "%s: %s", import_path,
		    strerror(ENOENT));
	rc = import_parse(import_path, text, len, default_domain, table_r,
	    lines_r, err, errsize);
	if (text != NULL) {
		explicit_bzero(text, len);
		free(text);
	}
	return rc;
}

int
accounts_import_load(const char *import_path, const char *default_domain,
    struct account_table **table_r, char *err, size_t errsize)
{
	return import_load(import_path, default_domain, table_r, NULL, err,
	    errsize);
}

struct import_ctx {
	const char *import_path;
	const struct account_table *imp;
	const size_t *lines;
	size_t imported;
};

static int
import_edit(void *vctx, const char *path, const char *old, size_t oldlen,
    struct buf *out, char *err, size_t errsize)
{
	struct import_ctx *ctx = vctx;
	const struct account *a, *had;
	struct account_table *cur;
	size_t i;
	int rc = -1;

	/* With hashes: an account already there is skipped only if it is
	 * the very same. */
	if (accounts_parse(path, old, oldlen, NULL, NULL, 0, true, &cur, err,
	    errsize) == -1)
		return -1;
	copy_old(out, old, oldlen);
	ctx->imported = 0;
	for (i = 0; i < ctx->imp->n_accounts; i++) {
		a = &ctx->imp->accounts[i];
		if ((had = accounts_find_user(cur, a->address)) != NULL) {
			if (!had->locked && strcmp(had->hash, a->hash) == 0)
				continue;
			fail(err, errsize, "%s:%zu: user %s already exists in "
			    "%s with another password hash", ctx->import_path,
			    ctx->lines[i], a->address, path);
			goto done;
		}
		buf_str(out, a->address);
		buf_str(out, ":");
		buf_str(out, a->hash);
		buf_str(out, "\n");
		ctx->imported++;
	}
	rc = 0;
 done:
	accounts_free(&cur);
	return rc;
}

int
accounts_user_import(const char *users_path, const char *import_path,
    const char *default_domain, size_t *imported_r, char *err,
    size_t errsize)
{
	struct import_ctx ctx;
	struct account_table *imp;
	size_t *lines;
	int rc;

	if (import_load(import_path, default_domain, &imp, &lines, err,
	    errsize) == -1)
		return -1;
	memset(&ctx, 0, sizeof(ctx));
	ctx.import_path = import_path;
	ctx.imp = imp;
	ctx.lines = lines;
	rc = accounts_edit(users_path, USERS_NEW_MODE, import_edit, &ctx, err,
	    errsize);
	if (rc == 0)
		*imported_r = ctx.imported;
	accounts_free(&imp);
	free(lines);
	return rc;
}

int
accounts_public_text(const struct account_table *t, char **text_r,
    size_t *len_r)
{
	struct buf b = { NULL, 0, 0 };
	const struct account *a;
	size_t i, j;

	buf_str(&b, "");
	for (i = 0; t != NULL && i < t->n_accounts; i++) {
		a = &t->accounts[i];
		buf_str(&b, a->address);
		buf_str(&b, a->locked ? ":!" : ":");
		for (j = 0; j < a->n_send_as; j++) {
			buf_str(&b, j == 0 ? ":" : ",");
			buf_str(&b, SEND_AS_OPTION "=");
			buf_str(&b, a->send_as[j]);
		}
		buf_str(&b, "\n");
	}
	*text_r = b.p;
	*len_r = b.len;
	return 0;
}

bool
accounts_untag(const char *address, char *base)
{
	const char *at = strrchr(address, '@'), *plus = strchr(address, '+');

	if (at == NULL || plus == NULL || plus > at || plus == address)
		return false;
	snprintf(base, ACCOUNT_ADDRESS_MAX + 1, "%.*s%s",
	    (int)(plus - address), address, at);
	return true;
}

struct send_as_walk {
	const struct account_table *t;
	const char *account;
	size_t steps;
};

static bool walk_reaches(struct send_as_walk *, const char *, unsigned);

/* Whether mail to exactly this address would reach the account: 1 or 0,
 * or -1 when it is neither a user nor an alias. */
static int
walk_exact(struct send_as_walk *w, const char *address, unsigned depth)
{
	const struct account *u;
	const struct alias *al;
	size_t i;

	/* A user wins over an alias of the same address, as in delivery. */
	if ((u = accounts_find_user(w->t, address)) != NULL)
		return strcmp(u->address, w->account) == 0;
	if ((al = accounts_find_alias(w->t, address)) == NULL)
		return -1;
	/* A loop ends here too: it only ever goes deeper. */
	if (depth >= ACCOUNTS_SEND_AS_DEPTH_MAX)
		return 0;
	for (i = 0; i < al->n_targets; i++)
		if (walk_reaches(w, al->targets[i], depth + 1))
			return 1;
	return 0;
}

/*
 * The address itself, then without its "+tag", as recipient_resolve does;
 * steps are counted as it counts them, so that what it delivers to the
 * account within its limits is found here within the same.
 */
static bool
walk_reaches(struct send_as_walk *w, const char *address, unsigned depth)
{
	char base[ACCOUNT_ADDRESS_MAX + 1];
	int r;

	if (++w->steps > ACCOUNTS_SEND_AS_STEPS_MAX)
		return false;
	if ((r = walk_exact(w, address, depth)) != -1)
		return r == 1;
	return accounts_untag(address, base) &&
	    walk_exact(w, base, depth) == 1;
}

/* Lowercases s into out (ACCOUNT_ADDRESS_MAX + 1); false if too long. */
static bool
lower_address(const char *s, char *out)
{
	size_t len = strnlen(s, ACCOUNT_ADDRESS_MAX + 1), i;

	if (len > ACCOUNT_ADDRESS_MAX)
		return false;
	for (i = 0; i <= len; i++)
		out[i] = lower(s[i]);
	return true;
}

bool
accounts_may_send_as(const struct account_table *t, const char *account,
    const char *sender)
{
	char acct[ACCOUNT_ADDRESS_MAX + 1], from[ACCOUNT_ADDRESS_MAX + 1];
	struct send_as_walk w;
	const struct account *a;
	const char *at, *p;
	size_t i;

	if (!lower_address(account, acct) ||
	    (a = accounts_find_user(t, acct)) == NULL)
		return false;
	if (sender[0] == '\0')
		return true;
	for (i = 0; i < a->n_send_as; i++)
		if (strcmp(a->send_as[i], "*") == 0)
			return true;
	if (!lower_address(sender, from))
		return false;
	w.t = t;
	w.account = a->address;
	w.steps = 0;
	if (walk_reaches(&w, from, 0))
		return true;
	at = strrchr(from, '@');
	for (i = 0; i < a->n_send_as; i++) {
		p = a->send_as[i];
		if (p[0] == '@' ? at != NULL && at != from &&
		    strcmp(at, p) == 0 : strcmp(from, p) == 0)
			return true;
	}
	return false;
}
