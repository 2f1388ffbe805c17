/*
 * A front worker (front.h): reads its settings and TLS keys while it still
 * has the parent's rights, drops them, then runs the event loop for every
 * session it accepts. The accounts come from the auth process, without
 * password hashes, and are replaced whenever that process sends new ones.
 */
#include "cli/front.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/accounts.h"
#include "auth/auth_client.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/conn_limit.h"
#include "net/tls.h"
#include "pop3/pop3_server.h"
#include "smtp/smtp_session.h"
#include "store/commit.h"

#define FRONT_TLS_RELOADS_MAX 64	/* certificate reloads per worker life */

struct front {
	struct event_base *base;
	/* TLS settings replaced by a reload: an open connection's handshake
	 * may still call into them (SNI), so they live until exit. */
	struct tls_server *retired_tls[FRONT_TLS_RELOADS_MAX];
	size_t n_retired_tls;
	struct smtp_server smtp;
	struct pop3_server pop3;
	unsigned services_idle;	/* of smtp and pop3, once shutting down */
	struct commit_pool *commit;
	struct auth_client *auth;
	const struct front_sockets *socks;
	const char *config_path;
	bool listening;
};

static void
front_check_access(const struct tegami_config *cfg)
{
	static const char *const dirs[] = { "mail", "queue", "queue/incoming" };
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (path_join(path, sizeof(path), "%s/%s", cfg->state_dir,
		    dirs[i]) < 0 || access(path, W_OK | X_OK) < 0) {
			log_warn("cannot write %s as user %s (check the "
			    "owner of that directory and that every parent "
			    "directory is searchable)", path, cfg->user);
			exit(SERVE_EXIT_CONFIG);
		}
	}
}

const char *
front_service_name(int service)
{
	if (service >= FRONT_POP3_FIRST)
		return pop3_service_name((enum pop3_service)(service -
		    FRONT_POP3_FIRST));
	return smtp_service_name((enum smtp_service)service);
}

unsigned
front_service_standard_port(int service)
{
	static const unsigned standard[FRONT_SERVICES] = {
		[SMTP_SERVICE_MX] = 25,
		[SMTP_SERVICE_SUBMISSION] = 587,
		[SMTP_SERVICE_SUBMISSIONS] = 465,
		[FRONT_POP3_FIRST + POP3_SERVICE_POP3] = 110,
		[FRONT_POP3_FIRST + POP3_SERVICE_POP3S] = 995,
	};

	return service >= 0 && service < FRONT_SERVICES ? standard[service] : 0;
}

bool
front_service_implicit_tls(int service)
{
	return service == SMTP_SERVICE_SUBMISSIONS ||
	    service == FRONT_POP3_FIRST + POP3_SERVICE_POP3S;
}

/* SMTP and POP3 each call this once when their last session is gone. */
static void
front_idle_cb(void *arg)
{
	struct front *f = arg;

	if (++f->services_idle == 2)
		event_base_loopexit(f->base, NULL);
}

/*
 * New certificates on SIGHUP. The front runs unprivileged, so this works
 * when the keys in tls/ are readable by its group (`tegami ca` makes them
 * so); otherwise the old certificates stay and a restart is needed.
 */
static void
front_reload_tls(struct front *f, const struct tegami_config *cfg)
{
	struct tls_server *tls;
	char tls_dir[PATH_MAX], err[1024];
	int none;

	if (f->n_retired_tls == FRONT_TLS_RELOADS_MAX) {
		log_warnx("reload: certificates reloaded too often; restart "
		    "tegami to load new ones");
		return;
	}
	if (path_join(tls_dir, sizeof(tls_dir), "%s/tls", cfg->state_dir) < 0)
		return;
	tls = tls_server_load(tls_dir, cfg->hostname, &none, err, sizeof(err));
	if (tls == NULL && !none) {
		log_warnx("reload: %s; keeping the old certificates", err);
		return;
	}
	if (tls == NULL && (f->socks->listen_fds[SMTP_SERVICE_SUBMISSIONS] >= 0 ||
	    f->socks->listen_fds[FRONT_POP3_FIRST + POP3_SERVICE_POP3S] >= 0)) {
		log_warnx("reload: ports 465 and 995 need a certificate; "
		    "keeping the old certificates");
		return;
	}
	if (f->smtp.tls != NULL)
		f->retired_tls[f->n_retired_tls++] = f->smtp.tls;
	f->smtp.tls = tls;
	f->pop3.tls = tls;
	log_info("reload: TLS %s", tls != NULL ? "on" : "off");
}

static void
front_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct front *f = arg;
	struct tegami_config *cfg, *old_cfg;
	char err[1024];

	(void)what;
	if (sig == SIGTERM || sig == SIGINT) {
		log_info("shutting down");
		smtp_server_shutdown(&f->smtp, front_idle_cb, f);
		pop3_server_shutdown(&f->pop3, front_idle_cb, f);
		return;
	}
	/* SIGHUP: settings and certificates; the listeners stay as they are,
	 * and the accounts come from the auth process. */
	if (config_load(f->config_path, &cfg, err, sizeof(err)) < 0) {
		log_warnx("reload: %s; keeping the old configuration", err);
		return;
	}
	if (strcmp(cfg->listen, f->smtp.cfg->listen) != 0 ||
	    cfg->port_base != f->smtp.cfg->port_base)
		log_warnx("reload: listen and port_base changes need a "
		    "restart");
	front_reload_tls(f, cfg);
	/* Sessions and jobs never keep pointers into the settings. */
	smtp_server_reload(&f->smtp, cfg, &old_cfg);
	f->pop3.cfg = cfg;
	config_free(&old_cfg);
	log_info("reloaded configuration");
}

static void
front_listen(struct front *f)
{
	const struct tegami_config *cfg = f->smtp.cfg;
	char ports[256];
	size_t used = 0;
	int i;

	for (i = 0; i < FRONT_SERVICES; i++) {
		int n;

		if (f->socks->listen_fds[i] < 0)
			continue;
		if (i >= FRONT_POP3_FIRST)
			pop3_server_listen(&f->pop3, f->socks->listen_fds[i],
			    (enum pop3_service)(i - FRONT_POP3_FIRST));
		else
			smtp_server_listen(&f->smtp, f->socks->listen_fds[i],
			    (enum smtp_service)i);
		n = snprintf(ports + used, sizeof(ports) - used, "%s%s %u",
		    used ? ", " : "", front_service_name(i),
		    config_service_port(cfg, front_service_standard_port(i)));
		if (n > 0 && (size_t)n < sizeof(ports) - used)
			used += (size_t)n;
	}
	f->listening = true;
	log_info("front ready: %s on %s, %zu users, %zu aliases, TLS %s",
	    ports, cfg->listen, f->smtp.accounts->n_accounts,
	    f->smtp.accounts->n_aliases, f->smtp.tls != NULL ? "on" :
	    "off (no certificate in tls/)");
}

/* A new account list from the auth process. */
static void
front_accounts_cb(void *arg, struct account_table *table)
{
	struct front *f = arg;
	struct account_table *old;

	smtp_server_set_accounts(&f->smtp, table, &old);
	accounts_free(&old);
	if (!f->listening) {
		if (!f->smtp.shutting_down)
			front_listen(f);
	} else
		log_info("accounts updated: %zu users, %zu aliases",
		    table->n_accounts, table->n_aliases);
}

static void
front_commit_done(struct commit_job *job)
{
	smtp_session_commit_done(job);
}

void
front_main(const char *config_path, unsigned slot,
    const struct front_sockets *socks, const struct passwd *pw,
    const sigset_t *oldmask)
{
	struct front f;
	struct tegami_config *cfg;
	struct account_table *none_yet;
	struct event *sig_term, *sig_int, *sig_hup;
	struct tls_server *tls;
	char err[1024], tls_dir[PATH_MAX];
	int no_certificates;

	log_set_role("front");
	conn_limit_set_slot(slot);
	signal(SIGPIPE, SIG_IGN);

	/* Read everything that needs the parent's rights before dropping. */
	if (config_load(config_path, &cfg, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		exit(SERVE_EXIT_CONFIG);
	}
	/* The TLS keys are readable by root only: load them first. */
	if (path_join(tls_dir, sizeof(tls_dir), "%s/tls", cfg->state_dir) < 0)
		fatalx("state_dir path too long");
	tls = tls_server_load(tls_dir, cfg->hostname, &no_certificates, err,
	    sizeof(err));
	if (tls == NULL && !no_certificates) {
		log_warnx("%s", err);
		exit(SERVE_EXIT_CONFIG);
	}
	if (pw != NULL)
		drop_privileges(pw->pw_uid, pw->pw_gid);
	front_check_access(cfg);

	memset(&f, 0, sizeof(f));
	f.config_path = config_path;
	f.socks = socks;
	f.base = event_base_new();
	if (f.base == NULL)
		fatalx("event_base_new failed");
	/*
	 * One malloc arena for the disk threads and the loop: a POP3
	 * listing made on a disk thread is freed by the loop, and with an
	 * arena per thread each thread's arena would keep the memory of the
	 * biggest mailbox it listed (measured: 14 MB instead of 8 MB after
	 * two logins to 100,000 messages). The threads allocate little.
	 */
	mallopt(M_ARENA_MAX, 1);
	f.commit = commit_pool_new(f.base, cfg->disk_threads,
	    front_commit_done);
	/* No connection is accepted before the first account list. */
	if (accounts_parse(NULL, NULL, 0, NULL, NULL, 0, false, &none_yet, err,
	    sizeof(err)) < 0)
		fatalx("%s", err);
	smtp_server_init(&f.smtp, f.base, cfg, none_yet, f.commit);
	f.smtp.tls = tls;
	pop3_server_init(&f.pop3, f.base, cfg, f.commit);
	f.pop3.tls = tls;
	f.auth = auth_client_new(f.base, socks->auth_fd, front_accounts_cb,
	    &f);
	f.smtp.auth = f.auth;
	f.pop3.auth = f.auth;

	sig_term = evsignal_new(f.base, SIGTERM, front_signal_cb, &f);
	sig_int = evsignal_new(f.base, SIGINT, front_signal_cb, &f);
	sig_hup = evsignal_new(f.base, SIGHUP, front_signal_cb, &f);
	if (sig_term == NULL || sig_int == NULL || sig_hup == NULL ||
	    evsignal_add(sig_term, NULL) < 0 || evsignal_add(sig_int, NULL) < 0 ||
	    evsignal_add(sig_hup, NULL) < 0)
		fatalx("evsignal_add failed");
	sigprocmask(SIG_SETMASK, oldmask, NULL);

	event_base_dispatch(f.base);

	commit_pool_free(&f.commit);
	auth_client_free(&f.auth);
	tls_server_free(&f.smtp.tls);
	while (f.n_retired_tls > 0)
		tls_server_free(&f.retired_tls[--f.n_retired_tls]);
	event_free(sig_term);
	event_free(sig_int);
	event_free(sig_hup);
	event_base_free(f.base);
	accounts_free(&f.smtp.accounts);
	config_free(&f.smtp.cfg);
	log_info("front stopped");
	exit(0);
}
