#!/bin/bash
# SPDX-License-Identifier: MIT
# vmm-qmp-migrate.sh - gmem-migrate --qmp moves an unmodified QEMU (TCG)
# between two network namespaces post-copy: its 128 MiB of guest RAM, a
# shared backend on /dev/shm, by gmem (the destination QEMU preloaded with
# libgmem-vmm.so), its device state by QEMU's own migration with
# x-ignore-shared. The guest (Debian's kernel, a busybox initramfs)
# copies 8 MiB of random bytes over and over and prints a heartbeat with
# the copy's md5 on its serial console. Asserted: the heartbeats go on at
# the destination with the checksum the guest printed at boot, the source
# QEMU stays stopped (postmigrate) with its memory unchanged, and a
# destination whose backend has another size is refused before the source
# QEMU is stopped (it runs on), as are QEMUs whose preflight fails (no
# shared memdev, no -incoming). Then gmem-migrate is killed mid post-copy,
# on the destination and on the source: the other side ends with a clear
# error, the destination QEMU's missing pages are poisoned (never zeros),
# and the source QEMU runs again (cont) with its memory as it was. Last, a
# guest's VRAM: a memdev behind an ivshmem-plain BAR is refused before the
# source stops; one as a NUMA node of memory and no CPU (128 MiB, beside
# 128 MiB of private RAM that QEMU moves) goes post-copy, and the guest
# finds every page of it as it wrote it, post-copy and stop-and-copy; and
# scripts/migrate-qemu runs. Skips,
# saying why, without QEMU, a kernel, a static busybox, cpio, socat, jq or
# network namespaces.
set -u
. "$(dirname "$0")/lib.sh"
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
migrate=$top_builddir/pager/gmem-migrate
lib=$(cd "$top_builddir" && pwd)/libgmem/vmm/.libs/libgmem-vmm.so

skip() {
	echo "SKIP: $*"
	exit 77
}
qemu=$(command -v qemu-system-x86_64) || skip "no qemu-system-x86_64"
kernel=$(guest_kernel "$top_builddir") ||
	skip "no readable guest kernel (GMEM_GUEST_KERNEL, scripts/setup's guest/vmlinuz or /boot/vmlinuz-*)"
busybox=$(command -v busybox) || skip "no busybox"
if command -v ldd >/dev/null && ldd "$busybox" >/dev/null 2>&1; then
	skip "$busybox is not static (busybox-static)"
fi
for tool in cpio socat jq ip timeout md5sum; do
	command -v "$tool" >/dev/null || skip "no $tool"
done
[ -w /dev/shm ] || skip "no writable /dev/shm"
[ -x "$migrate" ] && [ -r "$lib" ] || skip "gmem-migrate or libgmem-vmm.so not built"

dir=$(mktemp -d) || exit 99
ns=vq$$
ns_up=0
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.3
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ "$ns_up" = 0 ] || "$top_srcdir/scripts/netns" down "$ns"
	rm -rf "$dir" /dev/shm/gmem-qmp-*."$$"
}
trap cleanup EXIT INT TERM

fail() {
	local f
	echo "FAIL: $*"
	for f in "$dir"/*.log "$dir"/*.console; do
		[ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
	done
	# What a guest's kernel said that its last lines may not show.
	grep -H -m 5 -E 'GMEM-ERR|Out of memory|soft lockup|Kernel panic|BUG:' \
		"$dir"/*.console 2>/dev/null
	exit 1
}

"$top_srcdir/scripts/netns" up "$ns" 2>"$dir/netns.err"
case $? in
0) ns_up=1 ;;
77) skip "$(cat "$dir/netns.err")" ;;
*) echo "FAIL: netns: $(cat "$dir/netns.err")"; exit 1 ;;
esac
src_run=(ip netns exec "$ns-src") dst_run=(ip netns exec "$ns-dst")
head -c 32 /dev/urandom >"$dir/key" && chmod 600 "$dir/key" || exit 99

# The guest: 8 MiB of random bytes in its rootfs (guest RAM), their md5
# once, then a copy and the copy's md5 per heartbeat.
mkdir -p "$dir/root/bin" && cp "$busybox" "$dir/root/bin/busybox" || exit 99
cat >"$dir/root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /dev && mount -t devtmpfs dev /dev
dd if=/dev/urandom of=/data bs=1M count=8 2>/dev/null
echo "GMEM-SUM $(md5sum /data | cut -d' ' -f1)"
i=0
while :; do
	i=$((i + 1))
	cp /data /copy
	echo "GMEM-HB $i $(md5sum /copy | cut -d' ' -f1)"
done
EOF
chmod +x "$dir/root/init" &&
	(cd "$dir/root" && find . | cpio -o -H newc 2>/dev/null) >"$dir/initrd" ||
	exit 99

# qemu_start NAME NETNS-RUN SIZE [QEMU ARGS...]: a QEMU whose shared
# backend is /dev/shm/gmem-qmp-NAME.PID of SIZE: its RAM; with guest=vram
# its VRAM, a NUMA node of memory and no CPU (as coherent accelerators
# show theirs) beside 128 MiB of private RAM on the CPU's node; with
# guest=bar an ivshmem-plain BAR beside 128 MiB of private RAM. Its
# console NAME.console, monitor NAME.qmp.
guest=ram
qemu_start() {
	local name=$1 size=$3 shm=/dev/shm/gmem-qmp-$1.$$
	local -a run mem
	read -r -a run <<<"$2"
	shift 3
	case $guest in
	vram) mem=(-m $((128 + ${size%M}))M -object memory-backend-ram,id=ram0,size=128M
		   -numa node,nodeid=0,cpus=0,memdev=ram0
		   -object "memory-backend-file,id=vram,mem-path=$shm,size=$size,share=on"
		   -numa node,nodeid=1,memdev=vram -initrd "$dir/initrd-vram"
		   -append "console=ttyS0 panic=-1 quiet dirty_node=1 dirty_mib=24 dirty_pct=1") ;;
	bar) mem=(-m 128M -object "memory-backend-file,id=vram,mem-path=$shm,size=$size,share=on"
		  -device ivshmem-plain,id=gpu0,memdev=vram,master=on -initrd "$dir/initrd"
		  -append "console=ttyS0 panic=-1 quiet") ;;
	*) mem=(-m "$size" -object "memory-backend-file,id=ram0,mem-path=$shm,size=$size,share=on"
		-machine memory-backend=ram0 -initrd "$dir/initrd"
		-append "console=ttyS0 panic=-1 quiet") ;;
	esac
	# QEMU is not built with the sanitizers: its own leaks are not ours.
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		"${run[@]}" timeout 300 "$qemu" -nodefaults "${mem[@]}" \
		-kernel "$kernel" -display none -serial "file:$dir/$name.console" \
		-qmp "unix:$dir/$name.qmp,server=on,wait=off" -no-reboot "$@" \
		>"$dir/qemu-$name.log" 2>&1 &
	pids+=($!)
}

# qmp_query SOCKET COMMAND: the "return" of one QMP command, as JSON.
qmp_query() {
	printf '{"execute":"qmp_capabilities"}\n{"execute":"%s"}\n' "$2" |
		socat -t 2 - "UNIX-CONNECT:$1" | jq -c 'select(.return) | .return' |
		tail -n 1
}

heartbeats() { cat "$1" 2>/dev/null | grep -c '^GMEM-HB'; }
at_least() { [ "$(heartbeats "$1")" -ge "$2" ]; }

qemu_start src "${src_run[*]}" 128M
src_qemu=${pids[-1]}
wait_until 120 "$src_qemu" at_least "$dir/src.console" 2 ||
	fail "the source guest did not start its heartbeat"
sum=$(sed -n 's/^GMEM-SUM \([0-9a-f]*\).*/\1/p' "$dir/src.console")
[ -n "$sum" ] || fail "the guest printed no checksum"

port=$((20000 + $$ % 20000))
qemu_uri=tcp:10.77.0.2:$((port + 1))
# dest_start NAME SIZE PORT [WAIT-MS [CONNECT]]: gmem-migrate dest (to
# 10.77.0.1:PORT or CONNECT), then its QEMU preloaded.
dest_start() {
	local name=$1
	"${dst_run[@]}" timeout 300 "$migrate" dest --qmp "$dir/$name.qmp" \
		--qemu-uri "tcp:10.77.0.2:$(($3 + 1))" \
		--uffd-socket "$dir/$name.uffd" --connect "${5:-10.77.0.1:$3}" \
		--key-file "$dir/key" --wait-ms "${4:-60000}" -q "${extra[@]}" \
		>"$dir/$name.json" 2>"$dir/$name-migrate.log" &
	pids+=($!)
	dest_migrate=$!
	wait_until 30 "$dest_migrate" grep -q "waiting for a VMM" \
		"$dir/$name-migrate.log" ||
		fail "gmem-migrate dest did not wait for its QEMU"
	GMEM_VMM_PATHS=/dev/shm/gmem-qmp-$name.$$ \
		GMEM_VMM_SOCKET=$dir/$name.uffd GMEM_VMM_REQUIRED=1 \
		LD_PRELOAD=$(preload_list "$lib") qemu_start "$name" "${dst_run[*]}" "$2" \
		-incoming defer
	dest_qemu=${pids[-1]}
}
# source_start NAME PORT WAIT-MS: gmem-migrate source of the source QEMU
# ($srcq.qmp).
# Both sides take the options in extra too.
extra=() srcq=src
source_start() {
	"${src_run[@]}" timeout 300 "$migrate" source --qmp "$dir/$srcq.qmp" \
		--qemu-uri "tcp:10.77.0.2:$(($2 + 1))" \
		--listen "10.77.0.1:$2" --key-file "$dir/key" --wait-ms "$3" \
		--keep-source -q "${extra[@]}" >"$dir/$1-source.json" \
		2>"$dir/$1-source-migrate.log" &
	pids+=($!)
	src_migrate=$!
}

# 0. Preflight of one side's QEMU, before anything moves: exit 3 and the
# reason. A source QEMU without a shared memdev (private RAM), or asked
# for a memdev it lacks; a destination QEMU not waiting in -incoming.
"${src_run[@]}" timeout 60 "$qemu" -m 64M -nodefaults -display none \
	-qmp "unix:$dir/plain.qmp,server=on,wait=off" >"$dir/qemu-plain.log" 2>&1 &
pids+=($!)
plain_qemu=$!
# refused NAME WANT CMD...: exit 3 and WANT in the last line of stderr.
refused() {
	local name=$1 want=$2 rc
	shift 2
	"$@" >"$dir/$name.json" 2>"$dir/$name.log"
	rc=$?
	[ $rc = 3 ] || fail "$name: exit $rc, want 3"
	tail -n 1 "$dir/$name.log" | grep -qF -- "$want" ||
		fail "$name: does not say '$want'"
	echo "preflight: $(tail -n 1 "$dir/$name.log")"
}
wait_until 30 "$plain_qemu" test -S "$dir/plain.qmp" ||
	fail "the QEMU without a shared memdev did not start"
refused private "QEMU has no shared memdev" "${src_run[@]}" "$migrate" \
	source --qmp "$dir/plain.qmp" --qemu-uri tcp:10.77.0.2:1 \
	--listen 10.77.0.1:0 --insecure -q
refused nosuch "QEMU has no memdev 'nosuch'" "${src_run[@]}" "$migrate" \
	source --qmp "$dir/src.qmp" --memdev nosuch \
	--qemu-uri tcp:10.77.0.2:1 --listen 10.77.0.1:0 --insecure -q
"${dst_run[@]}" "$migrate" dest --qmp "$dir/early.qmp" \
	--qemu-uri tcp:10.77.0.2:1 --uffd-socket "$dir/early.uffd" \
	--connect 10.77.0.1:1 --insecure -q >"$dir/early.json" \
	2>"$dir/early-migrate.log" &
early=$!
wait_until 30 "$early" grep -q "waiting for a VMM" "$dir/early-migrate.log" ||
	fail "gmem-migrate dest did not wait for its QEMU"
GMEM_VMM_PATHS=/dev/shm/gmem-qmp-early.$$ GMEM_VMM_SOCKET=$dir/early.uffd \
	LD_PRELOAD=$(preload_list "$lib") qemu_start early "${dst_run[*]}" 128M -S
wait "$early"
rc=$?
[ $rc = 3 ] || fail "dest of a QEMU without -incoming: exit $rc, want 3"
grep -q "not waiting for an incoming migration" "$dir/early-migrate.log" ||
	fail "dest does not say its QEMU is not waiting for a migration"
echo "preflight: $(tail -n 1 "$dir/early-migrate.log")"
kill "${pids[-1]}" "$plain_qemu" 2>/dev/null
[ "$(qmp_query "$dir/src.qmp" query-status | jq -r .status)" = running ] ||
	fail "the source QEMU is not running after the refused preflights"

# 1. A destination with 64 MiB against the source's 128 MiB: refused
# before the source QEMU stops.
dest_start small 64M "$port"
source_start small "$port" 10000
wait "$dest_migrate"
drc=$?
wait "$src_migrate"
src_rc=$?
[ $drc != 0 ] && [ $src_rc != 0 ] ||
	fail "a 64 MiB destination was not refused (dest $drc, source $src_rc)"
grep -q "region has 32768 pages of 4096 bytes, this one 16384" "$dir/small-migrate.log" ||
	fail "the destination did not say the sizes differ"
[ "$(qmp_query "$dir/src.qmp" query-migrate | jq -r '.status // "none"')" = none ] ||
	fail "the source QEMU began a migration: it was stopped"
[ "$(qmp_query "$dir/src.qmp" query-status | jq -r .status)" = running ] ||
	fail "the source QEMU is not running after the refusal"
n=$(heartbeats "$dir/src.console")
wait_until 30 "$src_qemu" at_least "$dir/src.console" $((n + 1)) ||
	fail "the source guest stopped after the refusal"
kill "$dest_qemu" 2>/dev/null
wait "$dest_qemu" 2>/dev/null
echo "refused: $(tail -n 1 "$dir/small-migrate.log")"
echo "source: $(tail -n 1 "$dir/small-source-migrate.log")"

# migrated WHAT NAME SIZE [SOURCE OPTIONS...]: one migration of the source
# QEMU to a new destination NAME of SIZE, both sides exiting 0.
migrated() {
	local what=$1 name=$2 size=$3 src_rc drc
	shift 3
	port=$((port + 2))
	dest_start "$name" "$size" "$port"
	extra=("$@")
	source_start "$name" "$port" 60000
	extra=()
	wait "$src_migrate"
	src_rc=$?
	wait "$dest_migrate"
	drc=$?
	[ $src_rc = 0 ] && [ $drc = 0 ] ||
		fail "$what: migration failed (source $src_rc, dest $drc)"
}

# 2. Post-copy to a 128 MiB destination.
migrated post-copy dst 128M
before=$(heartbeats "$dir/src.console")
jq -e '.qemu.version and .mode == "postcopy"' "$dir/dst.json" >/dev/null ||
	fail "the dest report has no QEMU facts"
# Every page of the 128 MiB came from gmem, the guest's on demand, and
# the digests were compared.
jq -e '.urgent_pages > 0 and .urgent_pages + .pushed_pages +
	.prefetched_pages >= 32768 and .mismatches == 0' "$dir/dst.json" \
	>/dev/null || fail "the destination's pages did not come by gmem post-copy: $(jq -c '{urgent_pages, pushed_pages, prefetched_pages, mismatches}' "$dir/dst.json")"
wait_until 120 "$dest_qemu" at_least "$dir/dst.console" 3 ||
	fail "the guest's heartbeat did not go on at the destination"
bad=$(tr -d '\r' <"$dir/dst.console" | grep '^GMEM-HB' | grep -vc " $sum\$")
[ "$bad" = 0 ] || fail "$bad heartbeats at the destination with another checksum than $sum"
[ "$(qmp_query "$dir/src.qmp" query-status | jq -r .status)" = postmigrate ] ||
	fail "the source QEMU is not stopped after the migration"
[ "$(heartbeats "$dir/src.console")" = "$before" ] ||
	fail "the source guest went on after the migration"
h1=$(md5sum </dev/shm/gmem-qmp-src.$$)
sleep 1
[ "$(md5sum </dev/shm/gmem-qmp-src.$$)" = "$h1" ] ||
	fail "the source QEMU's memory changed after the migration"
echo "migrated: $(heartbeats "$dir/dst.console") heartbeats at the destination," \
     "checksum $sum;" "$(jq -c '{switchover_ms, total_s, urgent_pages, pushed_pages, qemu_downtime_ms: .qemu.source.qemu_downtime_ms}' "$dir/dst.json")"
kill "$dest_qemu" 2>/dev/null
wait "$dest_qemu" 2>/dev/null

# source_back WHAT: the source QEMU, stopped since the switchover, runs
# again (cont) with the memory it had: its guest's heartbeats go on with
# the checksum of its boot.
source_back() {
	local n
	qmp_query "$dir/src.qmp" cont >/dev/null
	[ "$(qmp_query "$dir/src.qmp" query-status | jq -r .status)" = running ] ||
		fail "$1: the source QEMU does not run again (cont)"
	n=$(heartbeats "$dir/src.console")
	wait_until 60 "$src_qemu" at_least "$dir/src.console" $((n + 2)) ||
		fail "$1: the source guest did not go on"
	bad=$(tr -d '\r' <"$dir/src.console" | grep '^GMEM-HB' | grep -vc " $sum\$")
	[ "$bad" = 0 ] || fail "$1: the source guest's checksum changed"
}
source_back "after the migration"

# 3-4. gmem killed on one side mid post-copy, its pages slowed by a proxy
# (2 ms per 64 KiB: some 4 s for the 128 MiB). The other side ends with a
# clear error within its --wait-ms; the source QEMU keeps its memory.
proxy=$top_builddir/tests/faults/faultproxy
[ -x "$proxy" ] || fail "tests/faults/faultproxy not built"
# arrived FILE KIB: FILE holds at least KIB KiB.
arrived() {
	local blocks
	blocks=$(stat -c %b "$1" 2>/dev/null) && [ $((blocks / 2)) -ge "$2" ]
}
# killed SIDE NAME: migrates through the proxy and kills gmem-migrate on
# SIDE (source or dest) once 12 of the 128 MiB have arrived.
killed() {
	local side=$1 name=$2 rc_src rc_dst last
	port=$((port + 2))
	"${dst_run[@]}" "$proxy" --listen "127.0.0.1:$((port + 100))" \
		--to "10.77.0.1:$port" --delay-ms 2 >"$dir/$name-proxy.out" \
		2>"$dir/$name-proxy.log" &
	pids+=($!)
	wait_until 10 "${pids[-1]}" grep -q ready "$dir/$name-proxy.out" ||
		fail "$name: the proxy did not start"
	extra=(--recover-ms 3000)
	# The source first: the proxy does not retry its connect.
	source_start "$name" "$port" 20000
	wait_until 30 "$src_migrate" sh -c \
		"ip netns exec $ns-src ss -Hltn 'sport = :$port' | grep -q ." ||
		fail "$name: the source did not listen"
	dest_start "$name" 128M "$port" 3000 "127.0.0.1:$((port + 100))"
	# Pages reach the destination's backend only after the switchover.
	wait_until 120 "$dest_qemu" arrived "/dev/shm/gmem-qmp-$name.$$" 12288 ||
		fail "$name: no post-copy at the destination"
	# timeout(1) runs gmem-migrate as its child.
	if [ "$side" = source ]; then pkill -9 -P "$src_migrate"; else pkill -9 -P "$dest_migrate"; fi
	wait "$src_migrate"
	rc_src=$?
	wait "$dest_migrate"
	rc_dst=$?
	extra=()
	arrived "/dev/shm/gmem-qmp-$name.$$" 131072 &&
		fail "$name: all 128 MiB had arrived before the kill"
	[ $rc_src != 0 ] && [ $rc_dst != 0 ] ||
		fail "$name: a side exited 0 (source $rc_src, dest $rc_dst)"
	echo "$name: source exit $rc_src, dest exit $rc_dst"
	# The side left says why, in one line.
	if [ "$side" = source ]; then
		last=$(tail -n 1 "$dir/$name-migrate.log") side=dest
	else
		last=$(tail -n 1 "$dir/$name-source-migrate.log") side=source
	fi
	grep -q "gmem-migrate: $side: " <<<"$last" ||
		fail "$name: the $side did not say why it ended: $last"
	echo "$name: $last"
}

killed dest kd
# QEMU may die of the SIGBUS that follows: the line comes first.
wait_until 10 "$dest_qemu" grep -q "gmem went away while serving; poisoning" \
	"$dir/qemu-kd.log" ||
	fail "kd: the destination QEMU did not poison its missing pages"
echo "kd: $(grep -m1 'libgmem-vmm: ' "$dir/qemu-kd.log")"
kill "$dest_qemu" 2>/dev/null
wait "$dest_qemu" 2>/dev/null
source_back "gmem dest killed"

killed source ks
kill "$dest_qemu" 2>/dev/null
wait "$dest_qemu" 2>/dev/null
source_back "gmem source killed"
kill "$src_qemu" 2>/dev/null
wait "$src_qemu" 2>/dev/null

# 5. VRAM: the guest's workload (bench/qemu-guest/dirty.c, its PID 1)
# keeps 24 MiB on its VRAM node (128 MiB, the shared backend: a kernel
# keeps up to 40 MiB of a node for itself), rewrites 1%
# of those pages a millisecond and checks them against the write counts it
# keeps in its 128 MiB of private RAM. gmem moves the VRAM post-copy,
# QEMU's own migration the RAM: after the resume the guest's sweeps find
# every page as its RAM says it wrote it.
"$top_srcdir/bench/qemu-guest/make-initrd" "$dir/initrd-vram" ||
	fail "cannot build the guest workload's initramfs"
# vram_beats CONSOLE: the workload's heartbeats (GMEM-HB SEQ SWEEPS BAD).
vram_beats() { tr -d "\r" 2>/dev/null <"$1" | grep '^GMEM-HB '; }
has_beat() { vram_beats "$1" | grep -q .; }
sweeps_at_least() { [ "$(vram_beats "$1" | tail -n 1 | cut -d' ' -f3)" -ge "$2" ] 2>/dev/null; }
# A VRAM BAR cannot go by gmem: QEMU checks an ignored block's guest
# address as it loads RAM, before the destination has its PCI devices'
# state. Refused before the source QEMU stops.
guest=bar
qemu_start bar "${src_run[*]}" 64M
wait_until 30 "${pids[-1]}" test -S "$dir/bar.qmp" || fail "the BAR guest did not start"
refused bar "backs device gpu0 (ivshmem-plain), not guest RAM" "${src_run[@]}" \
	"$migrate" source --qmp "$dir/bar.qmp" --qemu-uri tcp:10.77.0.2:1 \
	--listen 10.77.0.1:0 --insecure -q
[ "$(qmp_query "$dir/bar.qmp" query-status | jq -r .status)" = running ] ||
	fail "the BAR guest's QEMU is not running after the refusal"
kill "${pids[-1]}" 2>/dev/null

# vram_checked WHAT NAME: the guest at destination NAME swept its VRAM
# once more than at the source ($s0) and never found a page it did not
# write.
vram_checked() {
	s0=$(vram_beats "$dir/vsrc.console" | tail -n 1 | cut -d' ' -f3)
	wait_until 300 "$dest_qemu" sweeps_at_least "$dir/$2.console" $((s0 + 1)) ||
		fail "$1: the guest did not sweep its VRAM at the destination"
	[ "$(vram_beats "$dir/$2.console" | awk '$4 != 0' | wc -l)" = 0 ] ||
		fail "$1: the guest found pages of its VRAM it did not write"
}

guest=vram srcq=vsrc
qemu_start vsrc "${src_run[*]}" 128M
src_qemu=${pids[-1]}
# Its first heartbeat comes once it has written every page of its 24 MiB.
wait_until 300 "$src_qemu" has_beat "$dir/vsrc.console" ||
	fail "vram: the source guest did not start its workload"
migrated vram vdst 128M
jq -e '.qemu.memdev == "vram" and .urgent_pages + .pushed_pages +
	.prefetched_pages >= 32768 and .mismatches == 0' "$dir/vdst.json" \
	>/dev/null || fail "vram: the VRAM did not come by gmem: $(jq -c '{memdev: .qemu.memdev, urgent_pages, pushed_pages, prefetched_pages, mismatches}' "$dir/vdst.json")"
vram_checked vram vdst
echo "vram: sweep $s0 at the source, $(vram_beats "$dir/vdst.console" | tail -n 1 | cut -d' ' -f3) at the destination, no page wrong;" \
     "$(jq -c '{switchover_ms, total_s, urgent_pages, pushed_pages}' "$dir/vdst.json")"
kill "$dest_qemu" 2>/dev/null
wait "$dest_qemu" 2>/dev/null

# 6. The same guest again, stop-and-copy: every page of its VRAM reaches
# the destination before it resumes.
qmp_query "$dir/vsrc.qmp" cont >/dev/null
n=$(vram_beats "$dir/vsrc.console" | wc -l)
wait_until 60 "$src_qemu" sh -c "[ \$(grep -c '^GMEM-HB ' '$dir/vsrc.console') -gt $((n + 2)) ]" ||
	fail "stop-and-copy: the source guest did not go on"
migrated stop-and-copy vsc 128M --mode stop-and-copy
jq -e '.mode == "stop-and-copy" and .urgent_pages == 0 and .pushed_pages == 0 and
	.mismatches == 0' "$dir/vsc.json" >/dev/null ||
	fail "stop-and-copy: pages came after the resume: $(jq -c '{mode, urgent_pages, pushed_pages, mismatches}' "$dir/vsc.json")"
vram_checked stop-and-copy vsc
echo "stop-and-copy: no page wrong;" \
     "$(jq -c '{switchover_ms, total_s, freeze_pages, mismatches}' "$dir/vsc.json")"
kill "$dest_qemu" "$src_qemu" 2>/dev/null
wait "$dest_qemu" "$src_qemu" 2>/dev/null

# 7. What the README shows: scripts/migrate-qemu, one migration of its own
# guest, ends with the guest's check at the destination.
GMEM_GUEST_KERNEL=$kernel "$top_srcdir/scripts/migrate-qemu" --mem 64 --quiet \
	--build "$top_builddir" >"$dir/script.json" 2>"$dir/script.log" ||
	fail "scripts/migrate-qemu failed: $(tail -n 1 "$dir/script.log")"
jq -e '.ok and .mismatches == 0' "$dir/script.json" >/dev/null ||
	fail "scripts/migrate-qemu: no good report"
echo "scripts/migrate-qemu: $(tail -n 1 "$dir/script.log")"
exit 0
