/*
 * Listening sockets. The parent binds them (ports below 1024 need root)
 * before any privilege is dropped; workers inherit the descriptors.
 */
#ifndef TEGAMI_LISTENER_H
#define TEGAMI_LISTENER_H

#include <stddef.h>

#define LISTENER_BACKLOG 1024

/*
 * Binds a non-blocking TCP socket to address (numeric IPv4 or IPv6) and
 * port, and listens. Returns the descriptor, or -1 with err set to
 * "ADDRESS:PORT: reason".
 */
int listener_open(const char *address, unsigned port, char *err,
    size_t errsize);

#endif
