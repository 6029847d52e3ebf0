/*
 * view_internal.h: between view.c (the table of keys: wanted, written, in
 * flight) and encode.c (the layouts and value encodings). Not installed.
 */
#ifndef LIVEMESH_BRIDGE_VIEW_INTERNAL_H
#define LIVEMESH_BRIDGE_VIEW_INTERNAL_H

#include "view.h"

/* This key is wanted with this value in the state being built. The value
 * is copied. 0 or -1 (out of memory). */
int lm__bv_want(lm_bv_t *v, const char *key, size_t klen, const uint8_t *val,
                size_t vlen);
/* os-lively's by-type-host/<type>/<host>: one key for many workers. The
 * value is the uuid of an up service when one is up, else of the lowest
 * uuid; called once per service. */
int lm__bv_want_pick(lm_bv_t *v, const char *key, size_t klen,
                     const char *uuid, int up);

/* Encoders (encode.c): add every key of one member or service. */
int lm__bv_encode_member(lm_bv_t *v, const lm_bv_config_t *cfg,
                         const lm_bv_member_t *m);
int lm__bv_encode_service(lm_bv_t *v, const lm_bv_config_t *cfg,
                          const lm_bv_service_t *s);
int lm__bv_encode_schema(lm_bv_t *v, const lm_bv_config_t *cfg);

/* A growing text buffer for keys. */
typedef struct lm__bv_key {
  char buf[1024];
  size_t len;
  int overflow;
} lm__bv_key_t;
void lm__bv_key_init(lm__bv_key_t *k, const char *base);
void lm__bv_key_raw(lm__bv_key_t *k, const char *s);
void lm__bv_key_seg(lm__bv_key_t *k, const char *segment); /* escaped */

#endif
