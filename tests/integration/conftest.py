# pytest fixtures for the tegami integration suite: servers started from a
# fresh `tegami init` state directory, stopped by PID after each test (or
# module), with the tail of server.log attached to every failure.
import atexit
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import tegami_harness as th  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _environment():
    if not (os.path.isfile(th.TEGAMI_BIN) and
            os.access(th.TEGAMI_BIN, os.X_OK)):
        pytest.fail("tegami binary %s not found (set TEGAMI_BIN)" %
                    th.TEGAMI_BIN, pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the integration suite runs as root (inside "
                    "`unshare --net`)", pytrace=False)
    th.ensure_system_user("tegami")
    yield


def _kill_leftovers():
    for srv in list(th.ACTIVE_SERVERS):
        if srv.proc is not None and srv.proc.poll() is None:
            try:
                os.killpg(srv.proc.pid, signal.SIGKILL)
            except OSError:
                pass
    for mnt in list(th.MOUNTS):
        subprocess.run(["umount", "-l", mnt])


def _on_sigterm(signum, frame):
    # pytest killed by a timeout: no finalizer runs, so stop our servers
    # and unmount our file systems here.
    _kill_leftovers()
    os._exit(128 + signum)


atexit.register(_kill_leftovers)
signal.signal(signal.SIGTERM, _on_sigterm)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in th.ACTIVE_SERVERS:
            srv.failed = True
            rep.sections.append(("tegami server log (%s)" % srv.dir,
                                 srv.log_tail(60)))


def _finish(servers):
    """Stops servers; returns problems found (death, sanitizer output)."""
    return th.finish_servers(servers)


@pytest.fixture
def server_factory():
    """make(extra_config=[...], start=True, users=None, aliases=None,
    parent_dir=None, log_path=None) -> TegamiServer. Every server is
    stopped (SIGTERM, SIGKILL after 10 s) at the end of the test."""
    servers = []

    def make(extra_config=(), start=True, **kw):
        srv = th.TegamiServer(extra_config=extra_config, **kw)
        servers.append(srv)
        srv.init()
        if start:
            srv.start()
        return srv

    yield make
    problems = _finish(servers)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(server_factory):
    """A default server for one test."""
    return server_factory()


@pytest.fixture(scope="module")
def mserver(request):
    """One server shared by a module; the module may set SERVER_CONFIG."""
    srv = th.TegamiServer(
        extra_config=getattr(request.module, "SERVER_CONFIG", ()))
    try:
        srv.init()
        srv.start()
    except BaseException:
        srv.failed = True
        srv.cleanup()
        raise
    yield srv
    problems = _finish([srv])
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _servers_stay_up():
    """After every test: no server that the test did not stop has died."""
    yield
    dead = [s for s in th.ACTIVE_SERVERS
            if s.proc is not None and not s.intentionally_dead and
            s.proc.poll() is not None]
    for s in dead:
        s.failed = True
        s.intentionally_dead = True   # report once
    if dead:
        pytest.fail("tegami serve died during this test:\n" + "\n".join(
            "status %s\n%s" % (s.proc.returncode, s.log_tail(60))
            for s in dead), pytrace=False)


@pytest.fixture(scope="module")
def dns(request, tmp_path_factory):
    """The test DNS server (tests/dns_server.py) serving the module's ZONE;
    yields the resolver setting ("127.0.0.1@PORT") for its servers."""
    p, resolver, _ = th.start_dns_server(request.module.ZONE,
                                         tmp_path_factory.mktemp("dns"))
    try:
        yield resolver
    finally:
        p.terminate()
        p.wait(10)
