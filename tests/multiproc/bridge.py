#!/usr/bin/env python3
# bridge.py LIVEMESH [SCENARIO...]: the etcd bridge end to end, with real
# `livemesh agent` processes (tests/multiproc/cluster.py) and a real etcd
# (tests/multiproc/etcd.py, /usr/bin/etcd 3.4) on 127.0.0.1. Scenarios
# (all when none is named; ctest runs one per test):
#
#  view       10 agents, n00 and n01 with the bridge, one TTL service each:
#             the etcd view (members/*, services/* decoded with protoc)
#             equals the mesh view of a third agent (names, statuses,
#             uuids, types, hosts); meta/schema and bridge/leader present,
#             every key on the writer's lease. `fail` and `maint` reach
#             etcd (DOWN, MAINTENANCE); a SIGKILLed agent's member and
#             service keys are deleted once the mesh declares it dead.
#  failover   4 agents, bridges on n00 and n01 with --bridge-lease-ttl-s 5.
#             The writer SIGKILLed: the other takes over (bound: lease TTL
#             + 2 s + slack) and reconciles (the dead member's keys go, no
#             key on the old lease). Fencing: the (new) writer SIGSTOPped
#             past its TTL, the other wins, then SIGCONT: the resumed one
#             applies no write (its `writes` stays), counts itself deposed
#             or its lease lost, and no key ends up on its lease.
#  faults     4 agents, 2 bridges (TTL 5): etcd SIGKILLed and started again
#             on the same ports and data while the view changes: reconciled;
#             the writer's lease revoked by hand: a new lease, every key put
#             again on it; etcd compacted at its current revision while the
#             standby watches the leader key, then the writer SIGKILLed: the
#             standby still takes over. Then etcd's 8 MiB quota filled
#             with junk: the writer says quota_full, readiness fails; junk
#             deleted, compacted, defragmented, alarm disarmed: the view
#             is written again.
#  tls        etcd with TLS client certificates and user/password auth:
#             the bridge with --bridge-ca/-cert/-key/-user/-password-file
#             writes the view; an agent given a wrong password says so in
#             its log and stats (last_error, not connected/healthy) and
#             keeps running.
#  oslively   --bridge-layout os-lively --bridge-namespace osl, key by key
#             as os-lively's reader reads them: by-type-host/<type>/<host>
#             holds the uuid, by-status/UP/<uuid> (empty) while up and
#             by-status/DOWN/<uuid> once failed, by-uuid/<uuid> decodes as
#             oslively.Service with uuid, type, host, status and region.
#  minority  a 3-member etcd (e0, e1, e2 on loopback), 3 agents, the
#             bridge on n00 given all three endpoints, e0's first, lease
#             TTL 5 s. Once the view is in etcd, e0 is cut off from e1 and
#             e2 at the peer level only (nftables, table lm_minority_test;
#             its client port stays open): e0 has no leader while e1+e2
#             keep one, so e0 answers "no leader" (or not in time). A `fail`
#             and a new registration then reach etcd (read through e1)
#             within 40 s: the bridge moved on to another endpoint, is the
#             writer again (stats: leader, its errors counted, its keys on
#             its lease) and said so in its log. The rules removed: e0
#             rejoins, a `pass` reaches etcd, and the view read through e0
#             and through e1 equals the mesh's. Needs root and nft (exit 77,
#             skipped, otherwise).
#
# Bounds are generous (a slow 2-core CI box); every figure is printed.
# Every process (agents, etcd) is started here and stopped by its PID.
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ScenarioFailed, log, wait_until  # noqa: E402
from etcd import NFT, Etcd, EtcdCluster, PeerCut, decode  # noqa: E402

PREFIX = "/livemesh/livemesh/"
LEADER_KEY = PREFIX + "bridge/leader"
SLACK = 5.0          # seconds of scheduling slack on a loaded 2-core box
CONVERGE = 45        # seconds for a view to reach etcd
DEAD_WITHIN = 60     # seconds for a SIGKILLed agent to be declared dead
RESULTS = []

_DECODED = {}


class Skipped(Exception):
    """A scenario that cannot run here (exit 77 when every one is)."""


def check(cond, sc, what):
    if not cond:
        raise ScenarioFailed("%s: %s" % (sc, what))


def figure(sc, text):
    RESULTS.append("%-9s %s" % (sc, text))
    log("%s: %s" % (sc, text))


def dec(msg, value, proto="livemesh.proto"):
    k = (msg, value)
    if k not in _DECODED:
        _DECODED[k] = decode(msg, value, proto)
    return _DECODED[k]


# ---- the two views --------------------------------------------------------

def etcd_view(e, prefix=PREFIX):
    """(members {name: status}, services {uuid: (type, host, status)},
    kvs {key: Kv}) as the bridge wrote them; proto3 leaves defaults out, so
    a missing status is ALIVE / UP."""
    kvs = e.get_prefix(prefix)
    members, services = {}, {}
    for k, kv in kvs.items():
        rest = k[len(prefix):]
        if rest.startswith("members/"):
            m = dec("livemesh.v1.Member", kv.value)
            members[m["name"]] = m.get("status", "ALIVE").lower()
            if rest != "members/" + m["name"]:
                raise ScenarioFailed("key %s holds member %s" % (k, m["name"]))
        elif rest.startswith("services/"):
            s = dec("livemesh.v1.Service", kv.value)
            want = "services/%s/%s/%s" % (s["type"], s["host"], s["uuid"])
            if rest != want:
                raise ScenarioFailed("key %s holds service %s" % (k, want))
            services[s["uuid"]] = (s["type"], s["host"],
                                   s.get("status", "UP").lower())
    return members, services, kvs


def mesh_view(c, i):
    """The same from agent i: members not dead or left, their services."""
    ms = c.cli_json(i, "members")
    ss = c.cli_json(i, "services")
    members = {m["name"]: m["status"] for m in ms
               if m["status"] in ("alive", "suspect")}
    services = {s["uuid"]: (s["type"], s["host"], s["status"]) for s in ss
                if s["member_status"] in ("alive", "suspect")}
    return members, services


def views_equal(c, e, i, prefix=PREFIX):
    em, es, kvs = etcd_view(e, prefix)
    mm, ms = mesh_view(c, i)
    return (em == mm and es == ms), (em, es, mm, ms, kvs)


def wait_views_equal(c, e, i, sc, timeout=CONVERGE, what="views equal"):
    t0 = time.monotonic()
    last = [None]

    def ok():
        eq, detail = views_equal(c, e, i)
        last[0] = detail
        return eq
    if not wait_until(ok, timeout, 0.5):
        em, es, mm, ms, _ = last[0]
        raise ScenarioFailed(
            "%s: %s not reached within %d s:\n  etcd members %s\n  mesh "
            "members %s\n  etcd services %s\n  mesh services %s\n  bridge "
            "stats %s" % (sc, what, timeout, em, mm, es, ms,
                          bridge_summary(c)))
    dt = time.monotonic() - t0
    em, es, _, _, kvs = last[0]
    return dt, em, es, kvs


def bridge_stats(c, i):
    s = c.stats(i)
    return s.get("bridge") if s else None


def bridge_summary(c):
    out = []
    for a in c.agents:
        if a.proc and a.proc.poll() is None:
            b = bridge_stats(c, a)
            if b:
                out.append("%s: %s" % (a.name, json.dumps(b, sort_keys=True)))
    return "\n    ".join(out)


def leader(e, key=LEADER_KEY):
    """(writer's name, its lease, the key's create revision) or None."""
    kv = e.get(key)
    if not kv:
        return None
    name = dec("livemesh.v1.Leader", kv.value).get("name")
    return name, kv.lease, kv.create_rev


def all_on_lease(kvs, lease):
    return [k for k, kv in kvs.items() if kv.lease != lease]


def register(c, i, typ="web", *extra):
    return c.cli(i, "register", "--type", typ, "--ttl", "10m",
                 *extra).stdout.strip()


def bridge_flags(e, *extra):
    return ["--bridge-etcd", e.endpoint] + list(extra)


def new_etcd(**kw):
    e = Etcd(**kw)
    e.start()
    log("etcd %s (pid %d) in %s" % (e.endpoint, e.pid, e.tmp))
    return e


def wait_service_status(e, uuid, status, timeout, prefix=PREFIX):
    def ok():
        _, es, _ = etcd_view(e, prefix)
        s = es.get(uuid)
        return s is not None and s[2] == status
    t0 = time.monotonic()
    return time.monotonic() - t0 if wait_until(ok, timeout, 0.2) else None


def wait_dead_gone(c, e, sc, victim, observer, uuid):
    """Waits until `observer` declares `victim` dead, then until its keys
    are gone from etcd; (seconds to dead, seconds more to etcd)."""
    t0 = time.monotonic()
    if not wait_until(lambda: c.status_of(observer, victim) == "dead",
                      DEAD_WITHIN, 0.2):
        raise ScenarioFailed("%s: %s not declared dead within %d s" % (
            sc, victim, DEAD_WITHIN))
    t_dead = time.monotonic() - t0

    def gone():
        kvs = e.get_prefix(PREFIX)
        return not any(k == PREFIX + "members/" + victim or
                       ("/%s/" % victim in k and k.endswith(uuid))
                       for k in kvs)
    t1 = time.monotonic()
    if not wait_until(gone, CONVERGE, 0.2):
        raise ScenarioFailed("%s: %s's keys still in etcd %d s after it was "
                             "declared dead: %s" % (
                                 sc, victim, CONVERGE,
                                 sorted(e.get_prefix(PREFIX))))
    return t_dead, time.monotonic() - t1


# ---- scenarios ------------------------------------------------------------

def sc_view(binary):
    sc = "view"
    e = new_etcd()
    try:
        flags = bridge_flags(e)
        with Cluster(binary, n=10, tag="bridge-view",
                     agent_flags={0: flags, 1: flags}) as c:
            c.start()
            uuids = {}
            for i in range(10):
                uuids[i] = register(c, i, "web", "--region", "r%d" % (i % 3))
            dt, em, es, kvs = wait_views_equal(c, e, 2, sc)
            check(len(em) == 10 and len(es) == 10, sc,
                  "etcd has %d members, %d services" % (len(em), len(es)))
            figure(sc, "10 members and 10 services in etcd, equal to n02's "
                   "view, %.1f s after the last registration" % dt)
            schema = kvs.get(PREFIX + "meta/schema")
            check(schema is not None, sc, "no meta/schema")
            sd = dec("livemesh.v1.Schema", schema.value)
            check(sd.get("version") == 1 and sd.get("encoding") == "protobuf"
                  and sd.get("layout") == "native" and
                  sd.get("cluster") == "livemesh", sc,
                  "meta/schema is %s" % sd)
            ld = leader(e)
            check(ld and ld[0] in ("n00", "n01"), sc, "leader key: %s" % (ld,))
            writer, lease, _ = ld
            bad = all_on_lease(kvs, lease)
            check(not bad, sc, "keys not on the writer's lease: %s" % bad)
            wi = int(writer[1:])
            st = bridge_stats(c, wi)
            check(st["leader"] and st["state"] == "leader" and
                  st["lease_id"] == lease and st["keys_pending"] == 0 and
                  st["reconciliations"] >= 1, sc,
                  "writer %s's stats: %s" % (writer, st))
            other = 1 - wi
            so = bridge_stats(c, other)
            check(so["state"] == "standby" and not so["leader"] and
                  so["writer"] == writer and so["healthy"], sc,
                  "standby n0%d's stats: %s" % (other, so))
            figure(sc, "writer %s (lease %x), n0%d standing by; meta/schema %s"
                   % (writer, lease, other, sd))
            # mesh detail of one service, compared field by field
            svc = [s for s in c.cli_json(2, "services")
                   if s["uuid"] == uuids[4]][0]
            d = dec("livemesh.v1.Service", kvs[PREFIX + "services/web/n04/" +
                                              uuids[4]].value)
            check(d.get("region") == svc["region"] == "r1" and
                  d.get("checks", {}).get("kind") == "ttl" and
                  d.get("member_status", "ALIVE") == "ALIVE", sc,
                  "service detail: etcd %s, mesh %s" % (d, svc))
            # metrics and readiness name the bridge
            met = c.cli(wi, "metrics").stdout
            check("livemesh_bridge_leader 1" in met, sc,
                  "no livemesh_bridge_leader 1 in the writer's /metrics")

            # a status change: fail (TTL) and maint
            t0 = time.monotonic()
            c.cli(5, "fail", uuids[5], "--note", "bridge test")
            t = wait_service_status(e, uuids[5], "down", CONVERGE)
            check(t is not None, sc, "fail: n05's service not DOWN in etcd")
            figure(sc, "fail -> DOWN in etcd after %.2f s" %
                   (time.monotonic() - t0))
            t0 = time.monotonic()
            c.cli(6, "maint", uuids[6], "--for", "10m", "--note", "upgrade")
            t = wait_service_status(e, uuids[6], "maintenance", CONVERGE)
            check(t is not None, sc, "maint: not MAINTENANCE in etcd")
            figure(sc, "maint -> MAINTENANCE in etcd after %.2f s" %
                   (time.monotonic() - t0))
            t0 = time.monotonic()
            c.cli(5, "pass", uuids[5])
            check(wait_service_status(e, uuids[5], "up", CONVERGE)
                  is not None, sc, "pass: n05's service not UP again")
            figure(sc, "pass -> UP in etcd after %.2f s" %
                   (time.monotonic() - t0))

            # a SIGKILLed agent
            c.kill(9)
            c.wait_exit(9)
            t_dead, t_etcd = wait_dead_gone(c, e, sc, "n09", 2, uuids[9])
            figure(sc, "n09 SIGKILLed: dead on n02 after %.1f s, its member "
                   "and service keys gone from etcd %.2f s later" %
                   (t_dead, t_etcd))
            dt, em, es, kvs = wait_views_equal(c, e, 2, sc)
            check(len(em) == 9 and len(es) == 9 and "n09" not in em, sc,
                  "after n09's death etcd has %s" % sorted(em))
            check(not all_on_lease(kvs, lease), sc, "keys off the lease")
    finally:
        e.cleanup()


def sc_failover(binary):
    sc = "failover"
    ttl = 5
    e = new_etcd()
    try:
        flags = bridge_flags(e, "--bridge-lease-ttl-s", str(ttl))
        with Cluster(binary, n=4, tag="bridge-fo",
                     agent_flags={0: flags, 1: flags}) as c:
            c.start()
            uuids = {i: register(c, i) for i in range(4)}
            wait_views_equal(c, e, 2, sc)
            w0, lease0, rev0 = leader(e)
            wi = int(w0[1:])
            si = 1 - wi
            log("%s: writer n0%d (lease %x), standby n0%d" %
                (sc, wi, lease0, si))

            # ---- the writer SIGKILLed
            t0 = time.monotonic()
            c.kill(wi)
            c.wait_exit(wi)

            def taken():
                ld = leader(e)
                return ld if ld and ld[0] == "n0%d" % si else None
            ld = wait_until(taken, ttl + 2 + SLACK + 10, 0.1)
            check(ld, sc, "n0%d did not take over within %d s: %s" % (
                si, ttl + 2 + SLACK + 10, bridge_summary(c)))
            took = time.monotonic() - t0
            figure(sc, "writer n0%d SIGKILLed: n0%d wrote the leader key "
                   "after %.2f s (lease TTL %d s)" % (wi, si, took, ttl))
            check(took <= ttl + 2 + SLACK, sc, "takeover took %.1f s > "
                  "TTL %d + 2 + %.0f s of slack" % (took, ttl, SLACK))
            _, lease1, rev1 = ld
            check(lease1 != lease0 and rev1 > rev0, sc, "same lease/revision")
            t_dead, t_etcd = wait_dead_gone(c, e, sc, "n0%d" % wi, 2,
                                            uuids[wi])
            dt, em, es, kvs = wait_views_equal(c, e, 2, sc)
            bad = all_on_lease(kvs, lease1)
            check(not bad, sc, "keys not on the new writer's lease: %s" % bad)
            figure(sc, "n0%d dead after %.1f s, its keys gone %.2f s later; "
                   "%d keys all on the new lease" % (wi, t_dead, t_etcd,
                                                     len(kvs)))

            # ---- fencing: the new writer paused past its lease
            c.restart(wi)
            check(wait_until(lambda: (bridge_stats(c, wi) or {}).get(
                "state") == "standby", 30, 0.2), sc,
                "restarted n0%d not standing by: %s" % (wi,
                                                        bridge_stats(c, wi)))
            wait_views_equal(c, e, 2, sc)
            before = bridge_stats(c, si)
            check(before["leader"] and before["lease_id"] == lease1, sc,
                  "n0%d not the writer before the pause: %s" % (si, before))
            c.kill(si, signal.SIGSTOP)
            t0 = time.monotonic()
            try:
                # the view changes while it sleeps: it has work on resume
                c.cli(3, "fail", uuids[3])

                def won():
                    ld = leader(e)
                    return ld if ld and ld[0] == "n0%d" % wi else None
                ld2 = wait_until(won, ttl + 2 + SLACK + 10, 0.1)
                check(ld2, sc, "n0%d did not win while n0%d was stopped" %
                      (wi, si))
                figure(sc, "n0%d SIGSTOPped: n0%d won after %.2f s" % (
                    si, wi, time.monotonic() - t0))
                lease2 = ld2[1]
                check(wait_service_status(e, uuids[3], "down", CONVERGE)
                      is not None, sc, "the new writer did not write DOWN")
                time.sleep(1)
            finally:
                c.kill(si, signal.SIGCONT)
            t_resume = time.monotonic()

            # the resumed one: not leader, no write applied, keys not its
            def stepped_down():
                b = bridge_stats(c, si)
                return b if b and not b["leader"] and \
                    b["state"] in ("standby", "connecting", "campaigning",
                                   "backoff") and \
                    b["lease_id"] != lease1 else None
            after = wait_until(stepped_down, 30, 0.2)
            check(after, sc, "n0%d after SIGCONT: %s" % (
                si, bridge_stats(c, si)))
            time.sleep(3)  # let any stray write it had queued land (it must not)
            after = bridge_stats(c, si)
            check(after["writes"] == before["writes"], sc,
                  "n0%d applied %d writes after being deposed" % (
                      si, after["writes"] - before["writes"]))
            check(after["deposed"] + after["leases_lost"] >= 1, sc,
                  "n0%d counts neither deposed nor lease lost: %s" % (
                      si, after))
            kvs = e.get_prefix(PREFIX)
            on_old = [k for k, kv in kvs.items() if kv.lease == lease1]
            check(not on_old, sc, "keys on the deposed writer's lease: %s" %
                  on_old)
            check(leader(e)[0] == "n0%d" % wi, sc, "leader changed back")
            figure(sc, "n0%d resumed (SIGCONT): state %s, writes %d -> %d, "
                   "deposed %d, leases_lost %d; no key on its old lease "
                   "%.1f s after" % (si, after["state"], before["writes"],
                                     after["writes"], after["deposed"],
                                     after["leases_lost"],
                                     time.monotonic() - t_resume))
            _, _, _, kvs = wait_views_equal(c, e, 2, sc)
            check(not all_on_lease(kvs, lease2), sc, "keys off the lease")
    finally:
        e.cleanup()


def sc_faults(binary):
    sc = "faults"
    ttl = 5
    e = new_etcd(quota_bytes=8 << 20)
    try:
        flags = bridge_flags(e, "--bridge-lease-ttl-s", str(ttl))
        with Cluster(binary, n=4, tag="bridge-faults",
                     agent_flags={0: flags, 1: flags}) as c:
            c.start()
            uuids = {i: register(c, i) for i in range(4)}
            wait_views_equal(c, e, 2, sc)

            # ---- etcd restarted while the view changes
            e.stop(signal.SIGKILL)
            t0 = time.monotonic()
            c.cli(3, "fail", uuids[3])
            extra = register(c, 2, "api")
            time.sleep(2)
            e.start()
            log("%s: etcd back after %.1f s down" % (sc, time.monotonic() - t0))
            dt, em, es, kvs = wait_views_equal(c, e, 2, sc, timeout=60)
            check(es[uuids[3]][2] == "down" and extra in es, sc,
                  "changes made while etcd was down missing: %s" % es)
            ld = leader(e)
            check(ld and not all_on_lease(kvs, ld[1]), sc,
                  "after the restart keys are off the writer's lease")
            figure(sc, "etcd SIGKILLed and restarted: the view reconciled "
                   "%.1f s after it answered again (writer %s)" % (dt, ld[0]))

            # ---- the writer's lease revoked by hand
            w, lease, _ = ld
            nkeys = len(kvs)
            t0 = time.monotonic()
            e.lease_revoke(lease)

            def reput():
                ld2 = leader(e)
                if not ld2 or ld2[1] == lease:
                    return None
                kv2 = e.get_prefix(PREFIX)
                if len(kv2) != nkeys or all_on_lease(kv2, ld2[1]):
                    return None
                return ld2
            ld2 = wait_until(reput, 30, 0.2)
            check(ld2, sc, "after the revocation: %d keys, leader %s" % (
                len(e.get_prefix(PREFIX)), leader(e)))
            figure(sc, "lease %x revoked: %d keys back on lease %x (writer "
                   "%s) after %.2f s" % (lease, nkeys, ld2[1], ld2[0],
                                         time.monotonic() - t0))
            wait_views_equal(c, e, 2, sc)
            # the old writer learns it at its next keep-alive (TTL/3), which
            # may come after the other bridge already won and wrote
            oi = int(w[1:])
            check(wait_until(lambda: bridge_stats(c, oi)["leases_lost"] >= 1,
                             ttl + SLACK, 0.2), sc,
                  "n0%d never counted its lease lost: %s" % (
                      oi, bridge_stats(c, oi)))

            # ---- compaction while the standby watches, then the writer dies
            w, lease, _ = ld2
            wi = int(w[1:])
            si = 1 - wi
            check(wait_until(lambda: bridge_stats(c, si)["state"] ==
                             "standby", 30, 0.2), sc,
                  "n0%d not standing by" % si)
            for k in range(20):
                e.put("/other/junk%d" % k, "x" * 100)
            rev = e.revision()
            e.compact(rev)
            log("%s: compacted at revision %d" % (sc, rev))
            time.sleep(1)
            t0 = time.monotonic()
            c.kill(wi)
            c.wait_exit(wi)
            ld3 = wait_until(lambda: (leader(e) or ("",))[0] == "n0%d" % si
                             and leader(e), ttl + 2 + SLACK + 10, 0.1)
            check(ld3, sc, "after compaction n0%d did not take over: %s" % (
                si, bridge_summary(c)))
            figure(sc, "compacted at %d, writer n0%d SIGKILLed: n0%d took "
                   "over after %.2f s" % (rev, wi, si, time.monotonic() - t0))
            wait_dead_gone(c, e, sc, "n0%d" % wi, 2, uuids[wi])
            _, _, _, kvs = wait_views_equal(c, e, 2, sc)
            check(not all_on_lease(kvs, ld3[1]), sc, "keys off the lease")

            # ---- quota full: etcd refuses writes until space is freed
            junk = "x" * 100000
            k = 0
            while k < 200:
                p = e.ctl("put", "/junk/%03d" % k, junk, check=False)
                if p.returncode != 0:
                    check("space" in p.stderr, sc, "junk put: %s" % p.stderr)
                    break
                k += 1
            check(k < 200, sc, "etcd took %d x 100 kB under an 8 MiB quota" % k)
            log("%s: etcd full after %d puts of 100 kB: %s" % (
                sc, k, e.alarms()))
            c.cli(3, "pass", uuids[3])

            def full():
                b = bridge_stats(c, si)
                return b if b and b["quota_full"] and not b["healthy"] \
                    else None
            b = wait_until(full, 30, 0.2)
            check(b, sc, "quota: the writer does not say quota_full: %s" %
                  bridge_stats(c, si))
            rd = c.cli(si, "ready", check=False)
            check(rd.returncode != 0, sc, "ready while etcd's quota is full")
            e.delete("/junk/", prefix=True)
            e.compact(e.revision())
            e.defrag()
            e.alarm_disarm()
            t0 = time.monotonic()
            _, _, es, _ = wait_views_equal(c, e, 2, sc, timeout=40)
            check(es[uuids[3]][2] == "up", sc, "pass lost")
            check(wait_until(lambda: not bridge_stats(c, si)["quota_full"],
                             20, 0.2), sc, "still quota_full")
            figure(sc, "quota full after %d x 100 kB: quota_full, not ready "
                   "(exit %d); space freed and the alarm disarmed: the view "
                   "in etcd again %.1f s later" % (k, rd.returncode,
                                                    time.monotonic() - t0))
    finally:
        e.cleanup()


def sc_tls(binary):
    sc = "tls"
    pw = "s3cret-Pw"
    e = new_etcd(tls=True, auth_password=pw)
    try:
        good = os.path.join(e.tmp, "pw.good")
        bad = os.path.join(e.tmp, "pw.bad")
        with open(good, "w") as f:
            f.write(pw + "\n")
        with open(bad, "w") as f:
            f.write("not-the-password\n")
        tls = ["--bridge-ca", e.ca, "--bridge-cert", e.cert, "--bridge-key",
               e.key, "--bridge-user", "root"]
        with Cluster(binary, n=3, tag="bridge-tls",
                     agent_flags={0: bridge_flags(e, *tls,
                                                  "--bridge-password-file",
                                                  good),
                                  1: bridge_flags(e, *tls,
                                                  "--bridge-password-file",
                                                  bad)}) as c:
            c.start()
            u = register(c, 2)
            dt, em, es, kvs = wait_views_equal(c, e, 2, sc)
            check(u in es and len(em) == 3, sc, "view: %s %s" % (em, es))
            check(leader(e)[0] == "n00", sc, "writer %s" % (leader(e),))
            figure(sc, "over TLS with a client certificate and root's "
                   "password, n00 wrote %d keys" % len(kvs))

            def refused():
                b = bridge_stats(c, 1)
                return b if b and "auth" in b["last_error"].lower() else None
            b = wait_until(refused, 30, 0.5)
            check(b, sc, "wrong password: n01's last_error %s" % (
                bridge_stats(c, 1),))
            check(not b["healthy"] and not b["leader"], sc,
                  "wrong password but %s" % b)
            lines = [l["msg"] for l in c.log_lines(1)
                     if "bridge" in l.get("msg", "") and
                     "auth" in l.get("msg", "").lower()]
            check(lines, sc, "n01's log says nothing of authentication")
            check(c.agents[1].proc.poll() is None, sc, "n01 died")
            rd = c.cli(1, "ready", check=False)
            figure(sc, "wrong password: n01 keeps running (ready exit %d), "
                   "stats last_error %r, log: %r" % (rd.returncode,
                                                     b["last_error"],
                                                     lines[-1][:160]))
            c.cli(2, "fail", u)
            check(wait_service_status(e, u, "down", CONVERGE) is not None,
                  sc, "fail did not reach etcd over TLS")
    finally:
        e.cleanup()


def sc_oslively(binary):
    sc = "oslively"
    e = new_etcd()
    ns = "/osl/services/"
    try:
        flags = bridge_flags(e, "--bridge-layout", "os-lively",
                             "--bridge-namespace", "osl")
        with Cluster(binary, n=3, tag="bridge-osl",
                     agent_flags={0: flags}) as c:
            c.start()
            u = register(c, 1, "web", "--region", "eu-west")

            def key(k):
                return e.get(ns + k)
            th = wait_until(lambda: key("by-type-host/web/n01"), CONVERGE,
                            0.3)
            check(th is not None, sc, "no by-type-host/web/n01: %s" %
                  sorted(e.get_prefix("/osl/")))
            check(th.value.decode() == u, sc, "by-type-host holds %r, not %s"
                  % (th.value, u))
            up = wait_until(lambda: key("by-status/UP/" + u), CONVERGE, 0.3)
            check(up is not None and up.value == b"", sc,
                  "by-status/UP/%s: %s" % (u, up))
            check(key("by-status/DOWN/" + u) is None, sc, "DOWN while up")
            bu = key("by-uuid/" + u)
            check(bu is not None, sc, "no by-uuid/%s" % u)
            d = dec("oslively.Service", bu.value, "oslively.proto")
            check(d.get("uuid") == u and d.get("type") == "web" and
                  d.get("host") == "n01" and d.get("status", "UP") == "UP"
                  and d.get("region") == "eu-west", sc, "by-uuid: %s" % d)
            figure(sc, "up: by-type-host/web/n01 = %s, by-status/UP/<uuid> "
                   "empty, by-uuid decodes as %s" % (u, d))
            lk = e.get("/osl/livemesh/livemesh/bridge/leader")
            check(lk is not None, sc, "no leader key under /osl/livemesh/")
            kvs = e.get_prefix("/osl/")
            check(not all_on_lease(kvs, lk.lease), sc, "keys off the lease")

            t0 = time.monotonic()
            c.cli(1, "fail", u)

            def down():
                dk = key("by-status/DOWN/" + u)
                return dk is not None and key("by-status/UP/" + u) is None
            check(wait_until(down, CONVERGE, 0.2), sc,
                  "after fail: %s" % sorted(e.get_prefix(ns)))
            d = dec("oslively.Service", key("by-uuid/" + u).value,
                    "oslively.proto")
            check(d.get("status") == "DOWN", sc, "by-uuid after fail: %s" % d)
            check(key("by-type-host/web/n01").value.decode() == u, sc,
                  "by-type-host changed")
            figure(sc, "fail: by-status/DOWN/<uuid> present, UP gone, "
                   "by-uuid status DOWN after %.2f s" %
                   (time.monotonic() - t0))
            # nothing of the native layout
            check(not e.get_prefix("/livemesh/"), sc, "native keys written")
            other = [k for k in kvs if not k.startswith(ns) and
                     k != "/osl/livemesh/livemesh/bridge/leader"]
            check(not other, sc, "keys outside the namespace: %s" % other)
    finally:
        e.cleanup()


MINORITY_TABLE = "lm_minority_test"
MINORITY_GID = 54321  # e0's group: its sockets are told apart by it
MINORITY_BOUND = 40   # seconds for a change to reach the majority


def sc_minority(binary):
    sc = "minority"
    ttl = 5
    if os.geteuid() != 0 or not os.path.exists(NFT):
        raise Skipped("minority needs root and nft")
    ec = EtcdCluster(3, gids={0: MINORITY_GID})
    cut = PeerCut(ec, 0, MINORITY_TABLE)
    try:
        t0 = time.monotonic()
        ec.start()
        log("%s: etcd e0 %s e1 %s e2 %s (peer ports %s, pids %s) up after "
            "%.1f s, in %s" % (sc, ec.endpoints[0], ec.endpoints[1],
                               ec.endpoints[2], ec.peer_ports, ec.pids(),
                               time.monotonic() - t0, ec.tmp))
        e0, e1 = ec[0], ec[1]
        flags = []
        for ep in ec.endpoints:
            flags += ["--bridge-etcd", ep]
        flags += ["--bridge-lease-ttl-s", str(ttl)]
        with Cluster(binary, n=3, tag="bridge-minority",
                     agent_flags={0: flags}) as c:
            c.start()
            uuids = {i: register(c, i) for i in range(3)}
            dt, em, es, kvs = wait_views_equal(c, e1, 2, sc)
            check(len(em) == 3 and len(es) == 3, sc,
                  "etcd has %s %s" % (em, es))
            ld = leader(e1)
            check(ld and ld[0] == "n00", sc, "leader key: %s" % (ld,))
            before = bridge_stats(c, 0)
            check(before["leader"] and before["state"] == "leader" and
                  before["connected"] and before["lease_id"] == ld[1], sc,
                  "n00 before the cut: %s" % before)
            figure(sc, "3 members, 3 services in etcd (read through e1) "
                   "%.1f s after the last registration; n00 writes, lease "
                   "%x, errors %d" % (dt, ld[1], before["errors"]))
            raft_leader = ec.leader_seen(1)
            log("%s: raft leader before the cut: %s" % (
                sc, [m.name for k, m in enumerate(ec.members)
                     if ec.member_id(k) == raft_leader]))
            log_mark = len(c.log_lines(0))

            try:
                cut.apply()
                t_cut = time.monotonic()
                log("%s: nft rules in table %s:\n%s" % (
                    sc, MINORITY_TABLE, cut.listing().rstrip()))

                def split():
                    l0, l1, l2 = (ec.leader_seen(k) for k in range(3))
                    ids = [ec.member_id(1), ec.member_id(2)]
                    return l0 == 0 and l1 and l1 == l2 and l1 in ids
                check(wait_until(split, 30, 0.3), sc,
                      "no split within 30 s: e0 sees leader %x, e1 %x, e2 "
                      "%x\n%s" % (ec.leader_seen(0), ec.leader_seen(1),
                                   ec.leader_seen(2), ec.log_tails()))
                figure(sc, "e0 cut off at the peer level: no leader on e0, "
                       "e1 and e2 agree on one, %.1f s after the cut" %
                       (time.monotonic() - t_cut))

                # a status change while e0 has no leader
                t0 = time.monotonic()
                c.cli(1, "fail", uuids[1], "--note", "minority test")
                t = wait_service_status(e1, uuids[1], "down", MINORITY_BOUND)
                check(t is not None, sc,
                      "fail: n01's service not DOWN in etcd (through e1) "
                      "within %d s; n00's bridge: %s\n  n00 log: %s" % (
                          MINORITY_BOUND, bridge_stats(c, 0),
                          c.log_tail(0, 12)))
                t_fail = time.monotonic() - t0
                figure(sc, "fail -> DOWN in etcd (through e1) after %.2f s "
                       "(%.1f s after the cut)" % (
                           t_fail, time.monotonic() - t_cut))

                # the writer again, its errors counted, its keys on its lease
                def writer_again():
                    b = bridge_stats(c, 0)
                    return b if b and b["leader"] and \
                        b["state"] == "leader" and b["connected"] and \
                        b["healthy"] and b["keys_pending"] == 0 else None
                st = wait_until(writer_again, 20, 0.3)
                check(st, sc, "n00 not the writer again: %s" %
                      bridge_stats(c, 0))
                check(st["errors"] > before["errors"], sc,
                      "n00 counted no error: %s -> %s" % (before["errors"],
                                                         st["errors"]))
                ld = leader(e1)
                check(ld and ld[0] == "n00" and ld[1] == st["lease_id"], sc,
                      "leader key %s, n00's lease %x" % (ld, st["lease_id"]))
                figure(sc, "n00: state %s, leader, errors %d -> %d, leases "
                       "lost %d -> %d, lease %x -> %x, last_error %r" % (
                           st["state"], before["errors"], st["errors"],
                           before["leases_lost"], st["leases_lost"],
                           before["lease_id"], st["lease_id"],
                           st["last_error"]))
                lines = [l.get("msg", "") for l in c.log_lines(0)[log_mark:]
                         if "bridge" in l.get("msg", "")]
                moved = [m for m in lines if "next etcd endpoint" in m]
                check(moved, sc, "n00's log never says it moved to the next "
                      "endpoint:\n  %s" % "\n  ".join(lines[-15:]))
                # the cause, not what the move itself did to the requests
                # still on the old connection
                causes = ("etcd has no leader", "etcd request timed out")
                check(all(m.startswith(causes, len("bridge: "))
                          for m in moved), sc,
                      "n00's log names no cause for the move: %s" % moved)
                check("switching endpoint" not in st["last_error"], sc,
                      "n00's last_error is the move's own doing: %r" %
                      st["last_error"])
                left = [m for m in lines if "leaving endpoint" in m]
                check(left and ec.endpoints[0] in left[0], sc,
                      "n00 did not leave e0 first: %s" % left)
                figure(sc, "n00's log: %r; %r" % (moved[0][:120],
                                                  left[0][:120]))

                # a new service, still cut off
                t0 = time.monotonic()
                extra = register(c, 2, "api")
                dt, em, es, kvs = wait_views_equal(c, e1, 2, sc,
                                                   timeout=MINORITY_BOUND)
                check(extra in es and es[uuids[1]][2] == "down", sc,
                      "etcd services %s" % es)
                ld = leader(e1)
                bad = all_on_lease(kvs, ld[1])
                check(ld[0] == "n00" and not bad, sc,
                      "leader %s, keys off its lease: %s" % (ld, bad))
                check(ec.leader_seen(0) == 0, sc, "e0 found a leader while "
                      "cut off (the cut does not hold)")
                figure(sc, "a new service registered while e0 is cut off: "
                       "views equal (through e1) after %.2f s" %
                       (time.monotonic() - t0))
            finally:
                cut.remove()
            check(not cut.exists(), sc, "table %s still there" %
                  MINORITY_TABLE)

            # healed: e0 rejoins, everything consistent through e0 and e1
            t0 = time.monotonic()

            def joined():
                l = [ec.leader_seen(k) for k in range(3)]
                return l[0] and l[0] == l[1] == l[2]
            check(wait_until(joined, 30, 0.3), sc,
                  "e0 did not rejoin within 30 s\n%s" % ec.log_tails())
            figure(sc, "rules removed: e0 follows the cluster's leader again "
                   "after %.1f s" % (time.monotonic() - t0))
            t0 = time.monotonic()
            c.cli(1, "pass", uuids[1])
            check(wait_service_status(e1, uuids[1], "up", CONVERGE)
                  is not None, sc, "pass: not UP in etcd after the heal")
            _, em, es, kvs = wait_views_equal(c, e1, 2, sc)
            _, em0, es0, kvs0 = wait_views_equal(c, e0, 2, sc,
                                                 what="views equal via e0")
            check(em0 == em and es0 == es and len(es) == 4 and
                  len(em) == 3, sc, "through e0 %s %s, through e1 %s %s" % (
                      em0, es0, em, es))
            check(sorted(kvs0) == sorted(kvs) and
                  all(kvs0[k].mod_rev == kvs[k].mod_rev for k in kvs), sc,
                  "e0 and e1 disagree on the keys' revisions")
            ld = leader(e1)
            st = bridge_stats(c, 0)
            check(ld[0] == "n00" and not all_on_lease(kvs, ld[1]) and
                  st["leader"] and st["lease_id"] == ld[1], sc,
                  "after the heal: leader %s, n00 %s" % (ld, st))
            figure(sc, "pass -> UP, views equal through e1 and e0 (%d keys, "
                   "all on n00's lease %x) %.1f s after the heal's pass; "
                   "n00 errors %d" % (len(kvs), ld[1],
                                      time.monotonic() - t0, st["errors"]))
    finally:
        try:
            cut.remove()
        finally:
            ec.cleanup()


SCENARIOS = {"view": sc_view, "failover": sc_failover, "faults": sc_faults,
             "tls": sc_tls, "oslively": sc_oslively, "minority": sc_minority}


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: %s PATH/TO/livemesh [%s]..." % (
            sys.argv[0], "|".join(SCENARIOS)))
    names = sys.argv[2:] or list(SCENARIOS)
    for n in names:
        if n not in SCENARIOS:
            raise SystemExit("unknown scenario %s" % n)
    t0 = time.monotonic()
    skipped = 0
    try:
        for n in names:
            log("==== %s" % n)
            try:
                SCENARIOS[n](sys.argv[1])
            except Skipped as ex:
                log("SKIP %s" % ex)
                skipped += 1
    except ScenarioFailed as ex:
        log("FAIL %s" % ex)
        log("run time %.1f s" % (time.monotonic() - t0))
        sys.exit(1)
    if skipped == len(names):
        sys.exit(77)  # ctest: SKIP_RETURN_CODE
    for r in RESULTS:
        print("  " + r)
    log("PASS (run time %.1f s)" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
