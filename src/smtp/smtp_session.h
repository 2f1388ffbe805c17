/*
 * One SMTP server session (RFC 5321), as a state machine over a command
 * table; the io layer hands it lines and data, the disk threads make its
 * messages durable, and it answers 250 only after they have.
 */
#ifndef TEGAMI_SMTP_SESSION_H
#define TEGAMI_SMTP_SESSION_H

#include <sys/socket.h>

#include "smtp/smtp_server.h"

struct smtp_server;
struct smtp_session;
struct commit_job;

/* Starts a session on an accepted socket (takes ownership of fd). */
void smtp_session_start(struct smtp_server *srv, int fd,
    const struct sockaddr *sa, socklen_t salen, enum smtp_service service);

/* Shutdown: close now if idle, else after the current transaction. */
void smtp_session_shutdown(struct smtp_session *s);
/* Shutdown grace is over: abort any transaction not yet committing. */
void smtp_session_shutdown_now(struct smtp_session *s);

/* The session after s in its server's list, or NULL. */
struct smtp_session *smtp_session_next(struct smtp_session *s);

/* The disk threads finished a session's message (commit_pool callback). */
void smtp_session_commit_done(struct commit_job *job);

#endif
