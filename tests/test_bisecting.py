"""NEON for BisectingKMeans: the tree walk as a min-pool network, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import BisectingKMeans
from sklearn.datasets import load_digits, make_blobs

import whyclust as wc
from whyclust.explainers.bisecting import explain_bisecting


def _walk(model, x):
    """Test-side oracle: the leaf and the (sibling, child) centre pairs on x's path."""
    node, shift, path = model._bisecting_tree, getattr(model, "_X_mean", 0.0), []
    while node.left is not None:
        left, right = node.left.center + shift, node.right.center + shift
        go_left = ((x - left) ** 2).sum() <= ((x - right) ** 2).sum()
        child, sib = (left, right) if go_left else (right, left)
        path.append((child, sib))
        node = node.left if go_left else node.right
    return node.label, path


def _leaf_path(model, leaf):
    """(child, sibling) centre pairs on the path to ``leaf``."""
    shift = getattr(model, "_X_mean", 0.0)

    def find(node, path):
        if node.left is None:
            return path if node.label == leaf else None
        left, right = node.left.center + shift, node.right.center + shift
        return find(node.left, [*path, (left, right)]) or find(node.right, [*path, (right, left)])

    return find(model._bisecting_tree, [])


def _loop_neon(model, x, leaf, beta):
    """Per-point NEON written out: margins on the leaf's path, softmin, midpoint maps."""
    pairs = _leaf_path(model, leaf)
    h = np.array([((x - s) ** 2).sum() - ((x - c) ** 2).sum() for c, s in pairs])
    f = h.min()
    w = np.exp(-beta * (h - f))
    w /= w.sum()
    rel = np.zeros_like(x)
    for (c, s), hj, wj in zip(pairs, h, w, strict=True):
        rel += wj * f / hj * (x - (c + s) / 2) * 2 * (c - s)
    return rel, f


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data[:600]
    m = BisectingKMeans(8, random_state=0).fit(X)
    flat = ((X[:, None] - m.cluster_centers_[None]) ** 2).sum(-1).argmin(1)
    assert (flat != m.predict(X)).mean() > 0.02  # the tree and the flat rule disagree
    return X, m, flat


def test_clusters_equal_predict_where_the_flat_rule_disagrees(digits):
    X, m, flat = digits
    e = explain_bisecting(m, X)
    np.testing.assert_array_equal(e.cluster, m.predict(X))
    assert (e.cluster != flat).any()
    e32 = explain_bisecting(m, X.astype(np.float32))
    assert e32.relevance.dtype == np.float32
    np.testing.assert_array_equal(e32.cluster, m.predict(X))


def test_logit_and_relevance_match_a_per_point_loop(digits):
    X, m, _ = digits
    e = explain_bisecting(m, X[:40], beta=0.01)
    for i, x in enumerate(X[:40]):
        leaf, _ = _walk(m, x)
        assert leaf == e.cluster[i]
        rel, f = _loop_neon(m, x, leaf, 0.01)
        np.testing.assert_allclose(e.logit[i], f, rtol=1e-10)
        np.testing.assert_allclose(e.relevance[i], rel, rtol=1e-8, atol=1e-8 * abs(f))


def test_conservation_for_targets_references_and_contrasts(digits):
    X, m, _ = digits
    pred = m.predict(X)
    for kw in ({"target": 0}, {"reference": "mean"}, {"contrast": (pred + 1) % 8},
               {"beta": np.inf}, {"beta": 0.0}):  # fmt: skip
        e = explain_bisecting(m, X, **kw)
        assert np.isfinite(e.relevance).all()
        assert np.abs(e.relevance.sum(1) - e.logit).max() <= 1e-9 * np.abs(e.logit).max()
    e = explain_bisecting(m, X, target=0)
    assert (e.logit[pred != 0] < 0).all() and (e.logit[pred == 0] > 0).all()


def test_contrast_is_the_margin_where_the_paths_part(digits):
    X, m, _ = digits
    x = X[:1]
    c = int(m.predict(x)[0])
    for k in range(8):
        if k == c:
            continue
        e = explain_bisecting(m, x, contrast=k)
        pc, pk = _leaf_path(m, c), _leaf_path(m, k)
        j = next(
            i for i, (a, b) in enumerate(zip(pc, pk, strict=False)) if not (a[0] == b[0]).all()
        )
        child, sib = pc[j]
        h = ((x[0] - sib) ** 2).sum() - ((x[0] - child) ** 2).sum()
        np.testing.assert_allclose(e.logit[0], h, rtol=1e-10)


@settings(max_examples=25)
@given(k=st.integers(2, 7), d=st.integers(1, 6), float32=st.booleans(),
       strategy=st.sampled_from(["biggest_inertia", "largest_cluster"]),
       seed=st.integers(0, 10_000))  # fmt: skip
def test_property_exact_network_and_conservation(k, d, float32, strategy, seed):
    X, _ = make_blobs(25 * k, n_features=d, centers=k + 1, random_state=seed)
    m = BisectingKMeans(k, bisecting_strategy=strategy, random_state=seed).fit(X)
    Xd = X.astype(np.float32) if float32 else X
    e = explain_bisecting(m, Xd, beta=1.0)
    assert e.relevance.dtype == Xd.dtype
    if not float32:
        np.testing.assert_array_equal(e.cluster, m.predict(X))
    tol = 1e-4 if float32 else 1e-9
    assert np.abs(e.relevance.sum(1) - e.logit).max() <= tol * np.abs(e.logit).max()


def test_torch_view_and_wc_entry_points(digits):
    X, m, _ = digits
    net = wc.neuralize(m)
    np.testing.assert_array_equal(net(torch.from_numpy(X)).argmax(1).numpy(), m.predict(X))
    np.testing.assert_array_equal(net.predict(X), m.predict(X))
    e = wc.explain(m, X)
    np.testing.assert_array_equal(e.cluster, m.predict(X))
