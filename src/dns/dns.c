/*
 * Asynchronous DNS on the caller's libevent loop through libunbound:
 * MX with the RFC 5321 5.1 implicit MX and RFC 7505 null MX, A/AAAA, and
 * TLSA (RFC 6698 2.1, RFC 7672 2.2) with the DNSSEC status of the answer.
 *
 * libunbound runs its resolver in one background thread (ub_ctx_async 1,
 * never a forked process); answers come back through a pipe whose read
 * end (ub_fd) is watched by an event that calls ub_process. Callbacks
 * from ub_process only record results: the caller's callback runs from
 * the query's own event, so a callback may free the resolver safely.
 */
#include "dns/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unbound.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define DNS_TYPE_A	1
#define DNS_TYPE_MX	15
#define DNS_TYPE_AAAA	28
#define DNS_TYPE_TLSA	52
#define DNS_CLASS_IN	1
#define DNS_RCODE_NXDOMAIN 3

#define DNS_LABEL_MAX	63
#define DNS_WIRE_NAME_MAX 255	/* RFC 1035 2.3.4, in wire format */

enum dns_kind {
	DNS_KIND_MX,
	DNS_KIND_ADDRS,
	DNS_KIND_TLSA,
};

/* The outcome of one libunbound query. */
struct dns_answer {
	enum dns_status status;
	bool secure;
};

struct dns_query;

/* One libunbound query in flight; mydata of ub_resolve_async. */
struct dns_sub {
	struct dns_query *q;
	int rrtype;
	int ub_id;
	bool active;		/* sent, no answer yet */
	bool answered;
	struct dns_answer ans;
};

/* Addresses of one family, kept raw until both families answered. */
struct dns_family {
	unsigned char addr[DNS_ADDRS_MAX][16];
	size_t n;
};

struct dns_query {
	TAILQ_ENTRY(dns_query) entry;
	struct dns_resolver *r;
	uint64_t id;
	enum dns_kind kind;
	char name[DNS_NAME_MAX + 1];
	unsigned port;
	struct event *ev;	/* timeout, then delivery */
	bool done;
	bool probing;		/* MX: NODATA, asking A/AAAA for 5.1 */
	bool mx_secure;
	struct dns_sub subs[2];
	struct dns_family fam[2];	/* ADDRS and probe: [0] AAAA, [1] A */
	union {
		void *any;
		dns_mx_cb mx;
		dns_addr_cb addr;
		dns_tlsa_cb tlsa;
	} cb;
	void *arg;
	union {
		struct dns_mx_result mx;
		struct dns_addr_result addr;
		struct dns_tlsa_result tlsa;
	} out;
};

TAILQ_HEAD(dns_query_list, dns_query);

struct dns_resolver {
	struct event_base *base;
	struct ub_ctx *ctx;
	struct event *ub_ev;
	struct dns_query_list queries;
	uint64_t next_id;
	unsigned timeout_ms;
};

static void dns_ub_cb(void *, int, struct ub_result *);
static void dns_query_event(evutil_socket_t, short, void *);

const char *
dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_NULL_MX:
		return "null-mx";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_BOGUS:
		return "bogus";
	}
	return "unknown";
}

/* Parsers: pure functions over bytes. */

static bool
dns_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

/*
 * Checks one label of len bytes (RFC 5321 4.1.2 sub-domain: Let-dig
 * [Ldh-str]) and tells whether it is all digits.
 */
static int
dns_label_check(const unsigned char *p, size_t len, bool *numeric_r)
{
	size_t i;
	bool numeric = true;

	if (len == 0 || len > DNS_LABEL_MAX)
		return -1;
	if (p[0] == '-' || p[len - 1] == '-')
		return -1;
	for (i = 0; i < len; i++) {
		if (!dns_ldh(p[i]))
			return -1;
		if (!isdigit(p[i]))
			numeric = false;
	}
	*numeric_r = numeric;
	return 0;
}

int
dns_name_normalize(const char *name, char *out, size_t outsize)
{
	size_t len, i, start;
	bool numeric = false;

	if (name == NULL || outsize < DNS_NAME_MAX + 1)
		return -1;
	len = strnlen(name, DNS_NAME_MAX + 2);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	start = 0;
	for (i = 0; i <= len; i++) {
		if (i < len && name[i] != '.')
			continue;
		if (dns_label_check((const unsigned char *)name + start,
		    i - start, &numeric) == -1)
			return -1;
		start = i + 1;
	}
	/* No top-level domain is all digits (RFC 3696 2): such a name is
	 * an IP address written without brackets. */
	if (numeric)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[len] = '\0';
	return 0;
}

int
dns_mx_rdata_parse(const unsigned char *rdata, size_t len,
    struct dns_mx *mx_r)
{
	char host[DNS_WIRE_NAME_MAX + 1];
	size_t off, hlen = 0, wire = 0;
	unsigned char l;
	bool numeric;

	if (rdata == NULL || len < 3)
		return -1;
	mx_r->preference = ((unsigned)rdata[0] << 8) | rdata[1];
	mx_r->host[0] = '\0';
	off = 2;
	for (;;) {
		if (off >= len)
			return -1;	/* no root label */
		l = rdata[off++];
		wire += 1 + l;
		if (wire > DNS_WIRE_NAME_MAX)
			return -1;
		if (l == 0)
			break;
		/* libunbound stores RDATA decompressed: a pointer (0xC0)
		 * or the 0x40/0x80 label types mean bad data. */
		if (l > DNS_LABEL_MAX || l > len - off)
			return -1;
		/* Checked per label, so that a '.' inside one is refused. */
		if (dns_label_check(rdata + off, l, &numeric) == -1)
			return -1;
		if (hlen > 0)
			host[hlen++] = '.';
		memcpy(host + hlen, rdata + off, l);
		hlen += l;
		off += l;
	}
	if (off != len)
		return -1;	/* bytes after the name */
	if (hlen == 0)
		return 1;	/* "." */
	host[hlen] = '\0';
	/* Lowercases; refuses an all-digit last label (an IP literal). */
	if (dns_name_normalize(host, mx_r->host, sizeof(mx_r->host)) == -1)
		return -1;
	return 0;
}

int
dns_tlsa_rdata_parse(const unsigned char *rdata, size_t len,
    struct dns_tlsa *tlsa_r)
{
	size_t dlen;

	if (rdata == NULL || len < 4)
		return -1;
	dlen = len - 3;
	if (dlen > sizeof(tlsa_r->data))
		return -1;
	if ((rdata[2] == 1 && dlen != 32) || (rdata[2] == 2 && dlen != 64))
		return -1;
	tlsa_r->usage = rdata[0];
	tlsa_r->selector = rdata[1];
	tlsa_r->mtype = rdata[2];
	memcpy(tlsa_r->data, rdata + 3, dlen);
	tlsa_r->data_len = dlen;
	return 0;
}

/* What a libunbound result says, before looking at the records. */
static struct dns_answer
dns_classify(int err, const struct ub_result *res)
{
	struct dns_answer a = { DNS_TEMPFAIL, false };

	if (err != 0 || res == NULL)
		return a;
	if (res->bogus) {
		a.status = DNS_BOGUS;
		return a;
	}
	a.secure = res->secure != 0;
	if (res->rcode == DNS_RCODE_NXDOMAIN || res->nxdomain)
		a.status = DNS_NXDOMAIN;
	else if (res->rcode != 0)
		a.status = DNS_TEMPFAIL;
	else if (!res->havedata || res->data == NULL || res->data[0] == NULL)
		a.status = DNS_NODATA;
	else
		a.status = DNS_OK;
	if (a.status == DNS_TEMPFAIL)
		a.secure = false;
	return a;
}

/* Query bookkeeping. */

static struct dns_query *
dns_query_new(struct dns_resolver *r, enum dns_kind kind, void *cb,
    void *arg)
{
	struct dns_query *q;
	struct timeval tv;

	q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->kind = kind;
	q->cb.any = cb;
	q->arg = arg;
	q->id = r->next_id++;
	q->ev = event_new(r->base, -1, 0, dns_query_event, q);
	if (q->ev == NULL)
		fatalx("dns: event_new failed");
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	event_add(q->ev, &tv);
	TAILQ_INSERT_TAIL(&r->queries, q, entry);
	return q;
}

static void
dns_sub_cancel(struct dns_resolver *r, struct dns_sub *s)
{
	if (!s->active)
		return;
	/*
	 * With a thread, ub_cancel marks the query cancelled and ub_process
	 * drops its answer; UB_NOID means the answer was already handed
	 * over, which cannot be since the sub is still active. Either way no
	 * callback will name this sub again.
	 */
	(void)ub_cancel(r->ctx, s->ub_id);
	s->active = false;
}

static void
dns_query_free(struct dns_query *q)
{
	size_t i;

	for (i = 0; i < 2; i++)
		dns_sub_cancel(q->r, &q->subs[i]);
	event_free(q->ev);
	free(q);
}

/* Schedules delivery from the event loop: never inside the caller's call
 * or inside ub_process. */
static void
dns_query_finish(struct dns_query *q)
{
	size_t i;

	for (i = 0; i < 2; i++)
		dns_sub_cancel(q->r, &q->subs[i]);
	q->done = true;
	event_del(q->ev);
	event_active(q->ev, EV_TIMEOUT, 0);
}

static int
dns_sub_start(struct dns_query *q, size_t slot, const char *name,
    int rrtype)
{
	struct dns_sub *s = &q->subs[slot];
	sigset_t all, old;
	int rc;

	memset(s, 0, sizeof(*s));
	s->q = q;
	s->rrtype = rrtype;
	/* The first call starts libunbound's thread, which inherits the
	 * signal mask: keep every signal for the caller's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = ub_resolve_async(q->r->ctx, name, rrtype, DNS_CLASS_IN, s,
	    dns_ub_cb, &s->ub_id);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_warnx("dns: query %s type %d: %s", name, rrtype,
		    ub_strerror(rc));
		return -1;
	}
	s->active = true;
	return 0;
}

/* Results. */

static void
dns_family_add(struct dns_family *f, int rrtype, const struct ub_result *res)
{
	size_t want = rrtype == DNS_TYPE_A ? 4 : 16, i;

	for (i = 0; res->data[i] != NULL && f->n < DNS_ADDRS_MAX; i++) {
		if (res->len[i] < 0 || (size_t)res->len[i] != want)
			continue;	/* malformed record */
		memcpy(f->addr[f->n++], res->data[i], want);
	}
}

/* Combines two answers of which neither gave data. */
static enum dns_status
dns_combine_empty(const struct dns_answer *a, const struct dns_answer *b)
{
	if (a->status == DNS_BOGUS || b->status == DNS_BOGUS)
		return DNS_BOGUS;
	if (a->status == DNS_TEMPFAIL || b->status == DNS_TEMPFAIL)
		return DNS_TEMPFAIL;
	if (a->status == DNS_NXDOMAIN && b->status == DNS_NXDOMAIN)
		return DNS_NXDOMAIN;
	return DNS_NODATA;
}

/* An answer that did not come (timeout, cancelled start) counts as a
 * temporary failure. */
static struct dns_answer
dns_sub_answer(const struct dns_sub *s)
{
	struct dns_answer a = { DNS_TEMPFAIL, false };

	return s->answered ? s->ans : a;
}

static void
dns_addrs_build(struct dns_query *q)
{
	struct dns_addr_result *out = &q->out.addr;
	struct dns_answer a6 = dns_sub_answer(&q->subs[0]);
	struct dns_answer a4 = dns_sub_answer(&q->subs[1]);
	size_t n6 = q->fam[0].n, n4 = q->fam[1].n, i;
	struct sockaddr_in6 *sin6;
	struct sockaddr_in *sin;

	memset(out, 0, sizeof(*out));
	if (n6 + n4 > DNS_ADDRS_MAX) {
		size_t keep4 = n4 < DNS_ADDRS_MAX / 2 ? n4 : DNS_ADDRS_MAX / 2;

		if (n6 > DNS_ADDRS_MAX - keep4)
			n6 = DNS_ADDRS_MAX - keep4;
		n4 = DNS_ADDRS_MAX - n6 < n4 ? DNS_ADDRS_MAX - n6 : n4;
	}
	for (i = 0; i < n6; i++) {
		sin6 = (struct sockaddr_in6 *)&out->addrs[out->n_addrs];
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)q->port);
		memcpy(&sin6->sin6_addr, q->fam[0].addr[i], 16);
		out->lens[out->n_addrs++] = sizeof(*sin6);
	}
	for (i = 0; i < n4; i++) {
		sin = (struct sockaddr_in *)&out->addrs[out->n_addrs];
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)q->port);
		memcpy(&sin->sin_addr, q->fam[1].addr[i], 4);
		out->lens[out->n_addrs++] = sizeof(*sin);
	}
	if (out->n_addrs > 0) {
		out->status = DNS_OK;
		out->secure = (n6 == 0 || a6.secure) && (n4 == 0 || a4.secure);
	} else {
		out->status = dns_combine_empty(&a6, &a4);
		out->secure = out->status != DNS_TEMPFAIL &&
		    out->status != DNS_BOGUS && a6.secure && a4.secure;
	}
}

/* One MX record kept, with a random key that orders equal preferences. */
struct dns_mx_pick {
	struct dns_mx mx;
	uint32_t key;
};

static bool
dns_mx_before(const struct dns_mx_pick *a, const struct dns_mx_pick *b)
{
	if (a->mx.preference != b->mx.preference)
		return a->mx.preference < b->mx.preference;
	return a->key < b->key;
}

/* Fills q->out.mx from an MX answer with data. */
static void
dns_mx_build(struct dns_query *q, const struct ub_result *res,
    const struct dns_answer *ans)
{
	struct dns_mx_result *out = &q->out.mx;
	struct dns_mx_pick *picks, tmp;
	struct dns_mx mx;
	size_t n = 0, i, j, worst, records = 0, roots = 0;
	int rc;

	picks = xcalloc(DNS_MX_MAX, sizeof(*picks));
	memset(out, 0, sizeof(*out));
	out->secure = ans->secure;
	for (i = 0; res->data[i] != NULL; i++) {
		records++;
		if (res->len[i] < 0)
			continue;
		rc = dns_mx_rdata_parse((const unsigned char *)res->data[i],
		    (size_t)res->len[i], &mx);
		if (rc == 1)
			roots++;
		if (rc != 0)
			continue;
		for (j = 0; j < n; j++)
			if (strcmp(picks[j].mx.host, mx.host) == 0)
				break;
		if (j < n) {
			if (mx.preference < picks[j].mx.preference)
				picks[j].mx.preference = mx.preference;
			continue;
		}
		tmp.mx = mx;
		tmp.key = arc4random();
		if (n < DNS_MX_MAX) {
			picks[n++] = tmp;
			continue;
		}
		/* Full: keep the best DNS_MX_MAX (random among equals). */
		worst = 0;
		for (j = 1; j < n; j++)
			if (dns_mx_before(&picks[worst], &picks[j]))
				worst = j;
		if (dns_mx_before(&tmp, &picks[worst]))
			picks[worst] = tmp;
	}
	/* Insertion sort: n is at most DNS_MX_MAX. */
	for (i = 1; i < n; i++) {
		tmp = picks[i];
		for (j = i; j > 0 && dns_mx_before(&tmp, &picks[j - 1]); j--)
			picks[j] = picks[j - 1];
		picks[j] = tmp;
	}
	for (i = 0; i < n; i++)
		out->hosts[i] = picks[i].mx;
	out->n_hosts = n;
	free(picks);
	if (n > 0)
		out->status = DNS_OK;
	else if (records == 1 && roots == 1)
		out->status = DNS_NULL_MX;	/* RFC 7505 3 */
	else
		out->status = DNS_NODATA;
}

static void
dns_mx_implicit_build(struct dns_query *q)
{
	struct dns_mx_result *out = &q->out.mx;
	struct dns_answer a6 = dns_sub_answer(&q->subs[0]);
	struct dns_answer a4 = dns_sub_answer(&q->subs[1]);

	memset(out, 0, sizeof(*out));
	out->secure = q->mx_secure;
	if (q->fam[0].n + q->fam[1].n > 0) {
		out->status = DNS_OK;
		out->implicit = true;
		memcpy(out->hosts[0].host, q->name, sizeof(q->name));
		out->hosts[0].preference = 0;
		out->n_hosts = 1;
		return;
	}
	out->status = dns_combine_empty(&a6, &a4);
	if (out->status == DNS_NXDOMAIN)
		out->status = DNS_NODATA;	/* the MX answer said it exists */
	if (out->status != DNS_NODATA)
		out->secure = false;
}

static void
dns_tlsa_build(struct dns_query *q, const struct ub_result *res,
    const struct dns_answer *ans)
{
	struct dns_tlsa_result *out = &q->out.tlsa;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->status = DNS_OK;
	out->secure = ans->secure;
	for (i = 0; res->data[i] != NULL && out->n_records < DNS_TLSA_MAX;
	    i++) {
		if (res->len[i] < 0)
			continue;
		if (dns_tlsa_rdata_parse((const unsigned char *)res->data[i],
		    (size_t)res->len[i], &out->records[out->n_records]) == 0)
			out->n_records++;
	}
}

static void
dns_failed(struct dns_query *q, enum dns_status status)
{
	memset(&q->out, 0, sizeof(q->out));
	switch (q->kind) {
	case DNS_KIND_MX:
		q->out.mx.status = status;
		break;
	case DNS_KIND_ADDRS:
		q->out.addr.status = status;
		break;
	case DNS_KIND_TLSA:
		q->out.tlsa.status = status;
		break;
	}
}

static void
dns_mx_answer(struct dns_query *q, struct dns_sub *s,
    const struct ub_result *res)
{
	if (q->probing) {
		if (s->ans.status == DNS_OK)
			dns_family_add(&q->fam[s == &q->subs[0] ? 0 : 1],
			    s->rrtype, res);
		if (!q->subs[0].active && !q->subs[1].active) {
			dns_mx_implicit_build(q);
			dns_query_finish(q);
		}
		return;
	}
	if (s->ans.status == DNS_OK) {
		dns_mx_build(q, res, &s->ans);
		dns_query_finish(q);
		return;
	}
	if (s->ans.status != DNS_NODATA) {
		dns_failed(q, s->ans.status);
		q->out.mx.secure = s->ans.secure;
		dns_query_finish(q);
		return;
	}
	/* RFC 5321 5.1: no MX, so the domain itself if it has an address. */
	q->probing = true;
	q->mx_secure = s->ans.secure;
	if (dns_sub_start(q, 0, q->name, DNS_TYPE_AAAA) == -1 ||
	    dns_sub_start(q, 1, q->name, DNS_TYPE_A) == -1) {
		dns_failed(q, DNS_TEMPFAIL);
		dns_query_finish(q);
	}
}

static void
dns_ub_cb(void *arg, int err, struct ub_result *res)
{
	struct dns_sub *s = arg;
	struct dns_query *q = s->q;

	s->active = false;
	s->answered = true;
	s->ans = dns_classify(err, res);
	if (err != 0)
		log_debug("dns: %s type %d: %s", q->name, s->rrtype,
		    ub_strerror(err));
	else if (res->bogus && res->why_bogus != NULL) {
		char esc[256];

		log_warnx("dns: %s type %d: bogus: %s", q->name, s->rrtype,
		    log_escape(res->why_bogus, strlen(res->why_bogus), esc,
		    sizeof(esc)));
	}
	switch (q->kind) {
	case DNS_KIND_MX:
		dns_mx_answer(q, s, res);
		break;
	case DNS_KIND_ADDRS:
		if (s->ans.status == DNS_OK)
			dns_family_add(&q->fam[s == &q->subs[0] ? 0 : 1],
			    s->rrtype, res);
		if (!q->subs[0].active && !q->subs[1].active) {
			dns_addrs_build(q);
			dns_query_finish(q);
		}
		break;
	case DNS_KIND_TLSA:
		if (s->ans.status == DNS_OK)
			dns_tlsa_build(q, res, &s->ans);
		else {
			dns_failed(q, s->ans.status);
			q->out.tlsa.secure = s->ans.secure;
		}
		dns_query_finish(q);
		break;
	}
	ub_resolve_free(res);
}

/* The query's event: a timeout, or (done) the delivery of its result. */
static void
dns_query_event(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_resolver *r = q->r;
	union {
		struct dns_mx_result mx;
		struct dns_addr_result addr;
		struct dns_tlsa_result tlsa;
	} out;
	union {
		void *any;
		dns_mx_cb mx;
		dns_addr_cb addr;
		dns_tlsa_cb tlsa;
	} cb;
	enum dns_kind kind = q->kind;
	void *cbarg = q->arg;
	size_t i;

	if (!q->done) {
		for (i = 0; i < 2; i++)
			dns_sub_cancel(r, &q->subs[i]);
		log_debug("dns: %s: no answer after %u ms", q->name,
		    r->timeout_ms);
		if (q->kind == DNS_KIND_ADDRS)
			dns_addrs_build(q);
		else if (q->kind == DNS_KIND_MX && q->probing)
			dns_mx_implicit_build(q);
		else
			dns_failed(q, DNS_TEMPFAIL);
	}
	/* Copy and free first: the callback may cancel, start lookups or
	 * free the resolver. */
	memcpy(&out, &q->out, sizeof(out));
	cb.any = q->cb.any;
	TAILQ_REMOVE(&r->queries, q, entry);
	dns_query_free(q);
	switch (kind) {
	case DNS_KIND_MX:
		cb.mx(cbarg, &out.mx);
		break;
	case DNS_KIND_ADDRS:
		cb.addr(cbarg, &out.addr);
		break;
	case DNS_KIND_TLSA:
		cb.tlsa(cbarg, &out.tlsa);
		break;
	}
}

static void
dns_ub_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	int rc;

	if ((rc = ub_process(r->ctx)) != 0)
		log_warnx("dns: ub_process: %s", ub_strerror(rc));
}

/* Setup. */

/* "ADDRESS" or "ADDRESS@PORT", numeric: checked here because
 * ub_ctx_set_fwd also takes "ADDRESS#TLSNAME" and other forms. */
static int
dns_forwarder_check(const char *fwd)
{
	char buf[INET6_ADDRSTRLEN + 8], *at, *end;
	unsigned char tmp[16];
	unsigned long port;

	if (strlen(fwd) >= sizeof(buf))
		return -1;
	strcpy(buf, fwd);
	if ((at = strrchr(buf, '@')) != NULL) {
		*at++ = '\0';
		if (*at < '1' || *at > '9')
			return -1;
		errno = 0;
		port = strtoul(at, &end, 10);
		if (errno != 0 || *end != '\0' || port > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, buf, tmp) != 1 &&
	    inet_pton(AF_INET6, buf, tmp) != 1)
		return -1;
	return 0;
}

static int
dns_set_option(struct ub_ctx *ctx, const char *opt, const char *val,
    char *err, size_t errsize)
{
	int rc;

	if ((rc = ub_ctx_set_option(ctx, opt, val)) != 0) {
		snprintf(err, errsize, "unbound option %s %s: %s", opt, val,
		    ub_strerror(rc));
		return -1;
	}
	return 0;
}

struct dns_resolver *
dns_resolver_new(struct event_base *base, const char *forwarder,
    const char *trust_anchor_file, char *err, size_t errsize)
{
	struct dns_resolver *r;
	struct ub_ctx *ctx;
	int rc;

	if (forwarder != NULL && *forwarder != '\0' &&
	    dns_forwarder_check(forwarder) == -1) {
		snprintf(err, errsize, "resolver \"%s\": want a numeric "
		    "ADDRESS or ADDRESS@PORT", forwarder);
		return NULL;
	}
	if (trust_anchor_file != NULL &&
	    access(trust_anchor_file, R_OK) == -1) {
		snprintf(err, errsize, "trust anchor %s: %s",
		    trust_anchor_file, strerror(errno));
		return NULL;
	}
	if ((ctx = ub_ctx_create()) == NULL) {
		snprintf(err, errsize, "ub_ctx_create failed");
		return NULL;
	}
	/* A thread, not a forked process: nothing outlives us, and the
	 * queue process's privileges and descriptors are not copied. */
	if ((rc = ub_ctx_async(ctx, 1)) != 0) {
		snprintf(err, errsize, "ub_ctx_async: %s", ub_strerror(rc));
		goto fail;
	}
	/*
	 * The forwarder is often a local resolver on 127.0.0.1 (unbound
	 * refuses to query localhost by default). A forwarder that was
	 * down is probed again soon rather than skipped for 15 minutes.
	 */
	if (dns_set_option(ctx, "do-not-query-localhost:", "no", err,
	    errsize) == -1 ||
	    dns_set_option(ctx, "infra-keep-probing:", "yes", err,
	    errsize) == -1 ||
	    dns_set_option(ctx, "infra-host-ttl:", "60", err, errsize) == -1)
		goto fail;
	if (forwarder != NULL && *forwarder != '\0') {
		if ((rc = ub_ctx_set_fwd(ctx, forwarder)) != 0) {
			snprintf(err, errsize, "resolver %s: %s", forwarder,
			    ub_strerror(rc));
			goto fail;
		}
	} else {
		if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0) {
			snprintf(err, errsize, "/etc/resolv.conf: %s",
			    ub_strerror(rc));
			goto fail;
		}
		if (access("/etc/hosts", R_OK) == 0 &&
		    (rc = ub_ctx_hosts(ctx, NULL)) != 0) {
			snprintf(err, errsize, "/etc/hosts: %s",
			    ub_strerror(rc));
			goto fail;
		}
	}
	if (trust_anchor_file != NULL &&
	    (rc = ub_ctx_add_ta_file(ctx, trust_anchor_file)) != 0) {
		snprintf(err, errsize, "trust anchor %s: %s",
		    trust_anchor_file, ub_strerror(rc));
		goto fail;
	}
	/*
	 * "test." names (RFC 6761 6.2) go to the resolver like any other,
	 * rather than being answered NXDOMAIN by libunbound's built-in local
	 * zone, so that test set-ups work. Removing the zone also finalises
	 * the context (reads the trust anchor, sets up the modules): a bad
	 * file is an error here, not a tempfail on every lookup.
	 */
	if ((rc = ub_ctx_zone_remove(ctx, "test.")) != 0) {
		snprintf(err, errsize, "resolver setup%s%s: %s",
		    trust_anchor_file ? " with trust anchor " : "",
		    trust_anchor_file ? trust_anchor_file : "",
		    ub_strerror(rc));
		goto fail;
	}

	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->ctx = ctx;
	r->next_id = 1;
	r->timeout_ms = DNS_TIMEOUT_DEFAULT_MS;
	TAILQ_INIT(&r->queries);
	r->ub_ev = event_new(base, ub_fd(ctx), EV_READ | EV_PERSIST,
	    dns_ub_readable, r);
	if (r->ub_ev == NULL || event_add(r->ub_ev, NULL) == -1) {
		snprintf(err, errsize, "event for the resolver's pipe failed");
		if (r->ub_ev != NULL)
			event_free(r->ub_ev);
		free(r);
		goto fail;
	}
	return r;

fail:
	ub_ctx_delete(ctx);
	return NULL;
}

void
dns_resolver_set_timeout_ms(struct dns_resolver *r, unsigned ms)
{
	if (ms < DNS_TIMEOUT_MIN_MS)
		ms = DNS_TIMEOUT_MIN_MS;
	if (ms > DNS_TIMEOUT_MAX_MS)
		ms = DNS_TIMEOUT_MAX_MS;
	r->timeout_ms = ms;
}

void
dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;
	struct dns_query *q;

	if (r == NULL)
		return;
	event_free(r->ub_ev);
	/* Stops and joins the thread; pending answers get no callback. */
	ub_ctx_delete(r->ctx);
	while ((q = TAILQ_FIRST(&r->queries)) != NULL) {
		TAILQ_REMOVE(&r->queries, q, entry);
		q->subs[0].active = q->subs[1].active = false;
		event_free(q->ev);
		free(q);
	}
	free(r);
	*rp = NULL;
}

void
dns_cancel(struct dns_resolver *r, uint64_t handle)
{
	struct dns_query *q;

	TAILQ_FOREACH(q, &r->queries, entry) {
		if (q->id == handle) {
			TAILQ_REMOVE(&r->queries, q, entry);
			dns_query_free(q);
			return;
		}
	}
}

/* Lookups. */

uint64_t
dns_lookup_mx(struct dns_resolver *r, const char *domain, dns_mx_cb cb,
    void *arg)
{
	struct dns_query *q;

	q = dns_query_new(r, DNS_KIND_MX, (void *)cb, arg);
	if (dns_name_normalize(domain, q->name, sizeof(q->name)) == -1) {
		dns_failed(q, DNS_NXDOMAIN);
		dns_query_finish(q);
	} else if (dns_sub_start(q, 0, q->name, DNS_TYPE_MX) == -1) {
		dns_failed(q, DNS_TEMPFAIL);
		dns_query_finish(q);
	}
	return q->id;
}

/* A numeric address given as the host: no query. */
static bool
dns_addrs_literal(struct dns_query *q, const char *host)
{
	unsigned char buf[16];

	if (inet_pton(AF_INET6, host, buf) == 1) {
		memcpy(q->fam[0].addr[0], buf, 16);
		q->fam[0].n = 1;
	} else if (inet_pton(AF_INET, host, buf) == 1) {
		memcpy(q->fam[1].addr[0], buf, 4);
		q->fam[1].n = 1;
	} else
		return false;
	dns_addrs_build(q);
	q->out.addr.secure = false;
	return true;
}

uint64_t
dns_lookup_addrs(struct dns_resolver *r, const char *host, unsigned port,
    dns_addr_cb cb, void *arg)
{
	struct dns_query *q;

	q = dns_query_new(r, DNS_KIND_ADDRS, (void *)cb, arg);
	q->port = port;
	if (port > 65535) {
		dns_failed(q, DNS_NXDOMAIN);
		dns_query_finish(q);
	} else if (host != NULL && dns_addrs_literal(q, host)) {
		dns_query_finish(q);
	} else if (dns_name_normalize(host, q->name, sizeof(q->name)) == -1) {
		dns_failed(q, DNS_NXDOMAIN);
		dns_query_finish(q);
	} else if (dns_sub_start(q, 0, q->name, DNS_TYPE_AAAA) == -1 ||
	    dns_sub_start(q, 1, q->name, DNS_TYPE_A) == -1) {
		dns_failed(q, DNS_TEMPFAIL);
		dns_query_finish(q);
	}
	return q->id;
}

uint64_t
dns_lookup_tlsa(struct dns_resolver *r, const char *host, unsigned port,
    dns_tlsa_cb cb, void *arg)
{
	struct dns_query *q;
	char name[DNS_NAME_MAX + 1];
	int n;

	q = dns_query_new(r, DNS_KIND_TLSA, (void *)cb, arg);
	if (port == 0 || port > 65535 ||
	    dns_name_normalize(host, name, sizeof(name)) == -1 ||
	    (n = snprintf(q->name, sizeof(q->name), "_%u._tcp.%s", port,
	    name)) < 0 || (size_t)n >= sizeof(q->name)) {
		dns_failed(q, DNS_NXDOMAIN);
		dns_query_finish(q);
	} else if (dns_sub_start(q, 0, q->name, DNS_TYPE_TLSA) == -1) {
		dns_failed(q, DNS_TEMPFAIL);
		dns_query_finish(q);
	}
	return q->id;
}
