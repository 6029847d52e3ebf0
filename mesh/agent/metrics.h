/*
 * metrics.h: the agent's counters as Prometheus text (exposition format
 * 0.0.4), the body of GET /metrics and of the `metrics` command. The
 * family names are fixed by INTERFACES.md ("GET /metrics").
 *
 * Pure: it formats what it is given (a node's lm_stats_t, member counts,
 * the loop's lag) and reads no clock, socket or node itself, so a unit
 * test feeds it any numbers. Must never depend on the agent's state, on
 * mesh/node/ or swim/ internals: the public API's value types only.
 *
 * The text it writes: every family has its # HELP and # TYPE lines, then
 * its samples; counters end in _total; label values are escaped (\\, \",
 * \n) as the format wants; a family whose labels are a fixed set (status,
 * kind and result) has every label value present, 0 when none.
 */
#ifndef LIVEMESH_MESH_AGENT_METRICS_H
#define LIVEMESH_MESH_AGENT_METRICS_H

#include <livemesh/livemesh.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The Content-Type of the text below, for HTTP. */
#define LM__METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A growable, always NUL-terminated text buffer. Once an allocation fails
 * it stays failed (`oom`) and writes are dropped, so a caller checks once
 * at the end. */
typedef struct lm__buf {
  char *p;
  size_t len, cap;
  int oom;
} lm__buf_t;

void lm__buf_init(lm__buf_t *b);
void lm__buf_free(lm__buf_t *b);
void lm__buf_put(lm__buf_t *b, const char *s, size_t n);
void lm__buf_puts(lm__buf_t *b, const char *s);
void lm__buf_printf(lm__buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The text (the caller frees it) and an empty buffer; NULL if out of
 * memory (the buffer is freed either way). */
char *lm__buf_take(lm__buf_t *b);

/* Writers of the exposition format, for the families below and any a
 * later module adds. */
/* "# HELP NAME HELP\n# TYPE NAME TYPE\n"; help escapes \\ and \n. */
void lm__prom_family(lm__buf_t *b, const char *name, const char *type,
                     const char *help);
/* A label value escaped: \\ -> \\\\, " -> \\", newline -> \\n. */
void lm__prom_label_value(lm__buf_t *b, const char *v);
/* One sample: NAME{k1="v1",...} VALUE\n, `nlabels` pairs (keys[i],
 * values[i]); no braces when nlabels is 0. */
void lm__prom_sample(lm__buf_t *b, const char *name, size_t nlabels,
                     const char *const *keys, const char *const *values,
                     double value);
void lm__prom_sample_u64(lm__buf_t *b, const char *name, size_t nlabels,
                         const char *const *keys, const char *const *values,
                         uint64_t value);

/* What the agent's text is made of. */
typedef struct lm__metrics_input {
  const lm_stats_t *stats;      /* required */
  size_t members_by_status[4];  /* by lm_status_t, this node included */
  const char *version;          /* lm_version() */
  const char *name;             /* this member's name */
  double start_time_s;          /* unix seconds the agent started */
  double loop_lag_s;            /* the watchdog's last tick */
  double loop_lag_max_s;        /* its worst over the live window */
  int ready, live;              /* -1 when not known */
  size_t control_clients;
} lm__metrics_input_t;

/* The whole /metrics text; NULL if out of memory. Families, in order:
 *   livemesh_build_info{version,name} (gauge, 1)
 *   livemesh_start_time_seconds, livemesh_ready, livemesh_live (gauges)
 *   livemesh_members{status} alive|suspect|dead|left, livemesh_local_health
 *   livemesh_udp_packets_sent_total, livemesh_udp_bytes_sent_total,
 *   livemesh_udp_packets_received_total, livemesh_udp_bytes_received_total,
 *   livemesh_tcp_frames_sent_total, livemesh_tcp_bytes_sent_total,
 *   livemesh_tcp_frames_received_total, livemesh_tcp_bytes_received_total,
 *   livemesh_send_errors_total, livemesh_connections_refused_total
 *   livemesh_dropped_total{reason} (one sample per reason seen; a reason
 *     named by two layers is added up)
 *   livemesh_probes_total, livemesh_probes_failed_total,
 *   livemesh_suspicions_total, livemesh_refutations_total,
 *   livemesh_updates_sent_total, livemesh_updates_applied_total
 *   livemesh_services{status} up|down|maintenance, livemesh_services_local
 *   livemesh_service_lists_sent_total, livemesh_service_lists_received_total,
 *   livemesh_service_list_requests_sent_total
 *   livemesh_check_runs_total{kind,result} ttl|process|http|tcp|exec x
 *     ok|fail|timeout
 *   livemesh_loop_lag_seconds, livemesh_loop_lag_max_seconds
 *   livemesh_control_clients */
char *lm__metrics_text(const lm__metrics_input_t *in);

#ifdef __cplusplus
}
#endif
#endif
