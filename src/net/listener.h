/*
 * Listening sockets. The parent binds them (ports below 1024 need root)
 * before any privilege is dropped; workers inherit the descriptors.
 */
#ifndef TEGAMI_LISTENER_H
#define TEGAMI_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

#define LISTENER_BACKLOG 1024

struct event_base;
struct evconnlistener;

/*
 * Binds a non-blocking TCP socket to address (numeric IPv4 or IPv6) and
 * port, and listens. Returns the descriptor, or -1 with err set to
 * "ADDRESS:PORT: reason".
 */
int listener_open(const char *address, unsigned port, char *err,
    size_t errsize);

/*
 * A worker's accept loop on an inherited listening socket: libevent's
 * accept_cb runs for each new connection, which the callee owns. Accept
 * errors (EMFILE and such) are logged and accepting goes on. The listener
 * closes fd when freed (evconnlistener_free). Fatal when libevent cannot
 * set it up.
 */
struct evconnlistener *listener_accept_start(struct event_base *base,
    int fd, void (*accept_cb)(struct evconnlistener *, int,
    struct sockaddr *, int, void *), void *arg);

#endif
