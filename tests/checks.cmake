# Health checks (mesh/checks/): real child processes, a loopback HTTP
# server of the test's own, TCP ports and /bin/sh commands.
if(NOT TARGET lm_checks)
  return()
endif()

lm_add_test(test_checks
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_checks.c
  LIBS lm_checks
  TIMEOUT 600)

# libcurl is loaded on first use (mesh/checks/curl_dl.h): a real node in
# the test's process, /proc/self/maps before and after its first http
# check; and, in a process of its own, the path where libcurl is missing
# (the loader pointed at a soname no file has).
if(TARGET livemesh_static)
  add_executable(test_curl_dl test_curl_dl.c)
  target_link_libraries(test_curl_dl PRIVATE PkgConfig::CMOCKA livemesh_static
    lm_curl_dl)
  add_test(NAME test_curl_dl_lazy COMMAND test_curl_dl lazy)
  add_test(NAME test_curl_dl_missing COMMAND test_curl_dl missing)
  set_tests_properties(test_curl_dl_lazy test_curl_dl_missing
    PROPERTIES TIMEOUT 300)
endif()
