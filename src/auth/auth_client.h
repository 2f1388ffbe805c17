/*
 * The front's side of the auth process: asks it to check passwords
 * without blocking the event loop, and receives the account list (no
 * password hashes) whenever the users or aliases file changes.
 */
#ifndef TEGAMI_AUTH_CLIENT_H
#define TEGAMI_AUTH_CLIENT_H

#include <stdint.h>

#include "auth/auth_proto.h"

struct event_base;
struct account_table;
struct auth_client;

/* A finished check; account is "" unless code is AUTH_OK. */
typedef void (*auth_result_cb)(void *arg, enum auth_result_code code,
    unsigned delay_ms, const char *account);
/* A new account list; the callee owns table. */
typedef void (*auth_accounts_cb)(void *arg, struct account_table *table);

/*
 * Takes the front's end of its socketpair and asks for the account list at
 * once. Never fails: when the auth process cannot be reached, checks end
 * in AUTH_TEMPFAIL.
 */
struct auth_client *auth_client_new(struct event_base *base, int fd,
    auth_accounts_cb accounts_cb, void *arg);
void auth_client_free(struct auth_client **acp);

/*
 * Starts a check; cb runs later (never from within this call), at the
 * latest after AUTH_CLIENT_TIMEOUT_SECONDS with AUTH_TEMPFAIL. The
 * password is copied into the request and wiped. Returns a handle for
 * auth_client_cancel (never 0).
 */
#define AUTH_CLIENT_TIMEOUT_SECONDS 30
uint64_t auth_client_check(struct auth_client *ac, const char *service,
    const char *ip, const char *user, const char *password,
    auth_result_cb cb, void *arg);

/* The session is gone: its callback must not run. */
void auth_client_cancel(struct auth_client *ac, uint64_t handle);

#endif
