/*
 * check_exec.c: command checks, /bin/sh -c COMMAND through uv_spawn. The
 * child gets no stdin and one pipe for both stdout and stderr (in the order
 * it wrote them, as 2>&1 would); up to LM_CHECK_OUTPUT_MAX bytes are kept,
 * the rest is read and dropped so the child never blocks on a full pipe.
 * Exit 0 is up. The child leads its own session (UV_PROCESS_DETACHED), so
 * at its timeout, or when the check stops, SIGKILL reaches everything it
 * started. The verdict waits for the exit so a run never overlaps the
 * next, and whatever is left in the pipe at the exit is read then (a
 * grandchild holding the pipe open cannot stall the check).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_internal.h"

#define DRAIN_MAX (64 * 1024) /* read at the exit at most this much more */

static void run_unpend(run_t *r) {
  if (--r->pending == 0)
    lm__chk_run_free(r);
}

static void handle_closed(uv_handle_t *h) { run_unpend(h->data); }

static void keep(run_t *r, const char *p, size_t n) {
  size_t room = LM_CHECK_OUTPUT_MAX - r->u.exec.len;
  if (n > room)
    n = room;
  memcpy(r->u.exec.out + r->u.exec.len, p, n);
  r->u.exec.len += n;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  run_t *r = h->data;
  (void)hint;
  /* Reads land past the kept bytes; a full buffer reads into a scratch
   * area at its end that is dropped. */
  size_t room = LM_CHECK_OUTPUT_MAX - r->u.exec.len;
  if (room == 0) {
    *buf = uv_buf_init(r->u.exec.scratch, sizeof(r->u.exec.scratch));
    return;
  }
  *buf = uv_buf_init(r->u.exec.out + r->u.exec.len, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  run_t *r = s->data;
  if (n > 0) {
    if (buf->base != r->u.exec.scratch)
      r->u.exec.len += (size_t)n;
    return;
  }
  if (n < 0) { /* EOF or error: nothing more to read */
    uv_read_stop(s);
    r->u.exec.reading = 0;
  }
}

static void drain_pipe(run_t *r) {
  char tmp[4096];
  size_t total = 0;
  int fd = -1;
  if (r->u.exec.reading) {
    uv_read_stop((uv_stream_t *)&r->u.exec.pipe);
    r->u.exec.reading = 0;
  }
  if (uv_fileno((uv_handle_t *)&r->u.exec.pipe, &fd) != 0)
    return;
  while (total < DRAIN_MAX) {
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    keep(r, tmp, (size_t)n);
    total += (size_t)n;
  }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  run_t *r = p->data;
  lm__check_t *k = r->check;
  if (r->u.exec.pipe_open) {
    drain_pipe(r);
    r->u.exec.pipe_open = 0;
    uv_close((uv_handle_t *)&r->u.exec.pipe, handle_closed);
  }
  r->u.exec.out[r->u.exec.len] = '\0';
  if (!r->finished) {
    char note[96];
    const char *out = r->u.exec.out;
    lm__check_result_t res = LM__CHECK_OK;
    if (r->u.exec.timed_out) {
      char ms[32];
      lm__chk_fmt_ms(ms, sizeof(ms), k->timeout_ms);
      snprintf(note, sizeof(note), "timed out after %s", ms);
      out = note;
      res = LM__CHECK_TIMEOUT;
    } else if (status != 0 || sig != 0) {
      res = LM__CHECK_FAIL;
      if (r->u.exec.len == 0) {
        if (sig != 0)
          snprintf(note, sizeof(note), "killed by signal %d", sig);
        else
          snprintf(note, sizeof(note), "exit status %lld", (long long)status);
        out = note;
      }
    }
    lm__chk_run_done(r, res, out);
  }
  uv_close((uv_handle_t *)p, handle_closed);
}

static void kill_group(run_t *r) {
  int pid = r->u.exec.proc.pid;
  if (pid > 0 && kill(-pid, SIGKILL) != 0)
    uv_process_kill(&r->u.exec.proc, SIGKILL);
}

static void on_timeout(uv_timer_t *t) {
  lm__check_t *k = t->data;
  run_t *r = k->run;
  if (r == NULL || r->u.exec.timed_out)
    return;
  r->u.exec.timed_out = 1;
  kill_group(r); /* the verdict comes with the exit */
}

int lm__chk_exec_start(run_t *r) {
  lm__check_t *k = r->check;
  uv_loop_t *loop = k->c->loop;
  uv_file fds[2];
  int rc = uv_pipe(fds, 0, 0); /* both ends close-on-exec */
  if (rc != 0)
    return rc;
  char *args[] = {"sh", "-c", k->command, NULL};
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = fds[1];
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = fds[1];
  uv_process_options_t o;
  memset(&o, 0, sizeof(o));
  o.file = "/bin/sh";
  o.args = args;
  o.exit_cb = on_exit_cb;
  o.flags = UV_PROCESS_DETACHED;
  o.stdio = stdio;
  o.stdio_count = 3;
  r->u.exec.proc.data = r;
  rc = uv_spawn(loop, &r->u.exec.proc, &o);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    r->pending++; /* a failed spawn's handle must still be closed */
    uv_close((uv_handle_t *)&r->u.exec.proc, handle_closed);
    return rc;
  }
  r->pending++;
  if (uv_pipe_init(loop, &r->u.exec.pipe, 0) == 0) {
    r->u.exec.pipe.data = r;
    r->pending++;
    r->u.exec.pipe_open = 1;
    if (uv_pipe_open(&r->u.exec.pipe, fds[0]) == 0) {
      if (uv_read_start((uv_stream_t *)&r->u.exec.pipe, on_alloc, on_read) ==
          0)
        r->u.exec.reading = 1;
    } else {
      close(fds[0]);
    }
  } else {
    close(fds[0]);
  }
  uv_timer_start(&k->timer, on_timeout, k->timeout_ms, 0);
  return 0;
}

void lm__chk_exec_abort(run_t *r) {
  /* The process handle stays open until the exit, which reaps the child;
   * that closes everything and frees the run. */
  kill_group(r);
}
