#!/usr/bin/env bash
# test_probes.sh LIVEMESH: the agent's probes and metrics through the real
# binary and its control socket, one lone agent on 127.0.0.1: `livemesh
# ready` (0 ready; a failing TTL service makes it 1 and the JSON names the
# service; maintenance passes; pass makes it 0 again), `livemesh live` (0;
# a SIGSTOPped agent does not answer in time: 1; after SIGCONT the stall
# is reported, then 0 again), 2 with no agent; the `environ`, `ready` and
# `live` rows of the control socket; and `livemesh metrics`, with a TTL
# service, exec and http check runs and dropped datagrams so that the
# labelled families have samples, checked by `promtool check metrics`
# (Debian's prometheus package). Without promtool everything else runs and
# the test exits 77 (skipped). Outcomes are read from JSON and exit
# statuses, never from log wording.
set -u

. "$(dirname "$0")/lib.sh"

BIN=${1:?usage: test_probes.sh PATH/TO/livemesh}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
lm_init probes

# until_exit CODE SECONDS CMD...: retries CMD until it exits CODE; 0 if it did
until_exit() {
  local want=$1 secs=$2
  shift 2
  local end=$((SECONDS + secs))
  while :; do
    "$@" >"$T/out" 2>"$T/err"
    [ $? -eq "$want" ] && return 0
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}

SOCK=$T/agent.sock
S=(--socket "$SOCK")
L=$T/agent.log

"$BIN" keygen cluster --out "$T/keys" >/dev/null
"$BIN" keygen node --cluster-key "$T/keys/cluster.key" --name n1 --out "$T/n1" >/dev/null

echo "# no agent"
expect 2 "ready with no agent" -- "$BIN" ready "${S[@]}"
has "$T/err" 'no agent at' "says there is no agent"
expect 2 "live with no agent" -- "$BIN" live "${S[@]}"
expect 2 "metrics with no agent" -- "$BIN" metrics "${S[@]}"
expect 2 "ready with a bad flag" -- "$BIN" ready --bogus
expect 2 "live with a bad timeout" -- "$BIN" live --timeout soon
expect 0 "ready --help" -- "$BIN" ready --help
has "$T/out" 'Exit status: 0 ready, 1 not ready' "the usage gives the exit statuses"

"$BIN" agent --data-dir "$T/data" --node-key "$T/n1/node.key" \
  --cluster-key "$T/keys/cluster.pub" --bind 127.0.0.1:0 --socket "$SOCK" \
  --allow-exec-checks 2>>"$L" &
APID=$!
PIDS+=("$APID")
wait_ping "$SOCK"

echo "# a lone agent"
expect 0 "ready: a lone agent is ready" -- "$BIN" ready "${S[@]}"
has "$T/out" '^ready$' "says ready"
has "$T/out" '^\[\+\]services ok$' "lists the checks"
expect 0 "ready -o json" -- "$BIN" ready "${S[@]}" -o json
json "$T/out" 'j["ready"] is True and list(j["checks"]) == ["joined","converged","services","loop"] and all(isinstance(c["status"], bool) and isinstance(c["detail"], str) for c in j["checks"].values())' "the four checks, each with a status and a detail"
json "$T/out" 'j["checks"]["joined"]["alone"] is True and j["checks"]["joined"]["seeds"] == 0' "alone by configuration (no --join)"
expect 0 "live" -- "$BIN" live "${S[@]}"
has "$T/out" '^live$' "says live"
expect 0 "live -o json" -- "$BIN" live "${S[@]}" -o json
json "$T/out" 'j["live"] is True and list(j["checks"]) == ["loop"] and j["checks"]["loop"]["lag_bound_ms"] == 1000 and j["checks"]["loop"]["since_tick_ms"] < 2000' "live: the loop check"

echo "# the control socket rows"
sock_req '{"cmd":"environ","id":1}'
json "$T/out" 'j["ok"] is True and j["id"] == 1 and {"livemesh","libuv","libsodium","msgpack-c","jansson"} <= set(j["libraries"]) and all(isinstance(v["version"], str) and v["version"] for v in j["libraries"].values())' "environ: every library with its version"
# libcurl is loaded by the first http check, not before (mesh/checks/curl_dl.h)
json "$T/out" '"libcurl" not in j["libraries"]' "environ: no libcurl before an http check"
if grep -q 'libcurl\.so' "/proc/$APID/maps"; then bad "the agent maps libcurl with no http check"
else ok "the agent does not map libcurl with no http check"; fi
sock_req '{"cmd":"ready"}'
json "$T/out" 'j["ok"] is True and j["ready"] is True and set(j["checks"]) == {"joined","converged","services","loop"}' "the ready row"
sock_req '{"cmd":"live"}'
json "$T/out" 'j["ok"] is True and j["live"] is True' "the live row"
sock_req '{"cmd":"metrics"}'
json "$T/out" 'j["ok"] is True and "# TYPE livemesh_members gauge" in j["text"]' "the metrics row"

echo "# a failing service makes the agent unready"
expect 0 "register a TTL service" -- "$BIN" register "${S[@]}" --type api --name api-1 --ttl 30s
API=$(cat "$T/out")
expect 0 "ready with the service up" -- "$BIN" ready "${S[@]}"
expect 0 "fail the service" -- "$BIN" fail "${S[@]}" "$API" --note "disk full"
expect 1 "ready with the service down" -- "$BIN" ready "${S[@]}" -o json
json "$T/out" 'j["ready"] is False and j["checks"]["services"]["status"] is False and [f["uuid"] for f in j["checks"]["services"]["failing"]] == ["'"$API"'"] and j["checks"]["services"]["failing"][0]["type"] == "api" and "'"$API"'" in j["checks"]["services"]["detail"]' "the JSON names the failing service"
json "$T/out" 'all(j["checks"][k]["status"] for k in ("joined","converged","loop"))' "the other checks still pass"
expect 1 "ready (text) with the service down" -- "$BIN" ready "${S[@]}"
has "$T/out" "^\[-\]services failed: 1 of 1 local service\(s\) down: api/api-1 \($API\)" "the text names it too"
has "$T/out" '^not ready$' "says not ready"
expect 0 "live is not about services" -- "$BIN" live "${S[@]}"
expect 0 "maintenance" -- "$BIN" maint "${S[@]}" "$API" --for 10m
expect 0 "ready: a service in maintenance passes" -- "$BIN" ready "${S[@]}"
expect 0 "maintenance off" -- "$BIN" maint "${S[@]}" "$API" --off
expect 1 "down again without maintenance" -- "$BIN" ready "${S[@]}"
expect 0 "pass the service" -- "$BIN" pass "${S[@]}" "$API"
expect 0 "ready again" -- "$BIN" ready "${S[@]}" -o json
json "$T/out" 'j["ready"] is True and j["checks"]["services"]["up"] == 1 and j["checks"]["services"]["failing"] == []' "the service counts as up"

echo "# a stopped agent is not live"
kill -STOP "$APID"
sleep 0.5
START=$SECONDS
expect 1 "live on a stopped agent" -- "$BIN" live "${S[@]}" --timeout 1s
has "$T/err" 'did not answer within 1000 ms' "says the agent did not answer"
expect 1 "ready on a stopped agent" -- "$BIN" ready "${S[@]}" --timeout 500ms
if [ $((SECONDS - START)) -le 4 ]; then ok "the timeouts were kept"; else bad "live and ready took $((SECONDS - START)) s"; fi
sleep 1
kill -CONT "$APID"
expect 1 "live right after SIGCONT: the stall is reported" -- "$BIN" live "${S[@]}" -o json
json "$T/out" 'j["live"] is False and j["checks"]["loop"]["status"] is False and (j["checks"]["loop"]["lag_max_ms"] >= 1000 or j["checks"]["loop"]["since_tick_ms"] >= 2000)' "the loop check says how late it ran"
if until_exit 0 10 "$BIN" live "${S[@]}"; then ok "live again within the window after SIGCONT"; else
  bad "not live 10 s after SIGCONT"; cat "$T/out" "$T/err"; fi
expect 0 "ready again after SIGCONT" -- "$BIN" ready "${S[@]}"

echo "# metrics"
# an exec check that passes and an http check that fails, so check runs
# of both kinds and results are counted
expect 0 "register an exec-checked service" -- "$BIN" register "${S[@]}" --type job --exec-check true --interval 1s --timeout 500ms
expect 0 "register an http-checked service" -- "$BIN" register "${S[@]}" --type web --http-check http://127.0.0.1:1/health --interval 1s --timeout 500ms
if grep -q 'libcurl\.so' "/proc/$APID/maps"; then ok "the http check has loaded libcurl"
else bad "libcurl is not mapped after an http check"; fi
sock_req '{"cmd":"environ"}'
json "$T/out" 'isinstance(j["libraries"]["libcurl"]["version"], str) and j["libraries"]["libcurl"]["version"][0].isdigit()' "environ: libcurl's version once loaded"
# datagrams that are not livemesh's: dropped and counted by reason
"$BIN" members "${S[@]}" -o json >"$T/members.json"
ADDR=$(python3 -c 'import json,sys; print([m["addr"] for m in json.load(open(sys.argv[1])) if m["name"] == "n1"][0])' "$T/members.json")
python3 - "$ADDR" <<'EOF'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    s.sendto(b"\x00garbage" * (i + 1), (host, int(port)))
EOF
wait_runs() {
  "$BIN" stats "${S[@]}" -o json >"$T/stats.json" 2>/dev/null &&
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["check_runs"]["exec"]["ok"] >= 1 and j["check_runs"]["http"]["fail"] >= 1 and j["dropped_total"] >= 1 else 1)' "$T/stats.json"
}
for _ in $(seq 50); do wait_runs && break; sleep 0.2; done
json "$T/stats.json" 'j["check_runs"]["exec"]["ok"] >= 1 and j["check_runs"]["http"]["fail"] >= 1 and j["dropped_total"] >= 1' "exec and http runs and drops counted"
expect 0 "livemesh metrics" -- "$BIN" metrics "${S[@]}"
cp "$T/out" "$T/metrics.txt"
has "$T/metrics.txt" '^livemesh_members\{status="alive"\} 1$' "members by status"
has "$T/metrics.txt" '^livemesh_members\{status="dead"\} 0$' "every member status, 0 when none"
has "$T/metrics.txt" '^livemesh_services\{status="up"\} [1-9]' "services up"
has "$T/metrics.txt" '^livemesh_services\{status="maintenance"\} 0$' "every service status"
has "$T/metrics.txt" '^livemesh_dropped_total\{reason="[a-z_0-9]+"\} [1-9]' "drops by reason"
has "$T/metrics.txt" '^livemesh_check_runs_total\{kind="exec",result="ok"\} [1-9]' "exec runs that passed"
has "$T/metrics.txt" '^livemesh_check_runs_total\{kind="http",result="fail"\} [1-9]' "http runs that failed"
has "$T/metrics.txt" '^livemesh_check_runs_total\{kind="ttl",result="timeout"\} 0$' "every kind and result"
has "$T/metrics.txt" '^livemesh_udp_packets_received_total [1-9]' "udp received"
for f in livemesh_udp_packets_sent_total livemesh_udp_bytes_sent_total livemesh_probes_total livemesh_suspicions_total livemesh_refutations_total livemesh_local_health; do
  has "$T/metrics.txt" "^# TYPE $f (counter|gauge)$" "$f declared"
done
has "$T/metrics.txt" '^livemesh_build_info\{version="[0-9.]+",name="n1"\} 1$' "build info"
has "$T/metrics.txt" '^livemesh_ready 0$' "the http service is down: not ready, in the metrics too"
SKIP=0
if command -v promtool >/dev/null 2>&1; then
  if promtool check metrics <"$T/metrics.txt" >"$T/prom" 2>&1; then
    ok "promtool check metrics: no problem"; else
    bad "promtool check metrics"; sed 's/^/     | /' "$T/prom"; fi
else
  echo "skip promtool check metrics: promtool not installed (Debian package prometheus; scripts/setup.sh installs it)"
  SKIP=1
fi

echo "# the agent gone"
kill -TERM "$APID"
wait "$APID"
expect 2 "live with the agent gone" -- "$BIN" live "${S[@]}"

summary || exit 1
[ "$SKIP" -eq 0 ] || exit 77
exit 0
