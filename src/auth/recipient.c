/*
 * RCPT resolution: relay decision, plus-addressing, nested aliases with
 * loop and depth limits, duplicate removal. RFC 5321 2.4 (local-part case),
 * 3.6.2 and 4.1.1.3 (source routes ignored), 4.5.3.1.8 (recipient limits).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/recipient.h"
#include "core/util.h"

enum resolve_result {
	RESOLVE_OK,
	RESOLVE_UNKNOWN,	/* the RCPT address itself is unknown */
	RESOLVE_TARGET_UNKNOWN,	/* an alias names a missing local address */
	RESOLVE_LOOP,
	RESOLVE_DEEP,
	RESOLVE_BIG,
	RESOLVE_TOO_MANY,
};

/* The aliases being expanded, innermost first, for loop detection. */
struct alias_frame {
	const struct alias *alias;
	const struct alias_frame *up;
};

struct resolve {
	const struct tegami_config *cfg;
	const struct account_table *accounts;
	struct recipient_list *list;
	size_t steps;
};

/* Room for the longest formatted path: every local-part byte escaped. */
static char reply_buf[2 * SMTP_LOCALPART_MAX + SMTP_DOMAIN_MAX + 128];

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* path: the address as smtp_address_format wrote it. */
static const char *
reply(const char *code, const char *path, const char *text)
{
	size_t i, n;

	n = (size_t)snprintf(reply_buf, sizeof(reply_buf), "%s <", code);
	/* Reply text is printable US-ASCII (RFC 5321 4.2); a UTF-8 or hostile
	 * address must not add bytes or lines to it. */
	for (i = 0; path[i] != '\0' && n + 1 < sizeof(reply_buf); i++)
		reply_buf[n++] = (unsigned char)path[i] < 0x20 ||
		    (unsigned char)path[i] > 0x7e ? '?' : path[i];
	snprintf(reply_buf + n, sizeof(reply_buf) - n, ">: %s", text);
	return reply_buf;
}

static enum resolve_result
add_target(struct recipient_list *list, bool local, const char *address)
{
	struct recipient_target *rt;
	size_t i;

	for (i = 0; i < list->n_targets; i++)
		if (list->targets[i].local == local &&
		    strcmp(list->targets[i].address, address) == 0)
			return RESOLVE_OK;
	if (list->n_targets >= RECIPIENT_TARGETS_MAX)
		return RESOLVE_TOO_MANY;
	if (list->n_targets >= list->cap_targets) {
		size_t cap = list->n_targets < 8 ? 16 : 2 * list->n_targets;

		list->targets = xreallocarray(list->targets, cap,
		    sizeof(*list->targets));
		list->cap_targets = cap;
	}
	rt = &list->targets[list->n_targets++];
	rt->local = local;
	snprintf(rt->address, sizeof(rt->address), "%s", address);
	return RESOLVE_OK;
}

static enum resolve_result expand(struct resolve *, const char *,
    const struct alias_frame *, unsigned);

static enum resolve_result
expand_alias(struct resolve *r, const struct alias *al,
    const struct alias_frame *up, unsigned depth)
{
	const struct alias_frame *f;
	struct alias_frame frame = { al, up };
	enum resolve_result rc;
	size_t i;

	for (f = up; f != NULL; f = f->up)
		if (f->alias == al)
			return RESOLVE_LOOP;
	if (depth + 1 > r->cfg->alias_depth_max)
		return RESOLVE_DEEP;
	for (i = 0; i < al->n_targets; i++) {
		const char *t = al->targets[i], *at = strrchr(t, '@');

		if (at != NULL && config_is_local_domain(r->cfg, at + 1)) {
			rc = expand(r, t, &frame, depth + 1);
			if (rc == RESOLVE_UNKNOWN)
				rc = RESOLVE_TARGET_UNKNOWN;
		} else if (++r->steps > RECIPIENT_EXPAND_STEPS_MAX) {
			rc = RESOLVE_BIG;
		} else {
			rc = add_target(r->list, false, t);
		}
		if (rc != RESOLVE_OK)
			return rc;
	}
	return RESOLVE_OK;
}

/* A user or an alias by this exact name; false when neither. */
static bool
lookup(struct resolve *r, const char *address, const struct alias_frame *up,
    unsigned depth, enum resolve_result *rc_r)
{
	const struct account *u;
	const struct alias *al;

	if ((u = accounts_find_user(r->accounts, address)) != NULL) {
		*rc_r = add_target(r->list, true, u->address);
		return true;
	}
	if ((al = accounts_find_alias(r->accounts, address)) != NULL) {
		*rc_r = expand_alias(r, al, up, depth);
		return true;
	}
	return false;
}

/* Resolves a lowercased local address: itself, then without "+tag". */
static enum resolve_result
expand(struct resolve *r, const char *address, const struct alias_frame *up,
    unsigned depth)
{
	char base[ACCOUNT_ADDRESS_MAX + 1];
	enum resolve_result rc;

	if (++r->steps > RECIPIENT_EXPAND_STEPS_MAX)
		return RESOLVE_BIG;
	if (lookup(r, address, up, depth, &rc))
		return rc;
	if (!accounts_untag(address, base))
		return RESOLVE_UNKNOWN;
	if (lookup(r, base, up, depth, &rc))
		return rc;
	return RESOLVE_UNKNOWN;
}

const char *
recipient_resolve(const struct tegami_config *cfg,
    const struct account_table *accounts, const struct smtp_address *addr,
    bool authenticated, struct recipient_list *list)
{
	struct resolve r = { cfg, accounts, list, 0 };
	char key[ACCOUNT_ADDRESS_MAX + 1], path[sizeof(reply_buf) - 64];
	size_t n_before = list->n_targets, i;
	enum resolve_result rc = RESOLVE_UNKNOWN;
	bool local_domain;

	if (smtp_address_format(addr, path, sizeof(path)) == (size_t)-1)
		snprintf(path, sizeof(path), "?");
	if (addr->is_null || addr->local[0] == '\0')
		goto done;
	if (addr->domain[0] == '\0') {
		/* Only the parser's bare <postmaster> has no domain. */
		if (strcasecmp(addr->local, "postmaster") == 0 &&
		    cfg->n_domains > 0) {
			snprintf(key, sizeof(key), "postmaster@%s",
			    cfg->domains[0]);
			rc = expand(&r, key, NULL, 0);
		}
		goto done;
	}

	/* The formatter quotes exactly the local parts that are not
	 * dot-atoms: "a b"@x, "v@ext.test"@x. */
	local_domain = !addr->domain_literal &&
	    config_is_local_domain(cfg, addr->domain);
	if (!local_domain || smtp_address_has_route_chars(addr) ||
	    (addr->local_quoted && path[0] == '"')) {
		if (!authenticated)
			return reply("554 5.7.1", path, "Relay access denied");
		if (local_domain)
			goto done;
		/* As the path had it: the remote side owns the case. */
		if (strlen(path) > ACCOUNT_ADDRESS_MAX)
			return reply("553 5.1.3", path, "Address too long");
		rc = add_target(list, false, path);
		goto done;
	}

	for (i = 0; i < SMTP_LOCALPART_MAX && addr->local[i] != '\0'; i++)
		key[i] = lower(addr->local[i]);
	snprintf(key + i, sizeof(key) - i, "@%s", addr->domain);
	rc = expand(&r, key, NULL, 0);

 done:
	if (rc != RESOLVE_OK)
		list->n_targets = n_before;
	switch (rc) {
	case RESOLVE_OK:
		return NULL;
	case RESOLVE_UNKNOWN:
		return reply("550 5.1.1", path,
		    "Recipient address rejected: User unknown");
	case RESOLVE_TARGET_UNKNOWN:
		return reply("550 5.1.1", path,
		    "Recipient address rejected: Alias target unknown");
	case RESOLVE_LOOP:
		return reply("550 5.4.6", path, "Alias loop");
	case RESOLVE_DEEP:
		return reply("550 5.4.6", path, "Alias nesting too deep");
	case RESOLVE_BIG:
		return reply("550 5.4.6", path, "Alias expansion too large");
	case RESOLVE_TOO_MANY:
		return "452 4.5.3 Too many recipients";
	}
	return "451 4.3.0 Internal error";
}

void
recipient_list_clear(struct recipient_list *list)
{
	free(list->targets);
	list->targets = NULL;
	list->n_targets = 0;
	list->cap_targets = 0;
}
