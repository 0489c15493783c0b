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

import whyclust as wc
from whyclust.networks.kernel import KernelKMeansNetwork


def _direct_logits(X, support, labels, gamma):
    """The LME formula of DESIGN.md section 2, written out with numpy / scipy."""
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


def test_fit_recovers_blobs_and_reports_agreement(blobs, fitted):
    X, y = blobs
    assert wc.metrics.cluster_accuracy(y, fitted.labels_) > 0.95
    assert fitted.support_.shape == X.shape
    assert 0.0 <= fitted.textbook_agreement_ <= 1.0
    assert fitted.textbook_agreement_ == pytest.approx(
        np.mean(fitted.predict_textbook(X) == fitted.predict(X))
    )
    assert np.array_equal(fitted.fit_predict(X), fitted.labels_)
    assert fitted.n_iter_ >= 1 and np.isfinite(fitted.inertia_)


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
        wc.KernelKMeans(1).fit(X)
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
