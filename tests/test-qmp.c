// SPDX-License-Identifier: MIT
/*
 * test-qmp.c - gmem-migrate's QMP client (pager/qmp.c, compiled in)
 * against a scripted stand-in for QEMU's monitor: the handshake, replies
 * found among events and other ids and split across reads, QEMU's error
 * replies, a monitor that is not QMP, one that falls silent or closes, and
 * a socket that appears late.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../pager/qmp.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, " \
	"\"minor\": 2, \"major\": 7}, \"package\": \"\"}, " \
	"\"capabilities\": [\"oob\"]}}\r\n"
#define EVENT "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, " \
	"\"event\": \"STOP\"}\r\n"

/* The stand-in: after @delay_ms it listens at @path and plays @script,
 * lines of "<" (read one command: its id becomes %ID%), ">TEXT" (send
 * TEXT, %ID% replaced; "|" splits it into two writes 50 ms apart) or "!"
 * (hang up); at the end it stays silent until the client hangs up. */
struct fake {
	char path[108];
	const char *const *script;
	int delay_ms;
	pthread_t th;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = ms % 1000 * 1000000L };

	nanosleep(&ts, NULL);
}

static int read_id(int fd)
{
	char line[4096], *p;
	size_t len = 0;

	while (len < sizeof(line) - 1 && read(fd, line + len, 1) == 1 &&
	       line[len] != '\n' && line[len] != '}')
		len++;
	line[len] = '\0';
	p = strstr(line, "\"id\"");
	return p ? atoi(strchr(p, ':') + 1) : -1;
}

static void send_text(int fd, const char *text, int id)
{
	char out[4096], *at;
	char *cut;

	snprintf(out, sizeof(out), "%s", text);
	at = strstr(out, "%ID%");
	if (at) {
		char rest[4096];

		snprintf(rest, sizeof(rest), "%s", at + 4);
		snprintf(at, sizeof(out) - (at - out), "%d%s", id, rest);
	}
	cut = strchr(out, '|');
	if (cut) {
		*cut = '\0';
		cr_assert_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
		sleep_ms(50);
		cr_assert_eq(write(fd, cut + 1, strlen(cut + 1)),
			     (ssize_t)strlen(cut + 1));
		return;
	}
	cr_assert_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int lfd, fd, id = -1;

	sleep_ms(f->delay_ms);
	strcpy(a.sun_path, f->path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 1), 0);
	fd = accept(lfd, NULL, NULL);
	cr_assert_geq(fd, 0);
	for (const char *const *s = f->script; *s; s++) {
		if (**s == '!')
			goto out;
		if (**s == '<')
			id = read_id(fd);
		else
			send_text(fd, *s + 1, id);
	}
	while (read(fd, &id, 1) > 0)
		;
out:
	close(fd);
	close(lfd);
	return NULL;
}

static void fake_start(struct fake *f, const char *const *script, int delay)
{
	snprintf(f->path, sizeof(f->path), "/tmp/gmem-test-qmp.%d", getpid());
	unlink(f->path);
	f->script = script;
	f->delay_ms = delay;
	cr_assert_eq(pthread_create(&f->th, NULL, fake_run, f), 0);
}

static void fake_stop(struct fake *f, struct qmp *q)
{
	qmp_close(q);
	pthread_join(f->th, NULL);
	unlink(f->path);
}

static const char *const handshake[] = {
	">" GREETING, "<", ">" EVENT "{\"return\": {}, \"id\": %ID%}\r\n",
	NULL
};

/* The socket appears 300 ms late: qmp_open() waits for it. */
Test(qmp, handshake_waits_for_the_socket)
{
	struct fake f;
	struct qmp q;
	json_object *v;

	fake_start(&f, handshake, 300);
	cr_assert_eq(qmp_open(&q, f.path, 5000), 0, "%s", q.error);
	cr_assert(json_object_object_get_ex(q.version, "major", &v));
	cr_assert_eq(json_object_get_int(v), 7);
	fake_stop(&f, &q);
}

Test(qmp, reply_found_among_events_other_ids_and_split_reads)
{
	static const char *const script[] = {
		">" GREETING, "<", ">{\"return\": {}, \"id\": %ID%}\r\n",
		"<", ">" EVENT EVENT "{\"return\": {\"status\": \"stale\"}, "
		"\"id\": 9999}\r\n{\"return\": {\"status\": \"run|ning\"}, "
		"\"id\": %ID%}\r\n",
		NULL
	};
	struct fake f;
	struct qmp q;
	json_object *ret, *v;

	fake_start(&f, script, 0);
	cr_assert_eq(qmp_open(&q, f.path, 5000), 0, "%s", q.error);
	cr_assert_eq(qmp_cmd(&q, "query-status", NULL, &ret), 0, "%s",
		     q.error);
	cr_assert(json_object_object_get_ex(ret, "status", &v));
	cr_assert_str_eq(json_object_get_string(v), "running");
	json_object_put(ret);
	fake_stop(&f, &q);
}

Test(qmp, error_reply_names_the_command_and_the_reason)
{
	static const char *const script[] = {
		">" GREETING, "<", ">{\"return\": {}, \"id\": %ID%}\r\n",
		"<", ">{\"error\": {\"class\": \"GenericError\", \"desc\": "
		"\"no such memdev\"}, \"id\": %ID%}\r\n",
		NULL
	};
	struct fake f;
	struct qmp q;
	json_object *ret;

	fake_start(&f, script, 0);
	cr_assert_eq(qmp_open(&q, f.path, 5000), 0, "%s", q.error);
	cr_assert_eq(qmp_cmd(&q, "qom-get", NULL, &ret), -EREMOTEIO);
	cr_assert_null(ret);
	cr_assert(strstr(q.error, "qom-get: no such memdev"), "%s", q.error);
	fake_stop(&f, &q);
}

Test(qmp, a_monitor_without_the_greeting_is_refused)
{
	static const char *const script[] = {
		">{\"hello\": 1}\r\n", NULL
	};
	struct fake f;
	struct qmp q;

	fake_start(&f, script, 0);
	cr_assert_eq(qmp_open(&q, f.path, 5000), -EPROTO);
	cr_assert(strstr(q.error, "no QMP greeting"), "%s", q.error);
	fake_stop(&f, &q);
}

Test(qmp, a_silent_monitor_times_out)
{
	static const char *const script[] = { ">" GREETING, NULL };
	struct fake f;
	struct qmp q;

	fake_start(&f, script, 0);
	cr_assert_eq(qmp_open(&q, f.path, 300), -ETIMEDOUT);
	cr_assert(strstr(q.error, "no answer in 300 ms"), "%s", q.error);
	fake_stop(&f, &q);
}

/* A reply cut short by the hang-up is no reply; a missing socket is
 * named. */
Test(qmp, a_closed_monitor_is_reported)
{
	static const char *const script[] = {
		">" GREETING, "<", ">{\"return\": {}, \"id\": %ID%}\r\n",
		"<", ">{\"return\": {\"sta", "!", NULL
	};
	struct fake f;
	struct qmp q;
	json_object *ret;

	fake_start(&f, script, 0);
	cr_assert_eq(qmp_open(&q, f.path, 5000), 0, "%s", q.error);
	cr_assert_eq(qmp_cmd(&q, "query-status", NULL, &ret), -ECONNRESET);
	cr_assert(strstr(q.error, "QEMU closed the monitor"), "%s", q.error);
	fake_stop(&f, &q);
	cr_assert_eq(qmp_open(&q, "/nonexistent/qmp.sock", 200), -ENOENT);
	cr_assert(strstr(q.error, "/nonexistent/qmp.sock"), "%s", q.error);
	qmp_close(&q);
}
