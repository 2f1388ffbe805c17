/*
 * The users and aliases files: parsing into a table with a hash index (the
 * server does one lookup per RCPT), and the locked, atomic edits behind
 * `tegami user` and `tegami alias`. Addresses are RFC 5321 4.1.2 dot-atoms.
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

/* The index reads the address at offset 0 of either entry type. */
_Static_assert(offsetof(struct account, address) == 0, "address first");
_Static_assert(offsetof(struct alias, address) == 0, "address first");
_Static_assert(ACCOUNTS_PASSWORD_MAX < CRYPT_MAX_PASSPHRASE_SIZE,
    "crypt_rn refuses longer pass phrases");

struct buf {
	char *p;
	size_t len, cap;
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

static const char *
check_hash(const char *h, size_t len)
{
	size_t i;

	if (len == 0)
		return "missing password hash after ':'";
	if (h[0] != '$')
		return "password hash is not a crypt(3) hash (no leading '$')";
	if (len >= ACCOUNT_HASH_MAX)
		return "password hash longer than 255 characters";
	for (i = 0; i < len; i++)
		if (h[i] == ':' || (unsigned char)h[i] <= ' ' ||
		    (unsigned char)h[i] >= 0x7f)
			return "password hash contains ':', white space or a "
			    "control character";
	return NULL;
}

static int
parse_user_line(struct builder *b, const char *line, size_t len,
    bool with_hashes, char *address, const char **why_r)
{
	struct account_table *t = b->t;
	struct account *a;
	const char *colon, *hash;
	size_t hlen;

	if ((colon = memchr(line, ':', len)) == NULL) {
		*why_r = "missing ':' between address and password hash";
		return -1;
	}
	if ((*why_r = line_address(line, (size_t)(colon - line), address,
	    false)) != NULL)
		return -1;
	hash = colon + 1;
	hlen = len - (size_t)(hash - line);
	trim(&hash, &hlen);
	if ((*why_r = check_hash(hash, hlen)) != NULL)
		return -1;
	if (accounts_find_user(t, address) != NULL)
		return 1;
	if (t->n_accounts == b->accounts_cap) {
		b->accounts_cap = b->accounts_cap ? 2 * b->accounts_cap : 64;
		t->accounts = xreallocarray(t->accounts, b->accounts_cap,
		    sizeof(*t->accounts));
	}
	index_reserve(t, t->n_accounts + 1);
	a = &t->accounts[t->n_accounts];
	memcpy(a->address, address, strlen(address) + 1);
	a->hash = NULL;
	if (with_hashes) {
		a->hash = xmalloc(hlen + 1);
		memcpy(a->hash, hash, hlen);
		a->hash[hlen] = '\0';
	}
	index_insert(t->account_index, t->index_size, t->accounts,
	    sizeof(*t->accounts), t->n_accounts);
	t->n_accounts++;
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
	char address[ACCOUNT_ADDRESS_MAX + 1], why[256];
	const char *line, *r;
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
		if (aliases) {
			rc = parse_alias_line(b, line, n, address, why,
			    sizeof(why));
			if (rc == -1)
				return fail(err, errsize, "%s:%zu: %s", name,
				    it.lineno, why);
		} else {
			rc = parse_user_line(b, line, n, with_hashes, address,
			    &r);
			if (rc == -1)
				return fail(err, errsize, "%s:%zu: %s", name,
				    it.lineno, r);
		}
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

struct del_ctx {
	bool aliases;
	const char *address;
};

static int
del_edit(void *vctx, const char *path, const char *old, size_t oldlen,
    struct buf *out, char *err, size_t errsize)
{
	struct del_ctx *ctx = vctx;
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
		if (line_key(line, n, key) && strcmp(key, ctx->address) == 0)
			continue;
		buf_add(out, line, n);
		if (line + n < it.end)
			buf_add(out, "\n", 1);
	}
	return 0;
}

int
accounts_hash_password(const char *password, char *out, size_t outsize)
{
	struct crypt_data *cd;
	const char *h;
	char *setting;
	int rc = -1;

	if ((setting = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL)
		return -1;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, setting, cd, sizeof(*cd));
	/* libxcrypt may fall back or fail with a "*" token; accept only
	 * what was asked for. */
	if (h != NULL && strncmp(h, "$y$", 3) == 0 && strlen(h) < outsize &&
	    check_hash(h, strlen(h)) == NULL) {
		memcpy(out, h, strlen(h) + 1);
		rc = 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	free(setting);
	return rc;
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
	if (password[0] == '\0')
		return fail(err, errsize, "empty password refused");
	if (strnlen(password, ACCOUNTS_PASSWORD_MAX + 1) >
	    ACCOUNTS_PASSWORD_MAX)
		return fail(err, errsize, "password longer than %d bytes",
		    ACCOUNTS_PASSWORD_MAX);
	/* Hash before locking: yescrypt is slow on purpose. */
	if (accounts_hash_password(password, hash, sizeof(hash)) == -1)
		return fail(err, errsize, "hashing the password failed "
		    "(yescrypt)");
	snprintf(line, sizeof(line), "%s:%s\n", addr, hash);
	ctx.aliases = false;
	ctx.address = addr;
	ctx.line = line;
	return accounts_edit(users_path, USERS_NEW_MODE, add_edit, &ctx, err,
	    errsize);
}

static int
del_address(const char *path, bool aliases, const char *address, char *err,
    size_t errsize)
{
	char addr[ACCOUNT_ADDRESS_MAX + 1];
	struct del_ctx ctx;
	const char *why;

	if ((why = accounts_check_address(address, addr)) != NULL)
		return fail(err, errsize, "bad address: %s", why);
	ctx.aliases = aliases;
	ctx.address = addr;
	return accounts_edit(path, aliases ? ALIASES_NEW_MODE : USERS_NEW_MODE,
	    del_edit, &ctx, err, errsize);
}

int
accounts_user_del(const char *users_path, const char *address, char *err,
    size_t errsize)
{
	return del_address(users_path, false, address, err, errsize);
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
	return del_address(aliases_path, true, address, err, errsize);
}
