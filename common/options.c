/* options.c: server [-p PORT] [-b ADDRESS] [-q] [-h], and step 5's [-w N] */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <unistd.h>

#define DEFAULT_PORT 9000
/* Loopback by default: an echo server should not be reachable from the
 * network unless the user asks for it with -b 0.0.0.0 or -b ::. */
#define DEFAULT_ADDRESS "127.0.0.1"
/* -w: more loops than this is a typo, not a machine. */
#define MAX_LOOPS 1024

/* Only step 5 has event loops to count: the other steps neither take -w
 * nor list it in their usage. */
static bool takes_loops;

/* The processors online now (man 3 sysconf), or 1 if sysconf() cannot
 * tell (-1). A CPU affinity mask (taskset) does not lower this count. */
static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n < MAX_LOOPS ? (int)n : MAX_LOOPS;
}

static void print_usage(FILE *out)
{
    fprintf(out, "usage: %s [-p PORT] [-b ADDRESS]%s [-q] [-h]\n",
            program_invocation_short_name, takes_loops ? " [-w N]" : "");
    fprintf(out,
            "  -p PORT     TCP port to listen on, 0 to let the kernel pick (default %d)\n"
            "  -b ADDRESS  IPv4 or IPv6 address to listen on (default %s)\n",
            DEFAULT_PORT, DEFAULT_ADDRESS);
    if (takes_loops)
        fprintf(out, "  -w N        event loops, 1 to %d (default: one per online CPU, %d here)\n",
                MAX_LOOPS, online_cpus());
    fprintf(out,
            "  -q          quiet: no line per connection\n"
            "  -h          show this help\n");
}

static noreturn void bad_usage(const char *what, const char *value)
{
    fprintf(stderr, "%s: %s '%s' (try -h)\n", program_invocation_short_name, what, value);
    exit(2);
}

/* strtol accepts leading spaces, signs and trailing junk unless we check:
 * a port or a number of loops is plain decimal digits and nothing else,
 * from min to max. */
static int parse_number(const char *s, const char *name, long min, long max)
{
    char why[64];
    char *end;
    long n;

    snprintf(why, sizeof why, "%s is not a number:", name);
    if (*s < '0' || *s > '9')
        bad_usage(why, s);
    errno = 0;
    n = strtol(s, &end, 10);
    if (*end != '\0')
        bad_usage(why, s);
    if (errno == ERANGE || n < min || n > max) {
        snprintf(why, sizeof why, "%s out of range %ld-%ld:", name, min, max);
        bad_usage(why, s);
    }
    return (int)n;
}

/* Only numeric addresses: resolving a name could block, or pick an
 * address the user did not expect. */
static const char *parse_address(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1)
        bad_usage("not an IPv4 or IPv6 address:", s);
    return s;
}

void options_parse(int argc, char **argv, struct options *opts)
{
    int c;

    opts->address = DEFAULT_ADDRESS;
    opts->port = DEFAULT_PORT;
    opts->quiet = false;
    opts->loops = takes_loops ? online_cpus() : 1;

    opterr = 0; /* we print our own one-line errors */
    while ((c = getopt(argc, argv, takes_loops ? ":p:b:w:qh" : ":p:b:qh")) != -1) {
        char flag[3] = { '-', (char)optopt, '\0' };

        switch (c) {
        case 'p': opts->port = parse_number(optarg, "port", 0, 65535); break;
        case 'b': opts->address = parse_address(optarg); break;
        case 'w': opts->loops = parse_number(optarg, "loops", 1, MAX_LOOPS); break;
        case 'q': opts->quiet = true; break;
        case 'h': print_usage(stdout); exit(0);
        case ':': bad_usage("option needs a value:", flag);
        default:  bad_usage("unknown option", flag);
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument", argv[optind]);
}

void options_parse_loops(int argc, char **argv, struct options *opts)
{
    takes_loops = true;
    options_parse(argc, argv, opts);
}
