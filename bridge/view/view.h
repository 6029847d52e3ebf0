/*
 * view.h: the mesh's view as etcd keys and values, and what etcd still
 * lacks of it. Pure: no I/O, no clock, no loop.
 *
 * The bridge rebuilds the desired state from the mesh's view (begin, one
 * add per member and service, commit) whenever the view changes, and
 * remembers what it knows etcd holds. What differs comes out as batches of
 * puts and deletes; a batch that etcd applied is recorded with
 * lm_bv_batch_done(). A full reconciliation starts from the keys etcd
 * really has.
 *
 * Layouts (INTERFACES.md, etcd):
 *   native     PREFIX meta/schema, PREFIX members/<name>,
 *              PREFIX services/<type>/<host>/<uuid>; values protobuf
 *              (bridge/livemesh.proto) or JSON.
 *   os-lively  /NS/services/by-uuid/<uuid> (oslively.Service),
 *              by-type-host/<type>/<host> (a uuid: an up one when any is),
 *              by-status/UP|DOWN/<uuid> and by-region/<region>/<uuid>
 *              (empty values).
 * A key segment taken from a name is escaped (%, /, space, controls and DEL
 * as %XX; UTF-8 kept), so no name can add a path level.
 *
 * Dead and left members, and their services, are not part of the desired
 * state: the next batch deletes them. A suspect member stays, as suspect.
 *
 * Depends on libc, jansson, protobuf-c and <livemesh/service.h> only; never
 * on swim/, store/, mesh/ or libuv.
 */
#ifndef LIVEMESH_BRIDGE_VIEW_H
#define LIVEMESH_BRIDGE_VIEW_H

#include <livemesh/service.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { LM_BV_NATIVE = 0, LM_BV_OSLIVELY = 1 } lm_bv_layout_t;
typedef enum { LM_BV_PROTOBUF = 0, LM_BV_JSON = 1 } lm_bv_encoding_t;

/* Member status numbers as lm_status_t: alive, suspect, dead, left. */
enum { LM_BV_ALIVE = 0, LM_BV_SUSPECT = 1, LM_BV_DEAD = 2, LM_BV_LEFT = 3 };

typedef struct lm_bv_config {
  lm_bv_layout_t layout;
  lm_bv_encoding_t encoding; /* native only */
  /* native: the prefix, ending in '/'; os-lively: the namespace ("" or
   * NULL: none). */
  const char *prefix;
  const char *cluster; /* named in meta/schema */
} lm_bv_config_t;

typedef struct lm_bv_member {
  const char *name;
  const uint8_t *id; /* 32 bytes, or NULL */
  const char *addr;
  int status; /* LM_BV_* */
  uint32_t generation, version;
  int64_t since_ms;
  uint32_t nservices;
} lm_bv_member_t;

typedef struct lm_bv_service {
  const lm_service_t *svc;
  lm_svc_status_t effective; /* what is_up answers */
  int member_status;         /* LM_BV_* */
} lm_bv_service_t;

typedef struct lm_bv lm_bv_t;

/* 0, or -1 (bad configuration, out of memory). */
int lm_bv_new(lm_bv_t **out, const lm_bv_config_t *cfg);
void lm_bv_free(lm_bv_t *v);

/* The key range the bridge owns: every key it writes is in
 * [*start, *end). Valid while `v` lives. */
void lm_bv_range(const lm_bv_t *v, const uint8_t **start, size_t *start_len,
                 const uint8_t **end, size_t *end_len);

/* Rebuilding the desired state. Adds of dead or left members and of their
 * services are ignored. 0, or -1 when out of memory (the previous desired
 * state is then kept by the next commit's caller retrying). */
void lm_bv_begin(lm_bv_t *v);
int lm_bv_add_member(lm_bv_t *v, const lm_bv_member_t *m);
int lm_bv_add_service(lm_bv_t *v, const lm_bv_service_t *s);
/* Ends the rebuild: what was not added since begin is no longer wanted.
 * Returns the number of keys that now differ from etcd. */
size_t lm_bv_commit(lm_bv_t *v);

/* One put (value set) or delete of a batch. Pointers stay valid until
 * lm_bv_batch_done() or the next commit. */
typedef struct lm_bv_op {
  int is_delete;
  const uint8_t *key;
  size_t key_len;
  const uint8_t *value;
  size_t value_len;
} lm_bv_op_t;

/* Fills up to `max_ops` operations whose keys and values add up to about
 * `max_bytes` (at least one operation), among keys that differ and are not
 * already in a batch. Returns how many; 0 when nothing is left to send.
 * Every batch taken must be ended with lm_bv_batch_done(). */
size_t lm_bv_next_batch(lm_bv_t *v, lm_bv_op_t *ops, size_t max_ops,
                        size_t max_bytes, uint64_t *batch_out);

typedef enum {
  LM_BV_APPLIED = 0, /* etcd applied it */
  LM_BV_FAILED = 1,  /* it did not: send again later */
  LM_BV_REFUSED = 2  /* etcd will never take these values (too large): skip
                        them until they change */
} lm_bv_outcome_t;
void lm_bv_batch_done(lm_bv_t *v, uint64_t batch, lm_bv_outcome_t outcome);

/* Forgets what etcd holds (a new lease, a reconnection): every wanted key
 * differs until lm_bv_reconcile_key() says otherwise. Batches in flight
 * are forgotten too (their done does nothing). */
void lm_bv_reconcile_begin(lm_bv_t *v);
/* A key etcd has in the owned range (from a keys-only range): kept if
 * wanted (its value is sent again, since it is unknown), deleted if not.
 * Keys outside the owned range are ignored. */
int lm_bv_reconcile_key(lm_bv_t *v, const uint8_t *key, size_t key_len);

/* Numbers. */
typedef struct lm_bv_counts {
  size_t keys_wanted; /* in the desired state */
  size_t keys_differ; /* to put or delete */
  size_t inflight;
  size_t refused;     /* skipped as too large */
  size_t members, services;
} lm_bv_counts_t;
void lm_bv_counts(const lm_bv_t *v, lm_bv_counts_t *out);

/* Lower-case hex of n bytes into out (2n + 1 bytes): member ids in JSON. */
void lm_bv_hex(char *out, const uint8_t *p, size_t n);

/* Escapes one key segment into `out` (NUL-terminated); returns its length,
 * or the length it needs when cap is too small. */
size_t lm_bv_escape(char *out, size_t cap, const char *segment);

#endif
