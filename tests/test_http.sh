#!/usr/bin/env bash
# test_http.sh LIVEMESH: the agent's HTTP API (--http) against real agents
# on 127.0.0.1 with real curl: every endpoint; the answers equal the CLI's
# (the control socket's) for the same view; X-Livemesh-Index on every
# answer; blocking queries that return early on a change and at the wait
# otherwise; a watch stream (initial line, then transitions); writes
# (PUT, DELETE, pass, fail, maint); every kind of bad request (400, 404,
# 405 with Allow, 413) with an error JSON; --http-read-only, --http-token,
# a non-loopback address refused; the probes (/readyz, /livez, the Flask
# heartbeat shapes) and /metrics through promtool, readiness following a
# failing check, /livez after a stopped loop; 1,000 keep-alive is-up requests on one
# connection; a watch reader that stops reading cut off; HTTPS with a
# certificate curl verifies; and 100 stalled connections that neither delay the failure
# detector (a kill -9'ed peer is still dead within 15 s) nor stay open past
# the idle timeout. Outcomes are read from JSON and status codes.
set -u

. "$(dirname "$0")/lib.sh"

BIN=${1:?usage: test_http.sh PATH/TO/livemesh}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
lm_init http

# req METHOD PATH [curl args...]: status in $T/code, body in $T/body,
# headers in $T/hdr
req() {
  local m=$1 p=$2
  shift 2
  curl -s -X "$m" -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@" "$URL$p" >"$T/code"
}
# status WANT DESC: the last req's status, and an error JSON naming it
status() {
  local got
  got=$(cat "$T/code")
  if [ "$got" = "$1" ]; then ok "$2 ($got)"; else
    bad "$2: status $got, wanted $1"; head -c 400 "$T/body" | sed 's/^/     | /'; fi
}
error_names() {
  json "$T/body" "isinstance(j.get('error'), str) and re.search(r'''$1''', j['error']) is not None" "$2" 
}
hdr_index() { tr -d '\r' <"$T/hdr" | awk -F': ' 'tolower($1)=="x-livemesh-index"{print $2}'; }

"$BIN" keygen cluster --out "$T/keys" >/dev/null
for n in n1 n2 n3 n4 n5; do
  "$BIN" keygen node --cluster-key "$T/keys/cluster.key" --name $n --out "$T/$n" >/dev/null
done

P1=$(free_port)
URL=http://127.0.0.1:$P1
S1=$T/a1.sock
S=(--socket "$S1")
start_agent_up n1 "$T/d1" "$S1" --http "127.0.0.1:$P1" --http-idle-timeout-s 3 || exit 1
A1=$APID
"$BIN" members "${S[@]}" -o json >"$T/m.json"
ADDR1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["addr"])' "$T/m.json")
start_agent_up n2 "$T/d2" "$T/a2.sock" --join "$ADDR1" || exit 1
A2=$APID
for _ in $(seq 50); do
  "$BIN" members "${S[@]}" -o json >"$T/m.json" 2>/dev/null
  python3 -c 'import json,sys; sys.exit(0 if sorted(m["status"] for m in json.load(open(sys.argv[1])))==["alive","alive"] else 1)' "$T/m.json" && break
  sleep 0.1
done

echo "# the same answers as the CLI"
API=$("$BIN" register "${S[@]}" --type api --name api-1 --region eu-1 --port 8080 --tag blue --meta v=1 --ttl 30s)
WEB=$("$BIN" register "${S[@]}" --type web --name web-1)
"$BIN" pass "${S[@]}" "$API" >/dev/null
"$BIN" register --socket "$T/a2.sock" --type db --name db-1 >/dev/null
for _ in $(seq 50); do # n2's service reaches n1
  [ "$(curl -s "$URL/v1/services?type=db" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] && break
  sleep 0.1
done
# age_ms grows between the two reads: compared without it
strip='def s(v):
    if isinstance(v, list): return [s(x) for x in v]
    if isinstance(v, dict): return {k: s(x) for k, x in v.items() if k != "age_ms"}
    return v'
same() { # FILE_CLI FILE_HTTP DESC
  if python3 -c "import json,sys
$strip
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if s(a) == s(b) else 1)" "$1" "$2"; then ok "$3"; else
    bad "$3"; diff <(python3 -m json.tool "$1") <(python3 -m json.tool "$2") | head -10 | sed 's/^/     | /'; fi
}
"$BIN" services "${S[@]}" -o json >"$T/cli.json"
req GET /v1/services; status 200 "GET /v1/services"
same "$T/cli.json" "$T/body" "GET /v1/services equals services -o json"
[ -n "$(hdr_index)" ] && ok "X-Livemesh-Index on GET /v1/services" || bad "no X-Livemesh-Index"
"$BIN" services "${S[@]}" --type api --region eu-1 --status up -o json >"$T/cli.json"
req GET "/v1/services?type=api&region=eu-1&status=up&host="
same "$T/cli.json" "$T/body" "filters: the same as the CLI's"
json "$T/body" 'len(j) == 1 and j[0]["uuid"] == "'"$API"'"' "filters select the api service"
"$BIN" members "${S[@]}" -o json >"$T/cli.json"
req GET /v1/members; status 200 "GET /v1/members"
same "$T/cli.json" "$T/body" "GET /v1/members equals members -o json"
"$BIN" is-up "${S[@]}" api n1 -o json >"$T/cli.json"
req GET "/v1/is-up?type=api&host=n1"; status 200 "GET /v1/is-up (up)"
same "$T/cli.json" "$T/body" "is-up by type and host equals is-up -o json"
"$BIN" is-up "${S[@]}" --uuid "$WEB" -o json >"$T/cli.json"
req GET "/v1/is-up?uuid=$WEB"
same "$T/cli.json" "$T/body" "is-up by uuid equals is-up --uuid -o json"
req GET "/v1/is-up?type=nope&host=n1"; status 200 "is-up of an unknown service is 200 too"
json "$T/body" 'j["up"] is False and j["status"] == "unknown"' "the answer is in the body"
"$BIN" services "${S[@]}" -o json >"$T/cli.json"
python3 -c 'import json,sys; print(json.dumps([s for s in json.load(open(sys.argv[1])) if s["uuid"]==sys.argv[2]][0]))' "$T/cli.json" "$API" >"$T/one.json"
req GET "/v1/services/$API"; status 200 "GET /v1/services/{uuid}"
same "$T/one.json" "$T/body" "one service equals its entry in services -o json"
[ -n "$(hdr_index)" ] && ok "X-Livemesh-Index on GET /v1/services/{uuid}" || bad "no X-Livemesh-Index"

echo "# blocking queries"
req GET /v1/services
IDX=$(hdr_index)
python3 - "$URL/v1/services?index=$IDX&wait=20s" >"$T/block.out" 2>&1 <<'EOF' &
import sys, time, urllib.request
t = time.time()
r = urllib.request.urlopen(sys.argv[1], timeout=60)
body = r.read()
print("returned", r.status, r.headers["X-Livemesh-Index"], round(time.time() - t, 2), flush=True)
EOF
BP=$!
sleep 1
if [ -s "$T/block.out" ]; then bad "the blocking query returned before any change: $(cat "$T/block.out")"; else ok "the blocking query waits while nothing changes"; fi
"$BIN" fail "${S[@]}" "$API" >/dev/null
wait $BP
read -r _ code nidx secs <"$T/block.out"
if [ "$code" = 200 ] && [ "$nidx" -gt "$IDX" ] && python3 -c "import sys; sys.exit(0 if $secs < 15 else 1)"; then
  ok "the blocking query returns on the change (index $IDX -> $nidx, after ${secs}s, wait 20s)"
else bad "blocking query: $(cat "$T/block.out")"; fi
req GET /v1/members; MIDX=$(hdr_index)
t0=$(date +%s.%N)
req GET "/v1/members?index=$MIDX&wait=1s"; status 200 "blocking query without a change"
t1=$(date +%s.%N)
if python3 -c "import sys; d=$t1-$t0; sys.exit(0 if 0.9 <= d < 10 else 1)"; then ok "it returns at the wait (1s), not before"; else bad "blocking query took $(python3 -c "print($t1-$t0)") s with wait=1s"; fi
req GET "/v1/members?index=0"; status 200 "index 0 answers at once"
req GET "/v1/members?index=abc"; status 400 "a bad index"
error_names 'index' "the error names the index"
req GET "/v1/members?index=1&wait=forever"; status 400 "a bad wait"
error_names 'wait' "the error names the wait"

echo "# watch"
curl -sN "$URL/v1/watch?uuid=$API" >"$T/watch.out" 2>/dev/null &
WP=$!
PIDS+=("$WP")
sleep 0.5
"$BIN" pass "${S[@]}" "$API" >/dev/null
"$BIN" maint "${S[@]}" "$API" --for 1h >/dev/null
"$BIN" maint "${S[@]}" "$API" --off >/dev/null
sleep 0.5
kill "$WP" 2>/dev/null; wait "$WP" 2>/dev/null
python3 - "$T/watch.out" >"$T/watch.check" 2>&1 <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines and lines[0].get("initial") is True and lines[0]["new"] == "down", lines[:1]
assert [l["seq"] for l in lines] == list(range(1, len(lines) + 1)), lines
moves = [(l["old"], l["new"]) for l in lines[1:]]
assert moves == [("down", "up"), ("up", "maintenance"), ("maintenance", "up")], moves
print("ok")
EOF
if grep -q '^ok$' "$T/watch.check"; then ok "watch: the initial line, then each transition"; else
  bad "watch:"; sed 's/^/     | /' "$T/watch.check" "$T/watch.out" | head -12; fi
req GET "/v1/watch?members=maybe"; status 400 "a watch with a bad boolean"

echo "# writes"
req PUT /v1/services -d '{"type":"cache","name":"c1","ttl":"10s","tags":["x"]}'; status 200 "PUT /v1/services"
C1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uuid"])' "$T/body")
"$BIN" services "${S[@]}" --type cache -o json >"$T/cli.json"
json "$T/cli.json" 'len(j) == 1 and j[0]["uuid"] == "'"$C1"'" and j[0]["tags"] == ["x"]' "the CLI sees the registered service"
req PUT "/v1/services/$C1/fail" -d '{"note":"broken"}'; status 200 "PUT .../fail"
"$BIN" is-up "${S[@]}" --uuid "$C1" -o json >"$T/cli.json"
json "$T/cli.json" 'j["up"] is False' "down after fail"
req PUT "/v1/services/$C1/pass"; status 200 "PUT .../pass without a body"
"$BIN" is-up "${S[@]}" --uuid "$C1" -o json >"$T/cli.json"
json "$T/cli.json" 'j["up"] is True' "up after pass"
req PUT "/v1/services/$C1/maint" -d '{"for":"10m","note":"upgrade"}'; status 200 "PUT .../maint"
"$BIN" services "${S[@]}" --type cache -o json >"$T/cli.json"
json "$T/cli.json" 'j[0]["status"] == "maintenance" and j[0]["note"] == "upgrade"' "in maintenance with its note"
req PUT "/v1/services/$C1/maint" -d '{"off":true}'; status 200 "maint off"
"$BIN" is-up "${S[@]}" --uuid "$C1" -o json >"$T/cli.json"
json "$T/cli.json" 'j["up"] is True' "up after maint off"
req DELETE "/v1/services/$C1"; status 200 "DELETE /v1/services/{uuid}"
json "$T/body" 'j == {"uuid": "'"$C1"'"}' "DELETE names the service"
req GET "/v1/services/$C1"; status 404 "the deleted service is unknown"
error_names 'unknown uuid' "404 names the uuid"

echo "# bad requests"
req GET /v1/nothing; status 404 "unknown path"
error_names 'unknown path' "the error names the path"
req POST /v1/services; status 405 "POST /v1/services"
tr -d '\r' <"$T/hdr" | grep -qi '^Allow: GET, PUT$' && ok "405 carries Allow: GET, PUT" || bad "no Allow header: $(cat "$T/hdr")"
error_names 'not allowed' "the error says so"
req DELETE /v1/members; status 405 "DELETE /v1/members"
req GET "/v1/services?status=sleepy"; status 400 "a bad status value"
error_names 'status' "the error names the field"
req GET "/v1/services?colour=red"; status 400 "an unknown query parameter"
error_names 'colour' "the error names it"
req GET "/v1/is-up?type=api"; status 400 "is-up without a host"
req GET "/v1/services/not-a-uuid"; status 400 "a malformed uuid"
req PUT /v1/services -d '{"type": '; status 400 "bad JSON body"
error_names 'bad JSON' "the error says bad JSON"
req PUT /v1/services -d '[1]'; status 400 "a body that is not an object"
req PUT /v1/services -d '{"type":"x","colour":"red"}'; status 400 "an unknown body field"
error_names 'colour' "the error names the field"
req PUT "/v1/services/$API/maint" -d '{"for":"soon"}'; status 400 "a bad maint duration"
error_names 'for' "the error names the field"
req PUT /v1/services -d '{"type":"x","ephemeral":true}'; status 400 "ephemeral over HTTP"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
req PUT /v1/services --data-binary "@$T/big"; status 413 "a body over 64 KiB"
error_names 'at most' "the error gives the limit"
req PUT /v1/services -H 'Transfer-Encoding: chunked' --data-binary "@$T/big"; status 413 "a chunked body over 64 KiB"
req PUT "/v1/services/00000000-0000-4000-8000-000000000000/pass"; status 404 "pass of an unknown uuid"

echo "# --http-read-only, --http-token, loopback only"
P3=$(free_port); P4=$(free_port)
printf 's3cret-token\n' >"$T/token"
chmod 600 "$T/token"
start_agent_up n3 "$T/d3" "$T/a3.sock" --http "127.0.0.1:$P3" --http-token "$T/token"
start_agent_up n4 "$T/d4" "$T/a4.sock" --http ":$P4" --http-read-only
URL=http://127.0.0.1:$P3
req PUT /v1/services -d '{"type":"x"}'; status 401 "a write without the token"
tr -d '\r' <"$T/hdr" | grep -qi '^WWW-Authenticate: Bearer' && ok "401 carries WWW-Authenticate" || bad "no WWW-Authenticate"
error_names 'Bearer' "the error says what is needed"
req PUT /v1/services -d '{"type":"x"}' -H 'Authorization: Bearer wrong'; status 401 "a wrong token"
req PUT /v1/services -d '{"type":"x"}' -H 'Authorization: Bearer s3cret-token'; status 200 "the right token"
req GET /v1/services; status 200 "reads need no token"
URL=http://127.0.0.1:$P4
req PUT /v1/services -d '{"type":"x"}'; status 403 "a write on a read-only API"
error_names 'read-only' "the error says read-only"
req GET /v1/members; status 200 "reads on a read-only API (an empty host is 127.0.0.1)"
"$BIN" agent --data-dir "$T/d5" --node-key "$T/n4/node.key" --cluster-key "$T/keys/cluster.pub" \
  --bind 127.0.0.1:0 --socket "$T/a5.sock" --http "0.0.0.0:$(free_port)" >"$T/out" 2>"$T/err"
rc=$?
[ $rc = 2 ] && grep -q 'not a loopback address' "$T/err" && ok "a non-loopback --http is refused without --http-allow-remote (exit 2)" || { bad "non-loopback: exit $rc"; cat "$T/err"; }
LIVEMESH_HTTP_READ_ONLY=1 LIVEMESH_HTTP_TOKEN=/x "$BIN" agent --print-config >"$T/pc.json"
json "$T/pc.json" 'j["http_read_only"] is True and j["http_token"] == "/x" and j["http_max_conns"] is None' "LIVEMESH_HTTP_* set the HTTP flags"
URL=http://127.0.0.1:$P1

echo "# 1,000 keep-alive requests on one connection"
for _ in $(seq 1000); do
  printf 'url = "%s"\noutput = "/dev/null"\n' "$URL/v1/is-up?type=api&host=n1"
done >"$T/urls"
curl -s -K "$T/urls" -w '%{http_code} %{num_connects}\n' >"$T/ka.out"
python3 - "$T/ka.out" >"$T/ka.check" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
codes = [r[0] for r in rows]
connects = sum(int(r[1]) for r in rows)
print(len(rows), codes.count("200"), connects)
sys.exit(0 if len(rows) == 1000 and codes.count("200") == 1000 and connects == 1 else 1)
EOF
if [ $? = 0 ]; then ok "1,000 is-up answered 200 on one connection ($(cat "$T/ka.check"))"; else bad "keep-alive: rows, 200s, connects = $(cat "$T/ka.check")"; fi

echo "# probes and metrics"
URL=http://127.0.0.1:$P1
req GET /readyz; status 200 "/readyz of a converged agent whose services pass"
[ "$(cat "$T/body")" = "ok" ] && ok "/readyz says ok" || bad "/readyz body: $(cat "$T/body")"
req GET /livez; status 200 "/livez"
req GET "/livez?verbose"; status 200 "/livez?verbose"
grep -q '^\[+\]loop ok' "$T/body" && ok "/livez?verbose lists the loop check" || bad "/livez?verbose: $(cat "$T/body")"
req GET /.well-known/heartbeat/readiness; status 200 "heartbeat readiness"
json "$T/body" 'j["status"] is True and all(isinstance(c["status"], bool) for c in j["checks"].values()) and {"joined","converged","services","loop"} <= set(j["checks"])' "the Flask heartbeat shape, with every check"
req GET /.well-known/heartbeat/liveliness; status 200 "heartbeat liveliness"
json "$T/body" 'j["status"] is True and j["checks"]["loop"]["status"] is True' "liveliness: the loop check"
req GET /.well-known/heartbeat/environ; status 200 "heartbeat environ"
json "$T/body" 'j["status"] is True and all("version" in v for v in j["libraries"].values()) and {"livemesh","libuv","libsodium","libmicrohttpd"} <= set(j["libraries"])' "environ lists the libraries with versions"
req POST /readyz; status 405 "POST on a probe"
# a registered check fails: not ready (503), naming the service; then ready
"$BIN" fail "${S[@]}" "$API" --note broken >/dev/null
req GET "/readyz?verbose"; status 503 "/readyz while a local check fails"
grep -q '^\[-\]services' "$T/body" && ok "/readyz?verbose names the failing services check" || bad "/readyz?verbose: $(cat "$T/body")"
req GET /.well-known/heartbeat/readiness; status 500 "heartbeat readiness while a check fails"
json "$T/body" 'j["status"] is False and j["checks"]["services"]["status"] is False and "'"$API"'" in json.dumps(j["checks"]["services"])' "the failing service is named"
"$BIN" pass "${S[@]}" "$API" >/dev/null
req GET /readyz; status 200 "/readyz once the check passes again"
# /metrics through Debian's promtool
req GET /metrics; status 200 "/metrics"
tr -d '\r' <"$T/hdr" | grep -qi '^content-type: text/plain; version=0.0.4' && ok "/metrics is text format 0.0.4" || bad "/metrics content type: $(grep -i content-type "$T/hdr")"
if promtool check metrics <"$T/body" >"$T/promtool.out" 2>&1; then ok "promtool check metrics passes on the live /metrics"; else bad "promtool: $(cat "$T/promtool.out")"; fi
for fam in livemesh_members livemesh_services livemesh_udp_packets_sent_total livemesh_udp_bytes_sent_total livemesh_udp_packets_received_total livemesh_dropped_total livemesh_probes_total livemesh_suspicions_total livemesh_refutations_total livemesh_check_runs_total livemesh_local_health; do
  grep -q "^# TYPE $fam " "$T/body" || { bad "/metrics lacks $fam"; continue; }
done
grep -q '^livemesh_services{status="up"} [1-9]' "$T/body" && ok "every family INTERFACES.md lists is there; services up counted" || bad "livemesh_services: $(grep '^livemesh_services' "$T/body")"
# a stopped loop: nothing answers while it is stopped, and /livez is 503
# once it runs again, until the lag window has passed
kill -STOP "$A1"
code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$URL/livez")
[ "$code" = 000 ] && ok "a stopped agent does not answer /livez (client timeout)" || bad "stopped agent answered $code"
sleep 2.5
kill -CONT "$A1"
req GET /livez; status 503 "/livez right after the loop stalled 3.5 s"
live=0
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/livez")" = 200 ] && { live=1; break; }
  sleep 0.1
done
[ $live = 1 ] && ok "/livez back to 200 once the loop keeps time again" || bad "/livez still not 200 10 s after SIGCONT"

echo "# stalled clients do not delay probes"
# a third member, so n1 is not cut off from every peer when n2 dies (a node
# alone keeps its last view, marked stale, rather than calling it dead)
start_agent_up n5 "$T/d5b" "$T/a5b.sock" --join "$ADDR1" || exit 1
for _ in $(seq 100); do
  "$BIN" members "${S[@]}" -o json >"$T/m.json" 2>/dev/null
  python3 -c 'import json,sys; sys.exit(0 if sorted(m["status"] for m in json.load(open(sys.argv[1])))==["alive"]*3 else 1)' "$T/m.json" && break
  sleep 0.1
done
python3 - "$P1" "$T/stall.state" >"$T/stall.out" 2>&1 <<'EOF' &
import socket, sys, time
port, state = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(100):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/members HTTP/1.1\r\nHost: x\r\nX-Half: ")
    socks.append(s)
open(state, "w").write("open\n")
t0 = time.time()
closed = set()
while len(closed) < len(socks) and time.time() - t0 < 60:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        s.settimeout(0.01)
        try:
            if s.recv(4096) == b"":
                closed.add(i)
        except socket.timeout:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.1)
print("closed", len(closed), "of", len(socks), "after", round(time.time() - t0, 1), "s")
EOF
SP=$!
for _ in $(seq 50); do [ -s "$T/stall.state" ] && break; sleep 0.1; done
req GET /v1/members; status 200 "the API answers with 100 stalled connections open"
kill -9 "$A2"
t0=$(date +%s.%N)
dead=0
for _ in $(seq 150); do
  "$BIN" members "${S[@]}" -o json >"$T/m.json" 2>/dev/null
  python3 -c 'import json,sys; sys.exit(0 if [m["status"] for m in json.load(open(sys.argv[1])) if m["name"]=="n2"]==["dead"] else 1)' "$T/m.json" && { dead=1; break; }
  sleep 0.1
done
t1=$(date +%s.%N)
secs=$(python3 -c "print(round($t1-$t0,1))")
[ $dead = 1 ] && ok "n2 declared dead ${secs}s after kill -9, with 100 stalled HTTP clients (bound 15 s)" || bad "n2 not dead within 15 s"
wait "$SP"
if grep -q '^closed 100 of 100' "$T/stall.out"; then ok "the stalled connections were cut off ($(cat "$T/stall.out"); idle timeout 3 s)"; else bad "stalled connections: $(cat "$T/stall.out")"; fi
req GET /v1/members; status 200 "the API still answers"

echo "# a watch reader that stops reading is cut off"
FLAP=$("$BIN" register "${S[@]}" --type flap --ttl 1h)
cat >"$T/reader.py" <<'PYEOF'
import os, socket, sys, time
port, state, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
s.connect(("127.0.0.1", port))
s.sendall(b"GET /v1/watch?type=flap HTTP/1.1\r\nHost: x\r\n\r\n")
first = s.recv(4096)
open(state, "w").write("reading stopped\n")
while not os.path.exists(go):  # read nothing meanwhile
    time.sleep(0.1)
# now drain: a connection that was cut off ends (EOF); one still open
# leaves us waiting
s.settimeout(20)
total = len(first)
try:
    while True:
        b = s.recv(65536)
        if not b:
            print("eof after", total, "bytes")
            break
        total += len(b)
except socket.timeout:
    print("still open after", total, "bytes")
PYEOF
python3 "$T/reader.py" "$P1" "$T/reader.state" "$T/reader.go" >"$T/reader.out" 2>&1 &
RP=$!
for _ in $(seq 50); do [ -s "$T/reader.state" ] && break; sleep 0.1; done
for _ in $(seq 15000); do
  printf 'url = "%s"\nrequest = "PUT"\noutput = "/dev/null"\n' "$URL/v1/services/$FLAP/fail"
  printf 'url = "%s"\nrequest = "PUT"\noutput = "/dev/null"\n' "$URL/v1/services/$FLAP/pass"
done >"$T/flood"
curl -s -K "$T/flood" -w '%{http_code}\n' >"$T/flood.out"
[ "$(grep -c '^200$' "$T/flood.out")" = 30000 ] && ok "30,000 status flips over HTTP (each one event for the watcher)" || bad "flood: $(sort "$T/flood.out" | uniq -c | head)"
touch "$T/reader.go"
wait "$RP"
grep -q '^eof after' "$T/reader.out" && ok "the watcher that stopped reading was cut off ($(cat "$T/reader.out"))" || bad "stalled watcher: $(cat "$T/reader.out")"
req GET /livez; status 200 "the agent stayed live through it"
req GET "/v1/is-up?uuid=$FLAP"; status 200 "and still answers"

echo "# TLS"
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" \
     -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1; then
  P6=$(free_port)
  start_agent_up n4 "$T/d6" "$T/a6.sock" --http "127.0.0.1:$P6" --http-tls-cert "$T/tls.crt" --http-tls-key "$T/tls.key"
  code=$(curl -s --cacert "$T/tls.crt" -o "$T/body" -w '%{http_code}' "https://127.0.0.1:$P6/v1/members")
  [ "$code" = 200 ] && ok "HTTPS with --http-tls-cert/--http-tls-key (curl verifies the certificate)" || bad "HTTPS: $code $(tail -3 "$T/n4.log")"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P6/v1/members")
  [ "$code" != 200 ] && ok "plain HTTP refused on the TLS port ($code)" || bad "plain HTTP answered on the TLS port"
else
  bad "openssl could not make a test certificate"
fi

echo "# stop"
kill -TERM "$A1"
for _ in $(seq 50); do kill -0 "$A1" 2>/dev/null || break; sleep 0.1; done
wait "$A1"; rc=$?
[ $rc = 0 ] && ok "the agent with HTTP stops cleanly on SIGTERM (exit 0)" || bad "agent exit $rc after SIGTERM"

summary
