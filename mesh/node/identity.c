/*
 * identity.c: cluster keys and node identities (key pair plus certificate):
 * generated, issued by a cluster key, loaded from files.
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "node_internal.h"

/* ---- identity ---- */

int lm_cluster_keygen(uint8_t pk[LM_PUBLICKEY_BYTES],
                      uint8_t sk[LM_SECRETKEY_BYTES]) {
  lm_keypair_t kp;
  int rc = lm_keypair_generate(&kp);
  if (rc)
    return rc;
  memcpy(pk, kp.pk, sizeof kp.pk);
  memcpy(sk, kp.sk, sizeof kp.sk);
  lm_keypair_wipe(&kp);
  return 0;
}

int lm_identity_issue(lm_identity_t *out, const char *name,
                      const uint8_t cluster_sk[LM_SECRETKEY_BYTES],
                      uint64_t valid_seconds) {
  lm_keypair_t node, cl;
  memset(out, 0, sizeof *out);
  if (!name || !*name || strlen(name) > LM_NAME_MAX || !valid_seconds)
    return LM_EINVAL;
  int rc = lm_keypair_generate(&node);
  if (rc)
    return rc;
  memcpy(cl.sk, cluster_sk, sizeof cl.sk);
  memcpy(cl.pk, cluster_sk + 32, sizeof cl.pk); /* Ed25519 sk = seed || pk */
  uint64_t now = (uint64_t)time(NULL);
  lm_cert_t cert;
  rc = lm_cert_issue(&cert, node.pk, name, now - 60, now + valid_seconds, &cl);
  lm_keypair_wipe(&cl);
  if (rc == 0)
    rc = lm_cert_encode(out->cert, sizeof out->cert, &out->cert_len, &cert);
  if (rc) {
    lm_keypair_wipe(&node);
    return rc;
  }
  memcpy(out->pk, node.pk, sizeof out->pk);
  memcpy(out->sk, node.sk, sizeof out->sk);
  lm_keypair_wipe(&node);
  return 0;
}

int lm_identity_load(lm_identity_t *out, const char *key_file,
                     const char *cert_file) {
  lm_keypair_t kp;
  lm_cert_t cert;
  memset(out, 0, sizeof *out);
  int rc = lm_keypair_load(&kp, key_file);
  if (rc)
    return rc;
  if ((rc = lm_cert_load(&cert, cert_file)) ||
      (rc = memcmp(cert.node_pk, kp.pk, sizeof kp.pk) ? LM_ECERT : 0) ||
      (rc = lm_cert_encode(out->cert, sizeof out->cert, &out->cert_len,
                           &cert))) {
    lm_keypair_wipe(&kp);
    return rc;
  }
  memcpy(out->pk, kp.pk, sizeof out->pk);
  memcpy(out->sk, kp.sk, sizeof out->sk);
  lm_keypair_wipe(&kp);
  return 0;
}

int lm_cluster_pubkey_load(uint8_t pk[LM_PUBLICKEY_BYTES], const char *path) {
  return lm_pubkey_load(pk, path);
}

void lm_identity_wipe(lm_identity_t *id) {
  volatile uint8_t *p = (volatile uint8_t *)id;
  for (size_t i = 0; i < sizeof *id; i++)
    p[i] = 0;
}

