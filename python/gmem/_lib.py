# SPDX-License-Identifier: MIT
"""The few libgmem calls the Python package needs, through ctypes: a memfd
region of 4 KiB pages, its fill gate and its export to gmem-migrate.
Errors come back as OSError with the C function's negative errno."""
import ctypes
import os

PAGE_SIZE = 4096
GMEM_REGION_MISSING = 1


class _RegionParams(ctypes.Structure):
    _fields_ = [("nr_pages", ctypes.c_uint64), ("page_size", ctypes.c_uint32),
                ("backing", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("fd", ctypes.c_int32), ("fd_off", ctypes.c_uint64),
                ("name", ctypes.c_char_p), ("dirty_backend", ctypes.c_uint32),
                ("resv0", ctypes.c_uint32), ("resv", ctypes.c_uint64 * 4)]


def _load():
    """libgmem from GMEM_LIB_DIR (colon-separated folders, e.g. a build's
    libgmem/.libs) when set, else from the loader's path."""
    for d in os.environ.get("GMEM_LIB_DIR", "").split(":"):
        p = os.path.join(d, "libgmem.so")
        if d and os.path.exists(p):
            return ctypes.CDLL(p)
    return ctypes.CDLL("libgmem.so.1")


_gmem = None


def _lib():
    global _gmem
    if _gmem is None:
        lib = _load()
        lib.gmem_region_create.argtypes = [ctypes.POINTER(_RegionParams),
                                           ctypes.POINTER(ctypes.c_void_p)]
        lib.gmem_region_addr.restype = ctypes.c_void_p
        lib.gmem_region_addr.argtypes = [ctypes.c_void_p]
        lib.gmem_region_export.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.gmem_region_destroy.argtypes = [ctypes.c_void_p]
        lib.gmem_region_fill_gate.argtypes = [ctypes.c_void_p]
        lib.gmem_region_fill_set.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        _gmem = lib
    return _gmem


def _check(ret, what):
    if ret < 0:
        raise OSError(-ret, "%s: %s" % (what, os.strerror(-ret)))
    return ret


class Region:
    """A memfd region of @nr_pages 4 KiB pages (gmem_region_create()).
    @missing: every page starts missing, filled by the migration's faults
    and push (a destination). @addr is its first byte; reading a missing
    page blocks until gmem-migrate has installed it."""

    def __init__(self, nr_pages, missing=False, name=b"gmem-torch"):
        p = _RegionParams(nr_pages=nr_pages, page_size=PAGE_SIZE,
                          flags=GMEM_REGION_MISSING if missing else 0,
                          name=name)
        self._h = ctypes.c_void_p()
        _check(_lib().gmem_region_create(ctypes.byref(p), ctypes.byref(self._h)),
               "gmem_region_create")
        self.nr_pages = nr_pages
        self.size = nr_pages * PAGE_SIZE
        self.addr = _lib().gmem_region_addr(self._h)

    def export(self, sock_fd):
        """Hands the region to the peer of a Unix socket (gmem_region_export():
        the memfd, userfaultfd and pagemap fds by SCM_RIGHTS)."""
        _check(_lib().gmem_region_export(self._h, sock_fd), "gmem_region_export")

    def fill_gate(self):
        """From now on a page server sends a page only once fill_set() has
        passed it (gmem_region_fill_gate(): the copy into the region may
        run after the switchover); the mark starts at 0. Call before
        export()."""
        _check(_lib().gmem_region_fill_gate(self._h), "gmem_region_fill_gate")

    def fill_set(self, nbytes):
        """The region's first @nbytes bytes are written and may go
        (gmem_region_fill_set(); @nbytes at most self.size)."""
        _check(_lib().gmem_region_fill_set(self._h, nbytes),
               "gmem_region_fill_set")

    def close(self):
        if self._h:
            _lib().gmem_region_destroy(self._h)
            self._h = None
