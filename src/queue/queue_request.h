/*
 * The request lines of the queue's two local sockets, parsed without
 * sockets, files or queue state: the control socket of `tegami queue`
 * (queue_control.c, docs/queue.md) and the pickup socket of `tegami
 * sendmail` (queue_pickup.c, docs/sendmail.md; addresses in RFC 3461 4
 * xtext). A refusal comes with the exact reply line the socket sends.
 */
#ifndef TEGAMI_QUEUE_REQUEST_H
#define TEGAMI_QUEUE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_address.h"

/* ---- The control socket ------------------------------------------------ */

#define QUEUE_REQUEST_CONTROL_LINE_MAX 128	/* request bytes, LF included */

enum queue_request_control_cmd {
	QUEUE_REQUEST_FLUSH = 0,	/* "flush" or "flush ID" */
	QUEUE_REQUEST_DELETE,		/* "delete ID" */
	QUEUE_REQUEST_BOUNCE,		/* "bounce ID" */
};

struct queue_request_control {
	enum queue_request_control_cmd cmd;
	const char *name;	/* "flush", "delete", "bounce": static */
	char id[17];		/* a valid queue id, or "" when none given */
};

enum queue_request_result {
	QUEUE_REQUEST_OK = 0,
	QUEUE_REQUEST_REFUSED,	/* a bad command or argument */
	QUEUE_REQUEST_BAD_LINE,	/* too long or with a NUL byte: answered
				 * before anything else, even while the
				 * queue process stops */
};

/*
 * Parses one control request: line[0..len) is the line without its LF
 * (a CR is not taken off: "flush\r" is an unknown command). The forms are
 * "NAME" and "NAME SP ID", NAME one of the commands above in lower case,
 * ID 16 upper-case hex digits (queue_id_valid).
 * Returns QUEUE_REQUEST_OK with *req_r set, else the error line (without
 * LF, starting "error ") in reply, NUL-terminated and cut to replysize:
 * - QUEUE_REQUEST_BAD_LINE when len >= QUEUE_REQUEST_CONTROL_LINE_MAX or
 *   the line holds a NUL byte;
 * - QUEUE_REQUEST_REFUSED for an unknown command, delete or bounce
 *   without an id, or an id of the wrong length or with other
 *   characters (also an empty one, "flush ", or a second space).
 * *req_r is undefined unless OK. Never reads past line + len.
 */
enum queue_request_result queue_request_control_parse(const char *line,
    size_t len, struct queue_request_control *req_r, char *reply,
    size_t replysize);

/* ---- The pickup socket ------------------------------------------------- */

enum queue_request_pickup_verb {
	QUEUE_REQUEST_SENDER = 0,	/* "sender ARG" */
	QUEUE_REQUEST_RECIPIENT,	/* "recipient ARG" */
	QUEUE_REQUEST_SIZE,		/* "size ARG" */
	QUEUE_REQUEST_DATA,		/* "data", exactly */
};

struct queue_request_pickup {
	enum queue_request_pickup_verb verb;
	const char *arg;	/* in the line: all after the first space
				 * (may be empty or hold more spaces); at
				 * line + len for data */
	size_t arg_len;
};

/*
 * Splits one pickup line (without its LF or CR LF, the io layer takes
 * them off) into its verb and argument; the argument is checked by the
 * functions below, after the caller's checks of the session's state
 * (sender given twice, too many recipients) so that those come first.
 * A verb is matched in lower case only; "sender", "recipient" and "size"
 * need the space, "data" takes nothing (not even a space). Returns NULL
 * with *req_r set, or the reply "perm 5.5.1 unknown command".
 */
const char *queue_request_pickup_parse(const char *line, size_t len,
    struct queue_request_pickup *req_r);

/*
 * An address argument: xtext (RFC 3461 4) decoded, then parsed as a whole
 * path "<...>" with UTF-8 allowed, "<>" refused and a domain required.
 * Returns NULL with *addr_r set and its smtp_address_format form in
 * formatted (fsize bytes; QUEUE_ADDRESS_MAX + 1 is enough for every
 * address accepted), or a static reply:
 * - "perm 5.1.3 bad address encoding or length": empty, bad xtext (a byte
 *   outside 33..126, '=', a '+' not followed by two upper-case hex
 *   digits), or over SMTP_PATH_MAX - 2 octets decoded;
 * - "perm 5.1.3 bad address syntax": not a path (a NUL byte decoded from
 *   "+00" included), no domain, or the formatted form does not fit.
 */
const char *queue_request_pickup_address(const char *arg, size_t len,
    struct smtp_address *addr_r, char *formatted, size_t fsize);

/*
 * The argument of "sender": "<>" is the null sender (formatted is ""),
 * anything else as queue_request_pickup_address. Returns NULL or the
 * reply of queue_request_pickup_address.
 */
const char *queue_request_pickup_sender(const char *arg, size_t len,
    char *formatted, size_t fsize);

/*
 * The argument of "size": 1 to 19 decimal digits without a leading zero
 * (so that it cannot overflow), at most limit. Returns NULL with *size_r
 * set, or "perm 5.5.4 bad size", or "perm 5.3.4 message size exceeds
 * message_size_limit".
 */
const char *queue_request_pickup_size(const char *arg, size_t len,
    uint64_t limit, uint64_t *size_r);

#endif
