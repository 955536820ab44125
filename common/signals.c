/* signals.c: survive SIGPIPE; turn SIGINT and SIGTERM into a clean exit. */
#include "signals.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* Once a connection can no longer carry data (the client reset it, or
 * closed it and the server wrote on regardless), send() and write() fail:
 * with ECONNRESET, or with EPIPE, and along with EPIPE the kernel sends the
 * writer SIGPIPE, whose default action ends the process: one client could
 * kill the whole server. Ignored, the signal goes away and the error stays,
 * for the code to handle. This also covers a log on stderr piped into a
 * program that has exited. */
void ignore_sigpipe(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        die("sigaction SIGPIPE: %s", strerror(errno));
}

/* Why not have the handler set a "please stop" flag for the main loop? A
 * blocking server spends its life inside accept() or recv(), and would see
 * the flag only when that call returns. With SA_RESTART it carries on after
 * the handler as if nothing happened. Without it, the call fails with
 * EINTR, but a signal that lands after the loop checked the flag and before
 * the call blocks again is missed: the server waits on, until the next
 * client or the next bytes. And in step 3 a signal sent to the process
 * interrupts only the one thread the kernel picks to run the handler; the
 * others stay blocked (man 7 signal, man 7 pthreads). So the handler ends
 * the process itself, with _exit(): unlike exit(), it is safe to call from
 * a signal handler. The kernel closes every socket on the way out (one with
 * unread input sends the client a reset), which is all the cleaning up
 * these servers need. In step 2 only the process that gets the signal
 * stops: `kill PID` ends the parent, and its children go on serving their
 * clients until those leave, while Ctrl-C reaches every process in the
 * terminal's foreground group, children too. */
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
