/*
 * probes_agent.c: the agent's side of probes.h and metrics.h: the command
 * rows `ready`, `live`, `environ` and `metrics`, and lm__probe_http(), the
 * one function the HTTP router calls for every probe path. What the
 * answers mean is in probes.h; their text and JSON come from probes.c and
 * metrics.c, which know nothing of the agent.
 *
 * Must never depend on swim/ or mesh/node/'s internals: the public API and
 * the agent's state (agent.h).
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <livemesh/livemesh.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#ifdef LM_HAVE_MICROHTTPD
#include <microhttpd.h>
#endif

#include "agent.h"
#include "agent_bridge.h"
#include "commands.h"
#include "curl_dl.h"
#include "metrics.h"
#include "probes.h"

typedef lm__agent_t agent_t;

static int probes_gone(agent_t *a, char *err, size_t cap) {
  if (a->probes && a->node)
    return 0;
  snprintf(err, cap, "the agent is shutting down");
  return 1;
}

/* The probes' checks, and the bridge's when there is one: an agent asked
 * to copy the view into etcd is not ready while it cannot. */
static json_t *ready_checks(agent_t *a, int *ready) {
  json_t *checks =
      lm__probes_ready(a->probes, a->cfg.join.n, a->stopping != 0, ready);
  int healthy;
  json_t *bridge = lm__agent_bridge_check(a, &healthy);
  if (bridge && checks) {
    json_object_set_new(checks, "bridge", bridge);
    if (!healthy)
      *ready = 0;
  } else {
    json_decref(bridge);
  }
  return checks;
}

json_t *lm__environ_libraries(void) {
  json_t *l = json_object();
#define LIB(n, v) json_object_set_new(l, n, json_pack("{s:s}", "version", v))
  LIB("livemesh", lm_version());
  LIB("libuv", uv_version_string());
  LIB("libsodium", sodium_version_string());
  LIB("msgpack-c", msgpack_version());
  LIB("jansson", jansson_version_str());
  /* libcurl only once an http check has loaded it: asking for this report
   * must not map it (curl_dl.h) */
  const lm__curl_t *cu = lm__curl_loaded();
  if (cu) {
    const curl_version_info_data *cv = cu->version_info(CURLVERSION_NOW);
    LIB("libcurl", cv && cv->version ? cv->version : LIBCURL_VERSION);
  }
#ifdef LM_HAVE_MICROHTTPD
  LIB("libmicrohttpd", MHD_get_version());
#endif
#undef LIB
  return l;
}

/* The metrics text, or NULL with `err` set. */
static char *metrics_text(agent_t *a, char *err, size_t cap) {
  lm_stats_t st;
  int rc = lm_node_stats(a->node, &st);
  if (rc) {
    snprintf(err, cap, "cannot read stats: %s", lm_strerror(rc));
    return NULL;
  }
  lm__metrics_input_t in;
  memset(&in, 0, sizeof in);
  in.stats = &st;
  lm_member_t *m;
  size_t n;
  if (lm_node_members(a->node, &m, &n) == 0) {
    for (size_t i = 0; i < n; i++)
      if ((unsigned)m[i].status < 4)
        in.members_by_status[m[i].status]++;
    free(m);
  }
  in.version = lm_version();
  in.name = a->name;
  in.start_time_s = (double)a->started_ms / 1000.0;
  lm__loop_state_t ls;
  lm__probes_loop_state(a->probes, uv_hrtime(), &ls);
  in.loop_lag_s = (double)ls.lag_ms / 1000.0;
  in.loop_lag_max_s = (double)ls.lag_max_ms / 1000.0;
  in.live = ls.live;
  json_decref(ready_checks(a, &in.ready));
  in.control_clients = a->ctl ? lm__ctl_client_count(a->ctl) : 0;
  char *text = lm__metrics_text(&in);
  if (text && a->bridge) {
    lm__buf_t b;
    lm__buf_init(&b);
    lm__buf_puts(&b, text);
    lm__agent_bridge_metrics(a, &b);
    free(text);
    text = lm__buf_take(&b);
  }
  if (!text)
    snprintf(err, cap, "out of memory");
  return text;
}

/* ---- the rows ---- */

int lm__cmd_row_ready(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                      json_t **resp, char *err, size_t cap) {
  (void)req, (void)to;
  if (probes_gone(a, err, cap))
    return LM__CMD_FAILED;
  int ready;
  json_t *checks = ready_checks(a, &ready);
  *resp = json_pack("{s:b, s:b, s:o}", "ok", 1, "ready", ready, "checks",
                    checks);
  return LM__CMD_DONE;
}

int lm__cmd_row_live(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                     json_t **resp, char *err, size_t cap) {
  (void)req, (void)to;
  if (probes_gone(a, err, cap))
    return LM__CMD_FAILED;
  int live;
  json_t *checks = lm__probes_live(a->probes, &live);
  *resp = json_pack("{s:b, s:b, s:o}", "ok", 1, "live", live, "checks",
                    checks);
  return LM__CMD_DONE;
}

int lm__cmd_row_environ(agent_t *a, const json_t *req,
                        const lm__reply_to_t *to, json_t **resp, char *err,
                        size_t cap) {
  (void)req, (void)to, (void)err, (void)cap;
  *resp = json_pack("{s:b, s:s, s:s, s:o}", "ok", 1, "name", a->name,
                    "version", lm_version(), "libraries",
                    lm__environ_libraries());
  return LM__CMD_DONE;
}

int lm__cmd_row_metrics(agent_t *a, const json_t *req,
                        const lm__reply_to_t *to, json_t **resp, char *err,
                        size_t cap) {
  (void)req, (void)to;
  if (probes_gone(a, err, cap))
    return LM__CMD_FAILED;
  char *text = metrics_text(a, err, cap);
  if (!text)
    return LM__CMD_FAILED;
  *resp = json_pack("{s:b, s:s}", "ok", 1, "text", text);
  free(text);
  return *resp ? LM__CMD_DONE : LM__CMD_FAILED;
}

/* ---- HTTP ---- */

/* A stopping agent is neither live nor ready: 503 (or 500), said in the
 * endpoint's own shape. */
static json_t *stopping_checks(void) {
  return json_pack("{s:{s:b, s:s}}", "agent", "status", 0, "detail",
                   "the agent is shutting down");
}

int lm__probe_http(agent_t *a, const char *path, int verbose, char **body,
                   const char **content_type) {
  *body = NULL;
  lm__probe_kind_t kind = lm__probe_path(path);
  char err[256];
  json_t *checks = NULL;
  int ok = 0, st;
  switch (kind) {
  case LM__PROBE_NONE:
    return 0;
  case LM__PROBE_HB_ENVIRON: {
    json_t *libs = lm__environ_libraries();
    st = lm__probe_format_environ(libs, a->name, body, content_type);
    json_decref(libs);
    return st;
  }
  case LM__PROBE_METRICS:
    *content_type = LM__METRICS_CONTENT_TYPE;
    if (probes_gone(a, err, sizeof err)) {
      *body = strdup("# the agent is shutting down\n");
      return *body ? 503 : -1;
    }
    *body = metrics_text(a, err, sizeof err);
    return *body ? 200 : -1;
  case LM__PROBE_READYZ:
  case LM__PROBE_HB_READINESS:
    checks = probes_gone(a, err, sizeof err) ? stopping_checks()
                                             : ready_checks(a, &ok);
    break;
  case LM__PROBE_LIVEZ:
  case LM__PROBE_HB_LIVELINESS:
    checks = probes_gone(a, err, sizeof err)
                 ? stopping_checks()
                 : lm__probes_live(a->probes, &ok);
    break;
  }
  if (!checks)
    return -1;
  st = lm__probe_format(kind, checks, ok, verbose, body, content_type);
  json_decref(checks);
  return st;
}
