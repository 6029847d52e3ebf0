/*
 * node_harness.h: a cluster of real nodes on one uv loop, for the tests of
 * the embedding API (test_node.c, test_node_services.c).
 *
 * Real nodes on 127.0.0.1 with real sockets, signatures and certificates.
 * Waits are bounded twice: each wait has its own deadline (a clean
 * assertion failure), and a SIGALRM watchdog ends the binary if anything
 * blocks the loop itself. cluster_free() closes every node and asserts
 * uv_loop_close() == 0, so a leaked handle fails the test.
 *
 * Include after cmocka.h. Depends on the public API and libuv.
 */
#ifndef LIVEMESH_TESTS_NODE_HARNESS_H
#define LIVEMESH_TESTS_NODE_HARNESS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <livemesh/livemesh.h>
#include <uv.h>

#define MAXN 128
#define POLL_MS 10

/* ------------------------------------------------------------ harness -- */

/* One event as an observer saw it. */
typedef struct ev_rec {
  lm_event_kind_t kind;
  lm_status_t status;
  char name[LM_NAME_MAX + 1];
} ev_rec_t;

struct cluster;

typedef struct tnode {
  struct cluster *c;
  lm_node_t *node; /* NULL once closed */
  int threaded;
  char name[LM_NAME_MAX + 1];
  char addr[LM_ADDR_STRLEN];
  ev_rec_t *evs; /* loop-based nodes only: threaded ones count below */
  size_t nev, capev;
  int closed;    /* its close callback ran */
  int left;      /* its leave callback ran ... */
  int leave_rc;  /* ... with this status */
  int thread_events; /* threaded nodes: events seen, updated atomically */
} tnode_t;

typedef struct cluster {
  uv_loop_t loop;
  /* Two cluster keys: A admits the members, B is the outsider's or the
   * rotated-in key. */
  uint8_t pk[2][LM_PUBLICKEY_BYTES];
  uint8_t sk[2][LM_SECRETKEY_BYTES];
  uint32_t probe_ms, timeout_ms; /* 0: the runtime's LAN defaults */
  tnode_t t[MAXN];
  int n;
} cluster_t;

typedef struct node_spec {
  const char *name;
  int cert_key;   /* which cluster key signs the certificate: 0 or 1 */
  unsigned trust; /* bit 0: trust key A, bit 1: key B; 0 means A */
  int threaded;   /* loop == NULL */
  uint64_t valid_s; /* the certificate's validity from now; 0: an hour */
  lm_event_cb on_event; /* NULL: record into the tnode */
  void *event_ud;
  lm_log_cb log; /* NULL: no log; else the node's errors */
  void *log_ud;
} node_spec_t;

static inline void on_alarm(int sig) {
  (void)sig;
  static const char m[] =
      "watchdog: a test ran past its bound (the loop is stuck?)\n";
  ssize_t w = write(2, m, sizeof m - 1);
  (void)w;
  _exit(99);
}

/* Arms the process-wide watchdog for the current test. */
static inline void watchdog(unsigned seconds) {
  signal(SIGALRM, on_alarm);
  alarm(seconds);
}

static inline void record(lm_node_t *node, const lm_event_t *ev, void *ud) {
  (void)node;
  tnode_t *t = ud;
  if (t->threaded) {
    __atomic_add_fetch(&t->thread_events, 1, __ATOMIC_RELAXED);
    return;
  }
  if (t->nev == t->capev) {
    size_t cap = t->capev ? t->capev * 2 : 64;
    ev_rec_t *v = realloc(t->evs, cap * sizeof *v);
    assert_non_null(v);
    t->evs = v;
    t->capev = cap;
  }
  ev_rec_t *r = &t->evs[t->nev++];
  r->kind = ev->kind;
  r->status = ev->member.status;
  snprintf(r->name, sizeof r->name, "%s", ev->member.name);
}

static inline cluster_t *cluster_new(uint32_t probe_ms, uint32_t timeout_ms) {
  cluster_t *c = calloc(1, sizeof *c);
  assert_non_null(c);
  assert_int_equal(uv_loop_init(&c->loop), 0);
  for (int k = 0; k < 2; k++)
    assert_int_equal(lm_cluster_keygen(c->pk[k], c->sk[k]), 0);
  c->probe_ms = probe_ms;
  c->timeout_ms = timeout_ms;
  return c;
}

/* lm_node_start with port 0 binds UDP (SO_REUSEADDR) and then TCP on the
 * port UDP got. Linux may hand a REUSEADDR socket an ephemeral port that
 * another REUSEADDR socket already holds, and then the TCP bind fails with
 * EADDRINUSE; with dozens of nodes in one process it happens every few
 * runs. A failed start leaves the node new, so try again (reported as a
 * runtime bug). */
static inline int start_node(lm_node_t *n) {
  int rc = 0;
  for (int i = 0; i < 20; i++)
    if ((rc = lm_node_start(n)) != UV_EADDRINUSE)
      break;
  return rc;
}

static inline tnode_t *node_add(cluster_t *c, const node_spec_t *s) {
  assert_true(c->n < MAXN);
  tnode_t *t = &c->t[c->n++];
  memset(t, 0, sizeof *t);
  t->c = c;
  t->threaded = s->threaded;
  snprintf(t->name, sizeof t->name, "%s", s->name);
  lm_identity_t id;
  assert_int_equal(lm_identity_issue(&id, s->name, c->sk[s->cert_key],
                                     s->valid_s ? s->valid_s : 3600),
                   0);
  uint8_t trusted[2][LM_PUBLICKEY_BYTES];
  size_t nt = 0;
  unsigned mask = s->trust ? s->trust : 1u;
  for (int k = 0; k < 2; k++)
    if (mask & (1u << k))
      memcpy(trusted[nt++], c->pk[k], LM_PUBLICKEY_BYTES);
  lm_options_t o = {.name = s->name,
                    .bind = "127.0.0.1:0",
                    .cluster = "test",
                    .identity = &id,
                    .trusted = (const uint8_t(*)[LM_PUBLICKEY_BYTES])trusted,
                    .ntrusted = nt,
                    .probe_interval_ms = c->probe_ms,
                    .probe_timeout_ms = c->timeout_ms,
                    .on_event = s->on_event ? s->on_event : record,
                    .event_ud = s->on_event ? s->event_ud : t,
                    .log = s->log,
                    .log_ud = s->log_ud,
                    .log_level = LM_LOG_ERROR};
  int rc = lm_node_new(&t->node, s->threaded ? NULL : &c->loop, &o);
  lm_identity_wipe(&id);
  assert_int_equal(rc, 0);
  assert_int_equal(start_node(t->node), 0);
  assert_int_equal(lm_node_bound_addr(t->node, t->addr, sizeof t->addr), 0);
  return t;
}

static inline tnode_t *add(cluster_t *c, const char *name) {
  node_spec_t s = {.name = name};
  return node_add(c, &s);
}

static inline void join(tnode_t *t, const tnode_t *seed) {
  const char *a = seed->addr;
  assert_int_equal(lm_node_join(t->node, &a, 1), 0);
}

typedef int (*pred_fn)(void *arg);

static inline void poll_cb(uv_timer_t *t) { (void)t; }

/* Runs the loop until pred(arg) holds or timeout_ms pass; returns whether
 * it held. A repeating timer makes every UV_RUN_ONCE come back often. */
static inline int run_until(cluster_t *c, pred_fn pred, void *arg,
                     uint64_t timeout_ms) {
  uv_timer_t poll;
  uv_timer_init(&c->loop, &poll);
  uv_timer_start(&poll, poll_cb, POLL_MS, POLL_MS);
  uv_update_time(&c->loop);
  uint64_t end = uv_now(&c->loop) + timeout_ms;
  int ok;
  while (!(ok = pred(arg)) && uv_now(&c->loop) < end)
    uv_run(&c->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&poll, NULL);
  uv_run(&c->loop, UV_RUN_NOWAIT); /* lets the close finish */
  return ok;
}

static inline int never(void *arg) {
  (void)arg;
  return 0;
}

/* Lets the mesh run for a while with nothing to wait for. */
static inline void run_for(cluster_t *c, uint64_t ms) { run_until(c, never, NULL, ms); }

static inline void on_closed(lm_node_t *node, int status, void *ud) {
  /* the node is gone by now: it is passed as NULL */
  assert_null(node);
  assert_int_equal(status, 0);
  tnode_t *t = ud;
  t->closed = 1;
}

static inline void node_close(tnode_t *t) {
  lm_node_t *n = t->node;
  t->node = NULL;
  lm_node_close(n, on_closed, t);
}

static inline int all_closed(void *arg) {
  cluster_t *c = arg;
  for (int i = 0; i < c->n; i++)
    if (!c->t[i].closed)
      return 0;
  return 1;
}

/* Closes whatever is still open, waits for every close callback, and
 * checks that the loop has no handle left. */
static inline void cluster_free(cluster_t *c) {
  for (int i = 0; i < c->n; i++)
    if (c->t[i].node)
      node_close(&c->t[i]);
  assert_true(run_until(c, all_closed, c, 15000));
  uv_run(&c->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&c->loop), 0);
  for (int i = 0; i < c->n; i++)
    free(c->t[i].evs);
  free(c);
  alarm(0);
}

/* The status `obs` holds for member `name`, or -1 if it does not list it. */
static inline int status_of(tnode_t *obs, const char *name) {
  lm_member_t *m;
  size_t n;
  assert_int_equal(lm_node_members(obs->node, &m, &n), 0);
  int st = -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i].name, name) == 0)
      st = (int)m[i].status;
  free(m);
  return st;
}

static inline size_t alive_count(tnode_t *t) {
  size_t n = 0;
  assert_int_equal(lm_node_alive_count(t->node, &n), 0);
  return n;
}

/* Every open node in [from, to) sees `want` members alive. */
typedef struct conv_arg {
  cluster_t *c;
  int from, to;
  size_t want;
} conv_arg_t;

static inline int converged(void *arg) {
  conv_arg_t *a = arg;
  for (int i = a->from; i < a->to; i++)
    if (a->c->t[i].node && alive_count(&a->c->t[i]) != a->want)
      return 0;
  return 1;
}

static inline int wait_converged(cluster_t *c, int from, int to, size_t want,
                          uint64_t timeout_ms) {
  conv_arg_t a = {c, from, to, want};
  return run_until(c, converged, &a, timeout_ms);
}

/* Every open node in [from, to), `target` excepted, holds `target` in
 * status `st`. */
typedef struct status_arg {
  cluster_t *c;
  int from, to;
  tnode_t *target;
  lm_status_t st;
} status_arg_t;

static inline int all_see(void *arg) {
  status_arg_t *a = arg;
  for (int i = a->from; i < a->to; i++) {
    tnode_t *o = &a->c->t[i];
    if (o == a->target || !o->node)
      continue;
    if (status_of(o, a->target->name) != (int)a->st)
      return 0;
  }
  return 1;
}

static inline long find_ev(const tnode_t *t, const char *name, lm_event_kind_t kind,
                    long from, long to) {
  for (long i = from; i < to && i < (long)t->nev; i++)
    if (t->evs[i].kind == kind && strcmp(t->evs[i].name, name) == 0)
      return i;
  return -1;
}

static inline long rfind_ev(const tnode_t *t, const char *name, lm_event_kind_t kind,
                     long before) {
  for (long i = before - 1; i >= 0; i--)
    if (t->evs[i].kind == kind && strcmp(t->evs[i].name, name) == 0)
      return i;
  return -1;
}

static inline int flag_set(void *arg) { return *(volatile int *)arg != 0; }

static inline void on_left(lm_node_t *node, int status, void *ud) {
  tnode_t *t = ud;
  assert_ptr_equal(node, t->node); /* the node stays open after a leave */
  t->left = 1;
  t->leave_rc = status;
}

static inline uint64_t drops_of(tnode_t *t, const char *reason, uint64_t *total) {
  lm_stats_t s;
  assert_int_equal(lm_node_stats(t->node, &s), 0);
  if (total)
    *total = s.dropped_total;
  uint64_t n = 0;
  for (size_t i = 0; i < s.ndropped; i++)
    if (reason && strcmp(s.dropped[i].reason, reason) == 0)
      n += s.dropped[i].count;
  return n;
}


#endif
