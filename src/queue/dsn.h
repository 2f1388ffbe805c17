/*
 * Delivery status notifications (RFC 3464, RFC 3462/6522 multipart/report,
 * RFC 6533 for internationalised messages): the bounce a sender gets when
 * a message cannot be delivered, and the warning when it is delayed.
 * Pure formatting: the caller supplies the facts and the original
 * message's header section, and queues the result.
 */
#ifndef TEGAMI_DSN_H
#define TEGAMI_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSN_HEADERS_MAX (64 * 1024)	/* original header bytes returned */

enum dsn_action {
	DSN_ACTION_FAILED,	/* Action: failed (a bounce) */
	DSN_ACTION_DELAYED,	/* Action: delayed (a warning) */
};

struct dsn_recipient {
	const char *address;		/* Final-Recipient (rfc822 or utf-8) */
	enum dsn_action action;
	const char *status;		/* "5.1.1"; "" -> 5.0.0 / 4.0.0 */
	const char *remote_mta;		/* Remote-MTA dns; NULL: none */
	const char *diagnostic;		/* Diagnostic-Code smtp; NULL: none */
	uint64_t last_attempt;		/* Last-Attempt-Date; 0: none */
};

struct dsn_report {
	const char *reporting_mta;	/* our hostname */
	const char *queue_id;		/* X-Postfix-Queue-ID-like trace */
	uint64_t arrival;		/* Arrival-Date, Unix seconds */
	uint64_t now;			/* Date: of the report */
	const char *sender;		/* the envelope sender: To: */
	const char *boundary_seed;	/* unique text for the MIME boundary */
	bool delay_warning;		/* delayed, not failed */
	unsigned warn_hours;		/* for a warning: "for N hours" */
	unsigned give_up_days;		/* for a warning: "until N days" */
	const struct dsn_recipient *rcpts;
	size_t n_rcpts;
};

/*
 * The whole notification as an RFC 5322 message, CR LF line ends: From:
 * "Mail Delivery System <MAILER-DAEMON@reporting_mta>", To: <sender>,
 * Subject "Undelivered Mail Returned to Sender" (or "Delayed Mail (still
 * being retried)"), Auto-Submitted: auto-replied (RFC 3834), Date,
 * Message-ID, MIME-Version, Content-Type multipart/report;
 * report-type=delivery-status; then (1) a text/plain explanation a person
 * can read, naming each recipient and the remote server's reply; (2)
 * message/delivery-status (message/global-delivery-status when an
 * address or the headers are not ASCII) with per-message and
 * per-recipient fields; (3) text/rfc822-headers (message/global-headers
 * when not ASCII) with the original header section: orig is the
 * original message (or its start), its header section (up to the first
 * empty line, at most DSN_HEADERS_MAX bytes, cut at a line end) is
 * copied with line ends normalised to CR LF. No line of the result is
 * longer than 998 bytes (long diagnostics are folded or cut), and no
 * caller value can add a header or break the MIME structure (CR, LF and
 * other control bytes in values become spaces). Returns a malloc'd
 * buffer (*len_r bytes), or NULL when the report has no recipients.
 *
 * In detail (additions to the contract above):
 * - NULL also when sender is NULL or empty: the null sender <> never
 *   gets a notification (RFC 3464 2, RFC 5321 4.5.5).
 * - The buffer is NUL-terminated after its *len_r bytes.
 * - arrival 0: no Arrival-Date (and no Will-Retry-Until); now 0: the
 *   current time; a time past the year 9999 leaves its field out.
 * - Will-Retry-Until (delayed recipients) is arrival + give_up_days.
 * - A status that is not RFC 3463 syntax with class 4 or 5 (4 only for
 *   a delay) is replaced by the default. A NULL address is an empty
 *   one; a NULL or empty (after cleaning) remote_mta or diagnostic
 *   leaves its field out.
 * - In every caller value, control bytes become spaces, runs of spaces
 *   one space, and ends are trimmed; non-ASCII stays only in the global
 *   form and only as well-formed UTF-8, else it becomes '?'. The global
 *   form (types above, utf-8 text, 8bit transfer encoding) is used when
 *   the sender, a recipient or the copied headers hold a byte over 127;
 *   a non-ASCII recipient is "utf-8; ADDR" (RFC 6533 3), others "rfc822".
 * - A header section with no line end within DSN_HEADERS_MAX bytes is
 *   left out (the third part is then empty); a last line without line
 *   end (orig is only the start of a message) is kept. In the copied
 *   lines, control bytes other than TAB become spaces and lines over 998
 *   bytes are folded before white space, or cut with a space put first.
 * - The MIME boundary is "=_tegami_" and boundary_seed (random when NULL
 *   or empty), with a counter added while it occurs anywhere else in the
 *   result.
 */
char *dsn_format(const struct dsn_report *r, const char *orig,
    size_t orig_len, size_t *len_r);

#endif
