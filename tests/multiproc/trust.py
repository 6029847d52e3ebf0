#!/usr/bin/env python3
# trust.py LIVEMESH [MKCERT CERT_JOINER]: certificates that must not get in,
# against a mesh of 8 real agents on 127.0.0.1 (harness: cluster.py). The
# two tools are tests/tools/mkcert and tests/tools/cert_joiner; by default
# they are looked for beside the build's tests/ (LIVEMESH in build/mesh/).
#
# The 8 agents take their trusted cluster keys from a config file of their
# own (nXX/agent.json, "cluster_keys"), not from --cluster-key, because a
# reload (SIGHUP) re-reads the config file with the same flags: a flag would
# pin the keys. Every agent also has a member watch open on its control
# socket for the whole run ({"cmd":"watch","members":true}: one JSON line
# per member transition), and the views are polled as well; nothing is
# judged from log text.
#
#  refuse-own  An agent whose own certificate expired an hour ago, and one
#              whose certificate is valid only from tomorrow, refuse to
#              start: exit status 2, no control socket. So no honest agent
#              puts such a certificate on the wire, and the network part
#              below needs a process that does.
#  expired     Two cert_joiner processes (tests/tools/cert_joiner: a real
#              lm_node, libuv, UDP and TCP, the real envelope, that presents
#              exactly the certificate it is given, being free of the
#              agent's own check; see its header) join through the seeds n00
#              and n01: "x-exp" with a certificate from the right cluster key
#              that expired an hour ago, "x-nyv" with one valid only from an
#              hour from now (both from tests/tools/mkcert). Asserted over
#              ~15 s of polling every agent's members (and by the watches):
#              neither is ever listed by any of the 8; n00's and n01's stats
#              count their frames (dropped "cert_expired" and
#              "cert_not_yet_valid" grew); the joiners say they sent join
#              frames and saw nobody but themselves; the 8 still all see
#              each other alive. Meanwhile an agent "x-short" whose
#              certificate is valid for 20 s is admitted (listed alive by
#              all 8) and, once its certificate has expired, declared dead
#              by all 8 (not before).
#  rotation    The cluster key rotates from A to B as docs/trust.md says:
#              1. every agent's config gets [A, B], SIGHUP. Proof that each
#                 agent now accepts B: an agent "pb" with a certificate from
#                 B joins through all 8 and every one of them lists it alive
#                 (then it leaves).
#              2. every agent gets a certificate from B for its own key
#                 (mkcert: same node key, so the same member id) and is
#                 restarted, one at a time (SIGTERM, which leaves; started
#                 again on its port; a new certificate is only read at
#                 start), each time until all 8 see all 8 alive, the
#                 restarted one at its new generation.
#              3. every agent's config gets [B] alone, SIGHUP.
#              An agent "y-old" with a certificate from A that is never
#              renewed joins after step 1 and is listed alive by all 8 until
#              step 3; after step 3 all 8 declare it dead ("nodes whose
#              certificates it signed drop out", docs/trust.md).
#              Then an agent "xa" whose certificate from A is valid (365
#              days, unexpired) and which trusts A and B joins through all
#              8. Asserted: xa is never listed by any of the 8 over ~15 s;
#              every one of the 8 counts "cert_untrusted" drops (so every
#              agent's reload took effect); xa sees only itself; the 8 all
#              see each other alive. Throughout the rotation, from the
#              watches and from polling the views: none of the 8 is ever
#              dead; the only member ever seen left is the one being
#              restarted at the time (and pb when it leaves); suspicions are
#              counted and printed, not failed.
import base64
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
from cluster import (Cluster, ScenarioFailed, _child_setup, delta,  # noqa: E402
                     drops, log, main, wait_until)

N = 8
POLL_S = 15
SHORT_S = 20  # x-short's certificate: valid this long after it is issued
INTRUDERS = ("x-exp", "x-nyv", "xa")
# admitted, and then out: they may be listed, suspected, dead, never left
DROPPED = ("x-short", "y-old")


def check(cond, sc, what):
    if not cond:
        raise ScenarioFailed("%s: %s" % (sc, what))


# ---- what every agent sees: member watches and a poller ------------------

class Observer:
    """A member watch on every running agent (reopened after a restart),
    and a thread polling every agent's members twice a second. Each event
    or sample is tagged with the phase the test was in when it arrived."""

    def __init__(self, c):
        self.c = c
        self.phase = "start"
        self.events = []   # (phase, observer, event dict)
        self.samples = []  # (phase, observer, {name: status})
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.socks = {}
        self.poller = threading.Thread(target=self._poll, daemon=True)

    def start(self):
        for a in self.c.agents:
            self.watch(a)
        self.poller.start()

    def watch(self, a):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(a.sock)
        s.sendall(b'{"cmd":"watch","members":true}\n')
        f = s.makefile("rb")
        first = json.loads(f.readline())
        if not first.get("ok"):
            raise ScenarioFailed("watch on %s refused: %s" % (a.name, first))
        s.settimeout(None)
        self.socks[a.name] = s
        threading.Thread(target=self._read, args=(a.name, f),
                         daemon=True).start()

    def _read(self, name, f):
        try:
            for line in f:
                ev = json.loads(line)
                if ev.get("initial"):
                    continue
                with self.lock:
                    self.events.append((self.phase, name, ev))
        except (OSError, ValueError):
            pass

    def _poll(self):
        while not self.stop.is_set():
            for a in self.c.agents:
                if a.proc and a.proc.poll() is None:
                    sm = self.c.status_map(a)
                    if sm is not None:
                        with self.lock:
                            self.samples.append((self.phase, a.name, sm))
            self.stop.wait(0.5)

    def close(self):
        self.stop.set()
        for s in self.socks.values():
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.poller.join(5)

    def snapshot(self):
        with self.lock:
            return list(self.events), list(self.samples)


# ---- helpers ---------------------------------------------------------------

def write_config(a, keys):
    """The agent's config file: its trusted cluster keys."""
    path = os.path.join(a.home, "agent.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"cluster_keys": list(keys)}, f)
    os.rename(tmp, path)
    return path


def mkcert(tools, cluster_key, a, out, not_before=-60, expiry=365 * 86400):
    p = subprocess.run([tools["mkcert"], "--cluster-key", cluster_key,
                        "--node-key", a.key, "--name", a.name, "--out", out,
                        "--not-before", str(not_before),
                        "--expiry", str(expiry)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    if p.returncode != 0:
        raise ScenarioFailed("mkcert for %s: exit %d: %s" % (
            a.name, p.returncode, p.stderr.strip()))
    return json.loads(p.stdout)


def key_id(pub_path):
    """The id a certificate names its cluster key by: the first 8 bytes of
    the public key (the key file's base64url text)."""
    with open(pub_path) as f:
        text = f.read().split()[1]
    return base64.urlsafe_b64decode(text + "=")[:8].hex()


def listed(c, names, agents=None):
    """(observer, name, status) for every intruder name an agent lists."""
    out = []
    for a in agents or c.agents:
        for m in c.members(a) or []:
            if m["name"] in names:
                out.append((a.name, m["name"], m["status"]))
    return out


def poll_never_listed(c, names, seconds, alive_procs=()):
    """Polls every agent's members for `seconds`: the intruders seen."""
    t0 = time.time()
    seen = []
    while time.time() < t0 + seconds:
        seen += listed(c, names)
        if seen:
            break
        for p in alive_procs:
            if p.poll() is not None:
                raise ScenarioFailed("an intruder process exited early "
                                     "(status %d)" % p.returncode)
        time.sleep(1)
    return seen


def all_stats(c):
    return {a.name: drops(c.stats(a)) for a in c.agents}


# ---- refuse-own ---------------------------------------------------------------

def scenario_refuse_own(c, tools, keys):
    sc = "refuse-own"
    out = {}
    for name, nb, ex in (("r-exp", -7200, -3600), ("r-nyv", 86400, 2 * 86400)):
        r = c.new_agent(name, keys["A"][0], None)
        write_config(r, [keys["A"][1]])
        info = mkcert(tools, keys["A"][0], r, os.path.join(r.home, "node.cert"),
                      nb, ex)
        args = [c.bin, "agent", "--data-dir", r.data, "--node-key", r.key,
                "--bind", "127.0.0.1:0", "--socket", r.sock,
                "--log-format", "json",
                "--config", os.path.join(r.home, "agent.json")]
        p = subprocess.run(args, env=c.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        check(p.returncode == 2, sc, "%s (not_before %+d s, expiry %+d s) "
              "exited %d, expected 2: %s" % (name, nb, ex, p.returncode,
                                             p.stderr.strip()))
        check(not os.path.exists(r.sock), sc, "%s left a control socket" % name)
        out[name] = (p.returncode, info["expiry"] - info["now"],
                     p.stderr.strip())
    log("SUMMARY refuse-own: an agent with its own certificate expired an "
        "hour ago exits %d, one valid only from tomorrow exits %d; neither "
        "opens its control socket (messages: %r; %r)" % (
            out["r-exp"][0], out["r-nyv"][0], out["r-exp"][2],
            out["r-nyv"][2]))


# ---- expired ------------------------------------------------------------------

def start_joiner(c, tools, name, cluster_key, cluster_pub, nb, ex, seeds,
                 seconds):
    x = c.new_agent(name, cluster_key, cluster_pub)
    cert = os.path.join(x.home, "test.cert")
    info = mkcert(tools, cluster_key, x, cert, nb, ex)
    p = subprocess.Popen([tools["cert_joiner"], "--node-key", x.key,
                          "--node-cert", cert, "--cluster-key", cluster_pub]
                         + sum((["--join", s.addr] for s in seeds), [])
                         + ["--seconds", str(seconds)],
                         env=c.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True,
                         preexec_fn=_child_setup)
    line = p.stdout.readline()
    try:
        st = json.loads(line)
    except ValueError:
        p.kill()
        raise ScenarioFailed("%s: cert_joiner did not start: %r %s" % (
            name, line, p.stderr.read()[-500:]))
    check(st.get("started") and st.get("expiry") == info["expiry"], "expired",
          "%s: cert_joiner start line %s" % (name, st))
    return p, info


def finish_joiner(name, p):
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    if p.returncode != 0:
        raise ScenarioFailed("%s: cert_joiner exited %d: %s" % (
            name, p.returncode, err[-500:]))
    return json.loads(out.strip().splitlines()[-1])


def wait_all_see(c, name, status, timeout):
    """Until every one of the 8 holds `name` in `status`; the seconds it
    took, or None."""
    t0 = time.monotonic()
    ok = wait_until(lambda: all(c.status_of(a, name) == status
                                for a in c.agents), timeout, 0.25)
    return time.monotonic() - t0 if ok else None


def scenario_expired(c, tools, keys, obs):
    sc = "expired"
    obs.phase = "expired"
    seeds = c.agents[:2]
    ka, pa = keys["A"]
    # an agent whose certificate expires SHORT_S seconds from now: admitted
    # while it holds, declared dead by all once it has expired
    short = c.new_agent("x-short", ka, pa)
    c.extra.append(short)
    info = mkcert(tools, ka, short, os.path.join(short.home, "node.cert"),
                  -60, SHORT_S)
    t_short = time.monotonic()
    c.spawn(short, join=[a.addr for a in seeds])
    c.wait_started(short)
    check(wait_all_see(c, "x-short", "alive", 10) is not None, sc,
          "x-short (certificate valid for %d s more) is not listed alive by "
          "all 8: %s" % (SHORT_S, {a.name: c.status_of(a, "x-short")
                                  for a in c.agents}))
    t_short_in = time.monotonic() - t_short
    before = all_stats(c)
    j_exp = start_joiner(c, tools, "x-exp", ka, pa, -7200, -3600, seeds,
                         POLL_S + 3)
    j_nyv = start_joiner(c, tools, "x-nyv", ka, pa, 3600, 7200, seeds,
                         POLL_S + 3)
    seen = poll_never_listed(c, ("x-exp", "x-nyv"), POLL_S,
                             (j_exp[0], j_nyv[0]))
    check(not seen, sc, "an intruder is listed: %s" % seen[:5])
    after = all_stats(c)
    d = {n: delta(after[n], before[n]) for n in after}
    for s in seeds:
        for reason in ("cert_expired", "cert_not_yet_valid"):
            check(d[s.name].get(reason, 0) > 0, sc, "%s does not count %s "
                  "(dropped grew by %s)" % (s.name, reason, d[s.name]))
    sj = c.cli_json(seeds[1], "stats")
    check(sj.get("dropped", {}).get("cert_expired", 0) > 0, sc,
          "`livemesh stats -o json` on n01 shows no cert_expired: %s" %
          sj.get("dropped"))
    res = {}
    for name, (p, _) in (("x-exp", j_exp), ("x-nyv", j_nyv)):
        r = finish_joiner(name, p)
        res[name] = r
        check(r["tcp_frames_out"] > 0, sc, "%s sent no join frame: %s" %
              (name, r))
        check([m["name"] for m in r["members"]] == [name], sc,
              "%s saw members %s" % (name, r["members"]))
    expiry_at = t_short + (info["expiry"] - info["now"])
    t_dead = wait_all_see(c, "x-short", "dead",
                          max(5, expiry_at - time.monotonic()) + 30)
    check(t_dead is not None, sc, "x-short, whose certificate expired, is "
          "not declared dead by all 8: %s" % {
              a.name: c.status_of(a, "x-short") for a in c.agents})
    t_out = time.monotonic() - expiry_at
    check(t_out >= -1, sc, "x-short declared dead %.1f s before its "
          "certificate expired" % -t_out)
    check(short.proc.poll() is None, sc, "x-short exited: %s" %
          c.log_tail(short))
    c.kill(short, signal.SIGKILL)
    c.wait_exit(short)
    if not c.wait_converged(30):
        raise ScenarioFailed("expired: the %d do not all see each other "
                             "alive: %s" % (N, c.view_summary()))
    grew = {n: v for n, v in d.items() if v}
    log("SUMMARY expired: x-exp (certificate from the right cluster key, "
        "expired an hour ago) sent %d join frames, x-nyv (valid from an hour "
        "from now) %d, to n00 and n01; neither listed by any of the %d in "
        "%d s of polling; drops that grew: %s" % (
            res["x-exp"]["tcp_frames_out"], res["x-nyv"]["tcp_frames_out"], N,
            POLL_S, grew))
    log("SUMMARY expired: x-short (an agent whose certificate expired %d s "
        "after it was issued) was listed alive by all %d %.1f s after it "
        "started, and declared dead by all %.1f s after its certificate "
        "expired" % (SHORT_S, N, t_short_in, t_out))


# ---- rotation -----------------------------------------------------------------

def reload_all(c, keys_list):
    for a in c.agents:
        write_config(a, keys_list)
    for a in c.agents:
        c.kill(a, signal.SIGHUP)
    time.sleep(1)
    dead = [a.name for a in c.agents if a.proc.poll() is not None]
    check(not dead, "rotation", "agents exited on SIGHUP: %s" % dead)
    bad = [a.name for a in c.agents if not c.ping(a)]
    check(not bad, "rotation", "agents do not answer ping after SIGHUP: %s"
          % bad)


def wait_generation(c, who, gen, timeout):
    def ok():
        for a in c.live():
            m = c.member(a, who.name)
            if not m or m["status"] != "alive" or \
                    m["incarnation"]["generation"] != gen:
                return False
        return True
    return wait_until(ok, timeout, 0.25)


def scenario_rotation(c, tools, keys, obs):
    sc = "rotation"
    (ka, pa), (kb, pb_) = keys["A"], keys["B"]
    t_rot = time.monotonic()

    # 1. trust A and B everywhere
    obs.phase = "add-B"
    reload_all(c, [pa, pb_])
    check(c.wait_converged(10), sc, "after adding B: %s" % c.view_summary())
    probe = c.new_agent("pb", kb, pb_)
    c.extra.append(probe)
    t0 = time.monotonic()
    c.spawn(probe, join=[a.addr for a in c.agents],
            extra_args=["--cluster-key", pa])
    c.wait_started(probe)
    ok = wait_until(
        lambda: all(c.status_of(a, "pb") == "alive" for a in c.agents), 20)
    check(ok, sc, "an agent with a certificate from B is not listed alive "
          "by every agent after B was added: %s" % {
              a.name: c.status_of(a, "pb") for a in c.agents})
    t_probe = time.monotonic() - t0
    obs.phase = "probe-leaves"
    c.kill(probe, signal.SIGTERM)
    c.wait_exit(probe)
    wait_until(
        lambda: all(c.status_of(a, "pb") == "left" for a in c.agents), 15)

    # a member with a certificate from A that nobody will renew: in the mesh
    # during the restarts, out once A is removed
    yold = c.new_agent("y-old", ka, pa)
    c.extra.append(yold)
    c.spawn(yold, join=[a.addr for a in c.agents],
            extra_args=["--cluster-key", pb_])
    c.wait_started(yold)
    check(wait_all_see(c, "y-old", "alive", 20) is not None, sc,
          "y-old (certificate from A) is not listed alive by all 8 while A "
          "and B are trusted: %s" % {a.name: c.status_of(a, "y-old")
                                     for a in c.agents})
    with_y = {a.name for a in c.agents} | {"y-old"}

    # 2. a certificate from B for every agent, one restart at a time. n00
    # started alone; like any agent it needs a seed to come back through.
    c.agents[0].join = [c.agents[1].addr]
    restarts = []
    kid_b = key_id(pb_)
    for a in c.agents:
        info = mkcert(tools, kb, a, os.path.join(a.home, "node.cert"))
        check(info["cluster_key_id"] == kid_b, sc, "mkcert: %s" % info)
        obs.phase = "restart " + a.name
        t0 = time.monotonic()
        old_gen = a.generation
        c.kill(a, signal.SIGTERM)
        rc = c.wait_exit(a, 15)
        check(rc == 0, sc, "%s exited %s on SIGTERM" % (a.name, rc))
        c.restart(a)
        obs.watch(a)
        check(a.generation > old_gen, sc, "%s came back with generation %d "
              "(was %d)" % (a.name, a.generation, old_gen))
        if not wait_generation(c, a, a.generation, 30):
            raise ScenarioFailed("rotation: after restarting %s with its "
                                 "certificate from B, not everybody sees it "
                                 "alive at generation %d: %s" % (
                                     a.name, a.generation, c.view_summary()))
        check(c.wait_converged(30, expect=with_y), sc, "after restarting "
              "%s: %s" % (a.name, c.view_summary()))
        restarts.append((a.name, time.monotonic() - t0))
        obs.phase = "between-restarts"

    # 3. trust B alone
    obs.phase = "remove-A"
    t_removed = time.monotonic()
    reload_all(c, [pb_])
    t_yold = wait_all_see(c, "y-old", "dead", 30)
    check(t_yold is not None, sc, "y-old, whose certificate comes from the "
          "removed key A, is not declared dead by all 8: %s" % {
              a.name: c.status_of(a, "y-old") for a in c.agents})
    t_yold = time.monotonic() - t_removed
    check(yold.proc.poll() is None, sc, "y-old exited: %s" % c.log_tail(yold))
    # gone before xa comes, so that the drops counted next are xa's alone
    c.kill(yold, signal.SIGKILL)
    c.wait_exit(yold)
    check(c.wait_converged(10), sc, "after removing A: %s" % c.view_summary())
    t_rotation = time.monotonic() - t_rot

    # a valid, unexpired certificate from A: never admitted
    obs.phase = "revoked"
    before = all_stats(c)
    xa = c.new_agent("xa", ka, pa)
    c.extra.append(xa)
    c.spawn(xa, join=[a.addr for a in c.agents],
            extra_args=["--cluster-key", pb_])
    c.wait_started(xa)
    seen = poll_never_listed(c, ("xa",), POLL_S)
    check(xa.proc.poll() is None, sc, "xa exited: %s" % c.log_tail(xa))
    check(not seen, sc, "the node with a certificate from the removed key A "
          "is listed: %s" % seen[:5])
    after = all_stats(c)
    d = {n: delta(after[n], before[n]) for n in after}
    missing = [n for n, v in d.items() if v.get("cert_untrusted", 0) <= 0]
    check(not missing, sc, "no cert_untrusted drops counted by %s (drops "
          "grew by %s)" % (missing, {n: d[n] for n in missing}))
    xs = c.status_map(xa)
    check(xs == {"xa": "alive"}, sc, "xa sees %s" % xs)
    if not c.wait_converged(30):
        raise ScenarioFailed("rotation: the %d do not all see each other "
                             "alive: %s" % (N, c.view_summary()))
    c.kill(xa, signal.SIGKILL)
    c.wait_exit(xa)
    obs.phase = "end"
    time.sleep(1)

    # what everybody saw, throughout
    events, samples = obs.snapshot()
    names = {a.name for a in c.agents}
    bad, susp, lefts = [], [], []
    for phase, who, ev in events:
        name, new = ev.get("name"), ev.get("new")
        if name in INTRUDERS:
            bad.append((phase, who, name, new))
        elif name in DROPPED:
            if new == "left":
                bad.append((phase, who, name, new))
        elif new == "dead":
            bad.append((phase, who, name, new))
        elif new == "left":
            if phase == "restart " + name or (name == "pb" and
                                              phase == "probe-leaves"):
                lefts.append((who, name))
            else:
                bad.append((phase, who, name, new))
        elif new == "suspect":
            susp.append((phase, who, name))
    check(not bad, sc, "member transitions that must not happen "
          "(phase, observer, member, status): %s" % bad[:10])
    bad_s = []
    for phase, who, sm in samples:
        for name, st in sm.items():
            if name in INTRUDERS:
                bad_s.append((phase, who, name, st))
            elif name in names and st not in ("alive", "suspect") and \
                    phase != "restart " + name:
                bad_s.append((phase, who, name, st))
    check(not bad_s, sc, "views polled that must not happen (phase, "
          "observer, member, status): %s" % bad_s[:10])
    rot_events = [e for e in events if e[0] not in ("start", "expired")]
    log("SUMMARY rotation: A -> B in %.1f s over %d agents (pb, certificate "
        "from B, listed alive by all %d %.1f s after it started; restarts with "
        "the certificate from B, s until all see it at its new generation: "
        "%s); %d member transitions watched, %d view samples polled: nobody "
        "of the %d dead, left only while restarting (%d such), suspicions "
        "%d %s; y-old (certificate from A, never renewed) declared dead by "
        "all %.1f s after A was removed; then xa (valid certificate from the "
        "removed key A) never listed by any of the %d in %d s; "
        "cert_untrusted counted by every agent: %s" % (
            t_rotation, N, N, t_probe,
            ", ".join("%s %.1f" % r for r in restarts), len(rot_events),
            len(samples), N, len(lefts), len(susp), susp[:5], t_yold, N,
            POLL_S, {n: v.get("cert_untrusted") for n, v in d.items()}))


def run(binary, mkcert, cert_joiner):
    tools = {"mkcert": mkcert, "cert_joiner": cert_joiner}
    with Cluster(binary, n=N, tag="trust") as c:
        keys = {"A": c.keygen_cluster("keysA"), "B": c.keygen_cluster("keysB")}
        c.ckey, c.cpub = keys["A"]
        for i in range(N):
            a = c.new_agent("n%02d" % i, keys["A"][0], None, i)
            a.flags = ["--config", write_config(a, [keys["A"][1]])]
            c.agents.append(a)
        scenario_refuse_own(c, tools, keys)
        c.launch()
        obs = Observer(c)
        obs.start()
        try:
            scenario_expired(c, tools, keys, obs)
            scenario_rotation(c, tools, keys, obs)
        finally:
            obs.close()


if __name__ == "__main__":
    main(run, tools=("mkcert", "cert_joiner"))
