/*
 * The accounts files under the state directory:
 *   users:   "address:password-hash" a line (crypt(3) hash; "#" comments)
 *   aliases: "alias-address: target, target, ..." a line ("#" comments)
 * Addresses are stored lowercased. Both files are rewritten atomically
 * (temp file, fsync, rename, fsync dir) under an exclusive flock on
 * "FILE.lock", so concurrent `tegami user`/`alias` runs never lose a line.
 */
#ifndef TEGAMI_ACCOUNTS_H
#define TEGAMI_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#define ACCOUNT_ADDRESS_MAX 320	/* 64 local + @ + 255 domain */
#define ACCOUNT_HASH_MAX 256
#define ALIAS_TARGETS_MAX 1000	/* targets on one alias line */
#define ACCOUNTS_USERS_LINE_MAX 4096	/* bytes, without the newline */
/* An aliases line must hold ALIAS_TARGETS_MAX targets of the longest kind. */
#define ACCOUNTS_ALIASES_LINE_MAX \
	((ALIAS_TARGETS_MAX + 1) * (ACCOUNT_ADDRESS_MAX + 2))
#define ACCOUNTS_PASSWORD_MAX 511	/* bytes; libxcrypt's limit less 1 */

/* The files' names under the state directory. */
#define ACCOUNTS_USERS_FILE "users"
#define ACCOUNTS_ALIASES_FILE "aliases"

struct account {
	char address[ACCOUNT_ADDRESS_MAX + 1];	/* lowercased local@domain */
	char *hash;				/* crypt(3) hash, may be NULL */
};

struct alias {
	char address[ACCOUNT_ADDRESS_MAX + 1];
	char **targets;		/* lowercased addresses */
	size_t n_targets;
};

struct account_table {
	struct account *accounts;
	size_t n_accounts;
	struct alias *aliases;
	size_t n_aliases;
	/* Hash index over addresses; private. */
	size_t *account_index, *alias_index;
	size_t index_size;
};

/*
 * Loads both files (a missing file is an empty table; a NULL path is not
 * read). with_hashes false drops the hashes as they are read, for processes
 * that must not hold them. Returns 0, or -1 with "FILE:LINE: what" in err.
 * An address that is both a user and an alias is allowed; the user wins.
 */
int accounts_load(const char *users_path, const char *aliases_path,
    bool with_hashes, struct account_table **table_r, char *err,
    size_t errsize);

/*
 * accounts_load on text held in memory (tests, fuzzing, the editors);
 * the names are used in error messages ("users" or "aliases" when NULL);
 * a NULL text means an empty file.
 * The texts need not be NUL-terminated; a NUL byte in them is an error.
 */
int accounts_parse(const char *users_name, const char *users_text,
    size_t users_len, const char *aliases_name, const char *aliases_text,
    size_t aliases_len, bool with_hashes, struct account_table **table_r,
    char *err, size_t errsize);
void accounts_free(struct account_table **tablep);

/* Exact lookups on lowercased addresses, O(1); NULL when absent (also
 * when t is NULL). */
const struct account *accounts_find_user(const struct account_table *t,
    const char *address);
const struct alias *accounts_find_alias(const struct account_table *t,
    const char *address);

/*
 * Checks that address is a plain "local@domain" suitable for the files:
 * dot-atom local part without '+', '%', '!', a domain name; lowercases it
 * into out (ACCOUNT_ADDRESS_MAX + 1). Returns NULL or a reason.
 */
const char *accounts_check_address(const char *address, char *out);

/*
 * The same check for an alias target, which may be remote and may carry a
 * "+tag" ("bob+lists@example.net"); '%', '!' are still refused.
 */
const char *accounts_check_target(const char *address, char *out);

/* Writes state_dir "/" name into out; -1 (ENAMETOOLONG) if it did not fit. */
int accounts_state_path(const char *state_dir, const char *name, char *out,
    size_t outsize);

/* Both files' paths under state_dir, into buffers of PATH_MAX bytes;
 * -1 (ENAMETOOLONG) if one did not fit. */
int accounts_paths(const char *state_dir, char *users_r, char *aliases_r);

/*
 * Edit the files, atomically and locked: the current file is parsed (an
 * error in it stops the edit), then FILE.tmp.PID is written with the
 * original's mode and owner (0640 users, 0644 aliases when new), fsync'd
 * and renamed over FILE, and the directory is fsync'd. Adding an address
 * that is present, or deleting one that is not, is an error. Comments and
 * other lines are kept byte for byte. Return 0, or -1 with err set.
 * The password is never written or logged; only its yescrypt hash.
 */
int accounts_user_add(const char *users_path, const char *address,
    const char *password, char *err, size_t errsize);
int accounts_user_del(const char *users_path, const char *address,
    char *err, size_t errsize);
int accounts_alias_add(const char *aliases_path, const char *address,
    char *const *targets, size_t n_targets, char *err, size_t errsize);
int accounts_alias_del(const char *aliases_path, const char *address,
    char *err, size_t errsize);

/*
 * Hashes a password with yescrypt (crypt_gensalt_ra "$y$", then crypt_rn)
 * into out (ACCOUNT_HASH_MAX). Returns 0 or -1.
 */
int accounts_hash_password(const char *password, char *out, size_t outsize);

#endif
