"""Gaussian kernel k-means: fit, the exact 4-layer neuralization and its NEON relevance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

import whyclust as wc
from whyclust.networks.kernel import KernelKMeansNetwork


def _direct_logits(X, support, labels, gamma):
    """The LME formula of docs/kernel_kmeans.md, written out with numpy / scipy."""
    from scipy.special import logsumexp

    D = ((X[:, None, :] - support[None]) ** 2).sum(-1)
    K = labels.max() + 1
    d = np.stack(
        [
            -(logsumexp(-gamma * D[:, labels == k], axis=1) - math.log((labels == k).sum()))
            / gamma
            for k in range(K)
        ],
        axis=1,
    )
    diff = d[:, None, :] - d[:, :, None]  # [n, c, k] = d_k - d_c
    diff[:, np.arange(K), np.arange(K)] = np.inf
    return diff.min(2)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(300, centers=4, n_features=5, cluster_std=1.5, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return wc.KernelKMeans(4, gamma=0.05, n_init=3, random_state=0).fit(X)


def _loop_textbook(X, support, labels, gamma):
    """Textbook kernel k-means assignment written as plain loops over points and clusters:
    argmin_k k(x,x) - 2/|C_k| sum_j k(x,u_j) + 1/|C_k|^2 sum_{j,l} k(u_j,u_l)."""
    kern = lambda a, b: math.exp(-gamma * float(((a - b) ** 2).sum()))  # noqa: E731
    K = labels.max() + 1
    out = []
    for x in X:
        dist = []
        for k in range(K):
            members = support[labels == k]
            cross = sum(kern(x, u) for u in members) / len(members)
            inner = sum(kern(u, v) for u in members for v in members) / len(members) ** 2
            dist.append(kern(x, x) - 2 * cross + inner)
        out.append(int(np.argmin(dist)))
    return np.array(out)


def _loop_lme(X, support, labels, gamma):
    """The neuralized rule argmin_k -(1/gamma) log mean_{j in C_k} exp(-gamma D_j), looped."""
    K = labels.max() + 1
    out = []
    for x in X:
        d = [-math.log(np.mean([math.exp(-gamma * float(((x - u) ** 2).sum()))
                                for u in support[labels == k]])) / gamma for k in range(K)]
        out.append(int(np.argmin(d)))
    return np.array(out)


def test_fit_recovers_blobs_and_reports_agreement(blobs):
    X, y = blobs
    sub = X[::3]  # 100 points: the loops below stay fast
    m = wc.KernelKMeans(4, gamma=0.05, n_init=3, tol=0.0, random_state=0).fit(sub)
    assert wc.metrics.cluster_accuracy(y[::3], m.labels_) > 0.95
    assert m.support_.shape == sub.shape
    # labels_ is the LME rule, computed independently by loops
    lme = _loop_lme(sub, m.support_, m.support_labels_, m.gamma_)
    np.testing.assert_array_equal(m.labels_, lme)
    # the fit converged (tol=0): the support labels are a fixed point of textbook k-means
    textbook = _loop_textbook(sub, m.support_, m.support_labels_, m.gamma_)
    np.testing.assert_array_equal(m.support_labels_, textbook)
    np.testing.assert_array_equal(m.predict_textbook(sub), textbook)
    assert m.textbook_agreement_ == pytest.approx(np.mean(textbook == lme))
    # the objective is the sum of textbook distances of the support points to their cluster
    kmat = np.exp(-m.gamma_ * ((sub[:, None] - sub[None]) ** 2).sum(-1))
    total = 0.0
    for k in range(4):
        idx = np.flatnonzero(m.support_labels_ == k)
        total += sum(kmat[a, a] - 2 * kmat[a, idx].mean() + kmat[np.ix_(idx, idx)].mean()
                     for a in idx)
    assert m.inertia_ == pytest.approx(total, rel=1e-9)
    assert m.n_iter_ >= 1
    # fit_predict on a fresh model gives the labels of fit, for the same seed
    again = wc.KernelKMeans(4, gamma=0.05, n_init=3, tol=0.0, random_state=0)
    np.testing.assert_array_equal(again.fit_predict(sub), lme)


def test_kmeanspp_seeds_spread_over_the_blobs():
    """Seeding in kernel space picks one seed per well-separated blob (k-means++ property)."""
    from whyclust.models.kernel_kmeans import _gaussian_kernel, _plus_plus_init

    X, y = make_blobs(200, centers=4, n_features=2, cluster_std=0.2, center_box=(-20, 20),
                      random_state=3)
    kmat = _gaussian_kernel(X, X, 0.5)
    for seed in range(5):
        labels = _plus_plus_init(kmat, 4, np.random.RandomState(seed))
        assert wc.metrics.cluster_accuracy(y, labels) == 1.0


def test_predict_equals_argmax_of_neuralized_logits(blobs, fitted):
    X, _ = blobs
    net = wc.neuralize(fitted)
    assert isinstance(net, KernelKMeansNetwork)
    logits = net(torch.from_numpy(X)).numpy()
    assert np.array_equal(fitted.predict(X), logits.argmax(1))
    assert np.all(logits[np.arange(len(X)), logits.argmax(1)] >= 0)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 4), d=st.integers(1, 4))
def test_network_equals_direct_lme_formula(seed, k, d):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, size=3 * k)])
    support = rng.normal(size=(labels.size, d)) * 2
    gamma = float(rng.uniform(0.1, 2.0))
    X = rng.normal(size=(15, d)) * 2
    net = KernelKMeansNetwork(support, labels, gamma)
    ref = _direct_logits(X, support, labels, gamma)
    xt = torch.from_numpy(X)
    np.testing.assert_allclose(net(xt).numpy(), ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(net.forward_layers(xt).numpy(), ref, rtol=1e-9, atol=1e-9)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 4),
    beta=st.sampled_from([0.0, 0.7, float("inf"), "auto"]),
)
def test_relevance_conserves_the_logit(seed, k, beta):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, size=4 * k)])
    support = rng.normal(size=(labels.size, 3)) * 3
    net = KernelKMeansNetwork(support, labels, 0.3)
    X = rng.normal(size=(25, 3)) * 3
    e = wc.explain(net, X, beta=beta)
    scale = np.abs(e.logit).max()
    np.testing.assert_allclose(e.relevance_sum(), e.logit, atol=1e-8 * scale)
    np.testing.assert_allclose(e.logit, net(torch.from_numpy(X)).numpy().max(1), atol=1e-12)
    # any target: "why not cluster 0?" conserves the negative logit as well
    e0 = wc.explain(net, X, target=0)
    np.testing.assert_allclose(e0.relevance_sum(), e0.logit, atol=1e-8 * np.abs(e0.logit).max())


def test_relevance_matches_layerwise_rules():
    """Take-most at each pool and the midpoint rule, written per (i, j) for a few points."""
    rng = np.random.default_rng(7)
    labels = np.array([0, 0, 1, 1, 1, 2, 2])
    support = rng.normal(size=(7, 2)) * 2
    gamma, beta = 0.5, 1.3
    net = KernelKMeansNetwork(support, labels, gamma)
    X = rng.normal(size=(5, 2)) * 2
    e = wc.explain(net, X, beta=beta)
    for n, x in enumerate(X):
        D = ((x - support) ** 2).sum(1)
        c = e.cluster[n]
        own = np.flatnonzero(labels == c)
        d = np.array([-np.log(np.mean(np.exp(-gamma * D[labels == k]))) / gamma for k in range(3)])
        comps = [k for k in range(3) if k != c]
        hk = np.array([d[k] - d[c] for k in comps])
        rk = hk.min() * np.exp(-beta * hk) / np.exp(-beta * hk).sum()
        R = np.zeros(2)
        for k, r_k in zip(comps, rk, strict=True):
            js = np.flatnonzero(labels == k)
            p = np.exp(-gamma * D[js]) / np.exp(-gamma * D[js]).sum()
            q = np.exp(-gamma * D[own]) / np.exp(-gamma * D[own]).sum()
            for j, pj in zip(js, p, strict=True):
                for i, qi in zip(own, q, strict=True):
                    w = 2 * (support[i] - support[j])
                    m = (support[i] + support[j]) / 2
                    h = w @ x + support[j] @ support[j] - support[i] @ support[i]
                    R += (x - m) * w / h * r_k * pj * qi
        np.testing.assert_allclose(e.relevance[n], R, rtol=1e-7, atol=1e-10)


def test_contrast_sums_to_pairwise_margin(blobs, fitted):
    X, _ = blobs
    net = wc.neuralize(fitted)
    d = -net.scores(torch.from_numpy(X)).numpy()
    cl = fitted.predict(X)
    other = (cl + 1) % 4
    e = wc.explain(fitted, X, contrast=other)
    h = d[np.arange(len(X)), other] - d[np.arange(len(X)), cl]
    np.testing.assert_allclose(e.logit, h, rtol=1e-9)
    np.testing.assert_allclose(e.relevance_sum(), h, atol=1e-8 * np.abs(h).max())


def test_float32_and_batching(blobs, fitted):
    X, _ = blobs
    X = X[:120]
    a = wc.explain(fitted, X.astype(np.float32), batch_size=17)
    b = wc.explain(fitted, X.astype(np.float32), batch_size=1000)
    assert a.relevance.dtype == np.float32
    np.testing.assert_allclose(a.relevance, b.relevance, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a.relevance_sum(), a.logit, atol=1e-4 * np.abs(a.logit).max())


def test_subsampled_support_and_save_load(tmp_path, blobs):
    X, _ = blobs
    m = wc.KernelKMeans(4, max_support=60, n_init=2, random_state=1).fit(X)
    assert m.support_.shape == (60, 5) and m.labels_.shape == (300,)
    path = wc.save(m, tmp_path / "kkm.safetensors")
    m2 = wc.load(path)
    assert isinstance(m2, wc.KernelKMeans)
    assert np.array_equal(m2.predict(X), m.predict(X))
    assert m2.textbook_agreement_ == m.textbook_agreement_
    assert clone(m).get_params() == m.get_params()


def test_bad_parameters_are_named(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="gamma"):
        wc.KernelKMeans(2, gamma=-1.0).fit(X)
    with pytest.raises(ValueError, match="gamma"):
        wc.KernelKMeans(2, gamma="wide").fit(X)
    with pytest.raises(ValueError, match="max_support"):
        wc.KernelKMeans(4, max_support=2).fit(X)
    with pytest.raises(ValueError, match="n_init"):
        wc.KernelKMeans(2, n_init=0).fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        wc.KernelKMeans(0).fit(X)
    with pytest.raises(TypeError, match="n_clusters"):
        wc.KernelKMeans(2.5).fit(X)
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=4"):
        wc.KernelKMeans(4).fit(X[:3])
    one = wc.KernelKMeans(1, n_init=1).fit(X)  # like KMeans: fits, but nothing to explain
    assert (one.labels_ == 0).all() and one.textbook_agreement_ == 1.0
    with pytest.raises(ValueError, match="at least 2 clusters"):
        wc.neuralize(one)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        wc.KernelKMeans(2).predict(X)
    m = wc.KernelKMeans(2, n_init=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :3])
    with pytest.raises(ValueError, match="support points"):
        KernelKMeansNetwork(X[:3], np.array([0, 0, 2]), 1.0)


def test_exact_ties_on_integer_data_keep_relevance_bounded_and_conserved():
    """Integer pixels make D_j = D_i exactly for many pairs: no 0/0 blow-up, no loss."""
    X, _ = wc.datasets.load_digits()
    X = np.asarray(X, dtype=np.float64)[:400]
    m = wc.KernelKMeans(5, n_init=1, random_state=0).fit(X)
    D = ((X[:50, None, :] - m.support_[None]) ** 2).sum(-1)
    own = m.support_labels_[None, :] == m.labels_[:50, None]
    ties = [np.intersect1d(D[i][own[i]], D[i][~own[i]]).size for i in range(50)]
    assert sum(ties) > 0  # the data really has exact ties
    e = wc.explain(m, X[:50])
    np.testing.assert_allclose(e.relevance_sum(), e.logit, atol=1e-9 * np.abs(e.logit).max())
    assert np.abs(e.relevance).max() < 10 * np.abs(e.logit).max()


def test_neuralize_protocol_and_feature_names(blobs, fitted, tmp_path):
    import pandas as pd

    X, _ = blobs
    net = wc.neuralize(fitted)  # each caller's own copy of the model's network
    assert net is not wc.neuralize(fitted) and type(net) is type(fitted.__neuralize__())
    np.testing.assert_array_equal(net.predict(X), fitted.predict(X))
    df = pd.DataFrame(X, columns=list("abcde"))
    m = wc.KernelKMeans(4, gamma=0.05, n_init=1, random_state=0).fit(df)
    assert list(m.feature_names_in_) == list("abcde")
    with pytest.raises(ValueError, match="feature names"):
        m.predict(df[list("edcba")])
    again = wc.load(wc.save(m, tmp_path / "named.safetensors"))
    assert list(again.feature_names_in_) == list("abcde")
    np.testing.assert_array_equal(again.predict(df), m.labels_)


@parametrize_with_checks(
    [wc.KernelKMeans(n_clusters=3, n_init=2, random_state=0)],
    expected_failed_checks=lambda est: {},  # none: every check passes
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_auto_beta_is_one_over_the_mean_logit_on_every_path():
    from whyclust.scale import explain_to

    X, _ = wc.datasets.load_digits()
    X = X[:300]
    model = wc.KernelKMeans(4, random_state=0, n_init=1).fit(X[:150])
    e = wc.explain(model, X)
    np.testing.assert_allclose(e.beta, 1.0 / e.logit.astype(np.float64).mean(), rtol=1e-5)
    out = np.zeros_like(X)
    streamed = explain_to(model, X, out, batch_size=64)
    np.testing.assert_allclose(streamed.beta, e.beta, rtol=1e-5)
    # float32: BLAS blocks a 64-row batch differently from 300 rows, and this model's
    # float32 relevance is accurate to about 1e-4 of its largest value (against float64)
    np.testing.assert_allclose(out, e.relevance, rtol=0, atol=5e-4 * np.abs(e.relevance).max())
