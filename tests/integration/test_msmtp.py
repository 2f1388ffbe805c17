# msmtp, a real submission client, against tegami: STARTTLS on 587 and
# implicit TLS on 465 (RFC 8314), the certificate verified against the
# root from `tegami ca export` only, SMTP AUTH PLAIN and LOGIN (RFC 4954);
# the message lands in the recipient's Maildir with one Message-ID and one
# Date (RFC 6409 8) and "with ESMTPSA" (RFC 3848).
import os
import re
import shutil
import subprocess
import uuid

import pytest

import tegami_harness as th

ALICE = "alice@local.test"
BOB = "bob@local.test"
PW = th.DEFAULT_USERS

SERVER_CONFIG = [
    "auth_failure_delay_ms = 10",
    "auth_failure_delay_max_ms = 20",
    "auth_ip_failure_limit = 1000",
    "auth_account_failure_limit = 1000",
]


def msmtp_bin():
    path = shutil.which("msmtp")
    assert path, ("msmtp is not installed: the Debian package msmtp must "
                  "be in scripts/install-deps test")
    return path


def write_rc(srv, name, service, auth, password=None, host=th.HOSTNAME):
    """A msmtprc for one account; mode 0600 as msmtp wants for a file
    holding a password."""
    port = srv.submission_port if service == "587" else srv.submissions_port
    path = os.path.join(srv.parent_dir, name)
    lines = [
        "defaults",
        "logfile %s" % os.path.join(srv.parent_dir, name + ".log"),
        "timeout 10",
        "account default",
        "host %s" % th.LISTEN,
        "port %d" % port,
        "domain client.test",
        "tls on",
        "tls_starttls %s" % ("on" if service == "587" else "off"),
        "tls_trust_file %s" % srv.root_pem(),
        # connect by address, verify the certificate for the server's name
        "tls_host_override %s" % host,
        "auth %s" % auth,
        "user %s" % ALICE,
        "password %s" % (password or PW[ALICE]),
        "from %s" % ALICE,
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def msmtp(rc, rcpts, message):
    return subprocess.run([msmtp_bin(), "-C", rc, "--"] + list(rcpts),
                          input=message, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


def message(tok):
    # no Message-ID: msmtp may add a Date, tegami adds what is missing
    return ("From: Alice <alice@local.test>\nTo: bob@local.test\n"
            "Subject: %s\n\nsent with msmtp %s\n" % (tok, tok)).encode()


def delivered(srv, addr, tok):
    files = [p for p in srv.new_files(addr) if tok.encode() in th.read(p)]
    assert len(files) == 1, "%s: %d files with %s" % (addr, len(files), tok)
    return th.read(files[0])


def check_delivery(srv, tok):
    rp, received, msg = th.split_delivered(delivered(srv, BOB, tok))
    assert rp == b"Return-Path: <alice@local.test>\r\n"
    assert b"with ESMTPSA" in re.sub(rb"\r\n[ \t]", b" ", received), \
        received
    head, _, body = msg.partition(b"\r\n\r\n")
    names = [f.split(b":", 1)[0].lower()
             for f in re.split(rb"\r\n(?![ \t])", head)]
    assert names.count(b"message-id") == 1, names
    assert names.count(b"date") == 1, names
    assert names.count(b"subject") == 1, names
    assert body == ("sent with msmtp %s\r\n" % tok).encode()
    assert PW[ALICE].encode() not in msg


@pytest.mark.parametrize("auth", ["plain", "login"])
def test_msmtp_starttls_587(mserver, auth):
    tok = "T" + uuid.uuid4().hex
    rc = write_rc(mserver, "rc587" + auth, "587", auth)
    p = msmtp(rc, [BOB], message(tok))
    assert p.returncode == 0, (p.stdout, p.stderr)
    check_delivery(mserver, tok)


@pytest.mark.parametrize("auth", ["plain", "login"])
def test_msmtp_implicit_tls_465(mserver, auth):
    tok = "T" + uuid.uuid4().hex
    rc = write_rc(mserver, "rc465" + auth, "465", auth)
    p = msmtp(rc, [BOB], message(tok))
    assert p.returncode == 0, (p.stdout, p.stderr)
    check_delivery(mserver, tok)


@pytest.mark.parametrize("service", ["587", "465"])
def test_msmtp_refusals(mserver, service):
    """A wrong password, and a certificate checked for another name: msmtp
    fails and nothing is delivered."""
    tok = "T" + uuid.uuid4().hex
    rc = write_rc(mserver, "rcbad" + service, service, "plain",
                  password="not-the-password")
    p = msmtp(rc, [BOB], message(tok))
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert b"535" in p.stderr, p.stderr
    rc = write_rc(mserver, "rcname" + service, service, "plain",
                  host="wrong.local.test")
    p = msmtp(rc, [BOB], message(tok))
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert th.files_containing(mserver.dir, tok) == []
