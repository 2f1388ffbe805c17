/*
 * The queue process (queue_server.h): finds messages in queue/ (a scan at
 * start and every few minutes, and inotify for new envelopes at once),
 * starts a delivery attempt for each message that is due, and bounds the
 * outbound connections in all and per destination domain. It also holds
 * the routes (routes_file), read again when the file changes.
 */
#include "queue/queue_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/accounts.h"
#include "auth/auth_client.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "dns/dns.h"
#include "queue/queue_conncache.h"
#include "queue/queue_private.h"

#define QUEUE_EXIT_CONFIG 78
#define QUEUE_TICK_SECONDS 1
#define QUEUE_ATTEMPTS_MAX 256
#define QUEUE_SCAN_SECONDS 300		/* a full scan, in case of misses */

/* Connections per domain: a small table, since few domains are busy. */
struct domain_count {
	char domain[256];
	unsigned n;
};

static struct domain_count *domain_counts;
static size_t n_domain_counts;

uint64_t
queue_now(void)
{
	return (uint64_t)time(NULL);
}

static struct domain_count *
domain_count_find(const char *domain, bool create)
{
	size_t i;

	for (i = 0; i < n_domain_counts; i++)
		if (strcasecmp(domain_counts[i].domain, domain) == 0)
			return &domain_counts[i];
	if (!create)
		return NULL;
	domain_counts = xreallocarray(domain_counts, n_domain_counts + 1,
	    sizeof(*domain_counts));
	memset(&domain_counts[n_domain_counts], 0, sizeof(*domain_counts));
	snprintf(domain_counts[n_domain_counts].domain,
	    sizeof(domain_counts[0].domain), "%s", domain);
	return &domain_counts[n_domain_counts++];
}

static bool
queue_slot_free(struct queue_server *qs, const char *domain)
{
	struct domain_count *dc = domain_count_find(domain, false);

	return qs->connections < qs->cfg->outbound_connections &&
	    (dc == NULL || dc->n < qs->cfg->outbound_connections_per_domain);
}

static void
queue_slot_take(struct queue_server *qs, const char *domain)
{
	qs->connections++;
	domain_count_find(domain, true)->n++;
}

void
queue_slot_acquire(struct queue_server *qs, const char *domain,
    struct queue_wait *w, void (*start)(void *arg), void *arg)
{
	w->start = start;
	w->arg = arg;
	snprintf(w->domain, sizeof(w->domain), "%s", domain);
	if (TAILQ_EMPTY(&qs->waiting) && queue_slot_free(qs, domain)) {
		queue_slot_take(qs, domain);
		start(arg);
		return;
	}
	TAILQ_INSERT_TAIL(&qs->waiting, w, entry);
}

void
queue_slot_cancel(struct queue_server *qs, struct queue_wait *w)
{
	struct queue_wait *x;

	TAILQ_FOREACH(x, &qs->waiting, entry)
		if (x == w) {
			TAILQ_REMOVE(&qs->waiting, w, entry);
			return;
		}
}

void
queue_slot_release(struct queue_server *qs, const char *domain)
{
	struct domain_count *dc = domain_count_find(domain, false);
	struct queue_wait *w, *next;

	if (qs->connections > 0)
		qs->connections--;
	if (dc != NULL && dc->n > 0)
		dc->n--;
	/* The first waiting job whose domain has room goes next. */
	for (w = TAILQ_FIRST(&qs->waiting); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (qs->connections >= qs->cfg->outbound_connections)
			break;
		if (!queue_slot_free(qs, w->domain))
			continue;
		TAILQ_REMOVE(&qs->waiting, w, entry);
		queue_slot_take(qs, w->domain);
		w->start(w->arg);
	}
}

/* ---- The messages ------------------------------------------------------ */

/* FNV-1a: ids are ours, but lookups also take what an admin typed. */
static size_t
queue_id_hash(const struct queue_server *qs, const char *id)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return (size_t)(h & (qs->by_id_size - 1));
}

static void
queue_id_insert(struct queue_server *qs, struct queue_msg *m)
{
	size_t i = queue_id_hash(qs, m->id);

	m->id_next = qs->by_id[i];
	qs->by_id[i] = m;
}

/* Twice the chains, every message filed again. */
static void
queue_id_grow(struct queue_server *qs)
{
	struct queue_msg *m;

	free(qs->by_id);
	qs->by_id_size = qs->by_id_size ? qs->by_id_size * 2 : 1024;
	qs->by_id = xcalloc(qs->by_id_size, sizeof(*qs->by_id));
	TAILQ_FOREACH(m, &qs->msgs, entry)
		queue_id_insert(qs, m);
}

struct queue_msg *
queue_msg_lookup(struct queue_server *qs, const char *id)
{
	struct queue_msg *m;

	if (qs->by_id_size == 0)
		return NULL;
	for (m = qs->by_id[queue_id_hash(qs, id)]; m != NULL; m = m->id_next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

void
queue_msg_add(struct queue_server *qs, const char *id, uint64_t next_attempt)
{
	struct queue_msg *m = queue_msg_lookup(qs, id);

	if (m != NULL)
		return;
	m = xcalloc(1, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->next_attempt = next_attempt;
	m->due_i = QUEUE_DUE_NONE;
	TAILQ_INSERT_TAIL(&qs->msgs, m, entry);
	qs->n_msgs++;
	if (qs->n_msgs > qs->by_id_size)
		queue_id_grow(qs);	/* files m too */
	else
		queue_id_insert(qs, m);
	queue_due_push(&qs->due, m);
	if (next_attempt <= queue_now())
		queue_kick(qs);
}

void
queue_msg_due_now(struct queue_server *qs, struct queue_msg *m)
{
	m->next_attempt = 0;
	queue_due_update(&qs->due, m);
}

void
queue_kick(struct queue_server *qs)
{
	/* Several kicks before the loop turns make one pass. */
	if (qs->kick != NULL)
		event_active(qs->kick, EV_TIMEOUT, 0);
}

static void
queue_msg_free(struct queue_server *qs, struct queue_msg *m)
{
	struct queue_msg **p = &qs->by_id[queue_id_hash(qs, m->id)];

	while (*p != m)
		p = &(*p)->id_next;
	*p = m->id_next;
	queue_due_remove(&qs->due, m);
	TAILQ_REMOVE(&qs->msgs, m, entry);
	qs->n_msgs--;
	free(m);
}

void
queue_msg_forget(struct queue_server *qs, struct queue_msg *m)
{
	queue_msg_free(qs, m);
}

void
queue_attempt_finished(struct queue_server *qs, struct queue_msg *m,
    uint64_t next_attempt, bool gone)
{
	m->attempt = NULL;
	m->next_attempt = next_attempt;
	qs->attempts--;
	if (gone)
		queue_msg_free(qs, m);
	else
		queue_due_push(&qs->due, m);
	/* A place is free: the next due message need not wait a tick. */
	if (qs->attempts_capped)
		queue_kick(qs);
}

/* "ID.env" -> ID, when the name is one of ours. */
static bool
queue_env_name(const char *name, char id[17])
{
	size_t n = strlen(name);

	if (n != 16 + 4 || strcmp(name + 16, ".env") != 0)
		return false;
	memcpy(id, name, 16);
	id[16] = '\0';
	return queue_id_valid(id);
}

static void
queue_scan(struct queue_server *qs)
{
	struct dirent *de;
	char id[17];
	DIR *d;

	d = opendir(qs->queue_dir);
	if (d == NULL) {
		log_warn("queue: scanning %s", qs->queue_dir);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (queue_env_name(de->d_name, id))
			queue_msg_add(qs, id, 0);
	closedir(d);
}

void
queue_flush_all(struct queue_server *qs)
{
	struct queue_msg *m;

	TAILQ_FOREACH(m, &qs->msgs, entry)
		queue_msg_due_now(qs, m);
	queue_scan(qs);
	queue_kick(qs);
}

static void
queue_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_server *qs = arg;
	char buf[16384] __attribute__((aligned(8)));
	const struct inotify_event *ev;
	char id[17];
	ssize_t n;
	size_t off;

	(void)what;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (off = 0; off + sizeof(*ev) <= (size_t)n;
		    off += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(void *)(buf + off);
			if (ev->mask & IN_Q_OVERFLOW)
				queue_scan(qs);
			else if (ev->len > 0 && queue_env_name(ev->name, id))
				queue_msg_add(qs, id, 0);
		}
	}
}

/* auth= on a route that leaves relay= out is for relay_host: without
 * one, such a route delivers to MX hosts, which get no AUTH. */
static void
queue_warn_unused_auth(const struct tegami_config *cfg,
    const struct queue_routes *routes)
{
	size_t i;

	if (cfg->relay_host != NULL)
		return;
	for (i = 0; i < routes->n; i++)
		if (routes->routes[i].auth != NULL &&
		    routes->routes[i].relay == QUEUE_ROUTE_RELAY_GLOBAL)
			log_warnx("queue: %s:%u: auth= without relay= and no "
			    "relay_host: not used (MX hosts get no AUTH)",
			    routes->name, routes->routes[i].line);
}

/*
 * Reads routes_file and its auth= files into a new table; the old one
 * stays in use until the new one is complete. -1 with err when the file
 * is broken (the stamp is still taken: it is reported once).
 */
static int
queue_load_routes(struct queue_server *qs, char *err, size_t errsize)
{
	const struct queue_routes *old[2] = { qs->routes, qs->routes_start };
	struct queue_routes *routes;
	size_t kept;

	if (queue_routes_load(qs->cfg->routes_file, &routes,
	    &qs->routes_stamp, err, errsize) < 0)
		return -1;
	if (queue_routes_load_credentials(routes, qs->cfg->state_dir,
	    qs->user_uid, old, 2, &kept, err, errsize) < 0) {
		queue_routes_free(&routes);
		return -1;
	}
	if (kept > 0)
		log_info("queue: routes: %zu auth= files cannot be read any "
		    "more (root's, read at start); keeping what was read "
		    "before", kept);
	queue_warn_unused_auth(qs->cfg, routes);
	if (qs->routes_start == NULL)
		qs->routes_start = routes;	/* read as root: kept */
	else if (qs->routes != qs->routes_start)
		queue_routes_free(&qs->routes);
	qs->routes = routes;
	return 0;
}

/* A broken file leaves the routes in use as they are. */
static void
queue_reload_routes(struct queue_server *qs, const char *why)
{
	char err[1024];

	if (queue_load_routes(qs, err, sizeof(err)) < 0) {
		log_warnx("queue: routes %s: %s; keeping the %zu routes in use",
		    why, err, qs->routes != NULL ? qs->routes->n : 0);
		return;
	}
	log_info("queue: routes %s: %zu routes from %s", why, qs->routes->n,
	    qs->cfg->routes_file);
}

/* Starts the attempts of due messages, as many as may be in flight. */
static void
queue_start_due(struct queue_server *qs, uint64_t now)
{
	struct queue_msg *m;

	qs->attempts_capped = false;
	while ((m = queue_due_first(&qs->due)) != NULL &&
	    m->next_attempt <= now) {
		if (qs->attempts >= QUEUE_ATTEMPTS_MAX) {
			qs->attempts_capped = true;
			return;
		}
		queue_attempt_start(qs, m);
	}
}

static void
queue_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_server *qs = arg;
	static uint64_t last_scan;
	uint64_t now = queue_now();

	(void)fd;
	(void)what;
	if (qs->stopping)
		return;
	if (queue_routes_changed(qs->cfg->routes_file, &qs->routes_stamp))
		queue_reload_routes(qs, "changed");
	if (qs->accounts == NULL)
		return;
	if (now - last_scan >= QUEUE_SCAN_SECONDS) {
		last_scan = now;
		queue_scan(qs);
	}
	queue_start_due(qs, now);
}

static void
queue_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_server *qs = arg;

	(void)fd;
	(void)what;
	if (!qs->stopping && qs->accounts != NULL)
		queue_start_due(qs, queue_now());
}

/* ---- The process ------------------------------------------------------- */

static void
queue_accounts_cb(void *arg, struct account_table *table)
{
	struct queue_server *qs = arg;

	accounts_free(&qs->accounts);
	qs->accounts = table;
}

/* "USER PASSWORD" on one line, from relay_auth_file (read as root),
 * refused when others may read it, like a route's auth= file. */
static int
queue_read_relay_auth(struct queue_server *qs, char *err, size_t errsize)
{
	if (qs->cfg->relay_auth_file == NULL)
		return 0;
	return queue_routes_read_credentials(qs->cfg->relay_auth_file,
	    qs->user_uid, &qs->relay_user, &qs->relay_password, err, errsize);
}

static void
queue_set_source(struct queue_server *qs)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&qs->source;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&qs->source;

	memset(&qs->source, 0, sizeof(qs->source));
	qs->source_len = 0;
	if (inet_pton(AF_INET, qs->cfg->listen, &sin->sin_addr) == 1) {
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			return;
		sin->sin_family = AF_INET;
		qs->source_len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, qs->cfg->listen,
	    &sin6->sin6_addr) == 1) {
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			return;
		sin6->sin6_family = AF_INET6;
		qs->source_len = sizeof(*sin6);
	}
}

/* The outbound client context: the system's trust store, plus
 * tls_trust_file when set. */
static SSL_CTX *
queue_tls_ctx(const struct tegami_config *cfg, char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		snprintf(err, errsize, "cannot make a TLS client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1 ||
	    SSL_CTX_dane_enable(ctx) <= 0) {
		snprintf(err, errsize, "cannot load the system trust store");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (cfg->tls_trust_file != NULL &&
	    SSL_CTX_load_verify_locations(ctx, cfg->tls_trust_file,
	    NULL) != 1) {
		snprintf(err, errsize, "tls_trust_file %s: no certificate "
		    "could be read", cfg->tls_trust_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static bool
queue_outbound_tls_ok(const char *s)
{
	return s != NULL && (strcmp(s, "none") == 0 || strcmp(s, "may") == 0 ||
	    strcmp(s, "encrypt") == 0 || strcmp(s, "verify") == 0);
}

static void
queue_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct queue_server *qs = arg;
	struct tegami_config *cfg;
	struct queue_msg *m;
	char err[1024];

	(void)what;
	if (sig == SIGTERM || sig == SIGINT) {
		/* Attempts in flight are abandoned: their recipients stay
		 * pending in the envelope, which is only rewritten after an
		 * attempt, so nothing is lost (a delivery that got its 250 but
		 * was not yet recorded may be repeated: the one duplicate
		 * window SMTP has, RFC 1047). */
		qs->stopping = true;
		TAILQ_FOREACH(m, &qs->msgs, entry)
			if (m->attempt != NULL)
				queue_attempt_cancel(m->attempt);
		/* Idle connections would keep the loop running. */
		queue_conncache_free(&qs->conncache);
		event_base_loopexit(qs->base, NULL);
		return;
	}
	if (sig == SIGUSR1) {
		log_info("queue: flush");
		queue_flush_all(qs);
		return;
	}
	if (config_load(qs->config_path, &cfg, err, sizeof(err)) < 0 ||
	    !queue_outbound_tls_ok(cfg->outbound_tls)) {
		log_warnx("queue: reload: %s; keeping the old settings",
		    err[0] ? err : "bad outbound_tls");
		return;
	}
	config_free(&qs->cfg);
	qs->cfg = cfg;
	queue_set_source(qs);
	log_info("queue: reloaded configuration");
	queue_reload_routes(qs, "reload");
}

void
queue_server_main(const char *config_path, int auth_fd,
    const struct passwd *pw, const sigset_t *oldmask)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	struct queue_server qs;
	struct auth_client *auth;
	struct event *sig_ev[4], *tick, *inotify_ev;
	struct timeval tv = { .tv_sec = QUEUE_TICK_SECONDS };
	char err[1024];
	int ifd;
	size_t i;

	log_set_role("queue");
	signal(SIGPIPE, SIG_IGN);
	memset(&qs, 0, sizeof(qs));
	TAILQ_INIT(&qs.msgs);
	TAILQ_INIT(&qs.waiting);
	qs.config_path = config_path;
	qs.user_uid = pw != NULL ? pw->pw_uid : geteuid();
	err[0] = '\0';
	/* The routes and the credential files are read as root, before
	 * the privileges go; a broken routes file stops the server. */
	if (config_load(config_path, &qs.cfg, err, sizeof(err)) < 0 ||
	    !queue_outbound_tls_ok(qs.cfg->outbound_tls) ||
	    queue_read_relay_auth(&qs, err, sizeof(err)) < 0 ||
	    queue_load_routes(&qs, err, sizeof(err)) < 0) {
		log_warnx("queue: %s", err[0] ? err : "outbound_tls must be "
		    "none, may, encrypt or verify");
		exit(QUEUE_EXIT_CONFIG);
	}
	if (path_join(qs.queue_dir, sizeof(qs.queue_dir), "%s/queue",
	    qs.cfg->state_dir) < 0 ||
	    path_join(qs.incoming_dir, sizeof(qs.incoming_dir),
	    "%s/queue/incoming", qs.cfg->state_dir) < 0 ||
	    path_join(qs.mail_root, sizeof(qs.mail_root), "%s/mail",
	    qs.cfg->state_dir) < 0)
		fatalx("state_dir path too long");
	queue_set_source(&qs);
	qs.tls_ctx = queue_tls_ctx(qs.cfg, err, sizeof(err));
	if (qs.tls_ctx == NULL) {
		log_warnx("queue: %s", err);
		exit(QUEUE_EXIT_CONFIG);
	}
	qs.base = event_base_new();
	if (qs.base == NULL)
		fatalx("event_base_new failed");
	/* Reads resolv.conf and the trust anchor: still with the parent's
	 * rights, like the TLS trust file. */
	qs.dns = dns_resolver_new(qs.base, qs.cfg->resolver,
	    qs.cfg->dns_trust_anchor, err, sizeof(err));
	if (qs.dns == NULL) {
		log_warnx("queue: resolver: %s", err);
		exit(QUEUE_EXIT_CONFIG);
	}
	if (pw != NULL)
		drop_privileges(pw->pw_uid, pw->pw_gid);
	auth = auth_client_new(qs.base, auth_fd, queue_accounts_cb, &qs);
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0 || inotify_add_watch(ifd, qs.queue_dir,
	    IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
		fatal("queue: inotify on %s", qs.queue_dir);
	inotify_ev = event_new(qs.base, ifd, EV_READ | EV_PERSIST,
	    queue_inotify_cb, &qs);
	tick = event_new(qs.base, -1, EV_PERSIST, queue_tick_cb, &qs);
	qs.kick = event_new(qs.base, -1, 0, queue_kick_cb, &qs);
	qs.dir_sync = evtimer_new(qs.base, queue_dir_sync_cb, &qs);
	if (qs.dir_sync == NULL)
		fatalx("evtimer_new failed");
	qs.conncache = queue_conncache_new(qs.base,
	    qs.cfg->outbound_connections,
	    qs.cfg->outbound_connections_per_domain);
	if (qs.kick == NULL)
		fatalx("event_new failed");
	if (inotify_ev == NULL || tick == NULL ||
	    event_add(inotify_ev, NULL) < 0 || event_add(tick, &tv) < 0)
		fatalx("queue: event_add failed");
	for (i = 0; i < 4; i++) {
		sig_ev[i] = evsignal_new(qs.base, sigs[i], queue_signal_cb, &qs);
		if (sig_ev[i] == NULL || evsignal_add(sig_ev[i], NULL) < 0)
			fatalx("queue: evsignal_add failed");
	}
	if (queue_pickup_start(&qs, err, sizeof(err)) < 0 ||
	    queue_control_start(&qs, err, sizeof(err)) < 0) {
		log_warnx("queue: %s", err);
		exit(QUEUE_EXIT_CONFIG);
	}
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	queue_scan(&qs);
	log_info("queue ready: %zu messages waiting, %s, %zu routes",
	    qs.n_msgs, qs.cfg->relay_host != NULL ? "through the relay host" :
	    "direct to MX hosts", qs.routes->n);
	event_base_dispatch(qs.base);

	queue_pickup_stop(&qs);
	queue_control_stop(&qs);
	queue_conncache_free(&qs.conncache);
	queue_dir_sync_flush(&qs);
	event_free(qs.dir_sync);
	qs.dir_sync = NULL;
	for (i = 0; i < 4; i++)
		event_free(sig_ev[i]);
	event_free(tick);
	event_free(qs.kick);
	qs.kick = NULL;
	event_free(inotify_ev);
	close(ifd);
	auth_client_free(&auth);
	dns_resolver_free(&qs.dns);
	while (!TAILQ_EMPTY(&qs.msgs))
		queue_msg_free(&qs, TAILQ_FIRST(&qs.msgs));
	queue_due_free(&qs.due);
	free(qs.by_id);
	SSL_CTX_free(qs.tls_ctx);
	if (qs.routes != qs.routes_start)
		queue_routes_free(&qs.routes);
	queue_routes_free(&qs.routes_start);
	accounts_free(&qs.accounts);
	event_base_free(qs.base);
	config_free(&qs.cfg);
	log_info("queue stopped");
	exit(0);
}
