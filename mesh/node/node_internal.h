/*
 * node_internal.h: what the files of mesh/node/ share: struct lm_node and
 * its connections and commands, the counters, and the cross-file helpers
 * (all named lm__). Not installed. Depends on libuv, the swim core's types
 * and the trust layer; never on store/, bridge/ or sim/.
 *
 *   node.c      lifecycle and the public lm_node_* calls, timers, logging
 *   events.c    the core's callbacks: events, sign, verify (certificates)
 *   udp.c       datagrams in and out, drops, introductions
 *   stream.c    TCP connections and frames
 *   cmdq.c      the cross-thread command queue (threaded nodes)
 *   stats.c     lm_node_stats
 *   identity.c  keygen, identity issue and load
 *   errors.c    lm_strerror, lm_err_name
 *   addr.c      HOST:PORT parsing and printing
 *   services.c  services, service lists, the view (store/)
 *   snapshot.c  the last-known view on disk, and when answers are stale
 *   certs.c     members' certificates: kept once, fetched when missing
 *   pairs.c     the keys shared with each member (datagram MACs)
 */
#ifndef LIVEMESH_MESH_NODE_INTERNAL_H
#define LIVEMESH_MESH_NODE_INTERNAL_H

#include <livemesh/livemesh.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "swim.h"
#include "trust.h"

/* "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces, IPv4). Numeric
 * hosts and "localhost" only: a liveness mesh should not hang on DNS. */
int lm__parse_hostport(const char *s, struct sockaddr_storage *out);
int lm__format_sa(const struct sockaddr *sa, char *out, size_t cap);
void lm__sa_to_swim(const struct sockaddr *sa, swim_addr_t *out);
void lm__swim_to_sa(const swim_addr_t *a, struct sockaddr_storage *out);
int lm__format_swim(const swim_addr_t *a, char *out, size_t cap);

#define MAX_CONNS 128
/* Bytes of outgoing stream frames a node holds until the kernel has taken
 * them; past this the core defers whole states (swim.h, stream_busy). One
 * frame is always let through, however large. */
#define STREAM_OUT_BUDGET (512u * 1024)
/* A receive buffer grows by at most this much beyond what has arrived
 * (or by what has arrived, when more), whatever length a frame's prefix
 * claims; before the prefix, it starts at STREAM_RX_MIN. */
#define STREAM_RX_STEP 65536
#define STREAM_RX_MIN 4096
#define CONN_TIMEOUT_MS 10000 /* whole life of a stream connection */
#define CONN_IDLE_MS 3000     /* an inbound one that sends nothing */
#define HOUSEKEEP_MS 250
#define LEAVE_MAX_MS 3000
#define DROP_LOG_GAP_MS 10000
#define FULL_INTRO_GAP_MS 1000 /* udp.c: full-state introductions at most */
#define APP_META_MAX 256
/* Bytes of a member's metadata: the seq of its service list (then the
 * application's own bytes). */
#define LM__SVC_META_LEN 8

enum { ST_NEW, ST_FAILED, ST_RUNNING, ST_LEAVING, ST_CLOSING };
enum { CMD_JOIN, CMD_LEAVE, CMD_META, CMD_CLOSE, CMD_CALL };

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  struct lm_node *node;
  struct conn *next, *prev;
  uint8_t *buf;
  size_t len, cap, want;
  uint64_t started, last_read;
  int outbound;
  int closing;
} conn_t;

typedef struct cmd {
  struct cmd *next;
  int kind;
  lm_done_cb cb;
  void *ud;
  size_t n;
  swim_addr_t *addrs;
  uint8_t meta[APP_META_MAX];
  /* CMD_CALL: run fn(node, arg) on the loop, then post `done` */
  int (*fn)(struct lm_node *n, void *arg);
  void *arg;
  int rc;
  uv_sem_t *done;
} cmd_t;

/* A record cache shared by the nodes of one loop; the last one frees it. */
typedef struct shared_cache {
  swim_rec_cache_t *cache;
  unsigned refs;
  /* Signature checks already passed by a node of this loop (certs.c):
   * 16-byte digests of (what was checked, against which keys). */
  uint8_t (*memo)[16];
  size_t memo_cap, memo_n;
  struct lm__certs *certs; /* certs.c: the certificates, kept once */
} shared_cache_t;

struct lm_node {
  shared_cache_t *records;
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int threaded, thread_started;
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_async_t async;
  cmd_t *cmds, *cmds_tail;
  pid_t pid;
  volatile const uint8_t *fork_marker; /* see lm__forked */
  /* unix ms at loop time 0, fixed at start, so a time the core gives is
   * turned into the same unix time on every read */
  int64_t unix_base_ms;
  int state;
  int open_handles;

  char name[LM_NAME_MAX + 1];
  lm_options_t opt;
  struct sockaddr_storage bind_sa, adv_sa;
  int adv_given;

  lm_keypair_t kp;
  lm_cert_t cert;
  uint8_t cert_raw[LM_CERT_MAX];
  size_t cert_len;
  lm_cluster_t cluster;
  lm_trust_set_t trust;
  unsigned trust_gen; /* bumped by lm_node_set_trusted (certs.c rechecks) */
  lm_sender_t tx;
  lm_receiver_t rx;
  swim_core_t *core;
  uint8_t meta[LM__SVC_META_LEN + APP_META_MAX];
  size_t meta_len;
  uint8_t app_meta[APP_META_MAX];
  size_t app_meta_len;
  struct lm__svc *svc; /* services.c */
  struct lm__snap *snap; /* snapshot.c */
  struct lm__certs *certs; /* certs.c */
  struct lm__pairs *pairs; /* pairs.c */
  uint64_t pairs_derived, dgrams_signed, dgrams_maced;
  /* test_drop_inbound also stalls outbound connections (stream.c) */
  struct lm__stall *stalled;
  uint64_t tcp_stalls;
  /* the sender of the message being delivered (certs.c asks it for the
   * certificates it lacked) */
  swim_addr_t cur_from;
  int cur_from_set, cur_from_stream;
  uint64_t cert_reqs_out, cert_reqs_in, certs_learned;
  uint64_t last_peer_rx; /* loop ms of the last message from anyone */

  uv_udp_t udp;
  uv_tcp_t listener;
  uv_timer_t timer, housekeeping;
  conn_t *conns;
  int nconns;
  size_t stream_out; /* bytes of outgoing frames not yet written */
  uint8_t rbuf[2048]; /* > SWIM_MTU, so oversize datagrams show as partial */
  uint8_t sbuf[SWIM_MTU];

  lm_event_t *evs;
  size_t nev, capev;
  int in_dispatch, close_pending;
  int tick_deferred; /* lm__on_timer: a poll phase first */
  lm_done_cb close_cb;
  void *close_ud;
  lm_done_cb leave_cb;
  void *leave_ud;
  uint64_t leave_started;

  uint64_t rng[2];
  uint64_t udp_pkts_out, udp_bytes_out, udp_pkts_in, udp_bytes_in;
  uint64_t tcp_frames_out, tcp_bytes_out, tcp_frames_in, tcp_bytes_in;
  uint64_t send_errors, test_dropped, conn_refused;
  uint64_t drops[LM_TRUST_ERR_COUNT];
  uint64_t drop_oversize_udp;
  uint64_t last_drop_log, drops_since_log, last_version_log;
  struct {
    swim_addr_t addr;
    uint64_t at;
  } intro[16]; /* recent introductions to unknown senders */
  unsigned intro_next;
  uint64_t last_full_intro;
};

/* Counters are written on the loop thread and may be read from any thread
 * (lm_node_stats on a threaded node): relaxed atomics, no lock needed. */
#define CNT_ADD(x, v) __atomic_fetch_add(&(x), (uint64_t)(v), __ATOMIC_RELAXED)
#define CNT_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* ---- node.c ---- */
void lm__node_log(lm_node_t *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t lm__node_unix_ms(void);
uint64_t lm__node_rand(lm_node_t *n);
/* A node belongs to the process that made it. The check runs on every
 * call, is_up included, so it must not cost a system call: a byte on a
 * page marked MADV_WIPEONFORK reads 1 in the creating process and 0 in any
 * forked child. Where that cannot be had, the pid is compared. */
static inline int lm__forked(const lm_node_t *n) {
  return n->fork_marker ? *n->fork_marker == 0 : getpid() != n->pid;
}
static inline uint64_t lm__now_ms(lm_node_t *n) { return uv_now(n->loop); }
/* A time of the core (loop milliseconds) as unix milliseconds. */
static inline int64_t lm__core_to_unix_ms(const lm_node_t *n, uint64_t t) {
  return n->unix_base_ms + (int64_t)t;
}
/* Re-arms the core's timer from its next deadline. */
void lm__rearm(lm_node_t *n);
void lm__on_timer(uv_timer_t *t);
/* Runs on the loop thread: the first call closes every handle; the last
 * close callback calls it again to finish. */
void lm__do_close(lm_node_t *n);
int lm__apply_join(lm_node_t *n, const swim_addr_t *a, size_t k);
int lm__apply_leave(lm_node_t *n, lm_done_cb cb, void *ud);
int lm__apply_meta(lm_node_t *n, const uint8_t *meta, size_t len);

/* ---- events.c ---- */
void lm__to_member(lm_node_t *n, const swim_member_t *m, lm_member_t *out);
/* Delivers queued events; called with the lock released, after every core
 * call. */
void lm__dispatch(lm_node_t *n);
void lm__core_event(void *ud, const swim_event_t *ev);
uint64_t lm__core_rand(void *ud);
void lm__core_log(void *ud, int level, uint64_t now, const char *msg);
int lm__core_sign(void *ud, uint8_t sig[SWIM_SIG_LEN], const uint8_t *msg,
                  size_t len);
int lm__core_verify(void *ud, const uint8_t id[SWIM_ID_LEN],
                    const uint8_t *msg, size_t len, const uint8_t *sig,
                    const char *name, size_t name_len, const uint8_t *meta,
                    size_t meta_len);
int lm__key_lookup(void *ud, uint64_t hint, uint8_t pk[LM_PUBLICKEY_LEN]);

/* ---- udp.c ---- */
void lm__core_send(void *ud, const swim_addr_t *to, const uint8_t *buf,
                   size_t len);
void lm__on_udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
void lm__on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                const struct sockaddr *addr, unsigned flags);
void lm__count_drop(lm_node_t *n, int rc, const struct sockaddr *from);
/* from8: the authenticated sender (its key hint), for headers that omit it */
void lm__deliver(lm_node_t *n, const struct sockaddr *from, uint64_t from8,
                 const uint8_t *p, size_t len);

/* ---- stream.c ---- */
void lm__conn_close(conn_t *c);
void lm__core_send_stream(void *ud, const swim_addr_t *to, const uint8_t *buf,
                          size_t len);
void lm__on_accept(uv_stream_t *server, int status);
int lm__core_stream_busy(void *ud);
/* Sends the stalled frames that are due (all: drop them instead). */
void lm__stream_stalled(lm_node_t *n, int drop_all);

/* ---- services.c ---- */
enum {
  LM__SVC_DROP_MALFORMED,
  LM__SVC_DROP_BADSIG,
  LM__SVC_DROP_UNKNOWN,
  LM__SVC_DROP_STALE,
  LM__SVC_DROP_COUNT
};
struct lm__svc;
int lm__svc_new(lm_node_t *n);
int lm__svc_start(lm_node_t *n);
void lm__svc_close(lm_node_t *n, uv_close_cb closed);
void lm__svc_free(lm_node_t *n);
size_t lm__svc_meta(const lm_node_t *n, uint8_t out[LM__SVC_META_LEN]);
void lm__svc_member_event(lm_node_t *n, const swim_event_t *ev);
int lm__svc_is_msg(const uint8_t *p, size_t len);
void lm__svc_recv(lm_node_t *n, const struct sockaddr *from, const uint8_t *p,
                  size_t len);
void lm__svc_dispatch(lm_node_t *n);
void lm__svc_on_tick(uv_timer_t *t);
void lm__svc_stats(lm_node_t *n, lm_stats_t *o);
/* The node's view (tests; take n->mu on a threaded node). */
struct lm_store *lm__svc_store(lm_node_t *n);

/* ---- certs.c ---- */
int lm__certs_put(lm_node_t *n, const uint8_t *id, const uint8_t *raw,
                  size_t len);
const uint8_t *lm__certs_get(lm_node_t *n, const uint8_t *id, size_t *len);
int lm__certs_ok(lm_node_t *n, const uint8_t *id);
int lm__certs_check(lm_node_t *n, const uint8_t *id, const char *name,
                    size_t name_len);
void lm__certs_want(lm_node_t *n, const uint8_t *id);
void lm__certs_flush(lm_node_t *n);
int lm__certs_is_msg(const uint8_t *p, size_t len);
void lm__certs_recv(lm_node_t *n, const struct sockaddr *from,
                    const uint8_t *p, size_t len);
void lm__certs_free(lm_node_t *n);
void lm__certs_store_free(struct lm__certs *c);
size_t lm__core_cred_get(void *ud, const uint8_t id[SWIM_ID_LEN],
                         const uint8_t **out);
void lm__core_cred_put(void *ud, const uint8_t id[SWIM_ID_LEN],
                       const uint8_t *cred, size_t len);

/* Nodes that share one record cache (one loop, one process) also share
 * which signatures they have checked: 1 if `parts` (concatenated) passed
 * before. lm__memo_put records that they did. Without sharing, always 0. */
int lm__memo_has(lm_node_t *n, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen);
void lm__memo_put(lm_node_t *n, const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen);

/* ---- pairs.c ---- */
void lm__pairs_saw(lm_node_t *n, const swim_addr_t *a, const uint8_t *pk);
const lm_pair_t *lm__pair_for_addr(lm_node_t *n, const swim_addr_t *to);
const lm_pair_t *lm__pair_lookup(void *ud, uint32_t hint32, unsigned i);
void lm__pairs_free(lm_node_t *n);

/* ---- snapshot.c ---- */
struct lm__snap;
void lm__snap_free(lm_node_t *n);
/* Lock held: 1 while the node is cut off (the view is held). */
int lm__snap_frozen(lm_node_t *n);
/* Lock held, before the view takes the core's news about member `id`
 * (its new LM_STORE_* status, or reaped). */
void lm__snap_member_change(lm_node_t *n, const uint8_t *id, int status,
                            int reaped);
/* After every core call, without the lock: stale or not, cut off or not. */
void lm__snap_update(lm_node_t *n);

/* ---- node.c, for services.c ---- */
/* Runs fn(n, arg) on the loop thread and returns its result: at once on
 * the loop thread, else posted to a threaded node's loop and waited for. */
int lm__node_call(lm_node_t *n, int (*fn)(lm_node_t *n, void *arg),
                  void *arg);
/* Rebuilds this node's metadata (certificate, service seq, application
 * metadata) and announces it. */
int lm__node_refresh_meta(lm_node_t *n);
size_t lm__node_max_datagram(const lm_node_t *n);
/* Whether the caller runs on the node's loop thread. */
int lm__node_on_loop(const lm_node_t *n);
void lm__node_handle_closed(uv_handle_t *h);
void lm__node_checker_closed(void *ud);

/* ---- cmdq.c ---- */
void lm__on_async(uv_async_t *a);
int lm__post(lm_node_t *n, cmd_t *c);

#endif
