/*
 * Logging to stderr, one line per event with a UTC timestamp, so that a
 * supervisor (systemd, runit, a terminal) can collect it unchanged.
 */
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_role = "tegami";
static long log_pid;	/* set with the role: after fork, once */
static int log_verbose;

void
log_set_role(const char *role)
{
	log_role = role;
	log_pid = (long)getpid();
}

void
log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

static void log_vwrite(const char *level, const char *fmt, va_list ap,
    int errnum) __attribute__((format(printf, 2, 0)));

static void
log_vwrite(const char *level, const char *fmt, va_list ap, int errnum)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%ld]: %s: ",
	    (long)(tv.tv_usec / 1000), log_role,
	    log_pid != 0 ? log_pid : (long)getpid(), level);
	if (r > 0 && (size_t)r < sizeof(line) - n)
		n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n = (size_t)r < sizeof(line) - n ? n + (size_t)r : sizeof(line) - 1;
	if (errnum != 0 && n < sizeof(line) - 1) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
		if (r > 0)
			n = (size_t)r < sizeof(line) - n ? n + (size_t)r :
			    sizeof(line) - 1;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write() so that lines from several processes never interleave. */
	(void)!write(STDERR_FILENO, line, n);
}

#define LOG_BODY(level, errnum) do {		\
	va_list ap;				\
	va_start(ap, fmt);			\
	log_vwrite(level, fmt, ap, errnum);	\
	va_end(ap);				\
} while (0)

void
log_info(const char *fmt, ...)
{
	int saved = errno;
	LOG_BODY("info", 0);
	errno = saved;
}

void
log_debug(const char *fmt, ...)
{
	int saved = errno;
	if (log_verbose)
		LOG_BODY("debug", 0);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	LOG_BODY("warning", saved);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	int saved = errno;
	LOG_BODY("warning", 0);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	LOG_BODY("fatal", saved);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY("fatal", 0);
	exit(1);
}

char *
log_escape(const char *in, size_t len, char *out, size_t outsize)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (outsize == 0)
		return out;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char tmp[4];
		size_t tn;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\'; tmp[1] = (char)c; tn = 2;
		} else if (c >= 0x20 && c < 0x7f) {
			tmp[0] = (char)c; tn = 1;
		} else {
			tmp[0] = '\\'; tmp[1] = 'x';
			tmp[2] = hex[c >> 4]; tmp[3] = hex[c & 15]; tn = 4;
		}
		if (o + tn + 4 > outsize) {
			if (outsize >= 4) {
				memcpy(out + (o < outsize - 4 ? o : outsize - 4),
				    "...", 3);
				o = (o < outsize - 4 ? o : outsize - 4) + 3;
			}
			break;
		}
		memcpy(out + o, tmp, tn);
		o += tn;
	}
	out[o < outsize ? o : outsize - 1] = '\0';
	return out;
}
