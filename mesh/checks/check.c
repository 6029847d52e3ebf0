/*
 * check.c: the checker (run queue, concurrency bound, thresholds,
 * counters, lifetimes), validation and ttl checks. Each other kind lives
 * in its own file. (Durations are parsed in one place, the agent's
 * svc_json.c: specs reach this module in milliseconds.)
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check_internal.h"

#define ERR_ENTRY(n, v, s) case v: return s;
const char *lm__check_strerror(int err) {
  switch (err) {
    LM__CHECK_ERRNO_MAP(ERR_ENTRY)
  default:
    break;
  }
  if (err < 0)
    return uv_strerror(err);
  return "success";
}
#undef ERR_ENTRY

const char *lm__check_result_name(lm__check_result_t r) {
  switch (r) {
  case LM__CHECK_OK: return "ok";
  case LM__CHECK_FAIL: return "fail";
  case LM__CHECK_TIMEOUT: return "timeout";
  }
  return "unknown";
}

const char *lm__check_kind_name(lm_check_kind_t k) {
  switch (k) {
  case LM_CHECK_TTL: return "ttl";
  case LM_CHECK_PROCESS: return "process";
  case LM_CHECK_HTTP: return "http";
  case LM_CHECK_TCP: return "tcp";
  case LM_CHECK_EXEC: return "exec";
  }
  return "unknown";
}

void lm__chk_fmt_ms(char *out, size_t cap, uint64_t ms) {
  if (ms != 0 && ms % 3600000 == 0)
    snprintf(out, cap, "%lluh", (unsigned long long)(ms / 3600000));
  else if (ms != 0 && ms % 60000 == 0)
    snprintf(out, cap, "%llum", (unsigned long long)(ms / 60000));
  else if (ms != 0 && ms % 1000 == 0)
    snprintf(out, cap, "%llus", (unsigned long long)(ms / 1000));
  else
    snprintf(out, cap, "%llums", (unsigned long long)ms);
}

/* ---- validation ---- */

static int fail_at(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(char *err, size_t cap, int code, const char *fmt, ...) {
  if (err != NULL && cap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int has_ctl_or_space(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f)
      return 1;
  return 0;
}

/* http:// or https://, a host, an optional port; curl's parser decides the
 * rest so what we accept is what curl will fetch. That loads libcurl
 * (curl_dl.h): validating an http check is the step before running one.
 * Where libcurl cannot be loaded, the checks above are all there is, and
 * the check's runs fail with the loader's reason: a host without libcurl
 * still registers the service, shown down and saying why. */
static int check_url(const char *url, char *err, size_t cap) {
  if (url == NULL || url[0] == '\0')
    return fail_at(err, cap, LM__CHECK_EINVAL, "url: missing");
  if (strlen(url) > LM__CHECK_URL_MAX)
    return fail_at(err, cap, LM__CHECK_EINVAL, "url: longer than %d bytes",
                   LM__CHECK_URL_MAX);
  if (has_ctl_or_space(url))
    return fail_at(err, cap, LM__CHECK_EINVAL,
                   "url: contains spaces or control characters");
  if (strncasecmp(url, "http://", 7) != 0 &&
      strncasecmp(url, "https://", 8) != 0)
    return fail_at(err, cap, LM__CHECK_EINVAL,
                   "url: must start with http:// or https://");
  /* curl would read "http:///x" as host "x" */
  const char *auth = strstr(url, "://") + 3;
  if (*auth == '\0' || *auth == '/' || *auth == '?' || *auth == '#' ||
      *auth == ':' || *auth == '@')
    return fail_at(err, cap, LM__CHECK_EINVAL, "url: no host");
  const lm__curl_t *cu = lm__curl_load();
  if (cu == NULL)
    return 0;
  CURLU *u = cu->url();
  if (u == NULL)
    return fail_at(err, cap, LM__CHECK_ENOMEM, "url: out of memory");
  int rc = 0;
  CURLUcode uc = cu->url_set(u, CURLUPART_URL, url, 0);
  char *host = NULL, *port = NULL;
  if (uc != CURLUE_OK) {
    rc = fail_at(err, cap, LM__CHECK_EINVAL, "url: %s", cu->url_strerror(uc));
  } else if (cu->url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
             host == NULL || host[0] == '\0') {
    rc = fail_at(err, cap, LM__CHECK_EINVAL, "url: no host");
  } else if (cu->url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
             port != NULL && strcmp(port, "0") == 0) {
    rc = fail_at(err, cap, LM__CHECK_EINVAL, "url: port 0");
  }
  cu->free(host);
  cu->free(port);
  cu->url_cleanup(u);
  return rc;
}

/* HOST:PORT or [V6]:PORT into host and port strings (malloc'd). */
static int split_addr(const char *addr, char **host, char **port, char *err,
                      size_t cap) {
  if (addr == NULL || addr[0] == '\0')
    return fail_at(err, cap, LM__CHECK_EINVAL, "addr: missing");
  if (strlen(addr) > LM__CHECK_ADDR_MAX || has_ctl_or_space(addr))
    return fail_at(err, cap, LM__CHECK_EINVAL,
                   "addr: \"%.64s\" is not HOST:PORT", addr);
  const char *hs, *he, *colon;
  if (addr[0] == '[') {
    hs = addr + 1;
    he = strchr(hs, ']');
    if (he == NULL || he[1] != ':')
      return fail_at(err, cap, LM__CHECK_EINVAL,
                     "addr: \"%.64s\" is not [V6]:PORT", addr);
    colon = he + 1;
  } else {
    hs = addr;
    colon = strrchr(addr, ':');
    if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL)
      return fail_at(err, cap, LM__CHECK_EINVAL,
                     "addr: \"%.64s\" is not HOST:PORT (IPv6 goes in [])",
                     addr);
    he = colon;
  }
  size_t hlen = (size_t)(he - hs);
  if (hlen == 0 || hlen > 253)
    return fail_at(err, cap, LM__CHECK_EINVAL, "addr: \"%.64s\" has no host",
                   addr);
  const char *ps = colon + 1;
  size_t plen = strlen(ps);
  unsigned long pv = 0;
  if (plen == 0 || plen > 5)
    return fail_at(err, cap, LM__CHECK_EINVAL,
                   "addr: port of \"%.64s\" must be 1..65535", addr);
  for (size_t i = 0; i < plen; i++) {
    if (!isdigit((unsigned char)ps[i]))
      return fail_at(err, cap, LM__CHECK_EINVAL,
                     "addr: port of \"%.64s\" must be 1..65535", addr);
    pv = pv * 10 + (unsigned long)(ps[i] - '0');
  }
  if (pv == 0 || pv > 65535)
    return fail_at(err, cap, LM__CHECK_EINVAL,
                   "addr: port of \"%.64s\" must be 1..65535", addr);
  if (host == NULL)
    return 0;
  *host = strndup(hs, hlen);
  *port = strdup(ps);
  if (*host == NULL || *port == NULL) {
    free(*host);
    free(*port);
    return fail_at(err, cap, LM__CHECK_ENOMEM, "addr: out of memory");
  }
  return 0;
}

static int check_ms(const char *field, uint64_t v, char *err, size_t cap) {
  if (v == 0)
    return fail_at(err, cap, LM__CHECK_EINVAL, "%s: must be > 0", field);
  if (v > LM__CHECK_MS_MAX)
    return fail_at(err, cap, LM__CHECK_EINVAL, "%s: more than 7 days", field);
  return 0;
}

int lm__check_validate(const lm__checker_t *c, const lm__check_spec_t *spec,
                       char *err, size_t errcap) {
  if (err != NULL && errcap > 0)
    err[0] = '\0';
  if (c == NULL || spec == NULL)
    return fail_at(err, errcap, LM__CHECK_EINVAL, "spec: missing");
  if (c->closing)
    return fail_at(err, errcap, LM__CHECK_ECLOSING, "checker: closing");
  if (spec->initial != LM__CHECK_INITIAL_DEFAULT &&
      spec->initial != LM__CHECK_INITIAL_UP &&
      spec->initial != LM__CHECK_INITIAL_DOWN)
    return fail_at(err, errcap, LM__CHECK_EINVAL, "initial: unknown value %d",
                   (int)spec->initial);
  int rc;
  switch (spec->kind) {
  case LM_CHECK_TTL:
    return check_ms("ttl_ms", spec->ttl_ms, err, errcap);
  case LM_CHECK_PROCESS:
    if (spec->pid <= 0)
      return fail_at(err, errcap, LM__CHECK_EINVAL, "pid: must be > 0, got %d",
                     spec->pid);
    if (spec->interval_ms > LM__CHECK_MS_MAX)
      return fail_at(err, errcap, LM__CHECK_EINVAL,
                     "interval_ms: more than 7 days");
    return 0;
  case LM_CHECK_HTTP:
  case LM_CHECK_TCP:
  case LM_CHECK_EXEC:
    break;
  default:
    return fail_at(err, errcap, LM__CHECK_EINVAL, "kind: unknown value %d",
                   (int)spec->kind);
  }
  if (spec->kind == LM_CHECK_EXEC && !c->allow_exec)
    return fail_at(err, errcap, LM__CHECK_EEXEC,
                   "kind: exec checks are not allowed (the checker was "
                   "created without allow_exec)");
  if ((rc = check_ms("interval_ms", spec->interval_ms, err, errcap)) != 0 ||
      (rc = check_ms("timeout_ms", spec->timeout_ms, err, errcap)) != 0)
    return rc;
  if (spec->timeout_ms > spec->interval_ms)
    return fail_at(err, errcap, LM__CHECK_EINVAL,
                   "timeout_ms: %llu exceeds interval_ms %llu",
                   (unsigned long long)spec->timeout_ms,
                   (unsigned long long)spec->interval_ms);
  switch (spec->kind) {
  case LM_CHECK_HTTP:
    return check_url(spec->url, err, errcap);
  case LM_CHECK_TCP:
    return split_addr(spec->addr, NULL, NULL, err, errcap);
  default: { /* exec */
    const char *p = spec->command;
    if (p != NULL)
      while (isspace((unsigned char)*p))
        p++;
    if (p == NULL || *p == '\0')
      return fail_at(err, errcap, LM__CHECK_EINVAL, "command: empty");
    if (strlen(spec->command) > LM__CHECK_COMMAND_MAX)
      return fail_at(err, errcap, LM__CHECK_EINVAL,
                     "command: longer than %d bytes", LM__CHECK_COMMAND_MAX);
    return 0;
  }
  }
}

/* ---- the checker ---- */

void lm__chk_checker_maybe_done(lm__checker_t *c) {
  if (!c->closing || c->checks != NULL || c->handles != 0 || c->done_cb == NULL)
    return;
  lm__checker_close_cb cb = c->done_cb;
  void *ud = c->done_ud;
  c->done_cb = NULL;
  free(c);
  cb(ud);
}

static void noop_done(void *ud) { (void)ud; }

int lm__checker_new(lm__checker_t **out, uv_loop_t *loop,
                    const lm__checker_opts_t *opts) {
  if (out == NULL || loop == NULL)
    return LM__CHECK_EINVAL;
  *out = NULL;
  lm__checker_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return LM__CHECK_ENOMEM;
  c->loop = loop;
  c->max_concurrent = LM__CHECK_MAX_CONCURRENT_DEFAULT;
  if (opts != NULL) {
    if (opts->max_concurrent > 0)
      c->max_concurrent = opts->max_concurrent;
    c->allow_exec = opts->allow_exec == 1;
    c->process_poll_only = opts->process_poll_only != 0;
    c->run_cb = opts->run_cb;
    c->run_ud = opts->run_ud;
  }
  int rc = uv_timer_init(loop, &c->curl_timer);
  if (rc != 0) {
    free(c);
    return rc;
  }
  c->curl_timer.data = c;
  c->handles = 1;
  *out = c;
  return 0;
}

static void curl_timer_closed(uv_handle_t *h) {
  lm__checker_t *c = h->data;
  lm__chk_http_close(c); /* may close socket polls: handles stay > 0 */
  c->handles--;
  lm__chk_checker_maybe_done(c);
}

void lm__checker_close(lm__checker_t *c, lm__checker_close_cb done_cb,
                       void *ud) {
  if (c == NULL || c->closing)
    return;
  c->closing = 1;
  c->done_cb = done_cb != NULL ? done_cb : noop_done;
  c->done_ud = ud;
  lm__check_t *k = c->checks;
  while (k != NULL) {
    lm__check_t *next = k->next; /* stop never frees at once */
    lm__check_stop(k);
    k = next;
  }
  uv_close((uv_handle_t *)&c->curl_timer, curl_timer_closed);
}

uint64_t lm__checker_runs(const lm__checker_t *c, lm_check_kind_t kind,
                          lm__check_result_t result) {
  if (c == NULL || (int)kind <= 0 || (int)kind >= KINDS_MAX ||
      (int)result < 0 || (int)result >= LM__CHECK_RESULTS)
    return 0;
  return c->runs[kind][result];
}

unsigned lm__checker_running(const lm__checker_t *c) { return c->running; }
unsigned lm__checker_queued(const lm__checker_t *c) { return c->queued; }

/* ---- lifetimes ---- */

void lm__chk_hold(lm__check_t *k) { k->holds++; }

void lm__chk_release(lm__check_t *k) {
  if (--k->holds > 0)
    return;
  lm__checker_t *c = k->c;
  if (k->prev != NULL)
    k->prev->next = k->next;
  else
    c->checks = k->next;
  if (k->next != NULL)
    k->next->prev = k->prev;
  free(k->url);
  free(k->host);
  free(k->port);
  free(k->command);
  free(k);
  lm__chk_checker_maybe_done(c);
}

static void check_handle_closed(uv_handle_t *h) { lm__chk_release(h->data); }

void lm__chk_run_free(run_t *r) {
  lm__check_t *k = r->check;
  free(r);
  lm__chk_release(k);
}

/* ---- verdicts ---- */

static void set_output(lm__check_t *k, const char *s) {
  if (s == NULL)
    s = "";
  if (s == k->output)
    return;
  size_t n = strnlen(s, LM_CHECK_OUTPUT_MAX);
  memmove(k->output, s, n);
  k->output[n] = '\0';
}

/* Applies thresholds unless force_status, counts, runs the callbacks. */
void lm__chk_verdict(lm__check_t *k, lm__check_result_t res,
                     const char *output, int force_status,
                     lm_svc_status_t status) {
  lm__checker_t *c = k->c;
  lm_svc_status_t before = k->status;
  set_output(k, output);
  if (force_status) {
    k->status = status;
    k->oks = k->fails = 0;
  } else if (res == LM__CHECK_OK) {
    k->fails = 0;
    if (k->status != LM_SVC_UP && ++k->oks >= k->successes_before_up) {
      k->status = LM_SVC_UP;
      k->oks = 0;
    }
  } else {
    k->oks = 0;
    if (k->status == LM_SVC_UP && ++k->fails >= k->failures_before_down) {
      k->status = LM_SVC_DOWN;
      k->fails = 0;
    }
  }
  c->runs[k->kind][res]++;
  lm__chk_hold(k); /* a callback may stop the check */
  if (c->run_cb != NULL && !k->stopped)
    c->run_cb(k, k->kind, res, c->run_ud);
  if (k->status != before && k->cb != NULL && !k->stopped)
    k->cb(k, k->status, k->output,
          k->kind == LM_CHECK_TTL ? "ttl" : "check", k->ud);
  lm__chk_release(k);
}

/* ---- the run queue ---- */

static void on_due(uv_timer_t *t);

static void run_begin(lm__check_t *k) {
  lm__checker_t *c = k->c;
  run_t *r = calloc(1, sizeof(*r));
  int rc;
  char buf[LM__CHECK_ERR_MAX];
  if (r == NULL) {
    uv_timer_start(&k->timer, on_due, k->interval_ms, 0);
    lm__chk_verdict(k, LM__CHECK_FAIL, "out of memory", 0, LM_SVC_DOWN);
    return;
  }
  r->check = k;
  lm__chk_hold(k);
  k->run = r;
  c->running++;
  switch (k->kind) {
  case LM_CHECK_HTTP: rc = lm__chk_http_start(r); break;
  case LM_CHECK_TCP: rc = lm__chk_tcp_start(r); break;
  default: rc = lm__chk_exec_start(r); break;
  }
  if (rc != 0) {
    snprintf(buf, sizeof(buf), "could not start the check: %s",
             lm__check_strerror(rc));
    lm__chk_run_done(r, LM__CHECK_FAIL, buf);
    if (r->pending == 0)
      lm__chk_run_free(r);
  }
}

static void pump(lm__checker_t *c) {
  if (c->pumping)
    return;
  c->pumping = 1;
  while (!c->closing && c->running < c->max_concurrent && c->q_head != NULL) {
    lm__check_t *k = c->q_head;
    c->q_head = k->q_next;
    if (c->q_head == NULL)
      c->q_tail = NULL;
    k->q_next = NULL;
    k->queued = 0;
    c->queued--;
    run_begin(k);
  }
  c->pumping = 0;
}

static void on_due(uv_timer_t *t) {
  lm__check_t *k = t->data;
  lm__checker_t *c = k->c;
  if (k->stopped || c->closing || k->queued || k->run != NULL)
    return;
  k->due_ms = uv_now(c->loop);
  k->queued = 1;
  if (c->q_tail != NULL)
    c->q_tail->q_next = k;
  else
    c->q_head = k;
  c->q_tail = k;
  c->queued++;
  pump(c);
}

static void unqueue(lm__check_t *k) {
  lm__checker_t *c = k->c;
  lm__check_t **pp = &c->q_head, *prev = NULL;
  while (*pp != NULL && *pp != k) {
    prev = *pp;
    pp = &(*pp)->q_next;
  }
  if (*pp == NULL)
    return;
  *pp = k->q_next;
  if (c->q_tail == k)
    c->q_tail = prev;
  k->q_next = NULL;
  k->queued = 0;
  c->queued--;
}

/* The run is over (the caller frees it once its handles close): frees its
 * slot, gives the verdict and arms the next run interval_ms after this one
 * came due. */
void lm__chk_run_done(run_t *r, lm__check_result_t res, const char *output) {
  if (r->finished)
    return;
  r->finished = 1;
  lm__check_t *k = r->check;
  lm__checker_t *c = k->c;
  k->run = NULL;
  c->running--;
  if (!k->stopped && !c->closing) {
    uv_timer_stop(&k->timer);
    uint64_t now = uv_now(c->loop);
    uint64_t spent = now - k->due_ms;
    uint64_t wait = spent >= k->interval_ms ? 0 : k->interval_ms - spent;
    uv_timer_start(&k->timer, on_due, wait, 0);
    lm__chk_verdict(k, res, output, 0, LM_SVC_DOWN);
  }
  pump(c);
}

/* ---- ttl ---- */

static void on_ttl_expired(uv_timer_t *t) {
  lm__check_t *k = t->data;
  char ttl[32], out[96];
  lm__chk_fmt_ms(ttl, sizeof(ttl), k->ttl_ms);
  snprintf(out, sizeof(out), "TTL expired: no pass within %s", ttl);
  lm__chk_verdict(k, LM__CHECK_TIMEOUT, out, 1, LM_SVC_DOWN);
}

int lm__check_pass(lm__check_t *k, const char *note) {
  if (k == NULL || k->stopped)
    return LM__CHECK_EINVAL;
  if (k->kind != LM_CHECK_TTL)
    return LM__CHECK_EKIND;
  uv_timer_start(&k->timer, on_ttl_expired, k->ttl_ms, 0);
  lm__chk_verdict(k, LM__CHECK_OK, note, 1, LM_SVC_UP);
  return 0;
}

int lm__check_fail(lm__check_t *k, const char *note) {
  if (k == NULL || k->stopped)
    return LM__CHECK_EINVAL;
  if (k->kind != LM_CHECK_TTL)
    return LM__CHECK_EKIND;
  /* Stays down until the next pass; the note is not overwritten by an
   * expiry. */
  uv_timer_stop(&k->timer);
  lm__chk_verdict(k, LM__CHECK_FAIL, note, 1, LM_SVC_DOWN);
  return 0;
}

/* ---- start and stop ---- */

int lm__check_start(lm__checker_t *c, const lm__check_spec_t *spec,
                    lm__check_cb cb, void *ud, lm__check_t **out, char *err,
                    size_t errcap) {
  if (out != NULL)
    *out = NULL;
  int rc = lm__check_validate(c, spec, err, errcap);
  if (rc != 0)
    return rc;
  lm__check_t *k = calloc(1, sizeof(*k));
  if (k == NULL)
    return fail_at(err, errcap, LM__CHECK_ENOMEM, "out of memory");
  k->c = c;
  k->kind = spec->kind;
  k->interval_ms = spec->interval_ms;
  k->timeout_ms = spec->timeout_ms;
  k->ttl_ms = spec->ttl_ms;
  k->failures_before_down =
      spec->failures_before_down ? spec->failures_before_down : 1;
  k->successes_before_up =
      spec->successes_before_up ? spec->successes_before_up : 1;
  k->tls_skip_verify = spec->tls_skip_verify != 0;
  k->pid = spec->pid;
  k->pidfd = -1;
  k->cb = cb;
  k->ud = ud;
  if (spec->kind == LM_CHECK_TTL)
    k->status = spec->initial == LM__CHECK_INITIAL_DOWN ? LM_SVC_DOWN
                                                        : LM_SVC_UP;
  else
    k->status = spec->initial == LM__CHECK_INITIAL_UP ? LM_SVC_UP
                                                      : LM_SVC_DOWN;
  if (spec->kind == LM_CHECK_PROCESS && k->interval_ms == 0)
    k->interval_ms = LM__CHECK_PROCESS_POLL_MS_DEFAULT;
  int oom = 0;
  if (spec->kind == LM_CHECK_HTTP)
    oom = (k->url = strdup(spec->url)) == NULL;
  else if (spec->kind == LM_CHECK_EXEC)
    oom = (k->command = strdup(spec->command)) == NULL;
  else if (spec->kind == LM_CHECK_TCP &&
           split_addr(spec->addr, &k->host, &k->port, err, errcap) != 0)
    oom = 1;
  if (oom) {
    free(k->url);
    free(k->command);
    free(k);
    return fail_at(err, errcap, LM__CHECK_ENOMEM, "out of memory");
  }
  if ((rc = uv_timer_init(c->loop, &k->timer)) != 0) {
    free(k->url);
    free(k->command);
    free(k->host);
    free(k->port);
    free(k);
    return fail_at(err, errcap, rc, "timer: %s", uv_strerror(rc));
  }
  k->timer.data = k;
  k->holds = 2; /* started, and the timer */
  k->next = c->checks;
  if (c->checks != NULL)
    c->checks->prev = k;
  c->checks = k;

  switch (k->kind) {
  case LM_CHECK_TTL:
    uv_timer_start(&k->timer, on_ttl_expired, k->ttl_ms, 0);
    break;
  case LM_CHECK_PROCESS:
    rc = lm__chk_process_start(k);
    if (rc != 0) {
      fail_at(err, errcap, rc, "pid: %s", lm__check_strerror(rc));
      k->cb = NULL;
      lm__check_stop(k);
      return rc;
    }
    break;
  default:
    uv_timer_start(&k->timer, on_due, 0, 0);
    break;
  }
  if (out != NULL)
    *out = k;
  return 0;
}

void lm__check_stop(lm__check_t *k) {
  if (k == NULL || k->stopped)
    return;
  lm__checker_t *c = k->c;
  k->stopped = 1;
  if (k->queued)
    unqueue(k);
  run_t *r = k->run;
  if (r != NULL) {
    r->finished = 1;
    k->run = NULL;
    c->running--;
    switch (k->kind) {
    case LM_CHECK_HTTP: lm__chk_http_abort(r); break;
    case LM_CHECK_TCP: lm__chk_tcp_abort(r); break;
    default: lm__chk_exec_abort(r); break;
    }
  }
  if (k->kind == LM_CHECK_PROCESS)
    lm__chk_process_stop(k);
  uv_close((uv_handle_t *)&k->timer, check_handle_closed);
  pump(c);
  lm__chk_release(k); /* never the last hold: the timer's is still there */
}

lm_svc_status_t lm__check_status(const lm__check_t *k) { return k->status; }
const char *lm__check_output(const lm__check_t *k) { return k->output; }
lm_check_kind_t lm__check_kind(const lm__check_t *k) { return k->kind; }
