/*
 * bench.c: livemesh-bench, N real livemesh nodes in one process.
 *
 * Unlike livemesh-sim, which runs the bare swim core on a virtual network,
 * this runs the whole runtime: every node is an lm_node_t with its own UDP
 * and TCP sockets on 127.0.0.1, every datagram is sealed and signed, every
 * certificate is checked. All nodes share one uv loop (one thread), so the
 * CPU figure is the real cost of the runtime per node, and one record
 * cache (lm_options_t.share_records_with), so memory counts each member
 * record once per process as any many-nodes-on-one-loop embedding would.
 *
 * Run:  start all nodes, join them through a few seeds (staggered), wait
 * until every node sees N alive (converge_ms), wait --warmup more, measure
 * traffic and CPU over a steady window without failures, crash --kill nodes
 * (lm_node_close without a leave) and time, from the survivors' event
 * callbacks, how long until the first and until every survivor marks each
 * one DEAD. Healthy nodes suspected or declared dead by anyone are counted
 * as false positives. The JSON field names are the simulator's where they
 * mean the same thing (docs/benchmarks.md).
 *
 * The seed only picks which nodes are killed; the runtime draws its own
 * randomness, so two runs with one seed kill the same nodes but are not
 * identical.
 *
 * --services K: once converged every node registers K services and
 * watches "svc-0" everywhere; after a quiet steady window (the one the
 * steady figures cover) the run flips one node's TTL service every
 * --flip-ms and times each change until every other node's watch saw it.
 * --lookup: lookup.c, the cost of one is_up answer.
 *
 * Drives the nodes through the public API (include/livemesh/livemesh.h)
 * and reads a few internals for its figures (lm__svc_store,
 * lm__node_max_datagram: a test-side tool may); jansson and lm_report
 * (sim/report.h): the flag parsers and report figures it shares with
 * livemesh-sim.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <livemesh/livemesh.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "lookup.h"
#include "node_internal.h" /* lm__svc_store, lm__node_max_datagram */
#include "report.h"
#include "store.h"
#include "swim.h" /* the protocol defaults and limits */

#define STR_(x) #x
#define STR(x) STR_(x)

#define PROG "livemesh-bench"
#define TICK_MS 50          /* how often the driver looks at the mesh */
#define JOIN_SEEDS 4        /* nodes 0..3 are the seeds others join */
#define MIN_WINDOW_MS 10000 /* default steady window before the kills */
#define NAME_PREFIX "bench-"
#define DEFAULT_FLIP_MS 500
#define QUIET_MS 10000      /* with --services: steady window before the flips */
#define FLIP_DRAIN_MS 5000  /* no flip this close to the end of the run */
#define TTL_SVC_MS 3600000  /* the flipped service's TTL: never expires here */

/* ------------------------------------------------------------ settings -- */

typedef struct settings {
  uint32_t nodes;
  uint64_t seconds_ms;
  uint64_t seed;
  int seed_set;
  uint32_t kill;
  int64_t kill_at_ms; /* after start; -1: automatic */
  double loss;
  uint32_t probe_ms, probe_timeout_ms, indirect;
  int indirect_set;
  uint64_t warmup_ms; /* steady window starts this long after convergence */
  uint32_t stagger_ms; /* between two joins */
  int json;
  int verbose;
  /* --services: K services per node, one flip every flip_ms */
  uint32_t services;
  int services_set;
  uint32_t flip_ms;
  /* --lookup */
  int lookup;
  uint32_t members;
  int members_set;
  const char *socket;
  const char *http;
  uint64_t lookups;
} settings_t;

#define die(...) lm_report_die(PROG, __VA_ARGS__)
#define die_usage(...) lm_report_die_usage(PROG, __VA_ARGS__)

static void usage(FILE *f) {
  fputs(
      "usage: livemesh-bench [options]\n"
      "Runs N real livemesh nodes over loopback UDP/TCP on one libuv loop\n"
      "and measures convergence, crash detection, false positives, traffic,\n"
      "CPU and memory.\n"
      "  --nodes N              nodes (default 32)\n"
      "  --seconds S            length of the run (default 60)\n"
      "  --seed X               picks the killed nodes (default: from the clock;\n"
      "                         always printed)\n"
      "  --kill K               crash K nodes (never node 0) after the steady window\n"
      "  --kill-at S            when, in seconds after start (default: the later of\n"
      "                         half the run and 10 s after the window starts)\n"
      "  --warmup S             steady window starts S after convergence (default 5)\n"
      "  --loss P               drop a fraction 0 <= P < 1 of inbound datagrams\n"
      "                         at every node (default 0)\n"
      "  --probe-interval-ms MS probe interval (default " STR(SWIM_DEFAULT_PROBE_INTERVAL_MS) ")\n"
      "  --probe-timeout-ms MS  direct probe timeout (default " STR(SWIM_DEFAULT_PROBE_TIMEOUT_MS) ")\n"
      "  --indirect K           indirect probes per failed probe, 1.." STR(SWIM_MAX_INDIRECT_CHECKS)
      " (default " STR(SWIM_DEFAULT_INDIRECT_CHECKS) ")\n"
      "  --join-stagger-ms MS   between two nodes' joins (default: 100, or less\n"
      "                         so that all have joined within 25 s)\n"
      "  --services K           every node registers K services once converged\n"
      "                         (one a TTL service) and the run times status\n"
      "                         changes until every node sees them\n"
      "  --flip-ms MS           one status change every MS (default " STR(DEFAULT_FLIP_MS) ")\n"
      "  -o json|text           output (default text)\n"
      "  -v, --verbose          node log lines to stderr (twice: debug)\n"
      "  -h, --help\n"
      "\n"
      "   or: livemesh-bench --lookup [--members M] [--services K] [--lookups N]\n"
      "                      [--socket PATH] [--http HOST:PORT] [--seed X] [-o json|text]\n"
      "Times lm_node_is_up over a view of M members with K services each,\n"
      "built inside one node, and lm_client_is_up against the agent at PATH.\n"
      "  --members M            members in the view (default 10000)\n"
      "  --services K           services per member (default 10)\n"
      "  --lookups N            timed lookups (default 1048576, at least 64)\n"
      "  --socket PATH          a running `livemesh agent`'s control socket\n"
      "  --http HOST:PORT       a running agent's HTTP API: GET /v1/is-up on one\n"
      "                         keep-alive connection (libcurl, handle reused)\n",
      f);
}

enum {
  OPT_NODES = 256,
  OPT_SECONDS,
  OPT_SEED,
  OPT_KILL,
  OPT_KILL_AT,
  OPT_LOSS,
  OPT_PROBE,
  OPT_TIMEOUT,
  OPT_INDIRECT,
  OPT_WARMUP,
  OPT_STAGGER,
  OPT_SERVICES,
  OPT_FLIP,
  OPT_LOOKUP,
  OPT_MEMBERS,
  OPT_SOCKET,
  OPT_LOOKUPS, OPT_HTTP
};

static void parse_args(int argc, char **argv, settings_t *st) {
  static const struct option opts[] = {
      {"nodes", required_argument, NULL, OPT_NODES},
      {"seconds", required_argument, NULL, OPT_SECONDS},
      {"seed", required_argument, NULL, OPT_SEED},
      {"kill", required_argument, NULL, OPT_KILL},
      {"kill-at", required_argument, NULL, OPT_KILL_AT},
      {"loss", required_argument, NULL, OPT_LOSS},
      {"probe-interval-ms", required_argument, NULL, OPT_PROBE},
      {"probe-timeout-ms", required_argument, NULL, OPT_TIMEOUT},
      {"indirect", required_argument, NULL, OPT_INDIRECT},
      {"warmup", required_argument, NULL, OPT_WARMUP},
      {"join-stagger-ms", required_argument, NULL, OPT_STAGGER},
      {"services", required_argument, NULL, OPT_SERVICES},
      {"flip-ms", required_argument, NULL, OPT_FLIP},
      {"lookup", no_argument, NULL, OPT_LOOKUP},
      {"members", required_argument, NULL, OPT_MEMBERS},
      {"socket", required_argument, NULL, OPT_SOCKET},
      {"lookups", required_argument, NULL, OPT_LOOKUPS},
      {"http", required_argument, NULL, OPT_HTTP},
      {"output", required_argument, NULL, 'o'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:vh", opts, NULL)) != -1) {
    switch (c) {
    case OPT_NODES:
      /* each node holds two sockets and a view of every other node: a few
       * thousand is already far past what one thread can drive */
      if (lm_parse_u32(&st->nodes, optarg) != 0 || st->nodes < 1 ||
          st->nodes > 4096)
        die_usage("--nodes: expected 1..4096, got '%s'", optarg);
      break;
    case OPT_SECONDS:
      if (lm_parse_time_ms(&st->seconds_ms, optarg) != 0 ||
          st->seconds_ms == 0)
        die_usage("--seconds: expected a positive number of seconds, got '%s'",
                  optarg);
      break;
    case OPT_SEED:
      if (lm_parse_u64(&st->seed, optarg) != 0)
        die_usage("--seed: expected an unsigned 64-bit integer, got '%s'",
                  optarg);
      st->seed_set = 1;
      break;
    case OPT_KILL:
      if (lm_parse_u32(&st->kill, optarg) != 0)
        die_usage("--kill: expected a count, got '%s'", optarg);
      break;
    case OPT_KILL_AT: {
      uint64_t ms;
      if (lm_parse_time_ms(&ms, optarg) != 0)
        die_usage("--kill-at: expected seconds after start, got '%s'", optarg);
      st->kill_at_ms = (int64_t)ms;
      break;
    }
    case OPT_LOSS:
      if (lm_parse_fraction(&st->loss, optarg) != 0 || st->loss >= 1)
        die_usage("--loss: expected a probability 0 <= P < 1, got '%s'",
                  optarg);
      break;
    case OPT_PROBE:
      if (lm_parse_u32(&st->probe_ms, optarg) != 0 || st->probe_ms == 0)
        die_usage("--probe-interval-ms: expected a positive integer, got '%s'",
                  optarg);
      break;
    case OPT_TIMEOUT:
      if (lm_parse_u32(&st->probe_timeout_ms, optarg) != 0 ||
          st->probe_timeout_ms == 0)
        die_usage("--probe-timeout-ms: expected a positive integer, got '%s'",
                  optarg);
      break;
    case OPT_INDIRECT:
      /* 0 in lm_options_t means "the default", so zero indirect probes
       * cannot be asked for; refuse it rather than silently run 3 */
      if (lm_parse_u32(&st->indirect, optarg) != 0 || st->indirect < 1 ||
          st->indirect > SWIM_MAX_INDIRECT_CHECKS)
        die_usage("--indirect: expected 1..%d, got '%s'",
                  SWIM_MAX_INDIRECT_CHECKS, optarg);
      st->indirect_set = 1;
      break;
    case OPT_WARMUP:
      if (lm_parse_time_ms(&st->warmup_ms, optarg) != 0)
        die_usage("--warmup: expected seconds, got '%s'", optarg);
      break;
    case OPT_STAGGER:
      if (lm_parse_u32(&st->stagger_ms, optarg) != 0 || st->stagger_ms > 60000)
        die_usage("--join-stagger-ms: expected 0..60000, got '%s'", optarg);
      break;
    case OPT_SERVICES:
      if (lm_parse_u32(&st->services, optarg) != 0 ||
          st->services > LM_SVC_PER_NODE_MAX)
        die_usage("--services: expected 0..%d, got '%s'", LM_SVC_PER_NODE_MAX,
                  optarg);
      st->services_set = 1;
      break;
    case OPT_FLIP:
      if (lm_parse_u32(&st->flip_ms, optarg) != 0 || st->flip_ms < TICK_MS ||
          st->flip_ms > 600000)
        die_usage("--flip-ms: expected " STR(TICK_MS) "..600000, got '%s'",
                  optarg);
      break;
    case OPT_LOOKUP:
      st->lookup = 1;
      break;
    case OPT_MEMBERS:
      if (lm_parse_u32(&st->members, optarg) != 0 || st->members < 1 ||
          st->members > 1000000)
        die_usage("--members: expected 1..1000000, got '%s'", optarg);
      st->members_set = 1;
      break;
    case OPT_SOCKET:
      if (!*optarg)
        die_usage("--socket: expected a path");
      st->socket = optarg;
      break;
    case OPT_HTTP:
      if (!*optarg || !strchr(optarg, ':'))
        die_usage("--http: expected HOST:PORT, got '%s'", optarg);
      st->http = optarg;
      break;
    case OPT_LOOKUPS:
      if (lm_parse_u64(&st->lookups, optarg) != 0 || st->lookups < 64 ||
          st->lookups > 100000000)
        die_usage("--lookups: expected 64..100000000, got '%s'", optarg);
      break;
    case 'o':
      if (lm_parse_output(&st->json, optarg) != 0)
        die_usage("-o: expected json or text, got '%s'", optarg);
      break;
    case 'v':
      st->verbose++;
      break;
    case 'h':
      usage(stdout);
      exit(0);
    default:
      lm_report_getopt_error(PROG, c, argv);
    }
  }
  if (optind < argc)
    die_usage("unexpected argument '%s'", argv[optind]);
  if (st->lookup) {
    if (st->services_set && st->services == 0)
      die_usage("--lookup: --services must be at least 1");
    if (!st->services_set)
      st->services = 10;
#ifndef LM_BENCH_HAVE_CLIENT
    if (st->socket)
      die_usage("--socket: this build has no client library (lm_client, "
                "include/livemesh/client.h)");
#endif
    return;
  }
  if (st->members_set || st->socket || st->lookups || st->http)
    die_usage("--members, --socket, --http and --lookups go with --lookup");
  if (st->services && st->kill)
    die_usage("--services and --kill: measure one at a time (the flips "
              "would count a crashed node's services as never seen)");
  if (st->kill && st->kill >= st->nodes)
    die_usage("--kill: %u is not below --nodes %u (node 0 never dies)",
              st->kill, st->nodes);
  uint32_t interval = st->probe_ms ? st->probe_ms : SWIM_DEFAULT_PROBE_INTERVAL_MS;
  uint32_t timeout = st->probe_timeout_ms ? st->probe_timeout_ms : SWIM_DEFAULT_PROBE_TIMEOUT_MS;
  if (timeout >= interval)
    die_usage("the probe timeout (%u ms) must be below the probe interval "
              "(%u ms)", timeout, interval);
  if (st->kill_at_ms >= 0 && (uint64_t)st->kill_at_ms >= st->seconds_ms)
    die_usage("--kill-at: %.3f s is not before the end of the run (%.3f s)",
              (double)st->kill_at_ms / 1000.0,
              (double)st->seconds_ms / 1000.0);
}

/* --------------------------------------------------------------- state -- */

typedef struct bench bench_t;

typedef struct bnode {
  bench_t *b;
  lm_node_t *node;
  uint32_t idx;
  int up; /* open (not crashed, not yet closed at the end) */
  char addr[LM_ADDR_STRLEN];
  uint8_t ttl_uuid[LM_UUID_LEN]; /* --services: the service flipped */
  int ttl_down;                  /* its status as last set */
} bnode_t;

/* One status change of a node's TTL service (--services) and when the
 * other nodes' watches saw it. */
typedef struct flip {
  uint32_t node;
  int to_down;
  uint64_t at_ns; /* uv_hrtime() just before the call */
  int64_t first_ms, all_ms; /* -1 until it happens */
  uint32_t seen;
  uint8_t *seen_by; /* per observer */
} flip_t;

/* One crashed node and what the survivors made of it. Times are ms after
 * the crash; -1 until it happens. */
typedef struct victim {
  uint32_t node;
  uint64_t killed_at; /* ms after start */
  int64_t first_suspect, first_dead, all_dead;
  uint32_t ndead;    /* survivors that have marked it DEAD */
  uint8_t *dead_by;  /* per observer */
} victim_t;

/* Sums over the nodes, taken at the edges of the steady window. */
typedef struct traffic {
  uint64_t udp_bytes, udp_pkts, udp_bytes_in, udp_pkts_in;
  uint64_t tcp_bytes, tcp_frames;
  uint64_t probes, probes_failed, suspicions, refutes, send_errors;
  uint64_t dropped;
  uint64_t lists_sent, lists_received, list_requests;
} traffic_t;

struct bench {
  settings_t *st;
  uv_loop_t loop;
  uv_timer_t tick;
  bnode_t *nodes;
  uint32_t n;
  uint64_t t0_ns;
  uint32_t next_join; /* nodes below it have been told to join */
  int64_t converge_ms;
  int64_t count_from_ms; /* false positives are counted from here */
  int win_started, win_ended;
  uint64_t win_start_ms, win_end_ms;
  struct rusage ru0, ru1;
  traffic_t t0, t1;
  int64_t kill_time_ms; /* planned; -1 until known */
  int killed_done;
  victim_t *victims;
  uint32_t nvictims;
  int32_t *victim_of; /* node -> index in victims, or -1 */
  uint8_t *false_suspect, *false_dead;
  uint64_t false_suspect_events, false_dead_events;
  uint64_t suspect_events_before; /* before counting started: join noise */
  uint32_t open_nodes;
  int finishing;
  /* end of run */
  uint32_t undetected;
  size_t alive_view_min, alive_view_max;
  json_t *drops;
  uint32_t max_health;
  uint64_t end_ms;
  uint32_t start_retries; /* see the start loop in main() */
  /* How late the driver's own timer fires: with every node on one thread,
   * a late tick means late probes and acks too. */
  uint64_t last_tick_ms;
  int64_t *lags;
  size_t nlags, caplags;
  int64_t win_lag_max;
  double win_rss_mib, win_heap_mib;
  uint64_t next_progress_ms;
  traffic_t prog; /* at the previous progress line */
  uint64_t prog_at;
  uint64_t all_suspect_events, all_dead_events; /* for -v progress */
  /* --services */
  int svc_registered, flipping;
  uint32_t next_reg; /* nodes below it have registered their services */
  uint64_t svc_reg_ms, flip_start_ms, flip_end_ms, next_flip_ms;
  traffic_t t_reg, t_flip0, t_flip1;
  flip_t *flips;
  size_t nflips, capflips;
  int32_t *open_flip; /* node -> its flip still being seen, or -1 */
  uint64_t svc_complete_pairs;   /* (observer, member) with all K held */
  uint64_t svc_total_seen;       /* services summed over the views */
  size_t svc_list_min, svc_list_max; /* signed list sizes, bytes */
  size_t max_datagram;
  uint32_t svc_lists_over_datagram;
};

static uint64_t rel_ms(const bench_t *b) {
  return (uv_hrtime() - b->t0_ns) / 1000000u;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Names are "bench-<index>": the index is all the driver needs to find a
 * member named in an event. */
static long member_index(const bench_t *b, const char *name) {
  size_t pl = sizeof NAME_PREFIX - 1;
  if (strncmp(name, NAME_PREFIX, pl) != 0)
    return -1;
  char *end;
  errno = 0;
  unsigned long v = strtoul(name + pl, &end, 10);
  if (errno || *end || end == name + pl || v >= b->n)
    return -1;
  return (long)v;
}

/* ------------------------------------------------------------- events -- */

static void on_event(lm_node_t *node, const lm_event_t *ev, void *ud) {
  (void)node;
  bnode_t *obs = ud;
  bench_t *b = obs->b;
  if (ev->member.is_self || b->finishing)
    return;
  long t = member_index(b, ev->member.name);
  if (t < 0)
    return;
  uint64_t now = rel_ms(b);
  int32_t vi = b->victim_of[t];
  if (ev->kind != LM_EV_SUSPECT && ev->kind != LM_EV_DEAD)
    return;
  if (ev->kind == LM_EV_SUSPECT)
    b->all_suspect_events++;
  else
    b->all_dead_events++;
  if (vi >= 0) {
    /* A victim: what matters is only what happens after its crash. */
    victim_t *v = &b->victims[vi];
    if (!b->killed_done)
      return;
    int64_t dt = (int64_t)(now - v->killed_at);
    if (ev->kind == LM_EV_SUSPECT) {
      if (v->first_suspect < 0)
        v->first_suspect = dt;
      return;
    }
    if (v->dead_by[obs->idx])
      return;
    v->dead_by[obs->idx] = 1;
    v->ndead++;
    if (v->first_dead < 0)
      v->first_dead = dt;
    if (v->ndead == b->n - b->nvictims)
      v->all_dead = dt;
    return;
  }
  /* A healthy node suspected or declared dead: a false positive, once the
   * mesh has converged (suspicions while 256 nodes pile in are join noise,
   * reported apart). */
  if (b->count_from_ms < 0 || (int64_t)now < b->count_from_ms) {
    if (ev->kind == LM_EV_SUSPECT)
      b->suspect_events_before++;
    return;
  }
  if (ev->kind == LM_EV_SUSPECT) {
    b->false_suspect[t] = 1;
    b->false_suspect_events++;
  } else {
    b->false_dead[t] = 1;
    b->false_dead_events++;
  }
}

static void on_log(void *ud, int level, const char *line) {
  bench_t *b = ud;
  fprintf(stderr, "%9.3f %-5s %s\n", (double)rel_ms(b) / 1000.0,
          lm_report_level_name(level), line);
}

static void on_closed(lm_node_t *node, int status, void *ud) {
  (void)node, (void)status;
  bench_t *b = ud;
  b->open_nodes--;
}

/* ------------------------------------------------------------ phases -- */

static void snapshot(bench_t *b, traffic_t *t) {
  memset(t, 0, sizeof *t);
  for (uint32_t i = 0; i < b->n; i++) {
    if (!b->nodes[i].up)
      continue;
    lm_stats_t s;
    if (lm_node_stats(b->nodes[i].node, &s) != 0)
      continue;
    t->udp_bytes += s.udp_bytes_out;
    t->udp_pkts += s.udp_pkts_out;
    t->udp_bytes_in += s.udp_bytes_in;
    t->udp_pkts_in += s.udp_pkts_in;
    t->tcp_bytes += s.tcp_bytes_out;
    t->tcp_frames += s.tcp_frames_out;
    t->probes += s.probes;
    t->probes_failed += s.probes_failed;
    t->suspicions += s.suspicions_raised;
    t->refutes += s.refutes;
    t->send_errors += s.send_errors;
    t->dropped += s.dropped_total;
    t->lists_sent += s.svc_lists_sent;
    t->lists_received += s.svc_lists_received;
    t->list_requests += s.svc_requests_sent;
  }
}

static void window_start(bench_t *b, uint64_t now) {
  b->win_started = 1;
  b->win_start_ms = now;
  snapshot(b, &b->t0);
  getrusage(RUSAGE_SELF, &b->ru0);
}

/* Resident set now, not the peak: the join storm's transient buffers make
 * the peak (ru_maxrss) much larger than what a quiet mesh holds. */
static double rss_now_mib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages_total, pages_rss;
  double mib = -1;
  if (f && fscanf(f, "%lu %lu", &pages_total, &pages_rss) == 2)
    mib = (double)pages_rss * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
  if (f)
    fclose(f);
  return mib;
}

static void window_end(bench_t *b, uint64_t now) {
  if (!b->win_started || b->win_ended)
    return;
  b->win_ended = 1;
  b->win_end_ms = now;
  b->win_rss_mib = rss_now_mib();
  /* what the heap actually holds, to tell live data from what malloc
   * keeps after the join's transient buffers are freed */
  struct mallinfo2 mi = mallinfo2();
  b->win_heap_mib = (double)(mi.uordblks + mi.hblkhd) / 1048576.0;
  snapshot(b, &b->t1);
  getrusage(RUSAGE_SELF, &b->ru1);
}

/* ----------------------------------------------------------- services -- */

/* A status change as one observer's view saw it: counted once per
 * (flip, observer), and only the change the open flip of that host made. */
static void on_watch(lm_node_t *node, const lm_watch_event_t *ev, void *ud) {
  (void)node;
  bnode_t *obs = ud;
  bench_t *b = obs->b;
  if (b->finishing || ev->initial || ev->kind != LM_WATCH_SERVICE || !ev->host)
    return;
  long h = member_index(b, ev->host);
  if (h < 0 || (uint32_t)h == obs->idx || b->open_flip[h] < 0)
    return;
  flip_t *f = &b->flips[b->open_flip[h]];
  if (strcmp(ev->new_status, f->to_down ? "down" : "up") != 0 ||
      f->seen_by[obs->idx])
    return;
  f->seen_by[obs->idx] = 1;
  f->seen++;
  int64_t dt = (int64_t)((uv_hrtime() - f->at_ns) / 1000000u);
  if (f->first_ms < 0)
    f->first_ms = dt;
  if (f->seen == b->n - 1) {
    f->all_ms = dt;
    b->open_flip[h] = -1;
  }
}

/* Node i registers K services: "svc-0" is a TTL service (the one the run
 * flips; its TTL outlasts any run), the others have no check and are up
 * while registered. The node then watches "svc-0" everywhere. */
static void register_services(bench_t *b, uint32_t i) {
  settings_t *st = b->st;
  bnode_t *bn = &b->nodes[i];
  if (!bn->up)
    return;
  for (uint32_t k = 0; k < st->services; k++) {
    char type[32], err[128] = "";
    snprintf(type, sizeof type, "svc-%u", k);
    lm_service_spec_t sp;
    memset(&sp, 0, sizeof sp);
    sp.type = type;
    sp.name = type;
    sp.worker = -1;
    sp.port = (uint16_t)(8000 + k);
    if (k == 0)
      sp.ttl_ms = TTL_SVC_MS;
    uint8_t uuid[LM_UUID_LEN];
    int rc = lm_node_service_register(bn->node, &sp, uuid, err, sizeof err);
    if (rc)
      die("node %u: register %s: %s (%s)", i, type, lm_strerror(rc), err);
    if (k == 0) {
      memcpy(bn->ttl_uuid, uuid, LM_UUID_LEN);
      /* a TTL service starts down until its first pass */
      if ((rc = lm_node_service_pass(bn->node, uuid, NULL)) != 0)
        die("node %u: pass: %s", i, lm_strerror(rc));
    }
  }
  lm_watch_filter_t wf;
  memset(&wf, 0, sizeof wf);
  wf.type = "svc-0";
  int rc = lm_node_watch(bn->node, &wf, on_watch, bn, NULL);
  if (rc)
    die("node %u: watch: %s", i, lm_strerror(rc));
}

/* Round robin over the nodes; each node's TTL service alternates between
 * down (fail) and up (pass). */
static void do_flip(bench_t *b) {
  uint32_t i = (uint32_t)(b->nflips % b->n);
  bnode_t *bn = &b->nodes[i];
  if (b->nflips == b->capflips) {
    size_t cap = b->capflips ? b->capflips * 2 : 256;
    flip_t *v = realloc(b->flips, cap * sizeof *v);
    if (!v)
      die("out of memory");
    b->flips = v;
    b->capflips = cap;
  }
  flip_t *f = &b->flips[b->nflips];
  memset(f, 0, sizeof *f);
  f->node = i;
  f->to_down = !bn->ttl_down;
  f->first_ms = f->all_ms = -1;
  f->seen_by = calloc(b->n, 1);
  if (!f->seen_by)
    die("out of memory");
  /* a flip of this node still unseen by some stays incomplete */
  b->open_flip[i] = (int32_t)b->nflips++;
  f->at_ns = uv_hrtime();
  int rc = f->to_down ? lm_node_service_fail(bn->node, bn->ttl_uuid, "flip")
                      : lm_node_service_pass(bn->node, bn->ttl_uuid, NULL);
  if (rc)
    die("node %u: flip: %s", i, lm_strerror(rc));
  bn->ttl_down = f->to_down;
  if (b->n == 1)
    b->open_flip[i] = -1; /* nobody else to see it */
}

typedef struct count_ctx {
  bench_t *b;
  uint32_t *per_host;
} count_ctx_t;

static int count_svc(void *ud, const lm_service_view_t *v) {
  count_ctx_t *c = ud;
  long h = member_index(c->b, v->svc->host ? v->svc->host : "");
  if (h >= 0)
    c->per_host[h]++;
  return 0;
}

/* Msgpack bytes of a LIST message around a list of `len` bytes
 * (services.c: [83, 2, bin]). */
static size_t list_msg_len(size_t len) {
  size_t hdr = len < 256 ? 2 : len < 65536 ? 3 : 5;
  return 3 + hdr + len;
}

/* At the end: did every node get every other node's whole list, and how
 * big is each signed list against the largest datagram payload. */
static void svc_final_check(bench_t *b) {
  uint32_t *per_host = calloc(b->n, sizeof *per_host);
  if (!per_host)
    die("out of memory");
  b->svc_list_min = SIZE_MAX;
  for (uint32_t i = 0; i < b->n; i++) {
    bnode_t *bn = &b->nodes[i];
    if (!bn->up)
      continue;
    memset(per_host, 0, b->n * sizeof *per_host);
    count_ctx_t c = {b, per_host};
    if (lm_node_services_each(bn->node, NULL, count_svc, &c) < 0)
      continue;
    for (uint32_t j = 0; j < b->n; j++) {
      b->svc_total_seen += per_host[j];
      if (j != i && per_host[j] == b->st->services)
        b->svc_complete_pairs++;
    }
    /* this node's own signed list, as the store holds it to relay */
    lm_store_t *store = lm__svc_store(bn->node);
    lm_store_member_t me;
    const uint8_t *raw;
    size_t len;
    uint64_t seq;
    char name[LM_NAME_MAX + 1];
    snprintf(name, sizeof name, NAME_PREFIX "%u", i);
    if (store && lm_store_member_find_name(store, name, &me) == 0 &&
        lm_store_services_raw(store, me.id, &raw, &len, &seq) == 0) {
      if (len < b->svc_list_min)
        b->svc_list_min = len;
      if (len > b->svc_list_max)
        b->svc_list_max = len;
      b->max_datagram = lm__node_max_datagram(bn->node);
      if (list_msg_len(len) > b->max_datagram)
        b->svc_lists_over_datagram++;
    }
  }
  if (b->svc_list_min == SIZE_MAX)
    b->svc_list_min = 0;
  free(per_host);
}

static void do_join(bench_t *b, uint32_t i) {
  if (i == 0)
    return; /* the first seed is the one everybody else finds */
  uint32_t seeds = b->n < JOIN_SEEDS ? b->n : JOIN_SEEDS;
  /* the other seeds join node 0; everyone else spreads over the seeds */
  uint32_t s = i < seeds ? 0 : i % seeds;
  const char *seed = b->nodes[s].addr;
  int rc = lm_node_join(b->nodes[i].node, &seed, 1);
  if (rc)
    die("node %u: join: %s", i, lm_strerror(rc));
}

static void do_kills(bench_t *b, uint64_t now) {
  b->killed_done = 1;
  for (uint32_t k = 0; k < b->nvictims; k++) {
    victim_t *v = &b->victims[k];
    bnode_t *bn = &b->nodes[v->node];
    v->killed_at = now;
    /* no leave: to the others this is a crash */
    bn->up = 0;
    lm_node_close(bn->node, on_closed, b);
    bn->node = NULL;
  }
}

static void finish(bench_t *b, uint64_t now) {
  b->end_ms = now;
  window_end(b, now);
  if (b->flipping) {
    b->flip_end_ms = now;
    snapshot(b, &b->t_flip1);
  }
  if (b->svc_registered)
    svc_final_check(b);
  /* A survivor that still lists a victim alive or suspect: not detected. */
  b->alive_view_min = SIZE_MAX;
  for (uint32_t i = 0; i < b->n; i++) {
    bnode_t *bn = &b->nodes[i];
    if (!bn->up)
      continue;
    size_t ac = 0;
    if (lm_node_alive_count(bn->node, &ac) == 0) {
      if (ac < b->alive_view_min)
        b->alive_view_min = ac;
      if (ac > b->alive_view_max)
        b->alive_view_max = ac;
    }
  }
  if (b->alive_view_min == SIZE_MAX)
    b->alive_view_min = 0;
  uint8_t *open = calloc(b->nvictims + 1, 1);
  if (!open)
    die("out of memory");
  for (uint32_t i = 0; i < b->n && b->killed_done; i++) {
    bnode_t *bn = &b->nodes[i];
    if (!bn->up)
      continue;
    lm_member_t *ms;
    size_t cnt;
    if (lm_node_members(bn->node, &ms, &cnt) != 0)
      continue;
    for (size_t j = 0; j < cnt; j++) {
      long t = member_index(b, ms[j].name);
      if (t < 0 || b->victim_of[t] < 0)
        continue;
      if (ms[j].status == LM_ALIVE || ms[j].status == LM_SUSPECT)
        open[b->victim_of[t]] = 1;
    }
    free(ms);
  }
  for (uint32_t k = 0; k < b->nvictims; k++)
    b->undetected += open[k];
  free(open);
  /* drops by reason over the survivors, for the report */
  b->drops = json_object();
  for (uint32_t i = 0; i < b->n; i++) {
    if (!b->nodes[i].up)
      continue;
    lm_stats_t s;
    if (lm_node_stats(b->nodes[i].node, &s) != 0)
      continue;
    if (s.local_health > b->max_health)
      b->max_health = s.local_health;
    for (size_t j = 0; j < s.ndropped; j++) {
      json_t *cur = json_object_get(b->drops, s.dropped[j].reason);
      json_int_t v = cur ? json_integer_value(cur) : 0;
      json_object_set_new(b->drops, s.dropped[j].reason,
                          json_integer(v + (json_int_t)s.dropped[j].count));
    }
  }
  /* Close everything; the loop ends when the last handle is gone. */
  b->finishing = 1;
  for (uint32_t i = 0; i < b->n; i++) {
    bnode_t *bn = &b->nodes[i];
    if (!bn->up)
      continue;
    bn->up = 0;
    lm_node_close(bn->node, on_closed, b);
    bn->node = NULL;
  }
  uv_close((uv_handle_t *)&b->tick, NULL);
}

static int all_converged(bench_t *b) {
  for (uint32_t i = 0; i < b->n; i++) {
    size_t c = 0;
    if (b->nodes[i].up &&
        (lm_node_alive_count(b->nodes[i].node, &c) != 0 || c != b->n))
      return 0;
  }
  return 1;
}

static void note_lag(bench_t *b, uint64_t now) {
  if (b->last_tick_ms) {
    uint64_t gap = now - b->last_tick_ms;
    int64_t lag = gap > TICK_MS ? (int64_t)(gap - TICK_MS) : 0;
    if (b->nlags == b->caplags) {
      size_t cap = b->caplags ? b->caplags * 2 : 1024;
      int64_t *v = realloc(b->lags, cap * sizeof *v);
      if (!v)
        die("out of memory");
      b->lags = v;
      b->caplags = cap;
    }
    b->lags[b->nlags++] = lag;
    if (b->win_started && !b->win_ended && lag > b->win_lag_max)
      b->win_lag_max = lag;
  }
  b->last_tick_ms = now;
}

static void progress(bench_t *b, uint64_t now) {
  size_t lo = SIZE_MAX, hi = 0;
  for (uint32_t i = 0; i < b->n; i++) {
    size_t c;
    if (!b->nodes[i].up || lm_node_alive_count(b->nodes[i].node, &c) != 0)
      continue;
    lo = c < lo ? c : lo;
    hi = c > hi ? c : hi;
  }
  /* traffic since the previous line, to see the dissemination tail end */
  traffic_t t;
  snapshot(b, &t);
  double secs = (double)(now - b->prog_at) / 1000.0;
  uint32_t up = 0;
  for (uint32_t i = 0; i < b->n; i++)
    up += b->nodes[i].up;
  double bps = secs > 0 && up && t.udp_bytes >= b->prog.udp_bytes
                   ? (double)(t.udp_bytes - b->prog.udp_bytes) / secs / up
                   : 0;
  fprintf(stderr,
          "%9.3f progress: alive views %zu..%zu of %u, %llu suspect and %llu "
          "dead events so far, %.0f B/s UDP out per node, last tick %lld ms "
          "late\n",
          (double)now / 1000.0, lo == SIZE_MAX ? 0 : lo, hi, b->n,
          (unsigned long long)b->all_suspect_events,
          (unsigned long long)b->all_dead_events, bps,
          b->nlags ? (long long)b->lags[b->nlags - 1] : 0LL);
  b->prog = t;
  b->prog_at = now;
}

static void on_tick(uv_timer_t *t) {
  bench_t *b = t->data;
  settings_t *st = b->st;
  uint64_t now = rel_ms(b);
  note_lag(b, now);
  if (st->verbose && now >= b->next_progress_ms) {
    progress(b, now);
    b->next_progress_ms = now + 1000;
  }
  while (b->next_join < b->n &&
         (uint64_t)b->next_join * st->stagger_ms <= now)
    do_join(b, b->next_join++);
  if (b->converge_ms < 0 && b->next_join == b->n && !b->killed_done &&
      all_converged(b)) {
    b->converge_ms = (int64_t)now;
    b->count_from_ms = (int64_t)now;
    if (!st->json)
      fprintf(stderr, "livemesh-bench: converged after %llu ms\n",
              (unsigned long long)now);
  }
  /* Without convergence by half the run, measure anyway so the run still
   * reports something (converge_ms stays null). */
  if (!b->win_started) {
    uint64_t at = b->converge_ms >= 0 ? (uint64_t)b->converge_ms + st->warmup_ms
                                      : st->seconds_ms / 2;
    /* with --services, never before every node has registered */
    if (now >= at && (!st->services || b->converge_ms < 0 ||
                      b->next_reg == b->n)) {
      if (b->count_from_ms < 0)
        b->count_from_ms = (int64_t)now;
      window_start(b, now);
    }
  }
  /* --services: register once the mesh has converged (or when the window
   * starts without it); after QUIET_MS of steady window, which is what the
   * steady figures cover, flip one status every --flip-ms until
   * FLIP_DRAIN_MS before the end. */
  /* Nodes register one every --join-stagger-ms, as they joined: each
   * registration is one new alive record and one list for every other
   * node to verify, and on one thread 128 at once starve the probes
   * (docs/benchmarks.md, "Services"). */
  if (st->services && !b->svc_registered &&
      (b->converge_ms >= 0 || b->win_started)) {
    b->svc_registered = 1;
    b->svc_reg_ms = now;
    snapshot(b, &b->t_reg);
  }
  while (b->svc_registered && b->next_reg < b->n &&
         b->svc_reg_ms + (uint64_t)b->next_reg * st->stagger_ms <= now)
    register_services(b, b->next_reg++);
  if (st->services && b->win_started && !b->win_ended && !b->flipping &&
      b->next_reg == b->n &&
      now >= b->win_start_ms + QUIET_MS &&
      now + FLIP_DRAIN_MS < st->seconds_ms) {
    window_end(b, now);
    b->flipping = 1;
    b->flip_start_ms = b->next_flip_ms = now;
    snapshot(b, &b->t_flip0);
  }
  if (b->flipping && now >= b->next_flip_ms &&
      now + FLIP_DRAIN_MS < st->seconds_ms) {
    do_flip(b);
    b->next_flip_ms += st->flip_ms;
  }
  if (b->nvictims && !b->killed_done) {
    if (st->kill_at_ms >= 0) {
      b->kill_time_ms = st->kill_at_ms;
    } else if (b->win_started) {
      uint64_t k = st->seconds_ms / 2;
      if (k < b->win_start_ms + MIN_WINDOW_MS)
        k = b->win_start_ms + MIN_WINDOW_MS;
      b->kill_time_ms = (int64_t)k;
    }
    if (b->kill_time_ms >= 0 && now >= (uint64_t)b->kill_time_ms) {
      window_end(b, now);
      if (b->count_from_ms < 0)
        b->count_from_ms = (int64_t)now;
      do_kills(b, now);
      if (!st->json)
        fprintf(stderr, "livemesh-bench: crashed %u node(s) at %.1f s\n",
                b->nvictims, (double)now / 1000.0);
    }
  }
  if (now >= st->seconds_ms)
    finish(b, now);
}

/* ------------------------------------------------------------- report -- */

static double tv_ms(const struct timeval *tv) {
  return (double)tv->tv_sec * 1000.0 + (double)tv->tv_usec / 1000.0;
}

typedef struct report {
  lm_report_outcome_t outcome;
  lm_report_dist_t lag;
  double window_s;
  int have_window;
  double bytes, pkts, tcp_bytes, cpu, bytes_in;
  double avg_pkt;
  double max_rss_mib;
  lm_report_dist_t svc_all, svc_first;
  size_t svc_incomplete;
} report_t;

static void compute(bench_t *b, report_t *r) {
  memset(r, 0, sizeof *r);
  int64_t *f = calloc(b->nvictims + 1, sizeof *f);
  int64_t *a = calloc(b->nvictims + 1, sizeof *a);
  int64_t *s = calloc(b->nvictims + 1, sizeof *s);
  if (!f || !a || !s)
    die("out of memory");
  size_t nf = 0, na = 0, ns = 0;
  for (uint32_t k = 0; k < b->nvictims && b->killed_done; k++) {
    victim_t *v = &b->victims[k];
    if (v->first_dead >= 0)
      f[nf++] = v->first_dead;
    if (v->all_dead >= 0)
      a[na++] = v->all_dead;
    if (v->first_suspect >= 0)
      s[ns++] = v->first_suspect;
  }
  r->outcome.first = lm_report_dist(f, nf);
  r->outcome.all = lm_report_dist(a, na);
  r->outcome.suspect = lm_report_dist(s, ns);
  r->lag = lm_report_dist(b->lags, b->nlags);
  free(f);
  free(a);
  free(s);
  for (uint32_t i = 0; i < b->n; i++) {
    r->outcome.false_suspect += b->false_suspect[i];
    r->outcome.false_dead += b->false_dead[i];
  }
  r->outcome.undetected = b->undetected;
  r->outcome.false_suspect_events = b->false_suspect_events;
  r->outcome.false_dead_events = b->false_dead_events;
  if (b->win_started && b->win_end_ms > b->win_start_ms) {
    r->have_window = 1;
    r->window_s = (double)(b->win_end_ms - b->win_start_ms) / 1000.0;
    double ns_ = (double)b->n * r->window_s;
    r->bytes = (double)(b->t1.udp_bytes - b->t0.udp_bytes) / ns_;
    r->pkts = (double)(b->t1.udp_pkts - b->t0.udp_pkts) / ns_;
    r->bytes_in = (double)(b->t1.udp_bytes_in - b->t0.udp_bytes_in) / ns_;
    r->tcp_bytes = (double)(b->t1.tcp_bytes - b->t0.tcp_bytes) / ns_;
    double cpu = tv_ms(&b->ru1.ru_utime) - tv_ms(&b->ru0.ru_utime) +
                 tv_ms(&b->ru1.ru_stime) - tv_ms(&b->ru0.ru_stime);
    r->cpu = cpu / ns_;
    uint64_t p = b->t1.udp_pkts - b->t0.udp_pkts;
    r->avg_pkt = p ? (double)(b->t1.udp_bytes - b->t0.udp_bytes) / (double)p
                   : 0;
  }
  r->max_rss_mib = lm_report_max_rss_mib();
  if (b->nflips) {
    int64_t *all = malloc(b->nflips * sizeof *all);
    int64_t *first = malloc(b->nflips * sizeof *first);
    if (!all || !first)
      die("out of memory");
    size_t na_ = 0, nf_ = 0;
    for (size_t i = 0; i < b->nflips; i++) {
      if (b->flips[i].all_ms >= 0)
        all[na_++] = b->flips[i].all_ms;
      else
        r->svc_incomplete++;
      if (b->flips[i].first_ms >= 0)
        first[nf_++] = b->flips[i].first_ms;
    }
    r->svc_all = lm_report_dist(all, na_);
    r->svc_first = lm_report_dist(first, nf_);
    free(all);
    free(first);
  }
}

static json_t *svc_lists_json(const traffic_t *from, const traffic_t *to) {
  return json_pack("{s:I,s:I,s:I,s:I}", "lists_sent",
                   (json_int_t)(to->lists_sent - from->lists_sent),
                   "lists_received",
                   (json_int_t)(to->lists_received - from->lists_received),
                   "requests_sent",
                   (json_int_t)(to->list_requests - from->list_requests),
                   "tcp_frames",
                   (json_int_t)(to->tcp_frames - from->tcp_frames));
}

/* The --services fields (docs/benchmarks.md, "Services"). */
static void svc_json(bench_t *b, const report_t *r, json_t *o) {
  settings_t *st = b->st;
  json_object_set_new(o, "services", json_integer(st->services));
  json_object_set_new(o, "flip_ms", json_integer(st->flip_ms));
  json_object_set_new(o, "svc_change_all_ms", lm_report_dist_json(&r->svc_all, 1));
  json_object_set_new(o, "svc_change_first_ms",
                      lm_report_dist_json(&r->svc_first, 1));
  json_object_set_new(o, "svc_flips", json_integer((json_int_t)b->nflips));
  json_object_set_new(o, "svc_change_incomplete",
                      json_integer((json_int_t)r->svc_incomplete));
  json_object_set_new(o, "svc_registered_at_ms",
                      b->svc_registered ? json_integer((json_int_t)b->svc_reg_ms)
                                        : json_null());
  json_object_set_new(o, "svc_lists_complete",
                      json_integer((json_int_t)b->svc_complete_pairs));
  json_object_set_new(o, "svc_lists_expected",
                      json_integer((json_int_t)b->n * (b->n - 1)));
  json_object_set_new(o, "svc_view_total",
                      json_integer((json_int_t)b->svc_total_seen));
  json_object_set_new(o, "svc_list_bytes",
                      json_pack("{s:I,s:I}", "min", (json_int_t)b->svc_list_min,
                                "max", (json_int_t)b->svc_list_max));
  json_object_set_new(o, "max_datagram_payload",
                      json_integer((json_int_t)b->max_datagram));
  json_object_set_new(o, "svc_lists_over_datagram",
                      json_integer(b->svc_lists_over_datagram));
  /* list traffic, summed over the nodes, phase by phase */
  json_t *ph = json_object();
  if (b->svc_registered && b->win_started)
    json_object_set_new(ph, "register", svc_lists_json(&b->t_reg, &b->t0));
  if (b->win_started && b->win_ended)
    json_object_set_new(ph, "quiet", svc_lists_json(&b->t0, &b->t1));
  if (b->flipping) {
    json_t *fw = svc_lists_json(&b->t_flip0, &b->t_flip1);
    double secs = (double)(b->flip_end_ms - b->flip_start_ms) / 1000.0;
    double ns_ = secs * (double)b->n;
    json_object_set_new(fw, "start_ms", json_integer((json_int_t)b->flip_start_ms));
    json_object_set_new(fw, "end_ms", json_integer((json_int_t)b->flip_end_ms));
    if (ns_ > 0) {
      json_object_set_new(
          fw, "bytes_per_node_s",
          lm_report_real3((double)(b->t_flip1.udp_bytes - b->t_flip0.udp_bytes) / ns_));
      json_object_set_new(
          fw, "pkts_per_node_s",
          lm_report_real3((double)(b->t_flip1.udp_pkts - b->t_flip0.udp_pkts) / ns_));
      json_object_set_new(
          fw, "tcp_bytes_per_node_s",
          lm_report_real3((double)(b->t_flip1.tcp_bytes - b->t_flip0.tcp_bytes) / ns_));
    }
    json_object_set_new(ph, "flips", fw);
  }
  json_object_set_new(o, "svc_phases", ph);
}

static json_t *num_or_null(int ok, double v) {
  return ok ? lm_report_real3(v) : json_null();
}

static void print_json(bench_t *b, const report_t *r, double wall) {
  settings_t *st = b->st;
  json_t *o = json_object();
  json_object_set_new(o, "n", json_integer(b->n));
  json_object_set_new(o, "seed", json_integer((json_int_t)st->seed));
  json_object_set_new(o, "wall_s", lm_report_real3(wall));
  json_object_set_new(o, "converge_ms", lm_report_ms_or_null(b->converge_ms));
  json_object_set_new(o, "killed", json_integer(b->killed_done ? b->nvictims : 0));
  json_object_set_new(o, "kill_at_ms",
                      b->killed_done ? json_integer((json_int_t)b->victims[0].killed_at)
                                     : json_null());
  /* with "n": over how many killed nodes each figure is */
  lm_report_outcome_json(o, &r->outcome, 1);
  json_object_set_new(o, "join_suspect_events",
                      json_integer((json_int_t)b->suspect_events_before));
  json_object_set_new(o, "bytes_per_node_s", num_or_null(r->have_window, r->bytes));
  json_object_set_new(o, "pkts_per_node_s", num_or_null(r->have_window, r->pkts));
  json_object_set_new(o, "tcp_bytes_per_node_s",
                      num_or_null(r->have_window, r->tcp_bytes));
  json_object_set_new(o, "udp_bytes_in_per_node_s",
                      num_or_null(r->have_window, r->bytes_in));
  json_object_set_new(o, "avg_pkt_bytes", num_or_null(r->have_window, r->avg_pkt));
  json_object_set_new(o, "cpu_ms_per_node_s", num_or_null(r->have_window, r->cpu));
  json_object_set_new(o, "max_rss_mib", lm_report_real3(r->max_rss_mib));
  json_object_set_new(o, "window_rss_mib",
                      r->have_window && b->win_rss_mib >= 0
                          ? lm_report_real3(b->win_rss_mib)
                          : json_null());
  json_object_set_new(o, "window_heap_mib",
                      r->have_window ? lm_report_real3(b->win_heap_mib)
                                     : json_null());
  json_object_set_new(o, "join_stagger_ms", json_integer(st->stagger_ms));
  json_object_set_new(
      o, "window",
      r->have_window
          ? json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "start_ms",
                      (json_int_t)b->win_start_ms, "end_ms",
                      (json_int_t)b->win_end_ms, "probes",
                      (json_int_t)(b->t1.probes - b->t0.probes), "probes_failed",
                      (json_int_t)(b->t1.probes_failed - b->t0.probes_failed),
                      "suspicions",
                      (json_int_t)(b->t1.suspicions - b->t0.suspicions),
                      "refutes", (json_int_t)(b->t1.refutes - b->t0.refutes),
                      "send_errors",
                      (json_int_t)(b->t1.send_errors - b->t0.send_errors))
          : json_null());
  json_object_set_new(o, "alive_view",
                      json_pack("{s:I,s:I}", "min", (json_int_t)b->alive_view_min,
                                "max", (json_int_t)b->alive_view_max));
  json_object_set_new(o, "max_local_health", json_integer(b->max_health));
  json_object_set_new(o, "loop_lag_ms", lm_report_dist_json(&r->lag, 1));
  json_object_set_new(o, "window_loop_lag_max_ms",
                      r->have_window ? json_integer(b->win_lag_max) : json_null());
  json_object_set_new(o, "loss", json_real(st->loss));
  json_object_set_new(o, "probe_interval_ms",
                      json_integer(st->probe_ms ? st->probe_ms : SWIM_DEFAULT_PROBE_INTERVAL_MS));
  json_object_set_new(o, "probe_timeout_ms",
                      json_integer(st->probe_timeout_ms ? st->probe_timeout_ms : SWIM_DEFAULT_PROBE_TIMEOUT_MS));
  json_object_set_new(o, "indirect",
                      json_integer(st->indirect_set ? st->indirect : SWIM_DEFAULT_INDIRECT_CHECKS));
  json_object_set_new(o, "drops", json_incref(b->drops));
  json_object_set_new(o, "start_retries", json_integer(b->start_retries));
  if (st->services)
    svc_json(b, r, o);
  lm_report_json_print(PROG, o);
}

static void print_dist(const char *what, const lm_report_dist_t *d) {
  if (!d->n)
    printf("  %-13s none\n", what);
  else
    printf("  %-13s p50 %lld ms, p99 %lld ms, max %lld ms (%zu node%s)\n",
           what, (long long)d->p50, (long long)d->p99, (long long)d->max, d->n,
           d->n == 1 ? "" : "s");
}

static void print_text(bench_t *b, const report_t *r, double wall) {
  settings_t *st = b->st;
  printf("livemesh-bench: %u nodes, seed %llu, %.1f s wall, loss %.2f, probe "
         "%u/%u ms, %u indirect\n",
         b->n, (unsigned long long)st->seed, wall, st->loss,
         st->probe_ms ? st->probe_ms : SWIM_DEFAULT_PROBE_INTERVAL_MS,
         st->probe_timeout_ms ? st->probe_timeout_ms : SWIM_DEFAULT_PROBE_TIMEOUT_MS,
         st->indirect_set ? st->indirect : SWIM_DEFAULT_INDIRECT_CHECKS);
  if (b->converge_ms >= 0)
    printf("converged after %lld ms\n", (long long)b->converge_ms);
  else
    printf("did not converge (views: %zu..%zu alive of %u)\n",
           b->alive_view_min, b->alive_view_max, b->n);
  if (r->have_window)
    printf("steady state over %.1f s: %.1f B/s and %.2f pkt/s UDP out per node "
           "(%.0f B per packet), %.1f B/s TCP, CPU %.3f ms per node-second\n",
           r->window_s, r->bytes, r->pkts, r->avg_pkt, r->tcp_bytes, r->cpu);
  if (b->killed_done) {
    printf("crashed %u at %.1f s; undetected at the end: %u\n", b->nvictims,
           (double)b->victims[0].killed_at / 1000.0, r->outcome.undetected);
    print_dist("first SUSPECT", &r->outcome.suspect);
    print_dist("first DEAD", &r->outcome.first);
    print_dist("all DEAD", &r->outcome.all);
  } else if (st->kill) {
    printf("no crash: the run ended before the kill time\n");
  }
  printf("false positives: %u healthy nodes suspected (%llu events), %u "
         "declared dead (%llu events)\n",
         r->outcome.false_suspect,
         (unsigned long long)r->outcome.false_suspect_events,
         r->outcome.false_dead,
         (unsigned long long)r->outcome.false_dead_events);
  if (r->lag.n)
    printf("driver timer lateness: p50 %lld ms, p99 %lld ms, max %lld ms\n",
           (long long)r->lag.p50, (long long)r->lag.p99, (long long)r->lag.max);
  if (st->services) {
    printf("services: %u per node; %zu flips, every other node saw the change "
           "in p50 %lld ms, p99 %lld ms, max %lld ms (%zu flips; %zu "
           "incomplete)\n",
           st->services, b->nflips, (long long)r->svc_all.p50,
           (long long)r->svc_all.p99, (long long)r->svc_all.max, r->svc_all.n,
           r->svc_incomplete);
    printf("services: %llu of %llu (observer, member) pairs hold the whole "
           "list; lists %zu..%zu bytes, %u over the datagram limit of %zu\n",
           (unsigned long long)b->svc_complete_pairs,
           (unsigned long long)b->n * (b->n - 1), b->svc_list_min,
           b->svc_list_max, b->svc_lists_over_datagram, b->max_datagram);
  }
  printf("max RSS %.1f MiB", r->max_rss_mib);
  if (r->have_window && b->win_rss_mib >= 0)
    printf(" (%.1f MiB at the end of the steady window)", b->win_rss_mib);
  printf("\n");
}

/* --------------------------------------------------------------- main -- */

/* Each node holds a UDP socket, a TCP listener and short-lived streams:
 * hundreds of nodes outgrow a soft limit of 1024 descriptors. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  settings_t st = {.nodes = 32, .seconds_ms = 60000, .kill_at_ms = -1,
                   .warmup_ms = 5000, .stagger_ms = UINT32_MAX,
                   .flip_ms = DEFAULT_FLIP_MS};
  parse_args(argc, argv, &st);
  if (!st.seed_set)
    st.seed = lm_report_clock_seed();
  if (st.lookup) {
    lm_bench_lookup_opts_t lo = {.members = st.members_set ? st.members : 10000,
                                 .services = st.services,
                                 .lookups = st.lookups ? st.lookups : 1048576,
                                 .seed = st.seed,
                                 .socket = st.socket,
                                 .http = st.http,
                                 .client_calls = 20000,
                                 .json = st.json};
    return lm_bench_lookup(&lo);
  }
  /* Every join makes every node verify one more record (certificate and
   * record: two Ed25519 checks) and the joiner verify all of them. On one
   * thread, joining faster than that work drains starves the probes and
   * turns into a storm of false suspicions before the mesh has even formed;
   * 100 ms apart keeps 128 nodes clear of it on a slow core. */
  if (st.stagger_ms == UINT32_MAX)
    st.stagger_ms = st.nodes > 250 ? 25000 / st.nodes : 100;
  if (!st.json)
    fprintf(stderr, "livemesh-bench: seed %llu\n", (unsigned long long)st.seed);
  raise_nofile();
  uint64_t wall0 = uv_hrtime();

  bench_t b;
  memset(&b, 0, sizeof b);
  b.st = &st;
  b.n = st.nodes;
  b.converge_ms = -1;
  b.count_from_ms = -1;
  b.kill_time_ms = -1;
  b.nodes = calloc(b.n, sizeof *b.nodes);
  b.victim_of = malloc(b.n * sizeof *b.victim_of);
  b.false_suspect = calloc(b.n, 1);
  b.false_dead = calloc(b.n, 1);
  b.victims = calloc(st.kill + 1, sizeof *b.victims);
  b.open_flip = malloc(b.n * sizeof *b.open_flip);
  if (!b.nodes || !b.victim_of || !b.false_suspect || !b.false_dead ||
      !b.victims || !b.open_flip)
    die("out of memory");
  for (uint32_t i = 0; i < b.n; i++)
    b.open_flip[i] = -1;

  /* The seed picks the victims up front: a node that will crash is never
   * counted as a false positive, even before its crash. */
  for (uint32_t i = 0; i < b.n; i++)
    b.victim_of[i] = -1;
  {
    uint64_t s = st.seed;
    uint32_t *perm = malloc(b.n * sizeof *perm);
    if (!perm)
      die("out of memory");
    for (uint32_t i = 0; i < b.n; i++)
      perm[i] = i;
    for (uint32_t k = 0; k < st.kill; k++) {
      /* partial Fisher-Yates over 1..n-1: node 0 is the first seed */
      uint32_t j = 1 + k + (uint32_t)(splitmix64(&s) % (b.n - 1 - k));
      uint32_t tmp = perm[1 + k];
      perm[1 + k] = perm[j];
      perm[j] = tmp;
      victim_t *v = &b.victims[k];
      v->node = perm[1 + k];
      v->first_suspect = v->first_dead = v->all_dead = -1;
      v->dead_by = calloc(b.n, 1);
      if (!v->dead_by)
        die("out of memory");
      b.victim_of[v->node] = (int32_t)k;
    }
    b.nvictims = st.kill;
    free(perm);
  }

  int rc = uv_loop_init(&b.loop);
  if (rc)
    die("uv_loop_init: %s", uv_strerror(rc));

  uint8_t cpk[LM_PUBLICKEY_BYTES], csk[LM_SECRETKEY_BYTES];
  if ((rc = lm_cluster_keygen(cpk, csk)) != 0)
    die("cluster key: %s", lm_strerror(rc));
  const uint8_t(*trusted)[LM_PUBLICKEY_BYTES] = &cpk;

  b.t0_ns = uv_hrtime();
  for (uint32_t i = 0; i < b.n; i++) {
    bnode_t *bn = &b.nodes[i];
    bn->b = &b;
    bn->idx = i;
    char name[LM_NAME_MAX + 1];
    snprintf(name, sizeof name, NAME_PREFIX "%u", i);
    lm_identity_t id;
    if ((rc = lm_identity_issue(&id, name, csk, 86400)) != 0)
      die("node %u: identity: %s", i, lm_strerror(rc));
    lm_options_t o = {.name = name,
                      .bind = "127.0.0.1:0",
                      .cluster = "bench",
                      .identity = &id,
                      .trusted = trusted,
                      .ntrusted = 1,
                      .probe_interval_ms = st.probe_ms,
                      .probe_timeout_ms = st.probe_timeout_ms,
                      .indirect_checks = st.indirect,
                      .on_event = on_event,
                      .event_ud = bn,
                      .log = st.verbose ? on_log : NULL,
                      .log_ud = &b,
                      .log_level = st.verbose > 1 ? LM_LOG_DEBUG : LM_LOG_INFO,
                      .test_drop_inbound = st.loss,
                      .share_records_with = i ? b.nodes[0].node : NULL};
    rc = lm_node_new(&bn->node, &b.loop, &o);
    lm_identity_wipe(&id);
    if (rc)
      die("node %u: %s", i, lm_strerror(rc));
  }
  explicit_bzero(csk, sizeof csk); /* nothing else is issued */
  /* All nodes are created before any starts: a core uses the shared record
   * cache only if it exists when that core starts, and node 1's creation
   * is what makes it, so node 0 shares too. */
  for (uint32_t i = 0; i < b.n; i++) {
    bnode_t *bn = &b.nodes[i];
    /* With port 0 the runtime binds UDP first and then TCP on the port UDP
     * got; that TCP port may already be taken (by an outbound connection
     * of anything on the host), and the start fails with EADDRINUSE. A
     * failed start leaves the node new, so try again: UDP picks a fresh
     * port each time. */
    for (int attempt = 0;; attempt++) {
      rc = lm_node_start(bn->node);
      if (rc != UV_EADDRINUSE || attempt == 20)
        break;
      b.start_retries++;
    }
    if (rc)
      die("node %u: start: %s", i, lm_strerror(rc));
    if ((rc = lm_node_bound_addr(bn->node, bn->addr, sizeof bn->addr)) != 0)
      die("node %u: bound address: %s", i, lm_strerror(rc));
    bn->up = 1;
    b.open_nodes++;
  }

  /* The clock starts once every node is up: identity issuing is not part of
   * the protocol's convergence. */
  b.t0_ns = uv_hrtime();
  uv_timer_init(&b.loop, &b.tick);
  b.tick.data = &b;
  uv_timer_start(&b.tick, on_tick, 0, TICK_MS);
  uv_run(&b.loop, UV_RUN_DEFAULT);

  report_t r;
  compute(&b, &r);
  double wall = (double)(uv_hrtime() - wall0) / 1e9;
  if (st.json)
    print_json(&b, &r, wall);
  else
    print_text(&b, &r, wall);
  fflush(stdout);

  if (st.kill && !b.killed_done)
    fprintf(stderr, "livemesh-bench: no node was crashed: the kill time came "
            "after the end of the run (give --seconds more or --kill-at)\n");
  int exit_code = 0;
  if (b.open_nodes != 0) {
    fprintf(stderr, "livemesh-bench: %u node(s) did not close\n", b.open_nodes);
    exit_code = 1;
  }
  if ((rc = uv_loop_close(&b.loop)) != 0) {
    fprintf(stderr, "livemesh-bench: the loop still has handles: %s\n",
            uv_strerror(rc));
    exit_code = 1;
  }
  json_decref(b.drops);
  for (uint32_t k = 0; k < b.nvictims; k++)
    free(b.victims[k].dead_by);
  free(b.victims);
  for (size_t i = 0; i < b.nflips; i++)
    free(b.flips[i].seen_by);
  free(b.flips);
  free(b.open_flip);
  free(b.lags);
  free(b.victim_of);
  free(b.false_suspect);
  free(b.false_dead);
  free(b.nodes);
  return exit_code;
}
