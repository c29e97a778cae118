# SPDX-License-Identifier: MIT
# The real GPU dirty-page traces that gmem-replay replays (format and capture
# in docs/traces.md): in the tarball, and installed where an installed
# gmem-replay looks for them by name.
tracesdir = $(pkgdatadir)/traces
dist_traces_DATA = traces/gpt2-train.trace.gz traces/llama-infer.trace.gz
EXTRA_DIST += docs/traces.md
