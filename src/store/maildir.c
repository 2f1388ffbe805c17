/*
 * Maildir paths, creation and unique names; see maildir.h.
 */
#include "store/maildir.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/util.h"

static bool
maildir_component_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.')
		return false;
	for (i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == '\0')
			return false;
	return true;
}

int
maildir_path(char *out, size_t outsize, const char *mail_root,
    const char *address)
{
	const char *at = strrchr(address, '@');

	if (at == NULL || !maildir_component_ok(address, (size_t)(at - address)) ||
	    !maildir_component_ok(at + 1, strlen(at + 1))) {
		errno = EINVAL;
		return -1;
	}
	return path_join(out, outsize, "%s/%s/%.*s", mail_root, at + 1,
	    (int)(at - address), address);
}

/* mkdir that reports whether it created the directory. */
static int
mkdir_new(const char *path, int *created_r)
{
	*created_r = 0;
	if (mkdir(path, 0700) == 0) {
		*created_r = 1;
		return 0;
	}
	return errno == EEXIST ? 0 : -1;
}

static int
mkdir_parents(char *path)
{
	char *slash;
	int created;

	if (mkdir_new(path, &created) == 0)
		goto made;
	if (errno != ENOENT)
		return -1;
	slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return -1;
	*slash = '\0';
	if (mkdir_parents(path) < 0) {
		*slash = '/';
		return -1;
	}
	*slash = '/';
	if (mkdir_new(path, &created) < 0)
		return -1;
made:
	if (created) {
		/* Make the new entry durable in its parent. */
		slash = strrchr(path, '/');
		if (slash != NULL && slash != path) {
			int r;

			*slash = '\0';
			r = fsync_dir(path);
			*slash = '/';
			if (r < 0)
				return -1;
		}
	}
	return 0;
}

int
maildir_create(const char *path)
{
	static const char *const subdirs[] = { "tmp", "new", "cur" };
	char buf[PATH_MAX];
	size_t i;

	if (path_join(buf, sizeof(buf), "%s", path) < 0 ||
	    mkdir_parents(buf) < 0)
		return -1;
	for (i = 0; i < 3; i++) {
		int created;

		if (path_join(buf, sizeof(buf), "%s/%s", path, subdirs[i]) < 0 ||
		    mkdir_new(buf, &created) < 0)
			return -1;
	}
	return fsync_dir(path);
}

int
maildir_new_name(char *out, size_t outsize, const char *host, uint64_t size)
{
	static atomic_ulong counter;
	static pid_t pid;	/* each front worker calls this, never the parent */
	char safe_host[256];
	struct timeval tv;
	size_t o = 0;
	const char *h;

	for (h = host; *h != '\0' && o + 5 < sizeof(safe_host); h++) {
		if (*h == '/' || *h == ':') {
			o += (size_t)snprintf(safe_host + o, sizeof(safe_host) - o,
			    "\\%03o", (unsigned char)*h);
		} else
			safe_host[o++] = *h;
	}
	safe_host[o] = '\0';
	if (pid == 0)
		pid = getpid();
	gettimeofday(&tv, NULL);
	return path_join(out, outsize, "%lld.M%06ldP%ldQ%lu.%s,S=%" PRIu64
	    ",W=%" PRIu64, (long long)tv.tv_sec, (long)tv.tv_usec,
	    (long)pid, atomic_fetch_add(&counter, 1) + 1, safe_host,
	    size, size);
}

int
maildir_name_size(const char *name, uint64_t *size_r)
{
	const char *p = strstr(name, ",S=");
	uint64_t v = 0;

	if (p == NULL)
		return -1;
	p += 3;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - digit) / 10)
			return -1;
		v = v * 10 + digit;
	}
	if (*p != '\0' && *p != ',' && *p != ':')
		return -1;
	*size_r = v;
	return 0;
}
