/*
 * gen_svc_corpus.c: writes the seed corpus of fuzz_svc_list.
 *
 *   gen_svc_corpus tests/fuzz/corpus/svc_list
 *
 * Valid lists built with lm_svclist_encode (empty, one minimal service, one
 * with every field, four workers of one type, a service at every limit),
 * one hand-packed list carrying a later version's extra fields, and a few
 * near misses (another version, a truncated list, a duplicate uuid). Rerun
 * after changing the list format.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "svc_codec.h"

static const char *g_dir;

static void put(const char *name, const void *p, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "gen_svc_corpus: cannot write %s\n", path);
    exit(1);
  }
}

static void put_list(const char *name, const lm_service_t *s, size_t n) {
  uint8_t id[LM_SVCLIST_ID_LEN];
  for (int i = 0; i < LM_SVCLIST_ID_LEN; i++)
    id[i] = (uint8_t)(i * 3 + 1);
  uint8_t *buf;
  size_t len;
  if (lm_svclist_encode(&buf, &len, id, 3, 42, 1700000000000, s, n) != 0) {
    fprintf(stderr, "gen_svc_corpus: %s does not encode\n", name);
    exit(1);
  }
  put(name, buf, len);
  free(buf);
}

static lm_service_t base(uint8_t k, const char *type) {
  lm_service_t s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < LM_UUID_LEN; i++)
    s.uuid[i] = (uint8_t)(k * 16 + i);
  s.type = type;
  s.worker = -1;
  s.cause = "registered";
  return s;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_svc_corpus DIR\n");
    return 2;
  }
  g_dir = argv[1];
  put_list("empty", NULL, 0);
  lm_service_t one = base(1, "api");
  put_list("one_minimal", &one, 1);

  static const char *tags[] = {"blue", "canary"};
  static const char *keys[] = {"version", "zone"};
  static const char *vals[] = {"1.2.3", "z1"};
  lm_check_state_t chk[2] = {{LM_CHECK_HTTP, LM_SVC_UP, "HTTP 200"},
                             {LM_CHECK_TTL, LM_SVC_DOWN, "ttl expired"}};
  lm_service_t full = base(2, "web");
  full.name = "frontend";
  full.region = "eu-west";
  full.worker = 0;
  full.pid = 1234;
  full.port = 8080;
  full.created_ms = 1699999999000;
  full.status = LM_SVC_MAINT;
  full.since_ms = 1700000000000;
  full.cause = "maintenance";
  full.note = "deploy";
  full.maint_until_ms = 1700000600000;
  full.tags = tags;
  full.ntags = 2;
  full.meta_keys = keys;
  full.meta_values = vals;
  full.nmeta = 2;
  full.checks = chk;
  full.nchecks = 2;
  put_list("one_full", &full, 1);

  lm_service_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = base((uint8_t)(3 + i), "worker");
    w[i].worker = i;
    w[i].status = i == 2 ? LM_SVC_DOWN : LM_SVC_UP;
  }
  put_list("four_workers", w, 4);

  static char big[300];
  memset(big, 'x', sizeof big - 1);
  static const char *many[32];
  static char keybuf[32][65];
  for (int i = 0; i < 32; i++) {
    memset(keybuf[i], 'k', 64);
    keybuf[i][0] = (char)('A' + i);
    keybuf[i][64] = 0;
    many[i] = keybuf[i];
  }
  static const char *mvals[32];
  for (int i = 0; i < 32; i++)
    mvals[i] = big + sizeof big - 1 - LM_SVC_META_VALUE_MAX;
  lm_check_state_t c4[4];
  for (int i = 0; i < 4; i++)
    c4[i] = (lm_check_state_t){LM_CHECK_EXEC, LM_SVC_UP, big};
  lm_service_t lim = base(8, big + sizeof big - 1 - LM_SVC_TYPE_MAX);
  lim.name = big + sizeof big - 1 - LM_SVC_NAME_MAX;
  lim.region = big + sizeof big - 1 - LM_SVC_REGION_MAX;
  lim.cause = big + sizeof big - 1 - LM_SVC_CAUSE_MAX;
  lim.note = big + sizeof big - 1 - LM_SVC_NOTE_MAX;
  lim.tags = many;
  lim.ntags = LM_SVC_TAGS_MAX;
  lim.meta_keys = many;
  lim.meta_values = mvals;
  lim.nmeta = LM_SVC_META_KEYS_MAX;
  lim.checks = c4;
  lim.nchecks = LM_SVC_CHECKS_MAX;
  put_list("at_limits", &lim, 1);

  /* a later version's extra fields, hand-packed */
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  uint8_t id[LM_SVCLIST_ID_LEN] = {7};
  uint8_t u[LM_UUID_LEN] = {9};
  msgpack_pack_array(&pk, 7);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_bin_with_body(&pk, id, sizeof id);
  msgpack_pack_uint32(&pk, 1);
  msgpack_pack_uint64(&pk, 1);
  msgpack_pack_uint64(&pk, 1);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_array(&pk, 17);
  msgpack_pack_bin_with_body(&pk, u, sizeof u);
  msgpack_pack_str_with_body(&pk, "db", 2);
  msgpack_pack_str_with_body(&pk, "", 0);
  msgpack_pack_str_with_body(&pk, "", 0);
  msgpack_pack_int(&pk, -1);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_int(&pk, 5432);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_str_with_body(&pk, "check", 5);
  msgpack_pack_str_with_body(&pk, "", 0);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_array(&pk, 0);
  msgpack_pack_map(&pk, 0);
  msgpack_pack_array(&pk, 0);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str_with_body(&pk, "weight", 6);
  msgpack_pack_double(&pk, 0.5);
  msgpack_pack_str_with_body(&pk, "future", 6);
  put("extra_fields", sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);

  /* near misses */
  uint8_t *buf;
  size_t len;
  if (lm_svclist_encode(&buf, &len, id, 1, 1, 1, w, 4) != 0)
    return 1;
  put("truncated", buf, len - 3);
  buf[1] = 2; /* the version element follows the fixarray byte */
  put("version2", buf, len);
  free(buf);
  /* two services with one uuid: the encoder refuses that, so join the
   * service bodies of two one-service lists under the header of an empty
   * one (whose last byte is the services array header) */
  lm_service_t dup[2] = {base(1, "a"), base(1, "b")};
  uint8_t *b0, *b1, *b2;
  size_t n0, n1, n2;
  if (lm_svclist_encode(&b0, &n0, id, 1, 1, 1, NULL, 0) != 0 ||
      lm_svclist_encode(&b1, &n1, id, 1, 1, 1, &dup[0], 1) != 0 ||
      lm_svclist_encode(&b2, &n2, id, 1, 1, 1, &dup[1], 1) != 0)
    return 1;
  uint8_t *d = malloc(n1 + n2);
  memcpy(d, b0, n0);
  d[n0 - 1] = 0x92;
  memcpy(d + n0, b1 + n0, n1 - n0);
  memcpy(d + n1, b2 + n0, n2 - n0);
  put("dup_uuid", d, n1 + n2 - n0);
  free(d);
  free(b0);
  free(b1);
  free(b2);
  return 0;
}
