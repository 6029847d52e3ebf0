/*
 * control.h: the agent's control socket, both ends. A Unix stream socket
 * carrying one JSON request per line and one JSON response per line (the
 * protocol is described in docs/agent.md):
 *
 *   -> {"cmd":"members","id":7}
 *   <- {"ok":true,"id":7,"members":[{"name":"n1",...}]}
 *
 * The server side runs on the agent's libuv loop and never blocks it: a
 * client that sends a line longer than LM__CTL_LINE_MAX is told so and
 * disconnected, one that stops reading is disconnected once its replies
 * that the kernel has not taken pass LM__CTL_BACKLOG_MAX, and at most LM__CTL_CLIENTS_MAX clients
 * are served at once. The client side is a plain blocking call with a
 * timeout, for the CLI.
 *
 * Also here: the JSON shape of a member (INTERFACES.md, `members -o json`)
 * and RFC 3339 time stamps, so agent and client format them one way.
 *
 * Must never depend on mesh/node/'s or swim/'s internals: the public API's
 * value types (lm_member_t) only, plus libuv and jansson.
 */
#ifndef LIVEMESH_MESH_CONTROL_H
#define LIVEMESH_MESH_CONTROL_H

#include <jansson.h>
#include <livemesh/livemesh.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LM__CTL_LINE_MAX (64 * 1024)
#define LM__CTL_BACKLOG_MAX (8u * 1024 * 1024)
#define LM__CTL_CLIENTS_MAX 256

typedef struct lm__ctl_server lm__ctl_server_t;

/* One request: a JSON object (anything else is answered here). Its "cmd"
 * is the receiver's to check (the agent's command table). `conn_id` names
 * the connection it came on; pass it to lm__ctl_reply, now or later (a
 * reply to a connection that has gone away is dropped). `req` is borrowed
 * for the duration of the call. */
typedef void (*lm__ctl_request_cb)(lm__ctl_server_t *srv, uint64_t conn_id,
                                   json_t *req, void *ud);
typedef void (*lm__ctl_log_cb)(void *ud, int level, const char *msg);
/* A connection has closed, for whatever reason (the client hung up, it
 * was cut off, the server is closing): what was tied to it (ephemeral
 * registrations, watches) can go. Runs once per connection that was
 * served, from the loop, never from inside lm__ctl_reply. */
typedef void (*lm__ctl_close_cb)(lm__ctl_server_t *srv, uint64_t conn_id,
                                 void *ud);

/* Listens on `path`: mode 0600, or 0660 owned by `group` when group is not
 * NULL. A socket file left by a dead process is replaced; a live one is
 * refused. On failure returns a negative errno-style code and a message for
 * people in `err`. */
int lm__ctl_server_new(lm__ctl_server_t **out, uv_loop_t *loop,
                       const char *path, const char *group,
                       lm__ctl_request_cb on_request, lm__ctl_log_cb log,
                       void *ud, char *err, size_t errcap);
/* Sends `resp` (reference stolen) on connection `conn_id`, with "id" set
 * to `id` (borrowed; the request's "id", echoed so a client may pipeline)
 * unless it is NULL. Returns 0, or -1 if the connection is gone. */
int lm__ctl_reply(lm__ctl_server_t *srv, uint64_t conn_id, json_t *id,
                  json_t *resp);
/* {"ok":false,"error":msg} */
int lm__ctl_reply_error(lm__ctl_server_t *srv, uint64_t conn_id, json_t *id,
                        const char *msg);
/* {"ok":false,"error":msg,"code":code} */
int lm__ctl_reply_refusal(lm__ctl_server_t *srv, uint64_t conn_id, json_t *id,
                          const char *msg, const char *code);
/* One request line as the server takes it (no newline; trailing CR and
 * spaces ignored): 0 with *req a JSON object (a new reference), 1 for a
 * blank line (nothing to answer), -1 with the answer's error message in
 * `err`. Pure: what the socket reads, the fuzz target feeds. */
int lm__ctl_parse_line(const char *line, size_t len, json_t **req, char *err,
                       size_t errcap);
/* Called with the id of every connection that closes (see the type). */
void lm__ctl_server_on_close(lm__ctl_server_t *srv, lm__ctl_close_cb cb);
/* The connection now carries a stream of lines from the server (a watch):
 * what the client sends from here on is read, so its hang-up is seen, but
 * not taken as requests. A client that stops reading the stream is still
 * cut off at LM__CTL_BACKLOG_MAX of unsent lines, after a last attempt to
 * tell it so. 0, or -1 if the connection is gone. */
int lm__ctl_conn_stream(lm__ctl_server_t *srv, uint64_t conn_id);
size_t lm__ctl_client_count(const lm__ctl_server_t *srv);
/* Stops listening, removes the socket file (if it is still ours), flushes
 * pending replies for up to a second, closes every connection and frees the
 * server; `cb` runs once all of that is done. */
void lm__ctl_server_close(lm__ctl_server_t *srv, void (*cb)(void *ud),
                          void *ud);

/* Client: connect to `path`, send `req` as one line, read one line back.
 * 0 on success (*resp set, a new reference); otherwise -1 with a message in
 * `err` (the agent is not running, bad answer...), or -2 when the agent
 * took the request but did not answer within `timeout_ms`. */
int lm__ctl_call(const char *path, const json_t *req, json_t **resp,
                 int timeout_ms, char *err, size_t errcap);
/* The socket a client should use: `flag` if given, else LIVEMESH_SOCKET,
 * else the default path. */
void lm__ctl_client_path(const char *flag, char *out, size_t cap);

/* A member as `livemesh members -o json` shows it; `services` is the
 * number of its services in the view. */
json_t *lm__member_json(const lm_member_t *m, size_t services);
/* "2026-11-22T01:02:03.456Z" from unix milliseconds; `out` >= 32 bytes. */
void lm__rfc3339(char *out, size_t cap, int64_t unix_ms);
int64_t lm__unix_ms(void);
/* A whole file of at most `max` bytes, NUL-terminated (malloc'ed), or NULL
 * with `err` naming it ("WHAT PATH: reason"): tokens, keys, passwords. */
char *lm__read_small_file(const char *path, size_t max, char *err,
                          size_t cap, const char *what);
/* Hex of `n` bytes; `out` >= 2n+1 bytes. */
void lm__hex(char *out, const uint8_t *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
