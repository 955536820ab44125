# tests/bench-numbers.awk: checks the numbers TUTORIAL.md quotes from the
# committed bench run.
#
#   awk -f tests/bench-numbers.awk bench-results.tsv TUTORIAL.md
#
# A quoted number is followed at once by a marker naming where it comes
# from, which a reader of the rendered page does not see:
#
#   each message cost 29<!-- bench step2/echo64/1000/cpu_us_per_msg --> µs
#   36<!-- bench step2/idle/10000/pss / 1024 --> KiB of PSS
#   2.04<!-- bench step4/echo64/100/msgs_per_s / node/echo64/100/msgs_per_s -->
#   about 31,000<!-- bench step1/echo64/1/msgs_per_s to 1000 --> messages
#
# A term is MODEL/SECTION/N/KEY, a row of bench-results.tsv; terms may be
# added with + or taken away with -, and the sum divided by a number or by
# another sum. The
# number must be the value rounded to the precision it is written with (29
# is 28.5 to 29.49...; 0.48 is 0.475 to 0.4849...), or to the step after
# "to". Every number in a sentence the tutorial marks as measured must
# carry a marker: a number directly followed by a unit only the bench
# measures (µs, msgs/s, "messages a second", "connections a second",
# "context switches", "system calls") without one is reported too.
# Prints one line per problem; exits 1 if there is any.

BEGIN { FS = "\t" }

FNR == NR {
    value[$1 "/" $2 "/" $3 "/" $4] = $5
    next
}

/^```/ { in_code = !in_code; next }
in_code { next }

{
    line = $0
    while (match(line, /[0-9][0-9,]*(\.[0-9]+)?<!-- bench [^>]*-->/)) {
        quoted = substr(line, RSTART, RLENGTH)
        line = substr(line, RSTART + RLENGTH)
        check(quoted)
    }
    # What is left of the line has no marked number in it.
    rest = $0
    gsub(/[0-9][0-9,]*(\.[0-9]+)?<!-- bench [^>]*-->/, "", rest)
    if (match(rest, /[0-9][0-9,]*(\.[0-9]+)? ?(µs|msgs\/s|messages a second|connections a second|context switches|system calls)/))
        problem("a measured number without its source: " substr(rest, RSTART, RLENGTH))
}

function check(quoted,    number, spec, parts, n, expr, step, v, written) {
    number = quoted
    sub(/<!--.*/, "", number)
    spec = quoted
    sub(/^[^<]*<!-- bench /, "", spec)
    sub(/ *-->$/, "", spec)
    step = ""
    if (match(spec, / to [0-9.]+$/)) {
        step = substr(spec, RSTART + 4) + 0
        spec = substr(spec, 1, RSTART - 1)
    }
    n = split(spec, parts, / \/ /)
    if (n > 2) { problem("more than one division in: " spec); return }
    v = sum(parts[1])
    if (v == "") return
    if (n == 2) {
        divisor = parts[2] ~ /^[0-9.]+$/ ? parts[2] + 0 : sum(parts[2])
        if (divisor == "" || divisor == 0) { problem("cannot divide by " parts[2]); return }
        v = v / divisor
    }
    written = number
    gsub(/,/, "", written)
    if (step == "")
        step = written ~ /\./ ? 10 ^ -(length(written) - index(written, ".")) : 1
    if (rounded(v, step) != rounded(written + 0, step))
        problem(sprintf("%s: the committed run says %s (%s)", number, format(v, step), spec))
}

# The sum of TERM + TERM - TERM ...: "" (and a problem printed) if a term
# is not in the run.
function sum(expr,    terms, k, n, total, sign, term) {
    gsub(/ - /, " + -", expr)
    n = split(expr, terms, / \+ /)
    total = 0
    for (k = 1; k <= n; k++) {
        term = terms[k]
        sign = sub(/^-/, "", term) ? -1 : 1
        if (!(term in value) || value[term] !~ /^-?[0-9.]+$/) {
            problem("no number in the committed run for " term)
            return ""
        }
        total += sign * value[term]
    }
    return total
}

function rounded(x, step) { return sprintf("%.0f", x / step) }

function format(x, step) { return step < 1 ? sprintf("%.*f", -log(step) / log(10) + 0.5, x) : sprintf("%.0f", rounded(x, step) * step) }

function problem(text) {
    printf "%s:%d: %s\n", FILENAME, FNR, text
    bad = 1
}

END { exit bad }
