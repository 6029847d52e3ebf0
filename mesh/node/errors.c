/*
 * errors.c: the names and messages of livemesh error codes, the version
 * string and status names.
 */
#define _GNU_SOURCE
#include "node_internal.h"

/* ---- errors and logging ---- */

const char *lm_strerror(int err) {
#define LM_ERR_STR(n, v, s)                                                    \
  case v:                                                                      \
    return s;
  switch (err) {
  case 0:
    return "success";
    LM_ERRNO_MAP(LM_ERR_STR)
  default:
    return err < 0 && err > -1000 ? uv_strerror(err) : "unknown error";
  }
#undef LM_ERR_STR
}

const char *lm_err_name(int err) {
#define LM_ERR_NAME(n, v, s)                                                   \
  case v:                                                                      \
    return "LM_" #n;
  switch (err) {
  case 0:
    return "LM_OK";
    LM_ERRNO_MAP(LM_ERR_NAME)
  default:
    return err < 0 && err > -1000 ? uv_err_name(err) : "LM_UNKNOWN";
  }
#undef LM_ERR_NAME
}

const char *lm_version(void) { return LM_VERSION_STRING; }

const char *lm_status_name(lm_status_t s) {
  return swim_status_name((swim_status_t)s);
}
