# cluster.py: the harness of the multi-process tests (tests/multiproc/*.py).
#
# A Cluster runs N real `livemesh agent` processes on 127.0.0.1, each with
# its own key, certificate, data directory, control socket and JSON log, all
# under one temporary directory:
#
#   keys/cluster.key, keys/cluster.pub      the cluster key pair
#   nXX/node.key, nXX/node.cert             node XX's identity
#   nXX/data/                               its --data-dir (generation file)
#   nXX/agent.sock                          its --socket
#   nXX/agent.log                           its stderr (--log-format json)
#
# Agents bind 127.0.0.1:0 and the harness reads the bound address from the
# "agent ... started: mesh on HOST:PORT" log line, so no port is guessed.
# n00 starts alone, n01 joins it, every other agent joins both (two seeds).
#
# Helpers: members(i) / stats(i) / ping(i) over the control socket protocol
# (docs/agent.md), cli(i, ...) runs the real client (cli_json(i, ...) with
# `-o json`, parsed), status_map(i),
# events(i) (the member events parsed from i's log), wait_until(pred, t),
# kill(i, sig), restart(i) (same key, data dir and port), wait_exit(i).
# For tests that look at packets (root): Sniffer().capture() takes UDP
# datagrams off the loopback device (or another one: Sniffer("eth0")),
# udp_rcvbuf_errors() counts what the kernel dropped for full socket
# buffers (udp_snmp() gives all the kernel's UDP counters, of the caller's
# network namespace or a process's), port_of("HOST:PORT").
# Cluster(..., agent_flags={i: [...]}) gives agent i extra flags (e.g.
# --allow-exec-checks) on every start. start() keys the agents and calls
# launch(); a test that keys its agents itself (trust.py: trusted keys in a
# config file, agent.cluster_pub None so that no --cluster-key flag
# overrides it) fills self.agents and calls launch().
#
# Cleanup: stop_all() sends SIGTERM to the PIDs this harness started, then
# SIGKILL to those still there, and removes the temporary directory (kept
# when LM_KEEP_TMP is set or a test failed with LM_KEEP_TMP_ON_FAIL). It
# runs from `with Cluster(...)`, from atexit, and on SIGTERM/SIGINT of the
# test. Every agent also gets PR_SET_PDEATHSIG=SIGKILL, so even a test that
# is SIGKILLed (ctest timeout) leaves no agent behind.
#
# Standard library only; Linux only (prctl, AF_UNIX).

import atexit
import ctypes
import datetime
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    # die with the test process, whatever kills it
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # a process group of its own: a ^C at the terminal reaches the test,
    # which then stops its agents itself
    os.setpgid(0, 0)


class ScenarioFailed(Exception):
    pass


def log(msg):
    t = time.strftime("%H:%M:%S")
    print("[%s] %s" % (t, msg), flush=True)


def wait_until(pred, timeout, interval=0.5):
    """Calls pred() until it returns something true; returns that value, or
    None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def parse_ts(ts):
    """RFC 3339 'YYYY-MM-DDTHH:MM:SS.mmmZ' -> unix seconds (float)."""
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


# The member events of mesh/agent/agent.c on_event(), and the start line.
_EVENT_RES = [
    ("joined", re.compile(r"^member (\S+) joined at (\S+) \(generation (\d+)\)")),
    ("alive", re.compile(r"^member (\S+) is alive again at (\S+) \(was (\w+); generation (\d+)\)")),
    ("suspect", re.compile(r"^member (\S+) is suspect$")),
    ("dead", re.compile(r"^member (\S+) is dead$")),
    ("left", re.compile(r"^member (\S+) left$")),
    ("updated", re.compile(r"^member (\S+) updated")),
    ("refuted", re.compile(r"^refuted a suspicion about this node \(now version (\d+)\)")),
]
_STARTED_RE = re.compile(r"^agent \S+ started: mesh on (\S+), generation (\d+)")


class Event:
    __slots__ = ("t", "kind", "who", "observer", "msg", "extra")

    def __init__(self, t, kind, who, observer, msg, extra=None):
        self.t, self.kind, self.who = t, kind, who
        self.observer, self.msg, self.extra = observer, msg, extra

    def __repr__(self):
        return "%s@%.3f:%s %s" % (self.observer, self.t, self.kind, self.who)


class Agent:
    def __init__(self, idx, name, home):
        self.idx, self.name, self.home = idx, name, home
        self.data = os.path.join(home, "data")
        self.sock = os.path.join(home, "agent.sock")
        self.logf = os.path.join(home, "agent.log")
        self.key = os.path.join(home, "node.key")
        self.proc = None
        self.addr = None       # "127.0.0.1:PORT" once started
        self.generation = None  # of the last start
        self.cluster_pub = None
        self.join = []
        self.flags = []        # extra agent flags, kept across restarts
        self.starts = 0


class Cluster:
    def __init__(self, binary, n=16, tag="mp", keep_env=False,
                 agent_flags=None):
        self.bin = os.path.abspath(binary)
        # {index: [flag, ...]}: extra flags of agent `index` (every start)
        self.agent_flags = dict(agent_flags or {})
        if not os.access(self.bin, os.X_OK):
            raise SystemExit("%s: not an executable" % self.bin)
        self.n = n
        self.tmp = tempfile.mkdtemp(prefix="lm-%s-" % tag, dir="/tmp")
        self.agents = []
        self.extra = []  # agents outside the 16 (untrusted...)
        self.failed = False
        self._stopped = False
        # the caller's environment must not steer the agents under test
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("LIVEMESH_")}
        atexit.register(self.stop_all)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)

    # ---- lifecycle -------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.failed = True
            self.dump_logs()
        self.stop_all()
        return False

    def _on_signal(self, sig, frame):
        raise SystemExit("interrupted by signal %d" % sig)

    def run(self, *args, check=True, timeout=60):
        p = subprocess.run([self.bin] + [str(a) for a in args], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise ScenarioFailed("livemesh %s: exit %d: %s" % (
                " ".join(map(str, args)), p.returncode, p.stderr.strip()))
        return p

    def keygen_cluster(self, sub="keys"):
        d = os.path.join(self.tmp, sub)
        self.run("keygen", "cluster", "--out", d)
        return os.path.join(d, "cluster.key"), os.path.join(d, "cluster.pub")

    def new_agent(self, name, cluster_key, cluster_pub, idx=None, home=None):
        """Keys an agent (not started): its home defaults to tmp/NAME."""
        home = home or os.path.join(self.tmp, name)
        self.run("keygen", "node", "--cluster-key", cluster_key, "--name",
                 name, "--out", home)
        a = Agent(idx, name, home)
        a.cluster_pub = cluster_pub
        return a

    def start(self, converge_timeout=120):
        """Keys, 16 agents, joined through n00 and n01; waits until every
        agent sees all of them alive."""
        self.ckey, self.cpub = self.keygen_cluster()
        for i in range(self.n):
            self.agents.append(self.new_agent("n%02d" % i, self.ckey,
                                              self.cpub, i))
            self.agents[-1].flags = list(self.agent_flags.get(i, ()))
        self.launch(converge_timeout)

    def launch(self, converge_timeout=120):
        """Starts self.agents (keyed already): n00 alone, n01 joining it,
        the others through both; waits until every agent sees all of them
        alive."""
        t0 = time.monotonic()
        self.spawn(self.agents[0], join=[])
        self.wait_started(self.agents[0])
        if self.n > 1:
            self.spawn(self.agents[1], join=[self.agents[0].addr])
            self.wait_started(self.agents[1])
        seeds = [a.addr for a in self.agents[:2]]
        for a in self.agents[2:]:
            self.spawn(a, join=seeds)
        for a in self.agents[2:]:
            self.wait_started(a)
        log("%d agents started in %.1f s" % (self.n, time.monotonic() - t0))
        if not self.wait_converged(converge_timeout):
            raise ScenarioFailed("setup: the %d agents did not all see each "
                                 "other alive within %d s: %s" % (
                                     self.n, converge_timeout,
                                     self.view_summary()))
        log("converged: every agent sees %d alive after %.1f s" % (
            self.n, time.monotonic() - t0))

    def spawn(self, a, join=None, bind="127.0.0.1:0", extra_args=()):
        if join is not None:
            a.join = list(join)
        args = [self.bin, "agent", "--data-dir", a.data, "--node-key", a.key,
                "--bind", bind, "--socket", a.sock, "--log-format", "json"]
        if a.cluster_pub:  # None: the trusted keys come from a config file
            args += ["--cluster-key", a.cluster_pub]
        for j in a.join:
            args += ["--join", j]
        args += list(a.flags) + list(extra_args)
        a.starts += 1
        with open(a.logf, "a") as lf:
            a.proc = subprocess.Popen(args, env=self.env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=lf,
                                      preexec_fn=_child_setup)
        return a.proc

    def wait_started(self, a, timeout=30):
        """Until `a` logged its start line (of this start) and answers ping."""
        def started():
            lines = [l for l in self.log_lines(a) if _STARTED_RE.match(l.get("msg", ""))]
            if len(lines) >= a.starts:
                m = _STARTED_RE.match(lines[-1]["msg"])
                return m
            if a.proc.poll() is not None:
                raise ScenarioFailed("%s exited with %d before starting: %s" % (
                    a.name, a.proc.returncode, self.log_tail(a)))
            return None
        m = wait_until(started, timeout, 0.05)
        if not m:
            raise ScenarioFailed("%s did not start within %d s: %s" % (
                a.name, timeout, self.log_tail(a)))
        a.addr, a.generation = m.group(1), int(m.group(2))
        if not wait_until(lambda: self.ping(a), timeout, 0.05):
            raise ScenarioFailed("%s does not answer ping" % a.name)
        return a

    def live(self):
        return [a for a in self.agents if a.proc and a.proc.poll() is None]

    def wait_converged(self, timeout, expect=None):
        """Every running agent of the 16 sees exactly the members of
        `expect` (default: all 16 names) alive."""
        names = set(expect) if expect is not None else {a.name for a in self.agents}

        def ok():
            for a in self.live():
                sm = self.status_map(a)
                if sm is None:
                    return False
                if {k for k, v in sm.items() if v == "alive"} != names:
                    return False
            return True
        return wait_until(ok, timeout, 0.5)

    def kill(self, a, sig=signal.SIGKILL):
        a = self._agent(a)
        if a.proc and a.proc.poll() is None:
            os.kill(a.proc.pid, sig)

    def wait_exit(self, a, timeout=30):
        a = self._agent(a)
        try:
            return a.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def restart(self, a, same_port=True):
        """Starts `a` again with the same key, data dir and port (the old
        process must be gone)."""
        a = self._agent(a)
        if a.proc and a.proc.poll() is None:
            raise ScenarioFailed("restart: %s is still running" % a.name)
        bind = a.addr if (same_port and a.addr) else "127.0.0.1:0"
        self.spawn(a, bind=bind)
        return self.wait_started(a)

    def stop_all(self):
        if self._stopped:
            return
        self._stopped = True
        procs = [a.proc for a in self.agents + self.extra
                 if a.proc and a.proc.poll() is None]
        for p in procs:
            try:
                os.kill(p.pid, signal.SIGCONT)  # a stopped one cannot leave
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 8
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        keep = os.environ.get("LM_KEEP_TMP") or (
            self.failed and os.environ.get("LM_KEEP_TMP_ON_FAIL"))
        if keep:
            log("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- the control socket ----------------------------------------------

    def _agent(self, a):
        return self.agents[a] if isinstance(a, int) else a

    def request(self, a, cmd, timeout=5.0):
        """One request over the control socket; the response object, or
        None if the agent cannot be reached or answers not ok."""
        a = self._agent(a)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(a.sock)
                s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
            r = json.loads(buf)
            return r if r.get("ok") else None
        except (OSError, ValueError):
            return None

    def ping(self, a):
        return self.request(a, "ping")

    def members(self, a):
        r = self.request(a, "members")
        return r["members"] if r else None

    def stats(self, a):
        r = self.request(a, "stats")
        return r["stats"] if r else None

    def status_map(self, a):
        m = self.members(a)
        return None if m is None else {x["name"]: x["status"] for x in m}

    def status_of(self, observer, name):
        sm = self.status_map(observer)
        return None if sm is None else sm.get(name)

    def member(self, observer, name):
        for m in self.members(observer) or []:
            if m["name"] == name:
                return m
        return None

    def cli(self, a, *args, check=True):
        """The real client: `livemesh ARGS --socket a.sock`."""
        a = self._agent(a)
        return self.run(*args, "--socket", a.sock, check=check)

    def cli_json(self, a, *args, check=True):
        """`livemesh ARGS -o json`: (exit status, the parsed stdout or None
        when it is not JSON) with check=False; the parsed stdout otherwise."""
        p = self.cli(a, *args, "-o", "json", check=check)
        try:
            out = json.loads(p.stdout)
        except ValueError:
            if check:
                raise ScenarioFailed("livemesh %s -o json: not JSON: %r" % (
                    " ".join(map(str, args)), p.stdout[:200]))
            out = None
        return out if check else (p.returncode, out)

    # ---- logs --------------------------------------------------------------

    def log_lines(self, a):
        a = self._agent(a)
        out = []
        try:
            with open(a.logf, errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        o = json.loads(line)
                    except ValueError:
                        o = {"msg": line, "raw": True}
                    if isinstance(o, dict):
                        out.append(o)
        except FileNotFoundError:
            pass
        return out

    def events(self, a, kinds=None, since=None):
        """The member events of `a`'s log, oldest first."""
        a = self._agent(a)
        out = []
        for o in self.log_lines(a):
            if "ts" not in o:
                continue
            msg = o.get("msg", "")
            for kind, rx in _EVENT_RES:
                m = rx.match(msg)
                if m:
                    who = a.name if kind == "refuted" else m.group(1)
                    t = parse_ts(o["ts"])
                    if (kinds is None or kind in kinds) and (since is None or t >= since):
                        out.append(Event(t, kind, who, a.name, msg, m.groups()))
                    break
        return out

    def log_tail(self, a, n=8):
        a = self._agent(a)
        try:
            with open(a.logf, errors="replace") as f:
                return " | ".join(l.strip() for l in f.readlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def dump_logs(self, n=15):
        for a in self.agents + self.extra:
            print("---- last lines of %s's log (%s)" % (a.name, a.logf))
            try:
                with open(a.logf, errors="replace") as f:
                    for l in f.readlines()[-n:]:
                        print("   | " + l.rstrip())
            except FileNotFoundError:
                print("   | (none)")
        sys.stdout.flush()

    def view_summary(self):
        """One line per running agent: the members it does not see alive."""
        parts = []
        for a in self.live():
            sm = self.status_map(a)
            if sm is None:
                parts.append("%s: no answer" % a.name)
                continue
            bad = {k: v for k, v in sm.items() if v != "alive"}
            missing = {x.name for x in self.agents} - set(sm)
            if bad or missing:
                parts.append("%s: %s%s" % (a.name, bad,
                             " missing %s" % sorted(missing) if missing else ""))
        return "; ".join(parts) or "all alive everywhere"


# ---- packets on the loopback device (hostile.py, flood.py) ----------------

class Sniffer:
    """Captures UDP datagrams on a device of the caller's network namespace
    (AF_PACKET; root), the loopback device unless told."""

    def __init__(self, ifname="lo"):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.s.bind((ifname, 0))
        self.s.setblocking(False)

    def capture(self, dport, sports, seconds, limit, saddrs=None):
        """The payloads of up to `limit` datagrams to port `dport` from a
        port in `sports` (and, when saddrs is given, from one of those IPv4
        addresses: in the lab every agent has the same port)."""
        out = []
        end = time.time() + seconds
        while time.time() < end and len(out) < limit:
            r, _, _ = select.select([self.s], [], [], 0.2)
            if not r:
                continue
            while True:
                try:
                    pkt, addr = self.s.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] == socket.PACKET_OUTGOING:
                    continue  # loopback shows each packet twice
                if len(pkt) < 14 + 20 + 8 or pkt[12:14] != b"\x08\x00":
                    continue
                ip = pkt[14:]
                ihl = (ip[0] & 0x0F) * 4
                if ip[9] != 17:
                    continue
                sp, dp, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
                if saddrs is not None and socket.inet_ntoa(ip[12:16]) not in saddrs:
                    continue
                if dp == dport and sp in sports:
                    out.append(bytes(ip[ihl + 8:ihl + ulen]))
        self.s.close()
        return out


def udp_snmp(pid=None):
    """The kernel's UDP counters ({"InDatagrams": ..., "RcvbufErrors": ...})
    of the caller's network namespace, or of process pid's (its
    /proc/PID/net/snmp: an agent in a lab namespace is read without
    entering it). {} when they cannot be read."""
    path = "/proc/net/snmp" if pid is None else "/proc/%d/net/snmp" % pid
    try:
        with open(path) as f:
            rows = [l.split() for l in f if l.startswith("Udp:")]
        return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:])}
    except (OSError, IndexError, ValueError):
        return {}


def udp_rcvbuf_errors(pid=None):
    """Datagrams the kernel dropped for a full receive buffer (in the
    caller's network namespace, or pid's), so that a stalled agent is not
    blamed for them."""
    return udp_snmp(pid).get("RcvbufErrors", 0)


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def drops(st):
    """The drop counters of a `stats` answer, by reason."""
    return dict(st.get("dropped", {})) if st else {}


def delta(after, before):
    """What grew between two drops() readings, the reasons that did."""
    return {k: v - before.get(k, 0) for k, v in after.items()
            if v - before.get(k, 0)}


def tool_beside(binary, name):
    """A test tool (tests/tools/) as built beside the agent: build/tests/NAME
    for build/mesh/livemesh."""
    return os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(binary))), "tests", name)


def main(scenarios, argv=None, tools=()):
    """Runs a test script's scenarios: argv[1] is the livemesh binary, and
    argv[2:] the paths of the test tools named in `tools`, in that order
    (those not given are looked for beside the build, tool_beside()).
    `scenarios(binary, *tool_paths)` does the work and raises on failure."""
    argv = argv or sys.argv
    usage = "usage: %s PATH/TO/livemesh%s" % (
        argv[0], "".join(" [PATH/TO/%s]" % t for t in tools))
    if len(argv) < 2:
        raise SystemExit(usage)
    paths = [os.path.abspath(argv[2 + i]) if len(argv) > 2 + i
             else tool_beside(argv[1], t) for i, t in enumerate(tools)]
    for p in paths:
        if not os.access(p, os.X_OK):
            raise SystemExit("%s: not an executable (%s)" % (p, usage))
    t0 = time.monotonic()
    try:
        scenarios(argv[1], *paths)
    except ScenarioFailed as e:
        log("FAIL %s" % e)
        log("run time %.1f s" % (time.monotonic() - t0))
        sys.exit(1)
    log("PASS (run time %.1f s)" % (time.monotonic() - t0))
