/*
 * simnet.c: virtual clock, virtual network and observation layer of the
 * livemesh simulator (see simnet.h).
 *
 * Everything that happens is an entry of one binary heap ordered by
 * (deadline, insertion sequence): a core's timer or a packet arriving. Equal
 * deadlines pop in insertion order, so a run is a pure function of the seed.
 * Randomness comes from three xoshiro256** families derived from the seed:
 * one per node (its id and its core's rand64), one for the network (loss,
 * latency) and one for scenario drivers, so adding a node's draw never
 * shifts the network's.
 *
 * Must never depend on: libuv, mesh/, a real clock, rand(), global state.
 */
#include "simnet.h"
#include "swim_proto.h" /* swim_id8 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- PRNG -- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct rng {
  uint64_t s[4];
} rng_t;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng_t *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

/* Streams: which family a generator belongs to, so (seed, node 3) and
 * (seed, network) never share a state. */
enum { STREAM_NODE = 1, STREAM_NET = 2, STREAM_SCENARIO = 3 };

static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t x = seed;
  uint64_t a = splitmix64(&x);
  x = a ^ (stream * 0xd1b54a32d192ed03ull);
  uint64_t b = splitmix64(&x);
  x = b ^ (index * 0x8cb92ba72f3d8dd7ull);
  splitmix64(&x);
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
}

/* Uniform in [0, n) without a division (Lemire). */
static uint64_t rng_below(rng_t *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static double rng_unit(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* ------------------------------------------------------------- packets -- */

typedef struct pkt {
  struct pkt *next; /* a paused node's queue, or the bootstrap queue */
  uint32_t from, to;
  uint32_t len;
  uint8_t stream;
  uint8_t data[];
} pkt_t;

/* ---------------------------------------------------------- event heap -- */

enum {
  EV_TICK = 1,
  EV_PKT = 2,
  EV_LEAVE_DEADLINE = 3,
  EV_USER = 4,
  EV_REJOIN_POLL = 5
};

/* A restart noticed before the crash was is silent in the core (the member
 * stays alive, only its generation moves), so rejoins are polled. */
#define REJOIN_POLL_MS 100

typedef struct user_timer {
  lm_sim_timer_cb fn;
  void *arg;
} user_timer_t;

typedef struct ev {
  uint64_t at;
  uint64_t seq;
  uint32_t kind;
  uint32_t node;
  uint32_t stamp;
  pkt_t *pkt;          /* EV_PKT */
  user_timer_t *user;  /* EV_USER */
} ev_t;

typedef struct heap {
  ev_t *v;
  size_t n, cap;
  uint64_t seq;
} heap_t;

static int ev_before(const ev_t *a, const ev_t *b) {
  return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int heap_push(heap_t *h, ev_t e) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 1024;
    ev_t *v = realloc(h->v, cap * sizeof *v);
    if (!v)
      return -1;
    h->v = v;
    h->cap = cap;
  }
  e.seq = h->seq++;
  size_t i = h->n++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!ev_before(&e, &h->v[p]))
      break;
    h->v[i] = h->v[p];
    i = p;
  }
  h->v[i] = e;
  return 0;
}

static ev_t heap_pop(heap_t *h) {
  ev_t top = h->v[0];
  ev_t last = h->v[--h->n];
  size_t i = 0, n = h->n;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && ev_before(&h->v[c + 1], &h->v[c]))
      c++;
    if (!ev_before(&h->v[c], &last))
      break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (n > 0)
    h->v[i] = last;
  return top;
}

/* ------------------------------------------------------------ link map -- */

/* Per-link settings are rare (a test blocks a few links), so they live in a
 * small open-addressing table keyed by (from << 32 | to), never an N*N
 * matrix. Entries are zeroed rather than removed. */
typedef struct link {
  uint64_t key; /* UINT64_MAX = empty */
  double loss;
  uint8_t blocked;
} link_t;

typedef struct linkmap {
  link_t *v;
  size_t cap, used;
  size_t nblocked, nlossy;
} linkmap_t;

static size_t hash64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return (size_t)k;
}

static link_t *link_find(const linkmap_t *m, uint64_t key) {
  if (!m->cap)
    return NULL;
  for (size_t i = hash64(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (m->v[i].key == key)
      return &m->v[i];
    if (m->v[i].key == UINT64_MAX)
      return NULL;
  }
}

static link_t *link_get(linkmap_t *m, uint64_t key) {
  link_t *l = link_find(m, key);
  if (l)
    return l;
  if ((m->used + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    link_t *v = malloc(cap * sizeof *v);
    if (!v)
      return NULL;
    for (size_t i = 0; i < cap; i++)
      v[i].key = UINT64_MAX;
    for (size_t i = 0; i < m->cap; i++) {
      if (m->v[i].key == UINT64_MAX)
        continue;
      size_t j = hash64(m->v[i].key) & (cap - 1);
      while (v[j].key != UINT64_MAX)
        j = (j + 1) & (cap - 1);
      v[j] = m->v[i];
    }
    free(m->v);
    m->v = v;
    m->cap = cap;
  }
  size_t i = hash64(key) & (m->cap - 1);
  while (m->v[i].key != UINT64_MAX)
    i = (i + 1) & (m->cap - 1);
  m->v[i].key = key;
  m->v[i].loss = 0;
  m->v[i].blocked = 0;
  m->used++;
  return &m->v[i];
}

static uint64_t link_key(uint32_t from, uint32_t to) {
  return (uint64_t)from << 32 | to;
}

/* ------------------------------------------------------------ trackers -- */

/* "Has every up node seen X about subject yet?" One flag per observer and
 * a count of flags held by up observers; the goal is reached when the count
 * equals the number of up nodes other than the subject. */
enum { TK_DEAD = 1, TK_REJOIN = 2, TK_META = 3 };

typedef struct tracker {
  uint32_t subject;
  uint8_t kind;
  uint8_t open;
  uint8_t *have;
  uint32_t count;
  uint64_t done_at;
} tracker_t;

typedef struct crash_rec {
  lm_sim_crash_info_t info;
  tracker_t dead;   /* observers that have it DEAD/LEFT or do not know it */
  tracker_t rejoin; /* after restart: observers that see the new gen alive */
} crash_rec_t;

/* --------------------------------------------------------------- nodes -- */

typedef struct node {
  lm_sim_t *sim;
  swim_core_t *core;
  uint32_t idx;
  uint32_t gen;
  uint8_t paused;
  uint8_t leaving;
  uint8_t ever_unhealthy;
  uint8_t group;
  int32_t crash_k; /* latest crash record, -1 none */
  uint32_t tick_stamp;
  uint32_t leave_stamp;
  uint64_t tick_at; /* deadline of the live tick entry, UINT64_MAX none */
  double drop;
  rng_t rng;
  uint8_t id[SWIM_ID_LEN];
  char name[16];
  pkt_t *q_head, *q_tail;
  uint32_t q_len;
  lm_sim_node_stats_t st;
} node_t;

struct lm_sim {
  lm_sim_opts_t o;
  uint64_t now;
  uint32_t n;
  uint32_t n_up;
  node_t *nodes;
  heap_t heap;
  rng_t net_rng;
  rng_t scn_rng;
  swim_rec_cache_t *cache;
  /* id -> node index: open addressing on the id's first 8 bytes */
  uint32_t *idmap;
  size_t idmap_cap;
  /* network */
  double loss;
  uint32_t lat_min, lat_max;
  linkmap_t links;
  uint16_t cut[LM_SIM_MAX_GROUPS]; /* bit g of cut[f]: group f -> g cut */
  int cut_any;
  /* bootstrap */
  int booting;
  pkt_t *boot_head, *boot_tail;
  /* observation */
  crash_rec_t *crashes;
  size_t ncrashes, crashes_cap;
  tracker_t meta;
  uint8_t *meta_bytes;
  size_t meta_len;
  uint64_t meta_started;
  int meta_any;
  int rejoin_poll_pending;
  int oom; /* an allocation failed somewhere a callback could not report */
};

/* --------------------------------------------------------- addressing -- */

static void addr_of(uint32_t i, swim_addr_t *a) {
  uint32_t v = i + 1; /* 10.0.0.0 is not a host address */
  memset(a, 0, sizeof *a);
  a->family = 4;
  a->ip[0] = 10;
  a->ip[1] = (uint8_t)(v >> 16);
  a->ip[2] = (uint8_t)(v >> 8);
  a->ip[3] = (uint8_t)v;
  a->port = LM_SIM_PORT;
}

int32_t lm_sim_addr_index(const lm_sim_t *sim, const swim_addr_t *a) {
  if (!a || a->family != 4 || a->ip[0] != 10 || a->port != LM_SIM_PORT)
    return -1;
  uint32_t v = (uint32_t)a->ip[1] << 16 | (uint32_t)a->ip[2] << 8 | a->ip[3];
  if (v == 0 || v - 1 >= sim->n)
    return -1;
  return (int32_t)(v - 1);
}

static uint64_t id_key(const uint8_t *id) {
  uint64_t k;
  memcpy(&k, id, sizeof k);
  return k;
}

static int idmap_build(lm_sim_t *sim) {
  size_t cap = 16;
  while (cap < (size_t)sim->n * 2)
    cap *= 2;
  sim->idmap = malloc(cap * sizeof *sim->idmap);
  if (!sim->idmap)
    return -1;
  sim->idmap_cap = cap;
  for (size_t i = 0; i < cap; i++)
    sim->idmap[i] = UINT32_MAX;
  for (uint32_t n = 0; n < sim->n; n++) {
    size_t i = hash64(id_key(sim->nodes[n].id)) & (cap - 1);
    while (sim->idmap[i] != UINT32_MAX)
      i = (i + 1) & (cap - 1);
    sim->idmap[i] = n;
  }
  return 0;
}

int32_t lm_sim_id_index(const lm_sim_t *sim, const uint8_t id[SWIM_ID_LEN]) {
  if (!id)
    return -1;
  size_t cap = sim->idmap_cap;
  for (size_t i = hash64(id_key(id)) & (cap - 1);; i = (i + 1) & (cap - 1)) {
    uint32_t n = sim->idmap[i];
    if (n == UINT32_MAX)
      return -1;
    if (memcmp(sim->nodes[n].id, id, SWIM_ID_LEN) == 0)
      return (int32_t)n;
  }
}

/* ------------------------------------------------------------ trackers -- */

static int tk_init(lm_sim_t *sim, tracker_t *t, uint8_t kind,
                   uint32_t subject) {
  t->have = calloc(sim->n ? sim->n : 1, 1);
  if (!t->have)
    return -1;
  t->kind = kind;
  t->subject = subject;
  t->open = 1;
  t->count = 0;
  t->done_at = 0;
  return 0;
}

static void tk_close(tracker_t *t) {
  free(t->have);
  t->have = NULL;
  t->open = 0;
}

static void tk_check(lm_sim_t *sim, tracker_t *t) {
  if (!t->open || t->done_at)
    return;
  uint32_t need = sim->n_up - (sim->nodes[t->subject].core ? 1 : 0);
  if (t->count >= need)
    t->done_at = sim->now;
}

static void tk_set(lm_sim_t *sim, tracker_t *t, uint32_t obs, uint8_t v) {
  if (!t->open || obs == t->subject || !sim->nodes[obs].core)
    return;
  if (t->have[obs] == v)
    return;
  t->have[obs] = v;
  if (v)
    t->count++;
  else
    t->count--;
  tk_check(sim, t);
}

/* Calls fn on every open tracker, so that node crashes and restarts can
 * adjust the flags they hold. */
static void tk_each(lm_sim_t *sim, void (*fn)(lm_sim_t *, tracker_t *, void *),
                    void *arg) {
  for (size_t k = 0; k < sim->ncrashes; k++) {
    if (sim->crashes[k].dead.open)
      fn(sim, &sim->crashes[k].dead, arg);
    if (sim->crashes[k].rejoin.open)
      fn(sim, &sim->crashes[k].rejoin, arg);
  }
  if (sim->meta.open)
    fn(sim, &sim->meta, arg);
}

static void tk_drop_observer(lm_sim_t *sim, tracker_t *t, void *arg) {
  uint32_t obs = *(uint32_t *)arg;
  if (t->have[obs]) {
    t->have[obs] = 0;
    t->count--;
  }
  tk_check(sim, t);
}

/* A fresh core knows nobody: it does not think a dead subject alive. */
static void tk_add_observer(lm_sim_t *sim, tracker_t *t, void *arg) {
  uint32_t obs = *(uint32_t *)arg;
  if (t->kind == TK_DEAD && obs != t->subject && !t->have[obs]) {
    t->have[obs] = 1;
    t->count++;
  }
  tk_check(sim, t);
}

/* ---------------------------------------------------------- scheduling -- */

static void sched(lm_sim_t *sim, uint64_t at, uint32_t kind, uint32_t node,
                  uint32_t stamp, pkt_t *p) {
  ev_t e = {.at = at, .kind = kind, .node = node, .stamp = stamp, .pkt = p};
  if (heap_push(&sim->heap, e) != 0) {
    sim->oom = 1;
    free(p);
  }
}

/* Keep one live tick entry per node at the core's next deadline. A later
 * deadline keeps the earlier entry (the core ticks early and reports its
 * real deadline again); an earlier one replaces it, the old entry going
 * stale through the stamp. */
static void resched(lm_sim_t *sim, node_t *n, int just_ticked) {
  if (!n->core || sim->booting)
    return;
  uint64_t d = swim_next_deadline(n->core);
  if (d == UINT64_MAX)
    return;
  if (d < sim->now)
    d = sim->now;
  /* A core that still says "now" after a tick would spin the clock. */
  if (just_ticked && d <= sim->now)
    d = sim->now + 1;
  if (d < n->tick_at) {
    n->tick_at = d;
    sched(sim, d, EV_TICK, n->idx, ++n->tick_stamp, NULL);
  }
}

static void node_stop(lm_sim_t *sim, node_t *n);

/* After every call into a core: a leaving node that has said goodbye goes
 * away, the others get their timer rescheduled. */
static void after_call(lm_sim_t *sim, node_t *n, int just_ticked) {
  if (n->core && n->leaving && swim_leave_done(n->core)) {
    node_stop(sim, n);
    return;
  }
  resched(sim, n, just_ticked);
}

#define LM_SIM_GEN0 1700000000u /* 2023-11-14 */

/* ----------------------------------------------------------- callbacks -- */

static void fate(lm_sim_t *sim, uint32_t from, uint32_t to,
                 const uint8_t *buf, size_t len, int stream, lm_sim_fate_t f) {
  if (sim->o.packet)
    sim->o.packet(sim->o.ud, sim->now, from, to, buf, len, stream, f);
}

static void net_send(node_t *src, const swim_addr_t *to_addr,
                     const uint8_t *buf, size_t len, int stream) {
  lm_sim_t *sim = src->sim;
  int32_t to = lm_sim_addr_index(sim, to_addr);
  if (stream) {
    /* A frame rides a TCP connection: to a down or cut-off node the
     * connect fails and nothing goes out. */
    if (!sim->booting && (to < 0 || !sim->nodes[to].core ||
                          !lm_sim_can_reach(sim, src->idx, (uint32_t)to))) {
      src->st.frames_failed++;
      if (to >= 0)
        fate(sim, src->idx, (uint32_t)to, buf, len, stream,
             sim->nodes[to].core ? LM_SIM_BLOCKED : LM_SIM_VANISHED);
      return;
    }
    src->st.frames_sent++;
    src->st.frame_bytes_sent += len;
  } else {
    src->st.pkts_sent++;
    src->st.bytes_sent += len;
    if (len > SWIM_MAX_PAYLOAD) {
      src->st.pkts_oversize++;
      return;
    }
  }
  if (to < 0) {
    src->st.pkts_vanished++;
    return;
  }
  /* Nobody listens at a crashed node. Deciding it now rather than on
   * arrival saves a copy (a restart within the latency window is the only
   * difference, and it does not matter). */
  if (!sim->booting && !sim->nodes[to].core) {
    src->st.pkts_vanished++;
    fate(sim, src->idx, (uint32_t)to, buf, len, stream, LM_SIM_VANISHED);
    return;
  }
  pkt_t *p = malloc(sizeof *p + len);
  if (!p) {
    sim->oom = 1;
    return;
  }
  p->next = NULL;
  p->from = src->idx;
  p->to = (uint32_t)to;
  p->len = (uint32_t)len;
  p->stream = (uint8_t)stream;
  memcpy(p->data, buf, len);
  if (sim->booting) {
    if (sim->boot_tail)
      sim->boot_tail->next = p;
    else
      sim->boot_head = p;
    sim->boot_tail = p;
    return;
  }
  if (!lm_sim_can_reach(sim, src->idx, (uint32_t)to)) {
    src->st.pkts_blocked++;
    fate(sim, src->idx, (uint32_t)to, buf, len, stream, LM_SIM_BLOCKED);
    free(p);
    return;
  }
  double keep = (1 - sim->loss) * (1 - src->drop) * (1 - sim->nodes[to].drop);
  if (sim->links.nlossy) {
    link_t *l = link_find(&sim->links, link_key(src->idx, (uint32_t)to));
    if (l)
      keep *= 1 - l->loss;
  }
  uint64_t stall = 0;
  if (stream && keep < 1) {
    /* TCP over a lossy path: a lost SYN or SYN-ACK costs a 1 s
     * retransmission (probability 1 - keep^2, mlbench's model); a path
     * that loses everything connects never. */
    if (keep <= 0) {
      src->st.frames_sent--;
      src->st.frame_bytes_sent -= len;
      src->st.frames_failed++;
      fate(sim, src->idx, (uint32_t)to, buf, len, stream, LM_SIM_LOST);
      free(p);
      return;
    }
    if (rng_unit(&sim->net_rng) >= keep * keep)
      stall = 1000;
  }
  if (!stream) {
    if (keep < 1 && rng_unit(&sim->net_rng) >= keep) {
      src->st.pkts_lost++;
      fate(sim, src->idx, (uint32_t)to, buf, len, stream, LM_SIM_LOST);
      free(p);
      return;
    }
  }
  uint64_t lat = sim->lat_min;
  if (sim->lat_max > sim->lat_min)
    lat += rng_below(&sim->net_rng, (uint64_t)(sim->lat_max - sim->lat_min) + 1);
  sched(sim, sim->now + lat + stall, EV_PKT, (uint32_t)to, 0, p);
}

static void cb_send(void *ud, const swim_addr_t *to, const uint8_t *buf,
                    size_t len) {
  net_send(ud, to, buf, len, 0);
}

static void cb_send_stream(void *ud, const swim_addr_t *to, const uint8_t *buf,
                           size_t len) {
  net_send(ud, to, buf, len, 1);
}

static uint64_t cb_rand64(void *ud) {
  node_t *n = ud;
  return rng_next(&n->rng);
}

static void cb_log(void *ud, int level, uint64_t now, const char *msg) {
  node_t *n = ud;
  lm_sim_t *sim = n->sim;
  if (sim->o.log && level <= sim->o.log_level)
    sim->o.log(sim->o.ud, now, n->idx, level, msg);
}

static int meta_matches(const lm_sim_t *sim, const swim_member_t *m) {
  return m->meta_len == sim->meta_len &&
         (sim->meta_len == 0 || memcmp(m->meta, sim->meta_bytes, sim->meta_len) == 0);
}

static void observe(lm_sim_t *sim, uint32_t obs, uint32_t s,
                    const swim_event_t *ev) {
  node_t *sn = &sim->nodes[s];
  crash_rec_t *cr = sn->crash_k >= 0 ? &sim->crashes[sn->crash_k] : NULL;
  tracker_t *dead = cr && cr->dead.open ? &cr->dead : NULL;
  tracker_t *rejoin = cr && cr->rejoin.open ? &cr->rejoin : NULL;
  tracker_t *meta = sim->meta.open && sim->meta.subject == s ? &sim->meta : NULL;
  int alive_now = 0; /* the event leaves the subject alive in obs's view */

  switch (ev->kind) {
  case SWIM_EV_SUSPECT:
    sn->st.suspect_events++;
    if (dead && !cr->info.first_suspect_at)
      cr->info.first_suspect_at = sim->now;
    if (dead)
      tk_set(sim, dead, obs, 0);
    if (rejoin)
      tk_set(sim, rejoin, obs, 0);
    break;
  case SWIM_EV_DEAD:
  case SWIM_EV_LEFT:
  case SWIM_EV_REAPED:
    if (ev->kind == SWIM_EV_DEAD)
      sn->st.dead_events++;
    if (dead && ev->kind != SWIM_EV_REAPED && !cr->info.first_dead_at)
      cr->info.first_dead_at = sim->now;
    if (dead)
      tk_set(sim, dead, obs, 1);
    if (rejoin)
      tk_set(sim, rejoin, obs, 0);
    if (meta)
      tk_set(sim, meta, obs, 0);
    break;
  case SWIM_EV_JOIN:
  case SWIM_EV_UPDATE:
    alive_now = 1;
    break;
  default:
    break;
  }
  if (alive_now) {
    if (dead)
      tk_set(sim, dead, obs, 0);
    if (rejoin && ev->member.inc.gen >= sn->gen)
      tk_set(sim, rejoin, obs, 1);
    if (meta)
      tk_set(sim, meta, obs, meta_matches(sim, &ev->member) ? 1 : 0);
  }
  if (cr && rejoin && rejoin->done_at && !cr->info.rejoined_at)
    cr->info.rejoined_at = rejoin->done_at;
  if (cr && dead && dead->done_at && !cr->info.all_dead_at)
    cr->info.all_dead_at = dead->done_at;
}

static void cb_event(void *ud, const swim_event_t *ev) {
  node_t *o = ud;
  lm_sim_t *sim = o->sim;
  if (sim->booting)
    return;
  int32_t s = ev->member.is_self ? (int32_t)o->idx
                                 : lm_sim_id_index(sim, ev->member.id);
  if (s >= 0 && !ev->member.is_self)
    observe(sim, o->idx, (uint32_t)s, ev);
  if (sim->o.trace)
    sim->o.trace(sim->o.ud, sim->now, o->idx, s, ev);
}

/* Trackers finish on their own when events arrive; a crash changes the
 * number of up nodes, so their records need the same bookkeeping. */
static void sync_crash_records(lm_sim_t *sim) {
  for (size_t k = 0; k < sim->ncrashes; k++) {
    crash_rec_t *cr = &sim->crashes[k];
    if (cr->dead.open && cr->dead.done_at && !cr->info.all_dead_at)
      cr->info.all_dead_at = cr->dead.done_at;
    if (cr->rejoin.open && cr->rejoin.done_at && !cr->info.rejoined_at)
      cr->info.rejoined_at = cr->rejoin.done_at;
  }
}

/* ------------------------------------------------------- node lifecycle -- */

/* Records carry a signature-sized placeholder, so relayed alive and leave
 * records weigh on the simulated wire what the runtime's signed ones do
 * (nobody verifies them here). */
static int cb_sign(void *ud, uint8_t sig[SWIM_SIG_LEN], const uint8_t *msg,
                   size_t len) {
  (void)ud;
  (void)msg;
  (void)len;
  memset(sig, 0x5a, SWIM_SIG_LEN);
  return 0;
}

static const swim_callbacks_t sim_callbacks = {
    .send = cb_send,
    .send_stream = cb_send_stream,
    .rand64 = cb_rand64,
    .log = cb_log,
    .event = cb_event,
    .sign = cb_sign,
};

static int node_start(lm_sim_t *sim, node_t *n) {
  swim_config_t cfg = sim->o.base;
  memcpy(cfg.id, n->id, SWIM_ID_LEN);
  memset(cfg.name, 0, sizeof cfg.name);
  memcpy(cfg.name, n->name, strlen(n->name));
  addr_of(n->idx, &cfg.addr);
  cfg.generation = n->gen;
  cfg.cache = sim->cache;
  cfg.sender_from_transport = 1;
  swim_callbacks_t cb = sim_callbacks;
  if (!sim->o.streams)
    cb.send_stream = NULL;
  swim_core_t *core = NULL;
  int rc = swim_new(&core, &cfg, &cb, n, sim->now);
  if (rc != 0)
    return rc;
  n->core = core;
  n->tick_at = UINT64_MAX;
  n->paused = 0;
  n->leaving = 0;
  sim->n_up++;
  return 0;
}

static void queue_free(node_t *n) {
  pkt_t *p = n->q_head;
  while (p) {
    pkt_t *next = p->next;
    free(p);
    p = next;
  }
  n->q_head = n->q_tail = NULL;
  n->q_len = 0;
}

/* The core goes away (crash or finished leave). */
static void node_stop(lm_sim_t *sim, node_t *n) {
  if (!n->core)
    return;
  swim_free(n->core);
  n->core = NULL;
  n->tick_stamp++; /* any tick entry in the heap is now stale */
  n->tick_at = UINT64_MAX;
  n->paused = 0;
  n->leaving = 0;
  n->ever_unhealthy = 1;
  queue_free(n);
  sim->n_up--;
  uint32_t obs = n->idx;
  tk_each(sim, tk_drop_observer, &obs);
  sync_crash_records(sim);
}

/* Observers that now hold the restarted node's new generation as alive get
 * their flag; reschedules itself while a rejoin is unfinished. */
static void rejoin_poll(lm_sim_t *sim) {
  sim->rejoin_poll_pending = 0;
  int open = 0;
  for (size_t k = 0; k < sim->ncrashes; k++) {
    crash_rec_t *cr = &sim->crashes[k];
    tracker_t *t = &cr->rejoin;
    if (!t->open || t->done_at)
      continue;
    const node_t *sn = &sim->nodes[t->subject];
    for (uint32_t o = 0; o < sim->n && !t->done_at; o++) {
      if (t->have[o] || o == t->subject || !sim->nodes[o].core)
        continue;
      swim_member_t m;
      if (swim_member_find(sim->nodes[o].core, sn->id, &m) == 0 &&
          m.status == SWIM_ALIVE && m.inc.gen >= sn->gen)
        tk_set(sim, t, o, 1);
    }
    if (t->done_at && !cr->info.rejoined_at)
      cr->info.rejoined_at = t->done_at;
    if (!t->done_at)
      open = 1;
  }
  if (open) {
    sim->rejoin_poll_pending = 1;
    sched(sim, sim->now + REJOIN_POLL_MS, EV_REJOIN_POLL, 0, 0, NULL);
  }
}

static void deliver(lm_sim_t *sim, node_t *n, pkt_t *p) {
  swim_addr_t from;
  addr_of(p->from, &from);
  if (p->stream) {
    n->st.frames_recv++;
    n->st.frame_bytes_recv += p->len;
  } else {
    n->st.pkts_recv++;
    n->st.bytes_recv += p->len;
  }
  fate(sim, p->from, p->to, p->data, p->len, p->stream, LM_SIM_DELIVERED);
  /* as the runtime does: the envelope names the sender, headers omit it */
  int rc = swim_recv_from(n->core, &from, swim_id8(sim->nodes[p->from].id),
                          p->data, p->len, sim->now);
  if (rc != 0)
    n->st.recv_errors++;
  free(p);
  after_call(sim, n, 0);
}

static void dispatch(lm_sim_t *sim, const ev_t *e) {
  node_t *n = &sim->nodes[e->node];
  switch (e->kind) {
  case EV_TICK:
    if (e->stamp != n->tick_stamp)
      return;
    n->tick_at = UINT64_MAX;
    if (!n->core)
      return;
    if (n->paused)
      return; /* lm_sim_resume() runs the overdue timers */
    swim_tick(n->core, sim->now);
    after_call(sim, n, 1);
    return;
  case EV_PKT: {
    pkt_t *p = e->pkt;
    /* A cut made while the packet was on the wire stops it too: nothing
     * crosses a partition while it stands. */
    if (!lm_sim_can_reach(sim, p->from, p->to)) {
      if (p->stream)
        sim->nodes[p->from].st.frames_failed++;
      else
        sim->nodes[p->from].st.pkts_blocked++;
      fate(sim, p->from, p->to, p->data, p->len, p->stream, LM_SIM_BLOCKED);
      free(p);
      return;
    }
    if (!n->core) {
      sim->nodes[p->from].st.pkts_vanished++;
      fate(sim, p->from, p->to, p->data, p->len, p->stream, LM_SIM_VANISHED);
      free(p);
      return;
    }
    if (n->paused) {
      if (!p->stream && n->q_len >= LM_SIM_PAUSE_QUEUE_MAX) {
        sim->nodes[p->from].st.pkts_vanished++;
        fate(sim, p->from, p->to, p->data, p->len, p->stream, LM_SIM_VANISHED);
        free(p);
        return;
      }
      fate(sim, p->from, p->to, p->data, p->len, p->stream, LM_SIM_QUEUED);
      p->next = NULL;
      if (n->q_tail)
        n->q_tail->next = p;
      else
        n->q_head = p;
      n->q_tail = p;
      n->q_len++;
      return;
    }
    deliver(sim, n, p);
    return;
  }
  case EV_LEAVE_DEADLINE:
    if (n->core && n->leaving && e->stamp == n->leave_stamp)
      node_stop(sim, n);
    return;
  case EV_REJOIN_POLL:
    rejoin_poll(sim);
    return;
  case EV_USER: {
    user_timer_t u = *e->user;
    free(e->user);
    u.fn(sim, u.arg);
    return;
  }
  default:
    return;
  }
}

/* ------------------------------------------------------------ bootstrap -- */

static void boot_drop_all(lm_sim_t *sim) {
  pkt_t *p = sim->boot_head;
  while (p) {
    pkt_t *next = p->next;
    free(p);
    p = next;
  }
  sim->boot_head = sim->boot_tail = NULL;
}

static int bootstrap_by_helper(lm_sim_t *sim) {
  swim_core_t *c0 = sim->nodes[0].core;
  for (uint32_t i = 1; i < sim->n; i++)
    if (swim_bootstrap_from(c0, sim->nodes[i].core, sim->now) != 0)
      return -1;
  for (uint32_t i = 1; i < sim->n; i++)
    if (swim_bootstrap_from(sim->nodes[i].core, c0, sim->now) != 0)
      return -1;
  return 0;
}

/* Every node starts knowing every other one as alive. Whatever the cores
 * say meanwhile is dropped and no event counts. */
static int bootstrap(lm_sim_t *sim) {
  int rc = 0;
  sim->booting = 1;
  rc = bootstrap_by_helper(sim);
  boot_drop_all(sim);
  sim->booting = 0;
  for (uint32_t i = 0; i < sim->n; i++)
    resched(sim, &sim->nodes[i], 0);
  return rc;
}

/* ----------------------------------------------------------- lifecycle -- */

void lm_sim_opts_default(lm_sim_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->nodes = 10;
  o->seed = 1;
  o->lat_min_ms = 1;
  o->lat_max_ms = 5;
  o->loss = 0;
  o->bootstrap = 0;
  o->seeds = 1;
  o->streams = 1;
  swim_config_default(&o->base);
  o->log_level = SWIM_LOG_WARN;
}

lm_sim_t *lm_sim_new(const lm_sim_opts_t *o) {
  if (!o || o->nodes == 0 || o->nodes >= (1u << 24) - 1 || o->loss < 0 ||
      o->loss > 1 || o->lat_max_ms < o->lat_min_ms)
    return NULL;
  lm_sim_t *sim = calloc(1, sizeof *sim);
  if (!sim)
    return NULL;
  sim->o = *o;
  if (sim->o.seeds == 0)
    sim->o.seeds = 1;
  if (sim->o.seeds > o->nodes)
    sim->o.seeds = o->nodes;
  sim->o.base.meta = NULL; /* copied by each core; not kept by us */
  sim->o.base.meta_len = 0;
  if (o->base.meta_len) {
    sim->meta_bytes = malloc(o->base.meta_len);
    if (!sim->meta_bytes)
      goto fail;
    memcpy(sim->meta_bytes, o->base.meta, o->base.meta_len);
    sim->meta_len = o->base.meta_len;
    sim->o.base.meta = sim->meta_bytes;
    sim->o.base.meta_len = sim->meta_len;
  }
  sim->now = LM_SIM_EPOCH_MS;
  sim->n = o->nodes;
  sim->loss = o->loss;
  sim->lat_min = o->lat_min_ms;
  sim->lat_max = o->lat_max_ms;
  rng_seed(&sim->net_rng, o->seed, STREAM_NET, 0);
  rng_seed(&sim->scn_rng, o->seed, STREAM_SCENARIO, 0);
  sim->cache = swim_rec_cache_new();
  sim->nodes = calloc(sim->n, sizeof *sim->nodes);
  if (!sim->cache || !sim->nodes)
    goto fail;
  for (uint32_t i = 0; i < sim->n; i++) {
    node_t *n = &sim->nodes[i];
    n->sim = sim;
    n->idx = i;
    /* a real node's first generation is its start time in Unix seconds,
     * which takes 5 bytes in msgpack wherever an incarnation travels; a
     * fixed one of the same size keeps the simulated wire honest and
     * the runs deterministic */
    n->gen = LM_SIM_GEN0;
    n->crash_k = -1;
    n->tick_at = UINT64_MAX;
    rng_seed(&n->rng, o->seed, STREAM_NODE, i);
    for (int k = 0; k < SWIM_ID_LEN; k += 8) {
      uint64_t r = rng_next(&n->rng);
      memcpy(n->id + k, &r, 8);
    }
    snprintf(n->name, sizeof n->name, "n%u", i);
  }
  if (idmap_build(sim) != 0)
    goto fail;
  for (uint32_t i = 0; i < sim->n; i++)
    if (node_start(sim, &sim->nodes[i]) != 0)
      goto fail;
  if (o->bootstrap) {
    if (bootstrap(sim) != 0)
      goto fail;
  } else {
    swim_addr_t *seeds = calloc(sim->o.seeds, sizeof *seeds);
    if (!seeds)
      goto fail;
    for (uint32_t k = 0; k < sim->o.seeds; k++)
      addr_of(k, &seeds[k]);
    for (uint32_t i = 0; i < sim->n; i++) {
      node_t *n = &sim->nodes[i];
      /* A seed joins the other seeds; a lone seed has nobody to join. */
      if (i < sim->o.seeds) {
        if (sim->o.seeds > 1) {
          swim_addr_t *others = seeds + (i == 0 ? 1 : 0);
          swim_join(n->core, others, i == 0 ? sim->o.seeds - 1 : 1, sim->now);
        }
      } else {
        swim_join(n->core, seeds, sim->o.seeds, sim->now);
      }
      after_call(sim, n, 0);
    }
    free(seeds);
  }
  if (sim->oom)
    goto fail;
  return sim;
fail:
  lm_sim_free(sim);
  return NULL;
}

void lm_sim_free(lm_sim_t *sim) {
  if (!sim)
    return;
  while (sim->heap.n) {
    ev_t e = heap_pop(&sim->heap);
    free(e.pkt);
    free(e.user);
  }
  free(sim->heap.v);
  boot_drop_all(sim);
  if (sim->nodes) {
    for (uint32_t i = 0; i < sim->n; i++) {
      queue_free(&sim->nodes[i]);
      if (sim->nodes[i].core)
        swim_free(sim->nodes[i].core);
    }
  }
  for (size_t k = 0; k < sim->ncrashes; k++) {
    tk_close(&sim->crashes[k].dead);
    tk_close(&sim->crashes[k].rejoin);
  }
  free(sim->crashes);
  tk_close(&sim->meta);
  free(sim->meta_bytes);
  free(sim->links.v);
  free(sim->idmap);
  free(sim->nodes);
  swim_rec_cache_free(sim->cache);
  free(sim);
}

uint32_t lm_sim_size(const lm_sim_t *sim) { return sim->n; }
uint64_t lm_sim_now(const lm_sim_t *sim) { return sim->now; }
uint64_t lm_sim_seed(const lm_sim_t *sim) { return sim->o.seed; }
size_t lm_sim_pending(const lm_sim_t *sim) { return sim->heap.n; }
uint64_t lm_sim_rand(lm_sim_t *sim) { return rng_next(&sim->scn_rng); }

int lm_sim_at(lm_sim_t *sim, uint64_t at, lm_sim_timer_cb fn, void *arg) {
  if (!fn)
    return -1;
  user_timer_t *u = malloc(sizeof *u);
  if (!u)
    return -1;
  u->fn = fn;
  u->arg = arg;
  ev_t e = {.at = at < sim->now ? sim->now : at, .kind = EV_USER, .user = u};
  if (heap_push(&sim->heap, e) != 0) {
    free(u);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- clock -- */

void lm_sim_run_to(lm_sim_t *sim, uint64_t t) {
  while (sim->heap.n && sim->heap.v[0].at <= t) {
    ev_t e = heap_pop(&sim->heap);
    sim->now = e.at;
    dispatch(sim, &e);
  }
  if (t > sim->now)
    sim->now = t;
}

void lm_sim_run(lm_sim_t *sim, uint64_t ms) { lm_sim_run_to(sim, sim->now + ms); }

int lm_sim_run_until(lm_sim_t *sim, uint64_t timeout_ms,
                     int (*pred)(lm_sim_t *sim, void *arg), void *arg) {
  uint64_t end = sim->now + timeout_ms;
  if (pred(sim, arg))
    return 0;
  while (sim->heap.n && sim->heap.v[0].at <= end) {
    ev_t e = heap_pop(&sim->heap);
    sim->now = e.at;
    dispatch(sim, &e);
    if (pred(sim, arg))
      return 0;
  }
  sim->now = end;
  return pred(sim, arg) ? 0 : -1;
}

/* ---------------------------------------------------------------- nodes -- */

swim_core_t *lm_sim_core(lm_sim_t *sim, uint32_t i) {
  return i < sim->n ? sim->nodes[i].core : NULL;
}

const uint8_t *lm_sim_node_id(const lm_sim_t *sim, uint32_t i) {
  return i < sim->n ? sim->nodes[i].id : NULL;
}

const char *lm_sim_node_name(const lm_sim_t *sim, uint32_t i) {
  return i < sim->n ? sim->nodes[i].name : NULL;
}

void lm_sim_node_addr(const lm_sim_t *sim, uint32_t i, swim_addr_t *out) {
  (void)sim;
  addr_of(i, out);
}

int lm_sim_is_up(const lm_sim_t *sim, uint32_t i) {
  return i < sim->n && sim->nodes[i].core != NULL;
}

int lm_sim_is_paused(const lm_sim_t *sim, uint32_t i) {
  return i < sim->n && sim->nodes[i].paused;
}

uint32_t lm_sim_up_count(const lm_sim_t *sim) { return sim->n_up; }

int lm_sim_ever_unhealthy(const lm_sim_t *sim, uint32_t i) {
  return i < sim->n && sim->nodes[i].ever_unhealthy;
}

int lm_sim_pause(lm_sim_t *sim, uint32_t i) {
  if (i >= sim->n || !sim->nodes[i].core || sim->nodes[i].paused)
    return -1;
  sim->nodes[i].paused = 1;
  sim->nodes[i].ever_unhealthy = 1;
  return 0;
}

int lm_sim_resume(lm_sim_t *sim, uint32_t i) {
  if (i >= sim->n || !sim->nodes[i].core || !sim->nodes[i].paused)
    return -1;
  node_t *n = &sim->nodes[i];
  n->paused = 0;
  /* Like an event loop after SIGCONT: overdue timers first, then whatever
   * waited in the socket buffer, oldest first. */
  swim_tick(n->core, sim->now);
  after_call(sim, n, 0);
  while (n->core && n->q_head) {
    pkt_t *p = n->q_head;
    n->q_head = p->next;
    if (!n->q_head)
      n->q_tail = NULL;
    n->q_len--;
    deliver(sim, n, p);
  }
  queue_free(n); /* when the node left while draining */
  return 0;
}

int lm_sim_crash(lm_sim_t *sim, uint32_t i) {
  if (i >= sim->n || !sim->nodes[i].core)
    return -1;
  node_t *n = &sim->nodes[i];
  if (sim->ncrashes == sim->crashes_cap) {
    size_t cap = sim->crashes_cap ? sim->crashes_cap * 2 : 16;
    crash_rec_t *v = realloc(sim->crashes, cap * sizeof *v);
    if (!v)
      return -1;
    sim->crashes = v;
    sim->crashes_cap = cap;
  }
  crash_rec_t *cr = &sim->crashes[sim->ncrashes];
  memset(cr, 0, sizeof *cr);
  if (tk_init(sim, &cr->dead, TK_DEAD, i) != 0)
    return -1;
  cr->info.node = i;
  cr->info.crashed_at = sim->now;
  /* An earlier crash of this node stops counting: the node was back. */
  if (n->crash_k >= 0) {
    tk_close(&sim->crashes[n->crash_k].dead);
    tk_close(&sim->crashes[n->crash_k].rejoin);
  }
  n->crash_k = (int32_t)sim->ncrashes++;
  node_stop(sim, n);
  /* Observers that never knew the node do not think it alive. */
  for (uint32_t o = 0; o < sim->n; o++) {
    if (o == i || !sim->nodes[o].core)
      continue;
    int st = lm_sim_status(sim, o, i);
    if (st < 0 || st >= SWIM_DEAD) {
      cr->dead.have[o] = 1;
      cr->dead.count++;
    }
  }
  tk_check(sim, &cr->dead);
  sync_crash_records(sim);
  return 0;
}

int lm_sim_restart(lm_sim_t *sim, uint32_t i) {
  if (i >= sim->n || sim->nodes[i].core)
    return -1;
  node_t *n = &sim->nodes[i];
  n->gen++;
  if (node_start(sim, n) != 0) {
    n->gen--;
    return -1;
  }
  n->ever_unhealthy = 1;
  if (n->crash_k >= 0) {
    crash_rec_t *cr = &sim->crashes[n->crash_k];
    if (cr->dead.open && !cr->info.restarted_at) {
      cr->info.restarted_at = sim->now;
      tk_close(&cr->dead);
      if (tk_init(sim, &cr->rejoin, TK_REJOIN, i) != 0)
        sim->oom = 1;
    }
  }
  uint32_t obs = i;
  tk_each(sim, tk_add_observer, &obs);
  sync_crash_records(sim);
  if (!sim->rejoin_poll_pending) {
    sim->rejoin_poll_pending = 1;
    sched(sim, sim->now + REJOIN_POLL_MS, EV_REJOIN_POLL, 0, 0, NULL);
  }
  /* Join through the first up seed other than itself. */
  swim_addr_t seed;
  int have_seed = 0;
  for (uint32_t k = 0; k < sim->n && !have_seed; k++) {
    if (k != i && sim->nodes[k].core) {
      addr_of(k, &seed);
      have_seed = 1;
    }
  }
  if (have_seed)
    swim_join(n->core, &seed, 1, sim->now);
  after_call(sim, n, 0);
  return 0;
}

int lm_sim_leave(lm_sim_t *sim, uint32_t i) {
  if (i >= sim->n || !sim->nodes[i].core || sim->nodes[i].leaving)
    return -1;
  node_t *n = &sim->nodes[i];
  if (swim_leave(n->core, sim->now) != 0)
    return -1;
  n->leaving = 1;
  n->ever_unhealthy = 1;
  sched(sim, sim->now + 10000, EV_LEAVE_DEADLINE, i, ++n->leave_stamp, NULL);
  after_call(sim, n, 0);
  return 0;
}

int lm_sim_set_meta(lm_sim_t *sim, uint32_t i, const uint8_t *meta,
                    size_t len) {
  if (i >= sim->n || !sim->nodes[i].core || (len && !meta))
    return -1;
  node_t *n = &sim->nodes[i];
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy)
    return -1;
  if (len)
    memcpy(copy, meta, len);
  if (swim_set_meta(n->core, meta, len, sim->now) != 0) {
    free(copy);
    return -1;
  }
  free(sim->meta_bytes);
  sim->meta_bytes = copy;
  sim->meta_len = len;
  tk_close(&sim->meta);
  if (tk_init(sim, &sim->meta, TK_META, i) != 0) {
    sim->oom = 1;
    return -1;
  }
  sim->meta_started = sim->now;
  sim->meta_any = 1;
  tk_check(sim, &sim->meta); /* a cluster of one is done at once */
  after_call(sim, n, 0);
  return 0;
}

int lm_sim_dissemination(const lm_sim_t *sim, uint32_t *node,
                         uint64_t *started_at, uint64_t *done_at) {
  if (!sim->meta_any)
    return -1;
  if (node)
    *node = sim->meta.subject;
  if (started_at)
    *started_at = sim->meta_started;
  if (done_at)
    *done_at = sim->meta.done_at;
  return 0;
}

/* -------------------------------------------------------------- network -- */

void lm_sim_set_loss(lm_sim_t *sim, double p) {
  sim->loss = p < 0 ? 0 : p > 1 ? 1 : p;
}

void lm_sim_set_latency(lm_sim_t *sim, uint32_t min_ms, uint32_t max_ms) {
  sim->lat_min = min_ms;
  sim->lat_max = max_ms < min_ms ? min_ms : max_ms;
}

int lm_sim_set_drop(lm_sim_t *sim, uint32_t i, double p) {
  if (i >= sim->n || p < 0 || p > 1)
    return -1;
  sim->nodes[i].drop = p;
  return 0;
}

int lm_sim_set_drop_channel(lm_sim_t *sim, uint32_t from, uint32_t to,
                            double p) {
  if (from >= sim->n || to >= sim->n || p < 0 || p > 1)
    return -1;
  link_t *l = link_get(&sim->links, link_key(from, to));
  if (!l)
    return -1;
  if (l->loss == 0 && p > 0)
    sim->links.nlossy++;
  else if (l->loss > 0 && p == 0)
    sim->links.nlossy--;
  l->loss = p;
  return 0;
}

int lm_sim_block(lm_sim_t *sim, uint32_t from, uint32_t to) {
  if (from >= sim->n || to >= sim->n)
    return -1;
  link_t *l = link_get(&sim->links, link_key(from, to));
  if (!l)
    return -1;
  if (!l->blocked) {
    l->blocked = 1;
    sim->links.nblocked++;
  }
  return 0;
}

int lm_sim_unblock(lm_sim_t *sim, uint32_t from, uint32_t to) {
  if (from >= sim->n || to >= sim->n)
    return -1;
  link_t *l = link_find(&sim->links, link_key(from, to));
  if (l && l->blocked) {
    l->blocked = 0;
    sim->links.nblocked--;
  }
  return 0;
}

static int set_groups(lm_sim_t *sim, const uint8_t *groups) {
  if (!groups)
    return -1;
  for (uint32_t i = 0; i < sim->n; i++)
    if (groups[i] >= LM_SIM_MAX_GROUPS)
      return -1;
  for (uint32_t i = 0; i < sim->n; i++)
    sim->nodes[i].group = groups[i];
  memset(sim->cut, 0, sizeof sim->cut);
  return 0;
}

int lm_sim_partition(lm_sim_t *sim, const uint8_t *groups) {
  if (set_groups(sim, groups) != 0)
    return -1;
  for (int f = 0; f < LM_SIM_MAX_GROUPS; f++)
    sim->cut[f] = (uint16_t)(0xffffu & ~(1u << f));
  sim->cut_any = 1;
  return 0;
}

int lm_sim_partition_oneway(lm_sim_t *sim, const uint8_t *groups,
                            uint8_t from_group, uint8_t to_group) {
  if (from_group >= LM_SIM_MAX_GROUPS || to_group >= LM_SIM_MAX_GROUPS ||
      from_group == to_group || set_groups(sim, groups) != 0)
    return -1;
  sim->cut[from_group] = (uint16_t)(1u << to_group);
  sim->cut_any = 1;
  return 0;
}

void lm_sim_heal(lm_sim_t *sim) {
  memset(sim->cut, 0, sizeof sim->cut);
  sim->cut_any = 0;
  for (size_t i = 0; i < sim->links.cap; i++)
    sim->links.v[i].blocked = 0;
  sim->links.nblocked = 0;
}

int lm_sim_can_reach(const lm_sim_t *sim, uint32_t from, uint32_t to) {
  if (from >= sim->n || to >= sim->n)
    return 0;
  if (sim->cut_any &&
      (sim->cut[sim->nodes[from].group] >> sim->nodes[to].group & 1))
    return 0;
  if (sim->links.nblocked) {
    const link_t *l = link_find(&sim->links, link_key(from, to));
    if (l && l->blocked)
      return 0;
  }
  return 1;
}

/* ---------------------------------------------------------- observation -- */

int lm_sim_status(lm_sim_t *sim, uint32_t observer, uint32_t subject) {
  if (observer >= sim->n || subject >= sim->n || !sim->nodes[observer].core)
    return -1;
  swim_member_t m;
  if (swim_member_find(sim->nodes[observer].core, sim->nodes[subject].id, &m) != 0)
    return -1;
  return (int)m.status;
}

typedef struct status_arg {
  uint32_t observer, subject;
  int status;
} status_arg_t;

static int pred_status(lm_sim_t *sim, void *arg) {
  const status_arg_t *a = arg;
  return lm_sim_status(sim, a->observer, a->subject) == a->status;
}

static int pred_all(lm_sim_t *sim, void *arg) {
  const status_arg_t *a = arg;
  for (uint32_t o = 0; o < sim->n; o++) {
    if (o == a->subject || !sim->nodes[o].core)
      continue;
    if (lm_sim_status(sim, o, a->subject) != a->status)
      return 0;
  }
  return 1;
}

int lm_sim_wait_status(lm_sim_t *sim, uint32_t observer, uint32_t subject,
                       int status, uint64_t timeout_ms) {
  if (observer >= sim->n || subject >= sim->n)
    return -1;
  status_arg_t a = {observer, subject, status};
  return lm_sim_run_until(sim, timeout_ms, pred_status, &a);
}

int lm_sim_wait_all(lm_sim_t *sim, uint32_t subject, int status,
                    uint64_t timeout_ms) {
  if (subject >= sim->n)
    return -1;
  status_arg_t a = {0, subject, status};
  return lm_sim_run_until(sim, timeout_ms, pred_all, &a);
}

int lm_sim_converged(lm_sim_t *sim, int level) {
  for (uint32_t o = 0; o < sim->n; o++) {
    swim_core_t *c = sim->nodes[o].core;
    if (c && swim_alive_count(c) != sim->n_up)
      return 0;
  }
  if (level <= LM_SIM_CONV_COUNT)
    return 1;
  for (uint32_t o = 0; o < sim->n; o++) {
    swim_core_t *c = sim->nodes[o].core;
    if (!c)
      continue;
    size_t cnt = swim_member_count(c);
    uint32_t seen = 0;
    for (size_t k = 0; k < cnt; k++) {
      swim_member_t m;
      if (swim_member_at(c, k, &m) != 0)
        continue;
      /* The address names the node in O(1) without touching the id map;
       * the id prefix confirms it (addresses never move in the sim). */
      int32_t s = m.is_self ? (int32_t)o : lm_sim_addr_index(sim, &m.addr);
      if (s >= 0 && memcmp(sim->nodes[s].id, m.id, 8) != 0)
        s = lm_sim_id_index(sim, m.id);
      int live = m.status == SWIM_ALIVE || m.status == SWIM_SUSPECT;
      if (s < 0 || !sim->nodes[s].core) {
        if (live)
          return 0;
        continue;
      }
      if (!live || m.inc.gen != sim->nodes[s].gen ||
          (level >= LM_SIM_CONV_ALIVE && m.status != SWIM_ALIVE))
        return 0;
      seen++;
    }
    if (seen != sim->n_up)
      return 0;
  }
  return 1;
}

static int pred_converged(lm_sim_t *sim, void *arg) {
  (void)arg;
  return lm_sim_converged(sim, LM_SIM_CONV_COUNT) &&
         lm_sim_converged(sim, LM_SIM_CONV_ALIVE);
}

int lm_sim_wait_converged(lm_sim_t *sim, uint64_t timeout_ms) {
  return lm_sim_run_until(sim, timeout_ms, pred_converged, NULL);
}

const lm_sim_node_stats_t *lm_sim_node_stats(const lm_sim_t *sim, uint32_t i) {
  return i < sim->n ? &sim->nodes[i].st : NULL;
}

void lm_sim_totals(const lm_sim_t *sim, lm_sim_node_stats_t *out) {
  memset(out, 0, sizeof *out);
  for (uint32_t i = 0; i < sim->n; i++) {
    const lm_sim_node_stats_t *s = &sim->nodes[i].st;
    out->pkts_sent += s->pkts_sent;
    out->bytes_sent += s->bytes_sent;
    out->frames_sent += s->frames_sent;
    out->frame_bytes_sent += s->frame_bytes_sent;
    out->frames_failed += s->frames_failed;
    out->pkts_recv += s->pkts_recv;
    out->bytes_recv += s->bytes_recv;
    out->frames_recv += s->frames_recv;
    out->frame_bytes_recv += s->frame_bytes_recv;
    out->pkts_lost += s->pkts_lost;
    out->pkts_blocked += s->pkts_blocked;
    out->pkts_vanished += s->pkts_vanished;
    out->pkts_oversize += s->pkts_oversize;
    out->recv_errors += s->recv_errors;
    out->suspect_events += s->suspect_events;
    out->dead_events += s->dead_events;
  }
}

size_t lm_sim_crash_count(const lm_sim_t *sim) { return sim->ncrashes; }

int lm_sim_crash_info(const lm_sim_t *sim, size_t k, lm_sim_crash_info_t *out) {
  if (k >= sim->ncrashes)
    return -1;
  *out = sim->crashes[k].info;
  return 0;
}
