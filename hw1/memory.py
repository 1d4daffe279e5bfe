"""The C allocator's setting that keeps a long training run's memory flat.

glibc's malloc raises its mmap threshold after a large block is freed (dynamically, up to
32 MiB). Tensors just under the raised threshold then come from the heap, which a training loop
that frees and allocates them every step fragments: the paper's minimal-ratio run (92 members,
31 MiB activations) grew by about 14 MB per epoch, to 23 GB and the kernel's OOM killer at epoch
~1550 of 9500. The same run with 100 members (34 MiB, always mapped) stays at 0.9 GB. A fixed
threshold keeps every tensor above it in its own mapping, returned to the system when freed: flat
memory (0.8 GB), the same arithmetic and bits. Below it, blocks are reused from the heap: at
16 MiB the ci CNN steps (activations of a few MiB) train as fast as with glibc's default, where
a 1 MiB threshold made them 1.45x slower (a fresh mapping and its page faults per activation).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
THRESHOLD = 16 << 20  # bytes: blocks this large or larger are mapped on their own


def pin_mmap_threshold(nbytes: int = THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `nbytes` (which turns its dynamic raising off). -> whether it
    was set (False off glibc, e.g. on macOS, where nothing needs doing)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, nbytes))
    except (OSError, AttributeError):
        return False
