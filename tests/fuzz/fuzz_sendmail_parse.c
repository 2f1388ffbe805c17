/*
 * libFuzzer target for the pure parts of `tegami sendmail`
 * (sendmail_parse.h): RFC 5322 3.4 address lists, stdin made into CRLF
 * lines (2.1, 2.3), the header section with To/Cc/Bcc and the fields
 * added (3.6), the From: field (RFC 2047) and the sendmail(8) command
 * line. The first input byte picks the part; every part checks its
 * invariants and aborts when one breaks.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/sendmail_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ADDRS 64
#define MAX_MSG (64 * 1024)

static void
check(bool ok)
{
	if (!ok)
		abort();
}

/* Every mailbox is within bounds, and its formatted form parses back to
 * one mailbox that formats the same. */
static void
fuzz_address_list(const char *s, size_t len)
{
	struct sendmail_addrs l = { 0 }, again = { 0 };
	char out[SENDMAIL_ADDRESS_MAX + 1], out2[SENDMAIL_ADDRESS_MAX + 1];
	char err[256];
	size_t i;
	int n;

	if (sendmail_address_list_parse(s, len, MAX_ADDRS, &l, err,
	    sizeof(err)) < 0) {
		check(l.n == 0 && err[0] != '\0');
		sendmail_addrs_free(&l);
		return;
	}
	check(l.n <= MAX_ADDRS);
	for (i = 0; i < l.n; i++) {
		check(l.v[i].local[0] != '\0');
		check(strlen(l.v[i].local) <= SMTP_LOCALPART_MAX);
		check(strlen(l.v[i].domain) <= SMTP_DOMAIN_MAX);
		n = sendmail_mailbox_format(&l.v[i], "fuzz.example", out,
		    sizeof(out), err, sizeof(err));
		if (n < 0)
			continue;
		check((size_t)n == strlen(out) && strchr(out, '@') != NULL);
		check(sendmail_address_list_parse(out, (size_t)n, 1, &again,
		    err, sizeof(err)) == 0 && again.n == 1);
		check(sendmail_mailbox_format(&again.v[0], "other.example",
		    out2, sizeof(out2), err, sizeof(err)) == n);
		check(strcmp(out, out2) == 0);
		sendmail_addrs_free(&again);
	}
	sendmail_addrs_free(&l);
}

/* Each line ends in CR LF, has at most SENDMAIL_LINE_MAX octets, no
 * NUL and no other CR or LF. */
static void
check_lines(const char *m, size_t n)
{
	size_t i, line = 0;

	for (i = 0; i < n; i++) {
		check(m[i] != '\0');
		if (m[i] == '\r') {
			check(i + 1 < n && m[i + 1] == '\n');
			i++;
			line = 0;
			continue;
		}
		check(m[i] != '\n');
		check(++line <= SENDMAIL_LINE_MAX);
	}
	check(line == 0);
}

static bool
has_field(const char *head, size_t n, const char *name)
{
	size_t k = strlen(name), i = 0;

	while (i < n) {
		const char *lf = memchr(head + i, '\n', n - i);

		if (n - i > k && strncasecmp(head + i, name, k) == 0 &&
		    head[i + k] == ':')
			return true;
		if (lf == NULL)
			break;
		i = (size_t)(lf - head) + 1;
	}
	return false;
}

static void
fuzz_message(const char *s, size_t len, unsigned flags)
{
	struct sendmail_headers h, h2;
	char *msg, *head, *whole, err[256];
	size_t n, hl, wl;
	bool dots = flags & 1, extract = flags & 2;
	size_t max = flags & 4 ? len : 2 * len + 2;

	if (sendmail_normalize(s, len, dots, max, &msg, &n, err,
	    sizeof(err)) < 0) {
		check(err[0] != '\0');
		return;
	}
	check(n <= max);
	check_lines(msg, n);
	/* normalizing again changes nothing (no From_ line is left first
	 * unless one was second, and no "." line with -i) */
	if (dots && !(n >= 5 && memcmp(msg, "From ", 5) == 0)) {
		char *again;
		size_t an;

		check(sendmail_normalize(msg, n, true, n, &again, &an, err,
		    sizeof(err)) == 0);
		check(an == n && memcmp(again, msg, n) == 0);
		free(again);
	}
	if (sendmail_headers_scan(msg, n, extract, MAX_ADDRS, &h, err,
	    sizeof(err)) < 0) {
		check(extract && err[0] != '\0');
		sendmail_headers_free(&h);
		free(msg);
		return;
	}
	check(h.body_offset <= n && h.head_len <= h.body_offset);
	check(!h.separator || (n - h.body_offset >= 2 &&
	    memcmp(msg + h.body_offset, "\r\n", 2) == 0));
	check(extract || h.rcpts.n == 0);
	check(!has_field(h.head, h.head_len, "bcc") &&
	    !has_field(h.head, h.head_len, "resent-bcc"));
	head = sendmail_compose_head(&h, n, "From: f@fuzz.example\r\n",
	    "Mon, 01 Jan 2024 00:00:00 +0000", "<id@fuzz.example>", &hl);
	check(head != NULL);
	wl = hl + n - h.body_offset;
	whole = malloc(wl + 1);
	check(whole != NULL);
	memcpy(whole, head, hl);
	memcpy(whole + hl, msg + h.body_offset, n - h.body_offset);
	check_lines(whole, wl);
	/* the composed message has the three fields and keeps its header:
	 * nothing more is dropped or added by a second pass */
	check(sendmail_headers_scan(whole, wl, false, 0, &h2, err,
	    sizeof(err)) == 0);
	check(h2.has_from && h2.has_date && h2.has_message_id);
	check(h2.head_len == hl - (h.separator || h.body_offset == n ? 0 : 2));
	check(memcmp(h2.head, whole, h2.head_len) == 0);
	sendmail_headers_free(&h2);
	free(whole);
	free(head);
	sendmail_headers_free(&h);
	free(msg);
}

/* The field is one line or folded ones, and its address part parses
 * back to the address. */
static void
fuzz_from(const char *s, size_t len)
{
	char name[SENDMAIL_NAME_MAX + 2], out[4096], err[256];
	char addr[SENDMAIL_ADDRESS_MAX + 1];
	struct sendmail_addrs l = { 0 };
	size_t n;

	if (len > SENDMAIL_NAME_MAX + 1)
		len = SENDMAIL_NAME_MAX + 1;
	memcpy(name, s, len);
	name[len] = '\0';
	n = sendmail_format_from(name, "\"q u\"@fuzz.example", out,
	    sizeof(out));
	if (n == (size_t)-1)
		return;
	check(n == strlen(out) && strncmp(out, "From: ", 6) == 0);
	check_lines(out, n);
	check(sendmail_address_list_parse(out + 5, n - 5, 2, &l, err,
	    sizeof(err)) == 0 && l.n == 1);
	check(sendmail_mailbox_format(&l.v[0], "x.example", addr,
	    sizeof(addr), err, sizeof(err)) > 0);
	check(strcmp(addr, "\"q u\"@fuzz.example") == 0);
	sendmail_addrs_free(&l);
}

/* NUL-separated arguments. */
static void
fuzz_options(const char *s, size_t len)
{
	struct sendmail_options o;
	char *copy = malloc(len + 1), *argv[64], err[256];
	size_t i, start = 0;
	int argc = 0;

	check(copy != NULL);
	memcpy(copy, s, len);
	copy[len] = '\0';
	argv[argc++] = (char *)"sendmail";
	for (i = 0; i <= len && argc < 63; i++)
		if (copy[i] == '\0') {
			argv[argc++] = copy + start;
			start = i + 1;
		}
	argv[argc] = NULL;
	if (sendmail_options_parse(argc, argv, &o, err, sizeof(err)) == 0) {
		check(o.n_rcpt_args < (size_t)argc);
		for (i = 0; i < o.n_rcpt_args; i++)
			check(o.rcpt_args[i] >= copy &&
			    o.rcpt_args[i] <= copy + len);
		check(o.full_name == NULL ||
		    strlen(o.full_name) <= SENDMAIL_NAME_MAX);
	} else
		check(err[0] != '\0');
	sendmail_options_free(&o);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t len;

	if (size < 1 || size > MAX_MSG)
		return 0;
	len = size - 1;
	switch (data[0] & 7) {
	case 0:
	case 1:
		fuzz_address_list(s, len);
		break;
	case 2:
		fuzz_from(s, len);
		break;
	case 3:
		fuzz_options(s, len);
		break;
	default:
		fuzz_message(s, len, data[0] >> 3);
		break;
	}
	return 0;
}
