/*
 * libFuzzer target for the users and aliases file parsers (accounts_parse),
 * the Dovecot passwd-file import parser, the hash-free public text, and for
 * recipient_resolve and accounts_may_send_as over the alias graphs they
 * produce: what parses must re-parse the same after formatting (also
 * through the public text), resolution must stay within its limits, never
 * duplicate a target and leave the list alone on error, and an account
 * may always send as what mail would deliver to it.
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
    "v@a.test:!$y$x:send_as=@c.test\n"
    "w@b.test::send_as=x@remote.test,send_as=*\n";

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

/* Formats a users line as the parser should read it back. */
static void
format_user(struct text *txt, const struct account *a, bool with_hash)
{
	size_t j;

	text_add(txt, a->address);
	text_add(txt, a->locked ? ":!" : ":");
	if (with_hash)
		text_add(txt, a->hash);
	for (j = 0; j < a->n_send_as; j++) {
		text_add(txt, j == 0 ? ":" : ",");
		text_add(txt, "send_as=");
		text_add(txt, a->send_as[j]);
	}
	text_add(txt, "\n");
}

static bool
same_options(const struct account *a, const struct account *b)
{
	size_t j;

	if (a->locked != b->locked || a->n_send_as != b->n_send_as)
		return false;
	for (j = 0; j < a->n_send_as; j++)
		if (strcmp(a->send_as[j], b->send_as[j]) != 0)
			return false;
	return true;
}

/* Parses txt (with or without hashes) and checks it gives t's accounts in
 * the same order. */
static void
check_reparse(const struct account_table *t, const struct text *txt,
    bool with_hashes)
{
	struct account_table *again = NULL;
	const struct account *a, *b;
	char err[512];
	size_t i;

	if (accounts_parse("users", txt->p, txt->len, NULL, NULL, 0,
	    with_hashes, &again, err, sizeof(err)) == -1 ||
	    again->n_accounts != t->n_accounts)
		abort();
	for (i = 0; i < t->n_accounts; i++) {
		a = &t->accounts[i];
		b = accounts_find_user(again, a->address);
		if (b != &again->accounts[i] || !same_options(a, b))
			abort();
		if (with_hashes ? strcmp(a->hash, b->hash) != 0 :
		    b->hash != NULL)
			abort();
	}
	accounts_free(&again);
}

static void
check_users(const struct account_table *t)
{
	char out[ACCOUNT_ADDRESS_MAX + 1];
	struct text txt = { NULL, 0, 0 }, pub_want = { NULL, 0, 0 };
	const struct account *a;
	char *pub, *pub2;
	size_t i, j, len, len2;

	for (i = 0; i < t->n_accounts; i++) {
		a = &t->accounts[i];
		if (accounts_check_address(a->address, out) != NULL ||
		    strcmp(out, a->address) != 0)
			abort();
		if (accounts_find_user(t, a->address) != a)
			abort();
		if (a->hash == NULL || (a->hash[0] != '\0' &&
		    strncmp(a->hash, "$y$", 3) != 0 &&
		    strncmp(a->hash, "$6$", 3) != 0 &&
		    strncmp(a->hash, "$2b$", 4) != 0 &&
		    strncmp(a->hash, "$2y$", 4) != 0 &&
		    strncmp(a->hash, "$2a$", 4) != 0) ||
		    strlen(a->hash) >= ACCOUNT_HASH_MAX ||
		    strpbrk(a->hash, ": \t\r\n") != NULL)
			abort();
		for (j = 0; j < a->n_send_as; j++)
			if (accounts_check_send_as(a->send_as[j], out) !=
			    NULL || strcmp(out, a->send_as[j]) != 0)
				abort();
		format_user(&txt, a, true);
		format_user(&pub_want, a, false);
	}
	check_reparse(t, &txt, true);

	/* The public text: exactly the lines without hashes, which parse
	 * back to the same accounts, and give the same text again. */
	if (accounts_public_text(t, &pub, &len) != 0 || len != pub_want.len ||
	    len != strlen(pub) || (len > 0 && memcmp(pub, pub_want.p,
	    len) != 0))
		abort();
	check_reparse(t, &pub_want, false);
	{
		struct account_table *again = NULL;
		char err[512];

		if (accounts_parse("public", pub, len, NULL, NULL, 0, false,
		    &again, err, sizeof(err)) == -1 ||
		    accounts_public_text(again, &pub2, &len2) != 0 ||
		    len2 != len || memcmp(pub, pub2, len) != 0)
			abort();
		free(pub2);
		accounts_free(&again);
	}
	free(pub);
	free(txt.p);
	free(pub_want.p);
}

/* What an account may always send as: "", itself, its +tag forms and its
 * own patterns. */
static void
check_send_as_own(const struct account_table *t)
{
	char addr[2 * ACCOUNT_ADDRESS_MAX];
	const struct account *a;
	const char *at, *p;
	size_t i, j;

	for (i = 0; i < t->n_accounts && i < RESOLVE_MAX; i++) {
		a = &t->accounts[i];
		at = strrchr(a->address, '@');
		if (!accounts_may_send_as(t, a->address, "") ||
		    !accounts_may_send_as(t, a->address, a->address))
			abort();
		snprintf(addr, sizeof(addr), "%.*s+Tag%s",
		    (int)(at - a->address), a->address, at);
		if (strlen(addr) <= ACCOUNT_ADDRESS_MAX &&
		    !accounts_may_send_as(t, a->address, addr))
			abort();
		for (j = 0; j < a->n_send_as; j++) {
			p = a->send_as[j];
			snprintf(addr, sizeof(addr), "%s%s", p[0] == '@' ?
			    "x" : "", p);
			if (strlen(addr) <= ACCOUNT_ADDRESS_MAX &&
			    !accounts_may_send_as(t, a->address, addr))
				abort();
		}
	}
}

/* A Dovecot passwd-file import: what it gives is a valid users file. */
static void
check_import(const char *text, size_t size)
{
	struct account_table *t = NULL;
	struct text txt = { NULL, 0, 0 };
	char err[512];
	size_t i;

	if (accounts_import_parse("import", text, size, "a.test", &t, err,
	    sizeof(err)) == -1) {
		if (t != NULL)
			abort();
		check_error(err, "import");
		return;
	}
	for (i = 0; i < t->n_accounts; i++) {
		if (t->accounts[i].locked || t->accounts[i].n_send_as != 0)
			abort();
		format_user(&txt, &t->accounts[i], true);
	}
	check_reparse(t, &txt, true);
	free(txt.p);
	accounts_free(&t);
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
check_resolve(const struct account_table *t, size_t size)
{
	static char *domains[] = { "a.test", "b.test" };
	struct tegami_config cfg;
	struct recipient_list l = { NULL, 0, 0 };
	struct smtp_address addr;
	const char *reply, *at;
	size_t i, j, before;
	bool local_aliases = true;

	for (i = 0; i < t->n_aliases; i++) {
		at = strrchr(t->aliases[i].address, '@');
		if (strcmp(at, "@a.test") != 0 && strcmp(at, "@b.test") != 0)
			local_aliases = false;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.domains[0] = domains[0];
	cfg.domains[1] = domains[1];
	cfg.n_domains = 2;
	cfg.alias_depth_max = ACCOUNTS_SEND_AS_DEPTH_MAX - (size % 3);
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
		/* Whom mail to the alias reaches may send as the alias
		 * (when the walk cannot take another way: every alias is in
		 * a local domain). */
		if (reply == NULL && local_aliases)
			for (j = before; j < l.n_targets; j++)
				if (l.targets[j].local &&
				    !accounts_may_send_as(t,
				    l.targets[j].address,
				    t->aliases[i].address))
					abort();
		/* Bounded, whatever the graph; the answer is not known. */
		for (j = 0; j < t->n_accounts; j++)
			(void)accounts_may_send_as(t, t->accounts[j].address,
			    t->aliases[i].address);
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
		check_send_as_own(t);
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
		check_send_as_own(t);
		check_resolve(t, size);
		accounts_free(&t);
	} else {
		if (t != NULL)
			abort();
		check_error(err, "aliases");
	}
	check_import(text, size);
	return 0;
}
