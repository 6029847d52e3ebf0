/*
 * fuzz_snapshot.c: fuzz target for the snapshot decoder (store/snapshot.h).
 *
 * Arbitrary bytes go through lm_snap_open, with and without the owner
 * checks. Beyond "no crash, no read past the end": an accepted snapshot
 * hands out exactly the members it declared, each within the format's
 * limits, whose service list (when held) passes the list codec for that
 * member; the members re-encode (with their own seals) and decode again
 * to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "svc_codec.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

/* Re-encoding: the seal of the member being written, as decoded. */
static void copy_seal(void *ud, uint8_t seal[LM_SNAP_SEAL_LEN],
                      const uint8_t *h, size_t hl, const uint8_t *o,
                      size_t ol) {
  (void)h, (void)hl, (void)o, (void)ol;
  memcpy(seal, ud, LM_SNAP_SEAL_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  if (size)
    memcpy(buf, data, size);
  lm_snap_reader_t r;
  int rc = lm_snap_open(&r, buf, size, NULL, NULL);
  CHECK(rc == 0 || (rc <= LM_STORE_EINVAL && rc >= LM_STORE_EFOREIGN));
  if (rc) {
    free(buf);
    return 0;
  }
  CHECK(r.hdr.nmembers <= LM_SNAP_MEMBERS_MAX);
  CHECK(r.hdr.head == buf && r.hdr.head_len <= size);
  /* the owner checks only ever add EFOREIGN */
  lm_snap_reader_t r2;
  uint8_t other[LM_SNAP_ID_LEN];
  memcpy(other, r.hdr.writer, sizeof other);
  other[0] ^= 1;
  CHECK(lm_snap_open(&r2, buf, size, r.hdr.cluster, r.hdr.writer) == 0);
  CHECK(lm_snap_open(&r2, buf, size, NULL, other) == LM_STORE_EFOREIGN);
  lm_snap_writer_t *w;
  rc = lm_snap_writer_new(&w, r.hdr.cluster, r.hdr.writer, r.hdr.written_ms,
                          r.hdr.nmembers);
  CHECK(rc == 0 || rc == LM_STORE_ENOMEM);
  size_t n = 0;
  lm_snap_member_t m;
  while (lm_snap_next(&r, &m) == 1) {
    n++;
    CHECK(m.status >= LM_STORE_ALIVE && m.status <= LM_STORE_LEFT);
    CHECK(strlen(m.name) >= 1 && strlen(m.name) <= LM_STORE_NAME_MAX);
    CHECK(strlen(m.addr) <= LM_STORE_ADDR_MAX);
    CHECK(m.cert_len <= LM_SNAP_CERT_MAX && m.since_ms >= 0);
    CHECK(m.obs >= buf && m.obs + m.obs_len <= buf + size);
    CHECK(m.seal >= buf && m.seal + LM_SNAP_SEAL_LEN <= buf + size);
    if (m.svc_raw) {
      lm_svclist_hdr_t h;
      CHECK(m.svc_body_len <= m.svc_raw_len);
      CHECK(lm_svclist_check(&h, m.svc_raw, m.svc_body_len) == 0);
      CHECK(memcmp(h.id, m.id, LM_SNAP_ID_LEN) == 0);
    }
    if (w)
      CHECK(lm_snap_writer_member(w, &m, copy_seal, (void *)m.seal) == 0);
  }
  CHECK(n == r.hdr.nmembers);
  if (w) {
    uint8_t *out;
    size_t len;
    rc = lm_snap_writer_finish(w, &out, &len);
    CHECK(rc == 0 || rc == LM_STORE_ENOMEM);
    if (rc == 0) {
      lm_snap_reader_t a, b;
      CHECK(lm_snap_open(&a, out, len, r.hdr.cluster, r.hdr.writer) == 0);
      CHECK(lm_snap_open(&b, buf, size, NULL, NULL) == 0);
      CHECK(a.hdr.nmembers == b.hdr.nmembers &&
            a.hdr.written_ms == b.hdr.written_ms);
      lm_snap_member_t x, y;
      while (lm_snap_next(&a, &x) == 1) {
        CHECK(lm_snap_next(&b, &y) == 1);
        CHECK(!memcmp(x.id, y.id, LM_SNAP_ID_LEN) && !strcmp(x.name, y.name) &&
              !strcmp(x.addr, y.addr) && x.status == y.status &&
              x.gen == y.gen && x.ver == y.ver && x.since_ms == y.since_ms &&
              x.cert_len == y.cert_len &&
              !memcmp(x.cert, y.cert, x.cert_len) &&
              !memcmp(x.seal, y.seal, LM_SNAP_SEAL_LEN) &&
              !x.svc_raw == !y.svc_raw);
        if (x.svc_raw)
          CHECK(x.svc_raw_len == y.svc_raw_len &&
                x.svc_body_len == y.svc_body_len &&
                !memcmp(x.svc_raw, y.svc_raw, x.svc_raw_len));
      }
      free(out);
    }
  }
  free(buf);
  return 0;
}
