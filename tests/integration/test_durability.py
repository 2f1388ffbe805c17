# Nothing acknowledged is lost (security-tests.md tests 44, 46, 47):
# kill -9 in the middle of a burst, the order of fsync/rename/reply seen
# with strace, a full disk, graceful SIGTERM and SIGHUP reload.
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

import tegami_harness as th
from tegami_harness import expect, queued_id


def token(prefix="T"):
    return prefix + uuid.uuid4().hex


def subject_token(message):
    m = re.search(rb"(?m)^Subject: (\S+)\r$", message)
    return m.group(1).decode() if m else None


# --- (a) kill -9 mid-burst ---------------------------------------------

def test_kill9_mid_burst_loses_nothing_acknowledged(server_factory):
    srv = server_factory()
    total, threads_n, time_limit = 300, 8, 60.0
    sent, acked, errors = {}, {}, []
    lock = threading.Lock()
    counter = iter(range(total))
    stop = threading.Event()
    kill_now = threading.Event()
    kill_after = random.randint(20, 150)
    kill_t = [None]
    deadline = time.monotonic() + time_limit
    rcpt_sets = [["alice@local.test"], ["bob@local.test"],
                 ["staff@local.test"], ["alice@local.test", "carol@local.test"]]
    expand = {"staff@local.test": ["alice@local.test", "bob@local.test"]}

    def client():
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            tok = token("K%03d" % n)
            msg = th.make_message(tok, size=random.choice(
                [300, 3000, 30000, 300000]))
            rcpts = random.choice(rcpt_sets)
            with lock:
                sent[tok] = msg
            try:
                r, qid = th.send_message(srv.port, "k@ext.test", rcpts, msg)
            except (OSError, th.Closed, AssertionError) as e:
                with lock:
                    errors.append((time.monotonic(), tok, repr(e)))
                continue
            if qid is None:
                with lock:
                    errors.append((time.monotonic(), tok, repr(r)))
                continue
            with lock:
                acked[tok] = [a for x in rcpts for a in expand.get(x, [x])]
                if len(acked) >= kill_after:
                    kill_now.set()

    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(threads_n)]
    for t in threads:
        t.start()
    kill_now.wait(time_limit)
    # a little later still, so that the kill lands among sessions at random
    # points of their transactions
    time.sleep(random.uniform(0, 0.05))
    kill_t[0] = time.monotonic()
    srv.kill9_group()
    stop.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "client thread hung"
    assert len(acked) >= kill_after, "burst too slow: %d acked, errors %r" % (
        len(acked), errors[:3])
    before = [e for e in errors if e[0] < kill_t[0]]
    assert before == [], "failures before the kill: %r" % before[:5]

    # every acknowledged message is in every mailbox, byte for byte
    with lock:
        acked_now = dict(acked)
        sent_now = dict(sent)
    seen = {}
    for path in th.all_mail_files(srv.dir):
        content = th.read(path)
        th.check_maildir_name(path, content)
        rp, _, body = th.split_delivered(content)
        assert rp == b"Return-Path: <k@ext.test>\r\n"
        tok = subject_token(body)
        assert tok in sent_now, "unknown message in %s" % path
        # no partial file: the whole message, exactly
        assert body == sent_now[tok], "partial or altered file %s" % path
        mbox = os.path.basename(os.path.dirname(os.path.dirname(path)))
        seen.setdefault(tok, set()).add(mbox + "@local.test")
    print("kill -9 after %d acknowledged; %d attempted; %d failed after "
          "the kill; %d messages on disk" % (len(acked_now), len(sent_now),
                                             len(errors), len(seen)))
    missing = {t: sorted(set(a) - seen.get(t, set()))
               for t, a in acked_now.items()
               if set(a) - seen.get(t, set())}
    assert missing == {}, "acknowledged but not delivered: %r" % missing

    # and the server starts again on the same state and works
    srv.start()
    tok = token()
    r, qid = th.send_message(srv.port, "k@ext.test", ["alice@local.test"],
                             th.make_message(tok))
    assert qid is not None, r
    assert len(th.files_containing(srv.dir, tok)) == 1


# --- (b) write ordering seen with strace (test 44) ---------------------

TRACED = ["write", "writev", "sendto", "sendmsg", "fsync", "fdatasync",
          "rename", "renameat", "renameat2", "link", "linkat", "unlink",
          "unlinkat"]

LINE = re.compile(r"^(\d+)\s+[\d:.]+\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")


def parse_strace(lines):
    """[(index, pid, syscall, text, complete_index)] in file order; for an
    unfinished call complete_index is the line of its resumption."""
    calls = []
    pending = {}
    for i, line in enumerate(lines):
        m = LINE.match(line)
        if not m:
            continue
        pid, resumed, name, rest = int(m.group(1)), m.group(2), \
            m.group(3), m.group(4)
        if resumed:
            j = pending.pop((pid, resumed), None)
            if j is not None:
                calls[j][4] = i
                calls[j][3] += rest
            continue
        entry = [i, pid, name, rest, i]
        if rest.endswith("<unfinished ...>"):
            pending[(pid, name)] = len(calls)
            entry[4] = None
        calls.append(entry)
    return calls


def test_fsync_and_rename_before_250(server, tmp_path):
    tok = token()
    msg = th.make_message(tok, size=20000)
    out = str(tmp_path / "strace.out")
    with th.Strace(server.pids(), TRACED, out) as st:
        r, qid = th.send_message(server.port, "s@ext.test",
                                 ["staff@local.test"], msg)
    assert qid is not None, r
    calls = parse_strace(st.lines())
    assert calls, "strace saw nothing"

    def ok(c):
        return c[4] is not None and re.search(r"\)\s+= \d+", c[3])

    replies = [c for c in calls if c[2] in ("write", "writev", "sendto",
                                            "sendmsg") and
               ("250 2.0.0 Ok: queued as " + qid) in c[3]]
    assert len(replies) == 1, "the 250 reply was not seen in strace"
    reply_at = replies[0][0]
    state = re.escape(server.dir)
    file_syncs = []
    dir_syncs = {}
    for c in calls:
        if c[2] not in ("fsync", "fdatasync") or not ok(c):
            continue
        m = re.match(r"\d+<([^>]+)>", c[3])
        if not m or not re.match(state, m.group(1)):
            continue
        path = m.group(1)
        if os.path.isdir(path):
            dir_syncs.setdefault(path, []).append(c[4])
        else:
            file_syncs.append(c[4])
    assert file_syncs, "no fsync of a message file"
    for user in ("alice", "bob"):
        newdir = os.path.join(server.dir, "mail", "local.test", user, "new")
        links = [c for c in calls
                 if c[2] in ("rename", "renameat", "renameat2", "link",
                             "linkat") and ok(c) and
                 ("%s/new" % user) in c[3]]
        assert links, "no rename/link into %s" % newdir
        link_start = min(c[0] for c in links)
        link_done = min(c[4] for c in links)
        # the data is on disk before the name appears in new/ ...
        assert min(file_syncs) < link_start, "file fsync after the rename"
        # ... and new/ itself is synced after the rename, before the reply
        syncs = [i for i in dir_syncs.get(newdir, []) if i > link_done]
        assert syncs, "no fsync of %s after the rename" % newdir
        assert min(syncs) < reply_at, "%s synced after the 250" % newdir
        assert link_done < reply_at
    for user in ("alice", "bob"):
        path = [p for p in th.files_containing(server.dir, tok)
                if "/%s/new/" % user in p]
        assert len(path) == 1


# --- (c) disk full (test 47) -------------------------------------------

@pytest.fixture
def tmpfs():
    mnt = tempfile.mkdtemp(prefix="tegami-tmpfs-", dir="/tmp")
    os.chmod(mnt, 0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755",
                    "tmpfs", mnt], check=True)
    th.MOUNTS.append(mnt)
    logdir = th.make_state_parent()
    yield mnt, logdir
    if subprocess.run(["umount", mnt]).returncode != 0:
        subprocess.run(["umount", "-l", mnt])
    th.MOUNTS.remove(mnt)
    os.rmdir(mnt)
    shutil.rmtree(logdir, ignore_errors=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(mnt, leave):
    """Allocates a filler file so that about `leave` bytes stay free."""
    path = os.path.join(mnt, "filler")
    size = free_bytes(mnt) - leave
    assert size > 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    assert abs(free_bytes(mnt) - leave) < 64 * 1024, free_bytes(mnt)
    return path


def spool_files(srv):
    return set(th.regular_files_under(os.path.join(srv.dir, "mail")) +
               th.regular_files_under(os.path.join(srv.dir, "queue")))


def test_disk_full_gives_4xx_and_recovers(tmpfs, server_factory):
    mnt, logdir = tmpfs
    srv = server_factory(["min_free_space = 0"],
                         parent_dir=th.make_state_parent(root=mnt),
                         log_path=os.path.join(logdir, "server.log"))
    filler = fill(mnt, 100 * 1024)
    before = spool_files(srv)
    tok = token()
    msg = th.make_message(tok, size=1024 * 1024)
    with srv.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<big@ext.test>"), "250 2.1.0")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5")
        r = c.cmd("DATA")
        if r.code == 354:
            c.send(th.dot_stuff(msg))
            r = c.reply(timeout=30)
        assert r.code != 250, "disk full but the message was acknowledged"
        assert r.lines[0] in ("451 4.3.0 Error: queue file write error",
                              "452 4.3.1 Insufficient system storage"), r
        # nothing half-delivered, no temp file left behind
        assert th.files_containing(srv.dir, tok) == []
        th.wait_until(lambda: spool_files(srv) == before, timeout=5,
                      what="temp files of the failed message to go")
        # the server is alive and the session goes on
        assert c.cmd("NOOP").lines == ["250 2.0.0 Ok"]
        os.unlink(filler)
        tok2 = token()
        expect(c.cmd("MAIL FROM:<big@ext.test>"), "250 2.1.0")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "250 2.1.5")
        expect(c.cmd("DATA"), "354 ")
        msg2 = th.make_message(tok2, size=1024 * 1024)
        c.send(th.dot_stuff(msg2))
        queued_id(c.reply(timeout=30))
    found = th.files_containing(srv.dir, tok2)
    assert len(found) == 1
    assert th.split_delivered(th.read(found[0]))[2] == msg2
    assert srv.alive()


def test_min_free_space_refuses_mail(tmpfs, server_factory):
    mnt, logdir = tmpfs
    srv = server_factory(["min_free_space = 4M"],
                         parent_dir=th.make_state_parent(root=mnt),
                         log_path=os.path.join(logdir, "server.log"))
    filler = fill(mnt, 2 * 1024 * 1024)
    with srv.connect() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@ext.test>")
        assert r.lines == ["452 4.3.1 Insufficient system storage"], r
        os.unlink(filler)
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 2.1.0")
        expect(c.cmd("RCPT TO:<bob@local.test>"), "250 2.1.5")
        expect(c.cmd("DATA"), "354 ")
        tok = token()
        c.send(th.dot_stuff(th.make_message(tok)))
        queued_id(c.reply())
    assert len(th.files_containing(srv.dir, tok)) == 1


# --- (d) graceful SIGTERM ------------------------------------------------

def test_sigterm_graceful(server_factory):
    srv = server_factory(["shutdown_grace = 10s"])
    pids = srv.pids()
    tok = token()
    msg = th.make_message(tok, size=4000)
    wire = th.dot_stuff(msg)
    idle = srv.connect()
    idle.ehlo()
    busy = srv.connect()
    busy.ehlo()
    expect(busy.cmd("MAIL FROM:<a@ext.test>"), "250 ")
    expect(busy.cmd("RCPT TO:<alice@local.test>"), "250 ")
    expect(busy.cmd("DATA"), "354 ")
    busy.send(wire[:1000])
    srv.signal(signal.SIGTERM)
    r = idle.reply()
    assert r.lines == ["421 4.3.2 %s Service shutting down" % th.HOSTNAME]
    assert idle.is_closed()
    idle.close()
    # the transaction in DATA may finish
    try:
        busy.send(wire[1000:])
        r = busy.reply(timeout=20)
    except (OSError, th.Closed) as e:
        r = e
    found = th.files_containing(srv.dir, tok)
    if isinstance(r, th.Reply) and r.code == 250:
        queued_id(r)
        assert len(found) == 1
        assert th.split_delivered(th.read(found[0]))[2] == msg
    else:
        assert isinstance(r, th.Reply) and r.code == 421, r
        assert found == []
    busy.close()
    assert srv.wait_exit(20) == 0, "exit status %s" % srv.returncode
    srv.intentionally_dead = True
    left = [p for p in pids if th._proc_stat(p) is not None and
            not th._is_zombie(p)]
    assert left == [], "processes left after exit: %r" % left
    with pytest.raises(OSError):
        socket.create_connection((th.LISTEN, srv.port), timeout=2).close()


def test_sigterm_grace_expires(server_factory):
    srv = server_factory(["shutdown_grace = 2s",
                          "smtp_timeout_data_block = 60s"])
    tok = token()
    with srv.connect() as c:
        c.open_data()
        c.send(b"Subject: " + tok.encode() + b"\r\n\r\nhalf")
        srv.signal(signal.SIGTERM)
        r = c.reply(timeout=20)
        assert r.code == 421, r
        assert c.is_closed()
    assert srv.wait_exit(20) == 0
    srv.intentionally_dead = True
    assert th.files_containing(srv.dir, tok) == []


# --- (e) SIGHUP reload ------------------------------------------------------

def rcpt_code(srv, addr):
    with srv.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        return c.cmd("RCPT TO:<%s>" % addr).code


def test_sighup_reloads_users_aliases_and_settings(server_factory):
    srv = server_factory()
    pid = srv.pid
    assert rcpt_code(srv, "dave@local.test") == 550
    open_session = srv.connect()
    open_session.ehlo()
    srv.user_add("dave@local.test", "dave-pw")
    srv.tegami("alias", "add", "crew@local.test", "dave@local.test",
               check=True)
    srv.tegami("user", "del", "carol@local.test", check=True)
    srv.append_config(["recipient_limit = 1"])
    srv.signal(signal.SIGHUP)
    th.wait_until(lambda: rcpt_code(srv, "dave@local.test") == 250,
                  what="dave to be known after SIGHUP")
    assert rcpt_code(srv, "crew@local.test") == 250
    th.wait_until(lambda: rcpt_code(srv, "carol@local.test") == 550,
                  what="carol to be gone after SIGHUP")
    assert srv.alive() and srv.pid == pid
    tok = token()
    with srv.connect() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<a@ext.test>"), "250 ")
        expect(c.cmd("RCPT TO:<crew@local.test>"), "250 2.1.5")
        expect(c.cmd("RCPT TO:<alice@local.test>"), "452 4.5.3")
        expect(c.cmd("DATA"), "354 ")
        c.send(th.dot_stuff(th.make_message(tok)))
        queued_id(c.reply())
    found = th.files_containing(srv.dir, tok)
    assert len(found) == 1 and "/dave/new/" in found[0]
    # the session opened before the reload still works
    expect(open_session.cmd("MAIL FROM:<a@ext.test>"), "250 ")
    expect(open_session.cmd("RCPT TO:<alice@local.test>"), "250 ")
    open_session.close()


def test_kill9_at_each_stage_of_one_transaction(server_factory):
    # security-tests.md 46 (a)-(c), each stage on purpose rather than by
    # chance: (a) half of DATA sent: nothing is delivered, nothing is left
    # behind; (b) the final dot sent but the reply not yet read: the message
    # is there or not, never partly; (c) after the 250: it is there, whole.
    srv = server_factory()
    for stage in ("a", "b", "c"):
        tok = b"KILLSTAGE-" + stage.encode()
        msg = th.dot_stuff(th.make_message(tok, size=100_000))
        c = th.SMTPConn(srv.port)
        try:
            c.open_data()
            if stage == "a":
                c.send(msg[:len(msg) // 2])
                # Wait until the server has taken the bytes in.
                time.sleep(0.3)
            elif stage == "b":
                c.send(msg)
            else:
                c.send(msg)
                expect(c.reply(), "250 2.0.0")
            srv.kill9_group()
        finally:
            c.close()
        files = th.files_containing(srv.dir, tok)
        if stage == "a":
            assert files == []
        elif stage == "c":
            assert len(files) == 1
        assert len(files) <= 1
        for f in files:
            # Whole: the body as sent, after the trace headers.
            assert th.read(f).endswith(th.make_message(tok, size=100_000))
        # No spool file survives a crash (unnamed O_TMPFILE files vanish;
        # named ones are removed at the next start).
        srv.start()
        assert os.listdir(os.path.join(srv.dir, "queue", "incoming")) == []
        r, qid = th.send_message(srv.port, "a@ext.test",
                                 ["alice@local.test"],
                                 th.make_message(b"AFTER-" + tok))
        expect(r["end"], "250 2.0.0")
