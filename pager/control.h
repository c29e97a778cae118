/* SPDX-License-Identifier: MIT */
/*
 * control.h - a client of a workload's control socket (JSON lines over
 * AF_UNIX, the monitor protocol of bench/REPLAY.md).
 */
#ifndef GMEM_PAGER_CONTROL_H
#define GMEM_PAGER_CONTROL_H

#include <json-c/json.h>

/* Connects to the socket at @path; returns the fd or -errno. */
int control_connect(const char *path);
/*
 * Sends {"cmd": @cmd} plus @args' members (may be NULL; not consumed) and
 * reads one reply line, stopping at its newline so that bytes that follow
 * (an exported region) stay in the socket. On "ok": false, *@err points to
 * the workload's error text (owned by *@reply). Returns 0 and sets *@reply
 * (release with json_object_put), or -errno (-EPROTO: not a JSON object).
 */
int control_request(int fd, const char *cmd, json_object *args,
		    json_object **reply, const char **err);
/* Integer member of @o, 0 when absent. */
int64_t json_int(json_object *o, const char *key);

#endif
