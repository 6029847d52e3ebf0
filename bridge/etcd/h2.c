/*
 * h2.c: the client's transport. One connection at a time: a uv_tcp_t,
 * OpenSSL through memory BIOs when the endpoint is https (verify, ALPN h2,
 * host or IP check), and an nghttp2 client session that never does I/O
 * itself: bytes read go to nghttp2_session_mem_recv, what it has to send
 * comes from nghttp2_session_mem_send. gRPC framing: each request is a
 * POST stream whose DATA carries 5-byte length-prefixed messages; the
 * answer's status is in the trailers (or in a trailers-only HEADERS).
 *
 * nghttp2 callbacks may run user callbacks (through etcd.c), which may
 * start requests or close the client: a dead connection is never freed
 * before its uv_close callback, callbacks on a dead connection stop the
 * session, and mem_send is never called from inside mem_recv.
 *
 * Must never depend on swim/, store/ or mesh/.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"

void lm__etcd_logf(lm_etcd_t *c, int level, const char *fmt, ...) {
  if (!c->log)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  c->log(c->log_ud, level, buf);
}

typedef struct conn_x {
  lm__conn_t k;
  uint8_t *out;
  size_t out_len, out_cap;
  int in_recv;
  char rd[65536];
} conn_x_t;

static conn_x_t *X(lm__conn_t *k) { return (conn_x_t *)k; }

/* ---- writing ---- */

static int out_add(lm__conn_t *k, const uint8_t *p, size_t n) {
  conn_x_t *x = X(k);
  if (x->out_len + n > x->out_cap) {
    size_t cap = x->out_cap ? x->out_cap : 16384;
    while (cap < x->out_len + n)
      cap *= 2;
    uint8_t *b = realloc(x->out, cap);
    if (!b)
      return LM_ETCD_ENOMEM;
    x->out = b;
    x->out_cap = cap;
  }
  memcpy(x->out + x->out_len, p, n);
  x->out_len += n;
  return 0;
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void out_write(lm__conn_t *k) {
  conn_x_t *x = X(k);
  if (x->out_len == 0 || k->state == LM__CONN_DEAD)
    return;
  uv_write_t *w = malloc(sizeof *w + x->out_len);
  if (!w) {
    lm__conn_fail(k, LM_ETCD_ENOMEM, "out of memory");
    return;
  }
  memcpy(w + 1, x->out, x->out_len);
  uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)x->out_len);
  k->c->st.bytes_sent += x->out_len;
  x->out_len = 0;
  int e = uv_write(w, (uv_stream_t *)&k->tcp, &b, 1, on_written);
  if (e) {
    free(w);
    lm__conn_fail(k, LM_ETCD_ECONNRESET, uv_strerror(e));
  }
}

static void tls_pump_out(lm__conn_t *k) {
  uint8_t buf[16384];
  int n;
  while ((n = BIO_read(k->wbio, buf, sizeof buf)) > 0)
    if (out_add(k, buf, (size_t)n))
      return;
}

static void conn_check_done(lm__conn_t *k) {
  if (k->state != LM__CONN_READY)
    return;
  if (k->goaway && k->nstreams <= 0) {
    lm__conn_fail(k, LM_ETCD_ECONNRESET, "etcd sent GOAWAY");
    return;
  }
  if (!nghttp2_session_want_read(k->h2) && !nghttp2_session_want_write(k->h2))
    lm__conn_fail(k, k->goaway ? LM_ETCD_ECONNRESET : LM_ETCD_EPROTO,
                  "HTTP/2 session ended (protocol error)");
}

void lm__conn_flush(lm__conn_t *k) {
  if (!k || k->state != LM__CONN_READY || X(k)->in_recv)
    return;
  for (;;) {
    const uint8_t *d;
    ssize_t n = nghttp2_session_mem_send(k->h2, &d);
    if (n < 0) {
      lm__conn_fail(k, LM_ETCD_EPROTO, nghttp2_strerror((int)n));
      return;
    }
    if (n == 0)
      break;
    if (k->tls) {
      if (SSL_write(k->ssl, d, (int)n) <= 0) {
        lm__conn_fail(k, LM_ETCD_ETLS, "SSL_write failed");
        return;
      }
      tls_pump_out(k);
    } else if (out_add(k, d, (size_t)n)) {
      lm__conn_fail(k, LM_ETCD_ENOMEM, "out of memory");
      return;
    }
  }
  out_write(k);
  conn_check_done(k);
}

/* ---- nghttp2 callbacks ---- */

static lm__req_t *stream_req(nghttp2_session *s, int32_t id) {
  return nghttp2_session_get_stream_user_data(s, id);
}

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  (void)src;
  lm__conn_t *k = ud;
  if (k->state == LM__CONN_DEAD)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  lm__req_t *r = stream_req(s, id);
  if (!r) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  size_t avail = r->sendq_len - r->sendoff;
  size_t n = avail < length ? avail : length;
  memcpy(buf, r->sendq + r->sendoff, n);
  r->sendoff += n;
  if (r->sendoff == r->sendq_len) {
    if (r->unary) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else {
      r->sendoff = r->sendq_len = 0;
      if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    }
  }
  return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f,
                     const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  (void)flags;
  lm__conn_t *k = ud;
  if (k->state == LM__CONN_DEAD)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  if (f->hd.type != NGHTTP2_HEADERS)
    return 0;
  lm__req_t *r = stream_req(s, f->hd.stream_id);
  if (!r)
    return 0;
  char v[16];
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
    size_t n = valuelen < sizeof v - 1 ? valuelen : sizeof v - 1;
    memcpy(v, value, n);
    v[n] = 0;
    r->http_status = atoi(v);
  } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
    size_t n = valuelen < sizeof v - 1 ? valuelen : sizeof v - 1;
    memcpy(v, value, n);
    v[n] = 0;
    int st = atoi(v);
    r->grpc_status = (st < 0 || st > 1000) ? 2 /* UNKNOWN */ : st;
  } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
    lm__grpc_message_decode(r->grpc_message, sizeof r->grpc_message, value,
                            valuelen);
  }
  return 0;
}

static void stream_fail(lm__conn_t *k, lm__req_t *r, int err,
                        const char *msg) {
  /* etcd.c detaches (and resets) the stream. */
  (void)k;
  lm__etcd_on_stream_end(r, err, msg);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                   const uint8_t *data, size_t len, void *ud) {
  (void)flags;
  lm__conn_t *k = ud;
  lm_etcd_t *c = k->c;
  if (k->state == LM__CONN_DEAD)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  lm__req_t *r = stream_req(s, id);
  if (!r)
    return 0;
  size_t max = c->max_response_bytes;
  if (len > max + 5 || r->rlen > max + 5 - len) {
    stream_fail(k, r, LM_ETCD_EPROTO, "response larger than the maximum");
    return 0;
  }
  if (r->rlen + len > r->rcap) {
    size_t cap = r->rcap ? r->rcap : 1024;
    while (cap < r->rlen + len)
      cap *= 2;
    uint8_t *b = realloc(r->rbuf, cap);
    if (!b) {
      stream_fail(k, r, LM_ETCD_ENOMEM, "out of memory");
      return 0;
    }
    r->rbuf = b;
    r->rcap = cap;
  }
  memcpy(r->rbuf + r->rlen, data, len);
  r->rlen += len;
  size_t pos = r->unary ? (r->have_msg ? r->msg_off + r->msg_len : 0) : 0;
  for (;;) {
    const uint8_t *m;
    size_t ml;
    long n = lm__grpc_frame(r->rbuf + pos, r->rlen - pos, max, &m, &ml);
    if (n == LM__GRPC_NEED_MORE)
      break;
    if (n < 0) {
      stream_fail(k, r, LM_ETCD_EPROTO,
                  r->rbuf[pos] != 0 ? "compressed or flagged gRPC message"
                                    : "gRPC message larger than the maximum");
      return 0;
    }
    if (r->unary) {
      if (r->have_msg) {
        stream_fail(k, r, LM_ETCD_EPROTO, "more than one response message");
        return 0;
      }
      r->have_msg = 1;
      r->msg_off = pos + 5;
      r->msg_len = ml;
      pos += (size_t)n;
    } else {
      pos += (size_t)n;
      /* r may be finished (and freed) by what the message does: the
       * stream user data says whether it is still ours. */
      lm__etcd_on_message(r, m, ml);
      if (k->state == LM__CONN_DEAD)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      if (stream_req(s, id) != r)
        return 0;
    }
  }
  if (!r->unary && pos > 0) {
    memmove(r->rbuf, r->rbuf + pos, r->rlen - pos);
    r->rlen -= pos;
  }
  return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  lm__conn_t *k = ud;
  if (k->state == LM__CONN_DEAD)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
      (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    /* etcd ended the call while our side is still open (a stream, or a
     * request not yet all sent): the call is over; finishing it resets
     * our side. A fully closed stream ends in on_close. */
    lm__req_t *r = stream_req(s, f->hd.stream_id);
    if (r && nghttp2_session_get_stream_local_close(s, f->hd.stream_id) == 0) {
      char msg[96];
      int err = 0;
      msg[0] = 0;
      if (r->grpc_status < 0 && r->http_status != 200) {
        err = LM_ETCD_EPROTO;
        snprintf(msg, sizeof msg, "HTTP status %d without grpc-status",
                 r->http_status);
      }
      lm__etcd_on_stream_end(r, err, msg);
    }
  } else if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
    k->ping_deadline = 0;
  } else if (f->hd.type == NGHTTP2_GOAWAY) {
    k->goaway = 1;
    k->goaway_last = f->goaway.last_stream_id;
    lm__etcd_logf(k->c, 1, "etcd %s:%d sent GOAWAY (last stream %d, code %u)",
                  k->host, k->port, (int)f->goaway.last_stream_id,
                  f->goaway.error_code);
  }
  return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  lm__conn_t *k = ud;
  k->nstreams--;
  if (k->state == LM__CONN_DEAD)
    return 0;
  lm__req_t *r = stream_req(s, id);
  if (!r)
    return 0;
  nghttp2_session_set_stream_user_data(s, id, NULL);
  r->stream_id = 0;
  r->conn = NULL;
  char msg[96];
  int err = 0;
  if (code == NGHTTP2_REFUSED_STREAM) {
    err = LM_ETCD_ECONNRESET;
    snprintf(msg, sizeof msg, "stream refused by etcd (GOAWAY)");
  } else if (code != NGHTTP2_NO_ERROR) {
    err = LM_ETCD_ECONNRESET;
    snprintf(msg, sizeof msg, "stream reset by etcd (%s)",
             nghttp2_http2_strerror(code));
  } else if (r->grpc_status < 0 && r->http_status != 200) {
    err = LM_ETCD_EPROTO;
    snprintf(msg, sizeof msg, "HTTP status %d without grpc-status",
             r->http_status);
  } else {
    msg[0] = 0;
  }
  lm__etcd_on_stream_end(r, err, msg);
  return 0;
}

/* ---- the session ---- */

static void session_start(lm__conn_t *k) {
  lm_etcd_t *c = k->c;
  nghttp2_session_callbacks *cbs;
  if (nghttp2_session_callbacks_new(&cbs)) {
    lm__conn_fail(k, LM_ETCD_ENOMEM, "out of memory");
    return;
  }
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
  int e = nghttp2_session_client_new(&k->h2, cbs, k);
  nghttp2_session_callbacks_del(cbs);
  if (e) {
    k->h2 = NULL;
    lm__conn_fail(k, LM_ETCD_ENOMEM, nghttp2_strerror(e));
    return;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
  };
  nghttp2_submit_settings(k->h2, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(k->h2, NGHTTP2_FLAG_NONE, 0, 4u << 20);
  k->state = LM__CONN_READY;
  k->dial_deadline = 0;
  if (c->ever_ready)
    c->st.reconnects++;
  c->ever_ready = 1;
  k->ping_due = uv_now(c->loop) + c->ping_interval_ms;
  lm__etcd_logf(c, 2, "connected to etcd %s:%d%s", k->host, k->port,
                k->tls ? " (TLS)" : "");
  lm__etcd_conn_ready(c);
  lm__conn_flush(k);
}

static void tls_error(lm__conn_t *k, const char *what) {
  char msg[256];
  unsigned long e = ERR_get_error();
  long v = SSL_get_verify_result(k->ssl);
  if (v != X509_V_OK)
    snprintf(msg, sizeof msg, "%s: certificate: %s", what,
             X509_verify_cert_error_string(v));
  else if (e)
    snprintf(msg, sizeof msg, "%s: %s", what, ERR_reason_error_string(e));
  else
    snprintf(msg, sizeof msg, "%s", what);
  ERR_clear_error();
  lm__conn_fail(k, LM_ETCD_ETLS, msg);
}

static void tls_handshake(lm__conn_t *k) {
  int r = SSL_do_handshake(k->ssl);
  tls_pump_out(k);
  out_write(k);
  if (k->state == LM__CONN_DEAD)
    return;
  if (r == 1) {
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(k->ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
      lm__conn_fail(k, LM_ETCD_ETLS, "etcd did not agree to ALPN h2");
      return;
    }
    session_start(k);
    return;
  }
  int e = SSL_get_error(k->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return;
  tls_error(k, "TLS handshake failed");
}

static void feed(lm__conn_t *k, const uint8_t *p, size_t n) {
  X(k)->in_recv = 1;
  ssize_t r = nghttp2_session_mem_recv(k->h2, p, n);
  X(k)->in_recv = 0;
  if (k->state == LM__CONN_DEAD)
    return;
  if (r < 0)
    lm__conn_fail(k, LM_ETCD_EPROTO, nghttp2_strerror((int)r));
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  conn_x_t *x = h->data;
  *b = uv_buf_init(x->rd, sizeof x->rd);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  lm__conn_t *k = st->data;
  if (k->state == LM__CONN_DEAD || nread == 0)
    return;
  if (nread < 0) {
    lm__conn_fail(k, k->state == LM__CONN_READY ? LM_ETCD_ECONNRESET
                                                : LM_ETCD_ECONNECT,
                  nread == UV_EOF ? "etcd closed the connection"
                                  : uv_strerror((int)nread));
    return;
  }
  k->c->st.bytes_received += (uint64_t)nread;
  if (!k->tls) {
    feed(k, (const uint8_t *)b->base, (size_t)nread);
  } else {
    if (BIO_write(k->rbio, b->base, (int)nread) != (int)nread) {
      lm__conn_fail(k, LM_ETCD_ENOMEM, "BIO_write failed");
      return;
    }
    if (k->state == LM__CONN_TLS)
      tls_handshake(k);
    while (k->state == LM__CONN_READY) {
      uint8_t buf[16384];
      int n = SSL_read(k->ssl, buf, sizeof buf);
      if (n > 0) {
        feed(k, buf, (size_t)n);
        continue;
      }
      int e = SSL_get_error(k->ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        break;
      if (e == SSL_ERROR_ZERO_RETURN)
        lm__conn_fail(k, LM_ETCD_ECONNRESET, "etcd closed the TLS session");
      else
        tls_error(k, "TLS read failed");
      return;
    }
    if (k->state != LM__CONN_DEAD) {
      tls_pump_out(k);
      out_write(k);
    }
  }
  lm__conn_flush(k);
}

static int tls_setup(lm__conn_t *k) {
  lm_etcd_t *c = k->c;
  k->ssl = SSL_new(c->ssl_ctx);
  if (!k->ssl)
    return LM_ETCD_ENOMEM;
  k->rbio = BIO_new(BIO_s_mem());
  k->wbio = BIO_new(BIO_s_mem());
  if (!k->rbio || !k->wbio) {
    BIO_free(k->rbio);
    BIO_free(k->wbio);
    k->rbio = k->wbio = NULL;
    return LM_ETCD_ENOMEM;
  }
  SSL_set_bio(k->ssl, k->rbio, k->wbio);
  struct sockaddr_in6 a6;
  struct sockaddr_in a4;
  int is_ip = uv_ip4_addr(k->host, 0, &a4) == 0 ||
              uv_ip6_addr(k->host, 0, &a6) == 0;
  if (is_ip) {
    if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl), k->host))
      return LM_ETCD_ETLS;
  } else {
    SSL_set_tlsext_host_name(k->ssl, k->host);
    if (!SSL_set1_host(k->ssl, k->host))
      return LM_ETCD_ETLS;
  }
  SSL_set_connect_state(k->ssl);
  return 0;
}

static void on_connect(uv_connect_t *req, int status) {
  lm__conn_t *k = req->data;
  if (status == UV_ECANCELED || k->state == LM__CONN_DEAD)
    return;
  if (status < 0) {
    lm__conn_fail(k, LM_ETCD_ECONNECT, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&k->tcp, 1);
  int e = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
  if (e) {
    lm__conn_fail(k, LM_ETCD_ECONNECT, uv_strerror(e));
    return;
  }
  if (k->tls) {
    k->state = LM__CONN_TLS;
    e = tls_setup(k);
    if (e) {
      lm__conn_fail(k, e, "TLS set-up failed");
      return;
    }
    tls_handshake(k);
  } else {
    session_start(k);
  }
}

static void on_tcp_closed(uv_handle_t *h) {
  lm__conn_t *k = h->data;
  lm_etcd_t *c = k->c;
  if (k->h2)
    nghttp2_session_del(k->h2);
  if (k->ssl)
    SSL_free(k->ssl);
  free(X(k)->out);
  free(k);
  lm__etcd_handle_closed(c);
}

/* "http://H:P" or "https://H:P" (H an address or "localhost"; [v6]). */
static int parse_endpoint(const char *ep, lm__conn_t *k, struct sockaddr_storage *sa) {
  const char *p;
  if (strncmp(ep, "http://", 7) == 0) {
    k->tls = 0;
    p = ep + 7;
  } else if (strncmp(ep, "https://", 8) == 0) {
    k->tls = 1;
    p = ep + 8;
  } else {
    return LM_ETCD_EINVAL;
  }
  const char *colon;
  size_t hl;
  if (*p == '[') {
    const char *close = strchr(p, ']');
    if (!close || close[1] != ':')
      return LM_ETCD_EINVAL;
    hl = (size_t)(close - p - 1);
    if (hl >= sizeof k->host)
      return LM_ETCD_EINVAL;
    memcpy(k->host, p + 1, hl);
    colon = close + 1;
  } else {
    colon = strrchr(p, ':');
    if (!colon)
      return LM_ETCD_EINVAL;
    hl = (size_t)(colon - p);
    if (hl == 0 || hl >= sizeof k->host)
      return LM_ETCD_EINVAL;
    memcpy(k->host, p, hl);
  }
  k->host[hl] = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  while (*end == '/')
    end++;
  if (port <= 0 || port > 65535 || *end)
    return LM_ETCD_EINVAL;
  k->port = (int)port;
  const char *ip = strcmp(k->host, "localhost") == 0 ? "127.0.0.1" : k->host;
  if (uv_ip4_addr(ip, k->port, (struct sockaddr_in *)sa) == 0)
    return 0;
  if (uv_ip6_addr(ip, k->port, (struct sockaddr_in6 *)sa) == 0)
    return 0;
  return LM_ETCD_EINVAL;
}

int lm__etcd_endpoint_ok(const char *ep) {
  conn_x_t x;
  struct sockaddr_storage sa;
  memset(&x, 0, sizeof x);
  return parse_endpoint(ep, &x.k, &sa);
}

void lm__conn_ensure(lm_etcd_t *c) {
  if (c->conn || c->closing)
    return;
  conn_x_t *x = calloc(1, sizeof *x);
  if (!x)
    return; /* the requests time out */
  lm__conn_t *k = &x->k;
  k->c = c;
  k->state = LM__CONN_TCP;
  struct sockaddr_storage sa;
  const char *ep = c->endpoints[c->ep % c->nendpoints];
  int perr = parse_endpoint(ep, k, &sa);
  int e = uv_tcp_init(c->loop, &k->tcp);
  if (e) {
    free(x);
    return;
  }
  k->tcp.data = k;
  k->connect.data = k;
  c->handles++;
  c->conn = k;
  k->dial_deadline = uv_now(c->loop) + c->dial_timeout_ms;
  lm__etcd_logf(c, 3, "connecting to %s", ep);
  if (perr == 0)
    e = uv_tcp_connect(&k->connect, &k->tcp, (struct sockaddr *)&sa,
                       on_connect);
  if (perr || e)
    k->dial_deadline = uv_now(c->loop); /* fails from the timer */
  lm__etcd_rearm(c);
}

int lm__conn_start_stream(lm__conn_t *k, lm__req_t *r) {
  lm_etcd_t *c = k->c;
  char authority[300];
  snprintf(authority, sizeof authority, "%s:%d", k->host, k->port);
#define NV(n, v)                                                               \
  {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                   \
   NGHTTP2_NV_FLAG_NONE}
  nghttp2_nv hdrs[8] = {
      NV(":method", "POST"),
      NV(":scheme", k->tls ? "https" : "http"),
      NV(":path", r->path),
      NV(":authority", authority),
      NV("content-type", "application/grpc"),
      NV("te", "trailers"),
      NV("hasleader", "true"),
      NV("token", c->token ? c->token : ""),
  };
#undef NV
  size_t n = (c->token && r->kind != LM__REQ_AUTH) ? 8 : 7;
  nghttp2_data_provider dp;
  dp.source.ptr = r;
  dp.read_callback = data_read;
  int32_t id = nghttp2_submit_request(k->h2, NULL, hdrs, n, &dp, r);
  if (id < 0)
    return id == NGHTTP2_ERR_NOMEM ? LM_ETCD_ENOMEM : LM_ETCD_ECONNRESET;
  r->stream_id = id;
  r->conn = k;
  k->nstreams++;
  return 0;
}

void lm__conn_resume(lm__conn_t *k, lm__req_t *r) {
  if (k->state == LM__CONN_READY && r->stream_id > 0)
    nghttp2_session_resume_data(k->h2, r->stream_id);
}

void lm__conn_reset_stream(lm__conn_t *k, lm__req_t *r) {
  if (r->stream_id > 0 && k->h2) {
    nghttp2_session_set_stream_user_data(k->h2, r->stream_id, NULL);
    if (k->state == LM__CONN_READY)
      nghttp2_submit_rst_stream(k->h2, NGHTTP2_FLAG_NONE, r->stream_id,
                                NGHTTP2_CANCEL);
  }
  r->stream_id = 0;
  r->conn = NULL;
}

void lm__conn_fail(lm__conn_t *k, int err, const char *msg) {
  if (k->state == LM__CONN_DEAD)
    return;
  lm_etcd_t *c = k->c;
  k->state = LM__CONN_DEAD;
  lm__etcd_logf(c, 1, "etcd connection %s:%d: %s (%s)", k->host, k->port,
                msg ? msg : "", lm_etcd_err_name(err));
  uv_close((uv_handle_t *)&k->tcp, on_tcp_closed);
  if (c->conn == k)
    c->conn = NULL;
  lm__etcd_conn_failed(c, k, err, msg);
}

uint64_t lm__conn_next_deadline(const lm__conn_t *k) {
  uint64_t d = UINT64_MAX;
  if (k->state == LM__CONN_DEAD)
    return d;
  if (k->dial_deadline)
    d = k->dial_deadline;
  if (k->state == LM__CONN_READY) {
    if (k->ping_deadline && k->ping_deadline < d)
      d = k->ping_deadline;
    if (!k->ping_deadline && k->ping_due && k->ping_due < d)
      d = k->ping_due;
  }
  return d;
}

void lm__conn_on_timer(lm__conn_t *k, uint64_t now) {
  lm_etcd_t *c = k->c;
  if (k->state == LM__CONN_DEAD)
    return;
  if (k->dial_deadline && k->dial_deadline <= now) {
    lm__conn_fail(k, LM_ETCD_ECONNECT, "cannot connect (dial timeout or bad endpoint)");
    return;
  }
  if (k->state != LM__CONN_READY)
    return;
  if (k->ping_deadline && k->ping_deadline <= now) {
    lm__conn_fail(k, LM_ETCD_ECONNRESET, "HTTP/2 ping unanswered");
    return;
  }
  if (!k->ping_deadline && k->ping_due && k->ping_due <= now) {
    lm__etcd_logf(c, 3, "ping %s:%d", k->host, k->port);
    if (nghttp2_submit_ping(k->h2, NGHTTP2_FLAG_NONE, NULL) == 0)
      k->ping_deadline = now + c->request_timeout_ms;
    k->ping_due = now + c->ping_interval_ms;
    lm__conn_flush(k);
  }
}
