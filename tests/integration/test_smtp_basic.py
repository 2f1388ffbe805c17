# Receiving mail over SMTP (RFC 5321, 1870, 2920, 3030, 6152, 6531) with
# real clients (smtplib, swaks) and exact bytes; checks what lands in the
# Maildir (name, S=, Return-Path, one Received header, body byte-exact).
import email.utils
import os
import pwd
import re
import smtplib
import subprocess
import uuid
from datetime import datetime, timezone

import pytest

import tegami_harness as th
from tegami_harness import expect, queued_id

SIZE_LIMIT = 10485760
SERVER_CONFIG = ["message_size_limit = %d" % SIZE_LIMIT]


def token():
    return "T" + uuid.uuid4().hex


def files_for(srv, addr, tok):
    d = os.path.join(srv.maildir(addr), "new")
    return [p for p in th.maildir_files(srv.maildir(addr), "new")
            if tok.encode() in th.read(p)] if os.path.isdir(d) else []


def one_file(srv, addr, tok):
    found = files_for(srv, addr, tok)
    assert len(found) == 1, "%s: %d files with %s" % (addr, len(found), tok)
    return found[0], th.read(found[0])


def unfold(header):
    return re.sub(rb"\r\n([ \t])", rb"\1", header).rstrip(b"\r\n")


def check_received(received, qid, helo="client.test", rcpt=None):
    """The Received header as the spec writes it."""
    flat = unfold(received).decode()
    m = re.match(r"^Received: from (\S+) \(\[([0-9.]+)\]\)\s+by (\S+) "
                 r"\(tegami\) with ESMTP id (\S+?)(?:\s+for <([^>]*)>)?;"
                 r"\s+(.+)$", flat)
    assert m, flat
    assert m.group(1) == helo
    assert m.group(2) == "127.0.0.1"
    assert m.group(3) == th.HOSTNAME
    assert m.group(4) == qid
    assert m.group(5) == rcpt, flat
    when = email.utils.parsedate_to_datetime(m.group(6))
    assert when.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 3600
    # folded only before whitespace, never inside a word ("possibly
    # folded" in the spec)
    assert re.fullmatch(rb"Received: [^\r\n]*(\r\n[ \t][^\r\n]*)*\r\n",
                        received), received
    assert received.endswith(b"\r\n")
    assert received.count(b"Received:") == 1


def smtplib_send(srv, sender, rcpts, msg, mail_options=()):
    with smtplib.SMTP(th.LISTEN, srv.port, local_hostname="client.test",
                      timeout=th.HANG) as s:
        code, _ = s.ehlo()
        assert code == 250
        code, resp = s.mail(sender, list(mail_options))
        assert code == 250, resp
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250, (r, resp)
        code, resp = s.data(msg)
        assert code == 250, resp
        m = re.match(rb"^2\.0\.0 Ok: queued as (\S+)$", resp)
        assert m, resp
        return m.group(1).decode()


def test_banner(mserver):
    with mserver.connect() as c:
        assert c.banner.lines == ["220 %s ESMTP tegami" % th.HOSTNAME]


def test_ehlo_keywords_exact(mserver):
    with mserver.connect() as c:
        r = c.cmd("EHLO client.test")
        assert r.lines == [
            "250-%s" % th.HOSTNAME,
            "250-STARTTLS",          # init made a certificate
            "250-PIPELINING",
            "250-SIZE %d" % SIZE_LIMIT,
            "250-8BITMIME",
            "250-ENHANCEDSTATUSCODES",
            "250-SMTPUTF8",
            "250 CHUNKING",
        ]
        # EHLO again is allowed and resets nothing it should not
        r = c.cmd("EHLO client.test")
        assert r.code == 250


def test_helo_and_empty_ehlo(mserver):
    with mserver.connect() as c:
        expect(c.cmd("EHLO"), "501 ")
        expect(c.cmd("HELO"), "501 ")
        r = c.cmd("HELO client.test")
        assert r.lines == ["250 %s" % th.HOSTNAME]
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0 Ok")
        expect(c.cmd("QUIT"), "221 2.0.0 Bye")
        assert c.is_closed()


def test_smtplib_delivery_to_alice(mserver):
    tok = token()
    msg = (b"From: Sender <sender@ext.test>\r\nTo: alice@local.test\r\n"
           b"Subject: " + tok.encode() + b"\r\n\r\nHello Alice.\r\n"
           b"Second line with trailing spaces   \r\n\r\n\tTabbed\r\n")
    qid = smtplib_send(mserver, "sender@ext.test", ["alice@local.test"], msg)
    path, content = one_file(mserver, "alice@local.test", tok)
    th.check_maildir_name(path, content)
    rp, received, body = th.split_delivered(content)
    assert rp == b"Return-Path: <sender@ext.test>\r\n"
    check_received(received, qid, rcpt="alice@local.test")
    assert body == msg
    # the file belongs to the unprivileged user, not root
    assert os.stat(path).st_uid == pwd.getpwnam("tegami").pw_uid
    assert os.stat(path).st_mode & 0o007 == 0, oct(os.stat(path).st_mode)
    # the log line for the message
    m = mserver.wait_log(r"id=%s from=<sender@ext\.test> "
                         r"to=<alice@local\.test> size=\d+ "
                         r"result=delivered" % re.escape(qid))
    assert m
    # no temp file left behind in tmp/
    th.wait_until(lambda: th.maildir_files(
        mserver.maildir("alice@local.test"), "tmp") == [],
        timeout=5, what="alice/tmp to be empty")


def test_multiple_recipients_each_get_a_copy(mserver):
    tok = token()
    msg = b"Subject: " + tok.encode() + b"\r\n\r\nto three\r\n"
    rcpts = ["alice@local.test", "bob@local.test", "carol@local.test"]
    qid = smtplib_send(mserver, "s@ext.test", rcpts, msg)
    for a in rcpts:
        path, content = one_file(mserver, a, tok)
        th.check_maildir_name(path, content)
        rp, received, body = th.split_delivered(content)
        assert rp == b"Return-Path: <s@ext.test>\r\n"
        check_received(received, qid, rcpt=None)
        assert body == msg


def test_alias_and_nested_alias(mserver):
    tok = token()
    msg = b"Subject: " + tok.encode() + b"\r\n\r\nstaff\r\n"
    smtplib_send(mserver, "s@ext.test", ["staff@local.test"], msg)
    for a in ("alice@local.test", "bob@local.test"):
        assert th.split_delivered(one_file(mserver, a, tok)[1])[2] == msg
    assert files_for(mserver, "carol@local.test", tok) == []
    tok = token()
    msg = b"Subject: " + tok.encode() + b"\r\n\r\nall\r\n"
    smtplib_send(mserver, "s@ext.test", ["all@local.test"], msg)
    for a in ("alice@local.test", "bob@local.test", "carol@local.test"):
        assert th.split_delivered(one_file(mserver, a, tok)[1])[2] == msg
    # the aliases themselves have no mailbox
    assert not os.path.exists(mserver.maildir("staff@local.test"))
    assert not os.path.exists(mserver.maildir("all@local.test"))


def test_duplicate_recipients_get_one_copy(mserver):
    # alice directly, via an alias, via a nested alias and via +tag: one
    # delivery per mailbox (stricter reading of "duplicates removed").
    tok = token()
    msg = b"Subject: " + tok.encode() + b"\r\n\r\ndup\r\n"
    smtplib_send(mserver, "s@ext.test",
                 ["alice@local.test", "staff@local.test", "all@local.test",
                  "ALICE@local.test"], msg)
    for a in ("alice@local.test", "bob@local.test", "carol@local.test"):
        one_file(mserver, a, tok)


def test_alias_loop_is_refused(mserver):
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<s@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<loop1@local.test>"), "550 5.4.6")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5 Ok")


@pytest.mark.parametrize("rcpt", [
    "alice+tag@local.test", "ALICE@LOCAL.TEST", "Alice@Local.Test",
    "alice+Some.Tag@LOCAL.test", "<postmaster>", "<Postmaster>",
    "postmaster@local.test", "POSTMASTER@LOCAL.TEST"])
def test_address_forms_reach_alice(mserver, rcpt):
    tok = token()
    msg = b"Subject: " + tok.encode() + b"\r\n\r\nforms\r\n"
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<s@ext.test>"), "250 2.1.0 Ok")
        path = rcpt if rcpt.startswith("<") else "<%s>" % rcpt
        expect(c.cmd("RCPT TO:" + path), "250 2.1.5 Ok")
        expect(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(th.dot_stuff(msg))
        queued_id(c.reply())
    _, content = one_file(mserver, "alice@local.test", tok)
    assert th.split_delivered(content)[2] == msg
    for other in ("bob@local.test", "carol@local.test"):
        assert files_for(mserver, other, tok) == []


def test_unknown_user_and_null_sender(mserver):
    tok = token()
    msg = b"Subject: " + tok.encode() + b"\r\n\r\nbounce-like\r\n"
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<>"), "250 2.1.0 Ok")
        r = c.cmd("RCPT TO:<nobody@local.test>")
        assert r.lines == ["550 5.1.1 <nobody@local.test>: Recipient address "
                           "rejected: User unknown"]
        expect(c.cmd("RCPT TO:<bob@local.test>"), "250 2.1.5 Ok")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(msg))
        queued_id(c.reply())
    rp, _, body = th.split_delivered(one_file(mserver, "bob@local.test",
                                              tok)[1])
    assert rp == b"Return-Path: <>\r\n"
    assert body == msg
    assert not os.path.exists(mserver.maildir("nobody@local.test"))


def test_simple_commands(mserver):
    with mserver.connect() as c:
        c.ehlo()
        assert c.cmd("NOOP").lines == ["250 2.0.0 Ok"]
        assert c.cmd("noop").lines == ["250 2.0.0 Ok"]
        assert c.cmd("RSET").lines == ["250 2.0.0 Ok"]
        r = c.cmd("HELP")
        assert r.code == 214 and r.last.startswith("214 2.0.0 ")
        vr = c.cmd("VRFY alice@local.test")
        vn = c.cmd("VRFY nobody@local.test")
        vb = c.cmd("VRFY alice")
        want = ["252 2.5.0 Cannot VRFY user, but will accept message and "
                "attempt delivery"]
        assert vr.lines == want and vn.lines == want and vb.lines == want
        assert c.cmd("EXPN staff@local.test").lines == [
            "502 5.5.1 EXPN not available"]
        # STARTTLS itself is tested in test_starttls.py.
        expect(c.cmd("STARTTLS now"), "501 5.5.4")
        expect(c.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLVNlY3JldC0x"), "502 5.5.1")
        assert c.cmd("FROB").lines == ["500 5.5.1 Command unrecognized"]
        assert c.cmd("QUIT").lines == ["221 2.0.0 Bye"]
        assert c.is_closed()
    # AUTH data and passwords never reach the log
    log = mserver.log_text()
    assert "AGFsaWNlAGFsaWNlLVNlY3JldC0x" not in log
    assert th.DEFAULT_USERS["alice@local.test"] not in log


def test_rset_clears_the_transaction(mserver):
    tok = token()
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<first@ext.test>"), "250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<bob@local.test>"), "250 2.1.5 Ok")
        expect(c.cmd("RSET"), "250 2.0.0 Ok")
        # no transaction any more
        expect(c.cmd("DATA"), "503 5.5.1")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "503 5.5.1")
        # and a new MAIL is not "MAIL twice"
        expect(c.cmd("MAIL FROM:<second@ext.test>"), "250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5 Ok")
        expect(c.cmd("DATA"), "354 ")
        msg = b"Subject: " + tok.encode() + b"\r\n\r\nx\r\n"
        c.send(th.dot_stuff(msg))
        queued_id(c.reply())
    rp, _, _ = th.split_delivered(one_file(mserver, "alice@local.test",
                                           tok)[1])
    assert rp == b"Return-Path: <second@ext.test>\r\n"
    assert files_for(mserver, "bob@local.test", tok) == []


def test_two_transactions_in_one_session(mserver):
    toks = [token(), token()]
    with mserver.connect() as c:
        c.ehlo()
        qids = []
        for t in toks:
            expect(c.cmd("MAIL FROM:<s@ext.test>"), "250 2.1.0 Ok")
            expect(c.cmd("RCPT TO:<carol@local.test>"), "250 2.1.5 Ok")
            expect(c.cmd("DATA"), "354 ")
            c.send(th.dot_stuff(b"Subject: " + t.encode() + b"\r\n\r\nb\r\n"))
            qids.append(queued_id(c.reply()))
        assert qids[0] != qids[1]
    for t, q in zip(toks, qids):
        _, received, _ = th.split_delivered(
            one_file(mserver, "carol@local.test", t)[1])
        check_received(received, q, rcpt="carol@local.test")


def test_dot_stuffing_is_undone_exactly(mserver):
    tok = token().encode()
    original = (b"Subject: " + tok + b"\r\n\r\n"
                b".\r\n"              # a line of one dot
                b"..\r\n"             # two dots
                b".leading dot\r\n"
                b"..two leading\r\n"
                b"middle . dot\r\n"
                b"end dot.\r\n"
                b" .space first\r\n"
                b"...\r\n")
    wire = (b"Subject: " + tok + b"\r\n\r\n"
            b"..\r\n"
            b"...\r\n"
            b"..leading dot\r\n"
            b"...two leading\r\n"
            b"middle . dot\r\n"
            b"end dot.\r\n"
            b" .space first\r\n"
            b"....\r\n"
            b".\r\n")
    assert th.dot_stuff(original) == wire
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<s@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 ")
        expect(c.cmd("DATA"), "354 ")
        # in odd pieces, to cross read boundaries
        for i in range(0, len(wire), 7):
            c.send(wire[i:i + 7])
        queued_id(c.reply())
    _, content = one_file(mserver, "alice@local.test", tok.decode())
    assert th.split_delivered(content)[2] == original


def test_8bit_body_and_smtputf8_sender(mserver):
    tok = token().encode()
    msg = (b"From: =?utf-8?q?J=C3=B6hn?= <j\xc3\xb6hn@ext.test>\r\n"
           b"Subject: " + tok + b" \xe3\x81\xa6\xe3\x81\x8c\xe3\x81\xbf\r\n"
           b"\r\nRaw bytes: " + bytes(range(0x80, 0x100)) + b"\r\n")
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd(b"MAIL FROM:<j\xc3\xb6hn@ext.test> BODY=8BITMIME "
                     b"SMTPUTF8"), "250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5 Ok")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(msg))
        queued_id(c.reply())
    rp, _, body = th.split_delivered(one_file(mserver, "alice@local.test",
                                              tok.decode())[1])
    assert rp == b"Return-Path: <j\xc3\xb6hn@ext.test>\r\n"
    assert body == msg


def test_utf8_addresses_need_smtputf8(mserver):
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd(b"MAIL FROM:<j\xc3\xb6hn@ext.test>"), "553 5.6.7")
        expect(c.cmd(b"MAIL FROM:<s@ext.test>"), "250 2.1.0 Ok")
        # the transaction has no SMTPUTF8: an 8-bit RCPT is refused
        expect(c.cmd(b"RCPT TO:<j\xc3\xb6hn@local.test>"), "553 5.6.7")
        expect(c.cmd("RSET"), "250 ")
        expect(c.cmd(b"MAIL FROM:<s@ext.test> SMTPUTF8"), "250 2.1.0 Ok")
        # allowed now; no such user
        expect(c.cmd(b"RCPT TO:<j\xc3\xb6hn@local.test>"), "550 5.1.1")
        # invalid UTF-8 is still refused
        expect(c.cmd(b"RCPT TO:<j\xff\xfehn@local.test>"), "553 5.6.7")
        expect(c.cmd("MAIL FROM:<x@ext.test>"), "503 5.5.1")
        expect(c.cmd("RSET"), "250 ")
        # a value BODY does not know: a parameter error, never accepted
        assert c.cmd("MAIL FROM:<s@ext.test> BODY=BINARYMIME").code in \
            (501, 555)
        expect(c.cmd("MAIL FROM:<s@ext.test> FOO=BAR"), "555 5.5.4")
        expect(c.cmd("MAIL FROM:<s@ext.test> SIZE=1000 BODY=7BIT"),
               "250 2.1.0 Ok")


def _bdat_open(c, rcpt="alice@local.test"):
    c.ehlo()
    expect(c.cmd("MAIL FROM:<s@ext.test>"), "250 2.1.0 Ok")
    expect(c.cmd("RCPT TO:<%s>" % rcpt), "250 2.1.5 Ok")


def test_bdat_message_without_trailing_newline(mserver):
    tok = token().encode()
    msg = b"Subject: " + tok + b"\r\n\r\nno newline at the end"
    with mserver.connect() as c:
        _bdat_open(c)
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        qid = queued_id(c.reply())
    path, content = one_file(mserver, "alice@local.test", tok.decode())
    th.check_maildir_name(path, content)
    _, received, body = th.split_delivered(content)
    check_received(received, qid, rcpt="alice@local.test")
    assert body == msg


def test_bdat_chunks_and_zero_last(mserver):
    tok = token().encode()
    msg = (b"Subject: " + tok + b"\r\n\r\n"
           b".leading dot is not stuffing in BDAT\r\n"
           b"..two\r\n.\r\n"           # not an end marker in BDAT
           b"split CRLF across chunks\r\nend\r\n")
    cut = [0, 10, msg.index(b"chunks\r") + len(b"chunks\r"), len(msg) - 3,
           len(msg)]
    with mserver.connect() as c:
        _bdat_open(c)
        for a, b in zip(cut, cut[1:]):
            c.send(b"BDAT %d\r\n" % (b - a) + msg[a:b])
            # N is this chunk's size or the running total (the spec does
            # not say which)
            assert c.reply().lines[0] in (
                "250 2.0.0 Ok: %d octets received" % (b - a),
                "250 2.0.0 Ok: %d octets received" % b)
        c.send(b"BDAT 0 LAST\r\n")
        queued_id(c.reply())
        # DATA after BDAT in one transaction is refused; new one is fine
        expect(c.cmd("MAIL FROM:<s@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 ")
        c.send(b"BDAT 3\r\nabc")
        expect(c.reply(), "250 2.0.0 Ok: 3 octets received")
        expect(c.cmd("DATA"), "503 ")
    _, content = one_file(mserver, "alice@local.test", tok.decode())
    assert th.split_delivered(content)[2] == msg


def test_bdat_pipelined_in_one_send(mserver):
    tok = token().encode()
    p1 = b"Subject: " + tok + b"\r\n\r\n"
    p2 = b"one go\r\n"
    with mserver.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@ext.test>\r\nRCPT TO:<bob@local.test>\r\n" +
               b"BDAT %d\r\n" % len(p1) + p1 +
               b"BDAT %d LAST\r\n" % len(p2) + p2)
        rs = c.replies(4)
        expect(rs[0], "250 2.1.0")
        expect(rs[1], "250 2.1.5")
        expect(rs[2], "250 2.0.0 Ok: %d octets received" % len(p1))
        queued_id(rs[3])
    _, content = one_file(mserver, "bob@local.test", tok.decode())
    assert th.split_delivered(content)[2] == p1 + p2


def test_bdat_bare_lf_is_refused(mserver):
    tok = token().encode()
    msg = b"Subject: " + tok + b"\r\n\r\nbare\nLF\r\n"
    with mserver.connect() as c:
        _bdat_open(c)
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        expect(c.reply(), "550 5.5.2")
        expect(c.cmd("NOOP"), "250 ")
    assert th.files_containing(mserver.dir, tok) == []


def test_pipelined_mail_rcpt_rcpt_data(mserver):
    tok = token().encode()
    msg = b"Subject: " + tok + b"\r\n\r\npipelined\r\n"
    with mserver.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@ext.test>\r\nRCPT TO:<alice@local.test>\r\n"
               b"RCPT TO:<nobody@local.test>\r\nRCPT TO:<bob@local.test>\r\n"
               b"DATA\r\n")
        rs = c.replies(5)
        expect(rs[0], "250 2.1.0 Ok")
        expect(rs[1], "250 2.1.5 Ok")
        expect(rs[2], "550 5.1.1")
        expect(rs[3], "250 2.1.5 Ok")
        expect(rs[4], "354 ")
        c.send(th.dot_stuff(msg))
        queued_id(c.reply())
    for a in ("alice@local.test", "bob@local.test"):
        assert th.split_delivered(one_file(mserver, a, tok.decode())[1])[2] \
            == msg


def test_large_message_byte_exact(mserver):
    tok = token()
    msg = th.make_message(tok, size=3 * 1024 * 1024)
    qid = smtplib_send(mserver, "big@ext.test", ["carol@local.test"], msg)
    path, content = one_file(mserver, "carol@local.test", tok)
    th.check_maildir_name(path, content)
    _, received, body = th.split_delivered(content)
    check_received(received, qid, rcpt="carol@local.test")
    assert body == msg


def swaks(srv, *args, timeout=30):
    cmd = ["swaks", "--server", th.LISTEN, "--port", str(srv.port),
           "--helo", "client.test", "--timeout", "10"] + list(args)
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)


@pytest.mark.parametrize("pipeline", [False, True])
def test_swaks(mserver, pipeline):
    tok = token()
    body = "Hello from swaks %s\n.leading dot\nlast line" % tok
    extra = ["--pipeline"] if pipeline else []
    p = swaks(mserver, "--from", "swaks@ext.test", "--to",
              "alice@local.test,bob@local.test", "--header",
              "Subject: " + tok, "--body", body, *extra)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert re.search(r"<-\s+250 2\.0\.0 Ok: queued as \S+", out), out
    if pipeline:
        assert "PIPELINING" in out
    for a in ("alice@local.test", "bob@local.test"):
        _, content = one_file(mserver, a, tok)
        rp, _, msg = th.split_delivered(content)
        assert rp == b"Return-Path: <swaks@ext.test>\r\n"
        assert b"\r\n\r\nHello from swaks " + tok.encode() + \
            b"\r\n.leading dot\r\nlast line\r\n" in msg
        assert b"\n" not in msg.replace(b"\r\n", b"")
