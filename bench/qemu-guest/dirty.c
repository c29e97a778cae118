// SPDX-License-Identifier: MIT
/*
 * dirty.c - the guest workload of bench/qemu-postcopy, PID 1 of an initramfs
 * of its own (linked statically): holds MIB MiB of memory and, every
 * millisecond of its own clock, rewrites PCT per cent of its pages at
 * random, each with a value of the page and its write count. Every 20 ms it
 * prints a heartbeat line on the console:
 *
 *     GMEM-HB <seq> <sweeps> <bad>
 *
 * checking a slice of the pages against the counts as it goes (a full sweep
 * every 100 heartbeats): <bad> counts the pages that ever held other bytes,
 * <sweeps> the full sweeps done. The host stamps each line as it arrives;
 * the longest gap between two is the stall the guest saw.
 * Its size and rate come from the kernel command line (dirty_mib=, dirty_pct=).
 * With dirty_node=N its pages come from the guest's NUMA node N only (a node
 * of memory and no CPU, as coherent accelerators show their VRAM; on the
 * host a shared backend of its own), while the write counts stay in the
 * RAM of its CPU's node: a check then compares what the host moved as VRAM
 * with what the guest's RAM says it wrote there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define HEARTBEAT_NS 20000000LL
#define SLICES 100

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static uint64_t value(uint64_t page, uint32_t count)
{
	return mix(page * 0x9e3779b97f4a7c15ULL + count + 1);
}

/* Kernel command line arguments reach init as environment variables. */
static unsigned long arg(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v ? strtoul(v, NULL, 10) : dflt;
}

#define MPOL_BIND 2

/* @bytes of anonymous memory, its pages from NUMA node @node only (mbind(2)
 * before the first touch: no libnuma in a static PID 1). */
static uint64_t *node_map(uint64_t bytes, unsigned long node)
{
	unsigned long mask = 1UL << node;
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED || node >= 64 ||
	    syscall(SYS_mbind, m, bytes, MPOL_BIND, &mask, 64, 0) != 0)
		return NULL;
	return m;
}

static void stuck(const char *why)
{
	printf("GMEM-ERR %s\n", why);
	fflush(stdout);
	for (;;)
		pause();
}

int main(void)
{
	uint64_t mib = arg("dirty_mib", 64), pct = arg("dirty_pct", 1), bytes;
	uint64_t nr, per_ms, seed = 1, bad = 0, sweeps = 0, seq = 0, cursor = 0;
	uint64_t *mem, next_ms, next_hb;
	uint32_t *count;

	bytes = mib << 20;
	if (getenv("dirty_node")) {
		mem = node_map(bytes, arg("dirty_node", 0));
		if (!mem)
			stuck("no memory for dirty_mib on dirty_node");
	} else {
		mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (mem == MAP_FAILED)
			stuck("no memory for dirty_mib");
	}
	nr = bytes / PAGE;
	per_ms = nr * pct / 100;
	count = calloc(nr, sizeof(*count));
	if (!count)
		stuck("no memory for the write counts");
	for (uint64_t p = 0; p < nr; p++)
		mem[p * PAGE / 8] = value(p, 0);
	printf("GMEM-READY %llu pages, %llu writes per ms\n",
	       (unsigned long long)nr, (unsigned long long)per_ms);
	fflush(stdout);
	next_ms = next_hb = now_ns();
	for (;;) {
		uint64_t t = now_ns();

		if (t > next_ms + 100000000ULL) /* behind: drop, not burst */
			next_ms = t;
		while (next_ms <= t) {
			for (uint64_t k = 0; k < per_ms; k++) {
				uint64_t p;

				seed = mix(seed);
				p = seed % nr;
				mem[p * PAGE / 8] = value(p, ++count[p]);
			}
			next_ms += 1000000;
		}
		if (t >= next_hb) {
			uint64_t end = cursor + (nr + SLICES - 1) / SLICES;

			for (; cursor < end && cursor < nr; cursor++)
				bad += mem[cursor * PAGE / 8] != value(cursor, count[cursor]);
			if (cursor >= nr) {
				cursor = 0;
				sweeps++;
			}
			printf("GMEM-HB %llu %llu %llu\n", (unsigned long long)++seq,
			       (unsigned long long)sweeps, (unsigned long long)bad);
			fflush(stdout);
			next_hb = t + HEARTBEAT_NS;
		}
		{
			struct timespec ts = { .tv_nsec = 200000 };

			nanosleep(&ts, NULL);
		}
	}
}
