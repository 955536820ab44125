#!/usr/bin/env bats
# Step 1, blocking: one client at a time.
# SERVER=path/to/server bats tests/step1-blocking.bats checks your own.

load every_step
SERVER=${SERVER:-$ROOT/step1-blocking/server}

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

@test "a second client waits while the first is connected, and is served after" {
    start_server -q
    local first second line
    exec {first}<>"/dev/tcp/127.0.0.1/$PORT"
    echo one >&"$first"
    read -r -t 5 line <&"$first"
    [ "$line" = one ]

    # The kernel completes the second handshake (the listen backlog), but
    # the server is busy in recv() on the first client.
    exec {second}<>"/dev/tcp/127.0.0.1/$PORT"
    echo two >&"$second"
    echo three >&"$first"
    read -r -t 5 line <&"$first"
    [ "$line" = three ]
    # The first client was just served; the second gets nothing.
    if read -r -t 0.5 line <&"$second"; then
        echo "the second client was echoed while the first was connected" >&2
        return 1
    fi

    exec {first}>&-
    read -r -t 5 line <&"$second"
    [ "$line" = two ]
}
