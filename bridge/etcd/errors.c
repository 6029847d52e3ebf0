/*
 * errors.c: the client's error table and the mapping from gRPC status and
 * etcd's error texts (etcd's api/v3rpc/rpctypes) to LM_ETCD_E* codes.
 *
 * Must never depend on swim/, store/ or mesh/.
 */
#include <string.h>

#include "etcd_internal.h"

#define LM_ETCD_ERR_STR(name, code, msg)                                       \
  case LM_ETCD_##name:                                                         \
    return msg;
const char *lm_etcd_strerror(int err) {
  switch (err) {
  case LM_ETCD_OK:
    return "ok";
    LM_ETCD_ERRNO_MAP(LM_ETCD_ERR_STR)
  default:
    return "unknown etcd client error";
  }
}
#undef LM_ETCD_ERR_STR

#define LM_ETCD_ERR_NAME(name, code, msg)                                      \
  case LM_ETCD_##name:                                                         \
    return "LM_ETCD_" #name;
const char *lm_etcd_err_name(int err) {
  switch (err) {
  case LM_ETCD_OK:
    return "LM_ETCD_OK";
    LM_ETCD_ERRNO_MAP(LM_ETCD_ERR_NAME)
  default:
    return "LM_ETCD_UNKNOWN";
  }
}
#undef LM_ETCD_ERR_NAME

static int has(const char *m, const char *s) { return strstr(m, s) != NULL; }

int lm__etcd_map_status(int grpc_status, const char *m) {
  if (grpc_status == 0)
    return 0;
  if (!m)
    m = "";
  if (has(m, "invalid auth token"))
    return LM__ETCD_EREAUTH;
  if (has(m, "authentication failed") || has(m, "user name not found") ||
      has(m, "permission denied") || has(m, "user name is empty") ||
      grpc_status == 16 /* UNAUTHENTICATED */)
    return LM_ETCD_EAUTH;
  if (has(m, "required revision has been compacted"))
    return LM_ETCD_ECOMPACTED;
  if (has(m, "requested lease not found"))
    return LM_ETCD_ELEASE;
  if (has(m, "request is too large") || has(m, "too many operations"))
    return LM_ETCD_ETOOLARGE;
  if (has(m, "database space exceeded"))
    return LM_ETCD_ENOSPACE;
  if (has(m, "no leader") || (grpc_status == 14 && has(m, "leader")))
    return LM_ETCD_ENOLEADER;
  return LM_ETCD_EGRPC;
}

static int hexval(uint8_t ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

void lm__grpc_message_decode(char *out, size_t cap, const uint8_t *in,
                             size_t len) {
  size_t o = 0;
  if (cap == 0)
    return;
  for (size_t i = 0; i < len && o + 1 < cap; i++) {
    uint8_t ch = in[i];
    if (ch == '%' && i + 2 < len) {
      int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
      if (h >= 0 && l >= 0) {
        ch = (uint8_t)(h * 16 + l);
        i += 2;
      }
    }
    out[o++] = (ch == 0) ? '?' : (char)ch;
  }
  out[o] = 0;
}
