#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""train.py - an ordinary GPT-2-shaped training loop (random weights, fixed
seed, torch.optim.AdamW) made movable by gmem.torch.Migratable: the three
lines marked "gmem" are all it adds. gmem-migrate drives it through
--control; a destination (--incoming) builds the same model and optimizer,
resumes before its memory has arrived and trains on.

Each step's batch comes from a generator seeded with (seed, step) and every
kernel is deterministic, so a migrated run must print exactly the losses of
an unmigrated one. One JSON line per step goes to --losses: step, loss and
end_ns (CLOCK_MONOTONIC at the step's end).

--save PATH / --load PATH are the usual way, for comparison: torch.save of
the state dicts after --steps, and a process started ahead that waits for
them, torch.load()s them and trains --more steps."""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import gmem.torch  # noqa: E402


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


def build(a):
    torch.manual_seed(a.seed)
    model = GPT(a).cuda()
    for prm in model.parameters():  # GPT-2's initialisation
        if prm.dim() > 1:
            nn.init.normal_(prm, std=0.02)
    return model, torch.optim.AdamW(model.parameters(), lr=3e-4,
                                    betas=(0.9, 0.95), weight_decay=0.1)


def train_step(a, model, opt, step):
    gen = torch.Generator(device="cuda").manual_seed(a.seed * 1000003 + step)
    tok = torch.randint(0, a.vocab, (a.batch, a.ctx + 1), device="cuda",
                        generator=gen)
    logits = model(tok[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, a.vocab), tok[:, 1:].reshape(-1))
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def log_loss(out, step, loss):
    out.write(json.dumps({"step": step, "loss": loss, "end_ns": now_ns()}) + "\n")
    out.flush()


def run(a, out):
    model, opt = build(a)
    mig = gmem.torch.Migratable(model, opt, control=a.control,  # gmem
                                incoming=a.incoming)
    if a.poison:  # a tensor read before its restore would make NaN losses
        with torch.no_grad():
            for s in mig.slots:
                if s.tensor.is_floating_point():
                    s.tensor.fill_(float("nan"))
    step = mig.wait_incoming({"step": 0}, warmup=lambda: train_step(  # gmem
        a, model, opt, 0))["step"]
    end = step + a.more if a.incoming else a.steps
    while step < end:
        if mig.boundary({"step": step}):  # gmem
            break
        log_loss(out, step, train_step(a, model, opt, step))
        step += 1
    mig.finish()
    return {"steps": step, "tensor_bytes": mig.nbytes}


def save(a, out):
    """The usual way, source side: torch.save of the state dicts."""
    model, opt = build(a)
    for step in range(a.steps):
        log_loss(out, step, train_step(a, model, opt, step))
    torch.cuda.synchronize()
    t0 = now_ns()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "step": a.steps}, a.save + ".tmp")
    os.rename(a.save + ".tmp", a.save)
    return {"last_write_ns": t0, "save_ns": now_ns() - t0}


def load(a, out):
    """The usual way, destination side: built ahead, then torch.load."""
    model, opt = build(a)
    while not os.path.exists(a.load):
        time.sleep(0.001)
    t0 = now_ns()
    ck = torch.load(a.load, map_location="cuda")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    torch.cuda.synchronize()
    load_ns = now_ns() - t0
    for step in range(ck["step"], ck["step"] + a.more):
        log_loss(out, step, train_step(a, model, opt, step))
    return {"first_read_ns": t0, "load_ns": load_ns}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="source: steps to train")
    ap.add_argument("--more", type=int, default=10,
                    help="--incoming, --load: steps to train after the resume")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--control", help="control socket (gmem-migrate --control)")
    ap.add_argument("--incoming", action="store_true",
                    help="wait for a migration to resume this process")
    ap.add_argument("--poison", action="store_true",
                    help="--incoming: fill every tensor with NaN before the resume")
    ap.add_argument("--save", metavar="PATH")
    ap.add_argument("--load", metavar="PATH")
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
    if a.poison and not a.incoming:
        ap.error("--poison needs --incoming")
    torch.use_deterministic_algorithms(True)
    with open(a.losses, "a") as out:
        r = save(a, out) if a.save else load(a, out) if a.load else run(a, out)
    print(json.dumps(r), file=sys.stderr)


if __name__ == "__main__":
    main()
