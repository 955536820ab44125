/* log.c: every line goes to stderr, which is unbuffered, so a line is out
 * the moment it is written, and a forked child never inherits half of one.
 *
 * By default a line waits for room, as any write(2) does: fine for the
 * blocking servers, which wait on their clients anyway. An event loop must
 * never wait, so it calls log_set_nonblocking(): then each line is one
 * write(2) that stderr takes at once or not at all, a line it cannot take
 * is dropped and counted, and the count goes out just before the next line
 * that stderr does take, or at exit. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The longest line, newline included; longer ones are cut. man 7 pipe: a
 * write(2) of at most PIPE_BUF bytes to a pipe is atomic, never mixed with
 * other writers' bytes, and on a nonblocking pipe it is all or nothing:
 * the whole line, or EAGAIN. */
#define LINE_MAX_BYTES 1024
_Static_assert(LINE_MAX_BYTES <= PIPE_BUF, "a log line must fit in one atomic pipe write");

/* How long die() waits for room for its last words in a nonblocking log:
 * long enough for a slow reader to catch up, and then it exits regardless. */
#define DIE_WAIT_MS 1000

static bool quiet;
static bool nonblocking;           /* log_set_nonblocking() was called */
static bool stderr_is_socket;      /* and stderr is a socket: send(), not write() */
static unsigned long long dropped; /* lines lost since the count last went out */
/* The end of a line that stderr took only part of: a terminal or a socket
 * may do that (a pipe does not, see above). It goes out before anything
 * else, so that no line is cut in two, nor glued to the next. */
static char unsent[LINE_MAX_BYTES];
static size_t unsent_len;
/* Step 5's loops log at the same time: the count, unsent and the order of
 * the lines are theirs in common, so one line goes out at a time. */
static pthread_mutex_t nonblocking_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_quiet(bool q)
{
    quiet = q;
}

/* One write to stderr, made again if a signal interrupted it before it
 * wrote anything (EINTR). Returns what write(2) returns. */
static ssize_t write_stderr(const char *buf, size_t len)
{
    ssize_t n;

    do {
        if (stderr_is_socket)
            n = send(STDERR_FILENO, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        else
            n = write(STDERR_FILENO, buf, len);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Nonblocking: finish the line stderr took only part of. True once none of
 * it is left; false while stderr takes no more (errno says why). */
static bool flush_unsent(void)
{
    while (unsent_len > 0) {
        ssize_t n = write_stderr(unsent, unsent_len);

        if (n <= 0)
            return false;
        unsent_len -= (size_t)n;
        memmove(unsent, unsent + n, unsent_len);
    }
    return true;
}

/* Nonblocking: write the line now or not at all. Whatever stderr leaves of
 * it waits in unsent. False if none of it went out: stderr is full
 * (EAGAIN), nobody reads it any more (EPIPE), or it failed otherwise. */
static bool try_line(const char *line, size_t len)
{
    ssize_t n;

    if (!flush_unsent())
        return false;
    n = write_stderr(line, len);
    if (n <= 0)
        return false;
    unsent_len = len - (size_t)n;
    memcpy(unsent, line + n, unsent_len);
    return true;
}

/* Every line starts with "server[ID]:", where ID is the id of the thread
 * that wrote it: the process id in steps 1 and 4, a different child's id
 * per connection in step 2, a different thread's id per connection in
 * step 3 (the LWP column of `ps -L`). The concurrency model shows in the
 * log. Returns the line's length, its '\n' included (no NUL). */
static size_t format_line(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t room = size - 1;  /* the last byte is kept for the '\n' */
    size_t len = 0;
    int n;

    /* snprintf() returns the length it would have liked, cut or not. */
    n = snprintf(buf, room, "%s[%d]: ", program_invocation_short_name, (int)gettid());
    if (n > 0)
        len = (size_t)n < room ? (size_t)n : room - 1;
    n = vsnprintf(buf + len, room - len, fmt, ap);
    if (n > 0)
        len += (size_t)n < room - len ? (size_t)n : room - len - 1;
    buf[len++] = '\n';
    return len;
}

/* format_line() with the arguments given here rather than in a va_list. */
static size_t format_linef(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t format_linef(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    size_t len;

    va_start(ap, fmt);
    len = format_line(buf, size, fmt, ap);
    va_end(ap);
    return len;
}

/* Nonblocking: say how many lines were lost, if any were. True once the
 * count is out (or there was none to give). */
static bool try_report_dropped(void)
{
    char report[LINE_MAX_BYTES];
    size_t len;

    if (dropped == 0)
        return true;
    len = format_linef(report, sizeof report, "%llu log line%s dropped", dropped,
                       dropped == 1 ? "" : "s");
    if (!try_line(report, len))
        return false;
    dropped = 0;
    return true;
}

/* Nonblocking: the count of lost lines first, so that the log says where
 * the gap is, then the line; if either cannot go out now, the line is lost
 * too. */
static bool try_report_and_line(const char *line, size_t len)
{
    return try_report_dropped() && try_line(line, len);
}

/* A mutex of our own rather than flockfile(stderr), the stream's lock:
 * both would keep out the other threads, but ThreadSanitizer cannot see
 * the stream's, and reports every line as a race. */
static void lock_log(void)
{
    int rc = pthread_mutex_lock(&nonblocking_lock);

    if (rc != 0)  /* cannot happen to a default mutex used as here */
        abort();
}

static void unlock_log(void)
{
    if (pthread_mutex_unlock(&nonblocking_lock) != 0)
        abort();
}

/* Called by exit(): the count, and the end of a cut line, get one more
 * chance, without waiting. If stderr is still full, they are lost. */
static void report_dropped_at_exit(void)
{
    lock_log();
    if (try_report_dropped())
        flush_unsent();
    unlock_log();
}

/* Milliseconds on a clock that only moves forward, or -1 if it cannot be
 * read. */
static long long monotonic_ms(void)
{
    struct timespec now;

    if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
        return -1;
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

/* Waits until stderr has room (poll() says POLLOUT) or the deadline has
 * passed. False if it has not got room: the time is up, or the reader is
 * gone (POLLERR alone). */
static bool wait_for_room(long long deadline_ms)
{
    for (;;) {
        struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };
        long long now = monotonic_ms();
        int n;

        if (now < 0 || now >= deadline_ms)
            return false;
        n = poll(&pfd, 1, (int)(deadline_ms - now));
        if (n > 0)
            return (pfd.revents & POLLOUT) != 0;
        if (n == 0 || errno != EINTR)
            return false;
    }
}

/* Nonblocking, for die(): the line, and all of it, waiting for room while
 * stderr is only full (EAGAIN), but no longer than DIE_WAIT_MS. */
static void write_last_line(const char *line, size_t len)
{
    long long deadline_ms = monotonic_ms() + DIE_WAIT_MS;

    while (!try_report_and_line(line, len)) {
        if (errno != EAGAIN || !wait_for_room(deadline_ms)) {
            dropped++;
            return;
        }
    }
    while (!flush_unsent() && errno == EAGAIN && wait_for_room(deadline_ms))
        continue;
}

static void log_line(bool last, const char *fmt, va_list ap)
{
    char line[LINE_MAX_BYTES];
    size_t len = format_line(line, sizeof line, fmt, ap);

    /* Blocking: one fprintf() per line. The C library locks the stream for
     * the call, so the lines step 3's threads write never interleave, and
     * it writes the rest of a line that write(2) took only part of. */
    if (!nonblocking) {
        fprintf(stderr, "%.*s", (int)len, line);
        return;
    }
    /* Nonblocking: fprintf() would leave the stream in error after a write
     * that failed with EAGAIN, and it cannot say how much went out, so
     * write(2) it is, under the log's own lock (see lock_log()). */
    lock_log();
    if (last)
        write_last_line(line, len);
    else if (!try_report_and_line(line, len))
        dropped++;
    unlock_log();
}

/* man 2 open: the O_NONBLOCK flag belongs to the open file description,
 * which every descriptor dup()ed or inherited from it shares. Fd 2 came
 * from whoever started us, and its description is still theirs too: the
 * shell's terminal, a pipe that other programs write to as well. With
 * fcntl(2, F_SETFL, O_NONBLOCK), their reads and writes would fail with
 * EAGAIN where they expect to wait. So the flag goes on a description of
 * our own: opening /proc/self/fd/2 opens the same pipe or terminal again,
 * as a new description, and dup2() puts it in place of fd 2. */
void log_set_nonblocking(void)
{
    struct stat st;
    int fd;

    nonblocking = true;
    if (atexit(report_dropped_at_exit) != 0)
        die("atexit: cannot register the log's report at exit");
    /* No stderr at all: every write fails at once (EBADF); none waits. */
    if (fstat(STDERR_FILENO, &st) < 0)
        return;
    /* A socket (systemd.exec(5): StandardError=socket) cannot be opened
     * again through /proc (ENXIO), but send() takes MSG_DONTWAIT, which
     * makes just that call nonblocking, and MSG_NOSIGNAL: no SIGPIPE if the
     * reader has gone (man 2 send). */
    if (S_ISSOCK(st.st_mode)) {
        stderr_is_socket = true;
        return;
    }
    /* A regular file never makes write(2) wait for a reader, and O_NONBLOCK
     * does nothing for it (man 2 open); a description of our own would also
     * have an offset of its own, and overwrite the lines already there.
     * /dev/null never waits either. Only pipes and terminals are reopened. */
    if (!S_ISFIFO(st.st_mode) && !isatty(STDERR_FILENO))
        return;
    /* O_NOCTTY: a server started with setsid has no controlling terminal,
     * and opening one would otherwise make it the server's. */
    fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        /* ENXIO: a FIFO with no reader left (man 7 fifo); writing to it
         * fails at once with EPIPE, it does not wait. Other errors (EACCES,
         * seen for a pipe another user made) leave it blocking. */
        if (errno != ENXIO)
            log_error("cannot reopen stderr nonblocking: %s; the log can block", strerror(errno));
        return;
    }
    /* dup2() closes our fd 2 and puts the new description in its place;
     * the shell's descriptors still refer to the old one, still blocking. */
    if (dup2(fd, STDERR_FILENO) < 0)
        log_error("dup2 stderr: %s; the log can block", strerror(errno));
    if (close(fd) < 0)
        log_error("close: %s", strerror(errno));
}

void log_info(const char *fmt, ...)
{
    va_list ap;

    if (quiet)
        return;
    va_start(ap, fmt);
    log_line(false, fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(false, fmt, ap);
    va_end(ap);
}

void log_notice(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(false, fmt, ap);
    va_end(ap);
}

void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(true, fmt, ap);
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
 * printf() itself could find the stream's buffer half written, or a lock
 * of malloc()'s taken. So this builds the line by hand, knowing only %d
 * and %s, and writes it with one write(2), which is on the list. The id
 * is getpid()'s (on the list; gettid() is not): the thread's id in a
 * process with one thread, such as step 2's parent. */
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
