/*
 * commands.c: the agent's command table (commands.h) and its handlers:
 * ping, members, stats, leave. The JSON each one answers is documented in
 * docs/agent.md.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <livemesh/livemesh.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "commands.h"
#include "control.h"

typedef lm__agent_t agent_t;

static void errf(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

/* ---- JSON views ---- */

static int cmp_member(const void *x, const void *y) {
  return strcmp(((const lm_member_t *)x)->name, ((const lm_member_t *)y)->name);
}

static json_t *members_json(agent_t *a, char *err, size_t cap) {
  lm_member_t *v;
  size_t n;
  int rc = lm_node_members(a->node, &v, &n);
  if (rc) {
    errf(err, cap, "cannot list members: %s", lm_strerror(rc));
    return NULL;
  }
  qsort(v, n, sizeof *v, cmp_member);
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, lm__member_json(&v[i]));
  free(v);
  return arr;
}

static json_t *stats_json(agent_t *a, char *err, size_t cap) {
  lm_stats_t st;
  int rc = lm_node_stats(a->node, &st);
  if (rc) {
    errf(err, cap, "cannot read stats: %s", lm_strerror(rc));
    return NULL;
  }
  json_t *drops = json_object();
  for (size_t i = 0; i < st.ndropped; i++) {
    /* the trust layer and the core may both name a reason; add them up */
    json_t *old = json_object_get(drops, st.dropped[i].reason);
    json_int_t prev = old ? json_integer_value(old) : 0;
    json_object_set_new(drops, st.dropped[i].reason,
                        json_integer(prev + (json_int_t)st.dropped[i].count));
  }
  json_t *j = json_object();
#define PUT(k, v) json_object_set_new(j, k, json_integer((json_int_t)(v)))
  json_object_set_new(j, "name", json_string(a->name));
  PUT("generation", a->generation);
  PUT("uptime_s", (lm__unix_ms() - a->started_ms) / 1000);
  PUT("members", st.members);
  PUT("alive", st.alive);
  PUT("local_health", st.local_health);
  PUT("udp_pkts_out", st.udp_pkts_out);
  PUT("udp_bytes_out", st.udp_bytes_out);
  PUT("udp_pkts_in", st.udp_pkts_in);
  PUT("udp_bytes_in", st.udp_bytes_in);
  PUT("tcp_frames_out", st.tcp_frames_out);
  PUT("tcp_bytes_out", st.tcp_bytes_out);
  PUT("tcp_frames_in", st.tcp_frames_in);
  PUT("tcp_bytes_in", st.tcp_bytes_in);
  PUT("probes", st.probes);
  PUT("probes_failed", st.probes_failed);
  PUT("suspicions_raised", st.suspicions_raised);
  PUT("refutes", st.refutes);
  PUT("send_errors", st.send_errors);
  PUT("conns_refused", st.conns_refused);
  PUT("dropped_total", st.dropped_total);
  json_object_set_new(j, "dropped", drops);
  PUT("control_clients", a->ctl ? lm__ctl_client_count(a->ctl) : 0);
#undef PUT
  return j;
}

/* ---- handlers ---- */

static int cmd_ping(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                    json_t **resp, char *err, size_t cap) {
  (void)req, (void)to, (void)err, (void)cap;
  *resp = json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:s}", "ok", 1, "name",
                    a->name, "version", lm_version(), "pid",
                    (json_int_t)getpid(), "generation",
                    (json_int_t)a->generation, "uptime_s",
                    (json_int_t)((lm__unix_ms() - a->started_ms) / 1000),
                    "state", a->stopping ? "leaving" : "running");
  return LM__CMD_DONE;
}

/* members and stats: a view of the running node under one key */
static int node_view(agent_t *a, const char *key,
                     json_t *(*view)(agent_t *, char *, size_t), json_t **resp,
                     char *err, size_t cap) {
  json_t *v = a->node ? view(a, err, cap) : NULL;
  if (!a->node)
    errf(err, cap, "the agent is shutting down");
  if (!v)
    return LM__CMD_FAILED;
  *resp = json_pack("{s:b, s:o}", "ok", 1, key, v);
  return LM__CMD_DONE;
}

static int cmd_members(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                       json_t **resp, char *err, size_t cap) {
  (void)req, (void)to;
  return node_view(a, "members", members_json, resp, err, cap);
}

static int cmd_stats(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                     json_t **resp, char *err, size_t cap) {
  (void)req, (void)to;
  return node_view(a, "stats", stats_json, resp, err, cap);
}

/* Answered once the leave is out, so `livemesh leave` returns when the
 * others have been told. */
static int cmd_leave(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                     json_t **resp, char *err, size_t cap) {
  (void)req, (void)resp;
  if (a->stopping >= 2) {
    errf(err, cap, "the agent is already stopping");
    return LM__CMD_FAILED;
  }
  waiter_t *w = realloc(a->waiters, (a->nwaiters + 1) * sizeof *w);
  if (!w) {
    errf(err, cap, "out of memory");
    return LM__CMD_FAILED;
  }
  a->waiters = w;
  w[a->nwaiters].conn = to->conn;
  w[a->nwaiters++].id = to->id ? json_incref(to->id) : NULL;
  if (!a->stopping)
    lm__agent_begin_stop(a, "leave requested on the control socket");
  return LM__CMD_LATER;
}

/* ---- the table ---- */

const lm__command_t lm__commands[] = {
    {"ping", cmd_ping, 0,
     "the agent's name, version, pid, generation, uptime and state"},
    {"members", cmd_members, 0, "the members the agent sees"},
    {"stats", cmd_stats, 0, "the agent's counters, drops by reason"},
    {"leave", cmd_leave, LM__CMD_WRITES,
     "leave the mesh and stop; answered once the leave is out"},
};
const size_t lm__ncommands = sizeof lm__commands / sizeof lm__commands[0];

const lm__command_t *lm__command_find(const char *name) {
  for (size_t i = 0; name && i < lm__ncommands; i++)
    if (!strcmp(lm__commands[i].name, name))
      return &lm__commands[i];
  return NULL;
}

void lm__command_names(char *out, size_t cap) {
  size_t k = 0;
  if (cap)
    out[0] = 0;
  for (size_t i = 0; i < lm__ncommands && k < cap; i++) {
    int w = snprintf(out + k, cap - k, "%s%s", i ? ", " : "",
                     lm__commands[i].name);
    if (w < 0)
      break;
    k += (size_t)w;
  }
}

void lm__commands_dispatch(agent_t *a, const json_t *req,
                           const lm__reply_to_t *to) {
  char names[256], err[256];
  lm__command_names(names, sizeof names);
  const char *cmd = json_string_value(json_object_get(req, "cmd"));
  if (!cmd) {
    errf(err, sizeof err, "missing \"cmd\" (a string: %s)", names);
    lm__ctl_reply_error(to->srv, to->conn, to->id, err);
    return;
  }
  const lm__command_t *c = lm__command_find(cmd);
  if (!c) {
    errf(err, sizeof err, "unknown command \"%.64s\" (known: %s)", cmd,
         names);
    lm__ctl_reply_error(to->srv, to->conn, to->id, err);
    return;
  }
  json_t *resp = NULL;
  err[0] = 0;
  int rc = c->run(a, req, to, &resp, err, sizeof err);
  if (rc == LM__CMD_DONE)
    lm__ctl_reply(to->srv, to->conn, to->id, resp);
  else if (rc == LM__CMD_FAILED)
    lm__ctl_reply_error(to->srv, to->conn, to->id, err);
}
