/*
 * fuzz_etcd_resp.c: libFuzzer target of bridge/etcd's response decoders
 * (etcd_internal.h): the first byte picks the decoder (RANGE, TXN,
 * COMPACT, LEASE_GRANT, LEASE_REVOKE, LEASE_KEEPALIVE, WATCH, AUTH), the
 * rest is one gRPC message. The same bytes also go through the gRPC frame
 * reader, the grpc-message decoder and the status mapping. Properties: no
 * crash, no read past the input, no leak; what decodes has counts that
 * match its arrays and strings that are NUL-terminated.
 *
 * The seed corpus (tests/fuzz/corpus/etcd_resp) is written by
 *   gen_etcd_corpus DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  lm__etcd_resp_kind_t kind =
      (lm__etcd_resp_kind_t)(data[0] % LM__ETCD_RESP_COUNT);
  lm__etcd_resp_t r;
  if (lm__etcd_decode(&r, kind, data + 1, size - 1) == 0) {
    CHECK(r.kind == kind);
    CHECK(r.nkvs == 0 || r.kvs != NULL);
    for (size_t i = 0; i < r.nkvs; i++) {
      CHECK(r.kvs[i].key_len == 0 || r.kvs[i].key != NULL);
      CHECK(r.kvs[i].value_len == 0 || r.kvs[i].value != NULL);
    }
    CHECK(r.nevents == 0 || r.events != NULL);
    for (size_t i = 0; i < r.nevents; i++)
      CHECK(r.events[i].kv.key_len == 0 || r.events[i].kv.key != NULL);
    CHECK(strlen(r.token) < size);
    CHECK(strlen(r.cancel_reason) < size);
    CHECK(strlen(r.error) < size);
    lm__etcd_resp_free(&r);
  }
  const uint8_t *m;
  size_t ml;
  long n = lm__grpc_frame(data, size, 1 << 16, &m, &ml);
  if (n > 0) {
    CHECK((size_t)n <= size && m == data + 5 && ml + 5 == (size_t)n);
    if (lm__etcd_decode(&r, kind, m, ml) == 0)
      lm__etcd_resp_free(&r);
  }
  char msg[64];
  lm__grpc_message_decode(msg, sizeof msg, data, size);
  CHECK(strlen(msg) < sizeof msg);
  int e = lm__etcd_map_status(data[0], msg);
  CHECK(data[0] == 0 ? e == 0 : e < 0);
  return 0;
}
