/* log.h: one line per event on stderr, and fatal errors. */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stdnoreturn.h>

void log_set_quiet(bool quiet);

/* For an event loop, whose one thread must never wait on its log: from now
 * on a line that stderr cannot take at once (a pipe nobody reads, a
 * terminal stopped with Ctrl-S) is dropped, and "N log lines dropped" is
 * written before the next line that goes out, or at exit. die() waits a
 * second at most. Call it once, after ignore_sigpipe() (a write to a pipe
 * that nobody reads any more raises SIGPIPE), and write to stderr only
 * through these functions afterwards. */
void log_set_nonblocking(void);

/* Connect and disconnect lines; silenced by -q. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Something went wrong but the server keeps serving; never silenced. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Not an error, but always printed, such as step 4's closing summary. */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log_error() for a signal handler, where stdio is not safe to use.
 * Knows only %d and %s. */
void log_error_from_handler(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Something went wrong and the server cannot go on: print and exit(1). */
noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
