# pytest set-up for the TLS scans: the integration suite's harness
# (tests/integration/tegami_harness.py) on the import path, the same
# environment checks, and a closing line with how long each scan took.
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))

import tegami_harness as th  # noqa: E402

# (test name, seconds) of every scan run in this session.
SCAN_DURATIONS = []


@pytest.fixture(scope="session", autouse=True)
def _environment():
    if not (os.path.isfile(th.TEGAMI_BIN) and
            os.access(th.TEGAMI_BIN, os.X_OK)):
        pytest.fail("tegami binary %s not found (set TEGAMI_BIN)" %
                    th.TEGAMI_BIN, pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the scans run as root (inside `unshare --net`)",
                    pytrace=False)
    th.ensure_system_user("tegami")
    yield


def pytest_terminal_summary(terminalreporter):
    if SCAN_DURATIONS:
        terminalreporter.write_line("testssl.sh scan durations: " + ", ".join(
            "%s %.0f s" % d for d in SCAN_DURATIONS))
