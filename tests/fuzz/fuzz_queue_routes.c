/*
 * libFuzzer target for the routes file parser (queue_routes.h): arbitrary
 * bytes must never crash it; what it accepts must keep the table's
 * promises (bounded, sorted, no repeats, valid lowercased names, sane
 * relay hosts and ports), and every route must be found again by the
 * lookup with the precedence it documents. The relay syntax gets the
 * same bytes too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "queue/queue_routes.h"

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
check_route(const struct queue_routes *t, const struct queue_route *r)
{
	const struct queue_route *m;
	char name[DNS_NAME_MAX + 8], upper[DNS_NAME_MAX + 1];
	size_t i;

	check(r->line >= 1);
	check(is_lower(r->domain));
	check(r->auth_user == NULL && r->auth_password == NULL);
	if (r->auth != NULL)
		check(r->auth[0] != '\0' && r->relay != QUEUE_ROUTE_RELAY_MX);
	if (r->relay == QUEUE_ROUTE_RELAY_HOST) {
		check(r->host[0] != '\0');
		check(r->port >= 1 && r->port <= 65535);
	}
	switch (r->kind) {
	case QUEUE_ROUTE_DEFAULT:
		check(r->domain[0] == '\0');
		/* A name with no route of its own gets "*" at the latest. */
		m = queue_routes_match(t, "no-route-here.invalid");
		check(m != NULL);
		break;
	case QUEUE_ROUTE_EXACT:
		check(config_dns_name_ok(r->domain));
		check(queue_routes_match(t, r->domain) == r);
		for (i = 0; r->domain[i] != '\0'; i++)
			upper[i] = r->domain[i] >= 'a' && r->domain[i] <= 'z' ?
			    (char)(r->domain[i] - 32) : r->domain[i];
		upper[i] = '\0';
		check(queue_routes_match(t, upper) == r);
		break;
	case QUEUE_ROUTE_SUFFIX:
		check(config_dns_name_ok(r->domain));
		/* A subdomain finds this route or a more specific one. */
		snprintf(name, sizeof(name), "x.%s", r->domain);
		m = queue_routes_match(t, name);
		check(m != NULL);
		if (strlen(name) <= DNS_NAME_MAX) {
			check(m->kind != QUEUE_ROUTE_DEFAULT);
			if (m->kind == QUEUE_ROUTE_SUFFIX)
				check(strlen(m->domain) >= strlen(r->domain));
		}
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_routes *t = NULL;
	char err[256], host[DNS_NAME_MAX + 1], name[300];
	unsigned port = 0;
	size_t i;

	memset(err, 'x', sizeof(err));
	if (queue_routes_parse("fuzz", (const char *)data, size, &t, err,
	    sizeof(err)) == 0) {
		check(t != NULL && t->n <= QUEUE_ROUTES_MAX);
		for (i = 0; i < t->n; i++) {
			if (i > 0) {
				const struct queue_route *a = &t->routes[i - 1];
				const struct queue_route *b = &t->routes[i];

				/* sorted, no repeats */
				check(a->kind < b->kind || (a->kind == b->kind &&
				    strcmp(a->domain, b->domain) < 0));
			}
			check_route(t, &t->routes[i]);
		}
		/* The lookup takes any name, also the input's bytes. */
		if (size < sizeof(name)) {
			memcpy(name, data, size);
			name[size] = '\0';
			(void)queue_routes_match(t, name);
		}
		queue_routes_free(&t);
		check(t == NULL);
	} else {
		check(t == NULL);
		check(memchr(err, '\0', sizeof(err)) != NULL);
		check(strncmp(err, "fuzz:", 5) == 0);
	}

	memset(err, 'x', sizeof(err));
	if (queue_routes_parse_relay((const char *)data, size, host,
	    sizeof(host), &port, err, sizeof(err)) == 0) {
		check(host[0] != '\0' && strlen(host) <= DNS_NAME_MAX);
		check(port >= 1 && port <= 65535);
	} else
		check(memchr(err, '\0', sizeof(err)) != NULL);
	return 0;
}
