/*
 * The SMTP services of one front process: smtp (MX, port 25), submission
 * (587, STARTTLS, RFC 6409) and submissions (465, implicit TLS, RFC 8314).
 * Accepts connections on the inherited listening sockets, applies the
 * connection limits, runs one smtp_session per client, and shuts down
 * gracefully.
 */
#ifndef TEGAMI_SMTP_SERVER_H
#define TEGAMI_SMTP_SERVER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct event_base;
struct evconnlistener;
struct event;
struct commit_pool;
struct tegami_config;
struct account_table;
struct smtp_session;
struct tls_server;
struct auth_client;

enum smtp_service {
	SMTP_SERVICE_MX,		/* 25: mail for our domains, no AUTH */
	SMTP_SERVICE_SUBMISSION,	/* 587: users, STARTTLS then AUTH */
	SMTP_SERVICE_SUBMISSIONS,	/* 465: users, TLS from the start */
};
#define SMTP_SERVICES 3

/* "smtp", "submission", "submissions" */
const char *smtp_service_name(enum smtp_service service);

struct smtp_listener {
	struct evconnlistener *listener;
	enum smtp_service service;
	struct smtp_server *srv;
};

TAILQ_HEAD(smtp_session_list, smtp_session);

struct smtp_server {
	struct event_base *base;
	/* Replaced on reload; sessions must not keep pointers into them. */
	struct tegami_config *cfg;
	struct account_table *accounts;
	struct commit_pool *commit;
	struct tls_server *tls;		/* NULL: no certificate, no STARTTLS */
	struct auth_client *auth;	/* NULL: every AUTH gets 454 */
	struct smtp_listener listeners[SMTP_SERVICES];
	size_t n_listeners;
	char spool_dir[PATH_MAX];	/* STATE/queue/incoming */
	char queue_dir[PATH_MAX];	/* STATE/queue */
	char mail_root[PATH_MAX];	/* STATE/mail */
	struct smtp_session_list sessions;
	unsigned n_sessions;
	uint64_t next_session_id;
	bool shutting_down;
	struct event *grace_timer;
	/* Called when shutting down and the last session has ended. */
	void (*idle_cb)(void *arg);
	void *idle_arg;
};

/*
 * Sets up the services. cfg and accounts are owned by the caller and may
 * be swapped with smtp_server_reload and smtp_server_set_accounts; no
 * connection is accepted before smtp_server_listen.
 */
void smtp_server_init(struct smtp_server *srv, struct event_base *base,
    struct tegami_config *cfg, struct account_table *accounts,
    struct commit_pool *commit);

/* Accepts connections for service on listen_fd (already listening). */
void smtp_server_listen(struct smtp_server *srv, int listen_fd,
    enum smtp_service service);

/* Swaps in new settings; returns the old ones to free. */
void smtp_server_reload(struct smtp_server *srv, struct tegami_config *cfg,
    struct tegami_config **old_cfg_r);
/* Swaps in new accounts; returns the old ones to free. */
void smtp_server_set_accounts(struct smtp_server *srv,
    struct account_table *accounts, struct account_table **old_r);

/*
 * Stops accepting; idle sessions get 421 and close, sessions in a
 * transaction may finish it within cfg->shutdown_grace seconds, then get
 * 421. idle_cb runs once no session is left.
 */
void smtp_server_shutdown(struct smtp_server *srv,
    void (*idle_cb)(void *arg), void *arg);

/* Called by a session when it is freed. */
void smtp_server_session_ended(struct smtp_server *srv);

#endif
