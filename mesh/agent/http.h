/*
 * http.h: the agent's HTTP API (`livemesh agent --http HOST:PORT`), served
 * by libmicrohttpd on the agent's own libuv loop: no thread of its own.
 * Every endpoint is a row of a route table (http.c) that names a command
 * of the one command table (commands.h), so HTTP and the control socket
 * answer with the same handlers and cannot disagree. The endpoints, the
 * blocking queries, the status codes and the limits are in docs/agent.md
 * ("HTTP API").
 *
 * A handler answers HTTP like it answers the control socket; the
 * transport maps {"ok":false,"code":C} to a status (invalid 400,
 * not_found 404, exists 409, not_permitted 403, busy 503, else 500) and
 * unwraps the answer's key named by the route. A command that wants a
 * status and body of its own (probes, metrics) answers
 *   {"ok": true, "http_status": 503, "body": <JSON>}  or
 *   {"ok": true, "http_status": 200, "body": "text", "content_type": "..."}
 * and the transport serves exactly that.
 *
 * Must never depend on swim/ or mesh/node/'s internals: the public API,
 * the agent's state (agent.h), the command table, libuv, libmicrohttpd.
 */
#ifndef LIVEMESH_MESH_AGENT_HTTP_H
#define LIVEMESH_MESH_AGENT_HTTP_H

#include <stddef.h>

typedef struct lm__agent lm__agent_t;
typedef struct lm__http lm__http_t;

#define LM__HTTP_BODY_MAX (64 * 1024)          /* larger: 413 */
#define LM__HTTP_STREAM_BACKLOG (1024 * 1024)  /* a watch's unsent lines */
#define LM__HTTP_WAIT_MAX_MS (5 * 60 * 1000)   /* blocking queries */
#define LM__HTTP_MAX_CONNS_DEFAULT 256
#define LM__HTTP_IDLE_TIMEOUT_S_DEFAULT 30

/* Starts serving a->cfg.http (and the --http-* settings) on a->loop, with
 * a->node running; sets a->http. 0, or -1 with a message for people in
 * `err` (bad or non-loopback address, port taken, token or TLS files,
 * a libmicrohttpd without TLS). */
int lm__http_start(lm__agent_t *a, char *err, size_t errcap);
/* Ends blocking queries (503) and watch streams, stops listening, closes
 * every connection and frees the server once its handles are closed. */
void lm__http_close(lm__http_t *h);
/* "127.0.0.1:8500": where it listens (the port the kernel chose for 0). */
const char *lm__http_addr(const lm__http_t *h);

#endif
