# STARTTLS on the SMTP service (RFC 3207; security-tests.md 1, 3, 36, 37).
# Certificates come from a throw-away CA made with the openssl command in
# the test, so that these tests stand apart from `tegami ca`.
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import tegami_harness as th
from tegami_harness import expect

HOST = th.HOSTNAME


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca_and_leaf(workdir, tls_dir, host=HOST, name=None):
    """A CA (ca.pem in workdir) and tls_dir/NAME.{crt,key} for host."""
    name = name or host
    os.makedirs(tls_dir, exist_ok=True)
    if not os.path.exists(os.path.join(workdir, "ca.pem")):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
                "-out", "ca.pem", "-days", "30", "-subj", "/CN=Test Root",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                cwd=workdir)
    ext = os.path.join(workdir, "leaf.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n" % host)
    key = os.path.join(tls_dir, name + ".key")
    crt = os.path.join(tls_dir, name + ".crt")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", "leaf.csr", "-subj",
            "/CN=" + host, cwd=workdir)
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey",
            "ca.key", "-CAcreateserial", "-days", "30", "-extfile", ext,
            "-out", crt, cwd=workdir)
    os.chmod(key, 0o600)
    return os.path.join(workdir, "ca.pem")


@pytest.fixture
def tls_server(server_factory):
    srv = server_factory(start=False)
    ca = make_ca_and_leaf(srv.parent_dir, os.path.join(srv.dir, "tls"))
    srv.start()
    srv.ca = ca
    return srv


def client_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx


def starttls(c, ca):
    """STARTTLS on an SMTPConn after EHLO; returns the TLS socket."""
    expect(c.cmd("STARTTLS"), "220 2.0.0")
    c.sock = client_context(ca).wrap_socket(c.sock, server_hostname=HOST)
    return c.sock


def test_starttls_offered_only_with_a_certificate(server_factory, tls_server):
    server = server_factory(start=False)
    shutil.rmtree(os.path.join(server.dir, "tls"))     # made by init
    server.start()
    assert "TLS off (no certificate" in server.log_text()
    with server.connect() as c:
        assert not any(l.endswith("STARTTLS") for l in c.ehlo().lines)
        expect(c.cmd("STARTTLS"), "502 5.5.1")
    with tls_server.connect() as c:
        lines = c.ehlo().lines
        assert any(l.endswith("STARTTLS") for l in lines)


def test_smtplib_starttls_verified_and_received_header(tls_server):
    import smtplib
    s = smtplib.SMTP(th.LISTEN, tls_server.port, timeout=th.HANG)
    try:
        s._host = HOST          # the name to verify, not the IP
        s.ehlo()
        s.starttls(context=client_context(tls_server.ca))
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        code, text = s.ehlo()
        assert code == 250 and b"STARTTLS" not in text
        s.sendmail("a@ext.test", ["alice@local.test"],
                   b"Subject: over tls\r\n\r\nTLS-BODY\r\n")
    finally:
        s.quit()
    (path,) = th.files_containing(tls_server.dir, b"TLS-BODY")
    head = th.read(path).split(b"Subject:")[0]
    assert b"with ESMTPS id" in head
    assert b"(using TLSv1." in head


def test_system_trust_store_does_not_trust_the_private_ca(tls_server):
    with tls_server.connect() as c:
        c.ehlo()
        expect(c.cmd("STARTTLS"), "220 ")
        ctx = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(c.sock, server_hostname=HOST)


def test_plaintext_injection_is_discarded(tls_server):
    # security-tests.md 1 / CVE-2011-0411: "STARTTLS\r\nRSET\r\n" in one
    # segment; the RSET must never be answered after the handshake.
    with tls_server.connect() as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\n")
        expect(c.reply(), "220 2.0.0")
        t = client_context(tls_server.ca).wrap_socket(
            c.sock, server_hostname=HOST)
        t.settimeout(3)
        with pytest.raises((socket.timeout, TimeoutError)):
            data = t.recv(1000)
            raise AssertionError("unsolicited reply after TLS: %r" % data)
        # RFC 3207 4.2: the session starts over; EHLO is needed again.
        t.sendall(b"MAIL FROM:<a@ext.test>\r\n")
        assert t.recv(1000).startswith(b"503 5.5.1")
        t.sendall(b"EHLO again.test\r\n")
        time.sleep(0.2)
        assert b"STARTTLS" not in t.recv(4000)
        t.sendall(b"QUIT\r\n")
        assert t.recv(1000).startswith(b"221 ")


def test_starttls_misuse(tls_server):
    # security-tests.md 3.
    with tls_server.connect() as c:
        expect(c.cmd("STARTTLS"), "503 5.5.1")       # before EHLO
        c.ehlo()
        expect(c.cmd("STARTTLS x"), "501 5.5.4")
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        expect(c.cmd("STARTTLS"), "503 5.5.1")       # in a transaction
        expect(c.cmd("RSET"), "250 ")
        starttls(c, tls_server.ca)
        c.ehlo()
        expect(c.cmd("STARTTLS"), "503 5.5.1")       # twice
        # Port 25 never requires TLS: mail without it is still accepted.
    r, qid = th.send_message(tls_server.port, "a@ext.test",
                             ["alice@local.test"],
                             th.make_message(b"PLAIN-ON-25"))
    expect(r["end"], "250 2.0.0")


def s_client(port, *args, input_=b"QUIT\r\n"):
    return subprocess.run(
        ["openssl", "s_client", "-connect", "%s:%d" % (th.LISTEN, port),
         "-starttls", "smtp", *args],
        input=input_, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=th.HANG)


def test_openssl_s_client_versions_and_ciphers(tls_server):
    # security-tests.md 36, 37: TLS 1.2 and 1.3 only; no non-ECDHE or
    # non-AEAD cipher in TLS 1.2.
    ca = tls_server.ca
    ok = s_client(tls_server.port, "-CAfile", ca, "-verify_return_error",
                  "-verify_hostname", HOST)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert b"Verify return code: 0 (ok)" in ok.stdout
    wrong = s_client(tls_server.port, "-CAfile", ca, "-verify_return_error",
                     "-verify_hostname", "wrong.local.test")
    assert wrong.returncode != 0
    for v in ("-tls1_2", "-tls1_3"):
        r = s_client(tls_server.port, v, "-CAfile", ca)
        assert r.returncode == 0, (v, r.stdout[-2000:])
    for v in ("-tls1", "-tls1_1"):
        r = s_client(tls_server.port, v, "-cipher", "DEFAULT@SECLEVEL=0")
        assert r.returncode != 0, v
    for cipher in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"):
        r = s_client(tls_server.port, "-tls1_2", "-cipher", cipher)
        assert r.returncode != 0, cipher
    r = s_client(tls_server.port, "-tls1_2", "-cipher",
                 "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert r.returncode == 0, r.stdout[-2000:]
    assert tls_server.alive()


def test_renegotiation_refused(tls_server):
    # security-tests.md 39: client-initiated renegotiation ("R" in
    # s_client) is refused; the server lives on.
    r = s_client(tls_server.port, "-tls1_2", input_=b"R\n")
    assert b"RENEGOTIATING" in r.stdout or r.returncode != 0
    assert tls_server.alive()
    with tls_server.connect() as c:
        c.ehlo()


def test_sni_odd_names_get_the_default_certificate(tls_server):
    # security-tests.md 39: an SNI ending in a backslash, and one of 255
    # bytes: a normal handshake (or an alert), never a crash.
    for sni in ("x\\", "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." +
                "d" * 61):
        r = s_client(tls_server.port, "-servername", sni)
        assert r.returncode == 0, (sni, r.stdout[-1000:])
    assert tls_server.alive()


def test_broken_certificate_is_a_startup_error(server_factory):
    srv = server_factory(start=False)
    tls_dir = os.path.join(srv.dir, "tls")
    make_ca_and_leaf(srv.parent_dir, tls_dir)
    # The key of another certificate: a mismatch.
    make_ca_and_leaf(srv.parent_dir, tls_dir, name="other.local.test")
    os.replace(os.path.join(tls_dir, "other.local.test.key"),
               os.path.join(tls_dir, HOST + ".key"))
    os.unlink(os.path.join(tls_dir, "other.local.test.crt"))
    srv.start(wait=False)
    srv.intentionally_dead = True
    assert srv.wait_exit(th.HANG) not in (0, None)
    assert "does not match" in srv.log_text()
    # A certificate without its key.
    os.unlink(os.path.join(tls_dir, HOST + ".key"))
    srv.start(wait=False)
    srv.intentionally_dead = True
    assert srv.wait_exit(th.HANG) not in (0, None)
    assert "without its key" in srv.log_text()


def test_close_notify_mid_bdat_never_falls_back_to_cleartext(tls_server):
    # security-tests.md 6 (Exim's "Dead.Letter"): inside TLS, BDAT 100 with
    # 10 bytes, then close_notify, then one cleartext byte. The connection
    # ends; the cleartext byte is never taken as data or a command.
    with tls_server.connect() as c:
        c.ehlo()
        t = starttls(c, tls_server.ca)
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 ")
        t.sendall(b"BDAT 100\r\nDEADLETTER")
        raw = t.unwrap()          # sends close_notify
        try:
            raw.sendall(b"X")
        except OSError:
            pass
        raw.settimeout(th.HANG)
        data = b""
        try:
            while True:
                b = raw.recv(4096)
                if not b:
                    break
                data += b
        except (ConnectionResetError, socket.timeout, TimeoutError):
            pass
        # Whatever comes back is TLS (alert or close_notify), never an
        # SMTP reply in cleartext.
        assert not data.startswith((b"2", b"3", b"4", b"5")), data
    assert th.files_containing(tls_server.dir, b"DEADLETTER") == []
    assert tls_server.alive()
    with tls_server.connect() as c:
        c.ehlo()


def peer_serial(port, ca):
    with th.SMTPConn(port) as c:
        c.ehlo()
        t = starttls(c, ca)
        return t.getpeercert()["serialNumber"]


def test_sighup_reloads_certificates_without_dropping_connections(
        tls_server):
    import grp
    import signal
    tls_dir = os.path.join(tls_server.dir, "tls")
    before = peer_serial(tls_server.port, tls_server.ca)
    # An open TLS session from before the reload.
    old = tls_server.connect()
    old.ehlo()
    starttls(old, tls_server.ca)
    old.ehlo()

    # Keys readable only by root: the unprivileged front cannot reload
    # them, says so, and keeps serving the old certificate.
    make_ca_and_leaf(tls_server.parent_dir, tls_dir)
    tls_server.signal(signal.SIGHUP)
    tls_server.wait_log(r"keeping the old certificates")
    assert peer_serial(tls_server.port, tls_server.ca) == before

    # Readable by the front's group: reloaded.
    key = os.path.join(tls_dir, HOST + ".key")
    os.chown(key, 0, grp.getgrnam("tegami").gr_gid)
    os.chmod(key, 0o640)
    tls_server.signal(signal.SIGHUP)
    tls_server.wait_log(r"reload: TLS on")
    deadline = time.monotonic() + th.HANG
    while peer_serial(tls_server.port, tls_server.ca) == before:
        assert time.monotonic() < deadline, "new certificate not served"
        time.sleep(0.1)
    # The session opened before the reload goes on.
    expect(old.cmd("MAIL FROM:<a@ext.test>"), "250 ")
    expect(old.cmd("QUIT"), "221 ")
    old.close()
