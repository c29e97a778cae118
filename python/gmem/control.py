# SPDX-License-Identifier: MIT
"""The workload's side of gmem-migrate's control socket (the protocol of
bench/REPLAY.md): one JSON request per line, one JSON reply per request,
any number of clients. An ``export`` reply is followed on the same
connection by the region's fds (gmem_region_export())."""
import json
import os
import socket
import threading

MAX_REQUEST = 4096


class ControlError(Exception):
    """A request the workload refuses; its text becomes the reply's
    ``error``."""


class ControlServer:
    """Serves @handler (``handler(request_dict) -> reply_dict``; a reply
    holding ``"_export": region`` exports that region after the reply line)
    on the Unix socket @path, from daemon threads. A stale socket file at
    @path is replaced."""

    def __init__(self, path, handler):
        self.path, self.handler = path, handler
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        threading.Thread(target=self._accept, daemon=True,
                         name="gmem-control").start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="gmem-control-conn").start()

    def _serve(self, conn):
        f = conn.makefile("rb", buffering=0)
        with conn:
            while True:
                line = f.readline(MAX_REQUEST + 1)
                if not line:
                    return
                if len(line) > MAX_REQUEST:
                    self._reply(conn, {"ok": False,
                                       "error": "request longer than 4096 bytes"})
                    return
                rep = self._answer(line)
                region = rep.pop("_export", None)
                self._reply(conn, rep)
                if region is not None:
                    region.export(conn.fileno())

    def _answer(self, line):
        try:
            req = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "request is not a JSON object"}
        if not isinstance(req, dict):
            return {"ok": False, "error": "request is not a JSON object"}
        if not isinstance(req.get("cmd"), str):
            return {"ok": False, "error": 'request has no "cmd" string'}
        try:
            return dict(self.handler(req), ok=True)
        except ControlError as e:
            return {"ok": False, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - a bug answers, not hangs
            return {"ok": False, "error": "internal error: %s: %s"
                    % (type(e).__name__, e)}

    @staticmethod
    def _reply(conn, rep):
        conn.sendall(json.dumps(rep).encode() + b"\n")

    def close(self):
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
