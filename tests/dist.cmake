# What mesh/agent/dist/ ships: the systemd unit, the default config, the man
# pages and the bash completion, checked against the real binary, and the
# agent's systemd notifications read as datagrams (test_dist.sh); the Debian
# package built by CPack, unpacked and run (test_deb.sh).
if(NOT TARGET livemesh)
  return()
endif()

add_test(NAME test_dist
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_dist.sh $<TARGET_FILE:livemesh>
    ${PROJECT_SOURCE_DIR})
set_tests_properties(test_dist PROPERTIES TIMEOUT 120 LABELS "agent;dist;slow")

# Runs cpack on this build tree (staging and the .deb in a temporary
# directory), so it needs the tree built: ctest after the build, as always.
find_program(LM_CPACK cpack)
find_program(LM_DPKG_DEB dpkg-deb)
if(LM_CPACK AND LM_DPKG_DEB)
  add_test(NAME test_deb
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_deb.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(test_deb PROPERTIES TIMEOUT 300 LABELS "dist;slow")
endif()
