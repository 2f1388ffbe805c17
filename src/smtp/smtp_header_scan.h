/*
 * Finds where a message's header section ends (RFC 5322 2.1, 2.2) while
 * the message streams past, and notes whether it has the fields that
 * submission must add when missing: Message-ID and Date (RFC 6409 8.2,
 * 8.3). The bytes are the decoded message (CR LF line ends, no dot
 * stuffing), fed in pieces of any size; nothing is copied or buffered.
 */
#ifndef TEGAMI_SMTP_HEADER_SCAN_H
#define TEGAMI_SMTP_HEADER_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_HEADER_NAME_MAX 32	/* longer names are kept only as "long" */

struct smtp_header_scan {
	/* Results. */
	bool ended;		/* the header section is over */
	bool has_message_id;	/* a "Message-ID:" field was seen */
	bool has_date;		/* a "Date:" field was seen */
	bool at_line_start;	/* the bytes so far end with LF (or none) */

	/* Private state. */
	int state;
	size_t name_len;
	char name[SMTP_HEADER_NAME_MAX];
	bool any_line;
};

void smtp_header_scan_init(struct smtp_header_scan *hs);

/*
 * Feeds len bytes. Returns the offset within buf at which the header
 * section ended, when it ended in this piece, or (size_t)-1: the offset
 * is the start of the line that ended it, i.e. of the empty line that
 * separates header and body, or of the first line that is neither a
 * field ("name:" with a name of printable ASCII but ':') nor a
 * continuation (starting with space or tab) of one. A continuation as the
 * very first line also ends it (offset 0). After the end, further calls
 * return (size_t)-1 and change nothing. A line is only judged once its
 * name part is complete (a ':' or a byte that cannot be in a name), so a
 * piece may end anywhere, even between CR and LF.
 * *ended_on_empty_r (may be NULL) says whether the ending line is the
 * empty line (the separator exists) or a non-field line (it does not).
 */
size_t smtp_header_scan_feed(struct smtp_header_scan *hs, const char *buf,
    size_t len, bool *ended_on_empty_r);

/*
 * The fields to insert where the header section ends, for a message from
 * an authenticated user: "Message-ID: <ID@HOST>\r\n" if none was seen and
 * "Date: DATE\r\n" if none was seen (date: util.c rfc5322_date). With
 * lead_crlf, a CR LF comes first (the message ended inside a header line
 * that had no line end); with separator, an empty line comes last (the
 * section ended on a line that is not a field, so the body had no
 * separator). Nothing is written when neither field is missing. Returns
 * the length written (a NUL follows it), or (size_t)-1 when out is too
 * small.
 */
size_t smtp_header_scan_additions(const struct smtp_header_scan *hs,
    const char *id, const char *host, const char *date, bool lead_crlf,
    bool separator, char *out, size_t outsize);

#endif
