# POP3's slow disk work off the front's event loop (issue 6): the listing
# at login and the renames and removals at QUIT run on the front's disk
# threads, so that a mailbox of tens of thousands of messages does not
# hold the other sessions of the same front; a connection lost during
# that work neither crashes the front nor leaves the mailbox locked, and
# a QUIT that arrived is carried out (RFC 1939 6: QUIT starts UPDATE).
# Helpers are in test_pop3.py.
import os
import select
import socket

import pytest

import tegami_harness as th
import test_pop3 as p3
from test_pop3 import AUTH_CONFIG, POP3Conn, expect

ALICE = "alice@local.test"
MANY = 40000        # messages: QUIT's work takes far longer than a banner


@pytest.fixture
def one_front(server_factory):
    # one front process: the POP3 session and the SMTP one share its loop
    return server_factory(extra_config=AUTH_CONFIG + [
        "workers = 1", "pop3_plaintext_loopback = yes"])


def fill(srv, addr, n, prefix, sized=True):
    """n small messages straight into new/, owned like the mailbox; with
    sized, names with ,S= and ,W= as tegami writes them, else names
    without sizes (as other programs write them: the listing then reads
    every file, which makes it take a while)."""
    p3.ensure_maildir(srv, addr)
    uid, gid = p3.mailbox_owner(srv, addr)
    new = os.path.join(srv.maildir(addr), "new")
    body = b"Subject: x\r\n\r\nx\r\n"
    sizes = ",S=%d,W=%d" % (len(body), len(body)) if sized else ""
    for i in range(n):
        path = os.path.join(new, "1700000000.M%dP%s%dQ1.fill.test%s"
                            % (i, prefix, os.getpid(), sizes))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, body)
        os.fchown(fd, uid, gid)
        os.close(fd)


def count_new(srv, addr):
    return len(os.listdir(os.path.join(srv.maildir(addr), "new")))


def delete_all(c, n):
    """DELE 1..n pipelined, every reply checked."""
    c.send(b"".join(b"DELE %d\r\n" % i for i in range(1, n + 1)))
    for _ in range(n):
        expect(c.resp(), "+OK")


def plain_login(srv, addr):
    c = POP3Conn(srv)
    c.login(addr)
    return c


def test_quit_work_does_not_hold_other_sessions(one_front):
    """While QUIT removes 40,000 messages, an SMTP client of the same
    front gets its banner: the banner comes before QUIT's +OK."""
    srv = one_front
    fill(srv, ALICE, MANY, "a")
    c = plain_login(srv, ALICE)
    assert c.stat()[0] == MANY
    delete_all(c, MANY)
    c.send(b"QUIT\r\n")
    with socket.create_connection((srv.listen, srv.port),
                                  timeout=th.HANG) as smtp:
        banner = smtp.recv(512)
        assert banner.startswith(b"220 "), banner
        # QUIT's reply has not come yet: the front answered SMTP while
        # its disk thread was removing the messages
        readable, _, _ = select.select([c.sock], [], [], 0)
        assert not readable and not c.buf, c.buf
    expect(c.resp(timeout=60), "+OK tegami POP3 server signing off "
           "(%d messages deleted)" % MANY)
    c.assert_closed()
    assert count_new(srv, ALICE) == 0
    srv.wait_log(r"logout user=<%s> retrieved=0 seen=0 deleted=%d "
                 r"removed=%d" % (ALICE, MANY, MANY))


def test_connection_lost_during_quit_and_login(one_front):
    """A client that sends QUIT and goes: the UPDATE it asked for is
    carried out and the lock freed. A client that goes while its mailbox
    is being listed: nothing changes and the lock is freed."""
    srv = one_front
    n = 5000
    fill(srv, ALICE, n, "b")
    c = plain_login(srv, ALICE)
    delete_all(c, n)
    c.send(b"QUIT\r\n")
    c.close()
    srv.wait_log(r"logout user=<%s> retrieved=0 seen=0 deleted=%d "
                 r"removed=%d" % (ALICE, n, n), timeout=60)
    th.wait_until(lambda: count_new(srv, ALICE) == 0,
                  what="the removals of the QUIT")

    # unsized names: listing 40,000 files takes a good part of a second,
    # and the client goes as soon as the password was accepted
    fill(srv, ALICE, MANY, "c", sized=False)
    before = srv.log_text().count("disconnect errors=")
    authenticated = "authenticated user=<%s>" % ALICE
    logins = srv.log_text().count(authenticated)
    c = POP3Conn(srv)
    expect(c.cmd("USER " + ALICE), "+OK")
    c.send(b"PASS %s\r\n" % th.DEFAULT_USERS[ALICE].encode())
    th.wait_until(lambda: srv.log_text().count(authenticated) > logins,
                  what="the password check")
    c.close()
    th.wait_until(lambda: srv.log_text().count("disconnect errors=") >
                  before, timeout=60, what="the lost session's end")
    # the lock is free and nothing was changed
    c = p3.login_when_free(srv, ALICE, implicit=True)
    assert c.stat()[0] == MANY
    c.quit(deleted=0)
    assert count_new(srv, ALICE) == MANY
