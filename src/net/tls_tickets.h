/*
 * Session-ticket keys shared by every front worker (RFC 5077, RFC 8446
 * 4.6.1), so that a client resumes its TLS session whichever worker
 * accepts its next connection. The keys derive from one secret the parent
 * makes at start and the workers inherit, and from the time: they change
 * every TLS_TICKET_EPOCH_SECONDS (forward secrecy for old tickets), and a
 * ticket from the previous period is still accepted and replaced.
 */
#ifndef TEGAMI_TLS_TICKETS_H
#define TEGAMI_TLS_TICKETS_H

#include <openssl/ssl.h>

#define TLS_TICKET_EPOCH_SECONDS (12 * 3600)

/* Makes a fresh secret; call in the parent before forking the workers.
 * A process that never calls it gets its own secret at first use. */
void tls_tickets_init(void);

/* Installs the shared keys on a server context. Returns 0 or -1. */
int tls_tickets_use(SSL_CTX *ctx);

#endif
