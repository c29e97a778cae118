// SPDX-License-Identifier: MIT
/*
 * test-fault.c - the fault engine: faults from many threads resolved exactly
 * once with the right bytes, file and callback sources, fault-around,
 * prefetch, faults that wait for a source, a handler in another process,
 * 2 MiB pages, and every bad argument of attach/detach/fill.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(fault, .init = require_uffd);

#define SEED 0x5eed

/* A callback source that counts how often each page was filled. */
struct counting {
	uint32_t page_size;
	uint32_t *fills;
};

static int counting_fill(void *ctx, uint64_t pgoff, uint64_t nr, void *dst)
{
	struct counting *c = ctx;

	for (uint64_t i = 0; i < nr; i++)
		__atomic_fetch_add(&c->fills[pgoff + i], 1, __ATOMIC_RELAXED);
	pattern_fill(dst, SEED, pgoff, nr, c->page_size);
	return 0;
}

struct toucher {
	struct gmem_region *r;
	unsigned int seed;
	unsigned int touches;
	unsigned int bad;
};

static void *touch_random(void *arg)
{
	struct toucher *t = arg;
	uint64_t n = gmem_region_nr_pages(t->r);
	uint32_t ps = gmem_region_page_size(t->r);
	uint8_t *base = gmem_region_addr(t->r);

	for (unsigned int i = 0; i < t->touches; i++) {
		uint64_t p = rand_r(&t->seed) % n;

		if (!pattern_check(base + p * ps, SEED, p, ps))
			t->bad++;
	}
	return NULL;
}

static void faults_from_threads(uint32_t backing, unsigned int handlers,
				bool prealloc)
{
	const uint64_t n = 2048;
	struct gmem_region *r = region_new(n, 0, backing, GMEM_REGION_MISSING);
	struct counting c = { .page_size = 4096,
			      .fills = calloc(n, sizeof(uint32_t)) };
	struct gmem_fault_params fp = { .nr_threads = handlers,
					.fault_around = 4 };
	struct toucher t[8];
	pthread_t tid[8];
	struct gmem_source *src;
	struct gmem_fault_stats st;
	uint64_t filled = 0;

	if (prealloc)
		cr_assert_eq(gmem_region_prealloc(r), 0);
	cr_assert_eq(gmem_source_callback(counting_fill, &c, &src), 0);
	cr_assert_eq(gmem_region_attach(r, src, &fp), 0);
	for (int i = 0; i < 8; i++) {
		t[i] = (struct toucher){ .r = r, .seed = i + 1, .touches = 600 };
		pthread_create(&tid[i], NULL, touch_random, &t[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(tid[i], NULL);
		cr_expect_eq(t[i].bad, 0, "thread %d read wrong bytes", i);
	}
	/* A woken thread may run before its handler marks the page present:
	 * detaching joins the handlers, so what follows is final. */
	cr_assert_eq(gmem_region_detach(r), 0);
	for (uint64_t p = 0; p < n; p++) {
		cr_assert_leq(c.fills[p], 1, "page %lu filled %u times",
			      (unsigned long)p, c.fills[p]);
		cr_assert_eq(c.fills[p], gmem_page_present(r, p),
			     "page %lu fill/present disagree", (unsigned long)p);
		filled += c.fills[p];
	}
	gmem_region_fault_stats(r, &st);
	cr_expect_eq(st.pages_installed, filled);
	cr_expect_gt(st.faults, 0);
	cr_expect_eq(st.errors, 0);
	cr_expect_eq(gmem_region_nr_present(r), filled);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
	free(c.fills);
}

Test(fault, memfd_eight_threads_exactly_once, .timeout = 60)
{
	faults_from_threads(GMEM_BACKING_MEMFD, 2, false);
}

Test(fault, anon_eight_threads_exactly_once, .timeout = 60)
{
	faults_from_threads(GMEM_BACKING_ANON, 2, false);
}

/* Every page in the page cache already (zeroed): each first touch still
 * faults (MINOR now) and gets the source's bytes, exactly once. */
Test(fault, preallocated_memfd_still_faults_every_page, .timeout = 60)
{
	faults_from_threads(GMEM_BACKING_MEMFD, 2, true);
}

Test(fault, prealloc_allocates_the_cache_and_checks_its_region, .timeout = 20)
{
	const uint64_t n = 512;
	struct gmem_region *r = region_new(n, 0, GMEM_BACKING_MEMFD,
					   GMEM_REGION_MISSING);
	struct gmem_region *anon = region_new(n, 0, GMEM_BACKING_ANON,
					      GMEM_REGION_MISSING);
	struct gmem_region *plain = region_new(n, 0, GMEM_BACKING_MEMFD, 0);
	struct counting c = { .page_size = 4096,
			      .fills = calloc(n, sizeof(uint32_t)) };
	struct gmem_source *src;
	struct stat sb;

	cr_assert_eq(fstat(gmem_region_fd(r), &sb), 0);
	cr_assert_eq(sb.st_blocks, 0, "a new memfd holds no pages");
	cr_assert_eq(gmem_region_prealloc(r), 0);
	cr_assert_eq(fstat(gmem_region_fd(r), &sb), 0);
	cr_assert_eq(sb.st_blocks * 512, n * 4096, "%ld blocks",
		     (long)sb.st_blocks);
	cr_assert_eq(gmem_region_nr_present(r), 0);
	cr_assert_eq(gmem_region_prealloc(NULL), -EINVAL);
	cr_assert_eq(gmem_region_prealloc(anon), -EINVAL);
	cr_assert_eq(gmem_region_prealloc(plain), -EINVAL);
	cr_assert_eq(gmem_source_callback(counting_fill, &c, &src), 0);
	cr_assert_eq(gmem_region_attach(r, src, NULL), 0);
	cr_assert_eq(gmem_region_prealloc(r), -EBUSY);
	gmem_region_destroy(r);
	gmem_region_destroy(anon);
	gmem_region_destroy(plain);
	gmem_source_destroy(src);
	free(c.fills);
}

Test(fault, file_source_equals_file, .timeout = 30)
{
	const uint64_t n = 300, file_pages = 257; /* the tail reads as zeros */
	char path[] = "/tmp/gmem-test-XXXXXX";
	int fd = mkstemp(path);
	uint8_t *buf = malloc(n * 4096), *p;
	struct gmem_region *r;
	struct gmem_source *src;

	cr_assert_geq(fd, 0);
	unlink(path);
	pattern_fill(buf, SEED, 0, file_pages, 4096);
	cr_assert_eq(pwrite(fd, buf, file_pages * 4096, 0),
		     (ssize_t)(file_pages * 4096));
	memset(buf + file_pages * 4096, 0, (n - file_pages) * 4096);
	r = region_new(n, 0, GMEM_BACKING_MEMFD, GMEM_REGION_MISSING);
	cr_assert_eq(gmem_source_file(fd, 0, &src), 0);
	close(fd);
	cr_assert_eq(gmem_region_attach(r, src, NULL), 0);
	p = gmem_region_addr(r);
	cr_expect_eq(memcmp(p, buf, n * 4096), 0, "region != file");
	cr_assert_eq(gmem_region_detach(r), 0);
	cr_expect_eq(gmem_region_nr_present(r), n);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
	free(buf);
}

Test(fault, fault_around_installs_the_aligned_window, .timeout = 20)
{
	struct gmem_region *r = region_new(256, 0, GMEM_BACKING_MEMFD,
					   GMEM_REGION_MISSING);
	struct gmem_fault_params fp = { .fault_around = 64 };
	struct gmem_source *src;
	struct gmem_fault_stats st;
	volatile uint8_t *p = gmem_region_addr(r);

	cr_assert_eq(gmem_source_zero(&src), 0);
	cr_assert_eq(gmem_region_attach(r, src, &fp), 0);
	(void)p[70 * 4096];
	cr_assert_eq(gmem_region_detach(r), 0);
	cr_expect_eq(gmem_region_nr_present(r), 64);
	cr_expect(gmem_page_present(r, 64) && gmem_page_present(r, 127));
	cr_expect_not(gmem_page_present(r, 63) || gmem_page_present(r, 128));
	gmem_region_fault_stats(r, &st);
	cr_expect_eq(st.faults, 1);
	cr_expect_eq(st.installs, 1, "one UFFDIO_CONTINUE for the window");
	gmem_region_destroy(r);
	gmem_source_destroy(src);
}

Test(fault, fill_prefetches_without_faults, .timeout = 20)
{
	struct gmem_region *r = region_new(1000, 0, GMEM_BACKING_ANON,
					   GMEM_REGION_MISSING);
	struct counting c = { .page_size = 4096,
			      .fills = calloc(1000, sizeof(uint32_t)) };
	struct gmem_source *src;
	struct gmem_fault_stats st;

	cr_assert_eq(gmem_source_callback(counting_fill, &c, &src), 0);
	cr_assert_eq(gmem_region_fill(r, 0, 10), -ENOENT, "no source yet");
	cr_assert_eq(gmem_region_attach(r, src, NULL), 0);
	cr_expect_eq(gmem_region_fill(r, 990, 11), -EINVAL);
	cr_expect_eq(gmem_region_fill(r, 100, 50), 50);
	cr_expect_eq(gmem_region_fill(r, 0, 1000), 950, "the rest only");
	cr_expect_eq(gmem_region_fill(r, 0, 1000), 0);
	for (uint64_t p = 0; p < 1000; p++)
		cr_assert(pattern_check((uint8_t *)gmem_region_addr(r) + p * 4096,
					SEED, p, 4096));
	gmem_region_fault_stats(r, &st);
	cr_expect_eq(st.faults, 0);
	cr_expect_eq(st.pages_installed, 1000);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
	free(c.fills);
}

static void *touch_first(void *arg)
{
	return (void *)(uintptr_t)*(volatile uint8_t *)gmem_region_addr(arg);
}

Test(fault, fault_before_attach_waits_for_the_source, .timeout = 20)
{
	struct gmem_region *r = region_new(8, 0, GMEM_BACKING_MEMFD,
					   GMEM_REGION_MISSING);
	struct gmem_source *src;
	pthread_t tid;
	void *val;

	cr_assert_eq(gmem_source_zero(&src), 0);
	pthread_create(&tid, NULL, touch_first, r);
	usleep(100 * 1000);
	cr_expect_eq(gmem_region_nr_present(r), 0);
	cr_assert_eq(gmem_region_attach(r, src, NULL), 0);
	pthread_join(tid, &val);
	cr_expect_eq((uintptr_t)val, 0);
	/* Detach (joining the handlers) and attach again. */
	cr_expect_eq(gmem_region_detach(r), 0);
	cr_expect(gmem_page_present(r, 0));
	cr_expect_eq(gmem_region_detach(r), -ENOENT);
	cr_expect_eq(gmem_region_attach(r, src, NULL), 0);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
}

Test(fault, attach_rejects_bad_arguments, .timeout = 10)
{
	struct gmem_region *plain = region_new(8, 0, GMEM_BACKING_MEMFD, 0);
	struct gmem_region *r = region_new(8, 0, GMEM_BACKING_MEMFD,
					   GMEM_REGION_MISSING);
	struct gmem_source *src;
	struct gmem_fault_params odd = { .fault_around = 3 };
	struct gmem_fault_params big = { .fault_around = 1024 };
	struct gmem_fault_params resv = { .resv = { 1 } };
	struct gmem_fault_params threads = { .nr_threads = 65 };

	cr_assert_eq(gmem_source_zero(&src), 0);
	cr_expect_eq(gmem_region_attach(plain, src, NULL), -EINVAL);
	cr_expect_eq(gmem_region_attach(r, src, &odd), -EINVAL);
	cr_expect_eq(gmem_region_attach(r, src, &big), -EINVAL);
	cr_expect_eq(gmem_region_attach(r, src, &resv), -EINVAL);
	cr_expect_eq(gmem_region_attach(r, src, &threads), -EINVAL);
	cr_expect_eq(gmem_region_attach(r, NULL, NULL), -EINVAL);
	cr_expect_eq(gmem_region_attach(r, src, NULL), 0);
	cr_expect_eq(gmem_region_attach(r, src, NULL), -EBUSY);
	cr_expect_eq(gmem_region_attach(plain, src, NULL), -EINVAL);
	gmem_region_destroy(r);
	gmem_region_destroy(plain);
	gmem_source_destroy(src);
	cr_expect_eq(gmem_source_callback(NULL, NULL, &src), -EINVAL);
	cr_expect_eq(gmem_source_file(0, 100, &src), -EINVAL);
	cr_expect_eq(gmem_source_file(-1, 0, &src), -EBADF);
}

/*
 * The owner exports its MISSING region and touches it; this process imports
 * it and resolves the owner's faults: the external-handler model that
 * gmem-migrate uses on a workload.
 */
Test(fault, handler_in_another_process, .timeout = 30)
{
	const uint64_t n = 512;
	int sv[2], status;
	pid_t pid;
	struct gmem_region *imp;
	struct gmem_source *src;
	struct counting c = { .page_size = 4096,
			      .fills = calloc(n, sizeof(uint32_t)) };

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct gmem_region *r = region_new(n, 0, GMEM_BACKING_MEMFD,
						   GMEM_REGION_MISSING);
		uint8_t *p = gmem_region_addr(r);
		char ok;

		if (gmem_region_export(r, sv[1]) < 0)
			_exit(2);
		for (uint64_t i = 0; i < n; i += 3)
			if (!pattern_check(p + i * 4096, SEED, i, 4096))
				_exit(3);
		ok = 'k';
		_exit(write(sv[1], &ok, 1) == 1 ? 0 : 4);
	}
	cr_assert_eq(gmem_region_import(sv[0], &imp), 0);
	cr_expect_eq(gmem_region_nr_pages(imp), n);
	cr_expect_eq(gmem_region_nr_present(imp), 0);
	cr_assert_eq(gmem_source_callback(counting_fill, &c, &src), 0);
	cr_assert_eq(gmem_region_attach(imp, src, NULL), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "owner saw wrong bytes (status %d)", status);
	cr_assert_eq(gmem_region_detach(imp), 0);
	cr_expect_gt(gmem_region_nr_present(imp), n / 3);
	gmem_region_destroy(imp);
	gmem_source_destroy(src);
	free(c.fills);
	close(sv[0]);
	close(sv[1]);
}

Test(fault, import_rejects_garbage, .timeout = 10)
{
	int sv[2];
	struct gmem_region *r;
	char junk[64] = "not a region";

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_eq(write(sv[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	cr_expect_eq(gmem_region_import(sv[0], &r), -EPROTO, "short message");
	close(sv[1]);
	cr_expect_eq(gmem_region_import(sv[0], &r), -ECONNRESET, "peer gone");
	close(sv[0]);
}

Test(fault, huge_2m_faults, .timeout = 30)
{
	struct gmem_region *r;
	struct gmem_source *src;
	struct counting c = { .page_size = GMEM_PAGE_2M,
			      .fills = calloc(4, sizeof(uint32_t)) };
	uint8_t *p;

	require_features(GMEM_FEAT_HUGETLB_2M | GMEM_FEAT_MINOR_HUGETLB,
			 "no 2 MiB huge pages reserved "
			 "(echo 16 > /proc/sys/vm/nr_hugepages)");
	r = region_new(4, GMEM_PAGE_2M, GMEM_BACKING_MEMFD, GMEM_REGION_MISSING);
	cr_assert_eq(gmem_source_callback(counting_fill, &c, &src), 0);
	cr_assert_eq(gmem_region_attach(r, src, NULL), 0);
	p = gmem_region_addr(r);
	cr_expect(pattern_check(p + 3 * GMEM_PAGE_2M, SEED, 3, GMEM_PAGE_2M));
	cr_expect(pattern_check(p, SEED, 0, GMEM_PAGE_2M));
	cr_assert_eq(gmem_region_detach(r), 0);
	cr_expect_eq(gmem_region_nr_present(r), 4, "fault-around of 16 > 4");
	gmem_region_destroy(r);
	gmem_source_destroy(src);
	free(c.fills);
}

/* From now on, this test's process gets ENOMEM for every private anonymous
 * mmap(2) of @len bytes (a staging buffer's; thread stacks are MAP_STACK). */
static void refuse_anon_mmaps_of(uint32_t len)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, len, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[3])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MAP_PRIVATE | MAP_ANONYMOUS,
			 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOMEM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

Test(fault, handler_without_staging_fails_the_attach, .timeout = 20)
{
	struct gmem_region *r = region_new(1024, 0, GMEM_BACKING_MEMFD,
					   GMEM_REGION_MISSING);
	struct gmem_fault_params p = { .nr_threads = 2, .fault_around = 64 };
	struct gmem_source *src;

	cr_assert_eq(gmem_source_zero(&src), 0);
	refuse_anon_mmaps_of(64 * 4096);
	cr_expect_eq(gmem_region_attach(r, src, &p), -ENOMEM,
		     "a handler without its buffer would leave faults waiting");
	gmem_region_destroy(r);
	gmem_source_destroy(src);
}
