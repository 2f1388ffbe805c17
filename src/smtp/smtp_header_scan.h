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
/*
 * RFC 5322 2.1.1: a line is at most 998 characters, so a name part that
 * reaches SMTP_HEADER_LINE_MAX bytes with no ':' can no longer be a field;
 * the line is judged "not a field" at that byte. This bounds
 * pending_line_len.
 */
#define SMTP_HEADER_LINE_MAX 998
/* The most smtp_header_scan_additions() writes, without the NUL. */
#define SMTP_HEADER_ADDITIONS_MAX(id_len, host_len, date_len)		\
	((id_len) + (host_len) + (date_len) + 29)

struct smtp_header_scan {
	/* Results. */
	bool ended;		/* the header section is over */
	bool has_message_id;	/* a "Message-ID:" field was seen */
	bool has_date;		/* a "Date:" field was seen */
	bool at_line_start;	/* the bytes so far end with LF (or none) */
				/* (not updated once ended) */
	bool ended_on_empty;	/* as *ended_on_empty_r, kept for finish */
	bool ended_in_previous_piece; /* see "Split lines" below */
	size_t pending_line_len; /* see "Split lines" below */

	/* Private state. */
	int state;
	size_t name_len;
	char name[SMTP_HEADER_NAME_MAX];
	bool any_line;
};

void smtp_header_scan_init(struct smtp_header_scan *hs);

/*
 * Split lines. Whether a line ends the section is only known at its ':'
 * or at the first byte that cannot be in a name, which may come pieces
 * after the line started. The contract that lets a caller insert at the
 * right place anyway:
 *
 * - After every call that leaves the section open, pending_line_len is
 *   the number of bytes at the end of all bytes fed so far that belong to
 *   the line not yet judged: 0 at a line start or once the line is a field or a
 *   continuation, else its name part so far (or 1 for a CR at a line
 *   start). It is always < SMTP_HEADER_LINE_MAX. A caller keeps these
 *   bytes unwritten (it may write everything before them) until the next
 *   call.
 * - When feed returns an offset, the insertion point is offset -
 *   pending_line_len bytes from the start of buf. If the ending line
 *   started in this piece, pending_line_len is 0 and the offset is that
 *   line's start; if it started in an earlier piece, the return is 0,
 *   ended_in_previous_piece is set and pending_line_len is how many of
 *   its bytes came in earlier pieces: exactly the bytes the caller held
 *   back after the previous call.
 * - The result (where the section ends, as an offset from the start of
 *   the message, and every flag) does not depend on how the bytes were
 *   split.
 *
 * So a caller streaming the message to disk: feeds each piece while
 * !ended and writes all but the last pending_line_len bytes; on an
 * offset, writes up to the insertion point, then the additions (separator
 * = !ended_on_empty), then the rest; at the end of the message calls
 * smtp_header_scan_finish().
 */

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
 * When that line began in an earlier piece, the return is 0 and the line
 * began pending_line_len bytes before buf: see "Split lines" above.
 */
size_t smtp_header_scan_feed(struct smtp_header_scan *hs, const char *buf,
    size_t len, bool *ended_on_empty_r);

/*
 * The end of the message: a line still being judged (a name part without
 * its ':', or a lone CR at a line start) is not a field, so the section
 * ends at its start: ended and ended_in_previous_piece are set,
 * ended_on_empty is false, and the insertion point is pending_line_len
 * bytes before the end of the message (as if an empty piece had been
 * fed). Otherwise nothing changes; if the section has still not ended, the
 * whole message is header and the additions go at its very end, with
 * lead_crlf = !at_line_start and no separator. Changes nothing once ended.
 */
void smtp_header_scan_finish(struct smtp_header_scan *hs);

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
 * Also (size_t)-1 when id or host is not a dot-atom-text (RFC 5322 3.6.4)
 * or date is empty or has a byte other than printable ASCII and SP: a
 * caller's bad value must never break or inject a header line. The length
 * is at most SMTP_HEADER_ADDITIONS_MAX(strlen(id), strlen(host),
 * strlen(date)).
 */
size_t smtp_header_scan_additions(const struct smtp_header_scan *hs,
    const char *id, const char *host, const char *date, bool lead_crlf,
    bool separator, char *out, size_t outsize);

#endif
