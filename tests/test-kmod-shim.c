// SPDX-License-Identifier: MIT
/*
 * test-kmod-shim - the device-fault bridge through its test device
 * /dev/gmem-shim: device reads of missing pages resolved by libgmem, device
 * writes in the dirty log, a dead pager failing the call, a killed caller
 * exiting, unload refused while a region is registered. Needs root and the
 * module loaded: tests/kmod-shim-vm.sh runs it in a VM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gmem.h>
#include <gmem/uapi.h>

#include "helpers.h"

#define PAGE 4096UL
#define SEED 0x5eedULL
#define SEED2 0xd1ffULL

static void require_shim(void)
{
	int fd;

	require_uffd();
	fd = open("/dev/" GMEM_SHIM_DEV_NAME, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		cr_skip_test("no /dev/" GMEM_SHIM_DEV_NAME ": %s (load "
			     "kmod-shim/gmem_shim.ko as root; "
			     "tests/kmod-shim-vm.sh does, in a VM)",
			     strerror(errno));
	close(fd);
}

TestSuite(kmod_shim, .init = require_shim);

static int shim_open(void)
{
	int fd = open("/dev/" GMEM_SHIM_DEV_NAME, O_RDWR | O_CLOEXEC);

	cr_assert(fd >= 0, "open: %s", strerror(errno));
	return fd;
}

static int shim_register(int fd, const void *addr, uint64_t len, int link_fd)
{
	struct gmem_shim_register arg = {
		.addr = (uintptr_t)addr,
		.len = len,
		.link_fd = link_fd,
	};

	return ioctl(fd, GMEM_SHIM_IOC_REGISTER, &arg) ? -errno : 0;
}

static int shim_dma(int fd, uint64_t off, uint64_t len, void *buf,
		    uint32_t dir)
{
	struct gmem_shim_dma arg = {
		.off = off,
		.len = len,
		.buf = (uintptr_t)buf,
		.dir = dir,
	};

	return ioctl(fd, GMEM_SHIM_IOC_DMA, &arg) ? -errno : 0;
}

/* Page source: pattern SEED; pages from ctx's limit on never return. */
static int fill_pattern(void *ctx, uint64_t pgoff, uint64_t nr_pages,
			void *dst)
{
	uint64_t *block_from = ctx;

	while (block_from && pgoff + nr_pages > *block_from)
		pause();
	pattern_fill(dst, SEED, pgoff, nr_pages, PAGE);
	return 0;
}

struct paged {
	struct gmem_region *r;
	struct gmem_source *src;
	uint8_t *base;
};

/* A MISSING region served by a fault engine with the SEED pattern. */
static struct paged paged_new(uint64_t nr_pages, uint32_t backing,
			      uint32_t dirty_backend)
{
	struct gmem_region_params p = {
		.nr_pages = nr_pages,
		.backing = backing,
		.flags = GMEM_REGION_MISSING,
		.dirty_backend = dirty_backend,
	};
	struct paged pg;

	cr_assert_eq(gmem_region_create(&p, &pg.r), 0);
	cr_assert_eq(gmem_source_callback(fill_pattern, NULL, &pg.src), 0);
	cr_assert_eq(gmem_region_attach(pg.r, pg.src, NULL), 0);
	pg.base = gmem_region_addr(pg.r);
	return pg;
}

static void paged_free(struct paged *pg)
{
	gmem_region_destroy(pg->r);
	gmem_source_destroy(pg->src);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(kmod_shim, rejects_bad_input_and_loses_nothing, .timeout = 20)
{
	size_t len = 16 * PAGE;
	uint8_t *buf = malloc(len);
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct gmem_shim_register bad = { .addr = (uintptr_t)mem,
					  .len = len, .link_fd = -1 };
	int fd = shim_open(), pipefd[2];

	cr_assert(mem != MAP_FAILED && buf);
	pattern_fill(mem, SEED, 0, 16, PAGE);
	cr_assert_eq(shim_dma(fd, 0, PAGE, buf, GMEM_SHIM_DMA_READ), -ENOENT);
	cr_assert_eq(shim_register(fd, mem + 1, len, -1), -EINVAL);
	cr_assert_eq(shim_register(fd, mem, 0, -1), -EINVAL);
	cr_assert_eq(shim_register(fd, mem, len - 1, -1), -EINVAL);
	cr_assert_eq(shim_register(fd, (void *)-PAGE, 2 * PAGE, -1), -EINVAL);
	bad.flags = 1;
	cr_assert_eq(ioctl(fd, GMEM_SHIM_IOC_REGISTER, &bad) ? -errno : 0,
		     -EINVAL);
	bad.flags = 0;
	bad.resv[1] = 1;
	cr_assert_eq(ioctl(fd, GMEM_SHIM_IOC_REGISTER, &bad) ? -errno : 0,
		     -EINVAL);
	cr_assert_eq(ioctl(fd, GMEM_SHIM_IOC_REGISTER, NULL) ? -errno : 0,
		     -EFAULT);
	cr_assert_eq(pipe(pipefd), 0);
	cr_assert_eq(shim_register(fd, mem, len, pipefd[0]), -ENOTSOCK);
	cr_assert_eq(shim_register(fd, mem, len, 1000), -EBADF);
	cr_assert_eq(ioctl(fd, _IO(GMEM_SHIM_IOC_MAGIC, 99)), -1);
	cr_assert_eq(errno, ENOTTY);

	cr_assert_eq(shim_register(fd, mem, len, -1), 0);
	cr_assert_eq(shim_register(fd, mem, len, -1), -EBUSY);
	cr_assert_eq(shim_dma(fd, 0, 0, buf, GMEM_SHIM_DMA_READ), -EINVAL);
	cr_assert_eq(shim_dma(fd, len - 8, 16, buf, GMEM_SHIM_DMA_READ),
		     -EINVAL);
	cr_assert_eq(shim_dma(fd, -8ULL, 16, buf, GMEM_SHIM_DMA_READ), -EINVAL);
	cr_assert_eq(shim_dma(fd, 0, PAGE, buf, 2), -EINVAL);
	cr_assert_eq(shim_dma(fd, 0, PAGE, NULL, GMEM_SHIM_DMA_READ), -EFAULT);
	cr_assert_eq(shim_dma(fd, 0, PAGE, (void *)-PAGE, GMEM_SHIM_DMA_WRITE),
		     -EFAULT);
	cr_assert_eq(shim_dma(fd, 0, len, NULL, GMEM_SHIM_DMA_WRITE), -EFAULT);
	for (uint64_t i = 0; i < 16; i++)
		cr_assert(pattern_check(mem + i * PAGE, SEED, i, PAGE),
			  "page %lu changed by a rejected call", i);

	/* A region the process cannot write: the device cannot either. */
	cr_assert_eq(mprotect(mem, len, PROT_READ), 0);
	cr_assert_eq(shim_dma(fd, 0, PAGE, buf, GMEM_SHIM_DMA_WRITE), -EFAULT);
	cr_assert_eq(shim_dma(fd, 0, len, buf, GMEM_SHIM_DMA_READ), 0);
	cr_assert_eq(memcmp(buf, mem, len), 0);
	close(fd);
	close(pipefd[0]);
	close(pipefd[1]);
	munmap(mem, len);
	free(buf);
}

static void read_resolves_missing(uint32_t backing)
{
	uint64_t nr = 256;
	struct paged pg = paged_new(nr, backing, GMEM_DIRTY_AUTO);
	uint8_t *buf = malloc(nr * PAGE), *part = malloc(10000);
	uint64_t off = 100 * PAGE + 123, len = 10000;
	struct gmem_fault_stats st;
	int fd = shim_open();

	cr_assert_eq(shim_register(fd, pg.base, nr * PAGE, -1), 0);
	cr_assert_eq(gmem_region_nr_present(pg.r), 0);
	cr_assert_eq(shim_dma(fd, off, len, part, GMEM_SHIM_DMA_READ), 0);
	cr_assert_eq(shim_dma(fd, 0, nr * PAGE, buf, GMEM_SHIM_DMA_READ), 0);
	for (uint64_t i = 0; i < nr; i++)
		cr_assert(pattern_check(buf + i * PAGE, SEED, i, PAGE),
			  "page %lu read by the device is wrong", i);
	cr_assert_eq(memcmp(part, buf + off, len), 0);
	cr_assert_eq(gmem_region_detach(pg.r), 0);
	cr_assert_eq(gmem_region_fault_stats(pg.r, &st), 0);
	cr_assert_gt(st.faults, 0, "no fault reached the pager");
	cr_assert_eq(gmem_region_nr_present(pg.r), nr);
	close(fd);
	paged_free(&pg);
	free(buf);
	free(part);
}

Test(kmod_shim, device_read_resolves_missing_pages_memfd, .timeout = 60)
{
	read_resolves_missing(GMEM_BACKING_MEMFD);
}

Test(kmod_shim, device_read_resolves_missing_pages_anon, .timeout = 60)
{
	read_resolves_missing(GMEM_BACKING_ANON);
}

Test(kmod_shim, device_write_lands_in_missing_pages, .timeout = 60)
{
	uint64_t nr = 64;
	struct paged pg = paged_new(nr, GMEM_BACKING_MEMFD, GMEM_DIRTY_AUTO);
	uint8_t *buf = malloc(20 * PAGE), bytes[100];
	int fd = shim_open();

	cr_assert_eq(shim_register(fd, pg.base, nr * PAGE, -1), 0);
	pattern_fill(buf, SEED2, 10, 20, PAGE);
	cr_assert_eq(shim_dma(fd, 10 * PAGE, 20 * PAGE, buf,
			      GMEM_SHIM_DMA_WRITE), 0);
	memset(bytes, 0xab, sizeof(bytes));
	cr_assert_eq(shim_dma(fd, 40 * PAGE + 50, sizeof(bytes), bytes,
			      GMEM_SHIM_DMA_WRITE), 0);
	for (uint64_t i = 0; i < nr; i++) {
		if (i == 40)
			continue;
		cr_assert(pattern_check(pg.base + i * PAGE,
					i >= 10 && i < 30 ? SEED2 : SEED, i,
					PAGE), "page %lu wrong", i);
	}
	/* A partial write keeps the rest of the page the pager supplied. */
	pattern_fill(buf, SEED, 40, 1, PAGE);
	memset(buf + 50, 0xab, sizeof(bytes));
	cr_assert_eq(memcmp(pg.base + 40 * PAGE, buf, PAGE), 0);
	close(fd);
	paged_free(&pg);
	free(buf);
}

static void writes_in_dirty_log(enum gmem_dirty_backend b)
{
	static const uint64_t written[] = { 3, 17, 18, 100 };
	uint64_t nr = 128, bitmap[2];
	struct paged pg = paged_new(nr, GMEM_BACKING_MEMFD, b);
	struct gmem_dirty_params dp = { .backend = b };
	struct gmem_dirty_result res = { .bitmap = bitmap };
	uint8_t *buf = malloc(nr * PAGE);
	int fd = shim_open();

	cr_assert_eq(gmem_region_fill(pg.r, 0, nr), (int64_t)nr);
	cr_assert_eq(gmem_dirty_start(pg.r, &dp), 0);
	cr_assert_geq(gmem_dirty_collect(pg.r, &res), 0);
	cr_assert_eq(shim_register(fd, pg.base, nr * PAGE, -1), 0);
	memset(buf, 0x5a, PAGE);
	cr_assert_eq(shim_dma(fd, 3 * PAGE, PAGE, buf, GMEM_SHIM_DMA_WRITE), 0);
	cr_assert_eq(shim_dma(fd, 17 * PAGE + 4000, 200, buf,
			      GMEM_SHIM_DMA_WRITE), 0);
	cr_assert_eq(shim_dma(fd, 100 * PAGE + 7, 1, buf,
			      GMEM_SHIM_DMA_WRITE), 0);
	cr_assert_eq(shim_dma(fd, 0, nr * PAGE, buf, GMEM_SHIM_DMA_READ), 0);
	cr_assert_eq(gmem_dirty_collect(pg.r, &res), 4,
		     "%s: device writes not in the dirty log",
		     gmem_dirty_backend_name(b));
	for (uint64_t i = 0; i < 4; i++)
		cr_assert(bitmap[written[i] / 64] >> (written[i] % 64) & 1,
			  "page %lu written by the device, not reported",
			  written[i]);
	cr_assert_eq(buf[3 * PAGE], 0x5a);
	cr_assert_eq(gmem_dirty_stop(pg.r), 0);
	close(fd);
	paged_free(&pg);
	free(buf);
}

Test(kmod_shim, device_writes_in_dirty_log_wp_sync, .timeout = 60)
{
	require_features(GMEM_FEAT_WP_SHMEM,
			 "no write-protect faults on shmem (Linux 5.19+)");
	writes_in_dirty_log(GMEM_DIRTY_WP_SYNC);
}

Test(kmod_shim, device_writes_in_dirty_log_soft_dirty, .timeout = 60)
{
	require_features(GMEM_FEAT_SOFT_DIRTY,
			 "no soft-dirty (CONFIG_MEM_SOFT_DIRTY)");
	writes_in_dirty_log(GMEM_DIRTY_SOFT_DIRTY);
}

Test(kmod_shim, device_writes_in_dirty_log_wp_async, .timeout = 60)
{
	require_features(GMEM_FEAT_WP_ASYNC | GMEM_FEAT_PAGEMAP_SCAN,
			 "no UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN (Linux 6.7+)");
	writes_in_dirty_log(GMEM_DIRTY_WP_ASYNC);
}

/* The pager: serves pages below 32 of an imported region, hangs above. */
static void pager_child(int sock)
{
	static uint64_t block_from = 32;
	struct gmem_region *r;
	struct gmem_source *src;

	if (gmem_region_import(sock, &r) ||
	    gmem_source_callback(fill_pattern, &block_from, &src) ||
	    gmem_region_attach(r, src, NULL) || write(sock, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void *kill_later(void *arg)
{
	usleep(300 * 1000);
	kill(*(pid_t *)arg, SIGKILL);
	return NULL;
}

Test(kmod_shim, dead_pager_fails_device_call, .timeout = 60)
{
	struct gmem_region_params p = { .nr_pages = 64,
					.flags = GMEM_REGION_MISSING };
	uint8_t *buf = malloc(64 * PAGE), *base;
	struct gmem_region *r;
	pthread_t killer;
	double t0, waited;
	int sv[2], fd, status;
	pid_t pid;
	char c;

	cr_assert_eq(gmem_region_create(&p, &r), 0);
	base = gmem_region_addr(r);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		pager_child(sv[1]);
	}
	close(sv[1]);
	cr_assert_eq(gmem_region_export(r, sv[0]), 0);
	cr_assert_eq(read(sv[0], &c, 1), 1, "the pager did not start");
	fd = shim_open();
	cr_assert_eq(shim_register(fd, base, 64 * PAGE, sv[0]), 0);

	/* Served by the pager in the other process. */
	cr_assert_eq(shim_dma(fd, 0, 32 * PAGE, buf, GMEM_SHIM_DMA_READ), 0);
	for (uint64_t i = 0; i < 32; i++)
		cr_assert(pattern_check(buf + i * PAGE, SEED, i, PAGE));

	/* The pager hangs on page 32, then dies: the call must fail. */
	cr_assert_eq(pthread_create(&killer, NULL, kill_later, &pid), 0);
	t0 = now_s();
	cr_assert_eq(shim_dma(fd, 30 * PAGE, 4 * PAGE, buf, GMEM_SHIM_DMA_READ),
		     -EPIPE);
	waited = now_s() - t0;
	cr_assert_geq(waited, 0.25, "returned after %.3f s, before the pager "
		      "died: it did not wait for the pager", waited);
	cr_assert_lt(waited, 10.0);
	pthread_join(killer, NULL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* The region stays failed, even for pages already present. */
	cr_assert_eq(shim_dma(fd, 0, PAGE, buf, GMEM_SHIM_DMA_READ), -EPIPE);
	/* A link that is already hung up fails the first call. */
	close(fd);
	fd = shim_open();
	cr_assert_eq(shim_register(fd, base, 64 * PAGE, sv[0]), 0);
	cr_assert_eq(shim_dma(fd, 0, PAGE, buf, GMEM_SHIM_DMA_READ), -EPIPE);
	close(fd);
	close(sv[0]);
	gmem_region_destroy(r);
	free(buf);
}

/* A device caller waiting on a page nobody serves, in a child. */
static void stuck_caller(int ready)
{
	struct gmem_region_params p = { .nr_pages = 16,
					.flags = GMEM_REGION_MISSING };
	struct gmem_region *r;
	uint8_t buf[PAGE];
	int fd;

	fd = open("/dev/" GMEM_SHIM_DEV_NAME, O_RDWR);
	if (fd < 0 || gmem_region_create(&p, &r) ||
	    shim_register(fd, gmem_region_addr(r), 16 * PAGE, -1) ||
	    write(ready, "r", 1) != 1)
		_exit(1);
	shim_dma(fd, 0, PAGE, buf, GMEM_SHIM_DMA_READ);
	_exit(2);
}

Test(kmod_shim, killed_caller_exits_while_waiting, .timeout = 60)
{
	int pfd[2], status = 0;
	pid_t pid;
	char c;

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		stuck_caller(pfd[1]);
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], &c, 1), 1, "the caller did not start");
	usleep(200 * 1000);
	cr_assert_eq(waitpid(pid, &status, WNOHANG), 0,
		     "the call returned though no pager serves the page");
	kill(pid, SIGKILL);
	for (int i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(50 * 1000);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "a caller waiting in a device fault did not die on SIGKILL");
	close(pfd[0]);
}

Test(kmod_shim, unload_refused_while_registered, .timeout = 20)
{
	uint8_t *mem = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = shim_open();

	cr_assert(mem != MAP_FAILED);
	cr_assert_eq(shim_register(fd, mem, PAGE, -1), 0);
	cr_assert_eq(syscall(SYS_delete_module, "gmem_shim", O_NONBLOCK), -1);
	cr_assert(errno == EWOULDBLOCK || errno == EBUSY,
		  "delete_module: %s", strerror(errno));
	close(fd);
	munmap(mem, PAGE);
}
