/*
 * libFuzzer target for dns.c's pure parsers: host names (RFC 5321 4.1.2,
 * RFC 3696 2), MX RDATA in uncompressed wire format (RFC 1035 3.3.9) and
 * TLSA RDATA (RFC 6698 2.1, RFC 7671 5). The first input byte picks the
 * parser; each result is compared with a second, simpler model of the
 * contract in dns.h, and with invariants (a normalized name normalizes to
 * itself; an MX host is a normalized name that encodes back to the RDATA).
 */

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LABEL_MAX 63
#define WIRE_MAX 255

static void
check(bool ok)
{
	if (!ok)
		abort();
}

/* The model of dns_name_normalize's acceptance: whole labels split at
 * '.', written another way (no running state between labels). */
static bool
model_name_ok(const char *s, size_t len)
{
	const char *p = s, *end, *dot;
	size_t llen, i;
	bool digits = false;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return false;
	end = s + len;
	while (p <= end) {
		dot = memchr(p, '.', (size_t)(end - p));
		llen = dot != NULL ? (size_t)(dot - p) : (size_t)(end - p);
		if (llen == 0 || llen > LABEL_MAX || p[0] == '-' ||
		    p[llen - 1] == '-')
			return false;
		digits = true;
		for (i = 0; i < llen; i++) {
			unsigned char c = (unsigned char)p[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-'))
				return false;
			if (c < '0' || c > '9')
				digits = false;
		}
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return !digits;		/* the last label's */
}

/* The invariants of a normalized name: lower-case letters, digits,
 * hyphens and inner dots, at most DNS_NAME_MAX, and a fixed point. */
static void
check_normalized(const char *out)
{
	char *again;
	size_t len = strlen(out), i;

	check(len >= 1 && len <= DNS_NAME_MAX);
	check(out[0] != '.' && out[len - 1] != '.');
	for (i = 0; i < len; i++)
		check((out[i] >= 'a' && out[i] <= 'z') ||
		    (out[i] >= '0' && out[i] <= '9') || out[i] == '-' ||
		    (out[i] == '.' && out[i + 1] != '.'));
	/* exact size on the heap: ASan sees one byte too many */
	if ((again = malloc(DNS_NAME_MAX + 1)) == NULL)
		abort();
	check(dns_name_normalize(out, again, DNS_NAME_MAX + 1) == 0);
	check(strcmp(out, again) == 0);
	free(again);
}

/* name normalizes to want (NULL: is refused). */
static void
check_same(const char *name, const char *want)
{
	char *out;

	if ((out = malloc(DNS_NAME_MAX + 1)) == NULL)
		abort();
	if (want == NULL)
		check(dns_name_normalize(name, out, DNS_NAME_MAX + 1) == -1);
	else
		check(dns_name_normalize(name, out, DNS_NAME_MAX + 1) == 0 &&
		    strcmp(out, want) == 0);
	free(out);
}

static void
fuzz_name(const uint8_t *data, size_t size)
{
	char *name, *out, *other, small[DNS_NAME_MAX];
	size_t len, i;
	int rc;

	/* a C string: an embedded NUL ends it, as it would for the caller */
	if ((name = malloc(size + 1)) == NULL ||
	    (out = malloc(DNS_NAME_MAX + 1)) == NULL ||
	    (other = malloc(size + 2)) == NULL)
		abort();
	memcpy(name, data, size);
	name[size] = '\0';
	len = strlen(name);
	rc = dns_name_normalize(name, out, DNS_NAME_MAX + 1);
	check(rc == 0 || rc == -1);
	check((rc == 0) == model_name_ok(name, len));
	if (rc == 0) {
		check_normalized(out);
		/* the input lowercased, less one trailing dot */
		check(strlen(out) == len - (name[len - 1] == '.'));
		for (i = 0; out[i] != '\0'; i++)
			check(out[i] == tolower((unsigned char)name[i]));
		/* upper case, or a trailing dot added, give the same */
		for (i = 0; i <= len; i++)
			other[i] = (char)toupper((unsigned char)name[i]);
		check_same(other, out);
		if (name[len - 1] != '.') {
			memcpy(other, name, len);
			memcpy(other + len, ".", 2);
			check_same(other, out);
		} else {
			/* a second trailing dot is an empty label */
			memcpy(other, name, len);
			memcpy(other + len, ".", 2);
			check_same(other, NULL);
		}
	}
	/* too small an output buffer is refused, whatever the name */
	check(dns_name_normalize(name, small, sizeof(small)) == -1);
	check(dns_name_normalize(NULL, out, DNS_NAME_MAX + 1) == -1);
	free(name);
	free(out);
	free(other);
}

/*
 * The model of dns_mx_rdata_parse: the exchange decoded label by label
 * into a dotted name, then checked as a whole by model_name_ok. -1 for
 * malformed wire data or a '.' inside a label (which the dotted name
 * would hide), 1 for the root, else 0 with host and *hlen_r set.
 */
static int
model_mx(const uint8_t *rd, size_t len, char *host, size_t *hlen_r)
{
	size_t off = 2, wire = 0, hlen = 0, l;

	if (len < 3)
		return -1;
	for (;;) {
		if (off >= len)
			return -1;
		l = rd[off++];
		wire += l + 1;
		if (wire > WIRE_MAX || l > LABEL_MAX || l > len - off)
			return -1;
		if (l == 0)
			break;
		if (memchr(rd + off, '.', l) != NULL)
			return -1;
		if (hlen > 0)
			host[hlen++] = '.';
		memcpy(host + hlen, rd + off, l);
		hlen += l;
		off += l;
	}
	if (off != len)
		return -1;
	host[hlen] = '\0';
	*hlen_r = hlen;
	if (hlen == 0)
		return 1;
	return model_name_ok(host, hlen) ? 0 : -1;
}

/* The host written back into wire format. */
static size_t
mx_encode(unsigned pref, const char *host, uint8_t *out)
{
	const char *p = host, *dot;
	size_t n = 0, l;

	out[n++] = (uint8_t)(pref >> 8);
	out[n++] = (uint8_t)pref;
	while (*p != '\0') {
		dot = strchr(p, '.');
		l = dot != NULL ? (size_t)(dot - p) : strlen(p);
		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l + (dot != NULL);
	}
	out[n++] = 0;
	return n;
}

static void
fuzz_mx(const uint8_t *data, size_t size)
{
	struct dns_mx mx, mx2;
	char host[WIRE_MAX + 1];
	uint8_t wire[WIRE_MAX + 2];
	size_t hlen = 0, n, i;
	int rc;

	rc = dns_mx_rdata_parse(data, size, &mx);
	check(rc == model_mx(data, size, host, &hlen));
	if (rc == -1)
		return;
	check(mx.preference == ((unsigned)data[0] << 8 | data[1]));
	if (rc == 1) {
		check(size == 3 && data[2] == 0 && mx.host[0] == '\0');
		return;
	}
	check_normalized(mx.host);
	for (i = 0; i < hlen; i++)
		check(mx.host[i] == tolower((unsigned char)host[i]));
	check(mx.host[hlen] == '\0');
	/* encoded again, it parses to the same host */
	n = mx_encode(mx.preference, mx.host, wire);
	check(n == size);
	check(dns_mx_rdata_parse(wire, n, &mx2) == 0);
	check(mx2.preference == mx.preference &&
	    strcmp(mx2.host, mx.host) == 0);
	/* without its last byte (the root label) it is malformed */
	check(dns_mx_rdata_parse(data, size - 1, &mx2) == -1);
}

static void
fuzz_tlsa(const uint8_t *data, size_t size)
{
	struct dns_tlsa t;
	size_t dlen = size >= 3 ? size - 3 : 0;
	bool want;
	int rc;

	want = size >= 4 && dlen <= sizeof(t.data) &&
	    !(data[2] == 1 && dlen != 32) && !(data[2] == 2 && dlen != 64);
	rc = dns_tlsa_rdata_parse(data, size, &t);
	check(rc == 0 || rc == -1);
	check((rc == 0) == want);
	if (rc != 0)
		return;
	check(t.usage == data[0] && t.selector == data[1] &&
	    t.mtype == data[2]);
	check(t.data_len == dlen && t.data_len >= 1 &&
	    t.data_len <= sizeof(t.data));
	check(memcmp(t.data, data + 3, dlen) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 1)
		return 0;
	/* the rest in a heap block of its exact size, for ASan */
	if ((copy = malloc(size - 1 > 0 ? size - 1 : 1)) == NULL)
		abort();
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		fuzz_name(copy, size - 1);
		break;
	case 1:
		fuzz_mx(copy, size - 1);
		break;
	default:
		fuzz_tlsa(copy, size - 1);
		break;
	}
	free(copy);
	check(dns_mx_rdata_parse(NULL, 3, &(struct dns_mx){ 0 }) == -1);
	check(dns_tlsa_rdata_parse(NULL, 4, &(struct dns_tlsa){ 0 }) == -1);
	return 0;
}
