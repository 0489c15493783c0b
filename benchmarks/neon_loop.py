"""NEON for k-means written the slow, obvious way: a Python loop over points (and competitors).

A literal transcription of the k-means equations of the mathematics page
(docs/mathematics.rst), numpy per point, used as the speed reference
("per-sample loop") by ``benchmarks/run.py`` and ``benchmarks/bench_neon.py`` and as an
independent cross-check of the vectorised implementation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["neon_loop"]


def neon_loop(centers: np.ndarray, X: np.ndarray, beta: float) -> np.ndarray:
    """Relevance (n, d) of the assigned cluster's logit f_c for every row of ``X``.

    Parameters
    ----------
    centers : (K, d) centroids mu_k.
    X : (n, d) points.
    beta : stiffness of the min-take-most rule (>= 0; ``np.inf`` for a hard min).
    """
    centers = np.asarray(centers, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    n_clusters = centers.shape[0]
    out = np.zeros_like(X)
    for i in range(X.shape[0]):
        x = X[i]
        dist = np.array([np.sum((x - mu) ** 2) for mu in centers])
        c = int(np.argmin(dist))
        competitors = [k for k in range(n_clusters) if k != c]
        # layer 1: h_ck = w_ck . x + b_ck
        h = {}
        for k in competitors:
            w = 2.0 * (centers[c] - centers[k])
            b = np.sum(centers[k] ** 2) - np.sum(centers[c] ** 2)
            h[k] = float(w @ x + b)
        f = min(h.values())
        # layer 2 (min-pool): min-take-most, stabilised by subtracting the minimum
        if np.isinf(beta):
            weights = {k: float(h[k] == f) for k in competitors}
        else:
            weights = {k: np.exp(-beta * (h[k] - f)) for k in competitors}
        total = sum(weights.values())
        for k in competitors:
            r_k = f * weights[k] / total
            # midpoint rule: reference m_ck = (mu_c + mu_k) / 2
            w = 2.0 * (centers[c] - centers[k])
            m = 0.5 * (centers[c] + centers[k])
            out[i] += (x - m) * w / h[k] * r_k
    return out
