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
