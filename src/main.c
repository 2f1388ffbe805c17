/*
 * tegami: one mail server binary. Dispatches to the subcommands in src/cli;
 * every subcommand except init reads the config file given with -c.
 * Invoked as "sendmail" (a symbolic link /usr/sbin/sendmail -> tegami) it
 * is `tegami sendmail`, with the config from $TEGAMI_CONFIG or the default.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "queue/queue_routes.h"

#define TEGAMI_DEFAULT_CONFIG "/etc/tegami/tegami.conf"
/* Where sendmail finds the config when no -c can be given (docs). */
#define TEGAMI_CONFIG_ENV "TEGAMI_CONFIG"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tegami init --dir DIR --domain DOMAIN [--hostname HOST]\n"
	    "                   [--listen ADDR] [--port-base N] [--user USER]\n"
	    "                   [--no-ca]\n"
	    "       tegami [-c CONF] serve [--verbose]\n"
	    "       tegami [-c CONF] user add ADDRESS [--password-stdin]\n"
	    "       tegami [-c CONF] user del ADDRESS\n"
	    "       tegami [-c CONF] user passwd ADDRESS [--password-stdin]\n"
	    "       tegami [-c CONF] user lock|unlock ADDRESS\n"
	    "       tegami [-c CONF] user send-as ADDRESS [PATTERN...]\n"
	    "       tegami [-c CONF] user import FILE [--domain DOMAIN]\n"
	    "       tegami [-c CONF] user list\n"
	    "       tegami [-c CONF] alias add ALIAS TARGET...\n"
	    "       tegami [-c CONF] alias del ALIAS\n"
	    "       tegami [-c CONF] alias list\n"
	    "       tegami [-c CONF] ca init [--ecdsa | --rsa BITS] [--days N]\n"
	    "                               [--name NAME] [--passphrase-stdin]\n"
	    "       tegami [-c CONF] ca issue|renew|csr|selfsign HOST [--san NAME]...\n"
	    "       tegami [-c CONF] ca export --pem FILE | --der FILE\n"
	    "       tegami [-c CONF] ca show [HOST] | list | revoke SERIAL | crl\n"
	    "       tegami [-c CONF] queue list|show ID|flush [ID]|delete ID|bounce ID\n"
	    "       tegami [-c CONF] sendmail [-t] [-i] [-f SENDER] [-F NAME] "
	    "[ADDRESS...] < MESSAGE\n"
	    "       tegami [-c CONF] config check\n"
	    "       tegami config reference   (the settings, as Markdown)\n"
	    "The default CONF is " TEGAMI_DEFAULT_CONFIG " (for sendmail: "
	    "$" TEGAMI_CONFIG_ENV " when set).\n");
}

/* sendmail's config: -c, else $TEGAMI_CONFIG, else the default. */
static const char *
sendmail_config(const char *given)
{
	const char *env = getenv(TEGAMI_CONFIG_ENV);

	if (given != NULL)
		return given;
	return env != NULL && env[0] != '\0' ? env : TEGAMI_DEFAULT_CONFIG;
}

static bool
invoked_as_sendmail(const char *argv0)
{
	const char *base;

	if (argv0 == NULL)
		return false;
	base = strrchr(argv0, '/');
	base = base != NULL ? base + 1 : argv0;
	return strcmp(base, "sendmail") == 0;
}

int
main(int argc, char **argv)
{
	const char *conf_path = TEGAMI_DEFAULT_CONFIG, *conf_given = NULL;
	struct tegami_config *cfg = NULL;
	char err[1024];
	const char *cmd;
	int i = 1, status;

	if (argc > 0 && invoked_as_sendmail(argv[0]))
		return cli_sendmail(sendmail_config(NULL), argc, argv);
	if (i < argc && strcmp(argv[i], "-c") == 0) {
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		conf_path = conf_given = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[i];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "init") == 0)
		return cli_init(argc - i, argv + i);
	/* sendmail reads its config itself: its errors have sendmail's
	 * exit statuses, not 1. */
	if (strcmp(cmd, "sendmail") == 0)
		return cli_sendmail(sendmail_config(conf_given), argc - i,
		    argv + i);
	/* The settings reference needs no config file: docs/config.md is
	 * regenerated with `tegami config reference > docs/config.md`. */
	if (strcmp(cmd, "config") == 0 && i + 1 < argc &&
	    strcmp(argv[i + 1], "reference") == 0)
		return config_write_reference(stdout) == 0 ? 0 : 1;

	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "user") != 0 &&
	    strcmp(cmd, "alias") != 0 && strcmp(cmd, "config") != 0 &&
	    strcmp(cmd, "ca") != 0 && strcmp(cmd, "queue") != 0) {
		fprintf(stderr, "tegami: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}
	if (config_load(conf_path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	if (strcmp(cmd, "serve") == 0)
		status = cli_serve(cfg, argc - i, argv + i);
	else if (strcmp(cmd, "user") == 0)
		status = cli_user(cfg, argc - i, argv + i);
	else if (strcmp(cmd, "alias") == 0)
		status = cli_alias(cfg, argc - i, argv + i);
	else if (strcmp(cmd, "queue") == 0)
		status = cli_queue(cfg, argc - i, argv + i);
	else if (strcmp(cmd, "ca") == 0)
		status = cli_ca(cfg, argc - i, argv + i);
	else if (i + 1 < argc && strcmp(argv[i + 1], "check") == 0) {
		/* The routes file too: the queue process refuses to start
		 * with a broken one. */
		int n = queue_routes_check(cfg, err, sizeof(err));

		if (n < 0) {
			fprintf(stderr, "tegami: %s\n", err);
			status = 1;
		} else {
			printf("%s: ok\n", cfg->path);
			if (n > 0)
				printf("%s: ok, %d routes\n", cfg->routes_file,
				    n);
			status = 0;
		}
	} else {
		usage(stderr);
		status = 2;
	}
	config_free(&cfg);
	return status;
}
