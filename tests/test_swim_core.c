/*
 * test_swim_core.c: the SWIM state machine (swim/swim.h), driven by hand.
 *
 * Two to five cores (sixty for the datagram-size check) on the in-memory
 * network of swim_pair.h, with injected time and splitmix64 randomness, so
 * every scenario is exactly repeatable. Each test states an outcome: who
 * marks whom, in which order, how long a suspicion lasts, which counters
 * grow, and that refused input leaves the member table as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "swim_msg.h"
#include "swim_pair.h"

#define SEED 0x5eed5eedull

/* ---- helpers ---- */

enum { SIG_NONE, SIG_GOOD, SIG_WRONG_KEY, SIG_FLIPPED, SIG_STALE_META };

/* Appends the alive record of test node `who` (which need not be running),
 * signed as asked. SIG_STALE_META signs other metadata than it sends, as a
 * relay that edits a record would. */
static void add_alive(msg_t *m, int who, swim_inc_t inc, const char *meta,
                      int sig_mode) {
  uint8_t id[SWIM_ID_LEN];
  tp_id(id, who);
  char name[32];
  snprintf(name, sizeof name, "node-%d", who);
  swim_addr_t a = tp_addr(who);
  size_t meta_len = meta ? strlen(meta) : 0;
  size_t start = m->w.len, from;
  swim_enc_alive_body(&m->pk, id, name, &a, inc, (const uint8_t *)meta,
                      meta_len, &from);
  uint8_t sig[SWIM_SIG_LEN];
  switch (sig_mode) {
  case SIG_NONE:
    swim_enc_sig(&m->pk, NULL);
    return;
  case SIG_WRONG_KEY: {
    uint8_t other[SWIM_ID_LEN];
    tp_id(other, who + 1);
    tp_toy_sig(sig, other, m->buf + from, m->w.len - from);
    break;
  }
  case SIG_STALE_META: {
    /* sign the record with one more byte of metadata, send it without */
    msg_t alt;
    size_t afrom;
    swim_wbuf_init(&alt.w, alt.buf, sizeof alt.buf);
    swim_wbuf_packer(&alt.w, &alt.pk);
    char longer[64];
    snprintf(longer, sizeof longer, "%s!", meta ? meta : "");
    swim_enc_alive_body(&alt.pk, id, name, &a, inc, (const uint8_t *)longer,
                        strlen(longer), &afrom);
    tp_toy_sig(sig, id, alt.buf + afrom, alt.w.len - afrom);
    break;
  }
  default:
    tp_toy_sig(sig, id, m->buf + from, m->w.len - from);
    if (sig_mode == SIG_FLIPPED)
      sig[17] ^= 0x01;
    break;
  }
  (void)start;
  swim_enc_sig(&m->pk, sig);
}

static void add_left(msg_t *m, int who, swim_inc_t inc, int sig_mode) {
  uint8_t id[SWIM_ID_LEN];
  tp_id(id, who);
  size_t from;
  swim_enc_left_body(&m->pk, tp_id8(who), inc, &from);
  if (sig_mode == SIG_NONE) {
    swim_enc_sig(&m->pk, NULL);
    return;
  }
  uint8_t sig[SWIM_SIG_LEN];
  tp_toy_sig(sig, id, m->buf + from, m->w.len - from);
  if (sig_mode != SIG_GOOD)
    sig[0] ^= 0x80;
  swim_enc_sig(&m->pk, sig);
}

/* A copy of what a core knows, to prove that refused input changed
 * nothing. */
typedef struct snap {
  size_t count, alive;
  uint64_t id8[TP_MAX + 8];
  uint8_t status[TP_MAX + 8];
  swim_inc_t inc[TP_MAX + 8];
  size_t events;
  swim_inc_t self;
} snap_t;

static void take_snap(tp_net_t *net, int i, snap_t *s) {
  memset(s, 0, sizeof *s);
  swim_core_t *c = net->n[i].core;
  s->count = swim_member_count(c);
  s->alive = swim_alive_count(c);
  for (size_t k = 0; k < s->count && k < TP_MAX + 8; k++) {
    swim_member_t m;
    if (swim_member_at(c, k, &m) != 0)
      continue;
    s->id8[k] = swim_id8(m.id);
    s->status[k] = (uint8_t)m.status;
    s->inc[k] = m.inc;
  }
  s->events = net->n[i].nev;
  s->self = swim_self_inc(c);
}

static void assert_snap_equal(const snap_t *a, const snap_t *b) {
  assert_int_equal(a->count, b->count);
  assert_int_equal(a->alive, b->alive);
  assert_int_equal(a->events, b->events);
  assert_int_equal(a->self.gen, b->self.gen);
  assert_int_equal(a->self.ver, b->self.ver);
  for (size_t k = 0; k < a->count && k < TP_MAX + 8; k++) {
    assert_true(a->id8[k] == b->id8[k]);
    assert_int_equal(a->status[k], b->status[k]);
    assert_int_equal(a->inc[k].gen, b->inc[k].gen);
    assert_int_equal(a->inc[k].ver, b->inc[k].ver);
  }
}

/* The network of the running test. A failed assertion leaves the test by a
 * longjmp, so the teardown, not the test, frees it: the sanitizer build
 * then reports the failure and no leak. */
static tp_net_t *g_net;

static tp_net_t *net_new(int shared_cache) {
  if (g_net)
    tp_net_free(g_net);
  g_net = tp_net_new(SEED, shared_cache);
  return g_net;
}

static int teardown(void **state) {
  (void)state;
  if (g_net)
    tp_net_free(g_net);
  g_net = NULL;
  return 0;
}

/* Starts n nodes, joins each to node 0 and waits until all see all. */
static tp_net_t *cluster(int n, int signing, int shared_cache) {
  tp_net_t *net = net_new(shared_cache);
  for (int i = 0; i < n; i++)
    assert_int_equal(tp_start(net, i, signing), 0);
  for (int i = 1; i < n; i++)
    assert_int_equal(tp_join(net, i, 0), 0);
  assert_true(tp_wait_converged(net, 20000));
  return net;
}

static uint64_t drops_total(const swim_stats_t *st) {
  uint64_t t = 0;
  for (int i = 0; i < SWIM_DROP__COUNT; i++)
    t += st->dropped[i];
  return t;
}

/* ---- configuration ---- */

static void noop_send(void *ud, const swim_addr_t *to, const uint8_t *b,
                      size_t n) {
  (void)ud, (void)to, (void)b, (void)n;
}
static uint64_t const_rand(void *ud) {
  (void)ud;
  return 4; /* chosen by fair dice roll */
}

static void test_new_rejects(void **state) {
  (void)state;
  swim_callbacks_t cb;
  memset(&cb, 0, sizeof cb);
  cb.send = noop_send;
  cb.rand64 = const_rand;
  uint8_t big[SWIM_META_MAX + 1];
  memset(big, 1, sizeof big);
  swim_config_t base;
  swim_config_default(&base);
  tp_id(base.id, 0);
  strcpy(base.name, "ok");
  base.addr = tp_addr(0);

  for (int k = 0; k < 9; k++) {
    swim_config_t cfg = base;
    swim_callbacks_t c2 = cb;
    switch (k) {
    case 0: cfg.name[0] = 0; break;                     /* empty name */
    case 1: cfg.probe_timeout_ms = cfg.probe_interval_ms + 1; break;
    case 2: cfg.meta = big; cfg.meta_len = SWIM_META_MAX + 1; break;
    case 3: cfg.addr.family = 0; break;
    case 4: cfg.addr.family = 5; break;
    case 5: cfg.meta = NULL; cfg.meta_len = 3; break;   /* len without bytes */
    case 6: cfg.probe_interval_ms = 0; break;
    case 7: c2.send = NULL; break;                      /* required callback */
    case 8: c2.rand64 = NULL; break;
    }
    swim_core_t *c = (swim_core_t *)&cfg; /* anything but NULL */
    int rc = swim_new(&c, &cfg, &c2, NULL, 0);
    if (rc != SWIM_EINVAL)
      print_error("case %d: rc %d\n", k, rc);
    assert_int_equal(rc, SWIM_EINVAL);
    assert_null(c);
  }
  /* a 65-byte name with no room for its NUL is too long too */
  {
    swim_config_t cfg = base;
    memset(cfg.name, 'x', sizeof cfg.name);
    swim_core_t *c = (swim_core_t *)&cfg;
    assert_int_equal(swim_new(&c, &cfg, &cb, NULL, 0), SWIM_EINVAL);
    assert_null(c);
  }
  /* the bounds themselves are fine */
  swim_config_t cfg = base;
  cfg.meta = big;
  cfg.meta_len = SWIM_META_MAX;
  memset(cfg.name, 'y', SWIM_NAME_MAX);
  cfg.name[SWIM_NAME_MAX] = 0;
  cfg.probe_timeout_ms = cfg.probe_interval_ms;
  cfg.addr.family = 6;
  swim_core_t *c = NULL;
  assert_int_equal(swim_new(&c, &cfg, &cb, NULL, 0), 0);
  assert_non_null(c);
  assert_int_equal(swim_member_count(c), 1);
  swim_member_t me;
  assert_int_equal(swim_member_at(c, 0, &me), 0);
  assert_true(me.is_self);
  assert_int_equal(me.meta_len, SWIM_META_MAX);
  assert_int_equal(strlen(me.name), SWIM_NAME_MAX);
  swim_free(c);
}

/* ---- join ---- */

/* While the seed's transport is full, its answers to joins are not sent:
 * one waits per joiner, however often it asks; they go out once the
 * transport has room (swim_stream_ready), and everyone converges. Past SWIM_STREAM_DEFER_MAX
 * waiting addresses a frame is dropped and counted. */
static void test_join_answers_wait_for_stream(void **state) {
  (void)state;
  enum { J = 4 };
  tp_net_t *net = net_new(0);
  for (int i = 0; i <= J; i++)
    assert_int_equal(tp_start(net, i, 0), 0);
  net->n[0].stream_busy = 1;
  for (int i = 1; i <= J; i++)
    assert_int_equal(tp_join(net, i, 0), 0);
  assert_int_equal(tp_join(net, 1, 0), 0); /* asks again */
  swim_core_t *seed = net->n[0].core;
  assert_int_equal(swim_stream_deferred(seed), J);
  assert_int_equal(swim_stats(seed)->stream_deferred, J);
  assert_int_equal(swim_stats(seed)->stream_out, 0);
  for (int i = 1; i <= J; i++)
    assert_int_equal(swim_stats(net->n[i].core)->stream_in, 0);
  /* the core wants a tick soon, to look again */
  assert_true(swim_next_deadline(seed) <=
              net->now + SWIM_STREAM_DEFER_POLL_MS);

  /* room again: the runtime says so, and they go out at once */
  net->n[0].stream_busy = 0;
  assert_int_equal(swim_stream_ready(seed, net->now), 0);
  assert_int_equal(swim_stream_deferred(seed), 0);
  assert_int_equal(swim_stats(seed)->stream_out, J);
  tp_drain(net);
  for (int i = 1; i <= J; i++)
    assert_int_equal(swim_stats(net->n[i].core)->stream_in, 1);
  assert_true(tp_wait_converged(net, 10000));

  net->n[0].stream_busy = 1;
  for (int i = 0; i <= SWIM_STREAM_DEFER_MAX; i++) {
    swim_addr_t a = tp_addr(TP_MAX + i); /* nobody */
    assert_int_equal(swim_sync(seed, &a, net->now), 0);
  }
  assert_int_equal(swim_stream_deferred(seed), SWIM_STREAM_DEFER_MAX);
  assert_int_equal(swim_stats(seed)->stream_deferred_dropped, 1);
}

static void test_join(void **state) {
  (void)state;
  tp_net_t *net = net_new(0);
  const char *meta[2] = {"role=seed", "role=web;port=80"};
  for (int i = 0; i < 2; i++) {
    swim_config_t cfg;
    tp_config(net, i, &cfg);
    cfg.generation = 10 + (uint32_t)i;
    cfg.meta = (const uint8_t *)meta[i];
    cfg.meta_len = strlen(meta[i]);
    assert_int_equal(tp_start_cfg(net, i, &cfg, 0), 0);
  }
  assert_int_equal(swim_member_count(net->n[1].core), 1);
  assert_int_equal(tp_join(net, 1, 0), 0);
  /* the join went over the stream, both ways, and needed no timer */
  assert_true(net->streams >= 2);
  assert_true(swim_stats(net->n[0].core)->stream_in >= 1);
  assert_true(swim_stats(net->n[1].core)->stream_in >= 1);
  for (int obs = 0; obs < 2; obs++) {
    int subj = 1 - obs;
    swim_member_t m;
    assert_int_equal(tp_member(net, obs, subj, &m), 0);
    char want[32];
    snprintf(want, sizeof want, "node-%d", subj);
    assert_string_equal(m.name, want);
    assert_int_equal(m.status, SWIM_ALIVE);
    assert_false(m.is_self);
    swim_addr_t a = tp_addr(subj);
    assert_int_equal(m.addr.family, 4);
    assert_int_equal(m.addr.port, a.port);
    assert_memory_equal(m.addr.ip, a.ip, 4);
    assert_int_equal(m.inc.gen, 10 + subj);
    assert_int_equal(m.inc.ver, 0);
    assert_int_equal(m.meta_len, strlen(meta[subj]));
    assert_memory_equal(m.meta, meta[subj], m.meta_len);
    assert_int_equal(swim_alive_count(net->n[obs].core), 2);
    /* exactly one event, a join about the other */
    assert_int_equal(net->n[obs].nev, 1);
    assert_int_equal(net->n[obs].ev[0].kind, SWIM_EV_JOIN);
    assert_true(net->n[obs].ev[0].id8 == tp_id8(subj));
    assert_string_equal(net->n[obs].ev[0].name, want);
  }
  assert_int_equal(net->n[0].recv_errors + net->n[1].recv_errors, 0);
}

/* ---- probing on a perfect network ---- */

static void test_probe_ack(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 0, 0);
  size_t ev0[3];
  for (int i = 0; i < 3; i++)
    ev0[i] = net->n[i].nev;
  tp_run(net, 10000);
  for (int i = 0; i < 3; i++) {
    const swim_stats_t *st = swim_stats(net->n[i].core);
    /* about one probe per second each, every one answered */
    assert_true(st->probes >= 8);
    assert_true(st->pings >= st->probes);
    assert_true(st->acks >= 8);
    assert_int_equal(st->probes_failed, 0);
    assert_int_equal(st->ping_reqs, 0);
    assert_int_equal(st->suspicions_raised, 0);
    assert_int_equal(st->refutes, 0);
    assert_int_equal(drops_total(st), 0);
    assert_int_equal(swim_local_health(net->n[i].core), 0);
    assert_int_equal(net->n[i].nev, ev0[i]); /* nothing happened */
    assert_int_equal(net->n[i].recv_errors, 0);
    for (int j = 0; j < 3; j++)
      assert_int_equal(tp_status(net, i, j), SWIM_ALIVE);
  }
  /* probing goes round robin: everyone was probed by everyone */
  uint64_t pings = 0, acks = 0;
  for (int i = 0; i < 3; i++) {
    pings += swim_stats(net->n[i].core)->pings;
    acks += swim_stats(net->n[i].core)->acks;
  }
  assert_true(pings == acks); /* every ping answered once */
  assert_true(swim_next_deadline(net->n[0].core) != UINT64_MAX);
  assert_true(swim_next_deadline(net->n[0].core) > net->now);
}

/* ---- failure detection ---- */

static void test_failure(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 0, 0);
  tp_run(net, 3000);
  tp_isolate(net, 2, 1);
  uint64_t cut = net->now;
  uint64_t t = tp_wait_status(net, 0, 2, SWIM_DEAD, 60000);
  assert_true(t != UINT64_MAX);
  long j = tp_find_ev(net, 0, 2, SWIM_EV_JOIN, 0);
  long s = tp_find_ev(net, 0, 2, SWIM_EV_SUSPECT, 0);
  long d = tp_find_ev(net, 0, 2, SWIM_EV_DEAD, 0);
  assert_true(j >= 0 && s > j && d > s);
  /* nothing else about C in between: it never looked alive again */
  assert_int_equal(tp_count_ev(net, 0, 2, SWIM_EV_SUSPECT), 1);
  assert_int_equal(tp_count_ev(net, 0, 2, SWIM_EV_JOIN), 1);
  tp_ev_t *se = &net->n[0].ev[s], *de = &net->n[0].ev[d];
  assert_int_equal(se->old_status, SWIM_ALIVE);
  assert_int_equal(de->old_status, SWIM_SUSPECT);
  assert_int_equal(de->status, SWIM_DEAD);
  /* Lifeguard's floor: min = suspicion_min_mult * max(1, log10 n) *
   * probe_interval, which is suspicion_min_mult probe periods with three
   * members; and at most max = suspicion_max_mult * min */
  swim_config_t cfg;
  swim_config_default(&cfg);
  uint64_t min_ms = (uint64_t)cfg.suspicion_min_mult * cfg.probe_interval_ms;
  uint64_t lasted = de->at - se->at;
  print_message("C cut at %llu ms, suspected after %llu ms, dead after "
                "%llu ms more\n",
                (unsigned long long)(cut % 1000000),
                (unsigned long long)(se->at - cut),
                (unsigned long long)lasted);
  assert_true(lasted >= min_ms);
  assert_true(lasted <= min_ms * cfg.suspicion_max_mult + TP_STEP_MS);
  /* and suspicion started only after a probe could have failed */
  assert_true(se->at >= cut + cfg.probe_timeout_ms);
  /* the other survivor agrees, and nobody else was suspected */
  assert_true(tp_wait_status(net, 1, 2, SWIM_DEAD, 10000) != UINT64_MAX);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 2; k++)
      assert_int_equal(tp_count_ev(net, i, k, SWIM_EV_SUSPECT), 0);
  assert_int_equal(swim_alive_count(net->n[0].core), 2);
  assert_true(swim_stats(net->n[0].core)->probes_failed >= 1);
  assert_true(swim_stats(net->n[0].core)->deaths_declared +
                  swim_stats(net->n[1].core)->deaths_declared >= 1);
}

/* ---- refuting a suspicion ---- */

static void test_refute(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 0, 0);
  swim_core_t *b = net->n[1].core;
  swim_inc_t inc0 = swim_self_inc(b);
  size_t nev = net->n[1].nev;

  /* A accuses B, straight into B */
  msg_t m;
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(0));
  swim_enc_accuse(&m.pk, SWIM_UPD_SUSPECT, tp_id8(1), inc0, tp_id8(0));
  swim_addr_t from = tp_addr(0);
  assert_int_equal(swim_recv(b, &from, m.buf, m.w.len, net->now), 0);
  swim_inc_t inc1 = swim_self_inc(b);
  assert_int_equal(inc1.gen, inc0.gen);
  assert_true(inc1.ver > inc0.ver);
  assert_int_equal(swim_stats(b)->refutes, 1);
  assert_int_equal(net->n[1].nev, nev + 1);
  assert_int_equal(net->n[1].ev[nev].kind, SWIM_EV_REFUTE);
  assert_true(net->n[1].ev[nev].id8 == tp_id8(1));
  assert_int_equal(net->n[1].ev[nev].inc.ver, inc1.ver);
  tp_drain(net);
  tp_run(net, 3000);
  for (int i = 0; i < 3; i++) {
    swim_member_t mb;
    assert_int_equal(tp_member(net, i, 1, &mb), 0);
    assert_int_equal(mb.status, SWIM_ALIVE);
    assert_int_equal(mb.inc.gen, inc1.gen);
    assert_int_equal(mb.inc.ver, inc1.ver);
  }

  /* the accusation reaches B only by gossip this time: A believes it,
   * B hears of it, refutes, and A takes B back */
  size_t nev0 = net->n[0].nev;
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  swim_enc_accuse(&m.pk, SWIM_UPD_SUSPECT, tp_id8(1), inc1, tp_id8(2));
  from = tp_addr(2);
  assert_int_equal(swim_recv(net->n[0].core, &from, m.buf, m.w.len, net->now),
                   0);
  assert_int_equal(tp_status(net, 0, 1), SWIM_SUSPECT);
  assert_true(tp_wait_status(net, 0, 1, SWIM_ALIVE, 5000) != UINT64_MAX);
  swim_inc_t inc2 = swim_self_inc(b);
  assert_true(inc2.ver > inc1.ver);
  long s = tp_find_ev(net, 0, 1, SWIM_EV_SUSPECT, nev0);
  long j = tp_find_ev(net, 0, 1, SWIM_EV_JOIN, nev0);
  assert_true(s >= 0 && j > s);
  assert_int_equal(net->n[0].ev[j].old_status, SWIM_SUSPECT);
  assert_int_equal(net->n[0].ev[j].inc.ver, inc2.ver);
  tp_run(net, 15000); /* and it stays that way */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(tp_status(net, i, 1), SWIM_ALIVE);
    assert_int_equal(tp_count_ev(net, i, 1, SWIM_EV_DEAD), 0);
  }
  assert_int_equal(swim_stats(b)->refutes, 2);
}

/* A verdict ping gets its full probe timeout, whatever else arrives
 * meanwhile. An observer that holds a member SUSPECT on hearsay checks
 * the first DEAD verdict about it with a ping of its own (verify_start);
 * only that ping left unanswered for a probe timeout is first-hand
 * evidence. A second verdict from another accuser used to recompute the
 * deadline from the suspicion's start, which had run out long before, so
 * the next tick took the ping for unanswered 2 ms after sending it
 * (livemesh-sim --nodes 128 --seed 97 --oneway 20:60:0.5: n70 declared
 * n113 dead at 30.005 s, its ack with the refutation came at 30.007 s).
 * `answer`: the member is up and answers; otherwise it is gone, and is
 * declared exactly one probe timeout after the ping. */
static void inject_accuse(tp_net_t *net, int to, int from, int kind, int subj,
                          swim_inc_t inc) {
  msg_t m;
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(from));
  swim_enc_accuse(&m.pk, (uint8_t)kind, tp_id8(subj), inc, tp_id8(from));
  swim_addr_t fa = tp_addr(from);
  assert_int_equal(
      swim_recv(net->n[to].core, &fa, m.buf, m.w.len, net->now), 0);
}

static void verdict_ping_race(int answer) {
  tp_net_t *net = cluster(6, 0, 0);
  tp_run(net, 2000);
  swim_core_t *a = net->n[0].core;
  swim_inc_t inc = swim_self_inc(net->n[1].core);
  swim_config_t cfg;
  swim_config_default(&cfg);
  /* node 0 hears that node 2 suspects node 1 */
  inject_accuse(net, 0, 2, SWIM_UPD_SUSPECT, 1, inc);
  assert_int_equal(tp_status(net, 0, 1), SWIM_SUSPECT);
  /* past the longest suspicion timeout, a DEAD verdict from node 3: node 0
   * pings node 1 to check it */
  net->now += (uint64_t)cfg.suspicion_max_mult * cfg.probe_interval_ms + 1000;
  if (!answer)
    tp_isolate(net, 1, 1);
  uint64_t pinged = net->now;
  inject_accuse(net, 0, 3, SWIM_UPD_DEAD, 1, inc);
  assert_int_equal(tp_status(net, 0, 1), SWIM_SUSPECT);
  /* 2 ms later the same verdict from node 4, a new accuser */
  net->now += 2;
  inject_accuse(net, 0, 4, SWIM_UPD_DEAD, 1, inc);
  swim_tick(a, net->now);
  assert_int_equal(tp_status(net, 0, 1), SWIM_SUSPECT);
  assert_int_equal(tp_count_ev(net, 0, 1, SWIM_EV_DEAD), 0);
  if (answer) {
    /* the ping arrives, node 1 refutes in its ack */
    tp_drain(net);
    assert_int_equal(tp_status(net, 0, 1), SWIM_ALIVE);
    tp_run(net, 10000);
    for (int i = 0; i < 6; i++) {
      assert_int_equal(tp_status(net, i, 1), SWIM_ALIVE);
      assert_int_equal(tp_count_ev(net, i, 1, SWIM_EV_DEAD), 0);
    }
    return;
  }
  tp_drain(net);
  net->now = pinged + cfg.probe_timeout_ms - 1;
  swim_tick(a, net->now);
  assert_int_equal(tp_status(net, 0, 1), SWIM_SUSPECT);
  net->now = pinged + cfg.probe_timeout_ms;
  swim_tick(a, net->now);
  assert_int_equal(tp_status(net, 0, 1), SWIM_DEAD);
}

static void test_verdict_ping_full_timeout(void **state) {
  (void)state;
  verdict_ping_race(1);
}

static void test_verdict_ping_unanswered(void **state) {
  (void)state;
  verdict_ping_race(0);
}

/* A datagram from a member held dead (here one that was cut off, and came
 * back while everybody still holds it dead) makes the receiver ping it
 * with its verdict; the ack carries the member's refutation and it is
 * alive again at once, without waiting for gossip, anti-entropy or the
 * reconnect timer. */
static void test_heard_from_dead(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 0, 0);
  tp_run(net, 2000);
  tp_isolate(net, 1, 1);
  assert_true(tp_wait_status(net, 0, 1, SWIM_DEAD, 60000) != UINT64_MAX);
  tp_isolate(net, 1, 0);
  tp_drain(net);
  assert_int_equal(tp_status(net, 0, 1), SWIM_DEAD);
  /* any datagram will do: an empty gossip from node 1 */
  msg_t m;
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(1));
  swim_addr_t from = tp_addr(1);
  assert_int_equal(
      swim_recv(net->n[0].core, &from, m.buf, m.w.len, net->now), 0);
  tp_drain(net); /* the verdict ping, node 1's ack with its refutation */
  assert_int_equal(tp_status(net, 0, 1), SWIM_ALIVE);
  swim_member_t mb;
  assert_int_equal(tp_member(net, 0, 1, &mb), 0);
  assert_true(swim_self_inc(net->n[1].core).ver > 0);
  assert_int_equal(mb.inc.ver, swim_self_inc(net->n[1].core).ver);
}

/* Accusations are not signed by the accused, so none may outrank the
 * newest incarnation the member signed: an accusation at the largest
 * version or the largest incarnation there is (which no refutation could
 * outrank) is taken at the member's own, counted as accusation_ahead, and
 * refuted as usual; the accused stays alive everywhere. */
static void test_accusation_ahead(void **state) {
  (void)state;
  for (int k = 0; k < 2; k++) {
    tp_net_t *net = cluster(3, 0, 0);
    swim_core_t *a = net->n[0].core, *b = net->n[1].core;
    swim_inc_t inc0 = swim_self_inc(b);
    swim_inc_t accused = {k ? UINT32_MAX : inc0.gen, UINT32_MAX};
    msg_t m;
    msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
    swim_enc_accuse(&m.pk, SWIM_UPD_DEAD, tp_id8(1), accused, tp_id8(2));
    swim_addr_t from = tp_addr(2);
    /* into A, which takes it as a doubt at B's own incarnation, and B */
    assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now), 0);
    assert_int_equal(swim_stats(a)->dropped[SWIM_DROP_ACC_AHEAD], 1);
    swim_member_t seen;
    assert_int_equal(tp_member(net, 0, 1, &seen), 0);
    assert_int_equal(seen.inc.gen, inc0.gen);
    assert_int_equal(seen.inc.ver, inc0.ver);
    assert_int_equal(swim_recv(b, &from, m.buf, m.w.len, net->now), 0);
    assert_int_equal(swim_stats(b)->dropped[SWIM_DROP_ACC_AHEAD], 1);
    swim_inc_t inc1 = swim_self_inc(b);
    assert_int_equal(inc1.gen, inc0.gen); /* refuted just past its own */
    assert_int_equal(inc1.ver, inc0.ver + 1);
    tp_run(net, 30000);
    for (int o = 0; o < 3; o += 2) {
      assert_int_equal(tp_status(net, o, 1), SWIM_ALIVE);
      assert_int_equal(tp_member(net, o, 1, &seen), 0);
      assert_int_equal(seen.inc.gen, inc1.gen);
      assert_true(seen.inc.ver >= inc1.ver);
    }
    assert_int_equal(swim_stats(a)->deaths_declared, 0);
  }
}

/* What an insider can send under its own (authenticated) name: it cannot
 * speak as another member (sender_mismatch), forge a newer record of ours
 * (bad_record_signature), replay records the members have moved past
 * (record_stale) or accusations they have refuted (accusation_stale).
 * Each is counted; nobody's state moves. */
static void test_insider_records(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 1, 0);
  swim_core_t *a = net->n[0].core;
  const swim_stats_t *st = swim_stats(a);
  swim_addr_t from = tp_addr(2);
  swim_inc_t inc_a = swim_self_inc(a), inc_b = swim_self_inc(net->n[1].core);

  /* node 2's datagram whose header names node 1 */
  msg_t m;
  msg_begin(&m, SWIM_MSG_ACK, tp_id8(1));
  assert_int_equal(
      swim_recv_from(a, &from, tp_id8(2), m.buf, m.w.len, net->now),
      SWIM_ESPOOF);
  assert_int_equal(st->dropped[SWIM_DROP_SPOOFED], 1);
  /* the same header naming node 2 itself is fine */
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  assert_int_equal(
      swim_recv_from(a, &from, tp_id8(2), m.buf, m.w.len, net->now), 0);

  /* a newer alive record of A itself, signed by another key */
  swim_inc_t ahead = {inc_a.gen, inc_a.ver + 100};
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  add_alive(&m, 0, ahead, NULL, SIG_WRONG_KEY);
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now),
                   SWIM_EBADSIG);
  assert_int_equal(st->dropped[SWIM_DROP_BADSIG], 1);
  assert_int_equal(swim_self_inc(a).ver, inc_a.ver);

  /* B refutes an accusation; then its older record and the refuted
   * accusation come back */
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  swim_enc_accuse(&m.pk, SWIM_UPD_SUSPECT, tp_id8(1), inc_b, tp_id8(2));
  assert_int_equal(swim_recv(net->n[1].core, &from, m.buf, m.w.len, net->now),
                   0);
  tp_run(net, 3000);
  swim_member_t seen;
  assert_int_equal(tp_member(net, 0, 1, &seen), 0);
  assert_int_equal(seen.status, SWIM_ALIVE);
  assert_true(seen.inc.ver > inc_b.ver);
  uint64_t stale0 = st->dropped[SWIM_DROP_REC_STALE];
  uint64_t acc0 = st->dropped[SWIM_DROP_ACC_STALE];
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  add_alive(&m, 1, inc_b, NULL, SIG_GOOD);
  swim_enc_accuse(&m.pk, SWIM_UPD_DEAD, tp_id8(1), inc_b, tp_id8(2));
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now), 0);
  assert_int_equal(st->dropped[SWIM_DROP_REC_STALE], stale0 + 1);
  assert_int_equal(st->dropped[SWIM_DROP_ACC_STALE], acc0 + 1);
  assert_int_equal(tp_status(net, 0, 1), SWIM_ALIVE);
  tp_run(net, 20000);
  for (int o = 0; o < 3; o++)
    for (int s = 0; s < 3; s++)
      assert_int_equal(tp_status(net, o, s), SWIM_ALIVE);
  assert_int_equal(st->deaths_declared, 0);
}

/* A probe whose first ping and helpers are all lost is saved by the last
 * direct ping, halfway between going indirect and the verdict, when the
 * prober is healthy and the target has been quiet; the same loss lasting
 * past that ping still ends in a suspicion (so the test can fail). */
static int lost_probe_suspects(int clear_at_ms) {
  tp_net_t *net = cluster(3, 0, 0);
  tp_run(net, 25000); /* everyone alive and quiet for 20 s */
  swim_core_t *a = net->n[0].core;
  assert_int_equal(swim_local_health(a), 0);
  uint64_t probes = swim_stats(a)->probes;
  uint64_t susp = swim_stats(a)->suspicions_raised;
  net->drop[0][1] = net->drop[0][2] = 1; /* all A sends is lost */
  while (swim_stats(a)->probes == probes)
    tp_run(net, TP_STEP_MS);
  uint64_t pings = swim_stats(a)->pings; /* the first ping, lost */
  tp_run(net, (uint64_t)clear_at_ms);
  net->drop[0][1] = net->drop[0][2] = 0;
  tp_run(net, 1500 - (uint64_t)clear_at_ms);
  /* the second at going indirect, then the last one */
  assert_true(swim_stats(a)->pings >= pings + 2);
  return swim_stats(a)->suspicions_raised > susp;
}

static void test_last_direct_ping(void **state) {
  (void)state;
  assert_false(lost_probe_suspects(600)); /* lost until after going indirect */
  assert_true(lost_probe_suspects(950));  /* lost until the verdict */
}

/* ---- graceful leave ---- */

static void test_leave(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 0, 0);
  swim_core_t *b = net->n[1].core;
  assert_false(swim_leave_done(b));
  assert_int_equal(swim_leave(b, net->now), 0);
  assert_int_equal(swim_leave(b, net->now), 0); /* idempotent */
  tp_drain(net);
  /* the leave travels at once, not after a suspicion timeout */
  assert_int_equal(tp_status(net, 0, 1), SWIM_LEFT);
  assert_int_equal(tp_status(net, 2, 1), SWIM_LEFT);
  swim_member_t me;
  assert_int_equal(swim_member_at(b, 0, &me), 0);
  assert_int_equal(me.status, SWIM_LEFT);
  /* a leaving node takes no new duties */
  assert_int_equal(swim_set_meta(b, (const uint8_t *)"x", 1, net->now),
                   SWIM_ESTATE);
  swim_addr_t a0 = tp_addr(0);
  assert_int_equal(swim_join(b, &a0, 1, net->now), SWIM_ESTATE);
  uint64_t waited = 0;
  while (!swim_leave_done(b) && waited < 10000) {
    tp_run(net, 50);
    waited += 50;
  }
  assert_true(swim_leave_done(b));
  tp_stop(net, 1);
  tp_run(net, 30000);
  for (int i = 0; i < 3; i += 2) {
    assert_int_equal(tp_status(net, i, 1), SWIM_LEFT);
    assert_int_equal(tp_count_ev(net, i, 1, SWIM_EV_LEFT), 1);
    assert_int_equal(tp_count_ev(net, i, 1, SWIM_EV_DEAD), 0);
    assert_int_equal(tp_count_ev(net, i, 1, SWIM_EV_SUSPECT), 0);
    long l = tp_find_ev(net, i, 1, SWIM_EV_LEFT, 0);
    assert_int_equal(net->n[i].ev[l].old_status, SWIM_ALIVE);
    assert_int_equal(swim_alive_count(net->n[i].core), 2);
  }
  /* and the two left behind still trust each other */
  assert_int_equal(tp_status(net, 0, 2), SWIM_ALIVE);
  assert_int_equal(tp_status(net, 2, 0), SWIM_ALIVE);
}

/* ---- restart with a new generation ---- */

static int start_gen(tp_net_t *net, int i, uint32_t gen) {
  swim_config_t cfg;
  tp_config(net, i, &cfg);
  cfg.generation = gen;
  return tp_start_cfg(net, i, &cfg, 0);
}

static void test_restart(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 0, 0);
  /* left, then back with generation 2 */
  assert_int_equal(swim_leave(net->n[1].core, net->now), 0);
  tp_run(net, 2000);
  assert_int_equal(tp_status(net, 0, 1), SWIM_LEFT);
  tp_stop(net, 1);
  tp_run(net, 1000);
  size_t nev[3] = {net->n[0].nev, 0, net->n[2].nev};
  assert_int_equal(start_gen(net, 1, 2), 0);
  assert_int_equal(tp_join(net, 1, 0), 0);
  assert_true(tp_wait_converged(net, 10000));
  for (int i = 0; i < 3; i += 2) {
    swim_member_t m;
    assert_int_equal(tp_member(net, i, 1, &m), 0);
    assert_int_equal(m.status, SWIM_ALIVE);
    assert_int_equal(m.inc.gen, 2);
    long j = tp_find_ev(net, i, 1, SWIM_EV_JOIN, nev[i]);
    assert_true(j >= 0);
    assert_int_equal(net->n[i].ev[j].old_status, SWIM_LEFT);
    assert_int_equal(net->n[i].ev[j].inc.gen, 2);
  }
  /* the new life does not take the old leave for its own */
  assert_int_equal(swim_self_inc(net->n[1].core).gen, 2);
  assert_int_equal(swim_stats(net->n[1].core)->refutes, 0);

  /* crashed, declared dead, back with generation 3 */
  tp_stop(net, 1);
  assert_true(tp_wait_status(net, 0, 1, SWIM_DEAD, 60000) != UINT64_MAX);
  nev[0] = net->n[0].nev;
  nev[2] = net->n[2].nev;
  assert_int_equal(start_gen(net, 1, 3), 0);
  assert_int_equal(tp_join(net, 1, 0), 0);
  assert_true(tp_wait_converged(net, 10000));
  for (int i = 0; i < 3; i += 2) {
    swim_member_t m;
    assert_int_equal(tp_member(net, i, 1, &m), 0);
    assert_int_equal(m.inc.gen, 3);
    long j = tp_find_ev(net, i, 1, SWIM_EV_JOIN, nev[i]);
    assert_true(j >= 0);
    assert_true(net->n[i].ev[j].old_status == SWIM_DEAD ||
                net->n[i].ev[j].old_status == SWIM_SUSPECT);
  }
  tp_run(net, 10000);
  for (int i = 0; i < 3; i++)
    assert_int_equal(tp_status(net, i, 1), SWIM_ALIVE);
}

/* ---- metadata ---- */

static void test_set_meta(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 0, 0);
  swim_inc_t inc0 = swim_self_inc(net->n[0].core);
  size_t nev[3] = {net->n[0].nev, net->n[1].nev, net->n[2].nev};
  const char *meta = "version=2;zone=b";
  assert_int_equal(swim_set_meta(net->n[0].core, (const uint8_t *)meta,
                                 strlen(meta), net->now),
                   0);
  assert_int_equal(swim_self_inc(net->n[0].core).ver, inc0.ver + 1);
  assert_int_equal(swim_set_meta(net->n[0].core, NULL, SWIM_META_MAX + 1,
                                 net->now),
                   SWIM_EINVAL);
  tp_run(net, 3000);
  for (int i = 1; i < 3; i++) {
    long u = tp_find_ev(net, i, 0, SWIM_EV_UPDATE, nev[i]);
    assert_true(u >= 0);
    tp_ev_t *e = &net->n[i].ev[u];
    assert_int_equal(e->meta_len, strlen(meta));
    assert_memory_equal(e->meta, meta, e->meta_len);
    assert_int_equal(e->inc.ver, inc0.ver + 1);
    assert_int_equal(e->status, SWIM_ALIVE);
    assert_int_equal(tp_count_ev(net, i, 0, SWIM_EV_UPDATE), 1);
    assert_int_equal(tp_find_ev(net, i, 0, SWIM_EV_JOIN, nev[i]), -1);
    swim_member_t m;
    assert_int_equal(tp_member(net, i, 0, &m), 0);
    assert_int_equal(m.meta_len, strlen(meta));
    assert_memory_equal(m.meta, meta, m.meta_len);
  }
  /* the node itself gets no event about its own change */
  assert_int_equal(net->n[0].nev, nev[0]);
}

/* ---- malformed input ---- */

static void test_malformed_no_change(void **state) {
  (void)state;
  tp_net_t *net = cluster(2, 0, 0);
  swim_core_t *a = net->n[0].core;
  swim_addr_t from = tp_addr(1);
  uint64_t now = net->now;
  snap_t s0, s1;
  take_snap(net, 0, &s0);
  const swim_stats_t *st = swim_stats(a);
  uint8_t idx[SWIM_ID_LEN];
  tp_id(idx, 9); /* the newcomer none of these may introduce */

  /* garbage */
  uint8_t junk[200];
  uint64_t r = 42;
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (uint8_t)tp_splitmix64(&r);
  junk[0] = 0xc1;
  uint64_t d0 = drops_total(st);
  assert_int_equal(swim_recv(a, &from, junk, sizeof junk, now),
                   SWIM_EMALFORMED);
  assert_int_equal(st->dropped[SWIM_DROP_MALFORMED], 1);
  for (int k = 0; k < 50; k++) {
    size_t n = 1 + (size_t)(tp_splitmix64(&r) % sizeof junk);
    for (size_t i = 0; i < n; i++)
      junk[i] = (uint8_t)tp_splitmix64(&r);
    assert_true(swim_recv(a, &from, junk, n, now) < 0);
  }
  assert_int_equal(drops_total(st), d0 + 51);

  /* From here on each refusal must land in its own counter. */
  uint64_t d[SWIM_DROP__COUNT];
#define SAVE() memcpy(d, st->dropped, sizeof d)
#define GREW(reason)                                                           \
  do {                                                                         \
    for (int k_ = 0; k_ < SWIM_DROP__COUNT; k_++)                              \
      assert_int_equal(st->dropped[k_], d[k_] + (k_ == (reason)));             \
  } while (0)

  /* empty */
  SAVE();
  assert_int_equal(swim_recv(a, &from, junk, 0, now), SWIM_ETRUNC);
  GREW(SWIM_DROP_TRUNCATED);

  /* a valid message about a newcomer, truncated */
  msg_t m;
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(1));
  add_alive(&m, 9, (swim_inc_t){1, 0}, "meta", SIG_NONE);
  SAVE();
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len - 5, now), SWIM_ETRUNC);
  GREW(SWIM_DROP_TRUNCATED);

  /* the newcomer, then a malformed update: refused whole */
  size_t good_len = m.w.len;
  msgpack_pack_array(&m.pk, 5);
  msgpack_pack_uint8(&m.pk, SWIM_UPD_SUSPECT);
  msgpack_pack_str(&m.pk, 3); /* an id8 that is a string */
  msgpack_pack_str_body(&m.pk, "abc", 3);
  msgpack_pack_uint32(&m.pk, 1);
  msgpack_pack_uint32(&m.pk, 0);
  msgpack_pack_uint64(&m.pk, tp_id8(1));
  SAVE();
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, now), SWIM_EMALFORMED);
  GREW(SWIM_DROP_MALFORMED);
  /* and with an update of an unknown kind */
  m.w.len = good_len;
  swim_enc_accuse(&m.pk, 7, tp_id8(1), (swim_inc_t){1, 0}, tp_id8(1));
  SAVE();
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, now), SWIM_EMALFORMED);
  GREW(SWIM_DROP_MALFORMED);

  /* another protocol version */
  uint8_t v2[64];
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, v2, sizeof v2);
  swim_wbuf_packer(&w, &pk);
  msgpack_pack_array(&pk, 6);
  msgpack_pack_uint8(&pk, 1); /* the old wire */
  msgpack_pack_uint8(&pk, SWIM_MSG_PING);
  msgpack_pack_uint64(&pk, tp_id8(1));
  msgpack_pack_uint32(&pk, 1);
  msgpack_pack_uint64(&pk, tp_id8(0));
  msgpack_pack_uint8(&pk, 0);
  uint64_t out0 = st->pkts_out;
  SAVE();
  assert_int_equal(swim_recv(a, &from, v2, w.len, now), SWIM_EVERSION);
  GREW(SWIM_DROP_VERSION);
  assert_int_equal(st->pkts_out, out0); /* no ack for it */

  /* a datagram over the MTU: the newcomer plus digests up to 1500 bytes */
  m.w.len = good_len;
  while (m.w.len <= SWIM_MTU + 100)
    swim_enc_digest(&m.pk, tp_id8(1), SWIM_ALIVE, (swim_inc_t){1, 0});
  assert_false(m.w.overflow);
  SAVE();
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, now), SWIM_ETOOBIG);
  GREW(SWIM_DROP_OVERSIZE);
#undef SAVE
#undef GREW

  /* none of it changed anything */
  take_snap(net, 0, &s1);
  assert_snap_equal(&s0, &s1);
  assert_int_equal(swim_member_find(a, idx, NULL), SWIM_ENOTFOUND);

  /* the same message without the bad part does introduce the newcomer:
   * the refusals above were about the bad part only */
  assert_int_equal(swim_recv(a, &from, m.buf, good_len, now), 0);
  assert_int_equal(swim_member_find(a, idx, NULL), 0);
  assert_int_equal(swim_member_count(a), s0.count + 1);
}

/* ---- record signatures ---- */

static void test_signatures(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 1, 0);
  /* a signed cluster works: everyone verified everyone's records */
  for (int i = 0; i < 3; i++)
    assert_int_equal(net->n[i].recv_errors, 0);
  tp_run(net, 5000);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(net->n[i].recv_errors, 0);
    assert_int_equal(drops_total(swim_stats(net->n[i].core)), 0);
  }
  swim_core_t *a = net->n[0].core;
  const swim_stats_t *st = swim_stats(a);
  swim_addr_t from = tp_addr(2);
  uint8_t idx[SWIM_ID_LEN];
  tp_id(idx, 9);
  snap_t s0, s1;
  take_snap(net, 0, &s0);

  static const int modes[] = {SIG_NONE, SIG_WRONG_KEY, SIG_FLIPPED,
                              SIG_STALE_META};
  for (size_t k = 0; k < 4; k++) {
    msg_t m;
    msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
    add_alive(&m, 9, (swim_inc_t){1, 0}, "svc=db", modes[k]);
    assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now),
                     SWIM_EBADSIG);
    assert_int_equal(st->dropped[SWIM_DROP_BADSIG], k + 1);
    assert_int_equal(swim_member_find(a, idx, NULL), SWIM_ENOTFOUND);
  }
  /* a forged newer record of a known member, and forged leaves */
  {
    msg_t m;
    msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
    add_alive(&m, 1, (swim_inc_t){1, 50}, "evil", SIG_WRONG_KEY);
    assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now),
                     SWIM_EBADSIG);
    for (int mode = 0; mode < 2; mode++) {
      msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
      add_left(&m, 1, (swim_inc_t){1, 50}, mode == 0 ? SIG_NONE : SIG_FLIPPED);
      assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now),
                       SWIM_EBADSIG);
    }
    assert_int_equal(st->dropped[SWIM_DROP_BADSIG], 7);
  }
  take_snap(net, 0, &s1);
  assert_snap_equal(&s0, &s1);
  assert_int_equal(tp_status(net, 0, 1), SWIM_ALIVE);

  /* the genuine article goes through, and a genuine leave too */
  msg_t m;
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  add_alive(&m, 9, (swim_inc_t){1, 0}, "svc=db", SIG_GOOD);
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now), 0);
  swim_member_t x;
  assert_int_equal(swim_member_find(a, idx, &x), 0);
  assert_int_equal(x.status, SWIM_ALIVE);
  assert_int_equal(x.meta_len, 6);
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  add_left(&m, 9, (swim_inc_t){1, 1}, SIG_GOOD);
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now), 0);
  assert_int_equal(tp_status(net, 0, 9), SWIM_LEFT);
  assert_int_equal(st->dropped[SWIM_DROP_BADSIG], 7);
}

/* A leave must be signed by the member leaving, even when the message that
 * carries it is also the one that introduces that member. */
static void test_sig_left_with_new_alive(void **state) {
  (void)state;
  tp_net_t *net = cluster(2, 1, 0);
  swim_core_t *a = net->n[0].core;
  swim_addr_t from = tp_addr(1);
  snap_t s0, s1;
  take_snap(net, 0, &s0);
  for (int mode = 0; mode < 2; mode++) {
    msg_t m;
    msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(1));
    /* member 9's genuine record, relayed verbatim as any member may ... */
    add_alive(&m, 9, (swim_inc_t){1, 0}, "svc=db", SIG_GOOD);
    /* ... followed by a leave 9 never signed */
    add_left(&m, 9, (swim_inc_t){1, 1}, mode == 0 ? SIG_NONE : SIG_FLIPPED);
    int rc = swim_recv(a, &from, m.buf, m.w.len, net->now);
    if (rc != SWIM_EBADSIG)
      print_error("forged leave (%s) after a new member's record: rc %d, "
                  "member 9 is now %s\n",
                  mode == 0 ? "unsigned" : "bad signature", rc,
                  tp_status(net, 0, 9) < 0
                      ? "unknown"
                      : swim_status_name((swim_status_t)tp_status(net, 0, 9)));
    assert_int_equal(rc, SWIM_EBADSIG);
    take_snap(net, 0, &s1);
    assert_snap_equal(&s0, &s1);
  }
}

/* ---- refutations gossiped as RENEWs ---- */

/* Appends a RENEW of test node `who` at `inc`, cut from its alive record
 * with metadata `meta`, signed as asked (SIG_GOOD or SIG_FLIPPED). */
static void add_renew(msg_t *m, int who, swim_inc_t inc, const char *meta,
                      int sig_mode) {
  msg_t full;
  msg_begin(&full, SWIM_MSG_GOSSIP, 0);
  size_t off = full.w.len;
  add_alive(&full, who, inc, meta, SIG_GOOD);
  msgpack_zone z;
  assert_true(msgpack_zone_init(&z, 1024));
  swim_upd_t u;
  assert_int_equal(swim_dec_upd(full.buf, full.w.len, &off, &z, &u), 1);
  uint8_t sig[SWIM_SIG_LEN];
  memcpy(sig, u.sig, sizeof sig);
  if (sig_mode == SIG_FLIPPED)
    sig[5] ^= 0x10;
  swim_enc_renew(&m->pk, tp_id8(who), inc,
                 swim_body_hash(u.id, u.name, u.name_len, &u.addr, u.meta,
                                u.meta_len),
                 sig);
  msgpack_zone_destroy(&z);
}

static void accuse_self(tp_net_t *net, int who, int accuser) {
  swim_core_t *c = net->n[who].core;
  msg_t m;
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(accuser));
  swim_enc_accuse(&m.pk, SWIM_UPD_SUSPECT, tp_id8(who), swim_self_inc(c),
                  tp_id8(accuser));
  swim_addr_t from = tp_addr(accuser);
  assert_int_equal(swim_recv(c, &from, m.buf, m.w.len, net->now), 0);
}

static void assert_holds(tp_net_t *net, int observer, int subject,
                         swim_inc_t inc, const char *meta) {
  uint8_t id[SWIM_ID_LEN];
  tp_id(id, subject);
  swim_member_t x;
  assert_int_equal(swim_member_find(net->n[observer].core, id, &x), 0);
  assert_int_equal(x.status, SWIM_ALIVE);
  assert_int_equal(x.inc.gen, inc.gen);
  assert_int_equal(x.inc.ver, inc.ver);
  assert_int_equal(x.meta_len, strlen(meta));
  assert_memory_equal(x.meta, meta, x.meta_len);
}

/* A refutation changes nothing but the incarnation, so gossip carries it
 * as a RENEW; receivers rebuild the signed record from the one they hold.
 * One that holds another body (it missed a change) asks for the whole
 * record; forged RENEWs are refused like forged records. */
static void test_renew(void **state) {
  (void)state;
  tp_net_t *net = cluster(3, 1, 0);
  /* just after a join, refutations go whole: the newcomer's record is
   * what introduces it to peers that have not heard of it yet */
  net->count_kinds = 1;
  accuse_self(net, 2, 1);
  tp_run(net, 3000);
  assert_int_equal(net->kinds[SWIM_UPD_RENEW], 0);
  assert_true(net->kinds[SWIM_UPD_ALIVE] > 0);
  tp_run(net, 3000);
  memset(net->kinds, 0, sizeof net->kinds);

  /* 1: a plain refutation travels as RENEWs only */
  accuse_self(net, 1, 2);
  swim_inc_t v1 = swim_self_inc(net->n[1].core);
  tp_run(net, 5000);
  assert_true(net->kinds[SWIM_UPD_RENEW] > 0);
  assert_int_equal(net->kinds[SWIM_UPD_ALIVE], 0);
  for (int i = 0; i < 3; i += 2) {
    assert_holds(net, i, 1, v1, "");
    const swim_stats_t *st = swim_stats(net->n[i].core);
    assert_int_equal(drops_total(st), st->dropped[SWIM_DROP_REC_STALE]);
    assert_int_equal(net->n[i].recv_errors, 0);
  }

  /* 2: a change and a refutation in the same instant: nobody holds the
   * body the RENEW was cut from, asks, and gets the full record */
  memset(net->kinds, 0, sizeof net->kinds);
  assert_int_equal(swim_set_meta(net->n[1].core, (const uint8_t *)"svc=db", 6,
                                 net->now), 0);
  accuse_self(net, 1, 2);
  swim_inc_t v2 = swim_self_inc(net->n[1].core);
  assert_true(v2.ver >= v1.ver + 2);
  tp_run(net, 5000);
  for (int i = 0; i < 3; i += 2) {
    assert_holds(net, i, 1, v2, "svc=db");
    assert_true(swim_stats(net->n[i].core)->dropped[SWIM_DROP_REC_UNMATCHED] >
                0);
    assert_int_equal(swim_stats(net->n[i].core)->dropped[SWIM_DROP_BADSIG], 0);
  }
  assert_true(net->kinds[SWIM_UPD_RENEW] > 0);
  assert_true(net->kinds[SWIM_UPD_DIGEST] > 0); /* the asks */
  assert_true(net->kinds[SWIM_UPD_ALIVE] > 0);  /* the answers */

  /* 3: hand-made RENEWs at node 0 */
  swim_core_t *a = net->n[0].core;
  const swim_stats_t *st = swim_stats(a);
  swim_addr_t from = tp_addr(2);
  swim_inc_t v3 = {v2.gen, v2.ver + 1};
  snap_t s0, s1;
  take_snap(net, 0, &s0);
  uint64_t bad0 = st->dropped[SWIM_DROP_BADSIG];
  uint64_t um0 = st->dropped[SWIM_DROP_REC_UNMATCHED];
  msg_t m;
  /* forged: the signature is not node 1's */
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  add_renew(&m, 1, v3, "svc=db", SIG_FLIPPED);
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now),
                   SWIM_EBADSIG);
  assert_int_equal(st->dropped[SWIM_DROP_BADSIG], bad0 + 1);
  /* cut from a body node 0 does not hold */
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  add_renew(&m, 1, v3, "svc=web", SIG_GOOD);
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now), 0);
  assert_int_equal(st->dropped[SWIM_DROP_REC_UNMATCHED], um0 + 1);
  /* about a member node 0 never met */
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  add_renew(&m, 9, (swim_inc_t){1, 4}, "", SIG_GOOD);
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now), 0);
  assert_int_equal(st->dropped[SWIM_DROP_REC_UNMATCHED], um0 + 2);
  take_snap(net, 0, &s1);
  assert_snap_equal(&s0, &s1);
  /* and the genuine one is taken */
  msg_begin(&m, SWIM_MSG_GOSSIP, tp_id8(2));
  add_renew(&m, 1, v3, "svc=db", SIG_GOOD);
  assert_int_equal(swim_recv(a, &from, m.buf, m.w.len, net->now), 0);
  assert_holds(net, 0, 1, v3, "svc=db");
  assert_int_equal(st->dropped[SWIM_DROP_BADSIG], bad0 + 1);
  /* node 1 itself never signed v3: it takes it as an old life's record and
   * refutes past it once the record reaches it */
  tp_run(net, 5000);
  swim_inc_t v4 = swim_self_inc(net->n[1].core);
  assert_true(v4.ver > v3.ver);
}

/* ---- re-entry from event callbacks ---- */

typedef struct reenter {
  int calls;
  int rc_recv, rc_leave, rc_join, rc_meta, rc_addr;
  int tick_changed;
  int find_ok;
} reenter_t;

static reenter_t g_re; /* the hook has no user pointer of its own */

static void reenter_hook(tp_node_t *nd, const swim_event_t *ev) {
  swim_core_t *c = nd->core;
  g_re.calls++;
  /* reading is allowed */
  g_re.find_ok += swim_member_find(c, ev->member.id, NULL) == 0;
  /* mutating is not */
  uint8_t ping[64];
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, ping, sizeof ping);
  swim_wbuf_packer(&w, &pk);
  swim_hdr_t h;
  memset(&h, 0, sizeof h);
  h.type = SWIM_MSG_PING;
  h.from8 = tp_id8(5);
  h.seq = 1;
  swim_enc_hdr(&pk, &h);
  swim_addr_t from = tp_addr(5);
  const swim_stats_t *st = swim_stats(c);
  uint64_t in0 = st->pkts_in, out0 = st->pkts_out, probes0 = st->probes;
  uint64_t dl0 = swim_next_deadline(c);
  g_re.rc_recv = swim_recv(c, &from, ping, w.len, nd->net->now);
  /* far in the future: every timer would fire if the tick ran */
  swim_tick(c, nd->net->now + 3600000);
  g_re.tick_changed |= st->pkts_in != in0 || st->pkts_out != out0 ||
                       st->probes != probes0 || swim_next_deadline(c) != dl0;
  g_re.rc_leave = swim_leave(c, nd->net->now);
  swim_addr_t seed = tp_addr(0);
  g_re.rc_join = swim_join(c, &seed, 1, nd->net->now);
  g_re.rc_meta = swim_set_meta(c, (const uint8_t *)"m", 1, nd->net->now);
  swim_addr_t na = tp_addr(6);
  g_re.rc_addr = swim_set_addr(c, &na, nd->net->now);
}

static void test_no_reentry(void **state) {
  (void)state;
  memset(&g_re, 0, sizeof g_re);
  tp_net_t *net = net_new(0);
  assert_int_equal(tp_start(net, 0, 0), 0);
  assert_int_equal(tp_start(net, 1, 0), 0);
  net->on_event = reenter_hook;
  assert_int_equal(tp_join(net, 1, 0), 0); /* a join event on each side */
  net->on_event = NULL;
  assert_int_equal(g_re.calls, 2);
  assert_int_equal(g_re.find_ok, 2);
  assert_int_equal(g_re.rc_recv, SWIM_EBUSY);
  assert_int_equal(g_re.rc_leave, SWIM_EBUSY);
  assert_int_equal(g_re.rc_join, SWIM_EBUSY);
  assert_int_equal(g_re.rc_meta, SWIM_EBUSY);
  assert_int_equal(g_re.rc_addr, SWIM_EBUSY);
  assert_false(g_re.tick_changed);
  /* none of the refused calls left a trace */
  for (int i = 0; i < 2; i++) {
    swim_member_t me;
    assert_int_equal(swim_member_at(net->n[i].core, 0, &me), 0);
    assert_int_equal(me.status, SWIM_ALIVE);
    assert_int_equal(me.inc.ver, 0);
    assert_int_equal(me.meta_len, 0);
    assert_int_equal(me.addr.port, tp_addr(i).port);
    assert_false(swim_leave_done(net->n[i].core));
  }
  assert_true(tp_wait_converged(net, 5000));
  /* and outside a callback the same calls work */
  assert_int_equal(
      swim_set_meta(net->n[0].core, (const uint8_t *)"m", 1, net->now), 0);
}

/* ---- datagram size under load ---- */

static void test_datagram_size(void **state) {
  (void)state;
  enum { N = 60 };
  tp_net_t *net = net_new(1);
  char meta[SWIM_META_MAX + 1];
  for (int i = 0; i < N; i++) {
    swim_config_t cfg;
    tp_config(net, i, &cfg);
    /* large, distinct metadata: few records fit in one datagram */
    memset(meta, 'a' + i % 26, 400);
    snprintf(meta, sizeof meta, "node=%d;", i);
    meta[strlen(meta)] = '-';
    cfg.meta = (const uint8_t *)meta;
    cfg.meta_len = 400;
    assert_int_equal(tp_start_cfg(net, i, &cfg, 0), 0);
  }
  for (int i = 1; i < N; i++) {
    assert_int_equal(tp_join(net, i, 0), 0);
    tp_run(net, 20);
  }
  assert_true(tp_wait_converged(net, 60000));
  /* now everyone changes at once: a burst of 60 large updates queued */
  for (int i = 0; i < N; i++) {
    memset(meta, 'A' + i % 26, SWIM_META_MAX);
    assert_int_equal(swim_set_meta(net->n[i].core, (const uint8_t *)meta,
                                   SWIM_META_MAX, net->now),
                     0);
  }
  tp_run(net, 10000);
  /* and a failure for good measure: suspicions, ping-reqs, nacks */
  tp_isolate(net, N - 1, 1);
  tp_run(net, 20000);
  print_message("%zu datagrams, largest %zu bytes; %zu stream frames, "
                "largest %zu bytes\n",
                net->dgrams, net->max_dgram, net->streams, net->max_stream);
  assert_true(net->dgrams > 10000);
  assert_int_equal(net->oversize_dgrams, 0);
  assert_true(net->max_dgram <= SWIM_MAX_PAYLOAD);
  /* full: several large records share a datagram */
  assert_true(net->max_dgram > SWIM_MAX_PAYLOAD - 600);
  /* push-pull frames carry the whole view and may be far larger */
  assert_true(net->max_stream > SWIM_MAX_PAYLOAD);
  for (int i = 0; i < N; i++)
    assert_int_equal(net->n[i].recv_errors, 0);
  /* every update reached everyone */
  for (int i = 0; i < N - 1; i++)
    for (int j = 0; j < N - 1; j++) {
      swim_member_t m;
      assert_int_equal(tp_member(net, i, j, &m), 0);
      assert_int_equal(m.status, SWIM_ALIVE);
      assert_int_equal(m.meta_len, SWIM_META_MAX);
    }
  assert_true(tp_status(net, 0, N - 1) == SWIM_DEAD ||
              tp_status(net, 0, N - 1) == SWIM_SUSPECT);
}

/* ---- memory ---- */

/* A mass join queues every member in every core; once the gossip is out,
 * the queues give their room back (at most 16 entries a level stay). */
static size_t queue_room_max(tp_net_t *net, int n) {
  size_t most = 0;
  for (int i = 0; i < n; i++)
    if (swim_queue_bytes(net->n[i].core) > most)
      most = swim_queue_bytes(net->n[i].core);
  return most;
}

static void test_queue_room_returns(void **state) {
  (void)state;
  const int n = 48;
  tp_net_t *net = net_new(0);
  for (int i = 0; i < n; i++)
    assert_int_equal(tp_start(net, i, 0), 0);
  for (int i = 1; i < n; i++)
    assert_int_equal(tp_join(net, i, 0), 0);
  size_t peak = 0;
  for (int t = 0; t < 20000; t += TP_STEP_MS) {
    tp_run(net, TP_STEP_MS);
    size_t m = queue_room_max(net, n);
    peak = m > peak ? m : peak;
  }
  assert_true(tp_wait_converged(net, 20000));
  tp_run(net, 60000);
  size_t after = queue_room_max(net, n);
  assert_true(peak >= (size_t)n * 32); /* the join queued every member */
  assert_true(after <= 32 * 16 * 32);  /* levels x kept entries x entry */
  assert_true(after < peak);
}

static void test_memory(void **state) {
  (void)state;
  assert_true(swim_member_footprint() <= 64);

  tp_net_t *net = net_new(1);
  assert_int_equal(tp_start(net, 0, 0), 0);
  assert_int_equal(tp_start(net, 1, 0), 0);
  /* each core's own record */
  assert_int_equal(swim_rec_cache_size(net->cache), 2);
  assert_int_equal(tp_join(net, 1, 0), 0);
  assert_true(tp_wait_converged(net, 5000));
  /* both cores hold both records: still two copies, not four */
  assert_int_equal(swim_member_count(net->n[0].core), 2);
  assert_int_equal(swim_member_count(net->n[1].core), 2);
  assert_int_equal(swim_rec_cache_size(net->cache), 2);
  /* a new record replaces the old one everywhere; the old one goes */
  assert_int_equal(
      swim_set_meta(net->n[0].core, (const uint8_t *)"v2", 2, net->now), 0);
  tp_run(net, 3000);
  swim_member_t m;
  assert_int_equal(tp_member(net, 1, 0, &m), 0);
  assert_int_equal(m.meta_len, 2);
  assert_int_equal(swim_rec_cache_size(net->cache), 2);
  /* a third member: three records */
  assert_int_equal(tp_start(net, 2, 0), 0);
  assert_int_equal(tp_join(net, 2, 1), 0);
  assert_true(tp_wait_converged(net, 10000));
  assert_int_equal(swim_rec_cache_size(net->cache), 3);
  /* a core that goes away releases its references, not the shared ones:
   * A's view still holds all three records */
  tp_stop(net, 2);
  assert_int_equal(swim_rec_cache_size(net->cache), 3);
  tp_stop(net, 1);
  assert_int_equal(swim_rec_cache_size(net->cache), 3);
  /* and with the last core gone, nothing is left behind */
  tp_stop(net, 0);
  assert_int_equal(swim_rec_cache_size(net->cache), 0);

  /* without a cache every core owns its copies */
  net = net_new(0);
  assert_null(net->cache);
  assert_int_equal(swim_rec_cache_size(NULL), 0);
  assert_int_equal(tp_start(net, 0, 0), 0);
  assert_int_equal(tp_start(net, 1, 0), 0);
  assert_int_equal(tp_join(net, 1, 0), 0);
  assert_true(tp_wait_converged(net, 5000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_new_rejects, teardown),
      cmocka_unit_test_teardown(test_join, teardown),
      cmocka_unit_test_teardown(test_join_answers_wait_for_stream, teardown),
      cmocka_unit_test_teardown(test_probe_ack, teardown),
      cmocka_unit_test_teardown(test_failure, teardown),
      cmocka_unit_test_teardown(test_refute, teardown),
      cmocka_unit_test_teardown(test_accusation_ahead, teardown),
      cmocka_unit_test_teardown(test_insider_records, teardown),
      cmocka_unit_test_teardown(test_last_direct_ping, teardown),
      cmocka_unit_test_teardown(test_verdict_ping_full_timeout, teardown),
      cmocka_unit_test_teardown(test_verdict_ping_unanswered, teardown),
      cmocka_unit_test_teardown(test_heard_from_dead, teardown),
      cmocka_unit_test_teardown(test_leave, teardown),
      cmocka_unit_test_teardown(test_restart, teardown),
      cmocka_unit_test_teardown(test_set_meta, teardown),
      cmocka_unit_test_teardown(test_malformed_no_change, teardown),
      cmocka_unit_test_teardown(test_signatures, teardown),
      cmocka_unit_test_teardown(test_sig_left_with_new_alive, teardown),
      cmocka_unit_test_teardown(test_renew, teardown),
      cmocka_unit_test_teardown(test_no_reentry, teardown),
      cmocka_unit_test_teardown(test_datagram_size, teardown),
      cmocka_unit_test_teardown(test_memory, teardown),
      cmocka_unit_test_teardown(test_queue_room_returns, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
