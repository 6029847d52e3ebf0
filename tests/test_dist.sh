#!/usr/bin/env bash
# test_dist.sh LIVEMESH SRC: what mesh/agent/dist/ ships, checked against
# the real binary: the systemd unit (systemd-analyze verify), the default
# config (the agent's own loader), the man pages (groff and man with every
# warning on), the bash completion (called as bash would), and the agent's
# systemd notifications, read as datagrams from a $NOTIFY_SOCKET this test
# listens on (tests/dist_notify.py), never from the log: READY=1 when alone,
# RELOADING=1 and READY=1 around SIGHUP, WATCHDOG=1 at half of
# $WATCHDOG_USEC, STOPPING=1 on SIGTERM; READY=1 only once joined when it
# has seeds; no WATCHDOG=1 when $WATCHDOG_PID names another process; an
# abstract-namespace socket. Cleans up only the processes it started (by
# PID) and its own temporary directory.
set -u

. "$(dirname "$0")/lib.sh"

BIN=${1:?usage: test_dist.sh PATH/TO/livemesh SOURCE_DIR}
SRC=${2:?usage: test_dist.sh PATH/TO/livemesh SOURCE_DIR}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
SRC=$(cd "$SRC" && pwd)
DIST=$SRC/mesh/agent/dist
NOTIFY="python3 $SRC/tests/dist_notify.py"
lm_init dist
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID

# empty FILE DESC: FILE has nothing in it (warnings, errors)
empty() {
  if [ ! -s "$1" ]; then ok "$2"; else bad "$2:"; sed 's/^/     | /' "$1" | head -10; fi
}

echo "# the unit: systemd-analyze verify"
# verify wants ExecStart's binary to exist and the man pages named by
# Documentation= to open: it checks a copy of the unit whose ExecStart is
# this build's binary, with MANPATH on a copy of our man pages.
mkdir -p "$T/unit" "$T/man/man1" "$T/man/man5"
sed "s#^ExecStart=/usr/bin/livemesh #ExecStart=$BIN #" "$DIST/livemesh.service" \
  >"$T/unit/livemesh.service"
cp "$DIST/livemesh.1" "$T/man/man1/"
cp "$DIST/livemesh.json.5" "$T/man/man5/"
if grep -q "^ExecStart=$BIN agent --config /etc/livemesh/livemesh.json$" "$T/unit/livemesh.service"; then
  ok "the copy starts this build's binary with the packaged config"
else
  bad "ExecStart was not rewritten"; grep ExecStart "$T/unit/livemesh.service"
fi
if (cd "$T/unit" && MANPATH="$T/man" systemd-analyze verify ./livemesh.service) >"$T/verify.out" 2>&1; then
  ok "systemd-analyze verify passes"
else
  bad "systemd-analyze verify fails"
fi
sed 's/^/     | /' "$T/verify.out"
empty "$T/verify.out" "systemd-analyze verify says nothing (no warning)"
for kv in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure \
  User=livemesh StateDirectory=livemesh RuntimeDirectory=livemesh \
  ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6'; do
  if grep -qxF "$kv" "$DIST/livemesh.service"; then ok "unit: $kv"; else bad "unit lacks $kv"; fi
done
if grep -Eq '^WatchdogSec=[1-9][0-9]*s?$' "$DIST/livemesh.service"; then
  ok "unit: a WatchdogSec"
else bad "unit lacks WatchdogSec"; fi

echo "# the default config"
if "$BIN" agent --config "$DIST/livemesh.json" --print-config >"$T/cfg.json" 2>"$T/cfg.err"; then
  ok "the agent's loader accepts livemesh.json"
else
  bad "livemesh agent --config livemesh.json --print-config fails"; cat "$T/cfg.err"
fi
json "$T/cfg.json" 'j["data_dir"] == "/var/lib/livemesh" and j["socket"] == "/run/livemesh/livemesh.sock"' \
  "data in /var/lib/livemesh (StateDirectory), socket in /run/livemesh (RuntimeDirectory)"
json "$T/cfg.json" 'j["node_key"] == "/etc/livemesh/node.key" and j["node_cert"] == "/etc/livemesh/node.cert" and j["cluster_keys"] == ["/etc/livemesh/cluster.pub"]' \
  "keys under /etc/livemesh"

echo "# man pages"
for page in livemesh.1 livemesh.json.5; do
  if groff -man -Tutf8 -ww -z "$DIST/$page" 2>"$T/groff.err"; then
    empty "$T/groff.err" "$page: groff -man -ww gives no warning"
  else
    bad "$page: groff fails"; cat "$T/groff.err"
  fi
  if command -v man >/dev/null; then
    MANWIDTH=80 man --warnings -l "$DIST/$page" >"$T/man.out" 2>"$T/man.err"
    empty "$T/man.err" "$page: man -l --warnings gives no warning"
    [ -s "$T/man.out" ] && ok "$page: man -l renders it" || bad "$page: man -l renders nothing"
  fi
done
MANWIDTH=200 man -l "$DIST/livemesh.1" 2>/dev/null >"$T/man1.txt"
for c in agent members leave stats ping keygen services is-up watch register pass fail maint deregister demo; do
  if grep -Eq "^ +livemesh $c( |$)" "$T/man1.txt"; then ok "livemesh(1) has a section for $c"; else bad "livemesh(1) has no section for $c"; fi
done
# every flag of `livemesh agent --help`, and every key of the config file
for f in $("$BIN" agent --help | grep -Eo '^  --[a-z-]+'); do
  grep -q -- "$f" "$T/man1.txt" || bad "livemesh(1) does not mention $f"
done
ok "livemesh(1) names the agent's flags (checked one by one)"
MANWIDTH=200 man -l "$DIST/livemesh.json.5" 2>/dev/null >"$T/man5.txt"
for k in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))))' "$T/cfg.json"); do
  grep -Eq "^ +$k \(" "$T/man5.txt" || bad "livemesh.json(5) does not describe the key $k"
done
ok "livemesh.json(5) describes every key of --print-config (checked one by one)"

echo "# bash completion"
# comp WORDS...: the completions bash would offer for the last word
comp() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _livemesh; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$DIST/livemesh.bash-completion" "$@" 2>&1
}
mkdir -p "$T/comp"
touch "$T/comp/agent.json" "$T/comp/other.txt"
mkdir -p "$T/comp/keys"
check_comp() { # EXPECTED DESC -- WORDS...
  local want=$1 desc=$2
  shift 3
  local got
  got=$(cd "$T/comp" && comp "$@" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
  if [ "$got" = "$want" ]; then ok "completion: $desc"; else bad "completion: $desc: got '$got', wanted '$want'"; fi
}
check_comp "demo deregister" "subcommands" -- livemesh de
check_comp "is-up" "is-up" -- livemesh is
check_comp "--config" "agent flags" -- livemesh agent --con
check_comp "agent.json" "files for --config" -- livemesh agent --config ag
check_comp "agent.json keys other.txt" "files for --node-key" -- livemesh agent --node-key ""
check_comp "keys" "directories for --data-dir" -- livemesh agent --data-dir ""
check_comp "json table" "-o table|json" -- livemesh members -o ""
check_comp "json table" "-o for services" -- livemesh services --status up -o ""
check_comp "cluster node secret" "keygen kinds" -- livemesh keygen ""
check_comp "--cluster-key --force --help --name --out --valid-days" "keygen node flags" -- livemesh keygen node --
check_comp "--members" "watch flags" -- livemesh watch --mem
check_comp "debug" "log levels" -- livemesh agent --log-level d
check_comp "" "nothing for a free value (--type)" -- livemesh register --type ""

echo "# systemd notifications"
"$BIN" keygen cluster --out "$T/keys" >/dev/null
for n in n1 n2 n3; do
  "$BIN" keygen node --cluster-key "$T/keys/cluster.key" --name $n --out "$T/$n" >/dev/null
done
# listen SOCK OUT: a notification socket, PID in $LPID
listen() {
  $NOTIFY listen "$1" "$2" &
  LPID=$!
  PIDS+=("$LPID")
  for _ in $(seq 100); do [ -e "$2.bound" ] && return 0; sleep 0.05; done
  bad "the notification listener did not start"
}
# start NAME [FLAGS...]: an agent on 127.0.0.1:0 (env from the caller),
# PID in $APID
start() {
  local name=$1
  shift
  start_agent "$name" "$T/$name/data" "$T/$name.sock" "$@"
}

WD_USEC=1000000
listen "$T/notify1" "$T/n1.dgrams"
NOTIFY_SOCKET=$T/notify1 WATCHDOG_USEC=$WD_USEC start n1
A1=$APID
if $NOTIFY wait "$T/n1.dgrams" READY=1 1 10; then ok "alone: READY=1"; else bad "alone: no READY=1"; fi
sleep 1.2
kill -HUP "$A1"
if $NOTIFY wait "$T/n1.dgrams" READY=1 2 10; then ok "SIGHUP: READY=1 again"; else bad "SIGHUP: no second READY=1"; fi
sleep 1.5
stop "$A1"
[ "$RC" -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $RC"
if $NOTIFY wait "$T/n1.dgrams" STOPPING=1 1 5; then ok "SIGTERM: STOPPING=1"; else bad "SIGTERM: no STOPPING=1"; fi
kill -TERM "$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null
if $NOTIFY check-run "$T/n1.dgrams" "$WD_USEC" >"$T/check.out"; then
  cat "$T/check.out"; ok "the datagrams of the run (above)"
else
  cat "$T/check.out"; bad "the datagrams of the run (above)"
fi

# a mesh: n2 alone; n3 joins it through an abstract-namespace socket, and
# its watchdog variables name another process
listen "$T/notify2" "$T/n2.dgrams"
L2=$LPID
NOTIFY_SOCKET=$T/notify2 start n2
A2=$APID
$NOTIFY wait "$T/n2.dgrams" READY=1 1 10 || bad "n2: no READY=1"
for _ in $(seq 50); do "$BIN" ping --socket "$T/n2.sock" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" members -o json --socket "$T/n2.sock" >"$T/m2.json" 2>/dev/null
ADDR2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["addr"])' "$T/m2.json" 2>/dev/null)
ABS="@lm-dist-test-$$"
listen "$ABS" "$T/n3.dgrams"
L3=$LPID
NOTIFY_SOCKET=$ABS WATCHDOG_USEC=200000 WATCHDOG_PID=1 start n3 --join "$ADDR2"
A3=$APID
if $NOTIFY wait "$T/n3.dgrams" READY=1 1 10; then
  ok "joining (abstract socket $ABS): READY=1 once joined"
else bad "joining: no READY=1 on $ABS"; fi
python3 - "$T/n3.dgrams" >"$T/n3.check" 2>&1 <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
first = recs[0]["fields"] if recs else {}
ready = next(r["fields"] for r in recs if r["fields"].get("READY") == "1")
ok = "READY" not in first and first.get("STATUS") and "n2" in ready.get("STATUS", "")
print(first, ready)
sys.exit(0 if ok else 1)
EOF
if [ $? -eq 0 ]; then ok "joining: a STATUS first, READY=1 after, naming the peer n2"; else bad "joining: $(cat "$T/n3.check")"; fi
sleep 0.6
n=$($NOTIFY count "$T/n3.dgrams" WATCHDOG=1)
[ "$n" = 0 ] && ok "WATCHDOG_PID of another process: no WATCHDOG=1" || bad "WATCHDOG_PID=1: $n WATCHDOG=1 sent"
stop "$A3"
[ "$RC" -eq 0 ] && ok "n3: exit 0 on SIGTERM" || bad "n3: exit $RC"
$NOTIFY wait "$T/n3.dgrams" STOPPING=1 1 5 && ok "n3: STOPPING=1" || bad "n3: no STOPPING=1"
stop "$A2"
[ "$RC" -eq 0 ] && ok "n2: exit 0 on SIGTERM" || bad "n2: exit $RC"
kill -TERM "$L2" "$L3" 2>/dev/null; wait "$L2" "$L3" 2>/dev/null

summary
