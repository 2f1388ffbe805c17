# `tegami user passwd|lock|unlock|send-as|import|list` and `tegami queue
# list` driven through the built binary on a fresh `tegami init` state
# directory: hashes checked with libcrypt's crypt(3), Dovecot passwd-files
# made by doveadm, file modes and owners checked after every edit.
import ctypes
import grp
import os
import pwd
import re
import shutil
import subprocess
import time

import pytest

import tegami_harness as th

_libcrypt = ctypes.CDLL("libcrypt.so.1")
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libcrypt.crypt_gensalt.restype = ctypes.c_char_p
_libcrypt.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                    ctypes.c_char_p, ctypes.c_int]

DOVEADM = shutil.which("doveadm")
SCHEME_PREFIX = {"SHA512-CRYPT": b"$6$", "BLF-CRYPT": b"$2y$"}


def crypt_verify(password, hashed):
    out = _libcrypt.crypt(password.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


def dovecot_hash(scheme, password):
    """"{SCHEME}hash" as Dovecot's `doveadm pw` makes it (libcrypt when
    doveadm is not installed)."""
    if DOVEADM:
        p = subprocess.run([DOVEADM, "pw", "-s", scheme, "-p", password],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, check=True)
        return p.stdout.decode().strip()
    setting = _libcrypt.crypt_gensalt(SCHEME_PREFIX[scheme], 0, None, 0)
    return "{%s}%s" % (scheme, _libcrypt.crypt(password.encode(),
                                               setting).decode())


@pytest.fixture
def state():
    parent = th.make_state_parent()
    d = os.path.join(parent, "state")
    p = th.run_tegami(["init", "--dir", d, "--domain", th.DOMAIN,
                       "--hostname", th.HOSTNAME, "--listen", th.LISTEN,
                       "--port-base", "30000", "--no-ca"])
    assert p.returncode == 0, p.stderr
    yield d
    shutil.rmtree(parent, ignore_errors=True)


def tegami(state, *args, input=None):
    return th.run_tegami(list(args), conf=os.path.join(state, "tegami.conf"),
                         input=input)


def ok(p):
    assert p.returncode == 0, (p.args, p.stdout, p.stderr)
    return p.stdout.decode()


def users_path(state):
    return os.path.join(state, "users")


def entries(state):
    """address -> (hash field, options) of the users file."""
    out = {}
    for line in th.read(users_path(state)).decode().splitlines():
        if line.strip() and not line.startswith("#"):
            fields = line.split(":")
            out[fields[0]] = (fields[1], fields[2] if len(fields) > 2
                              else None)
    return out


def owner_mode(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, st.st_mode & 0o7777


def add(state, address, password):
    ok(tegami(state, "user", "add", address, "--password-stdin",
              input=password + "\n"))


def test_passwd_changes_the_hash(state):
    add(state, "alice@local.test", "old-Secret-1")
    add(state, "bob@local.test", "bob-Secret-2")
    before = entries(state)
    p = tegami(state, "user", "passwd", "Alice@Local.Test",
               "--password-stdin", input="new-Secret-3\n")
    ok(p)
    assert b"Secret" not in p.stdout + p.stderr
    after = entries(state)
    h = after["alice@local.test"][0]
    assert h.startswith("$y$") and h != before["alice@local.test"][0]
    assert crypt_verify("new-Secret-3", h)
    assert not crypt_verify("old-Secret-1", h)
    # bob's line is untouched
    assert after["bob@local.test"] == before["bob@local.test"]
    assert b"new-Secret-3" not in th.read(users_path(state))

    # no terminal and no --password-stdin: told what to do, nothing changes
    p = tegami(state, "user", "passwd", "alice@local.test", input="x\n")
    assert p.returncode == 2
    assert b"--password-stdin" in p.stderr
    p = tegami(state, "user", "passwd", "nobody@local.test",
               "--password-stdin", input="x\n")
    assert p.returncode == 1
    assert b"no such user: nobody@local.test" in p.stderr
    p = tegami(state, "user", "passwd", "alice@local.test",
               "--password-stdin", input="\n")
    assert p.returncode == 1
    assert entries(state) == after


def test_lock_unlock_restores_the_hash_byte_for_byte(state):
    add(state, "alice@local.test", "alice-Secret-1")
    add(state, "bob@local.test", "bob-Secret-2")
    original = th.read(users_path(state))
    h = entries(state)["alice@local.test"][0]

    ok(tegami(state, "user", "lock", "alice@local.test"))
    assert entries(state)["alice@local.test"][0] == "!" + h
    assert ok(tegami(state, "user", "list")) == (
        "alice@local.test locked\nbob@local.test\n")
    # twice is the same as once
    locked = th.read(users_path(state))
    ok(tegami(state, "user", "lock", "ALICE@local.test"))
    assert th.read(users_path(state)) == locked

    ok(tegami(state, "user", "unlock", "alice@local.test"))
    assert th.read(users_path(state)) == original
    ok(tegami(state, "user", "unlock", "alice@local.test"))
    assert th.read(users_path(state)) == original
    assert crypt_verify("alice-Secret-1", entries(state)["alice@local.test"][0])

    # passwd on a locked account keeps it locked, and says so
    ok(tegami(state, "user", "lock", "bob@local.test"))
    p = tegami(state, "user", "passwd", "bob@local.test", "--password-stdin",
               input="bob-Secret-3\n")
    ok(p)
    assert b"stays locked" in p.stderr
    field = entries(state)["bob@local.test"][0]
    assert field.startswith("!$y$")
    assert crypt_verify("bob-Secret-3", field[1:])
    ok(tegami(state, "user", "unlock", "bob@local.test"))
    assert crypt_verify("bob-Secret-3", entries(state)["bob@local.test"][0])

    p = tegami(state, "user", "lock", "nobody@local.test")
    assert p.returncode == 1
    assert b"no such user" in p.stderr


def test_send_as_and_list(state):
    add(state, "alice@local.test", "alice-Secret-1")
    add(state, "bob@local.test", "bob-Secret-2")
    h = entries(state)["alice@local.test"][0]
    ok(tegami(state, "user", "send-as", "alice@local.test", "@Shared.Test",
              "Boss@Local.Test", "*", "@shared.test"))
    assert entries(state)["alice@local.test"] == (
        h, "send_as=@shared.test,send_as=boss@local.test,send_as=*")
    ok(tegami(state, "user", "lock", "bob@local.test"))
    assert ok(tegami(state, "user", "list")) == (
        "alice@local.test send-as=@shared.test,boss@local.test,*\n"
        "bob@local.test locked\n")
    # a bad pattern changes nothing
    before = th.read(users_path(state))
    p = tegami(state, "user", "send-as", "alice@local.test", "x@local.test",
               "nodomain")
    assert p.returncode == 1
    assert b"bad send-as pattern 2" in p.stderr
    assert th.read(users_path(state)) == before
    # no patterns: cleared, the line as it was before any
    ok(tegami(state, "user", "send-as", "alice@local.test"))
    assert entries(state)["alice@local.test"] == (h, None)
    assert ok(tegami(state, "user", "list")) == (
        "alice@local.test\nbob@local.test locked\n")
    p = tegami(state, "user", "send-as")
    assert p.returncode == 2
    assert b"send-as ADDRESS [PATTERN...]" in p.stderr


def test_import_dovecot_passwd_file(state):
    add(state, "alice@local.test", "alice-Secret-1")
    sha = dovecot_hash("SHA512-CRYPT", "dave-Secret-4")
    blf = dovecot_hash("BLF-CRYPT", "erin-Secret-5")
    assert sha.startswith("{SHA512-CRYPT}$6$"), sha
    assert blf.startswith("{BLF-CRYPT}$2"), blf
    imp = os.path.join(os.path.dirname(state), "dovecot-users")
    good = ("# from dovecot\n"
            "dave@local.test:%s:1000:1000::/home/dave::"
            "userdb_quota_rule=*:storage=1G\n"
            "erin:%s\n" % (sha, blf))
    with open(imp, "w") as f:
        f.write(good + "frank:{PLAIN}frank-Secret-6::::::\n")
    before = th.read(users_path(state))
    before_om = owner_mode(users_path(state))

    # one line that cannot be imported: nothing is
    p = tegami(state, "user", "import", imp, "--domain", th.DOMAIN)
    assert p.returncode == 1
    assert ("%s:4: scheme PLAIN cannot be imported; the user must set a new "
            "password" % imp).encode() in p.stderr
    assert b"frank-Secret-6" not in p.stderr + p.stdout
    assert th.read(users_path(state)) == before
    assert owner_mode(users_path(state)) == before_om

    # a name without a domain needs --domain
    with open(imp, "w") as f:
        f.write(good)
    p = tegami(state, "user", "import", imp)
    assert p.returncode == 1
    assert b":3: user name \"erin\" has no @domain" in p.stderr
    assert th.read(users_path(state)) == before

    p = tegami(state, "user", "import", imp, "--domain", th.DOMAIN)
    assert ok(p) == "imported 2 users from %s\n" % imp
    e = entries(state)
    assert e["dave@local.test"] == (sha[len("{SHA512-CRYPT}"):], None)
    assert e["erin@local.test"] == (blf[len("{BLF-CRYPT}"):], None)
    assert crypt_verify("dave-Secret-4", e["dave@local.test"][0])
    assert crypt_verify("erin-Secret-5", e["erin@local.test"][0])
    assert th.read(users_path(state)).startswith(before)
    assert owner_mode(users_path(state)) == before_om
    # running it again is harmless
    after = th.read(users_path(state))
    assert ok(tegami(state, "user", "import", imp, "--domain", th.DOMAIN)) == (
        "imported 0 users from %s\n" % imp)
    assert th.read(users_path(state)) == after
    # the same address with another hash is refused
    with open(imp, "w") as f:
        f.write("dave:%s\n" % dovecot_hash("SHA512-CRYPT", "other"))
    p = tegami(state, "user", "import", imp, "--domain", th.DOMAIN)
    assert p.returncode == 1
    assert b"user dave@local.test already exists" in p.stderr
    # a domain that is not ours
    with open(imp, "w") as f:
        f.write("x@elsewhere.test:%s\n" % sha)
    p = tegami(state, "user", "import", imp)
    assert p.returncode == 1
    assert b"x@elsewhere.test: the domain is not one of the domains" in \
        p.stderr
    assert th.read(users_path(state)) == after
    assert ok(tegami(state, "user", "list")) == (
        "alice@local.test\ndave@local.test\nerin@local.test\n")


def test_mode_and_owner_kept_after_every_edit(state):
    users = users_path(state)
    add(state, "alice@local.test", "alice-Secret-1")
    nobody = pwd.getpwnam("nobody").pw_uid
    group = grp.getgrnam("tegami").gr_gid
    os.chown(users, nobody, group)
    os.chmod(users, 0o604)
    want = (nobody, group, 0o604)
    imp = os.path.join(os.path.dirname(state), "dovecot-users")
    with open(imp, "w") as f:
        f.write("imp:%s\n" % dovecot_hash("SHA512-CRYPT", "imp-Secret"))
    edits = [
        ("user", "passwd", "alice@local.test", "--password-stdin"),
        ("user", "lock", "alice@local.test"),
        ("user", "unlock", "alice@local.test"),
        ("user", "send-as", "alice@local.test", "*"),
        ("user", "send-as", "alice@local.test"),
        ("user", "import", imp, "--domain", th.DOMAIN),
        ("user", "add", "bob@local.test", "--password-stdin"),
        ("user", "del", "bob@local.test"),
    ]
    for args in edits:
        ok(tegami(state, *args, input="a-Secret-2\n"))
        assert owner_mode(users) == want, args
    assert not [n for n in os.listdir(state) if ".tmp." in n]
    assert sorted(entries(state)) == ["alice@local.test", "imp@local.test"]


def test_usage_lists_the_new_commands(state):
    p = tegami(state, "user")
    assert p.returncode == 2
    for cmd in (b"user passwd ADDRESS", b"user lock ADDRESS",
                b"user unlock ADDRESS", b"user send-as ADDRESS",
                b"user import FILE [--domain DOMAIN]"):
        assert cmd in p.stderr, cmd
    p = th.run_tegami(["--help"])
    assert p.returncode == 0
    assert b"queue list" in p.stdout and b"user lock|unlock" in p.stdout
    for args in (("queue",), ("queue", "list", "x"), ("queue", "frob"),
                 ("queue", "show"), ("queue", "flush", "A" * 16, "x")):
        p = tegami(state, *args)
        assert p.returncode == 2, args
        assert b"usage: tegami [-c CONF] queue list" in p.stderr
        assert b"queue flush [ID]" in p.stderr


ENV = ("version 1\nqueue-id {id}\nsender <{sender}>\n" +
       "{rcpts}")


def put(qdir, qid, msg=None, env=None, age=0):
    now = time.time()
    for ext, body in (("msg", msg), ("env", env)):
        if body is None:
            continue
        path = os.path.join(qdir, "%s.%s" % (qid, ext))
        with open(path, "wb") as f:
            f.write(body.encode() if isinstance(body, str) else body)
        os.utime(path, (now - age, now - age))


def envelope(qid, sender, *rcpts):
    return ENV.format(id=qid, sender=sender, rcpts="".join(
        "recipient <%s>\n" % r for r in rcpts))


def test_queue_list(state):
    qdir = os.path.join(state, "queue")
    assert ok(tegami(state, "queue", "list")) == "queue is empty\n"

    # the spool and other directories are not the queue
    os.makedirs(os.path.join(qdir, "incoming"))
    with open(os.path.join(qdir, "incoming", "0000000000000009.msg"),
              "w") as f:
        f.write("spooling\n")
    os.makedirs(os.path.join(qdir, "000000000000000A.msg"))
    assert ok(tegami(state, "queue", "list")) == "queue is empty\n"

    a, b, c, d, e = ("A" * 16, "B" * 16, "C" * 16, "D" * 16, "E" * 16)
    put(qdir, a, msg="x" * 1234, age=90061,
        env=envelope(a, "alice@local.test", "bob@remote.test",
                     "Carol@Other.Example"))
    put(qdir, b, msg="y" * 10, age=3661, env=envelope(b, "", "x@remote.test"))
    put(qdir, c, msg="z" * 5, age=125)              # no envelope
    put(qdir, d, msg="w", age=30, env="version 2\nsender <a@b>\n")
    put(qdir, e, env=envelope(e, "a@local.test", "x@remote.test"), age=1)
    # version 2, as the queue process rewrites it after an attempt
    v2 = "1" * 16
    put(qdir, v2, msg="v", age=20, env=(
        "version 2\nqueue-id %s\ncreated %d\nsender a+2Bb@local.test\n"
        "smtputf8 no\nbody 7bit\nattempts 2\nnext-attempt 0\nwarned no\n"
        "recipient p@remote.test pending 1000000000 mx.remote.test 4.4.1 "
        "%s\n"
        "recipient d@remote.test delivered 1000000000 mx.remote.test 2.0.0 "
        "250+20ok\n"
        "recipient f@remote.test failed 1000000000 - 5.1.1 -\n" % (
            v2, int(time.time()) - 20, "x" * 199 + "y+1B[z")))
    os.symlink(os.path.join(qdir, a + ".msg"),
               os.path.join(qdir, "F" * 16 + ".msg"))
    with open(os.path.join(qdir, "notes.txt"), "w") as f:
        f.write("not a queue file\n")
    put(qdir, "stray\x1b" + "x" * 70, msg="s", age=0)

    out = ok(tegami(state, "queue", "list"))
    when = (r"last attempt 2001-09-0[89] \d\d:\d\d:\d\d [+-]\d{4} "
            r"\(\d+d\d\dh ago\)")
    want = [  # oldest first
        r"A{16}  size 1234  age 1d01h  attempts 0  next attempt now\n"
        r"  sender <alice@local.test>\n"
        r"  recipient <bob@remote.test> pending\n"
        r"  recipient <Carol@Other.Example> pending",
        r"B{16}  size 10  age 1h01m  attempts 0  next attempt now\n"
        r"  sender <>\n"
        r"  recipient <x@remote.test> pending",
        r"C{16}  size 5  age 2m0[5-9]s\n"
        r"  envelope missing \(no \.env file\)",
        r"D{16}  size 1  age \d+s\n"
        r"  envelope malformed: line 3: missing queue-id",
        r"1{16}  size 1  age (19|2\d)s  attempts 2  next attempt now\n"
        r"  sender <a\+b@local.test>\n"
        r"  recipient <p@remote.test> pending  " + when +
        r"  remote mx.remote.test  status 4.4.1  \"x{199}y\.\.\.\"\n"
        r"  recipient <d@remote.test> delivered  " + when +
        r"  remote mx.remote.test  status 2.0.0  \"250 ok\"\n"
        r"  recipient <f@remote.test> failed  " + when + r"  status 5.1.1",
        r"E{16}  message file missing  age \d+s  attempts 0  next attempt "
        r"now\n"
        r"  sender <a@local.test>\n"
        r"  recipient <x@remote.test> pending",
        # a name tegami does not make is shown, safely and shortened
        r"stray\?x{58}\.\.\. \(not a tegami queue id\)  size 1  age \d+s\n"
        r"  envelope missing \(no \.env file\)",
        r"6 messages\n",
    ]
    blocks = out.split("\n\n")
    assert len(blocks) == len(want), out
    for block, pattern in zip(blocks, want):
        assert re.fullmatch(pattern, block), (pattern, block)
    assert "\x1b" not in out
    assert "F" * 16 not in out and "notes" not in out
    assert "0000000000000009" not in out

    # envelopes that are not what tegami writes are named, never a crash
    # (the reasons are queue_envelope_load's)
    qd = "version 1\nqueue-id " + d + "\n"
    bad = {
        "": "line 1: empty envelope",
        "version 1\nsender <a@b>\n": "line 3: missing queue-id",
        qd + "sender <a@b>\n": "line 4: no recipient",
        qd + "recipient <a@b>\n": "line 4: missing sender",
        qd + "sender <a@b>\nrecipient <c@d>": "line 4: line without its LF",
        "version 1\nqueue-id 0123456789ABCDEF\nsender <a@b>\n"
        "recipient <c@d>\n": "queue-id 0123456789ABCDEF does not match the "
        "file name",
        qd + "sender <a@b>\nsender <a@b>\nrecipient <c@d>\n":
            "line 4: repeated sender",
        qd + "sender a@b\nrecipient <c@d>\n": "line 3: sender not in <>",
        qd + "sender <a@b>\x00\nrecipient <c@d>\n": "line 3: NUL byte",
        "\xff\xfe garbage": "line 1: line without its LF",
        # keys a version 1 file never had are refused, not half-read
        qd + "sender <a@b>\nrecipient <c@d>\nretry-count 3\n":
            "line 5: unknown key",
        "version 3\n": "line 1: unsupported version",
    }
    for env, why in bad.items():
        put(qdir, d, env=env.encode("latin-1"))
        out = ok(tegami(state, "queue", "list"))
        assert "  envelope malformed: %s\n" % why in out, (env, out)
    # odd bytes are shown as '?'
    put(qdir, d, env=b"version 1\nqueue-id " + d.encode() +
        b"\nsender <a\x1b[31m@b>\nrecipient <c@d>\n")
    out = ok(tegami(state, "queue", "list"))
    assert "  sender <a?[31m@b>\n  recipient <c@d> pending\n" in out
    assert "\x1b" not in out
    # a huge envelope is refused without reading it (a sparse file)
    put(qdir, d, env=b"")
    os.truncate(os.path.join(qdir, d + ".env"), 17 << 20)
    assert "envelope malformed: over 16777216 bytes" in ok(
        tegami(state, "queue", "list"))

    for n in os.listdir(qdir):
        if n.endswith((".msg", ".env")) and not os.path.isdir(
                os.path.join(qdir, n)):
            os.unlink(os.path.join(qdir, n))
    put(qdir, a, msg="m", env=envelope(a, "a@local.test", "b@remote.test"))
    assert ok(tegami(state, "queue", "list")).endswith("\n\n1 message\n")
    os.unlink(os.path.join(qdir, a + ".msg"))
    os.unlink(os.path.join(qdir, a + ".env"))
    assert ok(tegami(state, "queue", "list")) == "queue is empty\n"

    # no queue directory is an error, not an empty queue
    shutil.rmtree(qdir)
    p = tegami(state, "queue", "list")
    assert p.returncode == 1
    assert b"queue: No such file or directory" in p.stderr
