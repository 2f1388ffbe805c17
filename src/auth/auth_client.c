/*
 * The front's side of the auth process (auth_client.h): password checks
 * as asynchronous requests over the front's SOCK_SEQPACKET socketpair, and
 * the account list assembled from the records the auth process pushes.
 */
#include "auth/auth_client.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/accounts.h"
#include "core/log.h"
#include "core/util.h"

/* An account list larger than this is refused (the auth process is
 * trusted, but a bug there must not exhaust the front's memory). */
#define AUTH_LIST_MAX (1024ULL * 1024 * 1024)

struct auth_pending {
	TAILQ_ENTRY(auth_pending) entry;
	uint64_t id;
	auth_result_cb cb;
	void *arg;
	struct event *timer;
	enum auth_result_code early;	/* answered before sending */
	bool answered_early;
	struct auth_client *ac;
};

TAILQ_HEAD(auth_pending_list, auth_pending);

struct auth_client {
	struct event_base *base;
	int fd;
	struct event *read_ev;
	struct auth_pending_list pending;
	uint64_t next_id;
	auth_accounts_cb accounts_cb;
	void *accounts_arg;
	unsigned char *record;		/* AUTH_RECORD_MAX bytes */

	/* The account list being assembled. */
	char *list;
	uint64_t list_generation;
	uint64_t list_users_len, list_total, list_received;
};

static void
auth_pending_free(struct auth_client *ac, struct auth_pending *p)
{
	TAILQ_REMOVE(&ac->pending, p, entry);
	event_free(p->timer);
	free(p);
}

static void
auth_pending_finish(struct auth_pending *p, enum auth_result_code code,
    unsigned delay_ms, const char *account)
{
	auth_result_cb cb = p->cb;
	void *arg = p->arg;

	auth_pending_free(p->ac, p);
	cb(arg, code, delay_ms, account);
}

static void
auth_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_pending *p = arg;

	(void)fd;
	(void)what;
	if (!p->answered_early)
		log_warnx("auth: no answer from the auth process within %d "
		    "seconds", AUTH_CLIENT_TIMEOUT_SECONDS);
	auth_pending_finish(p, p->answered_early ? p->early : AUTH_TEMPFAIL,
	    0, "");
}

static void
auth_client_result(struct auth_client *ac, const struct auth_result *r)
{
	struct auth_pending *p;
	char account[ACCOUNT_ADDRESS_MAX + 1];

	TAILQ_FOREACH(p, &ac->pending, entry)
		if (p->id == r->id && !p->answered_early)
			break;
	if (p == NULL)
		return;	/* cancelled, or meant for an earlier front */
	memcpy(account, r->account, sizeof(account));
	account[sizeof(account) - 1] = '\0';
	if (r->code > AUTH_TEMPFAIL)
		auth_pending_finish(p, AUTH_TEMPFAIL, 0, "");
	else
		auth_pending_finish(p, (enum auth_result_code)r->code,
		    r->delay_ms, r->code == AUTH_OK ? account : "");
}

static void
auth_client_list_done(struct auth_client *ac)
{
	struct account_table *table;
	char err[1024];

	if (accounts_parse("users", ac->list, (size_t)ac->list_users_len,
	    "aliases", ac->list + ac->list_users_len,
	    (size_t)(ac->list_total - ac->list_users_len), false, &table, err,
	    sizeof(err)) < 0)
		log_warnx("auth: account list from the auth process refused: "
		    "%s", err);
	else
		ac->accounts_cb(ac->accounts_arg, table);
	free(ac->list);
	ac->list = NULL;
}

static void
auth_client_accounts(struct auth_client *ac, const struct auth_accounts *a,
    size_t len)
{
	if (len < offsetof(struct auth_accounts, data) ||
	    a->data_len > AUTH_CHUNK_MAX ||
	    len != offsetof(struct auth_accounts, data) + a->data_len)
		return;
	if (a->offset == 0) {
		free(ac->list);
		ac->list = NULL;
		if (a->users_len > AUTH_LIST_MAX ||
		    a->aliases_len > AUTH_LIST_MAX - a->users_len) {
			log_warnx("auth: account list too large");
			return;
		}
		ac->list_generation = a->generation;
		ac->list_users_len = a->users_len;
		ac->list_total = a->users_len + a->aliases_len;
		ac->list_received = 0;
		ac->list = xmalloc((size_t)ac->list_total + 1);
	}
	if (ac->list == NULL || a->generation != ac->list_generation ||
	    a->offset != ac->list_received ||
	    a->data_len > ac->list_total - ac->list_received)
		return;	/* not the list being assembled: wait for the next */
	memcpy(ac->list + ac->list_received, a->data, a->data_len);
	ac->list_received += a->data_len;
	if (ac->list_received == ac->list_total)
		auth_client_list_done(ac);
}

static void
auth_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth_client *ac = arg;
	uint32_t type;
	ssize_t n;

	(void)what;
	for (;;) {
		n = recv(fd, ac->record, AUTH_RECORD_MAX, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* The parent holds the other end: this is not expected. */
			log_warn("auth: reading from the auth process");
			event_del(ac->read_ev);
			return;
		}
		if ((size_t)n < sizeof(type))
			continue;
		memcpy(&type, ac->record, sizeof(type));
		if (type == AUTH_MSG_RESULT &&
		    (size_t)n == sizeof(struct auth_result)) {
			struct auth_result r;

			memcpy(&r, ac->record, sizeof(r));
			auth_client_result(ac, &r);
		} else if (type == AUTH_MSG_ACCOUNTS)
			auth_client_accounts(ac,
			    (const struct auth_accounts *)(void *)ac->record,
			    (size_t)n);
	}
}

struct auth_client *
auth_client_new(struct event_base *base, int fd,
    auth_accounts_cb accounts_cb, void *arg)
{
	struct auth_client *ac = xcalloc(1, sizeof(*ac));
	struct auth_hello hello = { .type = AUTH_MSG_HELLO };

	ac->base = base;
	ac->fd = fd;
	ac->accounts_cb = accounts_cb;
	ac->accounts_arg = arg;
	ac->record = xmalloc(AUTH_RECORD_MAX);
	TAILQ_INIT(&ac->pending);
	/* Random ids: replies meant for a front that died in this slot are
	 * not taken for ours. */
	random_bytes(&ac->next_id, sizeof(ac->next_id));
	ac->read_ev = event_new(base, fd, EV_READ | EV_PERSIST, auth_read_cb,
	    ac);
	if (ac->read_ev == NULL || event_add(ac->read_ev, NULL) < 0)
		fatalx("auth: event_add failed");
	if (send(fd, &hello, sizeof(hello), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_warn("auth: asking the auth process for the accounts");
	return ac;
}

void
auth_client_free(struct auth_client **acp)
{
	struct auth_client *ac = *acp;
	struct auth_pending *p;

	if (ac == NULL)
		return;
	while ((p = TAILQ_FIRST(&ac->pending)) != NULL)
		auth_pending_free(ac, p);
	event_free(ac->read_ev);
	close(ac->fd);
	free(ac->record);
	free(ac->list);
	free(ac);
	*acp = NULL;
}

uint64_t
auth_client_check(struct auth_client *ac, const char *service,
    const char *ip, const char *user, const char *password,
    auth_result_cb cb, void *arg)
{
	struct auth_check req;
	struct auth_pending *p = xcalloc(1, sizeof(*p));
	struct timeval tv = { .tv_sec = AUTH_CLIENT_TIMEOUT_SECONDS };
	ssize_t n;

	if (++ac->next_id == 0)
		ac->next_id = 1;
	p->id = ac->next_id;
	p->cb = cb;
	p->arg = arg;
	p->ac = ac;
	p->timer = evtimer_new(ac->base, auth_timeout_cb, p);
	if (p->timer == NULL)
		fatalx("auth: evtimer_new failed");
	TAILQ_INSERT_TAIL(&ac->pending, p, entry);

	memset(&req, 0, sizeof(req));
	req.type = AUTH_MSG_CHECK;
	req.id = p->id;
	snprintf(req.service, sizeof(req.service), "%s", service);
	snprintf(req.ip, sizeof(req.ip), "%s", ip);
	snprintf(req.user, sizeof(req.user), "%s", user);
	snprintf(req.password, sizeof(req.password), "%s", password);
	do
		n = send(ac->fd, &req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	explicit_bzero(&req, sizeof(req));
	if (n != (ssize_t)sizeof(struct auth_check)) {
		/* The auth process is far behind or gone: answer soon, not
		 * from within this call. */
		log_warn("auth: sending a request to the auth process");
		p->answered_early = true;
		p->early = AUTH_TEMPFAIL;
		tv.tv_sec = 0;
	}
	evtimer_add(p->timer, &tv);
	return p->id;
}

void
auth_client_cancel(struct auth_client *ac, uint64_t handle)
{
	struct auth_pending *p;

	TAILQ_FOREACH(p, &ac->pending, entry)
		if (p->id == handle) {
			auth_pending_free(ac, p);
			return;
		}
}
