/*
 * probes.h: is the agent live, is it ready? The loop watchdog, the checks
 * behind readiness and liveness, and the bodies of the probe endpoints
 * (INTERFACES.md, "HTTP": Probes), served by the command table's rows
 * `ready`, `live`, `environ` and `metrics` and by one function for the
 * HTTP router, lm__probe_http().
 *
 * Live: the agent's event loop is responsive. A uv_timer on the loop ticks
 * every LM__LIVE_TICK_MS and records how late it ran (its lag) and when
 * (an atomic, so any thread may judge it). Live means both:
 *   - the loop ticked within the last LM__LIVE_STALL_MS, judged at the
 *     moment of asking (a loop that answers after a stall sees how old its
 *     last tick is, and says 503 before its timer has run again);
 *   - no tick over the last LM__LIVE_WINDOW_MS ran LM__LIVE_LAG_MS late or
 *     more, so a stall keeps /livez at 503 for that window after the loop
 *     resumes.
 * A loop that is stopped answers nothing at all: the HTTP server runs on
 * that very loop. The client's timeout is then the signal, which is what
 * Kubernetes expects of a liveness probe (timeoutSeconds), and what
 * `livemesh live` does (a timeout is "not live", exit 1).
 *
 * Ready: all four checks pass.
 *   joined     the agent was started with no --join (alone by
 *              configuration), or a seed answered: once a member other
 *              than this node has been seen alive; false while leaving.
 *   converged  the count of members alive or suspect has not changed for
 *              LM__CONVERGE_STABLE_MS, and, with --join, another member is
 *              alive (a joined node that sees nobody is cut off). Alone by
 *              configuration, the start counts as stable: a lone agent is
 *              ready at once. (The public API shows no pending service list
 *              fetches; they retry within a second, inside the window.)
 *   services   every service registered on this agent is up or in
 *              maintenance; the failing ones are named.
 *   loop       the agent is live (above).
 *
 * Checks are JSON objects {NAME: {"status": bool, "detail": "one line for
 * people", ...more fields}} in that order; the formatters below turn them
 * into each endpoint's body.
 *
 * Must never depend on mesh/node/'s or swim/'s internals: the public API
 * (livemesh.h, services.h), libuv and jansson. The pure formatters depend
 * on jansson alone.
 */
#ifndef LIVEMESH_MESH_AGENT_PROBES_H
#define LIVEMESH_MESH_AGENT_PROBES_H

#include <jansson.h>
#include <livemesh/livemesh.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds, defined once here for the agent, the docs and the tests. */
#define LM__LIVE_TICK_MS 100       /* the watchdog's period */
#define LM__LIVE_STALL_MS 2000     /* no tick for this long: not live */
#define LM__LIVE_LAG_MS 1000       /* a tick this late in the window: not live */
#define LM__LIVE_WINDOW_MS 5000    /* how long a late tick counts */
#define LM__CONVERGE_STABLE_MS 2000 /* alive count unchanged this long */

/* ---- the watchdog and the checks (on the agent's loop) ---- */

typedef struct lm__probes lm__probes_t;

/* Starts the watchdog's timer on `loop` and watches `node` (which runs on
 * the same loop) for convergence. 0, or a libuv/LM_E* error. */
int lm__probes_new(lm__probes_t **out, uv_loop_t *loop, lm_node_t *node);
/* Stops the timer; the object is freed once libuv has closed it, so the
 * loop must run on (the agent's does). NULL is a no-op. */
void lm__probes_close(lm__probes_t *p);

/* The loop as seen from any thread at `now_ns` (uv_hrtime()). */
typedef struct lm__loop_state {
  uint64_t ticks;         /* watchdog ticks so far */
  int64_t since_tick_ms;  /* since the last tick (or the start) */
  int64_t lag_ms;         /* how late the last tick ran */
  int64_t lag_max_ms;     /* the latest tick's worst over the window */
  int live;
} lm__loop_state_t;
/* Lock-free: reads atomics only, so an HTTP thread, a signal handler or a
 * systemd watchdog thread may call it while the loop is stalled. */
void lm__probes_loop_state(const lm__probes_t *p, uint64_t now_ns,
                           lm__loop_state_t *out);

/* Liveness: {"loop": {...}}; *live set. A new reference. Any thread. */
json_t *lm__probes_live(const lm__probes_t *p, int *live);
/* Readiness: {"joined", "converged", "services", "loop"}; *ready set.
 * `nseeds`: the --join seeds configured (0: alone by configuration);
 * `leaving`: the agent is leaving the mesh. On the loop's thread (it reads
 * the node). A new reference. */
json_t *lm__probes_ready(lm__probes_t *p, size_t nseeds, int leaving,
                         int *ready);

/* ---- the HTTP bodies (pure) ---- */

typedef enum lm__probe_kind {
  LM__PROBE_NONE = 0,
  LM__PROBE_READYZ,       /* GET /readyz: 200 or 503, text */
  LM__PROBE_LIVEZ,        /* GET /livez: 200 or 503, text */
  LM__PROBE_HB_READINESS, /* GET /.well-known/heartbeat/readiness: 200|500 */
  LM__PROBE_HB_LIVELINESS,/* GET /.well-known/heartbeat/liveliness: 200|500 */
  LM__PROBE_HB_ENVIRON,   /* GET /.well-known/heartbeat/environ: 200 */
  LM__PROBE_METRICS       /* GET /metrics: 200, Prometheus text */
} lm__probe_kind_t;

/* Which probe a request path is (no query string: the router strips it),
 * or LM__PROBE_NONE. "/readyz/" and "/livez/" are accepted too. */
lm__probe_kind_t lm__probe_path(const char *path);

/* The body of a readiness or liveness endpoint from the checks above.
 * Returns the HTTP status; *body is malloc'd (the caller frees it),
 * *content_type static.
 *   LM__PROBE_READYZ/LIVEZ (Kubernetes, the apiserver's style): 200 "ok";
 *   503 with the failed checks, "[-]NAME failed: DETAIL" a line each, then
 *   "readyz check failed" (or livez). With `verbose` every check is listed,
 *   "[+]NAME ok" or "[-]NAME failed: DETAIL", then "readyz check passed"
 *   or "... failed". text/plain.
 *   LM__PROBE_HB_READINESS/LIVELINESS (Flask heartbeat): 200 or 500 with
 *   {"status": bool, "checks": CHECKS}. application/json.
 * Returns -1 (nothing allocated) for another kind or out of memory. */
int lm__probe_format(lm__probe_kind_t kind, const json_t *checks, int ok,
                     int verbose, char **body, const char **content_type);
/* {"status": true, "libraries": LIBRARIES, "name", "version"}: 200, JSON.
 * `libraries` is {NAME: {"version": "..."}}. */
int lm__probe_format_environ(const json_t *libraries, const char *name,
                             char **body, const char **content_type);

/* ---- the agent's side (probes_agent.c, in the livemesh binary) ---- */

/* Every probe path in one call, for the HTTP router: the readiness and
 * liveness endpoints, environ and /metrics. `path` without its query;
 * `verbose`: the query had "verbose" (only /readyz and /livez use it).
 * Returns the HTTP status with *body (malloc'd, the caller frees it) and
 * *content_type (static) set, or 0 when `path` is not a probe path (the
 * router goes on), or -1 when out of memory (answer 500). Call it on the
 * agent's loop, like the command handlers. */
int lm__probe_http(lm__agent_t *a, const char *path, int verbose,
                   char **body, const char **content_type);

/* {NAME: {"version"}}: livemesh, libuv, libsodium, msgpack-c, jansson,
 * libcurl once an http check has loaded it (it is loaded on first use, and
 * this report does not load it), and libmicrohttpd when the binary links
 * it (the build defines LM_HAVE_MICROHTTPD for probes_agent.c then). A new
 * reference. */
json_t *lm__environ_libraries(void);

/* Rows of the command table (commands.c):
 *   ready   {"ok":true, "ready":bool, "checks":{...}}
 *   live    {"ok":true, "live":bool, "checks":{...}}
 *   environ {"ok":true, "name", "version", "libraries":{NAME:{"version"}}}
 *   metrics {"ok":true, "text":"...Prometheus text..."} */
int lm__cmd_row_ready(lm__agent_t *a, const json_t *req,
                      const lm__reply_to_t *to, json_t **resp, char *err,
                      size_t errcap);
int lm__cmd_row_live(lm__agent_t *a, const json_t *req,
                     const lm__reply_to_t *to, json_t **resp, char *err,
                     size_t errcap);
int lm__cmd_row_environ(lm__agent_t *a, const json_t *req,
                        const lm__reply_to_t *to, json_t **resp, char *err,
                        size_t errcap);
int lm__cmd_row_metrics(lm__agent_t *a, const json_t *req,
                        const lm__reply_to_t *to, json_t **resp, char *err,
                        size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
