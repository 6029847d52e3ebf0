/*
 * swim.c: the SWIM state machine with the Lifeguard refinements.
 *
 * Pure: time, randomness, output and signing come from the caller (swim.h).
 * Must never depend on libuv, libsodium, mesh/, store/ or bridge/.
 *
 * Memory per member, per core (measured by swim_member_footprint() and the
 * unit tests): one member_t (40 bytes) + two hash slots (8 bytes) + one probe
 * order slot (4 bytes) = 52 bytes. The alive record itself (id, name,
 * address, metadata, signature: about 60 to 700 bytes) is reference counted
 * and, with a shared swim_rec_cache_t, stored once per process however many
 * cores hold it.
 */
#include "swim.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swim_proto.h"
#include "swim_rec.h"

#define NONE UINT32_MAX
#define BQ_LEVELS 32      /* retransmit limit is capped below this */
#define SUSP_MAX_K 8      /* confirmations tracked per suspicion */
#define MAX_EXTRAS 4      /* records a reply carries for its requester */
/* Refutations go as RENEWs only once our view has taken no newcomer for
 * this long: in a mass join many peers do not know the member yet, and its
 * whole record is what introduces it to them. */
#define RENEW_QUIET_MS 5000
#define RECENT_SLOTS 64   /* recent changes that pings also ask about */
#define RECENT_MS 15000
#define SYNC_MIN_GAP_MS 2000
#define VERDICT_PING_GAP_MS 100
#define VIEW_STALE_MS 5000     /* views differing this long get a push-pull */
#define VIEW_SYNC_GAP_MS 20000 /* and not more often than this (at least) */
#define DIGEST_EVERY 8     /* pings per round-robin digest */
/* 16 bits of the view hash ride every ping: two different views look
 * equal once in 65,536 pings, which only delays a repair that the
 * digests and the periodic push-pull make anyway */
#define VIEW_HASH_MASK 0xffffu
#define GOSSIP_PER_PKT 8   /* queued updates per gossip datagram, about */
#define SOON_PROBERS 8     /* members expected to probe a new suspect early */
#define SCRATCH_KEEP 256   /* decoded updates kept allocated between messages */
/* Self-fencing of a deaf member (docs/protocol.md, "Deaf members"). */
#define RETRY_QUIET_MS 20000 /* see retry_worth() */
#define FENCE_REFUTES 6       /* refutations ... */
#define FENCE_REFUTE_MS 20000 /* ... within this long, */
#define FENCE_SAMPLES 8       /* and of the last replies our probes expected */
#define FENCE_MAX_OK 2        /* at most this many came back */
#define FENCE_OTHERS 4        /* fewer suspicions of others than this meanwhile */
#define FENCE_RECOVER_ACKS 8  /* direct acks in a row end the fence */

/* M_RECHECK: a probe of ours failed after the member's last refutation
 * began, so the next probe asks it again (probe_end) */
enum {
  M_FREE = 0x1,
  M_QUEUED = 0x2,
  M_PROBE_SOON = 0x4,
  M_REAPED = 0x8,
  M_RECHECK = 0x10,
  M_RENEWED = 0x20 /* its record differs from the one before only in its
                      incarnation: gossip carries it as a RENEW */
};

typedef struct member {
  swim__rec_t *rec; /* latest alive record */
  uint64_t id8;
  uint64_t since;
  swim_inc_t inc; /* may be above rec->inc for suspect/dead/left */
  uint8_t status;
  uint8_t flags;
  uint32_t susp; /* index+1 into core->susp, 0 when not suspected */
} member_t;

typedef struct bcast {
  uint32_t midx;
  uint8_t kind;
  uint8_t status; /* snapshot: the entry is stale once the member moved on */
  swim_inc_t inc;
  uint64_t id8;
  uint64_t from8; /* accuser, for suspect and dead */
} bcast_t;

typedef struct bqueue {
  bcast_t *v;
  uint32_t n, cap;
} bqueue_t;

typedef struct susp {
  uint32_t midx;
  uint32_t k, nconf;
  int last_chance; /* expired short of k confirmations: probed again first */
  int doubt;       /* started from someone's dead verdict, not a suspicion */
  /* First-hand evidence (see "Partitions and false deaths" in
   * docs/protocol.md): `own` is set when a probe of ours failed during this
   * suspicion; `verify` when a verdict ping was sent to check someone
   * else's verdict, at verify_at; `acked` is the last direct ack from the
   * suspect itself. Without `own` this node declares the member dead only
   * after a verify ping of its own went unanswered. */
  int own, verify;
  uint64_t own_at; /* when our failed check reached for it */
  uint64_t verify_at, acked;
  uint64_t start, min_ms, max_ms, deadline;
  uint64_t accusers[SUSP_MAX_K + 1];
} susp_t;

typedef struct fwd { /* a ping we send on behalf of a ping-req */
  uint32_t seq, req_seq;
  swim_addr_t req_addr;
  uint64_t nack_at, expire;
  int nacked;
} fwd_t;

typedef struct leftsig {
  uint64_t id8;
  swim_inc_t inc;
  uint8_t sig[SWIM_SIG_LEN];
  uint8_t has_sig;
} leftsig_t;

typedef struct evq {
  uint8_t kind, old, fresh;
  uint32_t midx;
  uint64_t id8;
} evq_t;

#define VEC(T)                                                                 \
  struct {                                                                     \
    T *v;                                                                      \
    uint32_t n, cap;                                                           \
  }

struct swim_core {
  swim_config_t cfg;
  swim_callbacks_t cb;
  void *ud;
  uint64_t self8;
  uint8_t meta[SWIM_META_MAX];
  size_t meta_len;

  member_t *m;
  uint32_t nm, capm, nfree, alive_n;
  uint32_t *ht; /* open addressing on id8, value = member index, NONE empty */
  uint32_t htcap;
  VEC(uint32_t) order;
  uint32_t order_pos;
  VEC(uint32_t) soon; /* suspects to probe before the round robin */

  struct {
    int active, acked, indirect, rescued;
    int direct;  /* the target itself acked the first ping */
    int retried; /* the last direct ping, halfway to the verdict, went out */
    int late;    /* the target acked after that */
    uint32_t target, seq, seq_stream, nacks_expected, nacks;
    uint64_t target8, t_indirect, t_end;
    swim_inc_t inc; /* the target's incarnation when the probe began */
    int recheck;    /* asking again after a stale failure: this one counts */
  } probe;
  struct {
    int on;                  /* fenced: no refutations, no acks to pings */
    uint64_t refuted[FENCE_REFUTES]; /* ring of refutation times */
    uint32_t nrefuted, rpos;
    uint64_t others[FENCE_OTHERS]; /* ring: suspicions of others we heard */
    uint32_t nothers, xpos;
    uint8_t ok[FENCE_SAMPLES]; /* ring: did an expected reply come back */
    uint32_t nok, opos;
    uint32_t acks;           /* fenced: direct acks in a row */
    swim_inc_t above;        /* fenced: highest incarnation claimed of us */
    uint64_t since;
    uint64_t probation; /* until then: probe unstretched, accuse nobody */
  } fence;
  uint32_t seq;
  uint32_t digest_tick;
  uint32_t lhm;
  uint64_t next_probe, next_gossip, next_pushpull, next_reconnect;

  VEC(fwd_t) fwd;
  VEC(susp_t) susp;
  VEC(leftsig_t) left;
  VEC(evq_t) ev;
  VEC(uint32_t) reaped;
  VEC(swim_upd_t) scratch;
  VEC(uint8_t *) rebuilt; /* records rebuilt from RENEWs, this message */
  bqueue_t bq[BQ_LEVELS];
  uint32_t bq_total;

  swim_addr_t *seeds;
  size_t nseeds;
  int joining;
  uint32_t join_backoff, join_tries;
  uint64_t next_join;
  int leaving, leave_sent;

  uint32_t extras[MAX_EXTRAS], nextras;
  uint8_t extras_full; /* bit i: extras[i] goes whole, never as a RENEW */
  uint32_t asks[MAX_EXTRAS], nasks; /* members whose newer state we ask for */
  struct {
    uint32_t midx;
    uint64_t id8, at;
  } recent[RECENT_SLOTS]; /* members whose state changed lately */
  uint32_t recent_next, recent_pos;
  int sync_want;
  swim_addr_t sync_addr;
  uint64_t last_sync, last_verdict_ping;
  uint64_t last_added; /* a member new to us last joined our view */
  uint64_t view_hash;       /* see vh_term() */
  uint64_t view_bad_since;  /* peers' views have differed since then */
  uint64_t last_view_sync;
  uint32_t digest_pos;
  /* whole-state frames waiting for stream_busy() to clear */
  VEC(struct {
    swim_addr_t to;
    uint8_t flags;
  }) deferred;

  int in_cb;
  uint64_t now;
  msgpack_zone zone;
  swim_stats_t st;
};

/* ---- small helpers ---- */

static int vec_grow(void **v, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  uint32_t nc = *cap ? *cap : 8;
  while (nc < need)
    nc *= 2;
  void *nv = realloc(*v, (size_t)nc * elem);
  if (!nv)
    return SWIM_ENOMEM;
  *v = nv;
  *cap = nc;
  return 0;
}
/* Gives back what a burst left: a vector at a quarter of its room or
 * less halves it, down to `keep` elements. */
static void vec_shrink(void **v, uint32_t *cap, uint32_t n, size_t elem,
                       uint32_t keep) {
  if (*cap <= keep || n > *cap / 4)
    return;
  uint32_t nc = *cap / 2 > keep ? *cap / 2 : keep;
  void *nv = realloc(*v, (size_t)nc * elem);
  if (nv) {
    *v = nv;
    *cap = nc;
  }
}
#define VEC_SHRINK(vec, keep)                                                  \
  vec_shrink((void **)&(vec).v, &(vec).cap, (vec).n, sizeof *(vec).v, (keep))
#define VEC_PUSH(vec, val)                                                     \
  (vec_grow((void **)&(vec).v, &(vec).cap, (vec).n + 1, sizeof *(vec).v)        \
       ? SWIM_ENOMEM                                                           \
       : ((vec).v[(vec).n++] = (val), 0))

const char *swim_strerror(int err) {
#define SWIM_ERR_STR(n, v, s)                                                  \
  case v:                                                                      \
    return s;
  switch (err) {
  case 0:
    return "success";
    SWIM_ERRNO_MAP(SWIM_ERR_STR)
  default:
    return "unknown error";
  }
#undef SWIM_ERR_STR
}

const char *swim_status_name(swim_status_t s) {
  static const char *n[] = {"alive", "suspect", "dead", "left"};
  return (unsigned)s < 4 ? n[s] : "unknown";
}

const char *swim_drop_name(int reason) {
#define SWIM_DROP_STR(n, s) s,
  static const char *names[] = {SWIM_DROP_REASONS(SWIM_DROP_STR)};
#undef SWIM_DROP_STR
  return reason >= 0 && reason < SWIM_DROP__COUNT ? names[reason] : "unknown";
}

size_t swim_member_footprint(void) {
  return sizeof(member_t) + 2 * sizeof(uint32_t) + sizeof(uint32_t);
}

size_t swim_queue_bytes(const swim_core_t *c) {
  size_t b = 0;
  for (uint32_t l = 0; l < BQ_LEVELS; l++)
    b += (size_t)c->bq[l].cap * sizeof(bcast_t);
  return b;
}

static void logf_(swim_core_t *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(swim_core_t *c, int level, const char *fmt, ...) {
  if (!c->cb.log)
    return;
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  c->cb.log(c->ud, level, c->now, buf);
}

static int inc_cmp(swim_inc_t a, swim_inc_t b) {
  if (a.gen != b.gen)
    return a.gen < b.gen ? -1 : 1;
  if (a.ver != b.ver)
    return a.ver < b.ver ? -1 : 1;
  return 0;
}

/* At an equal incarnation, a later status in this order wins. */
static int state_newer(swim_inc_t ai, uint8_t as, swim_inc_t bi, uint8_t bs) {
  int c = inc_cmp(ai, bi);
  return c > 0 || (c == 0 && as > bs);
}

/* The next incarnation of this node; a version at its ceiling rolls into
 * the next generation rather than wrapping below what was claimed. */
static swim_inc_t inc_next(swim_inc_t i) {
  if (i.ver == UINT32_MAX) {
    if (i.gen < UINT32_MAX)
      i.gen++;
    i.ver = 0;
  } else {
    i.ver++;
  }
  return i;
}

static uint64_t rnd(swim_core_t *c, uint64_t n) {
  return n ? c->cb.rand64(c->ud) % n : 0;
}

static uint64_t mul_ms(uint64_t ms, uint32_t lhm) { return ms * (lhm + 1); }

/* Puts a member first in line for our next probes (next_target). */
static void probe_soon(swim_core_t *c, uint32_t midx) {
  if (c->m[midx].flags & M_PROBE_SOON)
    return;
  c->m[midx].flags |= M_PROBE_SOON;
  (void)VEC_PUSH(c->soon, midx);
}

/* ---- member table ---- */

static uint32_t ht_slot(uint64_t id8, uint32_t cap) {
  return (uint32_t)((id8 * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static uint32_t find8(const swim_core_t *c, uint64_t id8) {
  for (uint32_t i = ht_slot(id8, c->htcap);; i = (i + 1) & (c->htcap - 1)) {
    uint32_t v = c->ht[i];
    if (v == NONE)
      return NONE;
    if (c->m[v].id8 == id8)
      return v;
  }
}

static void ht_put(swim_core_t *c, uint32_t idx) {
  uint32_t i = ht_slot(c->m[idx].id8, c->htcap);
  while (c->ht[i] != NONE)
    i = (i + 1) & (c->htcap - 1);
  c->ht[i] = idx;
}

static int ht_grow(swim_core_t *c) {
  uint32_t ncap = c->htcap ? c->htcap * 2 : 16;
  uint32_t *nh = malloc((size_t)ncap * sizeof *nh);
  if (!nh)
    return SWIM_ENOMEM;
  uint32_t *old = c->ht, ocap = c->htcap;
  memset(nh, 0xff, (size_t)ncap * sizeof *nh);
  c->ht = nh;
  c->htcap = ncap;
  for (uint32_t i = 0; i < ocap; i++)
    if (old[i] != NONE)
      ht_put(c, old[i]);
  free(old);
  return 0;
}

/* Linear probing with backward-shift deletion: no tombstones to rehash. */
static void ht_del(swim_core_t *c, uint64_t id8) {
  uint32_t mask = c->htcap - 1, i = ht_slot(id8, c->htcap);
  while (c->ht[i] != NONE && c->m[c->ht[i]].id8 != id8)
    i = (i + 1) & mask;
  if (c->ht[i] == NONE)
    return;
  for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    if (c->ht[j] == NONE)
      break;
    uint32_t home = ht_slot(c->m[c->ht[j]].id8, c->htcap);
    /* move j back to i when its home is not in (i, j] cyclically */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      c->ht[i] = c->ht[j];
      i = j;
    }
  }
  c->ht[i] = NONE;
}

static int is_live(uint8_t s) { return s == SWIM_ALIVE || s == SWIM_SUSPECT; }

static void set_status(swim_core_t *c, member_t *mm, uint8_t s) {
  if (is_live(mm->status) && !is_live(s))
    c->alive_n--;
  else if (!is_live(mm->status) && is_live(s))
    c->alive_n++;
  mm->status = s;
  mm->since = c->now;
}

/* One member's share of the view checksum. Suspect counts as alive: a
 * suspicion is a passing disagreement, not a view to repair. */
static uint64_t vh_term(const member_t *mm) {
  uint64_t cls = mm->status == SWIM_DEAD ? 1 : mm->status == SWIM_LEFT ? 2 : 0;
  uint64_t x = mm->id8 ^ (((uint64_t)mm->inc.gen << 32 | mm->inc.ver) *
                          0x9E3779B97F4A7C15ull) ^ (cls << 62);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return x;
}

/* Every change of a member's incarnation or status goes through here, so
 * the view checksum stays exact. */
static void set_state(swim_core_t *c, member_t *mm, swim_inc_t inc,
                      uint8_t status) {
  c->view_hash ^= vh_term(mm);
  mm->inc = inc;
  if (mm->status != status)
    set_status(c, mm, status);
  c->view_hash ^= vh_term(mm);
}

static uint32_t add_member(swim_core_t *c, swim__rec_t *rec) {
  uint32_t idx = NONE;
  if (c->nfree) {
    for (uint32_t i = 1; i < c->nm; i++)
      if (c->m[i].flags & M_FREE) {
        idx = i;
        break;
      }
  }
  if (idx == NONE) {
    if (vec_grow((void **)&c->m, &c->capm, c->nm + 1, sizeof *c->m))
      return NONE;
    idx = c->nm;
  }
  if ((c->nm + 1 - c->nfree) * 2 > c->htcap && ht_grow(c))
    return NONE;
  if (vec_grow((void **)&c->order.v, &c->order.cap, c->order.n + 1,
               sizeof *c->order.v))
    return NONE;
  if (idx == c->nm)
    c->nm++;
  else
    c->nfree--;
  member_t *mm = &c->m[idx];
  memset(mm, 0, sizeof *mm);
  mm->rec = rec;
  mm->id8 = swim_id8(rec->id);
  c->last_added = c->now;
  mm->inc = rec->inc;
  mm->status = SWIM_DEAD; /* set_status below counts the transition */
  set_status(c, mm, SWIM_ALIVE);
  c->view_hash ^= vh_term(mm);
  ht_put(c, idx);
  /* A newcomer goes to a random place in the rest of this round. */
  uint32_t n = c->order.n, lo = c->order_pos < n ? c->order_pos : n;
  uint32_t at = lo + (uint32_t)rnd(c, n - lo + 1);
  c->order.v[c->order.n++] = idx;
  uint32_t t = c->order.v[at];
  c->order.v[at] = idx;
  c->order.v[n] = t;
  return idx;
}

/* ---- events ---- */

static void ev_push(swim_core_t *c, uint8_t kind, uint32_t midx, uint8_t old) {
  evq_t e = {kind, old, 0, midx, c->m[midx].id8};
  (void)VEC_PUSH(c->ev, e);
}

static void fill_view(const swim_core_t *c, uint32_t i, swim_member_t *out) {
  const member_t *mm = &c->m[i];
  out->id = mm->rec->id;
  out->name = swim__rec_name(mm->rec);
  out->addr = mm->rec->addr;
  out->inc = mm->inc;
  out->status = (swim_status_t)mm->status;
  out->since = mm->since;
  out->meta = mm->rec->raw + mm->rec->meta_off;
  out->meta_len = mm->rec->meta_len;
  out->is_self = i == 0;
}

static void free_slot(swim_core_t *c, uint32_t idx) {
  member_t *mm = &c->m[idx];
  c->view_hash ^= vh_term(mm);
  ht_del(c, mm->id8);
  swim__rec_put(mm->rec);
  mm->rec = NULL;
  mm->flags = M_FREE;
  mm->id8 = 0;
  c->nfree++;
  for (uint32_t i = 0; i < c->order.n; i++)
    if (c->order.v[i] == idx) {
      c->order.v[i] = c->order.v[--c->order.n];
      if (c->order_pos > c->order.n)
        c->order_pos = c->order.n;
      break;
    }
}

/* Delivers queued events once the core is consistent again. */
static void flush(swim_core_t *c) {
  if (c->cb.event && c->ev.n) {
    c->in_cb = 1;
    for (uint32_t i = 0; i < c->ev.n; i++) {
      evq_t *e = &c->ev.v[i];
      member_t *mm = &c->m[e->midx];
      if (!mm->rec || mm->id8 != e->id8)
        continue;
      swim_event_t ev;
      ev.kind = (swim_event_kind_t)e->kind;
      ev.old_status = (swim_status_t)e->old;
      ev.fresh = e->fresh;
      fill_view(c, e->midx, &ev.member);
      c->cb.event(c->ud, &ev);
    }
    c->in_cb = 0;
  }
  c->ev.n = 0;
  for (uint32_t i = 0; i < c->reaped.n; i++)
    free_slot(c, c->reaped.v[i]);
  c->reaped.n = 0;
}

/* ---- broadcast queue: least-sent first, newest first within a level ---- */

static uint32_t retransmit_limit(const swim_core_t *c) {
  uint32_t l = c->cfg.retransmit_mult *
               (uint32_t)ceil(log10((double)c->alive_n + 1.0));
  if (l < 1)
    l = 1;
  return l < BQ_LEVELS ? l : BQ_LEVELS - 1;
}

static void enqueue(swim_core_t *c, uint32_t midx, uint8_t kind,
                    uint64_t from8) {
  member_t *mm = &c->m[midx];
  uint32_t r = c->recent_next++ % RECENT_SLOTS;
  c->recent[r].midx = midx;
  c->recent[r].id8 = mm->id8;
  c->recent[r].at = c->now ? c->now : 1;
  bcast_t b = {midx, kind, mm->status, mm->inc, mm->id8, from8};
  if (VEC_PUSH(c->bq[0], b) == 0) {
    c->bq_total++;
    mm->flags |= M_QUEUED;
  }
}

static void enqueue_state(swim_core_t *c, uint32_t midx) {
  static const uint8_t kinds[] = {SWIM_UPD_ALIVE, SWIM_UPD_SUSPECT,
                                  SWIM_UPD_DEAD, SWIM_UPD_LEFT};
  enqueue(c, midx, kinds[c->m[midx].status], c->self8);
}

static int bcast_stale(const swim_core_t *c, const bcast_t *b) {
  const member_t *mm = &c->m[b->midx];
  return !mm->rec || mm->id8 != b->id8 || mm->status != b->status ||
         inc_cmp(mm->inc, b->inc) != 0;
}

static const leftsig_t *find_left(const swim_core_t *c, uint64_t id8) {
  for (uint32_t i = 0; i < c->left.n; i++)
    if (c->left.v[i].id8 == id8)
      return &c->left.v[i];
  return NULL;
}

/* Encodes member midx's current state as an update of `kind`. */
static void enc_member(swim_core_t *c, msgpack_packer *pk, uint32_t midx,
                       uint8_t kind, uint64_t from8) {
  member_t *mm = &c->m[midx];
  switch (kind) {
  case SWIM_UPD_ALIVE:
    /* verbatim, signature and all */
    msgpack_pack_bin_body(pk, mm->rec->raw, mm->rec->raw_len);
    break;
  case SWIM_UPD_RENEW: {
    const swim__rec_t *r = mm->rec;
    swim_enc_renew(pk, mm->id8, r->inc, r->body,
                   r->has_sig ? r->raw + r->raw_len - SWIM_SIG_LEN : NULL);
    break;
  }
  case SWIM_UPD_SUSPECT:
  case SWIM_UPD_DEAD:
    swim_enc_accuse(pk, kind, mm->id8, mm->inc, from8);
    break;
  case SWIM_UPD_LEFT: {
    const leftsig_t *ls = find_left(c, mm->id8);
    size_t from;
    swim_enc_left_body(pk, mm->id8, mm->inc, &from);
    swim_enc_sig(pk, ls && ls->has_sig ? ls->sig : NULL);
    break;
  }
  }
}

/* May member midx's record go as a RENEW? See RENEW_QUIET_MS. */
static int renew_ok(const swim_core_t *c, uint32_t midx) {
  return (c->m[midx].flags & M_RENEWED) &&
         (!c->last_added || c->now >= c->last_added + RENEW_QUIET_MS);
}

/* Appends one update if it fits; returns 0 when it did not. */
static int try_append(swim_core_t *c, msgpack_packer *pk, swim_wbuf_t *w,
                      uint32_t midx, uint8_t kind, uint64_t from8) {
  size_t mark = w->len;
  enc_member(c, pk, midx, kind, from8);
  if (w->overflow) {
    w->overflow = 0;
    w->len = mark;
    return 0;
  }
  c->st.updates_sent++;
  return 1;
}

/* Fills the rest of a datagram: the buddy record, the requester's extras,
 * queued updates least-sent first, then one anti-entropy digest. */
static void piggyback(swim_core_t *c, msgpack_packer *pk, swim_wbuf_t *w,
                      uint32_t buddy, int digest) {
  uint32_t done[64];
  uint32_t ndone = 0;
  if (buddy != NONE && c->m[buddy].status != SWIM_ALIVE &&
      try_append(c, pk, w, buddy, c->m[buddy].status == SWIM_SUSPECT
                                      ? SWIM_UPD_SUSPECT
                                      : SWIM_UPD_DEAD, c->self8))
    done[ndone++] = buddy;
  for (uint32_t i = 0; i < c->nextras && ndone < 64; i++) {
    uint32_t x = c->extras[i];
    uint8_t kind = !(c->extras_full & (1u << i)) && renew_ok(c, x)
                       ? SWIM_UPD_RENEW
                       : SWIM_UPD_ALIVE;
    if (c->m[x].rec && try_append(c, pk, w, x, kind, 0)) {
      done[ndone++] = x;
      if (c->m[x].status != SWIM_ALIVE)
        enqueue_state(c, x); /* the status travels with the next message */
    }
  }
  c->nextras = 0;
  for (uint32_t i = 0; i < c->nasks; i++) {
    /* our (stale) state of a member the peer knows better: it answers
     * with the record */
    member_t *mm = &c->m[c->asks[i]];
    if (!mm->rec)
      continue;
    size_t mark = w->len;
    swim_enc_digest(pk, mm->id8, mm->status, mm->inc);
    if (w->overflow) {
      w->overflow = 0;
      w->len = mark;
    }
  }
  c->nasks = 0;
  uint32_t limit = retransmit_limit(c);
  int misses = 0;
  for (uint32_t lvl = 0; lvl < BQ_LEVELS && misses < 3 && ndone < 64; lvl++) {
    bqueue_t *q = &c->bq[lvl];
    /* newest first: walk from the top, move sent entries one level up */
    for (uint32_t k = q->n; k-- > 0 && misses < 3 && ndone < 64;) {
      bcast_t b = q->v[k];
      if (bcast_stale(c, &b)) {
        q->v[k] = q->v[--q->n];
        c->bq_total--;
        if (c->m[b.midx].id8 == b.id8)
          c->m[b.midx].flags &= (uint8_t)~M_QUEUED;
        continue;
      }
      int dup = 0;
      for (uint32_t d = 0; d < ndone; d++)
        dup |= done[d] == b.midx;
      if (dup)
        continue; /* one record per member per message; keep it for later */
      /* a refutation goes out without what everyone holds already */
      uint8_t kind = b.kind == SWIM_UPD_ALIVE && renew_ok(c, b.midx)
                         ? SWIM_UPD_RENEW
                         : b.kind;
      if (!try_append(c, pk, w, b.midx, kind, b.from8)) {
        misses++;
        continue;
      }
      done[ndone++] = b.midx;
      /* remove from this level (order within a level is not kept) */
      q->v[k] = q->v[--q->n];
      if (lvl + 1 >= limit || VEC_PUSH(c->bq[lvl + 1], b)) {
        c->bq_total--;
        c->m[b.midx].flags &= (uint8_t)~M_QUEUED;
      }
    }
    if (lvl + 1 < BQ_LEVELS && lvl + 1 >= limit) {
      /* entries above the limit (it shrank with the cluster) retire */
      for (uint32_t l2 = lvl + 1; l2 < BQ_LEVELS; l2++) {
        for (uint32_t k = 0; k < c->bq[l2].n; k++)
          if (c->m[c->bq[l2].v[k].midx].id8 == c->bq[l2].v[k].id8)
            c->m[c->bq[l2].v[k].midx].flags &= (uint8_t)~M_QUEUED;
        c->bq_total -= c->bq[l2].n;
        c->bq[l2].n = 0;
      }
      break;
    }
  }
  /* after a mass join the queues drain, and their room goes back */
  for (uint32_t lvl = 0; lvl < BQ_LEVELS; lvl++)
    VEC_SHRINK(c->bq[lvl], 16);
  if (digest && c->susp.n) {
    /* A member we suspect may long have refuted: ask about it, so a
     * refutation we missed comes back in the ack. */
    member_t *mm = &c->m[c->susp.v[c->digest_pos % c->susp.n].midx];
    size_t mark = w->len;
    swim_enc_digest(pk, mm->id8, mm->status, mm->inc);
    if (w->overflow) {
      w->overflow = 0;
      w->len = mark;
    }
  }
  if (digest) {
    size_t mark = w->len;
    swim_enc_view(pk, c->view_hash & VIEW_HASH_MASK);
    if (w->overflow) {
      w->overflow = 0;
      w->len = mark;
    }
  }
  if (digest && c->nm > 1) {
    /* members' states, so stale views get repaired: one that changed
     * lately, if any (that is where a peer may have missed the gossip),
     * and one round robin over the table */
    for (uint32_t k = 0; k < RECENT_SLOTS; k++) {
      uint32_t j = c->recent_pos++ % RECENT_SLOTS;
      member_t *rm = &c->m[c->recent[j].midx];
      if (c->recent[j].at && c->now < c->recent[j].at + RECENT_MS &&
          rm->rec && rm->id8 == c->recent[j].id8) {
        size_t mark = w->len;
        swim_enc_digest(pk, rm->id8, rm->status, rm->inc);
        if (w->overflow) {
          w->overflow = 0;
          w->len = mark;
        }
        break;
      }
    }
    /* The round robin rides one ping in DIGEST_EVERY: the view hash on
     * every ping already tells a peer whether anything differs (and
     * starts a push-pull when it keeps differing), so in a steady mesh
     * the digest is mostly news to nobody. */
    int rr = c->digest_tick++ % DIGEST_EVERY == 0;
    for (uint32_t tries = 0; rr && tries < 4; tries++) {
      uint32_t i = c->digest_pos++ % c->nm;
      member_t *mm = &c->m[i];
      if (!mm->rec)
        continue;
      size_t mark = w->len;
      swim_enc_digest(pk, mm->id8, mm->status, mm->inc);
      if (w->overflow) {
        w->overflow = 0;
        w->len = mark;
      }
      break;
    }
  }
}

/* ---- output ---- */

static void send_dgram(swim_core_t *c, const swim_addr_t *to,
                       const swim_hdr_t *h, uint32_t buddy, int digest) {
  uint8_t buf[SWIM_MAX_PAYLOAD];
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, buf, c->cfg.max_payload < sizeof buf ? c->cfg.max_payload
                                                          : sizeof buf);
  swim_wbuf_packer(&w, &pk);
  swim_enc_hdr(&pk, h);
  if (w.overflow)
    return;
  piggyback(c, &pk, &w, buddy, digest);
  c->st.pkts_out++;
  c->st.bytes_out += w.len;
  c->cb.send(c->ud, to, w.p, w.len);
}

static swim_hdr_t hdr(const swim_core_t *c, uint8_t type, uint32_t seq,
                      uint64_t target8) {
  swim_hdr_t h;
  memset(&h, 0, sizeof h);
  h.type = type;
  h.from8 = c->cfg.sender_from_transport ? 0 : c->self8;
  h.seq = seq;
  /* a ping names its target by the top 32 bits of its id8: enough to
   * tell whether the address changed hands, 4 bytes less per ping */
  h.target8 = type == SWIM_MSG_PING ? target8 >> 32 : target8;
  return h;
}

/* The whole view, for push-pull over the stream. */
static void send_state_now(swim_core_t *c, const swim_addr_t *to,
                           uint8_t flags) {
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init_dyn(&w);
  swim_wbuf_packer(&w, &pk);
  swim_hdr_t h = hdr(c, SWIM_MSG_PUSHPULL, 0, 0);
  h.flags = flags;
  swim_enc_hdr(&pk, &h);
  for (uint32_t i = 0; i < c->nm && !w.overflow; i++) {
    member_t *mm = &c->m[i];
    if (!mm->rec)
      continue;
    const uint8_t *cred;
    size_t cl = c->cb.cred_get ? c->cb.cred_get(c->ud, mm->rec->id, &cred) : 0;
    if (cl)
      swim_enc_cred(&pk, mm->rec->id, cred, cl);
    msgpack_pack_bin_body(&pk, mm->rec->raw, mm->rec->raw_len);
    if (mm->status == SWIM_SUSPECT || mm->status == SWIM_DEAD)
      swim_enc_accuse(&pk, mm->status == SWIM_SUSPECT ? SWIM_UPD_SUSPECT
                                                      : SWIM_UPD_DEAD,
                      mm->id8, mm->inc, c->self8);
    else if (mm->status == SWIM_LEFT)
      enc_member(c, &pk, i, SWIM_UPD_LEFT, 0);
  }
  if (!w.overflow) {
    c->st.stream_out++;
    c->st.stream_bytes_out += w.len;
    c->cb.send_stream(c->ud, to, w.p, w.len);
  } else {
    logf_(c, SWIM_LOG_WARN, "push-pull state too large, not sent");
  }
  free(w.p);
}

static void send_deferred(swim_core_t *c);

/* Flags for one frame that serves two: a request makes the peer answer
 * with its own state, so it also does what a reply would. */
static uint8_t merge_pp_flags(uint8_t a, uint8_t b) {
  return (uint8_t)((a & b & SWIM_PP_REPLY) | ((a | b) & SWIM_PP_JOIN));
}

/* While the transport is full, a whole state is not encoded (each copy is
 * the size of the view, and a seed after a mass join is asked for
 * hundreds at once): the address waits, and the state goes out as it is
 * then, which also carries what was learned meanwhile. */
static void send_state(swim_core_t *c, const swim_addr_t *to, uint8_t flags) {
  if (!c->cb.send_stream)
    return;
  if (c->deferred.n)
    send_deferred(c);
  if (!c->deferred.n && !(c->cb.stream_busy && c->cb.stream_busy(c->ud))) {
    send_state_now(c, to, flags);
    return;
  }
  for (uint32_t i = 0; i < c->deferred.n; i++)
    if (memcmp(&c->deferred.v[i].to, to, sizeof *to) == 0) {
      c->deferred.v[i].flags = merge_pp_flags(c->deferred.v[i].flags, flags);
      return;
    }
  if (c->deferred.n >= SWIM_STREAM_DEFER_MAX ||
      vec_grow((void **)&c->deferred.v, &c->deferred.cap, c->deferred.n + 1,
               sizeof *c->deferred.v)) {
    c->st.stream_deferred_dropped++;
    return;
  }
  c->deferred.v[c->deferred.n].to = *to;
  c->deferred.v[c->deferred.n].flags = flags;
  c->deferred.n++;
  c->st.stream_deferred++;
}

static void send_deferred(swim_core_t *c) {
  uint32_t done = 0;
  while (done < c->deferred.n &&
         !(c->cb.stream_busy && c->cb.stream_busy(c->ud))) {
    send_state_now(c, &c->deferred.v[done].to, c->deferred.v[done].flags);
    done++;
  }
  if (!done)
    return;
  c->deferred.n -= done;
  memmove(c->deferred.v, c->deferred.v + done,
          c->deferred.n * sizeof *c->deferred.v);
  if (!c->deferred.n) {
    free(c->deferred.v);
    c->deferred.v = NULL;
    c->deferred.cap = 0;
  }
}

/* ---- self ---- */

static int self_record(swim_core_t *c, swim_inc_t inc, swim__rec_t **out) {
  uint8_t buf[1024];
  swim_wbuf_t w;
  msgpack_packer pk;
  size_t from;
  swim_wbuf_init(&w, buf, sizeof buf);
  swim_wbuf_packer(&w, &pk);
  swim_enc_alive_body(&pk, c->cfg.id, c->cfg.name, &c->cfg.addr, inc, c->meta,
                      c->meta_len, &from);
  uint8_t sig[SWIM_SIG_LEN];
  int signed_ = 0;
  if (c->cb.sign) {
    if (c->cb.sign(c->ud, sig, buf + from, w.len - from) != 0)
      return SWIM_EBADSIG;
    signed_ = 1;
  }
  swim_enc_sig(&pk, signed_ ? sig : NULL);
  if (w.overflow)
    return SWIM_ETOOBIG;
  size_t off = 0;
  swim_upd_t u;
  msgpack_zone_clear(&c->zone);
  if (swim_dec_upd(buf, w.len, &off, &c->zone, &u) != 1)
    return SWIM_EMALFORMED;
  *out = swim__rec_get(c->cfg.cache, &u);
  return *out ? 0 : SWIM_ENOMEM;
}

/* Gives member `mm` record `r` (taking over its reference), remembering
 * whether only the incarnation changed: then peers that held the old one
 * can rebuild the new one from a RENEW. */
static void rec_replace(member_t *mm, swim__rec_t *r) {
  const swim__rec_t *old = mm->rec;
  if (old && old->body == r->body && old->inc.gen == r->inc.gen &&
      old->has_sig == r->has_sig)
    mm->flags |= M_RENEWED;
  else
    mm->flags &= (uint8_t)~M_RENEWED;
  swim__rec_put(mm->rec);
  mm->rec = r;
}

/* New incarnation for this node: refutes, metadata changes, address moves. */
static int self_bump(swim_core_t *c, swim_inc_t above) {
  member_t *me = &c->m[0];
  swim_inc_t inc = me->inc;
  if (inc_cmp(above, inc) > 0)
    inc = above;
  inc = inc_next(inc);
  if (inc_cmp(inc, above) <= 0)
    return SWIM_ESTATE; /* {max, max} claimed: nothing can outrank it */
  swim__rec_t *r;
  int rc = self_record(c, inc, &r);
  if (rc)
    return rc;
  rec_replace(me, r);
  set_state(c, me, inc, c->leaving ? me->status : SWIM_ALIVE);
  if (!c->leaving) {
    enqueue(c, 0, SWIM_UPD_ALIVE, 0);
  }
  return 0;
}

static void lhm_add(swim_core_t *c, int d) {
  int v = (int)c->lhm + d;
  if (v < 0)
    v = 0;
  if (v > (int)c->cfg.awareness_max)
    v = (int)c->cfg.awareness_max;
  c->lhm = (uint32_t)v;
}

/* ---- deaf members: self-fencing (docs/protocol.md, "Deaf members") ----
 *
 * A member that hears little of what is sent to it but still speaks
 * freely (inbound loss) cannot be removed by SWIM: every suspicion that
 * does reach it is refuted, and the refutation, going out, always arrives.
 * It can tell from its own side, though: its probes' replies (direct
 * acks, relayed acks, nacks) mostly do not come back, Lifeguard's local
 * health sits at its ceiling, and suspicions about its current
 * incarnation keep coming, i.e. the others do hear its refutations and
 * keep failing to reach it anyway. Then it fences itself off: it stops
 * refuting and stops answering pings, so the others' suspicions run out
 * into the same DEAD everywhere, and it accuses nobody. Its own probes go
 * on, unstretched and direct only; FENCE_RECOVER_ACKS direct acks in a row
 * end the fence with a refutation above anything claimed about it
 * meanwhile, and the mesh takes it back. */

static void fence_sample(swim_core_t *c, int ok) {
  c->fence.ok[c->fence.opos] = (uint8_t)(ok != 0);
  c->fence.opos = (c->fence.opos + 1) % FENCE_SAMPLES;
  if (c->fence.nok < FENCE_SAMPLES)
    c->fence.nok++;
}

/* Called for each refutation, counting it: is this member deaf? */
static int fence_due(swim_core_t *c) {
  c->fence.refuted[c->fence.rpos] = c->now;
  c->fence.rpos = (c->fence.rpos + 1) % FENCE_REFUTES;
  if (c->fence.nrefuted < FENCE_REFUTES)
    c->fence.nrefuted++;
  /* refuted FENCE_REFUTES times within FENCE_REFUTE_MS: the oldest of the
   * ring (the next slot) is recent */
  uint64_t first = c->fence.refuted[c->fence.rpos];
  if (c->fence.nrefuted < FENCE_REFUTES || c->now > first + FENCE_REFUTE_MS)
    return 0;
  /* singled out: meanwhile we heard fewer than FENCE_OTHERS suspicions of
   * other members (on a lossy network everyone is suspected in turn) */
  if (c->fence.nothers == FENCE_OTHERS &&
      c->fence.others[c->fence.xpos] >= first)
    return 0;
  /* local health at (or one below) its ceiling */
  if (c->lhm + 1 < c->cfg.awareness_max)
    return 0;
  /* and most replies our probes expected were lost. Lifeguard has
   * stretched our probe interval by now (9 s at the ceiling), so the
   * samples would come slowly: on probation we probe unstretched, and
   * accuse nobody, until the refutations stop or the samples decide */
  uint32_t ok = 0;
  for (uint32_t i = 0; i < FENCE_SAMPLES; i++)
    ok += c->fence.ok[i];
  if (c->fence.nok == FENCE_SAMPLES && ok <= FENCE_MAX_OK)
    return 1;
  if (c->now >= c->fence.probation && c->next_probe > c->now +
                                          c->cfg.probe_interval_ms)
    c->next_probe = c->now + c->cfg.probe_interval_ms;
  c->fence.probation = c->now + FENCE_REFUTE_MS;
  return 0;
}

static int fence_probation(const swim_core_t *c) {
  return c->now < c->fence.probation;
}

static void fence_begin(swim_core_t *c, swim_inc_t claimed) {
  uint32_t ok = 0;
  for (uint32_t i = 0; i < FENCE_SAMPLES; i++)
    ok += c->fence.ok[i];
  c->fence.on = 1;
  c->fence.acks = 0;
  c->fence.probation = 0;
  c->fence.since = c->now;
  c->fence.above = inc_cmp(claimed, c->m[0].inc) > 0 ? claimed : c->m[0].inc;
  c->st.fences++;
  logf_(c, SWIM_LOG_WARN, "deaf: %u refutations in %u s, local health %u, "
        "%u of the last %u probe replies came back: fencing (no refutations, "
        "no acks) until %u direct acks in a row", FENCE_REFUTES,
        FENCE_REFUTE_MS / 1000, c->lhm, ok, FENCE_SAMPLES, FENCE_RECOVER_ACKS);
}

static void refute(swim_core_t *c, swim_inc_t claimed) {
  if (c->leaving)
    return;
  if (c->fence.on) {
    if (inc_cmp(claimed, c->fence.above) > 0)
      c->fence.above = claimed;
    return;
  }
  if (fence_due(c)) {
    fence_begin(c, claimed);
    return;
  }
  if (self_bump(c, claimed) == 0) {
    c->st.refutes++;
    lhm_add(c, 1);
    ev_push(c, SWIM_EV_REFUTE, 0, SWIM_ALIVE);
    logf_(c, SWIM_LOG_INFO, "refuted suspicion, now %u.%u", c->m[0].inc.gen,
          c->m[0].inc.ver);
  }
}

/* A claim about us that nobody signed (an accusation, a digest): nobody
 * can have seen an incarnation of ours newer than the newest we signed, so
 * a claim past it is a forgery, taken at our own incarnation. Left alone,
 * a member could accuse us at the highest incarnation there is, which no
 * refutation could ever outrank. */
static void refute_claim(swim_core_t *c, swim_inc_t claimed) {
  if (inc_cmp(claimed, c->m[0].inc) > 0) {
    c->st.dropped[SWIM_DROP_ACC_AHEAD]++;
    claimed = c->m[0].inc;
  }
  refute(c, claimed);
}

static void fence_end(swim_core_t *c) {
  c->fence.on = 0;
  c->fence.nrefuted = 0;
  c->fence.nok = 0;
  c->st.unfences++;
  logf_(c, SWIM_LOG_WARN, "hearing again: %u direct acks in a row after %llu "
        "ms fenced; refuting", FENCE_RECOVER_ACKS,
        (unsigned long long)(c->now - c->fence.since));
  refute(c, c->fence.above);
}

/* ---- suspicion (Lifeguard) ---- */

static uint64_t susp_timeout(const susp_t *s) {
  if (s->k == 0 || s->nconf >= s->k)
    return s->min_ms;
  double frac = log((double)s->nconf + 1.0) / log((double)s->k + 1.0);
  double t = (double)s->max_ms - frac * (double)(s->max_ms - s->min_ms);
  uint64_t r = (uint64_t)floor(t);
  return r < s->min_ms ? s->min_ms : r;
}

static void susp_clear(swim_core_t *c, member_t *mm) {
  if (!mm->susp)
    return;
  uint32_t i = mm->susp - 1;
  mm->susp = 0;
  c->susp.v[i] = c->susp.v[--c->susp.n];
  if (i < c->susp.n)
    c->m[c->susp.v[i].midx].susp = i + 1;
}

static void susp_start(swim_core_t *c, uint32_t midx, uint64_t from8) {
  member_t *mm = &c->m[midx];
  susp_clear(c, mm);
  susp_t s;
  memset(&s, 0, sizeof s);
  double n = c->alive_n > 1 ? (double)c->alive_n : 1.0;
  double scale = log10(n) > 1.0 ? log10(n) : 1.0;
  s.midx = midx;
  s.min_ms = (uint64_t)((double)c->cfg.suspicion_min_mult * scale *
                        (double)c->cfg.probe_interval_ms);
  s.max_ms = s.min_ms * c->cfg.suspicion_max_mult;
  /* confirmations can only come from members other than the accuser and
   * the suspect */
  uint32_t possible = c->alive_n > 2 ? c->alive_n - 2 : 0;
  s.k = c->cfg.suspicion_confirm < possible ? c->cfg.suspicion_confirm
                                            : possible;
  if (s.k > SUSP_MAX_K)
    s.k = SUSP_MAX_K;
  s.start = c->now;
  s.own = from8 == c->self8;
  s.own_at = c->probe.active ? c->probe.t_indirect : c->now;
  s.accusers[0] = from8;
  s.deadline = s.start + susp_timeout(&s);
  if (VEC_PUSH(c->susp, s) == 0)
    mm->susp = c->susp.n;
}

/* Returns 1 when `from8` is a new independent accuser. */
static int susp_confirm(swim_core_t *c, member_t *mm, uint64_t from8) {
  if (!mm->susp)
    return 0;
  susp_t *s = &c->susp.v[mm->susp - 1];
  for (uint32_t i = 0; i <= s->nconf; i++)
    if (s->accusers[i] == from8)
      return 0;
  if (s->nconf >= s->k)
    return 0;
  s->accusers[++s->nconf] = from8;
  uint64_t d = s->start + susp_timeout(s);
  /* A check under way gets to finish: a last probe its two periods, a
   * verdict ping its full probe timeout. verify_start() set that deadline
   * and the tick loop takes a verify past it for an unanswered ping, i.e.
   * first-hand evidence: pulled in by a confirmation (typically to a
   * timeout that ran out long ago) it turned a ping answered a few ms
   * later into a death (seed 97 of the 128-node one-way cut). */
  if (!s->verify)
    s->deadline = s->last_chance && d < s->deadline ? s->deadline : d;
  return 1;
}

/* First-hand evidence that still counts: a check of ours failed within the
 * last probe period. Older evidence may predate a healed partition or a
 * link that came back, so it is checked again before a verdict. The
 * window is not stretched by local health: Lifeguard slows our probes when
 * we are degraded, which makes our evidence older, not more reliable. */
static int susp_fresh(const swim_core_t *c, const susp_t *s) {
  return s->own && c->now <= s->own_at + c->cfg.probe_interval_ms;
}

/* ---- applying updates ---- */

/* `doubt`: the suspicion comes from someone's dead verdict about a member
 * we held alive; it stays ours (not gossiped) while we ask the member. */
static void mark_suspect(swim_core_t *c, uint32_t midx, swim_inc_t inc,
                         uint64_t from8, int doubt) {
  member_t *mm = &c->m[midx];
  uint8_t old = mm->status;
  set_state(c, mm, inc, SWIM_SUSPECT);
  susp_start(c, midx, from8);
  if (mm->susp)
    c->susp.v[mm->susp - 1].doubt = doubt;
  if (!doubt)
    enqueue(c, midx, SWIM_UPD_SUSPECT, from8);
  ev_push(c, SWIM_EV_SUSPECT, midx, old);
  logf_(c, SWIM_LOG_DEBUG, "%s suspect at %u.%u, accused by %016llx",
        swim__rec_name(mm->rec), inc.gen, inc.ver, (unsigned long long)from8);
  if (from8 != c->self8 && !(mm->flags & M_PROBE_SOON) &&
      rnd(c, c->alive_n) < SOON_PROBERS) {
    /* Probe it ourselves soon: an independent confirmation (or the buddy
     * ping that lets it refute) comes within a probe period, not n. Only
     * about SOON_PROBERS members do, so a suspicion costs a few pings, not
     * n, and round-robin probing of everyone else goes on. */
    probe_soon(c, midx);
  }
  if (from8 == c->self8) {
    c->st.suspicions_raised++;
  } else if (!doubt) {
    c->fence.others[c->fence.xpos] = c->now;
    c->fence.xpos = (c->fence.xpos + 1) % FENCE_OTHERS;
    if (c->fence.nothers < FENCE_OTHERS)
      c->fence.nothers++;
  }
}

static void mark_dead(swim_core_t *c, uint32_t midx, swim_inc_t inc,
                      uint64_t from8, uint8_t status) {
  member_t *mm = &c->m[midx];
  uint8_t old = mm->status;
  susp_clear(c, mm);
  set_state(c, mm, inc, status);
  enqueue(c, midx, status == SWIM_LEFT ? SWIM_UPD_LEFT : SWIM_UPD_DEAD, from8);
  ev_push(c, status == SWIM_LEFT ? SWIM_EV_LEFT : SWIM_EV_DEAD, midx, old);
  if (status == SWIM_DEAD && from8 == c->self8)
    c->st.deaths_declared++;
}

static void want_sync(swim_core_t *c, const swim_addr_t *from) {
  if (!c->cb.send_stream || c->sync_want)
    return;
  if (c->last_sync && c->now < c->last_sync + SYNC_MIN_GAP_MS)
    return;
  c->sync_want = 1;
  c->sync_addr = *from;
}

/* `full`: the peer may not hold the member's record as it was (it told us
 * its state is older); otherwise (it accused the member) it holds one, and
 * a refutation may go as a RENEW. */
static void add_extra(swim_core_t *c, uint32_t midx, int full) {
  uint32_t i = 0;
  while (i < c->nextras && c->extras[i] != midx)
    i++;
  if (i == c->nextras) {
    if (c->nextras == MAX_EXTRAS)
      return;
    c->extras[c->nextras++] = midx;
    c->extras_full &= (uint8_t)~(1u << i);
  }
  if (full)
    c->extras_full |= (uint8_t)(1u << i);
}

/* Our reply will carry our (older) digest of member midx: the peer knows it
 * better, and answers with the record. */
static void add_ask(swim_core_t *c, uint32_t midx) {
  for (uint32_t i = 0; i < c->nasks; i++)
    if (c->asks[i] == midx)
      return;
  if (c->nasks < MAX_EXTRAS)
    c->asks[c->nasks++] = midx;
}

static void apply_alive(swim_core_t *c, const swim_upd_t *u) {
  uint32_t idx = find8(c, u->id8);
  if (idx == 0) {
    int cmp = inc_cmp(u->inc, c->m[0].inc);
    if (memcmp(u->id, c->cfg.id, SWIM_ID_LEN) == 0 && cmp > 0)
      refute(c, u->inc); /* an old life of ours (verify_upd checked our own
                            signature) claims a newer incarnation */
    else if (cmp < 0)
      c->st.dropped[SWIM_DROP_REC_STALE]++;
    return;
  }
  if (idx != NONE) {
    member_t *mm = &c->m[idx];
    if (memcmp(mm->rec->id, u->id, SWIM_ID_LEN) != 0) {
      logf_(c, SWIM_LOG_WARN, "id prefix clash for %016llx, ignored",
            (unsigned long long)u->id8);
      return;
    }
    if (inc_cmp(u->inc, mm->inc) <= 0) {
      if (inc_cmp(u->inc, mm->inc) < 0 && inc_cmp(u->inc, mm->rec->inc) < 0)
        c->st.dropped[SWIM_DROP_REC_STALE]++; /* replayed, or overtaken */
      if (inc_cmp(u->inc, mm->rec->inc) > 0 && mm->status != SWIM_ALIVE) {
        /* newer record, same fate: keep the record fresh for later */
        swim__rec_t *r = swim__rec_get(c->cfg.cache, u);
        if (r)
          rec_replace(mm, r);
      }
      return;
    }
    swim__rec_t *r = swim__rec_get(c->cfg.cache, u);
    if (!r)
      return;
    uint8_t old = mm->status;
    int changed = mm->rec->raw_len - mm->rec->signed_off !=
                      r->raw_len - r->signed_off ||
                  memcmp(&mm->rec->addr, &r->addr, sizeof r->addr) != 0 ||
                  mm->rec->meta_len != r->meta_len ||
                  memcmp(mm->rec->raw + mm->rec->meta_off, r->raw + r->meta_off,
                         r->meta_len) != 0 ||
                  u->inc.gen != mm->inc.gen; /* restarted unnoticed */
    rec_replace(mm, r);
    set_state(c, mm, u->inc, SWIM_ALIVE);
    susp_clear(c, mm);
    if (old != SWIM_ALIVE) {
      ev_push(c, SWIM_EV_JOIN, idx, old);
      logf_(c, SWIM_LOG_DEBUG, "%s alive again at %u.%u (was %s)",
            swim__rec_name(r), u->inc.gen, u->inc.ver, swim_status_name(old));
      if (old == SWIM_DEAD)
        want_sync(c, &r->addr); /* back from the dead: maybe a healed split */
    } else if (changed) {
      ev_push(c, SWIM_EV_UPDATE, idx, old);
    }
    enqueue(c, idx, SWIM_UPD_ALIVE, 0);
    c->st.updates_applied++;
    return;
  }
  swim__rec_t *r = swim__rec_get(c->cfg.cache, u);
  if (!r)
    return;
  idx = add_member(c, r);
  if (idx == NONE) {
    swim__rec_put(r);
    return;
  }
  ev_push(c, SWIM_EV_JOIN, idx, SWIM_ALIVE);
  if (c->ev.n)
    c->ev.v[c->ev.n - 1].fresh = 1;
  enqueue(c, idx, SWIM_UPD_ALIVE, 0);
  c->st.updates_applied++;
}

static void ping_verdict_limited(swim_core_t *c, uint32_t idx);
static void verify_start(swim_core_t *c, uint32_t idx);
static uint64_t pushpull_interval(const swim_core_t *c);

static void apply_accuse(swim_core_t *c, const swim_upd_t *u, int merge) {
  uint32_t idx = find8(c, u->id8);
  if (idx == NONE)
    return;
  member_t *mm = &c->m[idx];
  if (idx == 0) {
    if (inc_cmp(u->inc, mm->inc) >= 0)
      refute_claim(c, u->inc);
    else
      c->st.dropped[SWIM_DROP_ACC_STALE]++;
    /* either way the sender gets our current record straight back: it
     * accused an incarnation we have refuted, or just now refute (unless
     * we are fenced: then we have nothing to say) */
    if (!c->fence.on)
      add_extra(c, 0, 0);
    return;
  }
  /* An accusation is not signed by its subject, so it cannot outrank the
   * newest incarnation the member signed: one about a later incarnation
   * (which nobody can have seen) is taken at that one. Otherwise a member
   * could accuse another at the highest incarnation there is, beyond
   * anything its refutation could reach. */
  swim_inc_t ceil = inc_cmp(mm->rec->inc, mm->inc) > 0 ? mm->rec->inc : mm->inc;
  swim_upd_t clamped;
  if (inc_cmp(u->inc, ceil) > 0) {
    c->st.dropped[SWIM_DROP_ACC_AHEAD]++;
    clamped = *u;
    clamped.inc = ceil;
    u = &clamped;
  }
  int kind = u->kind, doubt = 0;
  if (kind == SWIM_UPD_DEAD && (merge || mm->status == SWIM_ALIVE)) {
    /* A verdict about a member we still hold alive (another side of a
     * healed partition, or a refutation we missed) starts as a suspicion
     * here, marked as a doubt: it gets its chance to refute before we call
     * it dead, and more such verdicts only confirm the doubt. */
    kind = SWIM_UPD_SUSPECT;
    doubt = 1;
  }
  int cmp = inc_cmp(u->inc, mm->inc);
  if (cmp < 0 && !merge)
    c->st.dropped[SWIM_DROP_ACC_STALE]++;
  if (cmp < 0 && mm->status == SWIM_ALIVE && !merge) {
    /* A rumour the member has already refuted: the sender missed the
     * refutation, so it goes straight back (see swim_recv). Without this
     * a node that hears the rumour after the refutation has spread can
     * only wait for anti-entropy, and may time the member out. */
    add_extra(c, idx, 0);
    return;
  }
  if (kind == SWIM_UPD_SUSPECT) {
    if (mm->status == SWIM_ALIVE && cmp >= 0) {
      mark_suspect(c, idx, u->inc, u->from8, doubt);
      if (doubt)
        ping_verdict_limited(c, idx);
      c->st.updates_applied++;
    } else if (mm->status == SWIM_SUSPECT && cmp >= 0) {
      if (cmp > 0)
        set_state(c, mm, u->inc, mm->status);
      if (susp_confirm(c, mm, u->from8))
        enqueue(c, idx, SWIM_UPD_SUSPECT, u->from8);
    }
    return;
  }
  /* dead */
  if (mm->status == SWIM_SUSPECT && mm->susp && cmp >= 0 &&
      (c->susp.v[mm->susp - 1].doubt ||
       !susp_fresh(c, &c->susp.v[mm->susp - 1]))) {
    /* A verdict is hearsay: it may be stale (formed on the far side of a
     * partition that has since healed, about an incarnation the member
     * never had a reason to refute) or be racing the member's refutation.
     * We accept a death only on first-hand evidence: our own probe failed
     * during this suspicion, or the member did not answer a verdict ping
     * of ours. Until then the verdict confirms our suspicion. */
    if (cmp > 0)
      set_state(c, mm, u->inc, mm->status);
    if (susp_confirm(c, mm, u->from8))
      enqueue(c, idx, SWIM_UPD_SUSPECT, u->from8);
    if (!c->susp.v[mm->susp - 1].doubt)
      verify_start(c, idx); /* a doubt's own timer decides */
    return;
  }
  if (is_live(mm->status) && cmp >= 0) {
    mark_dead(c, idx, u->inc, u->from8, SWIM_DEAD);
    c->st.updates_applied++;
  } else if (mm->status == SWIM_DEAD && cmp > 0) {
    set_state(c, mm, u->inc, SWIM_DEAD);
  }
}

static int remember_left(swim_core_t *c, const swim_upd_t *u) {
  leftsig_t *ls = (leftsig_t *)find_left(c, u->id8);
  if (!ls) {
    leftsig_t n;
    memset(&n, 0, sizeof n);
    if (VEC_PUSH(c->left, n))
      return SWIM_ENOMEM;
    ls = &c->left.v[c->left.n - 1];
  }
  ls->id8 = u->id8;
  ls->inc = u->inc;
  ls->has_sig = u->sig != NULL;
  if (u->sig)
    memcpy(ls->sig, u->sig, SWIM_SIG_LEN);
  return 0;
}

static void apply_left(swim_core_t *c, const swim_upd_t *u) {
  uint32_t idx = find8(c, u->id8);
  if (idx == NONE)
    return;
  member_t *mm = &c->m[idx];
  if (idx == 0) {
    if (!c->leaving && inc_cmp(u->inc, mm->inc) >= 0)
      refute(c, u->inc);
    return;
  }
  if (inc_cmp(u->inc, mm->inc) < 0)
    c->st.dropped[SWIM_DROP_REC_STALE]++;
  if (mm->status == SWIM_LEFT || inc_cmp(u->inc, mm->inc) < 0)
    return;
  if (remember_left(c, u))
    return;
  mark_dead(c, idx, u->inc, 0, SWIM_LEFT);
  c->st.updates_applied++;
}

/* A ping to a dead member carrying its verdict: if it is alive it refutes,
 * and its new record (in the ack) brings it back everywhere. */
static void ping_verdict(swim_core_t *c, uint32_t idx) {
  swim_hdr_t h = hdr(c, SWIM_MSG_PING, ++c->seq, c->m[idx].id8);
  send_dgram(c, &c->m[idx].rec->addr, &h, idx, 0);
}

/* For verdict pings that incoming messages prompt: a flood of digests or
 * verdicts cannot turn into a flood of pings. */
static void ping_verdict_limited(swim_core_t *c, uint32_t idx) {
  if (c->last_verdict_ping &&
      c->now < c->last_verdict_ping + VERDICT_PING_GAP_MS)
    return;
  c->last_verdict_ping = c->now;
  ping_verdict(c, idx);
}

/* A datagram from a member we hold dead: it is up and takes us for alive,
 * typically across a healed partition whose news passed us by (the
 * refutation's gossip ran out before it reached us, and anti-entropy or
 * the reconnect timer would take seconds). Ask it directly: the ping
 * carries our verdict, the ack its current record, and apply_alive()
 * takes it back and merges views with it. Nothing changes until that
 * ack arrives, so a sender we cannot reach stays dead; the pings are
 * limited like those digests prompt. */
static void heard_from(swim_core_t *c, uint64_t from8) {
  uint32_t i = find8(c, from8);
  if (i == NONE || i == 0 || c->m[i].status != SWIM_DEAD || c->leaving)
    return;
  ping_verdict_limited(c, i);
}

/* Someone else's verdict about a member we suspect on hearsay only: before
 * we declare it ourselves, ask it directly (the ping carries the
 * accusation). A live member answers at once, its ack carrying its
 * refutation; a dead one stays silent for a probe timeout, and then the
 * verdict is ours too. */
static void verify_start(swim_core_t *c, uint32_t idx) {
  member_t *mm = &c->m[idx];
  if (!mm->susp)
    return;
  susp_t *s = &c->susp.v[mm->susp - 1];
  if (s->verify)
    return;
  s->verify = 1;
  s->verify_at = c->now;
  /* Not stretched by local health (unlike a probe): the verdict rests on
   * this check, so it must say how the member is now, not seconds ago. */
  s->deadline = c->now + c->cfg.probe_timeout_ms;
  ping_verdict(c, idx);
}

static void add_tombstone(swim_core_t *c, const swim_upd_t *alive,
                          const swim_upd_t *verdict) {
  swim__rec_t *r = swim__rec_get(c->cfg.cache, alive);
  if (!r)
    return;
  uint32_t idx = add_member(c, r);
  if (idx == NONE) {
    swim__rec_put(r);
    return;
  }
  int left = verdict->kind == SWIM_UPD_LEFT && remember_left(c, verdict) == 0;
  set_state(c, &c->m[idx], verdict->inc, left ? SWIM_LEFT : SWIM_DEAD);
}

static void apply_digest(swim_core_t *c, const swim_upd_t *u,
                         const swim_addr_t *from) {
  uint32_t idx = find8(c, u->id8);
  if (idx == NONE) {
    if (u->status != SWIM_LEFT)
      want_sync(c, from);
    return;
  }
  member_t *mm = &c->m[idx];
  if (state_newer(mm->inc, mm->status, u->inc, u->status)) {
    if (mm->status == SWIM_DEAD && u->status == SWIM_ALIVE &&
        inc_cmp(mm->inc, u->inc) == 0) {
      /* Someone holds alive what we hold dead: likely a healed partition.
       * Spreading our verdict would kill it on their side too; asking the
       * member itself (the ping carries the verdict) makes it refute. */
      ping_verdict_limited(c, idx);
      return;
    }
    add_extra(c, idx, 1); /* it is behind: our reply carries the record */
    if (idx == 0 || mm->status != SWIM_ALIVE)
      if (!(mm->flags & M_QUEUED))
        enqueue_state(c, idx);
  } else if (state_newer(u->inc, u->status, mm->inc, mm->status)) {
    if (idx == 0) {
      refute_claim(c, u->inc);
    } else {
      add_ask(c, idx);
    }
  }
}

/* Per-member digests repair a stale view one member at a time; the view
 * checksum catches what they would take minutes to find. Views that keep
 * differing from peers' for VIEW_STALE_MS get a full exchange with the
 * peer (both sides merge), at most once per VIEW_SYNC_GAP_MS. */
static void apply_view(swim_core_t *c, const swim_upd_t *u,
                       const swim_addr_t *from) {
  if (u->view == (c->view_hash & VIEW_HASH_MASK)) {
    c->view_bad_since = 0;
    return;
  }
  if (!c->view_bad_since) {
    c->view_bad_since = c->now;
    return;
  }
  /* no more often than a quarter of the (size-scaled) push-pull interval:
   * in a big mesh after a mass join, views differ for a while everywhere,
   * and full exchanges would only add to the load that slows the gossip */
  uint64_t gap = pushpull_interval(c) / 4;
  if (gap < VIEW_SYNC_GAP_MS)
    gap = VIEW_SYNC_GAP_MS;
  if (c->now < c->view_bad_since + VIEW_STALE_MS || !c->cb.send_stream ||
      (c->last_view_sync && c->now < c->last_view_sync + gap))
    return;
  c->last_view_sync = c->now;
  c->view_bad_since = 0;
  send_state(c, from, 0);
}

/* Is a record of member mm at `inc` newer than both its state and the
 * record we hold? Anything else apply_alive ignores. */
static int rec_is_news(const member_t *mm, swim_inc_t inc) {
  return inc_cmp(inc, mm->inc) > 0 || inc_cmp(inc, mm->rec->inc) > 0;
}

/* A RENEW is the member's new ALIVE without the id, name, addr and meta,
 * which a receiver holding the member's record with the same body hash
 * puts back: the rebuilt record has the bytes the member signed, and is
 * then verified and applied like any other. Returns 1 with `u` the rebuilt
 * ALIVE; 0 when it is no news; 2 when we hold no such base (counted, `u`
 * left a RENEW: applying it asks the sender for the full record); or a
 * negative SWIM_E* code. */
static int renew_expand(swim_core_t *c, swim_upd_t *u) {
  uint32_t idx = find8(c, u->id8);
  if (idx == NONE) {
    c->st.dropped[SWIM_DROP_REC_UNMATCHED]++;
    return 2;
  }
  const member_t *mm = &c->m[idx];
  const swim__rec_t *r = mm->rec;
  if (!rec_is_news(mm, u->inc)) {
    if (inc_cmp(u->inc, mm->inc) < 0 && inc_cmp(u->inc, r->inc) < 0)
      c->st.dropped[SWIM_DROP_REC_STALE]++;
    return 0;
  }
  if (r->body != u->body || (u->sig != NULL) != (r->has_sig != 0)) {
    c->st.dropped[SWIM_DROP_REC_UNMATCHED]++;
    return 2;
  }
  /* the zone is no place for it: a refutation while applying clears it */
  size_t cap = (size_t)r->raw_len + 16; /* gen and ver may grow */
  uint8_t *p = malloc(cap);
  if (!p || VEC_PUSH(c->rebuilt, p)) {
    free(p);
    return SWIM_ENOMEM;
  }
  swim_wbuf_t w;
  msgpack_packer pk;
  size_t from, off = 0;
  swim_wbuf_init(&w, p, cap);
  swim_wbuf_packer(&w, &pk);
  swim_enc_alive_body(&pk, r->id, swim__rec_name(r), &r->addr, u->inc,
                      r->raw + r->meta_off, r->meta_len, &from);
  swim_enc_sig(&pk, u->sig);
  swim_upd_t a;
  if (w.overflow || swim_dec_upd(p, w.len, &off, &c->zone, &a) != 1)
    return SWIM_EMALFORMED;
  *u = a;
  return 1;
}

/* A RENEW we could not rebuild: ask for the full record. */
static void renew_unmatched(swim_core_t *c, const swim_upd_t *u,
                            const swim_addr_t *from) {
  uint32_t idx = find8(c, u->id8);
  if (idx == NONE) {
    want_sync(c, from); /* a member we never met: the sender knows more */
    return;
  }
  if (idx != 0)
    add_ask(c, idx);
}

static int verify_upd(swim_core_t *c, const swim_upd_t *u) {
  if (!c->cb.verify)
    return 0;
  const uint8_t *id;
  if (u->kind == SWIM_UPD_ALIVE) {
    uint32_t idx = find8(c, u->id8);
    /* Known bytes were verified when they first arrived. */
    if (idx != NONE && c->m[idx].rec->raw_len == u->raw_len &&
        memcmp(c->m[idx].rec->raw, u->raw, u->raw_len) == 0)
      return 0;
    if (idx == 0 && inc_cmp(u->inc, c->m[0].inc) <= 0)
      return 0; /* nothing newer about us: ignored */
    /* a newer record of ours is believed (refuted above) only when it
     * carries our own signature: an old life of ours */
    if (idx != NONE && !rec_is_news(&c->m[idx], u->inc))
      return 0; /* no newer than what we hold: apply_alive ignores it, so
                   a signature check would be wasted work */
    id = u->id;
  } else if (u->kind == SWIM_UPD_LEFT) {
    uint32_t idx = find8(c, u->id8);
    if (idx != NONE) {
      id = c->m[idx].rec->id;
    } else {
      /* the member may be introduced earlier in this very message */
      id = NULL;
      for (uint32_t i = c->scratch.n; i-- > 0;)
        if (c->scratch.v[i].kind == SWIM_UPD_ALIVE &&
            c->scratch.v[i].id8 == u->id8) {
          id = c->scratch.v[i].id;
          break;
        }
      if (!id)
        return 0; /* unknown when applied, so ignored */
    }
  } else {
    return 0;
  }
  int ok = u->kind == SWIM_UPD_ALIVE
               ? c->cb.verify(c->ud, id, u->signed_ptr, u->signed_len, u->sig,
                              u->name, u->name_len, u->meta, u->meta_len)
               : c->cb.verify(c->ud, id, u->signed_ptr, u->signed_len, u->sig,
                              NULL, 0, NULL, 0);
  if (ok == SWIM_VERIFY_LATER && u->kind == SWIM_UPD_ALIVE)
    return SWIM_VERIFY_LATER;
  return ok == 0 ? 0 : SWIM_EBADSIG;
}

/* ---- probing ---- */

/* A random live member other than this node, `skip` and those in `also`;
 * NONE after a bounded number of tries (a mostly dead table). */
static uint32_t pick_random(swim_core_t *c, uint32_t skip,
                            const uint32_t *also, uint32_t nalso) {
  if (c->nm <= 1)
    return NONE;
  for (int tries = 0; tries < 16; tries++) {
    uint32_t i = 1 + (uint32_t)rnd(c, c->nm - 1);
    member_t *mm = &c->m[i];
    if (!mm->rec || i == skip || !is_live(mm->status))
      continue;
    int dup = 0;
    for (uint32_t k = 0; k < nalso; k++)
      dup |= also[k] == i;
    if (!dup)
      return i;
  }
  return NONE;
}

static uint32_t next_target(swim_core_t *c) {
  while (c->soon.n) {
    uint32_t i = c->soon.v[--c->soon.n];
    if (!c->m[i].rec)
      continue;
    int recheck = c->m[i].flags & M_RECHECK;
    c->m[i].flags &= (uint8_t)~(M_PROBE_SOON | M_RECHECK);
    if (c->m[i].status == SWIM_SUSPECT)
      return i;
    if (recheck && c->m[i].status == SWIM_ALIVE) {
      c->probe.recheck = 1;
      return i;
    }
  }
  for (uint32_t scanned = 0; scanned <= c->order.n; scanned++) {
    if (c->order_pos >= c->order.n) {
      /* new round: shuffle (Fisher-Yates) */
      for (uint32_t i = c->order.n; i > 1; i--) {
        uint32_t j = (uint32_t)rnd(c, i);
        uint32_t t = c->order.v[i - 1];
        c->order.v[i - 1] = c->order.v[j];
        c->order.v[j] = t;
      }
      c->order_pos = 0;
      if (c->order.n == 0)
        return NONE;
    }
    uint32_t i = c->order.v[c->order_pos++];
    if (i != 0 && c->m[i].rec && is_live(c->m[i].status))
      return i;
  }
  return NONE;
}

static void probe_start(swim_core_t *c) {
  c->probe.recheck = 0;
  uint32_t t = next_target(c);
  /* fenced: unstretched and direct only, it only measures our hearing;
   * on probation (see fence_due) unstretched */
  uint32_t lhm = c->fence.on || fence_probation(c) ? 0 : c->lhm;
  c->next_probe = c->now + mul_ms(c->cfg.probe_interval_ms, lhm);
  if (t == NONE)
    return;
  c->probe.active = 1;
  c->probe.acked = 0;
  c->probe.direct = 0;
  c->probe.indirect = c->fence.on;
  c->probe.rescued = 0;
  c->probe.retried = 0;
  c->probe.late = 0;
  c->probe.seq_stream = 0;
  c->probe.target = t;
  c->probe.target8 = c->m[t].id8;
  c->probe.inc = c->m[t].inc;
  c->probe.seq = ++c->seq;
  c->probe.nacks = c->probe.nacks_expected = 0;
  c->probe.t_indirect = c->now + mul_ms(c->cfg.probe_timeout_ms, lhm);
  c->probe.t_end = c->next_probe;
  c->st.probes++;
  c->st.pings++;
  swim_hdr_t h = hdr(c, SWIM_MSG_PING, c->probe.seq, c->probe.target8);
  send_dgram(c, &c->m[t].rec->addr, &h, t, 1);
}

/* A PING (or its ACK) over the stream, with this node's own record, so
 * that a peer which cannot authenticate our datagrams yet learns us (and
 * our certificate, from the frame) from it. */
static void stream_ping(swim_core_t *c, const swim_addr_t *to, uint8_t type,
                        uint32_t seq, uint64_t target8) {
  if (!c->cb.send_stream || !c->m[0].rec)
    return;
  uint8_t buf[1024];
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, buf, sizeof buf);
  swim_wbuf_packer(&w, &pk);
  swim_hdr_t h = hdr(c, type, seq, target8);
  h.flags = type == SWIM_MSG_PING ? SWIM_PING_STREAM : 0;
  swim_enc_hdr(&pk, &h);
  msgpack_pack_bin_body(&pk, c->m[0].rec->raw, c->m[0].rec->raw_len);
  if (w.overflow)
    return;
  if (type == SWIM_MSG_PING)
    c->st.stream_pings++;
  c->st.stream_out++;
  c->st.stream_bytes_out += w.len;
  c->cb.send_stream(c->ud, to, w.p, w.len);
}

static void probe_indirect(swim_core_t *c) {
  c->probe.indirect = 1;
  member_t *tm = &c->m[c->probe.target];
  if (!tm->rec || tm->id8 != c->probe.target8)
    return;
  uint32_t chosen[16];
  uint32_t k = c->cfg.indirect_checks < SWIM_MAX_INDIRECT_CHECKS
                   ? c->cfg.indirect_checks
                   : SWIM_MAX_INDIRECT_CHECKS;
  uint32_t n = 0;
  for (uint32_t i = 0; i < k; i++) {
    uint32_t h = pick_random(c, c->probe.target, chosen, n);
    if (h == NONE)
      break;
    chosen[n++] = h;
  }
  for (uint32_t i = 0; i < n; i++) {
    swim_hdr_t h = hdr(c, SWIM_MSG_PING_REQ, c->probe.seq, c->probe.target8);
    h.taddr = tm->rec->addr;
    c->st.ping_reqs++;
    send_dgram(c, &c->m[chosen[i]].rec->addr, &h, NONE, 0);
  }
  c->probe.nacks_expected = n;
  /* and once more ourselves: a ping or its ack lost to chance is the
   * common case, and a second try costs one small datagram, where a
   * suspicion costs a refutation sent to everybody */
  {
    swim_hdr_t h = hdr(c, SWIM_MSG_PING, c->probe.seq, c->probe.target8);
    c->st.pings++;
    send_dgram(c, &tm->rec->addr, &h, c->probe.target, 0);
  }
  /* Beside the helpers, try the stream (memberlist's TCP fallback): it
   * gets through datagram loss, and it carries our own record, so a
   * target that cannot authenticate us yet (we joined a moment ago)
   * learns us and answers instead of being suspected. */
  if (c->cb.send_stream && c->m[0].rec) {
    c->probe.seq_stream = ++c->seq;
    stream_ping(c, &tm->rec->addr, SWIM_MSG_PING, c->probe.seq_stream,
                c->probe.target8);
  }
}

/* Halfway between going indirect and the verdict, a last direct ping: a
 * datagram lost to chance is the common reason a probe goes unanswered,
 * and one more small datagram is far cheaper than a suspicion and its
 * refutation sent to everybody. Only from a node in good health (local
 * health 0: a node that hears badly would save itself with it) to a
 * member that has been alive and quiet for RETRY_QUIET_MS (one that keeps
 * being suspected, a deaf one, is judged without it). */
static int retry_worth(const swim_core_t *c) {
  const member_t *m = &c->m[c->probe.target];
  return c->lhm == 0 && m->status == SWIM_ALIVE &&
         c->now >= m->since + RETRY_QUIET_MS;
}

static uint64_t probe_retry_at(const swim_core_t *c) {
  return c->probe.t_indirect + (c->probe.t_end - c->probe.t_indirect) / 2;
}

static void probe_end(swim_core_t *c) {
  c->probe.active = 0;
  uint32_t t = c->probe.target;
  member_t *tm = &c->m[t];
  /* the replies this probe expected, for the deafness check: the direct
   * ack; on a failure, one reply (ack or nack) per helper; on success
   * through a helper, the helper's ack (others may still be on the way) */
  if (c->fence.on) {
    c->fence.acks = c->probe.direct ? c->fence.acks + 1 : 0;
    if (c->fence.acks >= FENCE_RECOVER_ACKS)
      fence_end(c);
  } else {
    /* a probe rescued by the stream says nothing of our datagram hearing:
     * its helpers' replies (or their silence) do */
    fence_sample(c, c->probe.direct);
    if (!c->probe.direct && c->probe.acked && !c->probe.rescued &&
        !c->probe.late) {
      fence_sample(c, 1);
    } else if (!c->probe.acked || c->probe.rescued || c->probe.late) {
      for (uint32_t i = 0; i < c->probe.nacks_expected; i++)
        fence_sample(c, i < c->probe.nacks);
    }
  }
  /* Lifeguard: missing nacks mean our own links or CPU are the problem.
   * A probe saved only by the last direct ping counts as failed here (a
   * member that hears badly would otherwise keep its local health, and
   * never find itself deaf); a probe answered in time is a sign of
   * health. */
  int delta = 1;
  if (c->probe.nacks_expected)
    delta = c->probe.nacks < c->probe.nacks_expected
                ? (int)(c->probe.nacks_expected - c->probe.nacks)
                : 0; /* helpers answered: the target is the problem */
  if (c->probe.acked) {
    lhm_add(c, c->probe.retried ? delta : -1);
    if (tm->rec && tm->id8 == c->probe.target8 && tm->susp) {
      /* The suspect answered (directly or through a helper): whatever the
       * suspicion said, it is up. Its refutation is on the way (our ping
       * carried the suspicion), so the verdict waits a full timeout. */
      susp_t *s = &c->susp.v[tm->susp - 1];
      s->start = c->now;
      s->nconf = 0;
      s->last_chance = 0;
      s->own = 0;
      s->verify = 0;
      s->deadline = s->start + susp_timeout(s);
    }
    return;
  }
  c->st.probes_failed++;
  lhm_add(c, delta);
  if (!tm->rec || tm->id8 != c->probe.target8 || c->leaving || c->fence.on ||
      fence_probation(c))
    return; /* fenced or on probation: we accuse nobody */
  if (inc_cmp(tm->inc, c->probe.inc) > 0 && !c->probe.recheck &&
      c->now > c->probe.t_indirect + c->cfg.probe_interval_ms) {
    /* Our last pings went out more than a probe period ago (the probe was
     * stretched by local health) and the member has signed a newer
     * incarnation since it began (a refutation, say): the silence is old
     * news about a life it has left. Accusing the new incarnation with it
     * made a member back from a partition refute again and again until it
     * fenced itself (128-node one-way cut, seed 26). The next probe asks
     * it again instead, and that one's failure counts, stale or not. An
     * unstretched probe accuses as before. A deaf member refutes during
     * probes too, and its removal relies on being accused
     * (docs/protocol.md, "Deaf members"). */
    c->st.probes_stale++;
    probe_soon(c, t); /* so it is asked again, first */
    tm->flags |= M_RECHECK;
    return;
  }
  if (tm->status == SWIM_ALIVE)
    mark_suspect(c, t, tm->inc, c->self8, 0);
  else if (tm->status == SWIM_SUSPECT && susp_confirm(c, tm, c->self8))
    enqueue(c, t, SWIM_UPD_SUSPECT, c->self8);
  if (tm->susp) { /* we failed to reach it ourselves */
    c->susp.v[tm->susp - 1].own = 1;
    c->susp.v[tm->susp - 1].own_at = c->probe.t_indirect;
  }
}

/* ---- public entry points ---- */

void swim_config_default(swim_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->probe_interval_ms = SWIM_DEFAULT_PROBE_INTERVAL_MS;
  cfg->probe_timeout_ms = SWIM_DEFAULT_PROBE_TIMEOUT_MS;
  cfg->indirect_checks = SWIM_DEFAULT_INDIRECT_CHECKS;
  cfg->gossip_interval_ms = SWIM_DEFAULT_GOSSIP_INTERVAL_MS;
  cfg->gossip_nodes = SWIM_DEFAULT_GOSSIP_NODES;
  cfg->retransmit_mult = SWIM_DEFAULT_RETRANSMIT_MULT;
  cfg->suspicion_min_mult = SWIM_DEFAULT_SUSPICION_MIN_MULT;
  cfg->suspicion_max_mult = SWIM_DEFAULT_SUSPICION_MAX_MULT;
  cfg->suspicion_confirm = SWIM_DEFAULT_SUSPICION_CONFIRM;
  cfg->awareness_max = SWIM_DEFAULT_AWARENESS_MAX;
  cfg->pushpull_interval_ms = SWIM_DEFAULT_PUSHPULL_INTERVAL_MS;
  cfg->tombstone_ms = SWIM_DEFAULT_TOMBSTONE_MS;
  cfg->reconnect_interval_ms = SWIM_DEFAULT_RECONNECT_INTERVAL_MS;
  cfg->join_retry_ms = SWIM_DEFAULT_JOIN_RETRY_MS;
  cfg->max_payload = SWIM_MAX_PAYLOAD;
}

static int check_config(const swim_config_t *cfg) {
  size_t nl = strnlen(cfg->name, sizeof cfg->name);
  if (nl == 0 || nl > SWIM_NAME_MAX)
    return SWIM_EINVAL;
  if (cfg->addr.family != 4 && cfg->addr.family != 6)
    return SWIM_EINVAL;
  if (!cfg->probe_interval_ms || !cfg->probe_timeout_ms ||
      cfg->probe_timeout_ms > cfg->probe_interval_ms)
    return SWIM_EINVAL;
  if (!cfg->retransmit_mult || !cfg->suspicion_min_mult ||
      !cfg->suspicion_max_mult)
    return SWIM_EINVAL;
  if (cfg->meta_len > SWIM_META_MAX || (cfg->meta_len && !cfg->meta))
    return SWIM_EINVAL;
  if (cfg->max_payload < 256 || cfg->max_payload > SWIM_MAX_PAYLOAD)
    return SWIM_EINVAL;
  return 0;
}

int swim_new(swim_core_t **out, const swim_config_t *cfg,
             const swim_callbacks_t *cb, void *ud, uint64_t now) {
  *out = NULL;
  if (!cfg || !cb || !cb->send || !cb->rand64)
    return SWIM_EINVAL;
  int rc = check_config(cfg);
  if (rc)
    return rc;
  swim_core_t *c = calloc(1, sizeof *c);
  if (!c)
    return SWIM_ENOMEM;
  c->cfg = *cfg;
  c->cfg.name[SWIM_NAME_MAX] = 0;
  c->cfg.meta = NULL;
  c->cb = *cb;
  c->ud = ud;
  c->now = now;
  c->self8 = swim_id8(cfg->id);
  if (cfg->meta_len)
    memcpy(c->meta, cfg->meta, cfg->meta_len);
  c->meta_len = cfg->meta_len;
  if (!msgpack_zone_init(&c->zone, 2048)) {
    free(c);
    return SWIM_ENOMEM;
  }
  swim__rec_t *r;
  swim_inc_t inc = {cfg->generation, 0};
  if ((rc = self_record(c, inc, &r)) != 0) {
    msgpack_zone_destroy(&c->zone);
    free(c);
    return rc;
  }
  if (add_member(c, r) != 0) {
    swim__rec_put(r);
    swim_free(c);
    return SWIM_ENOMEM;
  }
  c->m[0].since = now;
  /* spread the first probe of a cluster started at once over a period */
  c->next_probe = now + rnd(c, c->cfg.probe_interval_ms);
  c->next_gossip = now + c->cfg.gossip_interval_ms;
  c->next_pushpull = now + c->cfg.pushpull_interval_ms +
                     rnd(c, c->cfg.pushpull_interval_ms);
  /* and the reconnect pings too: a cluster started at once would otherwise
   * send them all in the same instant, so a partition healing just after
   * it would wait a whole interval for any side to hear from the other */
  c->next_reconnect = now + c->cfg.reconnect_interval_ms +
                      rnd(c, c->cfg.reconnect_interval_ms);
  *out = c;
  return 0;
}

void swim_free(swim_core_t *c) {
  if (!c)
    return;
  for (uint32_t i = 0; i < c->nm; i++)
    swim__rec_put(c->m[i].rec);
  free(c->m);
  free(c->ht);
  free(c->order.v);
  free(c->soon.v);
  free(c->fwd.v);
  free(c->susp.v);
  free(c->left.v);
  free(c->ev.v);
  free(c->reaped.v);
  free(c->scratch.v);
  free(c->rebuilt.v);
  for (int i = 0; i < BQ_LEVELS; i++)
    free(c->bq[i].v);
  free(c->seeds);
  free(c->deferred.v);
  msgpack_zone_destroy(&c->zone);
  free(c);
}

static void drop(swim_core_t *c, int rc) {
  int reason = SWIM_DROP_MALFORMED;
  switch (rc) {
  case SWIM_ETRUNC: reason = SWIM_DROP_TRUNCATED; break;
  case SWIM_EVERSION: reason = SWIM_DROP_VERSION; break;
  case SWIM_ETOOBIG: reason = SWIM_DROP_OVERSIZE; break;
  case SWIM_EBADSIG: reason = SWIM_DROP_BADSIG; break;
  case SWIM_ESPOOF: reason = SWIM_DROP_SPOOFED; break;
  default: break;
  }
  c->st.dropped[reason]++;
}

/* A push-pull of a large view leaves big scratch buffers behind; at
 * thousands of cores per process they add up, so they are given back. */
static void release_scratch(swim_core_t *c, size_t len) {
  c->scratch.n = 0;
  for (uint32_t i = 0; i < c->rebuilt.n; i++)
    free(c->rebuilt.v[i]);
  c->rebuilt.n = 0;
  VEC_SHRINK(c->rebuilt, 4);
  if (c->scratch.cap > SCRATCH_KEEP) {
    free(c->scratch.v);
    c->scratch.v = NULL;
    c->scratch.cap = 0;
  }
  if (len > 64 * 1024) {
    msgpack_zone_destroy(&c->zone);
    if (!msgpack_zone_init(&c->zone, 2048))
      msgpack_zone_init(&c->zone, 0);
  }
}

static void handle_hdr(swim_core_t *c, const swim_addr_t *from,
                       const swim_hdr_t *h) {
  switch (h->type) {
  case SWIM_MSG_PING: {
    if (h->target8 != (c->self8 >> 32) && h->target8 != 0)
      return; /* meant for whoever had this address before */
    if (c->fence.on)
      return; /* deaf: an ack would restart the others' suspicions */
    c->st.acks++;
    swim_hdr_t a = hdr(c, SWIM_MSG_ACK, h->seq, 0);
    if (h->flags & SWIM_PING_STREAM) {
      /* answer over the stream, to the address the pinger advertises (its
       * record came with the ping and was applied first) */
      uint32_t pi = find8(c, h->from8);
      if (pi == NONE || pi == 0)
        return;
      /* with our own record: the pinger may not know us yet either */
      stream_ping(c, &c->m[pi].rec->addr, SWIM_MSG_ACK, h->seq, 0);
      return;
    }
    send_dgram(c, from, &a, NONE, 0);
    if (find8(c, h->from8) == NONE)
      want_sync(c, from);
    break;
  }
  case SWIM_MSG_ACK:
    if (c->probe.active && h->seq == c->probe.seq) {
      c->probe.acked = 1;
      /* only the first ping's ack samples our hearing (the deafness
       * check): the retry's would give a deaf member a second chance */
      if (h->from8 == c->probe.target8 && !c->probe.retried)
        c->probe.direct = 1;
      else if (h->from8 == c->probe.target8)
        c->probe.late = 1;
    }
    /* a stream ping's ack rescues the probe but is not a direct datagram
     * ack: a fenced member counts only those to tell it hears again */
    if (c->probe.active && c->probe.seq_stream && h->seq == c->probe.seq_stream &&
        !c->probe.acked) {
      c->probe.acked = 1;
      c->probe.rescued = 1;
      c->st.stream_rescues++;
    }
    for (uint32_t i = 0; i < c->fwd.n; i++) {
      fwd_t *f = &c->fwd.v[i];
      if (f->seq != h->seq)
        continue;
      swim_hdr_t a = hdr(c, SWIM_MSG_ACK, f->req_seq, 0);
      send_dgram(c, &f->req_addr, &a, NONE, 0);
      c->fwd.v[i] = c->fwd.v[--c->fwd.n];
      break;
    }
    break;
  case SWIM_MSG_PING_REQ: {
    fwd_t f;
    memset(&f, 0, sizeof f);
    f.seq = ++c->seq;
    f.req_seq = h->seq;
    f.req_addr = *from;
    f.nack_at = c->now + c->cfg.probe_timeout_ms * 8 / 10;
    f.expire = c->now + c->cfg.probe_interval_ms;
    if (c->fwd.n >= 64 || VEC_PUSH(c->fwd, f))
      return; /* bounded: a flood of ping-reqs cannot grow memory */
    c->st.pings++;
    uint32_t t = find8(c, h->target8);
    swim_hdr_t p = hdr(c, SWIM_MSG_PING, f.seq, h->target8);
    send_dgram(c, &h->taddr, &p, t, 0);
    break;
  }
  case SWIM_MSG_NACK:
    if (c->probe.active && h->seq == c->probe.seq)
      c->probe.nacks++;
    break;
  default:
    break;
  }
}

int swim_recv(swim_core_t *c, const swim_addr_t *from, const uint8_t *buf,
              size_t len, uint64_t now) {
  return swim_recv_from(c, from, 0, buf, len, now);
}

int swim_recv_from(swim_core_t *c, const swim_addr_t *from, uint64_t from8,
                   const uint8_t *buf, size_t len, uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (!from || (!buf && len))
    return SWIM_EINVAL;
  c->now = now;
  c->st.pkts_in++;
  c->st.bytes_in += len;
  int rc;
  if (len > SWIM_STREAM_MAX) {
    rc = SWIM_ETOOBIG;
    goto bad;
  }
  if ((rc = swim_skim(buf, len)) != 0)
    goto bad;
  msgpack_zone_clear(&c->zone);
  size_t off = 0;
  swim_hdr_t h;
  if ((rc = swim_dec_hdr(buf, len, &off, &c->zone, &h)) != 0)
    goto bad;
  if (h.from8 && from8 && h.from8 != from8) {
    /* The transport authenticated one member and the header names
     * another: a member speaking in someone else's name (acking for a
     * member that is gone, say). */
    rc = SWIM_ESPOOF;
    goto bad;
  }
  if (!h.from8)
    h.from8 = from8;
  if (!h.from8) {
    rc = SWIM_EMALFORMED; /* nobody named the sender */
    goto bad;
  }
  if (h.type != SWIM_MSG_PUSHPULL && len > SWIM_MTU) {
    rc = SWIM_ETOOBIG;
    goto bad;
  }
  /* Decode and verify everything before changing anything. */
  c->scratch.n = 0;
  for (;;) {
    swim_upd_t u;
    rc = swim_dec_upd(buf, len, &off, &c->zone, &u);
    if (rc == 0)
      break;
    if (rc < 0)
      goto bad;
    if (u.kind == SWIM_UPD_CRED) {
      /* self-authenticating (the runtime checks it before keeping it) */
      if (c->cb.cred_put)
        c->cb.cred_put(c->ud, u.id, u.meta, u.meta_len);
      continue;
    }
    if (u.kind == SWIM_UPD_RENEW) {
      rc = renew_expand(c, &u);
      if (rc < 0)
        goto bad;
      if (rc == 0)
        continue;
    }
    if (u.kind == SWIM_UPD_ALIVE || u.kind == SWIM_UPD_LEFT) {
      if ((rc = verify_upd(c, &u)) == SWIM_VERIFY_LATER) {
        c->st.records_deferred++;
        continue;
      }
      if (rc != 0)
        goto bad;
    }
    if (VEC_PUSH(c->scratch, u)) {
      rc = SWIM_ENOMEM;
      goto bad;
    }
  }
  if (h.type == SWIM_MSG_PUSHPULL) {
    c->st.stream_in++;
    c->st.stream_bytes_in += len;
  }
  /* Updates first, so a reply (ack, push-pull answer) reflects them. */
  int merge = h.type == SWIM_MSG_PUSHPULL;
  for (uint32_t i = 0; i < c->scratch.n; i++) {
    swim_upd_t *u = &c->scratch.v[i];
    if (merge && u->kind == SWIM_UPD_ALIVE && i + 1 < c->scratch.n &&
        c->scratch.v[i + 1].id8 == u->id8 &&
        (c->scratch.v[i + 1].kind == SWIM_UPD_DEAD ||
         c->scratch.v[i + 1].kind == SWIM_UPD_LEFT) &&
        find8(c, u->id8) == NONE) {
      /* a tombstone we do not hold (never met, or already reaped): kept
       * as one, quietly, so views agree; it is no news to anybody */
      add_tombstone(c, u, &c->scratch.v[++i]);
      continue;
    }
    switch (u->kind) {
    case SWIM_UPD_ALIVE: apply_alive(c, u); break;
    case SWIM_UPD_SUSPECT:
    case SWIM_UPD_DEAD: apply_accuse(c, u, merge); break;
    case SWIM_UPD_LEFT: apply_left(c, u); break;
    case SWIM_UPD_DIGEST: apply_digest(c, u, from); break;
    case SWIM_UPD_VIEW: apply_view(c, u, from); break;
    case SWIM_UPD_RENEW: renew_unmatched(c, u, from); break;
    }
  }
  if ((c->nextras || c->nasks) && h.type != SWIM_MSG_PING &&
      h.type != SWIM_MSG_PUSHPULL) {
    /* corrections for a sender that is behind (a ping's ack carries them) */
    swim_hdr_t g = hdr(c, SWIM_MSG_GOSSIP, 0, 0);
    send_dgram(c, from, &g, NONE, 0);
  }
  if (h.type == SWIM_MSG_PUSHPULL) {
    /* A stream arrives from an ephemeral port: answer the sender's
     * advertised address, which its own state just told us. */
    uint32_t si = find8(c, h.from8);
    const swim_addr_t *to = si != NONE && si != 0 ? &c->m[si].rec->addr : from;
    if (!(h.flags & SWIM_PP_REPLY))
      send_state(c, to, SWIM_PP_REPLY);
    if (c->joining) {
      c->joining = 0;
      logf_(c, SWIM_LOG_INFO, "joined: %u members known", c->alive_n);
    }
    if (c->sync_want && memcmp(&c->sync_addr, to, sizeof *to) == 0)
      c->sync_want = 0;
  } else {
    if (h.type == SWIM_MSG_ACK) {
      /* an ack from the member itself: both ways between us work */
      uint32_t ai = find8(c, h.from8);
      if (ai != NONE && ai != 0 && c->m[ai].susp)
        c->susp.v[c->m[ai].susp - 1].acked = now;
    }
    handle_hdr(c, from, &h);
    heard_from(c, h.from8);
    if (c->joining && h.type == SWIM_MSG_ACK)
      c->joining = 0;
  }
  c->nextras = 0;
  c->nasks = 0;
  release_scratch(c, len);
  if (c->sync_want) {
    c->sync_want = 0;
    c->last_sync = now;
    send_state(c, &c->sync_addr, 0);
  }
  flush(c);
  return 0;
bad:
  drop(c, rc);
  release_scratch(c, len);
  return rc;
}

static void reap_and_reconnect(swim_core_t *c) {
  uint32_t ndead = 0, t = NONE;
  for (uint32_t i = 1; i < c->nm; i++) {
    member_t *mm = &c->m[i];
    if (!mm->rec || is_live(mm->status) || (mm->flags & M_REAPED))
      continue;
    if (c->now >= mm->since + c->cfg.tombstone_ms) {
      mm->flags |= M_REAPED;
      ev_push(c, SWIM_EV_REAPED, i, mm->status);
      if (mm->status == SWIM_LEFT) {
        for (uint32_t k = 0; k < c->left.n; k++)
          if (c->left.v[k].id8 == mm->id8) {
            c->left.v[k] = c->left.v[--c->left.n];
            break;
          }
      }
      (void)VEC_PUSH(c->reaped, i);
    } else if (mm->status == SWIM_DEAD && rnd(c, ++ndead) == 0) {
      t = i; /* reservoir sampling: each dead member equally likely */
    }
  }
  if (t == NONE || c->leaving)
    return;
  /* A dead member may only be behind a partition: ping it with its
   * verdict. If it is alive it refutes, and when its new record arrives
   * apply_alive() exchanges full state with it, merging the two sides. */
  ping_verdict(c, t); /* the reconnect timer is its own limit */
}

static void gossip(swim_core_t *c) {
  uint32_t chosen[16];
  uint32_t k = c->cfg.gossip_nodes < 16 ? c->cfg.gossip_nodes : 16, n = 0;
  /* A backlog (a mass join queues a record per newcomer) goes out faster,
   * not bigger: every update is still sent its limit of times, only to
   * more members per round, so the same bytes are spent sooner. */
  uint32_t want = (c->bq_total + GOSSIP_PER_PKT - 1) / GOSSIP_PER_PKT;
  if (want > k)
    k = want < 16 ? want : 16;
  for (uint32_t i = 0; i < k; i++) {
    uint32_t t = pick_random(c, NONE, chosen, n);
    if (t == NONE)
      break;
    chosen[n++] = t;
  }
  for (uint32_t i = 0; i < n && c->bq_total; i++) {
    swim_hdr_t h = hdr(c, SWIM_MSG_GOSSIP, 0, 0);
    send_dgram(c, &c->m[chosen[i]].rec->addr, &h, NONE, 0);
  }
}

static uint64_t pushpull_interval(const swim_core_t *c) {
  uint64_t base = c->cfg.pushpull_interval_ms;
  if (c->alive_n <= 32)
    return base;
  double mult = ceil(log2((double)c->alive_n) - log2(32.0)) + 1.0;
  return (uint64_t)((double)base * mult);
}

void swim_tick(swim_core_t *c, uint64_t now) {
  if (c->in_cb)
    return;
  if (now > c->now)
    c->now = now;
  now = c->now;
  if (c->deferred.n)
    send_deferred(c);
  /* helper duties: nack in time, then forget */
  for (uint32_t i = 0; i < c->fwd.n;) {
    fwd_t *f = &c->fwd.v[i];
    if (!f->nacked && now >= f->nack_at) {
      f->nacked = 1;
      c->st.nacks++;
      swim_hdr_t h = hdr(c, SWIM_MSG_NACK, f->req_seq, 0);
      send_dgram(c, &f->req_addr, &h, NONE, 0);
    }
    if (now >= f->expire) {
      c->fwd.v[i] = c->fwd.v[--c->fwd.n];
      continue;
    }
    i++;
  }
  if (c->probe.active && !c->probe.acked && !c->probe.indirect &&
      now >= c->probe.t_indirect)
    probe_indirect(c);
  if (c->probe.active && !c->probe.acked && c->probe.indirect &&
      !c->probe.retried && retry_worth(c) &&
      now >= probe_retry_at(c)) {
    /* halfway to the verdict, a last direct try */
    c->probe.retried = 1;
    member_t *tm = &c->m[c->probe.target];
    if (tm->rec && tm->id8 == c->probe.target8) {
      swim_hdr_t h = hdr(c, SWIM_MSG_PING, c->probe.seq, c->probe.target8);
      c->st.pings++;
      send_dgram(c, &tm->rec->addr, &h, c->probe.target, 0);
    }
  }
  if (c->probe.active && (now >= c->probe.t_end || c->probe.acked))
    probe_end(c);
  if (!c->leaving && now >= c->next_probe)
    probe_start(c);
  for (uint32_t i = 0; i < c->susp.n;) {
    susp_t *s = &c->susp.v[i];
    if (c->fence.on) {
      /* fenced: our hearing is the problem, so nobody is declared dead
       * by us; the suspicions wait, and are checked again afterwards */
      if (now >= s->deadline)
        s->deadline = now + c->cfg.probe_interval_ms;
      i++;
      continue;
    }
    if (now >= s->deadline && s->acked > s->start && !c->leaving) {
      /* The suspect itself acked us since the suspicion began (a verdict
       * ping, say): it is up and its refutation is on the way. Like an
       * acked probe, this restarts the timer; the ping carries the
       * suspicion again. */
      s->start = now;
      s->nconf = 0;
      s->last_chance = 0;
      s->own = 0;
      s->verify = 0;
      s->deadline = now + susp_timeout(s);
      ping_verdict(c, s->midx);
      i++;
      continue;
    }
    if (!s->verify && !s->doubt && s->nconf >= s->k && !c->leaving &&
        now + c->cfg.probe_timeout_ms >= s->deadline && !susp_fresh(c, s)) {
      /* Fully confirmed and due within a probe timeout, with no fresh
       * failure of our own: the verdict ping that expiry (or the first
       * verdict to arrive) would send goes out now, so its answer, or
       * its silence, is in by the deadline. Same ping, same rule; a
       * crashed member is declared one probe timeout sooner. */
      verify_start(c, s->midx);
      i++;
      continue;
    }
    if (now >= s->deadline && s->verify) {
      s->own = 1; /* our verdict ping went unanswered: first-hand now */
      s->own_at = s->verify_at;
    }
    if (now >= s->deadline && s->nconf < s->k && !s->last_chance &&
        !s->verify && !c->leaving) {
      /* Not fully confirmed: before calling it dead, probe it once more
       * ourselves. The ping carries the suspicion, so a live
       * suspect answers with its refutation, which may simply never have
       * reached us. A true failure costs two more probe periods. */
      s->last_chance = 1;
      s->deadline = now + 2 * mul_ms(c->cfg.probe_interval_ms, c->lhm);
      probe_soon(c, s->midx);
      i++;
      continue;
    }
    if (now >= s->deadline && !s->verify && !susp_fresh(c, s) &&
        !c->leaving) {
      /* Hearsay alone (a rumour we never checked), or a failure of ours
       * that is no longer recent: one direct check first. */
      verify_start(c, s->midx);
      i++;
      continue;
    }
    if (now >= s->deadline) {
      uint32_t midx = s->midx;
      member_t *mm = &c->m[midx];
      logf_(c, SWIM_LOG_INFO, "suspicion of %s expired after %u confirmations",
            swim__rec_name(mm->rec), s->nconf);
      mark_dead(c, midx, mm->inc, c->self8, SWIM_DEAD); /* clears s */
      continue;
    }
    i++;
  }
  if (now >= c->next_gossip) {
    if (c->bq_total)
      gossip(c);
    c->next_gossip = now + c->cfg.gossip_interval_ms;
  }
  if (c->cb.send_stream && !c->leaving && now >= c->next_pushpull) {
    uint32_t t = pick_random(c, NONE, NULL, 0);
    if (t != NONE)
      send_state(c, &c->m[t].rec->addr, 0);
    c->next_pushpull = now + pushpull_interval(c);
  }
  if (now >= c->next_reconnect) {
    reap_and_reconnect(c);
    c->next_reconnect = now + c->cfg.reconnect_interval_ms;
  }
  if (c->joining && now >= c->next_join) {
    for (size_t i = 0; i < c->nseeds; i++) {
      if (c->cb.send_stream) {
        send_state(c, &c->seeds[i], SWIM_PP_JOIN);
      } else {
        swim_hdr_t h = hdr(c, SWIM_MSG_PING, ++c->seq, 0);
        c->nextras = 0;
        add_extra(c, 0, 1);
        send_dgram(c, &c->seeds[i], &h, NONE, 0);
      }
    }
    if (++c->join_tries > 2)
      logf_(c, SWIM_LOG_WARN, "still joining: no answer from %zu seed(s) "
            "after %u tries; next try in %u ms", c->nseeds, c->join_tries,
            c->join_backoff);
    c->next_join = now + c->join_backoff;
    c->join_backoff = c->join_backoff * 2 > SWIM_MAX_JOIN_RETRY_MS
                          ? SWIM_MAX_JOIN_RETRY_MS
                          : c->join_backoff * 2;
  }
  flush(c);
}

uint64_t swim_next_deadline(const swim_core_t *c) {
  uint64_t d = UINT64_MAX;
#define MIN_(x)                                                                \
  do {                                                                         \
    if ((x) < d)                                                               \
      d = (x);                                                                 \
  } while (0)
  if (!c->leaving)
    MIN_(c->next_probe);
  if (c->probe.active) {
    if (!c->probe.indirect)
      MIN_(c->probe.t_indirect);
    else if (!c->probe.retried && !c->probe.acked &&
             retry_worth(c))
      MIN_(probe_retry_at(c));
    MIN_(c->probe.t_end);
  }
  for (uint32_t i = 0; i < c->fwd.n; i++)
    MIN_(c->fwd.v[i].nacked ? c->fwd.v[i].expire : c->fwd.v[i].nack_at);
  for (uint32_t i = 0; i < c->susp.n; i++)
    MIN_(c->susp.v[i].deadline);
  if (c->bq_total && c->cfg.gossip_interval_ms)
    MIN_(c->next_gossip);
  if (c->cb.send_stream && !c->leaving)
    MIN_(c->next_pushpull);
  MIN_(c->next_reconnect);
  if (c->joining)
    MIN_(c->next_join);
  if (c->deferred.n)
    MIN_(c->cb.stream_busy && c->cb.stream_busy(c->ud)
             ? c->now + SWIM_STREAM_DEFER_POLL_MS
             : c->now);
#undef MIN_
  return d;
}

int swim_join(swim_core_t *c, const swim_addr_t *seeds, size_t n,
              uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (!seeds || !n)
    return SWIM_EINVAL;
  if (c->leaving)
    return SWIM_ESTATE;
  swim_addr_t *s = malloc(n * sizeof *s);
  if (!s)
    return SWIM_ENOMEM;
  memcpy(s, seeds, n * sizeof *s);
  free(c->seeds);
  c->seeds = s;
  c->nseeds = n;
  c->joining = 1;
  c->join_tries = 0;
  c->join_backoff = c->cfg.join_retry_ms ? c->cfg.join_retry_ms
                                        : SWIM_DEFAULT_JOIN_RETRY_MS;
  c->next_join = now;
  swim_tick(c, now);
  return 0;
}

int swim_send_records(swim_core_t *c, const swim_addr_t *to,
                      const uint64_t *id8, size_t n, uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (!to || (!id8 && n))
    return SWIM_EINVAL;
  c->now = now;
  uint8_t buf[SWIM_MAX_PAYLOAD];
  size_t cap = c->cfg.max_payload < sizeof buf ? c->cfg.max_payload : sizeof buf;
  swim_wbuf_t w;
  msgpack_packer pk;
  size_t i = 0;
  while (i < n) {
    swim_wbuf_init(&w, buf, cap);
    swim_wbuf_packer(&w, &pk);
    swim_hdr_t h = hdr(c, SWIM_MSG_GOSSIP, 0, 0);
    swim_enc_hdr(&pk, &h);
    size_t hdr_len = w.len, put = 0;
    for (; i < n; i++) {
      uint32_t idx = find8(c, id8[i]);
      if (idx == NONE || !c->m[idx].rec)
        continue;
      member_t *mm = &c->m[idx];
      size_t mark = w.len;
      const uint8_t *cred;
      size_t cl = c->cb.cred_get ? c->cb.cred_get(c->ud, mm->rec->id, &cred) : 0;
      if (cl)
        swim_enc_cred(&pk, mm->rec->id, cred, cl);
      msgpack_pack_bin_body(&pk, mm->rec->raw, mm->rec->raw_len);
      if (w.overflow) {
        w.overflow = 0;
        w.len = mark;
        break;
      }
      put++;
    }
    if (!put) {
      if (i < n)
        i++; /* one that fits no datagram: skip it */
      continue;
    }
    c->st.pkts_out++;
    c->st.bytes_out += w.len;
    c->cb.send(c->ud, to, w.p, w.len);
    (void)hdr_len;
  }
  flush(c);
  return 0;
}

int swim_introduce(swim_core_t *c, const swim_addr_t *to, uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (!to)
    return SWIM_EINVAL;
  c->now = now;
  stream_ping(c, to, SWIM_MSG_PING, 0, 0);
  flush(c);
  return 0;
}

int swim_sync(swim_core_t *c, const swim_addr_t *to, uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (!to || !c->cb.send_stream)
    return SWIM_EINVAL;
  if (c->leaving)
    return SWIM_ESTATE;
  if (now > c->now)
    c->now = now;
  send_state(c, to, 0);
  return 0;
}

int swim_leave(swim_core_t *c, uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (c->leaving)
    return 0;
  if (now > c->now)
    c->now = now;
  member_t *me = &c->m[0];
  swim_inc_t inc = inc_next(me->inc);
  uint8_t buf[64];
  swim_wbuf_t w;
  msgpack_packer pk;
  size_t from;
  swim_wbuf_init(&w, buf, sizeof buf);
  swim_wbuf_packer(&w, &pk);
  swim_enc_left_body(&pk, c->self8, inc, &from);
  leftsig_t ls;
  memset(&ls, 0, sizeof ls);
  ls.id8 = c->self8;
  ls.inc = inc;
  if (c->cb.sign) {
    if (c->cb.sign(c->ud, ls.sig, buf + from, w.len - from) != 0)
      return SWIM_EBADSIG;
    ls.has_sig = 1;
  }
  if (VEC_PUSH(c->left, ls))
    return SWIM_ENOMEM;
  c->leaving = 1;
  c->joining = 0;
  c->probe.active = 0;
  set_state(c, me, inc, SWIM_LEFT);
  enqueue(c, 0, SWIM_UPD_LEFT, 0);
  /* Tell a few members now; gossip carries it on from there. */
  uint32_t chosen[16], n = 0;
  uint32_t k = 2 * c->cfg.gossip_nodes < 16 ? 2 * c->cfg.gossip_nodes : 16;
  for (uint32_t i = 0; i < k; i++) {
    uint32_t t = pick_random(c, NONE, chosen, n);
    if (t == NONE)
      break;
    chosen[n++] = t;
  }
  for (uint32_t i = 0; i < n; i++) {
    swim_hdr_t h = hdr(c, SWIM_MSG_GOSSIP, 0, 0);
    send_dgram(c, &c->m[chosen[i]].rec->addr, &h, NONE, 0);
  }
  c->leave_sent = 1;
  flush(c);
  return 0;
}

int swim_leave_done(const swim_core_t *c) {
  if (!c->leave_sent)
    return 0;
  /* done once the leave has been sent as often as any update would be */
  for (int l = 0; l < BQ_LEVELS; l++)
    for (uint32_t k = 0; k < c->bq[l].n; k++)
      if (c->bq[l].v[k].midx == 0 && c->bq[l].v[k].kind == SWIM_UPD_LEFT)
        return l >= 2 || c->alive_n <= 1;
  return 1;
}

int swim_set_meta(swim_core_t *c, const uint8_t *meta, size_t len,
                  uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (len > SWIM_META_MAX || (len && !meta))
    return SWIM_EINVAL;
  if (c->leaving)
    return SWIM_ESTATE;
  if (now > c->now)
    c->now = now;
  uint8_t old[SWIM_META_MAX];
  size_t old_len = c->meta_len;
  memcpy(old, c->meta, old_len);
  if (len)
    memcpy(c->meta, meta, len);
  c->meta_len = len;
  if (c->fence.on) {
    /* fenced: announced with the refutation that ends the fence */
    flush(c);
    return 0;
  }
  int rc = self_bump(c, c->m[0].inc);
  if (rc) {
    memcpy(c->meta, old, old_len);
    c->meta_len = old_len;
  }
  flush(c);
  return rc;
}

int swim_set_addr(swim_core_t *c, const swim_addr_t *addr, uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (!addr || (addr->family != 4 && addr->family != 6))
    return SWIM_EINVAL;
  if (c->leaving)
    return SWIM_ESTATE;
  if (now > c->now)
    c->now = now;
  swim_addr_t old = c->cfg.addr;
  c->cfg.addr = *addr;
  if (c->fence.on) {
    flush(c); /* announced when the fence ends */
    return 0;
  }
  int rc = self_bump(c, c->m[0].inc);
  if (rc)
    c->cfg.addr = old;
  flush(c);
  return rc;
}

size_t swim_member_count(const swim_core_t *c) { return c->nm; }

int swim_member_at(const swim_core_t *c, size_t i, swim_member_t *out) {
  if (i >= c->nm)
    return SWIM_EINVAL;
  if (!c->m[i].rec)
    return SWIM_ENOTFOUND; /* a free slot */
  fill_view(c, (uint32_t)i, out);
  return 0;
}

int swim_member_find(const swim_core_t *c, const uint8_t id[SWIM_ID_LEN],
                     swim_member_t *out) {
  uint32_t i = find8(c, swim_id8(id));
  if (i == NONE || memcmp(c->m[i].rec->id, id, SWIM_ID_LEN) != 0)
    return SWIM_ENOTFOUND;
  if (out)
    fill_view(c, i, out);
  return 0;
}

int swim_member_find8(const swim_core_t *c, uint64_t id8, swim_member_t *out) {
  uint32_t i = find8(c, id8);
  if (i == NONE)
    return SWIM_ENOTFOUND;
  if (out)
    fill_view(c, i, out);
  return 0;
}

int swim_member_record(const swim_core_t *c, uint64_t id8,
                       const uint8_t **raw, size_t *len) {
  uint32_t i = find8(c, id8);
  if (i == NONE || !c->m[i].rec)
    return SWIM_ENOTFOUND;
  *raw = c->m[i].rec->raw;
  *len = c->m[i].rec->raw_len;
  return 0;
}

size_t swim_alive_count(const swim_core_t *c) { return c->alive_n; }
swim_inc_t swim_self_inc(const swim_core_t *c) { return c->m[0].inc; }
uint32_t swim_local_health(const swim_core_t *c) { return c->lhm; }
const swim_stats_t *swim_stats(const swim_core_t *c) { return &c->st; }

size_t swim_stream_deferred(const swim_core_t *c) { return c->deferred.n; }

int swim_stream_ready(swim_core_t *c, uint64_t now) {
  if (c->in_cb)
    return SWIM_EBUSY;
  if (now > c->now)
    c->now = now;
  if (c->deferred.n)
    send_deferred(c);
  return 0;
}

/* See swim.h. No events, nothing queued for gossip, tables sized once. */
int swim_bootstrap_from(swim_core_t *c, const swim_core_t *from, uint64_t now) {
  if (c->in_cb || from->in_cb)
    return SWIM_EBUSY;
  if (!c->cfg.cache || c->cfg.cache != from->cfg.cache)
    return SWIM_EINVAL;
  if (now > c->now)
    c->now = now;
  uint32_t need = c->nm + from->nm;
  if (need > c->capm) {
    member_t *m = realloc(c->m, (size_t)need * sizeof *m);
    if (!m)
      return SWIM_ENOMEM;
    c->m = m;
    c->capm = need;
  }
  if (need > c->order.cap) {
    uint32_t *o = realloc(c->order.v, (size_t)need * sizeof *o);
    if (!o)
      return SWIM_ENOMEM;
    c->order.v = o;
    c->order.cap = need;
  }
  while ((need + 1) * 2 > c->htcap)
    if (ht_grow(c))
      return SWIM_ENOMEM;
  uint32_t first = c->nm;
  for (uint32_t i = 0; i < from->nm; i++) {
    const member_t *fm = &from->m[i];
    if (!fm->rec || fm->id8 == c->self8 || find8(c, fm->id8) != NONE)
      continue;
    fm->rec->refs++;
    uint32_t idx = c->nm++;
    member_t *mm = &c->m[idx];
    memset(mm, 0, sizeof *mm);
    mm->rec = fm->rec;
    mm->id8 = fm->id8;
    mm->inc = fm->inc;
    mm->status = fm->status;
    c->view_hash ^= vh_term(mm);
    mm->since = now;
    if (is_live(mm->status))
      c->alive_n++;
    ht_put(c, idx);
    c->order.v[c->order.n++] = idx;
  }
  /* shuffle the newcomers into the rest of this round */
  uint32_t lo = c->order_pos < c->order.n ? c->order_pos : c->order.n;
  for (uint32_t k = c->order.n; k-- > lo + 1;) {
    if (c->order.v[k] < first)
      continue;
    uint32_t j = lo + (uint32_t)rnd(c, k - lo + 1);
    uint32_t t = c->order.v[k];
    c->order.v[k] = c->order.v[j];
    c->order.v[j] = t;
  }
  /* as if long converged: the next full exchange is a whole (scaled)
   * interval away, spread over the cluster */
  uint64_t pp = pushpull_interval(c);
  c->next_pushpull = now + pp / 2 + rnd(c, pp);
  return 0;
}
