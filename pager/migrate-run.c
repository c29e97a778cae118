// SPDX-License-Identifier: MIT
/*
 * migrate-run.c - one side of a migration: takes the workload's region over
 * its control socket, runs the engine with pause/resume callbacks that speak
 * to the workload, and ends with the report and an exit code.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "migrate-cli.h"
#include "migrate-qmp.h"

struct side {
	struct workload w;
	struct qemu_vm vm;  /* --qmp: the workload is a QEMU */
	const char *role;
	char error[256];  /* the workload's complaint, if any */
	bool wl_failed;   /* a callback failed because of the workload */
};

static int wl_fail(struct side *s, const char *what, const char *why)
{
	snprintf(s->error, sizeof(s->error), "workload %s: %.200s", what,
		 why);
	s->wl_failed = true;
	return -EIO;
}

/* One request; on failure records why and returns -EIO. */
static int wl_request(struct side *s, const char *cmd, json_object *args,
		      json_object **reply)
{
	const char *err = NULL;
	int ret = control_request(s->w.ctl, cmd, args, reply, &err);

	if (ret < 0)
		return wl_fail(s, cmd, strerror(-ret));
	if (err) {
		ret = wl_fail(s, cmd, err);
		json_object_put(*reply);
		*reply = NULL;
	}
	return ret;
}

/* The report's image geometry. */
static json_object *region_info(const struct gmem_region *r)
{
	json_object *info = json_object_new_object();

	json_object_object_add(info, "nr_pages", json_object_new_int64(
		gmem_region_nr_pages(r)));
	json_object_object_add(info, "page_size", json_object_new_int64(
		gmem_region_page_size(r)));
	return info;
}

/* Connects, checks the workload's state and imports its region. */
static int wl_open(struct side *s, const struct migrate_opts *o,
		   struct gmem_region **r)
{
	json_object *rep = NULL, *args, *st;
	const char *state;
	int ret;

	if (o->qmp) {
		ret = qemu_vm_open(&s->vm, o, r);
		if (ret == 0)
			s->w.info = region_info(*r);
		return ret < 0 ? wl_fail(s, o->qmp, s->vm.error) : 0;
	}
	s->w.ctl = control_connect(o->control);
	if (s->w.ctl < 0)
		return wl_fail(s, o->control, strerror(-s->w.ctl));
	ret = wl_request(s, "query", NULL, &s->w.info);
	if (ret < 0)
		return ret;
	state = json_object_object_get_ex(s->w.info, "state", &st) ?
			json_object_get_string(st) : "?";
	if (o->dest != !strcmp(state, "incoming"))
		return wl_fail(s, "state", o->dest ?
			       "not waiting for an incoming migration "
			       "(start it with --incoming)" : state);
	/* A source's workload learns the mode: one that writes its region
	 * behind the CPU's back (DMA) must not, where a dirty log watches. */
	args = o->dest ? NULL : json_object_new_object();
	if (args)
		json_object_object_add(args, "mode", json_object_new_string(
			gmem_migrate_mode_name(o->params.mode)));
	ret = wl_request(s, "export", args, &rep);
	json_object_put(args);
	json_object_put(rep);
	if (ret < 0)
		return ret;
	ret = gmem_region_import(s->w.ctl, r);
	return ret < 0 ? wl_fail(s, "export", strerror(-ret)) : 0;
}

/* Source: pause the workload; its device state travels as JSON. */
static int wl_pause(void *ctx, void *state, size_t *len)
{
	struct side *s = ctx;
	json_object *blob, *v;
	const char *text;
	size_t n;
	int ret;

	if (s->w.opts->qmp) {
		ret = qemu_vm_pause(&s->vm, state, len);
		return ret < 0 ? wl_fail(s, s->w.opts->qmp, s->vm.error) : 0;
	}
	ret = wl_request(s, "pause", NULL, &s->w.paused);
	if (ret < 0)
		return ret;
	blob = json_object_new_object();
	if (json_object_object_get_ex(s->w.paused, "state", &v))
		json_object_object_add(blob, "state", json_object_get(v));
	json_object_object_add(blob, "last_write_ns", json_object_new_int64(
		json_int(s->w.paused, "last_write_ns")));
	if (json_object_object_get_ex(s->w.info, "step_time", &v))
		json_object_object_add(blob, "step_time", json_object_get(v));
	text = json_object_to_json_string_ext(blob, JSON_C_TO_STRING_PLAIN);
	n = strlen(text);
	ret = n > *len ? -ENOSPC : 0;
	if (!ret) {
		memcpy(state, text, n);
		*len = n;
	}
	json_object_put(blob);
	return ret;
}

/* Destination: resume the workload with the source's device state. */
static int wl_resume(void *ctx, const void *state, size_t len)
{
	struct side *s = ctx;
	struct json_tokener *tok;
	json_object *blob, *args, *v, *rep = NULL;
	int ret;

	if (s->w.opts->qmp) {
		ret = qemu_vm_resume(&s->vm, state, len);
		return ret < 0 ? wl_fail(s, s->w.opts->qmp, s->vm.error) : 0;
	}
	tok = json_tokener_new();
	blob = json_tokener_parse_ex(tok, state, len);
	json_tokener_free(tok);
	if (!blob || !json_object_object_get_ex(blob, "state", &v)) {
		json_object_put(blob);
		return wl_fail(s, "resume", "source sent no device state");
	}
	s->w.src_last_write_ns = json_int(blob, "last_write_ns");
	if (json_object_object_get_ex(blob, "step_time", &s->w.src_steps))
		json_object_get(s->w.src_steps);
	args = json_object_new_object();
	json_object_object_add(args, "state", json_object_get(v));
	ret = wl_request(s, "resume", args, &rep);
	s->w.resumed_ns = json_int(rep, "resume_ns");
	json_object_put(args);
	json_object_put(rep);
	json_object_put(blob);
	return ret;
}

/* The engine's reason for a failure of the peer or the link. */
static void migration_failed(void *ctx, const char *why)
{
	struct side *s = ctx;

	if (!s->error[0])
		snprintf(s->error, sizeof(s->error), "%s", why);
}

static int exit_code(const struct side *s, const struct gmem_migrate_stats *st,
		     int ret)
{
	if (!ret)
		return EXIT_OK;
	if (s->wl_failed)
		return EXIT_WORKLOAD;
	/* Post-copy paused and the recovery's time ran out. */
	if (ret == -ETIMEDOUT && st->pages.paused_ns)
		return EXIT_UNRECOVERED;
	switch (-ret) {
	case ECANCELED:
		return EXIT_UNCONVERGED;
	case EIO:
		return EXIT_DIGEST;
	case EACCES:
		return EXIT_AUTH;
	case ECONNREFUSED: case ECONNRESET: case ETIMEDOUT: case EPROTO:
	case EBADMSG: /* a sealed frame changed on the path */
	case EHOSTUNREACH: case ENETUNREACH: case EPIPE: case EADDRINUSE:
	case ENOTCONN:
		return EXIT_NETWORK;
	default:
		return EXIT_INTERNAL;
	}
}

static int finish(const struct migrate_opts *o, struct side *s,
		  struct gmem_region *r, const struct gmem_migrate_stats *st,
		  int ret)
{
	json_object *rep;
	int code;

	/* ESRCH from userfaultfd: the workload's process exited under us,
	 * and its memory with it. */
	if (ret == -ESRCH && !s->wl_failed)
		wl_fail(s, "process", "exited during the migration");
	code = exit_code(s, st, ret);
	if (code == EXIT_AUTH) {
		char why[sizeof(s->error)];

		snprintf(why, sizeof(why), "%s", s->error[0] ? s->error :
			 "the peer holds another key, or none");
		snprintf(s->error, sizeof(s->error),
			 "authentication failed: %.200s (--key-file, GMEM_KEY)",
			 why);
	}
	if (ret < 0)
		fprintf(stderr, "gmem-migrate: %s: %s\n", s->role,
			s->error[0] ? s->error : strerror(-ret));
	rep = report_build(o, st, &s->w, ret);
	if (o->dest)
		report_add_blocked(rep, st, r);
	if (o->qmp)
		json_object_object_add(rep, "qemu",
				       json_object_get(s->vm.facts));
	if (ret < 0)
		json_object_object_add(rep, "error", json_object_new_string(
			s->error[0] ? s->error : strerror(-ret)));
	report_emit(o, rep);
	gmem_region_destroy(r);
	json_object_put(s->w.info);
	json_object_put(s->w.paused);
	json_object_put(s->w.after);
	json_object_put(s->w.settled);
	json_object_put(s->w.verified);
	json_object_put(s->w.src_steps);
	if (o->qmp)
		qemu_vm_close(&s->vm);
	if (s->w.ctl >= 0)
		close(s->w.ctl);
	return code;
}

int migrate_source(const struct migrate_opts *o)
{
	struct side s = { .role = "source",
			  .w = { .ctl = -1, .quiet = o->quiet, .opts = o } };
	struct gmem_migrate_ops ops = { .pause = wl_pause,
					.progress = o->quiet ? NULL : progress_print,
					.failed = migration_failed };
	/* The mode asked, in the report of a source that fails before the
	 * engine starts (the engine sets the one that ran). */
	struct gmem_migrate_stats st = { .mode = o->params.mode };
	struct gmem_region *r = NULL;
	json_object *rep = NULL;
	int ret = wl_open(&s, o, &r);

	if (ret == 0)
		ret = gmem_migrate_source(r, o->addr, &o->params, &ops, &s, &st);
	/* The destination has every page, verified: the source's copy may go. */
	if (o->qmp)
		qemu_vm_finish(&s.vm, ret);
	else if (ret == 0 && !o->keep_source &&
		 wl_request(&s, "quit", NULL, &rep) == 0)
		json_object_put(rep);
	return finish(o, &s, r, &st, ret);
}

/* A step that started after @from_ns at the trace's pace (within half its
 * duration and a 2 ms slice, for this machine's scheduling). */
static bool normal_step_after(json_object *rep, uint64_t from_ns)
{
	json_object *steps = NULL;
	size_t i, n;

	json_object_object_get_ex(rep, "recent_steps", &steps);
	n = steps ? json_object_array_length(steps) : 0;
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(steps, i);
		int64_t pace = json_int(e, "trace_dur_ns");

		if ((uint64_t)json_int(e, "start_ns") >= from_ns &&
		    json_int(e, "dur_ns") <= pace + pace / 2 + 2000000)
			return true;
	}
	return false;
}

/*
 * Dest: the stall lasts until every page is here and a step at normal pace
 * has followed; the workload's running maxima are read then (a workload
 * without "since_resume" is read once). Gives up waiting after 10 s.
 */
static int dest_settle(struct side *s, const struct gmem_migrate_stats *st)
{
	const struct timespec tick = { .tv_nsec = 20000000L };
	json_object *rep;
	int ret, i;

	for (i = 0; i < 500; i++) {
		ret = wl_request(s, "query", NULL, &rep);
		if (ret < 0)
			return ret;
		json_object_put(s->w.settled);
		s->w.settled = rep;
		if (!json_object_object_get_ex(rep, "since_resume", NULL) ||
		    normal_step_after(rep, st->complete_ns))
			return 0;
		nanosleep(&tick, NULL);
	}
	return 0;
}

static int dest_observe(struct side *s, const struct migrate_opts *o)
{
	struct timespec ts = { .tv_sec = o->observe_ms / 1000,
			       .tv_nsec = o->observe_ms % 1000 * 1000000L };
	int ret = 0;

	nanosleep(&ts, NULL);
	if (o->verify)
		ret = wl_request(s, "verify", NULL, &s->w.verified);
	if (ret == 0)
		ret = wl_request(s, "query", NULL, &s->w.after);
	return ret;
}

/* Dest: the region's pages, staging buffers and fault handlers on
 * --numa-node, before the fault engine starts. */
static int dest_place(struct side *s, const struct migrate_opts *o,
		      struct gmem_region *r)
{
	int ret;

	if (o->numa_node < 0)
		return 0;
	ret = gmem_region_set_numa_node(r, o->numa_node);
	if (ret < 0) {
		snprintf(s->error, sizeof(s->error), "NUMA node %d: %s",
			 o->numa_node, strerror(-ret));
		return ret;
	}
	fprintf(stderr, "gmem-migrate: dest: region and fault handlers on NUMA node %d%s\n",
		o->numa_node, gmem_numa_nodes() == 1 ?
		" (the only node: placement changes nothing here)" : "");
	return 0;
}

/* Dest: the region's page cache allocated while the source still runs the
 * workload (it waits for us to connect), so that post-copy only copies. */
static int dest_prealloc(struct side *s, const struct migrate_opts *o,
			 struct gmem_region *r)
{
	struct timespec t0, t1;
	int ret;

	if (o->no_prealloc)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = gmem_region_prealloc(r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ret < 0) {
		snprintf(s->error, sizeof(s->error),
			 "allocating the region's page cache: %s (--no-prealloc skips it)",
			 strerror(-ret));
		return ret;
	}
	fprintf(stderr, "gmem-migrate: dest: page cache of %llu MiB allocated in %.0f ms\n",
		(unsigned long long)(gmem_region_size(r) >> 20),
		(t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	return 0;
}

int migrate_dest(const struct migrate_opts *o)
{
	struct side s = { .role = "dest",
			  .w = { .ctl = -1, .quiet = o->quiet, .opts = o } };
	struct gmem_migrate_ops ops = { .resume = wl_resume,
					.progress = o->quiet ? NULL : progress_print,
					.failed = migration_failed };
	struct gmem_migrate_stats st = {};
	struct gmem_region *r = NULL;
	int ret = wl_open(&s, o, &r);

	if (ret == 0)
		ret = dest_place(&s, o, r);
	/* A QEMU's memory is its own, not a page cache to fill here. */
	if (ret == 0 && !o->qmp)
		ret = dest_prealloc(&s, o, r);
	if (ret == 0)
		ret = gmem_migrate_dest(r, o->addr, &o->params, &ops, &s, &st);
	if (o->qmp) {
		qemu_vm_finish(&s.vm, ret);
		return finish(o, &s, r, &st, ret);
	}
	if (ret == 0)
		ret = dest_settle(&s, &st);
	if (ret == 0)
		ret = dest_observe(&s, o);
	if (ret == 0 && json_int(s.w.verified, "mismatches")) {
		snprintf(s.error, sizeof(s.error),
			 "workload verify: %lld pages differ from what was written",
			 (long long)json_int(s.w.verified, "mismatches"));
		ret = -EIO;
	}
	return finish(o, &s, r, &st, ret);
}
