# Tests of the simulator (sim/): the harness itself and the livemesh-sim
# command line, which test_sim runs as a child process.
lm_add_test(test_sim SOURCES test_sim.c LIBS lm_simnet TIMEOUT 600 LABELS sim)
target_compile_definitions(test_sim PRIVATE
  LM_SIM_BIN="$<TARGET_FILE:livemesh-sim>")
add_dependencies(test_sim livemesh-sim)
