/*
 * The POP3 services of one front process (RFC 1939): pop3 on port 110
 * (STLS, RFC 2595, before any password) and pop3s on 995 (TLS from the
 * first byte, RFC 8314). Accepts connections on the inherited listening
 * sockets, applies the connection limits shared with SMTP, runs one
 * pop3_session per client, and closes them all on shutdown (a session
 * that never reached QUIT deletes nothing, so nothing is lost).
 */
#ifndef TEGAMI_POP3_SERVER_H
#define TEGAMI_POP3_SERVER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct event_base;
struct evconnlistener;
struct tegami_config;
struct tls_server;
struct auth_client;
struct pop3_session;

enum pop3_service {
	POP3_SERVICE_POP3,	/* 110: STLS before USER/PASS/AUTH */
	POP3_SERVICE_POP3S,	/* 995: TLS from the start */
};
#define POP3_SERVICES 2

/* "pop3", "pop3s": the service names in logs and for the auth process. */
const char *pop3_service_name(enum pop3_service service);

struct pop3_listener {
	struct evconnlistener *listener;
	enum pop3_service service;
	struct pop3_server *srv;
};

TAILQ_HEAD(pop3_session_list, pop3_session);

struct commit_pool;

struct pop3_server {
	struct event_base *base;
	/* Not owned: the front swaps them on reload. Sessions must not keep
	 * pointers into them across events. */
	struct tegami_config *cfg;
	struct tls_server *tls;		/* NULL: no certificate, no STLS */
	struct auth_client *auth;	/* NULL: every login is [SYS/TEMP] */
	struct commit_pool *commit;	/* the front's disk threads */
	struct pop3_listener listeners[POP3_SERVICES];
	size_t n_listeners;
	char mail_root[PATH_MAX];	/* STATE/mail */
	struct pop3_session_list sessions;
	unsigned n_sessions;
	uint64_t next_session_id;
	bool shutting_down;
	void (*idle_cb)(void *arg);
	void *idle_arg;
};

/* Sets up the services; nothing is accepted before pop3_server_listen. */
void pop3_server_init(struct pop3_server *srv, struct event_base *base,
    struct tegami_config *cfg, struct commit_pool *commit);

/* Accepts connections for service on listen_fd (already listening). */
void pop3_server_listen(struct pop3_server *srv, int listen_fd,
    enum pop3_service service);

/*
 * Stops accepting and closes every session with "-ERR [SYS/TEMP]": POP3
 * has no transaction worth waiting for, and a session closed before QUIT
 * changes nothing in the mailbox. idle_cb runs once no session is left
 * (possibly before this returns).
 */
void pop3_server_shutdown(struct pop3_server *srv,
    void (*idle_cb)(void *arg), void *arg);

/* Called by a session when it is freed. */
void pop3_server_session_ended(struct pop3_server *srv);

#endif
