#!/usr/bin/env bats
# Every number TUTORIAL.md quotes from the bench is the committed run's
# (bench-results.tsv), so a new run cannot leave the prose behind. How a
# number names its source: tests/bench-numbers.awk.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
CHECK=$ROOT/tests/bench-numbers.awk
FIXTURES=$ROOT/tests/fixtures/numbers

@test "numbers: every number the tutorial quotes from the bench is the committed run's" {
    run awk -f "$CHECK" "$ROOT/bench-results.tsv" "$ROOT/TUTORIAL.md"
    [ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
}

@test "numbers: the check passes numbers rounded as they are written" {
    run awk -f "$CHECK" "$FIXTURES/run.tsv" "$FIXTURES/right.md"
    [ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
}

@test "numbers: the check finds a wrong number, a wrong ratio, an unknown source and an unmarked figure" {
    run awk -f "$CHECK" "$FIXTURES/run.tsv" "$FIXTURES/wrong.md"
    [ "$status" -eq 1 ]
    [[ $output == *"wrong.md:1: 77,000: the committed run says 77772"* ]]
    [[ $output == *"wrong.md:2: 2.1: the committed run says 2.0"* ]]
    [[ $output == *"wrong.md:2: a measured number without its source: 14 µs"* ]]
    [[ $output == *"wrong.md:3: no number in the committed run for step9/none/1/key"* ]]
}
