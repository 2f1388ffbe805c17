"""A private Postfix instance for the integration tests and the benchmarks.

PostfixPeer writes its own config directory (main.cf, master.cf, maps),
queue directory, data directory and log file under one work directory and
runs `postfix -c CONFDIR start` on a 127.0.0.x address and a port of its
own.  The system's default instance (/etc/postfix, /var/spool/postfix) is
neither read for settings nor modified nor started.

Why /etc/postfix/main.cf needs no alternate_config_directories entry:
Postfix demands that a non-default config directory be listed there only
in a set-gid context (mail_conf_checkdir(), for postdrop and postqueue).
Run by root, `postfix -c DIR start|stop|flush` works with the default
config untouched (verified with Postfix 3.7.11 on Debian 12).  The set-gid
helpers are never used: mail goes in over SMTP and the queue is inspected
by reading the queue directory.

Only the Python standard library is used, so bench/ can import this file.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

POSTFIX = "/usr/sbin/postfix"

# Services of Debian's /etc/postfix/master.cf that a mail relay and a
# virtual-Maildir MX need, all without chroot (a chroot would need copies
# of /etc files inside the private queue directory).  The smtpd listener
# line is added per instance.
_MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
        -o syslog_name=postfix/$service_name
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""


class PostfixError(Exception):
    pass


def _wait_port(addr, port, timeout):
    """Wait until something accepts TCP connections on addr:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((addr, port), timeout=1) as s:
                s.settimeout(2)
                banner = s.recv(512)
                if banner.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def free_port(addr, preferred=(25,)):
    """A TCP port free on addr: one of preferred if possible, else one the
    kernel picks."""
    for port in list(preferred) + [0]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise OSError("no free port on %s" % addr)


def _children_map():
    """Map ppid -> [pid] for every process in /proc."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split
        # after the last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def _alive(pid):
    """True for a process that exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"


def process_tree(root_pid):
    """Return root_pid and all its live descendants."""
    kids = _children_map()
    out, todo = [], [root_pid]
    while todo and len(out) < 10000:
        pid = todo.pop()
        if not os.path.exists("/proc/%d" % pid):
            continue
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


class PostfixPeer:
    """One private Postfix instance.

    addr, port:       where its smtpd listens (e.g. 127.0.0.2, 2525)
    hostname:         myhostname; must differ from the peer's (Postfix's
                      smtp client refuses a server greeting with its own
                      name as a mail loop)
    relay:            {domain: "[127.0.0.1]:PORT"} domains relayed to a
                      fixed next hop, without DNS
    virtual:          {domain: [localpart, ...]} Maildir users delivered
                      by virtual(8) into workdir/vmail/DOMAIN/LOCALPART/
    mailbox_user:     Unix user owning the virtual Maildirs (uid >= 100)
    main_extra:       more main.cf settings {name: value}
    test_timers:      retry deferred mail after seconds, not minutes (for
                      tests; the benchmarks keep Postfix's defaults)
    workdir:          created under /tmp (mode 0755) when None
    """

    def __init__(self, addr="127.0.0.2", port=2525, hostname="mx.peer.test",
                 relay=None, virtual=None, mailbox_user=None,
                 main_extra=None, test_timers=True, workdir=None):
        self.addr = addr
        self.port = int(port)
        self.hostname = hostname
        self.relay = dict(relay or {})
        self.virtual = {d: list(u) for d, u in (virtual or {}).items()}
        self.main_extra = dict(main_extra or {})
        self.test_timers = test_timers
        if mailbox_user is None:
            mailbox_user = "tegami"
            try:
                pwd.getpwnam(mailbox_user)
            except KeyError:
                mailbox_user = "nobody"
        pw = pwd.getpwnam(mailbox_user)
        self.mailbox_uid, self.mailbox_gid = pw.pw_uid, pw.pw_gid
        self._own_workdir = workdir is None
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="postfix-peer.", dir="/tmp")
        os.chmod(workdir, 0o755)
        self.workdir = workdir
        self.confdir = os.path.join(workdir, "etc")
        self.queuedir = os.path.join(workdir, "spool")
        self.datadir = os.path.join(workdir, "data")
        self.vmail = os.path.join(workdir, "vmail")
        self.logfile = os.path.join(workdir, "maillog")
        self.started = False
        self._master_pid = None

    # -- configuration ---------------------------------------------------

    def main_cf(self):
        """The main.cf settings as an ordered list of (name, value)."""
        mydomain = self.hostname.split(".", 1)[1] if "." in \
            self.hostname else "peer.test"
        s = [
            ("compatibility_level", "3.6"),
            ("queue_directory", self.queuedir),
            ("data_directory", self.datadir),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            ("myhostname", self.hostname),
            ("mydomain", mydomain),
            ("myorigin", "$myhostname"),
            ("mydestination", ""),
            ("local_recipient_maps", ""),
            ("alias_maps", ""),
            ("alias_database", ""),
            # The listener's address is in master.cf.  inet_interfaces
            # must name an address that an interface carries, and lo
            # only carries 127.0.0.1 (127.0.0.2 etc. are routed, not
            # assigned), so "loopback-only" rather than self.addr.
            ("inet_interfaces", "loopback-only"),
            ("inet_protocols", "ipv4"),
            ("mynetworks", "127.0.0.0/8"),
            ("smtpd_relay_restrictions", "permit_mynetworks, "
                "reject_unauth_destination"),
            ("smtpd_banner", "$myhostname ESMTP Postfix"),
            # No DNS at all: there is none in the test network
            # namespace, and next hops are [IP] literals.
            ("smtp_dns_support_level", "disabled"),
            ("smtp_host_lookup", "native"),
            ("lmtp_host_lookup", "native"),
            ("smtpd_peername_lookup", "no"),
            # Every client is remote, as at an MX: no header added or
            # rewritten in mail from 127.0.0.1 (the default would treat
            # a loopback client as local and add Date/Message-ID).
            ("local_header_rewrite_clients", ""),
            ("smtp_bind_address", self.addr),
            ("relayhost", ""),
            ("biff", "no"),
            ("append_dot_mydomain", "no"),
            ("readme_directory", "no"),
            ("maillog_file", self.logfile),
            ("maillog_file_prefixes", self.workdir),
            ("import_environment", "MAIL_CONFIG MAIL_DEBUG TZ "
                "LANG=C"),
        ]
        if self.test_timers:
            # Retry soon in tests instead of after minutes.
            s += [
                ("queue_run_delay", "5s"),
                ("minimal_backoff_time", "5s"),
                ("maximal_backoff_time", "10s"),
                ("smtp_connect_timeout", "10s"),
            ]
        if self.relay:
            s.append(("relay_domains", ", ".join(sorted(self.relay))))
            s.append(("transport_maps", "texthash:%s" %
                os.path.join(self.confdir, "transport")))
        else:
            s.append(("relay_domains", ""))
        if self.virtual:
            s += [
                ("virtual_mailbox_domains",
                    ", ".join(sorted(self.virtual))),
                ("virtual_mailbox_base", self.vmail),
                ("virtual_mailbox_maps", "texthash:%s" %
                    os.path.join(self.confdir, "vmailbox")),
                ("virtual_uid_maps", "static:%d" %
                    self.mailbox_uid),
                ("virtual_gid_maps", "static:%d" %
                    self.mailbox_gid),
                ("virtual_mailbox_limit", "0"),
            ]
        s += list(self.main_extra.items())
        return s

    def master_cf(self):
        return ("%s:%d inet n       -       n       -       -       smtpd\n"
            % (self.addr, self.port)) + _MASTER_SERVICES

    def setup(self):
        """Write the config, queue and mailbox directories."""
        os.makedirs(self.confdir, mode=0o755, exist_ok=True)
        os.makedirs(self.queuedir, mode=0o755, exist_ok=True)
        os.chown(self.queuedir, 0, 0)
        os.makedirs(self.datadir, mode=0o700, exist_ok=True)
        pf = pwd.getpwnam("postfix")
        os.chown(self.datadir, pf.pw_uid, pf.pw_gid)
        with open(os.path.join(self.confdir, "main.cf"), "w") as f:
            for k, v in self.main_cf():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.confdir, "master.cf"), "w") as f:
            f.write(self.master_cf())
        if self.relay:
            with open(os.path.join(self.confdir, "transport"), "w") as f:
                for dom, hop in sorted(self.relay.items()):
                    f.write("%s smtp:%s\n" % (dom, hop))
        if self.virtual:
            os.makedirs(self.vmail, mode=0o755, exist_ok=True)
            with open(os.path.join(self.confdir, "vmailbox"), "w") as f:
                for dom, users in sorted(self.virtual.items()):
                    for u in users:
                        f.write("%s@%s %s/%s/\n" % (u, dom, dom, u))
                    # Pre-create the Maildirs so that counting files in
                    # new/ works before the first delivery.
                    for u in users:
                        for sub in ("tmp", "new", "cur"):
                            os.makedirs(os.path.join(self.vmail, dom, u,
                                                     sub),
                                        mode=0o700, exist_ok=True)
            for root, dirs, files in os.walk(self.vmail):
                os.chown(root, self.mailbox_uid, self.mailbox_gid)
        open(self.logfile, "a").close()

    # -- running ---------------------------------------------------------

    def _postfix(self, *args, timeout=60, check=True):
        env = dict(os.environ)
        env.pop("MAIL_CONFIG", None)
        r = subprocess.run([POSTFIX, "-c", self.confdir] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=timeout)
        out = r.stdout.decode("utf-8", "replace")
        if check and r.returncode != 0:
            raise PostfixError("postfix %s failed (%d): %s\n%s" % (
                " ".join(args), r.returncode, out, self.log()))
        return out

    def master_pid(self):
        try:
            with open(os.path.join(self.queuedir, "pid",
                                   "master.pid")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.path.exists("/proc/%d" % pid) else None

    def start(self, timeout=30):
        """Set up (if not yet) and start; return when smtpd answers."""
        if not os.path.exists(os.path.join(self.confdir, "main.cf")):
            self.setup()
        # "start" runs "check" first (which creates the queue
        # directories on the first run).
        self.started = True
        self._postfix("start", timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.master_pid() is None:
            if time.monotonic() > deadline:
                raise PostfixError("no master.pid after start\n" +
                                   self.log())
            time.sleep(0.05)
        self._master_pid = self.master_pid()
        if not _wait_port(self.addr, self.port,
                          max(1.0, deadline - time.monotonic())):
            raise PostfixError("smtpd on %s:%d does not answer\n%s" % (
                self.addr, self.port, self.log()))
        return self

    def pids(self):
        """The master and all its children (smtpd, cleanup, qmgr, ...)."""
        pid = self._master_pid or self.master_pid()
        return process_tree(pid) if pid else []

    def stop(self, timeout=20):
        """Stop the instance; kill its processes by PID if it lingers."""
        if not self.started:
            return
        self.started = False
        pids = self.pids()
        try:
            self._postfix("stop", timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    def cleanup(self):
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- inspection ------------------------------------------------------

    def log(self):
        try:
            with open(self.logfile, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def queued(self):
        """Queue files waiting in incoming/active/deferred/hold."""
        n = 0
        for sub in ("incoming", "active", "deferred", "hold", "maildrop"):
            for root, dirs, files in os.walk(os.path.join(self.queuedir,
                                                          sub)):
                n += len(files)
        return n

    def wait_queue_empty(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queued() == 0:
                return True
            time.sleep(0.1)
        return False

    def flush(self):
        """Ask the queue manager to retry deferred mail now."""
        self._postfix("flush", check=False)

    def maildir(self, domain, localpart):
        return os.path.join(self.vmail, domain, localpart)
