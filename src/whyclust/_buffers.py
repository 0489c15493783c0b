"""Output buffers for the (n, d) relevance of an explanation call."""

from __future__ import annotations

import mmap

import numpy as np

__all__ = ["output_array"]


def output_array(shape: tuple[int, ...], dtype: np.dtype, *, faulted: bool = True) -> np.ndarray:
    """A fresh, writable C-contiguous array for a kernel's output (``np.empty``).

    With ``faulted`` its pages are touched before it is returned, for callers whose
    kernels fault pages in slowly (torch's); without, the first writer faults them, so
    that numpy's worker threads share the cost. numpy asks Linux for transparent huge
    pages for large arrays: one fault per 2 MiB instead of per 4 KiB.
    """
    out = np.empty(shape, dtype=dtype)
    if faulted:
        _touch(out)
    return out


def _touch(out: np.ndarray) -> None:
    out.reshape(-1)[:: max(1, mmap.PAGESIZE // out.itemsize)] = 0
