# SPDX-License-Identifier: MIT
"""gmem.torch - live-migrate an ordinary PyTorch training job with gmem-migrate.

The destination job runs before its GPU memory has arrived. Every tensor a
step needs (parameters, buffers, optimizer state: found where PyTorch put
them, by ``named_parameters()``, ``named_buffers()`` and the optimizer's
``state``) has its place in a gmem region. At the pause the source copies
them into the region by DMA behind the region's fill gate (gmem-migrate
sends a page only once the copy has passed it, so the freeze does not wait
for the copy); the destination resumes at once and a restore engine
copies the region into its own tensors in first-use order (the modules'
pre-order, then the optimizer state), through pinned staging. A page that
has not arrived faults on the region and becomes an urgent request of the
post-copy, as any fault does, while gmem-migrate's push fills the rest.
Each restored tensor records a CUDA event; a forward pre-hook on every
module and a step pre-hook on the optimizer make the current stream wait
for the events of the tensors the module or step reads (stream-ordered
gating: the GPU needs no page faults). A tensor the job reaches before the
restore engine does is restored next.

Gradients are not moved: a step boundary comes after ``optimizer.step()``
and ``zero_grad()``, so they are dead there. Memory the caching allocator
holds free is not moved either: only the tensors are.

Use::

    mig = gmem.torch.Migratable(model, optimizer, control="/run/job.sock",
                                incoming=args.incoming)
    step = mig.wait_incoming({"step": 0})["step"]
    while step < steps:
        if mig.boundary({"step": step}):
            break                       # migrated away: the source stops
        train_step(step)
        step += 1
    mig.finish()

then ``gmem-migrate source --control /run/job.sock --mode postcopy ...`` on
this host and ``gmem-migrate dest --control ... --mode postcopy`` beside the
same job started with ``incoming=True`` on the other.
"""
import ctypes
import hashlib
import json
import os
import threading
import time

import torch

from ._lib import PAGE_SIZE, Region
from .control import ControlError, ControlServer

__all__ = ["Migratable", "LayoutError"]

CHUNK_BYTES = 32 << 20   # one staging copy
FILL_BYTES = 64 << 20    # the fill mark's step behind the DMA copy
RECENT_STEPS = 64        # query's recent_steps, as gmem-replay keeps them
SERIES_STEPS = 400       # since_resume's series, as gmem-replay keeps them
PAUSE_WAIT_S = 10.0      # a pause that finds no step boundary gives up


def _now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class LayoutError(ValueError):
    """The destination's model or optimizer is not the source's (another
    shape, dtype or tensor set): nothing was restored."""


def _u8(t):
    """The bytes of contiguous tensor @t, as a flat uint8 view."""
    return t.detach().reshape(-1).view(torch.uint8)


class _Slot:
    """One tensor's place in the region and its restore state."""
    PENDING, BUSY, DONE = range(3)
    __slots__ = ("name", "tensor", "off", "nbytes", "state", "event", "synced")

    def __init__(self, name, tensor, off):
        self.name, self.tensor, self.off = name, tensor, off
        self.nbytes = tensor.numel() * tensor.element_size()
        self.state, self.event, self.synced = _Slot.PENDING, None, False


def _materialize(optimizer):
    """Creates the per-parameter state an optimizer makes at its first step,
    where it has none yet, so that both ends know its tensors before any
    step: one step with zero gradients at learning rate 0 and weight decay 0
    (parameters unchanged), then that state is reset to what a first step
    starts from: zeros, and step 0. Right for optimizers whose fresh state
    is zeros (Adam, AdamW, SGD with momentum and no dampening, ...)."""
    params = [p for g in optimizer.param_groups for p in g["params"]
              if p.requires_grad]
    fresh = [p for p in params if not optimizer.state.get(p)]
    if not fresh:
        return
    grads = [p.grad for p in params]
    groups = [dict(g) for g in optimizer.param_groups]
    ids = {id(p) for p in fresh}
    try:
        for g in optimizer.param_groups:
            g["lr"] = 0.0
            if "weight_decay" in g:
                g["weight_decay"] = 0.0
        for p in params:
            p.grad = torch.zeros_like(p) if id(p) in ids else None
        optimizer.step()
    finally:
        for p, gr in zip(params, grads):
            p.grad = gr
        for g, saved in zip(optimizer.param_groups, groups):
            g["lr"] = saved["lr"]
            if "weight_decay" in saved:
                g["weight_decay"] = saved["weight_decay"]
    with torch.no_grad():
        for p in fresh:
            st = optimizer.state[p]
            for k, v in st.items():
                if torch.is_tensor(v):
                    v.zero_()
                elif isinstance(v, (int, float)):
                    st[k] = type(v)(0)


def _check_tensor(name, t, device):
    if not t.is_cuda:
        raise ValueError("gmem.torch: %s is on %s: only CUDA tensors migrate "
                         "through the region" % (name, t.device))
    if t.device != device:
        raise ValueError("gmem.torch: %s is on %s, the job on %s"
                         % (name, t.device, device))
    if not t.is_contiguous():
        raise ValueError("gmem.torch: %s is not contiguous" % name)


class Migratable:
    """A PyTorch job that gmem-migrate can move between hosts.

    @model: an ``nn.Module`` whose parameters and buffers are CUDA tensors
    of one device (contiguous; any dtype). @optimizer: its optimizer or
    None; its state is created now if it has none (see _materialize).
    @control: path of the Unix socket gmem-migrate's ``--control`` names, or
    None (no migration: every call is a no-op, for a reference run).
    @incoming: this process is a migration's destination: its tensors are
    overwritten with the source's; build the model and optimizer with the
    same code as the source (same names, shapes, dtypes), any values.

    Raises ValueError for a tensor on the CPU, on another device or not
    contiguous; OSError (errno) when the region cannot be made.
    Not thread-safe: call its methods from the training thread; the
    control socket is served from threads of its own.
    """

    def __init__(self, model, optimizer=None, control=None, incoming=False):
        if incoming and not control:
            raise ValueError("gmem.torch: incoming=True needs control")
        self.model, self.optimizer = model, optimizer
        self.incoming, self.control = incoming, control
        if optimizer is not None:
            _materialize(optimizer)
        self._layout(model, optimizer)
        self._cv = threading.Condition()
        self._state = "incoming" if incoming else "running"
        self._pause_wanted = self._quit = False
        self._resume = None          # the resume request's state, once
        self._paused_reply = None
        self._error = None           # the restore engine's failure
        self.steps_done, self._t_last = 0, 0
        self._durs, self._recent = [], []
        self._last_write_ns = self._first_write_ns = 0
        self._since = None           # destination: running maxima
        self._src = {}               # destination: the source's state
        self._wanted = []
        self._restoring = False
        self._hooks, self._unhook = [], False
        self._ev_resume = self._ev_first = None
        self._registered = self._dma = self._warming = False
        self._gated = False          # the region has a fill gate
        self._refused = None         # destination: why a resume was refused
        self.copy_stats = {}         # how the last copy went (query: "copy")
        self.region = None
        if control is None:
            return
        self.region = Region(max(1, self._size // PAGE_SIZE), missing=incoming)
        self._buf = (ctypes.c_uint8 * self.region.size).from_address(self.region.addr)
        self._host = torch.frombuffer(self._buf, dtype=torch.uint8)
        self._staging = None     # pinned, made when a copy first needs it
        if incoming:
            self._install_hooks()
        else:
            self._host.zero_()   # allocates the memfd's pages now, not in the freeze
        self._server = ControlServer(control, self._command)

    # -- layout -----------------------------------------------------------
    def _layout(self, model, optimizer):
        """Slots in first-use order: each module's own parameters and buffers
        in the modules' pre-order, then the optimizer's state by parameter.
        Host scalars of the optimizer's state (AdamW's step) travel in the
        device state instead."""
        first = next(iter(model.parameters()), None)
        if first is None:
            raise ValueError("gmem.torch: the model has no parameters")
        self.device = first.device
        names = {id(p): n for n, p in model.named_parameters()}
        names.update({id(b): n for n, b in model.named_buffers()})
        self.slots, self._by_module, seen, off = [], {}, {}, 0

        def add(name, t):
            nonlocal off
            if id(t) in seen:
                return seen[id(t)]
            _check_tensor(name, t, self.device)
            s = _Slot(name, t, off)
            off += (s.nbytes + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
            self.slots.append(s)
            seen[id(t)] = s
            return s

        for mod in model.modules():
            own = [t for t in list(mod._parameters.values()) +
                   list(mod._buffers.values()) if t is not None]
            self._by_module[mod] = [add(names.get(id(t), "?"), t) for t in own]
        self._scalars = []
        if optimizer is not None:
            for gi, g in enumerate(optimizer.param_groups):
                for pi, p in enumerate(g["params"]):
                    pname = names.get(id(p), "group%d.%d" % (gi, pi))
                    st = optimizer.state.get(p, {})
                    for k in sorted(st):
                        v = st[k]
                        if torch.is_tensor(v) and v.is_cuda:
                            add("optim.%s.%s" % (pname, k), v)
                        elif torch.is_tensor(v) and v.numel() == 1:
                            self._scalars.append((st, k))
                        elif isinstance(v, (int, float)):
                            self._scalars.append((st, k))
                        else:
                            raise ValueError("gmem.torch: optimizer state "
                                             "%s.%s is neither a CUDA tensor "
                                             "nor a scalar" % (pname, k))
        self._size = off
        desc = [(s.name, str(s.tensor.dtype), list(s.tensor.shape), s.off)
                for s in self.slots] + [k for _, k in self._scalars]
        self.layout_digest = hashlib.sha256(
            json.dumps(desc).encode()).hexdigest()[:32]

    @property
    def nbytes(self):
        """Bytes of the region: every slot, each rounded up to 4 KiB pages."""
        return self._size

    # -- the training thread's calls --------------------------------------
    def wait_incoming(self, default=None, warmup=None, timeout_s=None):
        """Destination: runs @warmup() (a callable: one training step, say,
        so that CUDA's kernels, cuBLAS and the caching allocator are ready
        before the migration, as the source's are; whatever it writes is
        overwritten), blocks until gmem-migrate resumes this job (at most
        @timeout_s seconds, None: no limit), restores the optimizer's host
        scalars, starts the restore engine and returns the user state the
        source gave boundary(). A source, or a job with no control socket,
        returns @default at once.
        Raises LayoutError when the source's tensors are not this job's (the
        resume was refused), TimeoutError, and RuntimeError when
        gmem-migrate sent quit before any resume."""
        if not self.incoming:
            return default
        if warmup is not None:
            self._warming = True
            try:
                warmup()
            finally:
                self._warming = False
            self.model.zero_grad(set_to_none=True)
            torch.cuda.synchronize(self.device)
        self._staging_bufs()     # pinned now, not after the resume
        end = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cv:
            while (self._resume is None and not self._quit and
                   self._refused is None):
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("gmem.torch: no resume in %s s" % timeout_s)
                self._cv.wait(left)
            if self._refused is not None:
                raise LayoutError(self._refused)
            if self._resume is None:
                raise RuntimeError("gmem.torch: quit before any resume")
            st, self._resume = self._resume, None
        self._src = st
        for (d, k), v in zip(self._scalars, st["scalars"]):
            if torch.is_tensor(d[k]):
                d[k].fill_(v)
            else:
                d[k] = type(d[k])(v)
        self.steps_done = st["steps_done"]
        self._since = {"max_lag_ns": 0, "max_gap_ns": 0, "max_gap_end_ns": 0,
                       "max_step_ns": 0, "first_step_ns": 0, "steps": 0,
                       "series": []}
        self._ev_resume = torch.cuda.Event(enable_timing=True)
        self._ev_resume.record(torch.cuda.current_stream(self.device))
        self._t_resume, self._t_last = _now_ns(), 0
        self._restoring = True
        self._restore_stream = torch.cuda.Stream(self.device)
        threading.Thread(target=self._restore_loop, daemon=True,
                         name="gmem-restore").start()
        return st["user"]

    def boundary(self, user_state=None):
        """Call at every step boundary (after the optimizer step, before
        the next step's first kernel). Waits for the step's kernels, so the
        step's time is known. When gmem-migrate asks for a pause, the job
        stops here: its tensors are copied into the region and @user_state
        (a JSON-serialisable dict, at most about 40 KiB as JSON) becomes
        part of the device state that wait_incoming() returns at the
        destination. Returns True when the job should stop: it has migrated
        away (gmem-migrate sent quit), False to go on (no pause, or a
        migration that failed and resumed it here)."""
        if self.control is None:
            return False
        torch.cuda.synchronize(self.device)
        t = _now_ns()
        if self._unhook:
            for h in self._hooks:
                h.remove()
            self._hooks, self._unhook = [], False
        with self._cv:
            self._end_step(t)
            if self._quit:
                return True
            if not self._pause_wanted:
                return False
            self._state = "pausing"
        self._last_write_ns = t
        gated = self._dma
        if gated:
            self.region.fill_set(0)
        else:
            self._copy_out()
        with self._cv:
            self._paused_reply = {
                "last_write_ns": t,
                "state": {"user": user_state or {}, "layout": self.layout_digest,
                          "scalars": [self._scalar(d, k) for d, k in self._scalars],
                          "steps_done": self.steps_done, "pace_ns": self._p50(),
                          "last_write_ns": t}}
            self._state = "paused"
            self._cv.notify_all()
        if gated:
            # Behind the fill gate: the destination already runs, and
            # gmem-migrate sends each page once the mark has passed it.
            self._copy_out()
        with self._cv:
            while self._resume is None and not self._quit:
                self._cv.wait()
            if self._quit:
                return True
            self._resume, self._pause_wanted = None, False
            self._state, self._t_last = "running", _now_ns()
        return False

    def finish(self, timeout_s=60.0):
        """The job is done: query says so; waits up to @timeout_s for
        gmem-migrate's quit (a destination's migrator reads its figures
        then), and returns."""
        if self.control is None:
            return
        torch.cuda.synchronize(self.device)
        end = time.monotonic() + timeout_s
        with self._cv:
            self._end_step(_now_ns())
            self._state = "done"
            self._cv.notify_all()
            while not self._quit and time.monotonic() < end:
                self._cv.wait(max(0.0, end - time.monotonic()))
        self._server.close()

    # -- step times ---------------------------------------------------------
    @staticmethod
    def _scalar(d, k):
        v = d[k]
        return v.item() if torch.is_tensor(v) else v

    def _p50(self):
        d = sorted(self._durs)
        return d[len(d) // 2] if d else 0

    def _end_step(self, t):
        """Accounts the step that ends at @t (lock held)."""
        if not self._t_last or self._state not in ("running",):
            self._t_last = t
            return
        dur = t - self._t_last
        e = {"step": self.steps_done, "start_ns": self._t_last, "dur_ns": dur,
             "trace_dur_ns": self._src.get("pace_ns") or dur}
        self._durs.append(dur)
        self._recent = (self._recent + [e])[-RECENT_STEPS:]
        self.steps_done += 1
        self._t_last = t
        s = self._since
        if s is None:
            return
        s["steps"] += 1
        if s["steps"] == 1:
            s["first_step_ns"] = dur
            self._first_write_ns = self._first_kernel_ns()
        if dur > s["max_gap_ns"]:
            s["max_gap_ns"], s["max_gap_end_ns"] = dur, t
        s["max_step_ns"] = max(s["max_step_ns"], dur)
        pace = self._src.get("pace_ns", 0)
        s["max_lag_ns"] = max(s["max_lag_ns"],
                              t - self._t_resume - s["steps"] * pace)
        if len(s["series"]) < SERIES_STEPS:
            s["series"].append(e)

    def _first_kernel_ns(self):
        """When the first gated kernel after the resume could run: the
        resume's host time plus the GPU's wait for that kernel's tensors."""
        if self._ev_first is None:
            return self._t_resume
        ms = self._ev_resume.elapsed_time(self._ev_first)
        return self._t_resume + int(ms * 1e6)

    # -- source: the copy into the region ---------------------------------
    def _choose_copy(self, mode):
        """Where no dirty log watches the freeze (post-copy, stop-and-copy)
        the tensors go into the region by DMA after the pause, behind the
        region's fill gate, so that the freeze does not wait for the copy:
        the region is registered with CUDA (pinned) once, here, before any
        pause. Elsewhere, or if it cannot be registered, they go through
        pinned staging and CPU stores, which a dirty log sees, before the
        pause ends (lock held)."""
        want = mode in ("postcopy", "stop-and-copy") and not self.incoming
        if want and not self._registered:
            with torch.cuda.device(self.device):
                err = torch.cuda.cudart().cudaHostRegister(
                    self.region.addr, self.region.size, 0)
            self._registered = int(err) == 0
            self.copy_stats["register_error"] = int(err)
        self._dma = want and self._registered
        self.copy_stats["dma"] = self._dma
        if self._dma:
            self.region.fill_gate()
            self._gated = True
        else:
            self._staging_bufs()    # pinned now, not in the freeze
            if self._gated:         # an earlier export's gate: nothing held back
                self.region.fill_set(self.region.size)

    def _copy_out(self):
        """Every slot into the region, in slot order, on a copy stream."""
        t0 = _now_ns()
        stream = torch.cuda.Stream(self.device)
        with torch.cuda.stream(stream):
            if self._dma:
                self._copy_gated(stream)
            else:
                self._copy_staged(stream)
        self.copy_stats["copy_out_ms"] = round((_now_ns() - t0) / 1e6, 3)

    def _copy_gated(self, stream):
        """Device-to-host by DMA straight into the region, all queued at
        once; the fill mark rises behind each FILL_BYTES as its copy
        completes (slots lie in ascending offsets)."""
        marks = []
        for s in self.slots:
            src = _u8(s.tensor)
            for a in range(0, s.nbytes, FILL_BYTES):
                n = min(FILL_BYTES, s.nbytes - a)
                self._host[s.off + a:s.off + a + n].copy_(src[a:a + n],
                                                          non_blocking=True)
                ev = torch.cuda.Event()
                ev.record(stream)
                marks.append((ev, s.off + a + n))
        for ev, end in marks:
            ev.synchronize()
            self.region.fill_set(min(self.region.size,
                                     -(-end // PAGE_SIZE) * PAGE_SIZE))
        self.region.fill_set(self.region.size)

    def _copy_staged(self, stream):
        """Device-to-host into pinned staging, the next chunk's copy
        overlapping the previous chunk's CPU store into the region."""
        staging = self._staging_bufs()
        events = [torch.cuda.Event() for _ in staging]
        prev, i = None, 0
        for s in self.slots:
            src = _u8(s.tensor)
            for a in range(0, s.nbytes, CHUNK_BYTES):
                n = min(CHUNK_BYTES, s.nbytes - a)
                buf, ev = staging[i % 2], events[i % 2]
                buf[:n].copy_(src[a:a + n], non_blocking=True)
                ev.record(stream)
                if prev:
                    self._store(*prev)
                prev, i = (buf, ev, s.off + a, n), i + 1
        if prev:
            self._store(*prev)

    def _staging_bufs(self):
        """Two pinned chunks for copies through the CPU (a staged copy out,
        the restore engine); a DMA copy out needs none."""
        if self._staging is None:
            self._staging = [torch.empty(CHUNK_BYTES, dtype=torch.uint8,
                                         pin_memory=True) for _ in range(2)]
        return self._staging

    def _store(self, buf, ev, off, n):
        ev.synchronize()
        self._host[off:off + n].copy_(buf[:n])

    # -- destination: the restore engine and the hooks ---------------------
    def _install_hooks(self):
        for mod, slots in self._by_module.items():
            if slots:
                self._hooks.append(mod.register_forward_pre_hook(
                    lambda m, args, slots=slots: self._wait(slots)))
        if self.optimizer is not None:
            every = self.slots
            self._hooks.append(self.optimizer.register_step_pre_hook(
                lambda opt, args, kwargs: self._wait(every)))

    def _wait(self, slots):
        """Makes the current stream wait for @slots' restore, asking the
        restore engine for those it has not reached."""
        pending = [s for s in slots if not s.synced]
        if not pending or self._warming:
            return
        with self._cv:
            if not self._restoring:
                raise RuntimeError("gmem.torch: a destination ran its model "
                                   "before wait_incoming()")
            self._wanted.extend(s for s in pending if s.state == _Slot.PENDING)
            self._cv.notify_all()
            while (self._error is None and
                   any(s.state != _Slot.DONE for s in pending)):
                self._cv.wait()
            if self._error is not None:
                raise RuntimeError("gmem.torch: restore failed: %s" % self._error)
        stream = torch.cuda.current_stream(self.device)
        for s in pending:
            stream.wait_event(s.event)
            s.synced = True
        if self._ev_first is None:
            self._ev_first = torch.cuda.Event(enable_timing=True)
            self._ev_first.record(stream)
        if all(s.synced for s in self.slots):
            self._unhook = True   # removed at the boundary, not inside a hook

    def _next_slot(self):
        while self._wanted:
            s = self._wanted.pop(0)
            if s.state == _Slot.PENDING:
                return s
        return next((s for s in self.slots if s.state == _Slot.PENDING), None)

    def _restore_loop(self):
        torch.cuda.set_device(self.device)
        t0 = _now_ns()
        staging = self._staging_bufs()
        events = [torch.cuda.Event() for _ in staging]
        used = [False] * len(events)
        i = 0
        try:
            with torch.cuda.stream(self._restore_stream):
                while True:
                    with self._cv:
                        s = self._next_slot()
                        if s is None:
                            self.copy_stats["restore_enqueued_ms"] = round(
                                (_now_ns() - t0) / 1e6, 3)
                            return
                        s.state = _Slot.BUSY
                    dst = _u8(s.tensor)
                    for a in range(0, s.nbytes, CHUNK_BYTES):
                        n = min(CHUNK_BYTES, s.nbytes - a)
                        k = i % 2
                        if used[k]:
                            events[k].synchronize()   # its last copy has left
                        buf = staging[k]
                        buf[:n].copy_(self._host[s.off + a:s.off + a + n])
                        dst[a:a + n].copy_(buf[:n], non_blocking=True)
                        events[k].record(self._restore_stream)
                        used[k], i = True, i + 1
                    ev = torch.cuda.Event()
                    ev.record(self._restore_stream)
                    with self._cv:
                        s.event, s.state = ev, _Slot.DONE
                        self._cv.notify_all()
        except Exception as e:  # noqa: BLE001 - reported to every waiter
            with self._cv:
                self._error = "%s: %s" % (type(e).__name__, e)
                self._cv.notify_all()

    # -- the control socket -------------------------------------------------
    def _query(self):
        d = sorted(self._durs) or [0]
        r = {"state": "running" if self._state == "pausing" else self._state,
             "trace": "torch", "scale": "1/1", "scale_n": 1,
             "page_size": PAGE_SIZE, "nr_pages": self.region.nr_pages,
             "pid": os.getpid(), "step": self.steps_done,
             "steps_done": self.steps_done,
             "last_write_ns": self._last_write_ns or self._src.get("last_write_ns", 0),
             "first_write_ns": self._first_write_ns,
             "step_time": {"count": len(self._durs),
                           "mean_ns": sum(d) // len(d), "p50_ns": d[len(d) // 2],
                           "p99_ns": d[len(d) * 99 // 100]},
             "recent_steps": self._recent,
             "tensors": len(self.slots), "tensor_bytes": self._size,
             "copy": self.copy_stats}
        if self._first_write_ns and r["last_write_ns"]:
            r["freeze_ns"] = self._first_write_ns - r["last_write_ns"]
        if self._since is not None:
            r["since_resume"] = self._since
            r["resume_ns"] = self._t_resume
        if self._error is not None:
            r["error"] = self._error
        return json.loads(json.dumps(r))  # a copy: the reply is sent unlocked

    def _command(self, req):
        cmd = req["cmd"]
        with self._cv:
            if cmd == "query":
                return self._query()
            if cmd == "pause":
                return self._pause()
            if cmd == "resume":
                return self._resume_cmd(req)
            if cmd == "export":
                self._choose_copy(req.get("mode"))
                return {"nr_pages": self.region.nr_pages, "page_size": PAGE_SIZE,
                        "size": self.region.size, "pid": os.getpid(),
                        "_export": self.region}
            if cmd == "quit":
                self._quit = True
                self._cv.notify_all()
                return {}
            if cmd == "verify":
                raise ControlError("verify: a PyTorch job checks no pages "
                                   "(compare its losses)")
        raise ControlError('unknown "cmd" (query, pause, resume, export, quit)')

    def _pause(self):
        """Asks the training thread to stop at its next boundary (lock held)."""
        if self._state == "paused":
            return self._paused_reply
        if self._state != "running":
            raise ControlError("not running: " + self._state)
        self._pause_wanted = True
        limit = PAUSE_WAIT_S + 2 * max(self._durs or [0]) / 1e9
        end = time.monotonic() + limit
        while self._state != "paused" and time.monotonic() < end:
            self._cv.wait(end - time.monotonic())
        if self._state == "running":
            self._pause_wanted = False
            raise ControlError("no step boundary within %.0f s: does the job "
                               "call boundary()?" % limit)
        while self._state != "paused":   # committed: the copy is under way
            self._cv.wait()
        return self._paused_reply

    def _resume_cmd(self, req):
        if self._state == "paused" and not self.incoming:
            self._resume = {}
            self._cv.notify_all()
            return {"resume_ns": _now_ns()}
        if self._state != "incoming":
            raise ControlError("not paused")
        st = req.get("state")
        if not isinstance(st, dict):
            raise ControlError('incoming: resume needs the source\'s "state"')
        if st.get("layout") != self.layout_digest:
            self._refused = ("the source's tensors are not this job's (layout "
                             "%s, here %s): build the same model and "
                             "optimizer at both ends"
                             % (st.get("layout"), self.layout_digest))
            self._cv.notify_all()
            raise ControlError(self._refused)
        if (not isinstance(st.get("scalars"), list) or
                len(st["scalars"]) != len(self._scalars) or
                not isinstance(st.get("steps_done"), int) or
                not isinstance(st.get("user"), dict)):
            raise ControlError("the source's device state is malformed")
        self._resume, self._state = st, "running"
        self._cv.notify_all()
        return {"resume_ns": _now_ns()}
