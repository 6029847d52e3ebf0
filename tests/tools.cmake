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

# The tools that reach into the node's internals, as the node tests do.
function(lm_internal_tool name)
  add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/tools/${name}.c)
  target_link_libraries(${name} PRIVATE livemesh_static lm_store
    PkgConfig::MSGPACK)
  target_include_directories(${name} PRIVATE
    ${PROJECT_SOURCE_DIR}/mesh/node ${PROJECT_SOURCE_DIR}/mesh/trust
    ${PROJECT_SOURCE_DIR}/swim ${PROJECT_SOURCE_DIR}/store
    ${PROJECT_SOURCE_DIR}/tests)
endfunction()
foreach(t forge_svc insider cert_joiner)
  lm_internal_tool(${t})
endforeach()
