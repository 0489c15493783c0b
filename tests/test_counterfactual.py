"""Counterfactuals for k-means: the projection onto the target Voronoi cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from sklearn.cluster import KMeans

import whyclust as wc


def _slsqp_distance(x, centers, c):
    """Reference: the same QP by a general-purpose solver."""
    others = [j for j in range(len(centers)) if j != c]
    A = 2 * (centers[c] - centers[others])
    b = (centers[others] ** 2).sum(1) - (centers[c] ** 2).sum()
    res = minimize(
        lambda y: ((y - x) ** 2).sum(),
        x,
        jac=lambda y: 2 * (y - x),
        constraints=[{"type": "ineq", "fun": lambda y: A @ y + b, "jac": lambda y: A}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return np.linalg.norm(res.x - x)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    return X, KMeans(6, n_init=3, random_state=0).fit(X)


def test_moves_every_point_into_the_target_cell(fitted):
    X, km = fitted
    target = (km.predict(X) + 2) % 6
    r = wc.counterfactual(km, X, target)
    assert np.array_equal(km.predict(r.X_cf), target)
    assert np.all(r.exact)
    np.testing.assert_allclose(r.delta, r.X_cf - X)
    np.testing.assert_allclose(r.distance, np.linalg.norm(r.delta, axis=1))
    assert np.array_equal(r.cluster, km.predict(X))
    # a point already in its target cell does not move
    same = wc.counterfactual(km, X[:10], km.predict(X[:10]))
    assert np.all(same.distance == 0) and np.array_equal(same.X_cf, X[:10])


def test_distance_equals_a_general_qp_solver(fitted):
    X, km = fitted
    r = wc.counterfactual(km, X[:25], target=4)
    ref = np.array([_slsqp_distance(x, km.cluster_centers_, 4) for x in X[:25]])
    np.testing.assert_allclose(r.distance, ref, atol=1e-6)


def test_no_sampled_point_of_the_cell_is_closer(fitted):
    X, km = fitted
    rng = np.random.default_rng(1)
    r = wc.counterfactual(km, X[:20], target=1)
    for x, d, xcf in zip(X[:20], r.distance, r.X_cf, strict=True):
        # random points around x and along the segment to x': none in cell 1 is closer
        cloud = x + rng.normal(size=(4000, 3)) * max(d, 1e-3) * rng.uniform(0, 1.2, (4000, 1))
        seg = x + np.linspace(0, 1, 200)[:, None] * (xcf - x)
        pts = np.vstack([cloud, seg])
        inside = pts[km.predict(pts) == 1]
        if len(inside):
            assert np.linalg.norm(inside - x, axis=1).min() >= d - 1e-6


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 7), d=st.integers(1, 5))
def test_projection_kkt_on_random_centers(seed, k, d):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 3
    X = rng.normal(size=(15, d)) * 3
    target = rng.integers(0, k, size=15)
    r = wc.counterfactual(centers, X, target)
    assert np.all(r.exact)
    net = wc.neuralize(centers)
    assert np.array_equal(net.predict(r.X_cf), target)
    # KKT: delta = sum_j l_j w_kj with l >= 0 only on tight constraints -> delta lies in the
    # cone of the tight constraint normals; check by non-negative least squares
    from scipy.optimize import nnls

    for i in range(15):
        c = target[i]
        others = [j for j in range(k) if j != c]
        W = 2 * (centers[c] - centers[others])
        h = W @ r.X_cf[i] + (centers[others] ** 2).sum(1) - (centers[c] ** 2).sum()
        assert np.all(h >= -1e-9)
        if r.distance[i] == 0:
            continue
        tight = np.abs(h - r.extras["margin"]) < 1e-6 * max(1.0, np.abs(h).max())
        assert tight.any()
        _, resid = nnls(W[tight].T, r.delta[i])
        assert resid < 1e-6 * max(1.0, r.distance[i])


def test_float32_dataframe_and_errors(fitted):
    X, km = fitted
    df = pd.DataFrame(X[:12].astype(np.float32), columns=["a", "b", "c"])
    r = wc.counterfactual(km, df, 0)
    assert r.X_cf.dtype == np.float32
    assert np.array_equal(km.predict(r.X_cf.astype(np.float64)), np.zeros(12, dtype=int))
    assert list(r.to_frame().columns) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="target"):
        wc.counterfactual(km, X[:3], 6)
    with pytest.raises(ValueError, match="features"):
        wc.counterfactual(km, X[:3, :2], 0)
    with pytest.raises(ValueError, match="margin"):
        wc.counterfactual(km, X[:3], 0, margin=-1.0)
    kk = wc.KernelKMeans(2, n_init=1, random_state=0).fit(X[:50])
    with pytest.raises(TypeError, match="k-means"):
        wc.counterfactual(kk, X[:3], 0)
