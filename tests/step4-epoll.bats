#!/usr/bin/env bats
# Step 4, epoll: one thread, an event loop, nonblocking sockets.
# SERVER=path/to/server bats tests/step4-epoll.bats checks your own.

load every_step
SERVER=${SERVER:-$ROOT/step4-epoll/server}

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

@test "out of descriptors: neither dies nor spins, then serves everyone" { check_out_of_descriptors; }

@test "exactly one thread, and no CPU used, while 500 clients are connected" {
    start_server -q
    local before=$(fd_count "$SERVER_PID")
    spawn holder "$CLIENT" -p "$PORT" -c 500 hold
    expect holder '^connected 500$'
    wait_until 10 '[ "$(fd_count "$SERVER_PID")" -ge $((before + 500)) ]'
    [ "$(thread_count "$SERVER_PID")" -eq 1 ]
    [ "$(child_count "$SERVER_PID")" -eq 0 ]
    # Idle connections wake nothing: a loop that watched for EPOLLOUT all
    # the time would spin, since an idle socket can always be written.
    local ticks=$(cpu_ticks "$SERVER_PID")
    sleep 1  # a window to measure CPU use over, not a wait for an event
    [ $(($(cpu_ticks "$SERVER_PID") - ticks)) -lt 10 ]
    finish holder
}

# 10,000 idle connections, each then echoed. An idle connection owns no
# buffer, so the server's resident memory grows by far less than 1 KiB per
# connection (one 16 KiB buffer each would be 160 MB).
@test "holds 10,000 concurrent clients and echoes each" {
    # The server and the client each need 10,000 descriptors and some more.
    [ "$(ulimit -Hn)" -ge 10100 ] || skip "the open-file hard limit is under 10,100 here"
    start_server -q
    local before_fds=$(fd_count "$SERVER_PID")
    local before_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
    spawn holder "$CLIENT" -p "$PORT" -c 10000 -t 60 hold
    expect holder '^connected 10000$' 60
    wait_until 30 '[ "$(fd_count "$SERVER_PID")" -ge $((before_fds + 10000)) ]'
    local after_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
    echo "resident memory grew by $((after_kb - before_kb)) KiB" >&2
    [ $((after_kb - before_kb)) -lt 10000 ]
    finish holder
    expect holder '^echoed 10000 connections'
}

@test "raises its soft open-file limit to the hard limit" {
    SERVER_WRAPPER=(prlimit --nofile=256:4096)
    start_server -q
    grep -Eq '^Max open files +4096 +4096 ' "/proc/$SERVER_PID/limits"
}

@test "SIGTERM: closes everything and prints connections served and bytes echoed" {
    start_server -q
    local before=$(fd_count "$SERVER_PID")
    echo_ok -c 3 -s 1000
    spawn holder "$CLIENT" -p "$PORT" -c 2 -s 10 hold
    expect holder '^connected 2$'
    wait_until 10 '[ "$(fd_count "$SERVER_PID")" -eq $((before + 2)) ]'
    stop_server TERM
    # 3 x 1000 bytes, and the one byte each held client has echoed.
    grep -Eq '^[^ ]+\[[0-9]+\]: served 5 connections, echoed 3002 bytes$' "$SERVER_LOG"
    # The held clients find their connections closed.
    local status=0
    finish holder || status=$?
    [ "$status" -eq 1 ]
    grep -q 'server closed after echoing 1 of 10 bytes' "$BATS_TEST_TMPDIR/holder.err"
}

# Its stderr on a pipe that nobody reads: a FIFO held open by a sleep that
# never reads it. 3,000 connections make 6,000 log lines, about 350 KB, and
# a pipe holds 64 KiB: a server whose write(2) waited for room would stop
# serving there, with the echo-client's clients still waiting.
@test "a log nobody reads: keeps serving, drops lines, then says how many" {
    # Over a thousand clients at a time, each end needing a descriptor.
    [ "$(ulimit -Hn)" -ge 4096 ] || skip "the open-file hard limit is under 4,096 here"
    local fifo=$BATS_TEST_TMPDIR/log.fifo drained=$BATS_TEST_TMPDIR/drained.log
    mkfifo "$fifo"
    # Opening a FIFO waits for the other end: the sleep and the server
    # meet there, and from then on the sleep holds it open, unread.
    spawn stalled bash -c 'exec sleep 600 <"$0"' "$fifo"
    SERVER_WRAPPER=(bash -c 'exec "$@" 2>"$0"' "$fifo")
    start_server
    echo_ok -c 3000 -t 30
    [ "$output" = "echoed 3000 connections, 1000 bytes each" ]
    alive
    # Now read the pipe. Once cat has written something, it has read all
    # that the pipe held (one read(2) takes it), so the lines that follow
    # find room, and the first of them brings the count: at the latest, the
    # one the server writes as it stops.
    spawn drain bash -c 'exec cat "$0" >"$1"' "$fifo" "$drained"
    wait_until 10 '[ -s "$drained" ]'
    stop_server TERM
    finish drain  # cat sees the end once the server, the only writer, exits
    [ ! -s "$SERVER_LOG" ]  # no complaint from the server about its stderr
    local reports written dropped=0 n
    reports=$(grep -E '^[^ ]+\[[0-9]+\]: [0-9]+ log lines? dropped$' "$drained" | grep -Eo ' [0-9]+ ' || true)
    if [ -z "$reports" ]; then
        echo "no line says how many log lines were dropped" >&2
        return 1
    fi
    for n in $reports; do
        dropped=$((dropped + n))
    done
    # Every line is in the log or in a count: 2 per connection, the line
    # that says it is shutting down, and the summary.
    written=$(grep -Evc ' log lines? dropped$' "$drained")
    echo "$written lines written, $dropped dropped" >&2
    [ $((written + dropped)) -eq 6002 ]
    [ "$(tail -n 1 "$drained" | sed -E 's/^[^ ]+\[[0-9]+\]: //')" = "served 3000 connections, echoed 3000000 bytes" ]
}

# O_NONBLOCK belongs to an open file description, shared by every
# descriptor dup()ed from it: here stdout and stderr are one pipe (2>&1),
# as a shell would leave them. The log's flag must be on a description of
# its own, or whoever shares the old one would find it nonblocking too.
# /proc/PID/fdinfo/N shows each descriptor's flags, in octal; O_NONBLOCK
# is 04000 (on x86 and arm; see <asm-generic/fcntl.h>).
nonblocking_flag() {
    local flags
    flags=$(awk '/^flags:/ { print $2 }' "/proc/$SERVER_PID/fdinfo/$1")
    if (( 8#$flags & 04000 )); then echo yes; else echo no; fi
}

@test "its log is made nonblocking on a description of its own, not the one stdout shares" {
    SERVER_WRAPPER=(bash -c 'exec "$0" "$@" 2>&1')
    start_server -q
    [ "$(nonblocking_flag 2)" = yes ]
    [ "$(nonblocking_flag 1)" = no ]
}
