# report.awk: the Markdown tables of a bench run.
# awk -f models.awk -f report.awk machine.tsv results.tsv
# machine.tsv: "machine KEY VALUE" (the machine) and "bench KEY VALUE" (how
# the run was made); results.tsv: "MODEL SECTION N KEY VALUE"; both
# tab-separated, as bench/run writes them.

BEGIN { FS = "\t" }

$1 == "machine" { mkeys[++nm] = $2; mval[$2] = $3; next }
$1 == "bench" { bench[$2] = $3; next }

{
    model = $1; section = $2; n = $3; key = $4
    if (!(model in seen)) { seen[model] = 1; models[++nmodels] = model }
    if (!((section, n) in seen_n)) { seen_n[section, n] = 1; ns[section, ++count[section]] = n }
    v[model, section, n, key] = $5
    keyseen[section, key] = 1
    if (key == "failures" && $5 != "") failed[++nfailed] = model SUBSEP section SUBSEP n
    if (key == "problem") problem[++nproblems] = model ", " section ", " n ": " $5
    if (section ~ /^scale[0-9]+$/ && !(section in scale_seen)) {
        scale_seen[section] = 1; scale_clients[++nscale] = substr(section, 6) + 0
    }
}

# 1234567 -> 1,234,567. A difference below zero is the noise of the
# measurement (other processes, the kernel's caches): shown as ≈0.
function commas(x,    s) {
    if (x == "") return "-"
    if (x < 0) return "≈0"
    s = sprintf("%d", x + 0.5)
    while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
    return s
}

function val(model, section, n, key) {
    return ((model, section, n, key) in v) ? v[model, section, n, key] : ""
}

function has(model, section, n, key) { return (model, section, n, key) in v }

# Whether any model has KEY in SECTION: a table with no rows is left out.
function any(section, key) { return (section, key) in keyseen }

# A figure in the format its column uses: "int" (with commas) or a printf
# format such as "%.1f".
function fmt(x, f) {
    if (x == "") return "-"
    return f == "int" ? commas(x) : sprintf(f, x)
}

# A cell: the median, and the lowest–highest run beside it where there was
# more than one run.
function cell(model, section, n, key, f,    lo, hi) {
    if (!has(model, section, n, key)) return "-"
    lo = val(model, section, n, key "_low"); hi = val(model, section, n, key "_high")
    if (lo == "" || hi == "") return fmt(val(model, section, n, key), f)
    return fmt(val(model, section, n, key), f) " (" fmt(lo, f) "–" fmt(hi, f) ")"
}

function sorted_ns(section, out,    i, j, t, k) {
    k = count[section]
    for (i = 1; i <= k; i++) out[i] = ns[section, i] + 0
    for (i = 2; i <= k; i++)
        for (j = i; j > 1 && out[j - 1] > out[j]; j--) { t = out[j]; out[j] = out[j - 1]; out[j - 1] = t }
    return k
}

function ranges_note() {
    if (bench["runs"] + 0 > 1)
        printf "Each figure is the median of %d runs, the lowest and highest in brackets.\n", bench["runs"]
}

function banner() {
    if (bench["made by"] == "make bench-quick") {
        print "Made by `make bench-quick` (tools/loadgen against each server in turn, on loopback): a"
        print "smaller, shorter run, every figure from a single run of " bench["seconds per run"] " s or less, on a machine"
        print "that may be busy with other work. Its numbers are noisy: they show the shape, not figures to"
        print "quote. `make bench` makes the full run."
    } else {
        print "Made by `" (bench["made by"] == "" ? "make bench" : bench["made by"]) "` (tools/loadgen against each server in turn, on loopback)."
        if (bench["runs"] != "")
            printf "Each echo figure is the median of %d runs of %s s (after %s s of warm-up), with the lowest and\nhighest run in brackets: on a shared machine one run can be off by a third.\n", \
                bench["runs"], bench["seconds per run"], bench["warm-up seconds"]
    }
    print ""
}

function machine_table(    i) {
    print "| machine | |"
    print "| --- | --- |"
    for (i = 1; i <= nm; i++) printf "| %s | %s |\n", mkeys[i], mval[mkeys[i]]
    print ""
    print "The machine the run was made on, and the limits that decide where each model stops."
    print ""
}

function memory_table(    i, j, k, m, n, list, keys) {
    k = sorted_ns("idle", list)
    if (k == 0) return
    print "## Memory per idle connection"
    print ""
    print "| model | connections | user RSS | user PSS | thread stacks reserved | thread stacks resident | kernel stacks | page tables | kernel slab | socket buffers |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    split("rss pss stack_reserved stack_resident kernel_stacks page_tables kernel_slab socket_buffers", keys, " ")
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (has(models[m], "idle", n, "failed")) {
                printf "| %s | %s | held only %s | | | | | | | |\n", models[m], commas(n), commas(val(models[m], "idle", n, "failed"))
                continue
            }
            if (has(models[m], "idle", n, "skipped")) {
                printf "| %s | %s | not measured: %s | | | | | | | |\n", models[m], commas(n), val(models[m], "idle", n, "skipped")
                continue
            }
            if (!has(models[m], "idle", n, "verified")) continue
            printf "| %s | %s", models[m], commas(n)
            for (i = 1; i <= 8; i++) printf " | %s", commas(val(models[m], "idle", n, keys[i]))
            print " |"
        }
    print ""
    print "Bytes per connection: what the server (all its processes) and the kernel use with N idle"
    print "connections open, less what the same server, just started, used with none, divided by N; each"
    print "count on a server of its own. User RSS is what `ps` shows: the pages of the processes that are"
    print "in memory, shared ones counted in full in each (resident thread stacks are part of it). User"
    print "PSS counts the anonymous pages (heap, stacks) and splits shared ones between the processes"
    print "sharing them. Thread stacks are the mappings with a one-page guard right below them, whatever"
    print "their size. Kernel stacks and page tables are the server's own; kernel slab and socket buffers"
    print "are system-wide, so they also count the client's end of each loopback connection. ≈0: less than"
    print "none, the noise of the measurement."
    print ""
}

function idle_cpu_table(    m, j, k, n, list, secs) {
    k = sorted_ns("idlecpu", list)
    if (k == 0) return
    print "## CPU while connections sit idle"
    print ""
    print "| model | idle connections | threads and processes | server CPU (ms) | CPU, % of one core | context switches a second, voluntary | involuntary |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (!has(models[m], "idlecpu", n, "cpu_ms")) continue
            secs = val(models[m], "idlecpu", n, "seconds")
            printf "| %s | %s | %s | %s | %s | %s | %s |\n", models[m], commas(n), commas(val(models[m], "idlecpu", n, "tasks")),
                fmt(val(models[m], "idlecpu", n, "cpu_ms"), "%.1f"), fmt(val(models[m], "idlecpu", n, "cpu_pct"), "%.2f"),
                (secs > 0 ? fmt(val(models[m], "idlecpu", n, "csw_voluntary") / secs, "%.1f") : "-"),
                (secs > 0 ? fmt(val(models[m], "idlecpu", n, "csw_involuntary") / secs, "%.1f") : "-")
        }
    print ""
    printf "The server's CPU time (every thread's, from /proc/PID/task/TID/schedstat) and context switches\n"
    printf "(voluntary: a thread blocked; involuntary: the kernel took the CPU from it) over %s s in which\n", bench["idle seconds"] == "" ? "a few" : bench["idle seconds"]
    print "it held the idle connections of the memory test above and no client sent a byte."
    print ""
}

# Which limit stopped a model, from what the server and the client said.
function limit(model, n,    se, ce, held, tried, nofile) {
    se = val(model, "most", n, "server_error"); ce = val(model, "most", n, "client_error")
    held = val(model, "most", n, "held") + 0; tried = val(model, "most", n, "tried") + 0
    split(mval["open files (soft/hard)"], nofile, "/")
    if (se ~ /Too many open files/ || (held < tried && (held >= nofile[1] - 64 && held <= nofile[1] || held >= nofile[2] - 64 && held <= nofile[2])))
        return "open files per process"
    if (se ~ /fork|pthread_create/) return "processes or threads"
    if (se ~ /Cannot allocate memory/ || ce ~ /Cannot allocate memory/) return "memory or memory maps"
    if (ce ~ /Cannot assign requested address/) return "source ports"
    if (ce ~ /connect: Connection timed out/ && se == "" && held < tried)
        return "accepting too slowly: connects timed out"
    # The queue of connections waiting for accept() overflowed, and some
    # clients gave up or were reset before the server took them.
    if (val(model, "most", n, "listen_overflows") + 0 > 0 && se == "" && held < tried)
        return "accepting too slowly: its queue overflowed"
    if (held >= tried) return "none: the bench stopped there"
    return "see the errors"
}

function most_table(    m, n, k, list) {
    k = sorted_ns("most", list)
    if (k == 0) return
    n = list[1]
    print "## Connections held"
    print ""
    print "| model | tried | held | echoed | accept queue overflows | what stopped it | the server said | the client saw |"
    print "| --- | ---: | ---: | ---: | ---: | --- | --- | --- |"
    for (m = 1; m <= nmodels; m++) {
        if (!has(models[m], "most", n, "held")) continue
        printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", models[m], commas(val(models[m], "most", n, "tried")),
            commas(val(models[m], "most", n, "held")), commas(val(models[m], "most", n, "verified")),
            commas(val(models[m], "most", n, "listen_overflows")),
            limit(models[m], n),
            val(models[m], "most", n, "server_error") == "" ? "nothing" : val(models[m], "most", n, "server_error"),
            val(models[m], "most", n, "client_error") == "" ? "no error" : val(models[m], "most", n, "client_error")
    }
    print ""
    printf "Up to %s connections opened at once, spread over client processes and source addresses;\n", commas(n)
    print "fewer for the models that need a process id per connection, so the machine keeps 2,000 ids"
    print "(kernel.pid_max) for everything else. Held: client connections open in the server's processes"
    print "once the count stopped rising. Echoed: those that still echoed a message at the end; it can be"
    print "more than held, as the check closes connections and the server then accepts some of those"
    print "still waiting in its queue. Accept queue overflows: the times the kernel dropped the last"
    print "packet of a client's handshake because the server's queue of connections waiting for"
    print "accept() was full (ListenOverflows in /proc/net/netstat, machine-wide, over this test); the"
    print "client sends it again, so one connection can count many times. The client's failures, by"
    print "error, are under Failures below."
    print ""
}

function echo_table(section, title,    m, j, k, n, list) {
    k = sorted_ns(section, list)
    if (!any(section, "msgs_per_s")) return
    print "## " title
    print ""
    print "| model | clients | msgs/s | MB/s | latency p50 (µs) | p99 (µs) | p99.9 (µs) |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (!has(models[m], section, n, "msgs_per_s")) continue
            printf "| %s | %s | %s | %s | %s | %s | %s |\n", models[m], commas(n),
                cell(models[m], section, n, "msgs_per_s", "int"), cell(models[m], section, n, "mb_per_s", "%.1f"),
                cell(models[m], section, n, "p50_us", "int"), cell(models[m], section, n, "p99_us", "int"),
                cell(models[m], section, n, "p999_us", "int")
        }
    print ""
    print "Closed loop: each client sends a message, waits for its echo, and sends the next. Latency is"
    print "that round trip as the client sees it; MB/s counts the echoed bytes (10^6 a second)."
    print "With one client, each message wakes the other side, and whether the scheduler has put the"
    print "two on one CPU or on two changes the round trip several-fold, from run to run: the one-client"
    print "rows vary most."
    ranges_note()
    print ""
}

function cpu_table(section,    m, j, k, n, list, c, s) {
    k = sorted_ns(section, list)
    if (!any(section, "cpu_us_per_msg")) return
    print "## CPU time per message: the server's and the client's"
    print ""
    print "| model | clients | server CPU per message (µs) | client CPU per message (µs) | client ÷ server |"
    print "| --- | ---: | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (!has(models[m], section, n, "cpu_us_per_msg")) continue
            s = val(models[m], section, n, "cpu_us_per_msg"); c = val(models[m], section, n, "client_cpu_us_per_msg")
            printf "| %s | %s | %s | %s | %s |\n", models[m], commas(n),
                cell(models[m], section, n, "cpu_us_per_msg", "%.1f"), cell(models[m], section, n, "client_cpu_us_per_msg", "%.1f"),
                (c == "" || s + 0 == 0) ? "-" : sprintf("%.2f", c / s)
        }
    print ""
    print "From the same runs as the 64-byte echo table: the CPU time of all the server's threads and"
    print "processes from the start of the load to its end, over every message loadgen counted in that"
    print "time (warm-up and drain too), beside loadgen's own (getrusage, all its workers). On loopback"
    print "each end does the same kernel work, a recv() and a send() per message and the delivery of what"
    print "it sends into the other's socket, so a careful client spends about what step 4 spends."
    print "Client ÷ server is the ratio of the two medians."
    ranges_note()
    print ""
}

function csw_table(section,    m, j, k, n, list) {
    k = sorted_ns(section, list)
    if (!any(section, "csw_voluntary_per_msg")) return
    print "## Context switches per message"
    print ""
    print "| model | clients | voluntary | involuntary |"
    print "| --- | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (!has(models[m], section, n, "csw_voluntary_per_msg")) continue
            printf "| %s | %s | %s | %s |\n", models[m], commas(n),
                cell(models[m], section, n, "csw_voluntary_per_msg", "%.3f"),
                cell(models[m], section, n, "csw_involuntary_per_msg", "%.3f")
        }
    print ""
    print "From the same runs: voluntary_ctxt_switches (the thread blocked, in recv() or epoll_wait())"
    print "and nonvoluntary_ctxt_switches (the kernel took the CPU from a thread that could still run),"
    print "summed over every thread of the server and of each child (/proc/PID/task/TID/status), over"
    print "the messages."
    ranges_note()
    if (has("pipe", "switch", 1, "us_per_round_trip")) {
        print ""
        printf "The bare switch, for scale: `taskset -c 0 perf bench sched pipe` took %s µs per round trip,\n",
            fmt(val("pipe", "switch", 1, "us_per_round_trip"), "%.2f")
        print "two processes on one CPU passing a byte back and forth through pipes: two switches, and a"
        print "pipe write and read on each side."
    }
    print ""
}

function syscall_table(    m, j, k, n, list) {
    k = sorted_ns("syscalls", list)
    if (k == 0) return
    print "## System calls per message"
    print ""
    print "| model | clients | system calls per message |"
    print "| --- | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (has(models[m], "syscalls", n, "not_measured"))
                printf "| %s | %s | not measured: %s |\n", models[m], commas(n), val(models[m], "syscalls", n, "not_measured")
            else if (has(models[m], "syscalls", n, "syscalls_per_msg"))
                printf "| %s | %s | %s |\n", models[m], commas(n), fmt(val(models[m], "syscalls", n, "syscalls_per_msg"), "%.2f")
        }
    print ""
    print "Every system call the server's threads and processes entered (perf stat, event"
    print "raw_syscalls:sys_enter), counted from the start of the load to its end in a short run of its"
    print "own, so that no timed run has perf attached, over the messages of that run."
    print ""
}

function node_table(    j, k, n, list, a, b, c, d) {
    if (!("node" in seen) || !("step4" in seen)) return
    k = sorted_ns("echo64", list)
    print "## step4 against the Node.js echo server"
    print ""
    print "| clients | step4 msgs/s ÷ node msgs/s | step4 CPU per message ÷ node's |"
    print "| ---: | ---: | ---: |"
    for (j = 1; j <= k; j++) {
        n = list[j]
        a = val("step4", "echo64", n, "msgs_per_s"); b = val("node", "echo64", n, "msgs_per_s")
        c = val("step4", "echo64", n, "cpu_us_per_msg"); d = val("node", "echo64", n, "cpu_us_per_msg")
        if (a == "" || b == "" || b + 0 == 0) continue
        printf "| %s | %.2f | %s |\n", commas(n), a / b, (c == "" || d + 0 == 0) ? "-" : sprintf("%.2f", c / d)
    }
    print ""
    print "The medians of the 64-byte echo runs above, divided."
    print ""
}

function churn_table(    m, j, k, n, list) {
    k = sorted_ns("churn", list)
    if (k == 0) return
    print "## Connection churn"
    print ""
    print "| model | clients | connections a second | cycle p50 (µs) | cycle p99 (µs) | server CPU per connection (µs) | client CPU per connection (µs) |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (!has(models[m], "churn", n, "conns_per_s")) continue
            printf "| %s | %s | %s | %s | %s | %s | %s |\n", models[m], commas(n),
                commas(val(models[m], "churn", n, "conns_per_s")), commas(val(models[m], "churn", n, "p50_us")),
                commas(val(models[m], "churn", n, "p99_us")), fmt(val(models[m], "churn", n, "cpu_us_per_conn"), "%.1f"),
                fmt(val(models[m], "churn", n, "client_cpu_us_per_conn"), "%.1f")
        }
    print ""
    print "Each client in a loop: connect, echo one 64-byte message, shut down its side, wait for the"
    print "server to close, close, again (loadgen --churn). A cycle is timed from the connect to the"
    print "server's close; the server's CPU (processes and threads that have exited included, to the"
    print "tick) is over every cycle, read once all have closed and the server's tasks are back to what"
    print "they were with no client. A single run."
    print ""
}

function load_table(    m, j, k, n, list, lc, peak) {
    k = sorted_ns("load", list)
    if (k == 0) return
    print "## Latency under load (open loop)"
    print ""
    print "| model | clients | offered, % of its peak | offered msgs/s | p50 (µs) | p99 (µs) | p99.9 (µs) | sent late | CPU stolen | closed loop at its peak: msgs/s, p99 (µs) |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (!has(models[m], "load", n, "p99_us")) continue
            lc = val(models[m], "load", n, "clients")
            peak = has(models[m], "loadpeak", lc, "p99_us") ? commas(val(models[m], "loadpeak", lc, "msgs_per_s")) ", " \
                commas(val(models[m], "loadpeak", lc, "p99_us")) : "-"
            printf "| %s | %s | %s%% | %s | %s | %s | %s | %s | %s | %s |\n", models[m], commas(lc), n,
                commas(val(models[m], "load", n, "rate")),
                commas(val(models[m], "load", n, "p50_us")), commas(val(models[m], "load", n, "p99_us")),
                commas(val(models[m], "load", n, "p999_us")), fmt(val(models[m], "load", n, "late_pct"), "%.1f%%"),
                fmt(val(models[m], "load", n, "stolen_pct"), "%.1f%%"), peak
        }
    print ""
    print "loadgen --rate: messages go out on a fixed schedule, spread over the clients, whether or not"
    print "earlier echoes are back, and each is timed from when it should have been sent, so a server"
    print "that falls behind shows it in every message queued behind the delay. Offered: a share of the"
    print "msgs/s the model reached in a closed-loop run just before, with as many clients (step 1, one"
    if (bench["open loop: client CPUs"] != "" && bench["open loop: client CPUs"] != "any") {
        printf "client), on a fresh server. The server ran on CPU %s and loadgen on CPU %s (taskset), so\n",
            bench["open loop: server CPUs"], bench["open loop: client CPUs"]
        print "that the client was never short of a CPU. Sent late: messages the client itself sent over"
    } else {
        print "client), on a fresh server; server and client shared the CPUs. Sent late: messages the"
        print "client itself sent over"
    }
    print "1 ms after their time (then the latencies include its delay). CPU stolen: the share of the"
    print "machine's CPU time that the hypervisor gave to others while this machine wanted it (steal,"
    print "in /proc/stat). A single run each."
    print ""
}

function stall_table(    n, k, list) {
    k = sorted_ns("stall", list)
    if (k == 0) return
    n = list[1]
    print "## A closed loop hides a stall"
    print ""
    print "| server | clients | stall | closed loop: msgs/s | closed loop p99 (µs) | open loop: offered msgs/s | open loop p99 (µs) | open loop p99.9 (µs) |"
    print "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", "slow-echo", commas(n), val("stall", "stall", n, "stall"),
        commas(val("stall", "stall", n, "closed_msgs_per_s")), commas(val("stall", "stall", n, "closed_p99_us")),
        commas(val("stall", "stall", n, "open_rate")), commas(val("stall", "stall", n, "open_p99_us")),
        commas(val("stall", "stall", n, "open_p999_us"))
    print ""
    print "tests/fixtures/slow-echo, a test server that holds back every echo for a fixed time once a"
    print "second."
    print "In the closed loop each client waits out the stall with one message, so the stall is one"
    print "slow sample per client among thousands; in the open loop every message due during the stall"
    print "waits too, and the p99 shows it. The open loop offers half the closed loop's msgs/s."
    print ""
}

function poll_table(    m, j, k, n, list) {
    k = sorted_ns("pollidle", list)
    if (k == 0) return
    print "## poll against epoll, beside idle connections"
    print ""
    print "| server | idle connections | msgs/s | server CPU per message (µs) | p50 (µs) | p99 (µs) |"
    print "| --- | ---: | ---: | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (!has(models[m], "pollidle", n, "msgs_per_s")) continue
            printf "| %s | %s | %s | %s | %s | %s |\n", models[m] == "poll" ? "poll-echo" : models[m], commas(n),
                cell(models[m], "pollidle", n, "msgs_per_s", "int"), cell(models[m], "pollidle", n, "cpu_us_per_msg", "%.1f"),
                cell(models[m], "pollidle", n, "p50_us", "int"), cell(models[m], "pollidle", n, "p99_us", "int")
        }
    print ""
    print "One client echoing 64-byte messages while N more connections sit idle (loadgen -c 1 --idle N),"
    print "against step 4 and bench/poll-echo, the same loop with poll(2): poll() is handed every"
    print "connection on every call, epoll_wait() only the ready ones."
    ranges_note()
    print ""
}

# Step 5 with 1, 2, ... loops: what each more loop buys, and how the
# kernel spread the connections over them.
function scaling_table(    i, j, k, n, list, c, head, line, t, sp) {
    if (nscale == 0) return
    for (i = 2; i <= nscale; i++)
        for (j = i; j > 1 && scale_clients[j - 1] > scale_clients[j]; j--) {
            t = scale_clients[j]; scale_clients[j] = scale_clients[j - 1]; scale_clients[j - 1] = t
        }
    print "## Step 5: one event loop per CPU"
    print ""
    head = "| loops"; line = "| ---:"
    for (i = 1; i <= nscale; i++) {
        c = commas(scale_clients[i])
        head = head " | " c " clients: msgs/s | server CPU per message (µs) | client CPU per message (µs)"
        line = line " | ---: | ---: | ---:"
    }
    print head " |"
    print line " |"
    k = sorted_ns("scale" scale_clients[1], list)
    for (j = 1; j <= k; j++) {
        n = list[j]
        printf "| %s", n
        for (i = 1; i <= nscale; i++) {
            sp = "scale" scale_clients[i]
            printf " | %s | %s | %s", cell("step5", sp, n, "msgs_per_s", "int"), cell("step5", sp, n, "cpu_us_per_msg", "%.2f"),
                cell("step5", sp, n, "client_cpu_us_per_msg", "%.2f")
        }
        print " |"
    }
    print ""
    print "A fresh step 5 server for each row, started with -w LOOPS, echoing 64-byte messages in a"
    print "closed loop. loadgen runs on the same CPUs as the server: it spends about as much CPU per"
    print "message as the server does, so on a machine of " mval["cores"] " CPUs the two together use them all long"
    print "before the server alone could, and what a second loop can show is capped by the client's"
    print "share. Showing more takes CPUs kept for the client, or a second machine."
    ranges_note()
    k = sorted_ns("spread", list)
    for (j = 1; j <= k; j++) {
        n = list[j]
        if (!has("step5", "spread", n, "loops")) continue
        printf "\nWith %s loops, the kernel gave %s connections to the loops: %s to the one that got the\n", \
            val("step5", "spread", n, "loops"), commas(n), commas(val("step5", "spread", n, "conns_lowest"))
        printf "fewest, %s to the one that got the most (from the server's closing line for each loop). It\n", \
            commas(val("step5", "spread", n, "conns_highest"))
        print "picks a loop by a hash of each connection's addresses and ports, not by how busy the loops are."
    }
    print ""
}

# Step 5, two loops: the same open-loop load alone and beside one client
# that keeps its loop busy.
function busy_table(    n, label) {
    if (!any("busy", "p50_us")) return
    print "## Step 5: one busy loop"
    print ""
    print "| streaming clients beside | offered msgs/s | p50 (µs) | p90 (µs) | p99 (µs) | max (µs) | sent late |"
    print "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (n = 0; n <= 1; n++) {
        if (!has("step5", "busy", n, "p50_us")) continue
        printf "| %d | %s | %s | %s | %s | %s | %s |\n", n, commas(val("step5", "busy", n, "rate")),
            commas(val("step5", "busy", n, "p50_us")), commas(val("step5", "busy", n, "p90_us")),
            commas(val("step5", "busy", n, "p99_us")), commas(val("step5", "busy", n, "max_us")),
            fmt(val("step5", "busy", n, "late_pct"), "%.1f") "%"
    }
    print ""
    label = commas(val("step5", "busy", 0, "clients"))
    print "Step 5 with two loops, on the open loop's server CPUs; " label " clients at a tenth of its"
    print "closed-loop peak (loadgen --rate), first alone, then while one more client streams as fast as"
    print "it can, on the server's CPUs, which keeps the loop the kernel gave it busy. About half the"
    print label " clients share that loop: the upper percentiles are theirs. A single run each."
    print ""
}

function skipped_list() {
    if (bench["not measured"] == "") return
    print "## Not measured"
    print ""
    print "- " bench["not measured"]
    print ""
    print "A model that would not start on this machine, with the line it printed."
    print ""
}

function failures_list(    i, part) {
    if (nfailed == 0) return
    print "## Failures"
    print ""
    for (i = 1; i <= nfailed; i++) {
        split(failed[i], part, SUBSEP)
        printf "- %s, %s, %s: %s\n", part[1], part[2], part[3], v[part[1], part[2], part[3], "failures"]
    }
    print ""
    print "What loadgen counted as failed, by step and error, where a run had any."
    print ""
}

function problems(    i) {
    if (nproblems == 0) return
    print "## Problems"
    print ""
    for (i = 1; i <= nproblems; i++) printf "- %s\n", problem[i]
    print ""
}

END {
    order_models()
    print "# Benchmark results"
    print ""
    banner()
    machine_table()
    memory_table()
    idle_cpu_table()
    most_table()
    echo_table("echo64", "Echo: 64-byte messages, one in flight per client")
    cpu_table("echo64")
    csw_table("echo64")
    syscall_table()
    echo_table("echo16384", "Echo: 16 KiB messages, one in flight per client")
    node_table()
    churn_table()
    load_table()
    stall_table()
    poll_table()
    scaling_table()
    busy_table()
    skipped_list()
    failures_list()
    problems()
}
