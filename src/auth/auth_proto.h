/*
 * The messages between the front processes and the auth process, one per
 * SOCK_SEQPACKET record on a socketpair per front slot. The parent keeps
 * both ends of every pair open, so a restarted auth or front process finds
 * its end again and records are never torn: a request the dead process
 * had read is lost (the front times it out), any other is still there.
 */
#ifndef TEGAMI_AUTH_PROTO_H
#define TEGAMI_AUTH_PROTO_H

#include <stdint.h>

#include "auth/accounts.h"
#include "auth/sasl.h"

#define AUTH_SERVICE_MAX 15
#define AUTH_IP_MAX 63
#define AUTH_CHUNK_MAX 32768	/* account list bytes per record */

enum auth_msg_type {
	AUTH_MSG_HELLO = 1,	/* front -> auth: send me the account list */
	AUTH_MSG_CHECK,		/* front -> auth: struct auth_check */
	AUTH_MSG_RESULT,	/* auth -> front: struct auth_result */
	AUTH_MSG_ACCOUNTS,	/* auth -> front: struct auth_accounts */
};

enum auth_result_code {
	AUTH_OK = 0,		/* 235 */
	AUTH_FAILED,		/* 535 5.7.8, after delay_ms */
	AUTH_THROTTLED,		/* 454 4.7.0: too many failures */
	AUTH_TEMPFAIL,		/* 454 4.7.0: the auth process cannot check */
};

struct auth_hello {
	uint32_t type;
	uint32_t reserved;
};

/* Strings are NUL-terminated within their arrays (the receiver forces it). */
struct auth_check {
	uint32_t type;
	uint32_t reserved;
	uint64_t id;			/* the front's, echoed in the result */
	char service[AUTH_SERVICE_MAX + 1];	/* "submission", for logs */
	char ip[AUTH_IP_MAX + 1];	/* the client's address */
	char user[SASL_NAME_MAX + 1];	/* the name the client gave */
	char password[ACCOUNTS_PASSWORD_MAX + 1];
};

struct auth_result {
	uint32_t type;
	uint32_t code;			/* enum auth_result_code */
	uint64_t id;
	uint32_t delay_ms;		/* hold the reply back this long */
	uint32_t reserved;
	char account[ACCOUNT_ADDRESS_MAX + 1];	/* AUTH_OK: the account */
};

/*
 * The account list (users without hashes, as accounts_public_text writes
 * it, then the aliases file) in records of up to AUTH_CHUNK_MAX bytes.
 * The first record of a list has offset 0 and says the total lengths; the
 * receiver drops records until it sees one with offset 0.
 */
struct auth_accounts {
	uint32_t type;
	uint32_t data_len;		/* bytes of data used */
	uint64_t generation;		/* changes with every new list */
	uint64_t users_len;		/* the list: users text, then */
	uint64_t aliases_len;		/* the aliases text */
	uint64_t offset;		/* of data within the list */
	char data[AUTH_CHUNK_MAX];
};

/* The largest record either side sends. */
#define AUTH_RECORD_MAX sizeof(struct auth_accounts)

#endif
