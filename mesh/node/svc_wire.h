/*
 * svc_wire.h: the messages that carry service lists between members, on
 * msgpack. Pure: no I/O, no node, no clock; the decoder never reads past
 * `len` and takes nothing from a message that is not well-formed as a
 * whole. Depends on msgpack-c and swim_proto.h's buffers and skim only.
 *
 * Both travel inside the authenticated envelope, datagram or stream frame,
 * and are told apart from the core's messages by their first element (the
 * core's header starts with its version, 1):
 *
 *   +---------------------------------------------------------------+
 *   | REQ   [83, 1, [[id (bin 32), seq (u64)], ...]]   1..16 items  |
 *   |       "send me the list of member `id` if you hold one at     |
 *   |        least as new as `seq`"                                 |
 *   +---------------------------------------------------------------+
 *   | LIST  [83, 2, list (bin)]                                     |
 *   |       list = body || Ed25519ph signature (64) by the member   |
 *   |       the body names (store/svc_codec.h describes the body)   |
 *   +---------------------------------------------------------------+
 */
#ifndef LIVEMESH_MESH_SVC_WIRE_H
#define LIVEMESH_MESH_SVC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "swim.h"

#define LM__SVCMSG_MARK 83
#define LM__SVCMSG_REQ 1
#define LM__SVCMSG_LIST 2
#define LM__SVCMSG_REQ_MAX 16
#define LM__SVCMSG_SIG_LEN 64

typedef struct lm__svcmsg {
  int kind; /* LM__SVCMSG_REQ or LM__SVCMSG_LIST */
  /* REQ: pointers into the message */
  size_t nreq;
  struct {
    const uint8_t *id; /* SWIM_ID_LEN bytes */
    uint64_t seq;
  } req[LM__SVCMSG_REQ_MAX];
  /* LIST: the signed list, pointing into the message; body_len =
   * list_len - LM__SVCMSG_SIG_LEN (> 0) */
  const uint8_t *list;
  size_t list_len;
} lm__svcmsg_t;

/* 1 when buf looks like a service message (not the core's), else 0. */
int lm__svcmsg_is(const uint8_t *buf, size_t len);
/* 0, or -1 when the message is malformed in any way. */
int lm__svcmsg_decode(lm__svcmsg_t *out, const uint8_t *buf, size_t len);
/* Into `out` (cap bytes): the encoded length, or 0 if it does not fit. */
size_t lm__svcmsg_encode_req(uint8_t *out, size_t cap,
                             const uint8_t id[SWIM_ID_LEN], uint64_t seq);
/* A malloc'ed LIST message around `list` (free() it); NULL when out of
 * memory. */
uint8_t *lm__svcmsg_encode_list(const uint8_t *list, size_t len,
                                size_t *out_len);

#endif
