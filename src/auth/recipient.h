/*
 * Where a recipient address goes: a local mailbox (after plus-addressing
 * and nested aliases), a remote address to queue, or an error reply.
 * RFC 5321 2.4 (case), 3.6.2 (no source routing), and the relay-trick forms
 * that open relays obeyed (percent hack, bang paths, quoted '@').
 */
#ifndef TEGAMI_RECIPIENT_H
#define TEGAMI_RECIPIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/accounts.h"
#include "core/config.h"
#include "smtp/smtp_address.h"

#define RECIPIENT_TARGETS_MAX 1000	/* after alias expansion */
/* Lookups one RCPT may cost, so that aliases sharing members ("diamonds")
 * cannot make expansion exponential. */
#define RECIPIENT_EXPAND_STEPS_MAX (10 * RECIPIENT_TARGETS_MAX)

struct recipient_target {
	bool local;
	/* local: "user@domain" of an account in the users file (lowercased).
	 * remote: the address to forward to, as a path would hold it (local
	 * part re-quoted if needed); from an alias it is lowercased, from an
	 * authenticated RCPT the local part keeps its case (RFC 5321 2.4). */
	char address[ACCOUNT_ADDRESS_MAX + 1];
};

struct recipient_list {
	struct recipient_target *targets;	/* malloc'd */
	size_t n_targets;
	size_t cap_targets;	/* private: entries allocated */
};

/*
 * Resolves addr. Returns NULL and appends the final destinations to list
 * (duplicates removed, also against targets already in the list from
 * earlier RCPTs; a RCPT that adds nothing new still succeeds), or returns
 * the reply for RCPT and leaves list as it was:
 *  - a domain that is not local (or an address literal, or a local part
 *    with routing characters or a quoted local part that is not a
 *    dot-atom) and authenticated false:
 *    "554 5.7.1 <ADDR>: Relay access denied"
 *  - a local domain with no such user or alias, or with routing
 *    characters: "550 5.1.1 <ADDR>: Recipient address rejected: User
 *    unknown"; an alias naming a local address that does not exist:
 *    "550 5.1.1 <ADDR>: Recipient address rejected: Alias target unknown"
 *  - an alias loop: "550 5.4.6 <ADDR>: Alias loop"; nested deeper than
 *    cfg->alias_depth_max: "550 5.4.6 <ADDR>: Alias nesting too deep";
 *    more than RECIPIENT_EXPAND_STEPS_MAX lookups: "550 5.4.6 <ADDR>:
 *    Alias expansion too large"
 *  - more than RECIPIENT_TARGETS_MAX targets: "452 4.5.3 Too many
 *    recipients"
 *  - an authenticated remote address too long for a target:
 *    "553 5.1.3 <ADDR>: Address too long"
 * ADDR is the address as sent, with bytes outside printable ASCII shown as
 * '?'. The reply lives in a static buffer, valid until the next call (the
 * front is single-threaded).
 * The bare <postmaster> path is postmaster@ the first local domain.
 * Plus-addressing: "alice+tag" is looked up as itself first, then as "alice".
 * Local parts are compared case-insensitively (lowercased), as every real
 * server does although RFC 5321 2.4 allows case-sensitive ones.
 */
const char *recipient_resolve(const struct tegami_config *cfg,
    const struct account_table *accounts, const struct smtp_address *addr,
    bool authenticated, struct recipient_list *list);

/* Frees the targets; the list is then empty and reusable. */
void recipient_list_clear(struct recipient_list *list);

#endif
