/*
 * Tests for the POP3 view of a Maildir (RFC 1939 with maildir(5)): order,
 * sizes from ",W=" or counted, UIDLs, relocation after another program
 * moved a message, seen flags, removal, the CRLF size and the POP3 lock.
 * Each test works in its own directory under /tmp, removed at the end.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/util.h"
#include "pop3/pop3_parse.h"
#include "store/maildir.h"
#include "store/maildir_snapshot.h"
#include "unit.h"

static char tmpdir[64];
static char md[128];		/* tmpdir/Maildir */

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/tegami-unit-snapshot-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(md, sizeof(md), "%s/Maildir", tmpdir);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
teardown(void)
{
	if (nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		perror("nftw");
}

/* Writes md/sub/name with the given content. */
static void
put(const char *sub, const char *name, const char *content)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", md, sub, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write_all(fd, content, strlen(content)) == 0);
		close(fd);
	}
}

static bool
exists(const char *sub, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s", md, sub, name);
	return access(path, F_OK) == 0;
}

static void
move(const char *from_sub, const char *from, const char *to_sub,
    const char *to)
{
	char a[512], b[512];

	snprintf(a, sizeof(a), "%s/%s/%s", md, from_sub, from);
	snprintf(b, sizeof(b), "%s/%s/%s", md, to_sub, to);
	CHECK(rename(a, b) == 0);
}

/* Reads all of fd (closing it) into a static buffer. */
static const char *
slurp(int fd)
{
	static char buf[4096];
	ssize_t n;
	size_t o = 0;

	while ((n = read(fd, buf + o, sizeof(buf) - 1 - o)) > 0)
		o += (size_t)n;
	close(fd);
	buf[o] = '\0';
	return buf;
}

static void
test_missing_and_empty(void)
{
	struct maildir_snapshot *snap = NULL;

	setup();
	/* no Maildir at all: an empty mailbox */
	CHECK(maildir_snapshot_take(md, 10, &snap) == 0);
	CHECK(snap != NULL && snap->count == 0 && snap->total_size == 0);
	CHECK(maildir_snapshot_open(snap, 0) < 0 && errno == EINVAL);
	CHECK(maildir_snapshot_mark_seen(snap, 0) < 0 && errno == EINVAL);
	CHECK(maildir_snapshot_remove(snap, NULL) == 0);
	maildir_snapshot_free(&snap);
	CHECK(snap == NULL);
	maildir_snapshot_free(&snap);

	CHECK(maildir_create(md) == 0);
	CHECK(maildir_snapshot_take(md, 0, &snap) == 0);
	CHECK(snap->count == 0);
	maildir_snapshot_free(&snap);

	/* a file where the Maildir should be is an error */
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/new/plainfile", md);
		put("new", "plainfile", "x");
		CHECK(maildir_snapshot_take(path, 10, &snap) < 0);
		CHECK(errno == ENOTDIR);
		CHECK(snap == NULL);
	}
	teardown();
}

static void
test_order_and_filter(void)
{
	struct maildir_snapshot *snap;
	char path[512];
	size_t i;

	setup();
	CHECK(maildir_create(md) == 0);
	/* 999 sorts before 1000 (numbers, not strings); same second: name */
	put("new", "1000.b.host,S=1,W=1", "x");
	put("cur", "1000.a.host,S=1,W=1:2,S", "x");
	put("new", "999.z.host,S=1,W=1", "x");
	put("cur", "1000.c.host,S=1,W=1:2,", "x");
	put("new", "noseconds", "x\n");
	put("new", "99999999999999999999999.huge", "x");
	put("cur", "10000.y,W=1:2,S", "x");
	put("new", "2000.w,W=1", "x");
	/* ignored: hidden, tmp/, directories, symlinks, FIFOs */
	put("new", ".hidden", "x");
	put("cur", ".1000.d:2,S", "x");
	put("tmp", "1000.e.host,S=1,W=1", "x");
	snprintf(path, sizeof(path), "%s/new/1000.dir,W=1", md);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/new/1000.link,W=1", md);
	CHECK(symlink("/etc/passwd", path) == 0);
	snprintf(path, sizeof(path), "%s/new/1000.fifo,W=1", md);
	CHECK(mkfifo(path, 0600) == 0);

	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 8);
	if (snap->count == 8) {
		CHECK_STR(snap->entries[0].name, "noseconds");
		CHECK_STR(snap->entries[1].name, "999.z.host,S=1,W=1");
		CHECK_STR(snap->entries[2].name, "1000.a.host,S=1,W=1:2,S");
		CHECK_STR(snap->entries[3].name, "1000.b.host,S=1,W=1");
		CHECK_STR(snap->entries[4].name, "1000.c.host,S=1,W=1:2,");
		CHECK_STR(snap->entries[5].name, "2000.w,W=1");
		CHECK_STR(snap->entries[6].name, "10000.y,W=1:2,S");
		CHECK_STR(snap->entries[7].name, "99999999999999999999999.huge");
		CHECK(!snap->entries[1].in_cur && snap->entries[2].in_cur);
		CHECK(snap->entries[2].seen && !snap->entries[3].seen &&
		    !snap->entries[4].seen);
		CHECK(snap->entries[2].base_len == strlen("1000.a.host,S=1,W=1"));
		CHECK(snap->entries[3].base_len == strlen("1000.b.host,S=1,W=1"));
		CHECK(snap->entries[0].size == 3);	/* counted: x CR LF */
		CHECK(snap->total_size == 3 + 6 + 1);
	}
	for (i = 0; i < snap->count; i++)
		CHECK(strncmp(snap->entries[i].name, "1000.", 5) != 0 ||
		    strchr("abc", snap->entries[i].name[5]) != NULL);
	maildir_snapshot_free(&snap);
	teardown();
}

static void
test_sizes(void)
{
	struct maildir_snapshot *snap;
	char name[256];
	uint64_t sizes[8];
	size_t i;

	setup();
	CHECK(maildir_create(md) == 0);
	/* W= is trusted (it is the CRLF size; here on purpose not the
	 * file's); S= is the file size, not the CRLF one: counted. */
	put("new", "1.dovecot.host,S=100,W=102:2,S", "abc");
	put("new", "2.sonly.host,S=4", "a\nb\n");
	put("new", "3.none", "a\r\nb\nc\rd");
	put("new", "4.badw.host,W=12x", "a\n");
	put("new", "5.bigw.host,W=99999999999999999999999", "a\n");
	put("new", "6.wmid.host,W=7,S=5", "12345");
	put("cur", "7.empty.host:2,S", "");
	CHECK(maildir_new_name(name, sizeof(name), "mx.example.org", 5) == 0);
	put("cur", name, "12345");

	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 8);
	for (i = 0; i < snap->count && i < 8; i++)
		sizes[i] = snap->entries[i].size;
	if (snap->count == 8) {
		CHECK(sizes[0] == 102);
		CHECK(sizes[1] == 6);
		CHECK(sizes[2] == 8 + 1);	/* one bare LF */
		CHECK(sizes[3] == 3);
		CHECK(sizes[4] == 3);
		CHECK(sizes[5] == 7);
		CHECK(sizes[6] == 0);
		CHECK(sizes[7] == 5);	/* tegami's own name, last second */
		CHECK_STR(snap->entries[7].name, name);
		CHECK(snap->total_size == 102 + 6 + 9 + 3 + 3 + 7 + 0 + 5);
	}
	maildir_snapshot_free(&snap);
	teardown();
}

static void
test_uidl(void)
{
	struct maildir_snapshot *snap;
	char u[6][MAILDIR_UIDL_MAX + 1];
	char name[128], base70[71], base71[72];
	size_t i, j;

	setup();
	CHECK(maildir_create(md) == 0);
	memset(base70, 'a', 70);
	memcpy(base70, "1700000002.", 11);
	base70[70] = '\0';
	memset(base71, 'a', 71);
	memcpy(base71, "1700000003.", 11);
	base71[71] = '\0';
	put("new", "1700000000.M12P34.host,S=1,W=1", "x");
	put("cur", "1700000001.M12P34.host,S=1,W=1:2,S", "x");
	put("new", base70, "x");			/* 70: as it is */
	snprintf(name, sizeof(name), "%s:2,S", base71);	/* 71: hashed */
	put("cur", name, "x");
	put("new", "1700000004.caf\xc3\xa9,W=1", "x");
	put("new", "1700000005.tab\there,W=1", "x");

	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 6);
	for (i = 0; i < snap->count && i < 6; i++) {
		maildir_entry_uidl(&snap->entries[i], u[i]);
		CHECK(strlen(u[i]) >= 1 && strlen(u[i]) <= MAILDIR_UIDL_MAX);
		for (j = 0; u[i][j] != '\0'; j++)
			CHECK(u[i][j] >= 0x21 && u[i][j] <= 0x7e);
	}
	if (snap->count == 6) {
		CHECK_STR(u[0], "1700000000.M12P34.host,S=1,W=1");
		CHECK_STR(u[1], "1700000001.M12P34.host,S=1,W=1");
		CHECK_STR(u[2], base70);
		/* "X" and 32 hex digits of SHA-256 over the base name
		 * (Python's hashlib) */
		CHECK_STR(u[3], "Xdbaacb41f65c11415ec960722537a7a8");
		CHECK_STR(u[4], "X2c869f1bdd462ac3ac6202a526516db8");
		CHECK_STR(u[5], "X1e16466cfae39868f26a1576e3e229ff");
		for (i = 0; i < 6; i++)
			for (j = i + 1; j < 6; j++)
				CHECK(strcmp(u[i], u[j]) != 0);
	}
	/* stable when the message moves to cur/ and gets flags */
	if (snap->count == 6) {
		char again[MAILDIR_UIDL_MAX + 1];

		CHECK(maildir_snapshot_mark_seen(snap, 0) == 0);
		maildir_entry_uidl(&snap->entries[0], again);
		CHECK_STR(again, u[0]);
		CHECK(maildir_snapshot_mark_seen(snap, 4) == 0);
		maildir_entry_uidl(&snap->entries[4], again);
		CHECK_STR(again, u[4]);
	}
	maildir_snapshot_free(&snap);

	/* and in the next session */
	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 6);
	for (i = 0; i < snap->count && i < 6; i++) {
		char again[MAILDIR_UIDL_MAX + 1];

		maildir_entry_uidl(&snap->entries[i], again);
		CHECK_STR(again, u[i]);
	}
	maildir_snapshot_free(&snap);
	teardown();
}

/* A message seen in new/ and cur/ (a move in progress) is listed once. */
static void
test_duplicates_and_limit(void)
{
	struct maildir_snapshot *snap = NULL;

	setup();
	CHECK(maildir_create(md) == 0);
	put("new", "5.dup,W=1", "x");
	put("cur", "5.dup,W=1:2,S", "x");
	put("new", "6.one,W=1", "x");
	put("new", "7.two,W=1", "x");
	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 3);
	if (snap->count == 3) {
		CHECK_STR(snap->entries[0].name, "5.dup,W=1:2,S");
		CHECK(snap->entries[0].in_cur && snap->entries[0].seen);
	}
	maildir_snapshot_free(&snap);

	/* exactly at the limit, and one below it */
	CHECK(maildir_snapshot_take(md, 3, &snap) == 0);
	maildir_snapshot_free(&snap);
	CHECK(maildir_snapshot_take(md, 2, &snap) < 0 && errno == EFBIG);
	CHECK(snap == NULL);
	CHECK(maildir_snapshot_take(md, 0, &snap) < 0 && errno == EFBIG);
	teardown();
}

static void
test_open_relocate(void)
{
	struct maildir_snapshot *snap;
	char path[512];
	int fd;

	setup();
	CHECK(maildir_create(md) == 0);
	put("new", "10.a,W=2", "A\n");
	put("new", "11.b,W=2", "B\n");
	put("cur", "12.c,W=2:2,S", "C\n");
	put("new", "13.d,W=2", "D\n");
	put("new", "14.e,W=2", "E\n");
	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 5);
	if (snap->count != 5)
		goto out;

	CHECK((fd = maildir_snapshot_open(snap, 0)) >= 0);
	if (fd >= 0) {
		CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);
		CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
		CHECK_STR(slurp(fd), "A\n");
	}
	CHECK(maildir_snapshot_open(snap, 5) < 0 && errno == EINVAL);

	/* another client read them: new/ -> cur/, flags changed */
	move("new", "11.b,W=2", "cur", "11.b,W=2:2,S");
	move("cur", "12.c,W=2:2,S", "cur", "12.c,W=2:2,FRS");
	move("new", "13.d,W=2", "cur", "13.d,W=2:2,");
	CHECK((fd = maildir_snapshot_open(snap, 1)) >= 0);
	if (fd >= 0)
		CHECK_STR(slurp(fd), "B\n");
	CHECK_STR(snap->entries[1].name, "11.b,W=2:2,S");
	CHECK(snap->entries[1].in_cur && snap->entries[1].seen);
	/* the same rescan found the others too */
	CHECK_STR(snap->entries[2].name, "12.c,W=2:2,FRS");
	CHECK_STR(snap->entries[3].name, "13.d,W=2:2,");
	CHECK(snap->entries[3].in_cur && !snap->entries[3].seen);
	CHECK((fd = maildir_snapshot_open(snap, 2)) >= 0);
	if (fd >= 0)
		CHECK_STR(slurp(fd), "C\n");

	/* removed meanwhile */
	snprintf(path, sizeof(path), "%s/cur/13.d,W=2:2,", md);
	CHECK(unlink(path) == 0);
	CHECK(maildir_snapshot_open(snap, 3) < 0 && errno == ENOENT);

	/* replaced by a symlink or a FIFO: not a message */
	snprintf(path, sizeof(path), "%s/new/14.e,W=2", md);
	CHECK(unlink(path) == 0);
	CHECK(symlink("/etc/passwd", path) == 0);
	CHECK(maildir_snapshot_open(snap, 4) < 0 && errno == ENOENT);
	CHECK(unlink(path) == 0);
	CHECK(mkfifo(path, 0600) == 0);
	CHECK(maildir_snapshot_open(snap, 4) < 0 && errno == ENOENT);
out:
	maildir_snapshot_free(&snap);
	teardown();
}

static void
test_mark_seen(void)
{
	struct maildir_snapshot *snap;

	setup();
	CHECK(maildir_create(md) == 0);
	put("new", "20.a,W=1", "x");
	put("cur", "21.b,W=1:2,F", "x");
	put("cur", "22.c,W=1:2,RTa", "x");
	put("cur", "23.d,W=1:2,S", "x");
	put("cur", "24.e,W=1", "x");
	put("new", "25.f,W=1", "x");
	put("new", "26.g,W=1", "x");
	put("new", "27.h,W=1:2,S", "x");
	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 8);
	if (snap->count != 8)
		goto out;

	CHECK(maildir_snapshot_mark_seen(snap, 0) == 0);
	CHECK(exists("cur", "20.a,W=1:2,S") && !exists("new", "20.a,W=1"));
	CHECK_STR(snap->entries[0].name, "20.a,W=1:2,S");
	CHECK(snap->entries[0].in_cur && snap->entries[0].seen);
	/* maildir(5): flags in ASCII order */
	CHECK(maildir_snapshot_mark_seen(snap, 1) == 0);
	CHECK(exists("cur", "21.b,W=1:2,FS"));
	CHECK(maildir_snapshot_mark_seen(snap, 2) == 0);
	CHECK(exists("cur", "22.c,W=1:2,RSTa"));
	CHECK_STR(snap->entries[2].name, "22.c,W=1:2,RSTa");
	CHECK(maildir_snapshot_mark_seen(snap, 3) == 0);
	CHECK(exists("cur", "23.d,W=1:2,S"));
	CHECK(maildir_snapshot_mark_seen(snap, 4) == 0);
	CHECK(exists("cur", "24.e,W=1:2,S"));
	/* twice is fine */
	CHECK(maildir_snapshot_mark_seen(snap, 0) == 0);
	CHECK(exists("cur", "20.a,W=1:2,S"));
	/* moved by another program first */
	move("new", "25.f,W=1", "cur", "25.f,W=1:2,R");
	CHECK(maildir_snapshot_mark_seen(snap, 5) == 0);
	CHECK(exists("cur", "25.f,W=1:2,RS"));
	CHECK_STR(snap->entries[5].name, "25.f,W=1:2,RS");
	/* gone */
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/new/26.g,W=1", md);
		CHECK(unlink(path) == 0);
	}
	CHECK(maildir_snapshot_mark_seen(snap, 6) < 0 && errno == ENOENT);
	/* seen but still in new/: moved to cur/ */
	CHECK(snap->entries[7].seen && !snap->entries[7].in_cur);
	CHECK(maildir_snapshot_mark_seen(snap, 7) == 0);
	CHECK(exists("cur", "27.h,W=1:2,S") && !exists("new", "27.h,W=1:2,S"));
	maildir_snapshot_free(&snap);

	/* the next session sees the same messages, all seen */
	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 7);
	{
		size_t i;

		for (i = 0; i < snap->count; i++)
			CHECK(snap->entries[i].seen && snap->entries[i].in_cur);
	}
out:
	maildir_snapshot_free(&snap);
	teardown();
}

static void
test_remove(void)
{
	struct maildir_snapshot *snap;
	bool rm[6] = { true, false, true, true, true, false };
	char path[512];

	setup();
	CHECK(maildir_create(md) == 0);
	put("new", "30.a,W=1", "x");
	put("new", "31.b,W=1", "x");
	put("cur", "32.c,W=1:2,S", "x");
	put("new", "33.d,W=1", "x");
	put("new", "34.e,W=1", "x");
	put("new", "35.f,W=1", "x");
	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 6);
	if (snap->count != 6)
		goto out;
	/* one moved by another client, one already removed by it */
	move("new", "33.d,W=1", "cur", "33.d,W=1:2,S");
	snprintf(path, sizeof(path), "%s/new/34.e,W=1", md);
	CHECK(unlink(path) == 0);
	CHECK(maildir_snapshot_remove(snap, rm) == 3);
	CHECK(!exists("new", "30.a,W=1"));
	CHECK(exists("new", "31.b,W=1"));
	CHECK(!exists("cur", "32.c,W=1:2,S"));
	CHECK(!exists("cur", "33.d,W=1:2,S"));
	CHECK(exists("new", "35.f,W=1"));
	maildir_snapshot_free(&snap);

	CHECK(maildir_snapshot_take(md, 100, &snap) == 0);
	CHECK(snap->count == 2);
	/* a removal that fails for another reason is reported, and the
	 * others are still removed: here a directory took a message's
	 * name, which unlink refuses even to root */
	if (snap->count == 2) {
		bool all[2] = { true, true };

		snprintf(path, sizeof(path), "%s/new/31.b,W=1", md);
		CHECK(unlink(path) == 0);
		CHECK(mkdir(path, 0700) == 0);
		CHECK(maildir_snapshot_remove(snap, all) < 0);
		CHECK(errno == EISDIR);
		CHECK(!exists("new", "35.f,W=1"));
	}
out:
	maildir_snapshot_free(&snap);
	teardown();
}

/* A file of the given bytes; returns its fd at offset 0. */
static int
memfile(const char *data, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/sizefile", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write_all(fd, data, len) < 0 ||
	    lseek(fd, 0, SEEK_SET) != 0)
		return -1;
	return fd;
}

static uint64_t
ref_crlf_size(const char *s, size_t len)
{
	uint64_t n = len;
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			n++;
	return n;
}

static void
test_crlf_size(void)
{
	static const char *const cases[] = { "", "a", "\n", "\r", "\r\n",
	    "a\nb\n", "a\r\nb\r\n", "a\rb", "\n\n\r\n\r\r\n", "x\r" };
	char *big;
	size_t i, len = 200000;
	uint64_t size;
	int fd;

	setup();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK((fd = memfile(cases[i], strlen(cases[i]))) >= 0);
		CHECK(maildir_crlf_size(fd, &size) == 0);
		CHECK(size == ref_crlf_size(cases[i], strlen(cases[i])));
		close(fd);
	}
	/* CR LF pairs split by read-buffer boundaries, bare LFs, bare CRs */
	big = malloc(len);
	for (i = 0; i < len; i++)
		big[i] = i % 3 == 0 ? '\r' : i % 5 == 0 || i % 7 == 1 ? '\n' : 'x';
	for (i = 1; i < 9; i++) {
		big[i * 16384 - 1] = '\r';
		big[i * 16384] = '\n';
	}
	CHECK((fd = memfile(big, len)) >= 0);
	CHECK(maildir_crlf_size(fd, &size) == 0);
	CHECK(size == ref_crlf_size(big, len));
	/* from the current offset */
	CHECK(lseek(fd, 1000, SEEK_SET) == 1000);
	CHECK(maildir_crlf_size(fd, &size) == 0);
	CHECK(size == ref_crlf_size(big + 1000, len - 1000));
	close(fd);
	free(big);
	CHECK(maildir_crlf_size(-1, &size) < 0 && errno == EBADF);
	teardown();
}

/* LIST's size (maildir_crlf_size) is what RETR sends (pop3_stuff) for a
 * message ending in a line end, before dot-stuffing and the final ".". */
static void
test_size_matches_retr(void)
{
	static const char *const msgs[] = { "", "a\n", "a\r\n", "a\nb\r\n",
	    "H: x\r\n\r\nbody\n\n", "bare\rcr\n", "\r\r\n\n", "\r\n\r\n" };
	struct pop3_stuff st;
	char out[64];
	uint64_t size;
	size_t i, n;
	int fd;

	setup();
	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		CHECK((fd = memfile(msgs[i], strlen(msgs[i]))) >= 0);
		CHECK(maildir_crlf_size(fd, &size) == 0);
		close(fd);
		pop3_stuff_init(&st, -1);
		n = pop3_stuff(&st, msgs[i], strlen(msgs[i]), out);
		CHECK(n == size);
		CHECK(pop3_stuff_end(&st, out + n) == 3);
	}
	teardown();
}

static void
test_lock(void)
{
	char path[512];
	struct stat st;
	int a, b, c;

	setup();
	/* creates the Maildir of a user who never got mail */
	CHECK((a = maildir_pop3_lock(md)) >= 0);
	snprintf(path, sizeof(path), "%s/cur", md);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	snprintf(path, sizeof(path), "%s/tegami-pop3.lock", md);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
	CHECK((fcntl(a, F_GETFD) & FD_CLOEXEC) != 0);
	/* a second session, even in this process, is refused */
	CHECK((b = maildir_pop3_lock(md)) < 0 && errno == EWOULDBLOCK);
	close(a);
	CHECK((c = maildir_pop3_lock(md)) >= 0);
	close(c);

	/* the lock file is not listed as a message */
	{
		struct maildir_snapshot *snap;

		CHECK(maildir_snapshot_take(md, 10, &snap) == 0);
		CHECK(snap->count == 0);
		maildir_snapshot_free(&snap);
	}
	/* a symlink planted as the lock file is not followed */
	CHECK(unlink(path) == 0);
	CHECK(symlink("/tmp/tegami-unit-snapshot-nonexistent", path) == 0);
	CHECK(maildir_pop3_lock(md) < 0 && errno == ELOOP);
	CHECK(access("/tmp/tegami-unit-snapshot-nonexistent", F_OK) < 0);
	teardown();
}

static long
maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* CPU milliseconds (user and system) of this process so far. */
static uint64_t
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	    (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static size_t
heap_in_use(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

static int
uidl_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * A mailbox of many messages named as tegami and Dovecot name them (with
 * W=, half in cur/ with ":2,S", seconds shuffled): checks order, sizes
 * and UIDL uniqueness, and prints what the snapshot cost; no timing is
 * asserted. TEGAMI_SNAPSHOT_MESSAGES=100000 measures a big mailbox (the
 * default, 20000, keeps the suite quick).
 */
static void
test_big_mailbox(void)
{
	struct maildir_snapshot *snap = NULL;
	char name[256], path[512], (*uidl)[MAILDIR_UIDL_MAX + 1];
	const char *env = getenv("TEGAMI_SNAPSHOT_MESSAGES");
	size_t n = env != NULL ? strtoul(env, NULL, 10) : 20000, i;
	size_t unordered = 0, dups = 0, heap0, heap;
	uint64_t t0, t1, t2, t3, c1, c2, total = 0, sum = 0;
	long rss0;
	int dfd[2], fd;

	setup();
	CHECK(maildir_create(md) == 0);
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", md, i ? "cur" : "new");
		dfd[i] = open(path, O_RDONLY | O_DIRECTORY);
		CHECK(dfd[i] >= 0);
	}
	t0 = monotonic_ms();
	for (i = 0; i < n; i++) {
		unsigned secs = 1700000000u + (unsigned)((i * 7919u) % 50000u);
		size_t size = 1000 + i % 5000;

		snprintf(name, sizeof(name),
		    "%u.M%06zuP%zuQ%zu.mx.example.org,S=%zu,W=%zu%s", secs,
		    (i * 31) % 1000000, 1000 + i % 30000, i + 1, size,
		    size + i % 40, i % 2 ? ":2,S" : "");
		fd = openat(dfd[i % 2], name, O_WRONLY | O_CREAT | O_EXCL,
		    0600);
		if (fd < 0) {
			CHECK(fd >= 0);
			break;
		}
		close(fd);
		total += size + i % 40;
	}
	close(dfd[0]);
	close(dfd[1]);

	rss0 = maxrss_kb();
	heap0 = heap_in_use();
	t1 = monotonic_ms();
	c1 = cpu_ms();
	CHECK(maildir_snapshot_take(md, n, &snap) == 0);
	c2 = cpu_ms();
	t2 = monotonic_ms();
	heap = heap_in_use() - heap0;
	if (snap == NULL)
		goto out;
	CHECK(snap->count == n);
	CHECK(snap->total_size == total);
	for (i = 0; i < snap->count; i++) {
		const struct maildir_entry *a = &snap->entries[i];

		sum += a->size;
		if (i > 0) {
			const struct maildir_entry *b = &snap->entries[i - 1];
			unsigned long sa = strtoul(a->name, NULL, 10);
			unsigned long sb = strtoul(b->name, NULL, 10);

			if (sa < sb || (sa == sb && strncmp(b->name, a->name,
			    a->base_len < b->base_len ? b->base_len :
			    a->base_len) >= 0))
				unordered++;
		}
		if (a->seen != a->in_cur)
			unordered++;
	}
	CHECK(unordered == 0);
	CHECK(sum == total);

	/* every UIDL differs */
	uidl = malloc(snap->count * sizeof(*uidl) + 1);
	for (i = 0; i < snap->count; i++)
		maildir_entry_uidl(&snap->entries[i], uidl[i]);
	qsort(uidl, snap->count, sizeof(*uidl), uidl_cmp);
	for (i = 1; i < snap->count; i++)
		if (strcmp(uidl[i - 1], uidl[i]) == 0)
			dups++;
	CHECK(dups == 0);
	free(uidl);

	/* the cost of one relocation: a full rescan */
	if (snap->count > 0 && !snap->entries[0].in_cur) {
		snprintf(name, sizeof(name), "%s:2,S", snap->entries[0].name);
		move("new", snap->entries[0].name, "cur", name);
	}
	t3 = monotonic_ms();
	CHECK((fd = maildir_snapshot_open(snap, 0)) >= 0);
	if (fd >= 0)
		close(fd);
	printf("snapshot of %zu messages: %llu ms (%llu ms CPU), %zu bytes "
	    "of heap (%.1f per message), max RSS %ld -> %ld kB; relocating "
	    "one: %llu ms; creating the files took %llu ms\n", snap->count,
	    (unsigned long long)(t2 - t1), (unsigned long long)(c2 - c1), heap,
	    snap->count ? (double)heap / (double)snap->count : 0.0, rss0,
	    maxrss_kb(), (unsigned long long)(monotonic_ms() - t3),
	    (unsigned long long)(t1 - t0));
out:
	maildir_snapshot_free(&snap);
	teardown();
}

int
main(void)
{
	UNIT_RUN(test_missing_and_empty);
	UNIT_RUN(test_order_and_filter);
	UNIT_RUN(test_sizes);
	UNIT_RUN(test_uidl);
	UNIT_RUN(test_duplicates_and_limit);
	UNIT_RUN(test_open_relocate);
	UNIT_RUN(test_mark_seen);
	UNIT_RUN(test_remove);
	UNIT_RUN(test_crlf_size);
	UNIT_RUN(test_size_matches_retr);
	UNIT_RUN(test_lock);
	UNIT_RUN(test_big_mailbox);
	return unit_finish();
}
