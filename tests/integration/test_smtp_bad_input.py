# Hostile and broken SMTP input (security-tests.md tests 4, 5, 6, 8, 11,
# 12, 13, 15, 16, 17): smuggling, NUL, long lines, SIZE, 8-bit commands,
# out-of-order commands, error limit, BDAT edge cases, MIME bombs,
# improper pipelining and early talkers. Raw sockets throughout, because
# smtplib normalises line ends and would hide these bugs.
import re
import time
import uuid

import pytest

import tegami_harness as th
from tegami_harness import expect, queued_id

LIMIT = 20000000
SERVER_CONFIG = ["message_size_limit = %d" % LIMIT]
RSS_MAX_KB = 200 * 1024


def token():
    return "T" + uuid.uuid4().hex


def start_data(c, rcpt="bob@local.test"):
    c.ehlo()
    expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0 Ok")
    expect(c.cmd("RCPT TO:<%s>" % rcpt), "250 2.1.5 Ok")
    expect(c.cmd("DATA"), "354 ")


def session_goes_on(c):
    assert c.cmd("NOOP").lines == ["250 2.0.0 Ok"]


def nothing_with(srv, tok):
    assert th.files_containing(srv.dir, tok) == []


def assert_rss_bounded(mon):
    assert mon.max_kb < RSS_MAX_KB, "VmRSS of pid %s reached %d kB" % (
        mon.max_pid, mon.max_kb)


# --- test 4: SMTP smuggling -------------------------------------------

ENDS = {"lflf": b"\n.\n", "crcr": b"\r.\r", "crlf": b"\r.\n",
        "lfcr": b"\n.\r", "lfcrlf": b"\n.\r\n", "crlflf": b"\r\n.\n",
        "crcrlf": b"\r.\r\n", "crlfcr": b"\r\n.\r", "nul": b"\r\n\x00.\r\n"}


@pytest.mark.parametrize("name", sorted(ENDS))
def test_smuggling(mserver, name):
    tok = token()
    smug = (b"MAIL FROM:<ceo@victim.test>\r\nRCPT TO:<bob@local.test>\r\n"
            b"DATA\r\nFrom: ceo@victim.test\r\nSubject: SMUGGLED " +
            tok.encode() + b"\r\n\r\nx\r\n.\r\n")
    with mserver.connect() as c:
        start_data(c)
        c.send(b"Subject: " + name.encode() + b" " + tok.encode() +
               b"\r\n\r\nbody" + ENDS[name] + smug)
        r = c.reply()
        # The only end of data is the CRLF.CRLF at the very end, and the
        # message holds a bare CR/LF (or a NUL): one rejection, nothing else
        want = "550 5.6.0" if name == "nul" else "550 5.5.2"
        expect(r, want)
        # nothing of the smuggled commands was executed: the very next reply
        # answers our NOOP
        session_goes_on(c)
        expect(c.cmd("QUIT"), "221 ")
        assert c.is_closed()
    nothing_with(mserver, tok)
    assert b"queued" not in r.raw


def test_smuggling_split_over_sends(mserver):
    # the same, with the bare LF dot arriving in its own segment
    tok = token()
    with mserver.connect() as c:
        start_data(c)
        c.send(b"Subject: " + tok.encode() + b"\r\n\r\nbody\n")
        time.sleep(0.05)
        c.send(b".\n")
        time.sleep(0.05)
        c.send(b"MAIL FROM:<ceo@victim.test>\r\nRCPT TO:<bob@local.test>\r\n"
               b"DATA\r\nSubject: SMUGGLED " + tok.encode() +
               b"\r\n\r\nx\r\n.\r\n")
        expect(c.reply(), "550 5.5.2")
        session_goes_on(c)
    nothing_with(mserver, tok)


# --- test 15: NUL ------------------------------------------------------

def test_nul_in_commands(mserver):
    # NUL in the verb: 500 5.5.2 (spec); NUL in the arguments: 501 5.5.2
    # (the brief and security-tests.md 15 say 501 for MAIL)
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd(b"MAIL FROM:<a\x00b@ext.test>"), "501 5.5.2")
        expect(c.cmd(b"NO\x00OP"), "500 5.5.2")
        expect(c.cmd(b"\x00"), "500 5.5.2")
        expect(c.cmd(b"EHLO a\x00b"), "501 5.5.2")
        session_goes_on(c)
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
        expect(c.cmd(b"RCPT TO:<bob@local.test\x00>"), "501 5.5.2")
        expect(c.cmd(b"RCPT TO:<bob@local.test>"), "250 2.1.5")


def test_nul_in_data(mserver):
    tok = token()
    sender = tok.lower() + "@ext.test"
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<%s>" % sender), "250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<bob@local.test>"), "250 2.1.5 Ok")
        expect(c.cmd("DATA"), "354 ")
        c.send(b"Subject: " + tok.encode() + b"\r\n\r\nnul \x00 here\r\n"
               b"more\r\n.\r\n")
        expect(c.reply(), "550 5.6.0")
        session_goes_on(c)
    nothing_with(mserver, tok)
    # the refusal is logged per message, with a reason
    mserver.wait_log(r"from=<%s> to=<bob@local\.test> size=\d+ "
                     r"result=rejected reason=\"[^\"]+\"" % re.escape(sender))


def test_bare_cr_in_ehlo_and_headers_injection(mserver):
    with mserver.connect() as c:
        expect(c.cmd(b"EHLO a\rInjected: yes"), "501 ")
        r = c.cmd("EHLO client.test")
        assert r.code == 250


# --- test 11: command line length -------------------------------------

def test_command_line_length_boundary(mserver):
    with mserver.connect() as c:
        c.ehlo()
        line = b"NOOP " + b"x" * (512 - 2 - 5)     # 512 octets with CRLF
        assert len(line) + 2 == 512
        assert c.cmd(line).lines == ["250 2.0.0 Ok"]
        line = b"NOOP " + b"x" * (513 - 2 - 5)     # 513
        expect(c.cmd(line), "500 5.5.2")
        session_goes_on(c)
        expect(c.cmd(b"NOOP " + b"y" * 595), "500 5.5.2")  # 600 + CRLF
        session_goes_on(c)


def test_long_address_and_ehlo(mserver):
    with mserver.connect() as c:
        expect(c.cmd(b"EHLO " + b"h" * 100000), "500 5.5.2")
        c.ehlo()
        expect(c.cmd(b"MAIL FROM:<" + b"a" * 100000 + b"@ext.test>"),
               "500 5.5.2")
        session_goes_on(c)
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
        expect(c.cmd(b"RCPT TO:<" + b"b" * 100000 + b"@local.test>"),
               "500 5.5.2")
        # 65 octets of local part: over the RFC limit, but a short line
        expect(c.cmd(b"RCPT TO:<" + b"b" * 65 + b"@local.test>"), "501 5.1.3")
        session_goes_on(c)


def test_huge_line_without_crlf_bounded_memory(mserver):
    chunk = b"A" * (1024 * 1024)
    with mserver.connect() as c:
        c.ehlo()
        with th.RssMonitor(mserver) as mon:
            base = mon.max_kb
            c.send(b"MAIL FROM:<")
            for _ in range(64):            # 64 MB, no CRLF
                c.send(chunk)
            mon.sample()
            during = mon.max_kb
            c.send(b"\r\n")
            r = c.reply()
            expect(r, "500 5.5.2")
            session_goes_on(c)
        assert_rss_bounded(mon)
        # a server that kept the line would have grown by 64 MB
        assert during - base < 32 * 1024, (base, during)
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")


# --- test 12: long lines and headers in DATA ---------------------------

def test_data_line_length_boundary(mserver):
    tok = token()
    ok = b"Subject: " + tok.encode() + b"\r\n\r\n" + b"a" * 998 + b"\r\n"
    with mserver.connect() as c:
        start_data(c)
        c.send(th.dot_stuff(ok))
        queued_id(c.reply())
    path = th.files_containing(mserver.dir, tok)
    assert len(path) == 1
    assert th.split_delivered(th.read(path[0]))[2] == ok
    tok = token()
    bad = b"Subject: " + tok.encode() + b"\r\n\r\n" + b"a" * 999 + b"\r\n"
    with mserver.connect() as c:
        start_data(c)
        c.send(th.dot_stuff(bad))
        expect(c.reply(), "550 5.6.0")
        session_goes_on(c)
    nothing_with(mserver, tok)


def test_50mb_line_in_data_is_refused_memory_bounded(mserver):
    tok = token()
    with mserver.connect() as c:
        start_data(c)
        with th.RssMonitor(mserver) as mon:
            c.send(b"Subject: " + tok.encode() + b"\r\n\r\n")
            chunk = b"z" * (1024 * 1024)
            for _ in range(30):            # 30 MB: also over the size limit
                c.send(chunk)
            c.send(b"\r\n.\r\n")
            r = c.reply(timeout=60)
            assert r.code in (550, 552), r
            session_goes_on(c)
        assert_rss_bounded(mon)
    nothing_with(mserver, tok)


def _send_big(srv, msg, tok, allowed=(250, 550, 552, 554)):
    with srv.connect() as c:
        start_data(c)
        with th.RssMonitor(srv) as mon:
            t0 = time.monotonic()
            c.send(th.dot_stuff(msg))
            r = c.reply(timeout=60)
            assert time.monotonic() - t0 < 60
            session_goes_on(c)
        assert_rss_bounded(mon)
    assert r.code in allowed, r
    found = th.files_containing(srv.dir, tok)
    if r.code == 250:
        assert len(found) == 1
        assert th.split_delivered(th.read(found[0]))[2] == msg
    else:
        assert found == []
    return r


def test_200k_headers(mserver):
    tok = token()
    msg = (b"Subject: " + tok.encode() + b"\r\n" +
           b"".join(b"X-H%06d: v\r\n" % i for i in range(200000)) +
           b"\r\nbody\r\n")
    assert len(msg) < LIMIT
    _send_big(mserver, msg, tok)


def test_header_folded_many_times(mserver):
    tok = token()
    msg = (b"Subject: " + tok.encode() + b"\r\nX-Folded: start\r\n" +
           b" f\r\n" * 1000000 + b"\r\nbody\r\n")
    assert len(msg) < LIMIT
    _send_big(mserver, msg, tok)


# --- test 13: SIZE -------------------------------------------------------

@pytest.mark.parametrize("size,want", [
    ("99999999999999999999", "552 5.3.4"),
    ("18446744073709551615", "552 5.3.4"),
    ("18446744073709551616", "552 5.3.4"),
    (str(LIMIT + 1), "552 5.3.4"),
    (str(LIMIT), "250 2.1.0"),
    ("0", "250 2.1.0"),
])
def test_mail_size_parameter(mserver, size, want):
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test> SIZE=" + size), want)
        session_goes_on(c)


def test_oversized_body(server_factory):
    srv = server_factory(["message_size_limit = 10000"])
    tok = token()
    msg = th.make_message(tok, size=50000)
    with srv.connect() as c:
        r = c.ehlo()
        assert "250-SIZE 10000" in r.lines
        expect(c.cmd("MAIL FROM:<a@ext.test> SIZE=5000"), "250 2.1.0")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(msg))
        expect(c.reply(), "552 5.3.4")
        session_goes_on(c)
        # the rest of the data was read and discarded: a new transaction
        tok2 = token()
        small = th.make_message(tok2, size=2000)
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(small))
        queued_id(c.reply())
        # exactly at the limit is accepted, one more octet is not
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5")
        exact = b"Subject: x\r\n\r\n" + b"y" * 98 + b"\r\n"
        while len(exact) + 100 <= 10000:
            exact += b"y" * 98 + b"\r\n"
        exact += b"y" * (10000 - len(exact) - 2) + b"\r\n"
        assert len(exact) == 10000
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(exact))
        queued_id(c.reply())
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(b"z" + exact))
        expect(c.reply(), "552 5.3.4")
    assert th.files_containing(srv.dir, tok) == []
    assert len(th.files_containing(srv.dir, tok2)) == 1
    assert len(srv.new_files("alice@local.test")) == 2
    # no partial file left anywhere
    th.wait_until(lambda: th.maildir_files(srv.maildir("alice@local.test"),
                                           "tmp") == [] and
                  th.regular_files_under(srv.dir + "/queue") == [],
                  timeout=5, what="temp files to be removed")


# --- test 16: 8-bit in commands ----------------------------------------

def test_8bit_in_commands(mserver):
    with mserver.connect() as c:
        c.ehlo()
        # 5.5.1 (unrecognised) or 5.5.2 (bad character): both fit
        expect(c.cmd(b"NO\xffOP"), "500 5.5.")
        expect(c.cmd(b"\xff\xfe\xfd"), "500 5.5.")
        expect(c.cmd(b"EHLO cl\xc3\xa9.test"), "501 ")
        c.ehlo()
        expect(c.cmd(b"MAIL FROM:<a\xff@ext.test>"), "553 5.6.7")
        expect(c.cmd(b"MAIL FROM:<a\xff@ext.test> SMTPUTF8"), "553 5.6.7")
        expect(c.cmd(b"MAIL FROM:<a@ext.test> SMTPUTF8"), "250 2.1.0")
        session_goes_on(c)


# --- protocol order ----------------------------------------------------

def test_out_of_order_commands(mserver):
    with mserver.connect() as c:
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "503 5.5.1")
        expect(c.cmd("RCPT TO:<bob@local.test>"), "503 5.5.1")
        expect(c.cmd("DATA"), "503 5.5.1")
        c.ehlo()
        expect(c.cmd("RCPT TO:<bob@local.test>"), "503 5.5.1")
        expect(c.cmd("DATA"), "503 5.5.1")
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
        expect(c.cmd("MAIL FROM:<b@ext.test>"), "503 5.5.1")
        # no RCPT at all: out of sequence; RCPTs that all failed: 554
        assert c.cmd("DATA").lines == ["503 5.5.1 Error: need RCPT command"]
        expect(c.cmd("RCPT TO:<nobody@local.test>"), "550 5.1.1")
        assert c.cmd("DATA").lines == ["554 5.5.1 Error: no valid recipients"]
        expect(c.cmd("RCPT TO:<>"), "501 ")
        expect(c.cmd("RCPT TO:bob@local.test"), "501 ")
        expect(c.cmd("MAIL"), "503 5.5.1")
        session_goes_on(c)


def test_syntax_errors(mserver):
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL"), "501 ")
        expect(c.cmd("MAIL TO:<a@ext.test>"), "501 ")
        expect(c.cmd("MAIL FROM:a@ext.test"), "501 ")
        expect(c.cmd("MAIL FROM:<a@ext.test"), "501 ")
        expect(c.cmd("MAILFROM:<a@ext.test>"), "500 5.5.1")
        expect(c.cmd("MAIL FROM:<a@ext.test> SIZE=12x"), "501 ")
        expect(c.cmd("MAIL FROM:<a@ext.test> SIZE=1 SIZE=2"), "501 ")
        expect(c.cmd("FOO bar"), "500 5.5.1")
        session_goes_on(c)


def test_error_limit(mserver):
    with mserver.connect() as c:
        c.ehlo()
        errors = 0
        last = None
        for i in range(40):
            try:
                last = c.cmd("XYZZY%d" % i)
            except th.Closed:
                pytest.fail("closed without a 421 after %d errors" % errors)
            if last.code == 421:
                break
            assert last.lines == ["500 5.5.1 Command unrecognized"]
            errors += 1
            # the 421 may follow the 20th error at once
            if errors == 20:
                try:
                    last = c.reply(timeout=1)
                    break
                except (TimeoutError, OSError):
                    pass
        assert errors == 20
        assert last.lines == ["421 4.7.0 %s Error: too many errors" %
                              th.HOSTNAME]
        assert c.is_closed()


def test_error_limit_setting(server_factory):
    srv = server_factory(["smtp_error_limit = 3"])
    with srv.connect() as c:
        c.ehlo()
        for _ in range(3):
            expect(c.cmd("BOGUS"), "500 ")
        try:
            r = c.reply(timeout=1)
        except (TimeoutError, OSError):
            r = c.cmd("BOGUS")
        expect(r, "421 4.7.0")
        assert c.is_closed()


# --- test 6: BDAT edge cases --------------------------------------------

def test_bdat_huge_size(mserver):
    with mserver.connect() as c:
        start_bdat(c)
        c.send(b"BDAT 18446744073709551615 LAST\r\n" + b"x" * 100)
        expect(c.reply(), "552 5.3.4")
        assert c.is_closed()


def start_bdat(c):
    c.ehlo()
    expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0 Ok")
    expect(c.cmd("RCPT TO:<bob@local.test>"), "250 2.1.5 Ok")


@pytest.mark.parametrize("arg", ["-1", "abc", "", "10 LAST junk", "1x",
                                 "+5", "0x10"])
def test_bdat_bad_size(mserver, arg):
    with mserver.connect() as c:
        start_bdat(c)
        c.send(b"BDAT " + arg.encode() + b"\r\nNOOP\r\n")
        r = c.reply()
        expect(r, "501 5.5.4")
        # the stream is out of sync: closed, and the NOOP never ran
        rest = c.read_until_closed()
        assert b"250" not in rest, rest


def test_bdat_without_transaction(mserver):
    with mserver.connect() as c:
        c.ehlo()
        c.send(b"BDAT 0 LAST\r\n")
        expect(c.reply(), "503 5.5.1")
        session_goes_on(c)
        # the chunk is read and discarded, never run as commands: had QUIT
        # run, the next reply would be 221 and the connection closed
        c.send(b"BDAT 6\r\nQUIT\r\n")
        expect(c.reply(), "503 5.5.1")
        session_goes_on(c)


def test_bdat_after_mail_without_rcpt(mserver):
    # Spec: "BDAT without MAIL/RCPT: 503 5.5.1" (read as: without MAIL or
    # without RCPT); the chunk is discarded either way.
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
        # had HELP/VRFY run, 214/252 would come before the NOOP's 250
        c.send(b"BDAT 14 LAST\r\nHELP\r\nVRFY x\r\n")
        r = c.reply()
        session_goes_on(c)
        expect(r, "503 5.5.1")


def test_bdat_then_data(mserver):
    with mserver.connect() as c:
        start_bdat(c)
        c.send(b"BDAT 4\r\nabcd")
        expect(c.reply(), "250 2.0.0 Ok: 4 octets received")
        expect(c.cmd("DATA"), "503 ")
        expect(c.cmd("RSET"), "250 2.0.0 Ok")
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")


# --- test 17: MIME bombs -------------------------------------------------

def nested(depth, tok):
    h = (b"From: a@ext.test\r\nSubject: " + tok + b"\r\nMIME-Version: 1.0\r\n")
    parts = []
    for i in range(1, depth + 1):
        parts.append(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
                     b"--b%d\r\n" % (i, i))
    inner = b"Content-Type: text/plain\r\n\r\nx\r\n"
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in range(depth, 0, -1))
    return h + b"".join(parts) + inner + tail


def wide(n, tok):
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\n%d\r\n" % i
                     for i in range(n))
    return (b"Subject: " + tok + b"\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + parts +
            b"--B--\r\n")


def rfc2231(n, tok):
    params = b"".join(b";\r\n p*%d=%d" % (i, i) for i in range(n))
    return (b"Subject: " + tok + b"\r\nContent-Type: text/plain" + params +
            b"\r\n\r\nx\r\n")


def long_boundary(tok):
    b = b"q" * 200000
    return (b"Subject: " + tok + b"\r\nContent-Type: multipart/mixed; "
            b"boundary=" + b + b"\r\n\r\n--" + b + b"\r\n\r\nx\r\n--" + b +
            b"--\r\n")


@pytest.mark.parametrize("kind", ["nested", "wide", "rfc2231", "boundary"])
def test_mime_bombs(mserver, kind):
    tok = token()
    t = tok.encode()
    msg = {"nested": lambda: nested(10000, t), "wide": lambda: wide(100000, t),
           "rfc2231": lambda: rfc2231(100000, t),
           "boundary": lambda: long_boundary(t)}[kind]()
    assert len(msg) < LIMIT
    t0 = time.monotonic()
    r = _send_big(mserver, msg, tok)
    assert time.monotonic() - t0 < 30
    if kind == "boundary":
        # a 200 kB line is over the 1000-octet line limit
        expect(r, "550 5.6.0")


# --- test 5: improper pipelining and early talkers ------------------------

@pytest.mark.parametrize("first,extra", [
    (b"EHLO client.test\r\n", b"MAIL FROM:<a@ext.test>\r\n"),
    (b"HELO client.test\r\n", b"MAIL FROM:<a@ext.test>\r\n"),
    (b"EHLO client.test\r\n", b"NOOP\r\n"),
    (b"NOOP\r\n", b"NOOP\r\n"),
])
def test_improper_pipelining(mserver, first, extra):
    with mserver.connect() as c:
        if not first.startswith((b"EHLO", b"HELO")):
            c.ehlo()
        c.send(first + extra)
        replies = c.all_replies_until_closed()
        assert replies, "closed without a reply"
        assert replies[-1].lines == [
            "554 5.5.0 Error: improper command pipelining"], replies
        for r in replies[:-1]:
            assert not r.last.startswith("250 2.1.0"), replies
        assert len(replies) <= 2


def test_improper_pipelining_after_data(mserver):
    tok = token()
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<bob@local.test>"), "250 ")
        c.send(b"DATA\r\nSubject: " + tok.encode() + b"\r\n\r\nx\r\n.\r\n")
        replies = c.all_replies_until_closed()
        assert replies and replies[-1].lines == [
            "554 5.5.0 Error: improper command pipelining"], replies
        assert all(r.code != 354 and r.code != 250 for r in replies), replies
    nothing_with(mserver, tok)


def read_for(conn, seconds):
    """What the server sends until it closes or `seconds` pass."""
    deadline = time.monotonic() + seconds
    data = conn.buf
    conn.buf = b""
    while time.monotonic() < deadline:
        conn.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            b = conn.sock.recv(65536)
        except (TimeoutError, OSError):
            break
        if not b:
            return data, True
        data += b
    return data, False


@pytest.mark.parametrize("pause", [0, 0.3])
def test_early_talker(server_factory, pause):
    srv = server_factory(["smtp_greeting_delay_ms = 1000"])
    # a client that talks before the banner is cut off, never served:
    # at once, and after the server accepted but before the 1 s delay ends
    s = th.SMTPConn(srv.port, banner=False)
    if pause:
        time.sleep(pause)
    s.send(b"EHLO client.test\r\n")
    data, closed = read_for(s, 5)
    s.close()
    assert b"250" not in data, data
    assert b"554 5.5.0" in data, data
    assert closed, data
    # a patient client waits for the delayed banner and is served
    t0 = time.monotonic()
    with srv.connect() as c:
        assert time.monotonic() - t0 >= 0.5
        expect(c.banner, "220 ")
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
