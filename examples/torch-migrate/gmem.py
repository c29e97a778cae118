# SPDX-License-Identifier: MIT
"""gmem.py - the few libgmem and libgmem-cuda calls the PyTorch demo needs,
through ctypes: a memfd region, its export to gmem-migrate, and the VRAM
mirror (attach, sync, restore, hint). Errors come back as OSError."""
import ctypes
import os

GMEM_REGION_MISSING = 1
GMEM_CUDA_SYNC_ALL = 1
GMEM_CUDA_DEAD = 0


class RegionParams(ctypes.Structure):
    _fields_ = [("nr_pages", ctypes.c_uint64), ("page_size", ctypes.c_uint32),
                ("backing", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("fd", ctypes.c_int32), ("fd_off", ctypes.c_uint64),
                ("name", ctypes.c_char_p), ("dirty_backend", ctypes.c_uint32),
                ("resv0", ctypes.c_uint32), ("resv", ctypes.c_uint64 * 4)]


class CudaStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "nr_pages", "changed_pages", "copied_pages", "dead_pages",
        "fingerprint_ns", "copy_ns", "total_ns")] + \
        [("resv", ctypes.c_uint64 * 4)]

    def as_dict(self):
        return {n: getattr(self, n) for n, _ in self._fields_ if n != "resv"}


def _load(name):
    """Loads lib@name.so from GMEM_LIB_DIR (a build's .libs folders,
    colon-separated), else from the loader's path."""
    for d in os.environ.get("GMEM_LIB_DIR", "").split(":"):
        p = os.path.join(d, "lib%s.so" % name)
        if d and os.path.exists(p):
            return ctypes.CDLL(p)
    return ctypes.CDLL("lib%s.so.1" % name)


_gmem = _load("gmem")
_cuda = _load("gmem-cuda")
_gmem.gmem_region_addr.restype = ctypes.c_void_p
for f in ("gmem_cuda_sync", "gmem_cuda_restore", "gmem_cuda_hint"):
    getattr(_cuda, f).restype = ctypes.c_int64
_cuda.gmem_cuda_attach.argtypes = [ctypes.c_void_p, ctypes.c_uint64,
                                   ctypes.c_void_p, ctypes.c_uint64,
                                   ctypes.c_void_p, ctypes.c_void_p]
_cuda.gmem_cuda_sync.argtypes = [ctypes.c_void_p, ctypes.c_uint,
                                 ctypes.c_void_p]
_cuda.gmem_cuda_restore.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_cuda.gmem_cuda_hint.argtypes = [ctypes.c_void_p, ctypes.c_uint64,
                                 ctypes.c_uint64, ctypes.c_uint]
_cuda.gmem_cuda_detach.argtypes = [ctypes.c_void_p]
_gmem.gmem_region_export.argtypes = [ctypes.c_void_p, ctypes.c_int]
_gmem.gmem_region_destroy.argtypes = [ctypes.c_void_p]


def _check(ret, what):
    if ret < 0:
        raise OSError(-ret, "%s: %s" % (what, os.strerror(-ret)))
    return ret


class Region:
    """A memfd region of @nr_pages 4 KiB pages; @missing: every page
    missing until gmem-migrate serves them (a destination)."""

    def __init__(self, nr_pages, missing=False):
        p = RegionParams(nr_pages=nr_pages, page_size=4096,
                         flags=GMEM_REGION_MISSING if missing else 0,
                         name=b"torch-flat")
        self.h = ctypes.c_void_p()
        _check(_gmem.gmem_region_create(ctypes.byref(p), ctypes.byref(self.h)),
               "gmem_region_create")
        self.nr_pages = nr_pages

    def export(self, sock_fd):
        _check(_gmem.gmem_region_export(self.h, sock_fd), "gmem_region_export")


class Mirror:
    """The VRAM mirror of device memory [@dptr, @dptr + @nbytes) in @region."""

    def __init__(self, region, dptr, nbytes):
        self.h = ctypes.c_void_p()
        _check(_cuda.gmem_cuda_attach(region.h, 0, dptr, nbytes, None,
                                      ctypes.byref(self.h)), "gmem_cuda_attach")

    def sync(self, flags=0):
        st = CudaStats()
        _check(_cuda.gmem_cuda_sync(self.h, flags, ctypes.byref(st)),
               "gmem_cuda_sync")
        return st.as_dict()

    def restore(self):
        st = CudaStats()
        _check(_cuda.gmem_cuda_restore(self.h, ctypes.byref(st)),
               "gmem_cuda_restore")
        return st.as_dict()

    def hint_dead(self, off, nbytes):
        _check(_cuda.gmem_cuda_hint(self.h, off, nbytes, GMEM_CUDA_DEAD),
               "gmem_cuda_hint")
