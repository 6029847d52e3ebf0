# Tests of the local view (store/): the service list codec, the indexes,
# is_up and watches, and the fuzz target of the codec.
if(NOT TARGET lm_store)
  return()
endif()

lm_add_test(test_store
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_store.c
  LIBS lm_store PkgConfig::MSGPACK)

lm_add_fuzz(fuzz_svc_list ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_svc_list.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/svc_list LIBS lm_store)

# Rewrites the seed corpus after a change of the list format:
#   gen_svc_corpus tests/fuzz/corpus/svc_list
add_executable(gen_svc_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/gen_svc_corpus.c)
target_link_libraries(gen_svc_corpus PRIVATE lm_store PkgConfig::MSGPACK)

lm_add_test(test_snapshot
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_snapshot.c
  LIBS lm_store PkgConfig::MSGPACK)

lm_add_fuzz(fuzz_snapshot ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_snapshot.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/snapshot LIBS lm_store)

# Rewrites the seed corpus of fuzz_snapshot after a change of the format:
#   gen_snap_corpus tests/fuzz/corpus/snapshot
add_executable(gen_snap_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/gen_snap_corpus.c)
target_link_libraries(gen_snap_corpus PRIVATE lm_store PkgConfig::MSGPACK)
