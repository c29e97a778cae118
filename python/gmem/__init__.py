# SPDX-License-Identifier: MIT
"""gmem - live migration of GPU memory: the Python side.

``gmem.torch.Migratable`` makes an ordinary PyTorch training job movable by
gmem-migrate, post-copy (it imports torch; this package alone does not).
``gmem.Region`` and ``gmem.ControlServer`` are the pieces it is built of:
a libgmem region (ctypes; set GMEM_LIB_DIR to a build's libgmem/.libs to use
an uninstalled libgmem) and the workload's side of gmem-migrate's control
socket."""
from ._lib import PAGE_SIZE, Region
from .control import ControlError, ControlServer

__all__ = ["PAGE_SIZE", "Region", "ControlError", "ControlServer"]
