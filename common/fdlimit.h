/* fdlimit.h: the open-file limit, for the servers that hold a descriptor
 * per client in one process (steps 4 to 6, and bench/poll-echo). */
#ifndef FDLIMIT_H
#define FDLIMIT_H

#include <stddef.h>

/* Raises the soft limit on open files (RLIMIT_NOFILE) to the hard limit,
 * or to most if the hard limit is higher. Returns the new soft limit: the
 * process's descriptors are numbered from 0 to one below it. Exits with
 * a message if getrlimit() or setrlimit() fails. */
size_t raise_open_file_limit(size_t most);

#endif
