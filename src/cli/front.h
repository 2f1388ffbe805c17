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

#include <stdbool.h>

#include "pop3/pop3_server.h"
#include "smtp/smtp_server.h"

#define SERVE_EXIT_CONFIG 78	/* a child cannot run: do not retry */

/*
 * The listening services of a front, indexed the same everywhere: the SMTP
 * ones by enum smtp_service, then POP3's by FRONT_POP3_FIRST + enum
 * pop3_service.
 */
#define FRONT_POP3_FIRST SMTP_SERVICES
#define FRONT_SERVICES (SMTP_SERVICES + POP3_SERVICES)

/* "smtp", "submission", "submissions", "pop3", "pop3s" */
const char *front_service_name(int service);
/* 25, 587, 465, 110, 995 (before port_base). */
unsigned front_service_standard_port(int service);
/* Implicit TLS (465, 995): off when there is no certificate. */
bool front_service_implicit_tls(int service);

struct front_sockets {
	int listen_fds[FRONT_SERVICES];	/* by service; -1: off */
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
