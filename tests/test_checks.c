/*
 * test_checks.c: the health-check engine (mesh/checks/) against real
 * parts: child processes, a small HTTP server on loopback written here,
 * listening and closed TCP ports, /bin/sh commands. Every test runs its own
 * loop, closes the checker and asserts that uv_loop_close finds nothing
 * left open. Waits are bounded by generous deadlines and never assert a
 * tight wall-clock time: these tests run on slow shared machines.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

extern char **environ;

#define WAIT_MS 15000 /* what "soon" means on a loaded 2-core machine */

/* ---- a loop, a checker, and what the callbacks saw ---- */

typedef struct env {
  uv_loop_t loop;
  lm__checker_t *c;
  uv_timer_t guard;
  int expired;
  int closed;
  int changes;
  lm_svc_status_t last;
  char last_out[LM_CHECK_OUTPUT_MAX + 1];
  char last_cause[16];
  int runs;
  lm_svc_status_t status_after_run[64];
  unsigned max_running;
  char dir[64];
} env_t;

static void on_change(lm__check_t *k, lm_svc_status_t s, const char *out,
                      const char *cause, void *ud) {
  env_t *e = ud;
  (void)k;
  e->changes++;
  e->last = s;
  snprintf(e->last_out, sizeof(e->last_out), "%s", out);
  snprintf(e->last_cause, sizeof(e->last_cause), "%s", cause);
}

static void on_run(lm__check_t *k, lm_check_kind_t kind, lm__check_result_t r,
                   void *ud) {
  env_t *e = ud;
  (void)kind;
  (void)r;
  if (e->runs < 64)
    e->status_after_run[e->runs] = lm__check_status(k);
  e->runs++;
}

static void env_init(env_t *e, const lm__checker_opts_t *o) {
  memset(e, 0, sizeof(*e));
  assert_int_equal(uv_loop_init(&e->loop), 0);
  lm__checker_opts_t opts;
  if (o != NULL)
    opts = *o;
  else
    memset(&opts, 0, sizeof(opts));
  opts.run_cb = on_run;
  opts.run_ud = e;
  assert_int_equal(lm__checker_new(&e->c, &e->loop, &opts), 0);
  assert_int_equal(uv_timer_init(&e->loop, &e->guard), 0);
  e->guard.data = e;
  snprintf(e->dir, sizeof(e->dir), "/tmp/lmchecks.XXXXXX");
  assert_non_null(mkdtemp(e->dir));
}

static void on_closed(void *ud) { ((env_t *)ud)->closed = 1; }

static void env_fini(env_t *e) {
  lm__checker_close(e->c, on_closed, e);
  uv_close((uv_handle_t *)&e->guard, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
  assert_int_equal(system(cmd), 0);
}

static void on_guard(uv_timer_t *t) { ((env_t *)t->data)->expired = 1; }

static void arm(env_t *e, uint64_t ms) {
  e->expired = 0;
  uv_timer_start(&e->guard, on_guard, ms, 0);
}

static int wait_status(env_t *e, lm__check_t *k, lm_svc_status_t s,
                       uint64_t ms) {
  arm(e, ms);
  while (lm__check_status(k) != s && !e->expired)
    uv_run(&e->loop, UV_RUN_ONCE);
  uv_timer_stop(&e->guard);
  return lm__check_status(k) == s;
}

static int wait_runs(env_t *e, int n, uint64_t ms) {
  arm(e, ms);
  while (e->runs < n && !e->expired)
    uv_run(&e->loop, UV_RUN_ONCE);
  uv_timer_stop(&e->guard);
  return e->runs >= n;
}

static void spin(env_t *e, uint64_t ms) {
  arm(e, ms);
  while (!e->expired)
    uv_run(&e->loop, UV_RUN_ONCE);
}

static lm__check_t *start_ok(env_t *e, const lm__check_spec_t *spec) {
  lm__check_t *k = NULL;
  char err[LM__CHECK_ERR_MAX];
  int rc = lm__check_start(e->c, spec, on_change, e, &k, err, sizeof(err));
  if (rc != 0)
    fail_msg("lm__check_start: %d %s", rc, err);
  assert_non_null(k);
  return k;
}

static pid_t spawn(const char *const argv[]) {
  pid_t pid;
  assert_int_equal(
      posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ), 0);
  return pid;
}

/* Alive and not a zombie (a reparented zombie may wait for a lax init). */
static int pid_alive(int pid) {
  char path[64], buf[256];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  return p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static int read_pid(const char *path) {
  FILE *f = fopen(path, "r");
  int pid = 0;
  if (f != NULL) {
    if (fscanf(f, "%d", &pid) != 1)
      pid = 0;
    fclose(f);
  }
  return pid;
}

/* ---- a tiny HTTP server on 127.0.0.1 with canned answers ---- */

enum { SRV_SILENT = 0 };

typedef struct conn {
  uv_tcp_t h;
  uv_write_t w;
  struct srv *s;
  struct conn *next, *prev;
  int answered;
} conn_t;

typedef struct srv {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int listening, closing;
  int port;
  int code; /* status to answer, SRV_SILENT never answers */
  conn_t *conns;
  int served;
} srv_t;

static void srv_listener_closed(uv_handle_t *h) {
  ((srv_t *)h->data)->closing = 0;
}

static void conn_closed(uv_handle_t *h) {
  conn_t *cn = h->data;
  srv_t *s = cn->s;
  if (cn->prev != NULL)
    cn->prev->next = cn->next;
  else
    s->conns = cn->next;
  if (cn->next != NULL)
    cn->next->prev = cn->prev;
  free(cn);
}

static void conn_close(conn_t *cn) {
  if (!uv_is_closing((uv_handle_t *)&cn->h))
    uv_close((uv_handle_t *)&cn->h, conn_closed);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  static char buf[4096];
  (void)h;
  (void)hint;
  *b = uv_buf_init(buf, sizeof(buf));
}

static void conn_written(uv_write_t *w, int status) {
  (void)status;
  conn_close(w->data);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  conn_t *cn = st->data;
  static char resp[256];
  (void)b;
  if (n < 0) {
    conn_close(cn);
    return;
  }
  if (n == 0 || cn->answered || cn->s->code == SRV_SILENT)
    return;
  cn->answered = 1;
  cn->s->served++;
  snprintf(resp, sizeof(resp),
           "HTTP/1.1 %d Canned\r\nContent-Length: 2\r\n%sConnection: "
           "close\r\n\r\nok",
           cn->s->code,
           cn->s->code == 302 ? "Location: http://127.0.0.1:1/\r\n" : "");
  uv_buf_t out = uv_buf_init(resp, (unsigned)strlen(resp));
  cn->w.data = cn;
  if (uv_write(&cn->w, st, &out, 1, conn_written) != 0)
    conn_close(cn);
}

static void srv_on_conn(uv_stream_t *l, int status) {
  srv_t *s = l->data;
  if (status != 0)
    return;
  conn_t *cn = calloc(1, sizeof(*cn));
  assert_non_null(cn);
  cn->s = s;
  uv_tcp_init(s->loop, &cn->h);
  cn->h.data = cn;
  cn->next = s->conns;
  if (s->conns != NULL)
    s->conns->prev = cn;
  s->conns = cn;
  if (uv_accept(l, (uv_stream_t *)&cn->h) != 0 ||
      uv_read_start((uv_stream_t *)&cn->h, conn_alloc, conn_read) != 0)
    conn_close(cn);
}

/* Listens on `port` (0: any free one) and answers `code`. */
static void srv_start(srv_t *s, uv_loop_t *loop, int port, int code) {
  struct sockaddr_in sa;
  s->loop = loop;
  s->code = code;
  assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
  s->listener.data = s;
  assert_int_equal(uv_ip4_addr("127.0.0.1", port, &sa), 0);
  assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 64, srv_on_conn), 0);
  int len = sizeof(sa);
  assert_int_equal(
      uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len), 0);
  s->port = ntohs(sa.sin_port);
  s->listening = 1;
}

static void srv_stop(srv_t *s) {
  if (!s->listening)
    return;
  s->listening = 0;
  s->closing = 1;
  uv_close((uv_handle_t *)&s->listener, srv_listener_closed);
  for (conn_t *cn = s->conns; cn != NULL; cn = cn->next)
    conn_close(cn);
  while (s->closing || s->conns != NULL)
    uv_run(s->loop, UV_RUN_ONCE);
}

/* A port nobody listens on: bound once, then closed. */
static int closed_port(env_t *e) {
  srv_t s;
  memset(&s, 0, sizeof(s));
  srv_start(&s, &e->loop, 0, 200);
  int port = s.port;
  srv_stop(&s);
  return port;
}

static lm__check_spec_t http_spec(const char *url) {
  lm__check_spec_t sp;
  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_HTTP;
  sp.url = url;
  sp.interval_ms = 300;
  sp.timeout_ms = 300;
  return sp;
}

/* ---- validation ---- */

static void expect_refused(lm__checker_t *c, const lm__check_spec_t *sp,
                           int code, const char *field) {
  char err[LM__CHECK_ERR_MAX];
  lm__check_t *k = (lm__check_t *)1;
  int rc = lm__check_start(c, sp, NULL, NULL, &k, err, sizeof(err));
  if (rc != code)
    fail_msg("expected %d, got %d (%s) for field %s", code, rc, err, field);
  assert_null(k);
  if (strncmp(err, field, strlen(field)) != 0 || err[strlen(field)] != ':')
    fail_msg("error text \"%s\" does not name %s", err, field);
}

static void test_validation(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.allow_exec = 1};
  env_init(&e, &o);
  lm__check_spec_t sp;

  const char *bad_urls[] = {NULL,         "",
                            "ftp://h/",   "localhost:80",
                            "http://",    "https:///path",
                            "http://h /", "http://h:99999/",
                            "file:///etc/passwd", "http://:80/",
                            "http://h:0/",  "http://?x"};
  for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
    sp = http_spec(bad_urls[i]);
    expect_refused(e.c, &sp, LM__CHECK_EINVAL, "url");
  }
  sp = http_spec("http://127.0.0.1:8080/health");
  char err[LM__CHECK_ERR_MAX];
  assert_int_equal(lm__check_validate(e.c, &sp, err, sizeof(err)), 0);
  sp.timeout_ms = 0;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "timeout_ms");
  sp.timeout_ms = 301; /* timeouts never exceed the interval */
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "timeout_ms");
  sp.interval_ms = 0;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "interval_ms");

  const char *bad_addrs[] = {NULL,      "",           "nohost",   ":80",
                             "host:",   "host:0",     "host:65536", "a:b:c",
                             "h:8x",    "[::1]80",    "[]:80",     "h h:80",
                             "::1:80"};
  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_TCP;
  sp.interval_ms = sp.timeout_ms = 1000;
  for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
    sp.addr = bad_addrs[i];
    expect_refused(e.c, &sp, LM__CHECK_EINVAL, "addr");
  }
  sp.addr = "[::1]:80";
  assert_int_equal(lm__check_validate(e.c, &sp, err, sizeof(err)), 0);
  sp.addr = "db.example:5432";
  assert_int_equal(lm__check_validate(e.c, &sp, err, sizeof(err)), 0);

  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_TTL;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "ttl_ms");
  sp.ttl_ms = LM__CHECK_MS_MAX + 1;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "ttl_ms");

  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_EXEC;
  sp.interval_ms = sp.timeout_ms = 1000;
  sp.command = "   ";
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "command");
  sp.command = NULL;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "command");

  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_PROCESS;
  sp.pid = 0;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "pid");
  sp.pid = -5;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "pid");

  memset(&sp, 0, sizeof(sp));
  sp.kind = (lm_check_kind_t)42;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "kind");
  sp.kind = LM_CHECK_TTL;
  sp.ttl_ms = 1000;
  sp.initial = (lm__check_initial_t)9;
  expect_refused(e.c, &sp, LM__CHECK_EINVAL, "initial");

  assert_string_equal(lm__check_strerror(LM__CHECK_EEXEC),
                      "exec checks are not allowed on this checker");
  assert_string_equal(lm__check_strerror(UV_ECONNREFUSED),
                      uv_strerror(UV_ECONNREFUSED));
  env_fini(&e);
}

static void test_exec_refused_unless_allowed(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  lm__check_spec_t sp;
  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_EXEC;
  sp.interval_ms = sp.timeout_ms = 1000;
  sp.command = "true";
  char err[LM__CHECK_ERR_MAX];
  lm__check_t *k = NULL;
  assert_int_equal(lm__check_start(e.c, &sp, NULL, NULL, &k, err, sizeof(err)),
                   LM__CHECK_EEXEC);
  assert_null(k);
  assert_non_null(strstr(err, "allow_exec"));
  /* allow_exec must be exactly 1, not any true value */
  lm__checker_t *c2;
  lm__checker_opts_t o = {.allow_exec = 2};
  assert_int_equal(lm__checker_new(&c2, &e.loop, &o), 0);
  assert_int_equal(lm__check_start(c2, &sp, NULL, NULL, &k, err, sizeof(err)),
                   LM__CHECK_EEXEC);
  lm__checker_close(c2, NULL, NULL);
  env_fini(&e);
}

/* ---- ttl ---- */

static lm__check_spec_t ttl_spec(uint64_t ttl) {
  lm__check_spec_t sp;
  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_TTL;
  sp.ttl_ms = ttl;
  return sp;
}

static void test_ttl_expires_without_pass(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  lm__check_spec_t sp = ttl_spec(300);
  lm__check_t *k = start_ok(&e, &sp);
  assert_int_equal(lm__check_status(k), LM_SVC_UP); /* starts up */
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  assert_int_equal(e.changes, 1);
  assert_int_equal(e.last, LM_SVC_DOWN);
  assert_string_equal(e.last_cause, "ttl");
  assert_string_equal(e.last_out, "TTL expired: no pass within 300ms");
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_TTL, LM__CHECK_TIMEOUT), 1);
  /* a late pass brings it back */
  assert_int_equal(lm__check_pass(k, "back"), 0);
  assert_int_equal(lm__check_status(k), LM_SVC_UP);
  assert_int_equal(e.changes, 2);
  assert_string_equal(e.last_out, "back");
  env_fini(&e);
}

typedef struct passer {
  uv_timer_t t;
  lm__check_t *k;
  int n;
} passer_t;

static void on_pass_tick(uv_timer_t *t) {
  passer_t *p = t->data;
  char note[32];
  snprintf(note, sizeof(note), "pass %d", ++p->n);
  assert_int_equal(lm__check_pass(p->k, note), 0);
}

static void test_ttl_pass_keeps_up(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  lm__check_spec_t sp = ttl_spec(2000);
  lm__check_t *k = start_ok(&e, &sp);
  passer_t p = {.k = k};
  uv_timer_init(&e.loop, &p.t);
  p.t.data = &p;
  uv_timer_start(&p.t, on_pass_tick, 200, 200);
  spin(&e, 3000); /* 1.5 TTLs: it would have expired without the passes */
  assert_int_equal(lm__check_status(k), LM_SVC_UP);
  assert_int_equal(e.changes, 0);
  assert_true(p.n >= 3);
  assert_int_equal(strncmp(lm__check_output(k), "pass ", 5), 0);
  uv_close((uv_handle_t *)&p.t, NULL);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS)); /* passes stopped */
  env_fini(&e);
}

static void test_ttl_fail_is_down_at_once(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  lm__check_spec_t sp = ttl_spec(60000);
  sp.failures_before_down = 5; /* thresholds do not apply to ttl */
  lm__check_t *k = start_ok(&e, &sp);
  assert_int_equal(lm__check_fail(k, "disk full"), 0);
  assert_int_equal(lm__check_status(k), LM_SVC_DOWN);
  assert_int_equal(e.changes, 1);
  assert_string_equal(e.last_cause, "ttl");
  assert_string_equal(e.last_out, "disk full");
  assert_string_equal(lm__check_output(k), "disk full");
  assert_int_equal(lm__check_pass(k, NULL), 0);
  assert_int_equal(lm__check_status(k), LM_SVC_UP);
  assert_string_equal(lm__check_output(k), "");
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_TTL, LM__CHECK_FAIL), 1);
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_TTL, LM__CHECK_OK), 1);

  /* initial DOWN waits for the first pass; pass/fail are ttl-only */
  sp = ttl_spec(60000);
  sp.initial = LM__CHECK_INITIAL_DOWN;
  lm__check_t *k2 = start_ok(&e, &sp);
  assert_int_equal(lm__check_status(k2), LM_SVC_DOWN);
  lm__check_stop(k2);
  lm__check_spec_t ex;
  memset(&ex, 0, sizeof(ex));
  ex.kind = LM_CHECK_PROCESS;
  ex.pid = getpid();
  lm__check_t *k3 = start_ok(&e, &ex);
  assert_int_equal(lm__check_pass(k3, "x"), LM__CHECK_EKIND);
  assert_int_equal(lm__check_fail(k3, "x"), LM__CHECK_EKIND);
  env_fini(&e);
}

/* ---- process ---- */

static lm__check_spec_t proc_spec(int pid) {
  lm__check_spec_t sp;
  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_PROCESS;
  sp.pid = pid;
  sp.interval_ms = 100; /* used only by the kill() fallback */
  return sp;
}

static void test_process_killed_is_down(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  const char *argv[] = {"sleep", "60", NULL};
  pid_t pid = spawn(argv);
  lm__check_spec_t sp = proc_spec(pid);
  lm__check_t *k = start_ok(&e, &sp);
  assert_int_equal(lm__check_status(k), LM_SVC_UP);
  spin(&e, 200);
  assert_int_equal(lm__check_status(k), LM_SVC_UP);
  assert_int_equal(kill(pid, SIGKILL), 0);
  uint64_t t0 = uv_hrtime();
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  /* Seen through the pidfd, not a poll: well under a second even on a
   * slow machine; printed, not asserted. */
  print_message("process death seen after %.1f ms\n",
                (double)(uv_hrtime() - t0) / 1e6);
  assert_int_equal(e.changes, 1);
  assert_string_equal(e.last_cause, "check");
  char want[64];
  snprintf(want, sizeof(want), "process %d exited", pid);
  assert_string_equal(e.last_out, want);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  env_fini(&e);
}

static void test_process_exited_pid_is_down(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  /* reaped: its number may be anyone's now, the pidfd cannot be opened */
  const char *argv[] = {"true", NULL};
  pid_t pid = spawn(argv);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  lm__check_spec_t sp = proc_spec(pid);
  sp.initial = LM__CHECK_INITIAL_UP; /* ignored: the probe decides */
  lm__check_t *k = start_ok(&e, &sp);
  assert_int_equal(lm__check_status(k), LM_SVC_DOWN);
  assert_non_null(strstr(lm__check_output(k), "no process with pid"));
  spin(&e, 100);
  assert_int_equal(e.changes, 0);
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_PROCESS, LM__CHECK_FAIL), 1);

  /* exited but not reaped (a zombie): the pidfd opens and says "exited" */
  pid = spawn(argv);
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
  sp = proc_spec(pid);
  k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  assert_int_equal(waitpid(pid, &st, 0), pid);
  env_fini(&e);
}

static void test_process_kill_fallback(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.process_poll_only = 1};
  env_init(&e, &o);
  const char *argv[] = {"sleep", "60", NULL};
  pid_t pid = spawn(argv);
  lm__check_spec_t sp = proc_spec(pid);
  lm__check_t *k = start_ok(&e, &sp);
  assert_int_equal(lm__check_status(k), LM_SVC_UP);
  assert_non_null(strstr(lm__check_output(k), "polled"));
  assert_true(wait_runs(&e, 2, WAIT_MS)); /* it polls */
  assert_int_equal(lm__check_status(k), LM_SVC_UP);
  assert_int_equal(kill(pid, SIGKILL), 0);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid); /* kill(0) sees zombies alive */
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  env_fini(&e);
}

/* ---- http ---- */

static void test_http_up_down_up(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  srv_t s;
  memset(&s, 0, sizeof(s));
  srv_start(&s, &e.loop, 0, 200);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", s.port);
  lm__check_spec_t sp = http_spec(url);
  lm__check_t *k = start_ok(&e, &sp);
  assert_int_equal(lm__check_status(k), LM_SVC_DOWN); /* until it passes */
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  assert_string_equal(e.last_out, "HTTP 200");
  assert_string_equal(e.last_cause, "check");
  assert_true(s.served >= 1);

  srv_stop(&s);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  print_message("server stopped: %s\n", e.last_out);
  assert_non_null(strstr(e.last_out, "onnect"));

  srv_start(&s, &e.loop, s.port, 200);
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  assert_string_equal(lm__check_output(k), "HTTP 200");
  assert_int_equal(e.changes, 3);
  assert_true(lm__checker_runs(e.c, LM_CHECK_HTTP, LM__CHECK_OK) >= 2);
  assert_true(lm__checker_runs(e.c, LM_CHECK_HTTP, LM__CHECK_FAIL) >= 1);
  srv_stop(&s);
  env_fini(&e);
}

static void test_http_500_is_down_and_3xx_up(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  srv_t s;
  memset(&s, 0, sizeof(s));
  srv_start(&s, &e.loop, 0, 500);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
  lm__check_spec_t sp = http_spec(url);
  sp.initial = LM__CHECK_INITIAL_UP;
  lm__check_t *k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  assert_string_equal(e.last_out, "HTTP 500");
  /* a redirect counts as up and is not followed (its target is closed) */
  s.code = 302;
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  assert_string_equal(e.last_out, "HTTP 302");
  srv_stop(&s);
  env_fini(&e);
}

static void test_http_silent_server_times_out(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  srv_t s;
  memset(&s, 0, sizeof(s));
  srv_start(&s, &e.loop, 0, SRV_SILENT);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
  lm__check_spec_t sp = http_spec(url);
  sp.interval_ms = 60000; /* one run */
  sp.initial = LM__CHECK_INITIAL_UP;
  lm__check_t *k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  print_message("silent server: %s\n", e.last_out);
  assert_non_null(strstr(e.last_out, "timed out"));
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_HTTP, LM__CHECK_TIMEOUT), 1);
  assert_int_equal(s.served, 0);
  srv_stop(&s);
  env_fini(&e);
}

/* ---- tcp ---- */

static void test_tcp_open_and_closed_port(void **state) {
  (void)state;
  env_t e;
  env_init(&e, NULL);
  srv_t s;
  memset(&s, 0, sizeof(s));
  srv_start(&s, &e.loop, 0, SRV_SILENT);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", s.port);
  lm__check_spec_t sp;
  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_TCP;
  sp.addr = addr;
  sp.interval_ms = 300;
  sp.timeout_ms = 300;
  lm__check_t *k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  assert_non_null(strstr(e.last_out, "success"));
  lm__check_stop(k);

  int port = closed_port(&e);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  sp.initial = LM__CHECK_INITIAL_UP;
  k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  assert_non_null(strstr(e.last_out, "refused"));
  lm__check_stop(k);

  /* a name goes through the resolver */
  snprintf(addr, sizeof(addr), "localhost:%d", s.port);
  sp.initial = LM__CHECK_INITIAL_DOWN;
  k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  srv_stop(&s);
  env_fini(&e);
}

/* ---- exec ---- */

static lm__check_spec_t exec_spec(const char *cmd) {
  lm__check_spec_t sp;
  memset(&sp, 0, sizeof(sp));
  sp.kind = LM_CHECK_EXEC;
  sp.command = cmd;
  sp.interval_ms = 60000; /* one run in these tests */
  sp.timeout_ms = 10000;
  return sp;
}

static void test_exec_true_false_output(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.allow_exec = 1};
  env_init(&e, &o);
  lm__check_spec_t sp = exec_spec("true");
  lm__check_t *k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  lm__check_stop(k);

  sp = exec_spec("false");
  sp.initial = LM__CHECK_INITIAL_UP;
  k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  assert_string_equal(e.last_out, "exit status 1");
  lm__check_stop(k);

  sp = exec_spec("echo hello; echo oops >&2; exit 3");
  sp.initial = LM__CHECK_INITIAL_UP;
  k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  assert_string_equal(e.last_out, "hello\noops\n");
  lm__check_stop(k);

  sp = exec_spec("echo hello");
  k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  assert_string_equal(lm__check_output(k), "hello\n");
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_EXEC, LM__CHECK_OK), 2);
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_EXEC, LM__CHECK_FAIL), 2);
  env_fini(&e);
}

static void test_exec_output_truncated(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.allow_exec = 1};
  env_init(&e, &o);
  /* 100 KiB: more than the kept output and than a pipe buffer */
  lm__check_spec_t sp =
      exec_spec("head -c 102400 /dev/zero | tr '\\000' a; echo done >&2");
  lm__check_t *k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  const char *out = lm__check_output(k);
  assert_int_equal(strlen(out), LM_CHECK_OUTPUT_MAX);
  for (size_t i = 0; i < LM_CHECK_OUTPUT_MAX; i++)
    if (out[i] != 'a')
      fail_msg("byte %zu is %d", i, out[i]);
  env_fini(&e);
}

static void test_exec_timeout_kills(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.allow_exec = 1};
  env_init(&e, &o);
  char cmd[512], pidf[128], kidf[128];
  snprintf(pidf, sizeof(pidf), "%s/sh.pid", e.dir);
  snprintf(kidf, sizeof(kidf), "%s/kid.pid", e.dir);
  /* the shell and a child of its own: SIGKILL reaches both */
  snprintf(cmd, sizeof(cmd), "echo $$ > %s; sleep 10 & echo $! > %s; wait",
           pidf, kidf);
  lm__check_spec_t sp = exec_spec(cmd);
  sp.timeout_ms = 200;
  sp.interval_ms = 60000;
  sp.initial = LM__CHECK_INITIAL_UP;
  uint64_t t0 = uv_hrtime();
  lm__check_t *k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  double took = (double)(uv_hrtime() - t0) / 1e6;
  print_message("sleep 10 with a 200ms timeout: down after %.0f ms\n", took);
  assert_true(took < 9000); /* killed, not waited out */
  assert_string_equal(e.last_out, "timed out after 200ms");
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_EXEC, LM__CHECK_TIMEOUT), 1);
  int shpid = read_pid(pidf), kid = read_pid(kidf);
  assert_true(shpid > 0);
  assert_false(pid_alive(shpid));
  if (kid > 0) { /* written unless the kill came first */
    arm(&e, WAIT_MS);
    while (pid_alive(kid) && !e.expired)
      uv_run(&e.loop, UV_RUN_NOWAIT), usleep(10000);
    uv_timer_stop(&e.guard);
    assert_false(pid_alive(kid));
  }
  assert_int_equal(lm__checker_running(e.c), 0);

  /* plain `sleep 10` too */
  sp = exec_spec("sleep 10");
  sp.timeout_ms = 200;
  sp.initial = LM__CHECK_INITIAL_UP;
  k = start_ok(&e, &sp);
  assert_true(wait_status(&e, k, LM_SVC_DOWN, WAIT_MS));
  assert_string_equal(lm__check_output(k), "timed out after 200ms");
  env_fini(&e);
}

static void test_close_kills_running_exec(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.allow_exec = 1};
  env_init(&e, &o);
  char cmd[512], pidf[128];
  snprintf(pidf, sizeof(pidf), "%s/sh.pid", e.dir);
  snprintf(cmd, sizeof(cmd), "echo $$ > %s.tmp; mv %s.tmp %s; sleep 30", pidf,
           pidf, pidf);
  lm__check_spec_t sp = exec_spec(cmd);
  sp.timeout_ms = 60000;
  start_ok(&e, &sp);
  arm(&e, WAIT_MS);
  while (read_pid(pidf) == 0 && !e.expired)
    uv_run(&e.loop, UV_RUN_NOWAIT), usleep(10000);
  uv_timer_stop(&e.guard);
  int pid = read_pid(pidf);
  assert_true(pid > 0);
  assert_int_equal(lm__checker_running(e.c), 1);
  env_fini(&e); /* returns once the child is reaped */
  assert_false(pid_alive(pid));
  assert_int_equal(e.changes, 0); /* no callback after close */
}

/* ---- thresholds ---- */

static void test_thresholds(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.allow_exec = 1};
  env_init(&e, &o);
  char cmd[160], flag[128];
  snprintf(flag, sizeof(flag), "%s/ok", e.dir);
  snprintf(cmd, sizeof(cmd), "test -e %s", flag);
  lm__check_spec_t sp = exec_spec(cmd);
  sp.initial = LM__CHECK_INITIAL_UP;
  sp.failures_before_down = 3;
  sp.successes_before_up = 2;
  sp.interval_ms = 150;
  sp.timeout_ms = 150;
  lm__check_t *k = start_ok(&e, &sp);
  assert_true(wait_runs(&e, 3, WAIT_MS));
  /* two failures leave it up, the third takes it down */
  assert_int_equal(e.status_after_run[0], LM_SVC_UP);
  assert_int_equal(e.status_after_run[1], LM_SVC_UP);
  assert_int_equal(e.status_after_run[2], LM_SVC_DOWN);
  assert_int_equal(e.changes, 1);
  int runs = e.runs;
  FILE *f = fopen(flag, "w");
  assert_non_null(f);
  fclose(f);
  assert_true(wait_status(&e, k, LM_SVC_UP, WAIT_MS));
  /* the first passing run after the file appeared left it down */
  int first_ok = -1;
  for (int i = runs; i < e.runs && i < 64; i++)
    if (e.status_after_run[i] == LM_SVC_UP) {
      first_ok = i;
      break;
    }
  assert_true(first_ok > runs); /* at least one passing run before up */
  assert_int_equal(e.changes, 2);
  env_fini(&e);
}

/* ---- concurrency ---- */

typedef struct sampler {
  uv_timer_t t;
  env_t *e;
} sampler_t;

static void on_sample(uv_timer_t *t) {
  sampler_t *s = t->data;
  unsigned n = lm__checker_running(s->e->c);
  if (n > s->e->max_running)
    s->e->max_running = n;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void test_concurrency_bound(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.allow_exec = 1, .max_concurrent = 2};
  env_init(&e, &o);
  char log[128], cmd[6][384];
  snprintf(log, sizeof(log), "%s/log", e.dir);
  lm__check_spec_t sp;
  for (int i = 0; i < 6; i++) {
    snprintf(cmd[i], sizeof(cmd[i]),
             "echo \"s %d $(date +%%s%%N)\" >> %s; sleep 0.3; "
             "echo \"e %d $(date +%%s%%N)\" >> %s",
             i, log, i, log);
    sp = exec_spec(cmd[i]);
    start_ok(&e, &sp);
  }
  sampler_t smp = {.e = &e};
  uv_timer_init(&e.loop, &smp.t);
  smp.t.data = &smp;
  uv_timer_start(&smp.t, on_sample, 5, 5);
  assert_true(wait_runs(&e, 6, 60000));
  uv_close((uv_handle_t *)&smp.t, NULL);
  assert_int_equal(lm__checker_runs(e.c, LM_CHECK_EXEC, LM__CHECK_OK), 6);
  assert_true(e.max_running <= 2);
  assert_int_equal(lm__checker_running(e.c), 0);
  assert_int_equal(lm__checker_queued(e.c), 0);

  /* what the commands themselves saw */
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  uint64_t start[6] = {0}, ev[12];
  int nev = 0;
  char kind;
  int idx;
  unsigned long long ts;
  while (fscanf(f, " %c %d %llu", &kind, &idx, &ts) == 3 && nev < 12) {
    assert_true(idx >= 0 && idx < 6);
    /* starts sort as even, ends as odd keys: an end before a start at the
     * same nanosecond */
    ev[nev++] = ((uint64_t)ts << 1) | (kind == 's' ? 1u : 0u);
    if (kind == 's')
      start[idx] = ts;
  }
  fclose(f);
  assert_int_equal(nev, 12);
  qsort(ev, 12, sizeof(ev[0]), cmp_u64);
  int cur = 0, max = 0;
  for (int i = 0; i < 12; i++) {
    cur += (ev[i] & 1) ? 1 : -1;
    if (cur > max)
      max = cur;
  }
  print_message("at most %d commands ran at once\n", max);
  assert_true(max <= 2);
  assert_int_equal(max, 2); /* and the bound was used */
  /* FIFO: the first two started before the last two */
  uint64_t first = start[0] > start[1] ? start[0] : start[1];
  assert_true(first < start[4] && first < start[5]);
  env_fini(&e);
}

/* ---- stop from inside a callback ---- */

static void stop_in_cb(lm__check_t *k, lm_svc_status_t s, const char *out,
                       const char *cause, void *ud) {
  on_change(k, s, out, cause, ud);
  lm__check_stop(k);
}

static void test_stop_inside_callback(void **state) {
  (void)state;
  env_t e;
  lm__checker_opts_t o = {.allow_exec = 1};
  env_init(&e, &o);
  lm__check_spec_t sp = exec_spec("true");
  sp.interval_ms = 100;
  sp.timeout_ms = 100;
  lm__check_t *k = NULL;
  char err[LM__CHECK_ERR_MAX];
  assert_int_equal(
      lm__check_start(e.c, &sp, stop_in_cb, &e, &k, err, sizeof(err)), 0);
  assert_true(wait_runs(&e, 1, WAIT_MS));
  spin(&e, 400);
  assert_int_equal(e.changes, 1);
  assert_int_equal(e.runs, 1); /* stopped: no more runs */
  env_fini(&e);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_exec_refused_unless_allowed),
      cmocka_unit_test(test_ttl_expires_without_pass),
      cmocka_unit_test(test_ttl_pass_keeps_up),
      cmocka_unit_test(test_ttl_fail_is_down_at_once),
      cmocka_unit_test(test_process_killed_is_down),
      cmocka_unit_test(test_process_exited_pid_is_down),
      cmocka_unit_test(test_process_kill_fallback),
      cmocka_unit_test(test_http_up_down_up),
      cmocka_unit_test(test_http_500_is_down_and_3xx_up),
      cmocka_unit_test(test_http_silent_server_times_out),
      cmocka_unit_test(test_tcp_open_and_closed_port),
      cmocka_unit_test(test_exec_true_false_output),
      cmocka_unit_test(test_exec_output_truncated),
      cmocka_unit_test(test_exec_timeout_kills),
      cmocka_unit_test(test_close_kills_running_exec),
      cmocka_unit_test(test_thresholds),
      cmocka_unit_test(test_concurrency_bound),
      cmocka_unit_test(test_stop_inside_callback),
  };
  return cmocka_run_group_tests_name("checks", tests, NULL, NULL);
}
