/*
 * Tests of recipient_resolve (src/auth/recipient.c): the open-relay matrix
 * with addresses built as the RFC 5321 path parser leaves them, aliases
 * (nested, loops, depth), plus-addressing, case, postmaster, duplicates and
 * the recipient limit.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/accounts.h"
#include "auth/recipient.h"
#include "core/config.h"
#include "smtp/smtp_address.h"
#include "unit.h"

static struct tegami_config cfg;
static struct account_table *accounts;

static const char users_text[] =
    "alice@local.test:$y$a\n"
    "bob@local.test:$y$b\n"
    "mixed@local.test:$y$m\n"
    "carol@second.test:$y$c\n";

static const char aliases_text[] =
    "postmaster@local.test: alice@local.test\n"
    "staff@local.test: alice@local.test, bob@local.test\n"
    "team@local.test: staff@local.test, carol@second.test, alice@local.test\n"
    "ext@local.test: v@ext.test, Alice@LOCAL.test\n"
    "tagged@local.test: bob+from-alias@local.test\n"
    "dead@local.test: alice@local.test, ghost@local.test\n"
    "loop1@local.test: loop1@local.test\n"
    "loopa@local.test: loopb@local.test\n"
    "loopb@local.test: loopa@local.test\n"
    "loopc@local.test: alice@local.test, loopd@local.test\n"
    "loopd@local.test: bob@local.test, loopc@local.test\n"
    /* A chain: d1 -> d2 -> ... -> d6 -> alice (6 alias levels). */
    "d1@local.test: d2@local.test\n"
    "d2@local.test: d3@local.test\n"
    "d3@local.test: d4@local.test\n"
    "d4@local.test: d5@local.test\n"
    "d5@local.test: d6@local.test\n"
    "d6@local.test: alice@local.test\n"
    "second@second.test: staff@local.test\n";

static void
setup(void)
{
	static char *domains[] = { "local.test", "second.test" };
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	cfg.domains[0] = domains[0];
	cfg.domains[1] = domains[1];
	cfg.n_domains = 2;
	cfg.alias_depth_max = 6;
	cfg.recipient_limit = 1000;
	if (accounts_parse("users", users_text, strlen(users_text), "aliases",
	    aliases_text, strlen(aliases_text), false, &accounts, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "setup: %s\n", err);
		exit(1);
	}
}

/* An address as smtp_address_parse_path leaves it. */
static struct smtp_address
addr(const char *local, const char *domain)
{
	struct smtp_address a;

	memset(&a, 0, sizeof(a));
	snprintf(a.local, sizeof(a.local), "%s", local);
	snprintf(a.domain, sizeof(a.domain), "%s", domain);
	a.domain_literal = domain[0] == '[';
	return a;
}

static struct smtp_address
quoted(const char *local, const char *domain)
{
	struct smtp_address a = addr(local, domain);

	a.local_quoted = true;
	return a;
}

static const char *
resolve(const struct smtp_address *a, bool auth, struct recipient_list *l)
{
	return recipient_resolve(&cfg, accounts, a, auth, l);
}

static bool
has_target(const struct recipient_list *l, bool local, const char *address)
{
	size_t i;

	for (i = 0; i < l->n_targets; i++)
		if (l->targets[i].local == local &&
		    strcmp(l->targets[i].address, address) == 0)
			return true;
	return false;
}

/* Resolves one address into a fresh list and checks it gives exactly one
 * local target. */
static void
check_one_local(const struct smtp_address *a, bool auth, const char *want)
{
	struct recipient_list l = { 0 };

	CHECK_STR(resolve(a, auth, &l), NULL);
	CHECK(l.n_targets == 1);
	CHECK(has_target(&l, true, want));
	recipient_list_clear(&l);
}

static void
test_users(void)
{
	struct smtp_address a;
	struct recipient_list l = { 0 };

	a = addr("alice", "local.test");
	check_one_local(&a, false, "alice@local.test");
	check_one_local(&a, true, "alice@local.test");
	/* Mixed@LOCAL.TEST: the parser lowercases the domain only. */
	a = addr("Mixed", "local.test");
	check_one_local(&a, false, "mixed@local.test");
	a = addr("ALICE", "local.test");
	check_one_local(&a, false, "alice@local.test");
	a = addr("carol", "second.test");
	check_one_local(&a, false, "carol@second.test");
	/* A quoted local part that is a dot-atom is the same address. */
	a = quoted("alice", "local.test");
	check_one_local(&a, false, "alice@local.test");
	/* A source route is dropped by the parser and ignored here. */
	a = addr("alice", "local.test");
	a.had_source_route = true;
	check_one_local(&a, false, "alice@local.test");

	a = addr("nobody", "local.test");
	CHECK_STR(resolve(&a, false, &l), "550 5.1.1 <nobody@local.test>: "
	    "Recipient address rejected: User unknown");
	CHECK(l.n_targets == 0);
	CHECK_STR(resolve(&a, true, &l), "550 5.1.1 <nobody@local.test>: "
	    "Recipient address rejected: User unknown");
	/* A user of one local domain is not a user of the other. */
	a = addr("alice", "second.test");
	CHECK_REPLY(resolve(&a, false, &l), "550 5.1.1");
	a = addr("Nobody", "local.test");
	CHECK_STR(resolve(&a, false, &l), "550 5.1.1 <Nobody@local.test>: "
	    "Recipient address rejected: User unknown");
	/* The null path never names a recipient. */
	a = addr("", "");
	a.is_null = true;
	CHECK_REPLY(resolve(&a, false, &l), "550 5.1.1");
	CHECK(l.n_targets == 0);
	recipient_list_clear(&l);
}

static void
test_postmaster(void)
{
	struct smtp_address a;
	struct recipient_list l = { 0 };
	char *saved;

	/* Bare <postmaster>: local part only, empty domain. */
	a = addr("postmaster", "");
	check_one_local(&a, false, "alice@local.test");
	a = addr("PostMaster", "");
	check_one_local(&a, false, "alice@local.test");
	a = addr("postmaster", "local.test");
	check_one_local(&a, false, "alice@local.test");
	a = addr("POSTMASTER", "local.test");
	check_one_local(&a, false, "alice@local.test");
	/* Only postmaster may come without a domain. */
	a = addr("alice", "");
	CHECK_REPLY(resolve(&a, false, &l), "550 5.1.1");
	/* The first domain decides: second.test has no postmaster. */
	saved = cfg.domains[0];
	cfg.domains[0] = cfg.domains[1];
	a = addr("postmaster", "");
	CHECK_STR(resolve(&a, false, &l), "550 5.1.1 <postmaster>: "
	    "Recipient address rejected: User unknown");
	cfg.domains[0] = saved;
	CHECK(l.n_targets == 0);
	recipient_list_clear(&l);
}

/* security-tests.md 9: every non-local form is refused without AUTH. */
static void
test_relay_matrix(void)
{
	struct {
		struct smtp_address a;
		const char *reply_unauth;
		const char *reply_auth;	/* NULL: accepted as remote */
		const char *remote;
	} cases[8];
	struct recipient_list l = { 0 };
	size_t i, n = 0;

	/* v@ext.test */
	cases[n].a = addr("v", "ext.test");
	cases[n].reply_unauth = "554 5.7.1 <v@ext.test>: Relay access denied";
	cases[n].reply_auth = NULL;
	cases[n++].remote = "v@ext.test";
	/* v%ext.test@local.test: the percent hack */
	cases[n].a = addr("v%ext.test", "local.test");
	cases[n].reply_unauth =
	    "554 5.7.1 <v%ext.test@local.test>: Relay access denied";
	cases[n].reply_auth = "550 5.1.1 <v%ext.test@local.test>: "
	    "Recipient address rejected: User unknown";
	cases[n++].remote = NULL;
	/* <@local.test:v@ext.test>: the route is dropped, v@ext.test stays */
	cases[n].a = addr("v", "ext.test");
	cases[n].a.had_source_route = true;
	cases[n].reply_unauth = "554 5.7.1 <v@ext.test>: Relay access denied";
	cases[n].reply_auth = NULL;
	cases[n++].remote = "v@ext.test";
	/* ext.test!v@local.test: a bang path */
	cases[n].a = addr("ext.test!v", "local.test");
	cases[n].reply_unauth =
	    "554 5.7.1 <ext.test!v@local.test>: Relay access denied";
	cases[n].reply_auth = "550 5.1.1 <ext.test!v@local.test>: "
	    "Recipient address rejected: User unknown";
	cases[n++].remote = NULL;
	/* "v@ext.test"@local.test: a quoted '@' */
	cases[n].a = quoted("v@ext.test", "local.test");
	cases[n].reply_unauth =
	    "554 5.7.1 <\"v@ext.test\"@local.test>: Relay access denied";
	cases[n].reply_auth = "550 5.1.1 <\"v@ext.test\"@local.test>: "
	    "Recipient address rejected: User unknown";
	cases[n++].remote = NULL;
	/* v@[192.0.2.1]: an address literal is never local */
	cases[n].a = addr("v", "[192.0.2.1]");
	cases[n].reply_unauth =
	    "554 5.7.1 <v@[192.0.2.1]>: Relay access denied";
	cases[n].reply_auth = NULL;
	cases[n++].remote = "v@[192.0.2.1]";
	/* "alice bob"@local.test: quoted, not a dot-atom */
	cases[n].a = quoted("alice bob", "local.test");
	cases[n].reply_unauth =
	    "554 5.7.1 <\"alice bob\"@local.test>: Relay access denied";
	cases[n].reply_auth = "550 5.1.1 <\"alice bob\"@local.test>: "
	    "Recipient address rejected: User unknown";
	cases[n++].remote = NULL;
	/* A remote address keeps the case of its local part. */
	cases[n].a = addr("V.Ext", "ext.test");
	cases[n].reply_unauth =
	    "554 5.7.1 <V.Ext@ext.test>: Relay access denied";
	cases[n].reply_auth = NULL;
	cases[n++].remote = "V.Ext@ext.test";

	for (i = 0; i < n; i++) {
		CHECK_STR(resolve(&cases[i].a, false, &l),
		    cases[i].reply_unauth);
		CHECK(l.n_targets == 0);
		CHECK_STR(resolve(&cases[i].a, true, &l), cases[i].reply_auth);
		if (cases[i].remote != NULL) {
			CHECK(l.n_targets == 1);
			CHECK(has_target(&l, false, cases[i].remote));
		} else {
			CHECK(l.n_targets == 0);
		}
		recipient_list_clear(&l);
	}

	/* A remote quoted local part is forwarded re-quoted. */
	{
		struct smtp_address a = quoted("a b", "ext.test");

		CHECK_STR(resolve(&a, true, &l), NULL);
		CHECK(has_target(&l, false, "\"a b\"@ext.test"));
		recipient_list_clear(&l);
	}
	/* A remote target must fit ACCOUNT_ADDRESS_MAX once re-quoted:
	 * 64 quotes become 130 bytes, with a 189-byte domain 320 in all. */
	{
		struct smtp_address a;
		char local[65], domain[256];
		size_t k;

		memset(local, '"', 64);
		local[64] = '\0';
		for (k = 0; k < 189; k++)
			domain[k] = k % 60 == 59 ? '.' : 'd';
		domain[189] = '\0';
		a = quoted(local, domain);
		CHECK_STR(resolve(&a, true, &l), NULL);
		CHECK(l.n_targets == 1 &&
		    strlen(l.targets[0].address) == ACCOUNT_ADDRESS_MAX);
		recipient_list_clear(&l);
		domain[189] = 'd';
		domain[190] = '\0';
		a = quoted(local, domain);
		CHECK_REPLY(resolve(&a, true, &l), "553 5.1.3 <\"\\\"");
		CHECK(strstr(resolve(&a, true, &l), ">: Address too long") !=
		    NULL);
		CHECK(l.n_targets == 0);
	}
	/* Replies never carry bytes outside printable ASCII. */
	{
		struct smtp_address a = addr("j\xc3\xb6hn", "ext.test");

		a.utf8 = true;
		CHECK_STR(resolve(&a, false, &l),
		    "554 5.7.1 <j??hn@ext.test>: Relay access denied");
		a = addr("j\xc3\xb6hn", "local.test");
		a.utf8 = true;
		CHECK_STR(resolve(&a, false, &l), "550 5.1.1 <j??hn@local.test>: "
		    "Recipient address rejected: User unknown");
	}
	recipient_list_clear(&l);
}

static void
test_aliases(void)
{
	struct smtp_address a;
	struct recipient_list l = { 0 };

	a = addr("staff", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 2);
	CHECK(has_target(&l, true, "alice@local.test"));
	CHECK(has_target(&l, true, "bob@local.test"));
	recipient_list_clear(&l);

	/* Nested, with a duplicate (alice twice) and another domain. */
	a = addr("Team", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 3);
	CHECK(has_target(&l, true, "alice@local.test"));
	CHECK(has_target(&l, true, "bob@local.test"));
	CHECK(has_target(&l, true, "carol@second.test"));
	recipient_list_clear(&l);

	/* An alias may forward out even for an unauthenticated sender. */
	a = addr("ext", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 2);
	CHECK(has_target(&l, false, "v@ext.test"));
	CHECK(has_target(&l, true, "alice@local.test"));
	recipient_list_clear(&l);

	/* A target with +tag is plus-addressed too. */
	a = addr("tagged", "local.test");
	check_one_local(&a, false, "bob@local.test");
	/* An alias in the second domain pointing into the first. */
	a = addr("second", "second.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 2);
	recipient_list_clear(&l);

	/* A missing local target fails the RCPT and adds nothing. */
	a = addr("alice", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	a = addr("dead", "local.test");
	CHECK_STR(resolve(&a, false, &l), "550 5.1.1 <dead@local.test>: "
	    "Recipient address rejected: Alias target unknown");
	CHECK(l.n_targets == 1);
	recipient_list_clear(&l);
}

static void
test_loops_and_depth(void)
{
	struct smtp_address a;
	struct recipient_list l = { 0 };

	a = addr("loop1", "local.test");
	CHECK_STR(resolve(&a, false, &l),
	    "550 5.4.6 <loop1@local.test>: Alias loop");
	a = addr("loopa", "local.test");
	CHECK_STR(resolve(&a, false, &l),
	    "550 5.4.6 <loopa@local.test>: Alias loop");
	a = addr("LoopB", "local.test");
	CHECK_STR(resolve(&a, true, &l),
	    "550 5.4.6 <LoopB@local.test>: Alias loop");
	/* A loop found after real targets were added rolls them back. */
	a = addr("loopc", "local.test");
	CHECK_STR(resolve(&a, false, &l),
	    "550 5.4.6 <loopc@local.test>: Alias loop");
	CHECK(l.n_targets == 0);

	/* d1 nests 6 aliases: exactly the limit of 6, then one over. */
	cfg.alias_depth_max = 6;
	a = addr("d1", "local.test");
	check_one_local(&a, false, "alice@local.test");
	cfg.alias_depth_max = 5;
	CHECK_STR(resolve(&a, false, &l),
	    "550 5.4.6 <d1@local.test>: Alias nesting too deep");
	CHECK(l.n_targets == 0);
	a = addr("d2", "local.test");
	check_one_local(&a, false, "alice@local.test");
	cfg.alias_depth_max = 1;
	a = addr("staff", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 2);
	recipient_list_clear(&l);
	a = addr("team", "local.test");
	CHECK_STR(resolve(&a, false, &l),
	    "550 5.4.6 <team@local.test>: Alias nesting too deep");
	/* Loop wins over depth when both apply at the same step. */
	a = addr("loop1", "local.test");
	CHECK_STR(resolve(&a, false, &l),
	    "550 5.4.6 <loop1@local.test>: Alias loop");
	cfg.alias_depth_max = 6;
	recipient_list_clear(&l);
}

static void
test_plus_addressing(void)
{
	struct smtp_address a;
	struct recipient_list l = { 0 };

	a = addr("alice+tag", "local.test");
	check_one_local(&a, false, "alice@local.test");
	a = addr("Alice+Tag+More", "local.test");
	check_one_local(&a, false, "alice@local.test");
	a = addr("alice+", "local.test");
	check_one_local(&a, false, "alice@local.test");
	a = addr("staff+list", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 2);
	recipient_list_clear(&l);
	a = addr("+tag", "local.test");
	CHECK_STR(resolve(&a, false, &l), "550 5.1.1 <+tag@local.test>: "
	    "Recipient address rejected: User unknown");
	a = addr("nobody+tag", "local.test");
	CHECK_REPLY(resolve(&a, false, &l), "550 5.1.1");
	a = addr("alice+tag", "ext.test");
	CHECK_REPLY(resolve(&a, false, &l), "554 5.7.1");
	/* Remote: the tag is the remote side's business. */
	CHECK_STR(resolve(&a, true, &l), NULL);
	CHECK(has_target(&l, false, "alice+tag@ext.test"));
	recipient_list_clear(&l);
}

static void
test_duplicates(void)
{
	struct smtp_address a;
	struct recipient_list l = { 0 };

	a = addr("alice", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	/* The same mailbox again, in other spellings: nothing new, OK. */
	CHECK_STR(resolve(&a, false, &l), NULL);
	a = addr("ALICE+x", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	a = addr("postmaster", "");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 1);
	a = addr("staff", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 2);
	a = addr("v", "ext.test");
	CHECK_STR(resolve(&a, true, &l), NULL);
	CHECK_STR(resolve(&a, true, &l), NULL);
	a = addr("ext", "local.test");
	CHECK_STR(resolve(&a, false, &l), NULL);
	CHECK(l.n_targets == 3);
	CHECK(has_target(&l, false, "v@ext.test"));
	recipient_list_clear(&l);
	CHECK(l.targets == NULL && l.n_targets == 0);
	recipient_list_clear(&l);
}

static void
test_limits(void)
{
	struct account_table *big = NULL;
	struct smtp_address a;
	struct recipient_list l = { 0 };
	char *text, err[256];
	size_t len, i, j, k;
	const char *r;

	/* An alias with RECIPIENT_TARGETS_MAX remote targets fills the
	 * list exactly; one more target is 452 and changes nothing. */
	len = 64 + (size_t)RECIPIENT_TARGETS_MAX * 32 + 8192;
	text = malloc(len);
	if (text == NULL)
		return;
	strcpy(text, "big@local.test:");
	for (i = 0; i < RECIPIENT_TARGETS_MAX; i++)
		snprintf(text + strlen(text), len - strlen(text),
		    " r%zu@ext.test", i);
	strcat(text, "\nhalf@local.test:");
	for (i = 0; i < RECIPIENT_TARGETS_MAX / 2; i++)
		snprintf(text + strlen(text), len - strlen(text),
		    " h%zu@ext.test", i);
	/*
	 * Diamonds: w0 -> x0..x9, every x -> y0..y9, every y -> z0..z9,
	 * every z -> u0..u9, every u -> alice: 1 + 10 + 100 + 1000 + 10000
	 * + 10000 lookups from w0, over the bound, for one target. x0 alone
	 * is 1 + 10 + 100 + 1000 + 1000: fine.
	 */
	strcat(text, "\nw0@local.test:");
	for (i = 0; i < 10; i++)
		snprintf(text + strlen(text), len - strlen(text),
		    " x%zu@local.test", i);
	for (k = 0; k < 3; k++) {
		for (i = 0; i < 10; i++) {
			snprintf(text + strlen(text), len - strlen(text),
			    "\n%c%zu@local.test:", "xyz"[k], i);
			for (j = 0; j < 10; j++)
				snprintf(text + strlen(text), len - strlen(text),
				    " %c%zu@local.test", "yzu"[k], j);
		}
	}
	for (i = 0; i < 10; i++)
		snprintf(text + strlen(text), len - strlen(text),
		    "\nu%zu@local.test: alice@local.test", i);
	strcat(text, "\n");
	CHECK(accounts_parse("users", users_text, strlen(users_text),
	    "aliases", text, strlen(text), false, &big, err,
	    sizeof(err)) == 0);
	free(text);
	if (big == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}

	a = addr("big", "local.test");
	CHECK_STR(recipient_resolve(&cfg, big, &a, false, &l), NULL);
	CHECK(l.n_targets == RECIPIENT_TARGETS_MAX);
	/* Already there: no new target, still fine at the limit. */
	a = addr("r7", "ext.test");
	CHECK_STR(recipient_resolve(&cfg, big, &a, true, &l), NULL);
	a = addr("alice", "local.test");
	r = recipient_resolve(&cfg, big, &a, false, &l);
	CHECK_STR(r, "452 4.5.3 Too many recipients");
	CHECK(l.n_targets == RECIPIENT_TARGETS_MAX);
	recipient_list_clear(&l);

	/* Half, then one more than half: rolled back to the half. */
	a = addr("alice", "local.test");
	CHECK_STR(recipient_resolve(&cfg, big, &a, false, &l), NULL);
	a = addr("half", "local.test");
	CHECK_STR(recipient_resolve(&cfg, big, &a, false, &l), NULL);
	CHECK(l.n_targets == RECIPIENT_TARGETS_MAX / 2 + 1);
	a = addr("big", "local.test");
	CHECK_STR(recipient_resolve(&cfg, big, &a, false, &l),
	    "452 4.5.3 Too many recipients");
	CHECK(l.n_targets == RECIPIENT_TARGETS_MAX / 2 + 1);
	CHECK(has_target(&l, true, "alice@local.test"));
	CHECK(strcmp(l.targets[l.n_targets - 1].address,
	    "h499@ext.test") == 0);
	recipient_list_clear(&l);

	cfg.alias_depth_max = 10;
	a = addr("x0", "local.test");
	CHECK_STR(recipient_resolve(&cfg, big, &a, false, &l), NULL);
	CHECK(l.n_targets == 1);
	a = addr("w0", "local.test");
	CHECK_STR(recipient_resolve(&cfg, big, &a, false, &l),
	    "550 5.4.6 <w0@local.test>: Alias expansion too large");
	CHECK(l.n_targets == 1);
	cfg.alias_depth_max = 6;
	recipient_list_clear(&l);
	accounts_free(&big);
}

/* A table that holds nothing (or none at all) resolves nothing local. */
static void
test_empty_table(void)
{
	struct smtp_address a = addr("alice", "local.test");
	struct recipient_list l = { 0 };

	CHECK_REPLY(recipient_resolve(&cfg, NULL, &a, false, &l), "550 5.1.1");
	a = addr("postmaster", "");
	CHECK_REPLY(recipient_resolve(&cfg, NULL, &a, false, &l), "550 5.1.1");
	a = addr("v", "ext.test");
	CHECK_STR(recipient_resolve(&cfg, NULL, &a, true, &l), NULL);
	CHECK(l.n_targets == 1);
	recipient_list_clear(&l);
}

int
main(void)
{
	setup();
	UNIT_RUN(test_users);
	UNIT_RUN(test_postmaster);
	UNIT_RUN(test_relay_matrix);
	UNIT_RUN(test_aliases);
	UNIT_RUN(test_loops_and_depth);
	UNIT_RUN(test_plus_addressing);
	UNIT_RUN(test_duplicates);
	UNIT_RUN(test_limits);
	UNIT_RUN(test_empty_table);
	accounts_free(&accounts);
	return unit_finish();
}
