/*
 * The accounts files under the state directory:
 *   users:   "address:[!]password-hash[:options]" a line ("#" comments);
 *            the hash is a crypt(3) string of an accepted scheme, or empty
 *            (no password set); a leading '!' locks the account; options
 *            are comma-separated "send_as=PATTERN" items
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
/* accounts_may_send_as follows aliases this deep (alias_depth_max's
 * default) and no further, and gives up (false) after trying this many
 * addresses (RECIPIENT_EXPAND_STEPS_MAX), whatever the alias graph. */
#define ACCOUNTS_SEND_AS_DEPTH_MAX 10
#define ACCOUNTS_SEND_AS_STEPS_MAX 10000

/* The files' names under the state directory. */
#define ACCOUNTS_USERS_FILE "users"
#define ACCOUNTS_ALIASES_FILE "aliases"

struct account {
	char address[ACCOUNT_ADDRESS_MAX + 1];	/* lowercased local@domain */
	/* The crypt(3) hash without the lock mark: "$y$...", "$6$...",
	 * "$2b$..."/"$2y$..."/"$2a$...", or "" when no password is set
	 * (nobody can log in). NULL when loaded without hashes. */
	char *hash;
	bool locked;		/* "!" before the hash: cannot log in */
	/* What else the account may use as MAIL FROM (lowercased): an
	 * address, "@domain" (any address there) or "*" (anything). */
	char **send_as;
	size_t n_send_as;
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
 * The users file's hashes of the password: accounts_user_set_password
 * hashes it (like add) and replaces the hash on the address's line,
 * keeping a lock mark and the options. accounts_user_lock puts a '!'
 * before the hash (lock true) or takes it away (false), so that unlocking
 * restores the old hash byte for byte; locking a locked account, or
 * unlocking an unlocked one, changes nothing and succeeds.
 * accounts_user_set_send_as replaces the account's send_as options with
 * patterns (each an address, "@domain" or "*"; lowercased, duplicates
 * dropped); n 0 clears them. The rest of the line, and every other line,
 * is kept byte for byte. An address not in the file is an error
 * ("no such user: ADDRESS"). Atomic and locked like accounts_user_add.
 */
int accounts_user_set_password(const char *users_path, const char *address,
    const char *password, char *err, size_t errsize);
int accounts_user_lock(const char *users_path, const char *address,
    bool lock, char *err, size_t errsize);
int accounts_user_set_send_as(const char *users_path, const char *address,
    char *const *patterns, size_t n_patterns, char *err, size_t errsize);

/*
 * Checks a send_as pattern ("local@domain" checked like an alias target,
 * "@domain", or "*") and lowercases it into out (ACCOUNT_ADDRESS_MAX + 1).
 * Returns NULL or a reason.
 */
const char *accounts_check_send_as(const char *pattern, char *out);

/*
 * A Dovecot passwd-file ("user:{SCHEME}hash:uid:gid:gecos:home:shell:
 * extra", only the first two fields used, fewer fields allowed; "#"
 * comments and blank lines skipped) read into a table of accounts with
 * hashes, in file order, without locks or options. Imported: {SHA512-CRYPT}
 * "$6$", {BLF-CRYPT} "$2a$/$2b$/$2y$", {YESCRYPT} "$y$", {CRYPT} or no
 * scheme with a hash of one of those; an empty password field gives an
 * account with no password (as in Dovecot, it cannot log in). Anything else
 * is "NAME:LINE: scheme X cannot be imported; the user must set a new
 * password". A user name without '@' gets "@default_domain" (an error
 * when default_domain is NULL). Duplicates and bad addresses are errors
 * "NAME:LINE: what". accounts_import_parse reads text (NULL name: "import";
 * NUL bytes are errors); accounts_import_load reads a file.
 * Return 0, or -1 with err set and *table_r untouched.
 */
int accounts_import_parse(const char *name, const char *text, size_t len,
    const char *default_domain, struct account_table **table_r, char *err,
    size_t errsize);
int accounts_import_load(const char *import_path, const char *default_domain,
    struct account_table **table_r, char *err, size_t errsize);

/*
 * Appends the accounts of the Dovecot passwd-file import_path (see
 * accounts_import_parse) to the users file, atomically and locked like
 * accounts_user_add. An address already in the users file with the very
 * same hash (and not locked) is skipped, so that running an import twice
 * is harmless; one with any other hash, or locked, is an error
 * "IMPORT:LINE: user X already exists in USERS with another password
 * hash". Nothing is written unless every line is valid. *imported_r gets
 * the number of accounts appended.
 */
int accounts_user_import(const char *users_path, const char *import_path,
    const char *default_domain, size_t *imported_r, char *err,
    size_t errsize);

/*
 * The users file of t without any hash, for processes that must not see
 * them: "address:!" for a locked account, "address:" otherwise, then
 * ":send_as=P,send_as=P" when it has patterns; one line each, in table
 * order. accounts_parse(with_hashes false) reads it back to the same
 * addresses, locks and patterns. *text_r is malloc'd (the caller frees
 * it; "" for no accounts) and *len_r its length without the NUL.
 * Returns 0 (allocation failure is fatal).
 */
int accounts_public_text(const struct account_table *t, char **text_r,
    size_t *len_r);

/*
 * May the authenticated account use sender as MAIL FROM? sender is the
 * reverse-path's "local@domain" as the client gave it (any case), or ""
 * for the null sender. True when sender is "", the account itself, the
 * account with a "+tag" (alice+x@example.com), an address that leads to
 * the account the way mail to it would (a user's own address; an alias
 * whose targets, directly or through nested aliases at most
 * ACCOUNTS_SEND_AS_DEPTH_MAX deep, include the account; each tried also
 * without its "+tag"), or matches one of the account's send_as patterns.
 * Compared case-insensitively. False when account is not in t, and when
 * the alias walk has tried ACCOUNTS_SEND_AS_STEPS_MAX addresses without
 * reaching the account (loops end at the depth limit). Aliases and steps
 * are counted as recipient_resolve counts them: when mail to sender
 * would reach the account (alias_depth_max at most 10), the account may
 * send as sender.
 */
bool accounts_may_send_as(const struct account_table *t, const char *account,
    const char *sender);

/*
 * Plus-addressing: when the local part of address has a '+' (not as its
 * first byte), writes the address without the "+tag" ("alice+x@d" ->
 * "alice@d") into base (ACCOUNT_ADDRESS_MAX + 1) and returns true; false
 * when there is no tag. Case is left alone.
 */
bool accounts_untag(const char *address, char *base);

/*
 * Hashes a password with yescrypt (crypt_gensalt_ra "$y$", then crypt_rn)
 * into out (ACCOUNT_HASH_MAX). Returns 0 or -1.
 */
int accounts_hash_password(const char *password, char *out, size_t outsize);

#endif
