/* echo.c: read what the client sends, send it back, until it is done. */
#include "echo.h"
#include "log.h"
#include "net.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define ECHO_BUFFER_SIZE 16384

int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        /* On a blocking socket send() waits for room in the socket buffer.
         * It fails with EPIPE or ECONNRESET once the client is gone (this
         * does not kill us: main() ignores SIGPIPE). A signal, even a stop
         * and continue, may cut it short: fewer bytes sent, or EINTR if
         * none were and a handler without SA_RESTART ran (man 7 signal). */
        ssize_t n = send(fd, p, len, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Returns 0 when the client closed its side (recv() returned 0), or -1 with
 * errno. Every byte read has been echoed before the next recv(), so on a
 * half-close the client already has all of its bytes back. */
static int echo_until_eof(int fd, long long *echoed)
{
    char buf[ECHO_BUFFER_SIZE];

    for (;;) {
        /* recv() returns as soon as any bytes have arrived, which may be
         * fewer than the client sent in one go: TCP is a byte stream. */
        ssize_t n = recv(fd, buf, sizeof buf, 0);

        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (send_all(fd, buf, (size_t)n) < 0)
            return -1;
        *echoed += n;
    }
}

void serve_client(int fd, const char *peer)
{
    long long echoed = 0;
    char reason[128];

    log_info("client %s connected", peer);
    /* strerror_r(), not strerror(): in step 3 many threads log at once,
     * and strerror() may hand all of them the same buffer. */
    if (echo_until_eof(fd, &echoed) < 0)
        log_info("client %s dropped after %lld bytes: %s", peer, echoed,
                 strerror_r(errno, reason, sizeof reason));
    else
        log_info("client %s disconnected after %lld bytes", peer, echoed);
    close_or_log(fd);
}
