/* signals.c: turn SIGINT and SIGTERM into a clean exit. */
#include "signals.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* A blocking server spends its life inside accept() or recv(), so it has no
 * main loop that could look at a "please stop" flag in time. The handler
 * therefore ends the process itself, with _exit(): unlike exit(), it is
 * safe to call from a signal handler. The kernel closes every socket on the
 * way out, which is all the cleaning up these servers need. */
static void stop(int signo)
{
    (void)signo;
    _exit(0);
}

void exit_on_stop_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        die("sigaction: %s", strerror(errno));
}
