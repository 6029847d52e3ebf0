#!/usr/bin/env python3
# flood.py LIVEMESH [SECONDS] [RATE]: one agent of 8 real ones on 127.0.0.1
# (harness: cluster.py) flooded with UDP datagrams by tests/tools/flood
# (built beside the agent: build/tests/flood), first random bytes, then
# real datagrams captured on the loopback device (AF_PACKET: root) with a
# few bytes of their authentication changed, RATE per second (default
# 50,000) for SECONDS each (default 60).
#
# Asserted, from structured output only (`members -o json`, `stats -o
# json`, /proc):
#   - every agent, polled through the flood, never lists a member dead or
#     left, and at the end sees all 8 alive;
#   - the flooded agent still answers and its drops grew by at least 90%
#     of what reached its socket (sent less what the kernel dropped for a
#     full receive buffer, /proc/net/snmp Udp RcvbufErrors).
# Measured and printed (one JSON line per kind): datagrams sent, received
# by the agent, dropped by reason, the agent's CPU time over the flood and
# per datagram (the cost of rejecting one), suspicions raised anywhere.
import json
import os
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import (Cluster, ScenarioFailed, Sniffer, log, main,  # noqa: E402
                     port_of, tool_beside, udp_rcvbuf_errors)

N = 8
VICTIM = 4


def check(cond, what):
    if not cond:
        raise ScenarioFailed(what)


def cpu_s(pid):
    """CPU seconds process pid has used (utime + stime of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime


def write_seeds(path, datagrams):
    """The flood tool's seed file: each datagram as a 2-byte big-endian
    length and its bytes."""
    with open(path, "wb") as f:
        for d in datagrams:
            f.write(struct.pack("!H", len(d)) + d)


def run(binary, seconds=60.0, rate=50000):
    if os.geteuid() != 0:
        raise ScenarioFailed("the flood test captures datagrams on lo "
                             "(AF_PACKET) and needs root")
    flood = tool_beside(binary, "flood")
    check(os.access(flood, os.X_OK), "%s: not built" % flood)
    with Cluster(binary, n=N, tag="flood") as c:
        c.start()
        victim = c.agents[VICTIM]
        vport = port_of(victim.addr)
        others = {port_of(a.addr) for a in c.agents if a is not victim}
        seeds = Sniffer().capture(vport, others, 8.0, 400)
        check(len(seeds) >= 5, "captured only %d datagrams to n%02d" % (
            len(seeds), VICTIM))
        seedf = os.path.join(c.tmp, "seeds.bin")
        write_seeds(seedf, seeds)
        log("captured %d real datagrams to n%02d (%d..%d bytes)" % (
            len(seeds), VICTIM, min(map(len, seeds)), max(map(len, seeds))))

        results = []
        for kind in ("garbage", "tamper"):
            st0 = c.stats(VICTIM)
            susp0 = sum(c.stats(i)["suspicions_raised"] for i in range(N))
            cpu0, rb0 = cpu_s(victim.proc.pid), udp_rcvbuf_errors()
            args = [flood, "--target", victim.addr, "--rate", str(rate),
                    "--seconds", str(seconds), "--kind", kind]
            if kind == "tamper":
                args += ["--seeds", seedf]
            p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
            bad = []
            while p.poll() is None:
                for i in range(N):
                    ms = c.members(i)
                    for m in ms or []:
                        if m["status"] in ("dead", "left"):
                            bad.append((c.agents[i].name, m["name"],
                                        m["status"]))
                time.sleep(0.5)
            out = json.loads(p.stdout.read())
            cpu1, rb1 = cpu_s(victim.proc.pid), udp_rcvbuf_errors()
            st1 = c.stats(VICTIM)
            check(st1 is not None, "n%02d stopped answering" % VICTIM)
            susp1 = sum(c.stats(i)["suspicions_raised"] for i in range(N))
            drops = {k: v - st0["dropped"].get(k, 0)
                     for k, v in st1["dropped"].items()
                     if v - st0["dropped"].get(k, 0) > 0}
            received = st1["udp_pkts_in"] - st0["udp_pkts_in"]
            kernel_dropped = rb1 - rb0
            reached = out["sent"] - kernel_dropped
            cpu = cpu1 - cpu0
            r = {"kind": kind, "rate": rate, "seconds": out["seconds"],
                 "sent": out["sent"], "kernel_dropped": kernel_dropped,
                 "received": received, "dropped": drops,
                 "dropped_total": sum(drops.values()),
                 "cpu_s": round(cpu, 3),
                 "cpu_us_per_datagram": round(cpu * 1e6 / max(1, received), 2),
                 "cpu_share": round(cpu / max(0.001, out["seconds"]), 3),
                 "suspicions_raised": susp1 - susp0,
                 "dead_or_left_seen": len(bad)}
            print(json.dumps(r, sort_keys=True), flush=True)
            results.append(r)
            check(not bad, "%s flood: members seen dead or left: %s" % (
                kind, sorted(set(bad))[:8]))
            check(r["dropped_total"] >= 0.9 * reached,
                  "%s flood: %d dropped of %d that reached n%02d" % (
                      kind, r["dropped_total"], reached, VICTIM))
        check(c.wait_converged(30), "after the flood: %s" % c.view_summary())
        log("after the flood every agent sees all %d alive" % N)


if __name__ == "__main__":
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    pps = int(sys.argv[3]) if len(sys.argv) > 3 else 50000
    main(lambda b: run(b, secs, pps), sys.argv[:2])
