// SPDX-License-Identifier: MIT
/*
 * test-dirty.c - the dirty log: for each backend the kernel offers, many
 * epochs in which threads and a second process (a peer mapping the same
 * memfd) write random pages, populated or never touched, and every written
 * page must be reported in its epoch (false positives are counted and
 * printed); the same with writes racing the collect; anonymous and
 * missing-page regions; runs, epochs, ranges and every bad argument.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(dirty, .init = require_uffd);

#define NR_PAGES 8192       /* 32 MiB of 4 KiB pages */
#define NR_THREADS 3
#define EPOCHS 50
#define MAX_WRITES 160      /* per writer per epoch */
#define CHILD_ID NR_THREADS /* writer id of the peer process */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* The pages writer @id writes in @epoch: random ones, a quarter of them
 * starting a run of up to 16. Returns how many (<= MAX_WRITES). */
static unsigned int epoch_pages(unsigned int id, unsigned int epoch,
				uint64_t nr_pages, uint64_t *out)
{
	uint64_t s = (uint64_t)id << 32 | epoch;
	unsigned int want = 1 + splitmix(&s) % (MAX_WRITES - 16), n = 0;

	while (n < want) {
		uint64_t p = splitmix(&s) % nr_pages;
		unsigned int len = splitmix(&s) % 4 ? 1 : 1 + splitmix(&s) % 16;

		for (unsigned int i = 0; i < len && p + i < nr_pages; i++)
			out[n++] = p + i;
	}
	return n;
}

static void touch(uint8_t *base, uint64_t pgoff, uint64_t val)
{
	((volatile uint64_t *)(base + pgoff * 4096))[val % 512] = val;
}

/* Skips unless the kernel offers @backend for @backing. */
static void require_backend(uint32_t backend, uint32_t backing)
{
	uint64_t need = backend == GMEM_DIRTY_WP_ASYNC ?
				GMEM_FEAT_WP_ASYNC | GMEM_FEAT_PAGEMAP_SCAN :
			backend == GMEM_DIRTY_WP_SYNC ? GMEM_FEAT_WP :
							GMEM_FEAT_SOFT_DIRTY;

	if (backend != GMEM_DIRTY_SOFT_DIRTY)
		need |= backing == GMEM_BACKING_ANON ? GMEM_FEAT_WP_UNPOPULATED :
						       GMEM_FEAT_WP_SHMEM;
	require_features(need, backend == GMEM_DIRTY_SOFT_DIRTY ?
		"kernel without soft-dirty (CONFIG_MEM_SOFT_DIRTY)" :
		"kernel lacks userfaultfd write-protect for this backend/memory");
}

static struct gmem_region *dregion(uint64_t nr_pages, uint32_t backing,
				   uint32_t flags, uint32_t backend, int fd)
{
	struct gmem_region_params p = {
		.nr_pages = nr_pages, .backing = backing, .flags = flags,
		.fd = fd, .dirty_backend = backend,
	};
	struct gmem_region *r = NULL;
	int ret = gmem_region_create(&p, &r);

	cr_assert_eq(ret, 0, "gmem_region_create: %s", strerror(-ret));
	return r;
}

static void start(struct gmem_region *r, uint32_t backend)
{
	struct gmem_dirty_params p = { .backend = backend };
	int ret = gmem_dirty_start(r, &p);

	cr_assert_eq(ret, 0, "gmem_dirty_start(%s): %s",
		     gmem_dirty_backend_name(backend), strerror(-ret));
	cr_assert_eq(gmem_dirty_backend(r), (int)backend);
}

static int64_t collect(struct gmem_region *r, uint64_t *bitmap)
{
	struct gmem_dirty_result res = { .bitmap = bitmap };
	int64_t n = gmem_dirty_collect(r, &res);

	cr_assert_geq(n, 0, "gmem_dirty_collect: %s", strerror((int)-n));
	return n;
}

static bool bit(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

/* --- the peer process: its own mapping of the memfd, exported -------------- */

struct peer {
	pid_t pid;
	int sock;
	struct gmem_region *r; /* imported here */
};

/* Writes that race the collects, logged with their start and end times
 * (CLOCK_MONOTONIC, one clock for every process) in memory shared with the
 * peer process. */
#define LOG_CAP 30000

struct write_rec {
	uint64_t pgoff, begin_ns, end_ns;
};

struct write_log {
	int stop;
	uint32_t nr[NR_THREADS + 1];
	struct write_rec rec[NR_THREADS + 1][LOG_CAP];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Writer @id writes random pages until told to stop or its log is full.
 * The fence puts the store before the end time. */
static void racing_writes(struct write_log *log, unsigned int id,
			  uint8_t *base)
{
	uint64_t s = 0xd1e7 + id;

	while (!__atomic_load_n(&log->stop, __ATOMIC_ACQUIRE) &&
	       log->nr[id] < LOG_CAP) {
		struct write_rec *w = &log->rec[id][log->nr[id]];

		/* ~2 us apart, so the writes span many collects. */
		for (uint64_t t = mono_ns(); mono_ns() - t < 2000;)
			;
		w->pgoff = splitmix(&s) % NR_PAGES;
		w->begin_ns = mono_ns();
		touch(base, w->pgoff, s);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		w->end_ns = mono_ns();
		__atomic_store_n(&log->nr[id], log->nr[id] + 1,
				 __ATOMIC_RELEASE);
	}
}

/* Child: maps @fd as a region and exports it; then, on command, writes its
 * pages of an epoch ('w' + epoch, answered 'd') or races the collects
 * ('c', answered 'd' once stopped), until 'q'. */
static void peer_main(int sock, int fd, uint32_t backend,
		      struct write_log *log)
{
	struct gmem_region *c;
	struct gmem_region_params p = {
		.nr_pages = NR_PAGES, .backing = GMEM_BACKING_FD, .fd = fd,
		.dirty_backend = backend,
	};
	uint64_t pages[MAX_WRITES];
	uint32_t epoch;
	char cmd;

	if (gmem_region_create(&p, &c) || gmem_region_export(c, sock))
		_exit(2);
	while (read(sock, &cmd, 1) == 1 && cmd != 'q') {
		if (cmd == 'c') {
			racing_writes(log, CHILD_ID, gmem_region_addr(c));
		} else if (read(sock, &epoch, sizeof(epoch)) == sizeof(epoch)) {
			unsigned int n = epoch_pages(CHILD_ID, epoch, NR_PAGES,
						     pages);

			for (unsigned int i = 0; i < n; i++)
				touch(gmem_region_addr(c), pages[i],
				      epoch * 7919 + i);
		}
		if (write(sock, "d", 1) != 1)
			break;
	}
	_exit(0);
}

/* Forks a writer process on memfd @fd and imports its region. */
static void peer_spawn(struct peer *pe, int fd, uint32_t backend,
		       struct write_log *log)
{
	int sv[2], ret;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pe->pid = fork();
	cr_assert_geq(pe->pid, 0);
	if (pe->pid == 0) {
		close(sv[0]);
		peer_main(sv[1], fd, backend, log);
	}
	close(sv[1]);
	pe->sock = sv[0];
	ret = gmem_region_import(pe->sock, &pe->r);
	cr_assert_eq(ret, 0, "import: %s", strerror(-ret));
}

static void peer_link(struct peer *pe, struct gmem_region *r, uint32_t backend,
		      struct write_log *log)
{
	int ret;

	peer_spawn(pe, gmem_region_fd(r), backend, log);
	ret = gmem_dirty_add_peer(r, pe->r);
	cr_assert_eq(ret, 0, "add_peer: %s", strerror(-ret));
}

static void peer_epoch(struct peer *pe, uint32_t epoch)
{
	char c;

	cr_assert_eq(write(pe->sock, "w", 1), 1);
	cr_assert_eq(write(pe->sock, &epoch, sizeof(epoch)), sizeof(epoch));
	cr_assert_eq(read(pe->sock, &c, 1), 1, "peer process died");
}

static void peer_end(struct peer *pe)
{
	int status;

	cr_assert_eq(write(pe->sock, "q", 1), 1);
	cr_assert_eq(waitpid(pe->pid, &status, 0), pe->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(pe->sock);
}

/* --- epochs of writes, then a collect -------------------------------------- */

struct epoch_run {
	struct gmem_region *r;
	pthread_barrier_t go, done;
	uint32_t epoch;
	bool quit;
};

struct writer {
	struct epoch_run *run;
	unsigned int id;
};

/* Writes its pages of each epoch between the two barriers; also reads a
 * few random pages, which populates them without writing. */
static void *epoch_writer(void *arg)
{
	struct writer *w = arg;
	struct epoch_run *run = w->run;
	uint8_t *base = gmem_region_addr(run->r);
	uint64_t pages[MAX_WRITES], rs = w->id;
	volatile uint64_t sink = 0;

	for (;;) {
		pthread_barrier_wait(&run->go);
		if (run->quit)
			return NULL;
		unsigned int n = epoch_pages(w->id, run->epoch, NR_PAGES, pages);

		for (unsigned int i = 0; i < n; i++)
			touch(base, pages[i], run->epoch * 104729 + i);
		for (unsigned int i = 0; i < 8; i++)
			sink += base[(splitmix(&rs) % NR_PAGES) * 4096];
		pthread_barrier_wait(&run->done);
	}
}

/* The pages written in @epoch by every writer (and the peer, if any). */
static void expected(uint32_t epoch, bool peer, uint64_t *bm)
{
	uint64_t pages[MAX_WRITES];

	memset(bm, 0, NR_PAGES / 8);
	for (unsigned int id = 0; id <= (peer ? CHILD_ID : NR_THREADS - 1); id++) {
		unsigned int n = epoch_pages(id, epoch, NR_PAGES, pages);

		for (unsigned int i = 0; i < n; i++)
			bm[pages[i] / 64] |= 1ULL << (pages[i] % 64);
	}
}

struct prop_cfg {
	uint32_t backend;
	uint32_t backing;
	uint32_t flags;   /* GMEM_REGION_MISSING: a zero source is attached */
	bool peer;        /* a second process writes through its own mapping */
	const char *name;
};

/* Checks epoch @e's report against what was written; returns the number
 * of false positives. */
static uint64_t check_epoch(const struct prop_cfg *c, uint32_t e,
			    const uint64_t *got, uint64_t *want)
{
	uint64_t fp = 0;

	expected(e, c->peer, want);
	for (uint64_t p = 0; p < NR_PAGES; p++) {
		cr_assert(!bit(want, p) || bit(got, p),
			  "%s: epoch %u: page %lu written but not reported",
			  c->name, e, (unsigned long)p);
		fp += bit(got, p) && !bit(want, p);
	}
	return fp;
}

static void epoch_loop(const struct prop_cfg *c, struct epoch_run *run,
		       struct peer *pe)
{
	uint64_t got[NR_PAGES / 64], want[NR_PAGES / 64];
	uint64_t fp = 0, written = 0;

	for (uint32_t e = 1; e <= EPOCHS; e++) {
		run->epoch = e;
		pthread_barrier_wait(&run->go);
		if (c->peer)
			peer_epoch(pe, e);
		pthread_barrier_wait(&run->done);
		collect(run->r, got);
		fp += check_epoch(c, e, got, want);
		for (unsigned int w = 0; w < NR_PAGES / 64; w++)
			written += __builtin_popcountll(want[w]);
	}
	fprintf(stderr, "dirty %s: %d epochs, %lu pages written, 0 missed, "
		"%lu false positives\n", c->name, EPOCHS,
		(unsigned long)written, (unsigned long)fp);
}

static void property(const struct prop_cfg *c)
{
	struct epoch_run run = { .quit = false };
	struct writer w[NR_THREADS];
	pthread_t th[NR_THREADS];
	struct gmem_source *src = NULL;
	struct peer pe = { .pid = -1 };

	require_backend(c->backend, c->backing);
	run.r = dregion(NR_PAGES, c->backing, c->flags, c->backend, -1);
	if (c->flags & GMEM_REGION_MISSING) {
		cr_assert_eq(gmem_source_zero(&src), 0);
		cr_assert_eq(gmem_region_attach(run.r, src, NULL), 0);
	}
	if (c->peer)
		peer_link(&pe, run.r, c->backend, NULL);
	start(run.r, c->backend);
	pthread_barrier_init(&run.go, NULL, NR_THREADS + 1);
	pthread_barrier_init(&run.done, NULL, NR_THREADS + 1);
	for (unsigned int i = 0; i < NR_THREADS; i++) {
		w[i] = (struct writer){ .run = &run, .id = i };
		cr_assert_eq(pthread_create(&th[i], NULL, epoch_writer, &w[i]), 0);
	}
	epoch_loop(c, &run, &pe);
	run.quit = true;
	pthread_barrier_wait(&run.go);
	for (unsigned int i = 0; i < NR_THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(gmem_dirty_stop(run.r), 0);
	if (c->peer)
		peer_end(&pe);
	gmem_region_destroy(run.r);
	gmem_region_destroy(pe.r);
	gmem_source_destroy(src);
}

#define PROPERTY(name_, backend_, backing_, flags_, peer_)                    \
	Test(dirty, every_write_reported_##name_, .timeout = 60)              \
	{                                                                     \
		struct prop_cfg c = { backend_, backing_, flags_, peer_,      \
				      #name_ };                               \
		property(&c);                                                 \
	}

PROPERTY(async_memfd_threads_and_peer, GMEM_DIRTY_WP_ASYNC,
	 GMEM_BACKING_MEMFD, 0, true)
PROPERTY(sync_memfd_threads_and_peer, GMEM_DIRTY_WP_SYNC, GMEM_BACKING_MEMFD,
	 0, true)
PROPERTY(softdirty_memfd_threads_and_peer, GMEM_DIRTY_SOFT_DIRTY,
	 GMEM_BACKING_MEMFD, 0, true)
PROPERTY(async_anon_threads, GMEM_DIRTY_WP_ASYNC, GMEM_BACKING_ANON, 0, false)
PROPERTY(sync_anon_threads, GMEM_DIRTY_WP_SYNC, GMEM_BACKING_ANON, 0, false)
PROPERTY(softdirty_anon_threads, GMEM_DIRTY_SOFT_DIRTY, GMEM_BACKING_ANON, 0,
	 false)
PROPERTY(async_memfd_missing_zero_source, GMEM_DIRTY_WP_ASYNC,
	 GMEM_BACKING_MEMFD, GMEM_REGION_MISSING, false)
PROPERTY(sync_memfd_missing_zero_source, GMEM_DIRTY_WP_SYNC,
	 GMEM_BACKING_MEMFD, GMEM_REGION_MISSING, false)
PROPERTY(async_anon_missing_zero_source, GMEM_DIRTY_WP_ASYNC,
	 GMEM_BACKING_ANON, GMEM_REGION_MISSING, false)
PROPERTY(sync_anon_missing_zero_source, GMEM_DIRTY_WP_SYNC, GMEM_BACKING_ANON,
	 GMEM_REGION_MISSING, false)
PROPERTY(softdirty_anon_missing_zero_source, GMEM_DIRTY_SOFT_DIRTY,
	 GMEM_BACKING_ANON, GMEM_REGION_MISSING, false)

/* --- writes racing the collects -------------------------------------------- */

#define RACE_EPOCHS 400

struct race {
	struct gmem_region *r;
	struct write_log *log;
	uint64_t start_ns[RACE_EPOCHS + 1], end_ns[RACE_EPOCHS + 1];
	uint64_t got[RACE_EPOCHS + 1][NR_PAGES / 64];
	unsigned int nr_epochs;
};

struct racer {
	struct race *race;
	unsigned int id;
};

static void *racer_thread(void *arg)
{
	struct racer *w = arg;

	racing_writes(w->race->log, w->id, gmem_region_addr(w->race->r));
	return NULL;
}

/* Collects while the writers run, then once after they all stopped. */
static void race_collects(struct race *ra, struct peer *pe, pthread_t *th)
{
	char c;

	for (unsigned int e = 0; e <= RACE_EPOCHS; e++) {
		if (e == RACE_EPOCHS) {
			__atomic_store_n(&ra->log->stop, 1, __ATOMIC_RELEASE);
			if (pe)
				cr_assert_eq(read(pe->sock, &c, 1), 1);
			for (unsigned int i = 0; i < NR_THREADS; i++)
				pthread_join(th[i], NULL);
		}
		usleep(e == RACE_EPOCHS ? 0 : 300);
		ra->start_ns[e] = mono_ns();
		collect(ra->r, ra->got[e]);
		ra->end_ns[e] = mono_ns();
	}
	ra->nr_epochs = RACE_EPOCHS + 1;
}

/*
 * A write must be reported by the first collect that starts after it ended,
 * or by an earlier one that ended after it began (a write overlapping a
 * collect may fall on either side). Returns the writes checked.
 */
static uint64_t race_check(const struct race *ra)
{
	uint64_t checked = 0;

	for (unsigned int id = 0; id <= NR_THREADS; id++) {
		for (uint32_t i = 0; i < ra->log->nr[id]; i++) {
			const struct write_rec *w = &ra->log->rec[id][i];
			unsigned int k = 0;
			bool seen = false;

			while (k + 1 < ra->nr_epochs && ra->start_ns[k] <= w->end_ns)
				k++;
			cr_assert_gt(ra->start_ns[k], w->end_ns);
			for (int j = k; j >= 0 && ra->end_ns[j] > w->begin_ns; j--)
				seen |= bit(ra->got[j], w->pgoff);
			cr_assert(seen, "writer %u, write %u: page %lu not reported",
				  id, i, (unsigned long)w->pgoff);
			checked++;
		}
	}
	return checked;
}

/* Writers race the collects: 3 threads, and a peer process on memfd; on
 * a MISSING region the writes also race the installs of a zero source. */
static void racing_property(uint32_t backend, uint32_t backing, uint32_t flags)
{
	struct race *ra = calloc(1, sizeof(*ra));
	struct racer w[NR_THREADS];
	pthread_t th[NR_THREADS];
	struct gmem_source *src = NULL;
	struct peer pe = { .pid = -1 }, *ppe = NULL;
	void *shm = mmap(NULL, sizeof(struct write_log), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t n;

	require_backend(backend, backing);
	cr_assert(ra && shm != MAP_FAILED);
	ra->log = shm;
	ra->r = dregion(NR_PAGES, backing, flags, backend, -1);
	if (flags & GMEM_REGION_MISSING) {
		cr_assert_eq(gmem_source_zero(&src), 0);
		cr_assert_eq(gmem_region_attach(ra->r, src, NULL), 0);
	} else if (backing != GMEM_BACKING_ANON) {
		ppe = &pe;
		peer_link(ppe, ra->r, backend, ra->log);
	}
	start(ra->r, backend);
	if (ppe)
		cr_assert_eq(write(pe.sock, "c", 1), 1);
	for (unsigned int i = 0; i < NR_THREADS; i++) {
		w[i] = (struct racer){ .race = ra, .id = i };
		cr_assert_eq(pthread_create(&th[i], NULL, racer_thread, &w[i]), 0);
	}
	race_collects(ra, ppe, th);
	n = race_check(ra);
	fprintf(stderr, "dirty racing %s %s%s: %u collects, %lu writes, "
		"0 missed\n", gmem_dirty_backend_name(backend),
		backing == GMEM_BACKING_ANON ? "anon" : "memfd+peer",
		flags ? " missing" : "", ra->nr_epochs, (unsigned long)n);
	if (ppe)
		peer_end(ppe);
	gmem_region_destroy(ra->r);
	gmem_region_destroy(pe.r);
	gmem_source_destroy(src);
	munmap(shm, sizeof(struct write_log));
	free(ra);
}

Test(dirty, writes_racing_collect_never_missed_async, .timeout = 60)
{
	racing_property(GMEM_DIRTY_WP_ASYNC, GMEM_BACKING_MEMFD, 0);
}

Test(dirty, writes_racing_collect_never_missed_sync, .timeout = 60)
{
	racing_property(GMEM_DIRTY_WP_SYNC, GMEM_BACKING_MEMFD, 0);
}

Test(dirty, writes_racing_collect_and_installs_async, .timeout = 60)
{
	racing_property(GMEM_DIRTY_WP_ASYNC, GMEM_BACKING_ANON,
			GMEM_REGION_MISSING);
}

Test(dirty, writes_racing_collect_and_installs_sync, .timeout = 60)
{
	racing_property(GMEM_DIRTY_WP_SYNC, GMEM_BACKING_ANON,
			GMEM_REGION_MISSING);
}

/* --- the API: epochs, runs, ranges, peers, bad input ------------------------ */

/* The best backend of this kernel for a memfd region, or a skip. */
static uint32_t any_backend(void)
{
	uint64_t feat = 0;

	gmem_features(&feat);
	if ((feat & (GMEM_FEAT_WP_ASYNC | GMEM_FEAT_PAGEMAP_SCAN)) ==
	    (GMEM_FEAT_WP_ASYNC | GMEM_FEAT_PAGEMAP_SCAN))
		return GMEM_DIRTY_WP_ASYNC;
	require_backend(GMEM_DIRTY_WP_SYNC, GMEM_BACKING_MEMFD);
	return GMEM_DIRTY_WP_SYNC;
}

Test(dirty, auto_reports_the_backend_chosen, .timeout = 10)
{
	uint32_t b = any_backend();
	struct gmem_region *r = dregion(64, GMEM_BACKING_MEMFD, 0, b, -1);

	cr_assert_eq(gmem_dirty_backend(r), -EINVAL);
	cr_assert_eq(gmem_dirty_start(r, NULL), 0);
	cr_assert_eq(gmem_dirty_backend(r), (int)b);
	cr_assert_str_eq(gmem_dirty_backend_name(GMEM_DIRTY_WP_ASYNC), "wp-async");
	cr_assert_str_eq(gmem_dirty_backend_name(GMEM_DIRTY_WP_SYNC), "wp-sync");
	cr_assert_str_eq(gmem_dirty_backend_name(GMEM_DIRTY_SOFT_DIRTY),
			 "soft-dirty");
	cr_assert_str_eq(gmem_dirty_backend_name(42), "unknown");
	cr_assert_eq(gmem_dirty_bitmap_words(r), 1);
	gmem_region_destroy(r); /* while tracking: destroy stops it */
}

Test(dirty, epochs_count_collects_and_rearm, .timeout = 10)
{
	uint32_t b = any_backend();
	struct gmem_region *r = dregion(256, GMEM_BACKING_MEMFD, 0, b, -1);
	uint8_t *base = gmem_region_addr(r);
	uint64_t bm[4];
	struct gmem_dirty_result res = { .bitmap = bm };

	start(r, b);
	for (uint64_t e = 1; e <= 3; e++) {
		touch(base, 10 * e, e);
		cr_assert_eq(gmem_dirty_collect(r, &res), 1);
		cr_assert_eq(res.epoch, e);
		cr_assert(bit(bm, 10 * e));
	}
	cr_assert_eq(gmem_dirty_collect(r, &res), 0, "nothing written: no page");
	cr_assert_eq(gmem_dirty_stop(r), 0);
	touch(base, 1, 1); /* un-protected: must not block */
	start(r, b);       /* and tracking starts again */
	touch(base, 2, 2);
	cr_assert_eq(gmem_dirty_collect(r, &res), 1);
	cr_assert_eq(res.epoch, 1);
	gmem_region_destroy(r);
}

Test(dirty, runs_ascending_and_full_runs_stay_pending, .timeout = 10)
{
	uint32_t b = any_backend();
	struct gmem_region *r = dregion(256, GMEM_BACKING_MEMFD, 0, b, -1);
	struct gmem_dirty_run runs[8];
	struct gmem_dirty_result res = { .runs = runs, .max_runs = 2 };

	start(r, b);
	for (uint64_t p = 1; p < 10; p += 2)
		touch(gmem_region_addr(r), p, p);
	for (uint64_t p = 20; p < 30; p++)
		touch(gmem_region_addr(r), p, p);
	cr_assert_eq(gmem_dirty_collect(r, &res), 2);
	cr_assert_eq(res.nr_runs, 2);
	cr_assert(res.flags & GMEM_DIRTY_RUNS_FULL);
	cr_assert_eq(runs[0].pgoff, 1);
	cr_assert_eq(runs[1].pgoff, 3);
	res = (struct gmem_dirty_result){ .runs = runs, .max_runs = 8 };
	cr_assert_eq(gmem_dirty_collect(r, &res), 13, "the rest, next epoch");
	cr_assert_eq(res.nr_runs, 4);
	cr_assert_eq(res.flags, 0);
	cr_assert_eq(runs[3].pgoff, 20);
	cr_assert_eq(runs[3].nr_pages, 10);
	gmem_region_destroy(r);
}

Test(dirty, range_tracks_only_its_pages, .timeout = 10)
{
	uint32_t b = any_backend();
	struct gmem_region *r = dregion(256, GMEM_BACKING_ANON, 0, b, -1);
	struct gmem_dirty_params p = { .backend = b, .pgoff = 100, .nr_pages = 100 };
	uint64_t bm[4];

	cr_assert_eq(gmem_dirty_start(r, &p), 0);
	touch(gmem_region_addr(r), 50, 1);
	touch(gmem_region_addr(r), 150, 1);
	touch(gmem_region_addr(r), 250, 1);
	cr_assert_eq(collect(r, bm), 1);
	cr_assert(bit(bm, 150));
	gmem_region_destroy(r);
}

Test(dirty, bad_input_is_rejected, .timeout = 10)
{
	uint32_t b = any_backend();
	struct gmem_region *r = dregion(64, GMEM_BACKING_MEMFD, 0, b, -1);
	struct gmem_dirty_params p = { .backend = b, .pgoff = 64 };
	struct gmem_dirty_result res = { 0 };
	uint64_t bm[1];

	cr_assert_eq(gmem_dirty_collect(r, &(struct gmem_dirty_result){
				.bitmap = bm }), -EINVAL, "collect without start");
	cr_assert_eq(gmem_dirty_stop(r), -EINVAL, "stop without start");
	cr_assert_eq(gmem_dirty_start(r, &p), -EINVAL, "range past the end");
	p = (struct gmem_dirty_params){ .backend = b, .pgoff = 60, .nr_pages = 5 };
	cr_assert_eq(gmem_dirty_start(r, &p), -EINVAL, "range past the end");
	p = (struct gmem_dirty_params){ .backend = 7 };
	cr_assert_eq(gmem_dirty_start(r, &p), -EINVAL, "unknown backend");
	p = (struct gmem_dirty_params){ .backend = b, .flags = 1 };
	cr_assert_eq(gmem_dirty_start(r, &p), -EINVAL, "flags");
	p = (struct gmem_dirty_params){ .backend = b, .resv = { 1 } };
	cr_assert_eq(gmem_dirty_start(r, &p), -EINVAL, "resv");
	p = (struct gmem_dirty_params){
		.backend = b == GMEM_DIRTY_WP_ASYNC ? GMEM_DIRTY_WP_SYNC
						    : GMEM_DIRTY_WP_ASYNC };
	cr_assert_eq(gmem_dirty_start(r, &p), -EINVAL,
		     "a backend the region was not created for");
	cr_assert_eq(gmem_dirty_start(r, NULL), 0);
	cr_assert_eq(gmem_dirty_start(r, NULL), -EBUSY, "started twice");
	cr_assert_eq(gmem_dirty_collect(r, &res), -EINVAL, "no buffer");
	res = (struct gmem_dirty_result){ .runs = (void *)bm };
	cr_assert_eq(gmem_dirty_collect(r, &res), -EINVAL, "max_runs 0");
	res = (struct gmem_dirty_result){ .bitmap = bm, .resv0 = 1 };
	cr_assert_eq(gmem_dirty_collect(r, &res), -EINVAL, "resv");
	cr_assert_eq(gmem_dirty_stop(r), 0);
	gmem_region_destroy(r);
}

/*
 * A second mapping of the memfd (here another region on the same fd in this
 * process) writes through page tables the region's log does not read: its
 * writes are seen only once it is linked as a peer.
 */
Test(dirty, other_mapping_seen_only_as_peer, .timeout = 10)
{
	uint32_t b = any_backend();
	struct gmem_region *r = dregion(64, GMEM_BACKING_MEMFD, 0, b, -1);
	struct gmem_region *q = dregion(64, GMEM_BACKING_FD, 0, b,
					gmem_region_fd(r));
	struct gmem_region *anon = dregion(64, GMEM_BACKING_ANON, 0, b, -1);
	uint64_t bm[1];

	start(r, b);
	touch(gmem_region_addr(q), 5, 1);
	cr_assert_eq(collect(r, bm), 0, "the other mapping is invisible");
	cr_assert_eq(gmem_dirty_add_peer(r, q), -EBUSY, "tracking");
	cr_assert_eq(gmem_dirty_stop(r), 0);
	cr_assert_eq(gmem_dirty_add_peer(r, anon), -EINVAL, "other memory");
	cr_assert_eq(gmem_dirty_add_peer(r, r), -EINVAL);
	cr_assert_eq(gmem_dirty_remove_peer(r, q), -ENOENT);
	cr_assert_eq(gmem_dirty_add_peer(r, q), 0);
	cr_assert_eq(gmem_dirty_add_peer(r, q), -EBUSY, "linked twice");
	cr_assert_eq(gmem_dirty_start(q, NULL), -EBUSY, "a peer");
	start(r, b);
	cr_assert_eq(gmem_dirty_collect(q, &(struct gmem_dirty_result){
				.bitmap = bm }), -EBUSY, "collect a peer");
	collect(r, bm);
	touch(gmem_region_addr(q), 6, 1);
	touch(gmem_region_addr(r), 7, 1);
	cr_assert_eq(collect(r, bm), 2);
	cr_assert(bit(bm, 6) && bit(bm, 7));
	cr_assert_eq(gmem_dirty_remove_peer(r, q), 0);
	touch(gmem_region_addr(q), 8, 1);
	cr_assert_eq(collect(r, bm), 0);
	cr_assert_eq(gmem_dirty_add_peer(r, q), -EBUSY, "tracking");
	gmem_region_destroy(q);
	gmem_region_destroy(anon);
	gmem_region_destroy(r);
}

/* gmem-migrate's case: the region lives in another process, which writes
 * it; the tracker imported it and reads that process's page tables. */
Test(dirty, imported_region_tracks_its_owner, .timeout = 30)
{
	uint32_t b = any_backend();
	struct gmem_region *r = dregion(NR_PAGES, GMEM_BACKING_MEMFD, 0, b, -1);
	uint64_t got[NR_PAGES / 64], want[NR_PAGES / 64];
	struct peer pe;

	peer_spawn(&pe, gmem_region_fd(r), b, NULL);
	gmem_region_destroy(r);
	start(pe.r, b);
	for (uint32_t e = 1; e <= 10; e++) {
		uint64_t pages[MAX_WRITES];
		unsigned int n = epoch_pages(CHILD_ID, e, NR_PAGES, pages);

		peer_epoch(&pe, e);
		collect(pe.r, got);
		memset(want, 0, sizeof(want));
		for (unsigned int i = 0; i < n; i++)
			want[pages[i] / 64] |= 1ULL << (pages[i] % 64);
		for (uint64_t p = 0; p < NR_PAGES; p++)
			cr_assert(!bit(want, p) || bit(got, p),
				  "epoch %u: page %lu missed", e, (unsigned long)p);
	}
	cr_assert_eq(gmem_dirty_stop(pe.r), 0);
	peer_end(&pe);
	gmem_region_destroy(pe.r);
}

Test(dirty, softdirty_without_kernel_support_is_eopnotsupp, .timeout = 10)
{
	uint64_t feat = 0;
	struct gmem_region *r;
	struct gmem_dirty_params p = { .backend = GMEM_DIRTY_SOFT_DIRTY };

	gmem_features(&feat);
	if (feat & GMEM_FEAT_SOFT_DIRTY)
		cr_skip_test("this kernel has soft-dirty");
	r = dregion(16, GMEM_BACKING_ANON, 0, GMEM_DIRTY_SOFT_DIRTY, -1);
	cr_assert_eq(gmem_dirty_start(r, &p), -EOPNOTSUPP);
	cr_assert_eq(gmem_dirty_start(r, NULL), -EOPNOTSUPP, "auto = soft-dirty");
	gmem_region_destroy(r);
}

Test(dirty, huge_2m_pages_reported, .timeout = 20)
{
	uint32_t b = any_backend();
	struct gmem_region_params p = {
		.nr_pages = 4, .page_size = GMEM_PAGE_2M,
		.backing = GMEM_BACKING_MEMFD, .dirty_backend = b,
	};
	struct gmem_region *r = NULL;
	uint64_t bm[1];
	uint8_t *base;

	require_features(GMEM_FEAT_HUGETLB_2M,
			 "no 2 MiB huge pages reserved (vm.nr_hugepages)");
	cr_assert_eq(gmem_region_create(&p, &r), 0);
	base = gmem_region_addr(r);
	base[0] = 1; /* populated before tracking; page 3 never touched */
	start(r, b);
	base[GMEM_PAGE_2M + 4096] = 1;
	base[3 * GMEM_PAGE_2M + 8] = 1;
	cr_assert_eq(collect(r, bm), 2);
	cr_assert_eq(bm[0], 0xa);
	base[7] = 1;
	cr_assert_eq(collect(r, bm), 1);
	cr_assert_eq(bm[0], 0x1);
	gmem_region_destroy(r);
}
