/*
 * service.h: the value types of livemesh services, shared by the public
 * API, the local view (store/), the agent and the client library.
 *
 * A service is one registration on one member: four workers of one type on
 * one host are four services, each with its own uuid. Its status is decided
 * by checks run by its own node and spread through the mesh signed by that
 * node. Plain values only: this header depends on nothing but libc, so the
 * pure store/ may use it.
 */
#ifndef LIVEMESH_SERVICE_H
#define LIVEMESH_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits, checked wherever a service enters: the C API, the control
 * socket, the config file and the wire decoder. */
#define LM_UUID_LEN 16
#define LM_UUID_STRLEN 36      /* 8-4-4-4-12 hex, no NUL */
#define LM_SVC_TYPE_MAX 64     /* bytes, not counting NUL */
#define LM_SVC_NAME_MAX 64
#define LM_SVC_HOST_MAX 64     /* the member's name */
#define LM_SVC_REGION_MAX 64
#define LM_SVC_TAGS_MAX 16
#define LM_SVC_TAG_MAX 64
#define LM_SVC_META_KEYS_MAX 32
#define LM_SVC_META_KEY_MAX 64
#define LM_SVC_META_VALUE_MAX 256
#define LM_SVC_NOTE_MAX 256
#define LM_SVC_CAUSE_MAX 32
#define LM_SVC_CHECKS_MAX 4
/* Check output: kept whole (up to this) by the service's own node... */
#define LM_CHECK_OUTPUT_MAX 4096
/* ...and up to this much in the signed record other members receive. */
#define LM_CHECK_OUTPUT_WIRE_MAX 128
/* Checks: defaults when a registration does not say. */
#define LM_SVC_CHECK_INTERVAL_DEFAULT_MS 10000
#define LM_SVC_CHECK_TIMEOUT_DEFAULT_MS 5000
/* Services one node may register. */
#define LM_SVC_PER_NODE_MAX 1024

typedef enum lm_svc_status {
  LM_SVC_UP = 0,
  LM_SVC_DOWN = 1,
  LM_SVC_MAINT = 2
} lm_svc_status_t;
/* "up", "down", "maintenance" */
const char *lm_svc_status_name(lm_svc_status_t s);

typedef enum lm_check_kind {
  LM_CHECK_TTL = 1,     /* the service calls pass within its TTL */
  LM_CHECK_PROCESS = 2, /* a pid, watched through a pidfd */
  LM_CHECK_HTTP = 3,    /* GET, 2xx or 3xx within the timeout */
  LM_CHECK_TCP = 4,     /* connect within the timeout */
  LM_CHECK_EXEC = 5     /* a command exits 0 within the timeout */
} lm_check_kind_t;
/* "ttl", "process", "http", "tcp", "exec"; "unknown" otherwise */
const char *lm_check_kind_name(lm_check_kind_t k);

/* One check's latest verdict as the service's node reports it. */
typedef struct lm_check_state {
  lm_check_kind_t kind;
  lm_svc_status_t status; /* LM_SVC_UP or LM_SVC_DOWN */
  const char *output;     /* NUL-terminated, may be "" */
} lm_check_state_t;

/* A service as the view holds it. Pointers belong to whoever filled the
 * struct (the store, a node, the client library) and stay valid as that
 * owner documents. */
typedef struct lm_service {
  uint8_t uuid[LM_UUID_LEN];
  const char *type;   /* required */
  const char *name;   /* "" when not given */
  const char *host;   /* the hosting member's name */
  const char *region; /* "" when not given */
  int32_t worker;     /* -1 when not given */
  int32_t pid;        /* 0 when not given */
  uint16_t port;      /* 0 when not given */
  int64_t created_ms; /* unix milliseconds */
  /* The service's own status, from its checks or maintenance. */
  lm_svc_status_t status;
  int64_t since_ms;       /* unix ms of the last change of `status` */
  const char *cause;      /* why it changed: "registered", "check", "ttl", ... */
  const char *note;       /* pass/fail/maintenance note, "" when none */
  int64_t maint_until_ms; /* LM_SVC_MAINT: when it ends by itself; 0 never */
  const char *const *tags;
  size_t ntags;
  const char *const *meta_keys;
  const char *const *meta_values;
  size_t nmeta;
  const lm_check_state_t *checks;
  size_t nchecks;
} lm_service_t;

/* "0f1e2d3c-..." (36 characters and a NUL) and back; 0 or -1. */
void lm_uuid_format(char out[LM_UUID_STRLEN + 1],
                    const uint8_t uuid[LM_UUID_LEN]);
int lm_uuid_parse(uint8_t out[LM_UUID_LEN], const char *s);

#ifdef __cplusplus
}
#endif
#endif
