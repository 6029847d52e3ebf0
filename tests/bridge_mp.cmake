# The etcd bridge end to end (tests/multiproc/bridge.py): real `livemesh
# agent` processes and a real etcd (/usr/bin/etcd 3.4, etcdctl, from
# Debian's etcd-server and etcd-client; tests/multiproc/etcd.py runs it on
# free loopback ports) with protoc to decode the values and openssl to make
# the TLS test's certificates. One ctest test per scenario:
#   multiproc_bridge_view      10 agents, 2 bridges: etcd equals the mesh
#                              view; fail/maint/a SIGKILLed agent reach etcd
#   multiproc_bridge_failover  the writer SIGKILLed: the standby takes over
#                              and reconciles; a SIGSTOPped writer resumed
#                              after losing is fenced (no write, no key on
#                              its lease)
#   multiproc_bridge_faults    etcd restarted, the lease revoked by hand,
#                              compaction then failover, the quota full
#                              then freed
#   multiproc_bridge_tls       TLS client certificates and user/password; a
#                              wrong password is reported, no crash
#   multiproc_bridge_oslively  the os-lively layout key by key
#   multiproc_bridge_minority  a 3-member etcd, the bridge given all three
#                              endpoints: the first member cut off from the
#                              others at the peer level (nftables, table
#                              lm_minority_test): the bridge moves on, the
#                              view still reaches etcd; needs root and nft
#                              (not registered without nft; skipped, exit
#                              77, when not root)
# Labelled "slow" (not in the sanitizer run). Not registered when etcd,
# etcdctl, protoc or openssl is missing.
if(NOT TARGET livemesh OR NOT TARGET lm_bridge)
  return()
endif()
find_program(LM_PYTHON3 python3)
find_program(LM_ETCD_BIN etcd)
find_program(LM_ETCDCTL_BIN etcdctl)
find_program(LM_PROTOC_BIN protoc)
find_program(LM_OPENSSL_BIN openssl)
if(NOT LM_PYTHON3 OR NOT LM_ETCD_BIN OR NOT LM_ETCDCTL_BIN OR
   NOT LM_PROTOC_BIN OR NOT LM_OPENSSL_BIN)
  message(STATUS "python3, etcd, etcdctl, protoc or openssl not found: the "
                 "bridge's multi-process tests are not registered")
  return()
endif()

set(LM_BRIDGE_MP_SCENARIOS view failover faults tls oslively)
find_program(LM_NFT_BIN nft PATHS /usr/sbin /sbin)
if(LM_NFT_BIN)
  list(APPEND LM_BRIDGE_MP_SCENARIOS minority)
else()
  message(STATUS "nft not found: multiproc_bridge_minority is not registered")
endif()

foreach(sc ${LM_BRIDGE_MP_SCENARIOS})
  add_test(NAME multiproc_bridge_${sc}
    COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/multiproc/bridge.py
            $<TARGET_FILE:livemesh> ${sc})
  set_tests_properties(multiproc_bridge_${sc} PROPERTIES
    TIMEOUT 300
    LABELS "multiproc;slow;bridge"
    SKIP_RETURN_CODE 77
    ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;LM_ETCD_BIN=${LM_ETCD_BIN};LM_ETCDCTL_BIN=${LM_ETCDCTL_BIN};LM_NFT_BIN=${LM_NFT_BIN}")
endforeach()
