/*
 * Small helpers every module needs: allocation that cannot return NULL,
 * whole writes, directory fsync, and random identifiers.
 */
#ifndef TEGAMI_UTIL_H
#define TEGAMI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Allocation failures are fatal: a mail server that cannot allocate a few
 * bytes cannot make progress either, and every caller would abort anyway. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
/* Frees *p and sets it to NULL. */
void xfree(void *pp);

/* Writes all of buf, retrying on EINTR and short writes. 0 or -1 (errno). */
int write_all(int fd, const void *buf, size_t len);

/* fsync() on a directory, so that a create, link, rename or unlink in it
 * survives a crash. 0 or -1 (errno). */
int fsync_dir(const char *path);

/* Gives the open file fd (also an unnamed O_TMPFILE one) the name path,
 * through /proc/self/fd; linkat(2) semantics: EEXIST if path exists. */
int fd_link(int fd, const char *path);

/* For good: group list, gids and uids all set to these, then checked that
 * root cannot be regained (STYLE.md rule 11). Exits on failure. */
void drop_privileges(uid_t uid, gid_t gid);

/* snprintf that reports truncation: 0 when it fit, -1 (errno ENAMETOOLONG)
 * when it did not; out is always NUL-terminated. */
int path_join(char *out, size_t outsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes an error message into err (errsize bytes, NUL-terminated, cut
 * to fit); err NULL or errsize 0 is allowed and writes nothing. */
void set_err(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The directory part of path: "." when it has no '/', "/" for "/x".
 * Returns 0, or -1 (ENAMETOOLONG) if it did not fit in out. */
int path_dirname(const char *path, char *out, size_t outsize);

/*
 * Untrusted bytes for an error message: at most max of them (then
 * "..."), anything but printable ASCII shown as '?', cut to fit outsize
 * (which should be max + 4). Returns out.
 */
const char *shown_text(const char *s, size_t len, size_t max, char *out,
    size_t outsize);

/* "192.0.2.1:25" or "[2001:db8::1]:25" for logs and keys; "?" for NULL
 * or another family. Returns out. */
#define SOCKADDR_TEXT_MAX (INET6_ADDRSTRLEN + 8)
const char *sockaddr_text(const struct sockaddr *sa, char *out,
    size_t outsize);

/* Fills buf with n random bytes from getrandom(2); aborts on failure. */
void random_bytes(void *buf, size_t n);

/* Writes a 16-character upper-case hex queue id (64 random bits) into out
 * (at least 17 bytes). Ids are valid path components. */
void queue_id_new(char *out);

/* True when s is a queue id as made by queue_id_new. */
bool queue_id_valid(const char *s);

/* Monotonic milliseconds, for timeouts and measurements. */
uint64_t monotonic_ms(void);

/* RFC 5322 date-time of now, e.g. "Fri, 27 Nov 2026 20:30:55 +0000". */
void rfc5322_date(char *out, size_t outsize);

#endif
