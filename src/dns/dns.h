/*
 * Asynchronous DNS for outbound delivery, through libunbound (validating,
 * so that DNSSEC and DANE are possible) on the caller's libevent loop:
 * MX lookups with the RFC 5321 5.1 fallback to the domain itself and RFC
 * 7505 null MX, A/AAAA lookups, and TLSA (RFC 6698, RFC 7672) with the
 * answer's DNSSEC status.
 */
#ifndef TEGAMI_DNS_H
#define TEGAMI_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns_resolver;

#define DNS_NAME_MAX 253	/* a host name without the trailing dot */
#define DNS_MX_MAX 32		/* MX hosts kept per domain */
#define DNS_ADDRS_MAX 32	/* addresses kept per host */
#define DNS_TLSA_MAX 16

enum dns_status {
	DNS_OK = 0,		/* an answer (see each result) */
	DNS_NXDOMAIN,		/* the name does not exist: permanent */
	DNS_NODATA,		/* the name exists, no record of the type */
	DNS_NULL_MX,		/* RFC 7505 "0 .": accepts no mail, permanent */
	DNS_TEMPFAIL,		/* SERVFAIL, timeout, network: retry later */
	DNS_BOGUS,		/* DNSSEC validation failed: treat as tempfail */
};

/* "ok", "nxdomain", ... for logs. */
const char *dns_status_name(enum dns_status status);

struct dns_mx {
	char host[DNS_NAME_MAX + 1];	/* lowercased, no trailing dot */
	unsigned preference;
};

struct dns_mx_result {
	enum dns_status status;
	bool secure;		/* DNSSEC-validated answer */
	bool implicit;		/* no MX record: the domain itself (5.1) */
	struct dns_mx hosts[DNS_MX_MAX];	/* by preference; equal
						 * preferences shuffled */
	size_t n_hosts;
};

struct dns_addr_result {
	enum dns_status status;	/* OK when at least one address */
	bool secure;		/* every answer used was validated */
	/* The AAAA answers, then the A answers, each in answer order;
	 * the port is set. The caller tries them in this order. */
	struct sockaddr_storage addrs[DNS_ADDRS_MAX];
	socklen_t lens[DNS_ADDRS_MAX];
	size_t n_addrs;
};

struct dns_tlsa {
	uint8_t usage, selector, mtype;
	unsigned char data[64];	/* the association data (SHA-512 at most) */
	size_t data_len;	/* full-certificate matches (mtype 0) over 64
				 * bytes are skipped */
};

struct dns_tlsa_result {
	enum dns_status status;
	bool secure;
	struct dns_tlsa records[DNS_TLSA_MAX];
	size_t n_records;
};

typedef void (*dns_mx_cb)(void *arg, const struct dns_mx_result *r);
typedef void (*dns_addr_cb)(void *arg, const struct dns_addr_result *r);
typedef void (*dns_tlsa_cb)(void *arg, const struct dns_tlsa_result *r);

/*
 * A resolver on base. forwarder NULL or "": the system's (resolv.conf,
 * hosts file); else "ADDRESS" or "ADDRESS@PORT" (numeric IPv4/IPv6), all
 * queries go there (tests, a local validating resolver). trust_anchor_file
 * NULL: no DNSSEC validation (answers are never "secure"); else the
 * unbound-anchor style file. Returns NULL with err on failure.
 */
struct dns_resolver *dns_resolver_new(struct event_base *base,
    const char *forwarder, const char *trust_anchor_file, char *err,
    size_t errsize);
/* Cancels every pending query (no callback runs) and frees. */
void dns_resolver_free(struct dns_resolver **rp);

/*
 * Lookups. The callback runs later from the event loop (never inside the
 * call), exactly once unless cancelled. Names are checked first (a
 * syntactically bad name gets NXDOMAIN without a query). Return a handle
 * for dns_cancel (never 0).
 * MX: NODATA for MX becomes an implicit MX (the domain, preference 0)
 * when the domain has an A or AAAA record, else NODATA; "0 ." alone is
 * DNS_NULL_MX; MX hosts that are IP literals or "." among others are
 * dropped.
 * Addresses: A and AAAA together; OK when either has an answer; TEMPFAIL
 * when neither answered and one failed temporarily.
 */
uint64_t dns_lookup_mx(struct dns_resolver *r, const char *domain,
    dns_mx_cb cb, void *arg);
uint64_t dns_lookup_addrs(struct dns_resolver *r, const char *host,
    unsigned port, dns_addr_cb cb, void *arg);
/* TLSA for _PORT._tcp.HOST. */
uint64_t dns_lookup_tlsa(struct dns_resolver *r, const char *host,
    unsigned port, dns_tlsa_cb cb, void *arg);
void dns_cancel(struct dns_resolver *r, uint64_t handle);

/*
 * Additions to the contract (dns.c's own parsers and knobs, exposed for
 * the unit tests and the queue's settings).
 */

/*
 * Details of the lookups above, as dns.c implements them:
 * - MX: a lone "." record is DNS_NULL_MX whatever its preference; MX
 *   records of which none is usable (IP literals, malformed names) give
 *   DNS_NODATA with implicit false (RFC 5321 5.1: no fallback to the
 *   domain's address when MX records exist); a host listed twice is kept
 *   once, with its lowest preference; over DNS_MX_MAX, the best are kept.
 *   secure is the MX answer's (or its NODATA proof's) status.
 * - Addresses: host may also be a numeric IPv4 or IPv6 address, returned
 *   as it is (OK, not secure) without a query. With more than
 *   DNS_ADDRS_MAX answers, at least DNS_ADDRS_MAX / 2 A answers are kept
 *   when there are that many, so that both families get a try.
 * - TLSA: OK with n_records 0 means a TLSA RRset exists but none of its
 *   records is usable (RFC 7672 2.2: still TLS, unauthenticated);
 *   records past DNS_TLSA_MAX are not kept.
 * - NXDOMAIN and NODATA carry secure when their denial was validated.
 */

/* A lookup that has no answer after this long gets DNS_TEMPFAIL (what
 * did answer is used: an A answer with AAAA still pending is OK). */
#define DNS_TIMEOUT_DEFAULT_MS 20000
#define DNS_TIMEOUT_MIN_MS 100
#define DNS_TIMEOUT_MAX_MS 300000
/* Applies to lookups started afterwards; clamped to MIN..MAX. */
void dns_resolver_set_timeout_ms(struct dns_resolver *r, unsigned ms);

/*
 * Checks a host or domain name (RFC 5321 4.1.2 Domain: labels of letters,
 * digits and inner hyphens, 1..63 octets, DNS_NAME_MAX in all, one
 * trailing dot allowed; the last label must not be all digits, so that
 * "192.0.2.1" is refused) and writes it lowercased without the trailing
 * dot into out (outsize >= DNS_NAME_MAX + 1). Returns 0, or -1 when the
 * name is bad or does not fit.
 */
int dns_name_normalize(const char *name, char *out, size_t outsize);

/*
 * Decodes one MX RDATA as libunbound hands it (preference, then the
 * exchange name in uncompressed wire format: a compression pointer there
 * is malformed). Returns 0 with mx_r set for a usable host, 1 for the
 * root name "." (mx_r->host is ""), -1 when the RDATA is malformed or the
 * host is not a usable name (bad characters, an IP literal, too long).
 */
int dns_mx_rdata_parse(const unsigned char *rdata, size_t len,
    struct dns_mx *mx_r);

/*
 * Decodes one TLSA RDATA (RFC 6698 2.1). Returns 0 with tlsa_r set, or -1
 * for a record to skip: shorter than 4 octets, association data over 64
 * octets, or a SHA-256 (1) / SHA-512 (2) matching type whose data is not
 * 32 / 64 octets (RFC 7671 5: such records are unusable).
 */
int dns_tlsa_rdata_parse(const unsigned char *rdata, size_t len,
    struct dns_tlsa *tlsa_r);

#endif
