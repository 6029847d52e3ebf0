/*
 * addr.c: parsing and printing of HOST:PORT addresses, and conversion
 * between socket addresses and the swim core's address attribute.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

int lm__parse_hostport(const char *s, struct sockaddr_storage *out) {
  if (!s || !*s)
    return LM_EADDR;
  memset(out, 0, sizeof *out);
  char host[64];
  const char *port;
  if (s[0] == '[') {
    const char *e = strchr(s, ']');
    if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof host)
      return LM_EADDR;
    memcpy(host, s + 1, (size_t)(e - s - 1));
    host[e - s - 1] = 0;
    port = e + 2;
  } else {
    const char *c = strrchr(s, ':');
    if (!c || strchr(s, ':') != c || (size_t)(c - s) >= sizeof host)
      return LM_EADDR;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = 0;
    port = c + 1;
  }
  char *end;
  long p = strtol(port, &end, 10);
  if (!*port || *end || p < 0 || p > 65535)
    return LM_EADDR;
  if (!host[0])
    strcpy(host, "0.0.0.0");
  if (!strcmp(host, "localhost"))
    strcpy(host, "127.0.0.1");
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)p);
    return 0;
  }
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)p);
    return 0;
  }
  return LM_EADDR;
}

int lm__format_sa(const struct sockaddr *sa, char *out, size_t cap) {
  char h[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &v4->sin_addr, h, sizeof h);
    snprintf(out, cap, "%s:%u", h, ntohs(v4->sin_port));
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &v6->sin6_addr, h, sizeof h);
    snprintf(out, cap, "[%s]:%u", h, ntohs(v6->sin6_port));
    return 0;
  }
  snprintf(out, cap, "?");
  return LM_EADDR;
}

void lm__sa_to_swim(const struct sockaddr *sa, swim_addr_t *out) {
  memset(out, 0, sizeof *out);
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    out->family = 4;
    memcpy(out->ip, &v4->sin_addr, 4);
    out->port = ntohs(v4->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
    /* A v4-mapped peer on a dual-stack socket is a v4 peer. */
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      out->family = 4;
      memcpy(out->ip, (const uint8_t *)&v6->sin6_addr + 12, 4);
    } else {
      out->family = 6;
      memcpy(out->ip, &v6->sin6_addr, 16);
    }
    out->port = ntohs(v6->sin6_port);
  }
}

void lm__swim_to_sa(const swim_addr_t *a, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  if (a->family == 6) {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    v6->sin6_family = AF_INET6;
    memcpy(&v6->sin6_addr, a->ip, 16);
    v6->sin6_port = htons(a->port);
  } else {
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    v4->sin_family = AF_INET;
    memcpy(&v4->sin_addr, a->ip, 4);
    v4->sin_port = htons(a->port);
  }
}

int lm__format_swim(const swim_addr_t *a, char *out, size_t cap) {
  struct sockaddr_storage ss;
  lm__swim_to_sa(a, &ss);
  return lm__format_sa((struct sockaddr *)&ss, out, cap);
}
