/*
 * `tegami alias add|del|list`: the aliases in STATE_DIR/aliases. An alias
 * is an address in a local domain that is not a user; its targets may be
 * local users, other aliases or remote addresses.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/accounts.h"
#include "cli/cli.h"
#include "core/config.h"

static int
alias_usage(void)
{
	fprintf(stderr,
	    "usage: tegami [-c CONF] alias add ALIAS TARGET...\n"
	    "       tegami [-c CONF] alias del ALIAS\n"
	    "       tegami [-c CONF] alias list\n");
	return 2;
}

static int
alias_add(const struct tegami_config *cfg, const char *users,
    const char *aliases, int argc, char **argv)
{
	char addr[ACCOUNT_ADDRESS_MAX + 1], err[1024];
	struct account_table *t;
	const char *why;
	bool is_user;
	int i;

	if (argc < 2)
		return alias_usage();
	for (i = 0; i < argc; i++)
		if (argv[i][0] == '-')
			return alias_usage();
	if ((why = accounts_check_address(argv[0], addr)) != NULL) {
		fprintf(stderr, "tegami: %s: %s\n", argv[0], why);
		return 1;
	}
	if (!config_is_local_domain(cfg, strchr(addr, '@') + 1)) {
		fprintf(stderr, "tegami: %s: the domain is not one of the "
		    "domains in %s\n", addr, cfg->path);
		return 1;
	}
	if (accounts_load(users, NULL, false, &t, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	is_user = accounts_find_user(t, addr) != NULL;
	accounts_free(&t);
	if (is_user) {
		fprintf(stderr, "tegami: %s is a user; an alias cannot have "
		    "the same address\n", addr);
		return 1;
	}
	if (accounts_alias_add(aliases, addr, argv + 1, (size_t)argc - 1, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	return 0;
}

static int
cmp_alias(const void *a, const void *b)
{
	return strcmp((*(const struct alias *const *)a)->address,
	    (*(const struct alias *const *)b)->address);
}

static int
alias_list(const char *aliases)
{
	struct account_table *t;
	const struct alias **list;
	char err[1024];
	size_t i, j;

	if (accounts_load(NULL, aliases, false, &t, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	list = calloc(t->n_aliases + 1, sizeof(*list));
	if (list == NULL) {
		fprintf(stderr, "tegami: out of memory\n");
		accounts_free(&t);
		return 1;
	}
	for (i = 0; i < t->n_aliases; i++)
		list[i] = &t->aliases[i];
	qsort(list, t->n_aliases, sizeof(*list), cmp_alias);
	for (i = 0; i < t->n_aliases; i++) {
		printf("%s:", list[i]->address);
		for (j = 0; j < list[i]->n_targets; j++)
			printf("%s%s", j == 0 ? " " : ", ",
			    list[i]->targets[j]);
		printf("\n");
	}
	free(list);
	accounts_free(&t);
	return cli_stdout_done();
}

int
cli_alias(const struct tegami_config *cfg, int argc, char **argv)
{
	char users[PATH_MAX], aliases[PATH_MAX], err[1024];

	if (argc < 2)
		return alias_usage();
	if (cli_account_paths(cfg, users, aliases) != 0)
		return 1;
	if (strcmp(argv[1], "add") == 0)
		return alias_add(cfg, users, aliases, argc - 2, argv + 2);
	if (strcmp(argv[1], "del") == 0) {
		if (argc != 3 || argv[2][0] == '-')
			return alias_usage();
		if (accounts_alias_del(aliases, argv[2], err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "tegami: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 2)
			return alias_usage();
		return alias_list(aliases);
	}
	return alias_usage();
}
