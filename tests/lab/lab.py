#!/usr/bin/env python3
# lab.py: the multi-host fault lab's driver (run it through scripts/lab.sh).
#
# Each scenario is one lab network (tests/lab/net.sh): 8 network namespaces
# joined by veth pairs to a bridge, one real `livemesh agent` per namespace
# on its own address 10.77.K.(10+I):7946, default protocol timing, every
# agent with a service "web" registered. The agents are run and read by the
# multi-process harness (tests/multiproc/cluster.py, subclassed here): keys,
# JSON logs, the control socket, the real CLI.
#
# Faults are nft rules in each host's "inet lmlab" input/output chains
# (random loss `numgen random mod 100 < P drop`, drops by saddr/daddr for
# full and one-way partitions, everything dropped for a link that is down)
# and signals (SIGKILL, SIGSTOP/SIGCONT), plus a restart on a new address.
# The flood scenario adds a 9th namespace on the bridge that runs no agent
# and floods one host with datagrams (tests/tools/flood): garbage, then
# real datagrams captured in the victim's namespace, tampered.
#
# Outcomes are read from structured data only: `members` and `stats` over
# the control socket, `is-up web HOST -o json` through the CLI, and the
# member events of the agents' JSON logs (who marked whom suspect/dead,
# when). No assertion is a tight wall-clock bound; the bounds are generous
# and the measured times are reported.
#
#   lab.py BINARY [SCENARIO]... [-o json] [-j N]   scenarios (default: all
#                                                  but flood)
#   lab.py BINARY soak [--minutes M] [-o json]     churn with invariants
#   lab.py BINARY --one NAME --net K --result F    one scenario (internal)
#
# Every scenario runs as a child process of its own on a network number of
# its own, so up to -j of them run at once without sharing anything.
#
# Standard library only (works with Debian's /usr/bin/python3 3.11).

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "multiproc"))
from cluster import (Cluster, ScenarioFailed, _child_setup, log,  # noqa: E402
                     tool_beside, udp_snmp, wait_until)
from flood import cpu_s  # noqa: E402

NET = os.path.join(HERE, "net.sh")
CAPTURE = os.path.join(HERE, "capture.py")
PORT = 7946
HOSTS = 8
SVC = "web"

SCENARIOS = ["crash", "pause", "loss10", "loss20", "loss30", "inbound80",
             "partition", "oneway", "flap", "newip"]
# run only when named (ctest: lab_flood): 50,000 datagrams a second (the
# flooder, the kernel forwarding them, the victim) take CPU from the
# timing-sensitive scenarios run beside it, and theirs blurs its CPU figures
NAMED_ONLY = ["flood"]
# longest first, so -j packs them well
ORDER = ["flood", "flap", "partition", "inbound80", "oneway", "loss30",
         "loss20", "loss10", "pause", "newip", "crash"]


def net(*args):
    p = subprocess.run(["bash", NET] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise ScenarioFailed("net.sh %s: %s" % (" ".join(map(str, args)),
                                                p.stderr.strip()))
    return p.stdout.strip()


def ms(dt):
    return None if dt is None else int(round(dt * 1000))


# ---- the lab cluster --------------------------------------------------------

class LabCluster(Cluster):
    """A Cluster whose agents each run in a network namespace of lab network
    `k`, bound to that namespace's address. Faults per host are kept in
    self.faults and written out as nft rules by apply()."""

    def __init__(self, binary, k, n=HOSTS, tag="lab"):
        super().__init__(binary, n=n, tag="lab-%s" % tag)
        self.k = k
        self.ips = {i: "10.77.%d.%d" % (k, 10 + i) for i in range(n)}
        self.faults = {i: self._no_fault() for i in range(n)}
        self.t_ready = None
        net("up", k, n)

    @staticmethod
    def _no_fault():
        return {"loss_in": 0, "loss_out": 0, "from": set(), "to": set(),
                "down": False}

    def ns(self, a):
        return "lmlab%dh%d" % (self.k, self._agent(a).idx)

    def spawn(self, a, join=None, bind=None, extra_args=()):
        """As Cluster.spawn, inside the agent's namespace, on its address."""
        if join is not None:
            a.join = list(join)
        args = ["ip", "netns", "exec", self.ns(a), self.bin, "agent",
                "--data-dir", a.data, "--node-key", a.key,
                "--cluster-key", a.cluster_pub,
                "--bind", "%s:%d" % (self.ips[a.idx], PORT),
                "--socket", a.sock, "--log-format", "json"]
        for j in a.join:
            args += ["--join", j]
        args += list(a.flags) + list(extra_args)
        a.starts += 1
        import cluster as _c
        with open(a.logf, "a") as lf:
            # `ip netns exec` execs the agent: the PID is the agent's
            a.proc = subprocess.Popen(args, env=self.env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=lf,
                                      preexec_fn=_c._child_setup)
        return a.proc

    def stop_all(self):
        if self._stopped:
            return
        super().stop_all()
        try:
            net("down", self.k)
        except ScenarioFailed as e:
            log("cleanup: %s" % e)

    # ---- faults ----

    def apply(self, i):
        f = self.faults[i]
        rin, rout = [], []
        if f["down"]:
            rin.append('iifname "eth0" drop')
            rout.append('oifname "eth0" drop')
        if f["from"]:
            rin.append("ip saddr { %s } drop" % ", ".join(sorted(f["from"])))
        if f["to"]:
            rout.append("ip daddr { %s } drop" % ", ".join(sorted(f["to"])))
        if f["loss_in"]:
            rin.append('iifname "eth0" numgen random mod 100 < %d drop' % f["loss_in"])
        if f["loss_out"]:
            rout.append('oifname "eth0" numgen random mod 100 < %d drop' % f["loss_out"])
        script = "flush chain inet lmlab input\nflush chain inet lmlab output\n"
        script += "".join("add rule inet lmlab input %s\n" % r for r in rin)
        script += "".join("add rule inet lmlab output %s\n" % r for r in rout)
        p = subprocess.run(["ip", "netns", "exec", "lmlab%dh%d" % (self.k, i),
                            "nft", "-f", "-"], input=script, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise ScenarioFailed("nft on host %d: %s" % (i, p.stderr.strip()))

    def set_fault(self, i, **kw):
        self.faults[i].update(kw)
        self.apply(i)

    def heal(self):
        for i in self.faults:
            self.faults[i] = self._no_fault()
            self.apply(i)

    def loss_all(self, pct):
        """Every link loses pct% of its packets, each way: every host drops
        pct% of what it sends (so a packet crosses one lossy hop)."""
        for i in self.faults:
            self.set_fault(i, loss_out=pct)

    def partition(self, side_a, side_b, oneway=False):
        """Full: A and B cannot hear each other. One-way: what A sends never
        reaches B (B drops it on input); B to A still works."""
        ips_a = {self.ips[a.idx] for a in side_a}
        ips_b = {self.ips[b.idx] for b in side_b}
        for b in side_b:
            self.faults[b.idx]["from"] |= ips_a
            self.apply(b.idx)
        if not oneway:
            for a in side_a:
                self.faults[a.idx]["from"] |= ips_b
                self.apply(a.idx)

    def set_ip(self, a, ip):
        net("setip", self.k, a.idx, ip)
        self.ips[a.idx] = ip

    def add_attacker(self):
        """A 9th namespace on the bridge that runs no agent (net.sh
        attacker): (namespace, address). Deleted with the network."""
        ns, addr = net("attacker", self.k).split()
        return ns, addr

    def bridge_ns(self):
        return "lmlab%dbr" % self.k

    # ---- setup ----

    def setup(self):
        self.start(converge_timeout=90)
        for a in self.agents:
            self.cli(a, "register", "--type", SVC, "--name", a.name)
        if not wait_until(lambda: self.isup_ok(self.agents, self.agents,
                                               set()) == [], 60, 0.5):
            raise ScenarioFailed("setup: services not up everywhere: %s" %
                                 self.isup_ok(self.agents, self.agents, set()))
        self.t_ready = time.time()

    # ---- reading ----

    def isup(self, obs, host):
        rc, out = self.cli_json(obs, "is-up", SVC, host.name, check=False)
        if rc not in (0, 1) or not isinstance(out, dict):
            return None
        if bool(out.get("up")) != (rc == 0):
            return "exit %d but up=%s" % (rc, out.get("up"))
        return bool(out.get("up"))

    def isup_ok(self, observers, hosts, down_names):
        """[(observer, host, answer)] where `is-up web HOST` on observer is
        not what the members say (up unless the host is in down_names)."""
        bad = []
        for o in observers:
            for h in hosts:
                want = h.name not in down_names
                got = self.isup(o, h)
                if got is not want:
                    bad.append((o.name, h.name, got))
        return bad

    def views(self, observers):
        return {o.name: self.status_map(o) for o in observers}

    def views_are(self, observers, expect):
        """Every observer sees exactly `expect` ({name: status}; statuses
        of names not in expect are ignored)."""
        for o in observers:
            sm = self.status_map(o)
            if sm is None:
                return False
            for name, st in expect.items():
                if sm.get(name) != st:
                    return False
        return True

    def all_events(self, kinds, since):
        return [e for a in self.agents for e in self.events(a, kinds, since)]

    def first_event(self, observer, kind, who, since):
        for e in self.events(observer, {kind}, since):
            if e.who == who:
                return e.t
        return None


class Result:
    def __init__(self, name):
        self.d = {"scenario": name, "hosts": HOSTS, "ok": False,
                  "false_dead": 0, "false_suspect": 0, "detect_all_ms": None,
                  "reconverge_ms": None, "notes": ""}
        self.fails = []
        self.notes = []

    def check(self, cond, what):
        if not cond:
            self.fails.append(what)
            log("ASSERTION FAILED: %s" % what)
        return cond

    def note(self, s):
        self.notes.append(s)
        log("note: %s" % s)

    def done(self):
        self.d["ok"] = not self.fails
        parts = (["FAILED: " + f for f in self.fails]) + self.notes
        self.d["notes"] = "; ".join(parts)
        return self.d


def wait_timed(pred, timeout, interval=0.25):
    """(seconds it took, or None when pred never held within timeout)."""
    t0 = time.time()
    return (time.time() - t0) if wait_until(pred, timeout, interval) else None


def pairs(evs):
    return sorted({"%s->%s" % (e.observer, e.who) for e in evs})


def first_times(evs):
    out = {}
    for e in evs:
        k = "%s->%s" % (e.observer, e.who)
        out[k] = min(out.get(k, e.t), e.t)
    return sorted(out.items(), key=lambda kv: kv[1])


def count_false(r, c, healthy_pair, since):
    """false_dead/false_suspect: dead/suspect events (observer, subject) for
    which healthy_pair(observer, subject, t) says the subject was healthy as
    seen from that observer. Lists them in the notes."""
    dead = [e for e in c.all_events({"dead"}, since)
            if healthy_pair(e.observer, e.who, e.t)]
    susp = [e for e in c.all_events({"suspect"}, since)
            if healthy_pair(e.observer, e.who, e.t)]
    r.d["false_dead"] = len(dead)
    r.d["false_suspect"] = len(susp)
    if dead:
        r.note("false deaths (observer->member): %s" % ", ".join(
            "%s at +%.1fs" % (p, t - since) for p, t in first_times(dead)))
        # for the log: every member event about them, on every agent
        who = {e.who for e in dead}
        for e in sorted((e for e in c.all_events(
                {"suspect", "dead", "alive", "refuted"}, since) if e.who in who),
                key=lambda e: e.t):
            log("  %s.%03d %s: %s" % (time.strftime("%H:%M:%S", time.localtime(e.t)),
                                      int(e.t * 1000) % 1000, e.observer, e.msg))
    if susp:
        r.note("false suspicions: %d events, %d pairs" % (len(susp), len(pairs(susp))))
    return dead


def detect_all(c, observers, subjects, kind, since):
    """Seconds from `since` until every observer logged every subject as
    `kind` (the latest first such event), or None with the missing pairs."""
    worst, missing = 0.0, []
    for o in observers:
        for s in subjects:
            t = c.first_event(o, kind, s.name, since)
            if t is None:
                missing.append("%s->%s" % (o.name, s.name))
            else:
                worst = max(worst, t - since)
    return (None, missing) if missing else (worst, [])


# ---- scenarios --------------------------------------------------------------

def sc_crash(c, r):
    subj = c.agents[5]
    others = [a for a in c.agents if a is not subj]
    t0 = time.time()
    c.kill(subj, signal.SIGKILL)
    log("crash: SIGKILL %s" % subj.name)
    expect = {a.name: "alive" for a in others}
    expect[subj.name] = "dead"
    dt = wait_timed(lambda: c.views_are(others, expect), 60)
    r.check(dt is not None, "%s not dead in every view within 60 s: %s" % (
        subj.name, c.view_summary()))
    r.d["reconverge_ms"] = ms(dt)
    det, miss = detect_all(c, others, [subj], "dead", t0)
    r.check(det is not None, "not every survivor logged %s dead: %s" % (subj.name, miss))
    r.d["detect_all_ms"] = ms(det)
    bad = c.isup_ok(others[:3], c.agents, {subj.name})
    r.check(not bad, "is-up disagrees with the members: %s" % bad)
    healthy = {a.name for a in others}
    count_false(r, c, lambda o, s, t: s in healthy, c.t_ready)
    r.check(r.d["false_dead"] == 0, "healthy members declared dead")


def sc_pause(c, r, pause_s=10):
    subj = c.agents[4]
    others = [a for a in c.agents if a is not subj]
    t0 = time.time()
    c.kill(subj, signal.SIGSTOP)
    log("pause: SIGSTOP %s for %d s" % (subj.name, pause_s))
    time.sleep(pause_s)
    t_cont = time.time()
    c.kill(subj, signal.SIGCONT)
    dt = wait_timed(lambda: c.wait_converged(0), 90)
    r.check(dt is not None, "not all alive everywhere within 90 s of SIGCONT: %s"
            % c.view_summary())
    r.d["reconverge_ms"] = ms(dt)
    noticed = [o.name for o in others
               if c.first_event(o, "suspect", subj.name, t0) is not None
               or c.first_event(o, "dead", subj.name, t0) is not None]
    r.check(len(noticed) == len(others), "only %s noticed a %d s stop" % (
        noticed, pause_s))
    det, miss = detect_all(c, others, [subj], "dead", t0)
    r.d["detect_all_ms"] = ms(det)
    if det is None:
        r.note("not declared dead by %s" % miss)
    ref = c.events(subj, {"refuted"}, t_cont - 1)
    r.note("%s refuted %d time(s) after SIGCONT" % (subj.name, len(ref)))
    bad = c.isup_ok(others[:3], c.agents, set())
    r.check(not bad, "is-up after the pause: %s" % bad)
    healthy = {a.name for a in others}
    count_false(r, c, lambda o, s, t: s in healthy, c.t_ready)
    r.check(r.d["false_dead"] == 0, "healthy members declared dead")


def sc_loss(c, r, pct, hold_s=40):
    t0 = time.time()
    c.loss_all(pct)
    log("loss%d: %d%% loss on every link for %d s" % (pct, pct, hold_s))
    # watch the views while the loss lasts: nobody should go dead
    worst = 0
    while time.time() < t0 + hold_s:
        for o in c.agents:
            sm = c.status_map(o) or {}
            worst = max(worst, sum(1 for v in sm.values() if v == "dead"))
        time.sleep(1)
    t_heal = time.time()
    c.heal()
    dt = wait_timed(lambda: c.wait_converged(0), 90)
    r.check(dt is not None, "not all alive everywhere within 90 s of the loss "
            "ending: %s" % c.view_summary())
    r.d["reconverge_ms"] = ms(dt)
    st = [c.stats(a) or {} for a in c.agents]
    r.note("during the loss: at most %d member(s) dead in one view (polled); "
           "probes failed %d of %d; refutes %d" % (
               worst, sum(s.get("probes_failed", 0) for s in st),
               sum(s.get("probes", 0) for s in st),
               sum(s.get("refutes", 0) for s in st)))
    bad = c.isup_ok(c.agents[:3], c.agents, set())
    r.check(not bad, "is-up after the loss: %s" % bad)
    count_false(r, c, lambda o, s, t: True, c.t_ready)
    r.check(r.d["false_dead"] == 0, "members declared dead under %d%% loss "
            "(no member was down)" % pct)
    _ = t_heal


def sc_inbound80(c, r, hold_s=90):
    subj = c.agents[3]
    others = [a for a in c.agents if a is not subj]
    t0 = time.time()
    c.set_fault(subj.idx, loss_in=80)
    log("inbound80: %s drops 80%% of what it receives for %d s" % (subj.name, hold_s))
    expect = {a.name: "alive" for a in others}
    expect[subj.name] = "dead"
    dt = wait_timed(lambda: c.views_are(others, expect), hold_s - 20)
    def seen_as():
        cnt = {}
        for o in others:
            st = c.status_of(o, subj.name) or "no answer"
            cnt[st] = cnt.get(st, 0) + 1
        return cnt
    r.check(dt is not None, "%s not removed everywhere within %d s (seen as %s)"
            % (subj.name, hold_s - 20, seen_as()))
    det, miss = detect_all(c, others, [subj], "dead", t0)
    r.d["detect_all_ms"] = ms(det)
    t_removed = time.time()
    if dt is not None:
        bad = c.isup_ok(others[:3], c.agents, {subj.name})
        r.check(not bad, "is-up while %s is removed: %s" % (subj.name, bad))
    # it stays removed, in every view, until the loss ends
    flips = []
    while time.time() < t0 + hold_s:
        if dt is not None and not c.views_are(others, expect):
            flips.append(c.views(others))
        time.sleep(0.5)
    t_heal = time.time()
    back = [e for e in c.all_events({"alive"}, t_removed)
            if e.who == subj.name and e.observer != subj.name and e.t < t_heal]
    r.check(dt is None or (not back and not flips), "%s did not stay removed: alive again "
            "%d time(s) at %d observer(s), views changed %d time(s)" % (
                subj.name, len(back), len(pairs(back)), len(flips)))
    evs = [e for e in c.all_events({"suspect", "dead"}, t0)
           if e.who == subj.name and e.observer != subj.name and e.t < t_heal]
    r.note("while deaf: %s suspected %d time(s), declared dead %d time(s) by "
           "the others; it refuted %d time(s)" % (
               subj.name, sum(1 for e in evs if e.kind == "suspect"),
               sum(1 for e in evs if e.kind == "dead"),
               len([e for e in c.events(subj, {"refuted"}, t0) if e.t < t_heal])))
    c.heal()
    dt2 = wait_timed(lambda: c.wait_converged(0), 90)
    r.check(dt2 is not None, "not all alive within 90 s of the loss ending: %s"
            % c.view_summary())
    r.d["reconverge_ms"] = ms(dt2)
    own = [e for e in c.events(subj, {"dead"}, t0) if e.who != subj.name]
    r.note("%s itself declared %d member(s) dead while deaf (its own view, "
           "not counted)" % (subj.name, len(own)))
    healthy = {a.name for a in others}
    count_false(r, c, lambda o, s, t: s in healthy and o in healthy, c.t_ready)
    r.check(r.d["false_dead"] == 0, "healthy members declared dead by healthy members")


def _sides(c):
    return c.agents[:HOSTS // 2], c.agents[HOSTS // 2:]


def sc_partition(c, r, hold_s=60, oneway=False):
    a_side, b_side = _sides(c)
    side = {a.name: 0 for a in a_side}
    side.update({b.name: 1 for b in b_side})
    t0 = time.time()
    c.partition(a_side, b_side, oneway=oneway)
    log("%s: %s | %s for %d s" % ("oneway" if oneway else "partition",
                                  [a.name for a in a_side],
                                  [b.name for b in b_side], hold_s))
    # each side sees itself alive and the other dead
    def split_seen():
        ea = {a.name: "alive" for a in a_side}
        ea.update({b.name: "dead" for b in b_side})
        eb = {b.name: "alive" for b in b_side}
        eb.update({a.name: "dead" for a in a_side})
        return c.views_are(a_side, ea) and c.views_are(b_side, eb)
    wait_until(split_seen, hold_s - 5, 0.5)
    if oneway:
        # B cannot hear A: B must declare A dead; A's view is reported
        det, miss = detect_all(c, b_side, a_side, "dead", t0)
        r.check(det is not None, "the deaf side did not declare the other dead: %s"
                % miss[:6])
        det2, miss2 = detect_all(c, a_side, b_side, "dead", t0)
        r.note("the side that still hears declared the other dead: %s" % (
            "all pairs after %.1f s" % det2 if det2 is not None else
            "%d pairs missing" % len(miss2)))
    else:
        d1, m1 = detect_all(c, a_side, b_side, "dead", t0)
        d2, m2 = detect_all(c, b_side, a_side, "dead", t0)
        det = None if d1 is None or d2 is None else max(d1, d2)
        r.check(det is not None, "not every cross pair declared dead: %s" % (m1 + m2)[:6])
    r.d["detect_all_ms"] = ms(det)
    if det is not None and not oneway:
        bad = c.isup_ok([a_side[0], b_side[0]], c.agents,
                        set())  # computed below per side
        want = [(o, h) for (o, h, _) in bad]
        # on side X, the other side's services are down, its own up
        exp_bad = {(a_side[0].name, b.name) for b in b_side}
        exp_bad |= {(b_side[0].name, a.name) for a in a_side}
        r.check(set(want) == exp_bad, "is-up during the partition: %s" % bad)
    rest = t0 + hold_s - time.time()
    if rest > 0:
        time.sleep(rest)
    t_heal = time.time()
    c.heal()
    log("healed")
    dt = wait_timed(lambda: c.wait_converged(0), 120)
    r.check(dt is not None, "not reconverged within 120 s of the heal: %s" %
            c.view_summary())
    r.d["reconverge_ms"] = ms(dt)
    bad = c.isup_ok([a_side[0], b_side[0], b_side[-1]], c.agents, set())
    r.check(not bad, "is-up after the heal: %s" % bad)

    def false_pair(o, s, t):
        # same side: always false; across: false once healed (1 s grace)
        return side[o] == side[s] or t > t_heal + 1.0
    dead = count_false(r, c, false_pair, c.t_ready)
    same = [e for e in dead if side[e.observer] == side[e.who]]
    after = [e for e in dead if side[e.observer] != side[e.who]]
    r.check(not same, "same-side deaths: %s" % pairs(same))
    r.check(not after, "deaths after the heal: %s" % pairs(after))


def sc_flap(c, r, period_s=20, cycles=2):
    subj = c.agents[6]
    others = [a for a in c.agents if a is not subj]
    all_alive = {a.name: "alive" for a in c.agents}
    expect_down = {a.name: "alive" for a in others}
    expect_down[subj.name] = "dead"
    detects, reconv, unstable = [], [], []
    t_start = time.time()
    for cyc in range(cycles):
        t_down = time.time()
        c.set_fault(subj.idx, down=True)
        log("flap: %s's link down (cycle %d)" % (subj.name, cyc + 1))
        wait_until(lambda: c.views_are(others, expect_down), period_s - 1, 0.5)
        det, miss = detect_all(c, others, [subj], "dead", t_down)
        detects.append(det)
        while time.time() < t_down + period_s:
            time.sleep(0.2)
        t_up = time.time()
        c.set_fault(subj.idx, down=False)
        log("flap: %s's link up" % subj.name)
        last = cyc == cycles - 1
        dt = wait_timed(lambda: c.views_are(c.agents, all_alive),
                        90 if last else period_s - 1)
        reconv.append(dt)
        # once converged, the views of the flapping host hold until the next
        # down, and nobody goes dead (suspicions of others: false_suspect)
        while dt is not None and time.time() < t_up + period_s:
            bad = []
            for o in c.agents:
                sm = c.status_map(o) or {}
                bad += ["%s sees %s %s" % (o.name, n, st) for n, st in sm.items()
                        if st != "alive" and (n == subj.name or st == "dead")]
            if bad:
                unstable.append("cycle %d, +%.1f s after up: %s" % (
                    cyc + 1, time.time() - t_up, bad))
                break
            time.sleep(0.5)
        while time.time() < t_up + period_s:
            time.sleep(0.2)
    r.check(all(d is not None for d in detects),
            "%s not declared dead by everyone in every down phase: %s" % (
                subj.name, detects))
    r.check(all(d is not None for d in reconv),
            "not all alive everywhere within an up phase: %s" % reconv)
    r.check(not unstable, "views changed during an up phase after converging: %s"
            % unstable[:2])
    if all(d is not None for d in detects):
        r.d["detect_all_ms"] = ms(max(detects))
    if all(d is not None for d in reconv):
        r.d["reconverge_ms"] = ms(max(reconv))
    r.note("per cycle: dead everywhere after %s s, all alive after %s s" % (
        [None if d is None else round(d, 1) for d in detects],
        [None if d is None else round(d, 1) for d in reconv]))
    # no oscillation: per observer, at most one death and one return of the
    # flapping host per down phase
    osc = []
    for o in others:
        nd = len([e for e in c.events(o, {"dead"}, t_start) if e.who == subj.name])
        na = len([e for e in c.events(o, {"alive"}, t_start) if e.who == subj.name])
        if nd > cycles or na > cycles:
            osc.append("%s: %d deaths, %d returns" % (o.name, nd, na))
    r.check(not osc, "oscillating views of %s: %s" % (subj.name, osc))
    bad = c.isup_ok(others[:3], c.agents, set())
    r.check(not bad, "is-up after the flaps: %s" % bad)
    healthy = {a.name for a in others}
    count_false(r, c, lambda o, s, t: s in healthy and o in healthy, c.t_ready)
    r.check(r.d["false_dead"] == 0, "healthy members declared dead")


def sc_newip(c, r):
    subj = c.agents[5]
    others = [a for a in c.agents if a is not subj]
    old_addr = subj.addr
    old_gen = subj.generation
    t0 = time.time()
    c.kill(subj, signal.SIGKILL)
    c.wait_exit(subj)
    new_ip = "10.77.%d.%d" % (c.k, 110 + subj.idx)
    c.set_ip(subj, new_ip)
    log("newip: %s killed, its host moved %s -> %s, restarted with the same key"
        % (subj.name, old_addr, new_ip))
    t_start = time.time()
    c.spawn(subj)
    c.wait_started(subj)
    r.check(subj.addr == "%s:%d" % (new_ip, PORT), "restarted on %s" % subj.addr)

    def moved():
        for o in c.agents:
            ms_ = c.members(o)
            if ms_ is None or len(ms_) != HOSTS:
                return False
            for m in ms_:
                if m["status"] != "alive":
                    return False
                if m["name"] == subj.name and m["addr"] != subj.addr:
                    return False
        return True
    dt = wait_timed(moved, 90)
    r.check(dt is not None, "not every view has %s alive at %s within 90 s: %s" % (
        subj.name, subj.addr, c.view_summary()))
    r.d["reconverge_ms"] = ms(dt)
    # no name conflict: one entry per name and per id, the old address gone
    for o in c.agents:
        ms_ = c.members(o) or []
        names = [m["name"] for m in ms_]
        ids = [m["id"] for m in ms_]
        r.check(len(names) == len(set(names)) and len(ids) == len(set(ids)),
                "%s lists a member twice: %s" % (o.name, names))
        r.check(not [m for m in ms_ if m["addr"] == old_addr],
                "%s still lists the old address %s" % (o.name, old_addr))
        me = [m for m in ms_ if m["name"] == subj.name]
        if me:
            r.check(me[0]["incarnation"]["generation"] > old_gen,
                    "%s sees generation %s, not above %s" % (
                        o.name, me[0]["incarnation"], old_gen))
    bad = c.isup_ok(others[:3], c.agents, set())
    r.check(not bad, "is-up after the move: %s" % bad)
    dead_subj = [e for e in c.all_events({"dead"}, t0) if e.who == subj.name]
    r.note("%s was away %.1f s; declared dead meanwhile by %d observer(s)" % (
        subj.name, t_start - t0, len(dead_subj)))
    healthy = {a.name for a in others}
    count_false(r, c, lambda o, s, t: s in healthy, c.t_ready)
    r.check(r.d["false_dead"] == 0, "healthy members declared dead")


# ---- flood ------------------------------------------------------------------

FLOOD_VICTIM = 4


def flood_params():
    """(datagrams per second, seconds per kind): LM_LAB_FLOOD_RATE and
    LM_LAB_FLOOD_SECONDS, default 50,000 and 60 (ctest's lab_flood: 30)."""
    try:
        rate = int(os.environ.get("LM_LAB_FLOOD_RATE", "50000"))
        secs = float(os.environ.get("LM_LAB_FLOOD_SECONDS", "60"))
    except ValueError as e:
        raise ScenarioFailed("flood: bad LM_LAB_FLOOD_RATE/SECONDS: %s" % e)
    if rate <= 0 or secs <= 0:
        raise ScenarioFailed("flood: rate and seconds must be positive")
    return rate, secs


def link_drops(ns):
    """Packets dropped by the links of namespace ns, rx and tx summed (`ip
    -s -j link`): a veth whose peer's backlog is full drops silently, so
    these tell a datagram lost on the way from one the agent never read."""
    p = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise ScenarioFailed("ip -n %s link: %s" % (ns, p.stderr.strip()))
    total = 0
    for link in json.loads(p.stdout):
        st = link.get("stats64", {})
        total += st.get("rx", {}).get("dropped", 0)
        total += st.get("tx", {}).get("dropped", 0)
    return total


def capture_seeds(c, victim, path, seconds=8.0, limit=400):
    """Real datagrams from the other agents to the victim, taken off its
    eth0 inside its namespace (tests/lab/capture.py), written to path in
    the flood tool's seed format: {"captured", "min_len", "max_len"}."""
    others = [c.ips[a.idx] for a in c.agents if a is not victim]
    p = subprocess.run(["ip", "netns", "exec", c.ns(victim), sys.executable,
                        CAPTURE, "eth0", str(PORT), str(seconds), str(limit),
                        path] + others,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=seconds + 30)
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise ScenarioFailed("capture in %s: exit %d: %s" % (
            c.ns(victim), p.returncode, p.stderr.strip()))


def stats_all(c):
    sts = [c.stats(a) for a in c.agents]
    missing = [a.name for a, st in zip(c.agents, sts) if st is None]
    if missing:
        raise ScenarioFailed("no stats from %s" % missing)
    return sts


def counters(c, victim, namespaces):
    """What a flood phase is measured by, read before and after it: the
    victim's stats, CPU seconds and kernel UDP counters (its namespace's),
    the suspicions raised by all agents, the links' drops."""
    sts = stats_all(c)
    return {"stats": sts[victim.idx], "cpu": cpu_s(victim.proc.pid),
            "udp": udp_snmp(victim.proc.pid),
            "suspicions": sum(st["suspicions_raised"] for st in sts),
            "links": sum(link_drops(ns) for ns in namespaces)}


def poll_views(c, victim, seen):
    """One poll of every agent's members: adds (observer, member, status) to
    seen["bad"] for each member listed dead or left (all are healthy), and
    counts the polls the victim did not answer."""
    for o in c.agents:
        ms_ = c.members(o)
        if ms_ is None:
            if o is victim:
                seen["victim_unanswered"] += 1
            continue
        for m in ms_:
            if m["status"] in ("dead", "left"):
                seen["bad"].add((o.name, m["name"], m["status"]))


def watch(c, victim, others, until, mid=None, proc=None):
    """Polls the views every 0.5 s until time `until` (or until proc ends);
    once past time `mid`, asks every other host whether the victim's
    service is up. {"bad": set, "victim_unanswered": n, "isup_bad": list}."""
    seen = {"bad": set(), "victim_unanswered": 0, "isup_bad": None}
    while time.time() < until and (proc is None or proc.poll() is None):
        poll_views(c, victim, seen)
        if mid is not None and seen["isup_bad"] is None and time.time() >= mid:
            seen["isup_bad"] = c.isup_ok(others, [victim], set())
        time.sleep(0.5)
    return seen


def idle_cpu_share(c, victim, others, seconds):
    """The victim's CPU share without a flood, under the same polling as
    during one: what a flood phase's CPU figure is net of."""
    cpu0, t0 = cpu_s(victim.proc.pid), time.time()
    watch(c, victim, others, t0 + seconds)
    return (cpu_s(victim.proc.pid) - cpu0) / max(0.001, time.time() - t0)


def run_flooder(atk_ns, flood, target, kind, rate, secs, seedf):
    args = ["ip", "netns", "exec", atk_ns, flood, "--target", target,
            "--rate", str(rate), "--seconds", str(secs), "--kind", kind]
    if kind == "tamper":
        args += ["--seeds", seedf]
    # `ip netns exec` execs the flooder, which dies with this driver
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_child_setup)


def flood_phase(c, r, env, kind):
    """One kind of flood for env["seconds"]: watched while it lasts, then
    measured and checked. The phase's JSON object."""
    victim, others = env["victim"], env["others"]
    rate, secs = env["rate"], env["seconds"]
    before = counters(c, victim, env["namespaces"])
    t0 = time.time()
    p = run_flooder(env["atk_ns"], env["flood"], env["target"], kind, rate,
                    secs, env["seeds"])
    log("flood: %s at %d/s for %g s from %s to %s" % (
        kind, rate, secs, env["atk_ns"], env["target"]))
    seen = watch(c, victim, others, t0 + secs * 1.5 + 30, mid=t0 + secs / 2,
                 proc=p)
    if p.poll() is None:
        p.kill()
        p.wait()
        raise ScenarioFailed("flood: the %s flooder did not finish" % kind)
    out, err = p.communicate()
    try:
        sent = json.loads(out)
    except ValueError:
        raise ScenarioFailed("flood: the %s flooder: exit %d: %s" % (
            kind, p.returncode, err.strip()))
    after = counters(c, victim, env["namespaces"])
    return phase_result(r, kind, rate, env["idle_share"], sent, before,
                        after, seen)


def phase_result(r, kind, rate, idle_share, sent, before, after, seen):
    st0, st1 = before["stats"], after["stats"]
    drops = {k: v - st0["dropped"].get(k, 0) for k, v in st1["dropped"].items()
             if v - st0["dropped"].get(k, 0) > 0}
    dropped = sum(drops.values())
    rcvbuf = after["udp"].get("RcvbufErrors", 0) - before["udp"].get("RcvbufErrors", 0)
    reached = sent["sent"] - rcvbuf
    cpu = after["cpu"] - before["cpu"]
    ph = {"kind": kind, "rate": rate, "seconds": sent["seconds"],
          "sent": sent["sent"], "send_failed": sent["failed"],
          "kernel_rcvbuf_dropped": rcvbuf,
          "link_dropped": after["links"] - before["links"],
          "reached": reached,
          "kernel_delivered": after["udp"].get("InDatagrams", 0) -
          before["udp"].get("InDatagrams", 0),
          "received": st1["udp_pkts_in"] - st0["udp_pkts_in"],
          "dropped": drops, "dropped_total": dropped,
          "cpu_s": round(cpu, 2),
          "cpu_share": round(cpu / max(0.001, sent["seconds"]), 3),
          "cpu_us_per_rejected": round(cpu * 1e6 / max(1, dropped), 2),
          "cpu_us_per_rejected_above_idle": round(
              max(0.0, cpu - idle_share * sent["seconds"]) * 1e6 / max(1, dropped), 2),
          "suspicions_raised": after["suspicions"] - before["suspicions"],
          "dead_or_left_seen": sorted("%s sees %s %s" % b for b in seen["bad"]),
          "victim_unanswered_polls": seen["victim_unanswered"],
          "isup_mid_bad": seen["isup_bad"]}
    log("flood: %s: %s" % (kind, json.dumps(ph, sort_keys=True)))
    r.check(not seen["bad"], "%s flood: members seen dead or left: %s" % (
        kind, ph["dead_or_left_seen"][:8]))
    r.check(seen["victim_unanswered"] == 0, "%s flood: the victim left %d "
            "members polls unanswered" % (kind, seen["victim_unanswered"]))
    r.check(seen["isup_bad"] == [], "%s flood: is-up of the victim's service "
            "mid-flood: %s" % (kind, seen["isup_bad"]))
    r.check(dropped >= 0.9 * reached, "%s flood: %d dropped of %d that reached "
            "the victim's socket" % (kind, dropped, reached))
    return ph


def sc_flood(c, r):
    rate, secs = flood_params()
    flood = tool_beside(c.bin, "flood")
    if not os.access(flood, os.X_OK):
        raise ScenarioFailed("%s: not built (it is built with the tests)" % flood)
    victim = c.agents[FLOOD_VICTIM]
    others = [a for a in c.agents if a is not victim]
    atk_ns, atk_ip = c.add_attacker()
    env = {"victim": victim, "others": others, "rate": rate, "seconds": secs,
           "flood": flood, "atk_ns": atk_ns,
           "target": "%s:%d" % (c.ips[victim.idx], PORT),
           "namespaces": [atk_ns, c.bridge_ns(), c.ns(victim)],
           "seeds": os.path.join(c.tmp, "seeds.bin")}
    cap = capture_seeds(c, victim, env["seeds"])
    if cap["captured"] < 5:
        raise ScenarioFailed("captured only %d datagrams to %s" % (
            cap["captured"], victim.name))
    log("flood: captured %d real datagrams to %s in %s (%d..%d bytes)" % (
        cap["captured"], victim.name, c.ns(victim), cap["min_len"], cap["max_len"]))
    env["idle_share"] = idle_cpu_share(c, victim, others, min(10.0, secs))
    fl = {"rate": rate, "seconds": secs, "victim": victim.name,
          "target": env["target"], "flooder": "%s in %s" % (atk_ip, atk_ns),
          "seeds": cap["captured"],
          "victim_idle_cpu_share": round(env["idle_share"], 4), "phases": []}
    r.d["flood"] = fl
    t0 = time.time()
    for kind in ("garbage", "tamper"):
        fl["phases"].append(flood_phase(c, r, env, kind))
    fl["suspicions_raised"] = sum(ph["suspicions_raised"] for ph in fl["phases"])
    dt = wait_timed(lambda: c.wait_converged(0), 30)
    r.check(dt is not None, "after the flood: %s" % c.view_summary())
    r.d["reconverge_ms"] = ms(dt)
    bad = c.isup_ok(others, [victim], set())
    r.check(not bad, "is-up of %s's service after the flood: %s" % (victim.name, bad))
    r.check(c.ping(victim) is not None, "%s does not answer after the flood" % victim.name)
    count_false(r, c, lambda o, s, t: True, t0)  # every member is healthy
    r.check(r.d["false_dead"] == 0, "members declared dead during the flood")
    for ph in fl["phases"]:
        r.note("%s: %d sent, %d reached the socket, %d dropped by the agent "
               "(%s), %.2f us CPU per rejected datagram, %d suspicions" % (
                   ph["kind"], ph["sent"], ph["reached"], ph["dropped_total"],
                   ", ".join("%s %d" % kv for kv in sorted(ph["dropped"].items())),
                   ph["cpu_us_per_rejected"], ph["suspicions_raised"]))


RUNNERS = {
    "crash": sc_crash,
    "pause": sc_pause,
    "loss10": lambda c, r: sc_loss(c, r, 10),
    "loss20": lambda c, r: sc_loss(c, r, 20),
    "loss30": lambda c, r: sc_loss(c, r, 30),
    "inbound80": sc_inbound80,
    "partition": sc_partition,
    "oneway": lambda c, r: sc_partition(c, r, hold_s=60, oneway=True),
    "flap": sc_flap,
    "newip": sc_newip,
    "flood": sc_flood,
}


def run_one(binary, name, k, result_path):
    r = Result(name)
    t0 = time.monotonic()
    try:
        with LabCluster(binary, k, tag=name) as c:
            c.setup()
            log("%s: setup done in %.1f s" % (name, time.monotonic() - t0))
            RUNNERS[name](c, r)
            if r.fails:
                c.failed = True
                c.dump_logs(6)
    except ScenarioFailed as e:
        r.fails.append(str(e))
        log("FAIL %s" % e)
    except Exception as e:  # a bug of the lab itself: report it, still clean up
        r.fails.append("lab error: %r" % (e,))
        log("ERROR %r" % (e,))
    r.d["run_s"] = round(time.monotonic() - t0, 1)
    d = r.done()
    with open(result_path, "w") as f:
        json.dump(d, f)
    log("%s: %s in %.1f s" % (name, "ok" if d["ok"] else "FAILED", d["run_s"]))
    return 0 if d["ok"] else 1


# ---- the parent: many scenarios ---------------------------------------------

def eprint(*a):
    print(*a, file=sys.stderr, flush=True)


def _scenario_child():
    # a scenario outlives no driver: SIGTERM makes it stop its agents and
    # delete its network, even when the driver was SIGKILLed
    import cluster as _c
    _c._libc.prctl(_c.PR_SET_PDEATHSIG, signal.SIGTERM)


def run_many(binary, names, jobs, as_json):
    tmp = tempfile.mkdtemp(prefix="lm-labrun-", dir="/tmp")
    queue = [n for n in ORDER if n in names]
    running = {}  # name -> (proc, k, logf, t0)
    free = list(range(1, jobs + 1))
    results = {}
    t_all = time.monotonic()
    try:
        while queue or running:
            while queue and free:
                name = queue.pop(0)
                k = free.pop(0)
                logp = os.path.join(tmp, name + ".log")
                resp = os.path.join(tmp, name + ".json")
                lf = open(logp, "w")
                p = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                      binary, "--one", name, "--net", str(k),
                                      "--result", resp],
                                     stdout=lf, stderr=subprocess.STDOUT,
                                     preexec_fn=_scenario_child)
                lf.close()
                running[name] = (p, k, logp, resp, time.monotonic())
                eprint("lab: %s started (network %d)" % (name, k))
            time.sleep(0.5)
            for name in list(running):
                p, k, logp, resp, ts = running[name]
                if p.poll() is None:
                    continue
                del running[name]
                free.append(k)
                try:
                    with open(resp) as f:
                        d = json.load(f)
                except (OSError, ValueError):
                    d = Result(name).done()
                    d["notes"] = "FAILED: the scenario died (exit %s) without a result" % p.returncode
                results[name] = d
                eprint("lab: %s %s in %.0f s (false_dead %s, false_suspect %s, "
                       "detect_all_ms %s, reconverge_ms %s)" % (
                           name, "ok" if d["ok"] else "FAILED",
                           time.monotonic() - ts, d["false_dead"],
                           d["false_suspect"], d["detect_all_ms"],
                           d["reconverge_ms"]))
                if not d["ok"] or os.environ.get("LM_LAB_VERBOSE"):
                    with open(logp) as f:
                        for line in f:
                            eprint("  %s| %s" % (name, line.rstrip()))
    finally:
        for name, (p, *_rest) in running.items():
            if p.poll() is None:
                p.terminate()  # it stops its agents and its network itself
        for name, (p, *_rest) in running.items():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    out = [results[n] for n in names if n in results]
    total = time.monotonic() - t_all
    if as_json:
        print(json.dumps(out, indent=1))
    else:
        print("%-10s %5s %4s %10s %13s %13s %14s  %s" % (
            "scenario", "hosts", "ok", "false_dead", "false_suspect",
            "detect_all_ms", "reconverge_ms", "notes"))
        for d in out:
            print("%-10s %5d %4s %10d %13d %13s %14s  %s" % (
                d["scenario"], d["hosts"], "yes" if d["ok"] else "NO",
                d["false_dead"], d["false_suspect"], d["detect_all_ms"],
                d["reconverge_ms"], d["notes"]))
    eprint("lab: %d scenario(s), %d failed, %.0f s in all" % (
        len(out), sum(1 for d in out if not d["ok"]), total))
    return 0 if out and all(d["ok"] for d in out) and len(out) == len(names) else 1


def main(argv):
    if len(argv) < 2:
        eprint("usage: lab.py LIVEMESH [SCENARIO]... [-o json] [-j N] | "
               "LIVEMESH soak [--minutes M] [-o json]")
        return 2
    binary = argv[1]
    args = argv[2:]
    if "--one" in args:
        name = args[args.index("--one") + 1]
        k = int(args[args.index("--net") + 1])
        res = args[args.index("--result") + 1]
        return run_one(binary, name, k, res)
    as_json, jobs, names, minutes, soak = False, 4, [], 5.0, False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-o" and i + 1 < len(args):
            if args[i + 1] not in ("json", "table"):
                eprint("lab: -o json|table")
                return 2
            as_json = args[i + 1] == "json"
            i += 1
        elif a == "-j" and i + 1 < len(args):
            jobs = int(args[i + 1])
            i += 1
        elif a == "--minutes" and i + 1 < len(args):
            minutes = float(args[i + 1])
            i += 1
        elif a == "soak":
            soak = True
        elif a in SCENARIOS or a in NAMED_ONLY:
            names.append(a)
        else:
            eprint("lab: unknown scenario or flag %r (scenarios: %s, soak)" % (
                a, " ".join(SCENARIOS + NAMED_ONLY)))
            return 2
        i += 1
    def on_signal(sig, frame):
        # unwinds through run_many's finally: the scenarios are told to stop
        raise SystemExit("lab: interrupted by signal %d" % sig)
    for sg in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sg, on_signal)
    if soak:
        import soak as soakmod
        return soakmod.run(binary, minutes, as_json)
    return run_many(binary, names or list(SCENARIOS), max(1, jobs), as_json)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
