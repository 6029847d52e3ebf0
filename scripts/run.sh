#!/usr/bin/env bash
# The main job: install what is missing, build, and show a local mesh at work.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -x build/mesh/livemesh ]; then
  exec build/mesh/livemesh demo "$@"
fi
# Until the agent is built: the simulator runs a 1,000-node mesh, kills a
# node and reports how fast the survivors found out.
exec build/sim/livemesh-sim --nodes 1000 --seconds 60 --kill 1 --seed 1 "$@"
