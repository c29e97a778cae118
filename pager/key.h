/* SPDX-License-Identifier: MIT */
/*
 * key.h - where the programs find the pre-shared key that authenticates
 * the two ends of a migration: a key file, or the GMEM_KEY variable.
 */
#ifndef GMEM_PAGER_KEY_H
#define GMEM_PAGER_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_MAX 256

struct key {
	uint8_t bytes[KEY_MAX];
	size_t len;            /* 0: no key configured */
	const char *origin;    /* the file, or "GMEM_KEY" */
};

/*
 * Loads the key from @path when given, else from the environment variable
 * GMEM_KEY when set, else leaves @k empty. The file's bytes are the key
 * (one trailing newline dropped); it must not be readable by group or
 * others. Returns 0, or -1 with the reason in @err.
 */
int key_load(const char *path, struct key *k, char *err, size_t err_len);

/*
 * No open door by default: without a key (which also encrypts every
 * frame), @addr ("host:port", "[v6]:port") must be a loopback address
 * (127.0.0.0/8, ::1) unless @insecure (--insecure). A name that does not
 * resolve passes: connecting to it fails with its own message. @opt names
 * the option that gave @addr. Returns 0, or -1 with the one-line reason
 * in @err.
 */
int key_require(const struct key *k, const char *opt, const char *addr,
		bool insecure, char *err, size_t err_len);

#endif
