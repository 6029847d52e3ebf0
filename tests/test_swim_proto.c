/*
 * test_swim_proto.c: the SWIM wire codec (swim/swim_proto.h).
 *
 * Round trips of every header type and update kind through the swim_enc_*
 * encoders and swim_dec_* decoders, the exact raw and signed spans that
 * relaying and signature checks depend on, and the rejections: truncation,
 * wrong types, bounds, unknown versions and kinds, hostile container counts
 * and nesting. Inputs that a decoder must refuse are copied into buffers of
 * their exact size so that the sanitizer build catches any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

#include <cmocka.h>

#include "swim_proto.h"

/* ---- helpers ---- */

/* A message under construction, in a fixed buffer large enough for all of
 * these tests. */
typedef struct msg {
  uint8_t buf[8192];
  swim_wbuf_t w;
  msgpack_packer pk;
} msg_t;

static void msg_init(msg_t *m) {
  swim_wbuf_init(&m->w, m->buf, sizeof m->buf);
  swim_wbuf_packer(&m->w, &m->pk);
}

/* A heap copy of exactly `len` bytes: reading one byte further is an ASan
 * error in the sanitizer build. */
static uint8_t *exact(const uint8_t *p, size_t len) {
  uint8_t *c = malloc(len ? len : 1);
  assert_non_null(c);
  if (len)
    memcpy(c, p, len);
  return c;
}

static void fill_id(uint8_t id[SWIM_ID_LEN], uint8_t seed) {
  for (int i = 0; i < SWIM_ID_LEN; i++)
    id[i] = (uint8_t)(seed * 37 + i * 11 + 1);
}

static void fill_sig(uint8_t sig[SWIM_SIG_LEN], uint8_t seed) {
  for (int i = 0; i < SWIM_SIG_LEN; i++)
    sig[i] = (uint8_t)(seed ^ (i * 7));
}

static swim_addr_t addr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                         uint16_t port) {
  swim_addr_t x;
  memset(&x, 0, sizeof x);
  x.family = 4;
  x.ip[0] = a;
  x.ip[1] = b;
  x.ip[2] = c;
  x.ip[3] = d;
  x.port = port;
  return x;
}

static swim_addr_t addr6(uint16_t port) {
  swim_addr_t x;
  memset(&x, 0, sizeof x);
  x.family = 6;
  for (int i = 0; i < 16; i++)
    x.ip[i] = (uint8_t)(0xf0 + i);
  x.port = port;
  return x;
}

static void assert_addr_eq(const swim_addr_t *a, const swim_addr_t *b) {
  assert_int_equal(a->family, b->family);
  assert_int_equal(a->port, b->port);
  assert_memory_equal(a->ip, b->ip, a->family == 6 ? 16 : 4);
}

/* Decodes a header from exactly these bytes, with a fresh zone. */
static int dec_hdr_exact(const uint8_t *p, size_t len, size_t *off,
                         swim_hdr_t *h) {
  uint8_t *c = exact(p, len);
  msgpack_zone z;
  assert_true(msgpack_zone_init(&z, 1024));
  size_t o = 0;
  int rc = swim_dec_hdr(c, len, &o, &z, h);
  if (off)
    *off = o;
  msgpack_zone_destroy(&z);
  free(c);
  return rc;
}

/* Decodes the first update of exactly these bytes. */
static int dec_upd_exact(const uint8_t *p, size_t len) {
  uint8_t *c = exact(p, len);
  msgpack_zone z;
  assert_true(msgpack_zone_init(&z, 1024));
  size_t o = 0;
  swim_upd_t u;
  int rc = swim_dec_upd(c, len, &o, &z, &u);
  msgpack_zone_destroy(&z);
  free(c);
  return rc;
}

static int skim_exact(const uint8_t *p, size_t len) {
  uint8_t *c = exact(p, len);
  int rc = swim_skim(c, len);
  free(c);
  return rc;
}

/* ---- a field builder, to write messages the encoders never would ---- */

enum { F_U, F_NEG, F_STR, F_BIN, F_NIL, F_BOOL, F_FLT, F_EXT, F_ARR, F_MAP };

typedef struct fld {
  int t;
  uint64_t u;
  const void *p;
  size_t n;
} fld_t;

#define FU(x) ((fld_t){F_U, (uint64_t)(x), NULL, 0})
#define FSTR(s, len) ((fld_t){F_STR, 0, (s), (len)})
#define FBIN(b, len) ((fld_t){F_BIN, 0, (b), (len)})
#define FNIL ((fld_t){F_NIL, 0, NULL, 0})

static void pack_fld(msgpack_packer *pk, const fld_t *f) {
  static const char one = 'x';
  switch (f->t) {
  case F_U:
    msgpack_pack_uint64(pk, f->u);
    break;
  case F_NEG:
    msgpack_pack_int64(pk, -1);
    break;
  case F_STR:
    msgpack_pack_str(pk, f->n);
    msgpack_pack_str_body(pk, f->p, f->n);
    break;
  case F_BIN:
    msgpack_pack_bin(pk, f->n);
    msgpack_pack_bin_body(pk, f->p, f->n);
    break;
  case F_NIL:
    msgpack_pack_nil(pk);
    break;
  case F_BOOL:
    msgpack_pack_true(pk);
    break;
  case F_FLT:
    msgpack_pack_double(pk, 1.0);
    break;
  case F_EXT:
    msgpack_pack_ext(pk, 1, 5);
    msgpack_pack_ext_body(pk, &one, 1);
    break;
  case F_ARR:
    msgpack_pack_array(pk, 0);
    break;
  case F_MAP:
    msgpack_pack_map(pk, 0);
    break;
  }
}

static void pack_arr(msgpack_packer *pk, const fld_t *f, size_t n) {
  msgpack_pack_array(pk, n);
  for (size_t i = 0; i < n; i++)
    pack_fld(pk, &f[i]);
}

/* Every kind of value a field might wrongly hold. */
static const fld_t wrong[] = {
    {F_U, 1, NULL, 0},    {F_NEG, 0, NULL, 0},  {F_STR, 0, "x", 1},
    {F_BIN, 0, "x", 1},   {F_NIL, 0, NULL, 0},  {F_BOOL, 0, NULL, 0},
    {F_FLT, 0, NULL, 0},  {F_EXT, 0, NULL, 0},  {F_ARR, 0, NULL, 0},
    {F_MAP, 0, NULL, 0},
};

/* For each field of a valid array, replaces it with every value of another
 * kind and checks that `dec` (a header or update decoder) refuses it with
 * SWIM_EMALFORMED while swim_skim still accepts the well-formed msgpack.
 * `ok_kinds[i]` is a bit set of the F_* kinds field i may validly hold. */
static void check_wrong_types(const fld_t *valid, size_t n,
                              const unsigned *ok_kinds, int is_hdr) {
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++) {
      if (ok_kinds[i] & (1u << wrong[k].t))
        continue;
      fld_t f[16];
      memcpy(f, valid, n * sizeof *f);
      f[i] = wrong[k];
      msg_t m;
      msg_init(&m);
      pack_arr(&m.pk, f, n);
      assert_false(m.w.overflow);
      assert_int_equal(skim_exact(m.buf, m.w.len), 0);
      int rc;
      if (is_hdr) {
        swim_hdr_t h;
        rc = dec_hdr_exact(m.buf, m.w.len, NULL, &h);
      } else {
        rc = dec_upd_exact(m.buf, m.w.len);
      }
      if (rc != SWIM_EMALFORMED)
        print_error("field %zu with kind %d: rc %d\n", i, wrong[k].t, rc);
      assert_int_equal(rc, SWIM_EMALFORMED);
    }
  }
}

#define K(x) (1u << (x))

/* ---- header round trips ---- */

static void roundtrip_hdr(const swim_hdr_t *in) {
  msg_t m;
  msg_init(&m);
  swim_enc_hdr(&m.pk, in);
  assert_false(m.w.overflow);
  assert_int_equal(skim_exact(m.buf, m.w.len), 0);
  swim_hdr_t out;
  memset(&out, 0xa5, sizeof out);
  size_t off = 0;
  assert_int_equal(dec_hdr_exact(m.buf, m.w.len, &off, &out), 0);
  assert_int_equal(off, m.w.len); /* consumed exactly the header */
  assert_int_equal(out.type, in->type);
  assert_int_equal(out.flags, in->flags);
  assert_true(out.from8 == in->from8);
  assert_int_equal(out.seq, in->seq);
  assert_true(out.target8 == in->target8);
  if (in->type == SWIM_MSG_PING_REQ)
    assert_addr_eq(&out.taddr, &in->taddr);
  else
    assert_int_equal(out.taddr.family, 0); /* left zeroed */
}

static void test_hdr_roundtrip(void **state) {
  (void)state;
  swim_hdr_t h;
  memset(&h, 0, sizeof h);
  h.from8 = 0x0102030405060708ull;
  h.seq = 42;

  h.type = SWIM_MSG_PING;
  h.target8 = 0xfffffffffffffffeull;
  roundtrip_hdr(&h);

  h.type = SWIM_MSG_ACK;
  h.seq = UINT32_MAX; /* the largest sequence number still fits */
  h.target8 = 0;
  roundtrip_hdr(&h);

  h.type = SWIM_MSG_PING_REQ;
  h.seq = 7;
  h.target8 = 0x1122334455667788ull;
  h.taddr = addr4(10, 1, 2, 3, 7946);
  roundtrip_hdr(&h);
  h.taddr = addr6(65535);
  roundtrip_hdr(&h);

  memset(&h.taddr, 0, sizeof h.taddr);
  h.type = SWIM_MSG_NACK;
  h.target8 = 0;
  roundtrip_hdr(&h);

  h.type = SWIM_MSG_PUSHPULL;
  h.seq = 0;
  h.flags = SWIM_PP_REPLY | SWIM_PP_JOIN;
  roundtrip_hdr(&h);
  h.flags = SWIM_PP_JOIN;
  roundtrip_hdr(&h);

  h.type = SWIM_MSG_GOSSIP;
  h.flags = 0;
  h.from8 = UINT64_MAX;
  roundtrip_hdr(&h);
}

/* ---- update round trips ---- */

typedef struct alive_in {
  uint8_t id[SWIM_ID_LEN];
  const char *name;
  swim_addr_t addr;
  swim_inc_t inc;
  const uint8_t *meta;
  size_t meta_len;
  const uint8_t *sig; /* NULL: nil */
} alive_in_t;

/* Appends an alive record; returns the offsets of its start, of the signed
 * span's start (from the encoder) and of the sig element. */
static void enc_alive(msg_t *m, const alive_in_t *a, size_t *start,
                      size_t *signed_from, size_t *sig_at) {
  *start = m->w.len;
  swim_enc_alive_body(&m->pk, a->id, a->name, &a->addr, a->inc, a->meta,
                      a->meta_len, signed_from);
  *sig_at = m->w.len;
  swim_enc_sig(&m->pk, a->sig);
}

static void check_alive(const swim_upd_t *u, const alive_in_t *a,
                        const uint8_t *base, size_t start, size_t signed_from,
                        size_t sig_at, size_t end) {
  assert_int_equal(u->kind, SWIM_UPD_ALIVE);
  assert_memory_equal(u->id, a->id, SWIM_ID_LEN);
  assert_true(u->id8 == swim_id8(a->id));
  assert_int_equal(u->name_len, strlen(a->name));
  assert_memory_equal(u->name, a->name, u->name_len);
  assert_addr_eq(&u->addr, &a->addr);
  assert_int_equal(u->inc.gen, a->inc.gen);
  assert_int_equal(u->inc.ver, a->inc.ver);
  assert_int_equal(u->meta_len, a->meta_len);
  if (a->meta_len)
    assert_memory_equal(u->meta, a->meta, a->meta_len);
  if (a->sig) {
    assert_non_null(u->sig);
    assert_memory_equal(u->sig, a->sig, SWIM_SIG_LEN);
  } else {
    assert_null(u->sig);
  }
  /* raw is the whole record, to be relayed verbatim */
  assert_ptr_equal(u->raw, base + start);
  assert_int_equal(u->raw_len, end - start);
  /* signed span: after the one-byte array header, up to the sig element */
  assert_int_equal(signed_from, start + 1);
  assert_ptr_equal(u->signed_ptr, base + signed_from);
  assert_int_equal(u->signed_len, sig_at - signed_from);
}

static void test_upd_alive_roundtrip(void **state) {
  (void)state;
  uint8_t meta[SWIM_META_MAX], sig[SWIM_SIG_LEN];
  for (size_t i = 0; i < sizeof meta; i++)
    meta[i] = (uint8_t)(i * 13);
  fill_sig(sig, 9);
  char name64[SWIM_NAME_MAX + 1];
  memset(name64, 'n', SWIM_NAME_MAX);
  name64[SWIM_NAME_MAX] = 0;

  alive_in_t cases[6];
  memset(cases, 0, sizeof cases);
  /* signed, with metadata, IPv4 */
  fill_id(cases[0].id, 1);
  cases[0].name = "alpha";
  cases[0].addr = addr4(192, 168, 0, 1, 7946);
  cases[0].inc = (swim_inc_t){3, 17};
  cases[0].meta = meta;
  cases[0].meta_len = 40;
  cases[0].sig = sig;
  /* unsigned, no metadata */
  fill_id(cases[1].id, 2);
  cases[1].name = "b";
  cases[1].addr = addr4(127, 0, 0, 1, 1);
  cases[1].inc = (swim_inc_t){0, 0};
  /* signed, no metadata, IPv6, largest incarnation */
  fill_id(cases[2].id, 3);
  cases[2].name = "gamma-6";
  cases[2].addr = addr6(8301);
  cases[2].inc = (swim_inc_t){UINT32_MAX, UINT32_MAX};
  cases[2].sig = sig;
  /* unsigned, metadata, IPv6 */
  fill_id(cases[3].id, 4);
  cases[3].name = "delta";
  cases[3].addr = addr6(0);
  cases[3].inc = (swim_inc_t){1, 0};
  cases[3].meta = meta;
  cases[3].meta_len = 3;
  /* the bounds: longest name and metadata, signed */
  fill_id(cases[4].id, 5);
  cases[4].name = name64;
  cases[4].addr = addr4(1, 2, 3, 4, 65535);
  cases[4].inc = (swim_inc_t){70000, 300};
  cases[4].meta = meta;
  cases[4].meta_len = SWIM_META_MAX;
  cases[4].sig = sig;
  /* metadata long enough to need a bin16 header, unsigned */
  fill_id(cases[5].id, 6);
  cases[5].name = "zeta";
  cases[5].addr = addr4(8, 8, 8, 8, 53);
  cases[5].inc = (swim_inc_t){2, 65536};
  cases[5].meta = meta;
  cases[5].meta_len = 300;

  /* each on its own, then all in one message after a header */
  for (size_t i = 0; i < 6; i++) {
    msg_t m;
    msg_init(&m);
    size_t start, from, sig_at;
    enc_alive(&m, &cases[i], &start, &from, &sig_at);
    assert_false(m.w.overflow);
    assert_int_equal(m.buf[0], 0x98); /* the fixed array header */
    assert_int_equal(skim_exact(m.buf, m.w.len), 0);
    uint8_t *c = exact(m.buf, m.w.len);
    msgpack_zone z;
    assert_true(msgpack_zone_init(&z, 1024));
    size_t off = 0;
    swim_upd_t u;
    assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 1);
    assert_int_equal(off, m.w.len);
    check_alive(&u, &cases[i], c, start, from, sig_at, m.w.len);
    assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 0);
    msgpack_zone_destroy(&z);
    free(c);
  }

  msg_t m;
  msg_init(&m);
  swim_hdr_t h;
  memset(&h, 0, sizeof h);
  h.type = SWIM_MSG_GOSSIP;
  h.from8 = 99;
  swim_enc_hdr(&m.pk, &h);
  size_t start[6], from[6], sig_at[6], end[6];
  for (size_t i = 0; i < 6; i++) {
    enc_alive(&m, &cases[i], &start[i], &from[i], &sig_at[i]);
    end[i] = m.w.len;
  }
  assert_false(m.w.overflow);
  assert_int_equal(skim_exact(m.buf, m.w.len), 0);
  uint8_t *c = exact(m.buf, m.w.len);
  msgpack_zone z;
  assert_true(msgpack_zone_init(&z, 1024));
  size_t off = 0;
  swim_hdr_t ho;
  assert_int_equal(swim_dec_hdr(c, m.w.len, &off, &z, &ho), 0);
  assert_int_equal(off, start[0]);
  for (size_t i = 0; i < 6; i++) {
    swim_upd_t u;
    assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 1);
    check_alive(&u, &cases[i], c, start[i], from[i], sig_at[i], end[i]);
    assert_int_equal(off, end[i]);
  }
  swim_upd_t u;
  assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 0);
  msgpack_zone_destroy(&z);
  free(c);
}

static void test_upd_other_roundtrip(void **state) {
  (void)state;
  uint8_t sig[SWIM_SIG_LEN];
  fill_sig(sig, 3);
  msg_t m;
  msg_init(&m);
  size_t at[12], sfrom[12], sig_at[12];
  size_t n = 0;
  /* SUSPECT and DEAD */
  at[n++] = m.w.len;
  swim_enc_accuse(&m.pk, SWIM_UPD_SUSPECT, 0x0a0b0c0d0e0f1011ull,
                  (swim_inc_t){4, 5}, 0x2122232425262728ull);
  at[n++] = m.w.len;
  swim_enc_accuse(&m.pk, SWIM_UPD_DEAD, UINT64_MAX,
                  (swim_inc_t){UINT32_MAX, 0}, 0);
  /* LEFT, signed then unsigned */
  at[n] = m.w.len;
  swim_enc_left_body(&m.pk, 0x3132333435363738ull, (swim_inc_t){6, 7},
                     &sfrom[n]);
  sig_at[n++] = m.w.len;
  swim_enc_sig(&m.pk, sig);
  at[n] = m.w.len;
  swim_enc_left_body(&m.pk, 1, (swim_inc_t){0, UINT32_MAX}, &sfrom[n]);
  sig_at[n++] = m.w.len;
  swim_enc_sig(&m.pk, NULL);
  /* DIGEST, every status */
  for (uint8_t s = SWIM_ALIVE; s <= SWIM_LEFT; s++) {
    at[n++] = m.w.len;
    swim_enc_digest(&m.pk, 0x4142434445464748ull + s, s,
                    (swim_inc_t){s, 1000u * s});
  }
  at[n] = m.w.len;
  assert_false(m.w.overflow);
  assert_int_equal(skim_exact(m.buf, m.w.len), 0);

  uint8_t *c = exact(m.buf, m.w.len);
  msgpack_zone z;
  assert_true(msgpack_zone_init(&z, 1024));
  size_t off = 0;
  swim_upd_t u;
  for (size_t i = 0; i < n; i++) {
    memset(&u, 0x5a, sizeof u);
    assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 1);
    assert_int_equal(off, at[i + 1]);
    assert_ptr_equal(u.raw, c + at[i]);
    assert_int_equal(u.raw_len, at[i + 1] - at[i]);
    assert_null(u.id);   /* ALIVE-only fields are cleared */
    assert_null(u.name);
    assert_int_equal(u.meta_len, 0);
    switch (i) {
    case 0:
      assert_int_equal(u.kind, SWIM_UPD_SUSPECT);
      assert_true(u.id8 == 0x0a0b0c0d0e0f1011ull);
      assert_int_equal(u.inc.gen, 4);
      assert_int_equal(u.inc.ver, 5);
      assert_true(u.from8 == 0x2122232425262728ull);
      assert_null(u.signed_ptr);
      assert_null(u.sig);
      break;
    case 1:
      assert_int_equal(u.kind, SWIM_UPD_DEAD);
      assert_true(u.id8 == UINT64_MAX);
      assert_int_equal(u.inc.gen, UINT32_MAX);
      assert_int_equal(u.inc.ver, 0);
      assert_true(u.from8 == 0);
      assert_null(u.signed_ptr);
      break;
    case 2:
    case 3:
      assert_int_equal(u.kind, SWIM_UPD_LEFT);
      assert_true(u.id8 == (i == 2 ? 0x3132333435363738ull : 1));
      assert_int_equal(u.inc.gen, i == 2 ? 6 : 0);
      assert_int_equal(u.inc.ver, i == 2 ? 7 : UINT32_MAX);
      if (i == 2) {
        assert_non_null(u.sig);
        assert_memory_equal(u.sig, sig, SWIM_SIG_LEN);
      } else {
        assert_null(u.sig);
      }
      assert_int_equal(c[at[i]], 0x95);
      assert_int_equal(sfrom[i], at[i] + 1);
      assert_ptr_equal(u.signed_ptr, c + sfrom[i]);
      assert_int_equal(u.signed_len, sig_at[i] - sfrom[i]);
      break;
    default: {
      uint8_t s = (uint8_t)(i - 4);
      assert_int_equal(u.kind, SWIM_UPD_DIGEST);
      assert_int_equal(u.status, s);
      assert_true(u.id8 == 0x4142434445464748ull + s);
      assert_int_equal(u.inc.gen, s);
      assert_int_equal(u.inc.ver, 1000u * s);
      assert_null(u.signed_ptr);
      break;
    }
    }
  }
  assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 0);
  msgpack_zone_destroy(&z);
  free(c);
}

/* RENEW: the round trip, every wrong type and shape, and a body hash that
 * changes with every part of the body but not with the incarnation. */
static void test_upd_renew(void **state) {
  (void)state;
  uint8_t sig[SWIM_SIG_LEN];
  fill_sig(sig, 9);
  msg_t m;
  msg_init(&m);
  swim_enc_renew(&m.pk, 0x5152535455565758ull, (swim_inc_t){1700000000u, 42},
                 0xdeadbeefu, sig);
  size_t mid = m.w.len;
  swim_enc_renew(&m.pk, 1, (swim_inc_t){0, UINT32_MAX}, 0, NULL);
  assert_false(m.w.overflow);
  uint8_t *c = exact(m.buf, m.w.len);
  msgpack_zone z;
  assert_true(msgpack_zone_init(&z, 1024));
  size_t off = 0;
  swim_upd_t u;
  assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 1);
  assert_int_equal(off, mid);
  assert_int_equal(u.kind, SWIM_UPD_RENEW);
  assert_true(u.id8 == 0x5152535455565758ull);
  assert_int_equal(u.inc.gen, 1700000000u);
  assert_int_equal(u.inc.ver, 42);
  assert_int_equal(u.body, 0xdeadbeefu);
  assert_non_null(u.sig);
  assert_memory_equal(u.sig, sig, SWIM_SIG_LEN);
  assert_null(u.id);
  assert_null(u.signed_ptr); /* the receiver rebuilds what was signed */
  /* 1 + 1 + 9 + 5 + 1 + 5 + 66: a third of a full record's bytes go */
  assert_int_equal(mid, 88);
  assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 1);
  assert_null(u.sig);
  assert_int_equal(u.inc.ver, UINT32_MAX);
  assert_int_equal(swim_dec_upd(c, m.w.len, &off, &z, &u), 0);
  msgpack_zone_destroy(&z);
  free(c);

  fld_t renew[6] = {FU(7), FU(9), FU(1), FU(2), FU(3), FBIN(sig, 64)};
  unsigned renew_ok[6] = {K(F_U), K(F_U), K(F_U),
                          K(F_U), K(F_U), K(F_BIN) | K(F_NIL)};
  check_wrong_types(renew, 6, renew_ok, 0);
  struct {
    fld_t f[8];
    size_t n;
    int rc;
  } cases[] = {
      {{FU(7), FU(9), FU(1), FU(2), FU(UINT32_MAX), FNIL}, 6, 1},
      {{FU(7), FU(9), FU(1), FU(2), FU(1ull << 32), FNIL}, 6, SWIM_EMALFORMED},
      {{FU(7), FU(9), FU(1ull << 32), FU(2), FU(3), FNIL}, 6, SWIM_EMALFORMED},
      {{FU(7), FU(9), FU(1), FU(2), FU(3), FBIN(sig, 63)}, 6, SWIM_EMALFORMED},
      {{FU(7), FU(9), FU(1), FU(2), FU(3)}, 5, SWIM_EMALFORMED},
      {{FU(7), FU(9), FU(1), FU(2), FU(3), FNIL, FNIL}, 7, SWIM_EMALFORMED},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    msg_init(&m);
    pack_arr(&m.pk, cases[i].f, cases[i].n);
    assert_int_equal(dec_upd_exact(m.buf, m.w.len), cases[i].rc);
  }

  uint8_t id[SWIM_ID_LEN];
  fill_id(id, 4);
  swim_addr_t a = {.family = 4, .ip = {10, 0, 0, 1}, .port = 7946};
  uint32_t h = swim_body_hash(id, "web-1", 5, &a, (const uint8_t *)"s=1", 3);
  assert_true(h == swim_body_hash(id, "web-1", 5, &a, (const uint8_t *)"s=1", 3));
  assert_true(h != swim_body_hash(id, "web-1", 5, &a, (const uint8_t *)"s=2", 3));
  assert_true(h != swim_body_hash(id, "web-2", 5, &a, (const uint8_t *)"s=1", 3));
  assert_true(h != swim_body_hash(id, "web-1s", 6, &a, (const uint8_t *)"=1", 2));
  swim_addr_t a2 = a;
  a2.port++;
  assert_true(h != swim_body_hash(id, "web-1", 5, &a2, (const uint8_t *)"s=1", 3));
  uint8_t id2[SWIM_ID_LEN];
  memcpy(id2, id, sizeof id2);
  id2[31] ^= 1;
  assert_true(h != swim_body_hash(id2, "web-1", 5, &a, (const uint8_t *)"s=1", 3));
}

/* The field builder writes exactly what the encoder writes, so the crafted
 * variants below differ from a real record only where they mean to. */
static void test_builder_matches_encoder(void **state) {
  (void)state;
  uint8_t id[SWIM_ID_LEN], sig[SWIM_SIG_LEN], meta[5] = {1, 2, 3, 4, 5};
  fill_id(id, 7);
  fill_sig(sig, 7);
  swim_addr_t a = addr4(10, 0, 0, 9, 4000);
  uint8_t ab[6] = {10, 0, 0, 9, 4000 >> 8, 4000 & 0xff};
  msg_t m1, m2;
  msg_init(&m1);
  msg_init(&m2);
  size_t from;
  swim_enc_alive_body(&m1.pk, id, "node", &a, (swim_inc_t){1, 2}, meta, 5,
                      &from);
  swim_enc_sig(&m1.pk, sig);
  fld_t f[8] = {FU(0),      FBIN(id, 32), FSTR("node", 4), FBIN(ab, 6),
                FU(1),      FU(2),        FBIN(meta, 5),   FBIN(sig, 64)};
  pack_arr(&m2.pk, f, 8);
  assert_int_equal(m1.w.len, m2.w.len);
  assert_memory_equal(m1.buf, m2.buf, m1.w.len);
}

/* ---- rejections ---- */

/* A message with every element kind; each of its proper prefixes that does
 * not end between two elements must be refused as truncated, by the skim
 * and by the decoders alike. */
static void test_truncated_prefixes(void **state) {
  (void)state;
  uint8_t id[SWIM_ID_LEN], sig[SWIM_SIG_LEN], meta[200];
  fill_id(id, 11);
  fill_sig(sig, 11);
  memset(meta, 0x6d, sizeof meta);
  msg_t m;
  msg_init(&m);
  size_t bound[16], nb = 0, from;
  swim_hdr_t h;
  memset(&h, 0, sizeof h);
  h.type = SWIM_MSG_PING_REQ;
  h.from8 = 0xdeadbeefcafef00dull;
  h.seq = 123456;
  h.target8 = 77;
  h.taddr = addr6(9999);
  swim_enc_hdr(&m.pk, &h);
  bound[nb++] = m.w.len;
  swim_addr_t a = addr4(10, 0, 0, 1, 7946);
  swim_enc_alive_body(&m.pk, id, "truncated", &a, (swim_inc_t){1, 2}, meta,
                      sizeof meta, &from);
  swim_enc_sig(&m.pk, sig);
  bound[nb++] = m.w.len;
  swim_enc_accuse(&m.pk, SWIM_UPD_SUSPECT, 5, (swim_inc_t){1, 2}, 6);
  bound[nb++] = m.w.len;
  swim_enc_accuse(&m.pk, SWIM_UPD_DEAD, 5, (swim_inc_t){1, 2}, 6);
  bound[nb++] = m.w.len;
  swim_enc_left_body(&m.pk, 5, (swim_inc_t){1, 3}, &from);
  swim_enc_sig(&m.pk, sig);
  bound[nb++] = m.w.len;
  swim_enc_digest(&m.pk, 5, SWIM_LEFT, (swim_inc_t){1, 3});
  bound[nb++] = m.w.len;
  assert_false(m.w.overflow);
  size_t len = m.w.len;
  assert_int_equal(bound[nb - 1], len);

  for (size_t p = 0; p < len; p++) {
    int at_bound = 0;
    for (size_t i = 0; i < nb; i++)
      at_bound |= bound[i] == p;
    int rc = skim_exact(m.buf, p);
    if (at_bound) {
      /* a shorter message, complete in itself */
      assert_int_equal(rc, 0);
      continue;
    }
    if (rc != SWIM_ETRUNC)
      print_error("prefix %zu: skim rc %d\n", p, rc);
    assert_int_equal(rc, SWIM_ETRUNC);
    /* the decoders on their own, without the skim in front */
    uint8_t *c = exact(m.buf, p);
    msgpack_zone z;
    assert_true(msgpack_zone_init(&z, 1024));
    size_t off = 0;
    swim_hdr_t ho;
    rc = swim_dec_hdr(c, p, &off, &z, &ho);
    if (rc == 0) {
      swim_upd_t u;
      while ((rc = swim_dec_upd(c, p, &off, &z, &u)) == 1)
        assert_true(off <= p);
    }
    if (rc != SWIM_ETRUNC)
      print_error("prefix %zu: decoder rc %d\n", p, rc);
    assert_int_equal(rc, SWIM_ETRUNC);
    msgpack_zone_destroy(&z);
    free(c);
  }
}

static void test_hdr_rejects(void **state) {
  (void)state;
  /* a18 has room for the longest bad length tried below */
  uint8_t a6[6] = {1, 2, 3, 4, 0, 80}, a18[32] = {0};
  /* wrong types in each field, for both header shapes */
  fld_t ping[6] = {FU(SWIM_PROTO_VERSION), FU(SWIM_MSG_PING), FU(1), FU(2), FU(3), FU(0)};
  unsigned ping_ok[6] = {K(F_U), K(F_U), K(F_U) | K(F_NIL), K(F_U), K(F_U), K(F_U)};
  check_wrong_types(ping, 6, ping_ok, 1);
  fld_t preq[7] = {FU(SWIM_PROTO_VERSION), FU(SWIM_MSG_PING_REQ), FU(1), FU(2), FU(3), FU(0),
                   FBIN(a6, 6)};
  unsigned preq_ok[7] = {K(F_U), K(F_U), K(F_U) | K(F_NIL), K(F_U),
                         K(F_U), K(F_U), K(F_BIN)};
  check_wrong_types(preq, 7, preq_ok, 1);

  struct {
    fld_t f[8];
    size_t n;
    int rc;
    const char *what;
  } cases[] = {
      {{FU(1), FU(1), FU(1), FU(2), FU(3), FU(0)}, 6, SWIM_EVERSION, "v1"},
      {{FU(0), FU(1), FU(1), FU(2), FU(3), FU(0)}, 6, SWIM_EVERSION, "v0"},
      {{FU(255), FU(1)}, 2, SWIM_EVERSION, "v255, another shape"},
      {{FU(256), FU(1), FU(1), FU(2), FU(3), FU(0)}, 6, SWIM_EMALFORMED,
       "version over u8"},
      {{FU(SWIM_PROTO_VERSION), FU(0), FU(1), FU(2), FU(3), FU(0)}, 6, SWIM_EMALFORMED,
       "type 0"},
      {{FU(SWIM_PROTO_VERSION), FU(7), FU(1), FU(2), FU(3), FU(0)}, 6, SWIM_EMALFORMED,
       "type 7"},
      {{FU(SWIM_PROTO_VERSION), FU(255), FU(1), FU(2), FU(3), FU(0)}, 6, SWIM_EMALFORMED,
       "type 255"},
      {{FU(SWIM_PROTO_VERSION), FU(1), FU(1), FU(1ull << 32), FU(3), FU(0)}, 6,
       SWIM_EMALFORMED, "seq 2^32"},
      {{FU(SWIM_PROTO_VERSION), FU(1), FU(1), FU(2), FU(3), FU(256)}, 6, SWIM_EMALFORMED,
       "flags 256"},
      {{FU(SWIM_PROTO_VERSION), FU(1), FU(1), FU(2), FU(3)}, 5, SWIM_EMALFORMED, "5 fields"},
      {{FU(SWIM_PROTO_VERSION), FU(1), FU(1), FU(2), FU(3), FU(0), FBIN(a6, 6)}, 7,
       SWIM_EMALFORMED, "ping with an address"},
      {{FU(SWIM_PROTO_VERSION), FU(3), FU(1), FU(2), FU(3), FU(0)}, 6, SWIM_EMALFORMED,
       "ping-req without an address"},
      {{FU(SWIM_PROTO_VERSION), FU(3), FU(1), FU(2), FU(3), FU(0), FBIN(a6, 6), FU(0)}, 8,
       SWIM_EMALFORMED, "ping-req, 8 fields"},
      {{FU(SWIM_PROTO_VERSION)}, 1, SWIM_EMALFORMED, "version only"},
      {{FU(0)}, 0, SWIM_EMALFORMED, "empty array"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    msg_t m;
    msg_init(&m);
    pack_arr(&m.pk, cases[i].f, cases[i].n);
    swim_hdr_t h;
    int rc = dec_hdr_exact(m.buf, m.w.len, NULL, &h);
    if (rc != cases[i].rc)
      print_error("%s: rc %d\n", cases[i].what, rc);
    assert_int_equal(rc, cases[i].rc);
  }

  /* address lengths other than 6 and 18 */
  static const size_t bad_alen[] = {0, 1, 4, 5, 7, 16, 17, 19, 32};
  for (size_t i = 0; i < sizeof bad_alen / sizeof bad_alen[0]; i++) {
    fld_t f[7] = {FU(SWIM_PROTO_VERSION), FU(3), FU(1), FU(2), FU(3), FU(0),
                  FBIN(a18, bad_alen[i])};
    msg_t m;
    msg_init(&m);
    pack_arr(&m.pk, f, 7);
    swim_hdr_t h;
    assert_int_equal(dec_hdr_exact(m.buf, m.w.len, NULL, &h),
                     SWIM_EMALFORMED);
  }
  /* and the two valid ones */
  {
    fld_t f[7] = {FU(SWIM_PROTO_VERSION), FU(3), FU(1), FU(2), FU(3), FU(0), FBIN(a18, 18)};
    msg_t m;
    msg_init(&m);
    pack_arr(&m.pk, f, 7);
    swim_hdr_t h;
    assert_int_equal(dec_hdr_exact(m.buf, m.w.len, NULL, &h), 0);
    assert_int_equal(h.taddr.family, 6);
  }

  /* not an array at all */
  msg_t m;
  msg_init(&m);
  msgpack_pack_map(&m.pk, 1);
  msgpack_pack_uint8(&m.pk, 1);
  msgpack_pack_uint8(&m.pk, 1);
  swim_hdr_t h;
  assert_int_equal(dec_hdr_exact(m.buf, m.w.len, NULL, &h), SWIM_EMALFORMED);
  const uint8_t scalar[1] = {0x01};
  assert_int_equal(dec_hdr_exact(scalar, 1, NULL, &h), SWIM_EMALFORMED);
  /* the never-used byte 0xc1 */
  const uint8_t c1[1] = {0xc1};
  assert_true(dec_hdr_exact(c1, 1, NULL, &h) < 0);
  /* nothing at all */
  assert_int_equal(dec_hdr_exact(scalar, 0, NULL, &h), SWIM_ETRUNC);
}

static void test_upd_rejects(void **state) {
  (void)state;
  uint8_t id[40], sig[70], meta[SWIM_META_MAX + 2], a[20];
  fill_id(id, 1);
  memset(sig, 0x51, sizeof sig);
  memset(meta, 0x4d, sizeof meta);
  memset(a, 0x0a, sizeof a);
  char name[SWIM_NAME_MAX + 2];
  memset(name, 'q', sizeof name);

  /* wrong types, every field of every kind */
  fld_t alive[8] = {FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6),
                    FU(1), FU(2),        FBIN(meta, 3), FBIN(sig, 64)};
  unsigned alive_ok[8] = {K(F_U),   K(F_BIN), K(F_STR), K(F_BIN),
                          K(F_U),   K(F_U),   K(F_BIN), K(F_BIN) | K(F_NIL)};
  check_wrong_types(alive, 8, alive_ok, 0);
  unsigned five_u[5] = {K(F_U), K(F_U), K(F_U), K(F_U), K(F_U)};
  fld_t susp[5] = {FU(1), FU(9), FU(1), FU(2), FU(3)};
  check_wrong_types(susp, 5, five_u, 0);
  fld_t dead[5] = {FU(2), FU(9), FU(1), FU(2), FU(3)};
  check_wrong_types(dead, 5, five_u, 0);
  fld_t left[5] = {FU(3), FU(9), FU(1), FU(2), FBIN(sig, 64)};
  unsigned left_ok[5] = {K(F_U), K(F_U), K(F_U), K(F_U),
                         K(F_BIN) | K(F_NIL)};
  check_wrong_types(left, 5, left_ok, 0);
  fld_t dig[5] = {FU(4), FU(9), FU(1), FU(2), FU(3)};
  check_wrong_types(dig, 5, five_u, 0);

  /* bounds and shapes */
  struct {
    fld_t f[10];
    size_t n;
    int rc;
    const char *what;
  } cases[] = {
      /* control: valid */
      {{FU(0), FBIN(id, 32), FSTR(name, SWIM_NAME_MAX), FBIN(a, 18), FU(1),
        FU(2), FBIN(meta, SWIM_META_MAX), FNIL},
       8, 1, "alive at the bounds"},
      {{FU(0), FBIN(id, 32), FSTR(name, SWIM_NAME_MAX + 1), FBIN(a, 6), FU(1),
        FU(2), FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "name too long"},
      {{FU(0), FBIN(id, 32), FSTR("", 0), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "empty name"},
      {{FU(0), FBIN(id, 32), FSTR("ab\0c", 4), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "name with NUL"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, SWIM_META_MAX + 1), FNIL},
       8, SWIM_EMALFORMED, "meta too long"},
      {{FU(0), FBIN(id, 31), FSTR("n", 1), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "id 31 bytes"},
      {{FU(0), FBIN(id, 33), FSTR("n", 1), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "id 33 bytes"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, 0), FBIN(sig, 63)},
       8, SWIM_EMALFORMED, "alive sig 63 bytes"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, 0), FBIN(sig, 65)},
       8, SWIM_EMALFORMED, "alive sig 65 bytes"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 7), FU(1), FU(2),
        FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "addr 7 bytes"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 16), FU(1), FU(2),
        FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "addr 16 bytes"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6), FU(1ull << 32), FU(2),
        FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "alive gen 2^32"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6), FU(1),
        FU(1ull << 32), FBIN(meta, 0), FNIL},
       8, SWIM_EMALFORMED, "alive ver 2^32"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, 0)},
       7, SWIM_EMALFORMED, "alive, 7 fields"},
      {{FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6), FU(1), FU(2),
        FBIN(meta, 0), FNIL, FNIL},
       9, SWIM_EMALFORMED, "alive, 9 fields"},
      {{FU(1), FU(9), FU(1ull << 32), FU(2), FU(3)}, 5, SWIM_EMALFORMED,
       "suspect gen 2^32"},
      {{FU(2), FU(9), FU(1), FU(1ull << 32), FU(3)}, 5, SWIM_EMALFORMED,
       "dead ver 2^32"},
      {{FU(1), FU(9), FU(1), FU(2)}, 4, SWIM_EMALFORMED, "suspect, 4 fields"},
      {{FU(2), FU(9), FU(1), FU(2), FU(3), FU(4)}, 6, SWIM_EMALFORMED,
       "dead, 6 fields"},
      {{FU(3), FU(9), FU(1), FU(2), FBIN(sig, 63)}, 5, SWIM_EMALFORMED,
       "left sig 63 bytes"},
      {{FU(3), FU(9), FU(1), FU(2), FBIN(sig, 65)}, 5, SWIM_EMALFORMED,
       "left sig 65 bytes"},
      {{FU(3), FU(9), FU(1ull << 32), FU(2), FNIL}, 5, SWIM_EMALFORMED,
       "left gen 2^32"},
      {{FU(3), FU(9), FU(1), FU(2)}, 4, SWIM_EMALFORMED, "left, 4 fields"},
      {{FU(4), FU(9), FU(4), FU(2), FU(3)}, 5, SWIM_EMALFORMED,
       "digest status 4"},
      {{FU(4), FU(9), FU(256), FU(2), FU(3)}, 5, SWIM_EMALFORMED,
       "digest status 256"},
      {{FU(4), FU(9), FU(3), FU(2), FU(1ull << 32)}, 5, SWIM_EMALFORMED,
       "digest ver 2^32"},
      {{FU(4), FU(9), FU(3), FU(UINT32_MAX), FU(UINT32_MAX)}, 5, 1,
       "digest at the bounds"},
      {{FU(5), FU(9), FU(1), FU(2), FU(3)}, 5, SWIM_EMALFORMED, "kind 5"},
      {{FU(200), FU(9), FU(1), FU(2), FU(3)}, 5, SWIM_EMALFORMED, "kind 200"},
      {{FU(256), FU(9), FU(1), FU(2), FU(3)}, 5, SWIM_EMALFORMED, "kind 256"},
      {{FU(0)}, 0, SWIM_EMALFORMED, "empty array"},
      {{FU(1)}, 1, SWIM_EMALFORMED, "kind only"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    msg_t m;
    msg_init(&m);
    pack_arr(&m.pk, cases[i].f, cases[i].n);
    assert_false(m.w.overflow);
    assert_int_equal(skim_exact(m.buf, m.w.len), 0);
    int rc = dec_upd_exact(m.buf, m.w.len);
    if (rc != cases[i].rc)
      print_error("%s: rc %d\n", cases[i].what, rc);
    assert_int_equal(rc, cases[i].rc);
  }

  /* address lengths, exhaustively up to 20 bytes */
  for (size_t n = 0; n <= 20; n++) {
    fld_t f[8] = {FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, n),
                  FU(1), FU(2),        FBIN(meta, 0), FNIL};
    msg_t m;
    msg_init(&m);
    pack_arr(&m.pk, f, 8);
    assert_int_equal(dec_upd_exact(m.buf, m.w.len),
                     n == 6 || n == 18 ? 1 : SWIM_EMALFORMED);
  }

  /* an alive record whose array header is not the one-byte 0x98 would
   * shift the signed span, so it is refused */
  {
    msg_t m;
    msg_init(&m);
    const uint8_t arr16[3] = {0xdc, 0x00, 0x08};
    msgpack_pack_bin_body(&m.pk, arr16, 3);
    for (size_t i = 0; i < 8; i++)
      pack_fld(&m.pk, &alive[i]);
    assert_int_equal(skim_exact(m.buf, m.w.len), 0);
    assert_int_equal(dec_upd_exact(m.buf, m.w.len), SWIM_EMALFORMED);
  }
  {
    msg_t m;
    msg_init(&m);
    const uint8_t arr16[3] = {0xdc, 0x00, 0x05};
    msgpack_pack_bin_body(&m.pk, arr16, 3);
    for (size_t i = 0; i < 5; i++)
      pack_fld(&m.pk, &left[i]);
    assert_int_equal(dec_upd_exact(m.buf, m.w.len), SWIM_EMALFORMED);
  }

  /* updates that are not arrays */
  const uint8_t notarr[][2] = {{0x01, 0}, {0x80, 0}, {0xc0, 0}, {0xa1, 'x'}};
  const size_t notarr_len[] = {1, 1, 1, 2};
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(dec_upd_exact(notarr[i], notarr_len[i]),
                     SWIM_EMALFORMED);
  /* an ext object where an update should be */
  const uint8_t ext[3] = {0xd4, 0x01, 0x00};
  assert_int_equal(skim_exact(ext, 3), 0);
  assert_int_equal(dec_upd_exact(ext, 3), SWIM_EMALFORMED);
}

/* Signatures are 64 bytes and the encoder writes them with a two-byte bin8
 * header. A sender free to pick a longer (legal msgpack) bin16 or bin32
 * header must not get a signed span that covers part of that header: either
 * the record is refused or the span still ends where the sig element
 * starts. */
static void test_sig_header_width(void **state) {
  (void)state;
  uint8_t id[SWIM_ID_LEN], sig[SWIM_SIG_LEN], a[6] = {1, 2, 3, 4, 0, 1};
  fill_id(id, 3);
  fill_sig(sig, 3);
  static const uint8_t hdr16[3] = {0xc5, 0x00, SWIM_SIG_LEN};
  static const uint8_t hdr32[5] = {0xc6, 0x00, 0x00, 0x00, SWIM_SIG_LEN};
  const uint8_t *hdrs[2] = {hdr16, hdr32};
  const size_t hlen[2] = {3, 5};
  for (int kind = 0; kind < 2; kind++) {
    for (int w = 0; w < 2; w++) {
      msg_t m;
      msg_init(&m);
      if (kind == 0) {
        fld_t f[7] = {FU(0), FBIN(id, 32), FSTR("n", 1), FBIN(a, 6),
                      FU(1), FU(2),        FBIN(a, 0)};
        msgpack_pack_array(&m.pk, 8);
        for (int i = 0; i < 7; i++)
          pack_fld(&m.pk, &f[i]);
      } else {
        fld_t f[4] = {FU(3), FU(9), FU(1), FU(2)};
        msgpack_pack_array(&m.pk, 5);
        for (int i = 0; i < 4; i++)
          pack_fld(&m.pk, &f[i]);
      }
      size_t sig_at = m.w.len;
      msgpack_pack_bin_body(&m.pk, hdrs[w], hlen[w]);
      msgpack_pack_bin_body(&m.pk, sig, SWIM_SIG_LEN);
      assert_int_equal(skim_exact(m.buf, m.w.len), 0);
      uint8_t *c = exact(m.buf, m.w.len);
      msgpack_zone z;
      assert_true(msgpack_zone_init(&z, 1024));
      size_t off = 0;
      swim_upd_t u;
      int rc = swim_dec_upd(c, m.w.len, &off, &z, &u);
      /* compare after freeing, so a failure leaks nothing */
      int ptr_ok = rc == 1 && u.signed_ptr == c + 1;
      size_t slen = rc == 1 ? u.signed_len : 0;
      msgpack_zone_destroy(&z);
      free(c);
      if (rc == 1) {
        if (slen != sig_at - 1)
          print_error("%s record, bin%d sig header: signed span is %zu "
                      "bytes, the record's fields are %zu\n",
                      kind == 0 ? "alive" : "left", w == 0 ? 16 : 32, slen,
                      sig_at - 1);
        assert_true(ptr_ok);
        assert_int_equal(slen, sig_at - 1);
      } else {
        assert_int_equal(rc, SWIM_EMALFORMED);
      }
    }
  }
}

static void test_skim_rejects(void **state) {
  (void)state;
  /* Containers and strings that declare more than the input holds: refused
   * from the count alone. msgpack-c would size an array of 2^32-1 objects
   * (64 GiB) from the first of these before reading any element. */
  static const struct {
    uint8_t b[8];
    size_t n;
  } big[] = {
      {{0xdd, 0xff, 0xff, 0xff, 0xff}, 5}, /* array32 of 2^32-1 */
      {{0xdc, 0xff, 0xff}, 3},             /* array16 of 65535 */
      {{0xdf, 0xff, 0xff, 0xff, 0xff}, 5}, /* map32 */
      {{0xde, 0x00, 0x02, 0x01, 0x01, 0x01}, 6}, /* map16 of 2 pairs, 3 objs */
      {{0xdb, 0xff, 0xff, 0xff, 0xff}, 5}, /* str32 */
      {{0xc6, 0xff, 0xff, 0xff, 0xff}, 5}, /* bin32 */
      {{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, 6}, /* ext32 */
      {{0xc7, 0x05, 0x01, 0x00}, 4},       /* ext8 of 5 with 1 byte */
      {{0x93, 0x01, 0x02}, 3},             /* fixarray of 3 with 2 */
      {{0xcf, 0x00, 0x00}, 3},             /* uint64 with 2 bytes */
      {{0xd8, 0x01}, 2},                   /* fixext16 */
      {{0x9f}, 1},
  };
#if defined(__GLIBC__)
  struct mallinfo2 before = mallinfo2();
#endif
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    int rc = skim_exact(big[i].b, big[i].n);
    if (rc != SWIM_ETRUNC)
      print_error("case %zu: rc %d\n", i, rc);
    assert_int_equal(rc, SWIM_ETRUNC);
  }
  /* the skim itself must not allocate (its only allocations here are the
   * exact copies, freed again) */
  int rc = swim_skim(big[0].b, big[0].n);
  assert_int_equal(rc, SWIM_ETRUNC);
#if defined(__GLIBC__)
  struct mallinfo2 after = mallinfo2();
  assert_int_equal(before.uordblks, after.uordblks);
#endif
  /* a well-formed 2^32-1 array header inside a valid message: same */
  {
    msg_t m;
    msg_init(&m);
    swim_hdr_t h;
    memset(&h, 0, sizeof h);
    h.type = SWIM_MSG_GOSSIP;
    swim_enc_hdr(&m.pk, &h);
    msgpack_pack_array(&m.pk, UINT32_MAX);
    assert_int_equal(skim_exact(m.buf, m.w.len), SWIM_ETRUNC);
  }

  /* nesting: 9 levels of arrays are fine, 10 are refused */
  uint8_t nest[16];
  memset(nest, 0x91, sizeof nest);
  for (size_t depth = 1; depth <= 12; depth++) {
    nest[depth - 1] = 0x90; /* innermost is empty */
    rc = skim_exact(nest, depth);
    assert_int_equal(rc, depth <= 9 ? 0 : SWIM_EMALFORMED);
    nest[depth - 1] = 0x91;
  }
  /* a map is a container too */
  uint8_t nestm[24];
  size_t nm = 0;
  for (int i = 0; i < 10; i++) {
    nestm[nm++] = 0x81;
    nestm[nm++] = 0x01;
  }
  nestm[nm++] = 0x80;
  assert_int_equal(skim_exact(nestm, nm), SWIM_EMALFORMED);

  /* 0xc1 is never used, wherever it appears */
  const uint8_t c1a[1] = {0xc1};
  const uint8_t c1b[3] = {0x92, 0x01, 0xc1};
  const uint8_t c1c[4] = {0x91, 0x01, 0x01, 0xc1}; /* after a whole object */
  assert_int_equal(skim_exact(c1a, 1), SWIM_EMALFORMED);
  assert_int_equal(skim_exact(c1b, 3), SWIM_EMALFORMED);
  assert_int_equal(skim_exact(c1c, 4), SWIM_EMALFORMED);

  /* ext types are well-formed msgpack; the decoders then refuse them */
  const uint8_t exts[][8] = {
      {0xd4, 0x01, 0x00},
      {0xd5, 0x01, 0x00, 0x00},
      {0xc7, 0x02, 0x05, 0xaa, 0xbb},
      {0xc8, 0x00, 0x01, 0x05, 0xaa},
  };
  const size_t extn[] = {3, 4, 5, 5};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(skim_exact(exts[i], extn[i]), 0);
    assert_int_equal(dec_upd_exact(exts[i], extn[i]), SWIM_EMALFORMED);
    swim_hdr_t h;
    assert_int_equal(dec_hdr_exact(exts[i], extn[i], NULL, &h),
                     SWIM_EMALFORMED);
  }

  /* empty input */
  assert_int_equal(swim_skim((const uint8_t *)"", 0), SWIM_ETRUNC);
}

/* ---- the write buffer ---- */

static void test_wbuf(void **state) {
  (void)state;
  /* fixed: an overflow is flagged and nothing lands past cap */
  uint8_t mem[64];
  memset(mem, 0xaa, sizeof mem);
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, mem, 16);
  swim_wbuf_packer(&w, &pk);
  msgpack_pack_uint8(&pk, 1);
  assert_int_equal(w.len, 1);
  assert_false(w.overflow);
  uint8_t big[40];
  memset(big, 0x11, sizeof big);
  msgpack_pack_bin(&pk, sizeof big);
  msgpack_pack_bin_body(&pk, big, sizeof big);
  assert_true(w.overflow);
  assert_true(w.len <= 16);
  for (size_t i = 16; i < sizeof mem; i++)
    assert_int_equal(mem[i], 0xaa);
  /* once overflowed, even a write that would fit is refused, so a message
   * never has a hole in it */
  size_t len = w.len;
  msgpack_pack_nil(&pk);
  assert_int_equal(w.len, len);
  assert_true(w.overflow);

  /* an exact fit is not an overflow */
  swim_wbuf_init(&w, mem, 4);
  swim_wbuf_packer(&w, &pk);
  msgpack_pack_bin(&pk, 2);
  msgpack_pack_bin_body(&pk, "ab", 2);
  assert_false(w.overflow);
  assert_int_equal(w.len, 4);

  /* growable: grows, keeps every byte */
  swim_wbuf_init_dyn(&w);
  swim_wbuf_packer(&w, &pk);
  size_t n = 300000;
  uint8_t *src = malloc(n);
  assert_non_null(src);
  for (size_t i = 0; i < n; i++)
    src[i] = (uint8_t)(i * 31);
  msgpack_pack_bin(&pk, n);
  msgpack_pack_bin_body(&pk, src, n);
  msgpack_pack_uint8(&pk, 7);
  assert_false(w.overflow);
  assert_int_equal(w.len, 5 + n + 1);
  assert_true(w.cap >= w.len);
  assert_int_equal(w.p[0], 0xc6);
  assert_memory_equal(w.p + 5, src, n);
  assert_int_equal(w.p[5 + n], 7);
  free(w.p);

  /* growable, but not past SWIM_STREAM_MAX */
  swim_wbuf_init_dyn(&w);
  swim_wbuf_packer(&w, &pk);
  size_t chunk = 1u << 20;
  uint8_t *blk = calloc(1, chunk);
  assert_non_null(blk);
  size_t written = 0;
  while (!w.overflow && written <= SWIM_STREAM_MAX) {
    msgpack_pack_bin_body(&pk, blk, chunk);
    if (!w.overflow)
      written += chunk;
  }
  assert_true(w.overflow);
  assert_true(written <= SWIM_STREAM_MAX);
  assert_true(w.cap <= SWIM_STREAM_MAX);
  free(w.p);
  free(blk);
  free(src);
}

static void test_id8(void **state) {
  (void)state;
  uint8_t id[SWIM_ID_LEN];
  memset(id, 0xee, sizeof id);
  for (int i = 0; i < 8; i++)
    id[i] = (uint8_t)(i + 1);
  assert_true(swim_id8(id) == 0x0102030405060708ull);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hdr_roundtrip),
      cmocka_unit_test(test_upd_alive_roundtrip),
      cmocka_unit_test(test_upd_other_roundtrip),
      cmocka_unit_test(test_upd_renew),
      cmocka_unit_test(test_builder_matches_encoder),
      cmocka_unit_test(test_truncated_prefixes),
      cmocka_unit_test(test_hdr_rejects),
      cmocka_unit_test(test_upd_rejects),
      cmocka_unit_test(test_sig_header_width),
      cmocka_unit_test(test_skim_rejects),
      cmocka_unit_test(test_wbuf),
      cmocka_unit_test(test_id8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
