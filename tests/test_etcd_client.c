/*
 * test_etcd_client.c: bridge/etcd against a real etcd (etcd_harness.h):
 * KV through Range and Txn, comparisons and both branches, leases
 * (grant, keep-alive, revoke, a leased key going away), watches (created,
 * put, delete with prev_kv, compaction), a paused etcd (timeout), a killed
 * and restarted etcd, a too-large txn and close with requests pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "etcd.h"
#include "etcd_harness.h"
#include "etcd_test_util.h"

typedef struct fx {
  etcdh_t e;
  uv_loop_t loop;
} fx_t;

static fx_t F;

static int group_setup(void **state) {
  (void)state;
  memset(&F, 0, sizeof F);
  if (uv_loop_init(&F.loop))
    return -1;
  if (etcdh_start(&F.e)) {
    fprintf(stderr, "cannot start etcd (log in %s)\n", F.e.dir);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  etcdh_destroy(&F.e);
  uv_run(&F.loop, UV_RUN_NOWAIT);
  int rc = uv_loop_close(&F.loop);
  if (rc)
    fprintf(stderr, "loop still has handles\n");
  return rc ? -1 : 0;
}

static lm_etcd_t *client(uint32_t timeout_ms) {
  const char *eps[1] = {F.e.url};
  lm_etcd_options_t o;
  memset(&o, 0, sizeof o);
  o.endpoints = eps;
  o.nendpoints = 1;
  o.request_timeout_ms = timeout_ms;
  o.dial_timeout_ms = 1000;
  o.log = test_log;
  lm_etcd_t *c = NULL;
  char err[128];
  assert_int_equal(lm_etcd_new(&c, &F.loop, &o, err, sizeof err), 0);
  return c;
}

static void client_close(lm_etcd_t *c) {
  int done = 0;
  lm_etcd_close(c, close_done, &done);
  assert_true(etcdh_run_until(&F.loop, &done, 5000));
}

static void wait_got(got_t *g) {
  assert_true(etcdh_run_until(&F.loop, &g->called, 15000));
}

static void put(lm_etcd_t *c, const char *k, const char *v, int64_t lease) {
  lm_etcd_op_t op = {LM_ETCD_OP_PUT, K(k), NULL, 0, K(v), lease};
  got_t g = {0};
  assert_int_equal(lm_etcd_txn(c, NULL, 0, &op, 1, NULL, 0, txn_cb, &g), 0);
  wait_got(&g);
  if (g.err)
    fprintf(stderr, "put %s: %s %s\n", k, lm_etcd_err_name(g.err), g.message);
  assert_int_equal(g.err, 0);
  assert_true(g.succeeded);
}

static got_t get(lm_etcd_t *c, const char *k) {
  got_t g = {0};
  assert_int_equal(lm_etcd_range(c, K(k), NULL, 0, 0, 0, range_cb, &g), 0);
  wait_got(&g);
  return g;
}

static void test_kv(void **state) {
  (void)state;
  lm_etcd_t *c = client(5000);
  put(c, "kv/a", "1", 0);
  put(c, "kv/b", "2", 0);
  got_t g = get(c, "kv/a");
  assert_int_equal(g.err, 0);
  assert_int_equal(g.nkvs, 1);
  assert_string_equal(g.keys[0], "kv/a");
  assert_string_equal(g.values[0], "1");
  assert_true(g.revision > 0);
  assert_int_equal(lm_etcd_connected(c), 1);

  uint8_t end[16];
  size_t n = lm_etcd_prefix_end(end, K("kv/"));
  assert_int_equal(n, 3);
  assert_memory_equal(end, "kv0", 3);
  got_t p = {0};
  assert_int_equal(lm_etcd_range(c, K("kv/"), end, n, 0, 0, range_cb, &p), 0);
  wait_got(&p);
  assert_int_equal(p.nkvs, 2);
  assert_int_equal(p.count, 2);
  got_t l = {0};
  assert_int_equal(lm_etcd_range(c, K("kv/"), end, n, 1, 0, range_cb, &l), 0);
  wait_got(&l);
  assert_int_equal(l.nkvs, 1);
  assert_int_equal(l.more, 1);
  got_t co = {0};
  assert_int_equal(lm_etcd_range(c, K("kv/"), end, n, 0,
                                 LM_ETCD_RANGE_COUNT_ONLY, range_cb, &co), 0);
  wait_got(&co);
  assert_int_equal(co.nkvs, 0);
  assert_int_equal(co.count, 2);

  lm_etcd_op_t del = {LM_ETCD_OP_DELETE, K("kv/a"), NULL, 0, NULL, 0, 0};
  got_t d = {0};
  assert_int_equal(lm_etcd_txn(c, NULL, 0, &del, 1, NULL, 0, txn_cb, &d), 0);
  wait_got(&d);
  assert_int_equal(d.err, 0);
  g = get(c, "kv/a");
  assert_int_equal(g.nkvs, 0);
  lm_etcd_stats_t st;
  lm_etcd_stats(c, &st);
  assert_true(st.responses >= 7);
  assert_int_equal(st.pending, 0);
  client_close(c);
}

static void test_txn_branches(void **state) {
  (void)state;
  lm_etcd_t *c = client(5000);
  lm_etcd_cmp_t cmp = {LM_ETCD_CMP_VERSION, LM_ETCD_CMP_EQUAL, K("tx/k"), 0,
                       NULL, 0};
  lm_etcd_op_t succ[2] = {
      {LM_ETCD_OP_PUT, K("tx/k"), NULL, 0, K("first"), 0},
      {LM_ETCD_OP_RANGE, K("tx/k"), NULL, 0, NULL, 0, 0},
  };
  lm_etcd_op_t fail[1] = {{LM_ETCD_OP_RANGE, K("tx/k"), NULL, 0, NULL, 0, 0}};
  got_t g = {0};
  assert_int_equal(lm_etcd_txn(c, &cmp, 1, succ, 2, fail, 1, txn_cb, &g), 0);
  wait_got(&g);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.succeeded, 1);
  assert_int_equal(g.nkvs, 1);
  assert_string_equal(g.values[0], "first");
  got_t h = {0};
  assert_int_equal(lm_etcd_txn(c, &cmp, 1, succ, 2, fail, 1, txn_cb, &h), 0);
  wait_got(&h);
  assert_int_equal(h.err, 0);
  assert_int_equal(h.succeeded, 0);
  assert_int_equal(h.nkvs, 1);
  assert_string_equal(h.values[0], "first");
  /* value comparison */
  lm_etcd_cmp_t vc = {LM_ETCD_CMP_VALUE, LM_ETCD_CMP_EQUAL, K("tx/k"), 0,
                      K("first")};
  got_t v = {0};
  assert_int_equal(lm_etcd_txn(c, &vc, 1, NULL, 0, NULL, 0, txn_cb, &v), 0);
  wait_got(&v);
  assert_int_equal(v.succeeded, 1);
  client_close(c);
}

static void test_lease(void **state) {
  (void)state;
  lm_etcd_t *c = client(5000);
  got_t g = {0};
  assert_int_equal(lm_etcd_lease_grant(c, 30, 0, lease_cb, &g), 0);
  wait_got(&g);
  assert_int_equal(g.err, 0);
  assert_true(g.id > 0);
  assert_int_equal(g.ttl, 30);
  int64_t id = g.id;
  put(c, "lease/k", "v", id);
  got_t r = get(c, "lease/k");
  assert_int_equal(r.nkvs, 1);
  assert_int_equal(r.leases[0], id);
  got_t k1 = {0}, k2 = {0};
  assert_int_equal(lm_etcd_lease_keepalive(c, id, lease_cb, &k1), 0);
  assert_int_equal(lm_etcd_lease_keepalive(c, id, lease_cb, &k2), 0);
  wait_got(&k1);
  wait_got(&k2);
  assert_int_equal(k1.err, 0);
  assert_int_equal(k1.id, id);
  assert_true(k1.ttl > 0);
  assert_int_equal(k2.err, 0);
  got_t rv = {0};
  assert_int_equal(lm_etcd_lease_revoke(c, id, done_cb, &rv), 0);
  wait_got(&rv);
  assert_int_equal(rv.err, 0);
  r = get(c, "lease/k");
  assert_int_equal(r.nkvs, 0);
  got_t k3 = {0};
  assert_int_equal(lm_etcd_lease_keepalive(c, id, lease_cb, &k3), 0);
  wait_got(&k3);
  assert_int_equal(k3.err, LM_ETCD_ELEASE);
  got_t rv2 = {0};
  assert_int_equal(lm_etcd_lease_revoke(c, id, done_cb, &rv2), 0);
  wait_got(&rv2);
  assert_int_equal(rv2.err, LM_ETCD_ELEASE);
  assert_true(rv2.grpc_status != 0);
  client_close(c);
}

static void test_watch(void **state) {
  (void)state;
  lm_etcd_t *c = client(5000);
  wrec_t w;
  memset(&w, 0, sizeof w);
  uint64_t id = 0;
  uint8_t end[8];
  size_t n = lm_etcd_prefix_end(end, K("w/"));
  assert_int_equal(lm_etcd_watch(c, K("w/"), end, n, 0, 1, watch_cb, &w, &id),
                   0);
  int one = 0;
  while (w.n < 1 && etcdh_run_until(&F.loop, &one, 100) == 0 && one++ < 100)
    one = 0;
  assert_true(w.n >= 1);
  assert_int_equal(w.m[0].kind, LM_ETCD_WATCH_CREATED);
  put(c, "w/x", "1", 0);
  put(c, "w/x", "2", 0);
  lm_etcd_op_t del = {LM_ETCD_OP_DELETE, K("w/x"), NULL, 0, NULL, 0, 0};
  got_t d = {0};
  assert_int_equal(lm_etcd_txn(c, NULL, 0, &del, 1, NULL, 0, txn_cb, &d), 0);
  wait_got(&d);
  int events = 0;
  for (int tries = 0; tries < 50; tries++) {
    events = 0;
    for (int i = 0; i < w.n; i++)
      events += (int)w.m[i].nevents;
    if (events >= 3)
      break;
    int z = 0;
    etcdh_run_until(&F.loop, &z, 100);
  }
  assert_int_equal(events, 3);
  /* in order: put 1, put 2 (prev 1), delete (prev 2) */
  int seen = 0;
  for (int i = 0; i < w.n; i++)
    for (size_t e = 0; e < w.m[i].nevents; e++) {
      assert_int_equal(w.m[i].kind, LM_ETCD_WATCH_EVENTS);
      assert_string_equal(w.m[i].key[e], "w/x");
      if (seen == 0) {
        assert_int_equal(w.m[i].is_delete[e], 0);
        assert_string_equal(w.m[i].value[e], "1");
      } else if (seen == 1) {
        assert_int_equal(w.m[i].has_prev[e], 1);
        assert_string_equal(w.m[i].prev_value[e], "1");
      } else {
        assert_int_equal(w.m[i].is_delete[e], 1);
        assert_int_equal(w.m[i].has_prev[e], 1);
        assert_string_equal(w.m[i].prev_value[e], "2");
      }
      seen++;
    }
  assert_int_equal(lm_etcd_watch_cancel(c, id), 0);
  assert_int_equal(lm_etcd_watch_cancel(c, id), LM_ETCD_EINVAL);
  int before = w.n;
  put(c, "w/x", "3", 0);
  int z = 0;
  etcdh_run_until(&F.loop, &z, 200);
  assert_int_equal(w.n, before);
  client_close(c);
}

static void test_compacted_watch(void **state) {
  (void)state;
  lm_etcd_t *c = client(5000);
  put(c, "cw/k", "1", 0);
  int64_t first = get(c, "cw/k").revision;
  put(c, "cw/k", "2", 0);
  put(c, "cw/k", "3", 0);
  int64_t last = get(c, "cw/k").revision;
  got_t g = {0};
  assert_int_equal(lm_etcd_compact(c, last, done_cb, &g), 0);
  wait_got(&g);
  assert_int_equal(g.err, 0);
  /* a Range at a compacted revision is not in the API; a watch is */
  wrec_t w;
  memset(&w, 0, sizeof w);
  uint64_t id;
  assert_int_equal(
      lm_etcd_watch(c, K("cw/k"), NULL, 0, first, 0, watch_cb, &w, &id), 0);
  assert_true(etcdh_run_until(&F.loop, &w.ended, 5000));
  int compacted = 0;
  for (int i = 0; i < w.n; i++)
    if (w.m[i].kind == LM_ETCD_WATCH_COMPACTED) {
      compacted = 1;
      assert_true(w.m[i].compact_revision >= first);
    }
  assert_true(compacted);
  assert_int_equal(w.m[w.n - 1].kind, LM_ETCD_WATCH_CANCELED);
  /* compacting again at an old revision: ECOMPACTED */
  got_t g2 = {0};
  assert_int_equal(lm_etcd_compact(c, first, done_cb, &g2), 0);
  wait_got(&g2);
  assert_int_equal(g2.err, LM_ETCD_ECOMPACTED);
  client_close(c);
}

static void test_too_large(void **state) {
  (void)state;
  lm_etcd_t *c = client(5000);
  static uint8_t big[1 << 20];
  memset(big, 'x', sizeof big);
  lm_etcd_op_t ops[2] = {
      {LM_ETCD_OP_PUT, K("big/1"), NULL, 0, big, sizeof big, 0},
      {LM_ETCD_OP_PUT, K("big/2"), NULL, 0, big, sizeof big, 0},
  };
  size_t sz = lm_etcd_txn_size(NULL, 0, ops, 2, NULL, 0);
  assert_true(sz > 2 * sizeof big && sz < 2 * sizeof big + 100);
  /* one put: the value, key and tags; 2 ops: twice that */
  size_t one = lm_etcd_txn_size(NULL, 0, ops, 1, NULL, 0);
  assert_true(one > sizeof big && one < sizeof big + 32);
  assert_int_equal(sz, 2 * one);
  got_t g = {0};
  assert_int_equal(lm_etcd_txn(c, NULL, 0, ops, 2, NULL, 0, txn_cb, &g),
                   LM_ETCD_ETOOLARGE);
  /* one of them is fine (etcd's limit is 1.5 MiB) */
  assert_int_equal(lm_etcd_txn(c, NULL, 0, ops, 1, NULL, 0, txn_cb, &g), 0);
  wait_got(&g);
  assert_int_equal(g.called, 1);
  assert_int_equal(g.err, 0);
  client_close(c);
}

static void test_close_pending(void **state) {
  (void)state;
  lm_etcd_t *c = client(5000);
  got_t a = {0}, b = {0}, l = {0};
  wrec_t w;
  memset(&w, 0, sizeof w);
  uint64_t id;
  assert_int_equal(lm_etcd_range(c, K("x"), NULL, 0, 0, 0, range_cb, &a), 0);
  assert_int_equal(lm_etcd_lease_grant(c, 10, 0, lease_cb, &l), 0);
  assert_int_equal(lm_etcd_watch(c, K("x"), NULL, 0, 0, 0, watch_cb, &w, &id),
                   0);
  int done = 0;
  lm_etcd_close(c, close_done, &done);
  assert_int_equal(a.called, 1);
  assert_int_equal(a.err, LM_ETCD_ECANCELED);
  assert_int_equal(l.err, LM_ETCD_ECANCELED);
  assert_int_equal(w.ended, 1);
  assert_int_equal(w.m[w.n - 1].err, LM_ETCD_ECANCELED);
  assert_true(etcdh_run_until(&F.loop, &done, 5000));
  assert_int_equal(a.called, 1);
  (void)b;

  /* closed while connected with a request in flight */
  c = client(5000);
  got_t g = get(c, "x");
  assert_int_equal(g.err, 0);
  got_t p = {0};
  assert_int_equal(lm_etcd_range(c, K("x"), NULL, 0, 0, 0, range_cb, &p), 0);
  done = 0;
  lm_etcd_close(c, close_done, &done);
  assert_int_equal(p.called, 1);
  assert_int_equal(p.err, LM_ETCD_ECANCELED);
  assert_true(etcdh_run_until(&F.loop, &done, 5000));
  assert_int_equal(p.called, 1);
}

/* A get that may meet a slow etcd on a loaded machine: retried. */
static got_t get_settled(lm_etcd_t *c, const char *k) {
  got_t g = {0};
  for (int i = 0; i < 5; i++) {
    g = get(c, k);
    if (g.err != LM_ETCD_ETIMEDOUT)
      break;
  }
  if (g.err)
    fprintf(stderr, "get %s: %s %s\n", k, lm_etcd_err_name(g.err), g.message);
  return g;
}

static void test_timeout(void **state) {
  (void)state;
  lm_etcd_t *c = client(1000);
  got_t g = get_settled(c, "x");
  assert_int_equal(g.err, 0);
  lm_etcd_stats_t st0;
  lm_etcd_stats(c, &st0);
  assert_int_equal(etcdh_pause(&F.e), 0);
  got_t t = {0};
  assert_int_equal(lm_etcd_range(c, K("x"), NULL, 0, 0, 0, range_cb, &t), 0);
  wait_got(&t);
  etcdh_signal(&F.e, SIGCONT);
  assert_int_equal(t.err, LM_ETCD_ETIMEDOUT);
  lm_etcd_stats_t st;
  lm_etcd_stats(c, &st);
  assert_int_equal(st.timeouts, st0.timeouts + 1);
  /* the connection still works once etcd runs again */
  g = get_settled(c, "x");
  assert_int_equal(g.err, 0);
  client_close(c);
}

static int state_changes;
static void on_state(void *ud, int connected, int err, const char *msg) {
  (void)ud;
  (void)msg;
  (void)err;
  (void)connected;
  state_changes++;
}

static void test_restart(void **state) {
  (void)state;
  lm_etcd_t *c = client(2000);
  lm_etcd_on_state(c, on_state, NULL);
  got_t g = get(c, "x");
  assert_int_equal(g.err, 0);
  assert_int_equal(state_changes, 1);
  got_t lg = {0};
  assert_int_equal(lm_etcd_lease_grant(c, 60, 0, lease_cb, &lg), 0);
  wait_got(&lg);
  assert_int_equal(lg.err, 0);
  got_t ka = {0};
  assert_int_equal(lm_etcd_lease_keepalive(c, lg.id, lease_cb, &ka), 0);
  wait_got(&ka);
  assert_int_equal(ka.err, 0);
  wrec_t w;
  memset(&w, 0, sizeof w);
  uint64_t wid;
  assert_int_equal(lm_etcd_watch(c, K("x"), NULL, 0, 0, 0, watch_cb, &w, &wid),
                   0);
  int z = 0;
  while (w.n < 1 && z++ < 100) {
    int zz = 0;
    etcdh_run_until(&F.loop, &zz, 50);
  }
  assert_int_equal(w.m[0].kind, LM_ETCD_WATCH_CREATED);
  etcdh_stop(&F.e, SIGKILL);
  got_t d = {0};
  assert_int_equal(lm_etcd_range(c, K("x"), NULL, 0, 0, 0, range_cb, &d), 0);
  wait_got(&d);
  assert_true(d.err == LM_ETCD_ECONNRESET || d.err == LM_ETCD_ECONNECT);
  assert_int_equal(lm_etcd_connected(c), 0);
  /* the watch ended with the connection */
  assert_int_equal(w.ended, 1);
  assert_int_equal(w.m[w.n - 1].kind, LM_ETCD_WATCH_ERROR);
  assert_int_equal(w.m[w.n - 1].err, LM_ETCD_ECONNRESET);
  assert_int_equal(state_changes, 2);
  got_t d2 = {0};
  assert_int_equal(lm_etcd_range(c, K("x"), NULL, 0, 0, 0, range_cb, &d2), 0);
  wait_got(&d2);
  assert_int_equal(d2.err, LM_ETCD_ECONNECT);
  assert_int_equal(etcdh_start(&F.e), 0);
  int ok = 0;
  for (int i = 0; i < 20 && !ok; i++) {
    g = get(c, "kv/b");
    ok = g.err == 0;
  }
  assert_true(ok);
  assert_int_equal(g.nkvs, 1); /* the data survived */
  assert_int_equal(lm_etcd_connected(c), 1);
  /* the keep-alive stream is opened again; the lease survived */
  got_t ka2 = {0};
  assert_int_equal(lm_etcd_lease_keepalive(c, lg.id, lease_cb, &ka2), 0);
  wait_got(&ka2);
  assert_int_equal(ka2.err, 0);
  assert_true(ka2.ttl > 0);
  client_close(c);
}

static void test_bad_args(void **state) {
  (void)state;
  lm_etcd_options_t o;
  memset(&o, 0, sizeof o);
  lm_etcd_t *c = NULL;
  char err[128];
  assert_int_equal(lm_etcd_new(&c, &F.loop, &o, err, sizeof err),
                   LM_ETCD_EINVAL);
  const char *bad[1] = {"tcp://127.0.0.1:1"};
  o.endpoints = bad;
  o.nendpoints = 1;
  assert_int_equal(lm_etcd_new(&c, &F.loop, &o, err, sizeof err),
                   LM_ETCD_EINVAL);
  const char *good[1] = {"http://127.0.0.1:1"};
  o.endpoints = good;
  o.user = "u";
  assert_int_equal(lm_etcd_new(&c, &F.loop, &o, err, sizeof err),
                   LM_ETCD_EINVAL);
  assert_string_equal(lm_etcd_err_name(LM_ETCD_ECOMPACTED),
                      "LM_ETCD_ECOMPACTED");
  assert_string_equal(lm_etcd_strerror(LM_ETCD_ELEASE), "lease not found");
  uint8_t out[4];
  const uint8_t ff[2] = {0xff, 0xff};
  assert_int_equal(lm_etcd_prefix_end(out, ff, 2), 1);
  assert_int_equal(out[0], 0);
  const uint8_t af[2] = {'a', 0xff};
  assert_int_equal(lm_etcd_prefix_end(out, af, 2), 1);
  assert_int_equal(out[0], 'b');
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_kv),
      cmocka_unit_test(test_txn_branches),
      cmocka_unit_test(test_lease),
      cmocka_unit_test(test_watch),
      cmocka_unit_test(test_compacted_watch),
      cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_close_pending),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_restart),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
