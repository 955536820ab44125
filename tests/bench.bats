#!/usr/bin/env bats
# The bench's parsers, tables and chart, on canned /proc readings, perf
# output and results files (tests/fixtures/bench), so they are checked
# without running a benchmark.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
FIXTURES=$ROOT/tests/fixtures/bench
. "$ROOT/bench/measure.bash"

teardown() {
    [ -z "${LOADGEN_PID:-}" ] || kill "$LOADGEN_PID" 2>/dev/null || true
    [ -z "${SERVER_PID:-}" ] || stop_server
}

report() {
    awk -f "$ROOT/bench/models.awk" -f "$ROOT/bench/report.awk" "${1:-$FIXTURES/machine.tsv}" "$FIXTURES/results.tsv"
}

@test "bench: RSS and anonymous PSS are summed over all the server's processes" {
    run user_memory "$FIXTURES/smaps_rollup.1" "$FIXTURES/smaps_rollup.2"
    [ "$output" = $'rss 2816\npss 650' ]
}

@test "bench: thread stacks are found by the guard page right below them, whatever their size" {
    # A 2 MiB and an 8 MiB stack, each right above a one-page ---p guard.
    # Not stacks: the mapping right above a malloc arena's 64 MiB ---p tail,
    # an 8 MiB mapping with no guard, a file, one a page away from a guard.
    run thread_stacks "$FIXTURES/smaps" 4
    [ "$output" = $'stack_reserved 10240\nstack_resident 28' ]
}

@test "bench: the server's kernel stacks and page tables, the machine's slab and buffers" {
    # 7 of the machine's 100 tasks are the server's: 7% of 1,540 KiB of
    # kernel stacks; 60 + 48 KiB of page tables; 199 pages of buffers.
    run kernel_memory "$FIXTURES/meminfo" "$FIXTURES/loadavg" "$FIXTURES/sockstat" \
        "$FIXTURES/status.1" "$FIXTURES/status.2"
    [ "$output" = $'kernel_stacks 107\npage_tables 108\nkernel_slab 39908\nsocket_buffers '$((199 * $(getconf PAGESIZE) / 1024)) ]
}

@test "bench: a process that has exited is skipped, not an error" {
    run user_memory "$FIXTURES/smaps_rollup.1" "$FIXTURES/no-such-process"
    [ "$status" -eq 0 ]
    [ "$output" = $'rss 1536\npss 400' ]
}

@test "bench: CPU time and context switches are summed over every thread of every process" {
    # Process 4001 has three threads, its child 4010 one. Each thread's
    # schedstat and status count; the process's own status is its first
    # thread's alone. Ticks: utime, stime and the reaped children's
    # cutime and cstime, of each process.
    PROC=$FIXTURES/proc run task_counters 4001 4010
    [ "$status" -eq 0 ]
    [ "$output" = "2600000000 280 8100 60" ]
}

@test "bench: a process that exits while its counters are read is skipped" {
    PROC=$FIXTURES/proc run task_counters 4001 4999
    [ "$status" -eq 0 ]
    [ "$output" = "2000000000 220 3100 57" ]
}

@test "bench: accept queue overflows are read from /proc/net/netstat" {
    PROC=$FIXTURES/proc run listen_overflows
    [ "$status" -eq 0 ]
    [ "$output" = 915 ]
}

@test "bench: the time the hypervisor stole is read from /proc/stat's cpu line" {
    PROC=$FIXTURES/proc run stolen_ticks
    [ "$status" -eq 0 ]
    [ "$output" = 132432 ]
}

# The open loop's server and loadgen each on a CPU of its own: every task
# of theirs, the ones created later too, may run only there.
@test "bench: the open loop's server and client run only on the CPUs they are given" {
    [ "$(nproc)" -ge 2 ] || skip "one CPU: nothing to pin"
    command -v taskset >/dev/null || skip "no taskset (util-linux)"
    TMP=$BATS_TEST_TMPDIR LOADGEN=$ROOT/tools/loadgen
    SERVER_CPUS=0 start_server step3
    CLIENT_CPUS=1 start_loadgen -c 3 --hold 30
    expect_loadgen connected 30
    wait_until_held 3 30
    local tid
    for tid in /proc/"$SERVER_PID"/task/*; do
        [ "$(awk '/^Cpus_allowed_list:/ { print $2 }' "$tid/status")" = 0 ]
    done
    [ "$(ls /proc/"$SERVER_PID"/task | wc -l)" -eq 4 ]
    [ "$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/"$LOADGEN_PID"/status)" = 1 ]
}

@test "bench: step 5's connections per loop are read from its closing lines, lowest and highest" {
    run loop_connections "$FIXTURES/step5.err"
    [ "$status" -eq 0 ]
    [ "$output" = $'loops 2\nconns_lowest 480\nconns_highest 520' ]
}

@test "bench: a server that will not start is found out before the run, with what it said" {
    TMP=$BATS_TEST_TMPDIR
    starts step4
    [ -z "$WHY_NOT" ]
    server_command() { echo "$ROOT/step4-epoll/server -b 999.1.1.1"; }
    run starts step4
    [ "$status" -eq 1 ]
    starts step4 || true
    [[ $WHY_NOT == *"999.1.1.1"* ]]
}

@test "bench: perf stat's count is read from its -x output, not its other lines" {
    run perf_count "$FIXTURES/perf.out"
    [ "$status" -eq 0 ]
    [ "$output" = 214732 ]
    run perf_count "$FIXTURES/perf-not-counted.out"
    [ "$status" -ne 0 ]
    [ -z "$output" ]
}

@test "bench: fields are read from loadgen's JSON line" {
    local json='{"mode":"hold","opened":40000,"first_failure":"connect: Connection timed out","p50_us":12.5,"p999_us":80,"messages":7,"all_messages":9,"failures":{}}'
    [ "$(json_field opened <<<"$json")" = 40000 ]
    [ "$(json_field first_failure <<<"$json")" = "connect: Connection timed out" ]
    [ "$(json_field p50_us <<<"$json")" = 12.5 ]
    [ "$(json_field messages <<<"$json")" = 7 ]
    [ "$(json_field all_messages <<<"$json")" = 9 ]
    [ -z "$(json_field missing <<<"$json")" ]
}

@test "bench: loadgen's failures are listed by step and error, with their counts" {
    local json='{"mode":"echo","failed":15,"failures":{"connect: Connection timed out":12,"echo: closed by the server":3}}'
    [ "$(json_failures <<<"$json")" = "connect: Connection timed out ×12; echo: closed by the server ×3" ]
    [ -z "$(json_failures <<<'{"failed":0,"failures":{}}')" ]
}

@test "bench: each figure of several runs is their median, with the lowest and highest" {
    TSV=$BATS_TEST_TMPDIR/results.tsv
    summarise step4 echo64 100 "$FIXTURES/run.1" "$FIXTURES/run.2" "$FIXTURES/run.3"
    [ "$(cat "$TSV")" = "$(printf 'step4\techo64\t100\t%s\t%s\n' msgs_per_s 75000 msgs_per_s_low 71000.5 \
        msgs_per_s_high 80000 p99_us 1000 p99_us_low 900 p99_us_high 1200 failures 'run 2: connect: Connection timed out ×2')" ]
    # One run: no range.
    : >"$TSV"
    summarise step4 echo64 100 "$FIXTURES/run.1"
    [ "$(cat "$TSV")" = "$(printf 'step4\techo64\t100\t%s\t%s\n' msgs_per_s 75000 p99_us 900)" ]
}

@test "bench: the report has the machine, memory, limits, throughput and Node.js tables" {
    run report
    [ "$status" -eq 0 ]
    [[ $output == *"| cpu | Test CPU |"* ]]
    # Rows in the course's order of models, whatever order they came in,
    # and connections in increasing order.
    [[ $output == *"| step2 | 100 | - | 45,000 |"*"| step4 | 100 | - | 40 |"*"| step4 | 10,000 | 24 | 20 |"*"| node | 100 |"* ]]
    [[ $output == *"| step2 | 10,000 | not measured: too few process ids left on this machine |"* ]]
    [[ $output == *"| step3 | 100 | held only 96 |"* ]]
    [[ $output == *"| step3 | 30,000 | 19,996 | 19,996 | - | open files per process | accept: Too many open files; pausing before the next try | connect: Connection timed out |"* ]]
    [[ $output == *"| step2 | 30,670 | 29,755 | 29,755 | 915 | accepting too slowly: its queue overflowed | nothing | check: Connection reset by peer |"* ]]
    [[ $output == *"| 1 | 1.50 | - |"* ]]
    [[ $output == *"| 100 | 1.82 | 0.48 |"* ]]
    # Below zero is noise; problems are listed.
    [[ $output == *"| node | 100 | - | ≈0 |"* ]]
    [[ $output == *"## Problems"*"- step4, echo64, 1000: loadgen gave no result"* ]]
}

@test "bench: a full run's report says make bench, and shows each median with its range" {
    run report
    [[ $output == *"Made by \`make bench\` "* ]]
    [[ $output != *"make bench-quick"* ]]
    [[ $output == *"median of 3 runs"* ]]
    [[ $output == *"| step4 | 100 | 75,553 (71,958–78,609) | 4.8 (4.6–5.0) | 999 (950–1,100) | 5,111 (4,000–6,000) | 9,000 (8,000–12,000) |"* ]]
    # A figure recorded without a range is shown alone.
    [[ $output == *"| node | 100 | 41,513 | - |"* ]]
}

@test "bench: a quick run's report says make bench-quick, single runs, noisy" {
    run report "$FIXTURES/machine-quick.tsv"
    [[ $output == *"Made by \`make bench-quick\`"* ]]
    [[ $output == *"single run"* ]]
    [[ $output == *"noisy"* ]]
    [[ $output != *"median of"* ]]
}

@test "bench: the report has the CPU while idle, per second" {
    run report
    [[ $output == *"## CPU while connections sit idle"* ]]
    # 3 voluntary switches in 3.002 s; 250 and 5 in 2.5 s.
    [[ $output == *"| step4 | 10,000 | 1 | 0.3 | 0.01 | 1.0 | 0.0 |"* ]]
    [[ $output == *"| step2 | 1,000 | 1,001 | 12.0 | 0.48 | 100.0 | 2.0 |"* ]]
}

@test "bench: the report has the server's and the client's CPU per message, and their ratio" {
    run report
    [[ $output == *"## CPU time per message: the server's and the client's"* ]]
    [[ $output == *"| step4 | 100 | 11.7 (11.2–12.3) | 12.9 (12.1–13.5) | 1.10 |"* ]]
    [[ $output == *"| step2 | 1,000 | 29.2 | 14.6 | 0.50 |"* ]]
    [[ $output == *"a careful client spends about what step 4 spends"* ]]
}

@test "bench: the report has context switches and system calls per message" {
    run report
    [[ $output == *"## Context switches per message"*"| step2 | 1,000 | 2.013 | 0.250 |"*"| step4 | 100 | 0.042 (0.040–0.050) | 0.001 (0.001–0.002) |"* ]]
    [[ $output == *"## System calls per message"*"| step4 | 100 | 2.25 |"* ]]
    [[ $output == *"| step2 | 100 | not measured: not root, and kernel.perf_event_paranoid is 2, not -1 |"* ]]
    [[ $output == *"## Context switches per message"*"perf bench sched pipe\` took 4.95 µs per round trip"*"## System calls"* ]]
}

@test "bench: the report has connection churn" {
    run report
    [[ $output == *"## Connection churn"*"| step2 | 1 | 2,100 | 450 | 800 | 210.4 | 40.0 |"*"| step4 | 100 | 9,877 | 9,100 | 20,500 | 41.2 | 38.5 |"* ]]
}

@test "bench: the report has latency under load, beside the closed loop's p99" {
    run report
    [[ $output == *"## Latency under load (open loop)"* ]]
    [[ $output == *"| step4 | 100 | 50% | 37,777 | 48 | 160 | 420 | 0.2% | 1.2% | 70,100, 4,321 |"*"| step4 | 100 | 120% | 90,664 | 150,000 | 310,000 | 330,000 | 0.0% | - | 70,100, 4,321 |"* ]]
    # node has no closed-loop peak in the fixture.
    [[ $output == *"| node | 100 | 50% | 20,757 | 90 | 900 | 2,000 | 1.5% | - | - |"* ]]
    # Where the server and the client ran.
    [[ $output == *"The server ran on CPU 0 and loadgen on CPU 1 (taskset)"* ]]
    [[ $output == *"## A closed loop hides a stall"*"| slow-echo | 10 | 50 ms every second | 50,000 | 310 | 25,000 | 41,000 | 49,000 |"* ]]
}

@test "bench: the report has poll against epoll, and the failures by error" {
    run report
    [[ $output == *"## poll against epoll, beside idle connections"*"| step4 | 1,000 | 27,500 | 14.8 | 34 | 72 |"*"| poll-echo | 1,000 | 9,000 | 98.6 | 104 | 190 |"* ]]
    [[ $output == *"## Failures"*"- step2, echo64, 1000: run 2: connect: Connection timed out ×12; echo: closed by the server ×3"* ]]
}

@test "bench: the report has step 5's scaling by loops, and how the kernel spread the connections" {
    run report
    [[ $output == *"## Step 5: one event loop per CPU"*"| 1 | 150,000 | 5.50 | 5.75 | 120,000 | 7.00 | 6.00 |"*"| 2 | 180,000 | 6.25 | 5.10 | 140,000 | 7.50 | 6.50 |"* ]]
    [[ $output == *"With 2 loops, the kernel gave 1,000 connections to the loops: 480 to the one that got the"*"fewest, 520 to the one that got the most"* ]]
}

@test "bench: the report has step 5's one busy loop, alone and beside a streaming client" {
    run report
    [[ $output == *"## Step 5: one busy loop"*"| 0 | 9,100 | 62 | 120 | 411 | 2,100 | 0.1% |"*"| 1 | 9,100 | 70 | 1,490 | 5,121 | 20,990 | 0.4% |"*"100 clients at a tenth"* ]]
}

@test "bench: a model that would not start is listed with the line it printed" {
    run report "$FIXTURES/machine-quick.tsv"
    [[ $output == *"## Not measured"*"- step6: io_uring_setup: Operation not permitted"* ]]
}

@test "bench: every table of the report has a sentence under it" {
    run report
    # After each table's last row, a blank line, then text that is not a heading.
    local after
    after=$(awk '/^\|/ { t = 1; next } t && /^$/ { next } t { print substr($0, 1, 1); t = 0 }' <<<"$output" | sort -u)
    [ "$after" != "#" ]
    [[ $after != *"#"* ]]
}

@test "bench: the chart has the six panels, one line or bar per model" {
    run awk -f "$ROOT/bench/models.awk" -f "$ROOT/bench/chart.awk" "$FIXTURES/results.tsv"
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "<svg "* ]]
    [ "${lines[${#lines[@]} - 1]}" = "</svg>" ]
    [[ $output == *"User memory per idle connection"*"Kernel beside user memory"*"Connections held"*"Echo throughput"*"p99 latency under offered load"*"poll against epoll"* ]]
    # Lines: memory step4, step2, node; throughput step4, step2, node;
    # latency step4, node; poll step4, poll.
    [ "$(grep -c '<polyline' <<<"$output")" -eq 10 ]
    # ≈0 (node's PSS) sits on a floor, labelled so.
    [[ $output == *">≈0<"* ]]
    # Bars: user and kernel for each of step4, step2, node; held and tried
    # for step4 and step3, with what stopped each.
    [ "$(grep -c 'fill-opacity' <<<"$output")" -eq 6 ]
    [[ $output == *">19,992 of 40,000: open files<"* ]]
    [[ $output == *">29,755 of 30,670: connections reset<"* ]]
    [[ $output == *">poll-echo<"* ]]
}

@test "bench: the committed run's report and chart are what report.awk and chart.awk make of its TSV" {
    # bench-results.md and .svg are made from bench-results.tsv (and the
    # machine's TSV) and nothing else, so a change to the report or the
    # chart must come with them made again.
    run awk -f "$ROOT/bench/models.awk" -f "$ROOT/bench/report.awk" "$ROOT/bench-results-machine.tsv" "$ROOT/bench-results.tsv"
    [ "$status" -eq 0 ]
    [ "$output" = "$(cat "$ROOT/bench-results.md")" ]
    run awk -f "$ROOT/bench/models.awk" -f "$ROOT/bench/chart.awk" "$ROOT/bench-results.tsv"
    [ "$status" -eq 0 ]
    [ "$output" = "$(cat "$ROOT/bench-results.svg")" ]
}
