# Multi-process tests (tests/multiproc/): 16 real `livemesh agent` processes
# on 127.0.0.1 per test, driven by Python 3 scripts (standard library only)
# through signals, the control socket, the CLI and the agents' JSON logs.
# Harness: tests/multiproc/cluster.py. Each script is one mesh, so ctest -j
# can overlap them:
#   multiproc_lifecycle  crash (SIGKILL -> dead everywhere), leave (left,
#                        never dead), restart (alive again, higher generation)
#   multiproc_pause      SIGSTOP 10 s: suspected/dead, then refutes; no
#                        healthy member ever declared dead
#   multiproc_hostile    agents with another cluster's certificates never
#                        admitted; forged, tampered, replayed, random and
#                        oversize datagrams and junk TCP frames dropped and
#                        counted by reason, the mesh unharmed
#   multiproc_services   5 agents: ttl, process, http, tcp and exec checks
#                        turn up/down on every agent within stated bounds;
#                        watch lines in order; ephemeral registrations go
#                        with their client; registrations survive a
#                        restart; a dead member's services answer down; a
#                        service list forged by an insider (tests/tools/
#                        forge_svc) is dropped and counted
#   multiproc_insider    a member with a valid certificate forges another's
#                        records, leave and services, spoofs a sender,
#                        accuses beyond any signed incarnation, replays and
#                        floods dead verdicts: nothing believed, nobody
#                        dead, every attempt counted by reason
#   multiproc_flood      one agent of 8 flooded at 50,000 datagrams/s
#                        (random bytes, then tampered real datagrams): no
#                        member ever seen dead, drops counted, the cost
#                        of rejecting a datagram printed
#   multiproc_snapshot   3 agents: one restarted alone answers from its
#                        last-known view, stale with an age, until the
#                        others are back; a truncated or foreign-looking
#                        snapshot gives one warning and an empty view
#   multiproc_trust      8 agents: an agent refuses to start with its own
#                        expired or not yet valid certificate; a node that
#                        presents one anyway (tests/tools/cert_joiner) is
#                        never listed and its frames are counted
#                        (cert_expired, cert_not_yet_valid); a member whose
#                        certificate expires is declared dead; the cluster
#                        key rotates A -> B (SIGHUP, a certificate from B
#                        for each agent, restarts one at a time, A
#                        removed) with none of the 8 ever dead, a member
#                        left with a certificate from A declared dead; a
#                        valid certificate from A is then refused
#                        everywhere (cert_untrusted)
# Labelled "slow": the sanitizer run of the suite excludes them.
if(NOT TARGET livemesh)
  return()
endif()
find_program(LM_PYTHON3 python3)
if(NOT LM_PYTHON3)
  message(STATUS "python3 not found: the multi-process tests are not registered")
  return()
endif()

# multiproc(NAME TIMEOUT [ARG...]): tests/multiproc/NAME.py run on the
# agent binary and ARGs, as ctest multiproc_NAME.
function(multiproc name timeout)
  add_test(NAME multiproc_${name}
    COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/multiproc/${name}.py
            $<TARGET_FILE:livemesh> ${ARGN})
  set_tests_properties(multiproc_${name} PROPERTIES
    TIMEOUT ${timeout}
    LABELS "multiproc;slow"
    ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endfunction()

foreach(t lifecycle pause hostile snapshot)
  multiproc(${t} 300)
endforeach()

# services.py also drives forge_svc of tests/tools.cmake.
multiproc(services 600 $<TARGET_FILE:forge_svc>)

# insider.py: a member with a valid certificate turned hostile
# (tests/tools/insider.c): forged records, leaves and services in another's
# name, a spoofed sender, accusations beyond any signed incarnation,
# replays, a 20 s flood of dead verdicts; nothing believed, nobody dead,
# every attempt counted by reason.
multiproc(insider 300 $<TARGET_FILE:insider>)

# flood.py: one agent of 8 flooded at 50,000 datagrams/s, random bytes and
# then real datagrams with their authentication tampered (tests/tools/
# flood), 30 s each here; `python3 tests/multiproc/flood.py
# build/mesh/livemesh 60` runs the 60 s version. Needs root (it captures
# datagrams on lo).
multiproc(flood 300 30 50000)

# trust.py drives the two certificate tools of tests/tools.cmake: mkcert
# issues certificates with chosen dates or from another cluster key,
# cert_joiner presents one on the wire.
multiproc(trust 300 $<TARGET_FILE:mkcert> $<TARGET_FILE:cert_joiner>)
