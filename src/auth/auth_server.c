/*
 * The auth process (auth_server.h). One event loop reads the fronts'
 * requests; password hashes are checked by a few threads, because one
 * yescrypt check takes tens of milliseconds on purpose and the loop must
 * go on answering meanwhile. The throttle (throttle.c) is consulted before
 * a check and told its outcome after.
 */
#include "auth/auth_server.h"

#include <ctype.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "auth/accounts.h"
#include "auth/auth_proto.h"
#include "auth/throttle.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"

#define AUTH_EXIT_CONFIG 78
#define AUTH_THREADS_MAX 8
#define AUTH_JOBS_MAX 1024		/* checks queued or running */
#define AUTH_FILE_MAX (512ULL * 1024 * 1024)	/* users or aliases file */
#define AUTH_WATCH_SECONDS 1		/* how often the files are stat'ed */
#define AUTH_THROTTLE_ENTRIES 100000
#define AUTH_KNOWN_PAIR_MS (30ULL * 24 * 3600 * 1000)

struct auth_record {
	struct auth_record *next;
	uint32_t type;
	size_t len;
	unsigned char data[];
};

struct auth_peer {
	int fd;
	struct event *read_ev, *write_ev;
	struct auth_record *out_head, *out_tail;
};

/* A password check, from request to reply. */
struct auth_job {
	struct auth_job *next;
	size_t peer;
	uint64_t id;
	char service[AUTH_SERVICE_MAX + 1];
	char ip[AUTH_IP_MAX + 1];
	char ip_key[THROTTLE_KEY_MAX];
	char user[SASL_NAME_MAX + 1];		/* lowercased */
	char password[ACCOUNTS_PASSWORD_MAX + 1];
	char *hash;		/* the account's, or the dummy one */
	const char *reason;	/* why it fails whatever the password */
	bool matched;		/* set by the thread */
};

struct file_stamp {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct auth_server {
	struct event_base *base;
	const char *config_path;
	struct tegami_config *cfg;
	char users_path[PATH_MAX], aliases_path[PATH_MAX];
	struct file_stamp users_stamp, aliases_stamp;
	struct account_table *accounts;
	char *list;			/* public users text + aliases text */
	size_t list_users_len, list_len;
	uint64_t generation;
	struct throttle *throttle;
	char dummy_hash[ACCOUNT_HASH_MAX];

	struct auth_peer *peers;
	size_t n_peers;
	struct event *watch_timer;

	/* The thread pool: jobs in, finished jobs out through a pipe. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct auth_job *todo_head, *todo_tail, *done_head;
	size_t n_jobs;
	bool stopping;
	int done_pipe[2];
	struct event *done_ev;
	pthread_t threads[AUTH_THREADS_MAX];
	size_t n_threads;
};

/* ---- Output to the fronts ---------------------------------------------- */

static void
auth_peer_flush(struct auth_peer *p)
{
	struct auth_record *r;
	ssize_t n;

	while ((r = p->out_head) != NULL) {
		n = send(p->fd, r->data, r->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ENOBUFS)) {
			event_add(p->write_ev, NULL);
			return;
		}
		if (n < 0)
			log_warn("auth: sending to a front");
		p->out_head = r->next;
		if (p->out_head == NULL)
			p->out_tail = NULL;
		explicit_bzero(r->data, r->len);
		free(r);
	}
}

static void
auth_peer_send(struct auth_peer *p, uint32_t type, const void *data,
    size_t len)
{
	struct auth_record *r = xmalloc(sizeof(*r) + len);
	bool idle = p->out_head == NULL;

	r->next = NULL;
	r->type = type;
	r->len = len;
	memcpy(r->data, data, len);
	if (p->out_tail != NULL)
		p->out_tail->next = r;
	else
		p->out_head = r;
	p->out_tail = r;
	if (idle)
		auth_peer_flush(p);
}

static void
auth_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	auth_peer_flush(arg);
}

/* Drops queued records of an older account list: a newer one follows. */
static void
auth_peer_drop_lists(struct auth_peer *p)
{
	struct auth_record **rp = &p->out_head, *r;

	p->out_tail = NULL;
	while ((r = *rp) != NULL) {
		if (r->type == AUTH_MSG_ACCOUNTS) {
			*rp = r->next;
			free(r);
			continue;
		}
		p->out_tail = r;
		rp = &r->next;
	}
}

static void
auth_send_list(struct auth_server *as, struct auth_peer *p)
{
	struct auth_accounts *a = xcalloc(1, sizeof(*a));
	size_t off = 0, n;

	auth_peer_drop_lists(p);
	do {
		n = as->list_len - off;
		if (n > AUTH_CHUNK_MAX)
			n = AUTH_CHUNK_MAX;
		a->type = AUTH_MSG_ACCOUNTS;
		a->data_len = (uint32_t)n;
		a->generation = as->generation;
		a->users_len = as->list_users_len;
		a->aliases_len = as->list_len - as->list_users_len;
		a->offset = off;
		memcpy(a->data, as->list + off, n);
		auth_peer_send(p, AUTH_MSG_ACCOUNTS, a,
		    offsetof(struct auth_accounts, data) + n);
		off += n;
	} while (off < as->list_len);
	free(a);
}

static void
auth_reply(struct auth_server *as, size_t peer, uint64_t id,
    enum auth_result_code code, unsigned delay_ms, const char *account)
{
	struct auth_result r;

	memset(&r, 0, sizeof(r));
	r.type = AUTH_MSG_RESULT;
	r.code = code;
	r.id = id;
	r.delay_ms = delay_ms;
	if (account != NULL)
		snprintf(r.account, sizeof(r.account), "%s", account);
	auth_peer_send(&as->peers[peer], AUTH_MSG_RESULT, &r, sizeof(r));
}

/* ---- The accounts ------------------------------------------------------ */

static int
read_text_file(const char *path, char **text_r, size_t *len_r,
    struct file_stamp *stamp, char *err, size_t errsize)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t n;
	int fd;

	*text_r = NULL;
	*len_r = 0;
	memset(stamp, 0, sizeof(*stamp));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return 0;	/* a missing file is an empty one */
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > AUTH_FILE_MAX) {
		snprintf(err, errsize, "%s: not a regular file of at most "
		    "512 MiB", path);
		close(fd);
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* shrunk meanwhile: the next stat sees it */
		len += (size_t)n;
	}
	close(fd);
	stamp->exists = true;
	stamp->dev = st.st_dev;
	stamp->ino = st.st_ino;
	stamp->size = st.st_size;
	stamp->mtime = st.st_mtim;
	stamp->ctime = st.st_ctim;
	*text_r = buf;
	*len_r = len;
	return 0;
}

static bool
file_changed(const char *path, const struct file_stamp *old)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return old->exists;
	return !old->exists || st.st_dev != old->dev || st.st_ino != old->ino ||
	    st.st_size != old->size ||
	    st.st_mtim.tv_sec != old->mtime.tv_sec ||
	    st.st_mtim.tv_nsec != old->mtime.tv_nsec ||
	    st.st_ctim.tv_sec != old->ctime.tv_sec ||
	    st.st_ctim.tv_nsec != old->ctime.tv_nsec;
}

/*
 * Reads both files and makes the list for the fronts. On error the old
 * accounts stay (and at start the process exits).
 */
static int
auth_load_accounts(struct auth_server *as, char *err, size_t errsize)
{
	struct account_table *table = NULL;
	struct file_stamp us, als;
	char *users = NULL, *aliases = NULL, *pub = NULL;
	size_t users_len, aliases_len, pub_len;
	int rc = -1;

	if (read_text_file(as->users_path, &users, &users_len, &us, err,
	    errsize) < 0 ||
	    read_text_file(as->aliases_path, &aliases, &aliases_len, &als, err,
	    errsize) < 0)
		goto done;
	/* Stamps first: a change while we parse is seen by the next stat. */
	as->users_stamp = us;
	as->aliases_stamp = als;
	if (accounts_parse(as->users_path, users, users_len, as->aliases_path,
	    aliases, aliases_len, true, &table, err, errsize) < 0)
		goto done;
	if (accounts_public_text(table, &pub, &pub_len) < 0) {
		snprintf(err, errsize, "out of memory for the account list");
		goto done;
	}
	free(as->list);
	as->list = xmalloc(pub_len + aliases_len + 1);
	memcpy(as->list, pub, pub_len);
	if (aliases_len > 0)
		memcpy(as->list + pub_len, aliases, aliases_len);
	as->list_users_len = pub_len;
	as->list_len = pub_len + aliases_len;
	as->generation++;
	accounts_free(&as->accounts);
	as->accounts = table;
	table = NULL;
	rc = 0;
 done:
	if (users != NULL) {
		explicit_bzero(users, users_len);
		free(users);
	}
	free(aliases);
	free(pub);
	accounts_free(&table);
	return rc;
}

static void
auth_reload_accounts(struct auth_server *as, const char *why)
{
	char err[1024];
	size_t i;

	if (auth_load_accounts(as, err, sizeof(err)) < 0) {
		log_warnx("auth: %s; keeping the previous accounts", err);
		return;
	}
	log_info("auth: %s: %zu users, %zu aliases", why,
	    as->accounts->n_accounts, as->accounts->n_aliases);
	for (i = 0; i < as->n_peers; i++)
		auth_send_list(as, &as->peers[i]);
}

static void
auth_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_server *as = arg;

	(void)fd;
	(void)what;
	if (file_changed(as->users_path, &as->users_stamp) ||
	    file_changed(as->aliases_path, &as->aliases_stamp))
		auth_reload_accounts(as, "accounts changed");
}

static void
auth_throttle_config(const struct tegami_config *cfg,
    struct throttle_config *tc)
{
	memset(tc, 0, sizeof(*tc));
	tc->window_ms = (uint64_t)cfg->auth_failure_window * 1000;
	tc->ip_limit = cfg->auth_ip_failure_limit;
	tc->account_limit = cfg->auth_account_failure_limit;
	tc->base_delay_ms = cfg->auth_failure_delay_ms;
	tc->max_delay_ms = cfg->auth_failure_delay_max_ms;
	tc->max_entries = AUTH_THROTTLE_ENTRIES;
}

/* ---- Checking passwords ------------------------------------------------ */

static void *
auth_thread_main(void *arg)
{
	struct auth_server *as = arg;
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	struct auth_job *job;
	const char *out;
	char byte = 0;

	for (;;) {
		pthread_mutex_lock(&as->lock);
		while (as->todo_head == NULL && !as->stopping)
			pthread_cond_wait(&as->cond, &as->lock);
		if (as->todo_head == NULL) {
			pthread_mutex_unlock(&as->lock);
			break;
		}
		job = as->todo_head;
		as->todo_head = job->next;
		if (as->todo_head == NULL)
			as->todo_tail = NULL;
		pthread_mutex_unlock(&as->lock);

		out = crypt_rn(job->password, job->hash, cd, sizeof(*cd));
		/* crypt_rn returns "*..." for a hash it cannot use. */
		job->matched = out != NULL && out[0] != '*' &&
		    strlen(out) == strlen(job->hash) &&
		    CRYPTO_memcmp(out, job->hash, strlen(out)) == 0;
		explicit_bzero(job->password, sizeof(job->password));
		explicit_bzero(cd, sizeof(*cd));

		pthread_mutex_lock(&as->lock);
		job->next = as->done_head;
		as->done_head = job;
		pthread_mutex_unlock(&as->lock);
		(void)!write(as->done_pipe[1], &byte, 1);
	}
	free(cd);
	return NULL;
}

/*
 * The user name is the client's: in the log it must not be able to close
 * the user=<...> field or look like another field, or a fail2ban filter
 * would read an address the attacker chose. Everything but printable
 * ASCII, and '<', '>', '\\' and space, becomes \\xNN.
 */
static void
auth_log_name(const char *in, char *out, size_t outsize)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (; *in != '\0' && o + 5 < outsize; in++) {
		unsigned char c = (unsigned char)*in;

		if (c > 0x20 && c < 0x7f && c != '<' && c != '>' &&
		    c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	out[o] = '\0';
}

static void
auth_log(const char *what, const struct auth_job *job, const char *reason)
{
	char user[SASL_NAME_MAX * 4 + 1];

	auth_log_name(job->user, user, sizeof(user));
	if (reason != NULL)
		log_info("auth %s: user=<%s> ip=%s service=%s reason=%s", what,
		    user, job->ip, job->service, reason);
	else
		log_info("auth %s: user=<%s> ip=%s service=%s", what, user,
		    job->ip, job->service);
}

static void
auth_job_free(struct auth_job *job)
{
	explicit_bzero(job->password, sizeof(job->password));
	free(job->hash);
	free(job);
}

static void
auth_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_server *as = arg;
	struct auth_job *job, *next;
	char buf[256];
	unsigned delay;

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&as->lock);
	job = as->done_head;
	as->done_head = NULL;
	pthread_mutex_unlock(&as->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		as->n_jobs--;
		if (job->matched && job->reason == NULL) {
			throttle_success(as->throttle, job->ip_key, job->user,
			    monotonic_ms());
			auth_log("ok", job, NULL);
			auth_reply(as, job->peer, job->id, AUTH_OK, 0, job->user);
		} else {
			delay = throttle_failure(as->throttle, job->ip_key,
			    job->user, monotonic_ms());
			auth_log("failed", job, job->reason != NULL ?
			    job->reason : "password");
			auth_reply(as, job->peer, job->id, AUTH_FAILED, delay,
			    NULL);
		}
		auth_job_free(job);
	}
}

static void
auth_check(struct auth_server *as, size_t peer, const struct auth_check *req)
{
	struct auth_job *job = xcalloc(1, sizeof(*job));
	const struct account *a;
	enum throttle_verdict v;
	uint64_t retry;
	size_t i;

	job->peer = peer;
	job->id = req->id;
	memcpy(job->service, req->service, sizeof(job->service));
	job->service[sizeof(job->service) - 1] = '\0';
	memcpy(job->ip, req->ip, sizeof(job->ip));
	job->ip[sizeof(job->ip) - 1] = '\0';
	memcpy(job->user, req->user, sizeof(job->user));
	job->user[sizeof(job->user) - 1] = '\0';
	for (i = 0; job->user[i] != '\0'; i++)
		job->user[i] = (char)tolower((unsigned char)job->user[i]);
	memcpy(job->password, req->password, sizeof(job->password));
	job->password[sizeof(job->password) - 1] = '\0';
	throttle_ip_key(job->ip, job->ip_key, sizeof(job->ip_key));

	v = throttle_check(as->throttle, job->ip_key, job->user,
	    monotonic_ms(), &retry);
	if (v != THROTTLE_ALLOW) {
		auth_log("refused", job, v == THROTTLE_REFUSE_IP ?
		    "throttled-ip" : "throttled-account");
		/* The refusal costs time too, or it would be a fast oracle
		 * of nothing but still a free flood. */
		auth_reply(as, peer, job->id, AUTH_THROTTLED,
		    as->cfg->auth_failure_delay_ms, NULL);
		auth_job_free(job);
		return;
	}
	if (as->n_jobs >= AUTH_JOBS_MAX) {
		log_warnx("auth: %d checks pending; answering tempfail",
		    AUTH_JOBS_MAX);
		auth_reply(as, peer, job->id, AUTH_TEMPFAIL, 0, NULL);
		auth_job_free(job);
		return;
	}
	/*
	 * Every attempt costs one real hash, whatever the account: the time
	 * of the answer tells nobody whether a user exists or is locked.
	 */
	a = accounts_find_user(as->accounts, job->user);
	if (a == NULL)
		job->reason = "unknown-user";
	else if (a->locked)
		job->reason = "locked";
	else if (a->hash == NULL || a->hash[0] == '\0')
		job->reason = "no-password";
	job->hash = xstrdup(job->reason == NULL ? a->hash : as->dummy_hash);

	as->n_jobs++;
	pthread_mutex_lock(&as->lock);
	if (as->todo_tail != NULL)
		as->todo_tail->next = job;
	else
		as->todo_head = job;
	as->todo_tail = job;
	pthread_cond_signal(&as->cond);
	pthread_mutex_unlock(&as->lock);
}

static void
auth_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_server *as = arg;
	struct auth_check req;
	size_t peer;
	uint32_t type;
	ssize_t n;

	(void)what;
	for (peer = 0; peer < as->n_peers; peer++)
		if (as->peers[peer].fd == fd)
			break;
	if (peer == as->n_peers)
		return;
	for (;;) {
		n = recv(fd, &req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		memcpy(&type, &req, sizeof(type));
		if (type == AUTH_MSG_HELLO)
			auth_send_list(as, &as->peers[peer]);
		else if (type == AUTH_MSG_CHECK && n == (ssize_t)sizeof(req))
			auth_check(as, peer, &req);
		else
			log_warnx("auth: malformed request from front %zu",
			    peer);
	}
	explicit_bzero(&req, sizeof(req));
}

/* ---- The process ------------------------------------------------------- */

static void
auth_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct auth_server *as = arg;
	struct tegami_config *cfg;
	struct throttle_config tc;
	char err[1024];

	(void)what;
	if (sig == SIGTERM || sig == SIGINT) {
		event_base_loopexit(as->base, NULL);
		return;
	}
	/* SIGHUP: throttle settings and the accounts. */
	if (config_load(as->config_path, &cfg, err, sizeof(err)) < 0)
		log_warnx("auth: reload: %s; keeping the old settings", err);
	else {
		config_free(&as->cfg);
		as->cfg = cfg;
		auth_throttle_config(cfg, &tc);
		throttle_set_config(as->throttle, &tc);
	}
	auth_reload_accounts(as, "reloaded");
}

void
auth_server_main(const char *config_path, const int *fds, size_t n,
    uid_t uid, gid_t gid)
{
	struct auth_server as;
	struct throttle_config tc;
	struct event *sig_term, *sig_int, *sig_hup;
	char err[1024];
	size_t i;

	log_set_role("auth");
	signal(SIGPIPE, SIG_IGN);
	memset(&as, 0, sizeof(as));
	as.config_path = config_path;
	if (config_load(config_path, &as.cfg, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		exit(AUTH_EXIT_CONFIG);
	}
	if (accounts_paths(as.cfg->state_dir, as.users_path,
	    as.aliases_path) < 0)
		fatalx("state_dir path too long");
	/* From here on only as the auth user: the files must be readable
	 * to it, as they will be at every reload. */
	if (uid != (uid_t)-1)
		drop_privileges(uid, gid);
	if (auth_load_accounts(&as, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		exit(AUTH_EXIT_CONFIG);
	}
	if (accounts_hash_password("not a password: equalises timing",
	    as.dummy_hash, sizeof(as.dummy_hash)) < 0)
		fatalx("auth: cannot hash with yescrypt");
	auth_throttle_config(as.cfg, &tc);
	as.throttle = throttle_new(&tc);

	as.base = event_base_new();
	if (as.base == NULL)
		fatalx("event_base_new failed");
	as.peers = xcalloc(n, sizeof(*as.peers));
	as.n_peers = n;
	for (i = 0; i < n; i++) {
		as.peers[i].fd = fds[i];
		as.peers[i].read_ev = event_new(as.base, fds[i],
		    EV_READ | EV_PERSIST, auth_read_cb, &as);
		as.peers[i].write_ev = event_new(as.base, fds[i], EV_WRITE,
		    auth_write_cb, &as.peers[i]);
		if (as.peers[i].read_ev == NULL ||
		    as.peers[i].write_ev == NULL ||
		    event_add(as.peers[i].read_ev, NULL) < 0)
			fatalx("auth: event_add failed");
	}
	if (pipe2(as.done_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		fatal("auth: pipe");
	as.done_ev = event_new(as.base, as.done_pipe[0], EV_READ | EV_PERSIST,
	    auth_done_cb, &as);
	as.watch_timer = event_new(as.base, -1, EV_PERSIST, auth_watch_cb,
	    &as);
	if (as.done_ev == NULL || event_add(as.done_ev, NULL) < 0 ||
	    as.watch_timer == NULL)
		fatalx("auth: event_add failed");
	{
		struct timeval tv = { .tv_sec = AUTH_WATCH_SECONDS };

		event_add(as.watch_timer, &tv);
	}
	sig_term = evsignal_new(as.base, SIGTERM, auth_signal_cb, &as);
	sig_int = evsignal_new(as.base, SIGINT, auth_signal_cb, &as);
	sig_hup = evsignal_new(as.base, SIGHUP, auth_signal_cb, &as);
	if (sig_term == NULL || sig_int == NULL || sig_hup == NULL ||
	    evsignal_add(sig_term, NULL) < 0 || evsignal_add(sig_int, NULL) < 0 ||
	    evsignal_add(sig_hup, NULL) < 0)
		fatalx("auth: evsignal_add failed");

	pthread_mutex_init(&as.lock, NULL);
	pthread_cond_init(&as.cond, NULL);
	{
		long cores = sysconf(_SC_NPROCESSORS_ONLN);

		as.n_threads = cores < 1 ? 1 : cores > AUTH_THREADS_MAX ?
		    AUTH_THREADS_MAX : (size_t)cores;
	}
	for (i = 0; i < as.n_threads; i++)
		if (pthread_create(&as.threads[i], NULL, auth_thread_main,
		    &as) != 0)
			fatalx("auth: pthread_create failed");
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	log_info("auth ready: %zu users, %zu aliases, %zu threads",
	    as.accounts->n_accounts, as.accounts->n_aliases, as.n_threads);
	event_base_dispatch(as.base);

	pthread_mutex_lock(&as.lock);
	as.stopping = true;
	pthread_cond_broadcast(&as.cond);
	pthread_mutex_unlock(&as.lock);
	for (i = 0; i < as.n_threads; i++)
		pthread_join(as.threads[i], NULL);
	log_info("auth stopped");
	exit(0);
}
