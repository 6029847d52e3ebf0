/*
 * test_node_snapshot.c: the last-known view on real nodes
 * (lm_node_snapshot_save / _load, lm_node_view_stale, include/livemesh/
 * services.h).
 *
 * A node saves its view of three members with services; the same node
 * (same identity) restarted alone loads it: the members are in its view
 * with their services, answers are stale with an age, and none of them is
 * in the protocol's membership. Edited files: a status flipped inside a
 * signed service list drops that list (the member stays, without it); a
 * member carrying another member's certificate is dropped; a status
 * edited in this node's own observations breaks its seal and drops the
 * member; the rest is kept. A file of another node or another cluster, or
 * a truncated one, is refused whole. After joining, the first full state
 * exchange ends staleness. A node whose only peer crashes keeps answering
 * from its last view, stale, until a peer is back and the view has
 * reconverged.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "node_harness.h"
#include "snapshot.h"
#include "svc_codec.h"

static char g_dir[256];

static void path_of(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", g_dir, name);
}

/* A node with a given identity (restarts keep theirs). */
static tnode_t *add_id(cluster_t *c, const char *name, lm_identity_t *id,
                       const char *cluster) {
  tnode_t *t = &c->t[c->n++];
  memset(t, 0, sizeof *t);
  t->c = c;
  snprintf(t->name, sizeof t->name, "%s", name);
  static uint32_t gen; /* a restart comes back with a newer generation */
  if (!gen)
    gen = (uint32_t)time(NULL);
  lm_options_t o = {.name = name,
                    .bind = "127.0.0.1:0",
                    .cluster = cluster,
                    .generation = ++gen,
                    .identity = id,
                    .trusted = (const uint8_t(*)[LM_PUBLICKEY_BYTES])c->pk,
                    .ntrusted = 1,
                    .probe_interval_ms = c->probe_ms,
                    .probe_timeout_ms = c->timeout_ms,
                    .on_event = record,
                    .event_ud = t};
  assert_int_equal(lm_node_new(&t->node, &c->loop, &o), 0);
  assert_int_equal(start_node(t->node), 0);
  assert_int_equal(lm_node_bound_addr(t->node, t->addr, sizeof t->addr), 0);
  return t;
}

static void reg(tnode_t *t, const char *type) {
  lm_service_spec_t s;
  memset(&s, 0, sizeof s);
  s.type = type;
  s.worker = -1;
  char err[128];
  assert_int_equal(lm_node_service_register(t->node, &s, NULL, err, sizeof err),
                   0);
}

typedef struct up_arg {
  tnode_t *t;
  const char *type, *host;
  int want;
} up_arg_t;

static int up_is(void *arg) {
  up_arg_t *a = arg;
  return lm_node_is_up(a->t->node, a->type, a->host, NULL) == a->want;
}

static int wait_up(cluster_t *c, tnode_t *t, const char *type,
                   const char *host, int want, uint64_t ms) {
  up_arg_t a = {t, type, host, want};
  return run_until(c, up_is, &a, ms);
}

static int in_view(tnode_t *t, const char *name) {
  lm_member_t *m;
  size_t n;
  assert_int_equal(lm_node_view_members(t->node, &m, &n), 0);
  int st = -1;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(m[i].name, name))
      st = (int)m[i].status;
  free(m);
  return st;
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long k = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)k);
  assert_int_equal(fread(b, 1, (size_t)k, f), (size_t)k);
  fclose(f);
  *len = (size_t)k;
  return b;
}

static void spit(const char *path, const uint8_t *b, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, len, f), len);
  fclose(f);
}

/* x (kept identity) sees b, c, d with a service each and saves its view. */
static cluster_t *saved_view(lm_identity_t *idx, const char *file) {
  cluster_t *c = cluster_new(200, 100);
  assert_int_equal(lm_identity_issue(idx, "x", c->sk[0], 3600), 0);
  tnode_t *x = add_id(c, "x", idx, "test");
  const char *types[] = {"db", "web", "cache"}, *names[] = {"b", "c", "d"};
  for (int i = 0; i < 3; i++) {
    tnode_t *t = add(c, names[i]);
    join(t, x);
    reg(t, types[i]);
  }
  assert_true(wait_converged(c, 0, 4, 4, 20000));
  for (int i = 0; i < 3; i++)
    assert_true(wait_up(c, x, types[i], names[i], 1, 20000));
  char p[512];
  path_of(p, sizeof p, file);
  assert_int_equal(lm_node_snapshot_save(x->node, p), 0);
  node_close(x); /* x "restarts": a new node with its identity below */
  return c;
}

static void test_load_and_stale(void **state) {
  (void)state;
  watchdog(120);
  lm_identity_t idx;
  cluster_t *c = saved_view(&idx, "view1");
  char p[512];
  path_of(p, sizeof p, "view1");
  run_for(c, 20); /* the file's view now has an age */
  tnode_t *x = add_id(c, "x", &idx, "test"); /* alone: no join */
  assert_int_equal(lm_node_view_stale(x->node, NULL), 0);
  lm_snapshot_info_t info;
  char err[256];
  assert_int_equal(lm_node_snapshot_load(x->node, p, &info, err, sizeof err),
                   3);
  assert_string_equal(err, "");
  assert_int_equal(info.members, 3);
  assert_int_equal(info.lists, 3);
  assert_int_equal(info.members_dropped + info.lists_dropped, 0);
  assert_int_equal(info.skipped, 1); /* x itself */
  int64_t age = -1;
  assert_int_equal(lm_node_view_stale(x->node, &age), 1);
  assert_true(age > 0);
  assert_int_equal(lm_node_is_up(x->node, "db", "b", NULL), 1);
  assert_int_equal(lm_node_is_up(x->node, "web", "c", NULL), 1);
  assert_int_equal(lm_node_is_up(x->node, "cache", "d", NULL), 1);
  assert_int_equal(in_view(x, "b"), LM_ALIVE);
  /* a memory, not a membership claim: the protocol knows only x */
  assert_int_equal(status_of(x, "b"), -1);
  assert_int_equal(alive_count(x), 1);
  /* loading again changes nothing: they are in the view already */
  assert_int_equal(lm_node_snapshot_load(x->node, p, &info, err, sizeof err),
                   0);
  assert_int_equal(info.skipped, 4);
  /* a save while stale keeps the time the view dates from */
  char p2[512];
  path_of(p2, sizeof p2, "view1b");
  assert_int_equal(lm_node_snapshot_save(x->node, p2), 0);
  size_t l1, l2;
  uint8_t *b1 = slurp(p, &l1), *b2 = slurp(p2, &l2);
  lm_snap_reader_t r1, r2;
  assert_int_equal(lm_snap_open(&r1, b1, l1, NULL, NULL), 0);
  assert_int_equal(lm_snap_open(&r2, b2, l2, NULL, NULL), 0);
  assert_int_equal(r1.hdr.written_ms, r2.hdr.written_ms);
  assert_int_equal(r2.hdr.nmembers, 4);
  free(b1);
  free(b2);
  /* joining: the first full state exchange ends staleness */
  join(x, &c->t[1]);
  assert_true(wait_converged(c, 1, 5, 4, 20000));
  int64_t dummy;
  for (int i = 0; i < 200 && lm_node_view_stale(x->node, &dummy); i++)
    run_for(c, 50);
  assert_int_equal(lm_node_view_stale(x->node, NULL), 0);
  assert_int_equal(lm_node_is_up(x->node, "db", "b", NULL), 1);
  assert_int_equal(status_of(x, "b"), LM_ALIVE);
  lm_identity_wipe(&idx);
  cluster_free(c);
}

/* The offset of member `name`'s status byte (inside its obs). */
static size_t status_at(const uint8_t *buf, const lm_snap_member_t *m) {
  return (size_t)(m->obs - buf) + 1 + 2 + LM_SNAP_ID_LEN + 1 +
         strlen(m->name) + 1 + strlen(m->addr);
}

static void test_edited_snapshot(void **state) {
  (void)state;
  watchdog(120);
  lm_identity_t idx;
  cluster_t *c = saved_view(&idx, "view2");
  char p[512];
  path_of(p, sizeof p, "view2");
  size_t len;
  uint8_t *buf = slurp(p, &len);
  lm_snap_reader_t r;
  assert_int_equal(lm_snap_open(&r, buf, len, NULL, NULL), 0);
  lm_snap_member_t m, mb = {0}, mc = {0}, md = {0};
  while (lm_snap_next(&r, &m) == 1) {
    if (!strcmp(m.name, "b"))
      mb = m;
    if (!strcmp(m.name, "c"))
      mc = m;
    if (!strcmp(m.name, "d"))
      md = m;
  }
  assert_non_null(mb.svc_raw);
  /* b: its service's status flipped up -> down inside its signed list,
   * the list otherwise well formed */
  size_t body_at = (size_t)(mb.svc_raw - buf);
  int flipped = 0;
  for (size_t k = 0; k < mb.svc_body_len && !flipped; k++) {
    uint8_t *e = malloc(mb.svc_body_len);
    memcpy(e, mb.svc_raw, mb.svc_body_len);
    e[k] ^= 1;
    lm_svclist_t *l;
    if (lm_svclist_decode(&l, e, mb.svc_body_len) == 0) {
      if (l->hdr.n == 1 && l->svcs[0].status == LM_SVC_DOWN &&
          !strcmp(l->svcs[0].type, "db")) {
        buf[body_at + k] ^= 1;
        flipped = 1;
      }
      lm_svclist_free(l);
    }
    free(e);
  }
  assert_true(flipped);
  /* c: carries b's certificate (same length: one-letter names) */
  assert_int_equal(mb.cert_len, mc.cert_len);
  memcpy((uint8_t *)mc.cert, mb.cert, mb.cert_len);
  spit(p, buf, len);

  tnode_t *x = add_id(c, "x", &idx, "test");
  lm_snapshot_info_t info;
  char err[256];
  assert_int_equal(lm_node_snapshot_load(x->node, p, &info, err, sizeof err),
                   2);
  assert_non_null(strstr(err, "dropped 1 member(s) and 1 service list(s)"));
  assert_int_equal(info.members, 2);
  assert_int_equal(info.members_dropped, 1);
  assert_int_equal(info.lists, 1);
  assert_int_equal(info.lists_dropped, 1);
  assert_int_equal(in_view(x, "b"), LM_ALIVE); /* kept, without its list */
  assert_int_equal(in_view(x, "c"), -1);
  lm_is_up_t up;
  assert_int_equal(lm_node_is_up(x->node, "db", "b", &up), 0);
  assert_int_equal(up.found, 0); /* unknown, never a forged "down" */
  assert_int_equal(lm_node_is_up(x->node, "web", "c", NULL), 0);
  assert_int_equal(lm_node_is_up(x->node, "cache", "d", NULL), 1);
  assert_int_equal(lm_node_view_stale(x->node, NULL), 1);
  node_close(x);

  /* d's status edited in x's own observations (alive -> dead): the seal */
  free(buf);
  path_of(p, sizeof p, "view2");
  buf = slurp(p, &len);
  assert_int_equal(lm_snap_open(&r, buf, len, NULL, NULL), 0);
  while (lm_snap_next(&r, &m) == 1)
    if (!strcmp(m.name, "d"))
      md = m;
  size_t at = status_at(buf, &md);
  assert_int_equal(buf[at], LM_STORE_ALIVE);
  buf[at] = LM_STORE_DEAD;
  assert_int_equal(lm_snap_open(&r, buf, len, NULL, NULL), 0); /* well formed */
  spit(p, buf, len);
  x = add_id(c, "x", &idx, "test");
  assert_int_equal(lm_node_snapshot_load(x->node, p, &info, err, sizeof err),
                   1);
  assert_int_equal(info.members_dropped, 2); /* c (cert) and d (seal) */
  assert_int_equal(in_view(x, "d"), -1);

  /* truncated: refused whole, nothing loaded */
  spit(p, buf, len / 2);
  tnode_t *y = add_id(c, "x", &idx, "test");
  assert_int_equal(lm_node_snapshot_load(y->node, p, &info, err, sizeof err),
                   LM_STORE_ETRUNC);
  assert_non_null(strstr(err, "truncated snapshot"));
  assert_int_equal(lm_node_view_stale(y->node, NULL), 0);
  assert_int_equal(in_view(y, "b"), -1);
  /* no file */
  path_of(p, sizeof p, "none");
  assert_int_equal(lm_node_snapshot_load(y->node, p, &info, err, sizeof err),
                   LM_ENOTFOUND);
  free(buf);
  lm_identity_wipe(&idx);
  cluster_free(c);
}

static void test_foreign_snapshot(void **state) {
  (void)state;
  watchdog(120);
  lm_identity_t idx;
  cluster_t *c = saved_view(&idx, "view3");
  char p[512], err[256];
  path_of(p, sizeof p, "view3");
  /* another node of the same cluster */
  tnode_t *o = add(c, "o");
  assert_int_equal(lm_node_snapshot_load(o->node, p, NULL, err, sizeof err),
                   LM_STORE_EFOREIGN);
  assert_non_null(strstr(err, "another cluster or node"));
  /* the same node id in another cluster */
  tnode_t *x = add_id(c, "x", &idx, "other");
  assert_int_equal(lm_node_snapshot_load(x->node, p, NULL, err, sizeof err),
                   LM_STORE_EFOREIGN);
  assert_int_equal(lm_node_view_stale(x->node, NULL), 0);
  lm_identity_wipe(&idx);
  cluster_free(c);
}

static int stale_is(void *arg) {
  tnode_t *t = arg;
  return lm_node_view_stale(t->node, NULL) == 1;
}

static int fresh_is(void *arg) {
  tnode_t *t = arg;
  return lm_node_view_stale(t->node, NULL) == 0;
}

/* a's only peer crashes: a keeps answering from its last view, stale,
 * while the protocol says dead; a peer coming back ends it. */
static void test_cut_off(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(200, 100);
  tnode_t *a = add(c, "a");
  tnode_t *b = add(c, "b");
  join(b, a);
  reg(b, "db");
  assert_true(wait_up(c, a, "db", "b", 1, 20000));
  assert_int_equal(lm_node_view_stale(a->node, NULL), 0);
  node_close(b); /* a crash: no leave */
  status_arg_t dead = {c, 0, 1, b, LM_DEAD};
  assert_true(run_until(c, all_see, &dead, 30000));
  assert_true(run_until(c, stale_is, a, 5000));
  int64_t age;
  assert_int_equal(lm_node_view_stale(a->node, &age), 1);
  assert_true(age > 0);
  /* held: the service is still answered up, its member alive */
  lm_is_up_t up;
  assert_int_equal(lm_node_is_up(a->node, "db", "b", &up), 1);
  assert_int_equal(up.member_status, LM_ALIVE);
  assert_int_equal(in_view(a, "b"), LM_ALIVE);
  run_for(c, 500);
  assert_int_equal(lm_node_is_up(a->node, "db", "b", NULL), 1);
  /* a peer is back: the view follows the mesh, then reconverges */
  tnode_t *e = add(c, "e");
  join(e, a);
  assert_true(run_until(c, fresh_is, a, 20000));
  assert_int_equal(lm_node_is_up(a->node, "db", "b", &up), 0);
  assert_int_equal(up.member_status, LM_DEAD);
  (void)e;
  cluster_free(c);
}

/* The last peer leaving gracefully is not a cut-off. */
static void test_leave_is_not_cut_off(void **state) {
  (void)state;
  watchdog(60);
  cluster_t *c = cluster_new(200, 100);
  tnode_t *a = add(c, "a");
  tnode_t *b = add(c, "b");
  join(b, a);
  assert_true(wait_converged(c, 0, 2, 2, 20000));
  assert_int_equal(lm_node_leave(b->node, NULL, NULL), 0);
  status_arg_t left = {c, 0, 1, b, LM_LEFT};
  assert_true(run_until(c, all_see, &left, 20000));
  run_for(c, 500);
  assert_int_equal(lm_node_view_stale(a->node, NULL), 0);
  cluster_free(c);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/lm-snap-test-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_and_stale),
      cmocka_unit_test(test_edited_snapshot),
      cmocka_unit_test(test_foreign_snapshot),
      cmocka_unit_test(test_cut_off),
      cmocka_unit_test(test_leave_is_not_cut_off),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
