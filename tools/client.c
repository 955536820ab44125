/* client.c: errors, the byte pattern, the clock and the descriptor limit,
 * shared by the client tools. */
#include "client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

void fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", program_invocation_short_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void bad_usage(const char *what, const char *value)
{
    fprintf(stderr, "%s: %s '%s' (try -h)\n", program_invocation_short_name, what, value);
    exit(2);
}

/* The sequence, and its first PATTERN_SIZE bytes again after it, so that
 * any PATTERN_SIZE bytes of it are in a row. 2 MiB, built once. */
static unsigned char sequence[PATTERN_PERIOD + PATTERN_SIZE];

/* The de Bruijn sequence of 3-symbol strings over 128 symbols, the
 * smallest in lexicographic order: the Lyndon words (strings smaller than
 * each of their rotations) whose length divides 3, smallest first, one
 * after the other (Fredricksen, Kessler and Maiorana). Each word is
 * generated from the previous one by Duval's method: add one to the last
 * symbol, repeat the word to length 3, drop trailing 127s. The high bit,
 * which the 7-bit symbols leave free, is set every other pair of bytes so
 * that all 256 values occur; it cannot make two windows equal, since
 * their low 7 bits already differ. */
static void build_sequence(void)
{
    int word[3] = { -1 };
    size_t len = 1, at = 0;

    while (len > 0) {
        size_t m = len;

        word[len - 1]++;
        if (3 % len == 0)
            for (size_t k = 0; k < len; k++, at++)
                sequence[at] = (unsigned char)(word[k] | ((at >> 1) & 1) << 7);
        while (len < 3) {
            word[len] = word[len - m];
            len++;
        }
        while (len > 0 && word[len - 1] == 127)
            len--;
    }
    /* at is now PATTERN_PERIOD: 128 words of 1 symbol and
     * (128^3 - 128) / 3 of 3. */
    memcpy(sequence + PATTERN_PERIOD, sequence, PATTERN_SIZE);
}

const unsigned char *pattern_at(uint64_t c, uint64_t i)
{
    static int ready;

    if (!ready) {
        build_sequence();
        ready = 1;
    }
    return sequence + (c * PATTERN_STRIDE + i) % PATTERN_PERIOD;
}

unsigned char pattern(uint64_t c, uint64_t i)
{
    return *pattern_at(c, i);
}

int64_t now_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        fail("clock_gettime: %s", strerror(errno));
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void raise_open_file_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        fail("getrlimit: %s", strerror(errno));
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        fail("setrlimit: %s", strerror(errno));
}
