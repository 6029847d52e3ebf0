/*
 * test_node.c: the embedding API (include/livemesh/livemesh.h) end to end.
 *
 * Real nodes on 127.0.0.1 with real sockets, signatures and certificates,
 * one uv loop per test. The scenarios read the way an embedder would use
 * the library: nodes join and converge, a crash is detected, a leave is
 * seen as a leave, an outsider is kept out, keys rotate, a removed cluster
 * key or an expired certificate puts its member out, bad options are
 * refused, a forked child cannot touch the parent's node, threaded nodes
 * run beside a loop-based one, a hundred nodes share a loop, callbacks
 * re-enter the API, and junk on the wire is dropped and counted.
 *
 * Every test closes all of its nodes, runs the loop until they are gone and
 * asserts uv_loop_close() == 0, so a leaked handle fails the test. Waits
 * are bounded twice: each wait has its own deadline (a clean assertion
 * failure), and a SIGALRM watchdog ends the binary if anything blocks the
 * loop itself. Deadlines are generous on purpose: the suite must pass on a
 * loaded two-core machine under the sanitizers, so nothing here asserts a
 * tight wall-clock figure (livemesh-bench measures those).
 *
 * Depends on the public API, libuv and cmocka only.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <errno.h>
#include <livemesh/livemesh.h>
#include <uv.h>

#include "swim.h"  /* SWIM_E*: the core's codes, part of the one error space */
#include "trust.h" /* LM_TRUST_E*: the trust layer's */

#include "node_harness.h"

/* -------------------------------------------------------------- tests -- */

/* Five nodes converge; a crash is seen as SUSPECT then DEAD by everyone; a
 * graceful leave is seen as LEFT, never DEAD. Default (LAN) timing so the
 * suspicion has time to spread before anyone declares the death. */
static void test_converge_crash_leave(void **state) {
  (void)state;
  watchdog(240);
  cluster_t *c = cluster_new(0, 0);
  char name[16];
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof name, "n%d", i);
    add(c, name);
  }
  for (int i = 1; i < 5; i++)
    join(&c->t[i], &c->t[0]);
  assert_true(wait_converged(c, 0, 5, 5, 30000));
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 5; j++)
      assert_int_equal(status_of(&c->t[i], c->t[j].name), LM_ALIVE);

  /* crash n4: closed without a leave */
  tnode_t *victim = &c->t[4];
  size_t mark[5];
  for (int i = 0; i < 4; i++)
    mark[i] = c->t[i].nev;
  node_close(victim);
  status_arg_t dead = {c, 0, 4, victim, LM_DEAD};
  assert_true(run_until(c, all_see, &dead, 60000));
  for (int i = 0; i < 4; i++) {
    tnode_t *o = &c->t[i];
    long d = find_ev(o, victim->name, LM_EV_DEAD, (long)mark[i], (long)o->nev);
    assert_true(d >= 0);
    long s = rfind_ev(o, victim->name, LM_EV_SUSPECT, d);
    assert_true(s >= (long)mark[i]); /* suspected after the crash ... */
    long j = rfind_ev(o, victim->name, LM_EV_JOIN, s);
    assert_true(j >= 0 && j < s); /* ... and it had joined before */
    assert_int_equal(find_ev(o, victim->name, LM_EV_LEFT, 0, (long)o->nev), -1);
    assert_int_equal(o->evs[d].status, LM_DEAD);
  }

  /* n3 leaves: the others see LEFT within a few seconds, not DEAD */
  tnode_t *leaver = &c->t[3];
  for (int i = 0; i < 3; i++)
    mark[i] = c->t[i].nev;
  assert_int_equal(lm_node_leave(leaver->node, on_left, leaver), 0);
  status_arg_t left = {c, 0, 3, leaver, LM_LEFT};
  assert_true(run_until(c, all_see, &left, 10000));
  for (int i = 0; i < 3; i++) {
    tnode_t *o = &c->t[i];
    assert_true(find_ev(o, leaver->name, LM_EV_LEFT, (long)mark[i],
                        (long)o->nev) >= 0);
    assert_int_equal(
        find_ev(o, leaver->name, LM_EV_DEAD, (long)mark[i], (long)o->nev), -1);
  }
  /* its callback runs once the leave has gone out (3 s at the latest) */
  assert_true(run_until(c, flag_set, &leaver->left, 10000));
  assert_int_equal(leaver->leave_rc, 0);
  /* a second leave is a state error, not a second announcement */
  assert_int_equal(lm_node_leave(leaver->node, NULL, NULL), LM_ESTATE);
  /* and LEFT stays LEFT: nobody turns it into DEAD later */
  run_for(c, 3000);
  for (int i = 0; i < 3; i++)
    assert_int_equal(status_of(&c->t[i], leaver->name), LM_LEFT);
  cluster_free(c);
}

/* A node whose certificate comes from a key the cluster does not trust is
 * never admitted, however long it keeps knocking, and its attempts show up
 * as drops. */
static void test_untrusted_never_admitted(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(500, 250);
  tnode_t *a = add(c, "a0");
  tnode_t *b = add(c, "a1");
  join(b, a);
  assert_true(wait_converged(c, 0, 2, 2, 20000));
  /* the outsider trusts both keys, so only the others' refusal keeps it
   * out, not its own */
  node_spec_t s = {.name = "intruder", .cert_key = 1, .trust = 3};
  tnode_t *x = node_add(c, &s);
  const char *seeds[] = {a->addr, b->addr};
  assert_int_equal(lm_node_join(x->node, seeds, 2), 0);
  run_for(c, 6000);
  for (int i = 0; i < 2; i++) {
    tnode_t *o = &c->t[i];
    assert_int_equal(status_of(o, "intruder"), -1);
    assert_int_equal(find_ev(o, "intruder", LM_EV_JOIN, 0, (long)o->nev), -1);
    assert_int_equal(alive_count(o), 2);
  }
  assert_int_equal(alive_count(x), 1);
  /* its join frames carry the certificate, refused by name */
  uint64_t total = 0;
  assert_true(drops_of(a, "cert_untrusted", &total) > 0);
  assert_true(total > 0);
  assert_true(drops_of(b, "cert_untrusted", NULL) > 0);
  cluster_free(c);
}

/* Key rotation: members issued by two different cluster keys form one mesh
 * when every node trusts both. */
static void test_rotation_two_keys(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(500, 250);
  node_spec_t s0 = {.name = "old-0", .cert_key = 0, .trust = 3};
  node_spec_t s1 = {.name = "old-1", .cert_key = 0, .trust = 3};
  node_spec_t s2 = {.name = "new-0", .cert_key = 1, .trust = 3};
  tnode_t *a = node_add(c, &s0);
  tnode_t *b = node_add(c, &s1);
  tnode_t *n = node_add(c, &s2);
  join(b, a);
  join(n, a);
  assert_true(wait_converged(c, 0, 3, 3, 20000));
  assert_int_equal(status_of(a, "new-0"), LM_ALIVE);
  assert_int_equal(status_of(b, "new-0"), LM_ALIVE);
  assert_int_equal(status_of(n, "old-1"), LM_ALIVE);
  cluster_free(c);
}

/* Removing a cluster key (lm_node_set_trusted) is removing the members
 * whose certificates it signed, those already admitted included: they are
 * no longer talked to, fail their probes and are declared dead, while the
 * members with a certificate from the key kept stay alive. */
static void test_removed_key_drops_members(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(500, 250);
  node_spec_t sa = {.name = "b-0", .cert_key = 1, .trust = 3};
  node_spec_t sb = {.name = "b-1", .cert_key = 1, .trust = 3};
  node_spec_t sy = {.name = "old-y", .cert_key = 0, .trust = 3};
  tnode_t *a = node_add(c, &sa);
  tnode_t *b = node_add(c, &sb);
  tnode_t *y = node_add(c, &sy);
  join(b, a);
  join(y, a);
  assert_true(wait_converged(c, 0, 3, 3, 20000));
  /* key A (index 0) removed on a and b; y keeps trusting both */
  const uint8_t(*only_b)[LM_PUBLICKEY_BYTES] =
      (const uint8_t(*)[LM_PUBLICKEY_BYTES])c->pk[1];
  assert_int_equal(lm_node_set_trusted(a->node, only_b, 1), 0);
  assert_int_equal(lm_node_set_trusted(b->node, only_b, 1), 0);
  status_arg_t dead = {c, 0, 2, y, LM_DEAD};
  assert_true(run_until(c, all_see, &dead, 30000));
  assert_int_equal(status_of(a, "b-1"), LM_ALIVE);
  assert_int_equal(status_of(b, "b-0"), LM_ALIVE);
  /* and it stays out, however long it keeps talking */
  run_for(c, 3000);
  assert_int_equal(status_of(a, "old-y"), LM_DEAD);
  assert_int_equal(status_of(b, "old-y"), LM_DEAD);
  assert_int_equal(alive_count(a), 2);
  assert_int_equal(alive_count(b), 2);
  cluster_free(c);
}

/* A member whose certificate expires while it runs is dropped the same
 * way: declared dead by the others once the expiry has passed. */
static void test_expired_member_drops_out(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(500, 250);
  tnode_t *a = add(c, "a0");
  tnode_t *b = add(c, "a1");
  node_spec_t sy = {.name = "short", .valid_s = 8};
  uv_update_time(&c->loop);
  uint64_t t0 = uv_now(&c->loop);
  tnode_t *y = node_add(c, &sy);
  join(b, a);
  join(y, a);
  /* admitted while its certificate holds (it does for 8 s) */
  assert_true(wait_converged(c, 0, 3, 3, 6000));
  status_arg_t dead = {c, 0, 2, y, LM_DEAD};
  assert_true(run_until(c, all_see, &dead, 40000));
  uv_update_time(&c->loop);
  assert_true(uv_now(&c->loop) - t0 >= 7000); /* not before it expired */
  assert_int_equal(status_of(a, "a1"), LM_ALIVE);
  assert_int_equal(status_of(b, "a0"), LM_ALIVE);
  cluster_free(c);
}

/* Runs lm_node_new with `o` and checks both the code and that *out was
 * reset to NULL (it starts as a non-NULL sentinel). */
static void expect_new_fails(uv_loop_t *loop, const lm_options_t *o, int want) {
  static int sentinel;
  lm_node_t *n = (lm_node_t *)(void *)&sentinel;
  assert_int_equal(lm_node_new(&n, loop, o), want);
  assert_null(n);
}

/* One error space: every code distinct, every one named. */
static void test_error_space(void **state) {
  (void)state;
  assert_string_equal(lm_err_name(0), "LM_OK");
  assert_string_equal(lm_err_name(LM_ESTATE), "LM_ESTATE");
  assert_string_equal(lm_err_name(LM_TRUST_ECERT_UNTRUSTED),
                      "LM_TRUST_ECERT_UNTRUSTED");
  assert_string_equal(lm_strerror(LM_TRUST_ECERT_UNTRUSTED),
                      "certificate from an untrusted cluster key");
  assert_string_equal(lm_err_name(SWIM_ESTATE), "SWIM_ESTATE");
  assert_string_equal(lm_strerror(SWIM_ENOSPACE), "does not fit in a datagram");
  assert_string_equal(lm_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  assert_string_equal(lm_err_name(-ECONNREFUSED), "ECONNREFUSED");
  assert_string_equal(lm_err_name(UV_EOF), "EOF");
  assert_string_equal(lm_strerror(UV_EOF), uv_strerror(UV_EOF));
  assert_string_equal(lm_err_name(LM_ERR_LAST - 1), "LM_UNKNOWN");
  /* the ranges the header documents */
  assert_true(LM_TRUST_EINVAL < LM_ERR_TRUST_BASE &&
              LM_TRUST_EEXHAUSTED > LM_ERR_CORE_BASE);
  assert_true(SWIM_EINVAL < LM_ERR_CORE_BASE && SWIM_ENOSPACE >= LM_ERR_LAST);
}

static void test_bad_options(void **state) {
  (void)state;
  watchdog(60);
  cluster_t *c = cluster_new(0, 0);
  lm_identity_t id, other, outsider;
  assert_int_equal(lm_identity_issue(&id, "alpha", c->sk[0], 3600), 0);
  assert_int_equal(lm_identity_issue(&other, "alpha", c->sk[0], 3600), 0);
  assert_int_equal(lm_identity_issue(&outsider, "alpha", c->sk[1], 3600), 0);
  const uint8_t(*trusted)[LM_PUBLICKEY_BYTES] =
      (const uint8_t(*)[LM_PUBLICKEY_BYTES])c->pk;
  const lm_options_t good = {.name = "alpha", .bind = "127.0.0.1:0",
                             .identity = &id, .trusted = trusted,
                             .ntrusted = 1};
  lm_options_t o;

  o = good;
  o.name = NULL;
  expect_new_fails(&c->loop, &o, LM_EINVAL);
  o = good;
  o.name = "";
  expect_new_fails(&c->loop, &o, LM_EINVAL);
  o = good;
  o.bind = "nonsense";
  expect_new_fails(&c->loop, &o, LM_EADDR);
  o = good;
  o.bind = "127.0.0.1:99999";
  expect_new_fails(&c->loop, &o, LM_EADDR);
  o = good;
  o.advertise = "not an address";
  expect_new_fails(&c->loop, &o, LM_EADDR);
  o = good;
  o.identity = NULL;
  expect_new_fails(&c->loop, &o, LM_EINVAL);
  o = good;
  o.trusted = NULL;
  expect_new_fails(&c->loop, &o, LM_EINVAL);
  o = good;
  o.ntrusted = 0;
  expect_new_fails(&c->loop, &o, LM_EINVAL);
  o = good;
  o.test_drop_inbound = 1.5;
  expect_new_fails(&c->loop, &o, LM_EINVAL);
  expect_new_fails(&c->loop, NULL, LM_EINVAL);

  /* the certificate must be for this very name and key, from a trusted
   * cluster key */
  o = good;
  o.name = "beta";
  expect_new_fails(&c->loop, &o, LM_ECERT);
  lm_identity_t swapped = id;
  memcpy(swapped.cert, other.cert, other.cert_len);
  swapped.cert_len = other.cert_len;
  o = good;
  o.identity = &swapped;
  expect_new_fails(&c->loop, &o, LM_ECERT);
  o = good;
  o.identity = &outsider;
  expect_new_fails(&c->loop, &o, LM_TRUST_ECERT_UNTRUSTED);
  lm_identity_t empty = id;
  empty.cert_len = 0;
  o = good;
  o.identity = &empty;
  expect_new_fails(&c->loop, &o, LM_EINVAL);

  /* the good options do work, and a node never started closes at once */
  lm_node_t *n = NULL;
  assert_int_equal(lm_node_new(&n, &c->loop, &good), 0);
  assert_non_null(n);
  tnode_t t = {0};
  lm_node_close(n, on_closed, &t);
  assert_true(t.closed);

  lm_identity_wipe(&id);
  lm_identity_wipe(&other);
  lm_identity_wipe(&outsider);
  lm_identity_wipe(&swapped);
  lm_identity_wipe(&empty);
  cluster_free(c);
}

/* fork(): the child may not use the parent's node. Every call returns
 * LM_EFORKED and sends nothing, so the parent's mesh does not notice. */
static void test_fork_guard(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(500, 250);
  tnode_t *a = add(c, "parent-a");
  tnode_t *b = add(c, "parent-b");
  join(b, a);
  assert_true(wait_converged(c, 0, 2, 2, 20000));
  size_t mark_a = a->nev, mark_b = b->nev;

  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* no cmocka in here: report through the exit status */
    int bad = 0;
    lm_member_t *m = (lm_member_t *)(void *)&bad;
    size_t n = 99;
    if (lm_node_members(a->node, &m, &n) != LM_EFORKED || m != NULL || n != 0)
      bad |= 1;
    const char *seed = b->addr;
    if (lm_node_join(a->node, &seed, 1) != LM_EFORKED)
      bad |= 2;
    if (lm_node_leave(a->node, NULL, NULL) != LM_EFORKED)
      bad |= 4;
    size_t cnt;
    if (lm_node_alive_count(a->node, &cnt) != LM_EFORKED)
      bad |= 8;
    lm_stats_t st;
    lm_member_t self;
    if (lm_node_stats(a->node, &st) != LM_EFORKED ||
        lm_node_self(a->node, &self) != LM_EFORKED)
      bad |= 16;
    if (lm_node_set_meta(a->node, (const uint8_t *)"x", 1) != LM_EFORKED)
      bad |= 32;
    char addr[LM_ADDR_STRLEN];
    if (lm_node_bound_addr(a->node, addr, sizeof addr) != LM_EFORKED ||
        lm_node_start(a->node) != LM_EFORKED)
      bad |= 64;
    /* must be a no-op here: closing would not send anything, but it must
     * not free what the parent still uses either (that memory is a copy,
     * so the proof is the parent carrying on below) */
    lm_node_close(a->node, NULL, NULL);
    _exit(bad);
  }
  int wst = 0;
  assert_int_equal(waitpid(pid, &wst, 0), pid);
  assert_true(WIFEXITED(wst));
  assert_int_equal(WEXITSTATUS(wst), 0);

  /* the parent's mesh is as it was: no leave, no suspicion */
  run_for(c, 3000);
  assert_int_equal(alive_count(a), 2);
  assert_int_equal(alive_count(b), 2);
  assert_int_equal(status_of(b, "parent-a"), LM_ALIVE);
  for (size_t i = mark_b; i < b->nev; i++)
    assert_true(b->evs[i].kind != LM_EV_LEFT && b->evs[i].kind != LM_EV_DEAD);
  for (size_t i = mark_a; i < a->nev; i++)
    assert_true(a->evs[i].kind != LM_EV_LEFT && a->evs[i].kind != LM_EV_DEAD);
  cluster_free(c);
}

/* Threaded mode: two nodes on threads of their own join a loop-based one;
 * the main thread reads their members while they run, then closes them
 * (close joins the thread). */
typedef struct thr_arg {
  cluster_t *c;
  tnode_t *t[3];
} thr_arg_t;

static int thr_converged(void *arg) {
  thr_arg_t *a = arg;
  for (int i = 0; i < 3; i++) {
    lm_member_t *m;
    size_t n, alive = 0;
    /* lm_node_members from this (the main) thread on a node running on
     * another thread: the documented way to read it */
    assert_int_equal(lm_node_members(a->t[i]->node, &m, &n), 0);
    for (size_t j = 0; j < n; j++)
      alive += m[j].status == LM_ALIVE;
    free(m);
    if (alive != 3)
      return 0;
  }
  /* events are delivered just after the lock that members() takes is
   * released: wait for the callbacks as well, not only for the view */
  for (int i = 1; i < 3; i++)
    if (__atomic_load_n(&a->t[i]->thread_events, __ATOMIC_RELAXED) < 2)
      return 0;
  return 1;
}

static void test_threaded(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(500, 250);
  tnode_t *l = add(c, "looped");
  node_spec_t s1 = {.name = "thread-1", .threaded = 1};
  node_spec_t s2 = {.name = "thread-2", .threaded = 1};
  tnode_t *t1 = node_add(c, &s1);
  tnode_t *t2 = node_add(c, &s2);
  join(t1, l);
  join(t2, l);
  thr_arg_t a = {c, {l, t1, t2}};
  assert_true(run_until(c, thr_converged, &a, 30000));
  /* their callbacks ran, on their own threads */
  assert_true(__atomic_load_n(&t1->thread_events, __ATOMIC_RELAXED) >= 2);
  assert_true(__atomic_load_n(&t2->thread_events, __ATOMIC_RELAXED) >= 2);
  lm_member_t self;
  assert_int_equal(lm_node_self(t1->node, &self), 0);
  assert_string_equal(self.name, "thread-1");
  assert_true(self.is_self);

  /* close joins the thread: the callback has run when it returns */
  node_close(t1);
  assert_true(t1->closed);
  /* the survivors notice, then the second threaded node goes too */
  status_arg_t gone = {c, 0, 1, t1, LM_DEAD};
  assert_true(run_until(c, all_see, &gone, 60000));
  node_close(t2);
  assert_true(t2->closed);
  cluster_free(c);
}

/* A hundred nodes on one loop: they join through four seeds, a little
 * apart, and every one of them ends up seeing all hundred. */
typedef struct many_arg {
  cluster_t *c;
  int n, next;
  uint64_t start;
  conv_arg_t conv;
} many_arg_t;

static int many_step(void *arg) {
  many_arg_t *m = arg;
  uint64_t now = uv_now(&m->c->loop) - m->start;
  /* node i joins at i * 50 ms: a seed is not flooded by a hundred
   * introductions in one instant */
  while (m->next < m->n && (uint64_t)m->next * 50 <= now) {
    int i = m->next++;
    join(&m->c->t[i], &m->c->t[i < 4 ? 0 : i % 4]);
  }
  return m->next == m->n && converged(&m->conv);
}

static void test_hundred_nodes(void **state) {
  (void)state;
  watchdog(600);
  cluster_t *c = cluster_new(0, 0);
  const int n = 100;
  char name[16];
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof name, "m%03d", i);
    add(c, name);
  }
  uv_update_time(&c->loop);
  many_arg_t m = {c, n, 1, uv_now(&c->loop), {c, 0, n, (size_t)n}};
  assert_true(run_until(c, many_step, &m, 300000));
  /* all alive at convergence; a moment later, on a starved machine (a
   * hundred nodes on one loop), one may be suspect in passing, never
   * dead */
  for (int i = 0; i < n; i += 9) {
    int st = status_of(&c->t[i], c->t[(i + 50) % n].name);
    assert_true(st == LM_ALIVE || st == LM_SUSPECT);
  }
  /* the pairwise keys (pairs.c): each derived once and kept (a lost one
   * would be derived again), each found again under its own key (a wrong
   * one fails as bad_signature) */
  for (int i = 0; i < n; i++) {
    lm_stats_t s;
    assert_int_equal(lm_node_stats(c->t[i].node, &s), 0);
    assert_true(s.pair_keys_derived >= 1);
    assert_true(s.pair_keys_derived <= (uint64_t)n - 1);
    for (size_t k = 0; k < s.ndropped; k++)
      assert_string_not_equal(s.dropped[k].reason, "bad_signature");
  }
  cluster_free(c);
}

/* Event callbacks re-entering the API: A's callback reads its own and
 * another node's members on every event, closes B from inside the callback
 * once C has joined, and, once B's crash is seen, closes C and then A
 * itself. */
typedef struct reent {
  tnode_t *a, *b, *cc;
  int members_ok, members_other_ok, members_err;
  int closed_b, closed_rest;
} reent_t;

static void reent_cb(lm_node_t *node, const lm_event_t *ev, void *ud) {
  reent_t *r = ud;
  record(node, ev, r->a);
  lm_member_t *m;
  size_t n;
  if (lm_node_members(node, &m, &n) == 0 && n >= 1) {
    r->members_ok++;
    free(m);
  } else {
    r->members_err++;
  }
  tnode_t *other = r->b && r->b->node    ? r->b
                   : r->cc && r->cc->node ? r->cc
                                          : NULL;
  if (other) {
    if (lm_node_members(other->node, &m, &n) == 0 && n >= 1) {
      r->members_other_ok++;
      free(m);
    } else {
      r->members_err++;
    }
  }
  if (ev->kind == LM_EV_JOIN && strcmp(ev->member.name, "re-c") == 0 &&
      r->b && r->b->node) {
    node_close(r->b);
    r->closed_b = 1;
  }
  if (ev->kind == LM_EV_DEAD && strcmp(ev->member.name, "re-b") == 0 &&
      !r->closed_rest && r->cc) {
    r->closed_rest = 1;
    node_close(r->cc);
    node_close(r->a); /* its own node, from its own callback */
  }
}

static void test_callbacks_reenter(void **state) {
  (void)state;
  watchdog(180);
  cluster_t *c = cluster_new(500, 250);
  reent_t r = {0};
  node_spec_t sa = {.name = "re-a", .on_event = reent_cb, .event_ud = &r};
  r.a = node_add(c, &sa);
  r.b = add(c, "re-b");
  join(r.b, r.a);
  assert_true(wait_converged(c, 0, 2, 2, 20000));
  r.cc = add(c, "re-c");
  join(r.cc, r.a);
  assert_true(run_until(c, flag_set, &r.closed_b, 20000));
  assert_true(run_until(c, all_closed, c, 60000));
  assert_true(r.closed_rest);
  assert_true(r.members_ok >= 3);
  assert_true(r.members_other_ok >= 1);
  assert_int_equal(r.members_err, 0);
  /* A saw B die before it closed itself */
  assert_true(find_ev(r.a, "re-b", LM_EV_DEAD, 0, (long)r.a->nev) >= 0);
  cluster_free(c);
}

/* Junk on the wire: random datagrams, oversize ones, and tampered copies of
 * a genuine signed envelope. The node drops and counts each by reason and
 * stays a healthy member. The genuine envelope is caught by taking over
 * the port of a member that crashed: the others keep probing it there. */
typedef struct sniff {
  uv_udp_t udp;
  uint8_t pkt[2048];
  size_t len;
  struct sockaddr_storage from;
  int got;
} sniff_t;

static void sniff_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  static uint8_t rb[65536];
  (void)h;
  *buf = uv_buf_init((char *)rb, sizeof rb);
}

static void sniff_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                       const struct sockaddr *addr, unsigned flags) {
  (void)flags;
  sniff_t *s = h->data;
  if (nread <= 0 || !addr || s->got || (size_t)nread > sizeof s->pkt)
    return;
  memcpy(s->pkt, buf->base, (size_t)nread);
  s->len = (size_t)nread;
  memcpy(&s->from, addr, sizeof(struct sockaddr_in));
  s->got = 1;
}

static void parse_addr(const char *hostport, struct sockaddr_in *sa) {
  char host[LM_ADDR_STRLEN];
  snprintf(host, sizeof host, "%s", hostport);
  char *colon = strrchr(host, ':');
  assert_non_null(colon);
  *colon = '\0';
  assert_int_equal(uv_ip4_addr(host, atoi(colon + 1), sa), 0);
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Sends one datagram, and lets the loop run every few so the target reads
 * them: a burst would overflow its socket buffer and the kernel, not the
 * node, would drop the rest. */
static void send_to(cluster_t *c, sniff_t *s, const struct sockaddr_in *to,
                    const uint8_t *p, size_t len) {
  static unsigned n;
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
  int rc = uv_udp_try_send(&s->udp, &b, 1, (const struct sockaddr *)to);
  assert_int_equal(rc, (int)len);
  if (++n % 4 == 0)
    run_for(c, 5);
}

static void test_garbage(void **state) {
  (void)state;
  watchdog(180);
  cluster_t *c = cluster_new(500, 250);
  tnode_t *g0 = add(c, "g0");
  tnode_t *g1 = add(c, "g1");
  tnode_t *m = add(c, "gone");
  join(g1, g0);
  join(m, g0);
  assert_true(wait_converged(c, 0, 3, 3, 20000));

  struct sockaddr_in maddr;
  parse_addr(m->addr, &maddr);
  node_close(m);
  assert_true(run_until(c, flag_set, &m->closed, 10000));
  sniff_t s;
  memset(&s, 0, sizeof s);
  assert_int_equal(uv_udp_init(&c->loop, &s.udp), 0);
  s.udp.data = &s;
  assert_int_equal(uv_udp_bind(&s.udp, (const struct sockaddr *)&maddr, 0), 0);
  assert_int_equal(uv_udp_recv_start(&s.udp, sniff_alloc, sniff_recv), 0);
  /* g0 or g1 probes the crashed member within a couple of intervals */
  assert_true(run_until(c, flag_set, &s.got, 20000));
  uv_udp_recv_stop(&s.udp);

  /* aim at the node that did not send the captured envelope: it knows the
   * sender, so a tampered copy reaches the signature check */
  struct sockaddr_in a0, a1;
  parse_addr(g0->addr, &a0);
  parse_addr(g1->addr, &a1);
  in_port_t sport = ((struct sockaddr_in *)&s.from)->sin_port;
  assert_true(sport == a0.sin_port || sport == a1.sin_port);
  int from_g0 = sport == a0.sin_port;
  tnode_t *target = from_g0 ? g1 : g0;
  tnode_t *peer = from_g0 ? g0 : g1;
  struct sockaddr_in *to = from_g0 ? &a1 : &a0;

  uint64_t total0, badsig0 = drops_of(target, "bad_signature", &total0);
  uint64_t over0 = drops_of(target, "oversize", NULL);
  size_t sent = 0;
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  uint8_t junk[2000];
  for (int i = 0; i < 200; i++) {
    size_t len = 1 + (size_t)(xorshift(&seed) % 1400);
    for (size_t k = 0; k < len; k++)
      junk[k] = (uint8_t)xorshift(&seed);
    send_to(c, &s, to, junk, len);
    sent++;
  }
  for (int i = 0; i < 5; i++) {
    memset(junk, 0xa5, sizeof junk);
    send_to(c, &s, to, junk, sizeof junk); /* past the 1400-byte MTU */
    sent++;
  }
  /* the genuine envelope with one byte changed: in the signature, in the
   * middle (signed bytes), and each of a few bytes across the whole */
  uint8_t t[2048];
  size_t tampered = 0;
  size_t spots[] = {s.len - 1, s.len / 2, s.len - 65, 20, 13};
  for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
    memcpy(t, s.pkt, s.len);
    t[spots[i]] ^= 0x01;
    send_to(c, &s, to, t, s.len);
    sent++;
    tampered++;
  }
  run_for(c, 1500);

  uint64_t total1, badsig1 = drops_of(target, "bad_signature", &total1);
  uint64_t over1 = drops_of(target, "oversize", NULL);
  /* every injected datagram was dropped, each under some reason */
  assert_true(total1 - total0 >= sent);
  assert_true(over1 - over0 >= 5);
  /* changing a signed byte or the signature itself fails the signature */
  assert_true(badsig1 - badsig0 >= tampered);
  lm_stats_t st;
  assert_int_equal(lm_node_stats(target->node, &st), 0);
  size_t reasons = 0;
  for (size_t i = 0; i < st.ndropped; i++) {
    assert_non_null(st.dropped[i].reason);
    assert_true(st.dropped[i].count > 0);
    reasons++;
  }
  /* random bytes fail early (size, version, cluster), tampering late */
  assert_true(reasons >= 3);

  /* and it is still a healthy member */
  run_for(c, 3000);
  assert_int_equal(status_of(target, peer->name), LM_ALIVE);
  assert_int_equal(status_of(peer, target->name), LM_ALIVE);
  assert_int_equal(status_of(target, target->name), LM_ALIVE);

  uv_close((uv_handle_t *)&s.udp, NULL);
  cluster_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_space),
      cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_converge_crash_leave),
      cmocka_unit_test(test_untrusted_never_admitted),
      cmocka_unit_test(test_rotation_two_keys),
      cmocka_unit_test(test_removed_key_drops_members),
      cmocka_unit_test(test_expired_member_drops_out),
      cmocka_unit_test(test_fork_guard),
      cmocka_unit_test(test_threaded),
      cmocka_unit_test(test_callbacks_reenter),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_hundred_nodes),
  };
  return cmocka_run_group_tests_name("node", tests, NULL, NULL);
}
