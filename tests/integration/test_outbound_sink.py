# The outbound queue against Postfix's smtp-sink (security-tests.md 41,
# 43 and 46(d)): retries with backoff on 4xx, DSNs (RFC 3464) on 5xx and
# at queue_max_age, none for the null sender, resending after a lost
# reply; the bytes on the wire (RFC 5321 2.3.8, 4.5.2: CRLF only,
# dot-stuffed); and kill -9 of tegami in the middle of a remote delivery.
#
# smtp-sink (/usr/sbin/smtp-sink, `man smtp-sink`) listens on
# 127.0.0.21:25, the MX of sink.test in the test DNS server, started per
# test with the failure it is to show (-r, -f, -q, -Q, -w, -W) and stopped
# by PID. Its -d dump writes each message as LF-terminated lines with the
# dots removed and every CR dropped, so it cannot show what the line ends
# on the wire were: for item 43 a recording relay (WireTap) on
# 127.0.0.22:25, the MX of wire.test, passes each connection on to a sink
# on 127.0.0.22:2525 and keeps every byte tegami sent. Messages come in
# through `tegami sendmail`, through submission with AUTH (DATA and
# BDAT), and, for bare CR and LF that no front door lets in, as a queue
# file written while tegami is stopped.
import email
import email.policy
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import tegami_harness as th
from tegami_harness import expect

SINK_BIN = "/usr/sbin/smtp-sink"
SINK_USER = "nobody"          # smtp-sink run as root must drop to a user
SINK_IP = "127.0.0.21"        # mx.sink.test
WIRE_IP = "127.0.0.22"        # mx.wire.test: WireTap, sink behind on 2525
WIRE_SINK_PORT = 2525
ALICE, ALICE_PW = "alice@local.test", th.DEFAULT_USERS["alice@local.test"]
RCPT = "x@sink.test"
DELIVERY_WAIT = 30.0          # bounds that only catch a stuck queue

ZONE = """\
sink.test MX 10 mx.sink.test
mx.sink.test A %s
wire.test MX 10 mx.wire.test
mx.wire.test A %s
""" % (SINK_IP, WIRE_IP)

# Short retries, so that every test takes seconds: 1 s, 2 s, 4 s, 4 s, ...
RETRY_CONFIG = ["queue_retry_min = 1s", "queue_retry_max = 4s",
                "workers = 1"]


@pytest.fixture
def make_server(server_factory, dns):
    def make(extra=()):
        srv = server_factory(extra_config=["resolver = " + dns] +
                             RETRY_CONFIG + list(extra))
        wait_queue_ready(srv)
        return srv
    return make


def wait_queue_ready(srv, starts=1):
    """Until the queue process of the starts-th start has its pickup
    socket (the SMTP banner that start() waits for says nothing about
    the queue process)."""
    th.wait_until(lambda: srv.log_text().count("pickup: listening on")
                  >= starts, what="the queue process")


# ---------------------------------------------------------------------------
# smtp-sink and the wire tap
# ---------------------------------------------------------------------------

class SmtpSink:
    """One smtp-sink process: -v (every command it reads, into .log),
    optionally -d (each message into its own file under dump_dir), and
    the options of the test. Stopped by PID."""

    def __init__(self, workdir, opts=(), ip=SINK_IP, port=25, dump=True,
                 name="sink"):
        self.ip, self.port = ip, port
        self.opts = list(opts)
        self.log_path = os.path.join(str(workdir), name + ".log")
        # SINK_USER must reach it: not under pytest's 0700 tmp_path
        self.dump_dir = tempfile.mkdtemp(prefix="tegami-sink-dump-") \
            if dump else None
        self.proc = None
        self._log = None

    def start(self):
        cmd = [SINK_BIN, "-u", SINK_USER, "-v", "-h", "mx.sink.test"]
        if self.dump_dir is not None:
            os.chmod(self.dump_dir, 0o755)
            pw = pwd.getpwnam(SINK_USER)
            os.chown(self.dump_dir, pw.pw_uid, pw.pw_gid)
            cmd += ["-d", os.path.join(self.dump_dir, "%M.")]
        cmd += self.opts + ["%s:%d" % (self.ip, self.port), "100"]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + th.HANG
        while True:
            assert self.proc.poll() is None, \
                "smtp-sink exited with %s: %s" % (self.proc.returncode,
                                                  self.log_text()[-2000:])
            try:
                # from an address tegami never uses, so that the -v log
                # and the counters below can tell the probe apart
                with socket.create_connection(
                        (self.ip, self.port), timeout=2,
                        source_address=(th.PROBE_SOURCE, 0)) as s:
                    s.settimeout(th.HANG)
                    if s.recv(100).startswith(b"220 "):
                        s.sendall(b"QUIT\r\n")
                        s.recv(100)
                        return self
            except OSError:
                pass
            assert time.monotonic() < deadline, "smtp-sink did not start"
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            th.stop_process(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self):
        self.stop()
        if self.dump_dir is not None:
            shutil.rmtree(self.dump_dir, ignore_errors=True)

    def log_text(self):
        return th.read_text(self.log_path)

    def count(self, command):
        """How many times the -v log shows command (e.g. "DATA", ".")
        read from a client."""
        return len(re.findall(r"^%s: %s$" % (re.escape(SINK_BIN),
                                             re.escape(command)),
                              self.log_text(), re.M))

    def dumps(self):
        """The content of every message the sink dumped: the lines after
        its own header block (X-... fields and a three-line Received:),
        as bytes with LF line ends, without the empty line it appends."""
        out = []
        if self.dump_dir is None:
            return out
        for dirpath, _, files in os.walk(self.dump_dir):
            for f in sorted(files):
                data = th.read(os.path.join(dirpath, f))
                lines = data.split(b"\n")
                i = 0
                while i < len(lines) and lines[i].startswith(b"X-"):
                    i += 1
                if i >= len(lines) or not lines[i].startswith(b"Received:"):
                    continue        # still being written
                i += 1
                while i < len(lines) and lines[i].startswith(b"\t"):
                    i += 1
                content = b"\n".join(lines[i:])
                if content.endswith(b"\n\n"):
                    out.append(content[:-1])
        return out

    def copies(self, token):
        return [d for d in self.dumps() if token in d]

    def wait_copies(self, token, n=1, timeout=DELIVERY_WAIT):
        return th.wait_until(lambda: len(self.copies(token)) >= n and
                             self.copies(token), timeout=timeout,
                             what="%d copies of %r at the sink" % (n, token))


@pytest.fixture
def sinks(tmp_path):
    """start(opts, **kw) -> a running SmtpSink; each is stopped by PID at
    the end of the test (and may be stopped earlier by the test)."""
    started = []

    def start(opts=(), **kw):
        kw.setdefault("name", "sink%d" % len(started))
        s = SmtpSink(tmp_path, opts, **kw)
        started.append(s)
        return s.start()

    yield start
    for s in started:
        s.cleanup()


class WireTap:
    """A TCP relay on (ip, 25) to (ip, sink_port): every connection is
    passed on unchanged, and the bytes the client sent are kept, one
    bytes object per connection, in .streams (in connection order)."""

    def __init__(self, ip, sink_port):
        self.ip, self.sink_port = ip, sink_port
        self.streams = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._socks = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 25))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            try:
                server = socket.create_connection((self.ip, self.sink_port),
                                                  timeout=th.HANG)
            except OSError:
                client.close()
                continue
            with self._lock:
                idx = len(self.streams)
                self.streams.append(bytearray())
                self._socks += [client, server]
            for src, dst, rec in ((client, server, idx),
                                  (server, client, None)):
                t = threading.Thread(target=self._pump,
                                     args=(src, dst, rec), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src, dst, rec):
        src.settimeout(0.2)
        deadline = time.monotonic() + 4 * DELIVERY_WAIT
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                break
            if rec is not None:
                with self._lock:
                    self.streams[rec] += data
            try:
                dst.sendall(data)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stream_with(self, token):
        """The bytes of the one connection that carried token, once the
        client has said QUIT on it: a connection is kept open for the
        next message for a moment (queue_conncache.h) before that."""
        deadline = time.monotonic() + th.HANG
        while True:
            with self._lock:
                found = [bytes(s) for s in self.streams if token in s]
            assert len(found) == 1, "%d connections carried %r" % (
                len(found), token)
            if found[0].endswith(b"\r\nQUIT\r\n") or \
                    time.monotonic() > deadline:
                return found[0]
            time.sleep(0.1)

    def transactions(self):
        with self._lock:
            return sum(s.count(b"\r\nMAIL FROM:") +
                       s.startswith(b"MAIL FROM:") for s in self.streams)

    def close(self):
        self._stop.set()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)
        for s in self._socks:
            s.close()
        self.sock.close()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def token(name):
    return ("%s-%d" % (name, time.monotonic_ns())).encode()


def submit(srv, rcpts, content, sender=ALICE):
    """Through submission (465, AUTH PLAIN as alice) over DATA, the
    content dot-stuffed; returns the queue id."""
    return srv.submit(ALICE, ALICE_PW, rcpts, content, sender=sender)


def message(tok, to=RCPT, body=b"body\r\n"):
    return (b"From: <alice@local.test>\r\nTo: <" + to.encode() + b">\r\n"
            b"Subject: " + tok + b"\r\n\r\n" + body)


def deferrals(srv, qid):
    """The "next attempt in N s" of every deferred attempt of qid."""
    return [int(n) for n in re.findall(
        r"id=%s deferred: 1 pending, 0 delivered, 0 failed, next attempt in "
        r"(\d+)s" % qid, srv.log_text())]


def wait_deferrals(srv, qid, n):
    th.wait_until(lambda: len(deferrals(srv, qid)) >= n,
                  timeout=DELIVERY_WAIT,
                  what="%d deferred attempts of %s" % (n, qid))


def queue_list(srv):
    p = srv.tegami("queue", "list", check=True)
    return p.stdout.decode("utf-8", "replace")


def queue_files(srv):
    q = os.path.join(srv.dir, "queue")
    return sorted(f for f in os.listdir(q) if f.endswith((".msg", ".env")))


def wait_queue_empty(srv):
    th.wait_until(lambda: queue_files(srv) == [], timeout=DELIVERY_WAIT,
                  what="an empty queue")
    assert queue_list(srv) == "queue is empty\n"


def bounces(srv, tok):
    return [p for p in srv.new_files(ALICE) if tok in th.read(p)]


def parse_dsn(path):
    """(message, per-message fields, [per-recipient fields]) of an RFC
    3464 report in a Maildir file, checked for its structure."""
    raw = th.read(path)
    assert raw.startswith(b"Return-Path: <>\r\n"), raw[:200]
    msg = email.message_from_bytes(raw, policy=email.policy.SMTP)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"].startswith("auto-replied")
    assert ALICE in msg["To"]
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list) and len(blocks) >= 2, blocks
    return msg, blocks[0], blocks[1:]


# ---------------------------------------------------------------------------
# 41: retry semantics
# ---------------------------------------------------------------------------

def test_4xx_to_rcpt_stays_queued_with_backoff_until_accepted(
        make_server, sinks):
    """smtp-sink -r RCPT: 450 to every RCPT. The message stays queued,
    each attempt recorded in the envelope, the waits doubling from
    queue_retry_min to queue_retry_max; once a sink accepts, the next
    retry delivers it, once, and nobody gets a bounce."""
    srv = make_server()
    soft = sinks(["-r", "RCPT"])
    tok = token("RCPT4XX")
    qid = submit(srv, [RCPT], message(tok))
    wait_deferrals(srv, qid, 4)
    assert deferrals(srv, qid)[:4] == [1, 2, 4, 4]
    assert len(re.findall(
        r'id=%s to=<x@sink\.test> relay=mx\.sink\.test deferred '
        r'status=4\.3\.0 tls=none "450 4\.3\.0 Error: command failed"' % qid,
        srv.log_text())) >= 4
    # the 450 came at RCPT: no DATA was ever sent
    assert soft.count("RCPT TO:<x@sink.test>") >= 4
    assert soft.count("DATA") == 0 and soft.dumps() == []

    listing = queue_list(srv)
    assert qid in listing, listing
    m = re.search(r"attempts (\d+)  next attempt ", listing)
    assert m and int(m.group(1)) >= 4, listing
    assert "sender <alice@local.test>" in listing
    assert re.search(r"recipient <x@sink\.test> pending  last attempt .*"
                     r"remote mx\.sink\.test  status 4\.3\.0  "
                     r'"450 4\.3\.0 Error: command failed"', listing), listing
    shown = srv.tegami("queue", "show", qid, check=True).stdout.decode()
    assert "Subject: " + tok.decode() in shown, shown
    assert "450 4.3.0 Error: command failed" in shown

    soft.stop()
    ok = sinks()
    (copy,) = ok.wait_copies(tok)
    srv.wait_log(r"id=%s to=<x@sink\.test> relay=mx\.sink\.test delivered "
                 r"status=2\.0\.0" % qid, timeout=DELIVERY_WAIT)
    srv.wait_log(r"id=%s done: 1 delivered, 0 failed" % qid)
    wait_queue_empty(srv)
    assert len(ok.copies(tok)) == 1       # removed: no attempt after it
    assert b"\nSubject: " + tok + b"\n" in copy
    assert b"Return-Path:" not in copy    # ours is for local delivery only
    assert bounces(srv, tok) == []


def test_5xx_after_data_bounces_to_the_sender(make_server, sinks):
    """smtp-sink -f .: 500 5.3.0 to the final dot. The recipient fails at
    once (one attempt), and the sender gets one RFC 3464 report naming
    the recipient, the status, the remote MTA and its reply."""
    srv = make_server()
    hard = sinks(["-f", "."])
    tok = token("DOT5XX")
    qid = submit(srv, [RCPT], message(tok))
    srv.wait_log(r"id=%s done: 0 delivered, 1 failed" % qid,
                 timeout=DELIVERY_WAIT)
    assert re.search(r'id=%s to=<x@sink\.test> relay=mx\.sink\.test failed '
                     r'status=5\.3\.0 .*"500 5\.3\.0 Error: command failed"'
                     % qid, srv.log_text())
    bid = srv.wait_log(r"id=%s bounce to <alice@local\.test> queued as "
                       r"([0-9A-F]{16})" % qid).group(1)
    (path,) = th.wait_until(lambda: bounces(srv, tok), timeout=DELIVERY_WAIT,
                            what="the bounce")
    msg, per_msg, per_rcpt = parse_dsn(path)
    assert per_msg["Reporting-MTA"] == "dns; mail.local.test"
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; x@sink.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.3.0"
    assert r["Remote-MTA"] == "dns; mx.sink.test"
    assert r["Diagnostic-Code"] == "smtp; 500 5.3.0 Error: command failed"
    headers = list(msg.iter_parts())[2].get_payload()
    assert ("Subject: " + tok.decode()) in str(headers)
    assert msg["Received"] is not None and bid in msg["Received"]
    assert hard.count(".") == 1           # no second attempt after a 5xx
    wait_queue_empty(srv)
    assert len(bounces(srv, tok)) == 1


def test_null_sender_is_never_bounced(make_server, sinks):
    """smtp-sink -f . and MAIL FROM:<>: the recipient fails and the
    message is removed without any report (RFC 3464 2, RFC 5321 4.5.5)."""
    srv = make_server()
    hard = sinks(["-f", "."])
    tok = token("NULL5XX")
    before = th.all_mail_files(srv.dir)
    qid = submit(srv, [RCPT], message(tok), sender="")
    srv.wait_log(r"id=%s done: 0 delivered, 1 failed" % qid,
                 timeout=DELIVERY_WAIT)
    assert re.search(r"id=%s to=<x@sink\.test> relay=mx\.sink\.test failed "
                     r"status=5\.3\.0" % qid, srv.log_text())
    # a bounce would be queued (and logged) before "done"
    assert not re.search(r"id=%s (bounce|delay warning) to" % qid,
                         srv.log_text())
    assert hard.count(".") == 1
    assert re.search(r"^%s: MAIL FROM:<>$" % re.escape(SINK_BIN),
                     hard.log_text(), re.M)
    wait_queue_empty(srv)
    assert th.all_mail_files(srv.dir) == before


def test_disconnect_after_the_dot_is_resent(make_server, sinks):
    """smtp-sink -q .: the whole message arrives, then the connection
    closes without a reply. tegami cannot know whether the sink took it,
    so it keeps it and sends it again (a duplicate is allowed, a loss is
    not) until a sink answers 250."""
    srv = make_server()
    mute = sinks(["-q", "."])
    tok = token("DOTDROP")
    qid = submit(srv, [RCPT], message(tok))
    wait_deferrals(srv, qid, 2)
    assert mute.count(".") >= 2           # each attempt sent it whole
    listing = queue_list(srv)
    assert re.search(r"recipient <x@sink\.test> pending .* status 4\.\d\.\d"
                     r'  "mx\.sink\.test: connection closed .*final dot"',
                     listing), listing
    mute.stop()
    ok = sinks()
    ok.wait_copies(tok)
    srv.wait_log(r"id=%s done: 1 delivered, 0 failed" % qid,
                 timeout=DELIVERY_WAIT)
    wait_queue_empty(srv)
    assert len(ok.copies(tok)) == 1
    assert bounces(srv, tok) == []


def test_421_to_data_defers_and_bounces_after_max_age(make_server, sinks):
    """smtp-sink -Q DATA: 421 and a closed connection at DATA. The
    message is deferred, retried, never sent; past queue_max_age (its
    minimum, 10 s) it fails with 4.4.7 and the last error, and the sender
    gets the report."""
    srv = make_server(["queue_max_age = 10s"])
    busy = sinks(["-Q", "DATA"])
    tok = token("DATA421")
    qid = submit(srv, [RCPT], message(tok))
    wait_deferrals(srv, qid, 1)
    assert re.search(r"id=%s domain=sink\.test host=mx\.sink\.test: "
                     r".*421 4\.0\.0 Server closing connection" % qid,
                     srv.log_text())
    listing = queue_list(srv)
    assert qid in listing and "pending" in listing, listing
    assert "421 4.0.0 Server closing connection" in listing
    (path,) = th.wait_until(lambda: bounces(srv, tok), timeout=DELIVERY_WAIT,
                            what="the bounce after queue_max_age")
    msg, per_msg, per_rcpt = parse_dsn(path)
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; x@sink.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "4.4.7"
    assert "421 4.0.0 Server closing connection" in r["Diagnostic-Code"]
    srv.wait_log(r"id=%s done: 0 delivered, 1 failed" % qid)
    assert len(deferrals(srv, qid)) >= 2
    assert busy.count("DATA") >= 2 and busy.count(".") == 0
    assert busy.dumps() == []
    wait_queue_empty(srv)


# ---------------------------------------------------------------------------
# 43: wire hygiene
# ---------------------------------------------------------------------------

def promised(content):
    """What src/smtp/smtp_client.c promises to put on the wire for the
    content of a queue file, before dot-stuffing: CR LF, a bare CR and a
    bare LF each become one CR LF; a last line without a line end gets
    one."""
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", content)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def without_return_path(msg_file):
    assert msg_file.startswith(b"Return-Path: <"), msg_file[:100]
    return msg_file[msg_file.index(b"\r\n") + 2:]


def wire_content(stream, tok):
    """The content of the transaction that carries tok in a client's byte
    stream, with the dot-stuffing undone, after checking the framing:
    every line ends in CR LF (no bare CR or LF anywhere), each content
    follows DATA and ends at the first line that is a lone dot, and after
    it comes the next transaction's MAIL or the session's QUIT, which is
    the last line."""
    rest = stream.replace(b"\r\n", b"")
    assert b"\r" not in rest and b"\n" not in rest, \
        "bare CR or LF on the wire: %r" % stream[:2000]
    assert stream.endswith(b"\r\n")
    lines = stream.split(b"\r\n")[:-1]
    assert lines[-1] == b"QUIT", lines[-3:]
    found = []
    i = 0
    while b"DATA" in lines[i:]:
        i = lines.index(b"DATA", i) + 1
        out = []
        while lines[i] != b".":
            line = lines[i]
            out.append(line[1:] if line.startswith(b".") else line)
            i += 1
        i += 1
        assert lines[i] == b"QUIT" or lines[i].startswith(b"MAIL FROM:"), \
            lines[i:i + 3]
        content = b"".join(l + b"\r\n" for l in out)
        if tok in content:
            found.append(content)
    assert len(found) == 1, (tok, len(found))
    return found[0]


def check_on_the_wire(tap, sink, tok, queued):
    """The message with tok went out framed correctly (wire_content),
    its content is exactly the queue file's (without our Return-Path) as
    smtp_client.c promises, and the sink read the same lines."""
    got = wire_content(tap.stream_with(tok), tok)
    want = promised(without_return_path(queued))
    assert got == want, (got, want)
    (dumped,) = sink.copies(tok)
    assert dumped == want.replace(b"\r\n", b"\n")
    return got


def sendmail(srv, args, data):
    return subprocess.run([th.TEGAMI_BIN, "-c", srv.conf, "sendmail"] +
                          args, input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


def sendmail_queued(srv, args, data):
    p = sendmail(srv, ["-v", "-f", ALICE] + args, data)
    assert p.returncode == 0, p.stderr
    m = re.search(rb"queued as ([0-9A-F]{16})", p.stderr)
    assert m, p.stderr
    return m.group(1).decode()


def read_queued(srv, qid):
    return th.read(os.path.join(srv.dir, "queue", qid + ".msg"))


def dotted_body(tok):
    """Text whose lines start with dots in every way that matters,
    including a lone dot ("\\n.\\n") that would end DATA unstuffed."""
    return (b"first " + tok + b"\n"
            b".\n"
            b"..\n"
            b".leading dot\n"
            b"..two leading dots\n"
            b"...\n"
            b". a dot and a space\n"
            b"mixed line end\r\n"
            b".after a CR LF\r\n"
            b"\n"
            b"last line without a line end")


def test_wire_hygiene_through_sendmail(make_server, sinks):
    """`tegami sendmail -i` with LF and CR LF lines and dot lines: the
    queue file has CR LF only, and on the wire every line ends in CR LF
    and every leading dot is doubled; what the sink unstuffs is the
    queue file. Lone CRs ("\\r.\\r", "a\\rb") are refused (exit 65)
    and never queued or sent."""
    srv = make_server()
    tok = token("WIRESM")
    data = (b"From: <alice@local.test>\nTo: <y@wire.test>\n"
            b"Subject: " + tok + b"\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n"
            b"Message-ID: <" + tok + b"@local.test>\n\n" + dotted_body(tok))
    # nothing listens on mx.wire.test yet: the message waits in the queue,
    # where the test reads what tegami stored before it goes out
    qid = sendmail_queued(srv, ["-i", "y@wire.test"], data)
    queued = read_queued(srv, qid)
    body = queued.split(b"\r\n\r\n", 1)[1]
    assert body == dotted_body(tok).replace(b"\r\n", b"\n").replace(
        b"\n", b"\r\n") + b"\r\n"
    before = queue_files(srv)
    for bad in (b"Subject: crdotcr\n\nx\r.\rtext\n",
                b"Subject: bare cr\n\na\rb\n"):
        p = sendmail(srv, ["-i", "y@wire.test"], bad)
        assert p.returncode == 65, (bad, p.returncode, p.stderr)
        assert b"carriage return that does not end the line" in p.stderr, \
            p.stderr
    assert queue_files(srv) == before

    sink = sinks(ip=WIRE_IP, port=WIRE_SINK_PORT, name="wire-sink")
    tap = WireTap(WIRE_IP, WIRE_SINK_PORT)
    try:
        srv.tegami("queue", "flush", check=True)
        srv.wait_log(r"id=%s done: 1 delivered" % qid, timeout=DELIVERY_WAIT)
        sink.wait_copies(tok)
        got = check_on_the_wire(tap, sink, tok, queued)
        assert b"\r\n.\r\n..\r\n.leading dot\r\n" in got
        stream = tap.stream_with(tok)
        assert b"\r\n..\r\n...\r\n..leading dot\r\n...two leading dots\r\n" \
            b"....\r\n.. a dot and a space\r\n" in stream
        assert len(tap.streams) == 1       # the refused ones never went out
    finally:
        tap.close()
    wait_queue_empty(srv)


def test_connections_are_reused_for_a_flush(make_server, sinks):
    """Twelve messages to one domain, flushed together: the queue keeps
    each connection open for the next message (queue_conncache.h), so no
    more connections than outbound_connections_per_domain (4) carry all
    twelve, each message exactly once, and every connection ends with a
    QUIT of its own once it has been idle for a moment."""
    srv = make_server()
    toks = [token("REUSE%02d" % i) for i in range(12)]
    qids = [sendmail_queued(srv, ["-i", "y@wire.test"],
                            b"Subject: " + t + b"\n\nbody " + t + b"\n")
            for t in toks]
    sink = sinks(ip=WIRE_IP, port=WIRE_SINK_PORT, name="wire-sink")
    tap = WireTap(WIRE_IP, WIRE_SINK_PORT)
    try:
        srv.tegami("queue", "flush", check=True)
        for q in qids:
            srv.wait_log(r"id=%s done: 1 delivered" % q,
                         timeout=DELIVERY_WAIT)
        for t in toks:
            assert len(sink.wait_copies(t)) == 1
        assert tap.transactions() == 12
        assert 1 <= len(tap.streams) <= 4, len(tap.streams)
        srv.wait_log(r"to=<y@wire\.test> relay=mx\.wire\.test delivered "
                     r".* conn_use=[2-9]", timeout=DELIVERY_WAIT)
        for t in toks:
            stream = tap.stream_with(t)
            assert stream.endswith(b"\r\nQUIT\r\n"), stream[-200:]
            assert stream.count(b"EHLO ") == 1
    finally:
        tap.close()
    wait_queue_empty(srv)


def test_wire_hygiene_through_submission(make_server, sinks):
    """Submission with AUTH: dot lines over DATA (stuffed by the client)
    and over BDAT (not stuffed: a lone dot and CR LF . CR LF are plain
    content there) leave stuffed, CR LF only. Bodies with "\\n.\\n",
    "\\r.\\r", a bare CR or a bare LF are refused (550 5.5.2) over DATA
    and over BDAT and never queued or sent."""
    srv = make_server()
    toks = [token("WIREDATA"), token("WIREBDAT")]
    body = b"first\r\n.\r\n..\r\n.x\r\n...\r\n\r\n.\r\nend\r\n"
    content = [message(t, to="y@wire.test", body=body) for t in toks]
    qids = [submit(srv, ["y@wire.test"], content[0])]
    with srv.connect_submissions() as c:
        c.ehlo()
        expect(c.auth_plain(ALICE, ALICE_PW), "235 2.7.0")
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")
        expect(c.cmd("RCPT TO:<y@wire.test>"), "250 ")
        half = len(content[1]) // 2
        c.send(b"BDAT %d\r\n" % half + content[1][:half])
        expect(c.reply(), "250 ")
        c.send(b"BDAT %d LAST\r\n" % (len(content[1]) - half) +
               content[1][half:])
        qids.append(th.queued_id(c.reply()))

        # refused: over DATA (raw bytes, nothing stuffed) and over BDAT
        for bad in (b"a\n.\nb\r\n", b"a\r.\rb\r\n", b"bare\rcr\r\n",
                    b"bare\nlf\r\n"):
            raw = b"Subject: bad\r\n\r\n" + bad
            expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")
            expect(c.cmd("RCPT TO:<y@wire.test>"), "250 ")
            expect(c.cmd("DATA"), "354 ")
            c.send(raw + b".\r\n")
            expect(c.reply(), "550 5.5.2")
            expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")
            expect(c.cmd("RCPT TO:<y@wire.test>"), "250 ")
            c.send(b"BDAT %d LAST\r\n" % len(raw) + raw)
            expect(c.reply(), "550 5.5.2")
        expect(c.cmd("QUIT"), "221 ")
    queued = [read_queued(srv, q) for q in qids]
    for q, want in zip(queued, content):
        # tegami adds Date: and Message-ID: to the header section
        head, body = without_return_path(q).split(b"\r\n\r\n", 1)
        assert body == want.split(b"\r\n\r\n", 1)[1]
        assert want.split(b"\r\n\r\n", 1)[0] in head
    assert len(queue_files(srv)) == 4      # two messages, nothing else

    sink = sinks(ip=WIRE_IP, port=WIRE_SINK_PORT, name="wire-sink")
    tap = WireTap(WIRE_IP, WIRE_SINK_PORT)
    try:
        srv.tegami("queue", "flush", check=True)
        for q, t in zip(qids, toks):
            srv.wait_log(r"id=%s done: 1 delivered" % q,
                         timeout=DELIVERY_WAIT)
            sink.wait_copies(t)
        for q, t in zip(queued, toks):
            check_on_the_wire(tap, sink, t, q)
            assert b"\r\nfirst\r\n..\r\n...\r\n..x\r\n....\r\n\r\n..\r\n" \
                b"end\r\n.\r\n" in tap.stream_with(t)
        # on one connection or two, as the queue happened to start them
        assert tap.transactions() == 2
    finally:
        tap.close()
    wait_queue_empty(srv)


def test_bare_cr_and_lf_in_a_queue_file_go_out_as_crlf(make_server, sinks):
    """No front door lets a bare CR or LF into the queue, but the client
    does not rely on that: a queue file holding them (written here while
    tegami is stopped, as an older version or a bug might have) goes out
    with every one made a CR LF and the dots after them stuffed, so that
    "\\n.\\n" can never end the DATA early (SMTP smuggling)."""
    srv = make_server()
    srv.stop()
    tok = token("RAWQUEUE")
    content = (b"From: <alice@local.test>\r\nSubject: " + tok + b"\r\n\r\n"
               b"bare\nlf\rcr\r\rtwo\n\rmixed\r\n"
               b"x\n.\nsmuggled MAIL FROM\r.\rdone\n..\r.\n"
               b"last without a line end")
    qid = "5EED0000%08X" % (time.monotonic_ns() & 0xFFFFFFFF)
    qdir = os.path.join(srv.dir, "queue")
    pw = pwd.getpwnam("tegami")
    files = {
        qid + ".msg": b"Return-Path: <alice@local.test>\r\n" + content,
        qid + ".env": ("version 2\nqueue-id %s\ncreated %d\n"
                       "sender alice@local.test\nsmtputf8 no\n"
                       "body 8bitmime\nattempts 0\nnext-attempt 0\n"
                       "warned no\nrecipient z@wire.test pending\n" % (
                           qid, int(time.time()))).encode(),
    }
    for name, data in files.items():      # the content first, as tegami
        path = os.path.join(qdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    sink = sinks(ip=WIRE_IP, port=WIRE_SINK_PORT, name="wire-sink")
    tap = WireTap(WIRE_IP, WIRE_SINK_PORT)
    try:
        srv.start()
        wait_queue_ready(srv, starts=2)
        srv.wait_log(r"id=%s done: 1 delivered" % qid, timeout=DELIVERY_WAIT)
        sink.wait_copies(tok)
        got = check_on_the_wire(tap, sink, tok,
                                files[qid + ".msg"])
        assert got.endswith(b"\r\n\r\nbare\r\nlf\r\ncr\r\n\r\ntwo\r\n\r\n"
                            b"mixed\r\nx\r\n.\r\nsmuggled MAIL FROM\r\n.\r\n"
                            b"done\r\n..\r\n.\r\nlast without a line end"
                            b"\r\n")
        assert b"\r\nx\r\n..\r\nsmuggled MAIL FROM\r\n..\r\ndone\r\n" \
            b"...\r\n..\r\nlast" in tap.stream_with(tok)
    finally:
        tap.close()
    wait_queue_empty(srv)


# ---------------------------------------------------------------------------
# 46(d): kill -9 during a remote delivery
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("where, opts, seen", [
    # -w: the sink waits before its 354, so tegami is stuck at DATA
    pytest.param("before-354", ["-w", "4"], "DATA", id="before-354"),
    # -W .: the sink has the whole message and waits before its 250: the
    # duplicate window of docs/queue.md
    pytest.param("before-250", ["-W", ".:4"], ".", id="before-250"),
])
def test_kill_9_during_remote_delivery_loses_nothing(make_server, sinks,
                                                     where, opts, seen):
    """Three messages to a slow sink; kill -9 of the whole server while
    the sink holds them; after the restart every one is delivered (a
    second copy of one the sink had whole is allowed), nothing bounces,
    the queue ends empty."""
    srv = make_server()
    slow = sinks(opts)
    toks = [token("K9-%s-%d" % (where, i)) for i in range(3)]
    qids = [submit(srv, [RCPT], message(t, body=b"x" * 70 + b"\r\n"))
            for t in toks]
    th.wait_until(lambda: slow.count(seen) >= 1, timeout=DELIVERY_WAIT,
                  what="a delivery in progress at the sink")
    # the sink sleeps 4 s before it answers: the kill lands in the middle
    srv.kill9_group()
    assert not re.search(r"done: 1 delivered", srv.log_text())
    envs = [f for f in queue_files(srv) if f.endswith(".env")]
    assert sorted(envs) == sorted(q + ".env" for q in qids), envs
    srv.start()
    wait_queue_ready(srv, starts=2)
    for q, t in zip(qids, toks):
        slow.wait_copies(t)
        srv.wait_log(r"id=%s done: 1 delivered, 0 failed" % q,
                     timeout=DELIVERY_WAIT)
    wait_queue_empty(srv)
    for t in toks:
        n = len(slow.copies(t))
        assert 1 <= n <= (2 if seen == "." else 1), (t, n)
    assert srv.new_files(ALICE) == []
