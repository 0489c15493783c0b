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
    df = pd.DataFrame(X[:12].astype(np.float32), columns=["a", "b", "c"], index=range(30, 42))
    r = wc.counterfactual(km, df, 0)
    assert r.to_frame().index.equals(df.index)
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


def _slsqp_polytope(x, A, b):
    """Reference: projection of x onto {A y + b >= 0} by a general-purpose solver."""
    res = minimize(
        lambda y: ((y - x) ** 2).sum(),
        x,
        jac=lambda y: 2 * (y - x),
        constraints=[{"type": "ineq", "fun": lambda y: A @ y + b, "jac": lambda y: A}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return np.linalg.norm(res.x - x)


def test_tied_gmm_cells_are_linear_and_projected_exactly():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 3)) @ np.array([[2.0, 0.5, 0], [0, 1.0, 0.3], [0, 0, 0.5]])
    X[:100] += 4
    X[100:200] -= 3
    g = GaussianMixture(4, covariance_type="tied", random_state=0).fit(X)
    target = (g.predict(X) + 1) % 4
    r = wc.counterfactual(g, X, target)
    assert r.exact.all()
    np.testing.assert_array_equal(g.predict(r.X_cf), target)
    # oracle: the cell of c from scipy-free linear algebra of the model's own scores
    P = np.linalg.inv(g.covariances_)
    for i in range(10):
        c = target[i]
        others = [k for k in range(4) if k != c]
        A = (P @ (g.means_[c] - g.means_[others]).T).T
        b = np.array([np.log(g.weights_[c] / g.weights_[k])
                      - 0.5 * g.means_[c] @ P @ g.means_[c]
                      + 0.5 * g.means_[k] @ P @ g.means_[k] for k in others])  # fmt: skip
        np.testing.assert_allclose(r.distance[i], _slsqp_polytope(X[i], A, b), atol=1e-6)


def test_bisecting_leaf_cells_follow_the_tree():
    from sklearn.cluster import BisectingKMeans
    from sklearn.datasets import load_digits

    X = load_digits().data[:300]
    m = BisectingKMeans(6, random_state=0).fit(X)
    target = (m.predict(X[:60]) + 3) % 6
    r = wc.counterfactual(m, X[:60], target)
    assert r.exact.all()
    np.testing.assert_array_equal(m.predict(r.X_cf), target)
    # oracle: the leaf's path constraints read from the tree, solved by SLSQP
    shift = m._X_mean

    def path_to(node, leaf, path):
        if node.left is None:
            return path if node.label == leaf else None
        lc, rc = node.left.center + shift, node.right.center + shift
        return path_to(node.left, leaf, [*path, (lc, rc)]) or path_to(
            node.right, leaf, [*path, (rc, lc)]
        )

    for i in range(6):
        pairs = path_to(m._bisecting_tree, target[i], [])
        A = np.array([2 * (c - s) for c, s in pairs])
        b = np.array([(s**2).sum() - (c**2).sum() for c, s in pairs])
        np.testing.assert_allclose(r.distance[i], _slsqp_polytope(X[i], A, b), atol=1e-5)


def test_affine_pipeline_cells_in_the_input_columns():
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    X = rng.normal(size=(240, 4)) * [1.0, 5.0, 0.2, 2.0] + 10
    X[:80, 0] += 4
    X[80:160, 1] -= 12
    for steps in ([StandardScaler()], [StandardScaler(), PCA(3)]):
        pipe = make_pipeline(*steps, KMeans(3, n_init=3, random_state=0)).fit(X)
        target = (pipe.predict(X[:30]) + 1) % 3
        r = wc.counterfactual(pipe, X[:30], target)
        assert r.exact.all()
        np.testing.assert_array_equal(pipe.predict(r.X_cf), target)
        # oracle: the k-means cell of z = A x + a, written in x, solved by SLSQP
        a0 = pipe[:-1].transform(np.zeros((1, 4)))[0]
        L = (pipe[:-1].transform(np.eye(4)) - a0).T
        mu = pipe[-1].cluster_centers_
        for i in range(8):
            c = target[i]
            others = [k for k in range(3) if k != c]
            W = 2 * (mu[c] - mu[others])
            bz = (mu[others] ** 2).sum(1) - (mu[c] ** 2).sum()
            ref = _slsqp_polytope(X[i], W @ L, W @ a0 + bz)
            np.testing.assert_allclose(r.distance[i], ref, atol=1e-6)


def test_weighted_norm_equals_a_general_qp_solver(fitted):
    X, km = fitted
    w = np.array([0.5, 3.0, 1.0])
    r = wc.counterfactual(km, X[:12], target=4, scale=w)
    assert r.exact.all() and (km.predict(r.X_cf) == 4).all()
    np.testing.assert_allclose(r.distance, np.linalg.norm(w * r.delta, axis=1))
    mu = km.cluster_centers_
    others = [j for j in range(6) if j != 4]
    A = 2 * (mu[4] - mu[others])
    b = (mu[others] ** 2).sum(1) - (mu[4] ** 2).sum()
    for i in range(12):  # in y = w * x the weighted problem is a plain projection
        ref = _slsqp_polytope(w * X[i], A / w, b)
        np.testing.assert_allclose(r.distance[i], ref, atol=1e-6)


@pytest.mark.parametrize("mix", [False, True])
def test_scale_model_makes_pipeline_counterfactuals_unit_free(mix):
    """grams or kilograms: the same change, in the same units, with scale="model"."""
    from sklearn.base import clone
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4)) * [1.0, 3.0, 500.0, 0.1]
    X[:70, 0] += 3
    X[70:140, 2] += 1500
    Xk = X.copy()
    Xk[:, 2] /= 1000
    steps = [StandardScaler(), PCA(3)] if mix else [StandardScaler()]
    first = make_pipeline(*steps, KMeans(3, n_init=3, random_state=0)).fit(X)
    same = KMeans(3, init=first[-1].cluster_centers_, n_init=1)  # the same clusters in kg
    fit = [first, make_pipeline(*[clone(s) for s in steps], same).fit(Xk)]
    target = (fit[0].predict(X[:25]) + 1) % 3
    assert np.array_equal(fit[0].predict(X), fit[1].predict(Xk))
    r = wc.counterfactual(fit[0], X[:25], target, scale="model")
    rk = wc.counterfactual(fit[1], Xk[:25], target, scale="model")
    assert r.exact.all() and np.array_equal(fit[0].predict(r.X_cf), target)
    kilos = r.delta.copy()
    kilos[:, 2] /= 1000
    np.testing.assert_allclose(kilos, rk.delta, atol=1e-9)
    np.testing.assert_allclose(r.distance, rk.distance, rtol=1e-9)
    std = X.std(0)
    np.testing.assert_allclose(r.distance, np.linalg.norm(r.delta / std, axis=1), rtol=1e-9)
    # plain L2 in raw units is not unit free: grams dominate
    plain = wc.counterfactual(fit[0], X[:25], target)
    assert np.abs(plain.distance - r.distance).max() > 1e-3


def test_scale_is_validated(fitted):
    X, km = fitted
    for bad in ("std", [1.0, 2.0], [1.0, 0.0, 1.0], [1.0, np.nan, 1.0]):
        with pytest.raises(ValueError, match="scale"):
            wc.counterfactual(km, X[:3], 1, scale=bad)
    # no scalers in the model: "model" is the plain norm
    a = wc.counterfactual(km, X[:5], 1, scale="model")
    np.testing.assert_array_equal(a.X_cf, wc.counterfactual(km, X[:5], 1).X_cf)


def test_curved_cells_are_refused():
    from sklearn.mixture import GaussianMixture

    X = np.random.default_rng(0).normal(size=(80, 2))
    g = GaussianMixture(2, covariance_type="full", random_state=0).fit(X)
    with pytest.raises(TypeError, match="curved"):
        wc.counterfactual(g, X[:3], 0)
