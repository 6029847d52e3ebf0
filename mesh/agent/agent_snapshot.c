/*
 * agent_snapshot.c: the agent's last-known view in DATA_DIR/view.snapshot.
 *
 * At start, before joining, the file is loaded (lm_node_snapshot_load):
 * until the mesh has reconverged the agent answers from it, marked stale.
 * A file that cannot be used (truncated, corrupt, another cluster's or
 * another node's) gets one warning naming it and the reason, and is
 * otherwise ignored: never trusted, never fatal. Then the view is written
 * back when it has changed, at most once every SNAP_MIN_GAP_MS, and at
 * exit. The node writes it atomically (temporary file, fsync, rename).
 */
#define _GNU_SOURCE
#include <livemesh/livemesh.h>
#include <livemesh/services.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

#define SNAP_FILE "view.snapshot"
#define SNAP_CHECK_MS 1000
#define SNAP_MIN_GAP_MS 5000

static void snap_path(const lm__agent_t *a, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", a->cfg.data_dir, SNAP_FILE);
}

static void save(lm__agent_t *a, const char *why) {
  if (!a->node)
    return;
  char p[4096];
  snap_path(a, p, sizeof p);
  uint64_t index = lm_node_view_index(a->node);
  int rc = lm_node_snapshot_save(a->node, p);
  if (rc) {
    if (!a->snap_failing)
      lm__agent_log(a, LM_LOG_WARN, "cannot write the view to %s: %s", p,
                    lm_strerror(rc));
    a->snap_failing = 1;
    return;
  }
  if (a->snap_failing)
    lm__agent_log(a, LM_LOG_INFO, "wrote the view to %s again", p);
  a->snap_failing = 0;
  a->snap_index = index;
  a->snap_last_ms = lm__unix_ms();
  lm__agent_log(a, LM_LOG_DEBUG, "view written to %s (%s)", p, why);
}

static void on_snap_timer(uv_timer_t *t) {
  lm__agent_t *a = t->data;
  if (!a->node || a->stopping >= 2)
    return;
  if (lm_node_view_index(a->node) != a->snap_index &&
      lm__unix_ms() - a->snap_last_ms >= SNAP_MIN_GAP_MS)
    save(a, "changed");
}

void lm__agent_snapshot_start(lm__agent_t *a) {
  char p[4096], err[512];
  snap_path(a, p, sizeof p);
  lm_snapshot_info_t info;
  int rc = lm_node_snapshot_load(a->node, p, &info, err, sizeof err);
  if (rc == LM_ENOTFOUND) {
    lm__agent_log(a, LM_LOG_INFO, "no last-known view in %s yet", p);
  } else if (rc < 0) {
    lm__agent_log(a, LM_LOG_WARN, "ignoring the last-known view: %s", err);
  } else {
    if (err[0]) /* the file is fine, some records in it are not */
      lm__agent_log(a, LM_LOG_WARN, "last-known view: %s", err);
    int64_t age = 0;
    lm_node_view_stale(a->node, &age);
    lm__agent_log(a, LM_LOG_INFO, "loaded the last-known view from %s: %zu "
                  "member(s), %zu service list(s), %lld ms old; answers are "
                  "stale until the mesh has reconverged", p, info.members,
                  info.lists, (long long)age);
  }
  /* what was loaded is what the file holds: nothing to write yet */
  a->snap_index = lm_node_view_index(a->node);
  a->snap_last_ms = lm__unix_ms();
  uv_timer_init(&a->loop, &a->snap_timer);
  a->snap_timer.data = a;
  a->snap_ready = 1;
  uv_timer_start(&a->snap_timer, on_snap_timer, SNAP_CHECK_MS, SNAP_CHECK_MS);
}

static void on_snap_closed(uv_handle_t *h) { (void)h; }

void lm__agent_snapshot_stop(lm__agent_t *a) {
  if (!a->snap_ready)
    return;
  a->snap_ready = 0;
  save(a, "exit");
  uv_close((uv_handle_t *)&a->snap_timer, on_snap_closed);
}
