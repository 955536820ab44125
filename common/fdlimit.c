/* fdlimit.c: the open-file limit. See fdlimit.h. */
#include "fdlimit.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

/* Each connection needs a descriptor, and the soft limit is often 1024.
 * The hard limit is as high as an unprivileged process may go. */
size_t raise_open_file_limit(size_t most)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit RLIMIT_NOFILE: %s", strerror(errno));
    rl.rlim_cur = rl.rlim_max < most ? rl.rlim_max : most;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("setrlimit RLIMIT_NOFILE: %s", strerror(errno));
    return (size_t)rl.rlim_cur;
}
