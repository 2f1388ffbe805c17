/*
 * The routes file (routes_file, STATE/routes by default): per-destination
 * overrides of relay_host, outbound_tls and relay_auth_file, one line per
 * domain, "#" comments:
 *
 *     DOMAIN  [relay=HOST[:PORT] | relay=mx]  [tls=none|may|encrypt|verify]
 *             [auth=FILE]
 *
 * DOMAIN is a name matched exactly (any case), ".example.com" (any
 * subdomain of example.com, not example.com itself) or "*" (every other
 * domain). The most specific route wins: exact, then the longest
 * ".suffix", then "*"; a domain no route matches, and every key a route
 * leaves out, takes the global settings. The parser is a pure function
 * over bytes; loading, change detection and the credential files are
 * separate.
 */
#ifndef TEGAMI_QUEUE_ROUTES_H
#define TEGAMI_QUEUE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "dns/dns.h"

#define QUEUE_ROUTES_LINE_MAX 1024	/* bytes, without the line end */
#define QUEUE_ROUTES_MAX 10000		/* routes in one file */
#define QUEUE_ROUTES_FILE_MAX (4 * 1024 * 1024)	/* bytes of the file */
#define QUEUE_ROUTES_CRED_MAX 1024	/* bytes of a credentials line */
#define QUEUE_ROUTES_RELAY_PORT 587	/* relay=HOST without a port */

enum queue_route_kind {
	QUEUE_ROUTE_EXACT,		/* "example.com" */
	QUEUE_ROUTE_SUFFIX,		/* ".example.com" */
	QUEUE_ROUTE_DEFAULT,		/* "*" */
};

enum queue_route_relay {
	QUEUE_ROUTE_RELAY_GLOBAL,	/* not given: relay_host, else MX */
	QUEUE_ROUTE_RELAY_MX,		/* relay=mx: MX, also with relay_host */
	QUEUE_ROUTE_RELAY_HOST,		/* relay=HOST[:PORT] */
};

enum queue_route_tls {
	QUEUE_ROUTE_TLS_GLOBAL,		/* not given: outbound_tls (relay
					 * hosts: verify) */
	QUEUE_ROUTE_TLS_NONE,
	QUEUE_ROUTE_TLS_MAY,
	QUEUE_ROUTE_TLS_ENCRYPT,
	QUEUE_ROUTE_TLS_VERIFY,
};

struct queue_route {
	enum queue_route_kind kind;
	/* Lowercased; a suffix without its leading dot; "" for "*". */
	char domain[DNS_NAME_MAX + 1];
	enum queue_route_relay relay;
	char host[DNS_NAME_MAX + 1];	/* RELAY_HOST: a name or address */
	unsigned port;			/* RELAY_HOST: 465 is implicit TLS */
	enum queue_route_tls tls;
	char *auth;			/* auth= as written, or NULL */
	/* Filled by queue_routes_load_credentials, NULL before. */
	char *auth_user, *auth_password;
	unsigned line;			/* in the file, for messages */
};

struct queue_routes {
	char *name;			/* the file, for messages */
	struct queue_route *routes;	/* sorted by kind, then domain */
	size_t n;
};

/*
 * Parses the text of a routes file (len bytes, NULs refused); name is
 * used in messages. Returns 0 and *routes_r (free with
 * queue_routes_free; n may be 0), or -1 with "NAME:LINE: reason" in err
 * (or "NAME: reason" when not about one line) and *routes_r NULL.
 * Refused: a line over QUEUE_ROUTES_LINE_MAX, a control byte, a bad
 * DOMAIN, a domain given twice, more than QUEUE_ROUTES_MAX routes, a word
 * that is not KEY=VALUE, an unknown or repeated key, an empty value, a
 * bad relay host or port, a tls value other than the four, and auth=
 * with relay=mx (MX hosts take no AUTH).
 */
int queue_routes_parse(const char *name, const char *text, size_t len,
    struct queue_routes **routes_r, char *err, size_t errsize);

/* Frees *routes_p (wiping credentials) and sets it to NULL; NULL is
 * allowed. */
void queue_routes_free(struct queue_routes **routes_p);

/*
 * The route for domain (any case), or NULL when no route applies (and
 * routes may be NULL): the exact one, else the longest ".suffix" one,
 * else "*".
 */
const struct queue_route *queue_routes_match(const struct queue_routes *routes,
    const char *domain);

/* "example.com", ".example.com" or "*": the route's DOMAIN as written
 * (lowercased). buf holds at least DNS_NAME_MAX + 2 bytes. */
const char *queue_route_pattern(const struct queue_route *r, char *buf,
    size_t bufsize);

/* "none", "may", "encrypt", "verify"; "" for QUEUE_ROUTE_TLS_GLOBAL. */
const char *queue_route_tls_name(enum queue_route_tls tls);

/*
 * relay_host's syntax, shared by relay=: "HOST", "HOST:PORT",
 * "[HOST]:PORT" or "[HOST]" (an IPv6 address needs the brackets). HOST is
 * a DNS name or a numeric address; PORT 1..65535, default
 * QUEUE_ROUTES_RELAY_PORT. Writes the host (lowercased when a name) and
 * the port; returns 0, or -1 with the reason in err.
 */
int queue_routes_parse_relay(const char *relay, size_t len, char *host,
    size_t hostsize, unsigned *port_r, char *err, size_t errsize);

/* What queue_routes_changed compares: the file as stat(2) sees it. */
struct queue_routes_stamp {
	bool exists;
	int error;			/* !exists: stat's errno (ENOENT) */
	dev_t dev;
	ino_t ino;
	off_t size;
	mode_t mode;
	struct timespec mtime, ctime;
};

/*
 * Reads and parses the routes file at path. A missing file is no routes
 * (0, an empty table); one that group or others may write is refused. Returns 0 with *routes_r, or -1 with the reason in
 * err. *stamp_r (when not NULL) describes the file that was read, also
 * when it was refused, so that a broken file is reported once.
 */
int queue_routes_load(const char *path, struct queue_routes **routes_r,
    struct queue_routes_stamp *stamp_r, char *err, size_t errsize);

/* True when the file at path is not the one stamp describes (created,
 * removed, replaced or written since). */
bool queue_routes_changed(const char *path,
    const struct queue_routes_stamp *stamp);

/*
 * Reads a credentials file (relay_auth_file's format: one line "USER
 * PASSWORD", the password being the rest of the line). Refused: not a
 * regular file, any permission for group or others, an owner other than
 * root, owner_uid or the caller, an empty or malformed line. Returns 0
 * with malloc'd *user_r and *password_r, or -1 with the reason in err
 * (errno is EACCES when the file could not be opened for that reason).
 */
int queue_routes_read_credentials(const char *path, uid_t owner_uid,
    char **user_r, char **password_r, char *err, size_t errsize);

/*
 * Reads the auth= file of every route: absolute, or relative to
 * state_dir. A file that cannot be opened for lack of permission (the
 * queue process has dropped root since it started) keeps the credentials
 * that the first of old[0..n_old) (tables read before, entries may be
 * NULL) holds for the same auth= value, and *kept_r (when not NULL)
 * counts those. Returns 0, or -1 with "NAME:LINE: auth=FILE: reason" in
 * err.
 */
int queue_routes_load_credentials(struct queue_routes *routes,
    const char *state_dir, uid_t owner_uid,
    const struct queue_routes *const *old, size_t n_old, size_t *kept_r,
    char *err, size_t errsize);

struct tegami_config;

/*
 * `tegami config check`: loads cfg's routes file and reads every auth=
 * file as the caller. Returns the number of routes (0 also without a
 * file), or -1 with the reason in err.
 */
int queue_routes_check(const struct tegami_config *cfg, char *err,
    size_t errsize);

#endif
