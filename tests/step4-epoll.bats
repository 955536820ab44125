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

@test "holds 10,000 concurrent clients and echoes each" { check_holds_10000; }

@test "raises its soft open-file limit to the hard limit" { check_raises_open_file_limit; }

@test "SIGTERM: closes everything and prints connections served and bytes echoed" { check_sigterm_summary; }

@test "a log nobody reads: keeps serving, drops lines, then says how many" { check_log_nobody_reads 6002; }

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
