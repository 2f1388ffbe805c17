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
 * Loads both files (a missing file is an empty table). with_hashes false
 * drops the hashes as they are read, for processes that must not hold
 * them. Returns 0, or -1 with "FILE:LINE: what" in err.
 */
int accounts_load(const char *users_path, const char *aliases_path,
    bool with_hashes, struct account_table **table_r, char *err,
    size_t errsize);
void accounts_free(struct account_table **tablep);

/* Exact lookups on lowercased addresses; NULL when absent. */
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

/* Edits the files, atomically and locked. Return 0, or -1 with err set. */
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
