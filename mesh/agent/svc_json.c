/*
 * svc_json.c: the JSON shapes of services, durations, and the parser of
 * registration bodies. See svc_json.h; the field names are INTERFACES.md's.
 *
 * Why the parser is strict (unknown keys refused, every type checked):
 * the same body comes from scripts, HTTP clients and config files, and a
 * misspelt "intreval" silently ignored is a check that runs every 10 s
 * instead of every second. A refusal that names the field costs less.
 */
#define _GNU_SOURCE
#include "svc_json.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

/* ---- shapes ---- */

static json_t *str_or_null(const char *s) {
  return s ? json_string(s) : json_null();
}

static json_t *time_json(int64_t ms) {
  char b[40];
  lm__rfc3339(b, sizeof b, ms);
  return json_string(b);
}

static json_t *uuid_json(const uint8_t uuid[LM_UUID_LEN]) {
  char b[LM_UUID_STRLEN + 1];
  lm_uuid_format(b, uuid);
  return json_string(b);
}

/* json_object_set_new that tolerates a NULL value (out of memory) by
 * remembering the failure, so the builders stay linear. */
static void put(json_t *o, const char *k, json_t *v, int *bad) {
  if (!v || json_object_set_new(o, k, v))
    *bad = 1;
}

json_t *lm__service_json_at(const lm_service_view_t *v, int stale,
                            int64_t now_ms) {
  const lm_service_t *s = v->svc;
  json_t *o = json_object();
  if (!o)
    return NULL;
  int bad = 0;
  put(o, "uuid", uuid_json(s->uuid), &bad);
  put(o, "type", str_or_null(s->type), &bad);
  put(o, "name", json_string(s->name ? s->name : ""), &bad);
  put(o, "host", str_or_null(s->host), &bad);
  put(o, "region", json_string(s->region ? s->region : ""), &bad);
  put(o, "worker", s->worker >= 0 ? json_integer(s->worker) : json_null(),
      &bad);
  put(o, "pid", s->pid > 0 ? json_integer(s->pid) : json_null(), &bad);
  put(o, "port", s->port > 0 ? json_integer(s->port) : json_null(), &bad);
  put(o, "status", json_string(lm_svc_status_name(v->effective)), &bad);
  put(o, "member_status", json_string(lm_status_name(v->member_status)),
      &bad);
  put(o, "created_at", time_json(s->created_ms), &bad);
  put(o, "since", time_json(s->since_ms), &bad);
  json_t *tags = json_array();
  for (size_t i = 0; tags && i < s->ntags; i++)
    if (json_array_append_new(tags, json_string(s->tags[i])))
      bad = 1;
  put(o, "tags", tags, &bad);
  json_t *meta = json_object();
  for (size_t i = 0; meta && i < s->nmeta; i++)
    if (json_object_set_new(meta, s->meta_keys[i],
                            json_string(s->meta_values[i])))
      bad = 1;
  put(o, "meta", meta, &bad);
  json_t *checks = json_array();
  for (size_t i = 0; checks && i < s->nchecks; i++) {
    const lm_check_state_t *c = &s->checks[i];
    if (json_array_append_new(
            checks, json_pack("{s:s, s:s, s:s}", "kind",
                              lm_check_kind_name(c->kind), "status",
                              lm_svc_status_name(c->status), "output",
                              c->output ? c->output : "")))
      bad = 1;
  }
  put(o, "checks", checks, &bad);
  put(o, "stale", json_boolean(stale), &bad);
  /* beyond INTERFACES.md */
  put(o, "service_status", json_string(lm_svc_status_name(s->status)), &bad);
  put(o, "cause", json_string(s->cause ? s->cause : ""), &bad);
  put(o, "note", json_string(s->note ? s->note : ""), &bad);
  put(o, "maint_until",
      s->status == LM_SVC_MAINT && s->maint_until_ms > 0
          ? time_json(s->maint_until_ms)
          : json_null(),
      &bad);
  int64_t age = v->signed_ms > 0 && now_ms > v->signed_ms
                    ? now_ms - v->signed_ms
                    : 0;
  put(o, "age_ms", json_integer(age), &bad);
  put(o, "local", json_boolean(v->is_local), &bad);
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *lm__service_json(const lm_service_view_t *v, int stale) {
  return lm__service_json_at(v, stale, lm__unix_ms());
}

json_t *lm__is_up_json(int up, const lm_is_up_t *r, int stale) {
  int found = r && r->found;
  json_t *o = json_object();
  if (!o)
    return NULL;
  int bad = 0;
  put(o, "up", json_boolean(found && up), &bad);
  put(o, "status",
      json_string(found ? lm_svc_status_name(r->status) : "unknown"), &bad);
  put(o, "member_status",
      json_string(found ? lm_status_name(r->member_status) : "unknown"),
      &bad);
  put(o, "uuid", found ? uuid_json(r->uuid) : json_null(), &bad);
  /* an unknown service still echoes what was asked, when it was given */
  put(o, "type", r && r->type[0] ? json_string(r->type) : json_null(), &bad);
  put(o, "host", r && r->host[0] ? json_string(r->host) : json_null(), &bad);
  put(o, "age_ms", found ? json_integer(r->age_ms) : json_null(), &bad);
  put(o, "stale", json_boolean(stale), &bad);
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *lm__watch_event_json(const lm_watch_event_t *e) {
  json_t *o = json_object();
  if (!o)
    return NULL;
  int bad = 0;
  int member = e->kind == LM_WATCH_MEMBER;
  put(o, "seq", json_integer((json_int_t)e->seq), &bad);
  put(o, "kind", json_string(member ? "member" : "service"), &bad);
  if (member) {
    const char *n = e->name ? e->name : e->host;
    put(o, "name", str_or_null(n), &bad);
    put(o, "host", str_or_null(e->host ? e->host : n), &bad);
  } else {
    put(o, "uuid", uuid_json(e->uuid), &bad);
    put(o, "type", str_or_null(e->type), &bad);
    put(o, "host", str_or_null(e->host), &bad);
  }
  put(o, "old", json_string(e->old_status ? e->old_status : "unknown"), &bad);
  put(o, "new", json_string(e->new_status ? e->new_status : "unknown"), &bad);
  put(o, "cause", json_string(e->cause ? e->cause : ""), &bad);
  put(o, "at", time_json(e->at_ms), &bad);
  if (e->initial)
    put(o, "initial", json_true(), &bad);
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ---- durations ---- */

int lm__duration_parse(const char *s, uint64_t *ms) {
  if (!s || !isdigit((unsigned char)*s))
    return -1; /* empty, a sign, a space, a leading dot */
  uint64_t mant = 0; /* the digits, without the dot */
  uint64_t scale = 1; /* 10^(digits after the dot) */
  int big = 0;
  const char *p = s;
  for (; isdigit((unsigned char)*p); p++)
    if (__builtin_mul_overflow(mant, 10, &mant) ||
        __builtin_add_overflow(mant, (uint64_t)(*p - '0'), &mant))
      big = 1;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return -1;
    for (; isdigit((unsigned char)*p); p++) {
      if (__builtin_mul_overflow(mant, 10, &mant) ||
          __builtin_add_overflow(mant, (uint64_t)(*p - '0'), &mant) ||
          __builtin_mul_overflow(scale, 10, &scale))
        big = 1;
    }
  }
  uint64_t unit;
  if (!strcmp(p, "ms"))
    unit = 1;
  else if (!strcmp(p, "s") || !*p)
    unit = 1000;
  else if (!strcmp(p, "m"))
    unit = 60 * 1000;
  else if (!strcmp(p, "h"))
    unit = 3600 * 1000;
  else
    return -1;
  if (big)
    return -2;
  uint64_t v;
  if (__builtin_mul_overflow(mant, unit, &v))
    return -2;
  if (v % scale)
    return -2; /* finer than a millisecond */
  *ms = v / scale;
  return 0;
}

int lm__duration_json(const json_t *v, uint64_t *ms) {
  if (json_is_string(v)) {
    if (strlen(json_string_value(v)) != json_string_length(v))
      return -1;
    return lm__duration_parse(json_string_value(v), ms);
  }
  if (json_is_integer(v)) {
    json_int_t x = json_integer_value(v);
    if (x < 0)
      return -1;
    if ((uint64_t)x > UINT64_MAX / 1000)
      return -2;
    *ms = (uint64_t)x * 1000;
    return 0;
  }
  if (json_is_real(v)) {
    double x = json_real_value(v);
    if (!(x >= 0))
      return -1;
    double m = x * 1000.0;
    if (m >= 18446744073709549568.0)
      return -2;
    double r = floor(m + 0.5);
    if (fabs(m - r) > 1e-6 * (m > 1 ? m : 1))
      return -2; /* finer than a millisecond */
    *ms = (uint64_t)r;
    return 0;
  }
  return -1;
}

/* The length of the valid UTF-8 sequence at `p`, or 0 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *p) {
  unsigned c = p[0];
  if (c < 0x80)
    return 1;
  size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (!n || c > 0xf4)
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
      return 0;
  if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
      (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
    return 0;
  return n;
}

void lm__utf8_scrub(char *s) {
  unsigned char *p = (unsigned char *)s;
  while (*p) {
    size_t n = utf8_seq(p);
    if (n)
      p += n;
    else
      *p++ = '?';
  }
}

void lm__duration_format(char *out, size_t cap, uint64_t ms) {
  if (ms == 0) {
    snprintf(out, cap, "0s");
    return;
  }
  if (ms % 1000) {
    snprintf(out, cap, "%llums", (unsigned long long)ms);
    return;
  }
  uint64_t s = ms / 1000, h = s / 3600, m = s / 60 % 60;
  s %= 60;
  size_t n = 0;
  out[0] = 0;
  if (h)
    n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%lluh",
                          (unsigned long long)h);
  if (m && n < cap)
    n += (size_t)snprintf(out + n, cap - n, "%llum", (unsigned long long)m);
  if (s && n < cap)
    snprintf(out + n, cap - n, "%llus", (unsigned long long)s);
}

/* ---- validators ---- */

static int port_valid(const char *p, size_t n) {
  if (n == 0 || n > 5)
    return 0;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return 0;
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  return v >= 1 && v <= 65535;
}

/* A host name (letters, digits, '-', '_', '.'), an IPv4 literal (which is
 * one), or [IPv6] (hex digits, ':', '.', and a %zone). */
static int host_valid(const char *h, size_t n) {
  if (n == 0 || n > 255)
    return 0;
  if (h[0] == '[') {
    if (n < 3 || h[n - 1] != ']')
      return 0;
    int zone = 0; /* after '%': an interface name */
    for (size_t i = 1; i + 1 < n; i++) {
      unsigned char ch = (unsigned char)h[i];
      if (ch == '%' && !zone && i > 1)
        zone = 1;
      else if (zone ? !isalnum(ch) && ch != '-' && ch != '_' && ch != '.'
                    : !isxdigit(ch) && ch != ':' && ch != '.')
        return 0;
    }
    return memchr(h, ':', n) != NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '_' &&
        h[i] != '.')
      return 0;
  return 1;
}

int lm__check_hostport_valid(const char *s) {
  if (!s)
    return 0;
  const char *c = strrchr(s, ':');
  if (!c || c == s)
    return 0;
  if (s[0] != '[' && memchr(s, ':', (size_t)(c - s)))
    return 0; /* a bare IPv6 address: needs brackets */
  return host_valid(s, (size_t)(c - s)) && port_valid(c + 1, strlen(c + 1));
}

int lm__check_url_valid(const char *s) {
  if (!s)
    return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= 0x20 || *p == 0x7f)
      return 0;
  const char *h;
  if (!strncmp(s, "http://", 7))
    h = s + 7;
  else if (!strncmp(s, "https://", 8))
    h = s + 8;
  else
    return 0;
  size_t n = strcspn(h, "/?#");
  if (memchr(h, '@', n))
    return 0; /* credentials in a check URL would be gossiped */
  const char *colon = NULL;
  if (h[0] == '[') {
    const char *e = memchr(h, ']', n);
    if (!e)
      return 0;
    if ((size_t)(e - h) + 1 < n) {
      if (e[1] != ':')
        return 0;
      colon = e + 1;
    }
  } else {
    colon = memchr(h, ':', n);
  }
  size_t hn = colon ? (size_t)(colon - h) : n;
  if (!host_valid(h, hn))
    return 0;
  if (colon && !port_valid(colon + 1, n - hn - 1))
    return 0;
  return 1;
}

/* ---- registration bodies ---- */

enum {
  F_TYPE, F_NAME, F_UUID, F_PID, F_WORKER, F_REGION, F_PORT, F_TAGS,
  F_META, F_TTL, F_HTTP, F_TCP, F_EXEC, F_INTERVAL, F_TIMEOUT, F_FAILURES,
  F_SUCCESSES, F_EPHEMERAL, F_COUNT
};

static const struct {
  const char *key, *flag;
} FIELDS[F_COUNT] = {
    [F_TYPE] = {"type", "--type"},
    [F_NAME] = {"name", "--name"},
    [F_UUID] = {"uuid", "--uuid"},
    [F_PID] = {"pid", "--pid"},
    [F_WORKER] = {"worker", "--worker"},
    [F_REGION] = {"region", "--region"},
    [F_PORT] = {"port", "--port"},
    [F_TAGS] = {"tags", "--tag"},
    [F_META] = {"meta", "--meta"},
    [F_TTL] = {"ttl", "--ttl"},
    [F_HTTP] = {"http_check", "--http-check"},
    [F_TCP] = {"tcp_check", "--tcp-check"},
    [F_EXEC] = {"exec_check", "--exec-check"},
    [F_INTERVAL] = {"interval", "--interval"},
    [F_TIMEOUT] = {"timeout", "--timeout"},
    [F_FAILURES] = {"failures_before_down", "--failures-before-down"},
    [F_SUCCESSES] = {"successes_before_up", "--successes-before-up"},
    [F_EPHEMERAL] = {"ephemeral", "--ephemeral"},
};

#define EXEC_CHECK_MAX 4096
#define THRESHOLD_MAX 100

typedef struct pctx {
  lm__spec_buf_t *out;
  lm__field_names_t names;
  char *err;
  size_t cap;
} pctx_t;

static const char *fname(const pctx_t *c, int f, char *b, size_t n) {
  if (c->names == LM__NAMES_FLAGS)
    snprintf(b, n, "%s", FIELDS[f].flag);
  else
    snprintf(b, n, "field \"%s\"", FIELDS[f].key);
  return b;
}

static int ferr(pctx_t *c, int f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ferr(pctx_t *c, int f, const char *fmt, ...) {
  char nb[48], msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (f >= 0)
    snprintf(c->out->field, sizeof c->out->field, "%s", FIELDS[f].key);
  if (c->err && c->cap)
    snprintf(c->err, c->cap, "%s: %s", f >= 0 ? fname(c, f, nb, sizeof nb)
                                              : "request", msg);
  return -1;
}

static const char *jtype(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "a whole number";
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

/* A short quoted rendering of a value for messages. */
static const char *jshow(const json_t *v, char *b, size_t n) {
  if (json_is_string(v))
    snprintf(b, n, "\"%.60s%s\"", json_string_value(v),
             json_string_length(v) > 60 ? "..." : "");
  else if (json_is_integer(v))
    snprintf(b, n, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(b, n, "%g", json_real_value(v));
  else
    snprintf(b, n, "%s", jtype(v));
  return b;
}

static char *own(pctx_t *c, const char *s) {
  lm__spec_buf_t *o = c->out;
  if (o->nowned >= sizeof o->owned / sizeof o->owned[0])
    return NULL;
  char *d = strdup(s);
  if (d)
    o->owned[o->nowned++] = d;
  return d;
}

enum { TEXT_LINE = 0, TEXT_FREE = 1 };

/* Checks a string value: a JSON string without NUL, 1..max bytes (0..max
 * when allow_empty), no control characters unless TEXT_FREE. Returns the
 * owned copy, or NULL after ferr. `what` names the element ("a tag"). */
static const char *take_str(pctx_t *c, int f, const json_t *v, size_t max,
                            int allow_empty, int mode, const char *what) {
  if (!json_is_string(v)) {
    ferr(c, f, "expected %s as a string, got %s", what, jtype(v));
    return NULL;
  }
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  if (strlen(s) != n) {
    ferr(c, f, "%s contains a NUL character", what);
    return NULL;
  }
  if (!n && !allow_empty) {
    ferr(c, f, "%s must not be empty", what);
    return NULL;
  }
  if (n > max) {
    ferr(c, f, "%s is %zu bytes long, at most %zu allowed", what, n, max);
    return NULL;
  }
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if ((*p < 0x20 && !(mode == TEXT_FREE && (*p == '\t' || *p == '\n'))) ||
        *p == 0x7f) {
      ferr(c, f, "%s contains a control character", what);
      return NULL;
    }
  const char *d = own(c, s);
  if (!d)
    ferr(c, f, "out of memory");
  return d;
}

static int take_int(pctx_t *c, int f, const json_t *v, long long lo,
                    long long hi, long long *out) {
  char b[80];
  if (!json_is_integer(v))
    return ferr(c, f, "expected a whole number from %lld to %lld, got %s", lo,
                hi, jshow(v, b, sizeof b));
  long long x = json_integer_value(v);
  if (x < lo || x > hi)
    return ferr(c, f, "expected a whole number from %lld to %lld, got %lld",
                lo, hi, x);
  *out = x;
  return 0;
}

/* A duration of 1 ms .. UINT32_MAX ms. */
static int take_dur(pctx_t *c, int f, const json_t *v, uint32_t *out) {
  char b[80];
  uint64_t ms = 0;
  int rc = lm__duration_json(v, &ms);
  if (rc == -1)
    return ferr(c, f, "expected a duration such as \"500ms\", \"30s\", "
                "\"5m\", \"1h\" or a number of seconds, got %s",
                jshow(v, b, sizeof b));
  if (rc == -2 || ms > UINT32_MAX)
    return ferr(c, f, "duration %s is out of range (whole milliseconds, at "
                "most %ums)", jshow(v, b, sizeof b), (unsigned)UINT32_MAX);
  if (ms == 0)
    return ferr(c, f, "must be longer than 0");
  *out = (uint32_t)ms;
  return 0;
}

/* Type: printable, no spaces and no '/', since it names etcd keys
 * (services/<type>/<host>/<uuid>) and is typed on command lines. */
static int type_chars_ok(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= 0x20 || *p == 0x7f || *p == '/')
      return 0;
  return 1;
}

static int parse_body(pctx_t *c, const json_t *body, int *ephemeral) {
  lm__spec_buf_t *o = c->out;
  lm_service_spec_t *sp = &o->spec;
  char b[80];
  if (!json_is_object(body))
    return ferr(c, -1, "expected a JSON object with the register fields, "
                "got %s", body ? jtype(body) : "nothing");
  const json_t *val[F_COUNT] = {0};
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)body, key, v) {
    if (!strcmp(key, "cmd") || !strcmp(key, "id"))
      continue;
    int f = 0;
    while (f < F_COUNT && strcmp(FIELDS[f].key, key))
      f++;
    if (f == F_COUNT) {
      snprintf(o->field, sizeof o->field, "%.*s", (int)sizeof o->field - 1,
               key);
      snprintf(c->err, c->cap, "unknown field \"%.64s\" (known: type, name, "
               "uuid, pid, worker, region, port, tags, meta, ttl, "
               "http_check, tcp_check, exec_check, interval, timeout, "
               "failures_before_down, successes_before_up, ephemeral)", key);
      return -1;
    }
    if (!json_is_null(v))
      val[f] = v;
  }

  if (!val[F_TYPE])
    return ferr(c, F_TYPE, "required: the kind of service, such as "
                "\"api\"");
  if (!(sp->type = take_str(c, F_TYPE, val[F_TYPE], LM_SVC_TYPE_MAX, 0,
                            TEXT_LINE, "the type")))
    return -1;
  if (!type_chars_ok(sp->type))
    return ferr(c, F_TYPE, "\"%.64s\" has a space, a '/' or a control "
                "character", sp->type);
  sp->name = "";
  sp->region = "";
  if (val[F_NAME] && !(sp->name = take_str(c, F_NAME, val[F_NAME],
                                           LM_SVC_NAME_MAX, 1, TEXT_LINE,
                                           "the name")))
    return -1;
  if (val[F_REGION] && !(sp->region = take_str(c, F_REGION, val[F_REGION],
                                               LM_SVC_REGION_MAX, 1,
                                               TEXT_LINE, "the region")))
    return -1;
  if (val[F_UUID]) {
    if (!json_is_string(val[F_UUID]) ||
        lm_uuid_parse(o->uuid, json_string_value(val[F_UUID])) != 0)
      return ferr(c, F_UUID, "expected a UUID such as "
                  "\"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0\", got %s",
                  jshow(val[F_UUID], b, sizeof b));
    sp->uuid = o->uuid;
  }
  long long x;
  sp->worker = -1;
  if (val[F_PID]) {
    if (take_int(c, F_PID, val[F_PID], 0, INT32_MAX, &x))
      return -1;
    sp->pid = (int32_t)x;
  }
  if (val[F_WORKER]) {
    if (take_int(c, F_WORKER, val[F_WORKER], -1, INT32_MAX, &x))
      return -1;
    sp->worker = (int32_t)x;
  }
  if (val[F_PORT]) {
    if (take_int(c, F_PORT, val[F_PORT], 1, 65535, &x))
      return -1;
    sp->port = (uint16_t)x;
  }

  if (val[F_TAGS]) {
    const json_t *a = val[F_TAGS];
    if (!json_is_array(a))
      return ferr(c, F_TAGS, "expected an array of strings, got %s",
                  jtype(a));
    if (json_array_size(a) > LM_SVC_TAGS_MAX)
      return ferr(c, F_TAGS, "%zu tags, at most %d allowed",
                  json_array_size(a), LM_SVC_TAGS_MAX);
    size_t i;
    json_array_foreach(a, i, v) {
      const char *t = take_str(c, F_TAGS, v, LM_SVC_TAG_MAX, 0, TEXT_LINE,
                               "a tag");
      if (!t)
        return -1;
      for (size_t k = 0; k < i; k++)
        if (!strcmp(o->tags[k], t))
          return ferr(c, F_TAGS, "tag \"%s\" is given twice", t);
      o->tags[i] = t;
    }
    sp->tags = o->tags;
    sp->ntags = json_array_size(a);
  }
  if (val[F_META]) {
    const json_t *m = val[F_META];
    if (!json_is_object(m))
      return ferr(c, F_META, "expected an object of strings, got %s",
                  jtype(m));
    if (json_object_size(m) > LM_SVC_META_KEYS_MAX)
      return ferr(c, F_META, "%zu keys, at most %d allowed",
                  json_object_size(m), LM_SVC_META_KEYS_MAX);
    size_t i = 0;
    json_object_foreach((json_t *)m, key, v) {
      json_t *kj = json_string(key);
      const char *k = kj ? take_str(c, F_META, kj, LM_SVC_META_KEY_MAX, 0,
                                    TEXT_LINE, "a key")
                         : NULL;
      json_decref(kj);
      if (!k)
        return kj ? -1 : ferr(c, F_META, "out of memory");
      if (strchr(k, '='))
        return ferr(c, F_META, "key \"%s\" contains '='", k);
      char what[LM_SVC_META_KEY_MAX + 32];
      snprintf(what, sizeof what, "the value of \"%s\"", k);
      const char *val_s = take_str(c, F_META, v, LM_SVC_META_VALUE_MAX, 1,
                                   TEXT_LINE, what);
      if (!val_s)
        return -1;
      o->meta_keys[i] = k;
      o->meta_values[i] = val_s;
      i++;
    }
    sp->meta_keys = o->meta_keys;
    sp->meta_values = o->meta_values;
    sp->nmeta = i;
  }

  /* the check: at most one */
  static const int CHECKS[] = {F_TTL, F_HTTP, F_TCP, F_EXEC};
  int first = -1;
  for (size_t i = 0; i < 4; i++) {
    int f = CHECKS[i];
    if (!val[f])
      continue;
    if (first >= 0) {
      char n1[48], n2[48];
      return ferr(c, f, "only one check per service: %s and %s are both "
                  "given", fname(c, first, n1, sizeof n1),
                  fname(c, f, n2, sizeof n2));
    }
    first = f;
  }
  if (val[F_TTL] && take_dur(c, F_TTL, val[F_TTL], &sp->ttl_ms))
    return -1;
  if (val[F_HTTP]) {
    if (!(sp->http_check = take_str(c, F_HTTP, val[F_HTTP], 2048, 0,
                                    TEXT_LINE, "the URL")))
      return -1;
    if (!lm__check_url_valid(sp->http_check))
      return ferr(c, F_HTTP, "expected an http:// or https:// URL with a "
                  "host (e.g. http://127.0.0.1:8080/health), got \"%.80s\"",
                  sp->http_check);
  }
  if (val[F_TCP]) {
    if (!(sp->tcp_check = take_str(c, F_TCP, val[F_TCP], 300, 0, TEXT_LINE,
                                   "the address")))
      return -1;
    if (!lm__check_hostport_valid(sp->tcp_check))
      return ferr(c, F_TCP, "expected HOST:PORT (a host name, an IPv4 "
                  "address or [IPv6], and a port 1..65535), got \"%.80s\"",
                  sp->tcp_check);
  }
  if (val[F_EXEC] &&
      !(sp->exec_check = take_str(c, F_EXEC, val[F_EXEC], EXEC_CHECK_MAX, 0,
                                  TEXT_FREE, "the command")))
    return -1;
  int polled = val[F_HTTP] || val[F_TCP] || val[F_EXEC];
  for (int f = F_INTERVAL; f <= F_TIMEOUT; f++) {
    if (!val[f])
      continue;
    if (!polled)
      return ferr(c, f, "only applies to an http, tcp or exec check, and "
                  "none is given");
    if (take_dur(c, f, val[f],
                 f == F_INTERVAL ? &sp->interval_ms : &sp->timeout_ms))
      return -1;
  }
  if (sp->interval_ms && sp->timeout_ms && sp->timeout_ms >= sp->interval_ms)
    return ferr(c, F_TIMEOUT, "must be shorter than the interval (%ums >= "
                "%ums)", (unsigned)sp->timeout_ms, (unsigned)sp->interval_ms);
  if (val[F_FAILURES]) {
    if (take_int(c, F_FAILURES, val[F_FAILURES], 1, THRESHOLD_MAX, &x))
      return -1;
    sp->failures_before_down = (uint32_t)x;
  }
  if (val[F_SUCCESSES]) {
    if (take_int(c, F_SUCCESSES, val[F_SUCCESSES], 1, THRESHOLD_MAX, &x))
      return -1;
    sp->successes_before_up = (uint32_t)x;
  }

  if (ephemeral)
    *ephemeral = 0;
  if (val[F_EPHEMERAL]) {
    if (!json_is_boolean(val[F_EPHEMERAL]))
      return ferr(c, F_EPHEMERAL, "expected true or false, got %s",
                  jtype(val[F_EPHEMERAL]));
    if (json_is_true(val[F_EPHEMERAL])) {
      if (!ephemeral)
        return ferr(c, F_EPHEMERAL, "not possible here: an ephemeral "
                    "service lives as long as a control-socket connection");
      *ephemeral = 1;
    }
  }
  return 0;
}

void lm__spec_buf_free(lm__spec_buf_t *b) {
  if (!b)
    return;
  for (size_t i = 0; i < b->nowned; i++)
    free(b->owned[i]);
  b->nowned = 0;
  memset(&b->spec, 0, sizeof b->spec);
}

int lm__spec_from_json_named(const json_t *body, lm__spec_buf_t *out,
                             int *ephemeral, lm__field_names_t names,
                             char *err, size_t errcap) {
  memset(out, 0, sizeof *out);
  if (err && errcap)
    err[0] = 0;
  pctx_t c = {.out = out, .names = names, .err = err, .cap = err ? errcap : 0};
  if (parse_body(&c, body, ephemeral) == 0)
    return 0;
  char field[LM__SPEC_FIELD_MAX];
  memcpy(field, out->field, sizeof field);
  lm__spec_buf_free(out);
  memset(out, 0, sizeof *out);
  memcpy(out->field, field, sizeof field);
  if (ephemeral)
    *ephemeral = 0;
  return -1;
}

int lm__spec_from_json(const json_t *body, lm__spec_buf_t *out,
                       int *ephemeral, char *err, size_t errcap) {
  return lm__spec_from_json_named(body, out, ephemeral, LM__NAMES_JSON, err,
                                  errcap);
}
