#!/usr/bin/env bash
# False deaths around partitions, over many seeds: runs livemesh-sim with a
# full partition, a one-way cut and a flapping split of half the nodes, at
# 40, 128 and 1,000 nodes, and prints one JSON line per (scenario, nodes):
# seeds run, the total partition_false_dead (a member declared dead by one
# it could reach both ways: its own side of a cut, or anyone after a heal;
# must be 0), heal_edge_dead (declarations within a probe period of a heal
# that rest on a check failed while the cut stood), and the ordinary
# false_suspect / false_dead figures (healthy members marked suspect or
# dead at least once, by anyone: across a cut that is the detector doing
# its job).
#   scripts/sim-partitions.sh            200 seeds at 40 and 128, 10 at 1,000
#   SEEDS=50 BIG_SEEDS=4 JOBS=2 scripts/sim-partitions.sh
#   LIVEMESH_SIM=PATH picks another build of the simulator
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-200}
big_seeds=${BIG_SEEDS:-10}
jobs=${JOBS:-2}
sim=${LIVEMESH_SIM:-build/sim/livemesh-sim}
[ -x "$sim" ] || scripts/setup.sh
# name|flags (at 40 and 128 nodes: join, cut at 20 s for 60 s, 120 s run)
small=(
  "partition|--seconds 120 --partition 20:60:0.5"
  "oneway|--seconds 120 --oneway 20:60:0.5"
  "flap|--seconds 120 --flap 20:60:0.5:5:5"
)
# at 1,000 nodes: started converged, cut at 10 s for 40 s, 70 s run
big=(
  "partition|--bootstrap --seconds 70 --partition 10:40:0.5"
  "oneway|--bootstrap --seconds 70 --oneway 10:40:0.5"
  "flap|--bootstrap --seconds 70 --flap 10:40:0.5:5:5"
)
run() { # scenario nodes nseeds flags
  local name=$1 n=$2 k=$3 flags=$4
  seq 1 "$k" | xargs -P "$jobs" -I{} sh -c \
    "$sim --nodes $n --seed {} $flags --deterministic -o json 2>/dev/null" |
    jq -sc --arg s "$name" '{scenario: $s, nodes: .[0].n, seeds: length,
      partition_false_dead: (map(.partition_false_dead) | add),
      heal_edge_dead: (map(.heal_edge_dead) | add),
      false_suspect: (map(.false_suspect) | add),
      false_suspect_events: (map(.false_suspect_events) | add),
      false_dead: (map(.false_dead) | add),
      false_dead_events: (map(.false_dead_events) | add),
      heal_converge_ms_max: (map(.heal_converge_ms) | max),
      seeds_with_partition_false_dead:
        [.[] | select(.partition_false_dead > 0) | .seed]}'
}
for n in 40 128; do
  for s in "${small[@]}"; do
    run "${s%%|*}" "$n" "$seeds" "${s#*|}"
  done
done
if [ "$big_seeds" -gt 0 ]; then
  for s in "${big[@]}"; do
    run "${s%%|*}" 1000 "$big_seeds" "${s#*|}"
  done
fi
