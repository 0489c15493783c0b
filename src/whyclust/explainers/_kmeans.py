"""Batched driver of NEON for k-means networks (numpy in, numpy out), registered as
``method="neon"`` for k-means networks and for networks with an encoder."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from whyclust.explainers import register_method
from whyclust.explainers.explanation import Explanation
from whyclust.explainers.neon import (
    KMeansRelevance,
    assigned_logits,
    check_finite_rows,
    default_batch_size,
    resolve_request,
    row_batches,
    to_tensor,
)
from whyclust.networks import EncodedClusterNetwork, KMeansNetwork, L2Normalize

__all__ = ["explain_kmeans"]

_SCORE_VALUES = 1 << 26  # input values per block in the scores pass (views: no copies)
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
            rel.scores(rel.prepare(to_tensor(flat[rows], dev, dtype), work), out=scores[rows])
        check_finite_rows(scores)
        assigned, tgt, other, beta_value = resolve_request(
            scores,
            target=target,
            beta=beta,
            contrast=contrast,
            assigned_logit=lambda: assigned_logits(scores),
        )

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
            xp = rel.prepare(to_tensor(flat[rows], dev, dtype), work)
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


def _output_array(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``np.empty`` with its pages touched once, sequentially.

    First-touch page faults taken inside torch's multi-threaded kernels cost more than the
    kernels themselves; one strided write per 4 KiB page here is cheap.
    """
    out = np.empty(shape, dtype=dtype)
    out.reshape(-1)[:: max(1, 4096 // out.itemsize)] = 0
    return out


@register_method("neon", KMeansNetwork)
def _neon_kmeans(net: KMeansNetwork, X: np.ndarray, **options: Any) -> Explanation:
    return explain_kmeans(net, X, **options)


_neon_kmeans.checks_finite = True  # non-finite rows surface in the scores pass


@register_method("neon", EncodedClusterNetwork)
def _neon_encoded(net: EncodedClusterNetwork, X: np.ndarray, **options: Any) -> Explanation:
    """NEON through the encoder (:mod:`whyclust.explainers.deep`, zennit composites).

    Encoders that only rescale each point (L2 normalisation) pass relevance unchanged: the
    exact k-means path runs on the normalised points.
    """
    if isinstance(net.encoder, L2Normalize) and isinstance(net.head, KMeansNetwork):
        for key in ("composite", "bounds", "epsilon"):
            options.pop(key, None)
        with torch.no_grad():
            x = torch.from_numpy(X.reshape(X.shape[0], -1))
            z = net.encoder(x).numpy()
        expl = explain_kmeans(net.head, z, **options)
        expl.relevance = expl.relevance.reshape(X.shape)
        expl.extras["conservation"] = expl.conservation
        return expl
    from whyclust.explainers.deep import explain_encoded

    return explain_encoded(net, X, **options)
