/*
 * fuzz_http_req.c: libFuzzer target of the HTTP API's requests: the path,
 * query and body a client sends, through the route table and the request
 * decoding of http_req.c (what http.c does with what libmicrohttpd
 * parsed), the probe paths (probes.c), the command table with each
 * command's argument checks against a stopped agent (fuzz_agent.h), and
 * the register body parser (svc_json.c) on the body directly.
 *
 * Input: "METHOD TARGET\nBODY". TARGET is PATH[?QUERY]; the query is cut
 * at '&' and '=' and %-unescaped by libmicrohttpd's own MHD_http_unescape,
 * as the server does before the decoders see it.
 *
 * Properties: no crash, leak or read past the input; a route matches its
 * method and pattern and names a row of the command table; a path that
 * matches with another method lists the allowed ones; a decoded request
 * carries its route's command and gets exactly one well-formed answer; a
 * refusal has a message; a body the register parser accepts has a type.
 */
#include <microhttpd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_agent.h"
#include "http_req.h"
#include "probes.h"
#include "svc_json.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

#define ID_HTTP (1ull << 63)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dup_str(const char *p, size_t n) {
  char *s = malloc(n + 1);
  CHECK(s);
  memcpy(s, p, n);
  s[n] = 0;
  return s;
}

/* The query, parameter by parameter: 0, or -1 at the first refused. */
static int query(lm__http_query_t *q, char *qs) {
  for (char *p = qs; p;) {
    char *amp = strchr(p, '&');
    if (amp)
      *amp = 0;
    char *eq = strchr(p, '=');
    char *val = NULL;
    if (eq) {
      *eq = 0;
      val = eq + 1;
      MHD_http_unescape(val);
    }
    MHD_http_unescape(p);
    if (*p && lm__http_query_arg(q, p, val)) {
      CHECK(q->err[0]);
      return -1;
    }
    p = amp ? amp + 1 : NULL;
  }
  return 0;
}

static void body_as_spec(const char *body, size_t len) {
  json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(b)) {
    json_decref(b);
    return;
  }
  lm__spec_buf_t sb;
  char err[512] = "";
  int eph = 0;
  if (lm__spec_from_json_named(b, &sb, &eph, LM__NAMES_FLAGS, err,
                               sizeof err) == 0) {
    CHECK(sb.spec.type && *sb.spec.type);
    lm__spec_buf_free(&sb);
  } else {
    CHECK(err[0]);
  }
  json_decref(b);
}

static void probe(const char *method, const char *path, int verbose) {
  if (strcmp(method, "GET") != 0)
    return; /* 405: the server's, before probes.c */
  char *body = NULL;
  const char *ctype = NULL;
  int st = lm__probe_http(fuzz_agent(), path, verbose, &body, &ctype);
  CHECK(st >= 200 && st <= 599 && body && ctype);
  free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  const char *nl = memchr(p, '\n', size);
  const char *line_end = nl ? nl : end;
  const char *sp = memchr(p, ' ', (size_t)(line_end - p));
  if (!sp)
    return 0;
  char *method = dup_str(p, (size_t)(sp - p));
  char *target = dup_str(sp + 1, (size_t)(line_end - sp - 1));
  /* the body: an exactly-sized copy, so ASan sees a read past its end */
  size_t blen = nl ? (size_t)(end - nl - 1) : 0;
  char *body = malloc(blen ? blen : 1);
  CHECK(body);
  if (blen)
    memcpy(body, nl + 1, blen);

  char *qs = strchr(target, '?');
  if (qs)
    *qs++ = 0;
  MHD_http_unescape(target);
  const char *path = target;

  if (lm__probe_path(path) != LM__PROBE_NONE) {
    probe(method, path, qs && strstr(qs, "verbose") != NULL);
    goto out;
  }
  char seg[LM__HTTP_SEG_MAX], allow[64];
  int known = -1;
  const lm__http_route_t *rt =
      lm__http_route_find(method, path, seg, &known, allow, sizeof allow);
  if (!rt) {
    CHECK(known == 0 || known == 1);
    CHECK(known == (allow[0] != 0));
    CHECK(!seg[0]);
    goto out;
  }
  CHECK(known == 1 && !strcmp(rt->method, method));
  char seg2[LM__HTTP_SEG_MAX] = "";
  CHECK(lm__http_path_match(rt->pattern, path, seg2) && !strcmp(seg, seg2));
  CHECK((strstr(rt->pattern, "{uuid}") != NULL) == (seg[0] != 0));
  CHECK(strlen(seg) < LM__HTTP_SEG_MAX);
  const lm__command_t *cmd = lm__command_find(rt->cmd);
  CHECK(cmd);

  lm__http_query_t q;
  lm__http_query_init(&q, rt);
  CHECK(q.obj);
  if (qs && query(&q, qs)) {
    /* the server stops at the first refused parameter */
    CHECK(lm__http_query_finish(&q, seg, body, blen) == -1 && !q.obj);
    goto out;
  }
  if (lm__http_query_finish(&q, seg, body, blen)) {
    CHECK(q.err[0] && !q.obj);
    goto out;
  }
  CHECK(json_is_object(q.obj));
  CHECK(!strcmp(json_string_value(json_object_get(q.obj, "cmd")), rt->cmd));
  CHECK(!json_object_get(q.obj, "id"));
  if (!(rt->flags & LM__R_BLOCKING))
    CHECK(!q.blocking_index && !q.has_wait);
  json_decref(fuzz_dispatch(q.obj, &fuzz_reply_ops_once, ID_HTTP | 1));
  json_decref(q.obj);
out:
  if (blen)
    body_as_spec(body, blen);
  free(method);
  free(target);
  free(body);
  return 0;
}
