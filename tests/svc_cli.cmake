# Services in the agent and the CLI (mesh/svc_cli/, mesh/client/): the JSON
# shapes and the register parser as a cmocka unit test. The end-to-end CLI
# tests come with the agent's side of the protocol.
if(NOT TARGET lm_svc_cli)
  return()
endif()

lm_add_test(test_svc_json
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_svc_json.c
  LIBS lm_svc_json lm_client lm_agent_core
  TIMEOUT 60)

# The client library and the subcommands against a scripted agent.
find_package(Threads REQUIRED)
lm_add_test(test_svc_client
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_svc_client.c
  LIBS lm_svc_cli lm_svc_json lm_client lm_agent_core Threads::Threads
  TIMEOUT 60)
