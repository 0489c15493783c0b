"""Lazy explanations of dask arrays: one task per row chunk, the network sent once."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from whyclust._batches import renumbered
from whyclust._validation import (
    SAMPLE_NDIM,
    as_float_array,
    beta_from_mean,
    check_beta,
    resolve_dtype,
)
from whyclust.explainers import run_method
from whyclust.explainers.explanation import Explanation
from whyclust.scale._common import (
    _assigned_logits,
    _bounds,
    _is_dask,
    _needs_global_bounds,
    _network,
    _resolve_means,
    _row_options,
)

if TYPE_CHECKING:
    from whyclust.networks import ClusterNetwork

__all__ = ["explain_dask", "predict_dask"]


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
        int, ``"assigned"`` or an (n,) numpy / dask array; a ``reference`` of one row
        per point may be a numpy or dask array, chunked here as X's rows. ``beta="auto"``
        runs one eager reduction over ``X`` (the mean assigned-cluster logit) before the
        graph is built, so that every chunk uses the beta of the whole array.

    Returns
    -------
    Explanation
        ``relevance`` (same shape as ``X``), ``logit``, ``cluster`` and ``target`` (and
        ``contrast`` if given) are lazy dask arrays; ``beta`` is a float. All of them are
        fields of one record array (``extras["records"]``) computed by the same per-chunk
        tasks: ``dask.compute(e.relevance, e.logit)`` runs NEON once per chunk, whereas
        computing them one after the other runs it twice. The first row is explained
        eagerly, so that an option the method does not take, or a bad value of one, is an
        error at the call; errors found in later rows (NaN, bad target values) are raised
        when the arrays are computed.
    """
    import dask
    import dask.array as da

    net = _network(model)
    X = _as_dask_float_array(X, net)
    rows = X.chunks[0]
    n = X.shape[0]
    net_key = _delayed_network(net)

    if isinstance(beta, str) and beta != "auto":
        raise ValueError(f"beta must be 'auto' or a number >= 0, got {beta!r}")
    rows_of = _row_options(options, n, tuple(X.shape[1:]))  # chunked as X's rows
    want_beta = beta == "auto" and options.get("contrast") is None
    want_bounds = _needs_global_bounds(net, method, options)
    want_mean = _resolve_means(model, method, options)
    if want_beta or want_bounds or want_mean:
        mean_logit, low, high, mean = _first_pass_dask(
            net_key, X, options.get("device"), want_beta, want_bounds, bool(want_mean)
        )
        if want_beta:
            beta = beta_from_mean(mean_logit)
        if want_bounds:
            options["bounds"] = _bounds(low, high)
        for key in want_mean:
            options[key] = mean
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

    for key, value in rows_of.items():
        arr = value if _is_dask(value) else da.from_array(np.asarray(value), chunks=-1)
        arrays[key] = arr.reshape(X.shape).rechunk(X.chunks)

    record = _record_dtype(X, contrast=scalars.get("contrast") is not None or "contrast" in arrays)
    layout = tuple(k for k in ("target", "contrast", *rows_of) if k in arrays)
    extra = [arrays[k] for k in layout]
    task = {"layout": layout, "method": method, "scalars": scalars, "beta": beta,
            "batch_size": batch_size, "options": options}  # fmt: skip
    # a bad option is refused now, on the first row, not when the arrays are computed
    _explain_block(*dask.compute(X[:1], *(a[:1] for a in extra)), net, **task)
    records = da.map_blocks(
        _explain_block,
        X,
        *extra,
        net_key,
        dtype=record,
        meta=np.empty((0,), dtype=record),
        drop_axis=list(range(1, X.ndim)),
        chunks=(rows,),
        **task,
        name="whyclust-explain-"
        + dask.base.tokenize(
            X.name,
            net_key.key,
            method,
            beta,
            batch_size,
            options,
            str(scalars),
            [a.name for a in extra],
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

    net = _network(model)
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

    from whyclust.networks import evaluating

    net = evaluating(net)
    return dask.delayed(net, name="whyclust-network-" + _network_token(net), pure=True)


def _first_pass_dask(
    net_key: Any, X: Any, device: Any, want_beta: bool, want_bounds: bool, want_mean: bool
) -> tuple[float, float, float, np.ndarray | None]:
    """Mean assigned-cluster logit, the min / max of X and the mean of X's rows (those
    asked for), in one eager pass over X."""
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
    if want_mean:
        todo.append(X.astype(np.float64).mean(axis=0))
    got = list(dask.compute(*todo))
    mean_rows = np.asarray(got.pop()) if want_mean else None
    mean = float(got.pop(0)) / X.shape[0] if want_beta else math.nan
    low, high = (float(got[0]), float(got[1])) if want_bounds else (math.nan, math.nan)
    return mean, low, high, mean_rows


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
    block_info: dict | None = None,
) -> np.ndarray:
    """Explain one row chunk; returns the record array of relevance / logit / cluster (an
    error naming a row numbers it in the whole array, from dask's ``block_info``)."""
    *columns, net = args
    given = dict(scalars)
    rows_of = {}  # reference / baseline rows of this chunk
    for key, part in zip(layout, columns, strict=True):
        if key in ("target", "contrast"):
            given[key] = part.reshape(-1)
        else:
            rows_of[key] = part
    contrast = given.get("contrast")
    try:
        e = run_method(
            net,
            as_float_array(block, ndim=SAMPLE_NDIM),
            method,
            target=given["target"],
            beta=beta,
            batch_size=batch_size,
            **({"contrast": contrast} if contrast is not None else {}),
            **rows_of,
            **options,
        )
    except ValueError as exc:
        start = 0 if not block_info else int(block_info[0]["array-location"][0][0])
        if start == 0:
            raise
        raise renumbered(exc, start) from None
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
