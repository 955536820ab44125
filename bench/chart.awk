# chart.awk: an SVG chart of a bench run, one line per model:
#   left, user memory (PSS) per idle connection against connections;
#   right, messages per second against clients.
# awk -f chart.awk results.tsv > results.svg   (results.tsv as bench/run writes it)

BEGIN {
    FS = "\t"
    W = 1000; H = 400; PW = 370; PH = 270; TOP = 50
    LEFT[1] = 90; LEFT[2] = 590
    split("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b", colour, " ")
}

{
    model = $1
    if (!(model in seen)) { seen[model] = 1; models[++nmodels] = model }
    # Below zero is noise, and has no place on a log scale.
    if ($2 == "idle" && $4 == "pss" && $5 > 0) add(1, model, $3, $5)
    if ($2 == "echo64" && $4 == "msgs_per_s") add(2, model, $3, $5)
}

function add(p, model, x, y) {
    k = ++npts[p, model]
    px[p, model, k] = x + 0; py[p, model, k] = y + 0
    if (!((p) in xmin) || x + 0 < xmin[p]) xmin[p] = x + 0
    if (!((p) in xmax) || x + 0 > xmax[p]) xmax[p] = x + 0
    if (!((p) in ymax) || y + 0 > ymax[p]) ymax[p] = y + 0
    if (!((p) in ymin) || y + 0 < ymin[p]) ymin[p] = y + 0
}

# The 1e-9 keeps log10(1000) from coming out as 2.9999...
function log10(x) { return log(x < 1 ? 1 : x) / log(10) + 1e-9 }

function sx(p, x,    lo, hi) {
    lo = log10(xmin[p]); hi = log10(xmax[p])
    return LEFT[p] + (hi > lo ? (log10(x) - lo) / (hi - lo) : 0.5) * PW
}

# Memory spans orders of magnitude (bytes to tens of KiB): log scale.
# Throughput is linear from zero.
function sy(p, y,    lo, hi) {
    if (p == 1) {
        lo = int(log10(ymin[p])); hi = int(log10(ymax[p])) + 1
        return TOP + PH - (log10(y) - lo) / (hi - lo) * PH
    }
    return TOP + PH - (ymax[p] > 0 ? y / (ymax[p] * 1.1) : 0) * PH
}

function text(x, y, s, anchor, extra) {
    printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>%s</text>\n", x, y, anchor, extra, s
}

function axes(p, title, xlabel, ylabel,    x, y, v, lo, hi, e, step) {
    printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", LEFT[p], TOP, PW, PH
    text(LEFT[p] + PW / 2, TOP - 15, title, "middle", " font-weight=\"bold\"")
    text(LEFT[p] + PW / 2, TOP + PH + 40, xlabel, "middle", "")
    printf "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", LEFT[p] - 65, TOP + PH / 2, ylabel
    for (e = int(log10(xmin[p])); e <= int(log10(xmax[p])); e++) {
        v = 10 ^ e; x = sx(p, v)
        printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, TOP, x, TOP + PH
        text(x, TOP + PH + 18, v, "middle", "")
    }
    if (p == 1) {
        lo = int(log10(ymin[p])); hi = int(log10(ymax[p])) + 1
        for (e = lo; e <= hi; e++) {
            y = sy(p, 10 ^ e)
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT[p], y, LEFT[p] + PW, y
            text(LEFT[p] - 6, y + 4, 10 ^ e, "end", "")
        }
        return
    }
    step = 10 ^ int(log10(ymax[p] * 1.1 / 2)) 
    for (v = 0; v <= ymax[p] * 1.1; v += step) {
        y = sy(p, v)
        printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT[p], y, LEFT[p] + PW, y
        text(LEFT[p] - 6, y + 4, v, "end", "")
    }
}

function series(p,    m, k, pts) {
    for (m = 1; m <= nmodels; m++) {
        if (npts[p, models[m]] == 0) continue
        pts = ""
        for (k = 1; k <= npts[p, models[m]]; k++)
            pts = pts sprintf("%.1f,%.1f ", sx(p, px[p, models[m], k]), sy(p, py[p, models[m], k]))
        printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", colour[m], pts
        for (k = 1; k <= npts[p, models[m]]; k++)
            printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", sx(p, px[p, models[m], k]), sy(p, py[p, models[m], k]), colour[m]
    }
}

function legend(    m, x) {
    x = LEFT[1]
    for (m = 1; m <= nmodels; m++) {
        printf "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/>\n", x, H - 22, colour[m]
        text(x + 20, H - 16, models[m], "start", "")
        x += 110
    }
}

END {
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H
    print "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    if ((1) in xmax) { axes(1, "User memory per idle connection", "idle connections", "bytes (PSS), log scale"); series(1) }
    if ((2) in xmax) { axes(2, "Echo throughput, 64-byte messages", "concurrent clients", "messages per second"); series(2) }
    legend()
    print "</svg>"
}
