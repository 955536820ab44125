/* signals.h: how steps 1 to 3 stop on SIGINT and SIGTERM. */
#ifndef SIGNALS_H
#define SIGNALS_H

/* Makes SIGINT (Ctrl-C) and SIGTERM (kill) end the process with status 0. */
void exit_on_stop_signals(void);

#endif
