/*
 * fuzz_config.c: libFuzzer target of the agent's JSON config file
 * (config.c, lm__config_load with --config FILE): every key's type and
 * range, the "services" array through the register parser (svc_json.c),
 * the merge and the defaults; and of the duration syntax ("500ms", "30s",
 * "1h30m") of svc_json.c that services and queries use.
 *
 * The input is the file: written to a memfd, loaded by its /proc/self/fd
 * path, so the loader runs exactly as the agent runs it, with no file on
 * disk. The environment is empty, so only the file speaks.
 *
 * Properties: no crash, leak or read past the input; a refused file has a
 * message that names it; an accepted one prints (--print-config) as JSON
 * that, loaded again as a config file (nulls, the runtime's defaults, left
 * out), gives the same configuration; a duration that parses formats
 * (lm__duration_format) to units that add up to the same milliseconds.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "svc_json.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_fd = -1; /* one memfd for the process, rewritten per input */
static char g_path[64];

static void put_file(const void *p, size_t n) {
  if (g_fd < 0) {
    g_fd = memfd_create("fuzz_config.json", MFD_CLOEXEC);
    CHECK(g_fd >= 0);
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
  }
  CHECK(ftruncate(g_fd, 0) == 0);
  CHECK(pwrite(g_fd, p, n, 0) == (ssize_t)n);
}

static int load(lm__config_t *c, char *err, size_t cap) {
  char *argv[] = {"--config", g_path, NULL};
  char *env[] = {NULL};
  return lm__config_load(c, 2, argv, env, err, cap);
}

static void count_diff(void *ud, const char *key, const char *a,
                       const char *b) {
  (void)key, (void)a, (void)b;
  (*(int *)ud)++;
}

/* The text lm__duration_format writes ("1h23m5s") is read back one unit
 * at a time: the parser takes a single unit ("1h", "23m", "5s") only. */
static uint64_t parse_formatted(const char *t) {
  uint64_t sum = 0;
  while (*t) {
    char part[32];
    size_t n = 0;
    while (t[n] >= '0' && t[n] <= '9')
      n++;
    while (t[n] && (t[n] < '0' || t[n] > '9'))
      n++;
    CHECK(n > 0 && n < sizeof part);
    memcpy(part, t, n);
    part[n] = 0;
    uint64_t ms;
    CHECK(lm__duration_parse(part, &ms) == 0);
    CHECK(!__builtin_add_overflow(sum, ms, &sum));
    t += n;
  }
  return sum;
}

static void durations(const uint8_t *data, size_t size) {
  if (size > 64)
    return;
  char s[65];
  memcpy(s, data, size);
  s[size] = 0;
  uint64_t ms = 0;
  int rc = lm__duration_parse(s, &ms);
  CHECK(rc == 0 || rc == -1 || rc == -2);
  if (rc)
    return;
  char t[64];
  lm__duration_format(t, sizeof t, ms);
  CHECK(parse_formatted(t) == ms);
}

/* The printed configuration, nulls left out, as a config file again. */
static void reload(const lm__config_t *c) {
  char *text = lm__config_to_json(c);
  CHECK(text);
  json_t *j = json_loads(text, 0, NULL);
  CHECK(json_is_object(j));
  free(text);
  const char *k;
  json_t *v;
  void *tmp;
  json_object_foreach_safe(j, tmp, k, v) {
    if (json_is_null(v))
      json_object_del(j, k);
  }
  text = json_dumps(j, 0);
  CHECK(text);
  json_decref(j);
  put_file(text, strlen(text));
  free(text);
  lm__config_t c2;
  char err[1024] = "";
  CHECK(load(&c2, err, sizeof err) == LM__CFG_OK);
  int diffs = 0;
  lm__config_diff(c, &c2, count_diff, &diffs);
  CHECK(diffs == 0);
  CHECK(json_equal(c->services, c2.services) ||
        (!c->services && json_array_size(c2.services) == 0));
  lm__config_free(&c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  durations(data, size);
  put_file(data, size);
  lm__config_t c;
  char err[1024] = "";
  int rc = load(&c, err, sizeof err);
  if (rc != LM__CFG_OK) {
    CHECK(rc == LM__CFG_ERROR && err[0]);
    return 0;
  }
  int diffs = 0;
  lm__config_diff(&c, &c, count_diff, &diffs);
  CHECK(diffs == 0);
  reload(&c);
  lm__config_free(&c);
  return 0;
}
