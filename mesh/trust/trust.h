/*
 * trust.h: the trust layer of the livemesh runtime: node and cluster keys,
 * node certificates, the trust set of cluster keys, the signed (optionally
 * encrypted) envelope around every datagram and stream frame, replay
 * windows, and the record-signing hooks of the swim core.
 *
 * Pure: no sockets, no event loop, no clock. Time arrives as an argument
 * (unix seconds for certificates; wall-clock microseconds once, to seed a
 * sender's counter), every piece of state hangs off an object the caller
 * owns, and nothing is global. Must never depend on libuv, store/, bridge/
 * or the swim core's code (only on swim.h's size constants); libsodium is
 * its one library.
 *
 * Conventions (libsodium's): outputs first, then inputs; 0 on success or a
 * negative LM_TRUST_E* code; every verifying function warns when its result
 * is ignored; secrets are wiped with sodium_memzero() by the *_close() and
 * *_wipe() functions.
 *
 * Formats (see docs/trust.md for the whole story):
 *
 * Node certificate, LM_CERT_MIN..LM_CERT_MAX bytes, integers big-endian:
 *
 *   0     1                 33    34          34+n      42+n      50+n
 *   +-----+-----------------+-----+-----------+---------+---------+
 *   | ver | node public key | n   | name (n)  | not     | expiry  |
 *   | =1  | (32)            |1..64| no NUL    | before  | (u64 s) |
 *   +-----+-----------------+-----+-----------+---------+---------+
 *   | cluster key id (8) = first 8 bytes of the cluster public key |
 *   +--------------------------------------------------------------+
 *   | Ed25519 signature by the cluster key (64) over               |
 *   |   "livemesh-cert-v1\0" || every byte above                   |
 *   +--------------------------------------------------------------+
 *   58+n                                                    122+n
 *
 * Envelope (datagram), LM_ENV_OVERHEAD bytes around the payload, or
 * LM_ENV_OVERHEAD_ENC with encryption:
 *
 *   0        1              5                  13                 21
 *   +--------+--------------+------------------+------------------+
 *   | vvvv   | cluster tag  | sender key hint  | counter (u64)    |
 *   |   ffff | (4)          | (8)              | strictly growing |
 *   +--------+--------------+------------------+------------------+
 *   | stream frames with flag CERT only: cert length (u16), cert   |
 *   +--------------------------------------------------------------+
 *   | payload, or its XChaCha20-Poly1305 ciphertext (flag ENC)     |
 *   +--------------------------------------------------------------+
 *   | flag ENC only: Poly1305 tag (16)                             |
 *   +--------------------------------------------------------------+
 *   | Ed25519 signature by the sender (64) over every byte above   |
 *   +--------------------------------------------------------------+
 *
 *   vvvv  version, 1.        ffff  flags: LM_ENV_F_ENC, _STREAM, _CERT.
 *   tag   first 4 bytes of BLAKE2b("livemesh-cluster-v1\0" || name).
 *   hint  first 8 bytes of the sender's public key.
 *   ENC   nonce = sender public key[0..16) || counter; associated data =
 *         every byte before the ciphertext; the signature covers the
 *         ciphertext, so forgeries are rejected before anything is
 *         decrypted.
 *
 * Stream frame: a u32 length of the envelope that follows, then the
 * envelope with flag STREAM (and CERT when it carries the sender's
 * certificate, so a receiver can admit a node it has never seen). The
 * STREAM flag is signed, so a datagram cannot pass as a frame or back.
 */
#ifndef LIVEMESH_MESH_TRUST_H
#define LIVEMESH_MESH_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "swim.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LM_TRUST_WUR __attribute__((warn_unused_result))
#else
#define LM_TRUST_WUR
#endif

/* ---- errors ------------------------------------------------------------ */

/* One table: the code, its value, a short name for drop counters and
 * metrics, a message for people. Values live in their own range,
 * -1101..-1199, so they never collide with errno or libuv codes, the
 * runtime's LM_E* (-1001..) or the core's SWIM_E* (-1201..), and
 * lm_strerror() names them; they are contiguous from
 * LM_TRUST_ERR_FIRST downwards (new codes go at the end). */
#define LM_TRUST_ERRNO_MAP(X)                                                 \
  X(EINVAL, -1101, "invalid_argument", "invalid argument")                    \
  X(ENOMEM, -1102, "out_of_memory", "out of memory")                          \
  X(ENOSPACE, -1103, "no_space", "output buffer too small")                   \
  X(EIO, -1104, "io_error", "cannot read or write the file")                  \
  X(EKEYFILE, -1105, "bad_key_file", "key or cert file has a wrong size or format") \
  X(EAGAIN, -1106, "need_more", "need more bytes")                            \
  X(ETRUNCATED, -1107, "truncated", "message truncated")                      \
  X(EOVERSIZE, -1108, "oversize", "message too large")                        \
  X(EMALFORMED, -1109, "malformed", "malformed message")                      \
  X(EVERSION, -1110, "bad_version", "unknown envelope or cert version")       \
  X(ECHANNEL, -1111, "wrong_channel", "datagram and stream frame confused")   \
  X(ECLUSTER, -1112, "wrong_cluster", "message from another cluster")         \
  X(EUNKNOWN_SENDER, -1113, "unknown_sender", "unknown sender")               \
  X(EBADSIG, -1114, "bad_signature", "signature rejected")                    \
  X(EREPLAYED, -1115, "replayed", "message replayed")                         \
  X(ESTALE, -1116, "too_old", "counter older than the replay window")         \
  X(EPLAINTEXT, -1117, "plaintext_refused", "unencrypted message refused")    \
  X(ENOSECRET, -1118, "no_secret", "encrypted message but no cluster secret") \
  X(EDECRYPT, -1119, "decrypt_failed", "decryption failed")                   \
  X(ECERT_EXPIRED, -1120, "cert_expired", "certificate expired")              \
  X(ECERT_NOTYET, -1121, "cert_not_yet_valid", "certificate not yet valid")   \
  X(ECERT_UNTRUSTED, -1122, "cert_untrusted", "certificate from an untrusted cluster key") \
  X(ECERT_BADSIG, -1123, "cert_bad_signature", "certificate signature rejected") \
  X(ECERT_MISMATCH, -1124, "cert_mismatch", "certificate is not the sender's") \
  X(ENOTFOUND, -1125, "not_found", "no such key")                             \
  X(EFULL, -1126, "full", "table full")                                       \
  X(EEXHAUSTED, -1127, "counter_exhausted", "message counter exhausted")

#define LM_TRUST_ERR_ENUM(n, v, s, m) LM_TRUST_##n = v,
enum { LM_TRUST_OK = 0, LM_TRUST_ERRNO_MAP(LM_TRUST_ERR_ENUM) };
#undef LM_TRUST_ERR_ENUM

#define LM_TRUST_ERR_FIRST (-1101)
#define LM_TRUST_ERR_COUNT 27

/* A message for people; "unknown error" for codes not in the table. */
const char *lm_trust_strerror(int err);
/* A short snake_case name for counters ("bad_signature"); "ok" for 0. */
const char *lm_trust_err_name(int err);
/* 0 .. LM_TRUST_ERR_COUNT-1 for a code in the table, else -1, so a runtime
 * can keep `uint64_t drops[LM_TRUST_ERR_COUNT]`. */
int lm_trust_err_index(int err);

/* Threads: nothing here is locked. A sender (its counter moves), a receiver
 * (its replay tables) and a replay table belong to one thread at a time;
 * clusters, trust sets and key pairs may be shared read-only. */

/* ---- files -------------------------------------------------------------- */

/* Writes `path` whole or not at all: a temporary file beside it (created
 * 0600, then given `mode`), fsync, rename, fsync of the directory. 0 or a
 * negative errno value. The key files, the agent's data files and the
 * node's snapshot all go through it. */
int lm_file_write_atomic(const char *path, const void *data, size_t len,
                         unsigned mode);

/* ---- keys --------------------------------------------------------------- */

#define LM_PUBLICKEY_LEN 32
#define LM_SECRETKEY_LEN 64
#define LM_SEED_LEN 32
#define LM_SECRET_LEN 32 /* cluster secret for encryption */
#define LM_SIG_LEN 64
#define LM_KEY_HINT_LEN 8
#define LM_KEY_ID_LEN 8
/* Text form of a 32-byte key: unpadded URL-safe base64, 43 characters. */
#define LM_KEY_TEXT_LEN 43

/* An Ed25519 key pair: a node's or a cluster's. */
typedef struct lm_keypair {
  uint8_t pk[LM_PUBLICKEY_LEN];
  uint8_t sk[LM_SECRETKEY_LEN];
} lm_keypair_t;

int lm_keypair_generate(lm_keypair_t *kp);
/* Deterministic, for tests and fixtures. */
int lm_keypair_from_seed(lm_keypair_t *kp, const uint8_t seed[LM_SEED_LEN]);
void lm_keypair_wipe(lm_keypair_t *kp);

/* First 8 bytes of a public key, big-endian: the envelope's sender hint and
 * the swim core's from8 are the same number. */
uint64_t lm_key_hint(const uint8_t pk[LM_PUBLICKEY_LEN]);

/* Text form of any 32-byte key (public key, cluster secret). `out` gets
 * LM_KEY_TEXT_LEN characters and a NUL. */
int lm_key_to_text(char *out, size_t out_cap, const uint8_t key[32]);
/* Accepts exactly the text form, surrounding whitespace ignored. */
int lm_key_from_text(uint8_t key[32], const char *text) LM_TRUST_WUR;

/* Key files: one line, "<label> <base64>[ <base64>]\n", written to a
 * temporary file in the same directory, fsync'ed, then renamed over `path`,
 * so a reader sees the old file or the new one, never half of one.
 *   secret key (mode 0600):     livemesh-secret-key-v1 <seed> <public key>
 *   public key (mode 0644):     livemesh-public-key-v1 <public key>
 *   cluster secret (mode 0600): livemesh-cluster-secret-v1 <secret> <check>
 * The public key in the secret key file and the check (8 bytes of BLAKE2b
 * of the secret) let a load detect a corrupted file: LM_TRUST_EKEYFILE. */
int lm_keypair_save(const char *path, const lm_keypair_t *kp);
int lm_keypair_load(lm_keypair_t *kp, const char *path) LM_TRUST_WUR;
int lm_pubkey_save(const char *path, const uint8_t pk[LM_PUBLICKEY_LEN]);
int lm_pubkey_load(uint8_t pk[LM_PUBLICKEY_LEN], const char *path) LM_TRUST_WUR;
int lm_secret_save(const char *path, const uint8_t secret[LM_SECRET_LEN]);
int lm_secret_load(uint8_t secret[LM_SECRET_LEN], const char *path) LM_TRUST_WUR;

/* ---- certificates ------------------------------------------------------- */

#define LM_CERT_VERSION 1
#define LM_CERT_NAME_MAX SWIM_NAME_MAX /* 64 */
#define LM_CERT_MIN (1 + 32 + 1 + 1 + 8 + 8 + 8 + 64) /* 123 */
#define LM_CERT_MAX (LM_CERT_MIN - 1 + LM_CERT_NAME_MAX) /* 186 */

typedef struct lm_cert {
  uint8_t version;
  uint8_t node_pk[LM_PUBLICKEY_LEN];
  char name[LM_CERT_NAME_MAX + 1]; /* NUL-terminated, 1..64 bytes */
  uint64_t not_before;             /* unix seconds, inclusive */
  uint64_t expiry;                 /* unix seconds, exclusive */
  uint8_t cluster_key_id[LM_KEY_ID_LEN];
  uint8_t sig[LM_SIG_LEN];
} lm_cert_t;

/* Fill and sign a certificate for `node_pk` with the cluster key. */
int lm_cert_issue(lm_cert_t *cert, const uint8_t node_pk[LM_PUBLICKEY_LEN],
                  const char *name, uint64_t not_before, uint64_t expiry,
                  const lm_keypair_t *cluster);
/* *out_len gets the encoded size; LM_TRUST_ENOSPACE if out_cap is short. */
int lm_cert_encode(uint8_t *out, size_t out_cap, size_t *out_len,
                   const lm_cert_t *cert);
/* Returns the bytes consumed (> 0), or LM_TRUST_ETRUNCATED /
 * LM_TRUST_EVERSION / LM_TRUST_EMALFORMED. Reads nothing past `len` and
 * checks no signature (that is lm_cert_verify's job). */
int lm_cert_decode(lm_cert_t *cert, const uint8_t *buf, size_t len) LM_TRUST_WUR;
/* Files hold "livemesh-cert-v1 <base64 of the encoding>\n", mode 0644. */
int lm_cert_save(const char *path, const lm_cert_t *cert);
int lm_cert_load(lm_cert_t *cert, const char *path) LM_TRUST_WUR;

/* ---- trust set ---------------------------------------------------------- */

#define LM_TRUST_SET_MAX 8

/* The cluster public keys whose certificates are accepted. Holding the old
 * and the new key at once is how a cluster key rotates without downtime. */
typedef struct lm_trust_set {
  size_t count;
  uint8_t keys[LM_TRUST_SET_MAX][LM_PUBLICKEY_LEN];
} lm_trust_set_t;

void lm_trust_set_init(lm_trust_set_t *ts);
/* Adding a key already there is a success; LM_TRUST_EFULL past the max. */
int lm_trust_set_add(lm_trust_set_t *ts, const uint8_t pk[LM_PUBLICKEY_LEN]);
/* LM_TRUST_ENOTFOUND if it was not there. */
int lm_trust_set_remove(lm_trust_set_t *ts, const uint8_t pk[LM_PUBLICKEY_LEN]);
int lm_trust_set_contains(const lm_trust_set_t *ts,
                          const uint8_t pk[LM_PUBLICKEY_LEN]);

/* 0, or LM_TRUST_ECERT_UNTRUSTED (no trusted key with that id),
 * LM_TRUST_ECERT_BADSIG, LM_TRUST_ECERT_EXPIRED, LM_TRUST_ECERT_NOTYET,
 * LM_TRUST_EVERSION. The signature is checked before the dates, so a date
 * error is only reported for an authentic certificate. */
int lm_cert_verify(const lm_trust_set_t *ts, const lm_cert_t *cert,
                   uint64_t now_unix) LM_TRUST_WUR;

/* ---- record signing (swim_callbacks_t.sign / .verify) ------------------- */

/* Signs "livemesh-rec-v1\0" || msg, so a record signature can never be
 * taken for an envelope or a certificate signature. */
int lm_rec_sign(uint8_t sig[LM_SIG_LEN], const uint8_t *msg, size_t len,
                const lm_keypair_t *kp);
int lm_rec_verify(const uint8_t sig[LM_SIG_LEN], const uint8_t *msg,
                  size_t len, const uint8_t pk[LM_PUBLICKEY_LEN]) LM_TRUST_WUR;

/* A member's service list, signed by the member (Ed25519ph over
 * "livemesh-svc-v1\0" || list), so relays cannot forge or alter it. */
int lm_svc_sign(uint8_t sig[LM_SIG_LEN], const uint8_t *list, size_t len,
                const lm_keypair_t *kp);
int lm_svc_verify(const uint8_t sig[LM_SIG_LEN], const uint8_t *list,
                  size_t len, const uint8_t pk[LM_PUBLICKEY_LEN]) LM_TRUST_WUR;

/* ---- replay windows ----------------------------------------------------- */

#define LM_REPLAY_WINDOW 128 /* counters below the highest that may still arrive */

/* Per-sender {highest counter, 128-bit window}, keyed by key hint, grown on
 * demand. Entries are only created for messages whose signature held, so
 * forged traffic cannot fill it. */
typedef struct lm_replay lm_replay_t;

int lm_replay_new(lm_replay_t **out, size_t initial_capacity);
void lm_replay_free(lm_replay_t *r);
/* 0 if `counter` is new, LM_TRUST_EREPLAYED if already seen,
 * LM_TRUST_ESTALE if older than the window. Changes nothing. */
int lm_replay_check(const lm_replay_t *r, uint64_t hint,
                    uint64_t counter) LM_TRUST_WUR;
/* Records `counter` as seen (call only after lm_replay_check said 0 and the
 * message was authenticated). LM_TRUST_ENOMEM if the table cannot grow. */
int lm_replay_commit(lm_replay_t *r, uint64_t hint, uint64_t counter);
/* Forget a sender (it left for good); a later message starts afresh. */
void lm_replay_forget(lm_replay_t *r, uint64_t hint);
size_t lm_replay_count(const lm_replay_t *r);

/* ---- envelope ----------------------------------------------------------- */

#define LM_ENV_VERSION 2
#define LM_ENV_F_ENC 0x1    /* payload is XChaCha20-Poly1305 ciphertext */
#define LM_ENV_F_STREAM 0x2 /* a stream frame, not a datagram */
#define LM_ENV_F_CERT 0x4   /* stream frames only: sender's cert follows */
#define LM_ENV_F_MAC 0x8    /* datagrams only: compact header, pairwise MAC */
/* The compact datagram (flag MAC): version/flags, 2 bytes of the cluster
 * tag, 4 of the sender's key, the low 32 bits of its counter, the payload,
 * then a 16-byte MAC under the key the two members share. */
#define LM_ENV_MAC_HDR_LEN 11
#define LM_ENV_MAC_LEN 16
#define LM_ENV_MAC_TAG_LEN 2
#define LM_ENV_MAC_HINT_LEN 4
#define LM_ENV_MAC_OVERHEAD (LM_ENV_MAC_HDR_LEN + LM_ENV_MAC_LEN) /* 27 */
#define LM_ENV_MAC_OVERHEAD_ENC (LM_ENV_MAC_OVERHEAD + 16)        /* 43 */
_Static_assert(LM_ENV_MAC_OVERHEAD == SWIM_WIRE_ENVELOPE,
               "the simulator's per-packet charge must match the envelope");
#define LM_ENV_TAG_LEN 4
#define LM_ENV_HDR_LEN 21   /* version/flags, tag, hint, counter */
#define LM_ENV_AEAD_LEN 16
#define LM_ENV_OVERHEAD (LM_ENV_HDR_LEN + LM_SIG_LEN)           /* 85 */
#define LM_ENV_OVERHEAD_ENC (LM_ENV_OVERHEAD + LM_ENV_AEAD_LEN) /* 101 */
#define LM_FRAME_PREFIX_LEN 4
/* Largest stream frame, length prefix included. */
#define LM_FRAME_MAX                                                          \
  ((size_t)LM_FRAME_PREFIX_LEN + LM_ENV_OVERHEAD_ENC + 2 + LM_CERT_MAX +      \
   SWIM_STREAM_MAX)

/* What both ends of a cluster share. */
typedef struct lm_cluster {
  uint8_t tag[LM_ENV_TAG_LEN];
  uint8_t secret[LM_SECRET_LEN];
  unsigned has_secret : 1;
  unsigned send_plaintext : 1;   /* see LM_CLUSTER_SEND_PLAINTEXT */
  unsigned accept_plaintext : 1; /* see LM_CLUSTER_ACCEPT_PLAINTEXT */
} lm_cluster_t;

/* Rolling encryption out without downtime: first every node gets the secret
 * with both flags (still sends plaintext, already reads ciphertext), then
 * ACCEPT_PLAINTEXT alone (sends ciphertext), then no flags. Without a secret
 * the cluster sends and accepts plaintext only. */
#define LM_CLUSTER_SEND_PLAINTEXT 0x1
#define LM_CLUSTER_ACCEPT_PLAINTEXT 0x2

/* `secret` may be NULL (no encryption). */
int lm_cluster_init(lm_cluster_t *c, const char *name,
                    const uint8_t secret[LM_SECRET_LEN], unsigned flags);
void lm_cluster_close(lm_cluster_t *c);

/* The sending side of one node. */
typedef struct lm_sender {
  const lm_cluster_t *cluster;
  lm_keypair_t kp;
  uint64_t counter; /* the last counter used */
  uint8_t cert[LM_CERT_MAX];
  size_t cert_len; /* 0: no certificate set */
} lm_sender_t;

/* `counter_base`: the wall clock in microseconds since the epoch. Counters
 * then go up by one per message, so they stay dense (the replay window
 * counts messages, not microseconds) and, as long as a node sends fewer
 * than a million messages per second on average, a restarted node starts
 * above everything it sent before. */
int lm_sender_init(lm_sender_t *s, const lm_cluster_t *c,
                   const lm_keypair_t *kp, uint64_t counter_base);
/* The certificate that stream frames sealed "with cert" carry; it must be
 * for this sender's key (LM_TRUST_ECERT_MISMATCH otherwise). */
int lm_sender_set_cert(lm_sender_t *s, const lm_cert_t *cert);
void lm_sender_close(lm_sender_t *s);

/* Keeps the counter at or above the wall clock (microseconds), so that a
 * receiver can rebuild a compact datagram's full counter from its low 32
 * bits and its own clock (clocks within about 30 minutes of each other). */
void lm_sender_clock(lm_sender_t *s, uint64_t now_us);

/* The keys two members share: crypto_kx over the X25519 forms of their
 * Ed25519 keys (the member with the smaller key is the "client"), so each
 * direction has its own 32-byte key and nobody else can compute either. */
typedef struct lm_pair {
  uint8_t pk[LM_PUBLICKEY_LEN]; /* the peer */
  uint8_t tx[32];               /* MACs what we send it */
  uint8_t rx[32];               /* MACs what it sends us */
} lm_pair_t;
int lm_pair_derive(lm_pair_t *p, const lm_keypair_t *me,
                   const uint8_t peer_pk[LM_PUBLICKEY_LEN]) LM_TRUST_WUR;
/* The same with this node's X25519 keys computed once (lm_pair_self) and
 * the peer's X25519 key given (lm_pair_peer_x): one scalar multiplication
 * per pair instead of three. */
typedef struct lm_pair_self {
  uint8_t pk[LM_PUBLICKEY_LEN];
  uint8_t x_sk[32], x_pk[32];
} lm_pair_self_t;
int lm_pair_self_init(lm_pair_self_t *s, const lm_keypair_t *me) LM_TRUST_WUR;
int lm_pair_peer_x(uint8_t x_pk[32],
                   const uint8_t peer_pk[LM_PUBLICKEY_LEN]) LM_TRUST_WUR;
int lm_pair_derive_x(lm_pair_t *p, const lm_pair_self_t *me,
                     const uint8_t peer_pk[LM_PUBLICKEY_LEN],
                     const uint8_t peer_x[32]) LM_TRUST_WUR;

/* A compact datagram to the peer of `pair` (LM_TRUST_EOVERSIZE beyond
 * SWIM_MTU), authenticated with the pairwise MAC instead of a signature. */
int lm_env_seal_mac(uint8_t *out, size_t out_cap, size_t *out_len,
                    const uint8_t *payload, size_t len, lm_sender_t *s,
                    const lm_pair_t *pair);

/* Bytes a datagram adds to its payload with this sender's settings. */
size_t lm_env_overhead(const lm_sender_t *s);

/* A datagram: at most SWIM_MTU bytes in all (LM_TRUST_EOVERSIZE beyond).
 * `out` must not overlap `payload`. */
int lm_env_seal(uint8_t *out, size_t out_cap, size_t *out_len,
                const uint8_t *payload, size_t len, lm_sender_t *s);
/* A stream frame, length prefix included, ready to write; with_cert != 0
 * adds the sender's certificate (LM_TRUST_EINVAL if none is set). Payload
 * at most SWIM_STREAM_MAX. */
int lm_env_seal_frame(uint8_t *out, size_t out_cap, size_t *out_len,
                      const uint8_t *payload, size_t len, lm_sender_t *s,
                      int with_cert);

/* Finds a sender's public key from its hint; 0 if found. */
typedef int (*lm_key_lookup_cb)(void *ud, uint64_t hint,
                                uint8_t pk[LM_PUBLICKEY_LEN]);
/* Compact datagrams: the i-th (0, 1, ...) pair whose peer key starts with
 * the 4 bytes `hint32` (big-endian); NULL past the last. */
typedef const lm_pair_t *(*lm_pair_lookup_cb)(void *ud, uint32_t hint32,
                                              unsigned i);

/* The receiving side of one node. Two replay tables, one per channel: both
 * share the sender's counter sequence, but a stream frame may arrive long
 * after datagrams sealed later, and the signed STREAM flag already keeps the
 * channels apart. */
typedef struct lm_receiver {
  const lm_cluster_t *cluster;
  const lm_trust_set_t *trust; /* NULL: frames carrying a cert are refused */
  lm_key_lookup_cb lookup;     /* NULL: only cert-carrying frames pass */
  void *lookup_ud;
  lm_replay_t *replay_dgram;
  lm_replay_t *replay_stream;
  lm_pair_lookup_cb pair_lookup; /* NULL: compact datagrams are refused */
  void *pair_ud;
  uint64_t now_us; /* the receiver's clock, for compact counters; 0: none */
} lm_receiver_t;

int lm_receiver_init(lm_receiver_t *rx, const lm_cluster_t *c,
                     const lm_trust_set_t *trust, lm_key_lookup_cb lookup,
                     void *lookup_ud);
void lm_receiver_close(lm_receiver_t *rx);
/* Drop a sender's replay state on both channels. */
void lm_receiver_forget(lm_receiver_t *rx, uint64_t hint);

/* An opened message. `payload` points into the buffer given to open. */
typedef struct lm_env_msg {
  const uint8_t *payload;
  size_t payload_len;
  uint64_t hint;
  uint8_t sender_pk[LM_PUBLICKEY_LEN];
  uint64_t counter;
  int encrypted;
  int has_cert; /* stream frames: `cert` verified against the trust set */
  lm_cert_t cert;
} lm_env_msg_t;

/* Checks, in this order, size, version and flags, cluster tag, encryption
 * policy, sender key (lookup callback, or the frame's certificate), the
 * signature, the replay window, then decrypts in place and only then
 * records the counter: a message that fails anywhere leaves the window as
 * it was. Each failure has its own code. On error the bytes of `buf` are
 * unspecified (a failed decryption wipes the ciphertext). */
int lm_env_open(lm_env_msg_t *msg, uint8_t *buf, size_t len,
                lm_receiver_t *rx) LM_TRUST_WUR;
/* A whole stream frame as lm_env_seal_frame wrote it, prefix included;
 * `now_unix` dates the certificate the frame may carry. */
int lm_env_open_frame(lm_env_msg_t *msg, uint8_t *buf, size_t len,
                      lm_receiver_t *rx, uint64_t now_unix) LM_TRUST_WUR;
/* For a stream reader: once `len` >= LM_FRAME_PREFIX_LEN, *frame_len gets
 * the size of the whole frame to read. LM_TRUST_EAGAIN before that;
 * LM_TRUST_EOVERSIZE / LM_TRUST_ETRUNCATED for a length no frame can have
 * (close the connection). */
int lm_frame_peek(size_t *frame_len, const uint8_t *buf,
                  size_t len) LM_TRUST_WUR;

#ifdef __cplusplus
}
#endif
#endif
