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
    node) echo "node $ROOT/bench/node-echo.js" ;;
    esac
}

# start_server MODEL: starts it on a port the kernel picks; sets SERVER_PID,
# PORT and BASE_SOCKETS (the sockets it holds with no client).
start_server() {
    local line
    rm -f "$TMP/server.out"
    mkfifo "$TMP/server.out"
    # shellcheck disable=SC2046  # the command is words on purpose
    $(server_command "$1") -q -p 0 >"$TMP/server.out" 2>"$TMP/server.err" &
    SERVER_PID=$!
    exec {SERVER_OUT}<>"$TMP/server.out"
    if ! read -r -t 10 line <&"$SERVER_OUT" || ! [[ $line =~ :([0-9]+)$ ]]; then
        echo "bench: $1 did not start: $(cat "$TMP/server.err")" >&2
        exit 1
    fi
    PORT=${BASH_REMATCH[1]}
    BASE_SOCKETS=0
    BASE_SOCKETS=$(server_sockets)
}

stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    pkill -KILL -P "$SERVER_PID" 2>/dev/null || true
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    exec {SERVER_OUT}>&-
    SERVER_PID=
}

# start_loadgen ARGS...: loadgen in the background; it holds its connections
# until finish_loadgen closes its stdin.
start_loadgen() {
    rm -f "$TMP/loadgen.in" "$TMP/loadgen.out"
    mkfifo "$TMP/loadgen.in" "$TMP/loadgen.out"
    "$LOADGEN" -p "$PORT" "$@" <"$TMP/loadgen.in" >"$TMP/loadgen.out" 2>"$TMP/loadgen.err" &
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

# finish_loadgen: lets it check its connections, and prints its JSON line.
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

# CPU time used by the server, its live children and its reaped children.
server_cpu_ticks() {
    local pid total=0 fields
    for pid in $(server_pids); do
        read -r fields 2>/dev/null <"$PROC/$pid/stat" || continue
        fields=${fields##*) }   # skip "pid (name) "
        # shellcheck disable=SC2086
        set -- $fields
        total=$((total + ${12} + ${13} + ${14} + ${15}))
    done
    echo "$total"
}

# snapshot: "key KiB" lines, what the server and the kernel use right now.
snapshot() {
    local pids
    pids=$(server_pids)
    # shellcheck disable=SC2086
    user_memory $(printf "$PROC/%s/smaps_rollup " $pids)
    thread_stacks "$PROC/$SERVER_PID/smaps" "$(stack_kib)"
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

# The stack size glibc gives a new thread: ulimit -s, or 8 MiB when that
# is unlimited.
stack_kib() {
    local kib
    kib=$(ulimit -s)
    [ "$kib" = unlimited ] && kib=8192
    echo "$kib"
}

# thread_stacks SMAPS STACK_KIB: glibc gives each thread an anonymous
# read-write mapping of the stack size, below a one-page guard mapping.
# Its Size is reserved address space; its Rss is what the thread has
# actually touched.
thread_stacks() {
    awk -v want="$2" '
        /^[0-9a-f]+-[0-9a-f]+ / { stack = ($2 == "rw-p" && NF == 5); next }
        stack && /^Size:/ { if ($2 == want) { reserved += $2 } else { stack = 0 } }
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

# lookup SNAPSHOT KEY: the value of KEY in a snapshot.
lookup() {
    awk -v k="$2" '$1 == k { print $2 }' <<<"$1"
}

# json_field KEY: KEY's value in the JSON line on stdin (strings unquoted).
json_field() {
    sed -nE "s/.*\"$1\":(\"([^\"]*)\"|([^,}]*)).*/\\2\\3/p"
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
        "open files (soft/hard)" "$(ulimit -Sn)/$(ulimit -Hn)" \
        "thread stack (ulimit -s)" "$(ulimit -s) KiB" \
        "kernel.pid_max" "$(cat /proc/sys/kernel/pid_max)" \
        "kernel.threads-max" "$(cat /proc/sys/kernel/threads-max)" \
        "vm.max_map_count" "$(cat /proc/sys/vm/max_map_count)" \
        "net.core.somaxconn" "$(cat /proc/sys/net/core/somaxconn)" \
        "ephemeral ports" "$(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range)" \
        node "$(node --version 2>/dev/null || echo 'not installed')" \
        date "$(date -u +%Y-%m-%d)"
}
