/*
 * test_curl_dl.c: libcurl is loaded on first use (mesh/checks/curl_dl.h),
 * seen from a real node in this process through /proc/self/maps.
 *
 *   test_curl_dl lazy     a node with a TTL and a TCP-checked service maps
 *                         no libcurl; one HTTP check against a real
 *                         listener here turns the service up and libcurl
 *                         is then mapped.
 *   test_curl_dl missing  the loader is pointed at a soname no file has
 *                         (lm__curl_use_soname_for_test, before anything
 *                         loads): the HTTP-checked service is accepted,
 *                         stays down, its check's output is the loader's
 *                         reason on every run, the node logs it once, and
 *                         the node closes cleanly.
 *
 * Each mode runs in a process of its own (two ctest entries): what a
 * process has mapped cannot be undone, so the two cannot share one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <livemesh/services.h>

#include "curl_dl.h"
#include "node_harness.h"

#define MISSING_SONAME "libcurl-absent-for-test.so.4"

/* 1 if a mapping of this process names `what` */
static int mapped(const char *what) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof line, f))
    found = strstr(line, what) != NULL;
  fclose(f);
  return found;
}

/* ---- a loopback HTTP server: answers every request 200 and closes ---- */

typedef struct srv {
  uv_tcp_t listener;
  int port;
  int served;
} srv_t;

typedef struct conn {
  uv_tcp_t h;
  uv_write_t w;
  srv_t *s;
  int answered;
} conn_t;

static void conn_closed(uv_handle_t *h) { free(h->data); }

static void conn_close(conn_t *cn) {
  if (!uv_is_closing((uv_handle_t *)&cn->h))
    uv_close((uv_handle_t *)&cn->h, conn_closed);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  static char buf[4096];
  (void)h, (void)hint;
  *b = uv_buf_init(buf, sizeof buf);
}

static void conn_written(uv_write_t *w, int status) {
  (void)status;
  conn_close(w->data);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  static char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                       "Connection: close\r\n\r\nok";
  conn_t *cn = st->data;
  (void)b;
  if (n < 0) {
    conn_close(cn);
    return;
  }
  if (n == 0 || cn->answered)
    return;
  cn->answered = 1;
  cn->s->served++;
  uv_buf_t out = uv_buf_init(resp, sizeof resp - 1);
  cn->w.data = cn;
  if (uv_write(&cn->w, st, &out, 1, conn_written) != 0)
    conn_close(cn);
}

static void srv_on_conn(uv_stream_t *l, int status) {
  if (status != 0)
    return;
  conn_t *cn = calloc(1, sizeof *cn);
  assert_non_null(cn);
  cn->s = l->data;
  uv_tcp_init(l->loop, &cn->h);
  cn->h.data = cn;
  if (uv_accept(l, (uv_stream_t *)&cn->h) != 0 ||
      uv_read_start((uv_stream_t *)&cn->h, conn_alloc, conn_read) != 0)
    conn_close(cn);
}

static void srv_start(srv_t *s, uv_loop_t *loop) {
  struct sockaddr_in sa;
  memset(s, 0, sizeof *s);
  assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
  s->listener.data = s;
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
  assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, srv_on_conn), 0);
  int len = sizeof sa;
  assert_int_equal(
      uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len), 0);
  s->port = ntohs(sa.sin_port);
}

/* ---- services ---- */

static void spec_init(lm_service_spec_t *s, const char *type) {
  memset(s, 0, sizeof *s);
  s->type = type;
  s->worker = -1;
}

static void reg(tnode_t *t, lm_service_spec_t *s) {
  char err[256];
  uint8_t uuid[LM_UUID_LEN];
  int rc = lm_node_service_register(t->node, s, uuid, err, sizeof err);
  if (rc)
    fail_msg("register %s: %s (%s)", s->type, lm_strerror(rc), err);
}

typedef struct up_arg {
  tnode_t *t;
  const char *type;
} up_arg_t;

static int is_up(void *arg) {
  up_arg_t *a = arg;
  return lm_node_is_up(a->t->node, a->type, a->t->name, NULL) == 1;
}

/* This node's own service of `type`: its check's status and output. */
typedef struct check_seen {
  const char *type;
  int found;
  lm_svc_status_t status;
  char output[LM_CHECK_OUTPUT_MAX + 1];
} check_seen_t;

static int seen_cb(void *ud, const lm_service_view_t *v) {
  check_seen_t *s = ud;
  if (!v->is_local || strcmp(v->svc->type, s->type) != 0 ||
      v->svc->nchecks != 1)
    return 0;
  s->found = 1;
  s->status = v->svc->checks[0].status;
  snprintf(s->output, sizeof s->output, "%s", v->svc->checks[0].output);
  return 1;
}

static check_seen_t check_of(tnode_t *t, const char *type) {
  check_seen_t s;
  memset(&s, 0, sizeof s);
  s.type = type;
  lm_service_filter_t f = {.type = type, .host = t->name, .status = -1};
  assert_true(lm_node_services_each(t->node, &f, seen_cb, &s) >= 0);
  return s;
}

static uint64_t http_runs(tnode_t *t, int result) {
  lm_stats_t st;
  assert_int_equal(lm_node_stats(t->node, &st), 0);
  return st.check_runs[LM_CHECK_HTTP - 1][result];
}

/* ---- lazy: no http check, no libcurl ---- */

static void test_loaded_by_the_first_http_check(void **state) {
  (void)state;
  watchdog(120);
  assert_false(mapped("libcurl"));
  cluster_t *c = cluster_new(200, 100);
  tnode_t *a = add(c, "a");
  srv_t srv;
  srv_start(&srv, &c->loop);

  /* services whose checks are not http ones, and a node that runs them */
  lm_service_spec_t s;
  spec_init(&s, "api");
  s.ttl_ms = 60000;
  reg(a, &s);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
  spec_init(&s, "db");
  s.tcp_check = addr;
  s.interval_ms = 500;
  s.timeout_ms = 400;
  reg(a, &s);
  up_arg_t db = {a, "db"};
  assert_true(run_until(c, is_up, &db, 15000));
  run_for(c, 1000);
  assert_true(is_up(&db));
  assert_false(mapped("libcurl"));
  assert_null(lm__curl_loaded());
  assert_null(lm__curl_error());

  /* one http check, against the listener above */
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/health", srv.port);
  spec_init(&s, "web");
  s.http_check = url;
  s.interval_ms = 500;
  s.timeout_ms = 400;
  reg(a, &s);
  up_arg_t web = {a, "web"};
  assert_true(run_until(c, is_up, &web, 15000));
  assert_true(srv.served >= 1);
  check_seen_t k = check_of(a, "web");
  assert_true(k.found);
  assert_string_equal(k.output, "HTTP 200");
  assert_true(mapped("/libcurl.so"));
  assert_non_null(lm__curl_loaded());
  assert_null(lm__curl_error());

  uv_close((uv_handle_t *)&srv.listener, NULL);
  cluster_free(c);
}

/* ---- missing: the failure path with a soname no file has ---- */

typedef struct log_seen {
  int lines;   /* every line the node logged */
  int missing; /* those that name the missing library */
} log_seen_t;

static void on_log(void *ud, int level, const char *line) {
  log_seen_t *l = ud;
  (void)level;
  l->lines++;
  if (strstr(line, MISSING_SONAME " not found (install libcurl4)"))
    l->missing++;
}

typedef struct runs_arg {
  tnode_t *t;
  uint64_t want;
} runs_arg_t;

static int failed_runs(void *arg) {
  runs_arg_t *a = arg;
  return http_runs(a->t, 1 /* fail */) >= a->want;
}

static void test_missing_libcurl_fails_the_check(void **state) {
  (void)state;
  watchdog(120);
  assert_int_equal(lm__curl_use_soname_for_test(MISSING_SONAME), 0);
  cluster_t *c = cluster_new(200, 100);
  log_seen_t logs = {0, 0};
  node_spec_t ns = {.name = "a", .log = on_log, .log_ud = &logs};
  tnode_t *a = node_add(c, &ns);
  srv_t srv;
  srv_start(&srv, &c->loop);

  /* accepted (the URL cannot be parsed by curl, the basic checks pass) */
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/health", srv.port);
  lm_service_spec_t s;
  spec_init(&s, "web");
  s.http_check = url;
  s.interval_ms = 300;
  s.timeout_ms = 200;
  reg(a, &s);

  /* three runs: each fails with the loader's reason, the loop goes on */
  runs_arg_t three = {a, 3};
  assert_true(run_until(c, failed_runs, &three, 15000));
  assert_int_equal(http_runs(a, 0 /* ok */), 0);
  assert_int_equal(http_runs(a, 2 /* timeout */), 0);
  check_seen_t k = check_of(a, "web");
  assert_true(k.found);
  assert_int_equal(k.status, LM_SVC_DOWN);
  const char *want = MISSING_SONAME " not found (install libcurl4): ";
  if (strncmp(k.output, want, strlen(want)) != 0)
    fail_msg("check output: \"%s\"", k.output);
  assert_string_equal(k.output, lm__curl_error());
  up_arg_t web = {a, "web"};
  assert_false(is_up(&web));
  assert_int_equal(srv.served, 0);
  assert_int_equal(logs.missing, 1); /* once, not once per run */
  assert_false(mapped("libcurl"));
  assert_null(lm__curl_loaded());
  /* too late to change the name now */
  assert_int_equal(lm__curl_use_soname_for_test(LM__CURL_SONAME), -1);

  uv_close((uv_handle_t *)&srv.listener, NULL);
  cluster_free(c);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "lazy") == 0) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded_by_the_first_http_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
  }
  if (strcmp(mode, "missing") == 0) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_libcurl_fails_the_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
  }
  fprintf(stderr, "usage: test_curl_dl lazy|missing\n");
  return 2;
}
