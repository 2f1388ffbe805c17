/*
 * A POP3 session's snapshot of a Maildir (RFC 1939 with maildir(5) and
 * Dovecot's ",W=" size field): listing, UIDLs, relocation of messages
 * moved by other programs, seen flags, removal at QUIT, the POP3 lock.
 */
#include "store/maildir_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "core/util.h"
#include "store/maildir.h"

/*
 * Names live in blocks of this size, so that a mailbox of n messages
 * costs a few hundred mallocs, not n, and no name moves once stored.
 */
#define ARENA_BLOCK_SIZE	(64 * 1024)
/* A name seen in both new/ and cur/ during a concurrent move is listed
 * twice, then merged; this much room for those before EFBIG. */
#define LIST_SLACK		64
#define INFO_SEP		":2,"
#define LOCK_NAME		"tegami-pop3.lock"

struct arena_block {
	struct arena_block *next;
	char data[];
};

struct snapshot_priv {
	struct arena_block *blocks;
	char *free;		/* the unused end of the newest block */
	size_t left;
	size_t cap;		/* entries allocated */
	/* new/ and cur/ (-1: absent at the snapshot), so that opening and
	 * renaming a message does not walk the whole path each time. */
	int dir_fds[2];
};

/* The sort and search key of an entry: delivery second, base name. */
struct entry_key {
	uint64_t secs;
	const char *base;
	size_t base_len;
};

static char *
arena_alloc(struct snapshot_priv *p, size_t n)
{
	struct arena_block *b;
	size_t size = n > ARENA_BLOCK_SIZE ? n : ARENA_BLOCK_SIZE;
	char *r;

	if (n > p->left) {
		b = xmalloc(sizeof(*b) + size);
		b->next = p->blocks;
		p->blocks = b;
		p->free = b->data;
		p->left = size;
	}
	r = p->free;
	p->free += n;
	p->left -= n;
	return r;
}

static const char *
arena_strdup(struct snapshot_priv *p, const char *s, size_t len)
{
	char *r = arena_alloc(p, len + 1);

	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

/* Bytes of name before the maildir(5) info ":2,FLAGS". */
static size_t
name_base_len(const char *name)
{
	const char *info = strstr(name, INFO_SEP);

	return info != NULL ? (size_t)(info - name) : strlen(name);
}

static bool
name_has_flag(const char *name, size_t base_len, char flag)
{
	const char *p = name + base_len;

	return *p != '\0' && strchr(p + strlen(INFO_SEP), flag) != NULL;
}

/* The leading decimal seconds of a name (0 when there are none); more
 * than 19 significant digits, which is no time, sorts last. */
static uint64_t
name_secs(const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i = 0, start;

	while (i < len && s[i] == '0')
		i++;
	for (start = i; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (i - start == 19)
			return UINT64_MAX;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

/*
 * The ",W=<n>" field of a base name (Dovecot's and tegami's CRLF size).
 * Returns 0 and *size_r, or -1 when it is absent or malformed.
 */
static int
name_w_size(const char *base, size_t base_len, uint64_t *size_r)
{
	const char *p = memmem(base, base_len, ",W=", 3);
	const char *end = base + base_len;
	uint64_t v = 0;

	if (p == NULL)
		return -1;
	p += 3;
	if (p == end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - digit) / 10)
			return -1;
		v = v * 10 + digit;
	}
	if (p != end && *p != ',')
		return -1;
	*size_r = v;
	return 0;
}

static void
entry_key(const char *name, size_t base_len, struct entry_key *k)
{
	k->secs = name_secs(name, base_len);
	k->base = name;
	k->base_len = base_len;
}

static int
key_cmp(const struct entry_key *a, const struct entry_key *b)
{
	size_t n = a->base_len < b->base_len ? a->base_len : b->base_len;
	int c;

	if (a->secs != b->secs)
		return a->secs < b->secs ? -1 : 1;
	if ((c = memcmp(a->base, b->base, n)) != 0)
		return c;
	return a->base_len < b->base_len ? -1 :
	    a->base_len > b->base_len ? 1 : 0;
}

/* An entry with its seconds parsed once, not at each comparison. */
struct sort_item {
	uint64_t secs;
	struct maildir_entry e;
};

/* Delivery order; the same message in new/ and cur/ (a move in
 * progress) sorts new/ first, so that dedup keeps the cur/ one. */
static int
item_cmp(const void *va, const void *vb)
{
	const struct sort_item *a = va, *b = vb;
	struct entry_key ka = { a->secs, a->e.name, a->e.base_len };
	struct entry_key kb = { b->secs, b->e.name, b->e.base_len };
	int c;

	if ((c = key_cmp(&ka, &kb)) != 0)
		return c;
	return (int)a->e.in_cur - (int)b->e.in_cur;
}

/* The entry with this base name, or NULL (entries sorted and merged). */
static struct maildir_entry *
snapshot_find(struct maildir_snapshot *snap, const struct entry_key *k)
{
	size_t lo = 0, hi = snap->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct maildir_entry *e = &snap->entries[mid];
		struct entry_key ke;
		int c;

		entry_key(e->name, e->base_len, &ke);
		if ((c = key_cmp(k, &ke)) == 0)
			return e;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* A directory entry that may be a message: a regular file (not a
 * symlink: it could point out of the mailbox), not hidden. */
static bool
dirent_is_message(DIR *d, const struct dirent *de)
{
	struct stat st;

	if (de->d_name[0] == '.')
		return false;
	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_REG;
	/* file systems without d_type */
	if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	return S_ISREG(st.st_mode);
}

/*
 * Opens a message file read-only: no symlink, nothing but a regular
 * file (O_NONBLOCK so that a FIFO put there cannot hang us). Anything
 * else is not a message: errno ENOENT.
 */
static int
open_message(int dirfd, const char *path)
{
	struct stat st;
	int fd;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ELOOP)
			errno = ENOENT;
		return -1;
	}
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = ENOENT;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, 0) < 0)	/* back to blocking reads */
		goto fail;
	return fd;
fail:
	{
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return -1;
}

/* The size of a message whose name does not say it. */
static int
file_crlf_size(int dirfd, const char *name, uint64_t *size_r)
{
	int fd, r, saved;

	if ((fd = open_message(dirfd, name)) < 0)
		return -1;
	r = maildir_crlf_size(fd, size_r);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

static struct maildir_entry *
snapshot_add(struct maildir_snapshot *snap)
{
	struct snapshot_priv *p = snap->priv;

	if (snap->count == p->cap) {
		p->cap = p->cap == 0 ? 256 : p->cap * 2;
		snap->entries = xreallocarray(snap->entries, p->cap,
		    sizeof(*snap->entries));
	}
	return &snap->entries[snap->count++];
}

/* Lists one of new/ and cur/ into the snapshot. */
static int
snapshot_list(struct maildir_snapshot *snap, bool in_cur, size_t max_list)
{
	char dirpath[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int saved;

	if (path_join(dirpath, sizeof(dirpath), "%s/%s", snap->path,
	    in_cur ? "cur" : "new") < 0)
		return -1;
	if ((d = opendir(dirpath)) == NULL)
		return errno == ENOENT ? 0 : -1;
	for (;;) {
		struct maildir_entry *e;
		size_t len, base_len;
		uint64_t size;

		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0)
				goto fail;
			break;
		}
		if (!dirent_is_message(d, de))
			continue;
		if (snap->count >= max_list) {
			errno = EFBIG;
			goto fail;
		}
		len = strlen(de->d_name);
		base_len = name_base_len(de->d_name);
		if (name_w_size(de->d_name, base_len, &size) < 0 &&
		    file_crlf_size(dirfd(d), de->d_name, &size) < 0) {
			if (errno == ENOENT)
				continue;	/* removed meanwhile */
			goto fail;
		}
		e = snapshot_add(snap);
		e->name = arena_strdup(snap->priv, de->d_name, len);
		e->base_len = (uint32_t)base_len;
		e->in_cur = in_cur;
		e->seen = name_has_flag(e->name, base_len, 'S');
		e->size = size;
	}
	closedir(d);
	return 0;
fail:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

int
maildir_snapshot_take(const char *path, size_t max_messages,
    struct maildir_snapshot **snap_r)
{
	struct maildir_snapshot *snap;
	struct snapshot_priv *p;
	struct sort_item *items;
	size_t i, n, max_list;

	*snap_r = NULL;
	snap = xcalloc(1, sizeof(*snap));
	p = xcalloc(1, sizeof(*p));
	snap->priv = p;
	snap->path = xstrdup(path);
	for (i = 0; i < 2; i++) {
		char dir[PATH_MAX];

		p->dir_fds[i] = -1;
		if (path_join(dir, sizeof(dir), "%s/%s", path,
		    i ? "cur" : "new") == 0)
			p->dir_fds[i] = open(dir, O_RDONLY | O_DIRECTORY |
			    O_CLOEXEC);
	}
	max_list = max_messages > SIZE_MAX - LIST_SLACK ? SIZE_MAX :
	    max_messages + LIST_SLACK;
	/* new/ first: a message moving to cur/ meanwhile is then seen
	 * twice rather than not at all. */
	if (snapshot_list(snap, false, max_list) < 0 ||
	    snapshot_list(snap, true, max_list) < 0)
		goto fail;
	items = xreallocarray(NULL, snap->count > 0 ? snap->count : 1,
	    sizeof(*items));
	for (i = 0; i < snap->count; i++) {
		items[i].e = snap->entries[i];
		items[i].secs = name_secs(items[i].e.name, items[i].e.base_len);
	}
	qsort(items, snap->count, sizeof(*items), item_cmp);
	/* One entry per base name, the cur/ one (the later one), or UIDLs
	 * would not be unique. */
	for (i = 0, n = 0; i < snap->count; i++) {
		const struct maildir_entry *e = &items[i].e;

		if (n > 0 && snap->entries[n - 1].base_len == e->base_len &&
		    memcmp(snap->entries[n - 1].name, e->name,
		    e->base_len) == 0)
			n--;
		snap->entries[n++] = *e;
	}
	free(items);
	snap->count = n;
	if (snap->count > max_messages) {
		errno = EFBIG;
		goto fail;
	}
	snap->total_size = 0;
	for (i = 0; i < snap->count; i++) {
		uint64_t s = snap->entries[i].size;

		snap->total_size = snap->total_size > UINT64_MAX - s ?
		    UINT64_MAX : snap->total_size + s;
	}
	if (snap->count > 0 && snap->count < p->cap) {
		snap->entries = xreallocarray(snap->entries, snap->count,
		    sizeof(*snap->entries));
		p->cap = snap->count;
	}
	*snap_r = snap;
	return 0;
fail:
	{
		int saved = errno;

		maildir_snapshot_free(&snap);
		errno = saved;
	}
	return -1;
}

void
maildir_snapshot_free(struct maildir_snapshot **snapp)
{
	struct maildir_snapshot *snap = *snapp;
	struct snapshot_priv *p;
	struct arena_block *b, *next;

	if (snap == NULL)
		return;
	p = snap->priv;
	if (p->dir_fds[0] >= 0)
		close(p->dir_fds[0]);
	if (p->dir_fds[1] >= 0)
		close(p->dir_fds[1]);
	for (b = p->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(p);
	free(snap->entries);
	free(snap->path);
	free(snap);
	*snapp = NULL;
}

void
maildir_entry_uidl(const struct maildir_entry *e,
    char out[MAILDIR_UIDL_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t i;
	bool plain = e->base_len >= 1 && e->base_len <= MAILDIR_UIDL_MAX;

	for (i = 0; plain && i < e->base_len; i++)
		if ((unsigned char)e->name[i] < 0x21 ||
		    (unsigned char)e->name[i] > 0x7e)
			plain = false;
	if (plain) {
		memcpy(out, e->name, e->base_len);
		out[e->base_len] = '\0';
		return;
	}
	/* 128 bits: unique in any mailbox; stable as the name is */
	if (EVP_Digest(e->name, e->base_len, md, NULL, EVP_sha256(),
	    NULL) != 1)
		fatalx("maildir_entry_uidl: SHA-256 failed");
	out[0] = 'X';
	for (i = 0; i < 16; i++) {
		out[1 + 2 * i] = hex[md[i] >> 4];
		out[2 + 2 * i] = hex[md[i] & 0xf];
	}
	out[33] = '\0';
}

/*
 * Gives entry e the name it now has on disk: in place when it fits (a
 * flag change keeps the length or shortens it), else in the arena, so
 * that relocations cost memory only as they happen.
 */
static void
entry_rename(struct maildir_snapshot *snap, struct maildir_entry *e,
    const char *name, bool in_cur)
{
	size_t len = strlen(name);

	if (strcmp(e->name, name) != 0) {
		if (len <= strlen(e->name))
			memcpy((char *)e->name, name, len + 1);
		else
			e->name = arena_strdup(snap->priv, name, len);
	}
	e->in_cur = in_cur;
	e->seen = name_has_flag(e->name, e->base_len, 'S');
}

/*
 * Lists new/ and cur/ again and points every entry found under another
 * name or directory to where it is now (another program moved it or
 * changed its flags). One pass updates all of them, so a session whose
 * messages were all moved rescans once, not once per message.
 */
static int
snapshot_rescan(struct maildir_snapshot *snap)
{
	char dirpath[PATH_MAX];
	struct dirent *de;
	int pass, saved;
	DIR *d;

	for (pass = 0; pass < 2; pass++) {
		bool in_cur = pass == 1;	/* cur/ wins: listed last */

		if (path_join(dirpath, sizeof(dirpath), "%s/%s", snap->path,
		    in_cur ? "cur" : "new") < 0)
			return -1;
		if ((d = opendir(dirpath)) == NULL) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		for (;;) {
			struct maildir_entry *e;
			struct entry_key k;

			errno = 0;
			if ((de = readdir(d)) == NULL) {
				if (errno != 0)
					goto fail;
				break;
			}
			if (!dirent_is_message(d, de))
				continue;
			entry_key(de->d_name, name_base_len(de->d_name), &k);
			if ((e = snapshot_find(snap, &k)) != NULL &&
			    (e->in_cur != in_cur ||
			    strcmp(e->name, de->d_name) != 0))
				entry_rename(snap, e, de->d_name, in_cur);
		}
		closedir(d);
	}
	return 0;
fail:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

static int
entry_path(const struct maildir_snapshot *snap, const struct maildir_entry *e,
    char *out, size_t outsize)
{
	return path_join(out, outsize, "%s/%s/%s", snap->path,
	    e->in_cur ? "cur" : "new", e->name);
}

static int
entry_open(const struct maildir_snapshot *snap, const struct maildir_entry *e)
{
	const struct snapshot_priv *p = snap->priv;
	char path[PATH_MAX];

	if (p->dir_fds[e->in_cur] >= 0)
		return open_message(p->dir_fds[e->in_cur], e->name);
	if (entry_path(snap, e, path, sizeof(path)) < 0)
		return -1;
	return open_message(AT_FDCWD, path);
}

int
maildir_snapshot_open(struct maildir_snapshot *snap, size_t i)
{
	int fd;

	if (i >= snap->count) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = entry_open(snap, &snap->entries[i])) >= 0 || errno != ENOENT)
		return fd;
	if (snapshot_rescan(snap) < 0)
		return -1;
	return entry_open(snap, &snap->entries[i]);
}

/* "BASE:2,FLAGS" with S added to e's flags, in ASCII order, once each. */
static int
seen_name(const struct maildir_entry *e, char *out, size_t outsize)
{
	bool has[256] = { false };
	const char *p;
	char flags[257];
	size_t n = 0;
	int c;

	if (e->name[e->base_len] != '\0')
		for (p = e->name + e->base_len + strlen(INFO_SEP); *p != '\0';
		    p++)
			has[(unsigned char)*p] = true;
	has['S'] = true;
	for (c = 1; c < 256; c++)
		if (has[c])
			flags[n++] = (char)c;
	flags[n] = '\0';
	return path_join(out, outsize, "%.*s" INFO_SEP "%s",
	    (int)e->base_len, e->name, flags);
}

static int
entry_mark_seen(struct maildir_snapshot *snap, struct maildir_entry *e)
{
	const struct snapshot_priv *p = snap->priv;
	char from[PATH_MAX], to[PATH_MAX], name[NAME_MAX + 1];

	if (seen_name(e, name, sizeof(name)) < 0)
		return -1;
	if (p->dir_fds[e->in_cur] >= 0 && p->dir_fds[1] >= 0) {
		if (renameat(p->dir_fds[e->in_cur], e->name, p->dir_fds[1],
		    name) < 0)
			return -1;
		entry_rename(snap, e, name, true);
		return 0;
	}
	if (entry_path(snap, e, from, sizeof(from)) < 0 ||
	    path_join(to, sizeof(to), "%s/cur/%s", snap->path, name) < 0)
		return -1;
	if (rename(from, to) < 0)
		return -1;
	entry_rename(snap, e, name, true);
	return 0;
}

int
maildir_snapshot_mark_seen(struct maildir_snapshot *snap, size_t i)
{
	struct maildir_entry *e;

	if (i >= snap->count) {
		errno = EINVAL;
		return -1;
	}
	e = &snap->entries[i];
	if (e->in_cur && e->seen)
		return 0;
	if (entry_mark_seen(snap, e) == 0)
		return 0;
	if (errno != ENOENT || snapshot_rescan(snap) < 0)
		return -1;
	if (e->in_cur && e->seen)
		return 0;	/* another program marked it meanwhile */
	return entry_mark_seen(snap, e);
}

static int
entry_unlink(const struct maildir_snapshot *snap,
    const struct maildir_entry *e)
{
	char path[PATH_MAX];

	if (entry_path(snap, e, path, sizeof(path)) < 0)
		return -1;
	return unlink(path);
}

long
maildir_snapshot_remove(struct maildir_snapshot *snap, const bool *remove)
{
	char dirpath[PATH_MAX];
	size_t i, nmissing = 0, *missing;
	long removed = 0;
	int first_errno = 0;
	static const char *const sub[] = { "new", "cur" };

	missing = xreallocarray(NULL, snap->count > 0 ? snap->count : 1,
	    sizeof(*missing));
	for (i = 0; i < snap->count; i++) {
		if (!remove[i])
			continue;
		if (entry_unlink(snap, &snap->entries[i]) == 0)
			removed++;
		else if (errno == ENOENT)
			missing[nmissing++] = i;
		else if (first_errno == 0)
			first_errno = errno;
	}
	/* Moved by another program (an IMAP client set a flag): find them
	 * where they are now; those still missing are gone already. */
	if (nmissing > 0) {
		if (snapshot_rescan(snap) < 0) {
			if (first_errno == 0)
				first_errno = errno;
		} else {
			for (i = 0; i < nmissing; i++) {
				if (entry_unlink(snap,
				    &snap->entries[missing[i]]) == 0)
					removed++;
				else if (errno != ENOENT && first_errno == 0)
					first_errno = errno;
			}
		}
	}
	free(missing);
	/* RFC 1939 6: the +OK of QUIT promises the removals. */
	for (i = 0; i < 2; i++) {
		if (path_join(dirpath, sizeof(dirpath), "%s/%s", snap->path,
		    sub[i]) < 0 || (fsync_dir(dirpath) < 0 && errno != ENOENT)) {
			if (first_errno == 0)
				first_errno = errno;
		}
	}
	if (first_errno != 0) {
		errno = first_errno;
		return -1;
	}
	return removed;
}

int
maildir_crlf_size(int fd, uint64_t *size_r)
{
	char buf[32 * 1024];
	uint64_t size = 0;
	bool last_cr = false;
	ssize_t n;

	for (;;) {
		const char *p, *lf, *end;

		if ((n = read(fd, buf, sizeof(buf))) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		size += (uint64_t)n;
		end = buf + n;
		for (p = buf; (lf = memchr(p, '\n', (size_t)(end - p))) != NULL;
		    p = lf + 1)
			if (!(lf > buf ? lf[-1] == '\r' : last_cr))
				size++;		/* a bare LF is sent as CR LF */
		last_cr = end[-1] == '\r';
	}
	*size_r = size;
	return 0;
}

int
maildir_pop3_lock(const char *path)
{
	char lock[PATH_MAX];
	int fd, saved;

	if (path_join(lock, sizeof(lock), "%s/" LOCK_NAME, path) < 0)
		return -1;
	fd = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    O_NOCTTY, 0600);
	if (fd < 0 && errno == ENOENT) {
		/* a mailbox that never got mail: POP3 sees it empty */
		if (maildir_create(path) < 0)
			return -1;
		fd = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
		    O_NOCTTY, 0600);
	}
	if (fd < 0)
		return -1;
	/* flock locks the open file, not the process: a second session in
	 * this process is refused too, and a crash frees the lock. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
