/*
 * http.c: the agent's HTTP API (http.h) over libmicrohttpd, driven by the
 * agent's libuv loop: MHD runs in external epoll mode, a uv_poll_t watches
 * its epoll descriptor and calls MHD_run() when it is readable, and a
 * uv_timer_t is re-armed from MHD_get_timeout() after every run. Blocking
 * queries and idle watch streams are suspended connections
 * (MHD_suspend_connection), resumed when the view's index moves, their
 * wait ends or a watch line is queued.
 *
 * Why the limits: the loop that serves HTTP is the loop that runs the
 * failure detector. Each request does bounded work (one command of the
 * table), the number of connections is capped, a connection that stays
 * silent is cut after the idle timeout (slowloris), a body is never
 * buffered past 64 KiB, and a watch whose reader stops reading is cut once
 * 1 MiB of its lines wait unsent.
 */
#define _GNU_SOURCE
#include "http.h"
#include "probes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <livemesh/livemesh.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "agent.h"
#include "commands.h"
#include "http_req.h"
#include "svc_json.h"

typedef lm__agent_t agent_t;

/* ---- the routes: http_req.c ---- */

#define UUID_SEG_MAX LM__HTTP_SEG_MAX
#define BLOCK_CHECK_MS 20
#define DISCARD_MAX (1024 * 1024) /* of an oversize chunked body */
#define ID_HTTP (1ull << 63)      /* ids never collide with the socket's */
/* MHD does not see a suspended connection's hang-up: looked for this often */
#define SWEEP_MS 2000

/* ---- the server ---- */

typedef struct req req_t;

struct lm__http {
  agent_t *a;
  uv_loop_t *loop;
  struct MHD_Daemon *d;
  uv_poll_t poll;
  uv_timer_t timer; /* MHD's own timeouts */
  uv_timer_t block; /* blocking queries: the view's index, their waits */
  uv_timer_t sweep; /* suspended connections whose client has gone */
  int open;         /* handles not yet closed */
  int closing;
  uint64_t next_id;
  req_t *reqs;      /* every request not yet completed */
  size_t nblocked;
  int read_only;
  int has_token;
  int resumed; /* a connection was resumed since the last run */
  uint8_t token_hash[crypto_generichash_BYTES];
  char *tls_cert, *tls_key;
  char addr[80];
};

struct req {
  lm__http_t *h;
  struct MHD_Connection *c;
  req_t *next, *prev;
  uint64_t id;
  int refs; /* the connection's, and the stream response's */
  int linked;
  int done; /* a response is queued */
  const lm__http_route_t *route;
  char uuid[UUID_SEG_MAX];
  /* body */
  char *body;
  size_t len;
  int too_big;
  size_t discarded;
  /* the command's answer, stored by the reply ops */
  json_t *answer;
  json_t *cmd; /* the request as the command table sees it */
  /* blocking query */
  int blocked;
  uint64_t index;
  int64_t deadline_ms;
  /* stream */
  int streaming, suspended, ended, cut;
  char *out;
  size_t out_len, out_off;
};

static void hlog(lm__http_t *h, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hlog(lm__http_t *h, int level, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  lm__agent_log(h->a, level, "http: %s", buf);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  lm__http_t *h = cls;
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  buf[strcspn(buf, "\n")] = 0;
  lm__agent_log(h->a, LM_LOG_DEBUG, "http: libmicrohttpd: %s", buf);
}

static uint64_t view_index(lm__http_t *h) {
  return h->a->node ? lm_node_view_index(h->a->node) : 0;
}

static void kick(lm__http_t *h);

static void req_unref(req_t *r) {
  if (--r->refs > 0)
    return;
  json_decref(r->answer);
  json_decref(r->cmd);
  free(r->body);
  free(r->out);
  free(r);
}

static void req_unlink(req_t *r) {
  if (!r->linked)
    return;
  r->linked = 0;
  if (r->prev)
    r->prev->next = r->next;
  else
    r->h->reqs = r->next;
  if (r->next)
    r->next->prev = r->prev;
  if (r->blocked) {
    r->blocked = 0;
    r->h->nblocked--;
  }
}

static req_t *find_req(lm__http_t *h, uint64_t id) {
  for (req_t *r = h->reqs; r; r = r->next)
    if (r->id == id)
      return r;
  return NULL;
}

static void resume(req_t *r) {
  if (!r->suspended)
    return;
  r->suspended = 0;
  MHD_resume_connection(r->c);
  r->h->resumed = 1;
  kick(r->h);
}

/* ---- responses ---- */

static void add_common(lm__http_t *h, struct MHD_Response *resp,
                       const char *ctype) {
  char idx[32];
  snprintf(idx, sizeof idx, "%llu", (unsigned long long)view_index(h));
  MHD_add_response_header(resp, "X-Livemesh-Index", idx);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

/* Queues `body` (stolen) as JSON, or as text when it is a string with a
 * content type; extra header optional. */
static void send_body(req_t *r, unsigned status, json_t *body,
                      const char *ctype, const char *hname,
                      const char *hvalue) {
  char *text;
  size_t n;
  if (json_is_string(body) && ctype) {
    n = json_string_length(body);
    text = malloc(n + 1);
    if (text)
      memcpy(text, json_string_value(body), n + 1);
  } else {
    ctype = "application/json";
    text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                JSON_ENCODE_ANY);
    n = text ? strlen(text) : 0;
    if (text) { /* a newline, so `curl` output ends its line */
      char *t2 = realloc(text, n + 2);
      if (t2) {
        text = t2;
        text[n++] = '\n';
        text[n] = 0;
      }
    }
  }
  json_decref(body);
  if (!text) {
    text = strdup("{\"error\":\"out of memory\"}\n");
    n = text ? strlen(text) : 0;
    status = MHD_HTTP_INTERNAL_SERVER_ERROR;
  }
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(text);
    return;
  }
  add_common(r->h, resp, ctype);
  if (hname)
    MHD_add_response_header(resp, hname, hvalue);
  MHD_queue_response(r->c, status, resp);
  MHD_destroy_response(resp);
  r->done = 1;
}

static void send_error(req_t *r, unsigned status, const char *hname,
                       const char *hvalue, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void send_error(req_t *r, unsigned status, const char *hname,
                       const char *hvalue, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lm__utf8_scrub(msg); /* a "%.64s" may cut a character in two */
  send_body(r, status, json_pack("{s:s}", "error", msg), NULL, hname, hvalue);
}

static unsigned status_of_code(const char *code) {
  static const struct {
    const char *code;
    unsigned status;
  } MAP[] = {{"invalid", 400},       {"not_found", 404}, {"exists", 409},
             {"not_permitted", 403}, {"busy", 503}};
  for (size_t i = 0; code && i < sizeof MAP / sizeof MAP[0]; i++)
    if (!strcmp(MAP[i].code, code))
      return MAP[i].status;
  return 500;
}

/* ---- watch streams ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  req_t *r = cls;
  if (r->cut)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  size_t avail = r->out_len - r->out_off;
  if (avail) {
    size_t n = avail < max ? avail : max;
    memcpy(buf, r->out + r->out_off, n);
    r->out_off += n;
    if (r->out_off == r->out_len)
      r->out_off = r->out_len = 0;
    return (ssize_t)n;
  }
  if (r->ended || r->h->closing)
    return MHD_CONTENT_READER_END_OF_STREAM;
  /* nothing to send: off MHD's loop until a line comes */
  MHD_suspend_connection(r->c);
  r->suspended = 1;
  return 0;
}

static void stream_free(void *cls) { req_unref(cls); }

static void start_stream(req_t *r, json_t *ok) {
  struct MHD_Response *resp = MHD_create_response_from_callback(
      MHD_SIZE_UNKNOWN, 4096, stream_read, r, stream_free);
  if (!resp) {
    json_decref(ok);
    send_error(r, 500, NULL, NULL, "out of memory");
    return;
  }
  r->refs++;
  add_common(r->h, resp, "application/x-ndjson");
  char id[32];
  snprintf(id, sizeof id, "%lld",
           (long long)json_integer_value(json_object_get(ok, "watch")));
  MHD_add_response_header(resp, "X-Livemesh-Watch", id);
  json_decref(ok);
  MHD_queue_response(r->c, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  r->done = 1;
}

/* ---- the reply ops: how the command table answers HTTP ---- */

static int http_answer(const lm__reply_to_t *to, json_t *resp) {
  req_t *r = find_req(to->ud, to->conn);
  if (!r || r->answer) {
    json_decref(resp);
    return -1;
  }
  r->answer = resp;
  return 0;
}

static int http_stream(const lm__reply_to_t *to) {
  req_t *r = find_req(to->ud, to->conn);
  if (!r)
    return -1;
  r->streaming = 1;
  return 0;
}

static int http_line(const lm__reply_to_t *to, json_t *line) {
  lm__http_t *h = to->ud;
  req_t *r = find_req(h, to->conn);
  char *text = r && !r->ended && !r->cut
                   ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER)
                   : NULL;
  json_decref(line);
  if (!text)
    return -1;
  size_t n = strlen(text);
  if (r->out_len - r->out_off + n + 1 > LM__HTTP_STREAM_BACKLOG) {
    /* a reader that does not read is not worth memory */
    hlog(h, LM_LOG_WARN, "watch %llu: the client does not read its events; "
         "cut off with %zu bytes unsent", (unsigned long long)(r->id & ~ID_HTTP),
         r->out_len - r->out_off);
    free(text);
    r->cut = 1;
    resume(r);
    return -1;
  }
  if (r->out_off && r->out_off == r->out_len)
    r->out_off = r->out_len = 0;
  if (r->out_off > LM__HTTP_STREAM_BACKLOG / 2) { /* compact */
    memmove(r->out, r->out + r->out_off, r->out_len - r->out_off);
    r->out_len -= r->out_off;
    r->out_off = 0;
  }
  char *nb = realloc(r->out, r->out_len + n + 1);
  if (!nb) {
    free(text);
    return -1;
  }
  r->out = nb;
  memcpy(r->out + r->out_len, text, n);
  r->out[r->out_len + n] = '\n';
  r->out_len += n + 1;
  free(text);
  resume(r);
  return 0;
}

static int http_alive(const lm__reply_to_t *to) {
  req_t *r = find_req(to->ud, to->conn);
  return r && !r->cut;
}

static const lm__reply_ops_t HTTP_OPS = {http_answer, http_stream, http_line,
                                         http_alive, 0};

/* Runs the request's command and queues what it answered. */
static void run(req_t *r) {
  lm__reply_to_t to = {&HTTP_OPS, r->h, r->id, NULL};
  lm__commands_dispatch(r->h->a, r->cmd, &to);
  json_t *ans = r->answer;
  r->answer = NULL;
  if (!ans) {
    send_error(r, 500, NULL, NULL, "command \"%s\" gave no answer",
               r->route->cmd);
    return;
  }
  json_t *ok = json_object_get(ans, "ok");
  if (!json_is_true(ok)) {
    const char *code = json_string_value(json_object_get(ans, "code"));
    const char *msg = json_string_value(json_object_get(ans, "error"));
    json_t *b = json_pack("{s:s}", "error", msg ? msg : "failed");
    if (code)
      json_object_set_new(b, "code", json_string(code));
    if (!code && msg && strstr(msg, "shutting down"))
      code = "busy";
    send_body(r, status_of_code(code), b, NULL, NULL, NULL);
    json_decref(ans);
    return;
  }
  if (r->streaming) {
    start_stream(r, ans);
    return;
  }
  json_t *st = json_object_get(ans, "http_status");
  if (json_is_integer(st)) { /* a command that sets its own status */
    json_int_t s = json_integer_value(st);
    const char *ct = json_string_value(json_object_get(ans, "content_type"));
    send_body(r, s >= 100 && s <= 599 ? (unsigned)s : 500,
              json_incref(json_object_get(ans, "body")), ct, NULL, NULL);
    json_decref(ans);
    return;
  }
  json_t *body;
  if (r->route->key) {
    body = json_incref(json_object_get(ans, r->route->key));
  } else {
    body = json_deep_copy(ans);
    json_object_del(body, "ok");
    json_object_del(body, "id");
    /* the writes that have nothing else to say name their service */
    if (!json_object_size(body) && r->uuid[0])
      json_object_set_new(body, "uuid", json_string(r->uuid));
  }
  json_decref(ans);
  send_body(r, MHD_HTTP_OK, body ? body : json_object(), NULL, NULL, NULL);
}

/* ---- blocking queries ---- */

static void on_block(uv_timer_t *t) {
  lm__http_t *h = t->data;
  uint64_t idx = view_index(h);
  int64_t now = lm__unix_ms();
  for (req_t *r = h->reqs, *next; r; r = next) {
    next = r->next;
    if (!r->blocked || (idx <= r->index && now < r->deadline_ms))
      continue;
    r->blocked = 0;
    h->nblocked--;
    run(r);
    resume(r);
  }
  if (!h->nblocked)
    uv_timer_stop(&h->block);
}

/* A suspended connection (an idle watch, a blocking query) is off MHD's
 * loop, so a client that hangs up would hold its slot and its watch until
 * the next event. A peek at each socket finds them: EOF or an error ends
 * the stream (or answers the query at once, into the closed socket). */
static void on_sweep(uv_timer_t *t) {
  lm__http_t *h = t->data;
  for (req_t *r = h->reqs, *next; r; r = next) {
    next = r->next;
    if (!r->suspended)
      continue;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CONNECTION_FD);
    char b;
    ssize_t k = ci ? recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) : 1;
    if (k > 0 || (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                            errno == EINTR)))
      continue;
    if (r->blocked) {
      r->blocked = 0;
      h->nblocked--;
      send_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, NULL, "gone");
    } else {
      r->cut = 1;
    }
    resume(r);
  }
}

/* ---- building the command's request ---- */

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind,
                              const char *key, const char *value) {
  (void)kind;
  return lm__http_query_arg(cls, key, value) ? MHD_NO : MHD_YES;
}

/* The request for the command table, from the path, the query and the
 * body; 0, or an error already queued. */
static int build(req_t *r, lm__http_query_t *q) {
  lm__http_query_init(q, r->route);
  MHD_get_connection_values(r->c, MHD_GET_ARGUMENT_KIND, on_arg, q);
  if (lm__http_query_finish(q, r->uuid, r->body, r->len)) {
    send_error(r, MHD_HTTP_BAD_REQUEST, NULL, NULL, "%s", q->err);
    return -1;
  }
  r->cmd = q->obj;
  return 0;
}

/* ---- the access handler ---- */

static int token_ok(lm__http_t *h, struct MHD_Connection *c) {
  const char *v =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (!v || strncasecmp(v, "Bearer ", 7))
    return 0;
  v += 7;
  while (*v == ' ')
    v++;
  uint8_t hash[crypto_generichash_BYTES];
  crypto_generichash(hash, sizeof hash, (const uint8_t *)v, strlen(v), NULL,
                     0);
  return sodium_memcmp(hash, h->token_hash, sizeof hash) == 0;
}

/* /readyz, /livez, /.well-known/heartbeat/..., /metrics: answered by
 * probes.c in their own shapes (Kubernetes, the Flask heartbeat,
 * Prometheus). 1 when `url` was one of them. */
static int probe(req_t *r, const char *url, const char *method) {
  if (lm__probe_path(url) == LM__PROBE_NONE)
    return 0;
  if (strcmp(method, "GET") != 0) {
    send_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, "GET",
               "method %.16s not allowed on %.200s (allowed: GET)", method,
               url);
    return 1;
  }
  /* ?verbose, ?verbose=1, ?verbose=true: any value but 0/false */
  const char *v = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND,
                                              "verbose");
  int has = MHD_lookup_connection_value_n(r->c, MHD_GET_ARGUMENT_KIND,
                                          "verbose", strlen("verbose"), NULL,
                                          NULL) == MHD_YES;
  int verbose = has && !(v && (!strcmp(v, "0") || !strcmp(v, "false")));
  char *body = NULL;
  const char *ctype = "text/plain; charset=utf-8";
  int st = lm__probe_http(r->h->a, url, verbose, &body, &ctype);
  if (st <= 0 || !body) {
    free(body);
    send_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL,
               "out of memory answering %.200s", url);
    return 1;
  }
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(body);
    return 1;
  }
  add_common(r->h, resp, ctype);
  MHD_queue_response(r->c, (unsigned)st, resp);
  MHD_destroy_response(resp);
  r->done = 1;
  return 1;
}

/* The first call, headers only: route, method, permissions, size. */
static void first(req_t *r, const char *url, const char *method) {
  lm__http_t *h = r->h;
  if (probe(r, url, method))
    return;
  char allow[64];
  int path_known;
  r->route = lm__http_route_find(method, url, r->uuid, &path_known, allow,
                                 sizeof allow);
  if (!r->route) {
    if (path_known)
      send_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW, allow,
                 "method %.16s not allowed on %.200s (allowed: %s)", method,
                 url, allow);
    else
      send_error(r, MHD_HTTP_NOT_FOUND, NULL, NULL,
                 "unknown path %.200s (the API is under /v1/: members, "
                 "services, services/{uuid}, is-up, watch)", url);
    return;
  }
  const lm__command_t *cmd = lm__command_find(r->route->cmd);
  if (!cmd) {
    send_error(r, MHD_HTTP_NOT_FOUND, NULL, NULL,
               "%.200s is not served by this agent", url);
    return;
  }
  if (cmd->flags & LM__CMD_WRITES) {
    if (h->read_only) {
      send_error(r, MHD_HTTP_FORBIDDEN, NULL, NULL,
                 "this agent's HTTP API is read-only (--http-read-only): "
                 "%s %s is turned off; use the control socket", method, url);
      return;
    }
    if (h->has_token && !token_ok(h, r->c)) {
      send_error(r, MHD_HTTP_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                 "Bearer realm=\"livemesh\"",
                 "%s %s needs \"Authorization: Bearer <token>\" with the "
                 "token of --http-token", method, url);
      return;
    }
  }
  const char *cl = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && strtoull(cl, NULL, 10) > LM__HTTP_BODY_MAX)
    send_error(r, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL,
               "body of %.20s bytes; at most %d are accepted", cl,
               LM__HTTP_BODY_MAX);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
  (void)version;
  lm__http_t *h = cls;
  req_t *r = *con_cls;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r)
      return MHD_NO;
    r->h = h;
    r->c = c;
    r->refs = 1;
    r->id = ID_HTTP | ++h->next_id;
    r->linked = 1;
    r->next = h->reqs;
    if (h->reqs)
      h->reqs->prev = r;
    h->reqs = r;
    *con_cls = r;
    if (h->closing || !h->a->node)
      send_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, NULL,
                 "the agent is shutting down");
    else
      first(r, url, method);
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (r->done)
      return MHD_YES;
    if (r->too_big || r->len + n > LM__HTTP_BODY_MAX) {
      /* chunked past the limit: dropped as it comes, never kept */
      r->too_big = 1;
      r->discarded += n;
      free(r->body);
      r->body = NULL;
      r->len = 0;
      return r->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    char *nb = realloc(r->body, r->len + n);
    if (!nb)
      return MHD_NO;
    r->body = nb;
    memcpy(r->body + r->len, upload, n);
    r->len += n;
    return MHD_YES;
  }
  if (r->done || r->blocked || r->streaming)
    return MHD_YES;
  if (r->too_big) {
    send_error(r, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL,
               "body over %d bytes", LM__HTTP_BODY_MAX);
    return MHD_YES;
  }
  lm__http_query_t q;
  if (build(r, &q))
    return MHD_YES;
  if (q.blocking_index && view_index(h) <= q.index) {
    uint64_t w = q.has_wait ? q.wait_ms : LM__HTTP_WAIT_MAX_MS;
    if (w > LM__HTTP_WAIT_MAX_MS)
      w = LM__HTTP_WAIT_MAX_MS;
    if (w > 0) {
      r->blocked = 1;
      r->index = q.index;
      r->deadline_ms = lm__unix_ms() + (int64_t)w;
      h->nblocked++;
      MHD_suspend_connection(c);
      r->suspended = 1;
      if (!uv_is_active((uv_handle_t *)&h->block))
        uv_timer_start(&h->block, on_block, BLOCK_CHECK_MS, BLOCK_CHECK_MS);
      return MHD_YES;
    }
  }
  run(r);
  return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  (void)c, (void)why;
  lm__http_t *h = cls;
  req_t *r = *con_cls;
  if (!r)
    return;
  *con_cls = NULL;
  int was_stream = r->streaming;
  req_unlink(r);
  r->ended = 1;
  if (was_stream) /* its watch goes with it */
    lm__agent_conn_closed(h->a, r->id);
  req_unref(r);
}

/* ---- the loop ---- */

static void on_timer(uv_timer_t *t);

static void run_mhd(lm__http_t *h) {
  if (h->closing || !h->d)
    return;
  /* A resumed connection is taken back in one run and its answer or line
   * (produced at the end of that run) written in the next: without the
   * second run it would wait for the next event, however late. */
  for (int i = 0; i < 3; i++) {
    int again = h->resumed;
    h->resumed = 0;
    MHD_run(h->d);
    if (!again && !h->resumed)
      break;
  }
  MHD_UNSIGNED_LONG_LONG to;
  if (MHD_get_timeout(h->d, &to) == MHD_YES)
    uv_timer_start(&h->timer, on_timer, (uint64_t)to, 0);
  else
    uv_timer_stop(&h->timer);
}

static void on_timer(uv_timer_t *t) { run_mhd(t->data); }

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status, (void)events;
  run_mhd(p->data);
}

/* Resumed connections are processed at the next run: soon, not at once
 * (this may be called from inside MHD_run). */
static void kick(lm__http_t *h) {
  if (!h->closing && h->d)
    uv_timer_start(&h->timer, on_timer, 0, 0);
}

/* ---- start and stop ---- */

static int is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) ==
           127;
  return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static void handle_closed(uv_handle_t *hd) {
  lm__http_t *h = hd->data;
  if (--h->open == 0) {
    free(h->tls_cert);
    if (h->tls_key) {
      sodium_memzero(h->tls_key, strlen(h->tls_key));
      free(h->tls_key);
    }
    free(h);
  }
}

const char *lm__http_addr(const lm__http_t *h) { return h->addr; }

int lm__http_start(agent_t *a, char *err, size_t cap) {
  const lm__config_t *cfg = &a->cfg;
  /* the address: an empty host or localhost is 127.0.0.1 */
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  char host[64];
  const char *hp = cfg->http, *port;
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (hp[0] == '[') {
    const char *e = strchr(hp, ']');
    snprintf(host, sizeof host, "%.*s", (int)(e - hp - 1), hp + 1);
    port = e + 2;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)atoi(port));
    inet_pton(AF_INET6, host, &s6->sin6_addr);
    flags |= MHD_USE_IPv6;
  } else {
    const char *c = strrchr(hp, ':');
    snprintf(host, sizeof host, "%.*s", (int)(c - hp), hp);
    port = c + 1;
    if (!host[0] || !strcmp(host, "localhost"))
      snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)atoi(port));
    inet_pton(AF_INET, host, &s4->sin_addr);
  }
  int loop = is_loopback((struct sockaddr *)&ss);
  if (!loop && !cfg->http_allow_remote) {
    snprintf(err, cap, "--http %s is not a loopback address; the HTTP API "
             "is served on loopback only unless --http-allow-remote is "
             "given (with --http-token or --http-read-only)", hp);
    return -1;
  }
  if ((cfg->http_tls_cert != NULL) != (cfg->http_tls_key != NULL)) {
    snprintf(err, cap, "--http-tls-cert and --http-tls-key go together");
    return -1;
  }
  lm__http_t *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  h->a = a;
  h->loop = &a->loop;
  h->read_only = cfg->http_read_only;
  if (cfg->http_token) {
    char *tok = lm__read_small_file(cfg->http_token, 4096, err, cap, "--http-token");
    if (!tok)
      goto fail;
    size_t n = strlen(tok);
    while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' ||
                 tok[n - 1] == ' ' || tok[n - 1] == '\t'))
      tok[--n] = 0;
    if (!n || strchr(tok, '\n')) {
      snprintf(err, cap, "--http-token %s: expected one line, the token",
               cfg->http_token);
      free(tok);
      goto fail;
    }
    crypto_generichash(h->token_hash, sizeof h->token_hash,
                       (const uint8_t *)tok, n, NULL, 0);
    sodium_memzero(tok, n);
    free(tok);
    h->has_token = 1;
  }
  if (cfg->http_tls_cert) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      snprintf(err, cap, "--http-tls-cert: this build of libmicrohttpd has "
               "no TLS support; serve plain HTTP on loopback, or put a TLS "
               "proxy in front");
      goto fail;
    }
    if (!(h->tls_cert = lm__read_small_file(cfg->http_tls_cert, 1 << 20, err, cap,
                                  "--http-tls-cert")) ||
        !(h->tls_key = lm__read_small_file(cfg->http_tls_key, 1 << 20, err, cap,
                                 "--http-tls-key")))
      goto fail;
    flags |= MHD_USE_TLS;
  }
  if (!loop && !h->has_token && !h->read_only)
    hlog(h, LM_LOG_WARN, "serving %s beyond loopback with write endpoints "
         "and no --http-token: anyone who reaches it can register and "
         "deregister services", hp);
  unsigned conns = cfg->http_max_conns ? cfg->http_max_conns
                                       : LM__HTTP_MAX_CONNS_DEFAULT;
  unsigned idle = cfg->http_idle_timeout_s ? cfg->http_idle_timeout_s
                                           : LM__HTTP_IDLE_TIMEOUT_S_DEFAULT;
  struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
  if (h->tls_cert) {
    tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert};
    tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key};
  }
  h->d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_access, h, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, conns,
      MHD_OPTION_CONNECTION_TIMEOUT, idle, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)(32 * 1024), MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_ARRAY, tls,
      MHD_OPTION_END);
  if (!h->d) {
    snprintf(err, cap, "--http %s: cannot listen there (%s)", hp,
             errno ? strerror(errno) : "libmicrohttpd refused the settings");
    goto fail;
  }
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
  const union MHD_DaemonInfo *pi =
      MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  snprintf(h->addr, sizeof h->addr, "%s%s%s:%u", flags & MHD_USE_IPv6 ? "[" : "",
           host, flags & MHD_USE_IPv6 ? "]" : "",
           pi ? (unsigned)pi->port : (unsigned)atoi(port));
  if (!di || uv_poll_init(h->loop, &h->poll, di->epoll_fd)) {
    MHD_stop_daemon(h->d);
    snprintf(err, cap, "--http %s: cannot watch libmicrohttpd's epoll "
             "descriptor", hp);
    goto fail;
  }
  h->poll.data = h;
  uv_timer_init(h->loop, &h->timer);
  uv_timer_init(h->loop, &h->block);
  uv_timer_init(h->loop, &h->sweep);
  h->timer.data = h->block.data = h->sweep.data = h;
  h->open = 4;
  uv_timer_start(&h->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  uv_poll_start(&h->poll, UV_READABLE, on_poll);
  run_mhd(h);
  a->http = h;
  hlog(h, LM_LOG_INFO, "serving the HTTP API on %s://%s (%s%s, %u "
       "connections at most)", h->tls_cert ? "https" : "http", h->addr,
       h->read_only ? "read-only" : "reads and writes",
       h->has_token ? ", writes need the token" : "", conns);
  return 0;
fail:
  free(h->tls_cert);
  free(h->tls_key);
  free(h);
  return -1;
}

void lm__http_close(lm__http_t *h) {
  if (!h || h->closing)
    return;
  /* suspended connections must be resumed before MHD stops */
  for (req_t *r = h->reqs; r; r = r->next) {
    if (r->blocked) {
      r->blocked = 0;
      h->nblocked--;
      send_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, NULL,
                 "the agent is shutting down");
    }
    r->ended = 1;
    if (r->suspended) {
      r->suspended = 0;
      MHD_resume_connection(r->c);
    }
  }
  MHD_run(h->d);
  h->closing = 1;
  uv_poll_stop(&h->poll);
  MHD_stop_daemon(h->d);
  h->d = NULL;
  uv_close((uv_handle_t *)&h->poll, handle_closed);
  uv_close((uv_handle_t *)&h->timer, handle_closed);
  uv_close((uv_handle_t *)&h->block, handle_closed);
  uv_close((uv_handle_t *)&h->sweep, handle_closed);
}
