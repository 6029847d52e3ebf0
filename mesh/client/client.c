/*
 * client.c: the client library of include/livemesh/client.h: blocking
 * calls to the local agent over its control socket (one JSON object per
 * line each way, see docs/agent.md "Control socket" and "Services").
 *
 * One connection, kept open: an is_up is one write and one read on it,
 * with the request formatted into a buffer the client keeps and the answer
 * read into another. Every call carries an "id" and only the answer with
 * that id is taken, so an answer that arrives after its call timed out is
 * skipped instead of being taken for the next one's.
 *
 * When the connection breaks, the next call reconnects, except when the
 * client holds ephemeral registrations: those died with the connection,
 * and reconnecting silently would hide it. Such a client reports LM_EIO
 * until it is closed.
 *
 * Must never depend on the agent or the runtime: libc, jansson, and the
 * value types of the public headers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client_internal.h"
#include "socket_path.h"

#define DEFAULT_TIMEOUT_MS 5000
#define READ_CHUNK 16384
/* The largest answer taken: a `services` list of a big mesh. */
#define ANSWER_MAX (256u * 1024 * 1024)
#define ERR_MAX 512

struct lm_client {
  int fd; /* -1: not connected */
  int timeout_ms;
  uint64_t next_id;
  int used;      /* the connection has carried a request */
  int watching;  /* the connection is used up by a watch */
  int ephemeral; /* holds ephemeral registrations */
  int lost;      /* ...and the connection carrying them broke */
  char *rb;      /* answers: [roff, rlen) not yet taken */
  size_t roff, rlen, rcap;
  char *wb; /* requests of the fast paths */
  size_t wcap;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char err[ERR_MAX];
};

static int fail(lm_client_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(lm_client_t *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  return code;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll()'s timeout for a deadline; -1 (forever) for deadline 0 */
static int left_ms(int64_t deadline) {
  if (deadline == 0)
    return -1;
  int64_t d = deadline - now_ms();
  return d < 0 ? 0 : d > INT32_MAX ? INT32_MAX : (int)d;
}

static void disconnect(lm_client_t *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  c->roff = c->rlen = 0;
  c->used = 0;
  if (c->ephemeral)
    c->lost = 1;
}

static int dial(lm_client_t *c) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(c->path) >= sizeof sa.sun_path)
    return fail(c, LM_EINVAL, "socket path %s is too long", c->path);
  memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fail(c, LM_EIO, "socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(fd);
    /* the messages of lm__ctl_call, so every client explains alike */
    if (e == ENOENT)
      return fail(c, LM_EIO, "no agent at %s (no such socket: is `livemesh "
                  "agent` running? pass --socket PATH or set "
                  "LIVEMESH_SOCKET)", c->path);
    if (e == ECONNREFUSED)
      return fail(c, LM_EIO, "no agent at %s (connection refused: the agent "
                  "is not running)", c->path);
    if (e == EACCES || e == EPERM)
      return fail(c, LM_EIO, "no access to %s (permission denied: run as "
                  "the agent's user, or start the agent with "
                  "--socket-group)", c->path);
    if (e == EAGAIN)
      return fail(c, LM_EBUSY, "the agent at %s is not accepting "
                  "connections (its backlog is full)", c->path);
    return fail(c, LM_EIO, "cannot connect to %s: %s", c->path, strerror(e));
  }
  c->fd = fd;
  c->roff = c->rlen = 0;
  c->used = 0;
  return 0;
}

static int ensure_connected(lm_client_t *c) {
  if (c->watching)
    return fail(c, LM_ESTATE, "this client's connection is used by a watch; "
                "open another client");
  if (c->lost)
    return fail(c, LM_EIO, "the connection to the agent at %s was lost, and "
                "with it this client's ephemeral registrations; open a new "
                "client", c->path);
  return c->fd >= 0 ? 0 : dial(c);
}

/* 0, or a negative code with c->err set; `sent_none` tells whether the
 * agent can have seen any of it. */
static int send_all(lm_client_t *c, const char *p, size_t n, int64_t deadline,
                    int *sent_none) {
  size_t off = 0;
  *sent_none = 1;
  while (off < n) {
    ssize_t k = send(c->fd, p + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      off += (size_t)k;
      *sent_none = 0;
      continue;
    }
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
      int pr = poll(&pf, 1, left_ms(deadline));
      if (pr < 0 && errno == EINTR)
        continue;
      if (pr == 0)
        return fail(c, LM_ETIMEDOUT, "the agent at %s did not take the "
                    "request within %d ms", c->path, c->timeout_ms);
      continue;
    }
    return fail(c, LM_EIO, "sending to the agent at %s: %s", c->path,
                strerror(errno));
  }
  return 0;
}

/* The next line (NUL-terminated in place, without its '\n'); it stays
 * valid until the next read. */
static int read_line(lm_client_t *c, int64_t deadline, char **line,
                     size_t *len) {
  size_t scanned = c->roff;
  for (;;) {
    char *nl = c->rlen > scanned
                   ? memchr(c->rb + scanned, '\n', c->rlen - scanned)
                   : NULL;
    if (nl) {
      *line = c->rb + c->roff;
      *len = (size_t)(nl - *line);
      *nl = 0;
      c->roff = (size_t)(nl - c->rb) + 1;
      if (c->roff == c->rlen)
        c->roff = c->rlen = 0;
      return 0;
    }
    if (c->roff > 0) { /* keep the partial line at the start */
      memmove(c->rb, c->rb + c->roff, c->rlen - c->roff);
      c->rlen -= c->roff;
      c->roff = 0;
    }
    scanned = c->rlen;
    if (c->rcap - c->rlen < READ_CHUNK) {
      size_t nc = c->rcap ? c->rcap * 2 : 4 * READ_CHUNK;
      if (nc > ANSWER_MAX + READ_CHUNK)
        return fail(c, LM_EPROTO, "the agent's answer is longer than %u "
                    "bytes", ANSWER_MAX);
      char *nb = realloc(c->rb, nc);
      if (!nb)
        return fail(c, LM_ENOMEM, "out of memory");
      c->rb = nb;
      c->rcap = nc;
    }
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&pf, 1, left_ms(deadline));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      return fail(c, LM_EIO, "poll: %s", strerror(errno));
    if (pr == 0)
      return fail(c, LM_ETIMEDOUT, "the agent at %s did not answer within "
                  "%d ms", c->path, c->timeout_ms);
    ssize_t k = recv(c->fd, c->rb + c->rlen, c->rcap - c->rlen - 1, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return fail(c, LM_EIO, "reading from the agent at %s: %s", c->path,
                  strerror(errno));
    if (k == 0)
      return fail(c, LM_EIO, "the agent at %s closed the connection", c->path);
    c->rlen += (size_t)k;
  }
}

/* The agent's refusal as a code, with its message. */
static int refusal(lm_client_t *c, const json_t *resp) {
  const char *e = json_string_value(json_object_get(resp, "error"));
  const char *code = json_string_value(json_object_get(resp, "code"));
  snprintf(c->err, sizeof c->err, "%s", e ? e : "the agent refused the "
           "request");
  if (code && !strcmp(code, "not_found"))
    return LM_ENOTFOUND;
  if (code && !strcmp(code, "busy"))
    return LM_EBUSY;
  if (code && !strcmp(code, "exists"))
    return LM_EEXIST;
  if (code && !strcmp(code, "not_permitted"))
    return LM_EPERM;
  return LM_EINVAL;
}

/* Sends one request line (text of n bytes, ending in '\n') whose "id" is
 * `id`, and reads lines until the answer with that id (or one without an
 * id: the agent's reply to a line it could not parse). The answer is
 * parsed into *resp when resp is not NULL, and its text is left at
 * *text (length *tlen) until the next read. Transport errors drop the connection;
 * a request that cannot have reached the agent on a reused connection (the
 * agent restarted since) is sent once more on a new one. */
static int exchange(lm_client_t *c, const char *req, size_t n,
                    const json_t *id, json_t **resp, char **text,
                    size_t *tlen) {
  if (resp)
    *resp = NULL;
  for (int attempt = 0;; attempt++) {
    int rc = ensure_connected(c);
    if (rc)
      return rc;
    int64_t deadline = now_ms() + c->timeout_ms;
    int reused = c->used, none;
    c->used = 1;
    rc = send_all(c, req, n, deadline, &none);
    if (rc) {
      disconnect(c);
      if (none && reused && attempt == 0 && !c->lost)
        continue;
      return rc;
    }
    for (;;) {
      char *line;
      size_t len;
      rc = read_line(c, deadline, &line, &len);
      if (rc) {
        disconnect(c);
        return rc;
      }
      if (len == 0)
        continue;
      json_error_t je;
      json_t *j = json_loadb(line, len, 0, &je);
      if (!json_is_object(j)) {
        json_decref(j);
        disconnect(c);
        return fail(c, LM_EPROTO, "the agent at %s answered something that "
                    "is not a JSON object", c->path);
      }
      json_t *rid = json_object_get(j, "id");
      if (rid && !json_equal(rid, (json_t *)id)) {
        json_decref(j); /* a late answer to an earlier call */
        continue;
      }
      if (text) {
        *text = line;
        *tlen = len;
      }
      int out = json_is_true(json_object_get(j, "ok")) ? 0 : refusal(c, j);
      if (out == 0)
        c->err[0] = 0;
      if (resp)
        *resp = j;
      else
        json_decref(j);
      return out;
    }
  }
}

/* A request built with jansson: sets "id", sends, waits for the answer. */
static int call_json(lm_client_t *c, json_t *req, json_t **resp) {
  json_t *id = json_integer((json_int_t)++c->next_id);
  if (!id || json_object_set_new(req, "id", id)) {
    json_decref(req);
    return fail(c, LM_ENOMEM, "out of memory");
  }
  char *text = json_dumps(req, JSON_COMPACT);
  if (!text) {
    json_decref(req);
    return fail(c, LM_ENOMEM, "out of memory");
  }
  size_t n = strlen(text);
  text[n] = '\n'; /* the NUL becomes the line's end */
  int rc = exchange(c, text, n + 1, id, resp, NULL, NULL);
  free(text);
  json_decref(req);
  return rc;
}

/* ---- open and close ---- */

int lm__client_open_err(lm_client_t **out, const char *socket_path,
                        int timeout_ms, char *err, size_t errcap) {
  *out = NULL;
  if (err && errcap)
    err[0] = 0;
  if (timeout_ms < 0) {
    if (err)
      snprintf(err, errcap, "timeout_ms must not be negative");
    return LM_EINVAL;
  }
  lm_client_t *c = calloc(1, sizeof *c);
  if (!c) {
    if (err)
      snprintf(err, errcap, "out of memory");
    return LM_ENOMEM;
  }
  c->fd = -1;
  c->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
  char path[4096];
  lm__socket_path_resolve(socket_path, path, sizeof path);
  int rc;
  if (strlen(path) >= sizeof c->path) {
    rc = fail(c, LM_EINVAL, "socket path %s is too long (at most %zu bytes)",
              path, sizeof c->path - 1);
  } else {
    memcpy(c->path, path, strlen(path) + 1);
    rc = dial(c);
  }
  if (rc) {
    if (err)
      snprintf(err, errcap, "%s", c->err);
    lm_client_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

int lm_client_open(lm_client_t **out, const char *socket_path,
                   int timeout_ms) {
  return lm__client_open_err(out, socket_path, timeout_ms, NULL, 0);
}

void lm_client_close(lm_client_t *c) {
  if (!c)
    return;
  if (c->fd >= 0)
    close(c->fd);
  free(c->rb);
  free(c->wb);
  free(c);
}

const char *lm_client_error(const lm_client_t *c) { return c ? c->err : ""; }

int lm__client_fd(const lm_client_t *c) { return c ? c->fd : -1; }

const char *lm__client_path(const lm_client_t *c) { return c ? c->path : ""; }

/* ---- is_up: the fast path ---- */

/* Appends s as a JSON string (quotes included) to d[*n..cap); -1 when it
 * does not fit. */
static int put_jstr(char *d, size_t cap, size_t *n, const char *s) {
  static const char hex[] = "0123456789abcdef";
  size_t k = *n;
  if (k + 1 >= cap)
    return -1;
  d[k++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (k + 7 >= cap)
      return -1;
    if (*p == '"' || *p == '\\') {
      d[k++] = '\\';
      d[k++] = (char)*p;
    } else if (*p < 0x20) {
      memcpy(d + k, "\\u00", 4);
      d[k + 4] = hex[*p >> 4];
      d[k + 5] = hex[*p & 15];
      k += 6;
    } else {
      d[k++] = (char)*p;
    }
  }
  if (k + 1 >= cap)
    return -1;
  d[k++] = '"';
  *n = k;
  return 0;
}

static int status_from_name(const char *s, lm_svc_status_t *out) {
  static const char *const N[] = {"up", "down", "maintenance"};
  for (int i = 0; i < 3; i++)
    if (s && !strcmp(s, N[i])) {
      *out = (lm_svc_status_t)i;
      return 0;
    }
  return -1;
}

static int member_status_from_name(const char *s, lm_status_t *out) {
  static const char *const N[] = {"alive", "suspect", "dead", "left"};
  for (int i = 0; i < 4; i++)
    if (s && !strcmp(s, N[i])) {
      *out = (lm_status_t)i;
      return 0;
    }
  return -1;
}

static int is_up_answer(lm_client_t *c, const json_t *r, lm_is_up_t *out) {
  lm_is_up_t tmp;
  if (!out)
    out = &tmp;
  memset(out, 0, sizeof *out);
  const char *st = json_string_value(json_object_get(r, "status"));
  int up = json_is_true(json_object_get(r, "up"));
  if (!st)
    return fail(c, LM_EPROTO, "the agent's is-up answer has no status");
  if (!strcmp(st, "unknown"))
    return 0;
  if (status_from_name(st, &out->status))
    return fail(c, LM_EPROTO, "the agent's is-up answer has an unknown "
                "status \"%s\"", st);
  out->found = 1;
  out->up = up;
  const char *ms = json_string_value(json_object_get(r, "member_status"));
  if (member_status_from_name(ms, &out->member_status))
    out->member_status = LM_DEAD;
  const char *u = json_string_value(json_object_get(r, "uuid"));
  if (u && lm_uuid_parse(out->uuid, u) != 0)
    memset(out->uuid, 0, sizeof out->uuid);
  const char *t = json_string_value(json_object_get(r, "type"));
  const char *h = json_string_value(json_object_get(r, "host"));
  snprintf(out->type, sizeof out->type, "%s", t ? t : "");
  snprintf(out->host, sizeof out->host, "%s", h ? h : "");
  out->age_ms = json_integer_value(json_object_get(r, "age_ms"));
  return up ? 1 : 0;
}

/* Formats the request into c->wb (kept between calls) and exchanges it. */
static int is_up_call(lm_client_t *c, const char *type, const char *host,
                      const char *uuid, lm_is_up_t *out) {
  size_t need = 96 + 6 * (strlen(type ? type : "") + strlen(host ? host : "") +
                          (uuid ? strlen(uuid) : 0));
  if (need > c->wcap) {
    char *nb = realloc(c->wb, need);
    if (!nb)
      return fail(c, LM_ENOMEM, "out of memory");
    c->wb = nb;
    c->wcap = need;
  }
  uint64_t id = ++c->next_id;
  size_t n = (size_t)snprintf(c->wb, c->wcap, "{\"cmd\":\"is-up\",\"id\":%llu",
                              (unsigned long long)id);
  int bad = 0;
  if (uuid) {
    memcpy(c->wb + n, ",\"uuid\":", 8);
    n += 8;
    bad |= put_jstr(c->wb, c->wcap, &n, uuid);
  } else {
    memcpy(c->wb + n, ",\"type\":", 8);
    n += 8;
    bad |= put_jstr(c->wb, c->wcap, &n, type);
    memcpy(c->wb + n, ",\"host\":", 8);
    n += 8;
    bad |= put_jstr(c->wb, c->wcap, &n, host);
  }
  if (bad || n + 3 > c->wcap)
    return fail(c, LM_ENOMEM, "request too long");
  c->wb[n++] = '}';
  c->wb[n++] = '\n';
  json_t *jid = json_integer((json_int_t)id), *resp = NULL;
  if (!jid)
    return fail(c, LM_ENOMEM, "out of memory");
  int rc = exchange(c, c->wb, n, jid, &resp, NULL, NULL);
  json_decref(jid);
  if (rc == 0)
    rc = is_up_answer(c, resp, out);
  else if (out)
    memset(out, 0, sizeof *out);
  json_decref(resp);
  return rc;
}

int lm_client_is_up(lm_client_t *c, const char *type, const char *host,
                    lm_is_up_t *out) {
  if (!c || !type || !host || !*type || !*host)
    return c ? fail(c, LM_EINVAL, "is_up needs a type and a host")
             : LM_EINVAL;
  if (strlen(type) > LM_SVC_TYPE_MAX || strlen(host) > LM_SVC_HOST_MAX)
    return fail(c, LM_EINVAL, "type or host longer than %d bytes",
                LM_SVC_TYPE_MAX);
  return is_up_call(c, type, host, NULL, out);
}

int lm_client_is_up_uuid(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN],
                         lm_is_up_t *out) {
  if (!c || !uuid)
    return c ? fail(c, LM_EINVAL, "is_up_uuid needs a uuid") : LM_EINVAL;
  char u[LM_UUID_STRLEN + 1];
  lm_uuid_format(u, uuid);
  return is_up_call(c, NULL, NULL, u, out);
}

/* ---- registrations ---- */

static json_t *ms_json(uint32_t ms) {
  char b[24];
  snprintf(b, sizeof b, "%ums", (unsigned)ms);
  return json_string(b);
}

json_t *lm__spec_to_json(const lm_service_spec_t *s, int ephemeral) {
  json_t *o = json_object();
  if (!o)
    return NULL;
  int bad = json_object_set_new(o, "cmd", json_string("register"));
#define SET(k, v) bad |= json_object_set_new(o, k, v)
  SET("type", json_string(s->type ? s->type : ""));
  if (s->name && *s->name)
    SET("name", json_string(s->name));
  if (s->uuid) {
    char u[LM_UUID_STRLEN + 1];
    lm_uuid_format(u, s->uuid);
    SET("uuid", json_string(u));
  }
  if (s->pid)
    SET("pid", json_integer(s->pid));
  if (s->worker >= 0)
    SET("worker", json_integer(s->worker));
  if (s->region && *s->region)
    SET("region", json_string(s->region));
  if (s->port)
    SET("port", json_integer(s->port));
  if (s->ntags) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->ntags; i++)
      bad |= json_array_append_new(a, json_string(s->tags[i]));
    SET("tags", a);
  }
  if (s->nmeta) {
    json_t *m = json_object();
    for (size_t i = 0; m && i < s->nmeta; i++)
      bad |= json_object_set_new(m, s->meta_keys[i],
                                 json_string(s->meta_values[i]));
    SET("meta", m);
  }
  if (s->ttl_ms)
    SET("ttl", ms_json(s->ttl_ms));
  if (s->http_check)
    SET("http_check", json_string(s->http_check));
  if (s->tcp_check)
    SET("tcp_check", json_string(s->tcp_check));
  if (s->exec_check)
    SET("exec_check", json_string(s->exec_check));
  if (s->interval_ms)
    SET("interval", ms_json(s->interval_ms));
  if (s->timeout_ms)
    SET("timeout", ms_json(s->timeout_ms));
  if (s->failures_before_down)
    SET("failures_before_down", json_integer(s->failures_before_down));
  if (s->successes_before_up)
    SET("successes_before_up", json_integer(s->successes_before_up));
  if (ephemeral)
    SET("ephemeral", json_true());
#undef SET
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int lm_client_register(lm_client_t *c, const lm_service_spec_t *spec,
                       int ephemeral, uint8_t uuid_out[LM_UUID_LEN]) {
  if (!c || !spec || !spec->type)
    return c ? fail(c, LM_EINVAL, "register needs a spec with a type")
             : LM_EINVAL;
  json_t *req = lm__spec_to_json(spec, ephemeral), *resp = NULL;
  if (!req)
    return fail(c, LM_ENOMEM, "out of memory (or a string that is not "
                "UTF-8 in the spec)");
  int rc = call_json(c, req, &resp);
  if (rc == 0) {
    const char *u = json_string_value(json_object_get(resp, "uuid"));
    uint8_t tmp[LM_UUID_LEN];
    if (!u || lm_uuid_parse(uuid_out ? uuid_out : tmp, u) != 0)
      rc = fail(c, LM_EPROTO, "the agent's register answer has no uuid");
    else if (ephemeral)
      c->ephemeral = 1;
  }
  json_decref(resp);
  return rc;
}

/* {"cmd":cmd,"uuid":U} plus `extra` (stolen), answered by {"ok":true}. */
static int uuid_call(lm_client_t *c, const char *cmd,
                     const uint8_t uuid[LM_UUID_LEN], json_t *extra) {
  if (!c || !uuid) {
    json_decref(extra);
    return c ? fail(c, LM_EINVAL, "%s needs a uuid", cmd) : LM_EINVAL;
  }
  char u[LM_UUID_STRLEN + 1];
  lm_uuid_format(u, uuid);
  json_t *req = json_pack("{s:s, s:s}", "cmd", cmd, "uuid", u);
  if (!req || (extra && json_object_update(req, extra))) {
    json_decref(req);
    json_decref(extra);
    return fail(c, LM_ENOMEM, "out of memory");
  }
  json_decref(extra);
  return call_json(c, req, NULL);
}

static json_t *note_json(const char *note) {
  if (!note)
    return NULL;
  return json_pack("{s:s}", "note", note);
}

int lm_client_deregister(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN]) {
  return uuid_call(c, "deregister", uuid, NULL);
}

int lm_client_pass(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN],
                   const char *note) {
  return uuid_call(c, "pass", uuid, note_json(note));
}

int lm_client_fail(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN],
                   const char *note) {
  return uuid_call(c, "fail", uuid, note_json(note));
}

int lm_client_maint(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN],
                    int64_t until_ms, int off, const char *note) {
  if (!c)
    return LM_EINVAL;
  json_t *extra = json_object();
  if (!extra)
    return fail(c, LM_ENOMEM, "out of memory");
  if (off) {
    json_object_set_new(extra, "off", json_true());
  } else if (until_ms > 0) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t d = until_ms - ((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    if (d <= 0) {
      json_decref(extra);
      return fail(c, LM_EINVAL, "maintenance until a time in the past");
    }
    char b[32];
    snprintf(b, sizeof b, "%lldms", (long long)d);
    json_object_set_new(extra, "for", json_string(b));
  } /* neither: until turned off */
  if (note && !off)
    json_object_set_new(extra, "note", json_string(note));
  return uuid_call(c, "maint", uuid, extra);
}

/* ---- any request ---- */

int lm_client_request(lm_client_t *c, const char *json, char **resp) {
  if (resp)
    *resp = NULL;
  if (!c || !json || !resp)
    return c ? fail(c, LM_EINVAL, "request needs a JSON text and a place "
                    "for the answer")
             : LM_EINVAL;
  json_error_t je;
  json_t *req = json_loads(json, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(req) || !json_is_string(json_object_get(req, "cmd"))) {
    json_decref(req);
    return fail(c, LM_EINVAL, "the request must be a JSON object with a "
                "\"cmd\" string%s%s", req ? "" : ": ", req ? "" : je.text);
  }
  const char *cmd = json_string_value(json_object_get(req, "cmd"));
  int is_watch = !strcmp(cmd, "watch");
  int eph = !strcmp(cmd, "register") &&
            json_is_true(json_object_get(req, "ephemeral"));
  json_t *id = json_object_get(req, "id");
  if (id)
    json_incref(id);
  else if (!(id = json_integer((json_int_t)++c->next_id)) ||
           json_object_set(req, "id", id)) {
    json_decref(id);
    json_decref(req);
    return fail(c, LM_ENOMEM, "out of memory");
  }
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  if (!text) {
    json_decref(id);
    return fail(c, LM_ENOMEM, "out of memory");
  }
  size_t n = strlen(text);
  text[n] = '\n';
  char *line = NULL;
  size_t len = 0;
  int rc = exchange(c, text, n + 1, id, NULL, &line, &len);
  free(text);
  json_decref(id);
  if (line) {
    if (!(*resp = malloc(len + 1)))
      return fail(c, LM_ENOMEM, "out of memory");
    memcpy(*resp, line, len + 1);
  }
  if (rc == 0 && is_watch)
    c->watching = 1; /* the events follow on this connection */
  if (rc == 0 && eph)
    c->ephemeral = 1;
  return rc;
}

/* ---- watch ---- */

int lm_client_watch(lm_client_t *c, const lm_watch_filter_t *f,
                    lm_client_watch_cb cb, void *ud, int timeout_ms) {
  if (!c || !cb || timeout_ms < 0)
    return c ? fail(c, LM_EINVAL, "watch needs a callback and a timeout >= "
                    "0")
             : LM_EINVAL;
  json_t *req = json_pack("{s:s}", "cmd", "watch");
  if (!req)
    return fail(c, LM_ENOMEM, "out of memory");
  if (f && f->type)
    json_object_set_new(req, "type", json_string(f->type));
  if (f && f->host)
    json_object_set_new(req, "host", json_string(f->host));
  if (f && f->uuid) {
    char u[LM_UUID_STRLEN + 1];
    lm_uuid_format(u, f->uuid);
    json_object_set_new(req, "uuid", json_string(u));
  }
  if (f && f->members)
    json_object_set_new(req, "members", json_true());
  if (f && f->all)
    json_object_set_new(req, "all", json_true());
  int rc = call_json(c, req, NULL);
  if (rc)
    return rc;
  c->watching = 1;
  for (;;) {
    char *line;
    size_t len;
    rc = read_line(c, timeout_ms ? now_ms() + timeout_ms : 0, &line, &len);
    if (rc == LM_ETIMEDOUT)
      return fail(c, rc, "no watch event within %d ms", timeout_ms);
    if (rc)
      return rc;
    if (len == 0)
      continue;
    /* the agent ends a watch it cannot keep (a reader too slow) with an
     * error line */
    if (!strncmp(line, "{\"ok\":false", 11)) {
      json_t *j = json_loadb(line, len, 0, NULL);
      const char *e = json_string_value(json_object_get(j, "error"));
      fail(c, LM_EIO, "the agent ended the watch: %s", e ? e : line);
      json_decref(j);
      return LM_EIO;
    }
    if (cb(ud, line))
      return 0;
  }
}
