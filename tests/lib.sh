# tests/lib.sh: the harness the shell tests share (test_cli.sh,
# test_cli_services.sh, test_http.sh, test_probes.sh, test_dist.sh,
# test_deb.sh). A test sources it from its own directory, so that it is found
# however the test is started (ctest runs `bash tests/X.sh ...`):
#
#   . "$(dirname "$0")/lib.sh"
#
# Sourcing only defines functions; nothing runs until the test calls
# lm_init. A test may define its own version of any of these after sourcing.
#
# lm_init NAME
#   Creates the test's temporary directory T=/tmp/lm-NAME.XXXXXX and sets
#   PIDS=() (the processes the test started: it appends every PID it starts),
#   CHECKS=0 and FAILS=0. Installs an EXIT trap (lm_cleanup) and unsets every
#   LIVEMESH_* variable of the caller's environment, which must not steer the
#   agents under test.
# lm_cleanup
#   The EXIT trap: kills (SIGCONT, so that a SIGSTOPped one goes too, then
#   SIGKILL) only the PIDs in $PIDS, that is the processes the test itself
#   started, never anything found by name; then removes $T, or keeps it and
#   says so when LM_KEEP_TMP is set.
# ok DESC / bad DESC
#   One check passed / failed: counts it in CHECKS (and FAILS), prints
#   "ok   DESC" / "FAIL DESC".
# expect CODE DESC -- CMD...
#   Runs CMD with its output in $T/out and $T/err; one check: it exits CODE.
# has FILE PATTERN DESC
#   One check: FILE matches the extended regex PATTERN (grep -E).
# json FILE PYTHON-EXPRESSION DESC
#   One check: the expression is true, evaluated by python3 with `j` the
#   parsed FILE (modules json, re and sys imported).
# free_port
#   Prints a TCP port on 127.0.0.1 that was free a moment ago.
# start_agent NAME DIR SOCK [FLAGS...]
#   Starts "$BIN" agent in the background on 127.0.0.1:0 with data directory
#   DIR, control socket SOCK, node key $T/NAME/node.key and cluster key
#   $T/keys/cluster.pub, stderr appended to $T/NAME.log; its PID in $APID,
#   added to PIDS. Does not wait.
# wait_ping SOCK
#   Until "$BIN" ping answers on SOCK: 0 within 5 s, else 1. Not a check.
# start_agent_up NAME DIR SOCK [FLAGS...]
#   start_agent, then wait_ping; if the agent does not answer, one failed
#   check ("agent NAME did not answer within 5 s") and 1.
# stop PID
#   SIGTERM to PID (one the test started), then waits (9 s at most) and
#   leaves its exit status in $RC.
# sock_req JSON
#   One request line on the control socket $SOCK; the first answer line in
#   $T/out.
# summary
#   Prints "CHECKS checks, FAILS failed"; returns 0 when none failed, else 1
#   (a test ends with it, so that it is the test's exit status).
#
# Variables the functions read: BIN (the livemesh binary, absolute), T,
# PIDS, SOCK (sock_req only). Variables they set: T, PIDS, CHECKS, FAILS,
# APID, RC.

lm_init() {
  T=$(mktemp -d "/tmp/lm-$1.XXXXXX")
  PIDS=()
  FAILS=0
  CHECKS=0
  trap lm_cleanup EXIT
  local v
  for v in $(env | grep -o '^LIVEMESH_[A-Z_]*'); do unset "$v"; done
}

lm_cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -CONT "$p" 2>/dev/null
    kill -9 "$p" 2>/dev/null
  done
  if [ -n "${LM_KEEP_TMP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}

ok() { CHECKS=$((CHECKS + 1)); echo "ok   $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL $*"; }

expect() {
  local want=$1 desc=$2
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$desc (exit $rc)"; else
    bad "$desc: exit $rc, wanted $want"; sed 's/^/     | /' "$T/err" "$T/out" | head -12
  fi
}

has() {
  if grep -Eq -- "$2" "$1"; then ok "$3"; else
    bad "$3: no /$2/ in:"; sed 's/^/     | /' "$1" | head -20
  fi
}

json() {
  if python3 -c 'import json,re,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" 2>"$T/pyerr"; then
    ok "$3"
  else
    bad "$3: ($2) is false for:"; head -c 1200 "$1" | sed 's/^/     | /'; cat "$T/pyerr"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_agent() {
  local name=$1 dir=$2 sock=$3
  shift 3
  "$BIN" agent --data-dir "$dir" --node-key "$T/$name/node.key" \
    --cluster-key "$T/keys/cluster.pub" --bind 127.0.0.1:0 --socket "$sock" \
    "$@" 2>>"$T/$name.log" &
  APID=$!
  PIDS+=("$APID")
}

wait_ping() {
  for _ in $(seq 50); do
    "$BIN" ping --socket "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

start_agent_up() {
  local name=$1 sock=$3
  start_agent "$@"
  wait_ping "$sock" && return 0
  bad "agent $name did not answer within 5 s"; tail -5 "$T/$name.log"
  return 1
}

stop() {
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 90); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  wait "$1"
  RC=$?
}

sock_req() {
  python3 - "$SOCK" "$1" >"$T/out" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while b"\n" not in buf:
    d = s.recv(65536)
    if not d:
        break
    buf += d
print(buf.split(b"\n")[0].decode())
EOF
}

summary() {
  echo "$CHECKS checks, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}
