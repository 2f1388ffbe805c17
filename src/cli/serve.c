/*
 * `tegami serve`: the parent process and the front processes it runs.
 * The parent (root when started as root) prepares the state directory,
 * binds the listening sockets, forks the front workers and restarts any
 * that die; it never reads network input. Each front worker drops to the
 * unprivileged user, then runs the event loop for every session it accepts.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/accounts.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/conn_limit.h"
#include "net/listener.h"
#include "net/tls.h"
#include "smtp/smtp_server.h"
#include "smtp/smtp_session.h"
#include "store/commit.h"

#define SERVE_EXIT_CONFIG 78		/* a worker cannot run: do not retry */
#define SERVE_RESTART_DELAY_SECONDS 1
#define SERVE_KILL_MARGIN_SECONDS 10	/* after shutdown_grace: SIGKILL */
#define FRONT_TLS_RELOADS_MAX 64	/* certificate reloads per worker life */

struct worker {
	pid_t pid;
	time_t started;
	time_t restart_at;	/* 0: running or not scheduled */
};

struct front {
	struct event_base *base;
	/* TLS settings replaced by a reload: an open connection's handshake
	 * may still call into them (SNI), so they live until exit. */
	struct tls_server *retired_tls[FRONT_TLS_RELOADS_MAX];
	size_t n_retired_tls;
	struct smtp_server smtp;
	struct commit_pool *commit;
	struct tegami_config *cfg;
	const char *config_path;
};

/* ---- The front worker -------------------------------------------------- */

static void
front_drop_privileges(const struct passwd *pw)
{
	gid_t gid = pw->pw_gid;

	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		fatal("dropping privileges to %s", pw->pw_name);
	/* STYLE.md rule 11: verify that there is no way back. */
	if (setuid(0) == 0 || seteuid(0) == 0)
		fatalx("privileges could still be regained after dropping");
}

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

/* Reads the settings and the accounts (without password hashes). */
static int
front_load(const char *config_path, struct tegami_config **cfg_r,
    struct account_table **accounts_r, char *err, size_t errsize)
{
	char users[PATH_MAX], aliases[PATH_MAX];

	if (config_load(config_path, cfg_r, err, errsize) < 0)
		return -1;
	if (accounts_paths((*cfg_r)->state_dir, users, aliases) < 0) {
		snprintf(err, errsize, "%s: state_dir path too long",
		    config_path);
		config_free(cfg_r);
		return -1;
	}
	if (accounts_load(users, aliases, false, accounts_r, err,
	    errsize) < 0) {
		config_free(cfg_r);
		return -1;
	}
	return 0;
}

static void
front_idle_cb(void *arg)
{
	struct front *f = arg;

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
	if (f->smtp.tls != NULL)
		f->retired_tls[f->n_retired_tls++] = f->smtp.tls;
	f->smtp.tls = tls;
	log_info("reload: STARTTLS %s", tls != NULL ? "on" : "off");
}

static void
front_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct front *f = arg;
	struct tegami_config *cfg, *old_cfg;
	struct account_table *accounts, *old_accounts;
	char err[1024];

	(void)what;
	if (sig == SIGTERM || sig == SIGINT) {
		log_info("shutting down");
		smtp_server_shutdown(&f->smtp, front_idle_cb, f);
		return;
	}
	/* SIGHUP: settings and accounts; the listeners stay as they are. */
	if (front_load(f->config_path, &cfg, &accounts, err,
	    sizeof(err)) < 0) {
		log_warnx("reload: %s; keeping the old configuration", err);
		return;
	}
	if (strcmp(cfg->listen, f->cfg->listen) != 0 ||
	    cfg->port_base != f->cfg->port_base)
		log_warnx("reload: listen and port_base changes need a "
		    "restart");
	/* Sessions and jobs never keep pointers into these. */
	front_reload_tls(f, cfg);
	smtp_server_reload(&f->smtp, cfg, accounts, &old_cfg, &old_accounts);
	config_free(&old_cfg);
	accounts_free(&old_accounts);
	f->cfg = cfg;
	log_info("reloaded configuration and accounts (%zu users, %zu "
	    "aliases)", accounts->n_accounts, accounts->n_aliases);
}

static void
front_commit_done(struct commit_job *job)
{
	smtp_session_commit_done(job);
}

static void __attribute__((noreturn))
front_main(const char *config_path, unsigned slot, int smtp_fd,
    const struct passwd *pw, const sigset_t *oldmask)
{
	struct front f;
	struct tegami_config *cfg;
	struct account_table *accounts;
	struct event *sig_term, *sig_int, *sig_hup;
	struct tls_server *tls;
	char err[1024], tls_dir[PATH_MAX];
	int no_certificates;

	log_set_role("front");
	conn_limit_set_slot(slot);
	signal(SIGPIPE, SIG_IGN);

	/* Read everything that needs the parent's rights before dropping. */
	if (front_load(config_path, &cfg, &accounts, err, sizeof(err)) < 0) {
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
		front_drop_privileges(pw);
	front_check_access(cfg);

	memset(&f, 0, sizeof(f));
	f.config_path = config_path;
	f.cfg = cfg;
	f.base = event_base_new();
	if (f.base == NULL)
		fatalx("event_base_new failed");
	f.commit = commit_pool_new(f.base, cfg->disk_threads,
	    front_commit_done);
	smtp_server_init(&f.smtp, f.base, cfg, accounts, f.commit, smtp_fd);
	f.smtp.tls = tls;

	sig_term = evsignal_new(f.base, SIGTERM, front_signal_cb, &f);
	sig_int = evsignal_new(f.base, SIGINT, front_signal_cb, &f);
	sig_hup = evsignal_new(f.base, SIGHUP, front_signal_cb, &f);
	if (sig_term == NULL || sig_int == NULL || sig_hup == NULL ||
	    evsignal_add(sig_term, NULL) < 0 || evsignal_add(sig_int, NULL) < 0 ||
	    evsignal_add(sig_hup, NULL) < 0)
		fatalx("evsignal_add failed");
	sigprocmask(SIG_SETMASK, oldmask, NULL);

	log_info("front ready: smtp on %s:%u, %zu users, %zu aliases, "
	    "STARTTLS %s", cfg->listen, config_service_port(cfg, 25),
	    accounts->n_accounts, accounts->n_aliases,
	    tls != NULL ? "on" : "off (no certificate in tls/)");
	event_base_dispatch(f.base);

	commit_pool_free(&f.commit);
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

/* ---- The parent -------------------------------------------------------- */

static int
prepare_dir(const char *path, mode_t mode, const struct passwd *pw)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		log_warn("mkdir %s", path);
		return -1;
	}
	if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0) {
		log_warn("chown %s", path);
		return -1;
	}
	return 0;
}

/*
 * Spool files left in queue/incoming by a crash were never acknowledged
 * (or were already linked into place before their 250): removing them
 * loses nothing.
 */
static void
clean_incoming(const char *dir)
{
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d;
	unsigned n = 0;

	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (path_join(path, sizeof(path), "%s/%s", dir, de->d_name) == 0 &&
		    unlink(path) == 0)
			n++;
	}
	closedir(d);
	if (n > 0)
		log_info("removed %u unfinished spool files from %s", n, dir);
}

static int
prepare_state_dir(const struct tegami_config *cfg, const struct passwd *pw)
{
	char mail[PATH_MAX], queue[PATH_MAX], incoming[PATH_MAX];

	if (path_join(mail, sizeof(mail), "%s/mail", cfg->state_dir) < 0 ||
	    path_join(queue, sizeof(queue), "%s/queue", cfg->state_dir) < 0 ||
	    path_join(incoming, sizeof(incoming), "%s/queue/incoming",
	    cfg->state_dir) < 0) {
		log_warnx("state_dir path too long");
		return -1;
	}
	if (prepare_dir(mail, 0750, pw) < 0 || prepare_dir(queue, 0750, pw) < 0 ||
	    prepare_dir(incoming, 0700, pw) < 0)
		return -1;
	clean_incoming(incoming);
	return 0;
}

static pid_t
spawn_worker(const char *config_path, unsigned slot, int smtp_fd,
    const struct passwd *pw, const sigset_t *oldmask)
{
	pid_t pid;

	conn_limit_clear_slot(slot);
	pid = fork();
	if (pid < 0) {
		log_warn("fork");
		return -1;
	}
	if (pid == 0)
		front_main(config_path, slot, smtp_fd, pw, oldmask);
	return pid;
}

int
cli_serve(struct tegami_config *cfg, int argc, char **argv)
{
	struct worker workers[CONN_LIMIT_SLOTS];
	struct passwd pwbuf, *pw = NULL;
	static char user_name[256];
	sigset_t set, oldmask;
	char err[1024], *config_path;
	unsigned n_workers, i, alive;
	bool stopping = false, failed = false;
	time_t kill_at = 0;
	int smtp_fd, ai;

	for (ai = 1; ai < argc; ai++) {
		if (strcmp(argv[ai], "--verbose") == 0 ||
		    strcmp(argv[ai], "-v") == 0)
			log_set_verbose(1);
		else {
			fprintf(stderr, "usage: tegami [-c CONF] serve "
			    "[--verbose]\n");
			return 2;
		}
	}
	log_set_role("parent");

	if (geteuid() == 0) {
		struct passwd *p = getpwnam(cfg->user);

		if (p == NULL) {
			log_warnx("user \"%s\" (setting \"user\" in %s) does "
			    "not exist; create it with: useradd --system "
			    "--no-create-home --shell /usr/sbin/nologin %s",
			    cfg->user, cfg->path, cfg->user);
			return 1;
		}
		if (p->pw_uid == 0) {
			log_warnx("user \"%s\" is root; tegami needs an "
			    "unprivileged user", cfg->user);
			return 1;
		}
		/* getpwnam's storage is reused by later calls: keep a copy. */
		if (snprintf(user_name, sizeof(user_name), "%s", p->pw_name) >=
		    (int)sizeof(user_name)) {
			log_warnx("user name too long: %s", p->pw_name);
			return 1;
		}
		pwbuf = *p;
		pwbuf.pw_name = user_name;
		pw = &pwbuf;
	}
	config_path = xstrdup(cfg->path);
	if (prepare_state_dir(cfg, pw) < 0) {
		free(config_path);
		return 1;
	}

	smtp_fd = listener_open(cfg->listen, config_service_port(cfg, 25), err,
	    sizeof(err));
	if (smtp_fd < 0) {
		log_warnx("smtp: cannot listen on %s", err);
		free(config_path);
		return 1;
	}
	conn_limit_init();

	n_workers = cfg->workers;
	if (n_workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		n_workers = n > 0 ? (unsigned)n : 1;
	}
	if (n_workers > CONN_LIMIT_SLOTS)
		n_workers = CONN_LIMIT_SLOTS;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &oldmask);

	log_info("starting: state_dir=%s smtp=%s:%u workers=%u user=%s",
	    cfg->state_dir, cfg->listen, config_service_port(cfg, 25),
	    n_workers, pw != NULL ? pw->pw_name : "(not root: unchanged)");
	memset(workers, 0, sizeof(workers));
	for (i = 0; i < n_workers; i++) {
		workers[i].pid = spawn_worker(config_path, i, smtp_fd, pw,
		    &oldmask);
		workers[i].started = time(NULL);
	}

	for (;;) {
		struct timespec ts = { .tv_sec = 1, .tv_nsec = 0 };
		siginfo_t info;
		time_t now;
		int sig, status;
		pid_t pid;

		sig = sigtimedwait(&set, &info, &ts);
		now = time(NULL);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping) {
				log_info("received signal %d: stopping", sig);
				stopping = true;
				kill_at = now + (time_t)cfg->shutdown_grace +
				    SERVE_KILL_MARGIN_SECONDS;
				close(smtp_fd);
				for (i = 0; i < n_workers; i++)
					if (workers[i].pid > 0)
						kill(workers[i].pid, SIGTERM);
			}
		} else if (sig == SIGHUP) {
			struct tegami_config *check;

			if (config_load(config_path, &check, err,
			    sizeof(err)) < 0)
				log_warnx("reload refused: %s", err);
			else {
				config_free(&check);
				log_info("reloading");
				for (i = 0; i < n_workers; i++)
					if (workers[i].pid > 0)
						kill(workers[i].pid, SIGHUP);
			}
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < n_workers; i++) {
				if (workers[i].pid != pid)
					continue;
				workers[i].pid = 0;
				conn_limit_clear_slot(i);
				if (WIFEXITED(status) && WEXITSTATUS(status) ==
				    SERVE_EXIT_CONFIG) {
					log_warnx("front worker %ld cannot run; "
					    "stopping", (long)pid);
					failed = true;
					if (!stopping) {
						stopping = true;
						kill_at = now + (time_t)
						    cfg->shutdown_grace +
						    SERVE_KILL_MARGIN_SECONDS;
						close(smtp_fd);
						for (unsigned j = 0; j < n_workers; j++)
							if (workers[j].pid > 0)
								kill(workers[j].pid,
								    SIGTERM);
					}
				} else if (!stopping) {
					if (WIFSIGNALED(status))
						log_warnx("front worker %ld killed "
						    "by signal %d; restarting",
						    (long)pid, WTERMSIG(status));
					else
						log_warnx("front worker %ld exited "
						    "with status %d; restarting",
						    (long)pid, WEXITSTATUS(status));
					workers[i].restart_at = now +
					    (now - workers[i].started < 2 ?
					    SERVE_RESTART_DELAY_SECONDS : 0);
				}
			}
		}
		alive = 0;
		for (i = 0; i < n_workers; i++) {
			if (!stopping && workers[i].pid == 0 &&
			    workers[i].restart_at != 0 &&
			    now >= workers[i].restart_at) {
				workers[i].restart_at = 0;
				workers[i].started = now;
				workers[i].pid = spawn_worker(config_path, i,
				    smtp_fd, pw, &oldmask);
			}
			if (workers[i].pid > 0)
				alive++;
		}
		if (stopping && alive == 0)
			break;
		if (stopping && now >= kill_at) {
			log_warnx("workers did not stop in time; killing them");
			for (i = 0; i < n_workers; i++)
				if (workers[i].pid > 0)
					kill(workers[i].pid, SIGKILL);
			kill_at = now + SERVE_KILL_MARGIN_SECONDS;
		}
	}
	log_info("stopped");
	free(config_path);
	return failed ? 1 : 0;
}
