/*
 * fuzz_swim_recv.c: fuzz target for a live SWIM core (swim_recv, swim_tick).
 *
 * Two long-lived cores, one unsigned and one with a verify hook, each knowing
 * two members, take every input as a datagram (and, now and then, a timer
 * tick). The target asserts what must hold whatever arrives: no crash, every
 * return code is 0 or a SWIM_E* code, no datagram the core sends is above
 * SWIM_MAX_PAYLOAD, events may not re-enter the core, and the member table
 * stays consistent. The cores are rebuilt every few thousand inputs so that
 * members added by the fuzzer do not grow without bound.
 *
 * The ids below are mirrored in gen_swim_corpus.c, whose seeds address these
 * cores and their members.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "swim_proto.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

#define FZ_SELF_BYTE 0x11 /* the fuzzed core's id: 32 x 0x11 */
#define FZ_M1_BYTE 0x22   /* known member 1 */
#define FZ_M2_BYTE 0x33   /* known member 2 */
#define FZ_REBUILD 4096

typedef struct fz {
  swim_core_t *core;
  uint64_t rng, now;
  int in_event;
} fz_t;

static fz_t g_fz[2];
static unsigned g_inputs;

static swim_addr_t fz_addr(uint8_t last) {
  swim_addr_t a;
  memset(&a, 0, sizeof a);
  a.family = 4;
  a.ip[0] = 10;
  a.ip[3] = last;
  a.port = 7946;
  return a;
}

static void fz_send(void *ud, const swim_addr_t *to, const uint8_t *b,
                    size_t n) {
  (void)ud;
  CHECK(to && (to->family == 4 || to->family == 6));
  CHECK(n > 0 && n <= SWIM_MAX_PAYLOAD);
  /* what the core sends must itself be well-formed */
  CHECK(swim_skim(b, n) == 0);
}

static void fz_send_stream(void *ud, const swim_addr_t *to, const uint8_t *b,
                           size_t n) {
  (void)ud;
  CHECK(to && n > 0 && n <= SWIM_STREAM_MAX);
  CHECK(swim_skim(b, n) == 0);
}

static uint64_t fz_rand(void *ud) {
  fz_t *f = ud;
  uint64_t z = (f->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void fz_event(void *ud, const swim_event_t *ev) {
  fz_t *f = ud;
  CHECK(ev->kind <= SWIM_EV_REAPED);
  CHECK(ev->member.status <= SWIM_LEFT);
  CHECK(ev->member.name && strlen(ev->member.name) <= SWIM_NAME_MAX);
  CHECK(ev->member.meta_len <= SWIM_META_MAX);
  /* the core must refuse to be re-entered from here */
  uint8_t ping = 0x90;
  swim_addr_t a = fz_addr(99);
  CHECK(swim_recv(f->core, &a, &ping, 1, f->now) == SWIM_EBUSY);
  CHECK(swim_leave(f->core, f->now) == SWIM_EBUSY);
}

/* Toy verify: accepts a signature whose first byte is zero, so seeds (and
 * the fuzzer) can reach both outcomes. */
static int fz_verify(void *ud, const uint8_t id[SWIM_ID_LEN],
                     const uint8_t *msg, size_t len, const uint8_t *sig,
                     const char *name, size_t name_len, const uint8_t *meta,
                     size_t meta_len) {
  (void)ud, (void)id;
  CHECK(len > 0 && len < 1024 && msg);
  /* name and meta, when given, are inside the signed bytes */
  if (name)
    CHECK((const uint8_t *)name >= msg &&
          (const uint8_t *)name + name_len <= msg + len);
  if (meta && meta_len)
    CHECK(meta >= msg && meta + meta_len <= msg + len);
  return sig && sig[0] == 0 ? 0 : -1;
}

static int fz_sign(void *ud, uint8_t sig[SWIM_SIG_LEN], const uint8_t *msg,
                   size_t len) {
  (void)ud, (void)msg, (void)len;
  memset(sig, 0, SWIM_SIG_LEN);
  return 0;
}

/* Tells the core about a member with a valid (toy-signed) record. */
static void fz_teach(fz_t *f, uint8_t idbyte, uint8_t last) {
  uint8_t b[512], id[SWIM_ID_LEN], sig[SWIM_SIG_LEN];
  memset(id, idbyte, sizeof id);
  memset(sig, 0, sizeof sig);
  swim_wbuf_t w;
  msgpack_packer pk;
  swim_wbuf_init(&w, b, sizeof b);
  swim_wbuf_packer(&w, &pk);
  swim_hdr_t h;
  memset(&h, 0, sizeof h);
  h.type = SWIM_MSG_GOSSIP;
  h.from8 = swim_id8(id);
  swim_enc_hdr(&pk, &h);
  swim_addr_t a = fz_addr(last);
  size_t from;
  swim_enc_alive_body(&pk, id, idbyte == FZ_M1_BYTE ? "m1" : "m2", &a,
                      (swim_inc_t){1, 0}, (const uint8_t *)"k=v", 3, &from);
  swim_enc_sig(&pk, sig);
  CHECK(swim_recv(f->core, &a, b, w.len, f->now) == 0);
}

static void fz_build(fz_t *f, int signed_) {
  swim_free(f->core);
  memset(f, 0, sizeof *f);
  f->rng = signed_ ? 2 : 1;
  f->now = 1000000;
  swim_config_t cfg;
  swim_config_default(&cfg);
  memset(cfg.id, FZ_SELF_BYTE, SWIM_ID_LEN);
  strcpy(cfg.name, "fuzz");
  cfg.addr = fz_addr(1);
  cfg.generation = 1;
  swim_callbacks_t cb;
  memset(&cb, 0, sizeof cb);
  cb.send = fz_send;
  cb.send_stream = fz_send_stream;
  cb.rand64 = fz_rand;
  cb.event = fz_event;
  if (signed_) {
    cb.sign = fz_sign;
    cb.verify = fz_verify;
  }
  CHECK(swim_new(&f->core, &cfg, &cb, f, f->now) == 0);
  fz_teach(f, FZ_M1_BYTE, 2);
  fz_teach(f, FZ_M2_BYTE, 3);
  CHECK(swim_member_count(f->core) == 3);
}

static void fz_check_table(const swim_core_t *c) {
  size_t n = swim_member_count(c), live = 0;
  CHECK(n >= 1);
  for (size_t i = 0; i < n; i++) {
    swim_member_t m;
    int rc = swim_member_at(c, i, &m);
    if (rc == SWIM_ENOTFOUND)
      continue; /* a freed slot */
    CHECK(rc == 0);
    CHECK(m.is_self == (i == 0));
    CHECK(m.status <= SWIM_LEFT);
    CHECK(strlen(m.name) >= 1 && strlen(m.name) <= SWIM_NAME_MAX);
    CHECK(m.meta_len <= SWIM_META_MAX);
    CHECK(swim_member_find(c, m.id, NULL) == 0);
    live += m.status == SWIM_ALIVE || m.status == SWIM_SUSPECT;
  }
  CHECK(live == swim_alive_count(c));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (g_inputs++ % FZ_REBUILD == 0 || !g_fz[0].core) {
    fz_build(&g_fz[0], 0);
    fz_build(&g_fz[1], 1);
  }
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  if (size)
    memcpy(buf, data, size);
  for (int k = 0; k < 2; k++) {
    fz_t *f = &g_fz[k];
    f->now += 10;
    /* from a known member most of the time, else from a stranger */
    swim_addr_t from = fz_addr(size && (buf[size - 1] & 1) ? 2 : 77);
    int rc = swim_recv(f->core, &from, buf, size, f->now);
    CHECK(rc == 0 || (rc <= SWIM_EMALFORMED && rc >= SWIM_ENOSPACE));
    if (g_inputs % 8 == 0) {
      f->now += 300;
      swim_tick(f->core, f->now);
      /* every timer due at `now` has run: a driver that sleeps until the
       * next deadline must not be told to wake up in the past */
      CHECK(swim_next_deadline(f->core) > f->now);
    }
    fz_check_table(f->core);
    if (swim_member_count(f->core) > 512)
      g_inputs = 0; /* rebuild on the next input */
  }
  free(buf);
  return 0;
}
