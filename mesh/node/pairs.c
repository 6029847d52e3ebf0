/*
 * pairs.c: the keys this node shares with each member, for the compact
 * datagrams (pairwise MAC instead of a signature; docs/trust.md).
 *
 * A pair is derived (crypto_kx over the X25519 forms of the two Ed25519
 * keys, some 50 microseconds) the first time a member is talked to, and
 * kept. Only members of the core's table get one, so a forged sender key
 * never costs a derivation. Outbound, the core names an address, not a
 * member: a small map from address to key, filled from the members' own
 * records and from authenticated datagrams, finds the pair; with none the
 * datagram is signed instead.
 */
#define _GNU_SOURCE
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"
#include "swim_proto.h"

#define ADDR_SLOTS 256

typedef struct pair_ent {
  lm_pair_t p;
  uint32_t hint32;
  int used;
} pair_ent_t;

typedef struct addr_ent {
  swim_addr_t addr;
  uint8_t pk[SWIM_ID_LEN];
  int used;
} addr_ent_t;

struct lm__pairs {
  pair_ent_t *v;
  size_t cap, n;
  lm_pair_self_t self;
  int self_ok;
  addr_ent_t addrs[ADDR_SLOTS];
};

static uint32_t hint32_of(const uint8_t *pk) {
  return (uint32_t)pk[0] << 24 | (uint32_t)pk[1] << 16 | (uint32_t)pk[2] << 8 |
         pk[3];
}

static struct lm__pairs *pairs(lm_node_t *n) {
  if (!n->pairs && (n->pairs = calloc(1, sizeof *n->pairs)) != NULL)
    n->pairs->self_ok = lm_pair_self_init(&n->pairs->self, &n->kp) == 0;
  return n->pairs;
}

void lm__pairs_free(lm_node_t *n) {
  if (!n->pairs)
    return;
  if (n->pairs->v)
    sodium_memzero(n->pairs->v, n->pairs->cap * sizeof *n->pairs->v);
  free(n->pairs->v);
  free(n->pairs);
  n->pairs = NULL;
}

static int grow(struct lm__pairs *ps) {
  size_t ncap = ps->cap ? ps->cap * 2 : 64;
  pair_ent_t *nv = calloc(ncap, sizeof *nv);
  if (!nv)
    return -1;
  for (size_t i = 0; i < ps->cap; i++) {
    if (!ps->v[i].used)
      continue;
    size_t j = ps->v[i].hint32 & (ncap - 1);
    while (nv[j].used)
      j = (j + 1) & (ncap - 1);
    nv[j] = ps->v[i];
  }
  if (ps->v)
    sodium_memzero(ps->v, ps->cap * sizeof *ps->v);
  free(ps->v);
  ps->v = nv;
  ps->cap = ncap;
  return 0;
}

static const lm_pair_t *find_pk(struct lm__pairs *ps, const uint8_t *pk) {
  if (!ps->cap)
    return NULL;
  uint32_t h = hint32_of(pk);
  for (size_t i = h & (ps->cap - 1);; i = (i + 1) & (ps->cap - 1)) {
    if (!ps->v[i].used)
      return NULL;
    if (ps->v[i].hint32 == h && memcmp(ps->v[i].p.pk, pk, SWIM_ID_LEN) == 0)
      return &ps->v[i].p;
  }
}

/* The pair for a member's key, derived on first use. */
static const lm_pair_t *pair_for_pk(lm_node_t *n, const uint8_t *pk) {
  struct lm__pairs *ps = pairs(n);
  if (!ps || memcmp(pk, n->kp.pk, SWIM_ID_LEN) == 0)
    return NULL;
  const lm_pair_t *p = find_pk(ps, pk);
  if (p)
    return p;
  if ((ps->n + 1) * 4 > ps->cap * 3 && grow(ps))
    return NULL;
  lm_pair_t np;
  uint8_t px[32];
  if (!ps->self_ok || lm_pair_peer_x(px, pk) != 0 ||
      lm_pair_derive_x(&np, &ps->self, pk, px) != 0)
    return NULL;
  uint32_t h = hint32_of(pk);
  size_t i = h & (ps->cap - 1);
  while (ps->v[i].used)
    i = (i + 1) & (ps->cap - 1);
  ps->v[i].p = np;
  ps->v[i].hint32 = h;
  ps->v[i].used = 1;
  ps->n++;
  sodium_memzero(&np, sizeof np);
  CNT_ADD(n->pairs_derived, 1);
  return &ps->v[i].p;
}

static size_t addr_slot(const swim_addr_t *a) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 16; i++)
    h = (h ^ a->ip[i]) * 1099511628211ull;
  h = (h ^ a->port ^ (uint64_t)a->family << 16) * 1099511628211ull;
  return (size_t)(h >> 20) % ADDR_SLOTS;
}

static int addr_eq(const swim_addr_t *a, const swim_addr_t *b) {
  return a->family == b->family && a->port == b->port &&
         memcmp(a->ip, b->ip, a->family == 6 ? 16 : 4) == 0;
}

/* Whose address this is: learned from an authenticated datagram. */
void lm__pairs_saw(lm_node_t *n, const swim_addr_t *a, const uint8_t *pk) {
  struct lm__pairs *ps = pairs(n);
  if (!ps)
    return;
  addr_ent_t *e = &ps->addrs[addr_slot(a)];
  e->addr = *a;
  memcpy(e->pk, pk, SWIM_ID_LEN);
  e->used = 1;
}

/* The pair to MAC a datagram to `to` with; NULL: sign it. */
const lm_pair_t *lm__pair_for_addr(lm_node_t *n, const swim_addr_t *to) {
  struct lm__pairs *ps = pairs(n);
  if (!ps || !n->core)
    return NULL;
  addr_ent_t *e = &ps->addrs[addr_slot(to)];
  if (!e->used || !addr_eq(&e->addr, to)) {
    /* the member that advertises this address, if any */
    size_t nm = swim_member_count(n->core);
    swim_member_t m;
    int found = 0;
    for (size_t i = 1; i < nm; i++)
      if (swim_member_at(n->core, i, &m) == 0 && addr_eq(&m.addr, to)) {
        found = 1;
        break;
      }
    if (!found)
      return NULL;
    e->addr = *to;
    memcpy(e->pk, m.id, SWIM_ID_LEN);
    e->used = 1;
  }
  /* the key must still be a member's (a forgotten one gets signatures) */
  swim_member_t m;
  if (swim_member_find(n->core, e->pk, &m) != 0)
    return NULL;
  return pair_for_pk(n, e->pk);
}

/* lm_receiver_t.pair_lookup: the i-th member whose key starts with
 * hint32, among those whose certificate holds (certs.c). */
const lm_pair_t *lm__pair_lookup(void *ud, uint32_t hint32, unsigned i) {
  lm_node_t *n = ud;
  struct lm__pairs *ps = pairs(n);
  if (!ps || !n->core)
    return NULL;
  unsigned k = 0;
  if (ps->cap)
    for (size_t j = hint32 & (ps->cap - 1); ps->v[j].used;
         j = (j + 1) & (ps->cap - 1))
      if (ps->v[j].hint32 == hint32 && lm__certs_ok(n, ps->v[j].p.pk) &&
          k++ == i)
        return &ps->v[j].p;
  /* not derived yet: the core's members with that prefix */
  size_t nm = swim_member_count(n->core);
  swim_member_t m;
  for (size_t j = 1; j < nm; j++) {
    if (swim_member_at(n->core, j, &m) != 0 || hint32_of(m.id) != hint32 ||
        find_pk(ps, m.id) || !lm__certs_ok(n, m.id))
      continue;
    const lm_pair_t *p = pair_for_pk(n, m.id);
    if (p && k++ == i)
      return p;
  }
  return NULL;
}
