// SPDX-License-Identifier: MIT
/*
 * trace-find.c - turns gmem-replay's --trace argument into a file: a path
 * as it is, a name looked up in the source tree, the installed traces and
 * $GMEM_TRACES, in that order, so a build finds its own traces with no
 * environment at all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace-find.h"

#define SUFFIX ".trace.gz"

int trace_dirs(const char *dirs[TRACE_DIRS_MAX])
{
	const char *env = getenv("GMEM_TRACES");
	int n = 0;

#ifdef GMEM_SRC_TRACES_DIR
	dirs[n++] = GMEM_SRC_TRACES_DIR;
#endif
#ifdef GMEM_PKG_TRACES_DIR
	dirs[n++] = GMEM_PKG_TRACES_DIR;
#endif
	if (env && *env)
		dirs[n++] = env;
	return n;
}

static int is_path(const char *arg)
{
	size_t len = strlen(arg);

	return strchr(arg, '/') || (len >= 3 && !strcmp(arg + len - 3, ".gz"));
}

int trace_find(const char *arg, char *path, size_t len, char *err,
	       size_t errlen)
{
	const char *dirs[TRACE_DIRS_MAX], *env = getenv("GMEM_TRACES");
	int i, n, used;

	if (is_path(arg)) {
		if ((size_t)snprintf(path, len, "%s", arg) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	n = trace_dirs(dirs);
	for (i = 0; i < n; i++) {
		if ((size_t)snprintf(path, len, "%s/%s" SUFFIX, dirs[i], arg) >= len)
			return -ENAMETOOLONG;
		if (!access(path, F_OK))
			return 0;
	}
	used = snprintf(err, errlen, "trace '%s' not found: no %s" SUFFIX " in",
			arg, arg);
	for (i = 0; i < n && used >= 0 && (size_t)used < errlen; i++)
		used += snprintf(err + used, errlen - used, "%s %s",
				 i ? "," : "", dirs[i]);
	if (used >= 0 && (size_t)used < errlen && !(env && *env))
		snprintf(err + used, errlen - used,
			 "%s $GMEM_TRACES (not set)", n ? "," : "");
	return -ENOENT;
}
