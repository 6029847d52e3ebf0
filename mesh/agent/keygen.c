/*
 * keygen.c: `livemesh keygen cluster|node|secret`: writes cluster keys,
 * node keys and certificates, and cluster secrets in the file formats of
 * trust.h. Existing files are never overwritten without --force.
 *
 * Must never depend on swim/ or mesh/node/: key files go through trust.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "trust.h"

static void keygen_usage(void) {
  printf("Usage: livemesh keygen cluster|node|secret [FLAGS]\n\n"
         "  livemesh keygen cluster --out DIR [--force]\n"
         "      a cluster signing key pair: DIR/cluster.key (secret, 0600: "
         "keep it\n      off the nodes) and DIR/cluster.pub (give it to every "
         "agent: --cluster-key)\n"
         "  livemesh keygen node --cluster-key FILE [--name NAME] --out DIR "
         "[--valid-days N]\n                      [--force]\n"
         "      a node key and its certificate, signed by the cluster SECRET "
         "key FILE:\n      DIR/node.key (0600), DIR/node.cert, DIR/node.pub; "
         "valid N days (default 365).\n      NAME defaults to this machine's "
         "hostname: the host of a service is its\n      node's name (in a "
         "container, whose hostname is random, give --name)\n"
         "  livemesh keygen secret --out DIR [--force]\n"
         "      a shared cluster secret, DIR/cluster.secret (0600), for "
         "agent --encrypt-key\n\n"
         "Existing files are never overwritten without --force.\n");
}

typedef struct kg_opts {
  const char *out, *cluster_key, *name;
  long valid_days;
  int force;
} kg_opts_t;

static int kg_parse(int argc, char **argv, const char *kind, kg_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->valid_days = 365;
  int is_node = !strcmp(kind, "node");
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      keygen_usage();
      return 1;
    }
    if (!strcmp(a, "--force")) {
      o->force = 1;
      continue;
    }
    const char *names[] = {"--out", "--cluster-key", "--name", "--valid-days"};
    int which = -1;
    const char *v = NULL;
    for (int k = 0; k < 4; k++) {
      size_t n = strlen(names[k]);
      if (!strncmp(a, names[k], n) && (a[n] == 0 || a[n] == '=')) {
        which = k;
        v = a[n] == '=' ? a + n + 1 : NULL;
      }
    }
    if (which < 0 || (which > 0 && !is_node)) {
      fprintf(stderr, "livemesh keygen %s: unknown %s \"%s\" (see livemesh "
              "keygen --help)\n", kind, a[0] == '-' ? "flag" : "argument", a);
      return -1;
    }
    if (!v) {
      if (i + 1 >= argc) {
        fprintf(stderr, "livemesh keygen %s: %s needs a value\n", kind, a);
        return -1;
      }
      v = argv[++i];
    }
    if (which == 0)
      o->out = v;
    else if (which == 1)
      o->cluster_key = v;
    else if (which == 2)
      o->name = v;
    else {
      char *end;
      o->valid_days = strtol(v, &end, 10);
      if (!*v || *end || o->valid_days < 1 || o->valid_days > 36500) {
        fprintf(stderr, "livemesh keygen node: --valid-days: expected a "
                "whole number of days from 1 to 36500, got \"%s\"\n", v);
        return -1;
      }
    }
  }
  /* A node is named after its machine unless told otherwise: the host
   * of a service is its member's name, so `is-up api $(hostname)` just
   * works. Containers, whose hostnames are random, pass --name. */
  static char host[256];
  if (is_node && !o->name && gethostname(host, sizeof host - 1) == 0 &&
      host[0])
    o->name = host;
  const char *missing = !o->out                           ? "--out DIR"
                        : is_node && !o->cluster_key      ? "--cluster-key FILE"
                        : is_node && !o->name             ? "--name NAME"
                                                          : NULL;
  if (missing) {
    fprintf(stderr, "livemesh keygen %s: missing %s (see livemesh keygen "
            "--help)\n", kind, missing);
    return -1;
  }
  return 0;
}

/* Refuses to overwrite unless --force; creates DIR (0700) if missing. */
static int kg_prepare(const kg_opts_t *o, const char *kind,
                      const char *const *files, size_t n) {
  int rc = lm__mkdirs(o->out, 0700);
  if (rc) {
    fprintf(stderr, "livemesh keygen %s: --out %s: %s\n", kind, o->out,
            strerror(-rc));
    return -1;
  }
  for (size_t i = 0; i < n && !o->force; i++) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", o->out, files[i]);
    if (access(p, F_OK) == 0) {
      fprintf(stderr, "livemesh keygen %s: %s already exists; pass --force "
              "to overwrite it\n", kind, p);
      return -1;
    }
  }
  return 0;
}

static int kg_fail(const char *kind, const char *path, int rc) {
  fprintf(stderr, "livemesh keygen %s: cannot write %s: %s\n", kind, path,
          lm_trust_strerror(rc));
  return LM__EXIT_FAIL;
}

static int keygen_cluster(const kg_opts_t *o) {
  const char *files[] = {"cluster.key", "cluster.pub"};
  if (kg_prepare(o, "cluster", files, 2))
    return LM__EXIT_USAGE;
  char kp_path[PATH_MAX], pub_path[PATH_MAX], text[LM_KEY_TEXT_LEN + 1];
  snprintf(kp_path, sizeof kp_path, "%s/cluster.key", o->out);
  snprintf(pub_path, sizeof pub_path, "%s/cluster.pub", o->out);
  lm_keypair_t kp;
  int rc = lm_keypair_generate(&kp);
  if (rc) {
    fprintf(stderr, "livemesh keygen cluster: %s\n", lm_trust_strerror(rc));
    return LM__EXIT_FAIL;
  }
  if ((rc = lm_keypair_save(kp_path, &kp))) {
    lm_keypair_wipe(&kp);
    return kg_fail("cluster", kp_path, rc);
  }
  if ((rc = lm_pubkey_save(pub_path, kp.pk))) {
    lm_keypair_wipe(&kp);
    return kg_fail("cluster", pub_path, rc);
  }
  lm_key_to_text(text, sizeof text, kp.pk);
  lm_keypair_wipe(&kp);
  printf("wrote %s  cluster secret key (mode 0600): it admits nodes; keep it "
         "off the nodes\n", kp_path);
  printf("wrote %s  cluster public key: give it to every agent "
         "(--cluster-key)\n", pub_path);
  printf("cluster key: %s\n", text);
  return LM__EXIT_OK;
}

static int keygen_secret(const kg_opts_t *o) {
  const char *files[] = {"cluster.secret"};
  if (kg_prepare(o, "secret", files, 1))
    return LM__EXIT_USAGE;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/cluster.secret", o->out);
  uint8_t secret[LM_SECRET_LEN];
  int rc = -1;
  if (sodium_init() >= 0) {
    randombytes_buf(secret, sizeof secret);
    rc = lm_secret_save(path, secret);
    sodium_memzero(secret, sizeof secret);
  }
  if (rc)
    return kg_fail("secret", path, rc);
  printf("wrote %s  cluster secret (mode 0600): give it to every agent "
         "(--encrypt-key) to encrypt all traffic\n", path);
  return LM__EXIT_OK;
}

static int keygen_node(const kg_opts_t *o) {
  const char *files[] = {"node.key", "node.cert", "node.pub"};
  size_t nl = strlen(o->name);
  for (const unsigned char *p = (const unsigned char *)o->name; *p; p++)
    if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
      nl = 0;
  if (nl == 0 || nl > LM_NAME_MAX) {
    fprintf(stderr, "livemesh keygen node: --name: expected 1..%d printable "
            "characters without spaces or quotes, got \"%s\"\n", LM_NAME_MAX,
            o->name);
    return LM__EXIT_USAGE;
  }
  lm_keypair_t cluster;
  int rc = lm_keypair_load(&cluster, o->cluster_key);
  if (rc) {
    struct stat st;
    uint8_t pk[LM_PUBLICKEY_LEN];
    if (stat(o->cluster_key, &st) != 0)
      fprintf(stderr, "livemesh keygen node: --cluster-key %s: %s\n",
              o->cluster_key, strerror(errno));
    else if (lm_pubkey_load(pk, o->cluster_key) == 0)
      fprintf(stderr, "livemesh keygen node: --cluster-key %s is a public "
              "key; signing a certificate needs the cluster SECRET key "
              "(cluster.key)\n", o->cluster_key);
    else
      fprintf(stderr, "livemesh keygen node: --cluster-key %s: %s (expected "
              "the cluster.key written by `livemesh keygen cluster`)\n",
              o->cluster_key, lm_trust_strerror(rc));
    return LM__EXIT_USAGE;
  }
  if (kg_prepare(o, "node", files, 3)) {
    lm_keypair_wipe(&cluster);
    return LM__EXIT_USAGE;
  }
  char kpath[PATH_MAX], cpath[PATH_MAX], ppath[PATH_MAX];
  snprintf(kpath, sizeof kpath, "%s/node.key", o->out);
  snprintf(cpath, sizeof cpath, "%s/node.cert", o->out);
  snprintf(ppath, sizeof ppath, "%s/node.pub", o->out);
  lm_keypair_t node;
  lm_cert_t cert;
  uint64_t now = (uint64_t)time(NULL);
  /* a minute of slack: a node whose clock is a little behind still
   * accepts its own fresh certificate */
  rc = lm_keypair_generate(&node);
  if (rc == 0)
    rc = lm_cert_issue(&cert, node.pk, o->name, now - 60,
                       now + (uint64_t)o->valid_days * 86400, &cluster);
  lm_keypair_wipe(&cluster);
  if (rc) {
    lm_keypair_wipe(&node);
    fprintf(stderr, "livemesh keygen node: %s\n", lm_trust_strerror(rc));
    return LM__EXIT_FAIL;
  }
  const char *failed = NULL;
  if ((rc = lm_keypair_save(kpath, &node)))
    failed = kpath;
  else if ((rc = lm_cert_save(cpath, &cert)))
    failed = cpath;
  else if ((rc = lm_pubkey_save(ppath, node.pk)))
    failed = ppath;
  char id[2 * LM_PUBLICKEY_LEN + 1];
  lm__hex(id, node.pk, LM_PUBLICKEY_LEN);
  lm_keypair_wipe(&node);
  if (failed)
    return kg_fail("node", failed, rc);
  char until[40];
  time_t t = (time_t)cert.expiry;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(until, sizeof until, "%Y-%m-%d %H:%M UTC", &tm);
  printf("wrote %s  node secret key (mode 0600)\n", kpath);
  printf("wrote %s  certificate for \"%s\", valid until %s\n", cpath,
         o->name, until);
  printf("wrote %s  node public key\n", ppath);
  printf("node id: %s\n", id);
  return LM__EXIT_OK;
}

int lm__cmd_keygen(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    keygen_usage();
    return argc < 2 ? LM__EXIT_USAGE : LM__EXIT_OK;
  }
  const char *kind = argv[1];
  if (strcmp(kind, "cluster") && strcmp(kind, "node") &&
      strcmp(kind, "secret")) {
    fprintf(stderr, "livemesh keygen: unknown kind \"%s\" (expected cluster, "
            "node or secret)\n", kind);
    return LM__EXIT_USAGE;
  }
  kg_opts_t o;
  int p = kg_parse(argc, argv, kind, &o);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  if (!strcmp(kind, "cluster"))
    return keygen_cluster(&o);
  if (!strcmp(kind, "secret"))
    return keygen_secret(&o);
  return keygen_node(&o);
}
