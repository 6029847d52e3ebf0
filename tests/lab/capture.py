#!/usr/bin/env python3
# capture.py: takes real datagrams off a lab host's eth0, as seeds for the
# flood tool's "tamper" kind (tests/tools/flood, the lab's flood scenario).
#
#   ip netns exec lmlabKhI python3 capture.py IFACE DPORT SECONDS LIMIT OUT SADDR...
#
# It must run inside the host's namespace (an AF_PACKET socket sees the
# devices of the namespace it was made in), hence a script of its own rather
# than a function of lab.py. Keeps up to LIMIT UDP payloads to port DPORT
# from one of the SADDR addresses (the other agents) for at most SECONDS,
# writes them to OUT in the flood tool's seed format, and prints one JSON
# line: {"captured": N, "min_len": ..., "max_len": ...}.
#
# Standard library only; needs root (AF_PACKET).

import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "multiproc"))
from cluster import Sniffer  # noqa: E402
from flood import write_seeds  # noqa: E402


def main(argv):
    if len(argv) < 7:
        print("usage: capture.py IFACE DPORT SECONDS LIMIT OUT SADDR...",
              file=sys.stderr)
        return 2
    iface, dport, seconds, limit, out = argv[1], int(argv[2]), \
        float(argv[3]), int(argv[4]), argv[5]
    saddrs = set(argv[6:])
    # every lab agent sends from the port it listens on
    got = Sniffer(iface).capture(dport, {dport}, seconds, limit, saddrs=saddrs)
    write_seeds(out, got)
    lens = [len(d) for d in got] or [0]
    print(json.dumps({"captured": len(got), "min_len": min(lens),
                      "max_len": max(lens)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
