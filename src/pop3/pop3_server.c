/*
 * The POP3 services of one front process: accept, shutdown (pop3_server.h).
 */
#include "pop3/pop3_server.h"

#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/listener.h"
#include "pop3/pop3_session.h"

const char *
pop3_service_name(enum pop3_service service)
{
	switch (service) {
	case POP3_SERVICE_POP3:
		return "pop3";
	case POP3_SERVICE_POP3S:
		return "pop3s";
	}
	return "?";
}

static void
pop3_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct pop3_listener *pl = arg;

	(void)l;
	pop3_session_start(pl->srv, fd, sa, (socklen_t)salen, pl->service);
}

void
pop3_server_init(struct pop3_server *srv, struct event_base *base,
    struct tegami_config *cfg, struct commit_pool *commit)
{
	memset(srv, 0, sizeof(*srv));
	srv->base = base;
	srv->cfg = cfg;
	srv->commit = commit;
	TAILQ_INIT(&srv->sessions);
	random_bytes(&srv->next_session_id, sizeof(srv->next_session_id));
	/* Apart from the SMTP sessions' ids: a different top bit. */
	srv->next_session_id = (srv->next_session_id & 0x0000ffffffffffffULL) |
	    0x0001000000000000ULL;
	if (path_join(srv->mail_root, sizeof(srv->mail_root), "%s/mail",
	    cfg->state_dir) < 0)
		fatalx("state_dir path too long: %s", cfg->state_dir);
}

void
pop3_server_listen(struct pop3_server *srv, int listen_fd,
    enum pop3_service service)
{
	struct pop3_listener *pl;

	if (srv->n_listeners == POP3_SERVICES)
		fatalx("pop3_server_listen: too many listeners");
	pl = &srv->listeners[srv->n_listeners++];
	pl->srv = srv;
	pl->service = service;
	pl->listener = listener_accept_start(srv->base, listen_fd,
	    pop3_accept_cb, pl);
}

void
pop3_server_shutdown(struct pop3_server *srv, void (*idle_cb)(void *arg),
    void *arg)
{
	struct pop3_session *s, *next;

	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	srv->idle_cb = idle_cb;
	srv->idle_arg = arg;
	while (srv->n_listeners > 0) {
		struct pop3_listener *pl = &srv->listeners[--srv->n_listeners];

		evconnlistener_free(pl->listener);
		pl->listener = NULL;
	}
	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = pop3_session_next(s);
		pop3_session_shutdown(s);
	}
	if (srv->n_sessions == 0 && srv->idle_cb != NULL)
		srv->idle_cb(srv->idle_arg);
}

void
pop3_server_session_ended(struct pop3_server *srv)
{
	srv->n_sessions--;
	if (srv->shutting_down && srv->n_sessions == 0 && srv->idle_cb != NULL)
		srv->idle_cb(srv->idle_arg);
}
