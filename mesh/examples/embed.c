/*
 * embed.c: a livemesh node on your own libuv loop, in about 30 lines.
 *   embed NAME BIND CLUSTER_PUB NODE_KEY NODE_CERT [SEED]
 * Prints every membership change; Ctrl-C to stop.
 */
#include <livemesh/livemesh.h>
#include <stdio.h>
#include <stdlib.h>

static void on_event(lm_node_t *node, const lm_event_t *ev, void *ud) {
  (void)node, (void)ud;
  printf("%-10s %s -> %s (%s)\n", ev->member.name,
         lm_status_name(ev->old_status), lm_status_name(ev->member.status),
         ev->member.addr);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s NAME HOST:PORT CLUSTER.pub NODE.key NODE.cert "
            "[SEED HOST:PORT]\n", argv[0]);
    return 2;
  }
  lm_identity_t id;
  uint8_t cluster[1][LM_PUBLICKEY_BYTES];
  int rc = lm_identity_load(&id, argv[4], argv[5]);
  if (rc == 0)
    rc = lm_cluster_pubkey_load(cluster[0], argv[3]);
  lm_options_t o = {.name = argv[1], .bind = argv[2], .identity = &id,
                    .trusted = cluster, .ntrusted = 1, .on_event = on_event};
  lm_node_t *node = NULL;
  if (rc == 0 && (rc = lm_node_new(&node, uv_default_loop(), &o)) == 0 &&
      (rc = lm_node_start(node)) == 0 && argc > 6)
    rc = lm_node_join(node, (const char *const *)&argv[6], 1);
  if (rc) {
    fprintf(stderr, "%s: %s\n", argv[0], lm_strerror(rc));
    return 1;
  }
  return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
