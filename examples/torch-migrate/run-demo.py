#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""run-demo.py - migrates a live PyTorch training run between two processes
of this machine with gmem-migrate and checks that it continues with exactly
the losses of an unmigrated run. Prints one JSON summary line; exit 0 when
every loss matches, 1 otherwise, 77 when this machine cannot run it (no
GPU, no PyTorch, no CUDA build).

  run-demo.py --bin BUILD/pager [--at K] [--more M] [--mode precopy] [--dir D]
              [--model train.py options]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def ask(path, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(json.dumps(req).encode() + b"\n")
    rep = s.makefile("rb").readline()
    s.close()
    return json.loads(rep)


def wait_for(path, pred, limit_s, proc):
    end = time.time() + limit_s
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit("run-demo: a workload exited early (rc %d)" % proc.returncode)
        try:
            rep = ask(path, {"cmd": "query"})
            if pred(rep):
                return rep
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("run-demo: %s did not get there in %d s" % (path, limit_s))


def losses(path):
    with open(path) as f:
        return {r["step"]: r["loss"] for r in map(json.loads, f)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="folder holding gmem-migrate")
    ap.add_argument("--at", type=int, default=10,
                    help="start the migration after this many steps")
    ap.add_argument("--more", type=int, default=10,
                    help="steps the destination trains after the resume")
    ap.add_argument("--max-rounds", type=int, default=2)
    ap.add_argument("--mode", default="precopy")
    ap.add_argument("--port", type=int, default=7311)
    ap.add_argument("--dir", default=None, help="keep logs and reports here")
    ap.add_argument("--model", nargs=argparse.REMAINDER, default=[],
                    help="options passed on to train.py (--layers, --d, ...)")
    a = ap.parse_args()
    try:
        import torch
        if not torch.cuda.is_available():
            print("run-demo: skipped: no CUDA device visible to PyTorch")
            sys.exit(77)
    except ImportError:
        print("run-demo: skipped: PyTorch is not installed")
        sys.exit(77)
    d = a.dir or tempfile.mkdtemp(prefix="gmem-torch-")
    os.makedirs(d, exist_ok=True)
    train = [sys.executable, os.path.join(HERE, "train.py")] + a.model
    log = lambda n: open(os.path.join(d, n + ".log"), "w")  # noqa: E731
    src_sock, dst_sock = os.path.join(d, "src.sock"), os.path.join(d, "dst.sock")
    # The source trains on until it is paused; the destination trains
    # --more steps after its resume.
    dst = subprocess.Popen(train + ["--incoming", "--more", str(a.more),
                                    "--control", dst_sock,
                                    "--losses", os.path.join(d, "dst.jsonl")],
                           stderr=log("dst"))
    src = subprocess.Popen(train + ["--steps", str(10 ** 9), "--control", src_sock,
                                    "--losses", os.path.join(d, "src.jsonl")],
                           stderr=log("src"))
    procs = [dst, src]
    try:
        summary = migrate(a, d, src, dst, src_sock, dst_sock, log, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    ref_path = os.path.join(d, "ref.jsonl")
    subprocess.run(train + ["--steps", str(summary["migrated_at_step"] + a.more),
                            "--losses", ref_path], check=True, stderr=log("ref"))
    ref = losses(ref_path)
    got = {s: v for s, v in losses(os.path.join(d, "src.jsonl")).items()
           if s < summary["migrated_at_step"]}
    got.update(losses(os.path.join(d, "dst.jsonl")))
    summary.update(losses_equal=got == ref, losses_compared=len(ref),
                   losses_after_migration=[got.get(s) for s in sorted(ref)
                                           if s >= summary["migrated_at_step"]][:3],
                   reference=[ref[s] for s in sorted(ref)
                              if s >= summary["migrated_at_step"]][:3])
    print(json.dumps(summary))
    sys.exit(0 if got == ref else 1)


def last_json(path):
    with open(path) as f:
        lines = [ln for ln in f if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def migrate(a, d, src, dst, src_sock, dst_sock, log, procs):
    """Moves src's flat buffer into dst with gmem-migrate (exits when
    either side fails); returns the summary."""
    wait_for(dst_sock, lambda r: r["state"] == "incoming", 300, dst)
    wait_for(src_sock, lambda r: r["step"] >= a.at, 300, src)
    mig = os.path.join(a.bin, "gmem-migrate")
    addr = "127.0.0.1:%d" % a.port
    msrc = subprocess.Popen([mig, "source", "--control", src_sock, "--listen",
                             addr, "--mode", a.mode, "--max-rounds",
                             str(a.max_rounds), "--quiet", "--json",
                             os.path.join(d, "migrate-source.json")],
                            stdout=subprocess.DEVNULL, stderr=log("migrate-source"))
    procs.append(msrc)
    mdst = subprocess.run([mig, "dest", "--control", dst_sock, "--connect", addr,
                           "--observe-ms", "200", "--quiet", "--json",
                           os.path.join(d, "migrate-dest.json")],
                          stdout=subprocess.DEVNULL, stderr=log("migrate-dest"))
    rc = [msrc.wait(timeout=120), mdst.returncode]
    if rc != [0, 0]:
        sys.exit("run-demo: gmem-migrate failed (%s); logs in %s" % (rc, d))
    after = wait_for(dst_sock, lambda r: r["state"] == "done", 600, dst)
    ask(dst_sock, {"cmd": "quit"})
    dst.wait(timeout=60)
    src.wait(timeout=60)
    rep = json.load(open(os.path.join(d, "migrate-dest.json")))
    moved = losses(os.path.join(d, "dst.jsonl"))
    return {"migrated_at_step": min(moved), "steps_after": a.more,
            "mode": a.mode, "image_bytes": rep.get("image_bytes"),
            "freeze_ms": rep.get("freeze_ms"),
            "switchover_ms": rep.get("switchover_ms"),
            "precopy_pages": rep.get("precopy_pages"),
            "freeze_pages": rep.get("freeze_pages"),
            "source_mirror": last_json(os.path.join(d, "src.log")).get("mirror"),
            "dest_mirror": after.get("mirror"), "logs": d}


if __name__ == "__main__":
    main()
