#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Unit tests of the gmem package's torch-free parts: the control socket's
framing and errors (gmem.control) and a region handed over a Unix socket
(gmem._lib, libgmem through ctypes)."""
import array
import errno
import json
import os
import socket
import sys
import tempfile
import unittest

import gmem


class Control(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "c.sock")
        self.region = gmem.Region(16)

        def handler(req):
            if req["cmd"] == "refuse":
                raise gmem.ControlError("refused here")
            if req["cmd"] == "bug":
                return {}["missing"]
            if req["cmd"] == "export":
                return {"_export": self.region}
            return {"echo": req["cmd"]}
        self.srv = gmem.ControlServer(self.path, handler)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

    def tearDown(self):
        self.sock.close()
        self.srv.close()
        os.rmdir(self.dir)

    def ask(self, line):
        self.sock.sendall(line)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = self.sock.recv(1)
            self.assertTrue(chunk, "connection closed")
            buf += chunk
        return json.loads(buf)

    def test_reply(self):
        self.assertEqual(self.ask(b'{"cmd":"query"}\n'), {"echo": "query", "ok": True})

    def test_malformed(self):
        for line, err in ((b"not json\n", "request is not a JSON object"),
                          (b"[1, 2]\n", "request is not a JSON object"),
                          (b'{"cmd": 3}\n', 'request has no "cmd" string')):
            self.assertEqual(self.ask(line), {"ok": False, "error": err})

    def test_refused_and_bug_answer(self):
        self.assertEqual(self.ask(b'{"cmd":"refuse"}\n'),
                         {"ok": False, "error": "refused here"})
        rep = self.ask(b'{"cmd":"bug"}\n')
        self.assertFalse(rep["ok"])
        self.assertIn("KeyError", rep["error"])
        self.assertEqual(self.ask(b'{"cmd":"query"}\n')["ok"], True)

    def test_too_long_closes(self):
        rep = self.ask(b'{"cmd":"' + b"x" * 5000 + b'"}\n')
        self.assertEqual(rep["error"], "request longer than 4096 bytes")
        try:  # closed: with the request's rest unread, by a reset
            self.assertEqual(self.sock.recv(1), b"")
        except ConnectionResetError:
            pass

    def test_export_hands_the_memfd(self):
        self.assertEqual(self.ask(b'{"cmd":"export"}\n'), {"ok": True})
        fds = array.array("i")
        _, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % 4])
        self.assertGreaterEqual(len(fds), 1)
        sizes = [os.fstat(fd).st_size for fd in fds]
        for fd in fds:
            os.close(fd)
        self.assertIn(16 * gmem.PAGE_SIZE, sizes)


class Regions(unittest.TestCase):
    def test_geometry(self):
        r = gmem.Region(8, missing=True)
        self.assertEqual((r.nr_pages, r.size), (8, 8 * 4096))
        self.assertNotEqual(r.addr, 0)
        r.close()

    def test_fill_gate(self):
        r = gmem.Region(8)
        with self.assertRaises(OSError) as e:
            r.fill_set(4096)
        self.assertEqual(e.exception.errno, errno.EINVAL, "no gate yet")
        r.fill_gate()
        r.fill_set(4096)
        r.fill_set(r.size)
        with self.assertRaises(OSError) as e:
            r.fill_set(r.size + 1)
        self.assertIn("gmem_region_fill_set", str(e.exception))
        r.close()

    def test_bad_size_is_oserror(self):
        with self.assertRaises(OSError) as e:
            gmem.Region(0)
        self.assertIn("gmem_region_create", str(e.exception))


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
