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

_SCORE_VALUES = 1 << 23  # input values per block in the scores pass (no temporaries)
_ALPHA_VALUES = 1 << 20  # (rows x K) values per block of mixing coefficients


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

    k = net.n_clusters
    d = flat.shape[1]
    with torch.no_grad():
        work = torch.empty((bs, d), dtype=dtype, device=dev) if rel.shift_inputs else None
        # pass 1: scores of every point; without a shift no (batch x d) temporary is made,
        # so larger row blocks keep the matrix product efficient
        score_rows = bs if rel.shift_inputs else max(bs, _SCORE_VALUES // max(1, d))
        scores = torch.empty((n, k), dtype=dtype, device=dev)
        for rows in row_batches(n, score_rows):
            rel.scores(rel.prepare(_to_device(flat[rows], dev), work), out=scores[rows])
        _check_finite_rows(scores)
        assigned = scores.argmax(1)
        tgt = resolve_targets(target, assigned, k)
        other = None
        if contrast is not None:
            other = resolve_targets(contrast, assigned, k)
            if bool((other == tgt).any()):
                raise ValueError("contrast cluster must differ from the target cluster")
            beta_value = None
        else:
            beta_value = resolve_beta(beta, assigned_logits(scores) if beta == "auto" else None)

        # mixing coefficients, written over the scores (no longer needed) chunk by chunk
        logit = torch.empty(n, dtype=dtype, device=dev)
        for rows in row_batches(n, max(1, _ALPHA_VALUES // k)):
            if other is None:
                alpha, f = rel.neon_alpha(scores[rows], tgt[rows], beta_value)
            else:
                alpha, f = rel.contrast_alpha(scores[rows], tgt[rows], other[rows])
            scores[rows] = alpha
            logit[rows] = f
        alpha_all = scores

        # pass 2: relevance, straight into the output array
        out = _output_array(flat.shape, X.dtype)
        mixed = torch.empty((bs, 2 * d), dtype=dtype, device=dev)
        on_cpu = dev.type == "cpu"
        out_t = torch.from_numpy(out) if on_cpu else None
        for rows in row_batches(n, bs):
            xp = rel.prepare(_to_device(flat[rows], dev), work)
            if on_cpu:
                rel.relevance(xp, alpha_all[rows], out=out_t[rows], work=mixed)
            else:
                out[rows] = rel.relevance(xp, alpha_all[rows], work=mixed).cpu().numpy()

    return Explanation(
        relevance=out.reshape(X.shape),
        logit=logit.cpu().numpy(),
        cluster=assigned.cpu().numpy(),
        target=tgt.cpu().numpy(),
        beta=beta_value,
        method="neon" if other is None else "neon-contrast",
        contrast=None if other is None else other.cpu().numpy(),
    )


def _check_finite_rows(scores: torch.Tensor) -> None:
    """NaN / inf anywhere in a row makes its scores non-finite: a check at O(n K) cost."""
    finite = torch.isfinite(scores).all(1)
    if not bool(finite.all()):
        row = int(torch.nonzero(~finite)[0, 0])
        raise ValueError(f"X contains NaN or infinite values (first at row {row})")


def _output_array(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``np.empty`` with its pages touched once, sequentially.

    First-touch page faults taken inside torch's multi-threaded kernels cost more than the
    kernels themselves; one strided write per 4 KiB page here is cheap.
    """
    out = np.empty(shape, dtype=dtype)
    out.reshape(-1)[:: max(1, 4096 // out.itemsize)] = 0
    return out


def _to_device(block: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(block))
    return t if device.type == "cpu" else t.to(device, non_blocking=True)
