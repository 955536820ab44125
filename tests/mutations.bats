#!/usr/bin/env bats
# The bug list of tests/mutate, checked without running it: every patch says
# what it is, and every exercise in TUTORIAL.md that breaks a server, or
# promises that a test fails, names its bug or its solution, and the test
# it runs is the one the bug list says catches it. tests/mutate (run by
# .ci/run) then proves that the test does.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
TUTORIAL=$ROOT/TUTORIAL.md

# header FILE FIELD: the values of "FIELD: value" lines before the patch.
header() {
    sed -n '/^diff --git /q; s/^'"$2"': *//p' "$1"
}

# The exercises, one per record: "line<TAB>chapter<TAB>text", the text being
# the exercise's lines joined by spaces, comments and code blocks included.
# An exercise is an item of a numbered list under "### Exercises", or a
# whole section "### Exercise: ...".
exercises() {
    awk '
        function flush() { if (text != "") print start "\t" chapter "\t" text; text = ""; start = 0 }
        /^## / { flush(); chapter = substr($0, 4); inside = ""; next }
        /^### Exercise: / { flush(); inside = "section"; start = NR; next }
        /^### / { flush(); inside = ($0 == "### Exercises") ? "list" : ""; next }
        inside == "" { next }
        inside == "list" && /^[0-9]+\. / { flush(); start = NR }
        { if (start) text = text " " $0 }
        END { flush() }' "$TUTORIAL"
}

@test "mutations: every patch says what it is and which suite catches it" {
    local patch bad=0 suite
    for patch in "$ROOT"/tests/mutations/*.patch "$ROOT"/tests/solutions/*.patch; do
        if [ -z "$(header "$patch" Bug)$(header "$patch" Solution)" ] ||
            [ -z "$(header "$patch" Suite)" ] || ! grep -q '^diff --git ' "$patch"; then
            echo "${patch#$ROOT/}: needs Bug: (or Solution:), Suite: and a diff" >&2
            bad=1
        fi
        if [ -n "$(header "$patch" Bug)" ] && [ -z "$(header "$patch" Caught-by)" ]; then
            echo "${patch#$ROOT/}: a bug needs a Caught-by: line, the test that must fail" >&2
            bad=1
        fi
        for suite in $(header "$patch" Suite); do
            [ -f "$ROOT/$suite" ] || { echo "${patch#$ROOT/}: no suite $suite" >&2; bad=1; }
        done
    done
    [ "$bad" -eq 0 ]
}

@test "mutations: every exercise that breaks a server names its bug, and runs the test that catches it" {
    local line chapter text name kind patch file filter caught bad=0 checked=0
    while IFS=$'\t' read -r line chapter text; do
        name=$(sed -nE 's/.*<!-- (mutation|solution) ([^ ]+) -->.*/\2/p' <<<"$text")
        kind=$(sed -nE 's/.*<!-- (mutation|solution) ([^ ]+) -->.*/\1/p' <<<"$text")
        if [ -z "$name" ]; then
            # An exercise that talks of a test failing must say which bug.
            if grep -qiE '\bfail' <<<"$text"; then
                echo "TUTORIAL.md line $line ($chapter): an exercise that speaks of failing names no <!-- mutation NAME --> or <!-- solution NAME -->" >&2
                bad=1
            fi
            continue
        fi
        [ "$kind" = mutation ] && patch=$ROOT/tests/mutations/$name.patch
        [ "$kind" = solution ] && patch=$ROOT/tests/solutions/$name.patch
        if [ ! -f "$patch" ]; then
            echo "TUTORIAL.md line $line: no ${patch#$ROOT/}" >&2
            bad=1
            continue
        fi
        # The check the exercise runs: bats [-f FILTER] tests/FILE, or make test-stepN.
        file=$(grep -oE 'tests/[a-z0-9/-]+\.bats' <<<"$text" | head -n 1)
        if [ -z "$file" ]; then
            file=$(grep -oE 'make test-step[0-9]' <<<"$text" | head -n 1)
            [ -n "$file" ] && file=$(cd "$ROOT/tests" && ls step"${file#make test-step}"-*.bats) && file=tests/$file
        fi
        filter=$(sed -nE "s/.*bats -f '([^']+)'.*/\1/p; s/.*bats -f ([^ ']+) .*/\1/p" <<<"$text" | head -n 1)
        if [ -z "$file" ] || ! header "$patch" Suite | grep -qxF "$file"; then
            echo "TUTORIAL.md line $line: the exercise runs '${file:-no test}', ${patch#$ROOT/} is checked by: $(header "$patch" Suite | tr '\n' ' ')" >&2
            bad=1
        fi
        caught=$(header "$patch" Caught-by | paste -sd '|')
        if [ "$kind" = mutation ] && [ -n "$filter" ] && [ "$filter" != "$caught" ]; then
            echo "TUTORIAL.md line $line: the exercise runs bats -f '$filter', ${patch#$ROOT/} is Caught-by '$caught'" >&2
            bad=1
        fi
        checked=$((checked + 1))
    done < <(exercises)
    echo "$checked exercises checked" >&2
    [ "$bad" -eq 0 ] && [ "$checked" -gt 0 ]
}
