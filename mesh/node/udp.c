/*
 * udp.c: the UDP side of the transport: sealing and sending datagrams,
 * receiving and opening them, counting drops, and introducing unknown
 * senders.
 */
#define _GNU_SOURCE
#include <string.h>

#include "node_internal.h"
#include "swim_proto.h"

void lm__core_send(void *ud, const swim_addr_t *to, const uint8_t *buf,
                      size_t len) {
  lm_node_t *n = ud;
  size_t out_len;
  /* counters follow the wall clock, so a compact datagram's 32 bits of
   * counter are enough (docs/trust.md) */
  lm_sender_clock(&n->tx, (uint64_t)lm__node_unix_ms() * 1000);
  const lm_pair_t *p = lm__pair_for_addr(n, to);
  int rc = p ? lm_env_seal_mac(n->sbuf, sizeof n->sbuf, &out_len, buf, len,
                               &n->tx, p)
             : lm_env_seal(n->sbuf, sizeof n->sbuf, &out_len, buf, len, &n->tx);
  if (rc) {
    CNT_ADD(n->send_errors, 1);
    return;
  }
  CNT_ADD(*(p ? &n->dgrams_maced : &n->dgrams_signed), 1);
  struct sockaddr_storage sa;
  lm__swim_to_sa(to, &sa);
  uv_buf_t b = uv_buf_init((char *)n->sbuf, (unsigned)out_len);
  rc = uv_udp_try_send(&n->udp, &b, 1, (const struct sockaddr *)&sa);
  if (rc < 0) {
    CNT_ADD(n->send_errors, 1);
    return;
  }
  CNT_ADD(n->udp_pkts_out, 1);
  CNT_ADD(n->udp_bytes_out, out_len);
}

/* ---- inbound ---- */

void lm__count_drop(lm_node_t *n, int rc, const struct sockaddr *from) {
  int i = lm_trust_err_index(rc);
  if (i >= 0)
    CNT_ADD(n->drops[i], 1);
  n->drops_since_log++;
  uint64_t now = lm__now_ms(n);
  if (rc == LM_TRUST_EVERSION && now >= n->last_version_log + DROP_LOG_GAP_MS) {
    /* another wire: say so plainly, whatever else is being reported */
    char a[LM_ADDR_STRLEN];
    lm__format_sa(from, a, sizeof a);
    lm__node_log(n, LM_LOG_WARN,
                 "refused a message from %s: it speaks another wire version "
                 "(this node speaks envelope v%d, protocol v%d; upgrade or "
                 "downgrade one of the two)",
                 a, LM_ENV_VERSION, SWIM_PROTO_VERSION);
    n->last_version_log = now;
  }
  if (!n->last_drop_log || now >= n->last_drop_log + DROP_LOG_GAP_MS) {
    char a[LM_ADDR_STRLEN];
    lm__format_sa(from, a, sizeof a);
    /* a sender unknown for a moment is normal while members join */
    lm__node_log(n, rc == LM_TRUST_EUNKNOWN_SENDER ? LM_LOG_INFO : LM_LOG_WARN,
         "dropped a message from %s: %s (%llu dropped since the last report)",
         a, lm_trust_strerror(rc), (unsigned long long)n->drops_since_log);
    n->last_drop_log = now;
    n->drops_since_log = 0;
  }
}

void lm__deliver(lm_node_t *n, const struct sockaddr *from, uint64_t from8,
                 const uint8_t *p, size_t len) {
  n->last_peer_rx = lm__now_ms(n);
  if (lm__certs_is_msg(p, len)) {
    lm__certs_recv(n, from, p, len);
    return;
  }
  if (lm__svc_is_msg(p, len)) {
    lm__svc_recv(n, from, p, len);
    return;
  }
  swim_addr_t a;
  lm__sa_to_swim(from, &a);
  n->cur_from = a;
  n->cur_from_set = 1;
  uv_mutex_lock(&n->mu);
  int rc = swim_recv_from(n->core, &a, from8, p, len, lm__now_ms(n));
  uv_mutex_unlock(&n->mu);
  lm__certs_flush(n);
  n->cur_from_set = 0;
  if (rc) {
    char s[LM_ADDR_STRLEN];
    lm__format_sa(from, s, sizeof s);
    lm__node_log(n, LM_LOG_DEBUG, "message from %s refused by the core: %s", s,
         swim_strerror(rc));
  }
  lm__dispatch(n);
}

/* A datagram from a key we do not know yet, typically a member that joined
 * a moment ago: push our state to it over the stream; its answer carries
 * its certificate and record, and from then on its datagrams verify. At
 * most once per address per second, so junk cannot turn into a flood. */
static void introduce(lm_node_t *n, const struct sockaddr *from) {
  swim_addr_t a;
  lm__sa_to_swim(from, &a);
  uint64_t now = lm__now_ms(n);
  for (unsigned i = 0; i < 16; i++)
    if (n->intro[i].at && now < n->intro[i].at + 1000 &&
        memcmp(&n->intro[i].addr, &a, sizeof a) == 0)
      return;
  n->intro[n->intro_next].addr = a;
  n->intro[n->intro_next].at = now;
  n->intro_next = (n->intro_next + 1) % 16;
  uv_mutex_lock(&n->mu);
  /* One full exchange of views a second at most (it carries every member
   * and certificate, and after a mass join it is the fastest way to
   * converge); otherwise the light introduction, a stream ping with our
   * record whose answer carries the sender's. */
  if (!n->last_full_intro || now >= n->last_full_intro + FULL_INTRO_GAP_MS) {
    n->last_full_intro = now;
    swim_sync(n->core, &a, now);
  } else {
    swim_introduce(n->core, &a, now);
  }
  uv_mutex_unlock(&n->mu);
  lm__dispatch(n);
}

void lm__on_udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  lm_node_t *n = h->data;
  *buf = uv_buf_init((char *)n->rbuf, sizeof n->rbuf);
}

void lm__on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *addr, unsigned flags) {
  lm_node_t *n = h->data;
  if (nread <= 0 || !addr || !n->core || n->state == ST_CLOSING)
    return;
  CNT_ADD(n->udp_pkts_in, 1);
  CNT_ADD(n->udp_bytes_in, (uint64_t)nread);
  if (n->opt.test_drop_inbound > 0 &&
      (double)(lm__node_rand(n) >> 11) * 0x1.0p-53 < n->opt.test_drop_inbound) {
    CNT_ADD(n->test_dropped, 1);
    return;
  }
  if ((flags & UV_UDP_PARTIAL) || nread > SWIM_MTU) {
    lm__count_drop(n, LM_TRUST_EOVERSIZE, addr);
    return;
  }
  lm_env_msg_t m;
  uv_mutex_lock(&n->mu);
  n->rx.now_us = (uint64_t)lm__node_unix_ms() * 1000;
  int rc = lm_env_open(&m, (uint8_t *)buf->base, (size_t)nread, &n->rx);
  if (rc == 0) {
    swim_addr_t a;
    lm__sa_to_swim(addr, &a);
    lm__pairs_saw(n, &a, m.sender_pk);
  }
  uv_mutex_unlock(&n->mu);
  if (rc) {
    lm__count_drop(n, rc, addr);
    if (rc == LM_TRUST_EUNKNOWN_SENDER)
      introduce(n, addr);
    return;
  }
  lm__deliver(n, addr, m.hint, m.payload, m.payload_len);
}

