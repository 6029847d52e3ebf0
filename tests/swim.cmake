# Tests of the SWIM core (swim/): the wire codec, the state machine driven
# by hand over an in-memory network, and the fuzz targets of both.
lm_add_test(test_swim_proto SOURCES test_swim_proto.c LIBS lm_swim)
lm_add_test(test_swim_core SOURCES test_swim_core.c LIBS lm_swim)

lm_add_fuzz(fuzz_swim_msg ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_swim_msg.c
            ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/swim_msg LIBS lm_swim)
lm_add_fuzz(fuzz_swim_recv ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_swim_recv.c
            ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/swim_recv LIBS lm_swim)

# Writes the seed corpora. The seeds are committed; rerun it after a wire
# format change:  gen_swim_corpus tests/fuzz/corpus
add_executable(gen_swim_corpus fuzz/gen_swim_corpus.c)
target_link_libraries(gen_swim_corpus PRIVATE lm_swim)
