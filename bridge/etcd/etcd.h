/*
 * etcd.h: a small etcd v3 client on a libuv loop, for the bridge.
 *
 * etcd's gRPC API over HTTP/2 (libnghttp2, which does no I/O itself: the
 * bytes go through a uv_tcp_t, and through OpenSSL memory BIOs for TLS),
 * with messages from bridge/proto/etcd.proto encoded by protobuf-c. Only
 * what the bridge uses: Range, Put/Delete inside Txn, Lease Grant,
 * KeepAlive and Revoke, Watch, and Authenticate.
 *
 * Requests are asynchronous. As in libuv: if a function that takes a
 * callback fails, the callback is never called; otherwise it is called
 * exactly once (for a watch: until it ends), on the loop thread, also when
 * the client is closed (with LM_ETCD_ECANCELED). Pointers handed to a
 * callback are valid during the call only.
 *
 * Every request has a timeout. With a user, the client authenticates when
 * it connects and adds the token to every call; a call refused for an
 * expired or invalid token re-authenticates once and is sent again. Every
 * call carries `hasleader: true`, so a member cut off from its cluster's
 * leader refuses instead of answering stale. HTTP/2 pings keep the
 * connection checked (never closer than 5 s apart).
 *
 * Must never depend on swim/, store/ or mesh/.
 */
#ifndef LIVEMESH_BRIDGE_ETCD_H
#define LIVEMESH_BRIDGE_ETCD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Errors: negative, one space (lm_etcd_strerror / lm_etcd_err_name). */
#define LM_ETCD_ERRNO_MAP(X)                                                  \
  X(EINVAL, -1501, "invalid argument")                                        \
  X(ENOMEM, -1502, "out of memory")                                           \
  X(ECONNECT, -1503, "cannot connect to etcd")                                \
  X(ECONNRESET, -1504, "connection to etcd lost")                             \
  X(ETIMEDOUT, -1505, "etcd request timed out")                               \
  X(ECANCELED, -1506, "request canceled")                                     \
  X(EPROTO, -1507, "malformed response from etcd")                            \
  X(ETLS, -1508, "TLS error")                                                 \
  X(EGRPC, -1509, "etcd refused the request")                                 \
  X(EAUTH, -1510, "etcd authentication failed")                               \
  X(ECOMPACTED, -1511, "revision compacted")                                  \
  X(ELEASE, -1512, "lease not found")                                         \
  X(ETOOLARGE, -1513, "request too large")                                    \
  X(ENOSPACE, -1514, "etcd database space exceeded")                          \
  X(ENOLEADER, -1515, "etcd has no leader")                                   \
  X(ECLOSED, -1516, "client closed")

#define LM_ETCD_ERR_ENUM(name, code, msg) LM_ETCD_##name = (code),
enum { LM_ETCD_OK = 0, LM_ETCD_ERRNO_MAP(LM_ETCD_ERR_ENUM) };
#undef LM_ETCD_ERR_ENUM

const char *lm_etcd_strerror(int err);
const char *lm_etcd_err_name(int err);

typedef struct lm_etcd lm_etcd_t;

typedef struct lm_etcd_options {
  /* "http://HOST:PORT" (h2c) or "https://HOST:PORT" (TLS, ALPN h2); tried
   * in turn when one cannot be reached. At least one. */
  const char *const *endpoints;
  size_t nendpoints;
  /* TLS: CA bundle to verify the server (NULL: system default), client
   * certificate and key (both or neither). */
  const char *ca_file, *cert_file, *key_file;
  /* Authentication: both or neither. */
  const char *user, *password;
  uint32_t dial_timeout_ms;    /* default 3000 */
  uint32_t request_timeout_ms; /* default 5000; per request */
  uint32_t ping_interval_ms;   /* default 10000; at least 5000 */
  size_t max_response_bytes;   /* default 8 MiB; larger: LM_ETCD_EPROTO */
  /* Logging (may be NULL): LM_LOG-like levels 0 error .. 3 debug. */
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
} lm_etcd_options_t;

/* What every response says, or why there is none. */
typedef struct lm_etcd_result {
  int err;          /* 0, or LM_ETCD_E* */
  int grpc_status;  /* the gRPC status when etcd answered with one, else 0 */
  const char *message; /* etcd's error text or a description; "" when ok */
  int64_t revision; /* the response header's revision (0 on error) */
  uint64_t member_id, raft_term;
} lm_etcd_result_t;

typedef struct lm_etcd_kv {
  const uint8_t *key;
  size_t key_len;
  const uint8_t *value;
  size_t value_len;
  int64_t create_revision, mod_revision, version, lease;
} lm_etcd_kv_t;

int lm_etcd_new(lm_etcd_t **out, uv_loop_t *loop, const lm_etcd_options_t *o,
                char *err, size_t errcap);
/* Fails every pending request with LM_ETCD_ECANCELED, closes the
 * connection and frees the client; `done` (may be NULL) runs once every
 * handle is closed. */
void lm_etcd_close(lm_etcd_t *c, void (*done)(void *ud), void *ud);

/* Connection state changes: connected 1 once a session is up (and
 * authenticated), 0 when it is lost (err says why). Pending requests of a
 * lost connection fail with LM_ETCD_ECONNRESET. The next request
 * reconnects (next endpoint first). */
typedef void (*lm_etcd_state_cb)(void *ud, int connected, int err,
                                 const char *msg);
void lm_etcd_on_state(lm_etcd_t *c, lm_etcd_state_cb cb, void *ud);
int lm_etcd_connected(const lm_etcd_t *c);
/* Drops the connection (its requests fail with LM_ETCD_ECONNRESET) so the
 * next request goes to the next endpoint: for a member that answers but
 * cannot serve (no leader: a minority side). Not from inside a callback of
 * this client. 0, or LM_ETCD_EINVAL when there is no connection. */
int lm_etcd_next_endpoint(lm_etcd_t *c);

/* ---- KV ---- */

enum {
  LM_ETCD_RANGE_KEYS_ONLY = 1,
  LM_ETCD_RANGE_COUNT_ONLY = 2
};
/* Keys in [key, range_end) (range_end NULL: just `key`; "\0" of length 1:
 * every key >= key). limit 0: no limit. `more`: there were more. */
typedef void (*lm_etcd_range_cb)(void *ud, const lm_etcd_result_t *r,
                                 const lm_etcd_kv_t *kvs, size_t nkvs,
                                 int64_t count, int more);
int lm_etcd_range(lm_etcd_t *c, const uint8_t *key, size_t key_len,
                  const uint8_t *range_end, size_t range_end_len,
                  int64_t limit, int flags, lm_etcd_range_cb cb, void *ud);

/* A comparison of a Txn. */
typedef enum {
  LM_ETCD_CMP_VERSION = 0,
  LM_ETCD_CMP_CREATE = 1,
  LM_ETCD_CMP_MOD = 2,
  LM_ETCD_CMP_VALUE = 3,
  LM_ETCD_CMP_LEASE = 4
} lm_etcd_cmp_target_t;
typedef enum {
  LM_ETCD_CMP_EQUAL = 0,
  LM_ETCD_CMP_GREATER = 1,
  LM_ETCD_CMP_LESS = 2,
  LM_ETCD_CMP_NOT_EQUAL = 3
} lm_etcd_cmp_result_t;
typedef struct lm_etcd_cmp {
  lm_etcd_cmp_target_t target;
  lm_etcd_cmp_result_t result;
  const uint8_t *key;
  size_t key_len;
  int64_t number;        /* VERSION, CREATE, MOD, LEASE */
  const uint8_t *value;  /* VALUE */
  size_t value_len;
} lm_etcd_cmp_t;

typedef enum {
  LM_ETCD_OP_PUT = 0,
  LM_ETCD_OP_DELETE = 1, /* key, or [key, range_end) when range_end set */
  LM_ETCD_OP_RANGE = 2   /* key, or [key, range_end) */
} lm_etcd_op_kind_t;
typedef struct lm_etcd_op {
  lm_etcd_op_kind_t kind;
  const uint8_t *key;
  size_t key_len;
  const uint8_t *range_end; /* NULL: just key */
  size_t range_end_len;
  const uint8_t *value; /* PUT */
  size_t value_len;
  int64_t lease; /* PUT: 0 none */
} lm_etcd_op_t;

/* A transaction: if every comparison holds, `success` runs, else
 * `failure`. The callback gets which branch ran and the key-values of the
 * RANGE operations of that branch, in order. The request's encoded size
 * is checked against etcd's default limit (1.5 MiB) before sending:
 * LM_ETCD_ETOOLARGE without a callback. Everything is copied. */
typedef void (*lm_etcd_txn_cb)(void *ud, const lm_etcd_result_t *r,
                               int succeeded, const lm_etcd_kv_t *kvs,
                               size_t nkvs);
int lm_etcd_txn(lm_etcd_t *c, const lm_etcd_cmp_t *cmps, size_t ncmps,
                const lm_etcd_op_t *success, size_t nsuccess,
                const lm_etcd_op_t *failure, size_t nfailure,
                lm_etcd_txn_cb cb, void *ud);
/* The encoded size of such a transaction, for batching. */
size_t lm_etcd_txn_size(const lm_etcd_cmp_t *cmps, size_t ncmps,
                        const lm_etcd_op_t *success, size_t nsuccess,
                        const lm_etcd_op_t *failure, size_t nfailure);

/* Compaction (tests and tools). */
typedef void (*lm_etcd_done_cb)(void *ud, const lm_etcd_result_t *r);
int lm_etcd_compact(lm_etcd_t *c, int64_t revision, lm_etcd_done_cb cb,
                    void *ud);

/* ---- leases ---- */

/* id 0: etcd picks. `ttl_s` in the callback: what etcd granted. */
typedef void (*lm_etcd_lease_cb)(void *ud, const lm_etcd_result_t *r,
                                 int64_t id, int64_t ttl_s);
int lm_etcd_lease_grant(lm_etcd_t *c, int64_t ttl_s, int64_t id,
                        lm_etcd_lease_cb cb, void *ud);
int lm_etcd_lease_revoke(lm_etcd_t *c, int64_t id, lm_etcd_done_cb cb,
                         void *ud);
/* One keep-alive on the client's LeaseKeepAlive stream (opened on first
 * use, reopened after a loss). A lease that etcd no longer has (it
 * answers TTL 0) comes back as err LM_ETCD_ELEASE. */
int lm_etcd_lease_keepalive(lm_etcd_t *c, int64_t id, lm_etcd_lease_cb cb,
                            void *ud);

/* ---- watch ---- */

typedef enum {
  LM_ETCD_WATCH_CREATED = 0,  /* the watch is set up (revision: header) */
  LM_ETCD_WATCH_EVENTS = 1,   /* events[] */
  LM_ETCD_WATCH_COMPACTED = 2,/* compact_revision: start again from there */
  LM_ETCD_WATCH_CANCELED = 3, /* by etcd (result says why); the end */
  LM_ETCD_WATCH_ERROR = 4     /* the stream broke (result.err); the end */
} lm_etcd_watch_kind_t;

typedef struct lm_etcd_event {
  int is_delete; /* 0 PUT, 1 DELETE */
  lm_etcd_kv_t kv;
  int has_prev;
  lm_etcd_kv_t prev_kv;
} lm_etcd_event_t;

typedef struct lm_etcd_watch_msg {
  lm_etcd_watch_kind_t kind;
  lm_etcd_result_t result;
  int64_t compact_revision;
  const lm_etcd_event_t *events;
  size_t nevents;
} lm_etcd_watch_msg_t;

/* Watches [key, range_end) from start_revision (0: now). The callback
 * runs for every message until CANCELED or ERROR (or lm_etcd_watch_cancel,
 * after which it is not called again). `*watch_out` names the watch. */
typedef void (*lm_etcd_watch_cb)(void *ud, const lm_etcd_watch_msg_t *m);
int lm_etcd_watch(lm_etcd_t *c, const uint8_t *key, size_t key_len,
                  const uint8_t *range_end, size_t range_end_len,
                  int64_t start_revision, int prev_kv, lm_etcd_watch_cb cb,
                  void *ud, uint64_t *watch_out);
int lm_etcd_watch_cancel(lm_etcd_t *c, uint64_t watch);

/* ---- numbers, for stats ---- */
typedef struct lm_etcd_stats {
  uint64_t requests, responses, errors, timeouts, reconnects, reauths;
  uint64_t bytes_sent, bytes_received;
  uint32_t pending;
} lm_etcd_stats_t;
void lm_etcd_stats(const lm_etcd_t *c, lm_etcd_stats_t *out);

/* Range end for "every key with this prefix" (etcd's GetPrefixRangeEnd):
 * writes at most `len` bytes into `out`, returns how many (1 with "\0" when
 * the prefix is all 0xff). */
size_t lm_etcd_prefix_end(uint8_t *out, const uint8_t *prefix, size_t len);

#endif
