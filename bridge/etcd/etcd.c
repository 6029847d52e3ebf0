/*
 * etcd.c: the etcd calls of the client (etcd.h): requests queued until a
 * connection (and a token) is there, sent as gRPC streams by h2.c, their
 * answers decoded by decode.c and handed to the caller once; deadlines on
 * one timer; authentication and the one re-authentication; the shared
 * LeaseKeepAlive stream; a Watch stream per watch; close.
 *
 * A request is freed only when no callback of its own is running (busy),
 * so a caller may cancel or close from inside any callback.
 *
 * Must never depend on swim/, store/ or mesh/.
 */
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"

#define LM_ETCD_TXN_MAX ((size_t)(3u << 19)) /* etcd's 1.5 MiB */

typedef struct req_x {
  lm__req_t r;
  int done, busy, dead;
  int pending_err; /* fail from the timer (never inside the caller's call) */
} req_x_t;

static req_x_t *RX(lm__req_t *r) { return (req_x_t *)r; }

/* ---- the list ---- */

static void link_tail(lm_etcd_t *c, lm__req_t *r) {
  r->prev = c->reqs_tail;
  r->next = NULL;
  if (c->reqs_tail)
    c->reqs_tail->next = r;
  else
    c->reqs = r;
  c->reqs_tail = r;
}

static void link_head(lm_etcd_t *c, lm__req_t *r) {
  r->prev = NULL;
  r->next = c->reqs;
  if (c->reqs)
    c->reqs->prev = r;
  else
    c->reqs_tail = r;
  c->reqs = r;
}

static void unlink_req(lm_etcd_t *c, lm__req_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    c->reqs = r->next;
  if (r->next)
    r->next->prev = r->prev;
  else
    c->reqs_tail = r->prev;
  r->prev = r->next = NULL;
}

static void req_free(lm__req_t *r) {
  if (RX(r)->busy) {
    RX(r)->dead = 1;
    return;
  }
  free(r->sendq);
  free(r->rbuf);
  free(r);
}

static lm__req_t *req_new(lm_etcd_t *c, lm__req_kind_t kind, const char *path,
                          uint8_t *frame, size_t len, void *cb, void *ud) {
  req_x_t *x = calloc(1, sizeof *x);
  if (!x)
    return NULL;
  lm__req_t *r = &x->r;
  r->c = c;
  r->kind = kind;
  r->path = path;
  r->sendq = frame;
  r->sendq_len = len;
  r->unary = kind != LM__REQ_KA_STREAM && kind != LM__REQ_WATCH;
  r->grpc_status = -1;
  r->cb = cb;
  r->ud = ud;
  if (kind != LM__REQ_KA_STREAM)
    r->deadline = uv_now(c->loop) + c->request_timeout_ms;
  return r;
}

static void detach(lm__req_t *r) {
  if (r->conn && r->stream_id > 0) {
    lm__conn_t *k = r->conn;
    lm__conn_reset_stream(k, r);
    lm__conn_flush(k);
  }
  r->conn = NULL;
  r->stream_id = 0;
}

/* ---- deadlines ---- */

static void on_timer(uv_timer_t *t);

void lm__etcd_rearm(lm_etcd_t *c) {
  if (c->closing)
    return;
  uint64_t d = UINT64_MAX;
  if (c->conn)
    d = lm__conn_next_deadline(c->conn);
  for (lm__req_t *r = c->reqs; r; r = r->next)
    if (r->deadline && r->deadline < d)
      d = r->deadline;
  if (d == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  uint64_t now = uv_now(c->loop);
  uv_timer_start(&c->timer, on_timer, d > now ? d - now : 0, 0);
}

/* ---- finishing ---- */

static void fill_result(lm_etcd_result_t *res, int err, int grpc_status,
                        const char *msg) {
  memset(res, 0, sizeof *res);
  res->err = err;
  res->grpc_status = grpc_status;
  res->message = msg ? msg : "";
}

static void ka_stream_end(lm_etcd_t *c, lm__req_t *s, int err,
                          const char *msg, int grpc_status);
static void start_auth(lm_etcd_t *c);
static void kick(lm_etcd_t *c);

/* Ends r with an error (or, resp != NULL, with its answer) and runs the
 * caller's callback. */
static void req_finish(lm__req_t *r, int err, int grpc_status,
                       const char *msg, const lm__etcd_resp_t *resp) {
  lm_etcd_t *c = r->c;
  if (RX(r)->done)
    return;
  RX(r)->done = 1;
  unlink_req(c, r);
  detach(r);
  lm_etcd_result_t res;
  fill_result(&res, err, grpc_status, msg);
  if (!err && resp) {
    res.revision = resp->revision;
    res.member_id = resp->member_id;
    res.raft_term = resp->raft_term;
  }
  if (r->kind != LM__REQ_KA_STREAM && r->kind != LM__REQ_AUTH) {
    if (err)
      c->st.errors++;
    else
      c->st.responses++;
    if (err == LM_ETCD_ETIMEDOUT)
      c->st.timeouts++;
  }
  RX(r)->busy++;
  switch (r->kind) {
  case LM__REQ_RANGE:
    ((lm_etcd_range_cb)r->cb)(r->ud, &res, resp ? resp->kvs : NULL,
                              resp ? resp->nkvs : 0, resp ? resp->count : 0,
                              resp ? resp->more : 0);
    break;
  case LM__REQ_TXN:
    ((lm_etcd_txn_cb)r->cb)(r->ud, &res, resp ? resp->succeeded : 0,
                            resp ? resp->kvs : NULL, resp ? resp->nkvs : 0);
    break;
  case LM__REQ_COMPACT:
  case LM__REQ_LEASE_REVOKE:
    ((lm_etcd_done_cb)r->cb)(r->ud, &res);
    break;
  case LM__REQ_LEASE_GRANT:
  case LM__REQ_KEEPALIVE:
    ((lm_etcd_lease_cb)r->cb)(r->ud, &res, resp ? resp->id : r->lease_id,
                              resp ? resp->ttl : 0);
    break;
  case LM__REQ_WATCH: {
    lm_etcd_watch_msg_t m;
    memset(&m, 0, sizeof m);
    m.kind = LM_ETCD_WATCH_ERROR;
    m.result = res;
    ((lm_etcd_watch_cb)r->cb)(r->ud, &m);
    break;
  }
  case LM__REQ_KA_STREAM:
    ka_stream_end(c, r, err, msg, grpc_status);
    break;
  case LM__REQ_AUTH: {
    c->authing = 0;
    if (!err && resp) {
      char *t = strdup(resp->token);
      if (t) {
        free(c->token);
        c->token = t;
      } else {
        err = LM_ETCD_ENOMEM;
      }
    }
    if (err) {
      /* Everything waiting for the token fails; the connection goes. */
      int e2 = (err == LM__ETCD_EREAUTH) ? LM_ETCD_EAUTH : err;
      lm__req_t *q;
      while (!c->closing) {
        for (q = c->reqs; q && (q->sent || q->kind == LM__REQ_KA_STREAM);
             q = q->next)
          ;
        if (!q)
          break;
        req_finish(q, e2, grpc_status, msg, NULL);
      }
      if (c->conn)
        lm__conn_fail(c->conn, e2, msg);
    } else if (!c->connected && c->conn) {
      c->connected = 1;
      c->attempts = 0;
      if (c->state_cb)
        c->state_cb(c->state_ud, 1, 0, "");
    }
    break;
  }
  }
  RX(r)->busy--;
  if (r->kind == LM__REQ_AUTH && !err && !c->closing) {
    kick(c); /* what waited for the token */
  }
  req_free(r);
  lm__etcd_rearm(c);
}

static void req_fail(lm__req_t *r, int err, const char *msg) {
  req_finish(r, err, 0, msg, NULL);
}

/* ---- sending ---- */

static int has_unsent(lm_etcd_t *c) {
  for (lm__req_t *r = c->reqs; r; r = r->next)
    if (!r->sent && r->kind != LM__REQ_KA_STREAM)
      return 1;
  return 0;
}

static lm__req_t *ka_stream(lm_etcd_t *c) {
  if (!c->ka_stream) {
    lm__req_t *s = req_new(c, LM__REQ_KA_STREAM,
                           "/etcdserverpb.Lease/LeaseKeepAlive", NULL, 0,
                           NULL, NULL);
    if (!s)
      return NULL;
    link_tail(c, s);
    c->ka_stream = s;
  }
  return c->ka_stream;
}

static int queue_append(lm__req_t *s, const uint8_t *p, size_t n) {
  uint8_t *b = realloc(s->sendq, s->sendq_len + n);
  if (!b)
    return LM_ETCD_ENOMEM;
  memcpy(b + s->sendq_len, p, n);
  s->sendq = b;
  s->sendq_len += n;
  return 0;
}

/* Sends what can be sent: every request not yet on a stream, once the
 * connection is up (and, with a user, the token is there). */
static void kick(lm_etcd_t *c) {
  if (c->closing)
    return;
  lm__conn_t *k = c->conn;
  if (!k) {
    if (has_unsent(c))
      lm__conn_ensure(c);
    lm__etcd_rearm(c);
    return;
  }
  if (k->state != LM__CONN_READY || k->goaway) {
    lm__etcd_rearm(c);
    return;
  }
  for (lm__req_t *r = c->reqs; r; r = r->next) {
    if (r->sent || RX(r)->done || RX(r)->pending_err)
      continue;
    if (c->authing && r->kind != LM__REQ_AUTH)
      continue;
    if (r->kind == LM__REQ_KEEPALIVE) {
      lm__req_t *s = ka_stream(c);
      if (!s || queue_append(s, r->sendq, r->sendq_len)) {
        RX(r)->pending_err = LM_ETCD_ENOMEM;
        r->deadline = uv_now(c->loop);
        continue;
      }
      r->sent = 1;
      if (s->stream_id > 0)
        lm__conn_resume(k, s);
      continue;
    }
    r->sendoff = 0;
    int e = lm__conn_start_stream(k, r);
    if (e) {
      RX(r)->pending_err = e;
      r->deadline = uv_now(c->loop);
      continue;
    }
    r->sent = 1;
  }
  lm__conn_flush(k);
  lm__etcd_rearm(c);
}

/* ---- what the transport says ---- */

static lm__req_t *auth_req(lm_etcd_t *c) {
  size_t len;
  uint8_t *f = lm__etcd_enc_auth(&len, c->user, c->password);
  if (!f)
    return NULL;
  lm__req_t *r = req_new(c, LM__REQ_AUTH, "/etcdserverpb.Auth/Authenticate",
                         f, len, NULL, NULL);
  if (!r)
    free(f);
  return r;
}

static void start_auth(lm_etcd_t *c) {
  if (c->authing)
    return;
  lm__req_t *a = auth_req(c);
  if (!a)
    return; /* what waits times out */
  c->authing = 1;
  link_head(c, a);
}

void lm__etcd_conn_ready(lm_etcd_t *c) {
  if (c->user) {
    free(c->token);
    c->token = NULL;
    c->authing = 0;
    start_auth(c);
  } else {
    c->connected = 1;
    c->attempts = 0;
    if (c->state_cb)
      c->state_cb(c->state_ud, 1, 0, "");
  }
  kick(c);
}

void lm__etcd_conn_failed(lm_etcd_t *c, lm__conn_t *k, int err,
                          const char *msg) {
  char m[256];
  snprintf(m, sizeof m, "%s", msg ? msg : "");
  /* The requests on k: what was sent fails. */
  for (;;) {
    lm__req_t *r;
    for (r = c->reqs; r && r->conn != k; r = r->next)
      ;
    if (!r)
      break;
    req_fail(r, err, m);
  }
  if (c->closing)
    return;
  c->ep = (c->ep + 1) % c->nendpoints;
  if (c->connected) {
    c->connected = 0;
    c->attempts = 0;
    if (c->state_cb)
      c->state_cb(c->state_ud, 0, err, m);
  } else {
    c->attempts++;
    if (c->attempts >= c->nendpoints) {
      c->attempts = 0;
      /* every endpoint was tried: what waits fails */
      for (;;) {
        lm__req_t *r;
        for (r = c->reqs; r && (r->sent || r->kind == LM__REQ_KA_STREAM);
             r = r->next)
          ;
        if (!r || c->closing)
          break;
        req_fail(r, err == LM_ETCD_ECONNRESET ? LM_ETCD_ECONNECT : err, m);
      }
      if (c->closing)
        return;
    }
  }
  /* an unsent Authenticate is dropped: the next connection starts one */
  for (lm__req_t *r = c->reqs; r; r = r->next)
    if (r->kind == LM__REQ_AUTH) {
      RX(r)->done = 1;
      unlink_req(c, r);
      req_free(r);
      break;
    }
  c->authing = 0;
  if (!c->closing && !c->conn && has_unsent(c))
    lm__conn_ensure(c);
  lm__etcd_rearm(c);
}

void lm__etcd_handle_closed(lm_etcd_t *c) {
  c->handles--;
  if (!c->closing || c->handles > 0)
    return;
  void (*done)(void *) = c->close_done;
  void *ud = c->close_ud;
  for (size_t i = 0; i < c->nendpoints; i++)
    free(c->endpoints[i]);
  free(c->endpoints);
  free(c->ca_file);
  free(c->cert_file);
  free(c->key_file);
  free(c->user);
  if (c->password) {
    OPENSSL_cleanse(c->password, strlen(c->password));
    free(c->password);
  }
  free(c->token);
  if (c->ssl_ctx)
    SSL_CTX_free(c->ssl_ctx);
  free(c);
  if (done)
    done(ud);
}

static void on_handle_closed(uv_handle_t *h) { lm__etcd_handle_closed(h->data); }

static void on_timer(uv_timer_t *t) {
  lm_etcd_t *c = t->data;
  uint64_t now = uv_now(c->loop);
  if (c->conn)
    lm__conn_on_timer(c->conn, now);
  for (;;) {
    if (c->closing)
      return;
    lm__req_t *r;
    for (r = c->reqs; r && !(r->deadline && r->deadline <= now); r = r->next)
      ;
    if (!r)
      break;
    int e = RX(r)->pending_err;
    if (r->kind == LM__REQ_AUTH) {
      /* a token that does not come: the connection is no good */
      RX(r)->done = 1;
      unlink_req(c, r);
      detach(r);
      req_free(r);
      c->authing = 0;
      if (c->conn)
        lm__conn_fail(c->conn, LM_ETCD_ETIMEDOUT, "Authenticate timed out");
      continue;
    }
    req_fail(r, e ? e : LM_ETCD_ETIMEDOUT,
             e ? lm_etcd_strerror(e) : "request timed out");
  }
  lm__etcd_rearm(c);
}

/* ---- answers ---- */

static void ka_stream_end(lm_etcd_t *c, lm__req_t *s, int err,
                          const char *msg, int grpc_status) {
  (void)s;
  c->ka_stream = NULL;
  if (!err)
    err = LM_ETCD_ECONNRESET;
  int reauth = 0;
  for (;;) {
    lm__req_t *r;
    for (r = c->reqs; r && !(r->kind == LM__REQ_KEEPALIVE && r->sent);
         r = r->next)
      ;
    if (!r || c->closing)
      break;
    if (err == LM__ETCD_EREAUTH && c->user && !r->reauthed) {
      r->reauthed = 1;
      r->sent = 0;
      reauth = 1;
      continue;
    }
    req_finish(r, err == LM__ETCD_EREAUTH ? LM_ETCD_EAUTH : err, grpc_status,
               msg, NULL);
  }
  if (reauth && !c->closing) {
    c->st.reauths++;
    start_auth(c);
    kick(c);
  }
}

static void watch_deliver(lm__req_t *r, lm_etcd_watch_msg_t *m) {
  RX(r)->busy++;
  ((lm_etcd_watch_cb)r->cb)(r->ud, m);
  RX(r)->busy--;
}

static void watch_message(lm__req_t *r, const uint8_t *b, size_t n) {
  lm_etcd_t *c = r->c;
  lm__etcd_resp_t d;
  int e = lm__etcd_decode(&d, LM__ETCD_RESP_WATCH, b, n);
  if (e) {
    req_fail(r, e, "undecodable WatchResponse");
    return;
  }
  lm_etcd_watch_msg_t m;
  memset(&m, 0, sizeof m);
  fill_result(&m.result, 0, 0, "");
  m.result.revision = d.revision;
  m.result.member_id = d.member_id;
  m.result.raft_term = d.raft_term;
  RX(r)->busy++;
  if (d.created && !r->watch_created) {
    r->watch_created = 1;
    r->deadline = 0;
    m.kind = LM_ETCD_WATCH_CREATED;
    if (!RX(r)->done)
      watch_deliver(r, &m);
  }
  if (d.compact_revision > 0 && !RX(r)->done) {
    m.kind = LM_ETCD_WATCH_COMPACTED;
    m.compact_revision = d.compact_revision;
    m.result.err = LM_ETCD_ECOMPACTED;
    m.result.message = "etcdserver: mvcc: required revision has been compacted";
    watch_deliver(r, &m);
    m.result.err = 0;
    m.result.message = "";
  }
  if (d.nevents && !RX(r)->done) {
    m.kind = LM_ETCD_WATCH_EVENTS;
    m.events = d.events;
    m.nevents = d.nevents;
    c->st.responses++;
    watch_deliver(r, &m);
    m.events = NULL;
    m.nevents = 0;
  }
  if (d.canceled && !RX(r)->done) {
    RX(r)->done = 1;
    unlink_req(c, r);
    detach(r);
    m.kind = LM_ETCD_WATCH_CANCELED;
    m.result.message = d.cancel_reason;
    watch_deliver(r, &m);
  }
  RX(r)->busy--;
  lm__etcd_resp_free(&d);
  if (RX(r)->dead || (RX(r)->done && !RX(r)->busy))
    req_free(r);
  lm__etcd_rearm(c);
}

static void ka_message(lm__req_t *s, const uint8_t *b, size_t n) {
  lm_etcd_t *c = s->c;
  lm__etcd_resp_t d;
  int e = lm__etcd_decode(&d, LM__ETCD_RESP_LEASE_KEEPALIVE, b, n);
  if (e) {
    req_fail(s, e, "undecodable LeaseKeepAliveResponse");
    return;
  }
  lm__req_t *r;
  for (r = c->reqs; r && !(r->kind == LM__REQ_KEEPALIVE && r->sent &&
                           r->lease_id == d.id);
       r = r->next)
    ;
  if (r) {
    if (d.ttl <= 0)
      req_finish(r, LM_ETCD_ELEASE, 0, "lease not found (TTL 0)", NULL);
    else
      req_finish(r, 0, 0, "", &d);
  }
  lm__etcd_resp_free(&d);
}

void lm__etcd_on_message(lm__req_t *r, const uint8_t *msg, size_t len) {
  if (RX(r)->done)
    return;
  if (r->kind == LM__REQ_WATCH)
    watch_message(r, msg, len);
  else if (r->kind == LM__REQ_KA_STREAM)
    ka_message(r, msg, len);
}

static lm__etcd_resp_kind_t resp_kind(lm__req_kind_t k) {
  switch (k) {
  case LM__REQ_RANGE:
    return LM__ETCD_RESP_RANGE;
  case LM__REQ_TXN:
    return LM__ETCD_RESP_TXN;
  case LM__REQ_COMPACT:
    return LM__ETCD_RESP_COMPACT;
  case LM__REQ_LEASE_GRANT:
    return LM__ETCD_RESP_LEASE_GRANT;
  case LM__REQ_LEASE_REVOKE:
    return LM__ETCD_RESP_LEASE_REVOKE;
  case LM__REQ_AUTH:
    return LM__ETCD_RESP_AUTH;
  default:
    return LM__ETCD_RESP_COUNT;
  }
}

void lm__etcd_on_stream_end(lm__req_t *r, int err, const char *msg) {
  lm_etcd_t *c = r->c;
  if (RX(r)->done)
    return;
  if (r->grpc_status > 0) {
    int mapped = lm__etcd_map_status(r->grpc_status, r->grpc_message);
    if (mapped == LM__ETCD_EREAUTH) {
      if (c->user && !r->reauthed && r->kind != LM__REQ_AUTH &&
          r->kind != LM__REQ_KA_STREAM) {
        /* send it again once a new token is there */
        detach(r);
        r->reauthed = 1;
        r->sent = 0;
        r->sendoff = 0;
        r->rlen = 0;
        r->have_msg = 0;
        r->grpc_status = -1;
        r->http_status = 0;
        r->grpc_message[0] = 0;
        r->deadline = uv_now(c->loop) + c->request_timeout_ms;
        c->st.reauths++;
        start_auth(c);
        kick(c);
        return;
      }
      if (r->kind != LM__REQ_KA_STREAM)
        mapped = LM_ETCD_EAUTH;
    }
    char m[sizeof r->grpc_message];
    memcpy(m, r->grpc_message, sizeof m);
    req_finish(r, mapped, r->grpc_status, m, NULL);
    return;
  }
  if (r->grpc_status < 0 || err) {
    req_finish(r, err ? err : LM_ETCD_EPROTO, 0,
               err ? msg : "stream ended without grpc-status", NULL);
    return;
  }
  /* grpc-status 0 */
  if (!r->unary) {
    req_finish(r, LM_ETCD_ECONNRESET, 0, "etcd ended the stream", NULL);
    return;
  }
  if (!r->have_msg) {
    req_finish(r, LM_ETCD_EPROTO,
               0, r->rlen ? "truncated gRPC message" : "no response message",
               NULL);
    return;
  }
  if (r->rlen != r->msg_off + r->msg_len) {
    req_finish(r, LM_ETCD_EPROTO, 0, "trailing bytes after the response",
               NULL);
    return;
  }
  lm__etcd_resp_t d;
  int e = lm__etcd_decode(&d, resp_kind(r->kind), r->rbuf + r->msg_off,
                          r->msg_len);
  if (e) {
    req_finish(r, e, 0, "undecodable response", NULL);
    return;
  }
  req_finish(r, 0, 0, "", &d);
  lm__etcd_resp_free(&d);
}

/* ---- the API ---- */

static char *dup_or_null(const char *s, int *oom) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *oom = 1;
  return d;
}

static int tls_ctx(lm_etcd_t *c, char *err, size_t errcap) {
  c->ssl_ctx = SSL_CTX_new(TLS_client_method());
  if (!c->ssl_ctx)
    return LM_ETCD_ENOMEM;
  SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
  int ok = c->ca_file ? SSL_CTX_load_verify_locations(c->ssl_ctx, c->ca_file,
                                                      NULL)
                      : SSL_CTX_set_default_verify_paths(c->ssl_ctx);
  if (!ok) {
    snprintf(err, errcap, "cannot load CA %s", c->ca_file ? c->ca_file : "");
    ERR_clear_error();
    return LM_ETCD_ETLS;
  }
  if (c->cert_file) {
    if (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, c->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(c->ssl_ctx, c->key_file,
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c->ssl_ctx) != 1) {
      snprintf(err, errcap, "cannot load client certificate %s / key %s",
               c->cert_file, c->key_file);
      ERR_clear_error();
      return LM_ETCD_ETLS;
    }
  }
  static const unsigned char alpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(c->ssl_ctx, alpn, sizeof alpn) != 0)
    return LM_ETCD_ETLS;
  return 0;
}

static void free_partial(lm_etcd_t *c) {
  if (c->endpoints)
    for (size_t i = 0; i < c->nendpoints; i++)
      free(c->endpoints[i]);
  free(c->endpoints);
  free(c->ca_file);
  free(c->cert_file);
  free(c->key_file);
  free(c->user);
  free(c->password);
  if (c->ssl_ctx)
    SSL_CTX_free(c->ssl_ctx);
  free(c);
}

int lm_etcd_new(lm_etcd_t **out, uv_loop_t *loop, const lm_etcd_options_t *o,
                char *err, size_t errcap) {
  char dummy[8];
  if (!err || errcap == 0) {
    err = dummy;
    errcap = sizeof dummy;
  }
  err[0] = 0;
  if (!out || !loop || !o || !o->endpoints || o->nendpoints == 0 ||
      o->nendpoints > 64) {
    snprintf(err, errcap, "no endpoints");
    return LM_ETCD_EINVAL;
  }
  if (!o->user != !o->password) {
    snprintf(err, errcap, "user and password: both or neither");
    return LM_ETCD_EINVAL;
  }
  if (!o->cert_file != !o->key_file) {
    snprintf(err, errcap, "cert_file and key_file: both or neither");
    return LM_ETCD_EINVAL;
  }
  int tls = 0;
  for (size_t i = 0; i < o->nendpoints; i++) {
    if (!o->endpoints[i] || lm__etcd_endpoint_ok(o->endpoints[i])) {
      snprintf(err, errcap, "bad endpoint %s (http://IP:PORT or https://IP:PORT)",
               o->endpoints[i] ? o->endpoints[i] : "(null)");
      return LM_ETCD_EINVAL;
    }
    if (strncmp(o->endpoints[i], "https://", 8) == 0)
      tls = 1;
  }
  lm_etcd_t *c = calloc(1, sizeof *c);
  if (!c)
    return LM_ETCD_ENOMEM;
  c->loop = loop;
  int oom = 0;
  c->endpoints = calloc(o->nendpoints, sizeof *c->endpoints);
  if (!c->endpoints)
    oom = 1;
  else
    for (size_t i = 0; i < o->nendpoints; i++)
      c->endpoints[i] = dup_or_null(o->endpoints[i], &oom);
  c->nendpoints = o->nendpoints;
  c->ca_file = dup_or_null(o->ca_file, &oom);
  c->cert_file = dup_or_null(o->cert_file, &oom);
  c->key_file = dup_or_null(o->key_file, &oom);
  c->user = dup_or_null(o->user, &oom);
  c->password = dup_or_null(o->password, &oom);
  if (oom) {
    free_partial(c);
    return LM_ETCD_ENOMEM;
  }
  c->dial_timeout_ms = o->dial_timeout_ms ? o->dial_timeout_ms : 3000;
  c->request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : 5000;
  c->ping_interval_ms = o->ping_interval_ms ? o->ping_interval_ms : 10000;
  if (c->ping_interval_ms < 5000)
    c->ping_interval_ms = 5000;
  c->max_response_bytes =
      o->max_response_bytes ? o->max_response_bytes : (size_t)8 << 20;
  if (c->max_response_bytes > 0x7fffffffu)
    c->max_response_bytes = 0x7fffffffu;
  c->log = o->log;
  c->log_ud = o->log_ud;
  c->next_watch_id = 1;
  if (tls) {
    int e = tls_ctx(c, err, errcap);
    if (e) {
      free_partial(c);
      return e;
    }
  }
  int e = uv_timer_init(loop, &c->timer);
  if (e) {
    snprintf(err, errcap, "uv_timer_init: %s", uv_strerror(e));
    free_partial(c);
    return LM_ETCD_ENOMEM;
  }
  c->timer.data = c;
  c->handles = 1;
  *out = c;
  return 0;
}

void lm_etcd_close(lm_etcd_t *c, void (*done)(void *ud), void *ud) {
  if (!c || c->closing)
    return;
  c->closing = 1;
  c->close_done = done;
  c->close_ud = ud;
  c->state_cb = NULL;
  while (c->reqs) {
    lm__req_t *r = c->reqs;
    if (r->kind == LM__REQ_AUTH || r->kind == LM__REQ_KA_STREAM) {
      if (r->kind == LM__REQ_KA_STREAM)
        req_finish(r, LM_ETCD_ECANCELED, 0, "client closed", NULL);
      else {
        RX(r)->done = 1;
        unlink_req(c, r);
        detach(r);
        req_free(r);
      }
      continue;
    }
    req_finish(r, LM_ETCD_ECANCELED, 0, "client closed", NULL);
  }
  if (c->conn)
    lm__conn_fail(c->conn, LM_ETCD_ECANCELED, "client closed");
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void lm_etcd_on_state(lm_etcd_t *c, lm_etcd_state_cb cb, void *ud) {
  if (c->closing)
    return;
  c->state_cb = cb;
  c->state_ud = ud;
}

int lm_etcd_connected(const lm_etcd_t *c) { return c->connected; }

int lm_etcd_next_endpoint(lm_etcd_t *c) {
  if (!c || c->closing || !c->conn)
    return LM_ETCD_EINVAL;
  lm__etcd_logf(c, 1, "leaving endpoint %s for the next one",
                c->endpoints[c->ep]);
  lm__conn_fail(c->conn, LM_ETCD_ECONNRESET, "switching endpoint");
  return 0;
}

static int submit(lm_etcd_t *c, lm__req_kind_t kind, const char *path,
                  uint8_t *frame, size_t len, void *cb, void *ud,
                  lm__req_t **out) {
  if (!frame)
    return LM_ETCD_ENOMEM;
  lm__req_t *r = req_new(c, kind, path, frame, len, cb, ud);
  if (!r) {
    free(frame);
    return LM_ETCD_ENOMEM;
  }
  c->st.requests++;
  link_tail(c, r);
  if (out)
    *out = r;
  kick(c);
  return 0;
}

int lm_etcd_range(lm_etcd_t *c, const uint8_t *key, size_t key_len,
                  const uint8_t *range_end, size_t range_end_len,
                  int64_t limit, int flags, lm_etcd_range_cb cb, void *ud) {
  if (!c || !cb || (!key && key_len) || (!range_end && range_end_len) ||
      limit < 0)
    return LM_ETCD_EINVAL;
  if (c->closing)
    return LM_ETCD_ECLOSED;
  size_t len = 0;
  uint8_t *f = lm__etcd_enc_range(&len, key, key_len, range_end,
                                  range_end_len, limit, flags);
  return submit(c, LM__REQ_RANGE, "/etcdserverpb.KV/Range", f, len,
                (void *)cb, ud, NULL);
}

static int ops_ok(const lm_etcd_op_t *ops, size_t n) {
  if (n && !ops)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if ((unsigned)ops[i].kind > LM_ETCD_OP_RANGE)
      return 0;
    if ((!ops[i].key && ops[i].key_len) ||
        (!ops[i].range_end && ops[i].range_end_len) ||
        (!ops[i].value && ops[i].value_len))
      return 0;
  }
  return 1;
}

int lm_etcd_txn(lm_etcd_t *c, const lm_etcd_cmp_t *cmps, size_t ncmps,
                const lm_etcd_op_t *success, size_t nsuccess,
                const lm_etcd_op_t *failure, size_t nfailure,
                lm_etcd_txn_cb cb, void *ud) {
  if (!c || !cb || (ncmps && !cmps) || !ops_ok(success, nsuccess) ||
      !ops_ok(failure, nfailure))
    return LM_ETCD_EINVAL;
  for (size_t i = 0; i < ncmps; i++)
    if ((unsigned)cmps[i].target > LM_ETCD_CMP_LEASE ||
        (unsigned)cmps[i].result > LM_ETCD_CMP_NOT_EQUAL ||
        (!cmps[i].key && cmps[i].key_len) ||
        (!cmps[i].value && cmps[i].value_len))
      return LM_ETCD_EINVAL;
  if (c->closing)
    return LM_ETCD_ECLOSED;
  size_t sz = lm_etcd_txn_size(cmps, ncmps, success, nsuccess, failure,
                               nfailure);
  if (sz > LM_ETCD_TXN_MAX)
    return LM_ETCD_ETOOLARGE;
  size_t len = 0;
  uint8_t *f = lm__etcd_enc_txn(&len, cmps, ncmps, success, nsuccess, failure,
                                nfailure);
  return submit(c, LM__REQ_TXN, "/etcdserverpb.KV/Txn", f, len, (void *)cb,
                ud, NULL);
}

int lm_etcd_compact(lm_etcd_t *c, int64_t revision, lm_etcd_done_cb cb,
                    void *ud) {
  if (!c || !cb || revision <= 0)
    return LM_ETCD_EINVAL;
  if (c->closing)
    return LM_ETCD_ECLOSED;
  size_t len = 0;
  uint8_t *f = lm__etcd_enc_compact(&len, revision);
  return submit(c, LM__REQ_COMPACT, "/etcdserverpb.KV/Compact", f, len,
                (void *)cb, ud, NULL);
}

int lm_etcd_lease_grant(lm_etcd_t *c, int64_t ttl_s, int64_t id,
                        lm_etcd_lease_cb cb, void *ud) {
  if (!c || !cb || ttl_s <= 0 || id < 0)
    return LM_ETCD_EINVAL;
  if (c->closing)
    return LM_ETCD_ECLOSED;
  size_t len = 0;
  uint8_t *f = lm__etcd_enc_lease_grant(&len, ttl_s, id);
  return submit(c, LM__REQ_LEASE_GRANT, "/etcdserverpb.Lease/LeaseGrant", f,
                len, (void *)cb, ud, NULL);
}

int lm_etcd_lease_revoke(lm_etcd_t *c, int64_t id, lm_etcd_done_cb cb,
                         void *ud) {
  if (!c || !cb || id <= 0)
    return LM_ETCD_EINVAL;
  if (c->closing)
    return LM_ETCD_ECLOSED;
  size_t len = 0;
  uint8_t *f = lm__etcd_enc_lease_revoke(&len, id);
  return submit(c, LM__REQ_LEASE_REVOKE, "/etcdserverpb.Lease/LeaseRevoke", f,
                len, (void *)cb, ud, NULL);
}

int lm_etcd_lease_keepalive(lm_etcd_t *c, int64_t id, lm_etcd_lease_cb cb,
                            void *ud) {
  if (!c || !cb || id <= 0)
    return LM_ETCD_EINVAL;
  if (c->closing)
    return LM_ETCD_ECLOSED;
  size_t len = 0;
  uint8_t *f = lm__etcd_enc_lease_keepalive(&len, id);
  lm__req_t *r = NULL;
  if (!f)
    return LM_ETCD_ENOMEM;
  /* the id is set before the kick sends it */
  r = req_new(c, LM__REQ_KEEPALIVE, NULL, f, len, (void *)cb, ud);
  if (!r) {
    free(f);
    return LM_ETCD_ENOMEM;
  }
  r->lease_id = id;
  c->st.requests++;
  link_tail(c, r);
  kick(c);
  return 0;
}

int lm_etcd_watch(lm_etcd_t *c, const uint8_t *key, size_t key_len,
                  const uint8_t *range_end, size_t range_end_len,
                  int64_t start_revision, int prev_kv, lm_etcd_watch_cb cb,
                  void *ud, uint64_t *watch_out) {
  if (!c || !cb || (!key && key_len) || (!range_end && range_end_len) ||
      start_revision < 0)
    return LM_ETCD_EINVAL;
  if (c->closing)
    return LM_ETCD_ECLOSED;
  size_t len = 0;
  uint8_t *f = lm__etcd_enc_watch_create(&len, key, key_len, range_end,
                                         range_end_len, start_revision,
                                         prev_kv);
  if (!f)
    return LM_ETCD_ENOMEM;
  lm__req_t *r = req_new(c, LM__REQ_WATCH, "/etcdserverpb.Watch/Watch", f,
                         len, (void *)cb, ud);
  if (!r) {
    free(f);
    return LM_ETCD_ENOMEM;
  }
  r->watch_id = c->next_watch_id++;
  if (watch_out)
    *watch_out = r->watch_id;
  c->st.requests++;
  link_tail(c, r);
  kick(c);
  return 0;
}

int lm_etcd_watch_cancel(lm_etcd_t *c, uint64_t watch) {
  if (!c)
    return LM_ETCD_EINVAL;
  for (lm__req_t *r = c->reqs; r; r = r->next) {
    if (r->kind == LM__REQ_WATCH && r->watch_id == watch && !RX(r)->done) {
      RX(r)->done = 1;
      unlink_req(c, r);
      detach(r);
      req_free(r);
      lm__etcd_rearm(c);
      return 0;
    }
  }
  return LM_ETCD_EINVAL;
}

void lm_etcd_stats(const lm_etcd_t *c, lm_etcd_stats_t *out) {
  *out = c->st;
  uint32_t n = 0;
  for (const lm__req_t *r = c->reqs; r; r = r->next)
    if (r->kind != LM__REQ_KA_STREAM && r->kind != LM__REQ_AUTH)
      n++;
  out->pending = n;
}

size_t lm_etcd_prefix_end(uint8_t *out, const uint8_t *prefix, size_t len) {
  size_t n = len;
  while (n > 0) {
    if (prefix[n - 1] < 0xff) {
      memcpy(out, prefix, n);
      out[n - 1] = (uint8_t)(prefix[n - 1] + 1);
      return n;
    }
    n--;
  }
  if (len == 0)
    return 0;
  out[0] = 0;
  return 1;
}
