# I/O errors while a message is written or synced (security-tests.md 48):
# the client gets 451 4.3.0, never 250; no partial file appears in any
# Maildir; the spool file is removed; the server goes on and accepts mail
# once the disk works again. The faults come from tests/faultinject, an
# LD_PRELOAD library in the style of unreliablefs's errinj_errno.
import os

import pytest

import tegami_harness as th
from tegami_harness import (SMTPConn, dot_stuff, expect, make_message,
                             send_message)

FAULT_LIB = os.path.join(os.path.dirname(th.TEGAMI_BIN),
                         "tests", "faultinject", "libfaultinject.so")


@pytest.fixture
def faulty_server(server_factory, monkeypatch):
    if not os.path.isfile(FAULT_LIB):
        pytest.fail("%s is missing: build with ninja" % FAULT_LIB,
                    pytrace=False)
    srv = server_factory(start=False)
    control = os.path.join(srv.parent_dir, "fault-control")
    with open(control, "w"):
        pass
    os.chmod(control, 0o644)     # the front runs as user tegami
    monkeypatch.setenv("LD_PRELOAD", FAULT_LIB)
    monkeypatch.setenv("TEGAMI_FAULT_CONTROL", control)
    # An ASan build wants its runtime first; the fault library is plain.
    opts = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (opts + ":" if opts else "") +
                       "verify_asan_link_order=0")
    srv.start()
    monkeypatch.delenv("LD_PRELOAD")

    def arm(what):
        with open(control, "w") as f:
            f.write(what)

    return srv, arm


def spool_files(srv):
    return os.listdir(os.path.join(srv.dir, "queue", "incoming"))


@pytest.mark.parametrize("fault", ["fsync", "write"])
def test_io_error_gives_451_and_nothing_half_delivered(faulty_server, fault):
    srv, arm = faulty_server
    token = b"IOERR-" + fault.encode()
    with SMTPConn(srv.port) as c:
        c.open_data(["alice@local.test", "bob@local.test"])
        # Break the disk in the middle of the message: a write of the
        # body (it is flushed in 64 KiB pieces) or its fsync fails.
        arm(fault)
        c.send(dot_stuff(make_message(token, size=200_000)))
        expect(c.reply(), "451 4.3.0")
        # The session goes on.
        expect(c.cmd("RSET"), "250 ")
    # Nothing delivered to either recipient, no spool file left behind.
    assert th.files_containing(srv.dir, token) == []
    assert spool_files(srv) == []
    assert srv.alive()

    # With a failing disk, DATA itself is refused (its header write fails).
    arm("write")
    r, qid = send_message(srv.port, "a@ext.test", ["alice@local.test"],
                          make_message(b"REFUSED"))
    expect(r["data"], "451 4.3.0")
    assert spool_files(srv) == []

    # The disk works again: the same server delivers.
    arm("")
    r, qid = send_message(srv.port, "a@ext.test", ["alice@local.test"],
                          make_message(b"AFTER-" + fault.encode()))
    expect(r["end"], "250 2.0.0")
    assert len(th.files_containing(srv.dir, b"AFTER-" + fault.encode())) == 1
