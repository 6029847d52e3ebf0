/*
 * stream.c: the TCP side of the transport: short-lived connections that
 * carry one or more signed frames (join, push-pull), both directions.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node_internal.h"

/* The core's stream_busy callback: outgoing frames the kernel has not
 * taken yet have spent STREAM_OUT_BUDGET. */
int lm__core_stream_busy(void *ud) {
  lm_node_t *n = ud;
  return n->stream_out >= STREAM_OUT_BUDGET;
}

/* An outgoing frame is given back as soon as the kernel has taken it (or
 * the connection failed): until then it counts against STREAM_OUT_BUDGET,
 * and the core holds back whole states while that is spent. */
static void release_out(conn_t *c) {
  lm_node_t *n = c->node;
  if (!c->outbound || !c->buf)
    return;
  int was_busy = lm__core_stream_busy(n);
  n->stream_out -= c->len;
  free(c->buf);
  c->buf = NULL;
  c->len = c->cap = 0;
  /* the core's deferred states can go now, not a few turns of the loop
   * later (a seed answering a mass join would pay it per budget's worth) */
  if (was_busy && !lm__core_stream_busy(n) && n->core &&
      n->state != ST_CLOSING && swim_stream_deferred(n->core)) {
    uv_mutex_lock(&n->mu);
    swim_stream_ready(n->core, lm__now_ms(n));
    uv_mutex_unlock(&n->mu);
    lm__dispatch(n);
  }
}

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  lm_node_t *n = c->node;
  release_out(c);
  free(c->buf);
  free(c);
  n->open_handles--;
  if (n->state == ST_CLOSING && n->open_handles == 0)
    lm__do_close(n);
}

void lm__conn_close(conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  lm_node_t *n = c->node;
  if (c->prev)
    c->prev->next = c->next;
  else
    n->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  n->nconns--;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static conn_t *conn_new(lm_node_t *n, int outbound) {
  if (n->nconns >= MAX_CONNS) {
    CNT_ADD(n->conn_refused, 1);
    return NULL;
  }
  conn_t *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (uv_tcp_init(n->loop, &c->tcp)) {
    free(c);
    return NULL;
  }
  c->tcp.data = c;
  c->node = n;
  c->outbound = outbound;
  c->started = c->last_read = lm__now_ms(n);
  c->next = n->conns;
  if (n->conns)
    n->conns->prev = c;
  n->conns = c;
  n->nconns++;
  n->open_handles++;
  return c;
}

static void on_written(uv_write_t *req, int status) {
  conn_t *c = req->data;
  if (status)
    CNT_ADD(c->node->send_errors, 1);
  release_out(c);
  lm__conn_close(c);
}

static void on_connected(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (status) {
    if (status != UV_ECANCELED) {
      CNT_ADD(c->node->send_errors, 1);
      lm__node_log(c->node, LM_LOG_DEBUG, "stream connect failed: %s",
           uv_strerror(status));
    }
    lm__conn_close(c);
    return;
  }
  /* Most frames fit in the socket's buffer at once: then the frame is
   * given back now rather than after another turn of the loop, and closing
   * the socket still delivers what it holds. */
  uv_buf_t b = uv_buf_init((char *)c->buf, (unsigned)c->len);
  int wrote = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (wrote == (int)c->len) {
    release_out(c);
    lm__conn_close(c);
    return;
  }
  if (wrote > 0)
    b = uv_buf_init((char *)c->buf + wrote, (unsigned)(c->len - (size_t)wrote));
  else if (wrote != UV_EAGAIN) {
    CNT_ADD(c->node->send_errors, 1);
    lm__conn_close(c);
    return;
  }
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written))
    lm__conn_close(c);
}

/* Loss as livemesh-bench and mlbench model it for TCP: a lost SYN or
 * SYN-ACK costs the connection a 1 s retransmission. With
 * test_drop_inbound = p, a connection stalls with probability
 * 1 - (1 - p)^2 (mlbench's -tcploss default). */
struct lm__stall {
  struct lm__stall *next;
  swim_addr_t to;
  uint64_t due;
  size_t len;
  uint8_t buf[];
};

static void send_stream_now(lm_node_t *n, const swim_addr_t *to,
                            const uint8_t *buf, size_t len);

void lm__stream_stalled(lm_node_t *n, int drop_all) {
  struct lm__stall **pp = &n->stalled;
  uint64_t now = lm__now_ms(n);
  while (*pp) {
    struct lm__stall *s = *pp;
    if (!drop_all && now < s->due) {
      pp = &s->next;
      continue;
    }
    *pp = s->next;
    if (!drop_all && n->state != ST_CLOSING)
      send_stream_now(n, &s->to, s->buf, s->len);
    free(s);
  }
}

void lm__core_send_stream(void *ud, const swim_addr_t *to,
                          const uint8_t *buf, size_t len) {
  lm_node_t *n = ud;
  double p = n->opt.test_drop_inbound;
  if (p > 0 &&
      (double)(lm__node_rand(n) >> 11) * 0x1.0p-53 < 1 - (1 - p) * (1 - p)) {
    struct lm__stall *s = malloc(sizeof *s + len);
    if (s) {
      s->to = *to;
      s->due = lm__now_ms(n) + 1000;
      s->len = len;
      memcpy(s->buf, buf, len);
      s->next = n->stalled;
      n->stalled = s;
      CNT_ADD(n->tcp_stalls, 1);
      return;
    }
  }
  send_stream_now(n, to, buf, len);
}

static void send_stream_now(lm_node_t *n, const swim_addr_t *to,
                            const uint8_t *buf, size_t len) {
  size_t cap = len + LM_ENV_OVERHEAD_ENC + LM_FRAME_PREFIX_LEN + 2 + LM_CERT_MAX;
  uint8_t *frame = malloc(cap);
  size_t flen;
  if (!frame || lm_env_seal_frame(frame, cap, &flen, buf, len, &n->tx, 1)) {
    free(frame);
    CNT_ADD(n->send_errors, 1);
    return;
  }
  conn_t *c = conn_new(n, 1);
  if (!c) {
    free(frame);
    CNT_ADD(n->send_errors, 1);
    return;
  }
  c->buf = frame;
  c->len = flen;
  n->stream_out += flen;
  struct sockaddr_storage sa;
  lm__swim_to_sa(to, &sa);
  c->creq.data = c;
  if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa,
                     on_connected)) {
    CNT_ADD(n->send_errors, 1);
    lm__conn_close(c);
    return;
  }
  CNT_ADD(n->tcp_frames_out, 1);
  CNT_ADD(n->tcp_bytes_out, flen);
}

/* A receive buffer holds one frame at a time: sized to the frame once its
 * prefix is known, but never grown by more than what has already arrived
 * (at least STREAM_RX_STEP), whatever length the prefix claims; freed when
 * its frame is consumed, so a connection that waits holds no buffer. */
static void on_conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  conn_t *c = h->data;
  size_t want = c->want > c->len ? c->want : c->len + STREAM_RX_MIN;
  size_t step = c->len > STREAM_RX_STEP ? c->len : STREAM_RX_STEP;
  if (want > c->len + step)
    want = c->len + step;
  if (want > c->cap) {
    uint8_t *nb = realloc(c->buf, want);
    if (!nb) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->buf = nb;
    c->cap = want;
  }
  *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn_t *c = s->data;
  lm_node_t *n = c->node;
  if (nread < 0) {
    lm__conn_close(c);
    return;
  }
  c->len += (size_t)nread;
  if (nread > 0)
    c->last_read = lm__now_ms(n);
  for (;;) {
    if (!c->want) {
      int rc = lm_frame_peek(&c->want, c->buf, c->len);
      if (rc == LM_TRUST_EAGAIN)
        return;
      if (rc) {
        struct sockaddr_storage ss;
        int sl = sizeof ss;
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl);
        lm__count_drop(n, rc, (struct sockaddr *)&ss);
        lm__conn_close(c);
        return;
      }
    }
    if (c->len < c->want)
      return;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl);
    lm_env_msg_t m;
    uv_mutex_lock(&n->mu);
    int rc = lm_env_open_frame(&m, c->buf, c->want, &n->rx,
                               (uint64_t)time(NULL));
    uv_mutex_unlock(&n->mu);
    CNT_ADD(n->tcp_frames_in, 1);
    CNT_ADD(n->tcp_bytes_in, c->want);
    if (rc) {
      lm__count_drop(n, rc, (struct sockaddr *)&ss);
      lm__conn_close(c);
      return;
    }
    if (m.has_cert) {
      size_t cl;
      uint8_t raw[LM_CERT_MAX];
      if (lm_cert_encode(raw, sizeof raw, &cl, &m.cert) == 0)
        lm__certs_put(n, m.cert.node_pk, raw, cl);
    }
    n->cur_from_stream = 1;
    lm__deliver(n, (struct sockaddr *)&ss, m.hint, m.payload, m.payload_len);
    n->cur_from_stream = 0;
    if (n->state == ST_CLOSING)
      return;
    memmove(c->buf, c->buf + c->want, c->len - c->want);
    c->len -= c->want;
    c->want = 0;
    if (!c->len) {
      free(c->buf);
      c->buf = NULL;
      c->cap = 0;
    }
  }
}

void lm__on_accept(uv_stream_t *server, int status) {
  lm_node_t *n = server->data;
  if (status || !n->core || n->state == ST_CLOSING)
    return;
  if (n->nconns >= MAX_CONNS) {
    /* Full: the oldest inbound connection makes way. Whoever holds slots
     * open without finishing a frame cannot keep newcomers out. */
    conn_t *oldest = NULL;
    for (conn_t *o = n->conns; o; o = o->next)
      if (!o->outbound && !o->closing &&
          (!oldest || o->started < oldest->started))
        oldest = o;
    if (oldest) {
      CNT_ADD(n->conn_refused, 1);
      lm__conn_close(oldest);
    }
  }
  conn_t *c = conn_new(n, 0);
  if (!c) {
    /* too many: accept and drop so the backlog does not fill */
    uv_tcp_t *t = malloc(sizeof *t);
    if (t && uv_tcp_init(n->loop, t) == 0) {
      if (uv_accept(server, (uv_stream_t *)t) == 0)
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
      else
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
    } else {
      free(t);
    }
    return;
  }
  if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
    lm__conn_close(c);
    return;
  }
  if (uv_read_start((uv_stream_t *)&c->tcp, on_conn_alloc, on_conn_read))
    lm__conn_close(c);
}

