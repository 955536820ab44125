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

/* Appends s at p, stopping at end. Returns where the text now ends. */
static char *append_text(char *p, char *end, const char *s)
{
    while (*s != '\0' && p < end)
        *p++ = *s++;
    return p;
}

static char *append_number(char *p, char *end, long long n)
{
    char digits[24];
    int i = 0;
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;

    do {
        digits[i++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (n < 0 && p < end)
        *p++ = '-';
    while (i > 0 && p < end)
        *p++ = digits[--i];
    return p;
}

/* A signal handler may call only async-signal-safe functions (man 7
 * signal-safety): a handler that interrupted a printf() and called
 * printf() itself could find the stream's lock taken, or its buffer half
 * written. So this builds the line by hand, knowing only %d and %s, and
 * writes it with one write(2), which is on the list. The id is getpid()'s
 * (on the list; gettid() is not): the thread's id in a process with one
 * thread, such as step 2's parent. */
void log_error_from_handler(const char *fmt, ...)
{
    char line[256], *p = line, *end = line + sizeof line - 1;
    va_list ap;

    p = append_text(p, end, program_invocation_short_name);
    p = append_text(p, end, "[");
    p = append_number(p, end, getpid());
    p = append_text(p, end, "]: ");
    va_start(ap, fmt);
    for (const char *f = fmt; *f != '\0' && p < end; f++) {
        if (f[0] == '%' && f[1] == 'd') {
            p = append_number(p, end, va_arg(ap, int));
            f++;
        } else if (f[0] == '%' && f[1] == 's') {
            p = append_text(p, end, va_arg(ap, const char *));
            f++;
        } else {
            *p++ = *f;
        }
    }
    va_end(ap);
    *p++ = '\n';
    /* If stderr is gone there is nowhere left to say so. */
    if (write(STDERR_FILENO, line, (size_t)(p - line)) < 0)
        return;
}
