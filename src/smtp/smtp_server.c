/*
 * The SMTP service of one front process: accept, limits, shutdown.
 */
#include "smtp/smtp_server.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/listener.h"
#include "smtp/smtp_session.h"

const char *
smtp_service_name(enum smtp_service service)
{
	switch (service) {
	case SMTP_SERVICE_MX:
		return "smtp";
	case SMTP_SERVICE_SUBMISSION:
		return "submission";
	case SMTP_SERVICE_SUBMISSIONS:
		return "submissions";
	}
	return "?";
}

static void
smtp_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct smtp_listener *sl = arg;

	(void)l;
	smtp_session_start(sl->srv, fd, sa, (socklen_t)salen, sl->service);
}

void
smtp_server_init(struct smtp_server *srv, struct event_base *base,
    struct tegami_config *cfg, struct account_table *accounts,
    struct commit_pool *commit)
{
	memset(srv, 0, sizeof(*srv));
	srv->base = base;
	srv->cfg = cfg;
	srv->accounts = accounts;
	srv->commit = commit;
	TAILQ_INIT(&srv->sessions);
	random_bytes(&srv->next_session_id, sizeof(srv->next_session_id));
	srv->next_session_id &= 0x0000ffffffffffffULL;
	if (path_join(srv->spool_dir, sizeof(srv->spool_dir),
	    "%s/queue/incoming", cfg->state_dir) < 0 ||
	    path_join(srv->queue_dir, sizeof(srv->queue_dir), "%s/queue",
	    cfg->state_dir) < 0 ||
	    path_join(srv->mail_root, sizeof(srv->mail_root), "%s/mail",
	    cfg->state_dir) < 0)
		fatalx("state_dir path too long: %s", cfg->state_dir);
}

void
smtp_server_listen(struct smtp_server *srv, int listen_fd,
    enum smtp_service service)
{
	struct smtp_listener *sl;

	if (srv->n_listeners == SMTP_SERVICES)
		fatalx("smtp_server_listen: too many listeners");
	sl = &srv->listeners[srv->n_listeners++];
	sl->srv = srv;
	sl->service = service;
	sl->listener = listener_accept_start(srv->base, listen_fd,
	    smtp_accept_cb, sl);
}

void
smtp_server_reload(struct smtp_server *srv, struct tegami_config *cfg,
    struct tegami_config **old_cfg_r)
{
	*old_cfg_r = srv->cfg;
	srv->cfg = cfg;
}

void
smtp_server_set_accounts(struct smtp_server *srv,
    struct account_table *accounts, struct account_table **old_r)
{
	*old_r = srv->accounts;
	srv->accounts = accounts;
}

static void
smtp_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_server *srv = arg;
	struct smtp_session *s, *next;

	(void)fd;
	(void)what;
	log_info("shutdown grace period over: aborting open transactions");
	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = smtp_session_next(s);
		smtp_session_shutdown_now(s);
	}
}

void
smtp_server_shutdown(struct smtp_server *srv, void (*idle_cb)(void *arg),
    void *arg)
{
	struct smtp_session *s, *next;
	struct timeval tv = { .tv_sec = srv->cfg->shutdown_grace };

	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	srv->idle_cb = idle_cb;
	srv->idle_arg = arg;
	while (srv->n_listeners > 0) {
		struct smtp_listener *sl = &srv->listeners[--srv->n_listeners];

		evconnlistener_free(sl->listener);
		sl->listener = NULL;
	}
	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = smtp_session_next(s);
		smtp_session_shutdown(s);
	}
	srv->grace_timer = evtimer_new(srv->base, smtp_grace_cb, srv);
	if (srv->grace_timer != NULL)
		evtimer_add(srv->grace_timer, &tv);
	if (srv->n_sessions == 0 && srv->idle_cb != NULL)
		srv->idle_cb(srv->idle_arg);
}

void
smtp_server_session_ended(struct smtp_server *srv)
{
	srv->n_sessions--;
	if (srv->shutting_down && srv->n_sessions == 0) {
		if (srv->grace_timer != NULL) {
			event_free(srv->grace_timer);
			srv->grace_timer = NULL;
		}
		if (srv->idle_cb != NULL)
			srv->idle_cb(srv->idle_arg);
	}
}
