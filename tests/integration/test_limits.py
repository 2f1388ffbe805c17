# Every read from the network is bounded (security-tests.md tests 14, 18):
# recipients per message, pipelined recipient floods, connections per IP
# and in total, idle and slow-data timeouts, many idle sockets.
import selectors
import socket
import threading
import time
import uuid

import tegami_harness as th
from tegami_harness import expect, queued_id

RSS_MAX_KB = 200 * 1024
TIMEOUT_421 = "421 4.4.2 %s Error: timeout exceeded" % th.HOSTNAME
TOO_MANY = "421 4.7.0 %s Too many connections" % th.HOSTNAME


def token():
    return "T" + uuid.uuid4().hex


def test_recipient_limit_default_100(server):
    tok = token()
    msg = b"Subject: " + tok.encode() + b"\r\n\r\nmany\r\n"
    with server.connect() as c:
        c.ehlo()
        cmds = b"MAIL FROM:<a@ext.test>\r\n" + b"".join(
            b"RCPT TO:<alice+r%d@local.test>\r\n" % i for i in range(102))
        c.send(cmds)
        rs = c.replies(103)
        expect(rs[0], "250 2.1.0")
        for r in rs[1:101]:
            assert r.lines == ["250 2.1.5 Ok"], r
        for r in rs[101:]:
            assert r.lines == ["452 4.5.3 Too many recipients"], r
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(msg))
        queued_id(c.reply())
    found = th.files_containing(server.dir, tok)
    assert len(found) == 1
    assert found[0].startswith(server.maildir("alice@local.test"))


def test_recipient_limit_setting_and_distinct_mailboxes(server_factory):
    srv = server_factory(["recipient_limit = 2"])
    tok = token()
    with srv.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5")
        expect(c.cmd("RCPT TO:<bob@local.test>"), "250 2.1.5")
        expect(c.cmd("RCPT TO:<carol@local.test>"), "452 4.5.3")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(b"Subject: " + tok.encode() + b"\r\n\r\nx\r\n"))
        queued_id(c.reply())
    assert len(th.files_containing(srv.dir, tok)) == 2
    assert th.files_containing(srv.maildir("carol@local.test"), tok) == []


def test_alias_depth_max(server_factory):
    # all -> staff -> alice is two levels deep
    srv = server_factory(["alias_depth_max = 1"])
    with srv.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<staff@local.test>"), "250 2.1.5")
        expect(c.cmd("RCPT TO:<all@local.test>"), "550 5.4.6")
        expect(c.cmd("RCPT TO:<loop1@local.test>"), "550 5.4.6")


class Reader(threading.Thread):
    """Collects everything a socket receives until EOF or error."""

    def __init__(self, sock, limit=60):
        super().__init__(daemon=True)
        self.sock = sock
        self.data = b""
        self.limit = limit

    def run(self):
        deadline = time.monotonic() + self.limit
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.1, deadline - time.monotonic()))
                b = self.sock.recv(65536)
            except OSError:
                return
            if not b:
                return
            self.data += b


def _flood(c, n):
    cmds = [b"RCPT TO:<alice+f%d@local.test>\r\n" % i for i in range(n)]
    rd = Reader(c.sock)
    rd.start()
    try:
        for i in range(0, n, 500):
            c.sock.sendall(b"".join(cmds[i:i + 500]))
    except OSError:
        pass            # the server may close after its 421
    return rd


def test_rcpt_flood_error_limit(server):
    with server.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        with th.RssMonitor(server) as mon:
            rd = _flood(c, 10000)
            rd.join(20)
            assert not rd.is_alive(), (
                "no 421 and close after %d replies; last: %r" % (
                    rd.data.count(b"\r\n"), rd.data[-100:]))
        lines = rd.data.split(b"\r\n")
        assert lines[-1] == b""
        lines = lines[:-1]
        assert lines[:100] == [b"250 2.1.5 Ok"] * 100
        # An honest client gets 452 for the extra recipients and sends
        # them again later, so the first 1000 extra ones are no error (as
        # Postfix's smtpd_recipient_overshoot_limit); past that each one
        # counts, and smtp_error_limit (20) of them end in 421 and close.
        overshoot, error_limit = 1000, 20
        extra = overshoot + error_limit
        assert lines[100:100 + extra] == (
            [b"452 4.5.3 Too many recipients"] * extra)
        assert lines[100 + extra:] == [("421 4.7.0 %s Error: too many errors"
                                        % th.HOSTNAME).encode()]
    assert mon.max_kb < RSS_MAX_KB


def test_rcpt_flood_10000_accepted_bounded_memory(server_factory):
    srv = server_factory(["recipient_limit = 100000"])
    tok = token()
    with srv.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        with th.RssMonitor(srv) as mon:
            n = 10000
            rd = Reader(c.sock)
            rd.start()
            data = b"".join(b"RCPT TO:<alice+f%d@local.test>\r\n" % i
                            for i in range(n))
            c.sock.sendall(data)
            deadline = time.monotonic() + 60
            while rd.data.count(b"\r\n") < n and \
                    time.monotonic() < deadline and rd.is_alive():
                time.sleep(0.05)
        assert rd.data.count(b"\r\n") == n
        assert rd.data == b"250 2.1.5 Ok\r\n" * n
        rd.join(0)
        # the Reader still owns the socket; stop it by finishing the session
        c.sock.sendall(b"DATA\r\n")
        wait = time.monotonic() + th.HANG
        while b"354 " not in rd.data and time.monotonic() < wait:
            time.sleep(0.02)
        assert b"354 " in rd.data
        c.sock.sendall(th.dot_stuff(b"Subject: " + tok.encode() +
                                    b"\r\n\r\nflood\r\n") + b"QUIT\r\n")
        rd.join(th.HANG)
        assert b"250 2.0.0 Ok: queued as " in rd.data
    assert mon.max_kb < RSS_MAX_KB
    assert len(th.files_containing(srv.dir, tok)) == 1


def connect_220(srv, source=None):
    """A connection that got the banner. The server releases a closed
    connection's slot asynchronously (the readiness probe's, say), so a
    421 4.7.0 right at the start is retried for a bounded time."""
    def attempt():
        c = srv.connect(source=source)
        if c.banner.code == 220:
            return c
        assert c.banner.lines == [TOO_MANY], c.banner
        c.close()
        return None
    return th.wait_until(attempt, timeout=5, what="a connection slot")


def test_max_connections_per_ip(server_factory):
    srv = server_factory(["max_connections_per_ip = 5"])
    held = []
    try:
        for _ in range(5):
            c = connect_220(srv)
            held.append(c)
            assert c.banner.lines == ["220 %s ESMTP tegami" % th.HOSTNAME]
        sixth = srv.connect()
        assert sixth.banner.lines == [TOO_MANY]
        assert sixth.is_closed()
        sixth.close()
        # another address is still served
        with srv.connect(source="127.0.0.2") as other:
            expect(other.banner, "220 ")
            other.ehlo()
            expect(other.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        # a freed slot can be used again
        expect(held[0].cmd("QUIT"), "221 ")
        assert held[0].is_closed()
        held[0].close()

        c = connect_220(srv)
        held[0] = c
        c.ehlo()
    finally:
        for c in held:
            c.close()


def test_max_connections_total(server_factory):
    srv = server_factory(["max_connections = 3"])
    held = []
    try:
        for i in range(3):
            c = connect_220(srv, source="127.0.0.%d" % (i + 1))
            held.append(c)
            expect(c.banner, "220 ")
        extra = srv.connect(source="127.0.0.9")
        assert extra.banner.lines == [TOO_MANY]
        assert extra.is_closed()
        extra.close()
    finally:
        for c in held:
            c.close()


def test_idle_timeout(server_factory):
    srv = server_factory(["smtp_timeout_command = 2s"])
    # after the banner, after EHLO and inside a transaction; in parallel
    conns = []
    try:
        for setup in ([], ["EHLO client.test"],
                      ["EHLO client.test", "MAIL FROM:<a@ext.test>"]):
            c = srv.connect()
            conns.append(c)
            for line in setup:
                assert c.cmd(line).code == 250
        t0 = time.monotonic()
        for c in conns:
            r = c.reply(timeout=15)
            assert r.lines == [TIMEOUT_421]
            assert c.is_closed()
        dt = time.monotonic() - t0
        assert dt >= 1.0, "timed out after %.2f s, set to 2 s" % dt
    finally:
        for c in conns:
            c.close()


def test_slow_data_block_timeout(server_factory):
    srv = server_factory(["smtp_timeout_data_block = 2s",
                          "smtp_timeout_command = 60s"])
    tok = token()
    with srv.connect() as c:
        c.open_data()
        c.send(b"Subject: " + tok.encode() + b"\r\n\r\nbody\r\n")
        c.send(b"x")
        t0 = time.monotonic()
        r = c.reply(timeout=15)
        assert r.lines == [TIMEOUT_421]
        assert time.monotonic() - t0 >= 1.0
        assert c.is_closed()
    assert th.files_containing(srv.dir, tok) == []
    th.wait_until(lambda: th.maildir_files(srv.maildir("alice@local.test"),
                                           "tmp") == [], timeout=5,
                  what="tmp/ to be cleaned")


def test_data_deadline_trickle(server_factory):
    srv = server_factory(["smtp_data_deadline = 3s",
                          "smtp_timeout_data_block = 2s",
                          "smtp_timeout_command = 60s"])
    tok = token()
    with srv.connect() as c:
        c.open_data()
        c.send(b"Subject: " + tok.encode() + b"\r\n\r\n")
        t0 = time.monotonic()
        r = None
        for i in range(40):                    # at most ~20 s
            try:
                c.send(b"line %d\r\n" % i)
            except OSError:
                break
            try:
                r = c.reply(timeout=0.5)
                break
            except (TimeoutError, OSError):
                continue
        if r is None:
            r = c.reply(timeout=5)
        dt = time.monotonic() - t0
        assert r.lines == [TIMEOUT_421]
        assert dt >= 2.0, dt
        assert c.is_closed()
    assert th.files_containing(srv.dir, tok) == []


def test_200_idle_sockets_are_closed(server_factory):
    srv = server_factory(["smtp_timeout_command = 2s"])
    sel = selectors.DefaultSelector()
    socks = {}
    try:
        for i in range(200):
            s = socket.socket()
            s.bind(("127.0.0.%d" % (10 + i // 50), 0))   # 50 per address
            s.settimeout(th.HANG)
            s.connect((th.LISTEN, srv.port))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks[s] = b""
        open_ = set(socks)
        deadline = time.monotonic() + 30
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    b = s.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    socks[s] += b"<RST>"
                    b = b""
                if b:
                    socks[s] += b
                else:
                    sel.unregister(s)
                    open_.discard(s)
        assert not open_, "%d sockets still open after 30 s" % len(open_)
        want = ("220 %s ESMTP tegami\r\n%s\r\n" % (th.HOSTNAME, TIMEOUT_421)
                ).encode()
        bad = [d for d in socks.values() if d != want]
        assert bad == [], "%d odd sessions, e.g. %r" % (len(bad), bad[:3])
    finally:
        for s in socks:
            s.close()
        sel.close()
    # still serving
    tok = token()
    r, qid = th.send_message(srv.port, "a@ext.test", ["bob@local.test"],
                             th.make_message(tok))
    assert qid is not None, r
    assert len(th.files_containing(srv.dir, tok)) == 1


def test_errors_past_soft_limit_are_delayed(server_factory):
    # security-tests.md 10: RCPT probing is rate-limited. The first
    # smtp_soft_error_limit errors are answered at once; each later one is
    # held back by smtp_error_delay_ms (the server reads nothing meanwhile),
    # as Postfix's smtpd_soft_error_limit / smtpd_error_sleep_time do. Only
    # lower bounds are asserted: a slow machine can only add time.
    server = server_factory(extra_config=["smtp_soft_error_limit = 2",
                                          "smtp_error_delay_ms = 600"])
    with server.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        for i in range(2):
            expect(c.cmd("RCPT TO:<nobody%d@local.test>" % i), "550 5.1.1")
        for i in range(2, 4):
            t0 = time.monotonic()
            expect(c.cmd("RCPT TO:<nobody%d@local.test>" % i), "550 5.1.1")
            assert time.monotonic() - t0 >= 0.55, "error reply not delayed"
        # Pipelined probes are delayed one by one, not once per batch.
        t0 = time.monotonic()
        c.send(b"RCPT TO:<p1@local.test>\r\nRCPT TO:<p2@local.test>\r\n")
        expect(c.reply(), "550 5.1.1")
        expect(c.reply(), "550 5.1.1")
        assert time.monotonic() - t0 >= 1.1
        # The session still works, and good commands are not delayed
        # beyond the hold of the error before them.
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 ")
    assert server.alive()
