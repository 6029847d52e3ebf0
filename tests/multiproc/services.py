#!/usr/bin/env python3
# services.py LIVEMESH FORGE_SVC: services across 5 real agents on
# 127.0.0.1 (harness: cluster.py), everything through the real `livemesh`
# client (`-o json`, watch lines), never log text. n01 runs with
# --allow-exec-checks. One mesh, ten scenarios in turn, each on its own
# service type so that they do not see each other's services:
#
#  ttl         `register --ttl 3s` on n00, passed a few times, then left
#              alone: down on EVERY agent (is-up exit 1, JSON status "down")
#              no later than TTL + 2 s + 1 s of scheduling slack after the
#              last pass returned, and not before TTL - 0.5 s.
#  process     `register --pid P` on n01 for a `sleep` this test started;
#              P SIGKILLed: down everywhere within 2 s + 1 s of slack.
#  http        `--http-check` (interval 1s, timeout 500ms) on n02 against a
#              python3 http.server this test runs: up everywhere; server
#              stopped: down everywhere; started again on the same port: up
#              everywhere (each within 10 s).
#  tcp         `--tcp-check` on n03 against a socket this test listens on:
#              up everywhere; socket closed: down everywhere.
#  exec        `--exec-check 'test -f FILE'` on n01 (exec allowed): up while
#              FILE exists, down once it is removed; the same registration
#              on n02 (no --allow-exec-checks) exits non-zero with a message
#              naming exec checks.
#  watch       `watch --type T` on n03 while T on n00 is down (initial line),
#              then up, down, up: exactly those lines, seq 1..4 consecutive,
#              each transition's old = the previous new.
#  ephemeral   `register --ephemeral` on n01 held by a background client:
#              listed everywhere; client SIGKILLed: listed nowhere, is-up
#              --uuid exit 1 everywhere.
#  restart     registrations on n02 survive restarts of n02 (harness
#              restart after SIGTERM, then after SIGKILL): the same uuid and
#              created_at listed on every agent again, member_status alive,
#              status up (and "maintenance" for one put in maintenance
#              before the SIGKILL), "local" only on n02.
#  forged      an insider (its own key and certificate from the cluster key;
#              tests/tools/forge_svc.c) joins and sends n02 a service list in
#              n01's name signed with its own key: n02's `stats -o json`
#              counts it under "service_list_bad_signature"; no agent lists
#              the forged service or answers is-up for it, and n01's genuine
#              service is still up everywhere.
#  dead        n04 SIGKILLed with a service registered: every other agent
#              answers is-up exit 1 with member_status "dead" for it.
#
# Every figure asserted is printed. Every process started here (agents,
# the sleep, the http server, the watch and ephemeral clients, the forger)
# is stopped by its PID in cleanup, also on failure.
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (Cluster, ScenarioFailed, _child_setup, log,  # noqa: E402
                     main, wait_until)

N = 5
EXEC_AGENT = 1       # started with --allow-exec-checks
SLACK = 1.0          # scheduling slack on a loaded 2-core machine, seconds
POLL = 0.1           # seconds between two rounds of CLI polls

FORGE = None         # path of forge_svc (argv[2])
RESULTS = []         # (scenario, figure) lines for the summary


def check(cond, sc, what):
    if not cond:
        raise ScenarioFailed("%s: %s" % (sc, what))


def figure(sc, text):
    RESULTS.append("%-9s %s" % (sc, text))
    log("%s: %s" % (sc, text))


class Procs:
    """The helper processes of this test, stopped by PID at the end."""

    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen([str(a) for a in args], preexec_fn=_child_setup,
                             **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=5, close=True):
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if not close:
            return
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                try:
                    f.close()
                except OSError:
                    pass

    def stop_all(self):
        for p in self.procs:
            self.stop(p, timeout=3)


# ---- reading the view through the CLI ---------------------------------------

def is_up(c, i, typ, host):
    """`is-up TYPE HOST -o json` on agent i: (exit status, JSON or None)."""
    return c.cli_json(i, "is-up", typ, host, check=False)


def is_up_uuid(c, i, uuid):
    return c.cli_json(i, "is-up", "--uuid", uuid, check=False)


def services(c, i, *filters):
    rc, out = c.cli_json(i, "services", *filters, check=False)
    if rc != 0 or not isinstance(out, list):
        raise ScenarioFailed("services %s on %s: exit %d, %r" % (
            " ".join(filters), c.agents[i].name, rc, out))
    return out


def register(c, i, *args):
    p = c.cli(i, "register", *args)
    uuid = p.stdout.strip()
    check(len(uuid) == 36 and p.stdout.count("\n") <= 1, "register",
          "register printed %r, not a uuid alone" % p.stdout)
    return uuid


def up_state(c, i, typ, host, want):
    """is-up on i agrees with `want` (True: exit 0 and status up; False:
    exit 1 and status down) and the exit status matches the JSON."""
    rc, j = is_up(c, i, typ, host)
    if rc not in (0, 1) or not isinstance(j, dict):
        raise ScenarioFailed("is-up %s %s on %s: exit %d, %r" % (
            typ, host, c.agents[i].name, rc, j))
    if (rc == 0) != bool(j.get("up")):
        raise ScenarioFailed("is-up %s %s on %s: exit %d but JSON %s" % (
            typ, host, c.agents[i].name, rc, j))
    if want:
        return rc == 0 and j.get("status") == "up"
    return rc == 1 and j.get("status") == "down"


def first_times(c, sc, agents, pred, timeout, what):
    """Polls pred(i) on every agent of `agents` until each has held once;
    returns {i: time.monotonic() when first seen}. Fails after `timeout`
    naming the agents that never got there."""
    seen = {}
    deadline = time.monotonic() + timeout
    while True:
        for i in agents:
            if i not in seen and pred(i):
                seen[i] = time.monotonic()
        if len(seen) == len(agents):
            return seen
        if time.monotonic() >= deadline:
            missing = [c.agents[i].name for i in agents if i not in seen]
            raise ScenarioFailed("%s: %s not seen on %s within %.0f s" % (
                sc, what, missing, timeout))
        time.sleep(POLL)


def wait_everywhere(c, sc, typ, host, want, timeout, agents=None):
    agents = list(range(N)) if agents is None else agents
    return first_times(c, sc, agents,
                       lambda i: up_state(c, i, typ, host, want), timeout,
                       "%s on %s %s" % (typ, host, "up" if want else "down"))


def spread(t0, seen):
    """'max X s (min Y s)' after t0."""
    d = [t - t0 for t in seen.values()]
    return max(d), min(d)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the scenarios ----------------------------------------------------------

def scenario_ttl(c):
    sc, ttl = "ttl", 3.0
    uuid = register(c, 0, "--type", "ttlsvc", "--ttl", "3s")
    for _ in range(3):
        c.cli(0, "pass", uuid, "--note", "still here")
        time.sleep(1.0)
    wait_everywhere(c, sc, "ttlsvc", "n00", True, 10)
    t_before = time.monotonic()
    c.cli(0, "pass", uuid, "--note", "last one")
    t_last = time.monotonic()
    bound = ttl + 2.0 + SLACK
    seen = wait_everywhere(c, sc, "ttlsvc", "n00", False, bound + 10)
    late, early = spread(t_last, seen)
    figure(sc, "down on all %d agents %.2f s after the last pass (first "
           "%.2f s; TTL %.0f s, bound %.1f s)" % (N, late, early, ttl, bound))
    check(early >= ttl - 0.5 - (t_last - t_before), sc,
          "down %.2f s after the last pass, before its TTL of %.0f s ran out"
          % (early, ttl))
    check(late <= bound, sc, "down everywhere only %.2f s after the last "
          "pass (bound TTL + 2 s + %.0f s = %.1f s)" % (late, SLACK, bound))
    # the JSON of a service down by its TTL
    s = [x for x in services(c, 3, "--type", "ttlsvc") if x["uuid"] == uuid]
    check(len(s) == 1 and s[0]["status"] == "down" and s[0]["host"] == "n00",
          sc, "n03 lists %s" % s)
    c.cli(0, "deregister", uuid)


def scenario_process(c, procs):
    sc, bound = "process", 2.0 + SLACK
    p = procs.start(["sleep", "1000"])
    uuid = register(c, 1, "--type", "worker", "--pid", p.pid)
    wait_everywhere(c, sc, "worker", "n01", True, 10)
    os.kill(p.pid, signal.SIGKILL)
    t0 = time.monotonic()
    p.wait()
    seen = wait_everywhere(c, sc, "worker", "n01", False, bound + 10)
    late, early = spread(t0, seen)
    figure(sc, "pid %d SIGKILLed: down on all %d agents after %.2f s (first "
           "%.2f s; bound %.1f s)" % (p.pid, N, late, early, bound))
    check(late <= bound, sc, "down everywhere only after %.2f s (bound "
          "%.1f s)" % (late, bound))
    c.cli(1, "deregister", uuid)


def http_server(procs, port, root):
    p = procs.start([sys.executable, "-m", "http.server", port, "--bind",
                     "127.0.0.1", "--directory", root])

    def accepting():
        if p.poll() is not None:
            raise ScenarioFailed("http: the server exited with %d" %
                                 p.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return True
        except OSError:
            return False
    if not wait_until(accepting, 15, 0.05):
        raise ScenarioFailed("http: the server on port %d never listened" %
                             port)
    return p


def scenario_http(c, procs):
    sc, bound = "http", 10.0
    root = os.path.join(c.tmp, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "health"), "w") as f:
        f.write("ok\n")
    port = free_port()
    srv = http_server(procs, port, root)
    uuid = register(c, 2, "--type", "web", "--port", port, "--http-check",
                    "http://127.0.0.1:%d/health" % port, "--interval", "1s",
                    "--timeout", "500ms")
    t0 = time.monotonic()
    seen = wait_everywhere(c, sc, "web", "n02", True, bound)
    figure(sc, "registered: up on all agents after %.2f s" %
           spread(t0, seen)[0])
    s = [x for x in services(c, 0, "--type", "web") if x["uuid"] == uuid]
    check(len(s) == 1 and s[0]["checks"] and s[0]["checks"][0]["kind"] ==
          "http", sc, "n00 lists %s" % s)
    procs.stop(srv)
    t0 = time.monotonic()
    seen = wait_everywhere(c, sc, "web", "n02", False, bound)
    figure(sc, "server stopped: down on all agents after %.2f s" %
           spread(t0, seen)[0])
    srv = http_server(procs, port, root)
    t0 = time.monotonic()
    seen = wait_everywhere(c, sc, "web", "n02", True, bound)
    figure(sc, "server back on port %d: up on all agents after %.2f s "
           "(bound %.0f s each)" % (port, spread(t0, seen)[0], bound))
    procs.stop(srv)
    c.cli(2, "deregister", uuid)


def scenario_tcp(c):
    sc, bound = "tcp", 10.0
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.settimeout(0.2)
    port = lsock.getsockname()[1]
    stop = threading.Event()
    accepted = [0]

    def acceptor():  # accepts and closes, so the backlog never fills
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
                accepted[0] += 1
                conn.close()
            except socket.timeout:
                continue
            except OSError:
                return
    th = threading.Thread(target=acceptor, daemon=True)
    th.start()
    try:
        uuid = register(c, 3, "--type", "db", "--tcp-check",
                        "127.0.0.1:%d" % port, "--interval", "1s",
                        "--timeout", "500ms")
        t0 = time.monotonic()
        seen = wait_everywhere(c, sc, "db", "n03", True, bound)
        figure(sc, "listening: up on all agents after %.2f s (%d connections "
               "accepted)" % (spread(t0, seen)[0], accepted[0]))
        check(accepted[0] >= 1, sc, "up without a single connection")
    finally:
        stop.set()
        th.join()
        lsock.close()
    t0 = time.monotonic()
    seen = wait_everywhere(c, sc, "db", "n03", False, bound)
    figure(sc, "socket closed: down on all agents after %.2f s (bound %.0f "
           "s each)" % (spread(t0, seen)[0], bound))
    c.cli(3, "deregister", uuid)


def scenario_exec(c):
    sc, bound = "exec", 10.0
    flag = os.path.join(c.tmp, "exec-flag")
    open(flag, "w").close()
    cmd = "test -f %s" % flag
    uuid = register(c, EXEC_AGENT, "--type", "batch", "--exec-check", cmd,
                    "--interval", "1s", "--timeout", "500ms")
    host = c.agents[EXEC_AGENT].name
    t0 = time.monotonic()
    seen = wait_everywhere(c, sc, "batch", host, True, bound)
    figure(sc, "file there: up on all agents after %.2f s" %
           spread(t0, seen)[0])
    os.unlink(flag)
    t0 = time.monotonic()
    seen = wait_everywhere(c, sc, "batch", host, False, bound)
    figure(sc, "file removed: down on all agents after %.2f s (bound %.0f s "
           "each)" % (spread(t0, seen)[0], bound))
    # the same on an agent that does not allow exec checks
    p = c.cli(2, "register", "--type", "batch", "--exec-check", cmd,
              "--interval", "1s", "--timeout", "500ms", check=False)
    figure(sc, "n02 (no --allow-exec-checks): exit %d, %r" % (
        p.returncode, p.stderr.strip()))
    check(p.returncode != 0, sc, "n02 accepted an exec check without "
          "--allow-exec-checks (printed %r)" % p.stdout)
    check("exec" in p.stderr.lower(), sc, "the refusal does not name exec "
          "checks: %r" % p.stderr)
    check(not p.stdout.strip(), sc, "a refused register printed %r" %
          p.stdout)
    listed = [x for x in services(c, 2, "--type", "batch")
              if x["host"] == "n02"]
    check(not listed, sc, "n02 lists a refused exec service: %s" % listed)
    c.cli(EXEC_AGENT, "deregister", uuid)


class LineReader:
    """A background client's stdout, line by line, on a thread."""

    def __init__(self, p):
        self.p, self.lines, self.lock = p, [], threading.Lock()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        try:
            for line in self.p.stdout:
                with self.lock:
                    self.lines.append(line.rstrip("\n"))
        except (OSError, ValueError):  # closed under us by the cleanup
            pass

    def finish(self, procs):
        """Stops the client, then collects what it wrote to the end."""
        procs.stop(self.p, close=False)
        self.th.join(5)
        procs.stop(self.p)
        return self.get()

    def get(self):
        with self.lock:
            return list(self.lines)


def scenario_watch(c, procs):
    sc, typ = "watch", "watched"
    uuid = register(c, 0, "--type", typ, "--ttl", "5m")
    c.cli(0, "fail", uuid, "--note", "not yet")
    wait_everywhere(c, sc, typ, "n00", False, 10, agents=[3])
    w = procs.start([c.bin, "watch", "--type", typ, "--socket",
                     c.agents[3].sock], stdout=subprocess.PIPE, text=True,
                    env=c.env)
    rd = LineReader(w)
    check(wait_until(lambda: len(rd.get()) >= 1, 10, 0.05), sc,
          "no initial line from watch within 10 s (exit %s)" % w.poll())
    steps = [("pass", True), ("fail", False), ("pass", True)]
    for k, (cmd, want) in enumerate(steps):
        c.cli(0, cmd, uuid, "--note", "step %d" % k)
        wait_everywhere(c, sc, typ, "n00", want, 10, agents=[3])
        check(wait_until(lambda: len(rd.get()) >= k + 2, 10, 0.05), sc,
              "no watch line for step %d (%s) within 10 s: %s" % (
                  k, cmd, rd.get()))
    time.sleep(2)  # anything more would be a spurious line
    check(w.poll() is None, sc, "watch exited (%s) while the agent was up" %
          w.returncode)
    lines = rd.finish(procs)
    try:
        ev = [json.loads(l) for l in lines]
    except ValueError:
        raise ScenarioFailed("watch: a line is not JSON: %s" % lines)
    figure(sc, "%d lines: %s" % (len(ev), "; ".join(
        "seq %s %s->%s%s (%s)" % (e.get("seq"), e.get("old"), e.get("new"),
                                  " initial" if e.get("initial") else "",
                                  e.get("cause")) for e in ev)))
    check(len(ev) == 4, sc, "expected 4 lines (initial down, up, down, up), "
          "got %d: %s" % (len(ev), lines))
    check([e.get("seq") for e in ev] == [1, 2, 3, 4], sc,
          "seq not 1..4: %s" % [e.get("seq") for e in ev])
    check(ev[0].get("initial") is True and ev[0].get("new") == "down", sc,
          "the first line is not the initial state (down): %s" % ev[0])
    check([e.get("new") for e in ev[1:]] == ["up", "down", "up"], sc,
          "transitions are not up, down, up: %s" % [e.get("new") for e in ev])
    for prev, e in zip(ev, ev[1:]):
        check("initial" not in e, sc, "a transition says initial: %s" % e)
        check(e.get("old") == prev.get("new"), sc, "old %s after new %s" % (
            e.get("old"), prev.get("new")))
    for e in ev:
        check(e.get("kind") == "service" and e.get("uuid") == uuid and
              e.get("type") == typ and e.get("host") == "n00", sc,
              "a line about something else: %s" % e)
    c.cli(0, "deregister", uuid)


def scenario_ephemeral(c, procs):
    sc, bound = "ephemeral", 10.0
    # stdin a pipe this test holds open: the client keeps its connection
    cl = procs.start([c.bin, "register", "--ephemeral", "--type", "session",
                      "--socket", c.agents[1].sock], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, env=c.env)
    rd = LineReader(cl)
    if not wait_until(lambda: rd.get(), 10, 0.05):
        raise ScenarioFailed("ephemeral: no uuid printed within 10 s (exit "
                             "%s)" % cl.poll())
    uuid = rd.get()[0].strip()
    check(len(uuid) == 36, sc, "printed %r, not a uuid" % uuid)

    def listed(i):
        return any(s["uuid"] == uuid for s in services(c, i))
    t0 = time.monotonic()
    seen = first_times(c, sc, range(N), listed, bound, "ephemeral listed")
    figure(sc, "listed on all agents after %.2f s" % spread(t0, seen)[0])
    check(cl.poll() is None, sc, "the holding client exited with %s" %
          cl.returncode)
    os.kill(cl.pid, signal.SIGKILL)
    t0 = time.monotonic()
    cl.wait()

    def gone(i):
        return not listed(i) and is_up_uuid(c, i, uuid)[0] == 1
    seen = first_times(c, sc, range(N), gone, bound, "ephemeral gone")
    figure(sc, "client SIGKILLed: gone from all agents after %.2f s (bound "
           "%.0f s)" % (spread(t0, seen)[0], bound))
    rd.finish(procs)


def scenario_restart(c):
    """Round 1: SIGTERM (a graceful leave), one service up. Round 2:
    SIGKILL (nothing written at exit), the same service and a second one in
    maintenance: both come back, the second still in maintenance."""
    sc, r = "restart", 2
    host = c.agents[r].name
    uuid = register(c, r, "--type", "durable", "--name", "durable-1",
                    "--tag", "keep", "--meta", "k=v")

    def entry(i, u):
        s = [x for x in services(c, i, "--type", "durable")
             if x["uuid"] == u]
        return s[0] if len(s) == 1 else None
    first_times(c, sc, range(N), lambda i: (entry(i, uuid) or {}).get(
        "status") == "up", 10, "durable up")
    created = {uuid: entry(r, uuid)["created_at"]}
    want = {uuid: "up"}

    def back(i):
        # the restarted n02 itself (its new generation), not a view of the
        # process before (a SIGKILL and restart go unnoticed by the others)
        gen = [mm["incarnation"]["generation"] for mm in
               c.cli_json(i, "members") if mm["name"] == host]
        if gen != [c.agents[r].generation]:
            return False
        for u, st in want.items():
            e = entry(i, u)
            if not (e is not None and e["created_at"] == created[u] and
                    e["status"] == st and e["member_status"] == "alive" and
                    e["local"] == (i == r)):
                return False
        e = entry(i, uuid)
        return (e["name"] == "durable-1" and e["tags"] == ["keep"] and
                e["meta"] == {"k": "v"})

    for rnd, sig in ((1, signal.SIGTERM), (2, signal.SIGKILL)):
        if rnd == 2:
            m = register(c, r, "--type", "durable", "--name", "durable-m")
            c.cli(r, "maint", m, "--for", "10m", "--note", "upgrade")
            first_times(c, sc, range(N), lambda i: (entry(i, m) or {}).get(
                "status") == "maintenance", 10, "durable-m in maintenance")
            created[m] = entry(r, m)["created_at"]
            want[m] = "maintenance"
        gen0 = c.agents[r].generation
        c.kill(r, sig)
        check(c.wait_exit(r, 20) is not None, sc, "%s did not exit on %s" %
              (host, sig.name))
        c.restart(r)
        t0 = time.monotonic()
        check(c.agents[r].generation > gen0, sc, "generation %s after %s" % (
            c.agents[r].generation, gen0))
        seen = first_times(c, sc, range(N), back, 30, "the same "
                           "registrations again after %s" % sig.name)
        figure(sc, "%s, %s restarted (generation %d -> %d): %s listed again "
               "on all agents with n02 at its new generation (same uuid and "
               "created_at, local only on %s) "
               "after %.2f s" % (sig.name, host, gen0, c.agents[r].generation,
                                 ", ".join("%s %s %s" % (u[:8], created[u],
                                                         want[u])
                                           for u in want), host,
                                 spread(t0, seen)[0]))
        if not c.wait_converged(30):
            raise ScenarioFailed("restart: no convergence: %s" %
                                 c.view_summary())
    for u in want:
        c.cli(r, "deregister", u)


def scenario_forged(c, procs):
    sc, victim, target = "forged", 1, 2
    # a genuine service of the victim: the forged list (a higher seq, only
    # the forged service) would replace it if it were taken
    genuine = register(c, victim, "--type", "genuine")
    wait_everywhere(c, sc, "genuine", c.agents[victim].name, True, 10)
    ins = c.new_agent("x05", c.ckey, c.cpub)
    before = c.cli_json(target, "stats")
    before = before.get("stats", before)
    bad0 = before.get("dropped", {}).get("service_list_bad_signature", 0)
    p = procs.start([FORGE, "--node-key", os.path.join(ins.home, "node.key"),
                     "--node-cert", os.path.join(ins.home, "node.cert"),
                     "--cluster-key", c.cpub, "--join", c.agents[0].addr,
                     "--victim-name", c.agents[victim].name, "--target",
                     c.agents[target].addr, "--type", "forged"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        raise ScenarioFailed("forged: forge_svc still running after 60 s")
    check(p.returncode == 0, sc, "forge_svc exited %d: %s" % (
        p.returncode, err.strip()))
    sent = json.loads(out.strip().splitlines()[-1])
    vid = [m["id"] for m in c.cli_json(target, "members")
           if m["name"] == c.agents[victim].name]
    check(vid == [sent["victim_id"]], sc, "the forgery names id %s, n01 is "
          "%s" % (sent["victim_id"], vid))

    def counted():
        st = c.cli_json(target, "stats")
        st = st.get("stats", st)
        return st.get("dropped", {}).get("service_list_bad_signature", 0) - bad0
    n = wait_until(counted, 10, 0.2)
    figure(sc, "%d-byte list for %s signed by %s: n02 counts %s more "
           "service_list_bad_signature" % (sent["bytes"], sent["victim"],
                                           sent["insider"], n))
    check(n and n >= 1, sc, "n02's stats do not count the forged list under "
          "service_list_bad_signature")
    for i in range(N):
        fake = [s for s in services(c, i) if s["type"] == "forged" or
                s["uuid"] == sent["uuid"]]
        check(not fake, sc, "%s lists the forged service: %s" % (
            c.agents[i].name, fake))
        rc, j = is_up(c, i, "forged", c.agents[victim].name)
        check(rc == 1 and j.get("status") == "unknown", sc,
              "%s: is-up forged n01: exit %d %s" % (c.agents[i].name, rc, j))
        check(up_state(c, i, "genuine", c.agents[victim].name, True), sc,
              "%s: n01's genuine service is no longer up" % c.agents[i].name)
    c.cli(victim, "deregister", genuine)


def scenario_dead(c):
    sc, d = "dead", 4
    uuid = register(c, d, "--type", "doomed")
    others = [i for i in range(N) if i != d]
    wait_everywhere(c, sc, "doomed", "n04", True, 10)
    c.kill(d, signal.SIGKILL)
    t0 = time.monotonic()
    c.wait_exit(d)

    def dead(i):
        rc, j = is_up(c, i, "doomed", "n04")
        return (rc == 1 and isinstance(j, dict) and j.get("status") == "down"
                and j.get("member_status") == "dead" and j.get("uuid") == uuid)
    seen = first_times(c, sc, others, dead, 60, "doomed down, n04 dead")
    figure(sc, "n04 SIGKILLed: is-up exit 1, member_status dead on the 4 "
           "others after %.2f s (first %.2f s; bound 60 s)" %
           spread(t0, seen))


def run(binary, forge_svc):
    global FORGE
    FORGE = forge_svc
    procs = Procs()
    with Cluster(binary, n=N, tag="svc",
                 agent_flags={EXEC_AGENT: ["--allow-exec-checks"]}) as c:
        try:
            c.start(converge_timeout=60)
            scenario_ttl(c)
            scenario_process(c, procs)
            scenario_http(c, procs)
            scenario_tcp(c)
            scenario_exec(c)
            scenario_watch(c, procs)
            scenario_ephemeral(c, procs)
            scenario_restart(c)
            scenario_forged(c, procs)
            scenario_dead(c)
        finally:
            procs.stop_all()
            for line in RESULTS:
                print("  " + line)


if __name__ == "__main__":
    main(run, tools=("forge_svc",))
