/*
 * fuzz_swim_msg.c: fuzz target for the SWIM wire decoders (swim_proto.h).
 *
 * Runs arbitrary bytes through the same path swim_recv uses: swim_skim first
 * (it is what keeps msgpack-c from sizing arrays from hostile counts), then
 * swim_dec_hdr and swim_dec_upd until the end. Beyond "no crash, no read past
 * the end" it checks what the core relies on: spans lie inside the input,
 * decoded values respect their bounds, and every accepted header and update
 * survives re-encoding with the swim_enc_* functions unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "swim_proto.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

static int in(const uint8_t *p, size_t n, const uint8_t *buf, size_t len) {
  return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void hdr_roundtrip(const swim_hdr_t *h, msgpack_zone *z) {
  uint8_t b[128];
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, b, sizeof b);
  swim_wbuf_packer(&w, &pk);
  swim_enc_hdr(&pk, h);
  CHECK(!w.overflow);
  CHECK(swim_skim(b, w.len) == 0);
  swim_hdr_t o;
  size_t off = 0;
  CHECK(swim_dec_hdr(b, w.len, &off, z, &o) == 0);
  CHECK(off == w.len);
  CHECK(o.type == h->type && o.flags == h->flags && o.from8 == h->from8 &&
        o.seq == h->seq && o.target8 == h->target8);
  if (h->type == SWIM_MSG_PING_REQ) {
    CHECK(o.taddr.family == h->taddr.family && o.taddr.port == h->taddr.port);
    CHECK(memcmp(o.taddr.ip, h->taddr.ip, 16) == 0);
  }
}

/* Re-encodes a decoded update and decodes it again: the fields must come
 * back the same, and when the input was already in the encoder's form the
 * bytes and the signed span must match too. */
static void upd_roundtrip(const swim_upd_t *u, msgpack_zone *z) {
  uint8_t b[2048];
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, b, sizeof b);
  swim_wbuf_packer(&w, &pk);
  size_t from = 0, sig_at = 0;
  switch (u->kind) {
  case SWIM_UPD_ALIVE: {
    char name[SWIM_NAME_MAX + 1];
    memcpy(name, u->name, u->name_len);
    name[u->name_len] = 0;
    swim_enc_alive_body(&pk, u->id, name, &u->addr, u->inc, u->meta,
                        u->meta_len, &from);
    sig_at = w.len;
    swim_enc_sig(&pk, u->sig);
    break;
  }
  case SWIM_UPD_SUSPECT:
  case SWIM_UPD_DEAD:
    swim_enc_accuse(&pk, u->kind, u->id8, u->inc, u->from8);
    break;
  case SWIM_UPD_LEFT:
    swim_enc_left_body(&pk, u->id8, u->inc, &from);
    sig_at = w.len;
    swim_enc_sig(&pk, u->sig);
    break;
  case SWIM_UPD_DIGEST:
    swim_enc_digest(&pk, u->id8, u->status, u->inc);
    break;
  case SWIM_UPD_VIEW:
    swim_enc_view(&pk, u->view);
    break;
  case SWIM_UPD_CRED:
    swim_enc_cred(&pk, u->id, u->meta, u->meta_len);
    break;
  case SWIM_UPD_RENEW:
    swim_enc_renew(&pk, u->id8, u->inc, u->body, u->sig);
    break;
  default:
    CHECK(0);
  }
  CHECK(!w.overflow);
  CHECK(swim_skim(b, w.len) == 0);
  swim_upd_t o;
  size_t off = 0;
  CHECK(swim_dec_upd(b, w.len, &off, z, &o) == 1);
  CHECK(off == w.len);
  CHECK(o.kind == u->kind && o.id8 == u->id8 && o.inc.gen == u->inc.gen &&
        o.inc.ver == u->inc.ver && o.from8 == u->from8 &&
        o.status == u->status && o.view == u->view && o.body == u->body);
  CHECK((o.sig == NULL) == (u->sig == NULL));
  if (u->sig)
    CHECK(memcmp(o.sig, u->sig, SWIM_SIG_LEN) == 0);
  if (u->kind == SWIM_UPD_ALIVE) {
    CHECK(memcmp(o.id, u->id, SWIM_ID_LEN) == 0);
    CHECK(o.name_len == u->name_len &&
          memcmp(o.name, u->name, u->name_len) == 0);
    CHECK(o.meta_len == u->meta_len &&
          (u->meta_len == 0 || memcmp(o.meta, u->meta, u->meta_len) == 0));
    CHECK(o.addr.family == u->addr.family && o.addr.port == u->addr.port &&
          memcmp(o.addr.ip, u->addr.ip, 16) == 0);
  }
  if (u->kind == SWIM_UPD_ALIVE || u->kind == SWIM_UPD_LEFT) {
    CHECK(o.signed_ptr == b + from && o.signed_len == sig_at - from);
    if (o.raw_len == u->raw_len && memcmp(o.raw, u->raw, u->raw_len) == 0)
      CHECK(u->signed_len == o.signed_len);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* an exact-size copy: the replay driver's buffer has slack after the
   * input, which would hide an over-read from ASan */
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  if (size)
    memcpy(buf, data, size);
  if (swim_skim(buf, size) != 0) {
    free(buf);
    return 0;
  }
  msgpack_zone z, z2;
  if (!msgpack_zone_init(&z, 2048) || !msgpack_zone_init(&z2, 2048))
    abort();
  size_t off = 0;
  swim_hdr_t h;
  int rc = swim_dec_hdr(buf, size, &off, &z, &h);
  CHECK(rc <= 0);
  if (rc == 0) {
    CHECK(off > 0 && off <= size);
    CHECK(h.type >= SWIM_MSG_PING && h.type <= SWIM_MSG_GOSSIP);
    hdr_roundtrip(&h, &z2);
    msgpack_zone_clear(&z2);
    for (;;) {
      swim_upd_t u;
      size_t start = off;
      rc = swim_dec_upd(buf, size, &off, &z, &u);
      if (rc <= 0) {
        CHECK(rc == 0 ? off == size : off <= size);
        break;
      }
      CHECK(rc == 1);
      CHECK(off > start && off <= size);
      CHECK(u.raw == buf + start && u.raw_len == off - start);
      CHECK(u.kind <= SWIM_UPD_RENEW);
      if (u.kind == SWIM_UPD_ALIVE) {
        CHECK(in(u.id, SWIM_ID_LEN, u.raw, u.raw_len));
        CHECK(u.id8 == swim_id8(u.id));
        CHECK(u.name_len >= 1 && u.name_len <= SWIM_NAME_MAX);
        CHECK(in((const uint8_t *)u.name, u.name_len, u.raw, u.raw_len));
        CHECK(memchr(u.name, 0, u.name_len) == NULL);
        CHECK(u.meta_len <= SWIM_META_MAX);
        CHECK(u.meta_len == 0 || in(u.meta, u.meta_len, u.raw, u.raw_len));
        CHECK(u.addr.family == 4 || u.addr.family == 6);
      }
      if (u.kind == SWIM_UPD_ALIVE || u.kind == SWIM_UPD_LEFT) {
        CHECK(in(u.signed_ptr, u.signed_len, u.raw, u.raw_len));
        CHECK(u.sig == NULL || in(u.sig, SWIM_SIG_LEN, u.raw, u.raw_len));
      } else if (u.kind == SWIM_UPD_RENEW) {
        /* the signed bytes are rebuilt by the receiver, not in the input */
        CHECK(u.signed_ptr == NULL);
        CHECK(u.sig == NULL || in(u.sig, SWIM_SIG_LEN, u.raw, u.raw_len));
      } else {
        CHECK(u.signed_ptr == NULL && u.sig == NULL);
      }
      if (u.kind == SWIM_UPD_DIGEST)
        CHECK(u.status <= SWIM_LEFT);
      upd_roundtrip(&u, &z2);
      msgpack_zone_clear(&z2);
      /* the decoded views point into buf, not the zone: clearing it
       * between updates is what swim_recv may do too */
      msgpack_zone_clear(&z);
    }
  }
  msgpack_zone_destroy(&z);
  msgpack_zone_destroy(&z2);
  free(buf);
  return 0;
}
