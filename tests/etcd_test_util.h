/*
 * etcd_test_util.h: what the tests of bridge/etcd share: a record of one
 * callback (copied, since the client's pointers live during the call
 * only) and the callbacks that fill it. Include after cmocka.h and etcd.h.
 */
#ifndef LIVEMESH_TESTS_ETCD_TEST_UTIL_H
#define LIVEMESH_TESTS_ETCD_TEST_UTIL_H

#include <stdio.h>
#include <string.h>

#define GOT_KVS 16

typedef struct got {
  int called;
  int err, grpc_status;
  char message[256];
  int64_t revision;
  size_t nkvs;
  char keys[GOT_KVS][64], values[GOT_KVS][64];
  int64_t leases[GOT_KVS];
  int64_t count;
  int more, succeeded;
  int64_t id, ttl;
} got_t;

static __attribute__((unused)) void got_result(got_t *g, const lm_etcd_result_t *r) {
  g->called++;
  g->err = r->err;
  g->grpc_status = r->grpc_status;
  snprintf(g->message, sizeof g->message, "%s", r->message ? r->message : "");
  g->revision = r->revision;
}

static __attribute__((unused)) void got_kvs(got_t *g, const lm_etcd_kv_t *kvs, size_t n) {
  g->nkvs = n;
  for (size_t i = 0; i < n && i < GOT_KVS; i++) {
    snprintf(g->keys[i], sizeof g->keys[i], "%.*s", (int)kvs[i].key_len,
             (const char *)kvs[i].key);
    snprintf(g->values[i], sizeof g->values[i], "%.*s",
             (int)(kvs[i].value_len > 60 ? 60 : kvs[i].value_len),
             kvs[i].value ? (const char *)kvs[i].value : "");
    g->leases[i] = kvs[i].lease;
  }
}

static __attribute__((unused)) void range_cb(void *ud, const lm_etcd_result_t *r,
                     const lm_etcd_kv_t *kvs, size_t nkvs, int64_t count,
                     int more) {
  got_t *g = ud;
  got_result(g, r);
  got_kvs(g, kvs, nkvs);
  g->count = count;
  g->more = more;
}

static __attribute__((unused)) void txn_cb(void *ud, const lm_etcd_result_t *r, int succeeded,
                   const lm_etcd_kv_t *kvs, size_t nkvs) {
  got_t *g = ud;
  got_result(g, r);
  got_kvs(g, kvs, nkvs);
  g->succeeded = succeeded;
}

static __attribute__((unused)) void done_cb(void *ud, const lm_etcd_result_t *r) {
  got_result(ud, r);
}

static __attribute__((unused)) void lease_cb(void *ud, const lm_etcd_result_t *r, int64_t id,
                     int64_t ttl) {
  got_t *g = ud;
  got_result(g, r);
  g->id = id;
  g->ttl = ttl;
}

#define WREC_MAX 32
typedef struct wrec {
  int n;
  int ended;
  struct {
    lm_etcd_watch_kind_t kind;
    int err;
    char message[128];
    int64_t compact_revision;
    size_t nevents;
    int is_delete[4], has_prev[4];
    char key[4][64], value[4][64], prev_value[4][64];
  } m[WREC_MAX];
} wrec_t;

static __attribute__((unused)) void watch_cb(void *ud, const lm_etcd_watch_msg_t *m) {
  wrec_t *w = ud;
  if (m->kind == LM_ETCD_WATCH_CANCELED || m->kind == LM_ETCD_WATCH_ERROR)
    w->ended = 1;
  if (w->n >= WREC_MAX)
    return;
  int i = w->n++;
  w->m[i].kind = m->kind;
  w->m[i].err = m->result.err;
  snprintf(w->m[i].message, sizeof w->m[i].message, "%s",
           m->result.message ? m->result.message : "");
  w->m[i].compact_revision = m->compact_revision;
  w->m[i].nevents = m->nevents;
  for (size_t e = 0; e < m->nevents && e < 4; e++) {
    const lm_etcd_event_t *ev = &m->events[e];
    w->m[i].is_delete[e] = ev->is_delete;
    w->m[i].has_prev[e] = ev->has_prev;
    snprintf(w->m[i].key[e], 64, "%.*s", (int)ev->kv.key_len,
             (const char *)ev->kv.key);
    snprintf(w->m[i].value[e], 64, "%.*s", (int)(ev->kv.value_len % 60),
             ev->kv.value ? (const char *)ev->kv.value : "");
    snprintf(w->m[i].prev_value[e], 64, "%.*s",
             (int)(ev->prev_kv.value_len % 60),
             ev->prev_kv.value ? (const char *)ev->prev_kv.value : "");
  }
}

static __attribute__((unused)) void close_done(void *ud) { *(int *)ud = 1; }

static __attribute__((unused)) void test_log(void *ud, int level, const char *msg) {
  (void)ud;
  if (getenv("LM_ETCD_TEST_LOG"))
    fprintf(stderr, "[etcd %d] %s\n", level, msg);
}

#define K(s) (const uint8_t *)(s), strlen(s)

#endif
