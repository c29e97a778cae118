// SPDX-License-Identifier: MIT
/*
 * test-migrate.c - the migration engine between two processes on loopback:
 * in every mode a region that a writer thread keeps changing until the pause
 * ends up at the destination byte for byte (the engine's per-page digests,
 * plus a whole-region checksum carried in the device state), while the
 * destination's workload reads pages during post-copy, its waits on faults
 * accounted to its thread; the push sends the pages written last before the
 * pause first. Auto stays pre-copy on a slow writer and switches to
 * post-copy on one that writes faster than the link sends. Bad parameters
 * and a missing source give clear errors.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "helpers.h"

TestSuite(migrate, .init = require_uffd);

#define NR_PAGES 2048ULL
#define PS 4096ULL

/* The device state this test's "workload" carries. */
struct state {
	uint64_t writes;
	uint64_t checksum; /* XXH3 of the whole region at the pause */
};

struct writer {
	uint8_t *base;
	volatile bool stop;
	uint64_t writes;
	pthread_t tid;
};

/* Rewrites a few pages every 200 us, slowly enough for pre-copy to
 * converge, often enough that every round finds dirty pages. */
static void *writer_run(void *arg)
{
	struct writer *w = arg;
	unsigned int seed = 42;

	while (!w->stop) {
		uint64_t p = rand_r(&seed) % NR_PAGES;

		((volatile uint64_t *)(w->base + p * PS))[p % 512] = ++w->writes;
		usleep(200);
	}
	return NULL;
}

static int src_pause(void *ctx, void *buf, size_t *len)
{
	struct writer *w = ctx;
	struct state st;

	w->stop = true;
	pthread_join(w->tid, NULL);
	/* A last write at the pause, as a workload's final step makes: pre-copy
	 * must send it in the freeze, however fast its rounds were. */
	((volatile uint64_t *)w->base)[1] = ++w->writes;
	st.writes = w->writes;
	st.checksum = XXH3_64bits(w->base, NR_PAGES * PS);
	memcpy(buf, &st, sizeof(st));
	*len = sizeof(st);
	return 0;
}

/* What the destination child found, in shared memory. */
struct dest_out {
	int ret;
	int resumed;
	struct state got;
	uint64_t checksum;
	struct gmem_migrate_stats st;
	char why[192]; /* the failed callback's text */
	pid_t reader_tid;  /* the thread that read pages in post-copy */
	int64_t nr_blocked; /* gmem_region_blocktime() at the end */
	struct gmem_thread_blocktime blocked[4];
};

struct dest_ctx {
	struct dest_out *out;
	struct gmem_region *r;
	pthread_t reader;
};

/* The resumed workload: reads pages at once, during post-copy. */
static void *dest_read(void *arg)
{
	struct dest_ctx *d = arg;
	volatile uint8_t *p = gmem_region_addr(d->r);
	uint64_t sum = 0;

	d->out->reader_tid = gettid();
	for (uint64_t i = 0; i < NR_PAGES; i += 7)
		sum += p[((i * 13) % NR_PAGES) * PS];
	return (void *)(uintptr_t)sum;
}

static int dest_resume(void *ctx, const void *buf, size_t len)
{
	struct dest_ctx *d = ctx;

	if (len != sizeof(struct state))
		return -EPROTO;
	memcpy(&d->out->got, buf, len);
	d->out->resumed = 1;
	return -pthread_create(&d->reader, NULL, dest_read, d);
}

static void dest_failed(void *ctx, const char *why)
{
	struct dest_ctx *d = ctx;

	snprintf(d->out->why, sizeof(d->out->why), "%s", why);
}

/* Both sides' pre-shared key, set before the fork; NULL = none. */
static const char *session_key;

static void dest_child(const char *addr, uint64_t nr_pages,
		       struct dest_out *out)
{
	struct gmem_migrate_params p = { .wait_ms = 20000 };
	struct gmem_migrate_ops ops = { .resume = dest_resume,
					.failed = dest_failed };
	struct dest_ctx d = { .out = out };

	if (session_key) {
		p.key = session_key;
		p.key_len = strlen(session_key);
	}
	d.r = region_new(nr_pages, 0, GMEM_BACKING_MEMFD, GMEM_REGION_MISSING);
	out->ret = gmem_migrate_dest(d.r, addr, &p, &ops, &d, &out->st);
	if (out->resumed)
		pthread_join(d.reader, NULL);
	if (out->ret == 0)
		out->checksum = XXH3_64bits(gmem_region_addr(d.r),
					    NR_PAGES * PS);
	out->nr_blocked = gmem_region_blocktime(d.r, out->blocked, 4);
	gmem_region_destroy(d.r);
	_exit(0);
}

static void migrate_in_mode(uint32_t mode)
{
	struct gmem_migrate_params p = { .mode = mode, .wait_ms = 20000,
					 .downtime_ms = 1000 };
	struct gmem_migrate_ops ops = { .pause = src_pause };
	struct dest_out *out = mmap(NULL, sizeof(*out), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct gmem_region *r = region_new(NR_PAGES, 0, GMEM_BACKING_MEMFD, 0);
	struct gmem_migrate_stats st;
	struct writer w = { .base = gmem_region_addr(r) };
	char addr[32];
	int ret, status;
	pid_t pid;

	if (session_key) {
		p.key = session_key;
		p.key_len = strlen(session_key);
	}
	pattern_fill(w.base, 9, 0, NR_PAGES, PS);
	/* Below Linux's ephemeral ports (32768 and up by default): a port
	 * there may be any connection's local end, and the listen fails. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + getpid() % 12000);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		dest_child(addr, NR_PAGES, out);
	pthread_create(&w.tid, NULL, writer_run, &w);
	ret = gmem_migrate_source(r, addr, &p, &ops, &w, &st);
	if (!w.stop) {
		w.stop = true;
		pthread_join(w.tid, NULL);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect_eq(out->ret, 0, "destination: %s", strerror(-out->ret));
	cr_assert_eq(ret, 0, "source: %s", strerror(-ret));
	cr_assert_eq(out->ret, 0);
	cr_expect_eq(out->got.writes, w.writes, "device state carried");
	cr_expect_eq(out->checksum, out->got.checksum,
		     "destination region differs from the source's at pause");
	cr_expect_eq(st.pages.mismatches, 0);
	cr_expect(out->st.resume_ns && out->st.complete_ns >= out->st.resume_ns);
	/* The default: two bulk connections, four when sealed. */
	cr_expect_eq(out->st.nr_bulk, session_key ? 4 : 2);
	switch (mode) {
	case GMEM_MIGRATE_POSTCOPY:
		cr_expect_eq(st.precopy_pages + st.freeze_pages, 0);
		cr_expect_eq(out->st.pages.urgent_pages +
				     out->st.pages.pushed_pages +
				     out->st.pages.prefetched_pages, NR_PAGES,
			     "every page comes after the resume");
		/* The epoch before the pause saw the writer: its pages went
		 * first. */
		cr_expect_gt(st.pages.hot_pages, 0, "no working set pushed");
		cr_expect_leq(st.pages.hot_pages, st.pages.pushed_pages);
		/* Only the reader touched pages before they were all in. On a
		 * loaded machine the push (8 MiB) may bring every page before
		 * the reader starts: then no wait may be counted at all. */
		if (!out->st.pages.urgent_pages) {
			cr_expect_eq(out->st.blocked_ns, 0);
			cr_expect_eq(out->nr_blocked, 0);
			break;
		}
		cr_expect_gt(out->st.blocked_ns, 0, "its waits are counted");
		cr_expect_eq(out->st.blocked_threads, 1);
		cr_expect_eq(out->st.blocked_max_tid, (uint32_t)out->reader_tid,
			     "accounted to the faulting thread");
		cr_expect_eq(out->st.blocked_max_ns, out->st.blocked_ns);
		cr_expect_eq(out->nr_blocked, 1);
		cr_expect_eq(out->blocked[0].tid, (uint32_t)out->reader_tid);
		cr_expect_eq(out->blocked[0].ns, out->st.blocked_ns);
		cr_expect_gt(out->blocked[0].faults, 0);
		cr_expect(out->blocked[0].max_ns > 0 &&
			  out->blocked[0].max_ns <= out->blocked[0].ns);
		break;
	case GMEM_MIGRATE_PRECOPY:
		cr_expect(st.converged, "a slow writer converges");
		cr_expect_geq(st.rounds, 1);
		cr_expect_gt(st.freeze_pages, 0, "pages written since the "
			     "last round go in the freeze");
		cr_expect_eq(out->st.pages.urgent_pages, 0);
		break;
	case GMEM_MIGRATE_HYBRID:
		cr_expect_eq(st.rounds, 3, "full pass + 2 rounds");
		cr_expect_eq(out->st.stale_pages, st.stale_pages,
			     "the destination learns the source's figures");
		/* The write at the pause at least made a page stale. */
		cr_expect_gt(st.stale_pages, 0, "no page was stale");
		/* The full pass sent every page: the stale ones, and only
		 * they, came again over the network; the rest was
		 * installed from what pre-copy had sent. */
		cr_expect_eq(out->st.pages.urgent_pages +
				     out->st.pages.pushed_pages +
				     out->st.pages.prefetched_pages,
			     st.stale_pages, "fetched again: %lu urgent, %lu "
			     "pushed, %lu prefetched; stale %lu",
			     out->st.pages.urgent_pages,
			     out->st.pages.pushed_pages,
			     out->st.pages.prefetched_pages, st.stale_pages);
		cr_expect_eq(out->st.pages.local_pages,
			     NR_PAGES - st.stale_pages);
		/* The stale pages are the last two epochs: every pushed
		 * page came from the working set. */
		cr_expect_eq(st.pages.hot_pages, st.pages.pushed_pages,
			     "hot %lu of %lu pushed", st.pages.hot_pages,
			     st.pages.pushed_pages);
		break;
	case GMEM_MIGRATE_STOP_AND_COPY:
		cr_expect_eq(st.freeze_pages, NR_PAGES);
		cr_expect_eq(out->st.pages.urgent_pages, 0);
		break;
	case GMEM_MIGRATE_AUTO:
		/* The slow writer leaves little after the full pass: auto
		 * ends as pre-copy, the rest sent in the freeze. */
		cr_expect_eq(st.mode, GMEM_MIGRATE_PRECOPY, "ran mode %u",
			     st.mode);
		cr_expect_eq(st.switch_reason, GMEM_SWITCH_CONVERGED);
		cr_expect(st.converged);
		cr_expect_gt(st.freeze_pages, 0);
		cr_expect_eq(out->st.mode, GMEM_MIGRATE_PRECOPY,
			     "the destination learns the mode that ran");
		cr_expect_eq(out->st.switch_reason, GMEM_SWITCH_CONVERGED);
		cr_expect_eq(out->st.pages.urgent_pages +
				     out->st.pages.pushed_pages, 0,
			     "no page after the resume");
		break;
	}
	gmem_region_destroy(r);
	munmap(out, sizeof(*out));
}

Test(migrate, postcopy_moves_every_page, .timeout = 90)
{
	migrate_in_mode(GMEM_MIGRATE_POSTCOPY);
}

/* A keyed session: every frame sealed, and more bulk connections. */
Test(migrate, keyed_postcopy_moves_every_page, .timeout = 90)
{
	session_key = "a key of this test, long enough";
	migrate_in_mode(GMEM_MIGRATE_POSTCOPY);
}

Test(migrate, precopy_converges_on_a_slow_writer, .timeout = 90)
{
	migrate_in_mode(GMEM_MIGRATE_PRECOPY);
}

Test(migrate, hybrid_fetches_stale_pages_again, .timeout = 90)
{
	migrate_in_mode(GMEM_MIGRATE_HYBRID);
}

Test(migrate, stop_and_copy_sends_all_in_the_freeze, .timeout = 90)
{
	migrate_in_mode(GMEM_MIGRATE_STOP_AND_COPY);
}

Test(migrate, auto_converges_on_a_slow_writer, .timeout = 90)
{
	migrate_in_mode(GMEM_MIGRATE_AUTO);
}

/* A workload that rewrites every page before each pre-copy round (from
 * the progress report that starts it), so every round finds the whole
 * region dirty again: pre-copy cannot converge, as 64 MiB do not fit a
 * 1 ms freeze at any loopback rate. */
#define STORM_PAGES 16384ULL
struct storm {
	uint8_t *base;
	uint64_t writes;
	uint32_t last_round;
	int pauses;
};

static void storm_progress(void *ctx, const struct gmem_migrate_progress *p)
{
	struct storm *w = ctx;

	if (p->phase != GMEM_PHASE_PRECOPY || p->round == w->last_round)
		return;
	w->last_round = p->round;
	for (uint64_t i = 0; i < STORM_PAGES; i++)
		((volatile uint64_t *)(w->base + i * PS))[0] = ++w->writes;
}

/* The device state of migrate_in_mode()'s writer, for dest_child(). */
static int storm_pause(void *ctx, void *buf, size_t *len)
{
	struct storm *w = ctx;
	struct state st = { .writes = w->writes,
			    .checksum = XXH3_64bits(w->base, NR_PAGES * PS) };

	w->pauses++;
	memcpy(buf, &st, sizeof(st));
	*len = sizeof(st);
	return 0;
}

/* PRECOPY with ABORT_UNCONVERGED against that workload: cancelled after
 * the round limit, the workload never paused (it runs on here) and never
 * resumed there. */
Test(migrate, precopy_unconverged_aborts_without_pausing, .timeout = 90)
{
	struct gmem_migrate_params p = {
		.mode = GMEM_MIGRATE_PRECOPY, .wait_ms = 20000,
		.flags = GMEM_MIGRATE_ABORT_UNCONVERGED, .max_rounds = 2,
		.downtime_ms = 1,
	};
	struct gmem_migrate_ops ops = { .pause = storm_pause,
					.progress = storm_progress };
	struct dest_out *out = mmap(NULL, sizeof(*out), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct gmem_region *r = region_new(STORM_PAGES, 0, GMEM_BACKING_MEMFD, 0);
	struct storm w = { .base = gmem_region_addr(r) };
	struct gmem_migrate_stats st;
	int ret, status;
	char addr[32];
	pid_t pid;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + getpid() % 12000);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		dest_child(addr, STORM_PAGES, out);
	ret = gmem_migrate_source(r, addr, &p, &ops, &w, &st);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(ret, -ECANCELED, "source: %d %s (destination %d: %s)",
		     ret, strerror(-ret), out->ret, out->why);
	cr_expect_eq(w.pauses, 0, "the workload was paused");
	cr_expect_eq(st.pause_ns, 0);
	cr_expect_eq(st.converged, 0);
	cr_expect_eq(st.rounds, 3, "full pass + 2 rounds, then the abort");
	cr_expect_eq(w.last_round, 3);
	cr_expect_lt(out->ret, 0, "the destination must fail");
	cr_expect_eq(out->resumed, 0, "the destination resumed");
	gmem_region_destroy(r);
	munmap(out, sizeof(*out));
}

/*
 * AUTO against the storm: the first piece of the full pass (4096 pages)
 * did not halve what is owed, so it switches to post-copy at once,
 * without the rest of the pass, rather than running the 30 rounds of its
 * limit. Every page arrives: the rewritten ones and those never sent by
 * post-copy.
 */
Test(migrate, auto_switches_to_postcopy_when_not_converging, .timeout = 90)
{
	struct gmem_migrate_params p = {
		.mode = GMEM_MIGRATE_AUTO, .wait_ms = 20000, .downtime_ms = 1,
	};
	struct gmem_migrate_ops ops = { .pause = storm_pause,
					.progress = storm_progress };
	struct dest_out *out = mmap(NULL, sizeof(*out), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct gmem_region *r = region_new(STORM_PAGES, 0, GMEM_BACKING_MEMFD, 0);
	struct storm w = { .base = gmem_region_addr(r) };
	struct gmem_migrate_stats st;
	int ret, status;
	char addr[32];
	pid_t pid;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + getpid() % 12000);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		dest_child(addr, STORM_PAGES, out);
	ret = gmem_migrate_source(r, addr, &p, &ops, &w, &st);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(ret, 0, "source: %d %s (destination %d: %s)",
		     ret, strerror(-ret), out->ret, out->why);
	cr_assert_eq(out->ret, 0, "destination: %s", out->why);
	cr_expect_eq(st.rounds, 1, "rounds %u", st.rounds);
	cr_expect_eq(w.last_round, 1);
	cr_expect_eq(st.mode, GMEM_MIGRATE_HYBRID, "ran mode %u", st.mode);
	cr_expect_eq(st.switch_reason, GMEM_SWITCH_NOT_CONVERGING, "reason %u",
		     st.switch_reason);
	cr_expect_eq(st.converged, 0);
	cr_expect_eq(st.freeze_pages, 0, "post-copy sends nothing frozen");
	cr_expect_eq(w.pauses, 1);
	cr_expect_eq(out->st.mode, GMEM_MIGRATE_HYBRID);
	cr_expect_eq(out->st.switch_reason, GMEM_SWITCH_NOT_CONVERGING);
	cr_expect_eq(out->got.writes, w.writes, "device state carried");
	cr_expect_eq(out->checksum, out->got.checksum,
		     "destination region differs from the source's at pause");
	cr_expect_gt(st.stale_pages, 0);
	cr_expect_eq(out->st.pages.urgent_pages + out->st.pages.pushed_pages +
			     out->st.pages.prefetched_pages,
		     STORM_PAGES - out->st.pages.local_pages,
		     "every page not installed from pre-copy came by post-copy");
	cr_expect_eq(st.precopy_pages, 4096,
		     "one piece of the full pass, not all of it");
	cr_expect_eq(st.stale_pages, 4096, "all of it written again");
	gmem_region_destroy(r);
	munmap(out, sizeof(*out));
}

static int no_pause(void *ctx, void *buf, size_t *len)
{
	return -ENOSYS;
}

static int no_resume(void *ctx, const void *buf, size_t len)
{
	return -ENOSYS;
}

Test(migrate, rejects_bad_parameters, .timeout = 10)
{
	struct gmem_region *r = region_new(16, 0, GMEM_BACKING_MEMFD, 0);
	struct gmem_migrate_ops src_ops = { .pause = no_pause };
	struct gmem_migrate_ops dst_ops = { .resume = no_resume };
	struct gmem_migrate_ops none = {};
	struct gmem_migrate_stats st;
	struct gmem_migrate_params bad_mode = { .mode = 9 };
	struct gmem_migrate_params bad_resv = { .resv = { 1 } };
	struct gmem_migrate_params bad_fa = { .fault_around = 3 };
	struct gmem_migrate_params bad_epoch = { .hot_epoch_ms = 60001 };
	struct gmem_migrate_params ok = {};

	cr_expect_eq(gmem_migrate_source(r, "127.0.0.1:1", &bad_mode, &src_ops,
					 NULL, &st), -EINVAL);
	cr_expect_eq(gmem_migrate_source(r, "127.0.0.1:1", &bad_resv, &src_ops,
					 NULL, &st), -EINVAL);
	cr_expect_eq(gmem_migrate_dest(r, "127.0.0.1:1", &bad_fa, &dst_ops,
				       NULL, &st), -EINVAL);
	cr_expect_eq(gmem_migrate_source(r, "127.0.0.1:1", &bad_epoch,
					 &src_ops, NULL, &st), -EINVAL);
	cr_expect_eq(gmem_migrate_source(r, "127.0.0.1:1", &ok, &none, NULL,
					 &st), -EINVAL, "pause is required");
	cr_expect_eq(gmem_migrate_dest(r, "127.0.0.1:1", &ok, &none, NULL,
				       &st), -EINVAL, "resume is required");
	cr_expect_eq(gmem_migrate_source(r, NULL, &ok, &src_ops, NULL, &st),
		     -EINVAL);
	cr_expect_str_eq(gmem_migrate_mode_name(GMEM_MIGRATE_HYBRID), "hybrid");
	cr_expect_str_eq(gmem_migrate_mode_name(GMEM_MIGRATE_AUTO), "auto");
	cr_expect_null(gmem_migrate_mode_name(7));
	gmem_region_destroy(r);
}

Test(migrate, missing_source_is_a_clear_error, .timeout = 30)
{
	struct gmem_region *r = region_new(16, 0, GMEM_BACKING_MEMFD,
					   GMEM_REGION_MISSING);
	struct gmem_migrate_ops ops = { .resume = no_resume };
	struct gmem_migrate_params p = { .wait_ms = 1000 };
	struct gmem_migrate_stats st;
	int ret = gmem_migrate_dest(r, "127.0.0.1:9", &p, &ops, NULL, &st);

	cr_expect(ret == -ECONNREFUSED || ret == -ETIMEDOUT,
		  "got %d (%s)", ret, strerror(-ret));
	cr_expect_eq(st.resume_ns, 0, "the workload was never resumed");
	cr_expect_eq(gmem_region_nr_present(r), 0);
	gmem_region_destroy(r);
}

/* A source workload whose device state outgrew the switchover message. */
struct big_state {
	int paused, resumed;
	char why[192];
};

static int big_pause(void *ctx, void *buf, size_t *len)
{
	struct big_state *b = ctx;

	b->paused = 1;
	*len = 1U << 20;
	return 0;
}

static int big_resume(void *ctx, const void *buf, size_t len)
{
	struct big_state *b = ctx;

	b->resumed = !buf && !len;
	return 0;
}

static void big_failed(void *ctx, const char *why)
{
	struct big_state *b = ctx;

	snprintf(b->why, sizeof(b->why), "%s", why);
}

Test(migrate, oversized_state_fails_at_once_and_resumes_the_source,
     .timeout = 60)
{
	struct gmem_migrate_params p = { .wait_ms = 20000 };
	struct gmem_migrate_ops ops = { .pause = big_pause,
					.resume = big_resume,
					.failed = big_failed };
	struct dest_out *out = mmap(NULL, sizeof(*out), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct gmem_region *r = region_new(NR_PAGES, 0, GMEM_BACKING_MEMFD, 0);
	struct gmem_migrate_stats st;
	struct big_state b = {};
	char addr[32];
	int ret, status;
	pid_t pid;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + getpid() % 12000);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		dest_child(addr, NR_PAGES, out);
	ret = gmem_migrate_source(r, addr, &p, &ops, &b, &st);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect_eq(ret, -EMSGSIZE, "source: %d (%s)", ret, strerror(-ret));
	cr_expect(b.paused && b.resumed, "the source workload runs on");
	cr_expect(strstr(b.why, "device state of 1048576 bytes"),
		  "the cause is named: \"%s\"", b.why);
	cr_expect_eq(out->ret, -ECONNABORTED, "destination: %d (%s)",
		     out->ret, strerror(-out->ret));
	cr_expect_not(out->resumed, "the destination never resumed");
	gmem_region_destroy(r);
	munmap(out, sizeof(*out));
}

/* A source that hangs with its connections open: it stops itself at the
 * pause (before the state goes out) or once post-copy begins. */
static int stop_at_pause(void *ctx, void *buf, size_t *len)
{
	raise(SIGSTOP);
	*len = 0;
	return 0;
}

static void stop_at_postcopy(void *ctx, const struct gmem_migrate_progress *p)
{
	if (p->phase == GMEM_PHASE_POSTCOPY)
		raise(SIGSTOP);
}

static int keep_paused(void *ctx, void *buf, size_t *len)
{
	*len = 0;
	return 0;
}

static int resume_nothing(void *ctx, const void *buf, size_t len)
{
	return 0;
}

static void record_why(void *ctx, const char *why)
{
	snprintf(ctx, 192, "%s", why);
}

static void silent_source(bool before_state)
{
	struct gmem_migrate_params p = { .wait_ms = 1500 };
	struct gmem_migrate_ops src_ops = {
		.pause = before_state ? stop_at_pause : keep_paused,
		.progress = before_state ? NULL : stop_at_postcopy,
	};
	struct gmem_migrate_ops dst_ops = { .resume = resume_nothing,
					    .failed = record_why };
	struct gmem_migrate_stats st;
	struct gmem_region *r;
	char addr[32], why[192] = "";
	int ret, status;
	pid_t pid;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + getpid() % 12000);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct gmem_migrate_params sp = { .wait_ms = 20000 };

		/* Stopped, it would outlive a test that hangs. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		r = region_new(NR_PAGES, 0, GMEM_BACKING_MEMFD, 0);
		gmem_migrate_source(r, addr, &sp, &src_ops, NULL, &st);
		_exit(0);
	}
	r = region_new(NR_PAGES, 0, GMEM_BACKING_MEMFD, GMEM_REGION_MISSING);
	ret = gmem_migrate_dest(r, addr, &p, &dst_ops, why, &st);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect_eq(ret, -ETIMEDOUT, "destination: %d (%s)", ret,
		     strerror(-ret));
	cr_expect(strstr(why, "silent"), "the cause is named: \"%s\"", why);
	cr_expect_eq(st.resume_ns != 0, !before_state);
	gmem_region_destroy(r);
}

Test(migrate, source_silent_before_the_state_times_out, .timeout = 30)
{
	silent_source(true);
}

Test(migrate, source_silent_in_postcopy_times_out, .timeout = 30)
{
	silent_source(false);
}
