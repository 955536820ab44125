/* histogram.c: see histogram.h for the layout and its error bound. */
#include "histogram.h"

/* Values below 2 * HISTOGRAM_SUB are their own index. Above, a value whose
 * highest set bit is e keeps its top HISTOGRAM_SUB_BITS + 1 bits: shifted
 * right by e - HISTOGRAM_SUB_BITS, it lies in [HISTOGRAM_SUB, 2 *
 * HISTOGRAM_SUB), and each shift has HISTOGRAM_SUB indexes of its own. */
static unsigned bucket_of(uint64_t value)
{
    unsigned e, shift, index;

    if (value < 2 * HISTOGRAM_SUB)
        return (unsigned)value;
    e = 63 - (unsigned)__builtin_clzll(value);
    shift = e - HISTOGRAM_SUB_BITS;
    index = (shift + 1) * HISTOGRAM_SUB + (unsigned)(value >> shift) - HISTOGRAM_SUB;
    return index < HISTOGRAM_BUCKETS ? index : HISTOGRAM_BUCKETS - 1;
}

/* The smallest value of bucket `index`, and its width: bucket_of's inverse. */
static uint64_t bucket_low(unsigned index, uint64_t *width)
{
    unsigned shift;

    if (index < 2 * HISTOGRAM_SUB) {
        *width = 1;
        return index;
    }
    shift = index / HISTOGRAM_SUB - 1;
    *width = (uint64_t)1 << shift;
    return (uint64_t)(HISTOGRAM_SUB + index % HISTOGRAM_SUB) << shift;
}

void histogram_add(struct histogram *h, uint64_t value)
{
    h->buckets[bucket_of(value)]++;
    h->count++;
    if (value > h->max)
        h->max = value;
}

void histogram_merge(struct histogram *into, const struct histogram *from)
{
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t histogram_percentile(const struct histogram *h, uint64_t num, uint64_t den)
{
    uint64_t rank = (h->count * num + den - 1) / den, seen = 0;

    if (h->count == 0)
        return 0;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t width, middle = bucket_low(i, &width) + (width - 1) / 2;

            return middle < h->max ? middle : h->max;
        }
    }
    return h->max;
}
