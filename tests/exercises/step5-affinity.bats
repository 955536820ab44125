#!/usr/bin/env bats
# Step 5's exercise 3 in TUTORIAL.md: by default, one loop per CPU the
# server may run on (its CPU affinity, which taskset and container CPU
# sets narrow), not per CPU online. Step 5 as it is fails here when the
# machine has more than one CPU online: taskset -c 0 still gets one loop
# per online CPU.
#   SERVER=path/to/server bats tests/exercises/step5-affinity.bats
# checks your own; tests/solutions/step5-affinity.patch passes.
# Not part of make test (bats tests/ does not look in subfolders).

load ../helpers
SERVER=${SERVER:-$ROOT/step5-reuseport/server}

# The CPU numbers this shell may run on, from /proc (taskset -pc says the same).
allowed_cpus() {
    awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status
}

# The first CPU this shell may run on.
first_cpu() {
    allowed_cpus | sed -E 's/[-,].*//'
}

@test "taskset to one CPU: one loop by default (two threads: the loop and main)" {
    SERVER_WRAPPER=(taskset -c "$(first_cpu)")
    start_server -q
    [ "$(thread_count "$SERVER_PID")" -eq 2 ]
    echo_ok -c 10
}

@test "taskset to one CPU: -w 3 still gives three loops" {
    SERVER_WRAPPER=(taskset -c "$(first_cpu)")
    start_server -q -w 3
    [ "$(thread_count "$SERVER_PID")" -eq 4 ]
    echo_ok -c 10
}

@test "no taskset: one loop per CPU it may run on" {
    local n
    # nproc counts the CPUs of the affinity mask, not those online (man 1
    # nproc); it also obeys OMP_NUM_THREADS and OMP_THREAD_LIMIT, if set.
    n=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
    start_server -q
    [ "$(thread_count "$SERVER_PID")" -eq $((n + 1)) ]
}
