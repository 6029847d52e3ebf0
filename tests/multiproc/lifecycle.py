#!/usr/bin/env python3
# lifecycle.py LIVEMESH: crash, leave and restart on one mesh of 16 real
# agents on 127.0.0.1 (harness: cluster.py). Scenarios, in order:
#
#  crash    SIGKILL n07 -> every other agent marks it "dead" (members over
#           the control socket, then `livemesh members -o json`) within 60 s.
#           Measured from the observers' logs: first suspect, first and last
#           "member n07 is dead", relative to the kill.
#  leave    `livemesh leave --socket n09` -> exit 0, the agent process exits
#           0, every other agent sees n09 "left" within 10 s; no log ever
#           says n09 "is dead" or "is suspect". Measured: first/last "left".
#  restart  SIGTERM n11 (graceful: exit 0, seen "left"), start it again with
#           the same key, data dir and port -> everyone sees it alive again
#           with a strictly higher incarnation generation, and the data
#           dir's generation file holds that generation. Then the crashed
#           n07 is restarted too: dead -> alive again everywhere, with a
#           higher generation.
#  final    14 alive + n09 left in every view; no agent's log ever declared
#           a member dead other than n07 (the crashed one).
#
# Outcomes are asserted with generous time limits; times are reported, never
# asserted tightly (a slow 2-core machine runs several of these at once).
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ScenarioFailed, log, main, wait_until  # noqa: E402

CRASH, LEAVER, RESTART = 7, 9, 11


def check(cond, scenario, what):
    if not cond:
        raise ScenarioFailed("%s: %s" % (scenario, what))


def first_event_times(c, observers, who, kind, since):
    """{observer name: time of its first `kind` event about `who` since}."""
    out = {}
    for o in observers:
        ev = c.events(o, kinds={kind}, since=since)
        ev = [e for e in ev if e.who == who]
        if ev:
            out[o.name] = ev[0].t
    return out


def span(times, t0):
    if not times:
        return "none"
    v = sorted(t - t0 for t in times.values())
    return "first %.2f s, last %.2f s (%d observers)" % (v[0], v[-1], len(v))


def scenario_crash(c):
    sc = "crash"
    victim = c.agents[CRASH]
    others = [a for a in c.agents if a is not victim]
    gen_before = victim.generation
    t_kill = time.time()
    c.kill(victim, signal.SIGKILL)
    check(c.wait_exit(victim, 10) == -signal.SIGKILL, sc, "n07 did not die")
    log("crash: SIGKILLed %s" % victim.name)

    def all_dead():
        return all(c.status_of(o, victim.name) == "dead" for o in others)
    if not wait_until(all_dead, 60):
        raise ScenarioFailed("crash: not every agent marked %s dead within 60 s: "
                             "%s" % (victim.name, {o.name: c.status_of(o, victim.name)
                                                   for o in others}))
    t_all = time.time() - t_kill
    # the same outcome through the real client
    for o in (others[0], others[-1]):
        mj = c.cli_json(o, "members")
        st = {m["name"]: m["status"] for m in mj}
        check(st.get(victim.name) == "dead", sc,
              "`livemesh members -o json` on %s says %s is %s" % (
                  o.name, victim.name, st.get(victim.name)))
    dead_at = first_event_times(c, others, victim.name, "dead", t_kill - 1)
    susp_at = first_event_times(c, others, victim.name, "suspect", t_kill - 1)
    check(len(dead_at) == len(others), sc,
          "only %d of %d logs say '%s is dead'" % (len(dead_at), len(others),
                                                   victim.name))
    log("SUMMARY crash: %s killed; suspected: %s; dead: %s; all views dead "
        "after %.1f s (polled)" % (victim.name, span(susp_at, t_kill),
                                   span(dead_at, t_kill), t_all))
    return gen_before


def scenario_leave(c):
    sc = "leave"
    leaver = c.agents[LEAVER]
    others = [a for a in c.live() if a is not leaver]
    t0 = time.time()
    p = c.cli(leaver, "leave", check=False)
    t_cli = time.time() - t0
    check(p.returncode == 0, sc, "`livemesh leave` exited %d: %s" % (
        p.returncode, p.stderr.strip()))
    check("left the mesh" in p.stdout, sc, "`livemesh leave` printed %r" % p.stdout)
    rc = c.wait_exit(leaver, 15)
    check(rc == 0, sc, "the agent exited with %r after leave, wanted 0" % rc)

    def all_left():
        return all(c.status_of(o, leaver.name) == "left" for o in others)
    if not wait_until(all_left, 10, 0.1):
        raise ScenarioFailed("leave: not every agent sees %s left within 10 s: %s"
                             % (leaver.name, {o.name: c.status_of(o, leaver.name)
                                              for o in others}))
    t_all = time.time() - t0
    left_at = first_event_times(c, others, leaver.name, "left", t0 - 1)
    check(len(left_at) == len(others), sc, "only %d of %d logs say '%s left'"
          % (len(left_at), len(others), leaver.name))
    bad = [e for o in c.agents for e in c.events(o, kinds={"dead", "suspect"})
           if e.who == leaver.name]
    check(not bad, sc, "%s was marked dead/suspect: %s" % (leaver.name, bad))
    log("SUMMARY leave: `livemesh leave` returned after %.2f s; '%s left' "
        "logged: %s; all views left after %.2f s (polled)" % (
            t_cli, leaver.name, span(left_at, t0), t_all))


def restart_and_check(c, sc, a, gen_before, others):
    c.restart(a)
    check(a.generation > gen_before, sc, "%s logged generation %d at restart, "
          "not above %d" % (a.name, a.generation, gen_before))

    def back():
        for o in others + [a]:
            m = c.member(o, a.name)
            if not m or m["status"] != "alive" or \
                    m["incarnation"]["generation"] != a.generation:
                return False
        return True
    t0 = time.time()
    if not wait_until(back, 60):
        raise ScenarioFailed("%s: %s is not alive with generation %d everywhere "
                             "within 60 s: %s" % (sc, a.name, a.generation, {
                                 o.name: (lambda m: m and (m["status"], m["incarnation"]))(
                                     c.member(o, a.name)) for o in others}))
    t_back = time.time() - t0
    # the same outcome through the real client
    mj = {m["name"]: m for m in c.cli_json(others[0], "members")}
    check(mj[a.name]["status"] == "alive" and
          mj[a.name]["incarnation"]["generation"] > gen_before, sc,
          "`livemesh members -o json` on %s shows %s" % (others[0].name,
                                                         mj[a.name]))
    with open(os.path.join(a.data, "generation")) as f:
        stored = int(f.read().split()[0])
    check(stored == a.generation, sc, "data dir generation file holds %d, the "
          "agent runs with %d" % (stored, a.generation))
    # the restarted agent itself sees everyone again
    if not c.wait_converged(60, expect=[x.name for x in c.live()]):
        raise ScenarioFailed("%s: views did not converge after restarting %s: %s"
                             % (sc, a.name, c.view_summary()))
    return t_back


def scenario_restart(c):
    sc = "restart"
    a = c.agents[RESTART]
    others = [o for o in c.live() if o is not a]
    gen_before = c.member(others[0], a.name)["incarnation"]["generation"]
    check(gen_before == a.generation, sc, "members shows generation %d for %s, "
          "its log %d" % (gen_before, a.name, a.generation))
    c.kill(a, signal.SIGTERM)
    rc = c.wait_exit(a, 15)
    check(rc == 0, sc, "%s exited %r after SIGTERM, wanted 0" % (a.name, rc))
    if not wait_until(lambda: all(c.status_of(o, a.name) == "left" for o in others), 10):
        raise ScenarioFailed("restart: after SIGTERM not everyone sees %s left: %s"
                             % (a.name, {o.name: c.status_of(o, a.name) for o in others}))
    t_back = restart_and_check(c, sc, a, gen_before, others)
    log("SUMMARY restart: %s SIGTERM -> left everywhere; restarted with "
        "generation %d > %d; alive with it everywhere after %.2f s" % (
            a.name, a.generation, gen_before, t_back))


def scenario_crash_restart(c, gen_before):
    sc = "crash-restart"
    a = c.agents[CRASH]
    others = [o for o in c.live() if o is not a]
    t_back = restart_and_check(c, sc, a, gen_before, others)
    alive_again = [e for o in others for e in c.events(o, kinds={"alive"})
                   if e.who == a.name]
    log("SUMMARY crash-restart: %s (dead) restarted with generation %d > %d; "
        "alive everywhere after %.2f s ('is alive again' logged by %d)" % (
            a.name, a.generation, gen_before, t_back, len(alive_again)))


def scenario_final(c):
    sc = "final"
    want_alive = {a.name for a in c.agents if a.idx != LEAVER}
    for o in c.live():
        sm = c.status_map(o)
        check(sm is not None, sc, "%s does not answer" % o.name)
        check({k for k, v in sm.items() if v == "alive"} == want_alive and
              sm.get(c.agents[LEAVER].name) == "left", sc,
              "%s's view is %s" % (o.name, sm))
    bad = [e for o in c.agents for e in c.events(o, kinds={"dead"})
           if e.who != c.agents[CRASH].name]
    check(not bad, sc, "healthy members were declared dead: %s" % bad)
    susp = [e for o in c.agents for e in c.events(o, kinds={"suspect"})
            if e.who != c.agents[CRASH].name]
    log("SUMMARY final: views as expected; false suspicions of healthy "
        "members over the run: %d %s" % (len(susp), susp[:5]))


def run(binary):
    with Cluster(binary, tag="life") as c:
        c.start()
        gen7 = scenario_crash(c)
        scenario_leave(c)
        scenario_restart(c)
        scenario_crash_restart(c, gen7)
        scenario_final(c)


if __name__ == "__main__":
    main(run)
