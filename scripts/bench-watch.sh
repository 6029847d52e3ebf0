#!/usr/bin/env bash
# bench-watch.sh --http HOST:PORT [--watchers N] [--flips F]
#
# Opens N watch streams (GET /v1/watch?uuid=U, one connection each) on one
# running agent, registers a TTL service there over HTTP, then flips it
# F times (PUT .../fail, PUT .../pass) and measures, per flip, the delay
# from the PUT until each watcher has the transition's line. Prints one
# JSON object: {"watchers", "flips", "delivered", "all_ms" {p50, p99, max}
# (per flip: until all N had it), "each_ms" {p50, p99, max} (every
# watcher's line)}. The agent needs --http-max-conns above N, and enough
# descriptors (this script raises its own limit).
set -euo pipefail
ADDR=""
N=1000
F=10
while [ $# -gt 0 ]; do
  case $1 in
  --http) ADDR=$2; shift 2 ;;
  --watchers) N=$2; shift 2 ;;
  --flips) F=$2; shift 2 ;;
  -h | --help) sed -n 2,12p "$0"; exit 0 ;;
  *) echo "bench-watch.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$ADDR" ] || { echo "bench-watch.sh: --http HOST:PORT is required" >&2; exit 2; }
ulimit -n $((N + 256)) 2>/dev/null || true
exec python3 - "$ADDR" "$N" "$F" <<'EOF'
import json, selectors, socket, sys, time, urllib.request

addr, n, flips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host, port = addr.rsplit(":", 1)
base = "http://" + addr

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(base + path, data=data, method=method)
    with urllib.request.urlopen(r, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")

uuid = call("PUT", "/v1/services", {"type": "bench-watch", "ttl": "1h"})["uuid"]
call("PUT", "/v1/services/%s/pass" % uuid)
sel = selectors.DefaultSelector()
bufs = {}
req = ("GET /v1/watch?uuid=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (uuid, addr)).encode()
for i in range(n):
    s = socket.create_connection((host, int(port)))
    s.sendall(req)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, i)
    bufs[i] = b""

def pump(want, deadline):
    """Reads until every watcher has a line containing `want` (bytes)."""
    got = {}
    while len(got) < n and time.time() < deadline:
        for key, _ in sel.select(timeout=0.5):
            i = key.data
            try:
                d = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            if not d:
                sel.unregister(key.fileobj)
                continue
            bufs[i] += d
            if i not in got and want in bufs[i]:
                got[i] = time.time()
                bufs[i] = b""
    return got

# the initial lines first
pump(b'"initial":true', time.time() + 60)
all_ms, each_ms, delivered = [], [], 0
for f in range(flips):
    what, want = ("fail", b'"new":"down"') if f % 2 == 0 else ("pass", b'"new":"up"')
    t0 = time.time()
    call("PUT", "/v1/services/%s/%s" % (uuid, what))
    got = pump(want, time.time() + 30)
    delivered += len(got)
    each_ms += [(t - t0) * 1000 for t in got.values()]
    if len(got) == n:
        all_ms.append((max(got.values()) - t0) * 1000)

def dist(v):
    if not v:
        return None
    v = sorted(v)
    return {"p50": round(v[len(v) // 2], 3), "p99": round(v[min(len(v) - 1, int(len(v) * 0.99))], 3),
            "max": round(v[-1], 3), "n": len(v)}

call("DELETE", "/v1/services/%s" % uuid)
print(json.dumps({"watchers": n, "flips": flips, "delivered": delivered,
                  "expected": n * flips, "all_ms": dist(all_ms), "each_ms": dist(each_ms)}))
EOF
