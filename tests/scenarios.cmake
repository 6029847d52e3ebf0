# Scenario tests of the SWIM protocol's behaviour (refutation, loss,
# dissemination, leave, restart, partitions, pauses, detection times,
# determinism, mass crashes), each a cluster of real swim cores in the
# deterministic simulator (lm_simnet). Simulated time is free: the binary
# takes seconds in a release build and well under a minute under
# ASan/UBSan, at the same sizes, so both builds assert the same figures.
lm_add_test(test_scenarios SOURCES test_scenarios.c LIBS lm_simnet
            LABELS scenario)

# The same file built to run only the tests of known protocol bugs (the
# "known bugs" section): they fail until swim/ is fixed. Leave them out with
# `ctest -LE known_bug`.
lm_add_test(test_scenarios_bugs SOURCES test_scenarios.c LIBS lm_simnet
            LABELS "scenario;known_bug")
target_compile_definitions(test_scenarios_bugs PRIVATE LM_SCENARIO_BUGS=1)
