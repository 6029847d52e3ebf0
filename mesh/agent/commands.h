/*
 * commands.h: the agent's one command table. Each command the agent
 * answers (ping, members, stats, leave) is one row: its name, its handler
 * and its flags. The control socket dispatches every request through it,
 * its error messages list the known names from it, and the HTTP API is to
 * serve the very same rows, so a command is added in one place.
 *
 * Must never depend on swim/ or mesh/node/'s internals: handlers use the
 * public API (livemesh.h) and the agent's state (agent.h).
 */
#ifndef LIVEMESH_MESH_AGENT_COMMANDS_H
#define LIVEMESH_MESH_AGENT_COMMANDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"

typedef struct lm__agent lm__agent_t;

/* Where an answer goes, whatever the transport: the control socket
 * (lm__ctl_reply_ops, below) or HTTP (http.c). Handlers never see the
 * transport; they answer through these, so the two cannot disagree. */
typedef struct lm__reply_to lm__reply_to_t;
typedef struct lm__reply_ops {
  /* The final answer, a control-socket object ({"ok":true,...} or
   * {"ok":false,"error":...,"code":...}); `resp` is stolen. Returns 0, or
   * -1 when the peer is gone (the answer is dropped). */
  int (*answer)(const lm__reply_to_t *to, json_t *resp);
  /* From now on the request carries a stream of lines (a watch): called
   * before its answer. 0, or -1 when the peer is gone. */
  int (*stream)(const lm__reply_to_t *to);
  /* One line of the stream (reference stolen); 0, or -1 when gone. */
  int (*line)(const lm__reply_to_t *to, json_t *line);
  /* 1 while the peer is still there. */
  int (*alive)(const lm__reply_to_t *to);
  unsigned flags; /* LM__REPLY_* */
} lm__reply_ops_t;

enum {
  /* the connection outlives its answers (the control socket): an
   * ephemeral registration can be tied to it */
  LM__REPLY_LASTS = 1 << 0,
};

struct lm__reply_to {
  const lm__reply_ops_t *ops;
  void *ud;      /* the transport's: the agent (control socket), the server */
  uint64_t conn; /* the connection; ids never collide across transports */
  json_t *id;    /* the request's "id", borrowed; echoed in the answer */
};

/* The control socket's: `ud` is the agent (its current a->ctl answers). */
extern const lm__reply_ops_t lm__ctl_reply_ops;

enum {
  LM__CMD_WRITES = 1 << 0, /* changes the agent's state (HTTP: PUT/DELETE,
                              refused by --http-read-only) */
};

/* What a handler returns. */
enum {
  LM__CMD_DONE = 0,   /* *resp holds the answer (a new reference) */
  LM__CMD_LATER = 1,  /* the handler keeps `to` and answers later */
  LM__CMD_FAILED = -1 /* `err` says why, for people */
};

typedef int (*lm__cmd_fn)(lm__agent_t *a, const json_t *req,
                          const lm__reply_to_t *to, json_t **resp, char *err,
                          size_t errcap);

typedef struct lm__command {
  const char *name;
  lm__cmd_fn run;
  unsigned flags; /* LM__CMD_* */
  const char *summary;
} lm__command_t;

extern const lm__command_t lm__commands[];
extern const size_t lm__ncommands;

/* The row named `name`, or NULL. */
const lm__command_t *lm__command_find(const char *name);
/* "ping, members, stats, leave": the names in table order. */
void lm__command_names(char *out, size_t cap);
/* Answers one request ({"cmd": NAME, ...}) through the table: unknown or
 * missing names get an error that lists the known ones. */
void lm__commands_dispatch(lm__agent_t *a, const json_t *req,
                           const lm__reply_to_t *to);

#endif
