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
#include "trust.h"

typedef struct forge {
  uv_loop_t loop;
  lm_node_t *node;
  const char *victim, *target, *type;
  uint8_t victim_id[LM_ID_LEN];
  int found;
  int sent;
  int left;
} forge_t;

static void usage(void) {
  fprintf(stderr,
          "usage: forge_svc --node-key FILE --node-cert FILE --cluster-key "
          "FILE --join HOST:PORT --victim-name NAME --target HOST:PORT "
          "[--type T] [--timeout SECONDS]\n");
  exit(2);
}

static void hex(char *out, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", p[i]);
}

/* The victim alive in this node's view: its id. */
static int find_victim(forge_t *f) {
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
  hex(vid, f->victim_id, LM_ID_LEN);
  lm_uuid_format(uu, s.uuid);
  printf("{\"sent\":true,\"victim\":\"%s\",\"victim_id\":\"%s\","
         "\"target\":\"%s\",\"type\":\"%s\",\"uuid\":\"%s\",\"bytes\":%zu,"
         "\"insider\":\"%s\"}\n",
         f->victim, vid, f->target, f->type, uu, w.len, f->node->name);
  fflush(stdout);
  free(w.p);
  return 0;
}

static void on_left(lm_node_t *node, int status, void *ud) {
  (void)node;
  (void)status;
  ((forge_t *)ud)->left = 1;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until *flag or ms pass. */
static int run_until_flag(forge_t *f, int *flag, uint64_t ms,
                          int (*poll)(forge_t *)) {
  uv_timer_t tick;
  uv_timer_init(&f->loop, &tick);
  uv_timer_start(&tick, on_tick, 20, 20);
  uv_update_time(&f->loop);
  uint64_t end = uv_now(&f->loop) + ms;
  while (uv_now(&f->loop) < end) {
    if (poll && poll(f))
      *flag = 1;
    if (flag && *flag)
      break;
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return flag ? *flag : 0;
}

static void on_closed(lm_node_t *node, int status, void *ud) {
  (void)node;
  (void)status;
  (void)ud;
}

int main(int argc, char **argv) {
  const char *key = NULL, *cert = NULL, *ckey = NULL, *join = NULL;
  forge_t f;
  memset(&f, 0, sizeof f);
  f.type = "forged";
  double timeout_s = 30;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (!strcmp(a, "--node-key"))
      key = v;
    else if (!strcmp(a, "--node-cert"))
      cert = v;
    else if (!strcmp(a, "--cluster-key"))
      ckey = v;
    else if (!strcmp(a, "--join"))
      join = v;
    else if (!strcmp(a, "--victim-name"))
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
  if (!key || !cert || !ckey || !join || !f.victim || !f.target ||
      timeout_s <= 0)
    usage();

  lm_identity_t id;
  int rc = lm_identity_load(&id, key, cert);
  if (rc) {
    fprintf(stderr, "forge_svc: %s / %s: %s\n", key, cert, lm_strerror(rc));
    return 2;
  }
  lm_cert_t c;
  if (lm_cert_load(&c, cert)) {
    fprintf(stderr, "forge_svc: %s: not a certificate\n", cert);
    return 2;
  }
  uint8_t trusted[1][LM_PUBLICKEY_BYTES];
  if ((rc = lm_cluster_pubkey_load(trusted[0], ckey))) {
    fprintf(stderr, "forge_svc: %s: %s\n", ckey, lm_strerror(rc));
    return 2;
  }
  if (uv_loop_init(&f.loop))
    return 1;
  lm_options_t o;
  memset(&o, 0, sizeof o);
  o.name = c.name;
  o.bind = "127.0.0.1:0";
  o.identity = &id;
  o.trusted = (const uint8_t(*)[LM_PUBLICKEY_BYTES])trusted;
  o.ntrusted = 1;
  rc = lm_node_new(&f.node, &f.loop, &o);
  lm_identity_wipe(&id);
  if (rc) {
    fprintf(stderr, "forge_svc: lm_node_new: %s\n", lm_strerror(rc));
    return 1;
  }
  for (int i = 0; i < 20; i++) /* see start_node in tests/node_harness.h */
    if ((rc = lm_node_start(f.node)) != UV_EADDRINUSE)
      break;
  if (rc || (rc = lm_node_join(f.node, &join, 1))) {
    fprintf(stderr, "forge_svc: start/join: %s\n", lm_strerror(rc));
    lm_node_close(f.node, on_closed, NULL);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    return 1;
  }
  int code = 1;
  if (!run_until_flag(&f, &f.found, (uint64_t)(timeout_s * 1000),
                      find_victim)) {
    fprintf(stderr, "forge_svc: %s not seen alive within %.0f s\n", f.victim,
            timeout_s);
  } else if (send_forgery(&f) == 0) {
    code = 0;
    /* let the frame go out (a stream connects first) */
    int never = 0;
    run_until_flag(&f, &never, 1000, NULL);
  }
  if (lm_node_leave(f.node, on_left, &f) == 0)
    run_until_flag(&f, &f.left, 5000, NULL);
  lm_node_close(f.node, on_closed, NULL);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  uv_loop_close(&f.loop);
  return code;
}
