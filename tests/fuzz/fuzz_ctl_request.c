/*
 * fuzz_ctl_request.c: libFuzzer target of the control socket's requests:
 * the bytes a client writes, cut into lines as the server cuts them, each
 * line through lm__ctl_parse_line (control.c) and every request it
 * accepts through the command table (commands.c): the name lookup and
 * each command's argument checks, the register body parser (svc_json.c)
 * included, against a stopped agent (fuzz_agent.h).
 *
 * Properties: no crash, leak or read past the input; a line is a request
 * (a JSON object), blank, or refused with a message; every request gets
 * exactly one well-formed answer; nothing is kept from one to the next.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fuzz_agent.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const char *line, size_t len) {
  /* an exactly-sized copy: ASan sees any read past the line */
  char *buf = malloc(len ? len : 1);
  CHECK(buf);
  memcpy(buf, line, len);
  json_t *req = NULL;
  char err[256] = "";
  int rc = lm__ctl_parse_line(buf, len, &req, err, sizeof err);
  if (rc > 0) {
    CHECK(!req);
    for (size_t i = 0; i < len; i++)
      CHECK(buf[i] == ' ' || buf[i] == '\r');
  } else if (rc < 0) {
    CHECK(!req && err[0]);
  } else {
    CHECK(rc == 0 && json_is_object(req));
    json_decref(fuzz_dispatch(req, &fuzz_reply_ops_lasting, 1));
    json_decref(req);
  }
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    /* the server keeps an unfinished last line until its newline: a
     * request is only taken whole, but the fuzzer may as well try it */
    if (len <= LM__CTL_LINE_MAX)
      one_line(p, len);
    p += len + 1;
  }
  return 0;
}
