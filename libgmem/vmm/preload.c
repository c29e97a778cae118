// SPDX-License-Identifier: MIT
/*
 * preload.c - LD_PRELOAD=libgmem-vmm.so: interposes mmap(2) in an
 * unmodified process (QEMU with a memory-backend-file,share=on) and, when
 * it maps one of the backend files named in the environment MAP_SHARED,
 * hands that mapping to gmem (handoff.c) before mmap returns.
 *
 *   GMEM_VMM_PATHS       PATH[=SOCKET][:PATH[=SOCKET]...] backend files
 *   GMEM_VMM_SOCKET      the socket of those without =SOCKET
 *   GMEM_VMM_REQUIRED=1  a failed hand-over ends the process (exit 1)
 *                        instead of leaving the mapping to the process
 *   GMEM_VMM_TIMEOUT_MS  how long to wait for gmem's "ok" (30000)
 *
 * The library must never break its host: any error is one line on stderr
 * and the mapping stays as the process made it (unless REQUIRED).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm.h"

#define MAX_BACKENDS 16

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

static struct vmm_backend backends[MAX_BACKENDS];
static unsigned int nr_backends;
static bool required;
static int timeout_ms = 30000;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;
/* One hand-over at a time, and a backend handed over only once. */
static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;

/* One line on stderr, whole (one write). */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = dprintf(STDERR_FILENO, "libgmem-vmm: %s\n", line);
	(void)n;
}

/* Parsed once; the strings stay (the process's environment copy). */
static void config_load(void)
{
	const char *def = getenv("GMEM_VMM_SOCKET");
	const char *env = getenv("GMEM_VMM_PATHS");
	const char *req = getenv("GMEM_VMM_REQUIRED");
	const char *tmo = getenv("GMEM_VMM_TIMEOUT_MS");
	char *list, *save = NULL;

	required = req && strcmp(req, "1") == 0;
	if (tmo && atoi(tmo) > 0)
		timeout_ms = atoi(tmo);
	if (!env || !*env)
		return;
	list = strdup(env);
	for (char *e = list ? strtok_r(list, ":", &save) : NULL; e;
	     e = strtok_r(NULL, ":", &save)) {
		char *eq = strchr(e, '=');

		if (eq)
			*eq = '\0';
		if (nr_backends == MAX_BACKENDS) {
			say("GMEM_VMM_PATHS: more than %d entries; %s and "
			    "the rest are ignored", MAX_BACKENDS, e);
			break;
		}
		if (!(eq ? eq[1] : def && *def)) {
			say("%s: no socket (GMEM_VMM_SOCKET or %s=SOCKET): "
			    "ignored", e, e);
			continue;
		}
		backends[nr_backends++] = (struct vmm_backend){
			.path = e, .sock = eq ? eq + 1 : def,
		};
	}
}

/* The next mmap in the chain; the raw syscall if called before dlsym can
 * run (dlsym itself may allocate, and malloc may mmap). */
static void *next_mmap(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off)
{
	static mmap_fn next;
	static __thread bool resolving;

	if (!next && !resolving) {
		resolving = true;
		next = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
		resolving = false;
	}
	if (next)
		return next(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* The named backend @fd is, by device and inode (so a symlink or another
 * name of the same file matches), or NULL. */
static struct vmm_backend *backend_of(int fd)
{
	struct stat fst, st;

	if (fstat(fd, &fst) < 0)
		return NULL;
	for (unsigned int i = 0; i < nr_backends; i++)
		if (stat(backends[i].path, &st) == 0 &&
		    st.st_dev == fst.st_dev && st.st_ino == fst.st_ino)
			return &backends[i];
	return NULL;
}

static void try_handoff(void *p, size_t len, int fd, off_t off)
{
	struct vmm_backend *b;
	char err[256];
	int saved = errno;

	pthread_mutex_lock(&handoff_lock);
	b = backend_of(fd);
	if (!b) {
		pthread_mutex_unlock(&handoff_lock);
		errno = saved;
		return;
	}
	if (b->handed) {
		say("%s: mapped again; this mapping is not served by gmem "
		    "(only the first one is)", b->path);
	} else if (vmm_handoff(b, p, len, off, fd, timeout_ms, err,
			       sizeof(err)) == 0) {
		b->handed = true;
	} else if (required) {
		say("%s: %s; GMEM_VMM_REQUIRED=1: exiting", b->path, err);
		_exit(1);
	} else {
		say("%s: %s; the mapping is left to the process, not served "
		    "by gmem", b->path, err);
	}
	pthread_mutex_unlock(&handoff_lock);
	errno = saved;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = next_mmap(addr, len, prot, flags, fd, off);
	int type = flags & MAP_TYPE;

	if (p == MAP_FAILED || fd < 0 ||
	    (type != MAP_SHARED && type != MAP_SHARED_VALIDATE))
		return p;
	pthread_once(&config_once, config_load);
	if (nr_backends)
		try_handoff(p, len, fd, off);
	return p;
}

/* The same call where off_t is 64 bits (every 64-bit ABI). */
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}
