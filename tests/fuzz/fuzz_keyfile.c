/*
 * fuzz_keyfile.c: libFuzzer target of the trust layer's files (trust.c):
 * the node's secret key file, a cluster public key file, the cluster
 * secret and the node certificate, each a line "<label> <base64>...", and
 * the key text of lm_key_from_text. The input is the file: written to a
 * memfd and loaded by its /proc/self/fd path, exactly as the agent loads
 * its files. A loaded certificate is verified against a trusted cluster
 * key, so the checks behind the decoder run too.
 *
 * Properties: no crash, leak or read past the input; every refusal is a
 * trust error code; a secret key loads only with its own public key; a
 * loaded certificate re-encodes to bytes that decode to it again; a key
 * text that parses is 32 bytes that print back to the trimmed text.
 *
 * Depends on the trust module only.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trust.h"

#define FUZZ_NOW 1700000000ull
#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_fd = -1;
static char g_path[64];
static lm_trust_set_t g_trust; /* read-only once built */

static void init(void) {
  g_fd = memfd_create("fuzz_keyfile", MFD_CLOEXEC);
  CHECK(g_fd >= 0);
  snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
  uint8_t seed[LM_SEED_LEN];
  lm_keypair_t ck;
  memset(seed, 0xc1, sizeof seed); /* gen_keyfile_corpus.c's cluster key */
  CHECK(lm_keypair_from_seed(&ck, seed) == 0);
  lm_trust_set_init(&g_trust);
  CHECK(lm_trust_set_add(&g_trust, ck.pk) == 0);
  lm_keypair_wipe(&ck);
}

static int is_trust_err(int rc) { return rc < 0 && lm_trust_err_index(rc) >= 0; }

static void key_text(const uint8_t *data, size_t size) {
  if (size > 128)
    return;
  char s[129];
  memcpy(s, data, size);
  s[size] = 0;
  uint8_t key[32];
  int rc = lm_key_from_text(key, s);
  if (rc) {
    CHECK(is_trust_err(rc));
    return;
  }
  char t[64];
  CHECK(lm_key_to_text(t, sizeof t, key) == 0);
  uint8_t again[32];
  CHECK(lm_key_from_text(again, t) == 0 && !memcmp(key, again, 32));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (g_fd < 0)
    init();
  key_text(data, size);
  CHECK(ftruncate(g_fd, 0) == 0);
  CHECK(pwrite(g_fd, data, size, 0) == (ssize_t)size);

  lm_keypair_t kp;
  int rc = lm_keypair_load(&kp, g_path);
  if (rc == 0) {
    uint8_t seed[LM_SEED_LEN];
    memcpy(seed, kp.sk, LM_SEED_LEN); /* libsodium: sk = seed || pk */
    lm_keypair_t again;
    CHECK(lm_keypair_from_seed(&again, seed) == 0);
    CHECK(!memcmp(again.pk, kp.pk, LM_PUBLICKEY_LEN));
    lm_keypair_wipe(&again);
    lm_keypair_wipe(&kp);
  } else {
    CHECK(is_trust_err(rc));
  }

  uint8_t pk[LM_PUBLICKEY_LEN];
  rc = lm_pubkey_load(pk, g_path);
  CHECK(rc == 0 || is_trust_err(rc));

  uint8_t secret[LM_SECRET_LEN];
  rc = lm_secret_load(secret, g_path);
  CHECK(rc == 0 || is_trust_err(rc));

  lm_cert_t cert;
  rc = lm_cert_load(&cert, g_path);
  if (rc == 0) {
    uint8_t enc[LM_CERT_MAX];
    size_t len = 0;
    CHECK(lm_cert_encode(enc, sizeof enc, &len, &cert) == 0);
    lm_cert_t back;
    CHECK(lm_cert_decode(&back, enc, len) == (int)len);
    uint8_t enc2[LM_CERT_MAX];
    size_t len2 = 0;
    CHECK(lm_cert_encode(enc2, sizeof enc2, &len2, &back) == 0);
    CHECK(len2 == len && !memcmp(enc, enc2, len));
    rc = lm_cert_verify(&g_trust, &cert, FUZZ_NOW);
    CHECK(rc == 0 || is_trust_err(rc));
  } else {
    CHECK(is_trust_err(rc));
  }
  return 0;
}
