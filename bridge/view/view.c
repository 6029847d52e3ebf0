/*
 * view.c: the table of keys the bridge owns. For each key: the value the
 * mesh's view wants (if any), what etcd holds as far as the bridge knows,
 * and whether a batch carrying it is in flight. The difference is what the
 * next batches send.
 */
#include <stdlib.h>
#include <string.h>

#include "view_internal.h"

typedef struct entry {
  struct entry *next; /* hash chain */
  uint64_t khash;
  char *key;
  size_t klen;
  uint8_t *val; /* wanted value, NULL when not wanted */
  size_t vlen;
  uint64_t vhash;
  uint64_t written_hash;   /* valid when written_known */
  uint64_t inflight_hash;  /* of the value in flight (puts) */
  uint64_t inflight_batch; /* 0: none */
  uint64_t refused_hash;   /* a value etcd refused; skipped while unchanged */
  uint32_t gen;            /* build generation that last wanted it */
  uint8_t want, written, written_known, inflight_delete, refused, pick_up;
} entry;

struct lm_bv {
  lm_bv_config_t cfg;
  char *prefix; /* owned copy; cfg.prefix points here */
  char *cluster;
  char *range_start;
  uint8_t range_end[512];
  size_t range_start_len, range_end_len;
  entry **buckets;
  size_t nbuckets, count;
  uint32_t gen;
  int building;
  uint64_t next_batch;
  size_t members, services, building_members, building_services;
};

static uint64_t fnv1a(const void *p, size_t n) {
  const uint8_t *b = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}

static entry *find(const lm_bv_t *v, const char *key, size_t klen,
                   uint64_t h) {
  for (entry *e = v->buckets[h & (v->nbuckets - 1)]; e; e = e->next)
    if (e->khash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
      return e;
  return NULL;
}

static int grow(lm_bv_t *v) {
  size_t nb = v->nbuckets * 2;
  entry **b = calloc(nb, sizeof *b);
  if (!b)
    return -1;
  for (size_t i = 0; i < v->nbuckets; i++) {
    entry *e = v->buckets[i];
    while (e) {
      entry *n = e->next;
      e->next = b[e->khash & (nb - 1)];
      b[e->khash & (nb - 1)] = e;
      e = n;
    }
  }
  free(v->buckets);
  v->buckets = b;
  v->nbuckets = nb;
  return 0;
}

static entry *find_or_add(lm_bv_t *v, const char *key, size_t klen) {
  uint64_t h = fnv1a(key, klen);
  entry *e = find(v, key, klen, h);
  if (e)
    return e;
  if (v->count + 1 > v->nbuckets && grow(v) != 0)
    return NULL;
  e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  e->key = malloc(klen + 1);
  if (!e->key) {
    free(e);
    return NULL;
  }
  memcpy(e->key, key, klen);
  e->key[klen] = 0;
  e->klen = klen;
  e->khash = h;
  e->next = v->buckets[h & (v->nbuckets - 1)];
  v->buckets[h & (v->nbuckets - 1)] = e;
  v->count++;
  return e;
}

static void entry_free(entry *e) {
  free(e->key);
  free(e->val);
  free(e);
}

static int differs(const entry *e) {
  if (e->want) {
    if (e->refused && e->refused_hash == e->vhash)
      return 0;
    return !(e->written && e->written_known && e->written_hash == e->vhash);
  }
  return e->written;
}

int lm_bv_new(lm_bv_t **out, const lm_bv_config_t *cfg) {
  *out = NULL;
  if (!cfg || (cfg->layout != LM_BV_NATIVE && cfg->layout != LM_BV_OSLIVELY) ||
      (cfg->encoding != LM_BV_PROTOBUF && cfg->encoding != LM_BV_JSON))
    return -1;
  const char *p = cfg->prefix ? cfg->prefix : "";
  size_t plen = strlen(p);
  if (cfg->layout == LM_BV_NATIVE && (plen == 0 || p[plen - 1] != '/'))
    return -1;
  if (plen > 256)
    return -1;
  lm_bv_t *v = calloc(1, sizeof *v);
  if (!v)
    return -1;
  v->cfg = *cfg;
  v->nbuckets = 64;
  v->buckets = calloc(v->nbuckets, sizeof *v->buckets);
  v->prefix = strdup(p);
  v->cluster = strdup(cfg->cluster ? cfg->cluster : "");
  /* the owned range: the native prefix, or /NS/services/ */
  lm__bv_key_t k;
  if (cfg->layout == LM_BV_NATIVE) {
    lm__bv_key_init(&k, p);
  } else {
    lm__bv_key_init(&k, "/");
    while (*p == '/')
      p++;
    if (*p) {
      lm__bv_key_raw(&k, p);
      if (k.buf[k.len - 1] != '/')
        lm__bv_key_raw(&k, "/");
    }
    lm__bv_key_raw(&k, "services/");
  }
  v->range_start = strdup(k.buf);
  if (!v->buckets || !v->prefix || !v->cluster || !v->range_start ||
      k.overflow) {
    lm_bv_free(v);
    return -1;
  }
  v->range_start_len = k.len;
  /* etcd's prefix end: the last byte below 0xff, plus one, cut there */
  memcpy(v->range_end, k.buf, k.len);
  size_t n = k.len;
  while (n > 0 && v->range_end[n - 1] == 0xff)
    n--;
  v->range_end[n - 1]++;
  v->range_end_len = n;
  v->cfg.prefix = v->prefix;
  v->cfg.cluster = v->cluster;
  v->next_batch = 1;
  *out = v;
  return 0;
}

void lm_bv_free(lm_bv_t *v) {
  if (!v)
    return;
  if (v->buckets)
    for (size_t i = 0; i < v->nbuckets; i++) {
      entry *e = v->buckets[i];
      while (e) {
        entry *n = e->next;
        entry_free(e);
        e = n;
      }
    }
  free(v->buckets);
  free(v->prefix);
  free(v->cluster);
  free(v->range_start);
  free(v);
}

void lm_bv_range(const lm_bv_t *v, const uint8_t **start, size_t *start_len,
                 const uint8_t **end, size_t *end_len) {
  *start = (const uint8_t *)v->range_start;
  *start_len = v->range_start_len;
  *end = v->range_end;
  *end_len = v->range_end_len;
}

void lm_bv_begin(lm_bv_t *v) {
  v->gen++;
  v->building = 1;
  v->building_members = v->building_services = 0;
}

int lm__bv_want(lm_bv_t *v, const char *key, size_t klen, const uint8_t *val,
                size_t vlen) {
  entry *e = find_or_add(v, key, klen);
  if (!e)
    return -1;
  uint64_t h = fnv1a(val, vlen);
  if (!e->val || e->vhash != h || e->vlen != vlen ||
      (vlen && memcmp(e->val, val, vlen) != 0)) {
    uint8_t *c = malloc(vlen ? vlen : 1);
    if (!c)
      return -1;
    if (vlen)
      memcpy(c, val, vlen);
    free(e->val);
    e->val = c;
    e->vlen = vlen;
    e->vhash = h;
  }
  e->want = 1;
  e->gen = v->gen;
  return 0;
}

int lm__bv_want_pick(lm_bv_t *v, const char *key, size_t klen,
                     const char *uuid, int up) {
  entry *e = find_or_add(v, key, klen);
  if (!e)
    return -1;
  if (e->gen == v->gen && e->want) {
    /* already chosen in this build: an up one beats a down one, then the
     * lowest uuid, so the choice does not depend on the order of adds */
    int better = (up && !e->pick_up) ||
                 (!!up == !!e->pick_up &&
                  strncmp(uuid, (const char *)e->val, e->vlen) < 0);
    if (!better)
      return 0;
  }
  if (lm__bv_want(v, key, klen, (const uint8_t *)uuid, strlen(uuid)) != 0)
    return -1;
  e->pick_up = up ? 1 : 0;
  return 0;
}

int lm_bv_add_member(lm_bv_t *v, const lm_bv_member_t *m) {
  if (!v->building || !m || !m->name)
    return -1;
  if (m->status == LM_BV_DEAD || m->status == LM_BV_LEFT)
    return 0;
  v->building_members++;
  if (v->cfg.layout != LM_BV_NATIVE)
    return 0;
  return lm__bv_encode_member(v, &v->cfg, m);
}

int lm_bv_add_service(lm_bv_t *v, const lm_bv_service_t *s) {
  if (!v->building || !s || !s->svc || !s->svc->type || !s->svc->host)
    return -1;
  if (s->member_status == LM_BV_DEAD || s->member_status == LM_BV_LEFT)
    return 0;
  v->building_services++;
  return lm__bv_encode_service(v, &v->cfg, s);
}

size_t lm_bv_commit(lm_bv_t *v) {
  if (v->building && v->cfg.layout == LM_BV_NATIVE)
    (void)lm__bv_encode_schema(v, &v->cfg);
  v->building = 0;
  v->members = v->building_members;
  v->services = v->building_services;
  size_t ndiff = 0;
  for (size_t i = 0; i < v->nbuckets; i++) {
    entry **pp = &v->buckets[i];
    while (*pp) {
      entry *e = *pp;
      if (e->gen != v->gen && e->want) {
        e->want = 0;
        free(e->val);
        e->val = NULL;
        e->vlen = 0;
      }
      if (!e->want && !e->written && !e->inflight_batch) {
        *pp = e->next;
        entry_free(e);
        v->count--;
        continue;
      }
      if (differs(e))
        ndiff++;
      pp = &e->next;
    }
  }
  return ndiff;
}

size_t lm_bv_next_batch(lm_bv_t *v, lm_bv_op_t *ops, size_t max_ops,
                        size_t max_bytes, uint64_t *batch_out) {
  size_t n = 0, bytes = 0;
  uint64_t id = v->next_batch;
  for (size_t i = 0; i < v->nbuckets && n < max_ops; i++) {
    for (entry *e = v->buckets[i]; e && n < max_ops; e = e->next) {
      if (e->inflight_batch || !differs(e))
        continue;
      size_t cost = e->klen + (e->want ? e->vlen : 0) + 16;
      if (n > 0 && bytes + cost > max_bytes)
        goto done;
      bytes += cost;
      lm_bv_op_t *op = &ops[n++];
      op->is_delete = !e->want;
      op->key = (const uint8_t *)e->key;
      op->key_len = e->klen;
      op->value = e->want ? e->val : NULL;
      op->value_len = e->want ? e->vlen : 0;
      e->inflight_batch = id;
      e->inflight_delete = !e->want;
      e->inflight_hash = e->want ? e->vhash : 0;
    }
  }
done:
  if (n > 0)
    v->next_batch++;
  if (batch_out)
    *batch_out = n > 0 ? id : 0;
  return n;
}

void lm_bv_batch_done(lm_bv_t *v, uint64_t batch, lm_bv_outcome_t outcome) {
  if (batch == 0)
    return;
  for (size_t i = 0; i < v->nbuckets; i++) {
    entry **pp = &v->buckets[i];
    while (*pp) {
      entry *e = *pp;
      if (e->inflight_batch == batch) {
        e->inflight_batch = 0;
        if (outcome == LM_BV_APPLIED) {
          e->written = !e->inflight_delete;
          e->written_known = e->written;
          e->written_hash = e->inflight_hash;
        } else if (outcome == LM_BV_REFUSED && !e->inflight_delete) {
          e->refused = 1;
          e->refused_hash = e->inflight_hash;
        }
        if (!e->want && !e->written) {
          *pp = e->next;
          entry_free(e);
          v->count--;
          continue;
        }
      }
      pp = &e->next;
    }
  }
}

void lm_bv_reconcile_begin(lm_bv_t *v) {
  for (size_t i = 0; i < v->nbuckets; i++)
    for (entry *e = v->buckets[i]; e; e = e->next) {
      e->written = 0;
      e->written_known = 0;
      e->inflight_batch = 0;
      e->refused = 0;
    }
  /* batch ids taken before this point are stale: bump past them */
  v->next_batch++;
}

int lm_bv_reconcile_key(lm_bv_t *v, const uint8_t *key, size_t key_len) {
  if (key_len < v->range_start_len ||
      memcmp(key, v->range_start, v->range_start_len) != 0)
    return 0;
  /* the election's keys (native layout: PREFIX bridge/) are not the
   * view's: never delete them here */
  static const char election[] = "bridge/";
  if (v->cfg.layout == LM_BV_NATIVE &&
      key_len >= v->range_start_len + sizeof election - 1 &&
      memcmp(key + v->range_start_len, election, sizeof election - 1) == 0)
    return 0;
  entry *e = find_or_add(v, (const char *)key, key_len);
  if (!e)
    return -1;
  e->written = 1;
  e->written_known = 0;
  return 0;
}

void lm_bv_counts(const lm_bv_t *v, lm_bv_counts_t *out) {
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < v->nbuckets; i++)
    for (const entry *e = v->buckets[i]; e; e = e->next) {
      out->keys_wanted += e->want;
      out->keys_differ += differs(e) && !e->inflight_batch;
      out->inflight += e->inflight_batch != 0;
      out->refused += e->want && e->refused && e->refused_hash == e->vhash;
    }
  out->members = v->members;
  out->services = v->services;
}
