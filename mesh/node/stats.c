/*
 * stats.c: lm_node_stats: the node's counters and the core's, read from
 * any thread.
 */
#define _GNU_SOURCE
#include <string.h>

#include "node_internal.h"

int lm_node_stats(lm_node_t *n, lm_stats_t *o) {
  if (lm__forked(n))
    return LM_EFORKED;
  memset(o, 0, sizeof *o);
  o->udp_pkts_out = CNT_GET(n->udp_pkts_out);
  o->udp_bytes_out = CNT_GET(n->udp_bytes_out);
  o->udp_pkts_in = CNT_GET(n->udp_pkts_in);
  o->udp_bytes_in = CNT_GET(n->udp_bytes_in);
  o->tcp_frames_out = CNT_GET(n->tcp_frames_out);
  o->tcp_bytes_out = CNT_GET(n->tcp_bytes_out);
  o->tcp_frames_in = CNT_GET(n->tcp_frames_in);
  o->tcp_bytes_in = CNT_GET(n->tcp_bytes_in);
  o->send_errors = CNT_GET(n->send_errors);
  o->conns_refused = CNT_GET(n->conn_refused);
  o->test_dropped = CNT_GET(n->test_dropped);
  o->cert_requests_sent = CNT_GET(n->cert_reqs_out);
  o->cert_requests_received = CNT_GET(n->cert_reqs_in);
  o->certs_learned = CNT_GET(n->certs_learned);
  o->pair_keys_derived = CNT_GET(n->pairs_derived);
  for (int i = 0; i < LM_TRUST_ERR_COUNT; i++) {
    uint64_t d = CNT_GET(n->drops[i]);
    if (!d)
      continue;
    o->dropped[o->ndropped].reason = lm_trust_err_name(LM_TRUST_ERR_FIRST - i);
    o->dropped[o->ndropped++].count = d;
    o->dropped_total += d;
  }
  lm__svc_stats(n, o);
  if (!n->core)
    return 0;
  uv_mutex_lock(&n->mu);
  const swim_stats_t *s = swim_stats(n->core);
  o->probes = s->probes;
  o->probes_failed = s->probes_failed;
  o->suspicions_raised = s->suspicions_raised;
  o->refutes = s->refutes;
  o->pings = s->pings;
  o->acks = s->acks;
  o->ping_reqs = s->ping_reqs;
  o->nacks = s->nacks;
  o->updates_sent = s->updates_sent;
  o->updates_applied = s->updates_applied;
  o->stream_pings = s->stream_pings;
  o->stream_rescues = s->stream_rescues;
  o->probes_stale = s->probes_stale;
  o->fences = s->fences;
  o->unfences = s->unfences;
  o->records_deferred = s->records_deferred;
  o->stream_deferred = s->stream_deferred;
  o->stream_deferred_dropped = s->stream_deferred_dropped;
  o->local_health = swim_local_health(n->core);
  o->members = swim_member_count(n->core);
  o->alive = swim_alive_count(n->core);
  for (int i = 0; i < SWIM_DROP__COUNT; i++) {
    if (!s->dropped[i] || o->ndropped >= sizeof o->dropped / sizeof o->dropped[0])
      continue;
    o->dropped[o->ndropped].reason = swim_drop_name(i);
    o->dropped[o->ndropped++].count = s->dropped[i];
    o->dropped_total += s->dropped[i];
  }
  uv_mutex_unlock(&n->mu);
  return 0;
}
