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
 *
 * Details this module decides (the contract above leaves them open):
 * - Line 1 is "version 1" or "version 2"; the other keys may come in any
 *   order, each once (recipient lines repeat, in delivery order). Every
 *   line is "KEY SP VALUE" with exactly one space, no CR, no trailing
 *   space; the null sender is "sender " (an empty value), likewise an
 *   empty auth. auth is the only optional key.
 * - Numbers are decimal digits only: no sign, no leading zero (except
 *   "0"), no overflow (attempts fits unsigned, times uint64_t).
 * - xtext is read as RFC 3461 4 writes it: "+" and two UPPER-case hex
 *   digits (lower case is refused), any other byte 33..126 but "+" and
 *   "=" as itself (also when it need not have been encoded, e.g. "+41");
 *   "+00" (a NUL) is refused in every field. Writing always encodes
 *   exactly the bytes outside 33..126 and "+" and "=", so the output of
 *   queue_envelope_format is canonical.
 * - A REMOTE or DIAGNOSTIC that is exactly "-" is written "+2D" (so that
 *   it does not read back as none); an empty one ("") is written as none
 *   and reads back as NULL. A pending recipient is written in the short
 *   form when time, remote, status and diagnostic are all none.
 * - sender, auth, recipient addresses and REMOTE are bounded by
 *   QUEUE_ADDRESS_MAX, DIAGNOSTIC by QUEUE_DIAGNOSTIC_MAX (decoded); a
 *   recipient address is never empty; STATUS is "class.subject.detail"
 *   (class 2, 4 or 5, subject and detail 1 to 3 digits).
 * - Version 1: queue-id, sender and recipient lines only, each value
 *   "<ADDR>" taken verbatim between the first "<" and the last ">" of the
 *   line (quoted local parts may hold spaces, "<" and ">"); body is read
 *   as 8bitmime (the fronts took 7bit and 8bitmime without recording
 *   which) and smtputf8 as yes when an address has a byte over 127
 *   (the fronts refuse such addresses without SMTPUTF8).
 * - Error line numbers count from 1; a missing key or "no recipient" is
 *   reported at the line after the last one.
 * - queue_envelope_store writes a temp file with a unique name
 *   "ID.env.tmp.RANDOM" (O_EXCL, 0600), so two writers at once never
 *   write into the same file: each renames a complete envelope and the
 *   last rename wins (serialising updates is the caller's job). A crash
 *   may leave "ID.env.tmp.*" files behind; load never reads them and the
 *   queue process may delete them at start.
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
 * field is over its limit. Also NULL for anything parse would refuse (a
 * bad queue id or status, an empty recipient address, zero or more than
 * QUEUE_RECIPIENTS_MAX recipients, an out-of-range enum) and when the
 * text would exceed QUEUE_ENVELOPE_MAX, so that what is stored loads. */
char *queue_envelope_format(const struct queue_envelope *env, size_t *len_r);

void queue_envelope_free(struct queue_envelope *env);

/* Reads queue_dir/ID.env (bounded by QUEUE_ENVELOPE_MAX; created_v1 from
 * the file's mtime). Returns 0 or -1 with err set (errno kept for I/O).
 * The file must be a regular file (O_NOFOLLOW: not a symbolic link) whose
 * queue-id line names queue_id; a bad queue_id, a file over the limit or
 * a parse error sets errno to EINVAL (EFBIG for the size) and err to
 * "LINE: what" for parse errors. */
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
 * and back: decode returns the length or -1 (bad "+XX", or over max).
 * decode writes at most max bytes to out and does not NUL-terminate them
 * (the result may hold any byte, NUL included). */
char *queue_xtext_encode(const char *in, size_t len);
ssize_t queue_xtext_decode(const char *in, size_t len, char *out,
    size_t max);

/* True when every recipient is delivered or failed. */
bool queue_envelope_done(const struct queue_envelope *env);

#endif
