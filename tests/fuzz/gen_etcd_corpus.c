/*
 * gen_etcd_corpus.c: writes the seed corpus of fuzz_etcd_resp: one file per
 * response kind, a byte naming the decoder then a valid encoded response
 * (as etcd would send it), plus a framed one.
 *   gen_etcd_corpus tests/fuzz/corpus/etcd_resp
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.pb-c.h"
#include "etcd_internal.h"

static int put(const char *dir, const char *name, int kind,
               const ProtobufCMessage *m, int framed) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = malloc(n + 6);
  if (!b)
    return 1;
  b[0] = (uint8_t)kind;
  size_t off = 1;
  if (framed) {
    /* the frame reader sees the whole input: kind byte 0 = flag 0 */
    b[0] = 0;
    b[1] = (uint8_t)(n >> 24);
    b[2] = (uint8_t)(n >> 16);
    b[3] = (uint8_t)(n >> 8);
    b[4] = (uint8_t)n;
    off = 5;
  }
  protobuf_c_message_pack(m, b + off);
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) {
    free(b);
    return 1;
  }
  fwrite(b, 1, n + off, f);
  fclose(f);
  free(b);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_etcd_corpus DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  int e = 0;
  Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
  h.cluster_id = 14841639068965178418u;
  h.member_id = 10276657743932975437u;
  h.revision = 42;
  h.raft_term = 3;
  Mvccpb__KeyValue kv1 = MVCCPB__KEY_VALUE__INIT, kv2 = MVCCPB__KEY_VALUE__INIT;
  kv1.key.data = (uint8_t *)"livemesh/members/a";
  kv1.key.len = 18;
  kv1.value.data = (uint8_t *)"{\"status\":\"alive\"}";
  kv1.value.len = 18;
  kv1.create_revision = 5;
  kv1.mod_revision = 40;
  kv1.version = 7;
  kv1.lease = 7587862072247631117;
  kv2 = kv1;
  kv2.key.data = (uint8_t *)"livemesh/members/b";
  Mvccpb__KeyValue *kvs[2] = {&kv1, &kv2};

  Etcdserverpb__RangeResponse rr = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  rr.header = &h;
  rr.kvs = kvs;
  rr.n_kvs = 2;
  rr.count = 3;
  rr.more = 1;
  e |= put(dir, "range", LM__ETCD_RESP_RANGE, &rr.base, 0);
  e |= put(dir, "range_framed", LM__ETCD_RESP_RANGE, &rr.base, 1);

  Etcdserverpb__ResponseOp op1 = ETCDSERVERPB__RESPONSE_OP__INIT;
  op1.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
  op1.response_range = &rr;
  Etcdserverpb__PutResponse pr = ETCDSERVERPB__PUT_RESPONSE__INIT;
  pr.header = &h;
  Etcdserverpb__ResponseOp op2 = ETCDSERVERPB__RESPONSE_OP__INIT;
  op2.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
  op2.response_put = &pr;
  Etcdserverpb__ResponseOp *ops[2] = {&op2, &op1};
  Etcdserverpb__TxnResponse tr = ETCDSERVERPB__TXN_RESPONSE__INIT;
  tr.header = &h;
  tr.succeeded = 1;
  tr.responses = ops;
  tr.n_responses = 2;
  e |= put(dir, "txn", LM__ETCD_RESP_TXN, &tr.base, 0);

  Etcdserverpb__CompactionResponse cr = ETCDSERVERPB__COMPACTION_RESPONSE__INIT;
  cr.header = &h;
  e |= put(dir, "compact", LM__ETCD_RESP_COMPACT, &cr.base, 0);

  Etcdserverpb__LeaseGrantResponse lg = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
  lg.header = &h;
  lg.id = 7587862072247631117;
  lg.ttl = 10;
  e |= put(dir, "lease_grant", LM__ETCD_RESP_LEASE_GRANT, &lg.base, 0);

  Etcdserverpb__LeaseRevokeResponse lr = ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
  lr.header = &h;
  e |= put(dir, "lease_revoke", LM__ETCD_RESP_LEASE_REVOKE, &lr.base, 0);

  Etcdserverpb__LeaseKeepAliveResponse ka =
      ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
  ka.header = &h;
  ka.id = 7587862072247631117;
  ka.ttl = 9;
  e |= put(dir, "lease_keepalive", LM__ETCD_RESP_LEASE_KEEPALIVE, &ka.base, 0);

  Mvccpb__Event ev1 = MVCCPB__EVENT__INIT, ev2 = MVCCPB__EVENT__INIT;
  ev1.type = MVCCPB__EVENT__EVENT_TYPE__PUT;
  ev1.kv = &kv1;
  ev1.prev_kv = &kv2;
  ev2.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
  ev2.kv = &kv2;
  Mvccpb__Event *evs[2] = {&ev1, &ev2};
  Etcdserverpb__WatchResponse wr = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  wr.header = &h;
  wr.watch_id = 1;
  wr.events = evs;
  wr.n_events = 2;
  e |= put(dir, "watch_events", LM__ETCD_RESP_WATCH, &wr.base, 0);
  Etcdserverpb__WatchResponse wc = ETCDSERVERPB__WATCH_RESPONSE__INIT;
  wc.header = &h;
  wc.created = 1;
  wc.canceled = 1;
  wc.compact_revision = 17;
  wc.cancel_reason = "mvcc: required revision has been compacted";
  e |= put(dir, "watch_canceled", LM__ETCD_RESP_WATCH, &wc.base, 0);

  Etcdserverpb__AuthenticateResponse ar =
      ETCDSERVERPB__AUTHENTICATE_RESPONSE__INIT;
  ar.header = &h;
  ar.token = "kKxRpDnHCBbZqvyS.12";
  e |= put(dir, "auth", LM__ETCD_RESP_AUTH, &ar.base, 0);
  return e;
}
