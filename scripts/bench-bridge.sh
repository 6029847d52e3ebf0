#!/usr/bin/env bash
# bench-bridge.sh [BUILD_DIR] [lag|reconcile|isup]...
#
# The etcd bridge's benchmarks (tests/bench/bridge_bench.py) against a real
# etcd (/usr/bin/etcd) started on free loopback ports: JSON lines on stdout,
# progress on stderr. BUILD_DIR (default ./build) must hold mesh/livemesh,
# tests/bench/livemesh-bench and tests/bench/etcd-range-bench
# (make livemesh livemesh-bench etcd-range-bench). No benchmark named: all
# three. See docs/bridge.md, "Benchmarks".
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in
-h | --help) sed -n 2,9p "$0"; exit 0 ;;
"" | lag | reconcile | isup) BUILD=$SRC/build ;;
*) BUILD=$1; shift ;;
esac
[ -x "$BUILD/mesh/livemesh" ] || { echo "bench-bridge.sh: no $BUILD/mesh/livemesh" >&2; exit 2; }
export PYTHONDONTWRITEBYTECODE=1
exec python3 "$SRC/tests/bench/bridge_bench.py" "$BUILD/mesh/livemesh" "$@"
