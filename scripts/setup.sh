#!/usr/bin/env bash
# Installs the Debian packages livemesh needs (only those missing) and builds
# it into build/. Safe to run again: it installs nothing twice and rebuilds
# only what changed. Used by scripts/run.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  libmsgpack-dev libuv1-dev libsodium-dev libjansson-dev
  libcurl4-openssl-dev libmicrohttpd-dev curl openssl
  libcmocka-dev clang libclang-rt-14-dev
  iproute2 nftables procps python3 jq
  prometheus
  etcd-server etcd-client protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
  libnghttp2-dev libssl-dev
  systemd groff-base man-db dpkg-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "livemesh: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# build [DIR] [extra cmake args...]
build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)" -- --no-print-directory -s
}

if [ "${LIVEMESH_SETUP_ONLY_DEPS:-0}" != 1 ]; then
  build build
fi
