#!/usr/bin/env bash
# test_deb.sh BUILD_DIR: the Debian package. CPack builds it from the
# already-built tree BUILD_DIR (its CPackConfig.cmake; staging and output in
# a temporary directory, nothing rebuilt), then the test reads its control
# fields (dpkg-deb -I) and file list (dpkg-deb -c), unpacks it (dpkg-deb -x)
# into a temporary root and runs what it holds from there: the binaries,
# keygen and an agent alone on 127.0.0.1 that `livemesh members` answers
# from, stopped by SIGTERM to its PID; the unit verified against the
# unpacked binary and man pages; a program built against the unpacked
# headers, pkg-config file and shared library. Cleans up only the processes
# it started (by PID) and its own temporary directory.
set -u

. "$(dirname "$0")/lib.sh"

BUILD=${1:?usage: test_deb.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
lm_init deb
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID

echo "# cpack -G DEB (from $BUILD)"
if ! (cd "$T" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$T/pkg") >"$T/cpack.log" 2>&1; then
  bad "cpack fails"; tail -20 "$T/cpack.log"
  summary
  exit 1
fi
DEB=$(ls "$T"/pkg/livemesh_*.deb 2>/dev/null | head -1)
if [ -n "$DEB" ]; then ok "cpack built $(basename "$DEB")"; else
  bad "no livemesh_*.deb"; cat "$T/cpack.log"; exit 1
fi

echo "# dpkg-deb -I"
dpkg-deb -I "$DEB" >"$T/info" 2>&1
sed 's/^/     | /' "$T/info"
has "$T/info" '^ Package: livemesh$' "Package: livemesh"
has "$T/info" '^ Version: [0-9]+\.[0-9]+\.[0-9]+$' "Version"
has "$T/info" "^ Architecture: $(dpkg --print-architecture)$" "Architecture"
has "$T/info" '^ Maintainer: .+' "Maintainer"
has "$T/info" '^ Section: net$' "Section: net"
has "$T/info" '^ Description: .+' "Description"
for lib in libc6 libuv1 libsodium23 libmsgpackc2 libjansson4 libcurl4; do
  has "$T/info" "^ Depends: .*\\b$lib( \\(>= [^)]+\\))?(,|$)" "Depends on $lib (dpkg-shlibdeps)"
done
for f in conffiles postinst prerm postrm shlibs md5sums; do
  has "$T/info" "^ +[0-9]+ bytes, +[0-9]+ lines +\\*? +$f( |$)" "control member $f"
done
mkdir -p "$T/control"
dpkg-deb -e "$DEB" "$T/control"
has "$T/control/conffiles" '^/etc/livemesh/livemesh\.json$' "the default config is a conffile"
has "$T/control/postinst" 'useradd --system|systemd-sysusers' "postinst creates the livemesh user"
sh -n "$T/control/postinst" && sh -n "$T/control/prerm" && sh -n "$T/control/postrm" &&
  ok "maintainer scripts parse (sh -n)" || bad "a maintainer script does not parse"

echo "# dpkg-deb -c"
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's#^\./#/#' >"$T/files"
for f in /usr/bin/livemesh /usr/bin/livemesh-sim /usr/bin/livemesh-bench \
  '/usr/lib/(.*/)?liblivemesh\.so\.0' '/usr/lib/(.*/)?liblivemesh\.a' \
  '/usr/lib/(.*/)?liblivemesh\.so' /usr/include/livemesh/livemesh.h \
  /usr/include/livemesh/client.h '/usr/lib/(.*/)?pkgconfig/livemesh\.pc' \
  '/usr/lib/(.*/)?cmake/livemesh/livemeshConfig\.cmake' \
  /usr/lib/systemd/system/livemesh.service /usr/lib/sysusers.d/livemesh.conf \
  /etc/livemesh/livemesh.json '/usr/share/man/man1/livemesh\.1(\.gz)?' \
  '/usr/share/man/man5/livemesh\.json\.5(\.gz)?' \
  /usr/share/bash-completion/completions/livemesh; do
  has "$T/files" "^$f\$" "the package holds $f"
done
if grep -Eq '^/usr/local/|^/home/|^/tmp/|^/build' "$T/files"; then
  bad "the package holds files outside /usr and /etc:"; grep -E '^/usr/local/|^/home/|^/tmp/' "$T/files"
else ok "every file is under /usr or /etc"; fi

echo "# the unpacked package"
R=$T/root
dpkg-deb -x "$DEB" "$R"
LIB=$(dirname "$(find "$R/usr/lib" -name 'liblivemesh.so.0' | head -1)")
export LD_LIBRARY_PATH=$LIB
if "$R/usr/bin/livemesh" --version >"$T/out" 2>&1; then ok "livemesh --version: $(cat "$T/out")"; else bad "livemesh --version fails"; cat "$T/out"; fi
has "$T/out" '^livemesh [0-9]+\.[0-9]+\.[0-9]+$' "the version line"
"$R/usr/bin/livemesh-sim" --help >/dev/null 2>&1 && ok "livemesh-sim --help" || bad "livemesh-sim --help fails"
"$R/usr/bin/livemesh-bench" --help >/dev/null 2>&1 && ok "livemesh-bench --help" || bad "livemesh-bench --help fails"
if "$R/usr/bin/livemesh" agent --config "$R/etc/livemesh/livemesh.json" --print-config >/dev/null 2>"$T/err"; then
  ok "the unpacked agent accepts the unpacked default config"
else bad "default config refused: $(cat "$T/err")"; fi

L=$R/usr/bin/livemesh
BIN=$L # wait_ping's binary
"$L" keygen cluster --out "$T/keys" >/dev/null 2>"$T/err" &&
  "$L" keygen node --cluster-key "$T/keys/cluster.key" --name pkg1 --out "$T/pkg1" >/dev/null 2>>"$T/err" &&
  ok "keygen with the unpacked binary" || { bad "keygen fails"; cat "$T/err"; }
"$L" agent --data-dir "$T/data" --node-key "$T/pkg1/node.key" \
  --cluster-key "$T/keys/cluster.pub" --bind 127.0.0.1:0 --socket "$T/a.sock" \
  2>"$T/agent.log" &
A=$!
PIDS+=("$A")
wait_ping "$T/a.sock" && ok "the unpacked agent answers" || bad "the unpacked agent does not answer"
"$L" members -o json --socket "$T/a.sock" >"$T/members.json" 2>"$T/err"
if python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); sys.exit(0 if [(x["name"], x["status"]) for x in m] == [("pkg1", "alive")] else 1)' "$T/members.json" 2>/dev/null; then
  ok "livemesh members: pkg1 alive"
else bad "livemesh members: $(cat "$T/members.json" "$T/err")"; fi
stop "$A"
[ $RC -eq 0 ] && ok "SIGTERM: the agent exits 0" || { bad "SIGTERM: exit $RC"; tail -5 "$T/agent.log"; }

# the unit as installed, its ExecStart pointed at the unpacked binary, its
# Documentation= at the unpacked man pages
mkdir -p "$T/unit"
sed "s#^ExecStart=/usr/bin/livemesh #ExecStart=$L #" \
  "$R/usr/lib/systemd/system/livemesh.service" >"$T/unit/livemesh.service"
if (cd "$T/unit" && MANPATH="$R/usr/share/man" systemd-analyze verify ./livemesh.service) >"$T/verify" 2>&1 && [ ! -s "$T/verify" ]; then
  ok "systemd-analyze verify on the unpacked unit and man pages: no output"
else bad "systemd-analyze verify:"; sed 's/^/     | /' "$T/verify"; fi

# a program built against the unpacked headers, pkg-config and shared library
cat >"$T/v.c" <<'EOF'
#include <livemesh/livemesh.h>
#include <stdio.h>
int main(void) { printf("%s\n", lm_version()); return 0; }
EOF
PC=$(dirname "$(find "$R/usr/lib" -name livemesh.pc | head -1)")
if flags=$(PKG_CONFIG_PATH=$PC pkg-config --cflags --libs livemesh 2>"$T/err") &&
  cc -o "$T/v" "$T/v.c" $flags 2>>"$T/err" && "$T/v" >"$T/out" 2>>"$T/err"; then
  ok "a program built with pkg-config against the package runs: lm_version() = $(cat "$T/out")"
else bad "building against the package fails:"; cat "$T/err"; fi
case $flags in *"$R"*) ok "pkg-config points into the unpacked root ($flags)" ;;
*) bad "pkg-config flags do not point into the root: $flags" ;; esac

summary
