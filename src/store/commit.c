/*
 * The group-commit disk threads; see commit.h. Several threads each take
 * whatever jobs are waiting as one batch, so that under load the batches
 * grow and the fsyncs of concurrent threads share journal commits, while a
 * lone message is never held back waiting for company.
 */
#include "store/commit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/util.h"
#include "store/maildir.h"

#define COMMIT_BATCH_MAX 64

struct commit_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct commit_job *waiting, **waiting_tail;
	struct commit_job *done_list;
	size_t pending;		/* event-loop thread only */
	bool stopping;
	pthread_t *threads;
	unsigned n_threads;
	int efd;
	struct event *ev;
	void (*done)(struct commit_job *job);
};

struct commit_dirs {
	char **paths;
	size_t n, cap;
};

static void
dirs_add(struct commit_dirs *d, const char *path)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->paths[i], path) == 0)
			return;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->paths = xreallocarray(d->paths, d->cap, sizeof(*d->paths));
	}
	d->paths[d->n++] = xstrdup(path);
}

static void
dirs_free(struct commit_dirs *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->paths[i]);
	free(d->paths);
	memset(d, 0, sizeof(*d));
}

/*
 * Gives the spooled file one more name. Through /proc/self/fd, because
 * that works for unnamed O_TMPFILE files as well as named ones (linkat
 * with AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
 */
static int
job_link(struct commit_job *job, const char *path)
{
	return fd_link(job->fd, path);
}

static void
job_add_link(struct commit_job *job, const char *path)
{
	job->links = xreallocarray(job->links, job->n_links + 1,
	    sizeof(*job->links));
	job->links[job->n_links++] = xstrdup(path);
}

static void
job_rollback(struct commit_job *job)
{
	size_t i;

	for (i = 0; i < job->n_links; i++)
		(void)unlink(job->links[i]);
}

static void
job_fail(struct commit_job *job, int err)
{
	if (job->error == 0)
		job->error = err != 0 ? err : EIO;
}

/* Links the spooled file into one Maildir's new/, creating it if needed. */
static int
link_into_maildir(struct commit_job *job, const char *maildir,
    struct commit_dirs *dirs)
{
	char name[NAME_MAX + 1], path[PATH_MAX], newdir[PATH_MAX];
	int tries;

	if (path_join(newdir, sizeof(newdir), "%s/new", maildir) < 0)
		return -1;
	for (tries = 0; tries < 3; tries++) {
		if (maildir_new_name(name, sizeof(name), job->hostname,
		    job->size) < 0 ||
		    path_join(path, sizeof(path), "%s/%s", newdir, name) < 0)
			return -1;
		if (job_link(job, path) == 0) {
			job_add_link(job, path);
			dirs_add(dirs, newdir);
			return 0;
		}
		if (errno == ENOENT) {
			if (maildir_create(maildir) < 0)
				return -1;
			continue;
		}
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

static int
write_envelope(struct commit_job *job, struct commit_dirs *dirs)
{
	char dir[PATH_MAX], *slash;
	int fd, saved;

	/*
	 * The content first, then the envelope: the queue process takes a
	 * message when its envelope appears (inotify), and must then find
	 * the content there.
	 */
	if (job_link(job, job->queue_path) < 0)
		return -1;
	job_add_link(job, job->queue_path);
	fd = open(job->envelope_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, job->envelope, job->envelope_len) < 0 ||
	    fsync(fd) < 0) {
		saved = errno;
		close(fd);
		(void)unlink(job->envelope_path);
		errno = saved;
		return -1;
	}
	close(fd);
	job_add_link(job, job->envelope_path);
	if (path_join(dir, sizeof(dir), "%s", job->queue_path) < 0)
		return -1;
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		dirs_add(dirs, dir);
	}
	return 0;
}

static void
commit_batch(struct commit_job *batch)
{
	struct commit_dirs dirs = { 0 };
	struct commit_job *job;
	size_t i;

	if (batch->run != NULL) {
		/* A task is a batch of its own (commit_thread). */
		batch->run(batch);
		return;
	}
	/* Start write-back of every file first, so the fsyncs below overlap. */
	for (job = batch; job != NULL; job = job->next)
		(void)sync_file_range(job->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	for (job = batch; job != NULL; job = job->next) {
		if (fsync(job->fd) < 0) {
			job_fail(job, errno);
			continue;
		}
		for (i = 0; i < job->n_maildirs && job->error == 0; i++)
			if (link_into_maildir(job, job->maildirs[i], &dirs) < 0)
				job_fail(job, errno);
		if (job->error == 0 && job->queue_path != NULL &&
		    write_envelope(job, &dirs) < 0)
			job_fail(job, errno);
	}
	/* One fsync per directory serves every message of the batch. */
	for (i = 0; i < dirs.n; i++) {
		if (fsync_dir(dirs.paths[i]) == 0)
			continue;
		int err = errno;
		log_warn("fsync %s", dirs.paths[i]);
		for (job = batch; job != NULL; job = job->next)
			job_fail(job, err);
	}
	for (job = batch; job != NULL; job = job->next) {
		if (job->error != 0)
			job_rollback(job);
		if (job->spool_path != NULL)
			(void)unlink(job->spool_path);
		close(job->fd);
		job->fd = -1;
	}
	dirs_free(&dirs);
}

static void *
commit_thread(void *arg)
{
	struct commit_pool *pool = arg;
	struct commit_job *batch, *job, *last;
	uint64_t one = 1;
	int n;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->waiting == NULL && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->waiting == NULL && pool->stopping)
			break;
		/* A task (run set) goes alone, and ends a batch of messages
		 * before it: a long one must not hold their 250s. */
		batch = pool->waiting;
		for (last = batch, n = 1; batch->run == NULL &&
		    last->next != NULL && last->next->run == NULL &&
		    n < COMMIT_BATCH_MAX; last = last->next, n++)
			;
		pool->waiting = last->next;
		if (pool->waiting == NULL)
			pool->waiting_tail = &pool->waiting;
		last->next = NULL;
		pthread_mutex_unlock(&pool->lock);

		commit_batch(batch);

		pthread_mutex_lock(&pool->lock);
		while (batch != NULL) {
			job = batch;
			batch = batch->next;
			job->next = pool->done_list;
			pool->done_list = job;
		}
		(void)!write(pool->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static void
commit_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct commit_pool *pool = arg;
	struct commit_job *list, *job;
	uint64_t v;

	(void)what;
	(void)!read(fd, &v, sizeof(v));
	pthread_mutex_lock(&pool->lock);
	list = pool->done_list;
	pool->done_list = NULL;
	pthread_mutex_unlock(&pool->lock);
	while (list != NULL) {
		job = list;
		list = list->next;
		job->next = NULL;
		pool->pending--;
		if (job->task_done != NULL)
			job->task_done(job);
		else
			pool->done(job);
	}
}

struct commit_pool *
commit_pool_new(struct event_base *base, unsigned threads,
    void (*done)(struct commit_job *job))
{
	struct commit_pool *pool = xcalloc(1, sizeof(*pool));
	unsigned i;

	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pool->waiting_tail = &pool->waiting;
	pool->done = done;
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0)
		fatal("eventfd");
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST,
	    commit_done_cb, pool);
	if (pool->ev == NULL || event_add(pool->ev, NULL) < 0)
		fatalx("commit: event_new failed");
	pool->n_threads = threads ? threads : 1;
	pool->threads = xcalloc(pool->n_threads, sizeof(*pool->threads));
	for (i = 0; i < pool->n_threads; i++)
		if (pthread_create(&pool->threads[i], NULL, commit_thread,
		    pool) != 0)
			fatalx("commit: pthread_create failed");
	return pool;
}

void
commit_submit(struct commit_pool *pool, struct commit_job *job)
{
	job->next = NULL;
	job->error = 0;
	pool->pending++;
	pthread_mutex_lock(&pool->lock);
	*pool->waiting_tail = job;
	pool->waiting_tail = &job->next;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

size_t
commit_pending(const struct commit_pool *pool)
{
	return pool->pending;
}

void
commit_pool_free(struct commit_pool **poolp)
{
	struct commit_pool *pool = *poolp;
	unsigned i;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->n_threads; i++)
		pthread_join(pool->threads[i], NULL);
	/* Report what finished while stopping. */
	commit_done_cb(pool->efd, EV_READ, pool);
	event_free(pool->ev);
	close(pool->efd);
	free(pool->threads);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	free(pool);
	*poolp = NULL;
}

void
commit_job_free(struct commit_job *job)
{
	size_t i;

	if (job == NULL)
		return;
	if (job->fd >= 0)
		close(job->fd);
	free(job->spool_path);
	for (i = 0; i < job->n_maildirs; i++)
		free(job->maildirs[i]);
	free(job->maildirs);
	free(job->queue_path);
	free(job->envelope_path);
	free(job->envelope);
	free(job->hostname);
	for (i = 0; i < job->n_links; i++)
		free(job->links[i]);
	free(job->links);
	free(job);
}
