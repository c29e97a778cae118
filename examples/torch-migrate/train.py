#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""train.py - a GPT-2-small-like training loop (random weights, fixed seed)
whose parameters, gradients and AdamW state live in one flat device buffer,
mirrored into a gmem region and driven by gmem-migrate through a control
socket (the protocol of bench/REPLAY.md: query, pause, resume, export,
quit). A destination (--incoming) rebuilds the model as views over its own
flat buffer, restores the buffer from its region and trains on.

Each step's batch comes from a generator seeded with (seed, step) and every
kernel is deterministic, so a migrated run must print exactly the losses of
an unmigrated one. One JSON line per step goes to --losses."""
import argparse
import json
import math
import os
import socket
import sys
import threading
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import gmem  # noqa: E402

PAGE = 4096


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2)
                   for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        att = att.masked_fill(mask[:t, :t], float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.wte = nn.Embedding(a.vocab, a.d)
        self.wpe = nn.Embedding(a.ctx, a.d)
        self.blocks = nn.ModuleList(Block(a.d, a.heads) for _ in range(a.layers))
        self.ln_f = nn.LayerNorm(a.d)
        mask = torch.ones(a.ctx, a.ctx, dtype=torch.bool).triu(1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x, self.mask)
        return self.ln_f(x) @ self.wte.weight.t()  # tied output layer


class Flat:
    """One device buffer: [params | grads | adam m | adam v], each n floats,
    rounded up to whole pages. The model's parameters and .grad tensors
    become views into it."""

    def __init__(self, model):
        params = list(model.parameters())
        self.n = sum(p.numel() for p in params)
        per = (self.n * 4 + PAGE - 1) // PAGE * PAGE // 4
        self.section_bytes = per * 4
        self.buf = torch.zeros(4 * per, device="cuda")
        self.p, self.g, self.m, self.v = (self.buf[i * per:i * per + self.n]
                                          for i in range(4))
        off = 0
        for prm in params:
            k = prm.numel()
            self.p[off:off + k].copy_(prm.data.flatten())
            prm.data = self.p[off:off + k].view_as(prm)
            prm.grad = self.g[off:off + k].view_as(prm)
            off += k
        self.params = params

    def adamw(self, t, lr=3e-4, b1=0.9, b2=0.95, eps=1e-8, wd=0.1):
        for prm in self.params:  # autograd must have accumulated in place
            assert prm.grad.data_ptr() >= self.g.data_ptr(), "grad left the buffer"
        self.m.mul_(b1).add_(self.g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(self.g, self.g, value=1 - b2)
        denom = (self.v / (1 - b2 ** t)).sqrt_().add_(eps)
        self.p.mul_(1 - lr * wd).addcdiv_(self.m, denom, value=-lr / (1 - b1 ** t))


class Workload:
    """The training loop and what the control socket may ask of it."""

    def __init__(self, a):
        self.a, self.lock = a, threading.Condition()
        self.state = "incoming" if a.incoming else "running"
        self.step = 0
        self.pause_wanted = self.mirroring = self.quit = False
        self.last_write_ns = self.first_write_ns = 0
        self.paused_reply = self.resume_state = None
        self.durs, self.recent, self.stats = [], [], {}
        torch.manual_seed(a.seed)
        self.model = GPT(a).cuda()
        for prm in self.model.parameters():  # GPT-2's initialisation
            if prm.dim() > 1:
                nn.init.normal_(prm, std=0.02)
        self.flat = Flat(self.model)
        nbytes = self.flat.buf.numel() * 4
        self.region = gmem.Region(nbytes // PAGE, missing=a.incoming)
        self.mirror = gmem.Mirror(self.region, self.flat.buf.data_ptr(), nbytes)
        # Gradients are dead at a step boundary: zeroed before each backward.
        self.mirror.hint_dead(self.flat.section_bytes, self.flat.section_bytes)
        if not a.incoming:
            self.stats["initial_sync"] = self.mirror.sync()

    def train_step(self):
        a, s = self.a, self.step
        gen = torch.Generator(device="cuda").manual_seed(a.seed * 1000003 + s)
        tok = torch.randint(0, a.vocab, (a.batch, a.ctx + 1), device="cuda",
                            generator=gen)
        self.flat.g.zero_()
        logits = self.model(tok[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), tok[:, 1:].reshape(-1))
        loss.backward()
        self.flat.adamw(s + 1)
        return loss.item()

    def pause_here(self):
        """At a step boundary: the last pass copies what changed since the
        previous one; the freeze starts with it."""
        self.last_write_ns = now_ns()
        torch.cuda.synchronize()
        self.stats["freeze_sync"] = self.mirror.sync()
        self.paused_reply = {"last_write_ns": self.last_write_ns,
                             "state": {"step": self.step, "seed": self.a.seed},
                             "mirror": self.stats["freeze_sync"]}
        self.state = "paused"
        self.lock.notify_all()

    def resume_here(self, st):
        self.step = st["step"]
        if self.a.more is not None:
            self.a.steps = self.step + self.a.more
        self.stats["restore"] = self.mirror.restore()
        self.first_write_ns = now_ns()
        self.state = "running"

    def run(self, losses):
        with self.lock:
            while self.state == "incoming" and not self.quit:
                self.lock.wait()
        while self.step < self.a.steps and not self.quit:
            with self.lock:
                if self.pause_wanted:
                    self.pause_here()
                    while self.resume_state is None and not self.quit:
                        self.lock.wait()
                    if self.quit:
                        break
                if self.resume_state is not None:
                    self.resume_here(self.resume_state)
                    self.resume_state = None
                    self.pause_wanted = False
            t0 = now_ns()
            loss = self.train_step()
            if self.mirroring:  # pre-copy: the region follows each step
                torch.cuda.synchronize()
                self.mirror.sync()
            dur = now_ns() - t0
            losses.write(json.dumps({"step": self.step, "loss": loss}) + "\n")
            losses.flush()
            with self.lock:
                self.durs.append(dur)
                self.recent = (self.recent + [{"step": self.step, "start_ns": t0,
                                               "dur_ns": dur, "trace_dur_ns": dur}])[-64:]
                self.step += 1
        with self.lock:
            self.state = "done"
            while not self.quit:
                self.lock.wait()

    def query(self):
        d = sorted(self.durs) or [0]
        r = {"state": self.state, "trace": "torch-gpt2", "scale": "1/1",
             "page_size": PAGE, "nr_pages": self.region.nr_pages,
             "pid": os.getpid(), "step": self.step,
             "last_write_ns": self.last_write_ns,
             "first_write_ns": self.first_write_ns,
             "step_time": {"count": len(self.durs), "mean_ns": sum(d) // len(d),
                           "p50_ns": d[len(d) // 2], "p99_ns": d[len(d) * 99 // 100]},
             "recent_steps": self.recent, "mirror": self.stats}
        if self.first_write_ns > self.last_write_ns > 0:
            r["freeze_ns"] = self.first_write_ns - self.last_write_ns
        return r

    def command(self, req, conn):
        cmd = req.get("cmd")
        with self.lock:
            if cmd == "query":
                return self.query()
            if cmd == "pause":
                if self.state not in ("running", "paused"):
                    raise ValueError("not running: " + self.state)
                self.pause_wanted = True
                while self.state != "paused":
                    self.lock.wait()
                return self.paused_reply
            if cmd == "resume":
                if self.state == "incoming" and "state" not in req:
                    raise ValueError('incoming: resume needs the source\'s "state"')
                if self.state not in ("incoming", "paused"):
                    raise ValueError("not paused")
                self.resume_state = req.get("state") or self.paused_reply["state"]
                self.state = "resuming"
                self.lock.notify_all()
                return {"resume_ns": now_ns()}
            if cmd == "export":
                self.mirroring = not self.a.incoming
                return {"nr_pages": self.region.nr_pages, "page_size": PAGE,
                        "size": self.region.nr_pages * PAGE, "pid": os.getpid(),
                        "_export": True}
            if cmd == "quit":
                self.quit = True
                self.lock.notify_all()
                return {}
        raise ValueError('unknown "cmd" (query, pause, resume, export, quit)')


def serve(w, conn):
    f = conn.makefile("rb", buffering=0)
    for line in iter(f.readline, b""):
        try:
            rep = w.command(json.loads(line), conn)
            rep = dict(rep, ok=True)
        except (ValueError, KeyError, TypeError) as e:
            rep = {"ok": False, "error": str(e)}
        export = rep.pop("_export", False)
        conn.sendall(json.dumps(rep).encode() + b"\n")
        if export:
            w.region.export(conn.fileno())
    conn.close()


def listen(w, path):
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(w, conn), daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--control", help="control socket (gmem-migrate --control)")
    ap.add_argument("--incoming", action="store_true",
                    help="wait for a migration to resume this process")
    ap.add_argument("--more", type=int,
                    help="--incoming: train this many steps after the resume")
    ap.add_argument("--losses", default="/dev/stdout")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    a = ap.parse_args()
    if a.incoming and not a.control:
        ap.error("--incoming needs --control")
    torch.use_deterministic_algorithms(True)
    w = Workload(a)
    if a.control:
        threading.Thread(target=listen, args=(w, a.control), daemon=True).start()
    with open(a.losses, "a") as losses:
        if a.control:
            w.run(losses)
        else:
            run_alone(w, losses)
    print(json.dumps({"mirror": w.stats, "steps": w.step}), file=sys.stderr)


def run_alone(w, losses):
    """No control socket: the unmigrated reference run."""
    while w.step < w.a.steps:
        t0 = now_ns()
        loss = w.train_step()
        losses.write(json.dumps({"step": w.step, "loss": loss}) + "\n")
        w.durs.append(now_ns() - t0)
        w.step += 1


if __name__ == "__main__":
    main()
