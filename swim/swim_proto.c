/*
 * swim_proto.c: the wire codec (see the picture in swim_proto.h).
 *
 * Pure: depends on msgpack-c only. Every decoder works on a bounded buffer;
 * swim_skim() runs first so that msgpack-c never sizes an array from a count
 * the input cannot back.
 */
#include "swim_proto.h"

#include <stdlib.h>
#include <string.h>

uint64_t swim_id8(const uint8_t id[SWIM_ID_LEN]) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | id[i];
  return v;
}

uint32_t swim__fnv1a(uint32_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

uint32_t swim_body_hash(const uint8_t id[SWIM_ID_LEN], const char *name,
                        size_t name_len, const swim_addr_t *addr,
                        const uint8_t *meta, size_t meta_len) {
  /* each part behind its length, so no two bodies share a byte stream */
  uint8_t a[21];
  size_t an = addr->family == 6 ? 16 : 4;
  a[0] = (uint8_t)an;
  memcpy(a + 1, addr->ip, an);
  a[an + 1] = (uint8_t)(addr->port >> 8);
  a[an + 2] = (uint8_t)addr->port;
  uint8_t l[4] = {(uint8_t)(name_len >> 8), (uint8_t)name_len,
                  (uint8_t)(meta_len >> 8), (uint8_t)meta_len};
  uint32_t h = swim__fnv1a(SWIM_FNV_SEED, id, SWIM_ID_LEN);
  h = swim__fnv1a(h, l, 2);
  h = swim__fnv1a(h, name, name_len);
  h = swim__fnv1a(h, a, an + 3);
  h = swim__fnv1a(h, l + 2, 2);
  return swim__fnv1a(h, meta, meta_len);
}

/* ---- write buffer ---- */

void swim_wbuf_init(swim_wbuf_t *w, uint8_t *p, size_t cap) {
  w->p = p;
  w->len = 0;
  w->cap = cap;
  w->overflow = 0;
  w->growable = 0;
}

void swim_wbuf_init_dyn(swim_wbuf_t *w) {
  w->p = NULL;
  w->len = 0;
  w->cap = 0;
  w->overflow = 0;
  w->growable = 1;
}

static int wbuf_write(void *data, const char *buf, size_t len) {
  swim_wbuf_t *w = data;
  if (w->overflow)
    return -1;
  if (len > w->cap - w->len) {
    if (!w->growable || len > SWIM_STREAM_MAX - w->len) {
      w->overflow = 1;
      return -1;
    }
    size_t ncap = w->cap ? w->cap : 1024;
    while (ncap - w->len < len)
      ncap *= 2;
    if (ncap > SWIM_STREAM_MAX)
      ncap = SWIM_STREAM_MAX;
    uint8_t *np = realloc(w->p, ncap);
    if (!np) {
      w->overflow = 1;
      return -1;
    }
    w->p = np;
    w->cap = ncap;
  }
  memcpy(w->p + w->len, buf, len);
  w->len += len;
  return 0;
}

void swim_wbuf_packer(swim_wbuf_t *w, msgpack_packer *pk) {
  msgpack_packer_init(pk, w, wbuf_write);
}

/* ---- encoding ---- */

static void enc_addr(msgpack_packer *pk, const swim_addr_t *a) {
  uint8_t b[18];
  size_t n = a->family == 6 ? 16 : 4;
  memcpy(b, a->ip, n);
  b[n] = (uint8_t)(a->port >> 8);
  b[n + 1] = (uint8_t)a->port;
  msgpack_pack_bin(pk, n + 2);
  msgpack_pack_bin_body(pk, b, n + 2);
}

void swim_enc_hdr(msgpack_packer *pk, const swim_hdr_t *h) {
  int has_addr = h->type == SWIM_MSG_PING_REQ;
  msgpack_pack_array(pk, has_addr ? 7 : 6);
  msgpack_pack_uint8(pk, SWIM_PROTO_VERSION);
  msgpack_pack_uint8(pk, h->type);
  if (h->from8)
    msgpack_pack_uint64(pk, h->from8);
  else
    msgpack_pack_nil(pk); /* the transport names the sender */
  msgpack_pack_uint32(pk, h->seq);
  msgpack_pack_uint64(pk, h->target8);
  msgpack_pack_uint8(pk, h->flags);
  if (has_addr)
    enc_addr(pk, &h->taddr);
}

static size_t wlen(msgpack_packer *pk) { return ((swim_wbuf_t *)pk->data)->len; }

void swim_enc_alive_body(msgpack_packer *pk, const uint8_t id[SWIM_ID_LEN],
                         const char *name, const swim_addr_t *addr,
                         swim_inc_t inc, const uint8_t *meta, size_t meta_len,
                         size_t *signed_from) {
  msgpack_pack_array(pk, 8);
  *signed_from = wlen(pk);
  msgpack_pack_uint8(pk, SWIM_UPD_ALIVE);
  msgpack_pack_bin(pk, SWIM_ID_LEN);
  msgpack_pack_bin_body(pk, id, SWIM_ID_LEN);
  size_t nl = strlen(name);
  msgpack_pack_str(pk, nl);
  msgpack_pack_str_body(pk, name, nl);
  enc_addr(pk, addr);
  msgpack_pack_uint32(pk, inc.gen);
  msgpack_pack_uint32(pk, inc.ver);
  msgpack_pack_bin(pk, meta_len);
  if (meta_len)
    msgpack_pack_bin_body(pk, meta, meta_len);
}

void swim_enc_left_body(msgpack_packer *pk, uint64_t id8, swim_inc_t inc,
                        size_t *signed_from) {
  msgpack_pack_array(pk, 5);
  *signed_from = wlen(pk);
  msgpack_pack_uint8(pk, SWIM_UPD_LEFT);
  msgpack_pack_uint64(pk, id8);
  msgpack_pack_uint32(pk, inc.gen);
  msgpack_pack_uint32(pk, inc.ver);
}

void swim_enc_sig(msgpack_packer *pk, const uint8_t *sig) {
  if (sig) {
    msgpack_pack_bin(pk, SWIM_SIG_LEN);
    msgpack_pack_bin_body(pk, sig, SWIM_SIG_LEN);
  } else {
    msgpack_pack_nil(pk);
  }
}

void swim_enc_accuse(msgpack_packer *pk, uint8_t kind, uint64_t id8,
                     swim_inc_t inc, uint64_t from8) {
  msgpack_pack_array(pk, 5);
  msgpack_pack_uint8(pk, kind);
  msgpack_pack_uint64(pk, id8);
  msgpack_pack_uint32(pk, inc.gen);
  msgpack_pack_uint32(pk, inc.ver);
  msgpack_pack_uint64(pk, from8);
}

void swim_enc_renew(msgpack_packer *pk, uint64_t id8, swim_inc_t inc,
                    uint32_t body, const uint8_t *sig) {
  msgpack_pack_array(pk, 6);
  msgpack_pack_uint8(pk, SWIM_UPD_RENEW);
  msgpack_pack_uint64(pk, id8);
  msgpack_pack_uint32(pk, inc.gen);
  msgpack_pack_uint32(pk, inc.ver);
  msgpack_pack_uint32(pk, body);
  swim_enc_sig(pk, sig);
}

void swim_enc_digest(msgpack_packer *pk, uint64_t id8, uint8_t status,
                     swim_inc_t inc) {
  msgpack_pack_array(pk, 5);
  msgpack_pack_uint8(pk, SWIM_UPD_DIGEST);
  msgpack_pack_uint64(pk, id8);
  msgpack_pack_uint8(pk, status);
  msgpack_pack_uint32(pk, inc.gen);
  msgpack_pack_uint32(pk, inc.ver);
}

void swim_enc_cred(msgpack_packer *pk, const uint8_t id[SWIM_ID_LEN],
                   const uint8_t *cred, size_t len) {
  msgpack_pack_array(pk, 3);
  msgpack_pack_uint8(pk, SWIM_UPD_CRED);
  msgpack_pack_bin(pk, SWIM_ID_LEN);
  msgpack_pack_bin_body(pk, id, SWIM_ID_LEN);
  msgpack_pack_bin(pk, len);
  msgpack_pack_bin_body(pk, cred, len);
}

void swim_enc_view(msgpack_packer *pk, uint64_t hash) {
  msgpack_pack_array(pk, 2);
  msgpack_pack_uint8(pk, SWIM_UPD_VIEW);
  msgpack_pack_uint64(pk, hash);
}

/* ---- skim: structural validation before msgpack-c sees the bytes ---- */

#define SKIM_MAX_DEPTH 8

/* Reads a big-endian unsigned of n bytes at p. */
static uint64_t be(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* Skims one object at buf[*off]. `pending` counts objects still owed by
 * enclosing containers, so a count that the remaining bytes cannot hold is
 * refused before anything is allocated for it. */
static int skim_obj(const uint8_t *buf, size_t len, size_t *off, int depth) {
  if (depth > SKIM_MAX_DEPTH)
    return SWIM_EMALFORMED;
  if (*off >= len)
    return SWIM_ETRUNC;
  uint8_t t = buf[(*off)++];
  size_t left = len - *off;
  uint64_t skip = 0, items = 0;
  size_t hdr = 0;
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
    return 0;
  } else if (t >= 0x80 && t <= 0x8f) {
    items = 2u * (t & 0x0f);
  } else if (t >= 0x90 && t <= 0x9f) {
    items = t & 0x0f;
  } else if (t >= 0xa0 && t <= 0xbf) {
    skip = t & 0x1f;
  } else {
    switch (t) {
    case 0xc4: case 0xd9: hdr = 1; break;            /* bin8, str8 */
    case 0xc5: case 0xda: hdr = 2; break;            /* bin16, str16 */
    case 0xc6: case 0xdb: hdr = 4; break;            /* bin32, str32 */
    case 0xcc: case 0xd0: skip = 1; break;
    case 0xcd: case 0xd1: skip = 2; break;
    case 0xca: case 0xce: case 0xd2: skip = 4; break;
    case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
    case 0xd4: skip = 2; break;                      /* fixext */
    case 0xd5: skip = 3; break;
    case 0xd6: skip = 5; break;
    case 0xd7: skip = 9; break;
    case 0xd8: skip = 17; break;
    case 0xc7: case 0xc8: case 0xc9: {               /* ext */
      size_t n = t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4;
      if (left < n + 1)
        return SWIM_ETRUNC;
      skip = be(buf + *off, n) + 1;
      *off += n;
      left -= n;
      break;
    }
    case 0xdc: case 0xdd: {                          /* array16/32 */
      size_t n = t == 0xdc ? 2 : 4;
      if (left < n)
        return SWIM_ETRUNC;
      items = be(buf + *off, n);
      *off += n;
      left -= n;
      break;
    }
    case 0xde: case 0xdf: {                          /* map16/32 */
      size_t n = t == 0xde ? 2 : 4;
      if (left < n)
        return SWIM_ETRUNC;
      items = 2 * be(buf + *off, n);
      *off += n;
      left -= n;
      break;
    }
    default:
      return SWIM_EMALFORMED; /* 0xc1 is never used */
    }
  }
  if (hdr) {
    if (left < hdr)
      return SWIM_ETRUNC;
    skip = be(buf + *off, hdr);
    *off += hdr;
    left -= hdr;
  }
  if (skip) {
    if (skip > left)
      return SWIM_ETRUNC;
    *off += (size_t)skip;
    return 0;
  }
  if (items > left) /* each element takes at least one byte */
    return SWIM_ETRUNC;
  for (uint64_t i = 0; i < items; i++) {
    int rc = skim_obj(buf, len, off, depth + 1);
    if (rc)
      return rc;
  }
  return 0;
}

int swim_skim(const uint8_t *buf, size_t len) {
  size_t off = 0;
  if (len == 0)
    return SWIM_ETRUNC;
  while (off < len) {
    int rc = skim_obj(buf, len, &off, 0);
    if (rc)
      return rc;
  }
  return 0;
}

/* ---- decoding ---- */

static int next_obj(const uint8_t *buf, size_t len, size_t *off,
                    msgpack_zone *zone, msgpack_object *o) {
  size_t pos = *off;
  msgpack_unpack_return r =
      msgpack_unpack((const char *)buf, len, &pos, zone, o);
  if (r == MSGPACK_UNPACK_SUCCESS || r == MSGPACK_UNPACK_EXTRA_BYTES) {
    *off = pos;
    return 0;
  }
  if (r == MSGPACK_UNPACK_CONTINUE)
    return SWIM_ETRUNC;
  if (r == MSGPACK_UNPACK_NOMEM_ERROR)
    return SWIM_ENOMEM;
  return SWIM_EMALFORMED;
}

static int get_u64(const msgpack_object *o, uint64_t *v) {
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return SWIM_EMALFORMED;
  *v = o->via.u64;
  return 0;
}

static int get_u32(const msgpack_object *o, uint32_t *v) {
  uint64_t x;
  if (get_u64(o, &x) || x > UINT32_MAX)
    return SWIM_EMALFORMED;
  *v = (uint32_t)x;
  return 0;
}

static int get_u8(const msgpack_object *o, uint8_t *v) {
  uint64_t x;
  if (get_u64(o, &x) || x > UINT8_MAX)
    return SWIM_EMALFORMED;
  *v = (uint8_t)x;
  return 0;
}

static int get_addr(const msgpack_object *o, swim_addr_t *a) {
  if (o->type != MSGPACK_OBJECT_BIN)
    return SWIM_EMALFORMED;
  uint32_t n = o->via.bin.size;
  if (n != 6 && n != 18)
    return SWIM_EMALFORMED;
  const uint8_t *p = (const uint8_t *)o->via.bin.ptr;
  memset(a, 0, sizeof *a);
  a->family = n == 6 ? 4 : 6;
  memcpy(a->ip, p, n - 2);
  a->port = (uint16_t)((p[n - 2] << 8) | p[n - 1]);
  return 0;
}

static int get_sig(const msgpack_object *o, const uint8_t **sig) {
  if (o->type == MSGPACK_OBJECT_NIL) {
    *sig = NULL;
    return 0;
  }
  if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != SWIM_SIG_LEN)
    return SWIM_EMALFORMED;
  *sig = (const uint8_t *)o->via.bin.ptr;
  return 0;
}

/* The signed span runs from after the one-byte array header to the
 * signature element, which must be the canonical bin8 (c4 40) or nil: any
 * other width would shift the span, so it is refused. */
static int sig_span(swim_upd_t *u) {
  size_t sig_len = u->sig ? 2 + SWIM_SIG_LEN : 1;
  if (u->raw_len < 1 + sig_len)
    return SWIM_EMALFORMED;
  const uint8_t *s = u->raw + u->raw_len - sig_len;
  if (u->sig ? (s[0] != 0xc4 || s[1] != SWIM_SIG_LEN) : s[0] != 0xc0)
    return SWIM_EMALFORMED;
  u->signed_ptr = u->raw + 1;
  u->signed_len = u->raw_len - 1 - sig_len;
  return 0;
}

int swim_dec_hdr(const uint8_t *buf, size_t len, size_t *off,
                 msgpack_zone *zone, swim_hdr_t *h) {
  msgpack_object o;
  int rc = next_obj(buf, len, off, zone, &o);
  if (rc)
    return rc;
  if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < 1)
    return SWIM_EMALFORMED;
  const msgpack_object *e = o.via.array.ptr;
  uint8_t ver;
  if (get_u8(&e[0], &ver))
    return SWIM_EMALFORMED;
  if (ver != SWIM_PROTO_VERSION)
    return SWIM_EVERSION;
  if (o.via.array.size < 6)
    return SWIM_EMALFORMED;
  memset(h, 0, sizeof *h);
  if (get_u8(&e[1], &h->type) ||
      (e[2].type != MSGPACK_OBJECT_NIL && get_u64(&e[2], &h->from8)) ||
      get_u32(&e[3], &h->seq) || get_u64(&e[4], &h->target8) ||
      get_u8(&e[5], &h->flags))
    return SWIM_EMALFORMED;
  if (h->type < SWIM_MSG_PING || h->type > SWIM_MSG_GOSSIP)
    return SWIM_EMALFORMED;
  if (h->type == SWIM_MSG_PING_REQ) {
    if (o.via.array.size != 7 || get_addr(&e[6], &h->taddr))
      return SWIM_EMALFORMED;
  } else if (o.via.array.size != 6) {
    return SWIM_EMALFORMED;
  }
  return 0;
}

int swim_dec_upd(const uint8_t *buf, size_t len, size_t *off,
                 msgpack_zone *zone, swim_upd_t *u) {
  if (*off >= len)
    return 0;
  size_t start = *off;
  msgpack_object o;
  int rc = next_obj(buf, len, off, zone, &o);
  if (rc)
    return rc;
  if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < 1)
    return SWIM_EMALFORMED;
  const msgpack_object *e = o.via.array.ptr;
  uint32_t n = o.via.array.size;
  memset(u, 0, sizeof *u);
  u->raw = buf + start;
  u->raw_len = *off - start;
  if (get_u8(&e[0], &u->kind))
    return SWIM_EMALFORMED;
  switch (u->kind) {
  case SWIM_UPD_ALIVE: {
    /* The signed span is fixed by construction: the array header is the
     * single byte 0x98 and the signature element is last. */
    if (n != 8 || buf[start] != 0x98)
      return SWIM_EMALFORMED;
    if (e[1].type != MSGPACK_OBJECT_BIN || e[1].via.bin.size != SWIM_ID_LEN)
      return SWIM_EMALFORMED;
    if (e[2].type != MSGPACK_OBJECT_STR || e[2].via.str.size == 0 ||
        e[2].via.str.size > SWIM_NAME_MAX)
      return SWIM_EMALFORMED;
    if (memchr(e[2].via.str.ptr, 0, e[2].via.str.size))
      return SWIM_EMALFORMED;
    if (get_addr(&e[3], &u->addr) || get_u32(&e[4], &u->inc.gen) ||
        get_u32(&e[5], &u->inc.ver))
      return SWIM_EMALFORMED;
    if (e[6].type != MSGPACK_OBJECT_BIN || e[6].via.bin.size > SWIM_META_MAX)
      return SWIM_EMALFORMED;
    if (get_sig(&e[7], &u->sig))
      return SWIM_EMALFORMED;
    u->id = (const uint8_t *)e[1].via.bin.ptr;
    u->id8 = swim_id8(u->id);
    u->name = e[2].via.str.ptr;
    u->name_len = e[2].via.str.size;
    u->meta = (const uint8_t *)e[6].via.bin.ptr;
    u->meta_len = e[6].via.bin.size;
    if (sig_span(u) != 0)
      return SWIM_EMALFORMED;
    return 1;
  }
  case SWIM_UPD_SUSPECT:
  case SWIM_UPD_DEAD:
    if (n != 5 || get_u64(&e[1], &u->id8) || get_u32(&e[2], &u->inc.gen) ||
        get_u32(&e[3], &u->inc.ver) || get_u64(&e[4], &u->from8))
      return SWIM_EMALFORMED;
    return 1;
  case SWIM_UPD_LEFT: {
    if (n != 5 || buf[start] != 0x95 || get_u64(&e[1], &u->id8) ||
        get_u32(&e[2], &u->inc.gen) || get_u32(&e[3], &u->inc.ver) ||
        get_sig(&e[4], &u->sig))
      return SWIM_EMALFORMED;
    if (sig_span(u) != 0)
      return SWIM_EMALFORMED;
    return 1;
  }
  case SWIM_UPD_RENEW:
    if (n != 6 || get_u64(&e[1], &u->id8) || get_u32(&e[2], &u->inc.gen) ||
        get_u32(&e[3], &u->inc.ver) || get_u32(&e[4], &u->body) ||
        get_sig(&e[5], &u->sig))
      return SWIM_EMALFORMED;
    return 1;
  case SWIM_UPD_DIGEST:
    if (n != 5 || get_u64(&e[1], &u->id8) || get_u8(&e[2], &u->status) ||
        get_u32(&e[3], &u->inc.gen) || get_u32(&e[4], &u->inc.ver) ||
        u->status > SWIM_LEFT)
      return SWIM_EMALFORMED;
    return 1;
  case SWIM_UPD_VIEW:
    if (n != 2 || get_u64(&e[1], &u->view))
      return SWIM_EMALFORMED;
    return 1;
  case SWIM_UPD_CRED:
    if (n != 3 || e[1].type != MSGPACK_OBJECT_BIN ||
        e[1].via.bin.size != SWIM_ID_LEN || e[2].type != MSGPACK_OBJECT_BIN ||
        e[2].via.bin.size == 0 || e[2].via.bin.size > SWIM_META_MAX)
      return SWIM_EMALFORMED;
    u->id = (const uint8_t *)e[1].via.bin.ptr;
    u->id8 = swim_id8(u->id);
    u->meta = (const uint8_t *)e[2].via.bin.ptr;
    u->meta_len = e[2].via.bin.size;
    return 1;
  default:
    /* Unknown update kinds are an error rather than skipped: the protocol
     * version is how new kinds are introduced. */
    return SWIM_EMALFORMED;
  }
}
