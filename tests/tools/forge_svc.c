/*
 * forge_svc.c: an insider forging another member's service list, for the
 * multi-process test tests/multiproc/services.py.
 *
 *   forge_svc --node-key FILE --node-cert FILE --cluster-key FILE
 *             --join HOST:PORT --victim-name NAME --target HOST:PORT
 *             [--type T] [--timeout SECONDS]
 *
 * The insider is a real member: its own key, a certificate from the
 * cluster key, admitted like any agent. Once it has joined and sees the
 * victim alive, it builds a service list in the victim's name (the
 * victim's id, a seq higher than any genuine one, one service of type T
 * that is up), signs it with its OWN key (the only key it has), and sends
 * it to the target as a service-list message ([83, 2, bin], the message
 * test_node_services.c's test_forged_list_rejected sends), over the stream
 * (whose frames carry the sender's certificate). It then leaves the mesh
 * gracefully,
 * so the mesh returns to the members it had, and exits.
 *
 * stdout: one JSON line, {"sent":true,"victim":..,"victim_id":..,
 * "target":..,"type":..,"uuid":..,"bytes":N,"insider":..}. Exit 0 when the
 * forgery was sent, 1 when it could not be (no join, no victim in time), 2
 * on a usage error.
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
#include "swim_proto.h"
#include "tool_node.h"
#include "trust.h"

typedef struct forge {
  uv_loop_t loop;
  lm_node_t *node;
  const char *victim, *target, *type;
  uint8_t victim_id[LM_ID_LEN];
} forge_t;

static void usage(void) {
  fprintf(stderr,
          "usage: forge_svc --node-key FILE --node-cert FILE --cluster-key "
          "FILE --join HOST:PORT --victim-name NAME --target HOST:PORT "
          "[--type T] [--timeout SECONDS]\n");
  exit(2);
}

/* The victim alive in this node's view: its id. */
static int find_victim(void *ud) {
  forge_t *f = ud;
  lm_member_t *m;
  size_t n;
  if (lm_node_members(f->node, &m, &n))
    return 0;
  int ok = 0;
  for (size_t i = 0; i < n; i++)
    if (!m[i].is_self && !strcmp(m[i].name, f->victim) &&
        m[i].status == LM_ALIVE) {
      memcpy(f->victim_id, m[i].id, LM_ID_LEN);
      ok = 1;
    }
  free(m);
  return ok;
}

static int send_forgery(forge_t *f) {
  lm_service_t s;
  memset(&s, 0, sizeof s);
  /* a recognisable uuid: 0xf0 0x4d ... */
  for (int i = 0; i < LM_UUID_LEN; i++)
    s.uuid[i] = (uint8_t)(0xf0 + i);
  s.uuid[6] = 0x4f; /* version 4 */
  s.uuid[8] = 0x8f; /* variant */
  s.type = f->type;
  s.name = s.region = s.note = "";
  s.cause = "registered";
  s.worker = -1;
  s.status = LM_SVC_UP;
  uv_update_time(&f->loop);
  int64_t now_ms = (int64_t)uv_now(&f->loop); /* only needs to be > 0 */
  s.created_ms = s.since_ms = now_ms;

  uint8_t *body;
  size_t blen;
  int rc = lm_svclist_encode(&body, &blen, f->victim_id, UINT32_MAX,
                             UINT64_MAX / 2, 1, &s, 1);
  if (rc) {
    fprintf(stderr, "forge_svc: lm_svclist_encode: %d\n", rc);
    return -1;
  }
  uint8_t *forged = malloc(blen + LM_SIG_LEN);
  if (!forged) {
    free(body);
    return -1;
  }
  memcpy(forged, body, blen);
  free(body);
  /* the insider's own key: the only one it holds */
  if (lm_svc_sign(forged + blen, forged, blen, &f->node->kp)) {
    free(forged);
    fprintf(stderr, "forge_svc: lm_svc_sign failed\n");
    return -1;
  }
  size_t len = blen + LM_SIG_LEN;

  struct sockaddr_storage ss;
  if (lm__parse_hostport(f->target, &ss)) {
    free(forged);
    fprintf(stderr, "forge_svc: --target %s: not HOST:PORT\n", f->target);
    return -1;
  }
  swim_addr_t to;
  lm__sa_to_swim((struct sockaddr *)&ss, &to);
  swim_wbuf_t w;
  swim_wbuf_init_dyn(&w);
  msgpack_packer pk;
  swim_wbuf_packer(&w, &pk);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_uint8(&pk, 83);
  msgpack_pack_uint8(&pk, 2);
  msgpack_pack_bin(&pk, len);
  msgpack_pack_bin_body(&pk, forged, len);
  free(forged);
  /* Over the stream whatever the size: a stream frame carries the
   * sender's certificate, so the target verifies the envelope even if it
   * has not heard of the insider yet, and the list itself is what it must
   * refuse (a datagram from a sender it does not know yet would be dropped
   * earlier, as "unknown_sender"). */
  lm__core_send_stream(f->node, &to, w.p, w.len);

  char vid[2 * LM_ID_LEN + 1], uu[LM_UUID_STRLEN + 1];
  tool_hex(vid, f->victim_id, LM_ID_LEN);
  lm_uuid_format(uu, s.uuid);
  printf("{\"sent\":true,\"victim\":\"%s\",\"victim_id\":\"%s\","
         "\"target\":\"%s\",\"type\":\"%s\",\"uuid\":\"%s\",\"bytes\":%zu,"
         "\"insider\":\"%s\"}\n",
         f->victim, vid, f->target, f->type, uu, w.len, f->node->name);
  fflush(stdout);
  free(w.p);
  return 0;
}

int main(int argc, char **argv) {
  tool_member_t m;
  memset(&m, 0, sizeof m);
  forge_t f;
  memset(&f, 0, sizeof f);
  f.type = "forged";
  double timeout_s = 30;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (tool_member_arg(&m, a, v))
      continue;
    if (!strcmp(a, "--victim-name"))
      f.victim = v;
    else if (!strcmp(a, "--target"))
      f.target = v;
    else if (!strcmp(a, "--type"))
      f.type = v;
    else if (!strcmp(a, "--timeout"))
      timeout_s = atof(v);
    else
      usage();
  }
  if (!tool_member_ok(&m) || !f.victim || !f.target ||
      timeout_s <= 0)
    usage();

  int rc = tool_node_open(&f.node, &f.loop, "forge_svc", &m);
  if (rc || (rc = tool_node_start(f.node, &f.loop, "forge_svc", m.seeds,
                                   m.nseeds)))
    return rc;
  int code = 1;
  if (!tool_run(&f.loop, (uint64_t)(timeout_s * 1000), find_victim, &f)) {
    fprintf(stderr, "forge_svc: %s not seen alive within %.0f s\n", f.victim,
            timeout_s);
  } else if (send_forgery(&f) == 0) {
    code = 0;
    tool_run(&f.loop, 1000, NULL, NULL); /* the frame goes out (a stream
                                            connects first) */
  }
  tool_node_finish(f.node, &f.loop);
  return code;
}
