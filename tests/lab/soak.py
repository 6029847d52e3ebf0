# soak.py: the fault lab's soak mode (`scripts/lab.sh soak [--minutes M]`).
#
# One 8-host lab network (net.sh, network number 1), the agents at default
# timing, under random churn for M minutes: SIGKILL and restart, SIGSTOP
# and SIGCONT, 10% loss on every link, a 4/4 partition, and services
# registered and deregistered. n00 and n01 (the seeds) are never killed or
# paused, so their memory and descriptors are watched over the whole run.
#
# Invariants, checked as the run goes (each breach is a violation):
#  - no healthy member is declared dead outside a partition: every "is dead"
#    in any agent's JSON log must be about a member that was killed or
#    stopped at that time (up to 2 s after its restart or SIGCONT), or about
#    a member across a partition while it lasted (up to 1 s after the heal);
#  - after each fault ends, every agent sees all 8 alive within 60 s;
#  - `is-up` on every live agent follows each registration and
#    deregistration within 30 s;
#  - RSS flat: for each agent process present since the warm-up (5 min, or
#    a quarter of a run shorter than 20 min, at most 60 s), the largest RSS of
#    the run's second half is under 110% of its first sample after warm-up;
#  - no descriptor leak: /proc/PID/fd counted the same way, the smallest of
#    the last 5 samples is not above the first sample after warm-up.
import json
import os
import random
import signal
import sys
import time

from cluster import log, wait_until  # noqa: E402 (lab.py set sys.path)
from lab import HOSTS, SVC, LabCluster, Result, ms  # noqa: E402

CONVERGE_BOUND_S = 60
ISUP_BOUND_S = 30


def _proc_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


class Soak:
    def __init__(self, c, minutes, seed):
        self.c = c
        self.rng = random.Random(seed)
        self.seed = seed
        self.t0 = time.time()
        self.end = self.t0 + minutes * 60
        self.warmup = 300 if minutes >= 20 else min(60, minutes * 60 / 4)
        self.samples = {}   # pid -> [(t, rss_kb, fds, name)]
        self.windows = []   # (kind, subjects or sides, start, end)
        self.violations = []
        self.faults = []
        self.reconverge = []
        self.checked_until = self.c.t_ready
        self.extra_svcs = []  # (agent, type, uuid)
        self.seen = set()
        self.false_dead = 0
        self.false_suspect = 0

    def violate(self, what):
        self.violations.append("%.0fs: %s" % (time.time() - self.t0, what))
        log("VIOLATION %s" % what)

    # ---- sampling ----

    def sample(self):
        now = time.time()
        for a in self.c.live():
            pid = a.proc.pid
            rss, fds = _proc_rss_kb(pid), _proc_fds(pid)
            if rss is not None and fds is not None:
                self.samples.setdefault(pid, []).append((now, rss, fds, a.name))

    def idle(self, secs):
        until = time.time() + secs
        while time.time() < until:
            self.sample()
            self.check_deaths()
            time.sleep(min(2.0, max(0.0, until - time.time())))

    # ---- invariants ----

    def justified(self, e):
        for kind, subj, start, end in self.windows:
            stop = end if end is not None else float("inf")
            if kind in ("kill", "pause"):
                if e.who in subj and start - 0.5 <= e.t <= stop + 2.0:
                    return True
            elif kind == "partition":
                side = subj
                if (e.who in side and e.observer in side and
                        side[e.who] != side[e.observer] and
                        start - 0.5 <= e.t <= stop + 1.0):
                    return True
        return False

    def check_deaths(self):
        now = time.time()
        for e in self.c.all_events({"dead"}, self.checked_until):
            key = (e.observer, e.who, e.t)
            if key in self.seen:
                continue
            self.seen.add(key)
            if not self.justified(e):
                self.false_dead += 1
                self.violate("%s declared %s dead at +%.1fs, outside any fault "
                             "that explains it" % (e.observer, e.who, e.t - self.t0))
        for e in self.c.all_events({"suspect"}, self.checked_until):
            key = (e.observer, e.who, e.t, "s")
            if key in self.seen:
                continue
            self.seen.add(key)
            if not self.justified(e):
                self.false_suspect += 1  # reported: loss explains some
        self.checked_until = now - 5  # a line may be flushed late

    def converge(self, what):
        t = time.time()
        ok = wait_until(lambda: self.c.wait_converged(0), CONVERGE_BOUND_S, 0.25)
        dt = time.time() - t
        if not ok:
            self.violate("after %s: views not all alive within %d s: %s" % (
                what, CONVERGE_BOUND_S, self.c.view_summary()))
        else:
            self.reconverge.append(dt)
        return ok

    def isup_everywhere(self, host, typ, want):
        def ok():
            for o in self.c.live():
                rc, out = self.c.cli_json(o, "is-up", typ, host.name, check=False)
                if rc != (0 if want else 1) or not isinstance(out, dict) \
                        or bool(out.get("up")) != want:
                    return False
            return True
        if not wait_until(ok, ISUP_BOUND_S, 0.5):
            self.violate("is-up %s %s is not %s on every agent within %d s" % (
                typ, host.name, want, ISUP_BOUND_S))

    # ---- faults ----

    def f_kill(self):
        a = self.rng.choice(self.c.agents[2:])
        w = ["kill", {a.name}, time.time(), None]
        self.windows.append(w)
        self.c.kill(a, signal.SIGKILL)
        self.c.wait_exit(a)
        self.idle(self.rng.uniform(2, 10))
        self.c.restart(a)
        w[3] = time.time()
        return "kill+restart %s" % a.name

    def f_pause(self):
        a = self.rng.choice(self.c.agents[2:])
        w = ["pause", {a.name}, time.time(), None]
        self.windows.append(w)
        self.c.kill(a, signal.SIGSTOP)
        self.idle(self.rng.uniform(2, 10))
        self.c.kill(a, signal.SIGCONT)
        w[3] = time.time()
        return "pause %s" % a.name

    def f_loss(self):
        self.c.loss_all(10)
        self.idle(self.rng.uniform(5, 15))
        self.c.heal()
        return "10% loss"

    def f_partition(self):
        names = [a.name for a in self.c.agents]
        self.rng.shuffle(names)
        side = {n: (0 if i < HOSTS // 2 else 1) for i, n in enumerate(names)}
        a_side = [a for a in self.c.agents if side[a.name] == 0]
        b_side = [a for a in self.c.agents if side[a.name] == 1]
        w = ["partition", side, time.time(), None]
        self.windows.append(w)
        self.c.partition(a_side, b_side)
        self.idle(self.rng.uniform(8, 20))
        self.c.heal()
        w[3] = time.time()
        return "partition %s|%s" % (sorted(a.name for a in a_side),
                                    sorted(b.name for b in b_side))

    def f_register(self):
        if self.extra_svcs and self.rng.random() < 0.5:
            a, typ, uuid = self.extra_svcs.pop(self.rng.randrange(len(self.extra_svcs)))
            if a.proc and a.proc.poll() is None:
                self.c.cli(a, "deregister", uuid)
                self.isup_everywhere(a, typ, False)
            return "deregister %s on %s" % (typ, a.name)
        a = self.rng.choice(self.c.agents)
        typ = "soak%d" % self.rng.randrange(1000)
        p = self.c.cli(a, "register", "--type", typ, "--name", "%s-%s" % (typ, a.name))
        self.extra_svcs.append((a, typ, p.stdout.strip()))
        self.isup_everywhere(a, typ, True)
        return "register %s on %s" % (typ, a.name)

    def run(self):
        kinds = [self.f_kill, self.f_pause, self.f_loss, self.f_partition,
                 self.f_register]
        while time.time() < self.end - 5:
            f = self.rng.choice(kinds)
            what = f()
            self.faults.append(what)
            log("soak: %s" % what)
            self.converge(what)
            self.idle(self.rng.uniform(1, 3))
        self.idle(3)
        self.check_deaths()
        self.check_resources()

    def check_resources(self):
        base_t = self.t0 + self.warmup
        mid = self.t0 + (self.end - self.t0) / 2
        self.rss_report, self.fd_report = {}, {}
        for pid, ss in self.samples.items():
            if ss[0][0] > base_t or ss[-1][0] < mid:
                continue  # started after the warm-up, or gone early
            name = ss[0][3]
            after = [s for s in ss if s[0] >= base_t]
            if not after:
                continue
            base = after[0]
            second = [s for s in ss if s[0] >= mid]
            peak = max(s[1] for s in second)
            growth = (peak - base[1]) / base[1]
            self.rss_report[name] = {"pid": pid, "base_kb": base[1],
                                     "peak_kb": peak, "growth_pct": round(100 * growth, 1)}
            if growth >= 0.10:
                self.violate("%s (pid %d): RSS %d kB after warm-up, %d kB in "
                             "the second half (+%.1f%%)" % (name, pid, base[1],
                                                          peak, 100 * growth))
            last = min(s[2] for s in ss[-5:])
            self.fd_report[name] = {"pid": pid, "base": base[2], "end": last}
            if last > base[2]:
                self.violate("%s (pid %d): %d descriptors after warm-up, %d at "
                             "the end" % (name, pid, base[2], last))
        if not self.rss_report:
            self.violate("no agent process lasted the whole run: nothing to "
                         "check memory and descriptors on")


def run(binary, minutes, as_json):
    seed = int(os.environ.get("LM_LAB_SEED", str(int(time.time()))))
    r = Result("soak")
    t_start = time.monotonic()
    s = None
    out = sys.stdout
    sys.stdout = sys.stderr  # progress to stderr: stdout is the result
    try:
        with LabCluster(binary, 1, tag="soak") as c:
            c.setup()
            log("soak: %.1f min, seed %d" % (minutes, seed))
            s = Soak(c, minutes, seed)
            s.run()
            for v in s.violations:
                r.fails.append(v)
            if r.fails:
                c.failed = True
    except Exception as e:  # the lab's own error: a failed run, still cleaned
        r.fails.append("lab error: %r" % (e,))
    sys.stdout = out
    d = r.done()
    if s is not None:
        d["false_dead"] = s.false_dead
        d["false_suspect"] = s.false_suspect
        d["reconverge_ms"] = ms(max(s.reconverge)) if s.reconverge else None
        d.update({"minutes": minutes, "seed": seed, "faults": s.faults,
                  "violations": s.violations,
                  "reconverge_ms_all": [ms(x) for x in s.reconverge],
                  "rss": getattr(s, "rss_report", {}),
                  "fds": getattr(s, "fd_report", {})})
    d["run_s"] = round(time.monotonic() - t_start, 1)
    if as_json:
        print(json.dumps([d], indent=1))
    else:
        print("soak: %s, %d faults in %.1f min (seed %s), %d violation(s)" % (
            "ok" if d["ok"] else "FAILED", len(d.get("faults", [])), minutes,
            seed, len(d.get("violations", []))))
        for v in d.get("violations", []):
            print("  violation: %s" % v)
        print("  reconverge_ms (max) %s; rss %s; fds %s" % (
            d["reconverge_ms"], d.get("rss"), d.get("fds")))
    sys.stdout.flush()
    return 0 if d["ok"] else 1
