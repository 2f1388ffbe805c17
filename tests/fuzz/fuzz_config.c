/*
 * libFuzzer target for the tegami.conf parser: arbitrary bytes must never
 * crash it, and what it accepts must satisfy the table's promises and
 * survive a round trip through the sample writer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

#define FUZZ_LINE_MAX 4096	/* the parser's line limit */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static int
is_lower(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return 0;
	return 1;
}

static void
check_config(const struct tegami_config *cfg)
{
	char upper[300];
	size_t i, j;

	check(cfg->n_domains >= 1 && cfg->n_domains <= CONFIG_DOMAINS_MAX);
	for (i = 0; i < cfg->n_domains; i++) {
		check(cfg->domains[i] != NULL);
		check(is_lower(cfg->domains[i]));
		check(config_dns_name_ok(cfg->domains[i]));
		check(config_is_local_domain(cfg, cfg->domains[i]));
		for (j = 0; j < i; j++)
			check(strcmp(cfg->domains[i], cfg->domains[j]) != 0);
		/* Matching ignores case. */
		for (j = 0; cfg->domains[i][j] != '\0'; j++) {
			char c = cfg->domains[i][j];

			upper[j] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
		}
		upper[j] = '\0';
		check(config_is_local_domain(cfg, upper));
	}
	check(cfg->hostname != NULL && is_lower(cfg->hostname) &&
	    config_dns_name_ok(cfg->hostname));
	check(cfg->state_dir != NULL && cfg->state_dir[0] == '/');
	check(cfg->listen != NULL && cfg->user != NULL && cfg->path != NULL);
	check(cfg->port_base <= 64000);
	check(config_service_port(cfg, 995) <= 65535);
	check(cfg->workers <= 64);
	check(cfg->disk_threads >= 1 && cfg->disk_threads <= 64);
	check(cfg->message_size_limit >= 1024 &&
	    cfg->message_size_limit <= (UINT64_C(2) << 30));
	check(cfg->recipient_limit >= 1 && cfg->recipient_limit <= 100000);
	check(cfg->max_connections >= 1 && cfg->max_connections <= 100000);
	check(cfg->max_connections_per_ip >= 1 &&
	    cfg->max_connections_per_ip <= 100000);
	check(cfg->smtp_error_limit >= 1 && cfg->smtp_error_limit <= 1000);
	check(cfg->smtp_greeting_delay_ms <= 60000);
	check(cfg->smtp_timeout_command >= 1 &&
	    cfg->smtp_timeout_command <= 3600);
	check(cfg->smtp_timeout_data_block >= 1 &&
	    cfg->smtp_timeout_data_block <= 3600);
	check(cfg->smtp_data_deadline >= 1 &&
	    cfg->smtp_data_deadline <= 86400);
	check(cfg->shutdown_grace <= 3600);
	check(cfg->alias_depth_max >= 1 && cfg->alias_depth_max <= 100);
	check(cfg->min_free_space <= (UINT64_C(1) << 40));
}

/* The sample written from cfg's init values loads back to the same. */
static void
check_round_trip(const struct tegami_config *cfg)
{
	struct config_init_values v;
	struct tegami_config *again = NULL;
	char *domains, *text = NULL, err[512];
	size_t i, len = 0, off = 0;
	FILE *f;

	domains = malloc(CONFIG_DOMAINS_MAX * 256);
	check(domains != NULL);
	for (i = 0; i < cfg->n_domains; i++)
		off += (size_t)sprintf(domains + off, "%s%s", i > 0 ? " " : "",
		    cfg->domains[i]);
	if (off + strlen("domains = ") > FUZZ_LINE_MAX) {
		/* "domains=a" may fit a line that "domains = a" does not. */
		free(domains);
		return;
	}
	memset(&v, 0, sizeof(v));
	v.domain = domains;
	v.hostname = cfg->hostname;
	v.listen = cfg->listen;
	v.port_base = cfg->port_base;
	v.user = cfg->user;
	f = open_memstream(&text, &len);
	check(f != NULL);
	check(config_write_sample(f, &v) == 0);
	check(fclose(f) == 0);
	check(config_parse("fuzz.conf", text, len, &again, err,
	    sizeof(err)) == 0);
	check(again->n_domains == cfg->n_domains);
	for (i = 0; i < cfg->n_domains; i++)
		check(strcmp(again->domains[i], cfg->domains[i]) == 0);
	check(strcmp(again->hostname, cfg->hostname) == 0);
	check(strcmp(again->listen, cfg->listen) == 0);
	check(strcmp(again->user, cfg->user) == 0);
	check(again->port_base == cfg->port_base);
	config_free(&again);
	free(text);
	free(domains);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tegami_config *cfg = NULL;
	char err[256];

	memset(err, 'x', sizeof(err));
	if (config_parse("fuzz.conf", (const char *)data, size, &cfg, err,
	    sizeof(err)) == 0) {
		check(cfg != NULL);
		check_config(cfg);
		check_round_trip(cfg);
		config_free(&cfg);
		check(cfg == NULL);
	} else {
		check(cfg == NULL);
		check(memchr(err, '\0', sizeof(err)) != NULL);
		check(strncmp(err, "fuzz.conf:", 10) == 0);
	}
	return 0;
}
