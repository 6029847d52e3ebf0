#!/usr/bin/env bash
# test_cli.sh LIVEMESH: the `livemesh` binary from the outside, the way a
# person or a script uses it: keygen files and modes, configuration errors
# and precedence, real agents on 127.0.0.1 (members, control protocol,
# generation across restarts, leave, signals, stale and live sockets), and
# the demo. Each check asserts an outcome; the script cleans up only the
# processes it started (by PID) and its own temporary directory.
set -u

. "$(dirname "$0")/lib.sh"

BIN=${1:?usage: test_cli.sh PATH/TO/livemesh}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
lm_init cli

# mode_is FILE MODE: FILE has the octal permission bits MODE
mode_is() {
  local m
  m=$(stat -c %a "$1" 2>/dev/null)
  if [ "$m" = "$2" ]; then ok "$1 has mode $2"; else bad "$1 has mode '$m', wanted $2"; fi
}

echo "# version and help"
expect 0 "--version" -- "$BIN" --version
has "$T/out" '^livemesh [0-9]+\.[0-9]+\.[0-9]+$' "--version prints the version"
expect 0 "--help" -- "$BIN" --help
has "$T/out" 'agent' "--help lists the agent"
for c in agent members leave keygen demo; do
  expect 0 "$c --help" -- "$BIN" "$c" --help
  has "$T/out" 'Usage: livemesh' "$c --help prints a usage"
done
expect 2 "unknown command" -- "$BIN" frobnicate
has "$T/err" 'unknown command "frobnicate"' "unknown command is named"
expect 2 "no command" -- "$BIN"
has "$T/err" '^Usage: livemesh COMMAND' "no command prints the usage"
for c in services is-up watch register pass fail maint deregister; do
  expect 0 "$c --help" -- "$BIN" "$c" --help
  has "$T/out" "Usage: livemesh $c" "$c --help prints its usage"
done

echo "# keygen"
expect 0 "keygen cluster" -- "$BIN" keygen cluster --out "$T/keys"
has "$T/out" "wrote $T/keys/cluster.key" "keygen cluster says what it wrote"
mode_is "$T/keys/cluster.key" 600
mode_is "$T/keys/cluster.pub" 644
has "$T/keys/cluster.pub" '^livemesh-public-key-v1 ' "cluster.pub is a public key file"
expect 2 "keygen cluster refuses to overwrite" -- "$BIN" keygen cluster --out "$T/keys"
has "$T/err" 'already exists; pass --force' "overwrite refusal names --force"
for n in n1 n2 n3; do
  expect 0 "keygen node $n" -- "$BIN" keygen node --cluster-key "$T/keys/cluster.key" --name $n --out "$T/$n"
done
has "$T/out" 'certificate for "n3", valid until' "keygen node says how long the cert is valid"
mode_is "$T/n1/node.key" 600
mode_is "$T/n1/node.cert" 644
mode_is "$T/n1/node.pub" 644
expect 0 "keygen node --valid-days" -- "$BIN" keygen node --cluster-key "$T/keys/cluster.key" --name n9 --out "$T/n9" --valid-days 2
expect 2 "keygen node with the public key" -- "$BIN" keygen node --cluster-key "$T/keys/cluster.pub" --name x --out "$T/x"
has "$T/err" 'is a public key' "public key instead of secret is explained"
expect 0 "keygen node without --name: the hostname" -- "$BIN" keygen node --cluster-key "$T/keys/cluster.key" --out "$T/x"
has "$T/out" "certificate for \"$(hostname)\"" "the node is named after the host"
expect 2 "keygen node without --out" -- "$BIN" keygen node --cluster-key "$T/keys/cluster.key" --name x
has "$T/err" 'missing --out' "missing --out is named"
expect 2 "keygen node with a bad name" -- "$BIN" keygen node --cluster-key "$T/keys/cluster.key" --name "a b" --out "$T/x"
expect 0 "keygen secret" -- "$BIN" keygen secret --out "$T/keys"
mode_is "$T/keys/cluster.secret" 600

echo "# configuration errors (exit 2, the culprit named)"
expect 2 "unknown flag" -- "$BIN" agent --bnd 1.2.3.4:5
has "$T/err" 'unknown flag --bnd \(did you mean --bind\?\)' "unknown flag is named, with a suggestion"
expect 2 "bad flag value" -- "$BIN" agent --bind nowhere
has "$T/err" '^livemesh agent: --bind: expected HOST:PORT.*"nowhere"' "bad --bind is named"
expect 2 "flag without value" -- "$BIN" agent --name
has "$T/err" '--name needs a value' "missing value is named"
echo '{"name": "n1", "bnd": "1.2.3.4:5"}' >"$T/badkey.json"
expect 2 "unknown config key" -- "$BIN" agent --config "$T/badkey.json"
has "$T/err" "config file $T/badkey.json: unknown key \"bnd\"" "unknown key and file are named"
echo '{"join": "127.0.0.1:7946"}' >"$T/badtype.json"
expect 2 "wrong type in config" -- "$BIN" agent --config "$T/badtype.json"
has "$T/err" 'key "join": expected an array of strings.*got a string' "wrong type names key and types"
echo '{"probe_interval_ms": 3}' >"$T/badval.json"
expect 2 "out of range in config" -- "$BIN" agent --config "$T/badval.json"
has "$T/err" 'key "probe_interval_ms": expected a whole number from 10 to 600000, got 3' "range error names key and range"
echo '{"name": "n1",' >"$T/broken.json"
expect 2 "broken JSON" -- "$BIN" agent --config "$T/broken.json"
has "$T/err" "config file $T/broken.json:[0-9]+:[0-9]+:" "JSON syntax error has file, line, column"
expect 2 "missing config file" -- "$BIN" agent --config "$T/nope.json"
has "$T/err" "$T/nope.json: No such file or directory" "missing config file is named"
expect 2 "bad environment value" -- env LIVEMESH_LOG_LEVEL=loud "$BIN" agent
has "$T/err" '^livemesh agent: LIVEMESH_LOG_LEVEL: expected one of error, warn, info, debug, got "loud"' "bad env var is named"
expect 2 "missing node key" -- "$BIN" agent --data-dir "$T/empty" --cluster-key "$T/keys/cluster.pub" --socket "$T/e.sock"
has "$T/err" "node key $T/empty/node.key: No such file or directory" "missing node key file is named"
expect 2 "missing cluster key" -- "$BIN" agent --data-dir "$T/d0" --node-key "$T/n1/node.key" --cluster-key "$T/nope.pub" --socket "$T/e.sock"
has "$T/err" "cluster key $T/nope.pub: No such file or directory" "missing cluster key file is named"
expect 2 "cluster secret key given as --cluster-key" -- "$BIN" agent --data-dir "$T/d0" --node-key "$T/n1/node.key" --cluster-key "$T/keys/cluster.key" --socket "$T/e.sock"
has "$T/err" 'is a SECRET key' "secret key as trusted key is explained"
expect 2 "--name does not match the certificate" -- "$BIN" agent --data-dir "$T/d0" --node-key "$T/n1/node.key" --cluster-key "$T/keys/cluster.pub" --name other --socket "$T/e.sock"
has "$T/err" '--name other does not match the certificate' "name mismatch is explained"
"$BIN" keygen cluster --out "$T/keys-other" >/dev/null
expect 2 "certificate from an untrusted cluster key" -- "$BIN" agent --data-dir "$T/d0" --node-key "$T/n1/node.key" --cluster-key "$T/keys-other/cluster.pub" --socket "$T/e.sock"
has "$T/err" 'not issued by any trusted cluster key' "untrusted certificate is explained"

echo "# precedence: flag > environment > config file > default"
echo '{"name": "from-file", "bind": "127.0.0.1:1111", "join": ["10.0.0.1:1"], "log_level": "warn"}' >"$T/prec.json"
expect 0 "print-config (file only)" -- "$BIN" agent --config "$T/prec.json" --print-config
cp "$T/out" "$T/p1.json"
json "$T/p1.json" 'j["name"]=="from-file" and j["bind"]=="127.0.0.1:1111" and j["log_level"]=="warn"' "the file is read"
json "$T/p1.json" 'j["cluster"]=="livemesh" and j["log_format"]=="text"' "defaults fill the rest"
expect 0 "print-config (file + env)" -- env LIVEMESH_NAME=from-env LIVEMESH_JOIN="10.0.0.2:2, 10.0.0.3:3" LIVEMESH_CONFIG="$T/prec.json" "$BIN" agent --print-config
cp "$T/out" "$T/p2.json"
json "$T/p2.json" 'j["name"]=="from-env" and j["bind"]=="127.0.0.1:1111"' "environment overrides the file, the file still counts"
json "$T/p2.json" 'j["join"]==["10.0.0.2:2","10.0.0.3:3"]' "a list from the environment replaces the file's list"
expect 0 "print-config (file + env + flag)" -- env LIVEMESH_NAME=from-env "$BIN" agent --config "$T/prec.json" --name from-flag --join 10.0.0.4:4 --join 10.0.0.5:5 --print-config
cp "$T/out" "$T/p3.json"
json "$T/p3.json" 'j["name"]=="from-flag" and j["join"]==["10.0.0.4:4","10.0.0.5:5"]' "flags override the environment"
expect 0 "node cert follows node key" -- "$BIN" agent --node-key /x/y/a.key --print-config
cp "$T/out" "$T/p4.json"
json "$T/p4.json" 'j["node_cert"]=="/x/y/a.cert"' "the certificate path defaults to the key's with .cert"

echo "# an agent on 127.0.0.1"
S1=$T/a1.sock
start_agent n1 "$T/d1" "$S1"
A1=$APID
if wait_ping "$S1"; then ok "agent n1 answers ping"; else bad "agent n1 does not answer"; cat "$T/n1.log"; fi
mode_is "$S1" 600
mode_is "$T/d1" 700
expect 0 "members -o json" -- "$BIN" members -o json --socket "$S1"
cp "$T/out" "$T/m1.json"
json "$T/m1.json" 'len(j)==1 and j[0]["name"]=="n1" and j[0]["status"]=="alive"' "n1 sees itself alive"
json "$T/m1.json" 'set(j[0])=={"name","id","addr","status","incarnation","services","since"} and set(j[0]["incarnation"])=={"generation","version"}' "member objects have exactly the documented fields"
PUB_HEX=$(python3 -c 'import base64,sys; t=open(sys.argv[1]).read().split()[1]; print(base64.urlsafe_b64decode(t+"=").hex())' "$T/n1/node.pub")
json "$T/m1.json" "j[0]['id']=='$PUB_HEX' and j[0]['addr'].startswith('127.0.0.1:') and j[0]['since'].endswith('Z')" "id is the hex public key, addr and since are well formed"
G1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["incarnation"]["generation"])' "$T/m1.json")
if [ "$(cat "$T/d1/generation")" = "$G1" ]; then ok "generation $G1 persisted in the data dir"; else bad "generation file $(cat "$T/d1/generation") != $G1"; fi
expect 0 "members as a table" -- env LIVEMESH_SOCKET="$S1" "$BIN" members
has "$T/out" '^NAME +STATUS +ADDRESS +GENERATION +VERSION +SINCE$' "the table has its header (socket from LIVEMESH_SOCKET)"
has "$T/out" '^n1 +alive +127\.0\.0\.1:[0-9]+ +[0-9]+ +0 +20' "the table has n1 alive"
expect 0 "stats -o json" -- "$BIN" stats -o json --socket "$S1"
cp "$T/out" "$T/st.json"
json "$T/st.json" 'j["name"]=="n1" and "dropped" in j and "dropped_total" in j and j["members"]==1' "stats has the counters and drops"

echo "# the control protocol"
python3 - "$S1" >"$T/proto.out" 2>&1 <<'EOF'
import json, socket, sys, time
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s, s.makefile("rwb")
s, f = conn()
def req(line):
    f.write(line + b"\n"); f.flush()
    return json.loads(f.readline())
r = req(b'{"cmd":"ping","id":42}')
assert r["ok"] is True and r["id"] == 42 and r["name"] == "n1", r
r = req(b'this is not json')
assert r["ok"] is False and "bad JSON" in r["error"], r
r = req(b'[1,2]')
assert r["ok"] is False and "JSON object" in r["error"], r
r = req(b'{"nocmd":1}')
assert r["ok"] is False and "cmd" in r["error"], r
r = req(b'{"cmd":"fly"}')
assert r["ok"] is False and 'unknown command "fly"' in r["error"], r
# two requests in one write, answered in order
f.write(b'{"cmd":"ping","id":1}\n{"cmd":"members","id":2}\n'); f.flush()
a, b = json.loads(f.readline()), json.loads(f.readline())
assert a["id"] == 1 and b["id"] == 2 and b["members"][0]["name"] == "n1", (a, b)
# many clients at once, one of them silent, one of them never reading
silent, _ = conn()
many = [conn() for _ in range(40)]
for _, mf in many:
    mf.write(b'{"cmd":"members"}\n'); mf.flush()
for _, mf in many:
    assert json.loads(mf.readline())["ok"] is True
# an oversize line: an error, then the connection is closed
o, of = conn()
try:
    o.sendall(b"x" * (70 * 1024))
except OSError:
    pass
line = of.readline()
if line:
    assert "longer than" in json.loads(line)["error"], line
assert of.readline() == b"", "connection still open after an oversize line"
# the agent still serves everyone else
r = req(b'{"cmd":"ping"}')
assert r["ok"] is True
print("protocol ok")
EOF
has "$T/proto.out" '^protocol ok$' "control protocol: ids, errors, pipelining, 40 clients, oversize line"

echo "# a second agent joins, then leaves"
start_agent n2 "$T/d2" "$T/a2.sock"
A2=$APID
wait_ping "$T/a2.sock" || bad "agent n2 does not answer"
ADDR1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["addr"])' "$T/m1.json")
kill -9 "$A2" 2>/dev/null; wait "$A2" 2>/dev/null
# (restarted with --join so it joins at once)
start_agent n2 "$T/d2" "$T/a2.sock" --join "$ADDR1"
A2=$APID
wait_ping "$T/a2.sock" || bad "agent n2 does not answer after a kill -9 (stale socket)"
has "$T/n2.log" 'removed a stale control socket' "a stale socket from a killed agent is replaced"
for _ in $(seq 50); do
  "$BIN" members -o json --socket "$S1" >"$T/m2.json" 2>/dev/null
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if sorted((m["name"],m["status"]) for m in j)==[("n1","alive"),("n2","alive")] else 1)' "$T/m2.json" 2>/dev/null && break
  sleep 0.1
done
json "$T/m2.json" 'sorted((m["name"],m["status"]) for m in j)==[("n1","alive"),("n2","alive")]' "n1 sees n2 alive after the join"
expect 2 "a second agent on a live socket" -- "$BIN" agent --data-dir "$T/d3" --node-key "$T/n3/node.key" --cluster-key "$T/keys/cluster.pub" --bind 127.0.0.1:0 --socket "$S1"
has "$T/err" 'another agent is running' "a live socket is refused"
expect 2 "a second agent on a locked data dir" -- "$BIN" agent --data-dir "$T/d1" --node-key "$T/n1/node.key" --cluster-key "$T/keys/cluster.pub" --bind 127.0.0.1:0 --socket "$T/a9.sock"
has "$T/err" "another agent \(pid $A1\) is running with data dir" "a data dir in use is refused"
expect 0 "leave" -- "$BIN" leave --socket "$T/a2.sock"
has "$T/out" 'agent n2 left the mesh' "leave reports the agent left"
for _ in $(seq 50); do kill -0 "$A2" 2>/dev/null || break; sleep 0.1; done
wait "$A2"
RC=$?
if [ "$RC" -eq 0 ]; then ok "agent n2 exited 0 after leave"; else bad "agent n2 exited $RC after leave"; fi
if [ ! -e "$T/a2.sock" ]; then ok "agent n2 removed its socket"; else bad "agent n2 left its socket behind"; fi
"$BIN" members -o json --socket "$S1" >"$T/m3.json"
json "$T/m3.json" '[m["status"] for m in j if m["name"]=="n2"]==["left"]' "n1 sees n2 left (not dead)"

echo "# restart: the generation grows"
stop "$A1"
if [ "$RC" -eq 0 ]; then ok "SIGTERM: agent n1 exited 0"; else bad "SIGTERM: agent n1 exited $RC"; fi
has "$T/n1.log" 'SIGTERM: leaving the mesh' "SIGTERM leaves gracefully"
start_agent n1 "$T/d1" "$S1"
A1=$APID
wait_ping "$S1" || bad "agent n1 does not answer after a restart"
"$BIN" members -o json --socket "$S1" >"$T/m4.json"
G2=$(python3 -c 'import json,sys; print([m for m in json.load(open(sys.argv[1])) if m["name"]=="n1"][0]["incarnation"]["generation"])' "$T/m4.json")
if [ "$G2" -gt "$G1" ]; then ok "generation grew across the restart ($G1 -> $G2)"; else bad "generation did not grow: $G1 -> $G2"; fi
if [ "$(cat "$T/d1/generation")" = "$G2" ]; then ok "the new generation is persisted"; else bad "generation file is $(cat "$T/d1/generation"), wanted $G2"; fi

echo "# SIGHUP reloads"
kill -HUP "$A1"
for _ in $(seq 30); do grep -q 'reload:' "$T/n1.log" && break; sleep 0.1; done
has "$T/n1.log" 'reload: nothing changed' "SIGHUP with nothing changed says so"
if kill -0 "$A1" 2>/dev/null; then ok "the agent keeps running after SIGHUP"; else bad "the agent died on SIGHUP"; fi
kill -INT "$A1"
for _ in $(seq 90); do kill -0 "$A1" 2>/dev/null || break; sleep 0.1; done
wait "$A1"
RC=$?
if [ "$RC" -eq 0 ]; then ok "SIGINT: agent n1 exited 0"; else bad "SIGINT: agent n1 exited $RC"; fi
expect 2 "members without an agent" -- "$BIN" members --socket "$S1"
has "$T/err" "no agent at $S1" "an unreachable agent is explained"

echo "# group socket and JSON logs"
GRP=$(id -gn)
start_agent n3 "$T/d3" "$T/a3.sock" --socket-group "$GRP" --log-format json
A3=$APID
wait_ping "$T/a3.sock" || bad "agent n3 does not answer"
mode_is "$T/a3.sock" 660
stop "$A3"
python3 -c '
import json,sys
lines=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines and all({"ts","level","msg"} <= set(l) for l in lines)
print("json logs ok")' "$T/n3.log" >"$T/jl.out" 2>&1
has "$T/jl.out" '^json logs ok$' "--log-format json writes one JSON object per line"

echo "# SIGHUP applies the log level and reports what needs a restart"
mkdir -p "$T/d4"
cp "$T/keys/cluster.pub" "$T/d4/trusted.pub"
echo '{"log_level": "info", "cluster_keys": ["'"$T"'/d4/trusted.pub"]}' >"$T/n4.json"
"$BIN" agent --config "$T/n4.json" --data-dir "$T/d4" --node-key "$T/n3/node.key" \
  --bind 127.0.0.1:0 --socket "$T/a4.sock" 2>>"$T/n4.log" &
A4=$!
PIDS+=("$A4")
wait_ping "$T/a4.sock" || bad "agent with a config file does not answer"
echo '{"log_level": "debug", "cluster_keys": ["'"$T"'/d4/trusted.pub"], "tombstone_ms": 5000}' >"$T/n4.json"
cp "$T/keys-other/cluster.pub" "$T/d4/trusted.pub"
kill -HUP "$A4"
for _ in $(seq 30); do grep -q 'reload: [0-9]* change' "$T/n4.log" && break; sleep 0.1; done
has "$T/n4.log" 'reload: log level info -> debug' "SIGHUP applies the new log level"
has "$T/n4.log" 'not issued by any trusted cluster key.*the trusted keys stay as they are' "SIGHUP refuses trusted keys that would not admit this node itself"
# rotation: trust the old and the new cluster key together, live
cp "$T/keys/cluster.pub" "$T/d4/old.pub"
echo '{"log_level": "debug", "cluster_keys": ["'"$T"'/d4/old.pub", "'"$T"'/d4/trusted.pub"], "tombstone_ms": 5000}' >"$T/n4.json"
kill -HUP "$A4"
for _ in $(seq 30); do grep -q 'trusted cluster keys now in force' "$T/n4.log" && break; sleep 0.1; done
has "$T/n4.log" 'trusted cluster keys now in force .added: [A-Za-z0-9_-]+; removed: none.' "SIGHUP applies a new trusted cluster key without a restart"
has "$T/n4.log" 'reload: tombstone_ms changed from null to 5000; it takes effect when the agent restarts' "SIGHUP names settings that need a restart"
echo '{"log_level": 7}' >"$T/n4.json"
kill -HUP "$A4"
for _ in $(seq 30); do grep -q 'keeping the running configuration' "$T/n4.log" && break; sleep 0.1; done
has "$T/n4.log" 'reload: config file .*n4.json: key "log_level": expected a string.*keeping the running configuration' "a broken config on SIGHUP is reported and ignored"
stop "$A4"
if [ "$RC" -eq 0 ]; then ok "agent exits 0 after reloads"; else bad "agent exited $RC after reloads"; fi

echo "# demo"
START=$(date +%s)
expect 0 "demo --nodes 4" -- "$BIN" demo --nodes 4
END=$(date +%s)
has "$T/out" '^n3 killed: first suspect after [0-9.]+ m?s, dead everywhere after [0-9.]+ m?s; back alive everywhere after [0-9.]+ m?s; n4 left: seen as left everywhere after [0-9.]+ m?s$' "demo prints its summary"
has "$T/out" 'n1 sees n3 dead' "demo shows events line by line without a tty"
if [ $((END - START)) -lt 40 ]; then ok "demo took $((END - START)) s (< 40)"; else bad "demo took $((END - START)) s"; fi
grep '^n3 killed' "$T/out"
expect 2 "demo --nodes 2 is refused" -- "$BIN" demo --nodes 2

echo "# sanitizers (when built with them) found nothing in the agents' logs"
if grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/*.log >/dev/null 2>&1; then
  bad "sanitizer reports in $(grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/*.log | tr '\n' ' ')"
  grep -h -A5 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/*.log | head -20
else
  ok "no sanitizer reports in the agents' logs"
fi

echo
summary
