/* loadgen: a load generator for echo servers, for `make bench`.
 *
 * It opens many concurrent connections, more than one process may hold
 * (RLIMIT_NOFILE) and more than one source address has ports for (about 28k
 * in the ephemeral range), by spreading them over worker processes and over
 * source addresses 127.0.0.1, 127.0.0.2, ... (all of 127.0.0.0/8 is
 * loopback). Then it either
 *   - holds them idle until stdin closes or --hold seconds pass, and checks
 *     that each one still echoes (to measure what idle connections cost), or
 *   - keeps --in-flight messages of --size bytes in flight on each for
 *     --duration seconds, and measures messages per second and latency.
 * Every byte that comes back is checked: byte i of connection c's stream is
 * pattern(c, i). Each worker runs one epoll loop over its connections and
 * reports to the parent through a pipe; the parent adds the reports up.
 * If the parent dies, the kernel kills the workers too: no load goes on
 * after loadgen has ended, however it ends.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define MAX_IN_FLIGHT 64
#define CONNECTING_AT_ONCE 256    /* per worker: keeps the server's queue from overflowing */
#define CONNECT_TIMEOUT_NS (8 * NS_PER_S)  /* a SYN and three retries */
#define DRAIN_TIMEOUT_NS (5 * NS_PER_S)   /* for the last messages after --duration */
#define VERIFY_TIMEOUT_NS (15 * NS_PER_S) /* for every held connection to echo */
#define VERIFY_SIZE 16
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51    /* Linux 6.3; older C headers lack the name */
#endif
#define CONNS_PER_WORKER 15000    /* at most, and fewer under a low descriptor limit */
#define NS_PER_S 1000000000LL
#define HIST_SUB 16               /* latency histogram: 16 buckets per power of two */
#define HIST_BUCKETS (64 * HIST_SUB)

enum mode { HOLD, ECHO };

struct config {
    const char *address;
    const char *port;
    long connections;
    int workers;
    int sources;
    int port_lo, port_hi;   /* ephemeral ports a connection may leave from */
    bool port_range_given;
    enum mode mode;
    double seconds;   /* --duration, or the longest --hold */
    size_t size;
    int in_flight;
    int timeout;      /* seconds before giving up on connecting */
    bool json;
    bool wait;        /* --wait: start the echo window when stdin closes */
};

/* What a worker reports, and the parent adds up. */
struct result {
    uint64_t opened, failed, verified, messages, bytes, byte_errors;
    uint64_t max_ns;
    int first_errno;           /* why the first connection failed */
    char first_failure[24];    /* at which step: connect, echo... */
    uint64_t hist[HIST_BUCKETS];
};

/* Messages on the worker-to-parent pipe. */
enum report { OPENED_SOME, READY, DONE };

struct conn {
    int fd;
    uint32_t id;            /* global index: selects its byte pattern */
    uint8_t state;
    uint32_t events;        /* what epoll watches for it now */
    uint64_t sent, received;
    uint64_t started, finished;  /* messages */
    int64_t began_ns;       /* connect start, for its timeout */
    int64_t times[MAX_IN_FLIGHT];
};

enum { CONNECTING, IDLE, RUNNING, FINISHED, BROKEN };

/* Not an errno: the server closed the connection in an orderly way. */
#define CLOSED_BY_SERVER (-1)
/* conn.events when the connection is not in the epoll set at all. */
#define UNWATCHED UINT32_MAX

static const char *failure_text(int err)
{
    return err == CLOSED_BY_SERVER ? "closed by the server" : strerror(err);
}

static struct config cfg;
static struct addrinfo *server_addr;

static void usage(void)
{
    printf("usage: loadgen -p PORT [options]\n"
           "  -a, --address ADDR   server address (default 127.0.0.1)\n"
           "  -p, --port PORT      server port\n"
           "  -c, --connections N  concurrent connections (default 100)\n"
           "  -w, --workers N      worker processes (default: enough for the fd limit, at least 2)\n"
           "      --sources N      source addresses 127.0.0.1 ... 127.0.0.N (default: as many as the\n"
           "                       ephemeral ports need: each gives one port per connection)\n"
           "      --ports LO-HI    leave from ports LO to HI only (default: the system's ephemeral range)\n"
           "  -d, --duration SEC   echo for SEC seconds (default 5)\n"
           "      --hold SEC       hold the connections idle until stdin closes or SEC pass,\n"
           "                       then check each still echoes\n"
           "  -s, --size BYTES     message size (default 64)\n"
           "  -n, --in-flight N    messages in flight per connection, 1 to %d (default 1)\n"
           "      --json           print one JSON line instead of the summary\n"
           "      --wait           with -d: after connecting, print \"connected N\" and start the\n"
           "                       clock only when stdin closes\n"
           "  -t, --timeout SEC    give up if connecting takes longer than SEC (default 120)\n",
           MAX_IN_FLIGHT);
}

static long parse_long(const char *s, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || v < min || v > max)
        bad_usage("not a whole number in range:", s);
    return v;
}

static double parse_seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);

    if (*s == '\0' || *end != '\0' || !(v > 0 && v <= 3600))
        bad_usage("not a number of seconds from 0 to 3600:", s);
    return v;
}

static void parse_port_range(const char *s)
{
    if (sscanf(s, "%d-%d", &cfg.port_lo, &cfg.port_hi) != 2 || cfg.port_lo < 1024 ||
        cfg.port_hi > 65535 || cfg.port_hi - cfg.port_lo < 9)
        bad_usage("not a range LO-HI of at least 10 ports from 1024 to 65535:", s);
    cfg.port_range_given = true;
}

/* One source address can make one connection to the server per local
 * port: the kernel's ephemeral range, or --ports. */
static void read_port_range(void)
{
    FILE *f;

    if (cfg.port_range_given) {
        uint32_t range = (uint32_t)cfg.port_hi << 16 | (uint32_t)cfg.port_lo;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
            fail("socket: %s", strerror(errno));
        if (setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range) < 0)
            fail("--ports needs Linux 6.3 or later (IP_LOCAL_PORT_RANGE): %s", strerror(errno));
        close(fd);
        return;
    }
    f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f == NULL || fscanf(f, "%d %d", &cfg.port_lo, &cfg.port_hi) != 2)
        fail("cannot read /proc/sys/net/ipv4/ip_local_port_range");
    fclose(f);
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "address", required_argument, NULL, 'a' },
        { "port", required_argument, NULL, 'p' },
        { "connections", required_argument, NULL, 'c' },
        { "workers", required_argument, NULL, 'w' },
        { "sources", required_argument, NULL, 'S' },
        { "ports", required_argument, NULL, 'P' },
        { "duration", required_argument, NULL, 'd' },
        { "hold", required_argument, NULL, 'H' },
        { "size", required_argument, NULL, 's' },
        { "in-flight", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { "wait", no_argument, NULL, 'W' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { 0 }
    };
    int c;

    cfg = (struct config){ .address = "127.0.0.1", .connections = 100, .mode = ECHO,
                           .seconds = 5, .size = 64, .in_flight = 1, .timeout = 120 };
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":a:p:c:w:d:s:n:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': cfg.address = optarg; break;
        case 'p': cfg.port = optarg; parse_long(optarg, 1, 65535); break;
        case 'c': cfg.connections = parse_long(optarg, 1, 1000000); break;
        case 'w': cfg.workers = (int)parse_long(optarg, 1, MAX_WORKERS); break;
        case 'S': cfg.sources = (int)parse_long(optarg, 1, 254); break;
        case 'P': parse_port_range(optarg); break;
        case 'd': cfg.mode = ECHO; cfg.seconds = parse_seconds(optarg); break;
        case 'H': cfg.mode = HOLD; cfg.seconds = parse_seconds(optarg); break;
        case 's': cfg.size = (size_t)parse_long(optarg, 1, 1 << 24); break;
        case 'n': cfg.in_flight = (int)parse_long(optarg, 1, MAX_IN_FLIGHT); break;
        case 'j': cfg.json = true; break;
        case 'W': cfg.wait = true; break;
        case 't': cfg.timeout = (int)parse_long(optarg, 1, 7200); break;
        case 'h': usage(); exit(0);
        case ':': bad_usage("option needs a value:", argv[optind - 1]); break;
        default:  bad_usage("unknown option", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument", argv[optind]);
    if (cfg.port == NULL)
        bad_usage("missing option", "-p PORT");
}

/* Defaults that fit the machine: one worker per CONNS_PER_WORKER
 * connections (and one per core for load), and enough source addresses
 * for the ports, leaving a tenth of each address's ports spare. */
static void choose_spread(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long per_worker = CONNS_PER_WORKER, need;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        fail("getrlimit: %s", strerror(errno));
    if (rl.rlim_max < (rlim_t)per_worker + 64)
        per_worker = rl.rlim_max > 128 ? (long)rl.rlim_max - 64 : 64;
    need = (cfg.connections + per_worker - 1) / per_worker;
    long per_source = (cfg.port_hi - cfg.port_lo + 1) * 9L / 10;

    if (cfg.workers == 0) {
        long w = need > cores ? need : cores;
        cfg.workers = (int)(w < cfg.connections ? w : cfg.connections);
        if (cfg.workers > MAX_WORKERS)
            cfg.workers = MAX_WORKERS;
    }
    if (cfg.sources == 0)
        cfg.sources = (int)((cfg.connections + per_source - 1) / per_source);
    if (cfg.sources > 254)
        fail("%ld connections need more than 254 source addresses", cfg.connections);
}

static void resolve(void)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    int rc = getaddrinfo(cfg.address, cfg.port, &hints, &server_addr);

    if (rc != 0)
        fail("bad address %s: %s", cfg.address, gai_strerror(rc));
    if (cfg.sources > 1 && strcmp(cfg.address, "127.0.0.1") != 0)
        fail("more than one source address works only against 127.0.0.1");
}

/* ---- the worker side ---- */

struct worker {
    struct conn *conns;
    size_t count;
    int epoll_fd;
    int report_fd;     /* to the parent */
    int control_fd;    /* from the parent: a byte means "go on" */
    int64_t deadline;
    struct result res;
};

static void note_failure(struct worker *w, struct conn *c, const char *where, int err)
{
    if (w->res.first_errno == 0) {
        w->res.first_errno = err;
        snprintf(w->res.first_failure, sizeof w->res.first_failure, "%s", where);
    }
    if (c->state == CONNECTING)
        w->res.failed++;
    c->state = BROKEN;
    if (c->fd >= 0 && close(c->fd) < 0)
        fail("close: %s", strerror(errno));
    c->fd = -1;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("write to pipe: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

static void report(struct worker *w, enum report what, uint64_t value)
{
    uint64_t msg[2] = { what, value };

    write_all(w->report_fd, msg, sizeof msg);
}

static void watch(struct worker *w, struct conn *c, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };
    int op = c->events == UNWATCHED ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;

    if (events == c->events)
        return;
    if (epoll_ctl(w->epoll_fd, op, c->fd, &ev) < 0)
        fail("epoll_ctl: %s", strerror(errno));
    c->events = events;
}

/* Out of the epoll set: an idle connection must not be reported at all,
 * and even with no events asked for, epoll reports errors and hangups. */
static void unwatch(struct worker *w, struct conn *c)
{
    if (c->events == UNWATCHED)
        return;
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
        fail("epoll_ctl: %s", strerror(errno));
    c->events = UNWATCHED;
}

/* Connection i leaves from 127.0.0.(1 + i % sources). bind() with port 0
 * and IP_BIND_ADDRESS_NO_PORT leaves the port to connect(), which then
 * needs only the whole address pair to be unique. With --ports, the port
 * comes from that range (IP_LOCAL_PORT_RANGE). */
static int bind_source(int fd, uint32_t id)
{
    struct sockaddr_in src = { .sin_family = AF_INET };
    uint32_t range = (uint32_t)cfg.port_hi << 16 | (uint32_t)cfg.port_lo;
    int one = 1;

    if (cfg.port_range_given &&
        setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range) < 0)
        return -1;
    if (cfg.sources <= 1)
        return 0;
    src.sin_addr.s_addr = htonl(0x7f000001u + id % (uint32_t)cfg.sources);
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0)
        return -1;
    return bind(fd, (struct sockaddr *)&src, sizeof src);
}

static void start_connect(struct worker *w, struct conn *c)
{
    int one = 1;

    c->state = CONNECTING;
    c->began_ns = now_ns();
    c->fd = socket(server_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        note_failure(w, c, "socket", errno);
        return;
    }
    if (bind_source(c->fd, c->id) < 0) {
        note_failure(w, c, "bind", errno);
        return;
    }
    /* Small messages go out at once, not held back to be merged (Nagle). */
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
        note_failure(w, c, "setsockopt", errno);
        return;
    }
    if (connect(c->fd, server_addr->ai_addr, server_addr->ai_addrlen) < 0 && errno != EINPROGRESS) {
        note_failure(w, c, "connect", errno);
        return;
    }
    c->events = UNWATCHED;
    watch(w, c, EPOLLOUT);
}

static void finish_connect(struct worker *w, struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        note_failure(w, c, "connect", err);
        return;
    }
    c->state = IDLE;
    w->res.opened++;
    unwatch(w, c);
}

static int wait_timeout_ms(int64_t until)
{
    int64_t left = until - now_ns();

    if (left <= 0)
        return 0;
    return left / 1000000 > 100 ? 100 : (int)(left / 1000000) + 1;
}

static void connect_all(struct worker *w)
{
    size_t next = 0, pending = 0, last_report = 0, timeouts_in_a_row = 0;
    struct epoll_event events[256];

    while (next < w->count || pending > 0) {
        int n;

        while (next < w->count && pending < CONNECTING_AT_ONCE) {
            start_connect(w, &w->conns[next++]);
            if (w->conns[next - 1].state == CONNECTING)
                pending++;
        }
        n = epoll_wait(w->epoll_fd, events, 256, 100);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;

            if (c->state != CONNECTING)
                continue;
            finish_connect(w, c);
            pending--;
            if (c->state == IDLE)
                timeouts_in_a_row = 0;
        }
        for (size_t i = 0; i < next && pending > 0; i++) {
            struct conn *c = &w->conns[i];

            if (c->state == CONNECTING && now_ns() - c->began_ns > CONNECT_TIMEOUT_NS) {
                note_failure(w, c, "connect", ETIMEDOUT);
                pending--;
                timeouts_in_a_row++;
            }
        }
        /* A full batch timed out with none getting through: the server
         * takes no more. Give up on the rest instead of waiting for each. */
        if (timeouts_in_a_row >= CONNECTING_AT_ONCE) {
            while (next < w->count)
                note_failure(w, &w->conns[next++], "connect", ETIMEDOUT);
        }
        if (w->res.opened - last_report >= 500) {
            report(w, OPENED_SOME, w->res.opened - last_report);
            last_report = w->res.opened;
        }
        if (now_ns() > w->deadline)
            fail("timed out while connecting");
    }
    report(w, OPENED_SOME, w->res.opened - last_report);
}

static void histogram_add(struct result *r, uint64_t ns)
{
    int e = 63 - __builtin_clzll(ns | 1);
    size_t idx = e < 4 ? ns : (size_t)(e - 3) * HIST_SUB + ((ns >> (e - 4)) & (HIST_SUB - 1));

    r->hist[idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1]++;
    if (ns > r->max_ns)
        r->max_ns = ns;
}

/* The smallest latency in bucket idx: the inverse of histogram_add. */
static uint64_t bucket_floor(size_t idx)
{
    size_t e;

    if (idx < 2 * HIST_SUB)
        return idx;
    e = idx / HIST_SUB + 3;
    return ((uint64_t)HIST_SUB + idx % HIST_SUB) << (e - 4);
}

/* Queue new messages up to the in-flight count, timestamped now. */
static void start_messages(struct conn *c, int in_flight, bool may_start)
{
    while (may_start && c->started - c->finished < (uint64_t)in_flight) {
        c->times[c->started % MAX_IN_FLIGHT] = now_ns();
        c->started++;
    }
}

static void send_some(struct worker *w, struct conn *c, size_t size)
{
    uint64_t target = c->started * size;

    while (c->sent < target) {
        size_t len = target - c->sent < PATTERN_SIZE ? (size_t)(target - c->sent) : PATTERN_SIZE;
        ssize_t n = send(c->fd, pattern_at(c->id, c->sent), len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            note_failure(w, c, "send", errno);
            return;
        }
        c->sent += (uint64_t)n;
    }
}

static void receive_some(struct worker *w, struct conn *c, size_t size, int64_t window_end)
{
    static unsigned char buf[PATTERN_SIZE];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    int64_t now;

    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        note_failure(w, c, "echo", n == 0 ? CLOSED_BY_SERVER : errno);
        return;
    }
    if (c->received + (uint64_t)n > c->sent) {
        w->res.byte_errors += c->received + (uint64_t)n - c->sent;
        n = (ssize_t)(c->sent - c->received);
    }
    if (memcmp(buf, pattern_at(c->id, c->received), (size_t)n) != 0)
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(c->id, c->received + (uint64_t)i))
                w->res.byte_errors++;
    c->received += (uint64_t)n;
    now = now_ns();
    while (c->finished < c->started && c->received >= (c->finished + 1) * size) {
        int64_t latency = now - c->times[c->finished % MAX_IN_FLIGHT];

        c->finished++;
        if (now <= window_end) {
            histogram_add(&w->res, (uint64_t)latency);
            w->res.messages++;
            w->res.bytes += size;
        }
    }
}

/* Runs messages of `size` bytes on every open connection until window_end,
 * then lets the ones in flight finish. Used for the workload and, with one
 * small message each, to check that held connections still echo. */
static void exchange(struct worker *w, size_t size, int in_flight, int64_t window_end,
                     int64_t drain_ns)
{
    struct epoll_event events[256];
    size_t active = 0;

    for (size_t i = 0; i < w->count; i++) {
        struct conn *c = &w->conns[i];

        if (c->state != IDLE)
            continue;
        c->state = RUNNING;
        c->sent = c->received = c->started = c->finished = 0;
        start_messages(c, in_flight, true);
        send_some(w, c, size);
        if (c->state == RUNNING) {
            watch(w, c, EPOLLIN | (c->sent < c->started * size ? EPOLLOUT : 0));
            active++;
        }
    }
    while (active > 0) {
        int64_t now = now_ns();
        bool may_start = now < window_end;
        int n;

        if (now > window_end + drain_ns || now > w->deadline)
            break;
        n = epoll_wait(w->epoll_fd, events, 256, wait_timeout_ms(window_end + drain_ns));
        if (n < 0 && errno != EINTR)
            fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;

            if (c->state != RUNNING)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                receive_some(w, c, size, window_end);
            if (c->state == RUNNING) {
                start_messages(c, in_flight, may_start);
                send_some(w, c, size);
            }
            if (c->state != RUNNING) {
                active--;
                continue;
            }
            if (c->finished == c->started && !may_start) {
                c->state = FINISHED;
                w->res.verified++;
                unwatch(w, c);
                active--;
                continue;
            }
            watch(w, c, EPOLLIN | (c->sent < c->started * size ? EPOLLOUT : 0));
        }
    }
    for (size_t i = 0; i < w->count; i++)
        if (w->conns[i].state == RUNNING)
            note_failure(w, &w->conns[i], "echo", ETIMEDOUT);
}

/* Blocks until the parent writes a byte. The read returns end-of-file
 * instead only if the parent has died, and then the kernel kills this
 * worker too (die_with_parent): that case needs no code of its own. */
static void wait_for_parent(struct worker *w)
{
    char go;

    while (read(w->control_fd, &go, 1) < 0)
        if (errno != EINTR)
            fail("read from parent: %s", strerror(errno));
}

static void run_worker(struct worker *w)
{
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll_fd < 0)
        fail("epoll_create1: %s", strerror(errno));
    connect_all(w);
    report(w, READY, 0);
    wait_for_parent(w);
    /* The time allowed from here: the window and the last messages, or the
     * check of every held connection, and some to spare. */
    w->deadline = now_ns() + (int64_t)(cfg.mode == ECHO ? cfg.seconds * NS_PER_S : 0) +
                  (cfg.mode == ECHO ? DRAIN_TIMEOUT_NS : VERIFY_TIMEOUT_NS) + 5 * NS_PER_S;
    if (cfg.mode == HOLD) {
        /* All connections send one small message at once, right now. */
        exchange(w, VERIFY_SIZE, 1, now_ns(), VERIFY_TIMEOUT_NS);
        w->res.messages = w->res.bytes = 0;
        memset(w->res.hist, 0, sizeof w->res.hist);
        w->res.max_ns = 0;
    } else {
        exchange(w, cfg.size, cfg.in_flight, now_ns() + (int64_t)(cfg.seconds * NS_PER_S),
                 DRAIN_TIMEOUT_NS);
    }
    report(w, DONE, 0);
    write_all(w->report_fd, &w->res, sizeof w->res);
    for (size_t i = 0; i < w->count; i++)
        if (w->conns[i].fd >= 0)
            close(w->conns[i].fd);
}

/* ---- the parent side ---- */

struct child {
    pid_t pid;
    int report_fd;
    int control_fd;
    bool ready, done;
    struct result res;
};

static struct child children[MAX_WORKERS];

/* Called in a worker right after fork(). A worker must not outlive the
 * parent: nobody would read its report, and it would go on loading the
 * server until its phase ends. It waits in epoll_wait() on its sockets, not
 * on the parent, so it would not notice the death itself: PR_SET_PDEATHSIG
 * asks the kernel to kill it then, whatever it is doing (man 2 prctl). The
 * setting is not inherited across fork(), and "parent" means the thread
 * that forked, which is the whole of loadgen: it has one thread. A parent
 * that died before prctl() sends nothing; the worker has then been handed
 * to another process, getppid() says so, and it exits. (prctl() takes
 * unsigned long arguments: a plain int through its "..." is not enough.) */
static void die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0UL, 0UL, 0UL) < 0)
        fail("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
    if (getppid() != parent)
        _exit(1);
}

static void start_workers(int64_t deadline)
{
    long per = cfg.connections / cfg.workers, extra = cfg.connections % cfg.workers;
    uint32_t first = 0;
    pid_t parent = getpid();

    for (int k = 0; k < cfg.workers; k++) {
        int up[2], down[2];
        size_t count = (size_t)(per + (k < extra ? 1 : 0));

        if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0)
            fail("pipe: %s", strerror(errno));
        children[k].pid = fork();
        if (children[k].pid < 0)
            fail("fork: %s", strerror(errno));
        if (children[k].pid == 0) {
            struct worker w = { .count = count, .report_fd = up[1], .control_fd = down[0],
                                .deadline = deadline };

            die_with_parent(parent);
            /* The other workers' pipes are the parent's alone: a copy here
             * would keep them open after the parent has died. */
            for (int j = 0; j < k; j++) {
                close(children[j].report_fd);
                close(children[j].control_fd);
            }
            close(up[0]);
            close(down[1]);
            w.conns = calloc(count, sizeof *w.conns);
            if (w.conns == NULL)
                fail("out of memory");
            for (size_t i = 0; i < count; i++)
                w.conns[i] = (struct conn){ .fd = -1, .id = first + (uint32_t)i };
            run_worker(&w);
            _exit(0);
        }
        close(up[1]);
        close(down[0]);
        children[k].report_fd = up[0];
        children[k].control_fd = down[1];
        first += (uint32_t)count;
    }
}

static void read_all(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n == 0)
            fail("a worker died");
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("read from worker: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

static uint64_t total_opened;

static void progress(const char *what)
{
    static int64_t last;
    int64_t now = now_ns();

    if (!isatty(STDERR_FILENO) || now - last < NS_PER_S / 4)
        return;
    last = now;
    fprintf(stderr, "\r%s: %llu of %ld connections open   ", what,
            (unsigned long long)total_opened, cfg.connections);
}

/* Reads reports until every worker has said `until` (READY or DONE). */
static void collect(enum report until, int64_t deadline)
{
    for (;;) {
        struct pollfd pfds[MAX_WORKERS];
        int waiting = 0, ms = wait_timeout_ms(deadline);

        for (int k = 0; k < cfg.workers; k++) {
            bool finished = until == READY ? children[k].ready : children[k].done;

            pfds[k] = (struct pollfd){ .fd = finished ? -1 : children[k].report_fd, .events = POLLIN };
            waiting += !finished;
        }
        if (waiting == 0)
            return;
        if (ms == 0)
            fail("timed out waiting for the workers");
        if (poll(pfds, (nfds_t)cfg.workers, ms) < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        for (int k = 0; k < cfg.workers; k++) {
            uint64_t msg[2];

            if (pfds[k].fd < 0 || !(pfds[k].revents & (POLLIN | POLLHUP)))
                continue;
            read_all(children[k].report_fd, msg, sizeof msg);
            if (msg[0] == OPENED_SOME)
                total_opened += msg[1];
            else if (msg[0] == READY)
                children[k].ready = true;
            else {
                read_all(children[k].report_fd, &children[k].res, sizeof children[k].res);
                children[k].done = true;
            }
        }
        progress(until == READY ? "connecting" : "running");
    }
}

static void tell_workers(void)
{
    for (int k = 0; k < cfg.workers; k++)
        write_all(children[k].control_fd, "g", 1);
}

/* Waits until stdin closes (or says anything), for at most `seconds`. */
static void wait_for_stdin(double seconds)
{
    int64_t until = now_ns() + (int64_t)(seconds * NS_PER_S);
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };

    while (now_ns() < until) {
        int n = poll(&pfd, 1, wait_timeout_ms(until));

        if (n < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        if (n > 0)
            return;
    }
}

static void add_up(struct result *sum)
{
    memset(sum, 0, sizeof *sum);
    for (int k = 0; k < cfg.workers; k++) {
        const struct result *r = &children[k].res;

        sum->opened += r->opened;
        sum->failed += r->failed;
        sum->verified += r->verified;
        sum->messages += r->messages;
        sum->bytes += r->bytes;
        sum->byte_errors += r->byte_errors;
        if (r->max_ns > sum->max_ns)
            sum->max_ns = r->max_ns;
        if (sum->first_errno == 0 && r->first_errno != 0) {
            sum->first_errno = r->first_errno;
            memcpy(sum->first_failure, r->first_failure, sizeof sum->first_failure);
        }
        for (size_t i = 0; i < HIST_BUCKETS; i++)
            sum->hist[i] += r->hist[i];
    }
}

static double percentile_us(const struct result *r, unsigned permille)
{
    uint64_t rank = (r->messages * permille + 999) / 1000, seen = 0;

    if (r->messages == 0)
        return 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += r->hist[i];
        if (seen >= rank)  /* the middle of the bucket: at most 3% off */
            return (double)(bucket_floor(i) + bucket_floor(i + 1)) / 2 / 1000.0;
    }
    return (double)r->max_ns / 1000.0;
}

static void print_result(const struct result *r, double seconds)
{
    double rate = cfg.mode == ECHO ? (double)r->messages / seconds : 0;
    double mbps = cfg.mode == ECHO ? (double)r->bytes / seconds / 1e6 : 0;
    const char *why = r->first_errno ? failure_text(r->first_errno) : "";

    if (cfg.json) {
        printf("{\"mode\":\"%s\",\"connections\":%ld,\"opened\":%llu,\"failed\":%llu,"
               "\"broken\":%llu,\"verified\":%llu,\"first_failure\":\"%s%s%s\",\"messages\":%llu,"
               "\"byte_errors\":%llu,\"seconds\":%.3f,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
               "\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
               cfg.mode == HOLD ? "hold" : "echo", cfg.connections,
               (unsigned long long)r->opened, (unsigned long long)r->failed,
               (unsigned long long)(r->opened - r->verified),
               (unsigned long long)r->verified, r->first_failure, r->first_errno ? ": " : "",
               why, (unsigned long long)r->messages, (unsigned long long)r->byte_errors,
               seconds, rate, mbps, percentile_us(r, 500), percentile_us(r, 990),
               (double)r->max_ns / 1000.0);
        return;
    }
    printf("connections: %llu opened, %llu failed to connect, %llu echoed at the end\n",
           (unsigned long long)r->opened, (unsigned long long)r->failed,
           (unsigned long long)r->verified);
    if (r->first_errno)
        printf("first failure: %s: %s\n", r->first_failure, why);
    if (cfg.mode == ECHO)
        printf("messages: %llu in %.1f s: %.0f msgs/s, %.2f MB/s; latency p50 %.0f us, "
               "p99 %.0f us, max %.0f us\n",
               (unsigned long long)r->messages, seconds, rate, mbps, percentile_us(r, 500),
               percentile_us(r, 990), (double)r->max_ns / 1000.0);
    printf("byte errors: %llu\n", (unsigned long long)r->byte_errors);
}

int main(int argc, char **argv)
{
    struct result sum;
    int64_t deadline, start;

    parse_args(argc, argv);
    read_port_range();
    choose_spread();
    resolve();
    raise_open_file_limit();
    deadline = now_ns() + (int64_t)cfg.timeout * NS_PER_S;
    start_workers(deadline);
    collect(READY, deadline);
    if (isatty(STDERR_FILENO))
        fputc('\n', stderr);
    if (cfg.mode == HOLD || cfg.wait) {
        printf("connected %llu\n", (unsigned long long)total_opened);
        if (fflush(stdout) == EOF)
            fail("cannot write to stdout: %s", strerror(errno));
        wait_for_stdin(cfg.mode == HOLD ? cfg.seconds : cfg.timeout);
    }
    start = now_ns();
    tell_workers();
    /* The workers' own deadline for this phase, and a little more. */
    deadline = start + (int64_t)(cfg.mode == ECHO ? cfg.seconds * NS_PER_S : 0) +
               (cfg.mode == ECHO ? DRAIN_TIMEOUT_NS : VERIFY_TIMEOUT_NS) + 10 * NS_PER_S;
    collect(DONE, deadline);
    for (int k = 0; k < cfg.workers; k++)
        if (waitpid(children[k].pid, NULL, 0) < 0)
            fail("waitpid: %s", strerror(errno));
    add_up(&sum);
    if (sum.opened == 0)
        fail("could not open any connection to %s port %s: %s: %s", cfg.address, cfg.port,
             sum.first_failure, failure_text(sum.first_errno));
    print_result(&sum, cfg.mode == ECHO ? cfg.seconds : (double)(now_ns() - start) / NS_PER_S);
    return sum.failed == 0 && sum.byte_errors == 0 && sum.verified == sum.opened ? 0 : 1;
}
