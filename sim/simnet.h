/*
 * simnet.h: the deterministic discrete-event simulator of livemesh.
 *
 * Thousands of real SWIM cores (swim/swim.h, the very same code the runtime
 * drives) run in one thread against a virtual clock and a virtual network:
 * latency, loss (global, per node, per link), one-way and full partitions,
 * paused, crashed and restarted nodes. One seed in, one outcome out: every
 * random draw comes from PRNGs derived from the seed and hanging off the
 * lm_sim_t object; nothing reads a real clock or a global RNG.
 *
 * The harness API is shaped like Tarantool's SWIM test utilities so that a
 * scenario test reads like the scenario:
 *
 *   lm_sim_t *s = lm_sim_new(&opts);
 *   lm_sim_crash(s, 3);
 *   assert(lm_sim_wait_all(s, 3, SWIM_DEAD, 30000) == 0);
 *
 * Must never depend on: libuv, libsodium, mesh/, store/, bridge/, a real
 * clock, rand(). It depends on swim/swim.h only.
 *
 * Not thread-safe: one lm_sim_t belongs to one thread. The trace, packet and
 * log callbacks run inside a core's call: they may read the simulator and
 * the cores but must not call anything that runs the clock or changes the
 * network or a node.
 */
#ifndef LIVEMESH_SIMNET_H
#define LIVEMESH_SIMNET_H

#include <stddef.h>
#include <stdint.h>

#include "swim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Virtual time starts here, far from zero, so nothing relies on t == 0. */
#define LM_SIM_EPOCH_MS 1000000u
/* Port of every virtual address (10.x.y.z:7946, never a real network). */
#define LM_SIM_PORT 7946
/* Partition groups are small integers below this. */
#define LM_SIM_MAX_GROUPS 16
/* Datagrams queued for a paused node beyond this are dropped, as a full
 * socket receive buffer would drop them. */
#define LM_SIM_PAUSE_QUEUE_MAX 4096

typedef struct lm_sim lm_sim_t;

/* Called for every member event of every core, after the simulator has
 * recorded it. `subject` is the node index of ev->member, or -1 for an id
 * the simulator never created. */
typedef void (*lm_sim_trace_cb)(void *ud, uint64_t now, uint32_t observer,
                                int32_t subject, const swim_event_t *ev);
/* What became of a packet, reported to lm_sim_opts_t.packet. */
typedef enum lm_sim_fate {
  LM_SIM_DELIVERED = 0, /* handed to the receiver's swim_recv() */
  LM_SIM_LOST = 1,      /* dropped by a loss probability */
  LM_SIM_BLOCKED = 2,   /* stopped by a partition or a one-way block */
  LM_SIM_VANISHED = 3,  /* receiver down, or its pause queue full */
  LM_SIM_QUEUED = 4     /* receiver paused: delivered on resume */
} lm_sim_fate_t;

typedef void (*lm_sim_packet_cb)(void *ud, uint64_t now, uint32_t from,
                                 uint32_t to, const uint8_t *buf, size_t len,
                                 int stream, lm_sim_fate_t fate);
/* Core log lines, with the node that wrote them. */
typedef void (*lm_sim_log_cb)(void *ud, uint64_t now, uint32_t node, int level,
                              const char *msg);

typedef struct lm_sim_opts {
  uint32_t nodes;         /* >= 1 */
  uint64_t seed;
  uint32_t lat_min_ms;    /* one-way latency, uniform in [min, max]; 1 */
  uint32_t lat_max_ms;    /* 5 */
  double loss;            /* global datagram loss probability, 0..1 */
  int bootstrap;          /* 1: every node starts with the full membership;
                             0: every node swim_join()s the seeds at start */
  uint32_t seeds;         /* join mode: nodes 0..seeds-1 are the seeds; 1 */
  int streams;            /* 1: cores get send_stream (push-pull); 1 */
  /* Template for every core: timing and size fields are used as given; id,
   * name, addr, generation and cache are filled in per node. Starts as
   * swim_config_default(). */
  swim_config_t base;
  lm_sim_trace_cb trace;
  lm_sim_packet_cb packet;
  lm_sim_log_cb log;
  int log_level;          /* core log lines up to this level reach `log` */
  void *ud;               /* for trace, packet and log */
} lm_sim_opts_t;

void lm_sim_opts_default(lm_sim_opts_t *o);

/* NULL on bad options or out of memory. In bootstrap mode every node knows
 * every other one as alive at lm_sim_now(); in join mode the seeds' joins
 * have been issued and the clock has not moved. */
lm_sim_t *lm_sim_new(const lm_sim_opts_t *o);
void lm_sim_free(lm_sim_t *sim);

uint32_t lm_sim_size(const lm_sim_t *sim);
uint64_t lm_sim_now(const lm_sim_t *sim);
uint64_t lm_sim_seed(const lm_sim_t *sim);

/* ---- the clock ---- */

/* Process every event due within `ms`, then leave the clock at now + ms. */
void lm_sim_run(lm_sim_t *sim, uint64_t ms);
/* Same, up to an absolute time (no-op when `t` is in the past). */
void lm_sim_run_to(lm_sim_t *sim, uint64_t t);
/* Run until pred(sim, arg) is true (checked before the first event and after
 * every event) or `timeout_ms` passed. 0 when pred became true, -1 on
 * timeout; the clock stays at the moment pred became true. */
int lm_sim_run_until(lm_sim_t *sim, uint64_t timeout_ms,
                     int (*pred)(lm_sim_t *sim, void *arg), void *arg);
/* Events waiting in the heap (ticks, packets in flight, timers). */
size_t lm_sim_pending(const lm_sim_t *sim);
/* Call fn(sim, arg) when the clock reaches `at` (absolute; the past means
 * now), in FIFO order with every other event due at the same time. Unlike
 * the trace callbacks, fn may use the whole API, except the calls that run
 * the clock. */
typedef void (*lm_sim_timer_cb)(lm_sim_t *sim, void *arg);
int lm_sim_at(lm_sim_t *sim, uint64_t at, lm_sim_timer_cb fn, void *arg);

/* ---- nodes ---- */

/* The core of node i, NULL when it is crashed or gone. */
swim_core_t *lm_sim_core(lm_sim_t *sim, uint32_t i);
const uint8_t *lm_sim_node_id(const lm_sim_t *sim, uint32_t i);
const char *lm_sim_node_name(const lm_sim_t *sim, uint32_t i);
void lm_sim_node_addr(const lm_sim_t *sim, uint32_t i, swim_addr_t *out);
/* Node index of a virtual address, -1 when it is none of ours. */
int32_t lm_sim_addr_index(const lm_sim_t *sim, const swim_addr_t *a);
/* Node index of a member id, -1 when unknown. */
int32_t lm_sim_id_index(const lm_sim_t *sim, const uint8_t id[SWIM_ID_LEN]);
/* 1 while node i has a core (running, paused or leaving). */
int lm_sim_is_up(const lm_sim_t *sim, uint32_t i);
int lm_sim_is_paused(const lm_sim_t *sim, uint32_t i);
/* Nodes that have a core. */
uint32_t lm_sim_up_count(const lm_sim_t *sim);

/* A paused node processes nothing: its timers fire late and datagrams to it
 * queue (up to LM_SIM_PAUSE_QUEUE_MAX) until lm_sim_resume(), which runs the
 * overdue timers then delivers the queue in arrival order. */
int lm_sim_pause(lm_sim_t *sim, uint32_t i);
int lm_sim_resume(lm_sim_t *sim, uint32_t i);
/* Free the core at once, no leave: packets to it vanish from now on. */
int lm_sim_crash(lm_sim_t *sim, uint32_t i);
/* A crashed or gone node comes back: same id and name, generation + 1,
 * joining through the first up seed (node 0, else the next up node). */
int lm_sim_restart(lm_sim_t *sim, uint32_t i);
/* Graceful leave: the core announces it, keeps running until
 * swim_leave_done() (or 10 s), then is freed. */
int lm_sim_leave(lm_sim_t *sim, uint32_t i);
/* swim_set_meta() on node i, and start measuring how long the update takes
 * to reach every other up node (see lm_sim_dissemination()). */
int lm_sim_set_meta(lm_sim_t *sim, uint32_t i, const uint8_t *meta,
                    size_t len);

/* ---- the network ---- */

/* Probabilities are 0..1. Loss is on datagrams; a stream connection over
 * a lossy path stalls 1 s (a lost SYN or SYN-ACK) with probability
 * 1 - keep^2, keep being the datagram survival rate of that path, and
 * never connects when keep is 0. */
void lm_sim_set_loss(lm_sim_t *sim, double p);
void lm_sim_set_latency(lm_sim_t *sim, uint32_t min_ms, uint32_t max_ms);
/* Loss on every datagram to and from node i (combined with the others). */
int lm_sim_set_drop(lm_sim_t *sim, uint32_t i, double p);
/* Loss on datagrams from -> to only. */
int lm_sim_set_drop_channel(lm_sim_t *sim, uint32_t from, uint32_t to,
                            double p);
/* One-way block: nothing (datagram or stream) goes from -> to. */
int lm_sim_block(lm_sim_t *sim, uint32_t from, uint32_t to);
int lm_sim_unblock(lm_sim_t *sim, uint32_t from, uint32_t to);
/* Full partition: groups[i] < LM_SIM_MAX_GROUPS for every node; nothing
 * crosses between different groups, either way. */
int lm_sim_partition(lm_sim_t *sim, const uint8_t *groups);
/* One-way partition: nodes get `groups`, and only traffic from group
 * `from_group` to group `to_group` is cut. */
int lm_sim_partition_oneway(lm_sim_t *sim, const uint8_t *groups,
                            uint8_t from_group, uint8_t to_group);
/* Undo every partition and one-way block (losses stay). */
void lm_sim_heal(lm_sim_t *sim);
/* Would a packet from -> to get through the partitions and blocks now? */
int lm_sim_can_reach(const lm_sim_t *sim, uint32_t from, uint32_t to);

/* ---- observation ---- */

/* Status of `subject` in observer's view, -1 when unknown (or the observer
 * is down). */
int lm_sim_status(lm_sim_t *sim, uint32_t observer, uint32_t subject);
/* Run until observer sees subject in `status` (0) or timeout (-1). */
int lm_sim_wait_status(lm_sim_t *sim, uint32_t observer, uint32_t subject,
                       int status, uint64_t timeout_ms);
/* Run until every up node except subject sees it in `status`. */
int lm_sim_wait_all(lm_sim_t *sim, uint32_t subject, int status,
                    uint64_t timeout_ms);
/* Have the views converged? Levels, each implying the one before:
 *  COUNT  every up node's swim_alive_count() equals the number of up nodes
 *         (cheap, O(N));
 *  LIVE   every up node holds exactly the up nodes, in their current
 *         generation, as alive or suspect, and no crashed or gone node as
 *         alive or suspect (O(N^2));
 *  ALIVE  LIVE, and every one of them ALIVE: no suspicion anywhere. Under
 *         loss some suspicion is nearly always in flight, so LIVE is the
 *         level that measures membership convergence. */
enum { LM_SIM_CONV_COUNT = 0, LM_SIM_CONV_LIVE = 1, LM_SIM_CONV_ALIVE = 2 };
int lm_sim_converged(lm_sim_t *sim, int level);
/* Run until lm_sim_converged(sim, LM_SIM_CONV_ALIVE). */
int lm_sim_wait_converged(lm_sim_t *sim, uint64_t timeout_ms);

typedef struct lm_sim_node_stats {
  uint64_t pkts_sent, bytes_sent;       /* datagrams */
  uint64_t frames_sent, frame_bytes_sent; /* stream frames that connected */
  uint64_t frames_failed; /* to a down or cut-off node: the connect fails,
                             no bytes go out */
  uint64_t pkts_recv, bytes_recv;       /* delivered to the core */
  uint64_t frames_recv, frame_bytes_recv;
  /* the fate of what this node sent (see lm_sim_fate_t) */
  uint64_t pkts_lost;      /* datagrams dropped by loss */
  uint64_t pkts_blocked;   /* datagrams stopped by a partition or block */
  uint64_t pkts_vanished;  /* to a down node, a full pause queue, or an
                              address that is none of ours */
  uint64_t pkts_oversize;  /* larger than SWIM_MAX_PAYLOAD: never sent */
  uint64_t recv_errors;    /* swim_recv() returned an error */
  /* events about this node as subject, seen by anyone */
  uint64_t suspect_events, dead_events;
} lm_sim_node_stats_t;

const lm_sim_node_stats_t *lm_sim_node_stats(const lm_sim_t *sim, uint32_t i);
/* Sum over every node. */
void lm_sim_totals(const lm_sim_t *sim, lm_sim_node_stats_t *out);

/* Node i was crashed, paused or left at some point. */
int lm_sim_ever_unhealthy(const lm_sim_t *sim, uint32_t i);

/* One record per lm_sim_crash(). Times are absolute virtual ms, 0 = not
 * (yet) happened. first_dead: the first up node to mark it DEAD (or LEFT);
 * all_dead: the first moment every up node had it DEAD/LEFT (or did not
 * know it). A restart closes the record. */
typedef struct lm_sim_crash_info {
  uint32_t node;
  uint64_t crashed_at;
  uint64_t first_suspect_at;
  uint64_t first_dead_at;
  uint64_t all_dead_at;
  uint64_t restarted_at;
  uint64_t rejoined_at; /* after restart: every up node sees the new
                           generation alive (checked every 100 ms) */
} lm_sim_crash_info_t;

size_t lm_sim_crash_count(const lm_sim_t *sim);
int lm_sim_crash_info(const lm_sim_t *sim, size_t k, lm_sim_crash_info_t *out);

/* The latest lm_sim_set_meta(): when it was set and when every other up
 * node had it (0 = not yet). Returns -1 when there was none. */
int lm_sim_dissemination(const lm_sim_t *sim, uint32_t *node,
                         uint64_t *started_at, uint64_t *done_at);

/* 64 random bits from the scenario PRNG (derived from the seed, separate
 * from the nodes' and the network's), for drivers that pick victims. */
uint64_t lm_sim_rand(lm_sim_t *sim);

#ifdef __cplusplus
}
#endif
#endif
