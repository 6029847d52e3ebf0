# Test tools driven by the multi-process tests (tests/multiproc/): small
# programs that play a part no agent will, built with the tests and never
# installed.
#   forge_svc  an insider (a member with a valid certificate) that sends a
#              service list in another member's name, signed with its own
#              key (multiproc_services). It reaches into the node's
#              internals to build and send the message, like
#              test_node_services does.
#   insider    a member turned hostile: forged records, leaves and
#              services in another member's name, a spoofed sender,
#              accusations beyond any signed incarnation, replays and a
#              flood of dead verdicts (multiproc_insider).
#   flood      UDP datagrams at a fixed rate: random bytes, or real
#              datagrams with their authentication tampered
#              (multiproc_flood; it reads the built binary beside the agent).
add_executable(flood ${CMAKE_CURRENT_SOURCE_DIR}/tools/flood.c)

if(NOT TARGET livemesh_static OR NOT TARGET lm_store)
  return()
endif()

add_executable(forge_svc ${CMAKE_CURRENT_SOURCE_DIR}/tools/forge_svc.c)
target_link_libraries(forge_svc PRIVATE livemesh_static lm_store
  PkgConfig::MSGPACK)
target_include_directories(forge_svc PRIVATE
  ${PROJECT_SOURCE_DIR}/mesh/node ${PROJECT_SOURCE_DIR}/mesh/trust
  ${PROJECT_SOURCE_DIR}/swim ${PROJECT_SOURCE_DIR}/store)

add_executable(insider ${CMAKE_CURRENT_SOURCE_DIR}/tools/insider.c)
target_link_libraries(insider PRIVATE livemesh_static lm_store
  PkgConfig::MSGPACK)
target_include_directories(insider PRIVATE
  ${PROJECT_SOURCE_DIR}/mesh/node ${PROJECT_SOURCE_DIR}/mesh/trust
  ${PROJECT_SOURCE_DIR}/swim ${PROJECT_SOURCE_DIR}/store)
