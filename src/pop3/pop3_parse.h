/*
 * POP3 command-line parser (RFC 1939 with RFC 2449 CAPA and its 255-octet
 * command lines, RFC 2595 STLS, RFC 5034 AUTH). Pure functions over one
 * command line (CRLF already removed); every result is either a parsed
 * command or a ready-to-send "-ERR ..." reply.
 */
#ifndef TEGAMI_POP3_PARSE_H
#define TEGAMI_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* RFC 2449 4: a command line is at most 255 octets with its CRLF. */
#define POP3_COMMAND_LINE_MAX 255
/* RFC 5034 4: a SASL continuation line may be longer; bounded here. */
#define POP3_SASL_LINE_MAX 8192

enum pop3_verb {
	POP3_VERB_UNKNOWN = 0,
	POP3_VERB_USER, POP3_VERB_PASS, POP3_VERB_AUTH, POP3_VERB_STLS,
	POP3_VERB_CAPA, POP3_VERB_STAT, POP3_VERB_LIST, POP3_VERB_UIDL,
	POP3_VERB_RETR, POP3_VERB_TOP, POP3_VERB_DELE, POP3_VERB_RSET,
	POP3_VERB_NOOP, POP3_VERB_QUIT, POP3_VERB_APOP,
};

struct pop3_command {
	enum pop3_verb verb;
	/*
	 * Text arguments, pointing into the caller's line (not
	 * NUL-terminated):
	 *  USER: arg = the name (everything after "USER ", non-empty, no
	 *        space allowed);
	 *  PASS: arg = everything after "PASS " up to the end of the line,
	 *        spaces included (RFC 1939 7 allows them; may be empty);
	 *  AUTH: arg = the mechanism (may be absent: arg_len 0, meaning
	 *        "list the mechanisms" as some clients send it), arg2 = the
	 *        optional initial response ("=" included as sent);
	 *  APOP: arg = name, arg2 = digest (recognised only so that the
	 *        session can refuse it clearly).
	 */
	const char *arg;
	size_t arg_len;
	const char *arg2;
	size_t arg2_len;
	/*
	 * Numbers: LIST and UIDL have has_msg 0 or 1; RETR, DELE and TOP
	 * always have has_msg 1. msg is 1..UINT32_MAX (never 0). TOP's
	 * second argument is lines, 0..UINT32_MAX.
	 */
	int has_msg;
	uint32_t msg;
	uint32_t lines;
};

/*
 * Parses one command line of len bytes (no CRLF). The keyword is matched
 * case-insensitively (RFC 1939 3) and separated from its arguments by
 * exactly one space; arguments are separated by single spaces (except
 * PASS, whose argument is the rest of the line). Returns NULL and fills
 * *cmd_r, or the error reply (static storage, without CRLF), for example:
 *  - a NUL byte or other control character anywhere (except in PASS,
 *    where only NUL, CR and LF are refused): "-ERR Invalid character";
 *  - a line of more than POP3_COMMAND_LINE_MAX - 2 octets (253 and its
 *    CRLF make the 255 that RFC 2449 allows): "-ERR Line too long";
 *  - an unknown keyword: "-ERR Unknown command";
 *  - missing, surplus or malformed arguments, such as "RETR", "RETR 0",
 *    "RETR -1", "RETR 4294967296", "TOP 1 -1", "LIST 1 2", "STAT x",
 *    "USER" or "USER a b": "-ERR Syntax error ..." naming what is wanted.
 * Numbers are plain decimal digits ("+1", "1.0", " 1" and overflow are
 * refused). The caller checks the state (PASS without USER and such).
 */
const char *pop3_parse_command(const char *line, size_t len,
    struct pop3_command *cmd_r);

/* The verb's canonical upper-case keyword ("RETR"), "?" for unknown. */
const char *pop3_verb_name(enum pop3_verb verb);

/*
 * Writes the lines of a multi-line response's body (RETR, TOP) from a
 * message file as stored: tegami stores CRLF, Dovecot and other tools LF.
 * Each LF not preceded by CR becomes CR LF, every other byte passes as it
 * is (the same rule as maildir_crlf_size, so LIST sizes match what RETR
 * sends); then RFC 1939 3 byte-stuffing: a line that starts with "." gets
 * one more ".". Streaming: it may be called with any split
 * of the input; st carries the state between calls. out must hold 2 *
 * len + 2 bytes (worst case: every byte a dot at a line start). Returns
 * the bytes written. See also pop3_stuff_end.
 */
struct pop3_stuff {
	int at_line_start;	/* the next byte starts a line */
	int last_cr;		/* the previous byte was CR */
	/* TOP: -1 for the whole message; otherwise the count of body lines
	 * still to send after the header section has ended. */
	int64_t body_lines_left;
	int in_body;		/* past the empty line ending the headers */
	int header_line_empty;	/* the current header line is empty so far */
	int done;		/* TOP: enough lines were written */
};
void pop3_stuff_init(struct pop3_stuff *st, int64_t top_body_lines);
size_t pop3_stuff(struct pop3_stuff *st, const char *in, size_t len,
    char *out);
/*
 * Finishes the body: when the last byte written was not the LF of a CR LF
 * (a message without a final line end), writes CR LF so that the
 * terminating ".\r\n" stands on its own line; then writes ".\r\n". out must
 * hold 5 bytes. Returns the bytes written.
 */
size_t pop3_stuff_end(struct pop3_stuff *st, char *out);

#endif
