/*
 * service.c: the small value helpers declared in include/livemesh/service.h
 * (status and check-kind names, uuid text form). Pure libc.
 */
#include <livemesh/service.h>

#include <string.h>

const char *lm_svc_status_name(lm_svc_status_t s) {
  switch (s) {
  case LM_SVC_UP:
    return "up";
  case LM_SVC_DOWN:
    return "down";
  case LM_SVC_MAINT:
    return "maintenance";
  }
  return "unknown";
}

const char *lm_check_kind_name(lm_check_kind_t k) {
  switch (k) {
  case LM_CHECK_TTL:
    return "ttl";
  case LM_CHECK_PROCESS:
    return "process";
  case LM_CHECK_HTTP:
    return "http";
  case LM_CHECK_TCP:
    return "tcp";
  case LM_CHECK_EXEC:
    return "exec";
  }
  return "unknown";
}

/* Dashes after these many bytes: 8-4-4-4-12. */
static int dash_after(int i) { return i == 4 || i == 6 || i == 8 || i == 10; }

void lm_uuid_format(char out[LM_UUID_STRLEN + 1],
                    const uint8_t uuid[LM_UUID_LEN]) {
  static const char hex[] = "0123456789abcdef";
  char *p = out;
  for (int i = 0; i < LM_UUID_LEN; i++) {
    if (dash_after(i))
      *p++ = '-';
    *p++ = hex[uuid[i] >> 4];
    *p++ = hex[uuid[i] & 0x0f];
  }
  *p = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int lm_uuid_parse(uint8_t out[LM_UUID_LEN], const char *s) {
  uint8_t u[LM_UUID_LEN];
  if (!s || strlen(s) != LM_UUID_STRLEN)
    return -1;
  const char *p = s;
  for (int i = 0; i < LM_UUID_LEN; i++) {
    if (dash_after(i) && *p++ != '-')
      return -1;
    int hi = hexval(p[0]), lo = hexval(p[1]);
    if (hi < 0 || lo < 0)
      return -1;
    u[i] = (uint8_t)(hi << 4 | lo);
    p += 2;
  }
  memcpy(out, u, sizeof u);
  return 0;
}
