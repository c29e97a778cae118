// SPDX-License-Identifier: MIT
/*
 * report.c - gmem-migrate's output: the progress line on stderr and the
 * final JSON report (engine statistics plus what the workload measured:
 * its freeze and its step times before, during and after post-copy).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "migrate-cli.h"

static const char *const phase_names[] = {
	"setup", "pre-copy", "switchover", "post-copy", "complete", "paused",
};

/* A pause: how long it has lasted and how long it may go on. */
static void pause_print(struct workload *w, const struct gmem_migrate_progress *p)
{
	if (w->pause_round != p->round) {
		w->pause_round = p->round;
		w->pause_from_ns = p->elapsed_ns;
	}
	fprintf(stderr, " link lost, reconnecting (pause %u) for %.1f s", p->round,
		(p->elapsed_ns - w->pause_from_ns) / 1e9);
	if (p->eta_ns)
		fprintf(stderr, ", gives up in %.1f s", p->eta_ns / 1e9);
}

/* Setup: the peer has not come yet; the destination retries while the
 * source does not listen. */
static void setup_print(const struct workload *w,
			const struct gmem_migrate_progress *p)
{
	const struct migrate_opts *o = w->opts;
	double left = o->params.wait_ms / 1e3 - p->elapsed_ns / 1e9;

	fprintf(stderr, o->dest ? "waiting for source at %s, retrying" :
		"waiting for destination on %s", o->addr);
	if (o->params.wait_ms < 0)
		fprintf(stderr, ", no time limit");
	else
		fprintf(stderr, ", gives up in %.1f s", left > 0 ? left : 0);
}

/* On a terminal the line is rewritten in place; in a log, one line per
 * phase change and then every 5 s. */
void progress_print(void *ctx, const struct gmem_migrate_progress *p)
{
	struct workload *w = ctx; /* a side's first member is its workload */
	double pct = p->pages_total ? 100.0 * p->pages_done / p->pages_total : 0;
	bool tty = isatty(STDERR_FILENO);

	if (!tty) {
		if (w->shown && p->phase == w->shown_phase &&
		    p->round == w->shown_round &&
		    p->elapsed_ns < w->shown_ns + 5000000000ULL)
			return;
		w->shown = true;
		w->shown_phase = p->phase;
		w->shown_round = p->round;
		w->shown_ns = p->elapsed_ns;
	}
	/* On a terminal, erase the longer line this one replaces. */
	if (tty)
		fputs("\r\033[K", stderr);
	if (p->phase == GMEM_PHASE_SETUP) {
		setup_print(w, p);
		fputs(tty ? "" : "\n", stderr);
		fflush(stderr);
		return;
	}
	fprintf(stderr, "%-10s", phase_names[p->phase]);
	if (p->phase == GMEM_PHASE_PAUSED) {
		pause_print(w, p);
		fprintf(stderr, " %.1f s   %s", p->elapsed_ns / 1e9, tty ? "" : "\n");
		fflush(stderr);
		return;
	}
	if (p->round)
		fprintf(stderr, " round %u", p->round);
	if (p->pages_total)
		fprintf(stderr, " %llu/%llu pages (%.1f%%)",
			(unsigned long long)p->pages_done,
			(unsigned long long)p->pages_total, pct);
	if (p->bytes_per_s)
		fprintf(stderr, " %.1f MB/s", p->bytes_per_s / 1e6);
	if (p->eta_ns)
		fprintf(stderr, " ETA %.1f s", p->eta_ns / 1e9);
	fprintf(stderr, " %.1f s   %s", p->elapsed_ns / 1e9,
		!tty || p->phase == GMEM_PHASE_COMPLETE ? "\n" : "");
	fflush(stderr);
}

static void add_num(json_object *o, const char *k, double v)
{
	json_object_object_add(o, k, json_object_new_double(v));
}

static void add_int(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * p50/p99/max (ms) of the step durations that started in [lo, hi); with
 * @worst_excess, also those still running at @lo: the step cut by the
 * switchover starts (rebased) before the resume, and its fault waits at
 * the destination are the first stall post-copy causes.
 */
static json_object *steps_between(json_object *steps, uint64_t lo, uint64_t hi,
				  int64_t *worst_excess)
{
	size_t n = steps ? json_object_array_length(steps) : 0, k = 0;
	int64_t *d = calloc(n ? n : 1, sizeof(*d));
	json_object *o = json_object_new_object();

	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(steps, i);
		uint64_t start = json_int(s, "start_ns");
		int64_t excess = json_int(s, "dur_ns") - json_int(s, "trace_dur_ns");

		if (start >= hi || (start < lo && (!worst_excess ||
			start + json_int(s, "dur_ns") <= lo)))
			continue;
		d[k++] = json_int(s, "dur_ns");
		if (worst_excess && excess > *worst_excess)
			*worst_excess = excess;
	}
	qsort(d, k, sizeof(*d), cmp_i64);
	add_int(o, "count", k);
	if (k) {
		add_num(o, "p50_ms", d[(k - 1) / 2] / 1e6);
		add_num(o, "p99_ms", d[(k - 1) * 99 / 100] / 1e6);
		add_num(o, "max_ms", d[k - 1] / 1e6);
	}
	free(d);
	return o;
}

static void add_pages(json_object *rep, const struct gmem_remote_stats *p)
{
	add_int(rep, "urgent_pages", p->urgent_pages);
	add_int(rep, "pushed_pages", p->pushed_pages);
	add_int(rep, "prefetched_pages", p->prefetched_pages);
	add_int(rep, "hot_pages", p->hot_pages);
	add_int(rep, "precopy_pages_received", p->precopy_pages);
	add_int(rep, "local_pages", p->local_pages);
	add_int(rep, "dropped_pages", p->dropped_pages);
	add_int(rep, "requests", p->requests);
	add_int(rep, "bytes", p->bytes);
	add_int(rep, "mismatches", p->mismatches);
	add_int(rep, "recoveries", p->recoveries);
	add_num(rep, "paused_ms", p->paused_ns / 1e6);
}

/*
 * The stall from the workload's running maxima since the resume: the
 * longest its progress fell behind the trace's pace (or the freeze, if
 * longer), its longest pause between two writes, the first step's
 * duration and the steps of the post-copy phase (those that started before
 * every page was here, and the one after), times from the resume in ms.
 * Return: false for a workload without them (older): the caller estimates.
 */
static bool add_stall(json_object *rep, const struct gmem_migrate_stats *st,
		      json_object *settled, double freeze_ms)
{
	json_object *since, *series = NULL, *a;
	double lag_ms;
	size_t i, n;

	if (!settled || !json_object_object_get_ex(settled, "since_resume", &since))
		return false;
	lag_ms = json_int(since, "max_lag_ns") / 1e6;
	add_num(rep, "stall_ms", lag_ms > freeze_ms ? lag_ms : freeze_ms);
	add_num(rep, "max_gap_ms", json_int(since, "max_gap_ns") / 1e6);
	add_num(rep, "first_step_ms", json_int(since, "first_step_ns") / 1e6);
	add_num(rep, "max_step_ms", json_int(since, "max_step_ns") / 1e6);
	json_object_object_get_ex(since, "series", &series);
	n = series ? json_object_array_length(series) : 0;
	a = json_object_new_array();
	for (i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(series, i), *e;
		uint64_t start = json_int(s, "start_ns");

		e = json_object_new_object();
		add_num(e, "start_ms", ((int64_t)start - (int64_t)st->resume_ns) / 1e6);
		add_num(e, "dur_ms", json_int(s, "dur_ns") / 1e6);
		add_num(e, "trace_dur_ms", json_int(s, "trace_dur_ns") / 1e6);
		json_object_array_add(a, e);
		if (start >= st->complete_ns)
			break;
	}
	json_object_object_add(rep, "postcopy_steps", a);
	return true;
}

/* What the destination's workload saw: its freeze, stall and step times. */
static void add_workload_view(json_object *rep,
			      const struct gmem_migrate_stats *st,
			      const struct workload *w)
{
	json_object *steps = NULL, *split = json_object_new_object(), *v;
	uint64_t first = json_int(w->after, "first_write_ns");
	int64_t worst = 0;
	double freeze_ms = 0;

	if (first && w->src_last_write_ns) {
		freeze_ms = (first - w->src_last_write_ns) / 1e6;
		add_num(rep, "freeze_ms", freeze_ms);
	}
	/* The freeze's first part: until the workload took the resume (the
	 * rest waits for the first pages its next step reads). */
	if (w->resumed_ns > w->src_last_write_ns && w->src_last_write_ns)
		add_num(rep, "resumed_ms",
			(w->resumed_ns - w->src_last_write_ns) / 1e6);
	if (w->src_steps) {
		v = json_object_new_object();
		add_int(v, "count", json_int(w->src_steps, "count"));
		add_num(v, "p50_ms", json_int(w->src_steps, "p50_ns") / 1e6);
		add_num(v, "p99_ms", json_int(w->src_steps, "p99_ns") / 1e6);
		json_object_object_add(split, "before", v);
	}
	json_object_object_get_ex(w->after, "recent_steps", &steps);
	json_object_object_add(split, "during",
			       steps_between(steps, st->resume_ns,
					     st->complete_ns, &worst));
	json_object_object_add(split, "after",
			       steps_between(steps, st->complete_ns, UINT64_MAX,
					     NULL));
	json_object_object_add(rep, "step_time", split);
	if (!add_stall(rep, st, w->settled, freeze_ms))
		add_num(rep, "stall_ms", worst / 1e6 > freeze_ms ? worst / 1e6
								 : freeze_ms);
	if (w->verified) {
		v = json_object_new_object();
		add_int(v, "pages_checked", json_int(w->verified, "pages_checked"));
		add_int(v, "mismatches", json_int(w->verified, "mismatches"));
		json_object_object_add(rep, "verify", v);
	}
}

static void add_info(json_object *rep, json_object *info)
{
	static const char *const keys[] = { "trace", "scale", "nr_pages",
					    "page_size" };
	json_object *v;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (info && json_object_object_get_ex(info, keys[i], &v))
			json_object_object_add(rep, keys[i], json_object_get(v));
	add_int(rep, "image_bytes",
		json_int(info, "nr_pages") * json_int(info, "page_size"));
}

#define BLOCKED_TOP 5

/*
 * Dest: how long the workload's threads waited on faults after the resume
 * (gmem_region_blocktime()): in all, the thread that waited longest, and
 * the BLOCKED_TOP longest with their fault counts.
 */
void report_add_blocked(json_object *rep, const struct gmem_migrate_stats *st,
			const struct gmem_region *r)
{
	struct gmem_thread_blocktime t[BLOCKED_TOP];
	int64_t n = r ? gmem_region_blocktime(r, t, BLOCKED_TOP) : 0;
	json_object *top = json_object_new_array();

	add_num(rep, "blocked_ms", st->blocked_ns / 1e6);
	add_int(rep, "blocked_threads", st->blocked_threads);
	add_num(rep, "blocked_max_ms", st->blocked_max_ns / 1e6);
	add_int(rep, "blocked_max_tid", st->blocked_max_tid);
	for (int64_t i = 0; i < n && i < BLOCKED_TOP; i++) {
		json_object *v = json_object_new_object();

		add_int(v, "tid", t[i].tid);
		add_int(v, "faults", t[i].faults);
		add_num(v, "ms", t[i].ns / 1e6);
		add_num(v, "max_ms", t[i].max_ns / 1e6);
		json_object_array_add(top, v);
	}
	json_object_object_add(rep, "blocked_top", top);
}

/*
 * Auto: the mode it ran in the end and why it switched, after which
 * round. Its pre-copy figures are those of precopy.
 */
static void add_auto(json_object *rep, const struct gmem_migrate_stats *st)
{
	static const char *const reasons[] = {
		[GMEM_SWITCH_CONVERGED] = "converged",
		[GMEM_SWITCH_NOT_CONVERGING] = "not converging",
		[GMEM_SWITCH_ROUND_LIMIT] = "round limit",
	};
	const char *ran = gmem_migrate_mode_name(st->mode);
	json_object *sw;

	if (!st->switch_reason ||
	    st->switch_reason >= sizeof(reasons) / sizeof(reasons[0]))
		return;
	json_object_object_add(rep, "ran", json_object_new_string(
		ran ? ran : "?"));
	sw = json_object_new_object();
	add_int(sw, "round", st->rounds);
	json_object_object_add(sw, "reason", json_object_new_string(
		reasons[st->switch_reason]));
	json_object_object_add(rep, "switch", sw);
}

json_object *report_build(const struct migrate_opts *o,
			  const struct gmem_migrate_stats *st,
			  const struct workload *w, int ret)
{
	json_object *rep = json_object_new_object();
	bool is_auto = st->mode == GMEM_MIGRATE_AUTO || st->switch_reason;
	const char *mode = gmem_migrate_mode_name(is_auto ? GMEM_MIGRATE_AUTO :
						  st->mode);

	json_object_object_add(rep, "role", json_object_new_string(
		o->dest ? "dest" : "source"));
	json_object_object_add(rep, "ok", json_object_new_boolean(ret == 0));
	json_object_object_add(rep, "mode", json_object_new_string(mode ? mode : "?"));
	json_object_object_add(rep, "transport", json_object_new_string(
		o->params.flags & GMEM_MIGRATE_RDMA ? "rdma" : "tcp"));
	add_info(rep, w->info);
	if (st->pause_ns && st->resume_ns)
		add_num(rep, "switchover_ms", (st->resume_ns - st->pause_ns) / 1e6);
	if (st->complete_ns && st->start_ns)
		add_num(rep, "total_s", (st->complete_ns - st->start_ns) / 1e9);
	if (st->complete_ns && st->resume_ns)
		add_num(rep, "postcopy_s", (st->complete_ns - st->resume_ns) / 1e9);
	add_int(rep, "rounds", st->rounds);
	/* Whether the switchover came as the mode plans it: only precopy
	 * waits for the rest to fit --downtime-ms, and may give up; auto
	 * switches to post-copy instead. */
	json_object_object_add(rep, "converged", json_object_new_boolean(
		st->mode != GMEM_MIGRATE_PRECOPY || st->converged));
	if (st->mode == GMEM_MIGRATE_PRECOPY || is_auto)
		add_int(rep, "expected_downtime_ms", st->expected_downtime_ms);
	if (is_auto)
		add_auto(rep, st);
	add_int(rep, "precopy_pages", st->precopy_pages);
	add_int(rep, "freeze_pages", st->freeze_pages);
	add_int(rep, "stale_pages", st->stale_pages);
	add_num(rep, "link_MBps", st->link_bytes_per_s / 1e6);
	add_pages(rep, &st->pages);
	if (o->dest) {
		add_num(rep, "fault_p50_us", st->fault_p50_ns / 1e3);
		add_num(rep, "fault_p99_us", st->fault_p99_ns / 1e3);
		add_workload_view(rep, st, w);
	}
	return rep;
}

void report_emit(const struct migrate_opts *o, json_object *rep)
{
	const char *text = json_object_to_json_string_ext(rep,
							  JSON_C_TO_STRING_PLAIN);
	FILE *f;

	puts(text);
	fflush(stdout);
	if (o->json_path) {
		f = fopen(o->json_path, "w");
		if (f) {
			fprintf(f, "%s\n", text);
			fclose(f);
		} else {
			perror(o->json_path);
		}
	}
	json_object_put(rep);
}
