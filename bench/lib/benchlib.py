"""Helpers shared by the benchmarks in bench/: running inside a private
network namespace, a fresh tegami instance, smtp-source and smtp-sink, and
sampling the memory of a server's whole process tree.

Standard library only; the Postfix side is tests/integration/postfix_peer.py.
"""

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import postfix_peer  # noqa: E402  (re-exported for the bench scripts)

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
NETNS_ENV = "TEGAMI_BENCH_NETNS"


# -- network namespace ----------------------------------------------------

def only_loopback():
    """True when the only network interface in sight is lo."""
    return [n for _, n in socket.if_nameindex()] == ["lo"]


def ensure_netns(argv):
    """Re-executes argv inside `unshare --net` with lo up, unless already
    in a namespace with only loopback.  Never returns in the parent."""
    if only_loopback():
        return
    if os.environ.get(NETNS_ENV):
        sys.exit("still not in a private network namespace after unshare")
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark uses a network namespace, "
                 "port 25 on 127.0.0.x and starts Postfix")
    env = dict(os.environ)
    env[NETNS_ENV] = "1"
    cmd = ["unshare", "--net", "--", "sh", "-c",
           'ip link set lo up && exec "$@"', "sh",
           sys.executable] + list(argv)
    os.execvpe("unshare", cmd, env)


# -- process trees and memory ----------------------------------------------

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid, "rb") as f:
        data = f.read()
    return data[data.rfind(b")") + 2:].split()


def session_pids(sid):
    """Every live (non-zombie) process of session sid.  A server started
    with start_new_session, and Postfix's master (which calls setsid()),
    keep all their processes in one session, also the ones forked later."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            f = _stat_fields(int(name))
        except OSError:
            continue
        if f[0] != b"Z" and int(f[3]) == sid:
            out.append(int(name))
    return out


def mem_kb(pid):
    """(Rss, Pss) of one process in kB, from smaps_rollup; None if gone."""
    rss = pss = None
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except OSError:
        return None
    if rss is None or pss is None:
        return None
    return rss, pss


class MemSampler:
    """Samples the summed Rss and Pss of a set of processes every interval
    seconds in a thread; keeps the peak of each sum and of the process
    count.  pids_fn returns the current list of PIDs."""

    def __init__(self, pids_fn, interval=0.05):
        self.pids_fn = pids_fn
        self.interval = interval
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.peak_procs = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        rss = pss = n = 0
        for pid in self.pids_fn():
            m = mem_kb(pid)
            if m is None:
                continue
            rss += m[0]
            pss += m[1]
            n += 1
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_pss_kb = max(self.peak_pss_kb, pss)
        self.peak_procs = max(self.peak_procs, n)
        self.samples += 1

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(10)
        self.sample()


def kill_pids(pids, grace=5.0):
    """SIGTERM, then SIGKILL after grace seconds, to each PID (not to a
    name or a group)."""
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        left = []
        for p in pids:
            try:
                if _stat_fields(p)[0] != b"Z":
                    left.append(p)
            except OSError:
                pass
        if not left:
            return
        time.sleep(0.05)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def wait_banner(addr, port, timeout, proc=None):
    """Until something on addr:port sends a 220 banner (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %d before listening" %
                               proc.returncode)
        try:
            with socket.create_connection((addr, port), timeout=1) as s:
                s.settimeout(2)
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("nothing answers on %s:%d" % (addr, port))


def cpu_times():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)    # idle + iowait
    return sum(v) - idle, sum(v)


def count_files(d):
    try:
        with os.scandir(d) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


# -- the servers -------------------------------------------------------------

class Tegami:
    """A fresh state directory (`tegami init`), one user, `tegami serve` in
    its own session, stopped by PID."""

    def __init__(self, binary, workdir, domain, user, listen="127.0.0.1",
                 port_base=20000, extra_config=()):
        self.binary = binary
        self.dir = os.path.join(workdir, "state")
        self.conf = os.path.join(self.dir, "tegami.conf")
        self.log_path = os.path.join(workdir, "tegami.log")
        self.domain = domain
        self.user = user
        self.addr = listen
        self.port = port_base + 25
        self.proc = None
        self._run(["init", "--dir", self.dir, "--domain", domain,
                   "--hostname", "mail." + domain, "--listen", listen,
                   "--port-base", str(port_base)], conf=False)
        self._run(["user", "add", "%s@%s" % (user, domain),
                   "--password-stdin"], input=b"bench-password\n")
        if extra_config:
            with open(self.conf, "a") as f:
                for line in extra_config:
                    f.write(line + "\n")

    def _run(self, args, conf=True, input=None):
        cmd = [self.binary] + (["-c", self.conf] if conf else []) + args
        r = subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(cmd),
                               r.stdout.decode(errors="replace")))

    def maildir_new(self):
        return os.path.join(self.dir, "mail", self.domain, self.user, "new")

    def start(self, timeout=15):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-c", self.conf, "serve"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True)
        wait_banner(self.addr, self.port, timeout, self.proc)
        return self

    def pids(self):
        return session_pids(self.proc.pid) if self.proc else []

    def stop(self):
        if self.proc is None:
            return
        pids = self.pids()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        kill_pids([p for p in pids if p != self.proc.pid] +
                  [self.proc.pid], grace=2)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        self._log.close()


class Postfix:
    """postfix_peer.PostfixPeer set up as a virtual-Maildir MX for one
    user, with Postfix's defaults otherwise."""

    def __init__(self, workdir, domain, user, addr="127.0.0.2", port=25,
                 mailbox_user="tegami", main_extra=None):
        self.domain = domain
        self.user = user
        self.addr = addr
        self.port = port
        self.peer = postfix_peer.PostfixPeer(
            addr=addr, port=port, hostname="mx." + domain,
            virtual={domain: [user]}, mailbox_user=mailbox_user,
            test_timers=False, workdir=workdir,
            main_extra=dict({
                # No per-client limit, as tegami's max_connections_per_ip
                # in the benchmark; loopback is in mynetworks, which
                # Postfix exempts anyway (smtpd_client_event_limit_
                # exceptions).
                "smtpd_client_connection_count_limit": "0",
            }, **(main_extra or {})))

    def maildir_new(self):
        return os.path.join(self.peer.maildir(self.domain, self.user), "new")

    def start(self):
        self.peer.start(timeout=60)
        self.sid = self.peer.master_pid()
        return self

    def pids(self):
        return session_pids(self.sid)

    def stop(self):
        pids = self.pids()
        self.peer.stop()
        kill_pids(pids, grace=2)

    def version(self):
        r = subprocess.run(["postconf", "-d", "-h", "mail_version"],
                           stdout=subprocess.PIPE, text=True)
        return r.stdout.strip()


class SmtpSink:
    """smtp-sink: speaks SMTP and throws the messages away (no disk)."""

    def __init__(self, workdir, addr="127.0.0.3", port=25):
        self.addr = addr
        self.port = port
        self.log_path = os.path.join(workdir, "smtp-sink.log")
        self.proc = None

    def maildir_new(self):
        return None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody", "-h", "sink.bench.test",
             "%s:%d" % (self.addr, self.port), "1024"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True)
        wait_banner(self.addr, self.port, 15, self.proc)
        return self

    def pids(self):
        return session_pids(self.proc.pid) if self.proc else []

    def stop(self):
        if self.proc is None:
            return
        kill_pids(self.pids() or [self.proc.pid], grace=2)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        self._log.close()


# -- the load -------------------------------------------------------------

def run_load(server, messages, concurrency, size, sender, rcpt, timeout,
             log_path, sample_interval=0.05):
    """smtp-source against server; returns a result dict.  The clock runs
    from just before smtp-source starts until smtp-source has exited and
    (for a server with a Maildir) all messages are files in new/."""
    new = server.maildir_new()
    cmd = [SMTP_SOURCE, "-s", str(concurrency), "-m", str(messages),
           "-l", str(size), "-f", sender, "-t", rcpt,
           "-M", "client.ext.test",
           "%s:%d" % (server.addr, server.port)]
    os.sync()    # earlier runs' dirty pages must not be flushed in this one
    sampler = MemSampler(server.pids, sample_interval).start()
    log = open(log_path, "ab")
    cpu0 = cpu_times()
    t0 = time.monotonic()
    src = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                           stderr=log)
    deadline = t0 + timeout
    src_done = None
    delivered = 0
    status = "ok"
    try:
        while True:
            now = time.monotonic()
            if src_done is None and src.poll() is not None:
                src_done = now
                if src.returncode != 0:
                    status = "smtp-source exit %d" % src.returncode
                    break
            # Nothing can be complete before smtp-source is: count the
            # Maildir only after that, so that the counting does not
            # take CPU from the server during the load.
            if src_done is not None:
                if new is None or count_files(new) >= messages:
                    break
            if now > deadline:
                status = "timeout after %d s" % timeout
                break
            time.sleep(0.005)
    finally:
        t1 = time.monotonic()
        cpu1 = cpu_times()
        if src.poll() is None:
            src.kill()
        src.wait(10)
        log.close()
        sampler.stop()
    if new is not None:
        delivered = count_files(new)
        if status == "ok" and delivered != messages:
            status = "%d files in new/ for %d messages" % (delivered,
                                                           messages)
    else:
        delivered = messages if status == "ok" else 0
    secs = t1 - t0
    return {
        "status": status,
        "seconds": round(secs, 3),
        "smtp_source_seconds": round((src_done or t1) - t0, 3),
        "msgs_per_s": round(messages / secs, 1) if status == "ok" else None,
        "delivered": delivered,
        "peak_rss_kb": sampler.peak_rss_kb,
        "peak_pss_kb": sampler.peak_pss_kb,
        "peak_processes": sampler.peak_procs,
        "mem_samples": sampler.samples,
        # Busy share of all CPUs during the run (the load generator and
        # the sampler included): near 100 means CPU-bound.
        "cpu_busy_pct": round(100.0 * (cpu1[0] - cpu0[0]) /
                              max(1, cpu1[1] - cpu0[1]), 1),
        "command": " ".join(cmd),
    }


def machine_info(tegami_bin, workdir=TOP):
    def sh(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True,
                                  cwd=TOP, timeout=30).stdout.strip()
        except OSError:
            return ""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    commit = sh(["git", "rev-parse", "--short", "HEAD"])
    if sh(["git", "status", "--porcelain", "--untracked-files=no",
           "--", "src", "meson.build"]):
        commit += " (with uncommitted changes in src/)"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_at_start": load,
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "filesystem": " ".join(sh(["findmnt", "-n", "-o", "FSTYPE,SOURCE",
                                   "--target", workdir]).split()),
        "tegami_binary": tegami_bin,
        "tegami_commit": commit,
        "postfix": sh(["postconf", "-d", "-h", "mail_version"]),
    }


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
