/*
 * services.c: the services of a node, and how they travel.
 *
 * Local services: registered through the API, each with at most one check
 * run on the node's loop (mesh/checks). Their state is published as one
 * service list, signed by this node's key and numbered by a sequence that
 * only grows (generation in the high 32 bits, so a restart never goes
 * back). The list's sequence rides in this node's alive record (8 bytes of
 * its metadata, whatever the number of services), so the list itself never
 * rides on gossip.
 *
 * Remote services: a member whose record announces a sequence newer than
 * the list held is asked for it (a small datagram); the list comes back
 * whole, in a datagram when it fits and over the stream when it does not.
 * Any member holding a list at least as new may answer: lists are relayed
 * verbatim and checked against their author's key, so a relay can delay a
 * list but never forge or alter one. Nothing is sent to a member that
 * already holds the list: it is only sent when asked for.
 *
 * The messages (REQ, LIST) are in svc_wire.h; the list's body is store/'s
 * encoding (store/svc_codec.h); its signature is lm_svc_sign's (trust.h).
 */
#define _GNU_SOURCE
#include "node_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store.h"
#include "svc_codec.h"
#include "svc_wire.h"
#include "swim_proto.h"

#define SVC_TICK_MS 100
#define SVC_RETRY_MS 1000
#define SVC_RETRY_MAX_MS 5000
#define SVC_PUBLISH_DELAY_MS 10
#define SVC_SWEEP_MS 1000 /* maintenance ends, missed lists */

/* ---- local services ---- */

typedef struct lsvc {
  struct lsvc *next;
  uint8_t uuid[LM_UUID_LEN];
  char *type, *name, *region;
  int32_t worker, pid;
  uint16_t port;
  char **tags;
  size_t ntags;
  char **mkeys, **mvals;
  size_t nmeta;
  int64_t created_ms;
  /* its check, if any */
  int has_check;
  lm__check_spec_t cspec; /* strings below */
  char *c_url, *c_addr, *c_cmd;
  lm__check_t *check;
  lm_svc_status_t check_status;
  char *check_out; /* whole, up to LM_CHECK_OUTPUT_MAX */
  /* what it announces */
  int in_maint;
  int64_t maint_until_ms;
  lm_svc_status_t status;
  int64_t since_ms;
  char cause[LM_SVC_CAUSE_MAX + 1];
  char note[LM_SVC_NOTE_MAX + 1];
  lm_node_t *node;
} lsvc_t;

/* A member whose newer list we still have to fetch. */
typedef struct want {
  uint8_t id[SWIM_ID_LEN];
  uint64_t seq;
  uint64_t next_ms; /* loop time of the next request */
  unsigned tries;
} want_t;

/* A user's watch, relaying the store's events to the loop thread. */
typedef struct watch {
  struct watch *next;
  lm_node_t *node;
  uint64_t id, store_id;
  lm_watch_cb cb;
  void *ud;
  int removed;
} watch_t;

/* A store event copied for delivery after the lock is released. */
typedef struct qev {
  watch_t *w;
  lm_watch_event_t ev;
  char *strs; /* type, host, name, old, new, cause, NUL-separated */
} qev_t;

struct lm__svc {
  lm_store_t *store;
  lm__checker_t *checker;
  int checker_closed;
  uv_timer_t tick, announce;
  int handles_open;
  lsvc_t *list;
  size_t count;
  uint32_t counter; /* low half of the next seq */
  uint64_t seq;     /* of the list published last */
  uint64_t announced_seq;
  want_t *wants;
  size_t nwants, capwants;
  watch_t *watches;
  uint64_t next_watch_id;
  qev_t *q;
  size_t nq, capq, qhead;
  int delivering;
  uint64_t drops[LM__SVC_DROP_COUNT];
  uint64_t lists_sent, lists_received, requests_sent;
  uint64_t last_sweep;
  int http_unavailable_logged;
};

static char *sdup(const char *s) { return strdup(s ? s : ""); }

static void lsvc_free(lsvc_t *s) {
  if (!s)
    return;
  free(s->type);
  free(s->name);
  free(s->region);
  for (size_t i = 0; i < s->ntags; i++)
    free(s->tags[i]);
  free(s->tags);
  for (size_t i = 0; i < s->nmeta; i++) {
    free(s->mkeys[i]);
    free(s->mvals[i]);
  }
  free(s->mkeys);
  free(s->mvals);
  free(s->c_url);
  free(s->c_addr);
  free(s->c_cmd);
  free(s->check_out);
  free(s);
}

static lsvc_t *lsvc_find(struct lm__svc *S, const uint8_t uuid[LM_UUID_LEN]) {
  for (lsvc_t *s = S->list; s; s = s->next)
    if (!memcmp(s->uuid, uuid, LM_UUID_LEN))
      return s;
  return NULL;
}

/* The record as announced: pointers into `s` and `checks` (one slot). */
static void lsvc_record(const lsvc_t *s, const char *host, lm_service_t *r,
                        lm_check_state_t *check, int whole_output) {
  memset(r, 0, sizeof *r);
  memcpy(r->uuid, s->uuid, LM_UUID_LEN);
  r->type = s->type;
  r->name = s->name;
  r->host = host;
  r->region = s->region;
  r->worker = s->worker;
  r->pid = s->pid;
  r->port = s->port;
  r->created_ms = s->created_ms;
  r->status = s->status;
  r->since_ms = s->since_ms;
  r->cause = s->cause;
  r->note = s->note;
  r->maint_until_ms = s->in_maint ? s->maint_until_ms : 0;
  r->tags = (const char *const *)s->tags;
  r->ntags = s->ntags;
  r->meta_keys = (const char *const *)s->mkeys;
  r->meta_values = (const char *const *)s->mvals;
  r->nmeta = s->nmeta;
  if (s->has_check) {
    check->kind = s->cspec.kind;
    check->status = s->check_status;
    check->output = s->check_out ? s->check_out : "";
    (void)whole_output;
    r->checks = check;
    r->nchecks = 1;
  }
}

/* ---- publishing this node's list ---- */

/* The 8 bytes this node's alive record carries: the seq of its list. */
size_t lm__svc_meta(const lm_node_t *n, uint8_t out[LM__SVC_META_LEN]) {
  uint64_t seq = n->svc ? n->svc->announced_seq : 0;
  for (int i = 0; i < 8; i++)
    out[i] = (uint8_t)(seq >> (56 - 8 * i));
  return LM__SVC_META_LEN;
}

/* The seq a member's metadata announces (0: none or too short). */
static uint64_t meta_seq(const uint8_t *meta, size_t len) {
  if (!meta || len < LM__SVC_META_LEN)
    return 0;
  const uint8_t *p = meta;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

static void on_announce(uv_timer_t *t) {
  lm_node_t *n = t->data;
  struct lm__svc *S = n->svc;
  if (!S || S->announced_seq == S->seq || !n->core)
    return;
  S->announced_seq = S->seq;
  lm__node_refresh_meta(n);
}

/* Encodes, signs and installs this node's list; the new seq goes out in
 * the alive record a moment later, so a burst of changes (a config file's
 * services at start) is announced once. Called on the loop thread. */
static int publish(lm_node_t *n) {
  struct lm__svc *S = n->svc;
  if (!n->core)
    return LM_ESTATE;
  size_t k = S->count, i = 0;
  lm_service_t *recs = calloc(k ? k : 1, sizeof *recs);
  lm_check_state_t *checks = calloc(k ? k : 1, sizeof *checks);
  if (!recs || !checks) {
    free(recs);
    free(checks);
    return LM_ENOMEM;
  }
  for (lsvc_t *s = S->list; s; s = s->next, i++)
    lsvc_record(s, n->name, &recs[i], &checks[i], 0);
  uv_mutex_lock(&n->mu);
  swim_inc_t inc = swim_self_inc(n->core);
  uint64_t seq = ((uint64_t)inc.gen << 32) | ++S->counter;
  uint8_t *body = NULL;
  size_t blen = 0;
  int64_t now = lm__node_unix_ms();
  int rc = lm_svclist_encode(&body, &blen, n->kp.pk, inc.gen, seq, now, recs,
                             k);
  uint8_t *raw = NULL;
  if (rc == 0) {
    raw = malloc(blen + LM_SIG_LEN);
    if (!raw)
      rc = LM_ENOMEM;
  }
  if (rc == 0) {
    memcpy(raw, body, blen);
    if (lm_svc_sign(raw + blen, body, blen, &n->kp))
      rc = LM_EINVAL;
  }
  if (rc == 0)
    rc = lm_store_services_set(S->store, n->kp.pk, raw, blen + LM_SIG_LEN,
                               blen, now);
  if (rc == 0)
    S->seq = seq;
  uv_mutex_unlock(&n->mu);
  free(raw);
  free(body);
  free(recs);
  free(checks);
  if (rc) {
    lm__node_log(n, LM_LOG_ERROR, "cannot publish the service list: %s",
             lm_strerror(rc));
    return rc;
  }
  if (!uv_is_active((uv_handle_t *)&S->announce))
    uv_timer_start(&S->announce, on_announce, SVC_PUBLISH_DELAY_MS, 0);
  lm__dispatch(n);
  return 0;
}

/* Recomputes a service's status; publishes when it changed or `force`. */
static void settle(lsvc_t *s, const char *cause, int force) {
  lm_svc_status_t st = s->in_maint ? LM_SVC_MAINT
                       : s->has_check ? s->check_status
                                      : LM_SVC_UP;
  if (st != s->status) {
    s->status = st;
    s->since_ms = lm__node_unix_ms();
    snprintf(s->cause, sizeof s->cause, "%s", cause);
    force = 1;
  }
  if (force)
    publish(s->node);
}

static void on_check(lm__check_t *c, lm_svc_status_t status,
                     const char *output, const char *cause, void *ud) {
  (void)c;
  lsvc_t *s = ud;
  s->check_status = status;
  free(s->check_out);
  s->check_out = sdup(output);
  settle(s, cause, 0);
}

/* ---- registration ---- */

static void errf(char *err, size_t cap, const char *fmt, const char *a) {
  if (err && cap)
    snprintf(err, cap, fmt, a);
}

/* The check a spec asks for; 0 when none, -1 when several. */
static int spec_check(const lm_service_spec_t *sp, lm__check_spec_t *c) {
  memset(c, 0, sizeof *c);
  int k = 0;
  if (sp->ttl_ms) {
    c->kind = LM_CHECK_TTL;
    c->ttl_ms = sp->ttl_ms;
    k++;
  }
  if (sp->http_check) {
    c->kind = LM_CHECK_HTTP;
    c->url = sp->http_check;
    k++;
  }
  if (sp->tcp_check) {
    c->kind = LM_CHECK_TCP;
    c->addr = sp->tcp_check;
    k++;
  }
  if (sp->exec_check) {
    c->kind = LM_CHECK_EXEC;
    c->command = sp->exec_check;
    k++;
  }
  if (k > 1)
    return -1;
  if (!k && sp->pid > 0) {
    c->kind = LM_CHECK_PROCESS;
    c->pid = sp->pid;
    k = 1;
  }
  if (!k)
    return 0;
  if (c->kind == LM_CHECK_HTTP || c->kind == LM_CHECK_TCP ||
      c->kind == LM_CHECK_EXEC) {
    c->interval_ms = sp->interval_ms ? sp->interval_ms
                                     : LM_SVC_CHECK_INTERVAL_DEFAULT_MS;
    c->timeout_ms = sp->timeout_ms ? sp->timeout_ms
                                   : LM_SVC_CHECK_TIMEOUT_DEFAULT_MS;
    if (c->timeout_ms > c->interval_ms && !sp->timeout_ms)
      c->timeout_ms = c->interval_ms;
  }
  c->failures_before_down = sp->failures_before_down;
  c->successes_before_up = sp->successes_before_up;
  return 1;
}

static lsvc_t *lsvc_from_spec(const lm_service_spec_t *sp,
                              const uint8_t uuid[LM_UUID_LEN]) {
  lsvc_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  memcpy(s->uuid, uuid, LM_UUID_LEN);
  s->type = sdup(sp->type);
  s->name = sdup(sp->name);
  s->region = sdup(sp->region);
  s->worker = sp->worker;
  s->pid = sp->pid;
  s->port = sp->port;
  s->created_ms = sp->created_ms ? sp->created_ms : lm__node_unix_ms();
  int bad = !s->type || !s->name || !s->region;
  if (sp->ntags) {
    s->tags = calloc(sp->ntags, sizeof *s->tags);
    bad |= !s->tags;
    for (size_t i = 0; s->tags && i < sp->ntags; i++)
      bad |= !(s->tags[i] = sdup(sp->tags[i]));
    s->ntags = s->tags ? sp->ntags : 0;
  }
  if (sp->nmeta) {
    s->mkeys = calloc(sp->nmeta, sizeof *s->mkeys);
    s->mvals = calloc(sp->nmeta, sizeof *s->mvals);
    bad |= !s->mkeys || !s->mvals;
    for (size_t i = 0; s->mkeys && s->mvals && i < sp->nmeta; i++) {
      bad |= !(s->mkeys[i] = sdup(sp->meta_keys[i]));
      bad |= !(s->mvals[i] = sdup(sp->meta_values[i]));
    }
    s->nmeta = s->mkeys && s->mvals ? sp->nmeta : 0;
  }
  lm__check_spec_t c;
  if (spec_check(sp, &c) > 0) {
    s->has_check = 1;
    s->cspec = c;
    if (c.url)
      bad |= !(s->c_url = sdup(c.url));
    if (c.addr)
      bad |= !(s->c_addr = sdup(c.addr));
    if (c.command)
      bad |= !(s->c_cmd = sdup(c.command));
    s->cspec.url = s->c_url;
    s->cspec.addr = s->c_addr;
    s->cspec.command = s->c_cmd;
  }
  if (bad) {
    lsvc_free(s);
    return NULL;
  }
  return s;
}

/* Everything that can be said about a spec without the loop. */
static int validate_spec(lm_node_t *n, const lm_service_spec_t *sp,
                         char *err, size_t errcap) {
  if (!sp || !sp->type || !*sp->type) {
    errf(err, errcap, "%s", "type: required");
    return LM_EINVAL;
  }
  if ((sp->ntags && !sp->tags) || (sp->nmeta && (!sp->meta_keys ||
                                                 !sp->meta_values))) {
    errf(err, errcap, "%s", "tags or meta: count without values");
    return LM_EINVAL;
  }
  if (sp->worker < -1) {
    errf(err, errcap, "%s", "worker: must be -1 (none) or >= 0");
    return LM_EINVAL;
  }
  if (sp->pid < 0) {
    errf(err, errcap, "%s", "pid: must be positive");
    return LM_EINVAL;
  }
  lm_service_t r;
  memset(&r, 0, sizeof r);
  r.type = sp->type;
  r.name = sp->name ? sp->name : "";
  r.region = sp->region ? sp->region : "";
  r.host = n->name;
  r.worker = sp->worker;
  r.pid = sp->pid;
  r.port = sp->port;
  r.cause = "registered";
  r.note = "";
  r.tags = sp->tags;
  r.ntags = sp->ntags;
  r.meta_keys = sp->meta_keys;
  r.meta_values = sp->meta_values;
  r.nmeta = sp->nmeta;
  if (lm_service_validate(&r, err, errcap))
    return LM_EINVAL;
  lm__check_spec_t c;
  int k = spec_check(sp, &c);
  if (k < 0) {
    errf(err, errcap, "%s",
         "checks: give at most one of ttl, http, tcp and exec checks");
    return LM_EINVAL;
  }
  if (k > 0 && n->svc && n->svc->checker) {
    int rc = lm__check_validate(n->svc->checker, &c, err, errcap);
    if (rc)
      return rc == LM__CHECK_EEXEC ? LM_EPERM : LM_EINVAL;
  }
  return 0;
}

static int start_check(lm_node_t *n, lsvc_t *s, char *err, size_t errcap) {
  if (!s->has_check)
    return 0;
  int rc = lm__check_start(n->svc->checker, &s->cspec, on_check, s, &s->check,
                           err, errcap);
  if (rc)
    return rc == LM__CHECK_EEXEC ? LM_EPERM : LM_EINVAL;
  s->check_status = lm__check_status(s->check);
  s->check_out = sdup(lm__check_output(s->check));
  return s->check_out ? 0 : LM_ENOMEM;
}

typedef struct reg_args {
  const lm_service_spec_t *spec;
  uint8_t uuid[LM_UUID_LEN];
  int replace;
  char *err;
  size_t errcap;
} reg_args_t;

static int apply_register(lm_node_t *n, void *arg) {
  reg_args_t *a = arg;
  struct lm__svc *S = n->svc;
  int rc = validate_spec(n, a->spec, a->err, a->errcap);
  if (rc)
    return rc;
  lsvc_t *old = lsvc_find(S, a->uuid);
  if (a->replace && !old) {
    errf(a->err, a->errcap, "%s", "uuid: no such service on this node");
    return LM_ENOTFOUND;
  }
  if (!a->replace) {
    lm_store_svc_view_t v;
    uv_mutex_lock(&n->mu);
    int held = lm_store_service_find(S->store, a->uuid, &v) == 0;
    uv_mutex_unlock(&n->mu);
    if (old || held) {
      errf(a->err, a->errcap, "%s", "uuid: already registered");
      return LM_EEXIST;
    }
    if (S->count >= LM_SVC_PER_NODE_MAX) {
      errf(a->err, a->errcap, "%s", "services: this node holds the most it may");
      return LM_ELIMIT;
    }
  }
  lsvc_t *s = lsvc_from_spec(a->spec, a->uuid);
  if (!s)
    return LM_ENOMEM;
  s->node = n;
  if (old && !a->spec->created_ms)
    s->created_ms = old->created_ms;
  if ((rc = start_check(n, s, a->err, a->errcap))) {
    if (s->check)
      lm__check_stop(s->check);
    lsvc_free(s);
    return rc;
  }
  s->status = s->has_check ? s->check_status : LM_SVC_UP;
  s->since_ms = lm__node_unix_ms();
  snprintf(s->cause, sizeof s->cause, "%s", old ? "updated" : "registered");
  if (old) {
    /* keep maintenance across an update */
    s->in_maint = old->in_maint;
    s->maint_until_ms = old->maint_until_ms;
    snprintf(s->note, sizeof s->note, "%s", old->note);
    if (s->in_maint)
      s->status = LM_SVC_MAINT;
    if (s->status == old->status) {
      s->since_ms = old->since_ms;
      snprintf(s->cause, sizeof s->cause, "%s", old->cause);
    }
    lsvc_t **pp = &S->list;
    while (*pp != old)
      pp = &(*pp)->next;
    s->next = old->next;
    *pp = s;
    if (old->check)
      lm__check_stop(old->check);
    lsvc_free(old);
  } else {
    /* appended, so the list keeps registration order */
    lsvc_t **pp = &S->list;
    while (*pp)
      pp = &(*pp)->next;
    *pp = s;
    S->count++;
  }
  return publish(n);
}

static int apply_deregister(lm_node_t *n, void *arg) {
  struct lm__svc *S = n->svc;
  const uint8_t *uuid = arg;
  lsvc_t **pp = &S->list;
  while (*pp && memcmp((*pp)->uuid, uuid, LM_UUID_LEN))
    pp = &(*pp)->next;
  if (!*pp)
    return LM_ENOTFOUND;
  lsvc_t *s = *pp;
  *pp = s->next;
  S->count--;
  if (s->check)
    lm__check_stop(s->check);
  lsvc_free(s);
  return publish(n);
}

typedef struct pf_args {
  const uint8_t *uuid;
  const char *note;
  int pass;
  int64_t until;
} pf_args_t;

static int apply_pass_fail(lm_node_t *n, void *arg) {
  pf_args_t *a = arg;
  lsvc_t *s = lsvc_find(n->svc, a->uuid);
  if (!s)
    return LM_ENOTFOUND;
  if (!s->check || s->cspec.kind != LM_CHECK_TTL)
    return LM_EINVAL;
  if (a->note)
    snprintf(s->note, sizeof s->note, "%s", a->note);
  /* the status callback settles and publishes when the status changes */
  int rc = a->pass ? lm__check_pass(s->check, a->note)
                   : lm__check_fail(s->check, a->note);
  return rc ? LM_EINVAL : 0;
}

static int apply_maint(lm_node_t *n, void *arg) {
  pf_args_t *a = arg;
  lsvc_t *s = lsvc_find(n->svc, a->uuid);
  if (!s)
    return LM_ENOTFOUND;
  if (a->pass) { /* on */
    s->in_maint = 1;
    s->maint_until_ms = a->until;
    snprintf(s->note, sizeof s->note, "%s", a->note ? a->note : "");
    settle(s, "maintenance", 1);
  } else {
    if (!s->in_maint)
      return 0;
    s->in_maint = 0;
    s->maint_until_ms = 0;
    s->note[0] = 0;
    settle(s, "maintenance ended", 1);
  }
  return 0;
}

/* Maintenance windows that end by themselves. */
static void expire_maint(lm_node_t *n) {
  int64_t now = lm__node_unix_ms();
  for (lsvc_t *s = n->svc->list; s; s = s->next)
    if (s->in_maint && s->maint_until_ms && now >= s->maint_until_ms) {
      s->in_maint = 0;
      s->maint_until_ms = 0;
      s->note[0] = 0;
      settle(s, "maintenance ended", 1);
    }
}

/* ---- remote lists: asking, answering, accepting ---- */

static want_t *want_find(struct lm__svc *S, const uint8_t id[SWIM_ID_LEN]) {
  for (size_t i = 0; i < S->nwants; i++)
    if (!memcmp(S->wants[i].id, id, SWIM_ID_LEN))
      return &S->wants[i];
  return NULL;
}

static void want_drop(struct lm__svc *S, const uint8_t id[SWIM_ID_LEN]) {
  want_t *w = want_find(S, id);
  if (w)
    *w = S->wants[--S->nwants];
}

static void want(lm_node_t *n, const uint8_t id[SWIM_ID_LEN], uint64_t seq) {
  struct lm__svc *S = n->svc;
  want_t *w = want_find(S, id);
  if (w) {
    if (seq > w->seq) {
      w->seq = seq;
      w->tries = 0;
      w->next_ms = 0;
    }
  } else {
    if (S->nwants == S->capwants) {
      size_t cap = S->capwants ? S->capwants * 2 : 16;
      want_t *v = realloc(S->wants, cap * sizeof *v);
      if (!v)
        return; /* the periodic sweep asks again */
      S->wants = v;
      S->capwants = cap;
    }
    w = &S->wants[S->nwants++];
    memcpy(w->id, id, SWIM_ID_LEN);
    w->seq = seq;
    w->tries = 0;
    w->next_ms = 0;
  }
  if (uv_is_active((uv_handle_t *)&S->tick))
    uv_timer_start(&S->tick, lm__svc_on_tick, 0, SVC_TICK_MS);
}

/* Level-triggered: whatever the event, the member is re-read from the core
 * and set in the store as it now is. Called with the lock held, from the
 * core's event callback. */
void lm__svc_member_event(lm_node_t *n, const swim_event_t *ev) {
  struct lm__svc *S = n->svc;
  if (!S)
    return;
  int64_t now = lm__node_unix_ms();
  /* cut off: the view is held as it was (snapshot.c) */
  if (!ev->member.is_self && lm__snap_frozen(n))
    return;
  if (ev->kind == SWIM_EV_REAPED) {
    lm__snap_member_change(n, ev->member.id, LM_STORE_UNKNOWN, 1);
    lm_store_member_remove(S->store, ev->member.id, now);
    want_drop(S, ev->member.id);
    return;
  }
  swim_member_t m;
  if (swim_member_find(n->core, ev->member.id, &m))
    return;
  char addr[LM_ADDR_STRLEN];
  lm__format_swim(&m.addr, addr, sizeof addr);
  lm_store_member_t sm;
  memset(&sm, 0, sizeof sm);
  memcpy(sm.id, m.id, SWIM_ID_LEN);
  sm.name = m.name;
  sm.addr = addr;
  sm.status = (int)m.status;
  sm.gen = m.inc.gen;
  sm.ver = m.inc.ver;
  sm.since_ms = lm__core_to_unix_ms(n, m.since);
  sm.is_self = m.is_self;
  if (!m.is_self)
    lm__snap_member_change(n, m.id, sm.status, 0);
  if (lm_store_member_set(S->store, &sm, now))
    return;
  if (m.is_self)
    return;
  if (m.status == SWIM_DEAD || m.status == SWIM_LEFT) {
    want_drop(S, m.id);
    return;
  }
  uint64_t seq = meta_seq(m.meta, m.meta_len);
  lm_store_member_t held;
  if (seq && lm_store_member_find(S->store, m.id, &held) == 0 &&
      seq > held.svc_seq)
    want(n, m.id, seq);
}

static void send_request(lm_node_t *n, const swim_addr_t *to,
                         const uint8_t id[SWIM_ID_LEN], uint64_t seq) {
  uint8_t buf[128];
  size_t len = lm__svcmsg_encode_req(buf, sizeof buf, id, seq);
  if (!len)
    return;
  n->svc->requests_sent++;
  lm__core_send(n, to, buf, len);
}

/* A list goes in a datagram when it fits, else over the stream. */
static void send_list(lm_node_t *n, const swim_addr_t *to, const uint8_t *raw,
                      size_t len) {
  size_t mlen;
  uint8_t *m = lm__svcmsg_encode_list(raw, len, &mlen);
  if (!m)
    return;
  n->svc->lists_sent++;
  if (mlen <= lm__node_max_datagram(n))
    lm__core_send(n, to, m, mlen);
  else
    lm__core_send_stream(n, to, m, mlen);
  free(m);
}

static void sweep(lm_node_t *n);

/* Sends the requests that are due. */
void lm__svc_on_tick(uv_timer_t *t) {
  lm_node_t *n = t->data;
  struct lm__svc *S = n->svc;
  if (!n->core || n->state == ST_CLOSING)
    return;
  expire_maint(n);
  uint64_t now = uv_now(n->loop);
  uv_mutex_lock(&n->mu);
  if (now >= S->last_sweep + SVC_SWEEP_MS) {
    S->last_sweep = now;
    sweep(n);
  }
  for (size_t i = 0; i < S->nwants;) {
    want_t *w = &S->wants[i];
    swim_member_t m;
    lm_store_member_t held;
    if (swim_member_find(n->core, w->id, &m) ||
        m.status == SWIM_DEAD || m.status == SWIM_LEFT ||
        (lm_store_member_find(S->store, w->id, &held) == 0 &&
         held.svc_seq >= w->seq)) {
      *w = S->wants[--S->nwants];
      continue;
    }
    if (w->next_ms <= now) {
      /* the owner first; every third try, any other member that may
       * hold the list (lists are relayed verbatim) */
      swim_addr_t to = m.addr;
      if (w->tries % 3 == 2) {
        size_t cnt = swim_member_count(n->core);
        if (cnt > 2) {
          swim_member_t o;
          size_t j = 1 + (size_t)(lm__node_rand(n) % (cnt - 1));
          if (swim_member_at(n->core, j, &o) == 0 && !o.is_self &&
              (o.status == SWIM_ALIVE || o.status == SWIM_SUSPECT) &&
              memcmp(o.id, w->id, SWIM_ID_LEN))
            to = o.addr;
        }
      }
      send_request(n, &to, w->id, w->seq);
      /* a lost request or answer costs a second, three times over (a
       * request is 50 bytes and a duplicate answer is dropped before its
       * signature is checked); only then do retries back off */
      uint64_t back = (uint64_t)SVC_RETRY_MS
                      << (w->tries < 3 ? 0 : w->tries - 2 < 3 ? w->tries - 2 : 3);
      w->next_ms = now + (back < SVC_RETRY_MAX_MS ? back : SVC_RETRY_MAX_MS);
      w->tries++;
    }
    i++;
  }
  int idle = S->nwants == 0;
  uv_mutex_unlock(&n->mu);
  if (idle)
    uv_timer_start(&S->tick, lm__svc_on_tick, SVC_SWEEP_MS, SVC_SWEEP_MS);
  lm__dispatch(n);
}

static void svc_drop(lm_node_t *n, int reason, const struct sockaddr *from,
                     const char *what) {
  n->svc->drops[reason]++;
  char a[LM_ADDR_STRLEN];
  lm__format_sa(from, a, sizeof a);
  lm__node_log(n, reason == LM__SVC_DROP_STALE ? LM_LOG_DEBUG : LM_LOG_WARN,
           "dropped a service message from %s: %s", a, what);
}

static void on_request(lm_node_t *n, const struct sockaddr *from,
                       const lm__svcmsg_t *msg) {
  swim_addr_t to;
  lm__sa_to_swim(from, &to);
  for (size_t i = 0; i < msg->nreq; i++) {
    const uint8_t *raw;
    size_t len;
    uint64_t held;
    uv_mutex_lock(&n->mu);
    int have = lm_store_services_raw(n->svc->store, msg->req[i].id, &raw,
                                     &len, &held) == 0 &&
               held >= msg->req[i].seq;
    uint8_t *copy = have ? malloc(len) : NULL;
    if (copy)
      memcpy(copy, raw, len);
    uv_mutex_unlock(&n->mu);
    if (copy) {
      send_list(n, &to, copy, len);
      free(copy);
    }
  }
}

static void on_list(lm_node_t *n, const struct sockaddr *from,
                    const lm__svcmsg_t *msg) {
  struct lm__svc *S = n->svc;
  const uint8_t *raw = msg->list;
  size_t len = msg->list_len, body = len - LM_SIG_LEN;
  lm_svclist_hdr_t h;
  int rc = lm_svclist_check(&h, raw, body);
  if (rc) {
    svc_drop(n, LM__SVC_DROP_MALFORMED, from, lm_store_strerror(rc));
    return;
  }
  if (!memcmp(h.id, n->kp.pk, SWIM_ID_LEN))
    return; /* our own list, echoed back: we hold it already */
  uv_mutex_lock(&n->mu);
  swim_member_t m;
  lm_store_member_t held;
  int known = swim_member_find(n->core, h.id, &m) == 0;
  int stale = lm_store_member_find(S->store, h.id, &held) == 0 &&
              held.svc_seq >= h.seq;
  uv_mutex_unlock(&n->mu);
  if (!known) {
    svc_drop(n, LM__SVC_DROP_UNKNOWN, from, "list of an unknown member");
    return;
  }
  /* a list held already (a retry's second answer, a replay) costs no
   * signature check */
  if (stale) {
    svc_drop(n, LM__SVC_DROP_STALE, from, "service list not newer than held");
    return;
  }
  /* the author's own signature: a relay cannot forge or alter a list */
  if (lm_svc_verify(raw + body, raw, body, h.id) != 0) {
    svc_drop(n, LM__SVC_DROP_BADSIG, from,
             "service list not signed by its member");
    return;
  }
  uv_mutex_lock(&n->mu);
  rc = lm_store_services_set(S->store, h.id, raw, len, body, lm__node_unix_ms());
  if (rc == 0) {
    S->lists_received++;
    want_t *w = want_find(S, h.id);
    if (w && w->seq <= h.seq)
      want_drop(S, h.id);
  }
  uv_mutex_unlock(&n->mu);
  if (rc == LM_STORE_ESTALE)
    svc_drop(n, LM__SVC_DROP_STALE, from, "service list not newer than held");
  else if (rc)
    svc_drop(n, LM__SVC_DROP_MALFORMED, from, lm_store_strerror(rc));
  lm__dispatch(n);
}

int lm__svc_is_msg(const uint8_t *p, size_t len) {
  return lm__svcmsg_is(p, len);
}

/* A service message (lm__svc_is_msg said so), authenticated by the
 * envelope. Called on the loop thread without the lock. */
void lm__svc_recv(lm_node_t *n, const struct sockaddr *from, const uint8_t *p,
                  size_t len) {
  if (!n->svc || !n->core)
    return;
  lm__svcmsg_t msg;
  if (lm__svcmsg_decode(&msg, p, len)) {
    svc_drop(n, LM__SVC_DROP_MALFORMED, from, "malformed service message");
    return;
  }
  if (msg.kind == LM__SVCMSG_REQ)
    on_request(n, from, &msg);
  else
    on_list(n, from, &msg);
}

/* Level-triggered repair: any member whose record announces a list newer
 * than the one held is wanted, whatever events were missed. */
static void sweep(lm_node_t *n) {
  struct lm__svc *S = n->svc;
  size_t cnt = swim_member_count(n->core);
  for (size_t i = 1; i < cnt; i++) {
    swim_member_t m;
    lm_store_member_t held;
    if (swim_member_at(n->core, i, &m) ||
        (m.status != SWIM_ALIVE && m.status != SWIM_SUSPECT))
      continue;
    uint64_t seq = meta_seq(m.meta, m.meta_len);
    if (seq && lm_store_member_find(S->store, m.id, &held) == 0 &&
        seq > held.svc_seq && !want_find(S, m.id))
      want(n, m.id, seq);
  }
}

/* ---- watches ---- */

static void watch_relay(void *ud, const lm_store_event_t *e) {
  watch_t *w = ud;
  struct lm__svc *S = w->node->svc;
  if (w->removed)
    return;
  if (S->nq == S->capq) {
    if (S->qhead) { /* slide delivered events out first */
      memmove(S->q, S->q + S->qhead, (S->nq - S->qhead) * sizeof *S->q);
      S->nq -= S->qhead;
      S->qhead = 0;
    }
    if (S->nq == S->capq) {
      size_t cap = S->capq ? S->capq * 2 : 64;
      qev_t *v = realloc(S->q, cap * sizeof *v);
      if (!v)
        return;
      S->q = v;
      S->capq = cap;
    }
  }
  const char *parts[6] = {e->type ? e->type : "", e->host ? e->host : "",
                          e->name ? e->name : "", e->old_name, e->new_name,
                          e->cause ? e->cause : ""};
  size_t lens[6], total = 0;
  for (int i = 0; i < 6; i++)
    total += (lens[i] = strlen(parts[i])) + 1;
  char *strs = malloc(total);
  if (!strs)
    return;
  qev_t *q = &S->q[S->nq++];
  q->w = w;
  q->strs = strs;
  const char **dst[6] = {&q->ev.type, &q->ev.host, &q->ev.name,
                         &q->ev.old_status, &q->ev.new_status, &q->ev.cause};
  for (int i = 0; i < 6; i++) {
    memcpy(strs, parts[i], lens[i] + 1);
    *dst[i] = strs;
    strs += lens[i] + 1;
  }
  q->ev.seq = e->seq;
  q->ev.initial = e->initial;
  q->ev.kind = e->kind == LM_STORE_EV_MEMBER ? LM_WATCH_MEMBER
                                              : LM_WATCH_SERVICE;
  memcpy(q->ev.uuid, e->uuid, LM_UUID_LEN);
  q->ev.at_ms = e->at_ms;
}

/* Delivers queued watch events; on the loop thread, without the lock. */
void lm__svc_dispatch(lm_node_t *n) {
  struct lm__svc *S = n->svc;
  if (!S || S->delivering)
    return;
  S->delivering = 1;
  while (S->qhead < S->nq) {
    qev_t q = S->q[S->qhead++];
    if (!q.w->removed)
      q.w->cb(n, &q.ev, q.w->ud);
    free(q.strs);
    if (n->state == ST_CLOSING)
      break;
  }
  if (S->qhead >= S->nq)
    S->qhead = S->nq = 0;
  /* forget removed watches once nothing queued can point at them */
  if (!S->nq)
    for (watch_t **pp = &S->watches; *pp;) {
      watch_t *w = *pp;
      if (w->removed) {
        *pp = w->next;
        free(w);
      } else {
        pp = &w->next;
      }
    }
  S->delivering = 0;
}

/* ---- the public API ---- */

static int usable(lm_node_t *n) {
  if (!n)
    return LM_EINVAL;
  if (lm__forked(n))
    return LM_EFORKED;
  if (!n->svc || !n->core || n->state != ST_RUNNING)
    return LM_ESTATE;
  return 0;
}

int lm_node_service_register(lm_node_t *n, const lm_service_spec_t *spec,
                             uint8_t uuid_out[LM_UUID_LEN], char *err,
                             size_t errcap) {
  if (err && errcap)
    err[0] = 0;
  int rc = usable(n);
  if (rc)
    return rc;
  reg_args_t a = {.spec = spec, .err = err, .errcap = errcap};
  if (spec && spec->uuid)
    memcpy(a.uuid, spec->uuid, LM_UUID_LEN);
  else
    randombytes_buf(a.uuid, LM_UUID_LEN);
  if (!spec || !spec->uuid) { /* RFC 4122 version 4 */
    a.uuid[6] = (uint8_t)((a.uuid[6] & 0x0f) | 0x40);
    a.uuid[8] = (uint8_t)((a.uuid[8] & 0x3f) | 0x80);
  }
  rc = lm__node_call(n, apply_register, &a);
  if (rc == 0 && uuid_out)
    memcpy(uuid_out, a.uuid, LM_UUID_LEN);
  return rc;
}

int lm_node_service_update(lm_node_t *n, const lm_service_spec_t *spec,
                           char *err, size_t errcap) {
  if (err && errcap)
    err[0] = 0;
  int rc = usable(n);
  if (rc)
    return rc;
  if (!spec || !spec->uuid) {
    errf(err, errcap, "%s", "uuid: required to update a service");
    return LM_EINVAL;
  }
  reg_args_t a = {.spec = spec, .replace = 1, .err = err, .errcap = errcap};
  memcpy(a.uuid, spec->uuid, LM_UUID_LEN);
  return lm__node_call(n, apply_register, &a);
}

int lm_node_service_deregister(lm_node_t *n, const uint8_t uuid[LM_UUID_LEN]) {
  int rc = usable(n);
  if (rc)
    return rc;
  return uuid ? lm__node_call(n, apply_deregister, (void *)uuid) : LM_EINVAL;
}

static int pass_fail(lm_node_t *n, const uint8_t *uuid, const char *note,
                     int pass) {
  int rc = usable(n);
  if (rc)
    return rc;
  pf_args_t a = {.uuid = uuid, .note = note, .pass = pass};
  return uuid ? lm__node_call(n, apply_pass_fail, &a) : LM_EINVAL;
}

int lm_node_service_pass(lm_node_t *n, const uint8_t uuid[LM_UUID_LEN],
                         const char *note) {
  return pass_fail(n, uuid, note, 1);
}

int lm_node_service_fail(lm_node_t *n, const uint8_t uuid[LM_UUID_LEN],
                         const char *note) {
  return pass_fail(n, uuid, note, 0);
}

int lm_node_service_maint(lm_node_t *n, const uint8_t uuid[LM_UUID_LEN],
                          int64_t until_ms, const char *note) {
  int rc = usable(n);
  if (rc)
    return rc;
  if (!uuid || until_ms < 0 || (note && strlen(note) > LM_SVC_NOTE_MAX))
    return LM_EINVAL;
  pf_args_t a = {.uuid = uuid, .note = note, .pass = 1, .until = until_ms};
  return lm__node_call(n, apply_maint, &a);
}

int lm_node_service_maint_off(lm_node_t *n, const uint8_t uuid[LM_UUID_LEN]) {
  int rc = usable(n);
  if (rc)
    return rc;
  pf_args_t a = {.uuid = uuid, .pass = 0};
  return uuid ? lm__node_call(n, apply_maint, &a) : LM_EINVAL;
}

static void fill_is_up(lm_is_up_t *out, const lm_store_is_up_t *r) {
  memset(out, 0, sizeof *out);
  out->found = r->found;
  out->up = r->up;
  if (!r->found)
    return;
  out->status = (lm_svc_status_t)r->status;
  out->member_status = (lm_status_t)r->member_status;
  memcpy(out->uuid, r->uuid, LM_UUID_LEN);
  snprintf(out->type, sizeof out->type, "%s", r->type ? r->type : "");
  snprintf(out->host, sizeof out->host, "%s", r->host ? r->host : "");
  out->age_ms = r->age_ms;
}

/* One lookup by (type, host) or, when uuid is given, by uuid. Only a
 * threaded node's view can change under it: a node on the caller's loop is
 * read from that loop's thread, without a lock. No clock is read when no
 * details are asked for. */
static int is_up(lm_node_t *n, const char *type, const char *host,
                 const uint8_t *uuid, lm_is_up_t *out) {
  if (lm__forked(n))
    return LM_EFORKED;
  if (!n->svc)
    return LM_ESTATE;
  lm_store_is_up_t r;
  int64_t now = out ? lm__node_unix_ms() : 0;
  if (n->threaded)
    uv_mutex_lock(&n->mu);
  int up = uuid ? lm_store_is_up_uuid(n->svc->store, uuid, now,
                                      out ? &r : NULL)
                : lm_store_is_up(n->svc->store, type, host, now,
                                 out ? &r : NULL);
  if (out)
    fill_is_up(out, &r);
  if (n->threaded)
    uv_mutex_unlock(&n->mu);
  return up;
}

int lm_node_is_up(lm_node_t *n, const char *type, const char *host,
                  lm_is_up_t *out) {
  if (!n || !type || !host)
    return LM_EINVAL;
  return is_up(n, type, host, NULL, out);
}

int lm_node_is_up_uuid(lm_node_t *n, const uint8_t uuid[LM_UUID_LEN],
                       lm_is_up_t *out) {
  if (!n || !uuid)
    return LM_EINVAL;
  return is_up(n, NULL, NULL, uuid, out);
}

typedef struct each_args {
  lm_node_t *n;
  lm_service_each_cb cb;
  void *ud;
  int visited;
} each_args_t;

static int each_relay(void *ud, const lm_store_svc_view_t *sv) {
  each_args_t *a = ud;
  lm_service_view_t v;
  v.svc = sv->svc;
  v.effective = (lm_svc_status_t)sv->effective;
  v.member_status = (lm_status_t)sv->member_status;
  v.signed_ms = sv->signed_ms;
  v.is_local = sv->member_id && !memcmp(sv->member_id, a->n->kp.pk,
                                         SWIM_ID_LEN);
  /* this node's own services show their checks' whole, current output */
  lm_service_t local;
  lm_check_state_t check;
  /* (the local list belongs to the loop thread: other threads of a
   * threaded node get the announced copy) */
  lsvc_t *s = v.is_local && lm__node_on_loop(a->n)
                  ? lsvc_find(a->n->svc, sv->svc->uuid)
                  : NULL;
  if (s && s->check) {
    local = *sv->svc;
    check.kind = s->cspec.kind;
    check.status = lm__check_status(s->check);
    check.output = lm__check_output(s->check);
    local.checks = &check;
    local.nchecks = 1;
    v.svc = &local;
  }
  a->visited++;
  return a->cb(a->ud, &v);
}

int lm_node_services_each(lm_node_t *n, const lm_service_filter_t *f,
                          lm_service_each_cb cb, void *ud) {
  if (!n || !cb)
    return LM_EINVAL;
  if (lm__forked(n))
    return LM_EFORKED;
  if (!n->svc)
    return LM_ESTATE;
  lm_store_filter_t sf;
  lm_store_filter_init(&sf);
  if (f) {
    sf.type = f->type;
    sf.host = f->host;
    sf.region = f->region;
    sf.status = f->status;
    if (f->uuid) {
      sf.has_uuid = 1;
      memcpy(sf.uuid, f->uuid, LM_UUID_LEN);
    }
  }
  each_args_t a = {n, cb, ud, 0};
  uv_mutex_lock(&n->mu);
  lm_store_services_each(n->svc->store, &sf, each_relay, &a);
  uv_mutex_unlock(&n->mu);
  return a.visited;
}

uint64_t lm_node_view_index(lm_node_t *n) {
  if (!n || !n->svc || lm__forked(n))
    return 0;
  uv_mutex_lock(&n->mu);
  uint64_t i = lm_store_index(n->svc->store);
  uv_mutex_unlock(&n->mu);
  return i;
}

typedef struct watch_args {
  const lm_watch_filter_t *f;
  lm_watch_cb cb;
  void *ud;
  uint64_t id;
} watch_args_t;

static int apply_watch(lm_node_t *n, void *arg) {
  watch_args_t *a = arg;
  struct lm__svc *S = n->svc;
  watch_t *w = calloc(1, sizeof *w);
  if (!w)
    return LM_ENOMEM;
  w->node = n;
  w->cb = a->cb;
  w->ud = a->ud;
  w->id = ++S->next_watch_id;
  lm_store_watch_filter_t sf;
  memset(&sf, 0, sizeof sf);
  if (a->f) {
    sf.type = a->f->type;
    sf.host = a->f->host;
    if (a->f->uuid) {
      sf.has_uuid = 1;
      memcpy(sf.uuid, a->f->uuid, LM_UUID_LEN);
    }
    sf.members = a->f->members;
    sf.all = a->f->all;
  }
  uv_mutex_lock(&n->mu);
  int rc = lm_store_watch_add(S->store, &sf, watch_relay, w, lm__node_unix_ms(),
                              &w->store_id);
  uv_mutex_unlock(&n->mu);
  if (rc) {
    free(w);
    return rc == LM_STORE_ENOMEM ? LM_ENOMEM : LM_EINVAL;
  }
  w->next = S->watches;
  S->watches = w;
  a->id = w->id;
  lm__dispatch(n);
  return 0;
}

int lm_node_watch(lm_node_t *n, const lm_watch_filter_t *f, lm_watch_cb cb,
                  void *ud, uint64_t *watch_id) {
  int rc = usable(n);
  if (rc)
    return rc;
  if (!cb)
    return LM_EINVAL;
  watch_args_t a = {f, cb, ud, 0};
  rc = lm__node_call(n, apply_watch, &a);
  if (rc == 0 && watch_id)
    *watch_id = a.id;
  return rc;
}

static int apply_unwatch(lm_node_t *n, void *arg) {
  uint64_t id = *(uint64_t *)arg;
  for (watch_t *w = n->svc->watches; w; w = w->next)
    if (w->id == id && !w->removed) {
      w->removed = 1;
      uv_mutex_lock(&n->mu);
      lm_store_watch_remove(n->svc->store, w->store_id);
      uv_mutex_unlock(&n->mu);
      return 0;
    }
  return LM_ENOTFOUND;
}

int lm_node_unwatch(lm_node_t *n, uint64_t watch_id) {
  if (!n)
    return LM_EINVAL;
  if (lm__forked(n))
    return LM_EFORKED;
  if (!n->svc || !n->core)
    return LM_ESTATE;
  return lm__node_call(n, apply_unwatch, &watch_id);
}

/* ---- lifecycle and counters ---- */

int lm__svc_new(lm_node_t *n) {
  struct lm__svc *S = calloc(1, sizeof *S);
  if (!S)
    return LM_ENOMEM;
  if (lm_store_new(&S->store)) {
    free(S);
    return LM_ENOMEM;
  }
  n->svc = S;
  return 0;
}

/* Every check run: an http run that failed because libcurl cannot be
 * loaded is logged, once per node (each run's output says it too). */
static void on_check_run(lm__check_t *c, lm_check_kind_t kind,
                         lm__check_result_t result, void *ud) {
  (void)c;
  lm_node_t *n = ud;
  const char *why;
  if (kind != LM_CHECK_HTTP || result == LM__CHECK_OK ||
      n->svc->http_unavailable_logged ||
      (why = lm__check_http_unavailable()) == NULL)
    return;
  n->svc->http_unavailable_logged = 1;
  lm__node_log(n, LM_LOG_ERROR, "http checks cannot run, they fail: %s", why);
}

/* On the loop, once the core exists: this node in its own view, the
 * checker, the timers. */
int lm__svc_start(lm_node_t *n) {
  struct lm__svc *S = n->svc;
  lm__checker_opts_t o;
  memset(&o, 0, sizeof o);
  o.allow_exec = n->opt.allow_exec_checks;
  o.max_concurrent = n->opt.max_concurrent_checks;
  o.run_cb = on_check_run;
  o.run_ud = n;
  int rc = lm__checker_new(&S->checker, n->loop, &o);
  if (rc)
    return rc == LM__CHECK_ENOMEM ? LM_ENOMEM : rc;
  uv_timer_init(n->loop, &S->tick);
  uv_timer_init(n->loop, &S->announce);
  S->tick.data = S->announce.data = n;
  S->handles_open = 1;
  uv_timer_start(&S->tick, lm__svc_on_tick, SVC_SWEEP_MS, SVC_SWEEP_MS);
  swim_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = SWIM_EV_JOIN;
  swim_member_at(n->core, 0, &ev.member);
  uv_mutex_lock(&n->mu);
  lm__svc_member_event(n, &ev);
  uv_mutex_unlock(&n->mu);
  return 0;
}

/* Closes the handles (each adds to the node's open count and calls
 * `closed` when done) and stops the checks. */
void lm__svc_close(lm_node_t *n, uv_close_cb closed) {
  struct lm__svc *S = n->svc;
  if (!S)
    return;
  for (lsvc_t *s = S->list; s; s = s->next)
    s->check = NULL; /* the checker's close stops them all */
  if (S->checker && !S->checker_closed) {
    S->checker_closed = 1;
    n->open_handles++;
    lm__checker_close(S->checker, lm__node_checker_closed, n);
  }
  if (S->handles_open) {
    S->handles_open = 0;
    uv_handle_t *hs[] = {(uv_handle_t *)&S->tick, (uv_handle_t *)&S->announce};
    for (int i = 0; i < 2; i++) {
      n->open_handles++;
      uv_close(hs[i], closed);
    }
  }
}

struct lm_store *lm__svc_store(lm_node_t *n) {
  return n->svc ? n->svc->store : NULL;
}

void lm__svc_free(lm_node_t *n) {
  struct lm__svc *S = n->svc;
  if (!S)
    return;
  for (lsvc_t *s = S->list, *next; s; s = next) {
    next = s->next;
    lsvc_free(s);
  }
  for (size_t i = S->qhead; i < S->nq; i++)
    free(S->q[i].strs);
  free(S->q);
  for (watch_t *w = S->watches, *next; w; w = next) {
    next = w->next;
    free(w);
  }
  free(S->wants);
  lm_store_free(S->store);
  free(S);
  n->svc = NULL;
}

static const char *const drop_names[LM__SVC_DROP_COUNT] = {
    "service_list_malformed", "service_list_bad_signature",
    "service_list_unknown_member", "service_list_stale"};

void lm__svc_stats(lm_node_t *n, lm_stats_t *o) {
  struct lm__svc *S = n->svc;
  if (!S)
    return;
  for (int i = 0; i < LM__SVC_DROP_COUNT; i++) {
    if (!S->drops[i] ||
        o->ndropped >= sizeof o->dropped / sizeof o->dropped[0])
      continue;
    o->dropped[o->ndropped].reason = drop_names[i];
    o->dropped[o->ndropped++].count = S->drops[i];
    o->dropped_total += S->drops[i];
  }
  o->svc_lists_sent = S->lists_sent;
  o->svc_lists_received = S->lists_received;
  o->svc_requests_sent = S->requests_sent;
  o->services_local = S->count;
  lm_store_counts_t c;
  uv_mutex_lock(&n->mu);
  lm_store_counts(S->store, &c);
  uv_mutex_unlock(&n->mu);
  o->services = c.services;
  for (int i = 0; i < 3; i++)
    o->services_by_status[i] = c.services_by_status[i];
  if (S->checker)
    for (int k = LM_CHECK_TTL; k <= LM_CHECK_EXEC; k++)
      for (int r = 0; r < LM__CHECK_RESULTS; r++)
        o->check_runs[k - 1][r] =
            lm__checker_runs(S->checker, (lm_check_kind_t)k,
                             (lm__check_result_t)r);
}
