/*
 * encode.c: etcd's requests as gRPC frames (a 5-byte prefix: flag 0 and
 * the big-endian length, then the protobuf message), and the size of a Txn
 * for batching. Pointers in the protobuf-c structs point at the caller's
 * bytes; packing copies them.
 *
 * Must never depend on swim/, store/ or mesh/.
 */
#include <stdlib.h>
#include <string.h>

#include "etcd.pb-c.h"
#include "etcd_internal.h"

static ProtobufCBinaryData bin(const uint8_t *p, size_t n) {
  ProtobufCBinaryData b;
  b.data = (uint8_t *)(uintptr_t)p;
  b.len = p ? n : 0;
  return b;
}

static uint8_t *frame(const ProtobufCMessage *m, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  if (n > 0xffffffffu)
    return NULL;
  uint8_t *b = malloc(n + 5);
  if (!b)
    return NULL;
  b[0] = 0;
  b[1] = (uint8_t)(n >> 24);
  b[2] = (uint8_t)(n >> 16);
  b[3] = (uint8_t)(n >> 8);
  b[4] = (uint8_t)n;
  protobuf_c_message_pack(m, b + 5);
  *len = n + 5;
  return b;
}

uint8_t *lm__etcd_enc_range(size_t *len, const uint8_t *key, size_t key_len,
                            const uint8_t *end, size_t end_len, int64_t limit,
                            int flags) {
  Etcdserverpb__RangeRequest m = ETCDSERVERPB__RANGE_REQUEST__INIT;
  m.key = bin(key, key_len);
  m.range_end = bin(end, end_len);
  m.limit = limit;
  m.keys_only = (flags & LM_ETCD_RANGE_KEYS_ONLY) != 0;
  m.count_only = (flags & LM_ETCD_RANGE_COUNT_ONLY) != 0;
  return frame(&m.base, len);
}

/* A TxnRequest built on the heap: one block for every struct. */
typedef struct txn_build {
  Etcdserverpb__TxnRequest req;
  void *mem;
} txn_build_t;

static int txn_ops(Etcdserverpb__RequestOp **out, uint8_t **mem,
                   const lm_etcd_op_t *ops, size_t n) {
  for (size_t i = 0; i < n; i++) {
    Etcdserverpb__RequestOp *ro = (Etcdserverpb__RequestOp *)*mem;
    *mem += sizeof(Etcdserverpb__RequestOp) + 64;
    Etcdserverpb__RequestOp init = ETCDSERVERPB__REQUEST_OP__INIT;
    *ro = init;
    const lm_etcd_op_t *op = &ops[i];
    switch (op->kind) {
    case LM_ETCD_OP_PUT: {
      Etcdserverpb__PutRequest *p = (Etcdserverpb__PutRequest *)*mem;
      Etcdserverpb__PutRequest pi = ETCDSERVERPB__PUT_REQUEST__INIT;
      *p = pi;
      p->key = bin(op->key, op->key_len);
      p->value = bin(op->value, op->value_len);
      p->lease = op->lease;
      ro->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
      ro->request_put = p;
      break;
    }
    case LM_ETCD_OP_DELETE: {
      Etcdserverpb__DeleteRangeRequest *p =
          (Etcdserverpb__DeleteRangeRequest *)*mem;
      Etcdserverpb__DeleteRangeRequest pi =
          ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
      *p = pi;
      p->key = bin(op->key, op->key_len);
      p->range_end = bin(op->range_end, op->range_end_len);
      ro->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
      ro->request_delete_range = p;
      break;
    }
    case LM_ETCD_OP_RANGE: {
      Etcdserverpb__RangeRequest *p = (Etcdserverpb__RangeRequest *)*mem;
      Etcdserverpb__RangeRequest pi = ETCDSERVERPB__RANGE_REQUEST__INIT;
      *p = pi;
      p->key = bin(op->key, op->key_len);
      p->range_end = bin(op->range_end, op->range_end_len);
      ro->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
      ro->request_range = p;
      break;
    }
    default:
      return LM_ETCD_EINVAL;
    }
    *mem += 256;
    out[i] = ro;
  }
  return 0;
}

/* 256 bytes is more than any of Put/DeleteRange/RangeRequest. */
_Static_assert(sizeof(Etcdserverpb__RangeRequest) <= 256, "op struct size");
_Static_assert(sizeof(Etcdserverpb__PutRequest) <= 256, "op struct size");
_Static_assert(sizeof(Etcdserverpb__DeleteRangeRequest) <= 256,
               "op struct size");
_Static_assert(sizeof(Etcdserverpb__RequestOp) <= 64 + 256, "op size");

static int txn_build(txn_build_t *t, const lm_etcd_cmp_t *cmps, size_t ncmps,
                     const lm_etcd_op_t *success, size_t nsuccess,
                     const lm_etcd_op_t *failure, size_t nfailure) {
  Etcdserverpb__TxnRequest init = ETCDSERVERPB__TXN_REQUEST__INIT;
  t->req = init;
  t->mem = NULL;
  size_t nops = nsuccess + nfailure;
  size_t per_op = sizeof(Etcdserverpb__RequestOp) + 64 + 256;
  if (ncmps > 1000000 || nops > 1000000)
    return LM_ETCD_EINVAL;
  size_t total = ncmps * (sizeof(Etcdserverpb__Compare) +
                          sizeof(Etcdserverpb__Compare *)) +
                 nops * (per_op + sizeof(Etcdserverpb__RequestOp *)) + 16;
  uint8_t *mem = calloc(1, total);
  if (!mem)
    return LM_ETCD_ENOMEM;
  t->mem = mem;
  Etcdserverpb__Compare **cp = (Etcdserverpb__Compare **)mem;
  Etcdserverpb__RequestOp **sp = (Etcdserverpb__RequestOp **)(cp + ncmps);
  Etcdserverpb__RequestOp **fp = sp + nsuccess;
  uint8_t *p = (uint8_t *)(fp + nfailure);
  for (size_t i = 0; i < ncmps; i++) {
    Etcdserverpb__Compare *c = (Etcdserverpb__Compare *)p;
    p += sizeof *c;
    Etcdserverpb__Compare ci = ETCDSERVERPB__COMPARE__INIT;
    *c = ci;
    const lm_etcd_cmp_t *in = &cmps[i];
    if ((unsigned)in->result > LM_ETCD_CMP_NOT_EQUAL)
      return LM_ETCD_EINVAL;
    c->result = (Etcdserverpb__Compare__CompareResult)in->result;
    c->target = (Etcdserverpb__Compare__CompareTarget)in->target;
    c->key = bin(in->key, in->key_len);
    switch (in->target) {
    case LM_ETCD_CMP_VERSION:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
      c->version = in->number;
      break;
    case LM_ETCD_CMP_CREATE:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
      c->create_revision = in->number;
      break;
    case LM_ETCD_CMP_MOD:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
      c->mod_revision = in->number;
      break;
    case LM_ETCD_CMP_VALUE:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
      c->value = bin(in->value, in->value_len);
      break;
    case LM_ETCD_CMP_LEASE:
      c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE;
      c->lease = in->number;
      break;
    default:
      return LM_ETCD_EINVAL;
    }
    cp[i] = c;
  }
  /* Each op takes per_op bytes: the RequestOp (+64) then its request. */
  uint8_t *q = p;
  int e = txn_ops(sp, &q, success, nsuccess);
  if (!e)
    e = txn_ops(fp, &q, failure, nfailure);
  if (e)
    return e;
  t->req.n_compare = ncmps;
  t->req.compare = ncmps ? cp : NULL;
  t->req.n_success = nsuccess;
  t->req.success = nsuccess ? sp : NULL;
  t->req.n_failure = nfailure;
  t->req.failure = nfailure ? fp : NULL;
  return 0;
}

size_t lm_etcd_txn_size(const lm_etcd_cmp_t *cmps, size_t ncmps,
                        const lm_etcd_op_t *success, size_t nsuccess,
                        const lm_etcd_op_t *failure, size_t nfailure) {
  txn_build_t t;
  size_t n = 0;
  if (txn_build(&t, cmps, ncmps, success, nsuccess, failure, nfailure) == 0)
    n = protobuf_c_message_get_packed_size(&t.req.base);
  free(t.mem);
  return n;
}

uint8_t *lm__etcd_enc_txn(size_t *len, const lm_etcd_cmp_t *cmps,
                          size_t ncmps, const lm_etcd_op_t *success,
                          size_t nsuccess, const lm_etcd_op_t *failure,
                          size_t nfailure) {
  txn_build_t t;
  uint8_t *b = NULL;
  if (txn_build(&t, cmps, ncmps, success, nsuccess, failure, nfailure) == 0)
    b = frame(&t.req.base, len);
  free(t.mem);
  return b;
}

uint8_t *lm__etcd_enc_compact(size_t *len, int64_t revision) {
  Etcdserverpb__CompactionRequest m = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
  m.revision = revision;
  return frame(&m.base, len);
}

uint8_t *lm__etcd_enc_lease_grant(size_t *len, int64_t ttl, int64_t id) {
  Etcdserverpb__LeaseGrantRequest m = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
  m.ttl = ttl;
  m.id = id;
  return frame(&m.base, len);
}

uint8_t *lm__etcd_enc_lease_revoke(size_t *len, int64_t id) {
  Etcdserverpb__LeaseRevokeRequest m = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
  m.id = id;
  return frame(&m.base, len);
}

uint8_t *lm__etcd_enc_lease_keepalive(size_t *len, int64_t id) {
  Etcdserverpb__LeaseKeepAliveRequest m =
      ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
  m.id = id;
  return frame(&m.base, len);
}

uint8_t *lm__etcd_enc_watch_create(size_t *len, const uint8_t *key,
                                   size_t key_len, const uint8_t *end,
                                   size_t end_len, int64_t start_revision,
                                   int prev_kv) {
  Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
  cr.key = bin(key, key_len);
  cr.range_end = bin(end, end_len);
  cr.start_revision = start_revision;
  cr.prev_kv = prev_kv != 0;
  Etcdserverpb__WatchRequest m = ETCDSERVERPB__WATCH_REQUEST__INIT;
  m.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
  m.create_request = &cr;
  return frame(&m.base, len);
}

uint8_t *lm__etcd_enc_auth(size_t *len, const char *user,
                           const char *password) {
  Etcdserverpb__AuthenticateRequest m = ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
  m.name = (char *)(uintptr_t)user;
  m.password = (char *)(uintptr_t)password;
  return frame(&m.base, len);
}
