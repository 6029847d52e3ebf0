/*
 * http_req.c: the HTTP API's route table and request decoding
 * (http_req.h), kept apart from the server (http.c) so that what a client
 * controls (path, method, query, body) is decoded by pure functions.
 */
#define _GNU_SOURCE
#include "http_req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_json.h"

/* THE place where an HTTP path maps to a command: one row per endpoint.
 * The probes and /metrics are not command rows: http.c hands them to
 * probes.c (lm__probe_http), which owns their shapes. */
static const lm__http_route_t ROUTES[] = {
    {"GET", "/v1/members", "members", LM__R_BLOCKING, "members", NULL},
    {"GET", "/v1/services", "services", LM__R_BLOCKING, "services", NULL},
    {"GET", "/v1/services/{uuid}", "service", 0, "service", NULL},
    {"GET", "/v1/is-up", "is-up", 0, NULL, NULL},
    {"GET", "/v1/watch", "watch", LM__R_STREAM, NULL, ",members,all,"},
    {"PUT", "/v1/services", "register", LM__R_BODY, NULL, NULL},
    {"DELETE", "/v1/services/{uuid}", "deregister", 0, NULL, NULL},
    {"PUT", "/v1/services/{uuid}/pass", "pass", LM__R_BODY, NULL, NULL},
    {"PUT", "/v1/services/{uuid}/fail", "fail", LM__R_BODY, NULL, NULL},
    {"PUT", "/v1/services/{uuid}/maint", "maint", LM__R_BODY, NULL, NULL},
};
#define NROUTES (sizeof ROUTES / sizeof ROUTES[0])

int lm__http_path_match(const char *pattern, const char *path,
                        char seg[LM__HTTP_SEG_MAX]) {
  const char *p = pattern, *u = path;
  while (*p && *u) {
    if (!strncmp(p, "{uuid}", 6)) {
      size_t n = strcspn(u, "/");
      if (n == 0 || n >= LM__HTTP_SEG_MAX)
        return 0;
      memcpy(seg, u, n);
      seg[n] = 0;
      p += 6;
      u += n;
      continue;
    }
    if (*p++ != *u++)
      return 0;
  }
  return !*p && !*u;
}

const lm__http_route_t *lm__http_route_find(const char *method,
                                            const char *path,
                                            char seg[LM__HTTP_SEG_MAX],
                                            int *path_known, char *allow,
                                            size_t allowcap) {
  *path_known = 0;
  if (allowcap)
    allow[0] = 0;
  seg[0] = 0;
  for (size_t i = 0; i < NROUTES; i++) {
    char s[LM__HTTP_SEG_MAX] = "";
    if (!lm__http_path_match(ROUTES[i].pattern, path, s))
      continue;
    *path_known = 1;
    if (!strcmp(ROUTES[i].method, method)) {
      memcpy(seg, s, sizeof s);
      return &ROUTES[i];
    }
    if (allowcap && !strstr(allow, ROUTES[i].method)) {
      size_t k = strlen(allow);
      snprintf(allow + k, allowcap - k, "%s%s", k ? ", " : "",
               ROUTES[i].method);
    }
  }
  return NULL;
}

void lm__http_query_init(lm__http_query_t *q, const lm__http_route_t *route) {
  memset(q, 0, sizeof *q);
  q->route = route;
  q->obj = json_object();
}

int lm__http_query_arg(lm__http_query_t *q, const char *key,
                       const char *value) {
  const lm__http_route_t *rt = q->route;
  if (q->err[0])
    return -1;
  if ((rt->flags & LM__R_BLOCKING) && !strcmp(key, "index")) {
    char *end;
    errno = 0;
    unsigned long long v = value ? strtoull(value, &end, 10) : 0;
    if (!value || !*value || *value < '0' || *value > '9' || *end || errno) {
      snprintf(q->err, sizeof q->err, "query parameter \"index\": expected "
               "a whole number (an X-Livemesh-Index seen before), got \"%.64s\"",
               value ? value : "");
      return -1;
    }
    q->blocking_index = 1;
    q->index = v;
    return 0;
  }
  if ((rt->flags & LM__R_BLOCKING) && !strcmp(key, "wait")) {
    if (!value || lm__duration_parse(value, &q->wait_ms)) {
      snprintf(q->err, sizeof q->err, "query parameter \"wait\": expected a "
               "duration such as \"30s\" or \"5m\", got \"%.64s\"",
               value ? value : "");
      return -1;
    }
    q->has_wait = 1;
    return 0;
  }
  if (!strcmp(key, "cmd") || !strcmp(key, "id")) {
    snprintf(q->err, sizeof q->err, "unknown query parameter \"%s\"", key);
    return -1;
  }
  if (json_object_get(q->obj, key)) {
    snprintf(q->err, sizeof q->err, "query parameter \"%.64s\" given twice",
             key);
    return -1;
  }
  char pat[80];
  snprintf(pat, sizeof pat, ",%.64s,", key);
  if (rt->bools && strstr(rt->bools, pat)) {
    int v = -1;
    if (!value || !*value || !strcmp(value, "true") || !strcmp(value, "1"))
      v = 1;
    else if (!strcmp(value, "false") || !strcmp(value, "0"))
      v = 0;
    if (v < 0) {
      snprintf(q->err, sizeof q->err, "query parameter \"%.64s\": expected "
               "true or false, got \"%.64s\"", key, value);
      return -1;
    }
    json_object_set_new(q->obj, key, json_boolean(v));
    return 0;
  }
  if (!value || !*value) /* ?type=&host=h: an empty value is no filter */
    return 0;
  json_t *s = json_string(value);
  if (!s) {
    snprintf(q->err, sizeof q->err, "query parameter \"%.64s\": not UTF-8",
             key);
    return -1;
  }
  json_object_set_new(q->obj, key, s);
  return 0;
}

void lm__http_query_abandon(lm__http_query_t *q) {
  json_decref(q->obj);
  q->obj = NULL;
}

int lm__http_query_finish(lm__http_query_t *q, const char *uuid,
                          const char *body, size_t len) {
  if (q->err[0])
    goto bad;
  if (len && !(q->route->flags & LM__R_BODY)) {
    snprintf(q->err, sizeof q->err, "%s %s takes no body", q->route->method,
             q->route->pattern);
    goto bad;
  }
  if (len) {
    json_error_t je;
    json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!b || !json_is_object(b)) {
      if (b)
        snprintf(q->err, sizeof q->err, "bad JSON body: expected an object "
                 "such as {\"type\": \"api\"}");
      else
        snprintf(q->err, sizeof q->err, "bad JSON body at line %d column %d: "
                 "%s", je.line, je.column, je.text);
      json_decref(b);
      goto bad;
    }
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v) {
      if (!strcmp(k, "cmd") || !strcmp(k, "id") ||
          (uuid[0] && !strcmp(k, "uuid")) || json_object_get(q->obj, k)) {
        snprintf(q->err, sizeof q->err, "field \"%.64s\": %s", k,
                 !strcmp(k, "uuid") ? "the uuid is given in the path"
                 : json_object_get(q->obj, k) ? "also given in the query"
                                              : "unknown field");
        json_decref(b);
        goto bad;
      }
    }
    json_object_update(q->obj, b);
    json_decref(b);
  }
  if (uuid[0])
    json_object_set_new(q->obj, "uuid", json_string(uuid));
  json_object_set_new(q->obj, "cmd", json_string(q->route->cmd));
  return 0;
bad:
  lm__http_query_abandon(q);
  return -1;
}
