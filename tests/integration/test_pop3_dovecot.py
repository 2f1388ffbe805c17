# tegami's POP3 server (RFC 1939) and Dovecot on the same Maildir, both
# ways (maildir(5): tmp/new/cur, ":2,FLAGS" info in ASCII order; Dovecot's
# ",S=" and ",W=" sizes, keywords as lower-case letters):
#  - Dovecot writes (dovecot-lda, IMAP APPEND and STORE) and tegami serves
#    the Maildir over POP3: message count, LIST sizes in CRLF form, RETR
#    bytes (LF files sent as CRLF, dot-stuffed), UIDLs stable across
#    sessions, tegami restarts and Dovecot's renames; DELE+QUIT removes
#    the files, and Dovecot afterwards sees the rest with their flags.
#  - tegami writes (SMTP) and marks seen / deletes over POP3, and Dovecot
#    (IMAP and POP3) reads the result: the same messages, \Seen on the
#    retrieved ones only, deleted ones gone, also in a session Dovecot had
#    open meanwhile.
# Dovecot runs both with its default layout (index and uidlist files in
# the Maildir itself, next to tegami's lock file) and with them elsewhere.
import os
import re
import socket
import subprocess
import time

import pytest

import tegami_harness as th
from test_interop_dovecot import DovecotPeer

ALICE = "alice@local.test"
BOB = "bob@local.test"
PW = th.DEFAULT_USERS
LDA = "/usr/lib/dovecot/dovecot-lda"


class Dovecot(DovecotPeer):
    """DovecotPeer (tests/integration/test_interop_dovecot.py); with
    layout "maildir" its index, uidlist and keywords files live in each
    Maildir, as in Dovecot's default mail_location = maildir:~/Maildir."""

    def __init__(self, workdir, maildir_root, users, layout):
        super().__init__(workdir, maildir_root, users)
        self.layout = layout

    def write_config(self):
        super().write_config()
        if self.layout != "maildir":
            return
        with open(self.conf) as f:
            text = f.read()
        text, n = re.subn(r"(?m)^mail_location = .*$",
                          "mail_location = maildir:%s/%%d/%%n" %
                          self.maildir_root, text)
        assert n == 1, text
        with open(self.conf, "w") as f:
            f.write(text)

    def lda(self, user, message):
        """Delivers message (bytes) to user's INBOX with dovecot-lda."""
        assert os.access(LDA, os.X_OK), \
            "dovecot-lda missing (Debian package dovecot-core)"
        p = subprocess.run([LDA, "-c", self.conf, "-d", user, "-f",
                            "sender@ext.test"], input=message,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=th.HANG * 3)
        assert p.returncode == 0, (p.returncode, p.stdout, self.log())

    def errors(self):
        return [l for l in self.log().splitlines()
                if re.search(r"\b(Error|Panic|Fatal)\b|corrupt", l)]


@pytest.fixture(params=["maildir", "control"])
def dovecot(request, server):
    d = os.path.join(server.parent_dir, "dovecot")
    os.makedirs(d, mode=0o755)
    p = Dovecot(d, os.path.join(server.dir, "mail"), server.users,
                request.param)
    try:
        yield p.start()
    finally:
        p.stop()


# ----------------------------------------------------------------------
# A POP3 client that keeps the exact bytes
# ----------------------------------------------------------------------

class Pop3(th.LineConn):
    """POP3 over TLS to port 995 (RFC 8314), verified against the exported
    root for the server's name; multi-line responses returned as sent
    (still dot-stuffed) so that tests see every byte."""

    def __init__(self, srv, user, password=None):
        s = socket.create_connection((srv.listen, srv.base + 995),
                                     timeout=th.HANG)
        try:
            self.sock = srv.tls_context().wrap_socket(
                s, server_hostname=srv.hostname)
        except BaseException:
            s.close()
            raise
        self.buf = b""
        self.eof = False
        self.timeout = th.HANG
        assert self.line().startswith(b"+OK"), "greeting"
        r = self.cmd("USER " + user)
        assert r.startswith(b"+OK"), r
        r = self.cmd("PASS " + (password or PW[user]))
        assert r.startswith(b"+OK"), r

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.line()

    def multi(self, line):
        """(first line, body up to and without the ".\\r\\n" line)."""
        first = self.cmd(line)
        assert first.startswith(b"+OK"), (line, first)
        # The body is everything up to the first CRLF "." CRLF that ends
        # a line, or "." CRLF at the very start (an empty body).
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return first, b""
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                body, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return first, body
            self._fill(time.monotonic() + self.timeout)

    def retr(self, n, verb="RETR"):
        first, body = self.multi("%s %d" % (verb, n))
        return first, unstuff(body)

    def listing(self, verb):
        """{msg number: the rest of its LIST or UIDL line}."""
        first, body = self.multi(verb)
        out = {}
        for l in body.split(b"\r\n")[:-1]:
            n, rest = l.split(b" ", 1)
            out[int(n)] = rest.decode()
        return out

    def quit(self):
        r = self.cmd("QUIT")
        assert r.startswith(b"+OK"), r
        # the server closes after +OK (RFC 1939 6)
        self.read_until_closed()
        self.close()
        return r


def unstuff(body):
    """Undoes RFC 1939 3 byte-stuffing; the body must be CRLF lines."""
    assert body == b"" or body.endswith(b"\r\n"), body[-20:]
    lines = body.split(b"\r\n")[:-1]
    for l in lines:
        assert b"\n" not in l and b"\r" not in l, "bare CR or LF: %r" % l
    return b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n"
                    for l in lines)


def crlf(data):
    """A stored message as POP3 must send it: each bare LF as CR LF."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


# ----------------------------------------------------------------------
# Maildir and IMAP helpers
# ----------------------------------------------------------------------

def maildir_messages(srv, addr):
    """{base name: (subdir, info or None, content)} of addr's Maildir."""
    out = {}
    md = srv.maildir(addr)
    for sub in ("new", "cur"):
        for p in th.maildir_files(md, sub):
            name = os.path.basename(p)
            base, _, info = name.partition(":")
            assert base not in out, "%s twice" % base
            out[base] = (sub, info or None, th.read(p))
    return out


def imap_state(c):
    """{content: set of flags} of the selected mailbox, via FETCH with
    BODY.PEEK[] (changes nothing)."""
    typ, data = c.fetch("1:*", "(UID FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        m = re.search(rb"FLAGS \(([^)]*)\)", meta)
        assert m, meta
        assert body not in out, "the same message twice"
        out[body] = set(m.group(1).decode().split())
    return out


def imap_snapshot(dovecot, user):
    c = dovecot.imap(user)
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK", data
        n = int(data[0])
        state = imap_state(c) if n else {}
        assert len(state) == n, (n, state.keys())
        typ, folders = c.list()
        assert typ == "OK", folders
    finally:
        c.logout()
    return state, folders


# ----------------------------------------------------------------------
# Dovecot writes, tegami serves
# ----------------------------------------------------------------------

LDA_MESSAGES = [
    b"From: a@ext.test\nTo: alice@local.test\nSubject: lda tiny\n\nhi\n",
    # dot lines (stuffed on the wire), 8-bit, trailing spaces, tabs
    b"From: a@ext.test\nTo: alice@local.test\nSubject: lda dots\n"
    b"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
    b".\n..\n...\n.hidden\n. \nK\xc3\xb6ln\n\tindent  \n\n.\nlast\n",
    # the last line without a line end
    b"From: a@ext.test\nTo: alice@local.test\nSubject: lda open end\n\n"
    b"first\nno newline at the end",
    b"From: a@ext.test\nTo: alice@local.test\nSubject: lda big\n\n" +
    b"".join(b"%06d .abcdefghijklmnopqrstuvwxyz0123456789\n" % i
             for i in range(5000)),
    b"From: a@ext.test\nTo: alice@local.test\nSubject: lda junk\n\n"
    b"to be flagged with a keyword\n",
]
APPENDED = (b"From: b@ext.test\r\nTo: alice@local.test\r\n"
            b"Subject: appended flagged\r\n\r\nput there over IMAP\r\n")


def subject(content):
    m = re.search(rb"(?m)^Subject: ([^\r\n]*)", content)
    assert m, content[:200]
    return m.group(1).decode()


def check_session(p, on_disk):
    """STAT, LIST and UIDL agree with the Maildir; returns (uidl map,
    {msg number: base name})."""
    uidl = p.listing("UIDL")
    sizes = p.listing("LIST")
    assert sorted(uidl) == sorted(sizes) == list(range(1, len(on_disk) + 1))
    bases = {}
    for n, u in uidl.items():
        # tegami's UIDL of a Maildir message is its base name (the part
        # that no rename changes)
        assert u in on_disk, (u, sorted(on_disk))
        bases[n] = u
        assert int(sizes[n]) == len(crlf(on_disk[u][2])), (n, u)
    assert len(set(bases.values())) == len(bases)
    total = sum(len(crlf(v[2])) for v in on_disk.values())
    assert p.cmd("STAT") == b"+OK %d %d" % (len(on_disk), total)
    return uidl, bases


def test_tegami_serves_dovecot_maildir(server, dovecot):
    lda = {subject(m): m for m in LDA_MESSAGES}
    for s in ("lda dots", "lda open end", "lda junk"):
        dovecot.lda(ALICE, lda[s])
    c = dovecot.imap(ALICE)
    try:
        typ, _ = c.append("INBOX", r"(\Flagged)", None, APPENDED)
        assert typ == "OK"
        # A read-write SELECT: Dovecot moves new/ to cur/ (":2,").
        typ, data = c.select("INBOX")
        assert typ == "OK" and int(data[0]) == 4, data
        # Dovecot's renames: \Seen on "lda dots" (":2,S"), a keyword on
        # "lda junk" (":2,a" and the dovecot-keywords file)
        subj = {}
        for i in range(1, 5):
            typ, d = c.fetch(str(i), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subj[subject(d[0][1])] = i
        c.store(str(subj["lda dots"]), "+FLAGS", r"(\Seen)")
        c.store(str(subj["lda junk"]), "+FLAGS", "(Junk)")
    finally:
        c.logout()
    # and two more that stay in new/
    for s in ("lda tiny", "lda big"):
        dovecot.lda(ALICE, lda[s])

    disk = maildir_messages(server, ALICE)
    assert len(disk) == 6
    by_subject = {subject(v[2]): (b, v) for b, v in disk.items()}
    # what Dovecot wrote: LF files, sizes in the name, flags in cur/
    assert all(b"\r\n" not in v[2] for v in disk.values())
    assert all(re.search(r",S=\d+,W=\d+$", b) for b in disk)
    assert by_subject["lda dots"][1][:2] == ("cur", "2,S")
    assert by_subject["lda junk"][1][:2] == ("cur", "2,a")
    assert by_subject["appended flagged"][1][:2] == ("cur", "2,F")
    assert by_subject["lda open end"][1][:2] == ("cur", "2,")
    assert by_subject["lda tiny"][1][:2] == ("new", None)
    assert by_subject["lda big"][1][:2] == ("new", None)
    open_end = by_subject["lda open end"][1][2]
    assert not open_end.endswith(b"\n"), open_end[-30:]

    # Session 1: everything listed and retrieved byte for byte, except
    # "lda big" and "lda tiny" (left for later).
    p = Pop3(server, ALICE)
    uidl1, bases = check_session(p, disk)
    subj_of = {n: subject(disk[b][2]) for n, b in bases.items()}
    for n, b in bases.items():
        if subj_of[n] in ("lda big", "lda tiny"):
            continue
        first, got = p.retr(n)
        want = crlf(disk[b][2])
        if not want.endswith(b"\r\n"):
            # RFC 1939 3: the terminating line stands on its own; the
            # server ends the last line itself
            want += b"\r\n"
        assert got == want, (subj_of[n], got[-80:], want[-80:])
    # TOP: the header section, the empty line and n body lines; it does
    # not mark the message seen
    n_big = [n for n, s in subj_of.items() if s == "lda big"][0]
    head = crlf(disk[bases[n_big]][2]).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    first, top = p.multi("TOP %d 0" % n_big)
    assert unstuff(top) == head
    first, top = p.multi("TOP %d 2" % n_big)
    assert unstuff(top) == head + b"000000 .abcdefghijklmnopqrstuvwxyz" \
        b"0123456789\r\n000001 .abcdefghijklmnopqrstuvwxyz0123456789\r\n"
    p.quit()
    server.wait_log(r"logout user=<alice@local\.test> retrieved=4 seen=3 "
                    r"deleted=0 removed=0")

    # Seen marks: new/ -> cur/ ":2,S", flags kept and in ASCII order.
    disk2 = maildir_messages(server, ALICE)
    assert sorted(disk2) == sorted(disk)
    info = {subject(v[2]): v[:2] for v in disk2.values()}
    assert info == {
        "lda tiny": ("new", None),
        "lda dots": ("cur", "2,S"),
        "lda open end": ("cur", "2,S"),
        "lda big": ("new", None),
        "lda junk": ("cur", "2,Sa"),
        "appended flagged": ("cur", "2,FS"),
    }, info

    # Dovecot renames one more (\Answered on "lda big": new/ -> cur/).
    c = dovecot.imap(ALICE)
    try:
        typ, data = c.select("INBOX")
        assert typ == "OK"
        for i in range(1, 7):
            typ, d = c.fetch(str(i), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            if subject(d[0][1]) == "lda big":
                c.store(str(i), "+FLAGS", r"(\Answered)")
    finally:
        c.logout()
    disk3 = maildir_messages(server, ALICE)
    assert {subject(v[2]): v[:2] for v in disk3.values()}["lda big"] == \
        ("cur", "2,R")

    # Session 2: the same UIDLs and numbers; "lda big" is read where
    # Dovecot moved it.
    p = Pop3(server, ALICE)
    uidl2, _ = check_session(p, disk3)
    assert uidl2 == uidl1
    first, got = p.retr(n_big)
    assert got == crlf(disk3[bases[n_big]][2])
    p.quit()

    # Session 3, after a restart of tegami: still the same; DELE two and
    # QUIT removes exactly those.
    server.stop()
    server.start()
    p = Pop3(server, ALICE)
    uidl3, _ = check_session(p, maildir_messages(server, ALICE))
    assert uidl3 == uidl1
    gone = {n for n, s in subj_of.items() if s in ("lda tiny",
                                                     "appended flagged")}
    for n in sorted(gone):
        assert p.cmd("DELE %d" % n).startswith(b"+OK")
    p.quit()
    server.wait_log(r"logout user=<alice@local\.test> retrieved=0 seen=0 "
                    r"deleted=2 removed=2")
    left = maildir_messages(server, ALICE)
    assert sorted(left) == sorted(b for n, b in bases.items()
                                  if n not in gone)

    # Dovecot sees the rest with every flag: its own, and tegami's \Seen.
    state, folders = imap_snapshot(dovecot, ALICE)
    flags = {subject(body): f - {r"\Recent"} for body, f in state.items()}
    assert flags == {
        "lda dots": {r"\Seen"},
        "lda open end": {r"\Seen"},
        "lda big": {r"\Seen", r"\Answered"},
        "lda junk": {r"\Seen", "Junk"},
    }, flags
    # IMAP sends the LF files with CRLF, as POP3 does
    assert sorted(state) == sorted(crlf(v[2]) for v in left.values())
    assert len(folders) == 1 and b"INBOX" in folders[0], folders
    assert dovecot.errors() == [], dovecot.errors()


# ----------------------------------------------------------------------
# tegami writes and changes, Dovecot reads
# ----------------------------------------------------------------------

def test_dovecot_reads_what_tegami_pop3_left(server, dovecot):
    msgs = [th.make_message("tw%d" % i, size=s) for i, s in
            enumerate((200, 3000, 120000, 800, 50))]
    msgs[4] = (b"From: a@ext.test\r\nTo: bob@local.test\r\n"
               b"Subject: dots tw4\r\n\r\n.\r\n..\r\n.x\r\n")
    for m in msgs:
        r, qid = th.send_message(server.port, "sender@ext.test", [BOB], m)
        assert qid, r
    disk = maildir_messages(server, BOB)
    assert len(disk) == 5 and all(v[:2] == ("new", None)
                                  for v in disk.values())

    # A Dovecot IMAP session that has the mailbox open (read-only) while
    # tegami changes it.
    watcher = dovecot.imap(BOB)
    try:
        typ, data = watcher.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) == 5, data
        before = imap_state(watcher)
        assert sorted(before) == sorted(v[2] for v in disk.values())
        assert all(r"\Seen" not in f for f in before.values())

        p = Pop3(server, BOB)
        uidl, bases = check_session(p, disk)
        content = {n: disk[b][2] for n, b in bases.items()}
        for n in (1, 2):
            first, got = p.retr(n)
            assert got == content[n]
        # TOP does not mark a message seen
        first, top = p.multi("TOP 3 0")
        assert unstuff(top) == content[3].split(b"\r\n\r\n")[0] + \
            b"\r\n\r\n"
        assert p.cmd("DELE 4").startswith(b"+OK")
        p.quit()
        server.wait_log(r"logout user=<bob@local\.test> retrieved=2 seen=2 "
                        r"deleted=1 removed=1")

        # The open session learns of the expunge and the new flags.
        th.wait_until(lambda: _noop_count(watcher) == 4,
                      what="Dovecot to see the expunge")
        seen_now = imap_state(watcher)
    finally:
        watcher.logout()

    want = {content[1]: {r"\Seen"}, content[2]: {r"\Seen"},
            content[3]: set(), content[5]: set()}
    assert {b: f - {r"\Recent"} for b, f in seen_now.items()} == want

    # A new IMAP session, and Dovecot's own POP3, read the same.
    state, folders = imap_snapshot(dovecot, BOB)
    assert {b: f - {r"\Recent"} for b, f in state.items()} == want
    # tegami's lock file in the Maildir is not a folder to Dovecot
    assert len(folders) == 1 and b"INBOX" in folders[0], folders
    dp = dovecot.pop3(BOB)
    try:
        n, total = dp.stat()
        assert n == 4 and total == sum(len(c) for c in want), (n, total)
        sizes = sorted(int(l.split()[1]) for l in dp.list()[1])
        assert sizes == sorted(len(c) for c in want)
    finally:
        dp.quit()
    left = maildir_messages(server, BOB)
    assert sorted(v[2] for v in left.values()) == sorted(want)
    assert dovecot.errors() == [], dovecot.errors()


def _noop_count(c):
    typ, _ = c.noop()
    assert typ == "OK"
    typ, data = c.search(None, "ALL")
    assert typ == "OK"
    return len(data[0].split())
