/*
 * main.c: the `livemesh` binary: picks the subcommand and hands over. The
 * agent (agent.c), the client commands (cli.c), keygen (keygen.c) and the
 * demo (demo.c) live in their own files; this one only knows their names,
 * in one table. (The requests the agent answers are another table:
 * commands.c.)
 *
 * Must never depend on anything but config.h's, cli_services.h's and
 * cli_probes.h's entry points and the public API's version string.
 */
#include <livemesh/livemesh.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli_probes.h"
#include "cli_services.h"
#include "config.h"

/* Every subcommand, one row each. A row without `run` would be part of
 * the documented interface but not built yet: not listed in the usage, and
 * answered "not available yet" rather than "unknown command". */
typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command_t;

static const command_t COMMANDS[] = {
    {"agent", lm__cmd_agent, "run a node of the mesh (a daemon)"},
    {"members", lm__cmd_members, "list the members the local agent sees"},
    {"leave", lm__cmd_leave, "make the local agent leave the mesh and exit"},
    {"stats", lm__cmd_stats, "the local agent's counters"},
    {"ping", lm__cmd_ping, "check that the local agent answers"},
    {"keygen", lm__cmd_keygen, "create cluster keys, node keys and "
                               "certificates, cluster secrets"},
    {"services", lm__cmd_services, "list the services in the agent's view"},
    {"is-up", lm__cmd_is_up, "is a service up? (exit 0 up, 1 down or "
                             "unknown)"},
    {"watch", lm__cmd_watch, "stream service or member transitions as JSON "
                             "lines"},
    {"register", lm__cmd_register, "register a service on the local agent"},
    {"pass", lm__cmd_pass, "heartbeat of a --ttl service"},
    {"fail", lm__cmd_fail, "mark a --ttl service down now"},
    {"maint", lm__cmd_maint, "put a service in maintenance, or end it"},
    {"deregister", lm__cmd_deregister, "remove a service from the agent"},
    {"ready", lm__cmd_ready, "is the agent ready? (exit 0 ready, 1 not, "
                             "2 no agent)"},
    {"live", lm__cmd_live, "is the agent's loop responsive? (exit 0 live, "
                           "1 not, 2 no agent)"},
    {"metrics", lm__cmd_metrics, "the agent's counters as Prometheus text"},
    {"demo", lm__cmd_demo, "a local mesh on loopback, shown live"},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const command_t *find(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(COMMANDS[i].name, name))
      return &COMMANDS[i];
  return NULL;
}

static void usage(FILE *f) {
  fprintf(f, "Usage: livemesh COMMAND [FLAGS]\n\n"
             "livemesh: a gossip-based, peer-to-peer liveness mesh.\n\n"
             "Commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (COMMANDS[i].run)
      fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
  fprintf(f, "\n`livemesh COMMAND --help` tells more. Try `livemesh demo`.\n"
             "Exit status: 0 done, 1 failed, 2 usage error or agent not "
             "reachable.\n");
}

int main(int argc, char **argv) {
  /* a client that hangs up must not kill the agent writing to it */
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    usage(stderr);
    return LM__EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    if (argc > 2 && strcmp(cmd, "help") == 0) {
      char *sub[] = {argv[2], "--help", NULL};
      const command_t *c = find(argv[2]);
      if (c && c->run)
        return c->run(2, sub);
    }
    usage(stdout);
    return LM__EXIT_OK;
  }
  if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") ||
      !strcmp(cmd, "version")) {
    printf("livemesh %s\n", lm_version());
    return LM__EXIT_OK;
  }
  const command_t *c = find(cmd);
  if (c && c->run)
    return c->run(argc - 1, argv + 1);
  if (c) {
    fprintf(stderr, "livemesh: \"%s\" is not available yet\n", cmd);
    return LM__EXIT_USAGE;
  }
  fprintf(stderr, "livemesh: unknown command \"%s\" (see livemesh --help)\n",
          cmd);
  return LM__EXIT_USAGE;
}
