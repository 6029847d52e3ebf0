/*
 * client.h: talk to the local livemesh agent over its Unix socket.
 *
 * For a process that does not embed a node: a worker registering itself
 * with its pid, a tool asking is_up, a script watching for changes. Each
 * call is one request and one answer on a connection kept open, so an
 * is_up costs one round trip to the local agent. Blocking calls with a
 * timeout; one lm_client_t per thread.
 *
 * Registrations made with `ephemeral` live only while this connection
 * stays open (ZooKeeper's ephemeral nodes): close the client, or let the
 * process die, and the service is gone.
 *
 * Depends on services.h.
 */
#ifndef LIVEMESH_CLIENT_H
#define LIVEMESH_CLIENT_H

#include <livemesh/services.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lm_client lm_client_t;

/* `socket_path` NULL: $LIVEMESH_SOCKET, else the default socket path.
 * timeout_ms 0: 5000. Fails with a libuv-style or LM_E* code when the
 * agent cannot be reached. */
int lm_client_open(lm_client_t **out, const char *socket_path,
                   int timeout_ms);
void lm_client_close(lm_client_t *c);
/* The agent's message for the last failed call ("" when none). */
const char *lm_client_error(const lm_client_t *c);

/* 1 up, 0 down or unknown, negative on error; `out` may be NULL. */
int lm_client_is_up(lm_client_t *c, const char *type, const char *host,
                    lm_is_up_t *out);
int lm_client_is_up_uuid(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN],
                         lm_is_up_t *out);

/* Registers a service with the agent; a uuid of a service already on that
 * agent replaces it (keeping its creation time). Refusals come back as
 * LM_EINVAL (a bad field: lm_client_error() names it), LM_EEXIST (the uuid
 * belongs to another member or connection), LM_EPERM (exec checks are not
 * allowed on that agent), LM_ENOTFOUND, LM_EBUSY. */
int lm_client_register(lm_client_t *c, const lm_service_spec_t *spec,
                       int ephemeral, uint8_t uuid_out[LM_UUID_LEN]);
int lm_client_deregister(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN]);
int lm_client_pass(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN],
                   const char *note);
int lm_client_fail(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN],
                   const char *note);
/* until_ms: unix ms; 0 with off = 1 ends maintenance. */
int lm_client_maint(lm_client_t *c, const uint8_t uuid[LM_UUID_LEN],
                    int64_t until_ms, int off, const char *note);

/* Any control-socket request as one JSON text (see docs/agent.md); the
 * answer, one JSON text, is malloc'ed into *resp. */
int lm_client_request(lm_client_t *c, const char *json, char **resp);

/* Streams watch events as JSON texts (one object each, the `livemesh
 * watch` lines) to `cb` until it returns non-zero, the agent goes away, or
 * timeout_ms passes with nothing (0: wait forever). The connection is
 * used up by a watch: close the client afterwards. */
typedef int (*lm_client_watch_cb)(void *ud, const char *json_line);
int lm_client_watch(lm_client_t *c, const lm_watch_filter_t *f,
                    lm_client_watch_cb cb, void *ud, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
