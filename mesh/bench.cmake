# livemesh-bench: N real nodes (the runtime, not the simulator) on one libuv
# loop over loopback, measured the way livemesh-sim reports (see
# docs/benchmarks.md), with the same flag parsers and figures (lm_report,
# sim/report.h). Included by mesh/CMakeLists.txt when present.
add_executable(livemesh-bench bench.c)
target_link_libraries(livemesh-bench PRIVATE livemesh_static lm_report PkgConfig::JANSSON m)
install(TARGETS livemesh-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
