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

# ---- the event-loop steps (4, 5 and 6) ----

# 10,000 idle connections, each then echoed. An idle connection owns no
# buffer, so the server's resident memory grows by far less than 1 KiB per
# connection (one 16 KiB buffer each would be 160 MB).
# check_holds_10000 [SERVER ARGS...]
check_holds_10000() {
    # The server and the client each need 10,000 descriptors and some more.
    [ "$(ulimit -Hn)" -ge 10100 ] || skip "the open-file hard limit is under 10,100 here"
    start_server -q "$@"
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

# Started with a soft limit of 256 open files and a hard one of 4,096, the
# server raises the soft one to 4,096.
check_raises_open_file_limit() {
    SERVER_WRAPPER=(prlimit --nofile=256:4096)
    start_server -q
    grep -Eq '^Max open files +4096 +4096 ' "/proc/$SERVER_PID/limits"
}

# On SIGTERM the server closes its held clients and says how many
# connections it served and how many bytes it echoed.
check_sigterm_summary() {
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
# check_log_nobody_reads LINES [SERVER ARGS...]: LINES, the log lines the
# run makes, each written or counted as dropped.
check_log_nobody_reads() {
    local all_lines=$1  # not "lines": bats's run sets that
    shift
    # Over a thousand clients at a time, each end needing a descriptor.
    [ "$(ulimit -Hn)" -ge 4096 ] || skip "the open-file hard limit is under 4,096 here"
    local fifo=$BATS_TEST_TMPDIR/log.fifo drained=$BATS_TEST_TMPDIR/drained.log
    mkfifo "$fifo"
    # Opening a FIFO waits for the other end: the sleep and the server
    # meet there, and from then on the sleep holds it open, unread.
    spawn stalled bash -c 'exec sleep 600 <"$0"' "$fifo"
    SERVER_WRAPPER=(bash -c 'exec "$@" 2>"$0"' "$fifo")
    start_server "$@"
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
    # that says it is shutting down, and the summary (and step 5's line per
    # loop).
    written=$(grep -Evc ' log lines? dropped$' "$drained")
    echo "$written lines written, $dropped dropped" >&2
    [ $((written + dropped)) -eq "$all_lines" ]
    [ "$(tail -n 1 "$drained" | sed -E 's/^[^ ]+\[[0-9]+\]: //')" = "served 3000 connections, echoed 3000000 bytes" ]
}
