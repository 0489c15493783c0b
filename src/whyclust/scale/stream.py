"""Streaming in one process: row-sliceable input in, relevance written batch by batch."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from whyclust._batches import read_rows, renumbered
from whyclust._validation import (
    SAMPLE_NDIM,
    as_float_array,
    beta_from_mean,
    check_beta,
    resolve_dtype,
    unknown_option,
)
from whyclust.engine.kmeans import KMeansGeometry, assigned_logits, check_finite_scores
from whyclust.explainers import run_method
from whyclust.explainers.explanation import PER_POINT_EXTRAS, Explanation
from whyclust.explainers.kmeans import explain_kmeans, kmeans_centers
from whyclust.scale._common import (
    _assigned_logits,
    _bounds,
    _is_dask,
    _needs_global_bounds,
    _network,
    _resolve_means,
    _row_options,
)
from whyclust.scale._pages import _release, _release_written

__all__ = ["explain_to", "predict_stream"]

#: input values per batch of the streaming functions (16 MB of float32)
_STREAM_VALUES = 1 << 22


def explain_to(
    model: Any,
    X: Any,
    out: Any,
    method: str = "neon",
    *,
    target: Any = "assigned",
    beta: float | str = "auto",
    batch_size: int | None = None,
    release_pages: bool = True,
    **options: Any,
) -> Explanation:
    """Explain ``X`` batch by batch, writing the relevance into ``out``.

    For data bigger than memory: only one batch of ``X`` and of the relevance is held at a
    time (``space="model"`` of a Pipeline keeps its model-space relevance whole). Results
    equal those of :func:`whyclust.explain` on the whole array (up to float rounding with a
    ``reference``, which takes another code path). ``out`` is written batch by
    batch: when a later batch fails (a NaN row, numbered in ``X``), the rows before it are
    already written; ``out`` must not share memory with ``X``.

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
        Anything :func:`whyclust.networks` accepts.
    X : array-like of shape (n, d) or (n, C, H, W)
        Anything sliceable by rows: ``np.memmap``, zarr or h5py arrays, dask arrays.
    out : array-like, writable
        Receives the relevance; shape ``X.shape`` or ``(n, prod(X.shape[1:]))``, e.g. an
        ``np.memmap`` opened with ``mode="w+"`` or a zarr array of float dtype.
    method, target, beta, **options
        As in :func:`whyclust.explain`; ``target`` / ``contrast`` arrays of shape (n,) and a
        ``reference`` of one row per point are sliced with the batches. ``beta="auto"``
        costs one extra pass over ``X`` (the mean assigned-cluster logit) before the
        relevance pass.
    batch_size : int, optional
        Rows per batch; default: about 4M input values (16 MB of float32) per batch,
        rounded to whole row chunks of a chunked ``out`` (zarr, HDF5).
    release_pages : bool, default=True
        For ``np.memmap`` input and output (modes ``"r"``, ``"r+"``, ``"w+"``), hand each
        processed batch's pages back to the kernel (``madvise(MADV_DONTNEED)``). The data
        stay in the page cache and on disk, but no longer count in this process's resident
        set, which would otherwise grow to the size of both files.

    Returns
    -------
    Explanation
        ``relevance`` is ``out``; ``logit``, ``cluster`` and ``target`` are (n,) numpy
        arrays; ``extras`` are the first batch's, with the per-point arrays of all batches
        joined.
    """
    engine = _numpy_engine(model, X, method, options)
    net = _network(model) if engine is None else None
    n, feature_shape = _check_rows_input(X, engine or net)
    d = math.prod(feature_shape)
    if not (hasattr(out, "shape") and hasattr(out, "__setitem__")) or _is_dask(out):
        raise TypeError(
            f"out must be a writable array-like (numpy, np.memmap, zarr), got "
            f"{type(out).__name__}"
            + (
                "; with dask, explain X lazily and use e.relevance.to_zarr(...)"
                if _is_dask(out)
                else ""
            )
        )
    out_shape = tuple(out.shape)
    if out_shape not in ((n, *feature_shape), (n, d)):
        raise ValueError(f"out must have shape {(n, *feature_shape)} or {(n, d)}, got {out_shape}")
    if np.dtype(out.dtype).kind != "f":
        raise TypeError(f"out must have a floating dtype, got {out.dtype}")
    if isinstance(out, np.ndarray) and not out.flags.writeable:  # torch would write anyway
        raise ValueError("out is read-only (open a memmap with mode='r+' or 'w+')")
    if isinstance(out, np.ndarray) and isinstance(X, np.ndarray) and np.may_share_memory(out, X):
        raise ValueError("out shares memory with X: the relevance would overwrite the rows "
                         "it is computed from; give another array")  # fmt: skip
    bs = _stream_batch_size(batch_size, d, out if batch_size is None else None)
    device = options.get("device")
    contrast = options.pop("contrast", None)
    target = _check_column(target, n, "target")
    contrast = _check_column(contrast, n, "contrast")

    beta = check_beta(beta)
    asked = options.get("reference")  # "mean" is resolved to a point below: named as asked
    rows_of = _row_options(options, n, feature_shape)  # sliced with the batches
    want_beta = beta == "auto" and contrast is None
    want_bounds = engine is None and _needs_global_bounds(net, method, options)
    want_mean = _resolve_means(model, method, options)
    if want_beta or want_bounds or want_mean:
        total, low, high = 0.0, math.inf, -math.inf
        sums = np.zeros(d, dtype=np.float64)
        for start in _read_only_ok(range(0, n, bs)):
            raw = read_rows(X, start, start + bs)
            block = _as_batch(raw)
            if want_beta:
                if engine is not None:
                    scores = engine.scores(engine.prepare(block))
                    check_finite_scores(scores, start)
                    total += float(assigned_logits(scores).sum(dtype=np.float64))
                else:
                    total += float(_assigned_logits(net, block, device).sum())
            if want_bounds:
                low, high = min(low, float(block.min())), max(high, float(block.max()))
            if want_mean:
                sums += block.reshape(block.shape[0], d).sum(0, dtype=np.float64)
            _release(raw, release_pages)
        for key in want_mean:
            options[key] = (sums / n).reshape(feature_shape)
        if want_beta:
            beta = beta_from_mean(total / n)
        if want_bounds:
            options["bounds"] = _bounds(low, high)

    dtype = resolve_dtype(X.dtype)
    logit = np.empty(n, dtype=dtype)
    cluster = np.empty(n, dtype=np.int64)
    tgt = np.empty(n, dtype=np.int64)
    direct = (
        engine is not None
        and isinstance(out, np.ndarray)
        and out.flags.c_contiguous
        and out.dtype == engine.centers.dtype
    )
    first: Explanation | None = None
    per_row: list[dict[str, np.ndarray]] = []  # each batch's per-point extras
    for start in _read_only_ok(range(0, n, bs)):
        stop = min(n, start + bs)
        block = read_rows(X, start, stop)
        rows_target = _slice(target, start, stop)
        rows_contrast = _slice(contrast, start, stop)
        if engine is not None:
            into = out[start:stop].reshape(stop - start, d) if direct else None
            e = explain_kmeans(
                engine.centers, _as_batch(block), target=rows_target, beta=beta,
                contrast=rows_contrast, eps=options.get("eps"), out=into, first_row=start,
            )  # fmt: skip
        else:
            try:
                e = run_method(
                    net,
                    as_float_array(_as_batch(block), ndim=SAMPLE_NDIM),
                    method,
                    target=rows_target,
                    beta=beta,
                    **({"contrast": rows_contrast} if contrast is not None else {}),
                    **{key: _slice(value, start, stop) for key, value in rows_of.items()},
                    **options,
                )
            except ValueError as exc:  # a row of this batch: numbered in X
                raise renumbered(exc, start) from None
            except TypeError as exc:
                raise unknown_option(exc, model, method, options) from None
        if not direct:
            out[start:stop] = e.relevance.reshape((stop - start, *out_shape[1:]))
        logit[start:stop] = e.logit
        cluster[start:stop] = e.cluster
        tgt[start:stop] = e.target
        if first is None:
            first = e
        per_row.append({k: np.asarray(v) for k, v in e.extras.items() if k in PER_POINT_EXTRAS})
        _release(block, release_pages)
        _release_written(out, start, stop, release_pages)
    assert first is not None  # n >= 1
    return Explanation(
        relevance=out,
        logit=logit,
        cluster=cluster,
        target=tgt,
        beta=first.beta,
        method=first.method,
        contrast=None if contrast is None else _full_column(contrast, n),
        extras={**_joined_extras(first.extras, per_row),
                **({"reference": asked} if isinstance(asked, str) else {})},
    )  # fmt: skip


def _joined_extras(first: dict[str, Any], per_row: list[dict[str, np.ndarray]]) -> dict:
    """The first batch's extras, with the per-point arrays (conservation, reference part,
    roots, ...) of every batch joined over all rows."""
    extras = {k: v for k, v in first.items() if k not in per_row[0]}
    for key in per_row[0]:
        if all(key in part for part in per_row):
            extras[key] = np.concatenate([part[key] for part in per_row])
    return extras


def predict_stream(
    model: Any, X: Any, *, batch_size: int | None = None, release_pages: bool = True
) -> np.ndarray:
    """Cluster index of every row of a row-sliceable ``X`` (memmap, zarr, ...), batch by batch.

    Unlike ``net.predict``, which validates (and so reads) the whole array at once, memory
    stays bounded by the batch size; see :func:`explain_to` for ``release_pages``.
    """
    engine = _numpy_engine(model, X, "neon", {})
    net = _network(model) if engine is None else None
    n, feature_shape = _check_rows_input(X, engine or net)
    bs = _stream_batch_size(batch_size, math.prod(feature_shape))
    labels = np.empty(n, dtype=np.int64)
    for start in _read_only_ok(range(0, n, bs)):
        block = read_rows(X, start, start + bs)
        rows = slice(start, start + block.shape[0])
        if engine is not None:
            scores = engine.scores(engine.prepare(_as_batch(block)))
            check_finite_scores(scores, start)
            labels[rows] = scores.argmax(1)
        else:
            labels[rows] = net.predict(_as_batch(block), batch_size=bs)
        _release(block, release_pages)
    return labels


def _numpy_engine(
    model: Any, X: Any, method: str, options: dict[str, Any]
) -> KMeansGeometry | None:
    """The torch-free k-means engine when it computes exactly what was asked, else None."""
    if method != "neon" or set(options) - {"device", "eps", "contrast"}:
        return None
    device = options.get("device")
    if device is not None and str(device) != "cpu":
        return None
    centers = kmeans_centers(model)
    if centers is None or not hasattr(X, "dtype"):
        return None
    centers = np.ascontiguousarray(
        centers.cpu().numpy() if hasattr(centers, "cpu") else centers,
        dtype=resolve_dtype(X.dtype),
    )
    return KMeansGeometry(centers, options.get("eps"))


def _check_rows_input(X: Any, net: Any) -> tuple[int, tuple[int, ...]]:
    if not (hasattr(X, "shape") and hasattr(X, "dtype") and hasattr(X, "__getitem__")):
        raise TypeError(
            f"X must be an array-like sliceable by rows (numpy, memmap, zarr, dask), "
            f"got {type(X).__name__}"
        )
    shape = tuple(int(s) for s in X.shape)
    if len(shape) not in (2, 3, 4):
        raise ValueError(f"X must be a 2-D, 3-D or 4-D array, got shape {shape}")
    if shape[0] < 1:
        raise ValueError("X has 0 sample(s), at least 1 required")
    if np.dtype(X.dtype).kind not in "fiub":
        raise TypeError(f"X must be real-valued numeric, got dtype {X.dtype}")
    n_features = getattr(net, "n_features", None)
    d = math.prod(shape[1:])
    if n_features and d != n_features:
        raise ValueError(f"X has {d} features, but the model was fitted with {n_features}")
    return shape[0], shape[1:]


def _stream_batch_size(batch_size: int | None, d: int, out: Any = None) -> int:
    if batch_size is None:
        bs = max(1, _STREAM_VALUES // max(1, d))
        chunks = getattr(out, "chunks", None)
        if isinstance(chunks, tuple) and chunks and isinstance(chunks[0], (int, np.integer)):
            # whole chunks of a zarr / HDF5 output: no chunk is read back and rewritten
            rows = int(chunks[0])
            bs = max(1, round(bs / rows)) * rows
        return bs
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an integer, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


def _check_column(value: Any, n: int, name: str) -> Any:
    """Scalars and strings pass; arrays must have shape (n,) and stay unread until sliced."""
    if value is None or isinstance(value, str) or np.ndim(value) == 0:
        return value
    if not hasattr(value, "shape"):
        value = np.asarray(value)
    if tuple(value.shape) != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {value.shape}")
    return value


def _slice(value: Any, start: int, stop: int) -> Any:
    if value is None or isinstance(value, str) or np.ndim(value) == 0:
        return value
    return np.asarray(read_rows(value, start, stop))


def _full_column(value: Any, n: int) -> np.ndarray:
    if np.ndim(value) == 1:
        return np.asarray(read_rows(value, 0, n))
    return np.full(n, int(value), dtype=np.int64)


def _read_only_ok(starts: range) -> Iterator[int]:
    """Iterate with torch's warning about read-only numpy arrays silenced.

    Batches of a read-only memmap become tensors that are only ever read.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        yield from starts


def _as_batch(block: Any) -> np.ndarray:
    """A batch as a float array without copying float32 / float64 memmap slices."""
    arr = np.asarray(block)
    return arr if arr.dtype == resolve_dtype(arr.dtype) else arr.astype(resolve_dtype(arr.dtype))
