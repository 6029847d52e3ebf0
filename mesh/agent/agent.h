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

#include "config.h"
#include "control.h"
#include "trust.h"

typedef struct lm__agent lm__agent_t;

/* A request answered later (leave: once the leave is out). */
typedef struct waiter {
  uint64_t conn;
  json_t *id;
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
  uv_signal_t sig_term, sig_int, sig_hup;
  uv_timer_t leave_guard;
  int handles_ready;
  int stopping; /* 0 running, 1 leaving, 2 closing */
  waiter_t *waiters;
  size_t nwaiters;
  int64_t started_ms;
  int exit_code;
};

/* Leave the mesh and stop (a second call stops without waiting). */
void lm__agent_begin_stop(lm__agent_t *a, const char *why);

#endif
