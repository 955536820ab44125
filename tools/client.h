/* client.h: what the client tools (echo-client, loadgen) share. */
#ifndef CLIENT_H
#define CLIENT_H

#include <stdint.h>
#include <stdnoreturn.h>

/* Prints "PROGRAM: message" on stderr and exits 1. */
noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "PROGRAM: what 'value' (try -h)" on stderr and exits 2. */
noreturn void bad_usage(const char *what, const char *value);

/* What connection c sends: one 64 KiB pattern, repeated, read from a
 * different offset for each connection. Both tools send it so that every
 * byte that comes back can be checked. Every 256 bytes run through all 256
 * values, NUL and 0xFF included. */
#define PATTERN_SIZE 65536

/* Byte i of connection c's stream. */
unsigned char pattern(uint64_t c, uint64_t i);

/* Where bytes i, i+1, ... of connection c's stream are: PATTERN_SIZE of
 * them in a row, to send from or compare with, without a byte-by-byte loop. */
const unsigned char *pattern_at(uint64_t c, uint64_t i);

/* Nanoseconds on a clock that only moves forward. */
int64_t now_ns(void);

/* Many connections need many descriptors: raise the soft limit to the hard. */
void raise_open_file_limit(void);

#endif
