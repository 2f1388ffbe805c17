# Password guessing against SMTP AUTH (security-tests.md 23): the failure
# delay that doubles per client network, the per-network and per-account
# limits (454 4.7.0) and their window, the real user's network kept out of
# an account lock-out, log lines a fail2ban filter can use (and that a
# hostile user name cannot forge), and a front that stays prompt while
# logins are being hashed. Timing: only lower bounds (a slow machine only
# adds time) and upper bounds far above what is expected, which catch a
# missing feature or a stalled event loop, never a slow machine.
# The contract is notes/submission-spec.md ("Throttling").
import glob
import os
import re
import threading
import time

import tegami_harness as th
from tegami_harness import b64, expect

ALICE = "alice@local.test"
BOB = "bob@local.test"
PW = th.DEFAULT_USERS

# The filter the spec promises for fail2ban; docs/ must carry it. <HOST>
# is filled in as fail2ban does for a name or address (its classic form).
FAIL2BAN_SPEC = r"auth (failed|refused): user=<[^>]*> ip=<HOST> "
FAIL2BAN_HOST = r"(?:::f{4,6}:)?(?P<host>[\w\-.^_:]*\w)"
FAIL2BAN_RX = re.compile(FAIL2BAN_SPEC.replace("<HOST>", FAIL2BAN_HOST))
DOCS = os.path.join(os.path.dirname(os.path.abspath(th.__file__)), "..",
                    "..", "docs")


def documented_failregexes():
    """Every "failregex = ..." in docs/*.md, compiled as fail2ban would
    use it."""
    out = []
    for path in sorted(glob.glob(os.path.join(DOCS, "*.md"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^\s*failregex\s*=\s*(\S.*?)\s*$", line)
                if m and "auth" in m.group(1):
                    out.append((path, m.group(1)))
    assert out, "no fail2ban failregex for auth lines in docs/"
    for path, rx in out:
        assert FAIL2BAN_SPEC.rstrip() in rx, (path, rx)
    return [re.compile(rx.replace("<HOST>", FAIL2BAN_HOST))
            for _, rx in out]


def throttle_config(delay_ms, max_ms, ip_limit, account_limit, window,
                    extra=()):
    return ["auth_failure_delay_ms = %d" % delay_ms,
            "auth_failure_delay_max_ms = %d" % max_ms,
            "auth_ip_failure_limit = %d" % ip_limit,
            "auth_account_failure_limit = %d" % account_limit,
            "auth_failure_window = %s" % window] + list(extra)


def attempt(srv, user, password, source, service="465"):
    """One AUTH PLAIN on a fresh verified TLS session from source:
    (reply, seconds from sending AUTH to its reply)."""
    if service == "465":
        c = srv.connect_submissions(source=source)
    else:
        c = srv.connect_submission(source=source)
    with c:
        if service != "465":
            c.ehlo()
            c.starttls(srv.tls_context())
        c.ehlo()
        t0 = time.monotonic()
        r = c.auth_plain(user, password, timeout=60)
        dt = time.monotonic() - t0
        try:
            c.send(b"QUIT\r\n")
        except OSError:
            pass
        return r, dt


def fail(srv, user, source, n=1, password="wrong-password"):
    """n failed attempts (asserting 535 5.7.8); their latencies."""
    out = []
    for i in range(n):
        r, dt = attempt(srv, user, "%s-%d" % (password, i), source)
        expect(r, "535 5.7.8")
        out.append(dt)
    return out


def poll_until(srv, user, password, source, want, timeout):
    deadline = time.monotonic() + timeout
    while True:
        r, _ = attempt(srv, user, password, source)
        if r.last.startswith(want):
            return time.monotonic()
        assert r.code == 454, r
        assert time.monotonic() < deadline, \
            "%s from %s still refused after %.0f s: %r" % (
                user, source, timeout, r.lines)
        time.sleep(0.5)


def test_failure_delay_doubles_per_network(server_factory):
    """security-tests.md 23: the first failure is held back
    auth_failure_delay_ms, each further one from the same network twice as
    long; another network starts again at the base delay."""
    srv = server_factory(extra_config=throttle_config(
        200, 15000, 20, 100, "60s"))
    lat = fail(srv, ALICE, "127.0.0.2", 4)
    for i, want in enumerate((0.2, 0.4, 0.8, 1.6)):
        assert lat[i] >= want * 0.9, (i, lat)
    assert lat[3] > lat[0], lat
    # per network: the first failure from another one is not due 3.2 s
    other = fail(srv, BOB, "127.0.0.3")[0]
    assert 0.18 <= other < 1.2, (other, lat)
    # a success is never held back (the bound only catches a hang)
    r, dt = attempt(srv, ALICE, PW[ALICE], "127.0.0.5")
    expect(r, "235 2.7.0")
    assert dt < th.HANG
    text = srv.log_text()
    for pw in ("wrong-password-0", "wrong-password-3", PW[ALICE]):
        assert pw not in text


def test_every_kind_of_failure_costs_the_same_delay(server_factory):
    """security-tests.md 23: an unknown user and a locked account are
    answered no sooner than a wrong password (no oracle in the timing)."""
    srv = server_factory(extra_config=throttle_config(
        1000, 1000, 20, 100, "60s"))
    wrong = fail(srv, ALICE, "127.0.0.3")[0]
    unknown = fail(srv, "nobody@local.test", "127.0.0.4")[0]
    p = srv.tegami("user", "lock", "carol@local.test")
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 5
    while True:
        r, locked = attempt(srv, "carol@local.test",
                            PW["carol@local.test"], "127.0.0.6")
        if r.code != 235:
            break
        assert time.monotonic() < deadline, "the lock was not noticed"
        time.sleep(0.2)
    expect(r, "535 5.7.8")
    assert min(wrong, unknown, locked) >= 0.9, (wrong, unknown, locked)
    srv.wait_log(r"auth failed: user=<nobody@local\.test> ip=127\.0\.0\.4 "
                 r"service=\S+ reason=unknown-user")
    srv.wait_log(r"auth failed: user=<carol@local\.test> ip=127\.0\.0\.6 "
                 r"service=\S+ reason=locked")


def test_failure_delay_is_capped(server_factory):
    """security-tests.md 23: auth_failure_delay_max_ms caps the delay
    (200, 400, 400, ... instead of 200, 400, 800, 1600, 3200, 6400)."""
    srv = server_factory(extra_config=throttle_config(
        200, 400, 20, 100, "60s"))
    lat = fail(srv, ALICE, "127.0.0.2", 6)
    assert all(x >= 0.18 for x in lat), lat
    assert all(x >= 0.36 for x in lat[1:]), lat
    # uncapped, the fifth and sixth would take 3.2 s and 6.4 s
    assert lat[4] < 2.5 and lat[5] < 2.5, lat


def test_ip_limit_then_window(server_factory):
    """security-tests.md 23: past auth_ip_failure_limit a network gets
    454 4.7.0 at once, even with the right password, until the window has
    passed; other networks are not affected."""
    window = 10
    srv = server_factory(extra_config=throttle_config(
        100, 15000, 5, 100, "%ds" % window))
    t_first = time.monotonic()
    lat = fail(srv, ALICE, "127.0.0.2", 5)
    assert lat[4] >= 1.4, lat                  # 1.6 s due for the fifth
    # a delayed sixth failure would take 3.2 s: this is refused at once
    r, dt = attempt(srv, ALICE, PW[ALICE], "127.0.0.2")
    expect(r, "454 4.7.0")
    assert dt < 2.0, dt
    r, _ = attempt(srv, BOB, PW[BOB], "127.0.0.2")      # any account
    expect(r, "454 4.7.0")
    # on port 587 as well
    r, _ = attempt(srv, ALICE, PW[ALICE], "127.0.0.2", service="587")
    expect(r, "454 4.7.0")
    srv.wait_log(r"auth refused: user=<%s> ip=127\.0\.0\.2 service=\S+ "
                 r"reason=throttled-ip" % re.escape(ALICE))
    # another network, same account: fine
    r, _ = attempt(srv, ALICE, PW[ALICE], "127.0.0.3")
    expect(r, "235 2.7.0")
    # after the window (counted from the failures), the network is back
    t_ok = poll_until(srv, ALICE, PW[ALICE], "127.0.0.2", "235 2.7.0",
                      timeout=window + 15)
    assert t_ok - t_first >= window * 0.9, t_ok - t_first
    srv.wait_log(r"auth ok: user=<%s> ip=127\.0\.0\.2 " % re.escape(ALICE))


def test_account_lockout_spares_the_users_own_network(server_factory):
    """security-tests.md 23: guessing one account from several networks
    locks it (454 4.7.0, reason=throttled-account) for strangers, while
    the network that logged in to it before still gets in; the lock-out
    ends with the window."""
    window = 10
    srv = server_factory(extra_config=throttle_config(
        50, 200, 5, 8, "%ds" % window))
    home = "127.0.0.6"
    r, _ = attempt(srv, BOB, PW[BOB], home)
    expect(r, "235 2.7.0")
    t_first = time.monotonic()
    fail(srv, BOB, "127.0.0.3", 4)       # under the per-network limit
    fail(srv, BOB, "127.0.0.4", 4)       # 8: the account limit
    r, dt = attempt(srv, BOB, PW[BOB], "127.0.0.5")
    expect(r, "454 4.7.0")
    assert dt < 2.0, dt
    srv.wait_log(r"auth refused: user=<%s> ip=127\.0\.0\.5 service=\S+ "
                 r"reason=throttled-account" % re.escape(BOB))
    r, _ = attempt(srv, BOB, PW[BOB], "127.0.0.3")
    expect(r, "454 4.7.0")
    # the real user's network
    r, _ = attempt(srv, BOB, PW[BOB], home)
    expect(r, "235 2.7.0")
    # other accounts from the stranger's fresh network
    r, _ = attempt(srv, ALICE, PW[ALICE], "127.0.0.5")
    expect(r, "235 2.7.0")
    t_ok = poll_until(srv, BOB, PW[BOB], "127.0.0.5", "235 2.7.0",
                      timeout=window + 15)
    assert t_ok - t_first >= window * 0.9, t_ok - t_first


def test_fifty_guesses_and_fail2ban_lines(server_factory):
    """security-tests.md 23: 50 bad logins in a loop from one address:
    auth_ip_failure_limit of them checked (535), the rest refused (454),
    none accepted; every attempt logged with the client address in the
    documented fail2ban form, the passwords never."""
    limit = 10
    srv = server_factory(extra_config=throttle_config(
        10, 40, limit, 1000, "60s"))
    src = "127.0.0.7"
    codes = []
    t0 = time.monotonic()
    for i in range(50):
        r, _ = attempt(srv, ALICE, "guess-%02d-Zq" % i, src)
        codes.append(r.last[:9])
    assert time.monotonic() - t0 < 120
    assert codes[:limit] == ["535 5.7.8"] * limit, codes
    assert codes[limit:] == ["454 4.7.0"] * (50 - limit), codes
    # the right password from there is refused too
    r, _ = attempt(srv, ALICE, PW[ALICE], src)
    expect(r, "454 4.7.0")
    deadline = time.monotonic() + th.HANG
    while True:
        lines = [l for l in srv.log_text().splitlines()
                 if FAIL2BAN_RX.search(l)]
        if len(lines) >= 51 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    hosts = [FAIL2BAN_RX.search(l).group("host") for l in lines]
    assert hosts == [src] * 51, hosts
    for rx in documented_failregexes():
        assert [rx.search(l).group("host") if rx.search(l) else None
                for l in lines] == [src] * 51, rx.pattern
    failed = [l for l in lines if "auth failed:" in l]
    refused = [l for l in lines if "auth refused:" in l]
    assert len(failed) == limit and len(refused) == 51 - limit
    assert all(re.search(r"auth failed: user=<alice@local\.test> "
                         r"ip=127\.0\.0\.7 service=\S+ reason=password$", l)
               for l in failed), failed
    assert all(l.rstrip().endswith("reason=throttled-ip")
               for l in refused), refused
    text = srv.log_text()
    assert "guess-" not in text and PW[ALICE] not in text


HOSTILE_NAMES = [
    "x> ip=10.9.9.9 service=smtp reason=password y",
    "evil\nauth failed: user=<v> ip=10.9.9.9 service=smtp reason=password",
    "evil\rauth failed: user=<v> ip=10.9.9.9 service=smtp reason=password",
    "<v> ip=10.9.9.9 ",
    "v\x1b[2K\x00x",
]


def test_user_names_cannot_forge_log_lines(server_factory):
    """security-tests.md 23: a user name is client data; in the log it
    can neither end the user=<...> field nor start a new line, so a
    fail2ban filter never reads an address the attacker chose."""
    srv = server_factory(extra_config=throttle_config(
        10, 40, 100, 1000, "60s"))
    src = "127.0.0.8"
    for name in HOSTILE_NAMES:
        for mech in ("PLAIN", "LOGIN"):
            with srv.connect_submissions(source=src) as c:
                c.ehlo()
                if mech == "PLAIN":
                    r = c.cmd("AUTH PLAIN " + b64(
                        "\0" + name + "\0" + "pw-Hostile-1"))
                else:
                    expect(c.cmd("AUTH LOGIN"), "334 ")
                    r = c.cmd(b64(name))
                    if r.code == 334:
                        r = c.cmd(b64("pw-Hostile-1"))
                assert r.code in (501, 535), (name, r)
    # a plain failure last: once it is logged, all earlier ones are
    r, _ = attempt(srv, ALICE, "pw-Hostile-2", src)
    expect(r, "535 5.7.8")
    srv.wait_log(r"auth failed: user=<alice@local\.test> ip=127\.0\.0\.8 ")
    text = srv.log_text()
    for line in text.splitlines():
        for rx in [FAIL2BAN_RX] + documented_failregexes():
            for m in rx.finditer(line):
                assert m.group("host") == src, (rx.pattern, line)
        if "10.9.9.9" in line:
            # only ever inside the user=<...> field of a real line
            m = FAIL2BAN_RX.search(line)
            assert m and m.start("host") > line.index("10.9.9.9"), line
    assert "pw-Hostile" not in text
    assert "\x1b" not in text


def test_front_stays_prompt_while_logins_are_hashed(server_factory):
    """Promptness: with one front worker, 20 logins in flight (10 right,
    hashed in the auth process; 10 wrong, whose replies are held back
    1 s) do not hold up another session's NOOP and EHLO. The bound only
    catches a stalled event loop."""
    srv = server_factory(extra_config=throttle_config(
        1000, 1000, 100, 1000, "60s", extra=["workers = 1"]))
    n = 20
    sessions = []
    try:
        for i in range(n):
            c = srv.connect_submissions(source="127.0.0.%d" % (30 + i))
            sessions.append(c)
            c.ehlo()
        probe = srv.connect_submissions(source="127.0.0.29")
        sessions.append(probe)
        probe.ehlo()
        go = threading.Barrier(n + 1)
        results = [None] * n

        def run(i):
            c = sessions[i]
            user = ALICE if i % 2 else BOB
            pw = PW[user] if i % 2 else "wrong-%d" % i
            try:
                go.wait(th.HANG)
                t0 = time.monotonic()
                r = c.auth_plain(user, pw, timeout=60)
                results[i] = (r.last[:9], time.monotonic() - t0)
            except Exception as e:       # reported below
                results[i] = ("error", repr(e))

        threads = [threading.Thread(target=run, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        go.wait(th.HANG)
        rtts = []
        deadline = time.monotonic() + 60
        while any(t.is_alive() for t in threads) and \
                time.monotonic() < deadline:
            t0 = time.monotonic()
            expect(probe.cmd("NOOP" if len(rtts) % 4 else "EHLO probe.test"),
                   "250")
            rtts.append(time.monotonic() - t0)
            time.sleep(0.02)
        for t in threads:
            t.join(th.HANG)
        assert rtts, "no NOOP was measured while logins were in flight"
        assert max(rtts) < 2.0, "slowest NOOP/EHLO %.2f s (of %d)" % (
            max(rtts), len(rtts))
        want = ["235 2.7.0" if i % 2 else "535 5.7.8" for i in range(n)]
        assert [r[0] if r else None for r in results] == want, results
        # the wrong ones were really held back while NOOPs went through
        assert all(results[i][1] >= 0.9 for i in range(0, n, 2)), results
    finally:
        for c in sessions:
            c.close()
