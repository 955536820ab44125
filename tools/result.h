/* result.h: what a run of loadgen measured, in one worker or added up over
 * all of them, and the two ways loadgen prints it: one JSON line, the
 * interface `make bench` reads (its keys always all there, in a fixed
 * order), or a few lines for a person. */
#ifndef RESULT_H
#define RESULT_H

#include "histogram.h"

#include <stdint.h>

enum mode { ECHO, HOLD, CHURN };

/* The steps a connection can fail at, as the report names them. */
enum step { STEP_SOCKET, STEP_BIND, STEP_SETSOCKOPT, STEP_CONNECT, STEP_SEND, STEP_ECHO,
            STEP_CHECK, STEPS };

/* Why it failed: 0 is "closed by the server", 1 to REASONS - 2 the errno
 * of that number, and REASONS - 1 any larger errno (Linux has none). */
#define REASONS 256
#define CLOSED_BY_SERVER 0

struct result {
    uint64_t opened, failed, verified;
    uint64_t messages;        /* counted: started inside the window */
    uint64_t all_messages;    /* every one that came back */
    uint64_t bytes, byte_errors;
    uint64_t late;            /* counted open-loop messages handed to send() late */
    uint64_t max_lag_ns;      /* the latest of them */
    uint64_t cpu_us;          /* the worker's own, from go to the end of the drain */
    int64_t first_failure_ns; /* when the first failure was seen; 0 if none */
    int first_step, first_reason;
    uint64_t failures[STEPS][REASONS];
    struct histogram latency;
};

/* The run a result is of, as the report describes it. */
struct run {
    enum mode mode;
    long connections, idle;
    double rate;        /* 0 for the closed loop */
    int workers;
    double warmup;
    double seconds;     /* the window, or how long --hold took */
};

/* Counts a failure at `step` with errno `err` (or CLOSED_BY_SERVER), seen
 * at `when`; the first one is remembered as well. */
void result_failure(struct result *r, enum step step, int err, int64_t when);

/* Adds `from` to `into`: counts summed, maxima and the earliest first
 * failure kept. */
void result_add(struct result *into, const struct result *from);

/* "connect: Connection timed out": the words the report uses for a failure. */
const char *step_name(int step);
const char *reason_text(int reason);

/* The share of the counted messages that went over 1 ms late, in %. */
double late_pct(const struct result *r);

void print_json(const struct result *r, const struct run *run);
void print_summary(const struct result *r, const struct run *run);

#endif
