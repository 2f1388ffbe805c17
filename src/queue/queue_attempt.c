/*
 * One delivery attempt of one queued message: local recipients go into
 * their Maildir at once; remote ones are grouped by domain, each domain
 * gets its route (routes_file, else relay_host and outbound_tls), and the
 * domain's MX hosts (RFC 5321 5.1), or the relay host, are tried in order
 * with the SMTP client until one of them decides every recipient's fate.
 * With tls=may a failed STARTTLS handshake is retried at once in
 * plaintext on the same address (as Postfix does); DANE never is.
 * Afterwards the envelope is rewritten with each recipient's state, the
 * next attempt is scheduled with backoff, and when nothing is pending any
 * more the failures go back to the sender as one DSN (RFC 3464).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "dns/dns.h"
#include "queue/dsn.h"
#include "queue/queue_conncache.h"
#include "queue/queue_private.h"
#include "queue/queue_routes.h"
#include "smtp/smtp_client.h"

#define MX_PORT 25
#define IMPLICIT_TLS_PORT 465	/* relay_host or relay=HOST:465 */
#define DSN_ORIGINAL_MAX (64 * 1024)	/* bytes of the original read */

struct domain_job {
	struct queue_attempt *a;
	char domain[256];
	size_t *rcpt;			/* indexes into a->env.rcpts */
	const char **addrs;		/* their addresses, for the client */
	size_t n;
	/* Where to go: the MX hosts, or the relay host. */
	struct dns_mx hosts[DNS_MX_MAX];
	size_t n_hosts, host_i;
	unsigned port;
	bool relay;
	bool mx_secure;			/* DNSSEC-signed MX: DANE may apply */
	/* The route and what it decided, copied: the routes file may be
	 * reloaded while the job runs. */
	char route[DNS_NAME_MAX + 2];	/* its DOMAIN, or "none" */
	enum smtp_tls_policy tls;	/* unless DANE applies */
	char *auth_user, *auth_password;	/* relay only; wiped on free */
	bool plaintext;			/* MAY: this address again, no TLS */
	/* The current host's usable TLSA records (RFC 7672): DANE. */
	struct dns_tlsa tlsa[DNS_TLSA_MAX];
	size_t n_tlsa;
	bool dane;
	struct dns_addr_result *addrs_result;
	size_t addr_i;
	uint64_t dns_handle;
	struct queue_wait wait;
	bool waiting, have_slot;
	struct smtp_client *client;
	struct smtp_client_params params;
	/* The connection's key in qs->conncache and when it was opened. */
	char conn_key[QUEUE_CONNCACHE_KEY_MAX];
	uint64_t conn_born;
	bool conn_fresh;		/* the next connect opens a new one */
	bool done;
	/* The last temporary problem, for the envelope and a DSN. */
	char remote[DNS_NAME_MAX + 1];
	char status[16];
	char diag[512];
};

struct queue_attempt {
	struct queue_server *qs;
	struct queue_msg *m;
	struct queue_envelope env;
	int msg_fd;
	uint64_t msg_size, msg_offset;
	struct domain_job *jobs;
	size_t n_jobs, n_done;
	bool starting;		/* jobs are being started: do not end yet */
	uint64_t now;
};

static void job_next_host(struct domain_job *j);
static void job_addrs_cb(void *arg, const struct dns_addr_result *r);
static void job_next_addr(struct domain_job *j);
static void job_connect(void *arg);

/* ---- Recording outcomes ------------------------------------------------ */

static void
rcpt_set(struct queue_attempt *a, size_t i, enum queue_rcpt_state state,
    const char *remote, const char *status, const char *diag)
{
	struct queue_rcpt *r = &a->env.rcpts[i];
	/* Copies first: remote and diag may be the recipient's own. */
	char *new_remote = remote != NULL && remote[0] != '\0' ?
	    xstrdup(remote) : NULL;
	char *new_diag = diag != NULL && diag[0] != '\0' ? xstrdup(diag) : NULL;

	r->state = state;
	r->time = a->now;
	free(r->remote);
	r->remote = new_remote;
	snprintf(r->status, sizeof(r->status), "%s", status != NULL ? status :
	    "");
	free(r->diagnostic);
	r->diagnostic = new_diag;
}

static void
job_fail_all(struct domain_job *j, enum queue_rcpt_state state,
    const char *status, const char *diag)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		rcpt_set(j->a, j->rcpt[i], state, j->remote, status, diag);
}

/* The next attempt: retry_min doubled per attempt, at most retry_max. */
static uint64_t
next_attempt_time(const struct tegami_config *cfg, uint64_t now,
    unsigned attempts)
{
	uint64_t wait = cfg->queue_retry_min;
	unsigned i;

	for (i = 1; i < attempts && wait < cfg->queue_retry_max; i++)
		wait *= 2;
	if (wait > cfg->queue_retry_max)
		wait = cfg->queue_retry_max;
	return now + wait;
}

static char *
read_original(struct queue_attempt *a, size_t *len_r)
{
	size_t want = a->msg_size - a->msg_offset < DSN_ORIGINAL_MAX ?
	    (size_t)(a->msg_size - a->msg_offset) : DSN_ORIGINAL_MAX;
	char *buf = xmalloc(want + 1);
	ssize_t n = a->msg_fd >= 0 ? pread(a->msg_fd, buf, want,
	    (off_t)a->msg_offset) : -1;

	*len_r = n > 0 ? (size_t)n : 0;
	return buf;
}

/* A DSN to the sender for the recipients in state (failed, or pending
 * for a delay warning). */
static void
queue_send_dsn(struct queue_attempt *a, bool warning)
{
	struct queue_server *qs = a->qs;
	struct dsn_recipient *dr;
	struct dsn_report rep;
	struct queue_envelope benv;
	struct queue_rcpt brcpt;
	char *orig, *dsn, *msg, date[64], seed[40];
	size_t n = 0, i, orig_len, dsn_len, hlen;

	if (a->env.sender[0] == '\0')
		return;		/* never a DSN about a DSN (RFC 3464 2) */
	dr = xcalloc(a->env.n_rcpts, sizeof(*dr));
	for (i = 0; i < a->env.n_rcpts; i++) {
		const struct queue_rcpt *r = &a->env.rcpts[i];

		if (r->state != (warning ? QUEUE_RCPT_PENDING :
		    QUEUE_RCPT_FAILED))
			continue;
		dr[n].address = r->address;
		dr[n].action = warning ? DSN_ACTION_DELAYED : DSN_ACTION_FAILED;
		dr[n].status = r->status;
		dr[n].remote_mta = r->remote;
		dr[n].diagnostic = r->diagnostic;
		dr[n].last_attempt = r->time;
		n++;
	}
	if (n == 0) {
		free(dr);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.reporting_mta = qs->cfg->hostname;
	rep.queue_id = a->env.queue_id;
	rep.arrival = a->env.created;
	rep.now = a->now;
	rep.sender = a->env.sender;
	snprintf(seed, sizeof(seed), "%s.%llu", a->env.queue_id,
	    (unsigned long long)a->now);
	rep.boundary_seed = seed;
	rep.delay_warning = warning;
	rep.warn_hours = qs->cfg->queue_delay_warning / 3600;
	rep.give_up_days = qs->cfg->queue_max_age / 86400;
	rep.rcpts = dr;
	rep.n_rcpts = n;
	orig = read_original(a, &orig_len);
	dsn = dsn_format(&rep, orig, orig_len, &dsn_len);
	free(orig);
	free(dr);
	if (dsn == NULL)
		return;

	memset(&benv, 0, sizeof(benv));
	memset(&brcpt, 0, sizeof(brcpt));
	brcpt.address = a->env.sender;
	benv.created = a->now;
	benv.sender = (char *)"";
	/* A UTF-8 address makes the DSN a global one (RFC 6533). */
	for (i = 0; a->env.sender[i] != '\0'; i++)
		if ((unsigned char)a->env.sender[i] >= 0x80)
			benv.smtputf8 = true;
	benv.body = QUEUE_BODY_8BITMIME;
	benv.rcpts = &brcpt;
	benv.n_rcpts = 1;
	rfc5322_date(date, sizeof(date));
	hlen = strlen(qs->cfg->hostname) * 2 + strlen(date) + 128;
	msg = xmalloc(hlen + dsn_len);
	/* queue_inject names it; the trace header needs the name first. */
	queue_id_new(benv.queue_id);
	hlen = (size_t)snprintf(msg, hlen, "Return-Path: <>\r\n"
	    "Received: by %s (tegami) id %s;\r\n\t%s\r\n",
	    qs->cfg->hostname, benv.queue_id, date);
	memcpy(msg + hlen, dsn, dsn_len);
	free(dsn);
	if (queue_inject(qs, msg, hlen + dsn_len, &benv) < 0)
		log_warn("queue: id=%s cannot queue the %s for <%s>",
		    a->env.queue_id, warning ? "delay warning" : "bounce",
		    a->env.sender);
	else {
		log_info("queue: id=%s %s to <%s> queued as %s",
		    a->env.queue_id, warning ? "delay warning" : "bounce",
		    a->env.sender, benv.queue_id);
		queue_msg_add(qs, benv.queue_id, 0);
	}
	free(msg);
}

static void
secret_free(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

static void
queue_attempt_free(struct queue_attempt *a)
{
	size_t i;

	for (i = 0; i < a->n_jobs; i++) {
		struct domain_job *j = &a->jobs[i];

		if (j->client != NULL)
			smtp_client_cancel(j->client);
		if (j->dns_handle != 0)
			dns_cancel(a->qs->dns, j->dns_handle);
		if (j->waiting)
			queue_slot_cancel(a->qs, &j->wait);
		if (j->have_slot)
			queue_slot_release(a->qs, j->domain);
		free(j->rcpt);
		free(j->addrs);
		free(j->addrs_result);
		secret_free(&j->auth_user);
		secret_free(&j->auth_password);
	}
	free(a->jobs);
	if (a->msg_fd >= 0)
		close(a->msg_fd);
	queue_envelope_free(&a->env);
	free(a);
}

/* Every domain is done: record, bounce or reschedule. */
static void
queue_attempt_end(struct queue_attempt *a)
{
	struct queue_server *qs = a->qs;
	struct queue_msg *m = a->m;
	char err[256];
	uint64_t next = 0;
	bool gone = false;
	size_t i, delivered = 0, failed = 0, pending = 0;

	a->env.attempts++;
	for (i = 0; i < a->env.n_rcpts; i++) {
		switch (a->env.rcpts[i].state) {
		case QUEUE_RCPT_DELIVERED:
			delivered++;
			break;
		case QUEUE_RCPT_FAILED:
			failed++;
			break;
		case QUEUE_RCPT_PENDING:
			pending++;
			break;
		}
	}
	if (pending == 0) {
		queue_send_dsn(a, false);
		queue_remove(qs, a->env.queue_id, false);
		gone = true;
		log_info("queue: id=%s done: %zu delivered, %zu failed",
		    a->env.queue_id, delivered, failed);
	} else {
		next = next_attempt_time(qs->cfg, a->now, a->env.attempts);
		a->env.next_attempt = next;
		if (qs->cfg->queue_delay_warning > 0 && !a->env.warned &&
		    a->now - a->env.created >= qs->cfg->queue_delay_warning) {
			queue_send_dsn(a, true);
			a->env.warned = true;
		}
		if (queue_envelope_store(qs->queue_dir, &a->env, err,
		    sizeof(err)) < 0)
			log_warnx("queue: id=%s %s", a->env.queue_id, err);
		log_info("queue: id=%s deferred: %zu pending, %zu delivered, "
		    "%zu failed, next attempt in %llus", a->env.queue_id,
		    pending, delivered, failed,
		    (unsigned long long)(next - a->now));
	}
	queue_attempt_free(a);
	queue_attempt_finished(qs, m, next, gone);
}

static void
job_done(struct domain_job *j)
{
	struct queue_attempt *a = j->a;

	j->done = true;
	if (++a->n_done == a->n_jobs && !a->starting)
		queue_attempt_end(a);
}

/* ---- One domain -------------------------------------------------------- */

/* outbound_tls, or a route's tls=. */
static enum smtp_tls_policy
tls_policy_named(const char *p)
{
	if (strcmp(p, "none") == 0)
		return SMTP_TLS_NONE;
	if (strcmp(p, "encrypt") == 0)
		return SMTP_TLS_ENCRYPT;
	if (strcmp(p, "verify") == 0)
		return SMTP_TLS_VERIFY;
	return SMTP_TLS_MAY;
}

static const char *
tls_policy_name(enum smtp_tls_policy p)
{
	switch (p) {
	case SMTP_TLS_NONE:
		return "none";
	case SMTP_TLS_MAY:
		return "may";
	case SMTP_TLS_ENCRYPT:
		return "encrypt";
	case SMTP_TLS_VERIFY:
		return "verify";
	case SMTP_TLS_DANE:
		return "dane";
	}
	return "?";
}

/* DANE (RFC 7672 2.2) wins over any local policy: the domain asked for
 * it, through DNSSEC. */
static enum smtp_tls_policy
job_tls_policy(const struct domain_job *j)
{
	if (j->dane)
		return SMTP_TLS_DANE;
	if (j->plaintext)
		return SMTP_TLS_NONE;
	return j->tls;
}

/* The status of the first undecided recipient, for the envelope. */
static const char *
result_status(const struct smtp_client_result *res, const char *def)
{
	size_t i;

	for (i = 0; i < res->n_rcpts; i++)
		if (res->rcpts[i].outcome == SMTP_RCPT_TEMPFAIL &&
		    res->rcpts[i].status[0] == '4')
			return res->rcpts[i].status;
	return def;
}

static void
job_client_done(void *arg, const struct smtp_client_result *res)
{
	struct domain_job *j = arg;
	struct queue_attempt *a = j->a;
	const char *host = j->hosts[j->host_i].host;
	struct smtp_client *client = j->client;
	char conn_use[32] = "";
	size_t i;

	j->client = NULL;
	if (res->reusable)
		queue_conncache_put(a->qs->conncache, j->conn_key, client,
		    j->conn_born, queue_now());
	/*
	 * A kept connection that failed before the peer decided anything
	 * was most likely closed while idle: the same address again on a
	 * new connection, keeping the slot.
	 */
	if (res->reused && res->try_next_host) {
		log_debug("queue: id=%s domain=%s host=%s: kept connection "
		    "failed (%s); connecting again", a->env.queue_id,
		    j->domain, host, res->error);
		j->conn_fresh = true;
		job_connect(j);
		return;
	}
	/*
	 * tls=may and the STARTTLS handshake failed: the same address at
	 * once in plaintext, keeping the slot (Postfix does the same).
	 * Never with AUTH, which needs TLS, nor after a plaintext try.
	 */
	if (res->tls_failed && !j->plaintext && !j->dane &&
	    j->tls == SMTP_TLS_MAY && j->auth_user == NULL) {
		log_info("queue: id=%s domain=%s host=%s: %s; retrying in "
		    "plaintext (route=%s policy=may)", a->env.queue_id,
		    j->domain, host, res->tls_error, j->route);
		j->plaintext = true;
		job_connect(j);
		return;
	}
	queue_slot_release(a->qs, j->domain);
	j->have_slot = false;
	snprintf(j->remote, sizeof(j->remote), "%s", host);
	if (res->try_next_host) {
		snprintf(j->status, sizeof(j->status), "%s",
		    result_status(res, "4.4.1"));
		snprintf(j->diag, sizeof(j->diag), "%s: %s", host, res->error);
		log_info("queue: id=%s domain=%s host=%s: %s; trying the next "
		    "(route=%s policy=%s)", a->env.queue_id, j->domain, host,
		    res->error, j->route, tls_policy_name(job_tls_policy(j)));
		j->plaintext = false;
		j->addr_i++;
		job_next_addr(j);
		return;
	}
	/* Postfix's conn_use: the how-manieth transaction on this
	 * connection, shown once it was kept for another. */
	if (res->transactions > 1)
		snprintf(conn_use, sizeof(conn_use), " conn_use=%u",
		    res->transactions);
	if (res->tls_refused)
		log_info("queue: id=%s domain=%s host=%s: %s; went on in "
		    "plaintext (route=%s policy=may)", a->env.queue_id,
		    j->domain, host, res->tls_error, j->route);
	for (i = 0; i < j->n && i < res->n_rcpts; i++) {
		const struct smtp_client_rcpt *r = &res->rcpts[i];
		enum queue_rcpt_state st = r->outcome == SMTP_RCPT_DELIVERED ?
		    QUEUE_RCPT_DELIVERED : r->outcome == SMTP_RCPT_PERMFAIL ?
		    QUEUE_RCPT_FAILED : QUEUE_RCPT_PENDING;

		rcpt_set(a, j->rcpt[i], st, host, r->status, r->diagnostic);
		/* route= and what follows come last: the fields before
		 * keep the order they always had. */
		log_info("queue: id=%s to=<%s> relay=%s %s status=%s "
		    "tls=%s%s \"%s\" route=%s policy=%s%s%s", a->env.queue_id,
		    j->addrs[i], host,
		    st == QUEUE_RCPT_DELIVERED ? "delivered" :
		    st == QUEUE_RCPT_FAILED ? "failed" : "deferred", r->status,
		    res->tls ? res->tls_info : "none",
		    res->tls ? (res->verified ? " verified" : " unverified") :
		    "", r->diagnostic, j->route,
		    tls_policy_name(j->dane ? SMTP_TLS_DANE : j->tls),
		    j->plaintext ? " tls_fallback=handshake" :
		    res->tls_refused ? " tls_fallback=refused" : "", conn_use);
	}
	job_done(j);
}

static void
job_connect(void *arg)
{
	struct domain_job *j = arg;
	struct queue_attempt *a = j->a;
	struct queue_server *qs = a->qs;
	struct smtp_client_params *p = &j->params;

	j->waiting = false;
	j->have_slot = true;
	memset(p, 0, sizeof(*p));
	p->addr = (const struct sockaddr *)&j->addrs_result->addrs[j->addr_i];
	p->addr_len = j->addrs_result->lens[j->addr_i];
	if (qs->source_len > 0 &&
	    qs->source.ss_family == p->addr->sa_family) {
		p->source = (const struct sockaddr *)&qs->source;
		p->source_len = qs->source_len;
	}
	p->peer_name = j->hosts[j->host_i].host;
	p->helo_name = qs->cfg->hostname;
	p->tls = job_tls_policy(j);
	p->implicit_tls = j->relay && j->port == IMPLICIT_TLS_PORT;
	p->tls_ctx = qs->tls_ctx;
	if (j->dane) {
		p->tlsa = j->tlsa;
		p->n_tlsa = j->n_tlsa;
	}
	if (j->relay) {
		p->auth_user = j->auth_user;
		p->auth_password = j->auth_password;
	}
	p->sender = a->env.sender;
	p->rcpts = j->addrs;
	p->n_rcpts = j->n;
	p->msg_fd = a->msg_fd;
	p->msg_offset = a->msg_offset;
	p->msg_size = a->msg_size - a->msg_offset;
	p->smtputf8 = a->env.smtputf8;
	p->eightbit = a->env.body != QUEUE_BODY_7BIT;
	p->reuse = true;
	queue_conncache_key(p, j->conn_key, sizeof(j->conn_key));
	if (!j->conn_fresh &&
	    (j->client = queue_conncache_take(qs->conncache, j->conn_key,
	    &j->conn_born)) != NULL) {
		smtp_client_next(j->client, p, job_client_done, j);
		return;
	}
	j->conn_fresh = false;
	j->conn_born = queue_now();
	j->client = smtp_client_start(qs->base, p, job_client_done, j);
}

/* Tries the next address of the current host, or the next host. */
static void
job_next_addr(struct domain_job *j)
{
	if (j->addrs_result == NULL ||
	    j->addr_i >= j->addrs_result->n_addrs) {
		j->host_i++;
		job_next_host(j);
		return;
	}
	j->waiting = true;
	queue_slot_acquire(j->a->qs, j->domain, &j->wait, job_connect, j);
}

static void
job_addrs_cb(void *arg, const struct dns_addr_result *r)
{
	struct domain_job *j = arg;

	j->dns_handle = 0;
	free(j->addrs_result);
	j->addrs_result = NULL;
	if (r->status != DNS_OK || r->n_addrs == 0) {
		snprintf(j->remote, sizeof(j->remote), "%s",
		    j->hosts[j->host_i].host);
		snprintf(j->status, sizeof(j->status), "4.4.3");
		snprintf(j->diag, sizeof(j->diag), "%s: no address (%s)",
		    j->hosts[j->host_i].host, dns_status_name(r->status));
		j->host_i++;
		job_next_host(j);
		return;
	}
	j->addrs_result = xmalloc(sizeof(*j->addrs_result));
	memcpy(j->addrs_result, r, sizeof(*r));
	j->addr_i = 0;
	job_next_addr(j);
}

static void
job_lookup_addrs(struct domain_job *j)
{
	j->dns_handle = dns_lookup_addrs(j->a->qs->dns,
	    j->hosts[j->host_i].host, j->port, job_addrs_cb, j);
}

/*
 * RFC 7672 2.2: the TLSA records of an MX host found through a signed MX
 * lookup. Secure and usable: DANE, TLS and a matching certificate are
 * required. Insecure or none: the usual policy. A failed or bogus lookup
 * makes the host unusable now (it might be a downgrade attack).
 */
static void
job_tlsa_cb(void *arg, const struct dns_tlsa_result *r)
{
	struct domain_job *j = arg;
	const char *host = j->hosts[j->host_i].host;

	j->dns_handle = 0;
	j->n_tlsa = 0;
	j->dane = false;
	if (r->status == DNS_TEMPFAIL || r->status == DNS_BOGUS) {
		snprintf(j->remote, sizeof(j->remote), "%s", host);
		snprintf(j->status, sizeof(j->status), "4.7.5");
		snprintf(j->diag, sizeof(j->diag), "%s: TLSA lookup failed "
		    "(%s); not delivering without DANE", host,
		    dns_status_name(r->status));
		j->host_i++;
		job_next_host(j);
		return;
	}
	if (r->status == DNS_OK && r->secure && r->n_records > 0) {
		memcpy(j->tlsa, r->records, r->n_records * sizeof(r->records[0]));
		j->n_tlsa = r->n_records;
		j->dane = true;
	}
	job_lookup_addrs(j);
}

static void
job_next_host(struct domain_job *j)
{
	j->dane = false;
	j->n_tlsa = 0;
	if (j->host_i >= j->n_hosts) {
		/* Every host failed: the recipients wait for the next try. */
		if (j->status[0] == '\0')
			snprintf(j->status, sizeof(j->status), "4.4.1");
		job_fail_all(j, QUEUE_RCPT_PENDING, j->status, j->diag);
		job_done(j);
		return;
	}
	if (j->mx_secure && !j->relay) {
		j->dns_handle = dns_lookup_tlsa(j->a->qs->dns,
		    j->hosts[j->host_i].host, j->port, job_tlsa_cb, j);
		return;
	}
	job_lookup_addrs(j);
}

static void
job_mx_cb(void *arg, const struct dns_mx_result *r)
{
	struct domain_job *j = arg;

	j->dns_handle = 0;
	switch (r->status) {
	case DNS_OK:
		memcpy(j->hosts, r->hosts, r->n_hosts * sizeof(r->hosts[0]));
		j->n_hosts = r->n_hosts;
		j->mx_secure = r->secure;
		j->host_i = 0;
		job_next_host(j);
		return;
	case DNS_NULL_MX:
		job_fail_all(j, QUEUE_RCPT_FAILED, "5.1.10", "the domain "
		    "accepts no mail (null MX, RFC 7505)");
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		job_fail_all(j, QUEUE_RCPT_FAILED, "5.1.2", "the domain has "
		    "no mail server (no MX, A or AAAA record)");
		break;
	case DNS_TEMPFAIL:
	case DNS_BOGUS:
		job_fail_all(j, QUEUE_RCPT_PENDING, "4.4.3", r->status ==
		    DNS_BOGUS ? "DNSSEC validation of the MX lookup failed" :
		    "temporary DNS failure looking up the MX");
		break;
	}
	log_info("queue: id=%s domain=%s MX lookup: %s", j->a->env.queue_id,
	    j->domain, dns_status_name(r->status));
	job_done(j);
}

static void
job_set_auth(struct domain_job *j, const char *user, const char *password)
{
	if (user == NULL)
		return;
	j->auth_user = xstrdup(user);
	j->auth_password = xstrdup(password != NULL ? password : "");
}

/*
 * Where the domain's mail goes. The route for the domain (exact, longest
 * ".suffix", "*") overrides the global settings key by key: relay=mx
 * means MX delivery even with relay_host, relay=HOST[:PORT] that host,
 * tls= the policy, auth= the credentials. A relay host needs a verified
 * certificate unless its route says otherwise; the relay_auth_file
 * credentials only ever go to relay_host, never to a route's own host.
 */
static void
job_start(struct domain_job *j)
{
	struct queue_server *qs = j->a->qs;
	const struct queue_route *r = queue_routes_match(qs->routes, j->domain);
	bool route_tls = r != NULL && r->tls != QUEUE_ROUTE_TLS_GLOBAL;
	char why[128];

	if (r != NULL)
		queue_route_pattern(r, j->route, sizeof(j->route));
	else
		snprintf(j->route, sizeof(j->route), "none");
	if (r != NULL && r->relay == QUEUE_ROUTE_RELAY_HOST) {
		j->relay = true;
		snprintf(j->hosts[0].host, sizeof(j->hosts[0].host), "%s",
		    r->host);
		j->port = r->port;
		job_set_auth(j, r->auth_user, r->auth_password);
	} else if ((r == NULL || r->relay == QUEUE_ROUTE_RELAY_GLOBAL) &&
	    qs->cfg->relay_host != NULL) {
		j->relay = true;
		if (queue_routes_parse_relay(qs->cfg->relay_host,
		    strlen(qs->cfg->relay_host), j->hosts[0].host,
		    sizeof(j->hosts[0].host), &j->port, why, sizeof(why)) < 0) {
			snprintf(j->diag, sizeof(j->diag), "relay_host: %s",
			    why);
			job_fail_all(j, QUEUE_RCPT_PENDING, "4.3.5", j->diag);
			job_done(j);
			return;
		}
		if (r != NULL && r->auth_user != NULL)
			job_set_auth(j, r->auth_user, r->auth_password);
		else
			job_set_auth(j, qs->relay_user, qs->relay_password);
	}
	if (j->relay) {
		j->n_hosts = 1;
		j->tls = route_tls ? tls_policy_named(queue_route_tls_name(
		    r->tls)) : SMTP_TLS_VERIFY;
		log_debug("queue: id=%s domain=%s route=%s relay=%s:%u "
		    "policy=%s%s", j->a->env.queue_id, j->domain, j->route,
		    j->hosts[0].host, j->port, tls_policy_name(j->tls),
		    j->auth_user != NULL ? " auth" : "");
		job_next_host(j);
		return;
	}
	j->tls = tls_policy_named(route_tls ? queue_route_tls_name(r->tls) :
	    qs->cfg->outbound_tls);
	log_debug("queue: id=%s domain=%s route=%s relay=mx policy=%s",
	    j->a->env.queue_id, j->domain, j->route, tls_policy_name(j->tls));
	j->port = MX_PORT;
	j->dns_handle = dns_lookup_mx(qs->dns, j->domain, job_mx_cb, j);
}

/* ---- The attempt ------------------------------------------------------- */

static const char *
address_domain(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL ? at + 1 : "";
}

static struct domain_job *
attempt_job_for(struct queue_attempt *a, const char *domain)
{
	size_t i;

	for (i = 0; i < a->n_jobs; i++)
		if (strcasecmp(a->jobs[i].domain, domain) == 0)
			return &a->jobs[i];
	a->jobs = xreallocarray(a->jobs, a->n_jobs + 1, sizeof(*a->jobs));
	memset(&a->jobs[a->n_jobs], 0, sizeof(*a->jobs));
	a->jobs[a->n_jobs].a = a;
	snprintf(a->jobs[a->n_jobs].domain, sizeof(a->jobs[0].domain), "%s",
	    domain);
	return &a->jobs[a->n_jobs++];
}

/* Local recipients now; remote targets of local aliases join the list. */
static void
attempt_local(struct queue_attempt *a)
{
	char status[16], diag[512], **remote;
	size_t i, k, n_remote;

	for (i = 0; i < a->env.n_rcpts; i++) {
		struct queue_rcpt *r = &a->env.rcpts[i];

		if (r->state != QUEUE_RCPT_PENDING ||
		    !config_is_local_domain(a->qs->cfg,
		    address_domain(r->address)))
			continue;
		if (queue_deliver_local(a->qs, a->env.queue_id, r->address,
		    &remote, &n_remote, status, diag, sizeof(diag)) < 0) {
			rcpt_set(a, i, status[0] == '5' ? QUEUE_RCPT_FAILED :
			    QUEUE_RCPT_PENDING, NULL, status, diag);
			log_info("queue: id=%s to=<%s> local %s: %s",
			    a->env.queue_id, r->address, status[0] == '5' ?
			    "failed" : "deferred", diag);
			continue;
		}
		rcpt_set(a, i, QUEUE_RCPT_DELIVERED, NULL, status, diag);
		log_info("queue: id=%s to=<%s> delivered locally",
		    a->env.queue_id, r->address);
		for (k = 0; k < n_remote; k++) {
			if (a->env.n_rcpts < QUEUE_RECIPIENTS_MAX) {
				a->env.rcpts = xreallocarray(a->env.rcpts,
				    a->env.n_rcpts + 1, sizeof(*a->env.rcpts));
				memset(&a->env.rcpts[a->env.n_rcpts], 0,
				    sizeof(*a->env.rcpts));
				a->env.rcpts[a->env.n_rcpts++].address =
				    remote[k];
			} else
				free(remote[k]);
		}
		free(remote);
	}
}

void
queue_attempt_start(struct queue_server *qs, struct queue_msg *m)
{
	struct queue_attempt *a = xcalloc(1, sizeof(*a));
	char err[256];
	size_t i;

	a->qs = qs;
	a->m = m;
	a->msg_fd = -1;
	a->now = queue_now();
	m->attempt = a;
	qs->attempts++;		/* queue_attempt_finished counts it out */
	/* Out of the due heap while it runs; queue_attempt_finished puts
	 * it back with its next time. */
	queue_due_remove(&qs->due, m);
	if (queue_envelope_load(qs->queue_dir, m->id, &a->env, err,
	    sizeof(err)) < 0 ||
	    (a->msg_fd = queue_msg_open(qs, m->id, &a->msg_size,
	    &a->msg_offset)) < 0) {
		if (errno == ENOENT && a->msg_fd < 0 && a->env.n_rcpts == 0) {
			/* Removed meanwhile (queue delete, a finished run). */
			queue_attempt_free(a);
			queue_attempt_finished(qs, m, 0, true);
			return;
		}
		log_warnx("queue: id=%s cannot be read (%s); retrying later",
		    m->id, a->msg_fd < 0 && err[0] == '\0' ? strerror(errno) :
		    err);
		queue_attempt_free(a);
		queue_attempt_finished(qs, m, queue_now() +
		    qs->cfg->queue_retry_max, false);
		return;
	}
	/* Too old: what is still pending fails now. */
	if (a->now >= a->env.created + qs->cfg->queue_max_age)
		for (i = 0; i < a->env.n_rcpts; i++)
			if (a->env.rcpts[i].state == QUEUE_RCPT_PENDING)
				rcpt_set(a, i, QUEUE_RCPT_FAILED,
				    a->env.rcpts[i].remote, "4.4.7",
				    a->env.rcpts[i].diagnostic != NULL ?
				    a->env.rcpts[i].diagnostic :
				    "delivery time expired");
	attempt_local(a);
	for (i = 0; i < a->env.n_rcpts; i++) {
		const char *addr = a->env.rcpts[i].address;
		struct domain_job *j;

		if (a->env.rcpts[i].state != QUEUE_RCPT_PENDING ||
		    config_is_local_domain(qs->cfg, address_domain(addr)))
			continue;
		j = attempt_job_for(a, address_domain(addr));
		j->rcpt = xreallocarray(j->rcpt, j->n + 1, sizeof(*j->rcpt));
		j->addrs = xreallocarray(j->addrs, j->n + 1, sizeof(*j->addrs));
		j->rcpt[j->n] = i;
		j->addrs[j->n++] = addr;
	}
	if (a->n_jobs == 0) {
		queue_attempt_end(a);
		return;
	}
	/* A job may finish at once (a bad relay_host): the attempt must not
	 * end, and be freed, while this loop still runs. */
	a->starting = true;
	for (i = 0; i < a->n_jobs; i++)
		job_start(&a->jobs[i]);
	a->starting = false;
	if (a->n_done == a->n_jobs)
		queue_attempt_end(a);
}

void
queue_attempt_cancel(struct queue_attempt *a)
{
	struct queue_msg *m = a->m;
	struct queue_server *qs = a->qs;

	queue_attempt_free(a);
	queue_attempt_finished(qs, m, 0, false);
}
