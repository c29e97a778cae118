#!/bin/bash
# SPDX-License-Identifier: MIT
# cuda-torch.sh - the PyTorch demo end to end: a small GPT trains with its
# parameters, gradients and AdamW state in one device buffer mirrored into a
# region, gmem-migrate moves it to a second process, and every loss after
# the migration must equal an unmigrated run's (examples/torch-migrate).
# Exit 77 = skipped, with the reason: no --with-cuda build, no PyTorch, no
# GPU.
set -euo pipefail
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
cuda_lib=$top_builddir/libgmem/cuda/.libs/libgmem-cuda.so

skip() {
	echo "SKIP: $*"
	exit 77
}
[ -e "$cuda_lib" ] || skip "libgmem-cuda not built (configure --with-cuda, needs nvcc)"
python3 -c 'import torch' 2>/dev/null || skip "PyTorch is not installed"
python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' ||
	skip "no CUDA device visible to PyTorch"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# A small model keeps the test short; the full-size run is in README.md.
GMEM_LIB_DIR=$top_builddir/libgmem/.libs:$top_builddir/libgmem/cuda/.libs \
	python3 "$top_srcdir/examples/torch-migrate/run-demo.py" \
	--bin "$top_builddir/pager" --at 4 --more 6 --dir "$dir" \
	--model --layers 2 --d 256 --heads 4 --vocab 4096 --ctx 128
