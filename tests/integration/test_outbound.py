# Outbound delivery (issue 5): two tegami servers on 127.0.0.2 and
# 127.0.0.3, port 25, each the MX of its own domain in a test DNS server
# (tests/dns_server.py) that both use as their resolver. A user of one
# sends to a user of the other through submission; the queue process
# finds the MX, delivers over STARTTLS, and bounces what cannot be
# delivered back into the sender's Maildir as an RFC 3464 report.
import email
import email.policy
import os
import subprocess
import time

import pytest

import tegami_harness as th
from tegami_harness import expect

HERE = os.path.dirname(os.path.abspath(__file__))
DNS_SERVER = os.path.join(HERE, "..", "dns_server.py")
A_IP, B_IP = "127.0.0.2", "127.0.0.3"
ALICE, ALICE_PW = "alice@a.test", "alice-Outbound-1"
BOB, BOB_PW = "bob@b.test", "bob-Outbound-2"
DELIVERY_WAIT = 30.0     # a bound that only catches a stuck queue

ZONE = """\
a.test MX 10 mx.a.test
mx.a.test A %(a)s
b.test MX 10 mx.b.test
mx.b.test A %(b)s
null.test MX 0 .
""" % {"a": A_IP, "b": B_IP}


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = tmp_path_factory.mktemp("dns")
    zone = d / "zone"
    zone.write_text(ZONE)
    p = subprocess.Popen(["/usr/bin/python3", DNS_SERVER, "--listen",
                          "127.0.0.1", "--port", "0", "--zone", str(zone)],
                         stdout=subprocess.PIPE, text=True)
    port = None
    deadline = time.monotonic() + th.HANG
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if line.startswith("port "):
            port = int(line.split()[1])
        if line.strip() == "ready":
            break
    assert port, "the test DNS server did not start"
    yield "127.0.0.1@%d" % port
    p.terminate()
    p.wait(10)


def make_server(ip, domain, hostname, users, resolver):
    srv = th.TegamiServer(
        users=users, aliases={}, domains=(domain,), listen=ip,
        hostname=hostname, port_base=0,
        extra_config=["resolver = " + resolver, "queue_retry_min = 1s",
                      "queue_retry_max = 2s", "workers = 1",
                      "auth_failure_delay_ms = 10"])
    srv.init()
    srv.start()
    return srv


@pytest.fixture(scope="module")
def servers(dns):
    a = make_server(A_IP, "a.test", "mx.a.test", {ALICE: ALICE_PW}, dns)
    b = make_server(B_IP, "b.test", "mx.b.test", {BOB: BOB_PW}, dns)
    yield a, b
    for s in (a, b):
        s.stop()


def submit(srv, user, password, sender, rcpts, body):
    with srv.connect_submissions() as c:
        c.ehlo()
        expect(c.auth_plain(user, password), "235 2.7.0")
        expect(c.cmd("MAIL FROM:<%s>" % sender), "250 ")
        for r in rcpts:
            expect(c.cmd("RCPT TO:<%s>" % r), "250 ")
        expect(c.cmd("DATA"), "354 ")
        c.send(body + b".\r\n")
        r = c.reply()
        expect(r, "250 2.0.0")
        expect(c.cmd("QUIT"), "221 ")


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
    a.wait_log(r"to=<bob@b\.test> relay=mx\.b\.test delivered status=2")
    assert "tls=TLSv1.3" in a.log_text()
    deadline = time.monotonic() + th.HANG
    while queue_files(a) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue_files(a) == []


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
