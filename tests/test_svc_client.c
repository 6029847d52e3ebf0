/*
 * test_svc_client.c: the client library (mesh/client/client.c) and the
 * service subcommands (mesh/agent/cli_services.c) against a scripted
 * agent on a Unix socket: one connection for many calls, the answer
 * matched by its id, refusals mapped to codes with the agent's message,
 * watch lines streamed, and the CLI's exit statuses, with every usage
 * error caught before the agent is contacted.
 *
 * The scripted agent serves one connection at a time, in a thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli_services.h"
#include "client_internal.h"

#define UUID1 "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"

static char sock_path[108];
static int listen_fd = -1;
static pthread_t server;
static volatile int connections, requests;

static void send_line(int fd, json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT);
  size_t n = strlen(s);
  s[n] = '\n';
  /* the client may have hung up (a watch it ended): no SIGPIPE for that */
  ssize_t k = send(fd, s, n + 1, MSG_NOSIGNAL);
  (void)k;
  free(s);
  json_decref(j);
}

static json_t *with_id(json_t *resp, json_t *req) {
  json_t *id = json_object_get(req, "id");
  if (id)
    json_object_set(resp, "id", id);
  return resp;
}

/* One request; returns 0 to go on, 1 to close the connection. */
static int answer(int fd, json_t *req) {
  const char *cmd = json_string_value(json_object_get(req, "cmd"));
  requests++;
  if (!strcmp(cmd, "is-up")) {
    const char *host = json_string_value(json_object_get(req, "host"));
    if (host && !strcmp(host, "late")) {
      /* an answer to an earlier call first: the client must skip it */
      json_t *stale = json_pack("{s:b, s:b, s:s}", "ok", 1, "up", 0,
                                "status", "down");
      json_object_set_new(stale, "id", json_integer(
          json_integer_value(json_object_get(req, "id")) - 1));
      send_line(fd, stale);
      host = "web1";
    }
    if (host && !strcmp(host, "web1"))
      send_line(fd, with_id(json_pack("{s:b, s:b, s:s, s:s, s:s, s:s, s:s, "
                                      "s:i, s:b}", "ok", 1, "up", 1,
                                      "status", "up", "member_status",
                                      "suspect", "uuid", UUID1, "type",
                                      "api", "host", "web1", "age_ms", 1200,
                                      "stale", 0), req));
    else if (host && !strcmp(host, "web2"))
      send_line(fd, with_id(json_pack("{s:b, s:b, s:s, s:s, s:s, s:s, s:s, "
                                      "s:i, s:b}", "ok", 1, "up", 0,
                                      "status", "maintenance",
                                      "member_status", "alive", "uuid", UUID1,
                                      "type", "api", "host", "web2", "age_ms",
                                      5, "stale", 0), req));
    else
      send_line(fd, with_id(json_pack("{s:b, s:b, s:s, s:s, s:n, s:n, s:n, "
                                      "s:n, s:b}", "ok", 1, "up", 0, "status",
                                      "unknown", "member_status", "unknown",
                                      "uuid", "type", "host", "age_ms",
                                      "stale", 0), req));
    return 0;
  }
  if (!strcmp(cmd, "pass") || !strcmp(cmd, "deregister") ||
      !strcmp(cmd, "maint") || !strcmp(cmd, "fail")) {
    const char *u = json_string_value(json_object_get(req, "uuid"));
    if (u && !strcmp(u, UUID1))
      send_line(fd, with_id(json_pack("{s:b}", "ok", 1), req));
    else
      send_line(fd, with_id(json_pack("{s:b, s:s, s:s}", "ok", 0, "error",
                                      "unknown uuid", "code", "not_found"),
                            req));
    return 0;
  }
  if (!strcmp(cmd, "register")) {
    /* the agent's refusals by code, as the real agent words them */
    const char *type = json_string_value(json_object_get(req, "type"));
    if (type && !strcmp(type, "taken"))
      send_line(fd, with_id(json_pack("{s:b, s:s, s:s}", "ok", 0, "error",
                                      "uuid: already registered", "code",
                                      "exists"),
                            req));
    else if (type && !strcmp(type, "cmd"))
      send_line(fd, with_id(json_pack("{s:b, s:s, s:s}", "ok", 0, "error",
                                      "exec checks are not allowed",
                                      "code", "not_permitted"),
                            req));
    else
      send_line(fd, with_id(json_pack("{s:b, s:s}", "ok", 1, "uuid", UUID1),
                            req));
    return 0;
  }
  if (!strcmp(cmd, "services")) {
    send_line(fd, with_id(json_pack("{s:b, s:i, s:[{s:s, s:s, s:s, s:s, s:s, "
                                    "s:i, s:n, s:s, s:b}]}", "ok", 1,
                                    "index", 3, "services", "uuid", UUID1,
                                    "type", "api", "name", "api-2", "host",
                                    "web1", "status", "up", "worker", 2,
                                    "pid", "created_at",
                                    "2026-11-22T01:02:03.456Z", "stale", 0),
                          req));
    return 0;
  }
  if (!strcmp(cmd, "watch")) {
    send_line(fd, with_id(json_pack("{s:b, s:i}", "ok", 1, "watch", 1), req));
    for (int i = 1; i <= 3; i++)
      send_line(fd, json_pack("{s:i, s:s, s:s, s:s, s:s}", "seq", i, "kind",
                              "service", "uuid", UUID1, "old", "up", "new",
                              "down"));
    return 1; /* the agent goes away */
  }
  send_line(fd, with_id(json_pack("{s:b, s:s}", "ok", 0, "error",
                                  "unknown command"),
                        req));
  return 0;
}

static void *serve(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0)
      return NULL;
    connections++;
    char buf[65536];
    size_t len = 0;
    int done = 0;
    while (!done) {
      ssize_t k = read(fd, buf + len, sizeof buf - len);
      if (k <= 0)
        break;
      len += (size_t)k;
      char *nl;
      while (!done && (nl = memchr(buf, '\n', len))) {
        json_t *req = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
        if (req)
          done = answer(fd, req);
        json_decref(req);
        len -= (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, len);
      }
    }
    close(fd);
  }
}

static int setup(void **state) {
  (void)state;
  snprintf(sock_path, sizeof sock_path, "/tmp/lm-svc-client.%d.sock",
           (int)getpid());
  unlink(sock_path);
  listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
  if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) ||
      listen(listen_fd, 8))
    return -1;
  return pthread_create(&server, NULL, serve, NULL);
}

static int teardown(void **state) {
  (void)state;
  shutdown(listen_fd, SHUT_RDWR);
  close(listen_fd);
  pthread_join(server, NULL);
  unlink(sock_path);
  return 0;
}

static void test_unreachable(void **state) {
  (void)state;
  lm_client_t *c = NULL;
  char err[512];
  assert_int_equal(lm__client_open_err(&c, "/nonexistent/lm.sock", 100, err,
                                       sizeof err),
                   LM_EIO);
  assert_null(c);
  assert_non_null(strstr(err, "no agent at /nonexistent/lm.sock"));
  assert_int_equal(lm_client_open(&c, "/nonexistent/lm.sock", 100), LM_EIO);
}

static void test_is_up(void **state) {
  (void)state;
  int before = connections;
  lm_client_t *c;
  assert_int_equal(lm_client_open(&c, sock_path, 2000), 0);
  lm_is_up_t r;
  assert_int_equal(lm_client_is_up(c, "api", "web1", &r), 1);
  assert_int_equal(r.found, 1);
  assert_int_equal(r.up, 1);
  assert_int_equal(r.status, LM_SVC_UP);
  assert_int_equal(r.member_status, LM_SUSPECT);
  assert_string_equal(r.type, "api");
  assert_string_equal(r.host, "web1");
  assert_int_equal(r.age_ms, 1200);
  char u[LM_UUID_STRLEN + 1];
  lm_uuid_format(u, r.uuid);
  assert_string_equal(u, UUID1);
  assert_int_equal(lm_client_is_up(c, "api", "web2", &r), 0);
  assert_int_equal(r.found, 1);
  assert_int_equal(r.status, LM_SVC_MAINT);
  assert_int_equal(lm_client_is_up(c, "api", "web9", &r), 0);
  assert_int_equal(r.found, 0);
  assert_int_equal(lm_client_is_up(c, "api", "web1", NULL), 1);
  /* a late answer to an earlier call is skipped, not taken */
  assert_int_equal(lm_client_is_up(c, "api", "late", &r), 1);
  /* escaping: a quote in the host reaches the agent as a string */
  assert_int_equal(lm_client_is_up(c, "api", "we\"b", &r), 0);
  assert_int_equal(r.found, 0);
  uint8_t uuid[LM_UUID_LEN];
  lm_uuid_parse(uuid, UUID1);
  assert_int_equal(lm_client_is_up_uuid(c, uuid, &r), 0);
  /* all on one connection */
  assert_int_equal(connections - before, 1);
  assert_int_equal(lm_client_is_up(c, "", "web1", &r), LM_EINVAL);
  lm_client_close(c);
}

static void test_calls_and_refusals(void **state) {
  (void)state;
  lm_client_t *c;
  assert_int_equal(lm_client_open(&c, sock_path, 2000), 0);
  uint8_t uuid[LM_UUID_LEN], other[LM_UUID_LEN] = {1};
  lm_uuid_parse(uuid, UUID1);
  assert_int_equal(lm_client_pass(c, uuid, "fine"), 0);
  assert_string_equal(lm_client_error(c), "");
  assert_int_equal(lm_client_pass(c, other, NULL), LM_ENOTFOUND);
  assert_string_equal(lm_client_error(c), "unknown uuid");
  assert_int_equal(lm_client_fail(c, uuid, NULL), 0);
  assert_int_equal(lm_client_maint(c, uuid, 0, 1, NULL), 0);
  assert_int_equal(lm_client_deregister(c, other), LM_ENOTFOUND);
  lm_service_spec_t spec = {.type = "api", .worker = -1, .ttl_ms = 30000};
  uint8_t got[LM_UUID_LEN];
  assert_int_equal(lm_client_register(c, &spec, 0, got), 0);
  assert_memory_equal(got, uuid, LM_UUID_LEN);
  spec.type = "taken";
  assert_int_equal(lm_client_register(c, &spec, 0, got), LM_EEXIST);
  spec.type = "cmd";
  assert_int_equal(lm_client_register(c, &spec, 0, got), LM_EPERM);
  assert_string_equal(lm_client_error(c), "exec checks are not allowed");
  char *resp = NULL;
  assert_int_equal(lm_client_request(c, "{\"cmd\":\"fly\"}", &resp),
                   LM_EINVAL);
  assert_non_null(resp);
  assert_non_null(strstr(resp, "unknown command"));
  assert_string_equal(lm_client_error(c), "unknown command");
  free(resp);
  assert_int_equal(lm_client_request(c, "{\"cmd\":\"services\",\"id\":"
                                        "\"mine\"}", &resp), 0);
  assert_non_null(strstr(resp, "\"id\":\"mine\""));
  free(resp);
  assert_int_equal(lm_client_request(c, "[1]", &resp), LM_EINVAL);
  assert_null(resp);
  lm_client_close(c);
}

static int count_lines(void *ud, const char *line) {
  int *n = ud;
  (*n)++;
  assert_non_null(strstr(line, "\"kind\":\"service\""));
  return 0;
}

static int stop_at_two(void *ud, const char *line) {
  (void)line;
  return ++*(int *)ud == 2;
}

static void test_watch(void **state) {
  (void)state;
  lm_client_t *c;
  assert_int_equal(lm_client_open(&c, sock_path, 2000), 0);
  int n = 0;
  lm_watch_filter_t f = {.type = "api"};
  /* three events, then the agent goes away */
  assert_int_equal(lm_client_watch(c, &f, count_lines, &n, 2000), LM_EIO);
  assert_int_equal(n, 3);
  /* the connection was used up by the watch */
  assert_int_equal(lm_client_is_up(c, "api", "web1", NULL), LM_ESTATE);
  lm_client_close(c);
  assert_int_equal(lm_client_open(&c, sock_path, 2000), 0);
  n = 0;
  assert_int_equal(lm_client_watch(c, NULL, stop_at_two, &n, 0), 0);
  assert_int_equal(n, 2);
  lm_client_close(c);
}

/* Runs a subcommand with stdout and stderr sent to /dev/null. */
static int run(const char *const *args) {
  char *argv[32];
  int argc = 0;
  for (; args[argc]; argc++)
    argv[argc] = (char *)args[argc];
  argv[argc] = NULL;
  fflush(stdout);
  fflush(stderr);
  /* LM_TEST_VERBOSE=1 shows what the commands print */
  int quiet = !getenv("LM_TEST_VERBOSE");
  int out = dup(1), err = dup(2), null = open("/dev/null", O_WRONLY);
  if (quiet) {
    dup2(null, 1);
    dup2(null, 2);
  }
  close(null);
  int rc;
  const char *cmd = argv[0];
  if (!strcmp(cmd, "is-up"))
    rc = lm__cmd_is_up(argc, argv);
  else if (!strcmp(cmd, "services"))
    rc = lm__cmd_services(argc, argv);
  else if (!strcmp(cmd, "register"))
    rc = lm__cmd_register(argc, argv);
  else if (!strcmp(cmd, "pass"))
    rc = lm__cmd_pass(argc, argv);
  else if (!strcmp(cmd, "fail"))
    rc = lm__cmd_fail(argc, argv);
  else if (!strcmp(cmd, "maint"))
    rc = lm__cmd_maint(argc, argv);
  else if (!strcmp(cmd, "deregister"))
    rc = lm__cmd_deregister(argc, argv);
  else
    rc = lm__cmd_watch(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(out, 1);
  dup2(err, 2);
  close(out);
  close(err);
  return rc;
}

#define S "--socket", sock_path

static void test_cli_exit_statuses(void **state) {
  (void)state;
  /* is-up: 0 up, 1 down, 1 unknown, 2 unreachable */
  assert_int_equal(run((const char *[]){"is-up", "api", "web1", S, NULL}), 0);
  assert_int_equal(run((const char *[]){"is-up", "api", "web2", S, NULL}), 1);
  assert_int_equal(run((const char *[]){"is-up", "api", "web9", S, "-o",
                                        "json", NULL}),
                   1);
  assert_int_equal(run((const char *[]){"is-up", "--uuid", UUID1, S, "-q",
                                        NULL}),
                   1);
  assert_int_equal(run((const char *[]){"is-up", "api", "web1", "--socket",
                                        "/nonexistent/lm.sock", NULL}),
                   2);
  assert_int_equal(run((const char *[]){"services", S, NULL}), 0);
  assert_int_equal(run((const char *[]){"services", S, "-o", "json",
                                        "--status", "up", NULL}),
                   0);
  assert_int_equal(run((const char *[]){"register", "--type", "api", "--ttl",
                                        "30s", "--tag", "a", "--meta",
                                        "k=v=w", S, NULL}),
                   0);
  assert_int_equal(run((const char *[]){"pass", UUID1, "--note", "ok", S,
                                        NULL}),
                   0);
  assert_int_equal(run((const char *[]){"fail", UUID1, S, NULL}), 0);
  assert_int_equal(run((const char *[]){"maint", UUID1, "--for", "5m", S,
                                        NULL}),
                   0);
  assert_int_equal(run((const char *[]){"maint", UUID1, "--off", S, NULL}),
                   0);
  assert_int_equal(run((const char *[]){"deregister", UUID1, S, NULL}), 0);
  /* the agent refuses: 1 */
  assert_int_equal(run((const char *[]){"pass",
                                        "00000000-0000-0000-0000-000000000001",
                                        S, NULL}),
                   1);
  /* watch: events until the agent goes away */
  assert_int_equal(run((const char *[]){"watch", "--type", "api", S, NULL}),
                   1);
}

/* register --ephemeral holds its connection until stdin closes or a
 * signal comes, and exits 0 either way. */
static pid_t ephemeral_child(int *stdin_w) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  int before = requests;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(p[0], 0);
    close(p[0]);
    close(p[1]);
    _exit(run((const char *[]){"register", "--ephemeral", "--type", "api",
                               S, NULL}));
  }
  close(p[0]);
  *stdin_w = p[1];
  for (int i = 0; i < 500 && requests == before; i++)
    usleep(10000);
  assert_int_equal(requests, before + 1);
  usleep(100000);
  int st;
  assert_int_equal(waitpid(pid, &st, WNOHANG), 0); /* still holding */
  return pid;
}

static void test_cli_register_ephemeral(void **state) {
  (void)state;
  int w, st;
  pid_t pid = ephemeral_child(&w);
  close(w); /* stdin closed */
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  pid = ephemeral_child(&w);
  kill(pid, SIGTERM);
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  close(w);
}

static void test_cli_usage_errors(void **state) {
  (void)state;
  const char *const *BAD[] = {
      (const char *[]){"is-up", "api", S, NULL},
      (const char *[]){"is-up", S, NULL},
      (const char *[]){"is-up", "api", "web1", "--uuid", UUID1, S, NULL},
      (const char *[]){"is-up", "--uuid", "nope", S, NULL},
      (const char *[]){"is-up", "api", "web1", "-o", "yaml", S, NULL},
      (const char *[]){"is-up", "api", "web1", "--bogus", S, NULL},
      (const char *[]){"services", "--status", "sleepy", S, NULL},
      (const char *[]){"services", "extra", S, NULL},
      (const char *[]){"services", "--type", S, NULL},
      (const char *[]){"register", S, NULL},
      (const char *[]){"register", "--type", "api", "--port", "http", S,
                       NULL},
      (const char *[]){"register", "--type", "api", "--port", "0", S, NULL},
      (const char *[]){"register", "--type", "api", "--pid", "-4", S, NULL},
      (const char *[]){"register", "--type", "api", "--meta", "novalue", S,
                       NULL},
      (const char *[]){"register", "--type", "api", "--meta", "k=1",
                       "--meta", "k=2", S, NULL},
      (const char *[]){"register", "--type", "api", "--ttl", "0", S, NULL},
      (const char *[]){"register", "--type", "api", "--ttl", "5s",
                       "--tcp-check", "h:1", S, NULL},
      (const char *[]){"register", "--type", "api", "--http-check",
                       "localhost:80", S, NULL},
      (const char *[]){"register", "--type", "api", "--uuid", "x", S, NULL},
      (const char *[]){"register", "--type", "api", "--ephemeral=yes", S,
                       NULL},
      (const char *[]){"register", "--type", "api", "--type", "b", S, NULL},
      (const char *[]){"pass", S, NULL},
      (const char *[]){"pass", "not-a-uuid", S, NULL},
      (const char *[]){"pass", UUID1, UUID1, S, NULL},
      (const char *[]){"maint", UUID1, S, NULL},
      (const char *[]){"maint", UUID1, "--for", "5m", "--off", S, NULL},
      (const char *[]){"maint", UUID1, "--for", "soon", S, NULL},
      (const char *[]){"maint", UUID1, "--for", "0s", S, NULL},
      (const char *[]){"maint", UUID1, "--off", "--note", "x", S, NULL},
      (const char *[]){"deregister", S, NULL},
      (const char *[]){"deregister", UUID1, "--note", "x", S, NULL},
      (const char *[]){"watch", "--members", "--all", S, NULL},
      (const char *[]){"watch", "--uuid", "x", S, NULL},
      (const char *[]){"watch", "-o", "json", S, NULL},
  };
  for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
    int before = connections;
    int rc = run(BAD[i]);
    if (rc != 2)
      fail_msg("case %zu (%s %s): exit %d, wanted 2", i, BAD[i][0],
               BAD[i][1], rc);
    if (connections != before)
      fail_msg("case %zu (%s %s): contacted the agent", i, BAD[i][0],
               BAD[i][1]);
  }
  /* --help: 0, without the agent */
  int before = connections;
  assert_int_equal(run((const char *[]){"register", "--help", NULL}), 0);
  assert_int_equal(connections, before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unreachable),
      cmocka_unit_test(test_is_up),
      cmocka_unit_test(test_calls_and_refusals),
      cmocka_unit_test(test_watch),
      cmocka_unit_test(test_cli_exit_statuses),
      cmocka_unit_test(test_cli_register_ephemeral),
      cmocka_unit_test(test_cli_usage_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
