/*
 * decode.c: etcd's responses, from the bytes of one gRPC message to plain
 * structs (lm__etcd_resp_t), and the gRPC length-prefixed framing. No
 * network and no client state, so that a fuzzer can feed them anything:
 * protobuf-c checks every length, and here every optional sub-message is
 * checked for presence before it is read.
 *
 * Must never depend on swim/, store/ or mesh/.
 */
#include <stdlib.h>
#include <string.h>

#include "etcd.pb-c.h"
#include "etcd_internal.h"

long lm__grpc_frame(const uint8_t *buf, size_t len, size_t max,
                    const uint8_t **msg, size_t *msg_len) {
  if (len < 5)
    return LM__GRPC_NEED_MORE;
  if (buf[0] != 0)
    return LM_ETCD_EPROTO; /* compressed (1) or unknown flags */
  size_t n = ((size_t)buf[1] << 24) | ((size_t)buf[2] << 16) |
             ((size_t)buf[3] << 8) | (size_t)buf[4];
  if (n > max)
    return LM_ETCD_EPROTO;
  if (len - 5 < n)
    return LM__GRPC_NEED_MORE;
  *msg = buf + 5;
  *msg_len = n;
  return (long)(n + 5);
}

/* Declares `m`, message type T unpacked from (b, n) with descriptor D,
 * kept in o->pb_ (freed with the response) and its header read; returns
 * LM_ETCD_EPROTO from the decoder when the bytes do not parse. */
#define UNPACK(T, D, m)                                                       \
  T *m = (T *)protobuf_c_message_unpack(&(D), NULL, n, b);                    \
  if (!m)                                                                     \
    return LM_ETCD_EPROTO;                                                    \
  o->pb_ = m;                                                                 \
  header(o, m->header)

static void header(lm__etcd_resp_t *o, const Etcdserverpb__ResponseHeader *h) {
  if (!h)
    return;
  o->revision = h->revision;
  o->member_id = h->member_id;
  o->raft_term = h->raft_term;
}

static void kv(lm_etcd_kv_t *o, const Mvccpb__KeyValue *k) {
  memset(o, 0, sizeof *o);
  if (!k)
    return;
  o->key = k->key.data;
  o->key_len = k->key.len;
  o->value = k->value.data;
  o->value_len = k->value.len;
  o->create_revision = k->create_revision;
  o->mod_revision = k->mod_revision;
  o->version = k->version;
  o->lease = k->lease;
}

static int kvs(lm__etcd_resp_t *o, Mvccpb__KeyValue **k, size_t n) {
  if (n == 0)
    return 0;
  lm_etcd_kv_t *a = realloc(o->kvs, (o->nkvs + n) * sizeof *a);
  if (!a)
    return LM_ETCD_ENOMEM;
  o->kvs = a;
  for (size_t i = 0; i < n; i++)
    kv(&a[o->nkvs + i], k[i]);
  o->nkvs += n;
  return 0;
}

static int dec_range(lm__etcd_resp_t *o, const uint8_t *b, size_t n) {
  UNPACK(Etcdserverpb__RangeResponse,
         etcdserverpb__range_response__descriptor, m);
  o->count = m->count;
  o->more = m->more ? 1 : 0;
  return kvs(o, m->kvs, m->n_kvs);
}

static int dec_txn(lm__etcd_resp_t *o, const uint8_t *b, size_t n) {
  UNPACK(Etcdserverpb__TxnResponse, etcdserverpb__txn_response__descriptor, m);
  o->succeeded = m->succeeded ? 1 : 0;
  for (size_t i = 0; i < m->n_responses; i++) {
    const Etcdserverpb__ResponseOp *op = m->responses[i];
    if (op && op->response_case ==
                  ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE &&
        op->response_range) {
      int e = kvs(o, op->response_range->kvs, op->response_range->n_kvs);
      if (e)
        return e;
    }
  }
  return 0;
}

static int dec_watch(lm__etcd_resp_t *o, const uint8_t *b, size_t n) {
  UNPACK(Etcdserverpb__WatchResponse,
         etcdserverpb__watch_response__descriptor, m);
  o->watch_id = m->watch_id;
  o->created = m->created ? 1 : 0;
  o->canceled = m->canceled ? 1 : 0;
  o->compact_revision = m->compact_revision;
  o->cancel_reason = m->cancel_reason ? m->cancel_reason : "";
  if (m->n_events) {
    o->events = calloc(m->n_events, sizeof *o->events);
    if (!o->events)
      return LM_ETCD_ENOMEM;
    for (size_t i = 0; i < m->n_events; i++) {
      const Mvccpb__Event *e = m->events[i];
      lm_etcd_event_t *d = &o->events[i];
      if (!e)
        continue;
      d->is_delete = e->type == MVCCPB__EVENT__EVENT_TYPE__DELETE;
      kv(&d->kv, e->kv);
      d->has_prev = e->prev_kv != NULL;
      kv(&d->prev_kv, e->prev_kv);
    }
    o->nevents = m->n_events;
  }
  return 0;
}

int lm__etcd_decode(lm__etcd_resp_t *o, lm__etcd_resp_kind_t kind,
                    const uint8_t *b, size_t n) {
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->error = "";
  o->cancel_reason = "";
  o->token = "";
  int e = 0;
  switch (kind) {
  case LM__ETCD_RESP_RANGE:
    e = dec_range(o, b, n);
    break;
  case LM__ETCD_RESP_TXN:
    e = dec_txn(o, b, n);
    break;
  case LM__ETCD_RESP_COMPACT: {
    UNPACK(Etcdserverpb__CompactionResponse,
           etcdserverpb__compaction_response__descriptor, m);
    break;
  }
  case LM__ETCD_RESP_LEASE_GRANT: {
    UNPACK(Etcdserverpb__LeaseGrantResponse,
           etcdserverpb__lease_grant_response__descriptor, m);
    o->id = m->id;
    o->ttl = m->ttl;
    o->error = m->error ? m->error : "";
    break;
  }
  case LM__ETCD_RESP_LEASE_REVOKE: {
    UNPACK(Etcdserverpb__LeaseRevokeResponse,
           etcdserverpb__lease_revoke_response__descriptor, m);
    break;
  }
  case LM__ETCD_RESP_LEASE_KEEPALIVE: {
    UNPACK(Etcdserverpb__LeaseKeepAliveResponse,
           etcdserverpb__lease_keep_alive_response__descriptor, m);
    o->id = m->id;
    o->ttl = m->ttl;
    break;
  }
  case LM__ETCD_RESP_WATCH:
    e = dec_watch(o, b, n);
    break;
  case LM__ETCD_RESP_AUTH: {
    UNPACK(Etcdserverpb__AuthenticateResponse,
           etcdserverpb__authenticate_response__descriptor, m);
    o->token = m->token ? m->token : "";
    break;
  }
  default:
    return LM_ETCD_EINVAL;
  }
  if (e) {
    lm__etcd_resp_free(o);
    return e;
  }
  return 0;
}

void lm__etcd_resp_free(lm__etcd_resp_t *o) {
  if (o->pb_)
    protobuf_c_message_free_unpacked(o->pb_, NULL);
  free(o->kvs);
  free(o->events);
  o->pb_ = NULL;
  o->kvs = NULL;
  o->events = NULL;
  o->nkvs = o->nevents = 0;
}
