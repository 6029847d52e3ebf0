/*
 * node.c: lm_node_t, the libuv runtime around one swim core.
 *
 * Inbound: UDP datagram or TCP frame -> envelope check (size, version,
 * cluster, sender, signature, replay) -> swim_recv -> events queued ->
 * delivered to the user after the core and the node's lock are released.
 * Outbound: the core's send/send_stream callbacks -> seal -> UDP or a
 * short-lived TCP connection. The core's next deadline drives one uv timer.
 *
 * Every piece of state hangs off the node; nothing is global. Must never
 * depend on store/ or bridge/.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "node_internal.h"
#include "trust.h"

#define MAX_CONNS 128
#define CONN_TIMEOUT_MS 10000 /* whole life of a stream connection */
#define CONN_IDLE_MS 3000     /* an inbound one that sends nothing */
#define HOUSEKEEP_MS 250
#define LEAVE_MAX_MS 3000
#define DROP_LOG_GAP_MS 10000
#define APP_META_MAX 256

enum { ST_NEW, ST_FAILED, ST_RUNNING, ST_LEAVING, ST_CLOSING };
enum { CMD_JOIN, CMD_LEAVE, CMD_META, CMD_CLOSE };

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
} cmd_t;

/* A record cache shared by the nodes of one loop; the last one frees it. */
typedef struct shared_cache {
  swim_rec_cache_t *cache;
  unsigned refs;
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
  lm_sender_t tx;
  lm_receiver_t rx;
  swim_core_t *core;
  uint8_t meta[2 + LM_CERT_MAX + APP_META_MAX];
  size_t meta_len;

  uv_udp_t udp;
  uv_tcp_t listener;
  uv_timer_t timer, housekeeping;
  conn_t *conns;
  int nconns;
  uint8_t rbuf[2048]; /* > SWIM_MTU, so oversize datagrams show as partial */
  uint8_t sbuf[SWIM_MTU];

  lm_event_t *evs;
  size_t nev, capev;
  int in_dispatch, close_pending;
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
  uint64_t last_drop_log, drops_since_log;
  struct {
    swim_addr_t addr;
    uint64_t at;
  } intro[16]; /* recent introductions to unknown senders */
  unsigned intro_next;
};

/* Counters are written on the loop thread and may be read from any thread
 * (lm_node_stats on a threaded node): relaxed atomics, no lock needed. */
#define CNT_ADD(x, v) __atomic_fetch_add(&(x), (uint64_t)(v), __ATOMIC_RELAXED)
#define CNT_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* ---- errors and logging ---- */

const char *lm_strerror(int err) {
#define LM_ERR_STR(n, v, s)                                                    \
  case v:                                                                      \
    return s;
  switch (err) {
  case 0:
    return "success";
    LM_ERRNO_MAP(LM_ERR_STR)
  default:
    return err < 0 && err > -1000 ? uv_strerror(err) : "unknown error";
  }
#undef LM_ERR_STR
}

const char *lm_err_name(int err) {
#define LM_ERR_NAME(n, v, s)                                                   \
  case v:                                                                      \
    return "LM_" #n;
  switch (err) {
  case 0:
    return "LM_OK";
    LM_ERRNO_MAP(LM_ERR_NAME)
  default:
    return err < 0 && err > -1000 ? uv_err_name(err) : "LM_UNKNOWN";
  }
#undef LM_ERR_NAME
}

const char *lm_version(void) { return LM_VERSION_STRING; }

const char *lm_status_name(lm_status_t s) {
  return swim_status_name((swim_status_t)s);
}

static void nlog(lm_node_t *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void nlog(lm_node_t *n, int level, const char *fmt, ...) {
  if (!n->opt.log || level > n->opt.log_level)
    return;
  char buf[512];
  int k = snprintf(buf, sizeof buf, "%s: ", n->name);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
  va_end(ap);
  n->opt.log(n->opt.log_ud, level, buf);
}

static int forked(const lm_node_t *n) { return getpid() != n->pid; }

static uint64_t now_ms(lm_node_t *n) { return uv_now(n->loop); }

static int64_t unix_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static uint64_t next_rand(lm_node_t *n) {
  /* xorshift128+, seeded from libsodium's CSPRNG: the protocol only needs
   * unpredictable-enough shuffles, not key material */
  uint64_t s1 = n->rng[0];
  const uint64_t s0 = n->rng[1];
  n->rng[0] = s0;
  s1 ^= s1 << 23;
  n->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return n->rng[1] + s0;
}

/* ---- identity ---- */

int lm_cluster_keygen(uint8_t pk[LM_PUBLICKEY_BYTES],
                      uint8_t sk[LM_SECRETKEY_BYTES]) {
  lm_keypair_t kp;
  if (lm_keypair_generate(&kp))
    return LM_EKEY;
  memcpy(pk, kp.pk, sizeof kp.pk);
  memcpy(sk, kp.sk, sizeof kp.sk);
  lm_keypair_wipe(&kp);
  return 0;
}

int lm_identity_issue(lm_identity_t *out, const char *name,
                      const uint8_t cluster_sk[LM_SECRETKEY_BYTES],
                      uint64_t valid_seconds) {
  lm_keypair_t node, cl;
  memset(out, 0, sizeof *out);
  if (!name || !*name || strlen(name) > LM_NAME_MAX || !valid_seconds)
    return LM_EINVAL;
  if (lm_keypair_generate(&node))
    return LM_EKEY;
  memcpy(cl.sk, cluster_sk, sizeof cl.sk);
  memcpy(cl.pk, cluster_sk + 32, sizeof cl.pk); /* Ed25519 sk = seed || pk */
  uint64_t now = (uint64_t)time(NULL);
  lm_cert_t cert;
  int rc = lm_cert_issue(&cert, node.pk, name, now - 60, now + valid_seconds,
                         &cl);
  lm_keypair_wipe(&cl);
  if (rc == 0)
    rc = lm_cert_encode(out->cert, sizeof out->cert, &out->cert_len, &cert);
  if (rc) {
    lm_keypair_wipe(&node);
    return LM_ECERT;
  }
  memcpy(out->pk, node.pk, sizeof out->pk);
  memcpy(out->sk, node.sk, sizeof out->sk);
  lm_keypair_wipe(&node);
  return 0;
}

int lm_identity_load(lm_identity_t *out, const char *key_file,
                     const char *cert_file) {
  lm_keypair_t kp;
  lm_cert_t cert;
  memset(out, 0, sizeof *out);
  if (lm_keypair_load(&kp, key_file) != 0)
    return LM_EKEY;
  if (lm_cert_load(&cert, cert_file) != 0 ||
      memcmp(cert.node_pk, kp.pk, sizeof kp.pk) != 0 ||
      lm_cert_encode(out->cert, sizeof out->cert, &out->cert_len, &cert)) {
    lm_keypair_wipe(&kp);
    return LM_ECERT;
  }
  memcpy(out->pk, kp.pk, sizeof out->pk);
  memcpy(out->sk, kp.sk, sizeof out->sk);
  lm_keypair_wipe(&kp);
  return 0;
}

int lm_cluster_pubkey_load(uint8_t pk[LM_PUBLICKEY_BYTES], const char *path) {
  return lm_pubkey_load(pk, path) == 0 ? 0 : LM_EKEY;
}

void lm_identity_wipe(lm_identity_t *id) {
  volatile uint8_t *p = (volatile uint8_t *)id;
  for (size_t i = 0; i < sizeof *id; i++)
    p[i] = 0;
}

/* ---- events ---- */

static void to_member(lm_node_t *n, const swim_member_t *m, lm_member_t *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", m->name);
  memcpy(out->id, m->id, LM_ID_LEN);
  lm__format_swim(&m->addr, out->addr, sizeof out->addr);
  out->status = (lm_status_t)m->status;
  out->generation = m->inc.gen;
  out->version = m->inc.ver;
  uint64_t now = now_ms(n);
  out->since_ms = unix_ms() - (int64_t)(now > m->since ? now - m->since : 0);
  out->is_self = m->is_self;
}

static void core_event(void *ud, const swim_event_t *ev) {
  lm_node_t *n = ud;
  if (n->nev == n->capev) {
    size_t cap = n->capev ? n->capev * 2 : 16;
    lm_event_t *v = realloc(n->evs, cap * sizeof *v);
    if (!v)
      return;
    n->evs = v;
    n->capev = cap;
  }
  lm_event_t *e = &n->evs[n->nev++];
  e->kind = (lm_event_kind_t)ev->kind;
  e->old_status = (lm_status_t)ev->old_status;
  e->fresh = ev->fresh;
  to_member(n, &ev->member, &e->member);
  nlog(n, LM_LOG_DEBUG, "%s %s -> %s", e->member.name,
       swim_status_name(ev->old_status), swim_status_name(ev->member.status));
}

static void do_close(lm_node_t *n);
static void on_timer(uv_timer_t *t);

static void rearm(lm_node_t *n) {
  if (n->state == ST_CLOSING || !n->core)
    return;
  uint64_t d = swim_next_deadline(n->core), now = now_ms(n);
  if (d == UINT64_MAX)
    uv_timer_stop(&n->timer);
  else
    uv_timer_start(&n->timer, on_timer, d > now ? d - now : 0, 0);
}

/* Called with the lock released, after every core call. */
static void dispatch(lm_node_t *n) {
  rearm(n);
  if (n->in_dispatch)
    return;
  n->in_dispatch = 1;
  for (size_t i = 0; i < n->nev && !n->close_pending; i++)
    if (n->opt.on_event)
      n->opt.on_event(n, &n->evs[i], n->opt.event_ud);
  n->nev = 0;
  n->in_dispatch = 0;
  if (n->close_pending)
    do_close(n);
}

/* ---- core callbacks ---- */

static uint64_t core_rand(void *ud) { return next_rand(ud); }

static void core_log(void *ud, int level, uint64_t now, const char *msg) {
  (void)now;
  nlog(ud, level, "%s", msg);
}

static int core_sign(void *ud, uint8_t sig[SWIM_SIG_LEN], const uint8_t *msg,
                     size_t len) {
  lm_node_t *n = ud;
  return lm_rec_sign(sig, msg, len, &n->kp) == 0 ? 0 : -1;
}

/* The member's current record already carries these very certificate
 * bytes, checked when it arrived: only the record's own signature is new.
 * (A certificate that expires meanwhile is caught when it is replaced.) */
static int cert_known(lm_node_t *n, const uint8_t id[SWIM_ID_LEN],
                      const uint8_t *meta, size_t cert_part) {
  swim_member_t m;
  if (swim_member_find(n->core, id, &m) != 0 || m.is_self ||
      m.meta_len < cert_part)
    return 0;
  return memcmp(m.meta, meta, cert_part) == 0;
}

/* An alive record is admitted only with a certificate, in its metadata,
 * that a trusted cluster key issued for this very key and name. */
static int core_verify(void *ud, const uint8_t id[SWIM_ID_LEN],
                       const uint8_t *msg, size_t len, const uint8_t *sig,
                       const char *name, size_t name_len, const uint8_t *meta,
                       size_t meta_len) {
  lm_node_t *n = ud;
  if (!sig)
    return -1;
  if (meta) {
    if (meta_len < 2)
      return -1;
    size_t cl = ((size_t)meta[0] << 8) | meta[1];
    lm_cert_t cert;
    if (cl > meta_len - 2 || lm_cert_decode(&cert, meta + 2, cl) != (int)cl)
      return -1;
    if (cert_known(n, id, meta, cl + 2))
      return lm_rec_verify(sig, msg, len, id) == 0 ? 0 : -1;
    if (memcmp(cert.node_pk, id, SWIM_ID_LEN) != 0 ||
        strlen(cert.name) != name_len || memcmp(cert.name, name, name_len))
      return -1;
    int rc = lm_cert_verify(&n->trust, &cert, (uint64_t)time(NULL));
    if (rc) {
      nlog(n, LM_LOG_WARN, "record for %.*s refused: %s", (int)name_len, name,
           lm_trust_strerror(rc));
      return -1;
    }
  }
  return lm_rec_verify(sig, msg, len, id) == 0 ? 0 : -1;
}

static void core_send(void *ud, const swim_addr_t *to, const uint8_t *buf,
                      size_t len) {
  lm_node_t *n = ud;
  size_t out_len;
  if (lm_env_seal(n->sbuf, sizeof n->sbuf, &out_len, buf, len, &n->tx)) {
    CNT_ADD(n->send_errors, 1);
    return;
  }
  struct sockaddr_storage sa;
  lm__swim_to_sa(to, &sa);
  uv_buf_t b = uv_buf_init((char *)n->sbuf, (unsigned)out_len);
  int rc = uv_udp_try_send(&n->udp, &b, 1, (const struct sockaddr *)&sa);
  if (rc < 0) {
    CNT_ADD(n->send_errors, 1);
    return;
  }
  CNT_ADD(n->udp_pkts_out, 1);
  CNT_ADD(n->udp_bytes_out, out_len);
}

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  lm_node_t *n = c->node;
  free(c->buf);
  free(c);
  n->open_handles--;
  if (n->state == ST_CLOSING && n->open_handles == 0)
    do_close(n);
}

static void conn_close(conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  lm_node_t *n = c->node;
  if (c->prev)
    c->prev->next = c->next;
  else
    n->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  n->nconns--;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static conn_t *conn_new(lm_node_t *n, int outbound) {
  if (n->nconns >= MAX_CONNS) {
    CNT_ADD(n->conn_refused, 1);
    return NULL;
  }
  conn_t *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (uv_tcp_init(n->loop, &c->tcp)) {
    free(c);
    return NULL;
  }
  c->tcp.data = c;
  c->node = n;
  c->outbound = outbound;
  c->started = c->last_read = now_ms(n);
  c->next = n->conns;
  if (n->conns)
    n->conns->prev = c;
  n->conns = c;
  n->nconns++;
  n->open_handles++;
  return c;
}

static void on_written(uv_write_t *req, int status) {
  conn_t *c = req->data;
  if (status)
    CNT_ADD(c->node->send_errors, 1);
  conn_close(c);
}

static void on_connected(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (status) {
    if (status != UV_ECANCELED) {
      CNT_ADD(c->node->send_errors, 1);
      nlog(c->node, LM_LOG_DEBUG, "stream connect failed: %s",
           uv_strerror(status));
    }
    conn_close(c);
    return;
  }
  uv_buf_t b = uv_buf_init((char *)c->buf, (unsigned)c->len);
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written))
    conn_close(c);
}

static void core_send_stream(void *ud, const swim_addr_t *to,
                             const uint8_t *buf, size_t len) {
  lm_node_t *n = ud;
  size_t cap = len + LM_ENV_OVERHEAD_ENC + LM_FRAME_PREFIX_LEN + 2 + LM_CERT_MAX;
  uint8_t *frame = malloc(cap);
  size_t flen;
  if (!frame || lm_env_seal_frame(frame, cap, &flen, buf, len, &n->tx, 1)) {
    free(frame);
    CNT_ADD(n->send_errors, 1);
    return;
  }
  conn_t *c = conn_new(n, 1);
  if (!c) {
    free(frame);
    CNT_ADD(n->send_errors, 1);
    return;
  }
  c->buf = frame;
  c->len = flen;
  struct sockaddr_storage sa;
  lm__swim_to_sa(to, &sa);
  c->creq.data = c;
  if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa,
                     on_connected)) {
    CNT_ADD(n->send_errors, 1);
    conn_close(c);
    return;
  }
  CNT_ADD(n->tcp_frames_out, 1);
  CNT_ADD(n->tcp_bytes_out, flen);
}

static int key_lookup(void *ud, uint64_t hint, uint8_t pk[LM_PUBLICKEY_LEN]) {
  lm_node_t *n = ud;
  swim_member_t m;
  if (swim_member_find8(n->core, hint, &m))
    return -1;
  memcpy(pk, m.id, LM_PUBLICKEY_LEN);
  return 0;
}

/* ---- inbound ---- */

static void count_drop(lm_node_t *n, int rc, const struct sockaddr *from) {
  int i = lm_trust_err_index(rc);
  if (i >= 0)
    CNT_ADD(n->drops[i], 1);
  n->drops_since_log++;
  uint64_t now = now_ms(n);
  if (!n->last_drop_log || now >= n->last_drop_log + DROP_LOG_GAP_MS) {
    char a[LM_ADDR_STRLEN];
    lm__format_sa(from, a, sizeof a);
    /* a sender unknown for a moment is normal while members join */
    nlog(n, rc == LM_TRUST_EUNKNOWN_SENDER ? LM_LOG_INFO : LM_LOG_WARN,
         "dropped a message from %s: %s (%llu dropped since the last report)",
         a, lm_trust_strerror(rc), (unsigned long long)n->drops_since_log);
    n->last_drop_log = now;
    n->drops_since_log = 0;
  }
}

static void deliver(lm_node_t *n, const struct sockaddr *from,
                    const uint8_t *p, size_t len) {
  swim_addr_t a;
  lm__sa_to_swim(from, &a);
  uv_mutex_lock(&n->mu);
  int rc = swim_recv(n->core, &a, p, len, now_ms(n));
  uv_mutex_unlock(&n->mu);
  if (rc) {
    char s[LM_ADDR_STRLEN];
    lm__format_sa(from, s, sizeof s);
    nlog(n, LM_LOG_DEBUG, "message from %s refused by the core: %s", s,
         swim_strerror(rc));
  }
  dispatch(n);
}

/* A datagram from a key we do not know yet, typically a member that joined
 * a moment ago: push our state to it over the stream; its answer carries
 * its certificate and record, and from then on its datagrams verify. At
 * most once per address per second, so junk cannot turn into a flood. */
static void introduce(lm_node_t *n, const struct sockaddr *from) {
  swim_addr_t a;
  lm__sa_to_swim(from, &a);
  uint64_t now = now_ms(n);
  for (unsigned i = 0; i < 16; i++)
    if (n->intro[i].at && now < n->intro[i].at + 1000 &&
        memcmp(&n->intro[i].addr, &a, sizeof a) == 0)
      return;
  n->intro[n->intro_next].addr = a;
  n->intro[n->intro_next].at = now;
  n->intro_next = (n->intro_next + 1) % 16;
  uv_mutex_lock(&n->mu);
  swim_sync(n->core, &a, now);
  uv_mutex_unlock(&n->mu);
  dispatch(n);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  lm_node_t *n = h->data;
  *buf = uv_buf_init((char *)n->rbuf, sizeof n->rbuf);
}

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *addr, unsigned flags) {
  lm_node_t *n = h->data;
  if (nread <= 0 || !addr || !n->core || n->state == ST_CLOSING)
    return;
  CNT_ADD(n->udp_pkts_in, 1);
  CNT_ADD(n->udp_bytes_in, (uint64_t)nread);
  if (n->opt.test_drop_inbound > 0 &&
      (double)(next_rand(n) >> 11) * 0x1.0p-53 < n->opt.test_drop_inbound) {
    CNT_ADD(n->test_dropped, 1);
    return;
  }
  if ((flags & UV_UDP_PARTIAL) || nread > SWIM_MTU) {
    count_drop(n, LM_TRUST_EOVERSIZE, addr);
    return;
  }
  lm_env_msg_t m;
  uv_mutex_lock(&n->mu);
  int rc = lm_env_open(&m, (uint8_t *)buf->base, (size_t)nread, &n->rx);
  uv_mutex_unlock(&n->mu);
  if (rc) {
    count_drop(n, rc, addr);
    if (rc == LM_TRUST_EUNKNOWN_SENDER)
      introduce(n, addr);
    return;
  }
  deliver(n, addr, m.payload, m.payload_len);
}

static void on_conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  conn_t *c = h->data;
  size_t want = c->want ? c->want : LM_FRAME_PREFIX_LEN;
  if (want < c->len + 4096)
    want = c->len + 4096;
  if (want > c->cap) {
    /* grow with what arrives, never to a size the peer merely claims */
    size_t ncap = c->cap ? c->cap : 4096;
    while (ncap < want && ncap < c->len + 65536)
      ncap *= 2;
    uint8_t *nb = realloc(c->buf, ncap);
    if (!nb) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->buf = nb;
    c->cap = ncap;
  }
  *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn_t *c = s->data;
  lm_node_t *n = c->node;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)nread;
  if (nread > 0)
    c->last_read = now_ms(n);
  for (;;) {
    if (!c->want) {
      int rc = lm_frame_peek(&c->want, c->buf, c->len);
      if (rc == LM_TRUST_EAGAIN)
        return;
      if (rc) {
        struct sockaddr_storage ss;
        int sl = sizeof ss;
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl);
        count_drop(n, rc, (struct sockaddr *)&ss);
        conn_close(c);
        return;
      }
    }
    if (c->len < c->want)
      return;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl);
    lm_env_msg_t m;
    uv_mutex_lock(&n->mu);
    int rc = lm_env_open_frame(&m, c->buf, c->want, &n->rx,
                               (uint64_t)time(NULL));
    uv_mutex_unlock(&n->mu);
    CNT_ADD(n->tcp_frames_in, 1);
    CNT_ADD(n->tcp_bytes_in, c->want);
    if (rc) {
      count_drop(n, rc, (struct sockaddr *)&ss);
      conn_close(c);
      return;
    }
    deliver(n, (struct sockaddr *)&ss, m.payload, m.payload_len);
    if (n->state == ST_CLOSING)
      return;
    memmove(c->buf, c->buf + c->want, c->len - c->want);
    c->len -= c->want;
    c->want = 0;
  }
}

static void on_accept(uv_stream_t *server, int status) {
  lm_node_t *n = server->data;
  if (status || !n->core || n->state == ST_CLOSING)
    return;
  if (n->nconns >= MAX_CONNS) {
    /* Full: the oldest inbound connection makes way. Whoever holds slots
     * open without finishing a frame cannot keep newcomers out. */
    conn_t *oldest = NULL;
    for (conn_t *o = n->conns; o; o = o->next)
      if (!o->outbound && !o->closing &&
          (!oldest || o->started < oldest->started))
        oldest = o;
    if (oldest) {
      CNT_ADD(n->conn_refused, 1);
      conn_close(oldest);
    }
  }
  conn_t *c = conn_new(n, 0);
  if (!c) {
    /* too many: accept and drop so the backlog does not fill */
    uv_tcp_t *t = malloc(sizeof *t);
    if (t && uv_tcp_init(n->loop, t) == 0) {
      if (uv_accept(server, (uv_stream_t *)t) == 0)
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
      else
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
    } else {
      free(t);
    }
    return;
  }
  if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
    conn_close(c);
    return;
  }
  if (uv_read_start((uv_stream_t *)&c->tcp, on_conn_alloc, on_conn_read))
    conn_close(c);
}

/* ---- timers and commands ---- */

static void on_timer(uv_timer_t *t) {
  lm_node_t *n = t->data;
  uv_mutex_lock(&n->mu);
  swim_tick(n->core, now_ms(n));
  uv_mutex_unlock(&n->mu);
  dispatch(n);
}

static void finish_leave(lm_node_t *n, int status) {
  lm_done_cb cb = n->leave_cb;
  n->leave_cb = NULL;
  if (cb)
    cb(n, status, n->leave_ud);
}

static void on_housekeeping(uv_timer_t *t) {
  lm_node_t *n = t->data;
  uint64_t now = now_ms(n);
  for (conn_t *c = n->conns, *next; c; c = next) {
    next = c->next;
    if (now >= c->started + CONN_TIMEOUT_MS ||
        (!c->outbound && now >= c->last_read + CONN_IDLE_MS))
      conn_close(c);
  }
  if (n->state == ST_LEAVING && n->leave_cb) {
    uv_mutex_lock(&n->mu);
    int done = swim_leave_done(n->core);
    uv_mutex_unlock(&n->mu);
    if (done || now >= n->leave_started + LEAVE_MAX_MS)
      finish_leave(n, done ? 0 : LM_ETIMEDOUT);
  }
}

static int apply_join(lm_node_t *n, const swim_addr_t *a, size_t k) {
  uv_mutex_lock(&n->mu);
  int rc = swim_join(n->core, a, k, now_ms(n));
  uv_mutex_unlock(&n->mu);
  dispatch(n);
  return rc ? LM_ESTATE : 0;
}

static int apply_leave(lm_node_t *n, lm_done_cb cb, void *ud) {
  if (n->state != ST_RUNNING)
    return LM_ESTATE;
  uv_mutex_lock(&n->mu);
  int rc = swim_leave(n->core, now_ms(n));
  uv_mutex_unlock(&n->mu);
  if (rc)
    return LM_ESTATE;
  n->state = ST_LEAVING;
  n->leave_cb = cb;
  n->leave_ud = ud;
  n->leave_started = now_ms(n);
  nlog(n, LM_LOG_INFO, "leaving the mesh");
  dispatch(n);
  return 0;
}

static void build_meta(lm_node_t *n, const uint8_t *app, size_t app_len) {
  n->meta[0] = (uint8_t)(n->cert_len >> 8);
  n->meta[1] = (uint8_t)n->cert_len;
  memcpy(n->meta + 2, n->cert_raw, n->cert_len);
  if (app_len)
    memcpy(n->meta + 2 + n->cert_len, app, app_len);
  n->meta_len = 2 + n->cert_len + app_len;
}

static int apply_meta(lm_node_t *n, const uint8_t *meta, size_t len) {
  uv_mutex_lock(&n->mu);
  build_meta(n, meta, len);
  int rc = swim_set_meta(n->core, n->meta, n->meta_len, now_ms(n));
  uv_mutex_unlock(&n->mu);
  dispatch(n);
  return rc ? LM_ESTATE : 0;
}

static void on_async(uv_async_t *a) {
  lm_node_t *n = a->data;
  for (;;) {
    uv_mutex_lock(&n->mu);
    cmd_t *c = n->cmds;
    if (c) {
      n->cmds = c->next;
      if (!n->cmds)
        n->cmds_tail = NULL;
    }
    uv_mutex_unlock(&n->mu);
    if (!c)
      break;
    switch (c->kind) {
    case CMD_JOIN: apply_join(n, c->addrs, c->n); break;
    case CMD_LEAVE: {
      int rc = apply_leave(n, c->cb, c->ud);
      if (rc && c->cb)
        c->cb(n, rc, c->ud);
      break;
    }
    case CMD_META: apply_meta(n, c->meta, c->n); break;
    case CMD_CLOSE:
      n->close_cb = c->cb;
      n->close_ud = c->ud;
      n->close_pending = 1;
      if (!n->in_dispatch)
        do_close(n);
      break;
    }
    free(c->addrs);
    free(c);
  }
}

static int post(lm_node_t *n, cmd_t *c) {
  c->next = NULL;
  uv_mutex_lock(&n->mu);
  if (n->cmds_tail)
    n->cmds_tail->next = c;
  else
    n->cmds = c;
  n->cmds_tail = c;
  uv_mutex_unlock(&n->mu);
  return uv_async_send(&n->async);
}

/* ---- lifecycle ---- */

static void handle_closed(uv_handle_t *h) {
  lm_node_t *n = h->data;
  n->open_handles--;
  if (n->open_handles == 0)
    do_close(n);
}

static void free_node(lm_node_t *n) {
  swim_free(n->core);
  if (n->records && --n->records->refs == 0) {
    swim_rec_cache_free(n->records->cache);
    free(n->records);
  }
  lm_receiver_close(&n->rx);
  lm_sender_close(&n->tx);
  lm_cluster_close(&n->cluster);
  lm_keypair_wipe(&n->kp);
  for (cmd_t *c = n->cmds, *next; c; c = next) {
    next = c->next;
    free(c->addrs);
    free(c);
  }
  free(n->evs);
  uv_mutex_destroy(&n->mu);
  free((void *)n->opt.name);
  free((void *)n->opt.bind);
  free((void *)n->opt.advertise);
  free((void *)n->opt.cluster);
  free(n);
}

/* Runs on the loop thread: first call closes every handle; the last close
 * callback calls it again to finish. */
static void do_close(lm_node_t *n) {
  if (n->state != ST_CLOSING) {
    n->state = ST_CLOSING;
    n->close_pending = 0;
    if (n->leave_cb)
      finish_leave(n, LM_ESTATE);
    for (conn_t *c = n->conns, *next; c; c = next) {
      next = c->next;
      conn_close(c);
    }
    uv_handle_t *hs[] = {(uv_handle_t *)&n->udp, (uv_handle_t *)&n->listener,
                         (uv_handle_t *)&n->timer,
                         (uv_handle_t *)&n->housekeeping,
                         n->threaded ? (uv_handle_t *)&n->async : NULL};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
      if (hs[i] && hs[i]->data == n && !uv_is_closing(hs[i])) {
        n->open_handles++;
        uv_close(hs[i], handle_closed);
      }
    if (n->open_handles)
      return;
  }
  if (n->open_handles)
    return;
  if (n->threaded)
    return; /* lm_node_close joins the thread and frees */
  lm_done_cb cb = n->close_cb;
  void *ud = n->close_ud;
  free_node(n);
  if (cb)
    cb(NULL, 0, ud);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int lm_node_new(lm_node_t **out, uv_loop_t *loop, const lm_options_t *o) {
  *out = NULL;
  if (!o || !o->name || !*o->name || strlen(o->name) > LM_NAME_MAX ||
      !o->identity || !o->identity->cert_len || !o->trusted || !o->ntrusted ||
      o->test_drop_inbound < 0 || o->test_drop_inbound > 1)
    return LM_EINVAL;
  if (sodium_init() < 0)
    return LM_ENOMEM;
  lm_node_t *n = calloc(1, sizeof *n);
  if (!n)
    return LM_ENOMEM;
  n->pid = getpid();
  n->opt = *o;
  n->opt.name = dup_or_null(o->name);
  n->opt.bind = dup_or_null(o->bind ? o->bind : "0.0.0.0:7946");
  n->opt.advertise = dup_or_null(o->advertise);
  n->opt.cluster = dup_or_null(o->cluster ? o->cluster : "livemesh");
  n->opt.identity = NULL;
  n->opt.trusted = NULL;
  n->opt.secret = NULL;
  snprintf(n->name, sizeof n->name, "%s", o->name);
  if (uv_mutex_init(&n->mu)) {
    free(n);
    return LM_ENOMEM;
  }
  int rc = LM_ENOMEM;
  if (!n->opt.name || !n->opt.bind || !n->opt.cluster ||
      (o->advertise && !n->opt.advertise))
    goto fail;
  rc = LM_EADDR;
  if (lm__parse_hostport(n->opt.bind, &n->bind_sa))
    goto fail;
  if (n->opt.advertise) {
    if (lm__parse_hostport(n->opt.advertise, &n->adv_sa))
      goto fail;
    n->adv_given = 1;
  }
  /* keys and certificate */
  rc = LM_ECERT;
  memcpy(n->kp.pk, o->identity->pk, sizeof n->kp.pk);
  memcpy(n->kp.sk, o->identity->sk, sizeof n->kp.sk);
  if (lm_cert_decode(&n->cert, o->identity->cert, o->identity->cert_len) !=
          (int)o->identity->cert_len ||
      memcmp(n->cert.node_pk, n->kp.pk, sizeof n->kp.pk) != 0 ||
      strcmp(n->cert.name, n->name) != 0)
    goto fail;
  memcpy(n->cert_raw, o->identity->cert, o->identity->cert_len);
  n->cert_len = o->identity->cert_len;
  lm_trust_set_init(&n->trust);
  for (size_t i = 0; i < o->ntrusted; i++)
    if (lm_trust_set_add(&n->trust, o->trusted[i]))
      goto fail;
  if (lm_cert_verify(&n->trust, &n->cert, (uint64_t)time(NULL)) != 0)
    goto fail;
  rc = LM_EKEY;
  if (lm_cluster_init(&n->cluster, n->opt.cluster, o->secret, 0))
    goto fail;
  if (lm_sender_init(&n->tx, &n->cluster, &n->kp, (uint64_t)unix_ms() * 1000) ||
      lm_sender_set_cert(&n->tx, &n->cert))
    goto fail;
  if (lm_receiver_init(&n->rx, &n->cluster, &n->trust, key_lookup, n))
    goto fail;
  rc = LM_EINVAL;
  if (o->share_records_with) {
    lm_node_t *p = o->share_records_with;
    if (!loop || p->threaded || p->loop != loop || forked(p))
      goto fail;
    if (!p->records) {
      if (!(p->records = calloc(1, sizeof *p->records)) ||
          !(p->records->cache = swim_rec_cache_new())) {
        free(p->records);
        p->records = NULL;
        rc = LM_ENOMEM;
        goto fail;
      }
      p->records->refs = 1; /* p's own reference (its core uses the cache
                               only if it starts after this) */
    }
    n->records = p->records;
    n->records->refs++;
  }
  randombytes_buf(n->rng, sizeof n->rng);
  n->rng[0] |= 1;
  *out = n;
  n->loop = loop;
  n->threaded = loop == NULL;
  return 0;
fail:
  lm_receiver_close(&n->rx);
  lm_sender_close(&n->tx);
  lm_keypair_wipe(&n->kp);
  uv_mutex_destroy(&n->mu);
  free((void *)n->opt.name);
  free((void *)n->opt.bind);
  free((void *)n->opt.advertise);
  free((void *)n->opt.cluster);
  free(n);
  return rc;
}

/* UDP and TCP share one port. With port 0 the kernel picks a UDP port that
 * a TCP socket may already hold, so the pair is bound with plain sockets
 * (a few picks if need be) and then handed to libuv. */
static int bind_both(lm_node_t *n, struct sockaddr_storage *bound) {
  int any = ((struct sockaddr_in *)&n->bind_sa)->sin_port == 0;
  int fam = n->bind_sa.ss_family, one = 1, ufd = -1, tfd = -1, rc = 0;
  socklen_t slen = fam == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
  for (int attempt = 0; attempt < (any ? 16 : 1); attempt++) {
    ufd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    tfd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t blen = sizeof *bound;
    if (ufd < 0 || tfd < 0 ||
        /* with port 0, REUSEADDR could hand out a port already held */
        (!any && setsockopt(ufd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) ||
        setsockopt(tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(ufd, (struct sockaddr *)&n->bind_sa, slen) ||
        getsockname(ufd, (struct sockaddr *)bound, &blen) ||
        bind(tfd, (struct sockaddr *)bound, slen)) {
      rc = uv_translate_sys_error(errno);
      if (ufd >= 0)
        close(ufd);
      if (tfd >= 0)
        close(tfd);
      ufd = tfd = -1;
      if (rc == UV_EADDRINUSE && any)
        continue;
      return rc;
    }
    break;
  }
  if (ufd < 0)
    return rc;
  if ((rc = uv_udp_init(n->loop, &n->udp))) {
    close(ufd);
    close(tfd);
    return rc;
  }
  n->udp.data = n;
  if ((rc = uv_udp_open(&n->udp, ufd))) {
    close(ufd);
    close(tfd);
    return rc;
  }
  if ((rc = uv_tcp_init(n->loop, &n->listener))) {
    close(tfd);
    return rc;
  }
  n->listener.data = n;
  if ((rc = uv_tcp_open(&n->listener, tfd))) {
    close(tfd);
    return rc;
  }
  return uv_listen((uv_stream_t *)&n->listener, 128, on_accept);
}

static void thread_main(void *arg) {
  lm_node_t *n = arg;
  uv_run(n->loop, UV_RUN_DEFAULT);
}

int lm_node_start(lm_node_t *n) {
  if (forked(n))
    return LM_EFORKED;
  if (n->state != ST_NEW)
    return LM_ESTATE;
  int rc;
  if (n->threaded) {
    if ((rc = uv_loop_init(&n->own_loop)))
      return rc;
    n->loop = &n->own_loop;
    if ((rc = uv_async_init(n->loop, &n->async, on_async)))
      goto fail_loop;
    n->async.data = n;
  }
  n->udp.data = n->listener.data = n->timer.data = n->housekeeping.data = NULL;
  struct sockaddr_storage bound;
  if ((rc = bind_both(n, &bound)))
    goto fail;
  if ((rc = uv_udp_recv_start(&n->udp, on_alloc, on_udp)))
    goto fail;
  uv_timer_init(n->loop, &n->timer);
  n->timer.data = n;
  uv_timer_init(n->loop, &n->housekeeping);
  n->housekeeping.data = n;
  uv_timer_start(&n->housekeeping, on_housekeeping, HOUSEKEEP_MS, HOUSEKEEP_MS);
  {
    /* advertise: as given, else the bound address (0.0.0.0 cannot be
     * dialed, so it then means loopback: pass --advertise on real hosts) */
    struct sockaddr_storage adv = n->adv_given ? n->adv_sa : bound;
    if (!n->adv_given) {
      if (adv.ss_family == AF_INET &&
          ((struct sockaddr_in *)&adv)->sin_addr.s_addr == 0)
        ((struct sockaddr_in *)&adv)->sin_addr.s_addr = htonl(0x7f000001);
    } else if (adv.ss_family == AF_INET &&
               ((struct sockaddr_in *)&adv)->sin_port == 0) {
      ((struct sockaddr_in *)&adv)->sin_port =
          ((struct sockaddr_in *)&bound)->sin_port;
    }
    n->adv_sa = adv;
  }
  swim_config_t cfg;
  swim_config_default(&cfg);
  memcpy(cfg.id, n->kp.pk, SWIM_ID_LEN);
  snprintf(cfg.name, sizeof cfg.name, "%s", n->name);
  lm__sa_to_swim((struct sockaddr *)&n->adv_sa, &cfg.addr);
  cfg.generation = n->opt.generation ? n->opt.generation
                                     : (uint32_t)time(NULL);
#define OPT(f)                                                                 \
  if (n->opt.f)                                                                \
  cfg.f = n->opt.f
  OPT(probe_interval_ms);
  OPT(probe_timeout_ms);
  OPT(indirect_checks);
  OPT(gossip_interval_ms);
  OPT(pushpull_interval_ms);
  OPT(suspicion_min_mult);
  OPT(tombstone_ms);
#undef OPT
  cfg.max_payload = SWIM_MTU - (uint32_t)lm_env_overhead(&n->tx);
  if (cfg.max_payload > SWIM_MAX_PAYLOAD)
    cfg.max_payload = SWIM_MAX_PAYLOAD;
  build_meta(n, NULL, 0);
  cfg.meta = n->meta;
  cfg.meta_len = n->meta_len;
  cfg.cache = n->records ? n->records->cache : NULL;
  swim_callbacks_t cb = {0};
  cb.send = core_send;
  cb.send_stream = core_send_stream;
  cb.rand64 = core_rand;
  cb.log = core_log;
  cb.event = core_event;
  cb.sign = core_sign;
  cb.verify = core_verify;
  if ((rc = swim_new(&n->core, &cfg, &cb, n, now_ms(n)))) {
    nlog(n, LM_LOG_ERROR, "cannot start the protocol: %s", swim_strerror(rc));
    rc = LM_EINVAL;
    goto fail;
  }
  n->state = ST_RUNNING;
  {
    char a[LM_ADDR_STRLEN], b[LM_ADDR_STRLEN];
    lm__format_sa((struct sockaddr *)&bound, a, sizeof a);
    lm__format_sa((struct sockaddr *)&n->adv_sa, b, sizeof b);
    nlog(n, LM_LOG_INFO, "listening on %s (udp+tcp), advertising %s, "
         "generation %u", a, b, cfg.generation);
  }
  rearm(n);
  if (n->threaded) {
    if ((rc = uv_thread_create(&n->thread, thread_main, n))) {
      n->state = ST_NEW;
      goto fail;
    }
    n->thread_started = 1;
  }
  return 0;
fail:
  swim_free(n->core);
  n->core = NULL;
  if (!n->threaded) {
    /* The caller's loop owns the handles opened so far: lm_node_close()
     * closes them the usual asynchronous way. Running that loop from here
     * could re-enter it. */
    n->state = ST_FAILED;
    return rc;
  }
  {
    /* our own loop, not running yet: finish the closes on it */
    uv_handle_t *hs[] = {(uv_handle_t *)&n->udp, (uv_handle_t *)&n->listener,
                         (uv_handle_t *)&n->timer,
                         (uv_handle_t *)&n->housekeeping,
                         (uv_handle_t *)&n->async};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
      if (hs[i]->data == n && !uv_is_closing(hs[i])) {
        hs[i]->data = NULL;
        uv_close(hs[i], NULL);
      }
    uv_run(n->loop, UV_RUN_DEFAULT);
  }
fail_loop:
  if (n->threaded) {
    uv_loop_close(&n->own_loop);
    n->loop = NULL;
  }
  return rc;
}

static int parse_seeds(const char *const *seeds, size_t k, swim_addr_t **out) {
  if (!seeds || !k)
    return LM_EINVAL;
  swim_addr_t *a = calloc(k, sizeof *a);
  if (!a)
    return LM_ENOMEM;
  for (size_t i = 0; i < k; i++) {
    struct sockaddr_storage ss;
    if (lm__parse_hostport(seeds[i], &ss)) {
      free(a);
      return LM_EADDR;
    }
    lm__sa_to_swim((struct sockaddr *)&ss, &a[i]);
  }
  *out = a;
  return 0;
}

int lm_node_join(lm_node_t *n, const char *const *seeds, size_t k) {
  if (forked(n))
    return LM_EFORKED;
  if (n->state != ST_RUNNING)
    return LM_ESTATE;
  swim_addr_t *a;
  int rc = parse_seeds(seeds, k, &a);
  if (rc)
    return rc;
  if (n->threaded) {
    cmd_t *c = calloc(1, sizeof *c);
    if (!c) {
      free(a);
      return LM_ENOMEM;
    }
    c->kind = CMD_JOIN;
    c->addrs = a;
    c->n = k;
    return post(n, c);
  }
  rc = apply_join(n, a, k);
  free(a);
  return rc;
}

int lm_node_leave(lm_node_t *n, lm_done_cb cb, void *ud) {
  if (forked(n))
    return LM_EFORKED;
  if (n->state != ST_RUNNING)
    return LM_ESTATE;
  if (n->threaded) {
    cmd_t *c = calloc(1, sizeof *c);
    if (!c)
      return LM_ENOMEM;
    c->kind = CMD_LEAVE;
    c->cb = cb;
    c->ud = ud;
    return post(n, c);
  }
  return apply_leave(n, cb, ud);
}

int lm_node_set_meta(lm_node_t *n, const uint8_t *meta, size_t len) {
  if (forked(n))
    return LM_EFORKED;
  if (len > APP_META_MAX || (len && !meta))
    return LM_EINVAL;
  if (n->state != ST_RUNNING)
    return LM_ESTATE;
  if (n->threaded) {
    cmd_t *c = calloc(1, sizeof *c);
    if (!c)
      return LM_ENOMEM;
    c->kind = CMD_META;
    if (len)
      memcpy(c->meta, meta, len);
    c->n = len;
    return post(n, c);
  }
  return apply_meta(n, meta, len);
}

void lm_node_close(lm_node_t *n, lm_done_cb cb, void *ud) {
  if (!n || forked(n))
    return;
  if (n->state == ST_NEW || (n->state == ST_FAILED && n->threaded)) {
    free_node(n);
    if (cb)
      cb(NULL, 0, ud);
    return;
  }
  if (n->threaded) {
    cmd_t *c = calloc(1, sizeof *c);
    if (c) {
      c->kind = CMD_CLOSE;
      post(n, c);
    }
    uv_thread_join(&n->thread);
    uv_loop_close(&n->own_loop);
    free_node(n);
    if (cb)
      cb(NULL, 0, ud);
    return;
  }
  if (n->state == ST_CLOSING)
    return;
  n->close_cb = cb;
  n->close_ud = ud;
  n->close_pending = 1;
  if (!n->in_dispatch)
    do_close(n);
}

int lm_node_set_trusted(lm_node_t *n,
                        const uint8_t (*trusted)[LM_PUBLICKEY_BYTES],
                        size_t ntrusted) {
  if (forked(n))
    return LM_EFORKED;
  if (!trusted || !ntrusted)
    return LM_EINVAL;
  lm_trust_set_t ts;
  lm_trust_set_init(&ts);
  for (size_t i = 0; i < ntrusted; i++)
    if (lm_trust_set_add(&ts, trusted[i]))
      return LM_EINVAL;
  if (lm_cert_verify(&ts, &n->cert, (uint64_t)time(NULL)) != 0)
    return LM_ECERT; /* we would refuse our own record */
  uv_mutex_lock(&n->mu);
  n->trust = ts;
  uv_mutex_unlock(&n->mu);
  return 0;
}

int lm_node_set_log_level(lm_node_t *n, int level) {
  if (forked(n))
    return LM_EFORKED;
  if (level < LM_LOG_ERROR || level > LM_LOG_DEBUG)
    return LM_EINVAL;
  n->opt.log_level = level;
  return 0;
}

/* ---- reading ---- */

/* The reading calls need this process's node, started. */
static int readable(const lm_node_t *n) {
  if (forked(n))
    return LM_EFORKED;
  return n->core ? 0 : LM_ESTATE;
}

int lm_node_members(lm_node_t *n, lm_member_t **out, size_t *count) {
  *out = NULL;
  *count = 0;
  int rc = readable(n);
  if (rc)
    return rc;
  uv_mutex_lock(&n->mu);
  size_t total = swim_member_count(n->core), k = 0;
  lm_member_t *v = calloc(total ? total : 1, sizeof *v);
  if (!v) {
    uv_mutex_unlock(&n->mu);
    return LM_ENOMEM;
  }
  for (size_t i = 0; i < total; i++) {
    swim_member_t m;
    if (swim_member_at(n->core, i, &m) == 0)
      to_member(n, &m, &v[k++]);
  }
  uv_mutex_unlock(&n->mu);
  *out = v;
  *count = k;
  return 0;
}

int lm_node_alive_count(lm_node_t *n, size_t *count) {
  int rc = readable(n);
  if (rc)
    return rc;
  uv_mutex_lock(&n->mu);
  *count = swim_alive_count(n->core);
  uv_mutex_unlock(&n->mu);
  return 0;
}

int lm_node_self(lm_node_t *n, lm_member_t *out) {
  int rc = readable(n);
  if (rc)
    return rc;
  uv_mutex_lock(&n->mu);
  swim_member_t m;
  swim_member_at(n->core, 0, &m);
  to_member(n, &m, out);
  uv_mutex_unlock(&n->mu);
  return 0;
}

int lm_node_bound_addr(lm_node_t *n, char *out, size_t cap) {
  int rc = readable(n);
  if (rc)
    return rc;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if ((rc = uv_udp_getsockname(&n->udp, (struct sockaddr *)&ss, &len)))
    return rc;
  return lm__format_sa((struct sockaddr *)&ss, out, cap);
}

int lm_node_stats(lm_node_t *n, lm_stats_t *o) {
  if (forked(n))
    return LM_EFORKED;
  memset(o, 0, sizeof *o);
  o->udp_pkts_out = CNT_GET(n->udp_pkts_out);
  o->udp_bytes_out = CNT_GET(n->udp_bytes_out);
  o->udp_pkts_in = CNT_GET(n->udp_pkts_in);
  o->udp_bytes_in = CNT_GET(n->udp_bytes_in);
  o->tcp_frames_out = CNT_GET(n->tcp_frames_out);
  o->tcp_bytes_out = CNT_GET(n->tcp_bytes_out);
  o->tcp_frames_in = CNT_GET(n->tcp_frames_in);
  o->tcp_bytes_in = CNT_GET(n->tcp_bytes_in);
  o->send_errors = CNT_GET(n->send_errors);
  o->conns_refused = CNT_GET(n->conn_refused);
  o->test_dropped = CNT_GET(n->test_dropped);
  for (int i = 0; i < LM_TRUST_ERR_COUNT; i++) {
    uint64_t d = CNT_GET(n->drops[i]);
    if (!d)
      continue;
    o->dropped[o->ndropped].reason = lm_trust_err_name(LM_TRUST_ERR_FIRST - i);
    o->dropped[o->ndropped++].count = d;
    o->dropped_total += d;
  }
  if (!n->core)
    return 0;
  uv_mutex_lock(&n->mu);
  const swim_stats_t *s = swim_stats(n->core);
  o->probes = s->probes;
  o->probes_failed = s->probes_failed;
  o->suspicions_raised = s->suspicions_raised;
  o->refutes = s->refutes;
  o->pings = s->pings;
  o->acks = s->acks;
  o->ping_reqs = s->ping_reqs;
  o->nacks = s->nacks;
  o->updates_sent = s->updates_sent;
  o->updates_applied = s->updates_applied;
  o->local_health = swim_local_health(n->core);
  o->members = swim_member_count(n->core);
  o->alive = swim_alive_count(n->core);
  for (int i = 0; i < SWIM_DROP__COUNT; i++) {
    if (!s->dropped[i] || o->ndropped >= sizeof o->dropped / sizeof o->dropped[0])
      continue;
    o->dropped[o->ndropped].reason = swim_drop_name(i);
    o->dropped[o->ndropped++].count = s->dropped[i];
    o->dropped_total += s->dropped[i];
  }
  uv_mutex_unlock(&n->mu);
  return 0;
}
