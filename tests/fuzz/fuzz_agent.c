/*
 * fuzz_agent.c: the stopped agent of fuzz_agent.h, and the two functions
 * of agent.c that the command table links against (agent.c itself starts
 * a node, signals and files: not for a fuzz target).
 */
#include "fuzz_agent.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

static lm__agent_t g_agent; /* read-only once set up */

lm__agent_t *fuzz_agent(void) {
  if (!g_agent.stopping) {
    memset(&g_agent, 0, sizeof g_agent);
    strcpy(g_agent.name, "fuzz");
    g_agent.generation = 1;
    g_agent.started_ms = 1700000000000;
    g_agent.stopping = 2; /* closing: no node, no loop to run */
    g_agent.lock_fd = -1;
  }
  return &g_agent;
}

/* A closing agent is past its stop: a request that would start one is a
 * bug in the command table. */
void lm__agent_begin_stop(lm__agent_t *a, const char *why) {
  (void)a, (void)why;
  abort();
}

void lm__agent_log(lm__agent_t *a, int level, const char *fmt, ...) {
  (void)a, (void)level, (void)fmt;
}

static int r_answer(const lm__reply_to_t *to, json_t *resp) {
  fuzz_reply_t *r = to->ud;
  CHECK(resp != NULL);
  json_decref(r->answer);
  r->answer = resp;
  r->answers++;
  return 0;
}

static int r_stream(const lm__reply_to_t *to) {
  ((fuzz_reply_t *)to->ud)->streams++;
  return 0;
}

static int r_line(const lm__reply_to_t *to, json_t *line) {
  ((fuzz_reply_t *)to->ud)->lines++;
  json_decref(line);
  return 0;
}

static int r_alive(const lm__reply_to_t *to) {
  (void)to;
  return 1;
}

const lm__reply_ops_t fuzz_reply_ops_lasting = {r_answer, r_stream, r_line,
                                                r_alive, LM__REPLY_LASTS};
const lm__reply_ops_t fuzz_reply_ops_once = {r_answer, r_stream, r_line,
                                             r_alive, 0};

json_t *fuzz_dispatch(const json_t *req, const lm__reply_ops_t *ops,
                      uint64_t conn) {
  lm__agent_t *a = fuzz_agent();
  fuzz_reply_t r = {NULL, 0, 0, 0};
  /* the id is echoed by the transport, not the table: borrowed here */
  lm__reply_to_t to = {ops, &r, conn, json_object_get(req, "id")};
  lm__commands_dispatch(a, req, &to);
  CHECK(r.answers == 1 && r.streams == 0 && r.lines == 0);
  CHECK(json_is_object(r.answer));
  json_t *ok = json_object_get(r.answer, "ok");
  CHECK(json_is_boolean(ok));
  const char *cmd = json_string_value(json_object_get(req, "cmd"));
  if (json_is_true(ok)) {
    /* only the commands that need neither node nor probes answer */
    CHECK(cmd && (!strcmp(cmd, "ping") || !strcmp(cmd, "environ")));
  } else {
    const char *err = json_string_value(json_object_get(r.answer, "error"));
    CHECK(err && *err);
    json_t *code = json_object_get(r.answer, "code");
    CHECK(!code || json_is_string(code));
  }
  /* nothing of the request was kept */
  CHECK(a->nwaiters == 0 && a->nephemeral == 0 && !a->watchers && !a->regs);
  return r.answer;
}
