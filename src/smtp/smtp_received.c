/*
 * Return-Path and Received headers (RFC 5321 4.4). Every field put in here
 * was validated by the command parser (printable ASCII, or UTF-8 in an
 * SMTPUTF8 address), so no line break can be injected into the header.
 */
#include "smtp/smtp_received.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"

size_t
smtp_trace_headers(const struct smtp_trace *t, char *out, size_t outsize)
{
	char date[64], for_clause[400] = "", tls_clause[300] = "";
	int n;

	rfc5322_date(date, sizeof(date));
	if (t->for_rcpt != NULL)
		snprintf(for_clause, sizeof(for_clause), "\r\n\tfor <%s>",
		    t->for_rcpt);
	if (t->tls != NULL)
		snprintf(tls_clause, sizeof(tls_clause), "\t(using %s)\r\n",
		    t->tls);
	n = snprintf(out, outsize,
	    "Return-Path: <%s>\r\n"
	    "Received: from %s ([%s%s])\r\n"
	    "%s"
	    "\tby %s (tegami) with %s id %s%s;\r\n"
	    "\t%s\r\n",
	    t->sender, t->helo, strchr(t->peer_ip, ':') ? "IPv6:" : "",
	    t->peer_ip, tls_clause, t->hostname, t->protocol,
	    t->queue_id, for_clause, date);
	if (n < 0 || (size_t)n >= outsize) {
		if (outsize > 0)
			out[0] = '\0';
		return 0;
	}
	return (size_t)n;
}
