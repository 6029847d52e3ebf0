/*
 * cli_probes.h: `livemesh ready`, `livemesh live` and `livemesh metrics`
 * (cli_probes.c), entry points like those in config.h: argv[0] is the
 * subcommand's name, each returns an exit status. ready and live: 0 yes,
 * 1 no (or no answer within --timeout), 2 a usage error or no agent.
 *
 * Beside config.h's entry points, in the same folder (mesh/agent/).
 */
#ifndef LIVEMESH_MESH_CLI_PROBES_H
#define LIVEMESH_MESH_CLI_PROBES_H

#ifdef __cplusplus
extern "C" {
#endif

int lm__cmd_ready(int argc, char **argv);
int lm__cmd_live(int argc, char **argv);
int lm__cmd_metrics(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
