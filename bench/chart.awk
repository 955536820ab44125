# chart.awk: an SVG chart of a bench run, six panels, one colour per model:
#   1. user memory (PSS) per idle connection, against connections;
#   2. kernel memory beside user memory, per connection, at the most idle
#      connections each model was measured with;
#   3. connections each model held, and what stopped it;
#   4. echo throughput against clients;
#   5. p99 latency against offered load (open loop);
#   6. poll against epoll: server CPU per message against idle connections.
# awk -f models.awk -f chart.awk results.tsv > results.svg   (results.tsv as bench/run writes it)

BEGIN {
    FS = "\t"
    PW = 300; PH = 210; W = 1250; H = 720
    # Each model keeps its colour from chart to chart; others take the rest.
    k = split("step1 #8c564b step2 #ff7f0e step3 #d62728 step4 #1f77b4 step5 #17becf step6 #bcbd22 " \
        "node #2ca02c poll #9467bd", known, " ")
    for (i = 1; i < k; i += 2) fixed[known[i]] = known[i + 1]
    split("#e377c2 #7f7f7f", palette, " ")
    # Panel p's top left corner: three to a row.
    for (p = 1; p <= 6; p++) { LEFT[p] = 100 + ((p - 1) % 3) * 400; TOP[p] = 60 + int((p - 1) / 3) * 320 }
}

{
    model = $1; section = $2; n = $3 + 0; key = $4; value = $5
    # The stall server and perf's pipe benchmark are no models: no colour,
    # no place in the legend.
    if (model != "stall" && model != "pipe" && !(model in colour)) {
        models[++nmodels] = model
        colour[model] = (model in fixed) ? fixed[model] : palette[++nother]
    }
    v[model, section, $3, key] = value
    if (section == "idle" && key == "pss") add(1, model, n, value)
    if (section == "idle" && key == "verified" && n > most_idle[model]) most_idle[model] = n
    if (section == "most" && key == "held") { held[model] = value + 0; most_n = $3 }
    if (section == "echo64" && key == "msgs_per_s") add(4, model, n, value)
    if (section == "load" && key == "p99_us") load_p99[model, $3] = value
    if (section == "load" && key == "rate") load_rate[model, $3] = value
    if (section == "pollidle" && key == "cpu_us_per_msg") add(6, model, n, value)
}

function add(p, model, x, y,    k) {
    k = ++npts[p, model]
    px[p, model, k] = x + 0; py[p, model, k] = y + 0
    if (!(p in xmin) || x + 0 < xmin[p]) xmin[p] = x + 0
    if (!(p in xmax) || x + 0 > xmax[p]) xmax[p] = x + 0
    if (!(p in ymax) || y + 0 > ymax[p]) ymax[p] = y + 0
    # The smallest value above zero: the bottom of a log scale.
    if (y + 0 > 0 && (!(p in ymin) || y + 0 < ymin[p])) ymin[p] = y + 0
}

# The 1e-9 keeps log10(1000) from coming out as 2.9999...
function log10(x) { return log(x < 1 ? 1 : x) / log(10) + 1e-9 }

function text(x, y, s, anchor, extra) {
    printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>%s</text>\n", x, y, anchor, extra, s
}

function hline(p, y) {
    printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT[p], y, LEFT[p] + PW, y
}

function vline(p, x) {
    printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, TOP[p], x, TOP[p] + PH
}

function frame(p, title, xlabel, ylabel) {
    printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", LEFT[p], TOP[p], PW, PH
    text(LEFT[p] + PW / 2, TOP[p] - 12, title, "middle", " font-weight=\"bold\"")
    text(LEFT[p] + PW / 2, TOP[p] + PH + 38, xlabel, "middle", "")
    printf "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", LEFT[p] - 70, TOP[p] + PH / 2, ylabel
}

# 1234567 -> 1,234,567, for tick labels.
function commas(x,    s) {
    s = sprintf("%d", x)
    while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
    return s
}

# Scales. A log axis runs over whole powers of ten; on a log y axis that
# has a floor (FLOOR[p]), values at or below zero, the noise of a
# difference, sit on its bottom line, labelled ≈0.
function xpos(p, x) {
    if (XLOG[p]) return LEFT[p] + (XHI[p] > XLO[p] ? (log10(x) - XLO[p]) / (XHI[p] - XLO[p]) : 0.5) * PW
    return LEFT[p] + (XHI[p] > XLO[p] ? (x - XLO[p]) / (XHI[p] - XLO[p]) : 0.5) * PW
}

function ypos(p, y) {
    if (YLOG[p]) {
        if (y <= 10 ^ YLO[p]) y = 10 ^ YLO[p]
        return TOP[p] + PH - (log10(y) - YLO[p]) / (YHI[p] - YLO[p]) * PH
    }
    return TOP[p] + PH - (YHI[p] > YLO[p] ? (y - YLO[p]) / (YHI[p] - YLO[p]) : 0) * PH
}

# A round step for a linear axis from 0 to hi: 1, 2 or 5 times a power of
# ten, the smallest that needs no more than five steps, so labels fit.
function step_for(hi,    s) {
    s = 10 ^ int(log10(hi / 5))
    while (hi / s > 5) s = (s ~ /^1/ ? s * 2 : s ~ /^2/ ? s * 2.5 : s * 2)
    return s
}

function log_x(p, lo, hi,    e) {
    XLOG[p] = 1; XLO[p] = int(log10(lo)); XHI[p] = int(log10(hi)) + (hi > 10 ^ int(log10(hi)) ? 1 : 0)
    if (XHI[p] == XLO[p]) XHI[p]++
    for (e = XLO[p]; e <= XHI[p]; e++) { vline(p, xpos(p, 10 ^ e)); text(xpos(p, 10 ^ e), TOP[p] + PH + 16, commas(10 ^ e), "middle", "") }
}

function lin_x(p, hi,    s, x) {
    XLOG[p] = 0; XLO[p] = 0; s = step_for(hi); XHI[p] = (int(hi / s) + 1) * s
    for (x = 0; x <= XHI[p] + s / 2; x += s) { vline(p, xpos(p, x)); text(xpos(p, x), TOP[p] + PH + 16, commas(x), "middle", "") }
}

function log_y(p, lo, hi, floor,    e) {
    YLOG[p] = 1; YLO[p] = int(log10(lo)) - (floor ? 1 : 0); YHI[p] = int(log10(hi)) + 1
    if (YLO[p] < 0) YLO[p] = 0
    for (e = YLO[p]; e <= YHI[p]; e++) {
        hline(p, ypos(p, 10 ^ e))
        text(LEFT[p] - 6, ypos(p, 10 ^ e) + 4, (floor && e == YLO[p]) ? "≈0" : commas(10 ^ e), "end", "")
    }
}

function lin_y(p, hi,    s, y) {
    YLOG[p] = 0; YLO[p] = 0; s = step_for(hi > 0 ? hi : 1); YHI[p] = (int(hi / s) + 1) * s
    for (y = 0; y <= YHI[p] + s / 2; y += s) { hline(p, ypos(p, y)); text(LEFT[p] - 6, ypos(p, y) + 4, commas(y), "end", "") }
}

# One line per model, points in the order they came.
function lines(p,    m, k, pts, mod) {
    for (m = 1; m <= nmodels; m++) {
        mod = models[m]
        if (npts[p, mod] == 0) continue
        pts = ""
        for (k = 1; k <= npts[p, mod]; k++)
            pts = pts sprintf("%.1f,%.1f ", xpos(p, px[p, mod, k]), ypos(p, py[p, mod, k]))
        printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", colour[mod], pts
        for (k = 1; k <= npts[p, mod]; k++)
            printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", xpos(p, px[p, mod, k]), ypos(p, py[p, mod, k]), colour[mod]
    }
}

function bar(x, y0, y1, width, fill, opacity) {
    printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"%s\"/>\n", x, y1, width, y0 - y1, fill, opacity
}

function memory_panel() {
    if (!(1 in xmax)) return
    frame(1, "User memory per idle connection", "idle connections", "bytes (PSS), log scale")
    log_x(1, xmin[1], xmax[1]); log_y(1, (1 in ymin) ? ymin[1] : 1, ymax[1], 1)
    lines(1)
}

# The kernel's share: its stacks and page tables for the server's tasks,
# and the slab and socket buffers (system-wide: both ends of each
# loopback connection). A part below zero is noise and adds nothing.
function kernel_bytes(model, n,    i, k, sum, part) {
    split("kernel_stacks page_tables kernel_slab socket_buffers", part, " ")
    for (i = 1; i <= 4; i++) { k = v[model, "idle", n, part[i]] + 0; if (k > 0) sum += k }
    return sum
}

function kernel_panel(    m, mod, n, u, k, lo, hi, groups, g, x, gw) {
    for (m = 1; m <= nmodels; m++) {
        mod = models[m]; n = most_idle[mod]
        if (!n) continue
        u = v[mod, "idle", n, "pss"] + 0; k = kernel_bytes(mod, n)
        if (u > 0 && (lo == "" || u < lo)) lo = u
        if (k > 0 && (lo == "" || k < lo)) lo = k
        if (u > hi) hi = u
        if (k > hi) hi = k
        groups++
    }
    if (!groups) return
    frame(2, "Kernel beside user memory, per connection", "at the most idle connections measured", "bytes, log scale")
    log_y(2, lo == "" ? 1 : lo, hi, 1)
    gw = PW / groups; g = 0
    for (m = 1; m <= nmodels; m++) {
        mod = models[m]; n = most_idle[mod]
        if (!n) continue
        x = LEFT[2] + g * gw
        bar(x + gw * 0.15, TOP[2] + PH, ypos(2, v[mod, "idle", n, "pss"] + 0), gw * 0.33, colour[mod], 1)
        bar(x + gw * 0.52, TOP[2] + PH, ypos(2, kernel_bytes(mod, n)), gw * 0.33, colour[mod], 0.4)
        text(x + gw / 2, TOP[2] + PH + 16, mod " " commas(n), "middle", " font-size=\"10\"")
        g++
    }
    text(LEFT[2] + PW - 6, TOP[2] + 16, "solid: user (PSS); pale: kernel", "end", " font-size=\"10\"")
}

# What stopped a model, in a few words, from what the server and the
# client said (report.awk's "what stopped it", shortened).
function stopped_by(model,    se, ce, tried) {
    se = v[model, "most", most_n, "server_error"]; ce = v[model, "most", most_n, "client_error"]
    tried = v[model, "most", most_n, "tried"] + 0
    if (se ~ /Too many open files/) return "open files"
    if (se ~ /fork|pthread_create/) return "process ids or threads"
    if (se ~ /Cannot allocate memory/ || ce ~ /Cannot allocate memory/) return "memory"
    if (ce ~ /Cannot assign requested address/) return "source ports"
    if (held[model] >= tried) return "the bench's cap"
    if (ce ~ /Connection timed out/) return "connects timed out"
    if (ce ~ /Connection reset by peer/) return "connections reset"
    if (ce ~ /closed by the server/) return "the server closed the rest"
    return ce != "" ? ce : "see the report"
}

function held_panel(    m, mod, hi, rows, r, y, rh, tried) {
    for (m = 1; m <= nmodels; m++) {
        mod = models[m]
        if (!(mod in held)) continue
        tried = v[mod, "most", most_n, "tried"] + 0
        if (tried > hi) hi = tried
        if (held[mod] > hi) hi = held[mod]
        rows++
    }
    if (!rows) return
    frame(3, "Connections held, and what stopped each", "connections (outline: tried)", "")
    lin_x(3, hi)
    rh = PH / rows; r = 0
    for (m = 1; m <= nmodels; m++) {
        mod = models[m]
        if (!(mod in held)) continue
        y = TOP[3] + r * rh
        tried = v[mod, "most", most_n, "tried"] + 0
        # The label above the bar, the bars below it: outline tried, filled held.
        text(LEFT[3] + 2, y + rh * 0.3, commas(held[mod]) " of " commas(tried) ": " stopped_by(mod), "start", " font-size=\"10\"")
        printf "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"%s\"/>\n", LEFT[3], y + rh * 0.38, xpos(3, tried) - LEFT[3], rh * 0.5, colour[mod]
        printf "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", LEFT[3], y + rh * 0.38, xpos(3, held[mod]) - LEFT[3], rh * 0.5, colour[mod]
        text(LEFT[3] - 6, y + rh * 0.63 + 4, mod, "end", "")
        r++
    }
}

function throughput_panel() {
    if (!(4 in xmax)) return
    frame(4, "Echo throughput, 64-byte messages", "concurrent clients", "messages per second")
    log_x(4, xmin[4], xmax[4]); lin_y(4, ymax[4])
    lines(4)
}

# Offered rates in increasing order of percent, per model.
function load_panel(    m, mod, k, pct, npct, pcts, i, j, t, lo, hi, xhi) {
    for (k in load_p99) {
        split(k, part, SUBSEP)
        if (!((part[2]) in pct_seen)) { pct_seen[part[2]] = 1; pcts[++npct] = part[2] + 0 }
    }
    if (!npct) return
    for (i = 2; i <= npct; i++)
        for (j = i; j > 1 && pcts[j - 1] > pcts[j]; j--) { t = pcts[j]; pcts[j] = pcts[j - 1]; pcts[j - 1] = t }
    for (m = 1; m <= nmodels; m++)
        for (i = 1; i <= npct; i++) {
            mod = models[m]
            if (!((mod, pcts[i]) in load_p99)) continue
            add(5, mod, load_rate[mod, pcts[i]], load_p99[mod, pcts[i]])
        }
    frame(5, "p99 latency under offered load", "offered messages per second (open loop)", "p99 (µs), log scale")
    lin_x(5, xmax[5]); log_y(5, (5 in ymin) ? ymin[5] : 1, ymax[5], 0)
    lines(5)
}

# Idle connections 0, 1,000, 10,000: evenly spaced, as categories.
function poll_panel(    m, mod, k, i, cats, ncat, j, t) {
    if (!(6 in xmax)) return
    for (m = 1; m <= nmodels; m++)
        for (k = 1; k <= npts[6, models[m]]; k++)
            if (!((px[6, models[m], k]) in cat)) { cat[px[6, models[m], k]] = 1; cats[++ncat] = px[6, models[m], k] }
    for (i = 2; i <= ncat; i++)
        for (j = i; j > 1 && cats[j - 1] > cats[j]; j--) { t = cats[j]; cats[j] = cats[j - 1]; cats[j - 1] = t }
    frame(6, "poll against epoll, beside idle connections", "idle connections (one client echoing)", "server CPU per message (µs)")
    lin_y(6, ymax[6])
    XLOG[6] = 0; XLO[6] = 0.5; XHI[6] = ncat + 0.5
    for (i = 1; i <= ncat; i++) { rank[cats[i]] = i; vline(6, xpos(6, i)); text(xpos(6, i), TOP[6] + PH + 16, commas(cats[i]), "middle", "") }
    for (m = 1; m <= nmodels; m++)
        for (k = 1; k <= npts[6, models[m]]; k++) px[6, models[m], k] = rank[px[6, models[m], k]]
    lines(6)
}

function legend(    m, x) {
    x = LEFT[1]
    for (m = 1; m <= nmodels; m++) {
        printf "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/>\n", x, H - 22, colour[models[m]]
        text(x + 20, H - 16, models[m] == "poll" ? "poll-echo" : models[m], "start", "")
        x += 110
    }
}

END {
    order_models()
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H
    print "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    memory_panel()
    kernel_panel()
    held_panel()
    throughput_panel()
    load_panel()
    poll_panel()
    legend()
    print "</svg>"
}
