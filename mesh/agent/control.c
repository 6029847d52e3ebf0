/*
 * control.c: the control socket, server side on the agent's libuv loop and
 * client side as one blocking call for the CLI; plus the shared JSON shape
 * of a member. See control.h for the protocol and the limits, and
 * docs/agent.md for the commands.
 *
 * Why the limits: the agent is a long-lived process that any local user in
 * the socket's group may talk to. A request line is bounded (64 KiB), so is
 * the number of clients and the replies a client leaves unread, so no client
 * can make the agent grow without bound or wait on it.
 *
 * Must never depend on node.c's or swim/'s internals.
 */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "socket_path.h"
#include "svc_json.h"

#define CLOSE_GRACE_MS 1000
/* After an oversize line the rest of it is read and dropped, so the client
 * gets the error instead of a reset; past this much, it is simply cut. */
#define DISCARD_MAX (1024 * 1024)

typedef struct conn {
  uv_pipe_t pipe;
  uv_shutdown_t sreq;
  struct lm__ctl_server *srv;
  struct conn *next, *prev;
  uint64_t id;
  char *buf;
  size_t len, cap;
  int closing;    /* uv_close called */
  int streaming;  /* carries a stream (watch): input is no longer requests */
  int ending;     /* reading stopped, shutting down after the last write */
  int discarding; /* after an oversize line: input dropped until EOF */
  size_t discarded;
} conn_t;

struct lm__ctl_server {
  uv_loop_t *loop;
  uv_pipe_t listener;
  uv_timer_t grace;
  char *path;
  dev_t dev;
  ino_t ino;
  lm__ctl_request_cb on_request;
  lm__ctl_log_cb log;
  lm__ctl_close_cb on_close;
  void *ud;
  conn_t *conns;
  size_t nconns;
  uint64_t next_id;
  int open;    /* handles not yet closed: listener, timer, connections */
  int closing;
  int grace_closed;
  uint64_t refused;
  void (*close_cb)(void *ud);
  void *close_ud;
};

typedef struct wreq {
  uv_write_t req;
  conn_t *conn;
  size_t len;
  char data[];
} wreq_t;

/* ---- shared formatting ---- */

int64_t lm__unix_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void lm__rfc3339(char *out, size_t cap, int64_t ms) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char b[32];
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, cap, "%s.%03dZ", b, (int)(ms % 1000 + 1000) % 1000);
}

char *lm__read_small_file(const char *path, size_t max, char *err,
                          size_t cap, const char *what) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, cap, "%s %s: %s", what, path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(max + 1);
  size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
  fclose(f);
  if (!buf || n > max) {
    snprintf(err, cap, "%s %s: %s", what, path,
             buf ? "too large" : "out of memory");
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  return buf;
}

void lm__hex(char *out, const uint8_t *p, size_t n) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[p[i] >> 4];
    out[2 * i + 1] = d[p[i] & 15];
  }
  out[2 * n] = 0;
}

json_t *lm__member_json(const lm_member_t *m, size_t services) {
  char id[2 * LM_ID_LEN + 1], since[40];
  lm__hex(id, m->id, LM_ID_LEN);
  lm__rfc3339(since, sizeof since, m->since_ms);
  return json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I}, s:I, s:s}", "name",
                   m->name, "id", id, "addr", m->addr, "status",
                   lm_status_name(m->status), "incarnation", "generation",
                   (json_int_t)m->generation, "version",
                   (json_int_t)m->version, "services", (json_int_t)services,
                   "since", since);
}

/* ---- server ---- */

static void slog(lm__ctl_server_t *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void slog(lm__ctl_server_t *s, int level, const char *fmt, ...) {
  if (!s->log)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  s->log(s->ud, level, buf);
}

static void maybe_finish(lm__ctl_server_t *s) {
  if (!s->closing || s->open > 0)
    return;
  void (*cb)(void *) = s->close_cb;
  void *ud = s->close_ud;
  free(s->path);
  free(s);
  if (cb)
    cb(ud);
}

static void handle_closed(uv_handle_t *h) {
  lm__ctl_server_t *s = h->data;
  s->open--;
  maybe_finish(s);
}

static void close_grace(lm__ctl_server_t *s) {
  if (s->grace_closed)
    return;
  s->grace_closed = 1;
  uv_close((uv_handle_t *)&s->grace, handle_closed);
}

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  lm__ctl_server_t *s = c->srv;
  /* c->id is 0 for a connection refused at once: nothing was tied to it */
  if (c->id && s->on_close)
    s->on_close(s, c->id, s->ud);
  free(c->buf);
  free(c);
  s->open--;
  /* the last client gone: no reason to wait out the grace period */
  if (s->closing && !s->conns)
    close_grace(s);
  maybe_finish(s);
}

static void conn_close(conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  lm__ctl_server_t *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nconns--;
  uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  if (c->discarding && status == 0 && !c->ending)
    return; /* the client's EOF closes it */
  conn_close(c);
}

/* Stop reading, let what was written drain, then close. */
static void conn_end(conn_t *c) {
  if (c->closing || c->ending)
    return;
  c->ending = 1;
  uv_read_stop((uv_stream_t *)&c->pipe);
  c->sreq.data = c;
  if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->pipe, on_shutdown))
    conn_close(c);
}

static conn_t *find_conn(lm__ctl_server_t *s, uint64_t id) {
  for (conn_t *c = s->conns; c; c = c->next)
    if (c->id == id)
      return c;
  return NULL;
}

static void on_written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = w->conn;
  free(w);
  if (status && status != UV_ECANCELED)
    conn_close(c);
}

static int conn_send(conn_t *c, json_t *resp) {
  char *text = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(resp);
  if (!text)
    return -1;
  size_t n = strlen(text);
  wreq_t *w = malloc(sizeof *w + n + 1);
  if (!w) {
    free(text);
    return -1;
  }
  memcpy(w->data, text, n);
  w->data[n] = '\n';
  free(text);
  w->conn = c;
  w->len = n + 1;
  /* What counts is what the kernel has not taken: a reader that keeps up
   * (a watcher fed many events in one loop turn) drains its socket and
   * never comes near the limit; one that stops reading does. */
  size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
  if (queued + w->len > LM__CTL_BACKLOG_MAX) {
    /* a client that does not read its answers is not worth memory */
    free(w);
    slog(c->srv, LM_LOG_WARN, "control client %llu does not read its %s; "
         "disconnected", (unsigned long long)c->id,
         c->streaming ? "watch events" : "replies");
    if (c->streaming) {
      /* a last word, if there is room for it right now */
      static const char bye[] =
          "{\"ok\":false,\"error\":\"watch ended: the client does not read "
          "its events fast enough\"}\n";
      uv_buf_t b = uv_buf_init((char *)bye, sizeof bye - 1);
      uv_try_write((uv_stream_t *)&c->pipe, &b, 1); /* fails if queued */
    }
    conn_close(c);
    return -1;
  }
  uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
  if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written)) {
    free(w);
    conn_close(c);
    return -1;
  }
  return 0;
}

int lm__ctl_reply(lm__ctl_server_t *s, uint64_t conn_id, json_t *id,
                  json_t *resp) {
  conn_t *c = find_conn(s, conn_id);
  if (!c || c->closing || !resp) {
    json_decref(resp);
    return -1;
  }
  if (id)
    json_object_set(resp, "id", id);
  return conn_send(c, resp);
}

int lm__ctl_reply_error(lm__ctl_server_t *s, uint64_t conn_id, json_t *id,
                        const char *msg) {
  char text[512];
  snprintf(text, sizeof text, "%s", msg);
  lm__utf8_scrub(text);
  return lm__ctl_reply(s, conn_id, id,
                       json_pack("{s:b, s:s}", "ok", 0, "error", text));
}

int lm__ctl_reply_refusal(lm__ctl_server_t *s, uint64_t conn_id, json_t *id,
                          const char *msg, const char *code) {
  return lm__ctl_reply(s, conn_id, id,
                       json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg,
                                 "code", code));
}

void lm__ctl_server_on_close(lm__ctl_server_t *s, lm__ctl_close_cb cb) {
  s->on_close = cb;
}

int lm__ctl_conn_stream(lm__ctl_server_t *s, uint64_t conn_id) {
  conn_t *c = find_conn(s, conn_id);
  if (!c || c->closing)
    return -1;
  c->streaming = 1;
  return 0;
}

size_t lm__ctl_client_count(const lm__ctl_server_t *s) { return s->nconns; }

int lm__ctl_parse_line(const char *line, size_t len, json_t **req,
                       char *err, size_t errcap) {
  *req = NULL;
  while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
    len--;
  if (!len)
    return 1; /* blank lines keep a hand-typed session (socat) friendly */
  json_error_t je;
  json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    snprintf(err, errcap, "bad JSON at column %d: %s", je.column, je.text);
    return -1;
  }
  /* what the command is (and whether it is known) is the command
   * table's business (commands.c), not the transport's */
  if (!json_is_object(j)) {
    json_decref(j);
    snprintf(err, errcap, "expected a JSON object such as {\"cmd\":\"ping\"}");
    return -1;
  }
  *req = j;
  return 0;
}

static void handle_line(conn_t *c, char *line, size_t len) {
  lm__ctl_server_t *s = c->srv;
  json_t *req;
  char msg[256];
  int rc = lm__ctl_parse_line(line, len, &req, msg, sizeof msg);
  if (rc > 0)
    return;
  if (rc < 0) {
    lm__ctl_reply_error(s, c->id, NULL, msg);
    return;
  }
  s->on_request(s, c->id, req, s->ud);
  json_decref(req);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  conn_t *c = h->data;
  /* room for one maximal line plus its newline, grown as data comes */
  size_t want = c->len + 4096;
  if (want > LM__CTL_LINE_MAX + 2)
    want = LM__CTL_LINE_MAX + 2;
  if (want > c->cap) {
    char *nb = realloc(c->buf, want);
    if (!nb) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->buf = nb;
    c->cap = want;
  }
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn_t *c = st->data;
  if (c->discarding) {
    c->discarded += nread > 0 ? (size_t)nread : 0;
    if (nread < 0 || c->discarded > DISCARD_MAX)
      conn_close(c);
    else
      c->len = 0;
    return;
  }
  if (nread < 0) {
    /* EOF: finish the replies already queued (a client may half-close
     * after its request), then close */
    if (nread == UV_EOF)
      conn_end(c);
    else
      conn_close(c);
    return;
  }
  if (c->streaming) {
    c->len = 0; /* a watch's client has nothing more to ask */
    return;
  }
  size_t scan = c->len;
  c->len += (size_t)nread;
  size_t start = 0;
  for (size_t i = scan;
       i < c->len && !c->closing && !c->ending && !c->streaming; i++) {
    if (c->buf[i] != '\n')
      continue;
    if (i - start > LM__CTL_LINE_MAX)
      break;
    handle_line(c, c->buf + start, i - start);
    start = i + 1;
  }
  if (c->closing || c->ending)
    return;
  if (c->streaming) {
    c->len = 0;
    return;
  }
  memmove(c->buf, c->buf + start, c->len - start);
  c->len -= start;
  if (c->len > LM__CTL_LINE_MAX) {
    char msg[96];
    snprintf(msg, sizeof msg, "request line longer than %d bytes",
             LM__CTL_LINE_MAX);
    lm__ctl_reply_error(c->srv, c->id, NULL, msg);
    slog(c->srv, LM_LOG_WARN, "control client %llu sent an oversize line; "
         "disconnected", (unsigned long long)c->id);
    c->discarding = 1;
    c->len = 0;
    c->sreq.data = c;
    if (c->closing ||
        uv_shutdown(&c->sreq, (uv_stream_t *)&c->pipe, on_shutdown))
      conn_close(c);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  lm__ctl_server_t *s = server->data;
  if (status < 0 || s->closing)
    return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c || uv_pipe_init(s->loop, &c->pipe, 0)) {
    free(c);
    return;
  }
  c->pipe.data = c;
  c->srv = s;
  s->open++;
  if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
    uv_close((uv_handle_t *)&c->pipe, conn_closed);
    return;
  }
  if (s->nconns >= LM__CTL_CLIENTS_MAX) {
    /* accepted only to be closed, so the backlog cannot fill up */
    if (s->refused++ % 100 == 0)
      slog(s, LM_LOG_WARN, "control socket: %d clients already; refusing "
           "more (%llu refused so far)", LM__CTL_CLIENTS_MAX,
           (unsigned long long)s->refused);
    uv_close((uv_handle_t *)&c->pipe, conn_closed);
    return;
  }
  c->id = ++s->next_id;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read))
    conn_close(c);
}

/* 1: something accepts connections at `path`; 0: nothing does. */
static int socket_alive(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  close(fd);
  /* EAGAIN: the listener's backlog is full, so somebody is listening */
  return rc == 0 || e == EAGAIN;
}

int lm__ctl_server_new(lm__ctl_server_t **out, uv_loop_t *loop,
                       const char *path, const char *group,
                       lm__ctl_request_cb on_request, lm__ctl_log_cb log,
                       void *ud, char *err, size_t cap) {
  *out = NULL;
  struct sockaddr_un sa;
  if (strlen(path) >= sizeof sa.sun_path) {
    snprintf(err, cap, "socket path %s is too long (at most %zu bytes)",
             path, sizeof sa.sun_path - 1);
    return -ENAMETOOLONG;
  }
  gid_t gid = (gid_t)-1;
  if (group) {
    struct group gr, *res = NULL;
    char gbuf[4096];
    if (getgrnam_r(group, &gr, gbuf, sizeof gbuf, &res) != 0 || !res) {
      snprintf(err, cap, "--socket-group %s: no such group", group);
      return -ENOENT;
    }
    gid = gr.gr_gid;
  }
  /* the directory: create it if missing, traversable by the group only
   * when a group is to use the socket */
  char dir[sizeof sa.sun_path];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    struct stat dst;
    if (stat(dir, &dst) != 0) {
      int rc = lm__mkdirs(dir, group ? 0750 : 0700);
      if (rc) {
        snprintf(err, cap, "cannot create %s for the control socket: %s", dir,
                 strerror(-rc));
        return rc;
      }
      if (group && chown(dir, (uid_t)-1, gid) != 0) {
        int e = errno;
        snprintf(err, cap, "cannot give %s to group %s: %s", dir, group,
                 strerror(e));
        return -e;
      }
    }
  }
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, cap, "%s exists and is not a socket; remove it or choose "
               "another --socket", path);
      return -EEXIST;
    }
    if (socket_alive(path)) {
      snprintf(err, cap, "another agent is running (it answers on %s)", path);
      return -EADDRINUSE;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
      int e = errno;
      snprintf(err, cap, "cannot remove the stale socket %s: %s", path,
               strerror(e));
      return -e;
    }
    if (log)
      log(ud, LM_LOG_INFO, "removed a stale control socket left by a dead "
          "agent");
  }
  lm__ctl_server_t *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path))) {
    free(s);
    snprintf(err, cap, "out of memory");
    return -ENOMEM;
  }
  s->loop = loop;
  s->on_request = on_request;
  s->log = log;
  s->ud = ud;
  int rc = uv_pipe_init(loop, &s->listener, 0);
  if (rc) {
    snprintf(err, cap, "control socket: %s", uv_strerror(rc));
    free(s->path);
    free(s);
    return rc;
  }
  s->listener.data = s;
  s->open++;
  uv_timer_init(loop, &s->grace);
  s->grace.data = s;
  s->open++;
  /* umask around bind: the socket never exists with a wider mode, not
   * even for the moment before chmod */
  mode_t old = umask(group ? 0117 : 0177);
  rc = uv_pipe_bind(&s->listener, path);
  umask(old);
  if (rc == 0 && lstat(path, &st) == 0) {
    s->dev = st.st_dev;
    s->ino = st.st_ino;
  }
  if (rc == 0 && chmod(path, group ? 0660 : 0600) != 0)
    rc = -errno;
  if (rc == 0 && group && chown(path, (uid_t)-1, gid) != 0)
    rc = -errno;
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (rc) {
    snprintf(err, cap, "control socket %s: %s", path, uv_strerror(rc));
    if (s->ino)
      unlink(path);
    s->closing = 1;
    uv_close((uv_handle_t *)&s->listener, handle_closed);
    close_grace(s);
    return rc; /* the loop frees s once both handles are closed */
  }
  *out = s;
  return 0;
}

static void on_grace(uv_timer_t *t) {
  lm__ctl_server_t *s = t->data;
  while (s->conns)
    conn_close(s->conns);
  close_grace(s);
}

void lm__ctl_server_close(lm__ctl_server_t *s, void (*cb)(void *ud),
                          void *ud) {
  if (!s || s->closing)
    return;
  s->closing = 1;
  s->close_cb = cb;
  s->close_ud = ud;
  /* remove the file only if it is still ours: a newer agent may have
   * taken the path over */
  struct stat st;
  if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
    unlink(s->path);
  uv_close((uv_handle_t *)&s->listener, handle_closed);
  for (conn_t *c = s->conns, *next; c; c = next) {
    next = c->next;
    conn_end(c);
  }
  if (s->conns)
    uv_timer_start(&s->grace, on_grace, CLOSE_GRACE_MS, 0);
  else
    close_grace(s);
}

/* ---- client ---- */

void lm__ctl_client_path(const char *flag, char *out, size_t cap) {
  lm__socket_path_resolve(flag, out, cap);
}

static int remaining_ms(int64_t deadline) {
  int64_t d = deadline - lm__unix_ms();
  return d < 0 ? 0 : (int)d;
}

int lm__ctl_call(const char *path, const json_t *req, json_t **resp,
                 int timeout_ms, char *err, size_t cap) {
  *resp = NULL;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    snprintf(err, cap, "socket path %s is too long", path);
    return -1;
  }
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, cap, "socket: %s", strerror(errno));
    return -1;
  }
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    if (e == ENOENT)
      snprintf(err, cap, "no agent at %s (no such socket: is `livemesh "
               "agent` running? pass --socket PATH or set LIVEMESH_SOCKET)",
               path);
    else if (e == ECONNREFUSED)
      snprintf(err, cap, "no agent at %s (connection refused: the agent is "
               "not running)", path);
    else if (e == EACCES || e == EPERM)
      snprintf(err, cap, "no access to %s (permission denied: run as the "
               "agent's user, or start the agent with --socket-group)", path);
    else
      snprintf(err, cap, "cannot connect to %s: %s", path, strerror(e));
    close(fd);
    return -1;
  }
  int64_t deadline = lm__unix_ms() + timeout_ms;
  char *line = json_dumps(req, JSON_COMPACT);
  size_t n = line ? strlen(line) : 0;
  int rc = -1;
  char *buf = NULL;
  size_t len = 0, bcap = 0;
  if (!line) {
    snprintf(err, cap, "out of memory");
    goto out;
  }
  line[n] = '\n'; /* json_dumps's NUL becomes the line end */
  for (size_t off = 0; off < n + 1;) {
    ssize_t k = send(fd, line + off, n + 1 - off, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      snprintf(err, cap, "sending to the agent at %s: %s", path,
               strerror(errno));
      goto out;
    }
    off += (size_t)k;
  }
  for (;;) {
    if (len + 4096 > bcap) {
      size_t nc = bcap ? bcap * 2 : 65536;
      char *nb = nc <= 512u * 1024 * 1024 ? realloc(buf, nc) : NULL;
      if (!nb) {
        snprintf(err, cap, "the agent's answer is too large");
        goto out;
      }
      buf = nb;
      bcap = nc;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, remaining_ms(deadline));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0) {
      snprintf(err, cap, "the agent at %s did not answer within %d ms", path,
               timeout_ms);
      rc = -2;
      goto out;
    }
    ssize_t k = recv(fd, buf + len, bcap - len - 1, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      snprintf(err, cap, "the agent at %s closed the connection without an "
               "answer", path);
      goto out;
    }
    char *nl = memchr(buf + len, '\n', (size_t)k);
    len += (size_t)k;
    if (nl) {
      json_error_t je;
      *resp = json_loadb(buf, (size_t)(nl - buf), 0, &je);
      if (!*resp || !json_is_object(*resp)) {
        json_decref(*resp);
        *resp = NULL;
        snprintf(err, cap, "the agent at %s answered something that is not a "
                 "JSON object", path);
        goto out;
      }
      rc = 0;
      goto out;
    }
  }
out:
  free(line);
  free(buf);
  close(fd);
  return rc;
}
