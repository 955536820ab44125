/* options.c: server [-p PORT] [-b ADDRESS] [-q] [-h] */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <unistd.h>

#define DEFAULT_PORT 9000
/* Loopback by default: an echo server should not be reachable from the
 * network unless the user asks for it with -b 0.0.0.0 or -b ::. */
#define DEFAULT_ADDRESS "127.0.0.1"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-p PORT] [-b ADDRESS] [-q] [-h]\n"
            "  -p PORT     TCP port to listen on, 0 to let the kernel pick (default %d)\n"
            "  -b ADDRESS  IPv4 or IPv6 address to listen on (default %s)\n"
            "  -q          quiet: no line per connection\n"
            "  -h          show this help\n",
            program_invocation_short_name, DEFAULT_PORT, DEFAULT_ADDRESS);
}

static noreturn void bad_usage(const char *what, const char *value)
{
    fprintf(stderr, "%s: %s '%s' (try -h)\n", program_invocation_short_name, what, value);
    exit(2);
}

/* strtol accepts leading spaces, signs and trailing junk unless we check;
 * a port is plain decimal digits and nothing else. */
static int parse_port(const char *s)
{
    char *end;
    long port;

    if (*s < '0' || *s > '9')
        bad_usage("port is not a number:", s);
    errno = 0;
    port = strtol(s, &end, 10);
    if (*end != '\0')
        bad_usage("port is not a number:", s);
    if (errno == ERANGE || port > 65535)
        bad_usage("port out of range 0-65535:", s);
    return (int)port;
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

    opterr = 0; /* we print our own one-line errors */
    while ((c = getopt(argc, argv, ":p:b:qh")) != -1) {
        char flag[3] = { '-', (char)optopt, '\0' };

        switch (c) {
        case 'p': opts->port = parse_port(optarg); break;
        case 'b': opts->address = parse_address(optarg); break;
        case 'q': opts->quiet = true; break;
        case 'h': print_usage(stdout); exit(0);
        case ':': bad_usage("option needs a value:", flag);
        default:  bad_usage("unknown option", flag);
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument", argv[optind]);
}
