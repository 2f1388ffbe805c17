/*
 * Tests of the users and aliases files (src/auth/accounts.c) and of the
 * `tegami user` / `tegami alias` subcommands run on a temporary state
 * directory, including concurrent adds from forked processes.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <pty.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/accounts.h"
#include "cli/cli.h"
#include "core/config.h"
#include "unit.h"

#define HASH "$y$j9T$abcdefghijklmnop$0123456789ABCDEFabcdefghijklmnopqrstuvwxyz."

static char tmpdir[256];

static void
make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tegami-acct-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void
remove_tmpdir(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Reads a whole small file into a static buffer; "" when missing. */
static const char *
read_text(const char *path)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f == NULL)
		return buf;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
parse_users(const char *text, struct account_table **t, char *err,
    size_t errsize)
{
	return accounts_parse("users", text, strlen(text), NULL, NULL, 0, true,
	    t, err, errsize);
}

static int
parse_aliases(const char *text, struct account_table **t, char *err,
    size_t errsize)
{
	return accounts_parse(NULL, NULL, 0, "aliases", text, strlen(text),
	    false, t, err, errsize);
}

/* Parses users text that must fail and returns the error message. */
static const char *
users_error(const char *text)
{
	static char err[512];
	struct account_table *t = NULL;

	err[0] = '\0';
	if (parse_users(text, &t, err, sizeof(err)) == 0) {
		accounts_free(&t);
		return "(parsed)";
	}
	CHECK(t == NULL);
	return err;
}

static const char *
aliases_error(const char *text)
{
	static char err[512];
	struct account_table *t = NULL;

	err[0] = '\0';
	if (parse_aliases(text, &t, err, sizeof(err)) == 0) {
		accounts_free(&t);
		return "(parsed)";
	}
	return err;
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
test_check_address(void)
{
	char out[ACCOUNT_ADDRESS_MAX + 1], buf[512];
	static const char *bad[] = {
		"", "alice", "@example.test", "alice@", "a@b@example.test",
		".alice@example.test", "alice.@example.test",
		"al..ice@example.test", "alice+tag@example.test",
		"v%ext.test@example.test", "ext.test!v@example.test",
		"a/b@example.test", "../x@example.test", "#a@example.test",
		"a b@example.test", "a:b@example.test", "a,b@example.test",
		"\"a\"@example.test", "a\x01@example.test",
		"j\xc3\xb6hn@example.test", "alice@-example.test",
		"alice@example-.test", "alice@example..test",
		"alice@example.test.", "alice@.example.test",
		"alice@[192.0.2.1]", "alice@exa_mple.test",
		"alice@example.test:x",
	};
	size_t i;

	CHECK(accounts_check_address("alice@example.test", out) == NULL);
	CHECK_STR(out, "alice@example.test");
	CHECK(accounts_check_address("Mixed.Case@LOCAL.Test", out) == NULL);
	CHECK_STR(out, "mixed.case@local.test");
	CHECK(accounts_check_address("o'brien_x-y=z{}~^`|&*?$@a-b.c9", out) ==
	    NULL);
	CHECK(accounts_check_address("a@localhost", out) == NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = accounts_check_address(bad[i], out);

		if (why == NULL)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		CHECK(why != NULL);
	}
	/* Targets may carry a +tag, nothing else changes. */
	CHECK(accounts_check_target("Bob+Lists@Example.NET", out) == NULL);
	CHECK_STR(out, "bob+lists@example.net");
	CHECK(accounts_check_target("v%ext.test@example.test", out) != NULL);
	CHECK(accounts_check_target("a!b@example.test", out) != NULL);

	/* Local part: 64 is the limit. */
	memset(buf, 'l', 64);
	snprintf(buf + 64, sizeof(buf) - 64, "@example.test");
	CHECK(accounts_check_address(buf, out) == NULL);
	memset(buf, 'l', 65);
	snprintf(buf + 65, sizeof(buf) - 65, "@example.test");
	CHECK_STR(accounts_check_address(buf, out),
	    "local part longer than 64 characters");

	/* Domain labels: 63 is the limit. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "a@", 2);
	memset(buf + 2, 'd', 63);
	memcpy(buf + 65, ".test", 6);
	CHECK(accounts_check_address(buf, out) == NULL);
	memset(buf + 2, 'd', 64);
	memcpy(buf + 66, ".test", 6);
	CHECK_STR(accounts_check_address(buf, out),
	    "domain label longer than 63 characters");

	/* Whole address: 64 + 1 + 255 = 320 fits, 321 does not. */
	memset(buf, 0, sizeof(buf));
	memset(buf, 'l', 64);
	buf[64] = '@';
	for (i = 0; i < 255; i++)
		buf[65 + i] = (i % 50 == 49) ? '.' : 'd';
	CHECK(strlen(buf) == 320);
	CHECK(accounts_check_address(buf, out) == NULL);
	CHECK(strcmp(out, buf) == 0);
	buf[320] = 'd';
	CHECK_STR(accounts_check_address(buf, out),
	    "address longer than 320 characters");
	/* A domain over 255 with a short local part. */
	memset(buf, 0, sizeof(buf));
	buf[0] = 'a';
	buf[1] = '@';
	for (i = 0; i < 256; i++)
		buf[2 + i] = (i % 50 == 49) ? '.' : 'd';
	CHECK_STR(accounts_check_address(buf, out),
	    "domain longer than 255 characters");
}

static void
test_parse_users(void)
{
	const char *text =
	    "# tegami users\n"
	    "\n"
	    "alice@example.test:" HASH "\n"
	    "   # indented comment\n"
	    "Bob@Example.TEST:$6$salt$xyz\r\n"
	    "  carol@other.test  :  $y$abc  \n"
	    "\t\n"
	    "dave@example.test:$2b$05$abc";	/* no final newline */
	struct account_table *t = NULL;
	const struct account *a;
	char err[256];

	CHECK(parse_users(text, &t, err, sizeof(err)) == 0);
	if (t == NULL)
		return;
	CHECK(t->n_accounts == 4);
	CHECK(t->n_aliases == 0);
	a = accounts_find_user(t, "alice@example.test");
	CHECK(a != NULL && strcmp(a->hash, HASH) == 0);
	a = accounts_find_user(t, "bob@example.test");
	CHECK(a != NULL && strcmp(a->hash, "$6$salt$xyz") == 0);
	a = accounts_find_user(t, "carol@other.test");
	CHECK(a != NULL && strcmp(a->hash, "$y$abc") == 0);
	a = accounts_find_user(t, "dave@example.test");
	CHECK(a != NULL && strcmp(a->hash, "$2b$05$abc") == 0);
	/* Lookups are exact: the caller lowercases. */
	CHECK(accounts_find_user(t, "Bob@Example.TEST") == NULL);
	CHECK(accounts_find_user(t, "nobody@example.test") == NULL);
	CHECK(accounts_find_user(t, "") == NULL);
	CHECK(accounts_find_alias(t, "alice@example.test") == NULL);
	accounts_free(&t);
	CHECK(t == NULL);
	accounts_free(&t);	/* NULL is allowed */

	/* Without hashes: same accounts, no hash in memory. */
	CHECK(accounts_parse("users", text, strlen(text), NULL, NULL, 0, false,
	    &t, err, sizeof(err)) == 0);
	if (t == NULL)
		return;
	CHECK(t->n_accounts == 4);
	a = accounts_find_user(t, "alice@example.test");
	CHECK(a != NULL && a->hash == NULL);
	accounts_free(&t);

	CHECK(accounts_find_user(NULL, "alice@example.test") == NULL);
	CHECK(accounts_find_alias(NULL, "alice@example.test") == NULL);

	/* Empty and comment-only texts. */
	CHECK(parse_users("", &t, err, sizeof(err)) == 0);
	CHECK(t != NULL && t->n_accounts == 0);
	CHECK(accounts_find_user(t, "alice@example.test") == NULL);
	accounts_free(&t);
	CHECK(parse_users("# x\n\n#y", &t, err, sizeof(err)) == 0);
	CHECK(t != NULL && t->n_accounts == 0);
	accounts_free(&t);
}

static void
test_users_errors(void)
{
	char text[8192];

	CHECK_STR(users_error("alice@example.test\n"),
	    "users:1: missing ':' between address and password hash");
	CHECK_STR(users_error("\n\nalice@example.test:secret\n"),
	    "users:3: password hash is not a crypt(3) hash (no leading '$')");
	CHECK_STR(users_error("alice@example.test:$y$a:b\n"),
	    "users:1: unknown option \"b\" (only send_as=PATTERN)");
	CHECK_STR(users_error("alice@example.test:$y$a b\n"),
	    "users:1: password hash contains ':', white space or a control "
	    "character");
	CHECK_STR(users_error("alice@example.test:$y$a\x7f\n"),
	    "users:1: password hash contains ':', white space or a control "
	    "character");
	CHECK_STR(users_error(":$y$abc\n"), "users:1: empty address");
	CHECK_STR(users_error("alice:$y$abc\n"),
	    "users:1: address has no '@domain'");
	CHECK_STR(users_error("alice+x@example.test:$y$abc\n"),
	    "users:1: '+' is reserved for plus-addressing");
	CHECK(starts_with(users_error("a%b@example.test:$y$abc\n"),
	    "users:1: local part has a character"));
	CHECK_STR(users_error(
	    "alice@example.test:$y$a\n"
	    "bob@example.test:$y$b\n"
	    "# comment\n"
	    "ALICE@example.test:$y$c\n"),
	    "users:4: duplicate user alice@example.test (first on line 1)");

	/* NUL bytes, anywhere, are errors, also in comments. */
	{
		static const char nul1[] = "alice@example.test:$y$a\0b\n";
		static const char nul2[] = "# a\0b\n";
		struct account_table *t = NULL;
		char err[256];

		CHECK(accounts_parse("users", nul1, sizeof(nul1) - 1, NULL,
		    NULL, 0, true, &t, err, sizeof(err)) == -1);
		CHECK_STR(err, "users:1: NUL byte");
		CHECK(accounts_parse("users", nul2, sizeof(nul2) - 1, NULL,
		    NULL, 0, true, &t, err, sizeof(err)) == -1);
		CHECK_STR(err, "users:1: NUL byte");
	}

	/* Hash length: 255 fits ACCOUNT_HASH_MAX with its NUL, 256 not. */
	memset(text, 0, sizeof(text));
	strcpy(text, "a@example.test:$y$");
	memset(text + strlen(text), 'h', 252);
	CHECK_STR(users_error(text), "(parsed)");
	strcat(text, "h");
	CHECK_STR(users_error(text),
	    "users:1: password hash longer than 255 characters");

	/* Line length: 4096 bytes (without the newline) is the limit. */
	memset(text, 0, sizeof(text));
	strcpy(text, "a@example.test:$y$abc");
	memset(text + strlen(text), ' ', 4096 - strlen(text));
	CHECK(strlen(text) == 4096);
	strcat(text, "\n");
	CHECK_STR(users_error(text), "(parsed)");
	text[4096] = ' ';
	text[4097] = '\n';
	CHECK_STR(users_error(text), "users:1: line longer than 4096 bytes");
	memset(text, '#', 4097);
	text[4097] = '\0';
	CHECK_STR(users_error(text), "users:1: line longer than 4096 bytes");
	text[4096] = '\0';
	CHECK_STR(users_error(text), "(parsed)");
}

static void
test_parse_aliases(void)
{
	const char *text =
	    "# aliases\n"
	    "postmaster@example.test: alice@example.test\n"
	    "Staff@Example.test: Alice@example.test,bob@example.test , "
	    "  carol+lists@Other.Test\tdave@remote.example\n"
	    "\n"
	    "team@example.test:staff@example.test,,";
	struct account_table *t = NULL;
	const struct alias *al;
	char err[256];

	CHECK(parse_aliases(text, &t, err, sizeof(err)) == 0);
	if (t == NULL)
		return;
	CHECK(t->n_aliases == 3);
	CHECK(t->n_accounts == 0);
	al = accounts_find_alias(t, "staff@example.test");
	CHECK(al != NULL && al->n_targets == 4);
	if (al != NULL && al->n_targets == 4) {
		CHECK_STR(al->targets[0], "alice@example.test");
		CHECK_STR(al->targets[1], "bob@example.test");
		CHECK_STR(al->targets[2], "carol+lists@other.test");
		CHECK_STR(al->targets[3], "dave@remote.example");
	}
	al = accounts_find_alias(t, "team@example.test");
	CHECK(al != NULL && al->n_targets == 1);
	al = accounts_find_alias(t, "postmaster@example.test");
	CHECK(al != NULL && al->n_targets == 1 &&
	    strcmp(al->targets[0], "alice@example.test") == 0);
	CHECK(accounts_find_alias(t, "nobody@example.test") == NULL);
	CHECK(accounts_find_user(t, "staff@example.test") == NULL);
	accounts_free(&t);
}

static void
test_aliases_errors(void)
{
	char *text;
	size_t i, len;

	CHECK_STR(aliases_error("staff@example.test alice@example.test\n"),
	    "aliases:1: missing ':' after the alias");
	CHECK_STR(aliases_error("#\nstaff@example.test:\n"),
	    "aliases:2: alias has no targets");
	CHECK_STR(aliases_error("staff@example.test: , ,\n"),
	    "aliases:1: alias has no targets");
	CHECK_STR(aliases_error("staff@example.test: alice@example.test, bob\n"),
	    "aliases:1: target 2: address has no '@domain'");
	CHECK_STR(aliases_error("staff@example.test: v%x@example.test\n"),
	    "aliases:1: target 1: local part has a character that is not "
	    "allowed (letters, digits and !#$&'*+-=?^_`{|}~ without '%', '!', "
	    "'/', '#')");
	CHECK_STR(aliases_error("st+aff@example.test: a@example.test\n"),
	    "aliases:1: '+' is reserved for plus-addressing");
	CHECK_STR(aliases_error(
	    "staff@example.test: a@example.test\n"
	    "x@example.test: a@example.test\n"
	    "STAFF@example.test: b@example.test\n"),
	    "aliases:3: duplicate alias staff@example.test (first on line 1)");

	/* ALIAS_TARGETS_MAX targets fit on a line, one more does not. */
	len = 64 + (size_t)(ALIAS_TARGETS_MAX + 1) * 32;
	text = malloc(len);
	if (text == NULL)
		return;
	strcpy(text, "big@example.test:");
	for (i = 0; i < ALIAS_TARGETS_MAX; i++)
		snprintf(text + strlen(text), len - strlen(text),
		    " t%zu@example.test", i);
	CHECK_STR(aliases_error(text), "(parsed)");
	strcat(text, ", one.more@example.test");
	CHECK_STR(aliases_error(text), "aliases:1: more than 1000 targets");
	free(text);

	/* The longest legal line fits the aliases line limit. */
	CHECK(ACCOUNTS_ALIASES_LINE_MAX >= ACCOUNT_ADDRESS_MAX + 2 +
	    ALIAS_TARGETS_MAX * (ACCOUNT_ADDRESS_MAX + 2));
	text = malloc(ACCOUNTS_ALIASES_LINE_MAX + 16);
	if (text == NULL)
		return;
	memset(text, ' ', ACCOUNTS_ALIASES_LINE_MAX + 1);
	memcpy(text, "a@example.test: b@example.test", 30);
	text[ACCOUNTS_ALIASES_LINE_MAX] = '\0';
	CHECK_STR(aliases_error(text), "(parsed)");
	text[ACCOUNTS_ALIASES_LINE_MAX] = ' ';
	text[ACCOUNTS_ALIASES_LINE_MAX + 1] = '\0';
	CHECK(starts_with(aliases_error(text), "aliases:1: line longer than"));
	free(text);
}

static void
test_load_files(void)
{
	char users[512], aliases[512], err[256];
	struct account_table *t = NULL;

	make_tmpdir();
	snprintf(users, sizeof(users), "%s/users", tmpdir);
	snprintf(aliases, sizeof(aliases), "%s/aliases", tmpdir);

	/* Missing files are empty tables. */
	CHECK(accounts_load(users, aliases, true, &t, err, sizeof(err)) == 0);
	CHECK(t != NULL && t->n_accounts == 0 && t->n_aliases == 0);
	accounts_free(&t);
	CHECK(accounts_load(NULL, NULL, true, &t, err, sizeof(err)) == 0);
	accounts_free(&t);

	write_file(users, "a@example.test:$y$x\n", 20);
	write_file(aliases, "s@example.test: a@example.test\n", 31);
	CHECK(accounts_load(users, aliases, true, &t, err, sizeof(err)) == 0);
	CHECK(t != NULL && t->n_accounts == 1 && t->n_aliases == 1);
	accounts_free(&t);

	/* Errors name the path given. */
	write_file(aliases, "\nbad\n", 5);
	CHECK(accounts_load(users, aliases, true, &t, err, sizeof(err)) == -1);
	CHECK(t == NULL);
	{
		char want[600];

		snprintf(want, sizeof(want), "%s:2: missing ':' after the alias",
		    aliases);
		CHECK_STR(err, want);
	}
	/* A directory is not a file. */
	CHECK(accounts_load(tmpdir, NULL, true, &t, err, sizeof(err)) == -1);
	CHECK(strstr(err, "not a regular file") != NULL);
	remove_tmpdir();
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_load_100k(void)
{
	enum { N = 100000 };
	char path[512], addr[64], err[256];
	struct account_table *t = NULL;
	const struct account *a;
	double t0, t_load, t_lookup;
	FILE *f;
	size_t i, found = 0;

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/users", tmpdir);
	f = fopen(path, "w");
	if (f == NULL)
		return;
	for (i = 0; i < N; i++)
		fprintf(f, "user%zu@example.test:$y$j9T$salt%zu$%064zu\n", i,
		    i, i);
	fclose(f);

	t0 = now_seconds();
	CHECK(accounts_load(path, NULL, true, &t, err, sizeof(err)) == 0);
	t_load = now_seconds() - t0;
	if (t == NULL) {
		remove_tmpdir();
		return;
	}
	CHECK(t->n_accounts == N);
	t0 = now_seconds();
	for (i = 0; i < N; i++) {
		snprintf(addr, sizeof(addr), "user%zu@example.test", i);
		a = accounts_find_user(t, addr);
		if (a != NULL && strcmp(a->address, addr) == 0)
			found++;
	}
	for (i = 0; i < N; i++) {
		snprintf(addr, sizeof(addr), "nobody%zu@example.test", i);
		if (accounts_find_user(t, addr) != NULL)
			found++;
	}
	t_lookup = now_seconds() - t0;
	CHECK(found == N);
	a = accounts_find_user(t, "user99999@example.test");
	CHECK(a != NULL && strstr(a->hash, "$salt99999$") != NULL);
	/* An index, not a scan: 200,000 lookups in well under a second
	 * even under sanitizers (a linear scan would take minutes). */
	CHECK(t_lookup < 2.0);
	CHECK(t_load < 10.0);
	printf("100k users: load %.3f s, 200k lookups %.3f s\n", t_load,
	    t_lookup);
	accounts_free(&t);
	remove_tmpdir();
}

static void
test_hash_password(void)
{
	char h1[ACCOUNT_HASH_MAX], h2[ACCOUNT_HASH_MAX], line[512], err[256];
	struct crypt_data *cd;
	struct account_table *t = NULL;
	const char *v;

	CHECK(accounts_hash_password("correct horse", h1, sizeof(h1)) == 0);
	CHECK(accounts_hash_password("correct horse", h2, sizeof(h2)) == 0);
	CHECK(starts_with(h1, "$y$"));
	CHECK(strcmp(h1, h2) != 0);	/* fresh salt each time */
	CHECK(strchr(h1, ':') == NULL && strchr(h1, ' ') == NULL);
	CHECK(strstr(h1, "correct") == NULL);
	cd = calloc(1, sizeof(*cd));
	if (cd != NULL) {
		v = crypt_rn("correct horse", h1, cd, sizeof(*cd));
		CHECK(v != NULL && strcmp(v, h1) == 0);
		v = crypt_rn("wrong horse", h1, cd, sizeof(*cd));
		CHECK(v == NULL || strcmp(v, h1) != 0);
		free(cd);
	}
	/* The hash is accepted by the users file parser. */
	snprintf(line, sizeof(line), "a@example.test:%s\n", h1);
	CHECK(parse_users(line, &t, err, sizeof(err)) == 0);
	accounts_free(&t);
	/* Too small an output buffer fails instead of truncating. */
	CHECK(accounts_hash_password("x", h1, 10) == -1);
}

/* The result of one CLI run in a child process. */
struct run {
	int status;
	char out[8192], err[8192];
};

static struct tegami_config test_cfg;

static void
setup_cfg(void)
{
	static char *domains[] = { "example.test", "other.test" };

	memset(&test_cfg, 0, sizeof(test_cfg));
	test_cfg.path = "/etc/tegami-test.conf";
	test_cfg.state_dir = tmpdir;
	test_cfg.domains[0] = domains[0];
	test_cfg.domains[1] = domains[1];
	test_cfg.n_domains = 2;
	test_cfg.alias_depth_max = 10;
	test_cfg.recipient_limit = 1000;
}

static void
slurp_fd(int fd, char *buf, size_t size)
{
	ssize_t n;
	size_t len = 0;

	lseek(fd, 0, SEEK_SET);
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

/*
 * Runs cli_user (alias false) or cli_alias in a child with stdin from a
 * pipe holding stdin_text (NULL: /dev/null), capturing stdout and stderr.
 */
static void
run_cli(struct run *r, bool alias, const char *stdin_text, int argc,
    char **argv)
{
	char outpath[512], errpath[512];
	int outfd, errfd, p[2], st;
	pid_t pid;

	snprintf(outpath, sizeof(outpath), "%s/.out.%ld", tmpdir,
	    (long)getpid());
	snprintf(errpath, sizeof(errpath), "%s/.err.%ld", tmpdir,
	    (long)getpid());
	outfd = open(outpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	errfd = open(errpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (outfd == -1 || errfd == -1 || pipe(p) == -1) {
		perror("run_cli");
		exit(1);
	}
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(p[1]);
		dup2(p[0], 0);
		dup2(outfd, 1);
		dup2(errfd, 2);
		_exit(alias ? cli_alias(&test_cfg, argc, argv) :
		    cli_user(&test_cfg, argc, argv));
	}
	close(p[0]);
	if (stdin_text != NULL)
		(void)!write(p[1], stdin_text, strlen(stdin_text));
	close(p[1]);
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	slurp_fd(outfd, r->out, sizeof(r->out));
	slurp_fd(errfd, r->err, sizeof(r->err));
	close(outfd);
	close(errfd);
	unlink(outpath);
	unlink(errpath);
}

#define USER(r, stdin_text, ...) do {					\
	char *argv_[] = { "user", __VA_ARGS__, NULL };			\
	run_cli((r), false, (stdin_text),				\
	    (int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_);	\
} while (0)

#define ALIAS(r, ...) do {						\
	char *argv_[] = { "alias", __VA_ARGS__, NULL };			\
	run_cli((r), true, NULL,					\
	    (int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_);	\
} while (0)

static const char *
state_file(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* Only the files that belong there: no temp file left behind. */
static void
check_no_temp_files(void)
{
	char cmd[600];
	FILE *p;
	char line[512];

	snprintf(cmd, sizeof(cmd), "ls -A %s", tmpdir);
	p = popen(cmd, "r");
	if (p == NULL)
		return;
	while (fgets(line, sizeof(line), p) != NULL) {
		if (strstr(line, ".tmp.") != NULL)
			fprintf(stderr, "left behind: %s", line);
		CHECK(strstr(line, ".tmp.") == NULL);
	}
	pclose(p);
}

static bool
hash_matches(const char *users_text, const char *address,
    const char *password)
{
	struct account_table *t = NULL;
	const struct account *a;
	struct crypt_data *cd;
	char err[256];
	const char *v;
	bool ok = false;

	if (parse_users(users_text, &t, err, sizeof(err)) == -1)
		return false;
	a = accounts_find_user(t, address);
	cd = calloc(1, sizeof(*cd));
	if (a != NULL && cd != NULL && starts_with(a->hash, "$y$")) {
		v = crypt_rn(password, a->hash, cd, sizeof(*cd));
		ok = v != NULL && strcmp(v, a->hash) == 0;
	}
	free(cd);
	accounts_free(&t);
	return ok;
}

static void
test_cli_user(void)
{
	struct run r;
	struct stat st;
	char longpw[600];

	make_tmpdir();
	setup_cfg();

	USER(&r, "s3cret\r\n", "add", "Alice@Example.test", "--password-stdin");
	CHECK(r.status == 0);
	CHECK_STR(r.err, "");
	CHECK(stat(state_file("users"), &st) == 0 &&
	    (st.st_mode & 0777) == 0640);
	CHECK(starts_with(read_text(state_file("users")),
	    "alice@example.test:$y$"));
	CHECK(strstr(read_text(state_file("users")), "s3cret") == NULL);
	CHECK(hash_matches(read_text(state_file("users")),
	    "alice@example.test", "s3cret"));

	/* The option may come first; a bare LF line end; no line end. */
	USER(&r, "pw-bob\n", "add", "--password-stdin", "bob@other.test");
	CHECK(r.status == 0);
	USER(&r, "pw carol", "add", "carol@example.test", "--password-stdin");
	CHECK(r.status == 0);
	CHECK(hash_matches(read_text(state_file("users")), "bob@other.test",
	    "pw-bob"));
	CHECK(hash_matches(read_text(state_file("users")),
	    "carol@example.test", "pw carol"));
	/* Only the first line is the password. */
	USER(&r, "first\nsecond\n", "add", "dave@example.test",
	    "--password-stdin");
	CHECK(r.status == 0);
	CHECK(hash_matches(read_text(state_file("users")),
	    "dave@example.test", "first"));

	USER(&r, NULL, "list");
	CHECK(r.status == 0);
	CHECK_STR(r.out, "alice@example.test\nbob@other.test\n"
	    "carol@example.test\ndave@example.test\n");

	USER(&r, "x\n", "add", "ALICE@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: user alice@example.test already exists\n");

	USER(&r, "x\n", "add", "eve@elsewhere.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: eve@elsewhere.test: the domain is not one of "
	    "the domains in /etc/tegami-test.conf\n");

	USER(&r, "x\n", "add", "e+tag@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK(starts_with(r.err, "tegami: e+tag@example.test: "));

	USER(&r, "\n", "add", "eve@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: empty password refused\n");
	USER(&r, "\r\n", "add", "eve@example.test", "--password-stdin");
	CHECK(r.status == 1);
	USER(&r, "", "add", "eve@example.test", "--password-stdin");
	CHECK(r.status == 1);

	/* Without --password-stdin and no terminal: told what to do. */
	USER(&r, "x\n", "add", "eve@example.test");
	CHECK(r.status == 2);
	CHECK(strstr(r.err, "--password-stdin") != NULL);

	/* Password length: ACCOUNTS_PASSWORD_MAX bytes, then one more. */
	memset(longpw, 'p', ACCOUNTS_PASSWORD_MAX);
	strcpy(longpw + ACCOUNTS_PASSWORD_MAX, "\n");
	USER(&r, longpw, "add", "long@example.test", "--password-stdin");
	CHECK(r.status == 0);
	memset(longpw, 'p', ACCOUNTS_PASSWORD_MAX + 1);
	strcpy(longpw + ACCOUNTS_PASSWORD_MAX + 1, "\n");
	USER(&r, longpw, "add", "longer@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: password longer than 511 bytes\n");
	memset(longpw, 'p', 590);
	strcpy(longpw + 590, "\n");
	USER(&r, longpw, "add", "longer@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK(strstr(r.err, "password too long") != NULL);

	/* Usage errors. */
	{
		char *argv0[] = { "user", NULL };

		run_cli(&r, false, NULL, 1, argv0);
		CHECK(r.status == 2);
		CHECK(starts_with(r.err, "usage: tegami"));
	}
	USER(&r, NULL, "frob");
	CHECK(r.status == 2);
	USER(&r, NULL, "add");
	CHECK(r.status == 2);
	USER(&r, NULL, "add", "a@example.test", "b@example.test");
	CHECK(r.status == 2);
	USER(&r, NULL, "add", "a@example.test", "--password");
	CHECK(r.status == 2);
	USER(&r, NULL, "del");
	CHECK(r.status == 2);
	USER(&r, NULL, "del", "a@example.test", "b@example.test");
	CHECK(r.status == 2);
	USER(&r, NULL, "list", "x");
	CHECK(r.status == 2);

	/* del */
	USER(&r, NULL, "del", "Bob@Other.test");
	CHECK(r.status == 0);
	USER(&r, NULL, "del", "bob@other.test");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: no such user: bob@other.test\n");
	USER(&r, NULL, "list");
	CHECK_STR(r.out, "alice@example.test\ncarol@example.test\n"
	    "dave@example.test\nlong@example.test\n");

	/* A user cannot take an alias's address. */
	ALIAS(&r, "add", "staff@example.test", "alice@example.test");
	CHECK(r.status == 0);
	USER(&r, "x\n", "add", "staff@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: staff@example.test is an alias; del the "
	    "alias first\n");

	/* The mode of an existing file is kept. */
	CHECK(chmod(state_file("users"), 0600) == 0);
	USER(&r, "pw\n", "add", "frank@example.test", "--password-stdin");
	CHECK(r.status == 0);
	CHECK(stat(state_file("users"), &st) == 0 &&
	    (st.st_mode & 0777) == 0600);
	check_no_temp_files();

	/* A broken file is not edited; the error names its line. */
	write_file(state_file("users"), "a@example.test:$y$a\nbroken\n", 27);
	USER(&r, "pw\n", "add", "g@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK(strstr(r.err, "/users:2: missing ':'") != NULL);
	CHECK_STR(read_text(state_file("users")),
	    "a@example.test:$y$a\nbroken\n");
	USER(&r, NULL, "list");
	CHECK(r.status == 1);

	/* A state directory that does not exist. */
	test_cfg.state_dir = "/nonexistent/tegami-state";
	USER(&r, "pw\n", "add", "g@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK(strstr(r.err, "No such file or directory") != NULL);
	remove_tmpdir();
}

/*
 * Reads the pty master into buf until want has appeared (true) or 5 s
 * passed or the child closed it (false).
 */
static bool
pty_expect(int fd, char *buf, size_t size, size_t *len, const char *want)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	double deadline = now_seconds() + 5;
	ssize_t n;

	while (want == NULL || strstr(buf, want) == NULL) {
		if (now_seconds() > deadline || *len + 1 >= size)
			return false;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(fd, buf + *len, size - 1 - *len);
		if (n <= 0)	/* EIO once the child has gone */
			return false;
		*len += (size_t)n;
		buf[*len] = '\0';
	}
	return true;
}

/* `user CMD ADDRESS` (add, passwd) on a terminal: two prompts, no echo. */
static int
tty_user(const char *cmd, const char *address, const char *pw1,
    const char *pw2, char *transcript, size_t size)
{
	size_t len = 0;
	int master, st;
	pid_t pid;

	transcript[0] = '\0';
	fflush(NULL);
	pid = forkpty(&master, NULL, NULL, NULL);
	if (pid == -1)
		return -1;
	if (pid == 0) {
		char *argv[] = { "user", (char *)cmd, (char *)address, NULL };

		_exit(cli_user(&test_cfg, 3, argv));
	}
	if (pty_expect(master, transcript, size, &len, "Password: ")) {
		(void)!write(master, pw1, strlen(pw1));
		(void)!write(master, "\n", 1);
		if (pty_expect(master, transcript, size, &len,
		    "Password again: ")) {
			(void)!write(master, pw2, strlen(pw2));
			(void)!write(master, "\n", 1);
		}
	}
	pty_expect(master, transcript, size, &len, NULL);
	close(master);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void
test_cli_user_tty(void)
{
	char transcript[4096];
	struct run r;

	make_tmpdir();
	setup_cfg();
	CHECK(tty_user("add", "tty@example.test", "Tty-Secret-1",
	    "Tty-Secret-1", transcript, sizeof(transcript)) == 0);
	CHECK(strstr(transcript, "Password: ") != NULL);
	CHECK(strstr(transcript, "Password again: ") != NULL);
	/* Never echoed. */
	CHECK(strstr(transcript, "Tty-Secret") == NULL);
	CHECK(hash_matches(read_text(state_file("users")),
	    "tty@example.test", "Tty-Secret-1"));

	CHECK(tty_user("add", "tty2@example.test", "one", "two", transcript,
	    sizeof(transcript)) == 1);
	CHECK(strstr(transcript, "the passwords do not match") != NULL);
	CHECK(tty_user("add", "tty2@example.test", "", "", transcript,
	    sizeof(transcript)) == 1);
	CHECK(strstr(transcript, "empty password refused") != NULL);
	USER(&r, NULL, "list");
	CHECK_STR(r.out, "tty@example.test\n");

	/* passwd prompts the same way. */
	CHECK(tty_user("passwd", "tty@example.test", "Tty-Secret-2",
	    "Tty-Secret-2", transcript, sizeof(transcript)) == 0);
	CHECK(strstr(transcript, "Password again: ") != NULL);
	CHECK(strstr(transcript, "Tty-Secret") == NULL);
	CHECK(hash_matches(read_text(state_file("users")),
	    "tty@example.test", "Tty-Secret-2"));
	CHECK(!hash_matches(read_text(state_file("users")),
	    "tty@example.test", "Tty-Secret-1"));
	CHECK(tty_user("passwd", "tty@example.test", "one", "two", transcript,
	    sizeof(transcript)) == 1);
	CHECK(strstr(transcript, "the passwords do not match") != NULL);
	CHECK(hash_matches(read_text(state_file("users")),
	    "tty@example.test", "Tty-Secret-2"));
	remove_tmpdir();
}

static void
test_edit_keeps_lines(void)
{
	const char *text =
	    "# users of example.test\n"
	    "alice@example.test:$y$a\n"
	    "\n"
	    "  # bob below\n"
	    "bob@example.test:$y$b\n"
	    "carol@example.test:$y$c";	/* no final newline */
	char path[512], err[256];

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/users", tmpdir);
	write_file(path, text, strlen(text));
	CHECK(accounts_user_del(path, "BOB@example.test", err,
	    sizeof(err)) == 0);
	CHECK_STR(read_text(path),
	    "# users of example.test\n"
	    "alice@example.test:$y$a\n"
	    "\n"
	    "  # bob below\n"
	    "carol@example.test:$y$c");
	CHECK(accounts_user_del(path, "carol@example.test", err,
	    sizeof(err)) == 0);
	CHECK_STR(read_text(path),
	    "# users of example.test\n"
	    "alice@example.test:$y$a\n"
	    "\n"
	    "  # bob below\n");
	CHECK(accounts_user_add(path, "dave@example.test", "pw", err,
	    sizeof(err)) == 0);
	CHECK(starts_with(read_text(path),
	    "# users of example.test\n"
	    "alice@example.test:$y$a\n"
	    "\n"
	    "  # bob below\n"
	    "dave@example.test:$y$"));
	CHECK(accounts_user_del(path, "nobody@example.test", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "no such user: nobody@example.test");
	CHECK(accounts_user_add(path, "x@example.test", "", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "empty password refused");
	CHECK(accounts_user_add(path, "bad", "pw", err, sizeof(err)) == -1);
	CHECK_STR(err, "bad address: address has no '@domain'");

	/* Aliases: add appends after a missing final newline. */
	snprintf(path, sizeof(path), "%s/aliases", tmpdir);
	write_file(path, "# list\na@example.test: b@example.test", 37);
	{
		char *targets[] = { "Carol@Example.test", "d+x@remote.test" };
		struct stat st;

		CHECK(accounts_alias_add(path, "staff@example.test", targets, 2,
		    err, sizeof(err)) == 0);
		CHECK_STR(read_text(path), "# list\na@example.test: "
		    "b@example.test\nstaff@example.test: carol@example.test, "
		    "d+x@remote.test\n");
		CHECK(accounts_alias_add(path, "staff@example.test", targets,
		    1, err, sizeof(err)) == -1);
		CHECK_STR(err, "alias staff@example.test already exists; del "
		    "it first");
		CHECK(accounts_alias_add(path, "new@example.test", targets, 0,
		    err, sizeof(err)) == -1);
		CHECK_STR(err, "alias new@example.test: no targets");
		CHECK(accounts_alias_del(path, "a@example.test", err,
		    sizeof(err)) == 0);
		CHECK_STR(read_text(path), "# list\nstaff@example.test: "
		    "carol@example.test, d+x@remote.test\n");
		CHECK(accounts_alias_del(path, "a@example.test", err,
		    sizeof(err)) == -1);
		CHECK_STR(err, "no such alias: a@example.test");
		/* A new aliases file is 0644: it holds no secret. */
		unlink(path);
		CHECK(accounts_alias_add(path, "staff@example.test", targets, 2,
		    err, sizeof(err)) == 0);
		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
	}
	check_no_temp_files();
	remove_tmpdir();
}

static void
test_cli_alias(void)
{
	struct run r;
	char **argv;
	size_t i;

	make_tmpdir();
	setup_cfg();
	USER(&r, "pw\n", "add", "alice@example.test", "--password-stdin");
	CHECK(r.status == 0);

	ALIAS(&r, "add", "Staff@Example.test", "alice@example.test",
	    "Bob+Lists@Remote.test");
	CHECK(r.status == 0);
	CHECK_STR(r.err, "");
	ALIAS(&r, "add", "postmaster@example.test", "staff@example.test");
	CHECK(r.status == 0);
	ALIAS(&r, "add", "abuse@other.test", "postmaster@example.test");
	CHECK(r.status == 0);
	ALIAS(&r, "list");
	CHECK(r.status == 0);
	CHECK_STR(r.out,
	    "abuse@other.test: postmaster@example.test\n"
	    "postmaster@example.test: staff@example.test\n"
	    "staff@example.test: alice@example.test, bob+lists@remote.test\n");

	ALIAS(&r, "add", "staff@example.test", "carol@example.test");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: alias staff@example.test already exists; del "
	    "it first\n");
	ALIAS(&r, "add", "alice@example.test", "carol@example.test");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: alice@example.test is a user; an alias "
	    "cannot have the same address\n");
	ALIAS(&r, "add", "list@remote.test", "alice@example.test");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: list@remote.test: the domain is not one of "
	    "the domains in /etc/tegami-test.conf\n");
	ALIAS(&r, "add", "x@example.test", "alice@example.test", "nodomain");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: bad target 2: address has no '@domain'\n");
	ALIAS(&r, "add", "x+y@example.test", "alice@example.test");
	CHECK(r.status == 1);

	/* Usage errors. */
	ALIAS(&r, "add");
	CHECK(r.status == 2);
	ALIAS(&r, "add", "x@example.test");
	CHECK(r.status == 2);
	ALIAS(&r, "add", "x@example.test", "--force");
	CHECK(r.status == 2);
	ALIAS(&r, "del");
	CHECK(r.status == 2);
	ALIAS(&r, "list", "x");
	CHECK(r.status == 2);
	ALIAS(&r, "rename", "x");
	CHECK(r.status == 2);

	/* Too many targets in one command. */
	argv = calloc(ALIAS_TARGETS_MAX + 5, sizeof(*argv));
	if (argv != NULL) {
		argv[0] = "alias";
		argv[1] = "add";
		argv[2] = "big@example.test";
		for (i = 0; i <= ALIAS_TARGETS_MAX; i++) {
			argv[3 + i] = malloc(32);
			snprintf(argv[3 + i], 32, "t%zu@example.test", i);
		}
		run_cli(&r, true, NULL, 3 + ALIAS_TARGETS_MAX + 1, argv);
		CHECK(r.status == 1);
		CHECK_STR(r.err, "tegami: alias big@example.test: more than "
		    "1000 targets\n");
		run_cli(&r, true, NULL, 3 + ALIAS_TARGETS_MAX, argv);
		CHECK(r.status == 0);
		for (i = 0; i <= ALIAS_TARGETS_MAX; i++)
			free(argv[3 + i]);
		free(argv);
	}

	ALIAS(&r, "del", "POSTMASTER@example.test");
	CHECK(r.status == 0);
	ALIAS(&r, "del", "postmaster@example.test");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: no such alias: postmaster@example.test\n");
	ALIAS(&r, "del", "big@example.test");
	CHECK(r.status == 0);
	ALIAS(&r, "list");
	CHECK_STR(r.out,
	    "abuse@other.test: postmaster@example.test\n"
	    "staff@example.test: alice@example.test, bob+lists@remote.test\n");
	check_no_temp_files();
	remove_tmpdir();
}

/*
 * 8 processes add 5 users each at the same time, through the CLI: the lock
 * must serialise the read-modify-write so that all 40 land.
 */
static void
test_concurrent_adds(void)
{
	enum { PROCS = 8, EACH = 5 };
	struct account_table *t = NULL;
	char users[512], aliases[512], addr[64], err[256];
	pid_t pids[PROCS];
	int i, j, st, failed = 0;

	make_tmpdir();
	setup_cfg();
	fflush(NULL);
	for (i = 0; i < PROCS; i++) {
		if ((pids[i] = fork()) == 0) {
			int rc = 0;

			for (j = 0; j < EACH; j++) {
				struct run r;

				snprintf(addr, sizeof(addr),
				    "p%dn%d@example.test", i, j);
				USER(&r, "pw\n", "add", addr,
				    "--password-stdin");
				if (r.status != 0) {
					fprintf(stderr, "%s: %s", addr, r.err);
					rc = 1;
				}
				snprintf(addr, sizeof(addr),
				    "a%dn%d@example.test", i, j);
				ALIAS(&r, "add", addr, "x@remote.test");
				if (r.status != 0)
					rc = 1;
			}
			_exit(rc);
		}
	}
	for (i = 0; i < PROCS; i++) {
		if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			failed++;
	}
	CHECK(failed == 0);
	snprintf(users, sizeof(users), "%s/users", tmpdir);
	snprintf(aliases, sizeof(aliases), "%s/aliases", tmpdir);
	CHECK(accounts_load(users, aliases, true, &t, err, sizeof(err)) == 0);
	if (t != NULL) {
		CHECK(t->n_accounts == PROCS * EACH);
		CHECK(t->n_aliases == PROCS * EACH);
		for (i = 0; i < PROCS; i++) {
			for (j = 0; j < EACH; j++) {
				snprintf(addr, sizeof(addr),
				    "p%dn%d@example.test", i, j);
				CHECK(accounts_find_user(t, addr) != NULL);
				snprintf(addr, sizeof(addr),
				    "a%dn%d@example.test", i, j);
				CHECK(accounts_find_alias(t, addr) != NULL);
			}
		}
		accounts_free(&t);
	}
	check_no_temp_files();
	remove_tmpdir();
}

/* The fields after the hash: lock mark, empty hash, send_as options. */
static void
test_parse_user_fields(void)
{
	const char *text =
	    "alice@example.test:" HASH "\n"
	    "bob@example.test:!" HASH "\n"
	    "carol@example.test:\n"
	    "dave@example.test:!\n"
	    "erin@example.test : $6$salt$xyz : send_as=Shared@Example.TEST ,"
	    " send_as = @Other.Test,send_as=*\r\n"
	    "frank@example.test:!$2y$05$abc:send_as=f+x@remote.test\n"
	    "gina@example.test::send_as=@example.test\n"
	    "hal@example.test:$2a$05$abc:\n"
	    "ivy@example.test:$2b$05$abc";
	struct account_table *t = NULL;
	const struct account *a;
	char err[256];

	CHECK(parse_users(text, &t, err, sizeof(err)) == 0);
	if (t == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK(t->n_accounts == 9);
	a = accounts_find_user(t, "alice@example.test");
	CHECK(a != NULL && !a->locked && strcmp(a->hash, HASH) == 0 &&
	    a->n_send_as == 0 && a->send_as == NULL);
	/* The hash is kept without its lock mark. */
	a = accounts_find_user(t, "bob@example.test");
	CHECK(a != NULL && a->locked && strcmp(a->hash, HASH) == 0);
	a = accounts_find_user(t, "carol@example.test");
	CHECK(a != NULL && !a->locked && strcmp(a->hash, "") == 0);
	a = accounts_find_user(t, "dave@example.test");
	CHECK(a != NULL && a->locked && strcmp(a->hash, "") == 0);
	a = accounts_find_user(t, "erin@example.test");
	CHECK(a != NULL && !a->locked && a->n_send_as == 3);
	if (a != NULL && a->n_send_as == 3) {
		CHECK_STR(a->hash, "$6$salt$xyz");
		CHECK_STR(a->send_as[0], "shared@example.test");
		CHECK_STR(a->send_as[1], "@other.test");
		CHECK_STR(a->send_as[2], "*");
	}
	a = accounts_find_user(t, "frank@example.test");
	CHECK(a != NULL && a->locked && a->n_send_as == 1 &&
	    strcmp(a->send_as[0], "f+x@remote.test") == 0 &&
	    strcmp(a->hash, "$2y$05$abc") == 0);
	a = accounts_find_user(t, "gina@example.test");
	CHECK(a != NULL && a->hash[0] == '\0' && a->n_send_as == 1);
	a = accounts_find_user(t, "hal@example.test");
	CHECK(a != NULL && a->n_send_as == 0 &&
	    strcmp(a->hash, "$2a$05$abc") == 0);
	accounts_free(&t);

	/* Without hashes: the same locks and options, no hash at all. */
	CHECK(accounts_parse("users", text, strlen(text), NULL, NULL, 0, false,
	    &t, err, sizeof(err)) == 0);
	if (t == NULL)
		return;
	a = accounts_find_user(t, "bob@example.test");
	CHECK(a != NULL && a->locked && a->hash == NULL);
	a = accounts_find_user(t, "erin@example.test");
	CHECK(a != NULL && a->hash == NULL && a->n_send_as == 3);
	a = accounts_find_user(t, "carol@example.test");
	CHECK(a != NULL && !a->locked && a->hash == NULL);
	accounts_free(&t);
}

/* Every refusal of the new fields, with the line it is on. */
static void
test_user_fields_errors(void)
{
	char text[8192], *p;

	CHECK_STR(users_error("a@example.test:$y$a\n#\nb@example.test:$y$b:"
	    "color=red\n"),
	    "users:3: unknown option \"color\" (only send_as=PATTERN)");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=x@y.test,Send_As="
	    "z@y.test\n"),
	    "users:1: unknown option \"Send_As\" (only send_as=PATTERN)");
	/* An unknown name is shown safely and shortened. */
	CHECK_STR(users_error("a@example.test:$y$a:\x1b[31mx\n"),
	    "users:1: unknown option \"?[31mx\" (only send_as=PATTERN)");
	CHECK_STR(users_error("a@example.test:$y$a:"
	    "abcdefghijklmnopqrstuvwxyz0123456789=x\n"),
	    "users:1: unknown option \"abcdefghijklmnopqrstuvwx...\" (only "
	    "send_as=PATTERN)");
	CHECK_STR(users_error("\na@example.test:$y$a:send_as\n"),
	    "users:2: option 1: send_as needs a pattern (send_as=PATTERN)");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=*,send_as= \n"),
	    "users:1: option 2: send_as needs a pattern (send_as=PATTERN)");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=*,,send_as=*\n"),
	    "users:1: option 2 is empty");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=*,\n"),
	    "users:1: option 2 is empty");
	CHECK_STR(users_error("a@example.test:$y$a:,\n"),
	    "users:1: option 1 is empty");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=bob\n"),
	    "users:1: option 1: bad send_as pattern: address has no '@domain'");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=**\n"),
	    "users:1: option 1: bad send_as pattern: address has no '@domain'");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=@-x.test\n"),
	    "users:1: option 1: bad send_as pattern: domain label starts "
	    "with '-'");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=@\n"),
	    "users:1: option 1: bad send_as pattern: empty domain");
	CHECK(starts_with(users_error("a@example.test:$y$a:send_as=v%x@y.test"
	    "\n"), "users:1: option 1: bad send_as pattern: local part has"));
	CHECK_STR(users_error("a@example.test:$y$a:send_as=a@b@c.test\n"),
	    "users:1: option 1: bad send_as pattern: address has more than "
	    "one '@'");
	CHECK_STR(users_error("a@example.test:$y$a:send_as=x@y.test:z\n"),
	    "users:1: option 1: bad send_as pattern: domain has a character "
	    "other than letters, digits, '-' and '.'");
	/* A pattern longer than an address. */
	strcpy(text, "a@example.test:$y$a:send_as=");
	p = text + strlen(text);
	memset(p, 'x', 330);
	strcpy(p + 330, "@y.test\n");
	CHECK_STR(users_error(text), "users:1: option 1: bad send_as pattern: "
	    "pattern longer than 320 characters");

	/* Hash schemes: only what crypt(3) verifies and tegami accepts. */
	CHECK_STR(users_error("a@example.test:$y$a\nb@example.test:$1$salt$"
	    "x\n"),
	    "users:2: password hash scheme \"$1$\" is not accepted (yescrypt "
	    "\"$y$\", SHA512-CRYPT \"$6$\", bcrypt \"$2b$\", \"$2y$\", "
	    "\"$2a$\")");
	CHECK(starts_with(users_error("a@example.test:$5$s$x\n"),
	    "users:1: password hash scheme \"$5$\" is not accepted"));
	CHECK(starts_with(users_error("a@example.test:$2x$05$x\n"),
	    "users:1: password hash scheme \"$2x$\" is not accepted"));
	CHECK(starts_with(users_error("a@example.test:$argon2id$v=19$x\n"),
	    "users:1: password hash scheme \"$argon2id$\" is not accepted"));
	CHECK(starts_with(users_error("a@example.test:$\n"),
	    "users:1: password hash scheme \"$\" is not accepted"));
	CHECK_STR(users_error("a@example.test:$y$\n"),
	    "users:1: password hash has nothing after \"$y$\"");
	CHECK_STR(users_error("a@example.test:!$2b$\n"),
	    "users:1: password hash has nothing after \"$2b$\"");
	CHECK_STR(users_error("a@example.test:!!$y$a\n"),
	    "users:1: password hash is not a crypt(3) hash (no leading '$')");
	CHECK_STR(users_error("a@example.test:! $y$a\n"),
	    "users:1: password hash contains ':', white space or a control "
	    "character");
	CHECK_STR(users_error("a@example.test:abJnggxhB/yWI\n"),
	    "users:1: password hash is not a crypt(3) hash (no leading '$')");
	CHECK_STR(users_error("a@example.test:{SHA512-CRYPT}$6$a$b\n"),
	    "users:1: password hash is not a crypt(3) hash (no leading '$')");
	/* The accepted ones. */
	CHECK_STR(users_error("a@example.test:$y$j9T$a$b\nb@example.test:$6$a$"
	    "b\nc@example.test:$2b$05$a\nd@example.test:$2y$05$a\n"
	    "e@example.test:$2a$05$a\n"), "(parsed)");
	/* Duplicates are still found with the new fields. */
	CHECK_STR(users_error("a@example.test:!\nA@example.test::send_as=*\n"),
	    "users:2: duplicate user a@example.test (first on line 1)");
}

/* Builds the send-as fixture: users with patterns, aliases of every kind. */
static struct account_table *
send_as_table(void)
{
	static const char users[] =
	    "alice@example.test:" HASH ":send_as=@shared.test\n"
	    "bob@example.test:" HASH ":send_as=*\n"
	    "carol@example.test:" HASH ":send_as=CEO@example.test\n"
	    "dave@example.test:" HASH "\n"
	    "erin@example.test:!" HASH "\n";
	struct buf_ {
		char p[16384];
	} *al = malloc(sizeof(*al));
	struct account_table *t = NULL;
	char err[256];
	int i;

	if (al == NULL)
		return NULL;
	snprintf(al->p, sizeof(al->p),
	    "staff@example.test: alice@example.test, bob@example.test\n"
	    "all@example.test: staff@example.test, carol@example.test\n"
	    "loop1@example.test: loop2@example.test\n"
	    "loop2@example.test: loop1@example.test, alice@example.test\n"
	    "self@example.test: self@example.test\n"
	    "tagged@example.test: alice+news@example.test\n"
	    "viatag@example.test: staff+x@example.test\n"
	    "ext@example.test: alice@remote.test\n"
	    "dave@example.test: alice@example.test\n"
	    "erinlist@example.test: erin@example.test\n");
	/* d1 -> d2 -> ... -> d10 -> alice: 10 aliases deep, the limit;
	 * e1 -> ... -> e11 -> alice: one more. */
	for (i = 1; i <= 9; i++)
		snprintf(al->p + strlen(al->p), sizeof(al->p) - strlen(al->p),
		    "d%d@example.test: d%d@example.test\n", i, i + 1);
	for (i = 1; i <= 10; i++)
		snprintf(al->p + strlen(al->p), sizeof(al->p) - strlen(al->p),
		    "e%d@example.test: e%d@example.test\n", i, i + 1);
	snprintf(al->p + strlen(al->p), sizeof(al->p) - strlen(al->p),
	    "d10@example.test: alice@example.test\n"
	    "e11@example.test: alice@example.test\n");
	/* w1..w7: each names the next 20 times (as "w2+N"), an exponential
	 * walk without a bound on steps; w8 names dave. */
	for (i = 1; i <= 7; i++) {
		int j;

		snprintf(al->p + strlen(al->p), sizeof(al->p) - strlen(al->p),
		    "w%d@example.test:", i);
		for (j = 0; j < 20; j++)
			snprintf(al->p + strlen(al->p), sizeof(al->p) -
			    strlen(al->p), " w%d+%d@example.test", i + 1, j);
		snprintf(al->p + strlen(al->p), sizeof(al->p) - strlen(al->p),
		    "\n");
	}
	snprintf(al->p + strlen(al->p), sizeof(al->p) - strlen(al->p),
	    "w8@example.test: dave@example.test\n");
	if (accounts_parse("users", users, strlen(users), "aliases", al->p,
	    strlen(al->p), false, &t, err, sizeof(err)) == -1)
		fprintf(stderr, "send_as_table: %s\n", err);
	free(al);
	return t;
}

static double now_seconds(void);

static void
test_untag(void)
{
	char base[ACCOUNT_ADDRESS_MAX + 1];

	CHECK(accounts_untag("alice+x@example.test", base));
	CHECK_STR(base, "alice@example.test");
	CHECK(accounts_untag("Alice+X+Y@Example.test", base));
	CHECK_STR(base, "Alice@Example.test");
	CHECK(accounts_untag("alice+@example.test", base));
	CHECK_STR(base, "alice@example.test");
	CHECK(!accounts_untag("+alice@example.test", base));
	CHECK(!accounts_untag("alice@example.test", base));
	CHECK(!accounts_untag("alice@ex+ample.test", base));
	CHECK(!accounts_untag("alice+x", base));
	CHECK(!accounts_untag("", base));
}

static void
test_may_send_as(void)
{
	static const struct {
		const char *account, *sender;
		bool ok;
	} cases[] = {
		/* The null sender, for anyone who exists. */
		{ "alice@example.test", "", true },
		{ "nobody@example.test", "", false },
		{ "nobody@example.test", "nobody@example.test", false },
		/* Oneself, in any case, with a +tag. */
		{ "alice@example.test", "alice@example.test", true },
		{ "alice@example.test", "ALICE@Example.TEST", true },
		{ "ALICE@EXAMPLE.TEST", "alice@example.test", true },
		{ "alice@example.test", "alice+x@example.test", true },
		{ "alice@example.test", "Alice+Lists.2@EXAMPLE.test", true },
		{ "alice@example.test", "alice+x+y@example.test", true },
		{ "alice@example.test", "alice+@example.test", true },
		{ "alice@example.test", "+alice@example.test", false },
		{ "alice@example.test", "alice@example.test.evil", false },
		{ "alice@example.test", "alice@other.test", false },
		{ "alice@example.test", "xalice@example.test", false },
		{ "alice@example.test", "alic@example.test", false },
		{ "alice@example.test", "alice", false },
		{ "alice@example.test", "alice+x@other.test", false },
		/* Other users are not one's own, even with a tag. */
		{ "alice@example.test", "dave@example.test", false },
		{ "alice@example.test", "dave+x@example.test", false },
		{ "alice@example.test", "carol@example.test", false },
		/* Aliases that lead to the account. */
		{ "alice@example.test", "staff@example.test", true },
		{ "bob@example.test", "staff@example.test", true },
		{ "carol@example.test", "staff@example.test", false },
		{ "alice@example.test", "STAFF+x@example.test", true },
		{ "alice@example.test", "all@example.test", true },
		{ "carol@example.test", "all@example.test", true },
		{ "dave@example.test", "all@example.test", false },
		{ "alice@example.test", "tagged@example.test", true },
		{ "dave@example.test", "tagged@example.test", false },
		{ "bob@example.test", "viatag@example.test", true },
		{ "alice@example.test", "ext@example.test", false },
		/* Loops end. */
		{ "alice@example.test", "loop1@example.test", true },
		{ "dave@example.test", "loop1@example.test", false },
		{ "alice@example.test", "self@example.test", false },
		/* Depth: 10 aliases are followed, 11 are not. */
		{ "alice@example.test", "d1@example.test", true },
		{ "alice@example.test", "d2@example.test", true },
		{ "alice@example.test", "d10@example.test", true },
		{ "alice@example.test", "e1@example.test", false },
		{ "alice@example.test", "e2@example.test", true },
		/* A locked account is still itself (it cannot log in). */
		{ "erin@example.test", "erinlist@example.test", true },
		/* send_as patterns. */
		{ "alice@example.test", "anyone@shared.test", true },
		{ "alice@example.test", "AnyOne+x@SHARED.Test", true },
		{ "alice@example.test", "@shared.test", false },
		{ "alice@example.test", "x@sub.shared.test", false },
		{ "alice@example.test", "x@shared.test.evil", false },
		{ "alice@example.test", "x@notshared.test", false },
		{ "bob@example.test", "anything@anywhere.example", true },
		{ "bob@example.test", "carol@example.test", true },
		{ "carol@example.test", "ceo@example.test", true },
		{ "carol@example.test", "CEO@EXAMPLE.TEST", true },
		{ "carol@example.test", "ceo+x@example.test", false },
		{ "carol@example.test", "ceo@example.test.evil", false },
		{ "dave@example.test", "ceo@example.test", false },
	};
	struct account_table *t = send_as_table();
	char big[400];
	double t0;
	size_t i;

	CHECK(t != NULL);
	if (t == NULL)
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = accounts_may_send_as(t, cases[i].account,
		    cases[i].sender);

		if (got != cases[i].ok)
			fprintf(stderr, "may_send_as(%s, \"%s\") = %d\n",
			    cases[i].account, cases[i].sender, got);
		CHECK(got == cases[i].ok);
	}
	/* Longer than any address: only "*" lets it through. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + 300, "@shared.test", 13);
	CHECK(strlen(big) == 312);
	CHECK(accounts_may_send_as(t, "alice@example.test", big));
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big + sizeof(big) - 13, "@shared.test", 13);
	CHECK(!accounts_may_send_as(t, "alice@example.test", big));
	CHECK(accounts_may_send_as(t, "bob@example.test", big));
	CHECK(!accounts_may_send_as(t, big, "alice@example.test"));
	CHECK(!accounts_may_send_as(NULL, "alice@example.test", ""));

	/* 20^8 paths through w1: the step bound ends the walk (false, the
	 * account is further than the bound reaches) at once. */
	t0 = now_seconds();
	CHECK(!accounts_may_send_as(t, "carol@example.test",
	    "w1@example.test"));
	CHECK(!accounts_may_send_as(t, "alice@example.test",
	    "w1@example.test"));
	/* dave is found on the first path, well within the bound. */
	CHECK(accounts_may_send_as(t, "dave@example.test", "w1@example.test"));
	CHECK(accounts_may_send_as(t, "dave@example.test", "w7@example.test"));
	CHECK(now_seconds() - t0 < 1.0);
	accounts_free(&t);
}

static void
test_public_text(void)
{
	const char *text =
	    "# comment\n"
	    "alice@example.test:" HASH "\n"
	    "bob@example.test:!" HASH ":send_as=@shared.test\n"
	    "\n"
	    "carol@example.test::send_as=ceo@example.test,send_as=*\n"
	    "dave@example.test:!\n"
	    "Erin@Example.test : $6$s$x : send_as = E+X@Remote.Test\r\n";
	struct account_table *t = NULL, *again = NULL;
	const struct account *a, *b;
	char err[256], *pub = NULL;
	size_t len = 99, i, j;

	CHECK(parse_users(text, &t, err, sizeof(err)) == 0);
	if (t == NULL)
		return;
	CHECK(accounts_public_text(t, &pub, &len) == 0);
	CHECK_STR(pub,
	    "alice@example.test:\n"
	    "bob@example.test:!:send_as=@shared.test\n"
	    "carol@example.test::send_as=ceo@example.test,send_as=*\n"
	    "dave@example.test:!\n"
	    "erin@example.test::send_as=e+x@remote.test\n");
	CHECK(pub != NULL && len == strlen(pub));
	CHECK(pub != NULL && strstr(pub, "$") == NULL);
	CHECK(accounts_parse("public", pub, len, NULL, NULL, 0, false, &again,
	    err, sizeof(err)) == 0);
	CHECK(again != NULL && again->n_accounts == t->n_accounts);
	for (i = 0; again != NULL && i < t->n_accounts; i++) {
		a = &t->accounts[i];
		b = accounts_find_user(again, a->address);
		CHECK(b != NULL && b == &again->accounts[i]);
		if (b == NULL)
			continue;
		CHECK(b->locked == a->locked && b->hash == NULL);
		CHECK(b->n_send_as == a->n_send_as);
		for (j = 0; j < a->n_send_as && j < b->n_send_as; j++)
			CHECK_STR(b->send_as[j], a->send_as[j]);
	}
	accounts_free(&again);
	/* A table without hashes gives the same text. */
	CHECK(accounts_parse("users", text, strlen(text), NULL, NULL, 0, false,
	    &again, err, sizeof(err)) == 0);
	{
		char *pub2 = NULL;
		size_t len2 = 0;

		CHECK(accounts_public_text(again, &pub2, &len2) == 0);
		CHECK(pub2 != NULL && pub != NULL && strcmp(pub, pub2) == 0);
		free(pub2);
	}
	accounts_free(&again);
	free(pub);
	accounts_free(&t);

	/* No accounts: an empty text that parses to no accounts. */
	CHECK(parse_users("# nobody\n", &t, err, sizeof(err)) == 0);
	CHECK(accounts_public_text(t, &pub, &len) == 0);
	CHECK(pub != NULL && len == 0 && pub[0] == '\0');
	free(pub);
	accounts_free(&t);
}

/* Lock, unlock, passwd and send-as through the library: one field
 * changes, every other byte stays. */
static void
test_edit_user_fields(void)
{
	const char *text =
	    "# users\n"
	    "alice@example.test:" HASH "\n"
	    "  bob@example.test : $6$salt$xyz : send_as=@shared.test \r\n"
	    "carol@example.test:\n"
	    "dave@example.test:!$2b$05$abc";
	char path[512], err[512], before[4096], want[4096];
	char *pats[] = { "X@Shared.Test", "@Other.Test", "*", "x@shared.test",
	    "bad" };
	struct account_table *t = NULL;
	const struct account *a;
	struct stat st;

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/users", tmpdir);
	write_file(path, text, strlen(text));
	CHECK(chmod(path, 0604) == 0);

	/* lock / unlock give back the same bytes. */
	CHECK(accounts_user_lock(path, "Alice@example.test", true, err,
	    sizeof(err)) == 0);
	snprintf(want, sizeof(want), "# users\nalice@example.test:!" HASH
	    "\n  bob@example.test : $6$salt$xyz : send_as=@shared.test \r\n"
	    "carol@example.test:\ndave@example.test:!$2b$05$abc");
	CHECK_STR(read_text(path), want);
	/* Locking twice changes nothing. */
	CHECK(accounts_user_lock(path, "alice@example.test", true, err,
	    sizeof(err)) == 0);
	CHECK_STR(read_text(path), want);
	CHECK(accounts_user_lock(path, "alice@example.test", false, err,
	    sizeof(err)) == 0);
	CHECK_STR(read_text(path), text);
	CHECK(accounts_user_lock(path, "alice@example.test", false, err,
	    sizeof(err)) == 0);
	CHECK_STR(read_text(path), text);
	CHECK(accounts_user_lock(path, "bob@example.test", true, err,
	    sizeof(err)) == 0);
	CHECK(strstr(read_text(path), "  bob@example.test : !$6$salt$xyz : "
	    "send_as=@shared.test \r\n") != NULL);
	CHECK(accounts_user_lock(path, "bob@example.test", false, err,
	    sizeof(err)) == 0);
	CHECK(accounts_user_lock(path, "dave@example.test", false, err,
	    sizeof(err)) == 0);
	CHECK(strstr(read_text(path), "\ndave@example.test:$2b$05$abc") !=
	    NULL);
	CHECK(accounts_user_lock(path, "dave@example.test", true, err,
	    sizeof(err)) == 0);
	CHECK_STR(read_text(path), text);
	CHECK(accounts_user_lock(path, "carol@example.test", true, err,
	    sizeof(err)) == 0);
	CHECK(strstr(read_text(path), "\ncarol@example.test:!\n") != NULL);
	CHECK(accounts_user_lock(path, "carol@example.test", false, err,
	    sizeof(err)) == 0);
	CHECK_STR(read_text(path), text);
	CHECK(accounts_user_lock(path, "nobody@example.test", true, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "no such user: nobody@example.test");
	CHECK(accounts_user_lock(path, "bad", true, err, sizeof(err)) == -1);
	CHECK_STR(err, "bad address: address has no '@domain'");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0604);

	/* send-as: replaced, deduplicated, cleared. */
	CHECK(accounts_user_set_send_as(path, "bob@example.test", pats, 4,
	    err, sizeof(err)) == 0);
	CHECK(strstr(read_text(path), "  bob@example.test : $6$salt$xyz:"
	    "send_as=x@shared.test,send_as=@other.test,send_as=* \r\n") !=
	    NULL);
	CHECK(accounts_user_set_send_as(path, "bob@example.test", NULL, 0,
	    err, sizeof(err)) == 0);
	CHECK(strstr(read_text(path), "  bob@example.test : $6$salt$xyz \r\n")
	    != NULL);
	CHECK(accounts_user_set_send_as(path, "dave@example.test", pats + 2, 1,
	    err, sizeof(err)) == 0);
	CHECK(strstr(read_text(path), "\ndave@example.test:!$2b$05$abc:"
	    "send_as=*") != NULL);
	CHECK(accounts_user_set_send_as(path, "carol@example.test", pats + 1,
	    1, err, sizeof(err)) == 0);
	CHECK(strstr(read_text(path), "\ncarol@example.test::send_as="
	    "@other.test\n") != NULL);
	snprintf(before, sizeof(before), "%s", read_text(path));
	CHECK(accounts_user_set_send_as(path, "carol@example.test", pats, 5,
	    err, sizeof(err)) == -1);
	CHECK_STR(err, "bad send-as pattern 5: address has no '@domain'");
	CHECK(accounts_user_set_send_as(path, "nobody@example.test", pats, 1,
	    err, sizeof(err)) == -1);
	CHECK_STR(err, "no such user: nobody@example.test");
	CHECK_STR(read_text(path), before);
	/* The options must still fit the line limit. */
	{
		char *many[20], bufs[20][320], label[61];
		int i;

		/* 20 patterns of 249 bytes do not fit on a line, 10 do. */
		memset(label, 'd', 60);
		label[60] = '\0';
		for (i = 0; i < 20; i++) {
			snprintf(bufs[i], sizeof(bufs[i]), "%c%s@%s.%s.%s.test",
			    'a' + i, label, label, label, label);
			many[i] = bufs[i];
		}
		CHECK(strlen(bufs[0]) == 249);
		CHECK(accounts_user_set_send_as(path, "carol@example.test",
		    many, 20, err, sizeof(err)) == -1);
		CHECK_STR(err, "the line of carol@example.test would be longer "
		    "than 4096 bytes");
		CHECK_STR(read_text(path), before);
		CHECK(accounts_user_set_send_as(path, "carol@example.test",
		    many, 10, err, sizeof(err)) == 0);
		CHECK(parse_users(read_text(path), &t, err, sizeof(err)) == 0);
		a = accounts_find_user(t, "carol@example.test");
		CHECK(a != NULL && a->n_send_as == 10);
		accounts_free(&t);
	}
	/* The result always parses and says what was set. */
	CHECK(accounts_user_set_send_as(path, "carol@example.test", pats + 1,
	    1, err, sizeof(err)) == 0);
	CHECK(parse_users(read_text(path), &t, err, sizeof(err)) == 0);
	a = accounts_find_user(t, "dave@example.test");
	CHECK(a != NULL && a->locked && a->n_send_as == 1 &&
	    strcmp(a->send_as[0], "*") == 0 &&
	    strcmp(a->hash, "$2b$05$abc") == 0);
	accounts_free(&t);

	/* passwd: a new yescrypt hash, lock mark and options kept. */
	CHECK(accounts_user_set_password(path, "dave@example.test", "new pw",
	    err, sizeof(err)) == 0);
	CHECK(parse_users(read_text(path), &t, err, sizeof(err)) == 0);
	a = accounts_find_user(t, "dave@example.test");
	CHECK(a != NULL && a->locked && a->n_send_as == 1 &&
	    starts_with(a->hash, "$y$"));
	accounts_free(&t);
	CHECK(strstr(read_text(path), "new pw") == NULL);
	CHECK(hash_matches(read_text(path), "dave@example.test", "new pw"));
	CHECK(accounts_user_set_password(path, "carol@example.test", "c-pw",
	    err, sizeof(err)) == 0);
	CHECK(hash_matches(read_text(path), "carol@example.test", "c-pw"));
	CHECK(strstr(read_text(path), "\ncarol@example.test:$y$") != NULL);
	CHECK(strstr(read_text(path), ":send_as=@other.test\n") != NULL);
	snprintf(before, sizeof(before), "%s", read_text(path));
	CHECK(accounts_user_set_password(path, "carol@example.test", "", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "empty password refused");
	CHECK(accounts_user_set_password(path, "nobody@example.test", "x", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "no such user: nobody@example.test");
	CHECK(accounts_user_set_password(path, "a+b@example.test", "x", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "bad address: '+' is reserved for plus-addressing");
	CHECK_STR(read_text(path), before);
	CHECK(strstr(read_text(path), "# users\nalice@example.test:" HASH
	    "\n") != NULL);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0604);

	/* A broken file is not edited. */
	write_file(path, "a@example.test:$y$a\nb@example.test:$1$x\n", 40);
	CHECK(accounts_user_lock(path, "a@example.test", true, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "/users:2: password hash scheme \"$1$\"") != NULL);
	CHECK_STR(read_text(path),
	    "a@example.test:$y$a\nb@example.test:$1$x\n");
	/* A missing file has no such user. */
	unlink(path);
	CHECK(accounts_user_lock(path, "a@example.test", true, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "no such user: a@example.test");
	check_no_temp_files();
	remove_tmpdir();
}

static const char *
import_error(const char *text, const char *domain)
{
	static char err[512];
	struct account_table *t = NULL;

	err[0] = '\0';
	if (accounts_import_parse("dovecot", text, strlen(text), domain, &t,
	    err, sizeof(err)) == 0) {
		accounts_free(&t);
		return "(parsed)";
	}
	CHECK(t == NULL);
	return err;
}

#define SHA512_HASH "$6$/c2zv7FtR3awjNP8$mPwZXlPYguKXpsTMUkJHyreOJ/jBuusUpXf" \
	"SYdRwq.G4Rl69aKjWiSQatav70XiMkwiwELY3ZkrcrpPyUv5un/"
#define BLF_HASH "$2y$05$R5jg7wdLGYq0RS4xGu0J9ODeW3BHxCXrZMS/FoedK6gBZ2OG/xUdK"

static void
test_import_parse(void)
{
	static const struct {
		const char *line, *scheme;
	} refused[] = {
		{ "b:{SSHA}abcdef==\n", "SSHA" },
		{ "b:{CRAM-MD5}abcdef\n", "CRAM-MD5" },
		{ "b:{ARGON2ID}$argon2id$v=19$x\n", "ARGON2ID" },
		{ "b:{CLEAR}pw:1000\n", "CLEAR" },
		{ "b:{SHA512}abc\n", "SHA512" },
		{ "b:{CRYPT}$1$salt$hash\n", "MD5-CRYPT" },
		{ "b:$5$salt$hash\n", "SHA256-CRYPT" },
		{ "b:abJnggxhB/yWI\n", "DES-CRYPT" },
		{ "b:{CRYPT}$9$x$y\n", "CRYPT \"$9$\"" },
		{ "b:$argon2i$v=19$x\n", "ARGON2" },
		{ "b:{\x01\x02}x\n", "??" },
	};
	char want[512];
	size_t i;
	const char *text =
	    "# Dovecot users\n"
	    "alice@example.test:{SHA512-CRYPT}" SHA512_HASH ":1000:1000::"
	    "/home/alice::userdb_quota_rule=*:storage=1G\n"
	    "bob:{BLF-CRYPT}" BLF_HASH "\n"
	    "\n"
	    "Carol@Example.TEST:{CRYPT}" BLF_HASH ":::\n"
	    "dave:{yescrypt}" HASH "\n"
	    "erin:" SHA512_HASH ":1001\n"
	    "frank:\n"
	    "  gina  \n"
	    "hal:{crypt}$2a$05$abc\n";
	struct account_table *t = NULL;
	const struct account *a;
	char err[512];

	CHECK(accounts_import_parse("dovecot", text, strlen(text),
	    "example.test", &t, err, sizeof(err)) == 0);
	if (t == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK(t->n_accounts == 8);
	/* File order. */
	CHECK_STR(t->accounts[0].address, "alice@example.test");
	CHECK_STR(t->accounts[7].address, "hal@example.test");
	a = accounts_find_user(t, "alice@example.test");
	CHECK(a != NULL && strcmp(a->hash, SHA512_HASH) == 0 && !a->locked &&
	    a->n_send_as == 0);
	a = accounts_find_user(t, "bob@example.test");
	CHECK(a != NULL && strcmp(a->hash, BLF_HASH) == 0);
	a = accounts_find_user(t, "carol@example.test");
	CHECK(a != NULL && strcmp(a->hash, BLF_HASH) == 0);
	a = accounts_find_user(t, "dave@example.test");
	CHECK(a != NULL && strcmp(a->hash, HASH) == 0);
	a = accounts_find_user(t, "erin@example.test");
	CHECK(a != NULL && strcmp(a->hash, SHA512_HASH) == 0);
	/* No password: the account comes, nobody can log in to it. */
	a = accounts_find_user(t, "frank@example.test");
	CHECK(a != NULL && strcmp(a->hash, "") == 0);
	a = accounts_find_user(t, "gina@example.test");
	CHECK(a != NULL && strcmp(a->hash, "") == 0);
	accounts_free(&t);

	CHECK_STR(import_error("a:{SHA512-CRYPT}" SHA512_HASH "\n", NULL),
	    "dovecot:1: user name \"a\" has no @domain and no default domain "
	    "was given");
	CHECK_STR(import_error("a@example.test:{SHA512-CRYPT}" SHA512_HASH
	    "\n", NULL), "(parsed)");
	/* Every scheme that cannot be imported, named, with its line. */
	CHECK_STR(import_error("a:{SHA512-CRYPT}" SHA512_HASH "\n#\n"
	    "b:{PLAIN}secret\n", "example.test"),
	    "dovecot:3: scheme PLAIN cannot be imported; the user must set a "
	    "new password");
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(want, sizeof(want), "dovecot:1: scheme %s cannot be "
		    "imported; the user must set a new password",
		    refused[i].scheme);
		CHECK_STR(import_error(refused[i].line, "example.test"), want);
	}
	/* A declared scheme must match the hash. */
	CHECK_STR(import_error("b:{SHA512-CRYPT}" BLF_HASH "\n", "x.test"),
	    "dovecot:1: {SHA512-CRYPT} holds a BLF-CRYPT hash");
	CHECK_STR(import_error("b:{BLF-CRYPT}$1$a$b\n", "x.test"),
	    "dovecot:1: scheme MD5-CRYPT cannot be imported; the user must set "
	    "a new password");
	CHECK_STR(import_error("b:{SHA512-CRYPT\n", "x.test"),
	    "dovecot:1: password field starts with '{' but has no '}'");
	CHECK_STR(import_error("b:{SHA512-CRYPT}:1000\n", "x.test"),
	    "dovecot:1: no hash after {SHA512-CRYPT}");
	CHECK_STR(import_error("b:{YESCRYPT}$y$\n", "x.test"),
	    "dovecot:1: password hash has nothing after \"$y$\"");
	/* User names. */
	CHECK_STR(import_error(":{PLAIN}x\n", "x.test"),
	    "dovecot:1: empty user name");
	CHECK_STR(import_error("a b:" SHA512_HASH "\n", "x.test"),
	    "dovecot:1: bad user name: local part has a character that is not "
	    "allowed (letters, digits and !#$&'*+-=?^_`{|}~ without '%', '!', "
	    "'/', '#')");
	CHECK_STR(import_error("a+b:" SHA512_HASH "\n", "x.test"),
	    "dovecot:1: bad user name: '+' is reserved for plus-addressing");
	CHECK_STR(import_error("a@b@x.test:" SHA512_HASH "\n", "x.test"),
	    "dovecot:1: bad user name: address has more than one '@'");
	CHECK_STR(import_error("a:" SHA512_HASH "\n", "-x.test"),
	    "dovecot:1: bad user name: domain label starts with '-'");
	CHECK_STR(import_error("a:\nb:\nA@X.Test:\n", "x.test"),
	    "dovecot:3: duplicate user a@x.test (first on line 1)");
	{
		static const char nul[] = "a:\nb\0:\n";
		struct account_table *t2 = NULL;

		CHECK(accounts_import_parse(NULL, nul, sizeof(nul) - 1,
		    "x.test", &t2, err, sizeof(err)) == -1);
		CHECK_STR(err, "import:2: NUL byte");
		CHECK(t2 == NULL);
	}
	/* An address that does not fit. */
	{
		char big[400], domain[300];

		memset(big, 'a', 64);
		big[64] = '\0';
		strcat(big, ":\n");
		CHECK_STR(import_error(big, "x.test"), "(parsed)");
		/* With the default domain: 64 + 1 + 255 fits, one more not. */
		memset(domain, 'd', 256);
		domain[64] = domain[128] = domain[192] = '.';
		domain[256] = '\0';
		CHECK_STR(import_error(big, domain + 1), "(parsed)");
		CHECK_STR(import_error(big, domain), "dovecot:1: bad user "
		    "name: address longer than 320 characters");
		memset(big, 'd', 330);
		big[0] = 'a';
		big[1] = '@';
		big[330] = '\0';
		strcat(big, ":\n");
		CHECK_STR(import_error(big, "example.test"), "dovecot:1: bad "
		    "user name: address longer than 320 characters");
	}
	/* Empty input. */
	CHECK(accounts_import_parse(NULL, NULL, 0, NULL, &t, err,
	    sizeof(err)) == 0);
	CHECK(t != NULL && t->n_accounts == 0);
	accounts_free(&t);
}

static void
test_import_file(void)
{
	const char *users_text =
	    "# users\n"
	    "old@example.test:" HASH ":send_as=*\n";
	const char *dove =
	    "new1:{SHA512-CRYPT}" SHA512_HASH "::::::\n"
	    "new2@example.test:{BLF-CRYPT}" BLF_HASH "\n";
	char users[512], imp[512], err[512], want[4096];
	struct stat st;
	size_t n = 99;

	make_tmpdir();
	snprintf(users, sizeof(users), "%s/users", tmpdir);
	snprintf(imp, sizeof(imp), "%s/passwd", tmpdir);
	write_file(users, users_text, strlen(users_text));
	CHECK(chmod(users, 0600) == 0);
	write_file(imp, dove, strlen(dove));
	CHECK(accounts_user_import(users, imp, "example.test", &n, err,
	    sizeof(err)) == 0);
	CHECK(n == 2);
	snprintf(want, sizeof(want), "%snew1@example.test:%s\n"
	    "new2@example.test:%s\n", users_text, SHA512_HASH, BLF_HASH);
	CHECK_STR(read_text(users), want);
	CHECK(stat(users, &st) == 0 && (st.st_mode & 0777) == 0600);

	/* Again: the same accounts are skipped, nothing changes. */
	CHECK(accounts_user_import(users, imp, "example.test", &n, err,
	    sizeof(err)) == 0);
	CHECK(n == 0);
	CHECK_STR(read_text(users), want);

	/* One bad line refuses the whole import. */
	write_file(imp, "new3:{SHA512-CRYPT}" SHA512_HASH "\n"
	    "new4:{PLAIN}pw\n", strlen("new3:{SHA512-CRYPT}" SHA512_HASH
	    "\nnew4:{PLAIN}pw\n"));
	CHECK(accounts_user_import(users, imp, "example.test", &n, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "/passwd:2: scheme PLAIN cannot be imported; the "
	    "user must set a new password") != NULL);
	CHECK_STR(read_text(users), want);

	/* An account already there with another hash, or locked. */
	write_file(imp, "x:\nold:" SHA512_HASH "\n", strlen("x:\nold:"
	    SHA512_HASH "\n"));
	CHECK(accounts_user_import(users, imp, "example.test", &n, err,
	    sizeof(err)) == -1);
	{
		char msg[2048];

		snprintf(msg, sizeof(msg), "%s:2: user old@example.test "
		    "already exists in %s with another password hash", imp,
		    users);
		CHECK_STR(err, msg);
	}
	CHECK_STR(read_text(users), want);
	CHECK(accounts_user_lock(users, "new1@example.test", true, err,
	    sizeof(err)) == 0);
	write_file(imp, dove, strlen(dove));
	CHECK(accounts_user_import(users, imp, "example.test", &n, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, ":1: user new1@example.test already exists") !=
	    NULL);
	/* A missing import file. */
	unlink(imp);
	CHECK(accounts_user_import(users, imp, "example.test", &n, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "No such file or directory") != NULL);
	/* Into a users file that does not exist yet: 0640. */
	unlink(users);
	write_file(imp, dove, strlen(dove));
	CHECK(accounts_user_import(users, imp, "example.test", &n, err,
	    sizeof(err)) == 0);
	CHECK(n == 2);
	CHECK(stat(users, &st) == 0 && (st.st_mode & 0777) == 0640);
	check_no_temp_files();
	remove_tmpdir();
}

static void
test_cli_user_new(void)
{
	static const char *usage[][8] = {
		{ "user", "passwd", NULL },
		{ "user", "passwd", "a@example.test", "b@example.test", NULL },
		{ "user", "lock", NULL },
		{ "user", "lock", "a@example.test", "b@example.test", NULL },
		{ "user", "unlock", "--all", NULL },
		{ "user", "send-as", NULL },
		{ "user", "send-as", "alice@example.test", "--clear", NULL },
		{ "user", "import", NULL },
		{ "user", "import", "FILE", "--domain", NULL },
		{ "user", "import", "FILE", "other", NULL },
		{ "user", "import", "FILE", "--domain", "a.test", "--domain",
		    "b.test", NULL },
		{ "user", "frob", NULL },
	};
	size_t i;
	struct run r;
	char path[512], want[4096];
	const char *dove =
	    "imp1:{SHA512-CRYPT}" SHA512_HASH "\n"
	    "imp2@other.test:{BLF-CRYPT}" BLF_HASH "\n";

	make_tmpdir();
	setup_cfg();
	USER(&r, "pw-a\n", "add", "alice@example.test", "--password-stdin");
	CHECK(r.status == 0);
	USER(&r, "pw-b\n", "add", "bob@example.test", "--password-stdin");
	CHECK(r.status == 0);

	/* passwd */
	USER(&r, "pw-a2\n", "passwd", "ALICE@example.test",
	    "--password-stdin");
	CHECK(r.status == 0);
	CHECK_STR(r.err, "");
	CHECK(hash_matches(read_text(state_file("users")),
	    "alice@example.test", "pw-a2"));
	CHECK(!hash_matches(read_text(state_file("users")),
	    "alice@example.test", "pw-a"));
	CHECK(hash_matches(read_text(state_file("users")),
	    "bob@example.test", "pw-b"));
	USER(&r, "x\n", "passwd", "--password-stdin", "nobody@example.test");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: no such user: nobody@example.test\n");
	USER(&r, "\n", "passwd", "alice@example.test", "--password-stdin");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: empty password refused\n");
	USER(&r, "x\n", "passwd", "alice@example.test");
	CHECK(r.status == 2);
	CHECK(strstr(r.err, "--password-stdin") != NULL);
	USER(&r, "x\n", "passwd", "bad", "--password-stdin");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: bad: address has no '@domain'\n");
	CHECK(hash_matches(read_text(state_file("users")),
	    "alice@example.test", "pw-a2"));

	/* lock / unlock */
	snprintf(want, sizeof(want), "%s", read_text(state_file("users")));
	USER(&r, NULL, "lock", "bob@example.test");
	CHECK(r.status == 0);
	CHECK(strstr(read_text(state_file("users")), "bob@example.test:!$y$")
	    != NULL);
	USER(&r, NULL, "list");
	CHECK_STR(r.out, "alice@example.test\nbob@example.test locked\n");
	/* passwd keeps the lock and says so. */
	USER(&r, "pw-b2\n", "passwd", "bob@example.test", "--password-stdin");
	CHECK(r.status == 0);
	CHECK_STR(r.err, "tegami: bob@example.test stays locked; `tegami user "
	    "unlock bob@example.test` lets it log in\n");
	USER(&r, NULL, "unlock", "bob@example.test");
	CHECK(r.status == 0);
	CHECK(hash_matches(read_text(state_file("users")),
	    "bob@example.test", "pw-b2"));
	USER(&r, NULL, "lock", "nobody@example.test");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: no such user: nobody@example.test\n");

	/* send-as */
	USER(&r, NULL, "send-as", "alice@example.test", "@Shared.test", "*",
	    "boss@example.test");
	CHECK(r.status == 0);
	USER(&r, NULL, "list");
	CHECK_STR(r.out, "alice@example.test send-as=@shared.test,*,"
	    "boss@example.test\nbob@example.test\n");
	USER(&r, NULL, "send-as", "alice@example.test", "nodomain");
	CHECK(r.status == 1);
	CHECK_STR(r.err, "tegami: bad send-as pattern 1: address has no "
	    "'@domain'\n");
	USER(&r, NULL, "send-as", "alice@example.test");
	CHECK(r.status == 0);
	USER(&r, NULL, "list");
	CHECK_STR(r.out, "alice@example.test\nbob@example.test\n");

	/* import */
	snprintf(path, sizeof(path), "%s/dovecot-users", tmpdir);
	write_file(path, dove, strlen(dove));
	USER(&r, NULL, "import", path, "--domain", "example.test");
	CHECK(r.status == 0);
	CHECK(strstr(r.out, "imported 2 users from ") != NULL);
	USER(&r, NULL, "list");
	CHECK_STR(r.out, "alice@example.test\nbob@example.test\n"
	    "imp1@example.test\nimp2@other.test\n");
	write_file(path, "imp3:\n", 6);
	USER(&r, NULL, "import", "--domain", "example.test", path);
	CHECK(r.status == 0);
	CHECK(strstr(r.out, "imported 1 user from ") != NULL);
	USER(&r, NULL, "list");
	CHECK(strstr(r.out, "imp3@example.test no-password\n") != NULL);
	/* Not a local domain, an alias, no domain, a refused scheme. */
	snprintf(want, sizeof(want), "%s", read_text(state_file("users")));
	write_file(path, "x@elsewhere.test:\n", 18);
	USER(&r, NULL, "import", path);
	CHECK(r.status == 1);
	CHECK(strstr(r.err, "x@elsewhere.test: the domain is not one of the "
	    "domains in /etc/tegami-test.conf\n") != NULL);
	ALIAS(&r, "add", "staff@example.test", "alice@example.test");
	CHECK(r.status == 0);
	write_file(path, "staff:\n", 7);
	USER(&r, NULL, "import", path, "--domain", "example.test");
	CHECK(r.status == 1);
	CHECK(strstr(r.err, "staff@example.test is an alias") != NULL);
	USER(&r, NULL, "import", path);
	CHECK(r.status == 1);
	CHECK(strstr(r.err, ":1: user name \"staff\" has no @domain") != NULL);
	write_file(path, "p:{PLAIN}secret\n", 16);
	USER(&r, NULL, "import", path, "--domain", "example.test");
	CHECK(r.status == 1);
	CHECK(strstr(r.err, ":1: scheme PLAIN cannot be imported; the user "
	    "must set a new password\n") != NULL);
	CHECK(strstr(r.err, "secret") == NULL);
	CHECK_STR(read_text(state_file("users")), want);

	/* Usage errors. */
	for (i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		int argc;

		for (argc = 0; usage[i][argc] != NULL; argc++)
			;
		run_cli(&r, false, NULL, argc, (char **)usage[i]);
		if (r.status != 2)
			fprintf(stderr, "usage case %zu: %d\n", i, r.status);
		CHECK(r.status == 2);
		CHECK(strstr(r.err, "user send-as ADDRESS [PATTERN...]") !=
		    NULL);
		CHECK(strstr(r.err, "user import FILE [--domain DOMAIN]") !=
		    NULL);
	}
	check_no_temp_files();
	remove_tmpdir();
}

int
main(void)
{
	/* run_cli writes stdin to children that may exit without reading. */
	signal(SIGPIPE, SIG_IGN);
	UNIT_RUN(test_check_address);
	UNIT_RUN(test_parse_users);
	UNIT_RUN(test_users_errors);
	UNIT_RUN(test_parse_aliases);
	UNIT_RUN(test_aliases_errors);
	UNIT_RUN(test_load_files);
	UNIT_RUN(test_load_100k);
	UNIT_RUN(test_hash_password);
	UNIT_RUN(test_edit_keeps_lines);
	UNIT_RUN(test_cli_user);
	UNIT_RUN(test_cli_user_tty);
	UNIT_RUN(test_cli_alias);
	UNIT_RUN(test_concurrent_adds);
	UNIT_RUN(test_parse_user_fields);
	UNIT_RUN(test_user_fields_errors);
	UNIT_RUN(test_untag);
	UNIT_RUN(test_may_send_as);
	UNIT_RUN(test_public_text);
	UNIT_RUN(test_edit_user_fields);
	UNIT_RUN(test_import_parse);
	UNIT_RUN(test_import_file);
	UNIT_RUN(test_cli_user_new);
	return unit_finish();
}
