/*
 * `tegami queue list`: the messages waiting in STATE_DIR/queue/ for
 * delivery to other domains, each ID.msg with the envelope ID.env that
 * smtp_message.c writes ("version 1", "queue-id ID", "sender <A>",
 * "recipient <A>" lines; RFC 5321 3.3 reverse- and forward-paths).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/util.h"

#define QUEUE_DIR_NAME "queue"
/* 1000 recipients of 320 bytes and the fixed lines fit with room. */
#define QUEUE_ENV_MAX ((size_t)1 << 20)
#define QUEUE_NAME_SHOWN_MAX 64

struct qentry {
	char *id;		/* the file name without .msg / .env */
	bool has_msg, has_env;
	off_t size;		/* of ID.msg */
	time_t mtime;		/* of ID.msg, else of ID.env */
};

struct qlist {
	struct qentry *v;
	size_t n, cap;
};

/* The envelope as read: the lines to show, or why it could not be. */
struct envelope {
	char *sender;
	char **rcpts;
	size_t n_rcpts;
	char why[128];
};

static int
queue_usage(void)
{
	fprintf(stderr, "usage: tegami [-c CONF] queue list\n");
	return 2;
}

/* Names and addresses come from files and the network: show only
 * printable ASCII, the rest as '?'. */
static void
print_safe(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		putchar((unsigned char)s[i] >= ' ' && (unsigned char)s[i] < 0x7f
		    ? s[i] : '?');
}

static struct qentry *
qlist_get(struct qlist *l, const char *id, size_t len)
{
	struct qentry *e;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strlen(l->v[i].id) == len && memcmp(l->v[i].id, id,
		    len) == 0)
			return &l->v[i];
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	e->id = xmalloc(len + 1);
	memcpy(e->id, id, len);
	e->id[len] = '\0';
	return e;
}

/* Collects the regular files ID.msg and ID.env directly in dir. */
static int
queue_scan(const char *dir, struct qlist *l)
{
	struct dirent *de;
	struct stat st;
	struct qentry *e;
	DIR *d;
	size_t len;
	bool msg;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "tegami: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 4 || de->d_name[0] == '.')
			continue;
		if (strcmp(de->d_name + len - 4, ".msg") == 0)
			msg = true;
		else if (strcmp(de->d_name + len - 4, ".env") == 0)
			msg = false;
		else
			continue;
		/* Not followed: a link or a directory (incoming/ is the
		 * spool) is no queued message. */
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)	/* delivered meanwhile */
				continue;
			fprintf(stderr, "tegami: %s/%s: %s\n", dir, de->d_name,
			    strerror(errno));
			closedir(d);
			return 1;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		e = qlist_get(l, de->d_name, len - 4);
		if (msg) {
			e->has_msg = true;
			e->size = st.st_size;
			e->mtime = st.st_mtime;
		} else {
			e->has_env = true;
			if (!e->has_msg)
				e->mtime = st.st_mtime;
		}
	}
	if (errno != 0) {
		fprintf(stderr, "tegami: %s: %s\n", dir, strerror(errno));
		closedir(d);
		return 1;
	}
	closedir(d);
	return 0;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct qentry *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void
envelope_clear(struct envelope *env)
{
	size_t i;

	free(env->sender);
	for (i = 0; i < env->n_rcpts; i++)
		free(env->rcpts[i]);
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

/* Whether the line starts with "KEY ". */
static bool
line_key(const char *line, size_t n, const char *key)
{
	size_t klen = strlen(key);

	return n > klen && memcmp(line, key, klen) == 0 && line[klen] == ' ';
}

/* "KEY <ADDR>": the "<ADDR>" as a string, or NULL when line is not that. */
static char *
envelope_path(const char *line, size_t n, const char *key)
{
	size_t klen = strlen(key);
	char *p;

	if (n < klen + 3 || !line_key(line, n, key) ||
	    line[klen + 1] != '<' || line[n - 1] != '>' ||
	    memchr(line + klen + 2, '>', n - klen - 3) != NULL ||
	    memchr(line + klen + 2, '<', n - klen - 3) != NULL)
		return NULL;
	p = xmalloc(n - klen);
	memcpy(p, line + klen + 1, n - klen - 1);
	p[n - klen - 1] = '\0';
	return p;
}

/*
 * Parses an envelope text. A text that is not what smtp_message.c
 * writes leaves env->why set; lines of other keys are skipped, for
 * envelopes of later versions of the same format.
 */
static void
envelope_parse(const char *text, size_t len, const char *id,
    struct envelope *env)
{
	const char *p = text, *end = text + len, *nl;
	size_t n, lineno = 0, cap = 0;
	char *addr;

	if (memchr(text, '\0', len) != NULL) {
		snprintf(env->why, sizeof(env->why), "NUL byte");
		return;
	}
	if (len == 0 || text[len - 1] != '\n') {
		snprintf(env->why, sizeof(env->why), "%s",
		    len == 0 ? "empty" : "last line unfinished");
		return;
	}
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)(nl - p);
		lineno++;
		if (lineno == 1) {
			if (n != 9 || memcmp(p, "version 1", 9) != 0)
				break;
		} else if (line_key(p, n, "queue-id")) {
			if (n - 9 != strlen(id) ||
			    memcmp(p + 9, id, n - 9) != 0)
				break;
		} else if (line_key(p, n, "sender")) {
			if (env->sender != NULL || (env->sender =
			    envelope_path(p, n, "sender")) == NULL)
				break;
		} else if (line_key(p, n, "recipient")) {
			if ((addr = envelope_path(p, n, "recipient")) == NULL)
				break;
			if (env->n_rcpts == cap) {
				cap = cap ? 2 * cap : 8;
				env->rcpts = xreallocarray(env->rcpts, cap,
				    sizeof(*env->rcpts));
			}
			env->rcpts[env->n_rcpts++] = addr;
		} else if (n == 0 || memchr(p, ' ', n) == NULL ||
		    !(p[0] >= 'a' && p[0] <= 'z') || line_key(p, n, "version"))
			break;	/* other "key value" lines: a later version's */
	}
	if (p < end) {
		snprintf(env->why, sizeof(env->why), "line %zu is not what "
		    "tegami writes", lineno);
		return;
	}
	if (env->sender == NULL)
		snprintf(env->why, sizeof(env->why), "no sender line");
	else if (env->n_rcpts == 0)
		snprintf(env->why, sizeof(env->why), "no recipient line");
}

/* Reads dir/ID.env into env (env->why set when it cannot be shown). */
static void
envelope_read(const char *dir, const char *id, struct envelope *env)
{
	char path[PATH_MAX], *text;
	struct stat st;
	size_t len = 0;
	ssize_t r;
	int fd;

	memset(env, 0, sizeof(*env));
	if (path_join(path, sizeof(path), "%s/%s.env", dir, id) == -1) {
		snprintf(env->why, sizeof(env->why), "path too long");
		return;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK)) == -1 || fstat(fd, &st) == -1) {
		snprintf(env->why, sizeof(env->why), "%s", strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > QUEUE_ENV_MAX) {
		snprintf(env->why, sizeof(env->why), "%s", S_ISREG(st.st_mode) ?
		    "larger than 1 MiB" : "not a regular file");
		close(fd);
		return;
	}
	text = xmalloc(QUEUE_ENV_MAX + 1);
	while (len <= QUEUE_ENV_MAX) {
		r = read(fd, text + len, QUEUE_ENV_MAX + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (r == -1)
		snprintf(env->why, sizeof(env->why), "%s", strerror(errno));
	else if (len > QUEUE_ENV_MAX)
		snprintf(env->why, sizeof(env->why), "larger than 1 MiB");
	else
		envelope_parse(text, len, id, env);
	free(text);
	close(fd);
}

/* "42s", "3m05s", "2h03m", "4d05h". */
static void
format_age(time_t now, time_t then, char *out, size_t outsize)
{
	long long s = now > then ? (long long)(now - then) : 0;

	if (s < 60)
		snprintf(out, outsize, "%llds", s);
	else if (s < 3600)
		snprintf(out, outsize, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, outsize, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		snprintf(out, outsize, "%lldd%02lldh", s / 86400,
		    s / 3600 % 24);
}

static void
print_entry(const char *dir, const struct qentry *e, time_t now)
{
	struct envelope env;
	char age[32];
	size_t i;

	format_age(now, e->mtime, age, sizeof(age));
	print_safe(e->id, strlen(e->id) < QUEUE_NAME_SHOWN_MAX ?
	    strlen(e->id) : QUEUE_NAME_SHOWN_MAX);
	if (strlen(e->id) > QUEUE_NAME_SHOWN_MAX)
		printf("...");
	if (!queue_id_valid(e->id))
		printf(" (not a tegami queue id)");
	if (e->has_msg)
		printf("  size %lld  age %s\n", (long long)e->size, age);
	else
		printf("  message file missing (only the envelope, age %s)\n",
		    age);
	if (!e->has_env) {
		printf("  envelope missing (no .env file)\n");
		return;
	}
	envelope_read(dir, e->id, &env);
	if (env.why[0] != '\0')
		printf("  envelope malformed: %s\n", env.why);
	else {
		fputs("  sender ", stdout);
		print_safe(env.sender, strlen(env.sender));
		putchar('\n');
		for (i = 0; i < env.n_rcpts; i++) {
			fputs("  recipient ", stdout);
			print_safe(env.rcpts[i], strlen(env.rcpts[i]));
			putchar('\n');
		}
	}
	envelope_clear(&env);
}

static int
queue_list(const struct tegami_config *cfg)
{
	struct qlist l = { NULL, 0, 0 };
	char dir[PATH_MAX];
	size_t i, n_msgs = 0;
	time_t now = time(NULL);
	int rc;

	if (path_join(dir, sizeof(dir), "%s/%s", cfg->state_dir,
	    QUEUE_DIR_NAME) == -1) {
		fprintf(stderr, "tegami: %s: path too long\n", cfg->state_dir);
		return 1;
	}
	if ((rc = queue_scan(dir, &l)) == 0) {
		if (l.n > 0)	/* qsort(NULL, 0, ...) is undefined */
			qsort(l.v, l.n, sizeof(*l.v), cmp_entry);
		for (i = 0; i < l.n; i++) {
			if (i > 0)
				putchar('\n');
			print_entry(dir, &l.v[i], now);
			if (l.v[i].has_msg)
				n_msgs++;
		}
		if (l.n == 0)
			printf("queue is empty\n");
		else
			printf("\n%zu message%s\n", n_msgs,
			    n_msgs == 1 ? "" : "s");
		rc = cli_stdout_done();
	}
	for (i = 0; i < l.n; i++)
		free(l.v[i].id);
	free(l.v);
	return rc;
}

int
cli_queue(const struct tegami_config *cfg, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return queue_list(cfg);
	return queue_usage();
}
