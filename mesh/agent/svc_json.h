/*
 * svc_json.h: the JSON shapes of services, one definition for the agent's
 * control socket, the CLI and HTTP: a service (`services -o json`), the
 * is-up answer (`is-up -o json`), a watch event (`watch`), and the parser
 * of a registration body (the `register` fields, from the control socket,
 * an HTTP PUT or a config file). Field names are those of INTERFACES.md;
 * what is added here is added, never renamed.
 *
 * Every message from the parser names the field at fault, so a person
 * can fix the request without reading this file.
 *
 * Must never depend on the node's or the store's internals: the value
 * types of service.h and services.h, lm_uuid_format/lm_uuid_parse, and
 * jansson. (It uses lm__rfc3339 and lm__unix_ms from control.h.)
 */
#ifndef LIVEMESH_MESH_SVC_JSON_H
#define LIVEMESH_MESH_SVC_JSON_H

#include <jansson.h>
#include <livemesh/services.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- shapes ---- */

/* One service, as `services -o json` shows it:
 *   uuid, type, name, host, region, worker (null when not given), pid
 *   (null when not given), port (null when not given), status (the
 *   effective status: "up", "down", "maintenance"), member_status,
 *   created_at, since (RFC 3339), tags [], meta {}, checks [{kind, status,
 *   output}], stale;
 * and beyond INTERFACES.md: service_status (its own status, before its
 * member's state is applied), cause, note, maint_until (RFC 3339 or null),
 * age_ms (since its node signed the status; 0 when unknown), local. */
json_t *lm__service_json(const lm_service_view_t *v, int stale);
/* Same, with the clock passed in (age_ms = now_ms - signed_ms). */
json_t *lm__service_json_at(const lm_service_view_t *v, int stale,
                            int64_t now_ms);

/* `is-up -o json`: {up, status, member_status, uuid, type, host, age_ms,
 * stale}. `r` NULL or r->found == 0: status "unknown", member_status
 * "unknown", uuid/type/host null unless known, age_ms null. */
json_t *lm__is_up_json(int up, const lm_is_up_t *r, int stale);

/* One `watch` line: {seq, kind ("service"|"member"), uuid (services) or
 * name (members), type (services), host, old, new, cause, at (RFC 3339)}
 * plus "initial": true on the lines of the initial state only. For a
 * member, host is the member's name too. */
json_t *lm__watch_event_json(const lm_watch_event_t *e);

/* ---- text ---- */

/* Makes `s` valid UTF-8 in place, so JSON can carry it: every byte that
 * does not start a whole, shortest-form sequence (such as the first half
 * of a character cut by a "%.64s") becomes '?'. */
void lm__utf8_scrub(char *s);

/* ---- durations ---- */

/* "500ms", "30s", "5m", "1h", or a bare number of seconds ("30", "0.5");
 * a fraction is allowed if the result is whole milliseconds. 0 on success,
 * -1 malformed (garbage, a sign, a space, an unknown unit), -2 out of range
 * (overflow, finer than a millisecond). Zero is accepted: whether it is
 * meaningful is the caller's call. */
int lm__duration_parse(const char *s, uint64_t *ms);
/* A JSON duration: a string as above, or a number of seconds (>= 0). Same
 * returns; -1 also for any other JSON type. */
int lm__duration_json(const json_t *v, uint64_t *ms);
/* "1h30m", "5m", "30s", "1500ms", "0s": the shortest exact text. */
void lm__duration_format(char *out, size_t cap, uint64_t ms);

/* ---- registration bodies ---- */

/* The register fields as a service spec. `spec` points into the rest of
 * the struct (and into strings it owns), so the struct must not be copied
 * or moved while `spec` is used; lm__spec_buf_free releases the strings. */
#define LM__SPEC_FIELD_MAX 32
typedef struct lm__spec_buf {
  lm_service_spec_t spec;
  uint8_t uuid[LM_UUID_LEN];
  const char *tags[LM_SVC_TAGS_MAX];
  const char *meta_keys[LM_SVC_META_KEYS_MAX];
  const char *meta_values[LM_SVC_META_KEYS_MAX];
  char *owned[8 + LM_SVC_TAGS_MAX + 2 * LM_SVC_META_KEYS_MAX];
  size_t nowned;
  /* after a failure: the JSON name of the field at fault ("" if none) */
  char field[LM__SPEC_FIELD_MAX];
} lm__spec_buf_t;

void lm__spec_buf_free(lm__spec_buf_t *b);

/* How messages name a field: as the JSON key ("ttl", "http_check") or as
 * the `livemesh register` flag (--ttl, --http-check, --tag, --meta). */
typedef enum lm__field_names {
  LM__NAMES_JSON = 0,
  LM__NAMES_FLAGS = 1
} lm__field_names_t;

/* Parses a register body: an object with the fields type (required),
 * name, uuid, pid, worker, region, port, tags [], meta {}, ttl,
 * http_check, tcp_check, exec_check, interval, timeout,
 * failures_before_down, successes_before_up, ephemeral. "cmd" and "id" (the
 * control socket's envelope) are ignored; any other key is refused. A
 * null value is the same as an absent key. `ephemeral` NULL: the caller
 * has no connection to tie a registration to, so "ephemeral": true is
 * refused. Checks the limits of service.h and the shape of every value
 * (the node checks them again). On success returns 0 and fills `out`
 * (free it with lm__spec_buf_free); on failure returns -1, frees what it
 * took, names the field in out->field and explains in `err`. */
int lm__spec_from_json(const json_t *body, lm__spec_buf_t *out,
                       int *ephemeral, char *err, size_t errcap);
int lm__spec_from_json_named(const json_t *body, lm__spec_buf_t *out,
                             int *ephemeral, lm__field_names_t names,
                             char *err, size_t errcap);

/* HOST:PORT for a TCP check: a host name, an IPv4 literal or [IPv6], and
 * a port 1..65535. 1 valid, 0 not. */
int lm__check_hostport_valid(const char *s);
/* http:// or https://, a host, an optional :port 1..65535, an optional
 * path; no spaces or control characters. 1 valid, 0 not. */
int lm__check_url_valid(const char *s);

#ifdef __cplusplus
}
#endif
#endif
