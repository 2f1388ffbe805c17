/*
 * The io layer between a socket and a protocol session (STYLE.md rule 1):
 * it owns the descriptor, the bounded input and output buffers and the
 * timeouts, and hands the session whole lines or raw blocks of input.
 * Built on libevent bufferevents so that TLS can be slid in underneath
 * without the session noticing.
 */
#ifndef TEGAMI_IO_H
#define TEGAMI_IO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct io;
struct ssl_st;

enum io_event {
	IO_EVENT_EOF = 1,	/* the peer closed its side */
	IO_EVENT_ERROR,		/* a read or write error */
	IO_EVENT_TIMEOUT,	/* no input for the read timeout */
	IO_EVENT_CLOSED,	/* io_close_after_flush finished */
};

struct io_callbacks {
	/* New input is buffered: take lines or blocks until none is left. */
	void (*input)(void *arg);
	/* An event of enum io_event; the io must then be freed by the owner
	 * (the session), except after IO_EVENT_TIMEOUT where it may write a
	 * reply and close. */
	void (*event)(void *arg, enum io_event ev);
};

/*
 * Takes ownership of the connected socket fd. input_max bounds the bytes
 * buffered from the peer: reading stops while that much is waiting.
 */
struct io *io_new(struct event_base *base, int fd, size_t input_max,
    const struct io_callbacks *cb, void *arg);
/* Closes the socket at once and frees; *iop becomes NULL. */
void io_free(struct io **iop);

/* Read timeout in seconds (0: none); restarted by every byte read. */
void io_set_timeout(struct io *io, unsigned seconds);
/*
 * Write timeout in seconds (0: none, the default): output that waits that
 * long without the peer taking a byte ends in IO_EVENT_TIMEOUT, so a
 * client that stops reading cannot hold its session for ever.
 */
void io_set_write_timeout(struct io *io, unsigned seconds);

enum io_line_result {
	IO_LINE_NONE = 0,	/* no complete line buffered yet */
	IO_LINE_OK,		/* *line_r, *len_r: a line without CR LF */
	IO_LINE_TOO_LONG,	/* a line exceeded max: it is being discarded
				 * up to its LF; reported once per line */
};

/*
 * Takes the next line ending in LF (an optional CR before it is removed).
 * The line is copied into a buffer owned by the io and stays valid until
 * the next io call. max counts the line's octets with CR LF.
 */
enum io_line_result io_get_line(struct io *io, size_t max, char **line_r,
    size_t *len_r);

/* Bytes of input buffered and not yet taken. */
size_t io_input_length(struct io *io);
/* The first contiguous run of buffered input (may be shorter than
 * io_input_length), and taking n bytes of it. */
const char *io_input_peek(struct io *io, size_t *len_r);
void io_input_drain(struct io *io, size_t n);

/* Queues output; it is sent when the input callback returns, or at once
 * when called from elsewhere (a timer, a disk-thread completion). */
void io_write(struct io *io, const char *buf, size_t len);
void io_printf(struct io *io, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Queues one reply line and its CR LF. */
void io_reply(struct io *io, const char *line);

/*
 * Streaming output (a POP3 RETR of a big message): cb runs once the output
 * queued so far has shrunk to low_water bytes or less, so that the
 * producer can add the next piece without buffering a whole file. NULL
 * cb turns it off. The callback may write, close or free the io.
 */
void io_set_drain_cb(struct io *io, size_t low_water, void (*cb)(void *arg));
/* Bytes of output queued and not yet handed to the kernel. */
size_t io_output_pending(struct io *io);

/* Stops or restarts delivering input. io_resume also delivers input
 * that was buffered meanwhile, and re-arms reading after a timeout. */
void io_pause(struct io *io);
void io_resume(struct io *io);

/*
 * Holds back the queued output and stops reading for ms milliseconds (a
 * tarpit for clients that make errors, a failed login's delay); then sends
 * the output and goes on reading. A hold in progress is only lengthened. The owner should stop taking input while io_held() is true.
 */
void io_hold(struct io *io, unsigned ms);
bool io_held(const struct io *io);

/* Sends what is queued, then reports IO_EVENT_CLOSED; input is ignored
 * from now on. */
void io_close_after_flush(struct io *io);

/*
 * Starts a server-side TLS handshake on the connection (STARTTLS, or at
 * once for implicit TLS), taking ownership of ssl. Output queued so far is
 * sent in plaintext first; buffered input is thrown away (RFC 3207 4.2:
 * nothing sent before the handshake may count). From then on lines and
 * blocks are the decrypted stream. Returns 0, or -1 (ssl freed).
 */
int io_start_tls(struct io *io, struct ssl_st *ssl);
bool io_is_tls(const struct io *io);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits)"; -1 if no TLS. */
int io_tls_info(const struct io *io, char *out, size_t outsize);

/* The peer's address as text ("192.0.2.1", "2001:db8::1"). */
const char *io_peer_address(struct io *io);

#endif
