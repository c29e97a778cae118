// SPDX-License-Identifier: MIT
/*
 * key.c - reads the pre-shared key of gmem-migrate: from a file kept
 * private to its owner, or from GMEM_KEY. Checking the key against the
 * peer is libgmem's (AUTH in HELLO), not this file's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"

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
