# Trust layer (mesh/trust/trust.c): unit tests and the fuzz targets of the
# envelopes and certificates and of the key files.
if(NOT TARGET lm_trust)
  return()
endif()

lm_add_test(test_trust
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_trust.c
  LIBS lm_trust)

lm_add_fuzz(fuzz_envelope ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_envelope.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/envelope LIBS lm_trust)

# The key, secret and certificate files (and key text).
lm_add_fuzz(fuzz_keyfile ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_keyfile.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/keyfile LIBS lm_trust)

# Rewrites the seed corpus: gen_keyfile_corpus tests/fuzz/corpus/keyfile
add_executable(gen_keyfile_corpus
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/gen_keyfile_corpus.c)
target_link_libraries(gen_keyfile_corpus PRIVATE lm_trust)

# Rewrites the seed corpus: gen_envelope_corpus tests/fuzz/corpus/envelope
add_executable(gen_envelope_corpus
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/gen_envelope_corpus.c)
target_link_libraries(gen_envelope_corpus PRIVATE lm_trust)
