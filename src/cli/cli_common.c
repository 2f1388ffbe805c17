/*
 * Small pieces the subcommands share.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth/accounts.h"
#include "cli/cli.h"

int
cli_stdout_done(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "tegami: writing the list: %s\n",
		    strerror(errno));
		return 1;
	}
	return 0;
}

int
cli_account_paths(const struct tegami_config *cfg, char *users,
    char *aliases)
{
	if (accounts_paths(cfg->state_dir, users, aliases) == -1) {
		fprintf(stderr, "tegami: %s: path too long\n", cfg->state_dir);
		return 1;
	}
	return 0;
}
