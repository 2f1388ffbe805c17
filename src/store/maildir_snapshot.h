/*
 * A POP3 session's view of a Maildir (RFC 1939 with maildir(5)): the list
 * of messages in new/ and cur/ taken once at login, each with a stable
 * unique id (UIDL) and its size in CRLF form; marking a message seen
 * (new/ -> cur/ with ":2,S", as Dovecot and IMAP expect) and removing
 * messages at QUIT. Blocking file-system calls: run them off the event
 * loop for big mailboxes.
 */
#ifndef TEGAMI_MAILDIR_SNAPSHOT_H
#define TEGAMI_MAILDIR_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 1939 7: a unique-id is 1 to 70 characters in 0x21..0x7E. */
#define MAILDIR_UIDL_MAX 70

struct maildir_entry {
	const char *name;	/* the file name as listed (base + ":2,FLAGS"
				 * or base alone), in the snapshot's arena */
	uint32_t base_len;	/* bytes of name before ":2," (or strlen) */
	bool in_cur;		/* listed in cur/ (else new/) */
	bool seen;		/* the S flag was set (or set by mark_seen) */
	uint64_t size;		/* octets in CRLF form (see below) */
};

struct maildir_snapshot {
	char *path;		/* the Maildir (owned) */
	struct maildir_entry *entries;	/* in delivery order */
	size_t count;
	uint64_t total_size;	/* sum of the sizes */
	/* private: the arena that holds the names, and such */
	void *priv;
};

/*
 * Lists path/new and path/cur (path/tmp is ignored, as are names starting
 * with "." and anything that is not a regular file), at most max_messages
 * of them (-1 with errno EFBIG beyond that: the caller says [SYS/PERM]).
 * A missing Maildir or subdirectory is an empty mailbox, not an error.
 * Entries are sorted in delivery order: by the leading decimal seconds of
 * the name, then by the base name (stable across sessions and flag
 * changes, so message numbers are too, for an unchanged mailbox). A base
 * name listed in both new/ and cur/ (another program moving it while we
 * list) is one entry, the cur/ one, so UIDLs stay unique.
 * Sizes: the ",W=<n>" field of the name when present (Dovecot and tegami
 * write it: the CRLF size); otherwise computed by reading the file with
 * maildir_crlf_size. Returns 0 and *snap_r (free with
 * maildir_snapshot_free), or -1 with errno.
 */
int maildir_snapshot_take(const char *path, size_t max_messages,
    struct maildir_snapshot **snap_r);
void maildir_snapshot_free(struct maildir_snapshot **snapp);

/*
 * The message's unique id for UIDL into out (MAILDIR_UIDL_MAX + 1 bytes):
 * the base name (the part before ":2,", which a move from new/ to cur/ or
 * a flag change keeps) when it is 1..70 octets of 0x21..0x7E; otherwise
 * "X" and the first 32 lower-case hex digits of the SHA-256 of the base
 * name (33 octets). Stable across sessions and restarts, unique within
 * the mailbox.
 */
void maildir_entry_uidl(const struct maildir_entry *e,
    char out[MAILDIR_UIDL_MAX + 1]);

/*
 * Opens message i (0-based) read-only (O_CLOEXEC, blocking reads). When
 * it is no longer where the snapshot saw it (another program moved it
 * from new/ to cur/ or changed its flags), it is found again in cur/ or
 * new/ by its base name and the entry updated (one rescan of both
 * directories updates every moved entry at once). Returns the fd, or -1
 * with errno (ENOENT: the message was removed meanwhile, or is now a
 * symlink or not a regular file; EINVAL: i >= count).
 */
int maildir_snapshot_open(struct maildir_snapshot *snap, size_t i);

/*
 * Marks message i seen: new/NAME becomes cur/BASE:2,S, and a cur/ name
 * gets "S" added to its flags (kept in ASCII order, as maildir(5) asks).
 * No fsync (a lost seen flag is harmless). Returns 0, or -1 with errno
 * (ENOENT when the message is gone, EINVAL when i >= count).
 */
int maildir_snapshot_mark_seen(struct maildir_snapshot *snap, size_t i);

/*
 * Removes the messages whose indexes are flagged in remove[] (count
 * entries; a message moved by another program is found again, as
 * maildir_snapshot_open does), then fsyncs new/ and cur/ so that the removals are durable
 * before +OK is sent (RFC 1939 6). A message already gone is not an
 * error. Returns the number removed, or -1 with errno on the first
 * failure other than ENOENT (the others are still tried).
 */
long maildir_snapshot_remove(struct maildir_snapshot *snap,
    const bool *remove);

/*
 * The octets of the file's content once each LF not preceded by CR is
 * counted as CR LF (bare CR and everything else count as one). Reads fd
 * from its current offset to the end. Returns 0 and *size_r, or -1.
 */
int maildir_crlf_size(int fd, uint64_t *size_r);

/*
 * The POP3 lock of a Maildir: an flock()ed file path/tegami-pop3.lock,
 * so that one POP3 session at a time uses the mailbox ([IN-USE]) and a
 * crashed process never leaves it locked (the kernel drops the lock with
 * the descriptor). Per open file, so two sessions in one process
 * exclude each other too. Creates path (as maildir_create) when missing.
 * Returns the lock fd (close it to unlock), -1 with errno EWOULDBLOCK when
 * another session holds it, or -1 with another errno.
 */
int maildir_pop3_lock(const char *path);

#endif
