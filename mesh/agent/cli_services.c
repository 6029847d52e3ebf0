/*
 * cli_services.c: the service subcommands of `livemesh`: services, is-up,
 * watch, register, pass, fail, maint, deregister (INTERFACES.md, "CLI";
 * docs/agent.md, "Services").
 *
 * Every one talks to the agent through the client library
 * (lm_client_request, lm_client_watch), so the library is exercised by
 * every CLI call. Flags are checked before the agent is contacted: a bad
 * one is named and the exit status is 2. A registration is checked here
 * by the same parser the agent uses (svc_json.c), with the flags' names in
 * its messages.
 *
 * Exit statuses: 0 done (is-up: up); 1 the agent refused or failed (is-up:
 * down or unknown); 2 a usage error or an agent that cannot be reached.
 *
 * Must never depend on swim/, store/ or node.c: what it knows of services
 * comes from the agent's answers.
 */
#define _GNU_SOURCE
#include "cli_services.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <livemesh/client.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "client_internal.h"
#include "svc_json.h"

enum { EXIT_DONE = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define CALL_TIMEOUT_MS 10000
#define LIST_MAX 128

/* ---- flags ---- */

enum { A_VAL, A_BOOL, A_LIST };

typedef struct argspec {
  const char *name; /* "--type" */
  int kind;
} argspec_t;

#define SPECS_MAX 24
#define POS_MAX 4

typedef struct parsed {
  const char *cmd;
  const char *socket;
  int json;     /* -o json */
  int has_output;
  const argspec_t *specs;
  size_t nspecs;
  const char *val[SPECS_MAX];
  int set[SPECS_MAX];
  const char *list[SPECS_MAX][LIST_MAX];
  size_t nlist[SPECS_MAX];
  const char *pos[POS_MAX];
  int npos;
} parsed_t;

static const char SOCKET_HELP[] =
    "\nThe agent is found through --socket PATH, else $LIVEMESH_SOCKET, else "
    "the\ndefault path (/run/livemesh/livemesh.sock as root, else "
    "$XDG_RUNTIME_DIR/livemesh.sock,\nelse /tmp/livemesh-UID.sock).\n"
    "Exit status: 0 done, 1 failed, 2 usage error or agent not reachable.\n";

static void usage(const char *cmd) {
  if (!strcmp(cmd, "services"))
    printf("Usage: livemesh services [--type T] [--host H] [--region R]\n"
           "                         [--status up|down|maintenance] "
           "[-o table|json]\n\n"
           "Lists the services in the local agent's view, every member's. "
           "The table shows\nName, Type, Worker, Pid, Host, Status and "
           "Created At; -o json prints an array\nof {uuid, type, name, host, "
           "region, worker, pid, port, status, member_status,\ncreated_at, "
           "since, tags, meta, checks, stale, ...}. --status filters on the\n"
           "effective status (a service of a dead member is down).\n");
  else if (!strcmp(cmd, "is-up"))
    printf("Usage: livemesh is-up TYPE HOST [-o table|json] [-q]\n"
           "       livemesh is-up --uuid UUID [-o table|json] [-q]\n\n"
           "Answers from the local agent's view whether a service is up: "
           "exit 0 when it is,\n1 when it is down or unknown, 2 on an error. "
           "Up means its checks pass and its\nmember is alive or suspect; "
           "with several workers of TYPE on HOST, up when any\none is. -q "
           "prints nothing; -o json prints {up, status, member_status, "
           "uuid,\ntype, host, age_ms, stale}.\n");
  else if (!strcmp(cmd, "watch"))
    printf("Usage: livemesh watch [--type T] [--host H] [--uuid U] "
           "[--members | --all]\n\n"
           "Prints the current state of every matching service (one JSON "
           "object per line,\n\"initial\": true), then one line per real "
           "transition, as it happens:\n{seq, kind, uuid or name, type, "
           "host, old, new, cause, at}. --members watches\nthe members "
           "instead of the services, --all both. Runs until interrupted.\n");
  else if (!strcmp(cmd, "register"))
    printf("Usage: livemesh register --type T [--name N] [--uuid U] [--pid P] "
           "[--worker I]\n"
           "                 [--region R] [--port P] [--tag T]... [--meta "
           "K=V]...\n"
           "                 [--ttl DUR | --http-check URL | --tcp-check "
           "HOST:PORT |\n"
           "                  --exec-check CMD] [--interval DUR] [--timeout "
           "DUR]\n"
           "                 [--failures-before-down N] "
           "[--successes-before-up N] [--ephemeral]\n\n"
           "Registers a service on the local agent and prints its UUID, "
           "alone, on stdout.\nRegistering the same --uuid again replaces "
           "it (keeping its creation time).\n\n"
           "Its status comes from at most one check:\n"
           "  --ttl DUR          down unless `livemesh pass UUID` comes "
           "within DUR\n"
           "  --http-check URL   GET URL every --interval (default 10s): "
           "2xx or 3xx is up\n"
           "  --tcp-check H:P    a TCP connection to H:P is accepted\n"
           "  --exec-check CMD   /bin/sh -c CMD exits 0 (if the agent allows "
           "exec checks)\n"
           "  --pid P alone      up while process P runs\n"
           "  none               up while it is registered\n"
           "--timeout (default 5s) bounds each http, tcp or exec check. "
           "Durations: 500ms,\n30s, 5m, 1h, or a number of seconds.\n\n"
           "--ephemeral: the service lives only while this command runs. It "
           "registers,\nprints the UUID, then holds its connection to the "
           "agent open until it gets\nSIGTERM, SIGINT or SIGHUP, or until "
           "its stdin is closed (when stdin is a pipe,\nor the terminal of "
           "a foreground job); then the agent drops the service. E.g.\n"
           "  livemesh register --ephemeral --type api --pid $$ > uuid & "
           "... ; kill %%1\n");
  else if (!strcmp(cmd, "pass"))
    printf("Usage: livemesh pass UUID [--note TEXT]\n\n"
           "The heartbeat of a --ttl service: up for another TTL. The note "
           "becomes the\ncheck's output.\n");
  else if (!strcmp(cmd, "fail"))
    printf("Usage: livemesh fail UUID [--note TEXT]\n\n"
           "Marks a --ttl service down now, until its next pass. The note "
           "becomes the\ncheck's output.\n");
  else if (!strcmp(cmd, "maint"))
    printf("Usage: livemesh maint UUID --for DUR [--note TEXT]\n"
           "       livemesh maint UUID --off\n\n"
           "Puts a service in maintenance (is-up says down, with status "
           "\"maintenance\")\nfor DUR, after which it ends by itself; --off "
           "ends it now.\n");
  else
    printf("Usage: livemesh deregister UUID\n\n"
           "Removes a service registered on the local agent.\n");
  fputs(SOCKET_HELP, stdout);
}

static int spec_index(const parsed_t *p, const char *flag) {
  for (size_t k = 0; k < p->nspecs; k++)
    if (!strcmp(p->specs[k].name, flag))
      return (int)k;
  return -1;
}

/* -1 usage error (printed), 1 --help (printed), 0 parsed. */
static int parse(parsed_t *p, int argc, char **argv, const argspec_t *specs,
                 size_t nspecs, int maxpos, int allow_output) {
  memset(p, 0, sizeof *p);
  p->cmd = argv[0];
  p->specs = specs;
  p->nspecs = nspecs;
  p->has_output = allow_output;
  int flags_done = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (flags_done || a[0] != '-' || !a[1]) {
      if (p->npos >= maxpos) {
        fprintf(stderr, "livemesh %s: unexpected argument \"%s\" (see "
                "livemesh %s --help)\n", p->cmd, a, p->cmd);
        return -1;
      }
      p->pos[p->npos++] = a;
      continue;
    }
    if (!strcmp(a, "--")) {
      flags_done = 1;
      continue;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(p->cmd);
      return 1;
    }
    char name[64];
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    snprintf(name, sizeof name, "%.*s", (int)(nl < 63 ? nl : 63), a);
    int is_sock = !strcmp(name, "--socket");
    int is_out = allow_output && (!strcmp(name, "-o") ||
                                  !strcmp(name, "--output"));
    int is_quiet = !strcmp(p->cmd, "is-up") &&
                   (!strcmp(name, "-q") || !strcmp(name, "--quiet"));
    int k = spec_index(p, name);
    if (is_quiet)
      k = spec_index(p, "-q");
    if (!is_sock && !is_out && k < 0) {
      fprintf(stderr, "livemesh %s: unknown flag %s (see livemesh %s "
              "--help)\n", p->cmd, name, p->cmd);
      return -1;
    }
    if (k >= 0 && specs[k].kind == A_BOOL) {
      if (eq) {
        fprintf(stderr, "livemesh %s: %s takes no value\n", p->cmd, name);
        return -1;
      }
      p->set[k] = 1;
      continue;
    }
    const char *v;
    if (eq)
      v = eq + 1;
    else if (i + 1 < argc)
      v = argv[++i];
    else {
      fprintf(stderr, "livemesh %s: %s needs a value\n", p->cmd, name);
      return -1;
    }
    if (is_sock) {
      if (!*v) {
        fprintf(stderr, "livemesh %s: --socket needs a path\n", p->cmd);
        return -1;
      }
      p->socket = v;
    } else if (is_out) {
      if (!strcmp(v, "json") || !strcmp(v, "table")) {
        p->json = !strcmp(v, "json");
      } else {
        fprintf(stderr, "livemesh %s: %s: expected table or json, got "
                "\"%s\"\n", p->cmd, name, v);
        return -1;
      }
    } else if (specs[k].kind == A_LIST) {
      if (p->nlist[k] >= LIST_MAX) {
        fprintf(stderr, "livemesh %s: %s given more than %d times\n", p->cmd,
                name, LIST_MAX);
        return -1;
      }
      p->list[k][p->nlist[k]++] = v;
      p->set[k] = 1;
    } else {
      if (p->set[k]) {
        fprintf(stderr, "livemesh %s: %s given twice\n", p->cmd, name);
        return -1;
      }
      p->val[k] = v;
      p->set[k] = 1;
    }
  }
  return 0;
}

static const char *flag(const parsed_t *p, const char *name) {
  int k = spec_index(p, name);
  return k >= 0 ? p->val[k] : NULL;
}

static int flag_set(const parsed_t *p, const char *name) {
  int k = spec_index(p, name);
  return k >= 0 && p->set[k];
}

static int parse_ll(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (!*s || *end || errno || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
    return -1;
  *out = x;
  return 0;
}

/* A UUID argument, normalized; -1 after a message. */
static int uuid_arg(const parsed_t *p, const char *what, const char *s,
                    char out[LM_UUID_STRLEN + 1]) {
  uint8_t u[LM_UUID_LEN];
  if (!s || lm_uuid_parse(u, s) != 0) {
    if (s)
      fprintf(stderr, "livemesh %s: %s: expected a service UUID such as "
              "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0, got \"%s\"\n", p->cmd,
              what, s);
    else
      fprintf(stderr, "livemesh %s: missing the service's UUID (see "
              "livemesh %s --help)\n", p->cmd, p->cmd);
    return -1;
  }
  lm_uuid_format(out, u);
  return 0;
}

static int note_ok(const parsed_t *p, const char *note) {
  if (note && strlen(note) > LM_SVC_NOTE_MAX) {
    fprintf(stderr, "livemesh %s: --note: %zu bytes long, at most %d "
            "allowed\n", p->cmd, strlen(note), LM_SVC_NOTE_MAX);
    return 0;
  }
  return 1;
}

/* ---- talking to the agent ---- */

static lm_client_t *connect_agent(const parsed_t *p, int *code) {
  lm_client_t *c = NULL;
  char err[640];
  int rc = lm__client_open_err(&c, p->socket, CALL_TIMEOUT_MS, err,
                               sizeof err);
  if (rc) {
    fprintf(stderr, "livemesh %s: %s\n", p->cmd, err);
    *code = EXIT_USAGE;
    return NULL;
  }
  return c;
}

/* Sends `req` (stolen); returns the parsed answer, or NULL after printing
 * why, with *code set: 2 the agent could not be reached or did not answer,
 * 1 it refused. */
static json_t *request(const parsed_t *p, lm_client_t *c, json_t *req,
                       int *code) {
  char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  if (!text) {
    fprintf(stderr, "livemesh %s: out of memory\n", p->cmd);
    *code = EXIT_FAILED;
    return NULL;
  }
  char *resp = NULL;
  int rc = lm_client_request(c, text, &resp);
  free(text);
  if (!resp) {
    fprintf(stderr, "livemesh %s: %s\n", p->cmd, lm_client_error(c));
    *code = rc == LM_ENOMEM ? EXIT_FAILED : EXIT_USAGE;
    return NULL;
  }
  json_t *j = json_loads(resp, 0, NULL);
  free(resp);
  if (rc || !j) {
    fprintf(stderr, "livemesh %s: the agent says: %s\n", p->cmd,
            rc ? lm_client_error(c) : "(an answer that does not parse)");
    json_decref(j);
    *code = EXIT_FAILED;
    return NULL;
  }
  *code = EXIT_DONE;
  return j;
}

/* One request and its {"ok":true}: the common shape of pass, fail, maint
 * and deregister. */
static int simple_call(const parsed_t *p, json_t *req) {
  int code;
  lm_client_t *c = connect_agent(p, &code);
  if (!c) {
    json_decref(req);
    return code;
  }
  json_t *resp = request(p, c, req, &code);
  json_decref(resp);
  lm_client_close(c);
  return code;
}

static void print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (s)
    printf("%s\n", s);
  free(s);
}

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static int use_color(void) {
  const char *t = getenv("TERM");
  return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && t &&
         strcmp(t, "dumb") != 0;
}

static const char *status_color(const char *s) {
  if (!strcmp(s, "up"))
    return "\033[32m";
  if (!strcmp(s, "down"))
    return "\033[31m";
  if (!strcmp(s, "maintenance"))
    return "\033[33m";
  return "\033[2m";
}

/* ---- services ---- */

static const argspec_t SERVICES_FLAGS[] = {
    {"--type", A_VAL}, {"--host", A_VAL}, {"--region", A_VAL},
    {"--status", A_VAL}};

#define NCOLS 7

static void service_cells(const json_t *s, char cells[NCOLS][80]) {
  const char *name = jstr(s, "name");
  json_t *w = json_object_get(s, "worker"), *pid = json_object_get(s, "pid");
  snprintf(cells[0], 80, "%s", *name ? name : "-");
  snprintf(cells[1], 80, "%s", jstr(s, "type"));
  if (json_is_integer(w))
    snprintf(cells[2], 80, "%lld", (long long)json_integer_value(w));
  else
    snprintf(cells[2], 80, "-");
  if (json_is_integer(pid))
    snprintf(cells[3], 80, "%lld", (long long)json_integer_value(pid));
  else
    snprintf(cells[3], 80, "-");
  snprintf(cells[4], 80, "%s", jstr(s, "host"));
  snprintf(cells[5], 80, "%s%s", jstr(s, "status"),
           json_is_true(json_object_get(s, "stale")) ? "*" : "");
  snprintf(cells[6], 80, "%s", jstr(s, "created_at"));
}

int lm__cmd_services(int argc, char **argv) {
  parsed_t p;
  int r = parse(&p, argc, argv, SERVICES_FLAGS, 4, 0, 1);
  if (r)
    return r > 0 ? EXIT_DONE : EXIT_USAGE;
  const char *st = flag(&p, "--status");
  if (st && strcmp(st, "up") && strcmp(st, "down") &&
      strcmp(st, "maintenance")) {
    fprintf(stderr, "livemesh services: --status: expected up, down or "
            "maintenance, got \"%s\"\n", st);
    return EXIT_USAGE;
  }
  json_t *req = json_pack("{s:s}", "cmd", "services");
  static const char *const FILTERS[] = {"type", "host", "region", "status"};
  for (size_t i = 0; req && i < 4; i++)
    if (p.val[i])
      json_object_set_new(req, FILTERS[i], json_string(p.val[i]));
  int code;
  lm_client_t *c = connect_agent(&p, &code);
  if (!c) {
    json_decref(req);
    return code;
  }
  json_t *resp = request(&p, c, req, &code);
  lm_client_close(c);
  if (!resp)
    return code;
  json_t *svcs = json_object_get(resp, "services");
  if (!json_is_array(svcs)) {
    fprintf(stderr, "livemesh services: the agent's answer has no "
            "services\n");
    json_decref(resp);
    return EXIT_FAILED;
  }
  if (p.json) {
    print_json(svcs);
    json_decref(resp);
    return EXIT_DONE;
  }
  static const char *hdr[NCOLS] = {"NAME", "TYPE",   "WORKER",    "PID",
                                   "HOST", "STATUS", "CREATED AT"};
  size_t w[NCOLS];
  for (int k = 0; k < NCOLS; k++)
    w[k] = strlen(hdr[k]);
  char cells[NCOLS][80];
  size_t i, n = json_array_size(svcs), counts[3] = {0}, stale = 0;
  json_t *s;
  json_array_foreach(svcs, i, s) {
    service_cells(s, cells);
    for (int k = 0; k < NCOLS; k++)
      if (strlen(cells[k]) > w[k])
        w[k] = strlen(cells[k]);
  }
  int color = use_color();
  for (int k = 0; k < NCOLS - 1; k++)
    printf("%-*s  ", (int)w[k], hdr[k]);
  printf("%s\n", hdr[NCOLS - 1]);
  json_array_foreach(svcs, i, s) {
    service_cells(s, cells);
    for (int k = 0; k < NCOLS - 1; k++) {
      if (k == 5 && color)
        printf("%s%-*s\033[0m  ", status_color(jstr(s, "status")), (int)w[k],
               cells[k]);
      else
        printf("%-*s  ", (int)w[k], cells[k]);
    }
    printf("%s\n", cells[NCOLS - 1]);
    const char *sn = jstr(s, "status");
    counts[!strcmp(sn, "up") ? 0 : !strcmp(sn, "down") ? 1 : 2]++;
    stale += json_is_true(json_object_get(s, "stale"));
  }
  fprintf(stderr, "%zu service(s): %zu up, %zu down, %zu maintenance\n", n,
          counts[0], counts[1], counts[2]);
  if (stale)
    fprintf(stderr, "* %zu from the snapshot: the mesh has not reconverged "
            "since the agent started\n", stale);
  json_decref(resp);
  return EXIT_DONE;
}

/* ---- is-up ---- */

static const argspec_t IS_UP_FLAGS[] = {{"--uuid", A_VAL}, {"-q", A_BOOL}};

int lm__cmd_is_up(int argc, char **argv) {
  parsed_t p;
  int r = parse(&p, argc, argv, IS_UP_FLAGS, 2, 2, 1);
  if (r)
    return r > 0 ? EXIT_DONE : EXIT_USAGE;
  const char *uuid = flag(&p, "--uuid");
  int quiet = flag_set(&p, "-q");
  char u[LM_UUID_STRLEN + 1];
  json_t *req;
  if (uuid) {
    if (p.npos) {
      fprintf(stderr, "livemesh is-up: give TYPE HOST or --uuid UUID, not "
              "both\n");
      return EXIT_USAGE;
    }
    if (uuid_arg(&p, "--uuid", uuid, u))
      return EXIT_USAGE;
    req = json_pack("{s:s, s:s}", "cmd", "is-up", "uuid", u);
  } else {
    if (p.npos != 2) {
      fprintf(stderr, "livemesh is-up: %s (usage: livemesh is-up TYPE HOST "
              "| --uuid UUID)\n", p.npos ? "missing HOST" :
              "missing TYPE and HOST");
      return EXIT_USAGE;
    }
    if (!*p.pos[0] || !*p.pos[1]) {
      fprintf(stderr, "livemesh is-up: TYPE and HOST must not be empty\n");
      return EXIT_USAGE;
    }
    req = json_pack("{s:s, s:s, s:s}", "cmd", "is-up", "type", p.pos[0],
                    "host", p.pos[1]);
  }
  int code;
  lm_client_t *c = connect_agent(&p, &code);
  if (!c) {
    json_decref(req);
    return code;
  }
  json_t *resp = request(&p, c, req, &code);
  lm_client_close(c);
  if (!resp)
    return code == EXIT_FAILED ? EXIT_USAGE : code; /* is-up: 1 means down */
  json_object_del(resp, "ok");
  json_object_del(resp, "id");
  int up = json_is_true(json_object_get(resp, "up"));
  const char *st = jstr(resp, "status");
  if (p.json) {
    print_json(resp);
  } else if (!quiet) {
    const char *type = jstr(resp, "type"), *host = jstr(resp, "host");
    const char *stale =
        json_is_true(json_object_get(resp, "stale")) ? ", stale view" : "";
    if (!strcmp(st, "unknown"))
      printf("unknown: no such service in the view (%s%s%s%s)\n",
             uuid ? "uuid " : p.pos[0], uuid ? u : " on ",
             uuid ? "" : p.pos[1], stale);
    else
      printf("%s: %s on %s is %s (member %s, confirmed %lld ms ago%s)\n",
             up ? "up" : "down", type, host, st, jstr(resp, "member_status"),
             (long long)json_integer_value(json_object_get(resp, "age_ms")),
             stale);
  }
  json_decref(resp);
  return up ? EXIT_DONE : EXIT_FAILED;
}

/* ---- watch ---- */

static const argspec_t WATCH_FLAGS[] = {{"--type", A_VAL},
                                        {"--host", A_VAL},
                                        {"--uuid", A_VAL},
                                        {"--members", A_BOOL},
                                        {"--all", A_BOOL}};

static int print_line(void *ud, const char *line) {
  (void)ud;
  /* one object per line, flushed at once: a pipe reader sees each event
   * as it happens */
  if (fputs(line, stdout) < 0 || putchar('\n') == EOF || fflush(stdout))
    return 1; /* stdout is gone: nobody to tell */
  return 0;
}

int lm__cmd_watch(int argc, char **argv) {
  parsed_t p;
  int r = parse(&p, argc, argv, WATCH_FLAGS, 5, 0, 0);
  if (r)
    return r > 0 ? EXIT_DONE : EXIT_USAGE;
  lm_watch_filter_t f = {0};
  uint8_t uuid[LM_UUID_LEN];
  char u[LM_UUID_STRLEN + 1];
  f.type = flag(&p, "--type");
  f.host = flag(&p, "--host");
  f.members = flag_set(&p, "--members");
  f.all = flag_set(&p, "--all");
  if (f.members && f.all) {
    fprintf(stderr, "livemesh watch: --members and --all exclude each "
            "other\n");
    return EXIT_USAGE;
  }
  if (flag(&p, "--uuid")) {
    if (uuid_arg(&p, "--uuid", flag(&p, "--uuid"), u))
      return EXIT_USAGE;
    lm_uuid_parse(uuid, u);
    f.uuid = uuid;
  }
  if (f.members && (f.type || f.uuid)) {
    fprintf(stderr, "livemesh watch: --members watches members; --type and "
            "--uuid select services\n");
    return EXIT_USAGE;
  }
  int code;
  lm_client_t *c = connect_agent(&p, &code);
  if (!c)
    return code;
  int rc = lm_client_watch(c, &f, print_line, NULL, 0);
  if (rc) {
    int refused = rc == LM_EINVAL || rc == LM_ENOTFOUND;
    fprintf(stderr, "livemesh watch: %s%s\n", refused ? "the agent says: " : "",
            lm_client_error(c));
    code = rc == LM_ETIMEDOUT ? EXIT_USAGE : EXIT_FAILED;
  } else {
    code = EXIT_DONE;
  }
  lm_client_close(c);
  return code;
}

/* ---- register ---- */

static const argspec_t REGISTER_FLAGS[] = {
    {"--type", A_VAL},        {"--name", A_VAL},
    {"--uuid", A_VAL},        {"--pid", A_VAL},
    {"--worker", A_VAL},      {"--region", A_VAL},
    {"--port", A_VAL},        {"--tag", A_LIST},
    {"--meta", A_LIST},       {"--ttl", A_VAL},
    {"--http-check", A_VAL},  {"--tcp-check", A_VAL},
    {"--exec-check", A_VAL},  {"--interval", A_VAL},
    {"--timeout", A_VAL},     {"--failures-before-down", A_VAL},
    {"--successes-before-up", A_VAL}, {"--ephemeral", A_BOOL}};
#define NREGISTER (sizeof REGISTER_FLAGS / sizeof REGISTER_FLAGS[0])

/* The register body from the flags; NULL after a message. Strings go as
 * given, numbers as JSON numbers; the body is then checked by the agent's
 * own parser. */
static json_t *register_body(const parsed_t *p) {
  static const struct {
    const char *flag, *key;
    int number;
  } MAP[] = {
      {"--type", "type", 0},           {"--name", "name", 0},
      {"--uuid", "uuid", 0},           {"--pid", "pid", 1},
      {"--worker", "worker", 1},       {"--region", "region", 0},
      {"--port", "port", 1},           {"--ttl", "ttl", 0},
      {"--http-check", "http_check", 0}, {"--tcp-check", "tcp_check", 0},
      {"--exec-check", "exec_check", 0}, {"--interval", "interval", 0},
      {"--timeout", "timeout", 0},
      {"--failures-before-down", "failures_before_down", 1},
      {"--successes-before-up", "successes_before_up", 1},
  };
  json_t *b = json_pack("{s:s}", "cmd", "register");
  if (!b)
    return NULL;
  for (size_t i = 0; i < sizeof MAP / sizeof MAP[0]; i++) {
    const char *v = flag(p, MAP[i].flag);
    if (!v)
      continue;
    json_t *jv;
    long long x;
    if (MAP[i].number) {
      if (parse_ll(v, &x)) {
        fprintf(stderr, "livemesh register: %s: expected a whole number, "
                "got \"%s\"\n", MAP[i].flag, v);
        json_decref(b);
        return NULL;
      }
      jv = json_integer(x);
    } else {
      jv = json_string(v);
      if (!jv) {
        fprintf(stderr, "livemesh register: %s: not valid UTF-8\n",
                MAP[i].flag);
        json_decref(b);
        return NULL;
      }
    }
    json_object_set_new(b, MAP[i].key, jv);
  }
  int kt = spec_index(p, "--tag"), km = spec_index(p, "--meta");
  if (p->nlist[kt]) {
    json_t *tags = json_array();
    for (size_t i = 0; i < p->nlist[kt]; i++) {
      json_t *t = json_string(p->list[kt][i]);
      if (!t) {
        fprintf(stderr, "livemesh register: --tag: not valid UTF-8\n");
        json_decref(tags);
        json_decref(b);
        return NULL;
      }
      json_array_append_new(tags, t);
    }
    json_object_set_new(b, "tags", tags);
  }
  if (p->nlist[km]) {
    json_t *meta = json_object();
    json_object_set_new(b, "meta", meta);
    for (size_t i = 0; i < p->nlist[km]; i++) {
      const char *kv = p->list[km][i], *eq = strchr(kv, '=');
      if (!eq || eq == kv) {
        fprintf(stderr, "livemesh register: --meta: expected KEY=VALUE, got "
                "\"%s\"\n", kv);
        json_decref(b);
        return NULL;
      }
      char key[LM_SVC_META_KEY_MAX + 2];
      size_t kl = (size_t)(eq - kv);
      if (kl > LM_SVC_META_KEY_MAX) {
        fprintf(stderr, "livemesh register: --meta: key \"%.*s...\" is %zu "
                "bytes long, at most %d allowed\n", 16, kv, kl,
                LM_SVC_META_KEY_MAX);
        json_decref(b);
        return NULL;
      }
      memcpy(key, kv, kl);
      key[kl] = 0;
      if (json_object_get(meta, key)) {
        fprintf(stderr, "livemesh register: --meta: key \"%s\" given "
                "twice\n", key);
        json_decref(b);
        return NULL;
      }
      json_t *val = json_string(eq + 1);
      if (!val || json_object_set_new(meta, key, val)) {
        fprintf(stderr, "livemesh register: --meta: \"%s\" is not valid "
                "UTF-8\n", kv);
        json_decref(b);
        return NULL;
      }
    }
  }
  if (flag_set(p, "--ephemeral"))
    json_object_set_new(b, "ephemeral", json_true());
  return b;
}

/* stdin tells us to stop when it is a pipe or socket (closed: the parent
 * went away) or the terminal of a foreground job (Ctrl-D). Not /dev/null
 * or a file, which a shell gives to `cmd &`: they end at once. */
static int stdin_watchable(void) {
  struct stat st;
  if (fstat(STDIN_FILENO, &st) != 0)
    return 0;
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
    return 1;
  return isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
}

/* Holds the connection (and with it the ephemeral registration) until a
 * signal in `sigs`, the end of stdin, or the agent going away. */
static int hold(const parsed_t *p, lm_client_t *c, const char *uuid,
                const sigset_t *sigs) {
  int sfd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    fprintf(stderr, "livemesh %s: signalfd: %s\n", p->cmd, strerror(errno));
    return EXIT_FAILED;
  }
  struct pollfd pf[3] = {{.fd = sfd, .events = POLLIN},
                         {.fd = lm__client_fd(c), .events = POLLIN},
                         {.fd = stdin_watchable() ? STDIN_FILENO : -1,
                          .events = POLLIN}};
  int code = EXIT_DONE;
  for (;;) {
    if (poll(pf, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "livemesh %s: poll: %s\n", p->cmd, strerror(errno));
      code = EXIT_FAILED;
      break;
    }
    if (pf[0].revents) {
      /* SIGTERM, SIGINT, SIGHUP: done, as asked. Taken off the pending
       * set, or unblocking it later would kill us after all. */
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
      break;
    }
    if (pf[1].revents) {
      char b[512];
      ssize_t k = recv(pf[1].fd, b, sizeof b, MSG_DONTWAIT);
      if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
        fprintf(stderr, "livemesh %s: the agent closed the connection; the "
                "ephemeral service %s is gone\n", p->cmd, uuid);
        code = EXIT_FAILED;
        break;
      }
    }
    if (pf[2].revents) {
      char b[512];
      ssize_t k = read(STDIN_FILENO, b, sizeof b);
      if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
        break; /* stdin closed */
    }
  }
  close(sfd);
  return code;
}

int lm__cmd_register(int argc, char **argv) {
  parsed_t p;
  int r = parse(&p, argc, argv, REGISTER_FLAGS, NREGISTER, 0, 0);
  if (r)
    return r > 0 ? EXIT_DONE : EXIT_USAGE;
  json_t *body = register_body(&p);
  if (!body)
    return EXIT_USAGE;
  /* the agent's own checks, before it is contacted */
  lm__spec_buf_t sb;
  int eph = 0;
  char err[512];
  if (lm__spec_from_json_named(body, &sb, &eph, LM__NAMES_FLAGS, err,
                               sizeof err)) {
    fprintf(stderr, "livemesh register: %s\n", err);
    json_decref(body);
    return EXIT_USAGE;
  }
  lm__spec_buf_free(&sb);
  /* an ephemeral registration ends cleanly on these signals, even one that
   * comes while it is being made */
  sigset_t sigs, old;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  if (eph)
    sigprocmask(SIG_BLOCK, &sigs, &old);
  int code;
  lm_client_t *c = connect_agent(&p, &code);
  json_t *resp = c ? request(&p, c, body, &code) : (json_decref(body), NULL);
  if (resp) {
    const char *u = jstr(resp, "uuid");
    uint8_t tmp[LM_UUID_LEN];
    if (lm_uuid_parse(tmp, u) != 0) {
      fprintf(stderr, "livemesh register: the agent's answer has no "
              "uuid\n");
      code = EXIT_FAILED;
    } else {
      printf("%s\n", u);
      fflush(stdout);
      if (eph)
        code = hold(&p, c, u, &sigs);
    }
    json_decref(resp);
  }
  lm_client_close(c); /* an ephemeral service goes with the connection */
  if (eph)
    sigprocmask(SIG_SETMASK, &old, NULL);
  return code;
}

/* ---- pass, fail, maint, deregister ---- */

static const argspec_t NOTE_FLAGS[] = {{"--note", A_VAL}};

static int pass_fail(int argc, char **argv, const char *cmd) {
  parsed_t p;
  int r = parse(&p, argc, argv, NOTE_FLAGS, 1, 1, 0);
  if (r)
    return r > 0 ? EXIT_DONE : EXIT_USAGE;
  char u[LM_UUID_STRLEN + 1];
  const char *note = flag(&p, "--note");
  if (uuid_arg(&p, "UUID", p.npos ? p.pos[0] : NULL, u) || !note_ok(&p, note))
    return EXIT_USAGE;
  json_t *req = json_pack("{s:s, s:s}", "cmd", cmd, "uuid", u);
  if (req && note)
    json_object_set_new(req, "note", json_string(note));
  return simple_call(&p, req);
}

int lm__cmd_pass(int argc, char **argv) {
  return pass_fail(argc, argv, "pass");
}

int lm__cmd_fail(int argc, char **argv) {
  return pass_fail(argc, argv, "fail");
}

static const argspec_t MAINT_FLAGS[] = {
    {"--for", A_VAL}, {"--note", A_VAL}, {"--off", A_BOOL}};

int lm__cmd_maint(int argc, char **argv) {
  parsed_t p;
  int r = parse(&p, argc, argv, MAINT_FLAGS, 3, 1, 0);
  if (r)
    return r > 0 ? EXIT_DONE : EXIT_USAGE;
  char u[LM_UUID_STRLEN + 1];
  const char *dur = flag(&p, "--for"), *note = flag(&p, "--note");
  int off = flag_set(&p, "--off");
  if (uuid_arg(&p, "UUID", p.npos ? p.pos[0] : NULL, u) || !note_ok(&p, note))
    return EXIT_USAGE;
  if (!!dur == off) {
    fprintf(stderr, "livemesh maint: give --for DUR or --off%s\n",
            off ? ", not both" : "");
    return EXIT_USAGE;
  }
  if (off && note) {
    fprintf(stderr, "livemesh maint: --note goes with --for, not --off\n");
    return EXIT_USAGE;
  }
  json_t *req;
  if (dur) {
    uint64_t ms;
    int rc = lm__duration_parse(dur, &ms);
    if (rc || ms == 0 || ms > UINT32_MAX) {
      fprintf(stderr, "livemesh maint: --for: expected a duration longer "
              "than 0 such as 500ms, 30s, 5m, 1h or a number of seconds, "
              "got \"%s\"\n", dur);
      return EXIT_USAGE;
    }
    req = json_pack("{s:s, s:s, s:s}", "cmd", "maint", "uuid", u, "for", dur);
    if (req && note)
      json_object_set_new(req, "note", json_string(note));
  } else {
    req = json_pack("{s:s, s:s, s:b}", "cmd", "maint", "uuid", u, "off", 1);
  }
  return simple_call(&p, req);
}

int lm__cmd_deregister(int argc, char **argv) {
  parsed_t p;
  int r = parse(&p, argc, argv, NULL, 0, 1, 0);
  if (r)
    return r > 0 ? EXIT_DONE : EXIT_USAGE;
  char u[LM_UUID_STRLEN + 1];
  if (uuid_arg(&p, "UUID", p.npos ? p.pos[0] : NULL, u))
    return EXIT_USAGE;
  return simple_call(&p, json_pack("{s:s, s:s}", "cmd", "deregister", "uuid",
                                   u));
}
