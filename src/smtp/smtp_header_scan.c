/*
 * The header-section scanner for submission: where the header section ends
 * (RFC 5322 2.1, 2.2, 3.6.8) and whether Message-ID and Date are present
 * (RFC 6409 8.2, 8.3), one byte at a time so that splits do not matter.
 */

#include <string.h>

#include "smtp/smtp_header_scan.h"

enum hs_state {
	HS_LINE_START = 0,	/* nothing of the current line seen */
	HS_LINE_CR,		/* a CR at the line start: empty line or not */
	HS_NAME,		/* name bytes, no ':' yet */
	HS_SKIP,		/* a field or continuation: on to the LF */
	HS_DONE,		/* the section has ended */
};

void
smtp_header_scan_init(struct smtp_header_scan *hs)
{
	memset(hs, 0, sizeof(*hs));
	hs->at_line_start = true;
	hs->state = HS_LINE_START;
}

/* ftext (RFC 5322 3.6.8): printable ASCII except ':'. */
static int
hs_name_byte(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* ASCII only: the C locale's tolower() is not ours to rely on. */
static int
hs_name_is(const struct smtp_header_scan *hs, const char *want)
{
	size_t i, n = strlen(want);
	unsigned char c;

	if (hs->name_len != n)
		return 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)hs->name[i];
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != (unsigned char)want[i])
			return 0;
	}
	return 1;
}

/*
 * Ends the section at the start of the current line, which is
 * pending_line_len bytes before byte i of this piece. Returns the offset
 * to report (see "Split lines" in the header).
 */
static size_t
hs_end(struct smtp_header_scan *hs, size_t i, bool on_empty)
{
	hs->state = HS_DONE;
	hs->ended = true;
	hs->ended_on_empty = on_empty;
	if (hs->pending_line_len <= i) {
		i -= hs->pending_line_len;
		hs->pending_line_len = 0;
		return i;
	}
	hs->pending_line_len -= i;
	hs->ended_in_previous_piece = true;
	return 0;
}

size_t
smtp_header_scan_feed(struct smtp_header_scan *hs, const char *buf,
    size_t len, bool *ended_on_empty_r)
{
	size_t i, off = (size_t)-1;
	unsigned char c;

	for (i = 0; i < len && hs->state != HS_DONE; i++) {
		c = (unsigned char)buf[i];
		switch (hs->state) {
		case HS_LINE_START:
			if (c == '\n') {
				off = hs_end(hs, i, true);
			} else if (c == '\r') {
				hs->state = HS_LINE_CR;
				hs->pending_line_len = 1;
			} else if (c == ' ' || c == '\t') {
				/* a continuation of nothing is no header */
				if (!hs->any_line)
					off = hs_end(hs, i, false);
				else
					hs->state = HS_SKIP;
			} else if (hs_name_byte(c)) {
				hs->name[0] = (char)c;
				hs->name_len = 1;
				hs->pending_line_len = 1;
				hs->state = HS_NAME;
			} else {
				/* an empty name (':'), control or 8-bit */
				off = hs_end(hs, i, false);
			}
			break;
		case HS_LINE_CR:
			/* CR CR, CR x: a bare CR makes no empty line */
			off = hs_end(hs, i, c == '\n');
			break;
		case HS_NAME:
			if (c == ':') {
				if (hs_name_is(hs, "message-id"))
					hs->has_message_id = true;
				else if (hs_name_is(hs, "date"))
					hs->has_date = true;
				hs->any_line = true;
				hs->pending_line_len = 0;
				hs->state = HS_SKIP;
			} else if (!hs_name_byte(c) ||
			    hs->pending_line_len + 1 >= SMTP_HEADER_LINE_MAX) {
				/* "Name :", "Name\r\n", or past any line */
				off = hs_end(hs, i, false);
			} else {
				/* longer names are counted, never matched */
				if (hs->name_len < SMTP_HEADER_NAME_MAX)
					hs->name[hs->name_len] = (char)c;
				hs->name_len++;
				hs->pending_line_len++;
			}
			break;
		case HS_SKIP:
			if (c == '\n')
				hs->state = HS_LINE_START;
			break;
		}
		if (hs->state != HS_DONE)
			hs->at_line_start = c == '\n';
	}
	if (off != (size_t)-1 && ended_on_empty_r != NULL)
		*ended_on_empty_r = hs->ended_on_empty;
	return off;
}

void
smtp_header_scan_finish(struct smtp_header_scan *hs)
{
	/* the end of the message is a byte that cannot be in a name */
	if (hs->state == HS_LINE_CR || hs->state == HS_NAME)
		(void)hs_end(hs, 0, false);
}

/* dot-atom-text (RFC 5322 3.2.3), as msg-id's id-left and id-right. */
static int
hs_dot_atom(const char *s)
{
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";
	unsigned char c;
	int atom_len = 0;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c == '.') {
			if (atom_len == 0)
				return 0;
			atom_len = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(specials, c) != NULL) {
			atom_len = 1;
		} else {
			return 0;
		}
	}
	return atom_len != 0;
}

static int
hs_date_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
			return 0;
	return 1;
}

struct hs_out {
	char *buf;
	size_t len;
	size_t size;
	int overflow;
};

static void
hs_put(struct hs_out *o, const char *s)
{
	size_t n = strlen(s);

	/* keep room for the NUL */
	if (o->overflow || n >= o->size - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

size_t
smtp_header_scan_additions(const struct smtp_header_scan *hs,
    const char *id, const char *host, const char *date, bool lead_crlf,
    bool separator, char *out, size_t outsize)
{
	struct hs_out o = { out, 0, outsize, 0 };

	if (!hs_dot_atom(id) || !hs_dot_atom(host) || !hs_date_ok(date))
		return (size_t)-1;
	if (outsize == 0)
		return (size_t)-1;
	out[0] = '\0';
	if (hs->has_message_id && hs->has_date)
		return 0;
	if (lead_crlf)
		hs_put(&o, "\r\n");
	if (!hs->has_message_id) {
		hs_put(&o, "Message-ID: <");
		hs_put(&o, id);
		hs_put(&o, "@");
		hs_put(&o, host);
		hs_put(&o, ">\r\n");
	}
	if (!hs->has_date) {
		hs_put(&o, "Date: ");
		hs_put(&o, date);
		hs_put(&o, "\r\n");
	}
	if (separator)
		hs_put(&o, "\r\n");
	if (o.overflow) {
		out[0] = '\0';
		return (size_t)-1;
	}
	return o.len;
}
