"""NEON for GaussianMixture: exact network, conservative relevance, roots, torch view."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import multivariate_normal
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

import whyclust as wc
from whyclust.engine.mixture import (
    ROOT_GRADIENT,
    ROOT_MEANS,
    ROOT_NONE,
    ROOT_REFERENCE,
    ROOT_SEGMENT,
)
from whyclust.explainers.mixture import explain_mixture

TYPES = ["full", "tied", "diag", "spherical"]


def _covariances(g):
    """(K, d, d) covariance matrices of any covariance type (test-side, from covariances_)."""
    k, d = g.means_.shape
    c = g.covariances_
    if g.covariance_type == "full":
        return c
    if g.covariance_type == "tied":
        return np.broadcast_to(c, (k, d, d))
    if g.covariance_type == "diag":
        return np.stack([np.diag(v) for v in c])
    return np.stack([np.eye(d) * v for v in c])


def _log_scores(g, X):
    """log pi_k + log N(x | mu_k, S_k), by scipy, one component at a time."""
    cov = _covariances(g)
    return np.stack(
        [np.log(g.weights_[k]) + np.atleast_1d(multivariate_normal(g.means_[k], cov[k]).logpdf(X))
         for k in range(len(g.weights_))], axis=1,
    )  # fmt: skip


@pytest.fixture(scope="module", params=TYPES)
def fitted(request):
    X, _ = make_blobs(240, n_features=3, centers=4, cluster_std=[0.6, 1.0, 1.4, 0.8],
                      random_state=3)  # fmt: skip
    g = GaussianMixture(4, covariance_type=request.param, random_state=0).fit(X)
    assert len(np.unique(g.predict(X))) == 4  # no collapsed component
    return X, g


def test_clusters_and_logits_match_sklearn_and_scipy(fitted):
    X, g = fitted
    e = explain_mixture(g, X)
    np.testing.assert_array_equal(e.cluster, g.predict(X))
    s = _log_scores(g, X)
    c = s.argmax(1)
    others = np.where(np.arange(4)[None] == c[:, None], -np.inf, s)
    np.testing.assert_allclose(e.logit, s[np.arange(len(X)), c] - others.max(1), atol=1e-9)


def test_relevance_conserves_the_logit_for_any_target(fitted):
    X, g = fitted
    for target in ("assigned", 0, 3):
        e = explain_mixture(g, X, target=target)
        scale = np.abs(e.logit).max()
        assert np.abs(e.relevance.sum(1) - e.logit).max() <= 1e-9 * scale
        assert np.isfinite(e.relevance).all()


def _pair_root(g, c, k):
    """The root of h_ck on the segment mu_c..mu_k nearest its middle (grid + brentq)."""
    mu = g.means_

    def h(t):
        y = mu[c] + t * (mu[k] - mu[c])
        s = _log_scores(g, y[None])[0]
        return s[c] - s[k]

    ts = np.linspace(0.0, 1.0, 101)
    grid = _log_scores(g, mu[c] + ts[:, None] * (mu[k] - mu[c]))
    vals = grid[:, c] - grid[:, k]
    roots = [brentq(h, ts[i], ts[i + 1], xtol=1e-14) for i in range(100)
             if vals[i] * vals[i + 1] < 0]  # fmt: skip
    assert roots, "fixture: the pair has no root between its means"
    t = min(roots, key=lambda r: abs(r - 0.5))
    return mu[c] + t * (mu[k] - mu[c])


def test_contrast_map_is_the_integrated_gradient_from_the_means_root(fitted):
    """Oracle: (x - r) times the mean gradient along r..x, by Gauss-Legendre quadrature of
    central finite differences of scipy's log densities, one point at a time."""
    X, g = fitted
    pts = X[::40]
    c = g.predict(pts)
    k = (c + 1) % 4
    e = explain_mixture(g, pts, contrast=k)
    nodes, wts = np.polynomial.legendre.leggauss(6)
    steps = 1e-5 * np.concatenate([np.eye(3), -np.eye(3)])  # (6, 3): +e_j, then -e_j
    for i, x in enumerate(pts):
        r = _pair_root(g, c[i], k[i])
        path = r + ((nodes + 1) / 2)[:, None] * (x - r)  # quadrature nodes on r..x
        s = _log_scores(g, (path[:, None, :] + steps[None]).reshape(-1, 3)).reshape(6, 6, 4)
        h = s[:, :, c[i]] - s[:, :, k[i]]
        grad = (wts / 2) @ ((h[:, :3] - h[:, 3:]) / 2e-5)
        np.testing.assert_allclose(e.relevance[i], (x - r) * grad, rtol=1e-5, atol=1e-6)
    assert (e.extras["root"][np.arange(len(pts)), k] == ROOT_MEANS).all()


def test_fallback_roots_are_roots():
    """A component so light that its segment to another mean has no root: the fallback
    roots (x..mu_k, gradient line) still make every contrast map sum to h_ck."""
    X, _ = make_blobs(200, n_features=2, centers=3, random_state=0)
    g = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    g.weights_ = np.array([0.998, 0.001, 0.001])
    g.covariances_ = g.covariances_.copy()
    g.precisions_cholesky_ = g.precisions_cholesky_ * np.array([1.0, 4.0, 0.3])[:, None, None]
    e = explain_mixture(g, X, target=0)
    codes = e.extras["root"][:, 1:]
    assert (codes == ROOT_SEGMENT).any() and (codes == ROOT_GRADIENT).any()
    for k in (1, 2):
        ek = explain_mixture(g, X, target=0, contrast=k)
        ok = ek.extras["root"][:, k] != ROOT_NONE
        assert ok.any()
        scale = np.abs(ek.logit).max()
        assert np.abs(ek.relevance.sum(1) - ek.logit)[ok].max() <= 1e-9 * scale
    assert np.abs(e.relevance.sum(1) - e.logit).max() <= 1e-9 * np.abs(e.logit).max()


def test_reference_mean_uses_the_segment_to_the_mean(fitted):
    X, g = fitted
    e = explain_mixture(g, X, reference="mean")
    assert e.extras["reference"] == "mean"
    assert (e.extras["root"] == ROOT_REFERENCE).any()
    assert np.abs(e.relevance.sum(1) - e.logit).max() <= 1e-9 * np.abs(e.logit).max()
    e2 = explain_mixture(g, X, reference=g.weights_ @ g.means_)
    np.testing.assert_allclose(e.relevance, e2.relevance, atol=1e-10)


@settings(max_examples=25)
@given(
    cov=st.sampled_from(TYPES),
    k=st.integers(2, 5),
    d=st.integers(1, 6),
    float32=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_property_exact_network_and_conservation(cov, k, d, float32, seed):
    X, _ = make_blobs(30 * k, n_features=d, centers=k, random_state=seed)
    g = GaussianMixture(k, covariance_type=cov, random_state=seed, reg_covar=1e-3).fit(X)
    Xd = X.astype(np.float32) if float32 else X
    e = explain_mixture(g, Xd, beta=1.0)
    assert e.relevance.dtype == Xd.dtype
    pred = g.predict(X)
    s = g._estimate_weighted_log_prob(X)
    top2 = np.sort(s, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > (1e-3 if float32 else 1e-9) * np.abs(s).max()
    assert (e.cluster[clear] == pred[clear]).all()
    if not float32:
        np.testing.assert_array_equal(e.cluster, pred)
    tol = 1e-4 if float32 else 1e-9
    assert np.abs(e.relevance.sum(1) - e.logit).max() <= tol * np.abs(e.logit).max()


def test_torch_view_and_wc_entry_points(fitted):
    X, g = fitted
    net = wc.neuralize(g)
    logits = net(torch.from_numpy(X))
    np.testing.assert_array_equal(logits.argmax(1).numpy(), g.predict(X))
    e = wc.explain(g, X)
    np.testing.assert_allclose(logits.max(1).values.detach().numpy(), e.logit, atol=1e-9)
    np.testing.assert_array_equal(e.cluster, g.predict(X))


def test_bayesian_mixture_is_refused_with_a_reason():
    from sklearn.mixture import BayesianGaussianMixture

    X, _ = make_blobs(60, n_features=2, centers=2, random_state=0)
    b = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
    with pytest.raises(TypeError, match="GaussianMixture"):
        wc.explain(b, X)


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        explain_mixture(GaussianMixture(2), np.zeros((3, 2)))


@pytest.mark.parametrize("cov", TYPES)
def test_the_torch_namespace_runs_the_same_lines(cov):
    """The engine on torch tensors (as on a GPU) gives the numpy result, driver included."""
    from whyclust.engine.mixture import MixtureGeometry
    from whyclust.explainers._engine import drive

    X, _ = make_blobs(120, n_features=3, centers=3, random_state=1)
    g = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    t = [torch.from_numpy(np.asarray(a)) for a in (g.means_, g.precisions_cholesky_, g.weights_)]
    geom = MixtureGeometry(*t, cov)
    kw = {"target": "assigned", "beta": "auto", "contrast": None, "reference": "mean",
          "model_mean": g.weights_ @ g.means_, "batch_size": 50}  # fmt: skip
    res = drive(geom, X, like=geom.means, **kw)
    e = explain_mixture(g, X, reference="mean")
    np.testing.assert_allclose(res["relevance"], e.relevance, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(res["cluster"], e.cluster)


@pytest.mark.parametrize("cov", TYPES)
def test_float32_far_from_the_origin(cov):
    X, _ = make_blobs(400, n_features=6, centers=4, random_state=0)
    X = X + 1e3
    g = GaussianMixture(4, covariance_type=cov, random_state=0).fit(X)
    e = explain_mixture(g, X.astype(np.float32))
    assert e.relevance.dtype == np.float32
    np.testing.assert_array_equal(e.cluster, g.predict(X))
    assert np.abs(e.relevance.sum(1) - e.logit).max() <= 1e-5 * np.abs(e.logit).max()


def test_networks_of_mixtures_and_bisecting_models_explain_like_the_models():
    from sklearn.cluster import BisectingKMeans

    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(size=(60, 3)) + 3 * i for i in range(3)])
    for model in (
        GaussianMixture(3, random_state=0).fit(X),
        BisectingKMeans(3, random_state=0).fit(X),
    ):
        net = wc.neuralize(model)
        a, b = wc.explain(net, X), wc.explain(model, X)
        np.testing.assert_array_equal(a.relevance, b.relevance)
        np.testing.assert_array_equal(a.cluster, model.predict(X))


@pytest.mark.parametrize("cov", TYPES)
def test_float32_conservation_for_every_target_on_real_data(cov):
    """Mixtures compute in float64: in float32 the log-densities' cancelling terms missed
    the logit of a non-assigned target by far more than float32 rounding."""
    from sklearn.datasets import load_digits

    X = load_digits().data[:600] / 16.0
    g = GaussianMixture(6, covariance_type=cov, random_state=0, reg_covar=1e-3).fit(X)
    for target in ("assigned", 0, 3):
        e = explain_mixture(g, X.astype(np.float32), target=target)
        assert e.relevance.dtype == np.float32
        gap = np.abs(e.relevance.sum(1, dtype=np.float64) - e.logit)
        assert (gap <= 1e-4 * np.abs(e.logit)).all(), (target, (gap / np.abs(e.logit)).max())


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("eps", [0.0, 1e-9, 1e-6])
def test_components_with_one_mean_still_conserve(covariance_type, eps):
    """Two components with (nearly) the same mean make a near-flat margin: the root along
    its gradient lay absurdly far away and the relevance lost every digit (sum(R) 0.003
    for a logit of 0.34); now such roots are refused and the margin is spread evenly."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(load_wine().data)
    g = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    g.means_[2] = g.means_[1] + eps * np.random.default_rng(0).normal(size=X.shape[1])
    g.weights_ = np.array([0.4, 0.35, 0.25])
    e = wc.explain(g, X)
    np.testing.assert_array_equal(e.cluster, g.predict(X))
    err = np.abs(e.relevance.sum(1) - e.logit).max() / np.abs(e.logit).max()
    assert err <= 1e-9
