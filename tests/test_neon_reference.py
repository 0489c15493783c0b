"""NEON against an independent, literal transcription of the k-means equations of the
mathematics page (docs/mathematics.rst) on real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine
from sklearn.preprocessing import MinMaxScaler

import whyclust as wc


def neon_by_the_equations(x: list[float], centers: list[list[float]], beta: float):
    """One point, plain Python floats and loops: min-take-most, then the midpoint rule."""
    k_total, d = len(centers), len(x)
    sq = [sum((x[i] - mu[i]) ** 2 for i in range(d)) for mu in centers]
    c = min(range(k_total), key=lambda k: sq[k])
    competitors = [k for k in range(k_total) if k != c]
    h = {}
    for k in competitors:
        w = [2.0 * (centers[c][i] - centers[k][i]) for i in range(d)]
        b = sum(v * v for v in centers[k]) - sum(v * v for v in centers[c])
        h[k] = sum(w[i] * x[i] for i in range(d)) + b
    f = min(h.values())
    weights = {k: math.exp(-beta * (h[k] - f)) for k in competitors}
    total = sum(weights.values())
    relevance = [0.0] * d
    for k in competitors:
        r_k = f * weights[k] / total
        for i in range(d):
            m_i = (centers[c][i] + centers[k][i]) / 2.0
            w_i = 2.0 * (centers[c][i] - centers[k][i])
            relevance[i] += (x[i] - m_i) * w_i / h[k] * r_k
    return relevance, f, c


@pytest.mark.parametrize("beta", [0.0, 0.5, "auto", 20.0])
def test_wine_matches_loop_transcription(beta):
    X = MinMaxScaler().fit_transform(load_wine().data)  # float64 in [0, 1]
    km = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)
    expl = wc.explain(km, X, beta=beta)
    beta_value = expl.beta
    if beta == "auto":
        assert beta_value == pytest.approx(1.0 / np.mean(expl.logit))
    centers = km.cluster_centers_.tolist()
    for row in range(X.shape[0]):
        relevance, f, c = neon_by_the_equations(X[row].tolist(), centers, beta_value)
        assert expl.cluster[row] == c
        assert expl.logit[row] == pytest.approx(f, rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(expl.relevance[row], relevance, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(expl.relevance.sum(1), expl.logit, rtol=1e-9)
