#!/usr/bin/env bats
# Step 5, every core: step 4's event loop once per CPU, each loop with its
# own SO_REUSEPORT listening socket on the one port.
# SERVER=path/to/server bats tests/step5-reuseport.bats checks your own.

load every_step
SERVER=${SERVER:-$ROOT/step5-reuseport/server}
LOADGEN=${LOADGEN:-$ROOT/tools/loadgen}

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

# The limit is the process's: every loop runs out at once, and each must
# pause its own accepting. The default -w is the CPU count; 4 makes sure
# there are several loops to run out, whatever the machine.
@test "out of descriptors: neither dies nor spins, then serves everyone" { check_out_of_descriptors -w 4; }

@test "-w: a bad number of loops is one line on stderr, status 2; -h lists -w" {
    interface "-w N takes a number of loops from 1 to 1024, digits only; anything else prints one line on stderr and exits 2"
    local args
    for args in "-w 0" "-w 1025" "-w abc" "-w -1" "-w 2x" "-w ''" "-w"; do
        run timeout 5 bash -c "\"\$0\" $args 2>&1 >/dev/null" "$SERVER"
        if [ "$status" -ne 2 ] || [ "${#lines[@]}" -ne 1 ]; then
            echo "server $args: status $status, stderr: $output" >&2
            return 1
        fi
    done
    run "$SERVER" -h
    [[ $output == *"-w N"* ]]
}

# The LISTEN sockets on the server's port, from /proc/net/tcp and tcp6
# (state 0A): with SO_REUSEPORT, one per loop.
listeners_on_port() {
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v port="$(printf ':%04X' "$PORT")" \
            '$4 == "0A" && substr($2, length($2) - 4) == port { n++ } END { print n + 0 }'
}

# The ids of the server's threads other than the main one: its loops.
loop_tids() {
    local task
    for task in "/proc/$SERVER_PID/task/"*; do
        [ "${task##*/}" = "$SERVER_PID" ] || echo "${task##*/}"
    done
}

# CPU time (user + system, in clock ticks) thread $2 of process $1 has used.
thread_cpu_ticks() {
    local stat
    read -r stat <"/proc/$1/task/$2/stat"
    stat=${stat##*) }
    set -- $stat
    echo $((${12} + ${13}))
}

@test "-w 3: three loops, each a thread beside the main one, and no more with 500 clients, using no CPU" {
    start_server -q -w 3
    [ "$(thread_count "$SERVER_PID")" -eq 4 ]
    [ "$(listeners_on_port)" -eq 3 ]
    local before=$(fd_count "$SERVER_PID")
    spawn holder "$CLIENT" -p "$PORT" -c 500 hold
    expect holder '^connected 500$'
    wait_until 10 '[ "$(fd_count "$SERVER_PID")" -ge $((before + 500)) ]'
    [ "$(thread_count "$SERVER_PID")" -eq 4 ]
    [ "$(child_count "$SERVER_PID")" -eq 0 ]
    local ticks=$(cpu_ticks "$SERVER_PID")
    sleep 1  # a window to measure CPU use over, not a wait for an event
    [ $(($(cpu_ticks "$SERVER_PID") - ticks)) -lt 10 ]
    finish holder
}

@test "-w 1: one loop, one listening socket, every client on the one thread" {
    start_server -w 1
    [ "$(thread_count "$SERVER_PID")" -eq 2 ]
    [ "$(listeners_on_port)" -eq 1 ]
    echo_ok -c 50
    wait_until 5 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 50 ]'
    [ "$(log_ids ' connected' | wc -l)" -eq 1 ]
}

# A second copy of the server on the same port sets SO_REUSEPORT on its
# loops' sockets too: unguarded, it would join the first one's group, and
# the kernel would hand it some of the clients.
@test "second server on the port: fails with status 1, and the first keeps every listening socket and client" {
    start_server -w 4
    [ "$(listeners_on_port)" -eq 4 ]
    local loops
    for loops in 1 2 4; do
        run timeout 5 bash -c '"$0" -p "$1" -w "$2" 2>&1 >/dev/null' "$SERVER" "$PORT" "$loops"
        echo "second server with -w $loops: status $status: $output" >&2
        [ "$status" -eq 1 ]
        [ "${#lines[@]}" -eq 1 ]
        [[ $output == *"127.0.0.1:$PORT"*"Address already in use"* ]]
    done
    [ "$(listeners_on_port)" -eq 4 ]
    echo_ok -c 50
    wait_until 5 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 50 ]'
}

# 100 clients echo for two seconds: the kernel spreads them over every
# loop (the chance that one of 4 loops gets none of 100 is below 10^-12),
# every loop's thread uses CPU, and every byte comes back to the client
# that sent it: loadgen checks each against the connection's own pattern,
# so two loops sharing a buffer would show as byte errors.
@test "many clients: spread over every loop (log ids), every loop's thread works (CPU per thread), no byte astray" {
    start_server -w 4
    local tid before=() n=0
    for tid in $(loop_tids); do
        before[n++]=$(thread_cpu_ticks "$SERVER_PID" "$tid")
    done
    [ "$n" -eq 4 ]
    run "$LOADGEN" -p "$PORT" -c 100 -d 2 --json -t 30
    [ "$status" -eq 0 ]
    echo "$output" >&2
    [[ $output == *'"opened":100,"failed":0,"broken":0,"verified":100,'* ]]
    [[ $output == *'"byte_errors":0,'* ]]
    wait_until 5 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 100 ]'
    [ "$(log_ids ' connected' | wc -l)" -eq 4 ]
    # Each loop's thread, by the id its log lines carry.
    [ "$(log_ids ' connected')" = "$(loop_tids | sort -u)" ]
    n=0
    for tid in $(loop_tids); do
        local used=$(($(thread_cpu_ticks "$SERVER_PID" "$tid") - before[n++]))
        echo "loop $tid: $used ticks" >&2
        [ "$used" -gt 0 ]
    done
}

@test "concurrent clients on two loops at once: every byte comes back to the client that sent it" {
    start_server -q -w 2
    # Enough traffic that the two loops' reads overlap many times, even
    # when other work shares the CPUs.
    echo_ok -c 100 -s 4M -t 60
    [ "$output" = "echoed 100 connections, 4194304 bytes each" ]
}

# Each connection line is "fd N: client ADDRESS:PORT connected". Prints
# "ADDRESS:PORT LOOP" for each, LOOP being the thread id of the line.
client_loops() {
    sed -nE 's/^[^ []+\[([0-9]+)\]: fd [0-9]+: client ([^ ]+) connected .*/\2 \1/p' "$SERVER_LOG" | sort -u
}

# loadgen's 20 connections from 127.0.0.1, ports 40000 to 40019, for a
# tenth of a second: true once all 20 opened and echoed.
run_from_fixed_ports() {
    "$LOADGEN" -p "$PORT" -c 20 --sources 1 --ports 40000-40019 -d 0.1 --warmup 0 -t 10 \
        >"$BATS_TEST_TMPDIR/loadgen.out" 2>&1 &&
        grep -q '^connections: 20 opened, 0 failed to connect, 20 echoed' "$BATS_TEST_TMPDIR/loadgen.out"
}

# The kernel picks a client's loop by a hash of the connection's addresses
# and ports, not by how busy the loops are: the same client address and
# port land on the same loop every time. The second run waits for the
# kernel to let the ports be used again: each connection's client side sits
# in TIME_WAIT, which net.ipv4.tcp_tw_reuse (2: on loopback) lets connect()
# reuse a second after its last packet; until then loadgen cannot connect.
@test "the kernel's hash: clients from the same address and port land on the same loop, run after run" {
    [ "$(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null)" != 0 ] ||
        skip "net.ipv4.tcp_tw_reuse is 0: ports in TIME_WAIT cannot be used again soon"
    start_server -w 4
    run_from_fixed_ports || { cat "$BATS_TEST_TMPDIR/loadgen.out" >&2; return 1; }
    wait_until 5 '[ "$(client_loops | wc -l)" -eq 20 ]'
    local first=$(client_loops)
    # More than one loop, or the test shows nothing about the hash.
    [ "$(awk '{ print $2 }' <<<"$first" | sort -u | wc -l)" -gt 1 ]
    wait_until 10 'run_from_fixed_ports'
    wait_until 5 '[ "$(grep -c " connected" "$SERVER_LOG")" -ge 40 ]'
    # Every address:port still appears with exactly one loop.
    local clients=$(client_loops | awk '{ print $1 }' | sort | uniq -c | awk '$1 > 1')
    if [ -n "$clients" ]; then
        echo "clients that landed on more than one loop: $clients" >&2
        return 1
    fi
    [ "$(client_loops)" = "$first" ]
}

# Which loop serves a client is fixed when it connects: the loop whose
# socket's queue the kernel put it in. One client that sends 256 MiB keeps
# its loop busy; meanwhile 100 others each connect, echo and leave, and
# each is served to the end by the loop that accepted it: per loop, every
# descriptor's "connected" line has its "disconnected" line on the same
# thread. (How much the busy loop's other clients are slowed is measured by
# make bench, not asserted here: on a shared machine timing is noise.)
@test "one busy loop: every client is served, connect to close, by the loop that accepted it" {
    start_server -w 2
    spawn busy "$CLIENT" -p "$PORT" -s 256M -t 120
    wait_until 10 '[ "$(grep -c " connected" "$SERVER_LOG")" -eq 1 ]'
    local busy_loop=$(log_ids ' connected')
    echo_ok -c 100 -s 64K -t 60
    [ "$output" = "echoed 100 connections, 65536 bytes each" ]
    exited "${PIDS[busy]}" && echo "the busy client ended before the others: slow machine?" >&2
    wait_until 10 '[ "$(grep -c "disconnected" "$SERVER_LOG")" -ge 100 ]'
    # Both loops took clients, the busy one among them.
    [ "$(log_ids ' connected' | wc -l)" -eq 2 ]
    log_ids ' connected' | grep -qx "$busy_loop"
    local unmatched
    unmatched=$(sed -nE -e 's/^[^ []+\[([0-9]+)\]: fd ([0-9]+): client [^ ]+ connected .*/\1 \2 connected/p' \
        -e 's/^[^ []+\[([0-9]+)\]: fd ([0-9]+): client disconnected .*/\1 \2 disconnected/p' "$SERVER_LOG" |
        awk '{ k = $1 " fd " $2 }
             $3 == "connected" { if (open[k]) bad[k] = 1; open[k] = 1 }
             $3 == "disconnected" { if (!open[k]) bad[k] = 1; open[k] = 0 }
             END { for (k in bad) print k }')
    if [ -n "$unmatched" ]; then
        echo "connect and disconnect lines not on the same loop: $unmatched" >&2
        return 1
    fi
    finish busy
}

# 10,000 idle connections, each then echoed. An idle connection owns no
# buffer, and each loop's table maps memory only for the slots used: the
# server's resident memory grows by far less than 1 KiB per connection.
@test "holds 10,000 concurrent clients and echoes each" { check_holds_10000 -w 2; }

@test "raises its soft open-file limit to the hard limit" { check_raises_open_file_limit; }

@test "SIGTERM: every loop stops and closes its clients; a line per loop, then the total" {
    start_server -q -w 3
    local before=$(fd_count "$SERVER_PID") tids
    tids=$(loop_tids | sort)
    echo_ok -c 3 -s 1000
    spawn holder "$CLIENT" -p "$PORT" -c 2 -s 10 hold
    expect holder '^connected 2$'
    wait_until 10 '[ "$(fd_count "$SERVER_PID")" -eq $((before + 2)) ]'
    stop_server TERM
    # 3 x 1000 bytes, and the one byte each held client has echoed.
    [ "$(tail -n 1 "$SERVER_LOG" | sed -E 's/^[^ ]+\[[0-9]+\]: //')" = "served 5 connections, echoed 3002 bytes" ]
    local lines
    lines=$(sed -nE 's/^[^ ]+\[[0-9]+\]: loop ([0-9]+): served ([0-9]+) connections, echoed ([0-9]+) bytes$/\1 \2 \3/p' "$SERVER_LOG")
    echo "$lines" >&2
    # One line per loop, named by its thread id, adding up to the total.
    [ "$(awk '{ print $1 }' <<<"$lines" | sort)" = "$tids" ]
    [ "$(awk '{ c += $2; b += $3 } END { print c, b }' <<<"$lines")" = "5 3002" ]
    local status=0
    finish holder || status=$?
    [ "$status" -eq 1 ]
    grep -q 'server closed after echoing 1 of 10 bytes' "$BATS_TEST_TMPDIR/holder.err"
}

@test "a log nobody reads: keeps serving, drops lines, then says how many" { check_log_nobody_reads 6004 -w 2; }

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
