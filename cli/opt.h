/* SPDX-License-Identifier: MIT */
/*
 * opt.h - what the command lines of gmem-migrate, gmem-pager, gmem-replay
 * and the benchmarks share: the program's own name, numbers checked
 * against their range as they are parsed, HOST:PORT addresses, and one
 * line on stderr for each usage error, then exit status 2.
 *
 * The parsers exit rather than return an error: a usage error ends the
 * program before it allocates or connects anything.
 */
#ifndef GMEM_CLI_OPT_H
#define GMEM_CLI_OPT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The exit status of a usage error, in every program. */
#define OPT_EXIT_USAGE 2

/* The program's name as it was run, without libtool's "lt-" prefix. */
const char *opt_prog(void);

/* Prints "PROG: MESSAGE (try 'PROG --help')" and exits OPT_EXIT_USAGE. */
__attribute__((noreturn, format(printf, 1, 2)))
void opt_fail(const char *fmt, ...);

/* A bad argument, "PROG: --opt: expected ..., got 'x'" (the message says
 * what the option takes: no hint), and exits OPT_EXIT_USAGE. */
__attribute__((noreturn, format(printf, 1, 2)))
void opt_bad(const char *fmt, ...);

/*
 * Reports getopt_long()'s error return @c ('?': an unknown or ambiguous
 * option, or an argument where none is taken; ':' a missing argument) in
 * one line and exits OPT_EXIT_USAGE. The caller sets opterr = 0 and starts
 * its short options with ':'.
 */
__attribute__((noreturn))
void opt_getopt_fail(int c, char **argv, const struct option *longs);

/*
 * The parsers: @opt is the option's long name ("--bulk"), @arg its
 * argument. Decimal only; an empty argument, leading blanks, trailing
 * characters, overflow or a value outside the range end the program with
 * "PROG: --bulk: expected an integer from 1 to 8, got 'x'".
 */
long long opt_int(const char *opt, const char *arg, long long min,
		  long long max);
/* A power of two in [@min, @max]. */
unsigned int opt_pow2(const char *opt, const char *arg, unsigned int min,
		      unsigned int max);
/* Milliseconds in [@min, INT32_MAX], or -1 for no limit. */
int32_t opt_ms(const char *opt, const char *arg, int32_t min);
/* A decimal number (strtod) in [@min, @max]. */
double opt_double(const char *opt, const char *arg, double min, double max);

/* One of @names (NULL-terminated): its index. */
int opt_choice(const char *opt, const char *arg, const char *const *names);

/*
 * Splits HOST:PORT at its last colon, [v6] brackets taken off HOST: true
 * with @host (NUL-terminated, < @host_len bytes, not empty) and @port (not
 * range-checked), false when @arg has no colon, an empty HOST or a PORT
 * that is not a number.
 */
bool opt_split_hostport(const char *arg, char *host, size_t host_len,
			long long *port);

/*
 * HOST:PORT ("10.0.0.1:7400", "[::1]:7400", "name:7400"; with @passive
 * also "*:PORT" for every address): PORT a number from 1 (0 with
 * @passive: the system picks one) to 65535. Exits as the parsers do.
 */
void opt_hostport(const char *opt, const char *arg, bool passive);

/*
 * Resolves HOST of a valid HOST:PORT (getaddrinfo()): 0, or -1 after
 * "PROG: --connect: cannot resolve 'HOST': REASON" (gai_strerror()).
 * A name that does not resolve is a network failure, not a usage error:
 * the caller picks the exit status.
 */
int opt_resolve(const char *opt, const char *arg, bool passive);

#endif
