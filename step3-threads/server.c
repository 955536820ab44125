/* Step 3: a threaded echo server, one thread per client, one process.
 *
 * The main thread only accepts. For each client it starts a thread that runs
 * the same blocking echo loop as step 1, while the main thread goes straight
 * back to accept(). Threads share the process's memory and descriptors, so
 * nothing is copied and nothing needs closing on the other side.
 */
#include "echo.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "signals.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The main thread accepts as fast as it can start threads, so a burst of
 * clients should not find the queue full: let it be as deep as the kernel
 * allows (net.core.somaxconn caps it). See step 1 for what it does. */
#define LISTEN_BACKLOG SOMAXCONN

/* What a client's thread needs. It lives on the heap, not on the main
 * thread's stack, because the main thread loops on and reuses its stack
 * while the new thread may not have run yet. */
struct client {
    int fd;
    char peer[ADDRESS_STRLEN];
};

static void *client_thread(void *arg)
{
    struct client *client = arg;

    serve_client(client->fd, client->peer);
    free(client);
    return NULL;
}

/* Each thread gets a stack of its own: by default 8 MiB of address space
 * (ulimit -s), of which only the pages the thread touches take memory. But
 * with vm.overcommit_memory = 2 all 8 MiB count against the commit limit. */
static void handle_client(int fd, const char *peer, const pthread_attr_t *detached)
{
    struct client *client = malloc(sizeof *client);
    pthread_t tid;
    int rc;

    if (client == NULL) {
        log_error("out of memory; dropping client %s", peer);
        close_or_log(fd);
        return;
    }
    client->fd = fd;
    strcpy(client->peer, peer);
    /* pthread_create() returns the error number instead of setting errno.
     * EAGAIN here means a limit on threads or memory has been reached. */
    rc = pthread_create(&tid, detached, client_thread, client);
    if (rc != 0) {
        log_error("pthread_create: %s; dropping client %s", strerror(rc), peer);
        close_or_log(fd);
        free(client);
    }
}

/* Threads are created detached: nobody will pthread_join() them, so a
 * thread's stack and id are released as soon as it returns, instead of
 * being kept for a join that never comes. */
static void make_detached_attr(pthread_attr_t *attr)
{
    int rc = pthread_attr_init(attr);

    if (rc == 0)
        rc = pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
    if (rc != 0)
        die("pthread_attr: %s", strerror(rc));
}

int main(int argc, char **argv)
{
    struct options opts;
    pthread_attr_t detached;
    char err[256];
    int listen_fd;

    options_parse(argc, argv, &opts);
    log_set_quiet(opts.quiet);
    listen_fd = net_listen(opts.address, opts.port, LISTEN_BACKLOG, err, sizeof err);
    if (listen_fd < 0)
        die("%s", err);
    ignore_sigpipe();
    exit_on_stop_signals();
    make_detached_attr(&detached);
    net_announce(listen_fd);

    for (;;) {
        char peer[ADDRESS_STRLEN];
        int fd = net_accept(listen_fd, peer, sizeof peer);

        if (fd >= 0)
            handle_client(fd, peer, &detached);
    }
}
