# TLS on every SMTP service (issue 3; security-tests.md 2, 36-39): port 25
# and 587 with STARTTLS, 465 with TLS from the first byte, all with the
# certificate `tegami init` issued from its own CA. A client that trusts
# only the exported root (PEM or DER) verifies each one by name; the
# system trust store does not; TLS 1.0/1.1, weak ciphers and
# renegotiation are refused everywhere.
import os
import socket
import ssl
import subprocess

import pytest

import tegami_harness as th

SERVICES = ("smtp", "submission", "submissions")


def port_of(srv, service):
    return {"smtp": srv.port, "submission": srv.submission_port,
            "submissions": srv.submissions_port}[service]


def read_reply(sock):
    data = b""
    while not (data.endswith(b"\r\n") and
               data.split(b"\r\n")[-2][3:4] == b" "):
        chunk = sock.recv(4096)
        assert chunk, "closed while reading a reply: %r" % data
        data += chunk
    return data


def tls_session(srv, service, ctx):
    """A verified TLS connection to the service, after the banner (and
    STARTTLS where needed); returns the TLS socket."""
    raw = socket.create_connection((th.LISTEN, port_of(srv, service)),
                                   timeout=th.HANG)
    if service != "submissions":
        assert read_reply(raw).startswith(b"220 ")
        raw.sendall(b"EHLO client.test\r\n")
        assert b"STARTTLS" in read_reply(raw)
        raw.sendall(b"STARTTLS\r\n")
        assert read_reply(raw).startswith(b"220 ")
    try:
        tls = ctx.wrap_socket(raw, server_hostname=th.HOSTNAME)
    except BaseException:
        raw.close()
        raise
    if service == "submissions":
        assert read_reply(tls).startswith(b"220 ")
    return tls


@pytest.fixture(scope="module")
def roots(mserver):
    pem = os.path.join(mserver.parent_dir, "services-root.pem")
    der = os.path.join(mserver.parent_dir, "services-root.crt")
    mserver.tegami("ca", "export", "--pem", pem, check=True)
    mserver.tegami("ca", "export", "--der", der, check=True)
    return pem, der


@pytest.mark.parametrize("form", ["pem", "der"])
@pytest.mark.parametrize("service", SERVICES)
def test_exported_root_verifies_every_service(mserver, roots, service, form):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if form == "pem":
        ctx.load_verify_locations(cafile=roots[0])
    else:
        with open(roots[1], "rb") as f:
            ctx.load_verify_locations(cadata=f.read())
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    tls = tls_session(mserver, service, ctx)
    try:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        names = [v for k, v in tls.getpeercert()["subjectAltName"]]
        assert th.HOSTNAME in names
        tls.sendall(b"EHLO client.test\r\n")
        caps = read_reply(tls)
        assert b"STARTTLS" not in caps
        assert (b"AUTH PLAIN LOGIN" in caps) == (service != "smtp")
    finally:
        tls.close()


@pytest.mark.parametrize("service", SERVICES)
def test_system_trust_store_does_not_verify(mserver, service):
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_session(mserver, service, ssl.create_default_context())


@pytest.mark.parametrize("service", SERVICES)
def test_wrong_name_does_not_verify(mserver, roots, service):
    ctx = th.client_tls_context(roots[0])
    raw_name = th.HOSTNAME
    try:
        th.HOSTNAME = "wrong." + raw_name
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_session(mserver, service, ctx)
    finally:
        th.HOSTNAME = raw_name


def s_client(srv, service, *args, input_=b"QUIT\r\n"):
    cmd = ["openssl", "s_client", "-connect",
           "%s:%d" % (th.LISTEN, port_of(srv, service))]
    if service != "submissions":
        cmd += ["-starttls", "smtp"]
    return subprocess.run(cmd + list(args), input=input_,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=th.HANG)


@pytest.mark.parametrize("service", ["submission", "submissions"])
def test_versions_and_ciphers_on_submission(mserver, roots, service):
    """security-tests.md 36, 37 on 587 and 465 (25: test_starttls.py)."""
    ok = s_client(mserver, service, "-CAfile", roots[0],
                  "-verify_return_error", "-verify_hostname", th.HOSTNAME)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert b"Verify return code: 0 (ok)" in ok.stdout
    for v in ("-tls1_2", "-tls1_3"):
        r = s_client(mserver, service, v, "-CAfile", roots[0])
        assert r.returncode == 0, (v, r.stdout[-2000:])
    for v in ("-tls1", "-tls1_1"):
        r = s_client(mserver, service, v, "-cipher", "DEFAULT@SECLEVEL=0")
        assert r.returncode != 0, v
    for cipher in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA",
                   "ECDHE-ECDSA-AES128-SHA"):
        r = s_client(mserver, service, "-tls1_2", "-cipher", cipher)
        assert r.returncode != 0, cipher
    assert mserver.alive()


@pytest.mark.parametrize("service", ["submission", "submissions"])
def test_renegotiation_refused_on_submission(mserver, service):
    """security-tests.md 39 on 587 and 465: the client's renegotiation
    ("R" in s_client) gets the no_renegotiation alert, nothing sent after
    it is answered, and the server lives on."""
    r = s_client(mserver, service, "-tls1_2",
                 input_=b"R\nEHLO after.test\r\n")
    out = r.stdout
    assert b"RENEGOTIATING" in out, out[-2000:]
    after = out.split(b"RENEGOTIATING", 1)[1]
    assert b"no renegotiation" in after, out[-2000:]
    assert b"250" not in after
    assert mserver.alive()
