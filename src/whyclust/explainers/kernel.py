"""NEON for kernel k-means, batched: one array-API code path for numpy and torch."""

from __future__ import annotations

from typing import Any

import numpy as np

from whyclust.engine._xp import to_numpy
from whyclust.engine.kernel import KernelGeometry
from whyclust.engine.kmeans import assigned_logits, check_finite_scores
from whyclust.explainers.explanation import Explanation
from whyclust.explainers.request import resolve_reference, resolve_request, row_batches

__all__ = ["explain_kernel", "explain_network", "kernel_parts"]

_ROWS = 1024


def kernel_parts(model: Any) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(support sorted by cluster, counts, gamma) of a fitted whyclust KernelKMeans, or None.

    Reads the fitted attributes only, so torch is not imported.
    """
    if type(model).__name__ != "KernelKMeans" or not type(model).__module__.startswith(
        "whyclust."
    ):
        return None
    support = getattr(model, "support_", None)
    if support is None:
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            "This KernelKMeans instance is not fitted yet. Call 'fit' with appropriate "
            "arguments before using this estimator."
        )
    labels = np.asarray(model.support_labels_)
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=int(model.n_clusters))
    return np.asarray(support)[order], counts, float(model.gamma_)


def explain_kernel(
    support: Any,
    counts: Any,
    gamma: float,
    X: np.ndarray,
    *,
    target: Any = "assigned",
    beta: Any = "auto",
    contrast: Any = None,
    reference: Any = "midpoint",
    batch_size: int | None = None,
    eps: float | None = None,
    device: Any = None,
) -> Explanation:
    """NEON relevance of every row of a validated float array ``X`` for kernel k-means.

    Two passes in row batches: scores (assignments, targets, ``beta="auto"``), then the
    relevance of each batch, conserving f_c exactly (up to rounding).
    """
    if np.any(np.asarray(counts) < 1) or len(counts) < 2:
        raise ValueError("kernel k-means needs at least 2 clusters with support points")
    n = X.shape[0]
    flat = X.reshape(n, -1)
    sup = _on_device(np.ascontiguousarray(to_numpy(support), dtype=X.dtype), device)
    geom = KernelGeometry(sup, counts, gamma)
    xp = geom.xp
    if geom.n_features != flat.shape[1]:
        raise ValueError(
            f"X has {flat.shape[1]} features, but the model was fitted with {geom.n_features}"
        )
    bs = _ROWS if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def rows_of(rows: slice) -> Any:
        return geom.prepare(_like(flat[rows], sup))

    scores = xp.concat([geom.scores(rows_of(r)) for r in row_batches(n, bs)], axis=0)
    check_finite_scores(scores)
    assigned, tgt, other, beta_value = resolve_request(
        scores, target=target, beta=beta, contrast=contrast,
        assigned_logit=lambda a: assigned_logits(scores, a),
    )  # fmt: skip
    ref = resolve_reference(reference, flat, None)
    ref_prepared = None if ref is None else geom.prepare(_like(ref, sup))
    out = np.empty(flat.shape, dtype=X.dtype)
    logit = np.empty(n, dtype=X.dtype)
    for rows in row_batches(n, bs):
        ref_rows = None
        if ref_prepared is not None:
            ref_rows = ref_prepared if ref_prepared.shape[0] == 1 else ref_prepared[rows]
        rel, f = geom.neon(
            rows_of(rows), tgt[rows], beta_value, eps=eps, reference=ref_rows,
            contrast=None if other is None else other[rows],
        )  # fmt: skip
        out[rows] = to_numpy(rel)
        logit[rows] = to_numpy(f)
    with np.errstate(divide="ignore", invalid="ignore"):
        conservation = out.sum(1) / logit
    return Explanation.neon(
        relevance=out.reshape(X.shape),
        logit=logit,
        cluster=to_numpy(assigned),
        target=to_numpy(tgt),
        beta=beta_value,
        contrast=None if other is None else to_numpy(other),
        extras={
            "conservation": conservation,
            "reference": reference if isinstance(reference, str) else "array",
        },
    )


def explain_network(net: Any, X: np.ndarray, **options: Any) -> Explanation:
    """``method="neon"`` for a :class:`~whyclust.networks.kernel.KernelKMeansNetwork`."""
    if options.get("device") is None and net.support.device.type != "cpu":
        options["device"] = net.support.device
    return explain_kernel(
        net.support.detach(), net.counts.tolist(), net.gamma, X, **options
    )


def _on_device(arr: np.ndarray, device: Any) -> Any:
    if device is None or str(device) == "cpu":
        return arr
    import torch

    return torch.from_numpy(arr).to(device)


def _like(block: np.ndarray, ref: Any) -> Any:
    if isinstance(ref, np.ndarray):
        return block
    import torch

    return torch.from_numpy(np.ascontiguousarray(block)).to(ref.device)
