/*
 * snap_fixture.h: sample snapshots for the codec's tests, its fuzz target
 * and its seed corpus (store/snapshot.h). Pure like store/: the seal is a
 * stand-in checksum, not the runtime's MAC; certificates are opaque bytes
 * to the codec.
 */
#ifndef LIVEMESH_TESTS_SNAP_FIXTURE_H
#define LIVEMESH_TESTS_SNAP_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "svc_codec.h"

/* A stand-in seal: FNV-1a over head || obs, spread over 32 bytes. */
static inline void fx_seal(void *ud, uint8_t seal[LM_SNAP_SEAL_LEN],
                           const uint8_t *head, size_t hl, const uint8_t *obs,
                           size_t ol) {
  (void)ud;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < hl; i++)
    h = (h ^ head[i]) * 1099511628211ull;
  for (size_t i = 0; i < ol; i++)
    h = (h ^ obs[i]) * 1099511628211ull;
  for (int i = 0; i < LM_SNAP_SEAL_LEN; i++) {
    h = (h ^ (uint64_t)i) * 1099511628211ull;
    seal[i] = (uint8_t)(h >> 56);
  }
}

static inline void fx_id(uint8_t id[LM_SNAP_ID_LEN], int n) {
  for (int i = 0; i < LM_SNAP_ID_LEN; i++)
    id[i] = (uint8_t)(n * 37 + i);
}

/* A signed-looking list for member `n`: the body, then 64 bytes standing
 * in for its signature. *body_len gets the body's length. */
static inline uint8_t *fx_list(int n, size_t nsvc, size_t *raw_len,
                               size_t *body_len) {
  uint8_t id[LM_SNAP_ID_LEN];
  fx_id(id, n);
  lm_service_t s[4];
  memset(s, 0, sizeof s);
  static const char *types[] = {"api", "web", "db", "cache"};
  for (size_t i = 0; i < nsvc && i < 4; i++) {
    for (int k = 0; k < LM_UUID_LEN; k++)
      s[i].uuid[k] = (uint8_t)(n * 16 + (int)i * 3 + k);
    s[i].type = types[i];
    s[i].worker = -1;
    s[i].cause = "registered";
    s[i].status = i == 1 ? LM_SVC_DOWN : LM_SVC_UP;
    s[i].since_ms = 1700000000000 + (int64_t)i;
  }
  uint8_t *body;
  size_t bl;
  if (lm_svclist_encode(&body, &bl, id, 7, ((uint64_t)7 << 32) | 3,
                        1700000001000, s, nsvc < 4 ? nsvc : 4))
    return NULL;
  uint8_t *raw = malloc(bl + 64);
  if (!raw) {
    free(body);
    return NULL;
  }
  memcpy(raw, body, bl);
  memset(raw + bl, 0x5a, 64);
  free(body);
  *raw_len = bl + 64;
  *body_len = bl;
  return raw;
}

/* A snapshot by node 0 of cluster "fx" holding `nmembers` members (member
 * i hosts i % 4 services; every third has no list). */
static inline uint8_t *fx_snapshot(size_t nmembers, size_t *len) {
  uint8_t writer[LM_SNAP_ID_LEN];
  fx_id(writer, 0);
  lm_snap_writer_t *w;
  if (lm_snap_writer_new(&w, "fx", writer, 1700000002000, nmembers))
    return NULL;
  for (size_t i = 0; i < nmembers; i++) {
    lm_snap_member_t m;
    memset(&m, 0, sizeof m);
    fx_id(m.id, (int)i);
    snprintf(m.name, sizeof m.name, "node-%zu", i);
    snprintf(m.addr, sizeof m.addr, "127.0.0.1:%zu", 7000 + i);
    m.status = (int)(i % 4);
    m.gen = 7;
    m.ver = (uint32_t)i;
    m.since_ms = 1700000000000 + (int64_t)i;
    uint8_t cert[130];
    memset(cert, (int)i, sizeof cert);
    m.cert = cert;
    m.cert_len = sizeof cert;
    uint8_t *raw = NULL;
    if (i % 3 != 2) {
      raw = fx_list((int)i, i % 4, &m.svc_raw_len, &m.svc_body_len);
      m.svc_raw = raw;
    }
    int rc = lm_snap_writer_member(w, &m, fx_seal, NULL);
    free(raw);
    if (rc) {
      lm_snap_writer_free(w);
      return NULL;
    }
  }
  uint8_t *out;
  if (lm_snap_writer_finish(w, &out, len))
    return NULL;
  return out;
}

#endif
