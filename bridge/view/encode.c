/*
 * encode.c: the layouts (which keys a member or a service becomes) and the
 * value encodings (livemesh.v1 protobuf, JSON, os-lively's Service).
 *
 * Values hold what changes with the status, never what changes on every
 * check (check output, signature times), so etcd is written on real
 * changes only.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "livemesh.pb-c.h"
#include "oslively.pb-c.h"
#include "store.h"
#include "view_internal.h"

/* ---- keys ---- */

size_t lm_bv_escape(char *out, size_t cap, const char *segment) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0, fit = 0; /* fit: bytes written while everything fitted */
  int full = 0;
  for (const unsigned char *p = (const unsigned char *)segment; *p; p++) {
    /* ASCII controls, space, DEL, % and /; UTF-8 is kept as it is */
    int esc = *p == '%' || *p == '/' || *p < 0x21 || *p == 0x7f;
    size_t w = esc ? 3 : 1;
    if (!full && n + w < cap) {
      if (esc) {
        out[n] = '%';
        out[n + 1] = hex[*p >> 4];
        out[n + 2] = hex[*p & 15];
      } else {
        out[n] = (char)*p;
      }
      fit = n + w;
    } else {
      full = 1;
    }
    n += w;
  }
  if (cap)
    out[fit] = 0;
  return n;
}

void lm_bv_hex(char *out, const uint8_t *p, size_t n) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[p[i] >> 4];
    out[2 * i + 1] = d[p[i] & 15];
  }
  out[2 * n] = 0;
}

void lm__bv_key_init(lm__bv_key_t *k, const char *base) {
  k->len = 0;
  k->overflow = 0;
  k->buf[0] = 0;
  lm__bv_key_raw(k, base);
}

void lm__bv_key_raw(lm__bv_key_t *k, const char *s) {
  size_t n = strlen(s);
  if (k->len + n + 1 > sizeof k->buf) {
    k->overflow = 1;
    return;
  }
  memcpy(k->buf + k->len, s, n + 1);
  k->len += n;
}

void lm__bv_key_seg(lm__bv_key_t *k, const char *segment) {
  size_t need = lm_bv_escape(NULL, 0, segment);
  if (k->len + need + 1 > sizeof k->buf) {
    k->overflow = 1;
    return;
  }
  lm_bv_escape(k->buf + k->len, sizeof k->buf - k->len, segment);
  k->len += need;
}

/* ---- helpers ---- */

static void rfc3339(char out[40], int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if (ms <= 0 || !gmtime_r(&t, &tm)) {
    strcpy(out, "1970-01-01T00:00:00.000Z");
    return;
  }
  char d[24];
  strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 40, "%s.%03dZ", d, (int)(ms % 1000));
}

static int want_json(lm_bv_t *v, const lm__bv_key_t *k, json_t *o) {
  if (!o)
    return -1;
  char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(o);
  if (!txt)
    return -1;
  int rc = lm__bv_want(v, k->buf, k->len, (const uint8_t *)txt, strlen(txt));
  free(txt);
  return rc;
}

static int want_proto(lm_bv_t *v, const lm__bv_key_t *k,
                      const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t stackbuf[2048];
  uint8_t *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
  if (!buf)
    return -1;
  protobuf_c_message_pack(m, buf);
  int rc = lm__bv_want(v, k->buf, k->len, buf, n);
  if (buf != stackbuf)
    free(buf);
  return rc;
}

/* ---- native layout ---- */

int lm__bv_encode_schema(lm_bv_t *v, const lm_bv_config_t *cfg) {
  lm__bv_key_t k;
  lm__bv_key_init(&k, cfg->prefix);
  lm__bv_key_raw(&k, "meta/schema");
  if (k.overflow)
    return -1;
  const char *enc = cfg->encoding == LM_BV_JSON ? "json" : "protobuf";
  if (cfg->encoding == LM_BV_JSON)
    return want_json(v, &k,
                     json_pack("{s:i, s:s, s:s, s:s, s:s}", "version", 1,
                               "encoding", enc, "layout", "native", "cluster",
                               cfg->cluster, "message_package",
                               "livemesh.v1"));
  Livemesh__V1__Schema s = LIVEMESH__V1__SCHEMA__INIT;
  s.version = 1;
  s.encoding = (char *)enc;
  s.layout = (char *)"native";
  s.cluster = (char *)cfg->cluster;
  s.message_package = (char *)"livemesh.v1";
  return want_proto(v, &k, &s.base);
}

int lm__bv_encode_member(lm_bv_t *v, const lm_bv_config_t *cfg,
                         const lm_bv_member_t *m) {
  lm__bv_key_t k;
  lm__bv_key_init(&k, cfg->prefix);
  lm__bv_key_raw(&k, "members/");
  lm__bv_key_seg(&k, m->name);
  if (k.overflow)
    return -1;
  char idhex[65] = "";
  if (m->id)
    lm_bv_hex(idhex, m->id, 32);
  if (cfg->encoding == LM_BV_JSON) {
    char since[40];
    rfc3339(since, m->since_ms);
    return want_json(
        v, &k,
        json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I}, s:I, s:s}", "name",
                  m->name, "id", idhex, "addr", m->addr ? m->addr : "",
                  "status", lm_store_member_status_name(m->status), "incarnation",
                  "generation", (json_int_t)m->generation, "version",
                  (json_int_t)m->version, "services",
                  (json_int_t)m->nservices, "since", since));
  }
  Livemesh__V1__Member p = LIVEMESH__V1__MEMBER__INIT;
  p.name = (char *)m->name;
  if (m->id) {
    p.id.data = (uint8_t *)m->id;
    p.id.len = 32;
  }
  p.addr = (char *)(m->addr ? m->addr : "");
  p.status = (Livemesh__V1__MemberStatus)m->status;
  p.generation = m->generation;
  p.version = m->version;
  p.since_ms = m->since_ms;
  p.services = m->nservices;
  return want_proto(v, &k, &p.base);
}

static int native_service(lm_bv_t *v, const lm_bv_config_t *cfg,
                          const lm_bv_service_t *s, const char *uuid) {
  const lm_service_t *sv = s->svc;
  lm__bv_key_t k;
  lm__bv_key_init(&k, cfg->prefix);
  lm__bv_key_raw(&k, "services/");
  lm__bv_key_seg(&k, sv->type);
  lm__bv_key_raw(&k, "/");
  lm__bv_key_seg(&k, sv->host);
  lm__bv_key_raw(&k, "/");
  lm__bv_key_raw(&k, uuid);
  if (k.overflow)
    return -1;
  size_t nchecks = sv->nchecks > LM_SVC_CHECKS_MAX ? LM_SVC_CHECKS_MAX
                                                   : sv->nchecks;
  if (cfg->encoding == LM_BV_JSON) {
    char created[40], since[40];
    rfc3339(created, sv->created_ms);
    rfc3339(since, sv->since_ms);
    json_t *tags = json_array(), *meta = json_object(), *checks = json_array();
    for (size_t i = 0; i < sv->ntags; i++)
      json_array_append_new(tags, json_string(sv->tags[i]));
    for (size_t i = 0; i < sv->nmeta; i++)
      json_object_set_new(meta, sv->meta_keys[i],
                          json_string(sv->meta_values[i]));
    for (size_t i = 0; i < nchecks; i++)
      json_array_append_new(
          checks, json_pack("{s:s, s:s}", "kind",
                            lm_check_kind_name(sv->checks[i].kind), "status",
                            lm_svc_status_name(sv->checks[i].status)));
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s,"
        " s:o, s:o, s:o, s:s, s:s}",
        "uuid", uuid, "type", sv->type, "name", sv->name ? sv->name : "",
        "host", sv->host, "region", sv->region ? sv->region : "", "worker",
        (json_int_t)sv->worker, "pid", (json_int_t)sv->pid, "port",
        (json_int_t)sv->port, "status", lm_svc_status_name(s->effective),
        "own_status", lm_svc_status_name(sv->status), "member_status",
        lm_store_member_status_name(s->member_status), "created_at", created, "since",
        since, "tags", tags, "meta", meta, "checks", checks, "cause",
        sv->cause ? sv->cause : "", "note", sv->note ? sv->note : "");
    return want_json(v, &k, o);
  }
  Livemesh__V1__Service p = LIVEMESH__V1__SERVICE__INIT;
  p.uuid = (char *)uuid;
  p.type = (char *)sv->type;
  p.host = (char *)sv->host;
  p.status = (Livemesh__V1__ServiceStatus)s->effective;
  p.name = (char *)(sv->name ? sv->name : "");
  p.member_status = (Livemesh__V1__MemberStatus)s->member_status;
  p.own_status = (Livemesh__V1__ServiceStatus)sv->status;
  p.worker = sv->worker;
  p.pid = sv->pid;
  p.region = (char *)(sv->region ? sv->region : "");
  p.port = sv->port;
  p.created_ms = sv->created_ms;
  p.since_ms = sv->since_ms;
  p.n_tags = sv->ntags;
  p.tags = (char **)sv->tags;
  Livemesh__V1__Service__MetaEntry me[LM_SVC_META_KEYS_MAX];
  Livemesh__V1__Service__MetaEntry *mp[LM_SVC_META_KEYS_MAX];
  size_t nmeta = sv->nmeta > LM_SVC_META_KEYS_MAX ? LM_SVC_META_KEYS_MAX
                                                  : sv->nmeta;
  for (size_t i = 0; i < nmeta; i++) {
    livemesh__v1__service__meta_entry__init(&me[i]);
    me[i].key = (char *)sv->meta_keys[i];
    me[i].value = (char *)sv->meta_values[i];
    mp[i] = &me[i];
  }
  p.n_meta = nmeta;
  p.meta = mp;
  Livemesh__V1__Check ck[LM_SVC_CHECKS_MAX];
  Livemesh__V1__Check *cp[LM_SVC_CHECKS_MAX];
  for (size_t i = 0; i < nchecks; i++) {
    livemesh__v1__check__init(&ck[i]);
    ck[i].kind = (char *)lm_check_kind_name(sv->checks[i].kind);
    ck[i].status = (Livemesh__V1__ServiceStatus)sv->checks[i].status;
    cp[i] = &ck[i];
  }
  p.n_checks = nchecks;
  p.checks = cp;
  p.cause = (char *)(sv->cause ? sv->cause : "");
  p.note = (char *)(sv->note ? sv->note : "");
  p.maint_until_ms = sv->maint_until_ms;
  return want_proto(v, &k, &p.base);
}

/* ---- os-lively layout ---- */

static void oslively_base(lm__bv_key_t *k, const lm_bv_config_t *cfg) {
  const char *ns = cfg->prefix ? cfg->prefix : "";
  while (*ns == '/')
    ns++;
  lm__bv_key_init(k, "/");
  if (*ns) {
    lm__bv_key_raw(k, ns);
    if (k->buf[k->len - 1] != '/')
      lm__bv_key_raw(k, "/");
  }
  lm__bv_key_raw(k, "services/");
}

static int oslively_service(lm_bv_t *v, const lm_bv_config_t *cfg,
                            const lm_bv_service_t *s, const char *uuid) {
  const lm_service_t *sv = s->svc;
  int up = s->effective == LM_SVC_UP;
  lm__bv_key_t base, k;
  oslively_base(&base, cfg);

  k = base;
  lm__bv_key_raw(&k, "by-uuid/");
  lm__bv_key_raw(&k, uuid);
  if (k.overflow)
    return -1;
  Oslively__Service p = OSLIVELY__SERVICE__INIT;
  p.uuid = (char *)uuid;
  p.type = (char *)sv->type;
  p.host = (char *)sv->host;
  p.status = up ? OSLIVELY__STATUS__UP : OSLIVELY__STATUS__DOWN;
  p.region = (char *)(sv->region ? sv->region : "");
  if (sv->status == LM_SVC_MAINT) {
    p.maintenance_start = sv->since_ms > 0 ? (uint64_t)sv->since_ms / 1000 : 0;
    p.maintenance_end =
        sv->maint_until_ms > 0 ? (uint64_t)sv->maint_until_ms / 1000 : 0;
    p.maintenance_note = (char *)(sv->note ? sv->note : "");
  }
  if (want_proto(v, &k, &p.base) != 0)
    return -1;

  k = base;
  lm__bv_key_raw(&k, "by-type-host/");
  lm__bv_key_seg(&k, sv->type);
  lm__bv_key_raw(&k, "/");
  lm__bv_key_seg(&k, sv->host);
  if (k.overflow || lm__bv_want_pick(v, k.buf, k.len, uuid, up) != 0)
    return -1;

  k = base;
  lm__bv_key_raw(&k, up ? "by-status/UP/" : "by-status/DOWN/");
  lm__bv_key_raw(&k, uuid);
  if (k.overflow || lm__bv_want(v, k.buf, k.len, NULL, 0) != 0)
    return -1;

  if (sv->region && sv->region[0]) {
    k = base;
    lm__bv_key_raw(&k, "by-region/");
    lm__bv_key_seg(&k, sv->region);
    lm__bv_key_raw(&k, "/");
    lm__bv_key_raw(&k, uuid);
    if (k.overflow || lm__bv_want(v, k.buf, k.len, NULL, 0) != 0)
      return -1;
  }
  return 0;
}

int lm__bv_encode_service(lm_bv_t *v, const lm_bv_config_t *cfg,
                          const lm_bv_service_t *s) {
  char uuid[LM_UUID_STRLEN + 1];
  lm_uuid_format(uuid, s->svc->uuid);
  if (cfg->layout == LM_BV_OSLIVELY)
    return oslively_service(v, cfg, s, uuid);
  return native_service(v, cfg, s, uuid);
}
