/*
 * gen_envelope_corpus.c: writes the seed corpus of fuzz_envelope into the
 * directory named on the command line: valid datagrams (plain and
 * encrypted), stream frames with and without a certificate, a bare
 * certificate, a stream of frames, and a few broken ones. Ed25519 signing is deterministic and
 * the keys come from fixed seeds, so the output is byte-for-byte the same on
 * every run; the files are committed, this program only regenerates them.
 *
 * Depends on the trust module only. Keys, names, secret and dates must match
 * fuzz_envelope.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "trust.h"

static const char *outdir;

static int put(const char *name, const uint8_t *buf, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", outdir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "gen_envelope_corpus: cannot write %s\n", path);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  outdir = argv[1];
  uint8_t seed[LM_SEED_LEN], secret[LM_SECRET_LEN];
  lm_keypair_t node, ck;
  memset(seed, 0x11, sizeof seed);
  lm_keypair_from_seed(&node, seed);
  memset(seed, 0xc1, sizeof seed);
  lm_keypair_from_seed(&ck, seed);
  memset(secret, 0x5a, sizeof secret);
  lm_cluster_t plain, enc;
  if (lm_cluster_init(&plain, "fuzz-cluster", NULL, 0) != 0 ||
      lm_cluster_init(&enc, "fuzz-cluster", secret, 0) != 0)
    return 1;
  lm_cert_t cert;
  if (lm_cert_issue(&cert, node.pk, "fuzz-node-1", 1600000000ull,
                    2000000000ull, &ck) != 0)
    return 1;

  /* Payload shaped like a swim header, so mutations explore nearby bytes. */
  static const uint8_t ping[] = {0x01, 0x01, 0xcf, 1, 2, 3, 4, 5, 6, 7, 8,
                                 0x2a, 0x00, 0x00};
  uint8_t out[2048], cbuf[LM_CERT_MAX];
  size_t n = 0;
  int rc = 0;
  lm_sender_t tx, etx;
  lm_sender_init(&tx, &plain, &node, 1000);
  lm_sender_init(&etx, &enc, &node, 1000);
  lm_sender_set_cert(&tx, &cert);
  lm_sender_set_cert(&etx, &cert);

  rc |= lm_env_seal(out, sizeof out, &n, ping, sizeof ping, &tx);
  rc |= put("dgram_plain", out, n);
  rc |= put("dgram_truncated", out, 30);
  rc |= lm_env_seal(out, sizeof out, &n, NULL, 0, &tx);
  rc |= put("dgram_empty", out, n);
  rc |= lm_env_seal(out, sizeof out, &n, ping, sizeof ping, &etx);
  rc |= put("dgram_enc", out, n);
  rc |= lm_env_seal_frame(out, sizeof out, &n, ping, sizeof ping, &tx, 1);
  rc |= put("frame_cert_plain", out, n);
  rc |= lm_env_seal_frame(out, sizeof out, &n, ping, sizeof ping, &etx, 1);
  rc |= put("frame_cert_enc", out, n);
  rc |= lm_env_seal_frame(out, sizeof out, &n, ping, sizeof ping, &tx, 0);
  rc |= put("frame_plain", out, n);
  rc |= lm_cert_encode(cbuf, sizeof cbuf, &n, &cert);
  rc |= put("cert", cbuf, n);
  {
    /* compact datagrams from the peer (seed 0x22) under the pairwise key */
    lm_keypair_t peer;
    lm_pair_t pr;
    lm_sender_t ptx, petx;
    memset(seed, 0x22, sizeof seed);
    lm_keypair_from_seed(&peer, seed);
    rc |= lm_pair_derive(&pr, &peer, node.pk);
    lm_sender_init(&ptx, &plain, &peer, 1000);
    lm_sender_init(&petx, &enc, &peer, 1000);
    rc |= lm_env_seal_mac(out, sizeof out, &n, ping, sizeof ping, &ptx, &pr);
    rc |= put("dgram_mac", out, n);
    rc |= lm_env_seal_mac(out, sizeof out, &n, ping, sizeof ping, &petx, &pr);
    rc |= put("dgram_mac_enc", out, n);
    lm_sender_close(&ptx);
    lm_sender_close(&petx);
    lm_keypair_wipe(&peer);
  }
  static const uint8_t junk[] = {0x20};
  rc |= put("one_byte", junk, sizeof junk);
  /* A TCP stream as stream.c reads it: two frames back to back, then the
   * same with the first bytes of a third. Sealed last, so the seeds above
   * keep their counters and bytes. */
  size_t n1 = 0, n2 = 0;
  rc |= lm_env_seal_frame(out, sizeof out, &n1, ping, sizeof ping, &tx, 1);
  rc |= lm_env_seal_frame(out + n1, sizeof out - n1, &n2, ping, sizeof ping,
                          &tx, 0);
  rc |= put("stream_two_frames", out, n1 + n2);
  memcpy(out + n1 + n2, out, 10);
  rc |= put("stream_partial_third", out, n1 + n2 + 10);

  lm_sender_close(&tx);
  lm_sender_close(&etx);
  lm_cluster_close(&plain);
  lm_cluster_close(&enc);
  lm_keypair_wipe(&node);
  lm_keypair_wipe(&ck);
  return rc == 0 ? 0 : 1;
}
