/*
 * `tegami init`: creates a state directory (tegami.conf, users, aliases,
 * mail/, queue/) that `tegami serve` can start from. It never overwrites:
 * an existing tegami.conf is refused, other existing entries are kept.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ca/ca.h"
#include "core/config.h"
#include "core/util.h"

#define INIT_CONF_NAME "tegami.conf"
#define INIT_DIR_MODE 0755
#define INIT_CONF_MODE 0644
#define INIT_USERS_MODE 0640	/* password hashes: not for others */
#define INIT_ALIASES_MODE 0644
#define INIT_SPOOL_MODE 0750	/* mail/ and queue/ */
#define INIT_DOMAINS_TEXT_MAX (CONFIG_DOMAINS_MAX * 256)
#define INIT_LINE_MAX 4096	/* the config file's line limit */

struct init_args {
	const char *dir;
	char *domains[CONFIG_DOMAINS_MAX];
	size_t n_domains;
	const char *hostname;
	const char *listen;
	const char *port_base;
	const char *user;
	bool no_ca;		/* --no-ca: no private CA, no certificate */
};

static const char init_users_text[] =
    "# tegami accounts: one \"address:[!]hash[:send_as=PATTERN,...]\" a "
    "line\n"
    "# (crypt(3) hash; \"!\" = locked), edited with `tegami -c CONF user "
    "add|passwd|lock|\n"
    "# unlock|send-as|del|import`; \"#\" starts a comment. See "
    "docs/accounts.md.\n";

static const char init_aliases_text[] =
    "# tegami aliases: one \"alias@domain: target, target\" a line, "
    "written by\n"
    "# `tegami -c CONF alias add ALIAS TARGET...`; \"#\" starts a "
    "comment.\n";

static void
init_usage(FILE *f)
{
	fprintf(f,
	    "usage: tegami init --dir DIR --domain DOMAIN [--domain DOMAIN ...]\n"
	    "                   [--hostname HOST] [--listen ADDR] "
	    "[--port-base N]\n"
	    "                   [--user USER] [--no-ca]\n"
	    "--no-ca skips creating the private CA and the server's "
	    "certificate\n(see `tegami ca csr` to use a public CA's).\n");
}

static void
init_args_free(struct init_args *a)
{
	size_t i;

	for (i = 0; i < a->n_domains; i++)
		free(a->domains[i]);
	a->n_domains = 0;
}

static void
lowercase(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/*
 * Reads the options into a. Returns 0, 2 on a usage error (reported), or
 * 1 on another error (reported). "--opt VALUE" and "--opt=VALUE" both work.
 */
static int
init_parse_args(int argc, char **argv, struct init_args *a, bool *help_r)
{
	static const char *const names[] = { "--dir", "--domain",
	    "--hostname", "--listen", "--port-base", "--user" };
	const char **slots[] = { &a->dir, NULL, &a->hostname, &a->listen,
	    &a->port_base, &a->user };
	const char *arg, *value, *eq;
	size_t i, namelen;
	int k;

	*help_r = false;
	for (k = 1; k < argc; k++) {
		arg = argv[k];
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			*help_r = true;
			return 0;
		}
		if (strcmp(arg, "--no-ca") == 0) {
			a->no_ca = true;
			continue;
		}
		eq = strchr(arg, '=');
		namelen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i]) == namelen &&
			    strncmp(arg, names[i], namelen) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			fprintf(stderr, "tegami init: unknown argument "
			    "\"%s\"\n", arg);
			return 2;
		}
		if (eq != NULL)
			value = eq + 1;
		else if (k + 1 < argc)
			value = argv[++k];
		else {
			fprintf(stderr, "tegami init: %s needs a value\n",
			    names[i]);
			return 2;
		}
		if (slots[i] == NULL) {
			if (a->n_domains == CONFIG_DOMAINS_MAX) {
				fprintf(stderr, "tegami init: more than %d "
				    "domains\n", CONFIG_DOMAINS_MAX);
				return 1;
			}
			if ((a->domains[a->n_domains] = strdup(value)) ==
			    NULL) {
				perror("tegami init");
				return 1;
			}
			lowercase(a->domains[a->n_domains++]);
		} else if (*slots[i] != NULL) {
			fprintf(stderr, "tegami init: %s given twice\n",
			    names[i]);
			return 2;
		} else
			*slots[i] = value;
	}
	if (a->dir == NULL || a->n_domains == 0) {
		fprintf(stderr, "tegami init: --dir and --domain are "
		    "required\n");
		return 2;
	}
	if (a->dir[0] == '\0') {
		fprintf(stderr, "tegami init: --dir is empty\n");
		return 2;
	}
	return 0;
}

/* Checks one option value as the config file would take it. */
static int
init_check(const char *option, const char *key, const char *value)
{
	char why[256];

	if (config_check_value(key, value, why, sizeof(why)) < 0) {
		fprintf(stderr, "tegami init: %s \"%s\": %s\n", option, value,
		    why);
		return -1;
	}
	return 0;
}

/*
 * mkdir -p with mode for what it creates (chmod, so the umask cannot make
 * it tighter or looser), fsyncing each new directory's parent so that the
 * entry survives a crash.
 */
static int
make_dirs(const char *dir, mode_t mode, bool *created_r)
{
	char path[PATH_MAX], parent[PATH_MAX];
	struct stat st;
	size_t len, i;

	*created_r = false;
	len = strlen(dir);
	if (len >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, mode) == 0) {
			if (chmod(path, mode) < 0)
				return -1;
			(void)path_dirname(path, parent, sizeof(parent));
			if (fsync_dir(parent) < 0)
				return -1;
			*created_r = true;
		} else if (errno != EEXIST)
			return -1;
		else if (stat(path, &st) < 0)
			return -1;
		else if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
		if (i < len)
			path[i] = '/';
	}
	return 0;
}

/*
 * Creates path with mode and text, unless it exists: then *created_r is
 * false and nothing is touched.
 */
static int
create_file(const char *path, mode_t mode, const char *text,
    bool *created_r)
{
	size_t len = strlen(text);
	int fd;

	*created_r = false;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	if (fchmod(fd, mode) < 0)
		goto fail;
	if (write_all(fd, text, len) < 0)
		goto fail;
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0)
		return -1;
	*created_r = true;
	return 0;

fail:
	close(fd);
	return -1;
}

static int
create_dir(const char *path, mode_t mode, bool *created_r)
{
	struct stat st;

	*created_r = false;
	if (mkdir(path, mode) == 0) {
		*created_r = true;
		return chmod(path, mode);
	}
	if (errno != EEXIST || lstat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/*
 * Writes the config through a temp file that is fsync'd and then linked
 * to its name: link(2), unlike rename(2), fails when the name exists, so
 * an init racing with another never replaces its file.
 */
static int
write_conf(const char *dir, const char *conf, const char *text, size_t len)
{
	char tmp[PATH_MAX];
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, INIT_CONF_NAME) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(tmp)) < 0)
		return -1;
	if (fchmod(fd, INIT_CONF_MODE) < 0)
		goto fail;
	if (write_all(fd, text, len) < 0)
		goto fail;
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (link(tmp, conf) < 0)
		goto fail;
	unlink(tmp);
	return fsync_dir(dir);

fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

/* Builds the sample and checks that config_load will accept it. */
static char *
init_sample(const struct config_init_values *values, const char *conf,
    size_t *len_r)
{
	struct tegami_config *cfg = NULL;
	char *text = NULL, err[512];
	FILE *f;
	int rc;

	if ((f = open_memstream(&text, len_r)) == NULL) {
		perror("tegami init");
		return NULL;
	}
	rc = config_write_sample(f, values);
	if (fclose(f) == EOF || rc < 0) {
		perror("tegami init: writing the configuration");
		free(text);
		return NULL;
	}
	if (config_parse(conf, text, *len_r, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "tegami init: the generated configuration "
		    "does not load (a bug): %s\n", err);
		free(text);
		return NULL;
	}
	config_free(&cfg);
	return text;
}

/* out (PATH_MAX bytes) = dir "/" name, or dir when name is NULL. */
static int
join(char *out, const char *dir, const char *name)
{
	int n;

	if (name == NULL)
		n = snprintf(out, PATH_MAX, "%s", dir);
	else
		n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	if (n < 0 || n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static void
report(const char *path, bool created)
{
	printf("%s %s\n", created ? "created" : "kept existing", path);
}

/* As root with the user present, hand mail/, queue/ and users to it. */
static int
init_owners(const char *user, const char *mail, bool mail_created,
    const char *queue, bool queue_created, const char *users,
    bool users_created)
{
	struct passwd *pw;

	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "tegami init: warning: user \"%s\" does not "
		    "exist; `tegami serve` started as root needs it:\n"
		    "    useradd --system --no-create-home --shell "
		    "/usr/sbin/nologin %s\n", user, user);
		return 0;
	}
	if (geteuid() != 0)
		return 0;
	if ((mail_created && chown(mail, pw->pw_uid, pw->pw_gid) < 0) ||
	    (queue_created && chown(queue, pw->pw_uid, pw->pw_gid) < 0) ||
	    (users_created && chown(users, (uid_t)-1, pw->pw_gid) < 0)) {
		perror("tegami init: chown");
		return -1;
	}
	return 0;
}

/*
 * The private CA and the server's certificate, so that STARTTLS works
 * from the first start (issue 3). The server key goes to the group of the
 * unprivileged user, so that the front can reload it on SIGHUP.
 */
static int
init_tls(const char *dir, const char *hostname, const char *user)
{
	char cacrt[PATH_MAX], tlsdir[PATH_MAX], err[1024];
	struct passwd *pw = getpwnam(user);
	struct stat st;

	if (path_join(cacrt, sizeof(cacrt), "%s/ca/ca.crt", dir) < 0 ||
	    path_join(tlsdir, sizeof(tlsdir), "%s/tls", dir) < 0) {
		fprintf(stderr, "tegami init: %s: path too long\n", dir);
		return -1;
	}
	if (stat(cacrt, &st) == 0) {
		report(cacrt, false);
		return 0;
	}
	if (ca_setup_default_gid(dir, hostname, pw != NULL && geteuid() == 0 ?
	    pw->pw_gid : (gid_t)-1, err, sizeof(err)) < 0) {
		fprintf(stderr, "tegami init: %s\n", err);
		return -1;
	}
	report(cacrt, true);
	printf("created %s/%s.crt and .key (signed by the private CA)\n",
	    tlsdir, hostname);
	return 0;
}

int
cli_init(int argc, char **argv)
{
	struct init_args a;
	struct config_init_values values;
	struct stat st;
	char domains[INIT_DOMAINS_TEXT_MAX], hostname[300];
	char dir[PATH_MAX], conf[PATH_MAX], users[PATH_MAX];
	char aliases[PATH_MAX], mail[PATH_MAX], queue[PATH_MAX];
	char *real = NULL, *sample = NULL;
	size_t i, j, len, sample_len;
	bool help, dir_created, users_created, aliases_created;
	bool mail_created, queue_created, user_given;
	int rc = 1;

	memset(&a, 0, sizeof(a));
	if ((rc = init_parse_args(argc, argv, &a, &help)) != 0 || help) {
		if (rc == 2 || help)
			init_usage(rc == 2 ? stderr : stdout);
		init_args_free(&a);
		return rc;
	}
	rc = 1;

	/* Everything is checked before anything is created. */
	domains[0] = '\0';
	for (i = 0; i < a.n_domains; i++) {
		if (strpbrk(a.domains[i], ", \t") != NULL) {
			fprintf(stderr, "tegami init: --domain \"%s\": one "
			    "domain per --domain\n", a.domains[i]);
			goto out;
		}
		if (init_check("--domain", "domains", a.domains[i]) < 0)
			goto out;
		for (j = 0; j < i; j++) {
			if (strcmp(a.domains[i], a.domains[j]) == 0) {
				fprintf(stderr, "tegami init: --domain \"%s\" "
				    "given twice\n", a.domains[i]);
				goto out;
			}
		}
		len = strlen(domains);
		snprintf(domains + len, sizeof(domains) - len, "%s%s",
		    i > 0 ? ", " : "", a.domains[i]);
	}
	if (a.hostname == NULL)
		snprintf(hostname, sizeof(hostname), "mail.%s", a.domains[0]);
	else if (snprintf(hostname, sizeof(hostname), "%s", a.hostname) >=
	    (int)sizeof(hostname)) {
		fprintf(stderr, "tegami init: --hostname: too long\n");
		goto out;
	}
	lowercase(hostname);
	if (a.listen == NULL)
		a.listen = "127.0.0.1";	/* a demo is never exposed */
	if (a.port_base == NULL)
		a.port_base = "0";
	user_given = a.user != NULL;
	if (a.user == NULL)
		a.user = "tegami";
	if (init_check("--hostname", "hostname", hostname) < 0 ||
	    init_check("--listen", "listen", a.listen) < 0 ||
	    init_check("--port-base", "port_base", a.port_base) < 0 ||
	    init_check("--user", "user", a.user) < 0 ||
	    init_check("--domain", "domains", domains) < 0)
		goto out;
	if (strlen("domains = ") + strlen(domains) > INIT_LINE_MAX) {
		fprintf(stderr, "tegami init: the domains do not fit on one "
		    "line of %d bytes\n", INIT_LINE_MAX);
		goto out;
	}

	memset(&values, 0, sizeof(values));
	values.domain = domains;
	values.hostname = hostname;
	values.listen = a.listen;
	values.port_base = (unsigned)strtoul(a.port_base, NULL, 10);
	/* Written out only when chosen, so the default stays a comment. */
	values.user = user_given ? a.user : NULL;

	if (join(conf, a.dir, INIT_CONF_NAME) < 0) {
		fprintf(stderr, "tegami init: %s: path too long\n", a.dir);
		goto out;
	}
	if (lstat(conf, &st) == 0) {
		fprintf(stderr, "tegami init: %s already exists; not "
		    "overwriting it\n", conf);
		goto out;
	}
	if (errno != ENOENT) {
		fprintf(stderr, "tegami init: %s: %s\n", conf,
		    strerror(errno));
		goto out;
	}

	if (make_dirs(a.dir, INIT_DIR_MODE, &dir_created) < 0) {
		fprintf(stderr, "tegami init: %s: %s\n", a.dir,
		    strerror(errno));
		goto out;
	}
	if ((real = realpath(a.dir, NULL)) == NULL) {
		fprintf(stderr, "tegami init: %s: %s\n", a.dir,
		    strerror(errno));
		goto out;
	}
	if (join(dir, real, NULL) < 0 || join(conf, dir, INIT_CONF_NAME) < 0 ||
	    join(users, dir, "users") < 0 ||
	    join(aliases, dir, "aliases") < 0 ||
	    join(mail, dir, "mail") < 0 || join(queue, dir, "queue") < 0) {
		fprintf(stderr, "tegami init: %s: path too long\n", real);
		goto out;
	}
	if (dir_created)
		report(dir, true);

	if ((sample = init_sample(&values, conf, &sample_len)) == NULL)
		goto out;

	if (create_file(users, INIT_USERS_MODE, init_users_text,
	    &users_created) < 0) {
		fprintf(stderr, "tegami init: %s: %s\n", users,
		    strerror(errno));
		goto out;
	}
	report(users, users_created);
	if (create_file(aliases, INIT_ALIASES_MODE, init_aliases_text,
	    &aliases_created) < 0) {
		fprintf(stderr, "tegami init: %s: %s\n", aliases,
		    strerror(errno));
		goto out;
	}
	report(aliases, aliases_created);
	if (create_dir(mail, INIT_SPOOL_MODE, &mail_created) < 0) {
		fprintf(stderr, "tegami init: %s: %s\n", mail,
		    strerror(errno));
		goto out;
	}
	report(mail, mail_created);
	if (create_dir(queue, INIT_SPOOL_MODE, &queue_created) < 0) {
		fprintf(stderr, "tegami init: %s: %s\n", queue,
		    strerror(errno));
		goto out;
	}
	report(queue, queue_created);
	if (init_owners(a.user, mail, mail_created, queue, queue_created,
	    users, users_created) < 0)
		goto out;
	if (!a.no_ca && init_tls(dir, hostname, a.user) < 0)
		goto out;

	/* Last, so that an init that failed half way can simply be rerun. */
	if (write_conf(dir, conf, sample, sample_len) < 0) {
		if (errno == EEXIST)
			fprintf(stderr, "tegami init: %s already exists; not "
			    "overwriting it\n", conf);
		else
			fprintf(stderr, "tegami init: %s: %s\n", conf,
			    strerror(errno));
		goto out;
	}
	report(conf, true);

	printf("\nNext:\n"
	    "  tegami -c %s user add postmaster@%s --password-stdin\n"
	    "  tegami -c %s serve\n"
	    "  tegami -c %s ca export --der root.crt   "
	    "(for your mail clients)\n", conf, a.domains[0], conf, conf);
	if (values.port_base != 0)
		printf("SMTP will listen on %s port %u.\n", a.listen,
		    values.port_base + 25);
	else
		printf("SMTP will listen on %s port 25.\n", a.listen);
	rc = 0;

out:
	fflush(stdout);
	free(sample);
	free(real);
	init_args_free(&a);
	return rc;
}
