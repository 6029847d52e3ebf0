/*
 * livemesh.h: the public C API of liblivemesh.
 *
 * A node (lm_node_t) is one member of a livemesh cluster: a SWIM failure
 * detector over UDP with every datagram and stream frame signed, admitted by
 * a certificate from a trusted cluster key. Create it on your own uv_loop_t
 * (all calls then come from that loop's thread) or let it run a thread of its
 * own (then any thread may call it). There is no global state: many nodes
 * may live in one process.
 *
 * Errors are negative codes in one space, each code distinct, and
 * lm_strerror() / lm_err_name() name every one of them:
 *   -1001..-1099  the runtime's own, LM_E* below
 *   -1101..-1199  the trust layer's (keys, certificates, envelopes),
 *                 LM_TRUST_E* in mesh/trust/trust.h, e.g. -1122
 *                 LM_TRUST_ECERT_UNTRUSTED
 *   -1201..-1299  the protocol core's, SWIM_E* in swim/swim.h, e.g. -1209
 *                 SWIM_ESTATE
 *   -1301..-1399  the local view's (service lists, watches), LM_STORE_E*
 *                 in store/store.h, e.g. -1309 LM_STORE_ESTALE
 *   -1401..-1499  the service checks', e.g. -1402: exec checks are not
 *                 allowed on this node
 *   anything else a libuv error: an errno value (-1..-133 on Linux) or one
 *                 of libuv's own (UV_EOF, UV_EAI_*); uv_strerror() and
 *                 uv_err_name() explain it too.
 * A call returns the cause where there is one (a trust or core code as it
 * came up) rather than a vaguer LM_E*: lm_node_new with a certificate from
 * an untrusted cluster key returns LM_TRUST_ECERT_UNTRUSTED, not LM_ECERT;
 * lm_node_set_meta refused by the core returns the core's code.
 *
 * Callbacks take the object first. Event callbacks run on the node's loop
 * thread after the protocol core has finished its work, so they may call
 * any lm_node_* function, including lm_node_leave and lm_node_close.
 *
 * fork(): a node belongs to the process that created it. Any call on it from
 * a forked child returns LM_EFORKED and touches nothing, so a child cannot
 * corrupt the parent's membership. Pre-fork servers create one node per
 * worker after the fork, or run one agent per host and ask it over its
 * socket (see docs/embedding.md).
 *
 * Depends on libuv's header only.
 */
#ifndef LIVEMESH_LIVEMESH_H
#define LIVEMESH_LIVEMESH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LM_VERSION_STRING "0.1.0"

#define LM_ERR_BASE (-1000)       /* livemesh's codes are below this */
#define LM_ERR_TRUST_BASE (-1100) /* -1101..-1199: LM_TRUST_E* */
#define LM_ERR_CORE_BASE (-1200)  /* -1201..-1299: SWIM_E* */
#define LM_ERR_LAST (-1299)
#define LM_ERRNO_MAP(X)                                                        \
  X(EINVAL, -1001, "invalid argument")                                         \
  X(ENOMEM, -1002, "out of memory")                                            \
  X(EFORKED, -1003, "node used in a forked child; create one per process")    \
  X(ESTATE, -1004, "operation not allowed in the node's current state")        \
  X(EADDR, -1005, "bad address; expected HOST:PORT")                           \
  X(EKEY, -1006, "bad or unreadable key")                                      \
  X(ECERT, -1007, "bad, expired or untrusted certificate")                     \
  X(ENOTFOUND, -1008, "not found")                                             \
  X(EBUSY, -1009, "busy")                                                      \
  X(ETIMEDOUT, -1010, "timed out")                                             \
  X(EPROTO, -1011, "protocol error")                                           \
  X(EIO, -1012, "input/output error")                                         \
  X(EPERM, -1013, "not permitted on this node")                               \
  X(EEXIST, -1014, "already exists")                                           \
  X(ELIMIT, -1015, "over a limit")
#define LM_ERR_ENUM(n, v, s) LM_##n = v,
enum { LM_OK = 0, LM_ERRNO_MAP(LM_ERR_ENUM) };
#undef LM_ERR_ENUM

const char *lm_strerror(int err);
const char *lm_err_name(int err);
const char *lm_version(void);

#define LM_ID_LEN 32
#define LM_NAME_MAX 64
#define LM_PUBLICKEY_BYTES 32
#define LM_SECRETKEY_BYTES 64
#define LM_CERT_MAX_BYTES 186
#define LM_ADDR_STRLEN 64 /* "[v6]:port" fits */

/* ---- identity: keys and certificates ---- */

/* A node's key pair and its certificate from a cluster key. */
typedef struct lm_identity {
  uint8_t pk[LM_PUBLICKEY_BYTES];
  uint8_t sk[LM_SECRETKEY_BYTES];
  uint8_t cert[LM_CERT_MAX_BYTES];
  size_t cert_len;
} lm_identity_t;

/* A new cluster signing key pair. */
int lm_cluster_keygen(uint8_t pk[LM_PUBLICKEY_BYTES],
                      uint8_t sk[LM_SECRETKEY_BYTES]);
/* A new node key pair with a certificate for `name`, valid from now for
 * `valid_seconds`, signed by the cluster secret key. */
int lm_identity_issue(lm_identity_t *out, const char *name,
                      const uint8_t cluster_sk[LM_SECRETKEY_BYTES],
                      uint64_t valid_seconds);
/* Key and certificate files as `livemesh keygen node` writes them. Fails
 * with the trust layer's cause (LM_TRUST_EIO, LM_TRUST_EKEYFILE...), or
 * LM_ECERT when the certificate is for another key. */
int lm_identity_load(lm_identity_t *out, const char *key_file,
                     const char *cert_file);
void lm_identity_wipe(lm_identity_t *id);
/* A cluster public key file as `livemesh keygen cluster` writes it. */
int lm_cluster_pubkey_load(uint8_t pk[LM_PUBLICKEY_BYTES], const char *path);

/* ---- nodes ---- */

typedef struct lm_node lm_node_t;

typedef enum lm_status {
  LM_ALIVE = 0,
  LM_SUSPECT = 1,
  LM_DEAD = 2,
  LM_LEFT = 3
} lm_status_t;
const char *lm_status_name(lm_status_t s);

typedef struct lm_member {
  char name[LM_NAME_MAX + 1];
  uint8_t id[LM_ID_LEN];
  char addr[LM_ADDR_STRLEN];
  lm_status_t status;
  uint32_t generation, version;
  int64_t since_ms; /* unix time of the last status change, milliseconds */
  int is_self;
} lm_member_t;

typedef enum lm_event_kind {
  LM_EV_JOIN = 0,    /* a member became known or came back alive */
  LM_EV_SUSPECT = 1,
  LM_EV_DEAD = 2,
  LM_EV_LEFT = 3,
  LM_EV_UPDATE = 4,  /* an alive member changed its address or metadata */
  LM_EV_REFUTE = 5,  /* this node refuted a suspicion about itself */
  LM_EV_REAPED = 6   /* a dead or left member was forgotten */
} lm_event_kind_t;

typedef struct lm_event {
  lm_event_kind_t kind;
  lm_status_t old_status; /* meaningless when fresh */
  int fresh;              /* LM_EV_JOIN of a member never seen before */
  lm_member_t member;
} lm_event_t;

typedef void (*lm_event_cb)(lm_node_t *node, const lm_event_t *ev, void *ud);
typedef void (*lm_done_cb)(lm_node_t *node, int status, void *ud);
typedef void (*lm_log_cb)(void *ud, int level, const char *line);

enum { LM_LOG_ERROR = 0, LM_LOG_WARN = 1, LM_LOG_INFO = 2, LM_LOG_DEBUG = 3 };

typedef struct lm_options {
  const char *name;      /* required; must match the certificate */
  const char *bind;      /* "HOST:PORT" for UDP and TCP; default 0.0.0.0:7946 */
  const char *advertise; /* what others dial; default: the bound address */
  const char *cluster;   /* cluster name, default "livemesh" */
  const lm_identity_t *identity; /* required */
  const uint8_t (*trusted)[LM_PUBLICKEY_BYTES]; /* cluster public keys */
  size_t ntrusted;
  const uint8_t *secret; /* optional 32-byte cluster secret: encrypt */
  uint32_t generation;   /* 0: unix seconds now (grows across restarts) */
  /* Protocol timing; 0 takes the core's default (memberlist's LAN profile:
   * SWIM_DEFAULT_* in swim/swim.h, the values shown for reference). */
  uint32_t probe_interval_ms; /* 1000 */
  uint32_t probe_timeout_ms;  /* 500 */
  uint32_t indirect_checks;   /* 3 */
  uint32_t gossip_interval_ms;/* 200 */
  uint32_t pushpull_interval_ms; /* 60000 */
  uint32_t suspicion_min_mult;   /* 1 */
  uint32_t tombstone_ms;         /* 3600000 */
  lm_event_cb on_event;
  void *event_ud;
  lm_log_cb log;
  void *log_ud;
  int log_level; /* LM_LOG_*: lines at or below it are logged */
  /* Testing: drop this fraction (0..1) of inbound datagrams at random. */
  double test_drop_inbound;
  /* Many nodes on one loop (tests, benchmarks, simulations of a whole
   * cluster in one process): share member records with this node, which
   * must run on the same loop (not on a thread of its own), so each record
   * is kept once per process instead of once per node. */
  lm_node_t *share_records_with;
  /* Services: exec checks run commands, so they are refused unless this
   * is set; at most this many checks run at once (0: 16). */
  int allow_exec_checks;
  unsigned max_concurrent_checks;
} lm_options_t;

/* loop == NULL: the node runs on a thread of its own from lm_node_start().
 * If it fails, *out is NULL. Options are copied. */
int lm_node_new(lm_node_t **out, uv_loop_t *loop, const lm_options_t *opts);
/* Binds the sockets and starts probing. */
int lm_node_start(lm_node_t *node);
/* Contact seeds ("HOST:PORT"), retrying with backoff until one answers. */
int lm_node_join(lm_node_t *node, const char *const *seeds, size_t nseeds);
/* Graceful leave: peers mark this node LEFT. `cb` (optional) runs once the
 * leave has been sent out; the node then stops probing but stays open. */
int lm_node_leave(lm_node_t *node, lm_done_cb cb, void *ud);
/* Stops everything and frees the node; `cb` (optional) runs when it is
 * gone. Without a prior leave, peers will detect this node as dead. If the
 * node runs its own thread, this joins it before returning. */
void lm_node_close(lm_node_t *node, lm_done_cb cb, void *ud);

/* A snapshot of the members (this node included). Free with free(). */
int lm_node_members(lm_node_t *node, lm_member_t **out, size_t *count);
/* Counts of members alive or suspect, this node included. */
int lm_node_alive_count(lm_node_t *node, size_t *count);
int lm_node_self(lm_node_t *node, lm_member_t *out);
/* The address actually bound (useful with port 0). */
int lm_node_bound_addr(lm_node_t *node, char *out, size_t cap);
/* Replace this node's application metadata (<= 256 bytes) and gossip it. */
int lm_node_set_meta(lm_node_t *node, const uint8_t *meta, size_t len);
/* Replace the trusted cluster keys (key rotation without a restart). The
 * node's own certificate must still verify under the new set. The members
 * already admitted are judged again: one whose certificate a removed key
 * signed is no longer talked to and is declared dead once its probes fail,
 * until it presents a certificate that verifies. (A member whose
 * certificate expires goes the same way.) */
int lm_node_set_trusted(lm_node_t *node,
                        const uint8_t (*trusted)[LM_PUBLICKEY_BYTES],
                        size_t ntrusted);
/* Change which log lines reach the log callback. */
int lm_node_set_log_level(lm_node_t *node, int level);

typedef struct lm_stats {
  uint64_t udp_pkts_out, udp_bytes_out, udp_pkts_in, udp_bytes_in;
  uint64_t tcp_frames_out, tcp_bytes_out, tcp_frames_in, tcp_bytes_in;
  uint64_t probes, probes_failed, suspicions_raised, refutes;
  uint64_t pings, acks, ping_reqs, nacks; /* sent, by message type */
  uint64_t updates_sent, updates_applied; /* gossiped records */
  uint64_t send_errors, conns_refused;
  uint64_t test_dropped; /* inbound datagrams dropped by test_drop_inbound */
  uint32_t local_health;
  size_t members, alive;
  uint64_t dropped_total;
  /* Drops by reason, a name and a count each, zero counts omitted. */
  struct {
    const char *reason;
    uint64_t count;
  } dropped[48];
  size_t ndropped;
  /* Services */
  size_t services_local;          /* registered on this node */
  size_t services;                /* in the view, this node's included */
  size_t services_by_status[3];   /* by effective lm_svc_status_t */
  uint64_t svc_lists_sent, svc_lists_received, svc_requests_sent;
  /* check runs by kind (LM_CHECK_TTL..LM_CHECK_EXEC, minus one) and
   * result (ok, fail, timeout) */
  uint64_t check_runs[5][3];
  /* Probing: pings sent over the stream when datagrams went unanswered,
   * and the probes they saved; times this node found itself deaf and
   * fenced itself off, and times it came back (docs/protocol.md) */
  uint64_t stream_pings, stream_rescues, fences, unfences;
  /* failed probes that accused nobody, because the member signed a newer
   * incarnation (refuted) while they waited */
  uint64_t probes_stale;
  /* Wire: certificates asked of others, asked of us, and learned; pair
   * keys derived (one per member talked to); records set aside until
   * their author's certificate arrived */
  uint64_t cert_requests_sent, cert_requests_received, certs_learned;
  uint64_t pair_keys_derived, records_deferred;
  /* Stream: whole states (join, push-pull, their answers) held back while
   * this node's outgoing stream bytes were at their budget, and those
   * dropped because too many already waited (docs/protocol.md) */
  uint64_t stream_deferred, stream_deferred_dropped;
} lm_stats_t;
int lm_node_stats(lm_node_t *node, lm_stats_t *out);

#ifdef __cplusplus
}
#endif

#include <livemesh/services.h>

#endif
