/*
 * agent_bridge.c: the agent's etcd bridge (bridge/bridge.h), started when
 * --bridge-etcd is given. The agent feeds it: a watch on every member and
 * service says when the view changed, a once-a-second look at the view's
 * index catches what watches do not report (an address, an incarnation),
 * and `fill` copies the view through the public API when the bridge asks.
 * Its state shows in `livemesh stats`, /metrics (livemesh_bridge_*) and
 * readiness.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_bridge.h"
#include "bridge.h"
#include "metrics.h"

struct lm__agent_bridge {
  lm__agent_t *agent;
  lm_bridge_t *bridge;
  uint64_t watch_id;
  int watching;
  uint64_t last_index;
  uv_timer_t poll;
  char *password;
};

static void blog(void *ud, int level, const char *msg) {
  lm__agent_t *a = ud;
  lm__agent_log(a, level, "%s", msg);
}

/* ---- the view, copied when the bridge asks ---- */

typedef struct fill_ctx {
  lm_bv_t *v;
  json_t *counts; /* host -> services */
} fill_ctx_t;

static int fill_service(void *ud, const lm_service_view_t *sv) {
  fill_ctx_t *c = ud;
  lm_bv_service_t s = {.svc = sv->svc,
                       .effective = sv->effective,
                       .member_status = (int)sv->member_status};
  (void)lm_bv_add_service(c->v, &s);
  return lm__count_host(c->counts, sv);
}

static void fill(void *ud, lm_bv_t *v) {
  lm__agent_t *a = ud;
  if (!a->node)
    return;
  fill_ctx_t c = {.v = v, .counts = json_object()};
  lm_node_services_each(a->node, NULL, fill_service, &c);
  lm_member_t *m = NULL;
  size_t n = 0;
  if (lm_node_view_members(a->node, &m, &n) == 0) {
    for (size_t i = 0; i < n; i++) {
      lm_bv_member_t bm = {
          .name = m[i].name,
          .id = m[i].id,
          .addr = m[i].addr,
          .status = (int)m[i].status,
          .generation = m[i].generation,
          .version = m[i].version,
          .since_ms = m[i].since_ms,
          .nservices = (uint32_t)json_integer_value(
              json_object_get(c.counts, m[i].name))};
      (void)lm_bv_add_member(v, &bm);
    }
    free(m);
  }
  json_decref(c.counts);
  a->bridge->last_index = lm_node_view_index(a->node);
}

/* ---- change notices ---- */

static void on_watch(lm_node_t *node, const lm_watch_event_t *ev, void *ud) {
  (void)node;
  lm__agent_t *a = ud;
  if (!ev->initial && a->bridge && a->bridge->bridge)
    lm_bridge_changed(a->bridge->bridge);
}

static void on_poll(uv_timer_t *t) {
  lm__agent_t *a = t->data;
  if (!a->node || !a->bridge || !a->bridge->bridge)
    return;
  if (lm_node_view_index(a->node) != a->bridge->last_index)
    lm_bridge_changed(a->bridge->bridge);
}

/* ---- life ---- */

/* The first line of --bridge-password-file. */
static char *read_password(const char *path, char *err, size_t cap) {
  char *p = lm__read_small_file(path, 4096, err, cap,
                                "--bridge-password-file");
  if (!p)
    return NULL;
  p[strcspn(p, "\r\n")] = 0;
  if (!p[0]) {
    snprintf(err, cap, "--bridge-password-file %s: empty", path);
    free(p);
    return NULL;
  }
  return p;
}

/* The password is a secret: wiped before it is freed. */
static void free_password(char *p) {
  if (p) {
    sodium_memzero(p, strlen(p));
    free(p);
  }
}

int lm__agent_bridge_start(lm__agent_t *a, char *err, size_t cap) {
  const lm__config_t *cfg = &a->cfg;
  if (cfg->bridge_etcd.n == 0)
    return 0;
  lm__agent_bridge_t *ab = calloc(1, sizeof *ab);
  if (!ab) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  ab->agent = a;
  if (cfg->bridge_password_file &&
      !(ab->password = read_password(cfg->bridge_password_file, err, cap))) {
    free(ab);
    return -1;
  }
  int oslively = cfg->bridge_layout && !strcmp(cfg->bridge_layout, "os-lively");
  char prefix[300];
  if (oslively)
    snprintf(prefix, sizeof prefix, "%s",
             cfg->bridge_namespace ? cfg->bridge_namespace : "");
  else if (cfg->bridge_prefix)
    snprintf(prefix, sizeof prefix, "%s", cfg->bridge_prefix);
  else
    snprintf(prefix, sizeof prefix, "/livemesh/%s/", cfg->cluster);
  lm_bridge_options_t o;
  memset(&o, 0, sizeof o);
  o.etcd.endpoints = (const char *const *)cfg->bridge_etcd.v;
  o.etcd.nendpoints = cfg->bridge_etcd.n;
  o.etcd.ca_file = cfg->bridge_ca;
  o.etcd.cert_file = cfg->bridge_cert;
  o.etcd.key_file = cfg->bridge_key;
  o.etcd.user = cfg->bridge_user;
  o.etcd.password = ab->password;
  o.layout = oslively ? LM_BV_OSLIVELY : LM_BV_NATIVE;
  o.encoding = cfg->bridge_encoding && !strcmp(cfg->bridge_encoding, "json")
                   ? LM_BV_JSON
                   : LM_BV_PROTOBUF;
  o.prefix = prefix;
  o.cluster = cfg->cluster;
  o.name = a->name;
  /* the certificate's copy: a->id is wiped once the node has its own */
  o.id = a->cert.node_pk;
  o.lease_ttl_s = cfg->bridge_lease_ttl_s;
  o.fill = fill;
  o.fill_ud = a;
  o.log = blog;
  o.log_ud = a;
  if (lm_bridge_new(&ab->bridge, &a->loop, &o, err, cap) != 0) {
    free_password(ab->password);
    free(ab);
    return -1;
  }
  a->bridge = ab;
  lm_watch_filter_t wf = {.all = 1};
  if (lm_node_watch(a->node, &wf, on_watch, a, &ab->watch_id) == 0)
    ab->watching = 1;
  uv_timer_init(&a->loop, &ab->poll);
  ab->poll.data = a;
  uv_timer_start(&ab->poll, on_poll, 1000, 1000);
  lm_bridge_start(ab->bridge);
  lm__agent_log(a, LM_LOG_INFO, "bridge: writing the view to etcd at %s%s "
                "(%s layout, under %s)", cfg->bridge_etcd.v[0],
                cfg->bridge_etcd.n > 1 ? ", ..." : "",
                oslively ? "os-lively" : "native", prefix[0] ? prefix : "/");
  return 0;
}

static void poll_closed(uv_handle_t *h) {
  lm__agent_bridge_t *ab = h->data;
  free_password(ab->password);
  free(ab);
}

static void bridge_closed(void *ud) {
  lm__agent_bridge_t *ab = ud;
  ab->poll.data = ab;
  uv_close((uv_handle_t *)&ab->poll, poll_closed);
}

void lm__agent_bridge_stop(lm__agent_t *a) {
  lm__agent_bridge_t *ab = a->bridge;
  if (!ab)
    return;
  a->bridge = NULL;
  if (ab->watching && a->node)
    lm_node_unwatch(a->node, ab->watch_id);
  uv_timer_stop(&ab->poll);
  lm_bridge_t *b = ab->bridge;
  ab->bridge = NULL;
  lm_bridge_close(b, bridge_closed, ab);
}

/* ---- what it shows ---- */

json_t *lm__agent_bridge_json(const lm__agent_t *a) {
  if (!a->bridge || !a->bridge->bridge)
    return NULL;
  lm_bridge_stats_t s;
  lm_bridge_stats(a->bridge->bridge, &s);
  return json_pack(
      "{s:s, s:b, s:b, s:b, s:b, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, "
      "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
      "state", s.state, "healthy", lm_bridge_healthy(a->bridge->bridge),
      "connected", s.connected, "leader", s.leader, "quota_full",
      s.quota_full, "lease_id", (json_int_t)s.lease_id, "writer",
      s.leader_name, "writes", (json_int_t)s.writes, "keys_put",
      (json_int_t)s.keys_put, "keys_deleted", (json_int_t)s.keys_deleted,
      "errors", (json_int_t)s.errors, "reconciliations",
      (json_int_t)s.reconciliations, "elections_won",
      (json_int_t)s.elections_won, "deposed", (json_int_t)s.deposed,
      "leases_lost", (json_int_t)s.leases_lost, "keys_wanted",
      (json_int_t)s.keys_wanted, "keys_pending", (json_int_t)s.keys_pending,
      "lag_last_ms", (json_int_t)s.lag_last_ms, "lag_p50_ms",
      (json_int_t)s.lag_p50_ms, "lag_p99_ms", (json_int_t)s.lag_p99_ms,
      "refused_keys", (json_int_t)s.refused_keys, "last_error",
      s.last_error);
}

json_t *lm__agent_bridge_check(const lm__agent_t *a, int *healthy) {
  *healthy = 1;
  if (!a->bridge || !a->bridge->bridge)
    return NULL;
  lm_bridge_stats_t s;
  lm_bridge_stats(a->bridge->bridge, &s);
  *healthy = lm_bridge_healthy(a->bridge->bridge);
  char detail[256];
  if (*healthy)
    snprintf(detail, sizeof detail, "%s", s.leader
                                              ? "writing the view to etcd"
                                              : "standing by behind the "
                                                "etcd writer");
  else if (s.quota_full)
    snprintf(detail, sizeof detail, "etcd's quota is full: not writing");
  else
    snprintf(detail, sizeof detail, "etcd not reachable (%s): %s", s.state,
             s.last_error[0] ? s.last_error : "connecting");
  return json_pack("{s:b, s:s, s:s, s:b}", "status", *healthy, "detail",
                   detail, "state", s.state, "leader", s.leader);
}

void lm__agent_bridge_metrics(const lm__agent_t *a, lm__buf_t *b) {
  if (!a->bridge || !a->bridge->bridge)
    return;
  lm_bridge_stats_t s;
  lm_bridge_stats(a->bridge->bridge, &s);
  struct {
    const char *name, *type, *help;
    double v;
  } fam[] = {
      {"livemesh_bridge_leader", "gauge",
       "1 when this agent is the etcd writer", s.leader},
      {"livemesh_bridge_connected", "gauge", "1 when etcd is reachable",
       s.connected},
      {"livemesh_bridge_healthy", "gauge",
       "1 when the bridge writes or stands by behind a live writer",
       lm_bridge_healthy(a->bridge->bridge)},
      {"livemesh_bridge_quota_full", "gauge",
       "1 while etcd refuses writes for its space quota", s.quota_full},
      {"livemesh_bridge_lag_seconds", "gauge",
       "last delay from a change of the view to its write in etcd",
       (double)s.lag_last_ms / 1000.0},
      {"livemesh_bridge_lag_p50_seconds", "gauge",
       "median of that delay over the last 1024 writes",
       (double)s.lag_p50_ms / 1000.0},
      {"livemesh_bridge_lag_p99_seconds", "gauge",
       "99th percentile of that delay over the last 1024 writes",
       (double)s.lag_p99_ms / 1000.0},
      {"livemesh_bridge_keys", "gauge", "keys the view wants in etcd",
       (double)s.keys_wanted},
      {"livemesh_bridge_keys_pending", "gauge",
       "keys still to put or delete", (double)s.keys_pending},
      {"livemesh_bridge_writes_total", "counter",
       "transactions the writer had applied", (double)s.writes},
      {"livemesh_bridge_keys_put_total", "counter", "keys put",
       (double)s.keys_put},
      {"livemesh_bridge_keys_deleted_total", "counter", "keys deleted",
       (double)s.keys_deleted},
      {"livemesh_bridge_errors_total", "counter",
       "etcd requests that failed", (double)s.errors},
      {"livemesh_bridge_reconciliations_total", "counter",
       "full reconciliations completed", (double)s.reconciliations},
      {"livemesh_bridge_elections_won_total", "counter",
       "times this agent became the writer", (double)s.elections_won},
      {"livemesh_bridge_deposed_total", "counter",
       "writes refused by the fence (another writer won)", (double)s.deposed},
      {"livemesh_bridge_leases_lost_total", "counter",
       "leases etcd no longer had", (double)s.leases_lost},
  };
  for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
    lm__prom_family(b, fam[i].name, fam[i].type, fam[i].help);
    lm__prom_sample(b, fam[i].name, 0, NULL, NULL, fam[i].v);
  }
}
