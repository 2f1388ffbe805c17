# A real Postfix as tegami's SMTP peer: Postfix (127.0.0.2) takes mail for
# local.test from smtplib and relays it to tegami (127.0.0.1); tegami must
# deliver it byte for byte, with both hops in the trace headers (RFC 5321
# 4.4), answer per recipient (3.3), and let Postfix retry after a refusal
# to connect (4.5.4.1) and bounce what tegami rejects (4.2.5, 6.1).
import os
import re
import smtplib

import pytest

import tegami_harness as th
from postfix_peer import PostfixPeer, free_port

PEER_ADDR = "127.0.0.2"
PEER_HOST = "mx.peer.test"
DELIVERY_TIMEOUT = 30


@pytest.fixture
def peer_factory():
    """make(tegami_port) -> a started PostfixPeer relaying local.test to
    [127.0.0.1]:tegami_port; stopped (by PID if need be) after the test."""
    peers = []

    def make(tegami_port, start=True):
        p = PostfixPeer(addr=PEER_ADDR, port=free_port(PEER_ADDR),
                        hostname=PEER_HOST,
                        relay={th.DOMAIN: "[%s]:%d" % (th.LISTEN,
                                                       tegami_port)})
        peers.append(p)
        if start:
            p.start()
        return p

    yield make
    for p in peers:
        p.cleanup()


def test_peer_processes_are_stopped():
    """The helper's stop() leaves no Postfix process behind."""
    p = PostfixPeer(addr=PEER_ADDR, port=free_port(PEER_ADDR),
                    hostname=PEER_HOST)
    try:
        p.start()
        pids = p.pids()
        # master, and at least qmgr and pickup
        assert len(pids) >= 3, pids
        p.stop()
        assert [x for x in pids if os.path.exists("/proc/%d" % x) and
                not th._is_zombie(x)] == []
    finally:
        p.cleanup()


def _body(token):
    """A message that exercises transparency and 8-bit data: lines that
    begin with dots, trailing blanks, tabs, a 998-octet line, UTF-8, about
    200 KB in all."""
    head = ("From: Sender <sender@ext.test>\r\n"
            "To: alice@local.test\r\n"
            "Subject: interop %s\r\n"
            "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
            "Message-ID: <%s@ext.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "\r\n" % (token, token)).encode()
    lines = [b"token " + token.encode(),
             b".",
             b"..two dots",
             b". dot space",
             b"trailing blanks   ",
             b"\ttab first",
             "K\u00f6ln, \u6771\u4eac, \u043c\u0438\u0440".encode(),
             b"x" * 998,
             b""]
    for i in range(3000):
        lines.append(b"%s line %05d abcdefghijklmnopqrstuvwxyz" % (
            token.encode(), i))
        if i % 500 == 0:
            lines.append(b".leading dot %d" % i)
    lines.append(b"end " + token.encode())
    return head + b"\r\n".join(lines) + b"\r\n"


def _submit(peer, rcpts, msg, sender="sender@ext.test"):
    with smtplib.SMTP(peer.addr, peer.port, local_hostname="client.ext.test",
                      timeout=th.HANG) as s:
        s.ehlo()
        assert s.has_extn("8bitmime")
        refused = s.sendmail(sender, rcpts, msg,
                             mail_options=["BODY=8BITMIME"])
        assert refused == {}


def _postfix_qid(peer, token):
    """Postfix's queue id for the message whose Message-ID has token."""
    m = th.wait_until(lambda: re.search(
        r"postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id=<%s@ext.test>" %
        re.escape(token), peer.log()), what="the message in Postfix's log")
    return m.group(1)


def _wait_sent(peer, qid, n):
    """Waits for n 'status=sent' lines of Postfix's queue id qid; returns
    them."""
    def sent():
        lines = [l for l in peer.log().splitlines()
                 if re.search(r"postfix/smtp\[\d+\]: %s: " % qid, l) and
                 "status=sent" in l]
        return lines if len(lines) >= n else None
    try:
        return th.wait_until(sent, timeout=DELIVERY_TIMEOUT,
                             what="Postfix to relay %s" % qid)
    except AssertionError:
        raise AssertionError("Postfix did not relay %s\n%s" % (
            qid, peer.log()[-4000:]))


# The trace headers of both hops, unfolded (RFC 5322 2.2.3: a header
# may be folded at any of its blanks, so only the unfolded text is fixed).
POSTFIX_RECEIVED = re.compile(
    rb"^Received: from client\.ext\.test \(unknown \[127\.0\.0\.1\]\) "
    rb"by mx\.peer\.test \(Postfix\) with ESMTP id (?P<qid>[0-9A-F]+)"
    rb"(?P<for> for <(?P<rcpt>[^>]+)>)?; (?P<date>[^\r\n]+)$")

TEGAMI_RECEIVED = re.compile(
    rb"^Received: from mx\.peer\.test \(\[127\.0\.0\.2\]\) "
    rb"by mail\.local\.test \(tegami\) with ESMTP id (?P<qid>\S+)"
    rb"(?P<for> for <(?P<rcpt>[^>]+)>)?; (?P<date>[^\r\n]+)$")


def _first_header(data):
    """(unfolded first header line, the rest of data)."""
    end = 0
    while True:
        end = data.index(b"\r\n", end) + 2
        if data[end:end + 1] not in (b" ", b"\t"):
            break
    return re.sub(rb"\r\n[ \t]+", b" ", data[:end - 2]), data[end:]


def _check_delivered(path, msg, rcpt, postfix_rcpt=None,
                     sender="sender@ext.test"):
    """Checks one delivered file: Return-Path, tegami's Received naming
    the Postfix hop (with "for <rcpt>" when rcpt is not None), Postfix's
    Received naming the client (with "for <postfix_rcpt>" when not None),
    then exactly the bytes that were submitted. Returns (tegami qid,
    postfix qid)."""
    content = th.read(path)
    th.check_maildir_name(path, content)
    rp, received, rest = th.split_delivered(content)
    assert rp == b"Return-Path: <%s>\r\n" % sender.encode()
    m = TEGAMI_RECEIVED.match(_first_header(received)[0])
    assert m, received
    if rcpt is None:
        assert m.group("for") is None, received
    else:
        assert m.group("rcpt") == rcpt.encode(), received
    t_qid = m.group("qid").decode()
    postfix_received, original = _first_header(rest)
    p = POSTFIX_RECEIVED.match(postfix_received)
    assert p, rest[:400]
    if postfix_rcpt is None:
        assert p.group("for") is None, rest[:400]
    else:
        assert p.group("rcpt") == postfix_rcpt.encode(), rest[:400]
    # Nothing else was added, changed or lost on the way.
    assert original == msg
    return t_qid, p.group("qid").decode()


def test_postfix_relays_to_tegami(server, peer_factory):
    peer = peer_factory(server.port)
    msg = _body("one-rcpt")
    _submit(peer, ["alice@local.test"], msg)
    qid = _postfix_qid(peer, "one-rcpt")
    sent = _wait_sent(peer, qid, 1)
    files = th.wait_until(lambda: server.new_files("alice@local.test"),
                          timeout=DELIVERY_TIMEOUT, what="delivery")
    assert len(files) == 1, files
    t_qid, p_qid = _check_delivered(files[0], msg, "alice@local.test",
                                    "alice@local.test")
    assert p_qid == qid
    # Postfix saw tegami's final reply with the id in tegami's header.
    assert re.search(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*dsn=2\.0\.0, "
                     r"status=sent \(250 2\.0\.0 Ok: queued as %s\)" % (
                         server.port, re.escape(t_qid)), sent[0]), sent
    assert server.wait_log(r"id=%s from=<sender@ext.test> "
                           r"to=<alice@local.test> size=\d+ "
                           r"result=delivered" % re.escape(t_qid))
    for addr in ("bob@local.test", "carol@local.test"):
        assert server.new_files(addr) == []
    assert peer.wait_queue_empty(DELIVERY_TIMEOUT), peer.log()[-3000:]


def test_postfix_multi_recipient(server, peer_factory):
    """One Postfix transaction with four RCPTs (one of them an alias of
    another), one copy in each of the three Maildirs, the same tegami id
    everywhere, and no 'for' clause in either trace header."""
    peer = peer_factory(server.port)
    msg = _body("three-rcpt")
    rcpts = ["alice@local.test", "bob@local.test", "postmaster@local.test",
             "carol@local.test"]
    _submit(peer, rcpts, msg)
    qid = _postfix_qid(peer, "three-rcpt")
    sent = _wait_sent(peer, qid, len(rcpts))
    # One SMTP transaction: every recipient got the same queued-as reply.
    replies = set(re.search(r"queued as (\S+)\)", l).group(1) for l in sent)
    assert len(replies) == 1, sent
    t_qids = set()
    # postmaster is an alias of alice, who is also named directly: one
    # copy, as Postfix does too (duplicate recipients of one transaction
    # are delivered once).
    for addr in ("alice@local.test", "bob@local.test", "carol@local.test"):
        files = th.wait_until(lambda: server.new_files(addr),
                              timeout=DELIVERY_TIMEOUT,
                              what="delivery to " + addr)
        assert len(files) == 1, (addr, files)
        for f in files:
            t_qid, p_qid = _check_delivered(f, msg, None, None)
            assert p_qid == qid
            t_qids.add(t_qid)
    assert t_qids == replies


def test_postfix_retries_until_tegami_is_up(server_factory, peer_factory):
    """tegami is down: Postfix defers (connection refused), keeps the
    message, and delivers it after tegami starts and the queue is
    flushed."""
    server = server_factory(start=False)
    peer = peer_factory(server.port)
    msg = _body("deferred")
    _submit(peer, ["carol@local.test"], msg)
    qid = _postfix_qid(peer, "deferred")
    th.wait_until(lambda: re.search(
        r"%s: .*status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]"
        r":%d: Connection refused\)" % (qid, server.port), peer.log()),
        timeout=DELIVERY_TIMEOUT, what="Postfix to defer")
    assert peer.queued() == 1
    assert server.new_files("carol@local.test") == []
    server.start()
    peer.flush()
    _wait_sent(peer, qid, 1)
    files = server.new_files("carol@local.test")
    assert len(files) == 1, files
    _check_delivered(files[0], msg, "carol@local.test", "carol@local.test")
    assert peer.wait_queue_empty(DELIVERY_TIMEOUT)


def test_postfix_bounces_unknown_user(server, peer_factory):
    """tegami's 550 for an unknown user reaches Postfix as a permanent
    failure for that recipient only; the good recipient is delivered."""
    peer = peer_factory(server.port)
    msg = _body("mixed")
    _submit(peer, ["nosuchuser@local.test", "bob@local.test"], msg)
    qid = _postfix_qid(peer, "mixed")
    _wait_sent(peer, qid, 1)
    th.wait_until(lambda: re.search(
        r"%s: to=<nosuchuser@local\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
        r":%d, .*dsn=5\.1\.1, status=bounced \(host 127\.0\.0\.1"
        r"\[127\.0\.0\.1\] said: 550 5\.1\.1 <nosuchuser@local\.test>: "
        r"Recipient address rejected: User unknown" % (qid, server.port),
        peer.log()), timeout=DELIVERY_TIMEOUT, what="the bounce in the log")
    files = server.new_files("bob@local.test")
    assert len(files) == 1, files
    # Postfix took two recipients (no "for"), tegami accepted one.
    _check_delivered(files[0], msg, "bob@local.test", None)
    assert th.all_mail_files(server.dir) == files
