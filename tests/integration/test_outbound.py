# Outbound delivery (issue 5): two tegami servers on 127.0.0.2 and
# 127.0.0.3, port 25, each the MX of its own domain in a test DNS server
# (tests/dns_server.py) that both use as their resolver. A user of one
# sends to a user of the other through submission; the queue process
# finds the MX, delivers over STARTTLS, and bounces what cannot be
# delivered back into the sender's Maildir as an RFC 3464 report.
import email
import email.policy
import os
import signal
import subprocess
import time

import pytest

import tegami_harness as th
from fake_mx import FakeMX
from tegami_harness import expect

A_IP, B_IP = "127.0.0.2", "127.0.0.3"
ALICE, ALICE_PW = "alice@a.test", "alice-Outbound-1"
BOB, BOB_PW = "bob@b.test", "bob-Outbound-2"
DELIVERY_WAIT = 30.0     # a bound that only catches a stuck queue

PEER_IP = "127.0.0.5"     # fake SMTP peers (FakePeer) listen here
DOWN_IP = "127.0.0.9"     # nothing ever listens here
C_IP = "127.0.0.4"        # a third tegami, which sends through a smarthost

ZONE = """\
a.test MX 10 mx.a.test
mx.a.test A %(a)s
b.test MX 10 mx.b.test
mx.b.test A %(b)s
null.test MX 0 .
peer.test MX 10 mx.peer.test
mx.peer.test A %(peer)s
down.test MX 10 mx.down.test
mx.down.test A %(down)s
pf.test MX 10 mx.pf.test
mx.pf.test A %(pf)s
""" % {"a": A_IP, "b": B_IP, "peer": PEER_IP, "down": DOWN_IP,
       "pf": "127.0.0.11"}


def make_server(ip, domain, hostname, users, resolver, extra=()):
    srv = th.TegamiServer(
        users=users, aliases={}, domains=(domain,), listen=ip,
        hostname=hostname, port_base=0,
        extra_config=["resolver = " + resolver, "queue_retry_min = 1s",
                      "queue_retry_max = 2s", "workers = 1",
                      "auth_failure_delay_ms = 10"] + list(extra))
    srv.init()
    srv.start()
    return srv


@pytest.fixture(scope="module")
def servers(dns):
    b = make_server(B_IP, "b.test", "mx.b.test", {BOB: BOB_PW}, dns)
    # a trusts b's private CA (the root b's users import), so that its
    # deliveries to b are verified, not only encrypted
    a = make_server(A_IP, "a.test", "mx.a.test", {ALICE: ALICE_PW}, dns,
                    extra=["tls_trust_file = %s" % b.root_pem()])
    yield a, b
    for s in (a, b):
        s.stop()


def submit(srv, user, password, sender, rcpts, body):
    srv.submit(user, password, rcpts, body, sender=sender)


def wait_for_mail(srv, needle, timeout=DELIVERY_WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = th.files_containing(srv.dir, needle)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("no message with %r arrived at %s within %.0f s"
                         "\n%s" % (needle, srv.hostname, timeout,
                                   srv.log_tail()))


def queue_files(srv):
    q = os.path.join(srv.dir, "queue")
    return sorted(f for f in os.listdir(q) if f.endswith((".msg", ".env")))


def test_user_of_one_server_mails_a_user_of_the_other(servers):
    a, b = servers
    token = b"OUTBOUND-%d" % time.monotonic_ns()
    submit(a, ALICE, ALICE_PW, ALICE, [BOB],
           b"Subject: hello b\r\n\r\n" + token + b"\r\n")
    (path,) = wait_for_mail(b, token)
    text = th.read(path)
    # B received it from A's address over TLS, and A's Received went along
    assert b"from mx.a.test" in text and b"with ESMTPS" in text
    assert b"[127.0.0.2]" in text
    assert text.count(b"Return-Path:") == 1
    assert text.startswith(b"Return-Path: <alice@a.test>\r\n")
    # STARTTLS, and b's certificate verified for mx.b.test
    a.wait_log(r"to=<bob@b\.test> relay=mx\.b\.test delivered status=2\S* "
               r"tls=TLSv1\.3 \S+ verified \"250 ")
    deadline = time.monotonic() + th.HANG
    while queue_files(a) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue_files(a) == []


def test_a_big_message_goes_in_pipelined_bdat_chunks(servers):
    """1.5 MB from a to b: b offers CHUNKING and PIPELINING, so a sends
    BDAT chunks several at a time over verified TLS; b stores the exact
    bytes, every line of them, and a's next message to b reuses the
    connection."""
    a, b = servers
    token = b"BIGBDAT-%d" % time.monotonic_ns()
    lines = [b"%s line %06d %s" % (token, i, b"x" * 60)
             for i in range(20000)]
    lines[100] = b"." + lines[100]         # dot lines are content in BDAT
    lines[200] = b"."
    body = b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    submit(a, ALICE, ALICE_PW, ALICE, [BOB], body)
    (path,) = wait_for_mail(b, token + b" line 019999")
    text = th.read(path)
    # a added Date: and Message-ID: to the header section at submission
    assert text.split(b"\r\n\r\n", 1)[1] == \
        body.split(b"\r\n\r\n", 1)[1], len(text)
    a.wait_log(r"to=<bob@b\.test> relay=mx\.b\.test delivered status=2\S* "
               r"tls=TLSv1\.3 \S+ verified")
    token2 = b"AFTERBIG-%d" % time.monotonic_ns()
    submit(a, ALICE, ALICE_PW, ALICE, [BOB],
           b"Subject: after\r\n\r\n" + token2 + b"\r\n")
    wait_for_mail(b, token2)
    a.wait_log(r"to=<bob@b\.test> relay=mx\.b\.test delivered .* "
               r"conn_use=[2-9]")


def read_bounce(srv, token):
    (path,) = wait_for_mail(srv, token)
    msg = email.message_from_bytes(th.read(path), policy=email.policy.SMTP)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"].startswith("auto-replied")
    parts = list(msg.iter_parts())
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() in ("message/delivery-status",
                                           "message/global-delivery-status")
    return msg, parts


def test_unknown_remote_user_bounces_to_the_sender(servers):
    a, b = servers
    token = b"BOUNCE-%d" % time.monotonic_ns()
    submit(a, ALICE, ALICE_PW, ALICE, ["nobody@b.test"],
           b"Subject: to nobody " + token + b"\r\n\r\nbody\r\n")
    msg, parts = read_bounce(a, token)
    status = parts[1].as_bytes()
    assert b"nobody@b.test" in status
    assert b"Status: 5.1.1" in status
    assert b"Action: failed" in status
    assert msg["To"] == "<alice@a.test>" or "alice@a.test" in msg["To"]
    a.wait_log(r"to=<nobody@b\.test> relay=mx\.b\.test failed")


def test_null_mx_bounces_at_once(servers):
    a, _ = servers
    token = b"NULLMX-%d" % time.monotonic_ns()
    submit(a, ALICE, ALICE_PW, ALICE, ["someone@null.test"],
           b"Subject: null mx " + token + b"\r\n\r\nbody\r\n")
    msg, parts = read_bounce(a, token)
    assert b"Status: 5.1.10" in parts[1].as_bytes()


def test_bounce_of_a_bounce_is_never_sent(servers):
    """A failed DSN (null sender) is dropped, never bounced again."""
    a, _ = servers
    before = len(th.all_mail_files(a.dir))
    # <> is allowed on submission: a DSN-like message to a null-MX domain
    with a.connect_submissions() as c:
        c.ehlo()
        expect(c.auth_plain(ALICE, ALICE_PW), "235 2.7.0")
        expect(c.cmd("MAIL FROM:<>"), "250 ")
        expect(c.cmd("RCPT TO:<x@null.test>"), "250 ")
        expect(c.cmd("DATA"), "354 ")
        c.send(b"Subject: null sender\r\n\r\nx\r\n.\r\n")
        expect(c.reply(), "250 ")
    a.wait_log(r"to=<x@null\.test>.*|MX lookup: null")
    deadline = time.monotonic() + th.HANG
    while queue_files(a) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue_files(a) == []
    time.sleep(1)
    assert len(th.all_mail_files(a.dir)) == before


def FakePeer(rcpt_replies):
    """A fake MX for peer.test (fake_mx.py) answering RCPT with
    rcpt_replies[n] on the n-th connection."""
    return FakeMX(PEER_IP, "mx.peer.test", rcpt_replies)


def test_temporary_failure_is_retried(servers):
    """A 451 to RCPT keeps the recipient pending; the retry (after
    queue_retry_min) delivers it, once."""
    a, _ = servers
    peer = FakePeer(["451 4.3.0 try again later", "250 2.1.5 ok"])
    try:
        token = b"RETRY-%d" % time.monotonic_ns()
        submit(a, ALICE, ALICE_PW, ALICE, ["someone@peer.test"],
               b"Subject: retry\r\n\r\n" + token + b"\r\n")
        a.wait_log(r"to=<someone@peer\.test> relay=mx\.peer\.test deferred "
                   r"status=4\.3\.0", timeout=DELIVERY_WAIT)
        a.wait_log(r"to=<someone@peer\.test> relay=mx\.peer\.test "
                   r"delivered", timeout=DELIVERY_WAIT)
        assert peer.connections == 2
        assert len(peer.messages) == 1 and token in peer.messages[0]
        # our Return-Path is not sent on to another MTA
        assert b"Return-Path:" not in peer.messages[0]
    finally:
        peer.close()


def test_permanent_failure_from_a_peer_bounces(servers):
    a, _ = servers
    peer = FakePeer(["550 5.1.1 no such user here"])
    try:
        token = b"PEER550-%d" % time.monotonic_ns()
        submit(a, ALICE, ALICE_PW, ALICE, ["gone@peer.test"],
               b"Subject: " + token + b"\r\n\r\nbody\r\n")
        msg, parts = read_bounce(a, token)
        status = parts[1].as_bytes()
        assert b"Status: 5.1.1" in status
        assert b"Remote-MTA: dns; mx.peer.test" in status
        assert b"no such user here" in status
        assert peer.connections == 1 and peer.messages == []
    finally:
        peer.close()


def test_unreachable_domain_bounces_after_max_age(dns):
    """Connections refused until queue_max_age: the recipient fails with
    4.4.7 and the sender gets the bounce (the last error included)."""
    d = make_server("127.0.0.6", "d.test", "mx.d.test",
                    {"dave@d.test": "dave-Outbound-3"}, dns,
                    extra=["queue_max_age = 10s"])
    try:
        token = b"MAXAGE-%d" % time.monotonic_ns()
        submit(d, "dave@d.test", "dave-Outbound-3", "dave@d.test",
               ["x@down.test"], b"Subject: " + token + b"\r\n\r\nbody\r\n")
        d.wait_log(r"id=\w+ deferred: 1 pending", timeout=DELIVERY_WAIT)
        msg, parts = read_bounce(d, token)
        status = parts[1].as_bytes()
        assert b"Status: 4.4.7" in status
        assert b"x@down.test" in status
        assert b"Action: failed" in status
    finally:
        d.stop()


def test_kill_9_loses_nothing_and_resumes(dns):
    """Messages waiting for a destination that is down survive kill -9 of
    the whole server; after the restart each is delivered exactly once."""
    e = make_server("127.0.0.7", "e.test", "mx.e.test",
                    {"erin@e.test": "erin-Outbound-4"}, dns)
    peer = None
    try:
        tokens = [b"K9-%d-%d" % (i, time.monotonic_ns()) for i in range(5)]
        for t in tokens:
            submit(e, "erin@e.test", "erin-Outbound-4", "erin@e.test",
                   ["r@peer.test"], b"Subject: k9\r\n\r\n" + t + b"\r\n")
        e.wait_log(r"relay=|no address|deferred", timeout=DELIVERY_WAIT)
        for pid in e.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        e.proc.wait(th.HANG)
        e.intentionally_dead = True
        envs = [f for f in queue_files(e) if f.endswith(".env")]
        assert len(envs) == 5, queue_files(e)
        peer = FakePeer(["250 2.1.5 ok"])
        e.start()
        deadline = time.monotonic() + DELIVERY_WAIT
        while len(peer.messages) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        got = sorted(t for t in tokens for m in peer.messages if t in m)
        assert got == sorted(tokens), (len(peer.messages), e.log_tail())
        time.sleep(2.5)      # longer than queue_retry_max: no second copy
        assert len(peer.messages) == 5
        assert queue_files(e) == []
    finally:
        if peer is not None:
            peer.close()
        e.stop()


def test_smarthost_with_auth(dns, servers, tmp_path):
    """OP25B: a server that may not reach port 25 sends everything through
    the relay host's submission port (B's 587: STARTTLS verified against
    B's root, AUTH PLAIN); B then delivers it."""
    a, b = servers
    b.user_add("relay@b.test", "relay-Outbound-5")
    b.tegami("user", "send-as", "relay@b.test", "@c.test", check=True)
    auth = tmp_path / "relay-auth"
    auth.write_text("relay@b.test relay-Outbound-5\n")
    os.chmod(auth, 0o600)
    c = make_server(C_IP, "c.test", "mx.c.test",
                    {"carol@c.test": "carol-Outbound-6"}, dns,
                    extra=["relay_host = mx.b.test:587",
                           "relay_auth_file = %s" % auth,
                           "tls_trust_file = %s" % b.root_pem()])
    try:
        token = b"SMARTHOST-%d" % time.monotonic_ns()
        time.sleep(1.5)      # B's auth process notices the new user
        submit(c, "carol@c.test", "carol-Outbound-6", "carol@c.test", [BOB],
               b"Subject: via relay\r\n\r\n" + token + b"\r\n")
        (path,) = wait_for_mail(b, token)
        text = th.read(path)
        assert b"with ESMTPSA" in text       # B took it with AUTH over TLS
        c.wait_log(r"to=<bob@b\.test> relay=mx\.b\.test delivered .* "
                   r"verified")
        b.wait_log(r"authenticated user=<relay@b\.test>")
    finally:
        c.stop()


def spki_sha256(cert_path):
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey",
                          "-noout"], check=True, stdout=subprocess.PIPE).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, check=True, stdout=subprocess.PIPE).stdout
    import hashlib
    return hashlib.sha256(der).hexdigest()


def test_dane_verifies_and_refuses_a_mismatch(tmp_path):
    """RFC 7672: with a signed MX and signed TLSA records (a trust anchor
    configured), delivery needs TLS with a certificate that matches the
    TLSA record; a mismatching record means no delivery, not a fallback
    to unauthenticated TLS or cleartext."""
    g = th.TegamiServer(users={"gina@dane.test": "gina-Outbound-7",
                               "gina@bad.dane.test": "gina-Outbound-7"},
                        aliases={}, domains=("dane.test", "bad.dane.test"),
                        listen="127.0.0.8", hostname="mx.dane.test",
                        port_base=0, extra_config=["workers = 1"])
    g.init()
    digest = spki_sha256(os.path.join(g.dir, "tls", "mx.dane.test.crt"))
    zone = ("dane.test MX 10 mx.dane.test\n"
            "mx.dane.test A 127.0.0.8\n"
            "_25._tcp.mx.dane.test TLSA 3 1 1 %s\n"
            "bad.dane.test MX 10 mx.bad.dane.test\n"
            "mx.bad.dane.test A 127.0.0.8\n"
            "_25._tcp.mx.bad.dane.test TLSA 3 1 1 %s\n" % (digest, "00" * 32))
    dns_proc, resolver, anchor = th.start_dns_server(zone, tmp_path,
                                           sign="dane.test")
    f = None
    try:
        g.start()
        f = make_server("127.0.0.10", "f.test", "mx.f.test",
                        {"fred@f.test": "fred-Outbound-8"}, resolver,
                        extra=["dns_trust_anchor = %s" % anchor])
        token = b"DANE-%d" % time.monotonic_ns()
        submit(f, "fred@f.test", "fred-Outbound-8", "fred@f.test",
               ["gina@dane.test"], b"Subject: dane\r\n\r\n" + token + b"\r\n")
        wait_for_mail(g, token)
        f.wait_log(r"to=<gina@dane\.test> relay=mx\.dane\.test delivered "
                   r".* verified")
        bad = b"DANEBAD-%d" % time.monotonic_ns()
        submit(f, "fred@f.test", "fred-Outbound-8", "fred@f.test",
               ["gina@bad.dane.test"],
               b"Subject: dane bad\r\n\r\n" + bad + b"\r\n")
        f.wait_log(r"host=mx\.bad\.dane\.test: TLS handshake .*failed.*"
                   r"no matching DANE TLSA records", timeout=DELIVERY_WAIT)
        f.wait_log(r"id=\w+ deferred: 1 pending", timeout=DELIVERY_WAIT)
        time.sleep(3)        # retries too (queue_retry_max 2 s)
        assert th.files_containing(g.dir, bad) == []
    finally:
        if f is not None:
            f.stop()
        g.stop()
        dns_proc.terminate()
        dns_proc.wait(10)


def test_delivery_to_a_real_postfix(servers, tmp_path):
    """A real Postfix (smtpd with STARTTLS, virtual Maildir) as the
    receiving MX of pf.test."""
    import glob
    from postfix_peer import PostfixPeer
    a, _ = servers
    key, crt = str(tmp_path / "pf.key"), str(tmp_path / "pf.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=mx.pf.test"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    os.chmod(key, 0o644)
    pf = PostfixPeer(addr="127.0.0.11", port=25, hostname="mx.pf.test",
                     virtual={"pf.test": ["paul"]},
                     main_extra={"smtpd_tls_security_level": "may",
                                 "smtpd_tls_cert_file": crt,
                                 "smtpd_tls_key_file": key})
    try:
        pf.setup()
        pf.start()
        token = b"POSTFIX-%d" % time.monotonic_ns()
        submit(a, ALICE, ALICE_PW, ALICE, ["paul@pf.test"],
               b"Subject: to postfix\r\n\r\n" + token + b"\r\n")
        a.wait_log(r"to=<paul@pf\.test> relay=mx\.pf\.test delivered "
                   r"status=2\S* tls=TLSv1\.[23]", timeout=DELIVERY_WAIT)
        deadline = time.monotonic() + DELIVERY_WAIT
        found = []
        while not found and time.monotonic() < deadline:
            for f in glob.glob(os.path.join(pf.maildir("pf.test", "paul"),
                                            "new", "*")):
                if token in th.read(f):
                    found.append(f)
            time.sleep(0.1)
        assert found, pf.log()[-3000:]
        text = th.read(found[0])
        assert b"from mx.a.test" in text and b"ESMTPS" in text
    finally:
        pf.stop()
        pf.cleanup()
