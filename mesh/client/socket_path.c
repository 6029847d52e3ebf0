/*
 * socket_path.c: the client's rule for finding the control socket (see
 * socket_path.h). libc only.
 */
#include "socket_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void lm__socket_path_default(char *out, size_t cap) {
  const char *rt = getenv("XDG_RUNTIME_DIR");
  if (geteuid() == 0)
    snprintf(out, cap, "/run/livemesh/livemesh.sock");
  else if (rt && *rt == '/')
    snprintf(out, cap, "%s/livemesh.sock", rt);
  else
    snprintf(out, cap, "/tmp/livemesh-%u.sock", (unsigned)geteuid());
}

void lm__socket_path_resolve(const char *flag, char *out, size_t cap) {
  const char *env = getenv("LIVEMESH_SOCKET");
  if (flag && *flag)
    snprintf(out, cap, "%s", flag);
  else if (env && *env)
    snprintf(out, cap, "%s", env);
  else
    lm__socket_path_default(out, cap);
}
