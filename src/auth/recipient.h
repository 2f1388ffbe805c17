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

struct recipient_target {
	bool local;
	/* local: "user@domain" of an account in the users file.
	 * remote: the address to forward to. Lowercased. */
	char address[ACCOUNT_ADDRESS_MAX + 1];
};

struct recipient_list {
	struct recipient_target *targets;	/* malloc'd */
	size_t n_targets;
};

/*
 * Resolves addr. Returns NULL and appends the final destinations to list
 * (duplicates removed), or returns the reply for RCPT:
 *  - a domain that is not local (or an address literal, or a local part
 *    with routing characters) and authenticated false:
 *    "554 5.7.1 Relay access denied"
 *  - a local domain with no such user or alias: "550 5.1.1 ..."
 *  - an alias loop or deeper than depth_max: "550 5.4.6 ..."
 *  - too many targets: "452 4.5.3 ..."
 * The bare <postmaster> path is postmaster@ the first local domain.
 * Plus-addressing: "alice+tag" is looked up as itself first, then as "alice".
 */
const char *recipient_resolve(const struct tegami_config *cfg,
    const struct account_table *accounts, const struct smtp_address *addr,
    bool authenticated, struct recipient_list *list);

void recipient_list_clear(struct recipient_list *list);

#endif
