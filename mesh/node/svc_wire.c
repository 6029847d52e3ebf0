/*
 * svc_wire.c: the REQ and LIST messages of service lists (svc_wire.h).
 */
#include "svc_wire.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "swim_proto.h"

int lm__svcmsg_is(const uint8_t *p, size_t len) {
  return len >= 3 && (p[0] & 0xf0) == 0x90 && p[1] == LM__SVCMSG_MARK;
}

static int decode_req(lm__svcmsg_t *out, const msgpack_object *items) {
  if (items->type != MSGPACK_OBJECT_ARRAY || items->via.array.size == 0 ||
      items->via.array.size > LM__SVCMSG_REQ_MAX)
    return -1;
  for (uint32_t i = 0; i < items->via.array.size; i++) {
    const msgpack_object *e = &items->via.array.ptr[i];
    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
        e->via.array.ptr[0].type != MSGPACK_OBJECT_BIN ||
        e->via.array.ptr[0].via.bin.size != SWIM_ID_LEN ||
        e->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
      return -1;
    out->req[i].id = (const uint8_t *)e->via.array.ptr[0].via.bin.ptr;
    out->req[i].seq = e->via.array.ptr[1].via.u64;
  }
  out->nreq = items->via.array.size;
  return 0;
}

int lm__svcmsg_decode(lm__svcmsg_t *out, const uint8_t *buf, size_t len) {
  memset(out, 0, sizeof *out);
  /* msgpack-c sizes arrays from their declared counts: skim first */
  if (!lm__svcmsg_is(buf, len) || swim_skim(buf, len))
    return -1;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  int rc = -1;
  if (msgpack_unpack_next(&u, (const char *)buf, len, &off) ==
          MSGPACK_UNPACK_SUCCESS &&
      off == len && u.data.type == MSGPACK_OBJECT_ARRAY &&
      u.data.via.array.size == 3 &&
      u.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
      u.data.via.array.ptr[0].via.u64 == LM__SVCMSG_MARK &&
      u.data.via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    const msgpack_object *body = &u.data.via.array.ptr[2];
    switch (u.data.via.array.ptr[1].via.u64) {
    case LM__SVCMSG_REQ:
      out->kind = LM__SVCMSG_REQ;
      rc = decode_req(out, body);
      break;
    case LM__SVCMSG_LIST:
      if (body->type == MSGPACK_OBJECT_BIN &&
          body->via.bin.size > LM__SVCMSG_SIG_LEN) {
        out->kind = LM__SVCMSG_LIST;
        out->list = (const uint8_t *)body->via.bin.ptr;
        out->list_len = body->via.bin.size;
        rc = 0;
      }
      break;
    default:
      break;
    }
  }
  msgpack_unpacked_destroy(&u);
  if (rc)
    memset(out, 0, sizeof *out);
  return rc;
}

size_t lm__svcmsg_encode_req(uint8_t *out, size_t cap,
                             const uint8_t id[SWIM_ID_LEN], uint64_t seq) {
  swim_wbuf_t w;
  swim_wbuf_init(&w, out, cap);
  msgpack_packer pk;
  swim_wbuf_packer(&w, &pk);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_uint8(&pk, LM__SVCMSG_MARK);
  msgpack_pack_uint8(&pk, LM__SVCMSG_REQ);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_bin(&pk, SWIM_ID_LEN);
  msgpack_pack_bin_body(&pk, id, SWIM_ID_LEN);
  msgpack_pack_uint64(&pk, seq);
  return w.overflow ? 0 : w.len;
}

uint8_t *lm__svcmsg_encode_list(const uint8_t *list, size_t len,
                                size_t *out_len) {
  swim_wbuf_t w;
  swim_wbuf_init_dyn(&w);
  msgpack_packer pk;
  swim_wbuf_packer(&w, &pk);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_uint8(&pk, LM__SVCMSG_MARK);
  msgpack_pack_uint8(&pk, LM__SVCMSG_LIST);
  msgpack_pack_bin(&pk, len);
  msgpack_pack_bin_body(&pk, list, len);
  if (w.overflow) {
    free(w.p);
    return NULL;
  }
  *out_len = w.len;
  return w.p;
}
