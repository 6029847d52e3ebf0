#!/usr/bin/env bash
# test_cli_services.sh LIVEMESH: the service commands of the `livemesh`
# binary against one real agent on 127.0.0.1 (restarted twice with the same
# data directory): register, services (JSON fields, table, filters), is-up
# (exit codes, JSON), pass/fail on a TTL service, maintenance that ends by
# itself and --off, deregister, watch (initial state, then transitions with
# consecutive seq), ephemeral registrations, registrations and maintenance
# that survive a restart, services declared in the config file (and
# re-synced on SIGHUP), and every refusal: each names the problem, exits
# non-zero and leaves the services as they were. Outcomes are read from
# JSON (python3) and exit statuses, never from log wording alone.
set -u

. "$(dirname "$0")/lib.sh"

BIN=${1:?usage: test_cli_services.sh PATH/TO/livemesh}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
lm_init svc

SOCK=$T/agent.sock
S=(--socket "$SOCK")
L=$T/agent.log

# start_agent [FLAGS...]: the one agent (n1, $SOCK, $T/agent.json, log in
# $L), this script's own: PID in $APID; 1 and a failed check if it does not
# answer within 5 s
start_agent() {
  "$BIN" agent --data-dir "$T/data" --node-key "$T/n1/node.key" \
    --cluster-key "$T/keys/cluster.pub" --bind 127.0.0.1:0 --socket "$SOCK" \
    --config "$T/agent.json" "$@" 2>>"$L" &
  APID=$!
  PIDS+=("$APID")
  wait_ping "$SOCK" && return 0
  bad "the agent did not answer within 5 s"; tail -5 "$L"
  return 1
}
stop_agent() { stop "$APID"; }
# snapshot FILE: the services as (uuid, type, name, status) lines, sorted
snapshot() {
  "$BIN" services "${S[@]}" -o json | python3 -c '
import json,sys
for s in sorted(json.load(sys.stdin), key=lambda s: s["uuid"]):
    print(s["uuid"], s["type"], s["name"], s["status"])' >"$1"
}
# unchanged DESC: the services are what they were at the last snapshot
unchanged() {
  snapshot "$T/snap.after"
  if cmp -s "$T/snap.before" "$T/snap.after"; then ok "$1: services unchanged"; else
    bad "$1: services changed"; diff "$T/snap.before" "$T/snap.after" | sed 's/^/     | /'
  fi
}

echo "# keys and the config file"
"$BIN" keygen cluster --out "$T/keys" >/dev/null
expect 0 "keygen node without --name" -- "$BIN" keygen node --cluster-key "$T/keys/cluster.key" --out "$T/host"
has "$T/out" "certificate for \"$(hostname)\"" "keygen node names the node after the host by default"
"$BIN" keygen node --cluster-key "$T/keys/cluster.key" --name n1 --out "$T/n1" >/dev/null

cat >"$T/agent.json" <<'EOF'
{"services": [{"type": "cache", "name": "c1"},
              {"type": "api", "ttl": 0}]}
EOF
expect 2 "a bad declared service" -- "$BIN" agent --config "$T/agent.json" --print-config
has "$T/err" 'services\[1\]\.ttl: must be longer than 0' "the error names the entry and the field"
cat >"$T/agent.json" <<'EOF'
{"services": [{"type": "cache", "name": "c1"}, {"type": "cache", "name": "c2", "worker": 1}]}
EOF
expect 0 "--print-config with services" -- "$BIN" agent --config "$T/agent.json" --print-config
json "$T/out" 'len(j["services"]) == 2 and j["allow_exec_checks"] is False and j["max_concurrent_checks"] == 16' "print-config shows services and the check settings"
expect 2 "--max-concurrent-checks 0" -- "$BIN" agent --max-concurrent-checks 0 --print-config
has "$T/err" 'max-concurrent-checks' "the bad value is named"
LIVEMESH_ALLOW_EXEC_CHECKS=1 "$BIN" agent --print-config >"$T/out" 2>"$T/err"
json "$T/out" 'j["allow_exec_checks"] is True' "LIVEMESH_ALLOW_EXEC_CHECKS=1 allows exec checks"

cat >"$T/dup.json" <<'EOF'
{"services": [{"type": "cache", "name": "c1"}, {"type": "cache", "name": "c1"}]}
EOF
expect 2 "two declared services with one identity" -- "$BIN" agent --data-dir "$T/dupdata" --node-key "$T/n1/node.key" --cluster-key "$T/keys/cluster.pub" --bind 127.0.0.1:0 --socket "$T/dup.sock" --config "$T/dup.json"
has "$T/err" 'services\[1\]: the same service as services\[0\]' "names both entries"

echo "# no agent"
expect 2 "services with no agent" -- "$BIN" services "${S[@]}"
has "$T/err" 'no agent at' "says there is no agent"
expect 2 "is-up with no agent" -- "$BIN" is-up api n1 "${S[@]}"

start_agent || exit 1

echo "# register"
expect 0 "register a TTL service" -- "$BIN" register "${S[@]}" --type api --name api-1 --worker 0 --region eu-1 --port 8080 --tag blue --meta version=1.4 --ttl 10m
if [ "$(wc -l <"$T/out")" -eq 1 ] && grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' "$T/out"; then
  ok "register prints the uuid alone"; else bad "register printed: $(cat "$T/out")"; fi
API=$(cat "$T/out")
expect 0 "register a process-checked service" -- "$BIN" register "${S[@]}" --type web --name web-1 --pid $$ --region us-1
WEB=$(cat "$T/out")

echo "# services"
expect 0 "services -o json" -- "$BIN" services "${S[@]}" -o json
json "$T/out" 'len(j) == 4' "four services: two registered, two declared"
json "$T/out" '[s for s in j if s["uuid"] == "'"$API"'"][0].keys() >= {"uuid","type","name","host","region","worker","pid","port","status","member_status","created_at","since","tags","meta","checks","stale"}' "a service has every field of INTERFACES.md"
json "$T/out" 'all(isinstance(s["uuid"], str) and isinstance(s["tags"], list) and isinstance(s["meta"], dict) and isinstance(s["checks"], list) and isinstance(s["stale"], bool) and s["status"] in ("up","down","maintenance") and s["created_at"].endswith("Z") and s["since"].endswith("Z") for s in j)' "the fields have their types"
json "$T/out" '[(s["type"], s["name"], s["host"], s["region"], s["worker"], s["pid"], s["port"], s["tags"], s["meta"], s["checks"][0]["kind"], s["stale"]) for s in j if s["uuid"] == "'"$API"'"] == [("api", "api-1", "n1", "eu-1", 0, None, 8080, ["blue"], {"version": "1.4"}, "ttl", False)]' "the TTL service as registered"
json "$T/out" '[(s["pid"], s["checks"][0]["kind"], s["status"]) for s in j if s["uuid"] == "'"$WEB"'"] == [('$$', "process", "up")]' "--pid alone is a process check, up while the process runs"
json "$T/out" 'sorted(s["name"] for s in j if s["type"] == "cache") == ["c1", "c2"]' "the config file's services are registered"
expect 0 "services table" -- "$BIN" services "${S[@]}"
has "$T/out" '^NAME +TYPE +WORKER +PID +HOST +STATUS +CREATED AT$' "the table's header"
has "$T/out" '^api-1 +api +0 +- +n1 +up ' "the table's row"
has "$T/err" '^4 service\(s\): ' "the count on stderr"
expect 0 "services --type api" -- "$BIN" services "${S[@]}" --type api -o json
json "$T/out" '[s["uuid"] for s in j] == ["'"$API"'"]' "--type filters"
expect 0 "services --host n1" -- "$BIN" services "${S[@]}" --host n1 -o json
json "$T/out" 'len(j) == 4' "--host n1: all four"
expect 0 "services --host elsewhere" -- "$BIN" services "${S[@]}" --host elsewhere -o json
json "$T/out" 'j == []' "--host elsewhere: none"
expect 0 "services --region us-1" -- "$BIN" services "${S[@]}" --region us-1 -o json
json "$T/out" '[s["uuid"] for s in j] == ["'"$WEB"'"]' "--region filters"
expect 0 "services --status up" -- "$BIN" services "${S[@]}" --status up -o json
json "$T/out" 'len(j) == 4 and all(s["status"] == "up" for s in j)' "--status up"
expect 0 "services --status maintenance" -- "$BIN" services "${S[@]}" --status maintenance -o json
json "$T/out" 'j == []' "--status maintenance: none yet"
expect 2 "services --status bogus" -- "$BIN" services "${S[@]}" --status bogus
has "$T/err" '--status: expected up, down or maintenance' "names --status"

echo "# members and stats"
expect 0 "members -o json" -- "$BIN" members "${S[@]}" -o json
json "$T/out" '[m["services"] for m in j if m["name"] == "n1"] == [4]' "members counts the services"
expect 0 "stats -o json" -- "$BIN" stats "${S[@]}" -o json
json "$T/out" 'j["services_local"] == 4 and j["services"] == 4 and j["services_by_status"]["up"] == 4 and "svc_lists_sent" in j and "svc_requests_sent" in j and j["check_runs"]["ttl"]["ok"] >= 0 and set(j["check_runs"]) == {"ttl","process","http","tcp","exec"}' "stats has the services counters"
expect 0 "stats table" -- "$BIN" stats "${S[@]}"
has "$T/out" '^services_local +4' "the table shows the services"

echo "# is-up"
expect 0 "is-up api n1" -- "$BIN" is-up "${S[@]}" api n1
has "$T/out" '^up: api on n1 is up' "says up"
expect 1 "is-up of an unknown service" -- "$BIN" is-up "${S[@]}" api elsewhere
has "$T/out" '^unknown' "says unknown"
expect 0 "is-up --uuid" -- "$BIN" is-up "${S[@]}" --uuid "$API"
expect 0 "is-up -o json" -- "$BIN" is-up "${S[@]}" api n1 -o json
json "$T/out" 'set(j) == {"up","status","member_status","uuid","type","host","age_ms","stale"} and j["up"] is True and j["status"] == "up" and j["member_status"] == "alive" and j["uuid"] == "'"$API"'" and j["type"] == "api" and j["host"] == "n1" and isinstance(j["age_ms"], int) and j["stale"] is False' "is-up -o json has exactly its fields"
expect 1 "is-up -o json, unknown" -- "$BIN" is-up "${S[@]}" nosuch n1 -o json
json "$T/out" 'j["up"] is False and j["status"] == "unknown" and j["uuid"] is None and j["age_ms"] is None and j["type"] == "nosuch"' "unknown: status unknown, uuid null"
expect 2 "is-up without HOST" -- "$BIN" is-up "${S[@]}" api

echo "# pass, fail, maintenance, watch"
"$BIN" watch "${S[@]}" --uuid "$API" >"$T/watch.out" 2>"$T/watch.err" &
WPID=$!
PIDS+=("$WPID")
sleep 0.5
expect 0 "pass --note" -- "$BIN" pass "${S[@]}" "$API" --note "queue 3"
expect 0 "services after pass" -- "$BIN" services "${S[@]}" --type api -o json
json "$T/out" 'j[0]["checks"][0]["output"] == "queue 3" and j[0]["status"] == "up"' "the note is the check's output"
expect 0 "fail" -- "$BIN" fail "${S[@]}" "$API" --note "db unreachable"
expect 1 "is-up after fail" -- "$BIN" is-up "${S[@]}" api n1
has "$T/out" '^down: ' "says down"
expect 0 "pass again" -- "$BIN" pass "${S[@]}" "$API"
expect 0 "is-up after pass" -- "$BIN" is-up "${S[@]}" api n1
expect 1 "pass on a service without a TTL" -- "$BIN" pass "${S[@]}" "$WEB"
has "$T/err" 'no TTL check' "says it has no TTL"
# 8 s: long enough that a loaded machine still reads the service in
# maintenance before the window ends, short enough to wait for the end
expect 0 "maint --for 8s" -- "$BIN" maint "${S[@]}" "$API" --for 8s --note upgrade
expect 1 "is-up in maintenance" -- "$BIN" is-up "${S[@]}" api n1 -o json
json "$T/out" 'j["status"] == "maintenance" and j["up"] is False' "maintenance is down"
expect 0 "services --status maintenance" -- "$BIN" services "${S[@]}" --status maintenance -o json
json "$T/out" '[s["uuid"] for s in j] == ["'"$API"'"] and j[0]["note"] == "upgrade" and j[0]["maint_until"] is not None' "in maintenance, with its note and end"
up_again=0
for _ in $(seq 200); do
  "$BIN" is-up "${S[@]}" -q api n1 && { up_again=1; break; }
  sleep 0.1
done
[ $up_again = 1 ] && ok "maintenance ends by itself" || bad "still not up 20 s after maint --for 8s"
expect 0 "maint --for 1h" -- "$BIN" maint "${S[@]}" "$API" --for 1h
expect 1 "is-up in maintenance again" -- "$BIN" is-up "${S[@]}" -q api n1
expect 0 "maint --off" -- "$BIN" maint "${S[@]}" "$API" --off
expect 0 "is-up after --off" -- "$BIN" is-up "${S[@]}" -q api n1
expect 2 "maint without --for or --off" -- "$BIN" maint "${S[@]}" "$API"
sleep 0.3
kill -TERM "$WPID" 2>/dev/null
wait "$WPID"
python3 - "$T/watch.out" >"$T/watch.check" 2>&1 <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines, "no lines"
assert lines[0].get("initial") is True and lines[0]["old"] == "unknown" and lines[0]["new"] == "up", lines[0]
assert all("initial" not in l for l in lines[1:]), "initial on a later line"
assert [l["seq"] for l in lines] == list(range(1, len(lines) + 1)), [l["seq"] for l in lines]
moves = [(l["old"], l["new"]) for l in lines[1:]]
want = [("up", "down"), ("down", "up"), ("up", "maintenance"), ("maintenance", "up"),
        ("up", "maintenance"), ("maintenance", "up")]
assert moves == want, moves
assert all(l["kind"] == "service" and l["type"] == "api" and l["host"] == "n1" and l["at"].endswith("Z") for l in lines)
print("ok")
EOF
if grep -q '^ok$' "$T/watch.check"; then ok "watch: the initial line, then each transition with consecutive seq"; else
  bad "watch lines:"; sed 's/^/     | /' "$T/watch.check" "$T/watch.out" | head -20; fi

echo "# ephemeral"
"$BIN" register "${S[@]}" --ephemeral --type eph --name e1 </dev/null >"$T/eph.out" 2>"$T/eph.err" &
EPID=$!
PIDS+=("$EPID")
for _ in $(seq 50); do [ -s "$T/eph.out" ] && break; sleep 0.1; done
EPH=$(cat "$T/eph.out")
expect 0 "the ephemeral service is up" -- "$BIN" is-up "${S[@]}" --uuid "$EPH"

echo "# refusals change nothing"
snapshot "$T/snap.before"
expect 2 "register with an unknown flag" -- "$BIN" register "${S[@]}" --type x --colour red
has "$T/err" 'unknown flag --colour' "names the flag"
sock_req '{"cmd":"register","type":"x","colour":"red"}'
json "$T/out" 'j["ok"] is False and j["code"] == "invalid" and "unknown field \"colour\"" in j["error"]' "the socket refuses an unknown field, naming it"
sock_req '{"cmd":"register","type":"x","meta":{"k":"'"$(printf 'v%.0s' $(seq 300))"'"}}'
json "$T/out" 'j["ok"] is False and j["code"] == "invalid" and "meta" in j["error"] and "256" in j["error"]' "the socket refuses an oversize meta value"
sock_req '{"cmd":"pass"}'
json "$T/out" 'j["ok"] is False and j["code"] == "invalid" and "uuid" in j["error"]' "pass without a uuid is refused, naming the field"
sock_req '{"cmd":"fly"}'
json "$T/out" 'j["ok"] is False and "register" in j["error"] and "deregister" in j["error"]' "an unknown command lists the service commands"
expect 2 "oversize --meta" -- "$BIN" register "${S[@]}" --type x --meta "k=$(printf 'v%.0s' $(seq 300))"
has "$T/err" '--meta: .*at most 256' "names --meta and the limit"
TAGS=()
for i in $(seq 17); do TAGS+=(--tag "t$i"); done
expect 2 "17 tags" -- "$BIN" register "${S[@]}" --type x "${TAGS[@]}"
has "$T/err" '--tag: 17 tags, at most 16' "names --tag and the limit"
expect 2 "--ttl 0" -- "$BIN" register "${S[@]}" --type x --ttl 0
has "$T/err" '--ttl: must be longer than 0' "names --ttl"
expect 2 "a bad --http-check URL" -- "$BIN" register "${S[@]}" --type x --http-check ftp://example.com/
has "$T/err" '--http-check: expected an http:// or https:// URL' "names --http-check"
expect 2 "a bad --tcp-check address" -- "$BIN" register "${S[@]}" --type x --tcp-check nohost
has "$T/err" '--tcp-check: expected HOST:PORT' "names --tcp-check"
expect 1 "--exec-check without --allow-exec-checks" -- "$BIN" register "${S[@]}" --type x --exec-check true
has "$T/err" 'exec checks are not allowed on this agent .*--allow-exec-checks' "says how to allow them"
NOPE=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0
for c in pass fail deregister; do
  expect 1 "$c of an unknown uuid" -- "$BIN" $c "${S[@]}" $NOPE
  has "$T/err" "unknown uuid $NOPE" "$c names the uuid"
done
expect 1 "maint of an unknown uuid" -- "$BIN" maint "${S[@]}" $NOPE --for 1m
has "$T/err" "unknown uuid $NOPE" "maint names the uuid"
expect 2 "pass of a malformed uuid" -- "$BIN" pass "${S[@]}" not-a-uuid
has "$T/err" 'expected a service UUID' "says what a uuid looks like"
expect 1 "register --uuid of a service held by another connection" -- "$BIN" register "${S[@]}" --type eph --uuid "$EPH"
has "$T/err" "$EPH is already registered, as an ephemeral service" "names the duplicate uuid"
unchanged "after the refusals"
expect 0 "register --uuid of a kept service replaces it" -- "$BIN" register "${S[@]}" --type web --name web-1b --pid $$ --region us-1 --uuid "$WEB"
expect 0 "services after the replacement" -- "$BIN" services "${S[@]}" --region us-1 -o json
json "$T/out" '[(s["uuid"], s["name"]) for s in j] == [("'"$WEB"'", "web-1b")]' "same uuid, new name"

kill -TERM "$EPID"
wait "$EPID"
ERC=$?
[ $ERC -eq 0 ] && ok "the ephemeral holder exits 0 on SIGTERM" || bad "the ephemeral holder exited $ERC"
gone=0
for _ in $(seq 30); do
  "$BIN" is-up "${S[@]}" -q --uuid "$EPH"
  [ $? -eq 1 ] && "$BIN" services "${S[@]}" --type eph -o json | grep -q '^\[\]$' && { gone=1; break; }
  sleep 0.1
done
[ $gone = 1 ] && ok "the ephemeral service is gone with its connection" || bad "the ephemeral service outlived its connection"

echo "# restart: registrations and maintenance are kept"
expect 0 "maint --for 1h before the restart" -- "$BIN" maint "${S[@]}" "$API" --for 1h --note "kept"
"$BIN" services "${S[@]}" -o json >"$T/before.json"
stop_agent
json "$T/data/services.json" 'j["version"] == 1 and j["node"] == "n1" and sorted(s["uuid"] for s in j["services"]) == sorted(["'"$API"'", "'"$WEB"'"]) and len(j["declared"]) == 2' "services.json holds the kept registrations"
start_agent || exit 1
"$BIN" services "${S[@]}" -o json >"$T/after.json"
python3 - "$T/before.json" "$T/after.json" >"$T/restart.check" 2>&1 <<EOF
import json, sys
b = {s["uuid"]: s for s in json.load(open(sys.argv[1]))}
a = {s["uuid"]: s for s in json.load(open(sys.argv[2]))}
assert set(a) == set(b), (sorted(a), sorted(b))
for u in a:
    assert a[u]["created_at"] == b[u]["created_at"], (u, a[u]["created_at"], b[u]["created_at"])
    assert (a[u]["type"], a[u]["name"]) == (b[u]["type"], b[u]["name"])
assert a["$API"]["status"] == "maintenance" and a["$API"]["note"] == "kept", a["$API"]
print("ok")
EOF
if grep -q '^ok$' "$T/restart.check"; then ok "after a restart: the same uuids and creation times, maintenance kept"; else
  bad "restart:"; sed 's/^/     | /' "$T/restart.check"; fi

echo "# SIGHUP re-syncs the declared services"
C1=$(python3 -c 'import json,sys; print([s["uuid"] for s in json.load(open(sys.argv[1])) if s["name"] == "c1"][0])' "$T/after.json")
cat >"$T/agent.json" <<'EOF'
{"services": [{"type": "cache", "name": "c1", "region": "eu-2"}, {"type": "queue", "name": "q1"}]}
EOF
kill -HUP "$APID"
resynced=0
for _ in $(seq 30); do
  "$BIN" services "${S[@]}" -o json >"$T/out"
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if sorted(s["name"] for s in j if s["type"] in ("cache","queue")) == ["c1","q1"] else 1)' "$T/out" && { resynced=1; break; }
  sleep 0.1
done
[ $resynced = 1 ] && ok "reload: c2 removed, q1 added" || bad "reload did not re-sync the declared services"
json "$T/out" '[(s["uuid"], s["region"]) for s in j if s["name"] == "c1"] == [("'"$C1"'", "eu-2")]' "reload: c1 updated in place, same uuid"
has "$L" 'reload: declared service .* \(queue\) added' "the reload logs what it added"

echo "# deregister"
expect 0 "deregister" -- "$BIN" deregister "${S[@]}" "$API"
expect 1 "is-up after deregister" -- "$BIN" is-up "${S[@]}" --uuid "$API"
has "$T/out" '^unknown' "the service is unknown"
expect 1 "deregister twice" -- "$BIN" deregister "${S[@]}" "$API"

echo "# a damaged services.json"
stop_agent
echo '{not json' >"$T/data/services.json"
start_agent || exit 1
has "$L" "$T/data/services.json: .*ignoring it" "one warning names the file"
expect 0 "the agent runs" -- "$BIN" services "${S[@]}" -o json
json "$T/out" 'sorted(s["name"] for s in j) == ["c1", "q1"]' "only the declared services"
stop_agent

summary
