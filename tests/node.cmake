# The embedding API (mesh/node/ through include/livemesh/livemesh.h): real
# nodes on loopback, one uv loop per test. Slower than the unit tests (a
# hundred-node convergence, crash detection with the LAN timing), hence the
# longer timeout.
if(NOT TARGET livemesh_static)
  return()
endif()

lm_add_test(test_node SOURCES test_node.c LIBS livemesh_static TIMEOUT 900)
# The codes of the one error space it asserts on: the trust layer's and
# the core's headers (constants only; tests may see everything).
target_include_directories(test_node PRIVATE
  ${PROJECT_SOURCE_DIR}/mesh/trust ${PROJECT_SOURCE_DIR}/swim)

# Services on real nodes: registration, checks, watches, forged lists. It
# reaches into the node's internals (to forge a list as an insider would).
lm_add_test(test_node_services SOURCES test_node_services.c
  LIBS livemesh_static TIMEOUT 600)
target_include_directories(test_node_services PRIVATE
  ${PROJECT_SOURCE_DIR}/mesh/node ${PROJECT_SOURCE_DIR}/mesh/trust
  ${PROJECT_SOURCE_DIR}/swim ${PROJECT_SOURCE_DIR}/store
  ${PROJECT_SOURCE_DIR}/mesh/checks)
target_link_libraries(test_node_services PRIVATE PkgConfig::MSGPACK)

# The decoder of the service-list messages members exchange.
lm_add_fuzz(fuzz_svc_msg ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_svc_msg.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/svc_msg LIBS lm_svc_wire)

# The last-known view: saving, loading (each signature and seal checked),
# stale answers after a restart and while cut off from every peer.
lm_add_test(test_node_snapshot SOURCES test_node_snapshot.c
  LIBS livemesh_static TIMEOUT 600)
target_include_directories(test_node_snapshot PRIVATE
  ${PROJECT_SOURCE_DIR}/store)
target_link_libraries(test_node_snapshot PRIVATE PkgConfig::MSGPACK)

# The stream transport's memory bounds: receive buffers sized by what
# arrives and freed after each frame, and whole states held back while a
# node's outgoing stream budget is spent. Reaches into the node's internals.
lm_add_test(test_node_stream SOURCES test_node_stream.c LIBS livemesh_static
  TIMEOUT 300)
target_include_directories(test_node_stream PRIVATE
  ${PROJECT_SOURCE_DIR}/mesh/node ${PROJECT_SOURCE_DIR}/mesh/trust
  ${PROJECT_SOURCE_DIR}/swim ${PROJECT_SOURCE_DIR}/store
  ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(test_node_stream PRIVATE PkgConfig::MSGPACK)
