/*
 * agent_services.c: what the agent keeps about services beyond the node:
 * the ephemeral registrations and the watches tied to control
 * connections (gone when their connection closes), the registrations kept
 * across restarts in DATA_DIR/services.json, and the services declared in
 * the config file (registered at start, re-synced on SIGHUP).
 *
 * services.json, written atomically whenever a kept registration changes:
 *
 *   {"version": 1, "node": "web1",
 *    "services": [{"uuid": "...", "created_ms": 1795310682123,
 *                  "spec": {<the register fields it was made with>},
 *                  "maint": null | {"until_ms": 0 | unix ms, "note": "..."}}],
 *    "declared": [{"uuid": "...", "created_ms": ...}]}
 *
 * "services" are the runtime registrations that are not ephemeral, made
 * again at start with the same uuid and creation time; "declared" only
 * keeps the creation time of the config file's services, which come back
 * from the config itself. A file that does not parse, or that belongs to
 * another node, is named in one warning and ignored.
 *
 * Must never depend on swim/ or mesh/node/'s internals: the public API.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <livemesh/livemesh.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "svc_json.h"
#include "trust.h"

#define SERVICES_FILE "services.json"
#define SERVICES_VERSION 1

typedef lm__agent_t agent_t;

static void uuid_text(char out[LM_UUID_STRLEN + 1],
                      const uint8_t uuid[LM_UUID_LEN]) {
  lm_uuid_format(out, uuid);
}

/* ---- ephemeral registrations and watches ---- */

int lm__agent_ephemeral_add(agent_t *a, uint64_t conn,
                            const uint8_t uuid[LM_UUID_LEN]) {
  lm__ephemeral_t *v =
      realloc(a->ephemeral, (a->nephemeral + 1) * sizeof *v);
  if (!v)
    return -1;
  a->ephemeral = v;
  v[a->nephemeral].conn = conn;
  memcpy(v[a->nephemeral].uuid, uuid, LM_UUID_LEN);
  a->nephemeral++;
  return 0;
}

uint64_t lm__agent_ephemeral_owner(const agent_t *a,
                                   const uint8_t uuid[LM_UUID_LEN]) {
  for (size_t i = 0; i < a->nephemeral; i++)
    if (!memcmp(a->ephemeral[i].uuid, uuid, LM_UUID_LEN))
      return a->ephemeral[i].conn;
  return 0;
}

void lm__agent_ephemeral_drop(agent_t *a, const uint8_t uuid[LM_UUID_LEN]) {
  for (size_t i = 0; i < a->nephemeral;)
    if (!memcmp(a->ephemeral[i].uuid, uuid, LM_UUID_LEN))
      a->ephemeral[i] = a->ephemeral[--a->nephemeral];
    else
      i++;
}

static void watcher_free(lm__watcher_t *w) {
  json_decref(w->pending);
  free(w);
}

void lm__agent_conn_closed(agent_t *a, uint64_t conn) {
  for (size_t i = 0; i < a->nephemeral;) {
    if (a->ephemeral[i].conn != conn) {
      i++;
      continue;
    }
    uint8_t uuid[LM_UUID_LEN];
    memcpy(uuid, a->ephemeral[i].uuid, LM_UUID_LEN);
    a->ephemeral[i] = a->ephemeral[--a->nephemeral];
    if (!a->node)
      continue; /* stopping: the node and its services are gone */
    char u[LM_UUID_STRLEN + 1];
    uuid_text(u, uuid);
    int rc = lm_node_service_deregister(a->node, uuid);
    if (rc == 0)
      lm__agent_log(a, LM_LOG_INFO, "ephemeral service %s deregistered: the "
                    "connection that registered it closed", u);
    else if (rc != LM_ENOTFOUND)
      lm__agent_log(a, LM_LOG_ERROR, "cannot deregister the ephemeral "
                    "service %s: %s", u, lm_strerror(rc));
  }
  for (lm__watcher_t **pp = &a->watchers; *pp;) {
    lm__watcher_t *w = *pp;
    if (w->conn != conn) {
      pp = &w->next;
      continue;
    }
    *pp = w->next;
    if (a->node)
      lm_node_unwatch(a->node, w->watch_id);
    watcher_free(w);
  }
}

void lm__agent_services_free(agent_t *a) {
  while (a->watchers) {
    lm__watcher_t *w = a->watchers;
    a->watchers = w->next;
    watcher_free(w);
  }
  free(a->ephemeral);
  a->ephemeral = NULL;
  a->nephemeral = 0;
  json_decref(a->regs);
  json_decref(a->declared);
  a->regs = a->declared = NULL;
}

/* ---- services.json ---- */

int lm__write_atomic(const char *dir, const char *name, const char *data,
                     size_t len, char *err, size_t cap) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int rc = lm_file_write_atomic(path, data, len, 0600);
  if (rc) {
    snprintf(err, cap, "cannot write %s: %s", path, strerror(-rc));
    return -1;
  }
  return 0;
}

/* The creation time the view holds for a local service, or 0. */
static int take_created(void *ud, const lm_service_view_t *v) {
  *(int64_t *)ud = v->svc->created_ms;
  return 1;
}

static int64_t created_ms_of(agent_t *a, const char *u) {
  uint8_t uuid[LM_UUID_LEN];
  int64_t ms = 0;
  if (!a->node || lm_uuid_parse(uuid, u))
    return 0;
  lm_service_filter_t f = {.status = -1, .uuid = uuid};
  lm_node_services_each(a->node, &f, take_created, &ms);
  return ms;
}

static void save(agent_t *a) {
  json_t *svcs = json_array(), *decl = json_array();
  const char *u;
  json_t *r;
  json_object_foreach(a->regs, u, r) {
    json_t *e = json_deep_copy(r);
    int64_t c = created_ms_of(a, u);
    if (c)
      json_object_set_new(e, "created_ms", json_integer(c));
    json_array_append_new(svcs, e);
  }
  json_object_foreach(a->declared, u, r) {
    int64_t c = created_ms_of(a, u);
    if (c)
      json_array_append_new(decl, json_pack("{s:s, s:I}", "uuid", u,
                                            "created_ms", (json_int_t)c));
  }
  json_t *root = json_pack("{s:i, s:s, s:o, s:o}", "version",
                           SERVICES_VERSION, "node", a->name, "services", svcs,
                           "declared", decl);
  char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                    : NULL;
  json_decref(root);
  char err[PATH_MAX + 128];
  if (!text ||
      lm__write_atomic(a->cfg.data_dir, SERVICES_FILE, text, strlen(text),
                       err, sizeof err))
    lm__agent_log(a, LM_LOG_ERROR, "registrations not saved: %s",
                  text ? err : "out of memory");
  free(text);
}

void lm__agent_reg_put(agent_t *a, const uint8_t uuid[LM_UUID_LEN],
                       const json_t *spec) {
  char u[LM_UUID_STRLEN + 1];
  uuid_text(u, uuid);
  if (!a->regs)
    a->regs = json_object();
  json_t *old = json_object_get(a->regs, u);
  json_t *maint = old ? json_object_get(old, "maint") : NULL;
  json_object_set_new(
      a->regs, u,
      json_pack("{s:s, s:I, s:O, s:O}", "uuid", u, "created_ms",
                (json_int_t)created_ms_of(a, u), "spec", spec, "maint",
                maint ? maint : json_null()));
  save(a);
}

void lm__agent_reg_forget(agent_t *a, const uint8_t uuid[LM_UUID_LEN]) {
  char u[LM_UUID_STRLEN + 1];
  uuid_text(u, uuid);
  if (json_object_get(a->regs, u)) {
    json_object_del(a->regs, u);
    save(a);
  }
}

void lm__agent_reg_maint(agent_t *a, const uint8_t uuid[LM_UUID_LEN], int on,
                         int64_t until_ms, const char *note) {
  char u[LM_UUID_STRLEN + 1];
  uuid_text(u, uuid);
  json_t *r = json_object_get(a->regs, u);
  if (!r)
    return; /* ephemeral or declared: not kept */
  json_object_set_new(r, "maint",
                      on ? json_pack("{s:I, s:s}", "until_ms",
                                     (json_int_t)until_ms, "note",
                                     note ? note : "")
                         : json_null());
  save(a);
}

/* ---- declared services ---- */

int lm__agent_is_declared(const agent_t *a, const uint8_t uuid[LM_UUID_LEN]) {
  char u[LM_UUID_STRLEN + 1];
  uuid_text(u, uuid);
  return json_object_get(a->declared, u) != NULL;
}

/* A declared service without a uuid gets one derived from what names it
 * (node, type, name, worker), so a restart or a reload keeps it. */
static void stable_uuid(uint8_t out[LM_UUID_LEN], const char *node,
                        const json_t *spec) {
  const char *type = json_string_value(json_object_get(spec, "type"));
  const char *name = json_string_value(json_object_get(spec, "name"));
  json_t *w = json_object_get(spec, "worker");
  char worker[32];
  snprintf(worker, sizeof worker, "%lld",
           json_is_integer(w) ? (long long)json_integer_value(w) : -1LL);
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, LM_UUID_LEN);
  const char *parts[] = {"livemesh declared service", node, type ? type : "",
                         name ? name : "", worker};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    crypto_generichash_update(&st, (const unsigned char *)parts[i],
                              strlen(parts[i]) + 1);
  crypto_generichash_final(&st, out, LM_UUID_LEN);
  out[6] = (uint8_t)((out[6] & 0x0f) | 0x80); /* RFC 9562 version 8 */
  out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

/* The config's services as uuid -> register fields (each with its uuid);
 * NULL with `err` set when two of them name the same service. */
static json_t *declared_map(agent_t *a, const json_t *services, char *err,
                            size_t cap) {
  json_t *map = json_object();
  size_t i;
  json_t *s;
  json_array_foreach(services, i, s) {
    json_t *spec = json_deep_copy(s);
    json_t *ju = json_object_get(spec, "uuid");
    uint8_t uuid[LM_UUID_LEN];
    char u[LM_UUID_STRLEN + 1];
    if (json_is_string(ju) && !lm_uuid_parse(uuid, json_string_value(ju))) {
      uuid_text(u, uuid);
    } else {
      stable_uuid(uuid, a->name, spec);
      uuid_text(u, uuid);
    }
    json_object_set_new(spec, "uuid", json_string(u));
    json_t *prev = json_object_get(map, u);
    if (prev) {
      snprintf(err, cap, "services[%zu]: the same service as services[%lld] "
               "(uuid %s): give it another name, a worker index or a uuid", i,
               (long long)json_integer_value(json_object_get(prev, "#")), u);
      json_decref(spec);
      json_decref(map);
      return NULL;
    }
    json_object_set_new(spec, "#", json_integer((json_int_t)i));
    json_object_set_new(map, u, spec);
  }
  /* "#" only served the message above */
  const char *k;
  json_object_foreach(map, k, s) json_object_del(s, "#");
  return map;
}

/* Registers (or, with `update`, replaces) one service from its register
 * fields; 0 or -1 with `err` set. */
static int register_spec(agent_t *a, const json_t *spec, int64_t created_ms,
                         int update, char *err, size_t cap) {
  lm__spec_buf_t sb;
  if (lm__spec_from_json(spec, &sb, NULL, err, cap))
    return -1;
  sb.spec.created_ms = created_ms;
  char msg[256] = "";
  int rc = update ? lm_node_service_update(a->node, &sb.spec, msg, sizeof msg)
                  : lm_node_service_register(a->node, &sb.spec, NULL, msg,
                                             sizeof msg);
  lm__spec_buf_free(&sb);
  if (rc) {
    snprintf(err, cap, "%s%s%s",
             rc == LM_EPERM ? "exec checks are not allowed on this agent "
                              "(--allow-exec-checks)"
                            : lm_strerror(rc),
             msg[0] && rc != LM_EPERM ? ": " : "",
             rc != LM_EPERM ? msg : "");
    return -1;
  }
  return 0;
}

static const char *spec_type(const json_t *spec) {
  const char *t = json_string_value(json_object_get(spec, "type"));
  return t ? t : "?";
}

/* The file, or NULL (missing: silently; bad or foreign: one warning). */
static json_t *load_file(agent_t *a, const char *path) {
  if (access(path, F_OK) != 0)
    return NULL;
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  const char *why = NULL;
  char buf[256];
  if (!root) {
    snprintf(buf, sizeof buf, "line %d: %s", je.line, je.text);
    why = buf;
  } else if (!json_is_object(root) ||
             json_integer_value(json_object_get(root, "version")) !=
                 SERVICES_VERSION ||
             !json_is_array(json_object_get(root, "services"))) {
    why = "not a livemesh services file of version 1";
  } else if (!json_is_string(json_object_get(root, "node")) ||
             strcmp(json_string_value(json_object_get(root, "node")),
                    a->name)) {
    snprintf(buf, sizeof buf, "it belongs to node \"%.64s\", not to %s",
             json_is_string(json_object_get(root, "node"))
                 ? json_string_value(json_object_get(root, "node"))
                 : "?",
             a->name);
    why = buf;
  }
  if (why) {
    lm__agent_log(a, LM_LOG_WARN, "%s: %s; ignoring it (its registrations "
                  "are not restored)", path, why);
    json_decref(root);
    return NULL;
  }
  return root;
}

static int64_t stored_created(const json_t *list, const char *u) {
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) {
    const char *eu = json_string_value(json_object_get(e, "uuid"));
    if (eu && !strcmp(eu, u)) {
      json_int_t c = json_integer_value(json_object_get(e, "created_ms"));
      return c > 0 ? (int64_t)c : 0;
    }
  }
  return 0;
}

int lm__agent_declared_check(agent_t *a, char *err, size_t cap) {
  if (!a->cfg.services)
    return 0;
  char why[400];
  json_t *map = declared_map(a, a->cfg.services, why, sizeof why);
  json_decref(map);
  if (!map)
    snprintf(err, cap, "config file %s: %s",
             a->cfg.config_file ? a->cfg.config_file : "?", why);
  return map ? 0 : -1;
}

void lm__agent_services_start(agent_t *a) {
  char path[PATH_MAX], err[512];
  snprintf(path, sizeof path, "%s/%s", a->cfg.data_dir, SERVICES_FILE);
  json_t *root = load_file(a, path);
  json_t *stored = root ? json_object_get(root, "services") : NULL;
  json_t *stored_decl = root ? json_object_get(root, "declared") : NULL;
  if (!a->regs)
    a->regs = json_object();
  /* declared in the config file (checked when the config was loaded) */
  json_t *map = a->cfg.services ? declared_map(a, a->cfg.services, err,
                                               sizeof err)
                                : json_object();
  if (!map) {
    lm__agent_log(a, LM_LOG_ERROR, "config file: %s; no declared service is "
                  "registered", err);
    map = json_object();
  }
  a->declared = json_object();
  const char *u;
  json_t *spec;
  json_object_foreach(map, u, spec) {
    if (register_spec(a, spec, stored_created(stored_decl, u), 0, err,
                      sizeof err)) {
      lm__agent_log(a, LM_LOG_ERROR, "declared service %s (%s): %s", u,
                    spec_type(spec), err);
      continue;
    }
    json_object_set(a->declared, u, spec);
    lm__agent_log(a, LM_LOG_INFO, "declared service %s (%s) registered", u,
                  spec_type(spec));
  }
  json_decref(map);
  /* registrations made at runtime before the last stop */
  size_t i, restored = 0;
  json_t *e;
  int64_t now = lm__unix_ms();
  json_array_foreach(stored, i, e) {
    const char *eu = json_string_value(json_object_get(e, "uuid"));
    json_t *es = json_object_get(e, "spec");
    uint8_t uuid[LM_UUID_LEN];
    if (!eu || lm_uuid_parse(uuid, eu) || !json_is_object(es)) {
      lm__agent_log(a, LM_LOG_WARN, "%s: services[%zu] is damaged; skipped",
                    path, i);
      continue;
    }
    if (json_object_get(a->declared, eu)) {
      lm__agent_log(a, LM_LOG_WARN, "%s: service %s is now declared in the "
                    "config file; the config wins", path, eu);
      continue;
    }
    json_int_t c = json_integer_value(json_object_get(e, "created_ms"));
    if (register_spec(a, es, c > 0 ? (int64_t)c : 0, 0, err, sizeof err)) {
      lm__agent_log(a, LM_LOG_WARN, "%s: service %s (%s) not restored: %s",
                    path, eu, spec_type(es), err);
      continue;
    }
    json_t *m = json_object_get(e, "maint");
    if (json_is_object(m)) {
      json_int_t until = json_integer_value(json_object_get(m, "until_ms"));
      const char *note = json_string_value(json_object_get(m, "note"));
      if (until == 0 || until > now)
        lm_node_service_maint(a->node, uuid, (int64_t)until, note);
      else
        m = NULL; /* it ended while the agent was away */
    }
    json_object_set_new(
        a->regs, eu,
        json_pack("{s:s, s:I, s:O, s:O}", "uuid", eu, "created_ms", c, "spec",
                  es, "maint", json_is_object(m) ? m : json_null()));
    restored++;
  }
  if (restored)
    lm__agent_log(a, LM_LOG_INFO, "restored %zu registration(s) from %s",
                  restored, path);
  json_decref(root);
  if (json_object_size(a->regs) || json_object_size(a->declared) || stored)
    save(a);
}

void lm__agent_services_reload(agent_t *a, const json_t *services) {
  char err[512];
  json_t *empty = json_array();
  json_t *map = declared_map(a, services ? services : empty, err, sizeof err);
  json_decref(empty);
  if (!map) {
    lm__agent_log(a, LM_LOG_ERROR, "reload: config file: %s; the declared "
                  "services stay as they are", err);
    return;
  }
  if (!a->declared)
    a->declared = json_object();
  int changes = 0;
  const char *u;
  json_t *spec, *tmp;
  /* removed */
  json_object_foreach_safe(a->declared, tmp, u, spec) {
    if (json_object_get(map, u))
      continue;
    uint8_t uuid[LM_UUID_LEN];
    lm_uuid_parse(uuid, u);
    int rc = a->node ? lm_node_service_deregister(a->node, uuid) : LM_ESTATE;
    lm__agent_log(a, rc && rc != LM_ENOTFOUND ? LM_LOG_ERROR : LM_LOG_INFO,
                  "reload: declared service %s (%s) removed%s%s", u,
                  spec_type(spec), rc && rc != LM_ENOTFOUND ? ": " : "",
                  rc && rc != LM_ENOTFOUND ? lm_strerror(rc) : "");
    json_object_del(a->declared, u);
    changes++;
  }
  /* added or changed */
  json_object_foreach(map, u, spec) {
    json_t *old = json_object_get(a->declared, u);
    if (old && json_equal(old, spec))
      continue;
    if (!old && json_object_get(a->regs, u)) {
      lm__agent_log(a, LM_LOG_ERROR, "reload: declared service %s (%s): the "
                    "uuid of a service registered at runtime; deregister "
                    "that one first", u, spec_type(spec));
      continue;
    }
    if (!a->node ||
        register_spec(a, spec, 0, old != NULL, err, sizeof err)) {
      lm__agent_log(a, LM_LOG_ERROR, "reload: declared service %s (%s): %s",
                    u, spec_type(spec), a->node ? err : "no node");
      continue;
    }
    lm__agent_log(a, LM_LOG_INFO, "reload: declared service %s (%s) %s", u,
                  spec_type(spec), old ? "updated" : "added");
    json_object_set(a->declared, u, spec);
    changes++;
  }
  json_decref(map);
  if (changes)
    save(a);
}
