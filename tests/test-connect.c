// SPDX-License-Identifier: MIT
/*
 * test-connect.c - gmem_remote_connect()'s parameter checks: a refused call
 * leaves no copy of the key in freed memory, and a failure to set the key up
 * reaches the caller as itself. This program's free() and sodium_init() come
 * before libc's and libsodium's, to look at what is freed and to fail.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <string.h>

#include <gmem.h>

static const uint8_t key[32] = "a key that must not outlive use";
static bool sodium_fails;

/* The sanitizers own free(): the look at freed memory is left out there. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define WATCH_FREE 1
static bool watch, key_freed;

void __libc_free(void *p);

void free(void *p)
{
	if (watch && p && memmem(p, malloc_usable_size(p), key, sizeof(key)))
		key_freed = true;
	__libc_free(p);
}
#endif

int sodium_init(void)
{
	static int (*real)(void);

	if (sodium_fails)
		return -1;
	if (!real)
		real = (int (*)(void))dlsym(RTLD_NEXT, "sodium_init");
	return real();
}

Test(connect, refused_parameters_leave_no_key_behind, .timeout = 10)
{
#ifdef WATCH_FREE
	struct gmem_remote_params p = { .key = key, .key_len = sizeof(key),
					.resv = { 1 } };
	struct gmem_remote *rm = (void *)1;
	int ret;

	watch = true;
	ret = gmem_remote_connect("127.0.0.1:1", &p, &rm);
	watch = false;
	cr_expect_eq(ret, -EINVAL);
	cr_expect_null(rm);
	cr_expect_not(key_freed, "the key was freed unwiped");
#else
	cr_skip_test("a sanitizer owns free()");
#endif
}

Test(connect, key_setup_error_is_the_callers, .timeout = 10)
{
	struct gmem_remote_params p = { .key = key, .key_len = sizeof(key) };
	struct gmem_remote *rm = (void *)1;
	int ret;

	sodium_fails = true;
	ret = gmem_remote_connect("127.0.0.1:1", &p, &rm);
	sodium_fails = false;
	cr_expect_eq(ret, -ENOSYS, "got %d (%s)", ret, strerror(-ret));
	cr_expect_null(rm);
}
