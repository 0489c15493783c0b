"""Row batches from any source: numpy / memmap / zarr / dask arrays or an iterable of arrays.

Only one batch is materialised at a time, so memory stays bounded by the batch size.
:func:`iter_batches` and :func:`read_rows` slice any array-like; :class:`RowSource` adds
validation, shuffled in-memory batches and one-shot iterators for the estimators.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "BLOCK_BYTES",
    "RowSource",
    "is_array_like",
    "is_stream",
    "iter_batches",
    "read_rows",
    "rows_per_block",
]

#: bytes read at once from a memmap / zarr / dask array (about 16 MB)
BLOCK_BYTES = 1 << 24


def is_array_like(X: Any) -> bool:
    """True for objects that can be sliced by rows (numpy, memmap, zarr, dask, torch)."""
    return hasattr(X, "shape") and hasattr(X, "__getitem__") and hasattr(X, "dtype")


def is_stream(X: Any) -> bool:
    """True for sources read batch by batch: memmap, zarr, dask, iterables of batches.

    numpy arrays, lists, tuples, torch tensors, DataFrames and sparse matrices are data
    in memory (sparse input is left to scikit-learn's validation, which refuses it).
    """
    import scipy.sparse

    if isinstance(X, np.memmap):
        return True
    if scipy.sparse.issparse(X):
        return False
    if isinstance(X, (np.ndarray, list, tuple)) or hasattr(X, "columns"):
        return False
    if type(X).__module__.startswith("torch") and hasattr(X, "detach"):
        return False
    if is_array_like(X):
        return True
    return isinstance(X, Iterable) and not isinstance(X, (str, bytes))


def rows_per_block(
    row_shape: tuple[int, ...], itemsize: int = 4, budget: int | None = None
) -> int:
    """Rows of shape ``row_shape`` that fit in ``budget`` bytes (default :data:`BLOCK_BYTES`)."""
    row_bytes = itemsize * max(1, int(np.prod(row_shape)))
    return max(1, (BLOCK_BYTES if budget is None else budget) // row_bytes)


def read_rows(X: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of an array-like, computed when it is a dask array."""
    block = X[start:stop]
    if hasattr(block, "compute"):  # dask
        block = block.compute()
    return block


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
            yield read_rows(X, start, start + batch_size)
        return
    if isinstance(X, Iterable) and not isinstance(X, (str, bytes)):
        yield from X
        return
    raise TypeError(f"expected an array or an iterable of batches, got {type(X).__name__}")


class RowSource:
    """Validated access to an estimator's data, one bounded batch at a time.

    Parameters
    ----------
    X : array or stream
        Data in memory (validated at once), an array-like read in blocks, or an iterable
        of batches (an iterator is read once).
    check : callable
        ``check(block) -> ndarray``: validates and converts one block (or all the data).
    ndim : int or tuple of int
        Allowed ranks of array-like sources (checked before anything is read).

    Attributes
    ----------
    array : ndarray or None
        The data, when in memory.
    n : int or None
        Number of rows, when known before reading (arrays of any kind).
    once : bool
        True for a one-shot iterator.
    shape : tuple of int
        Shape of one row.
    dtype : numpy dtype
        float64 for float64 sources, float32 otherwise.
    """

    def __init__(self, X: Any, *, check: Any, ndim: int | tuple[int, ...]) -> None:
        self._check = check
        self.array: np.ndarray | None = None
        self.source: Any = None
        self.once = False
        self.n: int | None = None
        self._pending: list[np.ndarray] = []
        self._iterator: Iterator[Any] | None = None
        if not is_stream(X):
            self.array = check(X)
            self.n = self.array.shape[0]
            self.dtype = self.array.dtype
            self.shape = tuple(self.array.shape[1:])
        elif is_array_like(X):
            shape = tuple(int(s) for s in X.shape)
            allowed = (ndim,) if isinstance(ndim, int) else ndim
            if len(shape) not in allowed:
                raise ValueError(f"X must be a {' or '.join(f'{d}-D' for d in allowed)} "
                                 f"array, got shape {shape}")
            if shape[0] < 1:
                raise ValueError("X has 0 samples, at least 1 required")
            self.source = X
            self.n = shape[0]
            self.shape = shape[1:]
            self.dtype = np.dtype(np.float64 if np.dtype(X.dtype) == np.float64 else np.float32)
        else:
            self.source = X
            self.once = iter(X) is X
            first = self._peek()
            self.shape = tuple(first.shape[1:])
            self.dtype = first.dtype

    def _peek(self) -> np.ndarray:
        """First batch of a stream (kept, so that a one-shot iterator loses nothing)."""
        it = iter(self.source)
        if self.once:
            self._iterator = it
        for block in it:
            block = self._check_at(block, 0)
            if self.once:
                self._pending.append(block)
            return block
        raise ValueError("X is an empty iterable: no batches to read")

    def _check_at(self, block: Any, offset: int) -> np.ndarray:
        """``check(block)``, with a row named in its error counted from the stream's start
        (``offset`` rows came before the block)."""
        try:
            return self._check(block)
        except ValueError as exc:
            if offset == 0:
                raise
            raise renumbered(exc, offset) from None

    def blocks(self) -> Iterator[np.ndarray]:
        """The source's blocks in order, validated, one at a time (streams only)."""
        if self.once:
            if self._iterator is None:
                raise ValueError("the iterator of batches was already consumed")
            pending, self._pending = self._pending, []
            yield from pending
            offset = sum(b.shape[0] for b in pending)
            it, self._iterator = self._iterator, None
            for block in it:
                block = self._check_at(block, offset)
                offset += block.shape[0]
                yield block
            return
        offset = 0
        for block in iter_batches(self.source, rows_per_block(self.shape)):
            block = self._check_at(block, offset)
            offset += block.shape[0]
            yield block

    def batches(
        self, batch_size: int, rng: np.random.RandomState | None = None
    ) -> Iterator[np.ndarray]:
        """Batches of at most ``batch_size`` rows; in-memory data are shuffled by ``rng``."""
        if self.array is not None:
            order = rng.permutation(self.n) if rng is not None else None
            for start in range(0, self.n, batch_size):
                if order is None:
                    yield self.array[start : start + batch_size]
                else:
                    yield self.array[np.sort(order[start : start + batch_size])]
            return
        for block in self.blocks():
            for start in range(0, block.shape[0], batch_size):
                yield block[start : start + batch_size]

    def head(self, n_rows: int) -> np.ndarray:
        """At least ``n_rows`` leading rows when available (for initialisation)."""
        if self.array is not None:
            return self.array[:n_rows]
        if self.once:
            # pull blocks into the pending list so that training still sees them
            rows = sum(b.shape[0] for b in self._pending)
            while rows < n_rows and self._iterator is not None:
                block = next(self._iterator, None)
                if block is None:
                    break
                block = self._check_at(block, rows)
                self._pending.append(block)
                rows += block.shape[0]
            return np.concatenate(self._pending)
        parts, rows = [], 0
        for block in self.blocks():
            parts.append(block)
            rows += block.shape[0]
            if rows >= n_rows:
                break
        return np.concatenate(parts)


def renumbered(exc: ValueError, offset: int) -> ValueError:
    """``exc`` with the row it names ("at row i") counted ``offset`` rows further: an error
    of one batch, numbered in the whole data."""

    def shift(m: re.Match) -> str:
        return f"{m.group(1)}{int(m.group(2)) + offset}"

    return ValueError(re.sub(r"(\bat row )(\d+)", shift, str(exc)))
