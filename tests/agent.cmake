# The `livemesh` binary (mesh/agent/): its configuration layers as a
# cmocka unit test, and the binary from the outside (keygen, config errors,
# real agents on 127.0.0.1, the control protocol, signals, the demo) as a
# shell script.
if(NOT TARGET livemesh)
  return()
endif()

lm_add_test(test_config
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_config.c
  LIBS lm_agent_core
  TIMEOUT 60)

add_test(NAME test_cli
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:livemesh>)
set_tests_properties(test_cli PROPERTIES TIMEOUT 240 LABELS "agent;slow")
