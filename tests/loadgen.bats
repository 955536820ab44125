#!/usr/bin/env bats
# tools/loadgen, the load generator `make bench` uses: it must see every
# corrupted byte, fail clearly, and spread connections as it promises.

load helpers
LOADGEN=$ROOT/tools/loadgen
SERVER=$ROOT/step4-epoll/server
FIXTURES=$ROOT/tests/fixtures

# run_loadgen ARGS...: runs loadgen against $PORT with ARGS, for at most
# 60 s; sets status, JSON (what it printed) and ERR (what it said on
# stderr, also in $BATS_TEST_TMPDIR/loadgen.err for report_failure).
run_loadgen() {
    status=0
    JSON=$(timeout 60 "$LOADGEN" -p "$PORT" "$@" 2>"$BATS_TEST_TMPDIR/loadgen.err") || status=$?
    ERR=$(cat "$BATS_TEST_TMPDIR/loadgen.err")
}

# field NAME: the value of NAME in $JSON, a number or a string's text.
field() {
    [[ $JSON =~ \"$1\":\"?([^,\"}]*) ]] || { echo "no $1 in: $JSON" >&2; return 1; }
    echo "${BASH_REMATCH[1]}"
}

# holds 'EXPRESSION': awk's arithmetic, for the numbers with decimals.
holds() {
    awk "BEGIN { exit !($1) }" || { echo "does not hold: $1" >&2; return 1; }
}

# The worker processes of the loadgen started with `spawn loadgen`.
workers_of_loadgen() {
    pgrep -P "${PIDS[loadgen]}"
}

# The sockets process $1 holds.
socket_count() {
    find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l
}

@test "loadgen: echoes for the set time and reports what it measured" {
    start_server -q
    run "$LOADGEN" -p "$PORT" -c 20 -n 4 -d 1 --json
    [ "$status" -eq 0 ]
    [[ $output =~ \"opened\":20, ]]
    [[ $output =~ \"verified\":20, ]]
    [[ $output =~ \"byte_errors\":0, ]]
    [[ $output =~ \"messages\":[1-9][0-9]*, ]]
    [[ $output =~ \"p50_us\":[0-9.]+,\"p90_us\":[0-9.]+,\"p99_us\":[0-9.]+,\"p999_us\":[0-9.]+,\"max_us\":[0-9.]+, ]]
    [[ $output =~ \"failures\":\{\}\}$ ]]
}

@test "loadgen: reports the byte errors of a server that corrupts data" {
    SERVER=$ROOT/tests/fixtures/flip-echo
    start_server -q
    run "$LOADGEN" -p "$PORT" -c 10 -d 1 --json
    [ "$status" -eq 1 ]
    # flip-echo corrupts the first byte of each connection.
    [[ $output =~ \"byte_errors\":10, ]]
}

@test "loadgen: holds connections until stdin closes, then checks each echoes" {
    start_server -q
    spawn loadgen "$LOADGEN" -p "$PORT" -c 300 --hold 60
    expect loadgen '^connected 300$'
    wait_until 10 '[ "$(fd_count "$SERVER_PID")" -ge 300 ]'
    finish loadgen
    expect loadgen '^connections: 300 opened, 0 failed to connect, 300 echoed at the end$'
}

# --ports sets IP_LOCAL_PORT_RANGE on each socket, new in Linux 6.3.
needs_port_range() {
    local release major minor
    release=$(uname -r)
    IFS=. read -r major minor _ <<<"$release"
    [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 3 ]; } ||
        skip "--ports needs Linux 6.3 or later, this is $release"
}

# A source address can make one connection to the server per local port.
# --ports narrows the ports to 100 so the tests need few connections. (A
# port in the range may be taken already, by some other test's listening
# socket: allow for a few.)
@test "loadgen: one source address has only as many connections as ports" {
    needs_port_range
    start_server -q
    run "$LOADGEN" -p "$PORT" -c 150 --sources 1 --ports 41000-41099 -d 0.2 --json
    [ "$status" -eq 1 ]
    [[ $output =~ \"opened\":([0-9]+),\"failed\":([0-9]+), ]]
    local opened=${BASH_REMATCH[1]} failed=${BASH_REMATCH[2]}
    [ "$opened" -le 100 ] && [ "$opened" -ge 95 ]
    [ $((opened + failed)) -eq 150 ]
    [[ $output =~ \"first_failure\":\"connect:\ Cannot\ assign\ requested\ address\" ]]
}

@test "loadgen: opens more connections than one source address allows" {
    needs_port_range
    start_server
    run "$LOADGEN" -p "$PORT" -c 300 --ports 40000-40199 -d 0.2
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "connections: 300 opened, 0 failed to connect, 300 echoed at the end" ]]
    # They came from 127.0.0.1 to 127.0.0.4: loadgen uses at most 45% of
    # each address's ports, 90 of these 200.
    wait_until 5 '[ "$(grep -c disconnected "$SERVER_LOG")" -eq 300 ]'
    local source
    for source in 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4; do
        [ "$(grep -c "client $source:40[01][0-9][0-9] connected" "$SERVER_LOG")" -eq 75 ]
    done
}

@test "loadgen: fails with one clear line when nothing listens on the port" {
    start_server -q
    local port=$PORT
    stop_server TERM
    run "$LOADGEN" -p "$port" -c 5 -d 1
    [ "$status" -eq 1 ]
    [ "$output" = "loadgen: could not open any connection to 127.0.0.1 port $port: connect: Connection refused" ]
}

@test "loadgen: bad arguments get one line and status 2" {
    local args
    for args in "" "-p 0" "-p 80 -c 0" "-p 80 -d x" "-p 80 -n 65" "-p 80 --bogus" "-p 80 extra" \
        "-p 80 --rate 100 -n 2" "-p 80 --churn --rate 10" "-p 80 --rate 10 --hold 5" \
        "-p 80 --rate 0" "-p 80 --rate x" "-p 80 --idle 5 --hold 5" "-p 80 --idle 5 --churn" \
        "-p 80 --churn --hold 5" "-p 80 --wait --hold 5" "-p 80 --warmup 1 --hold 5" \
        "-p 80 --warmup -1" "-p 80 -c 999999 --idle 2"; do
        run timeout 10 bash -c "\"\$0\" $args 2>&1 >/dev/null" "$LOADGEN"
        if [ "$status" -ne 2 ] || [ "${#lines[@]}" -ne 1 ]; then
            echo "loadgen $args: status $status, stderr: $output" >&2
            return 1
        fi
    done
}

# The workers must not outlive loadgen: left behind, they would go on
# loading the server, or holding its connections, for the rest of their
# phase. The next two tests kill loadgen itself with SIGKILL, which it
# cannot catch, once it has opened 200 connections over 2 workers to echo
# for 60 s, and check that the workers end within about a second and the
# server sees every connection close. Should a worker survive, teardown
# kills it: spawn made loadgen lead a process group, and its workers are in
# that group too.

# start_loadgen_to_kill: starts loadgen, waits until it has connected and
# the server holds every connection, and finds the workers: loadgen's
# children, looked for while loadgen is alive. Sets LOADGEN_PID, WORKERS
# and SERVER_FDS (the server's descriptor count before loadgen).
start_loadgen_to_kill() {
    start_server -q
    SERVER_FDS=$(fd_count "$SERVER_PID")
    spawn loadgen "$LOADGEN" -p "$PORT" -c 200 -w 2 -d 60 --wait
    LOADGEN_PID=${PIDS[loadgen]}
    expect loadgen '^connected 200$'
    wait_until 10 '[ "$(fd_count "$SERVER_PID")" -eq $((SERVER_FDS + 200)) ]'
    mapfile -t WORKERS < <(pgrep -P "$LOADGEN_PID")
    if [ "${#WORKERS[@]}" -ne 2 ]; then
        echo "expected 2 workers, found: ${WORKERS[*]}" >&2
        return 1
    fi
    local pid
    for pid in "${WORKERS[@]}"; do
        ! exited "$pid"
    done
}

all_exited() {
    local pid
    for pid in "$@"; do
        exited "$pid" || return 1
    done
}

kill_loadgen_and_see_workers_end() {
    kill -KILL "$LOADGEN_PID"
    wait_until 1 'all_exited "${WORKERS[@]}"'
    wait_until 5 '[ "$(fd_count "$SERVER_PID")" -eq "$SERVER_FDS" ]'
}

# With --wait, the workers wait on a pipe from loadgen for the word to
# start. (Not --hold: there a worker left behind would check each connection
# once and die at once writing its report to nobody, so a test could not
# tell.)
@test "loadgen: its workers die with it while they wait to start" {
    start_loadgen_to_kill
    kill_loadgen_and_see_workers_end
}

@test "loadgen: its workers die with it while they echo" {
    start_loadgen_to_kill
    local ticks
    ticks=$(cpu_ticks "$SERVER_PID")
    exec {IN_FDS[loadgen]}>&-  # the echo phase starts
    # An idle server uses no CPU time: 5 more clock ticks of it mean the
    # echoing is under way.
    wait_until 10 '[ "$(cpu_ticks "$SERVER_PID")" -ge $((ticks + 5)) ]'
    kill_loadgen_and_see_workers_end
}

# ---- what it measures ----

@test "loadgen: the open loop sends its schedule, and counts only the window" {
    start_server -q
    run_loadgen -c 10 --rate 1000 --warmup 0.5 -d 1 --json
    [ "$status" -eq 0 ]
    # Messages 0 to 1499 are due in the 1.5 s; 500 to 1499 in the window.
    [ "$(field rate)" = 1000 ]
    [ "$(field messages)" -eq 1000 ]
    [ "$(field all_messages)" -eq 1500 ]
    [ "$(field verified)" -eq 10 ]
}

# At one message in 317 years, message 0 is due at the start and the next
# long after the window: one message in all. (Message 1's time is more
# nanoseconds than an int64_t holds; converted as it is, it would come out
# anywhere, in the past too.)
@test "loadgen: a rate too slow for a second message sends one" {
    start_server -q
    run_loadgen -c 3 --rate 0.0000000001 --warmup 0 -d 0.3 --json
    echo "$JSON"
    [ "$status" -eq 0 ]
    [ "$(field messages)" -eq 1 ] && [ "$(field all_messages)" -eq 1 ]
    [ "$(field verified)" -eq 3 ]
}

# slow-echo --delay-ms 6000 echoes each message 6 s after it came, and the
# drain waits 5 s after the window: what is still out then is a failure of
# its connection, counted, and no message of it is.
@test "loadgen: a message still out 5 s after the window fails its connection" {
    SERVER=$FIXTURES/slow-echo
    start_server -q --delay-ms 6000
    run_loadgen -c 2 --warmup 0 -d 0.2 --json
    echo "$JSON"
    [ "$status" -eq 1 ]
    [ "$(field opened)" -eq 2 ] && [ "$(field verified)" -eq 0 ] && [ "$(field broken)" -eq 2 ]
    [ "$(field messages)" -eq 0 ] && [ "$(field all_messages)" -eq 0 ]
    [ "$(field first_failure)" = "echo: Connection timed out" ]
    [[ $JSON =~ \"failures\":\{\"echo:\ Connection\ timed\ out\":2\}\}$ ]]
}

# A worker killed while loadgen waits to start: the write of "go" to it
# finds nobody reading (EPIPE), and loadgen must say so and fail, not die
# of SIGPIPE without a word.
@test "loadgen: a worker that died is reported" {
    start_server -q
    spawn loadgen "$LOADGEN" -p "$PORT" -c 2 --warmup 0 -d 0.2 --wait --json
    expect loadgen '^connected 2$'
    local worker status=0
    worker=$(workers_of_loadgen)
    kill -KILL "$worker"
    wait_until 10 'exited "$worker"'
    echo >&"${IN_FDS[loadgen]}"  # go
    finish loadgen || status=$?
    [ "$status" -eq 1 ]
    grep -qx 'loadgen: a worker died' "$BATS_TEST_TMPDIR/loadgen.err"
}

# slow-echo --delay-ms 20 sends each byte back 20 ms after it arrived. The
# closed loop waits for each echo, so its p50 is the delay. The open loop
# sends every 10 ms on each connection whatever the echoes do, so two are
# always in flight on each: the schedule is kept, and the p50 is the delay
# too. (No latency can be below the delay, less the histogram's 1%; above
# it, a busy machine adds the time each process waits for a CPU: a few ms
# with a load average of 30. A loop that waited for each echo would fall
# 10 ms further behind with every message, its p50 hundreds of ms.)
@test "loadgen: the p50 it reports is the delay a slow server adds, closed loop and open" {
    SERVER=$FIXTURES/slow-echo
    start_server -q --delay-ms 20
    run_loadgen -c 10 --warmup 0.2 -d 0.5 --json
    [ "$status" -eq 0 ]
    echo "closed loop: p50 $(field p50_us) us"
    holds "$(field p50_us) >= 19800 && $(field p50_us) <= 35000"
    run_loadgen -c 10 --rate 1000 --warmup 0.2 -d 1 --json
    [ "$status" -eq 0 ]
    echo "open loop: p50 $(field p50_us) us, $(field late_pct)% late"
    holds "$(field p50_us) >= 19800 && $(field p50_us) <= 35000"
    [ "$(field messages)" -eq 1000 ]
}

# slow-echo --stall-ms 200 sends nothing back for 200 ms once a second. The
# open loop goes on sending, so a fifth of its messages wait, up to 200 ms,
# and p99 shows it. The closed loop stops sending while it waits, so the
# stall delays one message on each of its 2 connections, 2 to 4 of a
# thousand or more, and p99 stays well below the stall (how far below
# depends on how busy the machine is). (A loop that let each connection wait for its
# echo, and timed messages from when they went, would delay one in 200 at
# 2,000 a second: p99 would hide the stall as the closed loop's does.)
@test "loadgen: against a server that stalls, the open-loop p99 shows it, the closed-loop p99 hides it" {
    SERVER=$FIXTURES/slow-echo
    start_server -q --stall-ms 200
    local open_p99 closed_p99 closed_max
    run_loadgen -c 10 --rate 2000 --warmup 0.5 -d 1 --json
    [ "$status" -eq 0 ]
    open_p99=$(field p99_us)
    run_loadgen -c 2 --warmup 0.5 -d 1 --json
    [ "$status" -eq 0 ]
    closed_p99=$(field p99_us) closed_max=$(field max_us)
    echo "open loop: p99 $open_p99 us; closed loop: p99 $closed_p99 us, max $closed_max us," \
        "$(field messages) messages"
    holds "$open_p99 >= 100000"
    holds "$closed_p99 < 100000"
}

# How often process $1 has given up the CPU to wait in a system call
# (voluntary_ctxt_switches, man 5 proc).
sleeps_of() {
    awk '/^voluntary_ctxt_switches:/ { print $2 }' "/proc/$1/status"
}

# SIGSTOP holds loadgen's one worker back for 300 ms: the messages due
# meanwhile go late, and their latency must count from when they were due.
# The stop must come once the schedule has started: before "go", the worker
# sleeps in read() on its pipe, once; after, it sleeps in epoll_pwait2()
# between messages, a thousand times a second. (The sleep is the stimulus,
# not a wait for anything.)
@test "loadgen: a client held back reports its lateness, and the latency includes it" {
    start_server -q
    spawn loadgen "$LOADGEN" -p "$PORT" -c 10 --rate 1000 --warmup 0 -d 2 --wait --json
    expect loadgen '^connected 10$'
    local worker sleeps
    worker=$(workers_of_loadgen)
    sleeps=$(sleeps_of "$worker")
    echo >&"${IN_FDS[loadgen]}"  # go
    wait_until 10 '[ "$(sleeps_of "$worker")" -ge $((sleeps + 20)) ]'
    kill -STOP "$worker"
    wait_until 10 '[ "$(process_state "$worker")" = T ]'
    sleep 0.3
    kill -CONT "$worker"
    expect loadgen '^finished$' 20
    finish loadgen
    expect loadgen '^(\{.*\})$'
    JSON=${BASH_REMATCH[1]}
    echo "$JSON"
    holds "$(field late_pct) >= 1"
    holds "$(field max_lag_us) >= 200000"
    holds "$(field max_us) >= 200000"
    grep -q '^loadgen: fell behind the schedule: [0-9.]*% of messages started over 1 ms late (at worst [0-9.]* ms); these latencies include the client.s own delay$' \
        "$BATS_TEST_TMPDIR/loadgen.err"
}

# Step 3 logs how many bytes each connection sent.
@test "loadgen: churn makes a new connection for every cycle, and counts each" {
    SERVER=$ROOT/step3-threads/server
    start_server
    run_loadgen -c 4 --churn --warmup 0.1 -d 0.4 --json
    [ "$status" -eq 0 ]
    local cycles
    cycles=$(field all_messages)
    echo "$cycles cycles, $(field messages) in the window"
    [ "$(field mode)" = churn ]
    [ "$(field messages)" -gt 0 ] && [ "$(field messages)" -le "$cycles" ]
    [ "$(field opened)" -eq "$cycles" ] && [ "$(field verified)" -eq "$cycles" ]
    [ "$(field byte_errors)" -eq 0 ]
    wait_until 5 '[ "$(grep -c disconnected "$SERVER_LOG")" -eq "$cycles" ]'
    [ "$(grep -c 'disconnected after 64 bytes$' "$SERVER_LOG")" -eq "$cycles" ]
}

# flip-echo corrupts the first byte each connection gets back.
@test "loadgen: churn checks the echo of every cycle" {
    SERVER=$FIXTURES/flip-echo
    start_server -q
    run_loadgen -c 2 --churn --warmup 0 -d 0.2 --json
    [ "$status" -eq 1 ]
    echo "$JSON"
    [ "$(field all_messages)" -gt 2 ]
    [ "$(field opened)" -eq "$(field all_messages)" ] && [ "$(field verified)" -eq "$(field all_messages)" ]
    [ "$(field byte_errors)" -eq "$(field all_messages)" ]
}

@test "loadgen: --idle connections are held untouched, then each must echo" {
    SERVER=$ROOT/step3-threads/server
    start_server
    local before
    before=$(socket_count "$SERVER_PID")
    spawn loadgen "$LOADGEN" -p "$PORT" -c 2 --idle 30 --warmup 0 -d 0.3 --wait --json
    expect loadgen '^connected 32$'
    wait_until 10 '[ "$(socket_count "$SERVER_PID")" -eq $((before + 32)) ]'
    echo >&"${IN_FDS[loadgen]}"
    expect loadgen '^finished$' 20
    finish loadgen
    expect loadgen '^(\{.*\})$'
    JSON=${BASH_REMATCH[1]}
    [ "$(field idle)" -eq 30 ] && [ "$(field opened)" -eq 32 ] && [ "$(field verified)" -eq 32 ]
    # Each idle one sent nothing but the 16-byte check at the end.
    wait_until 5 '[ "$(grep -c disconnected "$SERVER_LOG")" -eq 32 ]'
    [ "$(grep -c 'disconnected after 16 bytes$' "$SERVER_LOG")" -eq 30 ]
}

# flip-echo corrupts the first byte each connection gets back: an idle
# connection's is in its check.
@test "loadgen: the check of each --idle connection checks its bytes" {
    SERVER=$FIXTURES/flip-echo
    start_server -q
    run_loadgen -c 1 --idle 5 --warmup 0 -d 0.2 --json
    [ "$status" -eq 1 ]
    [ "$(field byte_errors)" -eq 6 ]
}

# With 100 descriptors, one worker can open only some of 150 connections:
# socket() fails with EMFILE for each of the rest, and each is counted.
@test "loadgen: failures are counted by step and errno, every one" {
    start_server -q
    status=0
    JSON=$(timeout 60 prlimit --nofile=100 "$LOADGEN" -p "$PORT" -c 150 -w 1 --warmup 0 -d 0.2 --json) || status=$?
    [ "$status" -eq 1 ]
    local failed
    failed=$(field failed)
    echo "$JSON"
    [ "$failed" -gt 1 ] && [ $(($(field opened) + failed)) -eq 150 ]
    [ "$(field first_failure)" = "socket: Too many open files" ]
    [[ $JSON =~ \"failures\":\{\"socket:\ Too\ many\ open\ files\":$failed\}\}$ ]]
}

# The worker's CPU time from /proc, read while it runs, brackets what it
# reports (getrusage from the start to the end of the drain): the worker
# uses next to none before the start or while it waits for stdin. Most of
# it is system time (send() and recv()): user time alone, a tenth of it
# here, would fall below the bracket once there are a few ticks of it.
@test "loadgen: reports the CPU time its worker used, user and system" {
    start_server -q
    spawn loadgen "$LOADGEN" -p "$PORT" -c 20 --warmup 0 -d 2 --wait --json
    expect loadgen '^connected 20$'
    local worker before after hz
    worker=$(workers_of_loadgen)
    before=$(cpu_ticks "$worker")
    echo >&"${IN_FDS[loadgen]}"
    expect loadgen '^finished$' 20
    after=$(cpu_ticks "$worker")
    finish loadgen
    expect loadgen '^(\{.*\})$'
    JSON=${BASH_REMATCH[1]}
    hz=$(getconf CLK_TCK)
    local proc_us=$(((after - before) * 1000000 / hz)) tick_us=$((1000000 / hz))
    echo "reported $(field client_cpu_us) us, /proc says $proc_us us (ticks of $tick_us us)"
    holds "$(field client_cpu_us) >= $proc_us - 2 * $tick_us && $(field client_cpu_us) <= $proc_us + 2 * $tick_us"
    holds "$proc_us > 5 * $tick_us"
    holds "$(field client_cpu_us_per_msg) * $(field all_messages) >= 0.99 * $(field client_cpu_us)"
    holds "$(field client_cpu_us_per_msg) * $(field all_messages) <= 1.01 * $(field client_cpu_us)"
}

# "finished" comes once the echoing is over, with every connection still
# open on both sides, so a bench can read the server's state then; they
# close at end of file. And one worker does it all.
@test "loadgen: --wait stops at \"finished\" with every connection open, one worker" {
    start_server -q
    local before
    before=$(socket_count "$SERVER_PID")
    spawn loadgen "$LOADGEN" -p "$PORT" -c 20 --warmup 0 -d 0.3 --wait --json
    expect loadgen '^connected 20$'
    local workers
    mapfile -t workers < <(workers_of_loadgen)
    [ "${#workers[@]}" -eq 1 ]
    echo start >&"${IN_FDS[loadgen]}"
    expect loadgen '^finished$' 20
    [ "$(socket_count "${workers[0]}")" -eq 20 ]
    [ "$(socket_count "$SERVER_PID")" -eq $((before + 20)) ]
    finish loadgen
    expect loadgen '^\{.*"verified":20,.*\}$'
    wait_until 5 '[ "$(socket_count "$SERVER_PID")" -eq "$before" ]'
}

# ---- its parts ----

# Each value alone is read back as the middle of its bucket: the worst
# error comes just above a power of two, and each sweep crosses one.
@test "loadgen's histogram: within 1% from 1 us to 60 s, and a known spread's percentiles" {
    local scale worst
    for scale in 1000 1000000 1000000000 60000000000; do
        worst=$(awk -v x="$scale" 'BEGIN { for (i = 0; i <= 2000; i++) printf "%.0f\n", x * (0.5 + i / 2000) }' |
            "$FIXTURES/histogram-check" --each |
            awk '{ e = ($2 - $1) / $1; if (e < 0) e = -e; if (e > m) m = e } END { printf "%.3f", m * 100 }')
        echo "around $scale ns: at worst $worst% off"
        holds "$worst <= 1"
    done
    # 1 us, 2 us, ... 10 ms: p50 5 ms, p90 9 ms, p99 9.9 ms, p99.9 9.99 ms.
    run "$FIXTURES/histogram-check" < <(seq 1000 1000 10000000)
    [ "$status" -eq 0 ]
    echo "p50 p90 p99 p99.9 max: $output"
    read -r p50 p90 p99 p999 max <<<"$output"
    holds "$p50 >= 4950000 && $p50 <= 5050000"
    holds "$p90 >= 8910000 && $p90 <= 9090000"
    holds "$p99 >= 9801000 && $p99 <= 9999000"
    holds "$p999 >= 9890100 && $p999 <= 10089900"
    [ "$max" -eq 10000000 ]
}

@test "the byte pattern: 3 bytes tell any two of 2^20 connections apart, anywhere" {
    run "$FIXTURES/pattern-check"
    echo "$output"
    [ "$status" -eq 0 ]
}
