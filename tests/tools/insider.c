/*
 * insider.c: a member of the cluster turned hostile, for the multi-process
 * test tests/multiproc/insider.py.
 *
 *   insider --node-key FILE --node-cert FILE --cluster-key FILE
 *           --join HOST:PORT --expect N --victim NAME
 *           [--flood-seconds S] [--timeout S]
 *
 * It is a real member: its own key pair and a certificate from the cluster
 * key, admitted like any agent. Once it sees N members alive (itself
 * included) it sends, to every other member, over the stream (its frames
 * carry its certificate, so the envelope always verifies: what is judged
 * is the content), one phase at a time:
 *
 *   forge_alive     the victim's alive record at a much higher incarnation,
 *                   with the insider's address, signed with the insider's
 *                   own key (the only key it has)
 *   forge_leave     the victim's leave, signed the same way
 *   forge_services  a service list in the victim's name, signed the same way
 *   spoof_sender    messages whose header names the victim as their sender
 *   accuse_ahead    dead and suspect verdicts about the victim at
 *                   incarnations nobody can have seen ({max, max} and
 *                   {gen, max}): refutable only if they are bounded
 *   replay          once the victim has refuted: the victim's genuine
 *                   alive record from before (captured at the start), the
 *                   insider's own record from before it changed its
 *                   metadata, and an accusation at the incarnation the
 *                   victim has refuted
 *   verdict_flood   for S seconds (default 20), every 100 ms, a dead
 *                   verdict about every other member at its current
 *                   incarnation, each naming a different member as its
 *                   accuser
 *
 * Then it leaves the mesh gracefully and exits.
 *
 * stdout: one JSON line per phase, {"phase":P,"targets":T,"messages":M,
 * "records":R} (M messages and R records sent to each of the T targets),
 * then {"done":true,"insider":NAME,"victim":NAME,"victim_id":HEX}. Exit 0
 * when every phase was sent, 1 when it could not be (no join, N not seen,
 * the victim never refuted), 2 on a usage error.
 *
 * Reaches into the node's internals (node_internal.h) like the node tests
 * do; a test tool, never installed.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <livemesh/livemesh.h>
#include <msgpack.h>
#include <uv.h>

#include "node_internal.h"
#include "svc_codec.h"
#include "swim_msg.h"
#include "swim_proto.h"
#include "tool_node.h"
#include "trust.h"

#define MAX_PEERS 64

typedef struct peer {
  char name[LM_NAME_MAX + 1];
  uint8_t id[LM_ID_LEN];
  uint64_t id8;
  swim_addr_t addr;
  swim_inc_t inc;
} peer_t;

typedef struct insider {
  uv_loop_t loop;
  lm_node_t *node;
  const char *victim;
  size_t expect;
  peer_t peers[MAX_PEERS]; /* every other member, alive */
  size_t npeers;
  peer_t *v; /* the victim, among peers */
  uint8_t victim_rec[1400], self_rec[1400];
  size_t victim_rec_len, self_rec_len;
  swim_inc_t victim_inc0;
} insider_t;

static void usage(void) {
  fprintf(stderr,
          "usage: insider --node-key FILE --node-cert FILE --cluster-key "
          "FILE --join HOST:PORT --expect N --victim NAME "
          "[--flood-seconds S] [--timeout S]\n");
  exit(2);
}

/* Reads the view: every other member alive or suspect, into f->peers. 1
 * when the whole expected mesh is there and the victim is among it. */
static int read_view(void *ud) {
  insider_t *f = ud;
  lm_member_t *m;
  size_t n, alive = 0;
  if (lm_node_members(f->node, &m, &n))
    return 0;
  f->npeers = 0;
  f->v = NULL;
  for (size_t i = 0; i < n; i++) {
    if (m[i].status != LM_ALIVE && m[i].status != LM_SUSPECT)
      continue; /* the flood makes members suspect: still targets */
    alive += m[i].status == LM_ALIVE;
    if (m[i].is_self || f->npeers == MAX_PEERS)
      continue;
    peer_t *p = &f->peers[f->npeers];
    struct sockaddr_storage ss;
    if (lm__parse_hostport(m[i].addr, &ss))
      continue;
    lm__sa_to_swim((struct sockaddr *)&ss, &p->addr);
    snprintf(p->name, sizeof p->name, "%s", m[i].name);
    memcpy(p->id, m[i].id, LM_ID_LEN);
    p->id8 = swim_id8(m[i].id);
    p->inc = (swim_inc_t){m[i].generation, m[i].version};
    if (!strcmp(p->name, f->victim))
      f->v = p;
    f->npeers++;
  }
  free(m);
  return alive >= f->expect && f->v != NULL;
}

/* The victim has refuted since the start. */
static int victim_moved(void *ud) {
  insider_t *f = ud;
  return read_view(f) && (f->v->inc.gen > f->victim_inc0.gen ||
                          (f->v->inc.gen == f->victim_inc0.gen &&
                           f->v->inc.ver > f->victim_inc0.ver));
}

/* ---- messages ---- */

/* Messages up to a datagram's size (swim_msg.h). */
static void msg_start(msg_t *m, uint8_t type, uint64_t from8) {
  msg_begin_cap(m, SWIM_MTU, type, from8);
}

/* Signs [from, len) with the insider's own key, as the core signs. */
static void sign_own(insider_t *f, msg_t *m, size_t from) {
  uint8_t sig[LM_SIG_LEN];
  if (lm_rec_sign(sig, m->buf + from, m->w.len - from, &f->node->kp)) {
    fprintf(stderr, "insider: lm_rec_sign failed\n");
    exit(1);
  }
  swim_enc_sig(&m->pk, sig);
}

static void send_to(insider_t *f, const peer_t *p, const uint8_t *buf,
                    size_t len) {
  lm__core_send_stream(f->node, &p->addr, buf, len);
}

static void send_all(insider_t *f, const msg_t *m) {
  if (m->w.overflow) {
    fprintf(stderr, "insider: a message did not fit\n");
    exit(1);
  }
  for (size_t i = 0; i < f->npeers; i++)
    send_to(f, &f->peers[i], m->buf, m->w.len);
}

static void report(insider_t *f, const char *phase, unsigned msgs,
                   unsigned recs) {
  printf("{\"phase\":\"%s\",\"targets\":%zu,\"messages\":%u,\"records\":%u}\n",
         phase, f->npeers, msgs, recs);
  fflush(stdout);
}

static swim_addr_t self_addr(insider_t *f) {
  lm_member_t me;
  swim_addr_t a;
  memset(&a, 0, sizeof a);
  struct sockaddr_storage ss;
  if (lm_node_self(f->node, &me) == 0 && lm__parse_hostport(me.addr, &ss) == 0)
    lm__sa_to_swim((struct sockaddr *)&ss, &a);
  return a;
}

#define REPEAT 3

static void forge_alive(insider_t *f) {
  swim_addr_t mine = self_addr(f);
  swim_inc_t inc = {f->v->inc.gen, f->v->inc.ver + 1000};
  for (int k = 0; k < REPEAT; k++) {
    msg_t m;
    size_t from;
    msg_start(&m, SWIM_MSG_GOSSIP, 0);
    swim_enc_alive_body(&m.pk, f->v->id, f->v->name, &mine, inc,
                        (const uint8_t *)"forged", 6, &from);
    sign_own(f, &m, from);
    send_all(f, &m);
    inc.ver++;
  }
  report(f, "forge_alive", REPEAT, REPEAT);
}

static void forge_leave(insider_t *f) {
  swim_inc_t inc = {f->v->inc.gen, f->v->inc.ver + 1000};
  for (int k = 0; k < REPEAT; k++) {
    msg_t m;
    size_t from;
    msg_start(&m, SWIM_MSG_GOSSIP, 0);
    swim_enc_left_body(&m.pk, f->v->id8, inc, &from);
    sign_own(f, &m, from);
    send_all(f, &m);
    inc.ver++;
  }
  report(f, "forge_leave", REPEAT, REPEAT);
}

static int forge_services(insider_t *f) {
  lm_service_t s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < LM_UUID_LEN; i++) /* recognisable: 0xf0 0xf1 ... */
    s.uuid[i] = (uint8_t)(0xf0 + i);
  s.uuid[6] = 0x4f; /* version 4 */
  s.uuid[8] = 0x8f; /* variant */
  s.type = "forged";
  s.name = s.region = s.note = "";
  s.cause = "registered";
  s.worker = -1;
  s.status = LM_SVC_UP;
  s.created_ms = s.since_ms = 1;
  for (int k = 0; k < REPEAT; k++) {
    uint8_t *body;
    size_t blen;
    if (lm_svclist_encode(&body, &blen, f->v->id, UINT32_MAX,
                          UINT64_MAX / 2 + (uint64_t)k, 1, &s, 1))
      return -1;
    uint8_t *signed_list = malloc(blen + LM_SIG_LEN);
    if (!signed_list) {
      free(body);
      return -1;
    }
    memcpy(signed_list, body, blen);
    free(body);
    lm_svc_sign(signed_list + blen, signed_list, blen, &f->node->kp);
    swim_wbuf_t w;
    swim_wbuf_init_dyn(&w);
    msgpack_packer pk;
    swim_wbuf_packer(&w, &pk);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 83); /* a service-list message */
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_bin(&pk, blen + LM_SIG_LEN);
    msgpack_pack_bin_body(&pk, signed_list, blen + LM_SIG_LEN);
    free(signed_list);
    for (size_t i = 0; i < f->npeers; i++)
      send_to(f, &f->peers[i], w.p, w.len);
    free(w.p);
  }
  report(f, "forge_services", REPEAT, REPEAT);
  return 0;
}

static void spoof_sender(insider_t *f) {
  static const uint8_t types[REPEAT] = {SWIM_MSG_ACK, SWIM_MSG_GOSSIP,
                                        SWIM_MSG_ACK};
  for (int k = 0; k < REPEAT; k++) {
    msg_t m;
    msg_start(&m, types[k], f->v->id8);
    send_all(f, &m);
  }
  report(f, "spoof_sender", REPEAT, 0);
}

static void accuse_ahead(insider_t *f) {
  const swim_inc_t incs[REPEAT] = {{UINT32_MAX, UINT32_MAX},
                                   {f->v->inc.gen, UINT32_MAX},
                                   {UINT32_MAX, 0}};
  for (int k = 0; k < REPEAT; k++) {
    msg_t m;
    msg_start(&m, SWIM_MSG_GOSSIP, 0);
    swim_enc_accuse(&m.pk, k == 1 ? SWIM_UPD_SUSPECT : SWIM_UPD_DEAD,
                    f->v->id8, incs[k], swim_id8(f->node->kp.pk));
    send_all(f, &m);
  }
  report(f, "accuse_ahead", REPEAT, REPEAT);
}

/* After the victim refuted and the insider changed its own metadata: the
 * records of before, and the accusation the victim refuted. */
static void replay(insider_t *f) {
  for (int k = 0; k < REPEAT; k++) {
    msg_t m;
    msg_start(&m, SWIM_MSG_GOSSIP, 0);
    msgpack_pack_bin_body(&m.pk, f->victim_rec, f->victim_rec_len);
    msgpack_pack_bin_body(&m.pk, f->self_rec, f->self_rec_len);
    swim_enc_accuse(&m.pk, SWIM_UPD_DEAD, f->v->id8, f->victim_inc0,
                    swim_id8(f->node->kp.pk));
    send_all(f, &m);
  }
  report(f, "replay", REPEAT, 3 * REPEAT);
}

static void verdict_flood(insider_t *f, double seconds) {
  unsigned msgs = 0, recs = 0;
  size_t targets = f->npeers;
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + (uint64_t)(seconds * 1000);
  while (uv_now(&f->loop) < end) {
    read_view(f);
    msg_t m;
    msg_start(&m, SWIM_MSG_GOSSIP, 0);
    unsigned n = 0;
    for (size_t i = 0; i < f->npeers; i++) {
      /* the accuser named is someone else again each time */
      const peer_t *by = &f->peers[(i + msgs + 1) % f->npeers];
      swim_enc_accuse(&m.pk, SWIM_UPD_DEAD, f->peers[i].id8, f->peers[i].inc,
                      by->id8);
      n++;
    }
    send_all(f, &m);
    msgs++;
    recs = n > recs ? n : recs;
    targets = f->npeers > targets ? f->npeers : targets;
    tool_run(&f->loop, 100, NULL, NULL);
  }
  f->npeers = targets; /* as many as it reached at most */
  report(f, "verdict_flood", msgs, msgs * recs);
}

/* ---- main ---- */

static int capture(insider_t *f) {
  const uint8_t *raw;
  size_t len;
  if (swim_member_record(f->node->core, f->v->id8, &raw, &len) ||
      len > sizeof f->victim_rec)
    return -1;
  memcpy(f->victim_rec, raw, len);
  f->victim_rec_len = len;
  if (swim_member_record(f->node->core, swim_id8(f->node->kp.pk), &raw, &len) ||
      len > sizeof f->self_rec)
    return -1;
  memcpy(f->self_rec, raw, len);
  f->self_rec_len = len;
  f->victim_inc0 = f->v->inc;
  return 0;
}

static int attack(insider_t *f, double flood_s, double timeout_s) {
  if (!tool_run(&f->loop, (uint64_t)(timeout_s * 1000), read_view, f)) {
    fprintf(stderr, "insider: %zu members alive with %s among them not seen "
            "within %.0f s\n", f->expect, f->victim, timeout_s);
    return -1;
  }
  if (capture(f)) {
    fprintf(stderr, "insider: cannot read the records to replay\n");
    return -1;
  }
  forge_alive(f);
  forge_leave(f);
  if (forge_services(f))
    return -1;
  spoof_sender(f);
  accuse_ahead(f);
  /* a newer record of the insider's own, so its old one is stale */
  if (lm_node_set_meta(f->node, (const uint8_t *)"changed", 7)) {
    fprintf(stderr, "insider: cannot change its metadata\n");
    return -1;
  }
  if (!tool_run(&f->loop, (uint64_t)(timeout_s * 1000), victim_moved, f)) {
    fprintf(stderr, "insider: %s never refuted\n", f->victim);
    return -1;
  }
  /* the refutation and our change spread */
  tool_run(&f->loop, 3000, NULL, NULL);
  read_view(f);
  replay(f);
  tool_run(&f->loop, 500, NULL, NULL);
  verdict_flood(f, flood_s);
  tool_run(&f->loop, 1000, NULL, NULL); /* the last frames go out */
  char vid[2 * LM_ID_LEN + 1];
  tool_hex(vid, f->v->id, LM_ID_LEN);
  lm_member_t me;
  lm_node_self(f->node, &me);
  printf("{\"done\":true,\"insider\":\"%s\",\"victim\":\"%s\","
         "\"victim_id\":\"%s\"}\n",
         me.name, f->victim, vid);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  tool_member_t m;
  memset(&m, 0, sizeof m);
  insider_t f;
  memset(&f, 0, sizeof f);
  double timeout_s = 60, flood_s = 20;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (tool_member_arg(&m, a, v))
      continue;
    if (!strcmp(a, "--expect"))
      f.expect = (size_t)atoi(v);
    else if (!strcmp(a, "--victim"))
      f.victim = v;
    else if (!strcmp(a, "--flood-seconds"))
      flood_s = atof(v);
    else if (!strcmp(a, "--timeout"))
      timeout_s = atof(v);
    else
      usage();
  }
  if (!tool_member_ok(&m) || !f.victim || f.expect < 2 ||
      timeout_s <= 0 || flood_s < 0)
    usage();

  int rc = tool_node_open(&f.node, &f.loop, "insider", &m);
  if (rc || (rc = tool_node_start(f.node, &f.loop, "insider", m.seeds,
                                   m.nseeds)))
    return rc;
  int code = attack(&f, flood_s, timeout_s) == 0 ? 0 : 1;
  tool_node_finish(f.node, &f.loop);
  return code;
}
