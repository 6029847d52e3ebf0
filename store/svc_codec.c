/*
 * svc_codec.c: the service list codec (svc_codec.h) and the single-service
 * validator.
 *
 * The decoder reads the input with store/'s msgpack cursor (mp_read.h):
 * every read checks the bytes left before it looks at them, and nothing is
 * sized from a declared count, so a hostile count is only as costly as the
 * bytes that back it. One parse function serves two passes: the first
 * validates and counts what the decoded list needs, the second (after one
 * allocation) fills it in.
 */
#include "svc_codec.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_read.h"

/* ---- the two passes ---- */

/* Pass 1 (svcs == NULL) counts; pass 2 fills the block laid out from the
 * counts. */
typedef struct fill {
  size_t nsvc, nptr, nchk, nstr;
  lm_service_t *svcs;
  const char **ptrs;
  lm_check_state_t *chks;
  char *str;
  size_t iptr, ichk, istr;
} fill_t;

static const char *put_str(fill_t *f, const char *p, size_t n) {
  if (!f->svcs) {
    f->nstr += n + 1;
    return NULL;
  }
  char *d = f->str + f->istr;
  if (n)
    memcpy(d, p, n);
  d[n] = 0;
  f->istr += n + 1;
  return d;
}

static const char **put_ptrs(fill_t *f, size_t n) {
  if (!f->svcs) {
    f->nptr += n;
    return NULL;
  }
  const char **d = f->ptrs + f->iptr;
  f->iptr += n;
  return d;
}

/* One string field into *dst. */
static int str_field(lm__mp_rd_t *r, fill_t *f, size_t min, size_t max,
                     const char **dst) {
  const char *p;
  size_t n;
  int rc = lm__mp_str(r, min, max, &p, &n);
  if (rc)
    return rc;
  const char *s = put_str(f, p, n);
  if (dst)
    *dst = s;
  return 0;
}

static int parse_checks(lm__mp_rd_t *r, fill_t *f, lm_service_t *s) {
  uint32_t n;
  int rc = lm__mp_array(r, &n);
  if (rc)
    return rc;
  if (n > LM_SVC_CHECKS_MAX)
    return LM_STORE_ETOOBIG;
  lm_check_state_t *c = NULL;
  if (f->svcs) {
    c = f->chks + f->ichk;
    f->ichk += n;
    s->checks = n ? c : NULL;
    s->nchecks = n;
  } else {
    f->nchk += n;
  }
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k;
    int64_t kind, st;
    if ((rc = lm__mp_array(r, &k)))
      return rc;
    if (k < 3)
      return LM_STORE_EMALFORMED;
    if ((rc = lm__mp_range(r, LM_CHECK_TTL, LM_CHECK_EXEC, &kind)) ||
        (rc = lm__mp_range(r, LM_SVC_UP, LM_SVC_DOWN, &st)) ||
        (rc = str_field(r, f, 0, LM_CHECK_OUTPUT_WIRE_MAX,
                        c ? &c[i].output : NULL)))
      return rc;
    for (uint32_t j = 3; j < k; j++)
      if ((rc = lm__mp_skip(r, 1)))
        return rc;
    if (c) {
      c[i].kind = (lm_check_kind_t)kind;
      c[i].status = (lm_svc_status_t)st;
    }
  }
  return 0;
}

static int parse_meta(lm__mp_rd_t *r, fill_t *f, lm_service_t *s) {
  uint32_t n;
  int rc = lm__mp_map(r, &n);
  if (rc)
    return rc;
  if (n > LM_SVC_META_KEYS_MAX)
    return LM_STORE_ETOOBIG;
  const char *kp[LM_SVC_META_KEYS_MAX];
  size_t kn[LM_SVC_META_KEYS_MAX];
  const char **keys = put_ptrs(f, n), **vals = put_ptrs(f, n);
  if (s) {
    s->meta_keys = n ? keys : NULL;
    s->meta_values = n ? vals : NULL;
    s->nmeta = n;
  }
  for (uint32_t i = 0; i < n; i++) {
    const char *vp;
    size_t vn;
    if ((rc = lm__mp_str(r, 1, LM_SVC_META_KEY_MAX, &kp[i], &kn[i])))
      return rc;
    for (uint32_t j = 0; j < i; j++)
      if (kn[j] == kn[i] && memcmp(kp[j], kp[i], kn[i]) == 0)
        return LM_STORE_EMALFORMED;
    if ((rc = lm__mp_str(r, 0, LM_SVC_META_VALUE_MAX, &vp, &vn)))
      return rc;
    const char *k = put_str(f, kp[i], kn[i]);
    const char *v = put_str(f, vp, vn);
    if (keys) {
      keys[i] = k;
      vals[i] = v;
    }
  }
  return 0;
}

static int parse_tags(lm__mp_rd_t *r, fill_t *f, lm_service_t *s) {
  uint32_t n;
  int rc = lm__mp_array(r, &n);
  if (rc)
    return rc;
  if (n > LM_SVC_TAGS_MAX)
    return LM_STORE_ETOOBIG;
  const char **tags = put_ptrs(f, n);
  if (s) {
    s->tags = n ? tags : NULL;
    s->ntags = n;
  }
  for (uint32_t i = 0; i < n; i++)
    if ((rc = str_field(r, f, 1, LM_SVC_TAG_MAX, tags ? &tags[i] : NULL)))
      return rc;
  return 0;
}

/* One service; s is NULL in pass 1. */
static int parse_service(lm__mp_rd_t *r, fill_t *f, lm_service_t *s,
                         uint8_t uuid[LM_UUID_LEN]) {
  uint32_t n;
  int64_t v;
  const uint8_t *b;
  int rc = lm__mp_array(r, &n);
  if (rc)
    return rc;
  if (n < LM_SVC_FIELDS)
    return LM_STORE_EMALFORMED;
  if ((rc = lm__mp_fixed(r, LM_UUID_LEN, &b)))
    return rc;
  memcpy(uuid, b, LM_UUID_LEN);
  if (s)
    memcpy(s->uuid, b, LM_UUID_LEN);
#define SF(field) (s ? &s->field : NULL)
  if ((rc = str_field(r, f, 1, LM_SVC_TYPE_MAX, SF(type))) ||
      (rc = str_field(r, f, 0, LM_SVC_NAME_MAX, SF(name))) ||
      (rc = str_field(r, f, 0, LM_SVC_REGION_MAX, SF(region))))
    return rc;
  if ((rc = lm__mp_range(r, -1, INT32_MAX, &v)))
    return rc;
  if (s)
    s->worker = (int32_t)v;
  if ((rc = lm__mp_range(r, 0, INT32_MAX, &v)))
    return rc;
  if (s)
    s->pid = (int32_t)v;
  if ((rc = lm__mp_range(r, 0, UINT16_MAX, &v)))
    return rc;
  if (s)
    s->port = (uint16_t)v;
  if ((rc = lm__mp_int(r, &v)))
    return rc;
  if (s)
    s->created_ms = v;
  if ((rc = lm__mp_range(r, LM_SVC_UP, LM_SVC_MAINT, &v)))
    return rc;
  if (s)
    s->status = (lm_svc_status_t)v;
  if ((rc = lm__mp_int(r, &v)))
    return rc;
  if (s)
    s->since_ms = v;
  if ((rc = str_field(r, f, 0, LM_SVC_CAUSE_MAX, SF(cause))) ||
      (rc = str_field(r, f, 0, LM_SVC_NOTE_MAX, SF(note))))
    return rc;
#undef SF
  if ((rc = lm__mp_int(r, &v)))
    return rc;
  if (s)
    s->maint_until_ms = v;
  if ((rc = parse_tags(r, f, s)) || (rc = parse_meta(r, f, s)) ||
      (rc = parse_checks(r, f, s)))
    return rc;
  for (uint32_t i = LM_SVC_FIELDS; i < n; i++)
    if ((rc = lm__mp_skip(r, 1)))
      return rc;
  return 0;
}

static int uuid_cmp(const void *a, const void *b) {
  return memcmp(a, b, LM_UUID_LEN);
}

/* The whole list. uuids (pass 1 only) collects every uuid for the
 * duplicate check. */
static int parse_list(const uint8_t *buf, size_t len, lm_svclist_hdr_t *hdr,
                      fill_t *f, uint8_t (*uuids)[LM_UUID_LEN]) {
  lm__mp_rd_t r = {buf, len, 0};
  uint32_t n, nsvc;
  int64_t ver, v;
  uint64_t u;
  const uint8_t *b;
  if (!buf && len)
    return LM_STORE_EINVAL;
  int rc = lm__mp_array(&r, &n);
  if (rc)
    return rc;
  if (n < 1)
    return LM_STORE_EMALFORMED;
  if ((rc = lm__mp_int(&r, &ver)))
    return rc;
  if (ver != LM_SVCLIST_VERSION)
    return LM_STORE_EVERSION;
  if (n < 6)
    return LM_STORE_EMALFORMED;
  if ((rc = lm__mp_fixed(&r, LM_SVCLIST_ID_LEN, &b)))
    return rc;
  memcpy(hdr->id, b, LM_SVCLIST_ID_LEN);
  if ((rc = lm__mp_range(&r, 0, UINT32_MAX, &v)))
    return rc;
  hdr->gen = (uint32_t)v;
  if ((rc = lm__mp_u64(&r, &u)))
    return rc;
  hdr->seq = u;
  if ((rc = lm__mp_range(&r, 0, INT64_MAX, &v)))
    return rc;
  hdr->signed_ms = v;
  if ((rc = lm__mp_array(&r, &nsvc)))
    return rc;
  if (nsvc > LM_SVC_PER_NODE_MAX)
    return LM_STORE_ETOOBIG;
  hdr->n = nsvc;
  f->nsvc = nsvc;
  for (uint32_t i = 0; i < nsvc; i++) {
    uint8_t scratch[LM_UUID_LEN];
    rc = parse_service(&r, f, f->svcs ? &f->svcs[i] : NULL,
                       uuids ? uuids[i] : scratch);
    if (rc)
      return rc;
  }
  for (uint32_t i = 6; i < n; i++)
    if ((rc = lm__mp_skip(&r, 1)))
      return rc;
  if (r.off != len)
    return LM_STORE_EMALFORMED;
  if (uuids && nsvc > 1) {
    qsort(uuids, nsvc, LM_UUID_LEN, uuid_cmp);
    for (uint32_t i = 1; i < nsvc; i++)
      if (memcmp(uuids[i - 1], uuids[i], LM_UUID_LEN) == 0)
        return LM_STORE_EDUPUUID;
  }
  return 0;
}

static int check_counts(lm_svclist_hdr_t *hdr, const uint8_t *buf,
                        size_t len, fill_t *f) {
  uint8_t uuids[LM_SVC_PER_NODE_MAX][LM_UUID_LEN]; /* 16 KiB */
  memset(f, 0, sizeof *f);
  return parse_list(buf, len, hdr, f, uuids);
}

int lm_svclist_check(lm_svclist_hdr_t *hdr, const uint8_t *buf, size_t len) {
  fill_t f;
  lm_svclist_hdr_t h;
  int rc = check_counts(&h, buf, len, &f);
  if (rc == 0 && hdr)
    *hdr = h;
  return rc;
}

#define ALIGN_UP(x) (((x) + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1))

int lm_svclist_decode(lm_svclist_t **out, const uint8_t *buf, size_t len) {
  fill_t f;
  lm_svclist_hdr_t h;
  if (!out)
    return LM_STORE_EINVAL;
  *out = NULL;
  int rc = check_counts(&h, buf, len, &f);
  if (rc)
    return rc;
  size_t o_svc = ALIGN_UP(sizeof(lm_svclist_t));
  size_t o_ptr = o_svc + ALIGN_UP(f.nsvc * sizeof(lm_service_t));
  size_t o_chk = o_ptr + ALIGN_UP(f.nptr * sizeof(char *));
  size_t o_str = o_chk + ALIGN_UP(f.nchk * sizeof(lm_check_state_t));
  uint8_t *blk = malloc(o_str + f.nstr);
  if (!blk)
    return LM_STORE_ENOMEM;
  lm_svclist_t *l = (lm_svclist_t *)blk;
  fill_t g;
  memset(&g, 0, sizeof g);
  g.svcs = (lm_service_t *)(blk + o_svc);
  g.ptrs = (const char **)(blk + o_ptr);
  g.chks = (lm_check_state_t *)(blk + o_chk);
  g.str = (char *)(blk + o_str);
  memset(g.svcs, 0, f.nsvc * sizeof(lm_service_t));
  /* the bytes were validated above: the fill pass cannot fail, and it
   * stays within the counts it was laid out from */
  rc = parse_list(buf, len, &l->hdr, &g, NULL);
  if (rc || g.iptr != f.nptr || g.ichk != f.nchk || g.istr != f.nstr) {
    free(blk);
    return rc ? rc : LM_STORE_EMALFORMED;
  }
  l->svcs = g.svcs;
  *out = l;
  return 0;
}

void lm_svclist_free(lm_svclist_t *list) { free(list); }

/* ---- validation of one service ---- */

static int fail(char *err, size_t cap, const char *fmt, ...) {
  if (err && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return LM_STORE_EINVAL;
}

/* NULL counts as "". */
static size_t slen(const char *s) { return s ? strlen(s) : 0; }

int lm_service_validate(const lm_service_t *s, char *err, size_t errcap) {
  if (err && errcap)
    err[0] = 0;
  if (!s)
    return fail(err, errcap, "service: missing");
  if (!s->type || !s->type[0])
    return fail(err, errcap, "type: required");
  if (strlen(s->type) > LM_SVC_TYPE_MAX)
    return fail(err, errcap, "type: longer than %d bytes", LM_SVC_TYPE_MAX);
  if (slen(s->name) > LM_SVC_NAME_MAX)
    return fail(err, errcap, "name: longer than %d bytes", LM_SVC_NAME_MAX);
  if (slen(s->region) > LM_SVC_REGION_MAX)
    return fail(err, errcap, "region: longer than %d bytes",
                LM_SVC_REGION_MAX);
  if (s->worker < -1)
    return fail(err, errcap, "worker: below -1");
  if (s->pid < 0)
    return fail(err, errcap, "pid: negative");
  if ((unsigned)s->status > LM_SVC_MAINT)
    return fail(err, errcap, "status: not up, down or maintenance");
  if (slen(s->cause) > LM_SVC_CAUSE_MAX)
    return fail(err, errcap, "cause: longer than %d bytes", LM_SVC_CAUSE_MAX);
  if (slen(s->note) > LM_SVC_NOTE_MAX)
    return fail(err, errcap, "note: longer than %d bytes", LM_SVC_NOTE_MAX);
  if (s->ntags > LM_SVC_TAGS_MAX)
    return fail(err, errcap, "tags: more than %d", LM_SVC_TAGS_MAX);
  if (s->ntags && !s->tags)
    return fail(err, errcap, "tags: missing");
  for (size_t i = 0; i < s->ntags; i++) {
    if (!s->tags[i] || !s->tags[i][0])
      return fail(err, errcap, "tags: empty tag");
    if (strlen(s->tags[i]) > LM_SVC_TAG_MAX)
      return fail(err, errcap, "tags: tag longer than %d bytes",
                  LM_SVC_TAG_MAX);
  }
  if (s->nmeta > LM_SVC_META_KEYS_MAX)
    return fail(err, errcap, "meta: more than %d keys", LM_SVC_META_KEYS_MAX);
  if (s->nmeta && (!s->meta_keys || !s->meta_values))
    return fail(err, errcap, "meta: missing");
  for (size_t i = 0; i < s->nmeta; i++) {
    const char *k = s->meta_keys[i];
    if (!k || !k[0])
      return fail(err, errcap, "meta: empty key");
    if (strlen(k) > LM_SVC_META_KEY_MAX)
      return fail(err, errcap, "meta: key longer than %d bytes",
                  LM_SVC_META_KEY_MAX);
    if (slen(s->meta_values[i]) > LM_SVC_META_VALUE_MAX)
      return fail(err, errcap, "meta: value of %s longer than %d bytes", k,
                  LM_SVC_META_VALUE_MAX);
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->meta_keys[j], k) == 0)
        return fail(err, errcap, "meta: key %s given twice", k);
  }
  if (s->nchecks > LM_SVC_CHECKS_MAX)
    return fail(err, errcap, "checks: more than %d", LM_SVC_CHECKS_MAX);
  if (s->nchecks && !s->checks)
    return fail(err, errcap, "checks: missing");
  for (size_t i = 0; i < s->nchecks; i++) {
    const lm_check_state_t *c = &s->checks[i];
    if (c->kind < LM_CHECK_TTL || c->kind > LM_CHECK_EXEC)
      return fail(err, errcap, "checks: unknown kind %d", (int)c->kind);
    if (c->status != LM_SVC_UP && c->status != LM_SVC_DOWN)
      return fail(err, errcap, "checks: status not up or down");
    if (slen(c->output) > LM_CHECK_OUTPUT_MAX)
      return fail(err, errcap, "checks: output longer than %d bytes",
                  LM_CHECK_OUTPUT_MAX);
  }
  return 0;
}

/* ---- encoding ---- */

static void pack_str(msgpack_packer *pk, const char *s, size_t max) {
  size_t n = slen(s);
  if (n > max)
    n = max;
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s ? s : "", n);
}

static void pack_service(msgpack_packer *pk, const lm_service_t *s) {
  msgpack_pack_array(pk, LM_SVC_FIELDS);
  msgpack_pack_bin(pk, LM_UUID_LEN);
  msgpack_pack_bin_body(pk, s->uuid, LM_UUID_LEN);
  pack_str(pk, s->type, LM_SVC_TYPE_MAX);
  pack_str(pk, s->name, LM_SVC_NAME_MAX);
  pack_str(pk, s->region, LM_SVC_REGION_MAX);
  msgpack_pack_int64(pk, s->worker);
  msgpack_pack_int64(pk, s->pid);
  msgpack_pack_uint16(pk, s->port);
  msgpack_pack_int64(pk, s->created_ms);
  msgpack_pack_uint8(pk, (uint8_t)s->status);
  msgpack_pack_int64(pk, s->since_ms);
  pack_str(pk, s->cause, LM_SVC_CAUSE_MAX);
  pack_str(pk, s->note, LM_SVC_NOTE_MAX);
  msgpack_pack_int64(pk, s->maint_until_ms);
  msgpack_pack_array(pk, s->ntags);
  for (size_t i = 0; i < s->ntags; i++)
    pack_str(pk, s->tags[i], LM_SVC_TAG_MAX);
  msgpack_pack_map(pk, s->nmeta);
  for (size_t i = 0; i < s->nmeta; i++) {
    pack_str(pk, s->meta_keys[i], LM_SVC_META_KEY_MAX);
    pack_str(pk, s->meta_values[i], LM_SVC_META_VALUE_MAX);
  }
  msgpack_pack_array(pk, s->nchecks);
  for (size_t i = 0; i < s->nchecks; i++) {
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint8(pk, (uint8_t)s->checks[i].kind);
    msgpack_pack_uint8(pk, (uint8_t)s->checks[i].status);
    pack_str(pk, s->checks[i].output, LM_CHECK_OUTPUT_WIRE_MAX);
  }
}

int lm_svclist_encode(uint8_t **out, size_t *out_len,
                      const uint8_t id[LM_SVCLIST_ID_LEN], uint32_t gen,
                      uint64_t seq, int64_t signed_ms,
                      const lm_service_t *svcs, size_t n) {
  if (!out || !out_len || !id || (n && !svcs) || n > LM_SVC_PER_NODE_MAX ||
      signed_ms < 0)
    return LM_STORE_EINVAL;
  *out = NULL;
  *out_len = 0;
  for (size_t i = 0; i < n; i++)
    if (lm_service_validate(&svcs[i], NULL, 0))
      return LM_STORE_EINVAL;
  if (n > 1) {
    uint8_t(*u)[LM_UUID_LEN] = malloc(n * LM_UUID_LEN);
    if (!u)
      return LM_STORE_ENOMEM;
    for (size_t i = 0; i < n; i++)
      memcpy(u[i], svcs[i].uuid, LM_UUID_LEN);
    qsort(u, n, LM_UUID_LEN, uuid_cmp);
    int dup = 0;
    for (size_t i = 1; i < n && !dup; i++)
      dup = memcmp(u[i - 1], u[i], LM_UUID_LEN) == 0;
    free(u);
    if (dup)
      return LM_STORE_EDUPUUID;
  }
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  int bad = 0;
  bad |= msgpack_pack_array(&pk, 6);
  bad |= msgpack_pack_uint8(&pk, LM_SVCLIST_VERSION);
  bad |= msgpack_pack_bin(&pk, LM_SVCLIST_ID_LEN);
  bad |= msgpack_pack_bin_body(&pk, id, LM_SVCLIST_ID_LEN);
  bad |= msgpack_pack_uint32(&pk, gen);
  bad |= msgpack_pack_uint64(&pk, seq);
  bad |= msgpack_pack_uint64(&pk, (uint64_t)signed_ms);
  bad |= msgpack_pack_array(&pk, n);
  for (size_t i = 0; i < n; i++)
    pack_service(&pk, &svcs[i]);
  /* msgpack_sbuffer_write fails only when realloc does. The services'
   * writes are not checked one by one: a short buffer fails the check
   * below, which also guards against the encoder and the decoder ever
   * disagreeing on what is valid. */
  if (bad || !sb.data) {
    msgpack_sbuffer_destroy(&sb);
    return LM_STORE_ENOMEM;
  }
  lm_svclist_hdr_t h;
  if (lm_svclist_check(&h, (const uint8_t *)sb.data, sb.size) != 0) {
    msgpack_sbuffer_destroy(&sb);
    return LM_STORE_ENOMEM;
  }
  *out = (uint8_t *)sb.data;
  *out_len = sb.size;
  return 0;
}
