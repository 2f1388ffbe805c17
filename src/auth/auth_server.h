/*
 * The auth process (DESIGN.md): the only reader of the users file and its
 * password hashes. It checks passwords for the front processes on a pool
 * of threads (yescrypt is slow on purpose), throttles guessing, logs every
 * failure in one fail2ban-friendly line, and sends the fronts the account
 * list without hashes whenever the users or aliases file changes.
 */
#ifndef TEGAMI_AUTH_SERVER_H
#define TEGAMI_AUTH_SERVER_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Runs the auth process; never returns. fds are the auth ends of the
 * fronts' socketpairs (n of them). Loads config_path and the accounts,
 * then drops to uid/gid (when not -1), then serves. Exits 78 when the
 * configuration or the users file cannot be read at start.
 */
void auth_server_main(const char *config_path, const int *fds, size_t n,
    uid_t uid, gid_t gid) __attribute__((noreturn));

#endif
