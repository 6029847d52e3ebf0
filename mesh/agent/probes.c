/*
 * probes.c: the loop watchdog, the readiness and liveness checks, and the
 * bodies of the probe endpoints (probes.h says what each one means).
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <livemesh/livemesh.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "probes.h"

#define MS 1000000ull /* nanoseconds */
#define RING 64       /* >= LM__LIVE_WINDOW_MS / LM__LIVE_TICK_MS ticks */

struct lm__probes {
  uv_timer_t timer;
  lm_node_t *node;
  /* written on the loop, read from any thread */
  _Atomic uint64_t last_tick_ns; /* uv_hrtime() of the last tick (or start) */
  _Atomic uint64_t lag_ns, lag_max_ns, ticks;
  /* the loop's own */
  struct {
    uint64_t at_ns, lag_ns;
  } ring[RING];
  unsigned ring_next;
  size_t alive;              /* the last sample of the alive count */
  uint64_t alive_changed_ns; /* when it last changed; 0 never */
  int joined;                /* another member has been seen alive */
};

/* The alive count, sampled on every tick and on every question, so a
 * change between two ticks is not missed when asked at once. */
static void sample(lm__probes_t *p, uint64_t now) {
  size_t alive = 0;
  if (!p->node || lm_node_alive_count(p->node, &alive) != 0)
    return;
  if (alive != p->alive) {
    p->alive = alive;
    p->alive_changed_ns = now;
  }
  if (alive > 1)
    p->joined = 1;
}

static void on_tick(uv_timer_t *t) {
  lm__probes_t *p = t->data;
  uint64_t now = uv_hrtime();
  uint64_t due = atomic_load(&p->last_tick_ns) + LM__LIVE_TICK_MS * MS;
  uint64_t lag = now > due ? now - due : 0;
  p->ring[p->ring_next].at_ns = now;
  p->ring[p->ring_next].lag_ns = lag;
  p->ring_next = (p->ring_next + 1) % RING;
  uint64_t max = 0;
  for (unsigned i = 0; i < RING; i++)
    if (p->ring[i].at_ns && now - p->ring[i].at_ns <= LM__LIVE_WINDOW_MS * MS &&
        p->ring[i].lag_ns > max)
      max = p->ring[i].lag_ns;
  atomic_store(&p->lag_ns, lag);
  atomic_store(&p->lag_max_ns, max);
  atomic_store(&p->last_tick_ns, now);
  atomic_fetch_add(&p->ticks, 1);
  sample(p, now);
}

static void on_closed(uv_handle_t *h) { free(h->data); }

int lm__probes_new(lm__probes_t **out, uv_loop_t *loop, lm_node_t *node) {
  *out = NULL;
  lm__probes_t *p = calloc(1, sizeof *p);
  if (!p)
    return LM_ENOMEM;
  int rc = uv_timer_init(loop, &p->timer);
  if (rc) {
    free(p);
    return rc;
  }
  p->timer.data = p;
  p->node = node;
  atomic_store(&p->last_tick_ns, uv_hrtime());
  sample(p, atomic_load(&p->last_tick_ns));
  p->alive_changed_ns = 0; /* the start counts as stable */
  rc = uv_timer_start(&p->timer, on_tick, LM__LIVE_TICK_MS, LM__LIVE_TICK_MS);
  if (rc) {
    uv_close((uv_handle_t *)&p->timer, on_closed);
    return rc;
  }
  *out = p;
  return 0;
}

void lm__probes_close(lm__probes_t *p) {
  if (!p)
    return;
  p->node = NULL;
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_closed);
}

void lm__probes_loop_state(const lm__probes_t *p, uint64_t now_ns,
                           lm__loop_state_t *o) {
  lm__probes_t *q = (lm__probes_t *)p; /* atomics only: loads */
  uint64_t last = atomic_load(&q->last_tick_ns);
  o->ticks = atomic_load(&q->ticks);
  o->lag_ms = (int64_t)(atomic_load(&q->lag_ns) / MS);
  o->lag_max_ms = (int64_t)(atomic_load(&q->lag_max_ns) / MS);
  o->since_tick_ms = now_ns > last ? (int64_t)((now_ns - last) / MS) : 0;
  o->live = o->since_tick_ms < LM__LIVE_STALL_MS &&
            o->lag_max_ms < LM__LIVE_LAG_MS;
}

static json_t *check(int ok, const char *detail) {
  return json_pack("{s:b, s:s}", "status", ok, "detail", detail);
}

static json_t *loop_check(const lm__probes_t *p, int *live) {
  lm__loop_state_t s;
  lm__probes_loop_state(p, uv_hrtime(), &s);
  char d[200];
  if (s.since_tick_ms >= LM__LIVE_STALL_MS)
    snprintf(d, sizeof d, "the event loop did not tick for %lld ms (bound "
             "%d ms)", (long long)s.since_tick_ms, LM__LIVE_STALL_MS);
  else if (s.lag_max_ms >= LM__LIVE_LAG_MS)
    snprintf(d, sizeof d, "the event loop ran %lld ms late within the last "
             "%d s (bound %d ms)", (long long)s.lag_max_ms,
             LM__LIVE_WINDOW_MS / 1000, LM__LIVE_LAG_MS);
  else
    snprintf(d, sizeof d, "the event loop ticked %lld ms ago; worst lag %lld "
             "ms within the last %d s", (long long)s.since_tick_ms,
             (long long)s.lag_max_ms, LM__LIVE_WINDOW_MS / 1000);
  json_t *c = check(s.live, d);
  json_object_set_new(c, "since_tick_ms", json_integer(s.since_tick_ms));
  json_object_set_new(c, "lag_ms", json_integer(s.lag_ms));
  json_object_set_new(c, "lag_max_ms", json_integer(s.lag_max_ms));
  json_object_set_new(c, "stall_bound_ms", json_integer(LM__LIVE_STALL_MS));
  json_object_set_new(c, "lag_bound_ms", json_integer(LM__LIVE_LAG_MS));
  json_object_set_new(c, "window_ms", json_integer(LM__LIVE_WINDOW_MS));
  *live = s.live;
  return c;
}

json_t *lm__probes_live(const lm__probes_t *p, int *live) {
  json_t *checks = json_object();
  json_object_set_new(checks, "loop", loop_check(p, live));
  return checks;
}

/* ---- readiness ---- */

typedef struct svc_walk {
  size_t n, up, maint;
  json_t *failing;
} svc_walk_t;

static int walk_local(void *ud, const lm_service_view_t *v) {
  svc_walk_t *w = ud;
  if (!v->is_local)
    return 0;
  w->n++;
  if (v->effective == LM_SVC_UP) {
    w->up++;
    return 0;
  }
  if (v->effective == LM_SVC_MAINT) {
    w->maint++;
    return 0;
  }
  char u[LM_UUID_STRLEN + 1];
  lm_uuid_format(u, v->svc->uuid);
  const char *out = "";
  for (size_t i = 0; i < v->svc->nchecks; i++)
    if (v->svc->checks[i].status == LM_SVC_DOWN && v->svc->checks[i].output) {
      out = v->svc->checks[i].output;
      break;
    }
  json_array_append_new(
      w->failing,
      json_pack("{s:s, s:s, s:s, s:s, s:s}", "uuid", u, "type",
                v->svc->type ? v->svc->type : "", "name",
                v->svc->name ? v->svc->name : "", "status",
                lm_svc_status_name(v->effective), "output", out));
  return 0;
}

static json_t *services_check(lm__probes_t *p) {
  svc_walk_t w = {0, 0, 0, json_array()};
  if (p->node)
    lm_node_services_each(p->node, NULL, walk_local, &w);
  size_t down = json_array_size(w.failing);
  char d[400];
  if (!down) {
    snprintf(d, sizeof d, "%zu local service(s): %zu up, %zu in maintenance",
             w.n, w.up, w.maint);
  } else {
    /* the first few by name, for people; "failing" has them all */
    int k = snprintf(d, sizeof d, "%zu of %zu local service(s) down:", down,
                     w.n);
    size_t i;
    json_t *f;
    json_array_foreach(w.failing, i, f) {
      if (i == 4 || k < 0 || (size_t)k >= sizeof d) {
        if (i == 4 && k > 0 && (size_t)k < sizeof d)
          snprintf(d + k, sizeof d - (size_t)k, " ...");
        break;
      }
      const char *name = json_string_value(json_object_get(f, "name"));
      k += snprintf(d + k, sizeof d - (size_t)k, "%s %s%s%s (%s)",
                    i ? "," : "",
                    json_string_value(json_object_get(f, "type")),
                    name && *name ? "/" : "", name ? name : "",
                    json_string_value(json_object_get(f, "uuid")));
    }
  }
  json_t *c = check(!down, d);
  json_object_set_new(c, "local", json_integer((json_int_t)w.n));
  json_object_set_new(c, "up", json_integer((json_int_t)w.up));
  json_object_set_new(c, "maintenance", json_integer((json_int_t)w.maint));
  json_object_set_new(c, "failing", w.failing);
  return c;
}

json_t *lm__probes_ready(lm__probes_t *p, size_t nseeds, int leaving,
                         int *ready) {
  uint64_t now = uv_hrtime();
  sample(p, now);
  char d[200];
  json_t *checks = json_object();

  int joined = !leaving && (nseeds == 0 || p->joined);
  if (leaving)
    snprintf(d, sizeof d, "the agent is leaving the mesh");
  else if (nseeds == 0)
    snprintf(d, sizeof d, "alone by configuration (no --join); %zu member(s) "
             "alive", p->alive);
  else if (p->joined)
    snprintf(d, sizeof d, "joined; %zu member(s) alive", p->alive);
  else
    snprintf(d, sizeof d, "not joined yet: none of the %zu seed(s) has "
             "answered", nseeds);
  json_t *c = check(joined, d);
  json_object_set_new(c, "alone", json_boolean(nseeds == 0));
  json_object_set_new(c, "seeds", json_integer((json_int_t)nseeds));
  json_object_set_new(checks, "joined", c);

  int64_t stable_ms = p->alive_changed_ns
                          ? (int64_t)((now - p->alive_changed_ns) / MS)
                          : -1; /* -1: unchanged since the start */
  int stable = stable_ms < 0 || stable_ms >= LM__CONVERGE_STABLE_MS;
  int converged = stable && (nseeds == 0 || p->alive > 1);
  if (nseeds && p->alive <= 1)
    snprintf(d, sizeof d, "no member but this one is alive");
  else if (!stable)
    snprintf(d, sizeof d, "the alive count changed %lld ms ago (to %zu); "
             "stable after %d ms", (long long)stable_ms, p->alive,
             LM__CONVERGE_STABLE_MS);
  else
    snprintf(d, sizeof d, "%zu member(s) alive, unchanged for %d ms or more",
             p->alive, LM__CONVERGE_STABLE_MS);
  c = check(converged, d);
  json_object_set_new(c, "alive", json_integer((json_int_t)p->alive));
  json_object_set_new(c, "stable_ms", json_integer(stable_ms));
  json_object_set_new(c, "bound_ms", json_integer(LM__CONVERGE_STABLE_MS));
  json_object_set_new(checks, "converged", c);

  c = services_check(p);
  int services = json_is_true(json_object_get(c, "status"));
  json_object_set_new(checks, "services", c);

  int live;
  json_object_set_new(checks, "loop", loop_check(p, &live));
  *ready = joined && converged && services && live;
  return checks;
}

/* ---- the HTTP bodies ---- */

lm__probe_kind_t lm__probe_path(const char *path) {
  static const struct {
    const char *path;
    lm__probe_kind_t kind;
  } P[] = {
      {"/readyz", LM__PROBE_READYZ},
      {"/readyz/", LM__PROBE_READYZ},
      {"/livez", LM__PROBE_LIVEZ},
      {"/livez/", LM__PROBE_LIVEZ},
      {"/.well-known/heartbeat/readiness", LM__PROBE_HB_READINESS},
      {"/.well-known/heartbeat/liveliness", LM__PROBE_HB_LIVELINESS},
      {"/.well-known/heartbeat/environ", LM__PROBE_HB_ENVIRON},
      {"/metrics", LM__PROBE_METRICS},
  };
  for (size_t i = 0; path && i < sizeof P / sizeof P[0]; i++)
    if (!strcmp(path, P[i].path))
      return P[i].kind;
  return LM__PROBE_NONE;
}

static char *dump(const json_t *j) {
  return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

/* One line of a detail: a newline would start a line of its own. */
static void put_oneline(char **p, size_t *len, size_t *cap, const char *s) {
  for (; s && *s; s++) {
    if (*len + 2 > *cap)
      return;
    (*p)[(*len)++] = (*s == '\n' || *s == '\r') ? ' ' : *s;
  }
}

static int kube_body(const char *word, const json_t *checks, int ok,
                     int verbose, char **body) {
  size_t cap = 64, len = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)checks, k, v) {
    const char *d = json_string_value(json_object_get(v, "detail"));
    cap += strlen(k) + (d ? strlen(d) : 0) + 32;
  }
  char *p = malloc(cap);
  if (!p)
    return -1;
  if (ok && !verbose) {
    snprintf(p, cap, "ok");
    *body = p;
    return 200;
  }
  json_object_foreach((json_t *)checks, k, v) {
    int pass = json_is_true(json_object_get(v, "status"));
    if (pass && !verbose)
      continue;
    len += (size_t)snprintf(p + len, cap - len, "[%c]%s %s", pass ? '+' : '-',
                            k, pass ? "ok" : "failed");
    if (!pass) {
      const char *d = json_string_value(json_object_get(v, "detail"));
      len += (size_t)snprintf(p + len, cap - len, ": ");
      put_oneline(&p, &len, &cap, d && *d ? d : "reason withheld");
    }
    p[len++] = '\n';
  }
  snprintf(p + len, cap - len, "%s check %s\n", word, ok ? "passed" : "failed");
  *body = p;
  return ok ? 200 : 503;
}

int lm__probe_format(lm__probe_kind_t kind, const json_t *checks, int ok,
                     int verbose, char **body, const char **content_type) {
  *body = NULL;
  switch (kind) {
  case LM__PROBE_READYZ:
  case LM__PROBE_LIVEZ:
    *content_type = "text/plain; charset=utf-8";
    return kube_body(kind == LM__PROBE_READYZ ? "readyz" : "livez", checks,
                     ok, verbose, body);
  case LM__PROBE_HB_READINESS:
  case LM__PROBE_HB_LIVELINESS: {
    json_t *j = json_pack("{s:b, s:O}", "status", ok, "checks",
                          (json_t *)checks);
    *body = j ? dump(j) : NULL;
    json_decref(j);
    *content_type = "application/json";
    return *body ? (ok ? 200 : 500) : -1;
  }
  default:
    return -1;
  }
}

int lm__probe_format_environ(const json_t *libraries, const char *name,
                             char **body, const char **content_type) {
  json_t *j = json_pack("{s:b, s:s, s:s, s:O}", "status", 1, "name",
                        name ? name : "", "version", lm_version(),
                        "libraries", (json_t *)libraries);
  *body = j ? dump(j) : NULL;
  json_decref(j);
  *content_type = "application/json";
  return *body ? 200 : -1;
}
