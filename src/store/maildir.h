/*
 * Maildir layout and naming (maildir(5), with Dovecot's ",S=" and ",W="
 * size fields so that Dovecot and mutt read tegami's Maildirs as they are).
 * Messages are stored with CRLF line ends, exactly as SMTP carried them, so
 * S= (file size) and W= (RFC 822 size) are equal.
 */
#ifndef TEGAMI_MAILDIR_H
#define TEGAMI_MAILDIR_H

#include <stddef.h>
#include <stdint.h>

/*
 * The Maildir of a mailbox address "local@domain":
 * MAIL_ROOT/domain/local. The address must already be validated (as the
 * accounts file does): a local part or domain that is empty, starts with
 * '.', or holds '/' is refused. Returns 0, or -1 (errno EINVAL or
 * ENAMETOOLONG).
 */
int maildir_path(char *out, size_t outsize, const char *mail_root,
    const char *address);

/*
 * Creates path/{tmp,new,cur} and any missing parents below and including
 * path (mode 0700), fsyncing each parent in which a directory was created,
 * so that a delivery into the new Maildir survives a crash. Existing
 * directories are fine. Returns 0 or -1 (errno).
 */
int maildir_create(const char *path);

/*
 * A unique name for a new message of size octets:
 * "SECONDS.M<usec>P<pid>Q<n>.HOST,S=<size>,W=<size>". Unique within this
 * host because the pid and a per-process counter are in it; '/' and ':' in
 * host are encoded as maildir(5) says. Thread-safe. Returns 0 or -1.
 */
int maildir_new_name(char *out, size_t outsize, const char *host,
    uint64_t size);

/*
 * Parses the ,S=<size> field of a Maildir file name. Returns 0 and sets
 * *size_r, or -1 when absent or malformed.
 */
int maildir_name_size(const char *name, uint64_t *size_r);

#endif
