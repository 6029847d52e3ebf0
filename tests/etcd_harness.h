/*
 * etcd_harness.h: a real etcd (Debian's /usr/bin/etcd) for the tests of
 * bridge/etcd and of the bridge: started with fork/exec in a fresh data
 * directory on loopback ports picked by binding port 0, optionally with
 * TLS (server certificate, client certificates required) and extra flags;
 * stopped, killed, paused and restarted by its PID; the directory removed
 * at the end. Also a loop helper that runs a uv loop until a flag is set
 * or a deadline passes, and a wrapper for etcdctl against the instance.
 *
 * Header-only (static functions), include after the system headers. Depends
 * on libc and libuv only; never on the code under test.
 */
#ifndef LIVEMESH_TESTS_ETCD_HARNESS_H
#define LIVEMESH_TESTS_ETCD_HARNESS_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#ifndef ETCDH_BIN
#define ETCDH_BIN "/usr/bin/etcd"
#endif
#ifndef ETCDCTL_BIN
#define ETCDCTL_BIN "/usr/bin/etcdctl"
#endif

typedef struct etcdh_tls {
  const char *cert, *key, *ca; /* server side: --cert-file ... */
  const char *client_cert, *client_key; /* for etcdctl */
} etcdh_tls_t;

typedef struct etcdh {
  pid_t pid;
  char dir[128];     /* the temp dir; data in dir/data, log in dir/etcd.log */
  int port, peer_port;
  char url[96], peer_url[96];
  int tls;
  etcdh_tls_t t;
  const char *extra[16]; /* extra etcd flags, NULL-terminated */
} etcdh_t;

static __attribute__((unused)) int etcdh_free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  int port = -1;
  if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(s, (struct sockaddr *)&a, &l) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
}

static __attribute__((unused)) int etcdh_tcp_open(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    return 0;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

static __attribute__((unused)) void etcdh_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Runs etcdctl against the instance with up to 8 more arguments (NULL
 * ends them); returns its exit status. Output goes to dir/etcdctl.log. */
static __attribute__((unused)) int etcdh_ctl(const etcdh_t *h, const char *const *args) {
  pid_t p = fork();
  if (p < 0)
    return -1;
  if (p == 0) {
    char log[256];
    snprintf(log, sizeof log, "%s/etcdctl.log", h->dir);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    const char *argv[40];
    int n = 0;
    char ep[128];
    snprintf(ep, sizeof ep, "--endpoints=%s", h->url);
    argv[n++] = ETCDCTL_BIN;
    argv[n++] = ep;
    char a1[300], a2[300], a3[300];
    if (h->tls) {
      snprintf(a1, sizeof a1, "--cacert=%s", h->t.ca);
      snprintf(a2, sizeof a2, "--cert=%s", h->t.client_cert);
      snprintf(a3, sizeof a3, "--key=%s", h->t.client_key);
      argv[n++] = a1;
      argv[n++] = a2;
      argv[n++] = a3;
    }
    for (int i = 0; args[i] && n < 38; i++)
      argv[n++] = args[i];
    argv[n] = NULL;
    setenv("ETCDCTL_API", "3", 1);
    execv(ETCDCTL_BIN, (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Starts etcd; h->dir, ports and TLS come from the caller when set (a
 * restart keeps them). 0 when it accepts connections within 20 s. */
static __attribute__((unused)) int etcdh_start(etcdh_t *h) {
  if (!h->dir[0]) {
    snprintf(h->dir, sizeof h->dir, "/tmp/lm-etcd-XXXXXX");
    if (!mkdtemp(h->dir))
      return -1;
  }
  if (!h->port)
    h->port = etcdh_free_port();
  if (!h->peer_port)
    h->peer_port = etcdh_free_port();
  if (h->port <= 0 || h->peer_port <= 0)
    return -1;
  snprintf(h->url, sizeof h->url, "%s://127.0.0.1:%d", h->tls ? "https" : "http",
           h->port);
  snprintf(h->peer_url, sizeof h->peer_url, "http://127.0.0.1:%d",
           h->peer_port);
  pid_t p = fork();
  if (p < 0)
    return -1;
  if (p == 0) {
    char log[256], data[256], cluster[160];
    snprintf(log, sizeof log, "%s/etcd.log", h->dir);
    snprintf(data, sizeof data, "%s/data", h->dir);
    snprintf(cluster, sizeof cluster, "default=%s", h->peer_url);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    const char *argv[48];
    int n = 0;
    argv[n++] = ETCDH_BIN;
    argv[n++] = "--name";
    argv[n++] = "default";
    argv[n++] = "--data-dir";
    argv[n++] = data;
    argv[n++] = "--listen-client-urls";
    argv[n++] = h->url;
    argv[n++] = "--advertise-client-urls";
    argv[n++] = h->url;
    argv[n++] = "--listen-peer-urls";
    argv[n++] = h->peer_url;
    argv[n++] = "--initial-advertise-peer-urls";
    argv[n++] = h->peer_url;
    argv[n++] = "--initial-cluster";
    argv[n++] = cluster;
    argv[n++] = "--logger";
    argv[n++] = "zap";
    char a1[300], a2[300], a3[300];
    if (h->tls) {
      snprintf(a1, sizeof a1, "--cert-file=%s", h->t.cert);
      snprintf(a2, sizeof a2, "--key-file=%s", h->t.key);
      snprintf(a3, sizeof a3, "--trusted-ca-file=%s", h->t.ca);
      argv[n++] = a1;
      argv[n++] = a2;
      argv[n++] = a3;
      argv[n++] = "--client-cert-auth";
    }
    for (int i = 0; h->extra[i] && n < 46; i++)
      argv[n++] = h->extra[i];
    argv[n] = NULL;
    execv(ETCDH_BIN, (char *const *)argv);
    _exit(127);
  }
  h->pid = p;
  for (int i = 0; i < 400; i++) {
    int st;
    if (waitpid(p, &st, WNOHANG) == p) {
      h->pid = 0;
      return -1;
    }
    if (etcdh_tcp_open(h->port)) {
      etcdh_sleep_ms(300); /* the listener is up; let the member settle */
      return 0;
    }
    etcdh_sleep_ms(50);
  }
  return -1;
}

static __attribute__((unused)) void etcdh_signal(etcdh_t *h, int sig) {
  if (h->pid > 0)
    kill(h->pid, sig);
}

/* 1 when every thread of the process is stopped (state T). */
static __attribute__((unused)) int etcdh_all_stopped(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (!d)
    return 0;
  int all = 1, n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    char sp[400], buf[512];
    snprintf(sp, sizeof sp, "%s/%s/stat", path, de->d_name);
    FILE *f = fopen(sp, "r");
    if (!f)
      continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char *rp = strrchr(buf, ')');
    n++;
    if (!rp || rp[1] != ' ' || (rp[2] != 'T' && rp[2] != 't'))
      all = 0;
  }
  closedir(d);
  return all && n > 0;
}

/* SIGSTOP, and wait until the kernel has stopped every thread (kill()
 * returns before that), so that nothing is answered after this. */
static __attribute__((unused)) int etcdh_pause(etcdh_t *h) {
  if (h->pid <= 0)
    return -1;
  kill(h->pid, SIGSTOP);
  for (int i = 0; i < 200; i++) {
    if (etcdh_all_stopped(h->pid))
      return 0;
    etcdh_sleep_ms(5);
  }
  return -1;
}

/* Ends the process (sig: SIGTERM or SIGKILL) and reaps it. */
static __attribute__((unused)) void etcdh_stop(etcdh_t *h, int sig) {
  if (h->pid <= 0)
    return;
  kill(h->pid, SIGCONT);
  kill(h->pid, sig);
  int st;
  for (int i = 0; i < 200; i++) {
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
      h->pid = 0;
      return;
    }
    etcdh_sleep_ms(25);
  }
  kill(h->pid, SIGKILL);
  waitpid(h->pid, &st, 0);
  h->pid = 0;
}

/* Stops etcd and removes its directory. */
static __attribute__((unused)) void etcdh_destroy(etcdh_t *h) {
  etcdh_stop(h, SIGTERM);
  if (h->dir[0] && getenv("LM_KEEP_ETCD_DIR") == NULL) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", h->dir);
  }
  h->dir[0] = 0;
}

/* ---- the loop ---- */

static __attribute__((unused)) void etcdh_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until *flag is non-zero or ms pass; returns *flag. */
static __attribute__((unused)) int etcdh_run_until(uv_loop_t *loop, const int *flag, int ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, etcdh_tick, 20, 20);
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + (uint64_t)ms;
  while (!*flag && uv_now(loop) < end) {
    uv_run(loop, UV_RUN_ONCE);
    uv_update_time(loop);
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *flag;
}

#endif
