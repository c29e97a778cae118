// SPDX-License-Identifier: MIT
/*
 * faultproxy.c - a TCP proxy that injects faults between a destination and
 * its page server, for the fault-injection suite: it forwards every
 * connection it accepts to the server, and on the way from the server to
 * the destination it can delay each chunk, flip one byte, insert garbage,
 * or cut every connection after some bytes (a truncated frame; the
 * connections that come after the cut, a destination recovering, are
 * forwarded untouched).
 *   faultproxy --listen HOST:PORT --to HOST:PORT [--delay-ms MS]
 *              [--conn N] [--flip-at B | --garbage-at B | --cut-at B]
 * B counts bytes from the server on connection N (0 = control, the first
 * accepted). Prints "ready" on stdout once listening; exits when the
 * destination's control connection ends (another connection that ends
 * closes only itself). Not a general-purpose proxy.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "opt.h"

#define MAX_PAIRS 9

enum fault { NONE, FLIP, GARBAGE, CUT };

struct opts {
	const char *listen, *to;
	int delay_ms;
	unsigned int conn;
	enum fault fault;
	uint64_t at;
};

struct pair {
	int down, up;      /* destination side, server side */
	uint64_t from_up;  /* bytes forwarded from the server */
};

static int sock_for(const char *addr, bool passive)
{
	char host[256], port[8];
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_STREAM }, *ai;
	int fd, one = 1;
	long long nr;

	if (!opt_split_hostport(addr, host, sizeof(host), &nr))
		return -1;
	snprintf(port, sizeof(port), "%lld", nr);
	if (getaddrinfo(host, port, &hints, &ai))
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd >= 0 && (passive ? bind(fd, ai->ai_addr, ai->ai_addrlen) ||
					  listen(fd, 16)
				: connect(fd, ai->ai_addr, ai->ai_addrlen))) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return false;
		p += w;
		n -= w;
	}
	return true;
}

/* Forwards one chunk from the server, doing the fault where it falls.
 * Returns false once the proxy must stop (a cut, or a peer gone). */
static bool forward_down(const struct opts *o, struct pair *p, bool target,
			 uint8_t *buf, ssize_t n)
{
	static const uint8_t junk[64] = { 0xde, 0xad, 0xbe, 0xef, 0xab };
	uint64_t at = o->at;
	bool hit = target && p->from_up <= at && at < p->from_up + n;

	if (o->delay_ms)
		usleep(o->delay_ms * 1000);
	if (hit && o->fault == CUT) {
		write_all(p->down, buf, at - p->from_up);
		fprintf(stderr, "faultproxy: cut after %lu bytes\n", at);
		return false;
	}
	if (hit && o->fault == FLIP) {
		buf[at - p->from_up] ^= 0x01;
		fprintf(stderr, "faultproxy: flipped byte %lu\n", at);
	}
	if (hit && o->fault == GARBAGE) {
		size_t k = at - p->from_up;

		fprintf(stderr, "faultproxy: garbage at byte %lu\n", at);
		if (!write_all(p->down, buf, k) ||
		    !write_all(p->down, junk, sizeof(junk)))
			return false;
		p->from_up += n;
		return write_all(p->down, buf + k, n - k);
	}
	p->from_up += n;
	return write_all(p->down, buf, n);
}

/* A connection other than the control one ended or failed: only its pair
 * goes, so that what is still queued on the others (a destination's DONE)
 * gets through. */
static void pair_close(struct pair *p)
{
	close(p->down);
	close(p->up);
	p->down = p->up = -1;
}

/* The cut: every connection ends, both ways; the fault is spent. */
static unsigned int cut_all(struct opts *o, struct pair *pairs,
			    unsigned int nr)
{
	for (unsigned int i = 0; i < nr; i++) {
		close(pairs[i].down);
		close(pairs[i].up);
	}
	o->fault = NONE;
	return 0;
}

static int run(struct opts *o, int lfd)
{
	static uint8_t buf[1 << 16];
	struct pair pairs[MAX_PAIRS];
	struct pollfd pfd[1 + 2 * MAX_PAIRS];
	unsigned int nr = 0;

	for (;;) {
		unsigned int n = 0;

		pfd[n++] = (struct pollfd){ .fd = nr < MAX_PAIRS ? lfd : -1,
					    .events = POLLIN };
		for (unsigned int i = 0; i < nr; i++) {
			pfd[n++] = (struct pollfd){ .fd = pairs[i].down,
						    .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = pairs[i].up,
						    .events = POLLIN };
		}
		if (poll(pfd, n, -1) < 0)
			return errno == EINTR ? 0 : 1;
		if (pfd[0].revents & POLLIN) {
			pairs[nr].down = accept(lfd, NULL, NULL);
			pairs[nr].up = sock_for(o->to, false);
			pairs[nr].from_up = 0;
			if (pairs[nr].down < 0 || pairs[nr].up < 0)
				return 0; /* the server is gone */
			nr++;
			continue;
		}
		for (unsigned int i = 0; i < nr; i++) {
			ssize_t len = 1;
			bool ok = true;

			if (pfd[1 + 2 * i].revents) {
				len = read(pairs[i].down, buf, sizeof(buf));
				ok = len > 0 && write_all(pairs[i].up, buf, len);
			}
			if (ok && pfd[2 + 2 * i].revents) {
				len = read(pairs[i].up, buf, sizeof(buf));
				ok = len > 0 && forward_down(o, &pairs[i],
							     i == o->conn, buf, len);
				if (!ok && len > 0 && o->fault == CUT) {
					nr = cut_all(o, pairs, nr);
					break;
				}
			}
			if (ok)
				continue;
			/* The control connection ended: so does the proxy. */
			if (i == 0)
				return 0;
			pair_close(&pairs[i]);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "conn", required_argument, NULL, 'c' },
		{ "flip-at", required_argument, NULL, 'f' },
		{ "garbage-at", required_argument, NULL, 'g' },
		{ "cut-at", required_argument, NULL, 'x' },
		{}
	};
	struct opts o = { 0 };
	int c, lfd;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lopts, NULL)) != -1) {
		switch (c) {
		case 'l': opt_hostport("--listen", optarg, true);
			o.listen = optarg; break;
		case 't': opt_hostport("--to", optarg, false);
			o.to = optarg; break;
		case 'd': o.delay_ms = opt_int("--delay-ms", optarg, 0, 60000);
			break;
		case 'c': o.conn = opt_int("--conn", optarg, 0, MAX_PAIRS - 1);
			break;
		case 'f': o.fault = FLIP;
			o.at = opt_int("--flip-at", optarg, 0, INT64_MAX); break;
		case 'g': o.fault = GARBAGE;
			o.at = opt_int("--garbage-at", optarg, 0, INT64_MAX); break;
		case 'x': o.fault = CUT;
			o.at = opt_int("--cut-at", optarg, 0, INT64_MAX); break;
		default: opt_getopt_fail(c, argv, lopts);
		}
	}
	if (!o.listen || !o.to) {
		fprintf(stderr, "usage: faultproxy --listen HOST:PORT --to HOST:PORT "
			"[--delay-ms MS] [--conn N] [--flip-at B | --garbage-at B "
			"| --cut-at B]\n");
		return OPT_EXIT_USAGE;
	}
	lfd = sock_for(o.listen, true);
	if (lfd < 0) {
		fprintf(stderr, "faultproxy: cannot listen on %s\n", o.listen);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	return run(&o, lfd);
}
