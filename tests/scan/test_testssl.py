# testssl.sh (Debian's testssl.sh package) against a running tegami whose
# certificate comes from its own CA with a CRL distribution point
# (`ca renew --crl-url`): no finding rated HIGH or CRITICAL, and only TLS
# 1.2 and 1.3 offered (RFC 8996, RFC 7525 / BCP 195). Port 25 with
# STARTTLS (RFC 3207) and port 465 with implicit TLS (RFC 8314). Each scan
# takes a few minutes and is bounded by SCAN_TIMEOUT. With TEGAMI_SCAN_OUT
# set to a directory, each scan's JSON and text output are copied there.
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

import tegami_harness as th
from conftest import SCAN_DURATIONS

TESTSSL = shutil.which("testssl") or "/usr/bin/testssl"
# About 4 minutes on an idle 2-core machine, 10 on a busy one.
SCAN_TIMEOUT = 900
CRL_URL = "http://crl.local.test/tegami-root.crl"
BAD = ("HIGH", "CRITICAL")
# testssl.sh's ids in the "protocols" section.
NOT_OFFERED = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
OFFERED = ("TLS1_2", "TLS1_3")


@pytest.fixture(scope="module")
def scanned_server():
    """tegami from `tegami init` (which makes the CA and the certificate
    for its host name), the certificate renewed with a CRL URL, then
    started; the exported root for testssl's --add-ca."""
    srv = th.TegamiServer()
    try:
        srv.init()
        p = srv.tegami("ca", "renew", th.HOSTNAME, "--crl-url", CRL_URL)
        assert p.returncode == 0, p.stderr
        srv.root = os.path.join(srv.parent_dir, "scan-root.pem")
        srv.tegami("ca", "export", "--pem", srv.root, check=True)
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    died = srv.proc is not None and srv.proc.poll() is not None
    srv.stop()
    reports = srv.sanitizer_reports()
    tail = srv.log_tail(60)
    srv.cleanup()
    assert not died, "tegami serve died during the scans\n" + tail
    assert not reports, "\n".join(reports[:20])


def listening(port):
    try:
        with socket.create_connection((th.LISTEN, port), timeout=2):
            return True
    except OSError:
        return False


def scan(srv, port, name, starttls, vulnerabilities=True):
    """Runs testssl.sh once; returns scanResult[0]. Without --severity, so
    that the JSON keeps the protocol findings (rated OK/INFO) as well; the
    HIGH/CRITICAL filter is applied here."""
    out = os.path.join(srv.parent_dir, "testssl-%s.json" % name)
    # Every check but client simulation (-c), which replays ~40 browser
    # handshakes and rates nothing: protocols, cipher categories, forward
    # secrecy, certificate and server defaults, server preference, and
    # the vulnerabilities.
    cmd = [TESTSSL, "--quiet", "--color", "0", "-p", "-s", "-f", "-S", "-P"]
    if vulnerabilities:
        cmd.append("-U")
    if starttls:
        cmd += ["-t", "smtp"]
    cmd += ["--add-ca", srv.root, "--ip", th.LISTEN, "-oJ", out,
            "%s:%d" % (th.HOSTNAME, port)]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=SCAN_TIMEOUT, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        pytest.fail("testssl.sh did not finish within %d s\n%s" % (
            SCAN_TIMEOUT, (e.output or b"")[-3000:].decode("utf-8",
                                                          "replace")))
    SCAN_DURATIONS.append((name, time.monotonic() - t0))
    text = p.stdout.decode("utf-8", "replace")
    keep = os.environ.get("TEGAMI_SCAN_OUT")
    if keep and os.path.exists(out):
        os.makedirs(keep, exist_ok=True)
        shutil.copy(out, keep)
        with open(os.path.join(keep, "testssl-%s.txt" % name), "w") as f:
            f.write(text)
    assert os.path.exists(out), "no JSON from testssl.sh (exit %d)\n%s" % (
        p.returncode, text[-3000:])
    with open(out) as f:
        doc = json.load(f)
    # testssl.sh's exit status counts findings and is not a verdict.
    assert doc.get("scanResult"), text[-3000:]
    return doc["scanResult"][0], text


def findings(result):
    """Every finding of every section, with its section."""
    for section, items in result.items():
        if isinstance(items, list):
            for f in items:
                if isinstance(f, dict) and "severity" in f:
                    yield section, f


def check(result, text):
    fatal = [(s, f) for s, f in findings(result)
             if f["severity"] == "FATAL" or s == "scanProblem"]
    assert not fatal, "testssl.sh could not scan: %r\n%s" % (fatal,
                                                            text[-3000:])
    bad = [(s, f["id"], f["severity"], f["finding"])
           for s, f in findings(result) if f["severity"] in BAD]
    assert not bad, "findings rated HIGH or CRITICAL:\n" + "\n".join(
        "  %s %s %s: %s" % b for b in bad)
    protocols = {f["id"]: f["finding"] for f in result.get("protocols", [])}
    for p in NOT_OFFERED:
        assert protocols.get(p, "").startswith("not offered"), (p, protocols)
    for p in OFFERED:
        assert protocols.get(p, "").startswith("offered"), (p, protocols)
    # The scan saw the certificate issued with the CRL URL (so the
    # absence of "Neither CRL nor OCSP URI provided" means something).
    dp = [f["finding"] for s, f in findings(result)
          if f["id"] == "cert_crlDistributionPoints"]
    assert dp and CRL_URL in dp[0], dp


def test_smtp_starttls_port_25(scanned_server):
    """Protocols, ciphers, certificate and server preferences on 25. The
    vulnerability checks (-U) probe the TLS library's settings, which are
    the same SSL_CTX on every port: they run once, on 465, below. (Two
    testssl.sh runs at once were tried: their outputs got mixed up.)"""
    result, text = scan(scanned_server, scanned_server.port, "smtp-25",
                        starttls=True, vulnerabilities=False)
    check(result, text)


def test_submissions_implicit_tls_port_465(scanned_server):
    port = scanned_server.base + 465
    # Fails at once, not after a scan timing out, while 465 does not
    # exist yet.
    assert listening(port), "nothing listens on port_base+465 (%d): the " \
        "submissions service (RFC 8314) is not running" % port
    result, text = scan(scanned_server, port, "submissions-465",
                        starttls=False)
    check(result, text)
