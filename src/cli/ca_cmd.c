/*
 * `tegami ca ...`: the private certificate authority from the command line
 * (init, issue, renew, csr, selfsign, export, show, list, revoke, crl).
 * Parses arguments and reports; the work is done in src/ca.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ca/ca.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/util.h"

struct ca_args {
	struct ca_key_spec key;
	int days;
	bool force_days;
	bool passphrase_stdin;
	const char *name;
	const char *crl_url;
	bool no_crl_url;
	const char *pem, *der;
	const char **sans;
	size_t n_sans;
	const char *positional[2];
	size_t n_positional;
};

/* Which options a subcommand takes. */
#define OPT_KEY		0x01	/* --ecdsa, --rsa BITS */
#define OPT_DAYS	0x02	/* --days N */
#define OPT_FORCE	0x04	/* --force-days */
#define OPT_SAN		0x08	/* --san NAME */
#define OPT_NAME	0x10	/* --name NAME */
#define OPT_PASS	0x20	/* --passphrase-stdin */
#define OPT_EXPORT	0x40	/* --pem FILE | --der FILE */
#define OPT_CRL		0x80	/* --crl-url URL */
#define OPT_NOCRL	0x100	/* --no-crl-url */

static int
ca_usage(void)
{
	fprintf(stderr,
	    "usage: tegami [-c CONF] ca init [--ecdsa | --rsa BITS] [--days N]"
	    " [--name NAME]\n"
	    "                               [--crl-url URL] "
	    "[--passphrase-stdin]\n"
	    "       tegami [-c CONF] ca issue HOST [--san NAME]... [--days N]"
	    " [--force-days]\n"
	    "                               [--ecdsa | --rsa BITS] "
	    "[--crl-url URL | --no-crl-url]\n"
	    "                               [--passphrase-stdin]\n"
	    "       tegami [-c CONF] ca renew HOST [--days N] [--force-days] "
	    "[--ecdsa | --rsa BITS]\n"
	    "                               [--crl-url URL | --no-crl-url] "
	    "[--passphrase-stdin]\n"
	    "       tegami [-c CONF] ca csr HOST [--san NAME]... [--ecdsa | "
	    "--rsa BITS]\n"
	    "       tegami [-c CONF] ca selfsign HOST [--san NAME]... "
	    "[--days N] [--force-days]\n"
	    "       tegami [-c CONF] ca export --pem FILE | --der FILE\n"
	    "       tegami [-c CONF] ca show [HOST]\n"
	    "       tegami [-c CONF] ca list\n"
	    "       tegami [-c CONF] ca revoke SERIAL\n"
	    "       tegami [-c CONF] ca crl [--passphrase-stdin]\n");
	return 2;
}

static int
parse_int(const char *s, int *v_r)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT_MAX)
		return -1;
	*v_r = (int)v;
	return 0;
}

/* -1: usage error (already printed), 0: ok. */
static int
parse_args(int argc, char **argv, unsigned allowed, size_t max_positional,
    struct ca_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->sans = xcalloc((size_t)argc + 1, sizeof(*a->sans));
	for (i = 0; i < argc; i++) {
		const char *o = argv[i];
		bool has_arg = i + 1 < argc;

		if ((allowed & OPT_KEY) && strcmp(o, "--ecdsa") == 0) {
			a->key.type = CA_KEY_ECDSA;
		} else if ((allowed & OPT_KEY) && strcmp(o, "--rsa") == 0 &&
		    has_arg) {
			a->key.type = CA_KEY_RSA;
			if (parse_int(argv[++i], &a->key.bits) == -1) {
				fprintf(stderr, "tegami: --rsa %s: not a number "
				    "of bits\n", argv[i]);
				return -1;
			}
		} else if ((allowed & OPT_DAYS) && strcmp(o, "--days") == 0 &&
		    has_arg) {
			if (parse_int(argv[++i], &a->days) == -1 ||
			    a->days == 0) {
				fprintf(stderr, "tegami: --days %s: not a "
				    "positive number\n", argv[i]);
				return -1;
			}
		} else if ((allowed & OPT_FORCE) &&
		    strcmp(o, "--force-days") == 0) {
			a->force_days = true;
		} else if ((allowed & OPT_SAN) && strcmp(o, "--san") == 0 &&
		    has_arg) {
			a->sans[a->n_sans++] = argv[++i];
		} else if ((allowed & OPT_NAME) && strcmp(o, "--name") == 0 &&
		    has_arg) {
			a->name = argv[++i];
		} else if ((allowed & OPT_CRL) && strcmp(o, "--crl-url") == 0 &&
		    has_arg) {
			a->crl_url = argv[++i];
		} else if ((allowed & OPT_NOCRL) &&
		    strcmp(o, "--no-crl-url") == 0) {
			a->no_crl_url = true;
		} else if ((allowed & OPT_PASS) &&
		    strcmp(o, "--passphrase-stdin") == 0) {
			a->passphrase_stdin = true;
		} else if ((allowed & OPT_EXPORT) && strcmp(o, "--pem") == 0 &&
		    has_arg) {
			a->pem = argv[++i];
		} else if ((allowed & OPT_EXPORT) && strcmp(o, "--der") == 0 &&
		    has_arg) {
			a->der = argv[++i];
		} else if (o[0] != '-' && a->n_positional < max_positional) {
			a->positional[a->n_positional++] = o;
		} else {
			fprintf(stderr, "tegami: ca: unexpected argument "
			    "\"%s\"\n", o);
			ca_usage();
			return -1;
		}
	}
	return 0;
}

/* One line from stdin into buf, without its line end. */
static int
read_passphrase(char *buf, size_t size)
{
	size_t len = 0;
	ssize_t r;
	char c;

	for (;;) {
		r = read(STDIN_FILENO, &c, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			fprintf(stderr, "tegami: stdin: %s\n", strerror(errno));
			return -1;
		}
		if (r == 0 || c == '\n')
			break;
		if (len + 1 >= size) {
			fprintf(stderr, "tegami: the passphrase is longer "
			    "than %d characters\n", CA_PASSPHRASE_MAX);
			return -1;
		}
		buf[len++] = c;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (len == 0) {
		fprintf(stderr, "tegami: --passphrase-stdin: no passphrase "
		    "on stdin\n");
		return -1;
	}
	return 0;
}

/*
 * Server keys go to the group of the config's user: the unprivileged front
 * runs as that user and loads them again on SIGHUP. It holds the keys in
 * memory for TLS anyway, so reading the files gives it nothing more. The
 * CA key stays 0600.
 */
static void
key_group(const struct tegami_config *cfg, struct ca_issue_opts *opts)
{
	struct passwd *pw;

	if (cfg->user == NULL || (pw = getpwnam(cfg->user)) == NULL)
		return;
	if (geteuid() != 0 && getegid() != pw->pw_gid)
		return;
	opts->key_group_readable = true;
	opts->key_gid = pw->pw_gid;
}

static void
print_key_mode(const struct ca_issue_opts *opts)
{
	struct group *gr;

	if (!opts->key_group_readable) {
		printf("The key is readable by its owner only (0600).\n\n");
		return;
	}
	gr = getgrgid(opts->key_gid);
	if (gr != NULL)
		printf("The key is readable by group %s (0640), for the "
		    "server's reloads.\n\n", gr->gr_name);
	else
		printf("The key is readable by group %lu (0640), for the "
		    "server's reloads.\n\n", (unsigned long)opts->key_gid);
}

static int
show(const char *state_dir, const char *host)
{
	char err[1024];

	if (ca_show(state_dir, host, stdout, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	return cli_stdout_done();
}

static int
do_init(const struct tegami_config *cfg, struct ca_args *a,
    const char *passphrase)
{
	struct ca_init_opts opts;
	char name[CA_NAME_MAX + 1], err[1024];

	memset(&opts, 0, sizeof(opts));
	opts.key = a->key;
	opts.days = a->days;
	opts.passphrase = passphrase;
	opts.crl_url = a->crl_url;
	if (a->name != NULL)
		opts.name = a->name;
	else if (cfg->hostname != NULL && strlen("tegami Root CA ") +
	    strlen(cfg->hostname) <= CA_NAME_MAX) {
		snprintf(name, sizeof(name), "tegami Root CA %s",
		    cfg->hostname);
		opts.name = name;
	}
	if (ca_init(cfg->state_dir, &opts, err, sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	printf("Created the CA in %s/ca%s. Export the root certificate with "
	    "`tegami ca export --der FILE.crt`\nand import it into each "
	    "client (docs/tls.md).\n\n", cfg->state_dir,
	    passphrase != NULL ? " (key encrypted with the passphrase)" : "");
	if (a->crl_url != NULL)
		printf("Certificates issued from now on name the CRL at %s:\n"
		    "publish %s/ca/crl.der there after each `tegami ca crl`.\n\n",
		    a->crl_url, cfg->state_dir);
	return show(cfg->state_dir, NULL);
}

static int
do_issue(const struct tegami_config *cfg, struct ca_args *a,
    const char *passphrase, bool renew)
{
	struct ca_issue_opts opts;
	char serial[64], err[1024];
	int rc;

	memset(&opts, 0, sizeof(opts));
	opts.key = a->key;
	opts.days = a->days;
	opts.force_days = a->force_days;
	opts.sans = a->sans;
	opts.n_sans = a->n_sans;
	opts.passphrase = passphrase;
	opts.crl_url = a->crl_url;
	opts.no_crl_url = a->no_crl_url;
	key_group(cfg, &opts);
	if (renew)
		rc = ca_renew(cfg->state_dir, a->positional[0], &opts, serial,
		    err, sizeof(err));
	else
		rc = ca_issue(cfg->state_dir, a->positional[0], &opts, false,
		    serial, err, sizeof(err));
	if (rc == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	printf("%s certificate %s for %s in %s/tls\n", renew ? "Renewed:" :
	    "Issued", serial, a->positional[0], cfg->state_dir);
	print_key_mode(&opts);
	return show(cfg->state_dir, a->positional[0]);
}

static int
do_csr(const struct tegami_config *cfg, struct ca_args *a)
{
	struct ca_issue_opts opts;
	char err[1024];
	bool reused;

	memset(&opts, 0, sizeof(opts));
	opts.key = a->key;
	opts.sans = a->sans;
	opts.n_sans = a->n_sans;
	key_group(cfg, &opts);
	if (ca_csr(cfg->state_dir, a->positional[0], &opts, &reused, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	printf("Wrote %s/tls/%s.csr with the %s key %s/tls/%s.key.\n"
	    "Send the CSR to the public CA; put the chain it returns (the "
	    "certificate first,\nthen the intermediates) in %s/tls/%s.crt.\n",
	    cfg->state_dir, a->positional[0], reused ? "existing" : "new",
	    cfg->state_dir, a->positional[0], cfg->state_dir,
	    a->positional[0]);
	return cli_stdout_done();
}

static int
do_selfsign(const struct tegami_config *cfg, struct ca_args *a)
{
	struct ca_issue_opts opts;
	char err[1024];

	memset(&opts, 0, sizeof(opts));
	opts.key = a->key;
	opts.days = a->days;
	opts.force_days = a->force_days;
	opts.sans = a->sans;
	opts.n_sans = a->n_sans;
	key_group(cfg, &opts);
	if (ca_selfsign(cfg->state_dir, a->positional[0], &opts, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "tegami: %s\n", err);
		return 1;
	}
	printf("SELF-SIGNED certificate for %s in %s/tls: no CA vouches for "
	    "it, so every client\nwarns until this very certificate is "
	    "trusted there. Prefer `tegami ca issue`.\n", a->positional[0],
	    cfg->state_dir);
	print_key_mode(&opts);
	return show(cfg->state_dir, a->positional[0]);
}

int
cli_ca(const struct tegami_config *cfg, int argc, char **argv)
{
	static const struct {
		const char *name;
		unsigned opts;
		size_t min_pos, max_pos;
	} cmds[] = {
		{ "init", OPT_KEY | OPT_DAYS | OPT_NAME | OPT_CRL | OPT_PASS,
		    0, 0 },
		{ "issue", OPT_KEY | OPT_DAYS | OPT_FORCE | OPT_SAN | OPT_CRL |
		    OPT_NOCRL | OPT_PASS, 1, 1 },
		{ "renew", OPT_KEY | OPT_DAYS | OPT_FORCE | OPT_CRL | OPT_NOCRL |
		    OPT_PASS, 1, 1 },
		{ "csr", OPT_KEY | OPT_SAN, 1, 1 },
		{ "selfsign", OPT_KEY | OPT_DAYS | OPT_FORCE | OPT_SAN, 1, 1 },
		{ "export", OPT_EXPORT, 0, 0 },
		{ "show", 0, 0, 1 },
		{ "list", 0, 0, 0 },
		{ "revoke", 0, 1, 1 },
		{ "crl", OPT_PASS, 0, 0 },
	};
	char pass[CA_PASSPHRASE_MAX + 2], err[1024];
	const char *passphrase = NULL, *sub;
	struct ca_args a;
	size_t i;
	int rc = 1;

	if (argc < 2)
		return ca_usage();
	sub = argv[1];
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(sub, cmds[i].name) == 0)
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		fprintf(stderr, "tegami: ca: unknown subcommand \"%s\"\n", sub);
		return ca_usage();
	}
	if (parse_args(argc - 2, argv + 2, cmds[i].opts, cmds[i].max_pos,
	    &a) == -1) {
		free(a.sans);
		return 2;
	}
	if (a.n_positional < cmds[i].min_pos ||
	    (cmds[i].opts & OPT_EXPORT && (a.pem == NULL) == (a.der == NULL))) {
		free(a.sans);
		return ca_usage();
	}
	if (a.passphrase_stdin) {
		if (read_passphrase(pass, sizeof(pass)) == -1)
			goto out;
		passphrase = pass;
	}
	if (strcmp(sub, "init") == 0)
		rc = do_init(cfg, &a, passphrase);
	else if (strcmp(sub, "issue") == 0 || strcmp(sub, "renew") == 0)
		rc = do_issue(cfg, &a, passphrase, strcmp(sub, "renew") == 0);
	else if (strcmp(sub, "csr") == 0)
		rc = do_csr(cfg, &a);
	else if (strcmp(sub, "selfsign") == 0)
		rc = do_selfsign(cfg, &a);
	else if (strcmp(sub, "show") == 0)
		rc = show(cfg->state_dir, a.n_positional > 0 ?
		    a.positional[0] : NULL);
	else if (strcmp(sub, "list") == 0) {
		if (ca_list(cfg->state_dir, stdout, err, sizeof(err)) == -1) {
			fprintf(stderr, "tegami: %s\n", err);
			rc = 1;
		} else
			rc = cli_stdout_done();
	} else if (strcmp(sub, "export") == 0) {
		if (ca_export(cfg->state_dir, a.pem != NULL ? a.pem : a.der,
		    a.der != NULL, err, sizeof(err)) == -1) {
			fprintf(stderr, "tegami: %s\n", err);
			rc = 1;
		} else
			rc = 0;
	} else if (strcmp(sub, "revoke") == 0) {
		if (ca_revoke(cfg->state_dir, a.positional[0], err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "tegami: %s\n", err);
			rc = 1;
		} else {
			printf("Revoked %s; run `tegami ca crl` to publish "
			    "it.\n", a.positional[0]);
			rc = cli_stdout_done();
		}
	} else {
		if (ca_crl(cfg->state_dir, passphrase, 0, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "tegami: %s\n", err);
			rc = 1;
		} else {
			printf("Wrote %s/ca/crl.pem and %s/ca/crl.der (DER, "
			    "for a CRL URL)\n", cfg->state_dir,
			    cfg->state_dir);
			rc = cli_stdout_done();
		}
	}
out:
	OPENSSL_cleanse(pass, sizeof(pass));
	free(a.sans);
	return rc;
}
