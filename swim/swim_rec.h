/*
 * swim_rec.h: alive records, immutable and reference counted, optionally
 * interned in a cache that many cores of one thread share. A record keeps the
 * exact bytes it arrived in so that it is relayed verbatim with its
 * signature. Internal to swim/.
 */
#ifndef LIVEMESH_SWIM_REC_H
#define LIVEMESH_SWIM_REC_H

#include "swim_proto.h"

typedef struct swim__rec {
  struct swim__rec *next; /* hash chain in the cache */
  swim_rec_cache_t *cache;
  uint32_t refs;
  uint32_t hash;
  uint32_t body; /* swim_body_hash(): what a RENEW of it is checked against */
  uint8_t id[SWIM_ID_LEN];
  swim_addr_t addr;
  swim_inc_t inc;
  uint16_t raw_len;
  uint16_t meta_off, meta_len;
  uint8_t signed_off; /* signed span: [signed_off, raw_len - sig_elem) */
  uint8_t has_sig;
  /* followed by raw_len bytes of record, then the NUL-terminated name */
  uint8_t raw[];
} swim__rec_t;

static inline const char *swim__rec_name(const swim__rec_t *r) {
  return (const char *)r->raw + r->raw_len;
}

/* Returns a record holding one reference, sharing an equal one from the
 * cache when there is one, or NULL when out of memory. */
swim__rec_t *swim__rec_get(swim_rec_cache_t *cache, const swim_upd_t *u);
void swim__rec_put(swim__rec_t *r);

#endif
