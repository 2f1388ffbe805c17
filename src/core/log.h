/*
 * One-line-per-event logging to stderr: "TIMESTAMP tegami[PID]: LEVEL: text".
 * Messages are key=value; untrusted text must go through log_escape() first.
 * Passwords and AUTH data are never passed here.
 */
#ifndef TEGAMI_LOG_H
#define TEGAMI_LOG_H

#include <stddef.h>
#include <stdarg.h>

#define LOG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* Sets the process role shown in each line ("parent", "front", ...)
 * and notes the pid for it: call it again in a child after fork(). */
void log_set_role(const char *role);
/* 0 = info and up; 1 = also debug. */
void log_set_verbose(int verbose);

void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
/* fatal: the environment failed (adds errno); exits 1. fatalx: no errno. */
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

/*
 * Copies untrusted bytes into out (size outsize >= 1) for logging: printable
 * ASCII is kept, everything else becomes \xNN, and " and \ are escaped.
 * Output longer than outsize is cut and ends in "...". Returns out.
 */
char *log_escape(const char *in, size_t len, char *out, size_t outsize);

#endif
