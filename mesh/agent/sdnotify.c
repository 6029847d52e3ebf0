/*
 * sdnotify.c: systemd's notification protocol, spoken directly (see
 * sdnotify.h).
 *
 * Why not libsystemd's sd_notify(): the protocol is one small, documented
 * and stable datagram ("KEY=VALUE" lines sent to the AF_UNIX socket named
 * by $NOTIFY_SOCKET, a path or '@' for the abstract namespace; see
 * sd_notify(3) and systemd's "NOTIFY_SOCKET" interface notes), so a few
 * dozen lines here spare every user of the binary a new library dependency,
 * and the agent still runs on systems without systemd.
 *
 * A datagram that cannot be sent (systemd gone, socket full) is dropped:
 * notifications are advice to the service manager, never a reason for the
 * agent to block or fail.
 */
#define _GNU_SOURCE
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the socket ---- */

static void send_msg(lm__sdnotify_t *s, const char *msg) {
  if (s->fd < 0)
    return;
  ssize_t n;
  do
    n = sendto(s->fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
               (const struct sockaddr *)&s->addr, s->addrlen);
  while (n < 0 && errno == EINTR);
}

/* "KEY=1\nSTATUS=text": a status line must stay one line. */
static void send_with_status(lm__sdnotify_t *s, const char *head,
                             const char *status) {
  if (s->fd < 0)
    return;
  char msg[1024];
  int k = snprintf(msg, sizeof msg, "%s", head);
  if (status && k >= 0 && (size_t)k < sizeof msg - 8) {
    k += snprintf(msg + k, sizeof msg - (size_t)k, "%sSTATUS=", k ? "\n" : "");
    for (const char *p = status; *p && (size_t)k < sizeof msg - 1; p++)
      msg[k++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
    msg[k] = 0;
  }
  send_msg(s, msg);
}

static void on_watchdog(uv_timer_t *t) {
  send_msg(t->data, "WATCHDOG=1");
}

/* $WATCHDOG_USEC, when it is meant for this process ($WATCHDOG_PID unset
 * or ours), as a ping period of half of it, in milliseconds; 0 for none. */
static uint64_t watchdog_period_ms(void) {
  const char *us = getenv("WATCHDOG_USEC");
  const char *pid = getenv("WATCHDOG_PID");
  if (!us || !*us)
    return 0;
  if (pid && *pid) {
    char *end;
    errno = 0;
    unsigned long long p = strtoull(pid, &end, 10);
    if (errno || *end || p != (unsigned long long)getpid())
      return 0;
  }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(us, &end, 10);
  if (errno || *end || v == 0)
    return 0;
  uint64_t ms = v / 2000; /* half the period, in ms */
  return ms ? ms : 1;
}

int lm__sdnotify_init(lm__sdnotify_t *s, uv_loop_t *loop, char *err,
                      size_t errcap) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  const char *path = getenv("NOTIFY_SOCKET");
  uint64_t wd = watchdog_period_ms();
  int rc = 0;
  char copy[sizeof s->addr.sun_path + 1] = "";
  if (path)
    snprintf(copy, sizeof copy, "%s", path);
  /* what we were told is for us alone: not for the commands we start */
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  if (!path || !*path)
    return 0;
  size_t len = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len < 2 ||
      len >= sizeof s->addr.sun_path) {
    snprintf(err, errcap, "NOTIFY_SOCKET=%s: not a socket path this agent "
             "can use (an absolute path or @abstract name); systemd will "
             "not hear from it", copy);
    return -1;
  }
  s->addr.sun_family = AF_UNIX;
  memcpy(s->addr.sun_path, copy, len);
  if (copy[0] == '@')
    s->addr.sun_path[0] = 0; /* abstract: no terminating NUL counted */
  s->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                           (copy[0] == '/' ? 1 : 0));
  s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->fd < 0) {
    snprintf(err, errcap, "NOTIFY_SOCKET: cannot make a socket: %s",
             strerror(errno));
    return -1;
  }
  if (wd) {
    if ((rc = uv_timer_init(loop, &s->watchdog)) != 0) {
      snprintf(err, errcap, "watchdog timer: %s", uv_strerror(rc));
      return -1;
    }
    s->watchdog.data = s;
    s->timer_open = 1;
    s->watchdog_ms = wd;
    uv_unref((uv_handle_t *)&s->watchdog);
    uv_timer_start(&s->watchdog, on_watchdog, wd, wd);
  }
  return 0;
}

void lm__sdnotify_ready(lm__sdnotify_t *s, const char *status) {
  send_with_status(s, s->ready ? "" : "READY=1", status);
  s->ready = 1;
}

void lm__sdnotify_status(lm__sdnotify_t *s, const char *status) {
  send_with_status(s, "", status);
}

void lm__sdnotify_reloading(lm__sdnotify_t *s, const char *status) {
  if (!s->ready) {
    send_with_status(s, "", status);
    return;
  }
  /* systemd 253+ matches the reload to its own request by this clock */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char head[96];
  snprintf(head, sizeof head, "RELOADING=1\nMONOTONIC_USEC=%llu",
           (unsigned long long)ts.tv_sec * 1000000ull +
               (unsigned long long)ts.tv_nsec / 1000ull);
  send_with_status(s, head, status);
}

void lm__sdnotify_reloaded(lm__sdnotify_t *s, const char *status) {
  send_with_status(s, s->ready ? "READY=1" : "", status);
}

void lm__sdnotify_stopping(lm__sdnotify_t *s, const char *status) {
  send_with_status(s, "STOPPING=1", status);
}

static void on_timer_closed(uv_handle_t *h) { (void)h; }

void lm__sdnotify_close(lm__sdnotify_t *s) {
  if (s->timer_open) {
    s->timer_open = 0;
    uv_timer_stop(&s->watchdog);
    uv_close((uv_handle_t *)&s->watchdog, on_timer_closed);
  }
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
}
