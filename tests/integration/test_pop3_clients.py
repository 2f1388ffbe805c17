# fetchmail and mpop, real POP3 clients (Debian packages), download mail
# that tegami received over SMTP: STLS on port 110 (RFC 2595) and implicit
# TLS on 995 (RFC 8314), the certificate verified against the root that
# `tegami ca export` gives and nothing else. The bytes that arrive are the
# bytes of the Maildir file (RFC 1939 RETR, dot-stuffing undone); "keep"
# leaves the messages (marked seen, maildir(5) ":2,S"), without it they
# are gone after QUIT (RFC 1939 6); UIDL lets a client take only new mail
# (RFC 1939 7). A wrong CA or a wrong password makes both clients fail.
import os
import re
import shutil
import subprocess

import pytest

import tegami_harness as th

ALICE = "alice@local.test"
BOB = "bob@local.test"
PW = th.DEFAULT_USERS

# Fast failed logins (the wrong-password tests wait for the delay) and no
# throttling across the few attempts of a test.
SERVER_CONFIG = [
    "auth_failure_delay_ms = 10",
    "auth_failure_delay_max_ms = 20",
    "auth_ip_failure_limit = 1000",
    "auth_account_failure_limit = 1000",
]

# Anti-hang bound for one client run (they download a few hundred KB).
CLIENT_TIMEOUT = 60

# fetchmail's exit codes (fetchmail(1), EXIT CODES).
FETCHMAIL_OK = 0
FETCHMAIL_NOMAIL = 1
FETCHMAIL_SOCKET = 2
FETCHMAIL_AUTHFAIL = 3


def need(prog, package):
    path = shutil.which(prog)
    assert path, ("%s is not installed: the Debian package %s must be in "
                  "scripts/install-deps test" % (prog, package))
    return path


@pytest.fixture
def srv(server_factory):
    return server_factory(extra_config=SERVER_CONFIG)


def messages(tag):
    """Messages of different shapes: tiny; lines that are or start with a
    dot (stuffed on the wire) and 8-bit text; about 300 KB (sent in many
    pieces); a header section only, no body."""
    return [
        b"From: a@ext.test\r\nTo: alice@local.test\r\nSubject: tiny " +
        tag + b"\r\n\r\nhi\r\n",
        b"From: a@ext.test\r\nTo: alice@local.test\r\nSubject: dots " +
        tag + b"\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b".\r\n..\r\n...\r\n.hidden\r\n. \r\nK\xc3\xb6ln\r\n\tindent  \r\n"
        b"\r\n.\r\nlast\r\n",
        th.make_message(b"big-" + tag, size=300000),
        b"From: a@ext.test\r\nTo: alice@local.test\r\nSubject: empty " +
        tag + b"\r\n\r\n",
    ]


def deliver(srv, msgs, rcpt=ALICE):
    """Sends each message over SMTP; returns the Maildir files' contents
    (Return-Path and Received included): what a client must receive."""
    before = set(all_files(srv, rcpt))
    for m in msgs:
        r, qid = th.send_message(srv.port, "sender@ext.test", [rcpt], m,
                                 mail_params="BODY=8BITMIME")
        assert qid, r
    new = [p for p in all_files(srv, rcpt) if p not in before]
    assert len(new) == len(msgs), new
    contents = [th.read(p) for p in new]
    assert sorted(th.split_delivered(c)[2] for c in contents) == \
        sorted(msgs)
    return contents


def all_files(srv, addr):
    md = srv.maildir(addr)
    return th.maildir_files(md, "new") + th.maildir_files(md, "cur")


def maildir_state(srv, addr):
    """{content: (subdir, info)} for every message of addr's Maildir."""
    out = {}
    md = srv.maildir(addr)
    for sub in ("new", "cur"):
        for p in th.maildir_files(md, sub):
            name = os.path.basename(p)
            info = name.split(":", 1)[1] if ":" in name else None
            c = th.read(p)
            assert c not in out, "the same message twice: %s" % p
            out[c] = (sub, info)
    return out


def assert_kept_and_seen(srv, addr, contents):
    """Every message still there, once, in cur/ with the S flag."""
    state = maildir_state(srv, addr)
    assert sorted(state) == sorted(contents)
    for c in contents:
        assert state[c] == ("cur", "2,S"), (state[c], c[:200])


def assert_untouched(srv, addr, contents):
    """Every message still in new/, not marked: no session changed it."""
    state = maildir_state(srv, addr)
    assert sorted(state) == sorted(contents)
    assert all(v == ("new", None) for v in state.values()), state.values()


def wrong_ca(workdir):
    """A self-signed CA with the same name as tegami's but another key:
    what an attacker in the middle could present."""
    key = os.path.join(workdir, "wrong-ca.key")
    pem = os.path.join(workdir, "wrong-ca.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
         pem, "-days", "2", "-subj", "/CN=tegami Root CA " + th.HOSTNAME],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=30)
    return pem


def pop3_logins(srv):
    """(authenticated, auth failed) counts of POP3 sessions in the log."""
    text = srv.log_text()
    ok = len(re.findall(r"auth ok: user=<[^>]*> ip=\S+ service=pop3s?\b",
                        text))
    failed = len(re.findall(
        r"auth failed: user=<[^>]*> ip=\S+ service=pop3s?\b", text))
    return ok, failed


# ----------------------------------------------------------------------
# fetchmail
# ----------------------------------------------------------------------

class Fetchmail:
    """fetchmail with its own home (rc file, id file, pid file), handing
    each message to an MDA that stores it as it comes, one file each."""

    def __init__(self, srv, name, service, keep, password=None, ca=None,
                 user=ALICE):
        self.srv = srv
        self.home = os.path.join(srv.parent_dir, name)
        self.out = os.path.join(self.home, "out")
        os.makedirs(self.out)
        self.mda = os.path.join(self.home, "mda.sh")
        with open(self.mda, "w") as f:
            f.write('#!/bin/sh\nf=$(mktemp "%s/msg.XXXXXXXX") || exit 75\n'
                    'exec cat > "$f"\n' % self.out)
        os.chmod(self.mda, 0o755)
        self.rc = os.path.join(self.home, "fetchmailrc")
        implicit = service == "995"
        port = srv.base + (995 if implicit else 110)
        lines = [
            "set no syslog",
            # no Received line of its own: the bytes stay the server's
            "set invisible",
            # the address to connect to; the certificate must be for
            # the server's name (sslcommonname below)
            "poll %s via %s protocol pop3 port %d timeout 30" % (
                th.HOSTNAME, srv.listen, port),
            '  user "%s" there password "%s"' % (
                user, password or PW[user]),
            # 995: TLS first ("ssl"); 110: sslproto without "ssl" makes
            # STLS mandatory (fetchmail(1), --sslproto)
            "  %ssslproto \"TLS1.2+\"" % ("ssl " if implicit else ""),
            '  sslcertck sslcertfile "%s" sslcommonname "%s"' % (
                ca or srv.root_pem(), th.HOSTNAME),
            # the message as retrieved: no header rewriting, CRs kept
            '  mda "%s" no rewrite no stripcr' % self.mda,
            "  %s" % ("keep" if keep else "no keep"),
        ]
        fd = os.open(self.rc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")

    def run(self):
        env = dict(os.environ, HOME=self.home, FETCHMAILHOME=self.home)
        p = subprocess.run(
            [need("fetchmail", "fetchmail"), "-v", "-f", self.rc,
             "--idfile", os.path.join(self.home, "fetchids"), "--nosyslog"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=CLIENT_TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def received(self):
        """The messages the MDA got so far, and forget them."""
        out = []
        for n in sorted(os.listdir(self.out)):
            p = os.path.join(self.out, n)
            out.append(th.read(p))
            os.unlink(p)
        return out


@pytest.mark.parametrize("service", ["110", "995"])
def test_fetchmail_keep_then_only_new(srv, service):
    """keep: the exact bytes arrive, the messages stay (seen); the next
    run takes nothing (UIDL), then only a message delivered since."""
    contents = deliver(srv, messages(b"fk" + service.encode()))
    fm = Fetchmail(srv, "fm-keep-" + service, service, keep=True)
    rc, out = fm.run()
    assert rc == FETCHMAIL_OK, out
    assert sorted(fm.received()) == sorted(contents), out
    assert_kept_and_seen(srv, ALICE, contents)
    assert ("POP3> STLS" in out) == (service == "110"), out

    rc, out = fm.run()
    assert rc == FETCHMAIL_NOMAIL, out
    assert fm.received() == []

    more = deliver(srv, [th.make_message("fk-later" + service, 5000)])
    rc, out = fm.run()
    assert rc == FETCHMAIL_OK, out
    assert fm.received() == more
    assert_kept_and_seen(srv, ALICE, contents + more)
    assert pop3_logins(srv) == (3, 0)


@pytest.mark.parametrize("service", ["110", "995"])
def test_fetchmail_deletes_without_keep(srv, service):
    """Without keep: the exact bytes arrive and the Maildir is empty
    after the session; another user's mail is not touched."""
    contents = deliver(srv, messages(b"fd" + service.encode()))
    bobs = deliver(srv, messages(b"bob")[:1], rcpt=BOB)
    fm = Fetchmail(srv, "fm-del-" + service, service, keep=False)
    rc, out = fm.run()
    assert rc == FETCHMAIL_OK, out
    assert sorted(fm.received()) == sorted(contents), out
    assert maildir_state(srv, ALICE) == {}
    assert_untouched(srv, BOB, bobs)
    # fetchmail reads with RETR or TOP (not marked seen); both are fine
    # for mail that is deleted.
    srv.wait_log(r"logout user=<alice@local\.test> retrieved=\d+ "
                 r"seen=\d+ deleted=4 removed=4")
    rc, out = fm.run()
    assert rc == FETCHMAIL_NOMAIL, out


# ----------------------------------------------------------------------
# mpop
# ----------------------------------------------------------------------

class Mpop:
    """mpop from the command line only (--host: no configuration file),
    delivering into a Maildir of its own. mpop's maildir delivery stores
    messages with LF line ends (mpop(1)), so the bytes expected are the
    server's file with each CRLF made LF."""

    def __init__(self, srv, name, service, keep, only_new=False,
                 password=None, ca=None, user=ALICE, auth=None):
        self.srv = srv
        self.home = os.path.join(srv.parent_dir, name)
        self.md = os.path.join(self.home, "Maildir")
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.md, sub))
        pwfile = os.path.join(self.home, "password")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write((password or PW[user]) + "\n")
        implicit = service == "995"
        self.args = [
            need("mpop", "mpop"), "--host=" + srv.listen,
            "--port=%d" % (srv.base + (995 if implicit else 110)),
            "--timeout=30", "--user=" + user,
            "--passwordeval=cat " + pwfile,
            "--tls=on", "--tls-starttls=" + ("off" if implicit else "on"),
            "--tls-trust-file=" + (ca or srv.root_pem()),
            # connect by address, verify the certificate for the name
            "--tls-host-override=" + th.HOSTNAME,
            "--received-header=off",
            "--delivery=maildir," + self.md,
            "--uidls-file=" + os.path.join(self.home, "uidls"),
            "--keep=" + ("on" if keep else "off"),
            "--only-new=" + ("on" if only_new else "off"),
        ]
        # Without --auth mpop chooses, as its users' configurations do:
        # SASL PLAIN over TLS when the server offers it.
        if auth is not None:
            self.args.append("--auth=" + auth)

    def run(self):
        env = dict(os.environ, HOME=self.home)
        p = subprocess.run(self.args + ["--debug"], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=CLIENT_TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def received(self):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.md, sub)
            for n in sorted(os.listdir(d)):
                out.append(th.read(os.path.join(d, n)))
                os.unlink(os.path.join(d, n))
        return out


def lf(contents):
    for c in contents:
        assert b"\n" not in c.replace(b"\r\n", b""), "bare LF in a file"
    return [c.replace(b"\r\n", b"\n") for c in contents]


@pytest.mark.parametrize("service", ["110", "995"])
def test_mpop_keep_only_new(srv, service):
    """--keep --only-new: everything the first time, nothing the second
    (mpop compares UIDLs with its file), then only the new message."""
    contents = deliver(srv, messages(b"mk" + service.encode()))
    mp = Mpop(srv, "mpop-keep-" + service, service, keep=True,
              only_new=True)
    rc, out = mp.run()
    assert rc == 0, out
    assert sorted(mp.received()) == sorted(lf(contents)), out
    assert_kept_and_seen(srv, ALICE, contents)
    assert ("--> STLS" in out) == (service == "110"), out

    rc, out = mp.run()
    assert rc == 0, out
    assert mp.received() == []
    assert "RETR" not in out, out

    more = deliver(srv, [th.make_message("mk-later" + service, 5000)])
    rc, out = mp.run()
    assert rc == 0, out
    assert mp.received() == lf(more)
    assert_kept_and_seen(srv, ALICE, contents + more)
    assert pop3_logins(srv) == (3, 0)


@pytest.mark.parametrize("service", ["110", "995"])
def test_mpop_deletes_without_keep(srv, service):
    contents = deliver(srv, messages(b"md" + service.encode()))
    mp = Mpop(srv, "mpop-del-" + service, service, keep=False)
    rc, out = mp.run()
    assert rc == 0, out
    assert sorted(mp.received()) == sorted(lf(contents)), out
    assert maildir_state(srv, ALICE) == {}
    srv.wait_log(r"logout user=<alice@local\.test> retrieved=4 seen=\d+ "
                 r"deleted=4 removed=4")
    rc, out = mp.run()
    assert rc == 0, out
    assert mp.received() == []


@pytest.mark.parametrize("auth", ["user", "plain", "login"])
def test_mpop_each_login_method(srv, auth):
    """USER/PASS, AUTH PLAIN and AUTH LOGIN (RFC 5034) as mpop sends them
    (the SASL ones without an initial response)."""
    contents = deliver(srv, messages(b"ma-" + auth.encode())[:2])
    mp = Mpop(srv, "mpop-auth-" + auth, "995", keep=True, auth=auth)
    rc, out = mp.run()
    assert rc == 0, out
    assert sorted(mp.received()) == sorted(lf(contents)), out
    assert pop3_logins(srv) == (1, 0)


# ----------------------------------------------------------------------
# Refusals: wrong CA, wrong password
# ----------------------------------------------------------------------

@pytest.mark.parametrize("service", ["110", "995"])
@pytest.mark.parametrize("client", ["fetchmail", "mpop"])
def test_wrong_ca_refused(srv, client, service):
    """A root that did not sign the server's certificate: the client
    stops at the handshake, before any password; nothing is fetched and
    nothing changes in the Maildir."""
    contents = deliver(srv, messages(b"ca")[:2])
    ca = wrong_ca(srv.parent_dir)
    if client == "fetchmail":
        c = Fetchmail(srv, "fm-ca-" + service, service, keep=False, ca=ca)
        rc, out = c.run()
        assert rc == FETCHMAIL_SOCKET, out
        assert re.search(r"certificate verif|verify failed", out, re.I), out
    else:
        c = Mpop(srv, "mpop-ca-" + service, service, keep=False, ca=ca)
        rc, out = c.run()
        assert rc != 0, out
        assert re.search(r"TLS handshake failed|certificate", out, re.I), \
            out
        assert "--> AUTH" not in out, out
    assert c.received() == []
    # no password was sent (fetchmail logs "POP3> PASS *", mpop "--> ")
    assert "> PASS" not in out and "> USER" not in out, out
    assert pop3_logins(srv) == (0, 0)
    assert_untouched(srv, ALICE, contents)


@pytest.mark.parametrize("service", ["110", "995"])
@pytest.mark.parametrize("client", ["fetchmail", "mpop"])
def test_wrong_password(srv, client, service):
    """The client reports the failed login, tegami logs "auth failed" for
    the POP3 service, and nothing is fetched or changed."""
    contents = deliver(srv, messages(b"pw")[:2])
    if client == "fetchmail":
        c = Fetchmail(srv, "fm-pw-" + service, service, keep=False,
                      password="not-" + PW[ALICE])
        rc, out = c.run()
        assert rc == FETCHMAIL_AUTHFAIL, out
    else:
        c = Mpop(srv, "mpop-pw-" + service, service, keep=False,
                 password="not-" + PW[ALICE])
        rc, out = c.run()
        assert rc != 0, out
        assert "authentication failed" in out, out
    assert c.received() == []
    want = "pop3s" if service == "995" else "pop3"
    srv.wait_log(r"auth failed: user=<alice@local\.test> ip=127\.0\.0\.1 "
                 r"service=%s\b" % want)
    ok, failed = pop3_logins(srv)
    assert ok == 0 and failed >= 1, (ok, failed)
    assert "-ERR [AUTH]" in out, out
    assert_untouched(srv, ALICE, contents)
