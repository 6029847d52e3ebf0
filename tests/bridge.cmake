# Tests of the bridge (bridge/): the etcd client against a real etcd
# (Debian's etcd-server), against a scripted fake gRPC server, with TLS and
# authentication, and the fuzz target of its response decoders.
if(NOT TARGET lm_etcd)
  return()
endif()

lm_add_test(test_etcd_client
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_etcd_client.c
  LIBS lm_etcd
  LABELS slow
  TIMEOUT 300)
