// SPDX-License-Identifier: MIT
/*
 * vmm-migrate.c - the smallest complete picture of a VMM using libgmem.
 *
 * The VMM's guest memory is one memfd: guest RAM, then guest VRAM. It hands
 * libgmem the VRAM part (fd, byte offset, size, page size); libgmem maps
 * it, and that mapping (gmem_region_addr()) is the one the VMM gives its
 * guest, so libgmem sees every fault and every write with no copy. The
 * program then live-migrates the VRAM to a destination VMM (a second
 * process here, over loopback): the destination adopts its own memfd the
 * same way with every page missing, resumes its guest at once and gets each
 * page on the guest's first touch (post-copy) or pushed in the background.
 * RAM and vCPU state are the VMM's own business and are not moved here.
 *
 *   vmm-migrate [postcopy|precopy|hybrid|stop-and-copy|auto]
 *
 * Exits 0 when the destination's VRAM equals the source's, 77 when this
 * machine has no usable userfaultfd.
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmem.h>

#define RAM_SIZE (4UL << 20)    /* guest RAM: stays with the VMM */
#define VRAM_PAGES 4096UL       /* guest VRAM: 16 MiB of 4 KiB pages */
#define VRAM_SIZE (VRAM_PAGES * GMEM_PAGE_4K)

/* The VMM's device state, sent at the switchover. */
struct gpu_state {
	uint64_t steps;
};

/* The destination VMM: its guest runs from the resume on. */
struct dest_vmm {
	struct gpu_state gpu;
	const uint64_t *vram;
	pthread_t guest;
	bool running;
	uint64_t bad;
};

/* One memfd for all guest memory, as VMMs allocate it. */
static int guest_memory(void)
{
	int fd = memfd_create("guest-memory", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, RAM_SIZE + VRAM_SIZE) < 0) {
		perror("vmm-migrate: guest memory");
		exit(1);
	}
	return fd;
}

/* The adopt call: libgmem maps [RAM_SIZE, RAM_SIZE + VRAM_SIZE) of @fd. */
static struct gmem_region *vram_adopt(int fd, uint32_t flags)
{
	struct gmem_region_params p = {
		.nr_pages = VRAM_PAGES,
		.page_size = GMEM_PAGE_4K,
		.backing = GMEM_BACKING_FD,
		.fd = fd,
		.fd_off = RAM_SIZE,
		.flags = flags,
	};
	struct gmem_region *r;
	int ret = gmem_region_create(&p, &r);

	if (ret < 0) {
		fprintf(stderr, "vmm-migrate: gmem_region_create: %s\n",
			strerror(-ret));
		exit(ret == -EPERM || ret == -ENOSYS ? 77 : 1);
	}
	return r;
}

/* What the guest's GPU wrote: a word per 8 bytes, from its page and step. */
static uint64_t word(uint64_t i, uint64_t steps)
{
	return i * 0x9e3779b97f4a7c15ULL + steps;
}

static int src_pause(void *ctx, void *state, size_t *len)
{
	/* A real VMM stops its vCPUs and the device here. */
	memcpy(state, ctx, sizeof(struct gpu_state));
	*len = sizeof(struct gpu_state);
	return 0;
}

/* The resumed guest reads all of its VRAM at once, while most pages are
 * still on the source: each first touch is a fault libgmem serves. */
static void *guest_run(void *arg)
{
	struct dest_vmm *d = arg;

	for (uint64_t i = 0; i < VRAM_SIZE / 8; i++)
		d->bad += d->vram[i] != word(i, d->gpu.steps);
	return NULL;
}

static int dst_resume(void *ctx, const void *state, size_t len)
{
	struct dest_vmm *d = ctx;
	int ret;

	/* A real VMM restores the device and runs its vCPUs here. */
	if (len != sizeof(d->gpu))
		return -EPROTO;
	memcpy(&d->gpu, state, len);
	ret = -pthread_create(&d->guest, NULL, guest_run, d);
	d->running = ret == 0;
	return ret;
}

static int destination(const char *addr, uint32_t mode)
{
	struct gmem_migrate_params p = { .mode = mode, .wait_ms = 30000 };
	struct gmem_migrate_ops ops = { .resume = dst_resume };
	struct gmem_region *r = vram_adopt(guest_memory(), GMEM_REGION_MISSING);
	struct gmem_migrate_stats st;
	struct dest_vmm d = { .vram = gmem_region_addr(r) };
	/* Allocated now, while the source still runs the guest: post-copy
	 * then only copies pages into memory that is already there. */
	int ret = gmem_region_prealloc(r);

	if (ret == 0)
		ret = gmem_migrate_dest(r, addr, &p, &ops, &d, &st);

	if (d.running)
		pthread_join(d.guest, NULL);
	if (ret < 0) {
		fprintf(stderr, "vmm-migrate: destination: %s\n",
			strerror(-ret));
		return 1;
	}
	printf("{\"mode\": \"%s\", \"switchover_ms\": %.2f, \"urgent_pages\": "
	       "%llu, \"pushed_pages\": %llu, \"words_differing\": %llu}\n",
	       gmem_migrate_mode_name(mode),
	       (st.resume_ns - st.pause_ns) / 1e6,
	       (unsigned long long)st.pages.urgent_pages,
	       (unsigned long long)st.pages.pushed_pages,
	       (unsigned long long)d.bad);
	fflush(stdout); /* the child leaves with _exit() */
	gmem_region_destroy(r);
	return d.bad ? 1 : 0;
}

static int source(const char *addr, uint32_t mode)
{
	struct gmem_migrate_params p = { .mode = mode, .wait_ms = 30000 };
	struct gmem_migrate_ops ops = { .pause = src_pause };
	struct gmem_region *r = vram_adopt(guest_memory(), 0);
	struct gpu_state gpu = { .steps = 3 };
	uint64_t *vram = gmem_region_addr(r);
	struct gmem_migrate_stats st;
	int ret;

	/* The guest ran for a while: three steps over all of its VRAM. */
	for (uint64_t s = 1; s <= gpu.steps; s++)
		for (uint64_t i = 0; i < VRAM_SIZE / 8; i++)
			vram[i] = word(i, s);
	ret = gmem_migrate_source(r, addr, &p, &ops, &gpu, &st);
	if (ret < 0)
		fprintf(stderr, "vmm-migrate: source: %s\n", strerror(-ret));
	gmem_region_destroy(r);
	return ret < 0;
}

int main(int argc, char **argv)
{
	uint32_t mode = GMEM_MIGRATE_POSTCOPY;
	int status, src_failed;
	char addr[32];
	uint64_t feat;
	pid_t pid;

	while (argc == 2 && gmem_migrate_mode_name(mode) &&
	       strcmp(argv[1], gmem_migrate_mode_name(mode)))
		mode++;
	if (argc > 2 || !gmem_migrate_mode_name(mode)) {
		fprintf(stderr, "usage: vmm-migrate [postcopy|precopy|hybrid|"
			"stop-and-copy|auto]\n");
		return 2;
	}
	if (gmem_features(&feat) < 0) {
		printf("vmm-migrate: SKIP: no userfaultfd on this machine\n");
		return 77;
	}
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + getpid() % 10000);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(destination(addr, mode));
	src_failed = source(addr, mode);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		return 77;
	return src_failed || !WIFEXITED(status) || WEXITSTATUS(status);
}
