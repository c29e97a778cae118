#!/bin/sh
# SPDX-License-Identifier: MIT
# Encryption on the wire, between two network namespaces joined by a veth
# pair (created here, removed on exit): gmem-pager serves a file of a known
# page pattern in one, pager-client pages it in from the other through a
# forwarding proxy that records every byte the server sends (and can flip
# one). With a key the pattern never appears on the wire and the file
# arrives intact; with --insecure and no key it does appear (so the check
# can fail); a byte flipped on the path is refused as a frame that failed
# authentication (-EBADMSG), the session fails and the push stops there. Exit 77
# (skip) where namespaces or python3 are not available.
set -u
. "$(dirname "$0")/lib.sh"
builddir=${top_builddir:-.}
pager=$builddir/pager/gmem-pager
client=$builddir/tests/pager-client
ns_a=gmem-ca-$$
ns_b=gmem-cb-$$
tmp=$(mktemp -d) || exit 99
pager_pid= proxy_pid=

cleanup() {
	[ -n "$pager_pid" ] && kill "$pager_pid" 2>/dev/null
	[ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
	ip netns del "$ns_a" 2>/dev/null
	ip netns del "$ns_b" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

skip() {
	echo "SKIP: $*"
	exit 77
}

command -v python3 >/dev/null || skip "no python3 (the recording proxy)"
netns_pair "$ns_a" "$ns_b" gmc-$$ 10.202.7 || exit $?

# 8 MiB of one 32-byte pattern: any 32 bytes of a page in the clear show.
pattern=GMEM-PAGE-PATTERN-SEEN-IN-CLEAR!
python3 -c "import sys; sys.stdout.write(sys.argv[1] * (8 << 15))" \
	"$pattern" >"$tmp/image" || exit 99
printf 'a-key-the-two-hosts-share-%s\n' "$$" >"$tmp/key"
chmod 600 "$tmp/key"

# The proxy, in the destination's namespace: forwards 10.202.7.2:7500 to
# the server, appends what the server sends to $tmp/wire, and with
# FLIP_AT=B flips the byte at offset B of the second connection (the first
# bulk one) from the server.
cat >"$tmp/proxy.py" <<'PY'
import os, socket, sys, threading
flip = int(os.environ.get("FLIP_AT", "-1"))
wire = open(sys.argv[1], "ab", buffering=0)
lock = threading.Lock()
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("10.202.7.2", 7500)); ls.listen(16)
print("ready", flush=True)
def pump(src, dst, record, idx):
    seen = 0
    while True:
        b = src.recv(1 << 16)
        if not b:
            break
        if record and idx == 1 and seen <= flip < seen + len(b):
            b = bytearray(b); b[flip - seen] ^= 0x40; b = bytes(b)
        seen += len(b)
        if record:
            with lock:
                wire.write(b)
        dst.sendall(b)
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
idx = 0
while True:
    c, _ = ls.accept()
    s = socket.create_connection(("10.202.7.1", 7411))
    threading.Thread(target=pump, args=(c, s, False, idx), daemon=True).start()
    threading.Thread(target=pump, args=(s, c, True, idx), daemon=True).start()
    idx += 1
PY

# run NAME [FLIP_AT] -- PAGER OPTIONS: one pager and one client through the
# proxy; $rc, $prc their exit codes, the wire in $tmp/wire.
run() {
	name=$1 flip=$2
	shift 3
	: >"$tmp/wire"
	FLIP_AT=$flip ip netns exec "$ns_b" python3 "$tmp/proxy.py" "$tmp/wire" \
		>"$tmp/proxy.log" 2>&1 &
	proxy_pid=$!
	ip netns exec "$ns_a" "$pager" --listen 10.202.7.1:7411 \
		--file "$tmp/image" --wait-ms 20000 "$@" >"$tmp/pager.log" 2>&1 &
	pager_pid=$!
	wait_until 10 "$pager_pid" grep -q "serving" "$tmp/pager.log" &&
		wait_until 10 "$proxy_pid" grep -q ready "$tmp/proxy.log" ||
		{ echo "FAIL: $name: did not start"; cat "$tmp"/*.log; exit 1; }
	key=
	[ -z "${1:-}" ] || [ "$1" = --insecure ] || key=$(head -n1 "$tmp/key")
	GMEM_KEY=$key timeout 60 ip netns exec "$ns_b" "$client" --mode idle \
		--compare "$tmp/image" 10.202.7.2:7500 >"$tmp/client.json" \
		2>"$tmp/client.err"
	rc=$?
	wait "$pager_pid"
	prc=$?
	pager_pid=
	kill "$proxy_pid" 2>/dev/null
	wait "$proxy_pid" 2>/dev/null
	proxy_pid=
	echo "$name: client $rc, pager $prc, $(wc -c <"$tmp/wire") bytes from the server"
	cat "$tmp/client.json" "$tmp/client.err"
}

on_wire() {
	grep -qF "$pattern" "$tmp/wire"
}

fail=0
run keyed -1 -- --key-file "$tmp/key"
[ $rc = 0 ] && [ $prc = 0 ] && grep -q '"file_equal":true' "$tmp/client.json" ||
	{ echo "FAIL: keyed: not served in full"; fail=1; }
[ "$(wc -c <"$tmp/wire")" -gt 8000000 ] || { echo "FAIL: keyed: wire not recorded"; fail=1; }
! on_wire || { echo "FAIL: keyed: page pattern in the clear on the wire"; fail=1; }

run insecure -1 -- --insecure
[ $rc = 0 ] && [ $prc = 0 ] || { echo "FAIL: insecure: not served"; fail=1; }
on_wire || { echo "FAIL: insecure: the pattern is not on the wire (the check cannot see it)"; fail=1; }

# A byte flipped in a pushed frame's ciphertext: refused, nothing of it
# installed, the file not completed, both sides fail.
run tampered 300000 -- --key-file "$tmp/key"
[ $rc != 0 ] && [ $prc != 0 ] || { echo "FAIL: tampered: a session completed"; fail=1; }
grep -q "failed authentication" "$tmp/client.err" ||
	{ echo "FAIL: tampered: the destination did not say the frame failed authentication"; fail=1; }
# -EBADMSG, and the push stopped at the frame: not every page came.
grep -q '"result":-74,' "$tmp/client.json" &&
	! grep -q '"pushed_pages":2048,' "$tmp/client.json" ||
	{ echo "FAIL: tampered: not refused as -EBADMSG before the end"; fail=1; }
cat "$tmp/pager.log"
exit $fail
