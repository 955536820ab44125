/* net.c: socket(), bind(), listen() and accept(), with every failure reported. */
#include "net.h"
#include "log.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* getaddrinfo turns the numeric address into the right sockaddr for IPv4
 * or IPv6, so the rest of the code never needs to know which it is. */
static struct addrinfo *resolve(const char *address, int port, char *err, size_t errlen)
{
    struct addrinfo hints = { 0 }, *ai;
    char service[8];
    int rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    rc = getaddrinfo(address, service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot use address %s: %s", address, gai_strerror(rc));
        return NULL;
    }
    return ai;
}

static int listen_on(const struct addrinfo *ai, int backlog, char *err, size_t errlen)
{
    char where[ADDRESS_STRLEN];
    int fd, one = 1;

    net_format_address(ai->ai_addr, ai->ai_addrlen, where, sizeof where);
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* Without SO_REUSEADDR, restarting the server right after stopping it
     * fails with "Address already in use" while the old connections sit in
     * TIME_WAIT. It does not let two servers listen on one port. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
        snprintf(err, errlen, "setsockopt SO_REUSEADDR: %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", where, strerror(errno));
        goto fail;
    }
    if (listen(fd, backlog) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close_or_log(fd);
    return -1;
}

int net_listen(const char *address, int port, int backlog, char *err, size_t errlen)
{
    struct addrinfo *ai = resolve(address, port, err, errlen);
    int fd;

    if (ai == NULL)
        return -1;
    fd = listen_on(ai, backlog, err, errlen);
    freeaddrinfo(ai);
    return fd;
}

void net_announce(int listen_fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char where[ADDRESS_STRLEN];

    /* With -p 0 only the kernel knows the port: getsockname() asks it. */
    if (getsockname(listen_fd, (struct sockaddr *)&ss, &len) < 0)
        die("getsockname: %s", strerror(errno));
    net_format_address((struct sockaddr *)&ss, len, where, sizeof where);
    /* stdout is block-buffered when it is a pipe: without the flush, a
     * script waiting for this line would wait forever. */
    if (printf("listening on %s\n", where) < 0 || fflush(stdout) == EOF)
        die("cannot write to stdout: %s", strerror(errno));
}

/* Out of descriptors or kernel memory, accept() fails at once, and keeps
 * failing for as long as that lasts: retrying straight away would spin the
 * CPU. Pause, and let other connections finish. Say so once, not on every
 * try, and say when it is over. */
static bool backing_off;

static void back_off(void)
{
    struct timespec pause = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };

    if (!backing_off)
        log_error("accept: %s; retrying every 100 ms", strerror(errno));
    backing_off = true;
    /* A handler cuts nanosleep() short with EINTR, with SA_RESTART or
     * without (man 7 signal): in step 2, SIGCHLD does, as children exit.
     * What was left of the pause is now in pause: sleep that. */
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
        ;
}

int net_accept(int listen_fd, char *peer, size_t peerlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    for (;;) {
        len = sizeof ss;
        fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
        if (fd >= 0)
            break;
        switch (net_accept_failure(errno)) {
        case ACCEPT_RETRY:
            continue;
        case ACCEPT_EXHAUSTED:
            back_off();
            return -1;
        case ACCEPT_BUG:
            die("accept: %s", strerror(errno));
        }
    }
    if (backing_off)
        log_notice("accept: accepting clients again");
    backing_off = false;
    net_format_address((struct sockaddr *)&ss, len, peer, peerlen);
    return fd;
}

enum accept_failure net_accept_failure(int err)
{
    switch (err) {
    case EMFILE:       /* this process is out of descriptors */
    case ENFILE:       /* the whole system is */
    case ENOBUFS:
    case ENOMEM:
        return ACCEPT_EXHAUSTED;
    case EINTR:        /* a signal handler installed without SA_RESTART */
    case ECONNABORTED: /* the client gave up before we got to it */
    case EPERM:        /* a firewall rule refused this client */
    case EPROTO:       /* network errors, which accept(2) says to treat */
    case ENETDOWN:     /* like "try again" */
    case ENETUNREACH:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENONET:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
        return ACCEPT_RETRY;
    default:
        return ACCEPT_BUG;
    }
}

void net_format_address(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    int rc = getnameinfo(sa, len, host, sizeof host, port, sizeof port,
                         NI_NUMERICHOST | NI_NUMERICSERV);

    if (rc != 0)
        snprintf(buf, size, "(unknown address: %s)", gai_strerror(rc));
    else if (sa->sa_family == AF_INET6)
        snprintf(buf, size, "[%s]:%s", host, port);
    else
        snprintf(buf, size, "%s:%s", host, port);
}

void close_or_log(int fd)
{
    char reason[128];

    /* On Linux the descriptor is gone even when close() fails (EINTR, or
     * EIO from a delayed error), so the only thing left to do is say so.
     * strerror_r(): threads of step 3 may close sockets at the same time. */
    if (close(fd) < 0)
        log_error("close: %s", strerror_r(errno, reason, sizeof reason));
}
