# `tegami ca`: the private CA from the command line. Every subcommand and
# its refusals; the profile checked with `openssl x509 -text` and `openssl
# verify -x509_strict -purpose sslserver` (security-tests.md 40); the CRL
# with `openssl verify -crl_check`; and a Python TLS server loading
# tls/HOST.crt and .key, verified by a client trusting only the exported
# root (PEM and DER) with hostname checking on; the CRL distribution point
# (--crl-url) read back with `openssl x509 -text` and fetched over HTTP
# by `openssl verify -crl_download`.
import datetime
import http.server
import grp
import os
import pwd
import re
import shutil
import socket
import ssl
import stat
import subprocess
import threading

import pytest

import tegami_harness as th

HOST = th.HOSTNAME


@pytest.fixture
def state():
    parent = th.make_state_parent()
    d = os.path.join(parent, "state")
    # --no-ca: these tests make the CA themselves, step by step.
    th.run_tegami(["init", "--dir", d, "--domain", th.DOMAIN, "--hostname",
                   HOST, "--listen", th.LISTEN, "--port-base",
                   str(th.find_port_base()), "--no-ca"], check=True)
    yield d
    shutil.rmtree(parent, ignore_errors=True)


def ca(d, *args, input=None):
    return th.run_tegami(["ca"] + list(args),
                         conf=os.path.join(d, "tegami.conf"), input=input)


def ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p.stdout.decode()


def fails(p, code, pattern):
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert re.search(pattern, p.stderr.decode()), p.stderr
    return p.stderr.decode()


def openssl(*args, check=True):
    p = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=th.HANG)
    if check:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def text(path):
    return openssl("x509", "-in", path, "-noout", "-text").stdout.decode()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def tegami_gid():
    return pwd.getpwnam("tegami").pw_gid


def server_key_ok(path):
    """Server keys: 0640 with the group of the unprivileged user (the
    front reloads them on SIGHUP), never readable by others."""
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == tegami_gid()


def paths(d, host=HOST):
    return (os.path.join(d, "ca", "ca.crt"),
            os.path.join(d, "tls", host + ".crt"),
            os.path.join(d, "tls", host + ".key"))


def test_init_issue_profile_and_openssl_verify(state):
    out = ok(ca(state, "init"))
    assert "CN=tegami Root CA " + HOST in out
    out = ok(ca(state, "issue", HOST, "--san", "imap.local.test",
                "--san", "127.0.0.1", "--san", "IP:::1"))
    assert "names:       DNS:%s, DNS:imap.local.test, IP:127.0.0.1, " \
        "IP:::1" % HOST in out
    assert "readable by group %s (0640)" % grp.getgrgid(
        tegami_gid()).gr_name in out
    root, crt, key = paths(state)
    assert mode(os.path.join(state, "ca")) == 0o700
    assert mode(os.path.join(state, "ca", "ca.key")) == 0o600
    assert server_key_ok(key)
    assert mode(crt) == 0o644
    p = openssl("verify", "-x509_strict", "-purpose", "sslserver",
                "-CAfile", root, crt)
    assert p.stdout.decode().strip() == crt + ": OK"

    t = text(root)
    assert re.search(r"Basic Constraints: critical\s+CA:TRUE, pathlen:0", t)
    assert re.search(r"Key Usage: critical\s+Certificate Sign, CRL Sign\n", t)
    assert "Subject Key Identifier" in t
    assert "Signature Algorithm: ecdsa-with-SHA256" in t
    assert "NIST CURVE: P-256" in t

    t = text(crt)
    assert re.search(r"Basic Constraints: critical\s+CA:FALSE", t)
    assert re.search(r"Key Usage: critical\s+Digital Signature\n", t)
    assert re.search(r"Extended Key Usage: \s*TLS Web Server "
                     r"Authentication\n", t)
    assert "Authority Key Identifier" in t
    assert "Subject Key Identifier" in t
    assert ("DNS:%s, DNS:imap.local.test, IP Address:127.0.0.1, "
            "IP Address:0:0:0:0:0:0:0:1" % HOST) in t
    assert "Signature Algorithm: ecdsa-with-SHA256" in t
    m = re.search(r"Not Before: (.*)\n\s+Not After : (.*)\n", t)
    fmt = "%b %d %H:%M:%S %Y GMT"
    nb = datetime.datetime.strptime(re.sub(r"\s+", " ", m.group(1)), fmt)
    na = datetime.datetime.strptime(re.sub(r"\s+", " ", m.group(2)), fmt)
    assert na - nb == datetime.timedelta(days=397, hours=1)
    serial = openssl("x509", "-in", crt, "-noout",
                     "-serial").stdout.decode().strip().split("=")[1]
    assert len(serial) == 32 and int(serial[0], 16) < 8
    # The file is the chain a server sends: leaf, then root.
    with open(crt) as f:
        assert f.read().count("BEGIN CERTIFICATE") == 2
    # The index records it.
    with open(os.path.join(state, "ca", "index")) as f:
        fields = f.read().rstrip("\n").split("\t")
    assert fields[0] == "V" and fields[1] == serial
    assert fields[3] == "-" and fields[4] == HOST


def test_rsa_ca_and_leaf(state):
    ok(ca(state, "init", "--rsa", "3072", "--days", "100", "--name",
          "Example Org Root CA"))
    ok(ca(state, "issue", HOST, "--rsa", "2048"))
    root, crt, _ = paths(state)
    t = text(root)
    assert "Public-Key: (3072 bit)" in t
    assert "Subject: CN = Example Org Root CA" in t
    assert "sha256WithRSAEncryption" in t
    t = text(crt)
    assert "Public-Key: (2048 bit)" in t
    assert re.search(r"Key Usage: critical\s+Digital Signature, Key "
                     r"Encipherment", t)
    openssl("verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
            root, crt)


def test_refusals(state):
    fails(ca(state, "issue", HOST), 1, r"ca init")
    fails(ca(state, "list"), 1, r"ca init")
    fails(ca(state, "init", "--rsa", "1024"), 1, r"2048")
    fails(ca(state, "init", "--rsa", "3000"), 1, r"2048, 3072 or 4096")
    fails(ca(state, "init", "--rsa", "many"), 2, r"not a number")
    fails(ca(state, "init", "--days", "0"), 2, r"positive")
    assert not os.path.exists(os.path.join(state, "ca", "ca.key"))
    ok(ca(state, "init"))
    fails(ca(state, "init"), 1, r"already exists")
    fails(ca(state, "init", "--rsa", "4096"), 1, r"already exists")
    fails(ca(state, "issue", HOST, "--days", "398"), 1, r"--force-days")
    fails(ca(state, "issue", "a/b"), 1, r"not a valid DNS host name")
    fails(ca(state, "issue", "../../etc/x"), 1, r"not a valid")
    fails(ca(state, "issue", "1.2.3.4"), 1, r"")
    fails(ca(state, "issue", HOST, "--san", "IP:300.1.1.1"), 1,
          r"not an IPv4 or IPv6")
    fails(ca(state, "issue", HOST, "--san", "bad_name"), 1, r"not a valid")
    fails(ca(state, "issue", HOST, "--rsa", "1024"), 1, r"2048")
    assert not os.path.exists(os.path.join(state, "tls", HOST + ".crt"))
    ok(ca(state, "issue", HOST, "--days", "825", "--force-days"))
    fails(ca(state, "issue", HOST), 1, r"ca renew")
    fails(ca(state, "revoke", "DEADBEEF"), 1, r"no certificate")
    fails(ca(state, "revoke", "nothex"), 1, r"not a serial")
    fails(ca(state, "show", "none.local.test"), 1, r"none.local.test")
    fails(ca(state, "renew", "none.local.test"), 1, r"no certificate")
    # Usage errors.
    fails(ca(state), 2, r"usage")
    fails(ca(state, "frob"), 2, r"unknown subcommand")
    fails(ca(state, "issue"), 2, r"usage")
    fails(ca(state, "issue", HOST, "--bogus"), 2, r"--bogus")
    fails(ca(state, "issue", HOST, "--san"), 2, r"--san")
    fails(ca(state, "export"), 2, r"usage")
    fails(ca(state, "export", "--pem", "a", "--der", "b"), 2, r"usage")
    fails(ca(state, "revoke"), 2, r"usage")
    fails(ca(state, "list", "extra"), 2, r"extra")
    fails(ca(state, "init", "--san", "x"), 2, r"--san")
    fails(ca(state, "issue", HOST, "--crl-url"), 2, r"--crl-url")
    fails(ca(state, "init", "--no-crl-url"), 2, r"--no-crl-url")
    fails(ca(state, "csr", HOST, "--crl-url", "http://a.test/"), 2,
          r"--crl-url")
    fails(ca(state, "selfsign", HOST, "--crl-url", "http://a.test/"), 2,
          r"--crl-url")


def _serve_once(crt, key, ready, port_box, errors):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    ls = socket.socket()
    ls.bind((th.LISTEN, 0))
    ls.listen(8)
    ls.settimeout(th.HANG)
    port_box.append(ls.getsockname()[1])
    ready.set()
    try:
        while True:
            try:
                c, _ = ls.accept()
            except socket.timeout:
                return
            try:
                with ctx.wrap_socket(c, server_side=True) as s:
                    if s.recv(5) == b"quit\n":
                        return
                    s.sendall(b"hello\n")
            except (ssl.SSLError, OSError) as e:
                errors.append(e)
    finally:
        ls.close()


def _connect(port, ctx, name):
    with socket.create_connection((th.LISTEN, port), timeout=th.HANG) as c:
        with ctx.wrap_socket(c, server_hostname=name) as s:
            s.sendall(b"ping\n")
            return s.recv(6)


def test_python_tls_server_verifies_with_exported_root(state):
    ok(ca(state, "init"))
    ok(ca(state, "issue", HOST, "--san", "imap.local.test"))
    _, crt, key = paths(state)
    pem = os.path.join(state, "root.pem")
    der = os.path.join(state, "root.crt")
    ok(ca(state, "export", "--pem", pem))
    ok(ca(state, "export", "--der", der))
    with open(der, "rb") as f:
        der_bytes = f.read()
    assert der_bytes[0] == 0x30
    openssl("x509", "-inform", "DER", "-in", der, "-noout", "-subject")

    ready, port_box, errors = threading.Event(), [], []
    t = threading.Thread(target=_serve_once,
                         args=(crt, key, ready, port_box, errors))
    t.start()
    try:
        assert ready.wait(th.HANG)
        port = port_box[0]
        pem_ctx = ssl.create_default_context(cafile=pem)
        assert pem_ctx.check_hostname
        assert _connect(port, pem_ctx, HOST) == b"hello\n"
        assert _connect(port, pem_ctx, "imap.local.test") == b"hello\n"
        der_ctx = ssl.create_default_context(cadata=der_bytes)
        assert _connect(port, der_ctx, HOST) == b"hello\n"
        # A name not in the certificate fails hostname checking.
        with pytest.raises(ssl.SSLCertVerificationError,
                           match="Hostname mismatch|doesn't match"):
            _connect(port, pem_ctx, "pop.local.test")
        # The system trust store does not know the private root.
        with pytest.raises(ssl.SSLCertVerificationError):
            _connect(port, ssl.create_default_context(), HOST)
        # security-tests.md 40: s_client with the root and the right name
        # verifies; a wrong name must fail.
        for name, good in ((HOST, True), ("mail.test", False)):
            p = subprocess.run(
                ["openssl", "s_client", "-connect", "%s:%d" % (th.LISTEN,
                                                               port),
                 "-CAfile", pem, "-verify_return_error", "-verify_hostname",
                 name, "-servername", HOST],
                input=b"ping\n", stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=th.HANG)
            out = p.stdout.decode("utf-8", "replace")
            if good:
                # (its exit status reflects how the server closed)
                assert "Verify return code: 0 (ok)" in out, out
            else:
                assert p.returncode != 0, out
                assert "hostname mismatch" in out, out
    finally:
        try:
            with socket.create_connection((th.LISTEN, port_box[0]),
                                          timeout=th.HANG) as c:
                with ssl.create_default_context(cafile=pem).wrap_socket(
                        c, server_hostname=HOST) as s:
                    s.sendall(b"quit\n")
        except (OSError, IndexError):
            pass
        t.join(th.HANG)


def test_revoke_and_crl(state):
    ok(ca(state, "init"))
    out = ok(ca(state, "issue", HOST))
    serial = re.search(r"serial:\s+([0-9A-F]+)", out).group(1)
    root, crt, _ = paths(state)
    crl = os.path.join(state, "ca", "crl.pem")
    ok(ca(state, "crl"))
    assert mode(crl) == 0o644
    openssl("verify", "-crl_check", "-CRLfile", crl, "-CAfile", root, crt)
    # As clients show serials: lower case with colons.
    shown = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
    out = ok(ca(state, "revoke", shown.lower()))
    assert "ca crl" in out
    fails(ca(state, "revoke", serial), 1, r"already revoked")
    ok(ca(state, "crl"))
    p = openssl("verify", "-crl_check", "-CRLfile", crl, "-CAfile", root,
                crt, check=False)
    assert p.returncode != 0
    assert b"certificate revoked" in p.stdout + p.stderr
    t = openssl("crl", "-in", crl, "-noout", "-text").stdout.decode()
    assert "Version 2 (0x1)" in t
    assert re.search(r"X509v3 CRL Number: \s*2\n", t)
    assert "X509v3 Authority Key Identifier" in t
    assert "Serial Number: " + serial in t
    assert "ecdsa-with-SHA256" in t
    with open(os.path.join(state, "ca", "crlnumber")) as f:
        assert f.read() == "03\n"
    openssl("crl", "-in", crl, "-noout", "-CAfile", root)
    out = ok(ca(state, "list"))
    assert "status:      revoked" in out


def test_renew_keeps_names_and_old_stays_valid(state):
    ok(ca(state, "init"))
    ok(ca(state, "issue", HOST, "--san", "imap.local.test", "--days", "30"))
    root, crt, key = paths(state)
    old = os.path.join(state, "old.crt")
    shutil.copy(crt, old)
    with open(key) as f:
        old_key = f.read()
    out = ok(ca(state, "renew", HOST))
    assert "Renewed" in out
    assert "names:       DNS:%s, DNS:imap.local.test" % HOST in out
    with open(key) as f:
        assert f.read() != old_key
    assert server_key_ok(key)
    for c in (old, crt):
        openssl("verify", "-x509_strict", "-purpose", "sslserver",
                "-CAfile", root, c)
    with open(os.path.join(state, "ca", "index")) as f:
        lines = f.read().splitlines()
    assert len(lines) == 2 and all(ln.startswith("V\t") for ln in lines)


def test_passphrase(state):
    fails(ca(state, "init", "--passphrase-stdin", input="short\n"), 1,
          r"8 to")
    ok(ca(state, "init", "--passphrase-stdin",
          input="correct horse battery\n"))
    with open(os.path.join(state, "ca", "ca.key")) as f:
        assert f.readline() == "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    cakey = os.path.join(state, "ca", "ca.key")
    openssl("pkey", "-in", cakey, "-passin", "pass:correct horse battery",
            "-noout")
    assert openssl("pkey", "-in", cakey, "-passin", "pass:wrong horse",
                   "-noout", check=False).returncode != 0
    assert "aes-256-cbc" in openssl("asn1parse", "-in",
                                    cakey).stdout.decode()
    fails(ca(state, "issue", HOST), 1, r"--passphrase-stdin")
    fails(ca(state, "issue", HOST, "--passphrase-stdin",
             input="wrong horse battery\n"), 1, r"wrong passphrase")
    fails(ca(state, "issue", HOST, "--passphrase-stdin", input=""), 1,
          r"no passphrase")
    assert not os.path.exists(os.path.join(state, "tls", HOST + ".crt"))
    ok(ca(state, "issue", HOST, "--passphrase-stdin",
          input="correct horse battery\n"))
    fails(ca(state, "crl"), 1, r"passphrase")
    ok(ca(state, "crl", "--passphrase-stdin",
          input="correct horse battery\r\n"))
    ok(ca(state, "show"))
    ok(ca(state, "export", "--pem", os.path.join(state, "r.pem")))


def test_expired_ca_refuses_to_issue(state):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Old CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=20))
            .not_valid_after(now - datetime.timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                           critical=True)
            .sign(key, hashes.SHA256()))
    cadir = os.path.join(state, "ca")
    os.makedirs(cadir, mode=0o700)
    with open(os.path.join(cadir, "ca.crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(os.path.join(cadir, "ca.key"),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    fails(ca(state, "issue", HOST), 1, r"expired")
    assert not os.path.exists(os.path.join(state, "tls", HOST + ".crt"))
    assert "EXPIRED" in ok(ca(state, "show"))


def test_csr_for_a_public_ca(state):
    out = ok(ca(state, "csr", HOST, "--san", "imap.local.test"))
    assert "new key" in out
    csr = os.path.join(state, "tls", HOST + ".csr")
    key = os.path.join(state, "tls", HOST + ".key")
    assert server_key_ok(key)
    p = openssl("req", "-in", csr, "-noout", "-verify", "-text")
    t = p.stdout.decode()
    assert "Subject: CN = " + HOST in t
    assert "DNS:%s, DNS:imap.local.test" % HOST in t
    assert b"verify OK" in p.stdout + p.stderr
    # Once a certificate is installed, a CSR reuses its key.
    with open(key) as f:
        k1 = f.read()
    out = ok(ca(state, "csr", HOST))
    assert "existing key" in out
    with open(key) as f:
        assert f.read() == k1
    fails(ca(state, "csr", "bad/host"), 1, r"not a valid")


def test_selfsign(state):
    out = ok(ca(state, "selfsign", "self.local.test"))
    assert "SELF-SIGNED" in out
    assert "status:      SELF-SIGNED" in out
    crt = os.path.join(state, "tls", "self.local.test.crt")
    assert server_key_ok(os.path.join(state, "tls", "self.local.test.key"))
    openssl("verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
            crt, crt)
    t = text(crt)
    assert re.search(r"Basic Constraints: critical\s+CA:FALSE", t)
    assert "DNS:self.local.test" in t
    fails(ca(state, "selfsign", "self.local.test"), 1, r"exists")
    # A self-signed certificate is not in any CA's index.
    assert not os.path.exists(os.path.join(state, "ca", "index"))


def test_show_and_list(state):
    ok(ca(state, "init"))
    ok(ca(state, "issue", HOST, "--san", "imap.local.test"))
    ok(ca(state, "selfsign", "self.local.test"))
    root, crt, _ = paths(state)
    out = ok(ca(state, "show", HOST))
    fp = openssl("x509", "-in", crt, "-noout", "-fingerprint",
                 "-sha256").stdout.decode().strip().split("=")[1]
    assert "SHA-256:     " + fp + "\n" in out
    for field in ("subject:     CN=" + HOST, "issuer:      CN=tegami Root CA",
                  "names:       DNS:%s, DNS:imap.local.test" % HOST,
                  "serial:      ", "not before:  ", "not after:   ",
                  "key:         ECDSA P-256", "status:      valid"):
        assert field in out, field
    out = ok(ca(state, "show"))
    fp = openssl("x509", "-in", root, "-noout", "-fingerprint",
                 "-sha256").stdout.decode().strip().split("=")[1]
    assert "SHA-256:     " + fp in out
    fp = openssl("x509", "-in", root, "-noout", "-fingerprint",
                 "-sha1").stdout.decode().strip().split("=")[1]
    assert "SHA-1:       " + fp + "\n" in out
    assert "status:      CA root certificate" in out
    out = ok(ca(state, "list"))
    assert out.startswith("1 certificate issued by this CA\n")
    assert "file:        tls/%s.crt" % HOST in out
    assert "file:        tls/self.local.test.crt" in out
    assert "status:      SELF-SIGNED" in out


def test_concurrent_issues_keep_every_index_entry(state):
    ok(ca(state, "init"))
    conf = os.path.join(state, "tegami.conf")
    procs = [subprocess.Popen([th.TEGAMI_BIN, "-c", conf, "ca", "issue",
                               "h%d.local.test" % i],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
             for i in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    with open(os.path.join(state, "ca", "index")) as f:
        hosts = sorted(ln.split("\t")[4] for ln in f.read().splitlines())
    assert hosts == sorted("h%d.local.test" % i for i in range(8))


def test_keys_created_0600_with_o_excl(state):
    """The key is never readable by others, not even for an instant: the
    temp file is created with O_EXCL and mode 0600 in the same call, and
    opened to the group (0640) only after it was given the group and
    before the key is written."""
    ok(ca(state, "init"))
    log = os.path.join(state, "strace.log")
    # LeakSanitizer cannot run under ptrace (an ASan build of tegami).
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                           ":detect_leaks=0").lstrip(":")
    p = subprocess.run(["strace", "-f", "-e",
                        "trace=openat,rename,fchown,fchmod,write",
                        "-o", log, th.TEGAMI_BIN, "-c",
                        os.path.join(state, "tegami.conf"), "ca", "issue",
                        HOST], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    with open(log) as f:
        lines = f.read().splitlines()
    opens = [i for i, ln in enumerate(lines)
             if "openat(" in ln and ".key.tmp." in ln]
    assert len(opens) == 1, lines
    o = lines[opens[0]]
    assert "O_CREAT" in o and "O_EXCL" in o
    assert o.rstrip().split(")")[0].endswith("0600"), o
    fd = o.rstrip().split("= ")[-1]
    # strace pads with spaces: "PID  call(args)    = rc".
    calls = [re.sub(r"\s+", " ", ln.split(None, 1)[1])
             for ln in lines[opens[0] + 1:]]
    after = [c for c in calls if c.startswith(("fchown(%s," % fd,
                                               "fchmod(%s," % fd,
                                               "write(%s," % fd))]
    assert after[0] == "fchown(%s, -1, %d) = 0" % (fd, tegami_gid()), after
    assert after[1] == "fchmod(%s, 0640) = 0" % fd, after
    assert after[2].startswith("write(%s, \"-----BEGIN PRIVATE KEY" % fd), \
        after
    renames = [ln for ln in lines if "rename(" in ln and ".key" in ln]
    assert len(renames) == 1 and renames[0].rstrip().endswith("= 0")


CRL_URL = "http://crl.local.test/tegami-root.crl"


def crl_dp(path):
    """The URIs of the certificate's CRL Distribution Points as `openssl
    x509 -text` shows them; None without the extension."""
    t = text(path)
    m = re.search(r"X509v3 CRL Distribution Points: ?(critical)?\n"
                  r"((?:\s+(?:Full Name:|URI:.*)\n)+)", t)
    if "CRL Distribution Points" not in t:
        return None
    assert m and not m.group(1), t   # present, parsed, not critical
    return re.findall(r"URI:(.*)", m.group(2))


def test_crl_url_in_server_certificates(state):
    ok(ca(state, "init"))
    assert not os.path.exists(os.path.join(state, "ca", "crl-url"))
    out = ok(ca(state, "issue", HOST, "--crl-url", CRL_URL))
    assert "CRL:         %s\n" % CRL_URL in out
    root, crt, _ = paths(state)
    assert crl_dp(crt) == [CRL_URL]
    openssl("verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
            root, crt)
    # Without the flag (and no default): no extension at all.
    ok(ca(state, "issue", "plain.local.test"))
    plain = os.path.join(state, "tls", "plain.local.test.crt")
    assert crl_dp(plain) is None
    assert "CRL:" not in ok(ca(state, "show", "plain.local.test"))
    assert crl_dp(root) is None
    # A comma and a query survive (no config-string parsing).
    odd = "https://[::1]:8443/crl,v=2.crl?x=1&y=%41"
    ok(ca(state, "issue", "odd.local.test", "--crl-url", odd))
    assert crl_dp(os.path.join(state, "tls",
                               "odd.local.test.crt")) == [odd]
    # renew keeps the URL unless told otherwise.
    ok(ca(state, "renew", HOST))
    assert crl_dp(crt) == [CRL_URL]
    ok(ca(state, "renew", HOST, "--crl-url", "http://crl2.local.test/r.crl"))
    assert crl_dp(crt) == ["http://crl2.local.test/r.crl"]
    ok(ca(state, "renew", HOST, "--no-crl-url"))
    assert crl_dp(crt) is None
    ok(ca(state, "renew", HOST))
    assert crl_dp(crt) is None
    ok(ca(state, "renew", "plain.local.test", "--crl-url", CRL_URL))
    assert crl_dp(plain) == [CRL_URL]


@pytest.mark.parametrize("url,why", [
    ("ftp://crl.local.test/r.crl", r"http:// or https://"),
    ("crl.local.test/r.crl", r"http:// or https://"),
    ("ldap://ldap.local.test/cn=CA", r"http:// or https://"),
    ("", r"empty"),
    ("http://", r"no host"),
    ("http://crl.local.test/a b", r"printable ASCII"),
    ("http://crl.local.test/\u00e9", r"printable ASCII"),
    ("http://crl.local.test/\x1b[2J", r"printable ASCII"),
    ("http://crl.local.test/<script>", r"percent-encode"),
    ("http://crl.local.test/r.crl#x", r"fragment"),
    ("http://crl.local.test/%zz", r"hex digits"),
    ("http://admin:secret@crl.local.test/r.crl", r"user name or password"),
    ("http://crl.local.test:99999/r.crl", r"port"),
    ("http://bad_host/r.crl", r"DNS name or IP"),
    ("http://[::1/r.crl", r"IPv6"),
    pytest.param("http://h.local.test/" + "a" * 1005, r"longer than 1024",
                 id="1025-characters"),
])
def test_crl_url_refused(state, url, why):
    ok(ca(state, "init"))
    fails(ca(state, "issue", HOST, "--crl-url", url), 1, why)
    assert not os.path.exists(os.path.join(state, "tls", HOST + ".crt"))
    assert not os.path.exists(os.path.join(state, "tls", HOST + ".key"))
    ok(ca(state, "issue", HOST))
    fails(ca(state, "renew", HOST, "--crl-url", url), 1, why)
    fails(ca(state, "renew", HOST, "--crl-url", CRL_URL, "--no-crl-url"), 1,
          r"contradict")


def test_crl_url_at_the_limit(state):
    ok(ca(state, "init"))
    url = "http://h.local.test/" + "a" * (1024 - 20)
    assert len(url) == 1024
    ok(ca(state, "issue", HOST, "--crl-url", url))
    assert crl_dp(paths(state)[1]) == [url]
    fails(ca(state, "issue", "h2.local.test", "--crl-url", url + "a"), 1,
          r"longer than 1024")


def test_crl_url_default_from_ca_init(state):
    fails(ca(state, "init", "--crl-url", "gopher://x"), 1, r"http://")
    assert not os.path.exists(os.path.join(state, "ca", "ca.key"))
    out = ok(ca(state, "init", "--crl-url", CRL_URL))
    assert "name the CRL at " + CRL_URL in out
    assert "CRL default: " + CRL_URL in out
    with open(os.path.join(state, "ca", "crl-url")) as f:
        assert f.read() == CRL_URL + "\n"
    assert "CRL default: " + CRL_URL in ok(ca(state, "show"))
    ok(ca(state, "issue", HOST))
    assert crl_dp(paths(state)[1]) == [CRL_URL]
    ok(ca(state, "issue", "n.local.test", "--no-crl-url"))
    assert crl_dp(os.path.join(state, "tls", "n.local.test.crt")) is None
    ok(ca(state, "issue", "o.local.test", "--crl-url",
          "http://other.local.test/x.crl"))
    assert crl_dp(os.path.join(state, "tls", "o.local.test.crt")) == \
        ["http://other.local.test/x.crl"]
    # The root itself names no CRL.
    assert crl_dp(os.path.join(state, "ca", "ca.crt")) is None


class _CrlHandler(http.server.BaseHTTPRequestHandler):
    crl_path = None
    requests = []

    def do_GET(self):
        type(self).requests.append(self.path)
        with open(self.crl_path, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_crl_published_at_the_url_is_fetched_and_checked(state):
    """What docs/tls.md describes: ca/crl.der served at the URL; OpenSSL
    finds it through the certificate alone (-crl_download) and sees the
    revocation."""
    httpd = http.server.HTTPServer((th.LISTEN, 0), _CrlHandler)
    port = httpd.server_address[1]
    url = "http://%s:%d/tegami-root.crl" % (th.LISTEN, port)
    _CrlHandler.crl_path = os.path.join(state, "ca", "crl.der")
    _CrlHandler.requests = []
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        ok(ca(state, "init", "--crl-url", url))
        out = ok(ca(state, "issue", HOST))
        serial = re.search(r"serial:\s+([0-9A-F]+)", out).group(1)
        ok(ca(state, "crl"))
        root, crt, _ = paths(state)
        der = os.path.join(state, "ca", "crl.der")
        assert mode(der) == 0o644
        # The same CRL as crl.pem, in DER.
        a = openssl("crl", "-inform", "DER", "-in", der, "-noout",
                    "-text").stdout
        b = openssl("crl", "-in", os.path.join(state, "ca", "crl.pem"),
                    "-noout", "-text").stdout
        assert a == b
        openssl("verify", "-crl_download", "-crl_check", "-CAfile", root,
                crt)
        assert _CrlHandler.requests == ["/tegami-root.crl"]
        ok(ca(state, "revoke", serial))
        ok(ca(state, "crl"))
        p = openssl("verify", "-crl_download", "-crl_check", "-CAfile",
                    root, crt, check=False)
        assert p.returncode != 0
        assert b"certificate revoked" in p.stdout + p.stderr
        assert len(_CrlHandler.requests) == 2
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(th.HANG)
