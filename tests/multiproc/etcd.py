# etcd.py: a real single-member etcd (/usr/bin/etcd, 3.4) for the bridge's
# multi-process tests and benchmarks (tests/multiproc/bridge.py,
# tests/bench/bridge_bench.py).
#
#   e = Etcd(tls=False, auth_password=None, quota_bytes=None)
#   e.start()            free loopback ports (bound to port 0 to find them),
#                        a data dir in a temp dir; waits until it answers
#   e.endpoint           "http://127.0.0.1:PORT" (https with tls=True)
#   e.stop(sig)          SIGKILL by default, by PID; e.start() again reuses
#                        the same ports and data dir (a restart)
#   e.pause()/resume()   SIGSTOP / SIGCONT
#   e.get_prefix(p)      {key: Kv} through `etcdctl get --prefix -w json`
#                        (keys and values are base64 there); Kv has .key
#                        .value (bytes) .lease .create_rev .mod_rev
#   e.get(key)           one Kv or None
#   e.revision()         the store's current revision
#   e.lease_revoke(id), e.compact(rev), e.put(k, v), e.delete(k)
#   e.ctl(*args)         any etcdctl command (ETCDCTL_API=3, the endpoint,
#                        TLS files and root user filled in)
#   decode(msg, data, proto) text format of a protobuf value, via
#                        `protoc --decode` (protobuf-compiler), parsed into
#                        a dict of scalar fields (repeated ones as lists)
#
# TLS (tls=True): a CA, a server certificate for IP:127.0.0.1 and a client
# certificate (CN "lm-client", not a user), all made with the openssl CLI
# under DIR/pki; etcd runs with --client-cert-auth, so a client needs the
# CA, cert and key (e.ca, e.cert, e.key). Auth (auth_password="PW"): user
# root with that password, auth enabled; e.ctl() logs in as root.
#
# A 3-member cluster (EtcdCluster): members e0, e1, e2, each its own client
# and peer port on 127.0.0.1 and its own data dir under one temp dir, all in
# one --initial-cluster (state new):
#
#   ec = EtcdCluster(n=3, gids={0: G})
#   ec.start()           every member spawned, then each waited for healthy
#   ec[i] / ec.members   the members (Etcd objects: every helper above
#                        through that member's own endpoint)
#   ec.endpoints         their client endpoints, e0's first
#   ec.peer_ports        their peer ports
#   ec.stop(i, sig) / ec.start_member(i) / ec.pause(i) / ec.resume(i)
#   ec.leader_seen(i)    member i's idea of the raft leader (its member id,
#                        0 when it has none), from `endpoint status`
#   ec.get_prefix(p) ... the single-member helpers, through member ec.via
#                        (0 unless set)
#   gids={i: G}          member i runs with group id G, so nftables can tell
#                        its sockets apart (`meta skgid G`) although every
#                        member is on 127.0.0.1
#
# Standard library only. Every process is started here and stopped by its
# PID (also from atexit); PR_SET_PDEATHSIG kills etcd with the test.
import atexit
import base64
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

_libc = ctypes.CDLL(None, use_errno=True)

ETCD = os.environ.get("LM_ETCD_BIN", "/usr/bin/etcd")
ETCDCTL = os.environ.get("LM_ETCDCTL_BIN", "/usr/bin/etcdctl")
SRC = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PROTO_DIR = os.path.join(SRC, "bridge", "proto")


def _child_setup(gid=None):
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgid(0, 0)
    if gid is not None:
        os.setgid(gid)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EtcdError(Exception):
    pass


class Kv:
    __slots__ = ("key", "value", "lease", "create_rev", "mod_rev", "version")

    def __init__(self, o):
        self.key = base64.b64decode(o["key"]).decode("utf-8", "replace")
        self.value = base64.b64decode(o.get("value", ""))
        self.lease = int(o.get("lease", 0))
        self.create_rev = int(o.get("create_revision", 0))
        self.mod_rev = int(o.get("mod_revision", 0))
        self.version = int(o.get("version", 0))

    def __repr__(self):
        return "Kv(%s, %d bytes, lease %x)" % (self.key, len(self.value),
                                               self.lease)


def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if p.returncode != 0:
        raise EtcdError("openssl %s: %s" % (" ".join(args), p.stderr))


def make_pki(d):
    """A CA, a server certificate (IP:127.0.0.1) and a client certificate,
    in directory d; returns (ca, server_cert, server_key, client_cert,
    client_key) paths."""
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=lm-test-ca",
             cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for who, cn in (("server", "127.0.0.1"), ("client", "lm-client")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                 who + ".key", "-out", who + ".csr", "-subj", "/CN=" + cn,
                 cwd=d)
        _openssl("x509", "-req", "-in", who + ".csr", "-CA", "ca.crt",
                 "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                 "-out", who + ".crt", "-extfile", who + ".ext", cwd=d)
    j = lambda n: os.path.join(d, n)  # noqa: E731
    return (j("ca.crt"), j("server.crt"), j("server.key"), j("client.crt"),
            j("client.key"))


class Etcd:
    def __init__(self, tls=False, auth_password=None, quota_bytes=None,
                 tmp=None, name="lmtest", client_port=None, peer_port=None,
                 initial_cluster=None, gid=None, extra_args=()):
        """initial_cluster, client_port, peer_port, gid and extra_args are
        for a member of an EtcdCluster; alone, etcd is its own cluster."""
        self.tmp = tmp or tempfile.mkdtemp(prefix="lm-etcd-", dir="/tmp")
        self.own_tmp = tmp is None
        os.makedirs(self.tmp, exist_ok=True)
        self.name = name
        self.data = os.path.join(self.tmp, "etcd.data")
        self.logf = os.path.join(self.tmp, "etcd.log")
        self.tls = tls
        self.password = auth_password
        self.quota = quota_bytes
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.initial_cluster = initial_cluster
        self.gid = gid
        self.extra_args = list(extra_args)
        scheme = "https" if tls else "http"
        self.endpoint = "%s://127.0.0.1:%d" % (scheme, self.client_port)
        self.proc = None
        self.ca = self.cert = self.key = None
        if tls:
            (self.ca, self.server_cert, self.server_key, self.cert,
             self.key) = make_pki(os.path.join(self.tmp, "pki"))
        self.env = dict(os.environ, ETCDCTL_API="3")
        for k in list(self.env):
            if k.startswith("ETCD_") or (k.startswith("ETCDCTL_") and
                                         k != "ETCDCTL_API"):
                del self.env[k]
        self._auth_on = False
        atexit.register(self.cleanup)

    # ---- life ----

    def args(self):
        a = [ETCD, "--name", self.name, "--data-dir", self.data,
             "--listen-client-urls", self.endpoint,
             "--advertise-client-urls", self.endpoint,
             "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer_port,
             "--initial-advertise-peer-urls",
             "http://127.0.0.1:%d" % self.peer_port,
             "--initial-cluster",
             self.initial_cluster or
             "%s=http://127.0.0.1:%d" % (self.name, self.peer_port),
             "--initial-cluster-state", "new",
             "--logger", "zap", "--log-level", "warn"] + self.extra_args
        if self.tls:
            a += ["--cert-file", self.server_cert, "--key-file",
                  self.server_key, "--trusted-ca-file", self.ca,
                  "--client-cert-auth"]
        if self.quota:
            a += ["--quota-backend-bytes", str(self.quota)]
        return a

    def spawn(self):
        """Starts the process without waiting for it (the members of a
        cluster only answer once a quorum runs)."""
        if self.proc and self.proc.poll() is None:
            raise EtcdError("etcd is already running")
        gid = self.gid
        with open(self.logf, "a") as lf:
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                         stdout=lf, stderr=lf,
                                         preexec_fn=lambda: _child_setup(gid))

    def start(self, timeout=30):
        self.spawn()
        return self.wait_healthy(timeout)

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise EtcdError("etcd exited with %d: %s" % (
                    self.proc.returncode, self.log_tail()))
            p = self.ctl("endpoint", "health", check=False, timeout=5,
                         user=self._auth_on)
            if p.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise EtcdError("etcd not healthy within %d s: %s %s" % (
                    timeout, p.stderr.strip(), self.log_tail()))
            time.sleep(0.2)
        if self.password and not self._auth_on:
            self.ctl("user", "add", "root:%s" % self.password, user=False)
            self.ctl("auth", "enable", user=False)
            self._auth_on = True
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGKILL, timeout=15):
        if not self.running():
            return
        try:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, sig=signal.SIGKILL):
        self.stop(sig)
        return self.start()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def cleanup(self):
        self.stop()
        if self.own_tmp and not os.environ.get("LM_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, n=10):
        try:
            with open(self.logf, errors="replace") as f:
                return " | ".join(l.strip()[:300] for l in f.readlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    # ---- etcdctl ----

    def ctl(self, *args, check=True, timeout=30, user=True, stdin=None):
        a = [ETCDCTL, "--endpoints", self.endpoint, "--command-timeout=10s"]
        if self.tls:
            a += ["--cacert", self.ca, "--cert", self.cert, "--key", self.key]
        if user and self.password and self._auth_on:
            a += ["--user", "root:%s" % self.password]
        a += [str(x) for x in args]
        p = subprocess.run(a, env=self.env, input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise EtcdError("etcdctl %s: exit %d: %s" % (
                " ".join(map(str, args)), p.returncode, p.stderr.strip()))
        return p

    def status(self):
        """`endpoint status` of this member: a dict with header.member_id,
        leader (0: none), raftTerm, raftIndex ...; None if it does not
        answer."""
        p = self.ctl("endpoint", "status", "-w", "json", check=False,
                     timeout=15)
        if p.returncode != 0:
            return None
        try:
            o = json.loads(p.stdout)
            return o[0]["Status"] if o else None
        except (ValueError, KeyError, IndexError):
            return None

    def get_json(self, key, prefix=False):
        args = ["get", key, "-w", "json"]
        if prefix:
            args.insert(2, "--prefix")
        return json.loads(self.ctl(*args).stdout)

    def get_prefix(self, prefix):
        """{key: Kv} of every key under `prefix`."""
        o = self.get_json(prefix, prefix=True)
        return {kv.key: kv for kv in (Kv(x) for x in o.get("kvs", []))}

    def get(self, key):
        o = self.get_json(key)
        kvs = o.get("kvs", [])
        return Kv(kvs[0]) if kvs else None

    def revision(self):
        return int(self.get_json("/")["header"]["revision"])

    def put(self, key, value):
        self.ctl("put", key, value)

    def delete(self, key, prefix=False):
        self.ctl("del", key, *(["--prefix"] if prefix else []))

    def lease_revoke(self, lease_id):
        self.ctl("lease", "revoke", "%x" % lease_id)

    def leases(self):
        out = self.ctl("lease", "list").stdout
        return [int(x, 16) for x in re.findall(r"^([0-9a-f]+)$", out, re.M)]

    def compact(self, rev, physical=True):
        args = ["compact", str(rev)]
        if physical:
            args.append("--physical")
        self.ctl(*args)

    def defrag(self):
        self.ctl("defrag")

    def alarms(self):
        return self.ctl("alarm", "list").stdout.strip()

    def alarm_disarm(self):
        self.ctl("alarm", "disarm")


# ---- a cluster of members on loopback ------------------------------------

class EtcdCluster:
    HELPERS = ("ctl", "get_json", "get_prefix", "get", "revision", "put",
               "delete", "lease_revoke", "leases", "compact", "defrag",
               "alarms", "alarm_disarm")

    def __init__(self, n=3, tmp=None, gids=None, extra_args=()):
        self.tmp = tmp or tempfile.mkdtemp(prefix="lm-etcdc-", dir="/tmp")
        self.own_tmp = tmp is None
        names = ["e%d" % i for i in range(n)]
        self.client_ports = [free_port() for _ in names]
        self.peer_ports = [free_port() for _ in names]
        ic = ",".join("%s=http://127.0.0.1:%d" % (nm, pp)
                      for nm, pp in zip(names, self.peer_ports))
        gids = gids or {}
        self.members = [
            Etcd(tmp=os.path.join(self.tmp, nm), name=nm,
                 client_port=self.client_ports[i],
                 peer_port=self.peer_ports[i], initial_cluster=ic,
                 gid=gids.get(i), extra_args=extra_args)
            for i, nm in enumerate(names)]
        self.endpoints = [m.endpoint for m in self.members]
        self.via = 0
        atexit.register(self.cleanup)

    def __getitem__(self, i):
        return self.members[i]

    def __len__(self):
        return len(self.members)

    def __getattr__(self, name):
        # the single-member helpers, through member `via`
        if name in EtcdCluster.HELPERS:
            return getattr(self.members[self.via], name)
        raise AttributeError(name)

    def start(self, timeout=60):
        for m in self.members:
            if not m.running():
                m.spawn()
        for m in self.members:
            m.wait_healthy(timeout)
        return self

    def start_member(self, i, timeout=30):
        return self.members[i].start(timeout)

    def stop(self, i, sig=signal.SIGKILL):
        self.members[i].stop(sig)

    def pause(self, i):
        self.members[i].pause()

    def resume(self, i):
        self.members[i].resume()

    def pids(self):
        return [m.pid for m in self.members]

    def leader_seen(self, i):
        st = self.members[i].status()
        return int(st.get("leader", 0)) if st else 0

    def member_id(self, i):
        st = self.members[i].status()
        return int(st["header"]["member_id"]) if st else 0

    def log_tails(self, n=5):
        return "\n".join("%s: %s" % (m.name, m.log_tail(n))
                         for m in self.members)

    def cleanup(self):
        for m in self.members:
            m.stop()
        if self.own_tmp and not os.environ.get("LM_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---- a member cut off from its peers (nftables) ---------------------------

NFT = (os.environ.get("LM_NFT_BIN") or shutil.which("nft") or
       "/usr/sbin/nft")


class PeerCut:
    """Cuts member i of an EtcdCluster off from the other members at the
    peer level only (its client port stays open), with nftables rules in an
    inet table of its own (`table`), created by apply() and deleted by
    remove() (also from atexit). Every member is on 127.0.0.1, so ports and
    addresses alone cannot tell member i's outgoing peer connections (from
    ephemeral ports) from the others': member i runs with a group id of its
    own (EtcdCluster(gids={i: G})) and `meta skgid G` matches its sockets.
    In the output hook (every loopback packet goes through it):
      - anything to or from member i's peer port (the others dialing it);
      - member i's packets to the others' peer ports; such a connection is
        also marked, and every packet of a marked connection is dropped, so
        the others' answers on connections member i made before the cut do
        not reach it either.
    Needs root (CAP_NET_ADMIN)."""

    MARK = 0x4c4d

    def __init__(self, ec, i, table):
        gid = ec[i].gid
        if gid is None:
            raise EtcdError("member %d runs without a gid of its own" % i)
        self.table = table
        others = [p for j, p in enumerate(ec.peer_ports) if j != i]
        self.rules = (
            "table inet %s {\n"
            "  chain output {\n"
            "    type filter hook output priority 0; policy accept;\n"
            "    ct mark 0x%x drop\n"
            "    tcp dport %d drop\n"
            "    tcp sport %d drop\n"
            "    meta skgid %d tcp dport { %s } ct mark set 0x%x drop\n"
            "  }\n"
            "}\n" % (table, self.MARK, ec.peer_ports[i], ec.peer_ports[i],
                      gid, ", ".join(map(str, others)), self.MARK))
        self.applied = False
        atexit.register(self.remove)

    @staticmethod
    def _nft(*args, stdin=None):
        return subprocess.run([NFT] + list(args), input=stdin, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def exists(self):
        return self._nft("list", "table", "inet", self.table).returncode == 0

    def apply(self):
        if self.exists():  # left over by an earlier run that was killed
            self._nft("delete", "table", "inet", self.table)
        self.applied = True  # remove() tries even if this fails half-way
        p = self._nft("-f", "-", stdin=self.rules)
        if p.returncode != 0:
            raise EtcdError("nft -f: %s" % p.stderr.strip())

    def remove(self):
        if not self.applied:
            return
        if self.exists():
            p = self._nft("delete", "table", "inet", self.table)
            if p.returncode != 0:
                raise EtcdError("nft delete table inet %s: %s" % (
                    self.table, p.stderr.strip()))
        self.applied = False

    def listing(self):
        return self._nft("list", "table", "inet", self.table).stdout


# ---- protobuf values -----------------------------------------------------

_TEXT_RE = re.compile(r'^(\s*)(\w+)(?::\s*(.*))?\s*\{?$')


def decode(message, data, proto="livemesh.proto"):
    """A protobuf value in text format through `protoc --decode`, parsed:
    top-level scalar fields as a dict (a repeated one as a list; nested
    messages as dicts of their scalars, repeated ones as lists of dicts).
    Strings are unquoted (C escapes decoded); enums stay names."""
    # livemesh.proto sits in bridge/ (where INTERFACES.md names it), the
    # others in bridge/proto/
    d = os.path.join(SRC, "bridge") if proto == "livemesh.proto" else PROTO_DIR
    p = subprocess.run(["protoc", "--decode=" + message,
                        "--proto_path=" + d, os.path.join(d, proto)],
                       input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise EtcdError("protoc --decode=%s: %s (%d bytes)" % (
            message, p.stderr.decode(errors="replace").strip(), len(data)))
    return parse_text(p.stdout.decode("utf-8", "replace"))


def _scalar(v):
    v = v.strip()
    if v.startswith('"') and v.endswith('"'):
        s = v[1:-1]
        return s.encode("latin-1", "backslashreplace").decode(
            "unicode_escape").encode("latin-1").decode("utf-8", "replace")
    try:
        return int(v)
    except ValueError:
        return v


def parse_text(text):
    root = {}
    stack = [root]
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s == "}":
            stack.pop()
            continue
        if s.endswith("{"):
            name = s[:-1].strip()
            child = {}
            cur = stack[-1]
            if name in cur:
                if not isinstance(cur[name], list) or not cur[name] or \
                        not isinstance(cur[name][0], dict):
                    cur[name] = [cur[name]]
                cur[name].append(child)
            else:
                cur[name] = child
            stack.append(child)
            continue
        name, _, val = s.partition(":")
        val = _scalar(val)
        cur = stack[-1]
        if name in cur:
            if not isinstance(cur[name], list):
                cur[name] = [cur[name]]
            cur[name].append(val)
        else:
            cur[name] = val
    return root
