/*
 * report.h: lm_report, what livemesh-sim and livemesh-bench share so that
 * they read their flags and report a run the same way (the fields are in
 * docs/benchmarks.md and docs/simulator.md): strict parsers for numeric flags,
 * nearest-rank percentile distributions and their JSON form, peak RSS, and
 * the few command-line chores (fatal exits, getopt errors, a seed from the
 * clock) whose wording both tools must keep alike.
 *
 * Pure C and jansson. Must never depend on libuv, swim/, the simulator
 * (simnet) or mesh/: both tools link it, and a result is comparable only
 * if both measured it with the same code.
 */
#ifndef LM_REPORT_H
#define LM_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Exit status for a bad command line; other fatal errors exit 1. */
#define LM_REPORT_EXIT_USAGE 2

/* ------------------------------------------------------------ parsers -- */

/* Each returns 0 and sets *out, or returns -1 and leaves *out alone. The
 * whole string must be the number: no sign, no leading blank, no trailing
 * text, nothing that overflows. */

/* Decimal, or 0x hex, or 0-prefixed octal (strtoull base 0). */
int lm_parse_u64(uint64_t *out, const char *s);
int lm_parse_u32(uint32_t *out, const char *s);
/* Any finite double (a sign is allowed here). */
int lm_parse_double(double *out, const char *s);
/* A finite double in 0..1, both ends included. */
int lm_parse_fraction(double *out, const char *s);

/* Longest time lm_parse_time_ms accepts, 31.7 years: more than any run
 * can last (a longer one is a typo), and far below 2^53, so the conversion
 * from double is exact. */
#define LM_PARSE_TIME_MAX_MS 1e12
/* "10", "2.5", "10s", "1500ms", "2m" -> milliseconds, rounded to the
 * nearest; a bare number is seconds. Never negative. */
int lm_parse_time_ms(uint64_t *out, const char *s);

/* "json" -> 1, "text" -> 0 (the -o flag). */
int lm_parse_output(int *json, const char *s);

/* ------------------------------------------------------- distribution -- */

/* Percentiles by nearest rank: the smallest sample with at least p% of the
 * samples at or below it. n == 0: no sample, the others are 0. */
typedef struct lm_report_dist {
  size_t n;
  int64_t p50, p99, max;
} lm_report_dist_t;

/* Sorts v (n samples) in place. */
lm_report_dist_t lm_report_dist(int64_t *v, size_t n);
/* {"p50":..,"p99":..,"max":..}, all null when there is no sample, and
 * with_n adds "n" (livemesh-bench does: a killed node never detected is
 * left out of the percentiles, and "n" shows it). A new reference; NULL
 * only when out of memory. */
json_t *lm_report_dist_json(const lm_report_dist_t *d, int with_n);

/* --------------------------------------------------------- the contract -- */

/* What a run made of its crashes, the core of the JSON both tools print.
 * Times in ms after each crash. */
typedef struct lm_report_outcome {
  lm_report_dist_t first;   /* until the first survivor marks it DEAD */
  lm_report_dist_t all;     /* until every survivor has */
  lm_report_dist_t suspect; /* until the first survivor suspects it */
  uint32_t undetected; /* killed, still alive or suspect to some survivor */
  uint32_t false_suspect, false_dead; /* healthy nodes, at least once */
  uint64_t false_suspect_events, false_dead_events;
} lm_report_outcome_t;

/* Sets detect_first_ms, detect_all_ms, suspect_first_ms, undetected,
 * false_suspect, false_dead, false_suspect_events and false_dead_events
 * on object o, in that order; with_n as for lm_report_dist_json. 0, or -1
 * when out of memory. */
int lm_report_outcome_json(json_t *o, const lm_report_outcome_t *oc,
                           int with_n);
/* Prints o on one line of stdout as both tools do (compact, reals to 10
 * significant digits) and drops the reference; exits as lm_report_die if
 * it cannot be encoded. */
void lm_report_json_print(const char *prog, json_t *o);

/* ------------------------------------------------------------ figures -- */

/* x rounded to 3 decimals: reports stay readable and diffable. */
double lm_report_round3(double x);
/* The same as a JSON real (a new reference). */
json_t *lm_report_real3(double x);
/* A duration in ms, or null for -1 (did not happen). */
json_t *lm_report_ms_or_null(int64_t ms);
/* Peak resident set of this process in MiB (getrusage), 0 if unknown. */
double lm_report_max_rss_mib(void);
/* A seed for a run not given --seed: differs between runs and processes. */
uint64_t lm_report_clock_seed(void);
/* "error", "warn", "info", "debug" for levels 0..3 (the LM_LOG_* and
 * SWIM_LOG_* numbering), "?" otherwise. */
const char *lm_report_level_name(int level);

/* ---------------------------------------------------------- exiting -- */

/* "PROG: message" on stderr, then exit(1). */
void lm_report_die(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* "PROG: message" and "(try PROG --help)" on stderr, then
 * exit(LM_REPORT_EXIT_USAGE). */
void lm_report_die_usage(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* For the ':' and '?' returns of getopt_long with opterr = 0 and an
 * optstring starting with ':': names the option missing its value or the
 * unknown one, then exits as lm_report_die_usage. */
void lm_report_getopt_error(const char *prog, int c, char **argv)
    __attribute__((noreturn));

#endif
