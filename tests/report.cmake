# lm_report (sim/report.c): the flag parsers, percentiles and report
# figures livemesh-sim and livemesh-bench share.
lm_add_test(test_report
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_report.c
  LIBS lm_report
  LABELS report)
