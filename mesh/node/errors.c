/*
 * errors.c: livemesh's one error space, named: lm_strerror() and
 * lm_err_name() know every code the library can return (the runtime's
 * LM_E*, the trust layer's LM_TRUST_E*, the core's SWIM_E*, and libuv's
 * and errno's), plus the version string and status names.
 */
#define _GNU_SOURCE
#include "node_internal.h"

#include "check.h"
#include "store.h"

/* libuv's own codes: errno values on this system, and a few of libuv's
 * (UV_EOF, UV_EAI_*...) that lie below LM_ERR_BASE. */
static int is_uv_code(int err) {
#define LM_UV_CASE(n, s)                                                       \
  case UV_##n:                                                                 \
    return 1;
  switch (err) {
    UV_ERRNO_MAP(LM_UV_CASE)
  default:
    return err < 0 && err > LM_ERR_BASE; /* any other errno value */
  }
#undef LM_UV_CASE
}

const char *lm_strerror(int err) {
#define LM_ERR_STR(n, v, s)                                                    \
  case v:                                                                      \
    return s;
#define LM_TRUST_STR(n, v, s, m)                                               \
  case v:                                                                      \
    return m;
  switch (err) {
  case 0:
    return "success";
    LM_ERRNO_MAP(LM_ERR_STR)
    LM_TRUST_ERRNO_MAP(LM_TRUST_STR)
    SWIM_ERRNO_MAP(LM_ERR_STR)
    LM_STORE_ERRNO_MAP(LM_ERR_STR)
    LM__CHECK_ERRNO_MAP(LM_ERR_STR)
  default:
    return is_uv_code(err) ? uv_strerror(err) : "unknown error";
  }
#undef LM_TRUST_STR
#undef LM_ERR_STR
}

const char *lm_err_name(int err) {
#define LM_ERR_NAME(n, v, s)                                                   \
  case v:                                                                      \
    return "LM_" #n;
#define LM_TRUST_NAME(n, v, s, m)                                              \
  case v:                                                                      \
    return "LM_TRUST_" #n;
#define LM_SWIM_NAME(n, v, s)                                                  \
  case v:                                                                      \
    return "SWIM_" #n;
#define LM_STORE_NAME(n, v, s)                                                 \
  case v:                                                                      \
    return "LM_STORE_" #n;
#define LM_CHECK_NAME(n, v, s)                                                 \
  case v:                                                                      \
    return "LM_CHECK_" #n;
  switch (err) {
  case 0:
    return "LM_OK";
    LM_ERRNO_MAP(LM_ERR_NAME)
    LM_TRUST_ERRNO_MAP(LM_TRUST_NAME)
    SWIM_ERRNO_MAP(LM_SWIM_NAME)
    LM_STORE_ERRNO_MAP(LM_STORE_NAME)
    LM__CHECK_ERRNO_MAP(LM_CHECK_NAME)
  default:
    return is_uv_code(err) ? uv_err_name(err) : "LM_UNKNOWN";
  }
#undef LM_CHECK_NAME
#undef LM_STORE_NAME
#undef LM_SWIM_NAME
#undef LM_TRUST_NAME
#undef LM_ERR_NAME
}

const char *lm_version(void) { return LM_VERSION_STRING; }

const char *lm_status_name(lm_status_t s) {
  return swim_status_name((swim_status_t)s);
}
