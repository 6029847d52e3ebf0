#!/usr/bin/env bash
# Detection over many seeds: runs livemesh-sim once per seed with one crash
# and prints the distribution, over runs, of the time until every survivor
# has the crashed node dead.
#   scripts/sim-detection.sh [NODES] [SEEDS] [extra livemesh-sim flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-128}
k=${2:-30}
shift $(($# < 2 ? $# : 2))
sim=build/sim/livemesh-sim
[ -x "$sim" ] || scripts/setup.sh
for seed in $(seq 1 "$k"); do
  "$sim" --nodes "$n" --seconds 60 --kill 1 --seed "$seed" "$@" -o json 2>/dev/null
done | python3 -c '
import json, math, sys
all_ms, first_ms, fd = [], [], 0
for line in sys.stdin:
    j = json.loads(line)
    all_ms.append(j["detect_all_ms"]["max"])
    first_ms.append(j["detect_first_ms"]["max"])
    fd += j["false_dead"]
def pct(v, p):
    v = sorted(v)
    return v[max(0, math.ceil(p * len(v)) - 1)]
print(json.dumps({"runs": len(all_ms),
                  "detect_all_ms": {"p50": pct(all_ms, .5), "p99": pct(all_ms, .99), "max": max(all_ms)},
                  "detect_first_ms": {"p50": pct(first_ms, .5), "max": max(first_ms)},
                  "false_dead": fd}))'
