/*
 * `tegami user add|del|list`: the accounts in STATE_DIR/users. Passwords
 * come from a terminal without echo or one line of stdin, are hashed with
 * yescrypt and wiped; the plaintext is never written or logged.
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
	    "       tegami [-c CONF] user list\n");
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

static int
user_add(const struct tegami_config *cfg, const char *users,
    const char *aliases, int argc, char **argv)
{
	/* One byte more than allowed, to tell "too long" from "just fits". */
	char pw[ACCOUNTS_PASSWORD_MAX + 2], again[ACCOUNTS_PASSWORD_MAX + 2];
	char addr[ACCOUNT_ADDRESS_MAX + 1], err[1024];
	struct account_table *t;
	const char *address = NULL, *why;
	bool from_stdin = false, is_alias;
	int i, rc;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			from_stdin = true;
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
	if (!config_is_local_domain(cfg, strchr(addr, '@') + 1)) {
		fprintf(stderr, "tegami: %s: the domain is not one of the "
		    "domains in %s\n", addr, cfg->path);
		return 1;
	}
	if (accounts_load(NULL, aliases, false, &t, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	is_alias = accounts_find_alias(t, addr) != NULL;
	accounts_free(&t);
	if (is_alias) {
		fprintf(stderr, "tegami: %s is an alias; del the alias "
		    "first\n", addr);
		return 1;
	}
	rc = get_password(from_stdin, pw, again, sizeof(pw));
	if (rc == 0 && accounts_user_add(users, addr, pw, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		rc = 1;
	}
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(again, sizeof(again));
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
user_list(const char *users)
{
	struct account_table *t;
	const char **names;
	char err[1024];
	size_t i;

	if (accounts_load(users, NULL, false, &t, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	names = calloc(t->n_accounts + 1, sizeof(*names));
	if (names == NULL) {
		fprintf(stderr, "tegami: out of memory\n");
		accounts_free(&t);
		return 1;
	}
	for (i = 0; i < t->n_accounts; i++)
		names[i] = t->accounts[i].address;
	qsort(names, t->n_accounts, sizeof(*names), cmp_str);
	for (i = 0; i < t->n_accounts; i++)
		printf("%s\n", names[i]);
	free(names);
	accounts_free(&t);
	return cli_stdout_done();
}

int
cli_user(const struct tegami_config *cfg, int argc, char **argv)
{
	char users[PATH_MAX], aliases[PATH_MAX], err[1024];

	if (argc < 2)
		return user_usage();
	if (cli_account_paths(cfg, users, aliases) != 0)
		return 1;
	if (strcmp(argv[1], "add") == 0)
		return user_add(cfg, users, aliases, argc - 2, argv + 2);
	if (strcmp(argv[1], "del") == 0) {
		if (argc != 3 || argv[2][0] == '-')
			return user_usage();
		if (accounts_user_del(users, argv[2], err, sizeof(err)) == -1) {
			fprintf(stderr, "tegami: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 2)
			return user_usage();
		return user_list(users);
	}
	return user_usage();
}
