/*
 * sdnotify.h: tells systemd how the agent is doing, over the datagram
 * protocol of sd_notify(3) ($NOTIFY_SOCKET): READY=1 once the agent is of
 * use, RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1 when it
 * leaves, STATUS= lines for `systemctl status`, and WATCHDOG=1 from a timer
 * on the agent's own loop, so a loop that stalls stops the pings and
 * systemd restarts the agent.
 *
 * Without $NOTIFY_SOCKET every call does nothing. Must never depend on
 * libsystemd, on the node or on the rest of the agent: libuv and libc only.
 */
#ifndef LIVEMESH_MESH_AGENT_SDNOTIFY_H
#define LIVEMESH_MESH_AGENT_SDNOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

typedef struct lm__sdnotify {
  int fd; /* -1: not under systemd (or its socket is unusable) */
  struct sockaddr_un addr;
  socklen_t addrlen;
  int ready;            /* READY=1 was sent */
  uint64_t watchdog_ms; /* ping period (half of $WATCHDOG_USEC), 0: none */
  uv_timer_t watchdog;
  int timer_open;
} lm__sdnotify_t;

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, removes them from
 * the environment (so the commands that exec checks run do not talk to
 * systemd in the agent's name) and, when a watchdog is asked for, starts
 * its timer on `loop` (unreferenced: it never keeps the loop alive).
 * Returns 0, or -1 with `err` set when $NOTIFY_SOCKET is set but cannot be
 * used; the agent runs on either way, without notifications. */
int lm__sdnotify_init(lm__sdnotify_t *s, uv_loop_t *loop, char *err,
                      size_t errcap);
/* READY=1 with a STATUS= line; later calls only update the status. */
void lm__sdnotify_ready(lm__sdnotify_t *s, const char *status);
/* STATUS= alone. */
void lm__sdnotify_status(lm__sdnotify_t *s, const char *status);
/* RELOADING=1 and MONOTONIC_USEC= (as systemd 253 and later want it),
 * then, after the reload, READY=1 again. Only for an agent that was ready:
 * before that, a reload is not a state systemd needs to know about. */
void lm__sdnotify_reloading(lm__sdnotify_t *s, const char *status);
void lm__sdnotify_reloaded(lm__sdnotify_t *s, const char *status);
/* STOPPING=1 with a STATUS= line. */
void lm__sdnotify_stopping(lm__sdnotify_t *s, const char *status);
/* Stops the watchdog and closes its timer and the socket: before the loop
 * is closed. */
void lm__sdnotify_close(lm__sdnotify_t *s);

#endif
