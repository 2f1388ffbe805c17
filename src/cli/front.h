/*
 * A front worker of `tegami serve`: the unprivileged event loop that
 * speaks SMTP (and later POP3 and IMAP) to clients on the listening
 * sockets the parent bound, asks the auth process to check passwords and
 * gets the account list from it.
 */
#ifndef TEGAMI_FRONT_H
#define TEGAMI_FRONT_H

#include <pwd.h>
#include <signal.h>

#include "smtp/smtp_server.h"

#define SERVE_EXIT_CONFIG 78	/* a child cannot run: do not retry */

struct front_sockets {
	int listen_fds[SMTP_SERVICES];	/* by enum smtp_service; -1: off */
	int auth_fd;		/* this slot's end of the auth socketpair */
};

/*
 * Runs the worker for connection-limit slot `slot`; never returns. It
 * loads the settings and certificates with the parent's rights, drops to
 * pw (when not NULL), and accepts connections once the auth process has
 * sent the account list.
 */
void front_main(const char *config_path, unsigned slot,
    const struct front_sockets *socks, const struct passwd *pw,
    const sigset_t *oldmask) __attribute__((noreturn));

#endif
