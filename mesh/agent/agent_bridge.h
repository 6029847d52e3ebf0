/*
 * agent_bridge.h: the agent's side of the etcd bridge (agent_bridge.c):
 * started with --bridge-etcd, fed from the node's view, shown in stats,
 * /metrics and readiness. Not installed.
 */
#ifndef LIVEMESH_MESH_AGENT_BRIDGE_H
#define LIVEMESH_MESH_AGENT_BRIDGE_H

#include <jansson.h>
#include <stddef.h>

#include "metrics.h"

typedef struct lm__agent lm__agent_t;
typedef struct lm__agent_bridge lm__agent_bridge_t;

/* Once the node runs: starts the bridge when --bridge-etcd is given. 0
 * (also without a bridge), or -1 with `err` set (a bad option or file). */
int lm__agent_bridge_start(lm__agent_t *a, char *err, size_t cap);
/* Resigns and closes (asynchronously, on the agent's loop). */
void lm__agent_bridge_stop(lm__agent_t *a);
/* The bridge's state for `livemesh stats`; NULL without a bridge. */
json_t *lm__agent_bridge_json(const lm__agent_t *a);
/* The readiness check {"status", "detail", "state", "leader"}, *healthy
 * set; NULL (and *healthy 1) without a bridge. */
json_t *lm__agent_bridge_check(const lm__agent_t *a, int *healthy);
/* The livemesh_bridge_* families, appended; nothing without a bridge. */
void lm__agent_bridge_metrics(const lm__agent_t *a, lm__buf_t *b);

#endif
