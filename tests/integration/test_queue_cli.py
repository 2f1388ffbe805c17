# `tegami queue list|show|flush|delete|bounce` on the live queue (issue
# 5): one tegami on 127.0.0.2 whose test DNS sends unreach.test to
# 127.0.0.9, where nothing listens, so a message stays queued with a
# temporary failure. queue_retry_min is an hour: only `queue flush` can
# explain a second attempt. delete removes a message without a bounce;
# bounce returns it to the sender as a DSN (RFC 3464) with status 5.0.0.
import email
import email.policy
import os
import re
import socket
import stat
import subprocess
import threading
import time

import pytest

import tegami_harness as th

A_IP = "127.0.0.2"
SILENT_IP = "127.0.0.10"    # accepts on port 25 and never says a word
ALICE, ALICE_PW = "alice@a.test", "alice-QueueCli-1"
DELIVERY_WAIT = 30.0     # a bound that only catches a stuck queue

ZONE = """\
a.test MX 10 mx.a.test
mx.a.test A %(a)s
unreach.test MX 10 mx.unreach.test
mx.unreach.test A 127.0.0.9
slow.test MX 10 mx.slow.test
mx.slow.test A %(silent)s
""" % {"a": A_IP, "silent": SILENT_IP}


@pytest.fixture(scope="module")
def srv(dns):
    s = th.TegamiServer(
        users={ALICE: ALICE_PW}, aliases={}, domains=("a.test",),
        listen=A_IP, hostname="mx.a.test", port_base=0,
        extra_config=["resolver = " + dns, "queue_retry_min = 1h",
                      "queue_retry_max = 2h", "workers = 1",
                      "auth_failure_delay_ms = 10"])
    s.init()
    s.start()
    yield s
    s.cleanup()


class SilentPeer:
    """Port 25 on SILENT_IP: accepts and keeps quiet, so that an attempt
    stays in flight (the client waits minutes for the banner)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((SILENT_IP, 25))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.conns = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)

    def closed_by_peer(self, c):
        """True once tegami has closed c (bounded wait)."""
        c.settimeout(th.HANG)
        try:
            return c.recv(1) == b""
        except ConnectionResetError:
            return True
        except OSError:
            return False

    def close(self):
        self._stop.set()
        self._t.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture(scope="module")
def silent():
    p = SilentPeer()
    yield p
    p.close()


def submit(srv, rcpts, body, sender=ALICE):
    """Through submission (465, AUTH PLAIN as alice) over DATA, the
    content dot-stuffed; returns the queue id."""
    return srv.submit(ALICE, ALICE_PW, rcpts, body, sender=sender)


def token_message(token, to="x@unreach.test"):
    return (b"From: <alice@a.test>\r\nTo: <" + to.encode() + b">\r\n"
            b"Subject: queue cli " + token + b"\r\n"
            b"X-Token: " + token + b"\r\n\r\nbody " + token + b"\r\n")


def attempts(srv, qid):
    """How many attempts of qid the log shows ended deferred."""
    return len(re.findall(r"id=%s deferred: " % qid, srv.log_text()))


def queued_deferred(srv, token):
    """A message to unreach.test, after its first attempt failed."""
    qid = submit(srv, ["x@unreach.test"], token_message(token))
    th.wait_until(lambda: attempts(srv, qid) == 1, timeout=DELIVERY_WAIT,
                  what="the first attempt of %s" % qid)
    # the retry is an hour away: nothing but flush can bring it sooner
    srv.wait_log(r"id=%s deferred: 1 pending, 0 delivered, 0 failed, "
                 r"next attempt in 3600s" % qid)
    return qid


def qfiles(srv, qid):
    q = os.path.join(srv.dir, "queue")
    return sorted(n for n in os.listdir(q) if n.startswith(qid))


def ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p.stdout.decode()


def fails(p, needle, code=1):
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert needle.encode() in p.stderr, (needle, p.stderr)
    return p.stderr.decode()


def mail_with(srv, token):
    return th.files_containing(srv.dir, token)


def test_list_and_show_the_temporary_failure(srv):
    token = b"LIST-%d" % time.monotonic_ns()
    qid = queued_deferred(srv, token)
    assert qfiles(srv, qid) == [qid + ".env", qid + ".msg"]

    out = ok(srv.tegami("queue", "list"))
    block = [b for b in out.split("\n\n") if b.startswith(qid)]
    assert len(block) == 1, out
    lines = block[0].splitlines()
    assert re.fullmatch(r"%s  size \d+  age \d+s  attempts 1  next attempt "
                        r"in (59m\d\ds|1h00m)" % qid, lines[0]), lines
    assert lines[1] == "  sender <alice@a.test>"
    rcpt = lines[2]
    assert rcpt.startswith("  recipient <x@unreach.test> pending  last "
                           "attempt "), rcpt
    assert "  remote mx.unreach.test  status 4.4.1  \"" in rcpt, rcpt
    assert "127.0.0.9" in rcpt or "refused" in rcpt.lower(), rcpt
    assert len(lines) == 3

    out = ok(srv.tegami("queue", "show", qid))
    assert out.startswith("queue id %s\n" % qid), out
    assert "  sender <alice@a.test>\n" in out
    assert re.search(r"\n  size \d+\n  created \d{4}-", out), out
    assert re.search(r"  attempts 1  next attempt in \S+ \(\d{4}-\d\d-\d\d ",
                     out), out
    # the same line (the diagnostic is not cut here), a second later maybe
    ago = re.compile(r"\(\d+s ago\)")
    assert ago.sub("", rcpt) + "\n" in ago.sub("", out), (rcpt, out)
    head = out[out.index("headers:\n"):]
    assert head.startswith("headers:\n  Return-Path: <alice@a.test>\n"), head
    assert "\n  Subject: queue cli %s\n" % token.decode() in head
    assert "\n  X-Token: %s\n" % token.decode() in head
    assert "body " not in head     # the headers only
    ok(srv.tegami("queue", "delete", qid))


def test_flush_retries_at_once(srv):
    token = b"FLUSH-%d" % time.monotonic_ns()
    qid = queued_deferred(srv, token)
    out = ok(srv.tegami("queue", "flush", qid))
    assert out == "flush %s: due now\n" % qid
    th.wait_until(lambda: attempts(srv, qid) == 2, what="the flushed attempt")
    assert "id=%s flush" % qid in srv.log_text()
    assert re.search(r"attempts 2  next attempt in (1h59m|2h00m)",
                     ok(srv.tegami("queue", "show", qid)))

    # flush without an id: every message is due now
    out = ok(srv.tegami("queue", "flush"))
    assert re.fullmatch(r"flush: \d+ messages? due now, \d+ being "
                        r"delivered\n", out), out
    th.wait_until(lambda: attempts(srv, qid) == 3, what="the flush of all")
    assert qfiles(srv, qid) == [qid + ".env", qid + ".msg"]
    assert not mail_with(srv, token)       # still no bounce
    ok(srv.tegami("queue", "delete", qid))


def test_delete_removes_without_a_bounce(srv):
    token = b"DELETE-%d" % time.monotonic_ns()
    qid = queued_deferred(srv, token)
    out = ok(srv.tegami("queue", "delete", qid))
    assert out == "delete %s: removed\n" % qid
    assert qfiles(srv, qid) == []
    srv.wait_log(r"id=%s deleted by the administrator" % qid)
    assert qid not in ok(srv.tegami("queue", "list"))
    fails(srv.tegami("queue", "show", qid), "no message %s in the queue" %
          qid)
    fails(srv.tegami("queue", "delete", qid), "no message %s in the queue"
          % qid)
    fails(srv.tegami("queue", "flush", qid), "no message %s in the queue"
          % qid)
    fails(srv.tegami("queue", "bounce", qid), "no message %s in the queue"
          % qid)
    # a flush of everything does not bring it back, and no DSN comes
    ok(srv.tegami("queue", "flush"))
    time.sleep(2)
    assert not mail_with(srv, token)
    assert attempts(srv, qid) == 1
    assert not re.search(r"id=%s bounce" % qid, srv.log_text())


def read_dsn(path):
    msg = email.message_from_bytes(th.read(path), policy=email.policy.SMTP)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    return msg, parts


def test_bounce_returns_it_to_the_sender(srv):
    token = b"BOUNCE-%d" % time.monotonic_ns()
    qid = queued_deferred(srv, token)
    out = ok(srv.tegami("queue", "bounce", qid))
    assert out == ("bounce %s: 1 recipient returned to the sender; "
                   "removed\n" % qid), out
    assert qfiles(srv, qid) == []
    srv.wait_log(r"id=%s bounce to <alice@a\.test> queued as" % qid)
    deadline = time.monotonic() + DELIVERY_WAIT
    while not mail_with(srv, token) and time.monotonic() < deadline:
        time.sleep(0.1)
    (path,) = mail_with(srv, token)
    assert path.startswith(srv.maildir(ALICE) + "/new/"), path
    msg, parts = read_dsn(path)
    status = parts[1].as_bytes()
    assert re.search(rb"Final-Recipient: rfc822; ?x@unreach\.test\r\n",
                     status), status
    assert b"Action: failed" in status
    assert b"Status: 5.0.0" in status
    assert b"returned by the administrator" in status
    assert th.read(path).startswith(b"Return-Path: <>\r\n")
    # the original's headers went along
    assert b"X-Token: " + token in th.read(path)
    assert qid not in ok(srv.tegami("queue", "list"))


def test_bounce_of_a_null_sender_message_sends_nothing(srv):
    token = b"NULLBOUNCE-%d" % time.monotonic_ns()
    qid = submit(srv, ["y@unreach.test"], token_message(token), sender="")
    th.wait_until(lambda: attempts(srv, qid) == 1, timeout=DELIVERY_WAIT,
                  what="the first attempt")
    out = ok(srv.tegami("queue", "bounce", qid))
    assert out == ("bounce %s: 1 recipient failed; no bounce for the null "
                   "sender; removed\n" % qid), out
    assert qfiles(srv, qid) == []
    time.sleep(1.5)
    assert not mail_with(srv, token)


def test_delete_and_bounce_cancel_an_attempt_in_flight(srv, silent):
    token = b"INFLIGHT-%d" % time.monotonic_ns()
    n = len(silent.conns)
    qid = submit(srv, ["z@slow.test"], token_message(token, "z@slow.test"))
    th.wait_until(lambda: len(silent.conns) == n + 1, timeout=DELIVERY_WAIT,
                  what="the attempt to connect to the silent peer")
    conn = silent.conns[n]
    assert ok(srv.tegami("queue", "flush", qid)) == \
        "flush %s: being delivered now\n" % qid
    assert re.search(r"flush: \d+ messages? due now, 1 being delivered",
                     ok(srv.tegami("queue", "flush")))
    out = ok(srv.tegami("queue", "bounce", qid))
    assert out == ("bounce %s: 1 recipient returned to the sender; "
                   "removed\n" % qid), out
    assert silent.closed_by_peer(conn)       # the attempt was cancelled
    assert qfiles(srv, qid) == []
    th.wait_until(lambda: mail_with(srv, token), timeout=DELIVERY_WAIT,
                  what="the bounce")
    (path,) = mail_with(srv, token)
    assert b"Status: 5.0.0" in read_dsn(path)[1][1].as_bytes()

    token = b"INFLIGHT-DEL-%d" % time.monotonic_ns()
    n = len(silent.conns)
    qid = submit(srv, ["z@slow.test"], token_message(token, "z@slow.test"))
    th.wait_until(lambda: len(silent.conns) == n + 1, timeout=DELIVERY_WAIT,
                  what="the attempt to connect to the silent peer")
    conn = silent.conns[n]
    assert ok(srv.tegami("queue", "delete", qid)) == \
        "delete %s: removed\n" % qid
    assert silent.closed_by_peer(conn)
    assert qfiles(srv, qid) == []
    # the cancelled attempt does not come back: no new connection, no DSN
    time.sleep(2)
    assert len(silent.conns) == n + 1
    assert not mail_with(srv, token)
    assert srv.alive()


BAD_IDS = ["abc", "0123456789abcdef", "0123456789ABCDEF0", "0123456789ABCDE",
           "../../etc/passwd", "0123456789ABCDE/", "", "0123456789ABCDEG",
           "\x1b[31m0123456789AB"]


def test_bad_ids_are_refused(srv):
    before = sorted(os.listdir(os.path.join(srv.dir, "queue")))
    for bad in BAD_IDS:
        for cmd in ("show", "flush", "delete", "bounce"):
            err = fails(srv.tegami("queue", cmd, bad), "bad queue id")
            assert "\x1b" not in err
    # a valid id that is not queued
    for cmd in ("show", "flush", "delete", "bounce"):
        fails(srv.tegami("queue", cmd, "0123456789ABCDEF"),
              "no message 0123456789ABCDEF in the queue")
    # wrong numbers of arguments are usage errors
    for args in (("show",), ("delete",), ("bounce",),
                 ("flush", "0123456789ABCDEF", "x"),
                 ("delete", "0123456789ABCDEF", "x"), ("frob",)):
        p = srv.tegami("queue", *args)
        assert p.returncode == 2, args
        assert b"usage: tegami [-c CONF] queue list\n" in p.stderr
        assert b"queue bounce ID" in p.stderr
    assert sorted(os.listdir(os.path.join(srv.dir, "queue"))) == before
    assert srv.alive()


def control_path(srv):
    return os.path.join(srv.dir, "run", "queue-control")


def control(srv, data, shut=True):
    """Raw bytes to the control socket; everything it answers."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(th.HANG)
    try:
        s.connect(control_path(srv))
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(4096)
            except ConnectionResetError:
                # closed with our excess bytes unread: the reply came first
                return out
            if not b:
                return out
            out += b
    finally:
        s.close()


def test_control_socket_protocol_and_permissions(srv):
    path = control_path(srv)
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    import pwd
    assert st.st_uid == pwd.getpwnam("tegami").pw_uid

    cases = {
        b"flush\n": b"ok flush: ",
        b"frob\n": b"error unknown command",
        b"FLUSH\n": b"error unknown command",
        b"delete\n": b"error delete needs a queue id",
        b"delete 0123456789abcdef\n": b"error bad queue id",
        b"delete ../../../etc/passwd\n": b"error bad queue id",
        b"bounce 0123456789ABCDEF\n": b"error no message 0123456789ABCDEF",
        b"flush 0123456789ABCDEF\r\n": b"error bad queue id",
        b"delete 0123456789ABCDEF 1\n": b"error bad queue id",
        b"flush\x00 0123456789ABCDEF\n": b"error request line too long or "
                                         b"with a NUL byte",
        b"x" * 5000: b"error request line too long\n",
        b"\n": b"error unknown command",
    }
    for req, want in cases.items():
        out = control(srv, req)
        assert out.startswith(want), (req, out)
        assert out.endswith(b"\n") and out.count(b"\n") == 1, (req, out)
    # one request per connection: the second line is not answered
    out = control(srv, b"flush\nflush\n")
    assert out.startswith(b"ok flush: ") and out.count(b"\n") == 1
    # a client that says nothing is dropped after a while; others are
    # served meanwhile
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(path)
    try:
        assert control(srv, b"flush\n").startswith(b"ok flush: ")
    finally:
        idle.close()

    # another user cannot connect (mode 0600), whatever it tries
    r = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import os, socket, sys\n"
         "os.setgid(65534); os.setgroups([]); os.setuid(65534)\n"
         "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
         "try:\n"
         "    s.connect(sys.argv[1])\n"
         "except PermissionError:\n"
         "    print('refused')\n"
         "else:\n"
         "    print('connected')\n", path],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=th.HANG)
    assert r.stdout == b"refused\n", (r.stdout, r.stderr)

    # and if the mode were loosened, the server itself refuses the uid
    os.chmod(path, 0o666)
    try:
        r = subprocess.run(
            ["/usr/bin/python3", "-c",
             "import os, socket, sys\n"
             "os.setgid(65534); os.setgroups([]); os.setuid(65534)\n"
             "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
             "s.settimeout(10)\n"
             "s.connect(sys.argv[1])\n"
             "try:\n"
             "    s.sendall(b'flush\\n')\n"
             "    print('closed' if s.recv(100) == b'' else 'answered')\n"
             "except (ConnectionResetError, BrokenPipeError):\n"
             "    print('closed')\n", path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=th.HANG)
    finally:
        os.chmod(path, 0o600)
    assert r.stdout == b"closed\n", (r.stdout, r.stderr)
    srv.wait_log(r"control: refused a connection from uid 65534")
    assert srv.alive()


def test_commands_with_the_server_stopped(srv):
    token = b"STOPPED-%d" % time.monotonic_ns()
    qid = queued_deferred(srv, token)
    keep = queued_deferred(srv, token + b"-KEEP")
    srv.stop()
    assert not os.path.exists(control_path(srv))   # removed at exit
    for args in (("flush",), ("flush", qid), ("bounce", qid)):
        err = fails(srv.tegami("queue", *args), "tegami is not running")
        assert control_path(srv) in err
    # list and show read the files: they work without the server
    assert qid in ok(srv.tegami("queue", "list"))
    assert "pending" in ok(srv.tegami("queue", "show", qid))
    # delete works offline, on the files
    out = ok(srv.tegami("queue", "delete", qid))
    assert out == "delete %s: removed (tegami is not running)\n" % qid
    assert qfiles(srv, qid) == []
    fails(srv.tegami("queue", "delete", qid), "no message %s in the queue"
          % qid)

    # a killed server leaves its socket behind: still "not running", and
    # the next start takes the name over
    srv.start()
    th.wait_until(lambda: os.path.exists(control_path(srv)),
                  what="the control socket")
    srv.kill9_group()
    assert os.path.exists(control_path(srv))
    fails(srv.tegami("queue", "flush"), "tegami is not running")
    srv.start()
    th.wait_until(lambda: srv.tegami("queue", "flush").returncode == 0,
                  what="the control socket after a restart")
    # the restart made every message due once; the kept one is still there
    th.wait_until(lambda: attempts(srv, keep) >= 2, timeout=DELIVERY_WAIT,
                  what="the attempt after the restart")
    out = ok(srv.tegami("queue", "bounce", keep))
    assert "returned to the sender" in out
    deadline = time.monotonic() + DELIVERY_WAIT
    while not mail_with(srv, token + b"-KEEP") and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert mail_with(srv, token + b"-KEEP")
    assert not mail_with(srv, token + b"\r\n")
    assert srv.sanitizer_reports() == []


def test_show_is_bounded_and_safe(tmp_path):
    """show on files a server did not write (no server needed)."""
    s = th.TegamiServer(users={}, aliases={})
    s.init()
    try:
        q = os.path.join(s.dir, "queue")
        qid = "0123456789ABCDEF"
        env = ("version 2\nqueue-id %s\ncreated 1700000000\nsender a@b.test\n"
               "smtputf8 no\nbody 8bitmime\nattempts 0\nnext-attempt 0\n"
               "warned no\nauth u+1B@local.test\nrecipient c@d.test pending\n"
               % qid)
        with open(os.path.join(q, qid + ".env"), "w") as f:
            f.write(env)
        big = b"X-Big: " + b"y" * 100000 + b"\r\n"
        with open(os.path.join(q, qid + ".msg"), "wb") as f:
            f.write(b"Subject: \x1b[2Jhi\r\n\tfolded\r\n" + big +
                    b"\r\nbody\r\n")
        out = ok(s.tegami("queue", "show", qid))
        assert "  submitted by u?@local.test\n" in out
        assert "  recipient <c@d.test> pending\n" in out
        assert "\n  Subject: ?[2Jhi\n  \tfolded\n" in out
        assert "\n  X-Big: yyyy" in out
        assert out.endswith("y\n  ... (headers cut at 64 KiB)\n"), out[-200:]
        assert len(out) < 66000 and "\x1b" not in out
        assert "  body\n" not in out

        # at the limit: headers of exactly 64 KiB are cut (the empty line
        # is beyond); 64 KiB with the empty line are whole
        def headers_of(size):
            line = b"X-Pad: " + b"p" * 91 + b"\r\n"          # 100 bytes
            n, rest = divmod(size, 100)
            last = b"X-Last: " + b"q" * (rest - 10) + b"\r\n" if rest else b""
            h = line * n + last
            assert len(h) == size
            return h
        for size, cut in ((65536, True), (65534, False)):
            with open(os.path.join(q, qid + ".msg"), "wb") as f:
                f.write(headers_of(size) + b"\r\nbody\r\n")
            out = ok(s.tegami("queue", "show", qid))
            assert out.endswith("  ... (headers cut at 64 KiB)\n") == cut, \
                (size, out[-200:])
            assert out.count("\n  X-Pad: ") == 655 and "body" not in \
                out.split("headers:\n")[1]

        # only the message, or only the envelope: shown, exit 1
        os.rename(os.path.join(q, qid + ".env"), os.path.join(s.dir, "e"))
        p = s.tegami("queue", "show", qid)
        assert p.returncode == 1
        assert b"  envelope missing (no .env file)\n" in p.stdout
        os.rename(os.path.join(s.dir, "e"), os.path.join(q, qid + ".env"))
        os.unlink(os.path.join(q, qid + ".msg"))
        p = s.tegami("queue", "show", qid)
        assert p.returncode == 1
        assert b"  recipient <c@d.test> pending\n" in p.stdout
        assert p.stdout.endswith(b"  message file missing\n")
        # a malformed envelope is named
        with open(os.path.join(q, qid + ".env"), "w") as f:
            f.write(env.replace("attempts 0", "attempts -1"))
        p = s.tegami("queue", "show", qid)
        assert p.returncode == 1
        assert b"  envelope malformed: line 7: bad attempts\n" in p.stdout
        # a link is not followed
        os.unlink(os.path.join(q, qid + ".env"))
        os.symlink("/etc/passwd", os.path.join(q, qid + ".env"))
        fails(s.tegami("queue", "show", qid), "no message %s in the queue" %
              qid)
    finally:
        s.cleanup()
