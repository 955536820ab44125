/* options.h: the command line every step shares. */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>

struct options {
    const char *address; /* numeric IPv4 or IPv6 address to listen on */
    int port;            /* 0 lets the kernel choose */
    bool quiet;          /* -q: no connect/disconnect lines */
    int loops;           /* step 5's -w: event loops; 1 in the other steps */
};

/* Fills *opts from argv. Bad input prints one line on stderr and exits 2;
 * -h prints the usage on stdout and exits 0. */
void options_parse(int argc, char **argv, struct options *opts);

/* The same, taking -w N as well (step 5): the number of event loops, by
 * default one per online CPU. */
void options_parse_loops(int argc, char **argv, struct options *opts);

#endif
