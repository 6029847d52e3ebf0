/*
 * svc_stubs.h: stand-ins for the service.h functions that store/ provides
 * (lm_uuid_format, lm_uuid_parse, lm_svc_status_name, lm_check_kind_name),
 * so the service tests link before store/ lands. Weak: once a library
 * with the real ones is linked, those win. Include in one file per test
 * binary.
 */
#ifndef LM_TESTS_SVC_STUBS_H
#define LM_TESTS_SVC_STUBS_H

#include <ctype.h>
#include <stdlib.h>
#include <livemesh/service.h>
#include <string.h>

__attribute__((weak)) void lm_uuid_format(char out[LM_UUID_STRLEN + 1],
                                          const uint8_t uuid[LM_UUID_LEN]) {
  static const char d[] = "0123456789abcdef";
  size_t k = 0;
  for (int i = 0; i < LM_UUID_LEN; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[k++] = '-';
    out[k++] = d[uuid[i] >> 4];
    out[k++] = d[uuid[i] & 15];
  }
  out[k] = 0;
}

__attribute__((weak)) int lm_uuid_parse(uint8_t out[LM_UUID_LEN],
                                        const char *s) {
  if (!s || strlen(s) != LM_UUID_STRLEN)
    return -1;
  uint8_t u[LM_UUID_LEN];
  size_t k = 0;
  for (int i = 0; i < LM_UUID_STRLEN; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return -1;
      continue;
    }
    if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
      return -1;
    char h[3] = {s[i], s[i + 1], 0};
    u[k++] = (uint8_t)strtoul(h, NULL, 16);
    i++;
  }
  memcpy(out, u, sizeof u);
  return 0;
}

__attribute__((weak)) const char *lm_svc_status_name(lm_svc_status_t s) {
  return s == LM_SVC_UP     ? "up"
         : s == LM_SVC_DOWN ? "down"
         : s == LM_SVC_MAINT ? "maintenance"
                             : "unknown";
}

__attribute__((weak)) const char *lm_check_kind_name(lm_check_kind_t k) {
  switch (k) {
  case LM_CHECK_TTL: return "ttl";
  case LM_CHECK_PROCESS: return "process";
  case LM_CHECK_HTTP: return "http";
  case LM_CHECK_TCP: return "tcp";
  case LM_CHECK_EXEC: return "exec";
  }
  return "unknown";
}

#endif
