/*
 * Subcommands of the tegami binary. Each takes the arguments after its
 * name (argv[0] is the subcommand itself) and returns the process exit
 * status: 0 on success, 1 on an error it has already reported on stderr,
 * 2 on a usage error.
 */
#ifndef TEGAMI_CLI_H
#define TEGAMI_CLI_H

#include "core/config.h"

/* tegami init --dir DIR --domain DOMAIN [--hostname H] [--listen A]
 *             [--port-base N] [--user U] */
int cli_init(int argc, char **argv);
/* tegami -c CONF user add ADDRESS [--password-stdin] | del ADDRESS |
 * passwd ADDRESS [--password-stdin] | lock ADDRESS | unlock ADDRESS |
 * send-as ADDRESS [PATTERN...] | import FILE [--domain DOMAIN] | list */
int cli_user(const struct tegami_config *cfg, int argc, char **argv);
/* tegami -c CONF alias add ALIAS TARGET... | del ALIAS | list */
int cli_alias(const struct tegami_config *cfg, int argc, char **argv);
/* tegami -c CONF ca init|issue|renew|csr|selfsign|export|show|list|
 * revoke|crl ... */
int cli_ca(const struct tegami_config *cfg, int argc, char **argv);
/* tegami -c CONF queue list | show ID | flush [ID] | delete ID | bounce ID */
int cli_queue(const struct tegami_config *cfg, int argc, char **argv);
/*
 * tegami [-c CONF] sendmail [OPTIONS] [ADDRESS...] < MESSAGE, and the
 * binary invoked as "sendmail" (docs/sendmail.md). Reads conf_path itself
 * and returns sendmail's exit statuses (sysexits.h) instead of 1 and 2:
 * 0 only when the queue process has the message on disk, EX_USAGE,
 * EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_SOFTWARE, EX_IOERR,
 * EX_TEMPFAIL (not queued: the server is not running or said "later"),
 * EX_CONFIG (the config file cannot be read).
 */
int cli_sendmail(const char *conf_path, int argc, char **argv);
/* tegami -c CONF serve [--verbose] */
int cli_serve(struct tegami_config *cfg, int argc, char **argv);

/* After printing a listing: 0, or 1 with a message if stdout failed
 * (a full disk, a closed pipe): a listing cut short must not look whole. */
int cli_stdout_done(void);

/* The users and aliases paths (PATH_MAX buffers); 1 with a message when
 * state_dir is too long. */
int cli_account_paths(const struct tegami_config *cfg, char *users,
    char *aliases);

#endif
