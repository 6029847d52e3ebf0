/*
 * metrics.c: the Prometheus text of the agent's counters (metrics.h), and
 * the small growable buffer it is written into.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* ---- the buffer ---- */

void lm__buf_init(lm__buf_t *b) { memset(b, 0, sizeof *b); }

void lm__buf_free(lm__buf_t *b) {
  free(b->p);
  lm__buf_init(b);
}

/* Room for `n` more bytes and the NUL. */
static int reserve(lm__buf_t *b, size_t n) {
  if (b->oom)
    return -1;
  if (b->len + n + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + n + 1) {
    if (cap > SIZE_MAX / 2) {
      b->oom = 1;
      return -1;
    }
    cap *= 2;
  }
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void lm__buf_put(lm__buf_t *b, const char *s, size_t n) {
  if (reserve(b, n))
    return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void lm__buf_puts(lm__buf_t *b, const char *s) { lm__buf_put(b, s, strlen(s)); }

void lm__buf_printf(lm__buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

char *lm__buf_take(lm__buf_t *b) {
  if (!b->oom && !b->p)
    reserve(b, 0);
  if (b->oom) {
    lm__buf_free(b);
    return NULL;
  }
  b->p[b->len] = 0;
  char *p = b->p;
  lm__buf_init(b);
  return p;
}

/* ---- the exposition format ---- */

void lm__prom_family(lm__buf_t *b, const char *name, const char *type,
                     const char *help) {
  lm__buf_printf(b, "# HELP %s ", name);
  for (const char *s = help; *s; s++) {
    if (*s == '\\')
      lm__buf_puts(b, "\\\\");
    else if (*s == '\n')
      lm__buf_puts(b, "\\n");
    else
      lm__buf_put(b, s, 1);
  }
  lm__buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

void lm__prom_label_value(lm__buf_t *b, const char *v) {
  const char *run = v;
  for (const char *s = v;; s++) {
    const char *esc = *s == '\\' ? "\\\\"
                      : *s == '"' ? "\\\""
                      : *s == '\n' ? "\\n"
                                   : NULL;
    if (!esc && *s)
      continue;
    lm__buf_put(b, run, (size_t)(s - run));
    if (!*s)
      break;
    lm__buf_puts(b, esc);
    run = s + 1;
  }
}

static void labels(lm__buf_t *b, size_t n, const char *const *keys,
                   const char *const *values) {
  if (!n)
    return;
  lm__buf_puts(b, "{");
  for (size_t i = 0; i < n; i++) {
    lm__buf_printf(b, "%s%s=\"", i ? "," : "", keys[i]);
    lm__prom_label_value(b, values[i] ? values[i] : "");
    lm__buf_puts(b, "\"");
  }
  lm__buf_puts(b, "}");
}

void lm__prom_sample(lm__buf_t *b, const char *name, size_t nlabels,
                     const char *const *keys, const char *const *values,
                     double value) {
  lm__buf_puts(b, name);
  labels(b, nlabels, keys, values);
  if (isnan(value))
    lm__buf_puts(b, " NaN\n");
  else if (isinf(value))
    lm__buf_puts(b, value > 0 ? " +Inf\n" : " -Inf\n");
  else
    lm__buf_printf(b, " %.15g\n", value);
}

void lm__prom_sample_u64(lm__buf_t *b, const char *name, size_t nlabels,
                         const char *const *keys, const char *const *values,
                         uint64_t value) {
  lm__buf_puts(b, name);
  labels(b, nlabels, keys, values);
  lm__buf_printf(b, " %llu\n", (unsigned long long)value);
}

/* ---- the agent's families ---- */

/* A family of one unlabelled sample. */
static void one(lm__buf_t *b, const char *name, const char *type,
                const char *help, uint64_t v) {
  lm__prom_family(b, name, type, help);
  lm__prom_sample_u64(b, name, 0, NULL, NULL, v);
}

static void one_f(lm__buf_t *b, const char *name, const char *type,
                  const char *help, double v) {
  lm__prom_family(b, name, type, help);
  lm__prom_sample(b, name, 0, NULL, NULL, v);
}

static void drops(lm__buf_t *b, const lm_stats_t *st) {
  static const char *const K[] = {"reason"};
  lm__prom_family(b, "livemesh_dropped_total", "counter",
                  "Messages dropped, by reason (authentication, replay, "
                  "decoding, the protocol core's own reasons).");
  size_t n = st->ndropped < sizeof st->dropped / sizeof st->dropped[0]
                 ? st->ndropped
                 : sizeof st->dropped / sizeof st->dropped[0];
  for (size_t i = 0; i < n; i++) {
    const char *r = st->dropped[i].reason ? st->dropped[i].reason : "unknown";
    int seen = 0; /* one sample per reason: two layers may share a name */
    for (size_t j = 0; j < i && !seen; j++)
      seen = st->dropped[j].reason && !strcmp(st->dropped[j].reason, r);
    if (seen)
      continue;
    uint64_t sum = 0;
    for (size_t j = i; j < n; j++)
      if (!strcmp(st->dropped[j].reason ? st->dropped[j].reason : "unknown",
                  r))
        sum += st->dropped[j].count;
    const char *v[] = {r};
    lm__prom_sample_u64(b, "livemesh_dropped_total", 1, K, v, sum);
  }
}

char *lm__metrics_text(const lm__metrics_input_t *in) {
  const lm_stats_t *st = in->stats;
  lm__buf_t b;
  lm__buf_init(&b);
  static const char *const KV[] = {"version", "name"};
  const char *vv[] = {in->version ? in->version : "", in->name ? in->name : ""};
  lm__prom_family(&b, "livemesh_build_info", "gauge",
                  "Always 1; the labels say which livemesh this is.");
  lm__prom_sample_u64(&b, "livemesh_build_info", 2, KV, vv, 1);
  one_f(&b, "livemesh_start_time_seconds", "gauge",
        "When the agent started, in unix seconds.", in->start_time_s);
  if (in->ready >= 0)
    one(&b, "livemesh_ready", "gauge",
        "1 when the agent is ready (GET /readyz answers 200).",
        (uint64_t)(in->ready != 0));
  if (in->live >= 0)
    one(&b, "livemesh_live", "gauge",
        "1 when the agent's loop is responsive (GET /livez answers 200).",
        (uint64_t)(in->live != 0));

  static const char *const KS[] = {"status"};
  lm__prom_family(&b, "livemesh_members", "gauge",
                  "Members in this agent's view, by status, this node "
                  "included.");
  for (int s = 0; s < 4; s++) {
    const char *v[] = {lm_status_name((lm_status_t)s)};
    lm__prom_sample_u64(&b, "livemesh_members", 1, KS, v,
                        in->members_by_status[s]);
  }
  one(&b, "livemesh_local_health", "gauge",
      "Lifeguard's local health multiplier: 0 is healthy, higher means this "
      "node doubts its own timeliness.", st->local_health);

  one(&b, "livemesh_udp_packets_sent_total", "counter",
      "UDP datagrams sent.", st->udp_pkts_out);
  one(&b, "livemesh_udp_bytes_sent_total", "counter",
      "UDP bytes sent (payloads).", st->udp_bytes_out);
  one(&b, "livemesh_udp_packets_received_total", "counter",
      "UDP datagrams received.", st->udp_pkts_in);
  one(&b, "livemesh_udp_bytes_received_total", "counter",
      "UDP bytes received (payloads).", st->udp_bytes_in);
  one(&b, "livemesh_tcp_frames_sent_total", "counter",
      "Stream (TCP) frames sent: joins, push-pull, service lists.",
      st->tcp_frames_out);
  one(&b, "livemesh_tcp_bytes_sent_total", "counter", "Stream bytes sent.",
      st->tcp_bytes_out);
  one(&b, "livemesh_tcp_frames_received_total", "counter",
      "Stream (TCP) frames received.", st->tcp_frames_in);
  one(&b, "livemesh_tcp_bytes_received_total", "counter",
      "Stream bytes received.", st->tcp_bytes_in);
  one(&b, "livemesh_send_errors_total", "counter",
      "Sends the operating system refused.", st->send_errors);
  one(&b, "livemesh_connections_refused_total", "counter",
      "Inbound stream connections refused (over a limit).",
      st->conns_refused);
  drops(&b, st);

  one(&b, "livemesh_probes_total", "counter",
      "SWIM probes started by this node.", st->probes);
  one(&b, "livemesh_probes_failed_total", "counter",
      "Probes that got no ack, directly or through helpers.",
      st->probes_failed);
  one(&b, "livemesh_suspicions_total", "counter",
      "Suspicions this node raised about others.", st->suspicions_raised);
  one(&b, "livemesh_refutations_total", "counter",
      "Suspicions about this node that it refuted.", st->refutes);
  one(&b, "livemesh_stream_pings_total", "counter",
      "Pings sent over the stream after datagrams went unanswered.",
      st->stream_pings);
  one(&b, "livemesh_stream_rescues_total", "counter",
      "Probes answered only over the stream.", st->stream_rescues);
  one(&b, "livemesh_probes_stale_total", "counter",
      "Failed probes that accused nobody: the member refuted meanwhile.",
      st->probes_stale);
  one(&b, "livemesh_fences_total", "counter",
      "Times this node found itself deaf and stopped refuting.", st->fences);
  one(&b, "livemesh_unfences_total", "counter",
      "Times a fenced node heard again and came back.", st->unfences);
  one(&b, "livemesh_cert_requests_sent_total", "counter",
      "Certificates this node asked other members for.",
      st->cert_requests_sent);
  one(&b, "livemesh_cert_requests_received_total", "counter",
      "Certificate requests other members sent this node.",
      st->cert_requests_received);
  one(&b, "livemesh_certs_learned_total", "counter",
      "Members' certificates verified and kept.", st->certs_learned);
  one(&b, "livemesh_pair_keys_derived_total", "counter",
      "Pairwise keys derived (one per member this node talks to).",
      st->pair_keys_derived);
  one(&b, "livemesh_records_deferred_total", "counter",
      "Records set aside until their author's certificate arrived.",
      st->records_deferred);
  one(&b, "livemesh_stream_deferred_total", "counter",
      "Whole states held back while the stream's outgoing budget was spent.",
      st->stream_deferred);
  one(&b, "livemesh_stream_deferred_dropped_total", "counter",
      "Whole states dropped because too many were already held back.",
      st->stream_deferred_dropped);
  one(&b, "livemesh_updates_sent_total", "counter",
      "Membership records piggybacked on messages.", st->updates_sent);
  one(&b, "livemesh_updates_applied_total", "counter",
      "Membership records received that changed the view.",
      st->updates_applied);

  lm__prom_family(&b, "livemesh_services", "gauge",
                  "Services in this agent's view, by effective status.");
  for (int s = 0; s < 3; s++) {
    const char *v[] = {lm_svc_status_name((lm_svc_status_t)s)};
    lm__prom_sample_u64(&b, "livemesh_services", 1, KS, v,
                        st->services_by_status[s]);
  }
  one(&b, "livemesh_services_local", "gauge",
      "Services registered on this agent.", st->services_local);
  one(&b, "livemesh_service_lists_sent_total", "counter",
      "Service lists this node sent to members that asked.",
      st->svc_lists_sent);
  one(&b, "livemesh_service_lists_received_total", "counter",
      "Service lists received from other members.", st->svc_lists_received);
  one(&b, "livemesh_service_list_requests_sent_total", "counter",
      "Requests for another member's service list.", st->svc_requests_sent);

  static const char *const KR[] = {"kind", "result"};
  static const char *const RESULT[3] = {"ok", "fail", "timeout"};
  lm__prom_family(&b, "livemesh_check_runs_total", "counter",
                  "Runs of the local services' checks, by kind and result.");
  for (int k = 0; k < 5; k++)
    for (int r = 0; r < 3; r++) {
      const char *v[] = {lm_check_kind_name((lm_check_kind_t)(k + 1)),
                         RESULT[r]};
      lm__prom_sample_u64(&b, "livemesh_check_runs_total", 2, KR, v,
                          st->check_runs[k][r]);
    }

  one_f(&b, "livemesh_loop_lag_seconds", "gauge",
        "How late the agent's event loop ran its last watchdog tick.",
        in->loop_lag_s);
  one_f(&b, "livemesh_loop_lag_max_seconds", "gauge",
        "The worst watchdog lag over the liveness window.",
        in->loop_lag_max_s);
  one(&b, "livemesh_control_clients", "gauge",
      "Clients connected to the control socket.", in->control_clients);
  return lm__buf_take(&b);
}
