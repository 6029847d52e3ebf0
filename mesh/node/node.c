/*
 * node.c: lm_node_t, the libuv runtime around one swim core.
 *
 * Inbound: UDP datagram or TCP frame -> envelope check (size, version,
 * cluster, sender, signature, replay) -> swim_recv -> events queued ->
 * delivered to the user after the core and the node's lock are released.
 * Outbound: the core's send/send_stream callbacks -> seal -> UDP or a
 * short-lived TCP connection. The core's next deadline drives one uv timer.
 *
 * This file holds the lifecycle (new, start, close), the public lm_node_*
 * calls and the timers; the transport, the core's callbacks, the command
 * queue and the stats live beside it (node_internal.h lists them).
 *
 * Every piece of state hangs off the node; nothing is global. Must never
 * depend on store/ or bridge/.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "node_internal.h"

/* ---- logging, time, randomness ---- */

void lm__node_log(lm_node_t *n, int level, const char *fmt, ...) {
  if (!n->opt.log || level > n->opt.log_level)
    return;
  char buf[512];
  int k = snprintf(buf, sizeof buf, "%s: ", n->name);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
  va_end(ap);
  n->opt.log(n->opt.log_ud, level, buf);
}

int64_t lm__node_unix_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

uint64_t lm__node_rand(lm_node_t *n) {
  /* xorshift128+, seeded from libsodium's CSPRNG: the protocol only needs
   * unpredictable-enough shuffles, not key material */
  uint64_t s1 = n->rng[0];
  const uint64_t s0 = n->rng[1];
  n->rng[0] = s0;
  s1 ^= s1 << 23;
  n->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return n->rng[1] + s0;
}

/* ---- the core's timer ---- */

void lm__rearm(lm_node_t *n) {
  if (n->state == ST_CLOSING || !n->core)
    return;
  uint64_t d = swim_next_deadline(n->core), now = lm__now_ms(n);
  if (d == UINT64_MAX)
    uv_timer_stop(&n->timer);
  else
    uv_timer_start(&n->timer, lm__on_timer, d > now ? d - now : 0, 0);
}

/* ---- timers and commands ---- */

void lm__on_timer(uv_timer_t *t) {
  lm_node_t *n = t->data;
  /* libuv runs timers before it polls: an ack may be waiting in the socket
   * while the probe's deadline fires, and on a busy loop (many nodes, a
   * mass join) it often is. So a tick first lets one poll phase run, and
   * decides only on what has arrived by then. */
  if (!n->tick_deferred) {
    n->tick_deferred = 1;
    uv_timer_start(&n->timer, lm__on_timer, 1, 0);
    return;
  }
  n->tick_deferred = 0;
  uv_mutex_lock(&n->mu);
  swim_tick(n->core, lm__now_ms(n));
  uv_mutex_unlock(&n->mu);
  lm__dispatch(n);
}

static void finish_leave(lm_node_t *n, int status) {
  lm_done_cb cb = n->leave_cb;
  n->leave_cb = NULL;
  if (cb)
    cb(n, status, n->leave_ud);
}

static void on_housekeeping(uv_timer_t *t) {
  lm__stream_stalled(t->data, 0);
  lm_node_t *n = t->data;
  uint64_t now = lm__now_ms(n);
  for (conn_t *c = n->conns, *next; c; c = next) {
    next = c->next;
    if (now >= c->started + CONN_TIMEOUT_MS ||
        (!c->outbound && now >= c->last_read + CONN_IDLE_MS))
      lm__conn_close(c);
  }
  if (n->state == ST_LEAVING && n->leave_cb) {
    uv_mutex_lock(&n->mu);
    int done = swim_leave_done(n->core);
    uv_mutex_unlock(&n->mu);
    if (done || now >= n->leave_started + LEAVE_MAX_MS)
      finish_leave(n, done ? 0 : LM_ETIMEDOUT);
  }
}

int lm__apply_join(lm_node_t *n, const swim_addr_t *a, size_t k) {
  uv_mutex_lock(&n->mu);
  int rc = swim_join(n->core, a, k, lm__now_ms(n));
  uv_mutex_unlock(&n->mu);
  lm__dispatch(n);
  return rc; /* the core's SWIM_E* cause, if any */
}

int lm__apply_leave(lm_node_t *n, lm_done_cb cb, void *ud) {
  if (n->state != ST_RUNNING)
    return LM_ESTATE;
  uv_mutex_lock(&n->mu);
  int rc = swim_leave(n->core, lm__now_ms(n));
  uv_mutex_unlock(&n->mu);
  if (rc)
    return rc;
  n->state = ST_LEAVING;
  n->leave_cb = cb;
  n->leave_ud = ud;
  n->leave_started = lm__now_ms(n);
  lm__node_log(n, LM_LOG_INFO, "leaving the mesh");
  lm__dispatch(n);
  return 0;
}

/* A member's metadata: the seq of its service list (so members know when
 * to fetch it), then the application's own bytes. The certificate is not
 * in it: it travels once per member (certs.c). */
static void build_meta(lm_node_t *n) {
  size_t off = 0;
  off += lm__svc_meta(n, n->meta + off);
  if (n->app_meta_len)
    memcpy(n->meta + off, n->app_meta, n->app_meta_len);
  n->meta_len = off + n->app_meta_len;
}

int lm__apply_meta(lm_node_t *n, const uint8_t *meta, size_t len) {
  if (len)
    memcpy(n->app_meta, meta, len);
  n->app_meta_len = len;
  return lm__node_refresh_meta(n);
}

int lm__node_refresh_meta(lm_node_t *n) {
  uv_mutex_lock(&n->mu);
  build_meta(n);
  int rc = swim_set_meta(n->core, n->meta, n->meta_len, lm__now_ms(n));
  uv_mutex_unlock(&n->mu);
  lm__dispatch(n);
  return rc;
}

size_t lm__node_max_datagram(const lm_node_t *n) {
  size_t m = SWIM_MTU - lm_env_overhead(&n->tx);
  return m < SWIM_MAX_PAYLOAD ? m : SWIM_MAX_PAYLOAD;
}

int lm__node_on_loop(const lm_node_t *n) {
  if (!n->threaded || !n->thread_started)
    return 1;
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &n->thread);
}

int lm__node_call(lm_node_t *n, int (*fn)(lm_node_t *n, void *arg),
                  void *arg) {
  if (lm__node_on_loop(n))
    return fn(n, arg);
  cmd_t *c = calloc(1, sizeof *c);
  uv_sem_t done;
  if (!c)
    return LM_ENOMEM;
  if (uv_sem_init(&done, 0)) {
    free(c);
    return LM_ENOMEM;
  }
  c->kind = CMD_CALL;
  c->fn = fn;
  c->arg = arg;
  c->done = &done;
  int rc = lm__post(n, c);
  if (rc == 0) {
    uv_sem_wait(&done);
    rc = c->rc;
  }
  uv_sem_destroy(&done);
  free(c);
  return rc;
}

/* ---- lifecycle ---- */

void lm__node_handle_closed(uv_handle_t *h) {
  lm_node_t *n = h->data;
  n->open_handles--;
  if (n->open_handles == 0)
    lm__do_close(n);
}

void lm__node_checker_closed(void *ud) {
  lm_node_t *n = ud;
  n->open_handles--;
  if (n->open_handles == 0 && n->state == ST_CLOSING)
    lm__do_close(n);
}

static void fork_marker_free(volatile const uint8_t *m);

static void free_node(lm_node_t *n) {
  lm__snap_free(n);
  lm__svc_free(n);
  lm__certs_free(n);
  lm__stream_stalled(n, 1);
  lm__pairs_free(n);
  swim_free(n->core);
  if (n->records && --n->records->refs == 0) {
    free(n->records->memo);
    lm__certs_store_free(n->records->certs);
    swim_rec_cache_free(n->records->cache);
    free(n->records);
  }
  lm_receiver_close(&n->rx);
  lm_sender_close(&n->tx);
  lm_cluster_close(&n->cluster);
  lm_keypair_wipe(&n->kp);
  for (cmd_t *c = n->cmds, *next; c; c = next) {
    next = c->next;
    free(c->addrs);
    free(c);
  }
  free(n->evs);
  fork_marker_free(n->fork_marker);
  uv_mutex_destroy(&n->mu);
  free((void *)n->opt.name);
  free((void *)n->opt.bind);
  free((void *)n->opt.advertise);
  free((void *)n->opt.cluster);
  free(n);
}

/* Runs on the loop thread: first call closes every handle; the last close
 * callback calls it again to finish. */
void lm__do_close(lm_node_t *n) {
  if (n->state != ST_CLOSING) {
    n->state = ST_CLOSING;
    n->close_pending = 0;
    if (n->leave_cb)
      finish_leave(n, LM_ESTATE);
    for (conn_t *c = n->conns, *next; c; c = next) {
      next = c->next;
      lm__conn_close(c);
    }
    uv_handle_t *hs[] = {(uv_handle_t *)&n->udp, (uv_handle_t *)&n->listener,
                         (uv_handle_t *)&n->timer,
                         (uv_handle_t *)&n->housekeeping,
                         n->threaded ? (uv_handle_t *)&n->async : NULL};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
      if (hs[i] && hs[i]->data == n && !uv_is_closing(hs[i])) {
        n->open_handles++;
        uv_close(hs[i], lm__node_handle_closed);
      }
    lm__svc_close(n, lm__node_handle_closed);
    if (n->open_handles)
      return;
  }
  if (n->open_handles)
    return;
  if (n->threaded)
    return; /* lm_node_close joins the thread and frees */
  lm_done_cb cb = n->close_cb;
  void *ud = n->close_ud;
  free_node(n);
  if (cb)
    cb(NULL, 0, ud);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* One page that a fork hands to the child zeroed (see lm__forked); NULL
 * where the kernel does not offer MADV_WIPEONFORK. */
static volatile const uint8_t *fork_marker_new(void) {
#ifdef MADV_WIPEONFORK
  long page = sysconf(_SC_PAGESIZE);
  void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  if (madvise(p, (size_t)page, MADV_WIPEONFORK)) {
    munmap(p, (size_t)page);
    return NULL;
  }
  *(volatile uint8_t *)p = 1;
  return p;
#else
  return NULL;
#endif
}

static void fork_marker_free(volatile const uint8_t *m) {
  if (m)
    munmap((void *)(uintptr_t)m, (size_t)sysconf(_SC_PAGESIZE));
}

int lm_node_new(lm_node_t **out, uv_loop_t *loop, const lm_options_t *o) {
  *out = NULL;
  if (!o || !o->name || !*o->name || strlen(o->name) > LM_NAME_MAX ||
      !o->identity || !o->identity->cert_len || !o->trusted || !o->ntrusted ||
      o->test_drop_inbound < 0 || o->test_drop_inbound > 1)
    return LM_EINVAL;
  if (sodium_init() < 0)
    return LM_ENOMEM;
  lm_node_t *n = calloc(1, sizeof *n);
  if (!n)
    return LM_ENOMEM;
  n->pid = getpid();
  n->fork_marker = fork_marker_new();
  n->opt = *o;
  n->opt.name = dup_or_null(o->name);
  n->opt.bind = dup_or_null(o->bind ? o->bind : "0.0.0.0:7946");
  n->opt.advertise = dup_or_null(o->advertise);
  n->opt.cluster = dup_or_null(o->cluster ? o->cluster : "livemesh");
  n->opt.identity = NULL;
  n->opt.trusted = NULL;
  n->opt.secret = NULL;
  snprintf(n->name, sizeof n->name, "%s", o->name);
  if (uv_mutex_init(&n->mu)) {
    free(n);
    return LM_ENOMEM;
  }
  int rc = LM_ENOMEM;
  if (!n->opt.name || !n->opt.bind || !n->opt.cluster ||
      (o->advertise && !n->opt.advertise))
    goto fail;
  rc = LM_EADDR;
  if (lm__parse_hostport(n->opt.bind, &n->bind_sa))
    goto fail;
  if (n->opt.advertise) {
    if (lm__parse_hostport(n->opt.advertise, &n->adv_sa))
      goto fail;
    n->adv_given = 1;
  }
  /* keys and certificate */
  rc = LM_ECERT;
  memcpy(n->kp.pk, o->identity->pk, sizeof n->kp.pk);
  memcpy(n->kp.sk, o->identity->sk, sizeof n->kp.sk);
  if (lm_cert_decode(&n->cert, o->identity->cert, o->identity->cert_len) !=
          (int)o->identity->cert_len ||
      memcmp(n->cert.node_pk, n->kp.pk, sizeof n->kp.pk) != 0 ||
      strcmp(n->cert.name, n->name) != 0)
    goto fail;
  memcpy(n->cert_raw, o->identity->cert, o->identity->cert_len);
  n->cert_len = o->identity->cert_len;
  /* from here on, the trust layer's LM_TRUST_E* code is the cause */
  lm_trust_set_init(&n->trust);
  for (size_t i = 0; i < o->ntrusted; i++)
    if ((rc = lm_trust_set_add(&n->trust, o->trusted[i])))
      goto fail;
  if ((rc = lm_cert_verify(&n->trust, &n->cert, (uint64_t)time(NULL))))
    goto fail;
  if ((rc = lm_cluster_init(&n->cluster, n->opt.cluster, o->secret, 0)))
    goto fail;
  if ((rc = lm_sender_init(&n->tx, &n->cluster, &n->kp,
                           (uint64_t)lm__node_unix_ms() * 1000)) ||
      (rc = lm_sender_set_cert(&n->tx, &n->cert)))
    goto fail;
  if ((rc = lm_receiver_init(&n->rx, &n->cluster, &n->trust, lm__key_lookup,
                             n)))
    goto fail;
  n->rx.pair_lookup = lm__pair_lookup;
  n->rx.pair_ud = n;
  rc = LM_EINVAL;
  if (o->share_records_with) {
    lm_node_t *p = o->share_records_with;
    if (!loop || p->threaded || p->loop != loop || lm__forked(p))
      goto fail;
    if (!p->records) {
      if (!(p->records = calloc(1, sizeof *p->records)) ||
          !(p->records->cache = swim_rec_cache_new())) {
        free(p->records);
        p->records = NULL;
        rc = LM_ENOMEM;
        goto fail;
      }
      p->records->refs = 1; /* p's own reference (its core uses the cache
                               only if it starts after this) */
    }
    n->records = p->records;
    n->records->refs++;
  }
  randombytes_buf(n->rng, sizeof n->rng);
  n->rng[0] |= 1;
  if ((rc = lm__svc_new(n)))
    goto fail;
  *out = n;
  n->loop = loop;
  n->threaded = loop == NULL;
  return 0;
fail:
  lm_receiver_close(&n->rx);
  lm_sender_close(&n->tx);
  lm_keypair_wipe(&n->kp);
  fork_marker_free(n->fork_marker);
  uv_mutex_destroy(&n->mu);
  free((void *)n->opt.name);
  free((void *)n->opt.bind);
  free((void *)n->opt.advertise);
  free((void *)n->opt.cluster);
  free(n);
  return rc;
}

/* UDP and TCP share one port. With port 0 the kernel picks a UDP port that
 * a TCP socket may already hold, so the pair is bound with plain sockets
 * (a few picks if need be) and then handed to libuv. */
static int bind_both(lm_node_t *n, struct sockaddr_storage *bound) {
  int any = ((struct sockaddr_in *)&n->bind_sa)->sin_port == 0;
  int fam = n->bind_sa.ss_family, one = 1, ufd = -1, tfd = -1, rc = 0;
  socklen_t slen = fam == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
  for (int attempt = 0; attempt < (any ? 16 : 1); attempt++) {
    ufd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    tfd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t blen = sizeof *bound;
    if (ufd < 0 || tfd < 0 ||
        /* with port 0, REUSEADDR could hand out a port already held */
        (!any && setsockopt(ufd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) ||
        setsockopt(tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(ufd, (struct sockaddr *)&n->bind_sa, slen) ||
        getsockname(ufd, (struct sockaddr *)bound, &blen) ||
        bind(tfd, (struct sockaddr *)bound, slen)) {
      rc = uv_translate_sys_error(errno);
      if (ufd >= 0)
        close(ufd);
      if (tfd >= 0)
        close(tfd);
      ufd = tfd = -1;
      if (rc == UV_EADDRINUSE && any)
        continue;
      return rc;
    }
    break;
  }
  if (ufd < 0)
    return rc;
  if ((rc = uv_udp_init(n->loop, &n->udp))) {
    close(ufd);
    close(tfd);
    return rc;
  }
  n->udp.data = n;
  if ((rc = uv_udp_open(&n->udp, ufd))) {
    close(ufd);
    close(tfd);
    return rc;
  }
  if ((rc = uv_tcp_init(n->loop, &n->listener))) {
    close(tfd);
    return rc;
  }
  n->listener.data = n;
  if ((rc = uv_tcp_open(&n->listener, tfd))) {
    close(tfd);
    return rc;
  }
  return uv_listen((uv_stream_t *)&n->listener, 128, lm__on_accept);
}

static void thread_main(void *arg) {
  lm_node_t *n = arg;
  uv_run(n->loop, UV_RUN_DEFAULT);
}

int lm_node_start(lm_node_t *n) {
  if (lm__forked(n))
    return LM_EFORKED;
  if (n->state != ST_NEW)
    return LM_ESTATE;
  int rc;
  if (n->threaded) {
    if ((rc = uv_loop_init(&n->own_loop)))
      return rc;
    n->loop = &n->own_loop;
    if ((rc = uv_async_init(n->loop, &n->async, lm__on_async)))
      goto fail_loop;
    n->async.data = n;
  }
  n->udp.data = n->listener.data = n->timer.data = n->housekeeping.data = NULL;
  struct sockaddr_storage bound;
  if ((rc = bind_both(n, &bound)))
    goto fail;
  if ((rc = uv_udp_recv_start(&n->udp, lm__on_udp_alloc, lm__on_udp)))
    goto fail;
  uv_timer_init(n->loop, &n->timer);
  n->timer.data = n;
  uv_timer_init(n->loop, &n->housekeeping);
  n->housekeeping.data = n;
  uv_timer_start(&n->housekeeping, on_housekeeping, HOUSEKEEP_MS, HOUSEKEEP_MS);
  {
    /* advertise: as given, else the bound address (0.0.0.0 cannot be
     * dialed, so it then means loopback: pass --advertise on real hosts) */
    struct sockaddr_storage adv = n->adv_given ? n->adv_sa : bound;
    if (!n->adv_given) {
      if (adv.ss_family == AF_INET &&
          ((struct sockaddr_in *)&adv)->sin_addr.s_addr == 0)
        ((struct sockaddr_in *)&adv)->sin_addr.s_addr = htonl(0x7f000001);
    } else if (adv.ss_family == AF_INET &&
               ((struct sockaddr_in *)&adv)->sin_port == 0) {
      ((struct sockaddr_in *)&adv)->sin_port =
          ((struct sockaddr_in *)&bound)->sin_port;
    }
    n->adv_sa = adv;
  }
  swim_config_t cfg;
  swim_config_default(&cfg);
  memcpy(cfg.id, n->kp.pk, SWIM_ID_LEN);
  snprintf(cfg.name, sizeof cfg.name, "%s", n->name);
  lm__sa_to_swim((struct sockaddr *)&n->adv_sa, &cfg.addr);
  cfg.generation = n->opt.generation ? n->opt.generation
                                     : (uint32_t)time(NULL);
#define OPT(f)                                                                 \
  if (n->opt.f)                                                                \
  cfg.f = n->opt.f
  OPT(probe_interval_ms);
  OPT(probe_timeout_ms);
  OPT(indirect_checks);
  OPT(gossip_interval_ms);
  OPT(pushpull_interval_ms);
  OPT(suspicion_min_mult);
  OPT(tombstone_ms);
#undef OPT
  cfg.max_payload = SWIM_MTU - (uint32_t)lm_env_overhead(&n->tx);
  if (cfg.max_payload > SWIM_MAX_PAYLOAD)
    cfg.max_payload = SWIM_MAX_PAYLOAD;
  cfg.sender_from_transport = 1; /* the envelope authenticates the sender */
  build_meta(n);
  cfg.meta = n->meta;
  cfg.meta_len = n->meta_len;
  cfg.cache = n->records ? n->records->cache : NULL;
  swim_callbacks_t cb = {0};
  cb.send = lm__core_send;
  cb.send_stream = lm__core_send_stream;
  cb.stream_busy = lm__core_stream_busy;
  cb.rand64 = lm__core_rand;
  cb.log = lm__core_log;
  cb.event = lm__core_event;
  cb.sign = lm__core_sign;
  cb.verify = lm__core_verify;
  cb.cred_get = lm__core_cred_get;
  cb.cred_put = lm__core_cred_put;
  uv_update_time(n->loop);
  n->unix_base_ms = lm__node_unix_ms() - (int64_t)lm__now_ms(n);
  if ((rc = swim_new(&n->core, &cfg, &cb, n, lm__now_ms(n)))) {
    lm__node_log(n, LM_LOG_ERROR, "cannot start the protocol: %s", swim_strerror(rc));
    goto fail;
  }
  n->state = ST_RUNNING;
  if ((rc = lm__svc_start(n))) {
    lm__node_log(n, LM_LOG_ERROR, "cannot start the service checks: %s",
                 lm_strerror(rc));
    n->state = ST_NEW;
    goto fail;
  }
  {
    char a[LM_ADDR_STRLEN], b[LM_ADDR_STRLEN];
    lm__format_sa((struct sockaddr *)&bound, a, sizeof a);
    lm__format_sa((struct sockaddr *)&n->adv_sa, b, sizeof b);
    lm__node_log(n, LM_LOG_INFO, "listening on %s (udp+tcp), advertising %s, "
         "generation %u", a, b, cfg.generation);
  }
  lm__rearm(n);
  if (n->threaded) {
    if ((rc = uv_thread_create(&n->thread, thread_main, n))) {
      n->state = ST_NEW;
      goto fail;
    }
    n->thread_started = 1;
  }
  return 0;
fail:
  swim_free(n->core);
  n->core = NULL;
  if (!n->threaded) {
    /* The caller's loop owns the handles opened so far: lm_node_close()
     * closes them the usual asynchronous way. Running that loop from here
     * could re-enter it. */
    n->state = ST_FAILED;
    return rc;
  }
  {
    /* our own loop, not running yet: finish the closes on it */
    uv_handle_t *hs[] = {(uv_handle_t *)&n->udp, (uv_handle_t *)&n->listener,
                         (uv_handle_t *)&n->timer,
                         (uv_handle_t *)&n->housekeeping,
                         (uv_handle_t *)&n->async};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
      if (hs[i]->data == n && !uv_is_closing(hs[i])) {
        hs[i]->data = NULL;
        uv_close(hs[i], NULL);
      }
    uv_run(n->loop, UV_RUN_DEFAULT);
  }
fail_loop:
  if (n->threaded) {
    uv_loop_close(&n->own_loop);
    n->loop = NULL;
  }
  return rc;
}

static int parse_seeds(const char *const *seeds, size_t k, swim_addr_t **out) {
  if (!seeds || !k)
    return LM_EINVAL;
  swim_addr_t *a = calloc(k, sizeof *a);
  if (!a)
    return LM_ENOMEM;
  for (size_t i = 0; i < k; i++) {
    struct sockaddr_storage ss;
    if (lm__parse_hostport(seeds[i], &ss)) {
      free(a);
      return LM_EADDR;
    }
    lm__sa_to_swim((struct sockaddr *)&ss, &a[i]);
  }
  *out = a;
  return 0;
}

int lm_node_join(lm_node_t *n, const char *const *seeds, size_t k) {
  if (lm__forked(n))
    return LM_EFORKED;
  if (n->state != ST_RUNNING)
    return LM_ESTATE;
  swim_addr_t *a;
  int rc = parse_seeds(seeds, k, &a);
  if (rc)
    return rc;
  if (n->threaded) {
    cmd_t *c = calloc(1, sizeof *c);
    if (!c) {
      free(a);
      return LM_ENOMEM;
    }
    c->kind = CMD_JOIN;
    c->addrs = a;
    c->n = k;
    return lm__post(n, c);
  }
  rc = lm__apply_join(n, a, k);
  free(a);
  return rc;
}

int lm_node_leave(lm_node_t *n, lm_done_cb cb, void *ud) {
  if (lm__forked(n))
    return LM_EFORKED;
  if (n->state != ST_RUNNING)
    return LM_ESTATE;
  if (n->threaded) {
    cmd_t *c = calloc(1, sizeof *c);
    if (!c)
      return LM_ENOMEM;
    c->kind = CMD_LEAVE;
    c->cb = cb;
    c->ud = ud;
    return lm__post(n, c);
  }
  return lm__apply_leave(n, cb, ud);
}

int lm_node_set_meta(lm_node_t *n, const uint8_t *meta, size_t len) {
  if (lm__forked(n))
    return LM_EFORKED;
  if (len > APP_META_MAX || (len && !meta))
    return LM_EINVAL;
  if (n->state != ST_RUNNING)
    return LM_ESTATE;
  if (n->threaded) {
    cmd_t *c = calloc(1, sizeof *c);
    if (!c)
      return LM_ENOMEM;
    c->kind = CMD_META;
    if (len)
      memcpy(c->meta, meta, len);
    c->n = len;
    return lm__post(n, c);
  }
  return lm__apply_meta(n, meta, len);
}

void lm_node_close(lm_node_t *n, lm_done_cb cb, void *ud) {
  if (!n || lm__forked(n))
    return;
  if (n->state == ST_NEW || (n->state == ST_FAILED && n->threaded)) {
    free_node(n);
    if (cb)
      cb(NULL, 0, ud);
    return;
  }
  if (n->threaded) {
    cmd_t *c = calloc(1, sizeof *c);
    if (c) {
      c->kind = CMD_CLOSE;
      lm__post(n, c);
    }
    uv_thread_join(&n->thread);
    uv_loop_close(&n->own_loop);
    free_node(n);
    if (cb)
      cb(NULL, 0, ud);
    return;
  }
  if (n->state == ST_CLOSING)
    return;
  n->close_cb = cb;
  n->close_ud = ud;
  n->close_pending = 1;
  if (!n->in_dispatch)
    lm__do_close(n);
}

int lm_node_set_trusted(lm_node_t *n,
                        const uint8_t (*trusted)[LM_PUBLICKEY_BYTES],
                        size_t ntrusted) {
  if (lm__forked(n))
    return LM_EFORKED;
  if (!trusted || !ntrusted)
    return LM_EINVAL;
  lm_trust_set_t ts;
  lm_trust_set_init(&ts);
  int rc;
  for (size_t i = 0; i < ntrusted; i++)
    if ((rc = lm_trust_set_add(&ts, trusted[i])))
      return rc;
  if ((rc = lm_cert_verify(&ts, &n->cert, (uint64_t)time(NULL))))
    return rc; /* we would refuse our own record */
  uv_mutex_lock(&n->mu);
  n->trust = ts;
  n->trust_gen++; /* the held certificates are checked again (certs.c) */
  uv_mutex_unlock(&n->mu);
  return 0;
}

int lm_node_set_log_level(lm_node_t *n, int level) {
  if (lm__forked(n))
    return LM_EFORKED;
  if (level < LM_LOG_ERROR || level > LM_LOG_DEBUG)
    return LM_EINVAL;
  n->opt.log_level = level;
  return 0;
}

/* ---- reading ---- */

/* The reading calls need this process's node, started. */
static int readable(const lm_node_t *n) {
  if (lm__forked(n))
    return LM_EFORKED;
  return n->core ? 0 : LM_ESTATE;
}

int lm_node_members(lm_node_t *n, lm_member_t **out, size_t *count) {
  *out = NULL;
  *count = 0;
  int rc = readable(n);
  if (rc)
    return rc;
  uv_mutex_lock(&n->mu);
  size_t total = swim_member_count(n->core), k = 0;
  lm_member_t *v = calloc(total ? total : 1, sizeof *v);
  if (!v) {
    uv_mutex_unlock(&n->mu);
    return LM_ENOMEM;
  }
  for (size_t i = 0; i < total; i++) {
    swim_member_t m;
    if (swim_member_at(n->core, i, &m) == 0)
      lm__to_member(n, &m, &v[k++]);
  }
  uv_mutex_unlock(&n->mu);
  *out = v;
  *count = k;
  return 0;
}

int lm_node_alive_count(lm_node_t *n, size_t *count) {
  int rc = readable(n);
  if (rc)
    return rc;
  uv_mutex_lock(&n->mu);
  *count = swim_alive_count(n->core);
  uv_mutex_unlock(&n->mu);
  return 0;
}

int lm_node_self(lm_node_t *n, lm_member_t *out) {
  int rc = readable(n);
  if (rc)
    return rc;
  uv_mutex_lock(&n->mu);
  swim_member_t m;
  swim_member_at(n->core, 0, &m);
  lm__to_member(n, &m, out);
  uv_mutex_unlock(&n->mu);
  return 0;
}

int lm_node_bound_addr(lm_node_t *n, char *out, size_t cap) {
  int rc = readable(n);
  if (rc)
    return rc;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if ((rc = uv_udp_getsockname(&n->udp, (struct sockaddr *)&ss, &len)))
    return rc;
  return lm__format_sa((struct sockaddr *)&ss, out, cap);
}

