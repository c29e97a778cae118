# SPDX-License-Identifier: MIT
"""trace-capture.py - gmem_trace (python/) without a GPU: TraceCapture over
fake segments writes the exact trace lines expected, gmem-replay replays the
file (pages, steps and stores as written), the writer refuses what
gmem-replay would refuse, and the command line rejects bad options with exit
2. Run by tests/trace-capture.sh (GMEM_REPLAY, PYTHONPATH)."""
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

import gmem_trace
from gmem_trace import TraceCapture, TraceWriter, runs_of

PS = 4096
REPLAY = os.environ["GMEM_REPLAY"]


class FakeSource:
    """Segments as host bytearrays; fingerprints per page with blake2b."""

    def __init__(self):
        self.mem = {}        # address -> bytearray
        self.digests = {}

    def synchronize(self):
        pass

    def segments(self):
        return [(a, len(m)) for a, m in self.mem.items()]

    def forget(self, key):
        self.digests.pop(key, None)

    def changed(self, key, addr, nr_pages, page_size):
        m = self.mem[addr]
        d = [hashlib.blake2b(m[i * page_size:(i + 1) * page_size]).digest()
             for i in range(nr_pages)]
        old, self.digests[key] = self.digests.get(key), d
        return runs_of(i for i in range(nr_pages)
                       if old is None or d[i] != old[i])

    def write(self, addr, page, byte=1):
        self.mem[addr][page * PS] ^= byte


class Clock:
    def __init__(self):
        self.t = 0

    def __call__(self):
        self.t += 1000000   # each reading 1 ms later
        return self.t


def replay(path, steps):
    r = subprocess.run([REPLAY, "--trace", path, "--steps", str(steps),
                        "--quiet"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode:
        raise AssertionError(f"gmem-replay exited {r.returncode}: {r.stderr}")
    return json.loads(r.stdout)


class Capture(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "fake.trace.gz")

    def tearDown(self):
        self.dir.cleanup()

    def test_steps_hold_exactly_the_pages_written(self):
        src = FakeSource()
        src.mem[0x7000000] = bytearray(8 * PS)
        src.mem[0x9000000] = bytearray(4 * PS + 100)   # a partial page
        cap = TraceCapture(self.path, source=src, clock=Clock())
        cap.step()                                     # the image
        for p in (1, 2, 3, 7):
            src.write(0x7000000, p)
        src.write(0x9000000, 0)
        cap.step()
        src.mem[0xb000000] = bytearray(2 * PS)         # a new segment
        src.write(0x7000000, 3)
        cap.step()
        del src.mem[0x9000000]                         # released
        src.write(0x7000000, 0)
        cap.step()
        src.mem[0x9000000] = bytearray(4 * PS + 100)   # back again
        cap.step()
        self.assertFalse(os.path.exists(self.path), "no file before close")
        cap.close()
        self.assertFalse(os.path.exists(self.path + ".part"))
        with gzip.open(self.path, "rt") as f:
            lines = f.read().splitlines()
        # Each step is timed from the end of the previous observation to the
        # start of this one: one clock reading apart, 1 ms.
        self.assertEqual(lines, [
            "segment 0 first 0 pages 8",
            "segment 1 first 8 pages 4",
            "step 0 dur_ns 0 ranges 0+12",
            "step 1 dur_ns 1000000 ranges 1+3 7+2",
            "segment 2 first 12 pages 2",
            "step 2 dur_ns 1000000 ranges 3+1 12+2",
            "step 3 dur_ns 1000000 ranges 0+1",
            "step 4 dur_ns 1000000 ranges 8+4",
            "total_pages 14 page_size 4096",
        ])
        # gmem-replay reads it: every page and step, and stores as many
        # pages as the image (12: the segment of step 2 was not there yet)
        # and steps 1..3 list (5 + 3 + 1); the region has all 14.
        r = replay(self.path, 3)
        self.assertEqual((r["trace"], r["trace_pages"], r["trace_steps"],
                          r["nr_pages"], r["steps_done"]),
                         ("fake", 14, 5, 14, 3))
        self.assertEqual(r["device"]["seq"], 12 + 5 + 3 + 1)

    def test_context_manager_drops_the_file_on_an_exception(self):
        src = FakeSource()
        src.mem[0x1000] = bytearray(PS)
        with self.assertRaises(RuntimeError):
            with TraceCapture(self.path, source=src) as cap:
                cap.step()
                raise RuntimeError("the job failed")
        self.assertEqual(os.listdir(self.dir.name), [])

    def test_a_trace_needs_the_image_and_a_step(self):
        src = FakeSource()
        src.mem[0x1000] = bytearray(PS)
        cap = TraceCapture(self.path, source=src)
        cap.step()
        with self.assertRaisesRegex(ValueError, "at least one step"):
            cap.close()
        self.assertEqual(os.listdir(self.dir.name), [])


class Writer(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.w = TraceWriter(os.path.join(self.dir.name, "w.trace.gz"))

    def tearDown(self):
        self.w.abort()
        self.dir.cleanup()

    def test_refuses_what_gmem_replay_refuses(self):
        self.w.segment(10)
        with self.assertRaisesRegex(ValueError, "image"):
            self.w.step(5, [(0, 10)])
        self.w.step(0, [(0, 10)])
        for bad in ([(5, 2), (3, 1)], [(4, 2), (5, 1)], [(8, 3)], [(1, 0)]):
            # descending, overlapping, beyond the segments, empty
            with self.assertRaises(ValueError, msg=str(bad)):
                self.w.step(1, bad)
        with self.assertRaises(ValueError):
            self.w.segment(0)
        with self.assertRaises(ValueError):
            TraceWriter(os.path.join(self.dir.name, "x"), page_size=3000)

    def test_runs_of(self):
        self.assertEqual(runs_of([0, 1, 2, 5, 7, 8]), [(0, 3), (5, 1), (7, 2)])
        self.assertEqual(runs_of([]), [])

    def test_a_step_with_no_page_written_replays(self):
        path = self.w.path
        self.w.segment(3)
        self.w.step(0, [(0, 3)])
        self.w.step(2000000, [])
        self.w.step(1000000, [(1, 2)])
        self.w.close()
        r = replay(path, 2)
        self.assertEqual((r["trace_pages"], r["trace_steps"]), (3, 3))
        self.assertEqual(r["device"]["seq"], 3 + 0 + 2)


class CommandLine(unittest.TestCase):
    def run_cli(self, *args):
        return subprocess.run([sys.executable, "-m", "gmem_trace", *args],
                              capture_output=True, text=True, timeout=60)

    def test_help(self):
        r = self.run_cli("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: gmem-trace-capture --output FILE", r.stdout)

    def test_usage_errors_are_one_line_exit_2(self):
        for args, says in ((["--every", "0", "-o", "f", "x.py"], "--every"),
                           (["--steps", "-3", "-o", "f", "x.py"], "--steps"),
                           (["--page-size", "1000", "-o", "f", "x.py"],
                            "--page-size"),
                           (["--at", "backward", "-o", "f", "x.py"], "--at"),
                           (["x.py"], "--output"),
                           (["-o", "f"], "SCRIPT or -m MODULE")):
            r = self.run_cli(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(says, r.stderr)

    def test_without_pytorch_says_so(self):
        try:
            import torch  # noqa: F401
            self.skipTest("PyTorch is installed here")
        except ImportError:
            pass
        r = self.run_cli("-o", "f.trace.gz", "--", "job.py")
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs PyTorch", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
