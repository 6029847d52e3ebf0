/*
 * agent.c: `livemesh agent`, one livemesh node run as a daemon beside the
 * services of a host. It loads the configuration (config.c), the node's key
 * and certificate and the trusted cluster keys (trust.h's file formats),
 * persists a growing generation in its data directory, runs the node on its
 * own libuv loop, answers local clients on the control socket (control.c),
 * logs to stderr (text or JSON lines), leaves gracefully on SIGTERM/SIGINT
 * and reloads on SIGHUP.
 *
 * Must never depend on swim/'s code or on mesh/node/'s internals: the public API
 * (livemesh.h) runs the node, trust.h reads and checks key files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <livemesh/livemesh.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "agent_bridge.h"
#include "commands.h"
#include "config.h"
#include "control.h"
#include "probes.h"
#include "sdnotify.h"
#include "http.h"
#include "trust.h"

#define LEAVE_GUARD_MS 3500 /* the runtime gives up on a leave after 3 s */
#define CERT_WARN_DAYS 30

typedef lm__agent_t agent_t;

/* ---- logging ---- */

static void emit(agent_t *a, int level, const char *line) {
  char ts[40];
  lm__rfc3339(ts, sizeof ts, lm__unix_ms());
  if (a->log_format == LM__LOGFMT_JSON) {
    /* "n1: message" from the node and from us: the name is a field */
    size_t nl = strlen(a->name);
    json_t *j;
    if (nl && !strncmp(line, a->name, nl) && line[nl] == ':' &&
        line[nl + 1] == ' ')
      j = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level",
                    lm__log_level_name(level), "node", a->name, "msg",
                    line + nl + 2);
    else
      j = json_pack("{s:s, s:s, s:s}", "ts", ts, "level",
                    lm__log_level_name(level), "msg", line);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (s)
      fprintf(stderr, "%s\n", s);
    free(s);
    json_decref(j);
  } else {
    fprintf(stderr, "%s %s %s\n", ts, lm__log_level_name(level), line);
  }
}

static void alog(agent_t *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void alog(agent_t *a, int level, const char *fmt, ...) {
  if (level > a->log_level)
    return;
  char buf[1024];
  int k = snprintf(buf, sizeof buf, "%s: ", a->name[0] ? a->name : "agent");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
  va_end(ap);
  emit(a, level, buf);
}

/* The node logs at every level; the filter is ours, so SIGHUP can change
 * the level of a running node. */
static void on_node_log(void *ud, int level, const char *line) {
  agent_t *a = ud;
  if (level <= a->log_level)
    emit(a, level, line);
}

void lm__agent_log(agent_t *a, int level, const char *fmt, ...) {
  if (level > a->log_level)
    return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  alog(a, level, "%s", buf);
}

static void on_ctl_log(void *ud, int level, const char *msg) {
  alog(ud, level, "%s", msg);
}

/* ---- files: identity, trust, generation ---- */

/* Error messages for people: a path of any length may be cut short. */
static void errf(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

/* The first word of a key file: its kind ("livemesh-secret-key-v1"...). */
static const char *file_label(const char *path, char buf[64]) {
  FILE *f = fopen(path, "r");
  buf[0] = 0;
  if (f) {
    if (fscanf(f, "%63s", buf) != 1)
      buf[0] = 0;
    fclose(f);
  }
  return buf;
}

static int check_readable(const char *what, const char *path, char *err,
                          size_t cap) {
  struct stat st;
  if (stat(path, &st) != 0) {
    errf(err, cap, "%s %s: %s", what, path, strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    errf(err, cap, "%s %s: not a regular file", what, path);
    return -1;
  }
  return 0;
}

static void fmt_date(char *out, size_t cap, uint64_t unix_s) {
  time_t t = (time_t)unix_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, cap, "%Y-%m-%d %H:%M UTC", &tm);
}

/* Loads every cluster public key file; the files' order is kept. */
static int load_trusted(const lm__strlist_t *files,
                        uint8_t (**out)[LM_PUBLICKEY_BYTES], size_t *n,
                        char *err, size_t cap) {
  *out = NULL;
  *n = 0;
  if (files->n == 0) {
    errf(err, cap, "no trusted cluster key: pass --cluster-key FILE (the "
             "cluster.pub written by `livemesh keygen cluster`)");
    return -1;
  }
  if (files->n > LM_TRUST_SET_MAX) {
    errf(err, cap, "%zu cluster keys given; at most %d are trusted at "
             "once", files->n, LM_TRUST_SET_MAX);
    return -1;
  }
  uint8_t(*keys)[LM_PUBLICKEY_BYTES] = calloc(files->n, sizeof *keys);
  if (!keys) {
    errf(err, cap, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < files->n; i++) {
    const char *p = files->v[i];
    char label[64];
    if (check_readable("cluster key", p, err, cap))
      goto fail;
    int rc = lm_pubkey_load(keys[i], p);
    if (rc) {
      if (!strcmp(file_label(p, label),
                  "livemesh-secret-key-v1"))
        errf(err, cap, "cluster key %s is a SECRET key; --cluster-key "
                 "wants the cluster PUBLIC key (cluster.pub). Keep "
                 "cluster.key off the nodes", p);
      else
        errf(err, cap, "cluster key %s: %s (expected a "
                 "livemesh-public-key-v1 file such as cluster.pub)", p,
                 lm_trust_strerror(rc));
      goto fail;
    }
  }
  *out = keys;
  *n = files->n;
  return 0;
fail:
  free(keys);
  return -1;
}

/* The node's certificate against a set of cluster keys, explained. */
static int check_cert(const lm_cert_t *cert, const char *cert_path,
                      uint8_t (*keys)[LM_PUBLICKEY_BYTES], size_t n,
                      char *err, size_t cap) {
  lm_trust_set_t ts;
  lm_trust_set_init(&ts);
  for (size_t i = 0; i < n; i++)
    if (lm_trust_set_add(&ts, keys[i]))
      break;
  char d[40];
  int rc = lm_cert_verify(&ts, cert, (uint64_t)time(NULL));
  switch (rc) {
  case 0: return 0;
  case LM_TRUST_ECERT_UNTRUSTED:
    errf(err, cap, "certificate %s was not issued by any trusted cluster "
             "key (check --cluster-key)", cert_path);
    break;
  case LM_TRUST_ECERT_EXPIRED:
    fmt_date(d, sizeof d, cert->expiry);
    errf(err, cap, "certificate %s expired on %s; issue a new one with "
             "`livemesh keygen node`", cert_path, d);
    break;
  case LM_TRUST_ECERT_NOTYET:
    fmt_date(d, sizeof d, cert->not_before);
    errf(err, cap, "certificate %s is not valid before %s (is the clock "
             "right?)", cert_path, d);
    break;
  default:
    errf(err, cap, "certificate %s: %s", cert_path,
             lm_trust_strerror(rc));
  }
  return -1;
}

static int load_identity(agent_t *a, char *err, size_t cap) {
  const char *kpath = a->cfg.node_key, *cpath = a->cfg.node_cert;
  if (check_readable("node key", kpath, err, cap) ||
      check_readable("node certificate", cpath, err, cap)) {
    size_t k = strlen(err);
    errf(err + k, cap - k, " (create the node's files with `livemesh "
             "keygen node --cluster-key cluster.key --name NAME --out DIR`)");
    return -1;
  }
  struct stat st;
  if (stat(kpath, &st) == 0 && (st.st_mode & 077))
    alog(a, LM_LOG_WARN, "node key %s is readable by others (mode %03o); "
         "chmod 600 it", kpath, (unsigned)(st.st_mode & 0777));
  lm_keypair_t kp;
  int rc = lm_keypair_load(&kp, kpath);
  if (rc) {
    errf(err, cap, "node key %s: %s", kpath, lm_trust_strerror(rc));
    return -1;
  }
  rc = lm_cert_load(&a->cert, cpath);
  if (rc) {
    lm_keypair_wipe(&kp);
    errf(err, cap, "node certificate %s: %s", cpath,
             lm_trust_strerror(rc));
    return -1;
  }
  if (memcmp(a->cert.node_pk, kp.pk, sizeof kp.pk) != 0) {
    lm_keypair_wipe(&kp);
    errf(err, cap, "certificate %s is not for the key in %s", cpath,
             kpath);
    return -1;
  }
  if (a->cfg.name && strcmp(a->cfg.name, a->cert.name) != 0) {
    lm_keypair_wipe(&kp);
    errf(err, cap, "--name %s does not match the certificate %s, which "
             "is for \"%s\"", a->cfg.name, cpath, a->cert.name);
    return -1;
  }
  memcpy(a->id.pk, kp.pk, sizeof a->id.pk);
  memcpy(a->id.sk, kp.sk, sizeof a->id.sk);
  lm_keypair_wipe(&kp);
  if (lm_cert_encode(a->id.cert, sizeof a->id.cert, &a->id.cert_len,
                     &a->cert)) {
    errf(err, cap, "node certificate %s: cannot encode it", cpath);
    return -1;
  }
  snprintf(a->name, sizeof a->name, "%s", a->cert.name);
  uint64_t now = (uint64_t)time(NULL);
  if (a->cert.expiry > now &&
      a->cert.expiry - now < CERT_WARN_DAYS * 86400ull) {
    char d[40];
    fmt_date(d, sizeof d, a->cert.expiry);
    alog(a, LM_LOG_WARN, "certificate %s expires on %s; renew it soon",
         cpath, d);
  }
  return 0;
}

/* One agent per data directory: two would share a generation file and an
 * identity, and each would refute the other forever. */
static int lock_data_dir(agent_t *a, char *err, size_t cap) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/agent.lock", a->cfg.data_dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    errf(err, cap, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = "";
    ssize_t k = pread(fd, pid, sizeof pid - 1, 0);
    pid[k > 0 ? k : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    errf(err, cap, "another agent%s%s%s is running with data dir %s",
             pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "",
             a->cfg.data_dir);
    close(fd);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    /* the pid is only a hint for the message above */
  }
  a->lock_fd = fd;
  return 0;
}

/* max(stored + 1, now), written back (temp file, fsync, rename, fsync of
 * the directory) before the node starts: a restarted agent always comes
 * back with a higher generation, even if the clock went backwards. */
static int bump_generation(agent_t *a, char *err, size_t cap) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/generation", a->cfg.data_dir);
  uint64_t stored = 0;
  int have = 0;
  FILE *f = fopen(path, "r");
  if (f) {
    char line[64] = "";
    if (fgets(line, sizeof line, f)) {
      char *end;
      errno = 0;
      unsigned long long v = strtoull(line, &end, 10);
      while (*end == '\n' || *end == ' ' || *end == '\r')
        end++;
      if (!errno && end != line && !*end && v <= UINT32_MAX) {
        stored = v;
        have = 1;
      }
    }
    fclose(f);
    if (!have)
      alog(a, LM_LOG_WARN, "%s is damaged; starting from the clock", path);
  } else if (errno != ENOENT) {
    errf(err, cap, "%s: %s", path, strerror(errno));
    return -1;
  }
  uint64_t now = (uint64_t)time(NULL);
  uint64_t gen = have && stored + 1 > now ? stored + 1 : now;
  if (gen > UINT32_MAX) {
    errf(err, cap, "%s: the generation cannot grow past %u", path,
             UINT32_MAX);
    return -1;
  }
  char text[32];
  int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)gen);
  if (lm__write_atomic(a->cfg.data_dir, "generation", text, (size_t)n, err,
                       cap))
    return -1;
  a->generation = (uint32_t)gen;
  return 0;
}

/* ---- events ---- */

static void on_event(lm_node_t *node, const lm_event_t *ev, void *ud) {
  (void)node;
  agent_t *a = ud;
  const lm_member_t *m = &ev->member;
  switch (ev->kind) {
  case LM_EV_JOIN:
    if (!m->is_self && !a->sd.ready && !a->stopping) {
      char st[128];
      snprintf(st, sizeof st, "joined the mesh (first peer %s)", m->name);
      lm__sdnotify_ready(&a->sd, st);
    }
    if (ev->fresh)
      alog(a, LM_LOG_INFO, "member %s joined at %s (generation %u)", m->name,
           m->addr, m->generation);
    else
      alog(a, LM_LOG_INFO, "member %s is alive again at %s (was %s; "
           "generation %u)", m->name, m->addr,
           lm_status_name(ev->old_status), m->generation);
    break;
  case LM_EV_SUSPECT:
    alog(a, LM_LOG_WARN, "member %s is suspect", m->name);
    break;
  case LM_EV_DEAD:
    alog(a, LM_LOG_WARN, "member %s is dead", m->name);
    break;
  case LM_EV_LEFT:
    alog(a, LM_LOG_INFO, "member %s left", m->name);
    break;
  case LM_EV_UPDATE:
    alog(a, LM_LOG_INFO, "member %s updated (at %s)", m->name, m->addr);
    break;
  case LM_EV_REFUTE:
    alog(a, LM_LOG_WARN, "refuted a suspicion about this node (now version "
         "%u)", m->version);
    break;
  case LM_EV_REAPED:
    alog(a, LM_LOG_DEBUG, "forgot member %s", m->name);
    break;
  }
}

/* ---- stopping ---- */

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static void on_node_closed(lm_node_t *node, int status, void *ud) {
  (void)node, (void)status;
  alog(ud, LM_LOG_DEBUG, "node closed");
}

static void on_ctl_closed(void *ud) { (void)ud; }

static void reply_waiters(agent_t *a, json_t *resp_template) {
  for (size_t i = 0; i < a->nwaiters; i++) {
    if (resp_template)
      a->waiters[i].to.ops->answer(&a->waiters[i].to,
                                   json_deep_copy(resp_template));
    json_decref(a->waiters[i].id);
  }
  free(a->waiters);
  a->waiters = NULL;
  a->nwaiters = 0;
  json_decref(resp_template);
}

static void finish_stop(agent_t *a, int leave_status) {
  if (a->stopping >= 2)
    return;
  a->stopping = 2;
  if (leave_status == 0)
    alog(a, LM_LOG_INFO, "left the mesh; stopping");
  else
    alog(a, LM_LOG_WARN, "the leave was not confirmed (%s); stopping anyway",
         lm_strerror(leave_status));
  reply_waiters(a, json_pack("{s:b, s:s, s:b}", "ok", 1, "name", a->name,
                             "left", leave_status == 0));
  lm__agent_snapshot_stop(a);
  lm__agent_bridge_stop(a);
  if (a->node) {
    lm_node_t *n = a->node;
    a->node = NULL;
    lm_node_close(n, on_node_closed, a);
  }
  if (a->ctl) {
    lm__ctl_server_t *s = a->ctl;
    a->ctl = NULL;
    lm__ctl_server_close(s, on_ctl_closed, a);
  }
  lm__probes_close(a->probes);
  a->probes = NULL;
  if (a->http) {
    lm__http_t *h = a->http;
    a->http = NULL;
    lm__http_close(h);
  }
  if (a->handles_ready) {
    a->handles_ready = 0;
    uv_close((uv_handle_t *)&a->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&a->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&a->sig_hup, on_handle_closed);
    uv_close((uv_handle_t *)&a->leave_guard, on_handle_closed);
    lm__sdnotify_close(&a->sd);
  }
}

static void on_left(lm_node_t *node, int status, void *ud) {
  (void)node;
  agent_t *a = ud;
  if (a->stopping == 1)
    finish_stop(a, status);
}

static void on_leave_guard(uv_timer_t *t) {
  agent_t *a = t->data;
  if (a->stopping == 1)
    finish_stop(a, LM_ETIMEDOUT);
}

void lm__agent_begin_stop(agent_t *a, const char *why) {
  if (a->stopping == 1) {
    alog(a, LM_LOG_WARN, "%s again: stopping without waiting for the leave",
         why);
    finish_stop(a, LM_ETIMEDOUT);
    return;
  }
  if (a->stopping)
    return;
  a->stopping = 1;
  alog(a, LM_LOG_INFO, "%s: leaving the mesh", why);
  lm__sdnotify_stopping(&a->sd, "leaving the mesh");
  int rc = a->node ? lm_node_leave(a->node, on_left, a) : LM_ESTATE;
  if (rc) {
    finish_stop(a, rc);
    return;
  }
  if (a->stopping == 1 && a->handles_ready)
    uv_timer_start(&a->leave_guard, on_leave_guard, LEAVE_GUARD_MS, 0);
}

/* ---- reload ---- */

typedef struct reload_ctx {
  agent_t *a;
  int restart_needed, applied;
} reload_ctx_t;

static void on_diff(void *ud, const char *key, const char *old_v,
                    const char *new_v) {
  reload_ctx_t *r = ud;
  /* applied live, or reported on their own below */
  if (!strcmp(key, "log_level") || !strcmp(key, "log_format") ||
      !strcmp(key, "join") || !strcmp(key, "cluster_keys"))
    return;
  r->restart_needed++;
  alog(r->a, LM_LOG_WARN, "reload: %s changed from %s to %s; it takes effect "
       "when the agent restarts", key, old_v, new_v);
}

static int key_in(const uint8_t *k, uint8_t (*set)[LM_PUBLICKEY_BYTES],
                  size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!memcmp(set[i], k, LM_PUBLICKEY_BYTES))
      return 1;
  return 0;
}

static void reload_keys(agent_t *a, const lm__config_t *nc,
                        reload_ctx_t *r) {
  char err[512];
  int rc;
  uint8_t(*keys)[LM_PUBLICKEY_BYTES] = NULL;
  size_t n = 0;
  if (load_trusted(&nc->cluster_keys, &keys, &n, err, sizeof err)) {
    alog(a, LM_LOG_ERROR, "reload: %s; the trusted keys stay as they are",
         err);
    return;
  }
  char added[512] = "", removed[512] = "";
  for (size_t i = 0; i < n; i++)
    if (!key_in(keys[i], a->trusted, a->ntrusted)) {
      char t[LM_KEY_TEXT_LEN + 1];
      lm_key_to_text(t, sizeof t, keys[i]);
      size_t k = strlen(added);
      snprintf(added + k, sizeof added - k, "%s%s", k ? ", " : "", t);
    }
  for (size_t i = 0; i < a->ntrusted; i++)
    if (!key_in(a->trusted[i], keys, n)) {
      char t[LM_KEY_TEXT_LEN + 1];
      lm_key_to_text(t, sizeof t, a->trusted[i]);
      size_t k = strlen(removed);
      snprintf(removed + k, sizeof removed - k, "%s%s", k ? ", " : "", t);
    }
  if (added[0] || removed[0]) {
    if (check_cert(&a->cert, a->cfg.node_cert, keys, n, err, sizeof err)) {
      alog(a, LM_LOG_ERROR, "reload: with the new keys, %s; the trusted keys "
           "stay as they are", err);
    } else if ((rc = lm_node_set_trusted(a->node,
                                         (const uint8_t(*)[32])keys, n))) {
      alog(a, LM_LOG_ERROR, "reload: cannot apply the new trusted keys: %s",
           lm_strerror(rc));
    } else {
      alog(a, LM_LOG_INFO, "reload: trusted cluster keys now in force "
           "(added: %s; removed: %s)", added[0] ? added : "none",
           removed[0] ? removed : "none");
      free(a->trusted);
      a->trusted = keys;
      a->ntrusted = n;
      keys = NULL;
      r->applied++;
    }
  }
  free(keys);
}

/* A renewed certificate on disk is only used by the next start; say so,
 * and whether the trusted keys would accept it. */
static void reload_cert(agent_t *a, const lm__config_t *nc, reload_ctx_t *r) {
  lm_cert_t cert;
  char err[512];
  int rc = lm_cert_load(&cert, nc->node_cert);
  if (rc) {
    alog(a, LM_LOG_ERROR, "reload: node certificate %s: %s; a restart would "
         "fail", nc->node_cert, lm_trust_strerror(rc));
    return;
  }
  uint8_t now_raw[LM_CERT_MAX], new_raw[LM_CERT_MAX];
  size_t now_len = 0, new_len = 0;
  if (lm_cert_encode(now_raw, sizeof now_raw, &now_len, &a->cert) ||
      lm_cert_encode(new_raw, sizeof new_raw, &new_len, &cert) ||
      (now_len == new_len && !memcmp(now_raw, new_raw, now_len)))
    return;
  r->restart_needed++;
  char d[40];
  fmt_date(d, sizeof d, cert.expiry);
  alog(a, LM_LOG_WARN, "reload: the certificate in %s changed (for \"%s\", "
       "valid until %s); it is used from the next restart", nc->node_cert,
       cert.name, d);
  uint8_t(*keys)[LM_PUBLICKEY_BYTES] = NULL;
  size_t n = 0;
  if (load_trusted(&nc->cluster_keys, &keys, &n, err, sizeof err) == 0 &&
      check_cert(&cert, nc->node_cert, keys, n, err, sizeof err))
    alog(a, LM_LOG_ERROR, "reload: %s: a restart would fail", err);
  free(keys);
}

static void reload(agent_t *a) {
  char err[1024];
  lm__config_t nc;
  alog(a, LM_LOG_INFO, "SIGHUP: reloading%s%s",
       a->cfg.config_file ? " " : "",
       a->cfg.config_file ? a->cfg.config_file : "");
  if (lm__config_load(&nc, a->argc, a->argv, NULL, err, sizeof err) !=
      LM__CFG_OK) {
    alog(a, LM_LOG_ERROR, "reload: %s; keeping the running configuration",
         err);
    return;
  }
  reload_ctx_t r = {a, 0, 0};
  int applied = 0;
  if (nc.log_level != a->log_level) {
    int old = a->log_level;
    a->log_level = nc.log_level > old ? nc.log_level : old; /* log it */
    alog(a, LM_LOG_INFO, "reload: log level %s -> %s", lm__log_level_name(old),
         lm__log_level_name(nc.log_level));
    a->log_level = a->cfg.log_level = nc.log_level;
    if (a->node)
      lm_node_set_log_level(a->node, a->log_level);
    applied++;
  }
  if (nc.log_format != a->log_format) {
    a->log_format = a->cfg.log_format = nc.log_format;
    alog(a, LM_LOG_INFO, "reload: log format is now %s",
         nc.log_format == LM__LOGFMT_JSON ? "json" : "text");
    applied++;
  }
  reload_keys(a, &nc, &r);
  reload_cert(a, &nc, &r);
  applied += r.applied;
  /* seeds that were not there before: join through them now */
  const char *fresh[64];
  size_t nf = 0;
  for (size_t i = 0; i < nc.join.n && nf < 64; i++) {
    int known = 0;
    for (size_t j = 0; j < a->cfg.join.n; j++)
      known |= !strcmp(nc.join.v[i], a->cfg.join.v[j]);
    if (!known)
      fresh[nf++] = nc.join.v[i];
  }
  if (nf && a->node) {
    int rc = lm_node_join(a->node, fresh, nf);
    if (rc)
      alog(a, LM_LOG_ERROR, "reload: cannot join the new seeds: %s",
           lm_strerror(rc));
    else
      alog(a, LM_LOG_INFO, "reload: joining through %zu new seed(s), first "
           "%s", nf, fresh[0]);
    applied++;
  }
  lm__strlist_t tmp = a->cfg.join;
  a->cfg.join = nc.join;
  nc.join = tmp;
  lm__config_diff(&a->cfg, &nc, on_diff, &r);
  /* the services the config file declares: re-synced at once */
  lm__agent_services_reload(a, nc.services);
  if (!applied && !r.restart_needed)
    alog(a, LM_LOG_INFO, "reload: nothing changed");
  else
    alog(a, LM_LOG_INFO, "reload: %d change(s) applied, %d need a restart",
         applied, r.restart_needed);
  lm__config_free(&nc);
}

static void on_signal(uv_signal_t *s, int signum) {
  agent_t *a = s->data;
  if (signum == SIGHUP) {
    lm__sdnotify_reloading(&a->sd, "reloading the configuration");
    reload(a);
    lm__sdnotify_reloaded(&a->sd, "running (configuration reloaded)");
  } else
    lm__agent_begin_stop(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- control requests ---- */

/* Every request goes through the one command table (commands.c). */
static void on_request(lm__ctl_server_t *srv, uint64_t conn, json_t *req,
                       void *ud) {
  (void)srv;
  lm__reply_to_t to = {&lm__ctl_reply_ops, ud, conn,
                       json_object_get(req, "id")};
  lm__commands_dispatch(ud, req, &to);
}

static void on_conn_closed(lm__ctl_server_t *srv, uint64_t conn, void *ud) {
  (void)srv;
  lm__agent_conn_closed(ud, conn);
}

/* ---- main ---- */

/* With port 0 the runtime lets UDP pick a port and then listens for TCP on
 * the same number, which some TCP socket may already hold: then it fails
 * with EADDRINUSE and another try picks another port. */
static int start_node(agent_t *a, const lm_options_t *o, char *err,
                      size_t cap) {
  int rc = lm_node_new(&a->node, &a->loop, o);
  if (rc) {
    errf(err, cap, "cannot create the node: %s", lm_strerror(rc));
    return -1;
  }
  if ((rc = lm_node_start(a->node)) != 0) {
    lm_node_close(a->node, NULL, NULL);
    a->node = NULL;
    errf(err, cap, "cannot start the node on %s: %s", a->cfg.bind,
         lm_strerror(rc));
    return -1;
  }
  return 0;
}

static void agent_free(agent_t *a) {
  reply_waiters(a, NULL);
  lm__agent_services_free(a);
  lm_identity_wipe(&a->id);
  sodium_memzero(a->secret, sizeof a->secret);
  free(a->trusted);
  if (a->lock_fd >= 0)
    close(a->lock_fd);
  lm__config_free(&a->cfg);
}

int lm__cmd_agent(int argc, char **argv) {
  agent_t a;
  memset(&a, 0, sizeof a);
  a.lock_fd = -1;
  a.sd.fd = -1;
  a.argc = argc - 1;
  a.argv = argv + 1;
  a.log_level = LM_LOG_INFO;
  a.started_ms = lm__unix_ms();
  char err[1024];
  int rc = lm__config_load(&a.cfg, a.argc, a.argv, NULL, err, sizeof err);
  if (rc == LM__CFG_HELP) {
    lm__config_usage();
    return LM__EXIT_OK;
  }
  if (rc != LM__CFG_OK) {
    fprintf(stderr, "livemesh agent: %s\n", err);
    return LM__EXIT_USAGE;
  }
  a.log_level = a.cfg.log_level;
  a.log_format = a.cfg.log_format;
  if (a.cfg.print_config) {
    char *s = lm__config_to_json(&a.cfg);
    if (s)
      printf("%s\n", s);
    free(s);
    agent_free(&a);
    return LM__EXIT_OK;
  }
  int code = LM__EXIT_USAGE;
  int mk = lm__mkdirs(a.cfg.data_dir, 0700);
  if (mk) {
    errf(err, sizeof err, "data dir %s: %s", a.cfg.data_dir,
             strerror(-mk));
    goto fail;
  }
  if (load_identity(&a, err, sizeof err) ||
      lm__agent_declared_check(&a, err, sizeof err) ||
      load_trusted(&a.cfg.cluster_keys, &a.trusted, &a.ntrusted, err,
                   sizeof err) ||
      check_cert(&a.cert, a.cfg.node_cert, a.trusted, a.ntrusted, err,
                 sizeof err))
    goto fail;
  if (a.cfg.encrypt_key) {
    int r2;
    if (check_readable("encrypt key", a.cfg.encrypt_key, err, sizeof err))
      goto fail;
    if ((r2 = lm_secret_load(a.secret, a.cfg.encrypt_key)) != 0) {
      errf(err, sizeof err, "encrypt key %s: %s (expected a file from "
               "`livemesh keygen secret`)", a.cfg.encrypt_key,
               lm_trust_strerror(r2));
      goto fail;
    }
    a.has_secret = 1;
  }
  if (lock_data_dir(&a, err, sizeof err))
    goto fail;
  code = LM__EXIT_FAIL;
  if ((rc = uv_loop_init(&a.loop))) {
    errf(err, sizeof err, "event loop: %s", uv_strerror(rc));
    goto fail;
  }
  rc = lm__ctl_server_new(&a.ctl, &a.loop, a.cfg.socket, a.cfg.socket_group,
                          on_request, on_ctl_log, &a, err, sizeof err);
  if (rc) {
    if (rc == -EADDRINUSE || rc == -EEXIST || rc == -ENOENT)
      code = LM__EXIT_USAGE;
    goto fail_loop;
  }
  lm__ctl_server_on_close(a.ctl, on_conn_closed);
  if (bump_generation(&a, err, sizeof err))
    goto fail_loop;
  lm_options_t o;
  memset(&o, 0, sizeof o);
  o.name = a.name;
  o.bind = a.cfg.bind;
  o.advertise = a.cfg.advertise;
  o.cluster = a.cfg.cluster;
  o.identity = &a.id;
  o.trusted = (const uint8_t(*)[LM_PUBLICKEY_BYTES])a.trusted;
  o.ntrusted = a.ntrusted;
  o.secret = a.has_secret ? a.secret : NULL;
  o.generation = a.generation;
  o.probe_interval_ms = a.cfg.probe_interval_ms;
  o.probe_timeout_ms = a.cfg.probe_timeout_ms;
  o.indirect_checks = a.cfg.indirect_checks;
  o.gossip_interval_ms = a.cfg.gossip_interval_ms;
  o.pushpull_interval_ms = a.cfg.pushpull_interval_ms;
  o.suspicion_min_mult = a.cfg.suspicion_min_mult;
  o.tombstone_ms = a.cfg.tombstone_ms;
  o.on_event = on_event;
  o.event_ud = &a;
  o.log = on_node_log;
  o.log_ud = &a;
  o.log_level = a.log_level;
  o.allow_exec_checks = a.cfg.allow_exec_checks;
  o.max_concurrent_checks = a.cfg.max_concurrent_checks;
  rc = start_node(&a, &o, err, sizeof err);
  /* the node keeps its own copy of the secrets */
  lm_identity_wipe(&a.id);
  sodium_memzero(a.secret, sizeof a.secret);
  if (rc)
    goto fail_loop;
  if (a.cfg.http && lm__http_start(&a, err, sizeof err)) {
    code = LM__EXIT_USAGE;
    goto fail_loop;
  }
  uv_signal_init(&a.loop, &a.sig_term);
  uv_signal_init(&a.loop, &a.sig_int);
  uv_signal_init(&a.loop, &a.sig_hup);
  uv_timer_init(&a.loop, &a.leave_guard);
  a.sig_term.data = a.sig_int.data = a.sig_hup.data = &a;
  a.leave_guard.data = &a;
  a.handles_ready = 1;
  uv_signal_start(&a.sig_term, on_signal, SIGTERM);
  uv_signal_start(&a.sig_int, on_signal, SIGINT);
  uv_signal_start(&a.sig_hup, on_signal, SIGHUP);
  if (lm__sdnotify_init(&a.sd, &a.loop, err, sizeof err))
    alog(&a, LM_LOG_WARN, "%s", err);
  {
    char bound[LM_ADDR_STRLEN] = "?";
    lm_node_bound_addr(a.node, bound, sizeof bound);
    alog(&a, LM_LOG_INFO, "agent %s started: mesh on %s, generation %u, "
         "control socket %s, %zu trusted cluster key(s)%s", lm_version(),
         bound, a.generation, a.cfg.socket, a.ntrusted,
         a.has_secret ? ", encrypted" : "");
  }
  if ((rc = lm__probes_new(&a.probes, &a.loop, a.node)))
    alog(&a, LM_LOG_ERROR, "no loop watchdog (ready and live will fail): %s",
         lm_strerror(rc));
  lm__agent_services_start(&a);
  lm__agent_snapshot_start(&a);
  if (lm__agent_bridge_start(&a, err, sizeof err) != 0) {
    /* a bad bridge option: say so and stop, like any configuration error */
    alog(&a, LM_LOG_ERROR, "bridge: %s", err);
    a.exit_code = LM__EXIT_USAGE;
    lm__agent_begin_stop(&a, "the bridge cannot start");
  }
  if (a.cfg.join.n) {
    rc = lm_node_join(a.node, (const char *const *)a.cfg.join.v,
                      a.cfg.join.n);
    if (rc)
      alog(&a, LM_LOG_ERROR, "cannot join: %s", lm_strerror(rc));
    else
      alog(&a, LM_LOG_INFO, "joining through %zu seed(s): %s%s",
           a.cfg.join.n, a.cfg.join.v[0], a.cfg.join.n > 1 ? ", ..." : "");
  } else {
    alog(&a, LM_LOG_INFO, "no seeds to join: waiting for others to join "
         "this node");
  }
  /* systemd: ready once joined (on_event), or now for a node alone */
  if (a.cfg.join.n && !a.sd.ready)
    lm__sdnotify_status(&a.sd, "joining the mesh");
  else if (!a.cfg.join.n)
    lm__sdnotify_ready(&a.sd, "running alone: waiting for others to join");
  uv_run(&a.loop, UV_RUN_DEFAULT);
  if ((rc = uv_loop_close(&a.loop)))
    fprintf(stderr, "livemesh agent: the event loop did not close cleanly: "
            "%s\n", uv_strerror(rc));
  alog(&a, LM_LOG_INFO, "stopped");
  agent_free(&a);
  return a.exit_code;

fail_loop:
  if (a.node) {
    lm_node_close(a.node, NULL, NULL);
    a.node = NULL;
  }
  if (a.ctl) {
    lm__ctl_server_close(a.ctl, NULL, NULL);
    a.ctl = NULL;
  }
  uv_run(&a.loop, UV_RUN_DEFAULT);
  uv_loop_close(&a.loop);
fail:
  fprintf(stderr, "livemesh agent: %s\n", err);
  agent_free(&a);
  return code;
}
