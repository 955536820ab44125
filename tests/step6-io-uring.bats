#!/usr/bin/env bats
# Step 6, io_uring: one thread, one ring; the server queues requests and
# reads their completions instead of waiting for readiness.
# SERVER=path/to/server bats tests/step6-io-uring.bats checks your own. The
# tests marked "test build" run step 6's server squeezed
# (tests/fixtures/step6-squeezed: tiny rings, every send cut short, and
# counters at exit); with SERVER given, they run only if SQUEEZED names a
# build of yours that prints the same counters.

load every_step
SERVER_GIVEN=${SERVER:+yes}
SERVER=${SERVER:-$ROOT/step6-io-uring/server}
if [ -z "${SQUEEZED:-}" ] && [ -z "$SERVER_GIVEN" ]; then
    SQUEEZED=$ROOT/tests/fixtures/step6-squeezed
fi
LOADGEN=${LOADGEN:-$ROOT/tools/loadgen}
NO_IO_URING=$ROOT/tests/fixtures/no-io-uring

# Where io_uring cannot be used (a kernel without it, the sysctl
# kernel.io_uring_disabled, a container's seccomp profile), the server
# says why and exits 1 before it listens: then every test here skips,
# with its reason. The probe is the server itself, for at most half a
# second (a server that works is still running then, and is stopped).
setup_file() {
    local err=$BATS_FILE_TMPDIR/probe.err status=0
    [ -x "$SERVER" ] || return 0  # setup() says it is missing
    timeout 0.5 "$SERVER" -q -p 0 >/dev/null 2>"$err" || status=$?
    if [ "$status" -eq 1 ] && grep -q io_uring "$err"; then
        IO_URING_REFUSED="io_uring is refused here: $(sed -E 's/^[^ ]+ //' "$err" | head -n 1)"
        export IO_URING_REFUSED
    fi
}

# helpers.bash's setup(), and the skip above.
eval "helpers_$(declare -f setup)"
setup() {
    [ -z "${IO_URING_REFUSED:-}" ] || skip "$IO_URING_REFUSED"
    helpers_setup
}

@test "echoes a line of text" { check_echoes_text; }
@test "echoes binary bytes (NUL, 0xFF) exactly" { check_echoes_binary; }
@test "echoes 64 MiB sent while reading, byte for byte" { check_echoes_large_payload; }
@test "a client that half-closes gets all its bytes back" { check_half_close; }
@test "a send cut short by a signal is finished (short writes)" { check_short_writes; }
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

# ---- the squeezed test build ----

needs_squeezed() {
    [ -n "${SQUEEZED:-}" ] || skip "a test build: SQUEEZED=path names your server's"
    [ -x "$SQUEEZED" ] || { echo "missing $SQUEEZED: run make fixtures" >&2; return 1; }
}

# start_squeezed [ARGS...]: start_server, with the test build.
start_squeezed() {
    needs_squeezed
    SERVER=$SQUEEZED start_server "$@"
}

# The test build's last line, after the summary, counts what it forced:
# "test build: N short sends, N receives with no buffer, N full
# submission queues, N multishot accepts queued again".
# squeezed_count 'short sends' prints one of them (after stop_server).
squeezed_count() {
    local n
    n=$(grep -E '^[^ ]+\[[0-9]+\]: test build: ' "$SERVER_LOG" | grep -Eo "[0-9]+ $1" | grep -Eo '^[0-9]+')
    if [ -z "$n" ]; then
        echo "the server printed no count of $1" >&2
        return 1
    fi
    echo "$1: $n" >&2
    echo "$n"
}

# What tests/fixtures/short-send.so does to send() cannot reach io_uring:
# the kernel makes the sends, not a C library function. The test build
# cuts each send to half what is left to send.
@test "every send cut short on purpose (test build): the server sends the rest, from where it stopped" {
    start_squeezed -q
    echo_ok -c 5 -s 1M -t 20
    [ "$output" = "echoed 5 connections, 1048576 bytes each" ]
    stop_server TERM
    [ "$(squeezed_count 'short sends')" -gt 0 ]
}

# 4 provided buffers, 100 clients sending at once: receives complete with
# -ENOBUFS all the time. Each such connection must wait for a buffer and
# then get its data, not be dropped, and the server must not stop.
@test "more clients streaming at once than there are receive buffers (test build): each waits for one, none dropped" {
    start_squeezed -q
    echo_ok -c 100 -s 256K -t 60
    [ "$output" = "echoed 100 connections, 262144 bytes each" ]
    stop_server TERM
    [ "$(squeezed_count 'receives with no buffer')" -gt 0 ]
}

# 1,000 connections waiting at once, against a submission queue of 4
# entries and a completion queue of 8. The server is stopped while they
# connect, so they are all in the listening socket's queue when it goes
# on: the kernel accepts one after another until the completion queue is
# full, then ends the multishot accept (the server must queue it again),
# and each accepted client's receive finds the submission queue full (the
# server must submit what is queued and go on). The queue's length is
# capped by net.core.somaxconn (4,096 by default since Linux 5.4).
@test "a connect storm larger than the submission queue (test build): every client served" {
    [ "$(cat /proc/sys/net/core/somaxconn)" -ge 1000 ] || skip "net.core.somaxconn is under 1,000 here"
    start_squeezed -q
    pause_server
    spawn storm "$CLIENT" -p "$PORT" -c 1000 -s 100 -t 60 open
    expect storm '^connected 1000$' 30
    resume_server
    finish storm
    stop_server TERM
    [ "$(squeezed_count 'full submission queues')" -gt 0 ]
    [ "$(squeezed_count 'multishot accepts queued again')" -gt 0 ]
}

# A server that sent each echo straight from its provided buffer would
# hold that buffer until the client read the echo: clients that never
# read would hold every buffer, and nobody else could receive. Here 6
# such clients against 4 buffers.
@test "more never-reading clients than there are receive buffers (test build) still delay nobody" {
    start_squeezed -q
    local i
    for i in 1 2 3 4 5 6; do
        spawn "flood$i" "$CLIENT" -p "$PORT" -t 60 flood
    done
    for i in 1 2 3 4 5 6; do
        expect "flood$i" '^stalled after [0-9]+ bytes$' 30
    done
    echo_ok -c 10 -s 1M -t 20
    [ "$output" = "echoed 10 connections, 1048576 bytes each" ]
    for i in 1 2 3 4 5 6; do
        finish "flood$i"
        expect "flood$i" '^echoed all [0-9]+ bytes$'
    done
}

# ---- many clients, every byte checked ----

# At once: 200 connections echoing in a closed loop (loadgen), 20 that
# connect, echo one message and close again and again (loadgen --churn),
# 200 that each stream 256 KiB, and 30 that reset in the middle of their
# echo (echo-client reset). Every byte that comes back is checked against
# the pattern of the connection that sent it: a receive buffer given
# back under the wrong id, or twice, lets two receives fill it at once,
# and shows as bytes of one connection arriving on another.
mixed_load() {
    spawn resets "$CLIENT" -p "$PORT" -c 30 -s 256K -t 60 reset
    spawn streams "$CLIENT" -p "$PORT" -c 200 -s 256K -t 60
    spawn churn "$LOADGEN" -p "$PORT" -c 20 --churn -d 2 --warmup 0 --json -t 30
    run "$LOADGEN" -p "$PORT" -c 200 -d 2 --warmup 0 --json -t 30
    echo "$output" >&2
    [ "$status" -eq 0 ]
    [[ $output == *'"opened":200,"failed":0,"broken":0,"verified":200,'* ]]
    [[ $output == *'"byte_errors":0,'* ]]
    expect churn '"failed":0,"broken":0,.*"byte_errors":0,' 30
    finish churn
    expect streams '^echoed 200 connections, 262144 bytes each$' 60
    finish streams
    finish resets
    alive
    echo_ok -c 10
}

@test "clients opening, streaming, closing and resetting all at once: every byte back on its own connection" {
    start_server -q
    mixed_load
}

@test "the same with 4 receive buffers (test build): every byte back on its own connection" {
    start_squeezed -q
    mixed_load
}

# ---- the event loop ----

# The threads of the process that run the server's code: all but the
# kernel's io-wq workers (named iou-wrk-PID), which io_uring starts inside
# the process for requests that cannot be done without blocking, and
# which run only kernel code (and iou-sqp-PID, for a ring polled by a
# thread of the kernel's, which this server does not ask for).
user_threads() {
    local task comm n=0
    for task in "/proc/$1/task/"*; do
        read -r comm 2>/dev/null <"$task/comm" || continue
        [[ $comm == iou-* ]] || n=$((n + 1))
    done
    echo "$n"
}

@test "exactly one thread of its own, and no CPU used, while 500 clients are connected" {
    start_server -q
    local before=$(fd_count "$SERVER_PID")
    spawn holder "$CLIENT" -p "$PORT" -c 500 hold
    expect holder '^connected 500$'
    wait_until 10 '[ "$(fd_count "$SERVER_PID")" -ge $((before + 500)) ]'
    [ "$(user_threads "$SERVER_PID")" -eq 1 ]
    [ "$(child_count "$SERVER_PID")" -eq 0 ]
    # 500 receives wait in the kernel: nothing wakes the server.
    local ticks=$(cpu_ticks "$SERVER_PID")
    sleep 1  # a window to measure CPU use over, not a wait for an event
    [ $(($(cpu_ticks "$SERVER_PID") - ticks)) -lt 10 ]
    finish holder
}

# What each descriptor is, from /proc/PID/fd: an io_uring instance is
# anon_inode:[io_uring], an epoll one anon_inode:[eventpoll].
descriptors_of() {
    local fd
    for fd in "/proc/$1/fd/"*; do
        readlink "$fd" 2>/dev/null || true
    done
}

@test "one io_uring descriptor, and no epoll one" {
    start_server -q
    echo_ok -c 10
    local kinds
    kinds=$(descriptors_of "$SERVER_PID")
    echo "$kinds" >&2
    [ "$(grep -c '^anon_inode:\[io_uring\]$' <<<"$kinds")" -eq 1 ]
    ! grep -q 'eventpoll' <<<"$kinds"
}

VmRSS_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# While the client does not read, the server does not receive from it:
# what it holds for the client is one receive's echo, not more, and that
# stays so for as long as the client does not read. (The echoes first use
# every receive buffer, so that the kernel's first writes into them are
# not counted as the client's. The bound leaves room for a sanitizer
# build, whose allocator keeps freed memory for a while: a server that
# went on receiving would hold up to the 256 MiB the client sends.)
@test "a client that never reads costs a bounded amount of memory" {
    start_server -q
    echo_ok -c 20 -s 4M -t 30
    local before=$(VmRSS_kb "$SERVER_PID")
    spawn flood "$CLIENT" -p "$PORT" -t 30 flood
    expect flood '^stalled after [0-9]+ bytes$' 20
    local stalled=$(VmRSS_kb "$SERVER_PID")
    echo "resident memory grew by $((stalled - before)) KiB" >&2
    [ $((stalled - before)) -lt 16384 ]
    sleep 1  # a window to measure memory use over, not a wait for an event
    local later=$(VmRSS_kb "$SERVER_PID")
    echo "and by $((later - stalled)) KiB more in the next second" >&2
    [ $((later - stalled)) -lt 64 ]
    finish flood
    expect flood '^echoed all [0-9]+ bytes$'
}

@test "holds 10,000 concurrent clients and echoes each" { check_holds_10000; }

@test "raises its soft open-file limit to the hard limit" { check_raises_open_file_limit; }

@test "SIGTERM: closes everything and prints connections served and bytes echoed" { check_sigterm_summary; }

@test "a log nobody reads: keeps serving, drops lines, then says how many" { check_log_nobody_reads 6002; }

# ---- system calls ----

# The system calls a server makes while 1,000 clients echo 64-byte
# messages for a second, per message echoed, counted by strace -c -f
# (every call of every thread; the setup's few dozen are counted too).
# The server runs under strace, which stops it at every call: slow, but
# the count is what it is. Sets RATIO. (Not run in $(...): what it spawns
# must be this shell's, for teardown to kill.)
syscalls_per_message() {
    local name=$1 server=$2 counts=$BATS_TEST_TMPDIR/$1.strace tracee calls messages
    # LeakSanitizer cannot work under ptrace, and says so by failing: off
    # here, for a sanitizer build.
    spawn "$name" env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -c -o "$counts" "$server" -q -p 0
    expect "$name" '^listening on (.+):([0-9]+)$' 10
    local port=${BASH_REMATCH[2]}
    run "$LOADGEN" -p "$port" -c 1000 -d 1 --warmup 0 --json -t 30
    [ "$status" -eq 0 ] || { echo "loadgen: $output" >&2; return 1; }
    [[ $output =~ \"all_messages\":([0-9]+) ]]
    messages=${BASH_REMATCH[1]}
    tracee=$(ps -o pid= --ppid "${PIDS[$name]}" | tr -d ' ')
    [ -n "$tracee" ] || { echo "$name: no server under strace" >&2; return 1; }
    kill -TERM "$tracee"
    wait_for_exit "$tracee" 10
    finish "$name"  # strace writes its table once the server has exited
    # The last line: "100.00 SECONDS USECS/CALL CALLS [ERRORS] total".
    calls=$(awk '$NF == "total" { print $4 }' "$counts")
    echo "$name: $calls system calls for $messages messages" >&2
    [ -n "$calls" ] && [ "$messages" -gt 0 ]
    RATIO=$(awk -v c="$calls" -v m="$messages" 'BEGIN { printf "%.4f\n", c / m }')
}

@test "system calls per message at 1,000 clients: at most a tenth of step 4's" {
    command -v strace >/dev/null || skip "strace is not installed"
    strace -f -c -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace refused)"
    [ "$(ulimit -Hn)" -ge 2200 ] || skip "the open-file hard limit is under 2,200 here"
    local step4 step6
    syscalls_per_message step4 "$ROOT/step4-epoll/server"
    step4=$RATIO
    syscalls_per_message step6 "$SERVER"
    step6=$RATIO
    echo "system calls per message: step 4 $step4, step 6 $step6" >&2
    awk -v a="$step6" -v b="$step4" 'BEGIN { exit !(a * 10 <= b) }'
}

# ---- where io_uring is refused ----

# tests/fixtures/no-io-uring runs the server under a seccomp filter that
# makes io_uring_setup() fail with EPERM, as a container's profile or the
# sysctl kernel.io_uring_disabled does, or with ENOSYS, as a kernel without
# io_uring does.
@test "io_uring refused (EPERM, as in a container; ENOSYS, as on an old kernel): one line saying why, status 1, no port" {
    [ -x "$NO_IO_URING" ] || { echo "missing $NO_IO_URING: run make fixtures" >&2; return 1; }
    local err
    for err in EPERM ENOSYS; do
        # timeout: a server that does without io_uring would serve on.
        run timeout 5 bash -c '"$0" -e "$1" "$2" -q -p 0 2>&1 >/dev/null' "$NO_IO_URING" "$err" "$SERVER"
        echo "under $err: status $status: $output" >&2
        [ "$status" -eq 1 ]
        [ "${#lines[@]}" -eq 1 ]
        [[ $output == *io_uring* ]]
        if [ "$err" = EPERM ]; then
            [[ $output == *kernel.io_uring_disabled* && $output == *seccomp* ]]
        else
            [[ $output == *"no io_uring"* ]]
        fi
        # It exits before announcing a port.
        run timeout 5 bash -c '"$0" -e "$1" "$2" -q -p 0 2>/dev/null' "$NO_IO_URING" "$err" "$SERVER"
        [ -z "$output" ]
    done
}
