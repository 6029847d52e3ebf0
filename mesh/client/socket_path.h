/*
 * socket_path.h: where a client finds the agent's control socket. One rule
 * for every client (the CLI, the client library, later HTTP tooling):
 * the explicit path if given, else $LIVEMESH_SOCKET, else the default path
 * for this user (/run/livemesh/livemesh.sock as root, else
 * $XDG_RUNTIME_DIR/livemesh.sock, else /tmp/livemesh-UID.sock).
 *
 * The agent's lm__ctl_client_path and lm__default_socket (mesh/agent/)
 * call these, so the rule is written once.
 *
 * libc only: the client library must not pull the agent in.
 */
#ifndef LIVEMESH_MESH_CLIENT_SOCKET_PATH_H
#define LIVEMESH_MESH_CLIENT_SOCKET_PATH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The default socket path for this user. */
void lm__socket_path_default(char *out, size_t cap);
/* `flag` if non-empty, else $LIVEMESH_SOCKET if non-empty, else the
 * default. */
void lm__socket_path_resolve(const char *flag, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
