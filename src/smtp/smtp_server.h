/*
 * The SMTP service of one front process: accepts connections on the
 * inherited listening socket, applies the connection limits, runs one
 * smtp_session per client, and shuts down gracefully.
 */
#ifndef TEGAMI_SMTP_SERVER_H
#define TEGAMI_SMTP_SERVER_H

#include <limits.h>
#include <stdbool.h>
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

TAILQ_HEAD(smtp_session_list, smtp_session);

struct smtp_server {
	struct event_base *base;
	/* Replaced on reload; sessions must not keep pointers into them. */
	struct tegami_config *cfg;
	struct account_table *accounts;
	struct commit_pool *commit;
	struct tls_server *tls;		/* NULL: no certificate, no STARTTLS */
	struct evconnlistener *listener;
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
 * Sets up the service on listen_fd (already listening). cfg and accounts
 * are owned by the caller and may be swapped with smtp_server_reload.
 */
void smtp_server_init(struct smtp_server *srv, struct event_base *base,
    struct tegami_config *cfg, struct account_table *accounts,
    struct commit_pool *commit, int listen_fd);

/* Swaps in new settings and accounts; returns the old ones to free. */
void smtp_server_reload(struct smtp_server *srv, struct tegami_config *cfg,
    struct account_table *accounts, struct tegami_config **old_cfg_r,
    struct account_table **old_accounts_r);

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
