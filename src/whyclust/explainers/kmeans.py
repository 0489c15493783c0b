"""NEON for k-means models, batched: one array-API code path for numpy and torch.

numpy input runs on numpy alone (torch is not imported); ``device="cuda"`` (or a network
whose centroids live on a GPU) runs the same lines on torch tensors there. Two passes over
``X`` in row batches: the first keeps the K scores of every point (n x K), which give the
assignments, the targets and ``beta="auto"``; the second writes each batch's relevance into
the output array. Memory beyond the output: O(n K + batch x d).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

from whyclust._buffers import output_array
from whyclust._validation import check_beta, check_centers
from whyclust.engine._xp import to_numpy
from whyclust.engine.kmeans import KMeansGeometry, assigned_logits, check_finite_scores
from whyclust.explainers._threads import run_batches
from whyclust.explainers.explanation import Explanation
from whyclust.explainers.request import resolve_reference, resolve_request, row_batches

__all__ = ["explain_kmeans", "fitted_mean", "kmeans_centers"]

_SKLEARN_KMEANS = {"KMeans", "MiniBatchKMeans"}
#: rows per batch hold about this many input values; the scores pass takes larger blocks
_BATCH_VALUES = 1 << 20
_SCORE_VALUES = 1 << 26


def kmeans_centers(model: Any) -> Any:
    """The (K, d) centroids of a plain nearest-centroid model, or None for anything else.

    Recognises numpy arrays, scikit-learn ``KMeans`` / ``MiniBatchKMeans``, dask-ml
    ``KMeans`` and :class:`~whyclust.networks.KMeansNetwork` (its centroid tensor), without
    importing torch. Models that transform their inputs first return None.
    """
    if isinstance(model, np.ndarray):
        return check_centers(model)
    module, name = type(model).__module__, type(model).__name__
    if name in _SKLEARN_KMEANS and module.startswith(("sklearn.", "dask_ml.")):
        if getattr(model, "cluster_centers_", None) is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"This {name} instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )
        return check_centers(np.asarray(model.cluster_centers_))
    if name == "KMeansNetwork" and "whyclust.networks.kmeans" in sys.modules:
        from whyclust.networks.kmeans import KMeansNetwork

        if type(model) is KMeansNetwork:
            return model.centers.detach()
    return None


def fitted_mean(model: Any) -> np.ndarray | None:
    """The mean of the data a k-means model was fitted on: its centroids weighted by size.

    At a fixed point of Lloyd's algorithm every centroid is the mean of its members, so the
    size-weighted mean of the centroids is the training mean. None without ``labels_``.
    """
    labels = getattr(model, "labels_", None)
    centers = getattr(model, "cluster_centers_", None)
    if labels is None or centers is None:
        return None
    counts = np.bincount(np.asarray(labels), minlength=len(centers)).astype(np.float64)
    if counts.sum() == 0:
        return None
    return counts @ np.asarray(centers, dtype=np.float64) / counts.sum()


def explain_kmeans(
    centers: Any,
    X: np.ndarray,
    *,
    target: Any = "assigned",
    beta: Any = "auto",
    contrast: Any = None,
    reference: Any = "midpoint",
    model_mean: Any = None,
    batch_size: int | None = None,
    eps: float | None = None,
    device: Any = None,
    out: np.ndarray | None = None,
    first_row: int = 0,
    geometry: KMeansGeometry | None = None,
) -> Explanation:
    """NEON relevance of every row of a validated float array ``X`` (any trailing shape).

    ``centers`` is a numpy array or a torch tensor; ``model_mean`` is what
    ``reference="mean"`` means (default: the mean of ``X``); ``out`` (n, d) receives the
    relevance when given; ``first_row`` numbers the rows in error messages; ``geometry``
    (a :class:`KMeansGeometry`, e.g. one with a pipeline's scaling folded in) replaces the
    one built from ``centers``.
    """
    n = X.shape[0]
    flat = X.reshape(n, -1)
    d = flat.shape[1]
    geom = geometry if geometry is not None else KMeansGeometry(
        _centers_for(centers, X.dtype, device), eps
    )
    if geom.n_features != d:
        raise ValueError(f"X has {d} features, but the model was fitted with {geom.n_features}")
    bs = int(batch_size) if batch_size is not None else max(64, _BATCH_VALUES // max(1, d))
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    on_numpy = isinstance(geom.centers, np.ndarray)
    host_torch = not on_numpy and geom.centers.device.type == "cpu"
    shift_buffer = on_numpy and geom.shift_inputs

    def rows_of(rows: slice, buffer: np.ndarray | None) -> Any:
        if buffer is not None:  # x - o into a reused buffer
            block = buffer[: rows.stop - rows.start]
            return np.subtract(flat[rows], geom.offset, out=block, dtype=X.dtype)
        return geom.prepare(_to_namespace(flat[rows], geom))

    if out is None:  # numpy: faulted in by the threads that write it; torch's kernels fault slowly
        out = output_array((n, d), X.dtype, faulted=not on_numpy)
    elif tuple(out.shape) not in ((n, d), tuple(X.shape)) or np.dtype(out.dtype).kind != "f":
        raise ValueError(
            f"out must be a float array of shape {tuple(X.shape)}, got {out.dtype} "
            f"{tuple(out.shape)}"
        )
    elif out.ndim != 2:  # an image-shaped buffer: its (n, d) view must be the buffer itself
        if not out.flags.c_contiguous:
            raise ValueError("an out array of more than 2 dimensions must be C-contiguous")
        out = out.reshape(n, d)
    if on_numpy and _one_pass(reference, beta, target, contrast):
        return _explain_one_pass(geom, rows_of, out, n, X, bs, shift_buffer, target=target,
                                 beta=beta, first_row=first_row)  # fmt: skip
    scores = _scores_pass(geom, rows_of, n, bs, X.dtype, shift_buffer, on_numpy)
    check_finite_scores(scores, first_row)
    assigned, tgt, other, beta_value = resolve_request(
        scores, target=target, beta=beta, contrast=contrast,
        assigned_logit=lambda assigned: assigned_logits(scores, assigned),
    )  # fmt: skip
    ref = resolve_reference(reference, flat, model_mean)
    ref_prepared = None if ref is None else geom.prepare(_to_namespace(ref, geom))

    # pass 2: relevance, batch by batch, into the output array
    logit = np.empty(n, dtype=X.dtype)
    baseline_share = None if ref is None else np.empty(n, dtype=X.dtype)
    mixing = None
    if ref is None:  # the midpoint rule's (n, K) mixing needs only the scores: all at once
        mixing, f_all = geom.midpoint_mixing(scores, tgt, beta_value, contrast=other)
        logit[:] = to_numpy(f_all)

    # each worker thread keeps its buffers: a batch allocates nothing of its size
    local = threading.local()

    def explain_rows(_: int, rows: slice) -> None:
        if not hasattr(local, "work"):
            local.work = _host_tensor(np.empty((bs, d), dtype=X.dtype)) if host_torch else None
            local.buffer = np.empty((bs, d), dtype=X.dtype) if shift_buffer else None
        work, buffer = local.work, local.buffer
        into = out[rows] if on_numpy else _host_tensor(out[rows]) if host_torch else None
        if mixing is not None:
            rel = geom.relevance(rows_of(rows, buffer), mixing[rows], into, work)
        else:
            ref_rows = ref_prepared if ref_prepared.shape[0] == 1 else ref_prepared[rows]
            rel, f, took = geom.neon(
                rows_of(rows, buffer), scores[rows], tgt[rows], beta_value, out=into,
                work=work, contrast=None if other is None else other[rows], reference=ref_rows,
            )  # fmt: skip
            logit[rows] = to_numpy(f)
            baseline_share[rows] = to_numpy(took)
        if into is None:
            out[rows] = to_numpy(rel)

    # last rows first: the scores pass read them last, so they may still be in cache
    run_batches(explain_rows, list(row_batches(n, bs))[::-1], parallel=on_numpy)
    extras: dict[str, Any] = {"reference": "midpoint" if ref is None else _ref_name(reference)}
    if baseline_share is not None:
        extras["baseline_root_share"] = baseline_share
    return Explanation.neon(
        relevance=out.reshape(X.shape),
        logit=logit,
        cluster=to_numpy(assigned),
        target=to_numpy(tgt),
        beta=beta_value,
        contrast=None if other is None else to_numpy(other),
        extras=extras,
    )


def _scores_pass(geom: KMeansGeometry, rows_of: Any, n: int, bs: int, dtype: np.dtype,
                 shift_buffer: bool, on_numpy: bool) -> Any:  # fmt: skip
    """The (n, K) scores of every row: numpy batches in the worker threads (each keeps its
    shift buffer), other namespaces in large blocks (views of X cost no memory)."""
    if not on_numpy:
        rows = max(bs, _SCORE_VALUES // max(1, geom.n_features))
        return geom.xp.concat([geom.scores(rows_of(r, None)) for r in row_batches(n, rows)],
                              axis=0)  # fmt: skip
    scores = np.empty((n, geom.n_clusters), dtype=dtype)
    local = threading.local()

    def score_rows(_: int, rows: slice) -> None:
        if not hasattr(local, "buffer"):
            local.buffer = np.empty((bs, geom.n_features), dtype=dtype) if shift_buffer else None
        scores[rows] = geom.scores(rows_of(rows, local.buffer))

    run_batches(score_rows, list(row_batches(n, bs)), parallel=True)
    return scores


def _one_pass(reference: Any, beta: Any, target: Any, contrast: Any) -> bool:
    """Whether every batch can be explained on its own (one read of X): the midpoint rule,
    a given beta (``"auto"`` is a mean over all rows), one target rule for all rows and no
    contrast (whose refusals count the points of all X)."""
    def one(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    return (
        isinstance(reference, str) and reference == "midpoint"
        and not isinstance(beta, str)
        and ((isinstance(target, str) and target == "assigned") or one(target))
        and contrast is None
    )  # fmt: skip


def _explain_one_pass(geom: KMeansGeometry, rows_of: Any, out: np.ndarray, n: int,
                      X: np.ndarray, bs: int, shift_buffer: bool, *, target: Any, beta: Any,
                      first_row: int) -> Explanation:  # fmt: skip
    """Scores, mixing and relevance batch by batch in the worker threads, while the rows
    are in cache: the same numbers as the two passes, without the scores pass."""
    beta_value = float(check_beta(beta))
    d = out.shape[1]
    cols = {k: np.empty(n, dtype=np.int64) for k in ("cluster", "target")}
    logit = np.empty(n, dtype=X.dtype)
    local = threading.local()

    def explain_rows(_: int, rows: slice) -> None:
        if not hasattr(local, "buffer"):
            local.buffer = np.empty((bs, d), dtype=X.dtype) if shift_buffer else None
        xprep = rows_of(rows, local.buffer)
        scores = geom.scores(xprep)
        check_finite_scores(scores, first_row + rows.start)
        assigned, tgt, _, _ = resolve_request(scores, target=target, beta=beta, contrast=None)
        mixing, f = geom.midpoint_mixing(scores, tgt, beta_value)
        geom.relevance(xprep, mixing, out[rows])
        logit[rows], cols["cluster"][rows], cols["target"][rows] = f, assigned, tgt

    run_batches(explain_rows, list(row_batches(n, bs)), parallel=True)
    return Explanation.neon(
        relevance=out.reshape(X.shape),
        logit=logit,
        cluster=cols["cluster"],
        target=cols["target"],
        beta=beta_value,
        contrast=None,
        extras={"reference": "midpoint"},
    )


def _ref_name(reference: Any) -> str:
    return reference if isinstance(reference, str) else "array"


def _centers_for(centers: Any, dtype: np.dtype, device: Any) -> Any:
    """Centroids in the compute dtype: a torch tensor on another device, or on the CPU when
    torch is imported already (its fused, threaded kernels are faster); else numpy."""
    is_tensor = hasattr(centers, "detach")
    on_accelerator = is_tensor and centers.device.type != "cpu"
    if device is None and not on_accelerator:
        host = np.ascontiguousarray(to_numpy(centers), dtype=dtype)
        return _host_tensor(host) if "torch" in sys.modules else host
    import torch

    dev = torch.device(device) if device is not None else centers.device
    if dev.type == "cpu":
        return np.ascontiguousarray(to_numpy(centers), dtype=dtype)
    t = centers if is_tensor else torch.from_numpy(np.asarray(centers))
    return t.to(device=dev, dtype=torch.float64 if dtype == np.float64 else torch.float32)


def _to_namespace(block: np.ndarray, geom: KMeansGeometry) -> Any:
    if isinstance(geom.centers, np.ndarray):
        return block
    return _host_tensor(np.ascontiguousarray(block)).to(geom.centers.device)


def _host_tensor(arr: np.ndarray) -> Any:
    """A torch tensor sharing ``arr``'s memory (read-only input is only ever read)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


def explain_network(net: Any, X: np.ndarray, **options: Any) -> Explanation:
    """``method="neon"`` for a :class:`~whyclust.networks.KMeansNetwork`."""
    return explain_kmeans(net.centers.detach(), X, **options)
