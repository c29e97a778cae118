/* SPDX-License-Identifier: MIT */
/*
 * threads.h - starting a group of worker threads, one per slot of an array
 * of structs that each hold a pthread_t named "thread" and are the thread's
 * argument. Used by the page server's pushers and the remote source's bulk
 * receivers, which both must not run a partial group.
 */
#ifndef GMEM_THREADS_H
#define GMEM_THREADS_H

#include <pthread.h>
#include <stddef.h>

/*
 * Starts @fn on slots *@running..@n-1 of @slots, counting each in
 * *@running as it starts. Returns 0, or the negative errno of the first
 * pthread_create() that failed: *@running then tells how many run, and the
 * caller stops and joins those (its stop function), so none is left alone.
 */
#define threads_start(slots, n, fn, running)                                 \
	threads_start_((slots), sizeof(*(slots)),                            \
		       offsetof(__typeof__(*(slots)), thread), (n), (fn),    \
		       (running))

static inline int threads_start_(void *slots, size_t size, size_t thread_off,
				 unsigned int n, void *(*fn)(void *),
				 unsigned int *running)
{
	for (; *running < n; (*running)++) {
		char *slot = (char *)slots + *running * size;
		int ret = pthread_create((pthread_t *)(slot + thread_off), NULL,
					 fn, slot);

		if (ret)
			return -ret;
	}
	return 0;
}

#endif
