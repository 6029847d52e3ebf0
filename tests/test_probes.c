/*
 * test_probes.c: the agent's probes and metrics without an agent
 * (mesh/agent/metrics.c, probes.c): the Prometheus text (every family
 * named by INTERFACES.md, HELP and TYPE before its samples, counters
 * ending in _total, label values escaped, every status present, a drop
 * reason named by two layers added up, no sample twice), the bodies of
 * /readyz, /livez and the Flask heartbeat endpoints, the probe paths, and
 * the loop watchdog on a real libuv loop (ticks, a stall seen as lag, the
 * stall seen from outside before the loop runs again, readiness alone and
 * with seeds), closing the loop with no handle left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "probes.h"

/* ---- the Prometheus text ---- */

static void fill_stats(lm_stats_t *st) {
  memset(st, 0, sizeof *st);
  st->udp_pkts_out = 11;
  st->udp_bytes_out = 1234;
  st->udp_pkts_in = 12;
  st->probes = 5;
  st->suspicions_raised = 2;
  st->refutes = 1;
  st->local_health = 3;
  st->services_by_status[0] = 4;
  st->services_local = 2;
  st->check_runs[2][1] = 7; /* http fail */
  st->dropped[0].reason = "bad_mac";
  st->dropped[0].count = 3;
  st->dropped[1].reason = "stale";
  st->dropped[1].count = 4;
  st->dropped[2].reason = "bad_mac"; /* another layer, same name */
  st->dropped[2].count = 2;
  st->ndropped = 3;
  st->dropped_total = 9;
}

static char *metrics_with_name(const char *name) {
  lm_stats_t st;
  fill_stats(&st);
  lm__metrics_input_t in;
  memset(&in, 0, sizeof in);
  in.stats = &st;
  in.members_by_status[0] = 3;
  in.members_by_status[2] = 1;
  in.version = "0.1.0";
  in.name = name;
  in.start_time_s = 1700000000.5;
  in.loop_lag_s = 0.002;
  in.loop_lag_max_s = 0.015;
  in.ready = 1;
  in.live = 1;
  char *t = lm__metrics_text(&in);
  assert_non_null(t);
  return t;
}

/* Lines of `t` as a NULL-ended array of copies. */
static char **lines(const char *t) {
  size_t n = 1;
  for (const char *p = t; *p; p++)
    n += *p == '\n';
  char **v = calloc(n + 1, sizeof *v);
  size_t k = 0;
  for (const char *p = t; *p;) {
    const char *e = strchr(p, '\n');
    assert_non_null(e); /* every line ends with a newline */
    v[k++] = strndup(p, (size_t)(e - p));
    p = e + 1;
  }
  return v;
}

static void free_lines(char **v) {
  for (size_t i = 0; v[i]; i++)
    free(v[i]);
  free(v);
}

/* The metric name of a sample line, in `out`. */
static void sample_name(const char *line, char *out, size_t cap) {
  size_t n = strcspn(line, "{ ");
  assert_true(n < cap);
  memcpy(out, line, n);
  out[n] = 0;
}

static void test_metrics_structure(void **state) {
  (void)state;
  char *t = metrics_with_name("n1");
  char **v = lines(t);
  char helped[64][64], typed[64][64], types[64][16];
  size_t nh = 0, nt = 0;
  char seen[256][200];
  size_t ns = 0;
  for (size_t i = 0; v[i]; i++) {
    const char *l = v[i];
    char name[64];
    if (!strncmp(l, "# HELP ", 7)) {
      sample_name(l + 7, name, sizeof name);
      snprintf(helped[nh++], 64, "%s", name);
      continue;
    }
    if (!strncmp(l, "# TYPE ", 7)) {
      sample_name(l + 7, name, sizeof name);
      /* TYPE right after its own HELP */
      assert_true(nh > 0 && !strcmp(helped[nh - 1], name));
      const char *ty = l + 7 + strlen(name) + 1;
      assert_true(!strcmp(ty, "counter") || !strcmp(ty, "gauge"));
      snprintf(types[nt], 16, "%s", ty);
      snprintf(typed[nt++], 64, "%s", name);
      size_t len = strlen(name);
      int total = len > 6 && !strcmp(name + len - 6, "_total");
      if (!strcmp(ty, "counter"))
        assert_true(total);
      else
        assert_false(total);
      continue;
    }
    assert_true(l[0] != '#');
    sample_name(l, name, sizeof name);
    /* the sample belongs to the family declared last */
    assert_true(nt > 0);
    assert_string_equal(typed[nt - 1], name);
    /* no sample twice */
    const char *sp = strrchr(l, ' ');
    assert_non_null(sp);
    for (size_t j = 0; j < ns; j++)
      assert_false(strlen(seen[j]) == (size_t)(sp - l) &&
                   !strncmp(seen[j], l, (size_t)(sp - l)));
    snprintf(seen[ns++], 200, "%.*s", (int)(sp - l), l);
  }
  /* every family INTERFACES.md names */
  static const char *const NEED[] = {
      "livemesh_members", "livemesh_services",
      "livemesh_udp_packets_sent_total", "livemesh_udp_bytes_sent_total",
      "livemesh_udp_packets_received_total", "livemesh_dropped_total",
      "livemesh_probes_total", "livemesh_suspicions_total",
      "livemesh_refutations_total", "livemesh_check_runs_total",
      "livemesh_local_health", "livemesh_build_info",
      "livemesh_loop_lag_seconds", "livemesh_tcp_frames_sent_total",
      "livemesh_services_local", "livemesh_service_lists_sent_total"};
  for (size_t i = 0; i < sizeof NEED / sizeof NEED[0]; i++) {
    int found = 0;
    for (size_t j = 0; j < nt; j++)
      found |= !strcmp(typed[j], NEED[i]);
    if (!found)
      fail_msg("no family %s", NEED[i]);
  }
  /* each family once */
  for (size_t i = 0; i < nt; i++)
    for (size_t j = i + 1; j < nt; j++)
      assert_string_not_equal(typed[i], typed[j]);
  free_lines(v);
  free(t);
}

static void test_metrics_values(void **state) {
  (void)state;
  char *t = metrics_with_name("n1");
  /* every status present, 0 when none */
  assert_non_null(strstr(t, "\nlivemesh_members{status=\"alive\"} 3\n"));
  assert_non_null(strstr(t, "\nlivemesh_members{status=\"suspect\"} 0\n"));
  assert_non_null(strstr(t, "\nlivemesh_members{status=\"dead\"} 1\n"));
  assert_non_null(strstr(t, "\nlivemesh_members{status=\"left\"} 0\n"));
  assert_non_null(strstr(t, "\nlivemesh_services{status=\"up\"} 4\n"));
  assert_non_null(strstr(t, "\nlivemesh_services{status=\"down\"} 0\n"));
  assert_non_null(
      strstr(t, "\nlivemesh_services{status=\"maintenance\"} 0\n"));
  /* kind x result, all fifteen */
  static const char *const K[] = {"ttl", "process", "http", "tcp", "exec"};
  static const char *const R[] = {"ok", "fail", "timeout"};
  for (int k = 0; k < 5; k++)
    for (int r = 0; r < 3; r++) {
      char want[128];
      snprintf(want, sizeof want,
               "\nlivemesh_check_runs_total{kind=\"%s\",result=\"%s\"} %d\n",
               K[k], R[r], k == 2 && r == 1 ? 7 : 0);
      if (!strstr(t, want))
        fail_msg("missing %s", want + 1);
    }
  /* a reason named twice is one sample, added up */
  assert_non_null(strstr(t, "\nlivemesh_dropped_total{reason=\"bad_mac\"} 5\n"));
  assert_non_null(strstr(t, "\nlivemesh_dropped_total{reason=\"stale\"} 4\n"));
  assert_null(strstr(strstr(t, "reason=\"bad_mac\"") + 1, "reason=\"bad_mac\""));
  assert_non_null(strstr(t, "\nlivemesh_udp_packets_sent_total 11\n"));
  assert_non_null(strstr(t, "\nlivemesh_udp_bytes_sent_total 1234\n"));
  assert_non_null(strstr(t, "\nlivemesh_udp_packets_received_total 12\n"));
  assert_non_null(strstr(t, "\nlivemesh_probes_total 5\n"));
  assert_non_null(strstr(t, "\nlivemesh_suspicions_total 2\n"));
  assert_non_null(strstr(t, "\nlivemesh_refutations_total 1\n"));
  assert_non_null(strstr(t, "\nlivemesh_local_health 3\n"));
  assert_non_null(strstr(t, "\nlivemesh_start_time_seconds 1700000000.5\n"));
  assert_non_null(strstr(t, "\nlivemesh_loop_lag_max_seconds 0.015\n"));
  assert_non_null(strstr(t, "\nlivemesh_ready 1\n"));
  free(t);
}

static void test_metrics_escaping(void **state) {
  (void)state;
  char *t = metrics_with_name("a\"b\\c\nd");
  assert_non_null(strstr(
      t, "livemesh_build_info{version=\"0.1.0\",name=\"a\\\"b\\\\c\\nd\"} 1\n"));
  free(t);
  lm__buf_t b;
  lm__buf_init(&b);
  lm__prom_label_value(&b, "plain");
  lm__buf_puts(&b, "|");
  lm__prom_label_value(&b, "\\\"\n\n");
  lm__buf_puts(&b, "|");
  lm__prom_label_value(&b, "");
  lm__prom_family(&b, "x_total", "counter", "back\\slash\nnewline \"quoted\"");
  char *s = lm__buf_take(&b);
  assert_string_equal(s, "plain|\\\\\\\"\\n\\n|"
                         "# HELP x_total back\\\\slash\\nnewline \"quoted\"\n"
                         "# TYPE x_total counter\n");
  free(s);
  /* an empty buffer is an empty string, not NULL */
  lm__buf_init(&b);
  s = lm__buf_take(&b);
  assert_string_equal(s, "");
  free(s);
  /* samples: labels or none, integers and floats */
  lm__buf_init(&b);
  static const char *const KS[] = {"a", "b"};
  const char *vs[] = {"1", "x\"y"};
  lm__prom_sample_u64(&b, "m", 2, KS, vs, 18446744073709551615ull);
  lm__prom_sample(&b, "g", 0, NULL, NULL, 0.25);
  s = lm__buf_take(&b);
  assert_string_equal(s, "m{a=\"1\",b=\"x\\\"y\"} 18446744073709551615\n"
                         "g 0.25\n");
  free(s);
}

/* ---- the probe bodies ---- */

static json_t *checks_ok(void) {
  return json_pack("{s:{s:b,s:s}, s:{s:b,s:s}, s:{s:b,s:s,s:[]}, s:{s:b,s:s}}",
                   "joined", "status", 1, "detail", "alone",
                   "converged", "status", 1, "detail", "1 alive",
                   "services", "status", 1, "detail", "0 local", "failing",
                   "loop", "status", 1, "detail", "ticked");
}

static json_t *checks_failing(void) {
  json_t *c = checks_ok();
  json_object_set_new(c, "services",
                      json_pack("{s:b, s:s}", "status", 0, "detail",
                                "1 of 1 local service(s) down: api\nnext"));
  return c;
}

static void test_kube_bodies(void **state) {
  (void)state;
  char *body;
  const char *ct;
  json_t *ok = checks_ok(), *bad = checks_failing();
  assert_int_equal(lm__probe_format(LM__PROBE_READYZ, ok, 1, 0, &body, &ct),
                   200);
  assert_string_equal(body, "ok");
  assert_string_equal(ct, "text/plain; charset=utf-8");
  free(body);
  assert_int_equal(lm__probe_format(LM__PROBE_READYZ, ok, 1, 1, &body, &ct),
                   200);
  assert_string_equal(body, "[+]joined ok\n[+]converged ok\n[+]services ok\n"
                            "[+]loop ok\nreadyz check passed\n");
  free(body);
  /* failed: the failing checks only, the detail on one line */
  assert_int_equal(lm__probe_format(LM__PROBE_READYZ, bad, 0, 0, &body, &ct),
                   503);
  assert_string_equal(body, "[-]services failed: 1 of 1 local service(s) "
                            "down: api next\nreadyz check failed\n");
  free(body);
  assert_int_equal(lm__probe_format(LM__PROBE_READYZ, bad, 0, 1, &body, &ct),
                   503);
  assert_string_equal(body, "[+]joined ok\n[+]converged ok\n[-]services "
                            "failed: 1 of 1 local service(s) down: api next\n"
                            "[+]loop ok\nreadyz check failed\n");
  free(body);
  json_t *live = json_pack("{s:{s:b, s:s}}", "loop", "status", 0, "detail",
                           "did not tick for 2500 ms");
  assert_int_equal(lm__probe_format(LM__PROBE_LIVEZ, live, 0, 0, &body, &ct),
                   503);
  assert_string_equal(body, "[-]loop failed: did not tick for 2500 ms\n"
                            "livez check failed\n");
  free(body);
  json_decref(live);
  json_decref(ok);
  json_decref(bad);
}

static void test_heartbeat_bodies(void **state) {
  (void)state;
  char *body;
  const char *ct;
  json_t *ok = checks_ok(), *bad = checks_failing();
  for (int k = 0; k < 2; k++) {
    lm__probe_kind_t kind =
        k ? LM__PROBE_HB_LIVELINESS : LM__PROBE_HB_READINESS;
    for (int pass = 0; pass < 2; pass++) {
      int st = lm__probe_format(kind, pass ? ok : bad, pass, 0, &body, &ct);
      assert_int_equal(st, pass ? 200 : 500);
      assert_string_equal(ct, "application/json");
      json_t *j = json_loads(body, 0, NULL);
      assert_non_null(j);
      assert_int_equal(json_object_size(j), 2);
      assert_true(json_is_boolean(json_object_get(j, "status")));
      assert_int_equal(json_is_true(json_object_get(j, "status")), pass);
      json_t *c = json_object_get(j, "checks");
      assert_int_equal(json_object_size(c), 4);
      const char *name;
      json_t *v;
      json_object_foreach(c, name, v)
        assert_true(json_is_boolean(json_object_get(v, "status")));
      assert_int_equal(
          json_is_true(json_object_get(json_object_get(c, "services"),
                                       "status")),
          pass);
      json_decref(j);
      free(body);
    }
  }
  json_t *libs = json_pack("{s:{s:s}, s:{s:s}}", "livemesh", "version",
                           "0.1.0", "libuv", "version", "1.44.2");
  assert_int_equal(lm__probe_format_environ(libs, "n1", &body, &ct), 200);
  json_t *j = json_loads(body, 0, NULL);
  assert_non_null(j);
  assert_true(json_is_true(json_object_get(j, "status")));
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(j, "libraries"), "libuv"),
          "version")),
      "1.44.2");
  json_decref(j);
  free(body);
  json_decref(libs);
  /* environ and metrics are not check bodies */
  assert_int_equal(lm__probe_format(LM__PROBE_METRICS, ok, 1, 0, &body, &ct),
                   -1);
  assert_null(body);
  json_decref(ok);
  json_decref(bad);
}

static void test_paths(void **state) {
  (void)state;
  assert_int_equal(lm__probe_path("/readyz"), LM__PROBE_READYZ);
  assert_int_equal(lm__probe_path("/readyz/"), LM__PROBE_READYZ);
  assert_int_equal(lm__probe_path("/livez"), LM__PROBE_LIVEZ);
  assert_int_equal(lm__probe_path("/.well-known/heartbeat/readiness"),
                   LM__PROBE_HB_READINESS);
  assert_int_equal(lm__probe_path("/.well-known/heartbeat/liveliness"),
                   LM__PROBE_HB_LIVELINESS);
  assert_int_equal(lm__probe_path("/.well-known/heartbeat/environ"),
                   LM__PROBE_HB_ENVIRON);
  assert_int_equal(lm__probe_path("/metrics"), LM__PROBE_METRICS);
  assert_int_equal(lm__probe_path("/v1/members"), LM__PROBE_NONE);
  assert_int_equal(lm__probe_path("/readyz?verbose"), LM__PROBE_NONE);
  assert_int_equal(lm__probe_path(""), LM__PROBE_NONE);
  assert_int_equal(lm__probe_path(NULL), LM__PROBE_NONE);
}

/* ---- the watchdog on a real loop ---- */

typedef struct stall {
  int fired;
  unsigned ms;
} stall_t;

static void on_stall(uv_timer_t *t) {
  stall_t *s = t->data;
  s->fired = 1;
  usleep(s->ms * 1000);
  uv_close((uv_handle_t *)t, NULL);
}

static void on_stop(uv_timer_t *t) { uv_stop(t->loop); }

static void run_for(uv_loop_t *loop, unsigned ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, on_stop, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static void test_watchdog(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  lm__probes_t *p;
  assert_int_equal(lm__probes_new(&p, &loop, NULL), 0);
  run_for(&loop, 350);
  lm__loop_state_t s;
  lm__probes_loop_state(p, uv_hrtime(), &s);
  assert_true(s.ticks >= 2);
  assert_true(s.live);
  assert_true(s.since_tick_ms < LM__LIVE_STALL_MS);
  /* seen from outside: no tick for longer than the bound is not live,
   * before the loop has had a chance to run again */
  lm__probes_loop_state(p, uv_hrtime() + (LM__LIVE_STALL_MS + 100) * 1000000ull,
                        &s);
  assert_false(s.live);
  int live;
  json_t *c = lm__probes_live(p, &live);
  assert_true(live);
  assert_true(json_is_true(json_object_get(json_object_get(c, "loop"),
                                           "status")));
  json_decref(c);
  /* alone by configuration, no node: ready at once */
  int ready;
  c = lm__probes_ready(p, 0, 0, &ready);
  assert_true(ready);
  const char *names[] = {"joined", "converged", "services", "loop"};
  size_t i = 0;
  const char *k;
  json_t *v;
  json_object_foreach(c, k, v) {
    assert_true(i < 4);
    assert_string_equal(k, names[i++]);
    assert_true(json_is_boolean(json_object_get(v, "status")));
    assert_true(json_is_string(json_object_get(v, "detail")));
  }
  assert_int_equal(i, 4);
  json_decref(c);
  /* with a seed and nobody seen: neither joined nor converged */
  c = lm__probes_ready(p, 1, 0, &ready);
  assert_false(ready);
  assert_false(json_is_true(json_object_get(json_object_get(c, "joined"),
                                            "status")));
  assert_false(json_is_true(json_object_get(json_object_get(c, "converged"),
                                            "status")));
  json_decref(c);
  /* leaving: not joined any more */
  c = lm__probes_ready(p, 0, 1, &ready);
  assert_false(ready);
  json_decref(c);
  /* a stall of the loop: the next tick is late, and stays counted for the
   * window */
  uv_timer_t st;
  stall_t sd = {0, LM__LIVE_LAG_MS + 200};
  uv_timer_init(&loop, &st);
  st.data = &sd;
  uv_timer_start(&st, on_stall, 10, 0);
  run_for(&loop, 300 + sd.ms);
  assert_true(sd.fired);
  lm__probes_loop_state(p, uv_hrtime(), &s);
  assert_true(s.lag_max_ms >= LM__LIVE_LAG_MS);
  assert_false(s.live);
  c = lm__probes_ready(p, 0, 0, &ready);
  assert_false(ready);
  assert_false(json_is_true(json_object_get(json_object_get(c, "loop"),
                                            "status")));
  json_decref(c);
  lm__probes_close(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_structure),
      cmocka_unit_test(test_metrics_values),
      cmocka_unit_test(test_metrics_escaping),
      cmocka_unit_test(test_kube_bodies),
      cmocka_unit_test(test_heartbeat_bodies),
      cmocka_unit_test(test_paths),
      cmocka_unit_test(test_watchdog),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
