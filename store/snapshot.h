/*
 * snapshot.h: the last-known view of a node on disk, on msgpack.
 *
 * A node writes its view (members and their service lists) to a file so
 * that after a restart, until the mesh has reconverged, it can answer from
 * what it last knew, marked stale. This module encodes and decodes that
 * file; the runtime (mesh/node/snapshot.c) reads and writes it, computes
 * and checks the per-member seal and verifies every signature.
 *
 * Pure like the rest of store/: libc and msgpack-c only; never libuv,
 * libsodium, mesh/ or bridge/. Nothing here trusts anything: the decoder
 * only says that the bytes are well formed.
 *
 *   +------------------------------------------------------------------+
 *   | file   [ "livemesh-snapshot" (magic, str),                       |
 *   |          1           (version)                                   |
 *   |          cluster     str 1..64  (the cluster's name)             |
 *   |          writer      bin 32     (the writing node's id)          |
 *   |          written_ms  int        (unix ms the view dates from)    |
 *   |          [member, member, ...]  (<= LM_SNAP_MEMBERS_MAX) ]       |
 *   +------------------------------------------------------------------+
 *   | member [ 0 id        bin 32     \                                |
 *   |          1 name      str 1..64   |                               |
 *   |          2 addr      str 0..63   | "obs": what the writer        |
 *   |          3 status    uint 0..3   | observed, sealed by it        |
 *   |          4 gen       uint u32    |                               |
 *   |          5 ver       uint u32    |                               |
 *   |          6 since_ms  int        /                                |
 *   |          7 cert      bin 0..LM_SNAP_CERT_MAX  (signed by a       |
 *   |                      cluster key: binds id and name)             |
 *   |          8 services  nil | [raw (bin), body_len (uint)]          |
 *   |                      (the list exactly as held: svc_codec.h's    |
 *   |                       body, then its author's signature)         |
 *   |          9 seal      bin LM_SNAP_SEAL_LEN ]                      |
 *   +------------------------------------------------------------------+
 *
 *   head   the bytes of the file from its start up to (not including) the
 *          members' array header: magic, version, cluster, writer,
 *          written_ms.
 *   obs    the bytes of a member from its own array header through
 *          since_ms.
 *   seal   the writer's MAC over head || obs (the runtime's keyed BLAKE2b
 *          under a key derived from the writer's secret key), so the
 *          writer's own observations (status, name, address, times), which
 *          nobody else signs, cannot be edited on disk or moved between
 *          files. The certificate and the service list carry their own
 *          signatures and are checked as such.
 *
 * A snapshot of another cluster or another node is foreign: refused as a
 * whole. The decoder checks every length before it reads, allocates
 * nothing, never reads past `len`, refuses trailing bytes, and validates
 * the whole file (every member, every service list's form) before the
 * caller sees the first member.
 */
#ifndef LIVEMESH_SNAPSHOT_H
#define LIVEMESH_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LM_SNAP_MAGIC "livemesh-snapshot"
#define LM_SNAP_VERSION 1
#define LM_SNAP_ID_LEN 32
#define LM_SNAP_CLUSTER_MAX 64
#define LM_SNAP_CERT_MAX 512
#define LM_SNAP_SEAL_LEN 32
#define LM_SNAP_MEMBERS_MAX 65536
/* A reader refuses larger files before reading them. */
#define LM_SNAP_FILE_MAX ((size_t)256 * 1024 * 1024)

/* A message for a snapshot error: the codec's codes worded for a file
 * ("truncated snapshot", "not a livemesh snapshot", ...). */
const char *lm_snap_strerror(int err);

typedef struct lm_snap_hdr {
  char cluster[LM_SNAP_CLUSTER_MAX + 1];
  uint8_t writer[LM_SNAP_ID_LEN];
  int64_t written_ms;
  size_t nmembers;
  const uint8_t *head; /* sealed with every member */
  size_t head_len;
} lm_snap_hdr_t;

/* One member. As input of lm_snap_writer_member the fields above the line
 * are read; the decoder fills every field, with pointers into its input. */
typedef struct lm_snap_member {
  uint8_t id[LM_SNAP_ID_LEN];
  char name[LM_STORE_NAME_MAX + 1];
  char addr[LM_STORE_ADDR_MAX + 1];
  int status; /* LM_STORE_ALIVE .. LM_STORE_LEFT */
  uint32_t gen, ver;
  int64_t since_ms;
  const uint8_t *cert;
  size_t cert_len;
  const uint8_t *svc_raw; /* NULL: no list held */
  size_t svc_raw_len, svc_body_len;
  /* ---- decoder only ---- */
  const uint8_t *obs;
  size_t obs_len;
  const uint8_t *seal; /* LM_SNAP_SEAL_LEN bytes */
} lm_snap_member_t;

/* ---- writing ---- */

/* Computes a member's seal over head || obs (the writer's MAC). */
typedef void (*lm_snap_seal_cb)(void *ud, uint8_t seal[LM_SNAP_SEAL_LEN],
                                const uint8_t *head, size_t head_len,
                                const uint8_t *obs, size_t obs_len);

typedef struct lm_snap_writer lm_snap_writer_t;

/* Starts a snapshot of exactly `nmembers` members. 0, EINVAL, ENOMEM. */
int lm_snap_writer_new(lm_snap_writer_t **out, const char *cluster,
                       const uint8_t writer[LM_SNAP_ID_LEN],
                       int64_t written_ms, size_t nmembers);
/* Appends a member (checked as the decoder would: lengths, status, the
 * service list's form and id). 0, EINVAL (nothing appended), ENOMEM. */
int lm_snap_writer_member(lm_snap_writer_t *w, const lm_snap_member_t *m,
                          lm_snap_seal_cb seal, void *ud);
/* Hands over the bytes (*out, free() it) once every member was appended;
 * EINVAL otherwise. Frees the writer either way. */
int lm_snap_writer_finish(lm_snap_writer_t *w, uint8_t **out, size_t *len);
void lm_snap_writer_free(lm_snap_writer_t *w);

/* ---- reading ---- */

typedef struct lm_snap_reader {
  const uint8_t *buf;
  size_t len, off, left;
  lm_snap_hdr_t hdr;
} lm_snap_reader_t;

/* Validates the whole snapshot in buf[0..len) and fills r->hdr. With
 * `cluster` and/or `writer` given, a snapshot of another cluster or
 * another node is refused (LM_STORE_EFOREIGN). 0, or LM_STORE_ENOTSNAP
 * (no magic), LM_STORE_EVERSION, LM_STORE_ETRUNC, LM_STORE_EMALFORMED,
 * LM_STORE_ETOOBIG, LM_STORE_EFOREIGN. */
int lm_snap_open(lm_snap_reader_t *r, const uint8_t *buf, size_t len,
                 const char *cluster, const uint8_t *writer)
    __attribute__((warn_unused_result));
/* The next member: 1 and *m filled, 0 at the end. Only after a
 * successful lm_snap_open. */
int lm_snap_next(lm_snap_reader_t *r, lm_snap_member_t *m);

#ifdef __cplusplus
}
#endif
#endif
