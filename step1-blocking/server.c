/* Step 1: a blocking echo server that serves one client at a time.
 *
 * accept() a client, echo until it leaves, close, accept the next. Every
 * call blocks: while one client is connected the server sits in recv()
 * waiting for that client, and a second client's bytes sit unread in the
 * kernel until the first one leaves.
 */
#include "echo.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "signals.h"

/* A backlog of 5, as in many textbook servers, kept small so you can watch
 * what it does. It is not a limit on clients, and by default nobody is
 * refused when it is reached. On Linux it caps the queue of connections
 * whose handshake the kernel has completed but which accept() has not taken
 * yet: it holds backlog + 1 of them (the backlog is first capped at
 * net.core.somaxconn). While that queue is full the kernel drops new
 * handshake packets, and the client's kernel sends them again a second or
 * more later: a client sees a slow connect(), or ETIMEDOUT after about two
 * minutes. If the packet dropped was its final ACK, connect() has returned:
 * the server holds it half-open, resending SYN-ACK, and its data waits for
 * room; after net.ipv4.tcp_synack_retries resends (a minute, measured) the
 * server forgets it, and the client's next try meets a reset, ECONNRESET.
 * With net.ipv4.tcp_abort_on_overflow = 1 that client is reset at once. */
#define LISTEN_BACKLOG 5

/* Serve the client right here, in the only thread there is: nobody else
 * is accepted until this client closes its connection. */
static void handle_client(int fd, const char *peer)
{
    serve_client(fd, peer);
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
    net_announce(listen_fd);

    for (;;) {
        char peer[ADDRESS_STRLEN];
        int fd = net_accept(listen_fd, peer, sizeof peer);

        if (fd >= 0)
            handle_client(fd, peer);
    }
}
