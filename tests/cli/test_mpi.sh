# test_mpi.sh — dojo's data-parallel layer under mpirun: the collectives
# (1, 2 and 3 ranks), the bucketed gradient reducer and N ranks training like
# one process (tests/mpi/mpi_train.c), and failing ranks: one that exits
# abruptly or hangs must stop the job within 60 s with a message naming it.
# The programs are BUILD/tests/mpi/*, next to $DOJO. Skips without mpirun or
# in a build without MPI.
. tests/cli/lib.sh
BIN=$(dirname "$DOJO")/tests/mpi

if ! command -v mpirun >/dev/null 2>&1; then
    skip mpi "mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)"
    finish; exit
fi
if ! "$DOJO" version | grep -q '^backends:.* mpi' || [ ! -x "$BIN/mpi_collectives" ]; then
    skip mpi "this dojo was built without MPI"
    finish; exit
fi

# Shared memory between local ranks, no network probing; no single-copy
# (CMA needs ptrace rights that containers often lack).
export OMPI_MCA_btl=self,vader
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1
# Open MPI keeps memory to the end on purpose: under ASan report our leaks
# only. Full stacks (Debian's libraries have no frame pointers) and plugins
# kept loaded, so that the suppressions can see which library allocated.
export LSAN_OPTIONS="suppressions=$(pwd)/tests/mpi/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
MPIRUN="timeout 120 mpirun --oversubscribe --allow-run-as-root"

for n in 1 2 3; do
    expect "collectives, $n rank(s)" 0 "# result: [0-9]+ passed, 0 failed" -- $MPIRUN -np $n "$BIN/mpi_collectives"
done
for n in 2 3; do
    expect "reducer and training like one process, $n ranks" 0 "differ from one process by" -- \
        $MPIRUN -np $n "$BIN/mpi_train"
done

# dojo bench allreduce: figures and their ratio under mpirun, a note alone
expect "bench allreduce, 2 ranks" 0 "bucketed +[0-9.]+ ms +[0-9.]+ GB/s bus bandwidth +\([0-9.]+x MPI_Allreduce\)" -- \
    $MPIRUN -np 2 "$DOJO" bench allreduce --mb 1 --bucket-mb 0.3 --iters 2
expect "bench allreduce --json, 3 ranks" 0 '"ranks":3,.*"bucketed":\{"seconds":[0-9.e-]+,"bus_gb_per_s"' -- \
    $MPIRUN -np 3 "$DOJO" bench allreduce --mb 0.5 --iters 2 --json
expect "bench allreduce alone" 0 "1 rank, nothing to exchange" -- "$DOJO" bench allreduce --iters 1
expect "bench allreduce --mb 0" 2 "--mb" -- "$DOJO" bench allreduce --mb 0
expect "bench allreduce --iters x" 2 "--iters" -- "$DOJO" bench allreduce --iters x

# dojo bench scaling: one rank against all, in the same run (tiny model)
expect "bench scaling, 2 ranks" 0 "scaling efficiency [0-9.]+ = [0-9.]+ / \(2 x [0-9.]+\)" -- \
    $MPIRUN -np 2 "$DOJO" bench scaling --model tests/mpi/tiny_timesformer.yaml --input 1x3x2x16x16 --rounds 2 --warmup 0
expect "bench scaling --json, 3 ranks" 0 '"ranks":3,.*"efficiency":[0-9.e-]+' -- \
    $MPIRUN -np 3 "$DOJO" bench scaling --model tests/mpi/tiny_timesformer.yaml --input 1x3x2x16x16 --rounds 1 --json
expect "bench scaling alone" 0 "1 rank only" -- "$DOJO" bench scaling --model tests/mpi/tiny_timesformer.yaml --input 1x3x2x16x16 --rounds 1
expect "bench scaling --input bad" 2 "--input" -- "$DOJO" bench scaling --input 1x4x2x16x16

# Slurm, faked through its environment (no Slurm here): srun's tasks carry
# SLURM_PROCID and SLURM_STEP_NUM_TASKS. A task whose MPI cannot join the
# others (no PMI) must stop with a clear message instead of training alone;
# a batch script (allocation variables, no step) runs one process; mpirun
# inside an allocation is what mpirun says.
expect "fake srun task, MPI cannot join" 1 "launcher started 2 processes but MPI joined 1: .*srun --mpi=pmix" -- \
    env SLURM_PROCID=0 SLURM_NTASKS=2 SLURM_STEP_NUM_TASKS=2 "$DOJO" bench allreduce --iters 1
expect "sbatch script, no srun: one process" 0 "1 rank, nothing to exchange" -- \
    env SLURM_PROCID=0 SLURM_NTASKS=4 "$DOJO" bench allreduce --iters 1
expect "mpirun inside a Slurm allocation" 0 "# result: [0-9]+ passed, 0 failed" -- \
    env SLURM_PROCID=0 SLURM_NTASKS=4 $MPIRUN -np 2 "$BIN/mpi_collectives"

# expect_stop NAME LIMIT_S PATTERN -- COMMAND...: COMMAND fails (non-zero, or
# any status when ANY_STATUS=1) within LIMIT_S seconds, output matching PATTERN.
expect_stop() {
    name=$1; limit=$2; pattern=$3; shift 4
    start=$(date +%s)
    "$@" >"$TMP/.out" 2>&1
    got=$?
    secs=$(( $(date +%s) - start ))
    if [ "$got" = 0 ] && [ "${ANY_STATUS:-0}" != 1 ]; then
        echo "FAIL $name: exit status 0, expected a failure: $*"
    elif [ "$secs" -gt "$limit" ]; then
        echo "FAIL $name: took ${secs}s, limit ${limit}s: $*"
    elif ! grep -Eq -- "$pattern" "$TMP/.out"; then
        echo "FAIL $name: output does not match /$pattern/: $*"
    else
        echo "ok   $name (${secs}s)"
        PASSED=$((PASSED + 1)); return 0
    fi
    sed 's/^/    /' "$TMP/.out" | head -n 30
    FAILED=$((FAILED + 1)); return 1
}

export DOJO_DIST_TIMEOUT=3
for n in 2 3; do
    # mpirun names the rank that died as [[job,1],1] and stops the others
    expect_stop "rank 1 exits abruptly, $n ranks: the job stops" 60 '\[\[[0-9]+,[0-9]+\],1\]' -- \
        $MPIRUN -np $n "$BIN/mpi_fault" exit
    # alive but silent: dojo's own timeout names it on every other rank
    expect_stop "rank 1 hangs, $n ranks: the others stop" 60 'rank 0 got no data from rank 1 within 3 s' -- \
        $MPIRUN -np $n "$BIN/mpi_fault" hang
done
# a launcher told not to stop the job: dojo alone notices the dead rank
ANY_STATUS=1 expect_stop "rank 1 exits, launcher does not abort: dojo stops" 60 \
    'dojo: error: .*rank 2 got no data from rank 1' -- \
    $MPIRUN --mca orte_abort_on_non_zero_status 0 -np 3 "$BIN/mpi_fault" exit
finish
