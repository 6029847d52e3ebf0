/*
 * config.h: the agent's configuration (flags > LIVEMESH_* environment >
 * JSON config file > defaults) and the entry points of the `livemesh`
 * subcommands, shared by main.c, agent.c, cli.c and demo.c.
 *
 * The configuration layer only parses and validates text: it opens no key
 * file, binds nothing and starts nothing, so `livemesh agent --print-config`
 * and the unit tests can run it anywhere. Must never depend on libuv, on the
 * runtime's internals (node.c, swim/) or on trust.h; jansson and libc only
 * (and svc_json.c, which checks the config file's services).
 */
#ifndef LIVEMESH_MESH_CONFIG_H
#define LIVEMESH_MESH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit statuses of every subcommand: 0 done, 1 a runtime failure (cannot
 * bind, the mesh misbehaved), 2 a usage or configuration error (bad flag,
 * bad file, agent unreachable). */
enum { LM__EXIT_OK = 0, LM__EXIT_FAIL = 1, LM__EXIT_USAGE = 2 };

enum { LM__LOGFMT_TEXT = 0, LM__LOGFMT_JSON = 1 };

/* A string list: "join", "cluster_keys", "bridge_etcd". */
typedef struct lm__strlist {
  char **v;
  size_t n;
} lm__strlist_t;

/* Every field is owned (malloc'ed) and may be NULL before defaults are
 * resolved; after lm__config_load() succeeds the ones with a default are
 * filled in. */
typedef struct lm__config {
  char *config_file;
  char *name;
  char *bind;
  char *advertise;
  lm__strlist_t join;
  char *data_dir;
  char *socket;
  char *socket_group;
  char *http;
  /* the HTTP API (http.c): see docs/agent.md */
  uint32_t http_max_conns, http_idle_timeout_s; /* 0: defaults */
  int http_read_only, http_allow_remote;
  char *http_token, *http_tls_cert, *http_tls_key;
  lm__strlist_t cluster_keys;
  char *node_key;
  char *node_cert;
  char *cluster;
  char *encrypt_key;
  lm__strlist_t bridge_etcd;
  /* the etcd bridge (agent_bridge.c): strings NULL when not given */
  char *bridge_layout, *bridge_encoding, *bridge_prefix, *bridge_namespace;
  char *bridge_ca, *bridge_cert, *bridge_key;
  char *bridge_user, *bridge_password_file;
  uint32_t bridge_lease_ttl_s; /* 0: default */
  int log_level;  /* LM_LOG_* */
  int log_format; /* LM__LOGFMT_* */
  uint32_t probe_interval_ms, probe_timeout_ms, indirect_checks;
  uint32_t gossip_interval_ms, pushpull_interval_ms, suspicion_min_mult;
  uint32_t tombstone_ms;
  int allow_exec_checks;          /* exec checks run commands: opt-in */
  uint32_t max_concurrent_checks; /* checks running at once (16) */
  int print_config; /* --print-config: show the result and exit */
  /* The config file's "services": an array of register bodies, each
   * checked by svc_json.c's parser at load; NULL when absent. */
  struct json_t *services;
  /* internal: which options this layer set (bit = option index) */
  uint64_t set;
} lm__config_t;

enum {
  LM__CFG_OK = 0,
  LM__CFG_HELP = 1,   /* --help was given: usage printed, exit 0 */
  LM__CFG_ERROR = -1  /* `err` holds one line naming the problem */
};

/* Parse argv (the words after "agent"), the environment and the config
 * file, validate every value where it was found, merge, and fill in the
 * defaults (data dir, node key and cert paths, socket path, bind...).
 * `env` NULL means the process environment (tests pass their own). */
int lm__config_load(lm__config_t *out, int argc, char *const *argv,
                    char *const *env, char *err, size_t errcap);
void lm__config_free(lm__config_t *c);
/* The resolved configuration as a JSON text (malloc'ed), keys as in the
 * config file. */
char *lm__config_to_json(const lm__config_t *c);
/* Calls `cb` once per option whose value differs between a and b, with
 * both values as text: how a reload reports what changed. */
void lm__config_diff(const lm__config_t *a, const lm__config_t *b,
                     void (*cb)(void *ud, const char *key, const char *old_v,
                                const char *new_v),
                     void *ud);
void lm__config_usage(void);

/* Log levels by name: "error", "warn", "info", "debug"; -1 if unknown. */
int lm__log_level_parse(const char *s);
const char *lm__log_level_name(int level);
/* HOST:PORT where HOST is an IPv4 literal, [IPv6], "localhost" or empty. */
int lm__hostport_valid(const char *s);
/* mkdir -p with `mode` for every directory it creates; 0 or -errno. */
int lm__mkdirs(const char *path, unsigned mode);
/* The default data directory and socket path for this user. */
void lm__default_data_dir(char *out, size_t cap);
void lm__default_socket(char *out, size_t cap);

/* Subcommands: argv[0] is the subcommand's name; each returns an exit
 * status. */
int lm__cmd_agent(int argc, char **argv);
int lm__cmd_members(int argc, char **argv);
int lm__cmd_leave(int argc, char **argv);
int lm__cmd_stats(int argc, char **argv);
int lm__cmd_ping(int argc, char **argv);
int lm__cmd_keygen(int argc, char **argv);
int lm__cmd_demo(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
