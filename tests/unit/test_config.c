/*
 * Unit tests of tegami.conf parsing (every type, every error with its line,
 * bounds at and beyond each limit), the generated sample and reference,
 * and `tegami init` run into temporary directories.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "unit.h"

#define BASE "domains = example.org\nhostname = mail.example.org\n"

static char err[2048];
static char tmpdir[256];	/* short, so that paths below it fit */

/* Parses text (NUL-terminated) as "t.conf"; returns config_parse's rc. */
static int
parse(const char *text, struct tegami_config **cfg_r)
{
	err[0] = '\0';
	return config_parse("t.conf", text, strlen(text), cfg_r, err,
	    sizeof(err));
}

/* Parses BASE followed by extra; the extra lines start on line 3. */
static int
parse_base(const char *extra, struct tegami_config **cfg_r)
{
	char text[16384];

	snprintf(text, sizeof(text), "%s%s", BASE, extra);
	return parse(text, cfg_r);
}

/* Checks that BASE + extra fails with exactly "t.conf:" msg. */
static void
check_error(const char *extra, const char *msg, int line)
{
	struct tegami_config *cfg = NULL;
	char want[2048];

	snprintf(want, sizeof(want), "t.conf:%s", msg);
	if (parse_base(extra, &cfg) != -1 || strcmp(err, want) != 0)
		fprintf(stderr, "%s:%d: for input \"%s\"\n", __FILE__, line,
		    extra);
	CHECK(cfg == NULL);
	CHECK_STR(err, want);
	config_free(&cfg);
}
#define CHECK_ERROR(extra, msg) check_error((extra), (msg), __LINE__)

static void
test_defaults(void)
{
	struct tegami_config *cfg = NULL;
	char *cwd = realpath(".", NULL);

	CHECK(parse(BASE, &cfg) == 0);
	if (cfg == NULL) {
		fprintf(stderr, "  %s\n", err);
		free(cwd);
		return;
	}
	CHECK_STR(cfg->path, "t.conf");
	CHECK_STR(cfg->state_dir, cwd);
	CHECK_STR(cfg->hostname, "mail.example.org");
	CHECK(cfg->n_domains == 1);
	CHECK_STR(cfg->domains[0], "example.org");
	CHECK_STR(cfg->listen, "0.0.0.0");
	CHECK(cfg->port_base == 0);
	CHECK_STR(cfg->user, "tegami");
	CHECK(cfg->workers == 0);
	CHECK(cfg->disk_threads == 4);
	CHECK(cfg->message_size_limit == 25 * 1024 * 1024);
	CHECK(cfg->recipient_limit == 100);
	CHECK(cfg->max_connections == 1000);
	CHECK(cfg->max_connections_per_ip == 50);
	CHECK(cfg->smtp_error_limit == 20);
	CHECK(cfg->smtp_greeting_delay_ms == 0);
	CHECK(cfg->smtp_soft_error_limit == 10);
	CHECK(cfg->smtp_error_delay_ms == 1000);
	CHECK(cfg->smtp_timeout_command == 300);
	CHECK(cfg->smtp_timeout_data_block == 180);
	CHECK(cfg->smtp_data_deadline == 600);
	CHECK(cfg->shutdown_grace == 30);
	CHECK(cfg->alias_depth_max == 10);
	CHECK(cfg->min_free_space == 64 * 1024 * 1024);
	config_free(&cfg);
	CHECK(cfg == NULL);
	config_free(&cfg);	/* NULL is allowed */
	config_free(NULL);
	free(cwd);
}

static void
test_state_dir_default(void)
{
	struct tegami_config *cfg = NULL;
	char name[PATH_MAX + 32], *real;

	/* The directory of the file, through symlinks: realpath. */
	snprintf(name, sizeof(name), "%s/sub", tmpdir);
	CHECK(mkdir(name, 0700) == 0);
	snprintf(name, sizeof(name), "%s/sub/../t.conf", tmpdir);
	real = realpath(tmpdir, NULL);
	CHECK(config_parse(name, BASE, strlen(BASE), &cfg, err,
	    sizeof(err)) == 0);
	if (cfg != NULL && real != NULL)
		CHECK_STR(cfg->state_dir, real);
	config_free(&cfg);
	free(real);
	snprintf(name, sizeof(name), "%s/sub", tmpdir);
	CHECK(rmdir(name) == 0);

	/* "/t.conf": the root directory. */
	CHECK(config_parse("/t.conf", BASE, strlen(BASE), &cfg, err,
	    sizeof(err)) == 0);
	if (cfg != NULL)
		CHECK_STR(cfg->state_dir, "/");
	config_free(&cfg);

	/* Given in the file: taken as is, must be absolute. */
	CHECK(parse_base("state_dir = /var/lib/tegami\n", &cfg) == 0);
	if (cfg != NULL)
		CHECK_STR(cfg->state_dir, "/var/lib/tegami");
	config_free(&cfg);
	CHECK_ERROR("state_dir = var/lib\n",
	    "3: state_dir: not an absolute path");

	/* A directory that does not exist cannot be the default. */
	CHECK(config_parse("/nonexistent-tegami-dir/t.conf", BASE,
	    strlen(BASE), &cfg, err, sizeof(err)) == -1);
	CHECK_STR(err, "/nonexistent-tegami-dir/t.conf: cannot find the "
	    "directory holding it for state_dir: No such file or directory");
	CHECK(cfg == NULL);
}

static void
test_strings(void)
{
	struct tegami_config *cfg = NULL;

	CHECK(parse_base("user = _mail-user.1\n", &cfg) == 0);
	if (cfg != NULL)
		CHECK_STR(cfg->user, "_mail-user.1");
	config_free(&cfg);
	/* "#" not after a blank is part of the value. */
	CHECK(parse_base("user=a#b\n", &cfg) == 0);
	if (cfg != NULL)
		CHECK_STR(cfg->user, "a#b");
	config_free(&cfg);
	CHECK_ERROR("user = a b\n",
	    "3: user: must be one word of printable characters");
	CHECK_ERROR("user = a\x01" "b\n",
	    "3: user: must be one word of printable characters");
	CHECK_ERROR("user =#x\n",
	    "3: user: must be one word of printable characters");
	CHECK_ERROR("user = #x\n", "3: user: no value");
	{
		char line[400];

		snprintf(line, sizeof(line), "user = %0255d\n", 0);
		CHECK(parse_base(line, &cfg) == 0);
		config_free(&cfg);
		snprintf(line, sizeof(line), "user = %0256d\n", 0);
		CHECK_ERROR(line, "3: user: longer than 255 bytes");
	}
	CHECK_ERROR("state_dir = /a\x7f" "b\n",
	    "3: state_dir: contains a control character");
}

static void
test_hostname(void)
{
	struct tegami_config *cfg = NULL;

	CHECK(parse("domains = example.org\nhostname = MX1.Example.ORG\n",
	    &cfg) == 0);
	if (cfg != NULL)
		CHECK_STR(cfg->hostname, "mx1.example.org");
	config_free(&cfg);
	CHECK(parse("domains = example.org\nhostname = localhost\n",
	    &cfg) == 0);
	config_free(&cfg);
	CHECK_ERROR("hostname = a\n",
	    "3: setting \"hostname\" given twice (first on line 2)");
	CHECK(parse("domains = x.org\nhostname = mail.x.org.\n", &cfg) == -1);
	CHECK_STR(err, "t.conf:2: hostname: not a valid DNS name");
	CHECK(parse("domains = x.org\nhostname = 192.0.2.1\n", &cfg) == -1);
	CHECK_STR(err, "t.conf:2: hostname: not a valid DNS name");
	CHECK(parse("domains = x.org\nhostname = a_b.x.org\n", &cfg) == -1);
	CHECK_STR(err, "t.conf:2: hostname: not a valid DNS name");
	CHECK(parse("domains = x.org\n", &cfg) == -1);
	CHECK_STR(err, "t.conf: hostname is not set");
	CHECK(parse("hostname = x.org\n", &cfg) == -1);
	CHECK_STR(err, "t.conf: domains is not set");
	CHECK(parse("", &cfg) == -1);
	CHECK_STR(err, "t.conf: domains is not set");
	CHECK(cfg == NULL);
}

static void
test_dns_names(void)
{
	char name[300];

	CHECK(config_dns_name_ok("example.org"));
	CHECK(config_dns_name_ok("EXAMPLE.org"));
	CHECK(config_dns_name_ok("localhost"));
	CHECK(config_dns_name_ok("a-b.c-d.example"));
	CHECK(config_dns_name_ok("123.example"));
	CHECK(config_dns_name_ok("xn--bcher-kva.example"));
	CHECK(config_dns_name_ok("a.b2"));
	CHECK(!config_dns_name_ok(""));
	CHECK(!config_dns_name_ok("."));
	CHECK(!config_dns_name_ok("example.org."));
	CHECK(!config_dns_name_ok(".example.org"));
	CHECK(!config_dns_name_ok("a..b"));
	CHECK(!config_dns_name_ok("-a.org"));
	CHECK(!config_dns_name_ok("a-.org"));
	CHECK(!config_dns_name_ok("a.org-"));
	CHECK(!config_dns_name_ok("a.-org"));
	CHECK(!config_dns_name_ok("a_b.org"));
	CHECK(!config_dns_name_ok("a b.org"));
	CHECK(!config_dns_name_ok("a@b.org"));
	CHECK(!config_dns_name_ok("b\xc3\xbc" "cher.example"));
	CHECK(!config_dns_name_ok("192.0.2.1"));
	CHECK(!config_dns_name_ok("1"));
	CHECK(!config_dns_name_ok("[192.0.2.1]"));

	/* A label of 63 octets, then 64. */
	memset(name, 'a', 63);
	strcpy(name + 63, ".org");
	CHECK(config_dns_name_ok(name));
	memset(name, 'a', 64);
	strcpy(name + 64, ".org");
	CHECK(!config_dns_name_ok(name));

	/* 253 octets in all, then 254: "a.a.a...." */
	memset(name, 0, sizeof(name));
	for (int i = 0; i < 253; i++)
		name[i] = i % 2 == 0 ? 'a' : '.';
	CHECK(strlen(name) == 253);
	CHECK(config_dns_name_ok(name));
	name[253] = 'a';
	name[252] = 'a';	/* "...a.aa": 254 */
	CHECK(strlen(name) == 254);
	CHECK(!config_dns_name_ok(name));
}

static void
test_address(void)
{
	static const char *const good[] = { "127.0.0.1", "0.0.0.0", "::",
	    "::1", "2001:db8::25", "::ffff:192.0.2.1" };
	static const char *const bad[] = { "127.0.0", "256.0.0.1",
	    "localhost", "[::1]", "fe80::1%lo", "127.0.0.1:25", "0x7f.0.0.1",
	    "::1::" };
	struct tegami_config *cfg = NULL;
	char line[128];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(line, sizeof(line), "listen = %s\n", good[i]);
		CHECK(parse_base(line, &cfg) == 0);
		if (cfg != NULL)
			CHECK_STR(cfg->listen, good[i]);
		config_free(&cfg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "listen = %s\n", bad[i]);
		CHECK_ERROR(line,
		    "3: listen: not a numeric IPv4 or IPv6 address");
	}
}

static void
test_uint(void)
{
	struct tegami_config *cfg = NULL;

	CHECK(parse_base("workers = 8\nrecipient_limit=00042\n", &cfg) == 0);
	if (cfg != NULL) {
		CHECK(cfg->workers == 8);
		CHECK(cfg->recipient_limit == 42);
	}
	config_free(&cfg);
	CHECK_ERROR("workers = -1\n", "3: workers: not a number");
	CHECK_ERROR("workers = +1\n", "3: workers: not a number");
	CHECK_ERROR("workers = 0x10\n", "3: workers: not a number");
	CHECK_ERROR("workers = 1 2\n", "3: workers: not a number");
	CHECK_ERROR("workers = 4k\n", "3: workers: not a number");
	CHECK_ERROR("workers = many\n", "3: workers: not a number");
	CHECK_ERROR("workers = 1.5\n", "3: workers: not a number");
	CHECK_ERROR("workers = 99999999999999999999999\n",
	    "3: workers: value out of range (0..64)");
	CHECK_ERROR("workers = 18446744073709551616\n",
	    "3: workers: value out of range (0..64)");
	CHECK_ERROR("workers = 4294967297\n",
	    "3: workers: value out of range (0..64)");
}

static void
test_size(void)
{
	static const struct {
		const char *text;
		uint64_t value;
	} cases[] = {
		{ "1024", 1024 }, { "1k", 1024 }, { "1K", 1024 },
		{ "3m", 3 << 20 }, { "3M", 3 << 20 },
		{ "2g", UINT64_C(2) << 30 }, { "2G", UINT64_C(2) << 30 },
		{ "1048576", 1 << 20 }, { "2147483648", UINT64_C(1) << 31 },
	};
	struct tegami_config *cfg = NULL;
	char line[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(line, sizeof(line), "message_size_limit = %s\n",
		    cases[i].text);
		CHECK(parse_base(line, &cfg) == 0);
		if (cfg != NULL)
			CHECK(cfg->message_size_limit == cases[i].value);
		else
			fprintf(stderr, "  %s: %s\n", cases[i].text, err);
		config_free(&cfg);
	}
	CHECK(parse_base("min_free_space = 1t\n", &cfg) == 0);
	if (cfg != NULL)
		CHECK(cfg->min_free_space == UINT64_C(1) << 40);
	config_free(&cfg);
	CHECK(parse_base("min_free_space = 0\n", &cfg) == 0);
	if (cfg != NULL)
		CHECK(cfg->min_free_space == 0);
	config_free(&cfg);
	CHECK_ERROR("message_size_limit = 10KB\n",
	    "3: message_size_limit: unknown unit \"KB\" (K, M, G or T)");
	CHECK_ERROR("message_size_limit = 10 M\n",
	    "3: message_size_limit: unknown unit \" M\" (K, M, G or T)");
	CHECK_ERROR("message_size_limit = 10x\n",
	    "3: message_size_limit: unknown unit \"x\" (K, M, G or T)");
	CHECK_ERROR("message_size_limit = M\n",
	    "3: message_size_limit: not a number");
	CHECK_ERROR("message_size_limit = 3G\n",
	    "3: message_size_limit: value out of range (1K..2G)");
	CHECK_ERROR("message_size_limit = 17179869184G\n",
	    "3: message_size_limit: value out of range (1K..2G)");
	CHECK_ERROR("message_size_limit = 16777216T\n",
	    "3: message_size_limit: value out of range (1K..2G)");
}

static void
test_duration(void)
{
	static const struct {
		const char *text;
		unsigned value;
	} cases[] = {
		{ "60", 60 }, { "60s", 60 }, { "60S", 60 }, { "2m", 120 },
		{ "1h", 3600 }, { "1H", 3600 }, { "1d", 86400 },
	};
	struct tegami_config *cfg = NULL;
	char line[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(line, sizeof(line), "smtp_data_deadline = %s\n",
		    cases[i].text);
		CHECK(parse_base(line, &cfg) == 0);
		if (cfg != NULL)
			CHECK(cfg->smtp_data_deadline == cases[i].value);
		config_free(&cfg);
	}
	CHECK_ERROR("smtp_data_deadline = 2d\n",
	    "3: smtp_data_deadline: value out of range (1s..86400s)");
	CHECK_ERROR("smtp_data_deadline = 5ms\n",
	    "3: smtp_data_deadline: unknown unit \"ms\" (s, m, h or d)");
	CHECK_ERROR("smtp_data_deadline = 5w\n",
	    "3: smtp_data_deadline: unknown unit \"w\" (s, m, h or d)");
	CHECK_ERROR("smtp_data_deadline = s\n",
	    "3: smtp_data_deadline: not a number");
	CHECK_ERROR("shutdown_grace = 99999999999999999d\n",
	    "3: shutdown_grace: value out of range (0s..3600s)");
}

static void
test_bool(void)
{
	static const char *const yes[] = { "yes", "YES", "true", "True",
	    "on", "On" };
	static const char *const no[] = { "no", "No", "false", "FALSE",
	    "off", "oFF" };
	static const char *const bad[] = { "", "y", "n", "1", "0", "yes ",
	    "enabled", "yess", "o" };
	size_t i;
	bool b;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		CHECK(config_parse_bool(yes[i], &b) == 0 && b);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		CHECK(config_parse_bool(no[i], &b) == 0 && !b);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(config_parse_bool(bad[i], &b) == -1);
}

static void
test_domains(void)
{
	struct tegami_config *cfg = NULL;
	char *text;
	size_t i, off;

	CHECK(parse("hostname = mx.a.org\n"
	    "domains = A.org, b.ORG c.org,d.org\t,  ,e.org,\n", &cfg) == 0);
	if (cfg != NULL) {
		CHECK(cfg->n_domains == 5);
		CHECK_STR(cfg->domains[0], "a.org");
		CHECK_STR(cfg->domains[1], "b.org");
		CHECK_STR(cfg->domains[2], "c.org");
		CHECK_STR(cfg->domains[3], "d.org");
		CHECK_STR(cfg->domains[4], "e.org");
		CHECK(config_is_local_domain(cfg, "a.org"));
		CHECK(config_is_local_domain(cfg, "A.Org"));
		CHECK(config_is_local_domain(cfg, "E.ORG"));
		CHECK(!config_is_local_domain(cfg, "a.org."));
		CHECK(!config_is_local_domain(cfg, "a.or"));
		CHECK(!config_is_local_domain(cfg, "a.orgx"));
		CHECK(!config_is_local_domain(cfg, "x.a.org"));
		CHECK(!config_is_local_domain(cfg, ""));
	}
	config_free(&cfg);

	CHECK(parse("hostname = h.org\ndomains = ,\n", &cfg) == -1);
	CHECK_STR(err, "t.conf:2: domains: at least one domain is required");
	CHECK(parse("hostname = h.org\ndomains = a.org, A.ORG\n", &cfg) == -1);
	CHECK_STR(err, "t.conf:2: domains: \"a.org\" is listed twice");
	CHECK(parse("hostname = h.org\ndomains = a.org;b.org\n", &cfg) == -1);
	CHECK_STR(err, "t.conf:2: domains: \"a.org;b.org\" is not a valid "
	    "domain name");
	CHECK(parse("hostname = h.org\ndomains = a.org x\"\xff\n", &cfg) ==
	    -1);
	CHECK_STR(err, "t.conf:2: domains: \"x\\x22\\xff\" is not a valid "
	    "domain name");

	/* CONFIG_DOMAINS_MAX names fit, one more does not. */
	text = malloc(8192);
	off = (size_t)sprintf(text, "hostname = h.org\ndomains =");
	for (i = 0; i < CONFIG_DOMAINS_MAX; i++)
		off += (size_t)sprintf(text + off, " d%zu.x", i);
	strcpy(text + off, "\n");
	CHECK(parse(text, &cfg) == 0);
	if (cfg != NULL) {
		CHECK(cfg->n_domains == CONFIG_DOMAINS_MAX);
		CHECK_STR(cfg->domains[CONFIG_DOMAINS_MAX - 1], "d255.x");
		CHECK(config_is_local_domain(cfg, "D200.X"));
	}
	config_free(&cfg);
	strcpy(text + off, " one.more\n");
	CHECK(parse(text, &cfg) == -1);
	CHECK_STR(err, "t.conf:2: domains: more than 256 domains");
	free(text);
}

static void
test_ports(void)
{
	struct tegami_config *cfg = NULL;

	CHECK(parse(BASE, &cfg) == 0);
	if (cfg != NULL) {
		CHECK(config_service_port(cfg, 25) == 25);
		CHECK(config_service_port(cfg, 993) == 993);
	}
	config_free(&cfg);
	CHECK(parse_base("port_base = 10000\n", &cfg) == 0);
	if (cfg != NULL) {
		CHECK(config_service_port(cfg, 25) == 10025);
		CHECK(config_service_port(cfg, 587) == 10587);
		CHECK(config_service_port(cfg, 993) == 10993);
	}
	config_free(&cfg);
	CHECK(parse_base("port_base = 64000\n", &cfg) == 0);
	if (cfg != NULL)
		CHECK(config_service_port(cfg, 995) == 64995);
	config_free(&cfg);
	CHECK_ERROR("port_base = 64001\n",
	    "3: port_base: value out of range (0..64000)");
	CHECK_ERROR("port_base = 65000\n",
	    "3: port_base: value out of range (0..64000)");
}

/*
 * Every numeric setting at its minimum, its maximum and one beyond each,
 * from the specification rather than from the table in config.c.
 */
static void
test_bounds(void)
{
	static const struct {
		const char *name, *min, *max, *below, *above, *range;
		size_t offset;
		int kind;	/* 0 unsigned, 1 uint64_t */
		uint64_t min_v, max_v;
	} b[] = {
#define U(f) offsetof(struct tegami_config, f), 0
#define Q(f) offsetof(struct tegami_config, f), 1
	{ "port_base", "0", "64000", NULL, "64001", "0..64000",
	  U(port_base), 0, 64000 },
	{ "workers", "0", "64", NULL, "65", "0..64", U(workers), 0, 64 },
	{ "disk_threads", "1", "64", "0", "65", "1..64", U(disk_threads),
	  1, 64 },
	{ "message_size_limit", "1k", "2g", "1023", "2147483649", "1K..2G",
	  Q(message_size_limit), 1024, UINT64_C(2) << 30 },
	{ "recipient_limit", "1", "100000", "0", "100001", "1..100000",
	  U(recipient_limit), 1, 100000 },
	{ "max_connections", "1", "100000", "0", "100001", "1..100000",
	  U(max_connections), 1, 100000 },
	{ "max_connections_per_ip", "1", "100000", "0", "100001",
	  "1..100000", U(max_connections_per_ip), 1, 100000 },
	{ "smtp_error_limit", "1", "1000", "0", "1001", "1..1000",
	  U(smtp_error_limit), 1, 1000 },
	{ "smtp_soft_error_limit", "0", "1000", NULL, "1001", "0..1000",
	  U(smtp_soft_error_limit), 0, 1000 },
	{ "smtp_error_delay_ms", "0", "60000", NULL, "60001", "0..60000",
	  U(smtp_error_delay_ms), 0, 60000 },
	{ "smtp_greeting_delay_ms", "0", "60000", NULL, "60001",
	  "0..60000", U(smtp_greeting_delay_ms), 0, 60000 },
	{ "smtp_timeout_command", "1s", "1h", "0s", "3601", "1s..3600s",
	  U(smtp_timeout_command), 1, 3600 },
	{ "smtp_timeout_data_block", "1", "60m", "0", "61m", "1s..3600s",
	  U(smtp_timeout_data_block), 1, 3600 },
	{ "smtp_data_deadline", "1", "1d", "0", "86401", "1s..86400s",
	  U(smtp_data_deadline), 1, 86400 },
	{ "shutdown_grace", "0", "3600", NULL, "3601s", "0s..3600s",
	  U(shutdown_grace), 0, 3600 },
	{ "auth_failure_delay_ms", "0", "60000", NULL, "60001", "0..60000",
	  U(auth_failure_delay_ms), 0, 60000 },
	{ "auth_failure_delay_max_ms", "0", "600000", NULL, "600001",
	  "0..600000", U(auth_failure_delay_max_ms), 0, 600000 },
	{ "auth_failure_window", "1s", "1d", "0", "86401", "1s..86400s",
	  U(auth_failure_window), 1, 86400 },
	{ "auth_ip_failure_limit", "1", "100000", "0", "100001", "1..100000",
	  U(auth_ip_failure_limit), 1, 100000 },
	{ "auth_account_failure_limit", "1", "100000", "0", "100001",
	  "1..100000", U(auth_account_failure_limit), 1, 100000 },
	{ "alias_depth_max", "1", "100", "0", "101", "1..100",
	  U(alias_depth_max), 1, 100 },
	{ "min_free_space", "0", "1T", NULL, "1099511627777", "0..1T",
	  Q(min_free_space), 0, UINT64_C(1) << 40 },
	{ "queue_retry_min", "1s", "1d", "0", "86401", "1s..86400s",
	  U(queue_retry_min), 1, 86400 },
	{ "queue_retry_max", "1s", "1d", "0", "86401", "1s..86400s",
	  U(queue_retry_max), 1, 86400 },
	{ "queue_max_age", "10s", "30d", "9", "2592001", "10s..2592000s",
	  U(queue_max_age), 10, 2592000 },
	{ "queue_delay_warning", "0", "30d", NULL, "2592001", "0s..2592000s",
	  U(queue_delay_warning), 0, 2592000 },
	{ "outbound_connections", "1", "1000", "0", "1001", "1..1000",
	  U(outbound_connections), 1, 1000 },
	{ "outbound_connections_per_domain", "1", "100", "0", "101",
	  "1..100", U(outbound_connections_per_domain), 1, 100 },
#undef U
#undef Q
	};
	struct tegami_config *cfg = NULL;
	char line[256], msg[256];
	size_t i;

	for (i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		const char *vals[2] = { b[i].min, b[i].max };
		uint64_t want[2] = { b[i].min_v, b[i].max_v };

		for (int k = 0; k < 2; k++) {
			snprintf(line, sizeof(line), "%s = %s\n", b[i].name,
			    vals[k]);
			CHECK(parse_base(line, &cfg) == 0);
			if (cfg == NULL) {
				fprintf(stderr, "  %s: %s\n", line, err);
				continue;
			}
			if (b[i].kind == 0)
				CHECK(*(unsigned *)(void *)((char *)cfg +
				    b[i].offset) == want[k]);
			else
				CHECK(*(uint64_t *)(void *)((char *)cfg +
				    b[i].offset) == want[k]);
			config_free(&cfg);
		}
		snprintf(msg, sizeof(msg), "3: %s: value out of range (%s)",
		    b[i].name, b[i].range);
		snprintf(line, sizeof(line), "%s = %s\n", b[i].name,
		    b[i].above);
		CHECK_ERROR(line, msg);
		if (b[i].below != NULL) {
			snprintf(line, sizeof(line), "%s = %s\n", b[i].name,
			    b[i].below);
			CHECK_ERROR(line, msg);
		}
	}
}

static void
test_syntax_errors(void)
{
	struct tegami_config *cfg = NULL;

	CHECK_ERROR("wrokers = 4\n", "3: unknown setting \"wrokers\"");
	CHECK_ERROR("Workers = 4\n", "3: unknown setting \"Workers\"");
	CHECK_ERROR("work ers = 4\n", "3: unknown setting \"work ers\"");
	CHECK_ERROR("\n\n# c\nx\"\\\x01\xff = 1\n",
	    "6: unknown setting \"x\\x22\\x5c\\x01\\xff\"");
	CHECK_ERROR("workers = 4\n\nworkers = 4\n",
	    "5: setting \"workers\" given twice (first on line 3)");
	CHECK_ERROR("domains = example.org\n",
	    "3: setting \"domains\" given twice (first on line 1)");
	CHECK_ERROR("workers\n", "3: missing '='");
	CHECK_ERROR("workers 4\n", "3: missing '='");
	CHECK_ERROR("workers # = 4\n", "3: missing '='");
	CHECK_ERROR("= 4\n", "3: missing setting name before '='");
	CHECK_ERROR("workers =\n", "3: workers: no value");
	CHECK_ERROR("workers =   \t \n", "3: workers: no value");
	CHECK_ERROR("workers = # four\n", "3: workers: no value");
	CHECK_ERROR("workers = 4 = 5\n", "3: workers: not a number");
	CHECK_ERROR("workers = 4\r\r\n", "3: workers: not a number");

	/* A long unknown name is cut short in the message. */
	{
		char line[200], want[200];

		memset(line, 'k', 100);
		strcpy(line + 100, " = 1\n");
		memset(want, 'k', 64);
		strcpy(want + 64, "...\"");
		CHECK(parse_base(line, &cfg) == -1);
		CHECK(strstr(err, want) != NULL);
	}

	/* NUL byte, on the line where it is. */
	{
		static const char text[] = BASE "workers = 4\n"
		    "disk_threads = 2\0" "3\n";

		CHECK(config_parse("t.conf", text, sizeof(text) - 1, &cfg,
		    err, sizeof(err)) == -1);
		CHECK_STR(err, "t.conf:4: NUL byte");
		CHECK(config_parse("t.conf", text, sizeof(text) - 3, &cfg,
		    err, sizeof(err)) == -1);
		CHECK_STR(err, "t.conf:4: NUL byte");
		CHECK(config_parse("t.conf", "# \0\n" BASE, 4 + strlen(BASE),
		    &cfg, err, sizeof(err)) == -1);
		CHECK_STR(err, "t.conf:1: NUL byte");
	}
	CHECK(cfg == NULL);
}

static void
test_line_length(void)
{
	struct tegami_config *cfg = NULL;
	static char text[10000];
	size_t off;

	/* A 4096-byte comment line is fine, 4097 is not. */
	off = (size_t)sprintf(text, "%s# ", BASE);
	memset(text + off, 'x', 4094);
	strcpy(text + off + 4094, "\n");
	CHECK(parse(text, &cfg) == 0);
	config_free(&cfg);
	strcpy(text + off + 4094, "\r\n");	/* the CR is not counted */
	CHECK(parse(text, &cfg) == 0);
	config_free(&cfg);
	strcpy(text + off + 4094, "");		/* nor a missing line end */
	CHECK(parse(text, &cfg) == 0);
	config_free(&cfg);
	strcpy(text + off + 4094, "x\n");
	CHECK(parse(text, &cfg) == -1);
	CHECK_STR(err, "t.conf:3: line longer than 4096 bytes");
	strcpy(text + off + 4094, "x");
	CHECK(parse(text, &cfg) == -1);
	CHECK_STR(err, "t.conf:3: line longer than 4096 bytes");
	strcpy(text + off + 4094, "\r\r\n");
	CHECK(parse(text, &cfg) == -1);
	CHECK_STR(err, "t.conf:3: line longer than 4096 bytes");

	/* A value line of 4096 bytes with spaces of padding. */
	off = (size_t)sprintf(text, "%sworkers = ", BASE);
	memset(text + off, ' ', 4096 - strlen("workers = ") - 1);
	strcpy(text + off + 4096 - strlen("workers = ") - 1, "7\n");
	CHECK(parse(text, &cfg) == 0);
	if (cfg != NULL)
		CHECK(cfg->workers == 7);
	config_free(&cfg);
}

static void
test_comments_whitespace(void)
{
	struct tegami_config *cfg = NULL;
	static const char *const variants[] = {
		"workers=5\n",
		"workers = 5\n",
		"  workers   =   5   \n",
		"\tworkers\t=\t5\t\n",
		"workers = 5 # five\n",
		"workers = 5\t# five # six\n",
		"workers = 5#\n",	/* becomes "5#": error, checked below */
		"workers = 5\r\n",
		"workers = 5 \r\n",
		"workers = 5",
		"# comment\n   # indented comment\n\t#\n\n  \n\t\nworkers = 5\n",
		"\r\nworkers = 5\r\n\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		int rc = parse_base(variants[i], &cfg);

		if (strcmp(variants[i], "workers = 5#\n") == 0) {
			CHECK(rc == -1);
			CHECK_STR(err, "t.conf:3: workers: not a number");
			continue;
		}
		CHECK(rc == 0);
		if (cfg != NULL)
			CHECK(cfg->workers == 5);
		else
			fprintf(stderr, "  variant %zu: %s\n", i, err);
		config_free(&cfg);
	}

	/* CRLF throughout, and line numbers counted with it. */
	CHECK(parse("domains = a.org\r\nhostname = h.a.org\r\n"
	    "workers = x\r\n", &cfg) == -1);
	CHECK_STR(err, "t.conf:3: workers: not a number");
	/* A lone CR is not a line end. */
	CHECK(parse("domains = a.org\rhostname = h.a.org\n", &cfg) == -1);
	CHECK_STR(err, "t.conf:1: domains: \"a.org\\x0dhostname\" is not a "
	    "valid domain name");
}

static void
test_load_file(void)
{
	struct tegami_config *cfg = NULL;
	char path[PATH_MAX + 32], want[PATH_MAX + 128], *real;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	CHECK(config_load(path, &cfg, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	CHECK_STR(err, want);
	CHECK(cfg == NULL);

	CHECK(config_load(tmpdir, &cfg, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
	CHECK_STR(err, want);

	snprintf(path, sizeof(path), "%s/good.conf", tmpdir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(BASE "workers = 3\nbad line\n", f);
	fclose(f);
	CHECK(config_load(path, &cfg, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s:4: missing '='", path);
	CHECK_STR(err, want);

	f = fopen(path, "w");
	fputs(BASE "workers = 3\n", f);
	fclose(f);
	CHECK(config_load(path, &cfg, err, sizeof(err)) == 0);
	real = realpath(tmpdir, NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->path, path);
		CHECK_STR(cfg->state_dir, real);
		CHECK(cfg->workers == 3);
	}
	config_free(&cfg);
	free(real);

	/* Unreadable: only when not root, for root reads anything. */
	if (geteuid() != 0) {
		CHECK(chmod(path, 0) == 0);
		CHECK(config_load(path, &cfg, err, sizeof(err)) == -1);
		snprintf(want, sizeof(want), "%s: Permission denied", path);
		CHECK_STR(err, want);
	}
	CHECK(unlink(path) == 0);

	/* Larger than 1 MiB is refused; exactly 1 MiB is read. */
	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	{
		char *big = malloc(1024 * 1024);

		CHECK(big != NULL);
		if (big == NULL)
			return;
		memset(big, '\n', 1024 * 1024);
		memcpy(big, BASE, strlen(BASE));
		CHECK(write(fd, big, 1024 * 1024) == 1024 * 1024);
		free(big);
	}
	close(fd);
	CHECK(config_load(path, &cfg, err, sizeof(err)) == 0);
	config_free(&cfg);
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK(write(fd, "\n", 1) == 1);
	close(fd);
	CHECK(config_load(path, &cfg, err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", path);
	CHECK_STR(err, want);
	CHECK(unlink(path) == 0);
}

static void
test_check_value(void)
{
	char why[256];

	CHECK(config_check_value("port_base", "10000", why, sizeof(why)) ==
	    0);
	CHECK(config_check_value("port_base", "70000", why, sizeof(why)) ==
	    -1);
	CHECK_STR(why, "value out of range (0..64000)");
	CHECK(config_check_value("port_base", "ten", why, sizeof(why)) == -1);
	CHECK_STR(why, "not a number");
	CHECK(config_check_value("listen", "::1", why, sizeof(why)) == 0);
	CHECK(config_check_value("listen", "x", why, sizeof(why)) == -1);
	CHECK(config_check_value("hostname", "mail.example.org", why,
	    sizeof(why)) == 0);
	CHECK(config_check_value("hostname", "mail..org", why, sizeof(why))
	    == -1);
	CHECK_STR(why, "not a valid DNS name");
	CHECK(config_check_value("domains", "a.org, b.org", why,
	    sizeof(why)) == 0);
	CHECK(config_check_value("user", "tegami", why, sizeof(why)) == 0);
	CHECK(config_check_value("user", "te gami", why, sizeof(why)) == -1);
	CHECK(config_check_value("user", "", why, sizeof(why)) == -1);
	CHECK_STR(why, "no value");
	CHECK(config_check_value("user", " x", why, sizeof(why)) == -1);
	CHECK(config_check_value("hostname", "a.org\nworkers=1", why,
	    sizeof(why)) == -1);
	CHECK(config_check_value("nosuch", "1", why, sizeof(why)) == -1);
	CHECK_STR(why, "unknown setting");
}

/* Reads a whole file into a malloc'd string, or NULL. */
static char *
slurp(const char *path, size_t *len_r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "r"), *m;

	if (f == NULL)
		return NULL;
	m = open_memstream(&buf, &len);
	for (int c; (c = fgetc(f)) != EOF;)
		fputc(c, m);
	fclose(f);
	fclose(m);
	if (len_r != NULL)
		*len_r = len;
	return buf;
}

static char *
sample_text(const struct config_init_values *v, size_t *len_r)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len_r);

	CHECK(config_write_sample(f, v) == 0);
	fclose(f);
	return text;
}

static const char *const all_settings[] = { "state_dir", "hostname",
    "domains", "listen", "port_base", "user", "auth_user", "workers",
    "disk_threads",
    "message_size_limit", "recipient_limit", "max_connections",
    "max_connections_per_ip", "smtp_error_limit", "smtp_soft_error_limit",
    "smtp_error_delay_ms", "smtp_greeting_delay_ms",
    "smtp_timeout_command", "smtp_timeout_data_block", "smtp_data_deadline",
    "shutdown_grace", "auth_failure_delay_ms", "auth_failure_delay_max_ms",
    "auth_failure_window", "auth_ip_failure_limit",
    "auth_account_failure_limit", "alias_depth_max", "min_free_space",
    "resolver", "dns_trust_anchor", "relay_host", "relay_auth_file",
    "tls_trust_file",
    "outbound_tls",
    "queue_retry_min", "queue_retry_max", "queue_max_age",
    "queue_delay_warning", "outbound_connections",
    "outbound_connections_per_domain" };

static void
test_sample(void)
{
	struct config_init_values v;
	struct tegami_config *cfg = NULL, *def = NULL;
	char *text, want[128];
	size_t len, i;

	memset(&v, 0, sizeof(v));
	v.domain = "a.org, b.org";
	v.hostname = "mx.a.org";
	v.listen = "127.0.0.2";
	v.port_base = 20000;
	v.user = "mailer";
	text = sample_text(&v, &len);
	CHECK(config_parse("t.conf", text, len, &cfg, err, sizeof(err)) == 0);
	if (cfg != NULL) {
		CHECK(cfg->n_domains == 2);
		CHECK_STR(cfg->domains[1], "b.org");
		CHECK_STR(cfg->hostname, "mx.a.org");
		CHECK_STR(cfg->listen, "127.0.0.2");
		CHECK(cfg->port_base == 20000);
		CHECK_STR(cfg->user, "mailer");
	} else
		fprintf(stderr, "  %s\n", err);
	config_free(&cfg);
	CHECK(strstr(text, "\ndomains = a.org, b.org\n") != NULL);
	CHECK(strstr(text, "\nport_base = 20000\n") != NULL);
	CHECK(strstr(text, "\n# number, 0..64000, default 0\n") != NULL);
	CHECK(strstr(text, "\n# size, 1K..2G, default 25M\n"
	    "#message_size_limit = 25M\n") != NULL);
	CHECK(strstr(text, "\n# duration, 1s..3600s, default 300s\n"
	    "#smtp_timeout_command = 300s\n") != NULL);
	CHECK(strstr(text, "\n# path, default: the directory holding this "
	    "file\n#state_dir =\n") != NULL);
	CHECK(strstr(text, "\n# hostname, required\nhostname = mx.a.org\n") !=
	    NULL);
	for (i = 0; i < sizeof(all_settings) / sizeof(all_settings[0]); i++) {
		snprintf(want, sizeof(want), "\n%s = ", all_settings[i]);
		if (strstr(text, want) == NULL) {
			snprintf(want, sizeof(want), "\n#%s =",
			    all_settings[i]);
			CHECK(strstr(text, want) != NULL);
		}
	}
	/* Comment lines are wrapped to at most 76 columns. */
	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

		CHECK(n <= 76);
		p += n + (nl != NULL);
	}
	free(text);

	/* Defaults: listen, user and port_base left out. */
	memset(&v, 0, sizeof(v));
	v.domain = "example.org";
	v.hostname = "mail.example.org";
	text = sample_text(&v, &len);
	CHECK(strstr(text, "\n#listen = 0.0.0.0\n") != NULL);
	CHECK(strstr(text, "\n#port_base = 0\n") != NULL);
	CHECK(strstr(text, "\n#user = tegami\n") != NULL);
	CHECK(config_parse("t.conf", text, len, &cfg, err, sizeof(err)) == 0);
	CHECK(parse(BASE, &def) == 0);
	if (cfg != NULL && def != NULL) {
		/* Every field as if the file were only BASE. */
		CHECK_STR(cfg->listen, def->listen);
		CHECK_STR(cfg->user, def->user);
		CHECK_STR(cfg->state_dir, def->state_dir);
		CHECK(cfg->port_base == def->port_base);
		CHECK(cfg->workers == def->workers);
		CHECK(cfg->disk_threads == def->disk_threads);
		CHECK(cfg->message_size_limit == def->message_size_limit);
		CHECK(cfg->min_free_space == def->min_free_space);
		CHECK(cfg->smtp_data_deadline == def->smtp_data_deadline);
	}
	config_free(&cfg);
	config_free(&def);

	/* Uncommenting every "#key = default" line must load too. */
	{
		char *copy = malloc(len * 2 + 1), *o = copy;

		for (const char *p = text; *p != '\0'; p++) {
			const char *eol = strchr(p, '\n');

			/* "#key =" with no value: an optional setting
			 * without a default (state_dir, resolver, ...). */
			if ((p == text || p[-1] == '\n') && p[0] == '#' &&
			    p[1] >= 'a' && p[1] <= 'z' &&
			    !(eol != NULL && eol - p > 2 && eol[-1] == '=' &&
			    eol[-2] == ' '))
				continue;
			*o++ = *p;
		}
		*o = '\0';
		CHECK(strstr(copy, "\nsmtp_timeout_command = 300s\n") != NULL);
		CHECK(parse(copy, &cfg) == 0);
		if (cfg == NULL)
			fprintf(stderr, "  %s\n", err);
		else {
			CHECK(cfg->smtp_timeout_command == 300);
			CHECK(cfg->message_size_limit == 25 * 1024 * 1024);
		}
		config_free(&cfg);
		free(copy);
	}
	free(text);

	/* A value with a line break would inject settings: refused. */
	{
		FILE *f = fopen("/dev/null", "w");

		memset(&v, 0, sizeof(v));
		v.domain = "a.org";
		v.hostname = "mx.a.org\nworkers = 1";
		CHECK(config_write_sample(f, &v) == -1);
		v.hostname = "mx.a.org";
		v.listen = "";
		CHECK(config_write_sample(f, &v) == -1);
		fclose(f);
	}
}

static void
test_reference(void)
{
	char *text = NULL, want[128], path[PATH_MAX * 2], exe[PATH_MAX];
	char *doc, *slash;
	size_t len, doclen, i;
	ssize_t n;
	FILE *f = open_memstream(&text, &len);

	CHECK(config_write_reference(f) == 0);
	fclose(f);
	CHECK(strncmp(text, "# tegami.conf reference\n", 24) == 0);
	for (i = 0; i < sizeof(all_settings) / sizeof(all_settings[0]); i++) {
		snprintf(want, sizeof(want), "\n| `%s` | ", all_settings[i]);
		CHECK(strstr(text, want) != NULL);
	}
	CHECK(strstr(text, "\n| `message_size_limit` | size | `25M` | "
	    "1K..2G | ") != NULL);
	CHECK(strstr(text, "\n| `domains` | domain list | required |  | ")
	    != NULL);

	/*
	 * docs/config.md must be what the table writes. The source tree is
	 * found from this executable (BUILD/tests/unit/test_config) and
	 * __FILE__, which meson gives relative to BUILD.
	 */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK(n > 0);
	if (n <= 0) {
		free(text);
		return;
	}
	exe[n] = '\0';
	for (i = 0; i < 3 && (slash = strrchr(exe, '/')) != NULL; i++)
		*slash = '\0';
	if (__FILE__[0] == '/')
		snprintf(path, sizeof(path), "%s", __FILE__);
	else
		snprintf(path, sizeof(path), "%s/%s", exe, __FILE__);
	slash = strstr(path, "tests/unit/test_config.c");
	CHECK(slash != NULL);
	if (slash != NULL)
		strcpy(slash, "docs/config.md");
	doc = slurp(path, &doclen);
	if (doc == NULL)
		fprintf(stderr, "  cannot read %s\n", path);
	CHECK(doc != NULL);
	if (doc != NULL && (doclen != len || memcmp(doc, text, len) != 0))
		fprintf(stderr, "  %s is out of date: regenerate it with "
		    "config_write_reference()\n", path);
	CHECK(doc != NULL && doclen == len && memcmp(doc, text, len) == 0);
	free(doc);
	free(text);
}

/* Runs cli_init with a NULL-terminated list of arguments after "init". */
static int
run_init(const char *first, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	const char *a;

	argv[argc++] = (char *)"init";
	va_start(ap, first);
	for (a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return cli_init(argc, argv);
}

static mode_t
mode_of(const char *dir, const char *name)
{
	char path[PATH_MAX * 2];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (lstat(path, &st) < 0)
		return (mode_t)-1;
	return st.st_mode;
}

static bool
exists(const char *dir, const char *name)
{
	return mode_of(dir, name) != (mode_t)-1;
}

/* Counts the entries of dir, without . and .. */
static int
entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_init(void)
{
	struct tegami_config *cfg = NULL;
	char dir[PATH_MAX], conf[PATH_MAX * 2], *text, *again;
	mode_t old_umask;

	/* A tight umask must not change the modes init promises. */
	old_umask = umask(077);
	snprintf(dir, sizeof(dir), "%s/state/nested", tmpdir);
	CHECK(run_init("--dir", dir, "--domain", "Example.ORG", "--domain",
	    "example.net", "--port-base", "10000", NULL) == 0);
	umask(old_umask);
	CHECK((mode_of(tmpdir, "state") & 07777) == 0755);
	CHECK((mode_of(dir, "") & 07777) == 0755);
	CHECK(mode_of(dir, "tegami.conf") == (S_IFREG | 0644));
	CHECK(mode_of(dir, "users") == (S_IFREG | 0640));
	CHECK(mode_of(dir, "aliases") == (S_IFREG | 0644));
	CHECK(mode_of(dir, "mail") == (S_IFDIR | 0750));
	CHECK(mode_of(dir, "queue") == (S_IFDIR | 0750));
	/* The private CA and the server certificate (issue 3). */
	CHECK(mode_of(dir, "ca") == (S_IFDIR | 0700));
	CHECK(mode_of(dir, "ca/ca.key") == (S_IFREG | 0600));
	CHECK((mode_of(dir, "tls/mail.example.org.crt") & S_IFMT) == S_IFREG);
	CHECK((mode_of(dir, "tls/mail.example.org.key") & 0077 & ~0040) == 0);
	CHECK(entries(dir) == 7);	/* no temp file left behind */

	snprintf(conf, sizeof(conf), "%s/tegami.conf", dir);
	CHECK(config_load(conf, &cfg, err, sizeof(err)) == 0);
	if (cfg != NULL) {
		char *real = realpath(dir, NULL);

		CHECK(cfg->n_domains == 2);
		CHECK_STR(cfg->domains[0], "example.org");
		CHECK_STR(cfg->domains[1], "example.net");
		CHECK_STR(cfg->hostname, "mail.example.org");
		CHECK_STR(cfg->listen, "127.0.0.1");
		CHECK(cfg->port_base == 10000);
		CHECK_STR(cfg->user, "tegami");
		CHECK_STR(cfg->state_dir, real);
		free(real);
	} else
		fprintf(stderr, "  %s\n", err);
	config_free(&cfg);

	text = slurp(conf, NULL);
	CHECK(text != NULL && strstr(text, "\ndomains = example.org, "
	    "example.net\n") != NULL);
	CHECK(text != NULL && strstr(text, "\nlisten = 127.0.0.1\n") != NULL);
	CHECK(text != NULL && strstr(text, "\nport_base = 10000\n") != NULL);
	CHECK(text != NULL && strstr(text, "\n#user = tegami\n") != NULL);
	snprintf(conf, sizeof(conf), "%s/users", dir);
	again = slurp(conf, NULL);
	CHECK(again != NULL && again[0] == '#' &&
	    strstr(again, "\"address:[!]hash[:send_as=PATTERN,...]\"") != NULL);
	free(again);
	snprintf(conf, sizeof(conf), "%s/aliases", dir);
	again = slurp(conf, NULL);
	CHECK(again != NULL && again[0] == '#' &&
	    strstr(again, "\"alias@domain: target, target\"") != NULL);
	free(again);

	/* A second init refuses, and changes nothing. */
	CHECK(run_init("--dir", dir, "--domain", "other.org", NULL) == 1);
	snprintf(conf, sizeof(conf), "%s/tegami.conf", dir);
	again = slurp(conf, NULL);
	CHECK(text != NULL && again != NULL && strcmp(text, again) == 0);
	free(again);
	free(text);
	CHECK(entries(dir) == 7);

	/* Without tegami.conf, existing files are kept as they are. */
	snprintf(conf, sizeof(conf), "%s/users", dir);
	{
		FILE *f = fopen(conf, "a");

		fputs("alice@example.org:$y$hash\n", f);
		fclose(f);
	}
	snprintf(conf, sizeof(conf), "%s/tegami.conf", dir);
	CHECK(unlink(conf) == 0);
	CHECK(run_init("--dir", dir, "--domain", "example.org", "--hostname",
	    "MX.example.org", "--listen", "::1", "--user", "mailer", NULL)
	    == 0);
	snprintf(conf, sizeof(conf), "%s/users", dir);
	text = slurp(conf, NULL);
	CHECK(text != NULL && strstr(text, "alice@example.org:$y$hash\n") !=
	    NULL);
	free(text);
	snprintf(conf, sizeof(conf), "%s/tegami.conf", dir);
	CHECK(config_load(conf, &cfg, err, sizeof(err)) == 0);
	if (cfg != NULL) {
		CHECK_STR(cfg->hostname, "mx.example.org");
		CHECK_STR(cfg->listen, "::1");
		CHECK(cfg->port_base == 0);
		CHECK_STR(cfg->user, "mailer");
	}
	config_free(&cfg);
}

static void
test_init_refusals(void)
{
	char dir[PATH_MAX], name[300];

	snprintf(dir, sizeof(dir), "%s/refused", tmpdir);
	/* Bad values: exit 1, and nothing is created. */
	CHECK(run_init("--dir", dir, "--domain", "bad_domain.org", NULL) ==
	    1);
	CHECK(run_init("--dir", dir, "--domain", "a.org,b.org", NULL) == 1);
	CHECK(run_init("--dir", dir, "--domain", "", NULL) == 1);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--domain",
	    "A.org", NULL) == 1);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--hostname",
	    "mail.a.org.", NULL) == 1);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--hostname",
	    "mail\n.a.org", NULL) == 1);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--port-base",
	    "64001", NULL) == 1);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--port-base",
	    "-1", NULL) == 1);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--listen",
	    "localhost", NULL) == 1);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--user",
	    "a b", NULL) == 1);
	/* "mail." + a 249-byte domain is longer than 253. */
	memset(name, 'a', 300);
	for (int i = 63; i < 249; i += 64)
		name[i] = '.';
	name[249] = '\0';
	CHECK(config_dns_name_ok(name));
	CHECK(run_init("--dir", dir, "--domain", name, NULL) == 1);
	CHECK(!exists(dir, ""));

	/* Usage errors: exit 2. */
	CHECK(run_init(NULL) == 2);
	CHECK(run_init("--domain", "a.org", NULL) == 2);
	CHECK(run_init("--dir", dir, NULL) == 2);
	CHECK(run_init("--dir", dir, "--domain", NULL) == 2);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--bogus", NULL) ==
	    2);
	CHECK(run_init("--dir", dir, "--dir", dir, "--domain", "a.org",
	    NULL) == 2);
	CHECK(run_init("--dir", "", "--domain", "a.org", NULL) == 2);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "extra", NULL) ==
	    2);
	CHECK(!exists(dir, ""));
	CHECK(run_init("--help", NULL) == 0);

	/* --opt=value works too. */
	{
		char arg[PATH_MAX + 16];

		snprintf(arg, sizeof(arg), "--dir=%s", dir);
		CHECK(run_init(arg, "--domain=a.org", "--port-base=2000",
		    NULL) == 0);
		CHECK(exists(dir, "tegami.conf"));
	}

	/* DIR is a file: an error, not a crash. */
	snprintf(dir, sizeof(dir), "%s/refused/users", tmpdir);
	CHECK(run_init("--dir", dir, "--domain", "a.org", NULL) == 1);
}

static void
test_init_owner(void)
{
	struct passwd *pw = getpwnam("nobody");
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/owned", tmpdir);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--user",
	    "nobody", NULL) == 0);
	snprintf(path, sizeof(path), "%s/mail", dir);
	CHECK(stat(path, &st) == 0);
	if (geteuid() == 0 && pw != NULL) {
		CHECK(st.st_uid == pw->pw_uid && st.st_gid == pw->pw_gid);
		snprintf(path, sizeof(path), "%s/queue", dir);
		CHECK(stat(path, &st) == 0 && st.st_uid == pw->pw_uid);
		snprintf(path, sizeof(path), "%s/users", dir);
		CHECK(stat(path, &st) == 0 && st.st_uid == 0 &&
		    st.st_gid == pw->pw_gid);
	} else
		CHECK(st.st_uid == geteuid());

	/* A user that does not exist: a warning, not an error. */
	snprintf(dir, sizeof(dir), "%s/unowned", tmpdir);
	CHECK(getpwnam("tegami-no-such-user") == NULL);
	CHECK(run_init("--dir", dir, "--domain", "a.org", "--user",
	    "tegami-no-such-user", NULL) == 0);
	snprintf(path, sizeof(path), "%s/mail", dir);
	CHECK(stat(path, &st) == 0 && st.st_uid == geteuid());
}

/* rm -r of the test directory, by hand: no shell. */
static void
remove_tree(const char *path)
{
	DIR *d;
	struct dirent *e;
	char sub[PATH_MAX * 2];
	struct stat st;

	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			remove_tree(sub);
		}
		closedir(d);
		rmdir(path);
	} else
		unlink(path);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/tegami-test-config-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* init prints what it does; keep the test output readable. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	UNIT_RUN(test_defaults);
	UNIT_RUN(test_state_dir_default);
	UNIT_RUN(test_strings);
	UNIT_RUN(test_hostname);
	UNIT_RUN(test_dns_names);
	UNIT_RUN(test_address);
	UNIT_RUN(test_uint);
	UNIT_RUN(test_size);
	UNIT_RUN(test_duration);
	UNIT_RUN(test_bool);
	UNIT_RUN(test_domains);
	UNIT_RUN(test_ports);
	UNIT_RUN(test_bounds);
	UNIT_RUN(test_syntax_errors);
	UNIT_RUN(test_line_length);
	UNIT_RUN(test_comments_whitespace);
	UNIT_RUN(test_load_file);
	UNIT_RUN(test_check_value);
	UNIT_RUN(test_sample);
	UNIT_RUN(test_reference);
	UNIT_RUN(test_init);
	UNIT_RUN(test_init_refusals);
	UNIT_RUN(test_init_owner);

	remove_tree(tmpdir);
	return unit_finish();
}
