// SPDX-License-Identifier: MIT
/*
 * replay-control.c - gmem-replay's control socket: AF_UNIX stream, one JSON
 * request per line, one JSON reply line each (query, pause, resume, export,
 * verify, quit; REPLAY.md). Runs on the main thread; the writer is in
 * replay-writer.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmem.h>

#include "replay.h"

#define MAX_CLIENTS 8
#define REQ_MAX 4096
#define STR(x) #x
#define TOSTR(x) STR(x)

struct client {
	int fd;        /* -1: free slot */
	size_t len;
	char buf[REQ_MAX];
};

struct replay_control {
	struct replay *w;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	bool quit;
	struct client cl[MAX_CLIENTS];
};

/* A command fills @reply; on failure it returns a message for "error". */
typedef const char *(*cmd_fn)(struct replay_control *c, struct client *cl,
			      struct json_object *req,
			      struct json_object *reply);

static void add_i64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

static void add_hex(struct json_object *o, const char *k, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "0x%016" PRIx64, v);
	json_object_object_add(o, k, json_object_new_string(s));
}

static struct json_object *devstate_json(const struct replay_devstate *ds)
{
	struct json_object *o = json_object_new_object();

	add_i64(o, "step", ds->step);
	add_i64(o, "pos_in_step", ds->pos);
	add_i64(o, "seq", ds->seq);
	add_hex(o, "checksum", ds->checksum);
	add_i64(o, "steps_done", ds->steps_done);
	return o;
}

static bool get_u64(struct json_object *o, const char *k, bool need,
		    uint64_t *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return !need;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return false;
	*out = (uint64_t)json_object_get_int64(v);
	return true;
}

static const char *devstate_parse(struct json_object *o,
				  struct replay_devstate *ds)
{
	struct json_object *ck;
	uint64_t step = 0;
	const char *s;
	char *end;

	memset(ds, 0, sizeof(*ds));
	if (!json_object_is_type(o, json_type_object))
		return "\"state\" must be an object";
	if (!get_u64(o, "step", true, &step) || step > UINT32_MAX ||
	    !get_u64(o, "pos_in_step", true, &ds->pos) ||
	    !get_u64(o, "seq", true, &ds->seq) ||
	    !get_u64(o, "steps_done", false, &ds->steps_done))
		return "\"state\" needs integers step, pos_in_step, seq (and optional steps_done)";
	ds->step = step;
	if (!json_object_object_get_ex(o, "checksum", &ck) ||
	    !json_object_is_type(ck, json_type_string))
		return "\"state\" needs \"checksum\": \"0x...\"";
	s = json_object_get_string(ck);
	errno = 0;
	ds->checksum = strtoull(s, &end, 16);
	if (errno || end == s || *end)
		return "\"state\".checksum is not a hex number";
	return NULL;
}

static struct json_object *step_json(const struct replay_step_rec *r)
{
	struct json_object *e = json_object_new_object();

	add_i64(e, "step", r->step);
	add_i64(e, "start_ns", r->start_ns);
	add_i64(e, "dur_ns", r->dur_ns);
	add_i64(e, "trace_dur_ns", r->trace_dur_ns);
	return e;
}

/* Lock held: what happened since the last user resume. */
static struct json_object *since_json(const struct replay_since *s)
{
	struct json_object *o = json_object_new_object();
	struct json_object *a = json_object_new_array();
	uint64_t i;

	add_i64(o, "max_lag_ns", s->max_lag_ns);
	add_i64(o, "max_gap_ns", s->max_gap_ns);
	add_i64(o, "max_gap_end_ns", s->max_gap_end_ns);
	add_i64(o, "max_step_ns", s->max_step_ns);
	add_i64(o, "first_step_ns", s->first_step_ns);
	add_i64(o, "steps", s->steps);
	for (i = 0; i < s->steps && i < REPLAY_SERIES; i++)
		json_object_array_add(a, step_json(&s->series[i]));
	json_object_object_add(o, "series", a);
	return o;
}

void replay_report(struct replay *w, struct json_object *o)
{
	const struct trace *t = w->t;
	struct json_object *recent = json_object_new_array(), *st;
	char scale[24];
	uint64_t i, sum = 0;

	snprintf(scale, sizeof(scale), "1/%u", t->scale);
	pthread_mutex_lock(&w->lock);
	json_object_object_add(o, "state",
			       json_object_new_string(replay_state_name(w->state)));
	json_object_object_add(o, "trace", json_object_new_string(t->name));
	json_object_object_add(o, "scale", json_object_new_string(scale));
	add_i64(o, "scale_n", t->scale);
	add_i64(o, "page_size", t->page_size);
	add_i64(o, "nr_pages", t->nr_pages);
	add_i64(o, "trace_pages", t->total_pages);
	add_i64(o, "trace_steps", t->nr_steps);
	add_i64(o, "pid", getpid());
	add_i64(o, "step", w->shown.step);
	add_i64(o, "steps_done", w->shown.steps_done);
	json_object_object_add(o, "device", devstate_json(&w->shown));
	add_i64(o, "last_write_ns", w->last_write_ns);
	add_i64(o, "first_write_ns", w->first_write_ns);
	if (w->last_write_ns && w->first_write_ns > w->last_write_ns)
		add_i64(o, "freeze_ns", w->first_write_ns - w->last_write_ns);
	for (i = 0; i < w->durs.n; i++)
		sum += w->durs.v[i];
	st = json_object_new_object();
	add_i64(st, "count", w->durs.n);
	add_i64(st, "mean_ns", w->durs.n ? sum / w->durs.n : 0);
	add_i64(st, "p50_ns", samples_pct(&w->durs, 50));
	add_i64(st, "p99_ns", samples_pct(&w->durs, 99));
	json_object_object_add(o, "step_time", st);
	i = w->nr_recs > REPLAY_RECENT ? w->nr_recs - REPLAY_RECENT : 0;
	for (; i < w->nr_recs; i++)
		json_object_array_add(recent,
				      step_json(&w->recent[i % REPLAY_RECENT]));
	if (w->since.active)
		json_object_object_add(o, "since_resume", since_json(&w->since));
	pthread_mutex_unlock(&w->lock);
	json_object_object_add(o, "recent_steps", recent);
}

static const char *cmd_query(struct replay_control *c, struct client *cl,
			     struct json_object *req, struct json_object *reply)
{
	replay_report(c->w, reply);
	return NULL;
}

static const char *cmd_pause(struct replay_control *c, struct client *cl,
			     struct json_object *req, struct json_object *reply)
{
	struct replay *w = c->w;
	const char *err = NULL;

	pthread_mutex_lock(&w->lock);
	if (replay_park_locked(w)) {
		err = "the writer did not stop within 10 s (blocked in a page fault?)";
		goto out;
	}
	if (w->state != REPLAY_PAUSED) {
		err = w->state == REPLAY_DONE ? "not running: --steps reached" :
						"not running: incoming, waiting for resume";
		goto out;
	}
	w->last_write_ns = w->parked_write_ns;
	add_i64(reply, "last_write_ns", w->last_write_ns);
	json_object_object_add(reply, "state", devstate_json(&w->shown));
out:
	pthread_mutex_unlock(&w->lock);
	return err;
}

static const char *cmd_resume(struct replay_control *c, struct client *cl,
			      struct json_object *req, struct json_object *reply)
{
	struct replay *w = c->w;
	struct replay_devstate ds;
	struct json_object *st = NULL;
	const char *err = NULL;

	json_object_object_get_ex(req, "state", &st);
	if (st && (err = devstate_parse(st, &ds)))
		return err;
	if (st && !replay_devstate_valid(w, &ds))
		return "\"state\" does not fit this trace and scale (step, pos_in_step or seq out of range)";
	pthread_mutex_lock(&w->lock);
	if (w->state == REPLAY_INCOMING && !st)
		err = "incoming: resume needs the source's \"state\"";
	else if (w->state == REPLAY_RUNNING)
		err = "not paused";
	else if (w->state == REPLAY_DONE)
		err = "not paused: --steps reached";
	if (err)
		goto out;
	/* The writer must be parked before it may read a new state. */
	while (!w->parked)
		pthread_cond_wait(&w->cond, &w->lock);
	if (st)
		w->shown = ds;
	replay_unpark_locked(w, true);
	add_i64(reply, "resume_ns", bench_now_ns());
out:
	pthread_mutex_unlock(&w->lock);
	return err;
}

static const char *cmd_export(struct replay_control *c, struct client *cl,
			      struct json_object *req, struct json_object *reply)
{
	struct gmem_region *r = c->w->region;

	add_i64(reply, "nr_pages", gmem_region_nr_pages(r));
	add_i64(reply, "page_size", gmem_region_page_size(r));
	add_i64(reply, "size", gmem_region_size(r));
	add_i64(reply, "pid", getpid());
	return NULL;
}

static const char *cmd_verify(struct replay_control *c, struct client *cl,
			      struct json_object *req, struct json_object *reply)
{
	struct replay *w = c->w;
	struct replay_verify_result res;
	struct replay_devstate ds;
	bool was_running;
	int ret;

	pthread_mutex_lock(&w->lock);
	if (w->state == REPLAY_INCOMING) {
		pthread_mutex_unlock(&w->lock);
		return "incoming: nothing written here yet";
	}
	/* Park a running writer for the check, without stamping the
	 * freeze times: only user pauses and resumes do. */
	was_running = w->state == REPLAY_RUNNING;
	if (replay_park_locked(w)) {
		pthread_mutex_unlock(&w->lock);
		return "the writer did not stop within 10 s (blocked in a page fault?)";
	}
	ds = w->shown;
	pthread_mutex_unlock(&w->lock);

	ret = replay_verify(w, &ds, &res);

	pthread_mutex_lock(&w->lock);
	if (was_running && w->state == REPLAY_PAUSED)
		replay_unpark_locked(w, false);
	pthread_mutex_unlock(&w->lock);
	if (ret)
		return "out of memory";
	add_i64(reply, "pages_checked", res.checked);
	add_i64(reply, "mismatches", res.mismatches);
	if (!res.mismatches)
		return NULL;
	add_i64(reply, "first_bad_page", res.first_bad_page);
	add_hex(reply, "expected", res.expected);
	add_hex(reply, "found", res.found);
	return "pages differ from what the replay wrote (see mismatches, first_bad_page)";
}

static const char *cmd_quit(struct replay_control *c, struct client *cl,
			    struct json_object *req, struct json_object *reply)
{
	c->quit = true;
	return NULL;
}

static const struct {
	const char *name;
	cmd_fn fn;
} cmds[] = {
	{ "query", cmd_query },   { "pause", cmd_pause },
	{ "resume", cmd_resume }, { "export", cmd_export },
	{ "verify", cmd_verify }, { "quit", cmd_quit },
};

static int send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		s += n;
		len -= n;
	}
	return 0;
}

static const char *dispatch(struct replay_control *c, struct client *cl,
			    const char *line, struct json_object *reply,
			    bool *export)
{
	struct json_object *req = json_tokener_parse(line), *cmd;
	const char *name, *err = "unknown \"cmd\" (query, pause, resume, export, verify, quit)";
	size_t i;

	if (!req || !json_object_is_type(req, json_type_object)) {
		err = "request is not a JSON object";
		goto out;
	}
	if (!json_object_object_get_ex(req, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string)) {
		err = "request has no \"cmd\" string";
		goto out;
	}
	name = json_object_get_string(cmd);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(name, cmds[i].name))
			continue;
		err = cmds[i].fn(c, cl, req, reply);
		*export = !err && cmds[i].fn == cmd_export;
		break;
	}
out:
	json_object_put(req);
	return err;
}

/* One request line in (NULL: too long), one reply line out.
 * Return: 0, or -errno to drop the client. */
static int handle_line(struct replay_control *c, struct client *cl,
		       const char *line)
{
	struct json_object *reply = json_object_new_object();
	bool export = false;
	const char *err, *s;
	int ret;

	json_object_object_add(reply, "ok", json_object_new_boolean(true));
	err = line ? dispatch(c, cl, line, reply, &export) :
		     "request longer than " TOSTR(REQ_MAX) " bytes";
	if (err) {
		json_object_object_add(reply, "ok", json_object_new_boolean(false));
		json_object_object_add(reply, "error", json_object_new_string(err));
	}
	s = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
					   JSON_C_TO_STRING_NOSLASHESCAPE);
	ret = send_all(cl->fd, s, strlen(s));
	if (!ret)
		ret = send_all(cl->fd, "\n", 1);
	json_object_put(reply);
	if (!ret && export) {
		ret = gmem_region_export(c->w->region, cl->fd);
		if (ret)
			fprintf(stderr, "gmem-replay: export: %s\n", strerror(-ret));
	}
	return ret;
}

static void client_close(struct client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
}

/* Reads what the client sent and answers every complete line. */
static void client_read(struct replay_control *c, struct client *cl)
{
	ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, 0);
	char *nl;

	if (n <= 0) {
		client_close(cl);
		return;
	}
	cl->len += n;
	while (cl->fd >= 0 && (nl = memchr(cl->buf, '\n', cl->len))) {
		size_t used = nl - cl->buf + 1;

		*nl = '\0';
		if (handle_line(c, cl, cl->buf) || c->quit) {
			client_close(cl);
			return;
		}
		memmove(cl->buf, cl->buf + used, cl->len - used);
		cl->len -= used;
	}
	if (cl->fd >= 0 && cl->len == sizeof(cl->buf)) {
		handle_line(c, cl, NULL);
		client_close(cl);
	}
}

static void accept_client(struct replay_control *c)
{
	int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
	int i;

	if (fd < 0)
		return;
	for (i = 0; i < MAX_CLIENTS; i++) {
		if (c->cl[i].fd < 0) {
			c->cl[i].fd = fd;
			c->cl[i].len = 0;
			return;
		}
	}
	close(fd);
}

int replay_control_poll(struct replay_control *c, int extra_fd, int wait_ms,
			bool *extra_ready)
{
	struct pollfd pfd[MAX_CLIENTS + 2];
	int i, n = 0, ret;

	pfd[n++] = (struct pollfd){ .fd = extra_fd, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = c ? c->lfd : -1, .events = POLLIN };
	for (i = 0; c && i < MAX_CLIENTS; i++)
		pfd[n++] = (struct pollfd){ .fd = c->cl[i].fd, .events = POLLIN };
	ret = poll(pfd, n, wait_ms);
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	*extra_ready = pfd[0].revents;
	if (!c)
		return 0;
	for (i = 0; i < MAX_CLIENTS; i++)
		if (pfd[i + 2].revents && c->cl[i].fd >= 0)
			client_read(c, &c->cl[i]);
	if (pfd[1].revents)
		accept_client(c);
	return c->quit;
}

int replay_control_open(struct replay *w, const char *path,
			struct replay_control **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct replay_control *c;
	int i, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->w = w;
	for (i = 0; i < MAX_CLIENTS; i++)
		c->cl[i].fd = -1;
	strcpy(sa.sun_path, path);
	strcpy(c->path, path);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->lfd < 0) {
		ret = -errno;
		free(c);
		return ret;
	}
	unlink(path); /* a stale socket of an earlier run */
	if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(c->lfd, MAX_CLIENTS)) {
		ret = -errno;
		close(c->lfd);
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void replay_control_close(struct replay_control *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < MAX_CLIENTS; i++)
		if (c->cl[i].fd >= 0)
			close(c->cl[i].fd);
	close(c->lfd);
	unlink(c->path);
	free(c);
}
