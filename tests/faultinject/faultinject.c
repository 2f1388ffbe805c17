/*
 * A test-only LD_PRELOAD library that makes the disk fail on demand
 * (security-tests.md 48, in the manner of unreliablefs's errinj_errno):
 * while the file named by $TEGAMI_FAULT_CONTROL holds "fsync" or "write",
 * fsync()/fdatasync() or write() on regular files whose path contains
 * $TEGAMI_FAULT_PATH (default "/queue/") fail with EIO. Never built into
 * tegami itself.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);
ssize_t write(int fd, const void *buf, size_t count);

/* Reads the control file with raw syscalls, so as not to recurse. */
static bool
fault_armed(const char *what)
{
	const char *control = getenv("TEGAMI_FAULT_CONTROL");
	char buf[64];
	long fd, n;

	if (control == NULL)
		return false;
	fd = syscall(SYS_openat, AT_FDCWD, control, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

static bool
fault_applies(int fd)
{
	const char *match = getenv("TEGAMI_FAULT_PATH");
	char link[64], path[PATH_MAX];
	struct stat st;
	long n;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = syscall(SYS_readlinkat, AT_FDCWD, link, path, sizeof(path) - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	return strstr(path, match != NULL ? match : "/queue/") != NULL;
}

int
fsync(int fd)
{
	if (fault_armed("fsync") && fault_applies(fd)) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fsync, fd);
}

int
fdatasync(int fd)
{
	if (fault_armed("fsync") && fault_applies(fd)) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

ssize_t
write(int fd, const void *buf, size_t count)
{
	if (fd > 2 && fault_armed("write") && fault_applies(fd)) {
		errno = EIO;
		return -1;
	}
	return syscall(SYS_write, fd, buf, count);
}
