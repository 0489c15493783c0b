"""Row batches from any source: numpy / memmap / zarr / dask arrays or an iterable of arrays.

Only one batch is materialised at a time, so memory stays bounded by the batch size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["is_array_like", "iter_batches"]


def is_array_like(X: Any) -> bool:
    """True for objects that can be sliced by rows (numpy, memmap, zarr, dask, torch)."""
    return hasattr(X, "shape") and hasattr(X, "__getitem__") and hasattr(X, "dtype")


def iter_batches(X: Any, batch_size: int) -> Iterator[Any]:
    """Yield row blocks of at most ``batch_size`` rows.

    Array-likes are sliced (dask blocks are computed one slice at a time); any other
    iterable is taken to yield batches already and is passed through as is.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if is_array_like(X):
        n = X.shape[0]
        for start in range(0, n, batch_size):
            block = X[start : start + batch_size]
            if hasattr(block, "compute"):  # dask
                block = block.compute()
            yield block
        return
    if isinstance(X, Iterable) and not isinstance(X, (str, bytes)):
        yield from X
        return
    raise TypeError(f"expected an array or an iterable of batches, got {type(X).__name__}")
