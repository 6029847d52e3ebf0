/*
 * gen_swim_corpus.c: writes the seed corpora of the SWIM fuzz targets.
 *
 *   gen_swim_corpus tests/fuzz/corpus
 *
 * swim_msg/: one valid message of each header type and update kind (plus a
 * few near misses), for fuzz_swim_msg. swim_recv/: messages addressed to the
 * live cores of fuzz_swim_recv and about the members they know, so the fuzzer
 * starts from inputs that reach deep into the state machine (acks matching a
 * probe, accusations the core must refute, leaves, push-pull joins). The
 * seeds are built with the swim_enc_* encoders, so they follow the wire
 * format as it is; rerun this after changing it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "swim_proto.h"

/* mirrored from fuzz_swim_recv.c */
#define FZ_SELF_BYTE 0x11
#define FZ_M1_BYTE 0x22
#define FZ_M2_BYTE 0x33
#define FZ_NEW_BYTE 0x44 /* a member the cores do not know yet */

typedef struct out {
  uint8_t buf[65536];
  swim_wbuf_t w;
  msgpack_packer pk;
} out_t;

static const char *g_root;
static int g_files;

static uint64_t id8_of(uint8_t b) {
  uint8_t id[SWIM_ID_LEN];
  memset(id, b, sizeof id);
  return swim_id8(id);
}

static swim_addr_t addr(uint8_t last, int v6) {
  swim_addr_t a;
  memset(&a, 0, sizeof a);
  a.family = v6 ? 6 : 4;
  if (v6) {
    a.ip[0] = 0xfd;
    a.ip[15] = last;
  } else {
    a.ip[0] = 10;
    a.ip[3] = last;
  }
  a.port = 7946;
  return a;
}

static void begin(out_t *o, uint8_t type, uint64_t from8, uint32_t seq,
                  uint64_t target8, uint8_t flags) {
  swim_wbuf_init(&o->w, o->buf, sizeof o->buf);
  swim_wbuf_packer(&o->w, &o->pk);
  swim_hdr_t h;
  memset(&h, 0, sizeof h);
  h.type = type;
  h.from8 = from8;
  h.seq = seq;
  h.target8 = target8;
  h.flags = flags;
  if (type == SWIM_MSG_PING_REQ)
    h.taddr = addr(3, 0);
  swim_enc_hdr(&o->pk, &h);
}

/* sig_first: first byte of the signature, -1 for nil (fuzz_swim_recv's toy
 * verify accepts a signature starting with 0). */
static void alive(out_t *o, uint8_t idb, const char *name, uint8_t last,
                  int v6, swim_inc_t inc, const char *meta, int sig_first) {
  uint8_t id[SWIM_ID_LEN], sig[SWIM_SIG_LEN];
  memset(id, idb, sizeof id);
  swim_addr_t a = addr(last, v6);
  size_t from;
  swim_enc_alive_body(&o->pk, id, name, &a, inc, (const uint8_t *)meta,
                      meta ? strlen(meta) : 0, &from);
  if (sig_first < 0) {
    swim_enc_sig(&o->pk, NULL);
    return;
  }
  memset(sig, 0x5a, sizeof sig);
  sig[0] = (uint8_t)sig_first;
  swim_enc_sig(&o->pk, sig);
}

static void left(out_t *o, uint8_t idb, swim_inc_t inc, int sig_first) {
  size_t from;
  swim_enc_left_body(&o->pk, id8_of(idb), inc, &from);
  if (sig_first < 0) {
    swim_enc_sig(&o->pk, NULL);
    return;
  }
  uint8_t sig[SWIM_SIG_LEN];
  memset(sig, 0xa5, sizeof sig);
  sig[0] = (uint8_t)sig_first;
  swim_enc_sig(&o->pk, sig);
}

static void write_raw(const char *dir, const char *name, const uint8_t *b,
                      size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/%s", g_root, dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "gen_swim_corpus: cannot write %s: %s\n", path,
            strerror(errno));
    exit(1);
  }
  g_files++;
}

static void emit(out_t *o, const char *dir, const char *name) {
  if (o->w.overflow) {
    fprintf(stderr, "gen_swim_corpus: %s/%s does not fit\n", dir, name);
    exit(1);
  }
  write_raw(dir, name, o->buf, o->w.len);
}

static void gen_msg(void) {
  const char *d = "swim_msg";
  out_t *o = malloc(sizeof *o);
  uint64_t a8 = id8_of(0xa1), b8 = id8_of(0xb2);
  swim_inc_t i1 = {1, 0}, i2 = {3, 7};
  char name64[SWIM_NAME_MAX + 1];
  memset(name64, 'n', SWIM_NAME_MAX);
  name64[SWIM_NAME_MAX] = 0;
  char meta512[SWIM_META_MAX + 1];
  memset(meta512, 'm', SWIM_META_MAX);
  meta512[SWIM_META_MAX] = 0;

  begin(o, SWIM_MSG_PING, a8, 1, b8, 0);
  emit(o, d, "ping");
  begin(o, SWIM_MSG_ACK, b8, 1, a8, 0);
  emit(o, d, "ack");
  begin(o, SWIM_MSG_PING_REQ, a8, 2, b8, 0);
  emit(o, d, "ping_req_v4");
  {
    swim_wbuf_init(&o->w, o->buf, sizeof o->buf);
    swim_wbuf_packer(&o->w, &o->pk);
    swim_hdr_t h;
    memset(&h, 0, sizeof h);
    h.type = SWIM_MSG_PING_REQ;
    h.from8 = a8;
    h.seq = UINT32_MAX;
    h.target8 = b8;
    h.taddr = addr(9, 1);
    swim_enc_hdr(&o->pk, &h);
    emit(o, d, "ping_req_v6");
  }
  begin(o, SWIM_MSG_NACK, b8, 2, 0, 0);
  emit(o, d, "nack");
  begin(o, SWIM_MSG_PUSHPULL, a8, 0, 0, SWIM_PP_JOIN);
  alive(o, 0xa1, "a", 1, 0, i1, "role=seed", 0);
  emit(o, d, "pushpull_join");
  begin(o, SWIM_MSG_PUSHPULL, b8, 0, 0, SWIM_PP_REPLY);
  alive(o, 0xa1, "a", 1, 0, i1, "role=seed", 0);
  alive(o, 0xb2, "b", 2, 1, i2, NULL, -1);
  alive(o, 0xc3, "c", 3, 0, i1, "x", 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_SUSPECT, id8_of(0xc3), i1, b8);
  alive(o, 0xd4, "d", 4, 0, i1, NULL, 0);
  left(o, 0xd4, (swim_inc_t){1, 1}, 0);
  emit(o, d, "pushpull_reply");
  begin(o, SWIM_MSG_GOSSIP, a8, 0, 0, 0);
  alive(o, 0xa1, "alpha", 1, 0, i2, "svc=web;port=80", 1);
  emit(o, d, "gossip_alive_signed");
  begin(o, SWIM_MSG_GOSSIP, a8, 0, 0, 0);
  alive(o, 0xa1, "alpha", 1, 0, i1, NULL, -1);
  emit(o, d, "gossip_alive_unsigned");
  begin(o, SWIM_MSG_GOSSIP, a8, 0, 0, 0);
  alive(o, 0xe5, "six", 5, 1, i1, "v6", -1);
  emit(o, d, "gossip_alive_v6");
  begin(o, SWIM_MSG_GOSSIP, a8, 0, 0, 0);
  alive(o, 0xe5, name64, 5, 1, (swim_inc_t){UINT32_MAX, UINT32_MAX}, meta512,
        7);
  emit(o, d, "gossip_alive_bounds");
  begin(o, SWIM_MSG_GOSSIP, a8, 0, 0, 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_SUSPECT, b8, i2, a8);
  emit(o, d, "gossip_suspect");
  begin(o, SWIM_MSG_GOSSIP, a8, 0, 0, 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_DEAD, b8, i2, a8);
  emit(o, d, "gossip_dead");
  begin(o, SWIM_MSG_GOSSIP, b8, 0, 0, 0);
  left(o, 0xb2, i2, 0);
  emit(o, d, "gossip_left_signed");
  begin(o, SWIM_MSG_GOSSIP, b8, 0, 0, 0);
  left(o, 0xb2, i2, -1);
  emit(o, d, "gossip_left_unsigned");
  begin(o, SWIM_MSG_GOSSIP, b8, 0, 0, 0);
  for (uint8_t s = SWIM_ALIVE; s <= SWIM_LEFT; s++)
    swim_enc_digest(&o->pk, id8_of((uint8_t)(0xa0 + s)), s, i2);
  emit(o, d, "gossip_digests");
  begin(o, SWIM_MSG_PING, a8, 5, b8, 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_SUSPECT, b8, i2, a8);
  alive(o, 0xc3, "c", 3, 0, i1, "k=v", -1);
  swim_enc_accuse(&o->pk, SWIM_UPD_DEAD, id8_of(0xd4), i1, a8);
  swim_enc_digest(&o->pk, a8, SWIM_ALIVE, i1);
  emit(o, d, "ping_piggyback");
  {
    uint8_t sig[SWIM_SIG_LEN];
    memset(sig, 0x5a, sizeof sig);
    begin(o, SWIM_MSG_GOSSIP, a8, 0, 0, 0);
    swim_enc_renew(&o->pk, b8, i2, 0x01020304u, sig);
    swim_enc_renew(&o->pk, a8, i1, 0, NULL);
    emit(o, d, "gossip_renew");
  }
  /* near misses: the fuzzer learns the edges from these */
  {
    swim_wbuf_init(&o->w, o->buf, sizeof o->buf);
    swim_wbuf_packer(&o->w, &o->pk);
    msgpack_pack_array(&o->pk, 6);
    msgpack_pack_uint8(&o->pk, 1); /* another version: the old wire */
    msgpack_pack_uint8(&o->pk, SWIM_MSG_PING);
    msgpack_pack_uint64(&o->pk, a8);
    msgpack_pack_uint32(&o->pk, 1);
    msgpack_pack_uint64(&o->pk, b8);
    msgpack_pack_uint8(&o->pk, 0);
    emit(o, d, "version1");
  }
  {
    /* push-pull: a member's credential ahead of its record */
    uint8_t cid[SWIM_ID_LEN], cred[150];
    memset(cid, 0xa1, sizeof cid);
    memset(cred, 0x5c, sizeof cred);
    begin(o, SWIM_MSG_PUSHPULL, a8, 0, 0, 0);
    swim_enc_cred(&o->pk, cid, cred, sizeof cred);
    alive(o, 0xa1, "alpha", 1, 0, i2, "svc", 1);
    emit(o, d, "pushpull_cred");
  }
  begin(o, SWIM_MSG_GOSSIP, a8, 0, 0, 0);
  alive(o, 0xa1, "alpha", 1, 0, i2, "svc", 1);
  o->w.len -= 10; /* truncated */
  emit(o, d, "truncated_alive");
  {
    static const uint8_t nest[] = {0x91, 0x91, 0x91, 0x91, 0x91,
                                   0x91, 0x91, 0x91, 0x91, 0x90};
    write_raw(d, "nested", nest, sizeof nest);
    static const uint8_t bigarr[] = {0x96, 0x01, 0x06, 0x01, 0x00, 0x00,
                                     0x00, 0xdd, 0xff, 0xff, 0xff, 0xff};
    write_raw(d, "oversize_count", bigarr, sizeof bigarr);
  }
  free(o);
}

static void gen_recv(void) {
  const char *d = "swim_recv";
  out_t *o = malloc(sizeof *o);
  uint64_t self8 = id8_of(FZ_SELF_BYTE), m1 = id8_of(FZ_M1_BYTE),
           m2 = id8_of(FZ_M2_BYTE), nw = id8_of(FZ_NEW_BYTE);
  swim_inc_t self_inc = {1, 0}, m_inc = {1, 0};

  begin(o, SWIM_MSG_PING, m1, 7, self8, 0);
  swim_enc_digest(&o->pk, m2, SWIM_ALIVE, m_inc);
  swim_enc_digest(&o->pk, self8, SWIM_ALIVE, self_inc);
  emit(o, d, "ping_from_m1");
  begin(o, SWIM_MSG_PING, id8_of(0x99), 1, 0, 0);
  emit(o, d, "ping_from_stranger");
  begin(o, SWIM_MSG_PING, m1, 8, self8, 0);
  swim_enc_digest(&o->pk, m2, SWIM_DEAD, (swim_inc_t){1, 4});
  swim_enc_digest(&o->pk, self8, SWIM_SUSPECT, self_inc);
  emit(o, d, "ping_newer_digests");
  begin(o, SWIM_MSG_ACK, m1, 1, self8, 0);
  emit(o, d, "ack_seq1");
  begin(o, SWIM_MSG_ACK, m2, 2, self8, 0);
  swim_enc_digest(&o->pk, m1, SWIM_ALIVE, m_inc);
  emit(o, d, "ack_seq2");
  begin(o, SWIM_MSG_PING_REQ, m1, 3, m2, 0);
  emit(o, d, "ping_req_m2");
  begin(o, SWIM_MSG_NACK, m2, 1, 0, 0);
  emit(o, d, "nack_seq1");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  alive(o, FZ_NEW_BYTE, "newcomer", 4, 0, (swim_inc_t){1, 0}, "svc=db", 0);
  emit(o, d, "gossip_new_member");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  alive(o, FZ_NEW_BYTE, "newcomer", 4, 1, (swim_inc_t){1, 0}, NULL, 9);
  emit(o, d, "gossip_new_member_badsig");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  alive(o, FZ_M1_BYTE, "m1", 2, 0, (swim_inc_t){1, 1}, "k=v2", 0);
  emit(o, d, "gossip_m1_new_meta");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_SUSPECT, m2, m_inc, m1);
  emit(o, d, "gossip_suspect_m2");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_DEAD, m2, m_inc, m1);
  emit(o, d, "gossip_dead_m2");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_SUSPECT, self8, self_inc, m1);
  emit(o, d, "gossip_suspect_self");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_DEAD, self8, (swim_inc_t){1, 9}, m1);
  emit(o, d, "gossip_dead_self");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  left(o, FZ_M1_BYTE, (swim_inc_t){1, 1}, 0);
  emit(o, d, "gossip_left_m1");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  left(o, FZ_SELF_BYTE, (swim_inc_t){1, 1}, -1);
  emit(o, d, "gossip_left_self");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  alive(o, FZ_SELF_BYTE, "fuzz", 1, 0, (swim_inc_t){1, 5}, NULL, 0);
  emit(o, d, "gossip_alive_self_newer");
  begin(o, SWIM_MSG_GOSSIP, m1, 0, 0, 0);
  alive(o, FZ_NEW_BYTE, "newcomer", 4, 0, (swim_inc_t){1, 0}, NULL, 0);
  left(o, FZ_NEW_BYTE, (swim_inc_t){1, 1}, -1);
  emit(o, d, "gossip_new_then_left");
  begin(o, SWIM_MSG_PUSHPULL, nw, 0, 0, SWIM_PP_JOIN);
  alive(o, FZ_NEW_BYTE, "newcomer", 4, 0, (swim_inc_t){2, 0}, "j", 0);
  emit(o, d, "pushpull_join");
  begin(o, SWIM_MSG_PUSHPULL, m1, 0, 0, SWIM_PP_REPLY);
  alive(o, FZ_M1_BYTE, "m1", 2, 0, m_inc, "k=v", 0);
  alive(o, FZ_M2_BYTE, "m2", 3, 0, m_inc, "k=v", 0);
  swim_enc_accuse(&o->pk, SWIM_UPD_DEAD, m2, (swim_inc_t){1, 2}, m1);
  alive(o, FZ_NEW_BYTE, "newcomer", 4, 0, m_inc, NULL, 0);
  left(o, FZ_NEW_BYTE, (swim_inc_t){1, 1}, 0);
  alive(o, FZ_SELF_BYTE, "fuzz", 1, 0, self_inc, NULL, 0);
  emit(o, d, "pushpull_reply_state");
  begin(o, SWIM_MSG_PING, m2, 9, self8, 0);
  for (int i = 0; i < 7; i++) { /* stays under SWIM_MTU */
    char nm[16];
    snprintf(nm, sizeof nm, "bulk%d", i);
    alive(o, (uint8_t)(0x50 + i), nm, (uint8_t)(20 + i), i & 1,
          (swim_inc_t){1, (uint32_t)i}, "0123456789abcdef0123456789", 0);
  }
  emit(o, d, "ping_many_alive");
  {
    /* RENEWs about the cores' member m1 ("m1", 10.0.0.2, "k=v"): one cut
     * from the body they hold (rebuilt, then verified), one from another
     * (asked for), one about a member they never met */
    uint8_t id[SWIM_ID_LEN], sig[SWIM_SIG_LEN];
    memset(id, FZ_M1_BYTE, sizeof id);
    memset(sig, 0, sizeof sig);
    swim_addr_t a = addr(2, 0);
    uint32_t body = swim_body_hash(id, "m1", 2, &a, (const uint8_t *)"k=v", 3);
    begin(o, SWIM_MSG_GOSSIP, id8_of(FZ_M2_BYTE), 0, 0, 0);
    swim_enc_renew(&o->pk, id8_of(FZ_M1_BYTE), (swim_inc_t){1, 5}, body, sig);
    emit(o, d, "gossip_renew");
    begin(o, SWIM_MSG_GOSSIP, id8_of(FZ_M2_BYTE), 0, 0, 0);
    swim_enc_renew(&o->pk, id8_of(FZ_M1_BYTE), (swim_inc_t){1, 6}, body ^ 1,
                   sig);
    swim_enc_renew(&o->pk, id8_of(FZ_NEW_BYTE), (swim_inc_t){2, 1}, body,
                   NULL);
    emit(o, d, "gossip_renew_unmatched");
  }
  free(o);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_swim_corpus CORPUS_ROOT\n");
    return 2;
  }
  g_root = argv[1];
  char p[4096];
  snprintf(p, sizeof p, "%s/swim_msg", g_root);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/swim_recv", g_root);
  mkdir(p, 0755);
  gen_msg();
  gen_recv();
  printf("gen_swim_corpus: wrote %d seeds under %s\n", g_files, g_root);
  return 0;
}
