// SPDX-License-Identifier: MIT
/*
 * replay.c - gmem-replay: a workload that replays a real GPU dirty-page trace
 * into a gmem region at the trace's pace, under the control of a migrator
 * (the "hypervisor" side of a migration). Options, region setup, status and
 * the exit report; the writer and the control socket are in replay-*.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <gmem.h>

#include "opt.h"
#include "replay.h"
#include "trace-find.h"

#define STATUS_EVERY_MS 5000

enum {
	EXIT_RUNTIME = 1, /* region, socket or thread failure */
	EXIT_USAGE = 2,   /* bad options or a bad trace file */
};

_Static_assert(EXIT_USAGE == OPT_EXIT_USAGE, "one usage status");

struct replay_opts {
	const char *trace;
	const char *control;
	uint32_t scale;
	uint64_t steps;
	uint32_t page_size;  /* the region's; trace pages stay 4 KiB */
	bool thp;            /* 4 KiB pages in transparent huge pages */
	bool incoming;
	bool quiet;
};

static void usage(FILE *f)
{
	const char *dirs[TRACE_DIRS_MAX], *env = getenv("GMEM_TRACES");
	int i, n;

	fprintf(f,
"usage: gmem-replay [OPTIONS] --trace FILE\n"
"Replay a GPU dirty-page trace into a gmem region at its real pace.\n"
"\n"
"  -t, --trace FILE      trace file (a path: holds a '/' or ends in .gz), or\n"
"                        a trace name such as llama-infer (see below)\n"
"  -s, --scale 1/N       keep trace page p iff p %% N == 0, as page p/N: an\n"
"                        image N times smaller, same dirty fraction and step\n"
"                        time (default 1/1)\n"
"  -n, --steps K         stop writing after K steps (counted across a\n"
"                        migration; the image is not a step); default: loop\n"
"  -C, --control PATH    serve the control socket (JSON lines, bench/REPLAY.md)\n"
"                        at PATH; with it, gmem-replay runs until \"quit\"\n"
"  -i, --incoming        migration destination: all pages missing, wait for\n"
"                        \"resume\" with the source's state (needs --control)\n"
"  -p, --page-size SIZE  the region's pages: 4k (default), thp (4 KiB pages\n"
"                        in transparent huge pages: shmem_enabled must allow\n"
"                        MADV_HUGEPAGE) or 2m (hugetlbfs: reserved huge\n"
"                        pages, `sysctl vm.nr_hugepages=N`); both sides of a\n"
"                        migration must agree\n"
"  -q, --quiet           no status line on stderr every 5 s\n"
"  -h, --help            this text\n"
"\n"
"At exit a JSON object goes to stdout (steps done, step times, freeze).\n"
"Exit status: 0 done; 1 runtime failure (region, socket, thread);\n"
"2 bad options (one line names the option) or a bad trace file.\n"
"\n"
"A trace name NAME is the first NAME.trace.gz found in:\n");
	n = trace_dirs(dirs);
	for (i = 0; i < n; i++)
		fprintf(f, "  %s\n", dirs[i]);
	if (!env || !*env)
		fprintf(f, "  $GMEM_TRACES (not set)\n");
}

static void parse_opts(int argc, char **argv, struct replay_opts *o)
{
	static const char shorts[] = ":t:s:n:C:p:iqh";
	static const struct option lopts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "scale", required_argument, NULL, 's' },
		{ "steps", required_argument, NULL, 'n' },
		{ "control", required_argument, NULL, 'C' },
		{ "incoming", no_argument, NULL, 'i' },
		{ "page-size", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct replay_opts){ .scale = 1, .page_size = GMEM_PAGE_4K };
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
		switch (c) {
		case 't':
			o->trace = optarg;
			break;
		case 's':
			if (trace_parse_scale(optarg, &o->scale))
				opt_bad("--scale: expected 1/N, N from 1 to %u, got '%s'",
					TRACE_MAX_SCALE, optarg);
			break;
		case 'n':
			o->steps = opt_int("--steps", optarg, 1, LLONG_MAX);
			break;
		case 'C':
			o->control = optarg;
			break;
		case 'p':
			if (strcasecmp(optarg, "4k") && strcasecmp(optarg, "2m") &&
			    strcasecmp(optarg, "thp"))
				opt_bad("--page-size: expected 4k, thp or 2m, got '%s'",
					optarg);
			o->page_size = strcasecmp(optarg, "2m") ? GMEM_PAGE_4K :
								 GMEM_PAGE_2M;
			o->thp = !strcasecmp(optarg, "thp");
			break;
		case 'i':
			o->incoming = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			opt_getopt_fail(c, argv, lopts);
		}
	}
	if (optind < argc)
		opt_fail("unexpected argument '%s'", argv[optind]);
	if (!o->trace)
		opt_fail("--trace FILE is required");
	if (o->incoming && !o->control)
		opt_fail("--incoming needs --control PATH");
}

/* Loads --trace: a path, or a name found by trace_find(). */
static int load_trace(const struct replay_opts *o, struct trace **t)
{
	char path[4096], err[8192];
	int ret;

	ret = trace_find(o->trace, path, sizeof(path), err, sizeof(err));
	if (ret == -ENAMETOOLONG)
		snprintf(err, sizeof(err), "--trace %s: path too long", o->trace);
	if (!ret)
		ret = trace_load(path, o->scale, t, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "gmem-replay: %s\n", err);
		return ret;
	}
	if ((*t)->page_size != GMEM_PAGE_4K) {
		fprintf(stderr, "gmem-replay: %s: page_size %u: only 4096-byte trace pages are replayed\n",
			path, (*t)->page_size);
		trace_free(*t);
		return -EINVAL;
	}
	return 0;
}

static int create_region(const struct replay_opts *o, const struct trace *t,
			 struct gmem_region **r)
{
	uint64_t per = o->page_size / GMEM_PAGE_4K;
	struct gmem_region_params p = {
		.nr_pages = (t->nr_pages + per - 1) / per,
		.page_size = o->page_size,
		.backing = GMEM_BACKING_MEMFD,
		.flags = (o->incoming ? GMEM_REGION_MISSING : 0) |
			 (o->thp ? GMEM_REGION_THP : 0),
		.name = "gmem-replay",
		.dirty_backend = GMEM_DIRTY_AUTO,
	};
	int ret = gmem_region_create(&p, r);

	if (ret == -EOPNOTSUPP && o->thp)
		fprintf(stderr, "gmem-replay: --page-size thp: shmem takes no transparent huge pages here: `echo advise > /sys/kernel/mm/transparent_hugepage/shmem_enabled` (root)\n");
	else if (ret == -ENOSPC)
		fprintf(stderr, "gmem-replay: %" PRIu64 " huge pages of 2 MiB needed, too few free: reserve them with `sysctl vm.nr_hugepages=N` (root), N >= %" PRIu64 " + those in use\n",
			p.nr_pages, p.nr_pages);
	else if (ret)
		fprintf(stderr, "gmem-replay: gmem_region_create(%" PRIu64 " pages of %u bytes): %s\n",
			p.nr_pages, p.page_size, strerror(-ret));
	return ret;
}

static void print_status(struct replay *w)
{
	uint64_t p50, p99;
	struct replay_devstate ds;
	enum replay_state s;

	pthread_mutex_lock(&w->lock);
	ds = w->shown;
	s = w->state;
	p50 = samples_pct(&w->durs, 50);
	p99 = samples_pct(&w->durs, 99);
	pthread_mutex_unlock(&w->lock);
	fprintf(stderr, "gmem-replay: %s scale 1/%u %s step %u/%u steps_done %" PRIu64 " step time p50 %.1f ms p99 %.1f ms\n",
		w->t->name, w->t->scale, replay_state_name(s), ds.step,
		w->t->nr_steps - 1, ds.steps_done, p50 / 1e6, p99 / 1e6);
}

/* Serves the control socket and signals until quit, a signal, or --steps
 * without a control socket. */
static int run(struct replay *w, struct replay_control *ctl, int sigfd,
	       bool quiet)
{
	uint64_t next_status = bench_now_ns() + STATUS_EVERY_MS * 1000000ULL;
	bool sig = false, done;
	int ret = 0;

	while (!ret && !sig) {
		uint64_t now = bench_now_ns();
		int wait_ms = now < next_status ?
			(int)((next_status - now) / 1000000) + 1 : 0;

		ret = replay_control_poll(ctl, sigfd, ctl ? wait_ms : 100, &sig);
		pthread_mutex_lock(&w->lock);
		done = w->state == REPLAY_DONE;
		pthread_mutex_unlock(&w->lock);
		if (done && !ctl)
			break;
		if (!quiet && bench_now_ns() >= next_status) {
			print_status(w);
			next_status += STATUS_EVERY_MS * 1000000ULL;
		}
	}
	return ret < 0 ? ret : 0;
}

static int block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* A migrator that hangs up mid-reply is an error, not a death. */
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

static void report(struct replay *w, const struct replay_opts *o)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "mode", json_object_new_string(
				       o->incoming ? "incoming" : "source"));
	replay_report(w, j);
	printf("%s\n", json_object_to_json_string_ext(j,
			JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}

int main(int argc, char **argv)
{
	struct replay_control *ctl = NULL;
	struct gmem_region *region = NULL;
	struct trace *t = NULL;
	struct replay_opts o;
	struct replay w;
	int ret, stuck, sigfd = -1;

	parse_opts(argc, argv, &o);
	if (load_trace(&o, &t))
		return EXIT_USAGE;
	ret = create_region(&o, t, &region);
	if (ret)
		goto out_trace;
	replay_init(&w, t, region, o.steps, o.incoming);
	if (!o.incoming)
		replay_write_image(&w);
	if (o.control) {
		ret = replay_control_open(&w, o.control, &ctl);
		if (ret) {
			fprintf(stderr, "gmem-replay: control socket %s: %s\n",
				o.control, strerror(-ret));
			goto out_replay;
		}
	}
	/* Before the writer starts, so that it inherits the blocked mask. */
	sigfd = block_signals();
	ret = sigfd < 0 ? -errno : replay_start(&w);
	if (!ret)
		ret = run(&w, ctl, sigfd, o.quiet);
	if (ret)
		fprintf(stderr, "gmem-replay: %s\n", strerror(-ret));
	stuck = replay_stop(&w);
	report(&w, &o);
	replay_control_close(ctl);
	if (stuck) {
		/* Unmapping under a writer blocked in a fault would crash it:
		 * leave the teardown to exit. */
		fprintf(stderr, "gmem-replay: the writer is blocked in a page fault nobody serves; exiting\n");
		return EXIT_RUNTIME;
	}
out_replay:
	replay_fini(&w);
	gmem_region_destroy(region);
out_trace:
	if (sigfd >= 0)
		close(sigfd);
	trace_free(t);
	return ret ? EXIT_RUNTIME : 0;
}
