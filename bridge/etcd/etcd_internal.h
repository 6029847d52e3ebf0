/*
 * etcd_internal.h: what the files of bridge/etcd share and nothing else
 * may use: the response decoders (bytes in, plain structs out, no network,
 * so they can be fuzzed), the gRPC frame reader, the error mapping, the
 * request encoders, and the client, connection and request structures
 * that h2.c (transport) and etcd.c (calls) both touch.
 *
 * Must never depend on swim/, store/ or mesh/.
 */
#ifndef LIVEMESH_BRIDGE_ETCD_INTERNAL_H
#define LIVEMESH_BRIDGE_ETCD_INTERNAL_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "etcd.h"

/* ---- responses (decode.c) ---- */

typedef enum {
  LM__ETCD_RESP_RANGE = 0,
  LM__ETCD_RESP_TXN = 1,
  LM__ETCD_RESP_COMPACT = 2,
  LM__ETCD_RESP_LEASE_GRANT = 3,
  LM__ETCD_RESP_LEASE_REVOKE = 4,
  LM__ETCD_RESP_LEASE_KEEPALIVE = 5,
  LM__ETCD_RESP_WATCH = 6,
  LM__ETCD_RESP_AUTH = 7,
  LM__ETCD_RESP_COUNT = 8
} lm__etcd_resp_kind_t;

/* One decoded response; which fields mean something depends on kind.
 * Pointers point into `pb_` (the unpacked protobuf-c message) or into the
 * arrays allocated here; lm__etcd_resp_free releases both. */
typedef struct lm__etcd_resp {
  lm__etcd_resp_kind_t kind;
  int64_t revision;
  uint64_t member_id, raft_term;
  /* RANGE, TXN (the kvs of the RANGE ops of the branch that ran) */
  lm_etcd_kv_t *kvs;
  size_t nkvs;
  int64_t count; /* RANGE */
  int more;      /* RANGE */
  int succeeded; /* TXN */
  /* LEASE_GRANT, LEASE_KEEPALIVE */
  int64_t id, ttl;
  const char *error; /* LEASE_GRANT's error text, "" when none */
  /* WATCH */
  int64_t watch_id, compact_revision;
  int created, canceled;
  const char *cancel_reason;
  lm_etcd_event_t *events;
  size_t nevents;
  /* AUTH */
  const char *token;
  void *pb_;
} lm__etcd_resp_t;

/* 0, LM_ETCD_EPROTO (not that message) or LM_ETCD_ENOMEM. On error `out`
 * holds nothing to free (but lm__etcd_resp_free is harmless). */
int lm__etcd_decode(lm__etcd_resp_t *out, lm__etcd_resp_kind_t kind,
                    const uint8_t *buf, size_t len);
void lm__etcd_resp_free(lm__etcd_resp_t *r);

/* gRPC length-prefixed message at the start of buf: returns the bytes it
 * takes (5 + length) with msg and msg_len set, -2 when more bytes are
 * needed, LM_ETCD_EPROTO when compressed or longer than max. */
#define LM__GRPC_NEED_MORE (-2)
long lm__grpc_frame(const uint8_t *buf, size_t len, size_t max,
                    const uint8_t **msg, size_t *msg_len);

/* ---- errors (errors.c) ---- */

/* The LM_ETCD_E* for a gRPC status and etcd's message (code 0: 0).
 * LM__ETCD_EREAUTH: the token is invalid or expired, authenticate again. */
#define LM__ETCD_EREAUTH (-1599)
int lm__etcd_map_status(int grpc_status, const char *message);
/* Percent-decodes a grpc-message value into out (NUL-terminated). */
void lm__grpc_message_decode(char *out, size_t cap, const uint8_t *in,
                             size_t len);

/* ---- requests (encode.c) ---- */
/* Each returns a malloc'd buffer holding the gRPC frame (5-byte prefix and
 * the message), or NULL when out of memory. */
uint8_t *lm__etcd_enc_range(size_t *len, const uint8_t *key, size_t key_len,
                            const uint8_t *end, size_t end_len, int64_t limit,
                            int flags);
uint8_t *lm__etcd_enc_txn(size_t *len, const lm_etcd_cmp_t *cmps,
                          size_t ncmps, const lm_etcd_op_t *success,
                          size_t nsuccess, const lm_etcd_op_t *failure,
                          size_t nfailure);
uint8_t *lm__etcd_enc_compact(size_t *len, int64_t revision);
uint8_t *lm__etcd_enc_lease_grant(size_t *len, int64_t ttl, int64_t id);
uint8_t *lm__etcd_enc_lease_revoke(size_t *len, int64_t id);
uint8_t *lm__etcd_enc_lease_keepalive(size_t *len, int64_t id);
uint8_t *lm__etcd_enc_watch_create(size_t *len, const uint8_t *key,
                                   size_t key_len, const uint8_t *end,
                                   size_t end_len, int64_t start_revision,
                                   int prev_kv);
uint8_t *lm__etcd_enc_auth(size_t *len, const char *user,
                           const char *password);

/* ---- client, connection, requests ---- */

typedef enum {
  LM__REQ_RANGE,
  LM__REQ_TXN,
  LM__REQ_COMPACT,
  LM__REQ_LEASE_GRANT,
  LM__REQ_LEASE_REVOKE,
  LM__REQ_KEEPALIVE,    /* one keep-alive, carried by the KA stream */
  LM__REQ_KA_STREAM,    /* the shared LeaseKeepAlive stream */
  LM__REQ_WATCH,
  LM__REQ_AUTH
} lm__req_kind_t;

typedef struct lm__req lm__req_t;
typedef struct lm__conn lm__conn_t;

struct lm__req {
  lm_etcd_t *c;
  lm__req_t *prev, *next; /* c->reqs */
  lm__req_kind_t kind;
  const char *path;
  /* What to send: gRPC frames queued on the stream (sendq[sendoff..]). */
  uint8_t *sendq;
  size_t sendq_len, sendoff;
  int unary;     /* end the stream once the sendq is drained */
  int sent;      /* handed to a connection (or, KEEPALIVE, to the KA stream) */
  lm__conn_t *conn;
  int32_t stream_id;
  uint64_t deadline; /* uv_now ms; 0: none */
  int reauthed;
  /* What came back. */
  uint8_t *rbuf;
  size_t rlen, rcap;
  int have_msg;
  size_t msg_off, msg_len;
  int http_status, grpc_status; /* grpc_status -1: none seen */
  char grpc_message[256];
  /* The caller's. */
  void *cb;
  void *ud;
  int64_t lease_id;  /* KEEPALIVE */
  uint64_t watch_id; /* WATCH */
  int watch_created;
};

typedef enum {
  LM__CONN_TCP,   /* connecting */
  LM__CONN_TLS,   /* handshaking */
  LM__CONN_READY, /* HTTP/2 session up */
  LM__CONN_DEAD   /* closing */
} lm__conn_state_t;

struct lm__conn {
  lm_etcd_t *c;
  uv_tcp_t tcp;
  uv_connect_t connect;
  lm__conn_state_t state;
  int tls;
  char host[256];
  int port;
  SSL *ssl;
  BIO *rbio, *wbio; /* OpenSSL's network side, in memory */
  nghttp2_session *h2;
  int goaway;
  int32_t goaway_last;
  uint64_t dial_deadline, ping_due, ping_deadline;
  int nstreams;
};

struct lm_etcd {
  uv_loop_t *loop;
  char **endpoints;
  size_t nendpoints, ep, attempts;
  char *ca_file, *cert_file, *key_file, *user, *password;
  uint32_t dial_timeout_ms, request_timeout_ms, ping_interval_ms;
  size_t max_response_bytes;
  void (*log)(void *ud, int level, const char *msg);
  void *log_ud;
  SSL_CTX *ssl_ctx;
  lm_etcd_state_cb state_cb;
  void *state_ud;
  uv_timer_t timer; /* the earliest deadline of everything */
  lm__conn_t *conn;
  int connected; /* as last reported */
  int ever_ready; /* a session was up once: later ones are reconnects */
  int authing;   /* an Authenticate is in flight: hold other requests */
  char *token;
  lm__req_t *reqs, *reqs_tail;
  lm__req_t *ka_stream;
  uint64_t next_watch_id;
  int closing;
  int handles; /* open uv handles (timer + connections' tcp) */
  void (*close_done)(void *ud);
  void *close_ud;
  lm_etcd_stats_t st;
};

/* h2.c: the transport. */
void lm__etcd_logf(lm_etcd_t *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 0 when ep is "http://IP:PORT" or "https://IP:PORT" (or localhost). */
int lm__etcd_endpoint_ok(const char *ep);
/* Starts a connection to the current endpoint when there is none. */
void lm__conn_ensure(lm_etcd_t *c);
/* Opens the request's stream on the ready connection. 0 or LM_ETCD_E*. */
int lm__conn_start_stream(lm__conn_t *k, lm__req_t *r);
/* More bytes were queued on a started stream. */
void lm__conn_resume(lm__conn_t *k, lm__req_t *r);
/* Resets the request's stream and detaches it from the request. */
void lm__conn_reset_stream(lm__conn_t *k, lm__req_t *r);
/* Writes whatever nghttp2 has to send. */
void lm__conn_flush(lm__conn_t *k);
/* Closes the connection; its requests fail with err. */
void lm__conn_fail(lm__conn_t *k, int err, const char *msg);
void lm__conn_on_timer(lm__conn_t *k, uint64_t now);
uint64_t lm__conn_next_deadline(const lm__conn_t *k);

/* etcd.c: what the transport tells the calls. */
void lm__etcd_conn_ready(lm_etcd_t *c);   /* session up (before auth) */
void lm__etcd_conn_failed(lm_etcd_t *c, lm__conn_t *k, int err,
                          const char *msg);
/* A message of a stream (the gRPC frame's payload). */
void lm__etcd_on_message(lm__req_t *r, const uint8_t *msg, size_t len);
/* The stream ended: err (transport) or the gRPC status in r. */
void lm__etcd_on_stream_end(lm__req_t *r, int err, const char *msg);
void lm__etcd_rearm(lm_etcd_t *c);
void lm__etcd_handle_closed(lm_etcd_t *c);

#endif
