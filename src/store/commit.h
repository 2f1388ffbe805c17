/*
 * Group commit: a small pool of disk threads that make finished messages
 * durable and put them in place, so that the event loop never waits for a
 * disk and one journal commit serves many sessions. For each job: fsync
 * the spooled file, hard-link it into every recipient's Maildir new/ (and
 * the queue for remote recipients), fsync every directory touched by the
 * whole batch once, unlink the spool file. Only then is the job reported
 * done, and only then may the session answer 250.
 *
 * The same threads run the other disk work of a front that could hold
 * its event loop for long (POP3's mailbox listing at login and its
 * renames and removals at QUIT): a job with run set is such a task.
 */
#ifndef TEGAMI_COMMIT_H
#define TEGAMI_COMMIT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct commit_pool;

struct commit_job {
	/* Set by the submitter. */
	int fd;			/* the spooled message, written; closed here */
	char *spool_path;	/* its name, unlinked when done; NULL for an
				 * unnamed (O_TMPFILE) file */
	uint64_t size;		/* its size in octets */
	char **maildirs;	/* Maildir paths of the local recipients */
	size_t n_maildirs;
	char *queue_path;	/* NULL, or where to link it for remote mail */
	char *envelope_path;	/* with queue_path: the envelope file */
	char *envelope;		/* its content */
	size_t envelope_len;
	char *hostname;		/* for Maildir names */
	void *owner;		/* the submitter's, untouched */
	/*
	 * A task rather than a message: a disk thread calls run(job) and
	 * nothing else (the fields above are unused), and task_done(job)
	 * is called instead of the pool's done. The job stays the
	 * submitter's memory.
	 */
	void (*run)(struct commit_job *job);
	void (*task_done)(struct commit_job *job);

	/* Set by the pool before the done callback. */
	int error;		/* 0, or the errno of the first failure */

	/* Private. */
	struct commit_job *next;
	char **links;		/* links made so far, for rollback */
	size_t n_links;
};

/*
 * Starts threads disk threads. done(job) is called on the event loop's
 * thread for each finished job, in no particular order; it owns the job.
 */
struct commit_pool *commit_pool_new(struct event_base *base,
    unsigned threads, void (*done)(struct commit_job *job));

/* Queues a job; the pool owns it until done() is called. */
void commit_submit(struct commit_pool *pool, struct commit_job *job);

/* Jobs submitted and not yet reported done. */
size_t commit_pending(const struct commit_pool *pool);

/* Finishes queued jobs, stops the threads and frees the pool. */
void commit_pool_free(struct commit_pool **poolp);

/* Frees a job's memory (not the owner); closes fd if still open. */
void commit_job_free(struct commit_job *job);

#endif
