/*
 * libFuzzer target for the users and aliases file parsers (accounts_parse)
 * and for recipient_resolve over the alias graphs they produce: what parses
 * must re-parse the same after formatting, and resolution must stay within
 * its limits, never duplicate a target and leave the list alone on error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/accounts.h"
#include "auth/recipient.h"
#include "core/config.h"
#include "smtp/smtp_address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RESOLVE_MAX 32	/* aliases resolved per input */

static const char fuzz_users[] =
    "u@a.test:$y$x\n"
    "v@a.test:$y$x\n"
    "w@b.test:$y$x\n";

struct text {
	char *p;
	size_t len, cap;
};

static void
text_add(struct text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len + n + 1 > t->cap) {
		t->cap = 2 * (t->len + n + 1);
		if ((t->p = realloc(t->p, t->cap)) == NULL)
			abort();
	}
	memcpy(t->p + t->len, s, n + 1);
	t->len += n;
}

/* An error names the file and a line: "NAME:LINE: what". */
static void
check_error(const char *err, const char *name)
{
	size_t n = strlen(name);
	const char *p = err + n + 1;

	if (strncmp(err, name, n) != 0 || err[n] != ':' || *p < '1' ||
	    *p > '9')
		abort();
	while (*p >= '0' && *p <= '9')
		p++;
	if (p[0] != ':' || p[1] != ' ' || p[2] == '\0')
		abort();
}

static void
check_users(const struct account_table *t)
{
	char out[ACCOUNT_ADDRESS_MAX + 1], err[512];
	struct account_table *again = NULL;
	struct text txt = { NULL, 0, 0 };
	const struct account *a;
	size_t i;

	for (i = 0; i < t->n_accounts; i++) {
		a = &t->accounts[i];
		if (accounts_check_address(a->address, out) != NULL ||
		    strcmp(out, a->address) != 0)
			abort();
		if (accounts_find_user(t, a->address) != a)
			abort();
		if (a->hash == NULL || a->hash[0] != '$' ||
		    strlen(a->hash) >= ACCOUNT_HASH_MAX ||
		    strpbrk(a->hash, ": \t\r\n") != NULL)
			abort();
		text_add(&txt, a->address);
		text_add(&txt, ":");
		text_add(&txt, a->hash);
		text_add(&txt, "\n");
	}
	if (accounts_parse("users", txt.p, txt.len, NULL, NULL, 0, true,
	    &again, err, sizeof(err)) == -1 || again->n_accounts !=
	    t->n_accounts)
		abort();
	for (i = 0; i < t->n_accounts; i++) {
		a = accounts_find_user(again, t->accounts[i].address);
		if (a == NULL || strcmp(a->hash, t->accounts[i].hash) != 0)
			abort();
	}
	accounts_free(&again);
	free(txt.p);
}

static void
check_aliases(const struct account_table *t)
{
	char out[ACCOUNT_ADDRESS_MAX + 1], err[512];
	struct account_table *again = NULL;
	struct text txt = { NULL, 0, 0 };
	const struct alias *al, *al2;
	size_t i, j;

	for (i = 0; i < t->n_aliases; i++) {
		al = &t->aliases[i];
		if (accounts_check_address(al->address, out) != NULL ||
		    strcmp(out, al->address) != 0)
			abort();
		if (accounts_find_alias(t, al->address) != al)
			abort();
		if (al->n_targets == 0 || al->n_targets > ALIAS_TARGETS_MAX)
			abort();
		text_add(&txt, al->address);
		text_add(&txt, ":");
		for (j = 0; j < al->n_targets; j++) {
			if (accounts_check_target(al->targets[j], out) !=
			    NULL || strcmp(out, al->targets[j]) != 0)
				abort();
			text_add(&txt, j == 0 ? " " : ", ");
			text_add(&txt, al->targets[j]);
		}
		text_add(&txt, "\n");
	}
	if (accounts_parse(NULL, NULL, 0, "aliases", txt.p, txt.len, false,
	    &again, err, sizeof(err)) == -1 || again->n_aliases !=
	    t->n_aliases)
		abort();
	for (i = 0; i < t->n_aliases; i++) {
		al = &t->aliases[i];
		al2 = accounts_find_alias(again, al->address);
		if (al2 == NULL || al2->n_targets != al->n_targets)
			abort();
		for (j = 0; j < al->n_targets; j++)
			if (strcmp(al->targets[j], al2->targets[j]) != 0)
				abort();
	}
	accounts_free(&again);
	free(txt.p);
}

static void
check_list(const struct account_table *t, const struct recipient_list *l)
{
	size_t i, j;

	if (l->n_targets > RECIPIENT_TARGETS_MAX)
		abort();
	for (i = 0; i < l->n_targets; i++) {
		if (l->targets[i].local &&
		    accounts_find_user(t, l->targets[i].address) == NULL)
			abort();
		for (j = 0; j < i; j++)
			if (l->targets[i].local == l->targets[j].local &&
			    strcmp(l->targets[i].address,
			    l->targets[j].address) == 0)
				abort();
	}
}

/* Resolves the aliases (as if sent in one message) under two domains. */
static void
check_resolve(const struct account_table *t)
{
	static char *domains[] = { "a.test", "b.test" };
	struct tegami_config cfg;
	struct recipient_list l = { NULL, 0, 0 };
	struct smtp_address addr;
	const char *reply, *at;
	size_t i, before;

	memset(&cfg, 0, sizeof(cfg));
	cfg.domains[0] = domains[0];
	cfg.domains[1] = domains[1];
	cfg.n_domains = 2;
	cfg.alias_depth_max = 8;
	for (i = 0; i < t->n_aliases && i < RESOLVE_MAX; i++) {
		memset(&addr, 0, sizeof(addr));
		at = strrchr(t->aliases[i].address, '@');
		if (at == NULL || at - t->aliases[i].address >
		    SMTP_LOCALPART_MAX)
			abort();
		memcpy(addr.local, t->aliases[i].address,
		    (size_t)(at - t->aliases[i].address));
		snprintf(addr.domain, sizeof(addr.domain), "%s", at + 1);
		before = l.n_targets;
		reply = recipient_resolve(&cfg, t, &addr, i % 2 == 0, &l);
		if (reply != NULL) {
			if (l.n_targets != before || strlen(reply) < 4 ||
			    reply[3] != ' ' || (reply[0] != '4' &&
			    reply[0] != '5'))
				abort();
		}
		check_list(t, &l);
	}
	recipient_list_clear(&l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct account_table *t = NULL;
	char err[512];

	if (accounts_parse("users", text, size, NULL, NULL, 0, true, &t, err,
	    sizeof(err)) == 0) {
		if (t->n_aliases != 0)
			abort();
		check_users(t);
		accounts_free(&t);
	} else {
		if (t != NULL)
			abort();
		check_error(err, "users");
	}

	if (accounts_parse(NULL, NULL, 0, "aliases", text, size, false, &t,
	    err, sizeof(err)) == 0) {
		if (t->n_accounts != 0)
			abort();
		check_aliases(t);
		accounts_free(&t);
		/* Again with users for the aliases to reach. */
		if (accounts_parse("users", fuzz_users, strlen(fuzz_users),
		    "aliases", text, size, false, &t, err, sizeof(err)) == -1)
			abort();
		check_resolve(t);
		accounts_free(&t);
	} else {
		if (t != NULL)
			abort();
		check_error(err, "aliases");
	}
	return 0;
}
