/*
 * test_node_services.c: services on real nodes (include/livemesh/services.h)
 * end to end: registration on one node is seen by every other, status
 * changes and maintenance travel, watches see the initial state and then
 * each transition in order, a dead member's services answer down, a
 * hundred services travel whole over the stream, and a member with a valid
 * certificate cannot announce or alter another member's services.
 *
 * Real nodes on 127.0.0.1, one uv loop per test (tests/node_harness.h).
 * Deadlines are generous: nothing here asserts a wall-clock figure.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "node_harness.h"
#include "node_internal.h"
#include "store.h"
#include "svc_codec.h"
#include "swim_proto.h"
#include "trust.h"

/* ------------------------------------------------------------ helpers -- */

static void spec_init(lm_service_spec_t *s, const char *type) {
  memset(s, 0, sizeof *s);
  s->type = type;
  s->worker = -1;
}

static int reg(tnode_t *t, lm_service_spec_t *s, uint8_t uuid[LM_UUID_LEN]) {
  char err[256];
  int rc = lm_node_service_register(t->node, s, uuid, err, sizeof err);
  if (rc)
    print_message("register on %s: %s (%s)\n", t->name, lm_strerror(rc), err);
  return rc;
}

/* Every open node in [0, n) answers is_up(type, host) with `want`. */
typedef struct up_arg {
  cluster_t *c;
  const char *type, *host;
  int want;
} up_arg_t;

static int all_up_is(void *arg) {
  up_arg_t *a = arg;
  for (int i = 0; i < a->c->n; i++) {
    tnode_t *t = &a->c->t[i];
    if (!t->node)
      continue;
    if (lm_node_is_up(t->node, a->type, a->host, NULL) != a->want)
      return 0;
  }
  return 1;
}

static int wait_up_is(cluster_t *c, const char *type, const char *host,
                      int want, uint64_t ms) {
  up_arg_t a = {c, type, host, want};
  return run_until(c, all_up_is, &a, ms);
}

typedef struct count_arg {
  cluster_t *c;
  const char *host;
  int want;
} count_arg_t;

static int count_cb(void *ud, const lm_service_view_t *v) {
  (void)v;
  (*(int *)ud)++;
  return 0;
}

static int services_on(tnode_t *t, const char *host) {
  lm_service_filter_t f = {.host = host, .status = -1};
  int k = 0;
  assert_true(lm_node_services_each(t->node, &f, count_cb, &k) >= 0);
  return k;
}

static int all_count_is(void *arg) {
  count_arg_t *a = arg;
  for (int i = 0; i < a->c->n; i++)
    if (a->c->t[i].node && services_on(&a->c->t[i], a->host) != a->want)
      return 0;
  return 1;
}

static cluster_t *three(void) {
  cluster_t *c = cluster_new(200, 100);
  tnode_t *a = add(c, "a");
  join(add(c, "b"), a);
  join(add(c, "c"), a);
  assert_true(wait_converged(c, 0, 3, 3, 20000));
  return c;
}

/* -------------------------------------------------------------- tests -- */

/* A service registered on a is seen up by b and c; its TTL lapses and
 * everyone sees it down; a pass brings it back; maintenance shows as
 * maintenance (is_up false); deregistering makes it unknown everywhere. */
static void test_register_ttl_maint_deregister(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = three();
  tnode_t *a = &c->t[0];
  lm_service_spec_t s;
  spec_init(&s, "nova-compute");
  s.ttl_ms = 1500;
  s.pid = 4242;
  s.port = 8774;
  uint8_t u[LM_UUID_LEN];
  assert_int_equal(reg(a, &s, u), 0);
  assert_true(wait_up_is(c, "nova-compute", "a", 1, 10000));

  lm_is_up_t r;
  assert_int_equal(lm_node_is_up(c->t[1].node, "nova-compute", "a", &r), 1);
  assert_true(r.found);
  assert_int_equal(r.status, LM_SVC_UP);
  assert_int_equal(r.member_status, LM_ALIVE);
  assert_memory_equal(r.uuid, u, LM_UUID_LEN);
  assert_string_equal(r.host, "a");
  assert_true(r.age_ms >= 0);

  /* no pass: down everywhere after the TTL */
  assert_true(wait_up_is(c, "nova-compute", "a", 0, 10000));
  assert_int_equal(lm_node_is_up_uuid(c->t[2].node, u, &r), 0);
  assert_true(r.found);
  assert_int_equal(r.status, LM_SVC_DOWN);

  assert_int_equal(lm_node_service_pass(a->node, u, "all good"), 0);
  assert_true(wait_up_is(c, "nova-compute", "a", 1, 10000));
  assert_int_equal(lm_node_service_fail(a->node, u, "disk full"), 0);
  assert_true(wait_up_is(c, "nova-compute", "a", 0, 10000));
  assert_int_equal(lm_node_service_pass(a->node, u, NULL), 0);
  assert_true(wait_up_is(c, "nova-compute", "a", 1, 10000));

  assert_int_equal(lm_node_service_maint(a->node, u, 0, "kernel upgrade"), 0);
  assert_true(wait_up_is(c, "nova-compute", "a", 0, 10000));
  assert_int_equal(lm_node_is_up_uuid(c->t[1].node, u, &r), 0);
  assert_int_equal(r.status, LM_SVC_MAINT);
  assert_int_equal(lm_node_service_maint_off(a->node, u), 0);
  assert_int_equal(lm_node_service_pass(a->node, u, NULL), 0);
  assert_true(wait_up_is(c, "nova-compute", "a", 1, 10000));

  assert_int_equal(lm_node_service_deregister(a->node, u), 0);
  count_arg_t ca = {c, "a", 0};
  assert_true(run_until(c, all_count_is, &ca, 10000));
  assert_int_equal(lm_node_is_up_uuid(c->t[1].node, u, &r), 0);
  assert_false(r.found);
  assert_int_equal(lm_node_service_deregister(a->node, u), LM_ENOTFOUND);
  cluster_free(c);
}

/* Bad registrations change nothing and name the field. */
static void test_bad_registrations(void **state) {
  (void)state;
  watchdog(60);
  cluster_t *c = cluster_new(200, 100);
  tnode_t *a = add(c, "a");
  lm_service_spec_t s;
  char err[256];
  uint8_t u[LM_UUID_LEN];

  spec_init(&s, NULL);
  assert_int_equal(lm_node_service_register(a->node, &s, u, err, sizeof err),
                   LM_EINVAL);
  assert_non_null(strstr(err, "type"));

  spec_init(&s, "web");
  s.http_check = "ftp://x";
  assert_int_equal(lm_node_service_register(a->node, &s, u, err, sizeof err),
                   LM_EINVAL);
  assert_non_null(strstr(err, "url"));

  spec_init(&s, "web");
  s.exec_check = "true";
  assert_int_equal(lm_node_service_register(a->node, &s, u, err, sizeof err),
                   LM_EPERM);

  spec_init(&s, "web");
  s.ttl_ms = 1000;
  s.tcp_check = "127.0.0.1:1";
  assert_int_equal(lm_node_service_register(a->node, &s, u, err, sizeof err),
                   LM_EINVAL);

  spec_init(&s, "web");
  const char *tags[17];
  for (int i = 0; i < 17; i++)
    tags[i] = "t";
  s.tags = tags;
  s.ntags = 17;
  assert_int_equal(lm_node_service_register(a->node, &s, u, err, sizeof err),
                   LM_EINVAL);
  assert_non_null(strstr(err, "tags"));

  spec_init(&s, "web");
  assert_int_equal(reg(a, &s, u), 0);
  s.uuid = u; /* the same uuid again */
  assert_int_equal(lm_node_service_register(a->node, &s, NULL, err, sizeof err),
                   LM_EEXIST);
  assert_int_equal(services_on(a, "a"), 1);
  /* pass on a service without a TTL */
  assert_int_equal(lm_node_service_pass(a->node, u, NULL), LM_EINVAL);
  cluster_free(c);
}

/* Watches: the initial state first, then each real transition in order
 * with consecutive sequence numbers; nothing for a change that keeps the
 * status. */
typedef struct wrec {
  int n;
  uint64_t seq[64];
  int initial[64];
  char new_status[64][16];
  char cause[64][32];
} wrec_t;

static void on_watch(lm_node_t *node, const lm_watch_event_t *ev, void *ud) {
  (void)node;
  wrec_t *w = ud;
  if (w->n >= 64)
    return;
  w->seq[w->n] = ev->seq;
  w->initial[w->n] = ev->initial;
  snprintf(w->new_status[w->n], 16, "%s", ev->new_status);
  snprintf(w->cause[w->n], 32, "%s", ev->cause);
  w->n++;
}

typedef struct wait_n {
  wrec_t *w;
  int n;
} wait_n_t;

static int has_n(void *arg) {
  wait_n_t *a = arg;
  return a->w->n >= a->n;
}

static void test_watch_order(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = three();
  tnode_t *a = &c->t[0], *b = &c->t[1];
  lm_service_spec_t s;
  spec_init(&s, "worker");
  s.ttl_ms = 60000;
  uint8_t u[LM_UUID_LEN];
  assert_int_equal(reg(a, &s, u), 0);
  assert_true(wait_up_is(c, "worker", "a", 1, 10000));

  wrec_t w;
  memset(&w, 0, sizeof w);
  lm_watch_filter_t f = {.type = "worker"};
  uint64_t id;
  assert_int_equal(lm_node_watch(b->node, &f, on_watch, &w, &id), 0);
  wait_n_t one = {&w, 1};
  assert_true(run_until(c, has_n, &one, 5000));
  assert_int_equal(w.n, 1);
  assert_true(w.initial[0]);
  assert_string_equal(w.new_status[0], "up");

  /* a pass that keeps it up is no transition */
  assert_int_equal(lm_node_service_pass(a->node, u, "still fine"), 0);
  run_for(c, 500);
  assert_int_equal(w.n, 1);

  assert_int_equal(lm_node_service_fail(a->node, u, "broken"), 0);
  wait_n_t two = {&w, 2};
  assert_true(run_until(c, has_n, &two, 10000));
  assert_int_equal(lm_node_service_pass(a->node, u, NULL), 0);
  wait_n_t three_ = {&w, 3};
  assert_true(run_until(c, has_n, &three_, 10000));
  assert_string_equal(w.new_status[1], "down");
  assert_string_equal(w.cause[1], "ttl");
  assert_string_equal(w.new_status[2], "up");
  for (int i = 0; i < w.n; i++)
    assert_int_equal(w.seq[i], (uint64_t)i + 1);
  assert_false(w.initial[1]);

  assert_int_equal(lm_node_unwatch(b->node, id), 0);
  assert_int_equal(lm_node_service_fail(a->node, u, NULL), 0);
  assert_true(wait_up_is(c, "worker", "a", 0, 10000));
  assert_int_equal(w.n, 3);
  cluster_free(c);
}

/* A member that crashes: its services answer down everywhere once it is
 * declared dead. */
static void test_dead_member_services_down(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = three();
  tnode_t *cc = &c->t[2];
  lm_service_spec_t s;
  spec_init(&s, "db");
  uint8_t u[LM_UUID_LEN];
  assert_int_equal(reg(cc, &s, u), 0);
  assert_true(wait_up_is(c, "db", "c", 1, 10000));
  node_close(cc); /* no leave: a crash */
  assert_true(wait_up_is(c, "db", "c", 0, 30000));
  lm_is_up_t r;
  assert_int_equal(lm_node_is_up(c->t[0].node, "db", "c", &r), 0);
  assert_true(r.found);
  assert_int_equal(r.status, LM_SVC_DOWN);
  assert_true(r.member_status == LM_DEAD);
  cluster_free(c);
}

/* A hundred services, too many for one datagram, reach every member whole
 * over the stream; four workers of one type are four services. */
static void test_hundred_services(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = three();
  tnode_t *b = &c->t[1];
  char names[100][16];
  for (int i = 0; i < 100; i++) {
    lm_service_spec_t s;
    spec_init(&s, i < 4 ? "httpd" : "svc");
    snprintf(names[i], sizeof names[i], "svc-%03d", i);
    s.name = names[i];
    s.worker = i < 4 ? i : -1;
    s.pid = 0;
    const char *k[] = {"zone", "rack"}, *v[] = {"eu-1", "r42"};
    s.meta_keys = k;
    s.meta_values = v;
    s.nmeta = 2;
    uint8_t u[LM_UUID_LEN];
    assert_int_equal(reg(b, &s, u), 0);
  }
  count_arg_t ca = {c, "b", 100};
  assert_true(run_until(c, all_count_is, &ca, 20000));
  lm_service_filter_t f = {.type = "httpd", .host = "b", .status = -1};
  int k = 0;
  assert_int_equal(lm_node_services_each(c->t[2].node, &f, count_cb, &k), 4);
  lm_stats_t st;
  assert_int_equal(lm_node_stats(b->node, &st), 0);
  assert_true(st.svc_lists_sent >= 2);
  assert_int_equal(st.services_local, 100);
  cluster_free(c);
}

/* A member with a valid certificate forges a list of another member's
 * services, signed with its own key: it is dropped and counted, and the
 * view keeps the genuine list. Replaying the genuine, older list is
 * dropped as stale. */
static void test_forged_list_rejected(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = three();
  tnode_t *a = &c->t[0], *b = &c->t[1], *m = &c->t[2];
  lm_service_spec_t s;
  spec_init(&s, "api");
  uint8_t u[LM_UUID_LEN];
  assert_int_equal(reg(a, &s, u), 0);
  assert_true(wait_up_is(c, "api", "a", 1, 10000));

  /* the genuine list as b holds it, kept for a replay */
  const uint8_t *raw;
  size_t raw_len;
  uint64_t seq;
  uint8_t old[4096];
  assert_int_equal(lm_store_services_raw(lm__svc_store(b->node), a->node->kp.pk,
                                         &raw, &raw_len, &seq),
                   0);
  assert_true(raw_len < sizeof old);
  memcpy(old, raw, raw_len);
  size_t old_len = raw_len;
  assert_int_equal(lm_node_service_fail(a->node, u, NULL), LM_EINVAL);
  lm_service_spec_t s2;
  spec_init(&s2, "api2");
  uint8_t u2[LM_UUID_LEN];
  assert_int_equal(reg(a, &s2, u2), 0); /* a newer genuine list */
  assert_true(wait_up_is(c, "api2", "a", 1, 10000));

  /* m forges a's list: api down, a fake service up, a higher seq */
  lm_service_t fake[2];
  memset(fake, 0, sizeof fake);
  memcpy(fake[0].uuid, u, LM_UUID_LEN);
  fake[0].type = "api";
  fake[0].status = LM_SVC_DOWN;
  memset(fake[1].uuid, 7, LM_UUID_LEN);
  fake[1].type = "evil";
  for (int i = 0; i < 2; i++) {
    fake[i].name = fake[i].region = fake[i].cause = fake[i].note = "";
    fake[i].worker = -1;
  }
  uint8_t *body;
  size_t blen;
  assert_int_equal(lm_svclist_encode(&body, &blen, a->node->kp.pk, UINT32_MAX,
                                     UINT64_MAX, 1, fake, 2),
                   0);
  uint8_t *forged = malloc(blen + LM_SIG_LEN);
  memcpy(forged, body, blen);
  assert_int_equal(lm_svc_sign(forged + blen, body, blen, &m->node->kp), 0);

  lm_stats_t before, after;
  assert_int_equal(lm_node_stats(b->node, &before), 0);
  swim_addr_t to;
  struct sockaddr_storage ss;
  assert_int_equal(lm__parse_hostport(b->addr, &ss), 0);
  lm__sa_to_swim((struct sockaddr *)&ss, &to);
  for (int round = 0; round < 2; round++) {
    const uint8_t *p = round == 0 ? forged : old;
    size_t len = round == 0 ? blen + LM_SIG_LEN : old_len;
    swim_wbuf_t w;
    swim_wbuf_init_dyn(&w);
    msgpack_packer pk;
    swim_wbuf_packer(&w, &pk);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 83);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_bin(&pk, len);
    msgpack_pack_bin_body(&pk, p, len);
    if (w.len <= lm__node_max_datagram(m->node))
      lm__core_send(m->node, &to, w.p, w.len);
    else
      lm__core_send_stream(m->node, &to, w.p, w.len);
    free(w.p);
  }
  run_for(c, 1500);
  assert_int_equal(lm_node_stats(b->node, &after), 0);
  uint64_t bad = 0, stale = 0;
  for (size_t i = 0; i < after.ndropped; i++) {
    if (!strcmp(after.dropped[i].reason, "service_list_bad_signature"))
      bad = after.dropped[i].count;
    if (!strcmp(after.dropped[i].reason, "service_list_stale"))
      stale = after.dropped[i].count;
  }
  assert_int_equal(bad, 1);
  assert_true(stale >= 1);
  assert_true(after.dropped_total >= before.dropped_total + 2);
  /* the view is the genuine one */
  assert_int_equal(lm_node_is_up(b->node, "api", "a", NULL), 1);
  assert_int_equal(lm_node_is_up(b->node, "evil", "a", NULL), 0);
  assert_int_equal(lm_node_is_up(b->node, "api2", "a", NULL), 1);
  free(body);
  free(forged);
  cluster_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_ttl_maint_deregister),
      cmocka_unit_test(test_bad_registrations),
      cmocka_unit_test(test_watch_order),
      cmocka_unit_test(test_dead_member_services_down),
      cmocka_unit_test(test_hundred_services),
      cmocka_unit_test(test_forged_list_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
