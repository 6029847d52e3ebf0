# Test tools driven by the multi-process tests (tests/multiproc/): small
# programs that play a part no agent will, built with the tests and never
# installed.
#   forge_svc  an insider (a member with a valid certificate) that sends a
#              service list in another member's name, signed with its own
#              key (multiproc_services). It reaches into the node's
#              internals to build and send the message, like
#              test_node_services does.
#   flood      UDP datagrams at a fixed rate: random bytes, or real
#              datagrams with their authentication tampered
#              (multiproc_flood; it reads the built binary beside the agent).
#   mkcert     a node certificate with a chosen validity window (expired,
#              not yet valid) or from another cluster key, for an existing
#              node key, written like keygen writes it (multiproc_trust).
#   cert_joiner  a real node that presents such a certificate (one no
#              agent would start with) and joins through seeds
#              (multiproc_trust). Like forge_svc it reaches into the node's
#              internals, here only to install its certificate.
add_executable(flood ${CMAKE_CURRENT_SOURCE_DIR}/tools/flood.c)

if(TARGET lm_trust)
  add_executable(mkcert ${CMAKE_CURRENT_SOURCE_DIR}/tools/mkcert.c)
  target_link_libraries(mkcert PRIVATE lm_trust)
endif()

if(NOT TARGET livemesh_static OR NOT TARGET lm_store)
  return()
endif()

add_executable(forge_svc ${CMAKE_CURRENT_SOURCE_DIR}/tools/forge_svc.c)
target_link_libraries(forge_svc PRIVATE livemesh_static lm_store
  PkgConfig::MSGPACK)
target_include_directories(forge_svc PRIVATE
  ${PROJECT_SOURCE_DIR}/mesh/node ${PROJECT_SOURCE_DIR}/mesh/trust
  ${PROJECT_SOURCE_DIR}/swim ${PROJECT_SOURCE_DIR}/store)

add_executable(cert_joiner ${CMAKE_CURRENT_SOURCE_DIR}/tools/cert_joiner.c)
target_link_libraries(cert_joiner PRIVATE livemesh_static lm_store
  PkgConfig::MSGPACK)
target_include_directories(cert_joiner PRIVATE
  ${PROJECT_SOURCE_DIR}/mesh/node ${PROJECT_SOURCE_DIR}/mesh/trust
  ${PROJECT_SOURCE_DIR}/swim ${PROJECT_SOURCE_DIR}/store)
