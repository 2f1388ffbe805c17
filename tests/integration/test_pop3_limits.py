# POP3 bounds and settings that need their own server (issue 6, RFC 1939
# 3 autologout): the idle timeout (pop3_idle_timeout, here 10 s) in every
# state, connections per address, pop3_plaintext_loopback,
# pop3_error_limit, pop3_max_messages, a server without a certificate,
# and the mailbox across a restart and a front process killed with
# SIGKILL (the flock()ed lock must not outlive it). Helpers are in
# test_pop3.py.
import os
import re
import shutil
import signal
import socket
import ssl
import threading
import time

import pytest

import tegami_harness as th
import test_pop3 as p3
from test_pop3 import (AUTH_CONFIG, BASE_CAPA, GREETING, IN_USE, PLAINTEXT,
                       POP3Conn, capa, deliver, expect, login_when_free,
                       message, session, token)

IDLE = 10       # seconds: the smallest pop3_idle_timeout allowed
PER_IP = 4

ALICE = "alice@local.test"
BOB = "bob@local.test"
CAROL = "carol@local.test"


def module_server(config):
    """A started server for a module's tests (end_module_server stops it
    and checks its log)."""
    srv = th.TegamiServer(extra_config=config)
    try:
        srv.init()
        srv.start()
    except BaseException:
        srv.failed = True
        srv.cleanup()
        raise
    return srv


def end_module_server(srv):
    problems = p3.finish_server(srv)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ======================================================================
# Idle timeout and connections per address
# ======================================================================

@pytest.fixture(scope="module")
def limits_srv():
    srv = module_server(AUTH_CONFIG + [
        "pop3_idle_timeout = %ds" % IDLE,
        "max_connections_per_ip = %d" % PER_IP,
        "pop3_plaintext_loopback = yes"])
    yield srv
    end_module_server(srv)


def session_id_from(srv, source):
    """The id of the latest session from source (from the log)."""
    found = re.findall(r"session=(\S+) connect from=%s " %
                       re.escape(source), srv.log_text())
    assert found, "no session from %s in the log" % source
    return found[-1]


def test_idle_timeout(limits_srv):
    """pop3_idle_timeout closes a silent session with -ERR in
    AUTHORIZATION and in TRANSACTION (nothing deleted: no UPDATE), and
    one whose client stopped reading in the middle of a RETR; a session
    that keeps sending commands stays."""
    srv = limits_srv
    deliver(srv, BOB, message(token()))
    # bigger than every socket buffer between the front and a client
    # that reads nothing
    big = big_message(16 * 1024 * 1024)
    p3.drop(srv, CAROL, p3.maildir_name(w=(len(big), len(big))), big)
    results = {}

    def wait_closed(name, c, t0):
        try:
            r = c.resp(timeout=IDLE + 2 * th.HANG)
            c.assert_closed()
            results[name] = (r, time.monotonic() - t0)
        except BaseException as e:      # reported by the main thread
            results[name] = (e, time.monotonic() - t0)

    a = POP3Conn(srv, source="127.0.0.31")
    t_a = time.monotonic()
    assert a.greeting == GREETING
    b = session(srv, BOB, source="127.0.0.32")
    expect(b.cmd("DELE 1"), "+OK")
    t_b = time.monotonic()
    c = session(srv, ALICE, source="127.0.0.33")
    # plaintext (pop3_plaintext_loopback): the front itself holds the
    # rest of the message, not the TLS layer
    d = POP3Conn(srv, source="127.0.0.34", rcvbuf=4096)
    d.login(CAROL)
    d_id = session_id_from(srv, "127.0.0.34")
    d.send("RETR 1\r\n")
    threads = [threading.Thread(target=wait_closed, args=x, daemon=True)
               for x in (("a", a, t_a), ("b", b, t_b))]
    for t in threads:
        t.start()
    try:
        # the active session: a command every second, answered, while
        # the silent ones time out
        deadline = time.monotonic() + IDLE + 2 * th.HANG
        started = time.monotonic()
        while any(t.is_alive() for t in threads):
            assert time.monotonic() < deadline, "no idle timeout"
            assert c.cmd("NOOP") == "+OK"
            time.sleep(1.0)
        assert time.monotonic() - started >= IDLE - 0.5
        assert c.cmd("NOOP") == "+OK"
        for name in ("a", "b"):
            r, elapsed = results[name]
            if isinstance(r, BaseException):
                raise AssertionError("session %s: %r" % (name, r))
            assert r == "-ERR Disconnected for inactivity", (name, r)
            # never before the configured time
            assert elapsed >= IDLE - 0.5, (name, elapsed)
        c.quit()
        # B's DELE was not carried out
        for addr, n in ((BOB, 1), (ALICE, 0)):
            with login_when_free(srv, addr) as s:
                assert s.stat()[0] == n, addr
                s.quit()
        # the session whose client stopped reading in the middle of the
        # RETR (more than IDLE seconds ago) timed out as well (its last
        # bytes may wait for the 30 s that closing gives a peer that
        # does not read: that wait is not part of this test)
        srv.wait_log(r"session=%s idle timeout" % d_id, timeout=th.HANG)
        d.close()
        with login_when_free(srv, CAROL) as s:
            assert s.stat()[0] == 1
            s.quit()
    finally:
        for x in (a, b, c, d):
            x.close()


def big_message(size):
    line = b"x" * 98 + b"\r\n"
    return b"Subject: big\r\n\r\n" + line * (size // len(line))


def test_connections_per_ip(limits_srv):
    """max_connections_per_ip counts POP3 on both ports and SMTP
    together; the next POP3 connection gets -ERR [SYS/TEMP] on 110 and a
    closed connection on 995; other addresses are served; a slot freed
    by QUIT can be used again."""
    srv = limits_srv
    src = "127.0.0.41"
    held = []
    try:
        held.append(POP3Conn(srv, source=src))
        held.append(POP3Conn(srv, implicit=True, source=src))
        held.append(th.SMTPConn(srv.port, source=src))
        held.append(POP3Conn(srv, source=src))
        assert held[2].banner.code == 220
        for h in (held[0], held[1], held[3]):
            assert h.greeting == GREETING
        # the fifth on 110
        with socket.create_connection((srv.listen, p3.pop3_port(srv)),
                                      th.HANG, source_address=(src, 0)) as s:
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert data == b"-ERR [SYS/TEMP] Too many connections; try " \
                b"again later\r\n", data
        # the fifth on 995: no handshake
        with socket.create_connection((srv.listen, p3.pop3s_port(srv)),
                                      th.HANG, source_address=(src, 0)) as s:
            with pytest.raises((ssl.SSLError, OSError)):
                srv.tls_context().wrap_socket(
                    s, server_hostname=th.HOSTNAME).recv(10)
        # another address is served
        with session(srv, ALICE, source="127.0.0.42") as other:
            other.quit()
        held[0].quit()

        def fifth():
            try:
                c = POP3Conn(srv, source=src)
            except (OSError, p3.Closed):
                return None
            if c.greeting != GREETING:
                c.close()
                return None
            return c
        c = th.wait_until(fifth, what="a freed slot")
        held[0] = c
        c.stls()
        c.login(ALICE)
        c.quit()
    finally:
        for h in held:
            h.close()


# ======================================================================
# Settings: plaintext on loopback, error limit, message limit
# ======================================================================

@pytest.fixture(scope="module")
def custom_srv():
    srv = module_server(AUTH_CONFIG + [
        "pop3_plaintext_loopback = yes",
        "pop3_error_limit = 3",
        "pop3_max_messages = 3"])
    yield srv
    end_module_server(srv)


def test_plaintext_loopback_allows_cleartext_login(custom_srv):
    """pop3_plaintext_loopback = yes: on 127.0.0.0/8 port 110 offers and
    takes USER/PASS and AUTH without TLS (STLS is still there)."""
    srv = custom_srv
    for src in ("127.0.0.1", "127.0.0.9"):
        with POP3Conn(srv, source=src) as c:
            assert capa(c) == BASE_CAPA + [
                "STLS", "USER", "SASL PLAIN LOGIN", "IMPLEMENTATION tegami"]
            r, lines = c.multi("AUTH")
            assert lines == ["PLAIN", "LOGIN"], lines
            c.login(ALICE)
            assert not c.tls
            c.quit()
    with POP3Conn(srv, source="127.0.0.9") as c:
        r = c.cmd("AUTH PLAIN " + th.plain_response(
            BOB, th.DEFAULT_USERS[BOB]))
        expect(r, "+OK Logged in")
        c.quit()
    with POP3Conn(srv) as c:
        c.stls()
        c.login(ALICE)
        c.quit()
    assert re.search(r"auth ok: user=<%s> ip=127\.0\.0\.9 service=pop3\b" %
                     re.escape(BOB), srv.log_text())


def test_error_limit_setting(custom_srv):
    with POP3Conn(custom_srv) as c:
        expect(c.cmd("XYZ"), "-ERR Unknown command")
        expect(c.cmd("STAT"), "-ERR Not logged in")
        capa(c)
        expect(c.cmd("RETR 1"), "-ERR Not logged in")
        assert c.resp() == "-ERR Too many bad commands; closing"
        c.assert_closed()


def test_max_messages(custom_srv):
    """A mailbox over pop3_max_messages: -ERR [SYS/PERM] at login, the
    session stays in AUTHORIZATION and the lock is not kept."""
    srv = custom_srv
    files = [deliver(srv, CAROL, message(token())) for _ in range(4)]
    with p3.session(srv, implicit=True) as c:
        expect(c.cmd("USER " + CAROL), "+OK")
        r = c.cmd("PASS " + th.DEFAULT_USERS[CAROL])
        assert r.startswith("-ERR [SYS/PERM] Mailbox too big"), r
        expect(c.cmd("STAT"), "-ERR Not logged in")
        os.unlink(files[0])
        # the lock was released: the same session logs in now
        c.login(CAROL)
        assert c.stat()[0] == 3
        c.quit()


@pytest.mark.parametrize("implicit", [False, True], ids=["plain", "995"])
def test_stalled_reader_does_not_fill_memory(custom_srv, implicit):
    """RETR of a 48 MB message to a client that reads nothing: the front
    sends it as the client takes it and does not copy the rest into
    memory (in plaintext or under TLS). What the socket buffers take
    (a few MB on loopback) plus ASan's quarantine stays far under half
    the message, which is the bound."""
    srv = custom_srv
    size = 48 * 1024 * 1024
    if not os.path.isdir(os.path.join(srv.maildir(BOB), "new")) or \
            not p3.mailbox_files(srv, BOB):
        big = big_message(size)
        p3.drop(srv, BOB, p3.maildir_name(w=(len(big), len(big))), big)
    bound_kb = size // 2 // 1024
    # plaintext on 110 (pop3_plaintext_loopback), or 995; the session of
    # the other variant may still be on its way out
    deadline = time.monotonic() + th.HANG
    while True:
        c = POP3Conn(srv, implicit=implicit, rcvbuf=4096)
        expect(c.cmd("USER " + BOB), "+OK")
        r = c.cmd("PASS " + th.DEFAULT_USERS[BOB])
        if r.startswith("+OK Logged in: 1 messages"):
            break
        c.close()
        assert r.startswith(IN_USE) and time.monotonic() < deadline, r
        time.sleep(0.1)
    try:
        pid = p3.front_pid_of_login(srv, BOB)
        rss_before = th.vmrss_kb(pid)
        c.send("RETR 1\r\n")
        # the front has three seconds to do what it would do
        grown = 0
        end = time.monotonic() + 3
        while time.monotonic() < end and grown < bound_kb:
            grown = max(grown, th.vmrss_kb(pid) - rss_before)
            time.sleep(0.1)
        assert grown < bound_kb, \
            "front %d grew by %d kB or more during a stalled RETR of a " \
            "%d MB message" % (pid, grown, size >> 20)
    finally:
        c.close()


# ======================================================================
# No certificate; the config's bounds
# ======================================================================

def test_without_certificate(server_factory):
    """No tls/: no 995, no STLS in CAPA, STLS refused, and (TLS being
    impossible) no login at all on 110."""
    srv = server_factory(extra_config=AUTH_CONFIG, start=False)
    shutil.rmtree(os.path.join(srv.dir, "tls"))
    srv.start()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((th.LISTEN, p3.pop3s_port(srv)), 2)
    with POP3Conn(srv) as c:
        assert c.greeting == GREETING
        assert capa(c) == BASE_CAPA + ["IMPLEMENTATION tegami"]
        expect(c.cmd("STLS"), "-ERR STLS not available")
        assert c.cmd("USER " + ALICE).startswith(PLAINTEXT)
        c.quit()


def test_config_bounds(tmp_path):
    srv = th.TegamiServer()
    try:
        srv.init()
        for line, ok in (("pop3_idle_timeout = 9s", False),
                         ("pop3_idle_timeout = 10s", True),
                         ("pop3_error_limit = 0", False),
                         ("pop3_max_messages = 0", False),
                         ("pop3_plaintext_loopback = maybe", False)):
            conf = str(tmp_path / "t.conf")
            shutil.copy(srv.conf, conf)
            with open(conf, "a") as f:
                f.write(line + "\n")
            p = th.run_tegami(["config", "check"], conf=conf)
            assert (p.returncode == 0) == ok, (line, p.stderr)
            if not ok:
                key = line.split()[0]
                assert key.encode() in p.stderr, p.stderr
    finally:
        srv.cleanup()


# ======================================================================
# Restart and a killed front process
# ======================================================================

def test_restart_and_a_killed_front(server_factory):
    """UIDLs and message numbers are the same after a server restart; a
    front process killed with SIGKILL while it holds a mailbox (with a
    DELE pending) frees the lock at once and deletes nothing; the parent
    starts a new front."""
    srv = server_factory(extra_config=AUTH_CONFIG + ["workers = 2"])
    files = [deliver(srv, ALICE, message(token())) for _ in range(3)]
    with session(srv, ALICE) as c:
        before = c.uidl()
        sizes = c.list()
        c.retr_raw(2)
        c.quit()
    assert sorted(before.values()) == sorted(
        os.path.basename(f) for f in files)
    srv.stop()
    srv.start()
    with session(srv, ALICE, implicit=False) as c:
        assert c.uidl() == before and c.list() == sizes
        c.quit()

    c = session(srv, ALICE)
    try:
        expect(c.cmd("DELE 1"), "+OK")
        pid = p3.front_pid_of_login(srv, ALICE)
        assert pid in srv.pids()
        n_ready = srv.log_text().count("front ready")
        os.kill(pid, signal.SIGKILL)
        # the client sees its connection end, without a reply
        with pytest.raises((p3.Closed, ssl.SSLError, OSError)):
            c.cmd("STAT")
    finally:
        c.close()
    srv.wait_log(r"front worker killed by signal 9; restarting")
    th.wait_until(lambda: srv.log_text().count("front ready") > n_ready,
                  what="the front to be restarted")
    # the lock did not survive the process: no [IN-USE] now
    with session(srv, ALICE) as c2:
        assert c2.uidl() == before and c2.list() == sizes
        c2.quit()
    for f in files:
        assert os.path.exists(f) or os.path.exists(
            os.path.join(srv.maildir(ALICE), "cur",
                         os.path.basename(f) + ":2,S")), f
    assert srv.alive()
