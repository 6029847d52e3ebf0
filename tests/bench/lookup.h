/*
 * lookup.h: livemesh-bench --lookup, the cost of one is_up answer.
 *
 * Builds a view of M members with K services each inside one real node
 * (filled through the node's store, without running M nodes), then times
 * lm_node_is_up, the public call with its lock, over keys drawn from what
 * the view holds; with a socket path, also lm_client_is_up against a
 * running agent. Prints one JSON object (or a few text lines) on stdout.
 *
 * A test-side tool: it reaches into the runtime's internals
 * (mesh/node/node_internal.h, store/) to fill the view, and must never be
 * linked into the library.
 */
#ifndef LM_BENCH_LOOKUP_H
#define LM_BENCH_LOOKUP_H

#include <stdint.h>

typedef struct lm_bench_lookup_opts {
  uint32_t members;   /* synthetic members in the view */
  uint32_t services;  /* per member */
  uint64_t lookups;   /* timed lm_node_is_up calls (a multiple of the batch) */
  uint64_t seed;      /* picks the keys */
  const char *socket; /* NULL: no client figures */
  const char *http;   /* HOST:PORT of an agent's HTTP API, or NULL */
  uint32_t client_calls;
  int json;
} lm_bench_lookup_opts_t;

/* Runs the whole measurement; returns the process exit status (0, or 1
 * when the node did not close cleanly). Fatal errors exit 1. */
int lm_bench_lookup(const lm_bench_lookup_opts_t *o);

#endif
