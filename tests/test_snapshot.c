/*
 * test_snapshot.c: the snapshot format (store/snapshot.h).
 *
 * Round trips of every field, lists kept byte for byte; every prefix of a
 * valid snapshot refused, trailing bytes refused; every single-bit flip
 * either refused by the decoder or (where the form survives) caught by the
 * seal, the list's own check or a changed field, never a crash; another
 * cluster or another writer refused as foreign; a file of something else
 * refused as not a snapshot; the writer's argument checks. Inputs are
 * copied into buffers of their exact size so the sanitizer build catches
 * any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snap_fixture.h"

static uint8_t *exact(const uint8_t *p, size_t len) {
  uint8_t *c = malloc(len ? len : 1);
  assert_non_null(c);
  if (len)
    memcpy(c, p, len);
  return c;
}

static int open_copy(const uint8_t *p, size_t len, const char *cluster,
                     const uint8_t *writer) {
  uint8_t *c = exact(p, len);
  lm_snap_reader_t r;
  int rc = lm_snap_open(&r, c, len, cluster, writer);
  if (rc == 0) { /* walk it too */
    lm_snap_member_t m;
    size_t n = 0;
    while (lm_snap_next(&r, &m) == 1)
      n++;
    assert_int_equal(n, r.hdr.nmembers);
  }
  free(c);
  return rc;
}

static void test_round_trip(void **state) {
  (void)state;
  size_t len;
  uint8_t *b = fx_snapshot(12, &len);
  assert_non_null(b);
  uint8_t writer[LM_SNAP_ID_LEN];
  fx_id(writer, 0);
  lm_snap_reader_t r;
  assert_int_equal(lm_snap_open(&r, b, len, "fx", writer), 0);
  assert_string_equal(r.hdr.cluster, "fx");
  assert_memory_equal(r.hdr.writer, writer, LM_SNAP_ID_LEN);
  assert_int_equal(r.hdr.written_ms, 1700000002000);
  assert_int_equal(r.hdr.nmembers, 12);
  lm_snap_member_t m;
  for (size_t i = 0; i < 12; i++) {
    assert_int_equal(lm_snap_next(&r, &m), 1);
    uint8_t id[LM_SNAP_ID_LEN];
    fx_id(id, (int)i);
    assert_memory_equal(m.id, id, LM_SNAP_ID_LEN);
    char name[32], addr[32];
    snprintf(name, sizeof name, "node-%zu", i);
    snprintf(addr, sizeof addr, "127.0.0.1:%zu", 7000 + i);
    assert_string_equal(m.name, name);
    assert_string_equal(m.addr, addr);
    assert_int_equal(m.status, (int)(i % 4));
    assert_int_equal(m.gen, 7);
    assert_int_equal(m.ver, i);
    assert_int_equal(m.since_ms, 1700000000000 + (int64_t)i);
    assert_int_equal(m.cert_len, 130);
    for (size_t k = 0; k < m.cert_len; k++)
      assert_int_equal(m.cert[k], (uint8_t)i);
    /* the seal covers head || obs as written */
    uint8_t seal[LM_SNAP_SEAL_LEN];
    fx_seal(NULL, seal, r.hdr.head, r.hdr.head_len, m.obs, m.obs_len);
    assert_memory_equal(seal, m.seal, LM_SNAP_SEAL_LEN);
    if (i % 3 == 2) {
      assert_null(m.svc_raw);
    } else {
      size_t rl, bl;
      uint8_t *raw = fx_list((int)i, i % 4, &rl, &bl);
      assert_non_null(m.svc_raw);
      assert_int_equal(m.svc_raw_len, rl);
      assert_int_equal(m.svc_body_len, bl);
      assert_memory_equal(m.svc_raw, raw, rl); /* exactly as held */
      free(raw);
    }
  }
  assert_int_equal(lm_snap_next(&r, &m), 0);
  free(b);

  /* no members at all */
  b = fx_snapshot(0, &len);
  assert_non_null(b);
  assert_int_equal(open_copy(b, len, "fx", writer), 0);
  free(b);
}

static void test_prefixes_and_trailing(void **state) {
  (void)state;
  size_t len;
  uint8_t *b = fx_snapshot(5, &len);
  assert_non_null(b);
  for (size_t k = 0; k < len; k++) {
    int rc = open_copy(b, k, NULL, NULL);
    assert_true(rc == LM_STORE_ETRUNC || rc == LM_STORE_ENOTSNAP);
  }
  uint8_t *c = malloc(len + 1);
  memcpy(c, b, len);
  c[len] = 0xc0;
  assert_int_equal(open_copy(c, len + 1, NULL, NULL), LM_STORE_EMALFORMED);
  free(c);
  free(b);
}

/* A flipped bit is refused, or the seal (over the writer's fields), the
 * list's own form check, or the fixed bytes (cert, list signature) show
 * the change to whoever verifies them. Nothing is ever accepted silently
 * with all of those unchanged. */
static void test_bit_flips(void **state) {
  (void)state;
  size_t len;
  uint8_t *b = fx_snapshot(4, &len);
  assert_non_null(b);
  lm_snap_reader_t orig;
  assert_int_equal(lm_snap_open(&orig, b, len, NULL, NULL), 0);
  lm_snap_member_t om[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(lm_snap_next(&orig, &om[i]), 1);
  size_t refused = 0, noticed = 0;
  for (size_t at = 0; at < len; at++)
    for (int bit = 0; bit < 8; bit++) {
      uint8_t *c = exact(b, len);
      c[at] ^= (uint8_t)(1 << bit);
      lm_snap_reader_t r;
      int rc = lm_snap_open(&r, c, len, NULL, NULL);
      if (rc) {
        refused++;
        free(c);
        continue;
      }
      int changed = 0;
      lm_snap_member_t m;
      for (int i = 0; lm_snap_next(&r, &m) == 1; i++) {
        uint8_t seal[LM_SNAP_SEAL_LEN];
        fx_seal(NULL, seal, r.hdr.head, r.hdr.head_len, m.obs, m.obs_len);
        if (i >= 4 || memcmp(seal, m.seal, LM_SNAP_SEAL_LEN) ||
            m.cert_len != om[i].cert_len ||
            memcmp(m.cert, om[i].cert, m.cert_len) ||
            !m.svc_raw != !om[i].svc_raw ||
            (m.svc_raw && (m.svc_raw_len != om[i].svc_raw_len ||
                           memcmp(m.svc_raw, om[i].svc_raw, m.svc_raw_len))))
          changed = 1;
      }
      if (r.hdr.written_ms != orig.hdr.written_ms ||
          strcmp(r.hdr.cluster, orig.hdr.cluster) ||
          memcmp(r.hdr.writer, orig.hdr.writer, LM_SNAP_ID_LEN))
        changed = 1;
      assert_true(changed);
      noticed++;
      free(c);
    }
  assert_int_equal(refused + noticed, len * 8);
  assert_true(refused > 0 && noticed > 0);
  free(b);
}

static void test_foreign_and_not_snapshot(void **state) {
  (void)state;
  size_t len;
  uint8_t *b = fx_snapshot(3, &len);
  assert_non_null(b);
  uint8_t writer[LM_SNAP_ID_LEN], other[LM_SNAP_ID_LEN];
  fx_id(writer, 0);
  fx_id(other, 1);
  assert_int_equal(open_copy(b, len, "fx", writer), 0);
  assert_int_equal(open_copy(b, len, "prod", writer), LM_STORE_EFOREIGN);
  assert_int_equal(open_copy(b, len, "fx", other), LM_STORE_EFOREIGN);
  assert_int_equal(open_copy(b, len, NULL, other), LM_STORE_EFOREIGN);
  assert_int_equal(open_copy(b, len, "fx", NULL), 0);
  free(b);
  /* something else entirely */
  const char *json = "{\"members\": []}";
  assert_int_equal(open_copy((const uint8_t *)json, strlen(json), NULL, NULL),
                   LM_STORE_ENOTSNAP);
  const uint8_t other_arr[] = {0x92, 0xa3, 'a', 'b', 'c', 0x01};
  assert_int_equal(open_copy(other_arr, sizeof other_arr, NULL, NULL),
                   LM_STORE_ENOTSNAP);
  assert_int_equal(open_copy(NULL, 0, NULL, NULL), LM_STORE_ETRUNC);
  assert_string_equal(lm_snap_strerror(LM_STORE_EFOREIGN),
                      "snapshot of another cluster or node");
  assert_string_equal(lm_snap_strerror(LM_STORE_ETRUNC), "truncated snapshot");
}

static void test_version(void **state) {
  (void)state;
  size_t len;
  uint8_t *b = fx_snapshot(1, &len);
  assert_non_null(b);
  b[1 + 1 + 17] = 2; /* after the array header and the magic */
  assert_int_equal(open_copy(b, len, NULL, NULL), LM_STORE_EVERSION);
  free(b);
}

static void test_writer_checks(void **state) {
  (void)state;
  uint8_t writer[LM_SNAP_ID_LEN];
  fx_id(writer, 0);
  lm_snap_writer_t *w;
  assert_int_equal(lm_snap_writer_new(&w, "", writer, 1, 1), LM_STORE_EINVAL);
  assert_int_equal(lm_snap_writer_new(&w, "fx", writer, -1, 1),
                   LM_STORE_EINVAL);
  assert_int_equal(lm_snap_writer_new(&w, "fx", writer, 1, 2), 0);
  lm_snap_member_t m;
  memset(&m, 0, sizeof m);
  fx_id(m.id, 1);
  /* no name */
  assert_int_equal(lm_snap_writer_member(w, &m, fx_seal, NULL),
                   LM_STORE_EINVAL);
  snprintf(m.name, sizeof m.name, "a");
  m.status = 4;
  assert_int_equal(lm_snap_writer_member(w, &m, fx_seal, NULL),
                   LM_STORE_EINVAL);
  m.status = LM_STORE_ALIVE;
  /* a list of another member */
  size_t rl = 0, bl = 0;
  uint8_t *raw = fx_list(2, 1, &rl, &bl);
  m.svc_raw = raw;
  m.svc_raw_len = rl;
  m.svc_body_len = bl;
  assert_int_equal(lm_snap_writer_member(w, &m, fx_seal, NULL),
                   LM_STORE_EINVAL);
  m.svc_raw = NULL;
  assert_int_equal(lm_snap_writer_member(w, &m, fx_seal, NULL), 0);
  uint8_t *out;
  size_t len;
  /* one member short */
  assert_int_equal(lm_snap_writer_finish(w, &out, &len), LM_STORE_EINVAL);
  assert_null(out);
  free(raw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_prefixes_and_trailing),
      cmocka_unit_test(test_bit_flips),
      cmocka_unit_test(test_foreign_and_not_snapshot),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_writer_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
