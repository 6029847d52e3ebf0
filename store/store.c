/*
 * store.c: the local view (store.h): members, services, their indexes and
 * the watches.
 *
 * Every index is intrusive: a service sits in the uuid hash table, in one
 * group of each of the (type, host), type, host and region tables, and in
 * the list of its effective status, through links inside its own struct,
 * so linking and unlinking never allocate. Anything that can fail (decoding
 * a list, groups for new keys, room in the event queue) is done before the
 * first change, so a failed call leaves the view as it was.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "svc_codec.h"

/* ---- errors and names ---- */

const char *lm_store_strerror(int err) {
#define LM_STORE_ERR_STR(n, v, s)                                              \
  case v:                                                                      \
    return s;
  switch (err) {
  case 0:
    return "success";
    LM_STORE_ERRNO_MAP(LM_STORE_ERR_STR)
  }
#undef LM_STORE_ERR_STR
  return "unknown error";
}

const char *lm_store_member_status_name(int status) {
  static const char *const names[] = {"alive", "suspect", "dead", "left"};
  return status >= 0 && status <= LM_STORE_LEFT ? names[status] : "unknown";
}

const char *lm_store_svc_status_name(int status) {
  return status >= LM_SVC_UP && status <= LM_SVC_MAINT
             ? lm_svc_status_name((lm_svc_status_t)status)
             : "unknown";
}

/* ---- hashing ---- */

#define HASH_MUL 0x9e3779b97f4a7c15ull

/* Eight bytes a step; the length goes into the last step so that ("ab",
 * "c") and ("a", "bc") differ. Keys come from authenticated members. */
static uint64_t hash_mem(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  size_t len = n;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, c, 8);
    h = (h ^ w) * HASH_MUL;
    h ^= h >> 29;
    c += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, c, n);
  h = (h ^ w ^ ((uint64_t)len << 56)) * HASH_MUL;
  return h ^ (h >> 32);
}

static uint64_t hash_fin(uint64_t h) {
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

static uint64_t hash_str(const char *s) {
  return hash_fin(hash_mem(HASH_MUL, s, strlen(s)));
}

static uint64_t hash_pair(const char *a, const char *b) {
  return hash_fin(hash_mem(hash_mem(HASH_MUL, a, strlen(a)), b, strlen(b)));
}

/* ---- intrusive chained hash tables ---- */

typedef struct hnode {
  struct hnode *next;
  uint64_t hash;
} hnode_t;

typedef struct htab {
  hnode_t **b;
  size_t mask;
  size_t n;
} htab_t;

#define CONTAINER(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

static int ht_init(htab_t *t) {
  t->mask = 15;
  t->n = 0;
  t->b = calloc(t->mask + 1, sizeof *t->b);
  return t->b ? 0 : LM_STORE_ENOMEM;
}

/* Growing is best effort: when it cannot allocate, chains get longer but
 * nothing fails. */
static void ht_grow(htab_t *t) {
  size_t nb = (t->mask + 1) * 2;
  hnode_t **b = calloc(nb, sizeof *b);
  if (!b)
    return;
  for (size_t i = 0; i <= t->mask; i++) {
    hnode_t *n = t->b[i];
    while (n) {
      hnode_t *next = n->next;
      n->next = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
      n = next;
    }
  }
  free(t->b);
  t->b = b;
  t->mask = nb - 1;
}

static void ht_insert(htab_t *t, hnode_t *n) {
  hnode_t **slot = &t->b[n->hash & t->mask];
  n->next = *slot;
  *slot = n;
  if (++t->n > t->mask + 1)
    ht_grow(t);
}

/* nw takes old's place in its chain (same hash, same position). */
static void ht_replace(htab_t *t, hnode_t *old, hnode_t *nw) {
  hnode_t **pp = &t->b[old->hash & t->mask];
  while (*pp && *pp != old)
    pp = &(*pp)->next;
  if (*pp) {
    nw->hash = old->hash;
    nw->next = old->next;
    *pp = nw;
  }
}

static void ht_remove(htab_t *t, hnode_t *n) {
  hnode_t **pp = &t->b[n->hash & t->mask];
  while (*pp && *pp != n)
    pp = &(*pp)->next;
  if (*pp) {
    *pp = n->next;
    t->n--;
  }
}

static hnode_t *ht_first(const htab_t *t, uint64_t h) {
  return t->b[h & t->mask];
}

/* ---- the view ---- */

enum { G_TH = 0, G_TYPE, G_HOST, G_REGION, G_N };
#define L_STATUS G_N /* the list link of the effective status */

typedef struct svc svc_t;

/* A group of services sharing a key; `refs` counts the services that
 * point at it (linked or about to be), `count` those linked in `head`. */
typedef struct group {
  hnode_t hn;
  svc_t *head;
  size_t count, refs;
  size_t nup; /* linked services whose effective status is up: is_up
                 without details reads the group alone */
  const char *k1, *k2; /* copies, after the struct */
} group_t;

typedef struct member member_t;

/* What is_up reads comes first and is copied from the member (its status,
 * the list's signed_ms), so an answer touches the group and the service
 * and nothing else: at 10,000 members each of those is a cache miss. */
struct svc {
  int eff;
  int mstatus;       /* the member's status, kept in step by member_set */
  int64_t signed_ms; /* of the list that carried it */
  int64_t changed_ms;
  lm_service_t pub; /* strings in the member's decoded list */
  member_t *m;
  hnode_t huuid;
  group_t *g[G_N];
  svc_t *prev[G_N + 1], *next[G_N + 1];
  int matched; /* scratch of services_set */
  const char *eff_cause;
};

/* Every node holds one of these per member, so the strings are sized to
 * what they hold, in the same allocation: name[] is the name, a NUL, the
 * address, a NUL. A longer name or address moves the member to a bigger
 * allocation (member_restring). */
struct member {
  hnode_t hid, hname;
  member_t *prev, *next;
  uint8_t id[LM_STORE_ID_LEN];
  int status;
  uint32_t gen, ver;
  int is_self;
  int64_t since_ms;
  lm_svclist_t *list; /* NULL until a list is held */
  uint8_t *raw;
  size_t raw_len;
  svc_t *svcs;
  size_t nsvcs;
  uint8_t addr_at; /* the address is name + addr_at */
  uint8_t room;    /* bytes of name[] */
  char name[];
};

/* name[] holds at most the longest name and address and their NULs. */
typedef char member_room_fits_[LM_STORE_NAME_MAX + LM_STORE_ADDR_MAX + 2 <= 255
                                   ? 1
                                   : -1];

static const char *member_addr(const member_t *m) {
  return m->name + m->addr_at;
}

/* A queued event: copies, so it survives the service it is about. */
typedef struct qev {
  int kind;
  uint8_t uuid[LM_UUID_LEN];
  char type[LM_SVC_TYPE_MAX + 1];
  char name[LM_SVC_NAME_MAX + 1];
  char host[LM_STORE_NAME_MAX + 1];
  char cause[LM_SVC_CAUSE_MAX + 1];
  int old_status, new_status;
  int64_t at_ms;
} qev_t;

typedef struct watcher {
  struct watcher *next;
  uint64_t id, seq;
  lm_store_watch_cb cb;
  void *ud;
  char *type, *host;
  int has_uuid;
  uint8_t uuid[LM_UUID_LEN];
  int members, all;
  int removed;
} watcher_t;

struct lm_store {
  htab_t by_id, by_name, by_uuid, groups[G_N];
  member_t *mhead, *mtail;
  size_t nmembers, mcount[4];
  svc_t *st_head[3];
  size_t st_count[3];
  size_t nsvcs;
  uint64_t index;
  qev_t *q;
  size_t qn, qcap;
  watcher_t *watchers;
  uint64_t next_watch_id;
  int busy;   /* inside a callback: mutations are refused */
  int purge;  /* some watcher is flagged removed */
};

/* ---- lifecycle ---- */

int lm_store_new(lm_store_t **out) {
  if (!out)
    return LM_STORE_EINVAL;
  *out = NULL;
  lm_store_t *s = calloc(1, sizeof *s);
  if (!s)
    return LM_STORE_ENOMEM;
  int rc = ht_init(&s->by_id);
  if (!rc)
    rc = ht_init(&s->by_name);
  if (!rc)
    rc = ht_init(&s->by_uuid);
  for (int i = 0; i < G_N && !rc; i++)
    rc = ht_init(&s->groups[i]);
  if (rc) {
    lm_store_free(s);
    return rc;
  }
  s->index = 1;
  s->next_watch_id = 1;
  *out = s;
  return 0;
}

static void group_unref(lm_store_t *st, int kind, group_t *g) {
  if (--g->refs == 0) {
    ht_remove(&st->groups[kind], &g->hn);
    free(g);
  }
}

static void member_free_services(lm_store_t *st, member_t *m);

void lm_store_free(lm_store_t *s) {
  if (!s)
    return;
  member_t *m = s->mhead;
  while (m) {
    member_t *next = m->next;
    member_free_services(s, m);
    free(m);
    m = next;
  }
  watcher_t *w = s->watchers;
  while (w) {
    watcher_t *next = w->next;
    free(w->type);
    free(w->host);
    free(w);
    w = next;
  }
  free(s->by_id.b);
  free(s->by_name.b);
  free(s->by_uuid.b);
  for (int i = 0; i < G_N; i++)
    free(s->groups[i].b);
  free(s->q);
  free(s);
}

/* ---- lookups ---- */

static member_t *member_by_id(const lm_store_t *st, const uint8_t *id) {
  uint64_t h = hash_fin(hash_mem(HASH_MUL, id, LM_STORE_ID_LEN));
  for (hnode_t *n = ht_first(&st->by_id, h); n; n = n->next) {
    member_t *m = CONTAINER(n, member_t, hid);
    if (n->hash == h && memcmp(m->id, id, LM_STORE_ID_LEN) == 0)
      return m;
  }
  return NULL;
}

static uint64_t hash_id(const uint8_t *id) {
  return hash_fin(hash_mem(HASH_MUL, id, LM_STORE_ID_LEN));
}

static uint64_t hash_uuid(const uint8_t *u) {
  return hash_fin(hash_mem(HASH_MUL, u, LM_UUID_LEN));
}

static svc_t *svc_by_uuid(const lm_store_t *st, const uint8_t *uuid,
                          const member_t *only) {
  uint64_t h = hash_uuid(uuid);
  for (hnode_t *n = ht_first(&st->by_uuid, h); n; n = n->next) {
    svc_t *s = CONTAINER(n, svc_t, huuid);
    if (n->hash == h && memcmp(s->pub.uuid, uuid, LM_UUID_LEN) == 0 &&
        (!only || s->m == only))
      return s;
  }
  return NULL;
}

static group_t *group_find(const lm_store_t *st, int kind, const char *k1,
                           const char *k2, uint64_t h) {
  for (hnode_t *n = ht_first(&st->groups[kind], h); n; n = n->next) {
    group_t *g = CONTAINER(n, group_t, hn);
    /* k2 is NULL for every kind but G_TH; testing it as well lets GCC 12
     * at -O2 see that strcmp never gets it (-Werror=nonnull otherwise) */
    if (n->hash == h && strcmp(g->k1, k1) == 0 &&
        (kind != G_TH || (k2 && strcmp(g->k2, k2) == 0)))
      return g;
  }
  return NULL;
}

/* The key of a service in each group table. */
static void svc_key(const svc_t *s, int kind, const char **k1,
                    const char **k2) {
  *k2 = NULL;
  switch (kind) {
  case G_TH:
    *k1 = s->pub.type;
    *k2 = s->pub.host;
    break;
  case G_TYPE:
    *k1 = s->pub.type;
    break;
  case G_HOST:
    *k1 = s->pub.host;
    break;
  default:
    *k1 = s->pub.region;
    break;
  }
}

static uint64_t key_hash(int kind, const char *k1, const char *k2) {
  return kind == G_TH ? hash_pair(k1, k2) : hash_str(k1);
}

/* A reference to the group of (kind, k1, k2), created when missing. */
static group_t *group_ref(lm_store_t *st, int kind, const char *k1,
                          const char *k2) {
  uint64_t h = key_hash(kind, k1, k2);
  group_t *g = group_find(st, kind, k1, k2, h);
  if (!g) {
    size_t l1 = strlen(k1) + 1, l2 = k2 ? strlen(k2) + 1 : 0;
    g = calloc(1, sizeof *g + l1 + l2);
    if (!g)
      return NULL;
    char *p = (char *)(g + 1);
    memcpy(p, k1, l1);
    g->k1 = p;
    if (k2) {
      memcpy(p + l1, k2, l2);
      g->k2 = p + l1;
    }
    g->hn.hash = h;
    ht_insert(&st->groups[kind], &g->hn);
  }
  g->refs++;
  return g;
}

/* Takes the groups of every index for s (its pub must be set). */
static int svc_acquire(lm_store_t *st, svc_t *s) {
  for (int k = 0; k < G_N; k++) {
    const char *k1, *k2;
    svc_key(s, k, &k1, &k2);
    s->g[k] = group_ref(st, k, k1, k2);
    if (!s->g[k]) {
      while (k-- > 0)
        group_unref(st, k, s->g[k]);
      return LM_STORE_ENOMEM;
    }
  }
  return 0;
}

static void svc_release(lm_store_t *st, svc_t *s) {
  for (int k = 0; k < G_N; k++)
    group_unref(st, k, s->g[k]);
}

static void list_add(svc_t **head, svc_t *s, int i) {
  s->prev[i] = NULL;
  s->next[i] = *head;
  if (*head)
    (*head)->prev[i] = s;
  *head = s;
}

static void list_del(svc_t **head, svc_t *s, int i) {
  if (s->prev[i])
    s->prev[i]->next[i] = s->next[i];
  else
    *head = s->next[i];
  if (s->next[i])
    s->next[i]->prev[i] = s->prev[i];
  s->prev[i] = s->next[i] = NULL;
}

static void svc_link(lm_store_t *st, svc_t *s) {
  for (int k = 0; k < G_N; k++) {
    list_add(&s->g[k]->head, s, k);
    s->g[k]->count++;
    s->g[k]->nup += s->eff == LM_SVC_UP;
  }
  list_add(&st->st_head[s->eff], s, L_STATUS);
  st->st_count[s->eff]++;
  s->huuid.hash = hash_uuid(s->pub.uuid);
  ht_insert(&st->by_uuid, &s->huuid);
  st->nsvcs++;
}

static void svc_unlink(lm_store_t *st, svc_t *s) {
  for (int k = 0; k < G_N; k++) {
    list_del(&s->g[k]->head, s, k);
    s->g[k]->count--;
    s->g[k]->nup -= s->eff == LM_SVC_UP;
  }
  list_del(&st->st_head[s->eff], s, L_STATUS);
  st->st_count[s->eff]--;
  ht_remove(&st->by_uuid, &s->huuid);
  st->nsvcs--;
}

/* Moves a linked service to another effective status list. */
static void svc_set_eff(lm_store_t *st, svc_t *s, int eff) {
  list_del(&st->st_head[s->eff], s, L_STATUS);
  st->st_count[s->eff]--;
  for (int k = 0; k < G_N; k++)
    s->g[k]->nup += (eff == LM_SVC_UP) - (s->eff == LM_SVC_UP);
  s->eff = eff;
  list_add(&st->st_head[eff], s, L_STATUS);
  st->st_count[eff]++;
}

static void member_free_services(lm_store_t *st, member_t *m) {
  for (size_t i = 0; i < m->nsvcs; i++) {
    svc_unlink(st, &m->svcs[i]);
    svc_release(st, &m->svcs[i]);
  }
  free(m->svcs);
  lm_svclist_free(m->list);
  free(m->raw);
  m->svcs = NULL;
  m->nsvcs = 0;
  m->list = NULL;
  m->raw = NULL;
  m->raw_len = 0;
}

/* ---- effective status (DESIGN.md, "Services and status") ---- */

static int member_down(int mstatus) {
  return mstatus == LM_STORE_DEAD || mstatus == LM_STORE_LEFT;
}

static int eff_of(int own, int mstatus) {
  return member_down(mstatus) ? LM_SVC_DOWN : own;
}

/* Why a service's effective status is what it is. */
static const char *eff_cause_of(const svc_t *s, int mstatus) {
  if (mstatus == LM_STORE_DEAD)
    return "member dead";
  if (mstatus == LM_STORE_LEFT)
    return "member left";
  return s->pub.cause && s->pub.cause[0] ? s->pub.cause : "unknown";
}

/* ---- the event queue ---- */

static int q_reserve(lm_store_t *st, size_t extra) {
  if (extra <= st->qcap - st->qn)
    return 0;
  size_t cap = st->qcap ? st->qcap : 16;
  while (cap - st->qn < extra)
    cap *= 2;
  qev_t *q = realloc(st->q, cap * sizeof *q);
  if (!q)
    return LM_STORE_ENOMEM;
  st->q = q;
  st->qcap = cap;
  return 0;
}

static void copy_str(char *dst, size_t cap, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= cap)
    n = cap - 1;
  if (n)
    memcpy(dst, src, n);
  dst[n] = 0;
}

/* Room was reserved by the caller. */
static void q_push_svc(lm_store_t *st, const svc_t *s, int old, int nw,
                       const char *cause, int64_t at) {
  qev_t *e = &st->q[st->qn++];
  e->kind = LM_STORE_EV_SERVICE;
  memcpy(e->uuid, s->pub.uuid, LM_UUID_LEN);
  copy_str(e->type, sizeof e->type, s->pub.type);
  copy_str(e->name, sizeof e->name, s->pub.name);
  copy_str(e->host, sizeof e->host, s->m->name);
  copy_str(e->cause, sizeof e->cause, cause);
  e->old_status = old;
  e->new_status = nw;
  e->at_ms = at;
}

static void q_push_member(lm_store_t *st, const member_t *m, int old, int nw,
                          const char *cause, int64_t at) {
  qev_t *e = &st->q[st->qn++];
  e->kind = LM_STORE_EV_MEMBER;
  memset(e->uuid, 0, LM_UUID_LEN);
  e->type[0] = 0;
  copy_str(e->name, sizeof e->name, m->name);
  copy_str(e->host, sizeof e->host, m->name);
  copy_str(e->cause, sizeof e->cause, cause);
  e->old_status = old;
  e->new_status = nw;
  e->at_ms = at;
}

/* ---- watches: matching and delivery ---- */

static int watch_wants_member(const watcher_t *w, const char *name) {
  return (w->members || w->all) && (!w->host || strcmp(w->host, name) == 0);
}

static int watch_wants_svc(const watcher_t *w, const uint8_t *uuid,
                           const char *type, const char *host) {
  if (w->members)
    return 0;
  if (w->has_uuid && memcmp(w->uuid, uuid, LM_UUID_LEN) != 0)
    return 0;
  if (w->type && strcmp(w->type, type) != 0)
    return 0;
  return !w->host || strcmp(w->host, host) == 0;
}

static void event_names(lm_store_event_t *ev) {
  if (ev->kind == LM_STORE_EV_MEMBER) {
    ev->old_name = lm_store_member_status_name(ev->old_status);
    ev->new_name = lm_store_member_status_name(ev->new_status);
  } else {
    ev->old_name = lm_store_svc_status_name(ev->old_status);
    ev->new_name = lm_store_svc_status_name(ev->new_status);
  }
}

static void watchers_purge(lm_store_t *st) {
  if (st->busy || !st->purge)
    return;
  watcher_t **pp = &st->watchers;
  while (*pp) {
    watcher_t *w = *pp;
    if (w->removed) {
      *pp = w->next;
      free(w->type);
      free(w->host);
      free(w);
    } else {
      pp = &w->next;
    }
  }
  st->purge = 0;
}

/* Callbacks run with the store busy: mutations are refused meanwhile. */
static void busy_enter(const lm_store_t *st) { ((lm_store_t *)st)->busy++; }

static void busy_leave(const lm_store_t *st) {
  lm_store_t *s = (lm_store_t *)st;
  s->busy--;
  watchers_purge(s);
}

static void call_watcher(watcher_t *w, lm_store_event_t *ev) {
  ev->seq = ++w->seq;
  w->cb(w->ud, ev);
}

/* Delivers the queued events, each to every watcher that wants it, in
 * order. Watchers cannot be added meanwhile (busy), only flagged removed. */
static void deliver(lm_store_t *st) {
  if (!st->qn)
    return;
  busy_enter(st);
  for (size_t i = 0; i < st->qn; i++) {
    const qev_t *e = &st->q[i];
    lm_store_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = e->kind;
    memcpy(ev.uuid, e->uuid, LM_UUID_LEN);
    ev.type = e->type;
    ev.name = e->name;
    ev.host = e->host;
    ev.old_status = e->old_status;
    ev.new_status = e->new_status;
    ev.cause = e->cause;
    ev.at_ms = e->at_ms;
    event_names(&ev);
    for (watcher_t *w = st->watchers; w; w = w->next) {
      if (w->removed)
        continue;
      int want = e->kind == LM_STORE_EV_MEMBER
                     ? watch_wants_member(w, e->name)
                     : watch_wants_svc(w, e->uuid, e->type, e->host);
      if (want)
        call_watcher(w, &ev);
    }
  }
  st->qn = 0;
  busy_leave(st);
}

/* ---- members ---- */

static int member_input_ok(const lm_store_member_t *in) {
  if (!in || !in->name)
    return 0;
  size_t n = strlen(in->name);
  if (n < 1 || n > LM_STORE_NAME_MAX)
    return 0;
  if (in->addr && strlen(in->addr) > LM_STORE_ADDR_MAX)
    return 0;
  return in->status >= LM_STORE_ALIVE && in->status <= LM_STORE_LEFT;
}

static void member_view(const member_t *m, lm_store_member_t *o) {
  memset(o, 0, sizeof *o);
  memcpy(o->id, m->id, LM_STORE_ID_LEN);
  o->name = m->name;
  o->addr = member_addr(m);
  o->status = m->status;
  o->gen = m->gen;
  o->ver = m->ver;
  o->since_ms = m->since_ms;
  o->is_self = m->is_self;
  o->has_services = m->list != NULL;
  o->svc_seq = m->list ? m->list->hdr.seq : 0;
  o->svc_signed_ms = m->list ? m->list->hdr.signed_ms : 0;
  o->nservices = m->nsvcs;
}

/* A new name: its services move to the host and (type, host) groups of
 * the new name (the name itself is written by member_put_strings). Groups
 * are taken first, so failing changes nothing. */
static int member_regroup(lm_store_t *st, member_t *m, const char *name) {
  group_t **ng = NULL;
  if (m->nsvcs) {
    ng = calloc(2 * m->nsvcs, sizeof *ng);
    if (!ng)
      return LM_STORE_ENOMEM;
    for (size_t i = 0; i < m->nsvcs; i++) {
      ng[2 * i] = group_ref(st, G_TH, m->svcs[i].pub.type, name);
      ng[2 * i + 1] = ng[2 * i] ? group_ref(st, G_HOST, name, NULL) : NULL;
      if (!ng[2 * i + 1]) {
        if (ng[2 * i])
          group_unref(st, G_TH, ng[2 * i]);
        while (i-- > 0) {
          group_unref(st, G_TH, ng[2 * i]);
          group_unref(st, G_HOST, ng[2 * i + 1]);
        }
        free(ng);
        return LM_STORE_ENOMEM;
      }
    }
  }
  for (size_t i = 0; i < m->nsvcs; i++) {
    svc_t *s = &m->svcs[i];
    static const int kinds[2] = {G_TH, G_HOST};
    for (int j = 0; j < 2; j++) {
      int k = kinds[j];
      list_del(&s->g[k]->head, s, k);
      s->g[k]->count--;
      s->g[k]->nup -= s->eff == LM_SVC_UP;
      group_unref(st, k, s->g[k]);
      s->g[k] = ng[2 * i + j];
      list_add(&s->g[k]->head, s, k);
      s->g[k]->count++;
      s->g[k]->nup += s->eff == LM_SVC_UP;
    }
  }
  free(ng);
  return 0;
}

/* Bytes of name[] for these strings (both within their limits). */
static size_t member_room(const char *name, const char *addr) {
  return strlen(name) + 1 + strlen(addr) + 1;
}

static member_t *member_alloc(size_t room) {
  member_t *m = calloc(1, offsetof(member_t, name) + room);
  if (m)
    m->room = (uint8_t)room;
  return m;
}

/* Writes both strings into name[] (room was checked). Either may point
 * into name[] itself (a caller handing back what member_find gave it), so
 * they are assembled aside first. */
static void member_put_strings(member_t *m, const char *name,
                               const char *addr) {
  char buf[LM_STORE_NAME_MAX + LM_STORE_ADDR_MAX + 2];
  size_t nl = strlen(name), al = strlen(addr);
  memcpy(buf, name, nl + 1);
  memcpy(buf + nl + 1, addr, al + 1);
  memcpy(m->name, buf, nl + al + 2);
  m->addr_at = (uint8_t)(nl + 1);
}

/* m's fields move to nm (allocated with more room), which takes its place
 * in the id table, the name table (unless m was taken out of it), the
 * member list and its services. Strings are not copied, and m is left to
 * the caller to free: the new strings may still be read from it. */
static member_t *member_move(lm_store_t *st, member_t *m, member_t *nm,
                             int in_names) {
  uint8_t room = nm->room;
  memcpy(nm, m, offsetof(member_t, name));
  nm->room = room;
  ht_replace(&st->by_id, &m->hid, &nm->hid);
  if (in_names)
    ht_replace(&st->by_name, &m->hname, &nm->hname);
  if (nm->prev)
    nm->prev->next = nm;
  else
    st->mhead = nm;
  if (nm->next)
    nm->next->prev = nm;
  else
    st->mtail = nm;
  for (size_t i = 0; i < nm->nsvcs; i++)
    nm->svcs[i].m = nm;
  return nm;
}

/* Moves a member to a new status: the member event first, then one event
 * per service whose effective status moved with it. Queue room for
 * 1 + nsvcs was reserved. */
static void member_set_status(lm_store_t *st, member_t *m, int status,
                              int64_t now) {
  int old = m->status;
  st->mcount[old]--;
  st->mcount[status]++;
  m->status = status;
  q_push_member(st, m, old, status, lm_store_member_status_name(status), now);
  static const char *const why[] = {"member alive", "member suspect",
                                    "member dead", "member left"};
  for (size_t i = 0; i < m->nsvcs; i++) {
    svc_t *s = &m->svcs[i];
    s->mstatus = status;
    int eff = eff_of(s->pub.status, status);
    s->eff_cause = eff_cause_of(s, status);
    if (eff == s->eff)
      continue;
    q_push_svc(st, s, s->eff, eff, why[status], now);
    svc_set_eff(st, s, eff);
    s->changed_ms = now;
    if (!member_down(status))
      s->eff_cause = why[status];
  }
}

int lm_store_member_set(lm_store_t *st, const lm_store_member_t *in,
                        int64_t now_ms) {
  if (!st || !member_input_ok(in))
    return LM_STORE_EINVAL;
  if (st->busy)
    return LM_STORE_EBUSY;
  const char *addr = in->addr ? in->addr : "";
  member_t *m = member_by_id(st, in->id);
  if (!m) {
    if (q_reserve(st, 1))
      return LM_STORE_ENOMEM;
    m = member_alloc(member_room(in->name, addr));
    if (!m)
      return LM_STORE_ENOMEM;
    memcpy(m->id, in->id, LM_STORE_ID_LEN);
    member_put_strings(m, in->name, addr);
    m->status = in->status;
    m->gen = in->gen;
    m->ver = in->ver;
    m->since_ms = in->since_ms;
    m->is_self = in->is_self != 0;
    m->hid.hash = hash_id(m->id);
    ht_insert(&st->by_id, &m->hid);
    m->hname.hash = hash_str(m->name);
    ht_insert(&st->by_name, &m->hname);
    m->prev = st->mtail;
    if (st->mtail)
      st->mtail->next = m;
    else
      st->mhead = m;
    st->mtail = m;
    st->nmembers++;
    st->mcount[m->status]++;
    q_push_member(st, m, LM_STORE_UNKNOWN, m->status, "joined", now_ms);
    st->index++;
    deliver(st);
    return 0;
  }
  int renamed = strcmp(m->name, in->name) != 0;
  int restatus = m->status != in->status;
  int readdressed = strcmp(member_addr(m), addr) != 0;
  int other = readdressed || m->gen != in->gen ||
              m->ver != in->ver || m->since_ms != in->since_ms ||
              m->is_self != (in->is_self != 0);
  if (!renamed && !restatus && !other)
    return 0;
  if (restatus && q_reserve(st, 1 + m->nsvcs))
    return LM_STORE_ENOMEM;
  member_t *nm = NULL;
  size_t room = member_room(in->name, addr);
  if ((renamed || readdressed) && room > m->room &&
      !(nm = member_alloc(room)))
    return LM_STORE_ENOMEM;
  if (renamed) {
    int rc = member_regroup(st, m, in->name);
    if (rc) {
      free(nm);
      return rc;
    }
    ht_remove(&st->by_name, &m->hname);
  }
  member_t *old = NULL;
  if (nm) {
    old = m;
    m = member_move(st, m, nm, !renamed);
  }
  if (renamed || readdressed)
    member_put_strings(m, in->name, addr);
  free(old);
  if (renamed) {
    m->hname.hash = hash_str(m->name);
    ht_insert(&st->by_name, &m->hname);
  }
  /* the services' host is the member's name */
  for (size_t i = 0; nm && i < m->nsvcs; i++)
    m->svcs[i].pub.host = m->name;
  m->gen = in->gen;
  m->ver = in->ver;
  m->since_ms = in->since_ms;
  m->is_self = in->is_self != 0;
  if (restatus)
    member_set_status(st, m, in->status, now_ms);
  st->index++;
  deliver(st);
  return 0;
}

int lm_store_member_remove(lm_store_t *st, const uint8_t id[LM_STORE_ID_LEN],
                           int64_t now_ms) {
  if (!st || !id)
    return LM_STORE_EINVAL;
  if (st->busy)
    return LM_STORE_EBUSY;
  member_t *m = member_by_id(st, id);
  if (!m)
    return LM_STORE_ENOTFOUND;
  if (q_reserve(st, 1 + m->nsvcs))
    return LM_STORE_ENOMEM;
  q_push_member(st, m, m->status, LM_STORE_UNKNOWN, "reaped", now_ms);
  for (size_t i = 0; i < m->nsvcs; i++)
    q_push_svc(st, &m->svcs[i], m->svcs[i].eff, LM_STORE_UNKNOWN,
               "member reaped", now_ms);
  member_free_services(st, m);
  ht_remove(&st->by_id, &m->hid);
  ht_remove(&st->by_name, &m->hname);
  if (m->prev)
    m->prev->next = m->next;
  else
    st->mhead = m->next;
  if (m->next)
    m->next->prev = m->prev;
  else
    st->mtail = m->prev;
  st->nmembers--;
  st->mcount[m->status]--;
  free(m);
  st->index++;
  deliver(st);
  return 0;
}

int lm_store_member_find(const lm_store_t *st,
                         const uint8_t id[LM_STORE_ID_LEN],
                         lm_store_member_t *out) {
  if (!st || !id)
    return LM_STORE_EINVAL;
  const member_t *m = member_by_id(st, id);
  if (!m)
    return LM_STORE_ENOTFOUND;
  if (out)
    member_view(m, out);
  return 0;
}

static const member_t *member_by_name(const lm_store_t *st, const char *name) {
  uint64_t h = hash_str(name);
  for (hnode_t *n = ht_first(&st->by_name, h); n; n = n->next) {
    const member_t *m = CONTAINER(n, member_t, hname);
    if (n->hash == h && strcmp(m->name, name) == 0)
      return m;
  }
  return NULL;
}

int lm_store_member_find_name(const lm_store_t *st, const char *name,
                              lm_store_member_t *out) {
  if (!st || !name)
    return LM_STORE_EINVAL;
  const member_t *m = member_by_name(st, name);
  if (!m)
    return LM_STORE_ENOTFOUND;
  if (out)
    member_view(m, out);
  return 0;
}

int lm_store_members_each(const lm_store_t *st, lm_store_member_cb cb,
                          void *ud) {
  if (!st || !cb)
    return LM_STORE_EINVAL;
  int rc = 0;
  busy_enter(st);
  for (const member_t *m = st->mhead; m && !rc; m = m->next) {
    lm_store_member_t v;
    member_view(m, &v);
    rc = cb(ud, &v);
  }
  busy_leave(st);
  return rc;
}

/* ---- services ---- */

int lm_store_services_set(lm_store_t *st, const uint8_t id[LM_STORE_ID_LEN],
                          const uint8_t *raw, size_t raw_len, size_t body_len,
                          int64_t now_ms) {
  if (!st || !id || !raw || body_len == 0 || body_len > raw_len)
    return LM_STORE_EINVAL;
  if (st->busy)
    return LM_STORE_EBUSY;
  member_t *m = member_by_id(st, id);
  if (!m)
    return LM_STORE_ENOTFOUND;
  lm_svclist_t *l;
  int rc = lm_svclist_decode(&l, raw, body_len);
  if (rc)
    return rc;
  if (memcmp(l->hdr.id, id, LM_STORE_ID_LEN) != 0) {
    lm_svclist_free(l);
    return LM_STORE_EIDMISMATCH;
  }
  if (m->list && l->hdr.seq <= m->list->hdr.seq) {
    lm_svclist_free(l);
    return LM_STORE_ESTALE;
  }
  size_t n = l->hdr.n;
  uint8_t *copy = malloc(raw_len);
  svc_t *svcs = calloc(n ? n : 1, sizeof *svcs);
  if (!copy || !svcs || q_reserve(st, n + m->nsvcs)) {
    free(copy);
    free(svcs);
    lm_svclist_free(l);
    return LM_STORE_ENOMEM;
  }
  memcpy(copy, raw, raw_len);
  for (size_t i = 0; i < n; i++) {
    svc_t *s = &svcs[i];
    s->pub = l->svcs[i];
    s->pub.host = m->name;
    s->m = m;
    s->mstatus = m->status;
    s->signed_ms = l->hdr.signed_ms;
    if (svc_acquire(st, s)) {
      while (i-- > 0)
        svc_release(st, &svcs[i]);
      free(copy);
      free(svcs);
      lm_svclist_free(l);
      return LM_STORE_ENOMEM;
    }
  }
  /* From here on nothing fails. Diff by uuid: changed and added services
   * in the new list's order, then the ones that left it. */
  for (size_t i = 0; i < m->nsvcs; i++)
    m->svcs[i].matched = 0;
  for (size_t i = 0; i < n; i++) {
    svc_t *s = &svcs[i];
    svc_t *old = svc_by_uuid(st, s->pub.uuid, m);
    s->eff = eff_of(s->pub.status, m->status);
    s->eff_cause = eff_cause_of(s, m->status);
    if (old) {
      old->matched = 1;
      s->changed_ms = old->changed_ms;
      if (old->eff != s->eff) {
        q_push_svc(st, s, old->eff, s->eff, s->eff_cause, now_ms);
        s->changed_ms = now_ms;
      }
    } else {
      q_push_svc(st, s, LM_STORE_UNKNOWN, s->eff, s->eff_cause, now_ms);
      s->changed_ms = now_ms;
    }
  }
  for (size_t i = 0; i < m->nsvcs; i++)
    if (!m->svcs[i].matched)
      q_push_svc(st, &m->svcs[i], m->svcs[i].eff, LM_STORE_UNKNOWN,
                 "deregistered", now_ms);
  member_free_services(st, m);
  for (size_t i = 0; i < n; i++)
    svc_link(st, &svcs[i]);
  m->svcs = svcs;
  m->nsvcs = n;
  m->list = l;
  m->raw = copy;
  m->raw_len = raw_len;
  st->index++;
  deliver(st);
  return 0;
}

int lm_store_services_raw(const lm_store_t *st,
                          const uint8_t id[LM_STORE_ID_LEN],
                          const uint8_t **raw, size_t *raw_len,
                          uint64_t *seq) {
  if (!st || !id)
    return LM_STORE_EINVAL;
  const member_t *m = member_by_id(st, id);
  if (!m || !m->list)
    return LM_STORE_ENOTFOUND;
  if (raw)
    *raw = m->raw;
  if (raw_len)
    *raw_len = m->raw_len;
  if (seq)
    *seq = m->list->hdr.seq;
  return 0;
}

static void svc_view(const svc_t *s, lm_store_svc_view_t *v) {
  v->svc = &s->pub;
  v->effective = s->eff;
  v->member_status = s->mstatus;
  v->signed_ms = s->signed_ms;
  v->changed_ms = s->changed_ms;
  v->cause = s->eff_cause;
  v->member_id = s->m->id;
}

int lm_store_service_find(const lm_store_t *st,
                          const uint8_t uuid[LM_UUID_LEN],
                          lm_store_svc_view_t *out) {
  if (!st || !uuid)
    return LM_STORE_EINVAL;
  const svc_t *s = svc_by_uuid(st, uuid, NULL);
  if (!s)
    return LM_STORE_ENOTFOUND;
  if (out)
    svc_view(s, out);
  return 0;
}

void lm_store_filter_init(lm_store_filter_t *f) {
  memset(f, 0, sizeof *f);
  f->status = -1;
}

static int filter_match(const lm_store_filter_t *f, const svc_t *s) {
  if (f->has_uuid && memcmp(f->uuid, s->pub.uuid, LM_UUID_LEN) != 0)
    return 0;
  if (f->type && strcmp(f->type, s->pub.type) != 0)
    return 0;
  if (f->host && strcmp(f->host, s->pub.host) != 0)
    return 0;
  if (f->region && strcmp(f->region, s->pub.region) != 0)
    return 0;
  return f->status < 0 || f->status == s->eff;
}

typedef int (*svc_visit_fn)(void *ud, const svc_t *s);

/* Walks the services matching f through the smallest index that applies;
 * a non-zero return of fn stops it. */
static int svc_walk(const lm_store_t *st, const lm_store_filter_t *f,
                    svc_visit_fn fn, void *ud) {
  int rc = 0;
  if (f->has_uuid) {
    uint64_t h = hash_uuid(f->uuid);
    for (hnode_t *n = ht_first(&st->by_uuid, h); n && !rc; n = n->next) {
      const svc_t *s = CONTAINER(n, svc_t, huuid);
      if (n->hash == h && filter_match(f, s))
        rc = fn(ud, s);
    }
    return rc;
  }
  const svc_t *head = NULL;
  int link = -1;
  size_t best = SIZE_MAX;
  if (f->type && f->host) {
    const group_t *g = group_find(st, G_TH, f->type, f->host,
                                  hash_pair(f->type, f->host));
    if (!g)
      return 0;
    head = g->head;
    link = G_TH;
    best = g->count;
  } else {
    static const int kinds[3] = {G_TYPE, G_HOST, G_REGION};
    const char *keys[3] = {f->type, f->host, f->region};
    for (int i = 0; i < 3; i++) {
      if (!keys[i])
        continue;
      const group_t *g =
          group_find(st, kinds[i], keys[i], NULL, hash_str(keys[i]));
      if (!g)
        return 0;
      if (g->count < best) {
        best = g->count;
        head = g->head;
        link = kinds[i];
      }
    }
    if (f->status >= LM_SVC_UP && f->status <= LM_SVC_MAINT &&
        st->st_count[f->status] < best) {
      best = st->st_count[f->status];
      head = st->st_head[f->status];
      link = L_STATUS;
    } else if (f->status > LM_SVC_MAINT) {
      return 0;
    }
  }
  if (link >= 0) {
    for (const svc_t *s = head; s && !rc; s = s->next[link])
      if (filter_match(f, s))
        rc = fn(ud, s);
    return rc;
  }
  for (const member_t *m = st->mhead; m && !rc; m = m->next)
    for (size_t i = 0; i < m->nsvcs && !rc; i++)
      if (filter_match(f, &m->svcs[i]))
        rc = fn(ud, &m->svcs[i]);
  return rc;
}

typedef struct each_ctx {
  lm_store_svc_cb cb;
  void *ud;
} each_ctx_t;

static int each_visit(void *ud, const svc_t *s) {
  each_ctx_t *c = ud;
  lm_store_svc_view_t v;
  svc_view(s, &v);
  return c->cb(c->ud, &v);
}

int lm_store_services_each(const lm_store_t *st, const lm_store_filter_t *f,
                           lm_store_svc_cb cb, void *ud) {
  if (!st || !cb)
    return LM_STORE_EINVAL;
  lm_store_filter_t any;
  if (!f) {
    lm_store_filter_init(&any);
    f = &any;
  }
  each_ctx_t c = {cb, ud};
  busy_enter(st);
  int rc = svc_walk(st, f, each_visit, &c);
  busy_leave(st);
  return rc;
}

/* ---- is_up ---- */

static int is_up_fill(const svc_t *s, int64_t now, lm_store_is_up_t *out) {
  int up = s->eff == LM_SVC_UP;
  if (out) {
    out->found = 1;
    out->up = up;
    out->status = s->eff;
    out->member_status = s->mstatus;
    memcpy(out->uuid, s->pub.uuid, LM_UUID_LEN);
    out->type = s->pub.type;
    out->host = s->pub.host;
    out->age_ms = now - s->signed_ms;
    out->svc = &s->pub;
  }
  return up;
}

static int is_up_none(lm_store_is_up_t *out) {
  if (out) {
    memset(out, 0, sizeof *out);
    out->status = LM_STORE_UNKNOWN;
    out->member_status = LM_STORE_UNKNOWN;
  }
  return 0;
}

int lm_store_is_up(const lm_store_t *st, const char *type, const char *host,
                   int64_t now_ms, lm_store_is_up_t *out) {
  if (!st || !type || !host)
    return is_up_none(out);
  const group_t *g =
      group_find(st, G_TH, type, host, hash_pair(type, host));
  if (!out) /* the common question: answered from the group alone */
    return g && g->nup > 0;
  const svc_t *best = NULL;
  for (const svc_t *s = g ? g->head : NULL; s; s = s->next[G_TH]) {
    if (s->eff == LM_SVC_UP) {
      best = s;
      break;
    }
    if (!best || s->changed_ms > best->changed_ms)
      best = s;
  }
  return best ? is_up_fill(best, now_ms, out) : is_up_none(out);
}

int lm_store_is_up_uuid(const lm_store_t *st, const uint8_t uuid[LM_UUID_LEN],
                        int64_t now_ms, lm_store_is_up_t *out) {
  if (!st || !uuid)
    return is_up_none(out);
  const svc_t *s = svc_by_uuid(st, uuid, NULL);
  return s ? is_up_fill(s, now_ms, out) : is_up_none(out);
}

/* ---- counts and index ---- */

void lm_store_counts(const lm_store_t *st, lm_store_counts_t *out) {
  memset(out, 0, sizeof *out);
  if (!st)
    return;
  out->members = st->nmembers;
  for (int i = 0; i < 4; i++)
    out->members_by_status[i] = st->mcount[i];
  out->services = st->nsvcs;
  for (int i = 0; i < 3; i++)
    out->services_by_status[i] = st->st_count[i];
}

uint64_t lm_store_index(const lm_store_t *st) { return st ? st->index : 0; }

/* ---- watches ---- */

static char *dup_or_null(const char *s, int *fail) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *fail = 1;
  return d;
}

typedef struct initial_ctx {
  watcher_t *w;
  int64_t now;
} initial_ctx_t;

static int initial_visit(void *ud, const svc_t *s) {
  initial_ctx_t *c = ud;
  if (c->w->removed)
    return 1;
  lm_store_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = LM_STORE_EV_SERVICE;
  ev.initial = 1;
  memcpy(ev.uuid, s->pub.uuid, LM_UUID_LEN);
  ev.type = s->pub.type;
  ev.name = s->pub.name;
  ev.host = s->m->name;
  ev.old_status = LM_STORE_UNKNOWN;
  ev.new_status = s->eff;
  ev.cause = s->eff_cause;
  ev.at_ms = c->now;
  event_names(&ev);
  call_watcher(c->w, &ev);
  return 0;
}

int lm_store_watch_add(lm_store_t *st, const lm_store_watch_filter_t *f,
                       lm_store_watch_cb cb, void *ud, int64_t now_ms,
                       uint64_t *id) {
  if (!st || !cb)
    return LM_STORE_EINVAL;
  if (st->busy)
    return LM_STORE_EBUSY;
  watcher_t *w = calloc(1, sizeof *w);
  if (!w)
    return LM_STORE_ENOMEM;
  int fail = 0;
  if (f) {
    w->type = dup_or_null(f->type, &fail);
    w->host = dup_or_null(f->host, &fail);
    w->has_uuid = f->has_uuid != 0;
    memcpy(w->uuid, f->uuid, LM_UUID_LEN);
    w->members = f->members != 0;
    w->all = f->all != 0 && !w->members;
  }
  if (fail) {
    free(w->type);
    free(w->host);
    free(w);
    return LM_STORE_ENOMEM;
  }
  w->cb = cb;
  w->ud = ud;
  w->id = st->next_watch_id++;
  watcher_t **pp = &st->watchers;
  while (*pp)
    pp = &(*pp)->next;
  *pp = w;
  if (id)
    *id = w->id;

  busy_enter(st);
  for (const member_t *m = st->mhead; m && !w->removed; m = m->next) {
    if (!watch_wants_member(w, m->name))
      continue;
    lm_store_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = LM_STORE_EV_MEMBER;
    ev.initial = 1;
    ev.type = "";
    ev.name = m->name;
    ev.host = m->name;
    ev.old_status = LM_STORE_UNKNOWN;
    ev.new_status = m->status;
    ev.cause = lm_store_member_status_name(m->status);
    ev.at_ms = now_ms;
    event_names(&ev);
    call_watcher(w, &ev);
  }
  if (!w->members && !w->removed) {
    lm_store_filter_t sf;
    lm_store_filter_init(&sf);
    sf.type = w->type;
    sf.host = w->host;
    sf.has_uuid = w->has_uuid;
    memcpy(sf.uuid, w->uuid, LM_UUID_LEN);
    initial_ctx_t c = {w, now_ms};
    svc_walk(st, &sf, initial_visit, &c);
  }
  busy_leave(st);
  return 0;
}

int lm_store_watch_remove(lm_store_t *st, uint64_t id) {
  if (!st)
    return LM_STORE_EINVAL;
  for (watcher_t **pp = &st->watchers; *pp; pp = &(*pp)->next) {
    watcher_t *w = *pp;
    if (w->id != id || w->removed)
      continue;
    if (st->busy) {
      w->removed = 1;
      st->purge = 1;
    } else {
      *pp = w->next;
      free(w->type);
      free(w->host);
      free(w);
    }
    return 0;
  }
  return LM_STORE_ENOTFOUND;
}
