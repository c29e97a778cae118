# SPDX-License-Identifier: MIT
"""gmem_trace - record the GPU dirty-page trace of a PyTorch job for gmem-replay.

At each observation (a training step, a few decode tokens) every page of the
CUDA caching allocator's segments is fingerprinted on the GPU; only the pages
whose fingerprint changed since the previous observation cross to the host, as
runs of page numbers. The trace format is described in docs/traces.md.

As a library::

    from gmem_trace import TraceCapture
    with TraceCapture("job.trace.gz") as cap:
        for batch in data:
            train_step(batch)
            cap.step()          # the first call records the image (step 0)

As a program: ``gmem-trace-capture --output FILE -- train.py ARGS...`` (or
``python3 -m gmem_trace ...``) observes after every optimizer step, or after
every outermost module forward with ``--at forward``.
"""
import argparse
import gzip
import os
import runpy
import sys
import time

__all__ = ["TraceWriter", "TraceCapture", "TorchSource", "runs_of", "main"]

PAGE_SIZE = 4096


def _check_page_size(page_size):
    if (not isinstance(page_size, int) or page_size < 512 or
            page_size > 1 << 30 or page_size & (page_size - 1)):
        raise ValueError(f"page size {page_size!r}: a power of two in 512..1G")


def runs_of(pages):
    """Ascending page numbers as (first, count) runs of consecutive pages."""
    runs = []
    for p in pages:
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    return [tuple(r) for r in runs]


class TraceWriter:
    """Writes one trace file: segment, step and total_pages lines (gzip).

    Every check gmem-replay makes is made here when a line is written, so a
    file this writer completes is one gmem-replay replays. The file appears
    under its name only once close() succeeds (until then PATH.part).
    """

    def __init__(self, path, page_size=PAGE_SIZE):
        _check_page_size(page_size)
        self.path = path
        self.page_size = page_size
        self.total_pages = 0
        self.nr_segments = 0
        self.nr_steps = 0
        self._part = path + ".part"
        self._f = gzip.open(self._part, "wt", encoding="ascii")

    def segment(self, nr_pages):
        """A new segment of @nr_pages pages, after the others; its first page."""
        if not isinstance(nr_pages, int) or nr_pages < 1:
            raise ValueError(f"segment of {nr_pages!r} pages")
        first = self.total_pages
        self._f.write(f"segment {self.nr_segments} first {first} "
                      f"pages {nr_pages}\n")
        self.nr_segments += 1
        self.total_pages += nr_pages
        return first

    def step(self, dur_ns, runs):
        """The next observation: @runs (first, count) written, ascending.

        @dur_ns is the job's time since the previous observation; 0 for
        step 0, the image.
        """
        if not isinstance(dur_ns, int) or dur_ns < 0:
            raise ValueError(f"dur_ns {dur_ns!r}")
        if self.nr_steps == 0 and dur_ns:
            raise ValueError("step 0 (the image) has dur_ns 0")
        merged, end = [], 0
        for first, count in runs:
            if first < end or count < 1 or first + count > self.total_pages:
                raise ValueError(f"step {self.nr_steps}: run {first}+{count} "
                                 f"out of order or beyond {self.total_pages} "
                                 "pages")
            if merged and first == end:     # runs that touch: one range
                merged[-1][1] += count
            else:
                merged.append([first, count])
            end = first + count
        self._f.write(f"step {self.nr_steps} dur_ns {dur_ns} ranges" +
                      "".join(f" {f}+{n}" for f, n in merged) + "\n")
        self.nr_steps += 1

    def close(self):
        """Ends the file with its total_pages line and gives it its name."""
        if self.nr_steps < 2 or not self.total_pages:
            self.abort()
            raise ValueError(f"{self.path}: {self.nr_steps} observation(s) of "
                             f"{self.total_pages} pages: a trace needs the "
                             "image and at least one step")
        self._f.write(f"total_pages {self.total_pages} "
                      f"page_size {self.page_size}\n")
        self._f.close()
        os.replace(self._part, self.path)

    def abort(self):
        """Drops the unfinished file."""
        self._f.close()
        try:
            os.unlink(self._part)
        except FileNotFoundError:
            pass


class _DeviceSpan:
    """Device memory as torch.as_tensor() takes it (CUDA array interface)."""

    def __init__(self, addr, nbytes):
        self.__cuda_array_interface__ = {
            "shape": (nbytes // 8,), "typestr": "<i8",
            "data": (addr, False), "version": 2,
        }


def _s64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


class TorchSource:
    """The caching allocator's segments of one GPU, fingerprinted there.

    A page's fingerprint is a sum of its mixed 8-byte words, computed with
    torch on the GPU @chunk_bytes at a time. Everything the fingerprinting
    allocates (digests, scratch) lives in a private memory pool whose
    segments are left out of the trace, so observing does not change what is
    observed. Needs PyTorch with torch.cuda.MemPool.
    """

    def __init__(self, device=None, chunk_bytes=64 << 20):
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device for PyTorch")
        if not hasattr(torch.cuda, "MemPool"):
            raise RuntimeError("PyTorch without torch.cuda.MemPool: "
                               "a newer PyTorch is needed")
        self.torch = torch
        self.device = torch.device(
            "cuda", torch.cuda.current_device() if device is None else device)
        self.chunk_bytes = chunk_bytes
        self.pool = torch.cuda.MemPool()
        self._digests = {}

    def synchronize(self):
        self.torch.cuda.synchronize(self.device)

    def segments(self):
        own = tuple(self.pool.id)
        return [(s["address"], s["total_size"])
                for s in self.torch.cuda.memory_snapshot()
                if s["device"] == self.device.index and
                tuple(s.get("segment_pool_id", ())) != own]

    def forget(self, key):
        self._digests.pop(key, None)

    def changed(self, key, addr, nr_pages, page_size):
        """Runs of pages of the segment @key whose fingerprint changed since
        the last call for @key (all pages on the first)."""
        torch = self.torch
        words = page_size // 8
        with torch.cuda.use_mem_pool(self.pool, self.device):
            mem = torch.as_tensor(_DeviceSpan(addr, nr_pages * page_size),
                                  device=self.device).view(nr_pages, words)
            salt = torch.arange(words, dtype=torch.int64, device=self.device)
            salt *= _s64(0x9E3779B97F4A7C15)
            digest = torch.empty(nr_pages, dtype=torch.int64,
                                 device=self.device)
            per = max(1, self.chunk_bytes // page_size)
            for i in range(0, nr_pages, per):
                x = mem[i:i + per] ^ salt
                x *= _s64(0xBF58476D1CE4E5B9)
                x ^= x >> 31
                torch.sum(x, dim=1, out=digest[i:i + per])
            old = self._digests.get(key)
            self._digests[key] = digest
            if old is None:
                return [(0, nr_pages)]
            idx = torch.nonzero(digest != old).flatten()
            if not idx.numel():
                return []
            cut = torch.nonzero(idx[1:] != idx[:-1] + 1).flatten()
            starts = torch.cat([idx[:1], idx[cut + 1]])
            ends = torch.cat([idx[cut], idx[-1:]])
            return list(zip(starts.tolist(), (ends - starts + 1).tolist()))


class TraceCapture:
    """Observes a source's segments at each step() into a TraceWriter.

    Pages number the segments in the order they first appear. A segment
    that goes away (torch.cuda.empty_cache()) is not observed until it comes
    back at the same address and size, then as written entirely. Not
    thread-safe: call step() from the thread that runs the job.
    """

    def __init__(self, path, page_size=PAGE_SIZE, source=None,
                 clock=time.perf_counter_ns):
        self._writer = TraceWriter(path, page_size)
        self._source = source
        self._clock = clock
        self._layout = {}   # (address, size) -> first page
        self._last = None

    @property
    def observations(self):
        return self._writer.nr_steps

    def step(self):
        """One observation: the image on the first call, then the pages
        written since the previous call and the job's time in between."""
        if self._source is None:
            self._source = TorchSource()
        src, w = self._source, self._writer
        src.synchronize()
        now = self._clock()
        dur = 0 if self._last is None else now - self._last
        present = set()
        for addr, size in src.segments():
            key = (addr, size)
            if size // w.page_size and key not in self._layout:
                self._layout[key] = w.segment(size // w.page_size)
            present.add(key)
        runs = []
        for key, first in self._layout.items():
            if key not in present:
                src.forget(key)
                continue
            runs += [(first + p, n) for p, n in
                     src.changed(key, key[0], key[1] // w.page_size,
                                 w.page_size)]
        w.step(dur, runs)
        src.synchronize()
        self._last = self._clock()

    def close(self):
        self._writer.close()

    def abort(self):
        self._writer.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type:
            self.abort()
        else:
            self.close()


class _Hooks:
    """Calls TraceCapture.step() on every @every-th event after @skip."""

    def __init__(self, cap, at, every, skip, steps):
        # torch.optim deletes its submodules' names from itself: import the
        # hook registrars from their modules.
        from torch.nn.modules import module as mod
        from torch.optim.optimizer import register_optimizer_step_post_hook
        self.cap, self.every, self.skip, self.steps = cap, every, skip, steps
        self.events = 0
        self.depth = 0
        self.closed = False
        self.handles = []
        if at == "optimizer":
            self.handles.append(register_optimizer_step_post_hook(
                lambda *a: self._event()))
        else:
            self.handles.append(mod.register_module_forward_pre_hook(
                lambda *a: self._enter()))
            self.handles.append(mod.register_module_forward_hook(
                lambda *a: self._leave()))

    def _enter(self):
        self.depth += 1

    def _leave(self):
        self.depth -= 1
        if not self.depth:
            self._event()

    def _event(self):
        self.events += 1
        n = self.events - self.skip
        if n > 0 and n % self.every == 0 and not self.closed:
            self.cap.step()
            if self.steps and self.cap.observations > self.steps:
                self.done()
                self.cap.close()
                self.closed = True

    def done(self):
        """Removes the hooks (again: a no-op)."""
        for h in self.handles:
            h.remove()
        self.handles = []


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _count(least):
    def parse(s):
        if not s.isdigit() or int(s) < least:
            raise argparse.ArgumentTypeError(
                f"'{s}' is not a whole number >= {least}")
        return int(s)
    return parse


def _page_size(s):
    try:
        v = int(s)
        _check_page_size(v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{s}' is not a power of two in 512..1073741824")
    return v


def _parser():
    p = _Parser(
        prog="gmem-trace-capture",
        usage="gmem-trace-capture --output FILE [options] "
              "(SCRIPT | -m MODULE) [ARGS...]",
        description="Run a PyTorch job and record its GPU dirty-page trace "
                    "(the format gmem-replay replays: docs/traces.md).",
        epilog="Observation 0 is the image; each later one lists the pages "
               "whose content changed since the one before. The file is "
               "written when the job ends, or after --steps. Exit status: "
               "the job's; 1 when no trace could be written; 2 usage.")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="trace to write (.trace.gz)")
    p.add_argument("-a", "--at", choices=("optimizer", "forward"),
                   default="optimizer",
                   help="observe after each optimizer step (training; "
                        "default) or each outermost module forward "
                        "(inference: one per token)")
    p.add_argument("-e", "--every", type=_count(1), default=1, metavar="K",
                   help="observe every K events (default 1)")
    p.add_argument("-w", "--skip", type=_count(0), default=0, metavar="W",
                   help="events to let pass before the image, e.g. warm-up "
                        "steps (default 0)")
    p.add_argument("-n", "--steps", type=_count(1), default=0, metavar="N",
                   help="stop recording after N steps past the image "
                        "(default: until the job ends)")
    p.add_argument("-p", "--page-size", type=_page_size, default=PAGE_SIZE,
                   metavar="BYTES",
                   help="trace page size (default 4096, which gmem-replay "
                        "replays)")
    p.add_argument("-m", dest="module", metavar="MODULE",
                   help="run MODULE as python3 -m does")
    p.add_argument("target", nargs=argparse.REMAINDER,
                   help="SCRIPT and its ARGS (after --, or -m MODULE's ARGS)")
    return p


def main(argv=None):
    p = _parser()
    o = p.parse_args(argv)
    args = o.target[1:] if o.target[:1] == ["--"] else o.target
    if not o.module and not args:
        p.error("a SCRIPT or -m MODULE to run is required")
    try:
        import torch  # noqa: F401 (the hooks and the source need it)
    except ImportError as e:
        print(f"{p.prog}: needs PyTorch: {e}", file=sys.stderr)
        return 1
    cap = TraceCapture(o.output, o.page_size)
    hooks = _Hooks(cap, o.at, o.every, o.skip, o.steps)
    code = 0
    sys.argv = [o.module or args[0]] + (args if o.module else args[1:])
    try:
        if o.module:
            runpy.run_module(o.module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None
                                                       else 1)
    except BaseException:
        hooks.done()
        if not hooks.closed:
            cap.abort()
        raise
    hooks.done()
    if not hooks.closed:
        try:
            cap.close()
        except ValueError as e:
            print(f"{p.prog}: no trace written: {e}", file=sys.stderr)
            return code or 1
    print(f"{p.prog}: {o.output}: {cap.observations} observations",
          file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
