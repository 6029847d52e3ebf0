/*
 * cli_probes.c: `livemesh ready`, `livemesh live` and `livemesh metrics`,
 * the agent's probes from a shell: a container HEALTHCHECK, a systemd
 * ExecStartPost or a script waits on their exit status.
 *
 *   ready    0 ready, 1 not ready (or no answer within --timeout), 2 usage
 *            error or no agent to ask
 *   live     0 live, 1 not live (or no answer within --timeout: a stopped
 *            or stuck loop answers nothing), 2 usage error or no agent
 *   metrics  0 the text printed, 1 the agent refused, 2 usage or no agent
 *
 * What ready and live mean is in probes.h and docs/agent.md ("Health and
 * metrics"). Must never depend on the agent's internals: it reads the
 * agent's answers only.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_probes.h"
#include "config.h"
#include "control.h"
#include "svc_json.h"

#define DEFAULT_TIMEOUT_MS 3000

typedef struct opts {
  const char *socket;
  int json, verbose;
  uint64_t timeout_ms;
} opts_t;

static void usage(const char *cmd) {
  if (!strcmp(cmd, "ready"))
    printf("Usage: livemesh ready [-o text|json] [--timeout DUR] "
           "[--socket PATH]\n\n"
           "Is the local agent ready? Ready means: it has joined the mesh "
           "(or runs alone:\nno --join), its view has converged (the count "
           "of members alive has not changed\nfor 2 s, and with --join "
           "another member is alive), every service registered on\nit is "
           "up or in maintenance, and it is live. Prints each check, "
           "\"[+]NAME ok\" or\n\"[-]NAME failed: WHY\", then \"ready\" or "
           "\"not ready\"; -o json prints\n{\"ready\", \"checks\": {NAME: "
           "{\"status\", \"detail\", ...}}}.\n\n"
           "Exit status: 0 ready, 1 not ready (or no answer within "
           "--timeout, 3s by\ndefault), 2 a usage error or no agent to "
           "ask.\n");
  else if (!strcmp(cmd, "live"))
    printf("Usage: livemesh live [-o text|json] [--timeout DUR] "
           "[--socket PATH]\n\n"
           "Is the local agent's event loop responsive? Live means: its "
           "watchdog ticked\nwithin the last 2 s and no tick in the last "
           "5 s ran 1 s late or more. A\nstopped or stuck agent answers "
           "nothing: no answer within --timeout (3s by\ndefault) is \"not "
           "live\".\n\n"
           "Exit status: 0 live, 1 not live or no answer in time, 2 a usage "
           "error or no\nagent to ask (nothing listens on the socket).\n");
  else
    printf("Usage: livemesh metrics [--timeout DUR] [--socket PATH]\n\n"
           "Prints the agent's counters as Prometheus text (format 0.0.4), "
           "the same text\nas GET /metrics.\n");
  printf("\nThe agent is found through --socket PATH, else $LIVEMESH_SOCKET, "
         "else the\ndefault path.\n");
}

/* -1 usage error (printed), 1 --help, 0 parsed. */
static int parse(int argc, char **argv, opts_t *o, int outputs) {
  memset(o, 0, sizeof *o);
  o->timeout_ms = DEFAULT_TIMEOUT_MS;
  const char *cmd = argv[0];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(cmd);
      return 1;
    }
    const char *eq = strchr(a, '=');
    size_t klen = eq && a[0] == '-' ? (size_t)(eq - a) : strlen(a);
#define IS(f) (klen == strlen(f) && !strncmp(a, f, klen))
    int is_sock = IS("--socket"), is_time = IS("--timeout");
    int is_out = outputs && (IS("-o") || IS("--output"));
#undef IS
    if (!is_sock && !is_time && !is_out) {
      fprintf(stderr, "livemesh %s: unknown %s \"%s\" (see livemesh %s "
              "--help)\n", cmd, a[0] == '-' ? "flag" : "argument", a, cmd);
      return -1;
    }
    const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
    if (!v) {
      fprintf(stderr, "livemesh %s: %s needs a value\n", cmd, a);
      return -1;
    }
    if (is_sock) {
      o->socket = v;
    } else if (is_time) {
      if (lm__duration_parse(v, &o->timeout_ms) || o->timeout_ms == 0 ||
          o->timeout_ms > INT_MAX) {
        fprintf(stderr, "livemesh %s: --timeout: expected a duration such "
                "as 500ms or 3s, got \"%s\"\n", cmd, v);
        return -1;
      }
    } else if (!strcmp(v, "json") || !strcmp(v, "text") ||
               !strcmp(v, "table")) {
      o->json = !strcmp(v, "json");
    } else {
      fprintf(stderr, "livemesh %s: -o: expected text or json, got \"%s\"\n",
              cmd, v);
      return -1;
    }
  }
  return 0;
}

/* One request; NULL with *code set (and a message printed) when there is
 * no answer: 1 for a timeout, 2 for no agent. */
static json_t *ask(const opts_t *o, const char *cmd, int *code) {
  char path[PATH_MAX], err[1024];
  lm__ctl_client_path(o->socket, path, sizeof path);
  json_t *req = json_pack("{s:s}", "cmd", cmd), *resp = NULL;
  int rc = lm__ctl_call(path, req, &resp, (int)o->timeout_ms, err, sizeof err);
  json_decref(req);
  if (rc == -2) {
    fprintf(stderr, "livemesh %s: %s: the agent is not responsive\n", cmd,
            err);
    *code = LM__EXIT_FAIL;
    return NULL;
  }
  if (rc) {
    fprintf(stderr, "livemesh %s: %s\n", cmd, err);
    *code = LM__EXIT_USAGE;
    return NULL;
  }
  if (!json_is_true(json_object_get(resp, "ok"))) {
    const char *e = json_string_value(json_object_get(resp, "error"));
    fprintf(stderr, "livemesh %s: the agent says: %s\n", cmd,
            e ? e : "request failed");
    json_decref(resp);
    *code = LM__EXIT_FAIL;
    return NULL;
  }
  return resp;
}

/* ready and live: the verdict under `key`, the checks beside it. */
static int verdict(int argc, char **argv, const char *key) {
  opts_t o;
  int p = parse(argc, argv, &o, 1);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = ask(&o, argv[0], &code);
  if (!resp)
    return code;
  int yes = json_is_true(json_object_get(resp, key));
  json_t *checks = json_object_get(resp, "checks");
  if (o.json) {
    json_t *out = json_pack("{s:b, s:O}", key, yes, "checks",
                            checks ? checks : json_null());
    char *s = out ? json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                  : NULL;
    if (s)
      printf("%s\n", s);
    free(s);
    json_decref(out);
  } else {
    const char *k;
    json_t *v;
    json_object_foreach(checks, k, v) {
      if (json_is_true(json_object_get(v, "status")))
        printf("[+]%s ok\n", k);
      else
        printf("[-]%s failed: %s\n", k,
               json_string_value(json_object_get(v, "detail"))
                   ? json_string_value(json_object_get(v, "detail"))
                   : "no reason given");
    }
    printf("%s%s\n", yes ? "" : "not ", key);
  }
  json_decref(resp);
  return yes ? LM__EXIT_OK : LM__EXIT_FAIL;
}

int lm__cmd_ready(int argc, char **argv) { return verdict(argc, argv, "ready"); }

int lm__cmd_live(int argc, char **argv) { return verdict(argc, argv, "live"); }

int lm__cmd_metrics(int argc, char **argv) {
  opts_t o;
  int p = parse(argc, argv, &o, 0);
  if (p)
    return p > 0 ? LM__EXIT_OK : LM__EXIT_USAGE;
  int code;
  json_t *resp = ask(&o, "metrics", &code);
  if (!resp)
    return code;
  const char *text = json_string_value(json_object_get(resp, "text"));
  if (!text) {
    fprintf(stderr, "livemesh metrics: the agent's answer has no text\n");
    json_decref(resp);
    return LM__EXIT_FAIL;
  }
  fputs(text, stdout);
  json_decref(resp);
  return LM__EXIT_OK;
}
