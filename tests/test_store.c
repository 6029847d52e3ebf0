/*
 * test_store.c: the local view (store/store.h) and the service list codec
 * (store/svc_codec.h).
 *
 * The codec: round trips of every field, every prefix of a valid list
 * refused, each wrong type, count and limit refused with its code, and the
 * single-service validator naming the field. The view: indexes by every
 * key, counts after adds, removals and changes, 10,000 members with 10
 * services each, is_up for every member status x service status, workers
 * of one type on one host, list replacement rules (id, seq, verbatim raw),
 * and watches: initial state, order, per-watcher seq, filters, what fires
 * and what does not, re-entry refused, removal from inside a callback.
 * Inputs a decoder must refuse are copied into buffers of their exact size
 * so the sanitizer build catches any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "store.h"
#include "svc_codec.h"

/* ---- helpers ---- */

#define SIG_LEN 64

static void mk_id(uint8_t id[LM_STORE_ID_LEN], int n) {
  for (int i = 0; i < LM_STORE_ID_LEN; i++)
    id[i] = (uint8_t)(n * 131 + i * 7 + (n >> 8));
  id[0] = (uint8_t)n;
  id[1] = (uint8_t)(n >> 8);
}

static void mk_uuid(uint8_t u[LM_UUID_LEN], int member, int k) {
  memset(u, 0, LM_UUID_LEN);
  u[0] = (uint8_t)member;
  u[1] = (uint8_t)(member >> 8);
  u[2] = (uint8_t)k;
  u[15] = 0xa5;
}

static uint8_t *exact(const uint8_t *p, size_t len) {
  uint8_t *c = malloc(len ? len : 1);
  assert_non_null(c);
  if (len)
    memcpy(c, p, len);
  return c;
}

/* A simple service: the fields tests vary, the rest defaulted. */
static lm_service_t svc(int member, int k, const char *type, int status,
                        const char *cause) {
  lm_service_t s;
  memset(&s, 0, sizeof s);
  mk_uuid(s.uuid, member, k);
  s.type = type;
  s.name = "";
  s.region = "";
  s.worker = -1;
  s.status = (lm_svc_status_t)status;
  s.cause = cause;
  s.note = "";
  return s;
}

static char g_names[16][32];

static const char *name_of(int n) {
  char *b = g_names[n % 16];
  snprintf(b, 32, "node-%d", n);
  return b;
}

static int set_member(lm_store_t *st, int n, int status, int64_t now) {
  lm_store_member_t m;
  memset(&m, 0, sizeof m);
  mk_id(m.id, n);
  m.name = name_of(n);
  m.addr = "10.0.0.1:7946";
  m.status = status;
  m.gen = 1;
  m.ver = 1;
  m.since_ms = now;
  return lm_store_member_set(st, &m, now);
}

/* Encodes the list with a fake signature after it and hands it over. */
static int set_services(lm_store_t *st, int n, uint64_t seq, int64_t signed_ms,
                        const lm_service_t *svcs, size_t cnt, int64_t now) {
  uint8_t id[LM_STORE_ID_LEN];
  mk_id(id, n);
  uint8_t *buf;
  size_t len;
  assert_int_equal(
      lm_svclist_encode(&buf, &len, id, 1, seq, signed_ms, svcs, cnt), 0);
  uint8_t *raw = malloc(len + SIG_LEN);
  assert_non_null(raw);
  memcpy(raw, buf, len);
  memset(raw + len, 0x5a, SIG_LEN);
  int rc = lm_store_services_set(st, id, raw, len + SIG_LEN, len, now);
  free(raw);
  free(buf);
  return rc;
}

static lm_store_t *new_store(void) {
  lm_store_t *st;
  assert_int_equal(lm_store_new(&st), 0);
  return st;
}

/* ---- event recorder ---- */

typedef struct rec_ev {
  int kind, initial, old_status, new_status;
  uint64_t seq;
  uint8_t uuid[LM_UUID_LEN];
  char type[80], name[80], host[80], cause[80], old_name[16], new_name[16];
  int64_t at;
} rec_ev_t;

typedef struct rec {
  rec_ev_t ev[512];
  int n;
  /* behaviour inside the callback */
  lm_store_t *st;
  int remove_self_after; /* remove this watch after this many events */
  uint64_t id;
  int reenter;           /* try every mutating call */
  int reenter_rc[5];
} rec_t;

static void rec_cb(void *ud, const lm_store_event_t *e) {
  rec_t *r = ud;
  assert_true(r->n < 512);
  rec_ev_t *x = &r->ev[r->n++];
  x->kind = e->kind;
  x->initial = e->initial;
  x->old_status = e->old_status;
  x->new_status = e->new_status;
  x->seq = e->seq;
  memcpy(x->uuid, e->uuid, LM_UUID_LEN);
  snprintf(x->type, sizeof x->type, "%s", e->type);
  snprintf(x->name, sizeof x->name, "%s", e->name);
  snprintf(x->host, sizeof x->host, "%s", e->host);
  snprintf(x->cause, sizeof x->cause, "%s", e->cause);
  snprintf(x->old_name, sizeof x->old_name, "%s", e->old_name);
  snprintf(x->new_name, sizeof x->new_name, "%s", e->new_name);
  x->at = e->at_ms;
  if (r->remove_self_after && r->n == r->remove_self_after)
    assert_int_equal(lm_store_watch_remove(r->st, r->id), 0);
  if (r->reenter) {
    lm_service_t s = svc(1, 9, "late", LM_SVC_UP, "registered");
    uint64_t wid;
    uint8_t id[LM_STORE_ID_LEN];
    mk_id(id, 1);
    r->reenter_rc[0] = set_member(r->st, 77, LM_STORE_ALIVE, 5);
    r->reenter_rc[1] = set_member(r->st, 1, LM_STORE_DEAD, 5);
    r->reenter_rc[2] = set_services(r->st, 1, 1000, 5, &s, 1, 5);
    r->reenter_rc[3] = lm_store_member_remove(r->st, id, 5);
    r->reenter_rc[4] = lm_store_watch_add(r->st, NULL, rec_cb, r, 5, &wid);
  }
}

static void assert_seq_consecutive(const rec_t *r) {
  for (int i = 0; i < r->n; i++)
    assert_int_equal(r->ev[i].seq, (uint64_t)i + 1);
}

/* ================= codec ================= */

static const char *const k_tags[] = {"a", "blue", "canary"};
static const char *const k_mkeys[] = {"version", "zone", "empty"};
static const char *const k_mvals[] = {"1.2.3", "z1", ""};

static void fill_full(lm_service_t *s, lm_check_state_t *chk, char *longout) {
  memset(longout, 'x', 300);
  longout[300] = 0;
  chk[0].kind = LM_CHECK_HTTP;
  chk[0].status = LM_SVC_UP;
  chk[0].output = "HTTP 200 OK";
  chk[1].kind = LM_CHECK_TTL;
  chk[1].status = LM_SVC_DOWN;
  chk[1].output = longout;
  chk[2].kind = LM_CHECK_EXEC;
  chk[2].status = LM_SVC_UP;
  chk[2].output = "";
  memset(s, 0, sizeof *s);
  for (int i = 0; i < LM_UUID_LEN; i++)
    s->uuid[i] = (uint8_t)(0xf0 - i);
  s->type = "api";
  s->name = "api-worker";
  s->host = "ignored";
  s->region = "eu-west";
  s->worker = 3;
  s->pid = 4242;
  s->port = 65535;
  s->created_ms = 1700000000123;
  s->status = LM_SVC_MAINT;
  s->since_ms = -5; /* signed values survive */
  s->cause = "maintenance";
  s->note = "upgrading";
  s->maint_until_ms = 1700000999000;
  s->tags = k_tags;
  s->ntags = 3;
  s->meta_keys = k_mkeys;
  s->meta_values = k_mvals;
  s->nmeta = 3;
  s->checks = chk;
  s->nchecks = 3;
}

static void test_codec_roundtrip(void **state) {
  (void)state;
  lm_service_t s[2];
  lm_check_state_t chk[3];
  char longout[301];
  fill_full(&s[0], chk, longout);
  s[1] = svc(2, 1, "db", LM_SVC_DOWN, "check");
  s[1].name = NULL; /* NULL strings travel as "" */
  s[1].region = NULL;
  s[1].note = NULL;
  uint8_t id[LM_STORE_ID_LEN];
  mk_id(id, 9);
  uint8_t *buf;
  size_t len;
  assert_int_equal(lm_svclist_encode(&buf, &len, id, 0xfffffffe,
                                     0x123456789abcull, 1700000000000, s, 2),
                   0);
  uint8_t *b = exact(buf, len);
  lm_svclist_hdr_t h;
  assert_int_equal(lm_svclist_check(&h, b, len), 0);
  assert_int_equal(h.n, 2);
  lm_svclist_t *l;
  assert_int_equal(lm_svclist_decode(&l, b, len), 0);
  assert_memory_equal(l->hdr.id, id, LM_STORE_ID_LEN);
  assert_int_equal(l->hdr.gen, 0xfffffffe);
  assert_int_equal(l->hdr.seq, 0x123456789abcull);
  assert_int_equal(l->hdr.signed_ms, 1700000000000);
  assert_int_equal(l->hdr.n, 2);
  const lm_service_t *d = &l->svcs[0];
  assert_memory_equal(d->uuid, s[0].uuid, LM_UUID_LEN);
  assert_string_equal(d->type, "api");
  assert_string_equal(d->name, "api-worker");
  assert_null(d->host);
  assert_string_equal(d->region, "eu-west");
  assert_int_equal(d->worker, 3);
  assert_int_equal(d->pid, 4242);
  assert_int_equal(d->port, 65535);
  assert_int_equal(d->created_ms, 1700000000123);
  assert_int_equal(d->status, LM_SVC_MAINT);
  assert_int_equal(d->since_ms, -5);
  assert_string_equal(d->cause, "maintenance");
  assert_string_equal(d->note, "upgrading");
  assert_int_equal(d->maint_until_ms, 1700000999000);
  assert_int_equal(d->ntags, 3);
  for (int i = 0; i < 3; i++)
    assert_string_equal(d->tags[i], k_tags[i]);
  assert_int_equal(d->nmeta, 3);
  for (int i = 0; i < 3; i++) {
    assert_string_equal(d->meta_keys[i], k_mkeys[i]);
    assert_string_equal(d->meta_values[i], k_mvals[i]);
  }
  assert_int_equal(d->nchecks, 3);
  assert_int_equal(d->checks[0].kind, LM_CHECK_HTTP);
  assert_int_equal(d->checks[0].status, LM_SVC_UP);
  assert_string_equal(d->checks[0].output, "HTTP 200 OK");
  assert_int_equal(d->checks[1].kind, LM_CHECK_TTL);
  assert_int_equal(d->checks[1].status, LM_SVC_DOWN);
  /* cut to the wire maximum */
  assert_int_equal(strlen(d->checks[1].output), LM_CHECK_OUTPUT_WIRE_MAX);
  assert_memory_equal(d->checks[1].output, longout, LM_CHECK_OUTPUT_WIRE_MAX);
  assert_string_equal(d->checks[2].output, "");
  d = &l->svcs[1];
  assert_memory_equal(d->uuid, s[1].uuid, LM_UUID_LEN);
  assert_string_equal(d->type, "db");
  assert_string_equal(d->name, "");
  assert_string_equal(d->region, "");
  assert_string_equal(d->note, "");
  assert_string_equal(d->cause, "check");
  assert_int_equal(d->worker, -1);
  assert_int_equal(d->status, LM_SVC_DOWN);
  assert_int_equal(d->ntags, 0);
  assert_int_equal(d->nmeta, 0);
  assert_int_equal(d->nchecks, 0);
  /* the decoded list re-encodes to the same bytes */
  uint8_t *buf2;
  size_t len2;
  assert_int_equal(lm_svclist_encode(&buf2, &len2, l->hdr.id, l->hdr.gen,
                                     l->hdr.seq, l->hdr.signed_ms, l->svcs,
                                     l->hdr.n),
                   0);
  assert_int_equal(len2, len);
  assert_memory_equal(buf2, buf, len);
  free(buf2);
  lm_svclist_free(l);
  free(b);
  free(buf);
}

static void test_codec_empty_list(void **state) {
  (void)state;
  uint8_t id[LM_STORE_ID_LEN];
  mk_id(id, 1);
  uint8_t *buf;
  size_t len;
  assert_int_equal(lm_svclist_encode(&buf, &len, id, 1, 1, 0, NULL, 0), 0);
  lm_svclist_t *l;
  assert_int_equal(lm_svclist_decode(&l, buf, len), 0);
  assert_int_equal(l->hdr.n, 0);
  lm_svclist_free(l);
  free(buf);
}

static void test_codec_every_prefix_rejected(void **state) {
  (void)state;
  lm_service_t s[2];
  lm_check_state_t chk[3];
  char longout[301];
  fill_full(&s[0], chk, longout);
  s[1] = svc(2, 1, "db", LM_SVC_UP, "registered");
  uint8_t id[LM_STORE_ID_LEN];
  mk_id(id, 3);
  uint8_t *buf;
  size_t len;
  assert_int_equal(lm_svclist_encode(&buf, &len, id, 1, 2, 3, s, 2), 0);
  for (size_t i = 0; i < len; i++) {
    uint8_t *b = exact(buf, i);
    assert_int_equal(lm_svclist_check(NULL, b, i), LM_STORE_ETRUNC);
    lm_svclist_t *l = (lm_svclist_t *)1;
    assert_int_equal(lm_svclist_decode(&l, b, i), LM_STORE_ETRUNC);
    assert_null(l);
    free(b);
  }
  /* and a trailing byte is not ignored */
  uint8_t *b = malloc(len + 1);
  memcpy(b, buf, len);
  b[len] = 0xc0;
  assert_int_equal(lm_svclist_check(NULL, b, len + 1), LM_STORE_EMALFORMED);
  free(b);
  free(buf);
}

/* Hand-built lists: one service with one field replaced by `mut`. */
enum mut {
  M_NONE,
  M_AT_LIMITS,
  M_EXTRA_FIELDS, /* a later version's extra elements: skipped */
  M_VERSION2,
  M_LIST_SHORT,
  M_NOT_ARRAY,
  M_ID_STR,
  M_ID_31,
  M_GEN_NEG,
  M_GEN_BIG,
  M_SEQ_STR,
  M_SIGNED_NEG,
  M_SVCS_MAP,
  M_SVC_15,
  M_SVC_NOT_ARRAY,
  M_UUID_15,
  M_UUID_STR,
  M_TYPE_EMPTY,
  M_TYPE_INT,
  M_TYPE_LONG,
  M_NAME_LONG,
  M_NAME_NUL,
  M_REGION_LONG,
  M_WORKER_M2,
  M_WORKER_BIG,
  M_PID_NEG,
  M_PORT_BIG,
  M_CREATED_STR,
  M_STATUS_3,
  M_STATUS_NEG,
  M_SINCE_NIL,
  M_CAUSE_LONG,
  M_NOTE_LONG,
  M_MAINT_FLOAT,
  M_TAGS_17,
  M_TAG_LONG,
  M_TAG_EMPTY,
  M_TAGS_MAP,
  M_META_33,
  M_META_KEY_LONG,
  M_META_KEY_EMPTY,
  M_META_VAL_LONG,
  M_META_VAL_INT,
  M_META_DUPKEY,
  M_CHECKS_5,
  M_CHECK_KIND_0,
  M_CHECK_KIND_6,
  M_CHECK_STATUS_2,
  M_CHECK_OUT_LONG,
  M_CHECK_SHORT,
  M_SVCS_1025,
  M_SVCS_HUGE_COUNT,
  M_TAGS_HUGE_COUNT,
  M_META_HUGE_COUNT,
  M_DUP_UUID,
  M_NEST_DEEP, /* an extra field nested beyond the skip depth */
  M_COUNT
};

static const int k_mut_rc[M_COUNT] = {
    [M_NONE] = 0,
    [M_AT_LIMITS] = 0,
    [M_EXTRA_FIELDS] = 0,
    [M_VERSION2] = LM_STORE_EVERSION,
    [M_LIST_SHORT] = LM_STORE_EMALFORMED,
    [M_NOT_ARRAY] = LM_STORE_EMALFORMED,
    [M_ID_STR] = LM_STORE_EMALFORMED,
    [M_ID_31] = LM_STORE_EMALFORMED,
    [M_GEN_NEG] = LM_STORE_EMALFORMED,
    [M_GEN_BIG] = LM_STORE_EMALFORMED,
    [M_SEQ_STR] = LM_STORE_EMALFORMED,
    [M_SIGNED_NEG] = LM_STORE_EMALFORMED,
    [M_SVCS_MAP] = LM_STORE_EMALFORMED,
    [M_SVC_15] = LM_STORE_EMALFORMED,
    [M_SVC_NOT_ARRAY] = LM_STORE_EMALFORMED,
    [M_UUID_15] = LM_STORE_EMALFORMED,
    [M_UUID_STR] = LM_STORE_EMALFORMED,
    [M_TYPE_EMPTY] = LM_STORE_EMALFORMED,
    [M_TYPE_INT] = LM_STORE_EMALFORMED,
    [M_TYPE_LONG] = LM_STORE_ETOOBIG,
    [M_NAME_LONG] = LM_STORE_ETOOBIG,
    [M_NAME_NUL] = LM_STORE_EMALFORMED,
    [M_REGION_LONG] = LM_STORE_ETOOBIG,
    [M_WORKER_M2] = LM_STORE_EMALFORMED,
    [M_WORKER_BIG] = LM_STORE_EMALFORMED,
    [M_PID_NEG] = LM_STORE_EMALFORMED,
    [M_PORT_BIG] = LM_STORE_EMALFORMED,
    [M_CREATED_STR] = LM_STORE_EMALFORMED,
    [M_STATUS_3] = LM_STORE_EMALFORMED,
    [M_STATUS_NEG] = LM_STORE_EMALFORMED,
    [M_SINCE_NIL] = LM_STORE_EMALFORMED,
    [M_CAUSE_LONG] = LM_STORE_ETOOBIG,
    [M_NOTE_LONG] = LM_STORE_ETOOBIG,
    [M_MAINT_FLOAT] = LM_STORE_EMALFORMED,
    [M_TAGS_17] = LM_STORE_ETOOBIG,
    [M_TAG_LONG] = LM_STORE_ETOOBIG,
    [M_TAG_EMPTY] = LM_STORE_EMALFORMED,
    [M_TAGS_MAP] = LM_STORE_EMALFORMED,
    [M_META_33] = LM_STORE_ETOOBIG,
    [M_META_KEY_LONG] = LM_STORE_ETOOBIG,
    [M_META_KEY_EMPTY] = LM_STORE_EMALFORMED,
    [M_META_VAL_LONG] = LM_STORE_ETOOBIG,
    [M_META_VAL_INT] = LM_STORE_EMALFORMED,
    [M_META_DUPKEY] = LM_STORE_EMALFORMED,
    [M_CHECKS_5] = LM_STORE_ETOOBIG,
    [M_CHECK_KIND_0] = LM_STORE_EMALFORMED,
    [M_CHECK_KIND_6] = LM_STORE_EMALFORMED,
    [M_CHECK_STATUS_2] = LM_STORE_EMALFORMED,
    [M_CHECK_OUT_LONG] = LM_STORE_ETOOBIG,
    [M_CHECK_SHORT] = LM_STORE_EMALFORMED,
    [M_SVCS_1025] = LM_STORE_ETOOBIG,
    [M_SVCS_HUGE_COUNT] = LM_STORE_ETRUNC,
    [M_TAGS_HUGE_COUNT] = LM_STORE_ETRUNC,
    [M_META_HUGE_COUNT] = LM_STORE_ETRUNC,
    [M_DUP_UUID] = LM_STORE_EDUPUUID,
    [M_NEST_DEEP] = LM_STORE_EMALFORMED,
};

static void pk_str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* A string of n copies of c. */
static void pk_rep(msgpack_packer *pk, char c, size_t n) {
  char b[512];
  assert_true(n <= sizeof b);
  memset(b, c, n);
  msgpack_pack_str_with_body(pk, b, n);
}

static void pk_service(msgpack_packer *pk, int mut, int k) {
  if (mut == M_SVC_NOT_ARRAY) {
    msgpack_pack_map(pk, 0);
    return;
  }
  int extra = mut == M_EXTRA_FIELDS || mut == M_NEST_DEEP;
  msgpack_pack_array(pk, mut == M_SVC_15 ? 15 : extra ? 18 : 16);
  uint8_t u[LM_UUID_LEN];
  mk_uuid(u, 1, mut == M_DUP_UUID ? 0 : k);
  if (mut == M_UUID_STR)
    msgpack_pack_str_with_body(pk, u, LM_UUID_LEN);
  else
    msgpack_pack_bin_with_body(pk, u, mut == M_UUID_15 ? 15 : LM_UUID_LEN);
  int lim = mut == M_AT_LIMITS;
  if (mut == M_TYPE_EMPTY)
    pk_str(pk, "");
  else if (mut == M_TYPE_INT)
    msgpack_pack_int(pk, 7);
  else
    pk_rep(pk, 't', mut == M_TYPE_LONG ? 65 : lim ? 64 : 3);
  if (mut == M_NAME_NUL)
    msgpack_pack_str_with_body(pk, "a\0b", 3);
  else
    pk_rep(pk, 'n', mut == M_NAME_LONG ? 65 : lim ? 64 : 0);
  pk_rep(pk, 'r', mut == M_REGION_LONG ? 65 : lim ? 64 : 2);
  msgpack_pack_int64(pk, mut == M_WORKER_M2    ? -2
                         : mut == M_WORKER_BIG ? (int64_t)INT32_MAX + 1
                                               : -1);
  msgpack_pack_int64(pk, mut == M_PID_NEG ? -1 : lim ? INT32_MAX : 10);
  msgpack_pack_int64(pk, mut == M_PORT_BIG ? 65536 : 80);
  if (mut == M_CREATED_STR)
    pk_str(pk, "yesterday");
  else
    msgpack_pack_int64(pk, 1000);
  msgpack_pack_int64(pk, mut == M_STATUS_3 ? 3 : mut == M_STATUS_NEG ? -1 : 0);
  if (mut == M_SINCE_NIL)
    msgpack_pack_nil(pk);
  else
    msgpack_pack_int64(pk, 900);
  pk_rep(pk, 'c', mut == M_CAUSE_LONG ? 33 : lim ? 32 : 5);
  pk_rep(pk, 'o', mut == M_NOTE_LONG ? 257 : lim ? 256 : 0);
  if (mut == M_MAINT_FLOAT)
    msgpack_pack_double(pk, 1.5);
  else
    msgpack_pack_int64(pk, 0);
  /* tags */
  if (mut == M_TAGS_MAP) {
    msgpack_pack_map(pk, 0);
  } else if (mut == M_TAGS_HUGE_COUNT) {
    msgpack_pack_array(pk, 0xffffffffu);
  } else {
    int nt = mut == M_TAGS_17 ? 17 : lim ? 16 : 1;
    msgpack_pack_array(pk, nt);
    for (int i = 0; i < nt; i++) {
      if (mut == M_TAG_EMPTY)
        pk_str(pk, "");
      else
        pk_rep(pk, (char)('a' + i), mut == M_TAG_LONG ? 65 : lim ? 64 : 1);
    }
  }
  /* meta */
  if (mut == M_META_HUGE_COUNT) {
    msgpack_pack_map(pk, 0xffffffffu);
  } else {
    int nm = mut == M_META_33 ? 33 : lim ? 32 : mut == M_META_DUPKEY ? 2 : 1;
    msgpack_pack_map(pk, nm);
    for (int i = 0; i < nm; i++) {
      char key[80];
      size_t kl = mut == M_META_KEY_LONG ? 65 : lim ? 64 : 4;
      memset(key, 'k', kl);
      key[0] = (char)('A' + (mut == M_META_DUPKEY ? 0 : i));
      if (mut == M_META_KEY_EMPTY)
        kl = 0;
      msgpack_pack_str_with_body(pk, key, kl);
      if (mut == M_META_VAL_INT)
        msgpack_pack_int(pk, 1);
      else
        pk_rep(pk, 'v', mut == M_META_VAL_LONG ? 257 : lim ? 256 : 3);
    }
  }
  /* checks */
  int nc = mut == M_CHECKS_5 ? 5 : lim ? 4 : 1;
  msgpack_pack_array(pk, nc);
  for (int i = 0; i < nc; i++) {
    msgpack_pack_array(pk, mut == M_CHECK_SHORT ? 2 : 3);
    msgpack_pack_int(pk, mut == M_CHECK_KIND_0   ? 0
                         : mut == M_CHECK_KIND_6 ? 6
                                                 : LM_CHECK_TCP);
    msgpack_pack_int(pk, mut == M_CHECK_STATUS_2 ? 2 : 1);
    if (mut != M_CHECK_SHORT)
      pk_rep(pk, 'x',
             mut == M_CHECK_OUT_LONG ? LM_CHECK_OUTPUT_WIRE_MAX + 1
             : lim                   ? LM_CHECK_OUTPUT_WIRE_MAX
                                     : 2);
  }
  if (extra) {
    if (mut == M_NEST_DEEP) {
      for (int i = 0; i < 12; i++)
        msgpack_pack_array(pk, 1);
      msgpack_pack_nil(pk);
    } else {
      msgpack_pack_map(pk, 1);
      pk_str(pk, "future");
      msgpack_pack_array(pk, 2);
      msgpack_pack_double(pk, 2.5);
      msgpack_pack_bin_with_body(pk, "xy", 2);
    }
    msgpack_pack_true(pk);
  }
}

static void build_list(msgpack_sbuffer *sb, int mut) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  if (mut == M_NOT_ARRAY) {
    msgpack_pack_map(&pk, 0);
    return;
  }
  msgpack_pack_array(&pk, mut == M_LIST_SHORT ? 5 : 6);
  msgpack_pack_int(&pk, mut == M_VERSION2 ? 2 : 1);
  uint8_t id[LM_STORE_ID_LEN];
  mk_id(id, 1);
  if (mut == M_ID_STR)
    msgpack_pack_str_with_body(&pk, id, LM_STORE_ID_LEN);
  else
    msgpack_pack_bin_with_body(&pk, id, mut == M_ID_31 ? 31 : LM_STORE_ID_LEN);
  msgpack_pack_int64(&pk, mut == M_GEN_NEG   ? -1
                          : mut == M_GEN_BIG ? (int64_t)UINT32_MAX + 1
                                             : 7);
  if (mut == M_SEQ_STR)
    pk_str(&pk, "1");
  else
    msgpack_pack_uint64(&pk, UINT64_MAX);
  msgpack_pack_int64(&pk, mut == M_SIGNED_NEG ? -1 : 123456);
  if (mut == M_LIST_SHORT)
    return;
  if (mut == M_SVCS_MAP) {
    msgpack_pack_map(&pk, 0);
    return;
  }
  if (mut == M_SVCS_HUGE_COUNT) {
    msgpack_pack_array(&pk, 0xffffffffu);
    pk_service(&pk, M_NONE, 0);
    return;
  }
  int n = mut == M_SVCS_1025 ? LM_SVC_PER_NODE_MAX + 1 : 2;
  msgpack_pack_array(&pk, n);
  for (int i = 0; i < n; i++)
    pk_service(&pk, mut == M_SVCS_1025 ? M_NONE : mut, i);
}

static void test_codec_mutations(void **state) {
  (void)state;
  for (int mut = 0; mut < M_COUNT; mut++) {
    msgpack_sbuffer sb;
    build_list(&sb, mut);
    uint8_t *b = exact((const uint8_t *)sb.data, sb.size);
    lm_svclist_hdr_t h;
    int rc = lm_svclist_check(&h, b, sb.size);
    if (rc != k_mut_rc[mut])
      print_error("mutation %d: got %d (%s), want %d\n", mut, rc,
                  lm_store_strerror(rc), k_mut_rc[mut]);
    assert_int_equal(rc, k_mut_rc[mut]);
    lm_svclist_t *l = NULL;
    assert_int_equal(lm_svclist_decode(&l, b, sb.size), k_mut_rc[mut]);
    if (rc == 0) {
      assert_non_null(l);
      assert_int_equal(l->hdr.n, 2);
      assert_int_equal(l->hdr.gen, 7);
      assert_int_equal(l->hdr.seq, UINT64_MAX);
      assert_int_equal(l->hdr.signed_ms, 123456);
      /* what a decoder accepts, the validator accepts too */
      for (size_t i = 0; i < l->hdr.n; i++)
        assert_int_equal(lm_service_validate(&l->svcs[i], NULL, 0), 0);
      if (mut == M_AT_LIMITS) {
        const lm_service_t *s = &l->svcs[0];
        assert_int_equal(strlen(s->type), LM_SVC_TYPE_MAX);
        assert_int_equal(s->ntags, LM_SVC_TAGS_MAX);
        assert_int_equal(s->nmeta, LM_SVC_META_KEYS_MAX);
        assert_int_equal(strlen(s->meta_values[31]), LM_SVC_META_VALUE_MAX);
        assert_int_equal(s->nchecks, LM_SVC_CHECKS_MAX);
        assert_int_equal(s->pid, INT32_MAX);
      }
      lm_svclist_free(l);
    } else {
      assert_null(l);
    }
    free(b);
    msgpack_sbuffer_destroy(&sb);
  }
}

static void test_codec_encode_refuses(void **state) {
  (void)state;
  uint8_t id[LM_STORE_ID_LEN];
  mk_id(id, 1);
  uint8_t *buf = (uint8_t *)1;
  size_t len = 1;
  lm_service_t s[2] = {svc(1, 1, "a", 0, ""), svc(1, 1, "b", 0, "")};
  assert_int_equal(lm_svclist_encode(&buf, &len, id, 1, 1, 0, s, 2),
                   LM_STORE_EDUPUUID);
  assert_null(buf);
  s[1].type = "";
  mk_uuid(s[1].uuid, 1, 2);
  assert_int_equal(lm_svclist_encode(&buf, &len, id, 1, 1, 0, s, 2),
                   LM_STORE_EINVAL);
  assert_null(buf);
  assert_int_equal(lm_svclist_encode(&buf, &len, id, 1, 1, -1, s, 1),
                   LM_STORE_EINVAL);
}

typedef struct vcase {
  const char *want;
  void (*mutate)(lm_service_t *s);
} vcase_t;

static const char *g_many[40];
static char g_long[5000];

static void v_type_null(lm_service_t *s) { s->type = NULL; }
static void v_type_empty(lm_service_t *s) { s->type = ""; }
static void v_type_long(lm_service_t *s) { s->type = g_long + 5000 - 66; }
static void v_name_long(lm_service_t *s) { s->name = g_long + 5000 - 66; }
static void v_region_long(lm_service_t *s) { s->region = g_long + 5000 - 66; }
static void v_worker(lm_service_t *s) { s->worker = -2; }
static void v_pid(lm_service_t *s) { s->pid = -1; }
static void v_status(lm_service_t *s) { s->status = (lm_svc_status_t)3; }
static void v_cause(lm_service_t *s) { s->cause = g_long + 5000 - 34; }
static void v_note(lm_service_t *s) { s->note = g_long + 5000 - 258; }
static void v_tags_many(lm_service_t *s) {
  s->tags = g_many;
  s->ntags = 17;
}
static void v_tag_long(lm_service_t *s) {
  static const char *t[1];
  t[0] = g_long + 5000 - 66;
  s->tags = t;
  s->ntags = 1;
}
static void v_tag_empty(lm_service_t *s) {
  static const char *t[1] = {""};
  s->tags = t;
  s->ntags = 1;
}
static void v_meta_many(lm_service_t *s) {
  s->meta_keys = g_many;
  s->meta_values = g_many;
  s->nmeta = 33;
}
static void v_meta_key_long(lm_service_t *s) {
  static const char *k[1], *v[1] = {"x"};
  k[0] = g_long + 5000 - 66;
  s->meta_keys = k;
  s->meta_values = v;
  s->nmeta = 1;
}
static void v_meta_val_long(lm_service_t *s) {
  static const char *k[1] = {"k"}, *v[1];
  v[0] = g_long + 5000 - 258;
  s->meta_keys = k;
  s->meta_values = v;
  s->nmeta = 1;
}
static void v_meta_dup(lm_service_t *s) {
  static const char *k[2] = {"k", "k"}, *v[2] = {"1", "2"};
  s->meta_keys = k;
  s->meta_values = v;
  s->nmeta = 2;
}
static lm_check_state_t g_chk[5];
static void v_checks_many(lm_service_t *s) {
  s->checks = g_chk;
  s->nchecks = 5;
}
static void v_check_kind(lm_service_t *s) {
  static lm_check_state_t c[1];
  c[0] = g_chk[0];
  c[0].kind = (lm_check_kind_t)9;
  s->checks = c;
  s->nchecks = 1;
}
static void v_check_status(lm_service_t *s) {
  static lm_check_state_t c[1];
  c[0] = g_chk[0];
  c[0].status = LM_SVC_MAINT;
  s->checks = c;
  s->nchecks = 1;
}
static void v_check_output(lm_service_t *s) {
  static lm_check_state_t c[1];
  c[0] = g_chk[0];
  c[0].output = g_long + 5000 - LM_CHECK_OUTPUT_MAX - 2;
  s->checks = c;
  s->nchecks = 1;
}

static void test_service_validate(void **state) {
  (void)state;
  memset(g_long, 'q', sizeof g_long - 1);
  g_long[sizeof g_long - 1] = 0;
  for (int i = 0; i < 40; i++)
    g_many[i] = name_of(i); /* repeats after 16: fine, only counts matter */
  for (int i = 0; i < 5; i++) {
    g_chk[i].kind = LM_CHECK_TCP;
    g_chk[i].status = LM_SVC_UP;
    g_chk[i].output = "";
  }
  const vcase_t cases[] = {
      {"type: required", v_type_null},
      {"type: required", v_type_empty},
      {"type: longer than 64 bytes", v_type_long},
      {"name: longer than 64 bytes", v_name_long},
      {"region: longer than 64 bytes", v_region_long},
      {"worker: below -1", v_worker},
      {"pid: negative", v_pid},
      {"status: not up, down or maintenance", v_status},
      {"cause: longer than 32 bytes", v_cause},
      {"note: longer than 256 bytes", v_note},
      {"tags: more than 16", v_tags_many},
      {"tags: tag longer than 64 bytes", v_tag_long},
      {"tags: empty tag", v_tag_empty},
      {"meta: more than 32 keys", v_meta_many},
      {"meta: key longer than 64 bytes", v_meta_key_long},
      {"meta: value of k longer than 256 bytes", v_meta_val_long},
      {"meta: key k given twice", v_meta_dup},
      {"checks: more than 4", v_checks_many},
      {"checks: unknown kind 9", v_check_kind},
      {"checks: status not up or down", v_check_status},
      {"checks: output longer than 4096 bytes", v_check_output},
  };
  char err[128];
  lm_service_t ok = svc(1, 1, "api", LM_SVC_UP, "registered");
  assert_int_equal(lm_service_validate(&ok, err, sizeof err), 0);
  assert_string_equal(err, "");
  /* check output up to LM_CHECK_OUTPUT_MAX is fine for a registration */
  lm_check_state_t c = {LM_CHECK_EXEC, LM_SVC_DOWN,
                        g_long + 5000 - LM_CHECK_OUTPUT_MAX - 1};
  ok.checks = &c;
  ok.nchecks = 1;
  assert_int_equal(lm_service_validate(&ok, err, sizeof err), 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lm_service_t s = svc(1, 1, "api", LM_SVC_UP, "registered");
    cases[i].mutate(&s);
    assert_int_equal(lm_service_validate(&s, err, sizeof err),
                     LM_STORE_EINVAL);
    assert_string_equal(err, cases[i].want);
  }
}

static void test_uuid_and_names(void **state) {
  (void)state;
  uint8_t u[LM_UUID_LEN], v[LM_UUID_LEN];
  for (int i = 0; i < LM_UUID_LEN; i++)
    u[i] = (uint8_t)(i * 17 + 3);
  char s[LM_UUID_STRLEN + 1];
  lm_uuid_format(s, u);
  assert_string_equal(s, "03142536-4758-697a-8b9c-adbecfe0f102");
  assert_int_equal(lm_uuid_parse(v, s), 0);
  assert_memory_equal(u, v, LM_UUID_LEN);
  assert_int_equal(lm_uuid_parse(v, "03142536-4758-697A-8B9C-ADBECFE0F102"),
                   0);
  assert_memory_equal(u, v, LM_UUID_LEN);
  assert_int_equal(lm_uuid_parse(v, "03142536-4758-697a-8b9c-adbecfe0f10"),
                   -1);
  assert_int_equal(lm_uuid_parse(v, "03142536-4758-697a-8b9c-adbecfe0f1022"),
                   -1);
  assert_int_equal(lm_uuid_parse(v, "0314253604758-697a-8b9c-adbecfe0f102"),
                   -1);
  assert_int_equal(lm_uuid_parse(v, "03142536-4758-697a-8b9c-adbecfe0f1g2"),
                   -1);
  assert_int_equal(lm_uuid_parse(v, NULL), -1);
  assert_string_equal(lm_svc_status_name(LM_SVC_UP), "up");
  assert_string_equal(lm_svc_status_name(LM_SVC_DOWN), "down");
  assert_string_equal(lm_svc_status_name(LM_SVC_MAINT), "maintenance");
  assert_string_equal(lm_check_kind_name(LM_CHECK_TTL), "ttl");
  assert_string_equal(lm_check_kind_name(LM_CHECK_PROCESS), "process");
  assert_string_equal(lm_check_kind_name(LM_CHECK_HTTP), "http");
  assert_string_equal(lm_check_kind_name(LM_CHECK_TCP), "tcp");
  assert_string_equal(lm_check_kind_name(LM_CHECK_EXEC), "exec");
  assert_string_equal(lm_check_kind_name((lm_check_kind_t)0), "unknown");
  assert_string_equal(lm_store_member_status_name(LM_STORE_LEFT), "left");
  assert_string_equal(lm_store_member_status_name(LM_STORE_UNKNOWN),
                      "unknown");
  assert_string_equal(lm_store_svc_status_name(LM_STORE_UNKNOWN), "unknown");
  /* every code has its own message, none is errno's or swim's range */
  for (int e = -1301; e >= -1311; e--)
    assert_string_not_equal(lm_store_strerror(e), "unknown error");
  assert_string_equal(lm_store_strerror(-1), "unknown error");
  assert_string_equal(lm_store_strerror(-312), "unknown error");
}

/* ================= the view ================= */

typedef struct collect {
  int n;
  uint8_t uuids[64][LM_UUID_LEN];
  int effective[64];
  char host[64][32];
} collect_t;

static int collect_cb(void *ud, const lm_store_svc_view_t *v) {
  collect_t *c = ud;
  if (c->n < 64) {
    memcpy(c->uuids[c->n], v->svc->uuid, LM_UUID_LEN);
    c->effective[c->n] = v->effective;
    snprintf(c->host[c->n], 32, "%s", v->svc->host);
  }
  c->n++; /* counts past what it keeps */
  return 0;
}

static int count_each(lm_store_t *st, const char *type, const char *host,
                      const char *region, int status) {
  lm_store_filter_t f;
  lm_store_filter_init(&f);
  f.type = type;
  f.host = host;
  f.region = region;
  f.status = status;
  collect_t c;
  memset(&c, 0, sizeof c);
  assert_int_equal(lm_store_services_each(st, &f, collect_cb, &c), 0);
  return c.n;
}

static int has_uuid(const collect_t *c, int member, int k) {
  uint8_t u[LM_UUID_LEN];
  mk_uuid(u, member, k);
  for (int i = 0; i < c->n; i++)
    if (memcmp(c->uuids[i], u, LM_UUID_LEN) == 0)
      return 1;
  return 0;
}

/* Three members: 1 (api x2 eu, db eu), 2 (api us, cache us, maint), 3
 * (db, no region). */
static void populate(lm_store_t *st) {
  for (int i = 1; i <= 3; i++)
    assert_int_equal(set_member(st, i, LM_STORE_ALIVE, 100), 0);
  lm_service_t a[3] = {svc(1, 0, "api", LM_SVC_UP, "registered"),
                       svc(1, 1, "api", LM_SVC_DOWN, "check"),
                       svc(1, 2, "db", LM_SVC_UP, "registered")};
  for (int i = 0; i < 3; i++)
    a[i].region = "eu";
  a[1].worker = 1;
  assert_int_equal(set_services(st, 1, 1, 100, a, 3, 100), 0);
  lm_service_t b[2] = {svc(2, 0, "api", LM_SVC_UP, "registered"),
                       svc(2, 1, "cache", LM_SVC_MAINT, "maintenance")};
  b[0].region = b[1].region = "us";
  assert_int_equal(set_services(st, 2, 1, 100, b, 2, 100), 0);
  lm_service_t c[1] = {svc(3, 0, "db", LM_SVC_UP, "registered")};
  assert_int_equal(set_services(st, 3, 1, 100, c, 1, 100), 0);
}

static void assert_counts(lm_store_t *st, size_t members, size_t up,
                          size_t down, size_t maint) {
  lm_store_counts_t c;
  lm_store_counts(st, &c);
  assert_int_equal(c.members, members);
  assert_int_equal(c.services, up + down + maint);
  assert_int_equal(c.services_by_status[LM_SVC_UP], up);
  assert_int_equal(c.services_by_status[LM_SVC_DOWN], down);
  assert_int_equal(c.services_by_status[LM_SVC_MAINT], maint);
  /* the status index agrees with the counts */
  assert_int_equal(count_each(st, NULL, NULL, NULL, LM_SVC_UP), up);
  assert_int_equal(count_each(st, NULL, NULL, NULL, LM_SVC_DOWN), down);
  assert_int_equal(count_each(st, NULL, NULL, NULL, LM_SVC_MAINT), maint);
  assert_int_equal(count_each(st, NULL, NULL, NULL, -1), up + down + maint);
}

static void test_store_indexes(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  populate(st);
  assert_counts(st, 3, 4, 1, 1);
  /* by uuid */
  uint8_t u[LM_UUID_LEN];
  mk_uuid(u, 2, 1);
  lm_store_svc_view_t v;
  assert_int_equal(lm_store_service_find(st, u, &v), 0);
  assert_string_equal(v.svc->type, "cache");
  assert_string_equal(v.svc->host, "node-2");
  assert_string_equal(v.svc->region, "us");
  assert_int_equal(v.effective, LM_SVC_MAINT);
  assert_int_equal(v.member_status, LM_STORE_ALIVE);
  assert_int_equal(v.signed_ms, 100);
  mk_uuid(u, 9, 9);
  assert_int_equal(lm_store_service_find(st, u, &v), LM_STORE_ENOTFOUND);
  /* by type, host, region, pairs, status, combinations */
  assert_int_equal(count_each(st, "api", NULL, NULL, -1), 3);
  assert_int_equal(count_each(st, "db", NULL, NULL, -1), 2);
  assert_int_equal(count_each(st, "nope", NULL, NULL, -1), 0);
  assert_int_equal(count_each(st, NULL, "node-1", NULL, -1), 3);
  assert_int_equal(count_each(st, NULL, "node-3", NULL, -1), 1);
  assert_int_equal(count_each(st, NULL, NULL, "eu", -1), 3);
  assert_int_equal(count_each(st, NULL, NULL, "", -1), 1);
  assert_int_equal(count_each(st, "api", "node-1", NULL, -1), 2);
  assert_int_equal(count_each(st, "api", "node-1", NULL, LM_SVC_UP), 1);
  assert_int_equal(count_each(st, "api", NULL, "us", -1), 1);
  assert_int_equal(count_each(st, NULL, NULL, "eu", LM_SVC_DOWN), 1);
  assert_int_equal(count_each(st, "db", "node-2", NULL, -1), 0);
  lm_store_filter_t f;
  lm_store_filter_init(&f);
  f.has_uuid = 1;
  mk_uuid(f.uuid, 1, 1);
  collect_t c;
  memset(&c, 0, sizeof c);
  assert_int_equal(lm_store_services_each(st, &f, collect_cb, &c), 0);
  assert_int_equal(c.n, 1);
  assert_true(has_uuid(&c, 1, 1));
  f.type = "db"; /* uuid and a type it does not have */
  memset(&c, 0, sizeof c);
  assert_int_equal(lm_store_services_each(st, &f, collect_cb, &c), 0);
  assert_int_equal(c.n, 0);
  memset(&c, 0, sizeof c);
  assert_int_equal(lm_store_services_each(st, NULL, collect_cb, &c), 0);
  assert_int_equal(c.n, 6);
  for (int k = 0; k < 3; k++)
    assert_true(has_uuid(&c, 1, k));
  /* members by id and by name */
  lm_store_member_t m;
  uint8_t id[LM_STORE_ID_LEN];
  mk_id(id, 2);
  assert_int_equal(lm_store_member_find(st, id, &m), 0);
  assert_string_equal(m.name, "node-2");
  assert_string_equal(m.addr, "10.0.0.1:7946");
  assert_int_equal(m.nservices, 2);
  assert_int_equal(m.svc_seq, 1);
  assert_int_equal(lm_store_member_find_name(st, "node-3", &m), 0);
  mk_id(id, 3);
  assert_memory_equal(m.id, id, LM_STORE_ID_LEN);
  assert_int_equal(lm_store_member_find_name(st, "node-4", &m),
                   LM_STORE_ENOTFOUND);

  /* a change: node-1 replaces its list (api 0 goes down, db leaves, a new
   * worker comes) */
  lm_service_t a[3] = {svc(1, 0, "api", LM_SVC_DOWN, "check"),
                       svc(1, 1, "api", LM_SVC_DOWN, "check"),
                       svc(1, 3, "api", LM_SVC_UP, "registered")};
  assert_int_equal(set_services(st, 1, 2, 200, a, 3, 200), 0);
  assert_counts(st, 3, 3, 2, 1);
  assert_int_equal(count_each(st, "db", NULL, NULL, -1), 1);
  assert_int_equal(count_each(st, "api", "node-1", NULL, -1), 3);
  assert_int_equal(count_each(st, NULL, NULL, "eu", -1), 0);
  mk_uuid(u, 1, 2);
  assert_int_equal(lm_store_service_find(st, u, NULL), LM_STORE_ENOTFOUND);
  /* the member dies: its services go down */
  assert_int_equal(set_member(st, 1, LM_STORE_DEAD, 300), 0);
  assert_counts(st, 3, 2, 3, 1);
  lm_store_counts_t cn;
  lm_store_counts(st, &cn);
  assert_int_equal(cn.members_by_status[LM_STORE_DEAD], 1);
  assert_int_equal(cn.members_by_status[LM_STORE_ALIVE], 2);
  /* removal */
  mk_id(id, 2);
  assert_int_equal(lm_store_member_remove(st, id, 400), 0);
  assert_counts(st, 2, 1, 3, 0);
  assert_int_equal(count_each(st, NULL, "node-2", NULL, -1), 0);
  assert_int_equal(count_each(st, "cache", NULL, NULL, -1), 0);
  assert_int_equal(lm_store_member_find(st, id, NULL), LM_STORE_ENOTFOUND);
  assert_int_equal(lm_store_member_remove(st, id, 400), LM_STORE_ENOTFOUND);
  /* an empty list leaves the member with nothing */
  assert_int_equal(set_services(st, 3, 2, 500, NULL, 0, 500), 0);
  assert_counts(st, 2, 0, 3, 0);
  lm_store_free(st);
}

/* A member changing its name moves its services to the new host. */
static void test_store_rename(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  populate(st);
  lm_store_member_t m;
  memset(&m, 0, sizeof m);
  mk_id(m.id, 1);
  m.name = "renamed";
  m.status = LM_STORE_ALIVE;
  m.gen = m.ver = 1;
  m.since_ms = 100;
  assert_int_equal(lm_store_member_set(st, &m, 150), 0);
  assert_int_equal(count_each(st, NULL, "node-1", NULL, -1), 0);
  assert_int_equal(count_each(st, NULL, "renamed", NULL, -1), 3);
  assert_int_equal(count_each(st, "api", "renamed", NULL, -1), 2);
  assert_int_equal(lm_store_is_up(st, "db", "renamed", 150, NULL), 1);
  assert_int_equal(lm_store_is_up(st, "db", "node-1", 150, NULL), 0);
  assert_int_equal(lm_store_member_find_name(st, "node-1", NULL),
                   LM_STORE_ENOTFOUND);
  assert_int_equal(lm_store_member_find_name(st, "renamed", NULL), 0);
  lm_store_free(st);
}

static int first_member_cb(void *ud, const lm_store_member_t *m) {
  *(int *)ud = m->id[0];
  return 1;
}

/* Names and addresses are kept at their length: a member whose strings
 * grow moves, and every way of reaching it (id, name, the member order,
 * its services' host, is_up, watches) follows; strings at the maximum
 * length fit, one byte more is refused. */
static void test_store_member_strings(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  populate(st);
  char longname[LM_STORE_NAME_MAX + 2], longaddr[LM_STORE_ADDR_MAX + 2];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  memset(longaddr, '1', sizeof longaddr - 1);
  longaddr[sizeof longaddr - 1] = 0;

  rec_t *r = calloc(1, sizeof *r);
  assert_non_null(r);
  lm_store_watch_filter_t wf;
  memset(&wf, 0, sizeof wf);
  wf.all = 1;
  uint64_t wid;
  assert_int_equal(lm_store_watch_add(st, &wf, rec_cb, r, 110, &wid), 0);
  r->n = 0;

  lm_store_member_t m;
  memset(&m, 0, sizeof m);
  mk_id(m.id, 1);
  m.status = LM_STORE_ALIVE;
  m.gen = m.ver = 1;
  m.since_ms = 100;
  /* one byte too long, either string: refused, nothing changes */
  m.name = longname;
  m.addr = "10.0.0.1:7946";
  assert_int_equal(lm_store_member_set(st, &m, 150), LM_STORE_EINVAL);
  longname[LM_STORE_NAME_MAX] = 0;
  m.addr = longaddr;
  assert_int_equal(lm_store_member_set(st, &m, 150), LM_STORE_EINVAL);
  longaddr[LM_STORE_ADDR_MAX] = 0;
  assert_int_equal(lm_store_member_find_name(st, "node-1", NULL), 0);

  /* both at the maximum: the member outgrows its room */
  assert_int_equal(lm_store_member_set(st, &m, 150), 0);
  lm_store_member_t out;
  assert_int_equal(lm_store_member_find(st, m.id, &out), 0);
  assert_string_equal(out.name, longname);
  assert_string_equal(out.addr, longaddr);
  assert_int_equal(out.nservices, 3);
  assert_int_equal(out.svc_seq, 1);
  assert_int_equal(lm_store_member_find_name(st, longname, &out), 0);
  assert_int_equal(out.id[0], 1);
  assert_int_equal(lm_store_member_find_name(st, "node-1", NULL),
                   LM_STORE_ENOTFOUND);
  int first = 0;
  assert_int_equal(lm_store_members_each(st, first_member_cb, &first), 1);
  assert_int_equal(first, 1); /* still first in the order of arrival */
  assert_int_equal(count_each(st, NULL, longname, NULL, -1), 3);
  assert_int_equal(count_each(st, "api", longname, NULL, -1), 2);
  assert_int_equal(count_each(st, NULL, "node-1", NULL, -1), 0);
  lm_store_is_up_t up;
  assert_int_equal(lm_store_is_up(st, "db", longname, 150, &up), 1);
  assert_string_equal(up.host, longname);
  uint8_t u[LM_UUID_LEN];
  mk_uuid(u, 1, 2);
  lm_store_svc_view_t v;
  assert_int_equal(lm_store_service_find(st, u, &v), 0);
  assert_string_equal(v.svc->host, longname);
  mk_id(m.id, 1);
  assert_memory_equal(v.member_id, m.id, LM_STORE_ID_LEN);
  assert_counts(st, 3, 4, 1, 1);
  assert_int_equal(r->n, 0); /* a name or an address is not a transition */

  /* the member dies: its services' events carry the new name */
  m.status = LM_STORE_DEAD;
  assert_int_equal(lm_store_member_set(st, &m, 160), 0);
  assert_int_equal(r->n, 3); /* the member, api 0, db (api 1 was down) */
  for (int i = 0; i < r->n; i++)
    assert_string_equal(r->ev[i].host, longname);

  /* shorter strings are written in place; the view handed out may be
   * handed back with one field changed (the strings alias the store) */
  assert_int_equal(lm_store_member_find(st, m.id, &out), 0);
  out.addr = "10.9.9.9:1";
  out.status = LM_STORE_ALIVE;
  assert_int_equal(lm_store_member_set(st, &out, 170), 0);
  assert_int_equal(lm_store_member_find(st, m.id, &out), 0);
  assert_string_equal(out.name, longname);
  assert_string_equal(out.addr, "10.9.9.9:1");
  out.name = "n1";
  assert_int_equal(lm_store_member_set(st, &out, 180), 0);
  assert_int_equal(lm_store_member_find(st, m.id, &out), 0);
  assert_string_equal(out.name, "n1");
  assert_string_equal(out.addr, "10.9.9.9:1");
  assert_int_equal(lm_store_is_up(st, "db", "n1", 180, NULL), 1);
  assert_int_equal(count_each(st, NULL, longname, NULL, -1), 0);
  /* a longer name than the room now, keeping the address it had */
  out.name = "node-one-again";
  assert_int_equal(lm_store_member_set(st, &out, 190), 0);
  assert_int_equal(lm_store_member_find(st, m.id, &out), 0);
  assert_string_equal(out.name, "node-one-again");
  assert_string_equal(out.addr, "10.9.9.9:1");
  assert_int_equal(count_each(st, "api", "node-one-again", NULL, -1), 2);
  /* no address at all */
  out.addr = NULL;
  assert_int_equal(lm_store_member_set(st, &out, 200), 0);
  assert_int_equal(lm_store_member_find(st, m.id, &out), 0);
  assert_string_equal(out.addr, "");
  assert_string_equal(out.name, "node-one-again");

  /* two members of one name: a move keeps which one a name finds */
  assert_int_equal(set_member(st, 5, LM_STORE_ALIVE, 210), 0);
  assert_int_equal(set_member(st, 6, LM_STORE_ALIVE, 210), 0);
  lm_store_member_t twin;
  for (int k = 5; k <= 6; k++) {
    mk_id(twin.id, k);
    assert_int_equal(lm_store_member_find(st, twin.id, &twin), 0);
    twin.name = "twin";
    assert_int_equal(lm_store_member_set(st, &twin, 220), 0);
  }
  assert_int_equal(lm_store_member_find_name(st, "twin", &out), 0);
  int found = out.id[0];
  for (int k = 5; k <= 6; k++) {
    mk_id(twin.id, k);
    assert_int_equal(lm_store_member_find(st, twin.id, &twin), 0);
    twin.addr = longaddr;
    assert_int_equal(lm_store_member_set(st, &twin, 230), 0);
    assert_int_equal(lm_store_member_find_name(st, "twin", &out), 0);
    assert_int_equal(out.id[0], found);
    assert_int_equal(lm_store_member_find(st, twin.id, &out), 0);
    assert_string_equal(out.addr, longaddr);
    assert_string_equal(out.name, "twin");
  }
  /* and removal still finds each one */
  for (int k = 5; k <= 6; k++) {
    mk_id(twin.id, k);
    assert_int_equal(lm_store_member_remove(st, twin.id, 240), 0);
  }
  assert_int_equal(lm_store_member_find_name(st, "twin", NULL),
                   LM_STORE_ENOTFOUND);
  assert_counts(st, 3, 4, 1, 1);
  lm_store_free(st);
  free(r);
}

static void test_store_10000_members(void **state) {
  (void)state;
  enum { M = 10000, K = 10 };
  static const char *const types[K] = {"api",  "db",   "cache", "queue",
                                       "web",  "auth", "mail",  "search",
                                       "logs", "metrics"};
  lm_store_t *st = new_store();
  char name[32];
  for (int i = 0; i < M; i++) {
    lm_store_member_t m;
    memset(&m, 0, sizeof m);
    mk_id(m.id, i);
    snprintf(name, sizeof name, "host-%05d", i);
    m.name = name;
    m.status = i % 100 == 7 ? LM_STORE_DEAD : LM_STORE_ALIVE;
    m.gen = 1;
    assert_int_equal(lm_store_member_set(st, &m, 1), 0);
    lm_service_t s[K];
    for (int k = 0; k < K; k++) {
      s[k] = svc(i, k, types[k], k == 3 ? LM_SVC_DOWN : LM_SVC_UP,
                 "registered");
      s[k].region = i % 2 ? "eu" : "us";
    }
    assert_int_equal(set_services(st, i, 1, 10, s, K, 1), 0);
  }
  lm_store_counts_t c;
  lm_store_counts(st, &c);
  assert_int_equal(c.members, M);
  assert_int_equal(c.services, M * K);
  /* dead members: 100 of them; their 10 services all down */
  size_t dead = M / 100;
  assert_int_equal(c.members_by_status[LM_STORE_DEAD], dead);
  assert_int_equal(c.services_by_status[LM_SVC_UP], (M - dead) * (K - 1));
  assert_int_equal(c.services_by_status[LM_SVC_DOWN], M + dead * (K - 1));
  /* every (type, host) is found, with the right answer */
  for (int i = 0; i < M; i++) {
    snprintf(name, sizeof name, "host-%05d", i);
    for (int k = 0; k < K; k++) {
      lm_store_is_up_t out;
      int want = i % 100 != 7 && k != 3;
      assert_int_equal(lm_store_is_up(st, types[k], name, 20, &out), want);
      assert_int_equal(out.found, 1);
      uint8_t u[LM_UUID_LEN];
      mk_uuid(u, i, k);
      assert_memory_equal(out.uuid, u, LM_UUID_LEN);
      assert_int_equal(out.age_ms, 10);
      assert_int_equal(lm_store_is_up_uuid(st, u, 20, NULL), want);
    }
  }
  assert_int_equal(count_each(st, NULL, "host-04242", NULL, -1), K);
  lm_store_filter_t f;
  lm_store_filter_init(&f);
  f.type = "api";
  f.region = "eu";
  f.status = LM_SVC_DOWN;
  collect_t col;
  memset(&col, 0, sizeof col);
  assert_int_equal(lm_store_services_each(st, &f, collect_cb, &col), 0);
  /* dead members with odd index: i % 100 == 7 is always odd */
  assert_int_equal(col.n, (int)dead);
  lm_store_free(st);
}

/* Every member status x service status, and the unknown answers. */
static void test_is_up_table(void **state) {
  (void)state;
  static const struct {
    int member, own, eff, up;
  } rows[] = {
      {LM_STORE_ALIVE, LM_SVC_UP, LM_SVC_UP, 1},
      {LM_STORE_ALIVE, LM_SVC_DOWN, LM_SVC_DOWN, 0},
      {LM_STORE_ALIVE, LM_SVC_MAINT, LM_SVC_MAINT, 0},
      {LM_STORE_SUSPECT, LM_SVC_UP, LM_SVC_UP, 1},
      {LM_STORE_SUSPECT, LM_SVC_DOWN, LM_SVC_DOWN, 0},
      {LM_STORE_SUSPECT, LM_SVC_MAINT, LM_SVC_MAINT, 0},
      {LM_STORE_DEAD, LM_SVC_UP, LM_SVC_DOWN, 0},
      {LM_STORE_DEAD, LM_SVC_DOWN, LM_SVC_DOWN, 0},
      {LM_STORE_DEAD, LM_SVC_MAINT, LM_SVC_DOWN, 0},
      {LM_STORE_LEFT, LM_SVC_UP, LM_SVC_DOWN, 0},
      {LM_STORE_LEFT, LM_SVC_DOWN, LM_SVC_DOWN, 0},
      {LM_STORE_LEFT, LM_SVC_MAINT, LM_SVC_DOWN, 0},
  };
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    /* reached both ways: set the member's status before the list, and
     * move an alive member to it after */
    for (int order = 0; order < 2; order++) {
      lm_store_t *st = new_store();
      assert_int_equal(
          set_member(st, 1, order ? LM_STORE_ALIVE : rows[r].member, 10), 0);
      lm_service_t s = svc(1, 0, "api", rows[r].own, "check");
      assert_int_equal(set_services(st, 1, 1, 40, &s, 1, 50), 0);
      if (order)
        assert_int_equal(set_member(st, 1, rows[r].member, 60), 0);
      lm_store_is_up_t out;
      /* the short answer (from the group alone) agrees with the long one */
      assert_int_equal(lm_store_is_up(st, "api", "node-1", 100, NULL),
                       rows[r].up);
      assert_int_equal(lm_store_is_up(st, "api", "node-1", 100, &out),
                       rows[r].up);
      assert_int_equal(out.found, 1);
      assert_int_equal(out.up, rows[r].up);
      assert_int_equal(out.status, rows[r].eff);
      assert_int_equal(out.member_status, rows[r].member);
      assert_string_equal(out.type, "api");
      assert_string_equal(out.host, "node-1");
      assert_int_equal(out.age_ms, 60);
      assert_int_equal(out.svc->status, rows[r].own);
      assert_memory_equal(out.uuid, s.uuid, LM_UUID_LEN);
      lm_store_is_up_t o2;
      assert_int_equal(lm_store_is_up_uuid(st, s.uuid, 100, &o2), rows[r].up);
      assert_int_equal(o2.status, rows[r].eff);
      assert_int_equal(o2.member_status, rows[r].member);
      /* unknown: wrong type, wrong host, wrong uuid */
      assert_int_equal(lm_store_is_up(st, "db", "node-1", 100, &out), 0);
      assert_int_equal(out.found, 0);
      assert_int_equal(out.status, LM_STORE_UNKNOWN);
      assert_int_equal(out.member_status, LM_STORE_UNKNOWN);
      assert_int_equal(lm_store_is_up(st, "api", "node-2", 100, &out), 0);
      assert_int_equal(out.found, 0);
      uint8_t u[LM_UUID_LEN];
      mk_uuid(u, 1, 1);
      assert_int_equal(lm_store_is_up_uuid(st, u, 100, &out), 0);
      assert_int_equal(out.found, 0);
      lm_store_free(st);
    }
  }
  /* a member with no list, and a store with nothing */
  lm_store_t *st = new_store();
  lm_store_is_up_t out;
  assert_int_equal(lm_store_is_up(st, "api", "node-1", 1, &out), 0);
  assert_int_equal(out.found, 0);
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 1), 0);
  assert_int_equal(lm_store_is_up(st, "api", "node-1", 1, &out), 0);
  assert_int_equal(out.found, 0);
  lm_store_free(st);
}

/* Four workers of one type on one host. */
static void test_is_up_workers(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 1), 0);
  lm_service_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = svc(1, i, "worker", LM_SVC_DOWN, "check");
    w[i].worker = i;
  }
  assert_int_equal(set_services(st, 1, 1, 10, w, 4, 10), 0);
  lm_store_is_up_t out;
  assert_int_equal(lm_store_is_up(st, "worker", "node-1", 10, &out), 0);
  assert_int_equal(lm_store_is_up(st, "worker", "node-1", 10, NULL), 0);
  assert_int_equal(out.found, 1);
  assert_int_equal(out.status, LM_SVC_DOWN);
  /* worker 2 comes up: the pair is up and the answer names worker 2 */
  w[2].status = LM_SVC_UP;
  assert_int_equal(set_services(st, 1, 2, 20, w, 4, 20), 0);
  assert_int_equal(lm_store_is_up(st, "worker", "node-1", 20, &out), 1);
  assert_int_equal(lm_store_is_up(st, "worker", "node-1", 20, NULL), 1);
  assert_int_equal(out.svc->worker, 2);
  /* all down again, worker 1 last to change (it went to maintenance
   * later): the answer describes it */
  w[2].status = LM_SVC_DOWN;
  assert_int_equal(set_services(st, 1, 3, 30, w, 4, 30), 0);
  w[1].status = LM_SVC_MAINT;
  w[1].cause = "maintenance";
  assert_int_equal(set_services(st, 1, 4, 40, w, 4, 40), 0);
  assert_int_equal(lm_store_is_up(st, "worker", "node-1", 50, &out), 0);
  assert_int_equal(out.svc->worker, 1);
  assert_int_equal(out.status, LM_SVC_MAINT);
  assert_int_equal(out.age_ms, 10);
  /* any one of four up is enough, whichever it is */
  for (int up = 0; up < 4; up++) {
    for (int i = 0; i < 4; i++)
      w[i].status = i == up ? LM_SVC_UP : LM_SVC_DOWN;
    assert_int_equal(set_services(st, 1, 5 + (uint64_t)up, 60, w, 4, 60), 0);
    assert_int_equal(lm_store_is_up(st, "worker", "node-1", 60, &out), 1);
    assert_int_equal(out.svc->worker, up);
    assert_int_equal(count_each(st, "worker", "node-1", NULL, LM_SVC_UP), 1);
  }
  lm_store_free(st);
}

static void test_services_set_rules(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  uint8_t id1[LM_STORE_ID_LEN], id2[LM_STORE_ID_LEN];
  mk_id(id1, 1);
  mk_id(id2, 2);
  lm_service_t s = svc(1, 0, "api", LM_SVC_UP, "registered");
  /* unknown member */
  assert_int_equal(set_services(st, 1, 1, 10, &s, 1, 10), LM_STORE_ENOTFOUND);
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 1), 0);
  assert_int_equal(set_member(st, 2, LM_STORE_ALIVE, 1), 0);
  rec_t *r = calloc(1, sizeof *r);
  uint64_t wid;
  assert_int_equal(lm_store_watch_add(st, NULL, rec_cb, r, 1, &wid), 0);
  assert_int_equal(r->n, 0);
  /* accepted, raw kept verbatim (signature included) */
  uint8_t *buf;
  size_t len;
  assert_int_equal(lm_svclist_encode(&buf, &len, id1, 1, 5, 10, &s, 1), 0);
  uint8_t *raw = malloc(len + SIG_LEN);
  memcpy(raw, buf, len);
  for (int i = 0; i < SIG_LEN; i++)
    raw[len + i] = (uint8_t)i;
  assert_int_equal(lm_store_services_set(st, id1, raw, len + SIG_LEN, len, 10),
                   0);
  assert_int_equal(r->n, 1);
  const uint8_t *held;
  size_t held_len;
  uint64_t seq;
  assert_int_equal(lm_store_services_raw(st, id1, &held, &held_len, &seq), 0);
  assert_int_equal(held_len, len + SIG_LEN);
  assert_memory_equal(held, raw, len + SIG_LEN);
  assert_true(held != raw);
  assert_int_equal(seq, 5);
  assert_int_equal(lm_store_services_raw(st, id2, &held, &held_len, &seq),
                   LM_STORE_ENOTFOUND);
  uint64_t idx = lm_store_index(st);
  /* the same list again: stale, nothing changes, nothing fires */
  assert_int_equal(lm_store_services_set(st, id1, raw, len + SIG_LEN, len, 11),
                   LM_STORE_ESTALE);
  assert_int_equal(lm_store_index(st), idx);
  assert_int_equal(r->n, 1);
  /* an older one, even with other contents */
  s.status = LM_SVC_DOWN;
  assert_int_equal(set_services(st, 1, 4, 11, &s, 1, 11), LM_STORE_ESTALE);
  assert_int_equal(lm_store_is_up(st, "api", "node-1", 12, NULL), 1);
  /* the list of member 1 handed over as member 2's */
  assert_int_equal(lm_store_services_set(st, id2, raw, len + SIG_LEN, len, 12),
                   LM_STORE_EIDMISMATCH);
  assert_int_equal(lm_store_services_raw(st, id2, &held, &held_len, &seq),
                   LM_STORE_ENOTFOUND);
  /* malformed (a byte short of the body): nothing changes */
  assert_int_equal(lm_store_services_set(st, id1, raw, len - 1, len - 1, 12),
                   LM_STORE_ETRUNC);
  /* body longer than raw */
  assert_int_equal(lm_store_services_set(st, id1, raw, len, len + 1, 12),
                   LM_STORE_EINVAL);
  assert_int_equal(lm_store_index(st), idx);
  assert_int_equal(r->n, 1);
  assert_int_equal(lm_store_services_raw(st, id1, &held, &held_len, &seq), 0);
  assert_int_equal(seq, 5);
  assert_memory_equal(held, raw, len + SIG_LEN);
  free(raw);
  free(buf);
  /* member_set with the same values: no event, no index change */
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 1), 0);
  assert_int_equal(lm_store_index(st), idx);
  assert_int_equal(r->n, 1);
  /* an address change is a change of the view but not a transition */
  lm_store_member_t m;
  memset(&m, 0, sizeof m);
  mk_id(m.id, 1);
  m.name = "node-1";
  m.addr = "10.0.0.9:7946";
  m.status = LM_STORE_ALIVE;
  m.gen = m.ver = 1;
  m.since_ms = 1;
  assert_int_equal(lm_store_member_set(st, &m, 20), 0);
  assert_int_equal(lm_store_index(st), idx + 1);
  assert_int_equal(r->n, 1);
  assert_int_equal(lm_store_member_find(st, id1, &m), 0);
  assert_string_equal(m.addr, "10.0.0.9:7946");
  /* bad member input */
  m.name = "";
  assert_int_equal(lm_store_member_set(st, &m, 20), LM_STORE_EINVAL);
  m.name = "node-1";
  m.status = 4;
  assert_int_equal(lm_store_member_set(st, &m, 20), LM_STORE_EINVAL);
  free(r);
  lm_store_free(st);
}

/* ================= watches ================= */

static void test_watch_initial_then_transitions(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  populate(st);
  rec_t *r = calloc(1, sizeof *r);
  lm_store_watch_filter_t f;
  memset(&f, 0, sizeof f);
  f.all = 1;
  uint64_t wid;
  assert_int_equal(lm_store_watch_add(st, &f, rec_cb, r, 1000, &wid), 0);
  /* members first, then every service, each once, all initial */
  assert_int_equal(r->n, 3 + 6);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r->ev[i].kind, LM_STORE_EV_MEMBER);
    assert_string_equal(r->ev[i].name, name_of(i + 1));
    assert_string_equal(r->ev[i].new_name, "alive");
    assert_int_equal(r->ev[i].initial, 1);
  }
  collect_t seen;
  memset(&seen, 0, sizeof seen);
  for (int i = 3; i < 9; i++) {
    assert_int_equal(r->ev[i].kind, LM_STORE_EV_SERVICE);
    assert_int_equal(r->ev[i].initial, 1);
    assert_string_equal(r->ev[i].old_name, "unknown");
    assert_int_equal(r->ev[i].at, 1000);
    memcpy(seen.uuids[seen.n++], r->ev[i].uuid, LM_UUID_LEN);
    if (memcmp(r->ev[i].uuid, (uint8_t[16]){2, 0, 1, [15] = 0xa5}, 16) == 0) {
      assert_string_equal(r->ev[i].new_name, "maintenance");
      assert_string_equal(r->ev[i].cause, "maintenance");
      assert_string_equal(r->ev[i].type, "cache");
      assert_string_equal(r->ev[i].host, "node-2");
    }
  }
  for (int k = 0; k < 3; k++)
    assert_true(has_uuid(&seen, 1, k));
  assert_true(has_uuid(&seen, 2, 0) && has_uuid(&seen, 2, 1) &&
              has_uuid(&seen, 3, 0));
  /* transitions, in order */
  lm_service_t b[2] = {svc(2, 0, "api", LM_SVC_DOWN, "ttl"),
                       svc(2, 1, "cache", LM_SVC_MAINT, "maintenance")};
  assert_int_equal(set_services(st, 2, 2, 1100, b, 2, 1100), 0);
  assert_int_equal(r->n, 10);
  rec_ev_t *e = &r->ev[9];
  assert_int_equal(e->initial, 0);
  assert_int_equal(e->kind, LM_STORE_EV_SERVICE);
  assert_string_equal(e->type, "api");
  assert_string_equal(e->host, "node-2");
  assert_string_equal(e->old_name, "up");
  assert_string_equal(e->new_name, "down");
  assert_string_equal(e->cause, "ttl");
  assert_int_equal(e->at, 1100);
  /* a new member */
  assert_int_equal(set_member(st, 4, LM_STORE_ALIVE, 1200), 0);
  e = &r->ev[10];
  assert_int_equal(e->kind, LM_STORE_EV_MEMBER);
  assert_string_equal(e->name, "node-4");
  assert_string_equal(e->old_name, "unknown");
  assert_string_equal(e->new_name, "alive");
  assert_string_equal(e->cause, "joined");
  lm_service_t d = svc(4, 0, "db", LM_SVC_UP, "registered");
  assert_int_equal(set_services(st, 4, 1, 1300, &d, 1, 1300), 0);
  e = &r->ev[11];
  assert_string_equal(e->old_name, "unknown");
  assert_string_equal(e->new_name, "up");
  assert_string_equal(e->cause, "registered");
  assert_int_equal(r->n, 12);
  assert_seq_consecutive(r);
  assert_int_equal(lm_store_watch_remove(st, wid), 0);
  assert_int_equal(lm_store_watch_remove(st, wid), LM_STORE_ENOTFOUND);
  assert_int_equal(set_member(st, 4, LM_STORE_DEAD, 1400), 0);
  assert_int_equal(r->n, 12);
  free(r);
  lm_store_free(st);
}

static void test_watch_filters(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  populate(st);
  rec_t *by_type = calloc(1, sizeof *by_type);
  rec_t *by_host = calloc(1, sizeof *by_host);
  rec_t *by_uuid = calloc(1, sizeof *by_uuid);
  rec_t *members = calloc(1, sizeof *members);
  lm_store_watch_filter_t f;
  uint64_t wid;
  memset(&f, 0, sizeof f);
  f.type = "api";
  assert_int_equal(lm_store_watch_add(st, &f, rec_cb, by_type, 1, &wid), 0);
  memset(&f, 0, sizeof f);
  f.host = "node-1";
  assert_int_equal(lm_store_watch_add(st, &f, rec_cb, by_host, 1, &wid), 0);
  memset(&f, 0, sizeof f);
  f.has_uuid = 1;
  mk_uuid(f.uuid, 3, 0);
  assert_int_equal(lm_store_watch_add(st, &f, rec_cb, by_uuid, 1, &wid), 0);
  memset(&f, 0, sizeof f);
  f.members = 1;
  f.type = "api"; /* ignored for member watches */
  assert_int_equal(lm_store_watch_add(st, &f, rec_cb, members, 1, &wid), 0);
  assert_int_equal(by_type->n, 3);
  assert_int_equal(by_host->n, 3);
  assert_int_equal(by_uuid->n, 1);
  assert_int_equal(members->n, 3);
  for (int i = 0; i < 3; i++) {
    assert_string_equal(by_type->ev[i].type, "api");
    assert_string_equal(by_host->ev[i].host, "node-1");
    assert_int_equal(members->ev[i].kind, LM_STORE_EV_MEMBER);
  }
  /* node-1 dies: api x2 and db of node-1 go down (api 1 was down already) */
  assert_int_equal(set_member(st, 1, LM_STORE_DEAD, 50), 0);
  assert_int_equal(members->n, 4);
  assert_string_equal(members->ev[3].old_name, "alive");
  assert_string_equal(members->ev[3].new_name, "dead");
  assert_string_equal(members->ev[3].cause, "dead");
  assert_int_equal(by_type->n, 4); /* api 0 only */
  assert_string_equal(by_type->ev[3].cause, "member dead");
  assert_string_equal(by_type->ev[3].new_name, "down");
  assert_int_equal(by_host->n, 5); /* api 0 and db */
  assert_string_equal(by_host->ev[3].cause, "member dead");
  assert_string_equal(by_host->ev[4].type, "db");
  assert_int_equal(by_uuid->n, 1);
  /* node-3's db goes down: only the uuid watcher sees it */
  lm_service_t c = svc(3, 0, "db", LM_SVC_DOWN, "check");
  assert_int_equal(set_services(st, 3, 2, 60, &c, 1, 60), 0);
  assert_int_equal(by_uuid->n, 2);
  assert_string_equal(by_uuid->ev[1].new_name, "down");
  assert_string_equal(by_uuid->ev[1].cause, "check");
  assert_int_equal(by_type->n, 4);
  assert_int_equal(by_host->n, 5);
  assert_int_equal(members->n, 4);
  assert_seq_consecutive(by_type);
  assert_seq_consecutive(by_host);
  assert_seq_consecutive(by_uuid);
  assert_seq_consecutive(members);
  free(by_type);
  free(by_host);
  free(by_uuid);
  free(members);
  lm_store_free(st);
}

static void test_watch_quiet_changes(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 1), 0);
  lm_check_state_t chk = {LM_CHECK_HTTP, LM_SVC_UP, "200 OK"};
  lm_service_t s = svc(1, 0, "api", LM_SVC_UP, "check");
  s.checks = &chk;
  s.nchecks = 1;
  assert_int_equal(set_services(st, 1, 1, 10, &s, 1, 10), 0);
  rec_t *r = calloc(1, sizeof *r);
  lm_store_watch_filter_t f;
  memset(&f, 0, sizeof f);
  uint64_t wid;
  assert_int_equal(lm_store_watch_add(st, &f, rec_cb, r, 20, &wid), 0);
  assert_int_equal(r->n, 1);
  /* output and note change, status does not: no event, but the view
   * (and its index) holds the new output */
  uint64_t idx = lm_store_index(st);
  chk.output = "200 OK, 3 ms";
  s.note = "renewed";
  assert_int_equal(set_services(st, 1, 2, 30, &s, 1, 30), 0);
  assert_int_equal(r->n, 1);
  assert_int_equal(lm_store_index(st), idx + 1);
  lm_store_svc_view_t v;
  assert_int_equal(lm_store_service_find(st, s.uuid, &v), 0);
  assert_string_equal(v.svc->checks[0].output, "200 OK, 3 ms");
  assert_string_equal(v.svc->note, "renewed");
  /* the member goes suspect: its services stay up, no service event */
  assert_int_equal(set_member(st, 1, LM_STORE_SUSPECT, 40), 0);
  assert_int_equal(r->n, 1);
  assert_int_equal(lm_store_is_up(st, "api", "node-1", 40, NULL), 1);
  /* and back to alive: still nothing for services */
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 50), 0);
  assert_int_equal(r->n, 1);
  free(r);
  lm_store_free(st);
}

static void test_watch_member_lifecycle(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 1), 0);
  lm_service_t s[2] = {svc(1, 0, "api", LM_SVC_UP, "registered"),
                       svc(1, 1, "db", LM_SVC_DOWN, "check")};
  assert_int_equal(set_services(st, 1, 1, 10, s, 2, 10), 0);
  rec_t *r = calloc(1, sizeof *r);
  lm_store_watch_filter_t f;
  memset(&f, 0, sizeof f);
  f.all = 1;
  uint64_t wid;
  assert_int_equal(lm_store_watch_add(st, &f, rec_cb, r, 20, &wid), 0);
  assert_int_equal(r->n, 3);
  int base = r->n;
  /* suspect: the member event only */
  assert_int_equal(set_member(st, 1, LM_STORE_SUSPECT, 30), 0);
  assert_int_equal(r->n, base + 1);
  assert_string_equal(r->ev[base].new_name, "suspect");
  /* dead: the member, then api up -> down; db was down already */
  assert_int_equal(set_member(st, 1, LM_STORE_DEAD, 40), 0);
  assert_int_equal(r->n, base + 3);
  assert_int_equal(r->ev[base + 1].kind, LM_STORE_EV_MEMBER);
  assert_string_equal(r->ev[base + 1].old_name, "suspect");
  assert_string_equal(r->ev[base + 1].new_name, "dead");
  assert_int_equal(r->ev[base + 2].kind, LM_STORE_EV_SERVICE);
  assert_string_equal(r->ev[base + 2].type, "api");
  assert_string_equal(r->ev[base + 2].old_name, "up");
  assert_string_equal(r->ev[base + 2].new_name, "down");
  assert_string_equal(r->ev[base + 2].cause, "member dead");
  assert_int_equal(r->ev[base + 2].at, 40);
  /* alive again: api back up */
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 50), 0);
  assert_int_equal(r->n, base + 5);
  assert_string_equal(r->ev[base + 4].new_name, "up");
  assert_string_equal(r->ev[base + 4].cause, "member alive");
  /* left: api down, cause member left */
  assert_int_equal(set_member(st, 1, LM_STORE_LEFT, 60), 0);
  assert_int_equal(r->n, base + 7);
  assert_string_equal(r->ev[base + 5].new_name, "left");
  assert_string_equal(r->ev[base + 6].cause, "member left");
  assert_string_equal(r->ev[base + 6].new_name, "down");
  /* dead after left: the member moves, its services were down already */
  assert_int_equal(set_member(st, 1, LM_STORE_DEAD, 65), 0);
  assert_int_equal(r->n, base + 8);
  /* reaped: the member, then each service to unknown */
  uint8_t id[LM_STORE_ID_LEN];
  mk_id(id, 1);
  assert_int_equal(lm_store_member_remove(st, id, 70), 0);
  assert_int_equal(r->n, base + 11);
  assert_int_equal(r->ev[base + 8].kind, LM_STORE_EV_MEMBER);
  assert_string_equal(r->ev[base + 8].new_name, "unknown");
  assert_string_equal(r->ev[base + 8].cause, "reaped");
  for (int i = base + 9; i < base + 11; i++) {
    assert_int_equal(r->ev[i].kind, LM_STORE_EV_SERVICE);
    assert_string_equal(r->ev[i].old_name, "down");
    assert_string_equal(r->ev[i].new_name, "unknown");
    assert_string_equal(r->ev[i].cause, "member reaped");
    assert_string_equal(r->ev[i].host, "node-1");
  }
  assert_seq_consecutive(r);
  lm_store_counts_t c;
  lm_store_counts(st, &c);
  assert_int_equal(c.members, 0);
  assert_int_equal(c.services, 0);
  free(r);
  lm_store_free(st);
}

/* A callback that checks the removed service's strings during delivery. */
typedef struct dereg_check {
  int n;
  char type[80], name[80], cause[80];
  int new_status;
} dereg_check_t;

static void dereg_cb(void *ud, const lm_store_event_t *e) {
  dereg_check_t *d = ud;
  d->n++;
  snprintf(d->type, sizeof d->type, "%s", e->type);
  snprintf(d->name, sizeof d->name, "%s", e->name);
  snprintf(d->cause, sizeof d->cause, "%s", e->cause);
  d->new_status = e->new_status;
}

static void test_watch_deregistered(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 1), 0);
  lm_service_t s[2] = {svc(1, 0, "api", LM_SVC_UP, "registered"),
                       svc(1, 1, "batch", LM_SVC_UP, "registered")};
  s[1].name = "nightly-batch";
  assert_int_equal(set_services(st, 1, 1, 10, s, 2, 10), 0);
  dereg_check_t d;
  memset(&d, 0, sizeof d);
  lm_store_watch_filter_t f;
  memset(&f, 0, sizeof f);
  f.type = "batch";
  uint64_t wid;
  assert_int_equal(lm_store_watch_add(st, &f, dereg_cb, &d, 20, &wid), 0);
  assert_int_equal(d.n, 1);
  /* the list drops batch: its strings were in the freed list, the event
   * carries copies */
  assert_int_equal(set_services(st, 1, 2, 30, s, 1, 30), 0);
  assert_int_equal(d.n, 2);
  assert_string_equal(d.type, "batch");
  assert_string_equal(d.name, "nightly-batch");
  assert_string_equal(d.cause, "deregistered");
  assert_int_equal(d.new_status, LM_STORE_UNKNOWN);
  assert_int_equal(lm_store_is_up(st, "batch", "node-1", 30, NULL), 0);
  lm_store_free(st);
}

static void test_watch_reentry_refused(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  populate(st);
  rec_t *r = calloc(1, sizeof *r);
  r->st = st;
  r->reenter = 1;
  uint64_t wid;
  uint64_t idx = lm_store_index(st);
  assert_int_equal(lm_store_watch_add(st, NULL, rec_cb, r, 1, &wid), 0);
  assert_int_equal(r->n, 6);
  for (int i = 0; i < 5; i++)
    assert_int_equal(r->reenter_rc[i], LM_STORE_EBUSY);
  /* during a delivered transition too */
  memset(r->reenter_rc, 0, sizeof r->reenter_rc);
  assert_int_equal(set_member(st, 3, LM_STORE_DEAD, 5), 0);
  assert_int_equal(r->n, 7);
  for (int i = 0; i < 5; i++)
    assert_int_equal(r->reenter_rc[i], LM_STORE_EBUSY);
  /* nothing the callbacks tried took effect */
  assert_int_equal(lm_store_index(st), idx + 1);
  lm_store_counts_t c;
  lm_store_counts(st, &c);
  assert_int_equal(c.members, 3);
  assert_int_equal(c.members_by_status[LM_STORE_DEAD], 1);
  assert_int_equal(lm_store_is_up(st, "api", "node-1", 5, NULL), 1);
  assert_int_equal(lm_store_is_up(st, "late", "node-1", 5, NULL), 0);
  /* an iteration callback is refused the same way */
  r->reenter = 0;
  assert_int_equal(lm_store_watch_remove(st, wid), 0);
  free(r);
  lm_store_free(st);
}

static lm_store_t *g_each_store;

static int each_mutates_store(void *ud, const lm_store_svc_view_t *v) {
  (void)v;
  int *rc = ud;
  *rc = set_member(g_each_store, 1, LM_STORE_DEAD, 9);
  return 7;
}

static void test_each_reentry_refused(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  populate(st);
  int rc = 1;
  g_each_store = st;
  assert_int_equal(lm_store_services_each(st, NULL, each_mutates_store, &rc),
                   7);
  assert_int_equal(rc, LM_STORE_EBUSY);
  assert_int_equal(lm_store_is_up(st, "db", "node-1", 9, NULL), 1);
  /* after the walk, mutations work again */
  assert_int_equal(set_member(st, 1, LM_STORE_DEAD, 9), 0);
  assert_int_equal(lm_store_is_up(st, "db", "node-1", 9, NULL), 0);
  lm_store_free(st);
}

static void test_watch_remove_in_callback(void **state) {
  (void)state;
  lm_store_t *st = new_store();
  populate(st);
  /* removes itself after its second initial event */
  rec_t *a = calloc(1, sizeof *a);
  a->st = st;
  a->remove_self_after = 2;
  assert_int_equal(lm_store_watch_add(st, NULL, rec_cb, a, 1, &a->id), 0);
  assert_int_equal(a->n, 2);
  /* one that stays, and one that removes itself at its first transition */
  rec_t *b = calloc(1, sizeof *b);
  rec_t *c = calloc(1, sizeof *c);
  c->st = st;
  assert_int_equal(lm_store_watch_add(st, NULL, rec_cb, b, 1, &b->id), 0);
  assert_int_equal(lm_store_watch_add(st, NULL, rec_cb, c, 1, &c->id), 0);
  assert_int_equal(b->n, 6);
  assert_int_equal(c->n, 6);
  c->remove_self_after = 7;
  /* node-1 dies: two transitions (api 0, db) in one call */
  assert_int_equal(set_member(st, 1, LM_STORE_DEAD, 10), 0);
  assert_int_equal(a->n, 2);
  assert_int_equal(b->n, 8);
  assert_int_equal(c->n, 7); /* removed after the first of the two */
  assert_int_equal(lm_store_watch_remove(st, c->id), LM_STORE_ENOTFOUND);
  assert_int_equal(set_member(st, 1, LM_STORE_ALIVE, 20), 0);
  assert_int_equal(b->n, 10);
  assert_int_equal(c->n, 7);
  assert_seq_consecutive(a);
  assert_seq_consecutive(b);
  assert_seq_consecutive(c);
  free(a);
  free(b);
  free(c);
  lm_store_free(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codec_roundtrip),
      cmocka_unit_test(test_codec_empty_list),
      cmocka_unit_test(test_codec_every_prefix_rejected),
      cmocka_unit_test(test_codec_mutations),
      cmocka_unit_test(test_codec_encode_refuses),
      cmocka_unit_test(test_service_validate),
      cmocka_unit_test(test_uuid_and_names),
      cmocka_unit_test(test_store_indexes),
      cmocka_unit_test(test_store_rename),
      cmocka_unit_test(test_store_member_strings),
      cmocka_unit_test(test_store_10000_members),
      cmocka_unit_test(test_is_up_table),
      cmocka_unit_test(test_is_up_workers),
      cmocka_unit_test(test_services_set_rules),
      cmocka_unit_test(test_watch_initial_then_transitions),
      cmocka_unit_test(test_watch_filters),
      cmocka_unit_test(test_watch_quiet_changes),
      cmocka_unit_test(test_watch_member_lifecycle),
      cmocka_unit_test(test_watch_deregistered),
      cmocka_unit_test(test_watch_reentry_refused),
      cmocka_unit_test(test_each_reentry_refused),
      cmocka_unit_test(test_watch_remove_in_callback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
