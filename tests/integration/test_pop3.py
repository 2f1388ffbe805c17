# POP3 (RFC 1939) on port_base+110 with STLS (RFC 2595) and on 995 with
# implicit TLS (RFC 8314), CAPA and response codes (RFC 2449), AUTH PLAIN
# and LOGIN (RFC 5034), against the real binary: Python's poplib verified
# against the exported root with the server's host name, and raw sockets
# for exact bytes. security-tests.md 2 (STLS injection), 25 (parser), 26
# (UPDATE semantics) and 27 (no cleartext login) here; idle timeout,
# connection limits, plaintext on loopback, restarts and a killed front
# in test_pop3_limits.py, which uses the helpers below.
import hashlib
import os
import poplib
import re
import socket
import ssl
import struct
import time
import uuid

import pytest

import tegami_harness as th
from tegami_harness import b64, plain_response

# Failures are answered after a short delay here, and never throttled:
# test_auth_throttle.py checks the throttle with its own settings. Two
# front workers whatever the machine, so that a second session of a
# mailbox may land in the other process (the lock must hold across them).
AUTH_CONFIG = [
    "auth_failure_delay_ms = 10",
    "auth_failure_delay_max_ms = 20",
    "auth_ip_failure_limit = 1000",
    "auth_account_failure_limit = 1000",
]
SERVER_CONFIG = AUTH_CONFIG + ["workers = 2"]

ALICE = "alice@local.test"
PW = dict(th.DEFAULT_USERS)

# A fresh mailbox per test: one account each from this pool.
POOL = ["pop%02d@local.test" % i for i in range(1, 33)]
POOL_USERS = {a: "%s-Secret-%d" % (a.split("@")[0], i)
              for i, a in enumerate(POOL)}
USERS = dict(th.DEFAULT_USERS, **POOL_USERS)

ERROR_LIMIT = 10        # pop3_error_limit's default

GREETING = "+OK tegami POP3 server ready"
SIGNOFF = "+OK tegami POP3 server signing off"
NOT_LOGGED_IN = "-ERR Not logged in"
ALREADY = "-ERR Already logged in"
PLAINTEXT = "-ERR [AUTH] Plaintext authentication disallowed"
AUTH_FAILED = "-ERR [AUTH] Authentication failed"
IN_USE = "-ERR [IN-USE] "
MSG_RANGE = "-ERR Syntax error: a message number is 1 to 4294967295"
NO_SUCH = "-ERR No such message"


def token():
    return "T" + uuid.uuid4().hex


# ----------------------------------------------------------------------
# Server fixture
# ----------------------------------------------------------------------

def finish_server(srv):
    """Stops srv; returns the problems found (death, sanitizer output)."""
    return th.finish_servers([srv], tail=80)


@pytest.fixture(scope="module")
def pop3srv():
    """One server for the module, with the account pool."""
    srv = th.TegamiServer(extra_config=SERVER_CONFIG, users=USERS)
    srv.pool = list(POOL)
    try:
        srv.init()
        srv.start()
    except BaseException:
        srv.failed = True
        srv.cleanup()
        raise
    yield srv
    problems = finish_server(srv)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def user(pop3srv):
    """An account whose mailbox no other test touches."""
    assert pop3srv.pool, "the account pool is used up: make POOL bigger"
    return pop3srv.pool.pop(0)


def password(srv, addr):
    return srv.users[addr]


def pop3_port(srv):
    return srv.base + 110


def pop3s_port(srv):
    return srv.base + 995


# ----------------------------------------------------------------------
# A raw POP3 client: exact bytes, strict CRLF
# ----------------------------------------------------------------------

Closed = th.Closed


class POP3Conn(th.LineConn):
    """Port 110 (plaintext until stls()) or, with implicit=True, 995 with
    a TLS handshake verified against the server's root for HOSTNAME.
    Every line read must end in CRLF."""

    def __init__(self, srv, implicit=False, source=None, timeout=th.HANG,
                 greeting=True, rcvbuf=None, tls_context=None):
        self.srv = srv
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        port = pop3s_port(srv) if implicit else pop3_port(srv)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            if source:
                sock.bind((source, 0))
            sock.connect((srv.listen, port))
            if implicit:
                sock = (tls_context or srv.tls_context()).wrap_socket(
                    sock, server_hostname=th.HOSTNAME,
                    suppress_ragged_eofs=False)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.greeting = self.resp() if greeting else None

    @property
    def tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    def resp(self, timeout=None):
        """A status line: "+OK...", "-ERR..." or a SASL "+ ..." challenge
        (str)."""
        s = self.line(timeout).decode("utf-8", "replace")
        assert re.match(r"^(\+OK( |$)|-ERR( |$)|\+ )", s), \
            "not a POP3 status line: %r" % s
        return s

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.resp(timeout)

    def body(self, timeout=None):
        """The body of a multi-line response, as sent (still
        byte-stuffed), with every line's CRLF, without the final ".\r\n"."""
        deadline = time.monotonic() + (timeout or self.timeout)
        start = 0
        while True:
            # the body starts at a line boundary: the end is the first
            # line that is "." alone
            data = b"\r\n" + self.buf
            i = data.find(b"\r\n.\r\n", start)
            if i >= 0:
                self.buf = data[i + 5:]
                return data[2:i + 2]
            start = max(0, len(data) - 4)
            self._fill(deadline)

    def multi(self, line, prefix="+OK", timeout=None):
        """A command with a multi-line answer: (status, lines as str)."""
        r = self.cmd(line, timeout)
        assert r.startswith(prefix), "%s: expected %r, got %r" % (
            line, prefix, r)
        if not r.startswith("+OK"):
            return r, None
        data = self.body(timeout)
        lines = data.split(b"\r\n")[:-1] if data else []
        return r, [unstuff_line(l).decode("utf-8", "replace")
                   for l in lines]

    def assert_closed(self, timeout=th.HANG):
        """The server closes the connection with nothing more sent."""
        rest = self.read_until_closed(timeout)
        assert rest == b"", "data before close: %r" % rest

    # --- TLS and login ---------------------------------------------
    def stls(self, ctx=None):
        """STLS, nothing buffered behind its +OK, then the handshake
        verified for HOSTNAME."""
        r = self.cmd("STLS")
        assert r == "+OK Begin TLS negotiation", r
        assert self.buf == b"", "data after the +OK to STLS: %r" % self.buf
        self.sock = (ctx or self.srv.tls_context()).wrap_socket(
            self.sock, server_hostname=th.HOSTNAME,
            suppress_ragged_eofs=False)
        assert self.sock.version() in ("TLSv1.2", "TLSv1.3")
        return self

    def login(self, addr, pw=None):
        """USER/PASS; asserts +OK Logged in; returns (count, octets)."""
        expect(self.cmd("USER " + addr), "+OK")
        r = self.cmd("PASS " + (pw or password(self.srv, addr)))
        m = re.match(r"^\+OK Logged in: (\d+) messages \((\d+) octets\)$",
                     r)
        assert m, r
        return int(m.group(1)), int(m.group(2))

    def quit(self, deleted=None):
        """QUIT: +OK and the server closes."""
        r = self.cmd("QUIT")
        assert r.startswith(SIGNOFF), r
        if deleted is not None:
            assert r == "%s (%d messages deleted)" % (SIGNOFF, deleted), r
        self.assert_closed()
        self.close()
        return r

    # --- TRANSACTION helpers ---------------------------------------
    def stat(self):
        r = self.cmd("STAT")
        m = re.match(r"^\+OK (\d+) (\d+)$", r)
        assert m, r
        return int(m.group(1)), int(m.group(2))

    def list(self):
        """{msg: size} from LIST; checks the first line's totals."""
        r, lines = self.multi("LIST")
        out = {}
        for l in lines:
            m = re.match(r"^(\d+) (\d+)$", l)
            assert m, l
            out[int(m.group(1))] = int(m.group(2))
        m = re.match(r"^\+OK (\d+) messages \((\d+) octets\)$", r)
        assert m, r
        assert (int(m.group(1)), int(m.group(2))) == \
            (len(out), sum(out.values())), (r, out)
        return out

    def uidl(self):
        """{msg: uid} from UIDL."""
        r, lines = self.multi("UIDL")
        out = {}
        for l in lines:
            m = re.match(r"^(\d+) ([\x21-\x7e]{1,70})$", l)
            assert m, l
            out[int(m.group(1))] = m.group(2)
        return out

    def retr_raw(self, n, timeout=None):
        """RETR n: (status, body as sent, still stuffed)."""
        r = self.cmd("RETR %d" % n, timeout)
        assert r.startswith("+OK"), r
        return r, self.body(timeout)

    def top_raw(self, n, lines, timeout=None):
        r = self.cmd("TOP %d %d" % (n, lines), timeout)
        assert r == "+OK", r
        return self.body(timeout)


def expect(resp, prefix):
    assert resp.startswith(prefix), "expected %r, got %r" % (prefix, resp)
    return resp


def unstuff_line(line):
    return line[1:] if line.startswith(b".") else line


def session(srv, addr=None, implicit=True, source=None, **kw):
    """A verified TLS session (995, or 110 + STLS), logged in as addr
    when given."""
    c = POP3Conn(srv, implicit=implicit, source=source, **kw)
    try:
        assert c.greeting == GREETING, c.greeting
        if not implicit:
            c.stls()
        if addr:
            c.login(addr)
    except BaseException:
        c.close()
        raise
    return c


def login_when_free(srv, addr, implicit=True, timeout=th.HANG):
    """A logged-in session, retried while the mailbox is [IN-USE]
    (a session that just ended may not be gone yet; bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        c = session(srv, implicit=implicit)
        expect(c.cmd("USER " + addr), "+OK")
        r = c.cmd("PASS " + password(srv, addr))
        if r.startswith("+OK Logged in"):
            return c
        c.quit()
        assert r.startswith(IN_USE), r
        assert time.monotonic() < deadline, \
            "%s still [IN-USE] after %.0f s" % (addr, timeout)
        time.sleep(0.1)


# ----------------------------------------------------------------------
# poplib, verified for HOSTNAME while connecting to the loopback address
# ----------------------------------------------------------------------

class VerifiedPOP3(poplib.POP3):
    """poplib.POP3 whose STLS verifies HOSTNAME: poplib verifies the
    name it was given, so give it HOSTNAME and connect by address."""

    def __init__(self, srv, timeout=th.HANG):
        self._addr = (srv.listen, pop3_port(srv))
        super().__init__(th.HOSTNAME, pop3_port(srv), timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection(self._addr, timeout)


class VerifiedPOP3_SSL(poplib.POP3_SSL):
    def __init__(self, srv, context, timeout=th.HANG):
        self._addr = (srv.listen, pop3s_port(srv))
        super().__init__(th.HOSTNAME, pop3s_port(srv), timeout=timeout,
                         context=context)

    def _create_socket(self, timeout):
        sock = socket.create_connection(self._addr, timeout)
        try:
            return self.context.wrap_socket(sock,
                                            server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def poplib_session(srv, how):
    """poplib over STLS on 110 ("stls") or on 995 ("995"), TLS verified
    against the exported root only, before login."""
    ctx = srv.tls_context()
    if how == "stls":
        p = VerifiedPOP3(srv)
        try:
            assert p.getwelcome() == GREETING.encode()
            assert p.stls(context=ctx).startswith(b"+OK")
        except BaseException:
            p.close()
            raise
    else:
        p = VerifiedPOP3_SSL(srv, ctx)
        assert p.getwelcome() == GREETING.encode()
    assert p.sock.version() in ("TLSv1.2", "TLSv1.3")
    return p


def poplib_quit(p):
    """QUIT, then the server must close the connection (poplib's quit()
    would close it first and not notice)."""
    resp = p._shortcmd("QUIT")
    assert resp.startswith(SIGNOFF.encode()), resp
    assert p.file.read() == b"", "data after the reply to QUIT"
    p.close()
    return resp


# ----------------------------------------------------------------------
# Messages and Maildirs
# ----------------------------------------------------------------------

def deliver(srv, addr, msg):
    """One message over SMTP to addr; returns the file it became (CRLF,
    Return-Path and Received added)."""
    tok = re.search(rb"Message-ID: <([^@>]+)@", msg).group(1)
    before = set(th.maildir_files(srv.maildir(addr), "new"))
    r, qid = th.send_message(srv.port, "sender@ext.test", [addr], msg)
    assert qid, r
    files = th.wait_until(
        lambda: [p for p in th.maildir_files(srv.maildir(addr), "new")
                 if p not in before and tok in th.read(p)],
        what="delivery to %s" % addr)
    assert len(files) == 1, files
    return files[0]


def message(tok, body_lines=(), size=0):
    """A CRLF message with token tok; body_lines after a token line."""
    m = th.make_message(tok, size=size)
    return m + b"".join(l + b"\r\n" for l in body_lines)


def mailbox_owner(srv, addr):
    st = os.stat(os.path.join(srv.maildir(addr), "new"))
    return st.st_uid, st.st_gid


def ensure_maildir(srv, addr):
    """The Maildir exists (a POP3 login creates it as the server's user)."""
    if not os.path.isdir(os.path.join(srv.maildir(addr), "new")):
        c = login_when_free(srv, addr)
        c.quit()
    assert os.path.isdir(os.path.join(srv.maildir(addr), "cur"))


def drop(srv, addr, name, content, sub="new"):
    """Writes a message file the way another program would (tmp/, then
    rename), owned like the mailbox; returns its path."""
    ensure_maildir(srv, addr)
    uid, gid = mailbox_owner(srv, addr)
    md = srv.maildir(addr)
    tmp = os.path.join(md, "tmp", name.split(":")[0])
    with open(tmp, "wb") as f:
        f.write(content)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, 0o600)
    path = os.path.join(md, sub, name)
    os.rename(tmp, path)
    return path


_seq = [0]


def maildir_name(secs=None, w=None, suffix=""):
    """A maildir(5) unique name: seconds.M<usec>P<pid>Q<n>.host, with
    ,S= and ,W= when w is given."""
    _seq[0] += 1
    name = "%d.M%dP%dQ%d.drop.test" % (secs or int(time.time()),
                                       _seq[0], os.getpid(), _seq[0])
    if w is not None:
        name += ",S=%d,W=%d" % (w[0], w[1])
    return name + suffix


def mailbox_files(srv, addr):
    """{base name: (sub, full name)} of new/ and cur/."""
    out = {}
    for sub in ("new", "cur"):
        for p in th.maildir_files(srv.maildir(addr), sub):
            name = os.path.basename(p)
            base = name.split(":2,")[0]
            assert base not in out, "%s twice" % base
            out[base] = (sub, name)
    return out


def crlf(data):
    """What the server sends for a stored file: each LF not after CR
    becomes CRLF; nothing else changes."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def stuffed(data):
    """The body of a RETR/TOP response for this (CRLF) content: a final
    CRLF added when missing, lines starting with "." get another."""
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data.split(b"\n")
    # every line but the last (empty) ends with "\r"
    return b"\n".join((b"." + l) if l.startswith(b".") else l
                      for l in lines)


def retr_wire(content):
    return stuffed(crlf(content))


def top_wire(content, n):
    """RFC 1939 7: the headers, the blank line, n lines of the body (the
    whole message when it has no blank line or fewer lines)."""
    data = crlf(content)
    lines = data.splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        i += 1
        if out[-1] == b"\r\n":
            out += lines[i:i + n]
            break
    return stuffed(b"".join(out))


def uidl_of(name):
    """The UIDL tegami gives a file name: its base name when printable
    and at most 70 octets, else X and 32 hex digits of its SHA-256."""
    base = name.split(":2,")[0].encode()
    if 1 <= len(base) <= 70 and all(0x21 <= c <= 0x7e for c in base):
        return base.decode()
    return "X" + hashlib.sha256(base).hexdigest()[:32]


def front_pid_of_login(srv, addr):
    """The front process that logged the latest POP3 login of addr."""
    pid = None
    for line in srv.log_text().splitlines():
        m = re.search(r"front\[(\d+)\]: info: session=\S+ login "
                      r"user=<%s>" % re.escape(addr), line)
        if m:
            pid = int(m.group(1))
    assert pid, "no login of %s in the log" % addr
    return pid


# ======================================================================
# Greeting, CAPA, STLS (RFC 1939 4, RFC 2449 5, RFC 2595 4)
# ======================================================================

BASE_CAPA = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
             "EXPIRE NEVER"]


def capa(c):
    r, lines = c.multi("CAPA")
    assert r == "+OK Capability list follows", r
    assert lines[-1] == "IMPLEMENTATION tegami", lines
    return lines


def test_greeting_on_both_ports(pop3srv):
    with POP3Conn(pop3srv) as c:
        assert c.greeting == GREETING
        assert not c.tls
        c.quit()
    with POP3Conn(pop3srv, implicit=True) as c:
        assert c.greeting == GREETING
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        c.quit()


def test_capa_before_and_after_stls(pop3srv, user):
    """No USER and no SASL before TLS; STLS only before it, and only on
    110; after login neither STLS nor the login mechanisms."""
    with POP3Conn(pop3srv) as c:
        before = capa(c)
        assert before == BASE_CAPA + ["STLS", "IMPLEMENTATION tegami"], \
            before
        c.stls()
        after = capa(c)
        assert after == BASE_CAPA + ["USER", "SASL PLAIN LOGIN",
                                     "IMPLEMENTATION tegami"], after
        c.login(user)
        assert capa(c) == BASE_CAPA + ["IMPLEMENTATION tegami"]
        c.quit()
    with POP3Conn(pop3srv, implicit=True) as c:
        assert capa(c) == BASE_CAPA + ["USER", "SASL PLAIN LOGIN",
                                       "IMPLEMENTATION tegami"]
        c.quit()


def test_poplib_over_stls_and_995(pop3srv, user):
    """poplib's whole session over both ports, each TLS verified against
    the exported root for HOSTNAME; sizes from LIST and STAT are the
    octets RETR sends (poplib counts them, CRLFs included, unstuffed)."""
    files = [deliver(pop3srv, user, message(token(), [b".dot", b"x"],
                                            size=2000 * i))
             for i in range(3)]
    contents = [th.read(p) for p in files]
    for how in ("stls", "995"):
        p = poplib_session(pop3srv, how)
        try:
            caps = p.capa()
            assert "STLS" not in caps and "USER" in caps, caps
            assert caps["SASL"] == ["PLAIN", "LOGIN"], caps
            assert p.user(user) == b"+OK Send your password"
            resp = p.pass_(password(pop3srv, user))
            assert resp == b"+OK Logged in: 3 messages (%d octets)" % \
                sum(len(x) for x in contents), resp
            count, total = p.stat()
            assert (count, total) == (3, sum(len(x) for x in contents))
            resp, listing, _ = p.list()
            sizes = [tuple(map(int, l.split())) for l in listing]
            assert sizes == [(i + 1, len(x)) for i, x in
                             enumerate(contents)], sizes
            resp, uids, _ = p.uidl()
            assert [u.decode() for u in uids] == [
                "%d %s" % (i + 1, uidl_of(os.path.basename(f)))
                for i, f in enumerate(files)]
            for i, x in enumerate(contents):
                resp, lines, octets = p.retr(i + 1)
                assert resp == b"+OK %d octets" % len(x), resp
                assert octets == sum(len(l) + 2 for l in lines) == len(x)
                assert b"\r\n".join(lines) + b"\r\n" == x
                assert p.list(i + 1) == b"+OK %d %d" % (i + 1, len(x))
                assert p.uidl(i + 1) == b"+OK %d %s" % (
                    i + 1, uidl_of(os.path.basename(files[i])).encode())
            resp, lines, octets = p.top(1, 1)
            assert resp == b"+OK"
            assert lines == [unstuff_line(l) for l in
                             top_wire(contents[0], 1).split(b"\r\n")[:-1]]
            assert p.noop() == b"+OK"
            assert p.dele(2) == b"+OK Message 2 deleted"
            assert p.stat() == (2, len(contents[0]) + len(contents[2]))
            assert p.rset().startswith(b"+OK 3 messages")
            assert p.stat() == (3, sum(len(x) for x in contents))
            poplib_quit(p)
        finally:
            p.close()
    # RETR in both sessions: seen, in cur/; nothing deleted
    names = mailbox_files(pop3srv, user)
    assert sorted(n for _, n in names.values()) == sorted(
        os.path.basename(f) + ":2,S" for f in files)
    assert all(sub == "cur" for sub, _ in names.values())


def test_certificate_is_verified(pop3srv):
    """The client's checks are real: a wrong name or an unknown root
    fails the handshake on both ports."""
    ctx = pop3srv.tls_context()
    with socket.create_connection((th.LISTEN, pop3s_port(pop3srv)),
                                  th.HANG) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="other.test")
    system_only = ssl.create_default_context()
    with POP3Conn(pop3srv) as c:
        expect(c.cmd("STLS"), "+OK")
        with pytest.raises(ssl.SSLCertVerificationError):
            system_only.wrap_socket(c.sock, server_hostname=th.HOSTNAME)


def test_stls_refused_where_tls_is_on(pop3srv, user):
    with POP3Conn(pop3srv, implicit=True) as c:
        expect(c.cmd("STLS"), "-ERR Command not permitted when TLS active")
        c.login(user)
        c.quit()
    with POP3Conn(pop3srv) as c:
        c.stls()
        expect(c.cmd("STLS"), "-ERR Command not permitted when TLS active")
        expect(c.cmd("STLS x"), "-ERR Syntax error")
        c.login(user)
        expect(c.cmd("STLS"), ALREADY)
        c.quit()


def test_stls_injection_is_not_answered(pop3srv, user):
    """security-tests.md 2: "STLS\\r\\nCAPA\\r\\n" in one packet gets the
    +OK of STLS and then the handshake, never a reply to CAPA, neither
    in plaintext nor inside TLS."""
    with POP3Conn(pop3srv) as c:
        c.send(b"STLS\r\nCAPA\r\n")
        r = c.resp()
        assert r == "+OK Begin TLS negotiation", r
        # nothing in plaintext behind the +OK (the handshake would fail
        # on it, too)
        c.sock.settimeout(0.5)
        try:
            extra = c.sock.recv(4096, socket.MSG_PEEK)
        except (socket.timeout, TimeoutError):
            extra = b""
        assert extra == b"", extra
        assert c.buf == b""
        c.sock = pop3srv.tls_context().wrap_socket(
            c.sock, server_hostname=th.HOSTNAME, suppress_ragged_eofs=False)
        # the first reply inside TLS answers the first command sent in it
        expect(c.cmd("NOOP"), NOT_LOGGED_IN)
        c.quit()
    # a USER smuggled in behind STLS is forgotten with the plaintext
    with POP3Conn(pop3srv) as c:
        c.send(b"STLS\r\nUSER " + user.encode() + b"\r\n")
        assert c.resp() == "+OK Begin TLS negotiation"
        c.sock = pop3srv.tls_context().wrap_socket(
            c.sock, server_hostname=th.HOSTNAME, suppress_ragged_eofs=False)
        expect(c.cmd("PASS " + password(pop3srv, user)),
               "-ERR Send USER first")
        c.login(user)
        c.quit()


# ======================================================================
# Commands in each state (RFC 1939 4-6)
# ======================================================================

TRANSACTION_ONLY = ["STAT", "LIST", "LIST 1", "UIDL", "UIDL 1", "RETR 1",
                    "TOP 1 0", "DELE 1", "RSET", "NOOP"]


def test_transaction_commands_before_login(pop3srv):
    """Each TRANSACTION command in AUTHORIZATION: -ERR, and the session
    goes on (before and after STLS)."""
    half = len(TRANSACTION_ONLY) // 2       # under the error limit
    for tls in (False, True):
        for cmds in (TRANSACTION_ONLY[:half], TRANSACTION_ONLY[half:]):
            with POP3Conn(pop3srv, implicit=tls) as c:
                for cmd in cmds:
                    expect(c.cmd(cmd), NOT_LOGGED_IN)
                # not an error: CAPA still answers
                capa(c)
                c.quit()


def test_authorization_commands_after_login(pop3srv, user):
    deliver(pop3srv, user, message(token()))
    with session(pop3srv, user) as c:
        for cmd in ["USER " + user, "PASS x", "AUTH PLAIN",
                    "AUTH PLAIN " + plain_response(user, "x"),
                    "AUTH LOGIN", "AUTH", "APOP %s %s" % (user, "0" * 32),
                    "STLS"]:
            expect(c.cmd(cmd), ALREADY)
        # the session is still logged in and works
        assert c.stat()[0] == 1
        assert c.cmd("NOOP") == "+OK"
        capa(c)
        c.quit()


def test_quit_in_authorization(pop3srv):
    for implicit in (False, True):
        with POP3Conn(pop3srv, implicit=implicit) as c:
            r = c.cmd("QUIT")
            assert r == SIGNOFF, r
            c.assert_closed()


def test_commands_are_case_insensitive_and_pipelined(pop3srv, user):
    """RFC 1939 3 (keywords in any case) and RFC 2449 PIPELINING: a batch
    sent in one write is answered in order, with a RETR in the middle."""
    files = [deliver(pop3srv, user, message(token(), size=s))
             for s in (300, 200000)]
    contents = [th.read(p) for p in files]
    with session(pop3srv, implicit=False) as c:
        c.send("user %s\r\npass %s\r\nstat\r\nretr 2\r\nlist 1\r\n"
               "uidl 2\r\nrEtR 1\r\nnoop\r\nQuit\r\n" %
               (user, password(pop3srv, user)))
        expect(c.resp(), "+OK Send your password")
        expect(c.resp(), "+OK Logged in: 2 messages")
        assert c.resp() == "+OK 2 %d" % sum(len(x) for x in contents)
        assert c.resp() == "+OK %d octets" % len(contents[1])
        assert c.body() == retr_wire(contents[1])
        assert c.resp() == "+OK 1 %d" % len(contents[0])
        assert c.resp() == "+OK 2 %s" % uidl_of(os.path.basename(files[1]))
        assert c.resp() == "+OK %d octets" % len(contents[0])
        assert c.body() == retr_wire(contents[0])
        assert c.resp() == "+OK"
        assert c.resp() == SIGNOFF + " (0 messages deleted)"
        c.assert_closed()


# ======================================================================
# Logins (RFC 1939 7, RFC 5034; security-tests.md 27)
# ======================================================================

@pytest.mark.parametrize("implicit", [False, True], ids=["stls", "995"])
def test_login_mechanisms(pop3srv, user, implicit):
    pw = password(pop3srv, user)
    # AUTH PLAIN with the initial response
    with session(pop3srv, implicit=implicit) as c:
        r = c.cmd("AUTH PLAIN " + plain_response(user, pw))
        assert r == "+OK Logged in: 0 messages (0 octets)", r
        c.quit()
    # AUTH PLAIN, response after an empty challenge
    with session(pop3srv, implicit=implicit) as c:
        assert c.cmd("AUTH PLAIN") == "+ "
        expect(c.cmd(plain_response(user, pw)), "+OK Logged in")
        c.quit()
    # AUTH LOGIN
    with session(pop3srv, implicit=implicit) as c:
        assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"
        assert c.cmd(b64(user)) == "+ UGFzc3dvcmQ6"
        expect(c.cmd(b64(pw)), "+OK Logged in")
        c.quit()
    # lower-case mechanism, and an authzid equal to the user
    with session(pop3srv, implicit=implicit) as c:
        expect(c.cmd("AUTH plain " + plain_response(user, pw, user)),
               "+OK Logged in")
        c.quit()
    # USER/PASS
    with session(pop3srv, implicit=implicit) as c:
        assert c.cmd("USER " + user) == "+OK Send your password"
        expect(c.cmd("PASS " + pw), "+OK Logged in")
        c.quit()


def test_auth_alone_lists_mechanisms(pop3srv):
    with POP3Conn(pop3srv) as c:
        r, lines = c.multi("AUTH")
        assert (r, lines) == ("+OK", []), (r, lines)
        c.stls()
        r, lines = c.multi("AUTH")
        assert (r, lines) == ("+OK", ["PLAIN", "LOGIN"]), (r, lines)
        c.quit()


def test_wrong_password_unknown_user_and_the_auth_log(pop3srv, user):
    src = "127.0.0.21"
    pw = password(pop3srv, user)
    with session(pop3srv, implicit=False, source=src) as c:
        expect(c.cmd("USER " + user), "+OK")
        assert c.cmd("PASS wrong-" + pw) == AUTH_FAILED
        # USER is forgotten after a failure
        expect(c.cmd("PASS " + pw), "-ERR Send USER first")
        expect(c.cmd("USER nobody@local.test"), "+OK")
        assert c.cmd("PASS " + pw) == AUTH_FAILED
        assert c.cmd("AUTH PLAIN " + plain_response(user, "nope")) == \
            AUTH_FAILED
        assert c.cmd("AUTH LOGIN") == "+ VXNlcm5hbWU6"
        assert c.cmd(b64(user)) == "+ UGFzc3dvcmQ6"
        assert c.cmd(b64("nope")) == AUTH_FAILED
        # the right password, but asking to act as another user
        assert c.cmd("AUTH PLAIN " + plain_response(user, pw, ALICE)) == \
            AUTH_FAILED
        # a cancelled exchange (RFC 5034 4: "*")
        assert c.cmd("AUTH PLAIN") == "+ "
        expect(c.cmd("*"), "-ERR Authentication cancelled")
        # the session goes on and the right password works
        c.login(user)
        c.quit()
    with session(pop3srv, implicit=True, source=src) as c:
        expect(c.cmd("USER " + user), "+OK")
        assert c.cmd("PASS x" + pw) == AUTH_FAILED
        c.quit()
    text = pop3srv.log_text()
    fails = re.findall(r"auth failed: user=<([^>]*)> ip=127\.0\.0\.21 "
                       r"service=(pop3s?)\b", text)
    assert fails == [(user, "pop3"), ("nobody@local.test", "pop3"),
                     (user, "pop3"), (user, "pop3"), (user, "pop3s")], fails
    assert len(re.findall(r"auth ok: user=<%s> ip=127\.0\.0\.21 "
                          r"service=pop3\b" % re.escape(user), text)) == 1
    assert pw not in text and b64(pw) not in text


def test_pass_without_user_and_apop(pop3srv, user):
    with session(pop3srv, implicit=True) as c:
        expect(c.cmd("PASS " + password(pop3srv, user)),
               "-ERR Send USER first")
        expect(c.cmd("APOP %s c4c9334bac560ecc979e58001b3e22fb" % user),
               "-ERR APOP is not supported")
        expect(c.cmd("APOP"), "-ERR Syntax error")
        expect(c.cmd("AUTH CRAM-MD5"), "-ERR Unsupported authentication")
        expect(c.cmd("AUTH PLAIN !!!"), "-ERR Cannot decode")
        expect(c.cmd("USER"), "-ERR Syntax error")
        expect(c.cmd("USER a b"), "-ERR Syntax error")
        c.login(user)
        c.quit()


def test_cleartext_login_refused_on_110(pop3srv, user):
    """security-tests.md 27: USER, PASS and AUTH before STLS get -ERR,
    even with the right password, and never reach the password check;
    after STLS the same session logs in."""
    src = "127.0.0.22"
    pw = password(pop3srv, user)
    with POP3Conn(pop3srv, source=src) as c:
        assert c.cmd("USER " + user).startswith(PLAINTEXT)
        assert c.cmd("PASS " + pw).startswith(PLAINTEXT)
        assert c.cmd("AUTH PLAIN " + plain_response(user, pw)).startswith(
            PLAINTEXT)
        assert c.cmd("AUTH PLAIN").startswith(PLAINTEXT)
        assert c.cmd("AUTH LOGIN").startswith(PLAINTEXT)
        # no challenge was sent: this is a command, not a response
        expect(c.cmd(b64(user)), "-ERR Unknown command")
        c.stls()
        c.login(user)
        c.quit()
    text = pop3srv.log_text()
    found = re.findall(r"auth \w+: user=<[^>]*> ip=127\.0\.0\.22 ", text)
    assert len(found) == 1 and found[0].startswith("auth ok:"), found


# ======================================================================
# The command parser over the wire (security-tests.md 25)
# ======================================================================

def test_bad_arguments_get_err_and_the_session_continues(pop3srv, user):
    files = [deliver(pop3srv, user, message(token())) for _ in range(2)]
    size1 = len(th.read(files[0]))
    bad = [
        ("RETR 0", MSG_RANGE),
        ("RETR -1", "-ERR Syntax error: RETR msg"),
        ("RETR 4294967297", MSG_RANGE),
        ("TOP 1 -1", "-ERR Syntax error: TOP msg lines"),
        ("LIST 99999999999999999999", MSG_RANGE),
        ("TOP 1 99999999999999999999", "-ERR Syntax error: TOP's line"),
        ("RETR +1", "-ERR Syntax error: RETR msg"),
        ("RETR 1 2", "-ERR Syntax error: RETR msg"),
        ("LIST  1", "-ERR Syntax error: LIST [msg]"),
    ]
    with session(pop3srv, user) as c:
        for cmd, want in bad:
            expect(c.cmd(cmd), want)
            assert c.cmd("LIST 1") == "+OK 1 %d" % size1
        c.quit()
    with session(pop3srv, user) as c:
        for cmd, want in [
                ("RETR 3", NO_SUCH), ("RETR 4294967295", NO_SUCH),
                ("TOP 3 0", NO_SUCH), ("DELE 3", NO_SUCH),
                ("LIST 3", NO_SUCH), ("UIDL 3", NO_SUCH),
                ("STAT 1", "-ERR Syntax error"), ("NOOP x", "-ERR Syntax"),
                ("RSET 1", "-ERR Syntax error")]:
            expect(c.cmd(cmd), want)
        # leading zeros are still a number
        assert c.cmd("LIST 0001") == "+OK 1 %d" % size1
        assert c.stat()[0] == 2
        c.quit()


def test_nul_and_control_characters(pop3srv, user):
    with session(pop3srv) as c:
        expect(c.cmd(b"USER al\0ice@local.test"), "-ERR Invalid character")
        expect(c.cmd(b"USER " + user.encode() + b"\0"),
               "-ERR Invalid character")
        expect(c.cmd(b"CA\x01PA"), "-ERR Invalid character")
        expect(c.cmd(b"USER " + user.encode()), "+OK")
        expect(c.cmd(b"PASS " + password(pop3srv, user).encode() +
                     b"\0x"), "-ERR Invalid character")
        # the USER above is still there: the bad PASS was not a login
        r = c.cmd("PASS " + password(pop3srv, user))
        expect(r, "+OK Logged in")
        c.quit()


def test_unknown_commands(pop3srv, user):
    with session(pop3srv) as c:
        for cmd in ["HELO x", "XYZZY", "EHLO x", "RETRX 1", " RETR 1", ""]:
            expect(c.cmd(cmd), "-ERR")
        c.login(user)
        expect(c.cmd("LAST"), "-ERR Unknown command")
        c.quit()


def test_longest_command_line(pop3srv, user):
    """RFC 2449 4: 255 octets with the CRLF are accepted; one more
    closes the session."""
    deliver(pop3srv, user, message(token()))
    with session(pop3srv, user) as c:
        line = "LIST " + "0" * 247 + "1"
        assert len(line) + 2 == 255
        expect(c.cmd(line), "+OK 1 ")
        line = "LIST " + "0" * 248 + "1"
        c.send(line + "\r\n")
        assert c.resp() == "-ERR Line too long; closing"
        c.assert_closed()
    # nothing was changed, and the lock was freed
    c = login_when_free(pop3srv, user)
    c.quit()


@pytest.mark.parametrize("tls", [False, True],
                         ids=["before-tls", "logged-in-995"])
def test_64k_line_closes(pop3srv, user, tls):
    """security-tests.md 25: a 64 kB line: -ERR, then close; what
    follows it is never run as a command."""
    with POP3Conn(pop3srv, implicit=tls) as c:
        assert c.greeting == GREETING
        if tls:
            c.login(user)
        payload = b"NOOP " + b"A" * 65536 + b"\r\nQUIT\r\n"
        try:
            c.send(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.resp()
        assert r == "-ERR Line too long; closing", r
        c.assert_closed()
    assert pop3srv.alive()
    with session(pop3srv, user) as c:
        c.quit()


def test_error_limit_closes_the_session(pop3srv, user):
    """pop3_error_limit (10) bad commands end the session: the last
    reply, then "-ERR Too many bad commands" and close. Other commands in
    between do not reset the count."""
    with session(pop3srv) as c:
        for i in range(ERROR_LIMIT - 1):
            expect(c.cmd("XYZ%d" % i), "-ERR Unknown command")
            capa(c)
        expect(c.cmd("STAT"), NOT_LOGGED_IN)
        assert c.resp() == "-ERR Too many bad commands; closing"
        c.assert_closed()
    # failed logins count too
    with session(pop3srv) as c:
        for i in range(ERROR_LIMIT - 1):
            expect(c.cmd("USER " + user), "+OK")
            assert c.cmd("PASS bad%d" % i) == AUTH_FAILED
        expect(c.cmd("USER " + user), "+OK")
        assert c.cmd("PASS bad") == AUTH_FAILED
        assert c.resp() == "-ERR Too many bad commands; closing"
        c.assert_closed()
    # and so do bad message numbers after login
    deliver(pop3srv, user, message(token()))
    with session(pop3srv, user) as c:
        expect(c.cmd("DELE 1"), "+OK")
        for i in range(ERROR_LIMIT - 1):
            expect(c.cmd("RETR 1"), "-ERR Message 1 already deleted")
        expect(c.cmd("RETR 9"), NO_SUCH)
        assert c.resp() == "-ERR Too many bad commands; closing"
        c.assert_closed()
    # closed for errors: no UPDATE, the message is still there
    with login_when_free(pop3srv, user) as c:
        assert c.stat()[0] == 1
        c.quit()


# ======================================================================
# The mailbox: UPDATE, locks, snapshots (security-tests.md 26)
# ======================================================================

def test_dele_then_drop_deletes_nothing(pop3srv, user):
    """security-tests.md 26: DELE, then the connection ends without QUIT
    (a close, a reset; over STLS and 995): nothing is deleted, and the
    mailbox can be opened again."""
    files = [deliver(pop3srv, user, message(token())) for _ in range(2)]
    lost = r"session=\S+ connection lost before QUIT: nothing deleted"
    for how, implicit in (("close", True), ("reset", False),
                          ("close", False), ("reset", True)):
        n_lost = len(re.findall(lost, pop3srv.log_text()))
        c = session(pop3srv, user, implicit=implicit)
        expect(c.cmd("DELE 1"), "+OK Message 1 deleted")
        expect(c.cmd("DELE 2"), "+OK Message 2 deleted")
        assert c.stat() == (0, 0)
        if how == "reset":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              struct.pack("ii", 1, 0))
        c.close()
        th.wait_until(lambda: len(re.findall(lost, pop3srv.log_text())) >
                      n_lost, what="the server to see the drop")
        for f in files:
            assert os.path.exists(f), f
        with login_when_free(pop3srv, user) as c2:
            assert c2.stat()[0] == 2
            c2.quit()


def test_dele_and_quit_removes(pop3srv, user):
    files = [deliver(pop3srv, user, message(token(), size=s))
             for s in (100, 5000, 100)]
    contents = [th.read(f) for f in files]
    uids = [uidl_of(os.path.basename(f)) for f in files]
    with session(pop3srv, user) as c:
        expect(c.cmd("DELE 2"), "+OK Message 2 deleted")
        assert c.stat() == (2, len(contents[0]) + len(contents[2]))
        assert c.list() == {1: len(contents[0]), 3: len(contents[2])}
        assert c.uidl() == {1: uids[0], 3: uids[2]}
        c.quit(deleted=1)
    # removed (and fsync'd) before the +OK: no waiting here
    assert not os.path.exists(files[1])
    assert os.path.exists(files[0]) and os.path.exists(files[2])
    with login_when_free(pop3srv, user) as c:
        assert c.uidl() == {1: uids[0], 2: uids[2]}
        expect(c.cmd("DELE 1"), "+OK")
        expect(c.cmd("DELE 2"), "+OK")
        c.quit(deleted=2)
    assert mailbox_files(pop3srv, user) == {}
    with login_when_free(pop3srv, user) as c:
        assert c.stat() == (0, 0)
        assert c.list() == {}
        assert c.uidl() == {}
        c.quit(deleted=0)


def test_dele_then_rset(pop3srv, user):
    files = [deliver(pop3srv, user, message(token())) for _ in range(2)]
    sizes = [len(th.read(f)) for f in files]
    with session(pop3srv, user) as c:
        expect(c.cmd("DELE 1"), "+OK")
        expect(c.cmd("DELE 2"), "+OK")
        assert c.stat() == (0, 0)
        assert c.cmd("RSET") == "+OK 2 messages (%d octets)" % sum(sizes)
        assert c.stat() == (2, sum(sizes))
        assert c.list() == {1: sizes[0], 2: sizes[1]}
        # DELE again after RSET, then RSET again: still nothing
        expect(c.cmd("DELE 2"), "+OK")
        expect(c.cmd("RSET"), "+OK 2 messages")
        c.quit(deleted=0)
    assert all(os.path.exists(f) for f in files)


def test_deleted_message_cannot_be_used(pop3srv, user):
    files = [deliver(pop3srv, user, message(token())) for _ in range(2)]
    with session(pop3srv, user) as c:
        expect(c.cmd("DELE 1"), "+OK")
        for cmd in ("RETR 1", "TOP 1 0", "LIST 1", "UIDL 1", "DELE 1"):
            assert c.cmd(cmd) == "-ERR Message 1 already deleted", cmd
        assert list(c.list()) == [2]
        assert list(c.uidl()) == [2]
        c.quit(deleted=1)
    assert not os.path.exists(files[0]) and os.path.exists(files[1])


def test_second_session_is_in_use(pop3srv, user):
    """One POP3 session per mailbox ([IN-USE]), across both ports and
    both front workers; the lock is freed by QUIT and by a dropped
    connection."""
    deliver(pop3srv, user, message(token()))
    first = session(pop3srv, user)
    try:
        for implicit in (True, False, True, False):
            with session(pop3srv, implicit=implicit) as c:
                expect(c.cmd("USER " + user), "+OK")
                r = c.cmd("PASS " + password(pop3srv, user))
                assert r.startswith(IN_USE), r
                # back in AUTHORIZATION: the session can go on
                expect(c.cmd("STAT"), NOT_LOGGED_IN)
                r = c.cmd("AUTH PLAIN " + plain_response(
                    user, password(pop3srv, user)))
                assert r.startswith(IN_USE), r
                c.quit()
        assert first.stat()[0] == 1
        first.quit()
    finally:
        first.close()
    # freed at QUIT: the next login succeeds at once
    with session(pop3srv, user) as c:
        # and the one after that is refused while it runs
        with session(pop3srv) as d:
            expect(d.cmd("USER " + user), "+OK")
            assert d.cmd("PASS " + password(pop3srv, user)).startswith(
                IN_USE)
            d.quit()
        c.close()       # dropped without QUIT
    c = login_when_free(pop3srv, user)
    c.quit()


def test_snapshot_taken_at_login(pop3srv, user):
    """Mail delivered during a session is not listed until the next."""
    f1 = deliver(pop3srv, user, message(token()))
    with session(pop3srv, user) as c:
        before = (c.stat(), c.list(), c.uidl())
        f2 = deliver(pop3srv, user, message(token()))
        assert (c.stat(), c.list(), c.uidl()) == before
        expect(c.cmd("RETR 2"), NO_SUCH)
        # a DELE of everything listed does not touch the new message
        expect(c.cmd("DELE 1"), "+OK")
        c.quit(deleted=1)
    assert not os.path.exists(f1) and os.path.exists(f2)
    with login_when_free(pop3srv, user) as c:
        assert c.uidl() == {1: uidl_of(os.path.basename(f2))}
        c.quit()


def test_sizes_are_the_octets_retr_sends(pop3srv, user):
    """LIST and STAT sizes: the CRLF form RETR sends, before stuffing,
    for tegami's files (with W=), files written with LF only and mixed
    line ends (no W=, the server reads them)."""
    tok = token()
    lf_msg = (b"From: lf@ext.test\nTo: " + user.encode() + b"\nSubject: " +
              tok.encode() + b"\n\nline one\n.dot line\n..two dots\n.\n"
              b"last\n")
    mixed = (b"Subject: mixed\r\n\r\ncrlf\r\nlf\nbare\rcr\r\n\n"
             b".x\r\nend without newline")
    paths = [deliver(pop3srv, user, message(tok, [b".", b"..", b".a"])),
             drop(pop3srv, user, maildir_name(), lf_msg),
             drop(pop3srv, user, maildir_name(), mixed)]
    contents = [th.read(p) for p in paths]
    want_sizes = [len(crlf(x)) for x in contents]
    assert want_sizes[1] == len(lf_msg) + lf_msg.count(b"\n")
    with session(pop3srv, user) as c:
        listing = c.list()
        order = sorted(listing)
        uids = c.uidl()
        by_uid = {uidl_of(os.path.basename(p)): (p, x)
                  for p, x in zip(paths, contents)}
        assert sorted(by_uid) == sorted(uids.values())
        assert c.stat() == (3, sum(want_sizes))
        for n in order:
            p, x = by_uid[uids[n]]
            assert listing[n] == len(crlf(x)), (p, listing[n])
            r, body = c.retr_raw(n)
            assert r == "+OK %d octets" % len(crlf(x))
            assert body == retr_wire(x), (p, body[:300])
        c.quit()
    # poplib counts the same octets (a final CRLF added by the server to
    # a message without one is not part of the message)
    p = poplib_session(pop3srv, "995")
    try:
        p.user(user)
        p.pass_(password(pop3srv, user))
        for n in order:
            path, x = by_uid[uids[n]]
            resp, lines, octets = p.retr(n)
            extra = 0 if crlf(x).endswith(b"\r\n") else 2
            assert octets == listing[n] + extra, (path, octets)
        poplib_quit(p)
    finally:
        p.close()


def test_retr_and_top_content(pop3srv, user):
    """RETR and TOP byte-exact: with and without a trailing newline, lines
    starting with ".", a message without a body, TOP 0 and TOP beyond
    the end; TOP marks nothing seen, RETR marks seen at QUIT."""
    msgs = {
        "trailing": b"Subject: a\r\nX: y\r\n\r\nbody 1\r\nbody 2\r\n",
        "no-trailing": b"Subject: b\r\n\r\nbody 1\r\nno newline at end",
        "dots": (b"Subject: c\r\n\r\n.\r\n..\r\n.leading\r\nmid.dle\r\n"
                 b". space\r\n...\r\n.\r\n"),
        "dot-last-no-newline": b"Subject: d\r\n\r\nx\r\n.",
        "headers-only": b"Subject: e\r\nX-A: b\r\n",
        "empty-body": b"Subject: f\r\n\r\n",
        "empty": b"",
        "blank-first": b"\r\nbody only\r\n",
        "folded": b"Subject: g\r\n h\r\n\r\nb1\r\n\r\nb3\r\n",
    }
    secs = 1700000000
    paths = {}
    for i, (k, v) in enumerate(msgs.items()):
        paths[k] = drop(pop3srv, user, maildir_name(
            secs=secs + i, w=(len(v), len(crlf(v)))), v)
    keys = list(msgs)       # delivery order = name order (seconds)
    with session(pop3srv, user) as c:
        uids = c.uidl()
        assert [uids[i + 1] for i in range(len(keys))] == [
            uidl_of(os.path.basename(paths[k])) for k in keys]
        for i, k in enumerate(keys):
            n = i + 1
            for lines in (0, 1, 2, 3, 100, 4294967295):
                body = c.top_raw(n, lines)
                assert body == top_wire(msgs[k], lines), (k, lines, body)
        c.quit()
    # TOP did not mark anything seen
    assert all(sub == "new" for sub, _ in
               mailbox_files(pop3srv, user).values())
    with session(pop3srv, user) as c:
        for i, k in enumerate(keys):
            r, body = c.retr_raw(i + 1)
            assert r == "+OK %d octets" % len(msgs[k])
            assert body == retr_wire(msgs[k]), (k, body)
        # RETR twice is allowed
        r, body = c.retr_raw(3)
        assert body == retr_wire(msgs["dots"])
        c.quit()
    files = mailbox_files(pop3srv, user)
    for k, p in paths.items():
        base = os.path.basename(p)
        assert files[base] == ("cur", base + ":2,S"), (k, files[base])
        assert th.read(os.path.join(pop3srv.maildir(user), "cur",
                                    base + ":2,S")) == msgs[k]


def test_big_message_is_streamed_exactly(pop3srv, user):
    """A message of a few MB over SMTP (with W=), and an LF-only file
    whose line ends and dots fall on the server's 64 KiB read boundaries,
    byte-exact; a command pipelined behind RETR waits for it."""
    big = message(token(), size=3 * 1024 * 1024)
    p1 = deliver(pop3srv, user, big)
    # the LF file: at 65535 a CR-less LF, at 65536 a line starting with
    # a dot; at 2*65536-1 a CR whose LF is the next chunk's first byte;
    # a bare CR at the end of the third chunk.
    chunk = 65536
    data = bytearray(b"Subject: lf\n\n")
    n = 0
    while len(data) < 2 * 1024 * 1024:
        data += b"line %07d .....\n" % n
        n += 1
    data[chunk - 1:chunk + 6] = b"\n.dotty"
    data[2 * chunk - 1:2 * chunk + 1] = b"\r\n"
    data[3 * chunk - 1:3 * chunk] = b"\r"
    data[4 * chunk - 2:4 * chunk + 1] = b"\n.\n"
    data = bytes(data)
    p2 = drop(pop3srv, user, maildir_name(secs=1600000000), data)
    with session(pop3srv, user) as c:
        uids = c.uidl()
        by_uid = {uidl_of(os.path.basename(p)): th.read(p)
                  for p in (p1, p2)}
        listing = c.list()
        for n, uid in uids.items():
            x = by_uid[uid]
            assert listing[n] == len(crlf(x))
            c.send("RETR %d\r\nNOOP\r\n" % n)
            r = c.resp()
            assert r == "+OK %d octets" % len(crlf(x)), r
            body = c.body(timeout=60)
            assert body == retr_wire(x)
            assert c.resp() == "+OK"
        c.quit()


def test_slow_reader_gets_every_byte(pop3srv, user):
    """A client with a small receive buffer that reads slowly: the server
    waits for it (no loss, no reordering), then serves the next
    command."""
    big = message(token(), [b".x" * 30] * 5000, size=1024 * 1024)
    p = deliver(pop3srv, user, big)
    x = th.read(p)
    with session(pop3srv, user, rcvbuf=8192) as c:
        c.send("RETR 1\r\nSTAT\r\n")
        assert c.resp() == "+OK %d octets" % len(x)
        time.sleep(1.0)         # let the server fill every buffer
        body = c.body(timeout=60)
        assert body == retr_wire(x)
        assert c.resp() == "+OK 1 %d" % len(x)
        c.quit()


def test_uidls_unique_stable_and_kept_when_seen(pop3srv, user):
    """UIDLs are unique, the same in every session, and do not change
    when RETR + QUIT moves the file from new/ to cur/ with ":2,S"; a name
    that is not a usable UIDL gets X and a hash."""
    paths = [deliver(pop3srv, user, message(token())) for _ in range(3)]
    long_name = maildir_name(secs=1500000000) + "x" * 80
    paths.append(drop(pop3srv, user, long_name, b"Subject: long\r\n\r\n"))
    paths.append(drop(pop3srv, user, maildir_name(secs=1500000001) +
                      ":2,F", b"Subject: flagged\r\n\r\nx\r\n", sub="cur"))
    with session(pop3srv, user) as c:
        first = c.uidl()
        c.quit()
    assert len(set(first.values())) == len(first) == 5
    assert sorted(first.values()) == sorted(
        uidl_of(os.path.basename(p)) for p in paths)
    assert first[1] == "X" + hashlib.sha256(
        long_name.encode()).hexdigest()[:32]
    with session(pop3srv, user) as c:
        assert c.uidl() == first
        for n in first:
            assert c.cmd("UIDL %d" % n) == "+OK %d %s" % (n, first[n])
            c.retr_raw(n)
        c.quit()
    files = mailbox_files(pop3srv, user)
    assert all(sub == "cur" for sub, _ in files.values()), files
    flagged = [n for _, n in files.values() if n.endswith(":2,FS")]
    assert len(flagged) == 1, files
    assert sum(n.endswith(":2,S") for _, n in files.values()) == 4, files
    with session(pop3srv, user) as c:
        assert c.uidl() == first
        c.quit()


def test_retr_then_drop_marks_nothing_seen(pop3srv, user):
    p = deliver(pop3srv, user, message(token()))
    with session(pop3srv, user) as c:
        c.retr_raw(1)
        c.close()
    with login_when_free(pop3srv, user) as c:
        c.quit()
    assert os.path.exists(p)


def test_message_removed_by_another_program(pop3srv, user):
    """A message listed at login and removed behind the session's back:
    RETR says so (-ERR), and DELE + QUIT of it is not an error."""
    paths = [deliver(pop3srv, user, message(token())) for _ in range(2)]
    with session(pop3srv, user) as c:
        os.unlink(paths[0])
        expect(c.cmd("RETR 1"), "-ERR Message was removed")
        expect(c.cmd("DELE 1"), "+OK")
        c.retr_raw(2)
        c.quit(deleted=1)
    files = mailbox_files(pop3srv, user)
    assert list(files.values()) == [
        ("cur", os.path.basename(paths[1]) + ":2,S")]


def test_message_moved_by_another_program(pop3srv, user):
    """An IMAP client (here: a rename) moves a message to cur/ and flags
    it during the session: RETR finds it, and QUIT adds S to its flags."""
    p = deliver(pop3srv, user, message(token()))
    x = th.read(p)
    base = os.path.basename(p)
    with session(pop3srv, user) as c:
        os.rename(p, os.path.join(pop3srv.maildir(user), "cur",
                                  base + ":2,R"))
        r, body = c.retr_raw(1)
        assert body == retr_wire(x)
        assert c.uidl() == {1: base}
        c.quit()
    assert mailbox_files(pop3srv, user) == {base: ("cur", base + ":2,RS")}


def test_no_sanitizer_reports_so_far(pop3srv):
    """Whatever ran above left no sanitizer report in the log (also
    checked when the module's server stops)."""
    assert pop3srv.sanitizer_reports() == []
    assert pop3srv.alive()
