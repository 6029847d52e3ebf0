/*
 * check_internal.h: what the checker (check.c) and the kinds
 * (check_http.c, check_tcp.c, check_exec.c, check_process.c) share.
 *
 * Lifetimes: a check is freed when its `holds` reach zero. It holds itself
 * while started (until lm__check_stop), once per open handle of its own
 * (its timer, its pidfd poll) and once per run whose handles are still
 * open. So a check stopped inside one of its own callbacks stays valid
 * until that callback's caller has unwound: handles close on a later loop
 * iteration. The checker is freed, and done_cb called, once it is closing,
 * has no check left and its own handles (the curl timer, the curl socket
 * polls) are closed.
 */
#ifndef LIVEMESH_MESH_CHECK_INTERNAL_H
#define LIVEMESH_MESH_CHECK_INTERNAL_H

#include "check.h"
#include "curl_dl.h"

#define KINDS_MAX 6 /* lm_check_kind_t values 1..5 index the counters */

typedef struct run run_t;

struct lm__checker {
  uv_loop_t *loop;
  unsigned max_concurrent;
  int allow_exec;
  int process_poll_only;
  lm__check_run_cb run_cb;
  void *run_ud;

  lm__check_t *checks;              /* every check not yet freed */
  lm__check_t *q_head, *q_tail;     /* due and waiting for a slot */
  unsigned running, queued;
  int pumping;
  uint64_t runs[KINDS_MAX][LM__CHECK_RESULTS];

  /* libcurl (curl_dl.h), loaded and its CURLM created with the first run
   * of an http check */
  const lm__curl_t *cu;
  CURLM *multi;
  uv_timer_t curl_timer;
  int multi_closing;

  unsigned handles; /* the checker's own open handles */
  int closing;
  lm__checker_close_cb done_cb;
  void *done_ud;
};

struct lm__check {
  lm__checker_t *c;
  lm__check_t *next, *prev; /* c->checks */
  lm__check_t *q_next;      /* c->q_head */
  int queued, stopped;
  int holds;

  lm_check_kind_t kind;
  uint64_t interval_ms, timeout_ms, ttl_ms;
  unsigned failures_before_down, successes_before_up;
  char *url;
  int tls_skip_verify;
  char *host, *port; /* tcp */
  char *command;
  int pid;

  lm__check_cb cb;
  void *ud;
  lm_svc_status_t status;
  unsigned fails, oks; /* in a row, toward the thresholds */
  char output[LM_CHECK_OUTPUT_MAX + 1];

  uv_timer_t timer; /* next run, the run's timeout, or the TTL */
  uint64_t due_ms;  /* when the current or last run came due */
  run_t *run;       /* the run in flight, NULL when none */

  /* process */
  uv_poll_t poll;
  int pidfd; /* -1 when none */
  int poll_open;
  int gone; /* the process has exited: nothing more to watch */
};

/* One run of an http, tcp or exec check. It outlives its verdict while its
 * handles close; `finished` tells late callbacks to only clean up. */
struct run {
  lm__check_t *check;
  int finished;
  int pending; /* open handles and requests */
  union {
    struct {
      CURL *easy;
      char errbuf[CURL_ERROR_SIZE];
    } http;
    struct {
      uv_getaddrinfo_t gai;
      uv_tcp_t tcp;
      uv_connect_t conn;
      int tcp_open;
    } tcp;
    struct {
      uv_process_t proc;
      uv_pipe_t pipe;
      int pipe_open, reading, timed_out;
      size_t len;
      char out[LM_CHECK_OUTPUT_MAX + 1];
      char scratch[4096]; /* reads past the kept output */
    } exec;
  } u;
};

/* check.c */
/* Frees the checker and calls done_cb once nothing is left open. */
void lm__chk_checker_maybe_done(lm__checker_t *c);
void lm__chk_hold(lm__check_t *k);
void lm__chk_release(lm__check_t *k);
/* Gives a run's verdict: status, counters, callbacks, next run. */
void lm__chk_run_done(run_t *r, lm__check_result_t res, const char *output);
/* A run whose handles have all closed. */
void lm__chk_run_free(run_t *r);
/* A verdict outside the run queue (ttl, process). */
void lm__chk_verdict(lm__check_t *k, lm__check_result_t res,
                     const char *output, int force_status,
                     lm_svc_status_t status);
/* "500ms", "30s", "5m", "1h" or "1500ms" */
void lm__chk_fmt_ms(char *out, size_t cap, uint64_t ms);

/* Each kind: start a run (0, or a negative code with nothing left open),
 * and abort one (no verdict; the run frees itself once closed). An http
 * run that cannot load libcurl gives its verdict (failed, with the
 * loader's reason as output), frees itself and returns 0. */
int lm__chk_http_start(run_t *r);
void lm__chk_http_abort(run_t *r);
void lm__chk_http_close(lm__checker_t *c); /* from the curl timer's close */
int lm__chk_tcp_start(run_t *r);
void lm__chk_tcp_abort(run_t *r);
int lm__chk_exec_start(run_t *r);
void lm__chk_exec_abort(run_t *r);
/* Opens the pidfd (or probes with kill) and sets the initial status. */
int lm__chk_process_start(lm__check_t *k);
void lm__chk_process_stop(lm__check_t *k);

#endif
