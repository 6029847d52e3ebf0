#!/usr/bin/env python3
# pause.py LIVEMESH: a paused (SIGSTOP) agent on a mesh of 16 real agents on
# 127.0.0.1 (harness: cluster.py).
#
# n05 is stopped for 10 s, then continued. Asserted:
#  - while it is stopped, the mesh notices (at least one agent suspects it
#    or declares it dead: a 10 s silence is far beyond the probe timeout);
#  - within 60 s of SIGCONT every agent, n05 included, sees all 16 alive
#    again (n05 refutes the suspicion or its death with a higher version);
#  - no agent's log, n05's included, ever says one of the 15 agents that
#    were never stopped "is dead" (a false death of a healthy member).
# Reported, not asserted: who suspected / declared n05 dead and when, n05's
# refutations and incarnation version afterwards, the time until it was
# alive everywhere again, and any suspicion of a healthy member.
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ScenarioFailed, log, main  # noqa: E402

PAUSED = 5
PAUSE_S = 10


def check(cond, what):
    if not cond:
        raise ScenarioFailed("pause: %s" % what)


def run(binary):
    with Cluster(binary, tag="pause") as c:
        c.start()
        p = c.agents[PAUSED]
        others = [a for a in c.agents if a is not p]
        ver_before = c.member(others[0], p.name)["incarnation"]["version"]
        t_stop = time.time()
        c.kill(p, signal.SIGSTOP)
        log("pause: SIGSTOP %s for %d s" % (p.name, PAUSE_S))
        # watch the others' views while it is stopped
        seen = {}
        while time.time() < t_stop + PAUSE_S:
            for o in others:
                s = c.status_of(o, p.name)
                if s and s != "alive":
                    seen.setdefault(s, set()).add(o.name)
            time.sleep(0.5)
        t_cont = time.time()
        c.kill(p, signal.SIGCONT)
        log("pause: SIGCONT %s; views during the pause: %s" % (
            p.name, {k: len(v) for k, v in seen.items()}))
        if not c.wait_converged(60):
            raise ScenarioFailed("pause: not every agent sees all 16 alive within "
                                 "60 s of SIGCONT: %s" % c.view_summary())
        t_back = time.time() - t_cont

        susp = {}
        dead = {}
        for o in others:
            for e in c.events(o, kinds={"suspect", "dead"}, since=t_stop - 1):
                if e.who == p.name:
                    (susp if e.kind == "suspect" else dead).setdefault(o.name, e.t)
        check(susp or dead, "nobody suspected %s during a %d s stop" % (
            p.name, PAUSE_S))
        healthy = {a.name for a in others}
        false_dead = [e for a in c.agents for e in c.events(a, kinds={"dead"})
                      if e.who in healthy]
        check(not false_dead, "healthy members declared dead: %s" % false_dead)
        false_susp = [e for a in c.agents for e in c.events(a, kinds={"suspect"})
                      if e.who in healthy]
        refutes = c.events(p, kinds={"refuted"})
        alive_again = [e for o in others for e in c.events(o, kinds={"alive"},
                                                           since=t_cont - 1)
                       if e.who == p.name]
        last_back = max((e.t for e in alive_again), default=None)
        m = c.member(others[0], p.name)
        st = c.stats(p)

        def rel(d, t0):
            if not d:
                return "nobody"
            v = sorted(t - t0 for t in d.values())
            return "%d agents (first %.2f s, last %.2f s after SIGSTOP)" % (
                len(v), v[0], v[-1])
        log("SUMMARY pause: %s stopped %d s: suspected by %s; declared dead by "
            "%s; it refuted %d time(s) (version %d -> %d, stats.refutes %s); "
            "'alive again' logged by %d, the last %s after SIGCONT; all 16 "
            "alive in every view (polled) %.2f s after SIGCONT; false "
            "suspicions of healthy members: %d %s" % (
                p.name, PAUSE_S, rel(susp, t_stop), rel(dead, t_stop),
                len(refutes), ver_before, m["incarnation"]["version"],
                st and st.get("refutes"), len(alive_again),
                "%.2f s" % (last_back - t_cont) if last_back else "-", t_back,
                len(false_susp), false_susp[:5]))


if __name__ == "__main__":
    main(run)
