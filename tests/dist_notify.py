#!/usr/bin/env python3
"""dist_notify.py: plays systemd's side of the notification protocol for
tests/test_dist.sh: binds the $NOTIFY_SOCKET datagram socket, keeps every
datagram the agent sends, and checks them.

  dist_notify.py listen SOCK OUT
      binds SOCK (a path, or @name in the abstract namespace) and appends
      each datagram to OUT as a JSON line {"t": CLOCK_MONOTONIC seconds at
      receipt, "fields": {KEY: VALUE, ...}}; stops on SIGTERM (or after
      10 minutes).
  dist_notify.py wait OUT KEY=VALUE [COUNT] [TIMEOUT_S]
      waits until OUT holds COUNT (1) datagrams with KEY=VALUE; exit 0, or 1
      after TIMEOUT_S (10) seconds.
  dist_notify.py check-run OUT WATCHDOG_USEC
      the run of test_dist.sh (an agent alone, SIGHUP, SIGTERM): READY=1
      first, then RELOADING=1 with a current MONOTONIC_USEC, then READY=1,
      STOPPING=1 last, each with a STATUS; WATCHDOG=1 every half period.
  dist_notify.py count OUT KEY=VALUE
      prints how many datagrams hold KEY=VALUE.
"""
import json
import os
import signal
import socket
import sys
import time


def parse(data):
    fields = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            fields[k] = v
    return fields


def load(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def listen(sock_path, out_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = "\0" + sock_path[1:] if sock_path.startswith("@") else sock_path
    s.bind(addr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # the test waits for this file before it starts the agent
    open(out_path + ".bound", "w").close()
    s.settimeout(600)
    with open(out_path, "a") as f:
        while True:
            try:
                data = s.recv(65536)
            except socket.timeout:
                return 0
            rec = {"t": time.monotonic(), "fields": parse(data)}
            f.write(json.dumps(rec) + "\n")
            f.flush()


def matching(recs, kv):
    k, v = kv.split("=", 1)
    return [r for r in recs if r["fields"].get(k) == v]


def wait(out_path, kv, count=1, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if len(matching(load(out_path), kv)) >= count:
            return 0
        time.sleep(0.05)
    return 1


def check_run(out_path, watchdog_usec):
    recs = load(out_path)
    fails = []

    def ok(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            fails.append(what)

    kinds = []
    for r in recs:
        f = r["fields"]
        for k in ("READY", "RELOADING", "STOPPING"):
            if f.get(k) == "1":
                kinds.append(k)
    ok(kinds == ["READY", "RELOADING", "READY", "STOPPING"],
       "state datagrams in order READY, RELOADING, READY, STOPPING (got %s)"
       % kinds)
    for r in recs:
        f = r["fields"]
        if any(f.get(k) == "1" for k in ("READY", "RELOADING", "STOPPING")):
            ok(bool(f.get("STATUS")), "%s carries a STATUS (%r)" % (
                [k for k in f if f[k] == "1"], f.get("STATUS")))
    rel = [r for r in recs if r["fields"].get("RELOADING") == "1"]
    if rel:
        mono = rel[0]["fields"].get("MONOTONIC_USEC", "")
        ok(mono.isdigit(), "RELOADING=1 carries MONOTONIC_USEC (%r)" % mono)
        if mono.isdigit():
            # the agent's CLOCK_MONOTONIC when it sent it vs ours at receipt
            skew = rel[0]["t"] - int(mono) / 1e6
            ok(0 <= skew < 1.0, "MONOTONIC_USEC is the time of sending "
               "(received %.3f s later)" % skew)
    wd = [r["t"] for r in recs if r["fields"].get("WATCHDOG") == "1"]
    period = watchdog_usec / 1e6
    ready = [r["t"] for r in recs if r["fields"].get("READY") == "1"]
    stop = [r["t"] for r in recs if r["fields"].get("STOPPING") == "1"]
    if ready and stop:
        span = stop[0] - ready[0]
        expect = span / (period / 2)
        n = len([t for t in wd if ready[0] <= t <= stop[0]])
        ok(0.6 * expect - 1 <= n <= 1.2 * expect + 1,
           "%d WATCHDOG=1 over %.2f s, about %.1f expected at half of "
           "WATCHDOG_USEC" % (n, span, expect))
    gaps = [b - a for a, b in zip(wd, wd[1:])]
    if gaps:
        ok(max(gaps) < period, "no gap between WATCHDOG=1 reaches "
           "WATCHDOG_USEC (%.3f s; largest %.3f s)" % (period, max(gaps)))
        mean = sum(gaps) / len(gaps)
        ok(0.35 * period <= mean <= 0.65 * period,
           "WATCHDOG=1 every %.3f s on average (half the period: %.3f s)"
           % (mean, period / 2))
    else:
        ok(False, "at least two WATCHDOG=1 (got %d)" % len(wd))
    return 1 if fails else 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "listen":
        return listen(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "wait":
        count = int(argv[3]) if len(argv) > 3 else 1
        timeout = float(argv[4]) if len(argv) > 4 else 10.0
        return wait(argv[1], argv[2], count, timeout)
    if len(argv) == 3 and argv[0] == "check-run":
        return check_run(argv[1], int(argv[2]))
    if len(argv) == 3 and argv[0] == "count":
        print(len(matching(load(argv[1]), argv[2])))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
