/*
 * cli_services.h: the service subcommands of `livemesh` (cli_services.c),
 * entry points like those in config.h: argv[0] is the subcommand's name,
 * each returns an exit status (0 done, or for is-up: up; 1 failed, or for
 * is-up: down or unknown; 2 a usage error or an unreachable agent).
 *
 * Beside config.h's entry points, in the same folder (mesh/agent/).
 */
#ifndef LIVEMESH_MESH_CLI_SERVICES_H
#define LIVEMESH_MESH_CLI_SERVICES_H

#ifdef __cplusplus
extern "C" {
#endif

int lm__cmd_services(int argc, char **argv);
int lm__cmd_is_up(int argc, char **argv);
int lm__cmd_watch(int argc, char **argv);
int lm__cmd_register(int argc, char **argv);
int lm__cmd_pass(int argc, char **argv);
int lm__cmd_fail(int argc, char **argv);
int lm__cmd_maint(int argc, char **argv);
int lm__cmd_deregister(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
