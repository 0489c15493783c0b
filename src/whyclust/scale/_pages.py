"""Handing memmap pages and freed heap back to the kernel between streamed batches."""

from __future__ import annotations

import ctypes
import mmap
import sys
from typing import Any

import numpy as np

_PAGE = mmap.PAGESIZE
_madvise = None
_libc = None
if sys.platform.startswith("linux") and hasattr(mmap, "MADV_DONTNEED"):
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _madvise = _libc.madvise
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
        _madvise = None
_malloc_trim = getattr(_libc, "malloc_trim", None) if _libc is not None else None
if _malloc_trim is not None:
    _malloc_trim.argtypes = [ctypes.c_size_t]
    _malloc_trim.restype = ctypes.c_int


def _trim_heap() -> None:
    """Give freed heap memory back to the kernel (glibc's ``malloc_trim``).

    Batch-sized buffers freed by numpy, zarr or torch stay in glibc's arenas once its
    dynamic mmap threshold has grown past their size; over a long stream that retention
    reached twice the working set (measured with zarr input). One call per batch costs
    microseconds against the batch's milliseconds.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


def _shared_memmap(arr: Any) -> bool:
    """True for memmap views whose pages the kernel can drop without losing data.

    Read-only and shared mappings (modes r, r+, w+) re-read dropped pages from the file;
    copy-on-write mappings (mode c) would lose their private changes, so they are skipped.
    """
    return (
        isinstance(arr, np.memmap)
        and getattr(arr, "_mmap", None) is not None
        and getattr(arr, "mode", None) in ("r", "r+", "w+", "readonly", "readwrite", "write")
    )


def _drop_pages(arr: np.memmap) -> None:
    """madvise(MADV_DONTNEED) on the whole pages inside ``arr``'s memory range."""
    if _madvise is None or arr.nbytes == 0:
        return
    begin = arr.__array_interface__["data"][0]
    end = begin + arr.nbytes
    first = -(-begin // _PAGE) * _PAGE  # only pages entirely inside the range
    last = end // _PAGE * _PAGE
    if last > first:
        _madvise(first, last - first, mmap.MADV_DONTNEED)


def _release(block: Any, enabled: bool) -> None:
    """After a batch: drop its memmap pages and trim the heap (``release_pages``)."""
    if not enabled:
        return
    if _shared_memmap(block) and block.flags.c_contiguous:
        _drop_pages(block)
    _trim_heap()


def _release_written(out: Any, start: int, stop: int, enabled: bool) -> None:
    if enabled and _shared_memmap(out) and out.flags.c_contiguous:
        _drop_pages(out[start:stop])
