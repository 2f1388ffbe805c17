# `tegami sendmail` (issue 5, docs/sendmail.md): the sendmail(8) interface
# that cron, scripts and PHP's mail() use, and the queue process's pickup
# socket (STATE/run/pickup) behind it. A server on 127.0.0.4 port 25 is
# the MX of local.test, a second on 127.0.0.5 that of remote.test, both in
# a test DNS server (tests/dns_server.py), so that mail handed to sendmail
# goes into local Maildirs and out to another domain. Also: -t with Bcc,
# -f/-F, -i and the "." line, a non-root user, the binary invoked as
# "sendmail", the exit statuses (sysexits.h) and hostile input, both
# through the command and straight on the socket.
import os
import pwd
import re
import socket
import stat
import subprocess
import time

import pytest

import tegami_harness as th

A_IP, B_IP, DOWN_IP = "127.0.0.4", "127.0.0.5", "127.0.0.9"
DELIVERY_WAIT = 30.0    # catches a stuck queue only

EX_USAGE, EX_DATAERR, EX_NOUSER = 64, 65, 67
EX_TEMPFAIL, EX_CONFIG = 75, 78

USERS = dict(th.DEFAULT_USERS)
USERS["erin@local.test"] = "erin-Secret-5"

ZONE = """\
local.test MX 10 mail.local.test
mail.local.test A %(a)s
remote.test MX 10 mx.remote.test
mx.remote.test A %(b)s
down.test MX 10 mx.down.test
mx.down.test A %(down)s
""" % {"a": A_IP, "b": B_IP, "down": DOWN_IP}


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def servers(dns):
    common = ["resolver = " + dns, "queue_retry_min = 1s",
              "queue_retry_max = 2s", "workers = 1"]
    a = th.TegamiServer(users=USERS, listen=A_IP, port_base=0,
                        hostname="mail.local.test", extra_config=common)
    b = th.TegamiServer(users={"dave@remote.test": "dave-Secret-4"},
                        aliases={}, domains=("remote.test",), listen=B_IP,
                        port_base=0, hostname="mx.remote.test",
                        extra_config=common)
    try:
        for s in (a, b):
            s.init()
            s.start()
    except BaseException:
        for s in (a, b):
            s.failed = True
            s.cleanup()
        raise
    yield a, b
    problems = th.finish_servers([a, b])
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def srv(servers):
    wait_pickup(servers[0])
    return servers[0]


def sendmail(server, *args, input=b"", user=None, env=None, conf=True,
             argv0=None, timeout=60):
    """Runs `tegami -c CONF sendmail ARGS` (as user, through runuser;
    or as argv0 ARGS for a binary invoked by another name)."""
    if argv0 is not None:
        cmd = [argv0] + list(args)
    else:
        cmd = [th.TEGAMI_BIN] + (["-c", server.conf] if conf else []) + \
            ["sendmail"] + list(args)
    if user is not None:
        cmd = ["runuser", "-u", user, "--"] + cmd
    if isinstance(input, str):
        input = input.encode()
    return subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, env=env)


def token(name):
    return ("%s-%d" % (name, time.monotonic_ns())).encode()


def wait_mail(server, addr, needle, count=1, timeout=DELIVERY_WAIT):
    """The files in addr's Maildir holding needle, once there are count."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p for p in server.new_files(addr) if needle in th.read(p)]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("%s got %d of %d messages with %r\n%s" % (
                addr, len(found), count, needle, server.log_tail()))
        time.sleep(0.05)


def one_mail(server, addr, needle):
    (path,) = wait_mail(server, addr, needle)
    return th.read(path)


def queued_id(p):
    m = re.search(rb"queued as ([0-9A-F]{16})", p.stderr)
    assert m, p.stderr
    return m.group(1).decode()


def queue_files(server):
    q = os.path.join(server.dir, "queue")
    return sorted(f for f in os.listdir(q) if f.endswith((".msg", ".env")))


def incoming_files(server):
    try:
        return os.listdir(os.path.join(server.dir, "queue", "incoming"))
    except FileNotFoundError:
        return []


def wait_pickup(server, starts=1):
    """Until the queue process of the starts-th start listens (the SMTP
    banner that start() waits for says nothing about the queue)."""
    th.wait_until(lambda: server.log_text().count("pickup: listening on")
                  >= starts, what="the pickup socket")


def header_of(content):
    return content.split(b"\r\n\r\n", 1)[0]


def assert_crlf_only(content):
    assert b"\n" not in content.replace(b"\r\n", b""), content[:300]
    assert b"\r" not in content.replace(b"\r\n", b""), content[:300]


def pickup_path(server):
    return os.path.join(server.dir, "run", "pickup")


def mail_count(server):
    return len(th.all_mail_files(server.dir))


def pickup_count(server):
    return len(re.findall(r"pickup: id=", server.log_text()))


# ---------------------------------------------------------------------------
# Delivery through the command
# ---------------------------------------------------------------------------

def test_message_is_delivered_into_the_maildir(srv):
    t = token("SM-BASIC")
    p = sendmail(srv, "bob@local.test",
                 input=b"Subject: " + t + b"\n\nline one\nline two\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"" and p.stderr == b""
    content = one_mail(srv, "bob@local.test", t)
    assert_crlf_only(content)
    assert content.startswith(
        b"Return-Path: <root@local.test>\r\n"
        b"Received: by mail.local.test (tegami, from userid 0)\r\n\tid ")
    head = header_of(content)
    assert re.search(rb"\r\nFrom: root <root@local.test>\r\n", head), head
    assert re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d "
                     rb"[+-]\d{4}\r\n", head), head
    assert re.search(rb"\r\nMessage-ID: <\d+\.[0-9A-F]{16}@mail\.local\."
                     rb"test>(\r\n|$)", head), head
    assert b"Subject: " + t in head
    assert b"X-Authentication-Warning" not in content
    assert content.endswith(b"\r\n\r\nline one\r\nline two\r\n")
    srv.wait_log(r"pickup: id=[0-9A-F]{16} uid=0 user=root pid=\d+ "
                 r"from=<root@local\.test> nrcpt=1")


def test_fields_the_message_has_are_kept(srv):
    t = token("SM-KEEP")
    msg = (b"From: Someone <someone@elsewhere.example>\r\n"
           b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
           b"Message-ID: <" + t + b"@client.example>\r\n"
           b"Subject: kept\r\n\r\nbody\r\n")
    p = sendmail(srv, "bob@local.test", input=msg)
    assert p.returncode == 0, p.stderr
    content = one_mail(srv, "bob@local.test", t)
    # exactly the message, after our two trace fields
    _, _, rest = th.split_delivered(content)
    assert rest == msg


def test_message_without_a_header_gets_one(srv):
    t = token("SM-NOHEAD")
    p = sendmail(srv, "carol@local.test", input=t + b" is all there is")
    assert p.returncode == 0, p.stderr
    content = one_mail(srv, "carol@local.test", t)
    _, _, rest = th.split_delivered(content)
    head, body = rest.split(b"\r\n\r\n", 1)
    assert [l.split(b":")[0] for l in head.split(b"\r\n")] == \
        [b"From", b"Date", b"Message-ID"]
    assert body == t + b" is all there is\r\n"


def test_t_takes_to_cc_bcc_and_removes_bcc(srv):
    t = token("SM-BCC")
    msg = (b"From: Root <root@local.test>\n"
           b"To: Bob <bob@local.test>\n"
           b"Cc: carol@local.test\n"
           b"Bcc: alice@local.test,\n"
           b" erin@local.test\n"
           b"Subject: bcc " + t + b"\n\nbody\n")
    p = sendmail(srv, "-t", input=msg)
    assert p.returncode == 0, p.stderr
    for rcpt in ("alice", "bob", "carol", "erin"):
        content = one_mail(srv, rcpt + "@local.test", t)
        head = header_of(content)
        assert b"Bcc" not in content and b"bcc:" not in content.lower()
        assert b"erin@local.test" not in content
        assert b"\r\nTo: Bob <bob@local.test>\r\n" in head
        assert b"\r\nCc: carol@local.test\r\n" in head


def test_t_adds_the_arguments(srv):
    t = token("SM-TARGS")
    msg = b"To: bob@local.test\nSubject: " + t + b"\n\nx\n"
    p = sendmail(srv, "-t", "-i", "carol@local.test", input=msg)
    assert p.returncode == 0, p.stderr
    wait_mail(srv, "bob@local.test", t)
    wait_mail(srv, "carol@local.test", t)


def test_recipient_arguments_are_address_lists(srv):
    t = token("SM-ALIST")
    p = sendmail(srv, "Bob <bob@local.test>, carol@local.test", "erin",
                 input=b"Subject: " + t + b"\n\nx\n")
    assert p.returncode == 0, p.stderr
    for rcpt in ("bob", "carol", "erin"):     # erin: qualified locally
        wait_mail(srv, rcpt + "@local.test", t)


def test_f_and_F_set_sender_and_from(srv):
    t = token("SM-F")
    p = sendmail(srv, "-f", "alice@local.test", "-F", "Alice Example",
                 "bob@local.test", input=b"Subject: " + t + b"\n\nx\n")
    assert p.returncode == 0, p.stderr
    content = one_mail(srv, "bob@local.test", t)
    assert content.startswith(b"Return-Path: <alice@local.test>\r\n")
    assert b"\r\nFrom: Alice Example <alice@local.test>\r\n" in content
    assert b"X-Authentication-Warning" not in content     # root


def test_null_sender(srv):
    t = token("SM-NULL")
    p = sendmail(srv, "-f", "<>", "bob@local.test",
                 input=b"Subject: " + t + b"\n\nx\n")
    assert p.returncode == 0, p.stderr
    content = one_mail(srv, "bob@local.test", t)
    assert content.startswith(b"Return-Path: <>\r\n")
    assert b"\r\nFrom: MAILER-DAEMON@local.test\r\n" in content


def test_dot_line_ends_the_message_unless_i(srv):
    t1, t2, t3 = token("SM-DOT"), token("SM-DOTI"), token("SM-DOTOI")
    msg = b"Subject: %s\n\nbefore\n.\nafter\n"
    p = sendmail(srv, "bob@local.test", input=msg % t1)
    assert p.returncode == 0, p.stderr
    content = one_mail(srv, "bob@local.test", t1)
    assert content.endswith(b"\r\n\r\nbefore\r\n")
    for opt, t in (("-i", t2), ("-oi", t3)):
        p = sendmail(srv, opt, "bob@local.test", input=msg % t)
        assert p.returncode == 0, p.stderr
        content = one_mail(srv, "bob@local.test", t)
        assert content.endswith(b"\r\n\r\nbefore\r\n.\r\nafter\r\n")


def test_dot_line_does_not_wait_for_eof(srv):
    """sendmail without -i returns at the "." line even though the writer
    keeps its end of the pipe open."""
    t = token("SM-NOEOF")
    proc = subprocess.Popen([th.TEGAMI_BIN, "-c", srv.conf, "sendmail",
                             "bob@local.test"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"Subject: " + t + b"\n\nbody\n.\n")
        proc.stdin.flush()
        assert proc.wait(th.HANG) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    wait_mail(srv, "bob@local.test", t)


def test_a_user_who_is_not_root(srv):
    t = token("SM-NOBODY")
    p = sendmail(srv, "bob@local.test", user="nobody",
                 input=b"Subject: " + t + b"\n\nx\n")
    assert p.returncode == 0, p.stderr
    content = one_mail(srv, "bob@local.test", t)
    assert content.startswith(
        b"Return-Path: <nobody@local.test>\r\n"
        b"Received: by mail.local.test (tegami, from userid 65534)\r\n")
    assert re.search(rb"\r\nFrom: (nobody@local\.test|.*<nobody@local\."
                     rb"test>)\r\n", content), content
    assert b"X-Authentication-Warning" not in content
    srv.wait_log(r"pickup: id=\S+ uid=65534 user=nobody ")


def test_a_user_who_sets_another_sender_is_named(srv):
    t = token("SM-NOBODY-F")
    p = sendmail(srv, "-f", "alice@local.test", "bob@local.test",
                 user="nobody", input=b"Subject: " + t + b"\n\nx\n")
    assert p.returncode == 0, p.stderr
    content = one_mail(srv, "bob@local.test", t)
    assert content.startswith(b"Return-Path: <alice@local.test>\r\n")
    assert (b"\r\nX-Authentication-Warning: mail.local.test: nobody set "
            b"sender to <alice@local.test> using -f\r\n") in content


def test_remote_domain_is_delivered_by_the_queue(servers):
    a, b = servers
    t = token("SM-REMOTE")
    p = sendmail(a, "-v", "dave@remote.test",
                 input=b"Subject: " + t + b"\n\nto another domain\n")
    assert p.returncode == 0, p.stderr
    qid = queued_id(p)
    content = one_mail(b, "dave@remote.test", t)
    # B's own Return-Path only; A's Received (with the uid) went along
    assert content.count(b"Return-Path:") == 1
    assert content.startswith(b"Return-Path: <root@local.test>\r\n")
    assert b"by mail.local.test (tegami, from userid 0)" in content
    a.wait_log(r"id=%s to=<dave@remote\.test> relay=mx\.remote\.test "
               r"delivered" % qid)
    th.wait_until(lambda: not any(f.startswith(qid)
                                  for f in queue_files(a)),
                  what="the message to leave queue/")


def test_unreachable_domain_waits_in_the_queue(srv):
    t = token("SM-DOWN")
    p = sendmail(srv, "-v", "someone@down.test",
                 input=b"Subject: " + t + b"\n\nwaits\n")
    assert p.returncode == 0, p.stderr
    qid = queued_id(p)
    files = queue_files(srv)
    assert qid + ".msg" in files and qid + ".env" in files
    qdir = os.path.join(srv.dir, "queue")
    msg = th.read(os.path.join(qdir, qid + ".msg"))
    assert msg.startswith(b"Return-Path: <root@local.test>\r\n") and t in msg
    env = th.read(os.path.join(qdir, qid + ".env")).decode()
    assert "\nsender root@local.test\n" in env
    assert "\nrecipient someone@down.test pending" in env
    assert "\nbody 7bit\n" in env
    # the queue tried (connection refused) and kept it
    srv.wait_log(r"id=%s deferred: 1 pending" % qid)
    assert qid + ".env" in queue_files(srv)


def test_invoked_as_sendmail_through_a_symlink(srv, tmp_path):
    link = tmp_path / "sendmail"
    os.symlink(th.TEGAMI_BIN, link)
    t = token("SM-LINK")
    env = dict(os.environ, TEGAMI_CONFIG=srv.conf)
    p = sendmail(srv, "-i", "-FCronDaemon", "-oem", "bob@local.test",
                 argv0=str(link), env=env,
                 input=b"Subject: " + t + b"\n\nfrom cron\n")
    assert p.returncode == 0, p.stderr
    content = one_mail(srv, "bob@local.test", t)
    assert b"\r\nFrom: CronDaemon <root@local.test>\r\n" in content
    # newaliases' -bi: nothing to do
    assert sendmail(srv, "-bi", argv0=str(link), env=env).returncode == 0
    # `tegami sendmail` without -c takes TEGAMI_CONFIG too
    t2 = token("SM-ENV")
    p = sendmail(srv, "bob@local.test", conf=False, env=env,
                 input=b"Subject: " + t2 + b"\n\nx\n")
    assert p.returncode == 0, p.stderr
    wait_mail(srv, "bob@local.test", t2)


@pytest.mark.skipif(os.path.exists("/etc/tegami/tegami.conf"),
                    reason="this host has a default config")
def test_no_config_is_ex_config(srv, tmp_path):
    link = tmp_path / "sendmail"
    os.symlink(th.TEGAMI_BIN, link)
    env = {k: v for k, v in os.environ.items() if k != "TEGAMI_CONFIG"}
    p = sendmail(srv, "bob@local.test", argv0=str(link), env=env,
                 input=b"x\n")
    assert p.returncode == EX_CONFIG
    assert b"/etc/tegami/tegami.conf" in p.stderr


# ---------------------------------------------------------------------------
# Refusals and exit statuses
# ---------------------------------------------------------------------------

def test_unknown_local_user_is_ex_nouser(srv):
    before = pickup_count(srv)
    t = token("SM-NOUSER")
    p = sendmail(srv, "bob@local.test", "nosuch@local.test",
                 input=b"Subject: " + t + b"\n\nx\n")
    assert p.returncode == EX_NOUSER, p.stderr
    assert b"nosuch@local.test" in p.stderr and b"5.1.1" in p.stderr
    srv.wait_log(r"pickup: uid=0 user=root refused: perm 5\.1\.1")
    time.sleep(0.3)
    assert pickup_count(srv) == before
    assert not [f for f in th.all_mail_files(srv.dir) if t in th.read(f)]


@pytest.mark.parametrize("args,input,status,said", [
    (["-bs"], b"", EX_USAGE, b"-bs"),
    (["-q"], b"", EX_USAGE, b"queue flush"),
    (["-C", "/etc/mail/sendmail.cf", "bob@local.test"], b"", EX_USAGE,
     b"TEGAMI_CONFIG"),
    (["-Z", "bob@local.test"], b"x\n", EX_USAGE, b"-Z"),
    ([], b"x\n", EX_USAGE, b"no recipients"),
    (["-t"], b"Subject: none\n\nx\n", EX_DATAERR, b"no recipient"),
    (["-t"], b"To: bob@local.test carol@local.test\n\nx\n", EX_DATAERR,
     b"To: "),
    (["a@@b.example"], b"x\n", EX_DATAERR, b"a@@b.example"),
    (["-f", "bad@", "bob@local.test"], b"x\n", EX_DATAERR, b"-f bad@"),
    (["bob@-bad-.example"], b"x\n", EX_DATAERR, b"-bad-"),
])
def test_refusals(srv, args, input, status, said):
    before = pickup_count(srv)
    p = sendmail(srv, *args, input=input)
    assert p.returncode == status, p.stderr
    assert said in p.stderr, p.stderr
    assert p.stderr.startswith(b"tegami sendmail: ")
    assert pickup_count(srv) == before


def test_hostile_input(srv):
    before = pickup_count(srv)
    # a NUL byte
    p = sendmail(srv, "bob@local.test", input=b"Subject: x\n\na\0b\n")
    assert p.returncode == EX_DATAERR
    assert b"line 3: a NUL byte" in p.stderr
    # a CR alone
    p = sendmail(srv, "bob@local.test", input=b"Subject: x\n\na\rb\n")
    assert p.returncode == EX_DATAERR
    assert b"carriage return" in p.stderr
    # a 10 MB line
    p = sendmail(srv, "bob@local.test",
                 input=b"Subject: x\n\n" + b"y" * (10 * 1024 * 1024) + b"\n")
    assert p.returncode == EX_DATAERR
    assert b"line 3 is longer than 998 characters" in p.stderr
    assert pickup_count(srv) == before
    # no line end at the end: one is added
    t = token("SM-NOEOL")
    p = sendmail(srv, "bob@local.test",
                 input=b"Subject: " + t + b"\n\nlast line")
    assert p.returncode == 0, p.stderr
    assert one_mail(srv, "bob@local.test", t).endswith(b"\r\nlast line\r\n")
    # 8-bit text is kept and marked 8BITMIME in the envelope
    t = token("SM-8BIT")
    p = sendmail(srv, "-v", "someone@down.test",
                 input=b"Subject: " + t + b"\n\nna\xc3\xafve\n")
    assert p.returncode == 0, p.stderr
    env = th.read(os.path.join(srv.dir, "queue", queued_id(p) + ".env"))
    assert b"\nbody 8bitmime\n" in env


def test_server_not_running_is_ex_tempfail(server_factory):
    srv = server_factory(start=False)
    p = sendmail(srv, "bob@local.test", input=b"Subject: x\n\nx\n")
    assert p.returncode == EX_TEMPFAIL, p.stderr
    assert b"not running" in p.stderr and b"not queued" in p.stderr
    assert queue_files(srv) == [] and incoming_files(srv) == []


def test_stopped_and_killed_server_is_ex_tempfail(server_factory):
    srv = server_factory(extra_config=["workers = 1"])
    wait_pickup(srv, 1)
    assert stat.S_ISSOCK(os.lstat(pickup_path(srv)).st_mode)
    srv.stop()
    assert not os.path.exists(pickup_path(srv))     # removed at stop
    p = sendmail(srv, "bob@local.test", input=b"Subject: x\n\nx\n")
    assert p.returncode == EX_TEMPFAIL, p.stderr
    srv.start()
    wait_pickup(srv, 2)
    srv.kill9_group()
    assert os.path.exists(pickup_path(srv))         # left by a crash
    p = sendmail(srv, "bob@local.test", input=b"Subject: x\n\nx\n")
    assert p.returncode == EX_TEMPFAIL, p.stderr
    assert queue_files(srv) == []
    # and a new start replaces the dead socket
    srv.start()
    wait_pickup(srv, 3)
    t = token("SM-RESTART")
    p = sendmail(srv, "bob@local.test", input=b"Subject: " + t + b"\n\nx\n")
    assert p.returncode == 0, p.stderr
    wait_mail(srv, "bob@local.test", t)


def test_message_size_limit(server_factory):
    srv = server_factory(extra_config=["message_size_limit = 64K",
                                       "workers = 1"])
    wait_pickup(srv)
    head = (b"From: root@local.test\r\nDate: Mon, 01 Jan 2024 00:00:00 "
            b"+0000\r\nMessage-ID: <%s@x>\r\nSubject: size\r\n\r\n")

    def message(t, size):
        h = head % t
        full, rest = divmod(size - len(h), 100)
        lines = [b"z" * 98 + b"\r\n"] * full
        if rest >= 2:
            lines.append(b"z" * (rest - 2) + b"\r\n")
        elif rest == 1:
            lines[-1] = b"z" * 99 + b"\r\n"
        m = h + b"".join(lines)
        assert len(m) == size
        return m

    t = token("SM-EXACT")
    p = sendmail(srv, "bob@local.test", input=message(t, 65536))
    assert p.returncode == 0, p.stderr
    wait_mail(srv, "bob@local.test", t)
    t = token("SM-OVER")
    p = sendmail(srv, "bob@local.test", input=message(t, 65537))
    assert p.returncode == EX_DATAERR
    assert b"message_size_limit" in p.stderr
    p = sendmail(srv, "bob@local.test", input=b"x" * (5 * 1024 * 1024))
    assert p.returncode == EX_DATAERR
    assert b"message_size_limit" in p.stderr
    # the queue process checks it too
    with PickupConn(srv) as c:
        c.send(b"sender root@local.test\nrecipient bob@local.test\n"
               b"size 65537\n")
        assert c.line().startswith(b"perm 5.3.4 ")
    time.sleep(0.2)
    assert [f for f in queue_files(srv) if f.endswith(".env")] == []


# ---------------------------------------------------------------------------
# The pickup socket itself, spoken to directly
# ---------------------------------------------------------------------------

class PickupConn:
    def __init__(self, server):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(th.HANG)
        self.sock.connect(pickup_path(server))
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            b = self.sock.recv(4096)
            if not b:
                raise th.Closed("closed; pending %r" % self.buf)
            self.buf += b
        i = self.buf.index(b"\n")
        raw, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        assert raw.endswith(b"\r\n"), raw
        return raw[:-2]

    def closed(self):
        try:
            while True:
                b = self.sock.recv(4096)
                if not b:
                    return self.buf == b""
                self.buf += b
        except ConnectionResetError:
            return True

    def submit(self, body, rcpts=(b"bob@local.test",),
               sender=b"root@local.test"):
        env = b"sender " + sender + b"\n" + b"".join(
            b"recipient " + r + b"\n" for r in rcpts)
        self.send(env + b"size %d\ndata\n" % len(body))
        r = self.line()
        if r != b"go":
            return r
        self.send(body)
        return self.line()


def test_pickup_socket_is_open_to_every_local_user(srv):
    st = os.lstat(pickup_path(srv))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666
    run = os.stat(os.path.join(srv.dir, "run"))
    assert run.st_uid == pwd.getpwnam("tegami").pw_uid
    assert stat.S_IMODE(run.st_mode) & 0o022 == 0


def test_pickup_protocol_golden(srv):
    t = token("SM-RAW")
    body = b"Subject: " + t + b"\r\n\r\nraw\r\n"
    with PickupConn(srv) as c:
        r = c.submit(body, rcpts=[b"bob+40local.test"])    # xtext "@"
        assert re.match(rb"^ok [0-9A-F]{16}$", r), r
        assert c.closed()
    content = one_mail(srv, "bob@local.test", t)
    _, _, rest = th.split_delivered(content)
    assert rest == body


@pytest.mark.parametrize("send,reply", [
    (b"hello\n", b"perm 5.5.1 unknown command"),
    (b"data\n", b"perm 5.5.1 data before sender, recipient and size"),
    (b"sender " + b"a" * 5000 + b"\n", b"perm 5.5.2 line too long"),
    (b"sender a@b.example\nsender a@b.example\n",
     b"perm 5.5.1 sender given twice"),
    (b"sender not-an-address\n", b"perm 5.1.3 bad address syntax"),
    (b"sender a+0Ab@x.example\n", b"perm 5.1.3 bad address"),
    (b"sender a+00b@x.example\n", b"perm 5.1.3 bad address"),
    (b"recipient a+zzb@x.example\n",
     b"perm 5.1.3 bad address encoding or length"),
    (b"recipient nosuch@local.test\n", b"perm 5.1.1 "),
    (b"recipient loop1@local.test\n", b"perm 5.4.6 "),
    (b"size -1\n", b"perm 5.5.4 bad size"),
    (b"size 01\n", b"perm 5.5.4 bad size"),
    (b"size 99999999999999999999\n", b"perm 5.5.4 bad size"),
    (b"size 26214401\n", b"perm 5.3.4 "),
])
def test_pickup_protocol_refusals(srv, send, reply):
    with PickupConn(srv) as c:
        c.send(send)
        assert c.line().startswith(reply)
        assert c.closed()


@pytest.mark.parametrize("body,reply", [
    (b"Subject: x\n\nbare LF\r\n", b"perm 5.6.0 a LF without its CR (line 1)"),
    (b"Subject: x\r\n\r\nbare\rCR\r\n",
     b"perm 5.6.0 a CR not followed by LF (line 3)"),
    (b"Subject: x\r\n\r\nN\0L\r\n", b"perm 5.6.0 a NUL byte (line 3)"),
    (b"Subject: x\r\n\r\n" + b"l" * 999 + b"\r\n",
     b"perm 5.6.0 a line over 998 characters (line 3)"),
    (b"Subject: x\r\n\r\nno end", b"perm 5.6.0 the message does not end"),
])
def test_pickup_refuses_bad_message_bytes(srv, body, reply):
    before = set(queue_files(srv))
    with PickupConn(srv) as c:
        assert c.submit(body).startswith(reply)
        assert c.closed()
    assert set(queue_files(srv)) == before


def test_pickup_client_that_goes_away_leaves_nothing(srv):
    before = set(queue_files(srv))
    with PickupConn(srv) as c:
        c.send(b"sender root@local.test\nrecipient bob@local.test\n"
               b"size 1000\ndata\n")
        assert c.line() == b"go"
        c.send(b"Subject: half\r\n\r\n" + b"h" * 400)
        time.sleep(0.2)
    srv.wait_log(r"pickup: uid=0 user=root connection lost after \d+ of "
                 r"1000 octets; nothing queued")
    assert set(queue_files(srv)) == before
    assert incoming_files(srv) == []


def test_pickup_serves_many_clients_at_once(srv):
    t = token("SM-MANY")
    conns = [PickupConn(srv) for _ in range(20)]
    try:
        # every envelope first, interleaved; then every message
        for i, c in enumerate(conns):
            c.send(b"sender root@local.test\nrecipient carol@local.test\n")
        bodies = [b"Subject: %s-%d\r\n\r\nmany\r\n" % (t, i)
                  for i in range(len(conns))]
        for c, body in zip(conns, bodies):
            c.send(b"size %d\ndata\n" % len(body))
        for c in conns:
            assert c.line() == b"go"
        # the bodies in two halves, all first halves first
        for c, body in zip(conns, bodies):
            c.send(body[:10])
        for c, body in zip(conns, bodies):
            c.send(body[10:])
        ids = set()
        for c in conns:
            r = c.line()
            assert r.startswith(b"ok "), r
            ids.add(r[3:])
        assert len(ids) == len(conns)
    finally:
        for c in conns:
            c.sock.close()
    wait_mail(srv, "carol@local.test", t, count=len(conns))
