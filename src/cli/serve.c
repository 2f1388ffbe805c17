/*
 * `tegami serve`: the parent process. When started as root it prepares the
 * state directory, binds the listening sockets (smtp 25, submission 587,
 * submissions 465), forks the auth process, the queue process and the
 * front workers (front.c), and restarts any child that dies; it never reads network
 * input. The children talk over socketpairs the parent keeps open, so a
 * restarted child finds its end of the conversation again.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/accounts.h"
#include "auth/auth_server.h"
#include "cli/cli.h"
#include "cli/front.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/conn_limit.h"
#include "net/listener.h"
#include "net/tls.h"
#include "net/tls_tickets.h"
#include "queue/queue_server.h"

#define SERVE_RESTART_DELAY_SECONDS 1
#define SERVE_KILL_MARGIN_SECONDS 10	/* after shutdown_grace: SIGKILL */
#define SERVE_USERS_MODE 0640		/* root:auth_user's group */

struct child {
	pid_t pid;
	time_t started;
	time_t restart_at;	/* 0: running or not scheduled */
};

/* What the parent holds for its children. */
struct serve {
	const char *config_path;
	const struct tegami_config *cfg;
	const struct passwd *front_pw, *auth_pw;	/* NULL: not root */
	sigset_t oldmask;
	int listen_fds[FRONT_SERVICES];
	/* Per front slot, and one more for the queue process: [0] the
	 * client's end, [1] the auth process's. */
	int auth_pairs[CONN_LIMIT_SLOTS + 1][2];
	unsigned n_workers;
	struct child workers[CONN_LIMIT_SLOTS];
	struct child auth, queue;
	bool stopping, failed;
	time_t kill_at;
};

/* ---- Preparing the state directory ----------------------------------- */

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
	char mail[PATH_MAX], queue[PATH_MAX], incoming[PATH_MAX], run[PATH_MAX];

	/* run/ holds the queue process's sockets: sendmail's pickup, which
	 * every local user may reach, and the control socket. */
	if (path_join(run, sizeof(run), "%s/run", cfg->state_dir) < 0 ||
	    prepare_dir(run, 0755, pw) < 0)
		return -1;
	/* Not narrowed by the umask, nor left narrow from before: every
	 * local user's sendmail must reach the pickup socket. */
	if (chmod(run, 0755) < 0) {
		log_warn("chmod %s", run);
		return -1;
	}
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

static void
serve_close_all_but(struct serve *sv, int keep_a, int keep_b)
{
	unsigned i;
	int k;

	for (i = 0; i <= sv->n_workers; i++)
		for (k = 0; k < 2; k++)
			if (sv->auth_pairs[i][k] != keep_a &&
			    sv->auth_pairs[i][k] != keep_b)
				close(sv->auth_pairs[i][k]);
}

static pid_t
spawn_worker(struct serve *sv, unsigned slot)
{
	struct front_sockets socks;
	pid_t pid;
	int i;

	conn_limit_clear_slot(slot);
	pid = fork();
	if (pid < 0) {
		log_warn("fork");
		return -1;
	}
	if (pid > 0)
		return pid;
	for (i = 0; i < FRONT_SERVICES; i++)
		socks.listen_fds[i] = sv->listen_fds[i];
	socks.auth_fd = sv->auth_pairs[slot][0];
	serve_close_all_but(sv, socks.auth_fd, -1);
	front_main(sv->config_path, slot, &socks, sv->front_pw, &sv->oldmask);
}

static pid_t
spawn_queue(struct serve *sv)
{
	int i, fd = sv->auth_pairs[sv->n_workers][0];
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		log_warn("fork");
		return -1;
	}
	if (pid > 0)
		return pid;
	for (i = 0; i < FRONT_SERVICES; i++)
		if (sv->listen_fds[i] >= 0)
			close(sv->listen_fds[i]);
	serve_close_all_but(sv, fd, -1);
	queue_server_main(sv->config_path, fd, sv->front_pw, &sv->oldmask);
}

static pid_t
spawn_auth(struct serve *sv)
{
	int fds[CONN_LIMIT_SLOTS + 1];
	unsigned i;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		log_warn("fork");
		return -1;
	}
	if (pid > 0)
		return pid;
	for (i = 0; i < FRONT_SERVICES; i++)
		if (sv->listen_fds[i] >= 0)
			close(sv->listen_fds[i]);
	for (i = 0; i <= sv->n_workers; i++) {
		fds[i] = sv->auth_pairs[i][1];
		close(sv->auth_pairs[i][0]);
	}
	auth_server_main(sv->config_path, fds, sv->n_workers + 1,
	    sv->auth_pw != NULL ? sv->auth_pw->pw_uid : (uid_t)-1,
	    sv->auth_pw != NULL ? sv->auth_pw->pw_gid : (gid_t)-1);
}

/* getpwnam for a server account: must exist and not be root. */
static int
lookup_account(const char *name, const char *setting, const char *conf,
    struct passwd *out, char *name_buf, size_t name_size)
{
	struct passwd *p = getpwnam(name);

	if (p == NULL) {
		log_warnx("user \"%s\" (setting \"%s\" in %s) does not exist; "
		    "create it with: useradd --system --no-create-home --shell "
		    "/usr/sbin/nologin %s", name, setting, conf, name);
		return -1;
	}
	if (p->pw_uid == 0) {
		log_warnx("user \"%s\" (setting \"%s\") is root; tegami "
		    "needs an unprivileged user", name, setting);
		return -1;
	}
	/* getpwnam's storage is reused by later calls: keep a copy. */
	if (snprintf(name_buf, name_size, "%s", p->pw_name) >= (int)name_size) {
		log_warnx("user name too long: %s", p->pw_name);
		return -1;
	}
	*out = *p;
	out->pw_name = name_buf;
	return 0;
}

/*
 * The users file holds the password hashes: only root and the auth
 * process may read it, never the front workers.
 */
static int
protect_users_file(const struct tegami_config *cfg, const struct passwd *auth_pw)
{
	char users[PATH_MAX], aliases[PATH_MAX];

	if (accounts_paths(cfg->state_dir, users, aliases) < 0)
		return -1;
	if (chown(users, 0, auth_pw->pw_gid) < 0 && errno != ENOENT) {
		log_warn("chown %s", users);
		return -1;
	}
	if (chmod(users, SERVE_USERS_MODE) < 0 && errno != ENOENT) {
		log_warn("chmod %s", users);
		return -1;
	}
	return 0;
}

/* Port 465 is TLS only: it listens when tls/ holds a certificate. */
static bool
serve_have_certificate(const struct tegami_config *cfg)
{
	struct tls_server *tls;
	char tls_dir[PATH_MAX], err[1024];
	int none;

	if (path_join(tls_dir, sizeof(tls_dir), "%s/tls", cfg->state_dir) < 0)
		return false;
	tls = tls_server_load(tls_dir, cfg->hostname, &none, err, sizeof(err));
	if (tls == NULL)
		return false;	/* none, or broken: the fronts will say */
	tls_server_free(&tls);
	return true;
}

static int
serve_open_listeners(struct serve *sv)
{
	bool have_certificate = serve_have_certificate(sv->cfg);
	char err[1024];
	int i;

	for (i = 0; i < FRONT_SERVICES; i++)
		sv->listen_fds[i] = -1;
	for (i = 0; i < FRONT_SERVICES; i++) {
		unsigned port = config_service_port(sv->cfg,
		    front_service_standard_port(i));

		if (front_service_implicit_tls(i) && !have_certificate) {
			log_warnx("%s (port %u) is off: no certificate in "
			    "%s/tls", front_service_name(i), port,
			    sv->cfg->state_dir);
			continue;
		}
		sv->listen_fds[i] = listener_open(sv->cfg->listen, port, err,
		    sizeof(err));
		if (sv->listen_fds[i] < 0) {
			log_warnx("%s: cannot listen on %s",
			    front_service_name(i), err);
			return -1;
		}
	}
	return 0;
}

static void
serve_close_listeners(struct serve *sv)
{
	int i;

	for (i = 0; i < FRONT_SERVICES; i++)
		if (sv->listen_fds[i] >= 0) {
			close(sv->listen_fds[i]);
			sv->listen_fds[i] = -1;
		}
}

static void
serve_stop(struct serve *sv, time_t now)
{
	unsigned i;

	if (sv->stopping)
		return;
	sv->stopping = true;
	sv->kill_at = now + (time_t)sv->cfg->shutdown_grace +
	    SERVE_KILL_MARGIN_SECONDS;
	serve_close_listeners(sv);
	for (i = 0; i < sv->n_workers; i++)
		if (sv->workers[i].pid > 0)
			kill(sv->workers[i].pid, SIGTERM);
	if (sv->queue.pid > 0)
		kill(sv->queue.pid, SIGTERM);
	/* The auth process stops last: sessions that finish meanwhile may
	 * still need it. */
}

/* A child exited: restart it, or stop everything if it cannot run. */
static void
serve_child_exited(struct serve *sv, struct child *c, const char *what,
    int status, time_t now)
{
	c->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == SERVE_EXIT_CONFIG) {
		log_warnx("%s cannot run; stopping", what);
		sv->failed = true;
		serve_stop(sv, now);
		return;
	}
	if (sv->stopping)
		return;
	if (WIFSIGNALED(status))
		log_warnx("%s killed by signal %d; restarting", what,
		    WTERMSIG(status));
	else
		log_warnx("%s exited with status %d; restarting", what,
		    WEXITSTATUS(status));
	c->restart_at = now + (now - c->started < 2 ?
	    SERVE_RESTART_DELAY_SECONDS : 0);
}

static void
serve_reap(struct serve *sv, time_t now)
{
	unsigned i;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == sv->auth.pid) {
			serve_child_exited(sv, &sv->auth, "auth process",
			    status, now);
			continue;
		}
		if (pid == sv->queue.pid) {
			serve_child_exited(sv, &sv->queue, "queue process",
			    status, now);
			continue;
		}
		for (i = 0; i < sv->n_workers; i++)
			if (sv->workers[i].pid == pid) {
				conn_limit_clear_slot(i);
				serve_child_exited(sv, &sv->workers[i],
				    "front worker", status, now);
			}
	}
}

static bool
serve_due(const struct child *c, time_t now)
{
	return c->pid == 0 && c->restart_at != 0 && now >= c->restart_at;
}

/* Restarts what is due; returns the number of fronts alive. */
static unsigned
serve_restart(struct serve *sv, time_t now)
{
	unsigned i, alive = 0;

	if (!sv->stopping && serve_due(&sv->auth, now)) {
		sv->auth.restart_at = 0;
		sv->auth.started = now;
		sv->auth.pid = spawn_auth(sv);
	}
	if (!sv->stopping && serve_due(&sv->queue, now)) {
		sv->queue.restart_at = 0;
		sv->queue.started = now;
		sv->queue.pid = spawn_queue(sv);
	}
	for (i = 0; i < sv->n_workers; i++) {
		struct child *w = &sv->workers[i];

		if (!sv->stopping && serve_due(w, now)) {
			w->restart_at = 0;
			w->started = now;
			w->pid = spawn_worker(sv, i);
		}
		if (w->pid > 0)
			alive++;
	}
	if (sv->queue.pid > 0)
		alive++;
	return alive;
}

static void
serve_signal_all(struct serve *sv, int sig)
{
	unsigned i;

	if (sv->auth.pid > 0)
		kill(sv->auth.pid, sig);
	if (sv->queue.pid > 0)
		kill(sv->queue.pid, sig);
	for (i = 0; i < sv->n_workers; i++)
		if (sv->workers[i].pid > 0)
			kill(sv->workers[i].pid, sig);
}

static void
serve_reload(struct serve *sv)
{
	struct tegami_config *check;
	char err[1024];

	if (config_load(sv->config_path, &check, err, sizeof(err)) < 0) {
		log_warnx("reload refused: %s", err);
		return;
	}
	config_free(&check);
	log_info("reloading");
	serve_signal_all(sv, SIGHUP);
}

static int
serve_setup(struct serve *sv, struct tegami_config *cfg, struct passwd *front,
    struct passwd *auth)
{
	static char front_name[256], auth_name[256];
	unsigned i;

	if (geteuid() == 0) {
		if (lookup_account(cfg->user, "user", cfg->path, front,
		    front_name, sizeof(front_name)) < 0 ||
		    lookup_account(cfg->auth_user, "auth_user", cfg->path, auth,
		    auth_name, sizeof(auth_name)) < 0)
			return -1;
		if (front->pw_uid == auth->pw_uid) {
			log_warnx("settings \"user\" and \"auth_user\" must be "
			    "different accounts: the front workers must not "
			    "read the password hashes");
			return -1;
		}
		sv->front_pw = front;
		sv->auth_pw = auth;
		if (protect_users_file(cfg, auth) < 0)
			return -1;
	}
	if (prepare_state_dir(cfg, sv->front_pw) < 0 ||
	    serve_open_listeners(sv) < 0)
		return -1;
	sv->n_workers = cfg->workers;
	if (sv->n_workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		sv->n_workers = n > 0 ? (unsigned)n : 1;
	}
	if (sv->n_workers > CONN_LIMIT_SLOTS)
		sv->n_workers = CONN_LIMIT_SLOTS;
	for (i = 0; i <= sv->n_workers; i++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv->auth_pairs[i]) < 0) {
			log_warn("socketpair");
			return -1;
		}
	return 0;
}

int
cli_serve(struct tegami_config *cfg, int argc, char **argv)
{
	struct serve sv;
	struct passwd front_pw, auth_pw;
	sigset_t set;
	unsigned i, alive;
	int ai;

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
	memset(&sv, 0, sizeof(sv));
	sv.cfg = cfg;
	sv.config_path = xstrdup(cfg->path);
	if (serve_setup(&sv, cfg, &front_pw, &auth_pw) < 0) {
		serve_close_listeners(&sv);
		free((char *)sv.config_path);
		return 1;
	}
	conn_limit_init();
	/* One ticket secret for all workers: resumption works on any. */
	tls_tickets_init();

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &sv.oldmask);

	log_info("starting: state_dir=%s listen=%s port_base=%u workers=%u "
	    "user=%s auth_user=%s", cfg->state_dir, cfg->listen,
	    cfg->port_base, sv.n_workers, sv.front_pw != NULL ?
	    sv.front_pw->pw_name : "(not root: unchanged)", sv.auth_pw != NULL ?
	    sv.auth_pw->pw_name : "(not root: unchanged)");
	sv.auth.started = time(NULL);
	sv.auth.pid = spawn_auth(&sv);
	sv.queue.started = time(NULL);
	sv.queue.pid = spawn_queue(&sv);
	for (i = 0; i < sv.n_workers; i++) {
		sv.workers[i].pid = spawn_worker(&sv, i);
		sv.workers[i].started = time(NULL);
	}

	for (;;) {
		struct timespec ts = { .tv_sec = 1, .tv_nsec = 0 };
		siginfo_t info;
		time_t now;
		int sig;

		sig = sigtimedwait(&set, &info, &ts);
		now = time(NULL);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!sv.stopping)
				log_info("received signal %d: stopping", sig);
			serve_stop(&sv, now);
		} else if (sig == SIGHUP)
			serve_reload(&sv);
		serve_reap(&sv, now);
		alive = serve_restart(&sv, now);
		if (sv.stopping && alive == 0) {
			if (sv.auth.pid <= 0)
				break;
			kill(sv.auth.pid, SIGTERM);
		}
		if (sv.stopping && now >= sv.kill_at) {
			log_warnx("children did not stop in time; killing them");
			serve_signal_all(&sv, SIGKILL);
			sv.kill_at = now + SERVE_KILL_MARGIN_SECONDS;
		}
	}
	log_info("stopped");
	free((char *)sv.config_path);
	return sv.failed ? 1 : 0;
}
