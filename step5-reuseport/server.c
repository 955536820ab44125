/* Step 5: every core: step 4's event loop, once per CPU, in one process.
 *
 * Step 4's one thread can keep one core busy and no more. Here N threads
 * (-w N, by default one per online CPU) each run step 4's loop, with its
 * own epoll instance, its own listening socket and its own connections.
 * All the listening sockets are bound to the same address and port with
 * SO_REUSEPORT, and the kernel puts each new connection in the queue of
 * one of them, chosen by a hash of the connection's addresses and ports:
 * the loops never hand a client to each other, and share no state that
 * the echo path would need to lock.
 *
 * What the loops do share, and why that is safe:
 * - the descriptor numbers: one table per process, so a loop may get a
 *   number another loop has just closed. Each loop has a table of its own
 *   (see struct server), so nothing is left of the old client in it.
 * - the open-file limit (RLIMIT_NOFILE) is per process: one loop's
 *   clients can use up the descriptors another loop needs to accept. Each
 *   loop pauses accepting on its own, as step 4 does (pause_accepting).
 * - the log: every line is one write(2), under a lock of the log's own
 *   (common/log.c), so lines from two loops are never mixed, and each
 *   starts with the id of the thread (the loop) that wrote it.
 * - stop_fd, which only the main thread writes, once, to stop them all.
 */
#include "fdlimit.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Each loop accepts for thousands of clients: let each queue be as deep as
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

/* One per event loop: what was step 4's whole server, now run by a thread
 * of its own. Nothing in it is touched by another thread while the loops
 * run; main() reads the counts once it has joined the thread.
 *
 * The connection table too is the loop's own. A single table indexed by
 * descriptor would also work: a descriptor belongs to the one loop that
 * accepted it until that loop closes it, and the kernel hands the number
 * out again only after close(), so no two loops ever use a slot at once.
 * But that rule lives in the kernel, where neither the C memory model nor
 * ThreadSanitizer can see it, and at shutdown each loop would have to find
 * its own connections among everyone's. One table per loop costs address
 * space, N times max_fds slots, and memory only for the pages of slots a
 * loop has used (calloc(), see setup()). */
struct server {
    int epoll_fd;
    int listen_fd;
    int stop_fd;                 /* readable once the loops must stop */
    pthread_t thread;
    pid_t tid;                   /* the thread's id, as in its log lines */
    bool running;
    bool accepting;              /* false while out of descriptors */
    long long resume_at_ms;      /* when to try accepting again */
    struct connection *conns;    /* conns[fd], one per possible descriptor */
    size_t max_fds;              /* slots in conns */
    int highest_fd;              /* the highest descriptor a client has had */
    unsigned long open_count;
    unsigned long long served;   /* connections accepted */
    unsigned long long echoed;   /* bytes sent back */
    /* Only one of the loop's connections is read at a time, so they share
     * one buffer. The loops read at the same time: one buffer each. */
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

/* A signal sent to the process goes to any one of its threads that does
 * not block it (man 7 signal): to a loop, in the middle of its work. So
 * SIGINT and SIGTERM are blocked before any loop starts (a new thread
 * inherits the mask of the one that creates it, man 3 pthread_create),
 * and stay pending until the main thread takes them with sigwaitinfo().
 * A signalfd watched by every loop would not do: a pending signal is
 * read once, by one reader, so only one loop would hear of it. The main
 * thread tells them all through stop_fd instead. Unlike steps 1 to 3,
 * each loop ends and teardown() closes every connection at once, then
 * reports. It does not drain: pending echo is dropped, and a client whose
 * bytes are still unread gets a reset (ECONNRESET) instead of the end of
 * the stream. */
static void block_stop_signals(sigset_t *mask)
{
    int rc;

    sigemptyset(mask);
    sigaddset(mask, SIGINT);
    sigaddset(mask, SIGTERM);
    /* pthread_sigmask(), since sigprocmask() is unspecified in a process
     * with threads; it returns the error number instead of setting errno. */
    rc = pthread_sigmask(SIG_BLOCK, mask, NULL);
    if (rc != 0)
        die("pthread_sigmask: %s", strerror(rc));
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
 * connection closes and frees a descriptor, or the pause has passed. The
 * limit is the process's, so every loop may get here at once, each for
 * its own socket. A loop hears only of its own closes: a descriptor that
 * another loop frees waits, for this one, until its pause is over. */
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
    char why[128];

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
            log_error("accept4: %s; pausing accepts", strerror_r(errno, why, sizeof why));
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

/* Closes a connection whose recv() or send() failed, saying why.
 * strerror_r(): strerror() may use one buffer for every thread. */
static void drop_connection(struct server *s, int fd, int err)
{
    char why[160], reason[128];

    snprintf(why, sizeof why, "dropped: %s", strerror_r(err, reason, sizeof reason));
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
            else if (fd == s->stop_fd)  /* not read: it stays readable for all */
                s->running = false;
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

/* man 7 socket: SO_REUSEPORT lets sockets share one address and port if
 * every one of them, the first included, sets it before bind(), and all
 * have the same effective user ID. The kernel checks that as a socket
 * binds, and again as it listens, against the sockets on the port at that
 * moment. So a second copy of this server, whose sockets all set the
 * option first, would not fail with "address already in use": it would
 * join the group, and the kernel would give it a share of our clients.
 *
 * Hence the order here. The first socket binds and listens as in step 4,
 * without the option (net_listen()): while it lacks it, any other socket
 * that binds or listens on the port fails, with SO_REUSEPORT or without,
 * and so does that copy's first socket, which lacks it too, whatever our
 * sockets have since. Only then does our first socket get the option, so
 * that the other loops' sockets, which set it before they bind, may join.
 * (A program of the same user that does set it before it binds may still
 * join, from then on: against that, the kernel's only guard is the user
 * ID. See tests/step5-reuseport.bats, "second server".) */
static int listen_first(const struct options *opts)
{
    char err[256];
    int one = 1;
    int fd = net_listen(opts->address, opts->port, LISTEN_BACKLOG, err, sizeof err);

    if (fd < 0)
        die("%s", err);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        die("setsockopt SO_REUSEPORT: %s", strerror(errno));
    return fd;
}

/* Every other loop's socket: SO_REUSEPORT, then bind() to the address the
 * first one has, which holds the port the kernel chose with -p 0. From
 * listen() on, the kernel hashes each new connection's addresses and
 * ports to pick the socket, of all those in the group, whose queue gets
 * it: the same client address and port always land on the same loop. */
static int listen_beside(const struct sockaddr *sa, socklen_t len)
{
    char where[ADDRESS_STRLEN];
    int one = 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    net_format_address(sa, len, where, sizeof where);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        die("setsockopt: %s", strerror(errno));
    if (bind(fd, sa, len) < 0)
        die("cannot bind %s: %s", where, strerror(errno));
    if (listen(fd, LISTEN_BACKLOG) < 0)
        die("cannot listen on %s: %s", where, strerror(errno));
    return fd;
}

/* One listening socket per loop, all on one address and port. */
static void open_listeners(struct server *loops, int n, const struct options *opts)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    loops[0].listen_fd = listen_first(opts);
    if (getsockname(loops[0].listen_fd, (struct sockaddr *)&ss, &len) < 0)
        die("getsockname: %s", strerror(errno));
    for (int i = 1; i < n; i++)
        loops[i].listen_fd = listen_beside((struct sockaddr *)&ss, len);
}

/* What the loops share is set up once, before any of them starts. */
static size_t setup_process(sigset_t *stop_signals)
{
    ignore_sigpipe();
    /* Every descriptor the loop writes to is part of the loop, stderr too.
     * A log line is a write(2), and a write to a pipe whose reader has
     * stalled, or to a terminal stopped with Ctrl-S, waits: a loop would
     * stop there, and every client of that loop with it, as surely as in a
     * blocking recv(); the other loops would stop at their next line.
     * Clients make log lines just by connecting, so they could fill the
     * pipe at will. From here on, a line stderr cannot take at once is
     * dropped and counted instead. */
    log_set_nonblocking();
    block_stop_signals(stop_signals);
    return raise_open_file_limit(MAX_DESCRIPTORS);
}

/* One loop's epoll instance, with its listening socket and stop_fd in it. */
static void setup(struct server *s, int stop_fd, size_t max_fds)
{
    s->max_fds = max_fds;
    /* calloc() of a large table maps zeroed pages that take no memory until
     * first touched: only the slots of descriptors in use ever cost RAM. */
    s->conns = calloc(s->max_fds, sizeof *s->conns);
    if (s->conns == NULL)
        die("cannot allocate %zu connection slots", s->max_fds);
    set_nonblocking(s->listen_fd);
    s->stop_fd = stop_fd;
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epoll_fd < 0)
        die("epoll_create1: %s", strerror(errno));
    if (watch(s, EPOLL_CTL_ADD, s->listen_fd, EPOLLIN) < 0 ||
        watch(s, EPOLL_CTL_ADD, s->stop_fd, EPOLLIN) < 0)
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
    close_or_log(s->epoll_fd);
}

/* Each loop's thread: step 4's main(), less what the loops share. */
static void *loop_main(void *arg)
{
    struct server *s = arg;

    s->tid = gettid();
    run_loop(s);
    teardown(s);
    return NULL;
}

static void start_loop(struct server *s)
{
    int rc = pthread_create(&s->thread, NULL, loop_main, s);

    if (rc != 0)
        die("pthread_create: %s", strerror(rc));
}

/* An eventfd is a counter in the kernel: readable while it is above zero.
 * No loop reads it, so once written it stays readable, level-triggered,
 * for every loop's epoll_wait(). */
static int open_stop_fd(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd < 0)
        die("eventfd: %s", strerror(errno));
    return fd;
}

/* The main thread's whole job while the loops run. sigwaitinfo() fails
 * with EINTR after a stop and continue (man 7 signal): wait again. */
static void wait_for_stop_signal(const sigset_t *mask)
{
    int signo;

    while ((signo = sigwaitinfo(mask, NULL)) < 0)
        if (errno != EINTR)
            die("sigwaitinfo: %s", strerror(errno));
    log_info("%s: shutting down", strsignal(signo));
}

static void stop_loops(int stop_fd)
{
    uint64_t one = 1;
    ssize_t n;

    while ((n = write(stop_fd, &one, sizeof one)) < 0 && errno == EINTR)
        continue;
    if (n != (ssize_t)sizeof one)
        die("write eventfd: %s", n < 0 ? strerror(errno) : "short write");
}

int main(int argc, char **argv)
{
    struct options opts;
    struct server *loops;
    sigset_t stop_signals;
    unsigned long long served = 0, echoed = 0;
    size_t max_fds;
    int stop_fd, rc;

    options_parse_loops(argc, argv, &opts);
    log_set_quiet(opts.quiet);
    max_fds = setup_process(&stop_signals);
    stop_fd = open_stop_fd();
    loops = calloc((size_t)opts.loops, sizeof *loops);
    if (loops == NULL)
        die("cannot allocate %d loops", opts.loops);
    open_listeners(loops, opts.loops, &opts);
    for (int i = 0; i < opts.loops; i++)
        setup(&loops[i], stop_fd, max_fds);
    for (int i = 0; i < opts.loops; i++)
        start_loop(&loops[i]);
    net_announce(loops[0].listen_fd);
    wait_for_stop_signal(&stop_signals);
    stop_loops(stop_fd);
    for (int i = 0; i < opts.loops; i++) {
        struct server *s = &loops[i];

        rc = pthread_join(s->thread, NULL);
        if (rc != 0)
            die("pthread_join: %s", strerror(rc));
        log_notice("loop %d: served %llu connections, echoed %llu bytes",
                   (int)s->tid, s->served, s->echoed);
        served += s->served;
        echoed += s->echoed;
    }
    close_or_log(stop_fd);
    free(loops);
    log_notice("served %llu connections, echoed %llu bytes", served, echoed);
    return 0;
}
