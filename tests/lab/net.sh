#!/usr/bin/env bash
# net.sh: the network of the fault lab (scripts/lab.sh, tests/lab/lab.py).
#
# A lab network K (1..99) is a set of network namespaces, all named with the
# lab's prefix "lmlab":
#
#   lmlabKbr              holds the bridge br0, nothing else
#   lmlabKhI (I = 0..N-1) one test host: eth0 = 10.77.K.(10+I)/24, lo up,
#                         an nftables table "inet lmlab" with an input and
#                         an output filter chain (policy accept, no rules)
#   lmlabKatk             on demand (`net.sh attacker K`): a host that runs
#                         no agent, eth0 = 10.77.K.99/24, for traffic that
#                         must come from outside the mesh but cross the same
#                         veth pairs and bridge (the flood scenario)
#
#        lmlabKh0 [eth0]--[vh0]\
#        lmlabKh1 [eth0]--[vh1]-- br0 (in lmlabKbr)
#        ...          veth pairs /
#
# Nothing is added to the root namespace, so the host's own network and
# firewall are never touched. The faults themselves (loss, partitions,
# flaps) are nft rules in the hosts' chains, written by lab.py.
#
#   net.sh up K N          create network K with N hosts (replacing any old one)
#   net.sh attacker K      add the attacker host to network K; prints its
#                          namespace and address
#   net.sh down K          end the processes left in network K's namespaces
#                          (by PID) and delete them
#   net.sh clean           the same for every namespace named lmlab*: the
#                          stale-state cleanup at the start of a run
#   net.sh setip K I ADDR  host I's address becomes ADDR (a /24)
#   net.sh addr K I        print host I's initial address
#
# Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN).
set -euo pipefail

PREFIX=lmlab

die() { echo "net.sh: $*" >&2; exit 1; }

ns_host() { echo "${PREFIX}${1}h${2}"; }
ns_br() { echo "${PREFIX}${1}br"; }
ns_atk() { echo "${PREFIX}${1}atk"; }
addr_of() { echo "10.77.${1}.$((10 + $2))"; }
atk_addr() { echo "10.77.${1}.99"; }

# end the processes still running in a namespace, by PID (only ours live there)
kill_in_ns() {
  local ns=$1 pids
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # a stopped agent cannot act on SIGTERM; SIGKILL works on it anyway
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -z "$pids" ] && return 0
    sleep 0.1
  done
}

del_ns() {
  kill_in_ns "$1"
  ip netns del "$1" 2>/dev/null || true
}

down() {
  local k=$1 ns
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${PREFIX}${k}(br|h[0-9]+|atk)$" || true); do
    del_ns "$ns"
  done
}

clean() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${PREFIX}" || true); do
    del_ns "$ns"
  done
}

# a namespace NS with eth0 = ADDR/24, its veth peer PORT a port of K's bridge
plug() {
  local k=$1 ns=$2 port=$3 addr=$4 br
  br=$(ns_br "$k")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add eth0 type veth peer name "$port" netns "$br"
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$br" link set "$port" master br0
  ip -n "$br" link set "$port" up
}

up() {
  local k=$1 n=$2 br i h
  [[ $k =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] && [ "$k" -le 99 ] || die "bad network number $k"
  down "$k"
  br=$(ns_br "$k")
  ip netns add "$br"
  ip -n "$br" link set lo up
  ip -n "$br" link add br0 type bridge
  # a lab bridge forwards at once: no STP listening/learning delay
  ip -n "$br" link set br0 type bridge forward_delay 0 stp_state 0
  ip -n "$br" link set br0 up
  for ((i = 0; i < n; i++)); do
    h=$(ns_host "$k" "$i")
    plug "$k" "$h" "vh$i" "$(addr_of "$k" "$i")"
    ip netns exec "$h" nft -f - <<EOF
table inet lmlab {
  chain input { type filter hook input priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
EOF
  done
}

# no nft table: nothing filters the attacker's own traffic
attacker() {
  local k=$1 ns
  ns=$(ns_atk "$k")
  ip netns list | awk '{print $1}' | grep -qx "$(ns_br "$k")" || die "no lab network $k"
  del_ns "$ns"
  plug "$k" "$ns" vatk "$(atk_addr "$k")"
  echo "$ns $(atk_addr "$k")"
}

setip() {
  local k=$1 i=$2 a=$3 h
  h=$(ns_host "$k" "$i")
  ip -n "$h" addr flush dev eth0
  ip -n "$h" addr add "$a/24" dev eth0
}

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and nftables)"
cmd=${1:-}
shift || true
case "$cmd" in
  up) [ $# -eq 2 ] || die "usage: net.sh up K N"; up "$1" "$2" ;;
  attacker) [ $# -eq 1 ] || die "usage: net.sh attacker K"; attacker "$1" ;;
  down) [ $# -eq 1 ] || die "usage: net.sh down K"; down "$1" ;;
  clean) clean ;;
  setip) [ $# -eq 3 ] || die "usage: net.sh setip K I ADDR"; setip "$1" "$2" "$3" ;;
  addr) addr_of "$1" "$2" ;;
  *) die "usage: net.sh up|attacker|down|clean|setip|addr ..." ;;
esac
