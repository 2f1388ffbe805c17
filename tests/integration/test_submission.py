# Mail submission (RFC 6409) on port 587 with STARTTLS (RFC 3207) and on
# 465 with implicit TLS (RFC 8314); SMTP AUTH PLAIN and LOGIN (RFC 4954,
# RFC 4616); sender ownership; what tegami adds to submitted mail (RFC 6409
# 8.2, 8.3; "with ESMTPSA", RFC 3848). Driven with exact bytes, smtplib
# and swaks, each TLS connection verified against the exported CA root.
# security-tests.md 19, 20, 21, 22, 24 here; 23 (guessing) in
# test_auth_throttle.py. The contract is notes/submission-spec.md.
import email.utils
import grp
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import time
import uuid
from datetime import datetime, timezone

import pytest

import tegami_harness as th
from tegami_harness import b64, expect, plain_response

ALICE = "alice@local.test"
BOB = "bob@local.test"
CAROL = "carol@local.test"
PW = th.DEFAULT_USERS

# Failures are answered after a short delay here, and never throttled:
# test_auth_throttle.py checks the throttle with its own settings.
SUBMISSION_CONFIG = [
    "auth_failure_delay_ms = 10",
    "auth_failure_delay_max_ms = 20",
    "auth_ip_failure_limit = 1000",
    "auth_account_failure_limit = 1000",
]
SERVER_CONFIG = SUBMISSION_CONFIG

SERVICES = ["587", "465"]
MECHS = ["PLAIN", "LOGIN"]

# How long a `tegami user ...` change may take to reach the running server
# (the spec says about a second).
NOTICE = 5.0


def token():
    return "T" + uuid.uuid4().hex


def port_of(srv, service):
    return {"25": srv.port, "587": srv.submission_port,
            "465": srv.submissions_port}[service]


def keywords(ehlo_reply):
    """The EHLO keywords (lines after the greeting line), as sent."""
    return [l[4:] for l in ehlo_reply.lines[1:]]


def auth_keywords(ehlo_reply):
    return [k for k in keywords(ehlo_reply) if k.upper().startswith("AUTH")]


def has_starttls(ehlo_reply):
    return any(k.upper() == "STARTTLS" for k in keywords(ehlo_reply))


def tls_session(srv, service, source=None, ehlo=True):
    """A verified TLS session: 587 after STARTTLS, or 465; EHLO'd unless
    ehlo is False (then only the 587 pre-TLS EHLO was sent)."""
    if service == "587":
        c = srv.connect_submission(source=source)
        try:
            c.ehlo()
            c.starttls(srv.tls_context())
        except BaseException:
            c.close()
            raise
    else:
        c = srv.connect_submissions(source=source)
    try:
        expect(c.banner, "220 ")
        if ehlo:
            c.ehlo()
    except BaseException:
        c.close()
        raise
    return c


def do_auth(c, mech, user, password):
    if mech == "PLAIN":
        return c.auth_plain(user, password)
    return c.auth_login(user, password)


def login(srv, service="465", user=ALICE, password=None, mech="PLAIN",
          source=None):
    """An authenticated, EHLO'd session (asserts 235 2.7.0)."""
    c = tls_session(srv, service, source=source)
    try:
        expect(do_auth(c, mech, user, password or PW[user]), "235 2.7.0")
    except BaseException:
        c.close()
        raise
    return c


def try_login(srv, user, password, service="465", source=None):
    """The reply to AUTH PLAIN on a fresh TLS session."""
    with tls_session(srv, service, source=source) as c:
        r = c.auth_plain(user, password)
        c.send(b"QUIT\r\n")
        return r


def poll_login(srv, user, password, want, timeout=NOTICE, source=None):
    """Until AUTH PLAIN gets a reply starting with want (bounded): for
    changes made with `tegami user` while the server runs."""
    deadline = time.monotonic() + timeout
    while True:
        r = try_login(srv, user, password, source=source)
        if r.last.startswith(want):
            return r
        assert time.monotonic() < deadline, \
            "%s with %r still gets %r after %.0f s (want %r)" % (
                user, password, r.lines, timeout, want)
        time.sleep(0.2)


def mail_from(c, sender):
    r = c.cmd("MAIL FROM:<%s>" % sender)
    if r.code == 250:
        expect(c.cmd("RSET"), "250 ")
    return r


def header_fields(msg):
    """(header fields as unfolded bytes, body) of a CRLF message."""
    head, sep, body = msg.partition(b"\r\n\r\n")
    assert sep, msg[:300]
    fields = re.split(rb"\r\n(?![ \t])", head)
    return fields, body


def field_names(fields):
    return [f.split(b":", 1)[0].strip().lower() for f in fields]


def deliver_file(srv, addr, tok):
    files = [p for p in srv.new_files(addr) if tok.encode() in th.read(p)]
    assert len(files) == 1, "%s: %d files with %s" % (addr, len(files), tok)
    return th.read(files[0])


def queued(resp):
    if isinstance(resp, bytes):
        resp = resp.decode()
    m = re.search(r"Ok: queued as (\S+)$", resp)
    assert m, resp
    return m.group(1)


def smtplib_session(srv, service, mech):
    """smtplib connected with hostname verification against the exported
    root only, logged in with mech; returns the SMTP object."""
    ctx = srv.tls_context()
    if service == "587":
        s = smtplib.SMTP(local_hostname="client.test", timeout=th.HANG)
    else:
        s = smtplib.SMTP_SSL(local_hostname="client.test", timeout=th.HANG,
                             context=ctx)
    # smtplib verifies the name given to the constructor; connect by
    # address, verify the server's name.
    s._host = th.HOSTNAME
    try:
        code, banner = s.connect(th.LISTEN, port_of(srv, service))
        assert code == 220, banner
        s.ehlo()
        if service == "587":
            assert s.has_extn("starttls") and not s.has_extn("auth")
            s.starttls(context=ctx)
            s.ehlo()
            assert not s.has_extn("starttls")
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        s.esmtp_features["auth"] = mech        # make login() use mech
        code, resp = s.login(ALICE, PW[ALICE])
        assert (code, resp) == (235, b"2.7.0 Authentication successful")
    except BaseException:
        s.close()
        raise
    return s


# ----------------------------------------------------------------------
# Capabilities per port (security-tests.md 21, 24)
# ----------------------------------------------------------------------

def test_banner_on_every_port(mserver):
    want = ["220 %s ESMTP tegami" % th.HOSTNAME]
    with mserver.connect() as c:
        assert c.banner.lines == want
    with mserver.connect_submission() as c:
        assert c.banner.lines == want
    with mserver.connect_submissions() as c:
        assert c.banner.lines == want
        assert c.tls_version in ("TLSv1.2", "TLSv1.3")


def test_port_25_never_offers_or_takes_auth(mserver):
    """security-tests.md 21: AUTH only on the submission ports."""
    good = plain_response(ALICE, PW[ALICE])
    log_before = len(mserver.log_text())
    with mserver.connect() as c:
        r = c.ehlo()
        assert has_starttls(r) and auth_keywords(r) == [], r
        expect(c.cmd("AUTH PLAIN " + good), "502 5.5.1")
        expect(c.cmd("AUTH LOGIN"), "502 5.5.1")
        c.starttls(mserver.tls_context())
        r = c.ehlo()
        assert auth_keywords(r) == [] and not has_starttls(r), r
        expect(c.cmd("AUTH PLAIN " + good), "502 5.5.1")
        # no relay on 25 whoever the sender claims to be
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")
        expect(c.cmd("RCPT TO:<friend@remote.test>"), "554 5.7.1")
    # nothing reached the auth process
    assert not re.search(r"auth (ok|failed|refused):",
                         mserver.log_text()[log_before:])


def test_587_capabilities_before_and_after_starttls(mserver):
    """security-tests.md 21: no PLAIN/LOGIN before STARTTLS on 587."""
    with mserver.connect_submission() as c:
        r = c.ehlo()
        assert has_starttls(r), r
        assert auth_keywords(r) == [], r
        assert not any("PLAIN" in k or "LOGIN" in k for k in keywords(r))
        c.starttls(mserver.tls_context())
        assert c.tls_version in ("TLSv1.2", "TLSv1.3")
        r = c.ehlo()
        assert "250-AUTH PLAIN LOGIN" in r.lines, r
        assert auth_keywords(r) == ["AUTH PLAIN LOGIN"], r
        assert not has_starttls(r), r
        expect(c.auth_plain(ALICE, PW[ALICE]), "235 2.7.0")


def test_465_capabilities_and_starttls_refused(mserver):
    """security-tests.md 24: 465 speaks TLS from the first byte."""
    with mserver.connect_submissions() as c:
        r = c.ehlo()
        assert auth_keywords(r) == ["AUTH PLAIN LOGIN"], r
        assert not has_starttls(r), r
        expect(c.cmd("STARTTLS"), "503 5.5.1")
        # the session goes on
        expect(c.auth_login(ALICE, PW[ALICE]), "235 2.7.0")
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")


def test_plaintext_client_on_465_gets_no_banner(mserver):
    """security-tests.md 24: a plaintext EHLO to 465 gets a TLS alert (or
    nothing) and the connection closes; never an SMTP reply."""
    with th.SMTPConn(mserver.submissions_port, banner=False) as c:
        c.sock.settimeout(1.0)
        try:
            early = c.sock.recv(100)
        except (socket.timeout, TimeoutError):
            early = b""
        assert not early.startswith(b"220"), early
        c.send(b"EHLO client.test\r\n")
        data = early + c.read_until_closed(th.HANG)
    assert not re.match(rb"^[2-5]\d\d[ -]", data), data
    assert data == b"" or data[0] == 0x15, "not a TLS alert: %r" % data[:50]
    assert mserver.alive()
    with mserver.connect_submissions() as c:
        c.ehlo()


def test_465_needs_a_certificate_and_587_refuses_cleartext_auth(
        server_factory):
    """security-tests.md 21, 24: without tls/ there is no 465 and no AUTH
    at all (587 answers 538)."""
    srv = server_factory(extra_config=SUBMISSION_CONFIG, start=False)
    shutil.rmtree(os.path.join(srv.dir, "tls"))
    srv.start()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((th.LISTEN, srv.submissions_port), 2)
    with srv.connect_submission() as c:
        r = c.ehlo()
        assert not has_starttls(r) and auth_keywords(r) == [], r
        r = c.auth_plain(ALICE, PW[ALICE])
        expect(r, "538 5.7.11")
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "530 ")


def test_auth_before_starttls_on_587_is_538(mserver):
    """security-tests.md 21: AUTH PLAIN with the right password in
    cleartext: 538 5.7.11, never 235, and never a 334 challenge."""
    with mserver.connect_submission(source="127.0.0.11") as c:
        c.ehlo()
        expect(c.cmd("AUTH PLAIN " + plain_response(ALICE, PW[ALICE])),
               "538 5.7.11")
        expect(c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), "538 5.7.11")
        expect(c.cmd("AUTH PLAIN"), "538 5.7.11")
        expect(c.cmd("AUTH LOGIN"), "538 5.7.11")
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "530 ")
        # STARTTLS still works afterwards, and then AUTH does
        c.starttls(mserver.tls_context())
        c.ehlo()
        expect(c.auth_plain(ALICE, PW[ALICE]), "235 2.7.0")
    # only the login inside TLS reached the password check
    mserver.wait_log(r"auth ok: user=<%s> ip=127\.0\.0\.11 " %
                     re.escape(ALICE))
    text = mserver.log_text()
    assert PW[ALICE] not in text
    assert len(re.findall(r"auth \w+: user=<[^\n]*ip=127\.0\.0\.11 ",
                          text)) == 1, text[-3000:]


def test_starttls_injection_on_587(mserver):
    """security-tests.md 1, 2 on 587: a command sent in cleartext behind
    STARTTLS is discarded, never answered inside TLS."""
    with mserver.connect_submission() as c:
        c.ehlo()
        c.send("STARTTLS\r\nAUTH PLAIN %s\r\n" %
               plain_response(ALICE, PW[ALICE]))
        expect(c.reply(), "220 ")
        t = mserver.tls_context().wrap_socket(c.sock,
                                              server_hostname=th.HOSTNAME)
        c.sock = t
        t.settimeout(2)
        with pytest.raises((socket.timeout, TimeoutError)):
            data = t.recv(1000)
            raise AssertionError("unsolicited reply after TLS: %r" % data)
        t.settimeout(th.HANG)
        # not authenticated, and EHLO is needed again
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "503 5.5.1")
        c.ehlo()
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "530 5.7.0")


def test_auth_needs_ehlo(mserver):
    """AUTH before EHLO, and after STARTTLS before the new EHLO: 503."""
    good = plain_response(ALICE, PW[ALICE])
    with mserver.connect_submissions() as c:
        expect(c.cmd("AUTH PLAIN " + good), "503 5.5.1")
        c.ehlo()
        expect(c.cmd("AUTH PLAIN " + good), "235 2.7.0")
    with mserver.connect_submission() as c:
        c.ehlo()
        c.starttls(mserver.tls_context())
        expect(c.cmd("AUTH PLAIN " + good), "503 5.5.1")
        c.ehlo()
        expect(c.cmd("AUTH PLAIN " + good), "235 2.7.0")


# ----------------------------------------------------------------------
# Real clients: smtplib
# ----------------------------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("mech", MECHS)
def test_smtplib_login_and_local_delivery(mserver, service, mech):
    """Message-ID and Date added at the end of the header section when
    absent (RFC 6409 8.2, 8.3); Received says ESMTPSA."""
    tok = token()
    msg = ("From: Alice <alice@local.test>\r\nTo: bob@local.test\r\n"
           "Subject: %s\r\n\r\nbody %s\r\n.dot line\r\n" % (tok, tok)
           ).encode()
    s = smtplib_session(mserver, service, mech)
    try:
        code, resp = s.mail(ALICE)
        assert code == 250, resp
        code, resp = s.rcpt(BOB)
        assert code == 250, resp
        code, resp = s.data(msg)
        assert code == 250, resp
        qid = queued(resp)
    finally:
        s.quit()
    content = deliver_file(mserver, BOB, tok)
    rp, received, message = th.split_delivered(content)
    assert rp == b"Return-Path: <alice@local.test>\r\n"
    flat = re.sub(rb"\r\n[ \t]", b" ", received)
    assert b" with ESMTPSA " in flat, received
    assert (b" id " + qid.encode()) in flat, received
    assert PW[ALICE].encode() not in content
    assert plain_response(ALICE, PW[ALICE]).encode() not in content
    fields, body = header_fields(message)
    names = field_names(fields)
    assert names[:3] == [b"from", b"to", b"subject"], names
    assert fields[:3] == msg.split(b"\r\n")[:3]
    assert sorted(names[3:]) == [b"date", b"message-id"], names
    mid = [f for f in fields if f.lower().startswith(b"message-id:")][0]
    assert re.fullmatch(rb"Message-ID: <[^<>@\s]+@[^<>@\s]+>", mid), mid
    date = [f for f in fields if f.lower().startswith(b"date:")][0]
    when = email.utils.parsedate_to_datetime(date[5:].strip().decode())
    assert when.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 3600
    assert body == ("body %s\r\n.dot line\r\n" % tok).encode()
    assert re.search(r"auth ok: user=<%s> ip=127\.0\.0\.1 service=\S+" %
                     re.escape(ALICE), mserver.log_text())


@pytest.mark.parametrize("present", [
    b"Message-ID: <%(tok)s@client.test>\r\nDate: Tue, 01 Jan 2030 "
    b"10:00:00 +0100\r\n",
    b"message-id: <%(tok)s@client.test>\r\n",
    b"DATE: Tue, 01 Jan 2030 10:00:00 +0100\r\n",
], ids=["both", "message-id-lowercase", "date-uppercase"])
def test_existing_message_id_and_date_are_kept(mserver, present):
    tok = token()
    extra = present % {b"tok": tok.encode()}
    msg = (b"From: alice@local.test\r\nSubject: " + tok.encode() +
           b"\r\n" + extra + b"X-Last: 1\r\n\r\nbody\r\n")
    with login(mserver, "587") as c:
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")
        expect(c.cmd("RCPT TO:<%s>" % BOB), "250 ")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(msg))
        expect(c.reply(), "250 2.0.0")
    _, _, message = th.split_delivered(deliver_file(mserver, BOB, tok))
    fields, body = header_fields(message)
    names = field_names(fields)
    assert names.count(b"message-id") == 1, names
    assert names.count(b"date") == 1, names
    orig, _ = header_fields(msg)
    assert fields[:len(orig)] == orig          # kept byte for byte, in place
    added = names[len(orig):]
    want = sorted({b"message-id", b"date"} - set(field_names(orig)))
    assert sorted(added) == want, names
    assert body == b"body\r\n"


def test_port_25_mail_is_never_changed(mserver):
    tok = token()
    msg = (b"From: x@ext.test\r\nSubject: " + tok.encode() +
           b"\r\n\r\nno id, no date\r\n")
    r, qid = th.send_message(mserver.port, "x@ext.test", [BOB], msg)
    expect(r["end"], "250 2.0.0")
    _, received, message = th.split_delivered(
        deliver_file(mserver, BOB, tok))
    assert message == msg
    assert b"ESMTPSA" not in received and b"ESMTPA" not in received


@pytest.mark.parametrize("service", SERVICES)
def test_remote_recipient_is_queued(mserver, service):
    tok = token()
    rcpt = "friend-%s@remote.test" % tok.lower()
    s = smtplib_session(mserver, service, "PLAIN")
    try:
        code, resp = s.mail(ALICE)
        assert code == 250, resp
        code, resp = s.rcpt(rcpt)
        assert code == 250, resp
        code, resp = s.data(("Subject: %s\r\n\r\nto a remote %s\r\n" % (
            tok, tok)).encode())
        assert code == 250, resp
        qid = queued(resp)
    finally:
        s.quit()
    qdir = os.path.join(mserver.dir, "queue")
    names = set(os.listdir(qdir))
    assert {qid + ".msg", qid + ".env"} <= names, (qid, sorted(names))
    assert rcpt.encode() in th.read(os.path.join(qdir, qid + ".env"))
    assert tok.encode() in th.read(os.path.join(qdir, qid + ".msg"))
    p = mserver.tegami("queue", "list")
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, (out, p.stderr)
    assert qid in out and rcpt in out, out


def test_smtplib_verifies_the_server_name(mserver):
    """The certificate is for HOSTNAME: another name fails, so do the
    system trust store and the port-25 STARTTLS name check."""
    ctx = mserver.tls_context()
    with socket.create_connection((th.LISTEN, mserver.submissions_port),
                                  th.HANG) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="wrong.local.test")
    with socket.create_connection((th.LISTEN, mserver.submissions_port),
                                  th.HANG) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(
                raw, server_hostname=th.HOSTNAME)
    assert mserver.alive()


# ----------------------------------------------------------------------
# Refusals
# ----------------------------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("case", ["wrong-password", "unknown-user",
                                  "other-users-password"])
def test_bad_credentials_535(mserver, service, case):
    user, password, reason = {
        "wrong-password": (ALICE, "not-" + PW[ALICE], "password"),
        "unknown-user": ("nobody@local.test", PW[ALICE], "unknown-user"),
        "other-users-password": (ALICE, PW[BOB], "password"),
    }[case]
    src = "127.0.0.%d" % (20 + SERVICES.index(service))
    for mech in MECHS:
        with tls_session(mserver, service, source=src) as c:
            expect(do_auth(c, mech, user, password), "535 5.7.8")
            expect(c.cmd("MAIL FROM:<%s>" % ALICE), "530 5.7.0")
            # the session may try again
            expect(do_auth(c, mech, ALICE, PW[ALICE]), "235 2.7.0")
    mserver.wait_log(r"auth failed: user=<%s> ip=%s service=\S+ "
                     r"reason=%s" % (re.escape(user), re.escape(src), reason))
    assert ("not-" + PW[ALICE]) not in mserver.log_text()


def test_login_name_is_case_insensitive(mserver):
    with tls_session(mserver, "465") as c:
        expect(c.auth_plain("Alice@Local.TEST", PW[ALICE]), "235 2.7.0")
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")
    with tls_session(mserver, "587") as c:
        expect(c.auth_login("ALICE@local.test", PW[ALICE]), "235 2.7.0")


def test_locked_account(server_factory):
    srv = server_factory(extra_config=SUBMISSION_CONFIG)
    expect(try_login(srv, CAROL, PW[CAROL]), "235 2.7.0")
    p = srv.tegami("user", "lock", CAROL)
    assert p.returncode == 0, p.stderr
    poll_login(srv, CAROL, PW[CAROL], "535 5.7.8")
    with tls_session(srv, "587") as c:
        expect(c.auth_login(CAROL, PW[CAROL]), "535 5.7.8")
        expect(c.cmd("MAIL FROM:<%s>" % CAROL), "530 5.7.0")
    srv.wait_log(r"auth failed: user=<%s> ip=127\.0\.0\.1 service=\S+ "
                 r"reason=locked" % re.escape(CAROL))
    # mail to the locked account is still delivered; others still log in
    r, _ = th.send_message(srv.port, "x@ext.test", [CAROL],
                           th.make_message(b"TO-LOCKED"))
    expect(r["end"], "250 2.0.0")
    expect(try_login(srv, ALICE, PW[ALICE]), "235 2.7.0")


@pytest.mark.parametrize("service", SERVICES)
def test_no_auth_no_relay(mserver, service):
    """security-tests.md 19: without AUTH, MAIL gets 530 5.7.0 on the
    submission ports, so nothing is relayed; port 25 still refuses
    remote recipients with 554 5.7.1."""
    with tls_session(mserver, service) as c:
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "530 5.7.0")
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "530 5.7.0")
        r = c.cmd("RCPT TO:<friend@remote.test>")
        assert r.code in (503, 530), r
        assert c.cmd("DATA").code in (503, 530, 554)
    if service == "587":
        with mserver.connect_submission() as c:       # before STARTTLS
            c.ehlo()
            assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 530
    with mserver.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")
        expect(c.cmd("RCPT TO:<friend@remote.test>"), "554 5.7.1")
    qdir = os.path.join(mserver.dir, "queue")
    assert [n for n in os.listdir(qdir) if n.endswith(".env") and
            b"<friend@remote.test>" in th.read(os.path.join(qdir, n))] == []


ALICE_SENDERS = [
    (ALICE, True),
    ("alice+x@local.test", True),
    ("alice+lists.2024@local.test", True),
    ("postmaster@local.test", True),       # alias -> alice
    ("staff@local.test", True),            # alias -> alice, bob
    ("", True),                            # null sender
    (BOB, False),
    ("bob+x@local.test", False),
    (CAROL, False),
    ("alice@ext.test", False),
    ("alicex@local.test", False),
    ("xalice@local.test", False),
    ("loop1@local.test", False),
    ("nobody@local.test", False),
    ("someone@remote.test", False),
]


@pytest.mark.parametrize("service", SERVICES)
def test_sender_ownership(mserver, service):
    """security-tests.md 20: MAIL FROM must be the user's own address, a
    +tag of it, an alias that reaches the user, or <>; else 553 5.7.1."""
    got = {}
    # a few senders per session: the refusals are session errors
    for i in range(0, len(ALICE_SENDERS), 4):
        with login(mserver, service) as c:
            for sender, ok in ALICE_SENDERS[i:i + 4]:
                got[sender] = mail_from(c, sender).last
    wrong = {s: got[s] for s, ok in ALICE_SENDERS
             if not got[s].startswith("250 " if ok else "553 5.7.1")}
    assert wrong == {}, "alice's MAIL FROM replies not as specified: %r" % \
        wrong
    with login(mserver, service, user=BOB) as c:
        expect(mail_from(c, "postmaster@local.test"), "553 5.7.1")
        expect(mail_from(c, "staff@local.test"), "250 ")
        expect(mail_from(c, ALICE), "553 5.7.1")
    # an allowed alias sender is really used as the envelope sender
    tok = token()
    with login(mserver, service) as c:
        c.open_data(rcpts=(BOB,), sender="postmaster@local.test", ehlo=False)
        c.send(th.dot_stuff(b"Subject: " + tok.encode() + b"\r\n\r\nx\r\n"))
        expect(c.reply(), "250 2.0.0")
    rp, _, _ = th.split_delivered(deliver_file(mserver, BOB, tok))
    assert rp == b"Return-Path: <postmaster@local.test>\r\n"


def test_send_as_widens_the_allowed_senders(server_factory):
    """security-tests.md 20: `tegami user send-as` adds addresses,
    @domain and * for one user, noticed without a restart."""
    srv = server_factory(extra_config=SUBMISSION_CONFIG)
    with login(srv) as c:
        expect(mail_from(c, "boss@ext.test"), "553 5.7.1")
    p = srv.tegami("user", "send-as", ALICE, "boss@ext.test", "@corp.test")
    assert p.returncode == 0, p.stderr
    p = srv.tegami("user", "send-as", CAROL, "*")
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + NOTICE
    while True:
        with login(srv) as c:
            if mail_from(c, "boss@ext.test").code == 250:
                break
        assert time.monotonic() < deadline, "send-as not noticed"
        time.sleep(0.2)
    cases = [
        (ALICE, "boss@ext.test", "250 "),
        (ALICE, "anyone@corp.test", "250 "),
        (ALICE, "ANYONE@Corp.Test", "250 "),
        (ALICE, ALICE, "250 "),
        (ALICE, "other@ext.test", "553 5.7.1"),
        (ALICE, "x@sub.corp.test", "553 5.7.1"),
        (ALICE, "x@corp.test.evil.test", "553 5.7.1"),
        (ALICE, BOB, "553 5.7.1"),
        (CAROL, "anything@anywhere.test", "250 "),
        (CAROL, BOB, "250 "),
        (CAROL, "", "250 "),
        (BOB, "boss@ext.test", "553 5.7.1"),
        (BOB, "anyone@corp.test", "553 5.7.1"),
    ]
    wrong = []
    for user, sender, want in cases:
        with login(srv, user=user) as c:
            r = mail_from(c, sender)
            if not r.last.startswith(want):
                wrong.append((user, sender, want, r.last))
    assert wrong == [], wrong


def test_second_auth_and_auth_in_transaction(mserver):
    with login(mserver, "465") as c:
        expect(c.auth_plain(ALICE, PW[ALICE]), "503 5.5.1")
        expect(c.auth_login(BOB, PW[BOB]), "503 5.5.1")
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "250 ")
        expect(c.cmd("AUTH PLAIN " + plain_response(BOB, PW[BOB])),
               "503 5.5.1")
        # still alice, transaction intact
        expect(c.cmd("RCPT TO:<%s>" % BOB), "250 ")
        expect(c.cmd("RSET"), "250 ")
        expect(mail_from(c, BOB), "553 5.7.1")


# security-tests.md 22: (name, commands, expected last reply prefix).
# Each runs on a fresh TLS session of 465 after EHLO.
SASL_CASES = [
    ("plain-bad-base64-initial", ["AUTH PLAIN !!!!"], "501 5.5.2"),
    ("plain-bad-base64-response", ["AUTH PLAIN", "!!!!"], "501 5.5.2"),
    ("plain-unpadded", ["AUTH PLAIN YWJjZA"], "501 5.5.2"),
    ("plain-nonzero-pad-bits", ["AUTH PLAIN YR=="], "501 5.5.2"),
    ("plain-cancel", ["AUTH PLAIN", "*"], "501 5.0.0"),
    ("login-cancel-user", ["AUTH LOGIN", "*"], "501 5.0.0"),
    ("login-cancel-password", ["AUTH LOGIN", b64(ALICE), "*"], "501 5.0.0"),
    ("login-bad-base64", ["AUTH LOGIN", "!!!!"], "501 5.5.2"),
    ("login-bad-base64-password", ["AUTH LOGIN", b64(ALICE), "=!="],
     "501 5.5.2"),
    ("unknown-mech", ["AUTH FOO"], "504 5.5.4"),
    ("cram-md5", ["AUTH CRAM-MD5"], "504 5.5.4"),
    ("authzid-other-user",
     ["AUTH PLAIN " + plain_response(ALICE, PW[ALICE], authzid=BOB)],
     "535 5.7.8"),
    ("authzid-other-user-after-334",
     ["AUTH PLAIN", plain_response(ALICE, PW[ALICE], authzid=BOB)],
     "535 5.7.8"),
    ("authcid-bob-authzid-alice",
     ["AUTH PLAIN " + b64("%s\0%s\0%s" % (ALICE, BOB, PW[ALICE]))],
     "535 5.7.8"),
]


@pytest.mark.parametrize("cmds,want", [c[1:] for c in SASL_CASES],
                         ids=[c[0] for c in SASL_CASES])
def test_sasl_refusals(mserver, cmds, want):
    """security-tests.md 22: bad base64, cancel, unknown mechanism and
    authzid impersonation; the session is not authenticated after it and
    may AUTH again."""
    with tls_session(mserver, "465") as c:
        for cmd in cmds[:-1]:
            expect(c.cmd(cmd), "334 ")
        expect(c.cmd(cmds[-1]), want)
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "530 5.7.0")
        expect(c.cmd("MAIL FROM:<%s>" % BOB), "530 5.7.0")
        expect(c.auth_plain(ALICE, PW[ALICE]), "235 2.7.0")
        expect(mail_from(c, BOB), "553 5.7.1")


@pytest.mark.parametrize("cmds", [
    ["AUTH PLAIN ="],                              # empty message
    ["AUTH PLAIN", "="],
    ["AUTH PLAIN " + b64("\0" + ALICE)],           # no password
    ["AUTH PLAIN " + b64("\0" + ALICE + "\0")],    # empty password
    ["AUTH PLAIN " + b64(ALICE + "\0" + PW[ALICE])],   # one NUL
    ["AUTH PLAIN " + b64("\0\0" + PW[ALICE])],     # empty authcid
    ["AUTH PLAIN " + b64("\0%s\0%s\0x" % (ALICE, PW[ALICE]))],  # 3 NULs
    ["AUTH PLAIN " + b64(b"\0alice\xff@local.test\0" + PW[ALICE].encode())],
    ["AUTH LOGIN", "=", ],
    ["AUTH LOGIN", b64(ALICE), "="],
], ids=["plain-eq", "plain-334-eq", "no-password", "empty-password",
        "one-nul", "empty-authcid", "three-nuls", "bad-utf8",
        "login-empty-user", "login-empty-password"])
def test_sasl_malformed_messages_never_authenticate(mserver, cmds):
    """security-tests.md 22: 501 or 535, never 235."""
    with tls_session(mserver, "465") as c:
        for cmd in cmds[:-1]:
            expect(c.cmd(cmd), "334 ")
        r = c.cmd(cmds[-1])
        assert r.code in (501, 535), r
        expect(c.cmd("MAIL FROM:<%s>" % ALICE), "530 5.7.0")
    assert mserver.alive()


@pytest.mark.parametrize("where", ["initial", "response"])
def test_sasl_12k_of_base64(mserver, where):
    """security-tests.md 22: 12 kB of base64 is refused (501, or 500 for
    the line length) without a crash; another login is unaffected."""
    big = b64(b"\0" + ALICE.encode() + b"\0" + b"p" * 9000)
    assert len(big) > 12000
    with tls_session(mserver, "465") as c:
        if where == "response":
            expect(c.cmd("AUTH PLAIN"), "334 ")
        line = ("AUTH PLAIN " if where == "initial" else "") + big + "\r\n"
        try:
            c.send(line)
            r = c.reply()
            assert r.code in (500, 501), r
        except (th.Closed, BrokenPipeError, ConnectionResetError):
            pass            # closed at once: allowed, no 235
    expect(try_login(mserver, ALICE, PW[ALICE]), "235 2.7.0")
    assert mserver.alive()


def test_abandoned_auth_does_not_hurt_other_logins(mserver):
    """security-tests.md 22 (Dovecot CVE-2025-59028): sessions left in the
    middle of AUTH LOGIN, or cut off there, do not stop a valid login."""
    pending = []
    try:
        for i in range(5):
            c = tls_session(mserver, "465")
            pending.append(c)
            expect(c.cmd("AUTH LOGIN"), "334 ")
            if i % 2:
                expect(c.cmd(b64(ALICE)), "334 ")
        pending[0].close()                 # disconnect mid-AUTH
        c = tls_session(mserver, "587")
        pending.append(c)
        expect(c.cmd("AUTH PLAIN"), "334 ")
        c.send(b"!!!!\r\n")
        expect(c.reply(), "501 5.5.2")
        t0 = time.monotonic()
        with login(mserver, "587", user=BOB) as ok:
            expect(ok.cmd("MAIL FROM:<%s>" % BOB), "250 ")
        assert time.monotonic() - t0 < th.HANG
    finally:
        for c in pending:
            c.close()
    assert mserver.alive()


def test_failed_auth_counts_as_session_error(server_factory):
    """Every failed AUTH is a session error: at smtp_error_limit the
    session ends with 421."""
    srv = server_factory(extra_config=SUBMISSION_CONFIG + [
        "smtp_error_limit = 3", "smtp_soft_error_limit = 0",
        "smtp_error_delay_ms = 0"])
    with tls_session(srv, "465") as c:
        replies = []
        for i in range(6):
            try:
                c.send("AUTH PLAIN %s\r\n" % plain_response(
                    ALICE, "wrong-%d" % i))
                replies.append(c.reply())
            except (th.Closed, BrokenPipeError, ConnectionResetError,
                    ssl.SSLError):
                break
            if replies[-1].code == 421:
                break
        codes = [r.code for r in replies]
        assert 421 in codes, codes
        # the third error is answered, then 421 (or 421 instead of it)
        assert codes.index(421) in (2, 3), codes
        expect(replies[codes.index(421)], "421 4.7.0")
        assert all(x == 535 for x in codes[:codes.index(421)]), codes
        assert c.is_closed()
    expect(try_login(srv, ALICE, PW[ALICE]), "235 2.7.0")


# ----------------------------------------------------------------------
# Accounts changed while the server runs
# ----------------------------------------------------------------------

def test_password_change_needs_no_restart(server_factory):
    srv = server_factory(extra_config=SUBMISSION_CONFIG)
    pid = srv.pid
    expect(try_login(srv, ALICE, PW[ALICE]), "235 2.7.0")
    new = "alice-New-Secret-9"
    p = srv.tegami("user", "passwd", ALICE, "--password-stdin",
                   input=new + "\n")
    assert p.returncode == 0, p.stderr
    poll_login(srv, ALICE, new, "235 2.7.0")
    expect(try_login(srv, ALICE, PW[ALICE]), "535 5.7.8")
    with tls_session(srv, "587") as c:
        expect(c.auth_login(ALICE, new), "235 2.7.0")
    assert srv.pid == pid and srv.alive()
    assert new not in srv.log_text()


def test_user_added_and_deleted_while_running(server_factory):
    srv = server_factory(extra_config=SUBMISSION_CONFIG)
    dave, pw = "dave@local.test", "dave-Secret-4"
    expect(try_login(srv, dave, pw), "535 5.7.8")
    srv.user_add(dave, pw)
    poll_login(srv, dave, pw, "235 2.7.0")
    tok = token()
    with login(srv, "587", user=dave, password=pw) as c:
        c.open_data(rcpts=(ALICE,), sender=dave, ehlo=False)
        c.send(th.dot_stuff(b"Subject: " + tok.encode() + b"\r\n\r\nhi\r\n"))
        expect(c.reply(), "250 2.0.0")
    deliver_file(srv, ALICE, tok)
    p = srv.tegami("user", "del", BOB)
    assert p.returncode == 0, p.stderr
    poll_login(srv, BOB, PW[BOB], "535 5.7.8")
    srv.wait_log(r"auth failed: user=<%s> ip=127\.0\.0\.1 service=\S+ "
                 r"reason=unknown-user" % re.escape(BOB))


# ----------------------------------------------------------------------
# The auth process
# ----------------------------------------------------------------------

def proc_uid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def test_auth_process_runs_apart_and_fronts_cannot_read_hashes(server):
    auth_uid = pwd.getpwnam("tegami-auth").pw_uid
    auth_gid = grp.getgrnam("tegami-auth").gr_gid
    users = os.path.join(server.dir, "users")
    st = os.stat(users)
    assert stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (0, auth_gid), (st.st_uid, st.st_gid)
    uids = {p: proc_uid(p) for p in server.pids()}
    assert auth_uid in uids.values(), uids
    front_uid = pwd.getpwnam("tegami").pw_uid
    assert front_uid in uids.values(), uids
    # the front's account cannot read the users file
    p = subprocess.run(["setpriv", "--reuid=tegami", "--regid=tegami",
                        "--init-groups", "cat", users],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode != 0 and p.stdout == b"", p
    # logins work with the hashes only the auth process holds
    expect(try_login(server, ALICE, PW[ALICE]), "235 2.7.0")


def test_auth_process_unavailable_is_454(server_factory):
    """With the auth process gone, AUTH gets 454 4.7.0 (or 235 once it
    is back), promptly; never 535, and the fronts keep serving."""
    srv = server_factory(extra_config=SUBMISSION_CONFIG)
    auth_uid = pwd.getpwnam("tegami-auth").pw_uid
    victims = [p for p in srv.pids() if proc_uid(p) == auth_uid]
    assert victims, "no process runs as tegami-auth"
    with tls_session(srv, "465") as c:
        for p in victims:
            os.kill(p, signal.SIGKILL)
        t0 = time.monotonic()
        r = c.auth_plain(ALICE, PW[ALICE])
        assert time.monotonic() - t0 < th.HANG
        assert r.last.startswith(("454 4.7.0", "235 2.7.0")), r
        expect(c.cmd("NOOP"), "250 ")
    assert srv.alive()
    with srv.connect() as c:
        c.ehlo()
        expect(c.cmd("NOOP"), "250 ")


def test_auth_process_not_answering_is_454_after_the_timeout(
        server_factory):
    """An auth process that takes no requests (stopped) costs a login
    454 4.7.0 after the front's 30 s timeout, never 535 or a hang; other
    sessions are served meanwhile, and once it runs again logins work."""
    srv = server_factory(extra_config=SUBMISSION_CONFIG)
    auth_uid = pwd.getpwnam("tegami-auth").pw_uid
    victims = [p for p in srv.pids() if proc_uid(p) == auth_uid]
    assert victims, "no process runs as tegami-auth"
    with tls_session(srv, "465") as c:
        for p in victims:
            os.kill(p, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            c.send(b"AUTH PLAIN " + th.plain_response(ALICE, PW[ALICE])
                   .encode() + b"\r\n")
            with srv.connect() as other:
                other.ehlo()
                expect(other.cmd("NOOP"), "250 ")
            assert time.monotonic() - t0 < 25
            expect(c.reply(timeout=60), "454 4.7.0")
            assert 25 <= time.monotonic() - t0 < 60
            expect(c.cmd("NOOP"), "250 ")
        finally:
            for p in victims:
                os.kill(p, signal.SIGCONT)
    srv.wait_log(r"no answer from the auth process")
    expect(try_login(srv, ALICE, PW[ALICE]), "235 2.7.0")


# ----------------------------------------------------------------------
# swaks
# ----------------------------------------------------------------------

def swaks(srv, service, *args):
    assert shutil.which("swaks"), \
        "swaks is not installed (scripts/install-deps test installs it)"
    tls = ["--tls"] if service == "587" else ["--tlsc"]
    cmd = ["swaks", "--server", th.LISTEN, "--port",
           str(port_of(srv, service)), "--helo", "client.test",
           "--timeout", "10", *tls, "--tls-verify", "--tls-ca-path",
           srv.root_pem(), "--tls-sni", th.HOSTNAME] + list(args)
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("mech", MECHS)
def test_swaks_auth(mserver, service, mech):
    tok = token()
    p = swaks(mserver, service, "--auth", mech, "--auth-user", ALICE,
              "--auth-password", PW[ALICE], "--from", ALICE, "--to",
              "%s,carol@local.test" % BOB, "--header", "Subject: " + tok,
              "--body", "swaks body " + tok)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert re.search(r"<[~ ]+ 235 2\.7\.0", out), out
    for rcpt in (BOB, CAROL):
        rp, received, message = th.split_delivered(
            deliver_file(mserver, rcpt, tok))
        assert rp == b"Return-Path: <alice@local.test>\r\n"
        assert b"with ESMTPSA" in re.sub(rb"\r\n[ \t]", b" ", received)
    # a wrong password: swaks exits 28 (AUTH failed), nothing delivered
    tok2 = token()
    p = swaks(mserver, service, "--auth", mech, "--auth-user", ALICE,
              "--auth-password", "wrong", "--from", ALICE, "--to", BOB,
              "--header", "Subject: " + tok2)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 28, out
    assert "535 5.7.8" in out, out
    assert th.files_containing(mserver.dir, tok2) == []
