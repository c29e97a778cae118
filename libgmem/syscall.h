/* SPDX-License-Identifier: MIT */
/*
 * syscall.h - the one place where raw system calls become -errno returns.
 * Nothing else in libgmem reads errno after a system call.
 */
#ifndef GMEM_SYSCALL_H
#define GMEM_SYSCALL_H

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int sys_ret(long ret)
{
	return ret < 0 ? -errno : (int)ret;
}

static inline int sys_ioctl(int fd, unsigned long req, void *arg)
{
	return sys_ret(ioctl(fd, req, arg));
}

static inline int sys_userfaultfd(int flags)
{
#ifdef __NR_userfaultfd
	return sys_ret(syscall(__NR_userfaultfd, flags));
#else
	return -ENOSYS;
#endif
}

static inline int sys_memfd_create(const char *name, unsigned int flags)
{
	return sys_ret(memfd_create(name, flags));
}

/* mmap(2) as -errno: returns 0 and sets *out, or a negative errno. */
static inline int sys_mmap(void *addr, size_t len, int prot, int flags, int fd,
			   off_t off, void **out)
{
	void *p = mmap(addr, len, prot, flags, fd, off);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

#endif /* GMEM_SYSCALL_H */
