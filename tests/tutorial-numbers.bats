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

# The sentence that names the machine of the committed run names the one in
# bench-results-machine.tsv.
@test "numbers: the tutorial names the machine the committed run was made on" {
    local tsv=$ROOT/bench-results-machine.tsv machine value
    machine=$(awk '/^The committed run, / { p = 1 } p { printf "%s ", $0 } p && /^$/ { exit }' "$ROOT/TUTORIAL.md")
    machine=$(tr -s ' ' <<<"$machine")
    for value in \
        "$(awk -F'\t' '$2 == "cores" { print $3 "-core" }' "$tsv")" \
        "$(awk -F'\t' '$2 == "cpu" { print "its CPU: " $3 }' "$tsv")" \
        "$(awk -F'\t' '$2 == "virtual machine" { print ($3 ~ /^yes/ ? "virtual machine" : "") }' "$tsv")" \
        "$(awk -F'\t' '$2 == "memory" { print $3 " of" }' "$tsv")" \
        "$(awk -F'\t' '$2 == "kernel" { split($3, v, "."); print "Linux " v[1] "." v[2] }' "$tsv")" \
        "$(awk -F'\t' '$2 == "os" { sub(/ GNU\/Linux/, "", $3); sub(/ \(.*/, "", $3); print $3 }' "$tsv")" \
        "$(awk -F'\t' '$2 == "open files (soft/hard)" { split($3, v, "/"); print "open-file limit at " v[1] }' "$tsv" |
            sed -E ':a; s/([0-9])([0-9]{3})($|[^0-9])/\1,\2\3/; ta')" \
        "$(awk -F'\t' '$2 == "kernel.pid_max" { print "pid_max` at " $3 }' "$tsv" |
            sed -E ':a; s/([0-9])([0-9]{3})($|[^0-9])/\1,\2\3/; ta')"; do
        [[ $machine == *"$value"* ]] || { echo "the tutorial does not say: $value" >&2; return 1; }
    done
}
