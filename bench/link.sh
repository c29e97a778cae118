# SPDX-License-Identifier: MIT
# Sourced by bench/link-push and bench/link-migrate: runs a command in a
# network namespace of its own whose loopback tc(8) shapes to a NIC's line
# rate: a token bucket filter (tbf), and under it pfifo_fast, a NIC's
# default queueing, whose bands let a socket's priority (SO_PRIORITY) go
# first. Needs root (unshare -n, tc).

link_tools() {
	for t in unshare ip tc jq; do
		command -v $t >/dev/null || { echo "$1: no $t" >&2; exit 1; }
	done
}

# link_shaped RATE COMMAND: COMMAND (one string) on loopback at RATE.
link_shaped() {
	local rate=$1 bytes
	# A bucket of 5 ms at the rate (at least 4 MiB, more than one 64 KiB
	# loopback super-packet), so the timer tick does not cap the rate.
	bytes=$(echo "$rate" |
		awk '{ r = $1 + 0; u = tolower($1); sub(/^[0-9.]+/, "", u)
		       m = u == "gbit" ? 1e9 : u == "mbit" ? 1e6 : 1
		       b = r * m / 8 / 200; print (b < 4194304 ? 4194304 : int(b)) }')
	unshare -n bash -c "ip link set lo up &&
		tc qdisc add dev lo root handle 1: tbf rate $rate burst $bytes latency 50ms &&
		tc qdisc add dev lo parent 1:1 pfifo_fast &&
		$2"
}
