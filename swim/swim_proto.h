/*
 * swim_proto.h: the wire codec of the SWIM core, on msgpack-c.
 *
 * Pure: no I/O, no allocation beyond the caller's msgpack zone. Decoders check
 * every length before reading, never read past `len`, and reject malformed
 * input as a whole (the caller then changes no state). Must never depend on
 * libuv, libsodium or anything outside swim/.
 *
 * A message is a sequence of msgpack objects, one header then updates, with
 * no outer array, so every update's exact bytes can be relayed verbatim:
 *
 *   +-------------------------------------------------------------------+
 *   | header  [ver=2, type, from8, seq, target8, flags, (taddr)]        |
 *   +-------------------------------------------------------------------+
 *   | update  [0 ALIVE,   id(bin32), name(str), addr(bin6|18),          |
 *   |          gen, ver, meta(bin), sig(bin64|nil)]                     |
 *   | update  [1 SUSPECT, id8, gen, ver, from8]                         |
 *   | update  [2 DEAD,    id8, gen, ver, from8]                         |
 *   | update  [3 LEFT,    id8, gen, ver, sig(bin64|nil)]                |
 *   | update  [4 DIGEST,  id8, status, gen, ver]      (anti-entropy)    |
 *   | update  [5 VIEW,    hash]                (whole-view checksum)    |
 *   | update  [6 CRED,    id(bin32), cred(bin)]  (a member's certificate, |
 *   |          ahead of its ALIVE; push-pull and certificate answers)   |
 *   | update  [7 RENEW,   id8, gen, ver, body, sig(bin64|nil)]          |
 *   |          (an ALIVE whose id, name, addr and meta the receiver     |
 *   |          already holds: gossip of a refutation)                   |
 *   | ...                                                               |
 *   +-------------------------------------------------------------------+
 *
 *   ver     protocol version; anything but SWIM_PROTO_VERSION is refused.
 *   type    PING, ACK, PING_REQ, NACK, PUSHPULL, GOSSIP (swim_msg_type_t).
 *   from8   the first 8 bytes of the sender's id, big-endian, or nil when
 *           the transport names the sender (the runtime's envelope
 *           authenticates it; swim_recv_from() passes it in).
 *   seq     probe sequence number (u32); 0 when unused.
 *   target8 PING: the top 32 bits of the id8 of whom the ping is for (0:
 *           whoever is there); PING_REQ: the id8 of whom to probe; else 0.
 *   flags   PUSHPULL: bit 0 = this is a reply, bit 1 = join. PING: bit 2 =
 *           sent over the stream (its ack goes back over the stream); the
 *           pinger's ALIVE follows the header.
 *   taddr   PING_REQ only: the target's address (bin 6 or 18).
 *   id8     first 8 bytes of a member id, big-endian.
 *   sig     ALIVE: the member's signature over the record's bytes from its
 *           first element through `meta` (the array header byte 0x98 and
 *           the sig element excluded). LEFT: over [3, id8, gen, ver] the same
 *           way. nil when the cluster runs unsigned.
 *   addr    4 or 16 address bytes then the port, big-endian.
 *   body    RENEW: swim_body_hash() of the record's id, name, addr and
 *           meta (u32). A receiver holding a record of the member with
 *           the same body hash rebuilds the full ALIVE from it (same
 *           bytes, so the same signature) and handles that; one holding
 *           none, or another body, drops it as `record_unmatched` and
 *           asks the sender for the full record.
 *   hash    low 16 bits of the XOR over members of a 64-bit mix of (id8,
 *           gen, ver, alive-or-suspect / dead / left): equal views give
 *           equal hashes.
 *
 * Datagrams are at most SWIM_MAX_PAYLOAD bytes so that the runtime's envelope
 * and 64-byte signature still fit in SWIM_MTU (1400). Push-pull frames go
 * over the stream and may be up to SWIM_STREAM_MAX.
 */
#ifndef LIVEMESH_SWIM_PROTO_H
#define LIVEMESH_SWIM_PROTO_H

#include <msgpack.h>
#include <stdint.h>

#include "swim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SWIM_PROTO_VERSION 3
#define SWIM_PP_REPLY 0x1
#define SWIM_PP_JOIN 0x2
/* PING over the stream (a probe's fallback, memberlist's TCP ping): the
 * pinger's own alive record follows, and the ack goes back over the
 * stream to the pinger's advertised address. */
#define SWIM_PING_STREAM 0x4

typedef enum swim_msg_type {
  SWIM_MSG_PING = 1,
  SWIM_MSG_ACK = 2,
  SWIM_MSG_PING_REQ = 3,
  SWIM_MSG_NACK = 4,
  SWIM_MSG_PUSHPULL = 5,
  SWIM_MSG_GOSSIP = 6 /* updates only, no reply */
} swim_msg_type_t;

typedef enum swim_upd_kind {
  SWIM_UPD_ALIVE = 0,
  SWIM_UPD_SUSPECT = 1,
  SWIM_UPD_DEAD = 2,
  SWIM_UPD_LEFT = 3,
  SWIM_UPD_DIGEST = 4,
  SWIM_UPD_VIEW = 5,
  SWIM_UPD_CRED = 6, /* push-pull only: a member's credential (certificate) */
  SWIM_UPD_RENEW = 7 /* an ALIVE without the parts the receiver holds */
} swim_upd_kind_t;

typedef struct swim_hdr {
  uint8_t type;
  uint8_t flags;
  uint64_t from8;
  uint32_t seq;
  uint64_t target8;
  swim_addr_t taddr; /* PING_REQ */
} swim_hdr_t;

/* A decoded update. Pointers point into the decoded buffer. */
typedef struct swim_upd {
  uint8_t kind;
  uint8_t status; /* DIGEST */
  uint64_t id8;
  swim_inc_t inc;
  uint64_t from8;            /* SUSPECT, DEAD */
  uint64_t view;             /* VIEW */
  uint32_t body;             /* RENEW */
  const uint8_t *raw;        /* the update's own bytes, to relay verbatim */
  size_t raw_len;
  const uint8_t *signed_ptr; /* ALIVE, LEFT: the bytes the signature covers */
  size_t signed_len;
  const uint8_t *sig; /* NULL when unsigned */
  /* ALIVE only */
  const uint8_t *id;
  const char *name; /* not NUL-terminated */
  size_t name_len;
  swim_addr_t addr;
  const uint8_t *meta;
  size_t meta_len;
} swim_upd_t;

/* Read id8 from a full id. */
uint64_t swim_id8(const uint8_t id[SWIM_ID_LEN]);

/* FNV-1a over n bytes, continuing from h (SWIM_FNV_SEED to start). Internal
 * to swim/: record interning and body hashes. */
#define SWIM_FNV_SEED 2166136261u
uint32_t swim__fnv1a(uint32_t h, const void *p, size_t n);

/* Hash of an alive record's body: everything it signs but its kind, gen
 * and ver. Not a security measure (the signature is): it tells a receiver
 * whether the record it holds is the base a RENEW was cut from. */
uint32_t swim_body_hash(const uint8_t id[SWIM_ID_LEN], const char *name,
                        size_t name_len, const swim_addr_t *addr,
                        const uint8_t *meta, size_t meta_len);

/* ---- encoding: into a caller's buffer, never past its capacity ---- */

typedef struct swim_wbuf {
  uint8_t *p;
  size_t len, cap;
  int overflow; /* set when a write did not fit; the buffer is then useless */
  int growable; /* realloc up to SWIM_STREAM_MAX instead of overflowing */
} swim_wbuf_t;

void swim_wbuf_init(swim_wbuf_t *w, uint8_t *p, size_t cap);
void swim_wbuf_init_dyn(swim_wbuf_t *w); /* heap, grows; free w->p */
void swim_wbuf_packer(swim_wbuf_t *w, msgpack_packer *pk);

void swim_enc_hdr(msgpack_packer *pk, const swim_hdr_t *h);
/* Writes the alive record without its signature element; sign
 * [signed_from, w->len) then call swim_enc_sig (NULL for nil). */
void swim_enc_alive_body(msgpack_packer *pk, const uint8_t id[SWIM_ID_LEN],
                         const char *name, const swim_addr_t *addr,
                         swim_inc_t inc, const uint8_t *meta, size_t meta_len,
                         size_t *signed_from);
void swim_enc_left_body(msgpack_packer *pk, uint64_t id8, swim_inc_t inc,
                        size_t *signed_from);
void swim_enc_sig(msgpack_packer *pk, const uint8_t *sig);
void swim_enc_accuse(msgpack_packer *pk, uint8_t kind, uint64_t id8,
                     swim_inc_t inc, uint64_t from8);
/* [7, id8, gen, ver, body, sig]: see RENEW above. */
void swim_enc_renew(msgpack_packer *pk, uint64_t id8, swim_inc_t inc,
                    uint32_t body, const uint8_t *sig);
void swim_enc_digest(msgpack_packer *pk, uint64_t id8, uint8_t status,
                     swim_inc_t inc);
void swim_enc_view(msgpack_packer *pk, uint64_t hash);
/* [6, id(bin32), cred(bin)]: the credential (the runtime's certificate) of
 * member `id`, sent once per member in push-pull frames, never gossiped. */
void swim_enc_cred(msgpack_packer *pk, const uint8_t id[SWIM_ID_LEN],
                   const uint8_t *cred, size_t len);

/* ---- decoding ---- */

/* Decode one header at buf[*off]. Returns 0 and advances *off, or a negative
 * SWIM_E* code. `zone` is scratch; the caller clears it. */
int swim_dec_hdr(const uint8_t *buf, size_t len, size_t *off,
                 msgpack_zone *zone, swim_hdr_t *h);
/* Decode the next update. Returns 1 and advances *off, 0 at the end of the
 * buffer, or a negative SWIM_E* code. */
int swim_dec_upd(const uint8_t *buf, size_t len, size_t *off,
                 msgpack_zone *zone, swim_upd_t *u);

/* Checks that buf holds a sequence of well-formed msgpack objects whose
 * container counts fit the bytes left, with bounded nesting. msgpack-c
 * sizes its arrays from the declared count before it has seen the elements,
 * so everything is skimmed with this first. 0 or a negative SWIM_E* code. */
int swim_skim(const uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
