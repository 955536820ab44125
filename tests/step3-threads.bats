#!/usr/bin/env bats
# Step 3, threads: a thread per client, one process.
# SERVER=path/to/server bats tests/step3-threads.bats checks your own.

load every_step
SERVER=${SERVER:-$ROOT/step3-threads/server}

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

@test "concurrent clients: one process, one thread each, the count rises and falls" {
    start_server
    [ "$(thread_count "$SERVER_PID")" -eq 1 ]
    spawn holder "$CLIENT" -p "$PORT" -c 5 hold
    expect holder '^connected 5$'
    wait_until 10 '[ "$(thread_count "$SERVER_PID")" -eq 6 ]'
    [ "$(child_count "$SERVER_PID")" -eq 0 ]
    # Each connection's log line carries the id of the thread serving it.
    wait_until 5 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 5 ]'
    [ "$(log_ids ' connected' | wc -l)" -eq 5 ]
    finish holder
    wait_until 10 '[ "$(thread_count "$SERVER_PID")" -eq 1 ]'
}

@test "a failed pthread_create drops that client and the server keeps serving" {
    limit_processes 3  # the main thread and two client threads
    start_server -q
    spawn holder "$CLIENT" -p "$PORT" -c 2 hold
    expect holder '^connected 2$'
    wait_until 10 '[ "$(thread_count "$SERVER_PID")" -eq 3 ]'
    run "$CLIENT" -p "$PORT" -t 10
    [ "$status" -eq 1 ]
    grep -q 'pthread_create: Resource temporarily unavailable; dropping client' "$SERVER_LOG"
    finish holder
    wait_until 10 '[ "$(thread_count "$SERVER_PID")" -eq 1 ]'
    echo_ok
}

# A thread nobody joins must be detached, or its stack (a mapping of
# `ulimit -s`, 8 MiB by default) stays after it ends. glibc keeps a few
# stacks of finished threads (up to 40 MiB) for reuse: allow for those.
thread_stacks_mapped() {
    grep -c "^Size: *$(ulimit -s) kB" "/proc/$SERVER_PID/smaps" || true
}

@test "threads of clients that left give their stacks back (detached)" {
    [ "$(ulimit -s)" != unlimited ] || skip "no fixed thread stack size (ulimit -s is unlimited)"
    start_server -q
    echo_ok -c 50 -s 10
    wait_until 10 '[ "$(thread_count "$SERVER_PID")" -eq 1 ]'
    echo "$(thread_stacks_mapped) thread stacks still mapped" >&2
    [ "$(thread_stacks_mapped)" -le 10 ]
}
