/*
 * bridge.c: the writer's life. lease -> campaign -> (standby | reconcile ->
 * leader), and back to the start on any doubt, after a backoff with
 * jitter. Every request carries the epoch it was sent in; an answer from
 * an older epoch only frees its context.
 */
#include "bridge.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "livemesh.pb-c.h"

enum {
  ST_IDLE,
  ST_LEASE,
  ST_CAMPAIGN,
  ST_STANDBY,
  ST_RECONCILE,
  ST_LEADER,
  ST_BACKOFF,
  ST_CLOSED
};

static const char *state_name(int s) {
  switch (s) {
  case ST_IDLE:
  case ST_LEASE: return "connecting";
  case ST_CAMPAIGN: return "campaigning";
  case ST_STANDBY: return "standby";
  case ST_RECONCILE: return "reconciling";
  case ST_LEADER: return "leader";
  case ST_BACKOFF: return "backoff";
  default: return "closed";
  }
}

#define MAX_INFLIGHT 4
#define LAG_RING 1024
#define RANGE_PAGE 5000

struct lm_bridge {
  uv_loop_t *loop;
  lm_bridge_options_t o;
  char *prefix, *cluster, *name, **endpoints;
  uint8_t id[32];
  int has_id;
  lm_etcd_t *etcd;
  lm_bv_t *view;
  int state;
  uint64_t epoch;
  int64_t lease;
  int64_t leader_rev; /* create revision of our leader key */
  char leader_key[600];
  size_t leader_key_len;
  uint8_t *leader_val;
  size_t leader_val_len;
  uint64_t watch;
  int watching;
  struct req *watch_req; /* the leader watch's context, freed with it */
  uv_timer_t keepalive_timer, retry_timer, change_timer;
  int keepalive_inflight;
  uint64_t last_keepalive_ok; /* loop ms */
  uint32_t backoff_ms;
  int dirty;        /* the view changed since the last fill */
  uint64_t dirty_since; /* loop ms of the oldest change not yet in etcd */
  int inflight;
  uint32_t max_ops; /* shrinks after "too large" */
  int quota_full;
  int quota_probe; /* quota full: the retry timer lets one batch through */
  int last_err; /* of the last failed request (LM_ETCD_E*) */
  int lost_connection; /* the connection went down since it was up */
  int switching; /* inside lm_etcd_next_endpoint(): failures are ours */
  uint64_t rng;
  /* reconciliation paging */
  uint8_t *range_from;
  size_t range_from_len;
  lm_bridge_stats_t st;
  uint32_t lag[LAG_RING];
  size_t lag_n;
  int closing, handles_open;
  void (*close_done)(void *);
  void *close_ud;
};

typedef struct req {
  lm_bridge_t *b;
  uint64_t epoch;
  uint64_t batch;
  size_t nops, nput, ndel;
} req_t;

static void start_lease(lm_bridge_t *b);
static void campaign(lm_bridge_t *b);
static void pump(lm_bridge_t *b);
static void reconcile_page(lm_bridge_t *b);

/* ---- small things ---- */

static void blog(lm_bridge_t *b, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void blog(lm_bridge_t *b, int level, const char *fmt, ...) {
  if (!b->o.log)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  b->o.log(b->o.log_ud, level, line);
}

static void set_error(lm_bridge_t *b, const char *what,
                      const lm_etcd_result_t *r) {
  b->st.errors++;
  b->last_err = r->err;
  snprintf(b->st.last_error, sizeof b->st.last_error, "%s: %s%s%s", what,
           lm_etcd_strerror(r->err), r->message && r->message[0] ? ": " : "",
           r->message ? r->message : "");
}

static uint64_t now_ms(lm_bridge_t *b) { return uv_now(b->loop); }

static uint32_t jitter(lm_bridge_t *b, uint32_t ms) {
  b->rng ^= b->rng << 13;
  b->rng ^= b->rng >> 7;
  b->rng ^= b->rng << 17;
  /* 75% .. 125% */
  return ms * 3 / 4 + (uint32_t)(b->rng % (ms / 2 + 1));
}

/* The leader key's create revision equals `rev`: the campaign (0, the key
 * is absent) and the fence of every write (the revision we won). */
static lm_etcd_cmp_t leader_cmp(const lm_bridge_t *b, int64_t rev) {
  lm_etcd_cmp_t c = {.target = LM_ETCD_CMP_CREATE,
                     .result = LM_ETCD_CMP_EQUAL,
                     .key = (const uint8_t *)b->leader_key,
                     .key_len = b->leader_key_len,
                     .number = rev};
  return c;
}

static req_t *req_new(lm_bridge_t *b) {
  req_t *r = calloc(1, sizeof *r);
  if (r) {
    r->b = b;
    r->epoch = b->epoch;
  }
  return r;
}

/* 1 when the answer belongs to the current epoch and the bridge runs. */
static int current(const req_t *r) {
  return !r->b->closing && r->epoch == r->b->epoch;
}

static void set_state(lm_bridge_t *b, int s) {
  if (b->state == ST_LEADER && s != ST_LEADER)
    blog(b, 1, "bridge: no longer the etcd writer (%s)", state_name(s));
  b->state = s;
  b->st.leader = s == ST_LEADER || s == ST_RECONCILE;
}

/* A canceled watch's callback is not called again: its context goes
 * here. */
static void stop_watch(lm_bridge_t *b) {
  if (b->watching) {
    lm_etcd_watch_cancel(b->etcd, b->watch);
    b->watching = 0;
    free(b->watch_req);
    b->watch_req = NULL;
  }
}

static void retry_cb(uv_timer_t *t);

/* Something went wrong: forget every request in flight, wait, start over
 * from the lease (kept when still valid) and the campaign. */
static void backoff(lm_bridge_t *b, const char *why) {
  if (b->closing)
    return;
  b->epoch++;
  b->inflight = 0;
  stop_watch(b);
  set_state(b, ST_BACKOFF);
  b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : 250;
  if (b->backoff_ms > 5000)
    b->backoff_ms = 5000;
  uint32_t wait = jitter(b, b->backoff_ms);
  blog(b, 2, "bridge: %s; retrying in %u ms", why, wait);
  uv_timer_start(&b->retry_timer, retry_cb, wait, 0);
}

static void retry_cb(uv_timer_t *t) {
  lm_bridge_t *b = t->data;
  if (b->closing)
    return;
  int why = b->last_err;
  b->last_err = 0;
  /* a member that answers without a leader (a minority side), or does not
   * answer in time: try the next endpoint. Dropping the connection fails
   * what is still in flight on it (a keep-alive) from inside the call:
   * those failures are not errors of etcd's, and must neither overwrite
   * the cause nor start anything (a keep-alive past the TTL would declare
   * the lease lost and start a second backoff beside this retry). */
  if ((why == LM_ETCD_ENOLEADER || why == LM_ETCD_ETIMEDOUT) &&
      b->o.etcd.nendpoints > 1) {
    uint64_t epoch = b->epoch;
    b->switching = 1;
    int rc = lm_etcd_next_endpoint(b->etcd);
    b->switching = 0;
    if (rc == 0)
      blog(b, 1, "bridge: %s; trying the next etcd endpoint",
           lm_etcd_strerror(why));
    if (b->closing || b->epoch != epoch)
      return; /* something started over meanwhile: its own timer runs */
  }
  if (b->lease)
    campaign(b);
  else
    start_lease(b);
}

static void lease_lost(lm_bridge_t *b) {
  blog(b, 1, "bridge: lease %lld lost; taking a new one",
       (long long)b->lease);
  b->st.leases_lost++;
  b->lease = 0;
  b->st.lease_id = 0;
  uv_timer_stop(&b->keepalive_timer);
  backoff(b, "lease lost");
}

/* ---- lease ---- */

static void keepalive_cb(void *ud, const lm_etcd_result_t *r, int64_t id,
                         int64_t ttl) {
  req_t *q = ud;
  lm_bridge_t *b = q->b;
  (void)ttl;
  if (!b->closing) {
    b->keepalive_inflight = 0;
    /* dropped by our own switch of endpoint: the next one decides */
    if (id == b->lease && b->lease && !b->switching) {
      if (r->err == 0) {
        b->last_keepalive_ok = now_ms(b);
      } else if (r->err == LM_ETCD_ELEASE) {
        lease_lost(b);
      } else {
        set_error(b, "lease keep-alive", r);
        /* past the TTL without a keep-alive, the lease is surely gone */
        if (now_ms(b) - b->last_keepalive_ok >
            (uint64_t)b->o.lease_ttl_s * 1000)
          lease_lost(b);
        /* a member without a leader keeps no lease alive: move to the next
         * endpoint now, while the lease still stands on the majority side,
         * rather than losing it and everything written on it */
        else if (r->err == LM_ETCD_ENOLEADER && b->o.etcd.nendpoints > 1 &&
                 b->state != ST_BACKOFF)
          backoff(b, "the etcd member has no leader");
      }
    }
  }
  free(q);
}

static void keepalive_tick(uv_timer_t *t) {
  lm_bridge_t *b = t->data;
  if (b->closing || !b->lease || b->keepalive_inflight)
    return;
  req_t *q = req_new(b);
  if (!q)
    return;
  if (lm_etcd_lease_keepalive(b->etcd, b->lease, keepalive_cb, q) != 0) {
    free(q);
    return;
  }
  b->keepalive_inflight = 1;
}

static void grant_cb(void *ud, const lm_etcd_result_t *r, int64_t id,
                     int64_t ttl) {
  req_t *q = ud;
  lm_bridge_t *b = q->b;
  int cur = current(q);
  free(q);
  if (!cur)
    return;
  if (r->err) {
    set_error(b, "lease grant", r);
    backoff(b, b->st.last_error);
    return;
  }
  b->lease = id;
  b->st.lease_id = id;
  b->last_keepalive_ok = now_ms(b);
  uint64_t every = (uint64_t)(ttl > 0 ? ttl : b->o.lease_ttl_s) * 1000 / 3;
  if (every < 500)
    every = 500;
  uv_timer_start(&b->keepalive_timer, keepalive_tick, every, every);
  blog(b, 2, "bridge: lease %lld granted, TTL %lld s", (long long)id,
       (long long)ttl);
  campaign(b);
}

static void start_lease(lm_bridge_t *b) {
  set_state(b, ST_LEASE);
  req_t *q = req_new(b);
  if (!q || lm_etcd_lease_grant(b->etcd, b->o.lease_ttl_s, 0, grant_cb, q)) {
    free(q);
    backoff(b, "cannot send a lease grant");
  }
}

/* ---- election ---- */

static void leader_name_from(lm_bridge_t *b, const lm_etcd_kv_t *kv) {
  b->st.leader_name[0] = 0;
  if (!kv || !kv->value_len)
    return;
  if (b->o.encoding == LM_BV_JSON) {
    json_t *j = json_loadb((const char *)kv->value, kv->value_len, 0, NULL);
    const char *n = json_string_value(json_object_get(j, "name"));
    if (n)
      snprintf(b->st.leader_name, sizeof b->st.leader_name, "%s", n);
    json_decref(j);
    return;
  }
  Livemesh__V1__Leader *l =
      livemesh__v1__leader__unpack(NULL, kv->value_len, kv->value);
  if (l) {
    snprintf(b->st.leader_name, sizeof b->st.leader_name, "%s", l->name);
    livemesh__v1__leader__free_unpacked(l, NULL);
  }
}

/* From inside the watch's own callback: the campaign cancels that watch,
 * which is only safe once the callback has returned. */
static void campaign_soon(lm_bridge_t *b) {
  set_state(b, ST_CAMPAIGN); /* later messages of the watch are ignored */
  uv_timer_start(&b->retry_timer, retry_cb, 0, 0);
}

static void watch_cb(void *ud, const lm_etcd_watch_msg_t *m) {
  req_t *q = ud;
  lm_bridge_t *b = q->b;
  if (m->kind == LM_ETCD_WATCH_CANCELED || m->kind == LM_ETCD_WATCH_ERROR) {
    /* the end of this watch: nothing else frees its context */
    int cur = current(q) && b->state == ST_STANDBY && b->watch_req == q;
    if (b->watch_req == q) {
      b->watch_req = NULL;
      b->watching = 0;
    }
    free(q);
    if (cur) {
      set_error(b, "leader watch", &m->result);
      backoff(b, b->st.last_error);
    }
    return;
  }
  if (!current(q) || b->state != ST_STANDBY)
    return;
  if (m->kind == LM_ETCD_WATCH_COMPACTED) {
    /* events were lost: look again */
    campaign_soon(b);
    return;
  }
  if (m->kind != LM_ETCD_WATCH_EVENTS)
    return;
  for (size_t i = 0; i < m->nevents; i++) {
    if (m->events[i].is_delete) {
      blog(b, 2, "bridge: the etcd writer %s is gone; campaigning",
           b->st.leader_name[0] ? b->st.leader_name : "(unknown)");
      campaign_soon(b);
      return;
    }
    leader_name_from(b, &m->events[i].kv);
  }
}

static void campaign_cb(void *ud, const lm_etcd_result_t *r, int succeeded,
                        const lm_etcd_kv_t *kvs, size_t nkvs) {
  req_t *q = ud;
  lm_bridge_t *b = q->b;
  int cur = current(q);
  free(q);
  if (!cur)
    return;
  if (r->err) {
    set_error(b, "campaign", r);
    if (r->err == LM_ETCD_ELEASE) {
      lease_lost(b);
      return;
    }
    backoff(b, b->st.last_error);
    return;
  }
  b->backoff_ms = 0;
  if (!succeeded && nkvs > 0 && kvs[0].lease == b->lease) {
    /* our own key from before a reconnection: still ours */
    succeeded = 1;
    b->leader_rev = kvs[0].create_revision;
  } else if (succeeded) {
    b->leader_rev = r->revision;
  }
  if (succeeded) {
    b->st.elections_won++;
    /* the backoff that led here may have replaced the quota retry timer:
     * start without the old verdict (the first write finds out again) */
    b->quota_full = 0;
    b->quota_probe = 0;
    snprintf(b->st.leader_name, sizeof b->st.leader_name, "%s", b->name);
    blog(b, 2, "bridge: elected etcd writer (lease %lld, revision %lld)",
         (long long)b->lease, (long long)b->leader_rev);
    set_state(b, ST_RECONCILE);
    lm_bv_reconcile_begin(b->view);
    free(b->range_from);
    b->range_from = NULL;
    b->range_from_len = 0;
    reconcile_page(b);
    return;
  }
  if (nkvs == 0) {
    /* gone between the compare and the range: try again */
    campaign(b);
    return;
  }
  leader_name_from(b, &kvs[0]);
  set_state(b, ST_STANDBY);
  req_t *w = req_new(b);
  if (!w || lm_etcd_watch(b->etcd, (const uint8_t *)b->leader_key,
                          b->leader_key_len, NULL, 0, r->revision + 1, 0,
                          watch_cb, w, &b->watch) != 0) {
    free(w);
    backoff(b, "cannot watch the leader key");
    return;
  }
  b->watching = 1;
  b->watch_req = w;
  blog(b, 2, "bridge: standing by; %s writes to etcd",
       b->st.leader_name[0] ? b->st.leader_name : "another member");
}

static void campaign(lm_bridge_t *b) {
  if (b->closing)
    return;
  b->epoch++;
  b->inflight = 0;
  stop_watch(b);
  set_state(b, ST_CAMPAIGN);
  const uint8_t *k = (const uint8_t *)b->leader_key;
  lm_etcd_cmp_t cmp = leader_cmp(b, 0); /* absent: create revision 0 */
  lm_etcd_op_t put = {.kind = LM_ETCD_OP_PUT,
                      .key = k,
                      .key_len = b->leader_key_len,
                      .value = b->leader_val,
                      .value_len = b->leader_val_len,
                      .lease = b->lease};
  lm_etcd_op_t get = {.kind = LM_ETCD_OP_RANGE, .key = k,
                      .key_len = b->leader_key_len};
  req_t *q = req_new(b);
  if (!q || lm_etcd_txn(b->etcd, &cmp, 1, &put, 1, &get, 1, campaign_cb, q)) {
    free(q);
    backoff(b, "cannot send the campaign");
  }
}

/* ---- reconciliation ---- */

static void range_cb(void *ud, const lm_etcd_result_t *r,
                     const lm_etcd_kv_t *kvs, size_t nkvs, int64_t count,
                     int more) {
  req_t *q = ud;
  lm_bridge_t *b = q->b;
  int cur = current(q);
  free(q);
  (void)count;
  if (!cur || b->state != ST_RECONCILE)
    return;
  if (r->err) {
    set_error(b, "reconciliation range", r);
    backoff(b, b->st.last_error);
    return;
  }
  for (size_t i = 0; i < nkvs; i++)
    if (lm_bv_reconcile_key(b->view, kvs[i].key, kvs[i].key_len) != 0) {
      backoff(b, "out of memory during reconciliation");
      return;
    }
  if (more && nkvs > 0) {
    /* the next page starts just after the last key */
    const lm_etcd_kv_t *last = &kvs[nkvs - 1];
    uint8_t *from = malloc(last->key_len + 1);
    if (!from) {
      backoff(b, "out of memory during reconciliation");
      return;
    }
    memcpy(from, last->key, last->key_len);
    from[last->key_len] = 0;
    free(b->range_from);
    b->range_from = from;
    b->range_from_len = last->key_len + 1;
    reconcile_page(b);
    return;
  }
  b->st.reconciliations++;
  set_state(b, ST_LEADER);
  b->dirty = 1; /* read the view afresh */
  pump(b);
}

static void reconcile_page(lm_bridge_t *b) {
  const uint8_t *start, *end;
  size_t start_len, end_len;
  lm_bv_range(b->view, &start, &start_len, &end, &end_len);
  if (b->range_from) {
    start = b->range_from;
    start_len = b->range_from_len;
  }
  req_t *q = req_new(b);
  if (!q || lm_etcd_range(b->etcd, start, start_len, end, end_len, RANGE_PAGE,
                          LM_ETCD_RANGE_KEYS_ONLY, range_cb, q) != 0) {
    free(q);
    backoff(b, "cannot send the reconciliation range");
  }
}

/* ---- writing ---- */

static void lag_record(lm_bridge_t *b, uint64_t ms) {
  b->lag[b->lag_n % LAG_RING] = (uint32_t)(ms > UINT32_MAX ? UINT32_MAX : ms);
  b->lag_n++;
  b->st.lag_last_ms = ms;
  b->st.lag_samples = b->lag_n;
}

static void retry_writes_cb(uv_timer_t *t) {
  lm_bridge_t *b = t->data;
  if (b->closing || b->state != ST_LEADER)
    return;
  /* pump() sends nothing while the quota is full: let one batch through
   * to find out whether etcd takes writes again */
  if (b->quota_full && b->inflight == 0) {
    b->quota_probe = 1;
    pump(b);
    if (b->quota_probe) {
      /* nothing was sent: look again later */
      b->quota_probe = 0;
      uv_timer_start(&b->retry_timer, retry_writes_cb, 10000, 0);
    }
    return;
  }
  pump(b);
}

static void write_cb(void *ud, const lm_etcd_result_t *r, int succeeded,
                     const lm_etcd_kv_t *kvs, size_t nkvs) {
  req_t *q = ud;
  lm_bridge_t *b = q->b;
  (void)kvs;
  (void)nkvs;
  if (!current(q) || b->state != ST_LEADER) {
    free(q);
    return;
  }
  b->inflight--;
  uint64_t batch = q->batch;
  size_t nops = q->nops, nput = q->nput, ndel = q->ndel;
  free(q);
  if (r->err == 0 && succeeded) {
    lm_bv_batch_done(b->view, batch, LM_BV_APPLIED);
    b->st.writes++;
    b->st.keys_put += nput;
    b->st.keys_deleted += ndel;
    b->backoff_ms = 0;
    if (b->quota_full) {
      b->quota_full = 0;
      blog(b, 2, "bridge: etcd takes writes again");
    }
    pump(b);
    return;
  }
  if (r->err == 0) {
    /* the fence held: the leader key is not the one we won */
    lm_bv_batch_done(b->view, batch, LM_BV_FAILED);
    b->st.deposed++;
    blog(b, 1, "bridge: deposed (the leader key changed); not writing");
    campaign(b);
    return;
  }
  set_error(b, "write", r);
  switch (r->err) {
  case LM_ETCD_ETOOLARGE:
    if (nops > 1) {
      lm_bv_batch_done(b->view, batch, LM_BV_FAILED);
      b->max_ops = (uint32_t)(nops / 2 > 0 ? nops / 2 : 1);
      blog(b, 1, "bridge: etcd refused a transaction as too large; "
                 "now at most %u operations", b->max_ops);
    } else {
      lm_bv_batch_done(b->view, batch, LM_BV_REFUSED);
      b->st.refused_keys++;
      blog(b, 0, "bridge: etcd refused a value as too large; skipping it "
                 "until it changes");
    }
    pump(b);
    return;
  case LM_ETCD_ENOSPACE:
    lm_bv_batch_done(b->view, batch, LM_BV_FAILED);
    if (!b->quota_full)
      blog(b, 0, "bridge: etcd's database is full (quota); writes stop "
                 "until space is freed, retrying every 10 s");
    b->quota_full = 1;
    uv_timer_start(&b->retry_timer, retry_writes_cb, 10000, 0);
    return;
  case LM_ETCD_ELEASE:
    lm_bv_batch_done(b->view, batch, LM_BV_FAILED);
    lease_lost(b);
    return;
  default:
    /* connection lost, timeout, no leader: what was applied is unknown;
     * start over (the campaign sees the key is still ours and
     * reconciles) */
    lm_bv_batch_done(b->view, batch, LM_BV_FAILED);
    backoff(b, b->st.last_error);
    return;
  }
}

static void refill(lm_bridge_t *b) {
  if (!b->dirty)
    return;
  b->dirty = 0;
  lm_bv_begin(b->view);
  if (b->o.fill)
    b->o.fill(b->o.fill_ud, b->view);
  lm_bv_commit(b->view);
}

static void pump(lm_bridge_t *b) {
  if (b->closing || b->state != ST_LEADER ||
      (b->quota_full && !b->quota_probe))
    return;
  refill(b);
  lm_bv_op_t ops[128];
  lm_etcd_op_t eops[128];
  size_t maxops = b->max_ops < 128 ? b->max_ops : 128;
  while (b->inflight < MAX_INFLIGHT) {
    uint64_t batch;
    size_t n = lm_bv_next_batch(b->view, ops, maxops, b->o.max_txn_bytes,
                                &batch);
    if (n == 0)
      break;
    size_t nput = 0, ndel = 0;
    for (size_t i = 0; i < n; i++) {
      memset(&eops[i], 0, sizeof eops[i]);
      eops[i].key = ops[i].key;
      eops[i].key_len = ops[i].key_len;
      if (ops[i].is_delete) {
        eops[i].kind = LM_ETCD_OP_DELETE;
        ndel++;
      } else {
        eops[i].kind = LM_ETCD_OP_PUT;
        eops[i].value = ops[i].value;
        eops[i].value_len = ops[i].value_len;
        eops[i].lease = b->lease;
        nput++;
      }
    }
    lm_etcd_cmp_t fence = leader_cmp(b, b->leader_rev);
    req_t *q = req_new(b);
    int rc = -1;
    if (q) {
      q->batch = batch;
      q->nops = n;
      q->nput = nput;
      q->ndel = ndel;
      rc = lm_etcd_txn(b->etcd, &fence, 1, eops, n, NULL, 0, write_cb, q);
    }
    if (rc != 0) {
      free(q);
      if (rc == LM_ETCD_ETOOLARGE && n > 1) {
        lm_bv_batch_done(b->view, batch, LM_BV_FAILED);
        maxops = b->max_ops = (uint32_t)(n / 2);
        continue;
      }
      lm_bv_batch_done(b->view, batch,
                       rc == LM_ETCD_ETOOLARGE ? LM_BV_REFUSED : LM_BV_FAILED);
      if (rc == LM_ETCD_ETOOLARGE) {
        b->st.refused_keys++;
        continue;
      }
      backoff(b, "cannot send a write");
      return;
    }
    b->inflight++;
    if (b->quota_full) {
      /* the probe: one batch, its answer decides */
      b->quota_probe = 0;
      break;
    }
  }
  if (b->inflight == 0 && b->dirty_since) {
    lm_bv_counts_t c;
    lm_bv_counts(b->view, &c);
    if (c.keys_differ == 0) {
      lag_record(b, now_ms(b) - b->dirty_since);
      b->dirty_since = 0;
    }
  }
}

static void change_cb(uv_timer_t *t) {
  lm_bridge_t *b = t->data;
  if (b->state == ST_LEADER)
    pump(b);
}

void lm_bridge_changed(lm_bridge_t *b) {
  if (!b || b->closing)
    return;
  b->dirty = 1;
  /* the lag is measured from the first change not yet in etcd, while
   * writing (a standby or a reconciliation is not lag) */
  if (!b->dirty_since && b->state == ST_LEADER)
    b->dirty_since = now_ms(b);
  /* coalesce a burst of changes into one read of the view */
  if (!uv_is_active((uv_handle_t *)&b->change_timer))
    uv_timer_start(&b->change_timer, change_cb, 2, 0);
}

/* ---- life ---- */

static void etcd_log(void *ud, int level, const char *msg) {
  lm_bridge_t *b = ud;
  blog(b, level, "bridge: etcd: %s", msg);
}

static void etcd_state(void *ud, int connected, int err, const char *msg) {
  lm_bridge_t *b = ud;
  b->st.connected = connected;
  if (b->closing)
    return;
  if (!connected) {
    blog(b, 1, "bridge: etcd connection lost (%s%s%s)", lm_etcd_strerror(err),
         msg && msg[0] ? ": " : "", msg ? msg : "");
    b->lost_connection = 1;
    return;
  }
  /* back after a loss: etcd may have lost or changed what it held (a
   * restore, another writer in between), so check the leadership again and,
   * still the writer, reconcile in full */
  if (b->lost_connection) {
    b->lost_connection = 0;
    if (b->state == ST_LEADER || b->state == ST_STANDBY) {
      blog(b, 2, "bridge: etcd reachable again; checking the leadership and "
                 "reconciling");
      campaign_soon(b);
    }
  }
}

static int encode_leader(lm_bridge_t *b) {
  int64_t since = 0;
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) == 0)
    since = tv.tv_sec * 1000 + tv.tv_usec / 1000;
  if (b->o.encoding == LM_BV_JSON) {
    char idhex[65] = "";
    if (b->has_id)
      lm_bv_hex(idhex, b->id, 32);
    json_t *j = json_pack("{s:s, s:s, s:I}", "name", b->name, "id", idhex,
                          "since_ms", (json_int_t)since);
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!t)
      return -1;
    b->leader_val = (uint8_t *)t;
    b->leader_val_len = strlen(t);
    return 0;
  }
  Livemesh__V1__Leader l = LIVEMESH__V1__LEADER__INIT;
  l.name = b->name;
  if (b->has_id) {
    l.id.data = b->id;
    l.id.len = 32;
  }
  l.since_ms = since;
  b->leader_val_len = livemesh__v1__leader__get_packed_size(&l);
  b->leader_val = malloc(b->leader_val_len + 1);
  if (!b->leader_val)
    return -1;
  livemesh__v1__leader__pack(&l, b->leader_val);
  return 0;
}

static void free_strings(lm_bridge_t *b) {
  if (b->endpoints)
    for (size_t i = 0; i < b->o.etcd.nendpoints; i++)
      free(b->endpoints[i]);
  free(b->endpoints);
  free(b->prefix);
  free(b->cluster);
  free(b->name);
  free(b->leader_val);
  free(b->range_from);
}

int lm_bridge_new(lm_bridge_t **out, uv_loop_t *loop,
                  const lm_bridge_options_t *o, char *err, size_t errcap) {
  *out = NULL;
  if (!o || !o->name || !o->name[0] || !o->cluster || !o->cluster[0]) {
    snprintf(err, errcap, "the bridge needs a member name and a cluster");
    return -1;
  }
  lm_bridge_t *b = calloc(1, sizeof *b);
  if (!b) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  b->loop = loop;
  b->o = *o;
  if (!b->o.lease_ttl_s)
    b->o.lease_ttl_s = 10;
  if (b->o.lease_ttl_s < 2)
    b->o.lease_ttl_s = 2;
  if (!b->o.max_txn_ops || b->o.max_txn_ops > 128)
    b->o.max_txn_ops = 128;
  if (!b->o.max_txn_bytes)
    b->o.max_txn_bytes = 1 << 20;
  b->max_ops = b->o.max_txn_ops;
  b->name = strdup(o->name);
  b->cluster = strdup(o->cluster);
  b->prefix = strdup(o->prefix ? o->prefix : "");
  b->endpoints = calloc(o->etcd.nendpoints ? o->etcd.nendpoints : 1,
                        sizeof *b->endpoints);
  int oom = !b->name || !b->cluster || !b->prefix || !b->endpoints;
  for (size_t i = 0; !oom && i < o->etcd.nendpoints; i++)
    oom = !(b->endpoints[i] = strdup(o->etcd.endpoints[i]));
  if (oom) {
    free_strings(b);
    free(b);
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  b->o.name = b->name;
  b->o.cluster = b->cluster;
  b->o.prefix = b->prefix;
  b->o.etcd.endpoints = (const char *const *)b->endpoints;
  if (o->id) {
    memcpy(b->id, o->id, 32);
    b->has_id = 1;
  }
  b->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  if (!b->rng)
    b->rng = 1;

  lm_bv_config_t vc = {.layout = o->layout, .encoding = o->encoding,
                       .prefix = b->prefix, .cluster = b->cluster};
  if (lm_bv_new(&b->view, &vc) != 0) {
    snprintf(err, errcap, "bad bridge layout or prefix \"%s\" (a native "
             "prefix starts and ends with '/', at most 256 bytes)",
             b->prefix);
    free_strings(b);
    free(b);
    return -1;
  }
  /* the leader key: beside the view's keys, never among them */
  int n;
  if (o->layout == LM_BV_NATIVE) {
    n = snprintf(b->leader_key, sizeof b->leader_key, "%sbridge/leader",
                 b->prefix);
  } else {
    const char *ns = b->prefix;
    while (*ns == '/')
      ns++;
    size_t nl = strlen(ns);
    while (nl > 0 && ns[nl - 1] == '/')
      nl--;
    char cl[200];
    lm_bv_escape(cl, sizeof cl, b->cluster);
    n = snprintf(b->leader_key, sizeof b->leader_key,
                 "/%.*s%slivemesh/%s/bridge/leader", (int)nl, ns,
                 nl ? "/" : "", cl);
  }
  b->leader_key_len = (size_t)n;
  if (encode_leader(b) != 0) {
    lm_bv_free(b->view);
    free_strings(b);
    free(b);
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  b->o.etcd.log = etcd_log;
  b->o.etcd.log_ud = b;
  if (lm_etcd_new(&b->etcd, loop, &b->o.etcd, err, errcap) != 0) {
    lm_bv_free(b->view);
    free_strings(b);
    free(b);
    return -1;
  }
  lm_etcd_on_state(b->etcd, etcd_state, b);
  uv_timer_init(loop, &b->keepalive_timer);
  uv_timer_init(loop, &b->retry_timer);
  uv_timer_init(loop, &b->change_timer);
  b->keepalive_timer.data = b->retry_timer.data = b->change_timer.data = b;
  b->handles_open = 3;
  b->state = ST_IDLE;
  b->dirty = 1;
  *out = b;
  return 0;
}

int lm_bridge_start(lm_bridge_t *b) {
  if (b->state != ST_IDLE)
    return -1;
  blog(b, 2, "bridge: campaigning for %.*s", (int)b->leader_key_len,
       b->leader_key);
  start_lease(b);
  return 0;
}

static void maybe_done(lm_bridge_t *b) {
  if (b->handles_open > 0 || b->etcd)
    return;
  void (*done)(void *) = b->close_done;
  void *ud = b->close_ud;
  lm_bv_free(b->view);
  free_strings(b);
  free(b);
  if (done)
    done(ud);
}

static void handle_closed(uv_handle_t *h) {
  lm_bridge_t *b = h->data;
  b->handles_open--;
  maybe_done(b);
}

static void etcd_closed(void *ud) {
  lm_bridge_t *b = ud;
  b->etcd = NULL;
  maybe_done(b);
}

static void finish_close(lm_bridge_t *b) {
  b->closing = 2;
  set_state(b, ST_CLOSED);
  uv_close((uv_handle_t *)&b->keepalive_timer, handle_closed);
  uv_close((uv_handle_t *)&b->retry_timer, handle_closed);
  uv_close((uv_handle_t *)&b->change_timer, handle_closed);
  lm_etcd_close(b->etcd, etcd_closed, b);
}

static void resign_cb(void *ud, const lm_etcd_result_t *r, int succeeded,
                      const lm_etcd_kv_t *kvs, size_t nkvs) {
  lm_bridge_t *b = ud;
  (void)kvs;
  (void)nkvs;
  if (r->err == 0 && succeeded)
    blog(b, 2, "bridge: resigned as etcd writer");
  if (b->closing == 1)
    finish_close(b);
}

void lm_bridge_close(lm_bridge_t *b, void (*done)(void *ud), void *ud) {
  if (!b) {
    if (done)
      done(ud);
    return;
  }
  if (b->closing)
    return;
  b->close_done = done;
  b->close_ud = ud;
  int was_leader = b->state == ST_LEADER || b->state == ST_RECONCILE;
  b->closing = 1;
  b->epoch++;
  stop_watch(b);
  if (was_leader && b->leader_rev) {
    /* resign: delete the leader key if it is still ours, so a standby
     * takes over now rather than after the lease's TTL */
    lm_etcd_cmp_t fence = leader_cmp(b, b->leader_rev);
    lm_etcd_op_t del = {.kind = LM_ETCD_OP_DELETE,
                        .key = (const uint8_t *)b->leader_key,
                        .key_len = b->leader_key_len};
    if (lm_etcd_txn(b->etcd, &fence, 1, &del, 1, NULL, 0, resign_cb, b) == 0)
      return;
  }
  finish_close(b);
}

void lm_bridge_stats(const lm_bridge_t *b, lm_bridge_stats_t *out) {
  *out = b->st;
  out->state = state_name(b->state);
  out->quota_full = b->quota_full;
  out->lease_id = b->lease;
  lm_bv_counts_t c;
  lm_bv_counts(b->view, &c);
  out->keys_wanted = c.keys_wanted;
  out->keys_pending = c.keys_differ + c.inflight;
  size_t n = b->lag_n < LAG_RING ? b->lag_n : LAG_RING;
  if (n > 0) {
    uint32_t sorted[LAG_RING];
    memcpy(sorted, b->lag, n * sizeof *sorted);
    /* insertion sort: at most 1024 samples, read rarely */
    for (size_t i = 1; i < n; i++) {
      uint32_t x = sorted[i];
      size_t j = i;
      while (j > 0 && sorted[j - 1] > x) {
        sorted[j] = sorted[j - 1];
        j--;
      }
      sorted[j] = x;
    }
    out->lag_p50_ms = sorted[(n - 1) / 2];
    out->lag_p99_ms = sorted[(n * 99 - 1) / 100];
  }
}

int lm_bridge_healthy(const lm_bridge_t *b) {
  if (!b->st.connected || b->quota_full)
    return 0;
  return b->state == ST_LEADER || b->state == ST_STANDBY ||
         b->state == ST_RECONCILE;
}
