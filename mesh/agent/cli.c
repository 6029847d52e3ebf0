/*
 * cli.c: the client subcommands of `livemesh`: members, leave, stats and
 * ping talk to a running agent over its control socket (control.c).
 * (keygen is in keygen.c.)
 *
 * People get aligned tables, programs get `-o json`. Exit statuses: 0 done,
 * 1 the agent answered with a failure, 2 usage errors and an unreachable
 * agent.
 *
 * Must never depend on swim/ or mesh/node/: what it knows of the mesh comes
 * from the agent's answers.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <limits.h>
#include <livemesh/livemesh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"

#define CALL_TIMEOUT_MS 10000

typedef struct client_opts {
  const char *socket;
  int json; /* -o json */
} client_opts_t;

static void client_usage(const char *cmd) {
  if (!strcmp(cmd, "members"))
    printf("Usage: livemesh members [-o table|json] [--socket PATH]\n\n"
           "Lists the members of the mesh as the local agent sees them.\n"
           "-o json prints an array of {name, id, addr, status, incarnation "
           "{generation,\nversion}, services, since}.\n");
  else if (!strcmp(cmd, "leave"))
    printf("Usage: livemesh leave [--socket PATH]\n\n"
           "Tells the local agent to leave the mesh gracefully (the others "
           "mark it left,\nnot dead) and to exit. Returns once the leave has "
           "been sent out.\n");
  else if (!strcmp(cmd, "stats"))
    printf("Usage: livemesh stats [-o table|json] [--socket PATH]\n\n"
           "Shows the agent's counters: packets, probes, suspicions, "
           "messages dropped\nby reason, services (local, in the view, by "
           "status), service lists exchanged\nand check runs by kind and "
           "result.\n");
  else
    printf("Usage: livemesh ping [--socket PATH]\n\n"
           "Checks that the agent answers; prints its name, version and "
           "generation.\n");
  printf("\nThe agent is found through --socket PATH, else $LIVEMESH_SOCKET, "
         "else the\ndefault path (/run/livemesh/livemesh.sock as root, else "
         "$XDG_RUNTIME_DIR/livemesh.sock,\nelse /tmp/livemesh-UID.sock).\n");
}

/* Returns -1 on a usage error (printed), 1 for --help, 0 otherwise. */
static int parse_client(int argc, char **argv, client_opts_t *o,
                        int allow_output) {
  memset(o, 0, sizeof *o);
  const char *cmd = argv[0];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      client_usage(cmd);
      return 1;
    }
    int is_sock = !strcmp(a, "--socket") || !strncmp(a, "--socket=", 9);
    int is_out = allow_output && (!strcmp(a, "-o") || !strcmp(a, "--output") ||
                                  !strncmp(a, "--output=", 9) ||
                                  !strncmp(a, "-o=", 3));
    if (!is_sock && !is_out) {
      fprintf(stderr, "livemesh %s: unknown %s \"%s\" (see livemesh %s "
              "--help)\n", cmd, a[0] == '-' ? "flag" : "argument", a, cmd);
      return -1;
    }
    const char *eq = strchr(a, '=');
    if (eq)
      v = eq + 1;
    else if (i + 1 < argc)
      v = argv[++i];
    else {
      fprintf(stderr, "livemesh %s: %s needs a value\n", cmd, a);
      return -1;
    }
    if (is_sock) {
      o->socket = v;
    } else if (!strcmp(v, "json")) {
      o->json = 1;
    } else if (!strcmp(v, "table")) {
      o->json = 0;
    } else {
      fprintf(stderr, "livemesh %s: -o: expected table or json, got \"%s\"\n",
              cmd, v);
      return -1;
    }
  }
  return 0;
}

/* One request to the agent; prints why it failed and returns NULL. */
static json_t *call(const client_opts_t *o, const char *cmd, const char *what,
                    int *code) {
  char path[PATH_MAX], err[1024];
  lm__ctl_client_path(o->socket, path, sizeof path);
  json_t *req = json_pack("{s:s}", "cmd", cmd), *resp = NULL;
  int rc = lm__ctl_call(path, req, &resp, CALL_TIMEOUT_MS, err, sizeof err);
  json_decref(req);
  if (rc) {
    fprintf(stderr, "livemesh %s: %s\n", what, err);
    *code = LM__EXIT_USAGE;
    return NULL;
  }
  if (!json_is_true(json_object_get(resp, "ok"))) {
    const char *e = json_string_value(json_object_get(resp, "error"));
    fprintf(stderr, "livemesh %s: the agent says: %s\n", what,
            e ? e : "request failed");
    json_decref(resp);
    *code = LM__EXIT_FAIL;
    return NULL;
  }
  *code = LM__EXIT_OK;
  return resp;
}

static int use_color(void) {
  const char *t = getenv("TERM");
  return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && t &&
         strcmp(t, "dumb") != 0;
}

static const char *status_color(const char *s) {
  if (!strcmp(s, "alive"))
    return "\033[32m";
  if (!strcmp(s, "suspect"))
    return "\033[33m";
  if (!strcmp(s, "dead"))
    return "\033[31m";
  return "\033[2m";
}

static void print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (s)
    printf("%s\n", s);
  free(s);
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

int lm__cmd_members(int argc, char **argv) {
  client_opts_t o;
  int p = parse_client(argc, argv, &o, 1);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = call(&o, "members", "members", &code);
  if (!resp)
    return code;
  json_t *ms = json_object_get(resp, "members");
  if (!json_is_array(ms)) {
    fprintf(stderr, "livemesh members: the agent's answer has no members\n");
    json_decref(resp);
    return LM__EXIT_FAIL;
  }
  if (o.json) {
    print_json(ms);
    json_decref(resp);
    return LM__EXIT_OK;
  }
  /* columns sized to their widest cell */
  static const char *hdr[] = {"NAME",       "STATUS",  "ADDRESS",
                              "GENERATION", "VERSION", "SINCE"};
  size_t w[6];
  for (int c = 0; c < 6; c++)
    w[c] = strlen(hdr[c]);
  size_t i, n = json_array_size(ms);
  json_t *m;
  char cells[6][80];
#define FILL(m)                                                               \
  do {                                                                        \
    json_t *inc = json_object_get(m, "incarnation");                          \
    snprintf(cells[0], 80, "%s", jstr(m, "name"));                            \
    snprintf(cells[1], 80, "%s", jstr(m, "status"));                          \
    snprintf(cells[2], 80, "%s", jstr(m, "addr"));                            \
    snprintf(cells[3], 80, "%lld",                                            \
             (long long)json_integer_value(json_object_get(inc, "generation"))); \
    snprintf(cells[4], 80, "%lld",                                            \
             (long long)json_integer_value(json_object_get(inc, "version"))); \
    snprintf(cells[5], 80, "%s", jstr(m, "since"));                           \
  } while (0)
  json_array_foreach(ms, i, m) {
    FILL(m);
    for (int c = 0; c < 6; c++)
      if (strlen(cells[c]) > w[c])
        w[c] = strlen(cells[c]);
  }
  int color = use_color();
  for (int c = 0; c < 5; c++)
    printf("%-*s  ", (int)w[c], hdr[c]);
  printf("%s\n", hdr[5]);
  size_t counts[4] = {0};
  json_array_foreach(ms, i, m) {
    FILL(m);
    for (int c = 0; c < 6; c++) {
      if (c == 1 && color)
        printf("%s%-*s\033[0m  ", status_color(cells[1]), (int)w[c],
               cells[c]);
      else if (c < 5)
        printf("%-*s  ", (int)w[c], cells[c]);
      else
        printf("%s\n", cells[c]);
    }
    for (int s = 0; s < 4; s++)
      if (!strcmp(cells[1], lm_status_name((lm_status_t)s)))
        counts[s]++;
  }
#undef FILL
  fprintf(stderr, "%zu member(s): %zu alive, %zu suspect, %zu dead, %zu "
          "left\n", n, counts[0], counts[1], counts[2], counts[3]);
  json_decref(resp);
  return LM__EXIT_OK;
}

int lm__cmd_leave(int argc, char **argv) {
  client_opts_t o;
  int p = parse_client(argc, argv, &o, 0);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = call(&o, "leave", "leave", &code);
  if (!resp)
    return code;
  const char *name = jstr(resp, "name");
  if (json_is_true(json_object_get(resp, "left")))
    printf("agent %s left the mesh and is stopping\n", name);
  else
    fprintf(stderr, "livemesh leave: agent %s is stopping, but its leave was "
            "not confirmed in time; the others will find it dead instead\n",
            name);
  json_decref(resp);
  return LM__EXIT_OK;
}

int lm__cmd_stats(int argc, char **argv) {
  client_opts_t o;
  int p = parse_client(argc, argv, &o, 1);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = call(&o, "stats", "stats", &code);
  if (!resp)
    return code;
  json_t *st = json_object_get(resp, "stats");
  /* a scalar as the table shows it: strings, booleans, numbers */
#define SCALAR_TEXT(v, buf)                                                   \
  (json_is_string(v) ? (json_string_value(v)[0] ? json_string_value(v) : "-") \
   : json_is_boolean(v)                                                       \
       ? (json_is_true(v) ? "yes" : "no")                                     \
       : (snprintf(buf, sizeof buf, "%lld",                                   \
                   (long long)json_integer_value(v)),                         \
          buf))
  char nb[32];
  if (o.json) {
    print_json(st);
  } else {
    const char *k;
    json_t *v;
    json_object_foreach(st, k, v) {
      if (json_is_object(v)) {
        printf("%-20s %s\n", k, json_object_size(v) ? "" : "none");
        const char *k2;
        json_t *v2;
        json_object_foreach(v, k2, v2) {
          if (!json_is_object(v2)) {
            printf("  %-18s %s\n", k2, SCALAR_TEXT(v2, nb));
            continue;
          }
          /* check_runs: one line per kind, its results side by side */
          printf("  %-18s", k2);
          const char *k3;
          json_t *v3;
          json_object_foreach(v2, k3, v3)
            printf(" %s %lld", k3, (long long)json_integer_value(v3));
          printf("\n");
        }
      } else {
        printf("%-20s %s\n", k, SCALAR_TEXT(v, nb));
      }
    }
  }
#undef SCALAR_TEXT
  json_decref(resp);
  return LM__EXIT_OK;
}

int lm__cmd_ping(int argc, char **argv) {
  client_opts_t o;
  int p = parse_client(argc, argv, &o, 0);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = call(&o, "ping", "ping", &code);
  if (!resp)
    return code;
  printf("agent %s (livemesh %s, pid %lld, generation %lld) is %s\n",
         jstr(resp, "name"), jstr(resp, "version"),
         (long long)json_integer_value(json_object_get(resp, "pid")),
         (long long)json_integer_value(json_object_get(resp, "generation")),
         jstr(resp, "state"));
  json_decref(resp);
  return LM__EXIT_OK;
}
