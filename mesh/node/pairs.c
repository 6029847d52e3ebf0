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

#define ADDR_SLOTS 256 /* the address cache at most; 16 at least */

/* Every node holds a pair for nearly every member, so the pairs sit in a
 * dense array (no empty slots of 96 bytes) found through an open-addressed
 * index of 8-byte slots, kept under 3/4 full. */
typedef struct pair_slot {
  uint32_t hint32; /* the peer key's first four bytes */
  uint32_t at;     /* 1 + its index in v; 0: empty */
} pair_slot_t;

typedef struct addr_ent {
  swim_addr_t addr;
  uint8_t pk[SWIM_ID_LEN];
  int used;
} addr_ent_t;

struct lm__pairs {
  lm_pair_t *v; /* n of cap; key material, wiped when freed or moved */
  size_t cap, n;
  pair_slot_t *ix;
  size_t icap; /* a power of two, or 0 */
  lm_pair_self_t self;
  int self_ok;
  addr_ent_t *addrs; /* naddrs of them, a power of two, or NULL */
  size_t naddrs;
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
  free(n->pairs->ix);
  free(n->pairs->addrs);
  sodium_memzero(&n->pairs->self, sizeof n->pairs->self);
  free(n->pairs);
  n->pairs = NULL;
}

static void ix_put(pair_slot_t *ix, size_t icap, uint32_t hint32,
                   uint32_t at) {
  size_t j = hint32 & (icap - 1);
  while (ix[j].at)
    j = (j + 1) & (icap - 1);
  ix[j].hint32 = hint32;
  ix[j].at = at;
}

/* Room for one more pair. The array is moved by hand, not realloc'd, so
 * that the old copy of the keys is wiped. */
static int grow(struct lm__pairs *ps) {
  if (ps->n == UINT32_MAX - 1)
    return -1;
  if (ps->n == ps->cap) {
    size_t ncap = ps->cap ? ps->cap * 2 : 16;
    lm_pair_t *nv = malloc(ncap * sizeof *nv);
    if (!nv)
      return -1;
    if (ps->n)
      memcpy(nv, ps->v, ps->n * sizeof *nv);
    if (ps->v)
      sodium_memzero(ps->v, ps->cap * sizeof *ps->v);
    free(ps->v);
    ps->v = nv;
    ps->cap = ncap;
  }
  if ((ps->n + 1) * 4 > ps->icap * 3) {
    size_t ncap = ps->icap ? ps->icap * 2 : 32;
    pair_slot_t *nix = calloc(ncap, sizeof *nix);
    if (!nix)
      return -1;
    for (size_t i = 0; i < ps->n; i++)
      ix_put(nix, ncap, hint32_of(ps->v[i].pk), (uint32_t)i + 1);
    free(ps->ix);
    ps->ix = nix;
    ps->icap = ncap;
  }
  return 0;
}

static const lm_pair_t *find_pk(struct lm__pairs *ps, const uint8_t *pk) {
  if (!ps->icap)
    return NULL;
  uint32_t h = hint32_of(pk);
  for (size_t i = h & (ps->icap - 1);; i = (i + 1) & (ps->icap - 1)) {
    if (!ps->ix[i].at)
      return NULL;
    const lm_pair_t *p = &ps->v[ps->ix[i].at - 1];
    if (ps->ix[i].hint32 == h && memcmp(p->pk, pk, SWIM_ID_LEN) == 0)
      return p;
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
  if (grow(ps))
    return NULL;
  uint8_t px[32];
  lm_pair_t *np = &ps->v[ps->n];
  if (!ps->self_ok || lm_pair_peer_x(px, pk) != 0 ||
      lm_pair_derive_x(np, &ps->self, pk, px) != 0) {
    sodium_memzero(np, sizeof *np);
    return NULL;
  }
  ix_put(ps->ix, ps->icap, hint32_of(pk), (uint32_t)++ps->n);
  CNT_ADD(n->pairs_derived, 1);
  return np;
}

static size_t addr_hash(const swim_addr_t *a) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 16; i++)
    h = (h ^ a->ip[i]) * 1099511628211ull;
  h = (h ^ a->port ^ (uint64_t)a->family << 16) * 1099511628211ull;
  return (size_t)(h >> 20);
}

/* The cache slot of an address. The cache is direct-mapped, with about
 * two slots a member of the core, up to ADDR_SLOTS, so that a small mesh
 * does not pay for a large one; growing drops what it held (entries come
 * back from datagrams and from the members' records). NULL: no memory. */
static addr_ent_t *addr_ent(lm_node_t *n, struct lm__pairs *ps,
                            const swim_addr_t *a) {
  size_t want = 16, nm = n->core ? swim_member_count(n->core) : 0;
  while (want < 2 * nm && want < ADDR_SLOTS)
    want *= 2;
  if (want > ps->naddrs) {
    addr_ent_t *v = calloc(want, sizeof *v);
    if (v) {
      free(ps->addrs);
      ps->addrs = v;
      ps->naddrs = want;
    } else if (!ps->addrs) {
      return NULL;
    }
  }
  return &ps->addrs[addr_hash(a) & (ps->naddrs - 1)];
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
  addr_ent_t *e = addr_ent(n, ps, a);
  if (!e)
    return;
  e->addr = *a;
  memcpy(e->pk, pk, SWIM_ID_LEN);
  e->used = 1;
}

/* The pair to MAC a datagram to `to` with; NULL: sign it. */
const lm_pair_t *lm__pair_for_addr(lm_node_t *n, const swim_addr_t *to) {
  struct lm__pairs *ps = pairs(n);
  if (!ps || !n->core)
    return NULL;
  addr_ent_t *e = addr_ent(n, ps, to);
  if (!e)
    return NULL;
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
  if (ps->icap)
    for (size_t j = hint32 & (ps->icap - 1); ps->ix[j].at;
         j = (j + 1) & (ps->icap - 1))
      if (ps->ix[j].hint32 == hint32 &&
          lm__certs_ok(n, ps->v[ps->ix[j].at - 1].pk) && k++ == i)
        return &ps->v[ps->ix[j].at - 1];
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
