/*
 * The SMTP client's reply parser (RFC 5321 4.2): multi-line replies,
 * their code and enhanced status code (RFC 3463), and the EHLO keywords
 * (RFC 5321 4.1.1.1, RFC 1870 SIZE, RFC 2920, RFC 6152, RFC 6531, RFC 3030,
 * RFC 3207, RFC 4954). The peer is untrusted (security-tests.md 42):
 * everything is bounded, malformed replies are reported, never guessed at.
 */
#ifndef TEGAMI_SMTP_REPLY_H
#define TEGAMI_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.5 says 512 with CR LF; real servers send longer lines,
 * so more is read, and a line longer than this is malformed. */
#define SMTP_REPLY_LINE_MAX 2048
#define SMTP_REPLY_LINES_MAX 128	/* lines in one reply */
#define SMTP_REPLY_TEXT_MAX 4096	/* text kept per reply, for logs/DSNs */

struct smtp_reply {
	int code;			/* 200..599 */
	char status[16];		/* "5.1.1" when the peer gave one, else "" */
	/* The text of every line (without code, separator and status), each
	 * line ending in '\n'; cut at SMTP_REPLY_TEXT_MAX (truncated set).
	 * Always NUL-terminated: text_len <= SMTP_REPLY_TEXT_MAX - 1. The
	 * line that was cut keeps what fit but no '\n', so a consumer that
	 * only reads '\n'-ended lines never sees half a line; lines after
	 * the cut are counted in n_lines but not kept. A status equal to the
	 * first line's is also taken off the later lines (RFC 2034 repeats
	 * it on every line); a different one stays in the text. */
	char text[SMTP_REPLY_TEXT_MAX];
	size_t text_len;
	size_t n_lines;
	bool truncated;
};

enum smtp_reply_result {
	SMTP_REPLY_MORE = 0,	/* a continuation line: feed the next */
	SMTP_REPLY_DONE,	/* *reply is complete */
	SMTP_REPLY_BAD,		/* malformed: abort the connection */
};

struct smtp_reply_parser {
	struct smtp_reply reply;	/* being assembled */
	bool in_reply;
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);

/*
 * Feeds one reply line without its CR LF (the caller splits lines and
 * enforces SMTP_REPLY_LINE_MAX; a longer line is passed as BAD by the
 * caller). A line is "DDD" or "DDD" followed by ' ' (last line) or '-'
 * (more follow) and text; the code must be 2xx..5xx and the same on every
 * line of a reply. On DONE, *reply_r holds the reply and the parser is
 * ready for the next. BAD for: a bad code, a code that changes within a
 * reply, a missing separator, more than SMTP_REPLY_LINES_MAX lines, a NUL
 * byte, or len > SMTP_REPLY_LINE_MAX. An enhanced status code is taken
 * from the first line when it is "class.subject.detail" (class 2, 4 or 5
 * matching the reply code's first digit, subject and detail 0..999)
 * followed by a space or the end.
 *
 * Also BAD: a CR or LF inside the line (the line end was taken off, so
 * either is a bare line break that could fake lines in the text and the
 * logs, security-tests.md 42). Other bytes, 8-bit included, are kept.
 * 1..3 digits are accepted for subject and detail (RFC 3463 grammar);
 * the status is stored as sent. After DONE or BAD the parser starts a
 * new reply with the next line; *reply_r is written only on DONE and may
 * be &p->reply.
 */
enum smtp_reply_result smtp_reply_feed(struct smtp_reply_parser *p,
    const char *line, size_t len, struct smtp_reply *reply_r);

/* What an EHLO reply offers. */
struct smtp_ehlo {
	bool pipelining, eightbitmime, smtputf8, chunking, starttls;
	bool enhancedstatuscodes, dsn;
	bool has_size;			/* SIZE keyword present */
	uint64_t size;			/* its limit; 0 = none given */
	bool auth_plain, auth_login;	/* AUTH mechanisms we can use */
};

/*
 * The keywords of a 250 EHLO reply (every line after the first, case-
 * insensitive, RFC 5321 4.1.1.1 ehlo-line syntax); unknown keywords and
 * malformed lines are ignored, a SIZE value that is not a number up to
 * 2^63 counts as no limit given.
 *
 * In detail: a reply whose code is not 250 offers nothing; a cut last
 * line (no '\n', see struct smtp_reply) is ignored; words are separated
 * by runs of SP or HTAB; the keyword must be ALPHA/DIGIT *(ALPHA/DIGIT/
 * "-") and every parameter %d33-126, else the line is ignored; the old
 * "AUTH=MECH ..." form counts as "AUTH MECH ..."; SIZE's value is one
 * decimal number in 0..2^63 inclusive (leading zeros allowed), anything
 * else (no value, two values, a sign, more) leaves size 0 with has_size
 * set; of several SIZE lines the last counts; AUTH lines add up.
 */
void smtp_ehlo_parse(const struct smtp_reply *reply, struct smtp_ehlo *ehlo);

/*
 * One line for logs and DSNs: "CODE STATUS text text ..." with the lines
 * joined by spaces, bytes outside printable ASCII as '?', at most outsize
 * - 1 bytes. Returns out.
 *
 * STATUS and its space are left out when there is none; lines with no
 * text add nothing (no empty words); out is always NUL-terminated when
 * outsize > 0 and untouched when outsize is 0. Every byte of the status
 * and text goes through the same escaping, tabs included.
 */
char *smtp_reply_summary(const struct smtp_reply *reply, char *out,
    size_t outsize);

#endif
