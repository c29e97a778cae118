// SPDX-License-Identifier: MIT
/*
 * test-replay.c - gmem-replay across a hand-off on one host: the source is
 * paused, a destination (--incoming) is exported here, served from the
 * source's memfd by the fault engine, and resumed with the source's device
 * state; it must end with the checksum of an uninterrupted run and pass
 * verify. Not the migration engine: pages come from a local file source.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#ifndef GMEM_TRACES_DIR
#define GMEM_TRACES_DIR "traces"
#endif
#ifndef GMEM_REPLAY_BIN
#define GMEM_REPLAY_BIN "bench/gmem-replay"
#endif

#define STEPS "12" /* gpt2-train steps are ~129 ms */

struct proc {
	pid_t pid;
	char sock[108];
};

static void trace_path(char *path, size_t len)
{
	snprintf(path, len, "%s/gpt2-train.trace.gz", GMEM_TRACES_DIR);
	cr_assert_eq(access(path, R_OK), 0, "trace %s: %s", path,
		     strerror(errno));
	if (access(GMEM_REPLAY_BIN, X_OK))
		cr_skip_test("%s not built", GMEM_REPLAY_BIN);
}

/* Runs gmem-replay with @args (NULL-terminated) at 1/64; its stdout goes to
 * @out_fd (-1: /dev/null). Dies with the test. */
static pid_t spawn(const char *trace, const char *const *args, int out_fd)
{
	const char *argv[16] = { GMEM_REPLAY_BIN, "--trace", trace,
				 "--scale", "1/64", "--quiet" };
	int n = 6;
	pid_t pid;

	while (*args && n < 15)
		argv[n++] = *args++;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (out_fd < 0)
		out_fd = open("/dev/null", O_WRONLY);
	dup2(out_fd, STDOUT_FILENO);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, i;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (i = 0; i < 300; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fd, 0);
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return fd;
		close(fd);
		usleep(100000);
	}
	cr_assert_fail("no control socket at %s after 30 s", path);
	return -1;
}

/* Sends @req, reads one reply line byte by byte (an export follows it). */
static struct json_object *ctl(int fd, const char *req)
{
	char line[1 << 16];
	size_t len = 0;
	struct json_object *o;

	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	cr_assert_eq(write(fd, "\n", 1), 1);
	while (len < sizeof(line) - 1) {
		cr_assert_eq(read(fd, line + len, 1), 1, "reply to %s cut", req);
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	o = json_tokener_parse(line);
	cr_assert_not_null(o, "reply is not JSON: %s", line);
	return o;
}

/* The member at @path ("a" or "a.b") of @o. */
static struct json_object *get(struct json_object *o, const char *path)
{
	const char *dot = strchr(path, '.');
	size_t len = dot ? (size_t)(dot - path) : strlen(path);
	struct json_object *v = NULL;
	char key[64];

	snprintf(key, sizeof(key), "%.*s", (int)len, path);
	cr_assert(json_object_object_get_ex(o, key, &v), "no %s in %s", key,
		  json_object_to_json_string(o));
	return dot ? get(v, dot + 1) : v;
}

static int64_t get_int(struct json_object *o, const char *path)
{
	return json_object_get_int64(get(o, path));
}

static const char *get_str(struct json_object *o, const char *path)
{
	return json_object_get_string(get(o, path));
}

/* The device checksum of an uninterrupted run of STEPS steps. */
static char *reference_checksum(const char *trace)
{
	static const char *const args[] = { "--steps", STEPS, NULL };
	char out[1 << 16];
	struct json_object *o;
	int pfd[2], status;
	ssize_t n, len = 0;
	pid_t pid;
	char *ck;

	cr_assert_eq(pipe(pfd), 0);
	pid = spawn(trace, args, pfd[1]);
	close(pfd[1]);
	while ((n = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += n;
	close(pfd[0]);
	out[len] = '\0';
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "reference run failed");
	o = json_tokener_parse(out);
	cr_assert_not_null(o, "exit report: %s", out);
	ck = strdup(get_str(o, "device.checksum"));
	json_object_put(o);
	return ck;
}

static struct gmem_region *import_region(int fd)
{
	struct json_object *o = ctl(fd, "{\"cmd\":\"export\"}");
	struct gmem_region *r = NULL;
	int ret;

	cr_assert(json_object_get_boolean(get(o, "ok")));
	json_object_put(o);
	ret = gmem_region_import(fd, &r);
	cr_assert_eq(ret, 0, "gmem_region_import: %s", strerror(-ret));
	return r;
}

static void quit(int fd, pid_t pid)
{
	int status;

	json_object_put(ctl(fd, "{\"cmd\":\"quit\"}"));
	close(fd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status));
}

/* Polls "query" until the replay reaches --steps; returns the last reply. */
static struct json_object *wait_done(int fd)
{
	struct json_object *o;
	int i;

	for (i = 0; i < 400; i++) {
		o = ctl(fd, "{\"cmd\":\"query\"}");
		if (!strcmp(get_str(o, "state"), "done"))
			return o;
		json_object_put(o);
		usleep(50000);
	}
	cr_assert_fail("destination did not reach --steps " STEPS " in 20 s");
	return NULL;
}

static void resume_with(int fd, struct json_object *state)
{
	char req[1024];
	struct json_object *o;

	snprintf(req, sizeof(req), "{\"cmd\":\"resume\",\"state\":%s}",
		 json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN));
	o = ctl(fd, req);
	cr_assert(json_object_get_boolean(get(o, "ok")), "resume: %s",
		  json_object_to_json_string(o));
	json_object_put(o);
}

Test(replay, destination_resumes_from_carried_state, .timeout = 60.0)
{
	char trace[512], dir[] = "/tmp/gmem-replay-XXXXXX", ssock[128], dsock[128];
	const char *sargs[] = { "--control", ssock, "--steps", STEPS, NULL };
	const char *dargs[] = { "--control", dsock, "--steps", STEPS,
				"--incoming", NULL };
	struct gmem_region *sr, *dr;
	struct gmem_source *fsrc;
	struct json_object *p, *q;
	int64_t last, first;
	pid_t spid, dpid;
	int sfd, dfd, ret;
	char *want;

	require_uffd();
	trace_path(trace, sizeof(trace));
	want = reference_checksum(trace);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ssock, sizeof(ssock), "%s/src", dir);
	snprintf(dsock, sizeof(dsock), "%s/dst", dir);

	/* The destination is ready before the switchover, as in a migration;
	 * it faults only after resume, when the source is paused. */
	dpid = spawn(trace, dargs, -1);
	dfd = ctl_connect(dsock);
	dr = import_region(dfd);
	spid = spawn(trace, sargs, -1);
	sfd = ctl_connect(ssock);
	sr = import_region(sfd);
	cr_assert_eq(gmem_region_nr_pages(dr), gmem_region_nr_pages(sr));
	ret = gmem_source_file(gmem_region_fd(sr), gmem_region_fd_off(sr), &fsrc);
	cr_assert_eq(ret, 0, "gmem_source_file: %s", strerror(-ret));
	ret = gmem_region_attach(dr, fsrc, NULL);
	cr_assert_eq(ret, 0, "gmem_region_attach: %s", strerror(-ret));

	usleep(300000); /* a few steps, well before --steps */
	p = ctl(sfd, "{\"cmd\":\"pause\"}");
	cr_assert(json_object_get_boolean(get(p, "ok")), "pause: %s",
		  json_object_to_json_string(p));
	last = get_int(p, "last_write_ns");
	resume_with(dfd, get(p, "state"));

	q = wait_done(dfd);
	first = get_int(q, "first_write_ns");
	cr_assert_gt(first, last);
	cr_log_info("gpt2-train 1/64: hand-off freeze %.3f ms (pause to first store, pages faulted from the source's memfd)",
		    (first - last) / 1e6);
	cr_log_info("gpt2-train 1/64: destination step time p50 %.1f ms p99 %.1f ms (trace ~129 ms; first steps fault pages in)",
		    get_int(q, "step_time.p50_ns") / 1e6,
		    get_int(q, "step_time.p99_ns") / 1e6);
	cr_assert_eq(get_int(q, "steps_done"), atoi(STEPS));
	cr_assert_str_eq(get_str(q, "device.checksum"), want,
			 "the destination must end where an uninterrupted run does");
	json_object_put(q);
	q = ctl(dfd, "{\"cmd\":\"verify\"}");
	cr_assert(json_object_get_boolean(get(q, "ok")), "verify: %s",
		  json_object_to_json_string(q));
	cr_assert_eq(get_int(q, "pages_checked"), (int64_t)gmem_region_nr_pages(dr));
	json_object_put(q);

	gmem_region_detach(dr);
	quit(dfd, dpid);
	gmem_region_destroy(dr);
	gmem_source_destroy(fsrc);
	quit(sfd, spid);
	gmem_region_destroy(sr);
	json_object_put(p);
	free(want);
	unlink(ssock);
	unlink(dsock);
	rmdir(dir);
}
