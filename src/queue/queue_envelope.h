/*
 * The envelope of a queued message, queue/ID.env beside its content
 * queue/ID.msg: who sent it, to whom, and where each recipient stands.
 * The content is written once; the envelope is rewritten atomically (temp
 * file, fsync, rename, fsync of the directory) after every delivery
 * attempt, so after a crash each recipient is in exactly the state the
 * last completed rewrite recorded.
 *
 * Text format, one "key value" a line, every value that may carry
 * arbitrary bytes (addresses, diagnostics) in xtext (RFC 3461 4: bytes
 * outside 33..126 and '+' and '=' as "+XX"), so that no sender, recipient
 * or remote reply can add a line or a field (security-tests.md 8):
 *
 *   version 2
 *   queue-id 0123456789ABCDEF
 *   created 1795820000          (Unix seconds the message was accepted)
 *   sender alice@example.com    (xtext; empty value for the null sender)
 *   smtputf8 no                 (yes: the message needs SMTPUTF8)
 *   body 8bitmime               (7bit | 8bitmime | binarymime)
 *   attempts 3
 *   next-attempt 1795823600     (0: as soon as possible)
 *   warned no                   (yes: the delay warning went out)
 *   auth alice@example.com      (xtext; the submitting user, or absent)
 *   recipient bob@example.net pending
 *   recipient carol@example.net delivered 1795820100 mx.example.net 2.0.0 250+202.0.0+20Ok
 *   recipient dave@example.net failed 1795820100 mx.example.net 5.1.1 550+205.1.1+20No+20such+20user
 *
 * A recipient line is "recipient ADDRESS STATE [TIME REMOTE STATUS
 * DIAGNOSTIC]" with STATE pending | delivered | failed; TIME, REMOTE (host
 * name, xtext, "-" when none), STATUS (an enhanced code, "-" when none)
 * and DIAGNOSTIC (xtext of the last reply or error, "-" when none) are
 * present for delivered and failed. A pending recipient may also carry the
 * last temporary failure: "recipient ADDR pending TIME REMOTE STATUS
 * DIAGNOSTIC". Unknown keys are an error (a newer tegami's file is not
 * half-understood). Version 1 files ("version 1", "queue-id", "sender
 * <ADDR>", "recipient <ADDR>" lines, written by the fronts before this
 * format) are read as all-pending with created taken from the caller.
 */
#ifndef TEGAMI_QUEUE_ENVELOPE_H
#define TEGAMI_QUEUE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QUEUE_ENVELOPE_MAX (16 * 1024 * 1024)	/* bytes of one .env */
#define QUEUE_ADDRESS_MAX 320			/* bytes, decoded */
#define QUEUE_DIAGNOSTIC_MAX 1024		/* bytes, decoded */
#define QUEUE_RECIPIENTS_MAX 10000

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0,
	QUEUE_RCPT_DELIVERED,
	QUEUE_RCPT_FAILED,
};

enum queue_body {
	QUEUE_BODY_7BIT = 0,
	QUEUE_BODY_8BITMIME,
	QUEUE_BODY_BINARYMIME,
};

struct queue_rcpt {
	char *address;			/* decoded; never NULL */
	enum queue_rcpt_state state;
	uint64_t time;			/* of the last attempt; 0 = none */
	char *remote;			/* host that answered, or NULL */
	char status[16];		/* "5.1.1", or "" */
	char *diagnostic;		/* last reply or error, or NULL */
};

struct queue_envelope {
	char queue_id[17];
	uint64_t created;
	char *sender;			/* decoded; "" for <> */
	bool smtputf8;
	enum queue_body body;
	unsigned attempts;
	uint64_t next_attempt;
	bool warned;
	char *auth;			/* submitting user, or NULL */
	struct queue_rcpt *rcpts;
	size_t n_rcpts;
};

/*
 * Parses an envelope (version 2, or version 1 with created_v1 as its
 * creation time). Returns 0, or -1 with "LINE: what" in err: a missing or
 * repeated key, a bad number, bad xtext, a value over its limit, a queue
 * id that is not 16 hex digits, a NUL byte, a line without its LF, more
 * than QUEUE_RECIPIENTS_MAX recipients or no recipient at all.
 * *env is zeroed first and must be freed with queue_envelope_free even
 * after an error.
 */
int queue_envelope_parse(const char *text, size_t len, uint64_t created_v1,
    struct queue_envelope *env, char *err, size_t errsize);

/* The version 2 text of env (malloc'd, not NUL-terminated); NULL when a
 * field is over its limit. */
char *queue_envelope_format(const struct queue_envelope *env, size_t *len_r);

void queue_envelope_free(struct queue_envelope *env);

/* Reads queue_dir/ID.env (bounded by QUEUE_ENVELOPE_MAX; created_v1 from
 * the file's mtime). Returns 0 or -1 with err set (errno kept for I/O). */
int queue_envelope_load(const char *queue_dir, const char *queue_id,
    struct queue_envelope *env, char *err, size_t errsize);

/*
 * Writes queue_dir/ID.env atomically and durably: ID.env.tmp (0600),
 * fsync, rename over ID.env, fsync of queue_dir. Returns 0 or -1 with
 * errno set and err filled.
 */
int queue_envelope_store(const char *queue_dir,
    const struct queue_envelope *env, char *err, size_t errsize);

/* xtext (RFC 3461 4) of len bytes into a malloc'd NUL-terminated string,
 * and back: decode returns the length or -1 (bad "+XX", or over max). */
char *queue_xtext_encode(const char *in, size_t len);
ssize_t queue_xtext_decode(const char *in, size_t len, char *out,
    size_t max);

/* True when every recipient is delivered or failed. */
bool queue_envelope_done(const struct queue_envelope *env);

#endif
