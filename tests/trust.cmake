# Trust layer (mesh/trust/trust.c): unit tests and the envelope/cert fuzz target.
if(NOT TARGET lm_trust)
  return()
endif()

lm_add_test(test_trust
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_trust.c
  LIBS lm_trust)

lm_add_fuzz(fuzz_envelope ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_envelope.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/envelope LIBS lm_trust)

# Rewrites the seed corpus: gen_envelope_corpus tests/fuzz/corpus/envelope
add_executable(gen_envelope_corpus
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/gen_envelope_corpus.c)
target_link_libraries(gen_envelope_corpus PRIVATE lm_trust)
