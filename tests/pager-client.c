// SPDX-License-Identifier: MIT
/*
 * pager-client - the destination side for shell tests: connects to a page
 * server (gmem-pager), pages a region in on demand while a workload runs
 * (random reads from 8 threads, a sequential scan, or none), waits for the
 * digest check and prints one JSON line of counts. --rdma reads the pages
 * with RDMA (GMEM_REMOTE_RDMA), --anon pages into an anonymous region. Exit 0 only when every
 * page came, digests agree and, with --compare, the bytes equal the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmem.h>

struct reader {
	const volatile uint8_t *base;
	uint64_t nr_pages;
	uint32_t page_size;
	unsigned int seed;
	uint64_t sum;
};

static void *read_random(void *arg)
{
	struct reader *rd = arg;

	for (int i = 0; i < 2000; i++)
		rd->sum += rd->base[(rand_r(&rd->seed) % rd->nr_pages) *
				    rd->page_size];
	return NULL;
}

static void workload(struct gmem_region *r, const char *mode)
{
	struct reader rd[8];
	pthread_t th[8];
	const volatile uint8_t *base = gmem_region_addr(r);
	uint64_t n = gmem_region_nr_pages(r), sum = 0;
	uint32_t ps = gmem_region_page_size(r);

	if (!strcmp(mode, "sequential")) {
		for (uint64_t p = 0; p < n; p++)
			sum += base[p * ps];
	} else if (!strcmp(mode, "random")) {
		for (int i = 0; i < 8; i++) {
			rd[i] = (struct reader){ .base = base, .nr_pages = n,
						 .page_size = ps, .seed = i + 1 };
			pthread_create(&th[i], NULL, read_random, &rd[i]);
		}
		for (int i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
	}
	(void)sum;
}

/* Compares the region with the file the server serves. */
static int compare_file(struct gmem_region *r, const char *path)
{
	uint64_t size = gmem_region_size(r);
	uint8_t *buf = malloc(size);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 && buf ? pread(fd, buf, size, 0) : -1;
	int ret;

	if (n < 0) {
		fprintf(stderr, "pager-client: %s: %s\n", path, strerror(errno));
		ret = -1;
	} else {
		memset(buf + n, 0, size - n);
		ret = memcmp(buf, gmem_region_addr(r), size) ? -1 : 0;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

struct client_opts {
	const char *mode, *cmp;
	uint32_t flags;   /* GMEM_REMOTE_* */
	uint32_t backing; /* enum gmem_backing */
};

static int run(const char *addr, const struct client_opts *o)
{
	const char *mode = o->mode, *cmp = o->cmp;
	struct gmem_fault_params fp = { .nr_threads = 2, .fault_around = 16 };
	struct gmem_region_params p = { .page_size = GMEM_PAGE_4K,
					.flags = GMEM_REGION_MISSING,
					.backing = o->backing };
	/* The page server's pre-shared key, as the programs take it. */
	const char *key = getenv("GMEM_KEY");
	struct gmem_remote_params rp = {
		.connect_ms = 20000, .flags = o->flags,
		.key = key && *key ? key : NULL, .key_len = key ? strlen(key) : 0,
	};
	struct gmem_region *r = NULL;
	struct gmem_source *src = NULL;
	struct gmem_remote_stats st;
	struct gmem_remote *rm;
	int ret, same = 1;

	ret = gmem_remote_connect(addr, &rp, &rm);
	if (ret < 0) {
		fprintf(stderr, "pager-client: connect %s: %s\n", addr,
			rm ? gmem_remote_error(rm) : strerror(-ret));
		gmem_remote_destroy(rm);
		return 1;
	}
	p.nr_pages = gmem_remote_nr_pages(rm);
	ret = gmem_region_create(&p, &r);
	if (ret == 0)
		ret = gmem_remote_precopy(rm, r, 20000) < 0 ? -EPROTO : 0;
	if (ret == 0)
		ret = gmem_remote_source(rm, &src);
	if (ret == 0)
		ret = gmem_region_attach(r, src, &fp);
	if (ret == 0) {
		workload(r, mode);
		ret = gmem_remote_wait(rm, 60000);
		gmem_region_detach(r);
	}
	if (ret == 0 && cmp)
		same = compare_file(r, cmp) == 0;
	gmem_remote_stats(rm, &st);
	printf("{\"mode\":\"%s\",\"transport\":\"%s\",\"result\":%d,\"pages\":%llu,\"urgent_pages\":%llu,"
	       "\"pushed_pages\":%llu,\"prefetched_pages\":%llu,\"dropped_pages\":%llu,\"requests\":%llu,"
	       "\"mismatches\":%llu,\"file_equal\":%s}\n",
	       mode, gmem_remote_transport(rm), ret,
	       (unsigned long long)p.nr_pages,
	       (unsigned long long)st.urgent_pages,
	       (unsigned long long)st.pushed_pages,
	       (unsigned long long)st.prefetched_pages,
	       (unsigned long long)st.dropped_pages,
	       (unsigned long long)st.requests,
	       (unsigned long long)st.mismatches, same ? "true" : "false");
	if (ret < 0)
		fprintf(stderr, "pager-client: %s: %s\n", strerror(-ret),
			gmem_remote_error(rm));
	gmem_source_destroy(src);
	gmem_remote_destroy(rm);
	gmem_region_destroy(r);
	return ret == 0 && same ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "compare", required_argument, NULL, 'c' },
		{ "rdma", no_argument, NULL, 'r' },
		{ "anon", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct client_opts o = { .mode = "random" };
	int c;

	while ((c = getopt_long(argc, argv, "m:c:rah", longopts, NULL)) != -1) {
		if (c == 'm')
			o.mode = optarg;
		else if (c == 'c')
			o.cmp = optarg;
		else if (c == 'r')
			o.flags |= GMEM_REMOTE_RDMA;
		else if (c == 'a')
			o.backing = GMEM_BACKING_ANON;
		else
			goto usage;
	}
	if (optind + 1 != argc)
		goto usage;
	return run(argv[optind], &o);
usage:
	fprintf(stderr, "Usage: pager-client [--mode random|sequential|idle] "
			"[--compare FILE] [--rdma] [--anon] HOST:PORT\n");
	return 2;
}
