/*
 * certs.c: the members' certificates, kept once per member.
 *
 * A certificate travels when a member is first learned, never inside its
 * alive records: in the stream frames of a join or push-pull (the sender's
 * own in the envelope, everybody else's as CRED updates ahead of their
 * records), and on request. A record whose author's certificate this node
 * does not hold yet is skipped (SWIM_VERIFY_LATER), and the node asks the
 * datagram's sender for it:
 *
 *   CREQ   [83, 3, [id8 (u64), ...]]        1..LM__CERT_REQ_MAX ids
 *   CERTS  [83, 4, [cert (bin), ...]]       accepted; the core's answer
 *                                           (GOSSIP with CRED + ALIVE per
 *                                           member) is what is sent
 *
 * Both ride the authenticated envelope like the service messages (same
 * mark, other kinds). A certificate is kept only once lm_cert_verify
 * accepted it, so nothing in this cache was forged; the records of its
 * member are still checked against the member's own key.
 *
 * A member is talked to only while its certificate holds (lm__certs_ok,
 * asked by the envelope's key and pair lookups for every datagram and
 * stream frame without a certificate): once it expires, or once the trust
 * set no longer has the key that signed it (lm_node_set_trusted; the held
 * certificates are checked again at the next lookup), the member's
 * messages are dropped like a stranger's, it fails its probes and is
 * declared dead, and a certificate that verifies (a new one, in its frames
 * or a push-pull) lets it back in.
 */
#define _GNU_SOURCE
#include <msgpack.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node_internal.h"
#include "swim_proto.h"
#include "svc_wire.h"

#define LM__CERTMSG_REQ 3
#define LM__CERTMSG_CERTS 4
#define LM__CERT_REQ_MAX 16
#define REQ_GAP_MS 500 /* asking again for one id */

typedef struct cert_ent {
  uint8_t id[SWIM_ID_LEN];
  uint16_t len;
  uint8_t used;
  uint8_t revoked; /* its cluster key is no longer trusted */
  uint8_t raw[LM_CERT_MAX];
  char name[LM_CERT_NAME_MAX + 1];
  uint64_t expiry;
} cert_ent_t;

struct lm__certs {
  cert_ent_t *v;
  size_t cap, n;
  /* ids missing during the current message, asked of its sender after */
  uint64_t want[LM__CERT_REQ_MAX];
  size_t nwant;
  struct {
    uint64_t id8, at;
  } asked[64];
  unsigned asked_next;
  unsigned trust_gen; /* the node's trust_gen the entries were checked at */
};

static uint64_t id8_of(const uint8_t *id) { return swim_id8(id); }

static cert_ent_t *find(struct lm__certs *c, const uint8_t *id) {
  if (!c || !c->cap)
    return NULL;
  size_t mask = c->cap - 1;
  for (size_t i = id8_of(id) & mask;; i = (i + 1) & mask) {
    if (!c->v[i].used)
      return NULL;
    if (memcmp(c->v[i].id, id, SWIM_ID_LEN) == 0)
      return &c->v[i];
  }
}

static int grow(struct lm__certs *c) {
  size_t ncap = c->cap ? c->cap * 2 : 64;
  cert_ent_t *nv = calloc(ncap, sizeof *nv);
  if (!nv)
    return -1;
  for (size_t i = 0; i < c->cap; i++) {
    if (!c->v[i].used)
      continue;
    size_t j = id8_of(c->v[i].id) & (ncap - 1);
    while (nv[j].used)
      j = (j + 1) & (ncap - 1);
    nv[j] = c->v[i];
  }
  free(c->v);
  c->v = nv;
  c->cap = ncap;
  return 0;
}

void lm__certs_store_free(struct lm__certs *c) {
  if (!c)
    return;
  free(c->v);
  free(c);
}

void lm__certs_free(lm_node_t *n) {
  lm__certs_store_free(n->certs);
  n->certs = NULL;
}

/* This node's own state (requests), and the store of certificates: the
 * one of its loop when it shares a record cache (a certificate is then
 * kept once per process, as records are), else its own. */
static struct lm__certs *certs(lm_node_t *n) {
  if (!n->certs)
    n->certs = calloc(1, sizeof *n->certs);
  return n->certs;
}

static struct lm__certs *store(lm_node_t *n) {
  if (n->records) {
    if (!n->records->certs)
      n->records->certs = calloc(1, sizeof *n->records->certs);
    return n->records->certs;
  }
  return certs(n);
}

/* ---- the shared memo of checked signatures ---- */

static void memo_key(uint8_t k[16], const uint8_t *a, size_t alen,
                     const uint8_t *b, size_t blen) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, 16);
  crypto_generichash_update(&st, a, alen);
  if (blen)
    crypto_generichash_update(&st, b, blen);
  crypto_generichash_final(&st, k, 16);
}

static size_t memo_slot(const uint8_t k[16], size_t cap) {
  uint64_t h;
  memcpy(&h, k, sizeof h);
  return (size_t)h & (cap - 1);
}

static int memo_empty(const uint8_t *e) {
  static const uint8_t zero[16];
  return memcmp(e, zero, 16) == 0;
}

int lm__memo_has(lm_node_t *n, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen) {
  shared_cache_t *sc = n->records;
  if (!sc || !sc->memo_cap)
    return 0;
  uint8_t k[16];
  memo_key(k, a, alen, b, blen);
  for (size_t i = memo_slot(k, sc->memo_cap);; i = (i + 1) & (sc->memo_cap - 1)) {
    if (memo_empty(sc->memo[i]))
      return 0;
    if (memcmp(sc->memo[i], k, 16) == 0)
      return 1;
  }
}

void lm__memo_put(lm_node_t *n, const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen) {
  shared_cache_t *sc = n->records;
  if (!sc)
    return;
  if ((sc->memo_n + 1) * 2 > sc->memo_cap) {
    size_t ncap = sc->memo_cap ? sc->memo_cap * 2 : 1024;
    if (ncap > (1u << 20)) { /* bounded: start over rather than grow */
      memset(sc->memo, 0, sc->memo_cap * 16);
      sc->memo_n = 0;
    } else {
      uint8_t(*nm)[16] = calloc(ncap, 16);
      if (!nm)
        return;
      for (size_t i = 0; i < sc->memo_cap; i++) {
        if (memo_empty(sc->memo[i]))
          continue;
        size_t j = memo_slot(sc->memo[i], ncap);
        while (!memo_empty(nm[j]))
          j = (j + 1) & (ncap - 1);
        memcpy(nm[j], sc->memo[i], 16);
      }
      free(sc->memo);
      sc->memo = nm;
      sc->memo_cap = ncap;
    }
  }
  uint8_t k[16];
  memo_key(k, a, alen, b, blen);
  size_t i = memo_slot(k, sc->memo_cap);
  while (!memo_empty(sc->memo[i])) {
    if (memcmp(sc->memo[i], k, 16) == 0)
      return;
    i = (i + 1) & (sc->memo_cap - 1);
  }
  memcpy(sc->memo[i], k, 16);
  sc->memo_n++;
}

/* After the trust set changed (lm_node_set_trusted bumps n->trust_gen):
 * every held certificate is checked again against it. One whose cluster
 * key is no longer trusted is marked revoked (kept in its slot, so the
 * table needs no deletion): its member is no longer talked to, its records
 * wait for a certificate, and it is not handed on. One whose key is
 * trusted again comes back. Expiry is not judged here but at each use. */
static void recheck(lm_node_t *n, struct lm__certs *c) {
  if (c->trust_gen == n->trust_gen)
    return;
  c->trust_gen = n->trust_gen;
  const uint8_t *tk = (const uint8_t *)n->trust.keys;
  size_t tkl = n->trust.count * sizeof n->trust.keys[0];
  uint64_t now = (uint64_t)time(NULL);
  for (size_t i = 0; i < c->cap; i++) {
    cert_ent_t *e = &c->v[i];
    if (!e->used)
      continue;
    lm_cert_t cert;
    int rc = 0;
    if (lm_cert_decode(&cert, e->raw, e->len) != (int)e->len)
      rc = LM_TRUST_EMALFORMED;
    else if (!lm__memo_has(n, e->raw, e->len, tk, tkl)) {
      rc = lm_cert_verify(&n->trust, &cert, now);
      if (rc == 0)
        lm__memo_put(n, e->raw, e->len, tk, tkl);
      else if (rc == LM_TRUST_ECERT_EXPIRED || rc == LM_TRUST_ECERT_NOTYET)
        rc = 0; /* authentic under this trust set; dates judged at use */
    }
    if (rc && !e->revoked)
      lm__node_log(n, LM_LOG_WARN, "certificate of %s no longer accepted: "
                   "%s; its messages are dropped until it presents one "
                   "that is", e->name, lm_trust_strerror(rc));
    else if (!rc && e->revoked)
      lm__node_log(n, LM_LOG_INFO, "certificate of %s accepted again",
                   e->name);
    e->revoked = rc != 0;
  }
}

/* The store this node reads, checked against its current trust set;
 * NULL when it holds nothing yet. A store shared by the nodes of a loop
 * is rechecked by whichever node's trust set changed: nodes sharing one
 * should trust the same keys (lm__certs_check also verifies each
 * certificate against this node's own keys, so one that trusts fewer
 * never admits more). */
static struct lm__certs *held(lm_node_t *n) {
  struct lm__certs *c = n->records ? n->records->certs : n->certs;
  if (c)
    recheck(n, c);
  return c;
}

/* Decodes, checks against the trust set and keeps a certificate. 0 when it
 * is (now) held; `id` (may be NULL) must be the certificate's key. */
int lm__certs_put(lm_node_t *n, const uint8_t *id, const uint8_t *raw,
                  size_t len) {
  struct lm__certs *c = store(n);
  lm_cert_t cert;
  if (!c || !len || len > LM_CERT_MAX ||
      lm_cert_decode(&cert, raw, len) != (int)len)
    return -1;
  if (id && memcmp(cert.node_pk, id, SWIM_ID_LEN) != 0)
    return -1;
  recheck(n, c);
  cert_ent_t *e = find(c, cert.node_pk);
  if (e && !e->revoked && e->len == len && memcmp(e->raw, raw, len) == 0)
    return 0;
  /* the cluster's signature, against this node's trusted keys, may have
   * been checked by a node of this loop already; the dates are checked
   * here each time */
  const uint8_t *tk = (const uint8_t *)n->trust.keys;
  size_t tkl = n->trust.count * sizeof n->trust.keys[0];
  uint64_t now = (uint64_t)time(NULL);
  int rc = 0;
  if (lm__memo_has(n, raw, len, tk, tkl)) {
    if (now < cert.not_before)
      rc = LM_TRUST_ECERT_NOTYET;
    else if (now >= cert.expiry)
      rc = LM_TRUST_ECERT_EXPIRED;
  } else {
    rc = lm_cert_verify(&n->trust, &cert, now);
    if (rc == 0)
      lm__memo_put(n, raw, len, tk, tkl);
  }
  if (rc) {
    lm__node_log(n, LM_LOG_WARN, "certificate of %s refused: %s", cert.name,
                 lm_trust_strerror(rc));
    return -1;
  }
  if (!e) {
    if ((c->n + 1) * 4 > c->cap * 3 && grow(c))
      return -1;
    size_t mask = c->cap - 1;
    size_t i = id8_of(cert.node_pk) & mask;
    while (c->v[i].used)
      i = (i + 1) & mask;
    e = &c->v[i];
    c->n++;
  }
  memcpy(e->id, cert.node_pk, SWIM_ID_LEN);
  e->used = 1;
  e->revoked = 0;
  e->len = (uint16_t)len;
  memcpy(e->raw, raw, len);
  snprintf(e->name, sizeof e->name, "%s", cert.name);
  e->expiry = cert.expiry;
  return 0;
}

const uint8_t *lm__certs_get(lm_node_t *n, const uint8_t *id, size_t *len) {
  if (memcmp(id, n->kp.pk, SWIM_ID_LEN) == 0) {
    *len = n->cert_len;
    return n->cert_raw;
  }
  struct lm__certs *c = held(n);
  cert_ent_t *e = find(c, id);
  if (!e || e->revoked)
    return NULL;
  *len = e->len;
  return e->raw;
}

/* The record's author must hold a certificate for this key and name that
 * has not expired. 1: held and matching, 0: not held, -1: held but the
 * record does not match it. */
int lm__certs_check(lm_node_t *n, const uint8_t *id, const char *name,
                    size_t name_len) {
  struct lm__certs *c = held(n);
  cert_ent_t *e = find(c, id);
  if (!e || e->revoked)
    return 0;
  if (strlen(e->name) != name_len || memcmp(e->name, name, name_len) != 0 ||
      (uint64_t)time(NULL) >= e->expiry)
    return -1;
  if (n->records) {
    /* kept by a node of this loop: passed against this node's trusted
     * keys too? (the memo answers at once; a node that trusts other keys
     * checks for itself) */
    const uint8_t *tk = (const uint8_t *)n->trust.keys;
    size_t tkl = n->trust.count * sizeof n->trust.keys[0];
    if (!lm__memo_has(n, e->raw, e->len, tk, tkl)) {
      lm_cert_t cert;
      if (lm_cert_decode(&cert, e->raw, e->len) != (int)e->len ||
          lm_cert_verify(&n->trust, &cert, (uint64_t)time(NULL)) != 0)
        return -1;
      lm__memo_put(n, e->raw, e->len, tk, tkl);
    }
  }
  return 1;
}

/* 1: a certificate for this member's key is held, its cluster key still
 * trusted, and it has not expired: the member may be talked to. */
int lm__certs_ok(lm_node_t *n, const uint8_t *id) {
  cert_ent_t *e = find(held(n), id);
  return e && !e->revoked && (uint64_t)time(NULL) < e->expiry;
}

/* A record could not be judged for lack of its author's certificate. */
void lm__certs_want(lm_node_t *n, const uint8_t *id) {
  struct lm__certs *c = certs(n);
  if (!c || !n->cur_from_set || n->cur_from_stream)
    return;
  uint64_t id8 = id8_of(id), now = lm__now_ms(n);
  for (unsigned i = 0; i < 64; i++)
    if (c->asked[i].id8 == id8 && c->asked[i].at &&
        now < c->asked[i].at + REQ_GAP_MS)
      return;
  for (size_t i = 0; i < c->nwant; i++)
    if (c->want[i] == id8)
      return;
  if (c->nwant < LM__CERT_REQ_MAX)
    c->want[c->nwant++] = id8;
  c->asked[c->asked_next].id8 = id8;
  c->asked[c->asked_next].at = now;
  c->asked_next = (c->asked_next + 1) % 64;
}

/* After a message: ask its sender for the certificates it lacked. */
void lm__certs_flush(lm_node_t *n) {
  struct lm__certs *c = n->certs;
  if (!c || !c->nwant)
    return;
  uint8_t buf[256];
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, buf, sizeof buf);
  swim_wbuf_packer(&w, &pk);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_uint8(&pk, LM__SVCMSG_MARK);
  msgpack_pack_uint8(&pk, LM__CERTMSG_REQ);
  msgpack_pack_array(&pk, (uint32_t)c->nwant);
  for (size_t i = 0; i < c->nwant; i++)
    msgpack_pack_uint64(&pk, c->want[i]);
  c->nwant = 0;
  if (w.overflow)
    return;
  CNT_ADD(n->cert_reqs_out, 1);
  lm__core_send(n, &n->cur_from, w.p, w.len);
}

int lm__certs_is_msg(const uint8_t *p, size_t len) {
  return lm__svcmsg_is(p, len) &&
         (p[2] == LM__CERTMSG_REQ || p[2] == LM__CERTMSG_CERTS);
}

/* The certificates asked for, each with its member's current record, so
 * the asker can admit the member at once instead of waiting for the
 * record to come around again. */
static void answer(lm_node_t *n, const swim_addr_t *to,
                   const msgpack_object *ids) {
  uint64_t v[LM__CERT_REQ_MAX];
  size_t k = 0;
  for (uint32_t i = 0; i < ids->via.array.size && k < LM__CERT_REQ_MAX; i++) {
    if (ids->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
      return;
    v[k++] = ids->via.array.ptr[i].via.u64;
  }
  uv_mutex_lock(&n->mu);
  swim_send_records(n->core, to, v, k, lm__now_ms(n));
  uv_mutex_unlock(&n->mu);
  lm__dispatch(n);
}

void lm__certs_recv(lm_node_t *n, const struct sockaddr *from,
                    const uint8_t *p, size_t len) {
  if (swim_skim(p, len))
    return;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  if (msgpack_unpack_next(&u, (const char *)p, len, &off) ==
          MSGPACK_UNPACK_SUCCESS &&
      off == len && u.data.type == MSGPACK_OBJECT_ARRAY &&
      u.data.via.array.size == 3 &&
      u.data.via.array.ptr[2].type == MSGPACK_OBJECT_ARRAY) {
    const msgpack_object *body = &u.data.via.array.ptr[2];
    if (p[2] == LM__CERTMSG_REQ) {
      swim_addr_t a;
      lm__sa_to_swim(from, &a);
      CNT_ADD(n->cert_reqs_in, 1);
      answer(n, &a, body);
    } else {
      for (uint32_t i = 0; i < body->via.array.size; i++) {
        const msgpack_object *e = &body->via.array.ptr[i];
        if (e->type == MSGPACK_OBJECT_BIN &&
            lm__certs_put(n, NULL, (const uint8_t *)e->via.bin.ptr,
                          e->via.bin.size) == 0)
          CNT_ADD(n->certs_learned, 1);
      }
    }
  }
  msgpack_unpacked_destroy(&u);
}

/* ---- the core's credential hooks ---- */

size_t lm__core_cred_get(void *ud, const uint8_t id[SWIM_ID_LEN],
                         const uint8_t **out) {
  size_t len = 0;
  *out = lm__certs_get(ud, id, &len);
  return *out ? len : 0;
}

void lm__core_cred_put(void *ud, const uint8_t id[SWIM_ID_LEN],
                       const uint8_t *cred, size_t len) {
  lm_node_t *n = ud;
  if (memcmp(id, n->kp.pk, SWIM_ID_LEN) != 0)
    lm__certs_put(n, id, cred, len);
}
