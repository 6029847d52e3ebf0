/*
 * test_report.c: unit tests of lm_report (sim/report.h), the flag parsers
 * and figures livemesh-sim and livemesh-bench share: what each parser takes
 * and refuses, nearest-rank percentiles on small arrays, the JSON shapes
 * of the shared contract, and the words and exit codes of a fatal error.
 *
 * Depends on lm_report, jansson and cmocka only.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <getopt.h>
#include <jansson.h>

#include "report.h"

#define SENTINEL_U64 0x5a5a5a5a5a5a5a5aULL
#define SENTINEL_D -12345.0

/* ---- parsers ------------------------------------------------------------ */

static void u64_ok(const char *s, uint64_t want) {
  uint64_t v = SENTINEL_U64;
  if (lm_parse_u64(&v, s) != 0)
    fail_msg("lm_parse_u64 refused '%s'", s);
  assert_true(v == want);
}

static void u64_bad(const char *s) {
  uint64_t v = SENTINEL_U64;
  if (lm_parse_u64(&v, s) != -1)
    fail_msg("lm_parse_u64 took '%s'", s ? s : "(null)");
  assert_true(v == SENTINEL_U64); /* untouched on failure */
}

static void test_parse_u64(void **state) {
  (void)state;
  u64_ok("0", 0);
  u64_ok("42", 42);
  u64_ok("0x10", 16);
  u64_ok("18446744073709551615", UINT64_MAX);
  u64_bad(NULL);
  u64_bad("");
  u64_bad("-1");
  u64_bad(" -1"); /* strtoull would wrap it to 2^64-1 */
  u64_bad("+1");
  u64_bad(" 1");
  u64_bad("abc");
  u64_bad("10x");
  u64_bad("1e3");
  u64_bad("1.5");
  u64_bad("1e400");
  u64_bad("18446744073709551616");
}

static void test_parse_u32(void **state) {
  (void)state;
  uint32_t v = 7;
  assert_int_equal(lm_parse_u32(&v, "4294967295"), 0);
  assert_true(v == UINT32_MAX);
  assert_int_equal(lm_parse_u32(&v, "0"), 0);
  assert_int_equal(v, 0);
  v = 7;
  assert_int_equal(lm_parse_u32(&v, "4294967296"), -1);
  assert_int_equal(lm_parse_u32(&v, "-1"), -1);
  assert_int_equal(lm_parse_u32(&v, "abc"), -1);
  assert_int_equal(lm_parse_u32(&v, "10x"), -1);
  assert_int_equal(v, 7);
}

static void double_bad(const char *s) {
  double v = SENTINEL_D;
  if (lm_parse_double(&v, s) != -1)
    fail_msg("lm_parse_double took '%s'", s ? s : "(null)");
  assert_true(v == SENTINEL_D);
}

static void test_parse_double(void **state) {
  (void)state;
  double v;
  assert_int_equal(lm_parse_double(&v, "2.5"), 0);
  assert_true(v == 2.5);
  assert_int_equal(lm_parse_double(&v, "-1.5"), 0);
  assert_true(v == -1.5);
  assert_int_equal(lm_parse_double(&v, "1e3"), 0);
  assert_true(v == 1000.0);
  double_bad(NULL);
  double_bad("");
  double_bad("abc");
  double_bad("1e400");
  double_bad("1e-400"); /* underflow is an error too (ERANGE) */
  double_bad("nan");
  double_bad("inf");
  double_bad("10x");
}

static void fraction_bad(const char *s) {
  double v = SENTINEL_D;
  if (lm_parse_fraction(&v, s) != -1)
    fail_msg("lm_parse_fraction took '%s'", s);
  assert_true(v == SENTINEL_D);
}

static void test_parse_fraction(void **state) {
  (void)state;
  double v;
  assert_int_equal(lm_parse_fraction(&v, "0"), 0);
  assert_true(v == 0.0);
  assert_int_equal(lm_parse_fraction(&v, "1"), 0);
  assert_true(v == 1.0);
  assert_int_equal(lm_parse_fraction(&v, "0.25"), 0);
  assert_true(v == 0.25);
  fraction_bad("-0.1");
  fraction_bad("-1");
  fraction_bad("1.0001");
  fraction_bad("2");
  fraction_bad("1e400");
  fraction_bad("abc");
  fraction_bad("nan");
  fraction_bad("");
}

static void time_ok(const char *s, uint64_t want) {
  uint64_t v = SENTINEL_U64;
  if (lm_parse_time_ms(&v, s) != 0)
    fail_msg("lm_parse_time_ms refused '%s'", s);
  if (v != want)
    fail_msg("'%s': %llu ms, want %llu", s, (unsigned long long)v,
             (unsigned long long)want);
}

static void time_bad(const char *s) {
  uint64_t v = SENTINEL_U64;
  if (lm_parse_time_ms(&v, s) != -1)
    fail_msg("lm_parse_time_ms took '%s'", s ? s : "(null)");
  assert_true(v == SENTINEL_U64);
}

static void test_parse_time_ms(void **state) {
  (void)state;
  time_ok("1500ms", 1500);
  time_ok("2.5", 2500);     /* a bare number is seconds */
  time_ok("2m", 120000);
  time_ok("10s", 10000);
  time_ok("10", 10000);
  time_ok("0", 0);
  time_ok("0.5m", 30000);
  time_ok("0.0004", 0); /* rounded to the nearest ms */
  time_ok("0.0006", 1);
  time_ok("1e9", 1000000000000ULL); /* exactly the limit */
  time_bad(NULL);
  time_bad("");
  time_bad("-1");
  time_bad("-0.5s");
  time_bad("abc");
  time_bad("1e400");
  time_bad("10x");
  time_bad("10h");
  time_bad("10 s");
  time_bad("ms");
  time_bad("nan");
  time_bad("inf");
  time_bad("1.1e9"); /* past LM_PARSE_TIME_MAX_MS */
  time_bad("1e10");
}

static void test_parse_output(void **state) {
  (void)state;
  int json = 5;
  assert_int_equal(lm_parse_output(&json, "json"), 0);
  assert_int_equal(json, 1);
  assert_int_equal(lm_parse_output(&json, "text"), 0);
  assert_int_equal(json, 0);
  json = 5;
  assert_int_equal(lm_parse_output(&json, "xml"), -1);
  assert_int_equal(lm_parse_output(&json, "JSON"), -1);
  assert_int_equal(lm_parse_output(&json, ""), -1);
  assert_int_equal(lm_parse_output(&json, NULL), -1);
  assert_int_equal(json, 5);
}

/* ---- distribution ------------------------------------------------------- */

static void test_dist_empty(void **state) {
  (void)state;
  lm_report_dist_t d = lm_report_dist(NULL, 0);
  assert_int_equal(d.n, 0);
  assert_int_equal(d.p50, 0);
  assert_int_equal(d.p99, 0);
  assert_int_equal(d.max, 0);
}

static void test_dist_one(void **state) {
  (void)state;
  int64_t v[] = {7};
  lm_report_dist_t d = lm_report_dist(v, 1);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.p50, 7);
  assert_int_equal(d.p99, 7);
  assert_int_equal(d.max, 7);
}

/* Nearest rank: p50 of 2 is the 1st, of 3 the 2nd, of 4 the 2nd; p99 of
 * anything up to 100 samples is the largest. */
static void test_dist_small(void **state) {
  (void)state;
  int64_t two[] = {20, 10};
  lm_report_dist_t d = lm_report_dist(two, 2);
  assert_int_equal(d.p50, 10);
  assert_int_equal(d.p99, 20);
  assert_int_equal(d.max, 20);

  int64_t three[] = {3, -5, -1}; /* signed: sorted -5, -1, 3 */
  d = lm_report_dist(three, 3);
  assert_int_equal(d.p50, -1);
  assert_int_equal(d.p99, 3);
  assert_int_equal(d.max, 3);
  assert_int_equal(three[0], -5); /* sorted in place */
  assert_int_equal(three[2], 3);

  int64_t four[] = {4, 1, 3, 2};
  d = lm_report_dist(four, 4);
  assert_int_equal(d.p50, 2);
  assert_int_equal(d.p99, 4);

  int64_t ten[] = {10, 3, 7, 1, 9, 2, 8, 5, 6, 4};
  d = lm_report_dist(ten, 10);
  assert_int_equal(d.n, 10);
  assert_int_equal(d.p50, 5);
  assert_int_equal(d.p99, 10);
  assert_int_equal(d.max, 10);
}

static void test_dist_ranks(void **state) {
  (void)state;
  int64_t v[200];
  /* 1..100 backwards: p50 the 50th, p99 the 99th */
  for (int i = 0; i < 100; i++)
    v[i] = 100 - i;
  lm_report_dist_t d = lm_report_dist(v, 100);
  assert_int_equal(d.p50, 50);
  assert_int_equal(d.p99, 99);
  assert_int_equal(d.max, 100);
  /* 1..200: p99 is the 198th, below the largest two */
  for (int i = 0; i < 200; i++)
    v[i] = (i * 73) % 200 + 1; /* a permutation of 1..200 */
  d = lm_report_dist(v, 200);
  assert_int_equal(d.p50, 100);
  assert_int_equal(d.p99, 198);
  assert_int_equal(d.max, 200);
  /* 101 samples: p50 is the 51st, p99 the 100th */
  for (int i = 0; i < 101; i++)
    v[i] = i;
  d = lm_report_dist(v, 101);
  assert_int_equal(d.p50, 50);
  assert_int_equal(d.p99, 99);
  assert_int_equal(d.max, 100);
}

static void assert_json(json_t *j, const char *want) {
  assert_non_null(j);
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY |
                              JSON_REAL_PRECISION(10));
  assert_non_null(s);
  assert_string_equal(s, want);
  free(s);
  json_decref(j);
}

static void test_dist_json(void **state) {
  (void)state;
  lm_report_dist_t none = {0};
  assert_json(lm_report_dist_json(&none, 0),
              "{\"p50\":null,\"p99\":null,\"max\":null}");
  assert_json(lm_report_dist_json(&none, 1),
              "{\"p50\":null,\"p99\":null,\"max\":null,\"n\":0}");
  lm_report_dist_t d = {.n = 3, .p50 = 5, .p99 = 9, .max = 12};
  assert_json(lm_report_dist_json(&d, 0),
              "{\"p50\":5,\"p99\":9,\"max\":12}");
  assert_json(lm_report_dist_json(&d, 1),
              "{\"p50\":5,\"p99\":9,\"max\":12,\"n\":3}");
}

/* The contract's names and order (docs/benchmarks.md). */
static void test_outcome_json(void **state) {
  (void)state;
  lm_report_outcome_t oc = {.first = {.n = 1, .p50 = 3, .p99 = 3, .max = 3},
                            .undetected = 1,
                            .false_suspect = 2,
                            .false_dead = 3,
                            .false_suspect_events = 4,
                            .false_dead_events = 5};
  json_t *o = json_pack("{s:i}", "killed", 2);
  assert_int_equal(lm_report_outcome_json(o, &oc, 0), 0);
  assert_json(o, "{\"killed\":2,"
                 "\"detect_first_ms\":{\"p50\":3,\"p99\":3,\"max\":3},"
                 "\"detect_all_ms\":{\"p50\":null,\"p99\":null,\"max\":null},"
                 "\"suspect_first_ms\":{\"p50\":null,\"p99\":null,"
                 "\"max\":null},"
                 "\"undetected\":1,\"false_suspect\":2,\"false_dead\":3,"
                 "\"false_suspect_events\":4,\"false_dead_events\":5}");
  o = json_object();
  assert_int_equal(lm_report_outcome_json(o, &oc, 1), 0);
  json_t *first = json_object_get(o, "detect_first_ms");
  assert_int_equal(json_integer_value(json_object_get(first, "n")), 1);
  json_t *all = json_object_get(o, "detect_all_ms");
  assert_int_equal(json_integer_value(json_object_get(all, "n")), 0);
  json_decref(o);
}

/* ---- figures ------------------------------------------------------------ */

static void test_figures(void **state) {
  (void)state;
  assert_true(lm_report_round3(1.23449) == 1.234);
  assert_true(lm_report_round3(1.2345) == 1.235 ||
              lm_report_round3(1.2345) == 1.234); /* binary halfway */
  assert_true(lm_report_round3(-2.0006) == -2.001);
  assert_true(lm_report_round3(90.0) == 90.0);
  assert_json(lm_report_real3(226.45678), "226.457");
  assert_json(lm_report_real3(0), "0.0");
  assert_json(lm_report_ms_or_null(-1), "null");
  assert_json(lm_report_ms_or_null(0), "0");
  assert_json(lm_report_ms_or_null(1500), "1500");
  assert_string_equal(lm_report_level_name(0), "error");
  assert_string_equal(lm_report_level_name(1), "warn");
  assert_string_equal(lm_report_level_name(2), "info");
  assert_string_equal(lm_report_level_name(3), "debug");
  assert_string_equal(lm_report_level_name(4), "?");
  assert_string_equal(lm_report_level_name(-1), "?");
  assert_true(lm_report_max_rss_mib() > 0);
  uint64_t a = lm_report_clock_seed();
  struct timespec ms = {0, 1000000};
  nanosleep(&ms, NULL);
  assert_true(lm_report_clock_seed() != a);
}

/* ---- exiting ------------------------------------------------------------ */

typedef enum { DIE, DIE_USAGE, GETOPT } how_t;

/* Runs one fatal call in a child; returns its exit status and stderr. */
static int run_child(how_t how, char **argv, int argc, char *err,
                     size_t cap) {
  int fd[2];
  assert_int_equal(pipe(fd), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fd[1], 2);
    close(fd[0]);
    close(fd[1]);
    if (how == DIE)
      lm_report_die("prog", "cannot do %s (%d)", "that", 3);
    if (how == DIE_USAGE)
      lm_report_die_usage("prog", "--x: bad '%s'", "y");
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 256}, {NULL, 0, NULL, 0}};
    optind = 0; /* GNU: start afresh */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:vh", opts, NULL)) != -1)
      if (c != 'v' && c != 'h' && c != 'o' && c != 256)
        lm_report_getopt_error("prog", c, argv);
    _exit(99);
  }
  close(fd[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(fd[0], err + n, cap - 1 - n)) > 0)
    n += (size_t)r;
  err[n] = '\0';
  close(fd[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static void test_die(void **state) {
  (void)state;
  char err[512];
  assert_int_equal(run_child(DIE, NULL, 0, err, sizeof err), 1);
  assert_string_equal(err, "prog: cannot do that (3)\n");
  assert_int_equal(run_child(DIE_USAGE, NULL, 0, err, sizeof err),
                   LM_REPORT_EXIT_USAGE);
  assert_string_equal(err, "prog: --x: bad 'y'\n(try prog --help)\n");
}

static void test_getopt_error(void **state) {
  (void)state;
  char err[512];
  char a0[] = "prog", a1[] = "--bogus", a2[] = "-x", a3[] = "--nodes",
       a4[] = "-o", a5[] = "-v";
  char *unknown_long[] = {a0, a5, a1, NULL};
  assert_int_equal(run_child(GETOPT, unknown_long, 3, err, sizeof err), 2);
  assert_string_equal(err,
                      "prog: unknown option '--bogus'\n(try prog --help)\n");
  char *unknown_short[] = {a0, a2, NULL};
  assert_int_equal(run_child(GETOPT, unknown_short, 2, err, sizeof err), 2);
  assert_string_equal(err, "prog: unknown option '-x'\n(try prog --help)\n");
  char *no_value_long[] = {a0, a3, NULL};
  assert_int_equal(run_child(GETOPT, no_value_long, 2, err, sizeof err), 2);
  assert_string_equal(err, "prog: --nodes needs a value\n(try prog --help)\n");
  char *no_value_short[] = {a0, a4, NULL};
  assert_int_equal(run_child(GETOPT, no_value_short, 2, err, sizeof err), 2);
  assert_string_equal(err, "prog: -o needs a value\n(try prog --help)\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_u64),
      cmocka_unit_test(test_parse_u32),
      cmocka_unit_test(test_parse_double),
      cmocka_unit_test(test_parse_fraction),
      cmocka_unit_test(test_parse_time_ms),
      cmocka_unit_test(test_parse_output),
      cmocka_unit_test(test_dist_empty),
      cmocka_unit_test(test_dist_one),
      cmocka_unit_test(test_dist_small),
      cmocka_unit_test(test_dist_ranks),
      cmocka_unit_test(test_dist_json),
      cmocka_unit_test(test_outcome_json),
      cmocka_unit_test(test_figures),
      cmocka_unit_test(test_die),
      cmocka_unit_test(test_getopt_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
