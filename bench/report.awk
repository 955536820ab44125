# report.awk: the Markdown tables of a bench run.
# awk -f report.awk machine.tsv results.tsv
# machine.tsv: "machine KEY VALUE"; results.tsv: "MODEL SECTION N KEY VALUE",
# both tab-separated, as bench/run writes them.

BEGIN { FS = "\t" }

$1 == "machine" { mkeys[++nm] = $2; mval[$2] = $3; next }

{
    model = $1; section = $2; n = $3; key = $4
    if (!(model in seen)) { seen[model] = 1; models[++nmodels] = model }
    if (!((section, n) in seen_n)) { seen_n[section, n] = 1; ns[section, ++count[section]] = n }
    v[model, section, n, key] = $5
}

# 1234567 -> 1,234,567. A difference below zero is the noise of the
# measurement (other processes, the kernel's caches): shown as ≈0.
function commas(x,    s, neg) {
    if (x == "") return "-"
    if (x < 0) return "≈0"
    neg = x < 0; s = sprintf("%d", neg ? -x : x)
    while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
    return (neg ? "-" : "") s
}

function val(model, section, n, key) {
    return ((model, section, n, key) in v) ? v[model, section, n, key] : ""
}

function num(x, fmt) { return x == "" ? "-" : sprintf(fmt, x) }

function sorted_ns(section, out,    i, j, t, k) {
    k = count[section]
    for (i = 1; i <= k; i++) out[i] = ns[section, i] + 0
    for (i = 2; i <= k; i++)
        for (j = i; j > 1 && out[j - 1] > out[j]; j--) { t = out[j]; out[j] = out[j - 1]; out[j - 1] = t }
    return k
}

function machine_table(    i) {
    print "| machine | |"
    print "| --- | --- |"
    for (i = 1; i <= nm; i++) printf "| %s | %s |\n", mkeys[i], mval[mkeys[i]]
    print ""
}

function memory_table(    i, j, k, m, n, list) {
    k = sorted_ns("idle", list)
    if (k == 0) return
    print "## Memory per idle connection"
    print ""
    print "Bytes per connection: what the server (all its processes) and the kernel use with N idle"
    print "connections open, less what they used with none, divided by N. User RSS is what `ps` shows:"
    print "the pages of the processes that are in memory, shared ones counted in full in each (resident"
    print "thread stacks are part of it). User PSS counts the anonymous pages (heap, stacks) and splits"
    print "shared ones between the processes sharing them. Kernel stacks and page tables are the"
    print "server's own; kernel slab and socket buffers are system-wide, so they also count the"
    print "client's end of each loopback connection. ≈0: less than none, the noise of the measurement."
    print ""
    print "| model | connections | user RSS | user PSS | thread stacks reserved | thread stacks resident | kernel stacks | page tables | kernel slab | socket buffers |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (val(models[m], "idle", n, "verified") == "" && val(models[m], "idle", n, "failed") == "") continue
            if (val(models[m], "idle", n, "failed") != "") {
                printf "| %s | %s | held only %s | | | | | | | |\n", models[m], commas(n), commas(val(models[m], "idle", n, "failed"))
                continue
            }
            printf "| %s | %s", models[m], commas(n)
            split("rss pss stack_reserved stack_resident kernel_stacks page_tables kernel_slab socket_buffers", keys, " ")
            for (i = 1; i <= 8; i++) printf " | %s", commas(val(models[m], "idle", n, keys[i]))
            print " |"
        }
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
    if (held >= tried) return "none: the bench stopped there"
    return "see the errors"
}

function most_table(    m, n, k, list) {
    k = sorted_ns("most", list)
    if (k == 0) return
    n = list[1]
    print "## Connections held"
    print ""
    printf "Up to %s connections opened at once, spread over client processes and source addresses;\n", commas(n)
    print "fewer for the models that need a process id per connection, so the machine keeps 2,000 ids"
    print "(kernel.pid_max) for everything else. Held: client connections open in the server's processes"
    print "once the count stopped rising. Echoed: those that still echoed a message at the end; it"
    print "can be more than held, as the check closes connections and the server then accepts some"
    print "of those still waiting in its queue."
    print ""
    print "| model | tried | held | echoed | what stopped it | the server said | the client saw |"
    print "| --- | ---: | ---: | ---: | --- | --- | --- |"
    for (m = 1; m <= nmodels; m++) {
        if (val(models[m], "most", n, "held") == "") continue
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", models[m], commas(val(models[m], "most", n, "tried")),
            commas(val(models[m], "most", n, "held")), commas(val(models[m], "most", n, "verified")),
            limit(models[m], n),
            val(models[m], "most", n, "server_error") == "" ? "nothing" : val(models[m], "most", n, "server_error"),
            val(models[m], "most", n, "client_error") == "" ? "no error" : val(models[m], "most", n, "client_error")
    }
    print ""
}

function echo_table(section, title,    m, j, k, n, list) {
    k = sorted_ns(section, list)
    if (k == 0) return
    print "## " title
    print ""
    print "Each client sends a message, waits for its echo, and sends the next, for the whole run;"
    print "of several runs, the one with the median msgs/s is shown."
    print "Latency is that round trip as the client sees it. MB/s counts the echoed bytes (10^6 a"
    print "second). Server CPU per message is the CPU time the server's processes used while the"
    print "clients echoed, divided by the messages; on loopback it includes the kernel's work of"
    print "delivering what the server sends to the client's socket."
    print ""
    print "| model | clients | msgs/s | msgs/s, lowest–highest run | MB/s | latency p50 (µs) | latency p99 (µs) | server CPU per message (µs) |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (m = 1; m <= nmodels; m++)
        for (j = 1; j <= k; j++) {
            n = list[j]
            if (val(models[m], section, n, "msgs_per_s") == "") continue
            printf "| %s | %s | %s | %s–%s | %s | %s | %s | %s |\n", models[m], commas(n),
                commas(val(models[m], section, n, "msgs_per_s")),
                commas(val(models[m], section, n, "msgs_per_s_low")), commas(val(models[m], section, n, "msgs_per_s_high")),
                num(val(models[m], section, n, "mb_per_s"), "%.1f"),
                commas(val(models[m], section, n, "p50_us")), commas(val(models[m], section, n, "p99_us")),
                num(val(models[m], section, n, "cpu_us_per_msg"), "%.1f")
        }
    print ""
}

function node_table(    j, n, a, b, c, d) {
    if (!("node" in seen) || !("step4" in seen)) return
    print "## step4 against the Node.js echo server"
    print ""
    print "| clients | step4 msgs/s ÷ node msgs/s | step4 CPU per message ÷ node's |"
    print "| ---: | ---: | ---: |"
    for (j = 1; j <= count["echo64"]; j++) {
        n = ns["echo64", j]
        a = val("step4", "echo64", n, "msgs_per_s"); b = val("node", "echo64", n, "msgs_per_s")
        c = val("step4", "echo64", n, "cpu_us_per_msg"); d = val("node", "echo64", n, "cpu_us_per_msg")
        if (a == "" || b == "" || b + 0 == 0) continue
        printf "| %s | %.2f | %s |\n", commas(n), a / b, (c == "" || d + 0 == 0) ? "-" : sprintf("%.2f", c / d)
    }
    print ""
}

function problems(    m, section, n, key, k, first) {
    first = 1
    for (k in v) {
        split(k, part, SUBSEP)
        if (part[4] != "problem") continue
        if (first) { print "## Problems"; print ""; first = 0 }
        printf "- %s, %s, %s: %s\n", part[1], part[2], part[3], v[k]
    }
    if (!first) print ""
}

END {
    print "# Benchmark results"
    print ""
    print "Made by `make bench` (tools/loadgen against each server in turn, on loopback)."
    print ""
    machine_table()
    memory_table()
    most_table()
    echo_table("echo64", "Echo: 64-byte messages, one in flight per client")
    echo_table("echo16384", "Echo: 16 KiB messages, one in flight per client")
    node_table()
    problems()
}
