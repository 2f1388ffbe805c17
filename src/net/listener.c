/*
 * TCP listening sockets for every service, bound by the parent process.
 */
#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "core/log.h"

int
listener_open(const char *address, unsigned port, char *err, size_t errsize)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sslen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, address,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sslen = sizeof(*sin6);
	} else {
		snprintf(err, errsize, "%s: not a numeric IP address", address);
		return -1;
	}

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsize, "%s:%u: socket: %s", address, port,
		    strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 ||
	    listen(fd, LISTENER_BACKLOG) < 0) {
		snprintf(err, errsize, "%s:%u: %s", address, port,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void
listener_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and friends: log and go on; the listener retries. */
	log_warn("accept");
}

struct evconnlistener *
listener_accept_start(struct event_base *base, int fd,
    void (*accept_cb)(struct evconnlistener *, int, struct sockaddr *, int,
    void *), void *arg)
{
	struct evconnlistener *l;

	l = evconnlistener_new(base, accept_cb, arg,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (l == NULL)
		fatalx("evconnlistener_new failed");
	evconnlistener_set_error_cb(l, listener_accept_error);
	return l;
}
