/*
 * check_http.c: HTTP GET checks through libcurl's multi socket interface,
 * driven by the checker's loop: a uv_poll_t per socket curl asks us to
 * watch (CURLMOPT_SOCKETFUNCTION) and one uv_timer_t for curl's timeouts
 * (CURLMOPT_TIMERFUNCTION). One CURLM per checker, created with its first
 * http check. 2xx and 3xx are up; redirects are not followed; every run
 * opens a fresh connection, and proxies from the environment are ignored,
 * so the check sees the service, not a cached connection or a proxy.
 *
 * libcurl is loaded (curl_dl.h) with the first http check (check.c's URL
 * validation, or its first run), not before: a process whose checks are
 * never http ones never maps it. If it cannot be loaded, each run fails
 * with the loader's reason as its output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"

typedef struct sock {
  uv_poll_t poll;
  lm__checker_t *c;
  curl_socket_t fd;
} sock_t;

static void sock_closed(uv_handle_t *h) {
  sock_t *s = h->data;
  lm__checker_t *c = s->c;
  free(s);
  c->handles--;
  lm__chk_checker_maybe_done(c);
}

/* Every finished transfer: its verdict. Called outside any curl call, so
 * the callbacks it runs may add or remove transfers. */
static void drain(lm__checker_t *c) {
  const lm__curl_t *cu = c->cu;
  CURLMsg *m;
  int left;
  while (c->multi != NULL && !c->closing &&
         (m = cu->multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *e = m->easy_handle;
    CURLcode res = m->data.result;
    void *priv = NULL;
    cu->easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    run_t *r = priv;
    long code = 0;
    char out[CURL_ERROR_SIZE + 32];
    lm__check_result_t rr;
    if (res == CURLE_OK) {
      cu->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
      snprintf(out, sizeof(out), "HTTP %ld", code);
      rr = code >= 200 && code < 400 ? LM__CHECK_OK : LM__CHECK_FAIL;
    } else {
      rr = res == CURLE_OPERATION_TIMEDOUT ? LM__CHECK_TIMEOUT : LM__CHECK_FAIL;
      snprintf(out, sizeof(out), "%s",
               r->u.http.errbuf[0] ? r->u.http.errbuf : cu->easy_strerror(res));
    }
    cu->multi_remove_handle(c->multi, e);
    cu->easy_cleanup(e);
    r->u.http.easy = NULL;
    lm__chk_run_done(r, rr, out);
    lm__chk_run_free(r);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_t *s = h->data;
  lm__checker_t *c = s->c;
  const lm__curl_t *cu = c->cu;
  int flags = 0, running = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  cu->multi_socket_action(c->multi, s->fd, flags, &running);
  drain(c);
}

static void on_curl_timeout(uv_timer_t *t) {
  lm__checker_t *c = t->data;
  const lm__curl_t *cu = c->cu;
  int running = 0;
  if (c->multi == NULL)
    return;
  cu->multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain(c);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp,
                     void *socketp) {
  lm__checker_t *c = userp;
  const lm__curl_t *cu = c->cu;
  sock_t *s = socketp;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, sock_closed);
      if (!c->multi_closing)
        cu->multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (s == NULL) {
    if (c->multi_closing || (s = calloc(1, sizeof(*s))) == NULL)
      return -1;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->c = c;
    s->fd = fd;
    s->poll.data = s;
    c->handles++;
    cu->multi_assign(c->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN)
    ev |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    ev |= UV_WRITABLE;
  return uv_poll_start(&s->poll, ev, on_poll) == 0 ? 0 : -1;
}

static int on_timer_set(CURLM *m, long ms, void *userp) {
  lm__checker_t *c = userp;
  (void)m;
  if (c->closing)
    return 0; /* the timer is closing; nothing runs any more */
  if (ms < 0)
    uv_timer_stop(&c->curl_timer);
  else
    uv_timer_start(&c->curl_timer, on_curl_timeout, (uint64_t)ms, 0);
  return 0;
}

/* The multi handle, once libcurl is loaded (the caller checked c->cu). */
static int ensure_multi(lm__checker_t *c) {
  const lm__curl_t *cu = c->cu;
  if (c->multi != NULL)
    return 0;
  if ((c->multi = cu->multi_init()) == NULL)
    return LM__CHECK_ENOMEM;
  cu->multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  cu->multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  cu->multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
  cu->multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return size * n;
}

int lm__chk_http_start(run_t *r) {
  lm__check_t *k = r->check;
  lm__checker_t *c = k->c;
  if (c->cu == NULL && (c->cu = lm__curl_load()) == NULL) {
    /* libcurl is missing (or unusable): the check fails with the reason,
     * every run, and the loop goes on. */
    const char *why = lm__curl_error();
    lm__chk_run_done(r, LM__CHECK_FAIL, why ? why : "libcurl not loaded");
    lm__chk_run_free(r);
    return 0;
  }
  const lm__curl_t *cu = c->cu;
  int rc = ensure_multi(c);
  if (rc != 0)
    return rc;
  CURL *e = cu->easy_init();
  if (e == NULL)
    return LM__CHECK_ENOMEM;
  r->u.http.errbuf[0] = '\0';
  cu->easy_setopt(e, CURLOPT_URL, k->url);
  cu->easy_setopt(e, CURLOPT_PRIVATE, (void *)r);
  cu->easy_setopt(e, CURLOPT_ERRORBUFFER, r->u.http.errbuf);
  cu->easy_setopt(e, CURLOPT_HTTPGET, 1L);
  cu->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  cu->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)k->timeout_ms);
  cu->easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  cu->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  cu->easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  cu->easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  cu->easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  cu->easy_setopt(e, CURLOPT_PROXY, "");
  cu->easy_setopt(e, CURLOPT_USERAGENT, "livemesh-check");
  cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  if (k->tls_skip_verify) {
    cu->easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    cu->easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (cu->multi_add_handle(c->multi, e) != CURLM_OK) {
    cu->easy_cleanup(e);
    return LM__CHECK_ENOMEM;
  }
  r->u.http.easy = e;
  return 0;
}

void lm__chk_http_abort(run_t *r) {
  lm__checker_t *c = r->check->c;
  const lm__curl_t *cu = c->cu;
  if (r->u.http.easy != NULL) {
    cu->multi_remove_handle(c->multi, r->u.http.easy);
    cu->easy_cleanup(r->u.http.easy);
    r->u.http.easy = NULL;
  }
  lm__chk_run_free(r);
}

const char *lm__check_http_unavailable(void) { return lm__curl_error(); }

/* The multi handle goes; libcurl itself stays loaded and initialized for
 * the process (curl_dl.h), for other checkers and later ones. */
void lm__chk_http_close(lm__checker_t *c) {
  c->multi_closing = 1;
  if (c->multi != NULL) {
    c->cu->multi_cleanup(c->multi);
    c->multi = NULL;
  }
}
