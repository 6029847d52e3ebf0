/*
 * test_node_stream.c: the stream (TCP) transport's memory bounds, on real
 * nodes and real sockets on loopback: a receive buffer is sized by what
 * arrives and given back once its frame is consumed; a node's outgoing
 * whole states wait while its stream budget is spent, and still go out.
 *
 * Reaches into the node's internals (mesh/node/node_internal.h) to look at
 * its connections and its count of queued bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "node_harness.h"
#include "node_internal.h"
#include "swim_msg.h"
#include "trust.h"

/* ---------------------------------------------------- a raw TCP client -- */

typedef struct raw {
  uv_tcp_t tcp;
  uv_connect_t creq;
  int connected, writes_done, closed;
} raw_t;

static void raw_connected(uv_connect_t *req, int status) {
  raw_t *r = req->data;
  assert_int_equal(status, 0);
  r->connected = 1;
}

static void raw_written(uv_write_t *req, int status) {
  raw_t *r = req->data;
  assert_int_equal(status, 0);
  r->writes_done++;
  free(req);
}

static void raw_closed(uv_handle_t *h) { ((raw_t *)h->data)->closed = 1; }

static int raw_is_connected(void *arg) { return ((raw_t *)arg)->connected; }

static void raw_open(cluster_t *c, raw_t *r, const char *hostport) {
  memset(r, 0, sizeof *r);
  struct sockaddr_storage ss;
  assert_int_equal(lm__parse_hostport(hostport, &ss), 0);
  assert_int_equal(uv_tcp_init(&c->loop, &r->tcp), 0);
  r->tcp.data = r;
  r->creq.data = r;
  assert_int_equal(uv_tcp_connect(&r->creq, &r->tcp,
                                  (const struct sockaddr *)&ss, raw_connected),
                   0);
  assert_true(run_until(c, raw_is_connected, r, 5000));
}

/* Writes the bytes (copied into the request) and waits until the kernel
 * has taken them. */
typedef struct wait_writes {
  raw_t *r;
  int n;
} wait_writes_t;

static int writes_done(void *arg) {
  wait_writes_t *w = arg;
  return w->r->writes_done >= w->n;
}

static void raw_write(cluster_t *c, raw_t *r, const uint8_t *p, size_t len) {
  uv_write_t *req = malloc(sizeof *req + len);
  assert_non_null(req);
  uint8_t *copy = (uint8_t *)(req + 1);
  memcpy(copy, p, len);
  req->data = r;
  uv_buf_t b = uv_buf_init((char *)copy, (unsigned)len);
  assert_int_equal(uv_write(req, (uv_stream_t *)&r->tcp, &b, 1, raw_written),
                   0);
  wait_writes_t w = {r, r->writes_done + 1};
  assert_true(run_until(c, writes_done, &w, 5000));
}

static int raw_is_closed(void *arg) { return ((raw_t *)arg)->closed; }

static void raw_close(cluster_t *c, raw_t *r) {
  uv_close((uv_handle_t *)&r->tcp, raw_closed);
  assert_true(run_until(c, raw_is_closed, r, 5000));
}

/* The node's one inbound connection that is not closing, or NULL. */
static conn_t *inbound(lm_node_t *n) {
  conn_t *found = NULL;
  for (conn_t *c = n->conns; c; c = c->next)
    if (!c->outbound && !c->closing) {
      assert_null(found);
      found = c;
    }
  return found;
}

typedef struct wait_conn {
  lm_node_t *n;
  size_t len; /* bytes it has read */
} wait_conn_t;

static int conn_has_read(void *arg) {
  wait_conn_t *w = arg;
  conn_t *c = inbound(w->n);
  return c && c->len >= w->len;
}

static int frames_in_reach(void *arg) {
  wait_conn_t *w = arg;
  return CNT_GET(w->n->tcp_frames_in) >= w->len;
}

/* -------------------------------------------------------------- tests -- */

/* A frame's length prefix claims 32 MiB: the receiver allocates for what
 * has arrived plus a step, not for the claim. A genuine frame, sent in two
 * parts on one connection that stays open: once it is consumed, the
 * connection holds no buffer. */
static void test_receive_buffer_bounded_and_released(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(200, 100);
  tnode_t *a = add(c, "a");
  tnode_t *b = add(c, "b");
  join(b, a);
  assert_true(wait_converged(c, 0, 2, 2, 20000));
  run_for(c, 300); /* the join's own connections close */

  raw_t r;
  raw_open(c, &r, a->addr);
  uint8_t claim[64] = {0x02, 0x00, 0x00, 0x00}; /* 32 MiB, big-endian */
  raw_write(c, &r, claim, sizeof claim);
  wait_conn_t w = {a->node, sizeof claim};
  assert_true(run_until(c, conn_has_read, &w, 5000));
  conn_t *in = inbound(a->node);
  assert_non_null(in);
  assert_int_equal(in->want, (size_t)32 << 20 | 4);
  assert_true(in->cap <= in->len + STREAM_RX_STEP);
  raw_close(c, &r);
  run_for(c, 100);
  assert_null(inbound(a->node));

  /* b's genuine frame (a gossip message, sealed with b's key and
   * certificate), written in two parts */
  msg_t m;
  msg_begin(&m, SWIM_MSG_GOSSIP, 0);
  assert_false(m.w.overflow);
  uint8_t frame[8192];
  size_t flen;
  assert_int_equal(lm_env_seal_frame(frame, sizeof frame, &flen, m.w.p,
                                     m.w.len, &b->node->tx, 1),
                   0);
  assert_true(flen > 100);
  uint64_t before = CNT_GET(a->node->tcp_frames_in);
  raw_open(c, &r, a->addr);
  raw_write(c, &r, frame, flen / 2);
  w.len = flen / 2;
  assert_true(run_until(c, conn_has_read, &w, 5000));
  in = inbound(a->node);
  assert_int_equal(in->want, flen);
  /* sized to the frame, no more (but a first read may take a few KiB) */
  assert_true(in->cap <= (flen > STREAM_RX_MIN ? flen : STREAM_RX_MIN));
  raw_write(c, &r, frame + flen / 2, flen - flen / 2);
  w.len = before + 1;
  assert_true(run_until(c, frames_in_reach, &w, 5000));
  in = inbound(a->node);
  assert_non_null(in); /* still open: the peer may send another frame */
  assert_null(in->buf);
  assert_int_equal(in->cap, 0);
  assert_int_equal(in->len, 0);
  raw_close(c, &r);
  cluster_free(c);
}

/* While a seed's stream budget is spent, its answers to joins wait (one
 * per joiner, however often it asks), and they go out, one at a time, once the
 * budget is free again; the queued bytes never pass the budget by more
 * than one frame, and every byte counted is given back. */
#define JOINERS 12

typedef struct watch_out {
  lm_node_t *n;
  size_t max;
} watch_out_t;

static void on_check(uv_check_t *h) {
  watch_out_t *w = h->data;
  if (w->n->stream_out > w->max)
    w->max = w->n->stream_out;
}

static int seed_caught_up(void *arg) {
  return swim_stream_deferred(((lm_node_t *)arg)->core) == 0;
}

static void test_deferred_answers_go_out(void **state) {
  (void)state;
  watchdog(120);
  cluster_t *c = cluster_new(200, 100);
  tnode_t *a = add(c, "seed");
  const size_t fake = STREAM_OUT_BUDGET; /* as if frames were queued */
  a->node->stream_out += fake;
  for (int i = 1; i <= JOINERS; i++) {
    char name[16];
    snprintf(name, sizeof name, "n%d", i);
    join(add(c, name), a);
  }
  run_for(c, 1500);
  assert_int_equal(swim_stream_deferred(a->node->core), JOINERS);
  lm_stats_t st;
  assert_int_equal(lm_node_stats(a->node, &st), 0);
  assert_int_equal(st.stream_deferred, JOINERS);
  assert_int_equal(st.stream_deferred_dropped, 0);
  assert_int_equal(a->node->stream_out, fake);

  /* one byte short of the budget: one whole state at a time */
  watch_out_t wo = {a->node, 0};
  uv_check_t chk;
  uv_check_init(&c->loop, &chk);
  chk.data = &wo;
  uv_check_start(&chk, on_check);
  a->node->stream_out -= 1;
  lm__rearm(a->node);
  assert_true(run_until(c, seed_caught_up, a->node, 20000));
  assert_true(wait_converged(c, 0, JOINERS + 1, JOINERS + 1, 20000));
  uv_close((uv_handle_t *)&chk, NULL);
  run_for(c, 300);
  assert_true(wo.max < STREAM_OUT_BUDGET + 64 * 1024);
  /* every frame counted was given back */
  assert_int_equal(a->node->stream_out, fake - 1);
  a->node->stream_out -= fake - 1;
  for (int i = 0; i <= JOINERS; i++)
    assert_int_equal(c->t[i].node->stream_out, 0);
  cluster_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_receive_buffer_bounded_and_released),
      cmocka_unit_test(test_deferred_answers_go_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
