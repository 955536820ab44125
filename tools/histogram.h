/* histogram.h: counts of values (loadgen's latencies, in nanoseconds) in
 * buckets narrow enough that a percentile read back from the counts is
 * within 1% of the true one.
 *
 * The layout is HdrHistogram's: each power of two, [2^e, 2^(e+1)), is cut
 * into HISTOGRAM_SUB buckets of equal width, 2^e / HISTOGRAM_SUB. Below
 * 2 * HISTOGRAM_SUB every value has a bucket of its own. A value is read
 * back as the middle of its bucket, so it is off by at most half a width,
 * and it is at least HISTOGRAM_SUB widths: the error is at most
 * 1 / (2 * HISTOGRAM_SUB) of the value, 1/128 = 0.78% with 64 buckets per
 * power of two. (32 would allow 1.6%; linear buckets would need a fixed
 * width, too coarse for microseconds or too many for minutes.)
 *
 * The bound holds for every value below 2^HISTOGRAM_MAX_BITS, 137 s in
 * nanoseconds; larger ones all go in the last bucket, so only the maximum,
 * kept exactly, is right for them. 2,048 counters: 16 KiB.
 */
#ifndef HISTOGRAM_H
#define HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS 6
#define HISTOGRAM_SUB (1 << HISTOGRAM_SUB_BITS)
#define HISTOGRAM_MAX_BITS 37
#define HISTOGRAM_BUCKETS ((HISTOGRAM_MAX_BITS - HISTOGRAM_SUB_BITS + 1) * HISTOGRAM_SUB)

struct histogram {
    uint64_t count;   /* values added */
    uint64_t max;     /* the largest, exactly */
    uint64_t buckets[HISTOGRAM_BUCKETS];
};

/* Counts one value. No allocation, no system call: a few instructions. */
void histogram_add(struct histogram *h, uint64_t value);

/* Adds the counts of `from` to `into`. */
void histogram_merge(struct histogram *into, const struct histogram *from);

/* The value below or at which num/den of the values lie (num/den = 99/100
 * for p99): the value of rank ceil(count * num / den), 1 being the
 * smallest, read back as the middle of its bucket but never above the
 * maximum. 0 for an empty histogram. */
uint64_t histogram_percentile(const struct histogram *h, uint64_t num, uint64_t den);

#endif
