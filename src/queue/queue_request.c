/*
 * The request lines of the queue's control and pickup sockets
 * (queue_request.h): pure functions over bytes, so that they are
 * unit-tested and fuzzed apart from the sockets and the queue's state.
 */
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "queue/queue_envelope.h"
#include "queue/queue_request.h"

/* ---- The control socket ------------------------------------------------ */

enum control_arg {
	CONTROL_ARG_NONE,
	CONTROL_ARG_OPTIONAL,
	CONTROL_ARG_REQUIRED,
};

static const struct control_cmd {
	const char *name;
	enum queue_request_control_cmd cmd;
	enum control_arg arg;
} control_cmds[] = {
	{ "flush", QUEUE_REQUEST_FLUSH, CONTROL_ARG_OPTIONAL },
	{ "delete", QUEUE_REQUEST_DELETE, CONTROL_ARG_REQUIRED },
	{ "bounce", QUEUE_REQUEST_BOUNCE, CONTROL_ARG_REQUIRED },
};

#define CONTROL_NCMDS (sizeof(control_cmds) / sizeof(control_cmds[0]))

enum queue_request_result
queue_request_control_parse(const char *line, size_t len,
    struct queue_request_control *req_r, char *reply, size_t replysize)
{
	const char *sp;
	size_t nlen, i;
	const struct control_cmd *c = NULL;

	if (len >= QUEUE_REQUEST_CONTROL_LINE_MAX ||
	    memchr(line, '\0', len) != NULL) {
		snprintf(reply, replysize, "error request line too long or "
		    "with a NUL byte");
		return QUEUE_REQUEST_BAD_LINE;
	}
	sp = memchr(line, ' ', len);
	nlen = sp != NULL ? (size_t)(sp - line) : len;
	for (i = 0; i < CONTROL_NCMDS; i++)
		if (strlen(control_cmds[i].name) == nlen &&
		    memcmp(control_cmds[i].name, line, nlen) == 0)
			c = &control_cmds[i];
	if (c == NULL) {
		snprintf(reply, replysize, "error unknown command (flush [ID], "
		    "delete ID, bounce ID)");
		return QUEUE_REQUEST_REFUSED;
	}
	req_r->cmd = c->cmd;
	req_r->name = c->name;
	req_r->id[0] = '\0';
	if (sp == NULL) {
		if (c->arg == CONTROL_ARG_REQUIRED) {
			snprintf(reply, replysize, "error %s needs a queue id",
			    c->name);
			return QUEUE_REQUEST_REFUSED;
		}
		return QUEUE_REQUEST_OK;
	}
	if (c->arg == CONTROL_ARG_NONE) {
		snprintf(reply, replysize, "error %s takes no argument",
		    c->name);
		return QUEUE_REQUEST_REFUSED;
	}
	/* Checked before the copy: queue_id_valid reads 17 bytes. */
	if (len - nlen - 1 != 16) {
		snprintf(reply, replysize, "error bad queue id (16 upper-case "
		    "hex digits)");
		return QUEUE_REQUEST_REFUSED;
	}
	memcpy(req_r->id, sp + 1, 16);
	req_r->id[16] = '\0';
	if (!queue_id_valid(req_r->id)) {
		snprintf(reply, replysize, "error bad queue id (16 upper-case "
		    "hex digits)");
		return QUEUE_REQUEST_REFUSED;
	}
	return QUEUE_REQUEST_OK;
}

/* ---- The pickup socket ------------------------------------------------- */

const char *
queue_request_pickup_parse(const char *line, size_t len,
    struct queue_request_pickup *req_r)
{
	const char *sp = memchr(line, ' ', len);
	size_t klen = sp != NULL ? (size_t)(sp - line) : len;

	req_r->arg = sp != NULL ? sp + 1 : line + len;
	req_r->arg_len = len - (size_t)(req_r->arg - line);
	if (klen == 6 && memcmp(line, "sender", 6) == 0 && sp != NULL)
		req_r->verb = QUEUE_REQUEST_SENDER;
	else if (klen == 9 && memcmp(line, "recipient", 9) == 0 && sp != NULL)
		req_r->verb = QUEUE_REQUEST_RECIPIENT;
	else if (klen == 4 && memcmp(line, "size", 4) == 0 && sp != NULL)
		req_r->verb = QUEUE_REQUEST_SIZE;
	else if (len == 4 && memcmp(line, "data", 4) == 0)
		req_r->verb = QUEUE_REQUEST_DATA;
	else
		return "perm 5.5.1 unknown command";
	return NULL;
}

const char *
queue_request_pickup_address(const char *arg, size_t len,
    struct smtp_address *addr_r, char *formatted, size_t fsize)
{
	char dec[QUEUE_ADDRESS_MAX + 2];
	ssize_t n;
	size_t used;

	n = queue_xtext_decode(arg, len, dec + 1, QUEUE_ADDRESS_MAX);
	if (n <= 0 || (size_t)n > SMTP_PATH_MAX - 2)
		return "perm 5.1.3 bad address encoding or length";
	dec[0] = '<';
	dec[n + 1] = '>';
	if (smtp_address_parse_path(dec, (size_t)n + 2, false, true, addr_r,
	    &used) != SMTP_ADDRESS_OK || used != (size_t)n + 2 ||
	    addr_r->domain[0] == '\0' ||
	    smtp_address_format(addr_r, formatted, fsize) == (size_t)-1)
		return "perm 5.1.3 bad address syntax";
	return NULL;
}

const char *
queue_request_pickup_sender(const char *arg, size_t len, char *formatted,
    size_t fsize)
{
	struct smtp_address addr;

	if (len == 2 && memcmp(arg, "<>", 2) == 0) {
		formatted[0] = '\0';
		return NULL;
	}
	return queue_request_pickup_address(arg, len, &addr, formatted,
	    fsize);
}

const char *
queue_request_pickup_size(const char *arg, size_t len, uint64_t limit,
    uint64_t *size_r)
{
	uint64_t v = 0;
	size_t i;

	/* 19 digits stay below 2^64: the sum cannot wrap. */
	if (len == 0 || len > 19 || (len > 1 && arg[0] == '0'))
		return "perm 5.5.4 bad size";
	for (i = 0; i < len; i++) {
		if (arg[i] < '0' || arg[i] > '9')
			return "perm 5.5.4 bad size";
		v = v * 10 + (uint64_t)(arg[i] - '0');
	}
	if (v > limit)
		return "perm 5.3.4 message size exceeds message_size_limit";
	*size_r = v;
	return NULL;
}
