/* log.c: every line goes to stderr, which is unbuffered, so a line is out
 * the moment it is written, and a forked child never inherits half of one. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static bool quiet;

void log_set_quiet(bool q)
{
    quiet = q;
}

/* Every line starts with "server[ID]:", where ID is the id of the thread
 * that wrote it: the process id in steps 1 and 4, a different child's id
 * per connection in step 2, a different thread's id per connection in
 * step 3 (the LWP column of `ps -L`). The concurrency model shows in the log.
 * One fprintf per line: glibc locks the stream for the call, so lines
 * written by different threads never interleave. */
static void log_line(const char *fmt, va_list ap)
{
    char line[512];

    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "%s[%d]: %s\n", program_invocation_short_name, (int)gettid(), line);
}

void log_info(const char *fmt, ...)
{
    va_list ap;

    if (quiet)
        return;
    va_start(ap, fmt);
    log_line(fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(fmt, ap);
    va_end(ap);
}

void log_notice(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(fmt, ap);
    va_end(ap);
}

void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(fmt, ap);
    va_end(ap);
    exit(1);
}
