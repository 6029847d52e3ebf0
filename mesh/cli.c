/*
 * cli.c: the client subcommands of `livemesh`: members, leave, stats and
 * ping talk to a running agent over its control socket (control.c);
 * keygen writes cluster keys, node keys and certificates, and cluster
 * secrets in the file formats of trust.h.
 *
 * People get aligned tables, programs get `-o json`. Exit statuses: 0 done,
 * 1 the agent answered with a failure, 2 usage errors and an unreachable
 * agent.
 *
 * Must never depend on swim/ or node.c: what it knows of the mesh comes
 * from the agent's answers; key files go through trust.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <livemesh/livemesh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "trust.h"

#define CALL_TIMEOUT_MS 10000

typedef struct client_opts {
  const char *socket;
  int json; /* -o json */
} client_opts_t;

static void client_usage(const char *cmd) {
  if (!strcmp(cmd, "members"))
    printf("Usage: livemesh members [-o table|json] [--socket PATH]\n\n"
           "Lists the members of the mesh as the local agent sees them.\n"
           "-o json prints an array of {name, id, addr, status, incarnation "
           "{generation,\nversion}, services, since}.\n");
  else if (!strcmp(cmd, "leave"))
    printf("Usage: livemesh leave [--socket PATH]\n\n"
           "Tells the local agent to leave the mesh gracefully (the others "
           "mark it left,\nnot dead) and to exit. Returns once the leave has "
           "been sent out.\n");
  else if (!strcmp(cmd, "stats"))
    printf("Usage: livemesh stats [-o table|json] [--socket PATH]\n\n"
           "Shows the agent's counters: packets, probes, suspicions, and "
           "messages dropped\nby reason.\n");
  else
    printf("Usage: livemesh ping [--socket PATH]\n\n"
           "Checks that the agent answers; prints its name, version and "
           "generation.\n");
  printf("\nThe agent is found through --socket PATH, else $LIVEMESH_SOCKET, "
         "else the\ndefault path (/run/livemesh/livemesh.sock as root, else "
         "$XDG_RUNTIME_DIR/livemesh.sock,\nelse /tmp/livemesh-UID.sock).\n");
}

/* Returns -1 on a usage error (printed), 1 for --help, 0 otherwise. */
static int parse_client(int argc, char **argv, client_opts_t *o,
                        int allow_output) {
  memset(o, 0, sizeof *o);
  const char *cmd = argv[0];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      client_usage(cmd);
      return 1;
    }
    int is_sock = !strcmp(a, "--socket") || !strncmp(a, "--socket=", 9);
    int is_out = allow_output && (!strcmp(a, "-o") || !strcmp(a, "--output") ||
                                  !strncmp(a, "--output=", 9) ||
                                  !strncmp(a, "-o=", 3));
    if (!is_sock && !is_out) {
      fprintf(stderr, "livemesh %s: unknown %s \"%s\" (see livemesh %s "
              "--help)\n", cmd, a[0] == '-' ? "flag" : "argument", a, cmd);
      return -1;
    }
    const char *eq = strchr(a, '=');
    if (eq)
      v = eq + 1;
    else if (i + 1 < argc)
      v = argv[++i];
    else {
      fprintf(stderr, "livemesh %s: %s needs a value\n", cmd, a);
      return -1;
    }
    if (is_sock) {
      o->socket = v;
    } else if (!strcmp(v, "json")) {
      o->json = 1;
    } else if (!strcmp(v, "table")) {
      o->json = 0;
    } else {
      fprintf(stderr, "livemesh %s: -o: expected table or json, got \"%s\"\n",
              cmd, v);
      return -1;
    }
  }
  return 0;
}

/* One request to the agent; prints why it failed and returns NULL. */
static json_t *call(const client_opts_t *o, const char *cmd, const char *what,
                    int *code) {
  char path[PATH_MAX], err[1024];
  lm__ctl_client_path(o->socket, path, sizeof path);
  json_t *req = json_pack("{s:s}", "cmd", cmd), *resp = NULL;
  int rc = lm__ctl_call(path, req, &resp, CALL_TIMEOUT_MS, err, sizeof err);
  json_decref(req);
  if (rc) {
    fprintf(stderr, "livemesh %s: %s\n", what, err);
    *code = LM__EXIT_USAGE;
    return NULL;
  }
  if (!json_is_true(json_object_get(resp, "ok"))) {
    const char *e = json_string_value(json_object_get(resp, "error"));
    fprintf(stderr, "livemesh %s: the agent says: %s\n", what,
            e ? e : "request failed");
    json_decref(resp);
    *code = LM__EXIT_FAIL;
    return NULL;
  }
  *code = LM__EXIT_OK;
  return resp;
}

static int use_color(void) {
  const char *t = getenv("TERM");
  return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && t &&
         strcmp(t, "dumb") != 0;
}

static const char *status_color(const char *s) {
  if (!strcmp(s, "alive"))
    return "\033[32m";
  if (!strcmp(s, "suspect"))
    return "\033[33m";
  if (!strcmp(s, "dead"))
    return "\033[31m";
  return "\033[2m";
}

static void print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (s)
    printf("%s\n", s);
  free(s);
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

int lm__cmd_members(int argc, char **argv) {
  client_opts_t o;
  int p = parse_client(argc, argv, &o, 1);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = call(&o, "members", "members", &code);
  if (!resp)
    return code;
  json_t *ms = json_object_get(resp, "members");
  if (!json_is_array(ms)) {
    fprintf(stderr, "livemesh members: the agent's answer has no members\n");
    json_decref(resp);
    return LM__EXIT_FAIL;
  }
  if (o.json) {
    print_json(ms);
    json_decref(resp);
    return LM__EXIT_OK;
  }
  /* columns sized to their widest cell */
  static const char *hdr[] = {"NAME",       "STATUS",  "ADDRESS",
                              "GENERATION", "VERSION", "SINCE"};
  size_t w[6];
  for (int c = 0; c < 6; c++)
    w[c] = strlen(hdr[c]);
  size_t i, n = json_array_size(ms);
  json_t *m;
  char cells[6][80];
#define FILL(m)                                                               \
  do {                                                                        \
    json_t *inc = json_object_get(m, "incarnation");                          \
    snprintf(cells[0], 80, "%s", jstr(m, "name"));                            \
    snprintf(cells[1], 80, "%s", jstr(m, "status"));                          \
    snprintf(cells[2], 80, "%s", jstr(m, "addr"));                            \
    snprintf(cells[3], 80, "%lld",                                            \
             (long long)json_integer_value(json_object_get(inc, "generation"))); \
    snprintf(cells[4], 80, "%lld",                                            \
             (long long)json_integer_value(json_object_get(inc, "version"))); \
    snprintf(cells[5], 80, "%s", jstr(m, "since"));                           \
  } while (0)
  json_array_foreach(ms, i, m) {
    FILL(m);
    for (int c = 0; c < 6; c++)
      if (strlen(cells[c]) > w[c])
        w[c] = strlen(cells[c]);
  }
  int color = use_color();
  for (int c = 0; c < 5; c++)
    printf("%-*s  ", (int)w[c], hdr[c]);
  printf("%s\n", hdr[5]);
  size_t counts[4] = {0};
  json_array_foreach(ms, i, m) {
    FILL(m);
    for (int c = 0; c < 6; c++) {
      if (c == 1 && color)
        printf("%s%-*s\033[0m  ", status_color(cells[1]), (int)w[c],
               cells[c]);
      else if (c < 5)
        printf("%-*s  ", (int)w[c], cells[c]);
      else
        printf("%s\n", cells[c]);
    }
    for (int s = 0; s < 4; s++)
      if (!strcmp(cells[1], lm_status_name((lm_status_t)s)))
        counts[s]++;
  }
#undef FILL
  fprintf(stderr, "%zu member(s): %zu alive, %zu suspect, %zu dead, %zu "
          "left\n", n, counts[0], counts[1], counts[2], counts[3]);
  json_decref(resp);
  return LM__EXIT_OK;
}

int lm__cmd_leave(int argc, char **argv) {
  client_opts_t o;
  int p = parse_client(argc, argv, &o, 0);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = call(&o, "leave", "leave", &code);
  if (!resp)
    return code;
  const char *name = jstr(resp, "name");
  if (json_is_true(json_object_get(resp, "left")))
    printf("agent %s left the mesh and is stopping\n", name);
  else
    fprintf(stderr, "livemesh leave: agent %s is stopping, but its leave was "
            "not confirmed in time; the others will find it dead instead\n",
            name);
  json_decref(resp);
  return LM__EXIT_OK;
}

int lm__cmd_stats(int argc, char **argv) {
  client_opts_t o;
  int p = parse_client(argc, argv, &o, 1);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = call(&o, "stats", "stats", &code);
  if (!resp)
    return code;
  json_t *st = json_object_get(resp, "stats");
  if (o.json) {
    print_json(st);
  } else {
    const char *k;
    json_t *v;
    json_object_foreach(st, k, v) {
      if (json_is_object(v)) {
        printf("%-20s %s\n", k, json_object_size(v) ? "" : "none");
        const char *k2;
        json_t *v2;
        json_object_foreach(v, k2, v2)
          printf("  %-18s %lld\n", k2, (long long)json_integer_value(v2));
      } else if (json_is_string(v)) {
        printf("%-20s %s\n", k, json_string_value(v));
      } else {
        printf("%-20s %lld\n", k, (long long)json_integer_value(v));
      }
    }
  }
  json_decref(resp);
  return LM__EXIT_OK;
}

int lm__cmd_ping(int argc, char **argv) {
  client_opts_t o;
  int p = parse_client(argc, argv, &o, 0);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = call(&o, "ping", "ping", &code);
  if (!resp)
    return code;
  printf("agent %s (livemesh %s, pid %lld, generation %lld) is %s\n",
         jstr(resp, "name"), jstr(resp, "version"),
         (long long)json_integer_value(json_object_get(resp, "pid")),
         (long long)json_integer_value(json_object_get(resp, "generation")),
         jstr(resp, "state"));
  json_decref(resp);
  return LM__EXIT_OK;
}

/* ---- keygen ---- */

static void keygen_usage(void) {
  printf("Usage: livemesh keygen cluster|node|secret [FLAGS]\n\n"
         "  livemesh keygen cluster --out DIR [--force]\n"
         "      a cluster signing key pair: DIR/cluster.key (secret, 0600: "
         "keep it\n      off the nodes) and DIR/cluster.pub (give it to every "
         "agent: --cluster-key)\n"
         "  livemesh keygen node --cluster-key FILE --name NAME --out DIR "
         "[--valid-days N]\n                      [--force]\n"
         "      a node key and its certificate, signed by the cluster SECRET "
         "key FILE:\n      DIR/node.key (0600), DIR/node.cert, DIR/node.pub; "
         "valid N days (default 365)\n"
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
