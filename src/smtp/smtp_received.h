/*
 * The trace headers tegami adds to a message: Return-Path (RFC 5321
 * 4.4, at delivery) and Received (RFC 5321 4.4, RFC 5322 3.6.7).
 */
#ifndef TEGAMI_SMTP_RECEIVED_H
#define TEGAMI_SMTP_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_trace {
	const char *sender;	/* formatted address, "" for <> */
	const char *helo;	/* the client's HELO/EHLO name */
	const char *peer_ip;	/* the client's address as text */
	const char *hostname;	/* ours */
	const char *protocol;	/* "SMTP", "ESMTP", "UTF8SMTP", ... */
	const char *queue_id;
	const char *for_rcpt;	/* the one recipient, or NULL */
	const char *tls;	/* "TLSv1.3 with cipher ...", or NULL */
};

/*
 * Writes "Return-Path: <sender>\r\nReceived: ...\r\n" into out.
 * Returns the length, or 0 if it did not fit (out then holds "").
 */
size_t smtp_trace_headers(const struct smtp_trace *t, char *out,
    size_t outsize);

#endif
