/*
 * agent.h: the state of a running `livemesh agent`, shared by agent.c (its
 * life: files, node, signals, reload, stop) and commands.c (the requests
 * it answers). Not installed.
 *
 * Must never depend on swim/ or mesh/node/'s internals: the public API
 * (livemesh.h) runs the node, trust.h reads and checks key files.
 */
#ifndef LIVEMESH_MESH_AGENT_AGENT_H
#define LIVEMESH_MESH_AGENT_AGENT_H

#include <jansson.h>
#include <livemesh/livemesh.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"
#include "config.h"
#include "control.h"
#include "sdnotify.h"
#include "trust.h"

typedef struct lm__agent lm__agent_t;

/* An ephemeral registration: the service lives while connection `conn`
 * of the control socket stays open. */
typedef struct lm__ephemeral {
  uint64_t conn;
  uint8_t uuid[LM_UUID_LEN];
} lm__ephemeral_t;

/* A watch streamed on a connection (control socket or HTTP). Events that the
 * node delivers before the watch's own answer is sent (the initial state)
 * wait in `pending`, so the answer always comes first. */
typedef struct lm__watcher {
  lm__agent_t *agent;
  uint64_t conn;
  lm__reply_to_t to; /* where its lines go (id: NULL) */
  uint64_t watch_id;
  int ready;
  json_t *pending; /* array of event objects, until ready */
  struct lm__watcher *next;
} lm__watcher_t;

/* A request answered later (leave: once the leave is out). */
typedef struct waiter {
  uint64_t conn;
  json_t *id;
  lm__reply_to_t to; /* to.id is `id`, owned */
} waiter_t;

struct lm__agent {
  uv_loop_t loop;
  int argc;
  char **argv;
  lm__config_t cfg;
  int log_level, log_format;
  char name[LM_NAME_MAX + 1];
  lm_identity_t id;
  lm_cert_t cert;
  uint8_t (*trusted)[LM_PUBLICKEY_BYTES];
  size_t ntrusted;
  uint8_t secret[LM_SECRET_LEN];
  int has_secret;
  uint32_t generation;
  int lock_fd;
  lm_node_t *node;
  lm__ctl_server_t *ctl;
  struct lm__http *http; /* the HTTP API (http.c), NULL without --http */
  uv_signal_t sig_term, sig_int, sig_hup;
  uv_timer_t leave_guard;
  lm__sdnotify_t sd; /* systemd notifications (sdnotify.c) */
  int handles_ready;
  int stopping; /* 0 running, 1 leaving, 2 closing */
  waiter_t *waiters;
  size_t nwaiters;
  int64_t started_ms;
  int exit_code;
  /* services (agent_services.c) */
  lm__ephemeral_t *ephemeral;
  size_t nephemeral;
  lm__watcher_t *watchers;
  /* registrations kept in DATA_DIR/services.json: uuid text -> {"uuid",
   * "created_ms", "spec": the register fields, "maint": {"until_ms",
   * "note"} or null} */
  json_t *regs;
  /* services declared in the config file: uuid text -> register fields */
  json_t *declared;
  /* the loop watchdog and readiness (probes.c) */
  struct lm__probes *probes;
  /* the last-known view (agent_snapshot.c) */
  uv_timer_t snap_timer;
  int snap_ready, snap_failing;
  uint64_t snap_index;
  int64_t snap_last_ms;
  /* the etcd bridge (agent_bridge.c), NULL without --bridge-etcd */
  struct lm__agent_bridge *bridge;
};

/* A walker for lm_node_services_each(): counts services per host into
 * the JSON object `ud` (host -> count), for the members' "services". */
int lm__count_host(void *ud, const lm_service_view_t *v);

/* Leave the mesh and stop (a second call stops without waiting). */
void lm__agent_begin_stop(lm__agent_t *a, const char *why);
/* A line to the agent's log (LM_LOG_* level). */
void lm__agent_log(lm__agent_t *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- services (agent_services.c) ---- */

/* Registrations tied to a connection: `uuid` lives while `conn` does. */
int lm__agent_ephemeral_add(lm__agent_t *a, uint64_t conn,
                            const uint8_t uuid[LM_UUID_LEN]);
/* The connection holding `uuid` as ephemeral, or 0. */
uint64_t lm__agent_ephemeral_owner(const lm__agent_t *a,
                                   const uint8_t uuid[LM_UUID_LEN]);
void lm__agent_ephemeral_drop(lm__agent_t *a, const uint8_t uuid[LM_UUID_LEN]);
/* A control connection closed: its ephemeral services are deregistered
 * and its watches removed. */
void lm__agent_conn_closed(lm__agent_t *a, uint64_t conn);
/* Frees the watchers and the bookkeeping (the node is gone). */
void lm__agent_services_free(lm__agent_t *a);

/* Persistence of runtime registrations in DATA_DIR/services.json:
 * remember (or forget) one, with the register fields it was made with,
 * and write the file at once (atomically). */
void lm__agent_reg_put(lm__agent_t *a, const uint8_t uuid[LM_UUID_LEN],
                       const json_t *spec);
void lm__agent_reg_forget(lm__agent_t *a, const uint8_t uuid[LM_UUID_LEN]);
/* Maintenance of a kept registration: until_ms 0 = until turned off;
 * on = 0 ends it. */
void lm__agent_reg_maint(lm__agent_t *a, const uint8_t uuid[LM_UUID_LEN],
                         int on, int64_t until_ms, const char *note);
/* 1 when `uuid` is declared in the config file. */
int lm__agent_is_declared(const lm__agent_t *a,
                          const uint8_t uuid[LM_UUID_LEN]);
/* Before the node starts: two declared services that would share a uuid
 * are a configuration error (0, or -1 with `err` set). */
int lm__agent_declared_check(lm__agent_t *a, char *err, size_t errcap);
/* At start, once the node runs: the declared services of the config, then
 * the registrations of services.json. */
void lm__agent_services_start(lm__agent_t *a);
/* SIGHUP: the declared services of a reloaded config, re-synced
 * (added, removed, updated) and logged. */
void lm__agent_services_reload(lm__agent_t *a, const json_t *services);
/* ---- the last-known view (agent_snapshot.c) ---- */

/* Once the node runs, before it joins: loads DATA_DIR/view.snapshot (one
 * warning if it cannot be used) and starts writing it back on changes, at
 * most every 5 s. */
void lm__agent_snapshot_start(lm__agent_t *a);
/* Before the node closes: writes the view one last time. */
void lm__agent_snapshot_stop(lm__agent_t *a);

/* Writes `len` bytes to DIR/NAME atomically: a temporary file, fsync,
 * rename, fsync of the directory. 0, or -1 with `err` set. */
int lm__write_atomic(const char *dir, const char *name, const char *data,
                     size_t len, char *err, size_t errcap);

#endif
