/*
 * mp_read.h: the bounds-checked msgpack reading cursor of store/ (internal;
 * shared by the service list decoder, svc_codec.c, and the snapshot reader,
 * snapshot.c).
 *
 * Contract:
 *  - A cursor is a view of len bytes at p with a read offset off. No call
 *    ever reads at or past p + len: every length, fixed-width value and
 *    declared byte count is checked against the bytes left (len - off)
 *    before a byte of it is looked at.
 *  - Nothing is allocated and nothing is sized from a declared count: an
 *    array or map header is accepted only when its count is backed by at
 *    least one byte per element still to come (two per map pair), so a
 *    hostile count is only as costly as the bytes that back it.
 *  - Errors are the store's codes (store.h), the ones the decoders return:
 *      LM_STORE_ETRUNC      the input ends before the object does;
 *      LM_STORE_EMALFORMED  a wrong type byte, a value out of range, a
 *                           string with a NUL or shorter than allowed;
 *      LM_STORE_ETOOBIG     a string longer than allowed.
 *    On an error the offset is somewhere inside the failed object and the
 *    cursor must not be read further; the out-parameters may be partly set.
 *  - Returned pointers point into the input; they are valid as long as it.
 */
#ifndef LM_STORE_MP_READ_H
#define LM_STORE_MP_READ_H

#include <stddef.h>
#include <stdint.h>

typedef struct lm__mp_rd {
  const uint8_t *p;
  size_t len, off;
} lm__mp_rd_t;

/* 0 when n more bytes are left, LM_STORE_ETRUNC otherwise. */
int lm__mp_need(const lm__mp_rd_t *r, uint64_t n);

/* Any msgpack integer as a signed 64-bit value (an unsigned one above
 * INT64_MAX is EMALFORMED). */
int lm__mp_int(lm__mp_rd_t *r, int64_t *v);

/* An integer in [lo, hi] (EMALFORMED outside). */
int lm__mp_range(lm__mp_rd_t *r, int64_t lo, int64_t hi, int64_t *v);

/* An unsigned integer of up to 64 bits; a signed form holding a negative
 * value is EMALFORMED. */
int lm__mp_u64(lm__mp_rd_t *r, uint64_t *v);

/* A str (want_str) or bin (!want_str) of any length; the bytes must all be
 * there. *p points at them, *n is their count. */
int lm__mp_bytes(lm__mp_rd_t *r, int want_str, const uint8_t **p, size_t *n);

/* A str of min..max bytes without NUL: longer is ETOOBIG, shorter or with
 * a NUL is EMALFORMED. Not NUL-terminated: *p and *n as lm__mp_bytes. */
int lm__mp_str(lm__mp_rd_t *r, size_t min, size_t max, const char **p,
               size_t *n);

/* A bin of exactly n bytes (another length is EMALFORMED). */
int lm__mp_fixed(lm__mp_rd_t *r, size_t n, const uint8_t **p);

/* An array header; the count must be backed by one byte per element. */
int lm__mp_array(lm__mp_rd_t *r, uint32_t *n);

/* A map header; the count must be backed by two bytes per pair. */
int lm__mp_map(lm__mp_rd_t *r, uint32_t *n);

/* Skips one well-formed object of any type (a later version's extra
 * field); depth is the caller's nesting, and containers nested deeper than
 * LM__MP_SKIP_MAX_DEPTH are EMALFORMED. 0xc1 (never used) is EMALFORMED. */
#define LM__MP_SKIP_MAX_DEPTH 8
int lm__mp_skip(lm__mp_rd_t *r, int depth);

#endif
