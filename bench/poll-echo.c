/* poll-echo: step 4's event loop on poll(2) instead of epoll, for the
 * bench to compare the two. Not a step of the course: the same server,
 * one process, one thread, nonblocking sockets, level-triggered, with one
 * difference, how it asks which sockets are ready.
 *
 * epoll keeps the list of watched sockets in the kernel: epoll_ctl()
 * changes it when a connection comes, goes or changes what it waits for,
 * and epoll_wait() hands back only the sockets that are ready. poll() has
 * no such memory. Every call passes the whole array, one struct pollfd per
 * watched descriptor; the kernel reads every entry, checks that socket and
 * writes every revents back, and the program then looks through the array
 * for the entries that are set. One client echoing beside 10,000 idle ones
 * pays for all 10,001 on every call: `make bench` measures what that costs.
 */
#include "fdlimit.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* As in step 4. */
#define LISTEN_BACKLOG SOMAXCONN
#define READ_BUFFER_SIZE 65536
#define ACCEPT_PAUSE_MS 1000
#define MAX_DESCRIPTORS (1 << 20)

/* The first two entries of the array are not clients. */
#define LISTEN_SLOT 0
#define SIGNAL_SLOT 1
#define FIRST_CLIENT_SLOT 2

/* One per client, found by its descriptor, as in step 4, plus where its
 * entry is in the array given to poll(). */
struct connection {
    size_t slot;           /* its index in fds[]; 0 when not open */
    uint32_t pending_len;  /* bytes in pending */
    uint32_t pending_sent; /* of which the socket has taken this many */
    char *pending;         /* echo the socket could not take yet, or NULL */
};

struct server {
    int listen_fd;
    int signal_fd;
    bool running;
    bool accepting;
    long long resume_at_ms;
    /* What poll() is given: the listener, the signalfd, then one entry per
     * client, with no gaps. (An entry whose fd is negative is ignored, man
     * 2 poll says, but it is still in the array poll() goes through.) */
    struct pollfd *fds;
    size_t nfds;
    struct connection *conns;  /* conns[fd], one per possible descriptor */
    size_t max_fds;
    unsigned long long served;
    unsigned long long echoed;
    char buf[READ_BUFFER_SIZE];
};


/* As in step 4: SIGINT and SIGTERM become a readable descriptor, one more
 * entry in the array. */
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

static long long now_ms(void)
{
    struct timespec now;

    if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
        die("clock_gettime: %s", strerror(errno));
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

/* Out of descriptors, the listener stays readable while accept4() fails:
 * asking for no events on it keeps poll() from returning for it at once,
 * again and again (step 4 does the same with EPOLL_CTL_MOD). */
static void pause_accepting(struct server *s)
{
    s->fds[LISTEN_SLOT].events = 0;
    s->accepting = false;
    s->resume_at_ms = now_ms() + ACCEPT_PAUSE_MS;
}

static void resume_accepting(struct server *s)
{
    s->fds[LISTEN_SLOT].events = POLLIN;
    s->accepting = true;
}

/* The last entry moves into the closed one's slot, so the array keeps no
 * gaps. The loop walks the array from its end, so the entry that moves has
 * been handled already in this round. */
static void close_connection(struct server *s, int fd, const char *why)
{
    struct connection *c = &s->conns[fd];
    size_t last = s->nfds - 1;

    if (c->slot != last) {
        s->fds[c->slot] = s->fds[last];
        s->conns[s->fds[c->slot].fd].slot = c->slot;
    }
    s->nfds--;
    free(c->pending);
    memset(c, 0, sizeof *c);
    close_or_log(fd);
    log_info("fd %d: client %s (%zu open)", fd, why, s->nfds - FIRST_CLIENT_SLOT);
    if (!s->accepting)
        resume_accepting(s);
}

/* A new entry goes at the end, with no events returned yet: the loop has
 * walked past it, and sees it on the next poll(). */
static void add_connection(struct server *s, int fd, const struct sockaddr *sa, socklen_t len)
{
    char peer[ADDRESS_STRLEN];

    if ((size_t)fd >= s->max_fds) {  /* the limit was raised behind our back */
        log_error("descriptor %d is beyond the table; dropping a client", fd);
        close_or_log(fd);
        return;
    }
    /* Every descriptor is below max_fds, so there are never more than
     * max_fds of them to watch: the array cannot overflow. */
    s->fds[s->nfds] = (struct pollfd){ .fd = fd, .events = POLLIN, .revents = 0 };
    s->conns[fd].slot = s->nfds++;
    s->served++;
    net_format_address(sa, len, peer, sizeof peer);
    log_info("fd %d: client %s connected (%zu open)", fd, peer, s->nfds - FIRST_CLIENT_SLOT);
}

/* As in step 4: every client in the queue, until EAGAIN. */
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
        if (errno == EAGAIN)
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

/* As in step 4: keep what send() did not take, and wait for room
 * (POLLOUT) instead of reading more from this client. */
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
    s->fds[c->slot].events = POLLOUT;
}

static void drop_connection(struct server *s, int fd, int err)
{
    char why[160];

    snprintf(why, sizeof why, "dropped: %s", strerror(err));
    close_connection(s, fd, why);
}

/* As in step 4: the bytes a nonblocking send() took, 0 for none (EAGAIN),
 * or -1 after closing a connection that is gone (EPIPE, ECONNRESET). */
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

/* As in step 4: one chunk per event, echoed at once. */
static void read_and_echo(struct server *s, int fd)
{
    ssize_t n = recv(fd, s->buf, sizeof s->buf, 0);
    ssize_t sent;

    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            drop_connection(s, fd, errno);
        return;
    }
    if (n == 0) {
        close_connection(s, fd, "disconnected");
        return;
    }
    sent = send_some(s, fd, s->buf, (size_t)n);
    if (sent >= 0 && sent < n)
        keep_pending(s, fd, s->buf + sent, (size_t)(n - sent));
}

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
    s->fds[c->slot].events = POLLIN;
}

/* POLLERR and POLLHUP come whatever was asked for, as with epoll: the
 * recv() or send() that follows returns the error or the end of the data.
 * POLLNVAL means an entry names a descriptor that is not open: this
 * program's own mistake. */
static void handle_client_event(struct server *s, int fd, short revents)
{
    if (revents & POLLNVAL)
        die("poll: descriptor %d is not open", fd);
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

/* poll() returns how many entries have revents set; the loop looks at
 * entries until it has found that many. Walking from the end lets
 * close_connection() fill a slot with an entry already handled. */
static void run_loop(struct server *s)
{
    while (s->running) {
        int timeout = -1;
        int ready;

        if (!s->accepting) {
            long long left = s->resume_at_ms - now_ms();

            timeout = left > 0 ? (int)left : 0;
        }
        ready = poll(s->fds, s->nfds, timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %s", strerror(errno));
        }
        for (size_t i = s->nfds; i-- > 0 && ready > 0;) {
            struct pollfd p = s->fds[i];

            if (p.revents == 0)
                continue;
            ready--;
            if (i == LISTEN_SLOT)
                accept_clients(s);
            else if (i == SIGNAL_SLOT)
                handle_signal(s);
            else
                handle_client_event(s, p.fd, p.revents);
        }
        if (!s->accepting && now_ms() >= s->resume_at_ms)
            resume_accepting(s);
    }
}

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
    log_set_nonblocking();  /* as in step 4: the loop never waits on its log */
    s->max_fds = raise_open_file_limit(MAX_DESCRIPTORS);
    /* As in step 4, calloc() costs memory only for the pages touched. */
    s->conns = calloc(s->max_fds, sizeof *s->conns);
    s->fds = calloc(s->max_fds, sizeof *s->fds);
    if (s->conns == NULL || s->fds == NULL)
        die("cannot allocate %zu connection slots", s->max_fds);
    s->listen_fd = net_listen(opts->address, opts->port, LISTEN_BACKLOG, err, sizeof err);
    if (s->listen_fd < 0)
        die("%s", err);
    set_nonblocking(s->listen_fd);
    s->signal_fd = open_signal_fd();
    s->fds[LISTEN_SLOT] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
    s->fds[SIGNAL_SLOT] = (struct pollfd){ .fd = s->signal_fd, .events = POLLIN };
    s->nfds = FIRST_CLIENT_SLOT;
    s->running = true;
    s->accepting = true;
}

static void teardown(struct server *s)
{
    while (s->nfds > FIRST_CLIENT_SLOT)
        close_connection(s, s->fds[s->nfds - 1].fd, "closed by shutdown");
    free(s->conns);
    free(s->fds);
    close_or_log(s->listen_fd);
    close_or_log(s->signal_fd);
}

int main(int argc, char **argv)
{
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
