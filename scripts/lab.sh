#!/usr/bin/env bash
# lab.sh: the multi-host fault lab (docs/lab.md).
#
#   scripts/lab.sh [SCENARIO]... [-o json] [-j N]   default: every scenario
#   scripts/lab.sh soak [--minutes M] [-o json]     churn, invariants checked
#
# Scenarios: crash pause loss10 loss20 loss30 inbound80 partition oneway
# flap newip, and flood when named (not in the default set: its CPU load
# would skew the scenarios run beside it). Each runs 8 real agents, one per network namespace, on a
# bridge of its own (tests/lab/net.sh); the driver is tests/lab/lab.py.
# flood: LM_LAB_FLOOD_RATE (datagrams/s, default 50000) and
# LM_LAB_FLOOD_SECONDS (per kind of flood, default 60); it needs the flood
# tool built beside the agent (build/tests/flood, built with the tests).
#
# LIVEMESH: the binary (default build/mesh/livemesh, built by
# scripts/setup.sh). Needs root: without it, says so and exits 1.
# Everything the lab creates is named lmlab*: leftovers of an earlier run
# (even a killed one) are removed first, and this run's are removed on exit,
# error or interruption (EXIT/INT/TERM). Two labs never run at once (a lock).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB="$ROOT/tests/lab"
LIVEMESH=${LIVEMESH:-$ROOT/build/mesh/livemesh}

if [ "$(id -u)" -ne 0 ]; then
  echo "lab.sh: the fault lab needs root (network namespaces, veth, nftables); not run" >&2
  exit 1
fi
for tool in ip nft python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "lab.sh: $tool not found (apt-get install iproute2 nftables python3)" >&2
    exit 1
  fi
done
if [ ! -x "$LIVEMESH" ]; then
  echo "lab.sh: $LIVEMESH: no such binary (run scripts/setup.sh, or set LIVEMESH)" >&2
  exit 1
fi

# one lab at a time: they would share namespace names
exec 9>/run/lmlab.lock
if ! flock -n 9; then
  echo "lab.sh: another lab run holds /run/lmlab.lock" >&2
  exit 1
fi

cleanup() {
  bash "$LAB/net.sh" clean || true
}
driver=""
on_signal() {
  # the driver stops its agents and networks on SIGTERM; then ours
  [ -n "$driver" ] && kill -TERM "$driver" 2>/dev/null && wait "$driver"
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

# stale state of an earlier run: namespaces (and the agents in them)
cleanup
rm -rf /tmp/lm-lab-* /tmp/lm-labrun-* 2>/dev/null || true

PYTHONDONTWRITEBYTECODE=1 python3 "$LAB/lab.py" "$LIVEMESH" "$@" &
driver=$!
wait "$driver"
rc=$?
driver=""
exit $rc
