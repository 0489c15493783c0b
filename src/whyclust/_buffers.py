"""Output buffers for the (n, d) relevance of an explanation call."""

from __future__ import annotations

import mmap
import sys

import numpy as np

__all__ = ["output_array"]

#: outputs of at least this many bytes get their own mapping (smaller ones: np.empty)
_MAPPED_BYTES = 1 << 25
#: madvise(2) MADV_POPULATE_WRITE (Linux >= 5.14); Python 3.11's mmap module lacks the name
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)


def output_array(shape: tuple[int, ...], dtype: np.dtype, *, faulted: bool = True) -> np.ndarray:
    """A fresh, writable C-contiguous array for a kernel's output.

    On Linux a large output is a private anonymous mapping of base pages: ``np.empty``
    asks for transparent huge pages there, and on memory that a virtual machine's host
    backs lazily their faults cost many times more (BENCHMARKS.md, "The first
    explanation"). With ``faulted`` its pages are faulted in before it is returned, in one
    ``madvise(MADV_POPULATE_WRITE)`` call (page by page where the kernel lacks it), for
    callers whose kernels should not fault; without, the first writer faults them. The
    mapping is released with the last array that uses it.
    """
    dtype = np.dtype(dtype)
    count = 1
    for size in shape:
        count *= int(size)
    nbytes = count * dtype.itemsize
    if not sys.platform.startswith("linux") or nbytes < _MAPPED_BYTES:
        out = np.empty(shape, dtype=dtype)
        if faulted:
            _touch(out)
        return out
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    out = np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)
    if faulted:
        try:
            buf.madvise(_POPULATE_WRITE)
        except OSError:  # kernels before 5.14
            _touch(out)
    return out


def _touch(out: np.ndarray) -> None:
    out.reshape(-1)[:: max(1, mmap.PAGESIZE // out.itemsize)] = 0
