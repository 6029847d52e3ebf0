# Scenario tests of the SWIM protocol's behaviour (refutation, loss,
# dissemination, leave, restart, partitions, pauses, detection times,
# determinism, mass crashes), each a cluster of real swim cores in the
# deterministic simulator (lm_simnet). Simulated time is free: the binary
# takes seconds in a release build and well under a minute under
# ASan/UBSan, at the same sizes, so both builds assert the same figures.
# A reproducer of an open protocol bug gets the label known_bug (and its own
# target) until swim/ is fixed; `ctest -LE known_bug` leaves those out.
# None is open: the stale-verdict-after-heal reproducers became the
# ordinary tests test_no_false_dead_after_heal, test_oneway_no_false_dead
# and test_flapping_no_false_dead.
lm_add_test(test_scenarios SOURCES test_scenarios.c LIBS lm_simnet
            LABELS scenario)
