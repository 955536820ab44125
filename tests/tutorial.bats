#!/usr/bin/env bats
# TUTORIAL.md stays true. Every code excerpt is the current text of the file
# it names, every diff is what `diff -u` prints today, and every command it
# tells the reader to type is run here, in order, with the output it shows
# checked. How each block is checked is written in a comment just above it;
# tutorial-blocks.awk lists the kinds.
#
# In the output a tutorial shows, <anything> stands for text that differs
# from run to run (a process id, a count), and a line "..." for any number of
# lines. Servers the reader starts on port 9000 run here on a port the
# kernel picks, and 9000 in the later commands and output means that port.
#
# Two rules keep a failure from passing for the output it happens to print:
# - Every command must succeed: its exit status (what $? says after the
#   line, so that of its last command) must be 0. Where the tutorial means
#   a command to fail, it ends the line with `; echo "status $?"`, so that
#   the status is printed and checked like the rest of the output. (A
#   command started in the background is left running, and only its first
#   line is checked.)
# - A line of output that reports a failure can only be matched by an
#   expected line that shows it too: neither "..." nor a <placeholder>
#   stands for it. Such lines are a failed test ("not ok ...", or bats's
#   "N tests, M failures" and "✗ ..." on a terminal) and make's errors
#   ("make: *** ...", "make[N]: *** ...").

load helpers
TUTORIAL=$ROOT/TUTORIAL.md
SERVER=$ROOT/step1-blocking/server   # for helpers.bash; the scenarios start their own
BATS_TEST_TIMEOUT=300

blocks() {
    awk -f "$BATS_TEST_DIRNAME/tutorial-blocks.awk" "$TUTORIAL"
}

# Prints the blocks with their annotation, as "line|language|annotation".
block_heads() {
    blocks | awk -F'\t' '$1 == "BLOCK" { print $2 "|" $3 "|" $4 }'
}

# The content of the block that starts at line $1.
block_body() {
    blocks | awk -v at="$1" -F'\t' '
        $1 == "BLOCK" { inside = ($2 == at); next }
        $0 == "END" { inside = 0; next }
        inside { print substr($0, 2) }'
}

@test "tutorial: every code, diff and console block says how it is checked" {
    local bad
    bad=$(block_heads | awk -F'|' '($2 == "c" || $2 == "diff" || $2 == "console") && $3 == ""')
    if [ -n "$bad" ]; then
        echo "blocks without a check (line|language|):" >&2
        echo "$bad" >&2
        return 1
    fi
}

@test "tutorial: every excerpt is the current text of the file it names" {
    local line lang note file body text needle checked=0
    while IFS='|' read -r line lang note; do
        [[ $note == "from "* ]] || continue
        file=$ROOT/${note#from }
        body=$(block_body "$line")
        text=$'\n'$(cat "$file")$'\n'
        needle=$'\n'$body$'\n'
        if [[ $text != *"$needle"* ]]; then
            echo "TUTORIAL.md line $line: this excerpt is not in ${note#from }:" >&2
            echo "$body" >&2
            return 1
        fi
        checked=$((checked + 1))
    done < <(block_heads)
    echo "$checked excerpts checked" >&2
    [ "$checked" -gt 0 ]
}

@test "tutorial: every diff is what diff -u prints today" {
    local line lang note old new today text hunk hunks needle checked=0
    while IFS='|' read -r line lang note; do
        [[ $note == "diff "* ]] || continue
        read -r old new <<<"${note#diff }"
        today=$(cd "$ROOT" && diff -u "$old" "$new" | tail -n +3)
        # Each hunk, from one "@@" line to the next, is checked on its own.
        hunks=()
        while IFS= read -r text; do
            if [[ $text == @@* ]] || [ "${#hunks[@]}" -eq 0 ]; then
                hunks+=("$text")
            else
                hunks[-1]+=$'\n'$text
            fi
        done < <(block_body "$line")
        today=$'\n'$today$'\n'
        for hunk in "${hunks[@]}"; do
            needle=$'\n'$hunk$'\n'
            if [[ $today != *"$needle"* ]]; then
                echo "TUTORIAL.md line $line: this hunk is not in diff -u $old $new:" >&2
                echo "$hunk" >&2
                return 1
            fi
            checked=$((checked + 1))
        done
    done < <(block_heads)
    echo "$checked hunks checked" >&2
    [ "$checked" -gt 0 ]
}

@test "tutorial: every command marked as run by CI is in .ci/run" {
    local line lang note text
    while IFS='|' read -r line lang note; do
        [ "$note" = "run by .ci/run" ] || continue
        while IFS= read -r text; do
            [[ $text == '$ '* ]] || continue
            grep -qxF "${text#\$ }" "$ROOT/.ci/run" || {
                echo "TUTORIAL.md line $line: .ci/run does not run: ${text#\$ }" >&2
                return 1
            }
        done < <(block_body "$line")
    done < <(block_heads)
}

# Does the output in file $2 match the expected lines in file $1? A line
# that reports a failure (see the top of this file) is matched only by an
# expected line that reports one too.
output_matches() {
    awk '
        function pattern(s) {
            gsub(/[][\\.^$*+?(){}|\/]/, "\\\\&", s)
            gsub(/<[^>]*>/, ".*", s)
            return "^" s "$"
        }
        function failure(s) {
            return s ~ /^not ok / || s ~ /^make(\[[0-9]+\])?: \*\*\*/ ||
                s ~ /^[0-9]+ tests?, [1-9][0-9]* failures?/ || s ~ /^ *✗ /
        }
        function fits(i, j,    k) {
            if (i > np) return j > na
            if (p[i] == "...") {
                for (k = j; k <= na + 1; k++) {
                    if (fits(i + 1, k)) return 1
                    if (k <= na && bad[k]) return 0  # "..." stops short of it
                }
                return 0
            }
            return j <= na && a[j] ~ re[i] && (!bad[j] || failure(p[i])) &&
                fits(i + 1, j + 1)
        }
        FILENAME == ARGV[1] { p[++np] = $0; re[np] = pattern($0); next }
        { a[++na] = $0; bad[na] = failure($0) }
        END { exit fits(1, 1) ? 0 : 1 }' "$1" "$2"
}

# A command the tutorial gives, as it runs here: a server it starts
# (./stepN-*/server) gets -p 0 unless the command names a port, and 9000
# means the port that server got.
adapt() {
    local cmd=$1
    if [[ $cmd != *" -p "* ]]; then
        cmd=$(sed -E 's#(^| )(\./[^ ]*/server)( |$)#\1\2 -p 0\3#' <<<"$cmd")
    fi
    [ -n "${TUTORIAL_PORT:-}" ] && cmd=${cmd//9000/$TUTORIAL_PORT}
    echo "$cmd"
}

# run_block LINE BACKGROUND: runs the commands of the console block at LINE.
run_block() {
    local line=$1 background=$2 cmd="" expected actual text
    expected=$BATS_TEST_TMPDIR/expected actual=$BATS_TEST_TMPDIR/actual
    : >"$expected"
    while IFS= read -r text; do
        if [[ $text == '$ '* ]]; then
            [ -n "$cmd" ] && run_command "$line" "$cmd" "$background"
            cmd=${text#\$ }
            : >"$expected"
        else
            [ -n "${TUTORIAL_PORT:-}" ] && text=${text//9000/$TUTORIAL_PORT}
            echo "$text" >>"$expected"
        fi
    done < <(block_body "$line")
    [ -n "$cmd" ] && run_command "$line" "$cmd" "$background"
}

run_command() {
    local line=$1 cmd background=$3 name first
    cmd=$(adapt "$2")
    echo "TUTORIAL.md line $line: \$ $cmd" >&2
    if [ "$background" = yes ]; then
        # Left running until the test ends; its first line is checked
        # (for a server, "listening on ...", which gives the port).
        name=bg$((++BACKGROUND))
        spawn "$name" bash -c "$cmd"
        read -r -t 10 first <&"${OUT_FDS[$name]}" || {
            echo "it printed nothing; stderr: $(cat "$BATS_TEST_TMPDIR/$name.err")" >&2
            return 1
        }
        if [[ $first =~ ^listening\ on\ .*:([0-9]+)$ ]]; then
            TUTORIAL_PORT=${BASH_REMATCH[1]}
            sed -i "s/9000/$TUTORIAL_PORT/g" "$expected"
        fi
        echo "$first" >"$actual"
        head -n 1 "$expected" >"$expected.first"
        output_matches "$expected.first" "$actual" || {
            echo "expected: $(cat "$expected.first")" >&2
            echo "got:      $first" >&2
            return 1
        }
        return 0
    fi
    # Run in this shell, not a subshell, so that `exec 5<>...` lasts. (The
    # tutorial's connections use descriptors 5 and 6: bats needs 3 and 4.)
    local status=0
    eval "$cmd" >"$actual" 2>&1 </dev/null || status=$?
    if [ "$status" -ne 0 ] || ! output_matches "$expected" "$actual"; then
        [ "$status" -eq 0 ] || echo "it exited with status $status" >&2
        echo "expected:" >&2
        cat "$expected" >&2
        echo "got:" >&2
        cat "$actual" >&2
        return 1
    fi
}

# run_scenario NAME: runs, in order, every console block marked "run NAME".
run_scenario() {
    local line lang note ran=0
    BACKGROUND=0
    TUTORIAL_PORT=
    # As from the reader's shell: when the tests run under make, a make in
    # a command would otherwise say which directories it enters and leaves.
    unset MAKELEVEL MAKEFLAGS MFLAGS
    cd "$ROOT"
    while IFS='|' read -r line lang note; do
        case $note in
        "run $1") run_block "$line" no ;;
        "run $1 background") run_block "$line" yes ;;
        *) continue ;;
        esac
        ran=$((ran + 1))
    done < <(block_heads)
    [ "$ran" -gt 0 ]
}

# Step 6 needs io_uring, which a kernel or a container may refuse: its
# server then says why and exits 1 at once (a server that works is still
# running after half a second, and is stopped), and its scenarios skip.
needs_io_uring() {
    local status=0 err
    err=$(timeout 0.5 "$ROOT/step6-io-uring/server" -q -p 0 2>&1 >/dev/null) || status=$?
    if [ "$status" -eq 1 ]; then
        skip "io_uring is refused here: $err"
    fi
}

@test "tutorial: every scenario it runs has a test in this file" {
    local name missing=0
    for name in $(block_heads | grep -v '|run by ' | sed -nE 's/^[0-9]+\|console\|run ([^ ]+).*/\1/p' | sort -u); do
        if ! grep -q "run_scenario $name;" "$BATS_TEST_FILENAME"; then
            echo "no test runs scenario $name" >&2
            missing=1
        fi
    done
    [ "$missing" -eq 0 ]
}

@test "tutorial: before step 1 (build, run, connect, test)" { run_scenario intro; }
@test "tutorial: step 1, a second client waits" { run_scenario step1; }
@test "tutorial: step 2, a child process per client" { run_scenario step2; }
@test "tutorial: step 3, a thread per client" { run_scenario step3; }
@test "tutorial: step 4, one thread for 5,000 clients" { run_scenario step4; }
@test "tutorial: step 4, a log nobody reads" { run_scenario step4-log; }
@test "tutorial: step 5, four loops, four listening sockets, clients spread" { run_scenario step5; }
@test "tutorial: step 6, one ring, and its system calls against step 4's" { needs_io_uring; run_scenario step6; }
@test "tutorial: step 6's exercises' checks" { needs_io_uring; run_scenario step6-exercises; }
@test "tutorial: the open internet, idle clients and one client's connections" { run_scenario internet; }
@test "tutorial: the open internet, a thread per client" { run_scenario internet-threads; }
@test "tutorial: the exercises' checks" { run_scenario exercises; }
@test "tutorial: measuring" { run_scenario measure; }
