/*
 * `tegami user add|del|passwd|lock|unlock|send-as|import|list`: the
 * accounts in STATE_DIR/users. Passwords come from a terminal without echo
 * or one line of stdin, are hashed with yescrypt and wiped; the plaintext
 * is never written or logged. Imports take Dovecot passwd-files.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/accounts.h"
#include "cli/cli.h"
#include "core/config.h"

static int
user_usage(void)
{
	fprintf(stderr,
	    "usage: tegami [-c CONF] user add ADDRESS [--password-stdin]\n"
	    "       tegami [-c CONF] user del ADDRESS\n"
	    "       tegami [-c CONF] user passwd ADDRESS [--password-stdin]\n"
	    "       tegami [-c CONF] user lock ADDRESS\n"
	    "       tegami [-c CONF] user unlock ADDRESS\n"
	    "       tegami [-c CONF] user send-as ADDRESS [PATTERN...]\n"
	    "       tegami [-c CONF] user import FILE [--domain DOMAIN]\n"
	    "       tegami [-c CONF] user list\n"
	    "PATTERN: an address, @DOMAIN or *; none clears. FILE: a Dovecot "
	    "passwd-file.\n");
	return 2;
}

/*
 * Reads one line from fd byte by byte: stdio would keep a copy of the
 * password in its buffer, and must not read past the line either.
 * Strips the CR/LF line end. Returns 0, or -1 with a reason in *why_r.
 */
static int
read_password_line(int fd, char *buf, size_t size, const char **why_r)
{
	size_t n = 0;
	ssize_t r;
	char c;
	int rc = -1;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			*why_r = strerror(errno);
			goto done;
		}
		if (r == 0 || c == '\n')
			break;
		if (c == '\0') {
			*why_r = "password contains a NUL byte";
			goto done;
		}
		if (n + 1 >= size) {
			*why_r = "password too long";
			goto done;
		}
		buf[n++] = c;
	}
	while (n > 0 && buf[n - 1] == '\r')
		n--;
	rc = 0;
 done:
	buf[n] = '\0';
	explicit_bzero(&c, sizeof(c));
	return rc;
}

/* Prompts on stderr and reads from the terminal on stdin, echo off. */
static int
prompt_password(const char *prompt, char *buf, size_t size,
    const char **why_r)
{
	struct termios saved, noecho;
	int rc;

	if (tcgetattr(STDIN_FILENO, &saved) == -1) {
		*why_r = strerror(errno);
		return -1;
	}
	noecho = saved;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ECHONL;
	/* Echo off before the prompt: nothing typed after it can show, and
	 * TCSAFLUSH drops what was typed ahead of it. */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) == -1) {
		*why_r = strerror(errno);
		return -1;
	}
	fputs(prompt, stderr);
	fflush(stderr);
	rc = read_password_line(STDIN_FILENO, buf, size, why_r);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	return rc;
}

static int
get_password(bool from_stdin, char *pw, char *again, size_t size)
{
	const char *why = NULL;

	if (from_stdin) {
		if (read_password_line(STDIN_FILENO, pw, size, &why) == -1) {
			fprintf(stderr, "tegami: reading the password from "
			    "stdin: %s\n", why);
			return 1;
		}
	} else if (!isatty(STDIN_FILENO)) {
		fprintf(stderr, "tegami: stdin is not a terminal; give the "
		    "password on stdin with --password-stdin\n");
		return 2;
	} else {
		if (prompt_password("Password: ", pw, size, &why) == -1 ||
		    prompt_password("Password again: ", again, size,
		    &why) == -1) {
			fprintf(stderr, "tegami: reading the password: %s\n",
			    why);
			return 1;
		}
		if (strcmp(pw, again) != 0) {
			fprintf(stderr, "tegami: the passwords do not match\n");
			return 1;
		}
	}
	if (pw[0] == '\0') {
		fprintf(stderr, "tegami: empty password refused\n");
		return 1;
	}
	return 0;
}

/*
 * "ADDRESS [--password-stdin]" in either order; the address checked and
 * lowercased into addr. 0, 1 (bad address, reported) or 2 (usage).
 */
static int
address_and_password_args(int argc, char **argv, char *addr,
    bool *from_stdin_r)
{
	const char *address = NULL, *why;
	int i;

	*from_stdin_r = false;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			*from_stdin_r = true;
		else if (argv[i][0] == '-' || address != NULL)
			return user_usage();
		else
			address = argv[i];
	}
	if (address == NULL)
		return user_usage();
	if ((why = accounts_check_address(address, addr)) != NULL) {
		fprintf(stderr, "tegami: %s: %s\n", address, why);
		return 1;
	}
	return 0;
}

/*
 * Reads the password (twice on a terminal) and hands it to store
 * (accounts_user_add or accounts_user_set_password); wipes every copy.
 */
static int
store_password(bool from_stdin, int (*store)(const char *, const char *,
    const char *, char *, size_t), const char *users, const char *addr)
{
	/* One byte more than allowed, to tell "too long" from "just fits". */
	char pw[ACCOUNTS_PASSWORD_MAX + 2], again[ACCOUNTS_PASSWORD_MAX + 2];
	char err[1024];
	int rc;

	rc = get_password(from_stdin, pw, again, sizeof(pw));
	if (rc == 0 && store(users, addr, pw, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		rc = 1;
	}
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(again, sizeof(again));
	return rc;
}

/* Whether users has the account (-1 with a message if unreadable). */
static int
has_user(const char *users, const char *addr, bool *locked_r)
{
	struct account_table *t;
	const struct account *a;
	char err[1024];
	int found;

	if (accounts_load(users, NULL, false, &t, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return -1;
	}
	a = accounts_find_user(t, addr);
	found = a != NULL;
	*locked_r = a != NULL && a->locked;
	accounts_free(&t);
	return found;
}

/*
 * What `user add` and `user import` require of a new account's address: a
 * local domain, and not an alias. where prefixes the messages.
 */
static bool
new_address_ok(const struct tegami_config *cfg,
    const struct account_table *aliases, const char *where, const char *addr)
{
	if (!config_is_local_domain(cfg, strchr(addr, '@') + 1)) {
		fprintf(stderr, "tegami: %s%s: the domain is not one of the "
		    "domains in %s\n", where, addr, cfg->path);
		return false;
	}
	if (accounts_find_alias(aliases, addr) != NULL) {
		fprintf(stderr, "tegami: %s%s is an alias; del the alias "
		    "first\n", where, addr);
		return false;
	}
	return true;
}

static int
user_add(const struct tegami_config *cfg, const char *users,
    const char *aliases, int argc, char **argv)
{
	char addr[ACCOUNT_ADDRESS_MAX + 1], err[1024];
	struct account_table *t;
	bool from_stdin, ok;
	int rc;

	if ((rc = address_and_password_args(argc, argv, addr,
	    &from_stdin)) != 0)
		return rc;
	if (accounts_load(NULL, aliases, false, &t, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	ok = new_address_ok(cfg, t, "", addr);
	accounts_free(&t);
	if (!ok)
		return 1;
	return store_password(from_stdin, accounts_user_add, users, addr);
}

static int
user_passwd(const char *users, int argc, char **argv)
{
	char addr[ACCOUNT_ADDRESS_MAX + 1];
	bool from_stdin, locked;
	int rc;

	if ((rc = address_and_password_args(argc, argv, addr,
	    &from_stdin)) != 0)
		return rc;
	/* Ask for no password for an account that is not there. */
	if ((rc = has_user(users, addr, &locked)) != 1) {
		if (rc == 0)
			fprintf(stderr, "tegami: no such user: %s\n", addr);
		return 1;
	}
	rc = store_password(from_stdin, accounts_user_set_password, users,
	    addr);
	if (rc == 0 && has_user(users, addr, &locked) == 1 && locked)
		fprintf(stderr, "tegami: %s stays locked; `tegami user unlock "
		    "%s` lets it log in\n", addr, addr);
	return rc;
}

/* Checks every imported address as `user add` would: a local domain, and
 * not an alias. */
static int
check_import(const struct tegami_config *cfg, const char *aliases,
    const char *file, const char *domain)
{
	struct account_table *imp, *t;
	char err[1024], where[PATH_MAX + 3];
	size_t i;
	int rc = 0;

	if (accounts_import_load(file, domain, &imp, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	if (accounts_load(NULL, aliases, false, &t, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		accounts_free(&imp);
		return 1;
	}
	snprintf(where, sizeof(where), "%s: ", file);
	for (i = 0; i < imp->n_accounts; i++)
		if (!new_address_ok(cfg, t, where, imp->accounts[i].address))
			rc = 1;
	accounts_free(&t);
	accounts_free(&imp);
	return rc;
}

static int
user_import(const struct tegami_config *cfg, const char *users,
    const char *aliases, int argc, char **argv)
{
	const char *file = NULL, *domain = NULL;
	char err[1024];
	size_t n;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc &&
		    domain == NULL)
			domain = argv[++i];
		else if (argv[i][0] == '-' || file != NULL)
			return user_usage();
		else
			file = argv[i];
	}
	if (file == NULL)
		return user_usage();
	if (check_import(cfg, aliases, file, domain) != 0)
		return 1;
	if (accounts_user_import(users, file, domain, &n, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	printf("imported %zu user%s from %s\n", n, n == 1 ? "" : "s", file);
	return cli_stdout_done();
}

static int
cmp_account(const void *a, const void *b)
{
	return strcmp((*(const struct account *const *)a)->address,
	    (*(const struct account *const *)b)->address);
}

/* One line an account: the address, then "locked", "no-password" and
 * "send-as=P,P" when they apply. Hashes are read only to tell whether
 * there is one; accounts_free wipes them. */
static int
user_list(const char *users)
{
	const struct account **list, *a;
	struct account_table *t;
	char err[1024];
	size_t i, j;

	if (accounts_load(users, NULL, true, &t, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	list = calloc(t->n_accounts + 1, sizeof(*list));
	if (list == NULL) {
		fprintf(stderr, "tegami: out of memory\n");
		accounts_free(&t);
		return 1;
	}
	for (i = 0; i < t->n_accounts; i++)
		list[i] = &t->accounts[i];
	qsort(list, t->n_accounts, sizeof(*list), cmp_account);
	for (i = 0; i < t->n_accounts; i++) {
		a = list[i];
		printf("%s", a->address);
		if (a->locked)
			printf(" locked");
		if (a->hash[0] == '\0')
			printf(" no-password");
		for (j = 0; j < a->n_send_as; j++)
			printf("%s%s", j == 0 ? " send-as=" : ",",
			    a->send_as[j]);
		printf("\n");
	}
	free(list);
	accounts_free(&t);
	return cli_stdout_done();
}

static int
report(int rc, const char *err)
{
	if (rc == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	return 0;
}

int
cli_user(const struct tegami_config *cfg, int argc, char **argv)
{
	char users[PATH_MAX], aliases[PATH_MAX], err[1024];
	int i;

	if (argc < 2)
		return user_usage();
	if (cli_account_paths(cfg, users, aliases) != 0)
		return 1;
	if (strcmp(argv[1], "add") == 0)
		return user_add(cfg, users, aliases, argc - 2, argv + 2);
	if (strcmp(argv[1], "passwd") == 0)
		return user_passwd(users, argc - 2, argv + 2);
	if (strcmp(argv[1], "import") == 0)
		return user_import(cfg, users, aliases, argc - 2, argv + 2);
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 2)
			return user_usage();
		return user_list(users);
	}
	if (strcmp(argv[1], "send-as") == 0) {
		if (argc < 3)
			return user_usage();
		for (i = 2; i < argc; i++)
			if (argv[i][0] == '-')
				return user_usage();
		return report(accounts_user_set_send_as(users, argv[2],
		    argv + 3, (size_t)(argc - 3), err, sizeof(err)), err);
	}
	/* The rest take exactly one ADDRESS. */
	if (argc != 3 || argv[2][0] == '-')
		return user_usage();
	if (strcmp(argv[1], "del") == 0)
		return report(accounts_user_del(users, argv[2], err,
		    sizeof(err)), err);
	if (strcmp(argv[1], "lock") == 0 || strcmp(argv[1], "unlock") == 0)
		return report(accounts_user_lock(users, argv[2],
		    argv[1][0] == 'l', err, sizeof(err)), err);
	return user_usage();
}
