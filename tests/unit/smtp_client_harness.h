/*
 * The harness of the SMTP client tests: see smtp_client_harness.c.
 */
#ifndef TEGAMI_SMTP_CLIENT_HARNESS_H
#define TEGAMI_SMTP_CLIENT_HARNESS_H

#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "smtp/smtp_client.h"

#define PYTHON "/usr/bin/python3"
#define T_SECS 5		/* default timeouts: a broken test ends */
#define MAX_RCPTS 8
#define MSG_SIMPLE "Subject: t\r\n\r\nhello\r\n"

extern char tmpdir[PATH_MAX];
extern char peer_py[PATH_MAX];
extern char ca_crt[PATH_MAX], chain_crt[PATH_MAX], leaf_key[PATH_MAX];
extern char leaf_crt[PATH_MAX];
extern SSL_CTX *ctx_ca;		/* trusts the test CA */
extern SSL_CTX *ctx_none;	/* trusts nothing */
extern SSL_CTX *ctx_dane;
extern const char *const rcpts1[1];
extern const char *const rcpts3[3];
extern const char msg_simple[sizeof(MSG_SIMPLE)];
extern int msg_fd_simple;
extern struct sockaddr_in peer_sin;
/* A peer script's EHLO offering STARTTLS, and its EHLO after TLS. */
extern const char ehlo_tls[];

/* Files and processes */
char *slurp(const char *path, size_t *len_r);
bool spit(const char *path, const char *buf, size_t len);
int run_cmd(char *const argv[]);
/* A message file; returns its descriptor. */
int msg_file(const char *content, size_t len);

struct peer {
	pid_t pid;
	int port;
	char dir[PATH_MAX];
	char record[PATH_MAX];
	char data[PATH_MAX];
};

/* Starts smtp_peer.py with a script written with ' for " (JSON). */
bool peer_start(struct peer *pe, const char *script);
/* Waits for the peer (killing it after wait_ms) and returns its record. */
char *peer_finish(struct peer *pe, int wait_ms);
/* The recv() number that brought the first command starting with cmd;
 * -1 if none. */
int rec_batch(const char *rec, const char *cmd);
bool rec_has(const char *rec, const char *s);

/* The client on a loop */
struct run {
	struct event_base *base;
	int calls;
	bool in_start;
	bool cb_in_start;
	struct smtp_client_result res;
	struct smtp_client_rcpt rcpts[MAX_RCPTS];
	uint64_t ms;
	struct smtp_client *client;
	int cancel_after_ms;
};

void client_run(const struct smtp_client_params *p, struct run *run);
void params_init(struct smtp_client_params *p, int port,
    const char *const *rcpts, size_t n);
/*
 * One session: starts the peer with script, runs the client with
 * p (port filled in), returns the peer's record (caller frees) or NULL.
 */
char *session(const char *script, struct smtp_client_params *p,
    struct run *run, struct peer *pe);
bool data_is(const struct peer *pe, const char *want, size_t wlen);
void check_all_res(const struct smtp_client_result *res, size_t n,
    enum smtp_rcpt_outcome o, int code);
void check_all(const struct run *run, size_t n, enum smtp_rcpt_outcome o,
    int code);

/* A temporary directory named after name, the test CA and certificates,
 * the contexts; false (after a message) when something is missing. */
bool harness_setup(const char *name);
void harness_teardown(void);

#endif
