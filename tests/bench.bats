#!/usr/bin/env bats
# The bench's parsers, tables and chart, on canned /proc readings and a
# canned results file (tests/fixtures/bench), so they are checked without
# running a benchmark.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
FIXTURES=$ROOT/tests/fixtures/bench
. "$ROOT/bench/measure.bash"

@test "bench: RSS and anonymous PSS are summed over all the server's processes" {
    run user_memory "$FIXTURES/smaps_rollup.1" "$FIXTURES/smaps_rollup.2"
    [ "$output" = $'rss 2816\npss 650' ]
}

@test "bench: thread stacks are the anonymous read-write mappings of the stack size" {
    run thread_stacks "$FIXTURES/smaps" 8192
    [ "$output" = $'stack_reserved 16384\nstack_resident 28' ]
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

@test "bench: fields are read from loadgen's JSON line" {
    local json='{"mode":"hold","opened":40000,"first_failure":"connect: Connection timed out","p50_us":12.5}'
    [ "$(json_field opened <<<"$json")" = 40000 ]
    [ "$(json_field first_failure <<<"$json")" = "connect: Connection timed out" ]
    [ "$(json_field p50_us <<<"$json")" = 12.5 ]
    [ -z "$(json_field missing <<<"$json")" ]
}

@test "bench: the report has the machine, memory, limits, throughput and Node.js tables" {
    run awk -f "$ROOT/bench/report.awk" "$FIXTURES/machine.tsv" "$FIXTURES/results.tsv"
    [ "$status" -eq 0 ]
    [[ $output == *"| cpu | Test CPU |"* ]]
    # Rows in the order models first appear, connections in increasing order.
    [[ $output == *"| step4 | 100 | - | 40 |"*"| step4 | 10,000 | 24 | 20 |"*"| step2 | 100 | - | 45,000 |"* ]]
    [[ $output == *"| step3 | 30,000 | 19,996 | 19,996 | open files per process | accept: Too many open files; pausing before the next try | connect: Connection timed out |"* ]]
    [[ $output == *"| step4 | 100 | 75,553 | -–- | - | - | - | 11.7 |"* ]]
    [[ $output == *"| 1 | 1.50 | - |"* ]]
    [[ $output == *"| 100 | 1.82 | 0.48 |"* ]]
    # Below zero is noise; problems are listed.
    [[ $output == *"| node | 100 | - | ≈0 |"* ]]
    [[ $output == *"## Problems"*"- step4, echo64, 1000: loadgen gave no result"* ]]
}

@test "bench: the chart has one line per model in each panel" {
    run awk -f "$ROOT/bench/chart.awk" "$FIXTURES/results.tsv"
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "<svg "* ]]
    [ "${lines[${#lines[@]} - 1]}" = "</svg>" ]
    # memory: step4 and step2; throughput: step4 and node.
    [ "$(grep -c '<polyline' <<<"$output")" -eq 4 ]
    [[ $output == *"User memory per idle connection"*"Echo throughput"* ]]
    [[ $output == *">step4<"*">step2<"* ]]
}
