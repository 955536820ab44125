#!/usr/bin/env bats
# bench/poll-echo, step 4's loop on poll(2), which `make bench` compares
# with epoll: it must be the same server, so it passes the tests every
# step passes, and step 4's own that do not look at epoll.

load every_step
SERVER=${SERVER:-$ROOT/bench/poll-echo}

@test "poll-echo: echoes a line of text" { check_echoes_text; }
@test "poll-echo: echoes binary bytes (NUL, 0xFF) exactly" { check_echoes_binary; }
@test "poll-echo: echoes 64 MiB sent while reading, byte for byte" { check_echoes_large_payload; }
@test "poll-echo: a client that half-closes gets all its bytes back" { check_half_close; }
@test "poll-echo: a send cut short by a signal is finished (short writes)" { check_short_writes; }
@test "poll-echo: every send() cut short on purpose: the server sends the rest (short writes)" { check_short_sends; }
@test "poll-echo: clients that reset are dropped with EPIPE, not killed by SIGPIPE" { check_survives_resets; }
@test "poll-echo: logs one line per connect and disconnect" { check_logs_connections; }
@test "poll-echo: -q: no line per connection" { check_quiet; }
@test "poll-echo: SIGTERM: exits with status 0" { check_stops_on TERM; }
@test "poll-echo: bad arguments: one line on stderr, status 2" { check_bad_arguments; }
@test "poll-echo: a client that never reads delays nobody else" { check_flood_does_not_delay_others; }
@test "poll-echo: out of descriptors: neither dies nor spins, then serves everyone" { check_out_of_descriptors; }

# Each close moves the last entry of poll()'s array into the closed one's
# slot: with 10,000 of them leaving, an entry moved wrongly leaves its
# connection unwatched, open after its client has gone.
@test "poll-echo: holds 10,000 clients, echoes each, and closes each as it leaves" {
    [ "$(ulimit -Hn)" -ge 10100 ] || skip "the open-file hard limit is under 10,100 here"
    start_server -q
    local before_fds=$(fd_count "$SERVER_PID")
    spawn holder "$CLIENT" -p "$PORT" -c 10000 -t 60 hold
    expect holder '^connected 10000$' 60
    wait_until 30 '[ "$(fd_count "$SERVER_PID")" -ge $((before_fds + 10000)) ]'
    finish holder
    expect holder '^echoed 10000 connections'
    wait_until 30 '[ "$(fd_count "$SERVER_PID")" -eq "$before_fds" ]'
    echo_ok
}

# Three connections in slots 0, 1 and 2. The first leaves, so the third is
# moved into its slot; then the third leaves, from that slot. If the move
# left the third's record pointing at slot 2, its close would drop the
# second's entry instead, and the second would never be read again.
@test "poll-echo: connections that leave out of order leave the others watched" {
    start_server
    local a b c reply
    exec {a}<>"/dev/tcp/127.0.0.1/$PORT"
    wait_until 10 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 1 ]'
    exec {b}<>"/dev/tcp/127.0.0.1/$PORT"
    wait_until 10 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 2 ]'
    exec {c}<>"/dev/tcp/127.0.0.1/$PORT"
    wait_until 10 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 3 ]'
    exec {a}>&-
    wait_until 10 '[ "$(grep -c "disconnected" "$SERVER_LOG")" -eq 1 ]'
    exec {c}>&-
    wait_until 10 '[ "$(grep -c "disconnected" "$SERVER_LOG")" -eq 2 ]'
    echo still-here >&"$b"
    read -r -t 10 reply <&"$b" || { echo "the second connection got no echo" >&2; exec {b}>&-; return 1; }
    exec {b}>&-
    [ "$reply" = still-here ]
}
