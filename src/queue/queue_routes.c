/*
 * The routes file (queue_routes.h): a pure parser into a sorted table,
 * the lookup (exact, longest ".suffix", "*"), relay_host's HOST[:PORT]
 * syntax, and the file-system side: loading, change detection, and the
 * credential files of auth=, refused when others may read them
 * (OpenSMTPD's check_file_secrecy).
 */
#include "queue/queue_routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/config.h"
#include "core/util.h"

#define ROUTES_SHOWN_MAX 64	/* bytes of a bad word in a message */

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Untrusted bytes for a message (shown_text). */
static const char *
shown(const char *s, size_t len, char *buf, size_t bufsize)
{
	return shown_text(s, len, ROUTES_SHOWN_MAX, buf, bufsize);
}

/* ---- relay_host syntax ------------------------------------------------- */

static bool
is_ip(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int
queue_routes_parse_relay(const char *relay, size_t len, char *host,
    size_t hostsize, unsigned *port_r, char *err, size_t errsize)
{
	const char *h = relay, *end = relay + len, *colon = NULL, *p;
	char name[DNS_NAME_MAX + 2];
	size_t hlen;
	unsigned long port = QUEUE_ROUTES_RELAY_PORT;

	if (len > 0 && relay[0] == '[') {
		const char *close = memchr(relay, ']', len);

		if (close == NULL) {
			set_err(err, errsize, "no ']' after '['");
			return -1;
		}
		h = relay + 1;
		hlen = (size_t)(close - h);
		if (close + 1 < end) {
			if (close[1] != ':') {
				set_err(err, errsize, "want [HOST]:PORT");
				return -1;
			}
			colon = close + 1;
		}
	} else {
		for (p = relay; p < end; p++)
			if (*p == ':') {
				if (colon != NULL) {
					set_err(err, errsize, "an IPv6 address "
					    "needs brackets: [ADDRESS]:PORT");
					return -1;
				}
				colon = p;
			}
		hlen = colon != NULL ? (size_t)(colon - relay) : len;
	}
	if (colon != NULL) {
		unsigned long v = 0;

		if (colon + 1 == end || end - colon - 1 > 5) {
			set_err(err, errsize, "bad port (1..65535)");
			return -1;
		}
		for (p = colon + 1; p < end; p++) {
			if (*p < '0' || *p > '9') {
				set_err(err, errsize, "bad port (1..65535)");
				return -1;
			}
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (v < 1 || v > 65535) {
			set_err(err, errsize, "bad port (1..65535)");
			return -1;
		}
		port = v;
	}
	if (hlen == 0) {
		set_err(err, errsize, "no host");
		return -1;
	}
	if (hlen > DNS_NAME_MAX || hlen >= hostsize) {
		set_err(err, errsize, "host name too long");
		return -1;
	}
	memcpy(name, h, hlen);
	name[hlen] = '\0';
	if (memchr(name, '\0', hlen) != NULL) {
		set_err(err, errsize, "not a host name or address");
		return -1;
	}
	if (!is_ip(name)) {
		size_t i;

		/* A name in brackets is taken too: "[mx]" is a host named
		 * mx, where relay=mx means MX delivery. */
		if (!config_dns_name_ok(name)) {
			set_err(err, errsize, "not a host name or address");
			return -1;
		}
		for (i = 0; name[i] != '\0'; i++)
			name[i] = ascii_lower(name[i]);
	}
	memcpy(host, name, hlen + 1);
	*port_r = (unsigned)port;
	return 0;
}

/* ---- The parser -------------------------------------------------------- */

const char *
queue_route_tls_name(enum queue_route_tls tls)
{
	switch (tls) {
	case QUEUE_ROUTE_TLS_NONE:
		return "none";
	case QUEUE_ROUTE_TLS_MAY:
		return "may";
	case QUEUE_ROUTE_TLS_ENCRYPT:
		return "encrypt";
	case QUEUE_ROUTE_TLS_VERIFY:
		return "verify";
	case QUEUE_ROUTE_TLS_GLOBAL:
		break;
	}
	return "";
}

const char *
queue_route_pattern(const struct queue_route *r, char *buf, size_t bufsize)
{
	switch (r->kind) {
	case QUEUE_ROUTE_EXACT:
		snprintf(buf, bufsize, "%s", r->domain);
		break;
	case QUEUE_ROUTE_SUFFIX:
		snprintf(buf, bufsize, ".%s", r->domain);
		break;
	case QUEUE_ROUTE_DEFAULT:
		snprintf(buf, bufsize, "*");
		break;
	}
	return buf;
}

static int
route_cmp(const void *a, const void *b)
{
	const struct queue_route *x = a, *y = b;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if ((c = strcmp(x->domain, y->domain)) != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void
route_clear(struct queue_route *r)
{
	free(r->auth);
	if (r->auth_user != NULL) {
		OPENSSL_cleanse(r->auth_user, strlen(r->auth_user));
		free(r->auth_user);
	}
	if (r->auth_password != NULL) {
		OPENSSL_cleanse(r->auth_password, strlen(r->auth_password));
		free(r->auth_password);
	}
	r->auth = r->auth_user = r->auth_password = NULL;
}

void
queue_routes_free(struct queue_routes **routes_p)
{
	struct queue_routes *t;
	size_t i;

	if (routes_p == NULL || (t = *routes_p) == NULL)
		return;
	for (i = 0; i < t->n; i++)
		route_clear(&t->routes[i]);
	free(t->routes);
	free(t->name);
	free(t);
	*routes_p = NULL;
}

/* DOMAIN: "*", ".name" or "name". */
static int
parse_domain(const char *w, size_t len, struct queue_route *r)
{
	size_t i;

	if (len == 1 && w[0] == '*') {
		r->kind = QUEUE_ROUTE_DEFAULT;
		r->domain[0] = '\0';
		return 0;
	}
	r->kind = QUEUE_ROUTE_EXACT;
	if (w[0] == '.') {
		r->kind = QUEUE_ROUTE_SUFFIX;
		w++;
		len--;
	}
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	memcpy(r->domain, w, len);
	r->domain[len] = '\0';
	if (!config_dns_name_ok(r->domain))
		return -1;
	for (i = 0; i < len; i++)
		r->domain[i] = ascii_lower(r->domain[i]);
	return 0;
}

/* One KEY=VALUE word. */
static int
parse_option(const char *w, size_t len, struct queue_route *r,
    unsigned *seen, char *why, size_t whysize)
{
	static const char *const keys[] = { "relay", "tls", "auth" };
	static const char *const tls_names[] = { "none", "may", "encrypt",
	    "verify" };
	const char *eq = memchr(w, '=', len), *v;
	char buf[ROUTES_SHOWN_MAX + 4], reason[128];
	size_t klen, vlen, k, i;

	if (eq == NULL) {
		set_err(why, whysize, "\"%s\": want KEY=VALUE (relay, tls "
		    "or auth)", shown(w, len, buf, sizeof(buf)));
		return -1;
	}
	klen = (size_t)(eq - w);
	v = eq + 1;
	vlen = len - klen - 1;
	for (k = 0; k < 3; k++)
		if (strlen(keys[k]) == klen && memcmp(keys[k], w, klen) == 0)
			break;
	if (k == 3) {
		set_err(why, whysize, "unknown key \"%s\" (relay, tls or "
		    "auth)", shown(w, klen, buf, sizeof(buf)));
		return -1;
	}
	if (*seen & (1u << k)) {
		set_err(why, whysize, "%s given twice", keys[k]);
		return -1;
	}
	*seen |= 1u << k;
	if (vlen == 0) {
		set_err(why, whysize, "%s: no value", keys[k]);
		return -1;
	}
	switch (k) {
	case 0:
		if (vlen == 2 && strncasecmp(v, "mx", 2) == 0) {
			r->relay = QUEUE_ROUTE_RELAY_MX;
			break;
		}
		if (queue_routes_parse_relay(v, vlen, r->host,
		    sizeof(r->host), &r->port, reason, sizeof(reason)) < 0) {
			set_err(why, whysize, "relay=%s: %s", shown(v, vlen,
			    buf, sizeof(buf)), reason);
			return -1;
		}
		r->relay = QUEUE_ROUTE_RELAY_HOST;
		break;
	case 1:
		for (i = 0; i < 4; i++)
			if (strlen(tls_names[i]) == vlen &&
			    memcmp(tls_names[i], v, vlen) == 0)
				break;
		if (i == 4) {
			set_err(why, whysize, "tls=%s: want none, may, "
			    "encrypt or verify", shown(v, vlen, buf,
			    sizeof(buf)));
			return -1;
		}
		r->tls = (enum queue_route_tls)(QUEUE_ROUTE_TLS_NONE + i);
		break;
	default:
		if ((r->auth = strndup(v, vlen)) == NULL) {
			set_err(why, whysize, "%s", strerror(errno));
			return -1;
		}
		break;
	}
	return 0;
}

/*
 * One line (without its end, at most QUEUE_ROUTES_LINE_MAX bytes, no
 * NUL). Returns 1 with *r filled, 0 for a blank or comment line, -1 with
 * the reason in why.
 */
static int
parse_line(const char *line, size_t len, struct queue_route *r, char *why,
    size_t whysize)
{
	const char *p = line, *end, *w;
	unsigned seen = 0;
	size_t i;

	memset(r, 0, sizeof(*r));
	/* "#" starts a comment at the start or after a blank, as in
	 * tegami.conf; "a#b" stays a word. */
	for (i = 0; i < len; i++)
		if (line[i] == '#' && (i == 0 || is_blank(line[i - 1]))) {
			len = i;
			break;
		}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			set_err(why, whysize, "control character (0x%02x)", c);
			return -1;
		}
	}
	end = line + len;
	while (p < end && is_blank(*p))
		p++;
	if (p == end)
		return 0;
	for (w = p; p < end && !is_blank(*p); p++)
		;
	if (parse_domain(w, (size_t)(p - w), r) < 0) {
		char buf[ROUTES_SHOWN_MAX + 4];

		set_err(why, whysize, "\"%s\": not a domain, \".domain\" or "
		    "\"*\"", shown(w, (size_t)(p - w), buf, sizeof(buf)));
		return -1;
	}
	for (;;) {
		while (p < end && is_blank(*p))
			p++;
		if (p == end)
			break;
		for (w = p; p < end && !is_blank(*p); p++)
			;
		if (parse_option(w, (size_t)(p - w), r, &seen, why,
		    whysize) < 0) {
			route_clear(r);
			return -1;
		}
	}
	if (r->auth != NULL && r->relay == QUEUE_ROUTE_RELAY_MX) {
		set_err(why, whysize, "auth= with relay=mx: MX hosts take no "
		    "AUTH");
		route_clear(r);
		return -1;
	}
	return 1;
}

int
queue_routes_parse(const char *name, const char *text, size_t len,
    struct queue_routes **routes_r, char *err, size_t errsize)
{
	struct queue_routes *t;
	const char *p = text, *end = text + len, *nl;
	char why[256];
	size_t n, i, cap = 0;
	unsigned lineno = 0, dup_line = 0, dup_first = 0;
	int rc;

	*routes_r = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->name = strdup(name)) == NULL) {
		set_err(err, errsize, "%s: %s", name, strerror(errno));
		free(t);
		return -1;
	}
	while (p < end) {
		struct queue_route r;

		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		lineno++;
		if (memchr(p, '\0', n) != NULL) {
			set_err(err, errsize, "%s:%u: NUL byte", name, lineno);
			goto fail;
		}
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > QUEUE_ROUTES_LINE_MAX) {
			set_err(err, errsize, "%s:%u: line longer than %d "
			    "bytes", name, lineno, QUEUE_ROUTES_LINE_MAX);
			goto fail;
		}
		rc = parse_line(p, n, &r, why, sizeof(why));
		if (rc < 0) {
			set_err(err, errsize, "%s:%u: %s", name, lineno, why);
			goto fail;
		}
		p = nl != NULL ? nl + 1 : end;
		if (rc == 0)
			continue;
		if (t->n == QUEUE_ROUTES_MAX) {
			route_clear(&r);
			set_err(err, errsize, "%s:%u: more than %d routes",
			    name, lineno, QUEUE_ROUTES_MAX);
			goto fail;
		}
		if (t->n == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			struct queue_route *nr;

			if (ncap > QUEUE_ROUTES_MAX)
				ncap = QUEUE_ROUTES_MAX;
			nr = realloc(t->routes, ncap * sizeof(*nr));
			if (nr == NULL) {
				route_clear(&r);
				set_err(err, errsize, "%s: %s", name,
				    strerror(errno));
				goto fail;
			}
			t->routes = nr;
			cap = ncap;
		}
		r.line = lineno;
		t->routes[t->n++] = r;
	}
	if (t->n > 0)
		qsort(t->routes, t->n, sizeof(t->routes[0]), route_cmp);
	/* Equal keys are adjacent, in line order: the earliest repeat is
	 * the one reported. */
	for (i = 1; i < t->n; i++) {
		const struct queue_route *a = &t->routes[i - 1];
		const struct queue_route *b = &t->routes[i];

		if (a->kind == b->kind && strcmp(a->domain, b->domain) == 0 &&
		    (dup_line == 0 || b->line < dup_line)) {
			size_t k = i - 1;

			/* The first of the group, for "first on line". */
			while (k > 0 && t->routes[k - 1].kind == b->kind &&
			    strcmp(t->routes[k - 1].domain, b->domain) == 0)
				k--;
			dup_line = b->line;
			dup_first = t->routes[k].line;
		}
	}
	if (dup_line != 0) {
		const struct queue_route *d = NULL;
		char pat[DNS_NAME_MAX + 2];

		for (i = 0; i < t->n && d == NULL; i++)
			if (t->routes[i].line == dup_line)
				d = &t->routes[i];
		set_err(err, errsize, "%s:%u: %s given twice (first on line "
		    "%u)", name, dup_line, queue_route_pattern(d, pat,
		    sizeof(pat)), dup_first);
		goto fail;
	}
	*routes_r = t;
	return 0;

fail:
	queue_routes_free(&t);
	return -1;
}

/* ---- Matching ---------------------------------------------------------- */

static const struct queue_route *
find(const struct queue_routes *t, enum queue_route_kind kind,
    const char *domain)
{
	size_t lo = 0, hi = t->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->routes[mid].kind != kind)
			c = t->routes[mid].kind < kind ? -1 : 1;
		else
			c = strcmp(t->routes[mid].domain, domain);
		if (c == 0)
			return &t->routes[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct queue_route *
queue_routes_match(const struct queue_routes *t, const char *domain)
{
	const struct queue_route *r;
	char d[DNS_NAME_MAX + 1];
	size_t i, len;

	if (t == NULL || t->n == 0)
		return NULL;
	len = strlen(domain);
	if (len <= DNS_NAME_MAX) {
		for (i = 0; i <= len; i++)
			d[i] = ascii_lower(domain[i]);
		if ((r = find(t, QUEUE_ROUTE_EXACT, d)) != NULL)
			return r;
		/* Left to right: the first dot gives the longest suffix. */
		for (i = 0; i < len; i++)
			if (d[i] == '.' && i + 1 < len && (r = find(t,
			    QUEUE_ROUTE_SUFFIX, d + i + 1)) != NULL)
				return r;
	}
	return find(t, QUEUE_ROUTE_DEFAULT, "");
}

/* ---- Files ------------------------------------------------------------- */

static void
stamp_of(const struct stat *st, struct queue_routes_stamp *s)
{
	memset(s, 0, sizeof(*s));
	s->exists = true;
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = st->st_size;
	s->mode = st->st_mode;
	s->mtime = st->st_mtim;
	s->ctime = st->st_ctim;
}

bool
queue_routes_changed(const char *path, const struct queue_routes_stamp *old)
{
	struct queue_routes_stamp now;
	struct stat st;

	if (stat(path, &st) < 0)
		return old->exists || old->error != errno;
	stamp_of(&st, &now);
	return !old->exists || now.dev != old->dev || now.ino != old->ino ||
	    now.size != old->size || now.mode != old->mode ||
	    now.mtime.tv_sec != old->mtime.tv_sec ||
	    now.mtime.tv_nsec != old->mtime.tv_nsec ||
	    now.ctime.tv_sec != old->ctime.tv_sec ||
	    now.ctime.tv_nsec != old->ctime.tv_nsec;
}

int
queue_routes_load(const char *path, struct queue_routes **routes_r,
    struct queue_routes_stamp *stamp_r, char *err, size_t errsize)
{
	struct queue_routes_stamp stamp;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	ssize_t r;
	int fd, rc;

	*routes_r = NULL;
	memset(&stamp, 0, sizeof(stamp));
	if (stamp_r == NULL)
		stamp_r = &stamp;
	memset(stamp_r, 0, sizeof(*stamp_r));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) < 0) {
		stamp_r->error = errno;
		if (errno != ENOENT) {
			set_err(err, errsize, "%s: %s", path, strerror(errno));
			if (stat(path, &st) == 0)
				stamp_of(&st, stamp_r);
			else
				stamp_r->error = errno;
			return -1;
		}
		return queue_routes_parse(path, "", 0, routes_r, err, errsize);
	}
	if (fstat(fd, &st) < 0) {
		stamp_r->error = errno;
		set_err(err, errsize, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	/* What was read, also when it is refused: a broken file is
	 * reported once, not at every look. */
	stamp_of(&st, stamp_r);
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errsize, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	/* It says where mail and passwords go: only its owner may say. */
	if ((st.st_mode & 022) != 0) {
		set_err(err, errsize, "%s: group or others may write it "
		    "(chmod go-w)", path);
		close(fd);
		return -1;
	}
	/* One byte more than allowed, to tell "too large" from "full". */
	if ((text = malloc(QUEUE_ROUTES_FILE_MAX + 1)) == NULL) {
		set_err(err, errsize, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	while (len < QUEUE_ROUTES_FILE_MAX + 1) {
		r = read(fd, text + len, QUEUE_ROUTES_FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			set_err(err, errsize, "%s: %s", path, strerror(errno));
			close(fd);
			free(text);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (len > QUEUE_ROUTES_FILE_MAX) {
		set_err(err, errsize, "%s: larger than %d bytes", path,
		    QUEUE_ROUTES_FILE_MAX);
		free(text);
		return -1;
	}
	rc = queue_routes_parse(path, text, len, routes_r, err, errsize);
	free(text);
	return rc;
}

int
queue_routes_read_credentials(const char *path, uid_t owner_uid,
    char **user_r, char **password_r, char *err, size_t errsize)
{
	char line[QUEUE_ROUTES_CRED_MAX + 2], *sp;
	struct stat st;
	ssize_t r;
	size_t len = 0, n;
	int fd, saved;

	*user_r = *password_r = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) < 0) {
		saved = errno;
		set_err(err, errsize, "%s: %s", path, strerror(errno));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		set_err(err, errsize, "%s: %s", path, strerror(errno));
		close(fd);
		errno = 0;
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
	    (st.st_uid != 0 && st.st_uid != owner_uid &&
	    st.st_uid != geteuid())) {
		set_err(err, errsize, "%s: %s", path, !S_ISREG(st.st_mode) ?
		    "not a regular file" : (st.st_mode & 077) != 0 ?
		    "group or others have access (it holds a password: "
		    "chmod 600)" : "owned by someone other than root or the "
		    "user setting's account");
		close(fd);
		errno = 0;
		return -1;
	}
	while (len < sizeof(line) - 1) {
		r = read(fd, line + len, sizeof(line) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	line[len] = '\0';
	for (n = 0; n < len && line[n] != '\r' && line[n] != '\n'; n++)
		;
	if (n == len && len == sizeof(line) - 1) {
		OPENSSL_cleanse(line, sizeof(line));
		set_err(err, errsize, "%s: line longer than %d bytes", path,
		    QUEUE_ROUTES_CRED_MAX);
		errno = 0;
		return -1;
	}
	line[n] = '\0';
	sp = strchr(line, ' ');
	if (n == 0 || strlen(line) != n || sp == NULL || sp == line ||
	    sp[1] == '\0') {
		OPENSSL_cleanse(line, sizeof(line));
		set_err(err, errsize, "%s: want one line \"USER PASSWORD\"",
		    path);
		errno = 0;
		return -1;
	}
	*sp = '\0';
	*user_r = strdup(line);
	*password_r = strdup(sp + 1);
	OPENSSL_cleanse(line, sizeof(line));
	if (*user_r == NULL || *password_r == NULL) {
		free(*user_r);
		if (*password_r != NULL) {
			OPENSSL_cleanse(*password_r, strlen(*password_r));
			free(*password_r);
		}
		*user_r = *password_r = NULL;
		set_err(err, errsize, "%s: out of memory", path);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* The credentials the first of old[] that has them holds for this auth=
 * value, or NULL. */
static const struct queue_route *
old_credentials(const struct queue_routes *const *old, size_t n_old,
    const char *auth)
{
	size_t i, k;

	for (k = 0; k < n_old; k++)
		for (i = 0; old[k] != NULL && i < old[k]->n; i++)
			if (old[k]->routes[i].auth != NULL &&
			    old[k]->routes[i].auth_user != NULL &&
			    strcmp(old[k]->routes[i].auth, auth) == 0)
				return &old[k]->routes[i];
	return NULL;
}

int
queue_routes_load_credentials(struct queue_routes *t, const char *state_dir,
    uid_t owner_uid, const struct queue_routes *const *old, size_t n_old,
    size_t *kept_r, char *err, size_t errsize)
{
	char path[PATH_MAX], why[PATH_MAX + 256];
	const struct queue_route *o;
	size_t i;

	if (kept_r != NULL)
		*kept_r = 0;
	for (i = 0; i < t->n; i++) {
		struct queue_route *r = &t->routes[i];

		if (r->auth == NULL)
			continue;
		if (snprintf(path, sizeof(path), "%s%s%s", r->auth[0] == '/' ?
		    "" : state_dir, r->auth[0] == '/' ? "" : "/", r->auth) >=
		    (int)sizeof(path)) {
			set_err(err, errsize, "%s:%u: auth=%s: path too long",
			    t->name, r->line, r->auth);
			return -1;
		}
		if (queue_routes_read_credentials(path, owner_uid,
		    &r->auth_user, &r->auth_password, why, sizeof(why)) == 0)
			continue;
		if (errno == EACCES && (o = old_credentials(old, n_old,
		    r->auth)) != NULL) {
			/* Root's file, and root is gone: what was read at
			 * start (or the last time it could be) still holds. */
			r->auth_user = strdup(o->auth_user);
			r->auth_password = strdup(o->auth_password);
			if (r->auth_user == NULL || r->auth_password == NULL) {
				set_err(err, errsize, "out of memory");
				return -1;
			}
			if (kept_r != NULL)
				(*kept_r)++;
			continue;
		}
		set_err(err, errsize, "%s:%u: auth=%s: %s", t->name, r->line,
		    r->auth, why);
		return -1;
	}
	return 0;
}

int
queue_routes_check(const struct tegami_config *cfg, char *err, size_t errsize)
{
	struct queue_routes *t;
	struct passwd *pw = getpwnam(cfg->user);
	int n;

	if (queue_routes_load(cfg->routes_file, &t, NULL, err, errsize) < 0)
		return -1;
	if (queue_routes_load_credentials(t, cfg->state_dir, pw != NULL ?
	    pw->pw_uid : geteuid(), NULL, 0, NULL, err, errsize) < 0) {
		queue_routes_free(&t);
		return -1;
	}
	n = (int)t->n;
	queue_routes_free(&t);
	return n;
}
