// SPDX-License-Identifier: MIT
/*
 * key.c - reads the pre-shared key of gmem-migrate: from a file kept
 * private to its owner, or from GMEM_KEY. Checking the key against the
 * peer is libgmem's (AUTH in HELLO), not this file's.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"
#include "opt.h"

static int key_check_len(struct key *k, char *err, size_t err_len)
{
	if (k->len < 16 || k->len > KEY_MAX) {
		snprintf(err, err_len, "%s: a key has 16 to %d bytes, not %zu",
			 k->origin, KEY_MAX, k->len);
		return -1;
	}
	return 0;
}

static int key_read(const char *path, struct key *k, char *err,
		    size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t buf[KEY_MAX + 2];
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, err_len,
			 "%s: a key file must be private (chmod 600)", path);
		close(fd);
		return -1;
	}
	/* A key, its newline and one byte more, to tell a file too long. */
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (n && buf[n - 1] == '\n')
		n--;
	k->len = n;
	memcpy(k->bytes, buf, n < KEY_MAX ? n : KEY_MAX);
	memset(buf, 0, sizeof(buf));
	return 0;
}

int key_load(const char *path, struct key *k, char *err, size_t err_len)
{
	const char *env = getenv("GMEM_KEY");

	memset(k, 0, sizeof(*k));
	if (path) {
		k->origin = path;
		if (key_read(path, k, err, err_len) < 0)
			return -1;
	} else if (env) {
		k->origin = "GMEM_KEY";
		k->len = strlen(env);
		memcpy(k->bytes, env, k->len < KEY_MAX ? k->len : KEY_MAX);
	} else {
		return 0;
	}
	return key_check_len(k, err, err_len);
}

static bool sa_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in6 *s6 = (const void *)sa;
	const uint8_t *b = s6->sin6_addr.s6_addr;

	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >>
			24) == 127;
	if (sa->sa_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return b[12] == 127;
	return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

/* Whether every address @addr's host resolves to is a loopback one; "*"
 * (any address) is not. @addr is a HOST:PORT the caller has checked. */
static bool addr_loopback(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *p;
	char host[256];
	long long port;
	bool lo = true;

	if (!opt_split_hostport(addr, host, sizeof(host), &port) ||
	    !strcmp(host, "*"))
		return false;
	if (getaddrinfo(host, NULL, &hints, &ai))
		return true;
	for (p = ai; p; p = p->ai_next)
		lo = lo && sa_loopback(p->ai_addr);
	freeaddrinfo(ai);
	return lo;
}

int key_require(const struct key *k, const char *opt, const char *addr,
		bool insecure, char *err, size_t err_len)
{
	if (k->len || insecure || !addr || addr_loopback(addr))
		return 0;
	snprintf(err, err_len, "%s %s is not a loopback address: give a key "
		 "(--key-file or GMEM_KEY) to authenticate and encrypt, or "
		 "--insecure to send pages in the clear", opt, addr);
	return -1;
}
