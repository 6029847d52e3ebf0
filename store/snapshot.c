/*
 * snapshot.c: the snapshot format (snapshot.h).
 *
 * The reader is store/'s msgpack cursor (mp_read.h), as in svc_codec.c:
 * every read checks the bytes left before it looks at them, a declared
 * count must be backed by at least one byte per element, and nothing is
 * allocated. lm_snap_open runs the member parser over the whole file once
 * (validation), lm_snap_next runs it again to hand members out, so a
 * caller never acts on the first member of a file whose tail is damaged.
 */
#include "snapshot.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "mp_read.h"
#include "svc_codec.h"

#define MEMBER_FIELDS 10
#define FILE_FIELDS 6

const char *lm_snap_strerror(int err) {
  switch (err) {
  case 0: return "success";
  case LM_STORE_ETRUNC: return "truncated snapshot";
  case LM_STORE_EMALFORMED: return "malformed snapshot";
  case LM_STORE_EVERSION: return "unknown snapshot version";
  case LM_STORE_ETOOBIG: return "snapshot exceeds a limit";
  case LM_STORE_ENOTSNAP: return "not a livemesh snapshot";
  case LM_STORE_EFOREIGN: return "snapshot of another cluster or node";
  }
  return lm_store_strerror(err);
}

/* A string of min..max bytes without NUL (lm__mp_str), copied
 * NUL-terminated into out (out may be NULL: checked only). */
static int str_copy(lm__mp_rd_t *r, size_t min, size_t max, char *out) {
  const char *p;
  size_t n;
  int rc = lm__mp_str(r, min, max, &p, &n);
  if (rc)
    return rc;
  if (out) {
    memcpy(out, p, n);
    out[n] = 0;
  }
  return 0;
}

/* ---- members ---- */

/* Parses (and checks) one member; m may be NULL (validation only). */
static int parse_member(lm__mp_rd_t *r, lm_snap_member_t *m) {
  lm_snap_member_t tmp;
  if (!m)
    m = &tmp;
  memset(m, 0, sizeof *m);
  size_t start = r->off;
  uint32_t n;
  int64_t v;
  const uint8_t *p;
  int rc;
  if ((rc = lm__mp_array(r, &n)))
    return rc;
  if (n != MEMBER_FIELDS)
    return LM_STORE_EMALFORMED;
  if ((rc = lm__mp_fixed(r, LM_SNAP_ID_LEN, &p)))
    return rc;
  memcpy(m->id, p, LM_SNAP_ID_LEN);
  if ((rc = str_copy(r, 1, LM_STORE_NAME_MAX, m->name)) ||
      (rc = str_copy(r, 0, LM_STORE_ADDR_MAX, m->addr)))
    return rc;
  if ((rc = lm__mp_range(r, LM_STORE_ALIVE, LM_STORE_LEFT, &v)))
    return rc;
  m->status = (int)v;
  if ((rc = lm__mp_range(r, 0, UINT32_MAX, &v)))
    return rc;
  m->gen = (uint32_t)v;
  if ((rc = lm__mp_range(r, 0, UINT32_MAX, &v)))
    return rc;
  m->ver = (uint32_t)v;
  if ((rc = lm__mp_range(r, 0, INT64_MAX, &v)))
    return rc;
  m->since_ms = v;
  m->obs = r->p + start;
  m->obs_len = r->off - start;
  if ((rc = lm__mp_bytes(r, 0, &m->cert, &m->cert_len)))
    return rc;
  if (m->cert_len > LM_SNAP_CERT_MAX)
    return LM_STORE_ETOOBIG;
  if (lm__mp_need(r, 1))
    return LM_STORE_ETRUNC;
  if (r->p[r->off] == 0xc0) {
    r->off++;
  } else {
    if ((rc = lm__mp_array(r, &n)))
      return rc;
    if (n != 2)
      return LM_STORE_EMALFORMED;
    if ((rc = lm__mp_bytes(r, 0, &m->svc_raw, &m->svc_raw_len)) ||
        (rc = lm__mp_range(r, 0, (int64_t)m->svc_raw_len, &v)))
      return rc;
    m->svc_body_len = (size_t)v;
    lm_svclist_hdr_t h;
    if (lm_svclist_check(&h, m->svc_raw, m->svc_body_len) != 0 ||
        memcmp(h.id, m->id, LM_SNAP_ID_LEN) != 0)
      return LM_STORE_EMALFORMED;
  }
  return lm__mp_fixed(r, LM_SNAP_SEAL_LEN, &m->seal);
}

int lm_snap_open(lm_snap_reader_t *r, const uint8_t *buf, size_t len,
                 const char *cluster, const uint8_t *writer) {
  if (!r || (!buf && len))
    return LM_STORE_EINVAL;
  memset(r, 0, sizeof *r);
  lm__mp_rd_t c = {buf, len, 0};
  uint32_t n;
  int rc;
  const uint8_t *p;
  size_t k;
  if ((rc = lm__mp_array(&c, &n)))
    return rc == LM_STORE_EMALFORMED ? LM_STORE_ENOTSNAP : rc;
  if ((rc = lm__mp_bytes(&c, 1, &p, &k)))
    return rc == LM_STORE_EMALFORMED ? LM_STORE_ENOTSNAP : rc;
  if (k != sizeof LM_SNAP_MAGIC - 1 || memcmp(p, LM_SNAP_MAGIC, k))
    return LM_STORE_ENOTSNAP;
  int64_t v;
  if ((rc = lm__mp_int(&c, &v)))
    return rc;
  if (v != LM_SNAP_VERSION)
    return LM_STORE_EVERSION;
  if (n != FILE_FIELDS)
    return LM_STORE_EMALFORMED;
  if ((rc = str_copy(&c, 1, LM_SNAP_CLUSTER_MAX, r->hdr.cluster)) ||
      (rc = lm__mp_fixed(&c, LM_SNAP_ID_LEN, &p)))
    return rc;
  memcpy(r->hdr.writer, p, LM_SNAP_ID_LEN);
  if ((rc = lm__mp_range(&c, 0, INT64_MAX, &v)))
    return rc;
  r->hdr.written_ms = v;
  r->hdr.head = buf;
  r->hdr.head_len = c.off;
  if ((rc = lm__mp_array(&c, &n)))
    return rc;
  if (n > LM_SNAP_MEMBERS_MAX)
    return LM_STORE_ETOOBIG;
  r->hdr.nmembers = n;
  size_t first = c.off;
  for (uint32_t i = 0; i < n; i++)
    if ((rc = parse_member(&c, NULL)))
      return rc;
  if (c.off != len)
    return LM_STORE_EMALFORMED; /* trailing bytes */
  if ((cluster && strcmp(cluster, r->hdr.cluster)) ||
      (writer && memcmp(writer, r->hdr.writer, LM_SNAP_ID_LEN)))
    return LM_STORE_EFOREIGN;
  r->buf = buf;
  r->len = len;
  r->off = first;
  r->left = n;
  return 0;
}

int lm_snap_next(lm_snap_reader_t *r, lm_snap_member_t *m) {
  if (!r || !r->left)
    return 0;
  lm__mp_rd_t c = {r->buf, r->len, r->off};
  if (parse_member(&c, m))
    return 0; /* cannot happen after lm_snap_open */
  r->off = c.off;
  r->left--;
  return 1;
}

/* ---- writing ---- */

struct lm_snap_writer {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  size_t head_len, want, have;
};

static void pack_bin(msgpack_packer *pk, const void *p, size_t n) {
  msgpack_pack_bin(pk, n);
  msgpack_pack_bin_body(pk, p, n);
}

static void pack_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

int lm_snap_writer_new(lm_snap_writer_t **out, const char *cluster,
                       const uint8_t writer[LM_SNAP_ID_LEN],
                       int64_t written_ms, size_t nmembers) {
  *out = NULL;
  if (!cluster || !*cluster || strlen(cluster) > LM_SNAP_CLUSTER_MAX ||
      !writer || written_ms < 0 || nmembers > LM_SNAP_MEMBERS_MAX)
    return LM_STORE_EINVAL;
  lm_snap_writer_t *w = calloc(1, sizeof *w);
  if (!w)
    return LM_STORE_ENOMEM;
  msgpack_sbuffer_init(&w->sb);
  msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
  msgpack_pack_array(&w->pk, FILE_FIELDS);
  pack_str(&w->pk, LM_SNAP_MAGIC);
  msgpack_pack_uint32(&w->pk, LM_SNAP_VERSION);
  pack_str(&w->pk, cluster);
  pack_bin(&w->pk, writer, LM_SNAP_ID_LEN);
  msgpack_pack_int64(&w->pk, written_ms);
  w->head_len = w->sb.size;
  msgpack_pack_array(&w->pk, nmembers);
  w->want = nmembers;
  if (!w->sb.data) {
    lm_snap_writer_free(w);
    return LM_STORE_ENOMEM;
  }
  *out = w;
  return 0;
}

static int member_ok(const lm_snap_member_t *m) {
  size_t nl = strnlen(m->name, sizeof m->name);
  size_t al = strnlen(m->addr, sizeof m->addr);
  if (nl < 1 || nl > LM_STORE_NAME_MAX || al > LM_STORE_ADDR_MAX ||
      m->status < LM_STORE_ALIVE || m->status > LM_STORE_LEFT ||
      m->since_ms < 0 || m->cert_len > LM_SNAP_CERT_MAX ||
      (m->cert_len && !m->cert))
    return 0;
  if (m->svc_raw) {
    lm_svclist_hdr_t h;
    if (m->svc_body_len > m->svc_raw_len ||
        lm_svclist_check(&h, m->svc_raw, m->svc_body_len) != 0 ||
        memcmp(h.id, m->id, LM_SNAP_ID_LEN) != 0)
      return 0;
  }
  return 1;
}

int lm_snap_writer_member(lm_snap_writer_t *w, const lm_snap_member_t *m,
                          lm_snap_seal_cb seal, void *ud) {
  if (!w || !m || !seal || w->have >= w->want || !member_ok(m))
    return LM_STORE_EINVAL;
  size_t start = w->sb.size;
  msgpack_pack_array(&w->pk, MEMBER_FIELDS);
  pack_bin(&w->pk, m->id, LM_SNAP_ID_LEN);
  pack_str(&w->pk, m->name);
  pack_str(&w->pk, m->addr);
  msgpack_pack_uint32(&w->pk, (uint32_t)m->status);
  msgpack_pack_uint32(&w->pk, m->gen);
  msgpack_pack_uint32(&w->pk, m->ver);
  msgpack_pack_int64(&w->pk, m->since_ms);
  size_t obs_len = w->sb.size - start;
  uint8_t s[LM_SNAP_SEAL_LEN];
  if (!w->sb.data)
    return LM_STORE_ENOMEM;
  seal(ud, s, (const uint8_t *)w->sb.data, w->head_len,
       (const uint8_t *)w->sb.data + start, obs_len);
  pack_bin(&w->pk, m->cert_len ? m->cert : s, m->cert_len);
  if (m->svc_raw) {
    msgpack_pack_array(&w->pk, 2);
    pack_bin(&w->pk, m->svc_raw, m->svc_raw_len);
    msgpack_pack_uint64(&w->pk, m->svc_body_len);
  } else {
    msgpack_pack_nil(&w->pk);
  }
  pack_bin(&w->pk, s, sizeof s);
  w->have++;
  return 0;
}

int lm_snap_writer_finish(lm_snap_writer_t *w, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (!w)
    return LM_STORE_EINVAL;
  if (w->have != w->want || !w->sb.data) {
    int rc = w->sb.data ? LM_STORE_EINVAL : LM_STORE_ENOMEM;
    lm_snap_writer_free(w);
    return rc;
  }
  *out = (uint8_t *)w->sb.data;
  *len = w->sb.size;
  free(w); /* the buffer now belongs to the caller */
  return 0;
}

void lm_snap_writer_free(lm_snap_writer_t *w) {
  if (!w)
    return;
  msgpack_sbuffer_destroy(&w->sb);
  free(w);
}
