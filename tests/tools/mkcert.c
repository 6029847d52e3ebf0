/*
 * mkcert.c: issues a node certificate with a chosen validity window, for
 * the multi-process test tests/multiproc/trust.py.
 *
 *   mkcert --cluster-key FILE --node-key FILE --name NAME --out FILE
 *          [--not-before SECONDS] [--expiry SECONDS]
 *
 * `livemesh keygen node` always makes a new node key and a certificate
 * valid from a minute ago for N >= 1 days; a test also needs a certificate
 * that expired an hour ago, one that is not valid yet, and a new certificate
 * (from another cluster key) for a node key that already exists. mkcert
 * signs one with the cluster SECRET key (cluster.key) for the public half
 * of an existing node key file (node.key, from `livemesh keygen node`), and
 * writes it with the trust library's own writer (lm_cert_save: the
 * "livemesh-cert-v1" file that keygen writes, replaced atomically).
 *
 * --not-before and --expiry are seconds relative to now, signed (default
 * -60 and +86400: what keygen does for one day); --expiry -3600 is a
 * certificate that expired an hour ago. expiry must be after not_before.
 *
 * stdout: one JSON line, {"cert":PATH,"name":..,"not_before":UNIX,
 * "expiry":UNIX,"now":UNIX,"cluster_key_id":HEX}. Exit 0 when written, 1
 * when a file cannot be read or written, 2 on a usage error.
 *
 * Uses only mesh/trust (trust.h); a test tool, never installed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trust.h"

static void usage(void) {
  fprintf(stderr,
          "usage: mkcert --cluster-key FILE --node-key FILE --name NAME "
          "--out FILE [--not-before SECONDS] [--expiry SECONDS]\n"
          "  (times in seconds relative to now, e.g. --expiry -3600)\n");
  exit(2);
}

/* A JSON string: the caller's path and name, quoted and escaped. */
static void put_json_str(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

static long long parse_rel(const char *flag, const char *v) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  /* within a century either way */
  if (errno || end == v || *end || x < -3155760000LL || x > 3155760000LL) {
    fprintf(stderr, "mkcert: %s: expected seconds relative to now, got "
            "\"%s\"\n", flag, v);
    exit(2);
  }
  return x;
}

int main(int argc, char **argv) {
  const char *ckey = NULL, *nkey = NULL, *name = NULL, *out = NULL;
  long long nb_rel = -60, exp_rel = 86400;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (!strcmp(a, "--cluster-key"))
      ckey = v;
    else if (!strcmp(a, "--node-key"))
      nkey = v;
    else if (!strcmp(a, "--name"))
      name = v;
    else if (!strcmp(a, "--out"))
      out = v;
    else if (!strcmp(a, "--not-before"))
      nb_rel = parse_rel(a, v);
    else if (!strcmp(a, "--expiry"))
      exp_rel = parse_rel(a, v);
    else
      usage();
  }
  if (!ckey || !nkey || !name || !out)
    usage();
  if (exp_rel <= nb_rel) {
    fprintf(stderr, "mkcert: --expiry must be later than --not-before\n");
    return 2;
  }
  lm_keypair_t cluster, node;
  int rc = lm_keypair_load(&cluster, ckey);
  if (rc) {
    fprintf(stderr, "mkcert: --cluster-key %s: %s (the cluster SECRET key, "
            "cluster.key)\n", ckey, lm_trust_strerror(rc));
    return 1;
  }
  rc = lm_keypair_load(&node, nkey);
  if (rc) {
    lm_keypair_wipe(&cluster);
    fprintf(stderr, "mkcert: --node-key %s: %s\n", nkey,
            lm_trust_strerror(rc));
    return 1;
  }
  uint64_t now = (uint64_t)time(NULL);
  uint64_t nb = (uint64_t)((long long)now + nb_rel);
  uint64_t ex = (uint64_t)((long long)now + exp_rel);
  lm_cert_t cert;
  rc = lm_cert_issue(&cert, node.pk, name, nb, ex, &cluster);
  lm_keypair_wipe(&cluster);
  lm_keypair_wipe(&node);
  if (rc) {
    fprintf(stderr, "mkcert: %s\n", lm_trust_strerror(rc));
    return 2;
  }
  if ((rc = lm_cert_save(out, &cert))) {
    fprintf(stderr, "mkcert: cannot write %s: %s\n", out,
            lm_trust_strerror(rc));
    return 1;
  }
  char kid[2 * LM_KEY_ID_LEN + 1];
  for (int i = 0; i < LM_KEY_ID_LEN; i++)
    sprintf(kid + 2 * i, "%02x", cert.cluster_key_id[i]);
  printf("{\"cert\":");
  put_json_str(out);
  printf(",\"name\":");
  put_json_str(cert.name);
  printf(",\"not_before\":%llu,\"expiry\":%llu,\"now\":%llu,"
         "\"cluster_key_id\":\"%s\"}\n",
         (unsigned long long)cert.not_before,
         (unsigned long long)cert.expiry, (unsigned long long)now, kid);
  return 0;
}
