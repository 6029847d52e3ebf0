# mesh/agent/dist/packaging.cmake: what the agent needs on a host besides
# its binary (systemd unit, default config, system user, man pages, bash
# completion), and the Debian package of the whole project (CPack), built
# with `cpack -G DEB` from the build directory.
#
# Included by the top-level CMakeLists.txt after every other install rule,
# since include(CPack) must see them all.

set(LM_DIST_DIR ${CMAKE_CURRENT_LIST_DIR})

# Where the unit and the config go. The unit names /usr/bin/livemesh and
# /etc/livemesh/livemesh.json, which is what the package installs; the config
# is absolute (/etc, not PREFIX/etc) for the same reason. An install as a
# user without root goes through DESTDIR, or sets these.
set(LM_INSTALL_CONFDIR "/etc/livemesh" CACHE PATH
  "where the default config livemesh.json is installed")
set(LM_INSTALL_UNITDIR "lib/systemd/system" CACHE PATH
  "where livemesh.service is installed (relative: under the prefix)")

install(FILES ${LM_DIST_DIR}/livemesh.service
  DESTINATION ${LM_INSTALL_UNITDIR})
install(FILES ${LM_DIST_DIR}/livemesh.sysusers
  DESTINATION lib/sysusers.d RENAME livemesh.conf)
install(FILES ${LM_DIST_DIR}/livemesh.json
  DESTINATION ${LM_INSTALL_CONFDIR})
install(FILES ${LM_DIST_DIR}/livemesh.1
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${LM_DIST_DIR}/livemesh.json.5
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${LM_DIST_DIR}/livemesh.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions
  RENAME livemesh)

# ---- the Debian package: everything in one livemesh_VERSION_ARCH.deb ----
set(CPACK_PACKAGE_NAME livemesh)
set(CPACK_PACKAGE_VENDOR "livemesh")
set(CPACK_PACKAGE_CONTACT "livemesh developers <livemesh@localhost>" CACHE
  STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "gossip-based, signed SWIM liveness mesh: agent, library and tools")
set(CPACK_PACKAGE_DESCRIPTION
  "livemesh runs a SWIM failure detector over UDP with signed msgpack
messages; every member keeps the converged view of the members and their
services, so 'is service X on host Y up?' is answered locally. This package
holds the agent and CLI (livemesh) with its systemd unit, default config,
man pages and bash completion, the simulator (livemesh-sim), the benchmark
(livemesh-bench), and liblivemesh (shared and static) with its headers,
pkg-config and CMake files.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# the prefix CPack installs with in DESTDIR mode (below)
set(CPACK_INSTALL_PREFIX /usr)
# absolute destinations (/etc/livemesh) are staged under DESTDIR, not
# written to the build host's /etc
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the libraries the binaries link (dpkg-shlibdeps), and
# libcurl4, which dpkg-shlibdeps cannot see: liblivemesh loads
# libcurl.so.4 with dlopen() when an HTTP check first runs, so that a
# process without one never maps it. A Depends, not a Recommends: any
# client may register an HTTP-checked service at run time, and without
# libcurl every such service would show down ("libcurl.so.4 not found").
# 7.80.0: the oldest libcurl with every function the loader takes
# (curl_url_strerror).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libcurl4 (>= 7.80.0)")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# the shared library is in the package itself: dpkg-shlibdeps must find it
# there, not ask for another package
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${LM_DIST_DIR}/deb/conffiles
  ${LM_DIST_DIR}/deb/postinst
  ${LM_DIST_DIR}/deb/prerm
  ${LM_DIST_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_SOURCE_IGNORE_FILES "/build.*/;/\\\\.git/")
include(CPack)
