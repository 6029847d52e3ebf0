/*
 * check.h: the health-check engine a livemesh node runs for the services
 * registered on it. A checker lives on a caller's uv_loop_t and runs checks
 * of five kinds (service.h's lm_check_kind_t): ttl, process, http, tcp and
 * exec. Nothing here ever blocks the loop: processes are watched through
 * pidfds, HTTP goes through libcurl's multi socket interface driven by
 * libuv, TCP connects and commands are libuv handles. libcurl is loaded
 * at run time (curl_dl.h) by the first http check validated or started,
 * so a process without one never maps it; where it cannot be loaded, http
 * checks are accepted and every run fails, its output saying why.
 *
 * Must never depend on: swim/, store/, sim/, the node (mesh/node.c) or the
 * agent. It sees only libuv, libcurl and include/livemesh/service.h, so the
 * node, the agent and the tests can each drive it.
 *
 * All calls come from the loop's thread. Callbacks take the object first,
 * run on the loop, and may call any lm__check_* / lm__checker_* function,
 * including lm__check_stop on the very check and lm__checker_close. If a
 * function that takes a callback fails, the callback is never called.
 *
 * Statuses and thresholds:
 *   - The status right after lm__check_start is the check's initial status;
 *     the status callback reports changes from it, never the initial value.
 *   - http, tcp, exec: the first run is due at once (on the next loop
 *     iteration, never inside lm__check_start); runs then start interval_ms
 *     apart. The initial status is DOWN unless spec->initial says UP: a
 *     service is not advertised up before its check has passed. An UP check
 *     goes DOWN after failures_before_down failed runs in a row, a DOWN one
 *     goes UP after successes_before_up passing runs in a row (both default
 *     1, like Consul's thresholds).
 *   - ttl: starts UP unless spec->initial says DOWN (like Consul's
 *     "passing" initial status): a new service is trusted for one TTL and
 *     must call lm__check_pass within it. A pass makes it UP and restarts the
 *     TTL, a fail makes it DOWN at once, an expired TTL makes it DOWN.
 *     Thresholds do not apply: the service speaks for itself.
 *   - process: follows one process, not a pid. Its status is known at start
 *     (UP if the process exists, DOWN with output "no process with pid N"
 *     if not) and spec->initial is ignored. It goes DOWN the moment the
 *     process exits and stays DOWN: a restarted service registers its new
 *     pid. Thresholds do not apply (a dead process does not come back).
 *   - timeout_ms must not exceed interval_ms: the interval is the budget of
 *     one run, and a check never overlaps itself.
 *
 * Concurrency: at most max_concurrent runs of http, tcp and exec checks are
 * in flight per checker; runs that come due beyond that wait in a FIFO queue
 * and start in the order they came due. A run that comes due while the same
 * check is running or queued is skipped. ttl and process checks are events,
 * not runs, and are not bounded.
 */
#ifndef LIVEMESH_MESH_CHECK_H
#define LIVEMESH_MESH_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "livemesh/service.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults and limits, defined here once for config, agent and tests. */
#define LM__CHECK_MAX_CONCURRENT_DEFAULT 16
#define LM__CHECK_PROCESS_POLL_MS_DEFAULT 1000 /* kill(pid, 0) fallback */
#define LM__CHECK_MS_MAX (7ull * 24 * 3600 * 1000) /* intervals, timeouts, TTLs */
#define LM__CHECK_URL_MAX 2048
#define LM__CHECK_ADDR_MAX 300     /* "host:port", host up to 253 */
#define LM__CHECK_COMMAND_MAX 4096
#define LM__CHECK_ERR_MAX 160      /* room that holds any error text */

/* Error codes: negative. -1401..-1499 are the checks' own (kept apart from
 * livemesh.h's -1001.. so they can join its table unchanged); any other
 * negative code is a libuv error. lm__check_strerror() names both. */
#define LM__CHECK_ERRNO_MAP(X)                                                 \
  X(EINVAL, -1401, "invalid check specification")                              \
  X(EEXEC, -1402, "exec checks are not allowed on this checker")               \
  X(ENOMEM, -1403, "out of memory")                                            \
  X(ECLOSING, -1404, "the checker is closing")                                 \
  X(EKIND, -1405, "not valid for this kind of check")
#define LM__CHECK_ERR_ENUM(n, v, s) LM__CHECK_##n = v,
enum { LM__CHECK_ERRNO_MAP(LM__CHECK_ERR_ENUM) };
#undef LM__CHECK_ERR_ENUM
const char *lm__check_strerror(int err);

/* How one run ended, for livemesh_check_runs_total{kind,result}. A ttl pass
 * is an ok run, a fail a failed run, an expiry a timeout; a process check's
 * probe at start is counted as a run (the run hook is not called from inside
 * lm__check_start) and so is its exit (failed). */
typedef enum lm__check_result {
  LM__CHECK_OK = 0,
  LM__CHECK_FAIL = 1,
  LM__CHECK_TIMEOUT = 2
} lm__check_result_t;
#define LM__CHECK_RESULTS 3
/* "ok", "fail", "timeout"; "unknown" otherwise */
const char *lm__check_result_name(lm__check_result_t r);
/* "ttl", "process", "http", "tcp", "exec"; "unknown" otherwise */
const char *lm__check_kind_name(lm_check_kind_t k);

typedef struct lm__checker lm__checker_t;
typedef struct lm__check lm__check_t;

/* Status changed (after the thresholds). `output` is the output of the run,
 * pass or fail that caused it, valid during the call; `cause` is "ttl" for
 * a ttl check's pass, fail or expiry and "check" otherwise. */
typedef void (*lm__check_cb)(lm__check_t *check, lm_svc_status_t status,
                             const char *output, const char *cause, void *ud);
/* Every run, whatever its effect on the status; called before the status
 * callback, with lm__check_status() already updated. */
typedef void (*lm__check_run_cb)(lm__check_t *check, lm_check_kind_t kind,
                                 lm__check_result_t result, void *ud);
/* The checker is closed and freed. */
typedef void (*lm__checker_close_cb)(void *ud);

typedef struct lm__checker_opts {
  unsigned max_concurrent; /* 0: LM__CHECK_MAX_CONCURRENT_DEFAULT */
  int allow_exec;          /* exec checks are refused unless exactly 1 */
  /* Watch processes with kill(pid, 0) every interval even where
   * pidfd_open works: for tests and seccomp sandboxes. The fallback sees a
   * death only at the next poll, counts a zombie as alive and can be fooled
   * by a reused pid, which is why pidfds come first. */
  int process_poll_only;
  lm__check_run_cb run_cb; /* optional */
  void *run_ud;
} lm__checker_opts_t;

typedef enum lm__check_initial {
  LM__CHECK_INITIAL_DEFAULT = 0, /* ttl UP, http/tcp/exec DOWN */
  LM__CHECK_INITIAL_UP = 1,
  LM__CHECK_INITIAL_DOWN = 2
} lm__check_initial_t;

/* What to check. Strings are copied by lm__check_start. */
typedef struct lm__check_spec {
  lm_check_kind_t kind;
  uint64_t interval_ms; /* http, tcp, exec: > 0. process: the kill() poll
                           period where pidfd_open is missing, 0: default */
  uint64_t timeout_ms;  /* http, tcp, exec: > 0 and <= interval_ms */
  uint64_t ttl_ms;      /* ttl: > 0 */
  unsigned failures_before_down; /* 0: 1 */
  unsigned successes_before_up;  /* 0: 1 */
  lm__check_initial_t initial;
  const char *url;      /* http: http:// or https:// with a host */
  int tls_skip_verify;  /* http: accept any certificate */
  const char *addr;     /* tcp: HOST:PORT or [V6]:PORT, HOST may be a name */
  const char *command;  /* exec: run as /bin/sh -c COMMAND */
  int pid;              /* process: > 0 */
} lm__check_spec_t;

/* A checker on `loop`; opts may be NULL. 0 or a negative code. */
int lm__checker_new(lm__checker_t **out, uv_loop_t *loop,
                    const lm__checker_opts_t *opts);

/* Stops every check (no callback of theirs runs after this returns), kills
 * running exec children (their whole process group, SIGKILL) and waits for
 * them, closes every handle, then calls done_cb (may be NULL) and frees the
 * checker and its checks. The checker and its checks must not be used after
 * this call. */
void lm__checker_close(lm__checker_t *c, lm__checker_close_cb done_cb,
                       void *ud);

/* Runs of `kind` that ended with `result` since the checker was created:
 * the counter behind livemesh_check_runs_total{kind,result}. */
uint64_t lm__checker_runs(const lm__checker_t *c, lm_check_kind_t kind,
                          lm__check_result_t result);
/* http/tcp/exec runs in flight now, and runs waiting for a slot. */
unsigned lm__checker_running(const lm__checker_t *c);
unsigned lm__checker_queued(const lm__checker_t *c);

/* Validates `spec` and starts the check. On error returns a negative code
 * (LM__CHECK_EINVAL, LM__CHECK_EEXEC, ...) and, if err is not NULL, writes
 * a NUL-terminated reason naming the field ("url: must start with http://
 * or https://") into err[errcap]. cb may be NULL. */
int lm__check_start(lm__checker_t *c, const lm__check_spec_t *spec,
                    lm__check_cb cb, void *ud, lm__check_t **out, char *err,
                    size_t errcap);

/* Validates without starting: the config loader's dry run. */
int lm__check_validate(const lm__checker_t *c, const lm__check_spec_t *spec,
                       char *err, size_t errcap);

/* Stops the check: no callback of it runs after this returns; a running
 * command is killed. Its memory is freed once its handles have closed, so
 * `check` must not be used after this call. */
void lm__check_stop(lm__check_t *check);

/* ttl checks only (else LM__CHECK_EKIND): pass makes the check UP and
 * restarts its TTL, fail makes it DOWN at once. `note` (may be NULL) becomes
 * the output, cut at LM_CHECK_OUTPUT_MAX bytes. The status callback runs
 * before these return when the status changes. */
int lm__check_pass(lm__check_t *check, const char *note);
int lm__check_fail(lm__check_t *check, const char *note);

/* Why http checks cannot run in this process ("libcurl.so.4 not found
 * (install libcurl4): ..."), or NULL when they can or none has tried: each
 * such run fails with this as its output. Lets a caller log it once. */
const char *lm__check_http_unavailable(void);

lm_svc_status_t lm__check_status(const lm__check_t *check);
/* The latest run's output (NUL-terminated, at most LM_CHECK_OUTPUT_MAX
 * bytes, "" before any); valid until the next run or pass/fail. */
const char *lm__check_output(const lm__check_t *check);
lm_check_kind_t lm__check_kind(const lm__check_t *check);

#ifdef __cplusplus
}
#endif
#endif
