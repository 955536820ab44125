#!/usr/bin/env bats
# The idle-timeout exercise of TUTORIAL.md ("What these servers leave out
# for the open internet"): step 4 with IDLE_TIMEOUT_MS at 2000 closes, and
# logs, a connection that has moved no byte for 2 s, and only such a
# connection. Step 4 as it is fails here: it keeps idle clients for ever.
#   SERVER=path/to/server bats tests/exercises/step4-idle-timeout.bats
# checks your own; tests/solutions/step4-idle-timeout.patch passes. Its
# mutations, tests/mutations/step4-idle-timeout-*.patch, are each a wrong
# solution, as a change on top of the right one ("On:" in tests/mutate).
# Not part of make test (bats tests/ does not look in subfolders).

load ../helpers
SERVER=${SERVER:-$ROOT/step4-epoll/server}

IDLE_MS=2000     # IDLE_TIMEOUT_MS, as the exercise sets it
CLOSE_WITHIN=8   # seconds to wait for a close: the timeout, and room for a busy machine

# Milliseconds on the wall clock (EPOCHREALTIME: seconds and microseconds,
# with the locale's decimal point, which is dropped).
now_ms() {
    local us=${EPOCHREALTIME//[!0-9]/}
    echo $((us / 1000))
}

# Opens a connection as CONN and has it echo one line, so the server is
# serving it. STARTED is the time just before the line went out: the server
# cannot have seen a byte from it any earlier.
connect_idle() {
    local line
    exec {CONN}<>"/dev/tcp/127.0.0.1/$PORT"
    STARTED=$(now_ms)
    echo hello >&"$CONN"
    read -r -t 5 line <&"$CONN"
    [ "$line" = hello ]
}

# The server closes CONN, with nothing sent first, within CLOSE_WITHIN
# seconds, but no sooner than IDLE_MS after STARTED (less 50 ms: the two
# clocks round differently).
expect_idle_close() {
    local line status=0 elapsed
    read -r -t "$CLOSE_WITHIN" line <&"$CONN" || status=$?
    elapsed=$(($(now_ms) - STARTED))
    if [ "$status" -gt 128 ]; then
        echo "an idle client is still connected after $CLOSE_WITHIN s" >&2
        return 1
    fi
    if [ "$status" -eq 0 ] || [ -n "$line" ]; then
        echo "the server sent '$line' instead of closing" >&2
        return 1
    fi
    if [ "$elapsed" -lt $((IDLE_MS - 50)) ]; then
        echo "closed after $elapsed ms idle, sooner than $IDLE_MS ms" >&2
        return 1
    fi
    exec {CONN}>&-
}

# A client that is slow but never idle: it sends a line every 0.25 s, eight
# times as often as the timeout, and checks each echo, until its stdin
# closes; then it checks one more, prints "echoed N lines" and exits 0. It
# prints "serving" after its first echo, and "closed after N lines" and
# exits 1 as soon as the server closes it. $1 is the port.
BUSY_CLIENT='
exec 5<>"/dev/tcp/127.0.0.1/$1" || exit 1
i=0 stop=
while :; do
    i=$((i + 1))
    echo "line $i" >&5
    if ! read -r -t 5 line <&5 || [ "$line" != "line $i" ]; then
        echo "closed after $((i - 1)) lines"
        exit 1
    fi
    [ "$i" -gt 1 ] || echo serving
    [ -z "$stop" ] || break
    # The pace of the client under test, not a wait for an event. At the
    # end of stdin, read fails at once with 1 rather than a timeout.
    read -r -t 0.25 <&0 || [ $? -gt 128 ] || stop=yes
done
echo "echoed $i lines"'

@test "an idle client is closed 2 s after its last byte, not sooner, and the close is logged" {
    start_server
    local before=$(fd_count "$SERVER_PID")
    connect_idle
    expect_idle_close
    # Closed, not only shut down: its descriptor is free for another client.
    wait_until 5 '[ "$(fd_count "$SERVER_PID")" -eq "$before" ]'
    wait_until 5 'grep -q "client .*idle" "$SERVER_LOG"'
    echo_ok
}

@test "a client that sends every 0.25 s stays connected while idle ones beside it are closed" {
    start_server -q
    spawn busy bash -c "$BUSY_CLIENT" busy-client "$PORT"
    expect busy '^serving$'
    # One idle client after another: the busy one outlives two timeouts.
    connect_idle
    expect_idle_close
    connect_idle
    expect_idle_close
    local status=0
    finish busy || status=$?
    expect busy '^echoed [0-9]+ lines$'
    [ "$status" -eq 0 ]
}

@test "waiting for the next deadline uses no CPU" {
    start_server -q
    connect_idle
    local ticks=$(cpu_ticks "$SERVER_PID")
    sleep 1  # a window to measure CPU use over, inside the timeout; not a wait for an event
    local used=$(($(cpu_ticks "$SERVER_PID") - ticks))
    echo "server used $used ticks in 1 s" >&2
    [ "$used" -lt 10 ]
}
