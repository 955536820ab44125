/* echo-client: pokes an echo server the way the tests and the tutorial need.
 *
 * One thread, nonblocking sockets and poll(), so it can drive one connection
 * or ten thousand, send and read at the same time (a payload larger than the
 * socket buffers would deadlock a client that sends everything first), and
 * give up at a deadline instead of hanging. Every byte that comes back is
 * checked against what was sent: connection c's byte i is pattern(c, i),
 * which runs through all 256 values, NUL and 0xFF included.
 */
#include "client.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
#define CONNECT_BATCH 1000   /* connects in flight at once */
#define STALL_MS 1000        /* flood: no room to send for this long = pushed back */

enum mode { ECHO, HOLD, OPEN, FLOOD, RESET };

struct config {
    const char *address;
    const char *port;
    size_t connections;
    size_t bytes;
    bool bytes_given;
    bool half_close;
    bool keep_open;      /* leave each connection open when its echo is in */
    int seconds;
    enum mode mode;
};

struct conn {
    int fd;
    size_t sent;
    size_t received;
    bool done;
};

static int64_t deadline_ns;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: echo-client -p PORT [-a ADDRESS] [-c CONNECTIONS] [-s BYTES] [-k] [-t SECONDS] [MODE]\n"
            "modes:\n"
            "  echo   each connection sends BYTES while reading the echo, checks it, closes (default)\n"
            "  hold   opens the connections and has each echo one byte, so the server is\n"
            "         serving them all, prints \"connected N\", waits for stdin to close,\n"
            "         then runs echo on each\n"
            "  open   the same without the first byte: \"connected N\" once the kernel has\n"
            "         completed the handshakes, whether or not the server has accepted them\n"
            "  flood  one connection sends without reading; prints \"stalled after N bytes\" when the\n"
            "         server stops taking data (fails past BYTES); when stdin closes, half-closes\n"
            "         and checks that all N bytes come back\n"
            "  reset  one connection after another sends BYTES without reading, half-closes,\n"
            "         then resets while the server is still echoing\n"
            "options:\n"
            "  -a ADDRESS  server address (default 127.0.0.1)\n"
            "  -c N        connections (default 1)\n"
            "  -s BYTES    bytes per connection, K and M suffixes allowed (default 1000;\n"
            "              flood 256M)\n"
            "  -k          half-close each connection after sending, then read the echo to EOF\n"
            "  -t SECONDS  give up after this long (default 30)\n");
}

static size_t parse_count(const char *s, bool suffix_ok, size_t min, size_t max)
{
    char *end;
    unsigned long long v;
    int shift = 0;

    if (*s < '0' || *s > '9')
        bad_usage("not a number:", s);
    errno = 0;
    v = strtoull(s, &end, 10);
    if (suffix_ok && (*end == 'K' || *end == 'k'))
        shift = 10, end++;
    else if (suffix_ok && (*end == 'M' || *end == 'm'))
        shift = 20, end++;
    if (*end != '\0' || errno == ERANGE || v > (max >> shift) || (v << shift) < min)
        bad_usage("not a number in range:", s);
    return (size_t)(v << shift);
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
    static const char *const names[] = { "echo", "hold", "open", "flood", "reset" };
    int c;

    *cfg = (struct config){ .address = "127.0.0.1", .connections = 1, .bytes = 1000,
                            .seconds = 30, .mode = ECHO };
    opterr = 0;
    while ((c = getopt(argc, argv, ":a:p:c:s:kt:h")) != -1) {
        char flag[3] = { '-', (char)optopt, '\0' };

        switch (c) {
        case 'a': cfg->address = optarg; break;
        case 'p': cfg->port = optarg; break;
        case 'c': cfg->connections = parse_count(optarg, false, 1, 1000000); break;
        case 's': cfg->bytes = parse_count(optarg, true, 1, (size_t)1 << 40); cfg->bytes_given = true; break;
        case 'k': cfg->half_close = true; break;
        case 't': cfg->seconds = (int)parse_count(optarg, false, 1, 3600); break;
        case 'h': usage(stdout); exit(0);
        case ':': bad_usage("option needs a value:", flag); break;
        default:  bad_usage("unknown option", flag); break;
        }
    }
    if (optind < argc) {
        size_t m;

        for (m = 0; m < 5 && strcmp(argv[optind], names[m]) != 0; m++)
            ;
        if (m == 5)
            bad_usage("unknown mode", argv[optind]);
        cfg->mode = (enum mode)m;
        optind++;
    }
    if (optind < argc)
        bad_usage("unexpected argument", argv[optind]);
    if (cfg->port == NULL)
        bad_usage("missing option", "-p PORT");
    if (!cfg->bytes_given && cfg->mode == FLOOD)
        cfg->bytes = 256u << 20;
    if (!cfg->bytes_given && cfg->mode == RESET)
        cfg->bytes = 1000;
    if (cfg->mode == RESET)
        cfg->half_close = true;
}

/* Milliseconds left before the deadline, for poll(). Past it, we fail. */
static int remaining_ms(void)
{
    long long ms = (deadline_ns - now_ns()) / 1000000;

    if (ms <= 0)
        fail("timed out");
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static struct addrinfo *resolve(const struct config *cfg)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *ai;
    int rc = getaddrinfo(cfg->address, cfg->port, &hints, &ai);

    if (rc != 0)
        fail("bad address %s port %s: %s", cfg->address, cfg->port, gai_strerror(rc));
    return ai;
}

static int start_connect(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        fail("socket: %s", strerror(errno));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
        fail("cannot connect: %s", strerror(errno));
    return fd;
}

/* A nonblocking connect() returns at once; poll() says when the handshake
 * is over, and SO_ERROR says whether it worked. */
static void finish_connects(struct conn *cs, size_t n)
{
    struct pollfd *pfds = calloc(n, sizeof *pfds);
    size_t left = n;

    if (pfds == NULL)
        fail("out of memory");
    for (size_t i = 0; i < n; i++)
        pfds[i] = (struct pollfd){ .fd = cs[i].fd, .events = POLLOUT };
    while (left > 0) {
        int ready = poll(pfds, n, remaining_ms());

        if (ready < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        for (size_t i = 0; i < n && ready > 0; i++) {
            int err = 0;
            socklen_t len = sizeof err;

            if (pfds[i].revents == 0)
                continue;
            if (getsockopt(pfds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                fail("getsockopt: %s", strerror(errno));
            if (err != 0)
                fail("cannot connect: %s", strerror(err));
            pfds[i].fd = -1; /* poll() skips negative descriptors */
            left--;
        }
    }
    free(pfds);
}

static struct conn *connect_all(const struct config *cfg, size_t n)
{
    struct addrinfo *ai = resolve(cfg);
    struct conn *cs = calloc(n, sizeof *cs);

    if (cs == NULL)
        fail("out of memory for %zu connections", n);
    for (size_t first = 0; first < n; first += CONNECT_BATCH) {
        size_t count = n - first < CONNECT_BATCH ? n - first : CONNECT_BATCH;

        for (size_t i = first; i < first + count; i++)
            cs[i].fd = start_connect(ai);
        finish_connects(cs + first, count);
    }
    freeaddrinfo(ai);
    return cs;
}

static void fill_pattern(char *buf, size_t conn, size_t from, size_t len)
{
    while (len > 0) {
        size_t n = len < PATTERN_SIZE ? len : PATTERN_SIZE;

        memcpy(buf, pattern_at(conn, from), n);
        buf += n;
        from += n;
        len -= n;
    }
}
static void send_more(const struct config *cfg, struct conn *c, size_t id)
{
    char buf[CHUNK];
    size_t len = cfg->bytes - c->sent < CHUNK ? cfg->bytes - c->sent : CHUNK;
    ssize_t n;

    fill_pattern(buf, id, c->sent, len);
    n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        fail("connection %zu: send after %zu bytes: %s", id, c->sent, strerror(errno));
    }
    c->sent += (size_t)n;
    if (c->sent == cfg->bytes && cfg->half_close && shutdown(c->fd, SHUT_WR) < 0)
        fail("connection %zu: shutdown: %s", id, strerror(errno));
}

static void close_conn(struct conn *c)
{
    if (close(c->fd) < 0)
        fail("close: %s", strerror(errno));
    c->done = true;
}

/* Reads what has come back and checks it byte for byte. With -k the
 * connection is done when the server closes after the last byte; without,
 * as soon as the last byte is in. */
static void receive_more(const struct config *cfg, struct conn *c, size_t id)
{
    char buf[CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);

    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        fail("connection %zu: recv after %zu bytes: %s", id, c->received, strerror(errno));
    }
    if (n == 0) {
        if (!cfg->half_close || c->received < cfg->bytes)
            fail("connection %zu: server closed after echoing %zu of %zu bytes",
                 id, c->received, cfg->bytes);
        close_conn(c);
        return;
    }
    if (c->received + (size_t)n > cfg->bytes)
        fail("connection %zu: got more bytes back than it sent", id);
    if (memcmp(buf, pattern_at(id, c->received), (size_t)n) != 0)
        for (ssize_t i = 0; i < n; i++)
            if ((unsigned char)buf[i] != pattern(id, c->received + (size_t)i))
                fail("connection %zu: byte %zu came back as 0x%02x, sent 0x%02x", id,
                     c->received + (size_t)i, (unsigned char)buf[i],
                     pattern(id, c->received + (size_t)i));
    c->received += (size_t)n;
    if (c->received == cfg->bytes && cfg->keep_open)
        c->done = true;
    else if (c->received == cfg->bytes && !cfg->half_close)
        close_conn(c);
}

/* Every connection sends and reads at once, until each is done. */
static void run_echo(const struct config *cfg, struct conn *cs, size_t n)
{
    struct pollfd *pfds = calloc(n, sizeof *pfds);
    size_t left = n;

    if (pfds == NULL)
        fail("out of memory");
    /* A held connection may have sent its whole stream already (-s 1). */
    for (size_t i = 0; i < n; i++) {
        if (cs[i].done || cs[i].sent < cfg->bytes)
            continue;
        if (cfg->half_close && shutdown(cs[i].fd, SHUT_WR) < 0)
            fail("connection %zu: shutdown: %s", i, strerror(errno));
        if (!cfg->half_close && cs[i].received == cfg->bytes) {
            close_conn(&cs[i]);
            left--;
        }
    }
    while (left > 0) {
        for (size_t i = 0; i < n; i++) {
            pfds[i].fd = cs[i].done ? -1 : cs[i].fd;
            pfds[i].events = POLLIN | (cs[i].sent < cfg->bytes ? POLLOUT : 0);
        }
        if (poll(pfds, n, remaining_ms()) < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        for (size_t i = 0; i < n; i++) {
            if (pfds[i].fd < 0 || pfds[i].revents == 0)
                continue;
            if ((pfds[i].revents & POLLOUT) && cs[i].sent < cfg->bytes)
                send_more(cfg, &cs[i], i);
            if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
                receive_more(cfg, &cs[i], i);
            if (cs[i].done)
                left--;
        }
    }
    free(pfds);
}

/* Each connection echoes the first byte of its stream and stays open: a
 * byte that came back proves the server is serving that connection. */
static void echo_first_byte(struct config *cfg, struct conn *cs, size_t n)
{
    struct config first = *cfg;

    first.bytes = 1;
    first.half_close = false;
    first.keep_open = true;
    run_echo(&first, cs, n);
    for (size_t i = 0; i < n; i++)
        cs[i].done = false;
}

static void wait_for_stdin_to_close(void)
{
    char buf[256];

    for (;;) {
        struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
        ssize_t n;

        if (poll(&pfd, 1, remaining_ms()) < 0) {
            if (errno == EINTR)
                continue;
            fail("poll: %s", strerror(errno));
        }
        n = read(STDIN_FILENO, buf, sizeof buf);
        if (n == 0)
            return;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            fail("read stdin: %s", strerror(errno));
    }
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    /* A test reads this line through a pipe while we keep running. */
    if (fflush(stdout) == EOF)
        fail("cannot write to stdout: %s", strerror(errno));
}

/* Sends the connection's pattern until the socket has had no room for
 * STALL_MS: the server has stopped reading. Returns the bytes it took. */
static size_t send_until_stalled(const struct config *cfg, struct conn *c)
{
    char buf[CHUNK];

    for (;;) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
        ssize_t n;
        int ready;

        fill_pattern(buf, 0, c->sent, sizeof buf);
        n = send(c->fd, buf, sizeof buf, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            if (c->sent > cfg->bytes)
                return c->sent;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            fail("send after %zu bytes: %s", c->sent, strerror(errno));
        ready = poll(&pfd, 1, remaining_ms() < STALL_MS ? remaining_ms() : STALL_MS);
        if (ready < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        if (ready == 0)
            return c->sent;
    }
}

/* After a flood, the client reads at last: it half-closes and checks that
 * every byte it sent comes back, however long the server was stuck. */
static void run_flood(const struct config *cfg)
{
    struct config drain = *cfg;
    struct conn *c = connect_all(cfg, 1);

    if (send_until_stalled(cfg, c) > cfg->bytes)
        fail("the server never pushed back: it took more than %zu bytes", cfg->bytes);
    say("stalled after %zu bytes\n", c->sent);
    wait_for_stdin_to_close();
    if (shutdown(c->fd, SHUT_WR) < 0)
        fail("shutdown: %s", strerror(errno));
    drain.bytes = c->sent;
    drain.half_close = true;
    run_echo(&drain, c, 1);
    say("echoed all %zu bytes\n", drain.bytes);
    free(c);
}

/* Makes the server write to a connection that the client has reset, which
 * kills a server that does not guard against SIGPIPE. The client sends,
 * half-closes and resets in quick succession: the server's socket gets the
 * data, then the FIN (its side moves to CLOSE_WAIT), then the reset, which
 * in CLOSE_WAIT turns the server's next send() into EPIPE and SIGPIPE. The
 * server usually reads the data only after all three have arrived, but not
 * always: run it many times. SO_LINGER with a zero timeout makes close()
 * send the reset (RST) instead of waiting for the orderly end. */
static void run_reset(const struct config *cfg)
{
    struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };

    for (size_t i = 0; i < cfg->connections; i++) {
        struct conn *c = connect_all(cfg, 1);

        while (c->sent < cfg->bytes) {
            struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

            if (poll(&pfd, 1, remaining_ms()) < 0 && errno != EINTR)
                fail("poll: %s", strerror(errno));
            send_more(cfg, c, 0);
        }
        if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) < 0)
            fail("setsockopt SO_LINGER: %s", strerror(errno));
        close_conn(c);
        free(c);
    }
    say("reset %zu connections\n", cfg->connections);
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct conn *cs;

    parse_args(argc, argv, &cfg);
    raise_open_file_limit();
    deadline_ns = now_ns() + (int64_t)cfg.seconds * 1000000000;

    switch (cfg.mode) {
    case FLOOD:
        run_flood(&cfg);
        return 0;
    case RESET:
        run_reset(&cfg);
        return 0;
    case HOLD:
    case OPEN:
    case ECHO:
        break;
    }
    cs = connect_all(&cfg, cfg.connections);
    if (cfg.mode == HOLD)
        echo_first_byte(&cfg, cs, cfg.connections);
    if (cfg.mode == HOLD || cfg.mode == OPEN) {
        say("connected %zu\n", cfg.connections);
        wait_for_stdin_to_close();
    }
    run_echo(&cfg, cs, cfg.connections);
    say("echoed %zu connections, %zu bytes each\n", cfg.connections, cfg.bytes);
    free(cs);
    return 0;
}
