/*
 * etcd_range_bench.c: the cost of one etcd read, to put beside an is_up
 * answered by the local agent (livemesh-bench --lookup --socket).
 *
 *   etcd-range-bench ENDPOINT KEY [N]
 *
 * Times N (default 10000) single-key Range requests for KEY, one after
 * the other (the next sent when the previous answered), on one HTTP/2
 * connection of the bridge's own client (bridge/etcd, lm_etcd), after 200
 * untimed ones. Prints one JSON line: n, p50_us, p99_us, mean_us, max_us,
 * found (the key existed), value_bytes. Ranges are linearizable (etcd's
 * default, as the bridge's client sends them), so each goes through
 * etcd's raft read index.
 *
 * A test-side tool: it links lm_etcd and nothing of the mesh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "etcd.h"

typedef struct bench {
  uv_loop_t *loop;
  lm_etcd_t *etcd;
  const char *key;
  uint64_t warmup, n, done;
  uint64_t t0;
  uint64_t *lat_ns;
  int found;
  size_t value_bytes;
  int failed;
} bench_t;

static void next(bench_t *b);

static void range_cb(void *ud, const lm_etcd_result_t *r,
                     const lm_etcd_kv_t *kvs, size_t nkvs, int64_t count,
                     int more) {
  bench_t *b = ud;
  (void)count;
  (void)more;
  uint64_t dt = uv_hrtime() - b->t0;
  if (r->err) {
    fprintf(stderr, "etcd-range-bench: range: %s%s%s\n",
            lm_etcd_strerror(r->err), r->message ? ": " : "",
            r->message ? r->message : "");
    b->failed = 1;
    lm_etcd_close(b->etcd, NULL, NULL);
    return;
  }
  if (b->done >= b->warmup)
    b->lat_ns[b->done - b->warmup] = dt;
  if (nkvs > 0) {
    b->found = 1;
    b->value_bytes = kvs[0].value_len;
  }
  b->done++;
  if (b->done == b->warmup + b->n) {
    lm_etcd_close(b->etcd, NULL, NULL);
    return;
  }
  next(b);
}

static void next(bench_t *b) {
  b->t0 = uv_hrtime();
  if (lm_etcd_range(b->etcd, (const uint8_t *)b->key, strlen(b->key), NULL,
                    0, 0, 0, range_cb, b) != 0) {
    fprintf(stderr, "etcd-range-bench: cannot send a range\n");
    b->failed = 1;
    lm_etcd_close(b->etcd, NULL, NULL);
  }
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
  return a < c ? -1 : a > c;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: etcd-range-bench ENDPOINT KEY [N]\n");
    return 2;
  }
  bench_t b;
  memset(&b, 0, sizeof b);
  b.key = argv[2];
  b.n = argc > 3 ? strtoull(argv[3], NULL, 10) : 10000;
  if (b.n < 10)
    b.n = 10;
  b.warmup = 200;
  b.lat_ns = calloc(b.n, sizeof *b.lat_ns);
  b.loop = uv_default_loop();
  const char *eps[1] = {argv[1]};
  lm_etcd_options_t o;
  memset(&o, 0, sizeof o);
  o.endpoints = eps;
  o.nendpoints = 1;
  char err[256];
  if (!b.lat_ns || lm_etcd_new(&b.etcd, b.loop, &o, err, sizeof err) != 0) {
    fprintf(stderr, "etcd-range-bench: %s\n", b.lat_ns ? err : "no memory");
    return 1;
  }
  next(&b);
  uv_run(b.loop, UV_RUN_DEFAULT);
  if (b.failed || b.done < b.warmup + b.n)
    return 1;
  qsort(b.lat_ns, b.n, sizeof *b.lat_ns, cmp_u64);
  double sum = 0;
  for (uint64_t i = 0; i < b.n; i++)
    sum += (double)b.lat_ns[i];
  printf("{\"bench\":\"etcd_range\",\"endpoint\":\"%s\",\"n\":%llu,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"max_us\":%.1f,"
         "\"found\":%s,\"value_bytes\":%zu}\n",
         argv[1], (unsigned long long)b.n,
         (double)b.lat_ns[(b.n - 1) / 2] / 1e3,
         (double)b.lat_ns[(b.n * 99 - 1) / 100] / 1e3, sum / (double)b.n / 1e3,
         (double)b.lat_ns[b.n - 1] / 1e3, b.found ? "true" : "false",
         b.value_bytes);
  free(b.lat_ns);
  uv_loop_close(b.loop);
  return 0;
}
