/*
 * lookup.c: livemesh-bench --lookup (see lookup.h and docs/benchmarks.md).
 *
 * The view is filled the way the runtime fills it (lm_store_member_set,
 * then lm_store_services_set with an encoded list), but from synthetic
 * members: the signature bytes after each list are zeros, which the store
 * keeps as opaque bytes (the runtime checks signatures before it hands a
 * list over, and these lists never travel).
 *
 * Timing: lm_node_is_up is a few hundred nanoseconds, the same order as
 * clock_gettime itself, so calls are timed in batches of LOOKUP_BATCH and
 * each batch gives one sample, its time divided by the batch. The
 * percentiles are therefore over batch means, not single calls: a lone slow
 * call is diluted 64 times (the max shows the worst batch).
 */
#define _GNU_SOURCE
#include "lookup.h"
#include "curl_dl.h" /* libcurl, loaded for --http only */

#include <jansson.h>
#include <livemesh/client.h>
#include <livemesh/livemesh.h>
#include <livemesh/services.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "node_internal.h" /* lm__svc_store */
#include "report.h"
#include "store.h"
#include "svc_codec.h"

#define PROG "livemesh-bench"
#define LOOKUP_BATCH 64
#define CLIENT_WARMUP 1000
#define SIG_BYTES 64

#define die(...) lm_report_die(PROG, __VA_ARGS__)

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void fill_random(uint64_t *s, uint8_t *p, size_t len) {
  for (size_t i = 0; i < len; i += 8) {
    uint64_t v = splitmix64(s);
    size_t k = len - i < 8 ? len - i : 8;
    memcpy(p + i, &v, k);
  }
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double heap_mib(void) {
  struct mallinfo2 mi = mallinfo2();
  return (double)(mi.uordblks + mi.hblkhd) / 1048576.0;
}

typedef struct key {
  const char *type, *host;
} key_t_;

/* Percentiles of samples in ns, reported in `scale` units (1: ns, 1000:
 * us) with three decimals. */
static json_t *dist_json(int64_t *v, size_t n, double scale) {
  lm_report_dist_t d = lm_report_dist(v, n);
  if (!d.n)
    return json_null();
  return json_pack("{s:o,s:o,s:o,s:I}", "p50",
                   lm_report_real3((double)d.p50 / scale), "p99",
                   lm_report_real3((double)d.p99 / scale), "max",
                   lm_report_real3((double)d.max / scale), "n",
                   (json_int_t)d.n);
}

static void on_closed(lm_node_t *node, int status, void *ud) {
  (void)node, (void)status;
  *(int *)ud = 0;
}

/* The view: M members named "m-<index>", each with K services of types
 * "svc-0".."svc-K-1"; one service in ten is down so both answers occur. */
static void build_view(lm_store_t *store, const lm_bench_lookup_opts_t *o,
                       char **types, char **hosts, uint64_t *rng) {
  uint32_t K = o->services;
  lm_service_t *svcs = calloc(K, sizeof *svcs);
  if (!svcs)
    die("out of memory");
  int64_t now = unix_ms();
  for (uint32_t m = 0; m < o->members; m++) {
    uint8_t id[LM_STORE_ID_LEN];
    fill_random(rng, id, sizeof id);
    lm_store_member_t sm;
    memset(&sm, 0, sizeof sm);
    memcpy(sm.id, id, sizeof id);
    sm.name = hosts[m];
    sm.addr = "127.0.0.2:7946";
    sm.status = LM_STORE_ALIVE;
    sm.gen = 1;
    sm.ver = 1;
    sm.since_ms = now;
    int rc = lm_store_member_set(store, &sm, now);
    if (rc)
      die("member %u: %s", m, lm_store_strerror(rc));
    for (uint32_t k = 0; k < K; k++) {
      lm_service_t *s = &svcs[k];
      memset(s, 0, sizeof *s);
      fill_random(rng, s->uuid, LM_UUID_LEN);
      s->type = types[k];
      s->name = "";
      s->region = "";
      s->worker = -1;
      s->created_ms = now;
      s->status = (m + k) % 10 == 9 ? LM_SVC_DOWN : LM_SVC_UP;
      s->since_ms = now;
      s->cause = "registered";
      s->note = "";
    }
    uint8_t *body;
    size_t blen;
    rc = lm_svclist_encode(&body, &blen, id, 1, 1, now, svcs, K);
    if (rc)
      die("member %u: encode: %s", m, lm_store_strerror(rc));
    uint8_t *raw = calloc(1, blen + SIG_BYTES); /* signature: zeros */
    if (!raw)
      die("out of memory");
    memcpy(raw, body, blen);
    rc = lm_store_services_set(store, id, raw, blen + SIG_BYTES, blen, now);
    if (rc)
      die("member %u: services: %s", m, lm_store_strerror(rc));
    free(raw);
    free(body);
  }
  free(svcs);
}

typedef struct http_body {
  char buf[4096];
  size_t len;
} http_body_t;

static size_t http_write(char *p, size_t sz, size_t n, void *ud) {
  http_body_t *b = ud;
  size_t k = sz * n;
  size_t room = sizeof b->buf - b->len;
  memcpy(b->buf + b->len, p, k < room ? k : room);
  b->len += k < room ? k : room;
  return k;
}

int lm_bench_lookup(const lm_bench_lookup_opts_t *o) {
  uv_loop_t loop;
  int rc = uv_loop_init(&loop);
  if (rc)
    die("uv_loop_init: %s", uv_strerror(rc));
  uint8_t cpk[LM_PUBLICKEY_BYTES], csk[LM_SECRETKEY_BYTES];
  if ((rc = lm_cluster_keygen(cpk, csk)) != 0)
    die("cluster key: %s", lm_strerror(rc));
  const uint8_t(*trusted)[LM_PUBLICKEY_BYTES] = &cpk;
  lm_identity_t id;
  if ((rc = lm_identity_issue(&id, "lookup-0", csk, 86400)) != 0)
    die("identity: %s", lm_strerror(rc));
  explicit_bzero(csk, sizeof csk);
  lm_options_t no = {.name = "lookup-0",
                     .bind = "127.0.0.1:0",
                     .cluster = "bench",
                     .identity = &id,
                     .trusted = trusted,
                     .ntrusted = 1};
  lm_node_t *node;
  rc = lm_node_new(&node, &loop, &no);
  lm_identity_wipe(&id);
  if (rc)
    die("node: %s", lm_strerror(rc));
  if ((rc = lm_node_start(node)) != 0)
    die("node: start: %s", lm_strerror(rc));
  lm_store_t *store = lm__svc_store(node);
  if (!store)
    die("the node has no view");

  /* names first: nothing below formats a string while it is timed */
  uint32_t M = o->members, K = o->services;
  char **types = calloc(K, sizeof *types);
  char **hosts = calloc(M, sizeof *hosts);
  if (!types || !hosts)
    die("out of memory");
  for (uint32_t k = 0; k < K; k++)
    if (asprintf(&types[k], "svc-%u", k) < 0)
      die("out of memory");
  for (uint32_t m = 0; m < M; m++)
    if (asprintf(&hosts[m], "m-%06u", m) < 0)
      die("out of memory");

  uint64_t rng = o->seed;
  double heap0 = heap_mib();
  int64_t b0 = mono_ns();
  build_view(store, o, types, hosts, &rng);
  double build_ms = (double)(mono_ns() - b0) / 1e6;
  double view_heap = heap_mib() - heap0;
  lm_store_counts_t counts;
  lm_store_counts(store, &counts);

  uint64_t L = o->lookups;
  key_t_ *keys = malloc(L * sizeof *keys);
  if (!keys)
    die("out of memory");
  for (uint64_t i = 0; i < L; i++) {
    uint64_t r = splitmix64(&rng);
    keys[i].type = types[(uint32_t)(r >> 32) % K];
    keys[i].host = hosts[(uint32_t)r % M];
  }

  /* Every key must be in the view, or the figure would be of misses. */
  uint64_t found = 0, up = 0;
  for (uint64_t i = 0; i < L; i += L / 4096 ? L / 4096 : 1) {
    lm_is_up_t r;
    if (lm_node_is_up(node, keys[i].type, keys[i].host, &r) < 0)
      die("lm_node_is_up failed");
    found += r.found;
  }

  /* warm the caches and the branch predictors once over the keys */
  for (uint64_t i = 0; i < L; i++)
    up += lm_node_is_up(node, keys[i].type, keys[i].host, NULL) == 1;

  size_t nb = (size_t)(L / LOOKUP_BATCH);
  int64_t *samples = malloc(nb * sizeof *samples);
  int64_t *hot = malloc(nb * sizeof *hot);
  if (!samples || !hot)
    die("out of memory");
  volatile int sink = 0;
  int64_t t_all0 = mono_ns();
  for (size_t b = 0; b < nb; b++) {
    const key_t_ *k = &keys[b * LOOKUP_BATCH];
    int acc = 0;
    int64_t t0 = mono_ns();
    for (int i = 0; i < LOOKUP_BATCH; i++)
      acc += lm_node_is_up(node, k[i].type, k[i].host, NULL);
    int64_t t1 = mono_ns();
    sink += acc;
    samples[b] = (t1 - t0 + LOOKUP_BATCH / 2) / LOOKUP_BATCH;
  }
  double all_s = (double)(mono_ns() - t_all0) / 1e9;
  for (size_t b = 0; b < nb; b++) {
    int acc = 0;
    int64_t t0 = mono_ns();
    for (int i = 0; i < LOOKUP_BATCH; i++)
      acc += lm_node_is_up(node, keys[0].type, keys[0].host, NULL);
    int64_t t1 = mono_ns();
    sink += acc;
    hot[b] = (t1 - t0 + LOOKUP_BATCH / 2) / LOOKUP_BATCH;
  }
  /* The same keys straight into the store, without the node's wrapper
   * (its fork check, lock and clock read): what the view's own lookup
   * costs, to tell it from the wrapper's. */
  int64_t *bare = malloc(nb * sizeof *bare);
  if (!bare)
    die("out of memory");
  int64_t now_ms = unix_ms();
  for (size_t b = 0; b < nb; b++) {
    const key_t_ *k = &keys[b * LOOKUP_BATCH];
    int acc = 0;
    int64_t t0 = mono_ns();
    for (int i = 0; i < LOOKUP_BATCH; i++)
      acc += lm_store_is_up(store, k[i].type, k[i].host, now_ms, NULL);
    int64_t t1 = mono_ns();
    sink += acc;
    bare[b] = (t1 - t0 + LOOKUP_BATCH / 2) / LOOKUP_BATCH;
  }
  /* getpid() is a system call (glibc caches it no more): the node's fork
   * check makes one per call */
  int64_t g0 = mono_ns();
  for (int i = 0; i < 100000; i++)
    sink += (int)(getpid() & 1);
  double getpid_ns = (double)(mono_ns() - g0) / 1e5;
  /* what one clock_gettime costs, to set beside the figures */
  int64_t c0 = mono_ns();
  for (int i = 0; i < 1000000; i++)
    sink += (int)(mono_ns() & 1);
  double clock_ns = (double)(mono_ns() - c0) / 1e6;
  (void)sink;

  /* The client: one round trip per call over the agent's socket. */
  json_t *client = json_null();
  uint64_t client_found = 0;
  if (o->socket) {
#ifndef LM_BENCH_HAVE_CLIENT
    fprintf(stderr, PROG ": --socket: this build has no client library "
            "(lm_client, include/livemesh/client.h)\n");
    exit(LM_REPORT_EXIT_USAGE);
#else
    lm_client_t *c;
    if ((rc = lm_client_open(&c, o->socket, 0)) != 0) {
      fprintf(stderr, PROG ": cannot reach the agent at %s: %s\n", o->socket,
              lm_strerror(rc));
      exit(LM_REPORT_EXIT_USAGE);
    }
    for (uint32_t i = 0; i < CLIENT_WARMUP; i++)
      if (lm_client_is_up(c, keys[i % L].type, keys[i % L].host, NULL) < 0)
        die("lm_client_is_up: %s", lm_client_error(c));
    int64_t *cs = malloc(o->client_calls * sizeof *cs);
    if (!cs)
      die("out of memory");
    for (uint32_t i = 0; i < o->client_calls; i++) {
      const key_t_ *k = &keys[(CLIENT_WARMUP + i) % L];
      lm_is_up_t r;
      int64_t t0 = mono_ns();
      rc = lm_client_is_up(c, k->type, k->host, &r);
      int64_t t1 = mono_ns();
      if (rc < 0)
        die("lm_client_is_up: %s (%s)", lm_strerror(rc), lm_client_error(c));
      client_found += r.found;
      cs[i] = t1 - t0;
    }
    lm_client_close(c);
    client = dist_json(cs, o->client_calls, 1000.0);
    free(cs);
#endif
  }

  /* HTTP: GET /v1/is-up on one keep-alive connection, the easy handle
   * reused so libcurl keeps the connection. */
  json_t *http = json_null();
  uint64_t http_found = 0, http_connects = 0;
  if (o->http) {
    const lm__curl_t *cu = lm__curl_load();
    if (!cu)
      die("--http: %s", lm__curl_error());
    CURL *e = cu->easy_init();
    http_body_t hb = {0};
    if (!e)
      die("curl_easy_init failed");
    cu->easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write);
    cu->easy_setopt(e, CURLOPT_WRITEDATA, &hb);
    cu->easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    uint32_t calls = o->client_calls;
    int64_t *hs = malloc(calls * sizeof *hs);
    if (!hs)
      die("out of memory");
    char url[512];
    for (uint32_t i = 0; i < CLIENT_WARMUP + calls; i++) {
      const key_t_ *k = &keys[i % L];
      snprintf(url, sizeof url, "http://%s/v1/is-up?type=%s&host=%s",
               o->http, k->type, k->host);
      cu->easy_setopt(e, CURLOPT_URL, url);
      hb.len = 0;
      int64_t t0 = mono_ns();
      CURLcode cc = cu->easy_perform(e);
      int64_t t1 = mono_ns();
      long code = 0;
      cu->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
      if (cc != CURLE_OK || code != 200)
        die("GET %s: %s (status %ld)", url, cu->easy_strerror(cc), code);
      if (i >= CLIENT_WARMUP) {
        hs[i - CLIENT_WARMUP] = t1 - t0;
        http_found += hb.len > 0 && memmem(hb.buf, hb.len, "\"status\":\"unknown\"",
                                           19) == NULL;
      }
    }
    long nc = 0;
    cu->easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc);
    http_connects = (uint64_t)nc;
    cu->easy_cleanup(e);
    http = dist_json(hs, calls, 1000.0);
    free(hs);
  }

  json_t *out = json_object();
  json_object_set_new(out, "mode", json_string("lookup"));
  json_object_set_new(out, "seed", json_integer((json_int_t)o->seed));
  json_object_set_new(out, "members", json_integer(M));
  json_object_set_new(out, "services_per_member", json_integer(K));
  json_object_set_new(out, "view_members", json_integer((json_int_t)counts.members));
  json_object_set_new(out, "view_services", json_integer((json_int_t)counts.services));
  json_object_set_new(out, "build_ms", lm_report_real3(build_ms));
  json_object_set_new(out, "view_heap_mib", lm_report_real3(view_heap));
  json_object_set_new(out, "lookups", json_integer((json_int_t)(nb * LOOKUP_BATCH)));
  json_object_set_new(out, "batch", json_integer(LOOKUP_BATCH));
  json_object_set_new(out, "keys_checked_found",
                      json_pack("{s:I,s:I}", "found", (json_int_t)found,
                                "checked", (json_int_t)(L / (L / 4096 ? L / 4096 : 1))));
  json_object_set_new(out, "up_fraction", lm_report_real3((double)up / (double)L));
  json_object_set_new(out, "is_up_ns", dist_json(samples, nb, 1.0));
  json_object_set_new(out, "is_up_hot_ns", dist_json(hot, nb, 1.0));
  json_object_set_new(out, "is_up_per_s",
                      lm_report_real3((double)(nb * LOOKUP_BATCH) / all_s));
  json_object_set_new(out, "store_is_up_ns", dist_json(bare, nb, 1.0));
  json_object_set_new(out, "clock_gettime_ns", lm_report_real3(clock_ns));
  json_object_set_new(out, "getpid_ns", lm_report_real3(getpid_ns));
  json_object_set_new(out, "client_is_up_us", client);
  if (o->socket) {
    json_object_set_new(out, "client_calls", json_integer(o->client_calls));
    json_object_set_new(out, "client_found", json_integer((json_int_t)client_found));
  }
  json_object_set_new(out, "http_is_up_us", http);
  if (o->http) {
    json_object_set_new(out, "http_calls", json_integer(o->client_calls));
    json_object_set_new(out, "http_found", json_integer((json_int_t)http_found));
    /* connections opened by the last call: 0 means it reused the one */
    json_object_set_new(out, "http_last_connects",
                        json_integer((json_int_t)http_connects));
  }
  json_object_set_new(out, "max_rss_mib", lm_report_real3(lm_report_max_rss_mib()));
  if (o->json) {
    lm_report_json_print(PROG, out);
  } else {
    json_t *d = json_object_get(out, "is_up_ns");
    json_t *h = json_object_get(out, "is_up_hot_ns");
    printf("livemesh-bench --lookup: %u members x %u services (%zu in the view), "
           "built in %.0f ms, %.1f MiB\n",
           M, K, counts.services, build_ms, view_heap);
    printf("lm_node_is_up over %zu random keys (batches of %d): p50 %.0f ns, "
           "p99 %.0f ns; one hot key: p50 %.0f ns, p99 %.0f ns\n",
           nb * LOOKUP_BATCH, LOOKUP_BATCH,
           json_real_value(json_object_get(d, "p50")),
           json_real_value(json_object_get(d, "p99")),
           json_real_value(json_object_get(h, "p50")),
           json_real_value(json_object_get(h, "p99")));
    if (o->socket)
      printf("lm_client_is_up over %s, %u calls: p50 %.1f us, p99 %.1f us\n",
             o->socket, o->client_calls,
             json_real_value(json_object_get(client, "p50")),
             json_real_value(json_object_get(client, "p99")));
    if (o->http)
      printf("GET /v1/is-up over http://%s (keep-alive), %u calls: p50 %.1f us, "
             "p99 %.1f us\n", o->http, o->client_calls,
             json_real_value(json_object_get(http, "p50")),
             json_real_value(json_object_get(http, "p99")));
    json_decref(out);
  }
  fflush(stdout);

  int open = 1;
  lm_node_close(node, on_closed, &open);
  uv_run(&loop, UV_RUN_DEFAULT);
  int exit_code = 0;
  if (open) {
    fprintf(stderr, PROG ": the node did not close\n");
    exit_code = 1;
  }
  if ((rc = uv_loop_close(&loop)) != 0) {
    fprintf(stderr, PROG ": the loop still has handles: %s\n", uv_strerror(rc));
    exit_code = 1;
  }
  for (uint32_t k = 0; k < K; k++)
    free(types[k]);
  for (uint32_t m = 0; m < M; m++)
    free(hosts[m]);
  free(types);
  free(hosts);
  free(keys);
  free(samples);
  free(hot);
  free(bare);
  return exit_code;
}
