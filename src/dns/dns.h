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

#endif
