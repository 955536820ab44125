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

/* The pattern twice over, so that any PATTERN_SIZE bytes of it are in a row. */
static unsigned char pattern_bytes[2 * PATTERN_SIZE];

const unsigned char *pattern_at(uint64_t c, uint64_t i)
{
    static int ready;

    if (!ready) {
        for (size_t k = 0; k < sizeof pattern_bytes; k++)
            pattern_bytes[k] = (unsigned char)(k + (k >> 8) * 7);
        ready = 1;
    }
    /* 4099 is odd, so 65,536 connections all start at different offsets. */
    return pattern_bytes + (i + c * 4099) % PATTERN_SIZE;
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
