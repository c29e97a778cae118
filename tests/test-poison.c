// SPDX-License-Identifier: MIT
/*
 * test-poison.c - a post-copy whose source is lost for good leaves no thread
 * waiting: the destination poisons its missing pages (UFFDIO_POISON), so a
 * thread waiting on one, and one touching one later, get SIGBUS; the pages
 * that arrived keep their bytes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define NR_PAGES 4096ULL
#define PS GMEM_PAGE_4K
#define SEED 0x9015011ULL

/* The page server, in a process of its own so that the test can stop it
 * (SIGSTOP: requests go unanswered) and then kill it (the links close). */
static pid_t source_fork(uint16_t *port)
{
	int fds[2];
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct gmem_region *r = region_new(NR_PAGES, PS,
						   GMEM_BACKING_MEMFD, 0);
		struct gmem_server *srv;
		uint16_t p = 0;

		pattern_fill(gmem_region_addr(r), SEED, 0, NR_PAGES, PS);
		if (gmem_server_listen(r, "127.0.0.1:0", &srv) == 0)
			p = gmem_server_port(srv);
		if (write(fds[1], &p, sizeof(p)) != sizeof(p) || !p)
			_exit(1);
		if (gmem_server_accept(srv, 10000) == 0)
			gmem_server_serve(srv, 30000);
		_exit(0);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], port, sizeof(*port)), sizeof(*port));
	close(fds[0]);
	cr_assert_neq(*port, 0, "the page server did not start");
	return pid;
}

enum outcome { WAITING, SIGBUSED, READ };

struct toucher {
	const volatile uint8_t *page;
	volatile int outcome;
	volatile int started;
};

static __thread sigjmp_buf *bus_jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	if (bus_jmp)
		siglongjmp(*bus_jmp, 1);
	_exit(99);
}

static void *touch(void *arg)
{
	struct toucher *t = arg;
	sigjmp_buf jb;

	if (sigsetjmp(jb, 1)) {
		t->outcome = SIGBUSED;
		return NULL;
	}
	bus_jmp = &jb;
	t->started = 1;
	(void)t->page[0];
	t->outcome = READ;
	return NULL;
}

/* Starts a toucher of @page; joined within @ms, else left waiting. */
static int touch_page(const uint8_t *page, int ms, pthread_t *th,
		      struct toucher *t)
{
	struct timespec ts;

	*t = (struct toucher){ .page = page, .outcome = WAITING };
	cr_assert_eq(pthread_create(th, NULL, touch, t), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(*th, NULL, &ts) != 0)
		return WAITING;
	return t->outcome;
}

static void require_poison(void)
{
	require_uffd();
	require_features(GMEM_FEAT_POISON,
			 "UFFDIO_POISON needs Linux 6.6 or later");
}

Test(poison, lost_source_turns_waits_into_sigbus, .timeout = 60,
     .init = require_poison)
{
	struct gmem_remote_params rp = { .flags = GMEM_REMOTE_ON_DEMAND };
	struct gmem_fault_params fp = { .nr_threads = 2, .fault_around = 16 };
	struct gmem_region_params p = { .nr_pages = NR_PAGES, .page_size = PS,
					.backing = GMEM_BACKING_MEMFD,
					.flags = GMEM_REGION_MISSING };
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct gmem_fault_stats fs;
	struct gmem_region *r;
	struct gmem_source *src;
	struct gmem_remote *rm;
	struct toucher t1, t2, t3;
	pthread_t th1, th2, th3;
	char addr[32];
	uint16_t port;
	pid_t server = source_fork(&port);
	uint8_t *base;
	int ret;

	cr_assert_eq(sigaction(SIGBUS, &sa, NULL), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	cr_assert_eq(gmem_remote_connect(addr, &rp, &rm), 0);
	cr_assert_eq(gmem_region_create(&p, &r), 0);
	cr_assert_geq(gmem_remote_precopy(rm, r, 10000), 0);
	cr_assert_eq(gmem_remote_source(rm, &src), 0);
	cr_assert_eq(gmem_region_attach(r, src, &fp), 0);
	base = gmem_region_addr(r);

	/* Served while the source runs. */
	cr_assert_eq(touch_page(base + 3 * PS, 10000, &th1, &t1), READ);
	cr_assert(pattern_check(base + 3 * PS, SEED, 3, PS));

	/* Unanswered: the thread waits, as post-copy has it wait. */
	cr_assert_eq(kill(server, SIGSTOP), 0);
	cr_assert_eq(touch_page(base + 1000 * PS, 300, &th2, &t2), WAITING);
	cr_assert(t2.started);

	/* Lost for good (no recovery): the waiter gets SIGBUS. */
	cr_assert_eq(kill(server, SIGKILL), 0);
	waitpid(server, NULL, 0);
	ret = gmem_remote_wait(rm, 10000);
	cr_assert(ret == -ECONNRESET || ret == -EPIPE, "wait: %d %s", ret,
		  gmem_remote_error(rm));
	for (int i = 0; i < 100 && t2.outcome == WAITING; i++)
		usleep(50000);
	cr_assert_eq(t2.outcome, SIGBUSED,
		     "a thread still waits on a page that cannot come");
	pthread_join(th2, NULL);

	/* A page touched after the loss: SIGBUS at once, no wait. */
	cr_assert_eq(touch_page(base + 2000 * PS, 5000, &th3, &t3), SIGBUSED);

	/* What came keeps its bytes; the rest was poisoned, and counted. */
	cr_assert(gmem_page_present(r, 3));
	cr_assert(pattern_check(base + 3 * PS, SEED, 3, PS));
	cr_assert_eq(gmem_region_fault_stats(r, &fs), 0);
	cr_assert_eq(fs.poisoned, NR_PAGES - gmem_region_nr_present(r),
		     "poisoned %lu of %lu missing", fs.poisoned,
		     NR_PAGES - gmem_region_nr_present(r));

	gmem_region_detach(r);
	gmem_source_destroy(src);
	gmem_remote_destroy(rm);
	gmem_region_destroy(r);
}
