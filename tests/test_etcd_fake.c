/*
 * test_etcd_fake.c: bridge/etcd against a scripted fake gRPC server in the
 * test (a uv listener on 127.0.0.1 with an nghttp2 server session) that
 * answers with bad things: bytes that are not HTTP/2, truncated and
 * oversized gRPC messages, a compressed flag, trailers-only errors (etcd's
 * texts mapped to LM_ETCD_E*), an unparseable protobuf, unknown protobuf
 * fields (accepted), RST_STREAM, GOAWAY, silence (timeout, and the stream
 * is reset) and unanswered pings. Each must give the right error, no crash
 * and no leak (this test runs under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "etcd.h"
#include "etcd.pb-c.h"
#include "etcd_harness.h"
#include "etcd_test_util.h"

typedef enum {
  M_OK,
  M_GARBAGE,
  M_TRUNCATED,
  M_BIGLEN,
  M_COMPRESSED,
  M_TRAILERS_ONLY,
  M_BADPROTO,
  M_UNKNOWN_FIELDS,
  M_RST,
  M_GOAWAY,
  M_NEVER,
  M_OVERSIZE,
  M_HTTP_503,
  M_SPLIT,        /* the answer one byte per DATA frame */
  M_TOKEN_ONCE,   /* the first call after Authenticate: invalid token */
  M_TOKEN_ALWAYS, /* every call: invalid token */
  M_SILENT,       /* accepts, reads nothing, answers nothing */
  M_GOAWAY_AFTER  /* answers, and GOAWAY naming that stream as the last */
} mode_t_;

typedef struct fake fake_t;

typedef struct sconn {
  uv_tcp_t tcp;
  fake_t *f;
  nghttp2_session *s;
  char rd[65536];
  int closing;
} sconn_t;

typedef struct sreq {
  struct sbody *body;
  int is_auth, is_stream, answered;
  int hasleader, te, ct;
  char token[64];
} sreq_t;

typedef struct sbody {
  uint8_t *b;
  size_t len, off;
  size_t chunk;
  sconn_t *sc;
  int status;
} sbody_t;

struct fake {
  uv_loop_t *loop;
  uv_tcp_t listen;
  int port;
  mode_t_ mode, mode2; /* mode2: for the second and later connections */
  int grpc_status;
  const char *grpc_message;
  int no_ping_ack;
  int nconns, nopen, requests, cancels;
  int auths, invalid_sent, bad_headers;
  char last_token[64];
  sconn_t *conns[16];
};

static uv_loop_t L;
static fake_t F;

/* ---- the fake server ---- */

static void sc_write_cb(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void sc_send_raw(sconn_t *sc, const void *p, size_t n) {
  if (sc->closing || n == 0)
    return;
  uv_write_t *w = malloc(sizeof *w + n);
  memcpy(w + 1, p, n);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
  if (uv_write(w, (uv_stream_t *)&sc->tcp, &b, 1, sc_write_cb))
    free(w);
}

static void sc_flush(sconn_t *sc) {
  if (!sc->s)
    return;
  for (;;) {
    const uint8_t *d;
    ssize_t n = nghttp2_session_mem_send(sc->s, &d);
    if (n <= 0)
      break;
    sc_send_raw(sc, d, (size_t)n);
  }
}

static void sc_closed(uv_handle_t *h) {
  sconn_t *sc = h->data;
  if (sc->s)
    nghttp2_session_del(sc->s);
  sc->f->nopen--;
  for (int i = 0; i < 16; i++)
    if (sc->f->conns[i] == sc)
      sc->f->conns[i] = NULL;
  free(sc);
}

static void sc_close(sconn_t *sc) {
  if (sc->closing)
    return;
  sc->closing = 1;
  uv_close((uv_handle_t *)&sc->tcp, sc_closed);
}

static sreq_t *sreq_of(nghttp2_session *s, int32_t id) {
  return nghttp2_session_get_stream_user_data(s, id);
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  (void)ud;
  sbody_t *b = src->ptr;
  size_t n = b->len - b->off;
  if (n > length)
    n = length;
  if (b->chunk && n > b->chunk)
    n = b->chunk;
  memcpy(buf, b->b + b->off, n);
  b->off += n;
  if (b->off == b->len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    char st[16];
    snprintf(st, sizeof st, "%d", b->status);
    nghttp2_nv tr[1] = {{(uint8_t *)"grpc-status", (uint8_t *)st, 11,
                         strlen(st), NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_trailer(s, id, tr, 1);
  }
  return (ssize_t)n;
}

static uint8_t *framed_range(size_t *len, size_t value_len, int flag,
                             int extra_field, size_t lie) {
  Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
  h.revision = 7;
  h.member_id = 11;
  h.raft_term = 2;
  Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
  kv.key.data = (uint8_t *)"k";
  kv.key.len = 1;
  uint8_t *val = calloc(1, value_len + 1);
  memset(val, 'v', value_len);
  kv.value.data = val;
  kv.value.len = value_len;
  kv.mod_revision = 7;
  Mvccpb__KeyValue *kvs[1] = {&kv};
  Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
  r.header = &h;
  r.kvs = kvs;
  r.n_kvs = 1;
  r.count = 1;
  size_t n = protobuf_c_message_get_packed_size(&r.base);
  size_t extra = extra_field ? 3 : 0;
  uint8_t *b = malloc(5 + n + extra);
  protobuf_c_message_pack(&r.base, b + 5);
  if (extra_field) {
    /* field 99, varint 1: unknown to us, fine by protobuf */
    b[5 + n] = 0x98;
    b[5 + n + 1] = 0x06;
    b[5 + n + 2] = 0x01;
  }
  size_t ml = n + extra + lie;
  b[0] = (uint8_t)flag;
  b[1] = (uint8_t)(ml >> 24);
  b[2] = (uint8_t)(ml >> 16);
  b[3] = (uint8_t)(ml >> 8);
  b[4] = (uint8_t)ml;
  free(val);
  *len = 5 + n + extra;
  return b;
}

static void respond(sconn_t *sc, int32_t id, mode_t_ mode) {
  fake_t *f = sc->f;
  nghttp2_session *s = sc->s;
#define NV(n, v)                                                               \
  {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                   \
   NGHTTP2_NV_FLAG_NONE}
  nghttp2_nv ok[2] = {NV(":status", "200"),
                      NV("content-type", "application/grpc")};
  sbody_t *b = NULL;
  size_t len = 0;
  uint8_t *data = NULL;
  sreq_t *q = sreq_of(s, id);
  if (q && (!q->hasleader || !q->te || !q->ct))
    f->bad_headers++;
  if (q && q->is_auth) {
    f->auths++;
    Etcdserverpb__AuthenticateResponse ar =
        ETCDSERVERPB__AUTHENTICATE_RESPONSE__INIT;
    char tok[32];
    snprintf(tok, sizeof tok, "tok%d", f->auths);
    ar.token = tok;
    size_t n = protobuf_c_message_get_packed_size(&ar.base);
    data = malloc(5 + n);
    data[0] = 0;
    data[1] = data[2] = data[3] = 0;
    data[4] = (uint8_t)n;
    protobuf_c_message_pack(&ar.base, data + 5);
    len = 5 + n;
    mode = M_OK; /* answered below with data */
  } else if (q && (mode == M_TOKEN_ALWAYS ||
                   (mode == M_TOKEN_ONCE && !f->invalid_sent))) {
    f->invalid_sent++;
    snprintf(f->last_token, sizeof f->last_token, "%s", q->token);
    mode = M_TRAILERS_ONLY;
    f->grpc_status = 3;
    f->grpc_message = "etcdserver: invalid auth token";
  } else if (q && (mode == M_TOKEN_ONCE)) {
    snprintf(f->last_token, sizeof f->last_token, "%s", q->token);
    mode = M_OK;
  }
  if (!data)
  switch (mode) {
  case M_OK:
  case M_SPLIT:
    data = framed_range(&len, 1, 0, 0, 0);
    break;
  case M_GOAWAY_AFTER:
    data = framed_range(&len, 1, 0, 0, 0);
    nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, NULL, 0);
    break;
  case M_UNKNOWN_FIELDS:
    data = framed_range(&len, 1, 0, 1, 0);
    break;
  case M_TRUNCATED:
    data = framed_range(&len, 1, 0, 0, 10);
    break;
  case M_BIGLEN:
    data = framed_range(&len, 1, 0, 0, 100u << 20);
    break;
  case M_COMPRESSED:
    data = framed_range(&len, 1, 1, 0, 0);
    break;
  case M_OVERSIZE:
    data = framed_range(&len, 4000, 0, 0, 0);
    break;
  case M_BADPROTO:
    data = malloc(9);
    memcpy(data, "\0\0\0\0\4\xff\xff\xff\xff", 9);
    len = 9;
    break;
  case M_TRAILERS_ONLY: {
    char st[16];
    snprintf(st, sizeof st, "%d", f->grpc_status);
    nghttp2_nv h[4] = {NV(":status", "200"),
                       NV("content-type", "application/grpc"),
                       NV("grpc-status", st),
                       NV("grpc-message", f->grpc_message)};
    nghttp2_submit_response(s, id, h, 4, NULL);
    return;
  }
  case M_HTTP_503: {
    nghttp2_nv h[1] = {NV(":status", "503")};
    nghttp2_submit_response(s, id, h, 1, NULL);
    return;
  }
  case M_RST:
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id,
                              NGHTTP2_INTERNAL_ERROR);
    return;
  case M_GOAWAY:
    nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    return;
  case M_NEVER:
  case M_GARBAGE:
  case M_SILENT:
  case M_TOKEN_ONCE:
  case M_TOKEN_ALWAYS:
    return;
  }
#undef NV
  b = calloc(1, sizeof *b);
  b->b = data;
  b->len = len;
  b->sc = sc;
  b->chunk = mode == M_SPLIT ? 1 : 0;
  if (q)
    q->body = b;
  nghttp2_data_provider dp;
  dp.source.ptr = b;
  dp.read_callback = body_read;
  nghttp2_submit_response(s, id, ok, 2, &dp);
}

static int s_on_begin(nghttp2_session *s, const nghttp2_frame *fr, void *ud) {
  (void)ud;
  if (fr->hd.type == NGHTTP2_HEADERS &&
      fr->headers.cat == NGHTTP2_HCAT_REQUEST) {
    sreq_t *q = calloc(1, sizeof *q);
    nghttp2_session_set_stream_user_data(s, fr->hd.stream_id, q);
  }
  return 0;
}

static sreq_t *sreq_of(nghttp2_session *s, int32_t id);

static int s_on_header(nghttp2_session *s, const nghttp2_frame *fr,
                       const uint8_t *name, size_t nl, const uint8_t *value,
                       size_t vl, uint8_t flags, void *ud) {
  (void)flags;
  (void)ud;
  sreq_t *q = sreq_of(s, fr->hd.stream_id);
  if (!q)
    return 0;
#define IS(n) (nl == sizeof(n) - 1 && memcmp(name, n, nl) == 0)
#define VAL(v) (vl == sizeof(v) - 1 && memcmp(value, v, vl) == 0)
  if (IS(":path") && VAL("/etcdserverpb.Auth/Authenticate"))
    q->is_auth = 1;
  else if (IS(":path") && (VAL("/etcdserverpb.Watch/Watch") ||
                           VAL("/etcdserverpb.Lease/LeaseKeepAlive")))
    q->is_stream = 1;
  else if (IS("hasleader") && VAL("true"))
    q->hasleader = 1;
  else if (IS("te") && VAL("trailers"))
    q->te = 1;
  else if (IS("content-type") && VAL("application/grpc"))
    q->ct = 1;
  else if (IS("token"))
    snprintf(q->token, sizeof q->token, "%.*s", (int)vl, (const char *)value);
#undef IS
#undef VAL
  return 0;
}

static int s_on_frame(nghttp2_session *s, const nghttp2_frame *fr, void *ud) {
  sconn_t *sc = ud;
  sreq_t *q = sreq_of(s, fr->hd.stream_id);
  /* a unary call is answered at its end, a stream at its first message */
  if (q && !q->answered &&
      (fr->hd.type == NGHTTP2_DATA || fr->hd.type == NGHTTP2_HEADERS) &&
      ((fr->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
       (q->is_stream && fr->hd.type == NGHTTP2_DATA))) {
    q->answered = 1;
    sc->f->requests++;
    respond(sc, fr->hd.stream_id,
            sc->f->nconns > 1 ? sc->f->mode2 : sc->f->mode);
  }
  return 0;
}

static int s_on_close(nghttp2_session *s, int32_t id, uint32_t code,
                      void *ud) {
  sconn_t *sc = ud;
  if (code == NGHTTP2_CANCEL)
    sc->f->cancels++;
  sreq_t *q = nghttp2_session_get_stream_user_data(s, id);
  if (q) {
    if (q->body) {
      free(q->body->b);
      free(q->body);
    }
    free(q);
  }
  return 0;
}

static void s_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  sconn_t *sc = h->data;
  *b = uv_buf_init(sc->rd, sizeof sc->rd);
}

static void s_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  sconn_t *sc = st->data;
  if (n < 0) {
    sc_close(sc);
    return;
  }
  if (n == 0 || !sc->s)
    return;
  if (nghttp2_session_mem_recv(sc->s, (const uint8_t *)b->base, (size_t)n) < 0) {
    sc_close(sc);
    return;
  }
  sc_flush(sc);
}

static void s_accept(uv_stream_t *l, int status) {
  fake_t *f = l->data;
  if (status < 0)
    return;
  sconn_t *sc = calloc(1, sizeof *sc);
  sc->f = f;
  uv_tcp_init(f->loop, &sc->tcp);
  sc->tcp.data = sc;
  if (uv_accept(l, (uv_stream_t *)&sc->tcp)) {
    uv_close((uv_handle_t *)&sc->tcp, (uv_close_cb)free);
    return;
  }
  f->nconns++;
  f->nopen++;
  for (int i = 0; i < 16; i++)
    if (!f->conns[i]) {
      f->conns[i] = sc;
      break;
    }
  if (f->mode == M_SILENT)
    return;
  uv_read_start((uv_stream_t *)&sc->tcp, s_alloc, s_read);
  if (f->mode == M_GARBAGE && f->nconns == 1) {
    static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n\x00\x01garbage";
    sc_send_raw(sc, junk, sizeof junk);
    return;
  }
  nghttp2_session_callbacks *cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, s_on_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, s_on_begin);
  nghttp2_session_callbacks_set_on_header_callback(cbs, s_on_header);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, s_on_close);
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  if (f->no_ping_ack)
    nghttp2_option_set_no_auto_ping_ack(opt, 1);
  nghttp2_session_server_new2(&sc->s, cbs, sc, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(sc->s, NGHTTP2_FLAG_NONE, NULL, 0);
  sc_flush(sc);
}

static void fake_start(mode_t_ mode) {
  memset(&F, 0, sizeof F);
  F.loop = &L;
  F.mode = F.mode2 = mode;
  uv_tcp_init(&L, &F.listen);
  F.listen.data = &F;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&F.listen, (struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&F.listen, 16, s_accept), 0);
  int l = sizeof a;
  uv_tcp_getsockname(&F.listen, (struct sockaddr *)&a, &l);
  F.port = ntohs(a.sin_port);
}

static void fake_stop(void) {
  for (int i = 0; i < 16; i++)
    if (F.conns[i])
      sc_close(F.conns[i]);
  uv_close((uv_handle_t *)&F.listen, NULL);
  int z = 0;
  etcdh_run_until(&L, &z, 50);
  assert_int_equal(F.nopen, 0);
}

/* ---- the client side ---- */

static char url[64];

static lm_etcd_t *client_opts(uint32_t timeout_ms, size_t max,
                              const char *first) {
  snprintf(url, sizeof url, "http://127.0.0.1:%d", F.port);
  const char *eps[2] = {first ? first : url, url};
  lm_etcd_options_t o;
  memset(&o, 0, sizeof o);
  o.endpoints = eps;
  o.nendpoints = first ? 2 : 1;
  o.request_timeout_ms = timeout_ms;
  o.dial_timeout_ms = 1000;
  o.max_response_bytes = max;
  o.ping_interval_ms = 5000;
  o.log = test_log;
  lm_etcd_t *c = NULL;
  char err[128];
  assert_int_equal(lm_etcd_new(&c, &L, &o, err, sizeof err), 0);
  return c;
}

static lm_etcd_t *client(uint32_t timeout_ms) {
  return client_opts(timeout_ms, 0, NULL);
}

static void client_close(lm_etcd_t *c) {
  int done = 0;
  lm_etcd_close(c, close_done, &done);
  assert_true(etcdh_run_until(&L, &done, 5000));
}

static got_t range_once(lm_etcd_t *c) {
  got_t g = {0};
  assert_int_equal(lm_etcd_range(c, K("k"), NULL, 0, 0, 0, range_cb, &g), 0);
  assert_true(etcdh_run_until(&L, &g.called, 10000));
  return g;
}

/* One request against a mode: its error. */
static int one(mode_t_ mode) {
  fake_start(mode);
  lm_etcd_t *c = client(2000);
  got_t g = range_once(c);
  assert_int_equal(g.called, 1);
  client_close(c);
  fake_stop();
  return g.err;
}

static void test_ok(void **s) {
  (void)s;
  fake_start(M_OK);
  lm_etcd_t *c = client(2000);
  got_t g = range_once(c);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.revision, 7);
  assert_int_equal(g.nkvs, 1);
  assert_string_equal(g.keys[0], "k");
  assert_string_equal(g.values[0], "v");
  /* the connection is reused */
  g = range_once(c);
  assert_int_equal(g.err, 0);
  assert_int_equal(F.nconns, 1);
  client_close(c);
  fake_stop();
}

static void test_unknown_fields(void **s) {
  (void)s;
  assert_int_equal(one(M_UNKNOWN_FIELDS), 0);
  assert_int_equal(one(M_SPLIT), 0);
}

static void test_garbage(void **s) {
  (void)s;
  assert_int_equal(one(M_GARBAGE), LM_ETCD_EPROTO);
}

static void test_bad_messages(void **s) {
  (void)s;
  assert_int_equal(one(M_TRUNCATED), LM_ETCD_EPROTO);
  assert_int_equal(one(M_BIGLEN), LM_ETCD_EPROTO);
  assert_int_equal(one(M_COMPRESSED), LM_ETCD_EPROTO);
  assert_int_equal(one(M_BADPROTO), LM_ETCD_EPROTO);
  assert_int_equal(one(M_HTTP_503), LM_ETCD_EPROTO);
  /* larger than max_response_bytes */
  fake_start(M_OVERSIZE);
  lm_etcd_t *c = client_opts(2000, 1024, NULL);
  got_t g = range_once(c);
  assert_int_equal(g.err, LM_ETCD_EPROTO);
  client_close(c);
  fake_stop();
}

static void status_case(int st, const char *msg, int want) {
  fake_start(M_TRAILERS_ONLY);
  F.grpc_status = st;
  F.grpc_message = msg;
  lm_etcd_t *c = client(2000);
  got_t g = range_once(c);
  assert_int_equal(g.err, want);
  assert_int_equal(g.grpc_status, st);
  assert_string_equal(g.message, msg);
  client_close(c);
  fake_stop();
}

static void test_trailers_only(void **s) {
  (void)s;
  status_case(14, "etcdserver: no leader", LM_ETCD_ENOLEADER);
  status_case(14, "etcdserver: leader changed", LM_ETCD_ENOLEADER);
  status_case(14, "connection refused", LM_ETCD_EGRPC);
  status_case(11, "etcdserver: mvcc: required revision has been compacted",
              LM_ETCD_ECOMPACTED);
  status_case(5, "etcdserver: requested lease not found", LM_ETCD_ELEASE);
  status_case(3, "etcdserver: request is too large", LM_ETCD_ETOOLARGE);
  status_case(8, "etcdserver: mvcc: database space exceeded",
              LM_ETCD_ENOSPACE);
  status_case(3,
              "etcdserver: authentication failed, invalid user ID or password",
              LM_ETCD_EAUTH);
  /* no user configured: an invalid token cannot be renewed */
  status_case(3, "etcdserver: invalid auth token", LM_ETCD_EAUTH);
  status_case(2, "something else", LM_ETCD_EGRPC);
}

static void test_rst(void **s) {
  (void)s;
  assert_int_equal(one(M_RST), LM_ETCD_ECONNRESET);
}

static void test_goaway(void **s) {
  (void)s;
  fake_start(M_GOAWAY);
  F.mode2 = M_OK;
  lm_etcd_t *c = client(2000);
  got_t g = range_once(c);
  assert_int_equal(g.err, LM_ETCD_ECONNRESET);
  /* the next request goes to a new connection */
  g = range_once(c);
  assert_int_equal(g.err, 0);
  assert_int_equal(F.nconns, 2);
  client_close(c);
  fake_stop();
}

static void test_never(void **s) {
  (void)s;
  fake_start(M_NEVER);
  lm_etcd_t *c = client(300);
  got_t g = range_once(c);
  assert_int_equal(g.err, LM_ETCD_ETIMEDOUT);
  int z = 0;
  etcdh_run_until(&L, &z, 100);
  assert_int_equal(F.cancels, 1); /* the stream was reset */
  lm_etcd_stats_t st;
  lm_etcd_stats(c, &st);
  assert_int_equal(st.timeouts, 1);
  assert_int_equal(st.pending, 0);
  /* pending at close: ECANCELED, once */
  got_t p = {0};
  assert_int_equal(lm_etcd_range(c, K("k"), NULL, 0, 0, 0, range_cb, &p), 0);
  etcdh_run_until(&L, &z, 50);
  client_close(c);
  assert_int_equal(p.called, 1);
  assert_int_equal(p.err, LM_ETCD_ECANCELED);
  fake_stop();
}

static int st_up, st_down, st_err;
static void on_state(void *ud, int connected, int err, const char *msg) {
  (void)ud;
  (void)msg;
  if (connected)
    st_up++;
  else {
    st_down++;
    st_err = err;
  }
}

static void test_rotate(void **s) {
  (void)s;
  fake_start(M_OK);
  char dead[64];
  snprintf(dead, sizeof dead, "http://127.0.0.1:%d", etcdh_free_port());
  lm_etcd_t *c = client_opts(2000, 0, dead);
  st_up = st_down = 0;
  lm_etcd_on_state(c, on_state, NULL);
  got_t g = range_once(c);
  assert_int_equal(g.err, 0);
  assert_int_equal(st_up, 1);
  assert_int_equal(lm_etcd_connected(c), 1);
  client_close(c);
  fake_stop();
  /* nothing listens: ECONNECT */
  lm_etcd_options_t o;
  memset(&o, 0, sizeof o);
  const char *eps[1] = {dead};
  o.endpoints = eps;
  o.nendpoints = 1;
  lm_etcd_t *d = NULL;
  assert_int_equal(lm_etcd_new(&d, &L, &o, NULL, 0), 0);
  got_t e = range_once(d);
  assert_int_equal(e.err, LM_ETCD_ECONNECT);
  client_close(d);
}

static void test_ping_unanswered(void **s) {
  (void)s;
  fake_start(M_OK);
  F.no_ping_ack = 1;
  lm_etcd_t *c = client(1000);
  st_up = st_down = 0;
  lm_etcd_on_state(c, on_state, NULL);
  got_t g = range_once(c);
  assert_int_equal(g.err, 0);
  /* ping after 5 s, dead 1 s later */
  assert_true(etcdh_run_until(&L, &st_down, 9000));
  assert_int_equal(st_err, LM_ETCD_ECONNRESET);
  assert_int_equal(lm_etcd_connected(c), 0);
  client_close(c);
  fake_stop();
}

static void test_goaway_graceful(void **s) {
  (void)s;
  fake_start(M_GOAWAY_AFTER);
  F.mode2 = M_OK;
  lm_etcd_t *c = client(2000);
  st_up = st_down = 0;
  lm_etcd_on_state(c, on_state, NULL);
  got_t g = range_once(c);
  assert_int_equal(g.err, 0); /* its stream was not above last_stream_id */
  int z = 0;
  etcdh_run_until(&L, &st_down, 1000);
  assert_int_equal(st_down, 1); /* then the connection closed */
  g = range_once(c);
  assert_int_equal(g.err, 0);
  assert_int_equal(F.nconns, 2);
  (void)z;
  client_close(c);
  fake_stop();
}

static wrec_t W;

static void watch_case(mode_t_ mode, int st, const char *msg, int want) {
  fake_start(mode);
  F.grpc_status = st;
  F.grpc_message = msg;
  lm_etcd_t *c = client(2000);
  memset(&W, 0, sizeof W);
  uint64_t id;
  assert_int_equal(lm_etcd_watch(c, K("k"), NULL, 0, 0, 0, watch_cb, &W, &id),
                   0);
  assert_true(etcdh_run_until(&L, &W.ended, 5000));
  assert_int_equal(W.m[W.n - 1].kind, LM_ETCD_WATCH_ERROR);
  assert_int_equal(W.m[W.n - 1].err, want);
  /* ended: cancelling it now is an error, and nothing more comes */
  assert_int_equal(lm_etcd_watch_cancel(c, id), LM_ETCD_EINVAL);
  client_close(c);
  assert_int_equal(W.n, 1);
  fake_stop();
}

static void test_watch_errors(void **s) {
  (void)s;
  watch_case(M_BADPROTO, 0, "", LM_ETCD_EPROTO);
  watch_case(M_TRAILERS_ONLY, 14, "etcdserver: no leader", LM_ETCD_ENOLEADER);
  watch_case(M_RST, 0, "", LM_ETCD_ECONNRESET);
  watch_case(M_COMPRESSED, 0, "", LM_ETCD_EPROTO);
  watch_case(M_NEVER, 0, "", LM_ETCD_ETIMEDOUT); /* never created */
}

typedef struct closer {
  lm_etcd_t *c;
  int calls, done;
  int err;
} closer_t;

static void close_in_cb(void *ud, const lm_etcd_result_t *r,
                        const lm_etcd_kv_t *kvs, size_t nkvs, int64_t count,
                        int more) {
  (void)kvs;
  (void)nkvs;
  (void)count;
  (void)more;
  closer_t *x = ud;
  x->calls++;
  x->err = r->err;
  lm_etcd_close(x->c, close_done, &x->done);
}

static void test_close_in_callback(void **s) {
  (void)s;
  fake_start(M_OK);
  closer_t x = {0};
  x.c = client(2000);
  got_t other = {0};
  assert_int_equal(lm_etcd_range(x.c, K("k"), NULL, 0, 0, 0, close_in_cb, &x),
                   0);
  assert_int_equal(lm_etcd_range(x.c, K("k"), NULL, 0, 0, 0, range_cb, &other),
                   0);
  assert_true(etcdh_run_until(&L, &x.done, 5000));
  assert_int_equal(x.calls, 1);
  assert_int_equal(x.err, 0);
  assert_int_equal(other.called, 1);
  /* answered in the same read, or canceled by the close */
  assert_true(other.err == 0 || other.err == LM_ETCD_ECANCELED);
  fake_stop();
}

static void test_bad_calls(void **s) {
  (void)s;
  fake_start(M_OK);
  lm_etcd_t *c = client(2000);
  got_t g = {0};
  assert_int_equal(lm_etcd_range(c, NULL, 3, NULL, 0, 0, 0, range_cb, &g),
                   LM_ETCD_EINVAL);
  assert_int_equal(lm_etcd_lease_grant(c, 0, 0, lease_cb, &g), LM_ETCD_EINVAL);
  assert_int_equal(lm_etcd_lease_keepalive(c, 0, lease_cb, &g),
                   LM_ETCD_EINVAL);
  lm_etcd_op_t bad = {(lm_etcd_op_kind_t)9, K("k"), NULL, 0, NULL, 0, 0};
  assert_int_equal(lm_etcd_txn(c, NULL, 0, &bad, 1, NULL, 0, txn_cb, &g),
                   LM_ETCD_EINVAL);
  assert_int_equal(lm_etcd_watch_cancel(c, 12345), LM_ETCD_EINVAL);
  int z = 0;
  etcdh_run_until(&L, &z, 20);
  assert_int_equal(g.called, 0); /* a refused call never calls back */
  int done = 0;
  lm_etcd_close(c, close_done, &done);
  assert_int_equal(lm_etcd_range(c, K("k"), NULL, 0, 0, 0, range_cb, &g),
                   LM_ETCD_ECLOSED);
  assert_true(etcdh_run_until(&L, &done, 5000));
  assert_int_equal(g.called, 0);
  fake_stop();
}

static lm_etcd_t *client_user(void) {
  snprintf(url, sizeof url, "http://127.0.0.1:%d", F.port);
  const char *eps[1] = {url};
  lm_etcd_options_t o;
  memset(&o, 0, sizeof o);
  o.endpoints = eps;
  o.nendpoints = 1;
  o.user = "root";
  o.password = "pw";
  o.request_timeout_ms = 2000;
  o.log = test_log;
  lm_etcd_t *c = NULL;
  assert_int_equal(lm_etcd_new(&c, &L, &o, NULL, 0), 0);
  return c;
}

static void test_token_renewed(void **s) {
  (void)s;
  fake_start(M_TOKEN_ONCE);
  lm_etcd_t *c = client_user();
  st_up = st_down = 0;
  lm_etcd_on_state(c, on_state, NULL);
  got_t g = range_once(c);
  assert_int_equal(g.err, 0);
  assert_int_equal(st_up, 1);
  assert_int_equal(F.auths, 2);
  assert_int_equal(F.invalid_sent, 1);
  assert_string_equal(F.last_token, "tok2"); /* resent with the new one */
  assert_int_equal(F.bad_headers, 0);
  lm_etcd_stats_t st;
  lm_etcd_stats(c, &st);
  assert_int_equal(st.reauths, 1);
  client_close(c);
  fake_stop();
}

static void test_token_refused_twice(void **s) {
  (void)s;
  fake_start(M_TOKEN_ALWAYS);
  lm_etcd_t *c = client_user();
  got_t g = range_once(c);
  assert_int_equal(g.err, LM_ETCD_EAUTH);
  assert_int_equal(g.grpc_status, 3);
  assert_int_equal(F.auths, 2);
  assert_int_equal(F.invalid_sent, 2);
  client_close(c);
  fake_stop();
}

static void test_dial_timeout(void **s) {
  (void)s;
  /* TCP connects but the TLS handshake never ends */
  fake_start(M_SILENT);
  char tls_url[64];
  snprintf(tls_url, sizeof tls_url, "https://127.0.0.1:%d", F.port);
  const char *eps[1] = {tls_url};
  lm_etcd_options_t o;
  memset(&o, 0, sizeof o);
  o.endpoints = eps;
  o.nendpoints = 1;
  o.dial_timeout_ms = 300;
  o.request_timeout_ms = 5000;
  lm_etcd_t *c = NULL;
  assert_int_equal(lm_etcd_new(&c, &L, &o, NULL, 0), 0);
  uv_update_time(&L);
  uint64_t t0 = uv_now(&L);
  got_t g = range_once(c);
  assert_int_equal(g.err, LM_ETCD_ECONNECT);
  assert_true(uv_now(&L) - t0 < 2000);
  client_close(c);
  fake_stop();
}

static int group_setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  return uv_loop_init(&L);
}

static int group_teardown(void **state) {
  (void)state;
  uv_run(&L, UV_RUN_NOWAIT);
  int rc = uv_loop_close(&L);
  if (rc)
    fprintf(stderr, "loop still has handles\n");
  return rc ? -1 : 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok),
      cmocka_unit_test(test_unknown_fields),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_bad_messages),
      cmocka_unit_test(test_trailers_only),
      cmocka_unit_test(test_rst),
      cmocka_unit_test(test_goaway),
      cmocka_unit_test(test_never),
      cmocka_unit_test(test_rotate),
      cmocka_unit_test(test_ping_unanswered),
      cmocka_unit_test(test_token_renewed),
      cmocka_unit_test(test_token_refused_twice),
      cmocka_unit_test(test_dial_timeout),
      cmocka_unit_test(test_goaway_graceful),
      cmocka_unit_test(test_watch_errors),
      cmocka_unit_test(test_close_in_callback),
      cmocka_unit_test(test_bad_calls),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
