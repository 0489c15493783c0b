"""Batched driver of NEON for k-means networks (numpy in, numpy out)."""

from __future__ import annotations

import numpy as np
import torch

from whyclust.explain.explanation import Explanation
from whyclust.explain.neon import (
    KMeansRelevance,
    assigned_logits,
    default_batch_size,
    resolve_beta,
    resolve_targets,
    row_batches,
)
from whyclust.neuralize.kmeans import KMeansNetwork

__all__ = ["explain_kmeans"]


def explain_kmeans(
    net: KMeansNetwork,
    X: np.ndarray,
    *,
    target="assigned",
    beta="auto",
    contrast=None,
    batch_size: int | None = None,
    eps: float | None = None,
    device: str | torch.device | None = None,
) -> Explanation:
    """NEON relevance for every row of a validated float array ``X`` (any trailing shape).

    Two passes over ``X`` in row batches: the first computes the K scores of every point
    (n x K, kept), which give assignments, targets and ``beta="auto"``; the second writes
    the relevance of each batch straight into the output array.
    """
    n = X.shape[0]
    flat = X.reshape(n, -1)
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    dev = torch.device(device) if device is not None else net.device
    rel = KMeansRelevance.from_network(net, dtype, dev, eps)
    bs = int(batch_size) if batch_size is not None else default_batch_size(flat.shape[1])
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    with torch.no_grad():
        scores = torch.empty((n, net.n_clusters), dtype=dtype, device=dev)
        for rows in row_batches(n, bs):
            xb = _to_device(flat[rows], dev)
            scores[rows] = rel.scores(rel.shift(xb))
        assigned = scores.argmax(1)
        tgt = resolve_targets(target, assigned, net.n_clusters)
        other = None
        if contrast is not None:
            other = resolve_targets(contrast, assigned, net.n_clusters)
            if bool((other == tgt).any()):
                raise ValueError("contrast cluster must differ from the target cluster")
            beta_value = None
        else:
            beta_value = resolve_beta(beta, assigned_logits(scores) if beta == "auto" else None)

        out = np.empty(flat.shape, dtype=X.dtype)
        logit = torch.empty(n, dtype=dtype, device=dev)
        for rows in row_batches(n, bs):
            xs = rel.shift(_to_device(flat[rows], dev))
            s = scores[rows]
            if other is None:
                alpha, f = rel.neon_alpha(s, tgt[rows], beta_value)
            else:
                alpha, f = rel.contrast_alpha(s, tgt[rows], other[rows])
            logit[rows] = f
            if dev.type == "cpu":
                rel.relevance(xs, alpha, out=torch.from_numpy(out[rows]))
            else:
                out[rows] = rel.relevance(xs, alpha).cpu().numpy()

    return Explanation(
        relevance=out.reshape(X.shape),
        logit=logit.cpu().numpy(),
        cluster=assigned.cpu().numpy(),
        target=tgt.cpu().numpy(),
        beta=beta_value,
        method="neon" if other is None else "neon-contrast",
        contrast=None if other is None else other.cpu().numpy(),
    )


def _to_device(block: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(block))
    return t if device.type == "cpu" else t.to(device, non_blocking=True)
