/*
 * swim_msg.h: a SWIM message built by hand, header first, then whatever
 * updates the caller appends with the swim_enc_* functions; for the core's
 * tests and the insider tool, which send what an honest core never would.
 */
#ifndef LIVEMESH_TEST_SWIM_MSG_H
#define LIVEMESH_TEST_SWIM_MSG_H

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "swim_proto.h"

typedef struct msg {
  uint8_t buf[4096];
  swim_wbuf_t w;
  msgpack_packer pk;
} msg_t;

/* At most `cap` bytes (no more than the buffer); from8 0 writes nil, the
 * sender named by the transport. */
static inline void msg_begin_cap(msg_t *m, size_t cap, uint8_t type,
                                 uint64_t from8) {
  swim_wbuf_init(&m->w, m->buf, cap < sizeof m->buf ? cap : sizeof m->buf);
  swim_wbuf_packer(&m->w, &m->pk);
  swim_hdr_t h;
  memset(&h, 0, sizeof h);
  h.type = type;
  h.from8 = from8;
  swim_enc_hdr(&m->pk, &h);
}

static inline void msg_begin(msg_t *m, uint8_t type, uint64_t from8) {
  msg_begin_cap(m, sizeof m->buf, type, from8);
}

#endif
