# helpers.bash: what every step's tests share.
#
# SERVER is the binary under test; each .bats file sets its own step's as
# the default, and SERVER=path/to/yours runs the same tests against yours.
# CLIENT is tools/echo-client. Every server and client a test starts runs in
# the background and is killed in teardown, whatever the test's outcome.

# The repository: the folder above this file's, whichever folder the suite
# that loads it is in (tests/exercises/ too).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLIENT=${CLIENT:-$ROOT/tools/echo-client}

setup() {
    if [ -z "${BATS_TEST_TMPDIR:-}" ]; then
        echo "these tests need bats-core 1.4 or later" >&2
        return 1
    fi
    declare -gA PIDS=() IN_FDS=() OUT_FDS=()
    # Commands put in front of the server, such as a resource limit.
    SERVER_WRAPPER=()
    if [ ! -x "$SERVER" ] || [ ! -x "$CLIENT" ]; then
        echo "missing $SERVER or $CLIENT: run make first" >&2
        return 1
    fi
}

teardown() {
    [ -n "${BATS_TEST_COMPLETED:-}" ] || report_failure
    kill_spawned
}

# What a failing test shows besides its own message: the rule it checks,
# how the server ended, the end of its log, and what each client it
# started said on stderr.
report_failure() {
    local file name
    [ -z "${RULE:-}" ] || echo "the rule this test checks: $RULE"
    if [ -n "${SERVER_PID:-}" ]; then
        server_fate
        echo "the server: $SERVER_FATE"
        if [ -s "$SERVER_LOG" ]; then
            echo "the end of its log (stderr):"
            tail -n 15 "$SERVER_LOG" | sed 's/^/    /'
        fi
    fi
    for file in "$BATS_TEST_TMPDIR"/*.err; do
        name=${file##*/}
        name=${name%.err}
        [ "$name" != server ] && [ -s "$file" ] || continue
        echo "$name said on stderr:"
        tail -n 10 "$file" | sed 's/^/    /'
    done
} >&2

# Sets SERVER_FATE to how the server is: "running", or how it ended
# ("killed by SIGPIPE", "exited with status 1"), collected with wait if
# nobody has yet. Not to be called in $(...): a subshell cannot wait for
# its parent's child.
server_fate() {
    local status=0
    if ! exited "$SERVER_PID"; then
        SERVER_FATE=running
    elif [ -z "${PIDS[server]:-}" ]; then
        SERVER_FATE="exited (its status was collected by the test)"
    else
        wait "$SERVER_PID" || status=$?
        unset "PIDS[server]"
        if [ "$status" -gt 128 ]; then
            SERVER_FATE="killed by SIG$(kill -l $((status - 128)))"
        else
            SERVER_FATE="exited with status $status"
        fi
    fi
}

kill_spawned() {
    local name pid
    for name in "${!PIDS[@]}"; do
        pid=${PIDS[$name]}
        # Each spawned command leads its own process group (setsid), so
        # this also kills a forking server's children, even if the server
        # itself has already died and they have been left behind.
        kill -KILL -- "-$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# spawn NAME COMMAND...: runs COMMAND in the background with its stdin and
# stdout on pipes to this test: `expect NAME REGEX` reads what it says, and
# `finish NAME` closes its stdin and waits for it. Its stderr goes to
# $BATS_TEST_TMPDIR/NAME.err.
spawn() {
    local name=$1 fd
    shift
    local in=$BATS_TEST_TMPDIR/$name.in out=$BATS_TEST_TMPDIR/$name.out
    mkfifo "$in" "$out"
    # The command gets no descriptor but its stdin, stdout and stderr: not
    # this test's other pipes (so closing a command's stdin here really
    # ends it), nor bats's (bats waits for whoever holds its fd 3). setsid
    # gives it a process group of its own.
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && exec {fd}>&-
        done
        exec setsid "$@"
    ) <"$in" >"$out" 2>"$BATS_TEST_TMPDIR/$name.err" &
    PIDS[$name]=$!
    # <> opens a pipe without waiting for the other end, so a command that
    # fails to start cannot hang the test here.
    exec {fd}<>"$in"
    IN_FDS[$name]=$fd
    exec {fd}<>"$out"
    OUT_FDS[$name]=$fd
}

# expect NAME REGEX [SECONDS]: the next line NAME prints matches REGEX
# (BASH_REMATCH holds its groups). Waits at most SECONDS (default 10).
expect() {
    local name=$1 regex=$2 seconds=${3:-10} line
    if ! read -r -t "$seconds" line <&"${OUT_FDS[$name]}"; then
        echo "$name printed no line in $seconds s; its stderr:" >&2
        cat "$BATS_TEST_TMPDIR/$name.err" >&2
        return 1
    fi
    if ! [[ $line =~ $regex ]]; then
        echo "$name printed '$line', expected /$regex/; its stderr:" >&2
        cat "$BATS_TEST_TMPDIR/$name.err" >&2
        return 1
    fi
}

# finish NAME: closes NAME's stdin (a held client then checks its
# connections and exits) and returns NAME's exit status.
finish() {
    local name=$1 status=0
    exec {IN_FDS[$name]}>&-
    wait "${PIDS[$name]}" || status=$?
    unset "PIDS[$name]"
    return "$status"
}

# start_server [ARGS...]: starts $SERVER -p 0 ARGS and waits for its
# "listening on ADDRESS:PORT" line. Sets SERVER_PID, PORT and SERVER_LOG
# (its stderr).
start_server() {
    spawn server "${SERVER_WRAPPER[@]}" "$SERVER" -p 0 "$@"
    SERVER_PID=${PIDS[server]}
    SERVER_LOG=$BATS_TEST_TMPDIR/server.err
    expect server '^listening on (.+):([0-9]+)$' 5
    PORT=${BASH_REMATCH[2]}
}

# stop_server SIGNAL: sends SIGNAL and returns the server's exit status.
stop_server() {
    kill -s "$1" "$SERVER_PID"
    wait_for_exit "$SERVER_PID" 10
    finish server
}

# wait_until SECONDS 'CONDITION': evaluates the shell CONDITION again and
# again until it holds, for at most SECONDS. Single-quote CONDITION, so
# that it is evaluated on each try rather than once, before the call. For
# states nothing announces, such as a count of threads.
wait_until() {
    local deadline=$((SECONDS + $1))
    until eval "$2"; do
        if [ "$SECONDS" -gt "$deadline" ]; then
            echo "still false after $1 s: $2" >&2
            return 1
        fi
        sleep 0.02
    done
}

# The state letter of process $1 (R, S, Z...), or nothing once it is gone.
process_state() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
    stat=${stat##*) }  # drop "pid (name) ": a name may contain spaces
    echo "${stat%% *}"
}

# A process that has exited stays a zombie (Z) until waited for.
exited() {
    local state
    state=$(process_state "$1")
    [ -z "$state" ] || [ "$state" = Z ]
}

wait_for_exit() {
    wait_until "$2" "exited $1"
}

alive() {
    exited "$SERVER_PID" || return 0
    server_fate
    echo "the server is not running: $SERVER_FATE" >&2
    return 1
}

# interface RULE: this test checks the command-line interface every step
# shares, not the lesson; RULE is the rule it checks, printed if it fails.
# ONLY=lesson skips these tests, to check a server of your own that does
# not (yet) follow the whole interface.
interface() {
    [ "${ONLY:-}" != lesson ] || skip "an interface test (ONLY=lesson)"
    RULE=$1
}

# SIGSTOP to the server's whole session: all its threads and, in step 2,
# its children; returns once every one of them has stopped (kill() only
# sends the signal, each task stops when it next runs).
pause_server() {
    kill -STOP -- "-$SERVER_PID"
    wait_until 5 'session_stopped "$SERVER_PID"'
}

resume_server() {
    kill -CONT -- "-$SERVER_PID"
}

# SIGSTOP, then SIGCONT: a blocking call the stop interrupts after doing
# part of its work returns what it did. SIGCONT is sent only once every task
# has stopped: SIGCONT discards any stop signal still pending (POSIX, "Signal
# Generation and Delivery"), so sent at once it could cancel the stop before
# it had reached, and interrupted, every thread.
interrupt_server() {
    pause_server
    resume_server
}

# Every task (thread) of every process in session $1 is stopped (T) or a
# zombie. The server leads a session of its own (spawn uses setsid).
session_stopped() {
    local states
    states=$(ps -L -s "$1" -o stat= 2>/dev/null) && [ -n "$states" ] &&
        ! grep -qv '^[TZ]' <<<"$states"
}

# The TCP connections on the server's port, in any state but LISTEN, from
# /proc/net/tcp and tcp6 (state 0A is LISTEN). A reset one is gone at once.
connections_on_port() {
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v port="$(printf ':%04X' "$PORT")" \
            '$4 != "0A" && substr($2, length($2) - 4) == port { n++ } END { print n + 0 }'
}

# echo_ok [CLIENT OPTIONS...]: one client run against the server succeeds.
echo_ok() {
    run "$CLIENT" -p "$PORT" "$@"
    if [ "$status" -ne 0 ]; then
        echo "echo-client $* failed: $output" >&2
        return 1
    fi
}

thread_count() {
    awk '/^Threads:/ { print $2 }' "/proc/$1/status"
}

fd_count() {
    local fds=("/proc/$1/fd/"*)
    echo "${#fds[@]}"
}

# Every log line starts "NAME[ID]: ", ID being the id of the thread that
# wrote it. log_ids PATTERN: the distinct ids of the lines matching PATTERN.
log_ids() {
    grep -- "$1" "$SERVER_LOG" | sed -E 's/^[^ []+\[([0-9]+)\]: .*/\1/' | sort -u
}

# The pid and state (S, R, Z...) of each child process of $1.
children_of() {
    ps -o pid=,stat= --ppid "$1" || true
}

child_count() {
    children_of "$1" | grep -c . || true
}

# CPU time (user + system, in clock ticks) the process has used so far.
cpu_ticks() {
    local stat
    read -r stat <"/proc/$1/stat"
    stat=${stat##*) }  # drop "pid (name) ": a name may contain spaces
    set -- $stat
    echo $((${12} + ${13}))  # utime and stime; $12 would be ${1}2
}
