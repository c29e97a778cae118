#!/bin/bash
# SPDX-License-Identifier: MIT
# torch-migrate.sh - an ordinary PyTorch training job (examples/torch-migrate,
# gmem.torch) migrated between two processes, post-copy and stop-and-copy,
# beside torch.save/load: every loss after the migration must equal an
# unmigrated run's although the destination's tensors were NaN until
# restored (a tensor read before it arrived would show), and the region
# must hold exactly the parameters, buffers and AdamW state, page-rounded:
# no gradients, no allocator cache. Exit 77 = skipped, with the reason: no
# PyTorch, no GPU.
set -euo pipefail
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}

skip() {
	echo "SKIP: $*"
	exit 77
}
python3 -c 'import torch' 2>/dev/null || skip "PyTorch is not installed"
python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' ||
	skip "no CUDA device visible to PyTorch"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export GMEM_LIB_DIR=$top_builddir/libgmem/.libs
python3 "$top_srcdir/bench/torch-migrate" --bin "$top_builddir/pager" \
	--shapes tiny --at 4 --more 6 --dir "$dir" >"$dir/rows.jsonl"
cat "$dir/rows.jsonl"
# The region's size from the model itself: parameters and buffers once,
# AdamW's exp_avg and exp_avg_sq per parameter.
PYTHONPATH=$top_srcdir/examples/torch-migrate python3 - "$dir/rows.jsonl" <<'PY'
import argparse, json, sys
import train
rows = [json.loads(line) for line in open(sys.argv[1])]
model, _ = train.build(argparse.Namespace(layers=2, d=256, heads=4,
                                          vocab=4096, ctx=128, seed=1))
pg = lambda t: (t.numel() * t.element_size() + 4095) // 4096 * 4096
want = (sum(3 * pg(p) for p in model.parameters()) +
        sum(pg(b) for b in model.buffers()))
for r in rows:
    if "image_bytes" in r and r["image_bytes"] != want:
        sys.exit("%s: region of %d bytes, want %d (parameters, buffers, "
                 "AdamW state)" % (r["mode"], r["image_bytes"], want))
print("region of %d bytes in every run" % want)
PY
