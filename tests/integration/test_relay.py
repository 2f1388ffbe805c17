# Never an open relay (security-tests.md test 9): every non-local
# recipient form is refused without authentication, with swaks and with
# raw commands; source routes are dropped (RFC 5321 4.1.1.3, 3.6.2).
# Shell/expansion injection in envelopes (test 7, 8): refused or kept as
# plain data, never executed, answered at once.
import os
import subprocess
import time
import uuid

import pytest

import tegami_harness as th
from tegami_harness import expect, queued_id

# (address, expected reply prefix) as the spec orders it.
RELAY_MATRIX = [
    ("v@ext.test", "554 5.7.1"),
    ("v@EXT.TEST", "554 5.7.1"),
    ("V@Ext.Test", "554 5.7.1"),
    ("v%ext.test@local.test", "554 5.7.1"),
    ("alice%local.test@local.test", "554 5.7.1"),
    ("@local.test:v@ext.test", "554 5.7.1"),
    ("@local.test,@local.test:v@ext.test", "554 5.7.1"),
    ("ext.test!v@local.test", "554 5.7.1"),
    ('"v@ext.test"@local.test', "554 5.7.1"),
    ('"v@ext.test"@LOCAL.TEST', "554 5.7.1"),
    ("v@[192.0.2.1]", "554 5.7.1"),
    ("alice@[127.0.0.1]", "554 5.7.1"),
    ("v@[IPv6:2001:db8::1]", "554 5.7.1"),
    ("v@sub.local.test", "554 5.7.1"),
    ("v@local.test.ext.test", "554 5.7.1"),
    ("v@localtest", "554 5.7.1"),
    ("v@ext.test@local.test", "501 5.1.3"),
    ("alice@local.test@ext.test", "501 5.1.3"),
    ("v@local.test.", "501 5.1.3"),
    ("alice@local.test.", "501 5.1.3"),
]


def swaks(srv, to, *extra):
    cmd = ["swaks", "-s", th.LISTEN, "-p", str(srv.port), "--helo",
           "client.test", "--timeout", "10", "-f", "a@ext.test", "-t", to,
           "--quit-after", "RCPT"] + list(extra)
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=30)


@pytest.mark.parametrize("addr,want", RELAY_MATRIX)
def test_relay_matrix_raw(mserver, addr, want):
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0 Ok")
        r = c.cmd("RCPT TO:<%s>" % addr)
        assert r.code != 250, "relay accepted for %r" % addr
        expect(r, want)
        if want.startswith("554"):
            assert r.last.endswith(": Relay access denied"), r
        # the transaction has no recipient: DATA is refused
        assert c.cmd("DATA").lines[0].startswith("554 5.5.1")
        expect(c.cmd("QUIT"), "221 ")


@pytest.mark.parametrize("addr", [a for a, _ in RELAY_MATRIX])
def test_relay_matrix_swaks(mserver, addr):
    p = swaks(mserver, addr)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 24, out
    assert "<-  250 2.1.5" not in out


def test_relay_refused_without_domain_tricks_for_null_sender(mserver):
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<>"), "250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<v@ext.test>"), "554 5.7.1")
        # a sender in our own domain is not authentication either
        expect(c.cmd("RSET"), "250 ")
        expect(c.cmd("MAIL FROM:<alice@local.test>"), "250 2.1.0 Ok")
        expect(c.cmd("RCPT TO:<v@ext.test>"), "554 5.7.1")


@pytest.mark.parametrize("route", ["@ext.test:alice@local.test",
                                   "@a.ext.test,@b.ext.test:alice@local.test"])
def test_source_route_to_local_is_accepted(mserver, route):
    tok = "T" + uuid.uuid4().hex
    msg = b"Subject: " + tok.encode() + b"\r\n\r\nrouted\r\n"
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<%s>" % route), "250 2.1.5 Ok")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(msg))
        queued_id(c.reply())
    found = [p for p in mserver.new_files("alice@local.test")
             if tok.encode() in th.read(p)]
    assert len(found) == 1
    assert th.split_delivered(th.read(found[0]))[2] == msg
    p = swaks(mserver, route)
    assert p.returncode == 0, p.stdout


# --- injection (test 7 and 8) ------------------------------------------

PWN = "/tmp/pwn"


@pytest.fixture
def no_pwn():
    if os.path.lexists(PWN):
        os.unlink(PWN)
    yield
    assert not os.path.lexists(PWN), "%s was created" % PWN


def timed(c, line):
    t0 = time.monotonic()
    r = c.cmd(line)
    dt = time.monotonic() - t0
    assert dt < 5, "reply to %r took %.1f s" % (line, dt)
    return r


def test_shell_and_expansion_injection(mserver, no_pwn, tmp_path):
    tok = "T" + uuid.uuid4().hex
    out = str(tmp_path / "strace.out")
    with th.Strace(mserver.pids(), ["execve", "execveat"], out) as st:
        with mserver.connect() as c:
            c.ehlo()
            # CVE-2020-7247
            expect(timed(c, "MAIL FROM:<;sleep 66;>"), "501 5.1.7")
            expect(timed(c, "RCPT TO:<root>"), "503 5.5.1")
            expect(timed(c, "DATA"), "503 5.5.1")
            expect(timed(c, "MAIL FROM:<a@ext.test>"), "250 2.1.0")
            expect(timed(c, "RCPT TO:<root>"), "501 5.1.3")
            expect(timed(c, "RCPT TO:<;sleep 66;@local.test>"), "501 5.1.3")
            # CVE-2019-10149 (escaped form, then with the real bytes)
            r = timed(c, b"RCPT TO:<${run{\\x2fbin\\x2fsh\\t-c\\t\\x22id"
                         b"\\x22}}@localhost>")
            assert r.code in (501, 553, 554), r
            r = timed(c, b'RCPT TO:<${run{/bin/sh\t-c\t"id"}}@localhost>')
            assert r.code in (501, 553, 554), r
            r = timed(c, b"RCPT TO:<${run{/bin/touch /tmp/pwn}}@local.test>")
            assert r.code in (501, 550, 553), r
            # backticks: valid dot-atom characters, so a local recipient
            # with them is simply unknown
            r = timed(c, "RCPT TO:<a`touch${IFS}/tmp/pwn`@local.test>")
            assert r.code in (501, 550, 553), r
            # CVE-2020-28021 / 28026 / ENVID: unknown parameters
            expect(timed(c, "RSET"), "250 ")
            expect(timed(c, "MAIL FROM:<> AUTH=x+0AInjected:+20yes"),
                   "555 5.5.4")
            expect(timed(c, "MAIL FROM:<a@ext.test> ENVID=x+0D+0ABcc:"
                            "+20v@x"), "555 5.5.4")
            expect(timed(c, "MAIL FROM:<a@ext.test>"), "250 2.1.0")
            expect(timed(c, "RCPT TO:<bob@local.test> NOTIFY=FAILURE "
                            "ORCPT=rfc822;a+0Ab@c"), "555 5.5.4")
            expect(timed(c, "QUIT"), "221 ")
        # a syntactically valid sender full of shell syntax is plain data:
        # accepted or refused, but if delivered it is stored verbatim
        sender = "a`touch${IFS}/tmp/pwn`$(touch${IFS}/tmp/pwn)@ext.test"
        with mserver.connect() as c:
            c.ehlo()
            r = timed(c, "MAIL FROM:<%s>" % sender)
            assert r.code in (250, 501, 553), r
            delivered = False
            if r.code == 250:
                expect(timed(c, "RCPT TO:<alice+`touch${IFS}/tmp/pwn`"
                                "@local.test>"), "250 2.1.5")
                expect(timed(c, "DATA"), "354 ")
                c.send(th.dot_stuff(b"Subject: " + tok.encode() +
                                    b"\r\n\r\n`touch /tmp/pwn`\r\n"))
                queued_id(c.reply())
                delivered = True
    lines = [l for l in st.lines() if "exec" in l]
    assert lines == [], "the server executed a program:\n" + "\n".join(lines)
    if delivered:
        found = [p for p in mserver.new_files("alice@local.test")
                 if tok.encode() in th.read(p)]
        assert len(found) == 1
        rp = th.split_delivered(th.read(found[0]))[0]
        assert rp == ("Return-Path: <%s>\r\n" % sender).encode()
