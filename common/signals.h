/* signals.h: the signals a server must not die of, and how steps 1 to 3
 * stop on SIGINT and SIGTERM. */
#ifndef SIGNALS_H
#define SIGNALS_H

/* Makes writing to a connection the client has closed or reset fail with
 * EPIPE, instead of killing the process with SIGPIPE. */
void ignore_sigpipe(void);

/* Makes SIGINT (Ctrl-C) and SIGTERM (kill) end the process with status 0. */
void exit_on_stop_signals(void);

#endif
