/*
 * test_svc_json.c: the JSON of services (mesh/agent/svc_json.c): the
 * register body parser accepting a full body and refusing each bad input
 * with the field named; durations; the shapes of a service, an is-up
 * answer and a watch event, key by key and type by type as INTERFACES.md
 * lists them; and the client's socket path rule agreeing with the CLI's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_internal.h"
#include "control.h"
#include "socket_path.h"
#include "svc_json.h"

#define UUID1 "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

static json_t *load(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
  if (!j)
    fail_msg("test JSON does not parse: %s: %s", text, je.text);
  return j;
}

/* ---- register bodies ---- */

static const char FULL[] =
    "{\"cmd\":\"register\",\"id\":3,\"type\":\"api\",\"name\":\"api-2\","
    "\"uuid\":\"" UUID1 "\",\"pid\":4242,\"worker\":2,\"region\":\"eu-1\","
    "\"port\":8080,\"tags\":[\"blue\",\"v2\"],\"meta\":{\"version\":\"1.4\","
    "\"owner\":\"team-a\"},\"http_check\":\"http://127.0.0.1:8080/health\","
    "\"interval\":\"2s\",\"timeout\":0.5,\"failures_before_down\":3,"
    "\"successes_before_up\":2,\"ephemeral\":true}";

static void test_full_body(void **state) {
  (void)state;
  json_t *b = load(FULL);
  lm__spec_buf_t sb;
  int eph = -1;
  char err[512];
  assert_int_equal(lm__spec_from_json(b, &sb, &eph, err, sizeof err), 0);
  const lm_service_spec_t *s = &sb.spec;
  assert_string_equal(s->type, "api");
  assert_string_equal(s->name, "api-2");
  assert_string_equal(s->region, "eu-1");
  assert_non_null(s->uuid);
  char u[LM_UUID_STRLEN + 1];
  lm_uuid_format(u, s->uuid);
  assert_string_equal(u, UUID1);
  assert_int_equal(s->pid, 4242);
  assert_int_equal(s->worker, 2);
  assert_int_equal(s->port, 8080);
  assert_int_equal(s->ntags, 2);
  assert_string_equal(s->tags[0], "blue");
  assert_string_equal(s->tags[1], "v2");
  assert_int_equal(s->nmeta, 2);
  assert_string_equal(s->meta_keys[0], "version");
  assert_string_equal(s->meta_values[0], "1.4");
  assert_string_equal(s->meta_keys[1], "owner");
  assert_string_equal(s->meta_values[1], "team-a");
  assert_string_equal(s->http_check, "http://127.0.0.1:8080/health");
  assert_null(s->tcp_check);
  assert_null(s->exec_check);
  assert_int_equal(s->ttl_ms, 0);
  assert_int_equal(s->interval_ms, 2000);
  assert_int_equal(s->timeout_ms, 500);
  assert_int_equal(s->failures_before_down, 3);
  assert_int_equal(s->successes_before_up, 2);
  assert_int_equal(eph, 1);

  /* what the client library sends for this spec parses back the same */
  json_t *again = lm__spec_to_json(s, eph);
  assert_non_null(again);
  lm__spec_buf_t sb2;
  int eph2 = 0;
  assert_int_equal(lm__spec_from_json(again, &sb2, &eph2, err, sizeof err),
                   0);
  const lm_service_spec_t *t = &sb2.spec;
  assert_string_equal(t->type, s->type);
  assert_string_equal(t->name, s->name);
  assert_string_equal(t->region, s->region);
  assert_memory_equal(t->uuid, s->uuid, LM_UUID_LEN);
  assert_int_equal(t->pid, s->pid);
  assert_int_equal(t->worker, s->worker);
  assert_int_equal(t->port, s->port);
  assert_int_equal(t->ntags, s->ntags);
  assert_int_equal(t->nmeta, s->nmeta);
  assert_string_equal(t->meta_values[1], s->meta_values[1]);
  assert_string_equal(t->http_check, s->http_check);
  assert_int_equal(t->interval_ms, s->interval_ms);
  assert_int_equal(t->timeout_ms, s->timeout_ms);
  assert_int_equal(t->failures_before_down, s->failures_before_down);
  assert_int_equal(t->successes_before_up, s->successes_before_up);
  assert_int_equal(eph2, 1);
  lm__spec_buf_free(&sb2);
  json_decref(again);
  lm__spec_buf_free(&sb);
  json_decref(b);
}

static void test_minimal_body(void **state) {
  (void)state;
  json_t *b = load("{\"type\":\"db\",\"name\":null,\"ttl\":\"30s\"}");
  lm__spec_buf_t sb;
  char err[256];
  assert_int_equal(lm__spec_from_json(b, &sb, NULL, err, sizeof err), 0);
  assert_string_equal(sb.spec.type, "db");
  assert_string_equal(sb.spec.name, "");
  assert_string_equal(sb.spec.region, "");
  assert_null(sb.spec.uuid);
  assert_int_equal(sb.spec.worker, -1);
  assert_int_equal(sb.spec.pid, 0);
  assert_int_equal(sb.spec.port, 0);
  assert_int_equal(sb.spec.ttl_ms, 30000);
  lm__spec_buf_free(&sb);
  json_decref(b);
  /* other single checks */
  const char *ok[] = {
      "{\"type\":\"db\",\"tcp_check\":\"db.internal:5432\"}",
      "{\"type\":\"db\",\"tcp_check\":\"[::1]:5432\",\"timeout\":\"1s\"}",
      "{\"type\":\"db\",\"exec_check\":\"pg_isready -q\",\"interval\":5}",
      "{\"type\":\"web\",\"http_check\":\"https://[::1]/\"}",
      "{\"type\":\"web\",\"pid\":0,\"worker\":0,\"tags\":[],\"meta\":{}}",
      "{\"type\":\"web\",\"ephemeral\":false}",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    b = load(ok[i]);
    int rc = lm__spec_from_json(b, &sb, NULL, err, sizeof err);
    if (rc)
      fail_msg("refused %s: %s", ok[i], err);
    lm__spec_buf_free(&sb);
    json_decref(b);
  }
}

typedef struct bad {
  const char *body;  /* JSON text; NULL: built by the test */
  const char *field; /* the field named in out->field */
  const char *msg;   /* a part of the message */
} bad_t;

static void expect_bad(json_t *b, const char *what, const char *field,
                       const char *msg, lm__field_names_t names,
                       int allow_ephemeral) {
  lm__spec_buf_t sb;
  char err[512];
  int eph = 7;
  int rc = lm__spec_from_json_named(b, &sb, allow_ephemeral ? &eph : NULL,
                                    names, err, sizeof err);
  if (rc != -1)
    fail_msg("accepted %s", what);
  if (strcmp(sb.field, field))
    fail_msg("%s: field \"%s\", wanted \"%s\" (%s)", what, sb.field, field,
             err);
  if (!strstr(err, msg))
    fail_msg("%s: message \"%s\" lacks \"%s\"", what, err, msg);
  /* the message names the field as the caller asked */
  char named[64];
  if (names == LM__NAMES_JSON)
    snprintf(named, sizeof named, "\"%s\"", field);
  else
    snprintf(named, sizeof named, "--");
  if (!strstr(err, named))
    fail_msg("%s: message \"%s\" does not name %s", what, err, named);
  assert_int_equal(sb.nowned, 0); /* nothing left to free */
  if (allow_ephemeral)
    assert_int_equal(eph, 0);
}

static void test_bad_bodies(void **state) {
  (void)state;
  static const bad_t BAD[] = {
      {"{\"type\":\"a\",\"foo\":1}", "foo", "unknown field \"foo\""},
      {"{\"name\":\"x\"}", "type", "required"},
      {"{\"type\":\"\"}", "type", "empty"},
      {"{\"type\":7}", "type", "string, got a whole number"},
      {"{\"type\":\"a/b\"}", "type", "'/'"},
      {"{\"type\":\"a b\"}", "type", "space"},
      {"{\"type\":\"a\",\"name\":[]}", "name", "got an array"},
      {"{\"type\":\"a\",\"region\":\"r\\u0001\"}", "region", "control"},
      {"{\"type\":\"a\",\"name\":\"x\\u0000y\"}", "name", "NUL"},
      {"{\"type\":\"a\",\"uuid\":\"not-a-uuid\"}", "uuid", "UUID"},
      {"{\"type\":\"a\",\"uuid\":5}", "uuid", "UUID"},
      {"{\"type\":\"a\",\"pid\":-1}", "pid", "got -1"},
      {"{\"type\":\"a\",\"pid\":\"12\"}", "pid", "whole number"},
      {"{\"type\":\"a\",\"pid\":1.5}", "pid", "whole number"},
      {"{\"type\":\"a\",\"pid\":4294967296}", "pid", "whole number"},
      {"{\"type\":\"a\",\"worker\":-2}", "worker", "from -1"},
      {"{\"type\":\"a\",\"port\":0}", "port", "from 1 to 65535"},
      {"{\"type\":\"a\",\"port\":65536}", "port", "from 1 to 65535"},
      {"{\"type\":\"a\",\"tags\":\"x\"}", "tags", "array"},
      {"{\"type\":\"a\",\"tags\":[1]}", "tags", "tag as a string"},
      {"{\"type\":\"a\",\"tags\":[\"\"]}", "tags", "empty"},
      {"{\"type\":\"a\",\"tags\":[\"x\",\"x\"]}", "tags", "twice"},
      {"{\"type\":\"a\",\"meta\":[]}", "meta", "object"},
      {"{\"type\":\"a\",\"meta\":{\"k\":1}}", "meta", "string"},
      {"{\"type\":\"a\",\"meta\":{\"\":\"v\"}}", "meta", "empty"},
      {"{\"type\":\"a\",\"ttl\":0}", "ttl", "longer than 0"},
      {"{\"type\":\"a\",\"ttl\":\"0s\"}", "ttl", "longer than 0"},
      {"{\"type\":\"a\",\"ttl\":\"soon\"}", "ttl", "duration"},
      {"{\"type\":\"a\",\"ttl\":-5}", "ttl", "duration"},
      {"{\"type\":\"a\",\"ttl\":\"-5s\"}", "ttl", "duration"},
      {"{\"type\":\"a\",\"ttl\":true}", "ttl", "duration"},
      {"{\"type\":\"a\",\"ttl\":\"99999999999999999999h\"}", "ttl",
       "out of range"},
      {"{\"type\":\"a\",\"ttl\":\"50d\"}", "ttl", "duration"},
      {"{\"type\":\"a\",\"ttl\":\"2000h\"}", "ttl", "out of range"},
      {"{\"type\":\"a\",\"http_check\":\"ftp://x/\"}", "http_check", "URL"},
      {"{\"type\":\"a\",\"http_check\":\"http://\"}", "http_check", "URL"},
      {"{\"type\":\"a\",\"http_check\":\"http:///x\"}", "http_check", "URL"},
      {"{\"type\":\"a\",\"http_check\":\"http://h:0/\"}", "http_check",
       "URL"},
      {"{\"type\":\"a\",\"http_check\":\"http://a b/\"}", "http_check",
       "URL"},
      {"{\"type\":\"a\",\"http_check\":\"http://u:p@h/\"}", "http_check",
       "URL"},
      {"{\"type\":\"a\",\"tcp_check\":\"db\"}", "tcp_check", "HOST:PORT"},
      {"{\"type\":\"a\",\"tcp_check\":\"db:\"}", "tcp_check", "HOST:PORT"},
      {"{\"type\":\"a\",\"tcp_check\":\":80\"}", "tcp_check", "HOST:PORT"},
      {"{\"type\":\"a\",\"tcp_check\":\"db:70000\"}", "tcp_check",
       "HOST:PORT"},
      {"{\"type\":\"a\",\"tcp_check\":\"::1:80\"}", "tcp_check", "HOST:PORT"},
      {"{\"type\":\"a\",\"exec_check\":\"\"}", "exec_check", "empty"},
      {"{\"type\":\"a\",\"ttl\":\"5s\",\"http_check\":\"http://h/\"}",
       "http_check", "only one check"},
      {"{\"type\":\"a\",\"tcp_check\":\"h:1\",\"exec_check\":\"true\"}",
       "exec_check", "only one check"},
      {"{\"type\":\"a\",\"interval\":\"5s\"}", "interval", "only applies"},
      {"{\"type\":\"a\",\"ttl\":\"5s\",\"timeout\":\"1s\"}", "timeout",
       "only applies"},
      {"{\"type\":\"a\",\"tcp_check\":\"h:1\",\"interval\":\"1s\","
       "\"timeout\":\"2s\"}",
       "timeout", "shorter than the interval"},
      {"{\"type\":\"a\",\"tcp_check\":\"h:1\",\"interval\":0}", "interval",
       "longer than 0"},
      {"{\"type\":\"a\",\"failures_before_down\":0}", "failures_before_down",
       "from 1"},
      {"{\"type\":\"a\",\"successes_before_up\":\"2\"}",
       "successes_before_up", "whole number"},
      {"{\"type\":\"a\",\"ephemeral\":\"yes\"}", "ephemeral",
       "true or false"},
  };
  for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
    json_t *b = load(BAD[i].body);
    expect_bad(b, BAD[i].body, BAD[i].field, BAD[i].msg, LM__NAMES_JSON, 1);
    json_decref(b);
  }

  /* over the limits of service.h, built */
  char big[LM_SVC_META_VALUE_MAX + 2];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  json_t *b = json_pack("{s:s, s:s%}", "type", "a", "name", big,
                        (size_t)LM_SVC_NAME_MAX + 1);
  expect_bad(b, "a long name", "name", "at most 64", LM__NAMES_JSON, 1);
  json_decref(b);
  b = json_pack("{s:s%}", "type", big, (size_t)LM_SVC_TYPE_MAX + 1);
  expect_bad(b, "a long type", "type", "at most 64", LM__NAMES_JSON, 1);
  json_decref(b);
  json_t *tags = json_array();
  for (int i = 0; i <= LM_SVC_TAGS_MAX; i++) {
    char t[16];
    snprintf(t, sizeof t, "t%d", i);
    json_array_append_new(tags, json_string(t));
  }
  b = json_pack("{s:s, s:o}", "type", "a", "tags", tags);
  expect_bad(b, "17 tags", "tags", "at most 16", LM__NAMES_JSON, 1);
  json_decref(b);
  b = json_pack("{s:s, s:[s%]}", "type", "a", "tags", big,
                (size_t)LM_SVC_TAG_MAX + 1);
  expect_bad(b, "a long tag", "tags", "at most 64", LM__NAMES_JSON, 1);
  json_decref(b);
  json_t *meta = json_object();
  for (int i = 0; i <= LM_SVC_META_KEYS_MAX; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    json_object_set_new(meta, k, json_string("v"));
  }
  b = json_pack("{s:s, s:o}", "type", "a", "meta", meta);
  expect_bad(b, "33 meta keys", "meta", "at most 32", LM__NAMES_JSON, 1);
  json_decref(b);
  char key[LM_SVC_META_KEY_MAX + 2];
  memset(key, 'k', sizeof key - 1);
  key[sizeof key - 1] = 0;
  b = json_pack("{s:s, s:{s:s}}", "type", "a", "meta", key, "v");
  expect_bad(b, "a long meta key", "meta", "at most 64", LM__NAMES_JSON, 1);
  json_decref(b);
  b = json_pack("{s:s, s:{s:s}}", "type", "a", "meta", "k", big);
  expect_bad(b, "a long meta value", "meta", "at most 256", LM__NAMES_JSON,
             1);
  json_decref(b);

  /* ephemeral where no connection can hold it */
  b = load("{\"type\":\"a\",\"ephemeral\":true}");
  expect_bad(b, "ephemeral without a connection", "ephemeral", "not possible",
             LM__NAMES_JSON, 0);
  json_decref(b);

  /* not an object */
  lm__spec_buf_t sb;
  char err[256];
  b = load("[1]");
  assert_int_equal(lm__spec_from_json(b, &sb, NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, "JSON object"));
  json_decref(b);
}

static void test_flag_names(void **state) {
  (void)state;
  static const struct {
    const char *body, *flag;
  } F[] = {
      {"{\"type\":\"a\",\"ttl\":\"x\"}", "--ttl:"},
      {"{\"type\":\"a\",\"http_check\":\"x\"}", "--http-check:"},
      {"{\"type\":\"a\",\"tcp_check\":\"x\"}", "--tcp-check:"},
      {"{\"type\":\"a\",\"tags\":[\"\"]}", "--tag:"},
      {"{\"type\":\"a\",\"meta\":{\"k\":1}}", "--meta:"},
      {"{\"type\":\"a\",\"port\":0}", "--port:"},
      {"{}", "--type:"},
  };
  for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
    json_t *b = load(F[i].body);
    lm__spec_buf_t sb;
    char err[512];
    assert_int_equal(lm__spec_from_json_named(b, &sb, NULL, LM__NAMES_FLAGS,
                                              err, sizeof err),
                     -1);
    if (strncmp(err, F[i].flag, strlen(F[i].flag)))
      fail_msg("%s: \"%s\" does not start with %s", F[i].body, err,
               F[i].flag);
    json_decref(b);
  }
  json_t *b = load("{\"type\":\"a\",\"ttl\":\"1s\",\"exec_check\":\"x\"}");
  lm__spec_buf_t sb;
  char err[512];
  assert_int_equal(lm__spec_from_json_named(b, &sb, NULL, LM__NAMES_FLAGS,
                                            err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "--ttl and --exec-check"));
  json_decref(b);
}

/* ---- durations ---- */

static void test_durations(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int rc;
    uint64_t ms;
  } D[] = {
      {"500ms", 0, 500},   {"30s", 0, 30000},     {"5m", 0, 300000},
      {"1h", 0, 3600000},  {"30", 0, 30000},      {"0", 0, 0},
      {"0s", 0, 0},        {"1.5s", 0, 1500},     {"0.5", 0, 500},
      {"1.5m", 0, 90000},  {"0.001", 0, 1},       {"2.50h", 0, 9000000},
      {"1.5ms", -2, 0},    {"0.0001s", -2, 0},    {"", -1, 0},
      {"s", -1, 0},        {"ms", -1, 0},         {"-1s", -1, 0},
      {"+1s", -1, 0},      {" 1s", -1, 0},        {"1s ", -1, 0},
      {"1 s", -1, 0},      {"1d", -1, 0},         {"1S", -1, 0},
      {"1h30m", -1, 0},    {".5s", -1, 0},        {"5.s", -1, 0},
      {"1e3", -1, 0},      {"0x10", -1, 0},       {"abc", -1, 0},
      {"18446744073709551616ms", -2, 0},          {"5124095576030432h", -2, 0},
      {"18446744073709551615ms", 0, UINT64_MAX},
      /* from the checks module's former parser's tests */
      {"5sec", -1, 0},     {"5mss", -1, 0},       {"5s ", -1, 0},
      {"18446744073709551615s", -2, 0},           {"99999999999999999999999", -2, 0},
  };
  for (size_t i = 0; i < sizeof D / sizeof D[0]; i++) {
    uint64_t ms = 12345;
    int rc = lm__duration_parse(D[i].s, &ms);
    if (rc != D[i].rc)
      fail_msg("\"%s\": %d, wanted %d", D[i].s, rc, D[i].rc);
    if (rc == 0 && ms != D[i].ms)
      fail_msg("\"%s\": %llu ms, wanted %llu", D[i].s, (unsigned long long)ms,
               (unsigned long long)D[i].ms);
  }
  assert_int_equal(lm__duration_parse(NULL, &(uint64_t){0}), -1);

  /* JSON: a number is seconds */
  uint64_t ms;
  json_t *v = json_integer(30);
  assert_int_equal(lm__duration_json(v, &ms), 0);
  assert_int_equal(ms, 30000);
  json_decref(v);
  v = json_real(0.25);
  assert_int_equal(lm__duration_json(v, &ms), 0);
  assert_int_equal(ms, 250);
  json_decref(v);
  v = json_real(0.0001);
  assert_int_equal(lm__duration_json(v, &ms), -2);
  json_decref(v);
  v = json_integer(-1);
  assert_int_equal(lm__duration_json(v, &ms), -1);
  json_decref(v);
  v = json_real(-0.5);
  assert_int_equal(lm__duration_json(v, &ms), -1);
  json_decref(v);
  v = json_string("5m");
  assert_int_equal(lm__duration_json(v, &ms), 0);
  assert_int_equal(ms, 300000);
  json_decref(v);
  v = json_null();
  assert_int_equal(lm__duration_json(v, &ms), -1);

  char b[32];
  static const struct {
    uint64_t ms;
    const char *s;
  } FMT[] = {{0, "0s"},        {1500, "1500ms"}, {30000, "30s"},
             {300000, "5m"},   {5400000, "1h30m"}, {3661000, "1h1m1s"}};
  for (size_t i = 0; i < sizeof FMT / sizeof FMT[0]; i++) {
    lm__duration_format(b, sizeof b, FMT[i].ms);
    assert_string_equal(b, FMT[i].s);
    uint64_t back;
    if (i < 4) { /* single-unit texts parse back */
      assert_int_equal(lm__duration_parse(b, &back), 0);
      assert_int_equal(back, FMT[i].ms);
    }
  }
}

/* ---- shapes ---- */

/* Asserts that `o` has exactly the keys of `want` (name:type pairs, type
 * one of s, i, b, a, o, n (null), S (string or null), I (integer or
 * null)). */
static void assert_keys(const json_t *o, const char *const want[][2],
                        size_t n) {
  assert_true(json_is_object(o));
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_object_get(o, want[i][0]);
    if (!v)
      fail_msg("missing key \"%s\"", want[i][0]);
    int ok;
    switch (want[i][1][0]) {
    case 's': ok = json_is_string(v); break;
    case 'i': ok = json_is_integer(v); break;
    case 'b': ok = json_is_boolean(v); break;
    case 'a': ok = json_is_array(v); break;
    case 'o': ok = json_is_object(v); break;
    case 'n': ok = json_is_null(v); break;
    case 'S': ok = json_is_string(v) || json_is_null(v); break;
    case 'I': ok = json_is_integer(v) || json_is_null(v); break;
    default: ok = 0;
    }
    if (!ok)
      fail_msg("key \"%s\" has the wrong type (wanted %s)", want[i][0],
               want[i][1]);
  }
  if (json_object_size(o) != n) {
    char *s = json_dumps(o, JSON_COMPACT);
    fail_msg("%zu keys, wanted %zu: %s", json_object_size(o), n, s);
  }
}

static const char *js(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "(none)";
}

static long long ji(const json_t *o, const char *k) {
  return (long long)json_integer_value(json_object_get(o, k));
}

/* 2026-11-22T01:02:03.456Z */
#define T0 INT64_C(1795309323456)

static void test_service_json(void **state) {
  (void)state;
  const char *tags[] = {"blue", "v2"};
  const char *mk[] = {"version"}, *mv[] = {"1.4"};
  lm_check_state_t checks[] = {{LM_CHECK_HTTP, LM_SVC_DOWN, "HTTP 503"}};
  lm_service_t s = {.type = "api", .name = "api-2", .host = "web1",
                    .region = "eu-1", .worker = 2, .pid = 4242,
                    .port = 8080, .created_ms = T0, .status = LM_SVC_DOWN,
                    .since_ms = T0 + 1000, .cause = "check", .note = "",
                    .tags = tags, .ntags = 2, .meta_keys = mk,
                    .meta_values = mv, .nmeta = 1, .checks = checks,
                    .nchecks = 1};
  lm_uuid_parse(s.uuid, UUID1);
  lm_service_view_t v = {.svc = &s, .effective = LM_SVC_DOWN,
                         .member_status = LM_SUSPECT,
                         .signed_ms = T0 + 2000, .is_local = 1};
  json_t *o = lm__service_json_at(&v, 1, T0 + 2500);
  static const char *const KEYS[][2] = {
      {"uuid", "s"},         {"type", "s"},         {"name", "s"},
      {"host", "s"},         {"region", "s"},       {"worker", "I"},
      {"pid", "I"},          {"port", "I"},         {"status", "s"},
      {"member_status", "s"}, {"created_at", "s"},  {"since", "s"},
      {"tags", "a"},         {"meta", "o"},         {"checks", "a"},
      {"stale", "b"},        {"service_status", "s"}, {"cause", "s"},
      {"note", "s"},         {"maint_until", "S"},  {"age_ms", "i"},
      {"local", "b"}};
  assert_keys(o, KEYS, sizeof KEYS / sizeof KEYS[0]);
  assert_string_equal(js(o, "uuid"), UUID1);
  assert_string_equal(js(o, "type"), "api");
  assert_string_equal(js(o, "name"), "api-2");
  assert_string_equal(js(o, "host"), "web1");
  assert_string_equal(js(o, "region"), "eu-1");
  assert_int_equal(ji(o, "worker"), 2);
  assert_int_equal(ji(o, "pid"), 4242);
  assert_int_equal(ji(o, "port"), 8080);
  assert_string_equal(js(o, "status"), "down");
  assert_string_equal(js(o, "member_status"), "suspect");
  assert_string_equal(js(o, "created_at"), "2026-11-22T01:02:03.456Z");
  assert_string_equal(js(o, "since"), "2026-11-22T01:02:04.456Z");
  assert_true(json_is_true(json_object_get(o, "stale")));
  assert_int_equal(ji(o, "age_ms"), 500);
  assert_string_equal(js(o, "cause"), "check");
  json_t *t = json_object_get(o, "tags");
  assert_int_equal(json_array_size(t), 2);
  assert_string_equal(json_string_value(json_array_get(t, 1)), "v2");
  assert_string_equal(js(json_object_get(o, "meta"), "version"), "1.4");
  json_t *c = json_array_get(json_object_get(o, "checks"), 0);
  static const char *const CKEYS[][2] = {
      {"kind", "s"}, {"status", "s"}, {"output", "s"}};
  assert_keys(c, CKEYS, 3);
  assert_string_equal(js(c, "kind"), "http");
  assert_string_equal(js(c, "status"), "down");
  assert_string_equal(js(c, "output"), "HTTP 503");
  json_decref(o);

  /* unset optionals: null, not sentinels; a member's death shows in the
   * effective status, the service's own stays beside it */
  lm_service_t m = {.type = "db", .host = "db1", .worker = -1,
                    .created_ms = T0, .since_ms = T0,
                    .status = LM_SVC_MAINT, .maint_until_ms = T0 + 60000};
  lm_uuid_parse(m.uuid, UUID1);
  lm_service_view_t mv2 = {.svc = &m, .effective = LM_SVC_DOWN,
                           .member_status = LM_DEAD};
  o = lm__service_json_at(&mv2, 0, T0);
  assert_keys(o, KEYS, sizeof KEYS / sizeof KEYS[0]);
  assert_true(json_is_null(json_object_get(o, "worker")));
  assert_true(json_is_null(json_object_get(o, "pid")));
  assert_true(json_is_null(json_object_get(o, "port")));
  assert_string_equal(js(o, "name"), "");
  assert_string_equal(js(o, "status"), "down");
  assert_string_equal(js(o, "service_status"), "maintenance");
  assert_string_equal(js(o, "member_status"), "dead");
  assert_string_equal(js(o, "maint_until"), "2026-11-22T01:03:03.456Z");
  assert_int_equal(json_array_size(json_object_get(o, "tags")), 0);
  assert_int_equal(json_object_size(json_object_get(o, "meta")), 0);
  assert_int_equal(json_array_size(json_object_get(o, "checks")), 0);
  assert_true(json_is_false(json_object_get(o, "stale")));
  assert_int_equal(ji(o, "age_ms"), 0);
  json_decref(o);
}

static void test_is_up_json(void **state) {
  (void)state;
  static const char *const KEYS[][2] = {
      {"up", "b"},   {"status", "s"}, {"member_status", "s"}, {"uuid", "S"},
      {"type", "S"}, {"host", "S"},   {"age_ms", "I"},        {"stale", "b"}};
  lm_is_up_t r = {.found = 1, .up = 1, .status = LM_SVC_UP,
                  .member_status = LM_ALIVE, .age_ms = 1200};
  lm_uuid_parse(r.uuid, UUID1);
  snprintf(r.type, sizeof r.type, "api");
  snprintf(r.host, sizeof r.host, "web1");
  json_t *o = lm__is_up_json(1, &r, 0);
  assert_keys(o, KEYS, 8);
  assert_true(json_is_true(json_object_get(o, "up")));
  assert_string_equal(js(o, "status"), "up");
  assert_string_equal(js(o, "member_status"), "alive");
  assert_string_equal(js(o, "uuid"), UUID1);
  assert_string_equal(js(o, "type"), "api");
  assert_string_equal(js(o, "host"), "web1");
  assert_int_equal(ji(o, "age_ms"), 1200);
  assert_true(json_is_false(json_object_get(o, "stale")));
  json_decref(o);

  r.up = 0;
  r.status = LM_SVC_MAINT;
  o = lm__is_up_json(0, &r, 1);
  assert_keys(o, KEYS, 8);
  assert_true(json_is_false(json_object_get(o, "up")));
  assert_string_equal(js(o, "status"), "maintenance");
  assert_true(json_is_true(json_object_get(o, "stale")));
  json_decref(o);

  /* unknown: asked by type and host */
  lm_is_up_t u = {0};
  snprintf(u.type, sizeof u.type, "api");
  snprintf(u.host, sizeof u.host, "web9");
  o = lm__is_up_json(1, &u, 0); /* `up` alone cannot make unknown up */
  assert_keys(o, KEYS, 8);
  assert_true(json_is_false(json_object_get(o, "up")));
  assert_string_equal(js(o, "status"), "unknown");
  assert_string_equal(js(o, "member_status"), "unknown");
  assert_true(json_is_null(json_object_get(o, "uuid")));
  assert_string_equal(js(o, "host"), "web9");
  assert_true(json_is_null(json_object_get(o, "age_ms")));
  json_decref(o);
  o = lm__is_up_json(0, NULL, 0);
  assert_keys(o, KEYS, 8);
  assert_string_equal(js(o, "status"), "unknown");
  json_decref(o);
}

static void test_watch_event_json(void **state) {
  (void)state;
  lm_watch_event_t e = {.seq = 7, .kind = LM_WATCH_SERVICE, .type = "api",
                        .host = "web1", .name = "api-2",
                        .old_status = "up", .new_status = "down",
                        .cause = "check", .at_ms = T0};
  lm_uuid_parse(e.uuid, UUID1);
  json_t *o = lm__watch_event_json(&e);
  static const char *const SKEYS[][2] = {
      {"seq", "i"}, {"kind", "s"}, {"uuid", "s"}, {"type", "s"},
      {"host", "s"}, {"old", "s"}, {"new", "s"},  {"cause", "s"},
      {"at", "s"}};
  assert_keys(o, SKEYS, 9);
  assert_int_equal(ji(o, "seq"), 7);
  assert_string_equal(js(o, "kind"), "service");
  assert_string_equal(js(o, "uuid"), UUID1);
  assert_string_equal(js(o, "old"), "up");
  assert_string_equal(js(o, "new"), "down");
  assert_string_equal(js(o, "cause"), "check");
  assert_string_equal(js(o, "at"), "2026-11-22T01:02:03.456Z");
  json_decref(o);

  e.initial = 1;
  e.old_status = "unknown";
  e.new_status = "up";
  o = lm__watch_event_json(&e);
  static const char *const IKEYS[][2] = {
      {"seq", "i"}, {"kind", "s"}, {"uuid", "s"}, {"type", "s"},
      {"host", "s"}, {"old", "s"}, {"new", "s"},  {"cause", "s"},
      {"at", "s"},  {"initial", "b"}};
  assert_keys(o, IKEYS, 10);
  assert_true(json_is_true(json_object_get(o, "initial")));
  json_decref(o);

  lm_watch_event_t m = {.seq = 1, .kind = LM_WATCH_MEMBER, .name = "web2",
                        .old_status = "alive", .new_status = "dead",
                        .cause = "member dead", .at_ms = T0};
  o = lm__watch_event_json(&m);
  static const char *const MKEYS[][2] = {
      {"seq", "i"}, {"kind", "s"}, {"name", "s"}, {"host", "s"},
      {"old", "s"}, {"new", "s"},  {"cause", "s"}, {"at", "s"}};
  assert_keys(o, MKEYS, 8);
  assert_string_equal(js(o, "kind"), "member");
  assert_string_equal(js(o, "name"), "web2");
  assert_string_equal(js(o, "host"), "web2");
  assert_string_equal(js(o, "new"), "dead");
  json_decref(o);
}

/* ---- validators ---- */

static void test_check_targets(void **state) {
  (void)state;
  const char *good_hp[] = {"db:5432", "10.0.0.5:80", "[::1]:8080",
                           "[fe80::1%eth0]:22", "my_host.internal:65535"};
  const char *bad_hp[] = {"db", "db:", ":80", "db:0", "db:65536", "::1:80",
                          "[::1]", "d b:80", "db:8o", "[]:80", ""};
  for (size_t i = 0; i < sizeof good_hp / sizeof good_hp[0]; i++)
    if (!lm__check_hostport_valid(good_hp[i]))
      fail_msg("refused %s", good_hp[i]);
  for (size_t i = 0; i < sizeof bad_hp / sizeof bad_hp[0]; i++)
    if (lm__check_hostport_valid(bad_hp[i]))
      fail_msg("accepted %s", bad_hp[i]);
  const char *good_url[] = {"http://h", "https://h/", "http://10.0.0.1:8080/"
                            "health?x=1", "http://[::1]:80/", "https://a.b#f"};
  const char *bad_url[] = {"h/", "http:/h", "http://", "http://:80/",
                           "http://h:/", "http://h:99999/", "http://h x/",
                           "HTTP//h", "http://[::1/", "http://u@h/"};
  for (size_t i = 0; i < sizeof good_url / sizeof good_url[0]; i++)
    if (!lm__check_url_valid(good_url[i]))
      fail_msg("refused %s", good_url[i]);
  for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++)
    if (lm__check_url_valid(bad_url[i]))
      fail_msg("accepted %s", bad_url[i]);
}

/* ---- the socket path rule ---- */

static void test_socket_path_agrees(void **state) {
  (void)state;
  char a[512], b[512];
  const char *saved_sock = getenv("LIVEMESH_SOCKET");
  const char *saved_rt = getenv("XDG_RUNTIME_DIR");
  char *ss = saved_sock ? strdup(saved_sock) : NULL;
  char *sr = saved_rt ? strdup(saved_rt) : NULL;
  static const struct {
    const char *flag, *env, *rt;
  } C[] = {{"/x/flag.sock", "/x/env.sock", "/run/user/1"},
           {NULL, "/x/env.sock", "/run/user/1"},
           {"", "/x/env.sock", NULL},
           {NULL, "", "/run/user/1"},
           {NULL, NULL, "/run/user/1"},
           {NULL, NULL, "relative"},
           {NULL, NULL, NULL}};
  for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
    if (C[i].env)
      setenv("LIVEMESH_SOCKET", C[i].env, 1);
    else
      unsetenv("LIVEMESH_SOCKET");
    if (C[i].rt)
      setenv("XDG_RUNTIME_DIR", C[i].rt, 1);
    else
      unsetenv("XDG_RUNTIME_DIR");
    lm__socket_path_resolve(C[i].flag, a, sizeof a);
    lm__ctl_client_path(C[i].flag, b, sizeof b);
    if (strcmp(a, b))
      fail_msg("case %zu: client %s, CLI %s", i, a, b);
  }
  if (ss)
    setenv("LIVEMESH_SOCKET", ss, 1);
  else
    unsetenv("LIVEMESH_SOCKET");
  if (sr)
    setenv("XDG_RUNTIME_DIR", sr, 1);
  else
    unsetenv("XDG_RUNTIME_DIR");
  free(ss);
  free(sr);
}

/* Error texts quote what a client sent, cut to a width: whatever the cut,
 * the text stays valid UTF-8 and JSON can carry it. */
static void test_utf8_scrub(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } S[] = {
      {"plain ascii", "plain ascii"},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
      {"cut \xc3", "cut ?"},                   /* half of an e-acute */
      {"cut \xe2\x82", "cut ??"},             /* two thirds of a euro */
      {"cut \xf0\x9f\x98", "cut ???"},       /* three quarters of an emoji */
      {"\x80lone", "?lone"},                   /* a continuation alone */
      {"\xc0\xaf", "??"},                     /* overlong '/' */
      {"\xe0\x80\xaf", "???"},               /* overlong, three bytes */
      {"\xed\xa0\x80", "???"},               /* a UTF-16 surrogate */
      {"\xf4\x90\x80\x80", "????"},         /* above U+10FFFF */
      {"\xff\xfe", "??"},
      {"", ""},
  };
  for (size_t i = 0; i < sizeof S / sizeof S[0]; i++) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", S[i].in);
    lm__utf8_scrub(buf);
    assert_string_equal(buf, S[i].out);
    json_t *j = json_string(buf);
    assert_non_null(j);
    json_decref(j);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_body),
      cmocka_unit_test(test_minimal_body),
      cmocka_unit_test(test_bad_bodies),
      cmocka_unit_test(test_flag_names),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_service_json),
      cmocka_unit_test(test_is_up_json),
      cmocka_unit_test(test_watch_event_json),
      cmocka_unit_test(test_check_targets),
      cmocka_unit_test(test_socket_path_agrees),
      cmocka_unit_test(test_utf8_scrub),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
