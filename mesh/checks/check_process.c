/*
 * check_process.c: process checks. A pidfd (pidfd_open(2), Linux 5.3) names
 * one process, not a number: it becomes readable the moment that process
 * exits, even if the pid is later reused, and it cannot be opened for a
 * pid that has already gone. So the check opens it at start (no process:
 * down at once) and polls it with uv_poll_t (exit: down at once).
 *
 * Where pidfd_open is missing (ENOSYS) the check falls back to
 * kill(pid, 0) every interval_ms, which sees a death late, counts a zombie
 * as alive and can be fooled by a reused pid.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check_internal.h"

static void output_gone(lm__check_t *k, char *out, size_t cap) {
  snprintf(out, cap, "no process with pid %d (it has exited or never existed)",
           k->pid);
}

static void pidfd_closed(uv_handle_t *h) {
  lm__check_t *k = h->data;
  if (k->pidfd >= 0) {
    close(k->pidfd); /* only once libuv no longer watches it */
    k->pidfd = -1;
  }
  lm__chk_release(k);
}

static void close_poll(lm__check_t *k) {
  if (!k->poll_open)
    return;
  k->poll_open = 0;
  uv_poll_stop(&k->poll);
  uv_close((uv_handle_t *)&k->poll, pidfd_closed);
}

static void on_pidfd(uv_poll_t *h, int status, int events) {
  lm__check_t *k = h->data;
  char out[96];
  (void)status;
  (void)events;
  if (k->gone || k->stopped)
    return;
  k->gone = 1;
  close_poll(k);
  snprintf(out, sizeof(out), "process %d exited", k->pid);
  lm__chk_verdict(k, LM__CHECK_FAIL, out, 1, LM_SVC_DOWN);
}

/* 1 alive (or not ours to signal), 0 gone */
static int kill_probe(int pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

static void on_kill_poll(uv_timer_t *t) {
  lm__check_t *k = t->data;
  char out[96];
  if (k->gone || k->stopped)
    return;
  if (kill_probe(k->pid)) {
    uv_timer_start(&k->timer, on_kill_poll, k->interval_ms, 0);
    snprintf(out, sizeof(out), "process %d running", k->pid);
    lm__chk_verdict(k, LM__CHECK_OK, out, 1, LM_SVC_UP);
  } else {
    k->gone = 1;
    snprintf(out, sizeof(out), "process %d exited", k->pid);
    lm__chk_verdict(k, LM__CHECK_FAIL, out, 1, LM_SVC_DOWN);
  }
}

/* The probe at start sets the status without callbacks (none run inside
 * lm__check_start); it is counted as a run. */
static void probe_result(lm__check_t *k, int alive, const char *how) {
  if (alive) {
    k->status = LM_SVC_UP;
    snprintf(k->output, sizeof(k->output), "process %d running%s", k->pid, how);
    k->c->runs[LM_CHECK_PROCESS][LM__CHECK_OK]++;
  } else {
    k->status = LM_SVC_DOWN;
    k->gone = 1;
    output_gone(k, k->output, sizeof(k->output));
    k->c->runs[LM_CHECK_PROCESS][LM__CHECK_FAIL]++;
  }
}

int lm__chk_process_start(lm__check_t *k) {
  if (!k->c->process_poll_only) {
    int fd = -1;
    errno = ENOSYS;
#ifdef SYS_pidfd_open
    fd = (int)syscall(SYS_pidfd_open, k->pid, 0);
#endif
    if (fd >= 0) {
      int rc = uv_poll_init(k->c->loop, &k->poll, fd);
      if (rc != 0) {
        close(fd);
        return rc;
      }
      k->pidfd = fd;
      k->poll.data = k;
      k->poll_open = 1;
      lm__chk_hold(k);
      if ((rc = uv_poll_start(&k->poll, UV_READABLE, on_pidfd)) != 0) {
        close_poll(k);
        return rc;
      }
      probe_result(k, 1, "");
      return 0;
    }
    if (errno == ESRCH) {
      probe_result(k, 0, "");
      return 0;
    }
    if (errno != ENOSYS)
      return -errno; /* libuv's codes are negated errnos here */
  }
  probe_result(k, kill_probe(k->pid), " (polled)");
  if (!k->gone)
    uv_timer_start(&k->timer, on_kill_poll, k->interval_ms, 0);
  return 0;
}

void lm__chk_process_stop(lm__check_t *k) { close_poll(k); }
