"""A compact deletion curve for the report (DESIGN.md section 5).

Used when :mod:`whyclust.evaluation` is not available. Features are replaced by a baseline
in decreasing order of relevance; after each step the logit of the cluster each point was
first assigned to is recomputed. Vectorised over points: one forward pass per step.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["deletion_curve", "rank_order"]


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Rank of each feature per row, 0 for the highest score (ties by position)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    return ranks


@torch.no_grad()
def deletion_curve(
    net,
    X: np.ndarray,
    relevance: np.ndarray | None,
    cluster: np.ndarray,
    baseline: np.ndarray | float,
    *,
    n_steps: int = 20,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Deletion curve of one explanation (``relevance=None``: random order).

    Returns
    -------
    fractions : (n_steps + 1,) share of features deleted, from 0 to 1
    curve : (n_steps + 1,) mean over points of f_c(x_deleted) / f_c(x)
    auc : area under ``curve`` (trapezoid rule); lower means a more faithful explanation
    """
    n = X.shape[0]
    flat = X.reshape(n, -1)
    d = flat.shape[1]
    if relevance is None:
        scores = np.random.default_rng(random_state).random((n, d))
    else:
        scores = np.asarray(relevance, dtype=np.float64).reshape(n, -1)
    ranks = rank_order(scores)
    base = np.broadcast_to(np.asarray(baseline, dtype=flat.dtype).reshape(-1), (d,))
    fractions = np.linspace(0.0, 1.0, n_steps + 1)
    rows = torch.arange(n)
    target = torch.as_tensor(cluster, dtype=torch.long)
    values = np.empty((n_steps + 1, n))
    for s, frac in enumerate(fractions):
        deleted = ranks < round(frac * d)
        xs = np.where(deleted, base, flat).reshape(X.shape)
        x = torch.from_numpy(np.ascontiguousarray(xs)).to(net.device, net.dtype)
        values[s] = net(x)[rows, target].double().cpu().numpy()
    f0 = values[0]
    keep = f0 > 0
    curve = (values[:, keep] / f0[keep]).mean(1) if keep.any() else np.full(n_steps + 1, np.nan)
    auc = float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(fractions)))
    return fractions, curve, auc
