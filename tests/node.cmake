# The embedding API (mesh/node.c through include/livemesh/livemesh.h): real
# nodes on loopback, one uv loop per test. Slower than the unit tests (a
# hundred-node convergence, crash detection with the LAN timing), hence the
# longer timeout.
if(NOT TARGET livemesh_static)
  return()
endif()

lm_add_test(test_node SOURCES test_node.c LIBS livemesh_static TIMEOUT 900)
