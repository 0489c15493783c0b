"""Explanations beyond one machine's memory: Dask arrays and bounded-memory streaming.

- :func:`explain_dask` / :func:`predict_dask`: lazy dask arrays, one task per row chunk,
  the network shipped to the workers once (a single graph key every task depends on).
- :func:`explain_to` / :func:`predict_stream`: one process, any row-sliceable input
  (``np.memmap``, zarr, HDF5, dask), relevance written batch by batch into an output
  array-like (``np.memmap``, zarr), so that memory is bounded by the batch size.

Both give the same numbers as the in-memory :func:`whyclust.explain`: with
``beta="auto"`` a first pass computes the mean assigned-cluster logit over all of ``X``
and every batch is then explained with that one beta.

For plain k-means models (centroid arrays, scikit-learn / dask-ml ``KMeans``) on the CPU,
the streaming functions run on numpy alone (:mod:`whyclust._neon_numpy`) and never import
torch, so that a process working through an on-disk array stays small.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import mmap
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from whyclust._neon_numpy import NumpyKMeans, kmeans_centers
from whyclust._validation import beta_from_mean, check_beta, check_targets, resolve_dtype
from whyclust.explainers.explanation import Explanation

if TYPE_CHECKING:
    import torch

    from whyclust.networks import ClusterNetwork

__all__ = ["explain_dask", "explain_to", "predict_dask", "predict_stream"]

#: input values per batch of the streaming functions (16 MB of float32)
_STREAM_VALUES = 1 << 22


# --------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------


def explain_dask(
    model: Any,
    X: Any,
    method: str = "neon",
    *,
    target: Any = "assigned",
    beta: float | str = "auto",
    batch_size: int | None = None,
    **options: Any,
) -> Explanation:
    """Explain a dask array lazily, one task per row chunk.

    ``wc.explain`` calls this for dask arrays. ``X`` is rechunked so that all non-row axes
    form a single chunk; row chunks are kept (they bound each task's memory).

    Parameters
    ----------
    model : fitted clusterer or ClusterNetwork
        Anything :func:`whyclust.networks` accepts. The network enters the graph once, as
        one key that every task depends on: a distributed scheduler sends it to each worker
        once, not with every task.
    X : dask.array.Array of shape (n, d) or (n, C, H, W)
        Row chunk sizes must be known. float64 stays float64, anything else is float32.
    method, target, beta, batch_size, **options
        As in :func:`whyclust.explain`. ``target`` (and a NEON ``contrast``) may be an
        int, ``"assigned"`` or an (n,) numpy / dask array. ``beta="auto"`` runs one
        eager reduction over ``X`` (the mean assigned-cluster logit) before the graph is
        built, so that every chunk uses the beta of the whole array.

    Returns
    -------
    Explanation
        ``relevance`` (same shape as ``X``), ``logit``, ``cluster`` and ``target`` (and
        ``contrast`` if given) are lazy dask arrays; ``beta`` is a float. All of them are
        fields of one record array (``extras["records"]``) computed by the same per-chunk
        tasks: ``dask.compute(e.relevance, e.logit)`` runs NEON once per chunk, whereas
        computing them one after the other runs it twice. Errors found in the data (NaN,
        bad target values) are raised when the arrays are computed.
    """
    import dask
    import dask.array as da

    from whyclust.networks import neuralize

    net = neuralize(model)
    X = _as_dask_float_array(X, net)
    rows = X.chunks[0]
    n = X.shape[0]
    net_key = _delayed_network(net)

    if isinstance(beta, str) and beta != "auto":
        raise ValueError(f"beta must be 'auto' or a number >= 0, got {beta!r}")
    want_beta = beta == "auto" and options.get("contrast") is None
    want_bounds = _needs_global_bounds(net, method, options)
    if want_beta or want_bounds:
        mean_logit, low, high = _first_pass_dask(
            net_key, X, options.get("device"), want_beta, want_bounds
        )
        if want_beta:
            beta = beta_from_mean(mean_logit)
        if want_bounds:
            options["bounds"] = _bounds(low, high)
    beta = check_beta(beta)

    arrays: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for key, value in (("target", target), ("contrast", options.pop("contrast", None))):
        if value is None or isinstance(value, str):
            scalars[key] = value
        elif _is_dask(value) or np.ndim(value) > 0:
            arr = value if _is_dask(value) else da.from_array(np.asarray(value), chunks=-1)
            if arr.shape != (n,):
                raise ValueError(f"{key} must be a scalar or have shape ({n},), got {arr.shape}")
            # map_blocks aligns trailing axes: give the column X's number of axes
            arrays[key] = arr.rechunk((rows,)).reshape((n,) + (1,) * (X.ndim - 1))
        else:
            scalars[key] = value

    record = _record_dtype(X, contrast=scalars.get("contrast") is not None or "contrast" in arrays)
    extra = [arrays.get("target"), arrays.get("contrast")]
    records = da.map_blocks(
        _explain_block,
        X,
        *[a for a in extra if a is not None],
        net_key,
        dtype=record,
        meta=np.empty((0,), dtype=record),
        drop_axis=list(range(1, X.ndim)),
        chunks=(rows,),
        layout=tuple(k for k in ("target", "contrast") if k in arrays),
        method=method,
        scalars=scalars,
        beta=beta,
        batch_size=batch_size,
        options=options,
        name="whyclust-explain-"
        + dask.base.tokenize(
            X.name,
            net_key.key,
            method,
            beta,
            batch_size,
            sorted(options),
            str(scalars),
            [a.name for a in extra if a is not None],
        ),
    )
    has_contrast = "contrast" in record.names
    return Explanation(
        relevance=records["relevance"],
        logit=records["logit"],
        cluster=records["cluster"],
        target=records["target"],
        beta=None if has_contrast else float(beta),
        method=method + ("-contrast" if has_contrast and method == "neon" else ""),
        contrast=records["contrast"] if has_contrast else None,
        extras={"records": records},
    )


def predict_dask(model: Any, X: Any, *, batch_size: int = 8192) -> Any:
    """Cluster index of every row of a dask array, as a lazy int64 dask array (n,)."""
    import dask
    import dask.array as da

    from whyclust.networks import neuralize

    net = neuralize(model)
    X = _as_dask_float_array(X, net)
    net_key = _delayed_network(net)
    return da.map_blocks(
        _predict_block,
        X,
        net_key,
        dtype=np.int64,
        meta=np.empty((0,), dtype=np.int64),
        drop_axis=list(range(1, X.ndim)),
        chunks=(X.chunks[0],),
        batch_size=batch_size,
        name="whyclust-predict-" + dask.base.tokenize(X.name, net_key.key, batch_size),
    )


def _as_dask_float_array(X: Any, net: ClusterNetwork) -> Any:
    if not hasattr(X, "chunks") or not hasattr(X, "map_blocks"):
        raise TypeError(
            f"expected a dask array, got {type(X).__name__}"
            + ("; use .to_dask_array(lengths=True)" if hasattr(X, "to_dask_array") else "")
        )
    if X.ndim not in (2, 3, 4):
        raise ValueError(f"X must be a 2-D, 3-D or 4-D array, got shape {X.shape}")
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown row chunk sizes; call X.compute_chunk_sizes() first")
    if X.shape[0] < 1:
        raise ValueError("X has 0 sample(s), at least 1 required")
    kind = np.dtype(X.dtype).kind
    if kind not in "fiub":
        raise TypeError(f"X must be real-valued numeric, got dtype {X.dtype}")
    d = math.prod(X.shape[1:])
    n_features = getattr(net, "n_features", None)
    if n_features and d != n_features:
        raise ValueError(f"X has {d} features, but the model was fitted with {n_features}")
    dtype = resolve_dtype(X.dtype)
    if X.dtype != dtype:
        X = X.astype(dtype)
    return X.rechunk({axis: -1 for axis in range(1, X.ndim)})


def _record_dtype(X: Any, *, contrast: bool) -> np.dtype:
    fields = [
        ("relevance", X.dtype, X.shape[1:]),
        ("logit", X.dtype),
        ("cluster", np.int64),
        ("target", np.int64),
    ]
    if contrast:
        fields.append(("contrast", np.int64))
    return np.dtype(fields)


def _network_token(net: ClusterNetwork) -> str:
    """Content hash of a network: equal networks share one graph key."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    h.update(f"{type(net).__module__}.{type(net).__qualname__}\n{net!r}".encode())
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _delayed_network(net: ClusterNetwork) -> Any:
    import dask

    net.eval()
    return dask.delayed(net, name="whyclust-network-" + _network_token(net), pure=True)


def _needs_global_bounds(net: ClusterNetwork, method: str, options: dict[str, Any]) -> bool:
    """NEON through an encoder defaults its ZBox bounds to the data's range: that must be
    the range of all of X, not of one chunk or batch, for the results to match."""
    from whyclust.networks import EncodedClusterNetwork, KMeansNetwork, L2Normalize

    return (
        method == "neon"
        and isinstance(net, EncodedClusterNetwork)
        and not (isinstance(net.encoder, L2Normalize) and isinstance(net.head, KMeansNetwork))
        and options.get("bounds") is None
        and options.get("composite") is None
    )


def _bounds(low: float, high: float) -> tuple[float, float]:
    return (low, high if high > low else low + 1.0)  # as whyclust.explainers.deep does


def _first_pass_dask(
    net_key: Any, X: Any, device: Any, want_beta: bool, want_bounds: bool
) -> tuple[float, float, float]:
    """Mean assigned-cluster logit and the min / max of X, in one eager pass."""
    import dask
    import dask.array as da

    todo = []
    if want_beta:
        parts = da.map_blocks(
            _logit_sum_block,
            X,
            net_key,
            dtype=np.float64,
            meta=np.empty((0,), dtype=np.float64),
            drop_axis=list(range(1, X.ndim)),
            chunks=(tuple(1 for _ in X.chunks[0]),),
            device=device,
        )
        todo.append(parts.sum())
    if want_bounds:
        todo += [X.min(), X.max()]
    got = [float(v) for v in dask.compute(*todo)]
    mean = got.pop(0) / X.shape[0] if want_beta else math.nan
    low, high = (got[0], got[1]) if want_bounds else (math.nan, math.nan)
    return mean, low, high


def _assigned_logits(net: ClusterNetwork, block: np.ndarray, device: Any) -> torch.Tensor:
    """f of the assigned cluster (the largest logit) for every row of ``block``.

    k-means heads use the same score arithmetic as the in-memory NEON pass (so that
    ``beta="auto"`` agrees to the last bits) on ``device``; other networks run where they
    live.
    """
    import torch

    from whyclust.explainers.neon import KMeansRelevance, assigned_logits
    from whyclust.networks import KMeansNetwork

    x = torch.from_numpy(np.ascontiguousarray(block))
    with torch.no_grad():
        if isinstance(net, KMeansNetwork):
            dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
            dev = torch.device(device) if device is not None else net.device
            rel = KMeansRelevance.from_network(net, dtype, dev, None)
            xp = rel.prepare(x.reshape(x.shape[0], -1).to(device=dev, dtype=dtype))
            return assigned_logits(rel.scores(xp)).to(torch.float64)
        return net(x.to(net.device)).amax(1).to(torch.float64)


def _logit_sum_block(block: np.ndarray, net: ClusterNetwork, device: Any = None) -> np.ndarray:
    return np.array([float(_assigned_logits(net, block, device).sum())])


def _predict_block(block: np.ndarray, net: ClusterNetwork, batch_size: int) -> np.ndarray:
    return net.predict(block, batch_size=batch_size)


def _explain_block(
    block: np.ndarray,
    *args: Any,
    layout: tuple[str, ...],
    method: str,
    scalars: dict[str, Any],
    beta: float | str,
    batch_size: int | None,
    options: dict[str, Any],
) -> np.ndarray:
    """Explain one row chunk; returns the record array of relevance / logit / cluster."""
    from whyclust.explainers import explain

    *columns, net = args
    given = dict(scalars)
    given.update((k, c.reshape(-1)) for k, c in zip(layout, columns, strict=True))
    contrast = given.get("contrast")
    e = explain(
        net,
        block,
        method=method,
        target=given["target"],
        beta=beta,
        batch_size=batch_size,
        **({"contrast": contrast} if contrast is not None else {}),
        **options,
    )
    out = np.empty(
        block.shape[0],
        dtype=_record_dtype(block, contrast=contrast is not None),
    )
    out["relevance"] = e.relevance
    out["logit"] = e.logit
    out["cluster"] = e.cluster
    out["target"] = e.target
    if contrast is not None:
        out["contrast"] = e.contrast
    return out


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.")


# --------------------------------------------------------------------------------------
# Streaming in one process (np.memmap, zarr, ...)
# --------------------------------------------------------------------------------------


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
    time. Results equal those of :func:`whyclust.explain` on the whole array.

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
        As in :func:`whyclust.explain`; ``target`` / ``contrast`` arrays of shape (n,) are
        sliced with the batches. ``beta="auto"`` costs one extra pass over ``X`` (the mean
        assigned-cluster logit) before the relevance pass.
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
        arrays.
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
    bs = _stream_batch_size(batch_size, d, out if batch_size is None else None)
    device = options.get("device")
    contrast = options.pop("contrast", None)
    target = _check_column(target, n, "target")
    contrast = _check_column(contrast, n, "contrast")

    beta = check_beta(beta)
    want_beta = beta == "auto" and contrast is None
    want_bounds = engine is None and _needs_global_bounds(net, method, options)
    if want_beta or want_bounds:
        total, low, high = 0.0, math.inf, -math.inf
        for start in _read_only_ok(range(0, n, bs)):
            raw = _read_rows(X, start, start + bs)
            block = _as_batch(raw)
            if want_beta:
                if engine is not None:
                    _, scores = engine.checked_scores(block, start)
                    total += float(engine.assigned_logits(scores).sum(dtype=np.float64))
                else:
                    total += float(_assigned_logits(net, block, device).sum())
            if want_bounds:
                low, high = min(low, float(block.min())), max(high, float(block.max()))
            _release(raw, release_pages)
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
        and out.dtype == engine.dtype
    )
    first: Explanation | None = None
    for start in _read_only_ok(range(0, n, bs)):
        stop = min(n, start + bs)
        block = _read_rows(X, start, stop)
        rows_target = _slice(target, start, stop)
        rows_contrast = _slice(contrast, start, stop)
        if engine is not None:
            into = out[start:stop].reshape(stop - start, d) if direct else None
            e = _explain_numpy(engine, _as_batch(block), rows_target, rows_contrast, beta,
                               into, first_row=start)  # fmt: skip
        else:
            from whyclust.explainers import explain

            e = explain(
                net,
                _as_batch(block),
                method=method,
                target=rows_target,
                beta=beta,
                **({"contrast": rows_contrast} if contrast is not None else {}),
                **options,
            )
        if not direct:
            out[start:stop] = e.relevance.reshape((stop - start, *out_shape[1:]))
        logit[start:stop] = e.logit
        cluster[start:stop] = e.cluster
        tgt[start:stop] = e.target
        if first is None:
            first = e
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
    )


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
        block = _read_rows(X, start, start + bs)
        rows = slice(start, start + block.shape[0])
        if engine is not None:
            labels[rows] = engine.checked_scores(_as_batch(block), start)[1].argmax(1)
        else:
            labels[rows] = net.predict(_as_batch(block), batch_size=bs)
        _release(block, release_pages)
    return labels


def _network(model: Any) -> ClusterNetwork:
    from whyclust.networks import neuralize

    return neuralize(model)


def _numpy_engine(model: Any, X: Any, method: str, options: dict[str, Any]) -> NumpyKMeans | None:
    """The torch-free k-means engine when it computes exactly what was asked, else None."""
    if method != "neon" or set(options) - {"device", "eps", "contrast"}:
        return None
    device = options.get("device")
    if device is not None and str(device) != "cpu":
        return None
    centers = kmeans_centers(model)
    if centers is None or not hasattr(X, "dtype"):
        return None
    return NumpyKMeans(centers, resolve_dtype(X.dtype), options.get("eps"))


def _explain_numpy(
    engine: NumpyKMeans,
    block: np.ndarray,
    target: Any,
    contrast: Any,
    beta: float | str,
    out: np.ndarray | None,
    *,
    first_row: int = 0,
) -> Explanation:
    """NEON of one batch with the numpy engine; relevance written into ``out`` if given."""
    xp, scores = engine.checked_scores(block, first_row)
    n, k = scores.shape
    assigned = scores.argmax(1)
    tgt = check_targets(target, n, k)
    tgt = assigned if tgt is None else tgt
    if contrast is None:
        alpha, f = engine.neon_alpha(scores, tgt, float(beta))
        other = None
    else:
        other = check_targets(contrast, n, k)
        other = assigned if other is None else other
        if bool((other == tgt).any()):
            raise ValueError("contrast cluster must differ from the target cluster")
        alpha, f = engine.contrast_alpha(scores, tgt, other)
    relevance = engine.relevance(xp, alpha, out=out)
    return Explanation(
        relevance=relevance,
        logit=f,
        cluster=assigned,
        target=tgt,
        beta=None if other is not None else float(beta),
        method="neon" if other is None else "neon-contrast",
        contrast=other,
    )


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
    return np.asarray(_read_rows(value, start, stop))


def _full_column(value: Any, n: int) -> np.ndarray:
    if np.ndim(value) == 1:
        return np.asarray(_read_rows(value, 0, n))
    return np.full(n, int(value), dtype=np.int64)


def _read_only_ok(starts: range) -> Iterator[int]:
    """Iterate with torch's warning about read-only numpy arrays silenced.

    Batches of a read-only memmap become tensors that are only ever read.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        yield from starts


def _read_rows(X: Any, start: int, stop: int) -> Any:
    block = X[start:stop]
    if hasattr(block, "compute"):  # dask
        block = block.compute()
    return block


def _as_batch(block: Any) -> np.ndarray:
    """A batch as a float array without copying float32 / float64 memmap slices."""
    arr = np.asarray(block)
    return arr if arr.dtype == resolve_dtype(arr.dtype) else arr.astype(resolve_dtype(arr.dtype))


# -- handing memmap pages back to the kernel -------------------------------------------

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
