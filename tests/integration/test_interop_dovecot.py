# Dovecot as a reader of the Maildir that tegami writes (Maildir as
# described by D. J. Bernstein and Dovecot's maildir format: tmp/new/cur,
# ",S=" and ",W=" sizes in the name): a private Dovecot on 127.0.0.3 must
# list every delivered message with the right size (IMAP RFC822.SIZE,
# RFC 3501 6.4.5 / 7.4.2; POP3 LIST, RFC 1939 5) and exactly its bytes, and
# see a message that arrives while a session is open.
import imaplib
import os
import poplib
import pwd
import re
import signal
import socket
import subprocess
import time

import pytest

import tegami_harness as th
from postfix_peer import free_port, process_tree

DOVECOT_ADDR = "127.0.0.3"


class DovecotPeer:
    """A private Dovecot (own base_dir, state_dir, log) serving the
    Maildirs under maildir_root (DOMAIN/LOCALPART, as tegami lays them
    out) over plaintext IMAP and POP3 on DOVECOT_ADDR.  Dovecot's own
    files (index, uidlist) go to workdir/control, not into the Maildirs.
    Runs in the foreground (dovecot -F) so that the test owns its PID."""

    def __init__(self, workdir, maildir_root, users, mail_user="tegami"):
        self.workdir = workdir
        self.maildir_root = maildir_root
        self.users = dict(users)
        self.mail_user = mail_user
        self.conf = os.path.join(workdir, "dovecot.conf")
        self.log_path = os.path.join(workdir, "dovecot.log")
        self.imap_port = free_port(DOVECOT_ADDR, preferred=(143,))
        self.pop3_port = free_port(DOVECOT_ADDR, preferred=(110,))
        self.proc = None

    def write_config(self):
        w = self.workdir
        pw = pwd.getpwnam(self.mail_user)
        for sub in ("control", "home"):
            os.makedirs(os.path.join(w, sub), exist_ok=True)
            os.chown(os.path.join(w, sub), pw.pw_uid, pw.pw_gid)
        with open(os.path.join(w, "passwd"), "w") as f:
            for user, password in sorted(self.users.items()):
                f.write("%s:{PLAIN}%s\n" % (user, password))
        with open(self.conf, "w") as f:
            f.write("""\
# Written by tests/integration/test_interop_dovecot.py
base_dir = {w}/run
state_dir = {w}/state
log_path = {log}
protocols = imap pop3
listen = {addr}
ssl = no
# Test only, on loopback in a private network namespace.
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 100
mail_location = maildir:{root}/%d/%n:INDEX={w}/control/%d/%n/index:CONTROL={w}/control/%d/%n
mail_uid = {user}
mail_gid = {user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {w}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={user} home={w}/home/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = {addr}
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {addr}
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""".format(w=w, log=self.log_path, addr=DOVECOT_ADDR, root=self.maildir_root,
           user=self.mail_user, imap=self.imap_port, pop3=self.pop3_port))

    def start(self, timeout=th.HANG):
        self.write_config()
        self._out = open(os.path.join(self.workdir, "dovecot.out"), "ab")
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=self._out, start_new_session=True)
        deadline = time.monotonic() + timeout
        for port in (self.imap_port, self.pop3_port):
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError("dovecot exited with %d\n%s" % (
                        self.proc.returncode, self.log()))
                try:
                    with socket.create_connection((DOVECOT_ADDR, port), 1):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("dovecot does not listen on %d\n%s"
                                         % (port, self.log()))
                time.sleep(0.05)
        return self

    def stop(self):
        """SIGTERM to the master; then SIGKILL to whatever of its process
        tree (imap, pop3, auth, log...) is left."""
        if self.proc is None:
            return
        pids = process_tree(self.proc.pid)
        th.stop_process(self.proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
                os.path.exists("/proc/%d" % p) and not th._is_zombie(p)
                for p in pids):
            time.sleep(0.05)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.proc = None
        self._out.close()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def imap(self, user):
        c = imaplib.IMAP4(DOVECOT_ADDR, self.imap_port, timeout=th.HANG)
        c.login(user, self.users[user])
        return c

    def pop3(self, user):
        c = poplib.POP3(DOVECOT_ADDR, self.pop3_port, timeout=th.HANG)
        c.user(user)
        c.pass_(self.users[user])
        return c


@pytest.fixture
def dovecot_factory():
    peers = []

    def make(server):
        d = os.path.join(server.parent_dir, "dovecot")
        os.makedirs(d, mode=0o755)
        p = DovecotPeer(d, os.path.join(server.dir, "mail"), server.users)
        peers.append(p)
        return p.start()

    yield make
    for p in peers:
        p.stop()


def _messages():
    """Three messages of different shapes: tiny, dot-stuffed lines and
    8-bit text, and about 300 KB."""
    small = (b"From: a@ext.test\r\nTo: alice@local.test\r\n"
             b"Subject: tiny\r\n\r\nhi\r\n")
    dots = (b"From: a@ext.test\r\nTo: alice@local.test\r\n"
            b"Subject: dots\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            b".\r\n..\r\n.hidden\r\nK\xc3\xb6ln\r\n\tindent  \r\n\r\n")
    big = th.make_message("big-one", size=300000)
    return [small, dots, big]


def _deliver(server, rcpts, msg, sender="sender@ext.test"):
    r, qid = th.send_message(server.port, sender, rcpts, msg,
                             mail_params="BODY=8BITMIME")
    assert qid, r
    return qid


def _files_by_content(server, addr):
    """{file content: path} of addr's delivered files (new/ and cur/)."""
    out = {}
    for sub in ("new", "cur"):
        for p in th.maildir_files(server.maildir(addr), sub):
            out[th.read(p)] = p
    return out


def _imap_fetch_all(c):
    """[(uid, rfc822_size, body bytes)] for every message of the selected
    mailbox, with BODY.PEEK[] so that nothing changes."""
    typ, data = c.fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK", data
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        m = re.search(rb"UID (\d+)", meta)
        s = re.search(rb"RFC822\.SIZE (\d+)", meta)
        assert m and s, meta
        out.append((int(m.group(1)), int(s.group(1)), body))
    return out


def test_dovecot_imap_lists_tegami_maildir(server, dovecot_factory):
    msgs = _messages()
    for m in msgs:
        _deliver(server, ["alice@local.test"], m)
    on_disk = _files_by_content(server, "alice@local.test")
    assert len(on_disk) == 3
    dovecot = dovecot_factory(server)
    c = dovecot.imap("alice@local.test")
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) == 3, (typ, data, dovecot.log())
        seen = _imap_fetch_all(c)
    finally:
        c.logout()
    assert len(seen) == 3
    for uid, size, body in seen:
        # Dovecot serves the file as it is (CRLF on disk), and takes
        # RFC822.SIZE from the W= in the name: both must be the file.
        assert body in on_disk, body[:300]
        path = on_disk.pop(body)
        assert size == len(body) == os.path.getsize(path), (size, path)
        rp, received, message = th.split_delivered(body)
        assert message in msgs
    assert on_disk == {}
    # Delivery order is UID order.
    bodies = [th.split_delivered(b)[2] for _, _, b in sorted(seen)]
    assert bodies == msgs


def test_dovecot_pop3_sizes_and_content(server, dovecot_factory):
    msgs = _messages()
    for m in msgs:
        _deliver(server, ["bob@local.test"], m)
    on_disk = _files_by_content(server, "bob@local.test")
    assert len(on_disk) == 3
    total = sum(len(b) for b in on_disk)
    dovecot = dovecot_factory(server)
    p = dovecot.pop3("bob@local.test")
    try:
        assert p.stat() == (3, total)
        resp, listing, _ = p.list()
        sizes = [int(l.split()[1]) for l in listing]
        got = []
        for i in range(1, 4):
            resp, lines, octets = p.retr(i)
            # poplib removed the dot-stuffing and the line ends.
            body = b"".join(l + b"\r\n" for l in lines)
            assert octets == len(body)
            got.append(body)
        uidl = p.uidl()
    finally:
        p.quit()
    assert sorted(got) == sorted(on_disk)
    assert sizes == [len(b) for b in got]
    assert len(uidl[1]) == 3
    assert [th.split_delivered(b)[2] for b in got] == msgs


def test_dovecot_sees_new_delivery_and_aliases(server, dovecot_factory):
    """A session is open in Dovecot while tegami delivers: the new message
    shows up on NOOP, whole (a Maildir reader must never see a partial
    file); an alias delivery reaches both members."""
    _deliver(server, ["alice@local.test"], _messages()[0])
    dovecot = dovecot_factory(server)
    c = dovecot.imap("alice@local.test")
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) == 1, data
        big = th.make_message("while-open", size=500000)
        _deliver(server, ["staff@local.test"], big)

        def exists():
            typ, data = c.noop()
            n = c.untagged_responses.get("EXISTS", [None])[-1]
            return n is not None and int(n) == 2
        th.wait_until(exists, what="Dovecot to see the new message")
        seen = _imap_fetch_all(c)
    finally:
        c.logout()
    assert len(seen) == 2
    uid, size, body = max(seen)
    assert th.split_delivered(body)[2] == big
    assert size == len(body)
    p = dovecot.pop3("bob@local.test")
    try:
        resp, lines, octets = p.retr(1)
        body = b"".join(l + b"\r\n" for l in lines)
        assert th.split_delivered(body)[2] == big
        assert p.stat()[0] == 1
    finally:
        p.quit()
