/*
 * bridge.h: the etcd bridge. Copies the mesh's converged view into etcd
 * for tools that only speak etcd, from one elected, fenced writer.
 *
 * Every bridge-enabled agent campaigns for `bridge/leader` (a key bound to
 * its lease, created only if absent). The winner reconciles (ranges the
 * owned keys, deletes what the view lacks, puts everything under its own
 * lease) and then writes changes only, in transactions of at most 128
 * operations and about 1 MiB. Each transaction compares the leader key's
 * create revision with the one it won: a writer that lost its lease, or
 * was paused while another won, cannot write. The others watch the leader
 * key and campaign when it goes.
 *
 * The view comes from the caller: lm_bridge_changed() says it changed, and
 * the bridge calls `fill` when it wants it (lm_bv_add_member/service). The
 * bridge never blocks the loop, never slows the failure detector: it only
 * reads the view, when it is ready to send.
 *
 * Depends on bridge/etcd, bridge/view and libuv; never on swim/, store/ or
 * mesh/ (the agent feeds it).
 */
#ifndef LIVEMESH_BRIDGE_H
#define LIVEMESH_BRIDGE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "etcd.h"
#include "view.h"

typedef struct lm_bridge lm_bridge_t;

typedef struct lm_bridge_options {
  lm_etcd_options_t etcd; /* endpoints, TLS, user, timeouts */
  lm_bv_layout_t layout;
  lm_bv_encoding_t encoding;
  /* native: the prefix ending in '/'; os-lively: the namespace ("" none) */
  const char *prefix;
  const char *cluster;
  const char *name;  /* this member: named in the leader key */
  const uint8_t *id; /* its public key (32 bytes), or NULL */
  uint32_t lease_ttl_s;  /* default 10 */
  uint32_t max_txn_ops;  /* default 128 */
  size_t max_txn_bytes;  /* default 1 MiB */
  /* Asked for the view: call lm_bv_add_member/_service for each. */
  void (*fill)(void *ud, lm_bv_t *v);
  void *fill_ud;
  /* Log lines (levels as lm_etcd's: 0 error .. 3 debug). */
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
} lm_bridge_options_t;

/* 0, or -1 with `err` naming the problem (nothing is started). */
int lm_bridge_new(lm_bridge_t **out, uv_loop_t *loop,
                  const lm_bridge_options_t *o, char *err, size_t errcap);
/* Starts campaigning. */
int lm_bridge_start(lm_bridge_t *b);
/* The view changed: the bridge will ask for it soon (coalesced). */
void lm_bridge_changed(lm_bridge_t *b);
/* Resigns (deletes the leader key when it holds it, so another bridge
 * takes over at once), closes the connection and frees the bridge; `done`
 * runs when everything is closed. Keys stay until another writer re-puts
 * them or the lease expires. */
void lm_bridge_close(lm_bridge_t *b, void (*done)(void *ud), void *ud);

typedef struct lm_bridge_stats {
  const char *state; /* "connecting", "campaigning", "standby",
                        "reconciling", "leader", "backoff", "closed" */
  int connected, leader, quota_full;
  int64_t lease_id;
  uint64_t writes;           /* transactions applied */
  uint64_t keys_put, keys_deleted;
  uint64_t errors;           /* failed requests of any kind */
  uint64_t reconciliations;  /* full ones completed */
  uint64_t elections_won, deposed, leases_lost, refused_keys;
  uint64_t lag_last_ms, lag_p50_ms, lag_p99_ms; /* change -> in etcd */
  uint64_t lag_samples;
  size_t keys_wanted, keys_pending;
  char leader_name[72]; /* the writer as last seen ("" unknown) */
  char last_error[160];
} lm_bridge_stats_t;
void lm_bridge_stats(const lm_bridge_t *b, lm_bridge_stats_t *out);

/* 1 when the bridge is doing its job: connected and either writing
 * (not blocked by a full quota) or standing by behind a live leader. */
int lm_bridge_healthy(const lm_bridge_t *b);

#endif
