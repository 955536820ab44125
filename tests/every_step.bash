# every_step.bash: the behaviour every step shares, one function per test.
# Each step's .bats file runs all of them against its own server.

load helpers

check_echoes_text() {
    start_server
    local conn line
    exec {conn}<>"/dev/tcp/127.0.0.1/$PORT"
    echo "hello, echo" >&"$conn"
    read -r -t 5 line <&"$conn"
    [ "$line" = "hello, echo" ]
}

check_echoes_binary() {
    start_server
    local conn bytes
    exec {conn}<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'a\0b\377\n\0' >&"$conn"
    bytes=$(timeout 5 head -c 6 <&"$conn" | od -An -tx1 | tr -d ' \n')
    [ "$bytes" = "610062ff0a00" ]
}

# Far more than the socket buffers hold, so the client must read while it
# sends, and the server must cope with short reads and short writes.
check_echoes_large_payload() {
    start_server -q
    echo_ok -s 64M -t 60
    [ "$output" = "echoed 1 connections, 67108864 bytes each" ]
}

check_half_close() {
    start_server -q
    echo_ok -k -s 8M -t 30
}

check_survives_resets() {
    start_server -q
    run "$CLIENT" -p "$PORT" -c 50 reset
    alive
    [ "$status" -eq 0 ]
    echo_ok
}

# A client that never reads stops its own echo, and only its own, and the
# server waits for it without spinning. Once it reads, it gets everything.
check_flood_does_not_delay_others() {
    start_server -q
    spawn flood "$CLIENT" -p "$PORT" -t 30 flood
    expect flood '^stalled after [0-9]+ bytes$' 20
    echo_ok -c 10 -s 1M -t 10
    local ticks=$(cpu_ticks "$SERVER_PID")
    sleep 1  # a window to measure CPU use over, not a wait for an event
    [ $(($(cpu_ticks "$SERVER_PID") - ticks)) -lt 30 ]
    finish flood
    expect flood '^echoed all [0-9]+ bytes$'
}

# A blocking send() that a signal interrupts after sending part of the
# data returns that part's size: a short write, and the server must send
# the rest. SIGSTOP and SIGCONT interrupt a server stuck in send() to a
# client that does not read; then the client reads and checks every byte.
check_short_writes() {
    start_server -q
    spawn flood "$CLIENT" -p "$PORT" -t 30 flood
    expect flood '^stalled after [0-9]+ bytes$' 20
    local i
    for i in 1 2 3; do
        kill -STOP -- "-$SERVER_PID"  # the server's process group: step 2's
        kill -CONT -- "-$SERVER_PID"  # children too
    done
    finish flood
    expect flood '^echoed all [0-9]+ bytes$'
}

check_logs_connections() {
    start_server
    echo_ok
    wait_until 5 'grep -q disconnected "$SERVER_LOG"'
    [ "$(grep -Ec '^[^ ]+\[[0-9]+\]: .*client .* connected' "$SERVER_LOG")" -eq 1 ]
    [ "$(grep -Ec '^[^ ]+\[[0-9]+\]: .*client .*disconnected' "$SERVER_LOG")" -eq 1 ]
}

check_quiet() {
    start_server -q
    echo_ok -c 3
    stop_server TERM
    ! grep -q connected "$SERVER_LOG"
}

check_stops_on() {
    start_server -q
    echo_ok
    stop_server "$1"
}

check_ipv6() {
    # /proc/net/if_inet6 lists ::1 as 31 zeros and a 1 when it exists.
    grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null || skip "no IPv6 loopback (::1) here"
    start_server -q -b ::1
    echo_ok -a ::1 -c 3
}

check_help() {
    run bash -c '"$0" -h 2>/dev/null' "$SERVER"
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == usage:* ]]
}

# Each bad command line: exit status 2 and a single line on stderr.
check_bad_arguments() {
    local args
    for args in "-p abc" "-p 65536" "-p -1" "-p 12x" "-p" "-b nowhere" "-b 300.1.1.1" "-x" "extra"; do
        # timeout: a server that wrongly accepts the arguments would serve on.
        run timeout 5 bash -c "\"\$0\" $args 2>&1 >/dev/null" "$SERVER"
        if [ "$status" -ne 2 ] || [ "${#lines[@]}" -ne 1 ]; then
            echo "server $args: status $status, stderr: $output" >&2
            return 1
        fi
    done
}

check_port_in_use() {
    start_server -q
    run timeout 5 bash -c '"$0" -p "$1" 2>&1 >/dev/null' "$SERVER" "$PORT"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ $output == *"127.0.0.1:$PORT"*"Address already in use"* ]]
}

# Out of descriptors: the server must neither die nor spin (use a CPU
# second per second) while clients wait, and must serve them all once
# descriptors free up. The limit is set on the process from outside.
check_out_of_descriptors() {
    SERVER_WRAPPER=(prlimit --nofile=32:32)
    start_server -q
    spawn holder "$CLIENT" -p "$PORT" -c 40 -t 30 open
    expect holder '^connected 40$'
    wait_until 10 'grep -q "Too many open files" "$SERVER_LOG"'
    local before=$(cpu_ticks "$SERVER_PID")
    sleep 1  # a window to measure CPU use over, not a wait for an event
    local used=$(($(cpu_ticks "$SERVER_PID") - before))
    echo "server used $used ticks in 1 s" >&2
    [ "$used" -lt 30 ]
    finish holder
    alive
}

# Runs the server as an unused user id limited to $1 processes (threads
# count too), so creating a process or thread for the next client fails.
limit_processes() {
    [ "$(id -u)" -eq 0 ] || skip "needs root to switch to an unused user id"
    SERVER_WRAPPER=(prlimit --nproc="$1:$1" setpriv --reuid=54321 --regid=54321 --clear-groups)
    "${SERVER_WRAPPER[@]}" "$SERVER" -h >/dev/null 2>&1 ||
        skip "the server binary is not executable by an unprivileged user here"
}
