/*
 * commands.c: the agent's command table (commands.h) and its handlers:
 * ping, members, stats, leave, and the services: services, service, is-up,
 * watch, register, pass, fail, maint, deregister. The JSON each one
 * answers is documented in docs/agent.md ("Control socket", "Services").
 *
 * A refusal of a service command is {"ok":false,"error":...,"code":C}
 * with C "invalid" (a bad field: the message names it), "not_found" (an
 * unknown uuid), "exists" (a uuid that belongs to another service),
 * "not_permitted" (exec checks on an agent without --allow-exec-checks),
 * "busy" (a limit reached) or "failed".
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
#include "agent_bridge.h"
#include "commands.h"
#include "control.h"
#include "probes.h"
#include "svc_json.h"

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

int lm__count_host(void *ud, const lm_service_view_t *v) {
  json_t *counts = ud;
  json_t *c = json_object_get(counts, v->svc->host ? v->svc->host : "");
  json_object_set_new(counts, v->svc->host ? v->svc->host : "",
                      json_integer(c ? json_integer_value(c) + 1 : 1));
  return 0;
}

static json_t *members_json(agent_t *a, char *err, size_t cap) {
  lm_member_t *v;
  size_t n;
  /* a stale view also lists the members remembered from the snapshot,
   * and holds their statuses while this node is cut off */
  int64_t age;
  int stale = lm_node_view_stale(a->node, &age) == 1;
  int rc = stale ? lm_node_view_members(a->node, &v, &n)
                 : lm_node_members(a->node, &v, &n);
  if (rc) {
    errf(err, cap, "cannot list members: %s", lm_strerror(rc));
    return NULL;
  }
  qsort(v, n, sizeof *v, cmp_member);
  json_t *counts = json_object();
  lm_node_services_each(a->node, NULL, lm__count_host, counts);
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *c = json_object_get(counts, v[i].name);
    json_t *m = lm__member_json(&v[i], c ? (size_t)json_integer_value(c) : 0);
    if (m && stale) {
      json_object_set_new(m, "stale", json_true());
      json_object_set_new(m, "stale_age_ms", json_integer(age));
    }
    json_array_append_new(arr, m);
  }
  json_decref(counts);
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
  PUT("stream_pings", st.stream_pings);
  PUT("stream_rescues", st.stream_rescues);
  PUT("probes_stale", st.probes_stale);
  PUT("fences", st.fences);
  PUT("unfences", st.unfences);
  PUT("cert_requests_sent", st.cert_requests_sent);
  PUT("cert_requests_received", st.cert_requests_received);
  PUT("certs_learned", st.certs_learned);
  PUT("pair_keys_derived", st.pair_keys_derived);
  PUT("records_deferred", st.records_deferred);
  PUT("stream_deferred", st.stream_deferred);
  PUT("stream_deferred_dropped", st.stream_deferred_dropped);
  PUT("send_errors", st.send_errors);
  PUT("conns_refused", st.conns_refused);
  PUT("dropped_total", st.dropped_total);
  json_object_set_new(j, "dropped", drops);
  PUT("control_clients", a->ctl ? lm__ctl_client_count(a->ctl) : 0);
  PUT("services_local", st.services_local);
  PUT("services", st.services);
  json_t *by = json_object();
  for (int k = 0; k < 3; k++)
    json_object_set_new(by, lm_svc_status_name((lm_svc_status_t)k),
                        json_integer((json_int_t)st.services_by_status[k]));
  json_object_set_new(j, "services_by_status", by);
  PUT("svc_lists_sent", st.svc_lists_sent);
  PUT("svc_lists_received", st.svc_lists_received);
  PUT("svc_requests_sent", st.svc_requests_sent);
  /* check_runs: {kind: {ok, fail, timeout}} */
  static const char *const RESULT[3] = {"ok", "fail", "timeout"};
  json_t *runs = json_object();
  for (int k = 0; k < 5; k++) {
    json_t *r = json_object();
    for (int x = 0; x < 3; x++)
      json_object_set_new(r, RESULT[x],
                          json_integer((json_int_t)st.check_runs[k][x]));
    json_object_set_new(runs, lm_check_kind_name((lm_check_kind_t)(k + 1)),
                        r);
  }
  json_object_set_new(j, "check_runs", runs);
  json_t *bridge = lm__agent_bridge_json(a);
  if (bridge)
    json_object_set_new(j, "bridge", bridge);
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
  w[a->nwaiters].id = to->id ? json_incref(to->id) : NULL;
  w[a->nwaiters].to = *to;
  w[a->nwaiters].to.id = w[a->nwaiters].id;
  a->nwaiters++;
  if (!a->stopping)
    lm__agent_begin_stop(a, "leave requested on the control socket");
  return LM__CMD_LATER;
}

/* ---- services ---- */

static int refuse(json_t **resp, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(json_t **resp, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lm__utf8_scrub(msg); /* a "%.64s" may cut a character in two */
  *resp = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "code", code);
  return LM__CMD_DONE;
}

static int ok_empty(json_t **resp) {
  *resp = json_pack("{s:b}", "ok", 1);
  return LM__CMD_DONE;
}

/* Refuses any key but "cmd", "id" and those in `allowed` (NULL-ended);
 * 0 when the request is clean. */
static int unknown_key(const json_t *req, const char *const *allowed,
                       json_t **resp) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)req, k, v) {
    if (!strcmp(k, "cmd") || !strcmp(k, "id"))
      continue;
    int known = 0;
    for (size_t i = 0; allowed[i] && !known; i++)
      known = !strcmp(allowed[i], k);
    if (!known) {
      char list[256] = "";
      size_t n = 0;
      for (size_t i = 0; allowed[i] && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
                              i ? ", " : "", allowed[i]);
      refuse(resp, "invalid", "unknown field \"%.64s\" (known: %s)", k,
             allowed[0] ? list : "none");
      return 1;
    }
  }
  return 0;
}

/* An optional string field: 0 (absent or null: *out NULL), 1 refused. */
static int opt_str(const json_t *req, const char *key, size_t max,
                   const char **out, json_t **resp) {
  json_t *v = json_object_get(req, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v) ||
      strlen(json_string_value(v)) != json_string_length(v)) {
    refuse(resp, "invalid", "field \"%s\": expected a string", key);
    return 1;
  }
  if (json_string_length(v) > max) {
    refuse(resp, "invalid", "field \"%s\": %zu bytes long, at most %zu "
           "allowed", key, json_string_length(v), max);
    return 1;
  }
  *out = json_string_value(v);
  return 0;
}

/* An optional boolean field. */
static int opt_bool(const json_t *req, const char *key, int *out,
                    json_t **resp) {
  json_t *v = json_object_get(req, key);
  *out = 0;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_boolean(v)) {
    refuse(resp, "invalid", "field \"%s\": expected true or false", key);
    return 1;
  }
  *out = json_is_true(v);
  return 0;
}

/* The "uuid" field: required (1 refused) or optional (*has says). */
static int get_uuid(const json_t *req, int required, uint8_t uuid[LM_UUID_LEN],
                    int *has, json_t **resp) {
  json_t *v = json_object_get(req, "uuid");
  if (has)
    *has = 0;
  if (!v || json_is_null(v)) {
    if (!required)
      return 0;
    refuse(resp, "invalid", "field \"uuid\": required (the service's UUID)");
    return 1;
  }
  if (!json_is_string(v) || lm_uuid_parse(uuid, json_string_value(v)) != 0) {
    refuse(resp, "invalid", "field \"uuid\": expected a UUID such as "
           "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0");
    return 1;
  }
  if (has)
    *has = 1;
  return 0;
}

static int node_gone(agent_t *a, json_t **resp) {
  if (a->node && a->stopping < 2)
    return 0;
  refuse(resp, "busy", "the agent is shutting down");
  return 1;
}

typedef struct svc_list {
  json_t *arr;
  int64_t now;
  int stale;
  int64_t stale_age;
} svc_list_t;

static int add_service(void *ud, const lm_service_view_t *v) {
  svc_list_t *l = ud;
  json_t *o = lm__service_json_at(v, l->stale, l->now);
  if (o && l->stale)
    json_object_set_new(o, "stale_age_ms", json_integer(l->stale_age));
  if (o)
    json_array_append_new(l->arr, o);
  return 0;
}

/* By host, type, name, then worker index (workers in order; a service
 * without one first), then uuid. */
static int cmp_service(const void *x, const void *y) {
  json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
  static const char *const KEYS[] = {"host", "type", "name"};
  for (int i = 0; i < 3; i++) {
    int c = strcmp(json_string_value(json_object_get(a, KEYS[i])),
                   json_string_value(json_object_get(b, KEYS[i])));
    if (c)
      return c;
  }
  json_t *wa = json_object_get(a, "worker"), *wb = json_object_get(b, "worker");
  json_int_t ia = json_is_integer(wa) ? json_integer_value(wa) : -1;
  json_int_t ib = json_is_integer(wb) ? json_integer_value(wb) : -1;
  if (ia != ib)
    return ia < ib ? -1 : 1;
  return strcmp(json_string_value(json_object_get(a, "uuid")),
                json_string_value(json_object_get(b, "uuid")));
}

/* The services matching `f`, sorted by host, type, name and uuid. */
static json_t *services_array(agent_t *a, const lm_service_filter_t *f) {
  svc_list_t l = {json_array(), lm__unix_ms(), 0, 0};
  l.stale = lm_node_view_stale(a->node, &l.stale_age) == 1;
  lm_node_services_each(a->node, f, add_service, &l);
  size_t n = json_array_size(l.arr);
  json_t **v = n ? malloc(n * sizeof *v) : NULL;
  if (!v)
    return l.arr;
  for (size_t i = 0; i < n; i++)
    v[i] = json_incref(json_array_get(l.arr, i));
  qsort(v, n, sizeof *v, cmp_service);
  json_array_clear(l.arr);
  for (size_t i = 0; i < n; i++)
    json_array_append_new(l.arr, v[i]);
  free(v);
  return l.arr;
}

static int status_parse(const char *s) {
  for (int k = 0; k < 3; k++)
    if (!strcmp(s, lm_svc_status_name((lm_svc_status_t)k)))
      return k;
  return -1;
}

static int cmd_services(agent_t *a, const json_t *req,
                        const lm__reply_to_t *to, json_t **resp, char *err,
                        size_t cap) {
  (void)to, (void)err, (void)cap;
  static const char *const K[] = {"type", "host", "region", "status", NULL};
  lm_service_filter_t f = {.status = -1};
  const char *st;
  if (unknown_key(req, K, resp) ||
      opt_str(req, "type", LM_SVC_TYPE_MAX, &f.type, resp) ||
      opt_str(req, "host", LM_SVC_HOST_MAX, &f.host, resp) ||
      opt_str(req, "region", LM_SVC_REGION_MAX, &f.region, resp) ||
      opt_str(req, "status", 32, &st, resp) || node_gone(a, resp))
    return LM__CMD_DONE;
  if (st && (f.status = status_parse(st)) < 0)
    return refuse(resp, "invalid", "field \"status\": expected up, down or "
                  "maintenance, got \"%.32s\"", st);
  uint64_t index = lm_node_view_index(a->node);
  *resp = json_pack("{s:b, s:I, s:o}", "ok", 1, "index", (json_int_t)index,
                    "services", services_array(a, &f));
  return LM__CMD_DONE;
}

static int cmd_service(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                       json_t **resp, char *err, size_t cap) {
  (void)to, (void)err, (void)cap;
  static const char *const K[] = {"uuid", NULL};
  uint8_t uuid[LM_UUID_LEN];
  if (unknown_key(req, K, resp) || get_uuid(req, 1, uuid, NULL, resp) ||
      node_gone(a, resp))
    return LM__CMD_DONE;
  lm_service_filter_t f = {.status = -1, .uuid = uuid};
  json_t *arr = services_array(a, &f);
  json_t *s = json_array_get(arr, 0);
  if (!s) {
    json_decref(arr);
    char u[LM_UUID_STRLEN + 1];
    lm_uuid_format(u, uuid);
    return refuse(resp, "not_found", "unknown uuid %s", u);
  }
  *resp = json_pack("{s:b, s:O}", "ok", 1, "service", s);
  json_decref(arr);
  return LM__CMD_DONE;
}

static int cmd_is_up(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                     json_t **resp, char *err, size_t cap) {
  (void)to, (void)err, (void)cap;
  static const char *const K[] = {"type", "host", "uuid", NULL};
  const char *type, *host;
  uint8_t uuid[LM_UUID_LEN];
  int has_uuid;
  if (unknown_key(req, K, resp) ||
      opt_str(req, "type", LM_SVC_TYPE_MAX, &type, resp) ||
      opt_str(req, "host", LM_SVC_HOST_MAX, &host, resp) ||
      get_uuid(req, 0, uuid, &has_uuid, resp))
    return LM__CMD_DONE;
  if (has_uuid && (type || host))
    return refuse(resp, "invalid", "give \"type\" and \"host\", or "
                  "\"uuid\", not both");
  if (!has_uuid && (!type || !host || !*type || !*host))
    return refuse(resp, "invalid", "field \"%s\": required (ask with "
                  "\"type\" and \"host\", or with \"uuid\")",
                  !type || !*type ? "type" : "host");
  if (node_gone(a, resp))
    return LM__CMD_DONE;
  lm_is_up_t r;
  int up = has_uuid ? lm_node_is_up_uuid(a->node, uuid, &r)
                    : lm_node_is_up(a->node, type, host, &r);
  if (up < 0)
    return refuse(resp, "failed", "is-up: %s", lm_strerror(up));
  if (!r.found && !has_uuid) { /* echo what was asked */
    snprintf(r.type, sizeof r.type, "%s", type);
    snprintf(r.host, sizeof r.host, "%s", host);
  }
  int64_t age;
  int stale = lm_node_view_stale(a->node, &age) == 1;
  json_t *o = lm__is_up_json(up, &r, stale);
  if (o && stale)
    json_object_set_new(o, "stale_age_ms", json_integer(age));
  *resp = json_pack("{s:b}", "ok", 1);
  json_object_update(*resp, o);
  json_decref(o);
  return LM__CMD_DONE;
}

/* ---- watch ---- */

static void on_watch_event(lm_node_t *node, const lm_watch_event_t *ev,
                           void *ud) {
  (void)node;
  lm__watcher_t *w = ud;
  json_t *line = lm__watch_event_json(ev);
  if (!line)
    return;
  if (!w->ready)
    json_array_append_new(w->pending, line);
  else
    w->to.ops->line(&w->to, line);
}

static int cmd_watch(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                     json_t **resp, char *err, size_t cap) {
  (void)err, (void)cap;
  static const char *const K[] = {"type", "host", "uuid", "members", "all",
                                  NULL};
  lm_watch_filter_t f = {0};
  uint8_t uuid[LM_UUID_LEN];
  int has_uuid;
  if (unknown_key(req, K, resp) ||
      opt_str(req, "type", LM_SVC_TYPE_MAX, &f.type, resp) ||
      opt_str(req, "host", LM_SVC_HOST_MAX, &f.host, resp) ||
      get_uuid(req, 0, uuid, &has_uuid, resp) ||
      opt_bool(req, "members", &f.members, resp) ||
      opt_bool(req, "all", &f.all, resp))
    return LM__CMD_DONE;
  if (f.members && f.all)
    return refuse(resp, "invalid", "field \"members\": \"members\" and "
                  "\"all\" exclude each other");
  if (f.members && (f.type || has_uuid))
    return refuse(resp, "invalid", "field \"members\": a members watch takes "
                  "no \"type\" or \"uuid\"");
  if (has_uuid)
    f.uuid = uuid;
  if (node_gone(a, resp))
    return LM__CMD_DONE;
  lm__watcher_t *w = calloc(1, sizeof *w);
  if (!w || !(w->pending = json_array())) {
    free(w);
    return refuse(resp, "failed", "out of memory");
  }
  w->agent = a;
  w->conn = to->conn;
  w->to = *to;
  w->to.id = NULL;
  int rc = lm_node_watch(a->node, &f, on_watch_event, w, &w->watch_id);
  if (rc) {
    json_decref(w->pending);
    free(w);
    return refuse(resp, rc == LM_EINVAL ? "invalid" : "failed",
                  "cannot watch: %s", lm_strerror(rc));
  }
  w->next = a->watchers;
  a->watchers = w;
  /* the answer first, then the initial state gathered meanwhile, then
   * the transitions as they come */
  to->ops->stream(to);
  to->ops->answer(to, json_pack("{s:b, s:I}", "ok", 1, "watch",
                                (json_int_t)w->watch_id));
  w->ready = 1;
  size_t i;
  json_t *line;
  json_array_foreach(w->pending, i, line)
    to->ops->line(to, json_incref(line));
  json_decref(w->pending);
  w->pending = NULL;
  return LM__CMD_LATER;
}

/* ---- register and the changes ---- */

static int cmd_register(agent_t *a, const json_t *req,
                        const lm__reply_to_t *to, json_t **resp, char *err,
                        size_t cap) {
  (void)err, (void)cap;
  lm__spec_buf_t sb;
  int eph = 0;
  char msg[512], u[LM_UUID_STRLEN + 1] = "";
  if (lm__spec_from_json(req, &sb, &eph, msg, sizeof msg))
    return refuse(resp, "invalid", "%s", msg);
  if (eph && !(to->ops->flags & LM__REPLY_LASTS)) {
    lm__spec_buf_free(&sb);
    return refuse(resp, "invalid", "field \"ephemeral\": this request's "
                  "connection ends with its answer, so nothing could keep "
                  "an ephemeral service alive (use the control socket)");
  }
  if (node_gone(a, resp)) {
    lm__spec_buf_free(&sb);
    return LM__CMD_DONE;
  }
  uint8_t uuid[LM_UUID_LEN];
  int rc, replace = 0;
  msg[0] = 0;
  if (sb.spec.uuid) {
    lm_uuid_format(u, sb.spec.uuid);
    lm_is_up_t r;
    memset(&r, 0, sizeof r);
    lm_node_is_up_uuid(a->node, sb.spec.uuid, &r);
    uint64_t owner = lm__agent_ephemeral_owner(a, sb.spec.uuid);
    if (r.found && strcmp(r.host, a->name)) {
      lm__spec_buf_free(&sb);
      return refuse(resp, "exists", "field \"uuid\": %s is already the uuid "
                    "of a service of member %s", u, r.host);
    }
    if (owner && owner != to->conn) {
      lm__spec_buf_free(&sb);
      return refuse(resp, "exists", "field \"uuid\": %s is already "
                    "registered, as an ephemeral service of another "
                    "connection", u);
    }
    if (lm__agent_is_declared(a, sb.spec.uuid)) {
      lm__spec_buf_free(&sb);
      return refuse(resp, "exists", "field \"uuid\": %s is declared in the "
                    "config file; change it there", u);
    }
    replace = r.found;
  }
  if (replace) {
    memcpy(uuid, sb.spec.uuid, LM_UUID_LEN);
    rc = lm_node_service_update(a->node, &sb.spec, msg, sizeof msg);
  } else {
    rc = lm_node_service_register(a->node, &sb.spec, uuid, msg, sizeof msg);
  }
  lm__spec_buf_free(&sb);
  switch (rc) {
  case 0: break;
  case LM_EEXIST:
    return refuse(resp, "exists", "field \"uuid\": %s is already registered "
                  "(deregister it first, or leave out the uuid)", u);
  case LM_EPERM:
    return refuse(resp, "not_permitted", "field \"exec_check\": exec checks "
                  "are not allowed on this agent (start it with "
                  "--allow-exec-checks)");
  case LM_ELIMIT:
    return refuse(resp, "busy", "this agent holds %d services, the most it "
                  "may", LM_SVC_PER_NODE_MAX);
  case LM_EINVAL:
    return refuse(resp, "invalid", "%s", msg[0] ? msg : "invalid service");
  default:
    return refuse(resp, "failed", "cannot register: %s%s%s",
                  lm_strerror(rc), msg[0] ? ": " : "", msg);
  }
  lm_uuid_format(u, uuid);
  if (eph) {
    lm__agent_reg_forget(a, uuid);
    if (!lm__agent_ephemeral_owner(a, uuid))
      lm__agent_ephemeral_add(a, to->conn, uuid);
  } else {
    lm__agent_ephemeral_drop(a, uuid);
    /* what it was registered with, to register it again at start */
    json_t *spec = json_deep_copy(req);
    json_object_del(spec, "cmd");
    json_object_del(spec, "id");
    json_object_del(spec, "ephemeral");
    json_object_set_new(spec, "uuid", json_string(u));
    lm__agent_reg_put(a, uuid, spec);
    json_decref(spec);
  }
  lm__agent_log(a, LM_LOG_INFO, "service %s %s (%s%s)", u,
                replace ? "updated" : "registered",
                json_string_value(json_object_get(req, "type")),
                eph ? ", ephemeral" : "");
  *resp = json_pack("{s:b, s:s}", "ok", 1, "uuid", u);
  return LM__CMD_DONE;
}

/* The refusal for a uuid that this agent does not hold. */
static int not_here(agent_t *a, const uint8_t uuid[LM_UUID_LEN],
                    json_t **resp) {
  char u[LM_UUID_STRLEN + 1];
  lm_uuid_format(u, uuid);
  lm_is_up_t r;
  memset(&r, 0, sizeof r);
  if (lm_node_is_up_uuid(a->node, uuid, &r) >= 0 && r.found &&
      strcmp(r.host, a->name))
    return refuse(resp, "not_found", "service %s is on member %s, not on "
                  "this agent; ask the agent of %s", u, r.host, r.host);
  return refuse(resp, "not_found", "unknown uuid %s", u);
}

static int pass_fail(agent_t *a, const json_t *req, json_t **resp, int pass) {
  static const char *const K[] = {"uuid", "note", NULL};
  uint8_t uuid[LM_UUID_LEN];
  const char *note;
  if (unknown_key(req, K, resp) || get_uuid(req, 1, uuid, NULL, resp) ||
      opt_str(req, "note", LM_SVC_NOTE_MAX, &note, resp) ||
      node_gone(a, resp))
    return LM__CMD_DONE;
  int rc = pass ? lm_node_service_pass(a->node, uuid, note)
                : lm_node_service_fail(a->node, uuid, note);
  if (rc == LM_ENOTFOUND)
    return not_here(a, uuid, resp);
  if (rc == LM_EINVAL) {
    char u[LM_UUID_STRLEN + 1];
    lm_uuid_format(u, uuid);
    return refuse(resp, "invalid", "service %s has no TTL check: pass and "
                  "fail are for services registered with a ttl", u);
  }
  if (rc)
    return refuse(resp, "failed", "%s: %s", pass ? "pass" : "fail",
                  lm_strerror(rc));
  return ok_empty(resp);
}

static int cmd_pass(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                    json_t **resp, char *err, size_t cap) {
  (void)to, (void)err, (void)cap;
  return pass_fail(a, req, resp, 1);
}

static int cmd_fail(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                    json_t **resp, char *err, size_t cap) {
  (void)to, (void)err, (void)cap;
  return pass_fail(a, req, resp, 0);
}

static int cmd_maint(agent_t *a, const json_t *req, const lm__reply_to_t *to,
                     json_t **resp, char *err, size_t cap) {
  (void)to, (void)err, (void)cap;
  static const char *const K[] = {"uuid", "for", "off", "note", NULL};
  uint8_t uuid[LM_UUID_LEN];
  const char *note;
  int off;
  if (unknown_key(req, K, resp) || get_uuid(req, 1, uuid, NULL, resp) ||
      opt_str(req, "note", LM_SVC_NOTE_MAX, &note, resp) ||
      opt_bool(req, "off", &off, resp))
    return LM__CMD_DONE;
  json_t *forv = json_object_get(req, "for");
  if (json_is_null(forv))
    forv = NULL;
  if (off && (forv || note))
    return refuse(resp, "invalid", "field \"off\": goes without \"for\" and "
                  "\"note\"");
  int64_t until = 0;
  if (forv) {
    uint64_t ms = 0;
    int rc = lm__duration_json(forv, &ms);
    if (rc || ms == 0 || ms > UINT32_MAX)
      return refuse(resp, "invalid", "field \"for\": expected a duration "
                    "longer than 0 such as \"30m\", \"1h\" or a number of "
                    "seconds");
    until = lm__unix_ms() + (int64_t)ms;
  }
  if (node_gone(a, resp))
    return LM__CMD_DONE;
  int rc = off ? lm_node_service_maint_off(a->node, uuid)
               : lm_node_service_maint(a->node, uuid, until, note);
  if (rc == LM_ENOTFOUND)
    return not_here(a, uuid, resp);
  if (rc)
    return refuse(resp, rc == LM_EINVAL ? "invalid" : "failed", "maint: %s",
                  lm_strerror(rc));
  lm__agent_reg_maint(a, uuid, !off, until, note);
  return ok_empty(resp);
}

static int cmd_deregister(agent_t *a, const json_t *req,
                          const lm__reply_to_t *to, json_t **resp, char *err,
                          size_t cap) {
  (void)to, (void)err, (void)cap;
  static const char *const K[] = {"uuid", NULL};
  uint8_t uuid[LM_UUID_LEN];
  if (unknown_key(req, K, resp) || get_uuid(req, 1, uuid, NULL, resp) ||
      node_gone(a, resp))
    return LM__CMD_DONE;
  int rc = lm_node_service_deregister(a->node, uuid);
  if (rc == LM_ENOTFOUND)
    return not_here(a, uuid, resp);
  if (rc)
    return refuse(resp, "failed", "deregister: %s", lm_strerror(rc));
  char u[LM_UUID_STRLEN + 1];
  lm_uuid_format(u, uuid);
  lm__agent_ephemeral_drop(a, uuid);
  lm__agent_reg_forget(a, uuid);
  lm__agent_log(a, LM_LOG_INFO, "service %s deregistered", u);
  return ok_empty(resp);
}

/* ---- the table ---- */

const lm__command_t lm__commands[] = {
    {"ping", cmd_ping, 0,
     "the agent's name, version, pid, generation, uptime and state"},
    {"members", cmd_members, 0, "the members the agent sees"},
    {"stats", cmd_stats, 0, "the agent's counters, drops by reason"},
    {"leave", cmd_leave, LM__CMD_WRITES,
     "leave the mesh and stop; answered once the leave is out"},
    {"services", cmd_services, 0,
     "the services in the view, filtered by type, host, region, status"},
    {"service", cmd_service, 0, "one service by uuid"},
    {"is-up", cmd_is_up, 0, "is a service up: by type and host, or uuid"},
    {"watch", cmd_watch, 0,
     "the current state, then every transition, streamed on the connection"},
    {"register", cmd_register, LM__CMD_WRITES,
     "register (or replace) a service of this agent"},
    {"pass", cmd_pass, LM__CMD_WRITES, "a TTL service's heartbeat"},
    {"fail", cmd_fail, LM__CMD_WRITES, "a TTL service down until its pass"},
    {"maint", cmd_maint, LM__CMD_WRITES,
     "maintenance for a while, until turned off, or off"},
    {"deregister", cmd_deregister, LM__CMD_WRITES, "remove a service"},
    /* probes and metrics (probes_agent.c; what they mean: probes.h) */
    {"ready", lm__cmd_row_ready, 0,
     "is the agent ready: joined, converged, its services passing, live"},
    {"live", lm__cmd_row_live, 0, "is the agent's event loop responsive"},
    {"environ", lm__cmd_row_environ, 0, "the versions of the libraries in use"},
    {"metrics", lm__cmd_row_metrics, 0, "the counters as Prometheus text"},
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

/* ---- the control socket's replies ---- */

static int ctl_answer(const lm__reply_to_t *to, json_t *resp) {
  agent_t *a = to->ud;
  if (!a->ctl) {
    json_decref(resp);
    return -1;
  }
  return lm__ctl_reply(a->ctl, to->conn, to->id, resp);
}

static int ctl_stream(const lm__reply_to_t *to) {
  agent_t *a = to->ud;
  return a->ctl ? lm__ctl_conn_stream(a->ctl, to->conn) : -1;
}

static int ctl_line(const lm__reply_to_t *to, json_t *line) {
  agent_t *a = to->ud;
  if (!a->ctl) {
    json_decref(line);
    return -1;
  }
  return lm__ctl_reply(a->ctl, to->conn, NULL, line);
}

static int ctl_alive(const lm__reply_to_t *to) {
  return ((agent_t *)to->ud)->ctl != NULL;
}

const lm__reply_ops_t lm__ctl_reply_ops = {ctl_answer, ctl_stream, ctl_line,
                                           ctl_alive, LM__REPLY_LASTS};

/* Every error text of the table ends here or in refuse(): made valid
 * UTF-8 first (a "%.64s" of what the client sent may cut a character in
 * two, and JSON could not carry it). */
static void refusal(const lm__reply_to_t *to, const char *msg,
                    const char *code) {
  char text[768];
  snprintf(text, sizeof text, "%s", msg);
  lm__utf8_scrub(text);
  to->ops->answer(to, code ? json_pack("{s:b, s:s, s:s}", "ok", 0, "error",
                                       text, "code", code)
                           : json_pack("{s:b, s:s}", "ok", 0, "error", text));
}

void lm__commands_dispatch(agent_t *a, const json_t *req,
                           const lm__reply_to_t *to) {
  char names[512], err[768];
  lm__command_names(names, sizeof names);
  const char *cmd = json_string_value(json_object_get(req, "cmd"));
  if (!cmd) {
    errf(err, sizeof err, "missing \"cmd\" (a string: %s)", names);
    refusal(to, err, "invalid");
    return;
  }
  const lm__command_t *c = lm__command_find(cmd);
  if (!c) {
    errf(err, sizeof err, "unknown command \"%.64s\" (known: %s)", cmd,
         names);
    refusal(to, err, "invalid");
    return;
  }
  json_t *resp = NULL;
  err[0] = 0;
  int rc = c->run(a, req, to, &resp, err, sizeof err);
  if (rc == LM__CMD_DONE && !resp) /* only when out of memory */
    errf(err, sizeof err, "out of memory"), rc = LM__CMD_FAILED;
  if (rc == LM__CMD_DONE) {
    to->ops->answer(to, resp);
  } else if (rc == LM__CMD_FAILED) {
    refusal(to, err, NULL);
  }
}
