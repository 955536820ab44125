/* Step 4: an event-driven echo server: one process, one thread, epoll.
 *
 * Steps 1 to 3 give each client something that can block in recv(): the
 * whole server, a process, a thread. Here nothing blocks but epoll_wait().
 * Every socket is nonblocking, so recv() and send() return at once with
 * whatever they can do, and epoll tells the one thread which sockets are
 * ready. A connection costs a descriptor and a small slot in a table, not
 * a process or a thread with its stack.
 */
#include "fdlimit.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One thread accepts for thousands of clients: let the queue be as deep as
 * the kernel allows (net.core.somaxconn caps it). See step 1. */
#define LISTEN_BACKLOG SOMAXCONN
#define MAX_EVENTS 256
#define READ_BUFFER_SIZE 65536
/* How long accepting stays paused after running out of descriptors, if no
 * connection closes first. */
#define ACCEPT_PAUSE_MS 1000
/* The table of connections has one slot per possible descriptor. Where
 * the hard limit on descriptors is huge (some systems allow a billion),
 * use only this many. */
#define MAX_DESCRIPTORS (1 << 20)

/* One per client, found by its descriptor number (fds are small integers,
 * so an array indexed by fd is the cheapest map there is). An idle
 * connection is just this slot: no buffer of its own. */
struct connection {
    bool open;
    uint32_t pending_len;  /* bytes in pending */
    uint32_t pending_sent; /* of which the socket has taken this many */
    char *pending;         /* echo the socket could not take yet, or NULL */
};

struct server {
    int epoll_fd;
    int listen_fd;
    int signal_fd;
    bool running;
    bool accepting;              /* false while out of descriptors */
    long long resume_at_ms;      /* when to try accepting again */
    struct connection *conns;    /* conns[fd], one per possible descriptor */
    size_t max_fds;              /* slots in conns */
    int highest_fd;              /* the highest descriptor a client has had */
    unsigned long open_count;
    unsigned long long served;   /* connections accepted */
    unsigned long long echoed;   /* bytes sent back */
    /* Only one connection is read at a time, so they all share one buffer. */
    char buf[READ_BUFFER_SIZE];
};


/* Level-triggered (the default): epoll_wait() reports a socket for as long
 * as it is ready, not once per change, so the loop may read one chunk and
 * move on without losing track of what is left. */
static int watch(struct server *s, int op, int fd, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.fd = fd };

    return epoll_ctl(s->epoll_fd, op, fd, &ev);
}

/* With SIGINT and SIGTERM blocked, they are not delivered to a handler but
 * kept pending, and the signalfd becomes readable: a signal is just one
 * more event, handled in the loop like the others, with no race and no
 * handler to interrupt a call (epoll_wait() still fails with EINTR after a
 * stop and continue: man 7 signal). Unlike steps 1 to 3, the loop ends and
 * teardown() closes every connection at once, then reports. It does not
 * drain: pending echo is dropped, and a client whose bytes are still
 * unread gets a reset (ECONNRESET) instead of the end of the stream. */
static int open_signal_fd(void)
{
    sigset_t mask;
    int fd;

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        die("sigprocmask: %s", strerror(errno));
    fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        die("signalfd: %s", strerror(errno));
    return fd;
}

/* Milliseconds on a clock that only moves forward. */
static long long now_ms(void)
{
    struct timespec now;

    if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
        die("clock_gettime: %s", strerror(errno));
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

/* Out of descriptors, accept4() fails, but the client stays in the queue
 * and the listening socket stays readable: a level-triggered loop would be
 * woken for it again and again, spinning the CPU. Stop watching it until a
 * connection closes and frees a descriptor, or the pause has passed. */
static void pause_accepting(struct server *s)
{
    if (watch(s, EPOLL_CTL_MOD, s->listen_fd, 0) < 0)
        die("epoll_ctl: %s", strerror(errno));
    s->accepting = false;
    s->resume_at_ms = now_ms() + ACCEPT_PAUSE_MS;
}

static void resume_accepting(struct server *s)
{
    if (watch(s, EPOLL_CTL_MOD, s->listen_fd, EPOLLIN) < 0)
        die("epoll_ctl: %s", strerror(errno));
    s->accepting = true;
}

/* close() also takes the socket out of the epoll set, because no other
 * descriptor refers to it (no dup(), no fork()). */
static void close_connection(struct server *s, int fd, const char *why)
{
    struct connection *c = &s->conns[fd];

    free(c->pending);
    memset(c, 0, sizeof *c);
    close_or_log(fd);
    s->open_count--;
    log_info("fd %d: client %s (%lu open)", fd, why, s->open_count);
    if (!s->accepting)
        resume_accepting(s);
}

static void add_connection(struct server *s, int fd, const struct sockaddr *sa, socklen_t len)
{
    char peer[ADDRESS_STRLEN];

    if ((size_t)fd >= s->max_fds) {  /* the limit was raised behind our back */
        log_error("descriptor %d is beyond the table; dropping a client", fd);
        close_or_log(fd);
        return;
    }
    if (watch(s, EPOLL_CTL_ADD, fd, EPOLLIN) < 0) {
        log_error("epoll_ctl: %s; dropping a client", strerror(errno));
        close_or_log(fd);
        return;
    }
    s->conns[fd].open = true;
    if (fd > s->highest_fd)
        s->highest_fd = fd;
    s->open_count++;
    s->served++;
    net_format_address(sa, len, peer, sizeof peer);
    log_info("fd %d: client %s connected (%lu open)", fd, peer, s->open_count);
}

/* Take every client waiting in the queue, until accept4() says EAGAIN:
 * there may be many behind the one readiness event. */
static void accept_clients(struct server *s)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            add_connection(s, fd, (struct sockaddr *)&ss, len);
            continue;
        }
        if (errno == EAGAIN)  /* the queue is empty */
            return;
        switch (net_accept_failure(errno)) {
        case ACCEPT_RETRY:
            continue;
        case ACCEPT_EXHAUSTED:
            log_error("accept4: %s; pausing accepts", strerror(errno));
            pause_accepting(s);
            return;
        case ACCEPT_BUG:
            die("accept4: %s", strerror(errno));
        }
    }
}

/* Keep what send() did not take. Until the client has read it, we stop
 * reading from this client and watch only for room to write (EPOLLOUT):
 * a client that sends and never reads costs at most one read's worth of
 * memory, and gets no more of our time than its socket will take. */
static void keep_pending(struct server *s, int fd, const char *data, size_t len)
{
    struct connection *c = &s->conns[fd];

    c->pending = malloc(len);
    if (c->pending == NULL) {
        close_connection(s, fd, "dropped: out of memory");
        return;
    }
    memcpy(c->pending, data, len);
    c->pending_len = (uint32_t)len;
    c->pending_sent = 0;
    if (watch(s, EPOLL_CTL_MOD, fd, EPOLLOUT) < 0)
        close_connection(s, fd, "dropped: epoll_ctl failed");
}

/* Closes a connection whose recv() or send() failed, saying why. */
static void drop_connection(struct server *s, int fd, int err)
{
    char why[160];

    snprintf(why, sizeof why, "dropped: %s", strerror(err));
    close_connection(s, fd, why);
}

/* send() on a nonblocking socket takes what fits in the socket's buffer
 * and returns at once: a short count, or EAGAIN when nothing fits. Returns
 * the bytes sent, or -1 after closing a connection that is gone (EPIPE or
 * ECONNRESET; main() ignores SIGPIPE, so they cannot kill us). */
static ssize_t send_some(struct server *s, int fd, const char *data, size_t len)
{
    ssize_t n = send(fd, data, len, 0);

    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        drop_connection(s, fd, errno);
        return -1;
    }
    s->echoed += (size_t)n;
    return n;
}

/* Readable: read one chunk and echo it at once. One chunk per event keeps
 * the loop fair: a fast sender cannot starve the others, and level
 * triggering brings us back for the rest. */
static void read_and_echo(struct server *s, int fd)
{
    ssize_t n = recv(fd, s->buf, sizeof s->buf, 0);
    ssize_t sent;

    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            drop_connection(s, fd, errno);
        return;
    }
    /* 0: the client closed its side. Nothing is pending (we only read when
     * nothing is), so everything it sent has been echoed: close. */
    if (n == 0) {
        close_connection(s, fd, "disconnected");
        return;
    }
    sent = send_some(s, fd, s->buf, (size_t)n);
    if (sent >= 0 && sent < n)
        keep_pending(s, fd, s->buf + sent, (size_t)(n - sent));
}

/* Writable: send what is pending. Once it is all out, free the buffer and
 * go back to reading. */
static void send_pending(struct server *s, int fd)
{
    struct connection *c = &s->conns[fd];
    ssize_t n = send_some(s, fd, c->pending + c->pending_sent,
                          c->pending_len - c->pending_sent);

    if (n < 0)
        return;
    c->pending_sent += (uint32_t)n;
    if (c->pending_sent < c->pending_len)
        return;
    free(c->pending);
    c->pending = NULL;
    c->pending_len = c->pending_sent = 0;
    if (watch(s, EPOLL_CTL_MOD, fd, EPOLLIN) < 0)
        close_connection(s, fd, "dropped: epoll_ctl failed");
}

/* A connection watches either EPOLLIN or EPOLLOUT, never both, so its state
 * says what the event means. EPOLLERR (an error is pending, such as a
 * reset) and EPOLLHUP (both directions are shut) are reported either way;
 * the recv() or send() that follows returns the error, or the end of the
 * data, and the connection is closed. */
static void handle_client_event(struct server *s, int fd)
{
    if (s->conns[fd].pending != NULL)
        send_pending(s, fd);
    else
        read_and_echo(s, fd);
}

static void handle_signal(struct server *s)
{
    struct signalfd_siginfo si;
    ssize_t n = read(s->signal_fd, &si, sizeof si);

    if (n != (ssize_t)sizeof si) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        die("read signalfd: %s", n < 0 ? strerror(errno) : "short read");
    }
    log_info("%s: shutting down", strsignal((int)si.ssi_signo));
    s->running = false;
}

static void run_loop(struct server *s)
{
    struct epoll_event events[MAX_EVENTS];

    while (s->running) {
        int timeout = -1;  /* wait for as long as it takes */
        int n;

        if (!s->accepting) {  /* read the clock once: it moves between reads */
            long long left = s->resume_at_ms - now_ms();

            timeout = left > 0 ? (int)left : 0;
        }
        n = epoll_wait(s->epoll_fd, events, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;

            if (fd == s->listen_fd)
                accept_clients(s);
            else if (fd == s->signal_fd)
                handle_signal(s);
            else
                handle_client_event(s, fd);
        }
        if (!s->accepting && now_ms() >= s->resume_at_ms)
            resume_accepting(s);
    }
}

/* A nonblocking listening socket: accept4() fails with EAGAIN when the
 * queue is empty, instead of waiting for the next client. The loop needs
 * that to take every waiting client in one wakeup and know when to stop.
 * It also keeps "readable" from turning into a wait that freezes every
 * other client, should the queue empty before accept4() runs: another
 * process or thread accepting on the same socket may take the client
 * first, and on some systems a client that resets while queued is removed
 * (man 2 accept). Linux keeps that one: accept4() returns it, recv()
 * returns what it sent, if anything, and then fails with ECONNRESET. */
static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        die("fcntl O_NONBLOCK: %s", strerror(errno));
}

static void setup(struct server *s, const struct options *opts)
{
    char err[256];

    ignore_sigpipe();
    /* Every descriptor the loop writes to is part of the loop, stderr too.
     * A log line is a write(2), and a write to a pipe whose reader has
     * stalled, or to a terminal stopped with Ctrl-S, waits: the one thread
     * would stop there, and every client with it, as surely as in a
     * blocking recv(). Clients make log lines just by connecting, so they
     * could fill the pipe at will. From here on, a line stderr cannot take
     * at once is dropped and counted instead. */
    log_set_nonblocking();
    s->max_fds = raise_open_file_limit(MAX_DESCRIPTORS);
    /* calloc() of a large table maps zeroed pages that take no memory until
     * first touched: only the slots of descriptors in use ever cost RAM. */
    s->conns = calloc(s->max_fds, sizeof *s->conns);
    if (s->conns == NULL)
        die("cannot allocate %zu connection slots", s->max_fds);
    s->listen_fd = net_listen(opts->address, opts->port, LISTEN_BACKLOG, err, sizeof err);
    if (s->listen_fd < 0)
        die("%s", err);
    set_nonblocking(s->listen_fd);
    s->signal_fd = open_signal_fd();
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epoll_fd < 0)
        die("epoll_create1: %s", strerror(errno));
    if (watch(s, EPOLL_CTL_ADD, s->listen_fd, EPOLLIN) < 0 ||
        watch(s, EPOLL_CTL_ADD, s->signal_fd, EPOLLIN) < 0)
        die("epoll_ctl: %s", strerror(errno));
    s->running = true;
    s->accepting = true;
}

static void teardown(struct server *s)
{
    for (int fd = 0; fd <= s->highest_fd; fd++)
        if (s->conns[fd].open)
            close_connection(s, fd, "closed by shutdown");
    free(s->conns);
    close_or_log(s->listen_fd);
    close_or_log(s->signal_fd);
    close_or_log(s->epoll_fd);
}

int main(int argc, char **argv)
{
    /* static: one server for the whole run, and it starts zeroed. */
    static struct server server;
    struct options opts;

    options_parse(argc, argv, &opts);
    log_set_quiet(opts.quiet);
    setup(&server, &opts);
    net_announce(server.listen_fd);
    run_loop(&server);
    teardown(&server);
    log_notice("served %llu connections, echoed %llu bytes", server.served, server.echoed);
    return 0;
}
