/*
 * swim_pair.h: a few SWIM cores wired together by hand for unit tests.
 *
 * An in-memory network the test controls completely: every datagram and
 * stream frame goes into one FIFO and is delivered on the next drain, a drop
 * matrix cuts links one way, time only moves when the test says so, and each
 * node's randomness is splitmix64 from (seed, index), so every run is the same
 * run. Events are recorded per node for the test to read back. The simulator
 * in sim/ is the large-scale version of this; these tests only need a handful
 * of nodes and full visibility.
 */
#ifndef LIVEMESH_TESTS_SWIM_PAIR_H
#define LIVEMESH_TESTS_SWIM_PAIR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swim.h"
#include "swim_proto.h"

#define TP_MAX 64
#define TP_BASE_PORT 7000
#define TP_STEP_MS 5

typedef struct tp_ev {
  swim_event_kind_t kind;
  swim_status_t old_status, status;
  uint64_t id8;
  swim_inc_t inc;
  uint64_t at;
  char name[SWIM_NAME_MAX + 1];
  uint8_t meta[64];
  size_t meta_len;
} tp_ev_t;

struct tp_net;

typedef struct tp_node {
  struct tp_net *net;
  int idx;
  swim_core_t *core;
  uint64_t rng;
  int signing; /* sign/verify with the toy scheme below */
  int isolated; /* drop everything to and from it */
  tp_ev_t *ev;
  size_t nev, capev;
  size_t recv_errors;
  int last_recv_rc;
  int stream_busy; /* what its stream_busy() answers */
} tp_node_t;

typedef struct tp_pkt {
  int from, to, stream;
  size_t len;
  uint8_t *data;
} tp_pkt_t;

typedef struct tp_net {
  tp_node_t n[TP_MAX];
  int count;
  uint64_t now;
  uint64_t seed;
  tp_pkt_t *q;
  size_t qhead, qn, qcap;
  uint8_t drop[TP_MAX][TP_MAX]; /* drop[from][to] */
  swim_rec_cache_t *cache;
  /* what went over the wire */
  size_t dgrams, streams, dropped_pkts;
  size_t max_dgram, max_stream;
  size_t oversize_dgrams; /* datagrams above SWIM_MAX_PAYLOAD */
  size_t verify_bad_args;  /* verify() called with name/meta outside msg */
  /* with count_kinds set, datagram updates sent, by kind (SWIM_UPD_*) */
  int count_kinds;
  size_t kinds[8];
  /* an optional hook run from inside every event callback */
  void (*on_event)(tp_node_t *node, const swim_event_t *ev);
} tp_net_t;

/* ---- deterministic pieces ---- */

static inline uint64_t tp_splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Node i's id: distinct in its first 8 bytes, so id8 never clashes. */
static inline void tp_id(uint8_t id[SWIM_ID_LEN], int i) {
  for (int k = 0; k < SWIM_ID_LEN; k++)
    id[k] = (uint8_t)(0x10 + i * 3 + k * 7);
  id[0] = (uint8_t)(0x80 | i);
}

static inline uint64_t tp_id8(int i) {
  uint8_t id[SWIM_ID_LEN];
  tp_id(id, i);
  return swim_id8(id);
}

static inline swim_addr_t tp_addr(int i) {
  swim_addr_t a;
  memset(&a, 0, sizeof a);
  a.family = 4;
  a.ip[0] = 10;
  a.ip[3] = (uint8_t)(i + 1);
  a.port = (uint16_t)(TP_BASE_PORT + i);
  return a;
}

static inline int tp_addr_idx(const swim_addr_t *a) {
  if (a->family != 4 || a->ip[0] != 10)
    return -1;
  int i = a->port - TP_BASE_PORT;
  return i >= 0 && i < TP_MAX && a->ip[3] == i + 1 ? i : -1;
}

/* A toy keyed checksum standing in for Ed25519: 64 bytes that depend on the
 * signer's id and every byte of the message. Not secure, only exact. */
static inline void tp_toy_sig(uint8_t sig[SWIM_SIG_LEN],
                              const uint8_t id[SWIM_ID_LEN],
                              const uint8_t *msg, size_t len) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < SWIM_ID_LEN; i++)
    h = (h ^ id[i]) * 1099511628211ull;
  for (size_t i = 0; i < len; i++)
    h = (h ^ msg[i]) * 1099511628211ull;
  uint64_t s = h;
  for (int k = 0; k < SWIM_SIG_LEN; k += 8) {
    uint64_t v = tp_splitmix64(&s);
    memcpy(sig + k, &v, 8);
  }
}

/* ---- callbacks ---- */

static inline void tp_push(tp_net_t *net, int from, int to, int stream,
                           const uint8_t *buf, size_t len) {
  if (stream) {
    net->streams++;
    if (len > net->max_stream)
      net->max_stream = len;
  } else {
    net->dgrams++;
    if (len > net->max_dgram)
      net->max_dgram = len;
    if (len > SWIM_MAX_PAYLOAD)
      net->oversize_dgrams++;
  }
  if (net->count_kinds && !stream) {
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    size_t off = 0;
    swim_hdr_t h;
    swim_upd_t u;
    if (swim_dec_hdr(buf, len, &off, &z, &h) == 0)
      while (swim_dec_upd(buf, len, &off, &z, &u) == 1)
        net->kinds[u.kind & 7]++;
    msgpack_zone_destroy(&z);
  }
  if (to < 0 || net->drop[from][to] || net->n[from].isolated ||
      net->n[to].isolated) {
    net->dropped_pkts++;
    return;
  }
  if (net->qn == net->qcap) {
    /* compact, then grow */
    if (net->qhead) {
      memmove(net->q, net->q + net->qhead,
              (net->qn - net->qhead) * sizeof *net->q);
      net->qn -= net->qhead;
      net->qhead = 0;
    }
    if (net->qn == net->qcap) {
      size_t nc = net->qcap ? net->qcap * 2 : 256;
      tp_pkt_t *nq = realloc(net->q, nc * sizeof *nq);
      if (!nq)
        abort();
      net->q = nq;
      net->qcap = nc;
    }
  }
  tp_pkt_t *p = &net->q[net->qn++];
  p->from = from;
  p->to = to;
  p->stream = stream;
  p->len = len;
  p->data = malloc(len ? len : 1);
  if (!p->data)
    abort();
  memcpy(p->data, buf, len);
}

static inline void tp_send(void *ud, const swim_addr_t *to, const uint8_t *buf,
                           size_t len) {
  tp_node_t *nd = ud;
  tp_push(nd->net, nd->idx, tp_addr_idx(to), 0, buf, len);
}

static inline void tp_send_stream(void *ud, const swim_addr_t *to,
                                  const uint8_t *buf, size_t len) {
  tp_node_t *nd = ud;
  tp_push(nd->net, nd->idx, tp_addr_idx(to), 1, buf, len);
}

static inline int tp_stream_busy(void *ud) {
  return ((tp_node_t *)ud)->stream_busy;
}

static inline uint64_t tp_rand64(void *ud) {
  tp_node_t *nd = ud;
  return tp_splitmix64(&nd->rng);
}

static inline void tp_event(void *ud, const swim_event_t *ev) {
  tp_node_t *nd = ud;
  if (nd->nev == nd->capev) {
    size_t nc = nd->capev ? nd->capev * 2 : 32;
    tp_ev_t *nv = realloc(nd->ev, nc * sizeof *nv);
    if (!nv)
      abort();
    nd->ev = nv;
    nd->capev = nc;
  }
  tp_ev_t *e = &nd->ev[nd->nev++];
  memset(e, 0, sizeof *e);
  e->kind = ev->kind;
  e->old_status = ev->old_status;
  e->status = ev->member.status;
  e->id8 = swim_id8(ev->member.id);
  e->inc = ev->member.inc;
  e->at = nd->net->now;
  strncpy(e->name, ev->member.name, SWIM_NAME_MAX);
  e->meta_len = ev->member.meta_len;
  memcpy(e->meta, ev->member.meta,
         ev->member.meta_len < sizeof e->meta ? ev->member.meta_len
                                              : sizeof e->meta);
  if (nd->net->on_event)
    nd->net->on_event(nd, ev);
}

static inline int tp_sign(void *ud, uint8_t sig[SWIM_SIG_LEN],
                          const uint8_t *msg, size_t len) {
  tp_node_t *nd = ud;
  uint8_t id[SWIM_ID_LEN];
  tp_id(id, nd->idx);
  tp_toy_sig(sig, id, msg, len);
  return 0;
}

static inline int tp_verify(void *ud, const uint8_t id[SWIM_ID_LEN],
                            const uint8_t *msg, size_t len, const uint8_t *sig,
                            const char *name, size_t name_len,
                            const uint8_t *meta, size_t meta_len) {
  tp_node_t *nd = ud;
  /* the name and metadata handed over must be the record's own bytes */
  const uint8_t *nm = (const uint8_t *)name;
  if ((name && (nm < msg || name_len > len || nm + name_len > msg + len)) ||
      (meta && meta_len &&
       (meta < msg || meta_len > len || meta + meta_len > msg + len)))
    nd->net->verify_bad_args++;
  if (!sig)
    return -1; /* this cluster signs everything */
  uint8_t want[SWIM_SIG_LEN];
  tp_toy_sig(want, id, msg, len);
  return memcmp(want, sig, SWIM_SIG_LEN) == 0 ? 0 : -1;
}

/* ---- the network ---- */

static inline tp_net_t *tp_net_new(uint64_t seed, int shared_cache) {
  tp_net_t *net = calloc(1, sizeof *net);
  if (!net)
    abort();
  net->seed = seed;
  net->now = 1000000; /* anything but 0: times are not special at zero */
  if (shared_cache)
    net->cache = swim_rec_cache_new();
  return net;
}

static inline void tp_config(tp_net_t *net, int i, swim_config_t *cfg) {
  (void)net;
  swim_config_default(cfg);
  tp_id(cfg->id, i);
  snprintf(cfg->name, sizeof cfg->name, "node-%d", i);
  cfg->addr = tp_addr(i);
  cfg->generation = 1;
}

/* Starts node i with `cfg` (NULL: the default one). Returns swim_new's
 * code. */
static inline int tp_start_cfg(tp_net_t *net, int i, const swim_config_t *cfg,
                               int signing) {
  swim_config_t c;
  if (!cfg) {
    tp_config(net, i, &c);
    cfg = &c;
  }
  tp_node_t *nd = &net->n[i];
  nd->net = net;
  nd->idx = i;
  nd->signing = signing;
  nd->rng = net->seed * 0x100000001B3ull + (uint64_t)i * 0x9E3779B97F4A7C15ull;
  swim_callbacks_t cb;
  memset(&cb, 0, sizeof cb);
  cb.send = tp_send;
  cb.send_stream = tp_send_stream;
  cb.stream_busy = tp_stream_busy;
  cb.rand64 = tp_rand64;
  cb.event = tp_event;
  if (signing) {
    cb.sign = tp_sign;
    cb.verify = tp_verify;
  }
  swim_config_t cc = *cfg;
  if (net->cache && !cc.cache)
    cc.cache = net->cache;
  int rc = swim_new(&nd->core, &cc, &cb, nd, net->now);
  if (rc == 0 && i >= net->count)
    net->count = i + 1;
  return rc;
}

static inline int tp_start(tp_net_t *net, int i, int signing) {
  return tp_start_cfg(net, i, NULL, signing);
}

static inline void tp_stop(tp_net_t *net, int i) {
  swim_free(net->n[i].core);
  net->n[i].core = NULL;
}

/* Delivers everything queued, and whatever that causes, in FIFO order. */
static inline void tp_drain(tp_net_t *net) {
  for (size_t guard = 0; net->qhead < net->qn && guard < 1000000; guard++) {
    tp_pkt_t p = net->q[net->qhead++];
    tp_node_t *nd = &net->n[p.to];
    if (nd->core) {
      swim_addr_t from = tp_addr(p.from);
      int rc = swim_recv(nd->core, &from, p.data, p.len, net->now);
      nd->last_recv_rc = rc;
      if (rc)
        nd->recv_errors++;
    }
    free(p.data);
  }
  if (net->qhead == net->qn)
    net->qhead = net->qn = 0;
}

/* Moves time forward by `ms` in small steps, ticking every node and
 * draining the network at each step. */
static inline void tp_run(tp_net_t *net, uint64_t ms) {
  uint64_t end = net->now + ms;
  while (net->now < end) {
    net->now += TP_STEP_MS;
    if (net->now > end)
      net->now = end;
    for (int i = 0; i < net->count; i++)
      if (net->n[i].core)
        swim_tick(net->n[i].core, net->now);
    tp_drain(net);
  }
}

static inline int tp_join(tp_net_t *net, int i, int seed) {
  swim_addr_t a = tp_addr(seed);
  int rc = swim_join(net->n[i].core, &a, 1, net->now);
  tp_drain(net);
  return rc;
}

/* Status of `subject` in `observer`'s view, or -1 when it is unknown. */
static inline int tp_status(tp_net_t *net, int observer, int subject) {
  uint8_t id[SWIM_ID_LEN];
  tp_id(id, subject);
  swim_member_t m;
  if (swim_member_find(net->n[observer].core, id, &m) != 0)
    return -1;
  return (int)m.status;
}

static inline int tp_member(tp_net_t *net, int observer, int subject,
                            swim_member_t *out) {
  uint8_t id[SWIM_ID_LEN];
  tp_id(id, subject);
  return swim_member_find(net->n[observer].core, id, out);
}

/* Runs until `observer` sees `subject` in `status`; the time it took, or
 * UINT64_MAX after `timeout_ms`. */
static inline uint64_t tp_wait_status(tp_net_t *net, int observer, int subject,
                                      int status, uint64_t timeout_ms) {
  uint64_t start = net->now;
  while (tp_status(net, observer, subject) != status) {
    if (net->now - start >= timeout_ms)
      return UINT64_MAX;
    tp_run(net, TP_STEP_MS);
  }
  return net->now - start;
}

/* Runs until every running node sees every running node alive. */
static inline int tp_wait_converged(tp_net_t *net, uint64_t timeout_ms) {
  uint64_t start = net->now;
  for (;;) {
    int ok = 1;
    for (int i = 0; i < net->count && ok; i++)
      for (int j = 0; j < net->count && ok; j++)
        if (net->n[i].core && net->n[j].core &&
            tp_status(net, i, j) != SWIM_ALIVE)
          ok = 0;
    if (ok)
      return 1;
    if (net->now - start >= timeout_ms)
      return 0;
    tp_run(net, 50);
  }
}

/* The index of the first event of `kind` about `subject` recorded by
 * `observer` at or after position `from`, or -1. */
static inline long tp_find_ev(tp_net_t *net, int observer, int subject,
                              swim_event_kind_t kind, size_t from) {
  tp_node_t *nd = &net->n[observer];
  uint64_t id8 = tp_id8(subject);
  for (size_t i = from; i < nd->nev; i++)
    if (nd->ev[i].id8 == id8 && nd->ev[i].kind == kind)
      return (long)i;
  return -1;
}

static inline size_t tp_count_ev(tp_net_t *net, int observer, int subject,
                                 swim_event_kind_t kind) {
  size_t c = 0;
  tp_node_t *nd = &net->n[observer];
  uint64_t id8 = tp_id8(subject);
  for (size_t i = 0; i < nd->nev; i++)
    c += nd->ev[i].id8 == id8 && nd->ev[i].kind == kind;
  return c;
}

static inline void tp_isolate(tp_net_t *net, int i, int on) {
  net->n[i].isolated = on;
}

static inline void tp_net_free(tp_net_t *net) {
  for (int i = 0; i < TP_MAX; i++) {
    swim_free(net->n[i].core);
    free(net->n[i].ev);
  }
  for (size_t i = net->qhead; i < net->qn; i++)
    free(net->q[i].data);
  free(net->q);
  swim_rec_cache_free(net->cache); /* after every core that used it */
  free(net);
}

#endif
