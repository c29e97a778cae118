/* SPDX-License-Identifier: MIT */
/*
 * replay.h - gmem-replay's shared state: the writer thread that replays a
 * trace into a region (replay-writer.c) and the control socket that pauses,
 * resumes, queries and verifies it (replay-control.c). Protocol: REPLAY.md.
 */
#ifndef GMEM_BENCH_REPLAY_H
#define GMEM_BENCH_REPLAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "stats.h"
#include "trace.h"

struct gmem_region;

/*
 * Writer states (REPLAY.md). The control thread moves INCOMING -> RUNNING
 * (resume with a device state), RUNNING -> PAUSED (pause, acknowledged by
 * the writer parking) and PAUSED -> RUNNING (resume); the writer moves
 * RUNNING -> DONE after --steps. All under replay.lock.
 */
enum replay_state {
	REPLAY_INCOMING,
	REPLAY_RUNNING,
	REPLAY_PAUSED,
	REPLAY_DONE,
};

/* The device state carried across a migration. */
struct replay_devstate {
	uint32_t step;       /* step being written, 1..nr_steps-1 */
	uint64_t pos;        /* pages of that step already written */
	uint64_t seq;        /* stores since the image began (image included) */
	uint64_t checksum;   /* fold of every stored value, in order */
	uint64_t steps_done; /* whole steps completed after the image */
};

#define REPLAY_RECENT 64
/* Steps kept from the resume on: 400 of 34 ms cover 13 s of post-copy and
 * fit a control reply line (64 KiB). */
#define REPLAY_SERIES 400

struct replay_step_rec {
	uint64_t start_ns;     /* CLOCK_MONOTONIC */
	uint64_t dur_ns;       /* paused time excluded */
	uint64_t trace_dur_ns; /* the trace's pace for that step */
	uint32_t step;
};

/*
 * Since the last user resume (REPLAY.md, query's "since_resume"): running
 * maxima, so that no ring size or read time can lose the stall post-copy
 * causes, and the first REPLAY_SERIES steps. Time parked by verify is not
 * a gap.
 */
struct replay_since {
	bool active;             /* a user resume came */
	uint64_t max_lag_ns;     /* longest a store came after its time on
				  * the trace's pace, from its step's start */
	uint64_t max_gap_ns;     /* longest time between two stores */
	uint64_t max_gap_end_ns; /* the store that ended it */
	uint64_t max_step_ns;
	uint64_t first_step_ns;  /* the step the resume continued */
	uint64_t steps;          /* steps ended since the resume */
	struct replay_step_rec series[REPLAY_SERIES];
};

struct replay {
	const struct trace *t;
	struct gmem_region *region;
	uint8_t *addr;
	uint64_t max_steps;          /* 0 = forever */

	pthread_mutex_t lock;
	pthread_cond_t cond;         /* CLOCK_MONOTONIC; any change below */
	enum replay_state state;
	bool pause_req;              /* also read without the lock, atomically */
	bool stop_req;
	bool parked;                 /* writer is waiting in a pause */
	bool stamp_first;            /* next store after resume: first_write_ns */
	struct replay_devstate shown; /* writer's progress, per chunk */
	uint64_t parked_write_ns;    /* writer's last store when it parked */
	uint64_t last_write_ns;      /* last store before the last user pause */
	uint64_t first_write_ns;     /* first store after the last user resume */
	struct samples durs;         /* every step time (ns) of this process */
	struct replay_step_rec recent[REPLAY_RECENT];
	uint64_t nr_recs;            /* ring: recent[nr_recs % REPLAY_RECENT] */
	struct replay_since since;

	pthread_t writer;
	bool writer_started;
};

/* --- replay-writer.c ---------------------------------------------------- */
void replay_init(struct replay *w, const struct trace *t,
		 struct gmem_region *region, uint64_t max_steps, bool incoming);
/* Writes the initial image (step 0) at full speed; sets step 1. */
void replay_write_image(struct replay *w);
int replay_start(struct replay *w);
/*
 * Stops and joins the writer (no-op when not started).
 * Return: 0; -ETIMEDOUT it is still blocked in a store after 10 s (a fault
 * nobody serves): the caller must then exit without unmapping the region.
 */
int replay_stop(struct replay *w);
/* Frees what replay_init() took; the writer is stopped or never started. */
void replay_fini(struct replay *w);
/*
 * Parks the writer at a store boundary (no-op unless RUNNING); lock held.
 * Return: 0; -ETIMEDOUT the writer did not stop within 10 s (a store blocked
 * in a page fault nobody serves); it keeps running.
 */
int replay_park_locked(struct replay *w);
void replay_unpark_locked(struct replay *w, bool stamp_first);
struct replay_verify_result {
	uint64_t checked;
	uint64_t mismatches;
	uint64_t first_bad_page;  /* valid when mismatches > 0 */
	uint64_t expected, found; /* the first bad page's value and content */
};

/*
 * Checks every page's last stored value, recomputed from the trace and @ds
 * (never-written pages must read 0). Writer parked or not started.
 * Return: 0; -ENOMEM.
 */
int replay_verify(struct replay *w, const struct replay_devstate *ds,
		  struct replay_verify_result *res);
bool replay_devstate_valid(const struct replay *w,
			   const struct replay_devstate *ds);
const char *replay_state_name(enum replay_state s);

/* --- replay-control.c --------------------------------------------------- */
struct replay_control;

int replay_control_open(struct replay *w, const char *path,
			struct replay_control **out);
/* Serves requests for up to @wait_ms; 1 after "quit", else 0 or -errno. */
int replay_control_poll(struct replay_control *c, int extra_fd, int wait_ms,
			bool *extra_ready);
void replay_control_close(struct replay_control *c);
/* Query fields (also gmem-replay's exit report). Takes the lock. */
void replay_report(struct replay *w, struct json_object *o);

#endif /* GMEM_BENCH_REPLAY_H */
