/*
 * services.h: services on an embedded node, and the local view's answers.
 *
 * A node registers the services it hosts, runs their checks on its own
 * loop and announces them, signed with its own key, to the whole mesh.
 * Every node keeps every member's services in memory, so lm_node_is_up()
 * and the lookups below answer from local memory: no network round trip.
 *
 * Threads: like the rest of lm_node_*, call these from the node's loop
 * thread, or from any thread when the node runs a thread of its own. The
 * reading calls (is_up, lookups, iteration) take a lock and copy nothing.
 * Watch callbacks run on the node's loop thread after the view has been
 * updated, so they may call any lm_node_* function.
 *
 * Depends on livemesh.h and service.h.
 */
#ifndef LIVEMESH_SERVICES_H
#define LIVEMESH_SERVICES_H

#include <livemesh/livemesh.h>
#include <livemesh/service.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a registration says. Strings are copied. Fields left zero take
 * their defaults; at most one of ttl_ms, pid (as a check), http_check,
 * tcp_check, exec_check may define the check:
 *   ttl_ms > 0          down unless lm_node_service_pass() comes in time;
 *   pid > 0, no other   a process check: down the moment the pid exits;
 *   http_check          GET URL: 2xx or 3xx within timeout_ms is up;
 *   tcp_check           "HOST:PORT" accepts a connection within timeout_ms;
 *   exec_check          "/bin/sh -c CMD" exits 0 within timeout_ms (only
 *                       on a node created with allow_exec_checks).
 * With no check at all the service is up while it is registered. */
typedef struct lm_service_spec {
  const uint8_t *uuid; /* NULL: a new random uuid */
  const char *type;    /* required, 1..LM_SVC_TYPE_MAX bytes */
  const char *name, *region;
  int32_t worker;      /* -1 or >= 0; 0 is a valid index, so say -1 */
  int32_t pid;         /* 0: none */
  uint16_t port;
  const char *const *tags;
  size_t ntags;
  const char *const *meta_keys, *const *meta_values;
  size_t nmeta;
  uint32_t ttl_ms;
  const char *http_check, *tcp_check, *exec_check;
  uint32_t interval_ms;          /* http/tcp/exec: default 10000 */
  uint32_t timeout_ms;           /* default 5000 (and < interval) */
  uint32_t failures_before_down; /* default 1 */
  uint32_t successes_before_up;  /* default 1 */
  int64_t created_ms;            /* 0: now (a re-registration keeps it) */
} lm_service_spec_t;

/* Registers a service, starts its check and announces it. On error
 * nothing changes and `err` (when given) names the field at fault:
 * LM_EINVAL a bad field, LM_EEXIST a uuid already in the view, LM_EPERM an
 * exec check on a node that does not allow them, LM_ELIMIT too many
 * services on this node. */
int lm_node_service_register(lm_node_t *node, const lm_service_spec_t *spec,
                             uint8_t uuid_out[LM_UUID_LEN], char *err,
                             size_t errcap);
/* Replaces the registration of spec->uuid (a service of this node),
 * keeping its created_ms, maintenance and, when the status stays the
 * same, its since. LM_ENOTFOUND when it is not registered here. */
int lm_node_service_update(lm_node_t *node, const lm_service_spec_t *spec,
                           char *err, size_t errcap);
int lm_node_service_deregister(lm_node_t *node,
                               const uint8_t uuid[LM_UUID_LEN]);
/* TTL services: a heartbeat (pass) or an immediate failure (fail), with an
 * optional note shown as the check's output. LM_EINVAL on a service whose
 * check is not a TTL. */
int lm_node_service_pass(lm_node_t *node, const uint8_t uuid[LM_UUID_LEN],
                         const char *note);
int lm_node_service_fail(lm_node_t *node, const uint8_t uuid[LM_UUID_LEN],
                         const char *note);
/* Maintenance until unix time `until_ms` (it ends by itself then; 0: until
 * turned off), with a note. lm_node_service_maint_off ends it now. */
int lm_node_service_maint(lm_node_t *node, const uint8_t uuid[LM_UUID_LEN],
                          int64_t until_ms, const char *note);
int lm_node_service_maint_off(lm_node_t *node,
                              const uint8_t uuid[LM_UUID_LEN]);

/* The answer to "is it up?", from the local view. */
typedef struct lm_is_up {
  int found;                 /* 0: no such service in the view (unknown) */
  int up;
  lm_svc_status_t status;    /* the effective status (see below) */
  lm_status_t member_status; /* of the hosting member */
  uint8_t uuid[LM_UUID_LEN];
  char type[LM_SVC_TYPE_MAX + 1];
  char host[LM_SVC_HOST_MAX + 1];
  int64_t age_ms; /* since the hosting node last confirmed the status */
} lm_is_up_t;

/* 1 up, 0 down or unknown, negative on error. `out` may be NULL. Up: the
 * service's own status is up and its member is alive or suspect. Down: the
 * service is down or in maintenance, or its member is dead or left. With
 * several services of `type` on `host` (workers), up when any one is. */
int lm_node_is_up(lm_node_t *node, const char *type, const char *host,
                  lm_is_up_t *out);
int lm_node_is_up_uuid(lm_node_t *node, const uint8_t uuid[LM_UUID_LEN],
                       lm_is_up_t *out);

/* A service with what the view knows about it. */
typedef struct lm_service_view {
  const lm_service_t *svc;
  lm_svc_status_t effective;
  lm_status_t member_status;
  int64_t signed_ms; /* when its node signed the status we hold */
  int is_local;      /* hosted by this node */
} lm_service_view_t;

/* Filters: NULL or -1 fields match anything. */
typedef struct lm_service_filter {
  const char *type, *host, *region;
  int status; /* lm_svc_status_t of the effective status, or -1 */
  const uint8_t *uuid;
} lm_service_filter_t;

/* Calls `cb` for each matching service, under the view's lock: pointers
 * are valid during the call only, and `cb` must not call lm_node_*.
 * Returning non-zero from `cb` stops the walk. Returns the number of
 * services visited or a negative error. */
typedef int (*lm_service_each_cb)(void *ud, const lm_service_view_t *v);
int lm_node_services_each(lm_node_t *node, const lm_service_filter_t *f,
                          lm_service_each_cb cb, void *ud);
/* Grows on every real change of the view (members or services). */
uint64_t lm_node_view_index(lm_node_t *node);

/* ---- the last-known view ----
 *
 * A node can write its view (members and their service lists) to a file
 * and load it after a restart, so that until the mesh has reconverged it
 * answers from what it last knew, marked stale (nd_service_registry's
 * cache file while ZooKeeper is down). The file keeps every signed record
 * signed: a member's certificate (the cluster key's signature binds its id
 * and name) and its service list (signed by the member itself); what only
 * this node observed (statuses, addresses, times) is sealed with a key
 * derived from this node's secret key. Format: store/snapshot.h.
 *
 * The view is stale:
 *   - after a load that kept at least one member, until the node has
 *     merged a full state exchange (the join's answer, or any push-pull)
 *     while another member is alive; then the remembered members the
 *     protocol does not know leave the view;
 *   - when the node is cut off: it had peers, none is alive or suspect any
 *     more, and one was declared dead since the last message this node
 *     received from anyone. The view is then held as it was at that last
 *     message (members declared dead since are kept at the status they had
 *     then), rather than calling everything down, until some member is
 *     alive again; it stays stale until the next full state exchange.
 * A graceful leave of the last peer is not a cut-off. */

typedef struct lm_snapshot_info {
  int64_t written_ms;     /* unix ms the file's view dates from */
  size_t members;         /* put into the view */
  size_t lists;           /* service lists put into the view */
  size_t members_dropped; /* seal or certificate did not verify */
  size_t lists_dropped;   /* signature did not verify: member kept without */
  size_t skipped;         /* this node, or members already known */
} lm_snapshot_info_t;

/* Writes the view to `path` atomically (a temporary file in the same
 * directory, fsync, rename, fsync of the directory), mode 0600. A stale
 * view keeps the time it dates from. 0, LM_ENOMEM, or an errno value. */
int lm_node_snapshot_save(lm_node_t *node, const char *path);
/* Loads a snapshot written by this very node (same id, same cluster) into
 * the view, before or after joining: members the protocol already knows,
 * and this node, are skipped. Returns the number of members put into the
 * view (the view is then stale), or a negative error with `err` naming
 * the file and the reason: LM_ENOTFOUND (no file), LM_STORE_ENOTSNAP,
 * LM_STORE_ETRUNC, LM_STORE_EMALFORMED, LM_STORE_EVERSION,
 * LM_STORE_ETOOBIG (damaged), LM_STORE_EFOREIGN (another cluster or
 * node), LM_ELIMIT (over 256 MiB): nothing of such a file is used. When
 * members or lists were dropped, `err` says so too. `info` may be NULL. */
int lm_node_snapshot_load(lm_node_t *node, const char *path,
                          lm_snapshot_info_t *info, char *err, size_t errcap);
/* 1 when answers from the view are stale (above), with *age_ms (may be
 * NULL) the age of the view; 0 when fresh; negative on error. */
int lm_node_view_stale(lm_node_t *node, int64_t *age_ms);
/* The members of the view: those the protocol knows, as the view holds
 * them (held while cut off), and those remembered from a snapshot. Free
 * *out with free(). */
int lm_node_view_members(lm_node_t *node, lm_member_t **out, size_t *count);

/* ---- watches ---- */

typedef enum lm_watch_kind { LM_WATCH_SERVICE = 0, LM_WATCH_MEMBER = 1 }
    lm_watch_kind_t;

/* A transition. old/new are status names: for services "unknown" (not in
 * the view), "up", "down", "maintenance"; for members "unknown", "alive",
 * "suspect", "dead", "left". */
typedef struct lm_watch_event {
  uint64_t seq; /* per watch: 1, 2, 3, ... with no gaps */
  int initial;  /* part of the current state delivered first */
  lm_watch_kind_t kind;
  uint8_t uuid[LM_UUID_LEN]; /* services */
  const char *type, *host, *name; /* name: the service's, or the member's */
  const char *old_status, *new_status;
  const char *cause; /* "check", "ttl", "maintenance", "registered",
                        "deregistered", "member dead", "member left", ... */
  int64_t at_ms;     /* unix ms */
} lm_watch_event_t;

typedef struct lm_watch_filter {
  const char *type, *host;
  const uint8_t *uuid;
  int members; /* member transitions only */
  int all;     /* services and members */
} lm_watch_filter_t;

typedef void (*lm_watch_cb)(lm_node_t *node, const lm_watch_event_t *ev,
                            void *ud);
/* Delivers the current state first (initial = 1), then every real
 * transition. A change of check output alone is not a transition. */
int lm_node_watch(lm_node_t *node, const lm_watch_filter_t *f, lm_watch_cb cb,
                  void *ud, uint64_t *watch_id);
int lm_node_unwatch(lm_node_t *node, uint64_t watch_id);

#ifdef __cplusplus
}
#endif
#endif
