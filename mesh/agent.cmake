# The `livemesh` binary: agent, command-line client, keygen and demo.
# config.c and control.c are also a small static library, so unit tests can
# exercise the configuration layers and the control protocol without the
# binary.
add_library(lm_agent_core STATIC config.c control.c)
target_include_directories(lm_agent_core PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(lm_agent_core PUBLIC livemesh_static PkgConfig::JANSSON)

add_executable(livemesh main.c agent.c cli.c demo.c)
target_link_libraries(livemesh PRIVATE lm_agent_core livemesh_static lm_trust
  PkgConfig::JANSSON)
install(TARGETS livemesh RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
