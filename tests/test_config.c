/*
 * test_config.c: the agent's configuration layers (mesh/agent/config.c): flags
 * over environment over config file over defaults, a list from a higher
 * layer replacing a lower one, validation where a value is found with the
 * place named in the message, and the reload diff.
 *
 * Environments are passed explicitly, so the test never depends on the
 * environment it runs in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char tmpdir[64];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/lm-config.XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

/* Loads argv (NULL-terminated) with env (NULL-terminated). */
static int load(lm__config_t *c, char *err, const char **argv,
                const char **env) {
  int argc = 0;
  while (argv && argv[argc])
    argc++;
  static const char *none[] = {NULL};
  err[0] = 0;
  return lm__config_load(c, argc, (char *const *)argv,
                         (char *const *)(env ? env : none), err, 512);
}

static void test_defaults(void **state) {
  (void)state;
  lm__config_t c;
  char err[512];
  const char *argv[] = {"--data-dir", "/srv/lm", NULL};
  assert_int_equal(load(&c, err, argv, NULL), LM__CFG_OK);
  assert_string_equal(c.bind, "0.0.0.0:7946");
  assert_string_equal(c.cluster, "livemesh");
  assert_string_equal(c.node_key, "/srv/lm/node.key");
  assert_string_equal(c.node_cert, "/srv/lm/node.cert");
  assert_int_equal(c.log_level, 2);
  assert_int_equal(c.log_format, LM__LOGFMT_TEXT);
  assert_null(c.name);
  assert_int_equal(c.join.n, 0);
  assert_int_equal(c.probe_interval_ms, 0); /* runtime default */
  assert_non_null(c.socket);
  lm__config_free(&c);
}

static void test_precedence(void **state) {
  (void)state;
  const char *file = write_file(
      "agent.json", "{\"name\": \"f\", \"bind\": \"127.0.0.1:1\", "
                    "\"advertise\": \"10.0.0.1:1\", \"join\": [\"1.1.1.1:1\", "
                    "\"2.2.2.2:2\"], \"probe_interval_ms\": 2000, "
                    "\"log_level\": \"warn\"}");
  char cfgvar[160];
  snprintf(cfgvar, sizeof cfgvar, "LIVEMESH_CONFIG=%s", file);
  const char *env[] = {cfgvar, "LIVEMESH_NAME=e", "LIVEMESH_BIND=127.0.0.1:2",
                       "LIVEMESH_JOIN= 3.3.3.3:3 ,4.4.4.4:4,", NULL};
  const char *argv[] = {"--name", "x", "--name=g", "--log-level", "debug",
                        NULL};
  lm__config_t c;
  char err[512];
  assert_int_equal(load(&c, err, argv, env), LM__CFG_OK);
  assert_string_equal(c.name, "g");              /* flag, the last one */
  assert_string_equal(c.bind, "127.0.0.1:2");     /* environment */
  assert_string_equal(c.advertise, "10.0.0.1:1"); /* file */
  assert_int_equal(c.probe_interval_ms, 2000);    /* file */
  assert_int_equal(c.log_level, 3);               /* flag over file */
  /* the environment's list replaces the file's, blanks trimmed */
  assert_int_equal(c.join.n, 2);
  assert_string_equal(c.join.v[0], "3.3.3.3:3");
  assert_string_equal(c.join.v[1], "4.4.4.4:4");
  lm__config_free(&c);

  /* repeated flags add up, and replace the environment's list */
  const char *argv2[] = {"--join", "5.5.5.5:5", "--join=6.6.6.6:6", NULL};
  assert_int_equal(load(&c, err, argv2, env), LM__CFG_OK);
  assert_int_equal(c.join.n, 2);
  assert_string_equal(c.join.v[0], "5.5.5.5:5");
  assert_string_equal(c.join.v[1], "6.6.6.6:6");
  lm__config_free(&c);

  /* an empty variable counts as unset */
  const char *env3[] = {"LIVEMESH_NAME=", NULL};
  assert_int_equal(load(&c, err, NULL, env3), LM__CFG_OK);
  assert_null(c.name);
  lm__config_free(&c);
}

static void test_derived_paths(void **state) {
  (void)state;
  lm__config_t c;
  char err[512];
  const char *argv[] = {"--node-key", "/k/web1.key", NULL};
  assert_int_equal(load(&c, err, argv, NULL), LM__CFG_OK);
  assert_string_equal(c.node_cert, "/k/web1.cert");
  lm__config_free(&c);
  const char *argv2[] = {"--node-key", "/k/web1", "--data-dir", "/d", NULL};
  assert_int_equal(load(&c, err, argv2, NULL), LM__CFG_OK);
  assert_string_equal(c.node_cert, "/d/node.cert");
  lm__config_free(&c);
  /* cluster.pub in the data dir is trusted when no key is given */
  char dd[128];
  snprintf(dd, sizeof dd, "%s", tmpdir);
  write_file("cluster.pub", "x\n");
  const char *argv3[] = {"--data-dir", dd, NULL};
  assert_int_equal(load(&c, err, argv3, NULL), LM__CFG_OK);
  assert_int_equal(c.cluster_keys.n, 1);
  assert_non_null(strstr(c.cluster_keys.v[0], "/cluster.pub"));
  lm__config_free(&c);
}

static void expect_error(const char **argv, const char **env,
                         const char *needle) {
  lm__config_t c;
  char err[512];
  assert_int_equal(load(&c, err, argv, env), LM__CFG_ERROR);
  if (!strstr(err, needle))
    fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

static void test_errors(void **state) {
  (void)state;
  const char *a1[] = {"--bnd", "1.2.3.4:5", NULL};
  expect_error(a1, NULL, "unknown flag --bnd (did you mean --bind?)");
  const char *a2[] = {"--bind", "example.com:80", NULL};
  expect_error(a2, NULL, "--bind: expected HOST:PORT");
  const char *a3[] = {"--bind", "1.2.3.4:70000", NULL};
  expect_error(a3, NULL, "\"1.2.3.4:70000\"");
  const char *a4[] = {"--name", NULL};
  expect_error(a4, NULL, "--name needs a value");
  const char *a5[] = {"stray", NULL};
  expect_error(a5, NULL, "unexpected argument \"stray\"");
  const char *a6[] = {"--probe-interval-ms", "abc", NULL};
  expect_error(a6, NULL, "--probe-interval-ms: expected a whole number");
  const char *a7[] = {"--name", "has space", NULL};
  expect_error(a7, NULL, "--name: expected a name");
  const char *a8[] = {"--probe-interval-ms", "400", "--probe-timeout-ms",
                      "400", NULL};
  expect_error(a8, NULL, "must be shorter than the probe interval");
  const char *a9[] = {"--print-config=yes", NULL};
  expect_error(a9, NULL, "--print-config takes no value");

  const char *e1[] = {"LIVEMESH_LOG_FORMAT=xml", NULL};
  expect_error(NULL, e1, "LIVEMESH_LOG_FORMAT: expected text or json");
  const char *e2[] = {"LIVEMESH_JOIN=1.1.1.1:1,bad", NULL};
  expect_error(NULL, e2, "LIVEMESH_JOIN: expected HOST:PORT");

  char flag[160];
  const char *f = write_file("bad1.json", "{\"nmae\": \"x\"}");
  snprintf(flag, sizeof flag, "--config=%s", f);
  const char *c1[] = {flag, NULL};
  expect_error(c1, NULL, "unknown key \"nmae\" (did you mean \"name\"?)");
  f = write_file("bad2.json", "{\"cluster_keys\": \"a.pub\"}");
  snprintf(flag, sizeof flag, "--config=%s", f);
  expect_error(c1, NULL, "key \"cluster_keys\": expected an array of strings");
  f = write_file("bad3.json", "{\"join\": [\"1.1.1.1:1\", 7]}");
  snprintf(flag, sizeof flag, "--config=%s", f);
  expect_error(c1, NULL, "key \"join\": item 1: expected a string, got an "
                         "integer");
  f = write_file("bad4.json", "{\"tombstone_ms\": 1.5}");
  snprintf(flag, sizeof flag, "--config=%s", f);
  expect_error(c1, NULL, "key \"tombstone_ms\": expected a whole number");
  f = write_file("bad5.json", "[1]");
  snprintf(flag, sizeof flag, "--config=%s", f);
  expect_error(c1, NULL, "expected a JSON object at the top, got an array");
  f = write_file("bad6.json", "{\"name\": \"a\", \"name\": \"b\"}");
  snprintf(flag, sizeof flag, "--config=%s", f);
  expect_error(c1, NULL, "bad6.json:1:");
  snprintf(flag, sizeof flag, "--config=%s/missing.json", tmpdir);
  expect_error(c1, NULL, "missing.json: No such file or directory");
}

static void test_help(void **state) {
  (void)state;
  lm__config_t c;
  char err[512];
  const char *argv[] = {"--name", "a", "--help", NULL};
  assert_int_equal(load(&c, err, argv, NULL), LM__CFG_HELP);
}

typedef struct diffs {
  int n;
  char keys[8][32];
} diffs_t;

static void on_diff(void *ud, const char *key, const char *a, const char *b) {
  diffs_t *d = ud;
  (void)a, (void)b;
  if (d->n < 8)
    snprintf(d->keys[d->n++], sizeof d->keys[0], "%s", key);
}

static void test_diff(void **state) {
  (void)state;
  lm__config_t a, b;
  char err[512];
  const char *argv1[] = {"--data-dir", "/d", "--join", "1.1.1.1:1", NULL};
  const char *argv2[] = {"--data-dir", "/d", "--join", "1.1.1.1:1",
                         "--log-level", "debug", "--bind", "127.0.0.1:9",
                         NULL};
  assert_int_equal(load(&a, err, argv1, NULL), LM__CFG_OK);
  assert_int_equal(load(&b, err, argv2, NULL), LM__CFG_OK);
  diffs_t d = {0};
  lm__config_diff(&a, &b, on_diff, &d);
  assert_int_equal(d.n, 2);
  assert_string_equal(d.keys[0], "bind");
  assert_string_equal(d.keys[1], "log_level");
  d.n = 0;
  lm__config_diff(&a, &a, on_diff, &d);
  assert_int_equal(d.n, 0);
  char *json = lm__config_to_json(&b);
  assert_non_null(json);
  assert_non_null(strstr(json, "\"log_level\": \"debug\""));
  free(json);
  lm__config_free(&a);
  lm__config_free(&b);
}

static void test_hostport(void **state) {
  (void)state;
  assert_true(lm__hostport_valid("127.0.0.1:7946"));
  assert_true(lm__hostport_valid(":7946"));
  assert_true(lm__hostport_valid("localhost:0"));
  assert_true(lm__hostport_valid("[::1]:7946"));
  assert_false(lm__hostport_valid("127.0.0.1"));
  assert_false(lm__hostport_valid("::1:7946"));
  assert_false(lm__hostport_valid("[::1]"));
  assert_false(lm__hostport_valid("host.example:80"));
  assert_false(lm__hostport_valid("1.2.3.4:-1"));
  assert_false(lm__hostport_valid("1.2.3.4:65536"));
  assert_false(lm__hostport_valid("1.2.3.4:"));
  assert_false(lm__hostport_valid(""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),  cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_derived_paths), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_help),      cmocka_unit_test(test_diff),
      cmocka_unit_test(test_hostport),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
