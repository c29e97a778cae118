// SPDX-License-Identifier: MIT
/*
 * control.c - see control.h. Replies are read a byte at a time: the reply
 * to "export" is followed on the same stream by SCM_RIGHTS data, which a
 * buffered read would swallow.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

#define LINE_MAX_BYTES 65536

int control_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Reads up to the newline into @buf (NUL-terminated, newline dropped). */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = read(fd, buf + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		if (buf[len] == '\n')
			break;
		if (++len == cap - 1)
			return -EMSGSIZE;
	}
	buf[len] = '\0';
	return 0;
}

int control_request(int fd, const char *cmd, json_object *args,
		    json_object **reply, const char **err)
{
	char *line = malloc(LINE_MAX_BYTES);
	json_object *req = json_object_new_object(), *ok, *e;
	const char *text;
	int ret;

	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (args) {
		json_object_object_foreach(args, k, v)
			json_object_object_add(req, k, json_object_get(v));
	}
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	ret = write_all(fd, text, strlen(text));
	if (!ret)
		ret = write_all(fd, "\n", 1);
	json_object_put(req);
	if (!line)
		ret = -ENOMEM;
	if (!ret)
		ret = read_line(fd, line, LINE_MAX_BYTES);
	*reply = ret < 0 ? NULL : json_tokener_parse(line);
	free(line);
	if (ret < 0)
		return ret;
	if (!*reply || !json_object_is_type(*reply, json_type_object)) {
		json_object_put(*reply);
		return -EPROTO;
	}
	*err = NULL;
	if (!json_object_object_get_ex(*reply, "ok", &ok) ||
	    !json_object_get_boolean(ok))
		*err = json_object_object_get_ex(*reply, "error", &e) ?
			       json_object_get_string(e) : "request failed";
	return 0;
}

int64_t json_int(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ?
		       json_object_get_int64(v) : 0;
}
