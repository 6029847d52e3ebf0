/*
 * fuzz_agent.h: a stopped agent for the fuzz targets of the agent's
 * requests (fuzz_ctl_request.c, fuzz_http_req.c). Its node is gone and it
 * is closing (stopping == 2), the state an agent is in while it shuts
 * down, so every command of the table decodes and checks all its
 * arguments and then refuses with "busy" or "the agent is shutting down"
 * instead of touching a node, a file or the loop: the requests are fuzzed,
 * deterministically and without global state that grows between inputs.
 *
 * The reply ops record the one answer a request must get.
 */
#ifndef LIVEMESH_TESTS_FUZZ_AGENT_H
#define LIVEMESH_TESTS_FUZZ_AGENT_H

#include <jansson.h>
#include <stdint.h>

#include "agent.h"
#include "commands.h"

typedef struct fuzz_reply {
  json_t *answer; /* the last answer (owned), NULL if none */
  int answers, streams, lines;
} fuzz_reply_t;

/* The stopped agent (one per process, never changed by a request). */
lm__agent_t *fuzz_agent(void);
/* Reply ops with `flags` (LM__REPLY_LASTS for the control socket, 0 for
 * HTTP) that record into the fuzz_reply_t given as `ud`. */
extern const lm__reply_ops_t fuzz_reply_ops_lasting, fuzz_reply_ops_once;
/* Runs `req` through the command table and checks what every request
 * must get: exactly one answer, {"ok": bool, ...}, a refusal with an
 * "error" string; a success only from a command that needs no node.
 * Returns the answer (owned by the caller). */
json_t *fuzz_dispatch(const json_t *req, const lm__reply_ops_t *ops,
                      uint64_t conn);

#endif
