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

# netns_pair NS_A NS_B IF NET: network namespaces NS_A and NS_B joined by a
# veth pair (IF-a in NS_A with NET.1/24, IF-b in NS_B with NET.2/24), links
# and loopback up. Returns 77 with "SKIP: reason" on stdout where the machine
# cannot make them, 99 on any later failure. The caller deletes NS_A and NS_B.
netns_pair() {
	command -v ip >/dev/null || { echo "SKIP: no ip(8) (iproute2)"; return 77; }
	_np_err=$(ip netns add "$1" 2>&1) ||
		{ echo "SKIP: ip netns add: $_np_err"; return 77; }
	ip netns add "$2" || { echo "SKIP: ip netns add failed"; return 77; }
	_np_err=$(ip link add "$3-a" type veth peer name "$3-b" 2>&1) ||
		{ echo "SKIP: veth: $_np_err"; return 77; }
	ip link set "$3-a" netns "$1" && ip link set "$3-b" netns "$2" &&
	ip -n "$1" addr add "$4.1/24" dev "$3-a" &&
	ip -n "$2" addr add "$4.2/24" dev "$3-b" &&
	ip -n "$1" link set "$3-a" up && ip -n "$2" link set "$3-b" up &&
	ip -n "$1" link set lo up && ip -n "$2" link set lo up || return 99
}

# The LD_PRELOAD list that loads library $1 into a program: a library built
# with AddressSanitizer (scripts/test --sanitizers) needs ASan's runtime
# loaded before it, or ASan refuses to start the program.
preload_list() {
	local rt
	rt=$(ldd "$1" 2>/dev/null | awk '/libasan\.so/ { print $3; exit }')
	echo "${rt:+$rt }$1"
}

# guest_kernel BUILDDIR: prints the QEMU tests' guest kernel: $GMEM_GUEST_KERNEL,
# else the one scripts/setup fetched into BUILDDIR/guest/, else the newest
# /boot/vmlinuz-*; nothing (and false) when none is readable.
guest_kernel() {
	for _gk in "${GMEM_GUEST_KERNEL:-}" "$1/guest/vmlinuz" \
		"$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)"; do
		if [ -n "$_gk" ] && [ -r "$_gk" ]; then
			echo "$_gk"
			return 0
		fi
	done
	return 1
}
