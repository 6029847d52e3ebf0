/*
 * snapshot.c: the snapshot format (snapshot.h).
 *
 * The reader is a cursor like svc_codec.c's: every read checks the bytes
 * left before it looks at them, a declared count must be backed by at
 * least one byte per element, and nothing is allocated. lm_snap_open runs
 * the member parser over the whole file once (validation), lm_snap_next
 * runs it again to hand members out, so a caller never acts on the first
 * member of a file whose tail is damaged.
 */
#include "snapshot.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- the cursor (the same contract as svc_codec.c's) ---- */

typedef struct rd {
  const uint8_t *p;
  size_t len, off;
} rd_t;

static int need(const rd_t *r, uint64_t n) {
  return n <= r->len - r->off ? 0 : LM_STORE_ETRUNC;
}

static int rd_be(rd_t *r, size_t n, uint64_t *v) {
  if (need(r, n))
    return LM_STORE_ETRUNC;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++)
    x = (x << 8) | r->p[r->off + i];
  r->off += n;
  *v = x;
  return 0;
}

static int rd_head(rd_t *r, uint8_t *t) {
  if (need(r, 1))
    return LM_STORE_ETRUNC;
  *t = r->p[r->off++];
  return 0;
}

/* Any msgpack integer, as a signed 64-bit value. */
static int rd_int(rd_t *r, int64_t *v) {
  uint8_t t;
  uint64_t x;
  int rc = rd_head(r, &t);
  if (rc)
    return rc;
  if (t <= 0x7f) {
    *v = t;
    return 0;
  }
  if (t >= 0xe0) {
    *v = (int8_t)t;
    return 0;
  }
  if (t >= 0xcc && t <= 0xcf) {
    if ((rc = rd_be(r, (size_t)1 << (t - 0xcc), &x)))
      return rc;
    if (x > INT64_MAX)
      return LM_STORE_EMALFORMED;
    *v = (int64_t)x;
    return 0;
  }
  if (t >= 0xd0 && t <= 0xd3) {
    size_t n = (size_t)1 << (t - 0xd0);
    if ((rc = rd_be(r, n, &x)))
      return rc;
    if (n < 8 && (x >> (8 * n - 1)) & 1)
      x |= ~(uint64_t)0 << (8 * n);
    *v = (int64_t)x;
    return 0;
  }
  return LM_STORE_EMALFORMED;
}

static int rd_range(rd_t *r, int64_t lo, int64_t hi, int64_t *v) {
  int rc = rd_int(r, v);
  if (rc)
    return rc;
  return *v < lo || *v > hi ? LM_STORE_EMALFORMED : 0;
}

/* A str (want_str) or bin; the bytes must all be there. */
static int rd_bytes(rd_t *r, int want_str, const uint8_t **p, size_t *n) {
  uint8_t t;
  uint64_t x;
  int rc = rd_head(r, &t);
  if (rc)
    return rc;
  if (want_str && t >= 0xa0 && t <= 0xbf) {
    x = t & 0x1f;
  } else {
    size_t w;
    if (want_str)
      w = t == 0xd9 ? 1 : t == 0xda ? 2 : t == 0xdb ? 4 : 0;
    else
      w = t == 0xc4 ? 1 : t == 0xc5 ? 2 : t == 0xc6 ? 4 : 0;
    if (!w)
      return LM_STORE_EMALFORMED;
    if ((rc = rd_be(r, w, &x)))
      return rc;
  }
  if (need(r, x))
    return LM_STORE_ETRUNC;
  *p = r->p + r->off;
  *n = (size_t)x;
  r->off += (size_t)x;
  return 0;
}

/* A string of min..max bytes without NUL, copied NUL-terminated into out
 * (out may be NULL: checked only). */
static int rd_str(rd_t *r, size_t min, size_t max, char *out) {
  const uint8_t *b;
  size_t n;
  int rc = rd_bytes(r, 1, &b, &n);
  if (rc)
    return rc;
  if (n > max)
    return LM_STORE_ETOOBIG;
  if (n < min || memchr(b, 0, n))
    return LM_STORE_EMALFORMED;
  if (out) {
    memcpy(out, b, n);
    out[n] = 0;
  }
  return 0;
}

/* A bin of exactly n bytes. */
static int rd_fixed(rd_t *r, size_t n, const uint8_t **p) {
  size_t k;
  int rc = rd_bytes(r, 0, p, &k);
  if (rc)
    return rc;
  return k == n ? 0 : LM_STORE_EMALFORMED;
}

static int rd_array(rd_t *r, uint32_t *n) {
  uint8_t t;
  uint64_t x;
  int rc = rd_head(r, &t);
  if (rc)
    return rc;
  if (t >= 0x90 && t <= 0x9f) {
    x = t & 0x0f;
  } else {
    size_t w = t == 0xdc ? 2 : t == 0xdd ? 4 : 0;
    if (!w)
      return LM_STORE_EMALFORMED;
    if ((rc = rd_be(r, w, &x)))
      return rc;
  }
  if (need(r, x))
    return LM_STORE_ETRUNC;
  *n = (uint32_t)x;
  return 0;
}

/* ---- members ---- */

/* Parses (and checks) one member; m may be NULL (validation only). */
static int parse_member(rd_t *r, lm_snap_member_t *m) {
  lm_snap_member_t tmp;
  if (!m)
    m = &tmp;
  memset(m, 0, sizeof *m);
  size_t start = r->off;
  uint32_t n;
  int64_t v;
  const uint8_t *p;
  int rc;
  if ((rc = rd_array(r, &n)))
    return rc;
  if (n != MEMBER_FIELDS)
    return LM_STORE_EMALFORMED;
  if ((rc = rd_fixed(r, LM_SNAP_ID_LEN, &p)))
    return rc;
  memcpy(m->id, p, LM_SNAP_ID_LEN);
  if ((rc = rd_str(r, 1, LM_STORE_NAME_MAX, m->name)) ||
      (rc = rd_str(r, 0, LM_STORE_ADDR_MAX, m->addr)))
    return rc;
  if ((rc = rd_range(r, LM_STORE_ALIVE, LM_STORE_LEFT, &v)))
    return rc;
  m->status = (int)v;
  if ((rc = rd_range(r, 0, UINT32_MAX, &v)))
    return rc;
  m->gen = (uint32_t)v;
  if ((rc = rd_range(r, 0, UINT32_MAX, &v)))
    return rc;
  m->ver = (uint32_t)v;
  if ((rc = rd_range(r, 0, INT64_MAX, &v)))
    return rc;
  m->since_ms = v;
  m->obs = r->p + start;
  m->obs_len = r->off - start;
  if ((rc = rd_bytes(r, 0, &m->cert, &m->cert_len)))
    return rc;
  if (m->cert_len > LM_SNAP_CERT_MAX)
    return LM_STORE_ETOOBIG;
  if (need(r, 1))
    return LM_STORE_ETRUNC;
  if (r->p[r->off] == 0xc0) {
    r->off++;
  } else {
    if ((rc = rd_array(r, &n)))
      return rc;
    if (n != 2)
      return LM_STORE_EMALFORMED;
    if ((rc = rd_bytes(r, 0, &m->svc_raw, &m->svc_raw_len)) ||
        (rc = rd_range(r, 0, (int64_t)m->svc_raw_len, &v)))
      return rc;
    m->svc_body_len = (size_t)v;
    lm_svclist_hdr_t h;
    if (lm_svclist_check(&h, m->svc_raw, m->svc_body_len) != 0 ||
        memcmp(h.id, m->id, LM_SNAP_ID_LEN) != 0)
      return LM_STORE_EMALFORMED;
  }
  return rd_fixed(r, LM_SNAP_SEAL_LEN, &m->seal);
}

int lm_snap_open(lm_snap_reader_t *r, const uint8_t *buf, size_t len,
                 const char *cluster, const uint8_t *writer) {
  if (!r || (!buf && len))
    return LM_STORE_EINVAL;
  memset(r, 0, sizeof *r);
  rd_t c = {buf, len, 0};
  uint32_t n;
  int rc;
  const uint8_t *p;
  size_t k;
  if ((rc = rd_array(&c, &n)))
    return rc == LM_STORE_EMALFORMED ? LM_STORE_ENOTSNAP : rc;
  if ((rc = rd_bytes(&c, 1, &p, &k)))
    return rc == LM_STORE_EMALFORMED ? LM_STORE_ENOTSNAP : rc;
  if (k != sizeof LM_SNAP_MAGIC - 1 || memcmp(p, LM_SNAP_MAGIC, k))
    return LM_STORE_ENOTSNAP;
  int64_t v;
  if ((rc = rd_int(&c, &v)))
    return rc;
  if (v != LM_SNAP_VERSION)
    return LM_STORE_EVERSION;
  if (n != FILE_FIELDS)
    return LM_STORE_EMALFORMED;
  if ((rc = rd_str(&c, 1, LM_SNAP_CLUSTER_MAX, r->hdr.cluster)) ||
      (rc = rd_fixed(&c, LM_SNAP_ID_LEN, &p)))
    return rc;
  memcpy(r->hdr.writer, p, LM_SNAP_ID_LEN);
  if ((rc = rd_range(&c, 0, INT64_MAX, &v)))
    return rc;
  r->hdr.written_ms = v;
  r->hdr.head = buf;
  r->hdr.head_len = c.off;
  if ((rc = rd_array(&c, &n)))
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
  rd_t c = {r->buf, r->len, r->off};
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
