/*
 * mp_read.c: the bounds-checked msgpack reading cursor (mp_read.h, which
 * states the contract).
 */
#include "mp_read.h"

#include <string.h>

#include "store.h"

int lm__mp_need(const lm__mp_rd_t *r, uint64_t n) {
  return n <= r->len - r->off ? 0 : LM_STORE_ETRUNC;
}

/* The type byte. */
static int rd_head(lm__mp_rd_t *r, uint8_t *t) {
  if (lm__mp_need(r, 1))
    return LM_STORE_ETRUNC;
  *t = r->p[r->off++];
  return 0;
}

/* An n-byte big-endian length or value (n <= 8). */
static int rd_be(lm__mp_rd_t *r, size_t n, uint64_t *v) {
  if (lm__mp_need(r, n))
    return LM_STORE_ETRUNC;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++)
    x = (x << 8) | r->p[r->off + i];
  r->off += n;
  *v = x;
  return 0;
}

int lm__mp_int(lm__mp_rd_t *r, int64_t *v) {
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
    /* sign-extend from n bytes */
    if (n < 8 && (x >> (8 * n - 1)) & 1)
      x |= ~(uint64_t)0 << (8 * n);
    *v = (int64_t)x;
    return 0;
  }
  return LM_STORE_EMALFORMED;
}

int lm__mp_range(lm__mp_rd_t *r, int64_t lo, int64_t hi, int64_t *v) {
  int rc = lm__mp_int(r, v);
  if (rc)
    return rc;
  return *v < lo || *v > hi ? LM_STORE_EMALFORMED : 0;
}

int lm__mp_u64(lm__mp_rd_t *r, uint64_t *v) {
  uint8_t t;
  int rc = rd_head(r, &t);
  if (rc)
    return rc;
  if (t <= 0x7f) {
    *v = t;
    return 0;
  }
  if (t >= 0xcc && t <= 0xcf)
    return rd_be(r, (size_t)1 << (t - 0xcc), v);
  r->off--; /* a signed form holding a non-negative value */
  int64_t s;
  if ((rc = lm__mp_int(r, &s)))
    return rc;
  if (s < 0)
    return LM_STORE_EMALFORMED;
  *v = (uint64_t)s;
  return 0;
}

int lm__mp_bytes(lm__mp_rd_t *r, int want_str, const uint8_t **p, size_t *n) {
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
  if (lm__mp_need(r, x))
    return LM_STORE_ETRUNC;
  *p = r->p + r->off;
  *n = (size_t)x;
  r->off += (size_t)x;
  return 0;
}

int lm__mp_str(lm__mp_rd_t *r, size_t min, size_t max, const char **p,
               size_t *n) {
  const uint8_t *b;
  int rc = lm__mp_bytes(r, 1, &b, n);
  if (rc)
    return rc;
  if (*n > max)
    return LM_STORE_ETOOBIG;
  if (*n < min || memchr(b, 0, *n))
    return LM_STORE_EMALFORMED;
  *p = (const char *)b;
  return 0;
}

int lm__mp_fixed(lm__mp_rd_t *r, size_t n, const uint8_t **p) {
  size_t k;
  int rc = lm__mp_bytes(r, 0, p, &k);
  if (rc)
    return rc;
  return k == n ? 0 : LM_STORE_EMALFORMED;
}

/* An array (map = 0) or map (map = 1) header; the count must be backed by
 * at least one byte per element still to come. */
static int rd_container(lm__mp_rd_t *r, int map, uint32_t *n) {
  uint8_t t;
  uint64_t x;
  int rc = rd_head(r, &t);
  if (rc)
    return rc;
  if (!map && t >= 0x90 && t <= 0x9f) {
    x = t & 0x0f;
  } else if (map && t >= 0x80 && t <= 0x8f) {
    x = t & 0x0f;
  } else {
    size_t w;
    if (!map)
      w = t == 0xdc ? 2 : t == 0xdd ? 4 : 0;
    else
      w = t == 0xde ? 2 : t == 0xdf ? 4 : 0;
    if (!w)
      return LM_STORE_EMALFORMED;
    if ((rc = rd_be(r, w, &x)))
      return rc;
  }
  if (lm__mp_need(r, map ? 2 * x : x))
    return LM_STORE_ETRUNC;
  *n = (uint32_t)x;
  return 0;
}

int lm__mp_array(lm__mp_rd_t *r, uint32_t *n) { return rd_container(r, 0, n); }

int lm__mp_map(lm__mp_rd_t *r, uint32_t *n) { return rd_container(r, 1, n); }

int lm__mp_skip(lm__mp_rd_t *r, int depth) {
  uint8_t t;
  uint64_t x = 0, items = 0;
  if (depth > LM__MP_SKIP_MAX_DEPTH)
    return LM_STORE_EMALFORMED;
  int rc = rd_head(r, &t);
  if (rc)
    return rc;
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
    return 0;
  if (t >= 0x80 && t <= 0x9f) {
    r->off--;
    uint32_t n;
    if ((rc = rd_container(r, t <= 0x8f, &n)))
      return rc;
    items = t <= 0x8f ? 2 * (uint64_t)n : n;
  } else if (t >= 0xa0 && t <= 0xbf) {
    x = t & 0x1f;
  } else {
    switch (t) {
    case 0xc4: case 0xd9: if ((rc = rd_be(r, 1, &x))) return rc; break;
    case 0xc5: case 0xda: if ((rc = rd_be(r, 2, &x))) return rc; break;
    case 0xc6: case 0xdb: if ((rc = rd_be(r, 4, &x))) return rc; break;
    case 0xcc: case 0xd0: x = 1; break;
    case 0xcd: case 0xd1: x = 2; break;
    case 0xca: case 0xce: case 0xd2: x = 4; break;
    case 0xcb: case 0xcf: case 0xd3: x = 8; break;
    case 0xd4: x = 2; break;
    case 0xd5: x = 3; break;
    case 0xd6: x = 5; break;
    case 0xd7: x = 9; break;
    case 0xd8: x = 17; break;
    case 0xc7: case 0xc8: case 0xc9:
      if ((rc = rd_be(r, t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4, &x)))
        return rc;
      x += 1; /* the ext type byte */
      break;
    case 0xdc: case 0xdd: case 0xde: case 0xdf: {
      r->off--;
      uint32_t n;
      int map = t >= 0xde;
      if ((rc = rd_container(r, map, &n)))
        return rc;
      items = map ? 2 * (uint64_t)n : n;
      break;
    }
    default:
      return LM_STORE_EMALFORMED; /* 0xc1 */
    }
  }
  if (lm__mp_need(r, x))
    return LM_STORE_ETRUNC;
  r->off += (size_t)x;
  for (uint64_t i = 0; i < items; i++)
    if ((rc = lm__mp_skip(r, depth + 1)))
      return rc;
  return 0;
}
