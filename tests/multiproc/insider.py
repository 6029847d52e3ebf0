#!/usr/bin/env python3
# insider.py LIVEMESH INSIDER: a member with a valid certificate turned
# hostile, against a mesh of 8 real agents on 127.0.0.1 (harness:
# cluster.py), each with a service "web" registered.
#
# The insider (tests/tools/insider.c, "x09": its own key, a certificate
# from the cluster key) joins, then sends every agent, over the stream,
# phase by phase: n03's alive record at a much higher incarnation with the
# insider's address and n03's leave, both signed with the insider's key;
# a service list in n03's name; messages whose header names n03 as the
# sender; dead and suspect verdicts about n03 at incarnations nobody can
# have seen ({max,max}, {gen,max}, {max,0}); once n03 has refuted, n03's
# genuine record of before, the insider's own record of before (it has
# since changed its metadata) and the verdict n03 refuted; then for 20 s a
# dead verdict about every member, ten times a second, each naming another
# member as its accuser.
#
# Asserted, from structured output only (`members`/`stats` over the control
# socket, `livemesh services/is-up -o json`):
#   - polled all through the attack, no agent ever lists one of the 8 dead
#     or left, every agent always has n03 at its genuine address, and none
#     lists a service of type "forged"; n03's "web" answers up everywhere;
#   - every attempt is counted by reason on every agent (stats `dropped`
#     grew by at least what that agent was sent): bad_record_signature
#     (forged alive and leave), sender_mismatch, accusation_ahead,
#     record_stale and accusation_stale (the replays), and
#     service_list_bad_signature on the agents other than n03;
#   - afterwards all 8 see each other alive, and the insider, gone, is
#     listed left.
# Printed: the drops per reason on each agent, refutations and suspicions
# the flood caused.
import json
import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ScenarioFailed, drops, log, main  # noqa: E402

N = 8
VICTIM = 3
INSIDER = None  # path of the insider tool (argv[2])


def check(cond, what):
    if not cond:
        raise ScenarioFailed("insider: " + what)


class Watch(threading.Thread):
    """Polls every agent's view until stopped; keeps what must never be
    seen: one of the 8 dead or left, n03 at another address."""

    def __init__(self, c, vaddr):
        super().__init__(daemon=True)
        self.c, self.vaddr = c, vaddr
        self.names = {a.name for a in c.agents}
        self.bad, self.polls = [], 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for a in self.c.agents:
                for m in self.c.members(a) or []:
                    if m["name"] not in self.names:
                        continue
                    if m["status"] in ("dead", "left"):
                        self.bad.append((a.name, m["name"], m["status"]))
                    if m["name"] == self.c.agents[VICTIM].name and \
                            m.get("addr") != self.vaddr:
                        self.bad.append((a.name, "n03 at", m.get("addr")))
            self.polls += 1
            self.stop.wait(0.3)


def run(binary, insider):
    global INSIDER
    INSIDER = insider
    with Cluster(binary, n=N, tag="insider") as c:
        c.start(converge_timeout=60)
        for i in range(N):
            c.cli(i, "register", "--type", "web")
        victim = c.agents[VICTIM]
        vaddr = c.member(c.agents[0], victim.name)["addr"]
        before = {a.name: drops(c.stats(a)) for a in c.agents}
        st0 = {a.name: c.stats(a) for a in c.agents}
        ins = c.new_agent("x09", c.ckey, c.cpub)
        w = Watch(c, vaddr)
        w.start()
        t0 = time.monotonic()
        p = subprocess.Popen(
            [INSIDER, "--node-key", os.path.join(ins.home, "node.key"),
             "--node-cert", os.path.join(ins.home, "node.cert"),
             "--cluster-key", c.cpub, "--join", c.agents[0].addr,
             "--expect", str(N + 1), "--victim", victim.name,
             "--flood-seconds", "20"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise ScenarioFailed("insider: the tool still ran after 150 s")
        finally:
            w.stop.set()
            w.join()
        check(p.returncode == 0, "the tool exited %d: %s" % (
            p.returncode, err.strip()[-500:]))
        phases = {}
        for line in out.splitlines():
            o = json.loads(line)
            if "phase" in o:
                phases[o["phase"]] = o
        log("insider phases: %s" % json.dumps(phases, sort_keys=True))
        for ph in ("forge_alive", "forge_leave", "forge_services",
                   "spoof_sender", "accuse_ahead", "replay", "verdict_flood"):
            check(ph in phases and phases[ph]["targets"] == N,
                  "phase %s not sent to all %d: %s" % (ph, N, phases.get(ph)))
        check(not w.bad, "seen during the attack (%d polls): %s" % (
            w.polls, w.bad[:8]))
        check(w.polls >= 10, "only %d polls of the views" % w.polls)

        # every attempt counted, by reason, on every agent
        sent = lambda ph: phases[ph]["messages"]  # noqa: E731
        want = {
            "bad_record_signature": sent("forge_alive") + sent("forge_leave"),
            "sender_mismatch": sent("spoof_sender"),
            "accusation_ahead": phases["accuse_ahead"]["records"],
            "record_stale": sent("replay"),
            "accusation_stale": sent("replay"),
        }
        grew = {}
        for i, a in enumerate(c.agents):
            after = drops(c.stats(a))
            d = {k: after.get(k, 0) - before[a.name].get(k, 0) for k in after}
            grew[a.name] = {k: v for k, v in d.items() if v}
            for reason, n in want.items():
                check(d.get(reason, 0) >= n, "%s counted %d %s, was sent %d "
                      "(drops that grew: %s)" % (a.name, d.get(reason, 0),
                                                 reason, n, grew[a.name]))
            if i != VICTIM:
                n = d.get("service_list_bad_signature", 0)
                check(n >= sent("forge_services"), "%s counted %d "
                      "service_list_bad_signature, was sent %d" % (
                          a.name, n, sent("forge_services")))
        log("drops that grew, by agent: %s" % json.dumps(grew, sort_keys=True))

        # nothing forged is believed
        for i in range(N):
            rc, svcs = c.cli_json(i, "services", check=False)
            check(rc == 0 and isinstance(svcs, list), "services on %s: %r" % (
                c.agents[i].name, svcs))
            fake = [s for s in svcs if s.get("type") == "forged"]
            check(not fake, "%s lists %s" % (c.agents[i].name, fake))
            rc, j = c.cli_json(i, "is-up", "web", victim.name, check=False)
            check(rc == 0 and j.get("status") == "up", "%s: is-up web n03: "
                  "exit %d %s" % (c.agents[i].name, rc, j))
        names = {a.name for a in c.agents}
        if not c.wait_converged(30):
            raise ScenarioFailed("insider: the 8 do not all see each other "
                                 "alive: %s" % c.view_summary())
        for a in c.agents:
            sm = c.status_map(a)
            check(sm.get("x09") in ("left", None), "%s holds the insider %s" %
                  (a.name, sm.get("x09")))
            check({k for k, v in sm.items() if v == "alive"} == names,
                  "%s sees %s" % (a.name, sm))
        st1 = {a.name: c.stats(a) for a in c.agents}
        ref = {n: st1[n].get("refutes", 0) - st0[n].get("refutes", 0)
               for n in st1}
        sus = sum(st1[n].get("suspicions_raised", 0) -
                  st0[n].get("suspicions_raised", 0) for n in st1)
        log("SUMMARY insider: %.0f s of attack, %d view polls, no member of "
            "the 8 seen dead or left, n03 never at another address; "
            "refutations by agent %s; suspicions raised in all %d" % (
                time.monotonic() - t0, w.polls, ref, sus))


if __name__ == "__main__":
    main(run, tools=("insider",))
