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

lm_add_fuzz(fuzz_etcd_resp ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_etcd_resp.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/etcd_resp LIBS lm_etcd)

# Rewrites the seed corpus of fuzz_etcd_resp:
#   gen_etcd_corpus tests/fuzz/corpus/etcd_resp
add_executable(gen_etcd_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/gen_etcd_corpus.c)
target_link_libraries(gen_etcd_corpus PRIVATE lm_etcd)

# A scripted fake gRPC server in the test: no etcd, runs under ASan.
pkg_check_modules(LM_T_NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
lm_add_test(test_etcd_fake
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_etcd_fake.c
  LIBS lm_etcd PkgConfig::LM_T_NGHTTP2
  TIMEOUT 120)

# TLS (certificates made with the openssl CLI) and authentication.
lm_add_test(test_etcd_tls
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_etcd_tls.c
  LIBS lm_etcd
  LABELS slow
  TIMEOUT 300)
