/*
 * main.c: livemesh-sim, the command-line front end of the simulator.
 *
 * Turns flags and an optional scenario file into a timeline of actions
 * (kills, partitions, pauses, restarts, loss changes), drives lm_simnet
 * through it and reports what the mesh did: convergence, detection times,
 * false positives, traffic, dissemination. The only nondeterministic things
 * here are wall_s and max_rss_mib, which --deterministic leaves out so the
 * same seed prints the same bytes.
 *
 * Must never depend on: libuv, mesh/, store/, bridge/. It reads a real clock
 * only to report wall time.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "simnet.h"

#define PROG "livemesh-sim"
#define AUTO_BOOTSTRAP_ABOVE 2000
#define POLL_MS 100

/* ------------------------------------------------------------- actions -- */

typedef enum act_kind {
  A_KILL,      /* count or node: crash for good */
  A_RESTART,   /* count or node: crash now, restart after dur */
  A_PAUSE,     /* count or node: pause for dur */
  A_LEAVE,     /* count or node */
  A_PARTITION, /* fraction, dur (0: until heal) */
  A_ONEWAY,    /* fraction, dur */
  A_HEAL,
  A_LOSS,      /* p */
  A_LATENCY,   /* a..b ms */
  A_DROP,      /* node [node2] p */
  A_BLOCK,     /* node -> node2 */
  A_UNBLOCK,
  A_META,      /* node */
  A_STEADY_BEGIN, /* steady-state traffic window, after convergence */
  A_STEADY_END,
  /* follow-ups scheduled by the ones above */
  A_RESUME_NODE,
  A_RESTART_NODE,
  A_FLAP,      /* fraction, dur, down, up: one split, cut and mended in turn */
  A_FLAP_CUT,
  A_FLAP_MEND,
  A_DEAF,      /* count, p, dur: COUNT random nodes lose P of what they get */
  A_DEAF_END   /* node */
} act_kind_t;

typedef struct action {
  uint64_t at;    /* ms after start */
  uint64_t order; /* ties keep file order */
  act_kind_t kind;
  int32_t node;   /* -1: pick `count` random nodes */
  int32_t node2;
  uint32_t count;
  double x, y;
  uint64_t dur;
  uint64_t down, up; /* A_FLAP */
  const char *origin; /* "flag" or "file:line" for messages */
} action_t;

typedef struct timeline {
  action_t *v;
  size_t n, cap;
  uint64_t order;
} timeline_t;

#define die(...) lm_report_die(PROG, __VA_ARGS__)
#define die_usage(...) lm_report_die_usage(PROG, __VA_ARGS__)

static action_t *tl_add(timeline_t *t, uint64_t at, act_kind_t kind) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 32;
    action_t *v = realloc(t->v, cap * sizeof *v);
    if (!v)
      die("out of memory");
    t->v = v;
    t->cap = cap;
  }
  action_t *a = &t->v[t->n++];
  memset(a, 0, sizeof *a);
  a->at = at;
  a->kind = kind;
  a->node = -1;
  a->node2 = -1;
  a->order = t->order++;
  a->origin = "flag";
  return a;
}

/* The earliest pending action, or -1. A linear scan: timelines hold tens
 * of entries, a few thousand at most (one resume per paused node). */
static ssize_t tl_next(const timeline_t *t) {
  ssize_t best = -1;
  for (size_t i = 0; i < t->n; i++) {
    const action_t *a = &t->v[i];
    if (best < 0 || a->at < t->v[best].at ||
        (a->at == t->v[best].at && a->order < t->v[best].order))
      best = (ssize_t)i;
  }
  return best;
}

static action_t tl_take(timeline_t *t, size_t i) {
  action_t a = t->v[i];
  t->v[i] = t->v[--t->n];
  return a;
}

/* -------------------------------------------------------------- parsing -- */

/* Splits "a:b:c" into at most `max` fields in place; returns the count. */
static int split_colon(char *s, char **f, int max) {
  int n = 0;
  f[n++] = s;
  for (char *p = s; *p; p++) {
    if (*p == ':') {
      if (n == max)
        return max + 1;
      *p = '\0';
      f[n++] = p + 1;
    }
  }
  return n;
}

/* ------------------------------------------------------------ settings -- */

typedef struct settings {
  uint32_t nodes;
  uint64_t seconds_ms;
  uint64_t seed;
  int seed_set;
  uint32_t kill;
  int64_t kill_at; /* ms after start, -1: 10 s after convergence */
  double loss;
  uint32_t probe_ms, probe_timeout_ms, indirect;
  int probe_set, timeout_set, indirect_set;
  int64_t gossip_ms, pushpull_ms, reconnect_ms; /* -1: the core's default */
  int no_streams;
  uint32_t lat_min, lat_max;
  int mode; /* -1 auto, 0 join, 1 bootstrap */
  uint32_t seeds;
  uint32_t envelope;
  const char *scenario;
  int json;
  int deterministic;
  int verbose;
  timeline_t tl;
} settings_t;

static void usage(FILE *f) {
  fputs(
      "usage: livemesh-sim [options]\n"
      "  --nodes N              nodes to simulate (default 100)\n"
      "  --seconds S            simulated seconds after start (default 60)\n"
      "  --seed X               seed (default: from the clock; always printed)\n"
      "  --kill K               crash K random nodes (never node 0)\n"
      "  --kill-at S            when, in seconds after start (default: 10 s\n"
      "                         after convergence)\n"
      "  --loss P               datagram loss probability 0..1 (default 0)\n"
      "  --latency MIN:MAX      one-way latency in ms, uniform (default 1:5)\n"
      "  --probe-interval-ms MS --probe-timeout-ms MS --indirect K\n"
      "  --gossip-interval-ms MS --pushpull-interval-ms MS --reconnect-interval-ms MS\n"
      "                         SWIM tuning (defaults: the core's)\n"
      "  --no-streams           no reliable stream: no push-pull, joins by datagram\n"
      "  --partition AT:DUR:F   cut a fraction F of the nodes off at AT s for DUR s\n"
      "  --oneway AT:DUR:F      a fraction F cannot send to the rest, AT s for DUR s\n"
      "  --flap AT:DUR:F[:DOWN:UP] a fraction F of the nodes is cut off for DOWN s,\n"
      "                         back for UP s, in turn from AT s for DUR s (one\n"
      "                         random split throughout; default 5:5)\n"
      "  --pause AT:DUR:COUNT   pause COUNT random nodes at AT s for DUR s\n"
      "  --restart AT:COUNT[:DOWN] crash COUNT random nodes at AT s, restart them\n"
      "                         DOWN s later (default 5)\n"
      "  --deaf AT:DUR:COUNT:P  COUNT random nodes lose a fraction P of the\n"
      "                         datagrams sent to them (their own go out), AT s\n"
      "                         for DUR s; reported under \"deaf\"\n"
      "  --bootstrap | --join   start converged, or by joining through the seeds\n"
      "                         (default: join up to 2000 nodes, bootstrap above)\n"
      "  --seeds K              join mode: nodes 0..K-1 are seeds (default 1)\n"
      "  --envelope-bytes B     bytes the runtime adds per packet (default 27: the\n"
      "                         compact datagram's header and pairwise MAC)\n"
      "  --scenario FILE        timeline file (see docs/simulator.md)\n"
      "  -o json|text           output format (default text)\n"
      "  --deterministic        omit wall_s and max_rss_mib: same seed, same bytes\n"
      "  -v, --verbose          core log lines to stderr (twice: debug)\n"
      "  -h, --help\n",
      f);
}

enum {
  OPT_NODES = 256, OPT_SECONDS, OPT_SEED, OPT_KILL, OPT_KILL_AT, OPT_LOSS,
  OPT_PROBE, OPT_TIMEOUT, OPT_INDIRECT, OPT_LATENCY, OPT_PARTITION,
  OPT_ONEWAY, OPT_PAUSE, OPT_RESTART, OPT_BOOTSTRAP, OPT_JOIN, OPT_SEEDS,
  OPT_ENVELOPE, OPT_SCENARIO, OPT_DETERMINISTIC, OPT_GOSSIP, OPT_PUSHPULL,
  OPT_RECONNECT, OPT_NO_STREAMS, OPT_FLAP, OPT_DEAF
};

static void parse_window(const char *flag, const char *arg, uint64_t *at,
                         uint64_t *dur, double *third, int third_is_count) {
  char buf[256];
  if (strlen(arg) >= sizeof buf)
    die_usage("%s: value too long", flag);
  strcpy(buf, arg);
  char *f[3];
  if (split_colon(buf, f, 3) != 3)
    die_usage("%s: expected AT:DURATION:%s, got '%s'", flag,
              third_is_count ? "COUNT" : "FRACTION", arg);
  if (lm_parse_time_ms(at, f[0]) != 0)
    die_usage("%s: bad start time '%s' (seconds, or with ms/s/m)", flag, f[0]);
  if (lm_parse_time_ms(dur, f[1]) != 0 || *dur == 0)
    die_usage("%s: bad duration '%s'", flag, f[1]);
  if (third_is_count) {
    uint32_t c;
    if (lm_parse_u32(&c, f[2]) != 0 || c == 0)
      die_usage("%s: bad count '%s'", flag, f[2]);
    *third = c;
  } else if (lm_parse_fraction(third, f[2]) != 0 || *third <= 0 ||
             *third >= 1) {
    die_usage("%s: fraction must be strictly between 0 and 1, got '%s'", flag,
              f[2]);
  }
}

static void parse_latency(const char *where, const char *arg, uint32_t *lo,
                          uint32_t *hi) {
  char buf[64];
  if (strlen(arg) >= sizeof buf)
    die_usage("%s: bad latency '%s'", where, arg);
  strcpy(buf, arg);
  char *f[2];
  int n = split_colon(buf, f, 2);
  if (n == 1)
    f[1] = f[0];
  if (n > 2 || lm_parse_u32(lo, f[0]) != 0 || lm_parse_u32(hi, f[1]) != 0 ||
      *hi < *lo || *hi > 600000)
    die_usage("%s: expected latency MIN:MAX in ms with MIN <= MAX, got '%s'",
              where, arg);
}

/* ------------------------------------------------------- scenario file -- */

typedef struct tokens {
  char *v[16];
  int n;
} tokens_t;

static void file_error(const char *path, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "livemesh-sim: %s:%d: ", path, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(LM_REPORT_EXIT_USAGE);
}

static int parse_node_ref(const char *s, uint32_t nodes, int32_t *out) {
  uint32_t v;
  if (s[0] != 'n' || lm_parse_u32(&v, s + 1) != 0 || s[1] == '\0' ||
      v >= nodes)
    return -1;
  *out = (int32_t)v;
  return 0;
}

/* "nI" or a count of random nodes. */
static void parse_target(const char *path, int line, const char *s,
                         uint32_t nodes, action_t *a) {
  if (s[0] == 'n') {
    if (parse_node_ref(s, nodes, &a->node) != 0)
      file_error(path, line, "no node '%s' (nodes are n0..n%u)", s, nodes - 1);
    return;
  }
  if (lm_parse_u32(&a->count, s) != 0 || a->count == 0 || a->count >= nodes)
    file_error(path, line, "expected a node nI or a count 1..%u, got '%s'",
               nodes - 1, s);
}

static void load_scenario(settings_t *st) {
  FILE *f = fopen(st->scenario, "r");
  if (!f)
    die_usage("--scenario: cannot open '%s': %s", st->scenario, strerror(errno));
  const char *path = st->scenario;
  char line[1024];
  int ln = 0;
  while (fgets(line, sizeof line, f)) {
    ln++;
    if (!strchr(line, '\n') && !feof(f))
      file_error(path, ln, "line too long");
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    tokens_t t = {.n = 0};
    for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
      if (t.n == 16)
        file_error(path, ln, "too many words");
      t.v[t.n++] = tok;
    }
    if (t.n == 0)
      continue;
    uint64_t at;
    if (t.n < 3 || strcmp(t.v[0], "at") != 0)
      file_error(path, ln, "expected 'at TIME ACTION ...'");
    if (lm_parse_time_ms(&at, t.v[1]) != 0)
      file_error(path, ln, "bad time '%s' (e.g. 10s, 1500ms, 2m)", t.v[1]);
    const char *verb = t.v[2];
    char **arg = t.v + 3;
    int nargs = t.n - 3;
    uint32_t nodes = st->nodes;
    action_t *a;
    /* Optional trailing "for TIME" / "after TIME". */
    uint64_t dur = 0;
    int has_dur = 0;
    if (nargs >= 2 && (strcmp(arg[nargs - 2], "for") == 0 ||
                       strcmp(arg[nargs - 2], "after") == 0)) {
      if (lm_parse_time_ms(&dur, arg[nargs - 1]) != 0 || dur == 0)
        file_error(path, ln, "bad duration '%s'", arg[nargs - 1]);
      has_dur = 1;
      nargs -= 2;
    }
    if (strcmp(verb, "kill") == 0 || strcmp(verb, "crash") == 0 ||
        strcmp(verb, "leave") == 0) {
      if (nargs != 1 || has_dur)
        file_error(path, ln, "usage: %s nI|COUNT", verb);
      a = tl_add(&st->tl, at, verb[0] == 'l' ? A_LEAVE : A_KILL);
      parse_target(path, ln, arg[0], nodes, a);
    } else if (strcmp(verb, "restart") == 0) {
      if (nargs != 1)
        file_error(path, ln, "usage: restart nI|COUNT [after TIME]");
      a = tl_add(&st->tl, at, A_RESTART);
      parse_target(path, ln, arg[0], nodes, a);
      a->dur = has_dur ? dur : 5000;
    } else if (strcmp(verb, "pause") == 0) {
      if (nargs != 1 || !has_dur)
        file_error(path, ln, "usage: pause nI|COUNT for TIME");
      a = tl_add(&st->tl, at, A_PAUSE);
      parse_target(path, ln, arg[0], nodes, a);
      a->dur = dur;
    } else if (strcmp(verb, "partition") == 0 || strcmp(verb, "oneway") == 0) {
      double fr;
      if (nargs != 1 || lm_parse_fraction(&fr, arg[0]) != 0 || fr <= 0 ||
          fr >= 1)
        file_error(path, ln, "usage: %s FRACTION [for TIME], 0 < FRACTION < 1",
                   verb);
      a = tl_add(&st->tl, at, verb[0] == 'p' ? A_PARTITION : A_ONEWAY);
      a->x = fr;
      a->dur = dur;
    } else if (strcmp(verb, "heal") == 0) {
      if (nargs != 0 || has_dur)
        file_error(path, ln, "usage: heal");
      tl_add(&st->tl, at, A_HEAL);
    } else if (strcmp(verb, "loss") == 0) {
      double p;
      if (nargs != 1 || has_dur || lm_parse_fraction(&p, arg[0]) != 0)
        file_error(path, ln, "usage: loss P, 0 <= P <= 1");
      a = tl_add(&st->tl, at, A_LOSS);
      a->x = p;
    } else if (strcmp(verb, "latency") == 0) {
      if (nargs != 1 || has_dur)
        file_error(path, ln, "usage: latency MIN:MAX (ms)");
      a = tl_add(&st->tl, at, A_LATENCY);
      uint32_t lo, hi;
      char where[64];
      snprintf(where, sizeof where, "%s:%d", path, ln);
      parse_latency(where, arg[0], &lo, &hi);
      a->x = lo;
      a->y = hi;
    } else if (strcmp(verb, "drop") == 0) {
      /* drop nI P | drop nI nJ P */
      double p;
      if ((nargs != 2 && nargs != 3) || has_dur ||
          lm_parse_fraction(&p, arg[nargs - 1]) != 0)
        file_error(path, ln, "usage: drop nI [nJ] P, 0 <= P <= 1");
      a = tl_add(&st->tl, at, A_DROP);
      if (parse_node_ref(arg[0], nodes, &a->node) != 0 ||
          (nargs == 3 && parse_node_ref(arg[1], nodes, &a->node2) != 0))
        file_error(path, ln, "bad node in 'drop' (nodes are n0..n%u)", nodes - 1);
      a->x = p;
    } else if (strcmp(verb, "block") == 0 || strcmp(verb, "unblock") == 0) {
      if (nargs != 2 || has_dur)
        file_error(path, ln, "usage: %s nFROM nTO", verb);
      a = tl_add(&st->tl, at, verb[0] == 'b' ? A_BLOCK : A_UNBLOCK);
      if (parse_node_ref(arg[0], nodes, &a->node) != 0 ||
          parse_node_ref(arg[1], nodes, &a->node2) != 0)
        file_error(path, ln, "bad node in '%s' (nodes are n0..n%u)", verb,
                   nodes - 1);
    } else if (strcmp(verb, "meta") == 0) {
      if (nargs != 1 || has_dur)
        file_error(path, ln, "usage: meta nI");
      a = tl_add(&st->tl, at, A_META);
      if (parse_node_ref(arg[0], nodes, &a->node) != 0)
        file_error(path, ln, "no node '%s'", arg[0]);
    } else {
      file_error(path, ln, "unknown action '%s'", verb);
    }
  }
  if (ferror(f))
    die_usage("--scenario: cannot read '%s'", path);
  fclose(f);
}

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
      {"latency", required_argument, NULL, OPT_LATENCY},
      {"partition", required_argument, NULL, OPT_PARTITION},
      {"oneway", required_argument, NULL, OPT_ONEWAY},
      {"pause", required_argument, NULL, OPT_PAUSE},
      {"restart", required_argument, NULL, OPT_RESTART},
      {"bootstrap", no_argument, NULL, OPT_BOOTSTRAP},
      {"join", no_argument, NULL, OPT_JOIN},
      {"seeds", required_argument, NULL, OPT_SEEDS},
      {"envelope-bytes", required_argument, NULL, OPT_ENVELOPE},
      {"scenario", required_argument, NULL, OPT_SCENARIO},
      {"deterministic", no_argument, NULL, OPT_DETERMINISTIC},
      {"gossip-interval-ms", required_argument, NULL, OPT_GOSSIP},
      {"pushpull-interval-ms", required_argument, NULL, OPT_PUSHPULL},
      {"reconnect-interval-ms", required_argument, NULL, OPT_RECONNECT},
      {"no-streams", no_argument, NULL, OPT_NO_STREAMS},
      {"flap", required_argument, NULL, OPT_FLAP},
      {"deaf", required_argument, NULL, OPT_DEAF},
      {"output", required_argument, NULL, 'o'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  /* Flags that need the node count are checked after the loop. */
  const char *partition[16], *oneway[16], *pause[16], *restart[16];
  const char *flap[16], *deaf[16];
  int npart = 0, noneway = 0, npause = 0, nrestart = 0, nflap = 0, ndeaf = 0;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:vh", opts, NULL)) != -1) {
    switch (c) {
    case OPT_NODES:
      if (lm_parse_u32(&st->nodes, optarg) != 0 || st->nodes == 0 ||
          st->nodes > 1000000)
        die_usage("--nodes: expected 1..1000000, got '%s'", optarg);
      break;
    case OPT_SECONDS:
      if (lm_parse_time_ms(&st->seconds_ms, optarg) != 0 ||
          st->seconds_ms == 0)
        die_usage("--seconds: expected a positive number of seconds, got '%s'",
                  optarg);
      break;
    case OPT_SEED:
      if (lm_parse_u64(&st->seed, optarg) != 0)
        die_usage("--seed: expected an unsigned 64-bit integer, got '%s'", optarg);
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
      st->kill_at = (int64_t)ms;
      break;
    }
    case OPT_LOSS:
      if (lm_parse_fraction(&st->loss, optarg) != 0 || st->loss >= 1)
        die_usage("--loss: expected a probability 0 <= P < 1, got '%s'", optarg);
      break;
    case OPT_PROBE:
      if (lm_parse_u32(&st->probe_ms, optarg) != 0 || st->probe_ms == 0)
        die_usage("--probe-interval-ms: expected a positive integer, got '%s'",
                  optarg);
      st->probe_set = 1;
      break;
    case OPT_TIMEOUT:
      if (lm_parse_u32(&st->probe_timeout_ms, optarg) != 0 ||
          st->probe_timeout_ms == 0)
        die_usage("--probe-timeout-ms: expected a positive integer, got '%s'",
                  optarg);
      st->timeout_set = 1;
      break;
    case OPT_INDIRECT:
      if (lm_parse_u32(&st->indirect, optarg) != 0 ||
          st->indirect > SWIM_MAX_INDIRECT_CHECKS)
        die_usage("--indirect: expected 0..%d, got '%s'",
                  SWIM_MAX_INDIRECT_CHECKS, optarg);
      st->indirect_set = 1;
      break;
    case OPT_LATENCY:
      parse_latency("--latency", optarg, &st->lat_min, &st->lat_max);
      break;
    case OPT_PARTITION:
    case OPT_ONEWAY:
    case OPT_PAUSE:
    case OPT_RESTART: {
      const char **v = c == OPT_PARTITION ? partition
                       : c == OPT_ONEWAY  ? oneway
                       : c == OPT_PAUSE   ? pause
                                          : restart;
      int *n = c == OPT_PARTITION ? &npart
               : c == OPT_ONEWAY  ? &noneway
               : c == OPT_PAUSE   ? &npause
                                  : &nrestart;
      if (*n == 16)
        die_usage("--partition, --oneway, --pause and --restart may each be "
                  "given at most 16 times");
      v[(*n)++] = optarg;
      break;
    }
    case OPT_BOOTSTRAP:
      st->mode = 1;
      break;
    case OPT_JOIN:
      st->mode = 0;
      break;
    case OPT_SEEDS:
      if (lm_parse_u32(&st->seeds, optarg) != 0 || st->seeds == 0)
        die_usage("--seeds: expected a positive count, got '%s'", optarg);
      break;
    case OPT_ENVELOPE:
      if (lm_parse_u32(&st->envelope, optarg) != 0 || st->envelope > 65536)
        die_usage("--envelope-bytes: expected 0..65536, got '%s'", optarg);
      break;
    case OPT_SCENARIO:
      st->scenario = optarg;
      break;
    case OPT_DETERMINISTIC:
      st->deterministic = 1;
      break;
    case OPT_GOSSIP:
    case OPT_PUSHPULL:
    case OPT_RECONNECT: {
      uint32_t v;
      const char *name = c == OPT_GOSSIP     ? "--gossip-interval-ms"
                         : c == OPT_PUSHPULL ? "--pushpull-interval-ms"
                                             : "--reconnect-interval-ms";
      /* 0 turns gossip off; the other two timers need a period */
      if (lm_parse_u32(&v, optarg) != 0 || (v == 0 && c != OPT_GOSSIP))
        die_usage("%s: expected a%s integer, got '%s'", name,
                  c == OPT_GOSSIP ? " non-negative" : " positive", optarg);
      if (c == OPT_GOSSIP)
        st->gossip_ms = v;
      else if (c == OPT_PUSHPULL)
        st->pushpull_ms = v;
      else
        st->reconnect_ms = v;
      break;
    }
    case OPT_NO_STREAMS:
      st->no_streams = 1;
      break;
    case OPT_DEAF:
      if (ndeaf == 16)
        die_usage("--deaf may be given at most 16 times");
      deaf[ndeaf++] = optarg;
      break;
    case OPT_FLAP:
      if (nflap == 16)
        die_usage("--flap may be given at most 16 times");
      flap[nflap++] = optarg;
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
  if (st->kill >= st->nodes)
    die_usage("--kill: %u is not below --nodes %u (node 0 never dies)",
              st->kill, st->nodes);
  if (st->seeds > st->nodes)
    die_usage("--seeds: %u is more than --nodes %u", st->seeds, st->nodes);
  for (int i = 0; i < npart + noneway; i++) {
    int one = i >= npart;
    const char *arg = one ? oneway[i - npart] : partition[i];
    uint64_t at, dur;
    double fr;
    parse_window(one ? "--oneway" : "--partition", arg, &at, &dur, &fr, 0);
    action_t *a = tl_add(&st->tl, at, one ? A_ONEWAY : A_PARTITION);
    a->x = fr;
    a->dur = dur;
  }
  for (int i = 0; i < nflap; i++) {
    char buf[256];
    char *f[5];
    if (strlen(flap[i]) >= sizeof buf)
      die_usage("--flap: value too long");
    strcpy(buf, flap[i]);
    int n = split_colon(buf, f, 5);
    if (n != 3 && n != 5)
      die_usage("--flap: expected AT:DUR:F[:DOWN:UP], got '%s'", flap[i]);
    uint64_t at, dur, down = 5000, up = 5000;
    double fr;
    char head[256];
    snprintf(head, sizeof head, "%s:%s:%s", f[0], f[1], f[2]);
    parse_window("--flap", head, &at, &dur, &fr, 0);
    if (n == 5 && (lm_parse_time_ms(&down, f[3]) != 0 || down == 0 ||
                   lm_parse_time_ms(&up, f[4]) != 0 || up == 0))
      die_usage("--flap: bad DOWN:UP '%s:%s'", f[3], f[4]);
    action_t *a = tl_add(&st->tl, at, A_FLAP);
    a->x = fr;
    a->dur = dur;
    a->down = down;
    a->up = up;
  }
  for (int i = 0; i < ndeaf; i++) {
    char buf[256];
    char *f[4];
    if (strlen(deaf[i]) >= sizeof buf)
      die_usage("--deaf: value too long");
    strcpy(buf, deaf[i]);
    if (split_colon(buf, f, 4) != 4)
      die_usage("--deaf: expected AT:DUR:COUNT:P, got '%s'", deaf[i]);
    uint64_t at, dur;
    double cnt, p;
    char head[256];
    snprintf(head, sizeof head, "%s:%s:%s", f[0], f[1], f[2]);
    parse_window("--deaf", head, &at, &dur, &cnt, 1);
    if (cnt >= st->nodes)
      die_usage("--deaf: count %.0f is not below --nodes %u", cnt, st->nodes);
    if (lm_parse_fraction(&p, f[3]) != 0 || p <= 0 || p > 1)
      die_usage("--deaf: P must be in (0, 1], got '%s'", f[3]);
    action_t *a = tl_add(&st->tl, at, A_DEAF);
    a->count = (uint32_t)cnt;
    a->x = p;
    a->dur = dur;
  }
  for (int i = 0; i < npause; i++) {
    uint64_t at, dur;
    double cnt;
    parse_window("--pause", pause[i], &at, &dur, &cnt, 1);
    if (cnt >= st->nodes)
      die_usage("--pause: count %.0f is not below --nodes %u", cnt, st->nodes);
    action_t *a = tl_add(&st->tl, at, A_PAUSE);
    a->count = (uint32_t)cnt;
    a->dur = dur;
  }
  for (int i = 0; i < nrestart; i++) {
    char buf[256];
    char *f[3];
    if (strlen(restart[i]) >= sizeof buf)
      die_usage("--restart: value too long");
    strcpy(buf, restart[i]);
    int n = split_colon(buf, f, 3);
    uint64_t at, down = 5000;
    uint32_t cnt;
    if (n < 2 || n > 3)
      die_usage("--restart: expected AT:COUNT[:DOWN], got '%s'", restart[i]);
    if (lm_parse_time_ms(&at, f[0]) != 0)
      die_usage("--restart: bad start time '%s'", f[0]);
    if (lm_parse_u32(&cnt, f[1]) != 0 || cnt == 0 || cnt >= st->nodes)
      die_usage("--restart: count must be 1..%u, got '%s'", st->nodes - 1, f[1]);
    if (n == 3 && (lm_parse_time_ms(&down, f[2]) != 0 || down == 0))
      die_usage("--restart: bad downtime '%s'", f[2]);
    action_t *a = tl_add(&st->tl, at, A_RESTART);
    a->count = cnt;
    a->dur = down;
  }
  if (st->scenario)
    load_scenario(st);
}

/* ----------------------------------------------------------------- run -- */

/* partition_false_dead: DEAD declarations, once any cut has happened, of a
 * member that is up, not paused, in the life (generation) the verdict is
 * about, by an observer it can reach both ways at that moment: on its own
 * side of every partition or one-way cut, or anybody's once they healed.
 * No failure detector has a reason for one; each is a protocol error.
 *
 * One exception, counted apart as heal_edge_dead: a declaration within
 * edge_ms (a probe period plus a probe timeout) of a heal, about a member
 * the observer could not reach until that heal. It rests on a check that
 * failed while the cut stood (a core declares only on a failure of its
 * own within the last probe period, or on a verdict ping unanswered for a
 * probe timeout); a heal that lands inside that window is one no detector
 * can see. */
/* A --deaf node: from `at` to `end` it loses a fraction p of what is sent
 * to it. Required of the mesh: removed (DEAD in every other up node's
 * view), it stays removed until `end` (no observer takes it back, no view
 * changes), and it is alive everywhere again after `end`. Times absolute. */
typedef struct deaf_rec {
  uint32_t node;
  double p;
  uint64_t at, end;     /* end: 0 while deaf */
  uint64_t removed_at;  /* first poll that found it DEAD everywhere */
  uint64_t back_at;     /* first poll after `end` that found it alive
                           (alive or suspect) everywhere, current life */
  uint64_t first_dead_at;
  uint32_t returns;     /* alive-again events about it while deaf, after
                           removed_at */
  uint32_t view_flips;  /* polls after removed_at, while deaf, that found
                           some observer not holding it DEAD */
  uint64_t suspect_ev, dead_ev; /* about it, by others, while deaf */
  uint64_t dead_by;     /* DEAD events it declared while deaf */
  uint64_t refutes0, fences0, refutes, fences; /* its core's counters */
} deaf_rec_t;

typedef struct trace_ctx {
  uint64_t t0;      /* for log lines */
  deaf_rec_t deaf[64];
  uint32_t ndeaf;
  uint8_t *is_deaf; /* [node]: deaf at some point (not counted as healthy) */
  uint64_t healthy_dead; /* DEAD by a never-deaf observer about a healthy,
                            never-deaf member (only counted with --deaf) */
  lm_sim_t *sim;    /* NULL while lm_sim_new runs */
  int cut_ever;     /* a partition, one-way cut, flap or block happened */
  uint64_t pfd_events;
  uint8_t *pfd_subject; /* [node]: declared falsely at least once */
  uint32_t pfd_subjects;
  int64_t pfd_first_ms; /* ms after start, -1 none */
  int32_t pfd_first_obs, pfd_first_subj;
  uint8_t *cur_g, *prev_g; /* groups of the standing cut, and of the last
                              healed one (NULL: none) */
  uint8_t *g_store[2];
  uint64_t heal_at, edge_ms;
  uint64_t edge_events;
} trace_ctx_t;

/* The cut that now stands (groups as given to lm_sim_partition*). */
static void tc_cut(trace_ctx_t *tc, const uint8_t *g, uint32_t n) {
  tc->cut_ever = 1;
  uint8_t *dst = tc->g_store[0] == tc->prev_g ? tc->g_store[1] : tc->g_store[0];
  memcpy(dst, g, n);
  tc->cur_g = dst;
}

static void tc_heal(trace_ctx_t *tc, uint64_t now) {
  if (!tc->cur_g)
    return;
  tc->prev_g = tc->cur_g;
  tc->cur_g = NULL;
  tc->heal_at = now;
}

static void on_trace(void *ud, uint64_t now, uint32_t obs, int32_t subj,
                     const swim_event_t *ev) {
  trace_ctx_t *tc = ud;
  if (tc->sim && subj >= 0 && (uint32_t)subj != obs) {
    for (uint32_t k = 0; k < tc->ndeaf; k++) {
      deaf_rec_t *d = &tc->deaf[k];
      if (d->end)
        continue;
      if (d->node == (uint32_t)subj) {
        if (ev->kind == SWIM_EV_SUSPECT)
          d->suspect_ev++;
        if (ev->kind == SWIM_EV_DEAD) {
          d->dead_ev++;
          if (!d->first_dead_at)
            d->first_dead_at = now;
        }
        if (ev->kind == SWIM_EV_JOIN && d->removed_at)
          d->returns++;
      }
      if (d->node == obs && ev->kind == SWIM_EV_DEAD)
        d->dead_by++;
    }
    if (ev->kind == SWIM_EV_DEAD && tc->ndeaf && !tc->is_deaf[obs] &&
        !tc->is_deaf[subj] && !lm_sim_ever_unhealthy(tc->sim, (uint32_t)subj))
      tc->healthy_dead++;
  }
  if (ev->kind != SWIM_EV_DEAD || !tc->sim || !tc->cut_ever || subj < 0 ||
      (uint32_t)subj == obs)
    return;
  lm_sim_t *sim = tc->sim;
  uint32_t sj = (uint32_t)subj;
  swim_core_t *sc = lm_sim_core(sim, sj);
  if (!sc || lm_sim_is_paused(sim, sj) ||
      ev->member.inc.gen != swim_self_inc(sc).gen)
    return;
  if (!lm_sim_can_reach(sim, obs, sj) || !lm_sim_can_reach(sim, sj, obs))
    return;
  if (tc->prev_g && now < tc->heal_at + tc->edge_ms &&
      tc->prev_g[obs] != tc->prev_g[sj]) {
    tc->edge_events++;
    return;
  }
  if (!tc->pfd_events++) {
    tc->pfd_first_ms = (int64_t)(now - tc->t0);
    tc->pfd_first_obs = (int32_t)obs;
    tc->pfd_first_subj = subj;
  }
  if (tc->pfd_subject && !tc->pfd_subject[sj]) {
    tc->pfd_subject[sj] = 1;
    tc->pfd_subjects++;
  }
}

typedef struct heal_rec {
  uint64_t at;        /* ms after start */
  int64_t converge_ms; /* -1 not yet */
} heal_rec_t;

typedef struct run {
  settings_t *st;
  lm_sim_t *sim;
  uint64_t t0, end;
  uint8_t *used; /* victims: never picked twice, node 0 never */
  uint8_t *permanent; /* crashed for good (kill) */
  /* convergence polling */
  int want_initial;
  int64_t converge_ms;
  int base_set;
  uint64_t next_poll;
  uint64_t strict_backoff, next_strict;
  heal_rec_t heals[64];
  int nheals;
  int heal_pending;
  uint64_t partitions_active;
  struct trace_ctx *tc;
  uint8_t *flap_g; /* the split a --flap cuts and mends */
  uint64_t deaf_next_poll; /* while a --deaf record is open */
  int deaf_open;
  uint64_t flap_end, flap_down, flap_up;
  int bootstrap;
  uint32_t killed;
  /* steady state: traffic between two marks with nothing happening */
  lm_sim_node_stats_t steady0;
  uint64_t steady_t0, last_disruption;
  int steady_valid;
  double steady_bytes, steady_pkts, steady_udp_bytes, steady_udp_pkts;
} run_t;

static uint64_t now_rel(const run_t *r) { return lm_sim_now(r->sim) - r->t0; }

/* `want` distinct victims among nodes not used yet (node 0 excluded), by a
 * partial Fisher-Yates shuffle on the scenario PRNG. Returns how many. */
static uint32_t pick(run_t *r, uint32_t want, uint32_t *out, int mark_used) {
  uint32_t n = lm_sim_size(r->sim);
  uint32_t *cand = malloc((size_t)n * sizeof *cand);
  if (!cand)
    die("out of memory");
  uint32_t nc = 0;
  for (uint32_t i = 1; i < n; i++)
    if (!r->used[i] && lm_sim_is_up(r->sim, i))
      cand[nc++] = i;
  if (want > nc)
    want = nc;
  for (uint32_t k = 0; k < want; k++) {
    uint32_t j = k + (uint32_t)(lm_sim_rand(r->sim) % (nc - k));
    uint32_t t = cand[k];
    cand[k] = cand[j];
    cand[j] = t;
    out[k] = cand[k];
    if (mark_used)
      r->used[cand[k]] = 1;
  }
  free(cand);
  return want;
}

/* A random group assignment: a fraction `fr` of the nodes (never node 0)
 * in group 1, the rest in group 0. */
static uint8_t *pick_groups(run_t *r, double fr) {
  uint32_t n = lm_sim_size(r->sim);
  uint8_t *g = calloc(n, 1);
  uint32_t *cand = malloc((size_t)n * sizeof *cand);
  if (!g || !cand)
    die("out of memory");
  uint32_t want = (uint32_t)llround(fr * n);
  if (want >= n)
    want = n - 1;
  uint32_t nc = 0;
  for (uint32_t i = 1; i < n; i++)
    cand[nc++] = i;
  for (uint32_t k = 0; k < want && k < nc; k++) {
    uint32_t j = k + (uint32_t)(lm_sim_rand(r->sim) % (nc - k));
    uint32_t t = cand[k];
    cand[k] = cand[j];
    cand[j] = t;
    g[cand[k]] = 1;
  }
  free(cand);
  return g;
}

static void start_heal_wait(run_t *r) {
  if (r->nheals < (int)(sizeof r->heals / sizeof r->heals[0])) {
    r->heals[r->nheals].at = now_rel(r);
    r->heals[r->nheals].converge_ms = -1;
    r->nheals++;
  }
  r->heal_pending = 1;
  r->next_poll = lm_sim_now(r->sim);
  r->strict_backoff = POLL_MS;
  r->next_strict = 0;
}

static void set_base(run_t *r);

static void exec_action(run_t *r, const action_t *a) {
  lm_sim_t *sim = r->sim;
  uint64_t now = now_rel(r);
  uint32_t *victims = NULL;
  uint32_t nv = 0;
  if (a->kind == A_KILL || a->kind == A_RESTART || a->kind == A_PAUSE ||
      a->kind == A_LEAVE) {
    victims = malloc(((size_t)a->count + 1) * sizeof *victims);
    if (!victims)
      die("out of memory");
    if (a->node >= 0) {
      victims[0] = (uint32_t)a->node;
      nv = 1;
      if (a->kind != A_PAUSE)
        r->used[a->node] = 1;
    } else {
      nv = pick(r, a->count, victims, 1);
    }
  }
  if (a->kind != A_META && a->kind != A_STEADY_BEGIN &&
      a->kind != A_STEADY_END)
    r->last_disruption = now + 1;
  switch (a->kind) {
  case A_STEADY_BEGIN:
    lm_sim_totals(sim, &r->steady0);
    r->steady_t0 = now;
    break;
  case A_STEADY_END: {
    if (r->last_disruption > r->steady_t0 || now <= r->steady_t0)
      break; /* something happened inside the window: no steady figure */
    lm_sim_node_stats_t t;
    lm_sim_totals(sim, &t);
    double secs = (double)(now - r->steady_t0) / 1000.0;
    double nn = (double)lm_sim_up_count(sim);
    double pk = (double)(t.pkts_sent - r->steady0.pkts_sent);
    double fr = (double)(t.frames_sent - r->steady0.frames_sent);
    double env = (double)r->st->envelope;
    r->steady_udp_pkts = pk / nn / secs;
    r->steady_udp_bytes =
        ((double)(t.bytes_sent - r->steady0.bytes_sent) + pk * env) / nn / secs;
    r->steady_pkts = (pk + fr) / nn / secs;
    r->steady_bytes = ((double)(t.bytes_sent - r->steady0.bytes_sent) +
                       (double)(t.frame_bytes_sent - r->steady0.frame_bytes_sent) +
                       (pk + fr) * env) / nn / secs;
    r->steady_valid = 1;
    break;
  }
  case A_KILL:
    for (uint32_t k = 0; k < nv; k++)
      if (lm_sim_crash(sim, victims[k]) == 0) {
        r->permanent[victims[k]] = 1;
        r->killed++;
      }
    break;
  case A_RESTART:
    for (uint32_t k = 0; k < nv; k++) {
      if (lm_sim_crash(sim, victims[k]) != 0)
        continue;
      action_t *f = tl_add(&r->st->tl, now + a->dur, A_RESTART_NODE);
      f->node = (int32_t)victims[k];
    }
    break;
  case A_RESTART_NODE:
    lm_sim_restart(sim, (uint32_t)a->node);
    break;
  case A_PAUSE:
    for (uint32_t k = 0; k < nv; k++) {
      if (lm_sim_pause(sim, victims[k]) != 0)
        continue;
      action_t *f = tl_add(&r->st->tl, now + a->dur, A_RESUME_NODE);
      f->node = (int32_t)victims[k];
    }
    break;
  case A_RESUME_NODE:
    lm_sim_resume(sim, (uint32_t)a->node);
    break;
  case A_LEAVE:
    for (uint32_t k = 0; k < nv; k++)
      lm_sim_leave(sim, victims[k]);
    break;
  case A_FLAP:
    free(r->flap_g);
    r->flap_g = pick_groups(r, a->x);
    r->flap_end = now + a->dur;
    r->flap_down = a->down;
    r->flap_up = a->up;
    /* fall through */
  case A_FLAP_CUT:
    tc_cut(r->tc, r->flap_g, lm_sim_size(sim));
    lm_sim_partition(sim, r->flap_g);
    tl_add(&r->st->tl,
           now + r->flap_down < r->flap_end ? now + r->flap_down : r->flap_end,
           A_FLAP_MEND);
    break;
  case A_FLAP_MEND:
    lm_sim_heal(sim);
    tc_heal(r->tc, lm_sim_now(sim));
    if (now + r->flap_up < r->flap_end)
      tl_add(&r->st->tl, now + r->flap_up, A_FLAP_CUT);
    else
      start_heal_wait(r);
    break;
  case A_PARTITION:
  case A_ONEWAY: {
    uint8_t *g = pick_groups(r, a->x);
    tc_cut(r->tc, g, lm_sim_size(sim));
    if (a->kind == A_PARTITION)
      lm_sim_partition(sim, g);
    else
      lm_sim_partition_oneway(sim, g, 1, 0);
    free(g);
    if (a->dur)
      tl_add(&r->st->tl, now + a->dur, A_HEAL);
    break;
  }
  case A_HEAL:
    lm_sim_heal(sim);
    tc_heal(r->tc, lm_sim_now(sim));
    start_heal_wait(r);
    break;
  case A_LOSS:
    lm_sim_set_loss(sim, a->x);
    break;
  case A_LATENCY:
    lm_sim_set_latency(sim, (uint32_t)a->x, (uint32_t)a->y);
    break;
  case A_DROP:
    if (a->node2 >= 0)
      lm_sim_set_drop_channel(sim, (uint32_t)a->node, (uint32_t)a->node2, a->x);
    else
      lm_sim_set_drop(sim, (uint32_t)a->node, a->x);
    break;
  case A_DEAF: {
    uint32_t n = lm_sim_size(sim);
    uint32_t *v = malloc(((size_t)a->count + 1) * sizeof *v);
    if (!v)
      die("out of memory");
    uint32_t k = pick(r, a->count, v, 1);
    for (uint32_t i = 0; i < k && r->tc->ndeaf < 64; i++) {
      deaf_rec_t *d = &r->tc->deaf[r->tc->ndeaf++];
      memset(d, 0, sizeof *d);
      d->node = v[i];
      d->p = a->x;
      d->at = lm_sim_now(sim);
      r->tc->is_deaf[v[i]] = 1;
      const swim_stats_t *ss = swim_stats(lm_sim_core(sim, v[i]));
      d->refutes0 = ss->refutes;
      d->fences0 = ss->fences;
      for (uint32_t j = 0; j < n; j++)
        if (j != v[i])
          lm_sim_set_drop_channel(sim, j, v[i], a->x);
      action_t *f = tl_add(&r->st->tl, now + a->dur, A_DEAF_END);
      f->node = (int32_t)v[i];
    }
    free(v);
    r->deaf_open = 1;
    r->deaf_next_poll = lm_sim_now(sim);
    break;
  }
  case A_DEAF_END: {
    uint32_t n = lm_sim_size(sim);
    for (uint32_t j = 0; j < n; j++)
      if (j != (uint32_t)a->node)
        lm_sim_set_drop_channel(sim, j, (uint32_t)a->node, 0);
    for (uint32_t k = 0; k < r->tc->ndeaf; k++) {
      deaf_rec_t *d = &r->tc->deaf[k];
      if (d->node != (uint32_t)a->node || d->end)
        continue;
      d->end = lm_sim_now(sim);
      swim_core_t *dc = lm_sim_core(sim, d->node);
      if (dc) {
        d->refutes = swim_stats(dc)->refutes - d->refutes0;
        d->fences = swim_stats(dc)->fences - d->fences0;
      }
    }
    break;
  }
  case A_BLOCK:
    r->tc->cut_ever = 1;
    lm_sim_block(sim, (uint32_t)a->node, (uint32_t)a->node2);
    break;
  case A_UNBLOCK:
    lm_sim_unblock(sim, (uint32_t)a->node, (uint32_t)a->node2);
    break;
  case A_META: {
    char meta[64];
    int len = snprintf(meta, sizeof meta, "livemesh-sim:meta@%llu",
                       (unsigned long long)now);
    lm_sim_set_meta(sim, (uint32_t)a->node, (const uint8_t *)meta, (size_t)len);
    break;
  }
  }
  free(victims);
}

/* Convergence (every up node holds every up node as a live member, in its
 * current generation, and no crashed node) is polled every POLL_MS while
 * someone waits for it: the initial join and each heal. The exact O(N^2)
 * check runs only once the cheap one passes, and backs off while it keeps
 * failing. */
static void poll(run_t *r) {
  uint64_t now = lm_sim_now(r->sim);
  r->next_poll = now + POLL_MS;
  if (!r->want_initial && !r->heal_pending)
    return;
  if (!lm_sim_converged(r->sim, LM_SIM_CONV_COUNT))
    return;
  if (now < r->next_strict)
    return;
  if (!lm_sim_converged(r->sim, LM_SIM_CONV_LIVE)) {
    r->next_strict = now + r->strict_backoff;
    if (r->strict_backoff < 5000)
      r->strict_backoff *= 2;
    return;
  }
  r->strict_backoff = POLL_MS;
  r->next_strict = 0;
  if (r->want_initial) {
    r->want_initial = 0;
    r->converge_ms = (int64_t)now_rel(r);
    if (!r->base_set)
      set_base(r);
  }
  if (r->heal_pending) {
    r->heal_pending = 0;
    for (int i = 0; i < r->nheals; i++)
      if (r->heals[i].converge_ms < 0)
        r->heals[i].converge_ms = (int64_t)(now_rel(r) - r->heals[i].at);
  }
}

/* --deaf: is node d DEAD (want_dead) or live in its current life (not
 * want_dead) in every other up node's view? */
static int deaf_all(run_t *r, uint32_t d, int want_dead) {
  uint32_t n = lm_sim_size(r->sim);
  swim_core_t *dc = lm_sim_core(r->sim, d);
  if (!dc)
    return 0;
  for (uint32_t o = 0; o < n; o++) {
    if (o == d || !lm_sim_is_up(r->sim, o))
      continue;
    swim_member_t m;
    if (swim_member_find(lm_sim_core(r->sim, o), lm_sim_node_id(r->sim, d),
                         &m) != 0)
      return 0;
    if (want_dead ? m.status != SWIM_DEAD
                  : (m.status != SWIM_ALIVE && m.status != SWIM_SUSPECT) ||
                        m.inc.gen != swim_self_inc(dc).gen)
      return 0;
  }
  return 1;
}

/* Returns 1 while some deaf record still wants polling. */
static int deaf_poll(run_t *r) {
  uint64_t now = lm_sim_now(r->sim);
  int open = 0;
  r->deaf_next_poll = now + POLL_MS;
  for (uint32_t k = 0; k < r->tc->ndeaf; k++) {
    deaf_rec_t *d = &r->tc->deaf[k];
    if (!d->end) {
      open = 1;
      int dead = deaf_all(r, d->node, 1);
      if (!d->removed_at && dead)
        d->removed_at = now;
      else if (d->removed_at && !dead)
        d->view_flips++;
    } else if (!d->back_at) {
      open = 1;
      if (deaf_all(r, d->node, 0))
        d->back_at = now;
    }
  }
  return open;
}

static json_t *deaf_json(run_t *r) {
  json_t *a = json_array();
  for (uint32_t k = 0; k < r->tc->ndeaf; k++) {
    deaf_rec_t *d = &r->tc->deaf[k];
#define REL(t, base) ((t) ? json_integer((json_int_t)((t) - (base))) : json_null())
    int ok = d->removed_at && d->end && !d->returns && !d->view_flips &&
             d->back_at;
    json_t *o = json_object();
    json_object_set_new(o, "node", json_string(lm_sim_node_name(r->sim, d->node)));
    json_object_set_new(o, "p", json_real(d->p));
    json_object_set_new(o, "at_ms", json_integer((json_int_t)(d->at - r->t0)));
    json_object_set_new(o, "dur_ms", d->end ? json_integer((json_int_t)(d->end - d->at))
                                            : json_null());
    json_object_set_new(o, "first_dead_ms", REL(d->first_dead_at, d->at));
    json_object_set_new(o, "removed_ms", REL(d->removed_at, d->at));
    json_object_set_new(o, "returns", json_integer(d->returns));
    json_object_set_new(o, "view_flips", json_integer(d->view_flips));
    json_object_set_new(o, "suspect_events", json_integer((json_int_t)d->suspect_ev));
    json_object_set_new(o, "dead_events", json_integer((json_int_t)d->dead_ev));
    json_object_set_new(o, "dead_declared_by_it", json_integer((json_int_t)d->dead_by));
    json_object_set_new(o, "refutes", json_integer((json_int_t)d->refutes));
    json_object_set_new(o, "fences", json_integer((json_int_t)d->fences));
    json_object_set_new(o, "back_ms", d->end ? REL(d->back_at, d->end) : json_null());
    json_object_set_new(o, "ok", json_boolean(ok));
    json_array_append_new(a, o);
#undef REL
  }
  return a;
}

/* The moment the mesh is considered up: the steady window runs 4 to 9 s
 * later, the dissemination probe (a metadata change) goes out after it, at
 * 9.5 s, so the window does not carry its gossip, and the default kill
 * follows at 10 s. */
static void set_base(run_t *r) {
  r->base_set = 1;
  uint64_t base = now_rel(r);
  action_t *m = tl_add(&r->st->tl, base + 9500, A_META);
  m->node = 0;
  if (r->st->kill && r->st->kill_at < 0) {
    action_t *k = tl_add(&r->st->tl, base + 10000, A_KILL);
    k->count = r->st->kill;
  }
  tl_add(&r->st->tl, base + 4000, A_STEADY_BEGIN);
  tl_add(&r->st->tl, base + 9000, A_STEADY_END);
}

/* ------------------------------------------------------------- metrics -- */

typedef struct report {
  lm_report_outcome_t outcome; /* of the permanent crashes */
  lm_report_dist_t rejoin;
  double bytes_per_node_s, pkts_per_node_s;
  int64_t dissemination_ms;
  lm_sim_node_stats_t tot;
} report_t;

static void compute(run_t *r, report_t *rep) {
  lm_sim_t *sim = r->sim;
  uint32_t n = lm_sim_size(sim);
  memset(rep, 0, sizeof *rep);
  size_t nc = lm_sim_crash_count(sim);
  int64_t *first = calloc(nc + 1, sizeof *first);
  int64_t *all = calloc(nc + 1, sizeof *all);
  int64_t *susp = calloc(nc + 1, sizeof *susp);
  int64_t *rej = calloc(nc + 1, sizeof *rej);
  if (!first || !all || !susp || !rej)
    die("out of memory");
  size_t nf = 0, na = 0, ns = 0, nr = 0;
  for (size_t k = 0; k < nc; k++) {
    lm_sim_crash_info_t ci;
    lm_sim_crash_info(sim, k, &ci);
    if (ci.restarted_at) {
      if (ci.rejoined_at)
        rej[nr++] = (int64_t)(ci.rejoined_at - ci.restarted_at);
      continue;
    }
    if (!r->permanent[ci.node])
      continue;
    if (ci.first_dead_at)
      first[nf++] = (int64_t)(ci.first_dead_at - ci.crashed_at);
    if (ci.all_dead_at)
      all[na++] = (int64_t)(ci.all_dead_at - ci.crashed_at);
    if (ci.first_suspect_at)
      susp[ns++] = (int64_t)(ci.first_suspect_at - ci.crashed_at);
    /* undetected: some up node still has it alive or suspect */
    for (uint32_t o = 0; o < n; o++) {
      if (!lm_sim_is_up(sim, o))
        continue;
      int s = lm_sim_status(sim, o, ci.node);
      if (s == SWIM_ALIVE || s == SWIM_SUSPECT) {
        rep->outcome.undetected++;
        break;
      }
    }
  }
  rep->outcome.first = lm_report_dist(first, nf);
  rep->outcome.all = lm_report_dist(all, na);
  rep->outcome.suspect = lm_report_dist(susp, ns);
  rep->rejoin = lm_report_dist(rej, nr);
  free(first);
  free(all);
  free(susp);
  free(rej);
  for (uint32_t i = 0; i < n; i++) {
    if (lm_sim_ever_unhealthy(sim, i) || r->tc->is_deaf[i])
      continue;
    const lm_sim_node_stats_t *s = lm_sim_node_stats(sim, i);
    if (s->suspect_events)
      rep->outcome.false_suspect++;
    if (s->dead_events)
      rep->outcome.false_dead++;
    rep->outcome.false_suspect_events += s->suspect_events;
    rep->outcome.false_dead_events += s->dead_events;
  }
  lm_sim_totals(sim, &rep->tot);
  double secs = (double)(r->end - r->t0) / 1000.0;
  uint64_t pkts = rep->tot.pkts_sent + rep->tot.frames_sent;
  uint64_t bytes = rep->tot.bytes_sent + rep->tot.frame_bytes_sent +
                   pkts * (uint64_t)r->st->envelope;
  rep->bytes_per_node_s = (double)bytes / n / secs;
  rep->pkts_per_node_s = (double)pkts / n / secs;
  uint64_t started, done;
  rep->dissemination_ms = -1;
  if (lm_sim_dissemination(sim, NULL, &started, &done) == 0 && done)
    rep->dissemination_ms = (int64_t)(done - started);
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every crash, times relative to it (null: did not happen). */
static json_t *crashes_json(run_t *r) {
  json_t *a = json_array();
  size_t nc = lm_sim_crash_count(r->sim);
  for (size_t k = 0; k < nc; k++) {
    lm_sim_crash_info_t ci;
    lm_sim_crash_info(r->sim, k, &ci);
#define REL(t) ((t) ? json_integer((json_int_t)((t) - ci.crashed_at)) : json_null())
    json_array_append_new(
        a, json_pack("{s:s,s:I,s:b,s:o,s:o,s:o,s:o,s:o}", "node",
                     lm_sim_node_name(r->sim, ci.node), "at_ms",
                     (json_int_t)(ci.crashed_at - r->t0), "permanent",
                     r->permanent[ci.node] && !ci.restarted_at,
                     "suspect_ms", REL(ci.first_suspect_at), "dead_ms",
                     REL(ci.first_dead_at), "all_dead_ms", REL(ci.all_dead_at),
                     "restart_ms", REL(ci.restarted_at), "rejoin_ms",
                     ci.rejoined_at ? json_integer((json_int_t)(ci.rejoined_at -
                                                                ci.restarted_at))
                                    : json_null()));
#undef REL
  }
  return a;
}

static void print_json(run_t *r, const report_t *rep, const swim_config_t *cfg,
                       double wall) {
  settings_t *st = r->st;
  json_t *o = json_object();
  json_object_set_new(o, "n", json_integer(lm_sim_size(r->sim)));
  json_object_set_new(o, "seed", json_integer((json_int_t)st->seed));
  json_object_set_new(o, "start", json_string(r->bootstrap ? "bootstrap" : "join"));
  json_object_set_new(o, "start_auto", json_boolean(st->mode < 0));
  json_object_set_new(o, "sim_s",
                      lm_report_real3((double)(r->end - r->t0) / 1000.0));
  if (!st->deterministic)
    json_object_set_new(o, "wall_s", lm_report_real3(wall));
  json_object_set_new(o, "converge_ms", lm_report_ms_or_null(r->converge_ms));
  json_object_set_new(o, "killed", json_integer(r->killed));
  lm_report_outcome_json(o, &rep->outcome, 0);
  json_object_set_new(o, "partition_false_dead",
                      json_integer((json_int_t)r->tc->pfd_events));
  json_object_set_new(o, "partition_false_dead_nodes",
                      json_integer(r->tc->pfd_subjects));
  json_object_set_new(o, "heal_edge_dead",
                      json_integer((json_int_t)r->tc->edge_events));
  if (r->tc->pfd_events)
    json_object_set_new(
        o, "partition_false_dead_first",
        json_pack("{s:I,s:s,s:s}", "at_ms", (json_int_t)r->tc->pfd_first_ms,
                  "observer", lm_sim_node_name(r->sim, (uint32_t)r->tc->pfd_first_obs),
                  "subject", lm_sim_node_name(r->sim, (uint32_t)r->tc->pfd_first_subj)));
  json_object_set_new(o, "bytes_per_node_s", lm_report_real3(rep->bytes_per_node_s));
  json_object_set_new(o, "pkts_per_node_s", lm_report_real3(rep->pkts_per_node_s));
  if (r->steady_valid) {
    /* the same figures over 5 quiet seconds after convergence; udp_* count
     * datagrams only, as memberlist's figures do */
    json_t *sd = json_object();
    json_object_set_new(sd, "bytes_per_node_s", lm_report_real3(r->steady_bytes));
    json_object_set_new(sd, "pkts_per_node_s", lm_report_real3(r->steady_pkts));
    json_object_set_new(sd, "udp_bytes_per_node_s", lm_report_real3(r->steady_udp_bytes));
    json_object_set_new(sd, "udp_pkts_per_node_s", lm_report_real3(r->steady_udp_pkts));
    json_object_set_new(o, "steady", sd);
  }
  json_object_set_new(o, "dissemination_ms",
                      lm_report_ms_or_null(rep->dissemination_ms));
  json_object_set_new(
      o, "dissemination_rounds",
      rep->dissemination_ms < 0
          ? json_null()
          : lm_report_real3((double)rep->dissemination_ms / cfg->probe_interval_ms));
  if (r->nheals) {
    json_object_set_new(
        o, "heal_converge_ms",
        lm_report_ms_or_null(r->heals[r->nheals - 1].converge_ms));
    json_t *h = json_array();
    for (int i = 0; i < r->nheals; i++)
      json_array_append_new(
          h, json_pack("{s:I,s:o}", "at_ms", (json_int_t)r->heals[i].at,
                       "converge_ms",
                       lm_report_ms_or_null(r->heals[i].converge_ms)));
    json_object_set_new(o, "heals", h);
  }
  if (rep->rejoin.n)
    json_object_set_new(o, "rejoin_ms", lm_report_dist_json(&rep->rejoin, 0));
  json_object_set_new(o, "crashes", crashes_json(r));
  if (r->tc->ndeaf) {
    json_object_set_new(o, "deaf", deaf_json(r));
    json_object_set_new(o, "healthy_dead",
                        json_integer((json_int_t)r->tc->healthy_dead));
  }
  if (!st->deterministic)
    json_object_set_new(o, "max_rss_mib",
                        lm_report_real3(lm_report_max_rss_mib()));
  json_object_set_new(
      o, "config",
      json_pack("{s:I,s:I,s:I,s:f,s:[I,I],s:I,s:I,s:I,s:I,s:b}",
                "probe_interval_ms", (json_int_t)cfg->probe_interval_ms,
                "probe_timeout_ms", (json_int_t)cfg->probe_timeout_ms,
                "indirect", (json_int_t)cfg->indirect_checks, "loss", st->loss,
                "latency_ms", (json_int_t)st->lat_min, (json_int_t)st->lat_max,
                "envelope_bytes", (json_int_t)st->envelope,
                "gossip_interval_ms", (json_int_t)cfg->gossip_interval_ms,
                "pushpull_interval_ms", (json_int_t)cfg->pushpull_interval_ms,
                "reconnect_interval_ms", (json_int_t)cfg->reconnect_interval_ms,
                "streams", !st->no_streams));
  const lm_sim_node_stats_t *t = &rep->tot;
  json_object_set_new(
      o, "traffic",
      json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "pkts_sent",
                (json_int_t)t->pkts_sent, "bytes_sent", (json_int_t)t->bytes_sent,
                "frames_sent", (json_int_t)t->frames_sent, "frame_bytes_sent",
                (json_int_t)t->frame_bytes_sent, "frames_failed",
                (json_int_t)t->frames_failed, "pkts_lost",
                (json_int_t)t->pkts_lost, "pkts_blocked",
                (json_int_t)t->pkts_blocked, "pkts_vanished",
                (json_int_t)t->pkts_vanished, "pkts_oversize",
                (json_int_t)t->pkts_oversize, "recv_errors",
                (json_int_t)t->recv_errors));
  lm_report_json_print(PROG, o);
}

static void print_dist(const char *what, const lm_report_dist_t *d) {
  if (!d->n)
    printf("%s: none\n", what);
  else
    printf("%s: p50 %lld ms, p99 %lld ms, max %lld ms\n", what,
           (long long)d->p50, (long long)d->p99, (long long)d->max);
}

static void print_text(run_t *r, const report_t *rep, const swim_config_t *cfg,
                       double wall) {
  settings_t *st = r->st;
  printf("livemesh-sim: %u nodes, seed %llu, %.1f s simulated, start by %s%s\n",
         lm_sim_size(r->sim), (unsigned long long)st->seed,
         (double)(r->end - r->t0) / 1000.0, r->bootstrap ? "bootstrap" : "join",
         st->mode < 0 ? (r->bootstrap ? " (auto: more than 2000 nodes)"
                                      : " (auto: 2000 nodes or fewer)")
                      : "");
  if (!st->deterministic)
    printf("wall %.2f s, max RSS %.0f MiB\n", wall, lm_report_max_rss_mib());
  if (r->converge_ms >= 0)
    printf("converged after %lld ms\n", (long long)r->converge_ms);
  else
    printf("did not converge\n");
  if (rep->dissemination_ms >= 0)
    printf("metadata update reached every node in %lld ms (%.2f probe rounds)\n",
           (long long)rep->dissemination_ms,
           (double)rep->dissemination_ms / cfg->probe_interval_ms);
  if (r->killed) {
    printf("killed %u, undetected at the end %u\n", r->killed,
           rep->outcome.undetected);
    print_dist("  first DEAD", &rep->outcome.first);
    print_dist("  all DEAD", &rep->outcome.all);
  }
  for (int i = 0; i < r->nheals; i++) {
    if (r->heals[i].converge_ms >= 0)
      printf("healed at %.1f s, converged %lld ms later\n",
             (double)r->heals[i].at / 1000.0, (long long)r->heals[i].converge_ms);
    else
      printf("healed at %.1f s, not converged by the end\n",
             (double)r->heals[i].at / 1000.0);
  }
  if (rep->rejoin.n)
    print_dist("restarted nodes back alive everywhere", &rep->rejoin);
  printf("false positives: %u nodes suspected (%llu events), %u declared dead "
         "(%llu events)\n",
         rep->outcome.false_suspect,
         (unsigned long long)rep->outcome.false_suspect_events,
         rep->outcome.false_dead,
         (unsigned long long)rep->outcome.false_dead_events);
  printf("partition false deaths (same side, or after a heal): %llu events, "
         "%u nodes\n",
         (unsigned long long)r->tc->pfd_events, r->tc->pfd_subjects);
  printf("traffic: %.1f bytes and %.2f packets per node per second (with %u "
         "envelope bytes per packet)\n",
         rep->bytes_per_node_s, rep->pkts_per_node_s, st->envelope);
}

static void log_line(void *ud, uint64_t now, uint32_t node, int level,
                     const char *msg) {
  const trace_ctx_t *tc = ud;
  fprintf(stderr, "%10.3f n%-5u %-5s %s\n", (double)(now - tc->t0) / 1000.0, node,
          lm_report_level_name(level), msg);
}

int main(int argc, char **argv) {
  double wall0 = wall_now();
  settings_t st = {.nodes = 100,
                   .seconds_ms = 60000,
                   .kill_at = -1,
                   .lat_min = 1,
                   .lat_max = 5,
                   .mode = -1,
                   .seeds = 1,
                   .gossip_ms = -1,
                   .pushpull_ms = -1,
                   .reconnect_ms = -1,
                   .envelope = SWIM_WIRE_ENVELOPE};
  parse_args(argc, argv, &st);
  if (!st.seed_set)
    st.seed = lm_report_clock_seed();
  if (st.kill && st.kill_at >= 0) {
    action_t *k = tl_add(&st.tl, (uint64_t)st.kill_at, A_KILL);
    k->count = st.kill;
  }

  lm_sim_opts_t o;
  lm_sim_opts_default(&o);
  o.nodes = st.nodes;
  o.seed = st.seed;
  o.loss = 0; /* the loss starts after the bootstrap, see below */
  o.lat_min_ms = st.lat_min;
  o.lat_max_ms = st.lat_max;
  o.seeds = st.seeds;
  int bootstrap = st.mode < 0 ? st.nodes > AUTO_BOOTSTRAP_ABOVE : st.mode;
  o.bootstrap = bootstrap;
  if (st.probe_set)
    o.base.probe_interval_ms = st.probe_ms;
  if (st.timeout_set)
    o.base.probe_timeout_ms = st.probe_timeout_ms;
  if (st.indirect_set)
    o.base.indirect_checks = st.indirect;
  if (st.gossip_ms >= 0)
    o.base.gossip_interval_ms = (uint32_t)st.gossip_ms;
  if (st.pushpull_ms >= 0)
    o.base.pushpull_interval_ms = (uint32_t)st.pushpull_ms;
  if (st.reconnect_ms >= 0)
    o.base.reconnect_interval_ms = (uint32_t)st.reconnect_ms;
  o.streams = !st.no_streams;
  trace_ctx_t tc = {.t0 = LM_SIM_EPOCH_MS, .pfd_first_ms = -1};
  tc.pfd_subject = calloc(st.nodes, 1);
  tc.is_deaf = calloc(st.nodes, 1);
  if (!tc.is_deaf)
    die("out of memory");
  tc.g_store[0] = calloc(st.nodes, 1);
  tc.g_store[1] = calloc(st.nodes, 1);
  if (!tc.pfd_subject || !tc.g_store[0] || !tc.g_store[1])
    die("out of memory");
  o.trace = on_trace;
  o.ud = &tc;
  if (st.verbose) {
    o.log = log_line;
    o.ud = &tc;
    o.log_level = st.verbose > 1 ? SWIM_LOG_DEBUG : SWIM_LOG_INFO;
  } else {
    o.log = NULL;
  }
  /* Before the run, so that a run that dies can still be replayed. */
  fprintf(stderr, "livemesh-sim: seed %llu\n", (unsigned long long)st.seed);

  lm_sim_t *sim = lm_sim_new(&o);
  if (!sim)
    die("cannot create the simulation (out of memory, or the core refused "
        "the configuration)");
  lm_sim_set_loss(sim, st.loss);

  run_t r = {.st = &st, .sim = sim, .converge_ms = -1, .bootstrap = bootstrap};
  r.t0 = lm_sim_now(sim);
  tc.t0 = r.t0;
  tc.sim = sim;
  tc.edge_ms = (uint64_t)o.base.probe_interval_ms + o.base.probe_timeout_ms;
  r.tc = &tc;
  r.end = r.t0 + st.seconds_ms;
  r.used = calloc(st.nodes, 1);
  r.permanent = calloc(st.nodes, 1);
  if (!r.used || !r.permanent)
    die("out of memory");
  r.used[0] = 1;
  r.want_initial = 1;
  r.next_poll = r.t0;
  r.strict_backoff = POLL_MS;
  /* A bootstrap start is converged by construction; the O(N) check says so
   * without the O(N^2) walk (seconds at 10,000 nodes). */
  if (bootstrap && lm_sim_converged(sim, LM_SIM_CONV_COUNT)) {
    r.want_initial = 0;
    r.converge_ms = 0;
    set_base(&r);
  }
  /* Without convergence by half the run, start the clock for the kills
   * anyway so the run still measures detection. */
  uint64_t base_deadline = r.t0 + st.seconds_ms / 2;

  for (;;) {
    uint64_t now = lm_sim_now(sim);
    uint64_t next = r.end;
    if ((r.want_initial || r.heal_pending) && r.next_poll < next)
      next = r.next_poll;
    if (r.deaf_open && r.deaf_next_poll < next)
      next = r.deaf_next_poll;
    if (!r.base_set && base_deadline < next)
      next = base_deadline;
    ssize_t ai = tl_next(&st.tl);
    if (ai >= 0 && r.t0 + st.tl.v[ai].at < next)
      next = r.t0 + st.tl.v[ai].at;
    if (next < now)
      next = now;
    lm_sim_run_to(sim, next);
    now = lm_sim_now(sim);
    if ((r.want_initial || r.heal_pending) && now >= r.next_poll)
      poll(&r);
    if (r.deaf_open && now >= r.deaf_next_poll)
      r.deaf_open = deaf_poll(&r);
    if (!r.base_set && now >= base_deadline)
      set_base(&r);
    while ((ai = tl_next(&st.tl)) >= 0 && r.t0 + st.tl.v[ai].at <= now) {
      action_t a = tl_take(&st.tl, (size_t)ai);
      exec_action(&r, &a);
    }
    if (now >= r.end)
      break;
  }
  /* A last look: convergence that happened between two polls counts. */
  if (r.want_initial || r.heal_pending)
    poll(&r);

  report_t rep;
  compute(&r, &rep);
  swim_config_t cfg = o.base;
  double wall = wall_now() - wall0;
  if (st.json)
    print_json(&r, &rep, &cfg, wall);
  else
    print_text(&r, &rep, &cfg, wall);
  fflush(stdout);
  /* Tearing down 10,000 cores drops 100 million record references one by
   * one (seconds); process exit releases the memory at once. Sanitizer
   * builds always tear down so that leaks stay visible. */
#ifndef __SANITIZE_ADDRESS__
  if (st.nodes > AUTO_BOOTSTRAP_ABOVE)
    return 0;
#endif
  lm_sim_free(sim);
  free(r.used);
  free(r.permanent);
  free(r.flap_g);
  free(tc.pfd_subject);
  free(tc.is_deaf);
  free(tc.g_store[0]);
  free(tc.g_store[1]);
  free(st.tl.v);
  return 0;
}
