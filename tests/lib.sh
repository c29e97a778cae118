# SPDX-License-Identifier: MIT
# lib.sh - what the shell tests share (POSIX sh). Source it:
#   . "$(dirname "$0")/lib.sh"

# wait_until SECONDS PID COMMAND...: runs COMMAND every 0.1 s until it
# succeeds (returns 0), until process PID has exited (returns COMMAND's
# status one last time; PID "-" watches none) or until SECONDS have passed
# (returns 1).
wait_until() {
	_wu_tries=$(($1 * 10))
	_wu_pid=$2
	shift 2
	while [ "$_wu_tries" -gt 0 ]; do
		"$@" && return 0
		if [ "$_wu_pid" != - ] && ! kill -0 "$_wu_pid" 2>/dev/null; then
			"$@"
			return
		fi
		_wu_tries=$((_wu_tries - 1))
		sleep 0.1
	done
	return 1
}

# gone PID...: true once none of the processes runs any more.
gone() {
	for _g_pid in "$@"; do
		kill -0 "$_g_pid" 2>/dev/null && return 1
	done
	return 0
}
