/*
 * test_bview.c: the bridge's view of etcd (bridge/view/view.h): which keys
 * a member and a service become in each layout, the values decoded with
 * the shipped .proto's generated code or parsed as JSON, escaping, dead
 * and left members dropped, and the diff: batches within their limits,
 * nothing re-sent once applied, failures re-sent, refusals skipped until
 * the value changes, reconciliation deleting what etcd has but the view
 * does not, and 10,000 services batched by 128.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "livemesh.pb-c.h"
#include "oslively.pb-c.h"
#include "view.h"

/* ---- fixtures ---- */

typedef struct svc_fix {
  lm_service_t s;
  char type[32], host[32], region[16];
} svc_fix_t;

static void mk_svc(svc_fix_t *f, int n, const char *type, const char *host,
                   lm_svc_status_t st) {
  memset(f, 0, sizeof *f);
  for (int i = 0; i < LM_UUID_LEN; i++)
    f->s.uuid[i] = (uint8_t)(n * 31 + i);
  f->s.uuid[0] = (uint8_t)(n >> 8);
  f->s.uuid[1] = (uint8_t)n;
  snprintf(f->type, sizeof f->type, "%s", type);
  snprintf(f->host, sizeof f->host, "%s", host);
  snprintf(f->region, sizeof f->region, "eu");
  f->s.type = f->type;
  f->s.host = f->host;
  f->s.name = "";
  f->s.region = f->region;
  f->s.worker = -1;
  f->s.status = st;
  f->s.cause = "check";
  f->s.note = "";
  f->s.created_ms = 1700000000000;
  f->s.since_ms = 1700000001000;
}

static lm_bv_t *mk_view(lm_bv_layout_t layout, lm_bv_encoding_t enc,
                        const char *prefix) {
  lm_bv_config_t cfg = {.layout = layout, .encoding = enc, .prefix = prefix,
                        .cluster = "prod"};
  lm_bv_t *v = NULL;
  assert_int_equal(lm_bv_new(&v, &cfg), 0);
  return v;
}

/* Takes every batch and marks it applied; returns the ops seen, copied
 * into `out` as "P key" / "D key" lines (when out is given). */
static size_t drain(lm_bv_t *v, json_t *out) {
  lm_bv_op_t ops[128];
  size_t total = 0, n;
  uint64_t b;
  while ((n = lm_bv_next_batch(v, ops, 128, 1 << 20, &b)) > 0) {
    for (size_t i = 0; i < n; i++) {
      if (out) {
        json_t *val = ops[i].is_delete
                          ? json_null()
                          : json_stringn_nocheck((const char *)ops[i].value,
                                                 ops[i].value_len);
        json_object_setn_new_nocheck(out, (const char *)ops[i].key,
                                     ops[i].key_len, val);
      }
    }
    total += n;
    lm_bv_batch_done(v, b, LM_BV_APPLIED);
  }
  return total;
}

static void build(lm_bv_t *v, const lm_bv_member_t *m, size_t nm,
                  const lm_bv_service_t *s, size_t ns) {
  lm_bv_begin(v);
  for (size_t i = 0; i < nm; i++)
    assert_int_equal(lm_bv_add_member(v, &m[i]), 0);
  for (size_t i = 0; i < ns; i++)
    assert_int_equal(lm_bv_add_service(v, &s[i]), 0);
  lm_bv_commit(v);
}

/* ---- tests ---- */

static void test_escape(void **st) {
  (void)st;
  char out[64];
  assert_int_equal(lm_bv_escape(out, sizeof out, "web"), 3);
  assert_string_equal(out, "web");
  lm_bv_escape(out, sizeof out, "a/b%c d");
  assert_string_equal(out, "a%2Fb%25c%20d");
  lm_bv_escape(out, sizeof out, "../x");
  assert_string_equal(out, "..%2Fx");
  /* too small: the needed length, a terminated prefix */
  assert_int_equal(lm_bv_escape(out, 4, "a/b"), 5);
  assert_int_equal(strlen(out), 1);
}

static void test_native_protobuf(void **st) {
  (void)st;
  lm_bv_t *v = mk_view(LM_BV_NATIVE, LM_BV_PROTOBUF, "/livemesh/prod/");
  uint8_t id[32];
  memset(id, 7, sizeof id);
  lm_bv_member_t m = {.name = "node-1", .id = id, .addr = "10.0.0.1:7946",
                      .status = LM_BV_SUSPECT, .generation = 3, .version = 9,
                      .since_ms = 1700000002000, .nservices = 1};
  svc_fix_t f;
  mk_svc(&f, 1, "web/api", "node-1", LM_SVC_UP);
  const char *tags[] = {"a", "b"};
  const char *mk[] = {"k"}, *mv[] = {"v"};
  f.s.tags = tags;
  f.s.ntags = 2;
  f.s.meta_keys = mk;
  f.s.meta_values = mv;
  f.s.nmeta = 1;
  lm_bv_service_t s = {.svc = &f.s, .effective = LM_SVC_UP,
                       .member_status = LM_BV_SUSPECT};
  build(v, &m, 1, &s, 1);

  lm_bv_op_t ops[8];
  uint64_t b;
  size_t n = lm_bv_next_batch(v, ops, 8, 1 << 20, &b);
  assert_int_equal(n, 3); /* schema, member, service */
  int seen = 0;
  char uuid[LM_UUID_STRLEN + 1];
  lm_uuid_format(uuid, f.s.uuid);
  char skey[256];
  snprintf(skey, sizeof skey, "/livemesh/prod/services/web%%2Fapi/node-1/%s",
           uuid);
  for (size_t i = 0; i < n; i++) {
    assert_false(ops[i].is_delete);
    if (ops[i].key_len == strlen("/livemesh/prod/members/node-1") &&
        memcmp(ops[i].key, "/livemesh/prod/members/node-1", ops[i].key_len) ==
            0) {
      Livemesh__V1__Member *pm =
          livemesh__v1__member__unpack(NULL, ops[i].value_len, ops[i].value);
      assert_non_null(pm);
      assert_string_equal(pm->name, "node-1");
      assert_int_equal(pm->status, LIVEMESH__V1__MEMBER_STATUS__SUSPECT);
      assert_int_equal(pm->generation, 3);
      assert_int_equal(pm->version, 9);
      assert_int_equal(pm->id.len, 32);
      assert_string_equal(pm->addr, "10.0.0.1:7946");
      livemesh__v1__member__free_unpacked(pm, NULL);
      seen |= 1;
    } else if (ops[i].key_len == strlen(skey) &&
               memcmp(ops[i].key, skey, ops[i].key_len) == 0) {
      Livemesh__V1__Service *ps =
          livemesh__v1__service__unpack(NULL, ops[i].value_len, ops[i].value);
      assert_non_null(ps);
      assert_string_equal(ps->uuid, uuid);
      assert_string_equal(ps->type, "web/api");
      assert_string_equal(ps->host, "node-1");
      assert_int_equal(ps->status, LIVEMESH__V1__SERVICE_STATUS__UP);
      assert_int_equal(ps->member_status,
                       LIVEMESH__V1__MEMBER_STATUS__SUSPECT);
      assert_int_equal(ps->worker, -1);
      assert_string_equal(ps->region, "eu");
      assert_int_equal(ps->n_tags, 2);
      assert_string_equal(ps->tags[1], "b");
      assert_int_equal(ps->n_meta, 1);
      assert_string_equal(ps->meta[0]->key, "k");
      assert_string_equal(ps->meta[0]->value, "v");
      livemesh__v1__service__free_unpacked(ps, NULL);
      /* os-lively's reader decodes the fields it knows */
      Oslively__Service *po =
          oslively__service__unpack(NULL, ops[i].value_len, ops[i].value);
      assert_non_null(po);
      assert_string_equal(po->type, "web/api");
      assert_int_equal(po->status, OSLIVELY__STATUS__UP);
      assert_string_equal(po->region, "eu");
      oslively__service__free_unpacked(po, NULL);
      seen |= 2;
    } else {
      assert_int_equal(ops[i].key_len, strlen("/livemesh/prod/meta/schema"));
      assert_memory_equal(ops[i].key, "/livemesh/prod/meta/schema",
                          ops[i].key_len);
      Livemesh__V1__Schema *sc =
          livemesh__v1__schema__unpack(NULL, ops[i].value_len, ops[i].value);
      assert_non_null(sc);
      assert_string_equal(sc->encoding, "protobuf");
      assert_string_equal(sc->cluster, "prod");
      livemesh__v1__schema__free_unpacked(sc, NULL);
      seen |= 4;
    }
  }
  assert_int_equal(seen, 7);
  lm_bv_batch_done(v, b, LM_BV_APPLIED);

  /* the same view again: nothing to send */
  build(v, &m, 1, &s, 1);
  assert_int_equal(lm_bv_next_batch(v, ops, 8, 1 << 20, &b), 0);

  /* the service goes down: exactly its key */
  f.s.status = LM_SVC_DOWN;
  s.effective = LM_SVC_DOWN;
  build(v, &m, 1, &s, 1);
  assert_int_equal(lm_bv_next_batch(v, ops, 8, 1 << 20, &b), 1);
  assert_int_equal(ops[0].key_len, strlen(skey));
  lm_bv_batch_done(v, b, LM_BV_APPLIED);

  /* the member dies: its key and its service's are deleted */
  m.status = LM_BV_DEAD;
  s.member_status = LM_BV_DEAD;
  build(v, &m, 1, &s, 1);
  n = lm_bv_next_batch(v, ops, 8, 1 << 20, &b);
  assert_int_equal(n, 2);
  assert_true(ops[0].is_delete && ops[1].is_delete);
  lm_bv_batch_done(v, b, LM_BV_APPLIED);
  lm_bv_counts_t c;
  lm_bv_counts(v, &c);
  assert_int_equal(c.keys_wanted, 1); /* the schema */
  assert_int_equal(c.keys_differ, 0);
  lm_bv_free(v);
}

static void test_native_json(void **st) {
  (void)st;
  lm_bv_t *v = mk_view(LM_BV_NATIVE, LM_BV_JSON, "/lm/");
  lm_bv_member_t m = {.name = "n1", .addr = "127.0.0.1:1",
                      .status = LM_BV_ALIVE, .since_ms = 1700000000123};
  svc_fix_t f;
  mk_svc(&f, 2, "db", "n1", LM_SVC_MAINT);
  lm_bv_service_t s = {.svc = &f.s, .effective = LM_SVC_MAINT,
                       .member_status = LM_BV_ALIVE};
  build(v, &m, 1, &s, 1);
  json_t *out = json_object();
  assert_int_equal(drain(v, out), 3);
  json_error_t jerr;
  json_t *mem = json_loads(
      json_string_value(json_object_get(out, "/lm/members/n1")), 0, &jerr);
  assert_non_null(mem);
  assert_string_equal(json_string_value(json_object_get(mem, "status")),
                      "alive");
  assert_string_equal(json_string_value(json_object_get(mem, "since")),
                      "2023-11-14T22:13:20.123Z");
  json_decref(mem);
  char uuid[LM_UUID_STRLEN + 1], key[128];
  lm_uuid_format(uuid, f.s.uuid);
  snprintf(key, sizeof key, "/lm/services/db/n1/%s", uuid);
  json_t *svc = json_loads(json_string_value(json_object_get(out, key)), 0,
                           &jerr);
  assert_non_null(svc);
  assert_string_equal(json_string_value(json_object_get(svc, "status")),
                      "maintenance");
  assert_string_equal(json_string_value(json_object_get(svc, "uuid")), uuid);
  assert_int_equal(json_integer_value(json_object_get(svc, "worker")), -1);
  json_decref(svc);
  json_t *schema = json_loads(
      json_string_value(json_object_get(out, "/lm/meta/schema")), 0, &jerr);
  assert_string_equal(json_string_value(json_object_get(schema, "encoding")),
                      "json");
  json_decref(schema);
  json_decref(out);
  lm_bv_free(v);
}

static void test_oslively(void **st) {
  (void)st;
  lm_bv_t *v = mk_view(LM_BV_OSLIVELY, LM_BV_PROTOBUF, "ns");
  const uint8_t *rs, *re;
  size_t rsl, rel;
  lm_bv_range(v, &rs, &rsl, &re, &rel);
  assert_int_equal(rsl, strlen("/ns/services/"));
  assert_memory_equal(rs, "/ns/services/", rsl);
  assert_memory_equal(re, "/ns/services0", rel);

  /* two workers of one type on one host: the up one is named */
  svc_fix_t a, b;
  mk_svc(&a, 1, "nova-compute", "h1", LM_SVC_DOWN);
  mk_svc(&b, 2, "nova-compute", "h1", LM_SVC_UP);
  lm_bv_service_t s[2] = {
      {.svc = &a.s, .effective = LM_SVC_DOWN, .member_status = LM_BV_ALIVE},
      {.svc = &b.s, .effective = LM_SVC_UP, .member_status = LM_BV_ALIVE}};
  build(v, NULL, 0, s, 2);
  json_t *out = json_object();
  drain(v, out);
  char ua[40], ub[40], key[128];
  lm_uuid_format(ua, a.s.uuid);
  lm_uuid_format(ub, b.s.uuid);
  assert_string_equal(
      json_string_value(json_object_get(out, "/ns/services/by-type-host/nova-compute/h1")),
      ub);
  snprintf(key, sizeof key, "/ns/services/by-status/UP/%s", ub);
  assert_string_equal(json_string_value(json_object_get(out, key)), "");
  snprintf(key, sizeof key, "/ns/services/by-status/DOWN/%s", ua);
  assert_string_equal(json_string_value(json_object_get(out, key)), "");
  snprintf(key, sizeof key, "/ns/services/by-region/eu/%s", ua);
  assert_non_null(json_object_get(out, key));
  snprintf(key, sizeof key, "/ns/services/by-uuid/%s", ua);
  const char *val = json_string_value(json_object_get(out, key));
  assert_non_null(val);
  size_t vl = json_string_length(json_object_get(out, key));
  Oslively__Service *po =
      oslively__service__unpack(NULL, vl, (const uint8_t *)val);
  assert_non_null(po);
  assert_string_equal(po->uuid, ua);
  assert_string_equal(po->host, "h1");
  assert_int_equal(po->status, OSLIVELY__STATUS__DOWN);
  oslively__service__free_unpacked(po, NULL);
  /* 2 by-uuid, 1 by-type-host, 2 by-status, 2 by-region */
  assert_int_equal(json_object_size(out), 7);
  json_decref(out);

  /* the up one goes down: by-status moves, by-type-host falls back to the
   * lowest uuid (a), whatever the order of adds */
  b.s.status = LM_SVC_DOWN;
  s[1].effective = LM_SVC_DOWN;
  lm_bv_service_t rev[2] = {s[1], s[0]};
  build(v, NULL, 0, rev, 2);
  out = json_object();
  drain(v, out);
  assert_string_equal(
      json_string_value(json_object_get(out, "/ns/services/by-type-host/nova-compute/h1")),
      ua);
  snprintf(key, sizeof key, "/ns/services/by-status/UP/%s", ub);
  assert_true(json_is_null(json_object_get(out, key)));
  snprintf(key, sizeof key, "/ns/services/by-status/DOWN/%s", ub);
  assert_string_equal(json_string_value(json_object_get(out, key)), "");
  json_decref(out);
  lm_bv_free(v);
}

static void test_failed_refused_reconcile(void **st) {
  (void)st;
  lm_bv_t *v = mk_view(LM_BV_NATIVE, LM_BV_PROTOBUF, "/p/");
  svc_fix_t f;
  mk_svc(&f, 3, "t", "h", LM_SVC_UP);
  lm_bv_service_t s = {.svc = &f.s, .effective = LM_SVC_UP,
                       .member_status = LM_BV_ALIVE};
  build(v, NULL, 0, &s, 1);
  lm_bv_op_t ops[8];
  uint64_t b;
  assert_int_equal(lm_bv_next_batch(v, ops, 8, 1 << 20, &b), 2);
  /* while in flight, nothing more to take */
  uint64_t b2;
  assert_int_equal(lm_bv_next_batch(v, ops, 8, 1 << 20, &b2), 0);
  lm_bv_batch_done(v, b, LM_BV_FAILED);
  assert_int_equal(lm_bv_next_batch(v, ops, 8, 1 << 20, &b), 2);
  lm_bv_batch_done(v, b, LM_BV_REFUSED);
  assert_int_equal(lm_bv_next_batch(v, ops, 8, 1 << 20, &b), 0);
  lm_bv_counts_t c;
  lm_bv_counts(v, &c);
  assert_int_equal(c.refused, 2);
  /* a changed value is tried again */
  f.s.status = LM_SVC_DOWN;
  s.effective = LM_SVC_DOWN;
  build(v, NULL, 0, &s, 1);
  assert_int_equal(lm_bv_next_batch(v, ops, 8, 1 << 20, &b), 1);
  lm_bv_batch_done(v, b, LM_BV_APPLIED);

  /* reconciliation: etcd has a stranger, the leader key and a key outside
   * the range; the stranger is deleted, our keys re-put, the rest kept */
  lm_bv_reconcile_begin(v);
  const char *keys[] = {"/p/services/x/y/00000000-0000-0000-0000-000000000000",
                        "/p/bridge/leader", "/q/other"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(lm_bv_reconcile_key(v, (const uint8_t *)keys[i],
                                         strlen(keys[i])),
                     0);
  json_t *out = json_object();
  assert_int_equal(drain(v, out), 3);
  assert_true(json_is_null(json_object_get(out, keys[0])));
  assert_null(json_object_get(out, keys[1]));
  assert_null(json_object_get(out, keys[2]));
  json_decref(out);
  lm_bv_free(v);
}

static void test_many_batches(void **st) {
  (void)st;
  lm_bv_t *v = mk_view(LM_BV_NATIVE, LM_BV_PROTOBUF, "/p/");
  enum { N = 10000 };
  svc_fix_t *f = calloc(N, sizeof *f);
  lm_bv_service_t *s = calloc(N, sizeof *s);
  for (int i = 0; i < N; i++) {
    char host[16];
    snprintf(host, sizeof host, "h%d", i % 100);
    mk_svc(&f[i], i, "svc", host, LM_SVC_UP);
    s[i].svc = &f[i].s;
    s[i].effective = LM_SVC_UP;
    s[i].member_status = LM_BV_ALIVE;
  }
  build(v, NULL, 0, s, N);
  lm_bv_op_t ops[128];
  size_t total = 0, n, batches = 0;
  uint64_t b;
  while ((n = lm_bv_next_batch(v, ops, 128, 1 << 20, &b)) > 0) {
    assert_true(n <= 128);
    total += n;
    batches++;
    lm_bv_batch_done(v, b, LM_BV_APPLIED);
  }
  assert_int_equal(total, N + 1);
  assert_int_equal(batches, (N + 1 + 127) / 128);
  /* a byte budget cuts batches short */
  for (int i = 0; i < N; i++)
    s[i].effective = LM_SVC_DOWN, f[i].s.status = LM_SVC_DOWN;
  build(v, NULL, 0, s, N);
  n = lm_bv_next_batch(v, ops, 128, 2000, &b);
  assert_true(n >= 1 && n < 128);
  lm_bv_batch_done(v, b, LM_BV_FAILED);
  /* everything gone from the view: N deletes, schema stays */
  build(v, NULL, 0, NULL, 0);
  json_t *out = json_object();
  assert_int_equal(drain(v, out), N);
  json_decref(out);
  lm_bv_counts_t c;
  lm_bv_counts(v, &c);
  assert_int_equal(c.keys_wanted, 1);
  free(f);
  free(s);
  lm_bv_free(v);
}

static void test_bad_config(void **st) {
  (void)st;
  lm_bv_t *v = NULL;
  lm_bv_config_t cfg = {.layout = LM_BV_NATIVE, .prefix = "/no-slash"};
  assert_int_equal(lm_bv_new(&v, &cfg), -1);
  cfg.prefix = "";
  assert_int_equal(lm_bv_new(&v, &cfg), -1);
  cfg.prefix = "/ok/";
  cfg.layout = 7;
  assert_int_equal(lm_bv_new(&v, &cfg), -1);
  assert_null(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escape),
      cmocka_unit_test(test_native_protobuf),
      cmocka_unit_test(test_native_json),
      cmocka_unit_test(test_oslively),
      cmocka_unit_test(test_failed_refused_reconcile),
      cmocka_unit_test(test_many_batches),
      cmocka_unit_test(test_bad_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
