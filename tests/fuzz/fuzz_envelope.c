/*
 * fuzz_envelope.c: libFuzzer target for the trust layer's decoders: the
 * datagram envelope, the stream frame (with its certificate), and the
 * certificate decoder, fed arbitrary bytes; and the input as a TCP stream
 * of frames, cut by lm_frame_peek as the node's stream reader cuts it. The
 * receiving side knows a real node key and trusts a real cluster key, so
 * the signature and certificate checks run for real rather than stopping
 * at "unknown sender".
 *
 * Besides "no crash, no read past the end" it checks properties: a message
 * that opens once is refused as a replay the second time; a decoded
 * certificate re-encodes to the bytes it came from; any payload sealed from
 * the input opens to the same bytes, and a one-bit change to it does not.
 *
 * Depends on the trust module only. The keys and names below must match
 * gen_envelope_corpus.c, which writes the seed corpus.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trust.h"

#define FUZZ_NOW 1700000000ull
#define CHECK(c)                                                              \
  do {                                                                        \
    if (!(c))                                                                 \
      abort();                                                                \
  } while (0)

typedef struct {
  int ready;
  lm_keypair_t node, cluster_key;
  lm_trust_set_t trust;
  lm_cluster_t plain, enc;
  lm_pair_t pair; /* with the peer (seed 0x22) that seals compact datagrams */
} fuzz_world_t;

static fuzz_world_t world; /* read-only once built, so runs stay independent */

static int lookup_any(void *ud, uint64_t hint, uint8_t pk[LM_PUBLICKEY_LEN]) {
  /* Every hint maps to the node's key, so forged hints reach the signature
   * check instead of stopping early. */
  (void)hint;
  memcpy(pk, ((const fuzz_world_t *)ud)->node.pk, LM_PUBLICKEY_LEN);
  return 0;
}

static const lm_pair_t *pair_any(void *ud, uint32_t hint32, unsigned i) {
  /* every hint maps to the peer, so forged hints reach the MAC check */
  (void)hint32;
  return i == 0 ? &((const fuzz_world_t *)ud)->pair : NULL;
}

static void world_init(void) {
  uint8_t seed[LM_SEED_LEN], secret[LM_SECRET_LEN];
  memset(seed, 0x11, sizeof seed);
  CHECK(lm_keypair_from_seed(&world.node, seed) == 0);
  memset(seed, 0xc1, sizeof seed);
  CHECK(lm_keypair_from_seed(&world.cluster_key, seed) == 0);
  lm_trust_set_init(&world.trust);
  CHECK(lm_trust_set_add(&world.trust, world.cluster_key.pk) == 0);
  lm_keypair_t peer;
  memset(seed, 0x22, sizeof seed);
  CHECK(lm_keypair_from_seed(&peer, seed) == 0);
  CHECK(lm_pair_derive(&world.pair, &world.node, peer.pk) == 0);
  memset(secret, 0x5a, sizeof secret);
  CHECK(lm_cluster_init(&world.plain, "fuzz-cluster", NULL, 0) == 0);
  CHECK(lm_cluster_init(&world.enc, "fuzz-cluster", secret, 0) == 0);
  world.ready = 1;
}

/* An exactly-sized private copy, so ASan sees any read past the end and the
 * in-place decryption never writes into libFuzzer's buffer. */
static uint8_t *dup_input(const uint8_t *data, size_t size) {
  uint8_t *buf = malloc(size ? size : 1);
  CHECK(buf);
  if (size)
    memcpy(buf, data, size);
  else
    buf[0] = 0;
  return buf;
}

/* Opens the input, then the same bytes again through the same receiver,
 * which must call it a replay. */
static void open_twice(const lm_cluster_t *cl, const uint8_t *data,
                       size_t size, int frame) {
  lm_receiver_t rx;
  CHECK(lm_receiver_init(&rx, cl, &world.trust, lookup_any, &world) == 0);
  rx.pair_lookup = pair_any;
  rx.pair_ud = &world;
  for (int round = 0; round < 2; round++) {
    uint8_t *buf = dup_input(data, size);
    lm_env_msg_t msg;
    int rc = frame ? lm_env_open_frame(&msg, buf, size, &rx, FUZZ_NOW)
                   : lm_env_open(&msg, buf, size, &rx);
    if (round == 1) {
      CHECK(rc == LM_TRUST_EREPLAYED);
    } else if (rc == 0) {
      CHECK(msg.payload >= buf && msg.payload_len <= size &&
            (size_t)(msg.payload - buf) <= size - msg.payload_len);
      CHECK(!msg.has_cert || frame);
    } else {
      CHECK(lm_trust_err_index(rc) >= 0);
    }
    free(buf);
    if (rc != 0)
      break;
  }
  lm_receiver_close(&rx);
}

static void cert_props(const uint8_t *data, size_t size) {
  uint8_t *buf = dup_input(data, size);
  lm_cert_t cert;
  int n = lm_cert_decode(&cert, buf, size);
  if (n > 0) {
    CHECK((size_t)n <= size && n >= LM_CERT_MIN && n <= LM_CERT_MAX);
    uint8_t enc[LM_CERT_MAX];
    size_t len = 0;
    CHECK(lm_cert_encode(enc, sizeof enc, &len, &cert) == 0);
    CHECK(len == (size_t)n && memcmp(enc, buf, len) == 0);
    int rc = lm_cert_verify(&world.trust, &cert, FUZZ_NOW);
    CHECK(rc == 0 || lm_trust_err_index(rc) >= 0);
  } else {
    CHECK(n == LM_TRUST_ETRUNCATED || n == LM_TRUST_EVERSION ||
          n == LM_TRUST_EMALFORMED);
  }
  free(buf);
}

/* The input as a TCP byte stream, cut into frames as stream.c cuts it:
 * lm_frame_peek sizes each frame from its prefix before it is read whole,
 * and a frame that fails closes the connection. */
static void stream_frames(const lm_cluster_t *cl, const uint8_t *data,
                          size_t size) {
  lm_receiver_t rx;
  CHECK(lm_receiver_init(&rx, cl, &world.trust, lookup_any, &world) == 0);
  rx.pair_lookup = pair_any;
  rx.pair_ud = &world;
  size_t off = 0;
  while (off < size) {
    size_t want = 0;
    int rc = lm_frame_peek(&want, data + off, size - off);
    if (rc == LM_TRUST_EAGAIN) {
      CHECK(size - off < LM_FRAME_PREFIX_LEN);
      break;
    }
    if (rc) {
      CHECK(rc == LM_TRUST_EOVERSIZE || rc == LM_TRUST_ETRUNCATED);
      break;
    }
    CHECK(want >= LM_FRAME_PREFIX_LEN + LM_ENV_OVERHEAD &&
          want <= LM_FRAME_MAX);
    if (size - off < want)
      break; /* the rest has not arrived */
    uint8_t *buf = dup_input(data + off, want);
    lm_env_msg_t msg;
    rc = lm_env_open_frame(&msg, buf, want, &rx, FUZZ_NOW);
    free(buf);
    if (rc) {
      CHECK(lm_trust_err_index(rc) >= 0);
      break;
    }
    off += want;
  }
  lm_receiver_close(&rx);
}

/* The input as a payload: seal, open, compare; then flip one bit. */
static void seal_props(const lm_cluster_t *cl, const uint8_t *data,
                       size_t size) {
  if (size > SWIM_MTU - LM_ENV_OVERHEAD_ENC)
    return;
  lm_sender_t tx;
  lm_receiver_t rx;
  CHECK(lm_sender_init(&tx, cl, &world.node, 1000) == 0);
  CHECK(lm_receiver_init(&rx, cl, &world.trust, lookup_any, &world) == 0);
  rx.pair_lookup = pair_any;
  rx.pair_ud = &world;
  uint8_t pkt[SWIM_MTU], copy[SWIM_MTU];
  size_t n = 0;
  CHECK(lm_env_seal(pkt, sizeof pkt, &n, data, size, &tx) == 0);
  memcpy(copy, pkt, n);
  lm_env_msg_t msg;
  CHECK(lm_env_open(&msg, copy, n, &rx) == 0);
  CHECK(msg.payload_len == size && (size == 0 || memcmp(msg.payload, data, size) == 0));

  CHECK(lm_env_seal(pkt, sizeof pkt, &n, data, size, &tx) == 0);
  size_t pos = 0;
  for (size_t i = 0; i < size; i++)
    pos = pos * 31 + data[i];
  memcpy(copy, pkt, n);
  copy[pos % n] ^= (uint8_t)(1u << (pos / n % 8));
  CHECK(lm_env_open(&msg, copy, n, &rx) != 0);
  lm_receiver_close(&rx);
  lm_sender_close(&tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!world.ready)
    world_init();
  open_twice(&world.plain, data, size, 0);
  open_twice(&world.enc, data, size, 0);
  open_twice(&world.plain, data, size, 1);
  open_twice(&world.enc, data, size, 1);
  cert_props(data, size);
  stream_frames(&world.plain, data, size);
  stream_frames(&world.enc, data, size);
  /* Sealing costs two signatures per cluster; one input in eight is enough
   * to keep the round trip covered while the decoders get the throughput. */
  if (size % 8 == 0) {
    seal_props(&world.plain, data, size);
    seal_props(&world.enc, data, size);
  }
  return 0;
}
