/*
 * flood.c: sends UDP datagrams at a fixed rate to one address, for the
 * flood test (tests/multiproc/flood.py). Two kinds:
 *
 *   garbage   random bytes, random lengths (1..1400)
 *   tamper    real datagrams read from a seed file, each sent with a few
 *             bytes of its last 64 (where the signature or MAC sits)
 *             changed: every header check passes, authentication fails
 *
 * The seed file is a sequence of records: a 2-byte big-endian length, then
 * that many bytes. Sending is paced in batches (sendmmsg) so the rate holds
 * over the run; the result is one JSON line on stdout.
 *
 *   flood --target 127.0.0.1:7946 --rate 50000 --seconds 60 \
 *         --kind garbage|tamper [--seeds FILE] [--seed N]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXLEN 1400

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct seed {
  uint8_t *p;
  size_t n;
} seed_t;

static size_t load_seeds(const char *path, seed_t **out) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "flood: %s: %s\n", path, strerror(errno));
    exit(2);
  }
  seed_t *v = NULL;
  size_t n = 0;
  for (;;) {
    uint8_t hdr[2];
    if (fread(hdr, 1, 2, f) != 2)
      break;
    size_t len = (size_t)hdr[0] << 8 | hdr[1];
    if (len == 0 || len > 65507)
      break;
    uint8_t *p = malloc(len);
    if (!p || fread(p, 1, len, f) != len) {
      free(p);
      break;
    }
    seed_t *nv = realloc(v, (n + 1) * sizeof *v);
    if (!nv) {
      free(p);
      break;
    }
    v = nv;
    v[n].p = p;
    v[n].n = len;
    n++;
  }
  fclose(f);
  *out = v;
  return n;
}

static void usage(void) {
  fprintf(stderr, "usage: flood --target HOST:PORT --rate PPS --seconds S "
                  "--kind garbage|tamper [--seeds FILE] [--seed N]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *target = NULL, *kind = "garbage", *seeds_path = NULL;
  double rate = 50000, seconds = 10;
  static const struct option opts[] = {
      {"target", required_argument, NULL, 't'},
      {"rate", required_argument, NULL, 'r'},
      {"seconds", required_argument, NULL, 's'},
      {"kind", required_argument, NULL, 'k'},
      {"seeds", required_argument, NULL, 'f'},
      {"seed", required_argument, NULL, 'x'},
      {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 't': target = optarg; break;
    case 'r': rate = atof(optarg); break;
    case 's': seconds = atof(optarg); break;
    case 'k': kind = optarg; break;
    case 'f': seeds_path = optarg; break;
    case 'x': rng = strtoull(optarg, NULL, 10) | 1; break;
    default: usage();
    }
  }
  int tamper = strcmp(kind, "tamper") == 0;
  if (!target || rate <= 0 || seconds <= 0 ||
      (!tamper && strcmp(kind, "garbage") != 0) || (tamper && !seeds_path))
    usage();
  char host[64];
  const char *colon = strrchr(target, ':');
  if (!colon || (size_t)(colon - target) >= sizeof host)
    usage();
  memcpy(host, target, (size_t)(colon - target));
  host[colon - target] = 0;
  struct sockaddr_in to = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1)
    usage();

  seed_t *seeds = NULL;
  size_t nseeds = tamper ? load_seeds(seeds_path, &seeds) : 0;
  if (tamper && nseeds == 0) {
    fprintf(stderr, "flood: no datagrams in %s\n", seeds_path);
    return 2;
  }

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("flood: socket");
    return 1;
  }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  static uint8_t bufs[BATCH][MAXLEN];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  uint64_t total = (uint64_t)(rate * seconds), sent = 0, failed = 0;
  uint64_t t0 = now_ns();
  double gap_ns = 1e9 / rate;
  while (sent + failed < total) {
    /* where the schedule says we should be */
    uint64_t due = (uint64_t)((double)(now_ns() - t0) / gap_ns);
    if (due <= sent + failed) {
      struct timespec ts = {0, (long)(gap_ns * BATCH / 2)};
      nanosleep(&ts, NULL);
      continue;
    }
    size_t n = due - sent - failed;
    if (n > BATCH)
      n = BATCH;
    if (n > total - sent - failed)
      n = (size_t)(total - sent - failed);
    for (size_t i = 0; i < n; i++) {
      size_t len;
      if (tamper) {
        const seed_t *s = &seeds[next_rand() % nseeds];
        len = s->n > MAXLEN ? MAXLEN : s->n;
        memcpy(bufs[i], s->p, len);
        size_t tail = len < 64 ? len : 64;
        int flips = 1 + (int)(next_rand() % 3);
        for (int k = 0; k < flips; k++)
          bufs[i][len - 1 - next_rand() % tail] ^=
              (uint8_t)(1u << (next_rand() % 8));
      } else {
        len = 1 + next_rand() % MAXLEN;
        for (size_t k = 0; k < len; k += 8) {
          uint64_t r = next_rand();
          memcpy(bufs[i] + k, &r, len - k < 8 ? len - k : 8);
        }
      }
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = len;
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &to;
      msgs[i].msg_hdr.msg_namelen = sizeof to;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(fd, msgs, (unsigned)n, 0);
    if (r < 0) {
      failed += n; /* ENOBUFS and the like: counted, the schedule goes on */
      continue;
    }
    sent += (uint64_t)r;
    failed += n - (size_t)r;
  }
  double took = (double)(now_ns() - t0) / 1e9;
  printf("{\"kind\":\"%s\",\"sent\":%llu,\"failed\":%llu,\"seconds\":%.3f,"
         "\"rate\":%.0f}\n",
         kind, (unsigned long long)sent, (unsigned long long)failed, took,
         took > 0 ? (double)sent / took : 0.0);
  for (size_t i = 0; i < nseeds; i++)
    free(seeds[i].p);
  free(seeds);
  close(fd);
  return 0;
}
