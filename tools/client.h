/* client.h: what the client tools (echo-client, loadgen) share. */
#ifndef CLIENT_H
#define CLIENT_H

#include <stdint.h>
#include <stdnoreturn.h>

/* Prints "PROGRAM: message" on stderr and exits 1. */
noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "PROGRAM: what 'value' (try -h)" on stderr and exits 2. */
noreturn void bad_usage(const char *what, const char *value);

/* What connection c sends: byte i of its stream is pattern(c, i), so that
 * every byte that comes back can be checked against what was sent. Both
 * tools send it.
 *
 * The streams are windows on one sequence of PATTERN_PERIOD bytes (2^21)
 * in which no 3 bytes in a row occur twice, counting round the end: its
 * low 7 bits are a de Bruijn sequence, every 3-symbol string over 128
 * symbols exactly once. Connection c starts at c * PATTERN_STRIDE, modulo
 * the period; the stride is odd, so ids below 2^21 all start at different
 * places. (loadgen's ids stay below 2^20; echo-client numbers its
 * connections 0, 1, ... up to its -c less one, and -c is at most
 * 1,000,000.)
 * Every byte value occurs, NUL and 0xFF included.
 *
 * What that catches, for connections c and d with ids below 2^21:
 *   - bytes of d's that arrive on c at the place in the stream they left d
 *     (a server that mixes up two clients' buffers): in every 3 bytes in
 *     a row, one differs, so any 3 or more are caught;
 *   - bytes that come back on their own connection at another place (lost,
 *     repeated or reordered), 3 or more, unless they moved by a multiple of
 *     the period.
 * What it does not: runs of 1 or 2 bytes out of place (a byte has only
 * 256 values); d's bytes from place j arriving on c at place i when j - i
 * is exactly (c - d) * PATTERN_STRIDE modulo the period, where c's own
 * stream has the same bytes; bytes moved within a stream by a multiple of
 * the period, 2 MiB, since each stream repeats. */
#define PATTERN_PERIOD (1u << 21)
#define PATTERN_STRIDE 1296127u   /* about the period / 1.618, odd */
#define PATTERN_SIZE 65536        /* pattern_at()'s bytes in a row */

/* Byte i of connection c's stream. */
unsigned char pattern(uint64_t c, uint64_t i);

/* Where bytes i, i+1, ... of connection c's stream are: PATTERN_SIZE of
 * them in a row, to send from or compare with (memcmp), without a
 * byte-by-byte loop. The first call builds the sequence (a few ms). */
const unsigned char *pattern_at(uint64_t c, uint64_t i);

/* Nanoseconds on a clock that only moves forward. */
int64_t now_ns(void);

/* Many connections need many descriptors: raise the soft limit to the hard. */
void raise_open_file_limit(void);

#endif
