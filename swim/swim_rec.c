/*
 * swim_rec.c: interned alive records (see swim_rec.h).
 *
 * At 10,000 simulated nodes every core holds every other member: sharing the
 * record bytes through one cache is what keeps the simulator within memory.
 */
#include "swim_rec.h"

#include <stdlib.h>
#include <string.h>

struct swim_rec_cache {
  swim__rec_t **slots;
  size_t nslots; /* power of two */
  size_t count;
};

swim_rec_cache_t *swim_rec_cache_new(void) {
  swim_rec_cache_t *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->nslots = 1024;
  c->slots = calloc(c->nslots, sizeof *c->slots);
  if (!c->slots) {
    free(c);
    return NULL;
  }
  return c;
}

void swim_rec_cache_free(swim_rec_cache_t *c) {
  if (!c)
    return;
  /* Records still referenced (a core not yet freed) are detached, not freed:
   * their owner releases them later. */
  for (size_t i = 0; i < c->nslots; i++)
    for (swim__rec_t *r = c->slots[i]; r; r = r->next)
      r->cache = NULL;
  free(c->slots);
  free(c);
}

size_t swim_rec_cache_size(const swim_rec_cache_t *c) { return c ? c->count : 0; }

static void cache_grow(swim_rec_cache_t *c) {
  size_t n = c->nslots * 2;
  swim__rec_t **s = calloc(n, sizeof *s);
  if (!s)
    return; /* a fuller table is slower, not wrong */
  for (size_t i = 0; i < c->nslots; i++) {
    swim__rec_t *r = c->slots[i];
    while (r) {
      swim__rec_t *next = r->next;
      size_t k = r->hash & (n - 1);
      r->next = s[k];
      s[k] = r;
      r = next;
    }
  }
  free(c->slots);
  c->slots = s;
  c->nslots = n;
}

swim__rec_t *swim__rec_get(swim_rec_cache_t *c, const swim_upd_t *u) {
  /* FNV-1a: records are short, this is enough */
  uint32_t h = swim__fnv1a(SWIM_FNV_SEED, u->raw, u->raw_len);
  if (c) {
    for (swim__rec_t *r = c->slots[h & (c->nslots - 1)]; r; r = r->next) {
      if (r->hash == h && r->raw_len == u->raw_len &&
          memcmp(r->raw, u->raw, u->raw_len) == 0) {
        r->refs++;
        return r;
      }
    }
  }
  swim__rec_t *r = malloc(sizeof *r + u->raw_len + u->name_len + 1);
  if (!r)
    return NULL;
  r->cache = c;
  r->refs = 1;
  r->hash = h;
  r->body = swim_body_hash(u->id, u->name, u->name_len, &u->addr, u->meta,
                           u->meta_len);
  memcpy(r->id, u->id, SWIM_ID_LEN);
  r->addr = u->addr;
  r->inc = u->inc;
  r->raw_len = (uint16_t)u->raw_len;
  r->meta_off = (uint16_t)(u->meta - u->raw);
  r->meta_len = (uint16_t)u->meta_len;
  r->signed_off = (uint8_t)(u->signed_ptr - u->raw);
  r->has_sig = u->sig != NULL;
  memcpy(r->raw, u->raw, u->raw_len);
  memcpy(r->raw + u->raw_len, u->name, u->name_len);
  r->raw[u->raw_len + u->name_len] = 0;
  if (c) {
    size_t k = h & (c->nslots - 1);
    r->next = c->slots[k];
    c->slots[k] = r;
    if (++c->count > c->nslots)
      cache_grow(c);
  } else {
    r->next = NULL;
  }
  return r;
}

void swim__rec_put(swim__rec_t *r) {
  if (!r || --r->refs)
    return;
  swim_rec_cache_t *c = r->cache;
  if (c) {
    swim__rec_t **pp = &c->slots[r->hash & (c->nslots - 1)];
    while (*pp && *pp != r)
      pp = &(*pp)->next;
    if (*pp) {
      *pp = r->next;
      c->count--;
    }
  }
  free(r);
}
