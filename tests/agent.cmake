# The `livemesh` binary (mesh/agent/): its configuration layers, the JSON
# shapes of services and the register parser, and the client library with
# the service subcommands against a scripted agent, as cmocka unit tests;
# and the binary from the outside (keygen, config errors, real agents on
# 127.0.0.1, the control protocol, signals, the demo, services end to end)
# as shell scripts.
if(NOT TARGET livemesh)
  return()
endif()

lm_add_test(test_config
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_config.c
  LIBS lm_agent_core
  TIMEOUT 60)

lm_add_test(test_svc_json
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_svc_json.c
  LIBS lm_agent_core
  TIMEOUT 60)

lm_add_test(test_probes
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_probes.c
  LIBS lm_agent_core
  TIMEOUT 60)

find_package(Threads REQUIRED)
lm_add_test(test_svc_client
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_svc_client.c
  LIBS lm_agent_core Threads::Threads
  TIMEOUT 60)
# both reach the client library's internal header (mesh/client/)
foreach(t test_svc_json test_svc_client)
  target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/mesh/client)
endforeach()

add_test(NAME test_cli
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:livemesh>)
set_tests_properties(test_cli PROPERTIES TIMEOUT 240 LABELS "agent;slow")

# Services end to end: one real agent, every service command and refusal.
add_test(NAME test_cli_services
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_services.sh $<TARGET_FILE:livemesh>)
set_tests_properties(test_cli_services PROPERTIES TIMEOUT 240 LABELS "agent;slow")

# Probes and metrics end to end: ready, live (a stopped agent is not live),
# metrics through promtool when it is installed.
add_test(NAME test_probes_cli
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_probes.sh $<TARGET_FILE:livemesh>)
set_tests_properties(test_probes_cli PROPERTIES TIMEOUT 240 LABELS "agent;slow")
set_tests_properties(test_probes_cli PROPERTIES SKIP_RETURN_CODE 77)

# The HTTP API end to end: real agents, real curl; every endpoint against
# the CLI's answers, bad requests, limits, stalled clients.
add_test(NAME test_http
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_http.sh $<TARGET_FILE:livemesh>)
set_tests_properties(test_http PROPERTIES TIMEOUT 240 LABELS "agent;slow")

# Fuzz targets of what reaches the agent from outside: control-socket
# request lines, HTTP paths, queries and bodies (both through the command
# table, against a stopped agent: tests/fuzz/fuzz_agent.h), and the JSON
# config file. The command table's sources are the binary's, compiled in
# again; fuzz_agent.c stands in for agent.c.
pkg_check_modules(LM_FUZZ_MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
set(LM_FUZZ_CMD_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_agent.c
  ${PROJECT_SOURCE_DIR}/mesh/agent/commands.c
  ${PROJECT_SOURCE_DIR}/mesh/agent/agent_services.c
  ${PROJECT_SOURCE_DIR}/mesh/agent/probes_agent.c
  ${PROJECT_SOURCE_DIR}/mesh/agent/agent_bridge.c)
lm_add_fuzz(fuzz_ctl_request ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_ctl_request.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/ctl_request
  SOURCES ${LM_FUZZ_CMD_SOURCES}
  LIBS lm_agent_core lm_trust livemesh_static lm_bridge PkgConfig::JANSSON
  lm_curl_dl)
lm_add_fuzz(fuzz_http_req ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_http_req.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/http_req
  SOURCES ${LM_FUZZ_CMD_SOURCES}
  LIBS lm_agent_core lm_trust livemesh_static lm_bridge PkgConfig::JANSSON
  PkgConfig::LM_FUZZ_MHD lm_curl_dl)
lm_add_fuzz(fuzz_config ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_config.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/config LIBS lm_agent_core)
