/*
 * swim.h: the SWIM failure detector core of livemesh (with Lifeguard).
 *
 * The core is a pure state machine in the manner of ngtcp2: it never reads a
 * clock, never touches a socket and never calls a global RNG. Time is an
 * argument (milliseconds on any monotonic scale), randomness, packet output,
 * logging and record signing are injected callbacks. Two drivers run the very
 * same core: the libuv runtime in mesh/ and the simulator in sim/.
 *
 * Must never depend on: libuv, libsodium, mesh/, store/, bridge/.
 *
 * Driving it:
 *   swim_recv(core, from, buf, len, now)   a datagram or a stream frame
 *   swim_tick(core, now)                   run every timer due at `now`
 *   swim_next_deadline(core)               when to call swim_tick next
 * Events (join, suspect, dead, left, update) are queued while the core works
 * and delivered through cb->event once the call has finished its state
 * changes, so an event callback may read the core but never re-enters it:
 * the mutating entry points return SWIM_EBUSY from inside a callback.
 */
#ifndef LIVEMESH_SWIM_H
#define LIVEMESH_SWIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SWIM_ID_LEN 32     /* node id: an Ed25519 public key at runtime */
#define SWIM_SIG_LEN 64    /* detached signature over a record */
#define SWIM_NAME_MAX 64   /* bytes of a member name, not counting NUL */
#define SWIM_META_MAX 512  /* bytes of member metadata in its alive record */
#define SWIM_MTU 1400      /* no datagram on the wire is larger */
#define SWIM_ENVELOPE_MAX 112 /* room kept for the runtime's envelope, signature, tag */
#define SWIM_MAX_PAYLOAD (SWIM_MTU - SWIM_ENVELOPE_MAX) /* 1288 */
/* What the runtime adds to a datagram between members (its compact
 * envelope: 11-byte header, 16-byte pairwise MAC); the simulator charges
 * it per packet. mesh/trust/trust.h checks it against its own. */
#define SWIM_WIRE_ENVELOPE 27
#define SWIM_STREAM_MAX (64u * 1024 * 1024) /* push-pull frames */
/* Whole-state frames waiting for stream_busy() to clear (see there), at
 * most; beyond them one is dropped and counted, and its peer retries. */
#define SWIM_STREAM_DEFER_MAX 1024
/* While frames wait, the core wants a tick at least this often. */
#define SWIM_STREAM_DEFER_POLL_MS 20

/* Protocol defaults (memberlist's LAN profile) and the limits front ends
 * validate against. Defined here once: swim_config_default(), the runtime
 * (lm_options_t, 0 = these), the agent's config, livemesh-bench and
 * livemesh-sim all read them. Plain integers, so they can be stringified
 * into help texts. */
#define SWIM_DEFAULT_PROBE_INTERVAL_MS 1000
#define SWIM_DEFAULT_PROBE_TIMEOUT_MS 500
#define SWIM_DEFAULT_INDIRECT_CHECKS 3
#define SWIM_DEFAULT_GOSSIP_INTERVAL_MS 200
#define SWIM_DEFAULT_GOSSIP_NODES 3
#define SWIM_DEFAULT_RETRANSMIT_MULT 4
#define SWIM_DEFAULT_SUSPICION_MIN_MULT 1
#define SWIM_DEFAULT_SUSPICION_MAX_MULT 6
#define SWIM_DEFAULT_SUSPICION_CONFIRM 3
#define SWIM_DEFAULT_AWARENESS_MAX 8
#define SWIM_DEFAULT_PUSHPULL_INTERVAL_MS 60000
#define SWIM_DEFAULT_TOMBSTONE_MS 3600000
#define SWIM_DEFAULT_RECONNECT_INTERVAL_MS 10000
#define SWIM_DEFAULT_JOIN_RETRY_MS 1000
#define SWIM_MAX_JOIN_RETRY_MS 30000 /* the join backoff doubles up to this */

/* The core asks at most this many helpers per failed probe (more are
 * clamped); front ends refuse more. */
#define SWIM_MAX_INDIRECT_CHECKS 16
/* Ranges the agent's configuration accepts (and, for the settings they
 * share, livemesh-bench and livemesh-sim). */
#define SWIM_MIN_PROBE_INTERVAL_MS 10
#define SWIM_MAX_PROBE_INTERVAL_MS 600000
#define SWIM_MIN_PROBE_TIMEOUT_MS 5
#define SWIM_MAX_PROBE_TIMEOUT_MS 600000
#define SWIM_MIN_GOSSIP_INTERVAL_MS 10
#define SWIM_MAX_GOSSIP_INTERVAL_MS 600000
#define SWIM_MIN_PUSHPULL_INTERVAL_MS 1000
#define SWIM_MAX_PUSHPULL_INTERVAL_MS 86400000
#define SWIM_MAX_SUSPICION_MIN_MULT 100
#define SWIM_MIN_TOMBSTONE_MS 1000
#define SWIM_MAX_TOMBSTONE_MS 604800000

/* Error codes: negative, like libuv's, in livemesh's one error space:
 * -1201..-1299 are the core's (never errno or libuv values, nor the
 * runtime's LM_E* or the trust layer's LM_TRUST_E*), so a code that
 * travels up through the runtime keeps its meaning and lm_strerror() names
 * it. */
#define SWIM_ERRNO_MAP(X)                                                     \
  X(EINVAL, -1201, "invalid argument")                                          \
  X(ENOMEM, -1202, "out of memory")                                             \
  X(EMALFORMED, -1203, "malformed message")                                     \
  X(ETRUNC, -1204, "truncated message")                                         \
  X(EVERSION, -1205, "unknown protocol version")                                \
  X(ETOOBIG, -1206, "message too large")                                        \
  X(EBADSIG, -1207, "record signature rejected")                                \
  X(EBUSY, -1208, "core re-entered from a callback")                            \
  X(ESTATE, -1209, "operation not allowed in this state")                       \
  X(ENOTFOUND, -1210, "no such member")                                        \
  X(ENOSPACE, -1211, "does not fit in a datagram")                             \
  X(ESPOOF, -1212, "message names a sender other than the authenticated one")
#define SWIM_ERR_ENUM(n, v, s) SWIM_##n = v,
enum { SWIM_OK = 0, SWIM_ERRNO_MAP(SWIM_ERR_ENUM) };
#undef SWIM_ERR_ENUM
const char *swim_strerror(int err);

typedef struct swim_core swim_core_t;
typedef struct swim_rec_cache swim_rec_cache_t;

/* An address is an attribute of a member, never its identity. family 4 or
 * 6; the simulator uses family 4 with a virtual address. */
typedef struct swim_addr {
  uint8_t family;
  uint8_t ip[16];
  uint16_t port;
} swim_addr_t;

/* Incarnation: generation persists across restarts (the runtime stores it),
 * version is bumped to refute a suspicion or announce a change. Ordered
 * lexicographically. */
typedef struct swim_inc {
  uint32_t gen;
  uint32_t ver;
} swim_inc_t;

typedef enum swim_status {
  SWIM_ALIVE = 0,
  SWIM_SUSPECT = 1,
  SWIM_DEAD = 2,
  SWIM_LEFT = 3
} swim_status_t;

const char *swim_status_name(swim_status_t s);

/* A read-only view of one member. Pointers stay valid until the next call
 * that mutates the core. */
typedef struct swim_member {
  const uint8_t *id; /* SWIM_ID_LEN bytes */
  const char *name;  /* NUL-terminated */
  swim_addr_t addr;
  swim_inc_t inc;
  swim_status_t status;
  uint64_t since; /* time of the last status change, core time */
  const uint8_t *meta;
  size_t meta_len;
  int is_self;
} swim_member_t;

typedef enum swim_event_kind {
  SWIM_EV_JOIN = 0,    /* a member became known, or came back to alive */
  SWIM_EV_SUSPECT = 1, /* marked suspect */
  SWIM_EV_DEAD = 2,    /* declared dead */
  SWIM_EV_LEFT = 3,    /* left gracefully */
  SWIM_EV_UPDATE = 4,  /* alive member changed address or metadata */
  SWIM_EV_REFUTE = 5,  /* this node refuted a suspicion about itself */
  SWIM_EV_REAPED = 6   /* a tombstone expired and was forgotten */
} swim_event_kind_t;

typedef struct swim_event {
  swim_event_kind_t kind;
  swim_status_t old_status; /* meaningless when fresh */
  int fresh;                /* JOIN of a member this core never knew */
  swim_member_t member; /* state at delivery time */
} swim_event_t;

enum { SWIM_LOG_ERROR = 0, SWIM_LOG_WARN = 1, SWIM_LOG_INFO = 2, SWIM_LOG_DEBUG = 3 };

typedef struct swim_callbacks {
  /* Required: an unreliable datagram of at most SWIM_MAX_PAYLOAD bytes. */
  void (*send)(void *ud, const swim_addr_t *to, const uint8_t *buf, size_t len);
  /* Optional: a reliable frame (TCP at runtime) for join and push-pull. When
   * NULL, push-pull is disabled and join sends datagrams. */
  void (*send_stream)(void *ud, const swim_addr_t *to, const uint8_t *buf,
                      size_t len);
  /* Required: 64 uniformly random bits. */
  uint64_t (*rand64)(void *ud);
  /* Optional. `now` is the core time of the message. */
  void (*log)(void *ud, int level, uint64_t now, const char *msg);
  /* Optional: see the header comment. */
  void (*event)(void *ud, const swim_event_t *ev);
  /* Optional trust hooks. sign() signs this node's own alive and leave
   * records; verify() checks a record claimed by `id` (`sig` is NULL when
   * the record came unsigned). For an alive record, name and meta are the
   * record's own (the runtime keeps the member's certificate in meta); for a
   * leave they are NULL. Return 0 to accept. Without verify, records are
   * accepted as they come. */
  int (*sign)(void *ud, uint8_t sig[SWIM_SIG_LEN], const uint8_t *msg,
              size_t len);
  int (*verify)(void *ud, const uint8_t id[SWIM_ID_LEN], const uint8_t *msg,
                size_t len, const uint8_t *sig, const char *name,
                size_t name_len, const uint8_t *meta, size_t meta_len);
  /* verify() returns SWIM_VERIFY_LATER when it cannot judge the record yet
   * (it lacks the member's credential, which the runtime then fetches):
   * that record alone is skipped, the rest of the message is processed. */
  /* Optional credentials (the runtime's certificates), kept by the runtime
   * and sent once per member: in push-pull frames, each alive record is
   * preceded by its member's credential when cred_get() has one (returns
   * its length and points *out at it; 0 for none). cred_put() receives
   * each one, before the record it precedes is verified. */
  size_t (*cred_get)(void *ud, const uint8_t id[SWIM_ID_LEN],
                     const uint8_t **out);
  void (*cred_put)(void *ud, const uint8_t id[SWIM_ID_LEN],
                   const uint8_t *cred, size_t len);
  /* Optional: nonzero while the stream transport holds as many outgoing
   * bytes as it will. A whole-state frame (join, push-pull, an answer to
   * one) is then not encoded: the core notes its address and flags, one
   * entry per address, and sends the state as it is then, oldest first,
   * from a later swim_tick() or swim_stream_ready() once stream_busy()
   * returns 0. */
  int (*stream_busy)(void *ud);
} swim_callbacks_t;

#define SWIM_VERIFY_LATER 1

typedef struct swim_config {
  uint8_t id[SWIM_ID_LEN];
  char name[SWIM_NAME_MAX + 1];
  swim_addr_t addr;        /* advertised address */
  uint32_t generation;     /* bump on every restart */
  /* Timing and tuning: swim_config_default() sets each to its
   * SWIM_DEFAULT_* above. */
  uint32_t probe_interval_ms;
  uint32_t probe_timeout_ms;
  uint32_t indirect_checks;     /* at most SWIM_MAX_INDIRECT_CHECKS are used */
  uint32_t gossip_interval_ms;  /* 0 disables the gossip timer */
  uint32_t gossip_nodes;
  uint32_t retransmit_mult;     /* lambda in lambda*ceil(log10(n+1)) */
  uint32_t suspicion_min_mult;  /* min = mult*max(1,log10(n))*interval */
  uint32_t suspicion_max_mult;  /* max = mult*min */
  uint32_t suspicion_confirm;   /* confirmations that shrink max to min */
  uint32_t awareness_max;       /* Lifeguard local-health ceiling */
  uint32_t pushpull_interval_ms;/* scaled up past 32 members */
  uint32_t tombstone_ms;        /* dead/left kept this long */
  uint32_t reconnect_interval_ms;/* probe a tombstone this often */
  uint32_t join_retry_ms;       /* doubling up to SWIM_MAX_JOIN_RETRY_MS */
  uint32_t max_payload;         /* SWIM_MAX_PAYLOAD */
  /* 1: headers leave the sender out (nil), because the transport
   * authenticates it and every message is given to swim_recv_from() with
   * the sender's id8 (the runtime; the simulator models it). 8 bytes less
   * per datagram. */
  int sender_from_transport;
  const uint8_t *meta;          /* initial metadata, copied */
  size_t meta_len;
  /* Optional cache that interns alive records; many cores in one thread may
   * share one (the simulator does) so each record is stored once. */
  swim_rec_cache_t *cache;
} swim_config_t;

void swim_config_default(swim_config_t *cfg);

/* If it fails, *out is NULL and nothing is kept. */
int swim_new(swim_core_t **out, const swim_config_t *cfg,
             const swim_callbacks_t *cb, void *ud, uint64_t now);
void swim_free(swim_core_t *core);

/* A datagram or a stream frame from `from`. On error the message is dropped
 * whole, nothing about the view changes, and a per-reason counter grows. */
int swim_recv(swim_core_t *core, const swim_addr_t *from, const uint8_t *buf,
              size_t len, uint64_t now);
/* The same, from a sender the transport has authenticated: `from8` is the
 * first 8 bytes of its id (big-endian), used when the header omits it. */
int swim_recv_from(swim_core_t *core, const swim_addr_t *from, uint64_t from8,
                   const uint8_t *buf, size_t len, uint64_t now);
void swim_tick(swim_core_t *core, uint64_t now);
/* UINT64_MAX when nothing is scheduled (a stopped core). */
uint64_t swim_next_deadline(const swim_core_t *core);

/* Contact seeds (push-pull over the stream, else a ping) and keep retrying
 * with backoff until one answers. */
int swim_join(swim_core_t *core, const swim_addr_t *seeds, size_t n,
              uint64_t now);
/* Push this node's full state to `to` over the stream now (it answers with
 * its own). The runtime calls it when a datagram comes from a sender it
 * cannot authenticate yet: the exchange introduces the two. */
int swim_sync(swim_core_t *core, const swim_addr_t *to, uint64_t now);
/* Lighter: a ping over the stream to `to` carrying this node's record; the
 * answer (over the stream) carries the peer's. What the runtime does when
 * a datagram comes from a sender it cannot authenticate yet. */
int swim_introduce(swim_core_t *core, const swim_addr_t *to, uint64_t now);
/* Datagrams to `to` with the current alive records of the members named by
 * id8 (unknown ones skipped), each preceded by its credential: the answer
 * to a peer that lacked certificates to admit records we relayed. */
int swim_send_records(swim_core_t *core, const swim_addr_t *to,
                      const uint64_t *id8, size_t n, uint64_t now);
/* Announce a signed leave. The core stays usable for a short while so the
 * leave can spread; swim_leave_done() says when it has been sent out. */
int swim_leave(swim_core_t *core, uint64_t now);
int swim_leave_done(const swim_core_t *core);
/* Replace this node's metadata (and optionally address) and gossip it. */
int swim_set_meta(swim_core_t *core, const uint8_t *meta, size_t len,
                  uint64_t now);
int swim_set_addr(swim_core_t *core, const swim_addr_t *addr, uint64_t now);

/* For simulators: `core` (fresh, or not) learns every member `from` knows,
 * in the same state and incarnation, as if the two had long converged: no
 * events, nothing queued for gossip. Both must share one record cache. */
int swim_bootstrap_from(swim_core_t *core, const swim_core_t *from,
                        uint64_t now);

/* Members, this node included (always index 0). */
size_t swim_member_count(const swim_core_t *core);
int swim_member_at(const swim_core_t *core, size_t i, swim_member_t *out);
int swim_member_find(const swim_core_t *core, const uint8_t id[SWIM_ID_LEN],
                     swim_member_t *out);
/* By the first 8 bytes of the id, big-endian (what envelopes carry). */
int swim_member_find8(const swim_core_t *core, uint64_t id8,
                      swim_member_t *out);
/* The exact bytes of the newest alive record held for a member (this node
 * included), as they are relayed: an encoded update, signature included.
 * Valid until the next call into the core. */
int swim_member_record(const swim_core_t *core, uint64_t id8,
                       const uint8_t **raw, size_t *len);
/* Members that are alive or suspect, this node included. */
size_t swim_alive_count(const swim_core_t *core);
swim_inc_t swim_self_inc(const swim_core_t *core);
/* Lifeguard local-health multiplier, 0 (healthy) .. awareness_max. */
uint32_t swim_local_health(const swim_core_t *core);

/* Why received input was not taken, counted in swim_stats.dropped. The
 * first six drop a whole message. The last three are single records of an
 * accepted message, ignored: an alive or leave record older than the one
 * held (a replay, or gossip overtaken by a newer record); an accusation
 * about an incarnation the member has already refuted; and an accusation
 * about an incarnation newer than any the member has signed, which nobody
 * can have seen: it is taken at the newest signed incarnation instead
 * (docs/protocol.md, "Accusations"). */
#define SWIM_DROP_REASONS(X)                                                  \
  X(MALFORMED, "payload_malformed")                                           \
  X(TRUNCATED, "payload_truncated")                                           \
  X(VERSION, "payload_version")                                               \
  X(OVERSIZE, "payload_oversize")                                             \
  X(BADSIG, "bad_record_signature")                                           \
  X(SPOOFED, "sender_mismatch")                                               \
  X(REC_STALE, "record_stale")                                                \
  X(ACC_STALE, "accusation_stale")                                            \
  X(ACC_AHEAD, "accusation_ahead")                                            \
  X(REC_UNMATCHED, "record_unmatched")
#define SWIM_DROP_ENUM(n, s) SWIM_DROP_##n,
enum { SWIM_DROP_REASONS(SWIM_DROP_ENUM) SWIM_DROP__COUNT };
#undef SWIM_DROP_ENUM
const char *swim_drop_name(int reason);

typedef struct swim_stats {
  uint64_t pkts_out, bytes_out, pkts_in, bytes_in;
  uint64_t stream_out, stream_bytes_out, stream_in, stream_bytes_in;
  uint64_t pings, ping_reqs, acks, nacks;
  uint64_t probes, probes_failed;
  /* failed probes that accused nobody: the member signed a newer
   * incarnation while they waited */
  uint64_t probes_stale;
  uint64_t suspicions_raised, refutes, deaths_declared;
  /* times this node found itself deaf and stopped refuting (self-fencing,
   * see docs/protocol.md "Deaf members"), and times it came back */
  uint64_t fences, unfences;
  uint64_t updates_sent, updates_applied;
  uint64_t records_deferred; /* verify() said SWIM_VERIFY_LATER */
  uint64_t stream_pings, stream_rescues; /* probe fallback over the stream */
  /* whole-state frames held back while stream_busy(), and those dropped
   * because SWIM_STREAM_DEFER_MAX already waited */
  uint64_t stream_deferred, stream_deferred_dropped;
  uint64_t dropped[SWIM_DROP__COUNT];
} swim_stats_t;

const swim_stats_t *swim_stats(const swim_core_t *core);
/* Whole-state frames waiting for stream_busy() to clear, one per address. */
size_t swim_stream_deferred(const swim_core_t *core);
/* Sends the waiting whole states, oldest first, while stream_busy() allows
 * (swim_tick() does too): for the runtime to call the moment its transport
 * has room again. Does nothing else. */
int swim_stream_ready(swim_core_t *core, uint64_t now);

/* Record cache (see swim_config_t.cache). Free it after every core that
 * uses it. */
swim_rec_cache_t *swim_rec_cache_new(void);
void swim_rec_cache_free(swim_rec_cache_t *cache);
size_t swim_rec_cache_size(const swim_rec_cache_t *cache);

/* Bytes of memory that one member entry costs in a core, excluding its
 * (shareable) alive record. */
size_t swim_member_footprint(void);

/* Bytes a core holds for its gossip queues right now: they grow with a
 * burst (every member of a mass join is queued everywhere) and give the
 * room back as they drain. */
size_t swim_queue_bytes(const swim_core_t *c);

#ifdef __cplusplus
}
#endif
#endif
