/*
 * One POP3 client connection (RFC 1939): the AUTHORIZATION state (CAPA,
 * STLS, USER/PASS, AUTH PLAIN), the TRANSACTION state over a snapshot of
 * the user's Maildir, and the UPDATE state at QUIT. Shared by
 * pop3_session.c (life cycle, commands before login), pop3_login.c
 * (passwords, the mailbox lock) and pop3_mailbox.c (the transaction).
 */
#ifndef TEGAMI_POP3_SESSION_H
#define TEGAMI_POP3_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "auth/accounts.h"
#include "auth/sasl.h"
#include "auth/sasl_exchange.h"
#include "pop3/pop3_parse.h"
#include "pop3/pop3_server.h"
#include "store/commit.h"

/* Input buffered from the peer: a SASL line is the longest thing read. */
#define POP3_INPUT_MAX (POP3_SASL_LINE_MAX + 4096)
/* RETR and TOP send a file in pieces of this size ... */
#define POP3_SEND_CHUNK (64 * 1024)
/* ... whenever no more than this is still waiting for the socket. */
#define POP3_SEND_LOW_WATER (64 * 1024)

enum pop3_state {
	POP3_STATE_AUTHORIZATION,	/* RFC 1939 4 */
	POP3_STATE_SASL,		/* AUTH: waiting for a "+ " response */
	POP3_STATE_CHECKING,		/* the auth process has the password */
	POP3_STATE_TRANSACTION,		/* RFC 1939 5 */
	POP3_STATE_SENDING,		/* RETR/TOP streaming a big message */
	POP3_STATE_DISK,		/* a disk thread lists the mailbox
					 * (login) or updates it (QUIT) */
	POP3_STATE_CLOSING,
};

/* Per-message marks of the session, in pop3_session.marks[]. */
#define POP3_MARK_DELETED	0x01	/* DELE, undone by RSET */
#define POP3_MARK_RETRIEVED	0x02	/* RETR: marked seen at QUIT */

struct maildir_snapshot;
struct io;

struct pop3_session {
	TAILQ_ENTRY(pop3_session) entry;
	struct pop3_server *srv;
	struct io *io;
	enum pop3_service service;
	enum pop3_state state;
	struct sockaddr_storage peer;
	char id[17];
	unsigned errors;		/* towards cfg->pop3_error_limit */

	/* AUTHORIZATION */
	char user[SASL_NAME_MAX + 1];	/* from USER, for PASS */
	bool have_user;
	uint64_t auth_handle;		/* auth_client_check in flight */
	struct sasl_exchange sasl;	/* POP3_STATE_SASL: PLAIN or LOGIN */

	/* TRANSACTION */
	char account[ACCOUNT_ADDRESS_MAX + 1];
	int lock_fd;			/* maildir_pop3_lock, -1 */
	struct maildir_snapshot *snap;
	uint8_t *marks;			/* POP3_MARK_*, one per message */
	size_t n_deleted;
	uint64_t deleted_size;
	unsigned n_retrieved;

	/* POP3_STATE_SENDING */
	int send_fd;
	uint64_t send_left;		/* file bytes not yet read */
	struct pop3_stuff stuff;

	/*
	 * POP3_STATE_DISK: the work a disk thread does for the session
	 * (pop3_disk_start). Until it is done the session is not freed nor
	 * its mailbox closed: a lost connection or a shutdown waits.
	 */
	struct commit_job disk;
	void (*disk_then)(struct pop3_session *s);
	bool disk_orphaned;		/* the connection ended meanwhile */
	const char *close_after_disk;	/* pop3_close asked meanwhile */
	struct pop3_disk_work {
		/* login: in */
		char *path;
		unsigned max_messages;
		/* login: out */
		struct maildir_snapshot *snap;
		int error;
		/* QUIT: out */
		size_t seen, seen_failed;
		int seen_error;
		long removed;
		int remove_error;
	} work;
};

/* Starts a session on an accepted connection (or refuses it). */
void pop3_session_start(struct pop3_server *srv, int fd,
    const struct sockaddr *sa, socklen_t salen, enum pop3_service service);
/* Server shutdown: "-ERR [SYS/TEMP] ..." and close; nothing is deleted. */
void pop3_session_shutdown(struct pop3_session *s);
struct pop3_session *pop3_session_next(struct pop3_session *s);

/* ---- Inside the session's files ---- */

struct tegami_config *pop3_cfg(const struct pop3_session *s);
void pop3_set_state(struct pop3_session *s, enum pop3_state state);
void pop3_reply(struct pop3_session *s, const char *line);
/*
 * An -ERR reply that counts towards pop3_error_limit. Returns false when
 * the session was closed for too many errors.
 */
bool pop3_reply_error(struct pop3_session *s, const char *line);
/* Sends reply (if not NULL) and closes after it; no UPDATE. */
void pop3_close(struct pop3_session *s, const char *reply);
/*
 * Runs run(&s->disk) on a disk thread (POP3_STATE_DISK: input waits),
 * then then(s) on the event loop, which sets the next state and replies;
 * with s->disk_orphaned (the connection is gone) it only logs, and the
 * session is freed after it.
 */
void pop3_disk_start(struct pop3_session *s,
    void (*run)(struct commit_job *job),
    void (*then)(struct pop3_session *s));

/* pop3_login.c */
bool pop3_login_allowed(const struct pop3_session *s);
void pop3_do_user(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_pass(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_auth(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_apop(struct pop3_session *s, const struct pop3_command *cmd);
/* POP3_STATE_SASL: takes one response line; false when none is ready. */
bool pop3_sasl_input(struct pop3_session *s);
/* Cancels a check in flight and forgets what USER said. */
void pop3_login_abort(struct pop3_session *s);

/* pop3_mailbox.c */
/*
 * Locks and lists the account's Maildir after a successful login and
 * replies +OK (TRANSACTION) or -ERR [IN-USE] / [SYS/...] (back to
 * AUTHORIZATION).
 */
void pop3_mailbox_open(struct pop3_session *s);
void pop3_mailbox_close(struct pop3_session *s);
void pop3_do_stat(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_list(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_uidl(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_retr(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_top(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_dele(struct pop3_session *s, const struct pop3_command *cmd);
void pop3_do_rset(struct pop3_session *s, const struct pop3_command *cmd);
/* QUIT in TRANSACTION: the UPDATE state (RFC 1939 6), then close. */
void pop3_mailbox_update(struct pop3_session *s);
/* POP3_STATE_SENDING: the socket took some output; send more. */
void pop3_send_more(void *arg);

#endif
