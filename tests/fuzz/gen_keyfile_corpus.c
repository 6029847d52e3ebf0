/*
 * gen_keyfile_corpus.c: writes the seed corpus of fuzz_keyfile.
 *
 *   gen_keyfile_corpus tests/fuzz/corpus/keyfile
 *
 * One file of each kind as the trust layer saves it (node secret key,
 * cluster public key, cluster secret, node certificate signed by the
 * cluster key fuzz_keyfile trusts), then near misses made from them: a
 * certificate expired at fuzz_keyfile's clock, one from an untrusted key,
 * trailing whitespace and CRLF, a missing field, a flipped seed (its
 * public key no longer matches), a wrong label, an over-long line, and a
 * bare key text. The seeds (0x11 node, 0xc1 cluster, 0x5a secret) match
 * fuzz_keyfile.c and fuzz_envelope.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "trust.h"

#define FUZZ_NOW 1700000000ull

static const char *g_dir;
static int g_files;

static void path_of(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", g_dir, name);
}

static void fail(const char *what) {
  fprintf(stderr, "gen_keyfile_corpus: %s\n", what);
  exit(1);
}

static char *slurp(const char *name, size_t *len) {
  char p[4096];
  path_of(p, sizeof p, name);
  FILE *f = fopen(p, "rb");
  if (!f)
    fail("cannot read back a seed");
  static char buf[4096];
  *len = fread(buf, 1, sizeof buf - 1, f);
  buf[*len] = 0;
  fclose(f);
  return buf;
}

static void put(const char *name, const char *data, size_t len) {
  char p[4096];
  path_of(p, sizeof p, name);
  FILE *f = fopen(p, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "gen_keyfile_corpus: cannot write %s: %s\n", p,
            strerror(errno));
    exit(1);
  }
  g_files++;
}

static void saved(int rc) {
  if (rc != 0)
    fail("a save failed");
  g_files++;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_keyfile_corpus DIR\n");
    return 2;
  }
  g_dir = argv[1];
  mkdir(g_dir, 0755);
  uint8_t seed[LM_SEED_LEN], secret[LM_SECRET_LEN];
  lm_keypair_t node, cluster, other;
  memset(seed, 0x11, sizeof seed);
  if (lm_keypair_from_seed(&node, seed))
    fail("node key");
  memset(seed, 0xc1, sizeof seed);
  if (lm_keypair_from_seed(&cluster, seed))
    fail("cluster key");
  memset(seed, 0x77, sizeof seed);
  if (lm_keypair_from_seed(&other, seed))
    fail("other key");
  memset(secret, 0x5a, sizeof secret);
  char p[4096];

  path_of(p, sizeof p, "node_key");
  saved(lm_keypair_save(p, &node));
  path_of(p, sizeof p, "cluster_pub");
  saved(lm_pubkey_save(p, cluster.pk));
  path_of(p, sizeof p, "cluster_secret");
  saved(lm_secret_save(p, secret));
  lm_cert_t cert;
  if (lm_cert_issue(&cert, node.pk, "fuzz-node", FUZZ_NOW - 3600,
                    FUZZ_NOW + 3600, &cluster))
    fail("cert");
  path_of(p, sizeof p, "node_cert");
  saved(lm_cert_save(p, &cert));
  char name64[LM_CERT_NAME_MAX + 1];
  memset(name64, 'n', LM_CERT_NAME_MAX);
  name64[LM_CERT_NAME_MAX] = 0;
  if (lm_cert_issue(&cert, node.pk, name64, 0, UINT64_MAX, &cluster))
    fail("cert, longest name");
  path_of(p, sizeof p, "node_cert_name64");
  saved(lm_cert_save(p, &cert));
  if (lm_cert_issue(&cert, node.pk, "old", FUZZ_NOW - 7200, FUZZ_NOW - 3600,
                    &cluster))
    fail("expired cert");
  path_of(p, sizeof p, "node_cert_expired");
  saved(lm_cert_save(p, &cert));
  if (lm_cert_issue(&cert, node.pk, "stranger", FUZZ_NOW - 3600,
                    FUZZ_NOW + 3600, &other))
    fail("untrusted cert");
  path_of(p, sizeof p, "node_cert_untrusted");
  saved(lm_cert_save(p, &cert));

  /* near misses, from the files as saved */
  size_t n;
  char *s = slurp("node_key", &n);
  char buf[4096];
  snprintf(buf, sizeof buf, "%.*s  \r\n\n", (int)(n - 1), s);
  put("node_key_crlf", buf, strlen(buf));
  char *sp = strrchr(s, ' ');
  put("node_key_one_field", s, (size_t)(sp - s));
  s[strlen("livemesh-secret-key-v1 ")] ^= 0x01; /* a seed character */
  put("node_key_flipped", s, n);
  s = slurp("cluster_pub", &n);
  put("cluster_pub_no_newline", s, n - 1);
  snprintf(buf, sizeof buf, "livemesh-public-key-v2%s",
           s + strlen("livemesh-public-key-v1"));
  put("cluster_pub_label_v2", buf, strlen(buf));
  snprintf(buf, sizeof buf, "%.*s extra\n", (int)(n - 1), s);
  put("cluster_pub_extra_field", buf, strlen(buf));
  char text[LM_KEY_TEXT_LEN + 1];
  if (lm_key_to_text(text, sizeof text, cluster.pk))
    fail("key text");
  snprintf(buf, sizeof buf, "  %s\n", text);
  put("key_text", buf, strlen(buf));
  s = slurp("cluster_secret", &n);
  snprintf(buf, sizeof buf, "%.*sAAAA\n", (int)(n - 1), s);
  put("cluster_secret_long_check", buf, strlen(buf));
  memset(buf, 'A', 1100);
  memcpy(buf, "livemesh-cert-v1 ", 17);
  put("cert_oversize_file", buf, 1100);
  put("empty", "", 0);
  printf("gen_keyfile_corpus: wrote %d seeds under %s\n", g_files, g_dir);
  return 0;
}
