/*
 * svc_codec.h: the signed service list of one member, on msgpack.
 *
 * A member's services travel as one list that its own node signs and every
 * other member relays verbatim; a newer `seq` replaces the whole list. This
 * module encodes that list, decodes it, and validates single services as
 * they are registered. Pure: libc and msgpack-c only; never libuv,
 * libsodium, mesh/ or bridge/. The signature is not part of the list: the
 * runtime appends it after the list's bytes and checks it.
 *
 *   +------------------------------------------------------------------+
 *   | list    [1 (version), id (bin 32), gen (u32), seq (u64),         |
 *   |          signed_ms (u64), [service, service, ...]]               |
 *   +------------------------------------------------------------------+
 *   | service [ 0 uuid      bin 16                                     |
 *   |           1 type      str 1..64                                  |
 *   |           2 name      str 0..64                                  |
 *   |           3 region    str 0..64                                  |
 *   |           4 worker    int  -1..INT32_MAX   (-1: not given)       |
 *   |           5 pid       int   0..INT32_MAX   ( 0: not given)       |
 *   |           6 port      uint  0..65535                             |
 *   |           7 created_ms int  (unix ms)                            |
 *   |           8 status    uint  0 up, 1 down, 2 maintenance          |
 *   |           9 since_ms  int  (unix ms of the last status change)   |
 *   |          10 cause     str 0..32                                  |
 *   |          11 note      str 0..256                                 |
 *   |          12 maint_until_ms int (0: never)                        |
 *   |          13 tags      [str 1..64, ...]              (<= 16)      |
 *   |          14 meta      {str 1..64: str 0..256, ...}  (<= 32 keys) |
 *   |          15 checks    [[kind 1..5, status 0..1, output str       |
 *   |                         0..LM_CHECK_OUTPUT_WIRE_MAX], ...] (<= 4)|
 *   |          (16.. later fields: skipped by this version) ]          |
 *   +------------------------------------------------------------------+
 *
 *   id         the member's public key: the list is only accepted for it.
 *   gen        the member's generation when it signed the list.
 *   seq        grows with every new list of this member, across restarts
 *              (a list whose seq is not newer than the one held is stale).
 *   signed_ms  when the member signed it: how fresh its statuses are.
 *   host       is not in the record: it is the member's name.
 *
 * Strings hold no NUL byte; at most LM_SVC_PER_NODE_MAX services, no uuid
 * twice, no meta key twice. The decoder reads the bytes with a cursor that
 * checks every length against what is left before it looks at it, builds
 * nothing from a declared count (so a hostile count costs nothing: there is
 * no msgpack-c unpacker and so no skim step), never reads past `len`, and
 * refuses the list as a whole; the caller changes no state until a list has
 * decoded completely.
 */
#ifndef LIVEMESH_SVC_CODEC_H
#define LIVEMESH_SVC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <livemesh/service.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LM_SVCLIST_VERSION 1
#define LM_SVCLIST_ID_LEN 32
#define LM_SVC_FIELDS 16 /* elements of a service in this version */

/* The header of a list, as lm_svclist_check reports it. */
typedef struct lm_svclist_hdr {
  uint8_t id[LM_SVCLIST_ID_LEN];
  uint32_t gen;
  uint64_t seq;
  int64_t signed_ms;
  size_t n; /* services */
} lm_svclist_hdr_t;

/* A decoded list: one heap block holding this struct, the services, their
 * string, tag, meta and check arrays. Every string is NUL-terminated;
 * `host` of each service is NULL (the caller knows the member). */
typedef struct lm_svclist {
  lm_svclist_hdr_t hdr;
  lm_service_t *svcs; /* hdr.n of them */
} lm_svclist_t;

/* Encodes a list into a malloc'ed buffer (*out, free() it). Every service
 * must pass lm_service_validate and no uuid may repeat; check outputs are
 * cut to LM_CHECK_OUTPUT_WIRE_MAX bytes (a byte boundary, not a UTF-8 one).
 * `host` is ignored. 0, LM_STORE_EINVAL (a bad service or argument; nothing
 * is allocated), LM_STORE_EDUPUUID or LM_STORE_ENOMEM. */
int lm_svclist_encode(uint8_t **out, size_t *out_len,
                      const uint8_t id[LM_SVCLIST_ID_LEN], uint32_t gen,
                      uint64_t seq, int64_t signed_ms,
                      const lm_service_t *svcs, size_t n);

/* Validates a whole list of exactly `len` bytes (trailing bytes are an
 * error) without allocating; fills *hdr when it is valid. 0 or a negative
 * LM_STORE_E* code: ETRUNC (ran out of bytes), EMALFORMED (wrong types,
 * values out of range, NUL in a string), EVERSION, ETOOBIG (a limit of
 * service.h exceeded), EDUPUUID. */
int lm_svclist_check(lm_svclist_hdr_t *hdr, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

/* Validates like lm_svclist_check, then builds the decoded list in one
 * allocation. *out is NULL on error. Free with lm_svclist_free. */
int lm_svclist_decode(lm_svclist_t **out, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));
void lm_svclist_free(lm_svclist_t *list);

/* Checks one service as a registration would give it (before it is ever
 * encoded): type required, every limit of service.h, statuses and check
 * kinds in range, no repeated meta key. `host` is not checked. Check output
 * may be up to LM_CHECK_OUTPUT_MAX (it is cut on the wire). Returns 0, or
 * LM_STORE_EINVAL with a message naming the field in err ("type: required",
 * "tags: more than 16", "meta: key longer than 64 bytes", ...); err may be
 * NULL. */
int lm_service_validate(const lm_service_t *s, char *err, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
