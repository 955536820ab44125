#!/usr/bin/env bats
# Step 2, fork: a child process per client.
# SERVER=path/to/server bats tests/step2-fork.bats checks your own.

load every_step
SERVER=${SERVER:-$ROOT/step2-fork/server}

@test "echoes a line of text" { check_echoes_text; }
@test "echoes binary bytes (NUL, 0xFF) exactly" { check_echoes_binary; }
@test "echoes 64 MiB sent while reading, byte for byte" { check_echoes_large_payload; }
@test "a client that half-closes gets all its bytes back" { check_half_close; }
@test "a send cut short by a signal is finished (short writes)" { check_short_writes; }
@test "every send() cut short on purpose: the server sends the rest (short writes)" { check_short_sends; }
@test "clients that reset are dropped with EPIPE, not killed by SIGPIPE" { check_survives_resets; }
@test "logs one line per connect and disconnect" { check_logs_connections; }
@test "-q: no line per connection" { check_quiet; }
@test "SIGTERM: exits with status 0" { check_stops_on TERM; }
@test "SIGINT: exits with status 0" { check_stops_on INT; }
@test "listens on IPv6 with -b ::1" { check_ipv6; }
@test "-h: usage on stdout, status 0" { check_help; }
@test "bad arguments: one line on stderr, status 2" { check_bad_arguments; }
@test "port in use: one line naming it, status 1" { check_port_in_use; }
@test "restarts at once on the port of a server just stopped (SO_REUSEADDR)" { check_restarts_on_its_port; }

@test "a client that never reads delays nobody else" { check_flood_does_not_delay_others; }

@test "concurrent clients are served by distinct child processes" {
    start_server
    spawn holder "$CLIENT" -p "$PORT" -c 3 hold
    expect holder '^connected 3$'
    wait_until 10 '[ "$(child_count "$SERVER_PID")" -eq 3 ]'
    # Each connection's log line carries the id of the child serving it.
    wait_until 5 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 3 ]'
    local ids
    ids=$(log_ids ' connected')
    [ "$(echo "$ids" | wc -l)" -eq 3 ]
    ! echo "$ids" | grep -qx "$SERVER_PID" || return 1
    finish holder
    wait_until 10 '[ "$(child_count "$SERVER_PID")" -eq 0 ]'
}

# The listening socket's inode, from /proc/net/tcp (state 0A is LISTEN).
listening_inode() {
    awk -v port="$(printf ':%04X' "$PORT")" \
        '$4 == "0A" && substr($2, length($2) - 4) == port { print $10 }' /proc/net/tcp
}

@test "the child closes the listening socket, the parent the client's" {
    start_server -q
    spawn holder "$CLIENT" -p "$PORT" -c 1 hold
    expect holder '^connected 1$'
    wait_until 10 '[ "$(child_count "$SERVER_PID")" -eq 1 ]'
    local child inode
    child=$(children_of "$SERVER_PID" | awk '{ print $1 }')
    inode=$(listening_inode)
    [ -n "$inode" ]
    # The child holds the client's socket and not the listening one.
    ! readlink "/proc/$child/fd/"* | grep -qxF "socket:[$inode]" || return 1
    # The parent holds the listening socket and no other.
    [ "$(readlink "/proc/$SERVER_PID/fd/"* | grep -c '^socket:')" -eq 1 ]
    readlink "/proc/$SERVER_PID/fd/"* | grep -qxF "socket:[$inode]"
    finish holder
}

zombie_count() {
    children_of "$1" | grep -c ' Z' || true
}

live_child_count() {
    children_of "$1" | grep -vc ' Z' || true
}

# Each round's 500 children exit a moment after their clients see the end
# of the echo, while 5 held children live on: each exited child must be
# reaped then, not when the last child is gone. (A zombie lasts from its
# exit to its reaping: give the handler a moment.)
@test "no zombies: 2,000 children reaped as they exit, while others still run" {
    start_server -q
    spawn holder "$CLIENT" -p "$PORT" -c 5 hold
    expect holder '^connected 5$'
    local round
    for round in 1 2 3 4; do
        echo_ok -c 500 -s 100 -t 30
        wait_until 10 '[ "$(live_child_count "$SERVER_PID")" -eq 5 ]'
        wait_until 2 '[ "$(zombie_count "$SERVER_PID")" -eq 0 ]'
    done
    finish holder
    wait_until 10 '[ "$(child_count "$SERVER_PID")" -eq 0 ]'
    # And every one of them ended well: exited, with status 0.
    ! grep -E 'child [0-9]+ (killed|exited)' "$SERVER_LOG" || return 1
}

# A child that dies of a signal (here SIGKILL, from outside) is reported
# by the parent, which alone sees why, in waitpid()'s status.
@test "a child killed by a signal is reported in the log" {
    start_server -q
    spawn holder "$CLIENT" -p "$PORT" -c 1 hold
    expect holder '^connected 1$'
    wait_until 10 '[ "$(child_count "$SERVER_PID")" -eq 1 ]'
    local child
    child=$(children_of "$SERVER_PID" | awk '{ print $1 }')
    kill -KILL "$child"
    wait_until 5 'grep -q "child $child killed by signal 9\$" "$SERVER_LOG"'
    alive
}

@test "a failed fork drops that client and the server keeps serving" {
    limit_processes 3  # the server and two children
    start_server -q
    spawn holder "$CLIENT" -p "$PORT" -c 2 hold
    expect holder '^connected 2$'
    wait_until 10 '[ "$(child_count "$SERVER_PID")" -eq 2 ]'
    run "$CLIENT" -p "$PORT" -t 10
    [ "$status" -eq 1 ]
    grep -q 'fork: Resource temporarily unavailable; dropping client' "$SERVER_LOG"
    finish holder
    wait_until 10 '[ "$(child_count "$SERVER_PID")" -eq 0 ]'
    echo_ok
}
