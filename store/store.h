/*
 * store.h: the local view of livemesh: members, the services each one
 * hosts, the indexes that answer is_up, and watches.
 *
 * Everything a node knows about the mesh is answered from here: "is service
 * X on host Y up?", lists by type, host, region or status, and a stream of
 * transitions for watchers. The runtime feeds it level-triggered: after a
 * swim event it sets the member as it now is (lm_store_member_set), after a
 * verified service list arrives it hands over the list's bytes
 * (lm_store_services_set); the store diffs against what it holds and emits
 * only real transitions.
 *
 * Pure like swim/: no clock (time is an argument, unix milliseconds), no
 * RNG, no I/O. Must never depend on libuv, libsodium, mesh/, bridge/ or
 * swim internals; it uses libc, msgpack-c and include/livemesh/service.h.
 * Not thread-safe: one owner thread, like the core.
 *
 * Lookups go through hash tables (members by id and by name; services by
 * uuid, (type, host), type, host, region; lists by effective status), so
 * they cost the same for 10 members as for 10,000; is_up allocates nothing.
 *
 * Watch events are queued while a mutating call works and delivered once
 * the store is consistent. A callback (of a watch or of an iteration) may
 * read the store and may remove watches, but a mutating call made from it
 * returns LM_STORE_EBUSY and changes nothing.
 *
 * Pointers handed out (service records, names) point into store memory and
 * stay valid until the next mutating call (member_set, member_remove,
 * services_set, watch_add, free).
 */
#ifndef LIVEMESH_STORE_H
#define LIVEMESH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <livemesh/service.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: negative, -1301..-1399 in livemesh's one error space
 * (include/livemesh/livemesh.h lists the ranges; lm_strerror names them). */
#define LM_STORE_ERRNO_MAP(X)                                                  \
  X(EINVAL, -1301, "invalid argument")                                          \
  X(ENOMEM, -1302, "out of memory")                                             \
  X(EMALFORMED, -1303, "malformed service list")                                \
  X(ETRUNC, -1304, "truncated service list")                                    \
  X(EVERSION, -1305, "unknown service list version")                            \
  X(ETOOBIG, -1306, "service list exceeds a limit")                             \
  X(EDUPUUID, -1307, "a uuid appears twice in one service list")                \
  X(EIDMISMATCH, -1308, "service list signed for another member")               \
  X(ESTALE, -1309, "service list not newer than the one held")                  \
  X(EBUSY, -1310, "store mutated from inside one of its callbacks")             \
  X(ENOTFOUND, -1311, "no such member, service or watch")                     \
  X(ENOTSNAP, -1312, "not a livemesh snapshot")                               \
  X(EFOREIGN, -1313, "snapshot of another cluster or node")
#define LM_STORE_ERR_ENUM(n, v, s) LM_STORE_##n = v,
enum { LM_STORE_OK = 0, LM_STORE_ERRNO_MAP(LM_STORE_ERR_ENUM) };
#undef LM_STORE_ERR_ENUM
/* A message for every LM_STORE_E* code; "unknown error" otherwise. */
const char *lm_store_strerror(int err);

#define LM_STORE_ID_LEN 32
#define LM_STORE_NAME_MAX LM_SVC_HOST_MAX /* a member's name is its host */
#define LM_STORE_ADDR_MAX 63 /* "[v6]:port" fits */

/* Member statuses: the same numbers as lm_status_t and swim_status_t. */
enum {
  LM_STORE_ALIVE = 0,
  LM_STORE_SUSPECT = 1,
  LM_STORE_DEAD = 2,
  LM_STORE_LEFT = 3
};
/* Not in the view: the old status of something new, the new status of
 * something removed (in watch events), or an unknown is_up answer. */
#define LM_STORE_UNKNOWN (-1)

/* "alive", "suspect", "dead", "left"; "unknown" for anything else. */
const char *lm_store_member_status_name(int status);
/* "up", "down", "maintenance"; "unknown" for anything else. */
const char *lm_store_svc_status_name(int status);

typedef struct lm_store lm_store_t;

/* ---- lifecycle ---- */

/* If it fails, *out is NULL. */
int lm_store_new(lm_store_t **out);
/* Frees everything; pending events are dropped, watchers are not called. */
void lm_store_free(lm_store_t *store);

/* ---- members ---- */

/* A member. As input of lm_store_member_set the fields above the line are
 * read; as output every field is filled and the strings point into the
 * store. */
typedef struct lm_store_member {
  uint8_t id[LM_STORE_ID_LEN];
  const char *name; /* 1..LM_STORE_NAME_MAX bytes: the host of its services */
  const char *addr; /* "host:port", NULL or "" when unknown */
  int status;       /* LM_STORE_ALIVE .. LM_STORE_LEFT */
  uint32_t gen, ver;
  int64_t since_ms; /* unix ms of its last status change */
  int is_self;
  /* ---- output only ---- */
  int has_services;     /* a service list is held */
  uint64_t svc_seq;     /* seq of the held list (0 without one) */
  int64_t svc_signed_ms; /* signed_ms of the held list */
  size_t nservices;
} lm_store_member_t;

/* Creates or updates a member to exactly `m` (level-triggered). Emits a
 * member event when it is new or its status changed, and service events for
 * each of its services whose effective status changed with it. Setting the
 * same values again changes nothing and emits nothing. 0, EINVAL, ENOMEM
 * (nothing changed), EBUSY. */
int lm_store_member_set(lm_store_t *store, const lm_store_member_t *m,
                        int64_t now_ms);
/* A reaped member: it and its services leave the view (events to
 * "unknown", cause "reaped" / "member reaped"). 0, ENOTFOUND, ENOMEM,
 * EBUSY. */
int lm_store_member_remove(lm_store_t *store,
                           const uint8_t id[LM_STORE_ID_LEN], int64_t now_ms);
/* 0 and *out filled, or ENOTFOUND. */
int lm_store_member_find(const lm_store_t *store,
                         const uint8_t id[LM_STORE_ID_LEN],
                         lm_store_member_t *out);
/* By name (the first one, should two members share a name). */
int lm_store_member_find_name(const lm_store_t *store, const char *name,
                              lm_store_member_t *out);
/* Calls cb for every member, in the order they were first set; a non-zero
 * return stops the walk and is returned. */
typedef int (*lm_store_member_cb)(void *ud, const lm_store_member_t *m);
int lm_store_members_each(const lm_store_t *store, lm_store_member_cb cb,
                          void *ud);

/* ---- services ---- */

/* Replaces the services of member `id` with the list in raw[0..body_len),
 * encoded as svc_codec.h describes; raw[body_len..raw_len) (its signature)
 * is opaque but kept: the whole of raw is copied so it can be relayed
 * verbatim (lm_store_services_raw). The list is decoded and checked in full
 * first; on any error nothing changes. Refuses a list for another id
 * (EIDMISMATCH) and one whose seq is not newer than the held one (ESTALE),
 * so the same list applied twice changes nothing. Services are matched by
 * uuid: added, removed ("deregistered") and changed ones emit events when
 * their effective status changed. Returns 0, a codec error, EIDMISMATCH,
 * ESTALE, ENOTFOUND (no such member: set it first), ENOMEM, EBUSY. */
int lm_store_services_set(lm_store_t *store,
                          const uint8_t id[LM_STORE_ID_LEN],
                          const uint8_t *raw, size_t raw_len, size_t body_len,
                          int64_t now_ms);
/* The bytes last accepted for `id` (list and signature), to relay as they
 * are. 0, or ENOTFOUND when the member is unknown or holds no list. */
int lm_store_services_raw(const lm_store_t *store,
                          const uint8_t id[LM_STORE_ID_LEN],
                          const uint8_t **raw, size_t *raw_len,
                          uint64_t *seq);

/* A service with what the view knows around it. */
typedef struct lm_store_svc_view {
  const lm_service_t *svc; /* host = the member's name */
  int effective;           /* lm_svc_status_t, see lm_store_is_up */
  int member_status;       /* LM_STORE_ALIVE .. LM_STORE_LEFT */
  int64_t signed_ms;       /* when its node signed the list carrying it */
  int64_t changed_ms;      /* when this view saw `effective` change */
  const char *cause;       /* why `effective` is what it is */
  const uint8_t *member_id;
} lm_store_svc_view_t;

/* 0 and *out filled, or ENOTFOUND. Should two members claim one uuid
 * (only a misbehaving member would), one of them is returned; each member's
 * own list is still diffed against its own services only. */
int lm_store_service_find(const lm_store_t *store,
                          const uint8_t uuid[LM_UUID_LEN],
                          lm_store_svc_view_t *out);

/* Filters of lm_store_services_each; NULL (or has_uuid 0, status -1) means
 * any. Every given filter must match. */
typedef struct lm_store_filter {
  const char *type;
  const char *host;
  const char *region;
  int status; /* effective lm_svc_status_t, or -1 */
  int has_uuid;
  uint8_t uuid[LM_UUID_LEN];
} lm_store_filter_t;
/* status -1, everything else empty. */
void lm_store_filter_init(lm_store_filter_t *f);

/* Calls cb for each matching service, walking the smallest index that
 * applies. A non-zero return stops the walk and is returned. f may be
 * NULL (everything). */
typedef int (*lm_store_svc_cb)(void *ud, const lm_store_svc_view_t *v);
int lm_store_services_each(const lm_store_t *store, const lm_store_filter_t *f,
                           lm_store_svc_cb cb, void *ud);

/* The detailed answer of is_up. Strings point into the store. */
typedef struct lm_store_is_up {
  int found;          /* 0: no such service (unknown) */
  int up;             /* the return value */
  int status;         /* effective lm_svc_status_t; LM_STORE_UNKNOWN */
  int member_status;  /* LM_STORE_ALIVE..; LM_STORE_UNKNOWN */
  uint8_t uuid[LM_UUID_LEN];
  const char *type;
  const char *host;
  int64_t age_ms;     /* now - signed_ms of the list carrying the status */
  const lm_service_t *svc;
} lm_store_is_up_t;

/* Is a service of `type` on `host` up? Effective status (DESIGN.md,
 * "Services and status"): up when its own status is up and its member is
 * alive or suspect; maintenance when its own status is maintenance and the
 * member alive or suspect; down otherwise (its own status down, or its
 * member dead or left). With several services of one type on one host,
 * the pair is up if any of them is; *out (may be NULL) describes an up one
 * if any, else the one whose effective status changed last. Returns 1 up,
 * 0 down or unknown. Allocates nothing. */
int lm_store_is_up(const lm_store_t *store, const char *type,
                   const char *host, int64_t now_ms, lm_store_is_up_t *out);
int lm_store_is_up_uuid(const lm_store_t *store,
                        const uint8_t uuid[LM_UUID_LEN], int64_t now_ms,
                        lm_store_is_up_t *out);

/* ---- counts and the view index ---- */

typedef struct lm_store_counts {
  size_t members;
  size_t members_by_status[4]; /* by LM_STORE_ALIVE .. LM_STORE_LEFT */
  size_t services;
  size_t services_by_status[3]; /* by effective lm_svc_status_t */
} lm_store_counts_t;
void lm_store_counts(const lm_store_t *store, lm_store_counts_t *out);

/* Grows by one with every call that changed anything held (a status, an
 * address, a newer service list, output included), never otherwise; starts
 * at 1. For blocking queries. */
uint64_t lm_store_index(const lm_store_t *store);

/* ---- watches ---- */

enum { LM_STORE_EV_SERVICE = 0, LM_STORE_EV_MEMBER = 1 };

/* One transition as a watcher sees it. Strings stay valid during the
 * callback only (they are copies, so a removed service's name survives). */
typedef struct lm_store_event {
  int kind;     /* LM_STORE_EV_SERVICE or LM_STORE_EV_MEMBER */
  uint64_t seq; /* per watcher: 1, 2, 3, ... */
  int initial;  /* part of the current state delivered by watch_add */
  /* service: its uuid, type, name, host; member: name = host = its name,
   * type "", uuid all zero */
  uint8_t uuid[LM_UUID_LEN];
  const char *type;
  const char *name;
  const char *host;
  /* service: LM_STORE_UNKNOWN or lm_svc_status_t; member: LM_STORE_UNKNOWN
   * or LM_STORE_ALIVE..LEFT; the *_name strings spell them ("unknown",
   * "up", "down", "maintenance", "alive", "suspect", "dead", "left") */
  int old_status, new_status;
  const char *old_name, *new_name;
  /* service: the record's own cause when its own status drove the change
   * ("registered", "check", "ttl", "maintenance", ...), "deregistered",
   * "member dead", "member left", "member alive", "member suspect" (back
   * from dead as a suspect), "member reaped"; member: "joined", "alive",
   * "suspect", "dead", "left", "reaped"; initial events: the cause of the
   * current state */
  const char *cause;
  int64_t at_ms; /* now_ms of the call that saw it (watch_add for initial) */
} lm_store_event_t;

typedef void (*lm_store_watch_cb)(void *ud, const lm_store_event_t *ev);

typedef struct lm_store_watch_filter {
  const char *type; /* services of this type (NULL: any) */
  const char *host; /* services on this host; members of this name */
  int has_uuid;
  uint8_t uuid[LM_UUID_LEN];
  int members; /* member transitions only (type and uuid ignored) */
  int all;     /* member transitions and service transitions */
} lm_store_watch_filter_t;

/* Adds a watcher (filter copied; f NULL = services, any) and at once
 * delivers the current state of everything matching, one event each with
 * initial = 1 (members first, then services), then every later transition
 * of a match. An output-only change never fires; a member going suspect
 * fires a member event but no service event (its services stay up). *id
 * gets the watch's id. 0, EINVAL, ENOMEM, EBUSY (from a callback). */
int lm_store_watch_add(lm_store_t *store, const lm_store_watch_filter_t *f,
                       lm_store_watch_cb cb, void *ud, int64_t now_ms,
                       uint64_t *id);
/* Allowed from any callback, its own included: no further event reaches
 * it. 0 or ENOTFOUND. */
int lm_store_watch_remove(lm_store_t *store, uint64_t id);

#ifdef __cplusplus
}
#endif
#endif
