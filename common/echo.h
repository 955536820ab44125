/* echo.h: the blocking echo loop that steps 1 to 3 run for each client. */
#ifndef ECHO_H
#define ECHO_H

#include <stddef.h>

/* Sends all len bytes, however many send() calls it takes. Returns 0, or -1
 * with errno set (EPIPE or ECONNRESET when the client has gone). */
int send_all(int fd, const void *buf, size_t len);

/* Logs the client in, echoes everything it sends until it closes its side,
 * logs it out and closes the socket. Blocks the calling thread throughout. */
void serve_client(int fd, const char *peer);

#endif
