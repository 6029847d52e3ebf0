#!/usr/bin/env python3
# bridge_bench.py LIVEMESH [lag|reconcile|isup]...: the etcd bridge's
# figures, one JSON line each on stdout (progress on stderr). Real agents
# (tests/multiproc/cluster.py) and a real etcd (tests/multiproc/etcd.py) on
# 127.0.0.1. Run from a build tree's top: scripts/bench-bridge.sh.
#
#  lag        1 agent with the bridge, 1,000 TTL services registered over
#             the control socket. A watcher (`etcdctl watch --prefix -w
#             json` on services/) timestamps every event as it arrives;
#             services are failed and passed one at a time (a random one,
#             every 50 ms): lag = the event's arrival - the moment the
#             fail/pass request was sent. Then a burst: 1,000 fails sent at
#             once, time until the last DOWN arrived. Also the bridge's own
#             lag_p50/p99 from `stats` (first change -> etcd applied).
#  reconcile  10 agents x 1,000 services (10,000), bridges on n00 and n01.
#             (1) the writer's lease revoked by hand: every key is deleted
#             by etcd; time until the bridge has put all 10,000+ back
#             (keys_pending 0, a new reconciliation counted); (2) the
#             writer stopped with SIGTERM (it resigns): the standby takes
#             over and reconciles against the 10,000 keys already there
#             (ranges them in pages, puts them all on its lease).
#  isup       is_up answered by the local agent through the client library
#             (livemesh-bench --lookup --socket: lm_client_is_up on one
#             connection, p50/p99) beside an etcd range of the same
#             service's key on one connection of the bridge's client
#             (etcd-range-bench, lm_etcd).
#
# Needs LIVEMESH = build/mesh/livemesh; the bench tools are looked up
# beside it (../tests/bench/livemesh-bench, ../tests/bench/etcd-range-bench).
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid as uuidlib

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "multiproc"))
from cluster import Cluster, ScenarioFailed, wait_until  # noqa: E402
import cluster as _cluster  # noqa: E402
from etcd import Etcd  # noqa: E402

PREFIX = "/livemesh/livemesh/"


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


_cluster.log = log  # progress to stderr: stdout is JSON lines only


def emit(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def pct(xs, p):
    s = sorted(xs)
    return s[max(0, (len(s) * p + 99) // 100 - 1)] if s else None


def call(sock, obj, timeout=10):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock)
        s.sendall(json.dumps(obj).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    r = json.loads(buf)
    if not r.get("ok"):
        raise ScenarioFailed("%s: %s" % (obj.get("cmd"), r))
    return r


class Prefilled(Cluster):
    """A Cluster whose agents start with services already registered: a
    services.json (the agent's own file of registrations, as `register`
    writes it) put in agent i's data dir before its first start, so 1,000
    registrations do not cost 1,000 atomic file rewrites. prefill: {i:
    (type, count)}; the uuids in self.uuids[i]."""

    def __init__(self, *a, prefill=None, **kw):
        Cluster.__init__(self, *a, **kw)
        self.prefill = dict(prefill or {})
        self.uuids = {}

    def spawn(self, a, *args, **kw):
        if a.idx in self.prefill and a.starts == 0:
            typ, n = self.prefill[a.idx]
            now = int(time.time() * 1000)
            us = [str(uuidlib.uuid4()) for _ in range(n)]
            self.uuids[a.idx] = us
            svcs = [{"uuid": u, "created_ms": now, "maint": None,
                     "spec": {"type": typ, "name": "%s-%d" % (typ, k),
                              "ttl": "1h", "uuid": u}}
                    for k, u in enumerate(us)]
            os.makedirs(a.data, exist_ok=True)
            with open(os.path.join(a.data, "services.json"), "w") as f:
                json.dump({"version": 1, "node": a.name, "services": svcs,
                           "declared": []}, f)
        return Cluster.spawn(self, a, *args, **kw)


def register_many(c, i, n, typ="bench"):
    sock = c.agents[i].sock
    return [call(sock, {"cmd": "register", "type": typ, "ttl": "1h",
                        "name": "%s-%d" % (typ, k)})["uuid"]
            for k in range(n)]


def bstats(c, i):
    s = c.stats(i)
    return (s or {}).get("bridge") or {}


class Watcher:
    """`etcdctl watch --prefix P -w json`: each event's key -> list of
    (arrival monotonic time, is_delete, value bytes)."""

    def __init__(self, e, prefix):
        cmd = [os.environ.get("LM_ETCDCTL_BIN", "/usr/bin/etcdctl"), "--endpoints", e.endpoint, "watch",
               "--prefix", prefix, "-w", "json"]
        self.p = subprocess.Popen(cmd, env=e.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL)
        self.events = []  # (t, key, is_delete, value)
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            t = time.monotonic()
            try:
                o = json.loads(line)
            except ValueError:
                continue
            evs = o.get("Events") or o.get("events") or []
            with self.cv:
                for ev in evs:
                    kv = ev.get("kv", {})
                    key = base64.b64decode(kv.get("key", "")).decode()
                    val = base64.b64decode(kv.get("value", "") or "")
                    self.events.append((t, key, ev.get("type") == 1 or
                                        ev.get("type") == "DELETE", val))
                self.cv.notify_all()

    def wait_key(self, suffix, since_idx, timeout):
        """The first event at or after index since_idx whose key ends with
        suffix: (t, index) or None."""
        deadline = time.monotonic() + timeout
        with self.cv:
            i = since_idx
            while True:
                while i < len(self.events):
                    if self.events[i][1].endswith(suffix):
                        return self.events[i][0], i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)

    def count(self):
        with self.lock:
            return len(self.events)

    def stop(self):
        os.kill(self.p.pid, signal.SIGTERM)
        self.p.wait()


# ---- (a) lag ----------------------------------------------------------------

def bench_lag(binary, nsvc=1000, flips=400):
    e = Etcd()
    e.start()
    try:
        with Prefilled(binary, n=1, tag="bb-lag",
                       agent_flags={0: ["--bridge-etcd", e.endpoint]},
                       prefill={0: ("bench", nsvc)}) as c:
            c.start()
            uuids = c.uuids[0]
            # TTL services start down until their first pass
            for u in uuids:
                call(c.agents[0].sock, {"cmd": "pass", "uuid": u})
            if not wait_until(lambda: len(e.get_prefix(PREFIX + "services/"))
                              == nsvc and bstats(c, 0).get("keys_pending")
                              == 0, 120, 0.5):
                raise ScenarioFailed("lag: the %d services not in etcd" % nsvc)
            w = Watcher(e, PREFIX + "services/")
            time.sleep(1)
            sock = c.agents[0].sock
            rnd = random.Random(7)
            down = set()
            lags = []
            for k in range(flips):
                u = rnd.choice(uuids)
                cmd = "pass" if u in down else "fail"
                idx = w.count()
                ts = time.monotonic()
                call(sock, {"cmd": cmd, "uuid": u})
                r = w.wait_key("/" + u, idx, 30)
                if r is None:
                    raise ScenarioFailed("lag: no etcd event for %s %s" % (
                        cmd, u))
                lags.append((r[0] - ts) * 1000.0)
                (down.discard if cmd == "pass" else down.add)(u)
                time.sleep(0.05)
            st = bstats(c, 0)
            emit({"bench": "bridge_lag", "services": nsvc, "n": len(lags),
                  "p50_ms": round(pct(lags, 50), 2),
                  "p99_ms": round(pct(lags, 99), 2),
                  "max_ms": round(max(lags), 2),
                  "bridge_lag_p50_ms": st.get("lag_p50_ms"),
                  "bridge_lag_p99_ms": st.get("lag_p99_ms"),
                  "bridge_writes": st.get("writes")})
            # a burst: every service failed at once
            for u in list(down):
                call(sock, {"cmd": "pass", "uuid": u})
            time.sleep(2)
            idx = w.count()
            t0 = time.monotonic()
            for u in uuids:
                call(sock, {"cmd": "fail", "uuid": u})
            t_sent = time.monotonic() - t0
            seen = set()
            deadline = time.monotonic() + 120
            last = None
            while len(seen) < nsvc and time.monotonic() < deadline:
                with w.cv:
                    while idx < len(w.events):
                        ev = w.events[idx]
                        idx += 1
                        u = ev[1].rsplit("/", 1)[-1]
                        if u not in seen:
                            seen.add(u)
                            last = ev[0]
                    w.cv.wait(0.5)
            w.stop()
            st2 = bstats(c, 0)
            emit({"bench": "bridge_lag_burst", "services": nsvc,
                  "changed": len(seen), "sent_s": round(t_sent, 3),
                  "last_in_etcd_s": round(last - t0, 3) if last else None,
                  "bridge_writes": st2.get("writes", 0) - st.get("writes", 0)})
    finally:
        e.cleanup()


# ---- (b) reconciliation ------------------------------------------------------

def bench_reconcile(binary, nodes=10, per=1000):
    e = Etcd()
    e.start()
    total = nodes * per
    try:
        flags = ["--bridge-etcd", e.endpoint, "--bridge-lease-ttl-s", "3"]
        with Prefilled(binary, n=nodes, tag="bb-rec",
                       agent_flags={0: flags, 1: flags},
                       prefill={i: ("svc%02d" % i, per)
                                for i in range(nodes)}) as c:
            t0 = time.monotonic()
            c.start()
            nkeys = total + nodes + 1  # services, members, meta/schema

            def full():
                for i in (0, 1):
                    b = bstats(c, i)
                    if b.get("leader") and b.get("keys_wanted") == nkeys and \
                            b.get("keys_pending") == 0:
                        return ("n0%d" % i, i)
                return None
            r = wait_until(full, 300, 0.25)
            wi = r[1] if r else None
            if wi is None:
                raise ScenarioFailed("reconcile: the view never reached %d "
                                     "keys: %s %s" % (nkeys, bstats(c, 0),
                                                      bstats(c, 1)))
            t_first = time.monotonic() - t0
            log("reconcile: %d keys in etcd %.1f s after the start (writer "
                "n0%d)" % (nkeys, t_first, wi))
            emit({"bench": "bridge_initial_fill", "keys": nkeys,
                  "agents": nodes, "from_start_s": round(t_first, 2),
                  "note": "includes the mesh's convergence of 10 agents' "
                          "service lists"})

            # (1) lease revoked: everything deleted by etcd, put back
            b0 = bstats(c, wi)
            lease = b0["lease_id"]
            t0 = time.monotonic()
            e.lease_revoke(lease)
            t_lost = t_elected = None
            while time.monotonic() - t0 < 300:
                bs = {i: bstats(c, i) for i in (0, 1)}
                now = time.monotonic() - t0
                if t_lost is None and bs[wi].get("leases_lost", 0) > \
                        b0["leases_lost"]:
                    t_lost = now
                ldr = [i for i in (0, 1) if bs[i].get("leader") and
                       bs[i].get("lease_id") not in (0, lease)]
                if ldr and t_elected is None:
                    t_elected = now
                if ldr and bs[ldr[0]]["state"] == "leader" and \
                        bs[ldr[0]]["keys_pending"] == 0 and \
                        bs[ldr[0]]["keys_wanted"] == nkeys:
                    done = now
                    wi2 = ldr[0]
                    break
                time.sleep(0.05)
            else:
                raise ScenarioFailed("reconcile: not back after revoke")
            n_etcd = int(json.loads(e.ctl(
                "get", "--prefix", PREFIX, "--keys-only", "--limit", "1",
                "-w", "json").stdout).get("count", 0))
            emit({"bench": "bridge_reconcile_after_revoke", "keys": nkeys,
                  "keys_in_etcd": n_etcd,
                  "lease_lost_seen_s": round(t_lost, 2) if t_lost else None,
                  "elected_s": round(t_elected, 2) if t_elected else None,
                  "all_put_s": round(done, 2),
                  "put_s": round(done - (t_elected or 0), 2),
                  "keys_per_s": round(nkeys / max(0.001, done - (t_elected or
                                                                  0)))})

            # (2) the writer resigns (SIGTERM): the standby reconciles
            # against the keys already there
            si = 1 - wi2
            if not wait_until(lambda: bstats(c, si).get("state") ==
                              "standby", 60, 0.2):
                raise ScenarioFailed("reconcile: n0%d not standing by" % si)
            r0 = bstats(c, si).get("reconciliations", 0)
            t0 = time.monotonic()
            c.kill(wi2, signal.SIGTERM)
            t_el = None
            while time.monotonic() - t0 < 300:
                b = bstats(c, si)
                now = time.monotonic() - t0
                if t_el is None and b.get("leader"):
                    t_el = now
                if b.get("state") == "leader" and \
                        b.get("reconciliations", 0) > r0 and \
                        b.get("keys_pending") == 0:
                    done = now
                    break
                time.sleep(0.05)
            else:
                raise ScenarioFailed("reconcile: the standby did not finish")
            emit({"bench": "bridge_reconcile_takeover", "keys": nkeys,
                  "elected_s": round(t_el, 2) if t_el else None,
                  "reconciled_s": round(done, 2),
                  "reconcile_s": round(done - (t_el or 0), 2),
                  "keys_per_s": round(nkeys / max(0.001, done - (t_el or 0))),
                  "keys_put": b.get("keys_put"),
                  "writes": b.get("writes")})
    finally:
        e.cleanup()


# ---- (c) is_up locally vs an etcd range ----------------------------------------

def bench_isup(binary):
    bench_dir = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(binary))), "tests", "bench")
    lb = os.path.join(bench_dir, "livemesh-bench")
    rb = os.path.join(bench_dir, "etcd-range-bench")
    e = Etcd()
    e.start()
    try:
        with Prefilled(binary, n=1, tag="bb-isup",
                       agent_flags={0: ["--bridge-etcd", e.endpoint]},
                       prefill={0: ("bench", 1000)}) as c:
            c.start()
            uuids = c.uuids[0]
            if not wait_until(lambda: bstats(c, 0).get("keys_pending") == 0
                              and bstats(c, 0).get("keys_wanted") == 1002,
                              60, 0.5):
                raise ScenarioFailed("isup: view not in etcd")
            key = PREFIX + "services/bench/n00/" + uuids[500]
            p = subprocess.run([lb, "--lookup", "--members", "100",
                                "--services", "10", "--lookups", "100000",
                                "--socket", c.agents[0].sock, "-o", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=300)
            if p.returncode != 0:
                raise ScenarioFailed("livemesh-bench: %s" % p.stderr)
            lk = json.loads(p.stdout)
            emit({"bench": "isup_local", "livemesh_bench_lookup": lk})
            p = subprocess.run([rb, e.endpoint, key, "20000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=300)
            if p.returncode != 0:
                raise ScenarioFailed("etcd-range-bench: %s" % p.stderr)
            emit(json.loads(p.stdout))
    finally:
        e.cleanup()


BENCHES = {"lag": bench_lag, "reconcile": bench_reconcile, "isup": bench_isup}


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: %s PATH/TO/livemesh [%s]..." % (
            sys.argv[0], "|".join(BENCHES)))
    names = sys.argv[2:] or list(BENCHES)
    try:
        for n in names:
            log("==== %s" % n)
            BENCHES[n](sys.argv[1])
    except ScenarioFailed as ex:
        log("FAIL %s" % ex)
        sys.exit(1)


if __name__ == "__main__":
    main()
