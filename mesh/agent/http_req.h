/*
 * http_req.h: the HTTP API's request decoding, apart from the server: the
 * route table (which path and method name which command of commands.h),
 * the query parameters and the JSON body, turned into the one request
 * object the command table answers. http.c feeds it what libmicrohttpd
 * parsed; the fuzz target (tests/fuzz/fuzz_http_req.c) feeds it anything.
 *
 * Must never depend on libmicrohttpd, libuv, the agent's state or the
 * node: text in, a jansson object (or a message for a 4xx) out.
 */
#ifndef LIVEMESH_MESH_AGENT_HTTP_REQ_H
#define LIVEMESH_MESH_AGENT_HTTP_REQ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum {
  LM__R_BODY = 1 << 0,     /* takes a JSON object body (PUT) */
  LM__R_BLOCKING = 1 << 1, /* ?index=N&wait=DUR (Consul's blocking queries) */
  LM__R_STREAM = 1 << 2,   /* a stream of lines (watch) */
};

typedef struct lm__http_route {
  const char *method;
  const char *pattern; /* "{uuid}" matches one path segment */
  const char *cmd;     /* the row of the command table that answers */
  unsigned flags;      /* LM__R_* */
  const char *key;     /* the answer's key served as the body, or NULL */
  const char *bools;   /* query parameters that are booleans: ",a,b," */
} lm__http_route_t;

#define LM__HTTP_SEG_MAX 64 /* a {uuid} segment, with its NUL */

/* 1 when `path` matches `pattern`; the {uuid} segment is copied out. */
int lm__http_path_match(const char *pattern, const char *path,
                        char seg[LM__HTTP_SEG_MAX]);
/* The route of (method, path), its {uuid} segment in `seg` ("" if none);
 * or NULL, and then *path_known says whether another method would have
 * matched and `allow` lists those methods ("GET, PUT"). */
const lm__http_route_t *lm__http_route_find(const char *method,
                                            const char *path,
                                            char seg[LM__HTTP_SEG_MAX],
                                            int *path_known, char *allow,
                                            size_t allowcap);

/* The request being built for a route. */
typedef struct lm__http_query {
  const lm__http_route_t *route;
  json_t *obj;      /* the command's request, so far */
  char err[256];    /* after a failure: the 400's message */
  int blocking_index, has_wait;
  uint64_t index, wait_ms;
} lm__http_query_t;

/* Starts a request for `route` (q->obj a new object; NULL on no memory). */
void lm__http_query_init(lm__http_query_t *q, const lm__http_route_t *route);
/* One query parameter, as unescaped (`value` NULL for "?key" alone): 0, or
 * -1 with q->err set (then stop: the request is refused). */
int lm__http_query_arg(lm__http_query_t *q, const char *key,
                       const char *value);
/* The body (len 0: none) and the path's uuid ("" if none) merged in, and
 * "cmd" set: 0 with q->obj the request (the caller's to free), or -1 with
 * q->err set and q->obj freed. Also -1 at once if an earlier argument
 * failed. */
int lm__http_query_finish(lm__http_query_t *q, const char *uuid,
                          const char *body, size_t len);
/* Frees what lm__http_query_init took, after a failed argument. */
void lm__http_query_abandon(lm__http_query_t *q);

#endif
