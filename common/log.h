/* log.h: one line per event on stderr, and fatal errors. */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stdnoreturn.h>

void log_set_quiet(bool quiet);

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
