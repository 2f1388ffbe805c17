# The command line: tegami init, config check, user and alias management,
# and how serve refuses a bad configuration (errors name FILE:LINE).
import ctypes
import os
import pwd
import re
import shutil
import stat

import pytest

import tegami_harness as th

KNOWN_KEYS = [
    "message_size_limit", "recipient_limit", "max_connections",
    "max_connections_per_ip", "smtp_error_limit", "smtp_greeting_delay_ms",
    "smtp_timeout_command", "smtp_timeout_data_block", "smtp_data_deadline",
    "shutdown_grace", "alias_depth_max", "min_free_space", "workers",
    "disk_threads", "user",
]

_libcrypt = ctypes.CDLL("libcrypt.so.1")
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]


def crypt_verify(password, hashed):
    out = _libcrypt.crypt(password.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


@pytest.fixture
def parent():
    d = th.make_state_parent()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def init(parent, *extra, domain="local.test", base=None):
    d = os.path.join(parent, "state")
    args = ["init", "--dir", d, "--domain", domain, "--hostname",
            th.HOSTNAME, "--listen", th.LISTEN, "--port-base",
            str(base or th.find_port_base())] + list(extra)
    return d, th.run_tegami(args)


def conf_lines(conf):
    with open(conf) as f:
        return f.read().split("\n")


def test_no_arguments_and_unknown_command_are_usage_errors():
    p = th.run_tegami([])
    assert p.returncode == 2
    assert b"usage" in p.stderr
    p = th.run_tegami(["frobnicate"])
    assert p.returncode == 2
    assert b"frobnicate" in p.stderr


def test_missing_config_file_is_named(parent):
    missing = os.path.join(parent, "nope.conf")
    p = th.run_tegami(["config", "check"], conf=missing)
    assert p.returncode == 1
    assert missing.encode() in p.stderr


def test_init_creates_files_with_safe_modes(parent):
    d, p = init(parent)
    assert p.returncode == 0, p.stderr
    st = os.stat(d)
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_mode & 0o022 == 0, oct(st.st_mode)
    conf = os.path.join(d, "tegami.conf")
    for name in ("tegami.conf", "users", "aliases"):
        st = os.lstat(os.path.join(d, name))
        assert stat.S_ISREG(st.st_mode), name
        # nobody but the owner (and the group for reading) may touch them
        assert st.st_mode & 0o022 == 0, (name, oct(st.st_mode))
    # the users file holds password hashes: no access for others
    st = os.stat(os.path.join(d, "users"))
    assert st.st_mode & 0o007 == 0, oct(st.st_mode)
    for name in ("mail", "queue"):
        st = os.lstat(os.path.join(d, name))
        assert stat.S_ISDIR(st.st_mode), name
        assert st.st_mode & 0o002 == 0, (name, oct(st.st_mode))
    text = open(conf).read()
    # every setting is documented in the sample (commented out if unset)
    for key in KNOWN_KEYS:
        assert re.search(r"(?m)^#?\s*%s\s*=" % key, text), key
    # the values given to init are set, uncommented
    assert re.search(r"(?m)^hostname\s*=\s*mail\.local\.test\s*$", text)
    assert re.search(r"(?m)^port_base\s*=\s*\d+\s*$", text)
    assert re.search(r"(?m)^\w+\s*=.*local\.test", text)
    p = th.run_tegami(["config", "check"], conf=conf)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == conf + ": ok"


def test_init_refuses_to_overwrite(parent):
    d, p = init(parent)
    assert p.returncode == 0, p.stderr
    conf = os.path.join(d, "tegami.conf")
    before = th.read(conf)
    d2, p = init(parent, domain="other.test")
    assert d2 == d
    assert p.returncode != 0
    assert p.stderr.strip() != b""
    assert th.read(conf) == before


@pytest.mark.parametrize("domain", [
    "bad domain", "-bad.test", "local..test", "", "a@b.test", ".local.test",
    "x" * 64 + ".test", "local.test/../x", "l\u00f6cal;rm -rf.test",
])
def test_init_refuses_bad_domain(parent, domain):
    d, p = init(parent, domain=domain)
    assert p.returncode != 0, "init accepted domain %r" % domain
    assert p.stderr.strip() != b""
    assert not os.path.exists(os.path.join(d, "tegami.conf"))


@pytest.fixture
def fresh(parent):
    d, p = init(parent)
    assert p.returncode == 0, p.stderr
    return os.path.join(d, "tegami.conf")


@pytest.mark.parametrize("bad", [
    ["no_such_key = 1"],
    ["recipient_limit = banana"],
    ["recipient_limit = -1"],
    ["message_size_limit = 12Q"],
    ["smtp_timeout_command = 99999999999999999999999"],
    ["recipient_limit = 50", "recipient_limit = 60"],   # repeated key
    ["hostname = other.local.test"],      # init already set it
    ["this line has no equals sign"],
])
def test_config_error_names_file_and_line(fresh, bad):
    n_before = len(conf_lines(fresh))
    with open(fresh) as f:
        text = f.read()
    if not text.endswith("\n"):
        text += "\n"
    nlines = text.count("\n")
    with open(fresh, "w") as f:
        f.write(text + "\n".join(bad) + "\n")
    bad_line = nlines + len(bad)        # the last appended line is wrong
    assert n_before >= 1
    want = ("%s:%d" % (fresh, bad_line)).encode()
    p = th.run_tegami(["config", "check"], conf=fresh)
    assert p.returncode != 0
    assert want in p.stderr, p.stderr
    # serve must refuse at once too, naming the same place
    p = th.run_tegami(["serve"], conf=fresh, timeout=th.HANG)
    assert p.returncode != 0
    assert want in p.stderr, p.stderr


def test_config_check_accepts_every_documented_key(fresh):
    with open(fresh, "a") as f:
        f.write("message_size_limit = 1M\nrecipient_limit = 50\n"
                "max_connections = 100\nmax_connections_per_ip = 10\n"
                "smtp_error_limit = 10\nsmtp_greeting_delay_ms = 0\n"
                "smtp_timeout_command = 5s\nsmtp_timeout_data_block = 60\n"
                "smtp_data_deadline = 600\nshutdown_grace = 5\n"
                "alias_depth_max = 5\nmin_free_space = 1M\nworkers = 1\n"
                "disk_threads = 2\nuser = tegami\n")
    p = th.run_tegami(["config", "check"], conf=fresh)
    assert p.returncode == 0, p.stderr


def test_user_add_list_del(fresh):
    users = os.path.join(os.path.dirname(fresh), "users")
    pw = "correct horse battery staple"
    p = th.run_tegami(["user", "add", "Dave@Local.Test", "--password-stdin"],
                      conf=fresh, input=pw + "\n")
    assert p.returncode == 0, p.stderr
    p = th.run_tegami(["user", "add", "erin@local.test", "--password-stdin"],
                      conf=fresh, input="erin-pw\n")
    assert p.returncode == 0, p.stderr
    content = th.read(users).decode()
    assert pw not in content and "erin-pw" not in content
    entries = {}
    for line in content.splitlines():
        if line.strip() and not line.startswith("#"):
            addr, h = line.split(":", 1)
            entries[addr] = h
    assert set(entries) == {"dave@local.test", "erin@local.test"}
    assert entries["dave@local.test"].startswith("$y$")
    assert entries["erin@local.test"].startswith("$y$")
    # the hash is of the password without the newline
    assert crypt_verify(pw, entries["dave@local.test"])
    assert not crypt_verify(pw + "\n", entries["dave@local.test"])
    assert crypt_verify("erin-pw", entries["erin@local.test"])
    # salts differ even for the same scheme
    assert entries["dave@local.test"] != entries["erin@local.test"]

    p = th.run_tegami(["user", "list"], conf=fresh)
    assert p.returncode == 0, p.stderr
    listed = p.stdout.decode()
    assert "dave@local.test" in listed and "erin@local.test" in listed
    assert "$y$" not in listed and pw not in listed

    p = th.run_tegami(["user", "del", "dave@local.test"], conf=fresh)
    assert p.returncode == 0, p.stderr
    p = th.run_tegami(["user", "list"], conf=fresh)
    assert "dave@local.test" not in p.stdout.decode()
    assert "erin@local.test" in p.stdout.decode()
    assert "dave@local.test" not in th.read(users).decode()
    # deleting someone who does not exist is an error
    p = th.run_tegami(["user", "del", "nobody@local.test"], conf=fresh)
    assert p.returncode != 0
    assert p.stderr.strip() != b""
    # no temp or lock litter that holds hashes readable by others
    for name in os.listdir(os.path.dirname(fresh)):
        path = os.path.join(os.path.dirname(fresh), name)
        if os.path.isfile(path) and "$y$" in th.read(path).decode(
                "latin-1"):
            assert os.stat(path).st_mode & 0o007 == 0, name


@pytest.mark.parametrize("addr", ["no-at-sign", "a@b@local.test",
                                  "al ice@local.test", "alice+tag@local.test",
                                  "a%b@local.test", ""])
def test_user_add_refuses_bad_address(fresh, addr):
    users = os.path.join(os.path.dirname(fresh), "users")
    before = th.read(users)
    p = th.run_tegami(["user", "add", addr, "--password-stdin"], conf=fresh,
                      input="pw\n")
    assert p.returncode != 0, addr
    assert p.stderr.strip() != b""
    assert th.read(users) == before


def test_alias_add_list_del(fresh):
    aliases = os.path.join(os.path.dirname(fresh), "aliases")
    p = th.run_tegami(["alias", "add", "Staff@Local.Test", "alice@local.test",
                       "BOB@local.test"], conf=fresh)
    assert p.returncode == 0, p.stderr
    p = th.run_tegami(["alias", "add", "team@local.test", "staff@local.test"],
                      conf=fresh)
    assert p.returncode == 0, p.stderr
    p = th.run_tegami(["alias", "list"], conf=fresh)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    line = [l for l in out.splitlines() if l.startswith("staff@local.test")]
    assert len(line) == 1, out
    assert "alice@local.test" in line[0] and "bob@local.test" in line[0]
    assert "team@local.test" in out
    text = th.read(aliases).decode()
    assert re.search(r"(?m)^staff@local\.test:\s*alice@local\.test,\s*"
                     r"bob@local\.test\s*$", text), text
    p = th.run_tegami(["alias", "del", "staff@local.test"], conf=fresh)
    assert p.returncode == 0, p.stderr
    p = th.run_tegami(["alias", "list"], conf=fresh)
    assert "staff@local.test:" not in p.stdout.decode()
    assert "team@local.test" in p.stdout.decode()
    p = th.run_tegami(["alias", "del", "staff@local.test"], conf=fresh)
    assert p.returncode != 0


def test_serve_with_missing_system_user_fails_clearly(fresh):
    name = "tg_no_such_user"
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    with open(fresh, "a") as f:
        f.write("user = %s\n" % name)
    p = th.run_tegami(["serve"], conf=fresh, timeout=th.HANG)
    assert p.returncode != 0
    assert name.encode() in p.stderr, p.stderr
