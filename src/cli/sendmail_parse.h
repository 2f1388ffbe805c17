/*
 * The pure parts of `tegami sendmail` (docs/sendmail.md): the sendmail(8)
 * command line, RFC 5322 3.4 address lists (recipient arguments and -t),
 * the message from stdin made into CRLF lines (RFC 5322 2.1, 2.3), and its
 * header section: To/Cc/Bcc extracted, Bcc removed (3.6.3), From, Date and
 * Message-ID added when missing (3.6.2, 3.6.1, 3.6.4; RFC 6409 8).
 * No I/O: every function here is unit-tested and fuzzed.
 */
#ifndef TEGAMI_SENDMAIL_PARSE_H
#define TEGAMI_SENDMAIL_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/smtp_address.h"

#define SENDMAIL_LINE_MAX 998	/* RFC 5322 2.1.1: octets, without CRLF */
#define SENDMAIL_NAME_MAX 256	/* octets of a full name (-F, gecos) */
/* An address as the queue holds it: local part (re-quoted), "@", domain. */
#define SENDMAIL_ADDRESS_MAX (2 * SMTP_LOCALPART_MAX + 3 + SMTP_DOMAIN_MAX)

enum sendmail_mode {
	SENDMAIL_MODE_DELIVER = 0,	/* -bm, the default */
	SENDMAIL_MODE_NOOP,		/* -bi, -I: aliases need no rebuild */
};

struct sendmail_options {
	enum sendmail_mode mode;
	bool extract;		/* -t: recipients from To, Cc, Bcc */
	bool ignore_dots;	/* -i, -oi: a "." line is data */
	bool verbose;		/* -v: say the queue id */
	const char *sender;	/* -f or -r (the last one), or NULL */
	const char *full_name;	/* -F (the last one), or NULL */
	char **rcpt_args;	/* malloc'd array; the strings are argv's */
	size_t n_rcpt_args;
};

/*
 * Parses argv[1..argc) as sendmail(8) does with getopt: options may be
 * bundled ("-ti") and their values attached or separate ("-fX", "-f X");
 * arguments that do not start with '-' are recipients wherever they stand,
 * "--" ends the options. Supported: -t, -i, -oi, -f/-r SENDER, -F NAME,
 * -bm, -bi and -I (no-ops), -v. Accepted and ignored, as Postfix does:
 * -B TYPE, -N DSN, -R RET, -V ENVID, -h N, -L LABEL, -X FILE, -O OPT,
 * -A X, -p PROTO, -G, -U, -m, -n and every -oX other than -oi (-oem, -odi,
 * -odb, -oQDIR, -om, ...). Refused: other -b modes, -q, -C, -o without a
 * letter, a full name longer than SENDMAIL_NAME_MAX or with a control
 * character, unknown letters. Returns 0, or -1 with a one-line reason in
 * err (a usage error). *o is reset first; free it with
 * sendmail_options_free, also after an error.
 */
int sendmail_options_parse(int argc, char **argv, struct sendmail_options *o,
    char *err, size_t errsize);
void sendmail_options_free(struct sendmail_options *o);

/* One mailbox of an address list, quoting and comments removed. */
struct sendmail_mailbox {
	char local[SMTP_LOCALPART_MAX + 1];	/* decoded; never empty */
	char domain[SMTP_DOMAIN_MAX + 1];	/* "" when unqualified */
};

struct sendmail_addrs {
	struct sendmail_mailbox *v;	/* malloc'd */
	size_t n, cap;
};

/*
 * Parses an RFC 5322 address-list (3.4) in s[0..len): mailboxes
 * ("a@b.example", "Name <a@b.example>", "\"Q. Name\" <a@b>"), groups
 * ("Team: a@x, b@y;", "undisclosed-recipients:;"), comments (nested,
 * anywhere CFWS may be), quoted local parts, domain literals, folding
 * white space and the obsolete forms still seen: empty list elements,
 * source routes "<@a,@b:u@c>" (dropped), CFWS around dots, unquoted dots
 * in display names. Display names are skipped, not checked. A local part
 * without "@domain" ("root") is returned with an empty domain for the
 * caller to qualify. Appends each mailbox to list; at most max in the
 * list. Returns 0, or -1 with the reason in err and list as it was: bad
 * syntax, a NUL or control byte, a local part over SMTP_LOCALPART_MAX or
 * a domain over SMTP_DOMAIN_MAX octets, a group inside a group, more
 * than max mailboxes.
 */
int sendmail_address_list_parse(const char *s, size_t len, size_t max,
    struct sendmail_addrs *list, char *err, size_t errsize);
void sendmail_addrs_free(struct sendmail_addrs *list);

/*
 * The mailbox as the envelope holds it (smtp_address_format: the local
 * part re-quoted when it is not a dot-atom), qualified with
 * default_domain when it has no domain, and checked with
 * smtp_address_parse_path (UTF-8 allowed). Returns the length, or -1 with
 * the reason in err (not a valid address, or over outsize).
 */
int sendmail_mailbox_format(const struct sendmail_mailbox *mb,
    const char *default_domain, char *out, size_t outsize, char *err,
    size_t errsize);

/*
 * The -f argument as an envelope sender: "" and "<>" are the null sender
 * (out ""), otherwise exactly one mailbox (with or without "<>" or a
 * display name), qualified with default_domain. Returns 0 or -1 with err.
 */
int sendmail_sender_parse(const char *arg, const char *default_domain,
    char *out, size_t outsize, char *err, size_t errsize);

/*
 * For a reader that must stop at the end of a message without reading to
 * EOF: looks at the complete lines (ending in LF) of buf from offset
 * *pos_r, which must be a line start, for a line that is exactly "." (or
 * ".\r"). Returns true with *pos_r at its start, or false with *pos_r at
 * the start of the last incomplete line.
 */
bool sendmail_find_dot_line(const char *buf, size_t len, size_t *pos_r);

/*
 * Makes stdin's bytes into the message: lines end in LF or CR LF and
 * become CR LF; a last line without a line end gets one; a first line
 * "From " (an mbox separator) is dropped; unless ignore_dots, a line
 * that is exactly "." ends the message and the rest is ignored (no dot
 * unstuffing: sendmail's input is not SMTP). Refused, with the line
 * number in err: a NUL byte, a CR not followed by LF, a line over
 * SENDMAIL_LINE_MAX octets, and output over max octets. Returns 0 with
 * *out_r (malloc'd, *len_r octets, every line ending in CR LF) or -1.
 */
int sendmail_normalize(const char *in, size_t len, bool ignore_dots,
    size_t max, char **out_r, size_t *len_r, char *err, size_t errsize);

/*
 * The header section of a normalized message (CR LF lines): it ends at
 * the first empty line, or at the first line that is neither a field
 * ("name:" with a name of printable ASCII but ':') nor a continuation of
 * one (a line starting with SP or HT; as the very first line, it ends the
 * section). head holds the fields but Bcc and Resent-Bcc (RFC 5322
 * 3.6.3), each with its continuation lines; body_offset is where the rest
 * of msg starts (the empty line when separator). With extract, rcpts
 * gets the addresses of To, Cc and Bcc, or of Resent-To, Resent-Cc and
 * Resent-Bcc when the message has any of these (a resent message goes to
 * its new recipients only), in order, at most rcpt_max.
 */
struct sendmail_headers {
	char *head;		/* malloc'd, head_len octets, no NUL */
	size_t head_len;
	size_t body_offset;
	bool separator;
	bool has_from, has_date, has_message_id;
	struct sendmail_addrs rcpts;
};

/* Returns 0, or -1 with err ("To: ...") when extract finds a field that
 * is not an address list or more than rcpt_max addresses. *h is reset
 * first; free it with sendmail_headers_free, also after an error. */
int sendmail_headers_scan(const char *msg, size_t len, bool extract,
    size_t rcpt_max, struct sendmail_headers *h, char *err, size_t errsize);
void sendmail_headers_free(struct sendmail_headers *h);

/*
 * The From: field for a message without one (RFC 5322 3.6.2): "From:
 * ADDRESS" or "From: NAME <ADDRESS>" with CR LF. A name of atext words
 * separated by single spaces is written as it is, another printable
 * ASCII name as a quoted-string, a UTF-8 name RFC 2047 encoded-words ("B", at
 * most 75 octets each, split between characters, one a line). Returns
 * the length, or (size_t)-1: name over SENDMAIL_NAME_MAX, a control byte
 * or bad UTF-8 in name, an empty address or one with a control byte, or
 * outsize too small.
 */
size_t sendmail_format_from(const char *name, const char *address,
    char *out, size_t outsize);

/*
 * The full name in a passwd gecos field: the part before the first ','
 * with '&' standing for the login name capitalised (BSD convention).
 * "" when that is empty or holds a control byte, or over outsize or
 * SENDMAIL_NAME_MAX.
 */
void sendmail_gecos_name(const char *gecos, const char *login, char *out,
    size_t outsize);

/*
 * The new header section: head, then the fields it lacks (from_line as
 * given, "Date: DATE", "Message-ID: MESSAGE_ID"), then an empty line when
 * the message has a body but had no separator. The message is then this
 * plus msg + h->body_offset (msg_len: the length of msg, the message
 * sendmail_headers_scan read). NULL when a value needed would break the
 * header (from_line not one "From:" field ending in CR LF, date not
 * printable ASCII, message_id not "<...>" of printable ASCII without
 * spaces or "<>" inside).
 */
char *sendmail_compose_head(const struct sendmail_headers *h,
    size_t msg_len, const char *from_line, const char *date,
    const char *message_id, size_t *len_r);

#endif
