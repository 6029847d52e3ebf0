/*
 * client_internal.h: what the `livemesh` CLI needs of the client library
 * beyond include/livemesh/client.h: the reason a connection failed (the
 * public lm_client_open returns only a code), the connection's descriptor
 * (so `register --ephemeral` can wait on it beside stdin and signals), and
 * the register body a spec turns into.
 *
 * Not installed; the CLI and the tests only.
 */
#ifndef LIVEMESH_MESH_CLIENT_INTERNAL_H
#define LIVEMESH_MESH_CLIENT_INTERNAL_H

#include <jansson.h>
#include <livemesh/client.h>

#ifdef __cplusplus
extern "C" {
#endif

/* lm_client_open, with the reason for a failure in `err` ("no agent at
 * PATH (no such socket: ...)"). */
int lm__client_open_err(lm_client_t **out, const char *socket_path,
                        int timeout_ms, char *err, size_t errcap);
/* The connected socket, or -1. */
int lm__client_fd(const lm_client_t *c);
/* The socket path in use. */
const char *lm__client_path(const lm_client_t *c);
/* {"cmd":"register", <the register fields of spec>, "ephemeral":true?}:
 * empty and default fields are left out, durations are "<N>ms" strings. */
json_t *lm__spec_to_json(const lm_service_spec_t *spec, int ephemeral);

#ifdef __cplusplus
}
#endif
#endif
