/*
 * events.c: the swim core's callbacks into the node: event conversion and
 * delivery, randomness, logging, record signing and verification (with the
 * certificate checks), and the envelope's sender-key lookup.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node_internal.h"

/* ---- events ---- */

/* Events a node keeps room for between dispatches. */
#define EV_KEEP 16

void lm__to_member(lm_node_t *n, const swim_member_t *m, lm_member_t *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", m->name);
  memcpy(out->id, m->id, LM_ID_LEN);
  lm__format_swim(&m->addr, out->addr, sizeof out->addr);
  out->status = (lm_status_t)m->status;
  out->generation = m->inc.gen;
  out->version = m->inc.ver;
  out->since_ms = lm__core_to_unix_ms(n, m->since);
  out->is_self = m->is_self;
}

void lm__core_event(void *ud, const swim_event_t *ev) {
  lm_node_t *n = ud;
  lm__svc_member_event(n, ev);
  if (n->nev == n->capev) {
    size_t cap = n->capev ? n->capev * 2 : EV_KEEP;
    lm_event_t *v = realloc(n->evs, cap * sizeof *v);
    if (!v)
      return;
    n->evs = v;
    n->capev = cap;
  }
  lm_event_t *e = &n->evs[n->nev++];
  e->kind = (lm_event_kind_t)ev->kind;
  e->old_status = (lm_status_t)ev->old_status;
  e->fresh = ev->fresh;
  lm__to_member(n, &ev->member, &e->member);
  lm__node_log(n, LM_LOG_DEBUG, "%s %s -> %s", e->member.name,
       swim_status_name(ev->old_status), swim_status_name(ev->member.status));
}


/* Called with the lock released, after every core call. */
void lm__dispatch(lm_node_t *n) {
  lm__rearm(n);
  lm__snap_update(n);
  if (n->in_dispatch)
    return;
  n->in_dispatch = 1;
  do {
    /* member events first, then watch events; a callback may queue more */
    for (size_t i = 0; i < n->nev && !n->close_pending; i++)
      if (n->opt.on_event)
        n->opt.on_event(n, &n->evs[i], n->opt.event_ud);
    n->nev = 0;
    if (!n->close_pending && n->state != ST_CLOSING)
      lm__svc_dispatch(n);
  } while (n->nev && !n->close_pending && n->state != ST_CLOSING);
  /* a burst (a join that merges a whole view) grows the queue to the size
   * of the mesh; a quiet node should not keep that for good */
  if (!n->nev && n->capev > EV_KEEP) {
    free(n->evs);
    n->evs = NULL;
    n->capev = 0;
  }
  n->in_dispatch = 0;
  if (n->close_pending)
    lm__do_close(n);
}

/* ---- core callbacks ---- */

uint64_t lm__core_rand(void *ud) { return lm__node_rand(ud); }

void lm__core_log(void *ud, int level, uint64_t now, const char *msg) {
  (void)now;
  lm__node_log(ud, level, "%s", msg);
}

int lm__core_sign(void *ud, uint8_t sig[SWIM_SIG_LEN], const uint8_t *msg,
                     size_t len) {
  lm_node_t *n = ud;
  return lm_rec_sign(sig, msg, len, &n->kp) == 0 ? 0 : -1;
}

/* An alive record is admitted only from a member whose certificate, issued
 * by a trusted cluster key for this very key and name, this node holds
 * (certs.c: it came once, in a frame, a push-pull or on request). Without
 * it the record waits (SWIM_VERIFY_LATER) and the certificate is asked
 * for. */
int lm__core_verify(void *ud, const uint8_t id[SWIM_ID_LEN],
                       const uint8_t *msg, size_t len, const uint8_t *sig,
                       const char *name, size_t name_len, const uint8_t *meta,
                       size_t meta_len) {
  lm_node_t *n = ud;
  (void)meta;
  (void)meta_len;
  if (!sig)
    return -1;
  if (name && memcmp(id, n->kp.pk, SWIM_ID_LEN) == 0) {
    /* a record in this node's own name (an earlier life of it, or a
     * forgery): judged against our own certificate, never deferred */
    if (strlen(n->cert.name) != name_len ||
        memcmp(n->cert.name, name, name_len) != 0)
      return -1;
  } else if (name) {
    int held = lm__certs_check(n, id, name, name_len);
    if (held < 0) {
      lm__node_log(n, LM_LOG_WARN,
                   "record for %.*s refused: it does not match its certificate",
                   (int)name_len, name);
      return -1;
    }
    if (held == 0) {
      lm__certs_want(n, id);
      return SWIM_VERIFY_LATER;
    }
  }
  /* a record (bytes, signature, key) a node of this loop already checked */
  uint8_t sk[SWIM_SIG_LEN + SWIM_ID_LEN];
  memcpy(sk, sig, SWIM_SIG_LEN);
  memcpy(sk + SWIM_SIG_LEN, id, SWIM_ID_LEN);
  if (lm__memo_has(n, msg, len, sk, sizeof sk))
    return 0;
  if (lm_rec_verify(sig, msg, len, id) != 0)
    return -1;
  lm__memo_put(n, msg, len, sk, sizeof sk);
  return 0;
}

int lm__key_lookup(void *ud, uint64_t hint, uint8_t pk[LM_PUBLICKEY_LEN]) {
  lm_node_t *n = ud;
  swim_member_t m;
  /* a member whose certificate expired or lost its cluster key is a
   * stranger again (certs.c) */
  if (swim_member_find8(n->core, hint, &m) || !lm__certs_ok(n, m.id))
    return -1;
  memcpy(pk, m.id, LM_PUBLICKEY_LEN);
  return 0;
}

