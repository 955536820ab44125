/* net.h: the listening socket and accepting clients, the same for every step. */
#ifndef NET_H
#define NET_H

#include <stddef.h>
#include <sys/socket.h>

/* Room for "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535". */
#define ADDRESS_STRLEN 64

/* Creates a TCP socket listening on address:port. Returns its descriptor,
 * or -1 with a one-line reason in err. */
int net_listen(const char *address, int port, int backlog, char *err, size_t errlen);

/* Prints "listening on ADDRESS:PORT" on stdout and flushes it, so a script
 * started with -p 0 learns which port the kernel chose. */
void net_announce(int listen_fd);

/* Waits for the next client of a blocking listening socket. Returns its
 * descriptor and writes its address to peer, or -1 after a pause when the
 * process is out of descriptors or memory (logged once, not every time). */
int net_accept(int listen_fd, char *peer, size_t peerlen);

/* Why accept() failed, and so what to do next. */
enum accept_failure {
    ACCEPT_RETRY,      /* about that one client, or interrupted: go on */
    ACCEPT_EXHAUSTED,  /* out of descriptors or memory: wait, then retry */
    ACCEPT_BUG,        /* EBADF, EINVAL...: the program is wrong */
};
enum accept_failure net_accept_failure(int err);

/* Writes "1.2.3.4:5" or "[::1]:5". */
void net_format_address(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* close() of any descriptor, logging a failure instead of ignoring it. */
void close_or_log(int fd);

#endif
