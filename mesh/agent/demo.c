/*
 * demo.c: `livemesh demo`, a whole mesh in one process on loopback, shown
 * live. N real nodes (lm_node_t, real UDP and TCP on 127.0.0.1, real
 * signatures) share one libuv loop; a cluster key and the node identities
 * are made in memory. A script then plays what the mesh is for:
 *
 *   1. the nodes start and join through n1, until every node sees every
 *      node alive;
 *   2. one node crashes (closed without leaving): the others suspect it,
 *      then declare it dead;
 *   3. it comes back (same identity, higher generation): alive everywhere;
 *   4. another node leaves gracefully: left everywhere, at once;
 *
 * and prints how long each step took. On a terminal, a table of every
 * node's view (rows: observers, columns: members) is redrawn in place; on
 * anything else (CI, a pipe) one line per event.
 *
 * Must never depend on swim/ or node.c's internals: what the table shows
 * is what the public API's events said.
 */
#define _GNU_SOURCE
#include <livemesh/livemesh.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "swim.h" /* the protocol defaults */

#define DEMO_MAX 50
#define DEMO_MIN 3
#define TICK_MS 100
#define PAUSE_MS 1500 /* between steps, so a person can see each state */
#define RECENT 6
#define UNKNOWN (-1)

enum { P_START, P_KILL, P_RESTART, P_LEAVE, P_DONE, P_FAILED };

typedef struct dnode {
  struct demo *d;
  int idx;
  char name[16];
  lm_identity_t id;
  lm_node_t *node; /* NULL while down */
  uint32_t generation;
  char addr[LM_ADDR_STRLEN];
  int leaving, gone; /* gone: left for good */
  signed char view[DEMO_MAX];
} dnode_t;

typedef struct demo {
  uv_loop_t loop;
  uv_timer_t tick;
  uv_signal_t sigint, sigterm;
  int n;
  dnode_t nodes[DEMO_MAX];
  uint8_t trusted[1][LM_PUBLICKEY_BYTES];
  uint32_t probe_ms;
  double limit_s;
  int verbose;
  /* display */
  int tty, color, drawn_lines, quiet_joins;
  char recent[RECENT][200];
  int nrecent;
  char phase_text[200];
  /* script */
  int phase;
  int victim, leaver;
  double t0, phase_at, hold_until;
  double t_converged, t_kill, t_first_suspect, t_dead_all, t_restart,
      t_back_all, t_reconverged, t_leave, t_left_all;
  char failure[400];
  int finished;
} demo_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "1.2 s", or "48 ms" below a second, where tenths of seconds say 0.0 */
static void dur(char *out, size_t cap, double s) {
  if (s < 1.0)
    snprintf(out, cap, "%.0f ms", s * 1000);
  else
    snprintf(out, cap, "%.1f s", s);
}

static double el(const demo_t *d) { return now_s() - d->t0; }

/* ---- output ---- */

static const char *letter_color(char c) {
  switch (c) {
  case 'A': return "\033[32m";
  case 'S': return "\033[1;33m";
  case 'D': return "\033[1;31m";
  case 'L': return "\033[36m";
  default: return "\033[2m";
  }
}

static char status_letter(int s) {
  switch (s) {
  case LM_ALIVE: return 'A';
  case LM_SUSPECT: return 'S';
  case LM_DEAD: return 'D';
  case LM_LEFT: return 'L';
  default: return '.';
  }
}

static const char *status_word(int s) {
  return s == UNKNOWN ? "unknown" : lm_status_name((lm_status_t)s);
}

/* A line of the story: printed at once without a tty, kept among the
 * recent lines under the table with one. */
static void say(demo_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(demo_t *d, const char *fmt, ...) {
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!d->tty) {
    printf("%7.3fs  %s\n", el(d), msg);
    fflush(stdout);
    return;
  }
  if (d->nrecent == RECENT) {
    memmove(d->recent[0], d->recent[1], sizeof d->recent[0] * (RECENT - 1));
    d->nrecent--;
  }
  snprintf(d->recent[d->nrecent++], sizeof d->recent[0], "%6.2fs  %s", el(d),
           msg);
}

static void set_phase(demo_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_phase(demo_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->phase_text, sizeof d->phase_text, fmt, ap);
  va_end(ap);
  if (!d->tty) {
    printf("%7.3fs  == %s\n", el(d), d->phase_text);
    fflush(stdout);
  }
}

static int table_compact(const demo_t *d) { return d->n > 12; }

/* Lines the tty frame takes; constant for a run so it redraws in place. */
static int frame_lines(const demo_t *d) {
  return 3 + (table_compact(d) ? 2 : 1) + d->n + 2 + 1 + 4 + 1 + 1 + RECENT;
}

static void draw(demo_t *d) {
  if (!d->tty)
    return;
  const char *reset = d->color ? "\033[0m" : "";
  const char *dim = d->color ? "\033[2m" : "";
  const char *bold = d->color ? "\033[1m" : "";
  if (d->drawn_lines)
    printf("\033[%dA", d->drawn_lines);
  int lines = 0;
#define LINE_START() printf("\r\033[K")
#define LINE_END() (printf("\n"), lines++)
  LINE_START();
  printf("%slivemesh demo%s: %d nodes on 127.0.0.1, probe every %u ms   "
         "%5.1f s", bold, reset, d->n, d->probe_ms, el(d));
  LINE_END();
  LINE_START();
  printf("%s%s%s", bold, d->phase_text, reset);
  LINE_END();
  LINE_START();
  LINE_END();
  /* header */
  int compact = table_compact(d);
  int cw = compact ? 2 : 4;
  if (compact) {
    LINE_START();
    printf("%-10s", "");
    for (int j = 0; j < d->n; j++)
      printf("%-*c", cw, (j + 1) >= 10 ? '0' + (j + 1) / 10 : ' ');
    LINE_END();
    LINE_START();
    printf("%-10s", "members:");
    for (int j = 0; j < d->n; j++)
      printf("%-*c", cw, '0' + (j + 1) % 10);
    LINE_END();
  } else {
    LINE_START();
    printf("%-10s", "");
    for (int j = 0; j < d->n; j++)
      printf("%-*s", cw, d->nodes[j].name);
    LINE_END();
  }
  for (int i = 0; i < d->n; i++) {
    dnode_t *o = &d->nodes[i];
    LINE_START();
    char label[LM_NAME_MAX + 8];
    snprintf(label, sizeof label, "%s sees", o->name);
    if (!o->node) {
      printf("%s%-10s%s%s", dim, o->name,
             o->gone ? "(left the mesh)" : "(down: crashed, not running)",
             reset);
    } else {
      printf("%-10s", label);
      for (int j = 0; j < d->n; j++) {
        char c = status_letter(o->view[j]);
        if (d->color)
          printf("%s%c%s%*s", letter_color(c), c, reset, cw - 1, "");
        else
          printf("%c%*s", c, cw - 1, "");
      }
      if (o->leaving)
        printf("%s (leaving)%s", dim, reset);
    }
    LINE_END();
  }
  LINE_START();
  LINE_END();
  LINE_START();
  if (d->color)
    printf("%sA%s alive  %sS%s suspect  %sD%s dead  %sL%s left  %s.%s not "
           "known", letter_color('A'), reset, letter_color('S'), reset,
           letter_color('D'), reset, letter_color('L'), reset,
           letter_color('.'), reset);
  else
    printf("A alive  S suspect  D dead  L left  . not known");
  LINE_END();
  /* results so far */
  char r[4][200];
  memset(r, 0, sizeof r);
  char x[32], y[32];
  if (d->t_converged) {
    dur(x, sizeof x, d->t_converged - d->t0);
    snprintf(r[0], sizeof r[0], "converged: %d nodes see each other alive "
             "after %s", d->n, x);
  }
  if (d->t_kill) {
    /* a step still running shows its clock ticking */
    double t = now_s();
    dur(x, sizeof x, (d->t_first_suspect ? d->t_first_suspect : t) - d->t_kill);
    dur(y, sizeof y, (d->t_dead_all ? d->t_dead_all : t) - d->t_kill);
    snprintf(r[1], sizeof r[1], "%s killed: first suspect %s%s, dead "
             "everywhere %s%s", d->nodes[d->victim].name,
             d->t_first_suspect ? "after " : "... ", x,
             d->t_dead_all ? "after " : "... ", y);
  }
  if (d->t_restart) {
    dur(x, sizeof x, (d->t_back_all ? d->t_back_all : now_s()) - d->t_restart);
    snprintf(r[2], sizeof r[2], "%s restarted: back alive everywhere %s%s",
             d->nodes[d->victim].name, d->t_back_all ? "after " : "... ", x);
  }
  if (d->t_leave) {
    dur(x, sizeof x, (d->t_left_all ? d->t_left_all : now_s()) - d->t_leave);
    snprintf(r[3], sizeof r[3], "%s left: seen as left everywhere %s%s",
             d->nodes[d->leaver].name, d->t_left_all ? "after " : "... ", x);
  }
  LINE_START();
  LINE_END();
  for (int k = 0; k < 4; k++) {
    LINE_START();
    if (r[k][0])
      printf("  %s", r[k]);
    LINE_END();
  }
  LINE_START();
  LINE_END();
  LINE_START();
  printf("%srecent events:%s", dim, reset);
  LINE_END();
  for (int k = 0; k < RECENT; k++) {
    LINE_START();
    if (k < d->nrecent)
      printf("  %s%s%s", dim, d->recent[k], reset);
    LINE_END();
  }
#undef LINE_START
#undef LINE_END
  d->drawn_lines = lines;
  fflush(stdout);
}

/* ---- the mesh ---- */

static int member_index(const demo_t *d, const char *name) {
  if (name[0] != 'n')
    return -1;
  int k = atoi(name + 1);
  return k >= 1 && k <= d->n ? k - 1 : -1;
}

/* Does every running node other than `member` see it with `status`? */
static int all_see(const demo_t *d, int member, int status) {
  for (int i = 0; i < d->n; i++) {
    const dnode_t *o = &d->nodes[i];
    if (!o->node || o->leaving || i == member)
      continue;
    if (o->view[member] != status)
      return 0;
  }
  return 1;
}

/* Every running node sees every running node alive. */
static int converged(const demo_t *d) {
  for (int i = 0; i < d->n; i++) {
    if (!d->nodes[i].node)
      continue;
    for (int j = 0; j < d->n; j++)
      if (d->nodes[j].node && d->nodes[i].view[j] != LM_ALIVE)
        return 0;
  }
  return 1;
}

/* Times are taken here, when the event that completes a step arrives;
 * the tick timer only moves the script on. */
static void note_progress(demo_t *d) {
  double t = now_s();
  if (d->phase == P_START && !d->t_converged && converged(d))
    d->t_converged = t;
  if (d->phase == P_KILL && !d->t_dead_all && all_see(d, d->victim, LM_DEAD))
    d->t_dead_all = t;
  if (d->phase == P_RESTART) {
    if (!d->t_back_all && all_see(d, d->victim, LM_ALIVE))
      d->t_back_all = t;
    if (d->t_back_all && !d->t_reconverged && converged(d))
      d->t_reconverged = t;
  }
  if (d->phase == P_LEAVE && !d->t_left_all && all_see(d, d->leaver, LM_LEFT))
    d->t_left_all = t;
}

static void on_event(lm_node_t *node, const lm_event_t *ev, void *ud) {
  (void)node;
  dnode_t *o = ud;
  demo_t *d = o->d;
  int j = member_index(d, ev->member.name);
  if (j < 0 || j == o->idx)
    return;
  int old = o->view[j], now;
  switch (ev->kind) {
  case LM_EV_JOIN:
  case LM_EV_UPDATE: now = LM_ALIVE; break;
  case LM_EV_SUSPECT: now = LM_SUSPECT; break;
  case LM_EV_DEAD: now = LM_DEAD; break;
  case LM_EV_LEFT: now = LM_LEFT; break;
  case LM_EV_REAPED: now = UNKNOWN; break;
  default: return;
  }
  o->view[j] = (signed char)now;
  if (d->phase == P_KILL && j == d->victim && !d->t_first_suspect &&
      (now == LM_SUSPECT || now == LM_DEAD))
    d->t_first_suspect = now_s();
  if (old != now && !(d->quiet_joins && d->phase == P_START)) {
    if (old == UNKNOWN)
      say(d, "%s sees %s %s", o->name, d->nodes[j].name, status_word(now));
    else
      say(d, "%s sees %s %s (was %s)", o->name, d->nodes[j].name,
          status_word(now), status_word(old));
  }
  note_progress(d);
}

static void on_log(void *ud, int level, const char *line) {
  (void)ud;
  fprintf(stderr, "[%s] %s\n", lm__log_level_name(level), line);
}

static int start_node(demo_t *d, int i, const char *seed) {
  dnode_t *o = &d->nodes[i];
  lm_options_t opt;
  memset(&opt, 0, sizeof opt);
  opt.name = o->name;
  opt.bind = "127.0.0.1:0";
  opt.identity = &o->id;
  opt.trusted = (const uint8_t(*)[LM_PUBLICKEY_BYTES])d->trusted;
  opt.ntrusted = 1;
  opt.generation = o->generation;
  opt.probe_interval_ms = d->probe_ms;
  opt.probe_timeout_ms = d->probe_ms / 2;
  opt.on_event = on_event;
  opt.event_ud = o;
  if (d->verbose) {
    opt.log = on_log;
    opt.log_level = LM_LOG_INFO;
  }
  for (int j = 0; j < d->n; j++)
    o->view[j] = UNKNOWN;
  o->view[i] = LM_ALIVE;
  o->leaving = 0;
  int rc = lm_node_new(&o->node, &d->loop, &opt);
  if (rc == 0 && (rc = lm_node_start(o->node)) != 0) {
    lm_node_close(o->node, NULL, NULL);
    o->node = NULL;
  }
  if (rc == 0)
    rc = lm_node_bound_addr(o->node, o->addr, sizeof o->addr);
  if (rc == 0 && seed)
    rc = lm_node_join(o->node, &seed, 1);
  if (rc) {
    snprintf(d->failure, sizeof d->failure, "cannot start %s: %s", o->name,
             lm_strerror(rc));
    return -1;
  }
  return 0;
}

static void close_all(demo_t *d) {
  for (int i = 0; i < d->n; i++)
    if (d->nodes[i].node) {
      lm_node_close(d->nodes[i].node, NULL, NULL);
      d->nodes[i].node = NULL;
    }
}

static void finish(demo_t *d) {
  if (d->finished)
    return;
  d->finished = 1;
  draw(d);
  close_all(d);
  uv_timer_stop(&d->tick);
  uv_close((uv_handle_t *)&d->tick, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
}

static void fail(demo_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(demo_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->failure, sizeof d->failure, fmt, ap);
  va_end(ap);
  d->phase = P_FAILED;
  finish(d);
}

/* Who does not see `member` as `status` yet, for a failure message. */
static void laggards(const demo_t *d, int member, int status, char *out,
                     size_t cap) {
  out[0] = 0;
  for (int i = 0; i < d->n; i++) {
    const dnode_t *o = &d->nodes[i];
    if (!o->node || o->leaving || i == member || o->view[member] == status)
      continue;
    size_t k = strlen(out);
    snprintf(out + k, cap - k, "%s%s sees %s", k ? ", " : "", o->name,
             status_word(o->view[member]));
  }
}

static void on_left(lm_node_t *node, int status, void *ud) {
  dnode_t *o = ud;
  (void)status;
  if (o->node == node) {
    o->node = NULL;
    o->gone = 1;
    lm_node_close(node, NULL, NULL);
  }
}

/* The script, one step per phase; a step starts once the previous one is
 * done and PAUSE_MS have passed. */
static void on_tick(uv_timer_t *t) {
  demo_t *d = t->data;
  double now = now_s();
  if (el(d) > d->limit_s) {
    char who[400];
    switch (d->phase) {
    case P_START:
      fail(d, "the nodes did not converge within %.0f s", d->limit_s);
      return;
    case P_KILL:
      laggards(d, d->victim, LM_DEAD, who, sizeof who);
      fail(d, "%s not dead everywhere after %.0f s: %s",
           d->nodes[d->victim].name, d->limit_s, who);
      return;
    case P_RESTART:
      laggards(d, d->victim, LM_ALIVE, who, sizeof who);
      fail(d, "%s not back alive everywhere after %.0f s: %s",
           d->nodes[d->victim].name, d->limit_s, who);
      return;
    case P_LEAVE:
      laggards(d, d->leaver, LM_LEFT, who, sizeof who);
      fail(d, "%s not seen as left everywhere after %.0f s: %s",
           d->nodes[d->leaver].name, d->limit_s, who);
      return;
    default: break;
    }
  }
  note_progress(d);
  dnode_t *v = &d->nodes[d->victim], *l = &d->nodes[d->leaver];
  switch (d->phase) {
  case P_START:
    if (!d->t_converged)
      break;
    if (!d->hold_until) {
      say(d, "converged: every node sees %d alive", d->n);
      d->hold_until = now + PAUSE_MS / 1000.0;
    }
    if (now < d->hold_until)
      break;
    d->hold_until = 0;
    d->phase = P_KILL;
    set_phase(d, "step 2/4: %s crashes (no leave) -> suspect, then dead "
              "everywhere", v->name);
    d->t_kill = now_s();
    lm_node_close(v->node, NULL, NULL);
    v->node = NULL;
    say(d, "%s killed", v->name);
    break;
  case P_KILL:
    if (!d->t_dead_all)
      break;
    if (!d->hold_until) {
      say(d, "%s is dead everywhere", v->name);
      d->hold_until = now + PAUSE_MS / 1000.0;
    }
    if (now < d->hold_until)
      break;
    d->hold_until = 0;
    d->phase = P_RESTART;
    v->generation++;
    set_phase(d, "step 3/4: %s restarts, generation +1 -> alive everywhere "
              "again", v->name);
    d->t_restart = now_s();
    if (start_node(d, d->victim, d->nodes[0].addr)) {
      fail(d, "%s", d->failure);
      return;
    }
    say(d, "%s restarted on %s, joining through n1", v->name, v->addr);
    break;
  case P_RESTART:
    if (!d->t_back_all || !d->t_reconverged)
      break;
    if (!d->hold_until) {
      say(d, "%s is alive everywhere again", v->name);
      d->hold_until = now + PAUSE_MS / 1000.0;
    }
    if (now < d->hold_until)
      break;
    d->hold_until = 0;
    d->phase = P_LEAVE;
    set_phase(d, "step 4/4: %s leaves gracefully -> left everywhere, not "
              "dead", l->name);
    d->t_leave = now_s();
    l->leaving = 1;
    {
      int rc = lm_node_leave(l->node, on_left, l);
      if (rc) {
        fail(d, "%s cannot leave: %s", l->name, lm_strerror(rc));
        return;
      }
    }
    say(d, "%s is leaving", l->name);
    break;
  case P_LEAVE:
    if (!d->t_left_all)
      break;
    if (!d->hold_until) {
      say(d, "%s is left everywhere", l->name);
      d->hold_until = now + PAUSE_MS / 1000.0;
      set_phase(d, "done: every step finished");
    }
    if (now < d->hold_until)
      break;
    d->phase = P_DONE;
    finish(d);
    return;
  default: break;
  }
  draw(d);
}

static void on_signal(uv_signal_t *s, int signum) {
  demo_t *d = s->data;
  fail(d, "interrupted by %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- command ---- */

static void demo_usage(void) {
  printf("Usage: livemesh demo [--nodes N] [--seconds S] "
         "[--probe-interval-ms MS]\n\n"
         "Runs N nodes (default 5, 3..%d) on 127.0.0.1 in this process and "
         "shows every\nnode's view of the mesh while a script plays: the "
         "nodes join; one crashes and\nis declared dead; it comes back; "
         "another leaves gracefully. Prints how long\neach step took, then "
         "exits 0 (1 if a step did not finish within S seconds,\ndefault "
         "60).\n\n"
         "On a terminal the table is redrawn in place (NO_COLOR turns colors "
         "off); on\nanything else one line is printed per event.\n",
         DEMO_MAX);
}

static int parse_num(const char *flag, const char *v, long lo, long hi,
                     long *out) {
  char *end;
  long x = strtol(v, &end, 10);
  if (!*v || *end || x < lo || x > hi) {
    fprintf(stderr, "livemesh demo: %s: expected a whole number from %ld to "
            "%ld, got \"%s\"\n", flag, lo, hi, v);
    return -1;
  }
  *out = x;
  return 0;
}

int lm__cmd_demo(int argc, char **argv) {
  long nodes = 5, seconds = 60, probe = SWIM_DEFAULT_PROBE_INTERVAL_MS;
  int verbose = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      demo_usage();
      return LM__EXIT_OK;
    }
    if (!strcmp(a, "--verbose")) {
      verbose = 1;
      continue;
    }
    const char *names[] = {"--nodes", "--seconds", "--probe-interval-ms"};
    int which = -1;
    for (int k = 0; k < 3; k++) {
      size_t n = strlen(names[k]);
      if (!strncmp(a, names[k], n) && (a[n] == 0 || a[n] == '=')) {
        which = k;
        v = a[n] == '=' ? a + n + 1 : NULL;
      }
    }
    if (which < 0) {
      fprintf(stderr, "livemesh demo: unknown %s \"%s\" (see livemesh demo "
              "--help)\n", a[0] == '-' ? "flag" : "argument", a);
      return LM__EXIT_USAGE;
    }
    if (!v) {
      if (i + 1 >= argc) {
        fprintf(stderr, "livemesh demo: %s needs a value\n", a);
        return LM__EXIT_USAGE;
      }
      v = argv[++i];
    }
    int rc = which == 0   ? parse_num("--nodes", v, DEMO_MIN, DEMO_MAX, &nodes)
             : which == 1 ? parse_num("--seconds", v, 5, 3600, &seconds)
                          : parse_num("--probe-interval-ms", v, 50, 10000,
                                      &probe);
    if (rc)
      return LM__EXIT_USAGE;
  }

  demo_t *d = calloc(1, sizeof *d);
  if (!d) {
    fprintf(stderr, "livemesh demo: out of memory\n");
    return LM__EXIT_FAIL;
  }
  d->n = (int)nodes;
  d->limit_s = (double)seconds;
  d->probe_ms = (uint32_t)probe;
  d->verbose = verbose;
  d->victim = d->n >= 4 ? 2 : 1;
  d->leaver = d->victim + 1;
  d->quiet_joins = d->n > 8;
  const char *term = getenv("TERM");
  d->tty = isatty(STDOUT_FILENO) && term && strcmp(term, "dumb") != 0;
  if (d->tty) {
    struct winsize ws;
    int cols = 0, rows = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
      cols = ws.ws_col;
      rows = ws.ws_row;
    }
    int width = 10 + d->n * (table_compact(d) ? 2 : 4);
    /* a frame that does not fit cannot be redrawn in place */
    if ((rows && frame_lines(d) >= rows) || (cols && width + 12 > cols) ||
        (cols && cols < 80))
      d->tty = 0;
  }
  d->color = d->tty && !getenv("NO_COLOR");

  uint8_t cluster_sk[LM_SECRETKEY_BYTES];
  int rc = lm_cluster_keygen(d->trusted[0], cluster_sk);
  uint32_t gen = (uint32_t)time(NULL);
  for (int i = 0; i < d->n && rc == 0; i++) {
    dnode_t *o = &d->nodes[i];
    o->d = d;
    o->idx = i;
    o->generation = gen;
    snprintf(o->name, sizeof o->name, "n%d", i + 1);
    rc = lm_identity_issue(&o->id, o->name, cluster_sk, 86400);
  }
  memset(cluster_sk, 0, sizeof cluster_sk);
  if (rc) {
    fprintf(stderr, "livemesh demo: cannot make identities: %s\n",
            lm_strerror(rc));
    free(d);
    return LM__EXIT_FAIL;
  }
  uv_loop_init(&d->loop);
  uv_timer_init(&d->loop, &d->tick);
  uv_signal_init(&d->loop, &d->sigint);
  uv_signal_init(&d->loop, &d->sigterm);
  d->tick.data = d->sigint.data = d->sigterm.data = d;
  uv_signal_start(&d->sigint, on_signal, SIGINT);
  uv_signal_start(&d->sigterm, on_signal, SIGTERM);

  if (d->tty)
    printf("\033[?25l"); /* no cursor blinking over the table */
  else
    printf("livemesh demo: %d nodes on 127.0.0.1 in one process, a probe "
           "every %u ms\n", d->n, d->probe_ms);
  d->t0 = now_s();
  set_phase(d, "step 1/4: %d nodes start and join through n1 -> all alive "
            "everywhere", d->n);
  for (int i = 0; i < d->n; i++) {
    if (start_node(d, i, i ? d->nodes[0].addr : NULL)) {
      fail(d, "%s", d->failure);
      break;
    }
    if (!d->quiet_joins || i == 0)
      say(d, "%s started on %s%s", d->nodes[i].name, d->nodes[i].addr,
          i ? ", joining through n1" : "");
  }
  if (d->quiet_joins && !d->finished)
    say(d, "n2..n%d started, all joining through n1", d->n);
  if (!d->finished) {
    draw(d);
    uv_timer_start(&d->tick, on_tick, TICK_MS, TICK_MS);
  }
  uv_run(&d->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&d->loop))
    fprintf(stderr, "livemesh demo: the event loop did not close cleanly\n");
  if (d->tty)
    printf("\033[?25h");

  int code = LM__EXIT_OK;
  if (d->phase == P_DONE) {
    char a[32], b[32], c[32], e[32];
    dur(a, sizeof a, d->t_first_suspect - d->t_kill);
    dur(b, sizeof b, d->t_dead_all - d->t_kill);
    dur(c, sizeof c, d->t_back_all - d->t_restart);
    dur(e, sizeof e, d->t_left_all - d->t_leave);
    printf("\n%s killed: first suspect after %s, dead everywhere after %s; "
           "back alive everywhere after %s; %s left: seen as left everywhere "
           "after %s\n",
           d->nodes[d->victim].name, a, b, c, d->nodes[d->leaver].name, e);
    printf("(%d nodes converged after %.1f s; probe interval %u ms)\n", d->n,
           d->t_converged - d->t0, d->probe_ms);
  } else {
    printf("\nlivemesh demo: %s\n", d->failure);
    code = LM__EXIT_FAIL;
  }
  for (int i = 0; i < d->n; i++)
    lm_identity_wipe(&d->nodes[i].id);
  free(d);
  return code;
}
