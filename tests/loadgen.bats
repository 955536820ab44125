#!/usr/bin/env bats
# tools/loadgen, the load generator `make bench` uses: it must see every
# corrupted byte, fail clearly, and spread connections as it promises.

load helpers
LOADGEN=$ROOT/tools/loadgen
SERVER=$ROOT/step4-epoll/server

@test "loadgen: echoes for the set time and reports what it measured" {
    start_server -q
    run "$LOADGEN" -p "$PORT" -c 20 -n 4 -d 1 --json
    [ "$status" -eq 0 ]
    [[ $output =~ \"opened\":20, ]]
    [[ $output =~ \"verified\":20, ]]
    [[ $output =~ \"byte_errors\":0, ]]
    [[ $output =~ \"messages\":[1-9][0-9]*, ]]
    [[ $output =~ \"p50_us\":[0-9.]+,\"p99_us\":[0-9.]+,\"max_us\":[0-9.]+\}$ ]]
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
    run "$LOADGEN" -p "$PORT" -c 300 --ports 40000-40099 -d 0.2
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == "connections: 300 opened, 0 failed to connect, 300 echoed at the end" ]]
    # They came from 127.0.0.1 to 127.0.0.4 (90 ports of each used at most).
    wait_until 5 '[ "$(grep -c disconnected "$SERVER_LOG")" -eq 300 ]'
    local source
    for source in 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4; do
        [ "$(grep -c "client $source:400[0-9][0-9] connected" "$SERVER_LOG")" -eq 75 ]
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
    for args in "" "-p 0" "-p 80 -c 0" "-p 80 -d x" "-p 80 -n 65" "-p 80 --bogus" "-p 80 extra"; do
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
