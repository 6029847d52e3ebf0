# Tests of the bridge's view of etcd (bridge/view): layouts, encodings,
# escaping and the diff that the bridge sends.
if(NOT TARGET lm_bview)
  return()
endif()

lm_add_test(test_bview
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_bview.c
  LIBS lm_bview)
