/* Step 2: a forking echo server, one child process per client.
 *
 * The parent only accepts. For each client it fork()s a child that runs the
 * same blocking echo loop as step 1, while the parent goes straight back to
 * accept(). A slow client now only blocks its own child.
 */
#include "echo.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The parent accepts as fast as it can fork, so a burst of clients should
 * not find the queue full: let it be as deep as the kernel allows
 * (net.core.somaxconn caps it). See step 1 for what the backlog does. */
#define LISTEN_BACKLOG SOMAXCONN

/* A child that exits stays a zombie, holding its process-table slot, until
 * its parent collects its exit status with waitpid(). The kernel sends
 * SIGCHLD when a child exits; several exits may arrive as one signal, so
 * collect every child that is done, and never block. A child that did not
 * exit with status 0 was killed (by SIGPIPE or SIGSEGV, a bug; by SIGKILL)
 * or failed: report it, or it would vanish without a trace. waitpid() may change
 * errno, which the code the handler interrupted may be about to read. */
static void reap_children(int signo)
{
    int saved_errno = errno, status;
    pid_t pid;

    (void)signo;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (WIFSIGNALED(status))
            log_error_from_handler("child %d killed by signal %d", (int)pid, WTERMSIG(status));
        else if (WEXITSTATUS(status) != 0)
            log_error_from_handler("child %d exited with status %d", (int)pid,
                                   WEXITSTATUS(status));
    }
    errno = saved_errno;
}

static void reap_children_as_they_exit(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reap_children;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART: accept() carries on after the handler; not nanosleep()
     * in back_off(), which fails with EINTR all the same (man 7 signal).
     * SA_NOCLDSTOP: no signal when a child is merely stopped. */
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        die("sigaction SIGCHLD: %s", strerror(errno));
}

/* fork() copies the process, descriptors included: both parent and child
 * now hold the listening socket and the client socket. Each closes the one
 * it does not use. If the parent kept the client's, the connection would
 * stay open after the child closed it, and the client would never see the
 * end of it; the parent would also run out of descriptors. */
static void handle_client(int listen_fd, int fd, const char *peer)
{
    pid_t pid = fork();

    if (pid < 0) {
        log_error("fork: %s; dropping client %s", strerror(errno), peer);
        close_or_log(fd);
        return;
    }
    if (pid == 0) {
        close_or_log(listen_fd);
        serve_client(fd, peer);
        /* _exit(), not exit(): the child must not flush stdio buffers or
         * run exit handlers it inherited from the parent. */
        _exit(0);
    }
    close_or_log(fd);
}

int main(int argc, char **argv)
{
    struct options opts;
    char err[256];
    int listen_fd;

    options_parse(argc, argv, &opts);
    log_set_quiet(opts.quiet);
    listen_fd = net_listen(opts.address, opts.port, LISTEN_BACKLOG, err, sizeof err);
    if (listen_fd < 0)
        die("%s", err);
    ignore_sigpipe();
    exit_on_stop_signals();
    reap_children_as_they_exit();
    net_announce(listen_fd);

    for (;;) {
        char peer[ADDRESS_STRLEN];
        int fd = net_accept(listen_fd, peer, sizeof peer);

        if (fd >= 0)
            handle_client(listen_fd, fd, peer);
    }
}
