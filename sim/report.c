/*
 * report.c: lm_report, the code livemesh-sim and livemesh-bench share to
 * parse their flags and report a run (see report.h).
 */
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ parsers -- */

int lm_parse_u64(uint64_t *out, const char *s) {
  /* strtoull skips blanks and accepts a sign, and "-1" (or " -1") wraps to
   * 2^64-1: only a digit may start the number. */
  if (!s || *s < '0' || *s > '9')
    return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end)
    return -1;
  *out = v;
  return 0;
}

int lm_parse_u32(uint32_t *out, const char *s) {
  uint64_t v;
  if (lm_parse_u64(&v, s) != 0 || v > UINT32_MAX)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

int lm_parse_double(double *out, const char *s) {
  if (!s || !*s)
    return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !isfinite(v))
    return -1;
  *out = v;
  return 0;
}

int lm_parse_fraction(double *out, const char *s) {
  double v;
  if (lm_parse_double(&v, s) != 0 || v < 0 || v > 1)
    return -1;
  *out = v;
  return 0;
}

int lm_parse_time_ms(uint64_t *out, const char *s) {
  if (!s || !*s)
    return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || !isfinite(v) || v < 0)
    return -1;
  double mult;
  if (!*end || strcmp(end, "s") == 0)
    mult = 1000;
  else if (strcmp(end, "ms") == 0)
    mult = 1;
  else if (strcmp(end, "m") == 0)
    mult = 60000;
  else
    return -1;
  double ms = v * mult;
  if (ms > LM_PARSE_TIME_MAX_MS)
    return -1;
  *out = (uint64_t)llround(ms);
  return 0;
}

int lm_parse_output(int *json, const char *s) {
  if (!s)
    return -1;
  if (strcmp(s, "json") == 0)
    *json = 1;
  else if (strcmp(s, "text") == 0)
    *json = 0;
  else
    return -1;
  return 0;
}

/* ------------------------------------------------------- distribution -- */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

lm_report_dist_t lm_report_dist(int64_t *v, size_t n) {
  lm_report_dist_t d = {.n = n};
  if (!n)
    return d;
  qsort(v, n, sizeof *v, cmp_i64);
  d.p50 = v[(size_t)ceil(0.50 * (double)n) - 1];
  d.p99 = v[(size_t)ceil(0.99 * (double)n) - 1];
  d.max = v[n - 1];
  return d;
}

json_t *lm_report_dist_json(const lm_report_dist_t *d, int with_n) {
  json_t *o = d->n ? json_pack("{s:I,s:I,s:I}", "p50", (json_int_t)d->p50,
                               "p99", (json_int_t)d->p99, "max",
                               (json_int_t)d->max)
                   : json_pack("{s:n,s:n,s:n}", "p50", "p99", "max");
  if (o && with_n &&
      json_object_set_new(o, "n", json_integer((json_int_t)d->n)) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ------------------------------------------------------- the contract -- */

int lm_report_outcome_json(json_t *o, const lm_report_outcome_t *oc,
                           int with_n) {
  int rc = 0;
  rc |= json_object_set_new(o, "detect_first_ms",
                            lm_report_dist_json(&oc->first, with_n));
  rc |= json_object_set_new(o, "detect_all_ms",
                            lm_report_dist_json(&oc->all, with_n));
  rc |= json_object_set_new(o, "suspect_first_ms",
                            lm_report_dist_json(&oc->suspect, with_n));
  rc |= json_object_set_new(o, "undetected", json_integer(oc->undetected));
  rc |= json_object_set_new(o, "false_suspect",
                            json_integer(oc->false_suspect));
  rc |= json_object_set_new(o, "false_dead", json_integer(oc->false_dead));
  rc |= json_object_set_new(o, "false_suspect_events",
                            json_integer((json_int_t)oc->false_suspect_events));
  rc |= json_object_set_new(o, "false_dead_events",
                            json_integer((json_int_t)oc->false_dead_events));
  return rc ? -1 : 0;
}

void lm_report_json_print(const char *prog, json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
  if (!s)
    lm_report_die(prog, "cannot encode JSON");
  puts(s);
  free(s);
  json_decref(o);
}

/* ------------------------------------------------------------ figures -- */

double lm_report_round3(double x) { return round(x * 1000.0) / 1000.0; }

json_t *lm_report_real3(double x) { return json_real(lm_report_round3(x)); }

json_t *lm_report_ms_or_null(int64_t ms) {
  return ms < 0 ? json_null() : json_integer(ms);
}

double lm_report_max_rss_mib(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is KiB on Linux */
}

uint64_t lm_report_clock_seed(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^
         (uint64_t)getpid() << 32;
}

const char *lm_report_level_name(int level) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  return level >= 0 && level <= 3 ? names[level] : "?";
}

/* ---------------------------------------------------------- exiting -- */

static void vfail(const char *prog, int usage, const char *fmt, va_list ap) {
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  if (usage)
    fprintf(stderr, "\n(try %s --help)\n", prog);
  else
    fputc('\n', stderr);
}

void lm_report_die(const char *prog, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(prog, 0, fmt, ap);
  va_end(ap);
  exit(1);
}

void lm_report_die_usage(const char *prog, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(prog, 1, fmt, ap);
  va_end(ap);
  exit(LM_REPORT_EXIT_USAGE);
}

void lm_report_getopt_error(const char *prog, int c, char **argv) {
  if (c == ':')
    lm_report_die_usage(prog, "%s needs a value", argv[optind - 1]);
  if (optopt)
    lm_report_die_usage(prog, "unknown option '-%c'", optopt);
  lm_report_die_usage(prog, "unknown option '%s'", argv[optind - 1]);
}
