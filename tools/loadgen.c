/* loadgen: a load generator for echo servers, for `make bench`.
 *
 * It opens many connections to an echo server and then, for --duration
 * seconds after a --warmup, does one of these:
 *   - closed loop (the default): keeps --in-flight messages of --size bytes
 *     in flight on each connection; an echo back lets the next message go;
 *   - open loop (--rate): sends messages on a fixed schedule, so many a
 *     second in all, whether or not the earlier echoes are back, and times
 *     each from when the schedule said it should go (wrk2's model): a
 *     server that stalls cannot slow the client down and hide the stall;
 *   - churn (--churn): on each connection, again and again: connect, echo
 *     one message, close;
 * and reports messages a second, latency percentiles, what failed, and the
 * CPU time it used itself. Or (--hold) it holds the connections idle until
 * stdin closes, then checks that each still echoes, to measure what idle
 * connections cost the server.
 *
 * Every byte that comes back is checked: byte i of connection c's stream is
 * pattern(c, i) (client.h), compared with memcmp().
 *
 * A client that shares the machine with the server takes CPU time from it,
 * so it must cost little per message, and say what it cost. One worker
 * process runs one epoll loop over every connection: per message, one
 * send() and one recv(), and a share of an epoll_wait() that reports many
 * sockets at once; no allocation, no other system call. (The open loop
 * must also wake when each message is due: at 5,000 messages a second on
 * 10 connections, it made 1.5 epoll_pwait2() calls a message.) Only
 * connections beyond what one process may hold (RLIMIT_NOFILE) go to more
 * workers, and connections beyond what one source address can open quickly
 * (see choose_spread: about 12,700 with the usual ephemeral ports) leave
 * from 127.0.0.2, 127.0.0.3, ... (all of 127.0.0.0/8 is loopback). The
 * workers report to the parent through a pipe; the parent adds the reports
 * up (result.c prints them). If the parent dies, the kernel kills the
 * workers too: no load goes on after loadgen has ended, however it ends.
 */
#include "client.h"
#include "result.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
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

#define NS_PER_S 1000000000LL
#define MAX_WORKERS 64
#define MAX_IN_FLIGHT 64
#define MAX_CONNECTIONS 1000000   /* -c plus --idle; ids stay below 2^20 */
#define CHURN_ID_MASK ((1u << 20) - 1)
#define FD_SPARE 64               /* descriptors a worker keeps for itself */
#define CONNECTING_AT_ONCE 256    /* per worker: keeps the server's queue from overflowing */
#define CONNECT_TIMEOUT_NS (8 * NS_PER_S)  /* a SYN and three retries */
#define DRAIN_TIMEOUT_NS (5 * NS_PER_S)    /* for the messages in flight when the window ends */
#define CHECK_TIMEOUT_NS (15 * NS_PER_S)   /* for every idle connection to echo */
#define CHECK_SIZE 16             /* bytes of the message each idle connection echoes */
#define LATE_NS (NS_PER_S / 1000) /* an open-loop message handed to send() later is late */
#define EVENTS 256                /* epoll events taken per call */
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51    /* Linux 6.3; older C headers lack the name */
#endif

struct config {
    const char *address;
    const char *port;
    long connections;   /* -c: the ones that echo, or churn */
    long idle;          /* --idle: held untouched beside them */
    int workers;
    int sources;
    int port_lo, port_hi;   /* ephemeral ports a connection may leave from */
    bool port_range_given;
    enum mode mode;
    double seconds;     /* --duration, or the longest --hold */
    double warmup;
    double rate;        /* messages a second in all; 0 for the closed loop */
    size_t size;
    int in_flight;
    int timeout;        /* seconds before giving up on connecting */
    bool json;
    bool wait;          /* --wait: stop for stdin before the start and the close */
};

/* Messages on the worker-to-parent pipe. */
enum report { OPENED_SOME, READY, DONE };

/* NEW: not connected yet (calloc's zero). */
enum state { NEW, CONNECTING, IDLE, RUNNING, CLOSING, CHECKING, FINISHED, BROKEN };

struct conn {
    int fd;
    uint32_t id;            /* global index: selects its byte pattern */
    uint8_t state;
    uint32_t events;        /* what epoll watches for it now */
    uint64_t target;        /* bytes it should have sent by now */
    uint64_t sent, received;
    uint64_t started, finished;  /* messages */
    uint64_t cycle;         /* --churn: connections this one has made */
    int64_t began_ns;       /* when its connect started */
};

/* conn.events when the connection is not in the epoll set at all. */
#define UNWATCHED UINT32_MAX

static struct config cfg;
static struct addrinfo *server_addr;

static void usage(void)
{
    printf("usage: loadgen -p PORT [options]\n"
           "  -a, --address ADDR   server address (default 127.0.0.1)\n"
           "  -p, --port PORT      server port\n"
           "  -c, --connections N  connections that echo, or churn (default 100)\n"
           "      --idle N         also hold N idle connections, untouched while the others\n"
           "                       echo; each must echo one message at the end\n"
           "  -w, --workers N      worker processes (default 1, or as few as the descriptor\n"
           "                       limit allows)\n"
           "      --sources N      source addresses 127.0.0.1 ... 127.0.0.N (default: as many as the\n"
           "                       ephemeral ports need: each gives one port per connection)\n"
           "      --ports LO-HI    leave from ports LO to HI only (default: the system's ephemeral range)\n"
           "  -d, --duration SEC   the measured window (default 5)\n"
           "      --warmup SEC     load the server this long before the window opens; nothing\n"
           "                       from it is counted (default 0.5; 0 allowed)\n"
           "  -r, --rate R         open loop: R messages a second in all, on a fixed schedule,\n"
           "                       each timed from when it should have gone\n"
           "      --churn          on each connection, again and again: connect, echo one\n"
           "                       message, close; one cycle counts as one message\n"
           "      --hold SEC       hold the connections idle until stdin closes or SEC pass,\n"
           "                       then check each still echoes\n"
           "  -s, --size BYTES     message size (default 64)\n"
           "  -n, --in-flight N    closed loop: messages in flight per connection, 1 to %d (default 1)\n"
           "      --json           print one JSON line instead of the summary\n"
           "      --wait           with -d: print \"connected N\" (0 with --churn), start on a line\n"
           "                       or end of file on stdin; when done, print \"finished\" and\n"
           "                       close the connections at end of file on stdin\n"
           "  -t, --timeout SEC    give up if connecting takes longer than SEC, and wait no\n"
           "                       longer than that for stdin with --wait (default 120)\n",
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

static double parse_number(const char *s, double min, double max, const char *what)
{
    char *end;
    double v = strtod(s, &end);

    if (*s == '\0' || *end != '\0' || !(v >= min && v <= max))
        bad_usage(what, s);
    return v;
}

static double parse_seconds(const char *s, bool zero_ok)
{
    double v = parse_number(s, 0, 3600, "not a number of seconds from 0 to 3600:");

    if (v == 0 && !zero_ok)
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

static void close_or_fail(int fd)
{
    if (close(fd) < 0)
        fail("close: %s", strerror(errno));
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
        close_or_fail(fd);
        return;
    }
    f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f == NULL || fscanf(f, "%d %d", &cfg.port_lo, &cfg.port_hi) != 2)
        fail("cannot read /proc/sys/net/ipv4/ip_local_port_range");
    if (fclose(f) == EOF)
        fail("fclose: %s", strerror(errno));
}

static void not_together(bool both, const char *options)
{
    if (both)
        bad_usage("these options do not go together:", options);
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "address", required_argument, NULL, 'a' },
        { "port", required_argument, NULL, 'p' },
        { "connections", required_argument, NULL, 'c' },
        { "idle", required_argument, NULL, 'I' },
        { "workers", required_argument, NULL, 'w' },
        { "sources", required_argument, NULL, 'S' },
        { "ports", required_argument, NULL, 'P' },
        { "duration", required_argument, NULL, 'd' },
        { "warmup", required_argument, NULL, 'U' },
        { "rate", required_argument, NULL, 'r' },
        { "churn", no_argument, NULL, 'C' },
        { "hold", required_argument, NULL, 'H' },
        { "size", required_argument, NULL, 's' },
        { "in-flight", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { "wait", no_argument, NULL, 'W' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { 0 }
    };
    bool hold = false, churn = false, idle = false, warmup = false, in_flight = false;
    double duration = 5, hold_seconds = 0;
    int c;

    cfg = (struct config){ .address = "127.0.0.1", .connections = 100, .warmup = 0.5,
                           .size = 64, .in_flight = 1, .timeout = 120 };
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":a:p:c:w:d:r:s:n:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': cfg.address = optarg; break;
        case 'p': cfg.port = optarg; parse_long(optarg, 1, 65535); break;
        case 'c': cfg.connections = parse_long(optarg, 1, MAX_CONNECTIONS); break;
        case 'I': cfg.idle = parse_long(optarg, 0, MAX_CONNECTIONS); idle = true; break;
        case 'w': cfg.workers = (int)parse_long(optarg, 1, MAX_WORKERS); break;
        case 'S': cfg.sources = (int)parse_long(optarg, 1, 254); break;
        case 'P': parse_port_range(optarg); break;
        /* -d and --hold each choose the mode: the last one given wins. */
        case 'd': hold = false; duration = parse_seconds(optarg, false); break;
        case 'H': hold = true; hold_seconds = parse_seconds(optarg, false); break;
        case 'U': cfg.warmup = parse_seconds(optarg, true); warmup = true; break;
        case 'r':
            cfg.rate = parse_number(optarg, 0, 1e7, "not a rate from 0 to 10000000 a second:");
            if (cfg.rate == 0)
                bad_usage("not a rate from 0 to 10000000 a second:", optarg);
            break;
        case 'C': churn = true; break;
        case 's': cfg.size = (size_t)parse_long(optarg, 1, 1 << 24); break;
        case 'n': cfg.in_flight = (int)parse_long(optarg, 1, MAX_IN_FLIGHT); in_flight = true; break;
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
    not_together(cfg.rate > 0 && in_flight, "--rate -n");
    not_together(cfg.rate > 0 && churn, "--rate --churn");
    not_together(cfg.rate > 0 && hold, "--rate --hold");
    not_together(churn && hold, "--churn --hold");
    not_together(idle && hold, "--idle --hold");
    not_together(idle && churn, "--idle --churn");
    not_together(cfg.wait && hold, "--wait --hold");
    not_together(warmup && hold, "--warmup --hold");
    if (cfg.connections + cfg.idle > MAX_CONNECTIONS) {
        char total[24];

        snprintf(total, sizeof total, "%ld", cfg.connections + cfg.idle);
        bad_usage("-c plus --idle is more than 1000000 connections:", total);
    }
    cfg.mode = hold ? HOLD : churn ? CHURN : ECHO;
    cfg.seconds = hold ? hold_seconds : duration;
}

/* Defaults that fit the machine. One worker, since a second one takes CPU
 * time from a server on the same machine faster than it adds load (on two
 * cores, against step 4, -w 2 echoes fewer messages a second than -w 1);
 * more only if the connections, idle ones too, need more descriptors than
 * one process may have: then as few as hold them, each keeping FD_SPARE
 * for itself. And enough source addresses for the ports, using at most
 * 45% of each address's. connect() tries the even ports first (for 3,000
 * connections from one address, `ss -tn` shows only even ones), so once
 * half the range is taken, each connect() searches every even port before
 * it takes an odd one: 19,000 connections from one address took 9 s to
 * open on the course's machine, from two, 2 s. */
static void choose_spread(void)
{
    long total = cfg.connections + cfg.idle;
    long per_worker = MAX_CONNECTIONS, per_source = (cfg.port_hi - cfg.port_lo + 1) * 45L / 100;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        fail("getrlimit: %s", strerror(errno));
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)per_worker + FD_SPARE)
        per_worker = rl.rlim_max > 2 * FD_SPARE ? (long)rl.rlim_max - FD_SPARE : FD_SPARE;
    if (cfg.workers == 0) {
        long need = (total + per_worker - 1) / per_worker;

        cfg.workers = (int)(need < MAX_WORKERS ? need : MAX_WORKERS);
    }
    if (cfg.sources == 0)
        cfg.sources = (int)((total + per_source - 1) / per_source);
    if (cfg.sources > 254)
        fail("%ld connections need more than 254 source addresses", total);
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

static int64_t seconds_to_ns(double seconds)
{
    return (int64_t)llround(seconds * NS_PER_S);
}

/* ---- the worker side ---- */

struct worker {
    struct conn *conns;   /* its echo (or churn) connections, then its idle ones */
    size_t count, echo_count;
    uint32_t first_id;    /* of its first echo connection; the others follow */
    int64_t *times;       /* closed loop: when each message in flight started,
                             cfg.in_flight slots per connection */
    uint64_t outstanding; /* messages started, not yet back, on live connections */
    int epoll_fd;
    int report_fd;        /* to the parent */
    int control_fd;       /* from the parent */
    int64_t deadline;
    struct result res;
};

/* The measured window of a run, and when the drain after it gives up. */
struct window {
    int64_t go, start, end, drain_end;
};

/* Counts the failure (err is an errno, or CLOSED_BY_SERVER) and closes the
 * connection. */
static void note_failure(struct worker *w, struct conn *c, enum step step, int err)
{
    result_failure(&w->res, step, err, now_ns());
    if (c->state == CONNECTING)
        w->res.failed++;
    if (c->state == RUNNING)
        w->outstanding -= c->started - c->finished;
    c->state = BROKEN;
    /* close() also takes the socket out of the epoll set: no other
     * descriptor refers to it (the sockets are made after fork()). */
    if (c->fd >= 0 && close(c->fd) < 0)
        fail("close: %s", strerror(errno));
    c->fd = -1;
    c->events = UNWATCHED;
}

/* Writes all of buf to a pipe. EPIPE means the process at the other end
 * has died (SIGPIPE is ignored: see main); `gone` says which. */
static void write_all(int fd, const void *buf, size_t len, const char *gone)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE)
                fail("%s", gone);
            fail("write to pipe: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

static void report(struct worker *w, enum report what, uint64_t value)
{
    uint64_t msg[2] = { what, value };

    write_all(w->report_fd, msg, sizeof msg, "the parent has died");
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

/* EPOLLOUT only while bytes wait for room in the socket's buffer: asked
 * for always, it would be reported on every call. */
static uint32_t wanted_events(const struct conn *c)
{
    return EPOLLIN | (c->sent < c->target ? EPOLLOUT : 0);
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
    c->sent = c->received = c->target = 0;
    c->fd = socket(server_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        note_failure(w, c, STEP_SOCKET, errno);
        return;
    }
    if (bind_source(c->fd, c->id) < 0) {
        note_failure(w, c, STEP_BIND, errno);
        return;
    }
    /* Small messages go out at once, not held back to be merged (Nagle). */
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
        note_failure(w, c, STEP_SETSOCKOPT, errno);
        return;
    }
    if (connect(c->fd, server_addr->ai_addr, server_addr->ai_addrlen) < 0 && errno != EINPROGRESS) {
        note_failure(w, c, STEP_CONNECT, errno);
        return;
    }
    c->events = UNWATCHED;
    watch(w, c, EPOLLOUT);
}

/* A nonblocking connect() has ended when the socket is writable; SO_ERROR
 * says whether it worked (man 2 connect, EINPROGRESS). */
static bool finish_connect(struct worker *w, struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        note_failure(w, c, STEP_CONNECT, err);
        return false;
    }
    w->res.opened++;
    return true;
}

static int wait_timeout_ms(int64_t until)
{
    int64_t left = until - now_ns();

    if (left <= 0)
        return 0;
    return left / 1000000 > 100 ? 100 : (int)(left / 1000000) + 1;
}

static int wait_for_events(struct worker *w, struct epoll_event *events, int64_t until)
{
    int n = epoll_wait(w->epoll_fd, events, EVENTS, wait_timeout_ms(until));

    if (n < 0 && errno != EINTR)
        fail("epoll_wait: %s", strerror(errno));
    return n < 0 ? 0 : n;
}

/* Gives up on a connection whose connect() has taken too long. */
static bool connect_timed_out(struct worker *w, struct conn *c, int64_t now)
{
    if (c->state != CONNECTING || now - c->began_ns <= CONNECT_TIMEOUT_NS)
        return false;
    note_failure(w, c, STEP_CONNECT, ETIMEDOUT);
    return true;
}

/* Opens every connection, CONNECTING_AT_ONCE at a time, and leaves each
 * IDLE and out of the epoll set. They start in order, so the one that
 * started first of those still connecting is the first to time out:
 * `oldest` moves past the rest, and the check for time-outs looks at only
 * as many as have timed out, not at all of them every time round. */
static void connect_all(struct worker *w)
{
    size_t next = 0, pending = 0, oldest = 0, last_report = 0, timeouts_in_a_row = 0;
    struct epoll_event events[EVENTS];

    while (next < w->count || pending > 0) {
        int n;

        while (next < w->count && pending < CONNECTING_AT_ONCE) {
            start_connect(w, &w->conns[next++]);
            if (w->conns[next - 1].state == CONNECTING)
                pending++;
        }
        n = wait_for_events(w, events, now_ns() + NS_PER_S / 10);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;

            if (c->state != CONNECTING)
                continue;
            pending--;
            if (finish_connect(w, c)) {
                c->state = IDLE;
                unwatch(w, c);
                timeouts_in_a_row = 0;
            }
        }
        for (int64_t now = now_ns(); oldest < next; oldest++) {
            if (w->conns[oldest].state != CONNECTING)
                continue;
            if (!connect_timed_out(w, &w->conns[oldest], now))
                break;
            pending--;
            timeouts_in_a_row++;
        }
        /* A full batch timed out with none getting through: the server
         * takes no more. Give up on the rest instead of waiting for each. */
        if (timeouts_in_a_row >= CONNECTING_AT_ONCE) {
            while (next < w->count) {
                w->conns[next].state = CONNECTING;
                note_failure(w, &w->conns[next++], STEP_CONNECT, ETIMEDOUT);
            }
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

/* Sends what the connection owes, up to its target, as far as the socket
 * takes it: one send() for a small message. */
static void send_some(struct worker *w, struct conn *c)
{
    while (c->sent < c->target) {
        size_t len = c->target - c->sent < PATTERN_SIZE ? (size_t)(c->target - c->sent) : PATTERN_SIZE;
        ssize_t n = send(c->fd, pattern_at(c->id, c->sent), len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN)
                return;
            if (errno == EINTR)
                continue;
            note_failure(w, c, STEP_SEND, errno);
            return;
        }
        c->sent += (uint64_t)n;
    }
}

/* One recv(), its bytes checked against the pattern. Returns the number of
 * bytes, 0 at end of file, -1 if there was nothing to read, or -2 if the
 * connection failed (noted under `step`). */
static ssize_t receive_some(struct worker *w, struct conn *c, enum step step)
{
    static unsigned char buf[PATTERN_SIZE];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    size_t good;

    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return -1;
        note_failure(w, c, step, errno);
        return -2;
    }
    /* More bytes back than were sent: every extra one is an error. */
    good = c->received + (uint64_t)n > c->sent ? (size_t)(c->sent - c->received) : (size_t)n;
    w->res.byte_errors += (uint64_t)n - good;
    if (memcmp(buf, pattern_at(c->id, c->received), good) != 0) {
        const unsigned char *expected = pattern_at(c->id, c->received);

        for (size_t i = 0; i < good; i++)
            w->res.byte_errors += buf[i] != expected[i];
    }
    c->received += good;
    return n;
}

/* Every message that came back is counted in all_messages; only one that
 * started inside the window is counted as a message, with its latency. */
static void count_message(struct worker *w, const struct window *win, int64_t start, int64_t end)
{
    w->res.all_messages++;
    if (start < win->start || start >= win->end)
        return;
    w->res.messages++;
    w->res.bytes += cfg.size;
    histogram_add(&w->res.latency, (uint64_t)(end - start));
}

/* After the drain: a connection with every message back echoed to the
 * end; one with some still out has failed. */
static void finish_running(struct worker *w)
{
    for (size_t i = 0; i < w->echo_count; i++) {
        struct conn *c = &w->conns[i];

        if (c->state != RUNNING)
            continue;
        if (c->finished < c->started) {
            note_failure(w, c, STEP_ECHO, ETIMEDOUT);
            continue;
        }
        c->state = FINISHED;
        w->res.verified++;
        unwatch(w, c);
    }
}

/* Reads what came back on a connection of the echo loops; false if it has
 * failed. */
static bool receive_echo(struct worker *w, struct conn *c)
{
    ssize_t n = receive_some(w, c, STEP_ECHO);

    if (n == 0)
        note_failure(w, c, STEP_ECHO, CLOSED_BY_SERVER);
    return n != 0 && n != -2;
}

/* ---- closed loop ---- */

static int64_t *time_slot(struct worker *w, struct conn *c, uint64_t message)
{
    return &w->times[(size_t)(c - w->conns) * (size_t)cfg.in_flight + message % (uint64_t)cfg.in_flight];
}

/* Queues messages up to the in-flight count, all starting now, unless the
 * window is over. */
static void start_closed(struct worker *w, struct conn *c, const struct window *win)
{
    int64_t now = now_ns();

    if (now >= win->end)
        return;
    while (c->started - c->finished < (uint64_t)cfg.in_flight) {
        *time_slot(w, c, c->started) = now;
        c->started++;
        w->outstanding++;
        c->target += cfg.size;
    }
}

static void finish_closed(struct worker *w, struct conn *c, const struct window *win)
{
    int64_t now = now_ns();

    while (c->finished < c->started && c->received >= (c->finished + 1) * cfg.size) {
        count_message(w, win, *time_slot(w, c, c->finished), now);
        c->finished++;
        w->outstanding--;
    }
}

static void closed_loop(struct worker *w, const struct window *win)
{
    struct epoll_event events[EVENTS];

    for (size_t i = 0; i < w->echo_count; i++) {
        struct conn *c = &w->conns[i];

        if (c->state != IDLE)
            continue;
        c->state = RUNNING;
        start_closed(w, c, win);
        send_some(w, c);
        if (c->state == RUNNING)
            watch(w, c, wanted_events(c));
    }
    for (;;) {
        int64_t now = now_ns();
        int n;

        /* Until the window ends, every live connection has a message out:
         * none out means none is left, or the drain is over. */
        if (now >= win->drain_end || now > w->deadline || w->outstanding == 0)
            break;
        n = wait_for_events(w, events, now < win->end ? win->end : win->drain_end);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;

            if (c->state != RUNNING)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (!receive_echo(w, c))
                    continue;
                finish_closed(w, c, win);
            }
            start_closed(w, c, win);
            send_some(w, c);
            if (c->state == RUNNING)
                watch(w, c, wanted_events(c));
        }
    }
    finish_running(w);
}

/* ---- open loop ---- */

/* When message m (of all the workers') should go: go + m / rate. At a slow
 * rate, m / rate can be more nanoseconds than an int64_t holds (at one
 * message in 10,000 s, message 999,999 is due 10^19 ns after go), and
 * converting such a double is undefined behaviour: a time past 10^18 ns
 * (31 years, long after any window) is kept there. */
#define FAR_FUTURE_NS 1e18

static int64_t due(const struct window *win, uint64_t m)
{
    double after = (double)m * NS_PER_S / cfg.rate;

    return win->go + (int64_t)(after < FAR_FUTURE_NS ? after : FAR_FUTURE_NS);
}

/* Hands the message due at `when` to its connection, now. How late that
 * is, is the client's own delay: counted as lateness, never as the
 * server's. Bytes that then wait for room in the socket are the server's. */
static void start_open(struct worker *w, struct conn *c, const struct window *win, int64_t when)
{
    int64_t lag;

    if (c->state == IDLE)
        c->state = RUNNING;
    if (c->state != RUNNING)
        return;   /* it has failed: its messages are lost with it */
    lag = now_ns() - when;
    if (when >= win->start) {
        w->res.late += lag > LATE_NS;
        if (lag > (int64_t)w->res.max_lag_ns)
            w->res.max_lag_ns = (uint64_t)lag;
    }
    c->started++;
    w->outstanding++;
    c->target += cfg.size;
    send_some(w, c);
    if (c->state == RUNNING)
        watch(w, c, wanted_events(c));
}

/* Message k of connection j is message k * C + j of the schedule: its
 * latency runs from when that was due, and nothing needs to be stored. */
static void finish_open(struct worker *w, struct conn *c, const struct window *win)
{
    int64_t now = now_ns();

    while (c->finished < c->started && c->received >= (c->finished + 1) * cfg.size) {
        count_message(w, win, due(win, c->finished * (uint64_t)cfg.connections + c->id), now);
        c->finished++;
        w->outstanding--;
    }
}

/* glibc has declared epoll_pwait2() since version 2.35; with an older one,
 * or another C library, the open loop uses epoll_wait() alone. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define HAVE_EPOLL_PWAIT2 1
#else
#define HAVE_EPOLL_PWAIT2 0
#endif

/* Waits for events until `until` at the latest. epoll_wait() takes its
 * timeout in milliseconds, and at 10,000 messages a second they are 100 us
 * apart: rounded down to 0 the loop would spin, burning the CPU it is
 * there to measure; rounded up, every message would go up to 1 ms late.
 * epoll_pwait2() (Linux 5.11) takes a timespec, to the nanosecond. (The
 * kernel may still wake us a little late: by the timer slack, 50 us
 * unless changed, man 2 prctl PR_SET_TIMERSLACK, and by however long the
 * CPU takes to get to us, which is what lateness measures.) Where the C
 * library lacks it, or the kernel does (ENOSYS), or a seccomp filter
 * refuses it (EPERM, which the call itself never returns: man 2 seccomp,
 * SECCOMP_RET_ERRNO), epoll_wait() is used with the wait rounded up to a
 * whole ms, and messages may go up to a ms late. */
static int wait_until_due(struct worker *w, struct epoll_event *events, int64_t until)
{
    static bool no_pwait2 = !HAVE_EPOLL_PWAIT2;
    int64_t left = until - now_ns();
    int n = -1;

    if (left < 0)
        left = 0;
    if (left > NS_PER_S / 10)
        left = NS_PER_S / 10;
#if HAVE_EPOLL_PWAIT2
    if (!no_pwait2) {
        struct timespec ts = { .tv_sec = (time_t)(left / NS_PER_S),
                               .tv_nsec = (long)(left % NS_PER_S) };

        n = epoll_pwait2(w->epoll_fd, events, EVENTS, &ts, NULL);
        if (n < 0 && errno != EINTR && errno != ENOSYS && errno != EPERM)
            fail("epoll_pwait2: %s", strerror(errno));
        no_pwait2 = n < 0 && errno != EINTR;
    }
#endif
    if (no_pwait2) {
        n = epoll_wait(w->epoll_fd, events, EVENTS, (int)((left + 999999) / 1000000));
        if (n < 0 && errno != EINTR)
            fail("epoll_wait: %s", strerror(errno));
    }
    return n < 0 ? 0 : n;
}

/* The schedule: message m goes on connection m mod C at go + m / rate.
 * This worker's share is its connections' messages, in order: q * C +
 * first_id + k for k over its connections, then q + 1. It runs through the
 * warm-up and the window; the messages due before the window ends all go,
 * even late, and then only the drain is left. */
static void open_loop(struct worker *w, const struct window *win)
{
    struct epoll_event events[EVENTS];
    uint64_t q = 0;
    size_t k = 0;
    bool scheduled = w->echo_count == 0;   /* every message of the window has gone */

    for (;;) {
        int64_t now, next = win->drain_end;
        int n;

        /* A loop that is behind hands out EVENTS messages at most before
         * it reads echoes again (the wait is then for no time at all):
         * echoes left unread would count against the server. */
        for (int handed = 0; !scheduled; handed++) {
            int64_t when = due(win, q * (uint64_t)cfg.connections + w->first_id + k);

            if (when >= win->end) {
                scheduled = true;
                break;
            }
            if (when > now_ns() || handed == EVENTS) {
                next = when;
                break;
            }
            start_open(w, &w->conns[k], win, when);
            if (++k == w->echo_count) {
                k = 0;
                q++;
            }
        }
        now = now_ns();
        if (now >= win->drain_end || now > w->deadline || (scheduled && w->outstanding == 0))
            break;
        n = wait_until_due(w, events, next);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;

            if (c->state != RUNNING)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (!receive_echo(w, c))
                    continue;
                finish_open(w, c, win);
            }
            send_some(w, c);
            if (c->state == RUNNING)
                watch(w, c, wanted_events(c));
        }
    }
    finish_running(w);
}

/* ---- churn ---- */

/* Starts the next cycle on connection c: a new id (so a new pattern), a
 * new socket, connect(). Until the window ends; returns whether a cycle is
 * under way. A connection that fails at once is tried again at once. */
static bool start_cycle(struct worker *w, struct conn *c, const struct window *win)
{
    uint32_t slot = w->first_id + (uint32_t)(c - w->conns);

    while (now_ns() < win->end) {
        c->id = (uint32_t)((slot + c->cycle * (uint64_t)cfg.connections) & CHURN_ID_MASK);
        c->cycle++;
        start_connect(w, c);
        if (c->state == CONNECTING)
            return true;
    }
    return false;
}

/* One event on a connection of the churn: connected, echo in, closed. */
static void churn_event(struct worker *w, struct conn *c, const struct window *win)
{
    ssize_t n;

    switch (c->state) {
    case CONNECTING:
        if (!finish_connect(w, c))
            return;
        c->state = RUNNING;
        c->target = cfg.size;
        send_some(w, c);
        break;
    case RUNNING:
        n = receive_some(w, c, STEP_ECHO);
        if (n == 0)
            note_failure(w, c, STEP_ECHO, CLOSED_BY_SERVER);
        if (c->state != RUNNING)
            return;
        if (c->received < cfg.size) {
            send_some(w, c);
            break;
        }
        /* The echo is in: say we are done, and wait for the server to close. */
        if (shutdown(c->fd, SHUT_WR) < 0) {
            note_failure(w, c, STEP_SEND, errno);
            return;
        }
        c->state = CLOSING;
        break;
    case CLOSING:
        n = receive_some(w, c, STEP_ECHO);
        if (n != 0)
            return;   /* more bytes (each an error), nothing yet, or it failed */
        count_message(w, win, c->began_ns, now_ns());
        w->res.verified++;
        if (close(c->fd) < 0)
            fail("close: %s", strerror(errno));
        c->fd = -1;
        c->events = UNWATCHED;
        c->state = FINISHED;
        return;
    default:
        return;
    }
    if (c->state == RUNNING || c->state == CLOSING)
        watch(w, c, c->state == CLOSING ? EPOLLIN : wanted_events(c));
}

static void churn_loop(struct worker *w, const struct window *win)
{
    struct epoll_event events[EVENTS];
    size_t active = 0;    /* connections with a cycle under way */
    int64_t next_scan = now_ns() + NS_PER_S / 10;

    for (size_t i = 0; i < w->echo_count; i++)
        active += start_cycle(w, &w->conns[i], win);
    while (active > 0) {
        int64_t now = now_ns();
        int n;

        if (now >= win->drain_end || now > w->deadline)
            break;
        n = wait_for_events(w, events, now < win->end ? win->end : win->drain_end);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;

            churn_event(w, c, win);
            if ((c->state == FINISHED || c->state == BROKEN) && !start_cycle(w, c, win))
                active--;
        }
        now = now_ns();
        if (now < next_scan)
            continue;
        for (size_t i = 0; i < w->echo_count; i++) {
            struct conn *c = &w->conns[i];

            if (connect_timed_out(w, c, now) && !start_cycle(w, c, win))
                active--;
        }
        next_scan = now + NS_PER_S / 10;
    }
    for (size_t i = 0; i < w->echo_count; i++) {
        struct conn *c = &w->conns[i];

        if (c->state == CONNECTING)
            note_failure(w, c, STEP_CONNECT, ETIMEDOUT);
        else if (c->state == RUNNING || c->state == CLOSING)
            note_failure(w, c, STEP_ECHO, ETIMEDOUT);
    }
}

/* ---- the check of idle connections ---- */

/* Every connection still IDLE (held, --idle, or never given a message by
 * the schedule) sends CHECK_SIZE bytes, the next of its stream, and must
 * get them back. */
static void check_idle(struct worker *w)
{
    struct epoll_event events[EVENTS];
    int64_t end = now_ns() + CHECK_TIMEOUT_NS;
    size_t active = 0;

    for (size_t i = 0; i < w->count; i++) {
        struct conn *c = &w->conns[i];

        if (c->state != IDLE)
            continue;
        c->state = CHECKING;
        c->target = c->sent + CHECK_SIZE;
        send_some(w, c);
        if (c->state != CHECKING)
            continue;
        watch(w, c, wanted_events(c));
        active++;
    }
    while (active > 0 && now_ns() < end) {
        int n = wait_for_events(w, events, end);

        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;

            if (c->state != CHECKING)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP) &&
                receive_some(w, c, STEP_CHECK) == 0)
                note_failure(w, c, STEP_CHECK, CLOSED_BY_SERVER);
            if (c->state == CHECKING && c->received >= c->target) {
                c->state = FINISHED;
                w->res.verified++;
                unwatch(w, c);
            } else if (c->state == CHECKING) {
                send_some(w, c);
                if (c->state == CHECKING)
                    watch(w, c, wanted_events(c));
            }
            active -= c->state != CHECKING;
        }
    }
    for (size_t i = 0; i < w->count; i++)
        if (w->conns[i].state == CHECKING)
            note_failure(w, &w->conns[i], STEP_CHECK, ETIMEDOUT);
}

/* ---- a worker's life ---- */

/* Reads exactly len bytes from the parent. End of file means the parent
 * has died; the kernel is killing this worker then (die_with_parent), and
 * exiting at once is all that is left to do. */
static void read_from_parent(struct worker *w, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(w->control_fd, p, len);

        if (n == 0)
            _exit(1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("read from parent: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

/* The CPU time this process has used, user and system, in microseconds. */
static uint64_t cpu_us(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        fail("getrusage: %s", strerror(errno));
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void run_worker(struct worker *w)
{
    struct window win;
    uint64_t cpu_before;
    char word;

    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll_fd < 0)
        fail("epoll_create1: %s", strerror(errno));
    if (cfg.mode != CHURN)
        connect_all(w);
    report(w, READY, 0);
    /* "g" and the time to go: every worker's schedule counts from it. */
    read_from_parent(w, &word, 1);
    read_from_parent(w, &win.go, sizeof win.go);
    win.start = win.go + (cfg.mode == HOLD ? 0 : seconds_to_ns(cfg.warmup));
    win.end = win.start + (cfg.mode == HOLD ? 0 : seconds_to_ns(cfg.seconds));
    win.drain_end = win.end + DRAIN_TIMEOUT_NS;
    /* The time allowed from here: the window, the drain, the check, and
     * some to spare. */
    w->deadline = win.drain_end + CHECK_TIMEOUT_NS + 5 * NS_PER_S;
    cpu_before = cpu_us();
    if (cfg.mode == HOLD)
        check_idle(w);
    else if (cfg.mode == CHURN)
        churn_loop(w, &win);
    else if (cfg.rate > 0)
        open_loop(w, &win);
    else
        closed_loop(w, &win);
    w->res.cpu_us = cpu_us() - cpu_before;
    if (cfg.mode != HOLD)
        check_idle(w);
    report(w, DONE, 0);
    write_all(w->report_fd, &w->res, sizeof w->res, "the parent has died");
    /* Every connection stays open until the parent says "c". */
    read_from_parent(w, &word, 1);
    for (size_t i = 0; i < w->count; i++)
        if (w->conns[i].fd >= 0 && close(w->conns[i].fd) < 0)
            fail("close: %s", strerror(errno));
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

/* Worker k's share of n connections: n / workers, one more for the first
 * n % workers. */
static size_t share(long n, int k)
{
    return (size_t)(n / cfg.workers + (k < n % cfg.workers ? 1 : 0));
}

static void init_worker(struct worker *w, int k, uint32_t first_echo, uint32_t first_idle)
{
    size_t idle = share(cfg.idle, k);

    w->echo_count = share(cfg.connections, k);
    w->count = w->echo_count + idle;
    w->first_id = first_echo;
    w->conns = calloc(w->count + 1, sizeof *w->conns);
    if (w->conns == NULL)
        fail("out of memory");
    for (size_t i = 0; i < w->count; i++) {
        uint32_t id = i < w->echo_count ? first_echo + (uint32_t)i
                                        : first_idle + (uint32_t)(i - w->echo_count);

        w->conns[i] = (struct conn){ .fd = -1, .id = id, .events = UNWATCHED };
    }
    if (cfg.mode == ECHO && cfg.rate == 0) {
        w->times = calloc(w->echo_count * (size_t)cfg.in_flight + 1, sizeof *w->times);
        if (w->times == NULL)
            fail("out of memory");
    }
}

static void start_workers(int64_t deadline)
{
    uint32_t first_echo = 0, first_idle = (uint32_t)cfg.connections;
    pid_t parent = getpid();

    for (int k = 0; k < cfg.workers; k++) {
        int up[2], down[2];

        if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0)
            fail("pipe: %s", strerror(errno));
        children[k].pid = fork();
        if (children[k].pid < 0)
            fail("fork: %s", strerror(errno));
        if (children[k].pid == 0) {
            struct worker w = { .report_fd = up[1], .control_fd = down[0], .deadline = deadline };

            die_with_parent(parent);
            /* The other workers' pipes are the parent's alone: a copy here
             * would keep them open after the parent has died. */
            for (int j = 0; j < k; j++) {
                close_or_fail(children[j].report_fd);
                close_or_fail(children[j].control_fd);
            }
            close_or_fail(up[0]);
            close_or_fail(down[1]);
            init_worker(&w, k, first_echo, first_idle);
            run_worker(&w);
            free(w.conns);
            free(w.times);
            freeaddrinfo(server_addr);
            _exit(0);
        }
        close_or_fail(up[1]);
        close_or_fail(down[0]);
        children[k].report_fd = up[0];
        children[k].control_fd = down[1];
        first_echo += (uint32_t)share(cfg.connections, k);
        first_idle += (uint32_t)share(cfg.idle, k);
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
            (unsigned long long)total_opened, cfg.connections + cfg.idle);
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
        if (until == READY)
            progress("connecting");
    }
}

static void tell_workers(const void *word, size_t len)
{
    for (int k = 0; k < cfg.workers; k++)
        write_all(children[k].control_fd, word, len, "a worker died");
}

/* What has been seen on stdin. It is read with read(), not stdio, so that
 * nothing is read ahead and kept where poll() cannot see it. */
static bool stdin_closed;

/* Waits for stdin to say a line (anything ending in a newline) or to
 * close, for at most `seconds`. With `until_eof`, lines do not count. */
static void wait_for_stdin(double seconds, bool until_eof)
{
    int64_t until = now_ns() + seconds_to_ns(seconds);
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };

    while (!stdin_closed && now_ns() < until) {
        char buf[512];
        ssize_t n;
        int ready = poll(&pfd, 1, wait_timeout_ms(until));

        if (ready < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        if (ready <= 0)
            continue;
        n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        /* An error (stdin not open at all, say) counts as closed. */
        if (n <= 0) {
            stdin_closed = true;
            return;
        }
        if (!until_eof && memchr(buf, '\n', (size_t)n) != NULL)
            return;
    }
}

static void say(const char *line)
{
    printf("%s\n", line);
    if (fflush(stdout) == EOF)
        fail("cannot write to stdout: %s", strerror(errno));
}

/* Collects every worker's exit. A worker that failed after its report has
 * said why on stderr; the run is then not a clean one. */
static bool reap_workers(void)
{
    bool clean = true;

    for (int k = 0; k < cfg.workers; k++) {
        int status;

        while (waitpid(children[k].pid, &status, 0) < 0)
            if (errno != EINTR)
                fail("waitpid: %s", strerror(errno));
        clean = clean && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return clean;
}

int main(int argc, char **argv)
{
    struct result sum = { 0 };
    struct run run;
    int64_t deadline, go;
    char word[1 + sizeof go];
    bool clean;

    parse_args(argc, argv);
    read_port_range();
    choose_spread();
    resolve();
    raise_open_file_limit();
    /* A write to a worker that has died, or to a stdout nobody reads any
     * more, would kill loadgen with SIGPIPE, saying nothing; ignored, the
     * write fails with EPIPE instead, and loadgen says so (man 7 pipe). */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fail("signal: %s", strerror(errno));
    /* Built once here, before fork(), the workers share its pages. */
    pattern_at(0, 0);
    deadline = now_ns() + (int64_t)cfg.timeout * NS_PER_S;
    start_workers(deadline);
    collect(READY, deadline);
    if (isatty(STDERR_FILENO))
        fputc('\n', stderr);
    if (cfg.mode == HOLD || cfg.wait) {
        char line[64];

        snprintf(line, sizeof line, "connected %llu", (unsigned long long)total_opened);
        say(line);
        wait_for_stdin(cfg.mode == HOLD ? cfg.seconds : cfg.timeout, false);
    }
    go = now_ns();
    word[0] = 'g';
    memcpy(word + 1, &go, sizeof go);
    tell_workers(word, sizeof word);
    /* The workers' own deadline for this phase, and a little more. */
    deadline = go + (cfg.mode == HOLD ? 0 : seconds_to_ns(cfg.warmup) + seconds_to_ns(cfg.seconds)) +
               DRAIN_TIMEOUT_NS + CHECK_TIMEOUT_NS + 10 * NS_PER_S;
    collect(DONE, deadline);
    if (cfg.wait) {
        say("finished");
        wait_for_stdin(cfg.timeout, true);
    }
    tell_workers("c", 1);
    clean = reap_workers();
    for (int k = 0; k < cfg.workers; k++)
        result_add(&sum, &children[k].res);
    if (sum.opened == 0)
        fail("could not open any connection to %s port %s: %s: %s", cfg.address, cfg.port,
             step_name(sum.first_step), reason_text(sum.first_reason));
    run = (struct run){ .mode = cfg.mode, .connections = cfg.connections, .idle = cfg.idle,
                        .rate = cfg.rate, .workers = cfg.workers, .warmup = cfg.warmup,
                        .seconds = cfg.mode == HOLD ? (double)(now_ns() - go) / NS_PER_S
                                                    : cfg.seconds };
    if (cfg.json)
        print_json(&sum, &run);
    else
        print_summary(&sum, &run);
    if (fflush(stdout) == EOF)
        fail("cannot write to stdout: %s", strerror(errno));
    if (cfg.mode != HOLD && late_pct(&sum) >= 1)
        fprintf(stderr, "loadgen: fell behind the schedule: %.1f%% of messages started over 1 ms "
                "late (at worst %.1f ms); these latencies include the client's own delay\n",
                late_pct(&sum), (double)sum.max_lag_ns / 1e6);
    freeaddrinfo(server_addr);
    return clean && sum.failed == 0 && sum.byte_errors == 0 && sum.verified == sum.opened ? 0 : 1;
}
