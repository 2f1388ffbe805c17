# Helpers for the tegami integration suite: create a state directory with
# `tegami init`, start and stop `tegami serve` by PID, a raw SMTP socket
# client that sends exact bytes (RFC 5321 replies parsed strictly), Maildir
# reading, process memory sampling and strace capture; TLS to the
# submission ports (RFC 8314, RFC 3207) verified against the root that
# `tegami ca export` gives, and SMTP AUTH (RFC 4954) helpers.
import base64
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

TEGAMI_BIN = os.environ.get("TEGAMI_BIN", "/work/main/build/tegami")
DOMAIN = "local.test"
HOSTNAME = "mail.local.test"
LISTEN = "127.0.0.1"

# Accounts every server gets unless a test asks otherwise.
DEFAULT_USERS = {
    "alice@local.test": "alice-Secret-1",
    "bob@local.test": "bob-Secret-2",
    "carol@local.test": "carol-Secret-3",
}
DEFAULT_ALIASES = {
    "postmaster@local.test": ["alice@local.test"],
    "staff@local.test": ["alice@local.test", "bob@local.test"],
    # nested: all -> staff -> alice, bob; plus carol
    "all@local.test": ["staff@local.test", "carol@local.test"],
    "loop1@local.test": ["loop2@local.test"],
    "loop2@local.test": ["loop1@local.test"],
}

PROBE_SOURCE = "127.0.0.254"

# Bound for anything that should happen "at once" (catches hangs only).
HANG = 10.0

_used_bases = set()
_bases_lock = threading.Lock()
# Below the kernel's ephemeral range (32768-60999): an outgoing connection
# of any test may otherwise hold base+110 or base+995 by chance.
PORT_BASES = list(range(10000, 32000, 1000))
# Every port a server binds relative to its base (smtp, submission,
# submissions, pop3, pop3s).
SERVICE_PORTS = (25, 587, 465, 110, 995)

# Every server started and not yet cleaned up; conftest attaches their log
# tails to failing test reports and kills them at exit.
ACTIVE_SERVERS = []
# tmpfs mount points a test has mounted and not yet unmounted.
MOUNTS = []


def _port_free(port, reuse=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LISTEN, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _ports_free(base, reuse):
    return all(_port_free(base + port, reuse=reuse) for port in SERVICE_PORTS)


def find_port_base():
    """A base in 10000..31000 (step 1000) whose service ports are all free."""
    with _bases_lock:
        start = random.randrange(len(PORT_BASES))
        order = PORT_BASES[start:] + PORT_BASES[:start]
        for reuse in (False, True):
            for base in order:
                if base in _used_bases and not reuse:
                    continue
                if _ports_free(base, reuse):
                    _used_bases.add(base)
                    return base
    raise RuntimeError("no free port base in 10000..31000")


def read_text(path):
    """A log file's text so far ("" while it does not exist)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def stop_process(proc, timeout=HANG):
    """SIGTERM, then SIGKILL if proc is still there after timeout."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def run_tegami(args, conf=None, input=None, timeout=60, check=False):
    """Runs the binary once; returns CompletedProcess with bytes output."""
    cmd = [TEGAMI_BIN]
    if conf is not None:
        cmd += ["-c", conf]
    cmd += list(args)
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        raise AssertionError("%r still running after %s s (killed)\n"
                             "stderr: %r" % (cmd, timeout, err[-2000:]))
    p = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and p.returncode != 0:
        raise AssertionError("%r exited %d\nstdout: %r\nstderr: %r" % (
            cmd, p.returncode, p.stdout, p.stderr))
    return p


def make_state_parent(root=None):
    """A fresh 0755 directory under /tmp (or root): the tegami user must
    traverse every parent of the state directory."""
    d = tempfile.mkdtemp(prefix="tegami-it-", dir=root or "/tmp")
    os.chmod(d, 0o755)
    return d


def ensure_system_user(name="tegami"):
    if subprocess.run(["id", name], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", name], check=True)


# The accounts `tegami serve` switches to when started as root: "tegami"
# (setting user) for the network-facing processes, "tegami-auth" (setting
# auth_user) for the auth process that alone reads the password hashes.
SYSTEM_USERS = ("tegami", "tegami-auth")
_system_users_made = False


def ensure_system_users():
    global _system_users_made
    if _system_users_made or os.geteuid() != 0:
        return
    for name in SYSTEM_USERS:
        ensure_system_user(name)
    _system_users_made = True


def _proc_stat(pid):
    """(ppid, pgid, sid, starttime) or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # fields after comm: state ppid pgrp session ... starttime is field 22
    return int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19])


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def descendants(root_pid):
    """root_pid and every process below it, or in its session/group."""
    stats = {}
    for pid in all_pids():
        st = _proc_stat(pid)
        if st is not None:
            stats[pid] = st
    found = {root_pid} if root_pid in stats else set()
    changed = True
    while changed:
        changed = False
        for pid, (ppid, pgid, sid, _) in stats.items():
            if pid in found:
                continue
            if ppid in found or sid == root_pid or pgid == root_pid:
                found.add(pid)
                changed = True
    return sorted(found)


def vmrss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssMonitor:
    """Samples VmRSS of every process of a server in the background; max_kb
    is the highest value seen for any single process."""

    def __init__(self, server, interval=0.05):
        self.server = server
        self.interval = interval
        self.max_kb = 0
        self.max_pid = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        for pid in self.server.pids():
            kb = vmrss_kb(pid)
            if kb is not None and kb > self.max_kb:
                self.max_kb, self.max_pid = kb, pid

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self.sample()
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)
        self.sample()
        return False


def server_env():
    """The environment for `tegami serve`. Under ASan, freed memory sits in
    a quarantine (256 MB by default) that would hide or fake a memory bound
    in the RSS checks; a small quarantine keeps use-after-free detection for
    recent frees and makes VmRSS mean what the server holds."""
    env = dict(os.environ)
    opts = env.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in opts:
        env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
            "quarantine_size_mb=16"
    return env


class TegamiServer:
    """One state directory and (optionally) one running `tegami serve`."""

    def __init__(self, extra_config=(), users=None, aliases=None,
                 parent_dir=None, log_path=None, domains=(DOMAIN,),
                 listen=LISTEN, hostname=HOSTNAME, port_base=None):
        """listen/hostname/port_base: another loopback address with the
        standard ports (port_base=0, as root) makes one of several mail
        servers that reach each other on port 25 (outbound tests)."""
        self.listen = listen
        self.hostname = hostname
        self.fixed_port_base = port_base
        self.parent_dir = parent_dir or make_state_parent()
        self.dir = os.path.join(self.parent_dir, "state")
        self.conf = os.path.join(self.dir, "tegami.conf")
        self.log_path = log_path or os.path.join(self.dir, "server.log")
        self.extra_config = list(extra_config)
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.aliases = dict(DEFAULT_ALIASES if aliases is None else aliases)
        self.domains = list(domains)
        self.base = None
        self.port = None
        self.proc = None
        self.returncode = None
        self.intentionally_dead = False
        self.failed = False
        self._log_file = None
        ACTIVE_SERVERS.append(self)

    # --- set-up -----------------------------------------------------
    def init(self):
        self.base = find_port_base() if self.fixed_port_base is None \
            else self.fixed_port_base
        self.port = self.base + 25
        args = ["init", "--dir", self.dir]
        for d in self.domains:
            args += ["--domain", d]
        args += ["--hostname", self.hostname, "--listen", self.listen,
                 "--port-base", str(self.base)]
        run_tegami(args, check=True)
        for addr, pw in self.users.items():
            self.user_add(addr, pw)
        for alias, targets in self.aliases.items():
            self.tegami("alias", "add", alias, *targets, check=True)
        if self.extra_config:
            self.append_config(self.extra_config)
        if not any(l.split("=")[0].strip() == "resolver"
                   for l in self.extra_config):
            # Never the system's resolver: a test's queue process asks a
            # loopback port where nothing answers (and fails at once).
            self.append_config(["resolver = 127.0.0.1@9"])
        return self

    def append_config(self, lines):
        with open(self.conf, "a") as f:
            for line in lines:
                f.write(line.rstrip("\n") + "\n")

    def tegami(self, *args, input=None, check=False, timeout=60):
        return run_tegami(args, conf=self.conf, input=input, check=check,
                          timeout=timeout)

    def user_add(self, addr, password):
        return self.tegami("user", "add", addr, "--password-stdin",
                           input=password + "\n", check=True)

    # --- process control -------------------------------------------
    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        ensure_system_users()
        self.returncode = None
        self.intentionally_dead = False
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [TEGAMI_BIN, "-c", self.conf, "serve"],
            stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=self._log_file, start_new_session=True,
            env=server_env())
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=HANG):
        """Until a client gets the 220 banner (bounded)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    "tegami serve exited with %d before accepting "
                    "connections\n%s" % (self.proc.returncode,
                                         self.log_tail()))
            try:
                # from an address no test uses, so that this probe never
                # counts against a per-IP limit a test is checking
                with socket.create_connection((self.listen, self.port),
                                              timeout=2,
                                              source_address=(PROBE_SOURCE,
                                                              0)) as s:
                    s.settimeout(max(0.1, deadline - time.monotonic()))
                    data = b""
                    while b"\r\n" not in data:
                        b = s.recv(4096)
                        if not b:
                            break
                        data += b
                    if data.startswith(b"220 "):
                        s.sendall(b"QUIT\r\n")
                        try:
                            while s.recv(4096):
                                pass
                        except OSError:
                            pass
                        if self._all_workers_ready():
                            return
                    last = data
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError("tegami did not accept SMTP on port %d within "
                             "%.0f s (last: %r)\n%s" % (
                                 self.port, timeout, last, self.log_tail()))

    def _all_workers_ready(self):
        """Every front worker of this start has logged that it is ready:
        one that is still starting would load files a test changes after
        the banner (certificates, accounts) and skew what it checks."""
        text = self.log_text()
        start = text.rfind("info: starting:")
        if start < 0:
            return False
        m = re.search(r"workers=(\d+)", text[start:])
        want = int(m.group(1)) if m else 1
        return text[start:].count("front ready") >= want

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        if self.proc is None:
            return []
        return descendants(self.proc.pid)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def kill9_group(self):
        """SIGKILL to the whole process group and every descendant."""
        self.intentionally_dead = True
        pids = self.pids()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(HANG)
        self.returncode = self.proc.returncode
        self._wait_gone(pids, HANG)
        self._close_log()

    def _wait_gone(self, pids, timeout):
        deadline = time.monotonic() + timeout
        left = list(pids)
        while left and time.monotonic() < deadline:
            left = [p for p in left if _proc_stat(p) is not None and
                    not _is_zombie(p)]
            if left:
                time.sleep(0.05)
        return left

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout; also stray children.
        Returns the exit status of the main process."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            pids = self.pids()
            self.intentionally_dead = True
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(HANG)
            left = self._wait_gone(pids, 5)
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.intentionally_dead = True
        self.returncode = self.proc.returncode
        self._close_log()
        return self.returncode

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self):
        self.stop()
        if self in ACTIVE_SERVERS:
            ACTIVE_SERVERS.remove(self)
        if not self.failed:
            shutil.rmtree(self.parent_dir, ignore_errors=True)

    # --- logs -------------------------------------------------------
    def log_text(self):
        return read_text(self.log_path)

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()
        return "---- %s (last %d lines) ----\n%s" % (
            self.log_path, min(n, len(lines)), "\n".join(lines[-n:]))

    def sanitizer_reports(self):
        t = self.log_text()
        return [l for l in t.splitlines()
                if "AddressSanitizer" in l or "runtime error:" in l or
                "LeakSanitizer" in l or "UndefinedBehaviorSanitizer" in l]

    def wait_log(self, pattern, timeout=HANG):
        """Waits until the log matches regex pattern; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("log never matched %r\n%s" % (
                    pattern, self.log_tail()))
            time.sleep(0.05)

    # --- mail -------------------------------------------------------
    def maildir(self, addr):
        local, domain = addr.split("@")
        return os.path.join(self.dir, "mail", domain, local)

    def new_files(self, addr):
        return maildir_files(self.maildir(addr), "new")

    def connect(self, **kw):
        kw.setdefault("host", self.listen)
        return SMTPConn(self.port, **kw)

    # --- submission (587 STARTTLS, 465 implicit TLS) ----------------
    @property
    def submission_port(self):
        return self.base + 587

    @property
    def submissions_port(self):
        return self.base + 465

    def root_pem(self):
        """The CA root clients must trust, from `tegami ca export --pem`
        (written once, beside the state directory)."""
        path = os.path.join(self.parent_dir, "root.pem")
        if not os.path.exists(path):
            self.tegami("ca", "export", "--pem", path, check=True)
        return path

    def tls_context(self):
        """A client context that trusts only this server's CA root and
        verifies the host name."""
        return client_tls_context(self.root_pem())

    def connect_submission(self, **kw):
        """Port 587, plaintext until starttls()."""
        kw.setdefault("host", self.listen)
        kw.setdefault("server_hostname", self.hostname)
        return SMTPConn(self.submission_port, **kw)

    def connect_submissions(self, **kw):
        """Port 465, TLS from the first byte, verified against the root."""
        kw.setdefault("tls_context", self.tls_context())
        kw.setdefault("host", self.listen)
        kw.setdefault("server_hostname", self.hostname)
        return SMTPConn(self.submissions_port, **kw)

    def submit(self, user, password, rcpts, msg, sender=None):
        """One message through port 465 with AUTH PLAIN as user, over
        DATA (msg ends in CRLF and is dot-stuffed here); MAIL FROM is
        sender, the user's own address when None ("" for <>). Returns
        the queue id."""
        with self.connect_submissions() as c:
            c.ehlo()
            expect(c.auth_plain(user, password), "235 2.7.0")
            expect(c.cmd("MAIL FROM:<%s>" % (user if sender is None
                                            else sender)), "250 ")
            for r in rcpts:
                expect(c.cmd("RCPT TO:<%s>" % r), "250 ")
            expect(c.cmd("DATA"), "354 ")
            c.send(dot_stuff(msg))
            qid = queued_id(c.reply())
            expect(c.cmd("QUIT"), "221 ")
        return qid


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
        return data[data.rindex(")") + 2] == "Z"
    except OSError:
        return True


# ----------------------------------------------------------------------
# Maildir
# ----------------------------------------------------------------------

MAILDIR_NAME = re.compile(
    r"^(?P<sec>\d+)\.M(?P<usec>\d+)P(?P<pid>\d+)Q(?P<q>\d+)\."
    r"(?P<host>[^,/]+),S=(?P<s>\d+),W=(?P<w>\d+)$")


def maildir_files(mdir, sub="new"):
    d = os.path.join(mdir, sub)
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return []
    return [os.path.join(d, n) for n in names]


def all_mail_files(state_dir, subs=("new", "cur")):
    """Every file in any DOMAIN/USER/{new,cur} under state_dir/mail."""
    out = []
    root = os.path.join(state_dir, "mail")
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) in subs:
            out += [os.path.join(dirpath, f) for f in filenames]
    return sorted(out)


def regular_files_under(path):
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p):
                out.append(p)
    return sorted(out)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def files_containing(state_dir, needle, subs=("new", "cur")):
    if isinstance(needle, str):
        needle = needle.encode()
    return [p for p in all_mail_files(state_dir, subs) if needle in read(p)]


def split_delivered(content):
    """(return_path_line, received_header, message) of a delivered file.
    return_path_line and received_header include their CRLFs. Raises
    AssertionError when the framing is not what the spec says."""
    assert content.startswith(b"Return-Path: <"), content[:200]
    i = content.index(b"\r\n") + 2
    rp = content[:i]
    assert content[i:].startswith(b"Received: "), content[:400]
    j = i
    while True:
        k = content.index(b"\r\n", j) + 2
        j = k
        if content[j:j + 1] not in (b" ", b"\t"):
            break
    return rp, content[i:j], content[j:]


def check_maildir_name(path, content):
    """Asserts the Maildir file name format and S= (and W=) sizes."""
    name = os.path.basename(path)
    m = MAILDIR_NAME.match(name)
    assert m, "bad Maildir name %r" % name
    size = len(content)
    assert int(m.group("s")) == size, (name, size)
    assert int(m.group("w")) == size, (name, size)
    assert m.group("host") == HOSTNAME, name
    return m


# ----------------------------------------------------------------------
# Raw SMTP client
# ----------------------------------------------------------------------

class Reply:
    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines        # each line without CRLF, e.g. "250-SIZE 1"
        self.raw = raw

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def last(self):
        return self.lines[-1]

    def __repr__(self):
        return "Reply(%r)" % self.lines


class Closed(Exception):
    pass


def client_tls_context(cafile):
    """TLS 1.2+ client context trusting only cafile (never the system
    store), with certificate and host name verification."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    return ctx


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def plain_response(user, password, authzid=""):
    """The base64 of a SASL PLAIN message (RFC 4616 2)."""
    return b64("%s\0%s\0%s" % (authzid, user, password))


def finish_servers(servers, tail=60):
    """Stops servers; returns the problems found: a server that died
    during the test, sanitizer reports (with the log's tail)."""
    problems = []
    for srv in servers:
        if srv.proc is not None and not srv.intentionally_dead and \
                srv.proc.poll() is not None:
            problems.append("tegami serve (%s) died during the test with "
                            "status %s" % (srv.dir, srv.proc.returncode))
        srv.stop()
        reports = srv.sanitizer_reports()
        if reports:
            problems.append("sanitizer reports in %s:\n%s" % (
                srv.log_path, "\n".join(reports[:20])))
        if problems:
            srv.failed = True
            problems.append(srv.log_tail(tail))
        srv.cleanup()
    return problems


class LineConn:
    """The socket side of the strict test clients: exact bytes out, lines
    in, every line ending in CRLF, every wait bounded by timeout."""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.sock.settimeout(remaining)
        try:
            b = self.sock.recv(65536)
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            raise Closed("connection closed by server; pending %r" %
                         self.buf[:200])
        self.buf += b

    def line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        i = self.buf.index(b"\n")
        raw, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        assert raw.endswith(b"\r\n"), "line without CRLF: %r" % raw
        return raw[:-2]

    def read_until_closed(self, timeout=HANG):
        """Everything the server sends until it closes (bounded); raises if
        it does not close in time, or (on a socket made with
        suppress_ragged_eofs=False) if TLS ends without close_notify."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except Closed:
                break
            except ssl.SSLEOFError as e:
                raise AssertionError("TLS ended without close_notify "
                                     "(pending %r): %s" % (self.buf, e))
        data, self.buf = self.buf, b""
        return data


class SMTPConn(LineConn):
    """A client that sends exact bytes and parses replies strictly: every
    line ends in CRLF, starts with 3 digits and ' ' or '-', one code.
    With tls_context the connection is TLS from the first byte (port 465),
    verified for server_hostname."""

    def __init__(self, port, host=LISTEN, source=None, timeout=HANG,
                 banner=True, tls_context=None, server_hostname=HOSTNAME):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        if tls_context is not None:
            try:
                self.sock = tls_context.wrap_socket(
                    self.sock, server_hostname=server_hostname)
            except BaseException:
                self.sock.close()
                raise
        self.buf = b""
        self.eof = False
        self.banner = self.reply() if banner else None

    def reply(self, timeout=None):
        lines, raws = [], b""
        code = None
        while True:
            raw = self.line(timeout)
            raws += raw + b"\r\n"
            s = raw.decode("utf-8", "replace")
            assert re.match(r"^[2-5]\d\d([ -]|$)", s), \
                "malformed reply line %r" % s
            if code is None:
                code = int(s[:3])
            assert int(s[:3]) == code, "mixed codes in reply: %r" % raws
            lines.append(s)
            if len(s) == 3 or s[3] == " ":
                return Reply(code, lines, raws)

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def open_data(self, rcpts=("alice@local.test",), sender="a@ext.test",
                  ehlo=True):
        """EHLO (unless ehlo is False), MAIL, RCPT each, DATA: asserts
        250s and the 354, ready for the message."""
        if ehlo:
            self.ehlo()
        expect(self.cmd("MAIL FROM:<%s>" % sender), "250 ")
        for r in rcpts:
            expect(self.cmd("RCPT TO:<%s>" % r), "250 ")
        expect(self.cmd("DATA"), "354 ")

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def all_replies_until_closed(self, timeout=HANG):
        out = []
        while True:
            try:
                out.append(self.reply(timeout))
            except Closed:
                break
        assert self.buf == b"", "partial reply at close: %r" % self.buf
        return out

    def is_closed(self, timeout=HANG):
        try:
            rest = self.read_until_closed(timeout)
        except (socket.timeout, TimeoutError):
            return False
        assert rest == b"", "unexpected data before close: %r" % rest
        return True

    def ehlo(self, name="client.test"):
        r = self.cmd("EHLO " + name)
        assert r.code == 250, r
        return r

    # --- TLS and AUTH -----------------------------------------------
    def starttls(self, tls_context, server_hostname=HOSTNAME):
        """STARTTLS (after EHLO), asserts 220 and nothing buffered after
        it, then the verified handshake; the session restarts (EHLO)."""
        expect(self.cmd("STARTTLS"), "220 ")
        assert self.buf == b"", "data after the 220 to STARTTLS: %r" % \
            self.buf
        self.sock = tls_context.wrap_socket(self.sock,
                                            server_hostname=server_hostname)
        return self.sock

    @property
    def tls_version(self):
        v = getattr(self.sock, "version", None)
        return v() if v else None

    def auth_plain(self, user, password, authzid="", initial=True,
                   timeout=None):
        """AUTH PLAIN with the initial response on the command line, or
        (initial=False) after an empty 334 challenge. Returns the final
        reply."""
        resp = plain_response(user, password, authzid)
        if initial:
            return self.cmd("AUTH PLAIN " + resp, timeout)
        r = self.cmd("AUTH PLAIN", timeout)
        if r.code != 334:
            return r
        return self.cmd(resp, timeout)

    def auth_login(self, user, password, timeout=None):
        """AUTH LOGIN: 334 Username:, 334 Password:, final reply. Asserts
        the two challenges; returns the final reply (or the first reply
        that is not 334)."""
        r = self.cmd("AUTH LOGIN", timeout)
        if r.code != 334:
            return r
        assert r.last == "334 VXNlcm5hbWU6", r
        r = self.cmd(b64(user), timeout)
        if r.code != 334:
            return r
        assert r.last == "334 UGFzc3dvcmQ6", r
        return self.cmd(b64(password), timeout)


def expect(reply, prefix):
    """Asserts that the reply's last line starts with prefix."""
    assert reply.last.startswith(prefix), "expected %r, got %r" % (
        prefix, reply.lines)
    return reply


def queued_id(reply):
    m = re.match(r"^250 2\.0\.0 Ok: queued as (\S+)$", reply.last)
    assert m, "not a queued reply: %r" % reply.lines
    return m.group(1)


def dot_stuff(msg):
    """Transparency (RFC 5321 4.5.2) for a message that ends in CRLF (or
    is empty); appends the end-of-data line."""
    assert msg == b"" or msg.endswith(b"\r\n"), msg[-20:]
    lines = msg.split(b"\r\n")[:-1] if msg else []
    out = b"".join(((b"." + l) if l.startswith(b".") else l) + b"\r\n"
                   for l in lines)
    return out + b".\r\n"


def send_message(port, mail_from, rcpts, msg, helo="client.test",
                 mail_params="", source=None, stuff=True):
    """One transaction over DATA on a new connection. Returns
    (replies dict, queue id or None)."""
    with SMTPConn(port, source=source) as c:
        expect(c.banner, "220 ")
        c.ehlo(helo)
        r = {"mail": c.cmd("MAIL FROM:<%s>%s" % (
            mail_from, (" " + mail_params) if mail_params else ""))}
        r["rcpt"] = [c.cmd("RCPT TO:<%s>" % a) for a in rcpts]
        r["data"] = c.cmd("DATA")
        if r["data"].code != 354:
            return r, None
        c.send(dot_stuff(msg) if stuff else msg)
        r["end"] = c.reply()
        qid = queued_id(r["end"]) if r["end"].code == 250 else None
        c.cmd("QUIT")
        return r, qid


def make_message(token, size=0, extra_headers=b""):
    """A CRLF message identified by token, padded to about size bytes."""
    if isinstance(token, str):
        token = token.encode()
    head = (b"From: sender@ext.test\r\nTo: alice@local.test\r\n"
            b"Subject: " + token + b"\r\nMessage-ID: <" + token +
            b"@client.test>\r\n" + extra_headers + b"\r\n")
    parts = [head, b"token " + token + b"\r\n"]
    total = len(parts[0]) + len(parts[1])
    n = 0
    while total < size:
        line = b"%s line %06d abcdefghijklmnopqrstuvwxyz0123456789\r\n" % (
            token, n)
        parts.append(line)
        total += len(line)
        n += 1
    return b"".join(parts)


# ----------------------------------------------------------------------
# strace
# ----------------------------------------------------------------------

class Strace:
    """strace -f attached to every process of a server."""

    def __init__(self, pids, syscalls, out_path):
        self.pids = list(pids)
        self.out_path = out_path
        self.err_path = out_path + ".err"
        self.syscalls = syscalls
        self.proc = None

    def __enter__(self):
        assert shutil.which("strace"), \
            "strace is not installed (scripts/install-deps test installs it)"
        cmd = ["strace", "-f", "-tt", "-y", "-s", "256", "-e",
               "trace=" + ",".join(self.syscalls), "-o", self.out_path]
        for p in self.pids:
            cmd += ["-p", str(p)]
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self._err)
        deadline = time.monotonic() + HANG
        while True:
            with open(self.err_path, "rb") as f:
                err = f.read()
            attached = set(int(x) for x in
                           re.findall(rb"Process (\d+) attached", err))
            if all(p in attached for p in self.pids):
                break
            if self.proc.poll() is not None:
                raise AssertionError("strace failed: %r" % err)
            if time.monotonic() > deadline:
                raise AssertionError("strace did not attach: %r" % err)
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(HANG)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(HANG)
        self._err.close()
        return False

    def lines(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()


def wait_until(pred, timeout=HANG, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


DNS_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                          "dns_server.py")


def start_dns_server(zone_text, workdir, sign=None):
    """tests/dns_server.py on a free 127.0.0.1 port serving zone_text;
    with sign, the zone is signed at that apex. Returns (process,
    "127.0.0.1@PORT" for the resolver setting, trust anchor file or
    None). The caller terminates the process."""
    zone = os.path.join(str(workdir), "zone")
    with open(zone, "w") as f:
        f.write(zone_text)
    cmd = ["/usr/bin/python3", DNS_SERVER, "--listen", "127.0.0.1",
           "--port", "0", "--zone", zone]
    anchor = None
    if sign:
        anchor = os.path.join(str(workdir), "anchor")
        cmd += ["--sign", sign, "--anchor-out", anchor]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    port = None
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if line.startswith("port "):
            port = int(line.split()[1])
        if line.strip() == "ready":
            break
    if not port:
        p.terminate()
        p.wait(10)
        raise AssertionError("the test DNS server did not start")
    return p, "127.0.0.1@%d" % port, anchor
