/*
 * cmdq.c: the cross-thread command queue of a node that runs on a thread
 * of its own: callers post, the loop thread applies.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "node_internal.h"

void lm__on_async(uv_async_t *a) {
  lm_node_t *n = a->data;
  for (;;) {
    uv_mutex_lock(&n->mu);
    cmd_t *c = n->cmds;
    if (c) {
      n->cmds = c->next;
      if (!n->cmds)
        n->cmds_tail = NULL;
    }
    uv_mutex_unlock(&n->mu);
    if (!c)
      break;
    switch (c->kind) {
    case CMD_JOIN: lm__apply_join(n, c->addrs, c->n); break;
    case CMD_LEAVE: {
      int rc = lm__apply_leave(n, c->cb, c->ud);
      if (rc && c->cb)
        c->cb(n, rc, c->ud);
      break;
    }
    case CMD_META: lm__apply_meta(n, c->meta, c->n); break;
    case CMD_CALL:
      c->rc = c->fn(n, c->arg);
      uv_sem_post(c->done);
      continue; /* the caller owns c */
    case CMD_CLOSE:
      n->close_cb = c->cb;
      n->close_ud = c->ud;
      n->close_pending = 1;
      if (!n->in_dispatch)
        lm__do_close(n);
      break;
    }
    free(c->addrs);
    free(c);
  }
}

int lm__post(lm_node_t *n, cmd_t *c) {
  c->next = NULL;
  uv_mutex_lock(&n->mu);
  if (n->cmds_tail)
    n->cmds_tail->next = c;
  else
    n->cmds = c;
  n->cmds_tail = c;
  uv_mutex_unlock(&n->mu);
  return uv_async_send(&n->async);
}

