# measure.bash: starting servers and load, and reading what they cost from
# /proc. Sourced by bench/run, and by tests/bench.bats on canned files.
#
# PROC (default /proc) is where the readings come from, so tests can point
# the parsers at canned copies.

PROC=${PROC:-/proc}

server_command() {
    case $1 in
    step1) echo "$ROOT/step1-blocking/server" ;;
    step2) echo "$ROOT/step2-fork/server" ;;
    step3) echo "$ROOT/step3-threads/server" ;;
    step4) echo "$ROOT/step4-epoll/server" ;;
    step5) echo "$ROOT/step5-reuseport/server${LOOPS:+ -w $LOOPS}" ;;
    step6) echo "$ROOT/step6-io-uring/server" ;;
    poll) echo "$ROOT/bench/poll-echo" ;;
    stall) echo "$ROOT/tests/fixtures/slow-echo --stall-ms $STALL_MS" ;;
    node) echo "node $ROOT/bench/node-echo.js" ;;
    esac
}

# pinned CPUS: taskset's words to run a command on CPUS (a list such as
# "0" or "0-2"), or nothing when CPUS is empty. The processes and threads
# a server creates later inherit the set (man 2 sched_setaffinity for
# fork, man 3 pthread_create for threads).
pinned() {
    [ -z "$1" ] || echo "taskset -c $1"
}

# starts MODEL: whether it starts at all (step 6 cannot where io_uring is
# refused); if not, WHY_NOT says what it printed.
starts() {
    local pid deadline=$((SECONDS + 10))
    # Emptied here, not by the background job's redirection, which could
    # come after the first look and leave an earlier run's line to be seen.
    : >"$TMP/starts.out"
    # shellcheck disable=SC2046
    $(server_command "$1") -q -p 0 >>"$TMP/starts.out" 2>&1 </dev/null &
    pid=$!
    until grep -q '^listening on ' "$TMP/starts.out" || ! kill -0 "$pid" 2>/dev/null ||
        [ "$SECONDS" -ge "$deadline" ]; do
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    WHY_NOT=
    grep -q '^listening on ' "$TMP/starts.out" && return 0
    WHY_NOT=$(grep -m 1 . "$TMP/starts.out" || echo 'it printed nothing')
    return 1
}

# start_server MODEL: starts it on a port the kernel picks, on the CPUs in
# SERVER_CPUS if set; sets SERVER_PID, PORT, BASE_SOCKETS (the sockets it
# holds with no client) and BASE_TASKS (its threads and processes then).
start_server() {
    local line
    rm -f "$TMP/server.out"
    mkfifo "$TMP/server.out"
    # shellcheck disable=SC2046  # the command is words on purpose
    $(pinned "${SERVER_CPUS:-}") $(server_command "$1") -q -p 0 >"$TMP/server.out" 2>"$TMP/server.err" &
    SERVER_PID=$!
    exec {SERVER_OUT}<>"$TMP/server.out"
    if ! read -r -t 10 line <&"$SERVER_OUT" || ! [[ $line =~ :([0-9]+)$ ]]; then
        echo "bench: $1 did not start: $(cat "$TMP/server.err")" >&2
        exit 1
    fi
    PORT=${BASH_REMATCH[1]}
    BASE_SOCKETS=0
    BASE_SOCKETS=$(server_sockets)
    BASE_TASKS=$(server_tasks)
}

stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    pkill -KILL -P "$SERVER_PID" 2>/dev/null || true
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    exec {SERVER_OUT}>&-
    SERVER_PID=
}

# start_loadgen ARGS...: loadgen in the background, its stdin and stdout
# on pipes of ours: with --hold it holds its connections until stdin
# closes; with --wait it starts when it reads a line (loadgen_go) and,
# once done, waits again, connections open, until stdin closes. On the
# CPUs in CLIENT_CPUS, if set.
start_loadgen() {
    rm -f "$TMP/loadgen.in" "$TMP/loadgen.out"
    mkfifo "$TMP/loadgen.in" "$TMP/loadgen.out"
    # shellcheck disable=SC2046
    $(pinned "${CLIENT_CPUS:-}") "$LOADGEN" -p "$PORT" "$@" <"$TMP/loadgen.in" >"$TMP/loadgen.out" 2>"$TMP/loadgen.err" &
    LOADGEN_PID=$!
    exec {LOADGEN_IN}<>"$TMP/loadgen.in" {LOADGEN_OUT}<>"$TMP/loadgen.out"
}

read_loadgen_line() {
    local line
    if ! read -r -t "$1" line <&"$LOADGEN_OUT"; then
        echo "bench: loadgen said nothing in $1 s: $(cat "$TMP/loadgen.err")" >&2
        return 1
    fi
    echo "$line"
}

# expect_loadgen WORD SECONDS: reads loadgen's lines until one starts with
# WORD ("connected", "finished"); fails if none comes in time.
expect_loadgen() {
    local line deadline=$((SECONDS + $2))
    while line=$(read_loadgen_line $((deadline > SECONDS ? deadline - SECONDS : 1))); do
        [[ $line == "$1"* ]] && return 0
    done
    return 1
}

# loadgen_go: the line a loadgen started with --wait waits for.
loadgen_go() {
    echo go >&"$LOADGEN_IN"
}

# finish_loadgen: closes its stdin, so that it checks and closes its
# connections, and prints its JSON line.
finish_loadgen() {
    local line
    exec {LOADGEN_IN}>&-
    while line=$(read_loadgen_line 120); do
        if [[ $line == "{"* ]]; then
            echo "$line"
            break
        fi
    done
    wait "$LOADGEN_PID" || true
    exec {LOADGEN_OUT}>&-
}

# The server's process and its children (step 2 forks one per client).
server_pids() {
    echo "$SERVER_PID"
    ps -o pid= --ppid "$SERVER_PID" 2>/dev/null || true
}

# Client connections the server holds: the sockets open in its processes,
# less the ones it had before any client came.
server_sockets() {
    local dirs
    dirs=$(server_pids | sed "s|^ *\\(.*\\)|$PROC/\\1/fd|")
    # shellcheck disable=SC2086  # one argument per directory
    echo $(($(find $dirs -lname 'socket:*' 2>/dev/null | wc -l) - BASE_SOCKETS))
}

# wait_until_held N SECONDS: until the server holds N client connections.
wait_until_held() {
    local deadline=$((SECONDS + $2))
    until [ "$(server_sockets)" -eq "$1" ]; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# Threads and processes of the server: one per connection in steps 2 and 3.
server_tasks() {
    local pids
    pids=$(server_pids)
    # shellcheck disable=SC2086
    cat $(printf "$PROC/%s/status " $pids) 2>/dev/null | awk '/^Threads:/ { n += $2 } END { print n + 0 }'
}

# wait_until_steady SECONDS PAUSE COUNT: until the number COUNT prints
# (server_sockets, server_tasks) is the same twice, PAUSE seconds apart.
# The server may still be accepting connections, or starting a thread or a
# process for those it has accepted.
wait_until_steady() {
    local deadline=$((SECONDS + $1)) last=-1 now
    now=$($3)
    while [ "$now" -ne "$last" ] && [ "$SECONDS" -lt "$deadline" ]; do
        last=$now
        sleep "$2"
        now=$($3)
    done
}

# Processes and threads on the machine, from /proc/loadavg's "running/total".
tasks_running() {
    awk '{ split($4, n, "/"); print n[2] }' "$PROC/loadavg"
}

# server_counters: what the server has used so far, as one line
# "CPU_NS TICKS VOLUNTARY INVOLUNTARY", from task_counters.
server_counters() {
    # shellcheck disable=SC2046
    task_counters $(server_pids)
}

# stolen_ticks: the time, in 1/CLK_TCK s summed over every CPU, that the
# hypervisor ran something else while this virtual machine wanted its CPUs
# (the 8th number of /proc/stat's "cpu" line, steal: man 5 proc). On a
# machine that is not virtual it stays 0.
stolen_ticks() {
    awk '$1 == "cpu" { print $9 + 0; exit }' "$PROC/stat"
}

# task_counters PID...: what these processes have used so far, one line:
#   CPU_NS       CPU time of every thread alive now, in nanoseconds (the
#                first field of each /proc/PID/task/TID/schedstat);
#   TICKS        CPU time of each process (/proc/PID/stat utime + stime,
#                every thread, the exited ones too) and of its children
#                that have exited and been reaped (cutime + cstime), in
#                1/CLK_TCK s;
#   VOLUNTARY    context switches of every thread alive now: it blocked
#   INVOLUNTARY  (in recv(), epoll_wait()...), or the kernel took the CPU
#                from it (voluntary_ctxt_switches and
#                nonvoluntary_ctxt_switches in .../task/TID/status; the
#                process's own status counts its first thread only).
# CPU_NS is exact, but forgets a thread or a child once it exits; TICKS
# counts those, to the tick. A file that vanished (a task that exited as
# we read) is skipped: cat, not awk, opens them.
task_counters() {
    local pid
    for pid in "$@"; do
        printf '%s\n' "$PROC/$pid/stat" "$PROC/$pid/task/"*/schedstat "$PROC/$pid/task/"*/status
    done | { xargs -r cat 2>/dev/null || true; } | awk '
        /^[0-9]+ \(/ {
            sub(/^.*\) /, "")   # "pid (name) ": the name may hold spaces
            ticks += $12 + $13 + $14 + $15
            next
        }
        /^[0-9]+ [0-9]+ [0-9]+$/ { ns += $1 }
        /^voluntary_ctxt_switches:/ { vol += $2 }
        /^nonvoluntary_ctxt_switches:/ { invol += $2 }
        END { printf "%.0f %.0f %.0f %.0f\n", ns, ticks, vol, invol }'
}

# snapshot: "key KiB" lines, what the server and the kernel use right now.
snapshot() {
    local pids
    pids=$(server_pids)
    # shellcheck disable=SC2086
    user_memory $(printf "$PROC/%s/smaps_rollup " $pids)
    thread_stacks "$PROC/$SERVER_PID/smaps"
    # shellcheck disable=SC2086
    kernel_memory "$PROC/meminfo" "$PROC/loadavg" "$PROC/net/sockstat" \
        $(printf "$PROC/%s/status " $pids)
}

# user_memory SMAPS_ROLLUP...: RSS counts every page of a process that is in
# memory, shared or not, so a forked child's copy of its parent's pages counts in
# both. PSS splits each shared page between the processes sharing it. Only
# the anonymous part (heap, stacks: what connections can make grow) is
# kept: program and library pages are shared with the client too (libc),
# and would make the server's share shrink as the client grows. A file
# that vanished (a child that exited) is skipped: cat, not awk, opens them.
user_memory() {
    cat "$@" 2>/dev/null | awk '
        /^Rss:/ { rss += $2 } /^Pss:/ { pss += $2 }
        /^Pss_Anon:/ { anon += $2; split_pss = 1 } /^Pss_Shmem:/ { anon += $2 }
        END { printf "rss %d\npss %d\n", rss, split_pss ? anon : pss }'
}

# thread_stacks SMAPS [PAGE_KIB]: glibc makes a thread's stack with one
# mmap(): the stack, read-write, and at its low end, where a stack that
# grows down would overflow, a guard page with no access at all, so that
# an overflow faults instead of writing over what lies below. In smaps
# that is an anonymous ---p mapping of one page, and right above it, from
# the very address where the guard ends, an anonymous rw-p mapping: the
# stack, of whatever size (ulimit -s, or what the program asked for). Its
# Size is reserved address space; its Rss is what the thread has actually
# touched. A malloc arena of another thread looks alike but the other way
# up: its rw-p part first, then the rest of its reservation as a large
# ---p mapping above it, not a one-page one below.
thread_stacks() {
    awk -v page="${2:-$(($(getconf PAGESIZE) / 1024))}" '
        /^[0-9a-f]+-[0-9a-f]+ / {
            split($1, range, "-")
            stack = ($2 == "rw-p" && NF == 5 && guard_end == range[1])
            # This may be the guard of the next one: anonymous, no access.
            guard_end = ""; maybe_guard = ($2 == "---p" && NF == 5)
            end = range[2]
            next
        }
        /^Size:/ {
            if (maybe_guard && $2 == page) guard_end = end
            if (stack) reserved += $2
        }
        stack && /^Rss:/ { resident += $2 }
        END { printf "stack_reserved %d\nstack_resident %d\n", reserved, resident }' "$1"
}

# kernel_memory MEMINFO LOADAVG SOCKSTAT STATUS...: what the kernel spends
# on the server: a kernel stack for each of its threads and processes (the
# machine's KernelStack shared out over all its tasks), the page tables of
# its processes (VmPTE in each STATUS), and, system-wide, the unreclaimable
# slab (socket structures, epoll entries...) and TCP buffer pages.
kernel_memory() {
    local meminfo=$1 loadavg=$2 sockstat=$3 page_kib
    shift 3
    page_kib=$(($(getconf PAGESIZE) / 1024))
    {
        cat "$meminfo" "$loadavg"
        cat "$@" 2>/dev/null
    } | awk '
        /^KernelStack:/ { all_stacks = $2 } /^SUnreclaim:/ { slab = $2 }
        /^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+\/[0-9]+ / { split($4, n, "/"); tasks = n[2] }
        /^Threads:/ { server_tasks += $2 } /^VmPTE:/ { tables += $2 }
        END {
            printf "kernel_stacks %d\n", tasks ? all_stacks * server_tasks / tasks : 0
            printf "page_tables %d\nkernel_slab %d\n", tables, slab
        }'
    awk -v page="$page_kib" '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "mem") print "socket_buffers", $(i + 1) * page }' "$sockstat"
}

# record MODEL SECTION N KEY VALUE: one measurement, one line of $TSV.
record() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"
}

# summarise MODEL SECTION N RUN-FILE...: records each figure of the runs
# (files of "key value" lines) as its median over them, with the lowest
# and highest beside it (KEY_low, KEY_high) when there is more than one
# run: on a shared machine one run can be off by a third. Failures are
# listed by run.
summarise() {
    local model=$1 section=$2 n=$3 key values failures
    shift 3
    for key in $(cut -f1 "$1"); do
        [ "$key" = failures ] && continue
        values=$(awk -F'\t' -v k="$key" '$1 == k && $2 != "" { print $2 }' "$@" | sort -g)
        [ -n "$values" ] || continue
        record "$model" "$section" "$n" "$key" "$(awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }' <<<"$values")"
        if [ "$#" -gt 1 ]; then
            record "$model" "$section" "$n" "${key}_low" "$(head -n 1 <<<"$values")"
            record "$model" "$section" "$n" "${key}_high" "$(tail -n 1 <<<"$values")"
        fi
    done
    failures=$(awk -F'\t' '$1 == "failures" && $2 != "" {
        run = FILENAME; sub(/.*\./, "", run); printf "%srun %s: %s", sep, run, $2; sep = "; " }' "$@")
    [ -z "$failures" ] || record "$model" "$section" "$n" failures "$failures"
}

# loop_connections LOG: from step 5's closing lines, one per event loop
# ("loop TID: served N connections, echoed B bytes"), "loops L",
# "conns_lowest N" and "conns_highest N".
loop_connections() {
    awk 'match($0, /loop [0-9]+: served [0-9]+ connections/) {
            split(substr($0, RSTART, RLENGTH), w, " ")
            n = w[4] + 0; loops++
            if (loops == 1 || n < lo) lo = n
            if (n > hi) hi = n
        }
        END { if (loops) printf "loops %d\nconns_lowest %d\nconns_highest %d\n", loops, lo, hi }' "$1"
}

# lookup SNAPSHOT KEY: the value of KEY in a snapshot.
lookup() {
    awk -v k="$2" '$1 == k { print $2 }' <<<"$1"
}

# json_field KEY: KEY's value in the JSON line on stdin (strings unquoted).
json_field() {
    sed -nE "s/.*\"$1\":(\"([^\"]*)\"|([^,}]*)).*/\\2\\3/p"
}

# json_failures: loadgen's "failures" object, {"STEP: reason":COUNT,...},
# as "STEP: reason ×COUNT; ..." (nothing when there were none).
json_failures() {
    sed -nE 's/.*"failures":\{(.*)\}\}$/\1/p' | { grep -oE '"[^"]*":[0-9]+' || true; } |
        sed -E 's/^"(.*)":([0-9]+)$/\1 ×\2/' | paste -sd';' - | sed 's/;/; /g'
}

# why_no_perf: why perf will not count the server's system calls here, or
# nothing if it may. The bench counts them as root, or where
# kernel.perf_event_paranoid is -1, which lets every user use (almost)
# every event; at other levels an ordinary user's count of a kernel
# tracepoint may be refused or come out as nothing.
why_no_perf() {
    local paranoid
    if ! command -v perf >/dev/null; then
        echo "perf is not installed"
        return
    fi
    paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo unknown)
    if [ "$(id -u)" -ne 0 ] && [ "$paranoid" != -1 ]; then
        echo "not root, and kernel.perf_event_paranoid is $paranoid, not -1"
    fi
}

# start_perf PID...: perf stat counting every system call these processes
# (all their threads) enter, with counting off until perf_control enable.
# perf reads its commands from one FIFO and answers "ack" on another once
# it has carried one out: an exact signal that it is attached and counting,
# where a sleep would be a guess. Fails if perf does not answer.
start_perf() {
    local pids
    pids=$(printf '%s,' "$@")
    rm -f "$TMP/perf.ctl" "$TMP/perf.ack" "$TMP/perf.out"
    mkfifo "$TMP/perf.ctl" "$TMP/perf.ack"
    exec {PERF_CTL}<>"$TMP/perf.ctl" {PERF_ACK}<>"$TMP/perf.ack"
    perf stat -D -1 --control "fifo:$TMP/perf.ctl,$TMP/perf.ack" -e raw_syscalls:sys_enter \
        -x, -p "${pids%,}" -o "$TMP/perf.out" 2>"$TMP/perf.err" &
    PERF_PID=$!
    perf_control enable
}

# perf_control enable|disable: returns once perf has said "ack", or fails
# if it ends, or has not answered in 60 s (attaching to a thousand
# processes takes a while).
perf_control() {
    local reply tries=60
    echo "$1" >&"$PERF_CTL"
    until read -r -t 1 reply <&"$PERF_ACK"; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] && kill -0 "$PERF_PID" 2>/dev/null || return 1
    done
    [ "$reply" = ack ]
}

# stop_perf: counting off, then perf ends (on SIGINT) and writes its count.
stop_perf() {
    perf_control disable || true
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" || true
    exec {PERF_CTL}>&- {PERF_ACK}>&-
}

# perf_count FILE: the count in what `perf stat -x,` wrote: one line per
# event, "COUNT,UNIT,EVENT,RUN TIME,PERCENT,...". Its other lines ("# started
# on ...", "Events enabled" and "Events disabled" from --control) are not
# counts. Fails where the event was not counted ("<not counted>",
# "<not supported>").
perf_count() {
    awk -F, '$3 == "raw_syscalls:sys_enter" && $1 ~ /^[0-9]+$/ { print $1; found = 1 }
             END { exit !found }' "$1"
}

# listen_overflows: how many times, since boot and machine-wide, the
# kernel dropped the last packet of a client's handshake because the queue
# of connections waiting for accept() on its listening socket was full
# (TcpExt ListenOverflows in /proc/net/netstat, a line of names, then one
# of values). The client sends it again, and may be let in later.
listen_overflows() {
    awk '$1 == "TcpExt:" { if (!names) { for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") col = i; names = 1 }
                           else if (col) print $col }' "$PROC/net/netstat"
}

# pid_room: process ids left, less 2,000 for everything else on the
# machine. Every process and thread takes one, and running out of them
# (kernel.pid_max) stops every program on the machine, this one included.
pid_room() {
    echo $(($(cat /proc/sys/kernel/pid_max) - $(tasks_running) - 2000))
}

# The first thing the server said went wrong, without its "name[id]: ".
first_server_error() {
    sed -E 's/^[^ []+\[[0-9]+\]: //' "$TMP/server.err" | grep -m 1 . || true
}

describe_machine() {
    local os=unknown
    [ -r /etc/os-release ] && os=$(. /etc/os-release && echo "$PRETTY_NAME")
    printf 'machine\t%s\t%s\n' \
        cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
        cores "$(nproc)" \
        memory "$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" \
        os "$os" \
        kernel "$(uname -r)" \
        "virtual machine" "$(grep -qw hypervisor /proc/cpuinfo && echo 'yes (the hypervisor flag of /proc/cpuinfo)' || echo no)" \
        "open files (soft/hard)" "$(ulimit -Sn)/$(ulimit -Hn)" \
        "thread stack (ulimit -s)" "$(ulimit -s) KiB" \
        "kernel.pid_max" "$(cat /proc/sys/kernel/pid_max)" \
        "kernel.threads-max" "$(cat /proc/sys/kernel/threads-max)" \
        "vm.max_map_count" "$(cat /proc/sys/vm/max_map_count)" \
        "net.core.somaxconn" "$(cat /proc/sys/net/core/somaxconn)" \
        "ephemeral ports" "$(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range)" \
        node "$(node --version 2>/dev/null || echo 'not installed')" \
        perf "$(perf --version 2>/dev/null || echo 'not installed')" \
        "kernel.perf_event_paranoid" "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo unknown)" \
        date "$(date -u +%Y-%m-%d)"
}
