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

# A send() to a client that has reset fails with EPIPE, and raises SIGPIPE,
# whose default action ends the process. The server is stopped while five
# clients connect, send, half-close and reset, so every reset is in before
# the server reads: it then gets each client's bytes from recv(), and its
# send() fails, every time. Each client must be logged as dropped with the
# error, and the server go on serving; in step 2 a child killed by SIGPIPE
# writes no such line.
check_survives_resets() {
    start_server
    pause_server
    run "$CLIENT" -p "$PORT" -c 5 reset
    [ "$status" -eq 0 ]
    wait_until 10 '[ "$(connections_on_port)" -eq 0 ]'
    resume_server
    # (If it died, there is no need to wait the whole 10 s.)
    wait_until 10 'exited "$SERVER_PID" || [ "$(grep -c "client .*dropped.*: Broken pipe" "$SERVER_LOG")" -eq 5 ]'
    alive
    [ "$(grep -c "client .*dropped.*: Broken pipe" "$SERVER_LOG")" -eq 5 ]
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
# client that does not read (and make step 4's epoll_wait() fail with
# EINTR); then the client reads and checks every byte. Whether the stuck
# send() had sent part of its data yet is up to timing: the short sends
# test below forces them.
check_short_writes() {
    start_server -q
    spawn flood "$CLIENT" -p "$PORT" -t 30 flood
    expect flood '^stalled after [0-9]+ bytes$' 20
    local i
    for i in 1 2 3; do
        interrupt_server
    done
    finish flood
    expect flood '^echoed all [0-9]+ bytes$'
}

# Every send() the server makes sends at most half of what it is given, as
# tests/fixtures/short-send.so (loaded with LD_PRELOAD) makes it: the server
# must send the rest, from where the last send stopped, each time. (The
# sanitizers' runtime wants to be loaded first; told not to check, it works
# after the library.)
check_short_sends() {
    local mark=$BATS_TEST_TMPDIR/a-send-was-cut-short
    [ -e "$ROOT/tests/fixtures/short-send.so" ] ||
        { echo "no tests/fixtures/short-send.so: run make fixtures" >&2; return 1; }
    SERVER_WRAPPER=(env LD_PRELOAD="$ROOT/tests/fixtures/short-send.so" SHORT_SEND_MARK="$mark"
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
    start_server -q
    echo_ok -c 5 -s 1M -t 30
    if [ ! -e "$mark" ]; then
        echo "no send() was cut short: does the server call send() or write(), and is it linked dynamically?" >&2
        return 1
    fi
}

check_logs_connections() {
    interface "one line on stderr per connect (\"client ADDRESS connected\") and per disconnect (\"client ... disconnected\"), each starting NAME[ID]: "
    start_server
    echo_ok
    wait_until 5 'grep -q disconnected "$SERVER_LOG"'
    [ "$(grep -Ec '^[^ ]+\[[0-9]+\]: .*client .* connected' "$SERVER_LOG")" -eq 1 ]
    [ "$(grep -Ec '^[^ ]+\[[0-9]+\]: .*client .*disconnected' "$SERVER_LOG")" -eq 1 ]
}

check_quiet() {
    interface "-q: no line per connection"
    start_server -q
    echo_ok -c 3
    stop_server TERM
    ! grep -q connected "$SERVER_LOG"
}

check_stops_on() {
    interface "SIG$1 ends the server with status 0"
    start_server -q
    echo_ok
    stop_server "$1"
}

check_ipv6() {
    interface "-b takes an IPv6 address (-b ::1) as well as an IPv4 one"
    # /proc/net/if_inet6 lists ::1 as 31 zeros and a 1 when it exists.
    grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null || skip "no IPv6 loopback (::1) here"
    start_server -q -b ::1
    echo_ok -a ::1 -c 3
}

check_help() {
    interface "-h prints a usage line starting \"usage:\" on stdout and exits 0"
    run bash -c '"$0" -h 2>/dev/null' "$SERVER"
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == usage:* ]]
}

# Each bad command line: exit status 2 and a single line on stderr.
check_bad_arguments() {
    interface "a bad command line (a port that is not a number from 0 to 65535, an address that is not numeric IPv4 or IPv6, an unknown option, an extra argument) prints one line on stderr and exits 2"
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
    interface "a port already in use prints one line on stderr naming the address and the error, and exits 1"
    start_server -q
    run timeout 5 bash -c '"$0" -p "$1" 2>&1 >/dev/null' "$SERVER" "$PORT"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ $output == *"127.0.0.1:$PORT"*"Address already in use"* ]]
}

# SO_REUSEADDR lets a server bind its port while connections of an earlier
# server on it linger: here the first one is stopped while it holds a
# client, whose connection stays, on the server's side, in FIN_WAIT2 (the
# server closed it, the client has not) or, in step 2, open in the child
# that goes on serving it. Without SO_REUSEADDR, bind() fails with
# EADDRINUSE until they are gone.
check_restarts_on_its_port() {
    interface "a server started on the port of one just stopped, whose connections linger, starts at once"
    start_server -q
    spawn holder "$CLIENT" -p "$PORT" -c 1 hold
    expect holder '^connected 1$'
    stop_server TERM
    spawn again "$SERVER" -q -p "$PORT"
    expect again "^listening on .*:$PORT\$" 5
}

# Out of descriptors: the server must neither die nor spin (use a CPU
# second per second) while clients wait, and must serve them all once
# descriptors free up. The limit is set on the process from outside.
# Arguments are the server's, after -q.
check_out_of_descriptors() {
    SERVER_WRAPPER=(prlimit --nofile=32:32)
    start_server -q "$@"
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
