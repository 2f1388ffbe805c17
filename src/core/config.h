/*
 * tegami.conf: "key = value" lines, "#" comments, one setting a line. Every
 * setting has a type, a default and bounds in one table (config.c), which
 * also writes the commented sample that `tegami init` installs and the
 * reference docs/config.md. Errors name the file and the line.
 */
#ifndef TEGAMI_CONFIG_H
#define TEGAMI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DOMAINS_MAX 256

struct tegami_config {
	char *path;		/* the file this was read from */
	char *state_dir;	/* state_dir, default: the file's directory */
	char *hostname;		/* hostname: banner, Received:, EHLO */
	char *domains[CONFIG_DOMAINS_MAX];	/* domains: lowercased */
	size_t n_domains;
	char *listen;		/* listen: one IPv4/IPv6 address */
	unsigned port_base;	/* port_base: 0 = standard ports */
	char *user;		/* user: unprivileged account, "tegami" */
	char *auth_user;	/* auth_user: the auth process's account */
	unsigned workers;	/* workers: front processes, 0 = one per core */
	unsigned disk_threads;	/* disk_threads: group-commit threads */

	uint64_t message_size_limit;	/* bytes */
	unsigned recipient_limit;	/* per message */
	unsigned max_connections;	/* per server, all workers together */
	unsigned max_connections_per_ip;
	unsigned smtp_error_limit;	/* errors per session before 421 */
	unsigned smtp_soft_error_limit;	/* errors before replies slow down */
	unsigned smtp_error_delay_ms;	/* delay of each reply past it */
	unsigned smtp_greeting_delay_ms;	/* wait for early talkers */
	unsigned smtp_timeout_command;	/* seconds, RFC 5321 4.5.3.2.7 */
	unsigned smtp_timeout_data_block;	/* seconds, 4.5.3.2.5 */
	unsigned smtp_data_deadline;	/* seconds for a whole DATA/BDAT */
	unsigned shutdown_grace;	/* seconds to finish transactions */
	unsigned auth_failure_delay_ms;	/* first failed login's delay */
	unsigned auth_failure_delay_max_ms;
	unsigned auth_failure_window;	/* seconds failures are counted */
	unsigned auth_ip_failure_limit;	/* per client network */
	unsigned auth_account_failure_limit;
	unsigned alias_depth_max;	/* nested alias expansion limit */
	uint64_t min_free_space;	/* bytes free in state_dir for MAIL */

	/* Outbound delivery (the queue process). */
	char *resolver;		/* NULL: system; "ADDR" or "ADDR@PORT" */
	char *dns_trust_anchor;	/* NULL: no DNSSEC validation */
	char *relay_host;	/* NULL: MX delivery; "HOST[:PORT]" */
	char *relay_auth_file;	/* NULL: no AUTH to the relay */
	char *outbound_tls;	/* none | may | encrypt | verify */
	char *tls_trust_file;	/* NULL, or extra CA certificates (PEM) */
	char *routes_file;	/* per-destination routes: absolute (a
				 * relative value is resolved against
				 * state_dir); missing file: no routes */
	unsigned queue_retry_min;	/* seconds */
	unsigned queue_retry_max;	/* seconds */
	unsigned queue_max_age;		/* seconds */
	unsigned queue_delay_warning;	/* seconds, 0: none */
	unsigned outbound_connections;
	unsigned outbound_connections_per_domain;

	/* POP3 (110 with STLS, 995 with TLS). */
	unsigned pop3_idle_timeout;	/* seconds, RFC 1939 3: >= 10 min */
	unsigned pop3_error_limit;	/* bad commands before the close */
	unsigned pop3_max_messages;	/* mailbox size POP3 will list */
	bool pop3_plaintext_loopback;	/* logins without TLS on 127/8, ::1 */
};

/*
 * Reads and checks the file. On success returns 0 and *cfg_r (free with
 * config_free). On error returns -1 and writes "FILE:LINE: what is wrong"
 * (or "FILE: what" when not about a line) into err. An unknown key, a
 * repeated key, a bad value or one out of bounds are all errors.
 */
int config_load(const char *path, struct tegami_config **cfg_r, char *err,
    size_t errsize);

/*
 * Parses config text held in memory (for tests and fuzzing); name is used
 * in error messages. state_dir defaults to the directory of name.
 */
int config_parse(const char *name, const char *text, size_t len,
    struct tegami_config **cfg_r, char *err, size_t errsize);

/* Frees *cfgp and sets it to NULL; NULL is allowed. */
void config_free(struct tegami_config **cfgp);

/* Values `tegami init` puts in the sample instead of the defaults. */
struct config_init_values {
	const char *domain;	/* the domains value: one name, or several
				 * separated by commas and/or spaces */
	const char *hostname;
	const char *listen;	/* NULL: the default */
	unsigned port_base;
	const char *user;	/* NULL: the default ("tegami") */
};

/*
 * Writes the whole commented configuration: every key with its
 * documentation, type, bounds and default; the init values set, all others
 * commented out at their defaults. Returns 0 or -1 on a write error.
 */
int config_write_sample(FILE *f, const struct config_init_values *values);

/* Writes docs/config.md, the reference table, in Markdown. */
int config_write_reference(FILE *f);

/* True when domain (any case) is one of cfg->domains. */
bool config_is_local_domain(const struct tegami_config *cfg,
    const char *domain);

/* The port of a service: port_base + standard port, or the standard port. */
unsigned config_service_port(const struct tegami_config *cfg,
    unsigned standard_port);

/*
 * Checks value (already trimmed) as setting key would take it in the file,
 * so that `tegami init` refuses what config_load would refuse later.
 * Returns 0, or -1 with the reason alone ("value out of range (0..64000)")
 * in err; an unknown key is -1 too.
 */
int config_check_value(const char *key, const char *value, char *err,
    size_t errsize);

/*
 * True when name is a DNS host name as mail needs it (RFC 1123 2.1,
 * RFC 3696 2): labels of 1-63 letters, digits and inner hyphens, at most
 * 253 octets, no trailing dot, a last label that is not all digits.
 * Either case; internationalised names must be given in their xn-- form.
 */
bool config_dns_name_ok(const char *name);

/* Parses yes/no/true/false/on/off (any case). Returns 0 or -1. */
int config_parse_bool(const char *s, bool *value_r);

#endif
