/*
 * tool_node.h: what the test tools that run a node of their own share
 * (forge_svc, insider, cert_joiner): loading a member's files, starting
 * and joining, running the loop for a while, leaving and closing.
 *
 * Header-only: each tool is one .c file. Errors go to stderr prefixed with
 * the tool's name; the return values are the tools' exit codes (0 fine,
 * 1 could not run, 2 bad files).
 */
#ifndef LIVEMESH_TOOL_NODE_H
#define LIVEMESH_TOOL_NODE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <livemesh/livemesh.h>
#include <uv.h>

#include "trust.h"

static inline void tool_hex(char *out, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", p[i]);
}

/* The options that make a member: --node-key, --node-cert,
 * --cluster-key, and one or more --join seeds. */
#define TOOL_SEEDS_MAX 8
typedef struct tool_member {
  const char *key, *cert, *ckey;
  const char *seeds[TOOL_SEEDS_MAX];
  size_t nseeds;
} tool_member_t;

/* Takes option `a` with value `v` if it is one of the member's: 1 taken,
 * 0 not one of them (or one seed too many). */
static inline int tool_member_arg(tool_member_t *m, const char *a,
                                  const char *v) {
  if (!strcmp(a, "--node-key"))
    m->key = v;
  else if (!strcmp(a, "--node-cert"))
    m->cert = v;
  else if (!strcmp(a, "--cluster-key"))
    m->ckey = v;
  else if (!strcmp(a, "--join") && m->nseeds < TOOL_SEEDS_MAX)
    m->seeds[m->nseeds++] = v;
  else
    return 0;
  return 1;
}

/* All of them given. */
static inline int tool_member_ok(const tool_member_t *m) {
  return m->key && m->cert && m->ckey && m->nseeds;
}

/* A member as an agent would be: its key and certificate, trusting one
 * cluster key, bound to 127.0.0.1:0. */
static inline int tool_node_open(lm_node_t **out, uv_loop_t *loop,
                                 const char *prog, const tool_member_t *m) {
  const char *key = m->key, *cert = m->cert, *ckey = m->ckey;
  lm_identity_t id;
  int rc = lm_identity_load(&id, key, cert);
  if (rc) {
    fprintf(stderr, "%s: %s / %s: %s\n", prog, key, cert, lm_strerror(rc));
    return 2;
  }
  lm_cert_t c;
  if (lm_cert_load(&c, cert)) {
    fprintf(stderr, "%s: %s: not a certificate\n", prog, cert);
    return 2;
  }
  uint8_t trusted[1][LM_PUBLICKEY_BYTES];
  if ((rc = lm_cluster_pubkey_load(trusted[0], ckey))) {
    fprintf(stderr, "%s: %s: %s\n", prog, ckey, lm_strerror(rc));
    return 2;
  }
  if (uv_loop_init(loop))
    return 1;
  lm_options_t o;
  memset(&o, 0, sizeof o);
  o.name = c.name;
  o.bind = "127.0.0.1:0";
  o.identity = &id;
  o.trusted = (const uint8_t(*)[LM_PUBLICKEY_BYTES])trusted;
  o.ntrusted = 1;
  rc = lm_node_new(out, loop, &o);
  lm_identity_wipe(&id);
  if (rc) {
    fprintf(stderr, "%s: lm_node_new: %s\n", prog, lm_strerror(rc));
    return 1;
  }
  return 0;
}

static inline void tool_on_closed(lm_node_t *node, int status, void *ud) {
  (void)node, (void)status, (void)ud;
}

/* Starts the node and joins through the seeds; on failure the node is
 * closed. */
static inline int tool_node_start(lm_node_t *n, uv_loop_t *loop,
                                  const char *prog, const char *const *seeds,
                                  size_t nseeds) {
  int rc = 0;
  for (int i = 0; i < 20; i++) /* see start_node in tests/node_harness.h */
    if ((rc = lm_node_start(n)) != UV_EADDRINUSE)
      break;
  if (rc || (rc = lm_node_join(n, seeds, nseeds))) {
    fprintf(stderr, "%s: start/join: %s\n", prog, lm_strerror(rc));
    lm_node_close(n, tool_on_closed, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return 1;
  }
  return 0;
}

static inline void tool_on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop for `ms`, or until poll(ud) says so (NULL: the whole
 * time); returns poll's last answer. */
static inline int tool_run(uv_loop_t *loop, uint64_t ms, int (*poll)(void *),
                           void *ud) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, tool_on_tick, 20, 20);
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + ms;
  int ok = 0;
  while (uv_now(loop) < end && !(poll && (ok = poll(ud))))
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

static inline void tool_on_left(lm_node_t *node, int status, void *ud) {
  (void)node, (void)status;
  *(int *)ud = 1;
}

static inline int tool_flag(void *ud) { return *(int *)ud; }

/* Leaves gracefully (at most 5 s), so the mesh returns to the members it
 * had, then closes the node and the loop. */
static inline void tool_node_finish(lm_node_t *n, uv_loop_t *loop) {
  int left = 0;
  if (lm_node_leave(n, tool_on_left, &left) == 0)
    tool_run(loop, 5000, tool_flag, &left);
  lm_node_close(n, tool_on_closed, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
}

#endif
