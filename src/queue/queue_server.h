/*
 * The queue process (DESIGN.md): owns queue/, finds the messages the
 * fronts (and bounces) put there, delivers them (local recipients into
 * their Maildir, remote ones to their domain's MX hosts or the relay
 * host), retries with backoff, and returns what cannot be delivered to
 * its sender as a DSN.
 */
#ifndef TEGAMI_QUEUE_SERVER_H
#define TEGAMI_QUEUE_SERVER_H

#include <pwd.h>
#include <signal.h>

/*
 * Runs the queue process; never returns. auth_fd is its end of a
 * socketpair to the auth process (for the account list, which local
 * delivery of bounces needs). Loads the settings, drops to pw (when not
 * NULL), then serves. Exits 78 when the settings cannot be used.
 */
void queue_server_main(const char *config_path, int auth_fd,
    const struct passwd *pw, const sigset_t *oldmask)
    __attribute__((noreturn));

#endif
