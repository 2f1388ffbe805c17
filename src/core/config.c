/*
 * tegami.conf: one table of settings (name, type, field, default, bounds,
 * documentation) drives the parser, the sample that `tegami init` writes
 * and docs/config.md, so the three can never disagree (Postfix's var_/DEF_).
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config.h"
#include "core/util.h"

#define CONFIG_LINE_MAX 4096		/* bytes, without the line end */
#define CONFIG_FILE_MAX (1024 * 1024)	/* bytes; a config is a few KiB */
#define CONFIG_STRING_MAX 255		/* bytes of a string value */
#define CONFIG_PATH_MAX 1024		/* bytes of a path value */
#define CONFIG_NAME_SHOWN_MAX 64	/* bytes of a bad name in a message */
#define CONFIG_WRAP_COLUMNS 76		/* sample comment width */

/* The largest standard port a service adds to port_base (pop3s). */
#define CONFIG_STANDARD_PORT_MAX 995
#define CONFIG_PORT_BASE_MAX 64000

_Static_assert(CONFIG_PORT_BASE_MAX + CONFIG_STANDARD_PORT_MAX <= 65535,
    "port_base max leaves a service beyond port 65535");

#define KIB UINT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define TIB (GIB * 1024)

enum config_type {
	CT_STRING,	/* one word of printable text */
	CT_PATH,	/* an absolute path */
	CT_FILE,	/* a path, relative ones below state_dir */
	CT_HOSTNAME,	/* a DNS name, lowercased */
	CT_ADDRESS,	/* a numeric IPv4 or IPv6 address */
	CT_UINT,	/* decimal */
	CT_SIZE,	/* bytes, K/M/G/T suffix */
	CT_DURATION,	/* seconds, s/m/h/d suffix */
	CT_BOOL,
	CT_DOMAINS,	/* DNS names, lowercased, CONFIG_DOMAINS_MAX */
};

static const char *const config_type_names[] = {
	[CT_STRING] = "string",
	[CT_PATH] = "path",
	[CT_FILE] = "file",
	[CT_HOSTNAME] = "hostname",
	[CT_ADDRESS] = "address",
	[CT_UINT] = "number",
	[CT_SIZE] = "size",
	[CT_DURATION] = "duration",
	[CT_BOOL] = "bool",
	[CT_DOMAINS] = "domain list",
};

struct config_setting {
	const char *name;
	enum config_type type;
	size_t offset;		/* of the field in struct tegami_config */
	size_t size;		/* of that field, checked when storing */
	const char *def;	/* default, parsed like a value; NULL: none */
	const char *def_doc;	/* shown when def is NULL */
	uint64_t min, max;	/* numeric types only */
	const char *doc;	/* one paragraph */
};

#define FIELD(m) offsetof(struct tegami_config, m),			\
	sizeof(((struct tegami_config *)NULL)->m)

static const struct config_setting config_settings[] = {
	{ "state_dir", CT_PATH, FIELD(state_dir), NULL,
	  "the directory holding this file", 0, 0,
	  "The state directory: the users and aliases files, mail/ (one "
	  "Maildir per user), queue/, ca/ and tls/ live here, and everything "
	  "the server writes stays below it." },
	{ "hostname", CT_HOSTNAME, FIELD(hostname), NULL,
	  "required", 0, 0,
	  "The name of this server: used in the SMTP greeting, the EHLO "
	  "reply, Received: header fields and as the name on its TLS "
	  "certificate. It should be the name the MX records of the domains "
	  "point to, and the listen address should resolve back to it. "
	  "`tegami init` sets it to mail.DOMAIN unless --hostname is given." },
	{ "domains", CT_DOMAINS, FIELD(domains), NULL,
	  "required", 0, 0,
	  "The domains this server receives mail for, separated by commas "
	  "and/or spaces (at most 256). Their users' mailboxes live here; "
	  "mail to any other domain is relayed only for authenticated users. "
	  "Names are compared without regard to case; an internationalised "
	  "name is given in its xn-- form." },
	{ "listen", CT_ADDRESS, FIELD(listen), "0.0.0.0", NULL, 0, 0,
	  "The address every service listens on: one numeric IPv4 or IPv6 "
	  "address; 0.0.0.0 means all IPv4 addresses and :: all IPv6 ones. "
	  "`tegami init` writes 127.0.0.1 (or its --listen) so that a new "
	  "server is not reachable from the network until this is changed." },
	{ "port_base", CT_UINT, FIELD(port_base), "0", NULL,
	  0, CONFIG_PORT_BASE_MAX,
	  "Moves every service to port_base plus its standard port (25, 587, "
	  "465, 110, 995, 143, 993): with 10000, SMTP listens on 10025. 0 "
	  "keeps the standard ports, which only root can bind. Lets several "
	  "servers share one machine and tests run without root." },
	{ "user", CT_STRING, FIELD(user), "tegami", NULL, 0, 0,
	  "The unprivileged system account the server processes run as once "
	  "the ports are bound, and the owner of mail/ and queue/. When the "
	  "server is started as root it must exist: useradd --system "
	  "--no-create-home --shell /usr/sbin/nologin tegami." },
	{ "auth_user", CT_STRING, FIELD(auth_user), "tegami-auth", NULL, 0,
	  0,
	  "The unprivileged system account of the auth process, the only "
	  "process that reads the password hashes in the users file (which "
	  "is made root:AUTH_USER's group, mode 0640, at start). It must "
	  "differ from user, so that the network-facing processes cannot "
	  "read the hashes: useradd --system --no-create-home --shell "
	  "/usr/sbin/nologin tegami-auth." },
	{ "workers", CT_UINT, FIELD(workers), "0", NULL, 0, 64,
	  "Front processes that speak SMTP, POP3, IMAP and TLS to clients, "
	  "sharing the listening sockets. 0 starts one per CPU core." },
	{ "disk_threads", CT_UINT, FIELD(disk_threads), "4", NULL, 1, 64,
	  "Threads that fsync received messages and rename them into place, "
	  "and do the slow disk work of POP3 sessions (the listing at login, "
	  "the renames and removals at QUIT). Messages that finish within the same few milliseconds share one "
	  "fsync of their directories (group commit), so a few threads serve "
	  "many sessions." },
	{ "message_size_limit", CT_SIZE, FIELD(message_size_limit), "25M",
	  NULL, KIB, 2 * GIB,
	  "The largest message accepted, announced with the EHLO SIZE "
	  "keyword (RFC 1870). A MAIL FROM with a larger SIZE= is refused, "
	  "and so is a message whose data grows beyond it (552 5.3.4)." },
	{ "recipient_limit", CT_UINT, FIELD(recipient_limit), "100", NULL,
	  1, 100000,
	  "Recipients accepted for one message; further RCPT TO commands get "
	  "452 4.5.3 and the client sends them in another transaction. RFC "
	  "5321 4.5.3.1.8 asks a server to accept at least 100." },
	{ "max_connections", CT_UINT, FIELD(max_connections), "1000", NULL,
	  1, 100000,
	  "Connections served at once by the whole server, all services and "
	  "workers together. Connections beyond it are refused." },
	{ "max_connections_per_ip", CT_UINT, FIELD(max_connections_per_ip),
	  "50", NULL, 1, 100000,
	  "Connections served at once for one client address (an IPv6 "
	  "client counts by its /64), so that one host cannot take every "
	  "slot of max_connections. 50 is Postfix's default too "
	  "(smtpd_client_connection_count_limit)." },
	{ "smtp_error_limit", CT_UINT, FIELD(smtp_error_limit), "20", NULL,
	  1, 1000,
	  "Errors (unknown commands, bad syntax, refused recipients) one SMTP "
	  "session may make; at the limit the server answers 421 and closes "
	  "the connection, which slows address harvesting and abuse." },
	{ "smtp_soft_error_limit", CT_UINT, FIELD(smtp_soft_error_limit),
	  "10", NULL, 0, 1000,
	  "Errors one SMTP session may make before every further error "
	  "reply is held back by smtp_error_delay_ms (Postfix's "
	  "smtpd_soft_error_limit): guessing recipient addresses over RCPT "
	  "becomes slow, while a client that makes a few mistakes never "
	  "notices." },
	{ "smtp_error_delay_ms", CT_UINT, FIELD(smtp_error_delay_ms), "1000",
	  NULL, 0, 60000,
	  "Milliseconds by which each error reply past smtp_soft_error_limit "
	  "is delayed; the session reads nothing meanwhile. 0 turns the "
	  "delay off." },
	{ "smtp_greeting_delay_ms", CT_UINT, FIELD(smtp_greeting_delay_ms),
	  "0", NULL, 0, 60000,
	  "Milliseconds to wait before the SMTP greeting. When set, clients "
	  "that talk before the banner (as many spam bots do) are "
	  "disconnected. 0 greets at once." },
	{ "smtp_timeout_command", CT_DURATION, FIELD(smtp_timeout_command),
	  "300s", NULL, 1, 3600,
	  "How long the server waits for the next SMTP command before it "
	  "closes the connection with 421 (RFC 5321 4.5.3.2.7 asks for at "
	  "least 5 minutes)." },
	{ "smtp_timeout_data_block", CT_DURATION,
	  FIELD(smtp_timeout_data_block), "180s", NULL, 1, 3600,
	  "How long the server waits for the next block of message data "
	  "during DATA or BDAT (RFC 5321 4.5.3.2.5 asks for at least 3 "
	  "minutes)." },
	{ "smtp_data_deadline", CT_DURATION, FIELD(smtp_data_deadline),
	  "600s", NULL, 1, 86400,
	  "The longest a whole DATA or BDAT transfer may take, however "
	  "steadily the client trickles bytes: a client sending one byte per "
	  "timeout cannot hold a session for ever." },
	{ "shutdown_grace", CT_DURATION, FIELD(shutdown_grace), "30s", NULL,
	  0, 3600,
	  "On shutdown, how long sessions in the middle of a transaction may "
	  "take to finish before their connections are closed. No "
	  "acknowledged message is lost either way: a message is "
	  "acknowledged only once it is on disk." },
	{ "auth_failure_delay_ms", CT_UINT, FIELD(auth_failure_delay_ms),
	  "2000", NULL, 0, 60000,
	  "Milliseconds the reply to a failed login is held back; each "
	  "further failure from the same client network within "
	  "auth_failure_window doubles it, up to auth_failure_delay_max_ms. "
	  "Password guessing becomes slow while a user who mistypes once "
	  "barely notices." },
	{ "auth_failure_delay_max_ms", CT_UINT,
	  FIELD(auth_failure_delay_max_ms), "15000", NULL, 0, 600000,
	  "The longest a failed login's reply is held back." },
	{ "auth_failure_window", CT_DURATION, FIELD(auth_failure_window),
	  "15m", NULL, 1, 86400,
	  "How long failed logins are remembered, and the longest a client "
	  "network or an account stays refused once over its limit." },
	{ "auth_ip_failure_limit", CT_UINT, FIELD(auth_ip_failure_limit),
	  "10", NULL, 1, 100000,
	  "Failed logins from one client network (an IPv4 address, an IPv6 "
	  "/64) within auth_failure_window, after which its login attempts "
	  "are refused with 454 4.7.0, without a password check, until the "
	  "window has passed." },
	{ "auth_account_failure_limit", CT_UINT,
	  FIELD(auth_account_failure_limit), "20", NULL, 1, 100000,
	  "Failed logins for one account, from anywhere, within "
	  "auth_failure_window, after which attempts for it are refused "
	  "(454 4.7.0) for the rest of the window, except from networks "
	  "that have logged in to the account successfully before: a "
	  "stranger's guessing does not lock the real user out." },
	{ "alias_depth_max", CT_UINT, FIELD(alias_depth_max), "10", NULL,
	  1, 100,
	  "How deeply aliases may point to other aliases. A recipient whose "
	  "expansion goes deeper, or loops, is refused with 550 5.4.6." },
	{ "min_free_space", CT_SIZE, FIELD(min_free_space), "64M", NULL,
	  0, TIB,
	  "When less than this is free on the file system of state_dir, MAIL "
	  "FROM gets 452 4.3.1 (insufficient system storage) so that senders "
	  "retry later instead of the disk filling up. 0 turns the check "
	  "off." },
	{ "resolver", CT_STRING, FIELD(resolver), NULL,
	  "the system's (/etc/resolv.conf)", 0, 0,
	  "The DNS server outbound delivery asks for MX and address "
	  "records: a numeric address, or ADDRESS@PORT. A local validating "
	  "resolver (unbound) makes DNSSEC and DANE possible." },
	{ "dns_trust_anchor", CT_PATH, FIELD(dns_trust_anchor), NULL,
	  "none: no DNSSEC validation, no DANE", 0, 0,
	  "A DNSSEC trust anchor file (unbound-anchor writes one, e.g. "
	  "/usr/share/dns/root.key). With it the resolver validates "
	  "answers, and outbound delivery uses DANE (RFC 7672): when a "
	  "domain's MX records and the MX host's TLSA records are signed, "
	  "TLS is required and the certificate must match them. A local "
	  "validating resolver in the resolver setting does as well." },
	{ "relay_host", CT_STRING, FIELD(relay_host), NULL,
	  "none: deliver to each domain's MX", 0, 0,
	  "A smarthost that takes all outbound mail: HOST or HOST:PORT "
	  "(port 587 by default, STARTTLS required; port 465 means TLS "
	  "from the first byte). This is how a server on a network that "
	  "blocks outgoing port 25 (OP25B) reaches the world: through the "
	  "ISP's submission server." },
	{ "relay_auth_file", CT_PATH, FIELD(relay_auth_file), NULL,
	  "none: no AUTH", 0, 0,
	  "For relay_host: a file holding one line \"USER PASSWORD\", mode "
	  "0600 and owned by root or user; tegami logs in with AUTH PLAIN "
	  "(or LOGIN) over TLS." },
	{ "tls_trust_file", CT_PATH, FIELD(tls_trust_file), NULL,
	  "none: the system's trust store only", 0, 0,
	  "More CA certificates (PEM) that outbound delivery trusts besides "
	  "the system's, for relay_host and outbound_tls = verify: another "
	  "tegami's exported root (`tegami ca export --pem`), or a company "
	  "CA." },
	{ "outbound_tls", CT_STRING, FIELD(outbound_tls), "may", NULL, 0, 0,
	  "TLS for outbound delivery to MX hosts: none, may (STARTTLS when "
	  "offered, the certificate not checked: what most of the Internet "
	  "does), encrypt (TLS required), verify (TLS and a certificate "
	  "valid for the MX name required). The relay_host always needs "
	  "TLS and a valid certificate. routes_file can set another policy "
	  "per destination." },
	{ "routes_file", CT_FILE, FIELD(routes_file), "routes", NULL, 0, 0,
	  "Per-destination routes and TLS policies (STATE/routes by "
	  "default), one line per domain: "
	  "\"DOMAIN [relay=HOST[:PORT]|relay=mx] [tls=none|may|encrypt|verify] "
	  "[auth=FILE]\"; they override relay_host, outbound_tls and "
	  "relay_auth_file for that destination (docs/queue.md). A missing "
	  "file means no routes. The queue process reads it again when it "
	  "changes; a broken one is refused at start and ignored (the old "
	  "routes kept) later." },
	{ "queue_retry_min", CT_DURATION, FIELD(queue_retry_min), "5m", NULL,
	  1, 86400,
	  "The wait before the first retry of a message that could not be "
	  "delivered; it doubles with each attempt up to queue_retry_max." },
	{ "queue_retry_max", CT_DURATION, FIELD(queue_retry_max), "1h", NULL,
	  1, 86400,
	  "The longest wait between two attempts." },
	{ "queue_max_age", CT_DURATION, FIELD(queue_max_age), "5d", NULL,
	  10, 30 * 86400,
	  "How long a message is retried before it is returned to its "
	  "sender as undeliverable." },
	{ "queue_delay_warning", CT_DURATION, FIELD(queue_delay_warning),
	  "4h", NULL, 0, 30 * 86400,
	  "After this long without delivery the sender gets one warning "
	  "that the message is delayed and still being retried. 0: no "
	  "warning." },
	{ "outbound_connections", CT_UINT, FIELD(outbound_connections), "20",
	  NULL, 1, 1000,
	  "Outbound SMTP connections at once, all destinations together." },
	{ "outbound_connections_per_domain", CT_UINT,
	  FIELD(outbound_connections_per_domain), "4", NULL, 1, 100,
	  "Outbound SMTP connections at once to one destination domain, so "
	  "that a burst to one domain does not look like an attack to it." },
	{ "pop3_idle_timeout", CT_DURATION, FIELD(pop3_idle_timeout), "10m",
	  NULL, 10, 86400,
	  "How long a POP3 session may stay silent before the server closes "
	  "it. RFC 1939 3 asks for at least 10 minutes; shorter values are "
	  "for tests." },
	{ "pop3_error_limit", CT_UINT, FIELD(pop3_error_limit), "10", NULL,
	  1, 1000,
	  "Bad POP3 commands (unknown, malformed, in the wrong state, or "
	  "naming a message that does not exist) a session may send before "
	  "the server says -ERR and closes it." },
	{ "pop3_max_messages", CT_UINT, FIELD(pop3_max_messages), "1000000",
	  NULL, 1, 10000000,
	  "The most messages a mailbox may hold for POP3 to list it; a "
	  "bigger one gets -ERR [SYS/PERM] at login rather than a session "
	  "that uses unbounded memory. IMAP or the file system can still "
	  "read it." },
	{ "pop3_plaintext_loopback", CT_BOOL, FIELD(pop3_plaintext_loopback),
	  "no", NULL, 0, 0,
	  "Whether POP3 on port 110 accepts USER/PASS and AUTH without TLS "
	  "from the loopback addresses (127.0.0.0/8, ::1), for a local "
	  "webmail or fetchmail on the same machine. Every other client must "
	  "use STLS or port 995 first." },
};

#define CONFIG_N_SETTINGS (sizeof(config_settings) / sizeof(config_settings[0]))

/* A parsed value, before it is stored into the config. */
struct config_value {
	uint64_t num;
	bool flag;
	char *str;
	char *domains[CONFIG_DOMAINS_MAX];
	size_t n_domains;
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/*
 * Copies untrusted text for an error message: printable ASCII as is, the
 * rest as \xNN, at most CONFIG_NAME_SHOWN_MAX input bytes then "...".
 */
static const char *
shown(const char *s, size_t len, char *buf, size_t bufsize)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < len && i < CONFIG_NAME_SHOWN_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 5 >= bufsize)
			break;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c;
		else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (i < len && o + 4 <= bufsize) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

bool
config_dns_name_ok(const char *name)
{
	size_t len = strlen(name), i, label = 0;
	bool digits_only = true;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return false;
			label = 0;
			digits_only = true;
			continue;
		}
		if (c == '-') {
			if (label == 0)
				return false;
		} else if (!ascii_alnum(c))
			return false;
		if (c < '0' || c > '9')
			digits_only = false;
		if (++label > 63)
			return false;
	}
	/* An empty or hyphen-ended last label, or an all-numeric top label
	 * (RFC 3696 2: it would be read as an address). */
	return label > 0 && name[len - 1] != '-' && !digits_only;
}

int
config_parse_bool(const char *s, bool *value_r)
{
	static const char *const yes[] = { "yes", "true", "on" };
	static const char *const no[] = { "no", "false", "off" };
	size_t i;

	for (i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*value_r = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*value_r = false;
			return 0;
		}
	}
	return -1;
}

/* Formats a bound or default of a numeric type for messages and docs. */
static const char *
format_number(enum config_type type, uint64_t v, char *buf, size_t bufsize)
{
	static const struct {
		uint64_t unit;
		char suffix;
	} sizes[] = { { TIB, 'T' }, { GIB, 'G' }, { MIB, 'M' }, { KIB, 'K' } };
	size_t i;

	if (type == CT_SIZE && v != 0) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			if (v % sizes[i].unit == 0) {
				snprintf(buf, bufsize, "%llu%c",
				    (unsigned long long)(v / sizes[i].unit),
				    sizes[i].suffix);
				return buf;
			}
		}
	}
	snprintf(buf, bufsize, "%llu%s", (unsigned long long)v,
	    type == CT_DURATION ? "s" : "");
	return buf;
}

static void
range_reason(const struct config_setting *s, char *why, size_t whysize)
{
	char lo[32], hi[32];

	set_err(why, whysize, "value out of range (%s..%s)",
	    format_number(s->type, s->min, lo, sizeof(lo)),
	    format_number(s->type, s->max, hi, sizeof(hi)));
}

/*
 * Parses "digits[suffix]" for uint, size and duration. Digits only: no
 * sign, no spaces, no hex, so that "-1" or "0x10" never mean something
 * other than what they look like.
 */
static int
parse_numeric(const struct config_setting *s, const char *value,
    uint64_t *num_r, char *why, size_t whysize)
{
	const char *p = value;
	uint64_t v = 0, mult = 1;
	bool overflow = false;
	char buf[16];

	if (*p < '0' || *p > '9') {
		set_err(why, whysize, "not a number");
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	if (*p != '\0') {
		char c = ascii_lower(*p);

		if (s->type == CT_SIZE && p[1] == '\0' &&
		    (c == 'k' || c == 'm' || c == 'g' || c == 't'))
			mult = c == 'k' ? KIB : c == 'm' ? MIB :
			    c == 'g' ? GIB : TIB;
		else if (s->type == CT_DURATION && p[1] == '\0' &&
		    (c == 's' || c == 'm' || c == 'h' || c == 'd'))
			mult = c == 's' ? 1 : c == 'm' ? 60 :
			    c == 'h' ? 3600 : 86400;
		else if (s->type == CT_SIZE) {
			set_err(why, whysize, "unknown unit \"%s\" "
			    "(K, M, G or T)", shown(p, strlen(p), buf,
			    sizeof(buf)));
			return -1;
		} else if (s->type == CT_DURATION) {
			set_err(why, whysize, "unknown unit \"%s\" "
			    "(s, m, h or d)", shown(p, strlen(p), buf,
			    sizeof(buf)));
			return -1;
		} else {
			set_err(why, whysize, "not a number");
			return -1;
		}
	}
	if (!overflow && v > UINT64_MAX / mult)
		overflow = true;
	v *= mult;
	if (overflow || v < s->min || v > s->max) {
		range_reason(s, why, whysize);
		return -1;
	}
	*num_r = v;
	return 0;
}

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int
parse_domains(const char *value, struct config_value *v, char *why,
    size_t whysize)
{
	const char *p = value, *start;
	char buf[CONFIG_NAME_SHOWN_MAX * 4 + 8];
	size_t len, i;

	for (;;) {
		while (*p == ',' || is_blank(*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && !is_blank(*p))
			p++;
		len = (size_t)(p - start);
		if (v->n_domains == CONFIG_DOMAINS_MAX) {
			set_err(why, whysize, "more than %d domains",
			    CONFIG_DOMAINS_MAX);
			return -1;
		}
		if ((v->domains[v->n_domains] = strndup(start, len)) == NULL) {
			set_err(why, whysize, "%s", strerror(errno));
			return -1;
		}
		for (i = 0; i < len; i++)
			v->domains[v->n_domains][i] =
			    ascii_lower(v->domains[v->n_domains][i]);
		v->n_domains++;
		if (!config_dns_name_ok(v->domains[v->n_domains - 1])) {
			set_err(why, whysize, "\"%s\" is not a valid domain "
			    "name", shown(start, len, buf, sizeof(buf)));
			return -1;
		}
		for (i = 0; i + 1 < v->n_domains; i++) {
			if (strcmp(v->domains[i],
			    v->domains[v->n_domains - 1]) == 0) {
				set_err(why, whysize, "\"%s\" is listed twice",
				    v->domains[i]);
				return -1;
			}
		}
	}
	if (v->n_domains == 0) {
		set_err(why, whysize, "at least one domain is required");
		return -1;
	}
	return 0;
}

/*
 * Parses a non-empty trimmed value of setting s into *v (which the caller
 * clears). Returns 0, or -1 with the reason in why.
 */
static int
parse_value(const struct config_setting *s, const char *value,
    struct config_value *v, char *why, size_t whysize)
{
	unsigned char addr[sizeof(struct in6_addr)];
	size_t i;

	switch (s->type) {
	case CT_STRING:
		if (strlen(value) > CONFIG_STRING_MAX) {
			set_err(why, whysize, "longer than %d bytes",
			    CONFIG_STRING_MAX);
			return -1;
		}
		for (i = 0; value[i] != '\0'; i++) {
			unsigned char c = (unsigned char)value[i];

			if (c <= 0x20 || c == 0x7f || (i == 0 && c == '#')) {
				set_err(why, whysize, "must be one word of "
				    "printable characters");
				return -1;
			}
		}
		break;
	case CT_PATH:
	case CT_FILE:
		if (s->type == CT_PATH && value[0] != '/') {
			set_err(why, whysize, "not an absolute path");
			return -1;
		}
		if (strlen(value) > CONFIG_PATH_MAX) {
			set_err(why, whysize, "longer than %d bytes",
			    CONFIG_PATH_MAX);
			return -1;
		}
		if (has_control(value)) {
			set_err(why, whysize, "contains a control character");
			return -1;
		}
		break;
	case CT_HOSTNAME:
		if (!config_dns_name_ok(value)) {
			set_err(why, whysize, "not a valid DNS name");
			return -1;
		}
		break;
	case CT_ADDRESS:
		if (inet_pton(AF_INET, value, addr) != 1 &&
		    inet_pton(AF_INET6, value, addr) != 1) {
			set_err(why, whysize, "not a numeric IPv4 or IPv6 "
			    "address");
			return -1;
		}
		break;
	case CT_UINT:
	case CT_SIZE:
	case CT_DURATION:
		return parse_numeric(s, value, &v->num, why, whysize);
	case CT_BOOL:
		if (config_parse_bool(value, &v->flag) < 0) {
			set_err(why, whysize, "not yes, no, true, false, on "
			    "or off");
			return -1;
		}
		return 0;
	case CT_DOMAINS:
		return parse_domains(value, v, why, whysize);
	}
	if ((v->str = strdup(value)) == NULL) {
		set_err(why, whysize, "%s", strerror(errno));
		return -1;
	}
	if (s->type == CT_HOSTNAME)
		for (i = 0; v->str[i] != '\0'; i++)
			v->str[i] = ascii_lower(v->str[i]);
	return 0;
}

static void
config_value_clear(struct config_value *v)
{
	size_t i;

	free(v->str);
	for (i = 0; i < v->n_domains; i++)
		free(v->domains[i]);
	memset(v, 0, sizeof(*v));
}

/* Moves a parsed value into its field; v's pointers are taken over. */
static void
store_value(struct tegami_config *cfg, const struct config_setting *s,
    struct config_value *v)
{
	char *field = (char *)cfg + s->offset;
	size_t i;

	switch (s->type) {
	case CT_STRING:
	case CT_PATH:
	case CT_FILE:
	case CT_HOSTNAME:
	case CT_ADDRESS:
		if (s->size != sizeof(char *))
			abort();
		free(*(char **)(void *)field);
		*(char **)(void *)field = v->str;
		v->str = NULL;
		break;
	case CT_UINT:
	case CT_SIZE:
	case CT_DURATION:
		if (s->size == sizeof(uint64_t))
			*(uint64_t *)(void *)field = v->num;
		else if (s->size == sizeof(unsigned) && s->max <= UINT_MAX)
			*(unsigned *)(void *)field = (unsigned)v->num;
		else
			abort();	/* the table does not fit the struct */
		break;
	case CT_BOOL:
		if (s->size != sizeof(bool))
			abort();
		*(bool *)(void *)field = v->flag;
		break;
	case CT_DOMAINS:
		if (s->offset != offsetof(struct tegami_config, domains))
			abort();
		for (i = 0; i < cfg->n_domains; i++)
			free(cfg->domains[i]);
		memcpy(cfg->domains, v->domains,
		    v->n_domains * sizeof(v->domains[0]));
		cfg->n_domains = v->n_domains;
		v->n_domains = 0;
		break;
	}
}

static const struct config_setting *
find_setting(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < CONFIG_N_SETTINGS; i++)
		if (strlen(config_settings[i].name) == len &&
		    memcmp(config_settings[i].name, name, len) == 0)
			return &config_settings[i];
	return NULL;
}

int
config_check_value(const char *key, const char *value, char *err,
    size_t errsize)
{
	const struct config_setting *s;
	struct config_value v;
	int rc;

	if ((s = find_setting(key, strlen(key))) == NULL) {
		set_err(err, errsize, "unknown setting");
		return -1;
	}
	if (value[0] == '\0') {
		set_err(err, errsize, "no value");
		return -1;
	}
	if (is_blank(value[0]) || is_blank(value[strlen(value) - 1]) ||
	    strchr(value, '\n') != NULL || strchr(value, '\r') != NULL) {
		set_err(err, errsize, "leading or trailing space or a line "
		    "break");
		return -1;
	}
	memset(&v, 0, sizeof(v));
	rc = parse_value(s, value, &v, err, errsize);
	config_value_clear(&v);
	return rc;
}

void
config_free(struct tegami_config **cfgp)
{
	struct tegami_config *cfg;
	size_t i;

	if (cfgp == NULL || (cfg = *cfgp) == NULL)
		return;
	free(cfg->path);
	free(cfg->state_dir);
	free(cfg->hostname);
	for (i = 0; i < cfg->n_domains; i++)
		free(cfg->domains[i]);
	free(cfg->listen);
	free(cfg->user);
	free(cfg->auth_user);
	free(cfg->resolver);
	free(cfg->dns_trust_anchor);
	free(cfg->relay_host);
	free(cfg->relay_auth_file);
	free(cfg->outbound_tls);
	free(cfg->tls_trust_file);
	free(cfg->routes_file);
	free(cfg);
	*cfgp = NULL;
}

/* The absolute, symlink-free directory that holds the file name. */
static char *
directory_of(const char *name)
{
	const char *slash = strrchr(name, '/');
	char *dir, *real;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == name)
		dir = strdup("/");
	else
		dir = strndup(name, (size_t)(slash - name));
	if (dir == NULL)
		return NULL;
	real = realpath(dir, NULL);
	free(dir);
	return real;
}

/* A file setting's relative value names a file below state_dir. */
static int
resolve_file(const char *name, const char *key, char **value,
    const char *state_dir, char *err, size_t errsize)
{
	char *abs;

	if (*value == NULL || (*value)[0] == '/')
		return 0;
	if (strlen(state_dir) + 1 + strlen(*value) > CONFIG_PATH_MAX) {
		set_err(err, errsize, "%s: %s: state_dir/%s is longer than %d "
		    "bytes", name, key, *value, CONFIG_PATH_MAX);
		return -1;
	}
	if (asprintf(&abs, "%s%s%s", state_dir, strcmp(state_dir, "/") == 0 ?
	    "" : "/", *value) < 0) {
		set_err(err, errsize, "%s: %s", name, strerror(errno));
		return -1;
	}
	free(*value);
	*value = abs;
	return 0;
}

/*
 * Handles one line (without its line end, NUL-free, at most
 * CONFIG_LINE_MAX bytes). lines[] holds the line each setting was set on.
 */
static int
parse_line(struct tegami_config *cfg, const char *name, unsigned lineno,
    char *line, unsigned *lines, char *err, size_t errsize)
{
	const struct config_setting *s;
	struct config_value v;
	char *key, *value, *eq, *end, why[256];
	char buf[CONFIG_NAME_SHOWN_MAX * 4 + 8];
	size_t i, keylen;

	/* "#" starts a comment at the start of a line or after a blank;
	 * "a#b" stays a value. */
	for (i = 0; line[i] != '\0'; i++) {
		if (line[i] == '#' && (i == 0 || is_blank(line[i - 1]))) {
			line[i] = '\0';
			break;
		}
	}
	for (key = line; is_blank(*key); key++)
		;
	if (*key == '\0')
		return 0;
	if ((eq = strchr(key, '=')) == NULL) {
		set_err(err, errsize, "%s:%u: missing '='", name, lineno);
		return -1;
	}
	for (end = eq; end > key && is_blank(end[-1]); end--)
		;
	keylen = (size_t)(end - key);
	if (keylen == 0) {
		set_err(err, errsize, "%s:%u: missing setting name before '='",
		    name, lineno);
		return -1;
	}
	if ((s = find_setting(key, keylen)) == NULL) {
		set_err(err, errsize, "%s:%u: unknown setting \"%s\"", name,
		    lineno, shown(key, keylen, buf, sizeof(buf)));
		return -1;
	}
	i = (size_t)(s - config_settings);
	if (lines[i] != 0) {
		set_err(err, errsize, "%s:%u: setting \"%s\" given twice "
		    "(first on line %u)", name, lineno, s->name, lines[i]);
		return -1;
	}
	for (value = eq + 1; is_blank(*value); value++)
		;
	for (end = value + strlen(value); end > value && is_blank(end[-1]);
	    end--)
		;
	*end = '\0';
	if (*value == '\0') {
		set_err(err, errsize, "%s:%u: %s: no value", name, lineno,
		    s->name);
		return -1;
	}
	memset(&v, 0, sizeof(v));
	if (parse_value(s, value, &v, why, sizeof(why)) < 0) {
		config_value_clear(&v);
		set_err(err, errsize, "%s:%u: %s: %s", name, lineno, s->name,
		    why);
		return -1;
	}
	store_value(cfg, s, &v);
	config_value_clear(&v);
	lines[i] = lineno;
	return 0;
}

static int
apply_defaults(struct tegami_config *cfg, char *err, size_t errsize)
{
	const struct config_setting *s;
	struct config_value v;
	char why[256];
	size_t i;

	for (i = 0; i < CONFIG_N_SETTINGS; i++) {
		s = &config_settings[i];
		if (s->def == NULL)
			continue;
		memset(&v, 0, sizeof(v));
		if (parse_value(s, s->def, &v, why, sizeof(why)) < 0) {
			/* A bug in the table; the unit tests load it. */
			config_value_clear(&v);
			set_err(err, errsize, "default of %s: %s", s->name,
			    why);
			return -1;
		}
		store_value(cfg, s, &v);
		config_value_clear(&v);
	}
	return 0;
}

int
config_parse(const char *name, const char *text, size_t len,
    struct tegami_config **cfg_r, char *err, size_t errsize)
{
	struct tegami_config *cfg;
	unsigned lines[CONFIG_N_SETTINGS] = { 0 };
	const char *p = text, *end = text + len, *nl, *eol;
	char *line = NULL;
	unsigned lineno = 0;
	size_t n;

	*cfg_r = NULL;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
	    (cfg->path = strdup(name)) == NULL ||
	    (line = malloc(CONFIG_LINE_MAX + 1)) == NULL) {
		set_err(err, errsize, "%s: %s", name, strerror(errno));
		goto fail;
	}
	if (apply_defaults(cfg, err, errsize) < 0)
		goto fail;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		eol = nl != NULL ? nl : end;
		lineno++;
		n = (size_t)(eol - p);
		if (memchr(p, '\0', n) != NULL) {
			set_err(err, errsize, "%s:%u: NUL byte", name, lineno);
			goto fail;
		}
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > CONFIG_LINE_MAX) {
			set_err(err, errsize, "%s:%u: line longer than %d bytes",
			    name, lineno, CONFIG_LINE_MAX);
			goto fail;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		if (parse_line(cfg, name, lineno, line, lines, err,
		    errsize) < 0)
			goto fail;
		p = nl != NULL ? nl + 1 : end;
	}

	if (cfg->n_domains == 0) {
		set_err(err, errsize, "%s: domains is not set", name);
		goto fail;
	}
	if (cfg->hostname == NULL) {
		set_err(err, errsize, "%s: hostname is not set", name);
		goto fail;
	}
	if (cfg->state_dir == NULL &&
	    (cfg->state_dir = directory_of(name)) == NULL) {
		set_err(err, errsize, "%s: cannot find the directory holding "
		    "it for state_dir: %s", name, strerror(errno));
		goto fail;
	}
	if (resolve_file(name, "routes_file", &cfg->routes_file, cfg->state_dir,
	    err, errsize) < 0)
		goto fail;
	free(line);
	*cfg_r = cfg;
	return 0;

fail:
	free(line);
	config_free(&cfg);
	return -1;
}

int
config_load(const char *path, struct tegami_config **cfg_r, char *err,
    size_t errsize)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	ssize_t r;
	int fd, rc, saved;

	*cfg_r = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		set_err(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		set_err(err, errsize, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errsize, "%s: not a regular file", path);
		goto fail;
	}
	/* One byte more than allowed, to tell "too large" from "full". */
	if ((text = malloc(CONFIG_FILE_MAX + 1)) == NULL) {
		set_err(err, errsize, "%s: %s", path, strerror(errno));
		goto fail;
	}
	while (len < CONFIG_FILE_MAX + 1) {
		r = read(fd, text + len, CONFIG_FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			set_err(err, errsize, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CONFIG_FILE_MAX) {
		set_err(err, errsize, "%s: larger than %d bytes", path,
		    CONFIG_FILE_MAX);
		goto fail;
	}
	close(fd);
	rc = config_parse(path, text, len, cfg_r, err, errsize);
	free(text);
	return rc;

fail:
	saved = errno;
	close(fd);
	free(text);
	errno = saved;
	return -1;
}

bool
config_is_local_domain(const struct tegami_config *cfg, const char *domain)
{
	size_t i, j;

	for (i = 0; i < cfg->n_domains; i++) {
		const char *d = cfg->domains[i];

		for (j = 0; d[j] != '\0' && ascii_lower(domain[j]) == d[j];
		    j++)
			;
		if (d[j] == '\0' && domain[j] == '\0')
			return true;
	}
	return false;
}

unsigned
config_service_port(const struct tegami_config *cfg, unsigned standard_port)
{
	return cfg->port_base + standard_port;
}

/* Writes text as "# " lines of at most CONFIG_WRAP_COLUMNS columns. */
static int
write_wrapped(FILE *f, const char *text)
{
	const char *p = text, *word;
	size_t col = 0, len;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		word = p;
		while (*p != '\0' && *p != ' ')
			p++;
		len = (size_t)(p - word);
		if (col > 0 && col + 1 + len > CONFIG_WRAP_COLUMNS) {
			if (fputc('\n', f) == EOF)
				return -1;
			col = 0;
		}
		if (fprintf(f, "%s%.*s", col == 0 ? "# " : " ", (int)len,
		    word) < 0)
			return -1;
		col += (col == 0 ? 2 : 1) + len;
	}
	return col > 0 && fputc('\n', f) == EOF ? -1 : 0;
}

/* "number, 1..64, default 4" and the like, without "# ". */
static void
describe(const struct config_setting *s, char *buf, size_t bufsize)
{
	char lo[32], hi[32], def[64];

	if (s->def != NULL)
		snprintf(def, sizeof(def), "default %s", s->def);
	else if (strcmp(s->def_doc, "required") == 0)
		snprintf(def, sizeof(def), "required");
	else
		snprintf(def, sizeof(def), "default: %s", s->def_doc);
	if (s->type == CT_UINT || s->type == CT_SIZE ||
	    s->type == CT_DURATION)
		snprintf(buf, bufsize, "%s, %s..%s, %s",
		    config_type_names[s->type],
		    format_number(s->type, s->min, lo, sizeof(lo)),
		    format_number(s->type, s->max, hi, sizeof(hi)), def);
	else
		snprintf(buf, bufsize, "%s, %s", config_type_names[s->type],
		    def);
}

static bool
sample_value_ok(const char *v)
{
	return v != NULL && v[0] != '\0' && !has_control(v);
}

int
config_write_sample(FILE *f, const struct config_init_values *values)
{
	const struct config_setting *s;
	char desc[256], port[16];
	const char *set;
	size_t i;

	if (!sample_value_ok(values->domain) ||
	    !sample_value_ok(values->hostname) ||
	    (values->listen != NULL && !sample_value_ok(values->listen)) ||
	    (values->user != NULL && !sample_value_ok(values->user))) {
		/* A line break in a value would inject settings. */
		errno = EINVAL;
		return -1;
	}
	snprintf(port, sizeof(port), "%u", values->port_base);
	if (fputs("# tegami.conf, written by `tegami init`.\n"
	    "#\n"
	    "# One \"key = value\" a line; \"#\" starts a comment. A setting "
	    "shown as\n"
	    "# \"#key = value\" is at its default: remove the \"#\" to change "
	    "it.\n"
	    "# Sizes take a K, M, G or T suffix (1024 multiples), durations "
	    "s, m, h\n"
	    "# or d. Check the file with `tegami -c FILE config check`; "
	    "docs/config.md\n"
	    "# describes every setting.\n", f) == EOF)
		return -1;
	for (i = 0; i < CONFIG_N_SETTINGS; i++) {
		s = &config_settings[i];
		set = NULL;
		if (strcmp(s->name, "domains") == 0)
			set = values->domain;
		else if (strcmp(s->name, "hostname") == 0)
			set = values->hostname;
		else if (strcmp(s->name, "listen") == 0)
			set = values->listen;
		else if (strcmp(s->name, "user") == 0)
			set = values->user;
		else if (strcmp(s->name, "port_base") == 0 &&
		    values->port_base != 0)
			set = port;
		describe(s, desc, sizeof(desc));
		if (fputc('\n', f) == EOF || write_wrapped(f, s->doc) < 0 ||
		    fprintf(f, "# %s\n", desc) < 0)
			return -1;
		if (set != NULL) {
			if (fprintf(f, "%s = %s\n", s->name, set) < 0)
				return -1;
		} else if (fprintf(f, "#%s =%s%s\n", s->name,
		    s->def != NULL ? " " : "", s->def != NULL ? s->def : "") < 0)
			return -1;
	}
	return fflush(f) == EOF || ferror(f) ? -1 : 0;
}

/* Writes text for a Markdown table cell: "|" would end the cell. */
static int
write_cell(FILE *f, const char *text)
{
	for (; *text != '\0'; text++) {
		if (*text == '|' && fputc('\\', f) == EOF)
			return -1;
		if (fputc(*text, f) == EOF)
			return -1;
	}
	return 0;
}

int
config_write_reference(FILE *f)
{
	const struct config_setting *s;
	char lo[32], hi[32];
	size_t i;

	if (fputs("# tegami.conf reference\n"
	    "\n"
	    "<!-- Generated from the settings table in src/core/config.c by "
	    "config_write_reference(); do not edit by hand. -->\n"
	    "\n"
	    "tegami reads one file, `DIR/tegami.conf`, written by "
	    "`tegami init`. Each line is\n"
	    "`key = value`; spaces around `=` are optional and values are "
	    "trimmed. `#` starts\n"
	    "a comment at the start of a line or after a space or tab "
	    "(`a#b` is a value).\n"
	    "Blank lines are ignored, a CRLF line end is accepted, a line "
	    "may hold at most\n"
	    "4096 bytes. An unknown setting, a setting given twice, a value "
	    "of the wrong type\n"
	    "or out of range are errors that name the file and the line, "
	    "for example\n"
	    "`tegami.conf:12: workers: value out of range (0..64)`; the "
	    "server does not start\n"
	    "with them. `tegami -c FILE config check` checks a file.\n"
	    "\n"
	    "Types:\n"
	    "\n"
	    "- **string**: one word of printable characters.\n"
	    "- **path**: an absolute path.\n"
	    "- **file**: an absolute path, or one relative to state_dir.\n"
	    "- **hostname**: a DNS name (letters, digits, inner hyphens; "
	    "no trailing dot), stored lowercased.\n"
	    "- **address**: a numeric IPv4 or IPv6 address, without "
	    "brackets.\n"
	    "- **number**: decimal digits.\n"
	    "- **size**: bytes, with an optional suffix K, M, G or T "
	    "(either case, 1024 multiples): `25M`.\n"
	    "- **duration**: seconds, with an optional suffix s, m, h or d: "
	    "`5m`, `300s` and `300` are the same.\n"
	    "- **bool**: yes, no, true, false, on or off.\n"
	    "- **domain list**: DNS names separated by commas and/or spaces, "
	    "at least one, at most 256, stored lowercased.\n"
	    "\n"
	    "| setting | type | default | range | description |\n"
	    "|---------|------|---------|-------|-------------|\n", f) == EOF)
		return -1;
	for (i = 0; i < CONFIG_N_SETTINGS; i++) {
		s = &config_settings[i];
		if (fprintf(f, "| `%s` | %s | ", s->name,
		    config_type_names[s->type]) < 0)
			return -1;
		if (s->def != NULL ? fprintf(f, "`%s`", s->def) < 0 :
		    write_cell(f, s->def_doc) < 0)
			return -1;
		if (fputs(" | ", f) == EOF)
			return -1;
		if ((s->type == CT_UINT || s->type == CT_SIZE ||
		    s->type == CT_DURATION) && fprintf(f, "%s..%s",
		    format_number(s->type, s->min, lo, sizeof(lo)),
		    format_number(s->type, s->max, hi, sizeof(hi))) < 0)
			return -1;
		if (fputs(" | ", f) == EOF || write_cell(f, s->doc) < 0 ||
		    fputs(" |\n", f) == EOF)
			return -1;
	}
	return fflush(f) == EOF || ferror(f) ? -1 : 0;
}
