// SPDX-License-Identifier: MIT
/*
 * opt.c - strict option parsing for the programs (opt.h): each usage error
 * is one line naming the option and what it takes, then exit status 2.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"

const char *opt_prog(void)
{
	const char *p = program_invocation_short_name;

	/* Uninstalled, libtool's wrapper runs .libs/lt-PROG. */
	return strncmp(p, "lt-", 3) ? p : p + 3;
}

__attribute__((noreturn, format(printf, 2, 0)))
static void vfail(bool hint, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", opt_prog());
	vfprintf(stderr, fmt, ap);
	if (hint)
		fprintf(stderr, " (try '%s --help')", opt_prog());
	fputc('\n', stderr);
	exit(OPT_EXIT_USAGE);
}

void opt_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(true, fmt, ap);
}

void opt_bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(false, fmt, ap);
}

/* How many long options @name (up to '=') abbreviates, 1 for an exact
 * one; *@val gets the val of the last. */
static int long_matches(const struct option *longs, const char *name,
			int *val)
{
	size_t n = strcspn(name, "=");
	int hits = 0;

	for (; longs->name; longs++) {
		if (strncmp(longs->name, name, n))
			continue;
		*val = longs->val;
		if (strlen(longs->name) == n)
			return 1;
		hits++;
	}
	return hits;
}

void opt_getopt_fail(int c, char **argv, const struct option *longs)
{
	/* A long option is always a whole argument, the last one consumed
	 * (optopt is its val, or 0 when unknown); a short one is named by
	 * optopt (its group may not be used up). */
	const char *el = argv[optind - 1];
	bool dashes = !strncmp(el, "--", 2);
	int val = 0, hits = dashes ? long_matches(longs, el + 2, &val) : 0;
	bool is_long = dashes && (!optopt || (hits == 1 && val == optopt));
	char name[3] = { '-', (char)optopt, '\0' };
	int len = is_long ? (int)strcspn(el, "=") : 2;
	const char *shown = is_long ? el : name;

	if (c == ':')
		opt_fail("option '%.*s' needs an argument", len, shown);
	if (is_long && !optopt && hits > 1)
		opt_fail("ambiguous option '%.*s'", len, shown);
	if (is_long && optopt)
		opt_fail("option '%.*s' takes no argument", len, shown);
	opt_fail("unknown option '%.*s'", len, shown);
}

/* strtoll() of a whole decimal argument: false for anything else. */
static bool parse_ll(const char *arg, long long *v)
{
	char *end;

	if (!((arg[0] >= '0' && arg[0] <= '9') ||
	      (arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9')))
		return false;
	errno = 0;
	*v = strtoll(arg, &end, 10);
	return !errno && !*end;
}

long long opt_int(const char *opt, const char *arg, long long min,
		  long long max)
{
	long long v;

	if (!parse_ll(arg, &v) || v < min || v > max)
		opt_bad("%s: expected an integer from %lld to %lld, got '%s'",
			opt, min, max, arg);
	return v;
}

unsigned int opt_pow2(const char *opt, const char *arg, unsigned int min,
		      unsigned int max)
{
	long long v;

	if (!parse_ll(arg, &v) || v < min || v > max || (v & (v - 1)))
		opt_bad("%s: expected a power of 2 from %u to %u, got '%s'",
			opt, min, max, arg);
	return v;
}

int32_t opt_ms(const char *opt, const char *arg, int32_t min)
{
	long long v;

	if (!parse_ll(arg, &v) || (v != -1 && (v < min || v > INT32_MAX)))
		opt_bad("%s: expected milliseconds from %d to %d, or -1 for no limit, got '%s'",
			opt, min, INT32_MAX, arg);
	return v;
}

double opt_double(const char *opt, const char *arg, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (!((arg[0] >= '0' && arg[0] <= '9') || arg[0] == '-' ||
	      arg[0] == '.') || errno || *end || !(v >= min && v <= max))
		opt_bad("%s: expected a number from %g to %g, got '%s'", opt,
			min, max, arg);
	return v;
}

int opt_choice(const char *opt, const char *arg, const char *const *names)
{
	char list[256] = "";
	size_t n = 0;
	int i;

	for (i = 0; names[i]; i++)
		if (!strcmp(arg, names[i]))
			return i;
	for (i = 0; names[i] && n < sizeof(list); i++)
		n += snprintf(list + n, sizeof(list) - n, "%s%s",
			      !i ? "" : names[i + 1] ? ", " : " or ", names[i]);
	opt_bad("%s: expected %s, got '%s'", opt, list, arg);
}

/* As libgmem splits it (the last colon; [v6] brackets). */
bool opt_split_hostport(const char *arg, char *host, size_t host_len,
			long long *port)
{
	const char *colon = strrchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : 0;

	if (!colon || !n || !parse_ll(colon + 1, port))
		return false;
	if (n >= 2 && arg[0] == '[' && arg[n - 1] == ']') {
		arg++;
		n -= 2;
	}
	if (!n || n >= host_len)
		return false;
	memcpy(host, arg, n);
	host[n] = '\0';
	return true;
}

void opt_hostport(const char *opt, const char *arg, bool passive)
{
	char host[256];
	long long port;

	if (!opt_split_hostport(arg, host, sizeof(host), &port) || port < !passive ||
	    port > 65535 || (!passive && !strcmp(host, "*")))
		opt_bad("%s: expected HOST:PORT, PORT from %d to 65535, got '%s'",
			opt, !passive, arg);
}

int opt_resolve(const char *opt, const char *arg, bool passive)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	struct addrinfo *ai;
	char host[256];
	long long port;
	int ret;

	if (!opt_split_hostport(arg, host, sizeof(host), &port) || !strcmp(host, "*"))
		return 0;
	ret = getaddrinfo(host, NULL, &hints, &ai);
	if (ret) {
		fprintf(stderr, "%s: %s: cannot resolve '%s': %s\n", opt_prog(),
			opt, host, ret == EAI_SYSTEM ? strerror(errno) :
			gai_strerror(ret));
		return -1;
	}
	freeaddrinfo(ai);
	return 0;
}
