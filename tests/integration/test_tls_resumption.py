# TLS session resumption across front workers (issue 3: "session
# resumption (tickets) on"): every worker derives its ticket keys from one
# secret the parent made, so a ticket issued by one worker is accepted by
# any other. Checked on 465 (implicit TLS) and on STARTTLS (25, 587), for
# TLS 1.3 and TLS 1.2.
import socket
import ssl

import pytest

import tegami_harness as th

WORKERS = 4
CONNECTIONS = 12


@pytest.fixture(scope="module")
def multi_worker_server(request):
    srv = th.TegamiServer(extra_config=["workers = %d" % WORKERS])
    srv.init()
    srv.start()
    yield srv
    srv.stop()


def worker_pids_serving(srv):
    """The front pids that logged a session (which worker took it)."""
    pids = set()
    for line in srv.log_text().splitlines():
        if "connect from=" in line and "front[" in line:
            pids.add(line.split("front[", 1)[1].split("]", 1)[0])
    return pids


def read_reply(sock):
    data = b""
    while True:
        chunk = sock.recv(4096)
        assert chunk, "connection closed while reading a reply: %r" % data
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2 and len(lines[-2]) >= 4 and \
                lines[-2][3:4] == b" ":
            return data


def tls_connect(srv, port, ctx, session, starttls):
    raw = socket.create_connection((th.LISTEN, port), timeout=th.HANG)
    if starttls:
        read_reply(raw)
        raw.sendall(b"EHLO client.test\r\n")
        read_reply(raw)
        raw.sendall(b"STARTTLS\r\n")
        assert read_reply(raw).startswith(b"220")
    tls = ctx.wrap_socket(raw, server_hostname=th.HOSTNAME, session=session)
    # The banner (465) or an EHLO reply: TLS 1.3 tickets arrive after the
    # handshake, with the first data.
    if starttls:
        tls.sendall(b"EHLO client.test\r\n")
    read_reply(tls)
    reused, new_session = tls.session_reused, tls.session
    tls.sendall(b"QUIT\r\n")
    try:
        read_reply(tls)
    except (OSError, AssertionError):
        pass
    tls.close()
    return reused, new_session


@pytest.mark.parametrize("version", ["TLSv1_3", "TLSv1_2"])
@pytest.mark.parametrize("service", ["submissions", "submission", "smtp"])
def test_tickets_resume_on_every_worker(multi_worker_server, service,
                                        version):
    srv = multi_worker_server
    port = {"submissions": srv.submissions_port,
            "submission": srv.submission_port, "smtp": srv.port}[service]
    starttls = service != "submissions"
    ctx = srv.tls_context()
    ctx.maximum_version = getattr(ssl.TLSVersion, version)
    ctx.minimum_version = getattr(ssl.TLSVersion, version)
    before = worker_pids_serving(srv)
    reused, session = tls_connect(srv, port, ctx, None, starttls)
    assert not reused and session is not None
    resumed = 0
    for _ in range(CONNECTIONS):
        reused, newer = tls_connect(srv, port, ctx, session, starttls)
        resumed += reused
        session = newer or session
    # Several workers took these connections, and every one resumed.
    assert len(worker_pids_serving(srv)) >= 2, before
    assert resumed == CONNECTIONS, "%d of %d resumed" % (resumed,
                                                        CONNECTIONS)
