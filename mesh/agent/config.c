/*
 * config.c: the agent's configuration, from four layers: command-line flags
 * over LIVEMESH_* environment variables over a JSON config file over
 * defaults. One table describes every option once (flag, config key,
 * environment name, type, range, help), so the three parsers, the help text,
 * --print-config and the reload diff can never disagree.
 *
 * A value is validated in the layer where it was found, so an error names
 * exactly where to fix it ("--bind", "LIVEMESH_BIND" or "agent.json: key
 * \"bind\""). The highest layer that sets an option wins whole: a list from
 * the environment replaces the file's list rather than adding to it.
 *
 * Must never depend on libuv, mesh/node/, swim/'s code or trust.h: only
 * text in, text out (and a stat() or two to resolve defaults). The
 * protocol's defaults and limits are swim.h's constants.
 */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <livemesh/livemesh.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "socket_path.h" /* the one rule for the socket path */
#include "svc_json.h"    /* the config file's services */
#include "swim.h" /* protocol defaults and limits (constants only) */

#define STR_(x) #x
#define STR(x) STR_(x)

extern char **environ;

typedef enum {
  T_PATH,     /* a file or directory name */
  T_NAME,     /* a node or cluster name */
  T_STR,      /* any non-empty word (a group name) */
  T_ADDR,     /* HOST:PORT */
  T_ADDRLIST, /* HOST:PORT, repeatable */
  T_PATHLIST, /* file names, repeatable */
  T_URLLIST,  /* URLs, repeatable */
  T_U32,      /* a whole number within [min, max] */
  T_LEVEL,    /* error|warn|info|debug */
  T_FORMAT,   /* text|json */
  T_BOOL,     /* a flag without a value; true/false in env and file */
  T_CHOICE    /* one of the '|'-separated words of `arg` */
} opt_type_t;

typedef struct opt {
  const char *flag; /* without the leading "--" */
  const char *key;  /* config file key; NULL: not allowed in the file */
  opt_type_t type;
  size_t off;
  uint32_t min, max;
  const char *arg;  /* placeholder in the help text */
  const char *help;
  int no_env;       /* 1: no LIVEMESH_<FLAG> variable */
} opt_t;

#define F(field) offsetof(lm__config_t, field)

static const opt_t OPTS[] = {
    {"config", NULL, T_PATH, F(config_file), 0, 0, "FILE",
     "JSON config file (keys as in --print-config)", 0},
    {"name", "name", T_NAME, F(name), 0, 0, "NAME",
     "node name (default: the name in the node certificate)", 0},
    {"bind", "bind", T_ADDR, F(bind), 0, 0, "HOST:PORT",
     "UDP and TCP address to listen on (default 0.0.0.0:7946)", 0},
    {"advertise", "advertise", T_ADDR, F(advertise), 0, 0, "HOST:PORT",
     "address the other members dial (default: the bound one)", 0},
    {"join", "join", T_ADDRLIST, F(join), 0, 0, "HOST:PORT",
     "a member to join through; repeat for several", 0},
    {"data-dir", "data_dir", T_PATH, F(data_dir), 0, 0, "DIR",
     "state directory: node key, generation (default /var/lib/livemesh as "
     "root, else ~/.local/state/livemesh)", 0},
    {"socket", "socket", T_PATH, F(socket), 0, 0, "PATH",
     "control socket of the agent", 0},
    {"socket-group", "socket_group", T_STR, F(socket_group), 0, 0, "GROUP",
     "make the control socket 0660 and owned by this group", 0},
    {"http", "http", T_ADDR, F(http), 0, 0, "HOST:PORT",
     "serve the HTTP API there (an empty host is 127.0.0.1; loopback only "
     "unless --http-allow-remote)", 0},
    {"http-max-conns", "http_max_conns", T_U32, F(http_max_conns), 1, 65536,
     "N", "HTTP connections at once, watches and blocking queries included "
     "(default 256)", 0},
    {"http-idle-timeout-s", "http_idle_timeout_s", T_U32,
     F(http_idle_timeout_s), 1, 3600, "S",
     "cut an HTTP connection silent this long (default 30)", 0},
    {"http-read-only", "http_read_only", T_BOOL, F(http_read_only), 0, 0,
     NULL, "turn the HTTP write endpoints off (403)", 0},
    {"http-token", "http_token", T_PATH, F(http_token), 0, 0, "FILE",
     "HTTP writes need \"Authorization: Bearer TOKEN\", TOKEN the file's "
     "one line", 0},
    {"http-allow-remote", "http_allow_remote", T_BOOL, F(http_allow_remote),
     0, 0, NULL, "allow --http on an address beyond loopback", 0},
    {"http-tls-cert", "http_tls_cert", T_PATH, F(http_tls_cert), 0, 0,
     "FILE", "serve HTTPS with this PEM certificate (with --http-tls-key)",
     0},
    {"http-tls-key", "http_tls_key", T_PATH, F(http_tls_key), 0, 0, "FILE",
     "the PEM private key of --http-tls-cert", 0},
    {"cluster-key", "cluster_keys", T_PATHLIST, F(cluster_keys), 0, 0, "FILE",
     "trusted cluster public key (cluster.pub); repeat while rotating "
     "(default DATA_DIR/cluster.pub if present)", 0},
    {"node-key", "node_key", T_PATH, F(node_key), 0, 0, "FILE",
     "this node's secret key (default DATA_DIR/node.key)", 0},
    {"node-cert", "node_cert", T_PATH, F(node_cert), 0, 0, "FILE",
     "this node's certificate (default: node key path with .cert)", 0},
    {"cluster", "cluster", T_NAME, F(cluster), 0, 0, "NAME",
     "cluster name; clusters with other names are ignored (default "
     "livemesh)", 0},
    {"encrypt-key", "encrypt_key", T_PATH, F(encrypt_key), 0, 0, "FILE",
     "cluster secret (livemesh keygen secret): encrypt all traffic", 0},
    {"bridge-etcd", "bridge_etcd", T_URLLIST, F(bridge_etcd), 0, 0, "URL",
     "copy the view into etcd there (http:// or https://); repeat for "
     "several endpoints of one etcd cluster", 0},
    {"bridge-layout", "bridge_layout", T_CHOICE, F(bridge_layout), 0, 0,
     "native|os-lively", "keys the bridge writes (default native)", 0},
    {"bridge-encoding", "bridge_encoding", T_CHOICE, F(bridge_encoding), 0, 0,
     "protobuf|json", "values of the native layout (default protobuf)", 0},
    {"bridge-prefix", "bridge_prefix", T_STR, F(bridge_prefix), 0, 0,
     "PREFIX", "native layout's prefix, starting and ending with / "
     "(default /livemesh/CLUSTER/)", 0},
    {"bridge-namespace", "bridge_namespace", T_STR, F(bridge_namespace), 0, 0,
     "NS", "os-lively layout's namespace: keys under /NS/services/", 0},
    {"bridge-ca", "bridge_ca", T_PATH, F(bridge_ca), 0, 0, "FILE",
     "CA certificates (PEM) that sign etcd's server certificate", 0},
    {"bridge-cert", "bridge_cert", T_PATH, F(bridge_cert), 0, 0, "FILE",
     "client certificate (PEM) for etcd, with --bridge-key", 0},
    {"bridge-key", "bridge_key", T_PATH, F(bridge_key), 0, 0, "FILE",
     "private key (PEM) of --bridge-cert", 0},
    {"bridge-user", "bridge_user", T_STR, F(bridge_user), 0, 0, "USER",
     "etcd user, with --bridge-password-file", 0},
    {"bridge-password-file", "bridge_password_file", T_PATH,
     F(bridge_password_file), 0, 0, "FILE",
     "file whose first line is the etcd user's password", 0},
    {"bridge-lease-ttl-s", "bridge_lease_ttl_s", T_U32, F(bridge_lease_ttl_s),
     2, 300, "S", "TTL of the writer's lease: a dead writer's keys and "
     "leadership last this long (default 10)", 0},
    {"log-level", "log_level", T_LEVEL, F(log_level), 0, 0,
     "error|warn|info|debug", "log level (default info)", 0},
    {"log-format", "log_format", T_FORMAT, F(log_format), 0, 0, "text|json",
     "log line format on stderr (default text)", 0},
    {"probe-interval-ms", "probe_interval_ms", T_U32, F(probe_interval_ms),
     SWIM_MIN_PROBE_INTERVAL_MS, SWIM_MAX_PROBE_INTERVAL_MS, "MS",
     "time between probes (default " STR(SWIM_DEFAULT_PROBE_INTERVAL_MS) ")", 0},
    {"probe-timeout-ms", "probe_timeout_ms", T_U32, F(probe_timeout_ms),
     SWIM_MIN_PROBE_TIMEOUT_MS, SWIM_MAX_PROBE_TIMEOUT_MS, "MS",
     "wait for a direct ack (default " STR(SWIM_DEFAULT_PROBE_TIMEOUT_MS) ")", 0},
    {"indirect-checks", "indirect_checks", T_U32, F(indirect_checks), 1,
     SWIM_MAX_INDIRECT_CHECKS, "N", "members asked to probe indirectly "
     "(default " STR(SWIM_DEFAULT_INDIRECT_CHECKS) ")", 0},
    {"gossip-interval-ms", "gossip_interval_ms", T_U32, F(gossip_interval_ms),
     SWIM_MIN_GOSSIP_INTERVAL_MS, SWIM_MAX_GOSSIP_INTERVAL_MS, "MS",
     "time between gossip rounds (default " STR(SWIM_DEFAULT_GOSSIP_INTERVAL_MS) ")", 0},
    {"pushpull-interval-ms", "pushpull_interval_ms", T_U32,
     F(pushpull_interval_ms), SWIM_MIN_PUSHPULL_INTERVAL_MS,
     SWIM_MAX_PUSHPULL_INTERVAL_MS, "MS",
     "time between full state exchanges (runtime default)", 0},
    {"suspicion-min-mult", "suspicion_min_mult", T_U32, F(suspicion_min_mult),
     1, SWIM_MAX_SUSPICION_MIN_MULT, "N",
     "suspicion timeout multiplier (runtime default)", 0},
    {"tombstone-ms", "tombstone_ms", T_U32, F(tombstone_ms),
     SWIM_MIN_TOMBSTONE_MS, SWIM_MAX_TOMBSTONE_MS, "MS",
     "keep dead and left members this long (default "
     STR(SWIM_DEFAULT_TOMBSTONE_MS) ")", 0},
    {"allow-exec-checks", "allow_exec_checks", T_BOOL, F(allow_exec_checks),
     0, 0, NULL, "allow services with an exec check (they run shell "
     "commands as the agent's user); refused otherwise", 0},
    {"max-concurrent-checks", "max_concurrent_checks", T_U32,
     F(max_concurrent_checks), 1, 1024, "N",
     "health checks (http, tcp, exec) running at once (default 16)", 0},
    {"print-config", NULL, T_BOOL, F(print_config), 0, 0, NULL,
     "print the resulting configuration as JSON and exit", 1},
};
#define MAX_CONCURRENT_CHECKS_DEFAULT 16
#define NOPTS (sizeof OPTS / sizeof OPTS[0])
#define OPT_CONFIG 0

/* ---- small helpers ---- */

static void seterr(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

static char **field_str(lm__config_t *c, const opt_t *o) {
  return (char **)((char *)c + o->off);
}
static lm__strlist_t *field_list(lm__config_t *c, const opt_t *o) {
  return (lm__strlist_t *)((char *)c + o->off);
}
static uint32_t *field_u32(lm__config_t *c, const opt_t *o) {
  return (uint32_t *)((char *)c + o->off);
}
static int *field_int(lm__config_t *c, const opt_t *o) {
  return (int *)((char *)c + o->off);
}
#define CFIELD(c, o, T) ((const T *)((const char *)(c) + (o)->off))

static int is_list(opt_type_t t) {
  return t == T_ADDRLIST || t == T_PATHLIST || t == T_URLLIST;
}

/* Options held as one malloc'ed string. */
static int is_string(opt_type_t t) {
  return t == T_PATH || t == T_NAME || t == T_STR || t == T_ADDR ||
         t == T_CHOICE;
}

static void list_free(lm__strlist_t *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static int list_add(lm__strlist_t *l, const char *s) {
  char *d = strdup(s);
  char **v = d ? realloc(l->v, (l->n + 1) * sizeof *v) : NULL;
  if (!v) {
    free(d);
    return -1;
  }
  v[l->n++] = d;
  l->v = v;
  return 0;
}

static void env_name(const opt_t *o, char *out, size_t cap) {
  size_t k = (size_t)snprintf(out, cap, "LIVEMESH_");
  for (const char *p = o->flag; *p && k + 1 < cap; p++)
    out[k++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  out[k] = 0;
}

static const char *env_get(char *const *env, const char *name) {
  size_t n = strlen(name);
  for (char *const *e = env; e && *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

int lm__log_level_parse(const char *s) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (s && strcmp(s, names[i]) == 0)
      return i;
  if (s && strcmp(s, "warning") == 0)
    return LM_LOG_WARN;
  return -1;
}

const char *lm__log_level_name(int level) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  return level >= 0 && level < 4 ? names[level] : "info";
}

int lm__hostport_valid(const char *s) {
  if (!s || !*s)
    return 0;
  char host[64];
  const char *port;
  if (s[0] == '[') {
    const char *e = strchr(s, ']');
    if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof host)
      return 0;
    memcpy(host, s + 1, (size_t)(e - s - 1));
    host[e - s - 1] = 0;
    port = e + 2;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) != 1)
      return 0;
  } else {
    const char *c = strrchr(s, ':');
    if (!c || strchr(s, ':') != c || (size_t)(c - s) >= sizeof host)
      return 0;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    port = c + 1;
    struct in_addr a4;
    if (host[0] && strcmp(host, "localhost") != 0 &&
        inet_pton(AF_INET, host, &a4) != 1)
      return 0;
  }
  if (!*port || strlen(port) > 5)
    return 0;
  for (const char *p = port; *p; p++)
    if (*p < '0' || *p > '9')
      return 0;
  return atol(port) <= 65535;
}

/* Names end up in certificates, logs, tables and JSON: printable, no
 * spaces, so a name can never break a line or a column. */
static int name_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > LM_NAME_MAX)
    return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
      return 0;
  return 1;
}

static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 40 || lb > 40)
    return 99;
  size_t row[41];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t cur = row[j];
      size_t best = prev + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[lb];
}

/* The closest flag (by_key 0) or config key (by_key 1), or NULL. */
static const char *suggest(const char *word, int by_key) {
  const char *best = NULL;
  size_t bd = 3;
  for (size_t i = 0; i < NOPTS; i++) {
    const char *cand = by_key ? OPTS[i].key : OPTS[i].flag;
    if (!cand)
      continue;
    /* "data-dir" in a file or "data_dir" as a flag: the other spelling */
    char alt[64];
    snprintf(alt, sizeof alt, "%s", word);
    for (char *p = alt; *p; p++)
      if (*p == (by_key ? '-' : '_'))
        *p = by_key ? '_' : '-';
    size_t d = edit_distance(alt, cand);
    if (d < bd) {
      bd = d;
      best = cand;
    }
  }
  return best;
}

/* ---- values ---- */

static const char *type_expect(const opt_t *o, char *buf, size_t cap) {
  switch (o->type) {
  case T_PATH: return "a file name";
  case T_PATHLIST: return "file names";
  case T_NAME:
    return "a name of 1..64 printable characters without spaces or quotes";
  case T_STR: return "a non-empty word";
  case T_ADDR:
  case T_ADDRLIST:
    return "HOST:PORT with a numeric host, [IPv6] or localhost "
           "(e.g. 10.0.0.5:7946)";
  case T_URLLIST: return "a URL such as http://127.0.0.1:2379";
  case T_U32:
    snprintf(buf, cap, "a whole number from %u to %u", o->min, o->max);
    return buf;
  case T_LEVEL: return "one of error, warn, info, debug";
  case T_FORMAT: return "text or json";
  case T_BOOL: return "true or false";
  case T_CHOICE:
    snprintf(buf, cap, "one of %s", o->arg);
    for (char *p = buf; *p; p++)
      if (*p == '|')
        *p = ',';
    return buf;
  }
  return "a value";
}

/* Validates one scalar text value and stores it (appends, for a list). */
static int set_text(lm__config_t *c, size_t idx, const char *v,
                    const char *origin, char *err, size_t cap) {
  const opt_t *o = &OPTS[idx];
  char eb[64];
  int ok = 1;
  switch (o->type) {
  case T_PATH:
  case T_PATHLIST:
    ok = *v && strlen(v) < PATH_MAX;
    break;
  case T_NAME: ok = name_valid(v); break;
  case T_STR: ok = *v != 0; break;
  case T_CHOICE: {
    size_t n = strlen(v);
    const char *w = o->arg;
    ok = 0;
    while (!ok && w && *w) {
      const char *bar = strchr(w, '|');
      size_t wl = bar ? (size_t)(bar - w) : strlen(w);
      ok = n > 0 && wl == n && strncmp(w, v, n) == 0;
      w = bar ? bar + 1 : NULL;
    }
    break;
  }
  case T_ADDR:
  case T_ADDRLIST: ok = lm__hostport_valid(v); break;
  case T_URLLIST: ok = strstr(v, "://") != NULL && !strchr(v, ' '); break;
  case T_U32: {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    ok = *v >= '0' && *v <= '9' && !*end && !errno && x >= o->min &&
         x <= o->max;
    if (ok)
      *field_u32(c, o) = (uint32_t)x;
    break;
  }
  case T_LEVEL: {
    int l = lm__log_level_parse(v);
    ok = l >= 0;
    if (ok)
      *field_int(c, o) = l;
    break;
  }
  case T_FORMAT:
    ok = !strcmp(v, "text") || !strcmp(v, "json");
    if (ok)
      *field_int(c, o) = !strcmp(v, "json") ? LM__LOGFMT_JSON : LM__LOGFMT_TEXT;
    break;
  case T_BOOL: /* from the environment: LIVEMESH_ALLOW_EXEC_CHECKS=1 */
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") ||
        !strcmp(v, "on"))
      *field_int(c, o) = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") ||
             !strcmp(v, "off"))
      *field_int(c, o) = 0;
    else
      ok = 0;
    break;
  }
  if (!ok) {
    seterr(err, cap, "%s: expected %s, got \"%s\"", origin,
           type_expect(o, eb, sizeof eb), v);
    return -1;
  }
  if (is_string(o->type)) {
    char **f = field_str(c, o);
    free(*f);
    if (!(*f = strdup(v)))
      goto nomem;
  } else if (is_list(o->type)) {
    if (list_add(field_list(c, o), v))
      goto nomem;
  }
  c->set |= 1ull << idx;
  return 0;
nomem:
  seterr(err, cap, "out of memory");
  return -1;
}

/* ---- layers ---- */

static int parse_flags(lm__config_t *c, int argc, char *const *argv,
                       char *err, size_t cap) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help"))
      return LM__CFG_HELP;
    if (strncmp(a, "--", 2) != 0 || !a[2]) {
      seterr(err, cap,
             "unexpected argument \"%s\" (the agent takes flags only; see "
             "livemesh agent --help)",
             a);
      return -1;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    size_t idx = NOPTS;
    for (size_t k = 0; k < NOPTS; k++)
      if (strlen(OPTS[k].flag) == nlen && !strncmp(OPTS[k].flag, name, nlen))
        idx = k;
    if (idx == NOPTS) {
      char word[64];
      snprintf(word, sizeof word, "%.*s", (int)(nlen < 60 ? nlen : 60), name);
      const char *s = suggest(word, 0);
      if (s)
        seterr(err, cap, "unknown flag --%s (did you mean --%s?)", word, s);
      else
        seterr(err, cap, "unknown flag --%s (see livemesh agent --help)",
               word);
      return -1;
    }
    const opt_t *o = &OPTS[idx];
    char origin[64];
    snprintf(origin, sizeof origin, "--%s", o->flag);
    if (o->type == T_BOOL) {
      if (eq) {
        seterr(err, cap, "%s takes no value", origin);
        return -1;
      }
      *field_int(c, o) = 1;
      c->set |= 1ull << idx;
      continue;
    }
    const char *v;
    if (eq) {
      v = eq + 1;
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      seterr(err, cap, "%s needs a value (%s)", origin, o->arg);
      return -1;
    }
    if (set_text(c, idx, v, origin, err, cap))
      return -1;
  }
  return 0;
}

static int parse_env(lm__config_t *c, char *const *env, char *err,
                     size_t cap) {
  for (size_t idx = 0; idx < NOPTS; idx++) {
    const opt_t *o = &OPTS[idx];
    if (o->no_env)
      continue;
    char name[64];
    env_name(o, name, sizeof name);
    const char *v = env_get(env, name);
    if (!v || !*v) /* an empty variable counts as unset, as in most tools */
      continue;
    if (!is_list(o->type)) {
      if (set_text(c, idx, v, name, err, cap))
        return -1;
      continue;
    }
    /* lists: comma-separated, blanks around items ignored */
    char *copy = strdup(v);
    if (!copy) {
      seterr(err, cap, "out of memory");
      return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && !rc;
         t = strtok_r(NULL, ",", &save)) {
      while (*t == ' ' || *t == '\t')
        t++;
      char *e = t + strlen(t);
      while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = 0;
      if (*t)
        rc = set_text(c, idx, t, name, err, cap);
    }
    free(copy);
    if (rc)
      return -1;
  }
  return 0;
}

static const char *json_type_name(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a fraction";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "something else";
}

/* "services": [{register fields}, ...], each checked by the parser the
 * control socket uses; an error names the entry and the field:
 * services[2].ttl: must be longer than 0. */
static int parse_services(lm__config_t *c, const char *path, json_t *val,
                          char *err, size_t cap) {
  if (!json_is_array(val)) {
    seterr(err, cap, "config file %s: key \"services\": expected an array "
           "of services ({\"type\": ..., ...}), got %s", path,
           json_type_name(val));
    return -1;
  }
  size_t i;
  json_t *s;
  json_array_foreach(val, i, s) {
    lm__spec_buf_t sb;
    char msg[512];
    if (!json_is_object(s)) {
      seterr(err, cap, "config file %s: services[%zu]: expected an object "
             "with the register fields, got %s", path, i, json_type_name(s));
      return -1;
    }
    if (json_object_get(s, "cmd") || json_object_get(s, "id")) {
      seterr(err, cap, "config file %s: services[%zu].%s: unknown field",
             path, i, json_object_get(s, "cmd") ? "cmd" : "id");
      return -1;
    }
    if (lm__spec_from_json(s, &sb, NULL, msg, sizeof msg)) {
      /* "field \"ttl\": must be..." becomes "services[2].ttl: must be..." */
      const char *m = msg;
      if (!strncmp(m, "field \"", 7) && strstr(m, "\": "))
        m = strstr(m, "\": ") + 3;
      if (sb.field[0])
        seterr(err, cap, "config file %s: services[%zu].%s: %s", path, i,
               sb.field, m);
      else
        seterr(err, cap, "config file %s: services[%zu]: %s", path, i, m);
      return -1;
    }
    lm__spec_buf_free(&sb);
  }
  json_decref(c->services);
  c->services = json_incref(val);
  return 0;
}

static int parse_file(lm__config_t *c, const char *path, char *err,
                      size_t cap) {
  struct stat st;
  if (stat(path, &st) != 0) {
    seterr(err, cap, "config file %s: %s", path, strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    seterr(err, cap, "config file %s: not a regular file", path);
    return -1;
  }
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    seterr(err, cap, "config file %s:%d:%d: %s", path, je.line, je.column,
           je.text);
    return -1;
  }
  int rc = -1;
  if (!json_is_object(root)) {
    seterr(err, cap, "config file %s: expected a JSON object at the top, got %s",
           path, json_type_name(root));
    goto out;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (!strcmp(key, "services")) {
      if (parse_services(c, path, val, err, cap))
        goto out;
      continue;
    }
    size_t idx = NOPTS;
    for (size_t k = 0; k < NOPTS; k++)
      if (OPTS[k].key && !strcmp(OPTS[k].key, key))
        idx = k;
    if (idx == NOPTS) {
      const char *s = suggest(key, 1);
      if (s)
        seterr(err, cap, "config file %s: unknown key \"%s\" (did you mean "
               "\"%s\"?)", path, key, s);
      else
        seterr(err, cap, "config file %s: unknown key \"%s\"", path, key);
      goto out;
    }
    const opt_t *o = &OPTS[idx];
    char origin[PATH_MAX + 80], eb[64];
    snprintf(origin, sizeof origin, "config file %s: key \"%s\"", path, key);
    if (is_list(o->type)) {
      if (!json_is_array(val)) {
        seterr(err, cap, "%s: expected an array of strings (%s), got %s",
               origin, type_expect(o, eb, sizeof eb), json_type_name(val));
        goto out;
      }
      size_t i;
      json_t *item;
      json_array_foreach(val, i, item) {
        if (!json_is_string(item)) {
          seterr(err, cap, "%s: item %zu: expected a string, got %s", origin,
                 i, json_type_name(item));
          goto out;
        }
        if (set_text(c, idx, json_string_value(item), origin, err, cap))
          goto out;
      }
      c->set |= 1ull << idx; /* an empty array still overrides defaults */
    } else if (o->type == T_BOOL) {
      if (!json_is_boolean(val)) {
        seterr(err, cap, "%s: expected true or false, got %s", origin,
               json_type_name(val));
        goto out;
      }
      *field_int(c, o) = json_is_true(val);
      c->set |= 1ull << idx;
    } else if (o->type == T_U32) {
      if (!json_is_integer(val)) {
        seterr(err, cap, "%s: expected %s, got %s", origin,
               type_expect(o, eb, sizeof eb), json_type_name(val));
        goto out;
      }
      json_int_t x = json_integer_value(val);
      if (x < (json_int_t)o->min || x > (json_int_t)o->max) {
        seterr(err, cap, "%s: expected %s, got %lld", origin,
               type_expect(o, eb, sizeof eb), (long long)x);
        goto out;
      }
      *field_u32(c, o) = (uint32_t)x;
      c->set |= 1ull << idx;
    } else {
      if (!json_is_string(val)) {
        seterr(err, cap, "%s: expected a string (%s), got %s", origin,
               type_expect(o, eb, sizeof eb), json_type_name(val));
        goto out;
      }
      if (set_text(c, idx, json_string_value(val), origin, err, cap))
        goto out;
    }
  }
  rc = 0;
out:
  json_decref(root);
  return rc;
}

/* ---- merging and defaults ---- */

static int copy_opt(lm__config_t *dst, const lm__config_t *src, size_t idx) {
  const opt_t *o = &OPTS[idx];
  if (is_list(o->type)) {
    lm__strlist_t *d = field_list(dst, o);
    const lm__strlist_t *s = CFIELD(src, o, lm__strlist_t);
    list_free(d);
    for (size_t i = 0; i < s->n; i++)
      if (list_add(d, s->v[i]))
        return -1;
  } else if (o->type == T_U32) {
    *field_u32(dst, o) = *CFIELD(src, o, uint32_t);
  } else if (o->type == T_LEVEL || o->type == T_FORMAT || o->type == T_BOOL) {
    *field_int(dst, o) = *CFIELD(src, o, int);
  } else {
    char **d = field_str(dst, o);
    const char *s = *CFIELD(src, o, char *);
    free(*d);
    *d = s ? strdup(s) : NULL;
    if (s && !*d)
      return -1;
  }
  dst->set |= 1ull << idx;
  return 0;
}

int lm__mkdirs(const char *path, unsigned mode) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return -ENAMETOOLONG;
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = 0;
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(buf, mode) != 0 && errno != EEXIST)
    return -errno;
  struct stat st;
  if (stat(buf, &st) != 0)
    return -errno;
  return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

void lm__default_data_dir(char *out, size_t cap) {
  if (geteuid() == 0) {
    snprintf(out, cap, "/var/lib/livemesh");
    return;
  }
  const char *st = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  if (st && *st == '/')
    snprintf(out, cap, "%s/livemesh", st);
  else if (home && *home)
    snprintf(out, cap, "%s/.local/state/livemesh", home);
  else
    snprintf(out, cap, "/tmp/livemesh-%u", (unsigned)geteuid());
}

void lm__default_socket(char *out, size_t cap) {
  lm__socket_path_default(out, cap);
}

static size_t opt_index(size_t off) {
  for (size_t i = 0; i < NOPTS; i++)
    if (OPTS[i].off == off)
      return i;
  return NOPTS;
}

static int dupset(char **f, const char *v) {
  free(*f);
  *f = strdup(v);
  return *f ? 0 : -1;
}

static int resolve_defaults(lm__config_t *c, char *err, size_t cap) {
  char buf[PATH_MAX + 32];
  int rc = 0;
  if (!c->bind)
    rc |= dupset(&c->bind, "0.0.0.0:7946");
  if (!c->cluster)
    rc |= dupset(&c->cluster, "livemesh");
  if (!c->data_dir) {
    lm__default_data_dir(buf, sizeof buf);
    rc |= dupset(&c->data_dir, buf);
  }
  if (!c->node_key) {
    snprintf(buf, sizeof buf, "%s/node.key", c->data_dir);
    rc |= dupset(&c->node_key, buf);
  }
  if (!c->node_cert) {
    size_t n = strlen(c->node_key);
    if (n > 4 && !strcmp(c->node_key + n - 4, ".key"))
      snprintf(buf, sizeof buf, "%.*s.cert", (int)(n - 4), c->node_key);
    else
      snprintf(buf, sizeof buf, "%s/node.cert", c->data_dir);
    rc |= dupset(&c->node_cert, buf);
  }
  if (!c->socket) {
    lm__default_socket(buf, sizeof buf);
    rc |= dupset(&c->socket, buf);
  }
  if (!c->max_concurrent_checks)
    c->max_concurrent_checks = MAX_CONCURRENT_CHECKS_DEFAULT;
  if (c->cluster_keys.n == 0 && !(c->set >> opt_index(F(cluster_keys)) & 1)) {
    /* keygen cluster --out DATA_DIR leaves cluster.pub right there */
    snprintf(buf, sizeof buf, "%s/cluster.pub", c->data_dir);
    if (access(buf, F_OK) == 0)
      rc |= list_add(&c->cluster_keys, buf);
  }
  if (rc) {
    seterr(err, cap, "out of memory");
    return -1;
  }
  uint32_t iv = c->probe_interval_ms ? c->probe_interval_ms
                                     : SWIM_DEFAULT_PROBE_INTERVAL_MS;
  uint32_t to = c->probe_timeout_ms ? c->probe_timeout_ms
                                    : SWIM_DEFAULT_PROBE_TIMEOUT_MS;
  if (to >= iv) {
    seterr(err, cap, "probe timeout (%u ms) must be shorter than the probe "
           "interval (%u ms): set --probe-timeout-ms below "
           "--probe-interval-ms", to, iv);
    return -1;
  }
  if (c->bridge_prefix) {
    size_t n = strlen(c->bridge_prefix);
    if (c->bridge_prefix[0] != '/' || c->bridge_prefix[n - 1] != '/' ||
        n > 256) {
      seterr(err, cap, "--bridge-prefix %s: must start and end with / "
             "(at most 256 bytes), e.g. /livemesh/prod/", c->bridge_prefix);
      return -1;
    }
  }
  if (!c->bridge_cert != !c->bridge_key) {
    seterr(err, cap, "--bridge-cert and --bridge-key go together: give both "
           "or neither");
    return -1;
  }
  if (!c->bridge_user != !c->bridge_password_file) {
    seterr(err, cap, "--bridge-user and --bridge-password-file go together: "
           "give both or neither");
    return -1;
  }
  if (strlen(c->socket) >= 108) {
    seterr(err, cap, "socket path %s is too long for a Unix socket (at most "
           "107 bytes)", c->socket);
    return -1;
  }
  return 0;
}

void lm__config_free(lm__config_t *c) {
  json_decref(c->services);
  c->services = NULL;
  for (size_t i = 0; i < NOPTS; i++) {
    const opt_t *o = &OPTS[i];
    if (is_list(o->type))
      list_free(field_list(c, o));
    else if (is_string(o->type)) {
      free(*field_str(c, o));
      *field_str(c, o) = NULL;
    }
  }
}

static void layer_init(lm__config_t *c) {
  memset(c, 0, sizeof *c);
  c->log_level = LM_LOG_INFO;
}

int lm__config_load(lm__config_t *out, int argc, char *const *argv,
                    char *const *env, char *err, size_t errcap) {
  /* 64 options at most: `set` is a bit mask */
  _Static_assert(NOPTS <= 64, "too many options for the set mask");
  lm__config_t fl, en, fi;
  layer_init(out);
  layer_init(&fl);
  layer_init(&en);
  layer_init(&fi);
  if (!env)
    env = environ;
  int rc = parse_flags(&fl, argc, argv, err, errcap);
  if (rc == 0)
    rc = parse_env(&en, env, err, errcap);
  if (rc == 0) {
    const char *path = (fl.set & 1ull << OPT_CONFIG) ? fl.config_file
                       : (en.set & 1ull << OPT_CONFIG) ? en.config_file
                                                       : NULL;
    if (path)
      rc = parse_file(&fi, path, err, errcap);
  }
  if (rc == 0) {
    for (size_t i = 0; i < NOPTS && rc == 0; i++) {
      const lm__config_t *src = (fl.set >> i & 1)   ? &fl
                                : (en.set >> i & 1) ? &en
                                : (fi.set >> i & 1) ? &fi
                                                    : NULL;
      if (src && copy_opt(out, src, i)) {
        seterr(err, errcap, "out of memory");
        rc = -1;
      }
    }
  }
  if (rc == 0 && fi.services) /* the config file alone declares services */
    out->services = json_incref(fi.services);
  if (rc == 0)
    rc = resolve_defaults(out, err, errcap);
  lm__config_free(&fl);
  lm__config_free(&en);
  lm__config_free(&fi);
  if (rc != 0)
    lm__config_free(out);
  return rc == LM__CFG_HELP ? LM__CFG_HELP : rc ? LM__CFG_ERROR : LM__CFG_OK;
}

/* ---- output ---- */

static json_t *opt_json(const lm__config_t *c, const opt_t *o) {
  if (is_list(o->type)) {
    json_t *a = json_array();
    const lm__strlist_t *l = CFIELD(c, o, lm__strlist_t);
    for (size_t i = 0; i < l->n; i++)
      json_array_append_new(a, json_string(l->v[i]));
    return a;
  }
  switch (o->type) {
  case T_U32: {
    uint32_t v = *CFIELD(c, o, uint32_t);
    return v ? json_integer(v) : json_null(); /* null: runtime default */
  }
  case T_LEVEL: return json_string(lm__log_level_name(*CFIELD(c, o, int)));
  case T_FORMAT:
    return json_string(*CFIELD(c, o, int) == LM__LOGFMT_JSON ? "json" : "text");
  case T_BOOL: return json_boolean(*CFIELD(c, o, int));
  default: {
    const char *s = *CFIELD(c, o, char *);
    return s ? json_string(s) : json_null();
  }
  }
}

char *lm__config_to_json(const lm__config_t *c) {
  json_t *root = json_object();
  for (size_t i = 0; i < NOPTS; i++)
    if (OPTS[i].key)
      json_object_set_new(root, OPTS[i].key, opt_json(c, &OPTS[i]));
  json_object_set_new(root, "services",
                      c->services ? json_incref(c->services) : json_array());
  char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(root);
  return s;
}

void lm__config_diff(const lm__config_t *a, const lm__config_t *b,
                     void (*cb)(void *ud, const char *key, const char *old_v,
                                const char *new_v),
                     void *ud) {
  for (size_t i = 0; i < NOPTS; i++) {
    if (!OPTS[i].key)
      continue;
    json_t *ja = opt_json(a, &OPTS[i]), *jb = opt_json(b, &OPTS[i]);
    if (!json_equal(ja, jb)) {
      char *sa = json_dumps(ja, JSON_ENCODE_ANY | JSON_COMPACT);
      char *sb = json_dumps(jb, JSON_ENCODE_ANY | JSON_COMPACT);
      cb(ud, OPTS[i].key, sa ? sa : "?", sb ? sb : "?");
      free(sa);
      free(sb);
    }
    json_decref(ja);
    json_decref(jb);
  }
}

void lm__config_usage(void) {
  printf("Usage: livemesh agent [FLAGS]\n\n"
         "Runs a livemesh node: joins the mesh, keeps the membership view and "
         "answers\nlocal clients on a Unix control socket.\n\nFlags:\n");
  for (size_t i = 0; i < NOPTS; i++) {
    char left[64];
    const opt_t *o = &OPTS[i];
    if (o->arg)
      snprintf(left, sizeof left, "--%s %s", o->flag, o->arg);
    else
      snprintf(left, sizeof left, "--%s", o->flag);
    /* word-wrapped to 80 columns, the help in a column of its own */
    const char *h = o->help;
    int first = 1;
    if (strlen(left) > 28) {
      printf("  %s\n", left);
      first = 0;
    }
    while (*h) {
      size_t n = strlen(h);
      if (n > 48) {
        n = 48;
        while (n > 0 && h[n] != ' ')
          n--;
        if (n == 0)
          n = 48;
      }
      printf("  %-28s  %.*s\n", first ? left : "", (int)n, h);
      first = 0;
      h += n;
      while (*h == ' ')
        h++;
    }
  }
  printf("\nEvery flag has an environment variable LIVEMESH_<FLAG> (e.g. "
         "LIVEMESH_BIND,\nLIVEMESH_DATA_DIR; lists are comma-separated: "
         "LIVEMESH_JOIN=a:7946,b:7946)\nand a config file key (data_dir, "
         "join: [...], cluster_keys: [...]).\nFlags override the "
         "environment, which overrides the config file.\n\n"
         "Signals: SIGTERM or SIGINT leave the mesh gracefully and exit 0; "
         "SIGHUP\nreloads the config file, the cluster key files and the log "
         "level.\n");
}
