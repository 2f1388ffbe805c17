/*
 * io layer over libevent bufferevents: bounded line and block input,
 * output queueing, read timeouts, close after flush.
 */
#include "net/io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/ssl.h>

#include "core/log.h"
#include "core/util.h"

#define IO_LINE_BUFFER_MAX 4096	/* largest line any protocol accepts */

struct io {
	struct bufferevent *bev;
	struct evbuffer *out;	/* replies not yet handed to the socket */
	bool in_input_cb;	/* replies are flushed when it returns */
	struct io_callbacks cb;
	void *arg;
	bool discarding;	/* skipping the rest of an over-long line */
	bool closing;
	bool lingering;		/* output flushed, waiting for the peer's EOF */
	bool paused;
	bool held;		/* output and input wait for hold_timer */
	bool tls;		/* bev is a TLS filter over the socket's */
	bool raw_cb_added;	/* io_raw_drained_cb is on the socket's output */
	size_t input_max;
	unsigned timeout;	/* read timeout, seconds */
	unsigned write_timeout;	/* seconds output may wait unsent */
	bool close_pending;	/* io_close_after_flush came while held */
	struct event *hold_timer;
	uint64_t hold_until;
	void (*drain_cb)(void *arg);	/* io_set_drain_cb */
	size_t drain_low_water;
	/* Under TLS: the socket's output is watched, and drain_cb runs from
	 * this event, never from inside libevent's buffer callbacks. */
	struct evbuffer_cb_entry *raw_drain_entry;
	struct event *drain_event;	/* monotonic_ms when the hold ends */
	char peer[INET6_ADDRSTRLEN];
	char line[IO_LINE_BUFFER_MAX + 1];
};

static void io_flush(struct io *io);
static void io_read_cb(struct bufferevent *bev, void *arg);
static void io_write_cb(struct bufferevent *bev, void *arg);
static void io_raw_drained_cb(struct evbuffer *buf,
    const struct evbuffer_cb_info *info, void *arg);
static void io_event_cb(struct bufferevent *bev, short what, void *arg);

static void
io_fill_peer(struct io *io, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	strcpy(io->peer, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    io->peer, sizeof(io->peer));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    io->peer, sizeof(io->peer));
}

struct io *
io_new(struct event_base *base, int fd, size_t input_max,
    const struct io_callbacks *cb, void *arg)
{
	struct io *io = xcalloc(1, sizeof(*io));

	io->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	io->out = evbuffer_new();
	if (io->bev == NULL || io->out == NULL)
		fatalx("bufferevent_socket_new failed");
	io->cb = *cb;
	io->arg = arg;
	io->input_max = input_max;
	io_fill_peer(io, fd);
	bufferevent_setwatermark(io->bev, EV_READ, 0, input_max);
	/* Fewer, larger reads for message data (the default is 16 KiB). */
	bufferevent_set_max_single_read(io->bev, 65536);
	bufferevent_setcb(io->bev, io_read_cb, NULL, io_event_cb, io);
	bufferevent_enable(io->bev, EV_READ | EV_WRITE);
	return io;
}

void
io_free(struct io **iop)
{
	struct io *io = *iop;

	if (io == NULL)
		return;
	if (io->hold_timer != NULL)
		event_free(io->hold_timer);
	io_set_drain_cb(io, 0, NULL);
	if (io->drain_event != NULL)
		event_free(io->drain_event);
	bufferevent_free(io->bev);
	evbuffer_free(io->out);
	free(io);
	*iop = NULL;
}

void
io_set_timeout(struct io *io, unsigned seconds)
{
	struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
	struct timeval wtv = { .tv_sec = io->write_timeout, .tv_usec = 0 };

	io->timeout = seconds;
	bufferevent_set_timeouts(io->bev, seconds ? &tv : NULL,
	    io->write_timeout ? &wtv : NULL);
}

void
io_set_write_timeout(struct io *io, unsigned seconds)
{
	io->write_timeout = seconds;
	io_set_timeout(io, io->timeout);
}

/*
 * Sends queued replies. When the socket has nothing else pending, they go
 * out with one writev() straight away; only what the kernel does not take
 * goes through the bufferevent, which would otherwise arm and disarm a
 * write event (two epoll_ctl calls) for every reply.
 */
static void
io_flush(struct io *io)
{
	struct evbuffer *bev_out = bufferevent_get_output(io->bev);

	if (evbuffer_get_length(io->out) == 0 || io->held)
		return;
	/* A drain callback needs the bufferevent's write event. */
	if (!io->tls && io->drain_cb == NULL &&
	    evbuffer_get_length(bev_out) == 0) {
		while (evbuffer_get_length(io->out) > 0) {
			if (evbuffer_write(io->out, bufferevent_getfd(io->bev)) <= 0)
				break;	/* EAGAIN or an error: libevent sees it */
		}
		if (evbuffer_get_length(io->out) == 0)
			return;
	}
	evbuffer_add_buffer(bev_out, io->out);
}

static void
io_read_cb(struct bufferevent *bev, void *arg)
{
	struct io *io = arg;

	(void)bev;
	if (io->closing) {
		evbuffer_drain(bufferevent_get_input(io->bev),
		    evbuffer_get_length(bufferevent_get_input(io->bev)));
		return;
	}
	if (io->paused)
		return;
	io->in_input_cb = true;
	io->cb.input(io->arg);
	io->in_input_cb = false;
	/* One write for all the replies to a pipelined group (RFC 2920). */
	io_flush(io);
}

static void
io_write_cb(struct bufferevent *bev, void *arg)
{
	struct io *io = arg;
	struct timeval tv = { .tv_sec = 2, .tv_usec = 0 };

	(void)bev;
	if (!io->closing && io->drain_cb != NULL) {
		if (io_output_pending(io) <= io->drain_low_water)
			io->drain_cb(io->arg);
		return;
	}
	if (!io->closing || io->lingering)
		return;
	if (io->tls) {
		/* The TLS filter has handed its records to the socket's
		 * bufferevent; wait until that one has sent them too. */
		struct evbuffer *raw = bufferevent_get_output(
		    bufferevent_get_underlying(io->bev));

		if (evbuffer_get_length(raw) > 0) {
			if (!io->raw_cb_added) {
				io->raw_cb_added = true;
				evbuffer_add_cb(raw, io_raw_drained_cb, io);
			}
			return;
		}
	}
	/*
	 * Everything is sent. Half-close and read until the peer closes (or
	 * briefly), because closing with unread input makes the kernel send
	 * a reset that can destroy the last reply before the peer reads it.
	 */
	io->lingering = true;
	shutdown(bufferevent_getfd(io->bev), SHUT_WR);
	bufferevent_set_timeouts(io->bev, &tv, NULL);
	bufferevent_enable(io->bev, EV_READ);
}

static void
io_raw_drained_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct io *io = arg;

	(void)info;
	if (evbuffer_get_length(buf) == 0 && io->closing && !io->lingering)
		io_write_cb(io->bev, io);
}

static void
io_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct io *io = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		if (io->closing) {
			io->cb.event(io->arg, IO_EVENT_CLOSED);
			return;
		}
		io->cb.event(io->arg, IO_EVENT_TIMEOUT);
	} else if (what & BEV_EVENT_EOF)
		io->cb.event(io->arg, io->closing ? IO_EVENT_CLOSED :
		    IO_EVENT_EOF);
	else if (what & BEV_EVENT_ERROR)
		io->cb.event(io->arg, io->closing ? IO_EVENT_CLOSED :
		    IO_EVENT_ERROR);
}

enum io_line_result
io_get_line(struct io *io, size_t max, char **line_r, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(io->bev);
	struct evbuffer_ptr eol;
	size_t avail, len;

	if (max > IO_LINE_BUFFER_MAX)
		max = IO_LINE_BUFFER_MAX;
	for (;;) {
		avail = evbuffer_get_length(in);
		if (avail == 0)
			return IO_LINE_NONE;
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (io->discarding) {
			if (eol.pos < 0) {
				evbuffer_drain(in, avail);
				return IO_LINE_NONE;
			}
			evbuffer_drain(in, (size_t)eol.pos + 1);
			io->discarding = false;
			continue;
		}
		if (eol.pos < 0) {
			if (avail < max)
				return IO_LINE_NONE;
			/* No LF within max octets: the line is too long. */
			evbuffer_drain(in, avail);
			io->discarding = true;
			return IO_LINE_TOO_LONG;
		}
		len = (size_t)eol.pos + 1;	/* with the LF */
		if (len > max) {
			evbuffer_drain(in, len);
			return IO_LINE_TOO_LONG;
		}
		evbuffer_remove(in, io->line, len);
		len--;				/* the LF */
		if (len > 0 && io->line[len - 1] == '\r')
			len--;
		io->line[len] = '\0';
		*line_r = io->line;
		*len_r = len;
		return IO_LINE_OK;
	}
}

size_t
io_input_length(struct io *io)
{
	return evbuffer_get_length(bufferevent_get_input(io->bev));
}

const char *
io_input_peek(struct io *io, size_t *len_r)
{
	struct evbuffer_iovec v;

	if (evbuffer_peek(bufferevent_get_input(io->bev), -1, NULL, &v, 1) < 1) {
		*len_r = 0;
		return NULL;
	}
	*len_r = v.iov_len;
	return v.iov_base;
}

void
io_input_drain(struct io *io, size_t n)
{
	evbuffer_drain(bufferevent_get_input(io->bev), n);
}

void
io_write(struct io *io, const char *buf, size_t len)
{
	evbuffer_add(io->out, buf, len);
	if (!io->in_input_cb)
		io_flush(io);
}

void
io_printf(struct io *io, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(io->out, fmt, ap);
	va_end(ap);
	if (!io->in_input_cb)
		io_flush(io);
}

void
io_reply(struct io *io, const char *line)
{
	evbuffer_add(io->out, line, strlen(line));
	evbuffer_add(io->out, "\r\n", 2);
	if (!io->in_input_cb)
		io_flush(io);
}

static void
io_drain_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;

	(void)fd;
	(void)what;
	if (io->drain_cb != NULL && !io->closing &&
	    io_output_pending(io) <= io->drain_low_water)
		io->drain_cb(io->arg);
}

/* The socket's output under the TLS filter shrank or grew. */
static void
io_raw_drain_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct io *io = arg;

	(void)buf;
	if (info->n_deleted > 0 && io->drain_cb != NULL &&
	    io_output_pending(io) <= io->drain_low_water)
		event_active(io->drain_event, EV_TIMEOUT, 0);
}

void
io_set_drain_cb(struct io *io, size_t low_water, void (*cb)(void *arg))
{
	io->drain_cb = cb;
	io->drain_low_water = low_water;
	bufferevent_setwatermark(io->bev, EV_WRITE, cb != NULL ? low_water : 0,
	    0);
	bufferevent_setcb(io->bev, io_read_cb, cb != NULL ? io_write_cb : NULL,
	    io_event_cb, io);
	if (!io->tls)
		return;
	if (cb != NULL && io->raw_drain_entry == NULL) {
		if (io->drain_event == NULL) {
			io->drain_event = event_new(bufferevent_get_base(
			    io->bev), -1, 0, io_drain_event_cb, io);
			if (io->drain_event == NULL)
				fatalx("event_new failed");
		}
		io->raw_drain_entry = evbuffer_add_cb(bufferevent_get_output(
		    bufferevent_get_underlying(io->bev)), io_raw_drain_cb, io);
		if (io->raw_drain_entry == NULL)
			fatalx("evbuffer_add_cb failed");
	} else if (cb == NULL && io->raw_drain_entry != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_output(
		    bufferevent_get_underlying(io->bev)), io->raw_drain_entry);
		io->raw_drain_entry = NULL;
		if (io->drain_event != NULL)
			event_del(io->drain_event);
	}
}

size_t
io_output_pending(struct io *io)
{
	size_t n = evbuffer_get_length(io->out) +
	    evbuffer_get_length(bufferevent_get_output(io->bev));

	/* Under TLS the encrypted records wait in the socket's own
	 * bufferevent, below the filter. */
	if (io->tls)
		n += evbuffer_get_length(bufferevent_get_output(
		    bufferevent_get_underlying(io->bev)));
	return n;
}

void
io_pause(struct io *io)
{
	if (io->paused)
		return;
	io->paused = true;
	bufferevent_disable(io->bev, EV_READ);
}

void
io_resume(struct io *io)
{
	if (io->closing)
		return;
	/* Enabling also restarts reading after a read timeout disabled it. */
	if (io->paused || !(bufferevent_get_enabled(io->bev) & EV_READ)) {
		io->paused = false;
		bufferevent_enable(io->bev, EV_READ);
	}
	/* Input that arrived while paused must not wait for more bytes. */
	if (evbuffer_get_length(bufferevent_get_input(io->bev)) > 0)
		bufferevent_trigger(io->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
}

void
io_close_after_flush(struct io *io)
{
	struct timeval tv = { .tv_sec = 30, .tv_usec = 0 };

	if (io->closing)
		return;
	if (io->held) {
		io->close_pending = true;
		return;
	}
	io_set_drain_cb(io, 0, NULL);
	io_flush(io);
	io->closing = true;
	/* A peer that never reads must not hold the session forever. */
	bufferevent_set_timeouts(io->bev, NULL, &tv);
	bufferevent_setcb(io->bev, io_read_cb, io_write_cb, io_event_cb, io);
	bufferevent_enable(io->bev, EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(io->bev)) == 0)
		bufferevent_trigger(io->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
}

int
io_start_tls(struct io *io, SSL *ssl)
{
	struct bufferevent *tls;
	struct evbuffer *in = bufferevent_get_input(io->bev);

	if (io->tls || io->closing) {
		SSL_free(ssl);
		return -1;
	}
	/* The reply that asked for TLS goes out in plaintext first. */
	io_flush(io);
	evbuffer_add_buffer(bufferevent_get_output(io->bev), io->out);
	/*
	 * RFC 3207 4.2, CVE-2011-0411: whatever the client sent after the
	 * command, before the handshake, must not be read as if it had come
	 * over TLS (Postfix's vstream_fpurge).
	 */
	evbuffer_drain(in, evbuffer_get_length(in));
	io->discarding = false;
	tls = bufferevent_openssl_filter_new(bufferevent_get_base(io->bev),
	    io->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		return -1;
	}
	/* A peer that vanishes without close_notify is an error, not EOF. */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 0);
	io->bev = tls;
	io->tls = true;
	bufferevent_setwatermark(tls, EV_READ, 0, io->input_max);
	bufferevent_setcb(tls, io_read_cb, NULL, io_event_cb, io);
	io_set_timeout(io, io->timeout);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	return 0;
}

bool
io_is_tls(const struct io *io)
{
	return io->tls;
}

int
io_tls_info(const struct io *io, char *out, size_t outsize)
{
	SSL *ssl;

	if (!io->tls || (ssl = bufferevent_openssl_get_ssl(io->bev)) == NULL)
		return -1;
	return path_join(out, outsize, "%s with cipher %s (%d bits)",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl),
	    SSL_get_cipher_bits(ssl, NULL));
}

static void
io_hold_done(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;

	(void)fd;
	(void)what;
	io->held = false;
	if (io->close_pending) {
		io->close_pending = false;
		io_close_after_flush(io);
		return;
	}
	io_flush(io);
	if (!io->paused) {
		bufferevent_enable(io->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_input(io->bev)) > 0)
			bufferevent_trigger(io->bev, EV_READ,
			    BEV_TRIG_IGNORE_WATERMARKS |
			    BEV_TRIG_DEFER_CALLBACKS);
	}
}

void
io_hold(struct io *io, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
	    .tv_usec = (ms % 1000) * 1000 };

	if (ms == 0 || io->closing)
		return;
	/* Held already: only ever lengthen the hold, never cut it short. */
	if (io->held && monotonic_ms() + ms <= io->hold_until)
		return;
	io->hold_until = monotonic_ms() + ms;
	if (io->hold_timer == NULL) {
		io->hold_timer = evtimer_new(bufferevent_get_base(io->bev),
		    io_hold_done, io);
		if (io->hold_timer == NULL)
			fatalx("evtimer_new failed");
	}
	io->held = true;
	bufferevent_disable(io->bev, EV_READ);
	evtimer_add(io->hold_timer, &tv);
}

bool
io_held(const struct io *io)
{
	return io->held;
}

const char *
io_peer_address(struct io *io)
{
	return io->peer;
}
