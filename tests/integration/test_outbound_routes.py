# Per-destination routes and TLS policies (issue 5; docs/queue.md "Routes
# and TLS policy"): a sending tegami A whose relay_host is unreachable,
# and whose routes file (STATE/routes, rewritten by each test while A
# runs) sends some domains elsewhere: to the MX of a second tegami B, to
# B's submission port with AUTH, to a tegami without a certificate, and
# to a scripted peer whose STARTTLS handshake breaks (the MAY fallback) or
# whose certificate nobody trusts. All on 127.0.0.3x, with a test DNS
# server (tests/dns_server.py) as A's resolver.
import os
import pwd
import subprocess
import time

import pytest

import tegami_harness as th
from fake_mx import FakeMX

A_IP = "127.0.0.31"       # the sender
B_IP = "127.0.0.32"       # a tegami with STARTTLS (its own CA)
P_IP = "127.0.0.33"       # a tegami without a certificate: no STARTTLS
F_IP = "127.0.0.34"       # FakePeer: STARTTLS that breaks, or is refused
DOWN = "127.0.0.39"       # nothing listens: the unreachable relay_host

ALICE, ALICE_PW = "alice@a.test", "alice-Routes-1"
BOB, BOB_PW = "bob@b.test", "bob-Routes-2"
RELAY, RELAY_PW = "relay@b.test", "relay-Routes-3"
PAT, PAT_PW = "pat@p.test", "pat-Routes-4"
DELIVERY_WAIT = 30.0     # a bound that only catches a stuck queue

ZONE = """\
b.test MX 10 mx.b.test
mx.b.test A %(b)s
alias.test MX 10 mx.alias.test
mx.alias.test A %(b)s
p.test MX 10 mx.p.test
mx.p.test A %(p)s
f.test MX 10 mx.f.test
mx.f.test A %(f)s
""" % {"b": B_IP, "p": P_IP, "f": F_IP}


def finish(srv):
    """Stops srv; its log must hold no sanitizer report and no child
    that died; then its state directory goes (kept when it fails)."""
    srv.stop()
    log = srv.log_text()
    problems = srv.sanitizer_reports() + [
        l for l in log.splitlines()
        if "; restarting" in l or "cannot run" in l]
    if problems:
        srv.failed = True
        raise AssertionError("%s:\n%s" % (srv.log_path,
                                          "\n".join(problems[:20])))
    srv.cleanup()


def make_server(ip, domain, users, resolver, extra=()):
    srv = th.TegamiServer(
        users=users, aliases={}, domains=(domain,), listen=ip,
        hostname="mx." + domain, port_base=0,
        extra_config=["resolver = " + resolver, "queue_retry_min = 1s",
                      "queue_retry_max = 2s", "workers = 1",
                      "auth_failure_delay_ms = 10"] + list(extra))
    srv.init()
    return srv


@pytest.fixture(scope="module")
def peers(dns):
    """B (STARTTLS, AUTH on 587) and P (no certificate at all)."""
    b = make_server(B_IP, "b.test", {BOB: BOB_PW, RELAY: RELAY_PW}, dns)
    b.tegami("user", "send-as", RELAY, "@a.test", check=True)
    p = make_server(P_IP, "p.test", {PAT: PAT_PW}, dns)
    tls_dir = os.path.join(p.dir, "tls")
    for name in os.listdir(tls_dir):
        os.unlink(os.path.join(tls_dir, name))
    try:
        b.start()
        p.start()
        yield b, p
    finally:
        try:
            finish(b)
        finally:
            finish(p)


@pytest.fixture(scope="module")
def sender(dns, peers):
    """A: everything through an unreachable relay_host unless a route
    says otherwise; B's root trusted (tls_trust_file)."""
    b, _ = peers
    a = make_server(A_IP, "a.test", {ALICE: ALICE_PW}, dns,
                    extra=["relay_host = %s:587" % DOWN,
                           "tls_trust_file = %s" % b.root_pem()])
    # root's credentials file, read at start before the queue process
    # drops root: later reloads keep what was read then
    root_auth = os.path.join(a.dir, "root-auth")
    with open(root_auth, "w") as f:
        f.write("%s %s\n" % (RELAY, RELAY_PW))
    os.chmod(root_auth, 0o600)
    with open(os.path.join(a.dir, "routes"), "w") as f:
        f.write("# one route, for a domain no test uses\n"
                "q.test relay=mx.b.test:587 auth=root-auth\n")
    try:
        a.start()
        a.wait_log(r"queue ready: .* 1 routes")
        yield a
    finally:
        finish(a)


@pytest.fixture
def a(sender):
    """A, with whatever a test leaves in its queue deleted afterwards."""
    yield sender
    qdir = os.path.join(sender.dir, "queue")
    for name in os.listdir(qdir):
        if name.endswith(".env"):
            sender.tegami("queue", "delete", name[:-4])


def set_routes(srv, text, ok=True):
    """Replaces STATE/routes (rename: a new file) and waits until the
    running queue process has read it, or refused it."""
    log = srv.log_text()
    before = log.count("queue: routes changed:")
    path = os.path.join(srv.dir, "routes")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)
    th.wait_until(lambda: srv.log_text().count("queue: routes changed:") >
                  before, timeout=th.HANG, what="the routes to be read")
    last = srv.log_text().split("queue: routes changed:")[-1].split("\n")[0]
    assert ("keeping the" not in last) == ok, last


def submit(srv, rcpts, body, user=ALICE, password=ALICE_PW):
    """Through A's submissions port; returns the queue id."""
    return srv.submit(user, password, rcpts, body)


def wait_for_mail(srv, needle, timeout=DELIVERY_WAIT):
    return th.wait_until(lambda: th.files_containing(srv.dir, needle),
                         timeout=timeout,
                         what="%r at %s" % (needle, srv.hostname))


def queue_show(srv, qid):
    p = srv.tegami("queue", "show", qid)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def rcpt_line(show, addr):
    for line in show.splitlines():
        if line.startswith("  recipient <%s>" % addr):
            return line
    raise AssertionError("no recipient %s in\n%s" % (addr, show))


def attempts_done(srv, qid, n):
    """Waits until the message has had n attempts (its envelope says)."""
    def done():
        m = [l for l in queue_show(srv, qid).splitlines()
             if l.startswith("  attempts ")]
        return m and int(m[0].split()[1]) >= n
    th.wait_until(done, timeout=DELIVERY_WAIT, what="%d attempts" % n)


def token(name):
    return b"%s-%d" % (name.encode(), time.monotonic_ns())


def FakePeer(starttls, cert=None, key=None):
    """A fake MX for f.test (fake_mx.py) whose STARTTLS works ("tls"), is
    refused ("refuse") or breaks ("garbage")."""
    return FakeMX(F_IP, "mx.f.test", starttls=starttls, cert=cert, key=key)


def self_signed(tmp_path, cn):
    key, crt = str(tmp_path / "peer.key"), str(tmp_path / "peer.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:" + cn],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return crt, key


# ---- routes: relay=mx, relay=HOST:PORT with auth= ------------------------

def test_relay_mx_route_beats_an_unreachable_relay_host(a, peers):
    """relay_host is down: b.test (relay=mx) is delivered to B's MX, the
    other domain waits in the queue with the relay's error."""
    b, _ = peers
    set_routes(a, "b.test relay=mx\n")
    t = token("ROUTE-MX")
    qid = submit(a, [BOB, "pat@p.test"],
                 b"Subject: routes\r\n\r\n" + t + b"\r\n")
    (path,) = wait_for_mail(b, t)
    text = th.read(path)
    assert b"from mx.a.test" in text and b"with ESMTPS" in text
    a.wait_log(r"(?m)to=<bob@b\.test> relay=mx\.b\.test delivered "
               r"status=2\S* tls=TLSv1\.[23] \S+ verified \"250 [^\"]*\" "
               r"route=b\.test policy=may$")
    a.wait_log(r"id=%s domain=p\.test host=%s: connect to %s:587 failed: "
               r".*; trying the next \(route=none policy=verify\)" % (
                   qid, DOWN.replace(".", r"\."), DOWN.replace(".", r"\.")),
               timeout=DELIVERY_WAIT)
    a.wait_log(r"id=%s deferred: 1 pending, 1 delivered" % qid,
               timeout=DELIVERY_WAIT)
    show = queue_show(a, qid)
    assert "> delivered" in rcpt_line(show, BOB)
    line = rcpt_line(show, "pat@p.test")
    assert "> pending" in line and "remote %s" % DOWN in line, line
    assert "status 4.4.1" in line and "connect to" in line, line
    assert th.files_containing(peers[1].dir, t) == []


def test_relay_route_to_a_submission_port_with_auth(a, peers):
    """relay=HOST:PORT auth=FILE (relative to the state directory): B's
    587, STARTTLS verified against B's root (tls_trust_file), AUTH with
    the route's credentials. The file is new while A runs, so it belongs
    to the user account, which the queue process now runs as."""
    b, _ = peers
    auth = os.path.join(a.dir, "b-auth")
    with open(auth, "w") as f:
        f.write("%s %s\n" % (RELAY, RELAY_PW))
    os.chmod(auth, 0o600)
    os.chown(auth, pwd.getpwnam("tegami").pw_uid, -1)
    set_routes(a, "# B's submission port\n"
                  "b.test relay=mx.b.test:587 auth=b-auth\n")
    t = token("ROUTE-AUTH")
    submit(a, [BOB], b"Subject: via 587\r\n\r\n" + t + b"\r\n")
    (path,) = wait_for_mail(b, t)
    assert b"with ESMTPSA" in th.read(path)      # AUTH over TLS
    b.wait_log(r"authenticated user=<relay@b\.test>")
    a.wait_log(r"(?m)to=<bob@b\.test> relay=mx\.b\.test delivered "
               r"status=2\S* tls=TLSv1\.[23] \S+ verified \"250 [^\"]*\" "
               r"route=b\.test policy=verify$")
    assert RELAY_PW not in a.log_text()


def test_an_open_credentials_file_is_refused(a):
    """auth= files hold a password: one that others may read is refused
    like a broken routes file (the routes in use stay)."""
    auth = os.path.join(a.dir, "open-auth")
    with open(auth, "w") as f:
        f.write("u p\n")
    os.chmod(auth, 0o644)
    set_routes(a, "b.test relay=mx.b.test:587 auth=open-auth\n", ok=False)
    a.wait_log(r"routes:1: auth=open-auth: \S+open-auth: group or others "
               r"have access")


# ---- TLS policies ---------------------------------------------------------

def test_verify_defers_a_wrong_name_and_an_unknown_ca(a, peers, tmp_path):
    """tls=verify: B's certificate (trusted CA) under another MX name, and
    a self-signed certificate, both fail: deferred, with the reason in
    the log and in `tegami queue show`, and nothing is sent."""
    b, _ = peers
    crt, key = self_signed(tmp_path, "mx.f.test")
    peer = FakePeer("tls", crt, key)
    try:
        set_routes(a, "alias.test relay=mx tls=verify\n"
                      "f.test relay=mx tls=verify\n")
        t = token("VERIFY")
        qid = submit(a, ["x@alias.test", "y@f.test"],
                     b"Subject: verify\r\n\r\n" + t + b"\r\n")
        a.wait_log(r"id=%s domain=alias\.test host=mx\.alias\.test: TLS "
                   r"handshake with \S+ failed: .*certificate verify "
                   r"failed.*hostname mismatch.*; trying the next "
                   r"\(route=alias\.test policy=verify\)" % qid,
                   timeout=DELIVERY_WAIT)
        a.wait_log(r"id=%s domain=f\.test host=mx\.f\.test: TLS handshake "
                   r"with \S+ failed: .*certificate verify failed.*; trying "
                   r"the next \(route=f\.test policy=verify\)" % qid,
                   timeout=DELIVERY_WAIT)
        a.wait_log(r"id=%s deferred: 2 pending" % qid, timeout=DELIVERY_WAIT)
        show = queue_show(a, qid)
        for addr, host in (("x@alias.test", "mx.alias.test"),
                           ("y@f.test", "mx.f.test")):
            line = rcpt_line(show, addr)
            assert "> pending" in line and "remote " + host in line, line
            assert "status 4.7.5" in line, line
            assert "certificate verify failed" in line, line
        assert "hostname mismatch" in rcpt_line(show, "x@alias.test")
        # never a plaintext retry, never a message
        assert peer.messages == [] and peer.conns
        assert all("MAIL" not in " ".join(c) for c in peer.conns)
        assert "retrying in plaintext" not in a.log_text()
        assert th.files_containing(b.dir, t) == []
    finally:
        peer.close()


def test_encrypt_defers_a_peer_without_starttls(a, peers):
    b, p = peers
    set_routes(a, "p.test relay=mx tls=encrypt\n")
    t = token("ENCRYPT")
    qid = submit(a, [PAT], b"Subject: encrypt\r\n\r\n" + t + b"\r\n")
    a.wait_log(r"id=%s domain=p\.test host=mx\.p\.test: TLS required but "
               r"\S+ does not offer STARTTLS; trying the next "
               r"\(route=p\.test policy=encrypt\)" % qid,
               timeout=DELIVERY_WAIT)
    a.wait_log(r"id=%s deferred: 1 pending" % qid, timeout=DELIVERY_WAIT)
    line = rcpt_line(queue_show(a, qid), PAT)
    assert "> pending" in line and "status 4.7.4" in line, line
    assert "does not offer STARTTLS" in line, line
    assert th.files_containing(p.dir, t) == []
    # the same peer with the default policy (may) takes it in plaintext
    set_routes(a, "p.test relay=mx\n")
    (path,) = wait_for_mail(p, t)
    received = th.read(path).split(b"Received: from mx.a.test", 1)[1][:200]
    assert b"by mx.p.test (tegami) with ESMTP id" in received, received
    a.wait_log(r"(?m)to=<pat@p\.test> relay=mx\.p\.test delivered "
               r"status=2\S* tls=none \"250 [^\"]*\" route=p\.test "
               r"policy=may$")


def test_none_sends_without_starttls(a, peers):
    """tls=none: B offers STARTTLS, A does not use it."""
    b, _ = peers
    set_routes(a, "b.test relay=mx tls=none\n")
    t = token("NONE")
    submit(a, [BOB], b"Subject: plain\r\n\r\n" + t + b"\r\n")
    (path,) = wait_for_mail(b, t)
    text = th.read(path)
    # B's own trace line: plain ESMTP (A's line before it says ESMTPSA,
    # the submission over TLS)
    received = text.split(b"Received: from mx.a.test", 1)[1][:200]
    assert b"by mx.b.test (tegami) with ESMTP id" in received, received
    a.wait_log(r"(?m)to=<bob@b\.test> relay=mx\.b\.test delivered "
               r"status=2\S* tls=none \"250 [^\"]*\" route=b\.test "
               r"policy=none$")


# ---- the MAY fallback -----------------------------------------------------

def test_may_retries_in_plaintext_after_a_failed_handshake(a):
    """tls=may (the default): the STARTTLS handshake fails, A connects
    again at once without STARTTLS and delivers, and says so; with
    tls=encrypt the same peer gets no plaintext retry."""
    peer = FakePeer("garbage")
    try:
        set_routes(a, "f.test relay=mx\n")
        t = token("FALLBACK")
        qid = submit(a, ["z@f.test"], b"Subject: fallback\r\n\r\n" + t +
                     b"\r\n")
        a.wait_log(r"id=%s domain=f\.test host=mx\.f\.test: TLS handshake "
                   r"failed: .*; retrying in plaintext \(route=f\.test "
                   r"policy=may\)" % qid, timeout=DELIVERY_WAIT)
        a.wait_log(r"(?m)id=%s to=<z@f\.test> relay=mx\.f\.test delivered "
                   r"status=2\S* tls=none \"250 2\.0\.0 accepted\" "
                   r"route=f\.test policy=may tls_fallback=handshake$" % qid,
                   timeout=DELIVERY_WAIT)
        th.wait_until(lambda: len(peer.messages) == 1, what="the message")
        assert t in peer.messages[0]
        assert len(peer.conns) == 2, peer.conns
        assert "STARTTLS" in peer.conns[0]
        assert "STARTTLS" not in peer.conns[1]
        assert any(c.startswith("MAIL FROM:<alice@a.test>")
                   for c in peer.conns[1])

        set_routes(a, "f.test relay=mx tls=encrypt\n")
        t2 = token("NOFALLBACK")
        qid2 = submit(a, ["z@f.test"], b"Subject: no fallback\r\n\r\n" +
                      t2 + b"\r\n")
        attempts_done(a, qid2, 2)
        line = rcpt_line(queue_show(a, qid2), "z@f.test")
        assert "> pending" in line and "TLS handshake" in line, line
        assert len(peer.messages) == 1
        assert all("MAIL" not in " ".join(c) for c in peer.conns[2:])
        assert a.log_text().count("retrying in plaintext") == 1
    finally:
        peer.close()


def test_may_goes_on_in_plaintext_when_starttls_is_refused(a):
    peer = FakePeer("refuse")
    try:
        set_routes(a, "f.test relay=mx tls=may\n")
        t = token("REFUSED")
        qid = submit(a, ["r@f.test"], b"Subject: refused\r\n\r\n" + t +
                     b"\r\n")
        a.wait_log(r"id=%s domain=f\.test host=mx\.f\.test: STARTTLS "
                   r"refused: 454 4\.7\.0 TLS not available right now; went "
                   r"on in plaintext \(route=f\.test policy=may\)" % qid,
                   timeout=DELIVERY_WAIT)
        a.wait_log(r"(?m)id=%s to=<r@f\.test> relay=mx\.f\.test delivered "
                   r"status=2\S* tls=none \"250 2\.0\.0 accepted\" "
                   r"route=f\.test policy=may tls_fallback=refused$" % qid,
                   timeout=DELIVERY_WAIT)
        assert len(peer.conns) == 1 and len(peer.messages) == 1
    finally:
        peer.close()


# ---- changes while running, and at start ----------------------------------

def test_a_changed_routes_file_takes_effect_without_restart(a, peers):
    """A message waiting for the unreachable relay goes out as soon as a
    route sends its domain to the MX; a broken file later is logged and
    the routes in use stay; SIGHUP reads the file again too."""
    b, _ = peers
    set_routes(a, "# nothing for b.test\n"
                  "q.test relay=mx.b.test:587 auth=root-auth\n")
    a.wait_log(r"queue: routes: 1 auth= files cannot be read any more "
               r"\(root's, read at start\); keeping what was read before")
    t = token("RELOAD")
    qid = submit(a, [BOB], b"Subject: reload\r\n\r\n" + t + b"\r\n")
    attempts_done(a, qid, 1)
    assert th.files_containing(b.dir, t) == []
    set_routes(a, "b.test relay=mx\n")
    wait_for_mail(b, t)
    a.wait_log(r"id=%s to=<bob@b\.test> relay=mx\.b\.test delivered .* "
               r"route=b\.test policy=may" % qid)

    set_routes(a, "b.test relay=mx\nbad..test tls=none\n", ok=False)
    a.wait_log(r"queue: routes changed: \S+/routes:2: \"bad\.\.test\": not "
               r"a domain, \"\.domain\" or \"\*\"; keeping the 1 routes in "
               r"use")
    t2 = token("KEPT")
    submit(a, [BOB], b"Subject: kept\r\n\r\n" + t2 + b"\r\n")
    wait_for_mail(b, t2)

    before = a.log_text().count("queue: routes reload:")
    with open(os.path.join(a.dir, "routes"), "w") as f:
        f.write("b.test relay=mx tls=none\n")
    a.signal(1)     # SIGHUP to the parent, which passes it on
    th.wait_until(lambda: a.log_text().count("queue: routes reload:") >
                  before, what="the reload")
    assert "queue: routes reload: 1 routes" in a.log_text()


def test_a_broken_routes_file_stops_the_server_at_start(dns, tmp_path):
    """The queue process refuses to start (exit 78), so the server stops;
    `tegami config check` names the same file and line."""
    s = make_server("127.0.0.35", "s.test", {}, dns)
    routes = os.path.join(s.dir, "routes")
    with open(routes, "w") as f:
        f.write("s2.test relay=mx\n\n* tls=sometimes\n")
    try:
        p = s.tegami("config", "check")
        assert p.returncode == 1
        assert b"%s:3: tls=sometimes: want none, may, encrypt or verify" % (
            routes.encode()) in p.stderr, p.stderr
        s.start(wait=False)
        assert s.wait_exit(th.HANG) not in (None, 0), s.log_tail()
        log = s.log_text()
        assert "routes:3: tls=sometimes" in log, log
        assert "queue process cannot run; stopping" in log, log

        with open(routes, "w") as f:
            f.write("s2.test relay=mx\n* tls=encrypt\n")
        p = s.tegami("config", "check")
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().splitlines() == [
            s.conf + ": ok", routes + ": ok, 2 routes"]
        s.stop()
        assert s.sanitizer_reports() == []
        s.cleanup()
    finally:
        s.stop()
