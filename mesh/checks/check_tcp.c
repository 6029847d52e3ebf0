/*
 * check_tcp.c: TCP connect checks. A numeric address is connected at once;
 * a name is resolved on libuv's thread pool first. Up when the connection
 * is established within the timeout, which covers resolving and
 * connecting; the connection is closed at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"

static void run_unpend(run_t *r) {
  if (--r->pending == 0)
    lm__chk_run_free(r);
}

static void tcp_closed(uv_handle_t *h) { run_unpend(h->data); }

static void close_tcp(run_t *r) {
  if (r->u.tcp.tcp_open) {
    r->u.tcp.tcp_open = 0;
    uv_close((uv_handle_t *)&r->u.tcp.tcp, tcp_closed);
  }
}

static void finish(run_t *r, lm__check_result_t res, const char *out) {
  close_tcp(r);
  lm__chk_run_done(r, res, out);
}

static void on_connect(uv_connect_t *req, int status) {
  run_t *r = req->data;
  if (!r->finished) {
    lm__check_t *k = r->check;
    char out[LM__CHECK_ADDR_MAX + 64];
    if (status == 0)
      snprintf(out, sizeof(out), "TCP connect %s:%s: success", k->host,
               k->port);
    else
      snprintf(out, sizeof(out), "TCP connect %s:%s: %s", k->host, k->port,
               uv_strerror(status));
    finish(r, status == 0 ? LM__CHECK_OK : LM__CHECK_FAIL, out);
  }
  run_unpend(r);
}

static int connect_to(run_t *r, const struct sockaddr *sa) {
  lm__check_t *k = r->check;
  int rc = uv_tcp_init(k->c->loop, &r->u.tcp.tcp);
  if (rc != 0)
    return rc;
  r->u.tcp.tcp.data = r;
  r->u.tcp.tcp_open = 1;
  r->pending++;
  r->u.tcp.conn.data = r;
  rc = uv_tcp_connect(&r->u.tcp.conn, &r->u.tcp.tcp, sa, on_connect);
  if (rc != 0)
    return rc; /* the caller closes the handle */
  r->pending++;
  return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  run_t *r = req->data;
  if (!r->finished) {
    lm__check_t *k = r->check;
    char out[LM__CHECK_ADDR_MAX + 64];
    int rc = status;
    if (rc == 0)
      rc = res != NULL ? connect_to(r, res->ai_addr) : UV_EAI_NONAME;
    if (rc != 0) {
      snprintf(out, sizeof(out), "TCP resolve %s: %s", k->host,
               uv_strerror(rc));
      finish(r, LM__CHECK_FAIL, out);
    }
  }
  uv_freeaddrinfo(res);
  run_unpend(r);
}

static void on_timeout(uv_timer_t *t) {
  lm__check_t *k = t->data;
  run_t *r = k->run;
  if (r == NULL)
    return;
  char ms[32], out[64];
  lm__chk_fmt_ms(ms, sizeof(ms), k->timeout_ms);
  snprintf(out, sizeof(out), "timed out after %s", ms);
  uv_cancel((uv_req_t *)&r->u.tcp.gai); /* the callback still comes */
  finish(r, LM__CHECK_TIMEOUT, out);
}

int lm__chk_tcp_start(run_t *r) {
  lm__check_t *k = r->check;
  struct sockaddr_storage ss;
  int port = atoi(k->port), rc;
  r->pending = 1; /* held while starting */
  if (uv_ip4_addr(k->host, port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(k->host, port, (struct sockaddr_in6 *)&ss) == 0) {
    rc = connect_to(r, (struct sockaddr *)&ss);
  } else {
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    r->u.tcp.gai.data = r;
    rc = uv_getaddrinfo(k->c->loop, &r->u.tcp.gai, on_resolved, k->host,
                        k->port, &hints);
    if (rc == 0)
      r->pending++;
  }
  if (rc != 0) {
    /* Leave nothing open: a closing handle finishes on its own. */
    close_tcp(r);
    r->pending--;
    return rc;
  }
  r->pending--;
  uv_timer_start(&k->timer, on_timeout, k->timeout_ms, 0);
  return 0;
}

void lm__chk_tcp_abort(run_t *r) {
  r->pending++;
  uv_cancel((uv_req_t *)&r->u.tcp.gai);
  close_tcp(r);
  run_unpend(r);
}
