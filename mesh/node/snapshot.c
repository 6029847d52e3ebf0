/*
 * snapshot.c: the node's last-known view: saving it, loading it, and when
 * answers from the view are stale.
 *
 * The file is store/snapshot.h's format. Saving writes every member of the
 * view as the view holds it: its observed fields under this node's seal
 * (a keyed BLAKE2b whose key is derived from this node's secret key, so an
 * edit on disk or a file written by anyone else does not pass), its
 * certificate, and its service list exactly as received (its author's
 * signature included). The file is written to a temporary name, fsync'ed,
 * renamed, and the directory fsync'ed.
 *
 * Loading refuses a foreign file (another cluster, another node) whole,
 * then checks each member on its own: the seal, the certificate against
 * the node's trusted cluster keys (issued for this id and this name, not
 * expired) and the service list's signature by that member. What fails is
 * dropped and counted; what passes goes into the view (the store), never
 * into the swim core: a remembered member is not a membership claim, and
 * the protocol never probes or gossips it. Members the core already knows
 * and this node itself are skipped.
 *
 * Stale (lm_node_view_stale):
 *   - from a snapshot: from a load that kept a member until the view has
 *     reconverged: the core has merged a full state (a push-pull frame:
 *     the join's answer, or any later exchange) while at least one other
 *     member is alive. Then the remembered members the core does not know
 *     leave the view, and every member is re-read from the core.
 *   - cut off: once this node has had peers, when no other member is alive
 *     or suspect any more and at least one was declared dead since the last
 *     message this node received from anyone (a graceful leave of the last
 *     peer is not a cut-off). Then the view is held as it was at that last
 *     message: members declared dead since are put back to the status they
 *     had then (alive, or suspect), and the view ignores the core's news
 *     about other members until one of them is alive again. From then on
 *     the view follows the core again, still stale until the next full
 *     state exchange.
 *   The age of a stale view: since the snapshot was written (the view it
 *   holds dates from then), or since the last message before the cut-off.
 */
#define _GNU_SOURCE
#include "node_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <livemesh/services.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "snapshot.h"
#include "store.h"

static const char SEAL_KEY_DOMAIN[] = "livemesh-snapshot-seal-v1";

/* A member remembered from a snapshot: its certificate, for the next save
 * (the core does not hold it). */
typedef struct rem {
  uint8_t id[SWIM_ID_LEN];
  uint8_t cert[LM_CERT_MAX];
  size_t cert_len;
} rem_t;

/* A member that stopped being alive: what it was, and when. */
typedef struct down {
  uint8_t id[SWIM_ID_LEN];
  char name[LM_STORE_NAME_MAX + 1];
  char addr[LM_STORE_ADDR_MAX + 1];
  uint32_t gen, ver;
  int64_t since_ms;    /* of its alive status */
  uint64_t left_alive; /* loop ms */
  uint64_t died;       /* loop ms; 0 while only suspect */
} down_t;

#define DOWNS_MIN 8

struct lm__snap {
  int from_file, isolated, resyncing, had_peers;
  int64_t view_ms;  /* unix ms the stale view dates from */
  uint64_t pp_mark; /* full state exchanges merged when staleness began */
  uint64_t pp_seen; /* ... as of the previous core call */
  rem_t *rem;
  size_t nrem;
  down_t *downs;
  size_t ndowns, capdowns;
};


static struct lm__snap *snap(lm_node_t *n) {
  if (!n->snap)
    n->snap = calloc(1, sizeof *n->snap);
  return n->snap;
}

void lm__snap_free(lm_node_t *n) {
  if (!n->snap)
    return;
  free(n->snap->rem);
  free(n->snap->downs);
  free(n->snap);
  n->snap = NULL;
}

/* ---- the seal ---- */

static void seal_key(const lm_node_t *n, uint8_t key[32]) {
  crypto_generichash(key, 32, (const uint8_t *)SEAL_KEY_DOMAIN,
                     sizeof SEAL_KEY_DOMAIN, n->kp.sk, 32);
}

typedef struct seal_ctx {
  uint8_t key[32];
} seal_ctx_t;

static void seal_cb(void *ud, uint8_t seal[LM_SNAP_SEAL_LEN],
                    const uint8_t *head, size_t hl, const uint8_t *obs,
                    size_t ol) {
  seal_ctx_t *c = ud;
  crypto_generichash_state st;
  crypto_generichash_init(&st, c->key, sizeof c->key, LM_SNAP_SEAL_LEN);
  crypto_generichash_update(&st, head, hl);
  crypto_generichash_update(&st, obs, ol);
  crypto_generichash_final(&st, seal, LM_SNAP_SEAL_LEN);
}

/* ---- cut off, or not: fed by services.c and lm__dispatch ---- */

static down_t *down_find(struct lm__snap *S, const uint8_t *id) {
  for (size_t i = 0; i < S->ndowns; i++)
    if (!memcmp(S->downs[i].id, id, SWIM_ID_LEN))
      return &S->downs[i];
  return NULL;
}

/* Halves the array when it is at most a quarter full: a mass join, with
 * its passing suspicions, grows it far beyond what a quiet mesh keeps. */
static void downs_trim(struct lm__snap *S) {
  if (S->capdowns <= DOWNS_MIN || S->ndowns * 4 > S->capdowns)
    return;
  if (!S->ndowns) {
    free(S->downs);
    S->downs = NULL;
    S->capdowns = 0;
    return;
  }
  down_t *v = realloc(S->downs, S->capdowns / 2 * sizeof *v);
  if (v) {
    S->downs = v;
    S->capdowns /= 2;
  }
}

static void down_drop(struct lm__snap *S, const uint8_t *id) {
  down_t *d = down_find(S, id);
  if (d) {
    *d = S->downs[--S->ndowns];
    downs_trim(S);
  }
}

int lm__snap_frozen(lm_node_t *n) { return n->snap && n->snap->isolated; }

/* With the lock held, before the view takes the core's news about a
 * member: remember what an alive member was when it stops being alive. */
void lm__snap_member_change(lm_node_t *n, const uint8_t *id, int status,
                            int reaped) {
  struct lm__snap *S = snap(n);
  lm_store_member_t held;
  if (!S || lm_store_member_find(lm__svc_store(n), id, &held) ||
      held.is_self)
    return;
  if (reaped || status == LM_STORE_ALIVE || status == LM_STORE_LEFT) {
    down_drop(S, id);
    return;
  }
  down_t *d = down_find(S, id);
  if (!d) {
    if (held.status != LM_STORE_ALIVE)
      return; /* no alive status to go back to */
    if (S->ndowns == S->capdowns) {
      size_t cap = S->capdowns ? S->capdowns * 2 : DOWNS_MIN;
      down_t *v = realloc(S->downs, cap * sizeof *v);
      if (!v)
        return;
      S->downs = v;
      S->capdowns = cap;
    }
    d = &S->downs[S->ndowns++];
    memset(d, 0, sizeof *d);
    memcpy(d->id, id, SWIM_ID_LEN);
    snprintf(d->name, sizeof d->name, "%s", held.name);
    snprintf(d->addr, sizeof d->addr, "%s", held.addr ? held.addr : "");
    d->gen = held.gen;
    d->ver = held.ver;
    d->since_ms = held.since_ms;
    d->left_alive = lm__now_ms(n);
  }
  if (status == LM_STORE_DEAD && !d->died)
    d->died = lm__now_ms(n);
}

/* Every member as the core has it now; with `forget`, members of the view
 * that the core does not know leave it. Lock held. */
typedef struct ids {
  uint8_t (*v)[SWIM_ID_LEN];
  size_t n, cap;
} ids_t;

static int collect_unknown(void *ud, const lm_store_member_t *m) {
  lm_node_t *n = ((void **)ud)[0];
  ids_t *ids = ((void **)ud)[1];
  swim_member_t sm;
  if (m->is_self || swim_member_find(n->core, m->id, &sm) == 0)
    return 0;
  if (ids->n == ids->cap) {
    size_t cap = ids->cap ? ids->cap * 2 : 16;
    void *v = realloc(ids->v, cap * SWIM_ID_LEN);
    if (!v)
      return 0;
    ids->v = v;
    ids->cap = cap;
  }
  memcpy(ids->v[ids->n++], m->id, SWIM_ID_LEN);
  return 0;
}

static void resync(lm_node_t *n, int forget) {
  struct lm_store *st = lm__svc_store(n);
  if (forget) {
    ids_t ids = {0};
    void *ud[2] = {n, &ids};
    lm_store_members_each(st, collect_unknown, ud);
    int64_t now = lm__node_unix_ms();
    for (size_t i = 0; i < ids.n; i++)
      lm_store_member_remove(st, ids.v[i], now);
    free(ids.v);
  }
  size_t cnt = swim_member_count(n->core);
  for (size_t i = 1; i < cnt; i++) {
    swim_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = SWIM_EV_UPDATE;
    if (swim_member_at(n->core, i, &ev.member) == 0)
      lm__svc_member_event(n, &ev);
  }
}

/* The view put back as it was at the last message from anyone. */
static void hold_view(lm_node_t *n, uint64_t since) {
  struct lm__snap *S = n->snap;
  struct lm_store *st = lm__svc_store(n);
  int64_t now = lm__node_unix_ms();
  for (size_t i = 0; i < S->ndowns;) {
    down_t *d = &S->downs[i];
    if (d->died < since) {
      i++;
      continue;
    }
    lm_store_member_t m;
    memset(&m, 0, sizeof m);
    memcpy(m.id, d->id, SWIM_ID_LEN);
    m.name = d->name;
    m.addr = d->addr;
    m.gen = d->gen;
    m.ver = d->ver;
    m.status = d->left_alive >= since ? LM_STORE_ALIVE : LM_STORE_SUSPECT;
    m.since_ms = d->left_alive >= since
                     ? d->since_ms
                     : now - (int64_t)(lm__now_ms(n) - d->left_alive);
    lm_store_member_set(st, &m, now);
    *d = S->downs[--S->ndowns];
  }
  downs_trim(S);
}

/* After every core call, on the loop thread, without the lock. */
void lm__snap_update(lm_node_t *n) {
  if (!n->core || n->state != ST_RUNNING || !n->svc)
    return;
  uv_mutex_lock(&n->mu);
  struct lm__snap *S = snap(n);
  if (!S) {
    uv_mutex_unlock(&n->mu);
    return;
  }
  size_t alive = swim_alive_count(n->core);
  size_t others = alive ? alive - 1 : 0;
  uint64_t pp = swim_stats(n->core)->stream_in;
  const char *said = NULL;
  if (others)
    S->had_peers = 1;
  if (S->isolated && others) {
    S->isolated = 0;
    S->resyncing = 1;
    /* the exchange that brought a peer back counts */
    S->pp_mark = S->pp_seen;
    resync(n, 0);
    said = "a peer is reachable again: the view follows the mesh, stale "
           "until a full state exchange";
  } else if (!S->isolated && S->had_peers && !others) {
    uint64_t since = n->last_peer_rx;
    int cut = 0;
    for (size_t i = 0; i < S->ndowns; i++)
      cut |= S->downs[i].died && S->downs[i].died >= since;
    if (cut) {
      if (!S->from_file && !S->resyncing)
        S->view_ms = lm__node_unix_ms() - (int64_t)(lm__now_ms(n) - since);
      S->isolated = 1;
      hold_view(n, since);
      said = "cut off from every peer: answers come from the last view, "
             "marked stale";
    }
  }
  if ((S->from_file || S->resyncing) && !S->isolated && others &&
      pp > S->pp_mark) {
    int forget = S->from_file;
    S->from_file = S->resyncing = 0;
    resync(n, forget);
    free(S->rem);
    S->rem = NULL;
    S->nrem = 0;
    said = "the view has reconverged: answers are no longer stale";
  }
  S->pp_seen = pp;
  uv_mutex_unlock(&n->mu);
  if (said)
    lm__node_log(n, LM_LOG_INFO, "%s", said);
}

/* ---- saving ---- */

typedef struct save_ctx {
  lm_node_t *n;
  lm_snap_member_t *v;
  size_t k, cap;
  int err;
} save_ctx_t;

static const rem_t *rem_find(const struct lm__snap *S, const uint8_t *id) {
  for (size_t i = 0; S && i < S->nrem; i++)
    if (!memcmp(S->rem[i].id, id, SWIM_ID_LEN))
      return &S->rem[i];
  return NULL;
}

static int collect_member(void *ud, const lm_store_member_t *m) {
  save_ctx_t *c = ud;
  lm_node_t *n = c->n;
  lm_snap_member_t s;
  memset(&s, 0, sizeof s);
  memcpy(s.id, m->id, SWIM_ID_LEN);
  snprintf(s.name, sizeof s.name, "%s", m->name);
  snprintf(s.addr, sizeof s.addr, "%s", m->addr ? m->addr : "");
  s.status = m->status;
  s.gen = m->gen;
  s.ver = m->ver;
  s.since_ms = m->since_ms > 0 ? m->since_ms : 0;
  swim_member_t sm;
  const rem_t *r;
  if (m->is_self) {
    s.cert = n->cert_raw;
    s.cert_len = n->cert_len;
  } else if (swim_member_find(n->core, m->id, &sm) == 0 &&
             (s.cert = lm__certs_get(n, m->id, &s.cert_len)) != NULL) {
    /* held in certs.c */
  } else if ((r = rem_find(n->snap, m->id))) {
    s.cert = r->cert;
    s.cert_len = r->cert_len;
  } else {
    return 0; /* nothing to prove who it is: not worth remembering */
  }
  uint64_t seq;
  if (lm_store_services_raw(lm__svc_store(n), m->id, &s.svc_raw,
                            &s.svc_raw_len, &seq) == 0 &&
      s.svc_raw_len >= LM_SIG_LEN)
    s.svc_body_len = s.svc_raw_len - LM_SIG_LEN;
  else
    s.svc_raw = NULL;
  if (c->k == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    lm_snap_member_t *v = realloc(c->v, cap * sizeof *v);
    if (!v) {
      c->err = LM_ENOMEM;
      return 1;
    }
    c->v = v;
    c->cap = cap;
  }
  c->v[c->k++] = s;
  return 0;
}

/* Encodes the view; the lock is held throughout, so the pointers into the
 * store and the core stay valid. */
static int encode_view(lm_node_t *n, uint8_t **out, size_t *len) {
  save_ctx_t c = {.n = n};
  seal_ctx_t sc;
  seal_key(n, sc.key);
  uv_mutex_lock(&n->mu);
  lm_store_members_each(lm__svc_store(n), collect_member, &c);
  struct lm__snap *S = n->snap;
  int stale = S && (S->from_file || S->isolated || S->resyncing);
  int64_t written = stale ? S->view_ms : lm__node_unix_ms();
  lm_snap_writer_t *w = NULL;
  int rc = c.err;
  if (!rc)
    rc = lm_snap_writer_new(&w, n->opt.cluster, n->kp.pk, written, c.k);
  for (size_t i = 0; !rc && i < c.k; i++)
    rc = lm_snap_writer_member(w, &c.v[i], seal_cb, &sc);
  if (!rc) {
    rc = lm_snap_writer_finish(w, out, len);
    w = NULL;
  }
  uv_mutex_unlock(&n->mu);
  lm_snap_writer_free(w);
  free(c.v);
  sodium_memzero(sc.key, sizeof sc.key);
  return rc;
}

static int apply_save(lm_node_t *n, void *arg) {
  uint8_t *buf;
  size_t len;
  int rc = encode_view(n, &buf, &len);
  if (rc)
    return rc;
  rc = lm_file_write_atomic(arg, buf, len, 0600);
  free(buf);
  return rc;
}

static int usable(lm_node_t *n) {
  if (!n)
    return LM_EINVAL;
  if (lm__forked(n))
    return LM_EFORKED;
  if (!n->svc || !n->core || n->state != ST_RUNNING)
    return LM_ESTATE;
  return 0;
}

int lm_node_snapshot_save(lm_node_t *n, const char *path) {
  /* leaving too: the view is written one last time at exit */
  int rc = n && n->state == ST_LEAVING && !lm__forked(n) ? 0 : usable(n);
  if (rc)
    return rc;
  if (!path || !*path)
    return LM_EINVAL;
  return lm__node_call(n, apply_save, (void *)path);
}

/* ---- loading ---- */

typedef struct load_args {
  const char *path;
  lm_snapshot_info_t *info;
  char *err;
  size_t errcap;
} load_args_t;

static int read_file(const char *path, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? LM_ENOTFOUND : -errno;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
      (uint64_t)st.st_size > LM_SNAP_FILE_MAX) {
    int rc = errno ? -errno : LM_ELIMIT;
    close(fd);
    return S_ISREG(st.st_mode) ? LM_ELIMIT : rc;
  }
  size_t cap = (size_t)st.st_size;
  uint8_t *buf = malloc(cap ? cap : 1);
  if (!buf) {
    close(fd);
    return LM_ENOMEM;
  }
  size_t off = 0;
  while (off < cap) {
    ssize_t k = read(fd, buf + off, cap - off);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break; /* shrank meanwhile: what was read is judged as it is */
    off += (size_t)k;
  }
  close(fd);
  *out = buf;
  *len = off;
  return 0;
}

/* One member: 0 kept (and *lists gets 1 when its list was kept), or -1
 * dropped. Lock held. */
static int load_member(lm_node_t *n, const lm_snap_hdr_t *h,
                       const lm_snap_member_t *m, seal_ctx_t *sc,
                       int64_t now, int *list_kept, int *list_dropped) {
  uint8_t seal[LM_SNAP_SEAL_LEN];
  seal_cb(sc, seal, h->head, h->head_len, m->obs, m->obs_len);
  if (sodium_memcmp(seal, m->seal, LM_SNAP_SEAL_LEN) != 0)
    return -1;
  lm_cert_t cert;
  if (m->cert_len > LM_CERT_MAX ||
      lm_cert_decode(&cert, m->cert, m->cert_len) != (int)m->cert_len ||
      memcmp(cert.node_pk, m->id, SWIM_ID_LEN) != 0 ||
      strcmp(cert.name, m->name) != 0 ||
      lm_cert_verify(&n->trust, &cert, (uint64_t)time(NULL)) != 0)
    return -1;
  struct lm__snap *S = snap(n);
  rem_t *rv = S ? realloc(S->rem, (S->nrem + 1) * sizeof *rv) : NULL;
  if (!rv)
    return -1;
  S->rem = rv;
  lm_store_member_t sm;
  memset(&sm, 0, sizeof sm);
  memcpy(sm.id, m->id, SWIM_ID_LEN);
  sm.name = m->name;
  sm.addr = m->addr;
  sm.status = m->status;
  sm.gen = m->gen;
  sm.ver = m->ver;
  sm.since_ms = m->since_ms;
  struct lm_store *st = lm__svc_store(n);
  if (lm_store_member_set(st, &sm, now))
    return -1;
  rem_t *r = &S->rem[S->nrem++];
  memcpy(r->id, m->id, SWIM_ID_LEN);
  memcpy(r->cert, m->cert, m->cert_len);
  r->cert_len = m->cert_len;
  lm__certs_put(n, m->id, m->cert, m->cert_len); /* verified above */
  if (m->svc_raw) {
    /* its author's signature, as when it first arrived */
    if (m->svc_raw_len - m->svc_body_len == LM_SIG_LEN &&
        lm_svc_verify(m->svc_raw + m->svc_body_len, m->svc_raw,
                      m->svc_body_len, m->id) == 0 &&
        lm_store_services_set(st, m->id, m->svc_raw, m->svc_raw_len,
                              m->svc_body_len, now) == 0)
      *list_kept = 1;
    else
      *list_dropped = 1;
  }
  return 0;
}

static int apply_load(lm_node_t *n, void *arg) {
  load_args_t *a = arg;
  lm_snapshot_info_t info;
  memset(&info, 0, sizeof info);
  uint8_t *buf;
  size_t len;
  int rc = read_file(a->path, &buf, &len);
  if (rc) {
    if (a->err && a->errcap)
      snprintf(a->err, a->errcap, "%s: %s", a->path,
               rc == LM_ENOTFOUND ? "no such file" : lm_strerror(rc));
    return rc;
  }
  lm_snap_reader_t r;
  rc = lm_snap_open(&r, buf, len, n->opt.cluster, n->kp.pk);
  if (rc) {
    if (a->err && a->errcap) {
      if (rc == LM_STORE_EFOREIGN)
        snprintf(a->err, a->errcap, "%s: %s (cluster \"%s\", not \"%s\", or "
                 "written by another node)", a->path, lm_snap_strerror(rc),
                 r.hdr.cluster, n->opt.cluster);
      else
        snprintf(a->err, a->errcap, "%s: %s", a->path, lm_snap_strerror(rc));
    }
    free(buf);
    return rc;
  }
  info.written_ms = r.hdr.written_ms;
  seal_ctx_t sc;
  seal_key(n, sc.key);
  int64_t now = lm__node_unix_ms();
  uv_mutex_lock(&n->mu);
  lm_snap_member_t m;
  while (lm_snap_next(&r, &m) == 1) {
    swim_member_t sm;
    if (!memcmp(m.id, n->kp.pk, SWIM_ID_LEN) ||
        swim_member_find(n->core, m.id, &sm) == 0) {
      info.skipped++;
      continue;
    }
    lm_store_member_t held;
    if (lm_store_member_find(lm__svc_store(n), m.id, &held) == 0) {
      info.skipped++; /* twice in one file, or loaded before */
      continue;
    }
    int kept = 0, dropped = 0;
    if (load_member(n, &r.hdr, &m, &sc, now, &kept, &dropped)) {
      info.members_dropped++;
      continue;
    }
    info.members++;
    info.lists += (size_t)kept;
    info.lists_dropped += (size_t)dropped;
  }
  struct lm__snap *S = snap(n);
  if (info.members && S) {
    if (!S->from_file && !S->isolated && !S->resyncing)
      S->view_ms = r.hdr.written_ms;
    S->from_file = 1;
    S->pp_mark = swim_stats(n->core)->stream_in;
  }
  uv_mutex_unlock(&n->mu);
  sodium_memzero(sc.key, sizeof sc.key);
  free(buf);
  if (a->info)
    *a->info = info;
  if ((info.members_dropped || info.lists_dropped) && a->err && a->errcap)
    snprintf(a->err, a->errcap, "%s: dropped %zu member(s) and %zu service "
             "list(s) that do not verify", a->path, info.members_dropped,
             info.lists_dropped);
  lm__dispatch(n);
  return (int)(info.members > INT32_MAX ? INT32_MAX : info.members);
}

int lm_node_snapshot_load(lm_node_t *n, const char *path,
                          lm_snapshot_info_t *info, char *err, size_t errcap) {
  if (err && errcap)
    err[0] = 0;
  if (info)
    memset(info, 0, sizeof *info);
  int rc = usable(n);
  if (rc)
    return rc;
  if (!path || !*path)
    return LM_EINVAL;
  load_args_t a = {path, info, err, errcap};
  return lm__node_call(n, apply_load, &a);
}

/* ---- reading ---- */

int lm_node_view_stale(lm_node_t *n, int64_t *age_ms) {
  if (age_ms)
    *age_ms = 0;
  if (!n)
    return LM_EINVAL;
  if (lm__forked(n))
    return LM_EFORKED;
  uv_mutex_lock(&n->mu);
  struct lm__snap *S = n->snap;
  int stale = S && (S->from_file || S->isolated || S->resyncing);
  int64_t view = stale ? S->view_ms : 0;
  uv_mutex_unlock(&n->mu);
  if (stale && age_ms) {
    int64_t now = lm__node_unix_ms();
    *age_ms = now > view ? now - view : 0;
  }
  return stale;
}

typedef struct vm_ctx {
  lm_member_t *v;
  size_t k, cap;
} vm_ctx_t;

static int add_view_member(void *ud, const lm_store_member_t *m) {
  vm_ctx_t *c = ud;
  if (c->k == c->cap)
    return 1;
  lm_member_t *o = &c->v[c->k++];
  memset(o, 0, sizeof *o);
  snprintf(o->name, sizeof o->name, "%s", m->name);
  memcpy(o->id, m->id, LM_ID_LEN);
  snprintf(o->addr, sizeof o->addr, "%s", m->addr ? m->addr : "");
  o->status = (lm_status_t)m->status;
  o->generation = m->gen;
  o->version = m->ver;
  o->since_ms = m->since_ms;
  o->is_self = m->is_self;
  return 0;
}

int lm_node_view_members(lm_node_t *n, lm_member_t **out, size_t *count) {
  *out = NULL;
  *count = 0;
  if (!n)
    return LM_EINVAL;
  if (lm__forked(n))
    return LM_EFORKED;
  if (!n->svc)
    return LM_ESTATE;
  uv_mutex_lock(&n->mu);
  lm_store_counts_t c;
  lm_store_counts(lm__svc_store(n), &c);
  vm_ctx_t ctx = {calloc(c.members ? c.members : 1, sizeof(lm_member_t)), 0,
                  c.members};
  if (ctx.v)
    lm_store_members_each(lm__svc_store(n), add_view_member, &ctx);
  uv_mutex_unlock(&n->mu);
  if (!ctx.v)
    return LM_ENOMEM;
  *out = ctx.v;
  *count = ctx.k;
  return 0;
}
