/*
 * fuzz_svc_msg.c: libFuzzer target of the service-list messages (REQ and
 * LIST, mesh/node/svc_wire.h), the decoder every member runs on what other
 * members send. Properties: no crash, no read past the input (ASan), a
 * decoded message only points inside the input, a REQ has 1..16 items, a
 * LIST carries more than a signature, and what decodes re-encodes to a
 * message that decodes to the same items.
 *
 * Its seed corpus (tests/fuzz/corpus/svc_msg/) is committed as files; this
 * target has no mode that writes it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc_wire.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lm__svcmsg_t m;
  if (lm__svcmsg_decode(&m, data, size))
    return 0;
  CHECK(lm__svcmsg_is(data, size));
  if (m.kind == LM__SVCMSG_REQ) {
    CHECK(m.nreq >= 1 && m.nreq <= LM__SVCMSG_REQ_MAX);
    for (size_t i = 0; i < m.nreq; i++) {
      CHECK(m.req[i].id >= data && m.req[i].id + SWIM_ID_LEN <= data + size);
      uint8_t buf[128];
      size_t len = lm__svcmsg_encode_req(buf, sizeof buf, m.req[i].id,
                                         m.req[i].seq);
      CHECK(len > 0);
      lm__svcmsg_t again;
      CHECK(lm__svcmsg_decode(&again, buf, len) == 0);
      CHECK(again.kind == LM__SVCMSG_REQ && again.nreq == 1);
      CHECK(again.req[0].seq == m.req[i].seq);
      CHECK(!memcmp(again.req[0].id, m.req[i].id, SWIM_ID_LEN));
    }
  } else {
    CHECK(m.kind == LM__SVCMSG_LIST);
    CHECK(m.list_len > LM__SVCMSG_SIG_LEN);
    CHECK(m.list >= data && m.list + m.list_len <= data + size);
    size_t len;
    uint8_t *out = lm__svcmsg_encode_list(m.list, m.list_len, &len);
    CHECK(out);
    lm__svcmsg_t again;
    CHECK(lm__svcmsg_decode(&again, out, len) == 0);
    CHECK(again.kind == LM__SVCMSG_LIST && again.list_len == m.list_len);
    CHECK(!memcmp(again.list, m.list, m.list_len));
    free(out);
  }
  return 0;
}
