/*
 * cert_joiner.c: a node that presents a certificate no honest node would
 * run with (expired, not yet valid), for the multi-process test
 * tests/multiproc/trust.py.
 *
 *   cert_joiner --node-key FILE --node-cert FILE --cluster-key FILE
 *               --join HOST:PORT [--join HOST:PORT ...] [--seconds N]
 *
 * An agent refuses to start with an expired or not yet valid certificate
 * of its own, and so does lm_node_new (it checks its own certificate
 * against its trust set and the clock). An outsider holding such a
 * certificate is not bound by that check, so this tool plays one: it is a
 * real lm_node (libuv loop, UDP and TCP, the envelope, the swim core), and
 * every certificate it puts on the wire is the one given with --node-cert:
 * the one in its stream frames' envelope (flag CERT), the CRED of itself in
 * its push-pull frames, and the one its records rely on.
 *
 * How it gets past lm_node_new's own check: it issues, in memory, a
 * certificate for the same node key and name from a throwaway cluster key
 * that only this process knows (and trusts besides --cluster-key), creates
 * the node with it, and before the node starts replaces the node's
 * certificate and its sender's certificate with the one under test. The
 * throwaway certificate never leaves the process.
 *
 * It binds 127.0.0.1:0, joins through the seeds (the core retries the join
 * with its backoff), runs N seconds (default 20) or until SIGTERM/SIGINT,
 * then exits 0 without leaving (it was never admitted; a leave would only
 * add traffic).
 *
 * stdout: a JSON line when started, {"started":true,"name":..,"id":HEX,
 * "addr":"127.0.0.1:PORT","not_before":UNIX,"expiry":UNIX,"now":UNIX}, and
 * one when done, {"done":true,"members":[{"name":..,"status":..},...],
 * "tcp_frames_out":N,"tcp_frames_in":N,"udp_pkts_out":N,"udp_pkts_in":N,
 * "dropped":{REASON:N,...}}: the members it saw (itself only, if nobody
 * admitted it) and what it sent. Exit 1 when it cannot start, 2 on a usage
 * error.
 *
 * Reaches into the node's internals (node_internal.h) like forge_svc and
 * the node tests do; a test tool, never installed.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <livemesh/livemesh.h>
#include <uv.h>

#include "node_internal.h"
#include "tool_node.h"
#include "trust.h"

static void usage(void) {
  fprintf(stderr,
          "usage: cert_joiner --node-key FILE --node-cert FILE --cluster-key "
          "FILE --join HOST:PORT [--join HOST:PORT ...] [--seconds N]\n");
  exit(2);
}

/* A JSON string; names are printable without quotes (keygen's rule), but
 * this is a tool fed certificates nobody checked. */
static void put_json_str(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

static void on_stop_timer(uv_timer_t *t) { uv_stop(t->loop); }

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  tool_member_t opt;
  memset(&opt, 0, sizeof opt);
  double seconds = 20;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (tool_member_arg(&opt, a, v))
      continue;
    if (!strcmp(a, "--seconds"))
      seconds = atof(v);
    else
      usage();
  }
  if (!tool_member_ok(&opt) || seconds <= 0)
    usage();
  const char *key = opt.key, *certf = opt.cert, *ckey = opt.ckey;

  lm_keypair_t kp;
  lm_cert_t cert;
  int rc;
  if ((rc = lm_keypair_load(&kp, key))) {
    fprintf(stderr, "cert_joiner: %s: %s\n", key, lm_trust_strerror(rc));
    return 2;
  }
  if ((rc = lm_cert_load(&cert, certf))) {
    fprintf(stderr, "cert_joiner: %s: %s\n", certf, lm_trust_strerror(rc));
    return 2;
  }
  if (memcmp(cert.node_pk, kp.pk, LM_PUBLICKEY_LEN) != 0) {
    fprintf(stderr, "cert_joiner: %s is not for the key in %s\n", certf, key);
    return 2;
  }
  uint8_t trusted[2][LM_PUBLICKEY_BYTES];
  if ((rc = lm_cluster_pubkey_load(trusted[0], ckey))) {
    fprintf(stderr, "cert_joiner: %s: %s\n", ckey, lm_strerror(rc));
    return 2;
  }

  /* the throwaway certificate that lm_node_new checks */
  uint64_t now = (uint64_t)time(NULL);
  lm_keypair_t throwaway;
  lm_cert_t c0;
  lm_identity_t id;
  memset(&id, 0, sizeof id);
  if (lm_keypair_generate(&throwaway) ||
      lm_cert_issue(&c0, kp.pk, cert.name, now - 60, now + 3600,
                    &throwaway) ||
      lm_cert_encode(id.cert, sizeof id.cert, &id.cert_len, &c0)) {
    fprintf(stderr, "cert_joiner: cannot issue the throwaway certificate\n");
    return 1;
  }
  memcpy(trusted[1], throwaway.pk, LM_PUBLICKEY_BYTES);
  lm_keypair_wipe(&throwaway);
  memcpy(id.pk, kp.pk, sizeof id.pk);
  memcpy(id.sk, kp.sk, sizeof id.sk);
  lm_keypair_wipe(&kp);

  uv_loop_t loop;
  if (uv_loop_init(&loop))
    return 1;
  lm_options_t o;
  memset(&o, 0, sizeof o);
  o.name = cert.name;
  o.bind = "127.0.0.1:0";
  o.identity = &id;
  o.trusted = (const uint8_t(*)[LM_PUBLICKEY_BYTES])trusted;
  o.ntrusted = 2;
  lm_node_t *n;
  rc = lm_node_new(&n, &loop, &o);
  lm_identity_wipe(&id);
  if (rc) {
    fprintf(stderr, "cert_joiner: lm_node_new: %s\n", lm_strerror(rc));
    return 1;
  }
  /* from here on, the certificate under test is the node's */
  n->cert = cert;
  if (lm_cert_encode(n->cert_raw, sizeof n->cert_raw, &n->cert_len, &cert) ||
      lm_sender_set_cert(&n->tx, &n->cert)) {
    fprintf(stderr, "cert_joiner: cannot install the certificate\n");
    return 1;
  }
  if (tool_node_start(n, &loop, "cert_joiner", opt.seeds, opt.nseeds))
    return 1;
  char addr[LM_ADDR_STRLEN] = "?", idh[2 * LM_ID_LEN + 1];
  lm_node_bound_addr(n, addr, sizeof addr);
  tool_hex(idh, cert.node_pk, LM_ID_LEN);
  printf("{\"started\":true,\"name\":");
  put_json_str(cert.name);
  printf(",\"id\":\"%s\",\"addr\":\"%s\",\"not_before\":%llu,"
         "\"expiry\":%llu,\"now\":%llu}\n",
         idh, addr, (unsigned long long)cert.not_before,
         (unsigned long long)cert.expiry, (unsigned long long)now);
  fflush(stdout);

  uv_timer_t stop;
  uv_signal_t sig_term, sig_int;
  uv_timer_init(&loop, &stop);
  uv_timer_start(&stop, on_stop_timer, (uint64_t)(seconds * 1000), 0);
  uv_signal_init(&loop, &sig_term);
  uv_signal_init(&loop, &sig_int);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);

  lm_member_t *m = NULL;
  size_t nm = 0;
  lm_stats_t st;
  memset(&st, 0, sizeof st);
  printf("{\"done\":true,\"members\":[");
  if (lm_node_members(n, &m, &nm) == 0) {
    for (size_t i = 0; i < nm; i++) {
      printf("%s{\"name\":", i ? "," : "");
      put_json_str(m[i].name);
      printf(",\"status\":\"%s\"}", lm_status_name(m[i].status));
    }
    free(m);
  }
  printf("]");
  if (lm_node_stats(n, &st) == 0) {
    printf(",\"tcp_frames_out\":%llu,\"tcp_frames_in\":%llu,"
           "\"udp_pkts_out\":%llu,\"udp_pkts_in\":%llu,\"dropped\":{",
           (unsigned long long)st.tcp_frames_out,
           (unsigned long long)st.tcp_frames_in,
           (unsigned long long)st.udp_pkts_out,
           (unsigned long long)st.udp_pkts_in);
    /* the trust layer and the core may both name a reason: one key each,
     * added up (as the agent's stats do) */
    int first = 1;
    for (size_t i = 0; i < st.ndropped; i++) {
      int seen = 0;
      uint64_t sum = 0;
      for (size_t j = 0; j < st.ndropped; j++)
        if (!strcmp(st.dropped[j].reason, st.dropped[i].reason)) {
          seen |= j < i;
          sum += st.dropped[j].count;
        }
      if (seen)
        continue;
      printf("%s", first ? "" : ",");
      first = 0;
      put_json_str(st.dropped[i].reason);
      printf(":%llu", (unsigned long long)sum);
    }
    printf("}");
  }
  printf("}\n");
  fflush(stdout);

  lm_node_close(n, tool_on_closed, NULL);
  uv_close((uv_handle_t *)&stop, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}
