#!/usr/bin/env python3
# snapshot.py LIVEMESH: the last-known view across restarts, with 3 real
# agents on 127.0.0.1 (harness: cluster.py), through the real client
# (`-o json`) and the agents' JSON logs.
#
#  restore   n00, n01, n02 each register a service; n02 is SIGKILLed (its
#            view.snapshot is what it last wrote, within 5 s of a change);
#            n00 and n01 stop (SIGTERM). n02 restarted alone (its seeds do
#            not answer): `services -o json` lists alpha@n00 and beta@n01
#            with "stale": true and "stale_age_ms" > 0, `is-up alpha n00
#            -o json` answers up (exit 0), stale, with an age, and `members
#            -o json` lists n00 and n01 (remembered, stale).
#  reconverge n00 and n01 come back (n00 joining through n02): n02's
#            answers are no longer stale within 30 s.
#  corrupt   with n00 and n01 stopped again, n02 SIGKILLed, its snapshot
#            truncated to half (then, second round, its magic overwritten):
#            n02 starts, its JSON log holds exactly one warning naming
#            view.snapshot and the reason, and it serves a view without
#            the others' services and nothing stale.
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, ScenarioFailed, log, main, wait_until  # noqa: E402

TYPES = ["alpha", "beta", "gamma"]


def check(cond, what):
    if not cond:
        raise ScenarioFailed(what)


def services(c, i):
    return c.cli_json(i, "services")


def is_up(c, i, typ, host):
    return c.cli_json(i, "is-up", typ, host, check=False)


def snap_file(c, i):
    return os.path.join(c.agents[i].data, "view.snapshot")


def stop(c, i, sig=signal.SIGTERM):
    c.kill(i, sig)
    check(c.wait_exit(i, 20) is not None, "n%02d did not exit" % i)


def snapshot_warnings(c, i, since):
    return [l for l in c.log_lines(i)[since:]
            if l.get("level") in ("warn", "warning", "WARN")
            and "snapshot" in l.get("msg", "")]


def run(binary):
    with Cluster(binary, n=3, tag="snap") as c:
        c.start(60)
        for i, t in enumerate(TYPES):
            c.cli(i, "register", "--type", t)
        for i in range(3):
            for k, t in enumerate(TYPES):
                check(wait_until(lambda: is_up(c, i, t, "n%02d" % k)[0] == 0,
                                 20), "%s@n%02d not up on n%02d" % (t, k, i))
        # a change is written within 5 s (+1 s of timer)
        check(wait_until(lambda: os.path.exists(snap_file(c, 2)), 10),
              "n02 wrote no view.snapshot")
        time.sleep(7)

        # ---- restore ----
        stop(c, 2, signal.SIGKILL)
        stop(c, 0)
        stop(c, 1)
        shutil.copy(snap_file(c, 2), os.path.join(c.tmp, "good.snapshot"))
        nlog = len(c.log_lines(2))
        c.restart(2)
        time.sleep(0.3)
        svcs = services(c, 2)
        by = {(s["type"], s["host"]): s for s in svcs}
        for k, t in enumerate(TYPES[:2]):
            s = by.get((t, "n%02d" % k))
            check(s is not None, "%s@n%02d not served from the snapshot: %s"
                  % (t, k, svcs))
            check(s["stale"] is True and s.get("stale_age_ms", 0) > 0,
                  "%s not stale with an age: %s" % (t, s))
            check(s["status"] == "up", "%s not up: %s" % (t, s))
        rc, j = is_up(c, 2, "alpha", "n00")
        check(rc == 0 and j and j["up"] is True and j["stale"] is True and
              j.get("stale_age_ms", 0) > 0, "is-up alpha n00: %s %s" % (rc, j))
        members = {m["name"]: m for m in c.cli_json(2, "members")}
        check({"n00", "n01", "n02"} <= set(members),
              "members not listed: %s" % sorted(members))
        check(members["n00"].get("stale") is True, "members: %s" % members)
        check(not snapshot_warnings(c, 2, nlog), "warnings about a good "
              "snapshot: %s" % snapshot_warnings(c, 2, nlog))
        log("restore: n02 alone answers from its snapshot: alpha/beta up, "
            "stale, age %d ms" % j["stale_age_ms"])

        # ---- reconverge ----
        c.agents[0].join = [c.agents[2].addr]
        c.restart(0)
        c.restart(1)

        def fresh():
            rc2, j2 = is_up(c, 2, "alpha", "n00")
            return rc2 == 0 and j2 and j2["stale"] is False
        t0 = time.monotonic()
        check(wait_until(fresh, 30), "n02 still stale 30 s after the others "
              "came back: %s" % (is_up(c, 2, "alpha", "n00"),))
        check(all(s["stale"] is False for s in services(c, 2)),
              "services still stale")
        log("reconverge: stale ended %.1f s after the others came back" %
            (time.monotonic() - t0))

        # ---- corrupt ----
        def truncate(p):
            with open(p, "r+b") as f:
                f.truncate(os.path.getsize(p) // 2)

        def bad_magic(p):
            shutil.copy(os.path.join(c.tmp, "good.snapshot"), p)
            with open(p, "r+b") as f:
                f.seek(2)
                f.write(b"XXXXXXXX")
        for rnd, (how, reason) in enumerate(((truncate, "truncated"),
                                             (bad_magic, "not a livemesh"))):
            for i in (0, 1):
                if c.agents[i].proc.poll() is None:
                    stop(c, i)
            stop(c, 2, signal.SIGKILL)
            how(snap_file(c, 2))
            nlog = len(c.log_lines(2))
            c.restart(2)
            time.sleep(0.5)
            w = snapshot_warnings(c, 2, nlog)
            check(len(w) == 1, "%s: %d warnings about the snapshot: %s" %
                  (how.__name__, len(w), w))
            check("view.snapshot" in w[0]["msg"] and reason in w[0]["msg"],
                  "the warning names neither file nor reason: %s" % w[0])
            svcs = services(c, 2)
            check(all(s["host"] == "n02" and s["stale"] is False
                      for s in svcs), "%s: served %s" % (how.__name__, svcs))
            rc, j = is_up(c, 2, "alpha", "n00")
            check(rc == 1 and j["stale"] is False and j["status"] == "unknown",
                  "%s: is-up alpha n00: %s %s" % (how.__name__, rc, j))
            check(c.agents[2].proc.poll() is None, "n02 died")
            log("corrupt (%s): one warning (%s), empty view, not stale" %
                (how.__name__, w[0]["msg"]))


if __name__ == "__main__":
    main(run)
