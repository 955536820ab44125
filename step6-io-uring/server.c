/* Step 6: a completion-driven echo server: one process, one thread, io_uring.
 *
 * Step 4 asks the kernel which sockets are ready (epoll_wait()), then makes
 * a system call for each thing it does about them: accept4(), recv(),
 * send(), epoll_ctl(). Here the server asks for the work itself. It writes
 * requests ("accept on the listening socket", "receive on fd 7", "send
 * these bytes on fd 9") into a submission queue it shares with the kernel,
 * and the kernel writes each result into a completion queue, also shared.
 * One io_uring_enter() hands over every request queued and waits for the
 * next results, so a single system call serves many messages. A request
 * that cannot be done yet (a receive on a quiet socket) waits in the
 * kernel, which does it once it can. ring.c is the plumbing.
 *
 * Every connection has at most one request in flight, which is its state:
 * a receive, or a send of what the last receive brought, or a close.
 */
#include "fdlimit.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "ring.h"
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* One thread accepts for thousands of clients: let the queue be as deep as
 * the kernel allows (net.core.somaxconn caps it). See step 1. */
#define LISTEN_BACKLOG SOMAXCONN
/* The sizes of the rings. A test build (tests/fixtures/Makefile) makes
 * them tiny, so that what is rare here happens all the time there: a full
 * submission queue, an empty buffer ring, a full completion queue. */
#ifndef SQ_ENTRIES
#define SQ_ENTRIES 256     /* requests queued between two io_uring_enter() */
#endif
#ifndef CQ_ENTRIES
#define CQ_ENTRIES 8192    /* completions waiting to be read */
#endif
#ifndef BUFFER_COUNT
#define BUFFER_COUNT 512   /* provided receive buffers, a power of two */
#endif
#define BUFFER_SIZE 16384  /* bytes each */
#define BUFFER_GROUP 0
/* How long accepting stays paused after running out of descriptors, if no
 * connection closes first. */
#define ACCEPT_PAUSE_MS 1000
/* The table of connections has one slot per possible descriptor. Where
 * the hard limit on descriptors is huge (some systems allow a billion),
 * use only this many. */
#define MAX_DESCRIPTORS (1 << 20)

/* What a completion is about: each request carries 64 bits of user_data,
 * which the kernel copies into its completion untouched. Ours hold the
 * kind of request, the descriptor, and the connection's generation. */
enum request {
    REQ_ACCEPT = 1,
    REQ_RECV,
    REQ_SEND,
    REQ_CLOSE,
    REQ_SIGNAL,    /* the read of the signalfd */
    REQ_PAUSE,     /* the timer that ends a pause in accepting */
    REQ_CANCEL,    /* shutdown's cancellation of everything in flight */
};
#define GENERATION_BITS 24
#define GENERATION_MASK ((1u << GENERATION_BITS) - 1)

enum slot_state {
    SLOT_FREE,
    SLOT_OPEN,     /* a client's: a receive or a send in flight, or waiting for a buffer */
    SLOT_CLOSING,  /* its close is in flight */
};

/* One per client, found by its descriptor number, as in step 4. An idle
 * connection is this slot and a receive waiting in the kernel: no buffer
 * of its own (the kernel picks one from the buffer ring when data comes). */
struct connection {
    uint8_t state;          /* enum slot_state */
    /* The kernel may hand a descriptor number out again as soon as it has
     * closed it, before we have read that close's completion (see
     * add_connection()). So a completion names the connection by number
     * and generation, and one whose generation is not the slot's is about
     * a connection that had the number before: stale, it must not touch
     * the slot. The generation grows by one per connection in the slot; at
     * 24 bits it comes round again after 16 million connections on one
     * number, and no completion is that late. */
    uint32_t generation;
    uint32_t pending_len;   /* bytes in pending */
    uint32_t pending_sent;  /* of which the kernel has sent this many */
    char *pending;          /* the echo being sent, or NULL */
    int next_waiting;       /* the next descriptor on the queue for a buffer, or -1 */
};

struct server {
    struct ring ring;
    struct buf_ring buffers;
    int listen_fd;
    int signal_fd;
    bool running;
    bool accept_armed;           /* a multishot accept is in the kernel */
    bool accept_paused;          /* out of descriptors: not accepting for now */
    bool pause_timer_armed;
    unsigned long in_flight;     /* requests whose last completion has not come */
    struct connection *conns;    /* conns[fd], one per possible descriptor */
    size_t max_fds;              /* slots in conns */
    int highest_fd;              /* the highest descriptor a client has had */
    int waiting_head, waiting_tail;  /* the queue for a buffer, or -1 */
    bool quiet;
    unsigned long open_count;
    unsigned long long served;   /* connections accepted */
    unsigned long long echoed;   /* bytes sent back */
    unsigned long long short_sends;      /* sends that took less than asked */
    unsigned long long no_buffer;        /* receives that found the buffer ring empty */
    unsigned long long accept_rearmed;   /* multishot accepts the kernel ended */
    /* Memory requests point to, which must outlive the function that
     * queues them: the kernel reads the timer's timespec when the request
     * is submitted, and writes the signalfd's siginfo when the read
     * completes. So they live here, not on a stack. */
    struct __kernel_timespec pause_time;
    struct signalfd_siginfo siginfo;
};

static uint64_t tag(enum request req, uint32_t generation, int fd)
{
    return (uint64_t)req << 56 | (uint64_t)(generation & GENERATION_MASK) << 32 | (uint32_t)fd;
}

static enum request tag_request(uint64_t user_data)
{
    return (enum request)(user_data >> 56);
}

static uint32_t tag_generation(uint64_t user_data)
{
    return (uint32_t)(user_data >> 32) & GENERATION_MASK;
}

static int tag_fd(uint64_t user_data)
{
    return (int)(uint32_t)user_data;
}

/* An SQE for a request, counted in flight until its last completion. */
static struct io_uring_sqe *new_request(struct server *s, uint8_t opcode, int fd,
                                        uint64_t user_data)
{
    struct io_uring_sqe *sqe = ring_get_sqe(&s->ring);

    sqe->opcode = opcode;
    sqe->fd = fd;
    sqe->user_data = user_data;
    s->in_flight++;
    return sqe;
}


/* With SIGINT and SIGTERM blocked, they are not delivered to a handler but
 * kept pending, and the signalfd becomes readable: a read of it, queued
 * like any other request, completes when one arrives. Unlike step 4's,
 * it is not made nonblocking: the server never calls read() on it, and
 * io_uring, finding nothing to read, does not block in a read() either
 * but waits in the kernel for the descriptor to become readable. As in
 * step 4, the loop then ends, and teardown() closes every connection,
 * without draining. */
static int open_signal_fd(void)
{
    sigset_t mask;
    int fd;

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        die("sigprocmask: %s", strerror(errno));
    fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (fd < 0)
        die("signalfd: %s", strerror(errno));
    return fd;
}

static void read_signal(struct server *s)
{
    struct io_uring_sqe *sqe = new_request(s, IORING_OP_READ, s->signal_fd, tag(REQ_SIGNAL, 0, 0));

    sqe->addr = (uint64_t)(uintptr_t)&s->siginfo;
    sqe->len = sizeof s->siginfo;
    sqe->off = (uint64_t)-1;  /* no offset: a signalfd is not seekable */
}

/* One request that accepts client after client (IORING_ACCEPT_MULTISHOT,
 * Linux 5.19): each accepted connection is a completion flagged
 * IORING_CQE_F_MORE, meaning the request goes on. A completion without
 * the flag is its last: the kernel ends a multishot request on an error
 * (EMFILE, say), and also when it cannot post a completion because the
 * completion queue is full. Then it must be queued again. Neither the
 * listening socket nor the accepted ones are made nonblocking, as they
 * were in step 4: the server never calls accept4(), recv() or send() on
 * them. io_uring tries each request without blocking, and if it cannot
 * be done yet, waits for the socket to be ready. */
static void arm_accept(struct server *s)
{
    struct io_uring_sqe *sqe = new_request(s, IORING_OP_ACCEPT, s->listen_fd,
                                           tag(REQ_ACCEPT, 0, s->listen_fd));

    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_CLOEXEC;
    s->accept_armed = true;
}

/* Out of descriptors, the accept fails with EMFILE (or ENFILE), and the
 * kernel ends the multishot request. Queued again at once, it would fail
 * again at once, as long as no descriptor frees up: the loop would spin
 * the CPU, as step 4's would if it kept watching the listening socket.
 * Instead a timer (IORING_OP_TIMEOUT) ends the pause, unless a connection
 * closes first. One timer at a time: a pause that begins while the last
 * one's timer still runs ends with that timer, a little early, which at
 * worst brings another EMFILE and another pause. */
static void pause_accepting(struct server *s)
{
    struct io_uring_sqe *sqe;

    s->accept_paused = true;
    if (s->pause_timer_armed)
        return;
    s->pause_time.tv_sec = ACCEPT_PAUSE_MS / 1000;
    s->pause_time.tv_nsec = (ACCEPT_PAUSE_MS % 1000) * 1000000L;
    sqe = new_request(s, IORING_OP_TIMEOUT, -1, tag(REQ_PAUSE, 0, 0));
    sqe->addr = (uint64_t)(uintptr_t)&s->pause_time;
    sqe->len = 1;  /* one timespec */
    sqe->off = 0;  /* no count of completions to wait for: a plain timer */
    s->pause_timer_armed = true;
}

static void resume_accepting(struct server *s)
{
    s->accept_paused = false;
    if (!s->accept_armed)
        arm_accept(s);
}

/* A receive into whichever provided buffer the kernel picks
 * (IOSQE_BUFFER_SELECT from group BUFFER_GROUP). IORING_RECVSEND_POLL_FIRST:
 * wait for data before trying, since right after an echo the client has
 * usually not sent more yet; the buffer is picked only then. */
static void arm_receive(struct server *s, int fd)
{
    struct io_uring_sqe *sqe = new_request(s, IORING_OP_RECV, fd,
                                           tag(REQ_RECV, s->conns[fd].generation, fd));

    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUFFER_GROUP;
    sqe->len = BUFFER_SIZE;
    sqe->ioprio = IORING_RECVSEND_POLL_FIRST;
}

/* A send of what is left of the pending echo. If the socket's buffer is
 * full, the request waits in the kernel for room, then sends what fits:
 * maybe less than asked (a short send), and sent() sends the rest. A test build cuts every send
 * to half its length, to make that happen each time. */
static void send_pending(struct server *s, int fd)
{
    struct connection *c = &s->conns[fd];
    struct io_uring_sqe *sqe = new_request(s, IORING_OP_SEND, fd, tag(REQ_SEND, c->generation, fd));
    uint32_t len = c->pending_len - c->pending_sent;

#ifdef SHORT_SENDS
    if (len > 1)
        len /= 2;
#endif
    sqe->addr = (uint64_t)(uintptr_t)(c->pending + c->pending_sent);
    sqe->len = len;
}

/* The close goes through the ring too (IORING_OP_CLOSE), rather than
 * close(2): it costs no system call of its own. The kernel frees the
 * descriptor number when it runs the close, which is before we read its
 * completion; the slot stays SLOT_CLOSING until then (see closed()). By
 * then the connection has no other request in flight: with one request
 * at a time, a connection is closed only from the completion of its one
 * request. (Were one in flight, closing the descriptor would not end the
 * connection: the request holds a reference to the socket, which stays
 * open until the request ends.) */
static void close_connection(struct server *s, int fd, const char *why)
{
    struct connection *c = &s->conns[fd];

    free(c->pending);
    c->pending = NULL;
    c->pending_len = c->pending_sent = 0;
    c->state = SLOT_CLOSING;
    new_request(s, IORING_OP_CLOSE, fd, tag(REQ_CLOSE, c->generation, fd));
    s->open_count--;
    log_info("fd %d: client %s (%lu open)", fd, why, s->open_count);
    if (s->accept_paused && s->running)
        resume_accepting(s);
}

/* Closes a connection whose receive or send failed, saying why. */
static void drop_connection(struct server *s, int fd, int err)
{
    char why[160];

    snprintf(why, sizeof why, "dropped: %s", strerror(err));
    close_connection(s, fd, why);
}

/* The connection a completion is about, or NULL if it is stale: about a
 * connection that has closed, whose descriptor number may belong to a
 * newer one by now (see struct connection). */
static struct connection *connection_of(struct server *s, uint64_t user_data)
{
    int fd = tag_fd(user_data);
    struct connection *c;

    if (fd < 0 || (size_t)fd >= s->max_fds)
        return NULL;
    c = &s->conns[fd];
    if (c->state == SLOT_FREE || c->generation != tag_generation(user_data))
        return NULL;
    return c;
}

static void add_connection(struct server *s, int fd)
{
    struct connection *c;
    char peer[ADDRESS_STRLEN] = "(unknown address)";

    if ((size_t)fd >= s->max_fds) {  /* the limit was raised behind our back */
        log_error("descriptor %d is beyond the table; dropping a client", fd);
        close_or_log(fd);
        return;
    }
    /* The slot may still be SLOT_CLOSING: the kernel has run the close of
     * the connection that had this number (it could not hand the number
     * out again otherwise), but we may not have read that close's
     * completion yet, since io_uring does not promise to post completions
     * in the order their requests ran. The new generation makes it stale. */
    c = &s->conns[fd];
    c->state = SLOT_OPEN;
    c->generation = (c->generation + 1) & GENERATION_MASK;
    if (fd > s->highest_fd)
        s->highest_fd = fd;
    s->open_count++;
    s->served++;
    /* The multishot accept is given no address to fill in: each accept
     * would overwrite the last one's before we read it. Asking afterwards
     * costs a system call (getpeername()), made only for the log line. */
    if (!s->quiet) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;

        if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
            net_format_address((struct sockaddr *)&ss, len, peer, sizeof peer);
    }
    log_info("fd %d: client %s connected (%lu open)", fd, peer, s->open_count);
    arm_receive(s, fd);
}

static void accepted(struct server *s, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        s->accept_armed = false;
        s->in_flight--;
    }
    /* Shutting down: a client accepted just before the cancellation is
     * closed at once; nothing new may be queued now (see teardown()). */
    if (!s->running) {
        if (cqe->res >= 0)
            close_or_log(cqe->res);
        return;
    }
    if (cqe->res >= 0) {
        add_connection(s, cqe->res);
    } else {
        switch (net_accept_failure(-cqe->res)) {
        case ACCEPT_RETRY:
            break;
        case ACCEPT_EXHAUSTED:
            log_error("accept: %s; pausing accepts", strerror(-cqe->res));
            pause_accepting(s);
            return;
        case ACCEPT_BUG:
            die("accept: %s", strerror(-cqe->res));
        }
    }
    if (!s->accept_armed && !s->accept_paused) {
        s->accept_rearmed++;
        arm_accept(s);
    }
}

static void pause_over(struct server *s)
{
    s->in_flight--;
    s->pause_timer_armed = false;
    if (s->running && s->accept_paused)
        resume_accepting(s);
}

/* Copies what a receive brought out of its provided buffer, to send from.
 * The copy costs a memcpy(); sending from the provided buffer instead would
 * hold it until the client has read the echo, and clients that never read
 * would hold every buffer there is, leaving none for anybody else. False
 * if out of memory, having closed the connection. */
static bool keep_pending(struct server *s, int fd, const char *data, size_t len)
{
    struct connection *c = &s->conns[fd];

    c->pending = malloc(len);
    if (c->pending == NULL) {
        close_connection(s, fd, "dropped: out of memory");
        return false;
    }
    memcpy(c->pending, data, len);
    c->pending_len = (uint32_t)len;
    c->pending_sent = 0;
    return true;
}

/* The buffer ring was empty when data arrived (-ENOBUFS): every buffer was
 * between the kernel's receive and our reading of its completion. That is
 * not the connection's fault, and the data waits in its socket. Queue it,
 * and receive again once the loop has read the completions and given the
 * buffers back (rearm_waiting()). */
static void wait_for_buffer(struct server *s, int fd)
{
    struct connection *c = &s->conns[fd];

    s->no_buffer++;
    c->next_waiting = -1;
    if (s->waiting_tail >= 0)
        s->conns[s->waiting_tail].next_waiting = fd;
    else
        s->waiting_head = fd;
    s->waiting_tail = fd;
}

/* At most as many as there are buffers at a time: the rest would only
 * find the ring empty again. */
static void rearm_waiting(struct server *s)
{
    for (unsigned n = 0; n < BUFFER_COUNT && s->waiting_head >= 0; n++) {
        int fd = s->waiting_head;
        struct connection *c = &s->conns[fd];

        s->waiting_head = c->next_waiting;
        if (s->waiting_head < 0)
            s->waiting_tail = -1;
        arm_receive(s, fd);
    }
}

/* A receive is done. Whatever it says, a buffer it names (IORING_CQE_F_BUFFER,
 * the id in the upper 16 bits of flags) goes back to the kernel now, once,
 * under that id: a buffer kept is one fewer for every client, a buffer
 * given back twice or under another id could be filled by two receives at
 * once, and one client would be sent another's bytes. (Linux 6.18 names a
 * buffer only in a receive that brought data, keeping it at the end of a
 * stream or on an error, but nothing promises that.) */
static void received(struct server *s, const struct io_uring_cqe *cqe)
{
    int fd = tag_fd(cqe->user_data);
    struct connection *c = connection_of(s, cqe->user_data);
    bool kept = true;

    s->in_flight--;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned short bid = (unsigned short)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

        if (c != NULL && s->running && cqe->res > 0)
            kept = keep_pending(s, fd, buf_ring_buffer(&s->buffers, bid), (size_t)cqe->res);
        buf_ring_return(&s->buffers, bid);
    }
    if (c == NULL || !s->running || !kept)
        return;
    if (cqe->res == -ENOBUFS)
        wait_for_buffer(s, fd);
    else if (cqe->res == -EINTR || cqe->res == -EAGAIN)
        arm_receive(s, fd);  /* interrupted, or not possible yet: again */
    else if (cqe->res < 0)
        drop_connection(s, fd, -cqe->res);
    /* 0: the client closed its side. Nothing is pending (we receive only
     * when nothing is), so everything it sent has been echoed: close. */
    else if (cqe->res == 0)
        close_connection(s, fd, "disconnected");
    else
        send_pending(s, fd);
}

/* A send is done: the kernel took res bytes. Send the rest, if any; once
 * all is out, free the echo and receive again. No receive is in flight
 * while a send is: a client that sends and never reads gets no more of
 * our memory than one receive's worth, and its socket's buffer, once
 * full, stops it sending (as in step 4). */
static void sent(struct server *s, const struct io_uring_cqe *cqe)
{
    int fd = tag_fd(cqe->user_data);
    struct connection *c = connection_of(s, cqe->user_data);

    s->in_flight--;
    if (c == NULL || !s->running)
        return;
    if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
        send_pending(s, fd);  /* interrupted, or not possible yet: again */
        return;
    }
    /* EPIPE or ECONNRESET when the client has gone (main() ignores
     * SIGPIPE, so EPIPE cannot kill us). */
    if (cqe->res < 0) {
        drop_connection(s, fd, -cqe->res);
        return;
    }
    s->echoed += (unsigned)cqe->res;
    c->pending_sent += (uint32_t)cqe->res;
    if (c->pending_sent < c->pending_len) {
        s->short_sends++;
        send_pending(s, fd);
        return;
    }
    free(c->pending);
    c->pending = NULL;
    c->pending_len = c->pending_sent = 0;
    arm_receive(s, fd);
}

/* A close is done. If the slot still has the generation the close was
 * for, it is free; if not, the kernel has given the number to a newer
 * connection already, and the slot is that one's. */
static void closed(struct server *s, const struct io_uring_cqe *cqe)
{
    struct connection *c = connection_of(s, cqe->user_data);

    s->in_flight--;
    /* On Linux the descriptor is gone even when close fails. */
    if (cqe->res < 0)
        log_error("close fd %d: %s", tag_fd(cqe->user_data), strerror(-cqe->res));
    if (c != NULL)
        c->state = SLOT_FREE;
}

static void handle_signal(struct server *s, const struct io_uring_cqe *cqe)
{
    s->in_flight--;
    if (!s->running)
        return;
    if (cqe->res == (int)sizeof s->siginfo) {
        log_info("%s: shutting down", strsignal((int)s->siginfo.ssi_signo));
        s->running = false;
        return;
    }
    if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
        read_signal(s);
        return;
    }
    die("read signalfd: %s", cqe->res < 0 ? strerror(-cqe->res) : "short read");
}

static void handle_completion(struct server *s, const struct io_uring_cqe *cqe)
{
    switch (tag_request(cqe->user_data)) {
    case REQ_ACCEPT: accepted(s, cqe); break;
    case REQ_RECV:   received(s, cqe); break;
    case REQ_SEND:   sent(s, cqe); break;
    case REQ_CLOSE:  closed(s, cqe); break;
    case REQ_SIGNAL: handle_signal(s, cqe); break;
    case REQ_PAUSE:  pause_over(s); break;
    case REQ_CANCEL: s->in_flight--; break;
    default:
        die("a completion with unknown user_data %#llx", (unsigned long long)cqe->user_data);
    }
}

/* Every completion there is, then the connections waiting for a buffer:
 * by then every buffer the completions named has been given back. */
static void handle_completions(struct server *s)
{
    struct io_uring_cqe cqe;

    while (ring_next_cqe(&s->ring, &cqe))
        handle_completion(s, &cqe);
    if (s->running)
        rearm_waiting(s);
}

static void run_loop(struct server *s)
{
    while (s->running) {
        /* EINTR: a signal cut the wait short (SIGSTOP and SIGCONT do).
         * EBUSY: completions overflowed and could not all be copied into
         * the ring yet; reading those in it makes room. */
        if (ring_submit_and_wait(&s->ring) < 0 && errno != EINTR && errno != EBUSY)
            die("io_uring_enter: %s", strerror(errno));
        handle_completions(s);
    }
}

/* Waits for the last completion of every request still in flight. */
static void drain(struct server *s)
{
    while (s->in_flight > 0) {
        if (ring_submit_and_wait(&s->ring) < 0 && errno != EINTR && errno != EBUSY)
            die("io_uring_enter: %s", strerror(errno));
        handle_completions(s);
    }
}

static void setup(struct server *s, const struct options *opts)
{
    char err[256];

    ignore_sigpipe();
    /* Every descriptor the loop writes to is part of the loop, stderr too:
     * see step 4. A line stderr cannot take at once is dropped and counted. */
    log_set_nonblocking();
    s->quiet = opts->quiet;
    s->max_fds = raise_open_file_limit(MAX_DESCRIPTORS);
    /* calloc() of a large table maps zeroed pages that take no memory until
     * first touched: only the slots of descriptors in use ever cost RAM. */
    s->conns = calloc(s->max_fds, sizeof *s->conns);
    if (s->conns == NULL)
        die("cannot allocate %zu connection slots", s->max_fds);
    /* Before the listening socket: where io_uring is refused, say why and
     * exit before announcing a port nobody would serve. */
    if (ring_open(&s->ring, SQ_ENTRIES, CQ_ENTRIES, err, sizeof err) < 0)
        die("%s", err);
    if (buf_ring_open(&s->ring, &s->buffers, BUFFER_COUNT, BUFFER_SIZE, BUFFER_GROUP,
                      err, sizeof err) < 0)
        die("%s", err);
    s->listen_fd = net_listen(opts->address, opts->port, LISTEN_BACKLOG, err, sizeof err);
    if (s->listen_fd < 0)
        die("%s", err);
    s->signal_fd = open_signal_fd();
    s->waiting_head = s->waiting_tail = -1;
    s->running = true;
    arm_accept(s);
    read_signal(s);
}

/* Memory that a request in flight points to (a pending echo, a receive
 * buffer) must stay ours until its completion: the kernel may still write
 * into it or read from it. So first every request is cancelled
 * (IORING_OP_ASYNC_CANCEL, matching any request, all of them: Linux 5.19),
 * and its last completion awaited; then each connection is closed, as in
 * step 4 without draining its echo. */
static void teardown(struct server *s)
{
    struct io_uring_sqe *sqe = new_request(s, IORING_OP_ASYNC_CANCEL, -1, tag(REQ_CANCEL, 0, 0));

    sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
    drain(s);
    for (int fd = 0; fd <= s->highest_fd; fd++)
        if (s->conns[fd].state == SLOT_OPEN)
            close_connection(s, fd, "closed by shutdown");
    drain(s);
    free(s->conns);
    close_or_log(s->listen_fd);
    close_or_log(s->signal_fd);
    buf_ring_close(&s->ring, &s->buffers);
    ring_close(&s->ring);
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
#ifdef TEST_COUNTERS
    log_notice("test build: %llu short sends, %llu receives with no buffer, "
               "%llu full submission queues, %llu multishot accepts queued again",
               server.short_sends, server.no_buffer, server.ring.sq_full, server.accept_rearmed);
#endif
    return 0;
}
