#!/bin/sh
# SPDX-License-Identifier: MIT
# replay-control.sh - gmem-replay's control socket end to end: replay
# llama-infer at 1/64, then query, pause, resume, query, verify, errors and
# quit over JSON lines (socat); an --incoming destination waits for its
# state; a bad trace exits 2 naming the line. Exit 77 = skipped.
set -u
. "$(dirname "$0")/lib.sh"

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-..}
replay=$top_builddir/bench/gmem-replay
trace=$top_srcdir/traces/llama-infer.trace.gz

if ! command -v socat >/dev/null 2>&1; then
	echo "SKIP: socat not installed (apt-get install socat)"
	exit 77
fi
if [ ! -r /dev/userfaultfd ] && [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ] &&
   [ "$(id -u)" != 0 ]; then
	echo "SKIP: no userfaultfd for this user"
	exit 77
fi

dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

fail() {
	echo "FAIL: $*"
	[ -s "$dir/err" ] && sed 's/^/  stderr: /' "$dir/err"
	exit 1
}

# ctl SOCKET JSON: one request, one reply line (a new client each time).
ctl() {
	printf '%s\n' "$2" | timeout 60 socat -t 30 - "UNIX-CONNECT:$1"
}

# expect WHAT REPLY PATTERN...: every PATTERN must occur in REPLY.
expect() {
	what=$1 reply=$2
	shift 2
	for pat in "$@"; do
		case $reply in
		*"$pat"*) ;;
		*) fail "$what: no '$pat' in reply: $reply" ;;
		esac
	done
}

# field NAME REPLY: the integer value of "NAME" in REPLY.
field() {
	printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}

# start SOCKET ARGS...: run gmem-replay in the background, wait for its socket.
start() {
	sock=$1
	shift
	"$replay" --trace "$trace" --scale 1/64 --control "$sock" --quiet "$@" \
		>"$dir/out.json" 2>"$dir/err" &
	pid=$!
	wait_until 30 "$pid" test -S "$sock" && return 0
	kill -0 "$pid" 2>/dev/null || fail "gmem-replay exited early"
	fail "no control socket after 30 s"
}

stop() {
	r=$(ctl "$1" '{"cmd":"quit"}')
	expect quit "$r" '"ok":true'
	wait "$pid" || fail "gmem-replay exited with $?"
	pid=
}

# --- a source: the whole command set -----------------------------------------
s=$dir/src.sock
start "$s"
r=$(ctl "$s" '{"cmd":"query"}')
expect query "$r" '"ok":true' '"state":"running"' '"trace":"llama-infer"' \
	'"scale":"1/64"' '"nr_pages":10976' '"page_size":4096' '"pid":'
sleep 2
r=$(ctl "$s" '{"cmd":"pause"}')
expect pause "$r" '"ok":true' '"last_write_ns":' '"state":{"step":' \
	'"pos_in_step":' '"seq":' '"checksum":"0x'
last=$(field last_write_ns "$r")
[ "${last:-0}" -gt 0 ] || fail "pause: last_write_ns not set: $r"
seq1=$(field seq "$r")
r=$(ctl "$s" '{"cmd":"query"}')
expect "query paused" "$r" '"state":"paused"'
sleep 0.5
r=$(ctl "$s" '{"cmd":"query"}')
[ "$(field seq "$r")" = "$seq1" ] || fail "writes while paused: $r"
r=$(ctl "$s" '{"cmd":"resume"}')
expect resume "$r" '"ok":true' '"resume_ns":'
r=$(ctl "$s" '{"cmd":"resume"}')
expect "resume twice" "$r" '"ok":false' '"error":"not paused"'
sleep 1.5
r=$(ctl "$s" '{"cmd":"query"}')
expect "query resumed" "$r" '"state":"running"' '"freeze_ns":' '"recent_steps":[{'
first=$(field first_write_ns "$r")
[ "$first" -gt "$last" ] || fail "first_write_ns $first <= last_write_ns $last"
[ "$(field seq "$r")" -gt "$seq1" ] || fail "no writes after resume: $r"
r=$(ctl "$s" '{"cmd":"verify"}')
expect verify "$r" '"ok":true' '"pages_checked":10976' '"mismatches":0'
# verify must see a page changed behind the writer's back (through the memfd).
r=$(ctl "$s" '{"cmd":"pause"}')
expect "pause again" "$r" '"ok":true'
memfd=
for f in /proc/$pid/fd/*; do
	case $(readlink "$f") in /memfd:*) memfd=$f ;; esac
done
[ -n "$memfd" ] || fail "no memfd among gmem-replay's fds"
printf 'XXXXXXXX' | dd of="$memfd" bs=1 seek=$((4096 * 7)) conv=notrunc 2>/dev/null ||
	fail "cannot write the memfd"
r=$(ctl "$s" '{"cmd":"verify"}')
expect "verify corrupted" "$r" '"ok":false' '"mismatches":1' '"first_bad_page":7' \
	'"found":"0x5858585858585858"'
r=$(ctl "$s" '{"cmd":"resume"}')
expect "resume again" "$r" '"ok":true'
r=$(ctl "$s" '{"cmd":"bogus"}')
expect "unknown command" "$r" '"ok":false' '"error":"unknown \"cmd\"'
r=$(ctl "$s" 'not json')
expect "garbage request" "$r" '"ok":false' '"error":"request is not a JSON object"'
r=$(ctl "$s" '{"cmd":"resume","state":{"step":999,"pos_in_step":0,"seq":1,"checksum":"0x1"}}')
expect "bad state" "$r" '"ok":false' 'does not fit this trace'
stop "$s"
expect "exit report" "$(cat "$dir/out.json")" '"mode":"source"' '"steps_done":' \
	'"step_time":{"count":' '"scale":"1/64"'

# --- an incoming destination waits for the source's state --------------------
d=$dir/dst.sock
start "$d" --incoming
r=$(ctl "$d" '{"cmd":"query"}')
expect "incoming query" "$r" '"state":"incoming"' '"nr_pages":10976'
r=$(ctl "$d" '{"cmd":"resume"}')
expect "incoming resume" "$r" '"ok":false' 'needs the source'
r=$(ctl "$d" '{"cmd":"pause"}')
expect "incoming pause" "$r" '"ok":false'
r=$(ctl "$d" '{"cmd":"verify"}')
expect "incoming verify" "$r" '"ok":false' 'incoming'
stop "$d"

# --- a bad trace: exit 2 and the line named -----------------------------------
printf 'segment 0 first 0 pages 8\nstep 0 dur_ns 0 ranges 0+8\nstep 1 dur_ns 9 ranges 7+5\ntotal_pages 8 page_size 4096\n' \
	>"$dir/bad.trace"
"$replay" --trace "$dir/bad.trace" --quiet >/dev/null 2>"$dir/err"
rc=$?
[ $rc -eq 2 ] || fail "bad trace: exit $rc, want 2"
grep -q 'bad.trace:3: range ends at page 12, beyond total_pages 8' "$dir/err" ||
	fail "bad trace: message"
"$replay" --trace "$dir/none.trace.gz" --quiet >/dev/null 2>"$dir/err"
[ $? -eq 2 ] || fail "missing trace: exit status"
echo "PASS"
