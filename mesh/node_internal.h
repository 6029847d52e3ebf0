/*
 * node_internal.h: helpers shared inside mesh/ (addresses, logging). Not
 * installed. Depends on libuv and the swim core's types.
 */
#ifndef LIVEMESH_MESH_NODE_INTERNAL_H
#define LIVEMESH_MESH_NODE_INTERNAL_H

#include <livemesh/livemesh.h>
#include <sys/socket.h>

#include "swim.h"

/* "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces, IPv4). Numeric
 * hosts and "localhost" only: a liveness mesh should not hang on DNS. */
int lm__parse_hostport(const char *s, struct sockaddr_storage *out);
int lm__format_sa(const struct sockaddr *sa, char *out, size_t cap);
void lm__sa_to_swim(const struct sockaddr *sa, swim_addr_t *out);
void lm__swim_to_sa(const swim_addr_t *a, struct sockaddr_storage *out);
int lm__format_swim(const swim_addr_t *a, char *out, size_t cap);

#endif
