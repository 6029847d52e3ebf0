/*
 * fuzz_svc_list.c: fuzz target for the service list codec (svc_codec.h)
 * and the view that consumes it (store.h).
 *
 * Arbitrary bytes go through lm_svclist_check and lm_svclist_decode, which
 * must agree. Beyond "no crash, no read past the end" it checks what the
 * store relies on: every accepted service passes lm_service_validate and
 * respects the wire limits, the list re-encodes and decodes to the same
 * fields, and a store fed the bytes holds exactly those services, finds
 * each by (type, host) and by uuid, refuses the same list twice and is
 * empty again once the member is reaped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "svc_codec.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

static int str_eq(const char *a, const char *b) { return strcmp(a, b) == 0; }

static void same_service(const lm_service_t *a, const lm_service_t *b) {
  CHECK(memcmp(a->uuid, b->uuid, LM_UUID_LEN) == 0);
  CHECK(str_eq(a->type, b->type) && str_eq(a->name, b->name) &&
        str_eq(a->region, b->region) && str_eq(a->cause, b->cause) &&
        str_eq(a->note, b->note));
  CHECK(a->worker == b->worker && a->pid == b->pid && a->port == b->port &&
        a->created_ms == b->created_ms && a->status == b->status &&
        a->since_ms == b->since_ms && a->maint_until_ms == b->maint_until_ms);
  CHECK(a->ntags == b->ntags && a->nmeta == b->nmeta &&
        a->nchecks == b->nchecks);
  for (size_t i = 0; i < a->ntags; i++)
    CHECK(str_eq(a->tags[i], b->tags[i]));
  for (size_t i = 0; i < a->nmeta; i++)
    CHECK(str_eq(a->meta_keys[i], b->meta_keys[i]) &&
          str_eq(a->meta_values[i], b->meta_values[i]));
  for (size_t i = 0; i < a->nchecks; i++)
    CHECK(a->checks[i].kind == b->checks[i].kind &&
          a->checks[i].status == b->checks[i].status &&
          str_eq(a->checks[i].output, b->checks[i].output));
}

static void count_cb(void *ud, const lm_store_event_t *ev) {
  size_t *n = ud;
  CHECK(ev->seq == *n + 1);
  (*n)++;
}

static void feed_store(const lm_svclist_t *l, const uint8_t *buf, size_t len) {
  lm_store_t *st;
  if (lm_store_new(&st))
    return;
  lm_store_member_t m;
  memset(&m, 0, sizeof m);
  memcpy(m.id, l->hdr.id, LM_STORE_ID_LEN);
  m.name = "fz";
  m.status = LM_STORE_ALIVE;
  CHECK(lm_store_member_set(st, &m, 1) == 0);
  size_t events = 0;
  lm_store_watch_filter_t f;
  memset(&f, 0, sizeof f);
  f.all = 1;
  uint64_t wid;
  CHECK(lm_store_watch_add(st, &f, count_cb, &events, 1, &wid) == 0);
  CHECK(events == 1);
  int rc = lm_store_services_set(st, l->hdr.id, buf, len, len, 2);
  if (rc == LM_STORE_ENOMEM) {
    lm_store_free(st);
    return;
  }
  CHECK(rc == 0);
  CHECK(events == 1 + l->hdr.n); /* each service is new */
  lm_store_counts_t c;
  lm_store_counts(st, &c);
  CHECK(c.services == l->hdr.n);
  for (size_t i = 0; i < l->hdr.n; i++) {
    const lm_service_t *s = &l->svcs[i];
    lm_store_is_up_t out;
    int up = lm_store_is_up(st, s->type, "fz", 3, &out);
    CHECK(out.found == 1 && up == out.up);
    CHECK(lm_store_is_up_uuid(st, s->uuid, 3, &out) ==
          (s->status == LM_SVC_UP));
    CHECK(out.found && out.status == (int)s->status);
  }
  CHECK(lm_store_services_set(st, l->hdr.id, buf, len, len, 3) ==
        LM_STORE_ESTALE);
  CHECK(lm_store_member_remove(st, l->hdr.id, 4) == 0);
  lm_store_counts(st, &c);
  CHECK(c.services == 0 && c.members == 0);
  CHECK(events == 2 + 2 * l->hdr.n);
  lm_store_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* an exact-size copy, so an over-read is an ASan error */
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  if (size)
    memcpy(buf, data, size);
  lm_svclist_hdr_t h;
  int rc = lm_svclist_check(&h, buf, size);
  lm_svclist_t *l = NULL;
  int rc2 = lm_svclist_decode(&l, buf, size);
  CHECK(rc == rc2 || rc2 == LM_STORE_ENOMEM);
  CHECK(rc == 0 || (rc <= LM_STORE_EINVAL && rc >= LM_STORE_ENOTFOUND));
  if (rc2) {
    CHECK(l == NULL);
    free(buf);
    return 0;
  }
  CHECK(memcmp(h.id, l->hdr.id, LM_SVCLIST_ID_LEN) == 0 && h.n == l->hdr.n &&
        h.seq == l->hdr.seq && h.gen == l->hdr.gen &&
        h.signed_ms == l->hdr.signed_ms);
  CHECK(l->hdr.n <= LM_SVC_PER_NODE_MAX && l->hdr.signed_ms >= 0);
  for (size_t i = 0; i < l->hdr.n; i++) {
    const lm_service_t *s = &l->svcs[i];
    CHECK(lm_service_validate(s, NULL, 0) == 0);
    for (size_t j = 0; j < s->nchecks; j++)
      CHECK(strlen(s->checks[j].output) <= LM_CHECK_OUTPUT_WIRE_MAX);
    for (size_t j = 0; j < i; j++)
      CHECK(memcmp(s->uuid, l->svcs[j].uuid, LM_UUID_LEN) != 0);
  }
  uint8_t *b2;
  size_t n2;
  rc = lm_svclist_encode(&b2, &n2, l->hdr.id, l->hdr.gen, l->hdr.seq,
                         l->hdr.signed_ms, l->svcs, l->hdr.n);
  CHECK(rc == 0 || rc == LM_STORE_ENOMEM);
  if (rc == 0) {
    lm_svclist_t *l2;
    rc = lm_svclist_decode(&l2, b2, n2);
    CHECK(rc == 0 || rc == LM_STORE_ENOMEM);
    if (rc == 0) {
      CHECK(l2->hdr.n == l->hdr.n && l2->hdr.seq == l->hdr.seq);
      for (size_t i = 0; i < l->hdr.n; i++)
        same_service(&l->svcs[i], &l2->svcs[i]);
      /* the encoder's form is a fixed point: the same bytes again */
      uint8_t *b3;
      size_t n3;
      if (lm_svclist_encode(&b3, &n3, l2->hdr.id, l2->hdr.gen, l2->hdr.seq,
                            l2->hdr.signed_ms, l2->svcs, l2->hdr.n) == 0) {
        CHECK(n3 == n2 && memcmp(b3, b2, n2) == 0);
        free(b3);
      }
      lm_svclist_free(l2);
    }
    free(b2);
  }
  feed_store(l, buf, size);
  lm_svclist_free(l);
  free(buf);
  return 0;
}
