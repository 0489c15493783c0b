"""Deletion / insertion curves and the ground-truth share of relevance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import whyclust as wc
from whyclust.evaluation import (
    compare_methods,
    deletion_curve,
    flipping_curve,
    insertion_curve,
    relevance_on_informative,
)
from whyclust.explainers import available_methods

# three centroids in R^3 and one point assigned to cluster 0 (see test_hand_computed_case)
CENTERS = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
POINT = np.array([[-1.0, -1.0, 5.0]])


def test_hand_computed_case():
    # x = (-1, -1, 5): squared distances 27, 51, 75 -> cluster 0, f_0 = 51 - 27 = 24.
    # Relevance (1, 3, 2) removes feature 1, then 2, then 0, replacing them by b = (2, 2, 0):
    #   (-1, 2, 5): distances 30, 54, 42 -> f_0 = 12
    #   (-1, 2, 0): distances  5, 29, 17 -> f_0 = 12
    #   ( 2, 2, 0): distances  8,  8, 20 -> f_0 = 0
    # normalised curve 1, .5, .5, 0 at fractions 0, 1/3, 2/3, 1: area (0.75 + 0.5 + 0.25) / 3.
    rel = np.array([[1.0, 3.0, 2.0]])
    base = np.array([2.0, 2.0, 0.0])
    dele = deletion_curve(CENTERS, POINT, rel, baseline=base, n_steps=3)
    np.testing.assert_allclose(dele.fractions, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(dele.curves, [[24.0, 12.0, 12.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(dele.auc, [0.5], atol=1e-12)
    assert dele.cluster.tolist() == [0]
    # insertion from b: (2, -1, 0) and (2, -1, 5) are on the 0 / 1 boundary, then x itself
    ins = insertion_curve(CENTERS, POINT, rel, baseline=base, n_steps=3)
    np.testing.assert_allclose(ins.curves, [[0.0, 0.0, 0.0, 24.0]], atol=1e-9)
    np.testing.assert_allclose(ins.auc, [1 / 6], atol=1e-12)


def test_tracks_first_cluster_after_it_loses():
    # removing feature 1 first moves x = (-1, -1, 5) to (-1, 6, 5), now in cluster 2:
    # distances 62, 86, 26 -> f_0 = min(86, 26) - 62 = -36 (negative, still cluster 0's logit)
    rel = np.array([[0.0, 1.0, 0.0]])
    curve = deletion_curve(CENTERS, POINT, rel, baseline=np.array([0.0, 6.0, 5.0]), n_steps=3)
    assert curve.curves[0, 1] == pytest.approx(-36.0)
    assert curve.cluster.tolist() == [0]


def _naive_deletion(centers, X, rel, base, n_steps):
    """Literal per-point loop: flip features one ranking at a time, recompute f_c."""
    n, d = X.shape
    out = np.empty((n, n_steps + 1))
    for i in range(n):
        dist = ((X[i] - centers) ** 2).sum(1)
        c = int(dist.argmin())
        order = sorted(range(d), key=lambda j: (-rel[i, j], j))
        for s in range(n_steps + 1):
            x = X[i].copy()
            for j in order[: round(s * d / n_steps)]:
                x[j] = base[j]
            dist = ((x - centers) ** 2).sum(1)
            out[i, s] = np.delete(dist, c).min() - dist[c]
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 12),
    d=st.integers(1, 9),
    k=st.integers(2, 5),
    n_steps=st.integers(1, 12),
    batch_size=st.integers(1, 5),
)
def test_vectorised_equals_naive_loop(seed, n, d, k, n_steps, batch_size):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 3
    X = rng.normal(size=(n, d)) * 3
    rel = rng.integers(-3, 3, size=(n, d)).astype(float)  # ties on purpose
    curves = deletion_curve(centers, X, rel, n_steps=n_steps, batch_size=batch_size)
    base = X.mean(0)
    np.testing.assert_allclose(
        curves.curves, _naive_deletion(centers, X, rel, base, n_steps), atol=1e-8
    )
    # trapezoidal rule written out (same on every numpy version)
    y, x = curves.curves / curves.curves[:, :1], curves.fractions
    expected = ((y[:, 1:] + y[:, :-1]) / 2 * np.diff(x)).sum(1)
    np.testing.assert_allclose(curves.auc, expected)


def test_deep_network_on_images_matches_naive():
    import torch
    from torch import nn

    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.ReLU(), nn.Linear(6, 3))
    centers = np.random.default_rng(0).normal(size=(4, 3))
    net = wc.neuralize((encoder, centers))
    rng = np.random.default_rng(1)
    X = rng.random((7, 1, 4, 4)).astype(np.float32)
    rel = rng.normal(size=X.shape)
    curves = deletion_curve(net, X, rel, baseline="zero", n_steps=4, batch_size=3)
    with torch.no_grad():
        c = net(torch.from_numpy(X)).argmax(1).numpy()
        for i in range(len(X)):
            order = np.argsort(-rel[i].ravel(), kind="stable")
            for s, k in enumerate([0, 4, 8, 12, 16]):
                x = X[i].ravel().copy()
                x[order[:k]] = 0.0
                f = net(torch.from_numpy(x.reshape(1, 1, 4, 4)))[0, c[i]].item()
                assert curves.curves[i, s] == pytest.approx(f, rel=1e-5, abs=1e-6)


@pytest.fixture(scope="module")
def blobs():
    from sklearn.cluster import KMeans

    X, _, informative = wc.datasets.make_blobs_with_relevant_features(
        240, 3, 16, 4, separation=8.0, random_state=0
    )
    model = KMeans(3, n_init=3, random_state=0).fit(X)
    return model, X, informative


def test_deletion_and_insertion_sanity(blobs):
    model, X, _ = blobs
    net = wc.neuralize(model)
    neon_del = deletion_curve(model, X, method="neon", n_steps=8)
    rand_del = deletion_curve(model, X, method="random", n_steps=8, random_state=0)
    neon_ins = insertion_curve(model, X, method="neon", n_steps=8)
    rand_ins = insertion_curve(model, X, method="random", n_steps=8, random_state=0)
    f_base = logits_at(net, X.mean(0), neon_del.cluster)
    # both ends: the point itself and the baseline (all features flipped)
    np.testing.assert_allclose(neon_del.curves[:, 0], neon_del.logit)
    np.testing.assert_allclose(neon_ins.curves[:, -1], neon_ins.logit)
    np.testing.assert_allclose(neon_del.curves[:, -1], f_base, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(neon_ins.curves[:, 0], f_base, rtol=1e-6, atol=1e-6)
    assert (neon_del.logit > 0).all() and neon_del.fractions[-1] == 1.0
    # relevance-ordered flipping destroys the logit faster and rebuilds it faster than random
    assert neon_del.mean_auc < rand_del.mean_auc - 0.1
    assert neon_ins.mean_auc > rand_ins.mean_auc + 0.1
    # 4 of 16 features are informative: after removing the top quarter the logit is gone
    # (features of negative relevance may push it back slightly later on)
    mean_curve = neon_del.normalized.mean(0)
    assert mean_curve[2] < 0.2
    assert np.abs(mean_curve[2:]).max() < 0.15
    assert (mean_curve[1:-1] < rand_del.normalized.mean(0)[1:-1]).all()


def wc_tensor(X):
    import torch

    return torch.from_numpy(np.asarray(X, dtype=np.float64))


def logits_at(net, point, clusters):
    out = net(wc_tensor(point[None])).detach().numpy()[0]
    return out[clusters]


def test_a_given_explanation_must_explain_these_points(blobs):
    """Curves score a ranking against each point's assigned logit: an explanation of
    another target, or of the rows in another order, is refused; the right one is used."""
    model, X, _ = blobs
    e = wc.explain(model, X)
    np.testing.assert_array_equal(
        deletion_curve(model, X, e, n_steps=4).auc, deletion_curve(model, X, n_steps=4).auc
    )
    with pytest.raises(ValueError, match="target='assigned'"):
        deletion_curve(model, X, wc.explain(model, X, target=(e.cluster + 1) % 3))
    with pytest.raises(ValueError, match="clusters or logits differ"):
        insertion_curve(model, X[::-1], e)
    within = np.arange(len(X))  # rows swapped inside each cluster: same clusters, other points
    for c in range(3):
        members = np.flatnonzero(e.cluster == c)
        within[members] = members[::-1]
    with pytest.raises(ValueError, match="clusters or logits differ"):
        deletion_curve(model, X[within], e)
    frame = pd.DataFrame(X, index=[f"p{i}" for i in range(len(X))])
    with pytest.raises(ValueError, match="labelled otherwise"):
        deletion_curve(model, frame.iloc[::-1], wc.explain(model, frame))
    net = wc.neuralize(model)  # a point on a boundary may fall either side in float32
    mid = (model.cluster_centers_[0] + model.cluster_centers_[1]) / 2
    tie = wc.explain(model, mid[None])
    tie.cluster = tie.target = 1 - tie.cluster
    deletion_curve(net, mid[None], tie, n_steps=2)


def test_ground_truth_share_neon(blobs):
    model, X, informative = blobs
    share = relevance_on_informative(wc.explain(model, X), informative, per_point=True)
    assert share.shape == (X.shape[0],)
    assert np.nanmean(share) > 0.9


def test_ground_truth_large_noise_mean():
    from sklearn.cluster import KMeans

    X, _, informative = wc.datasets.make_blobs_with_relevant_features(
        240, 3, 16, 4, separation=8.0, noise_mean=100.0, random_state=1
    )
    model = KMeans(3, n_init=3, random_state=0).fit(X)
    assert relevance_on_informative(wc.explain(model, X), informative) > 0.9
    if "gradient_x_input" in available_methods():
        # x * grad scales the noise features by their mean of 100: not translation invariant
        gxi = relevance_on_informative(wc.explain(model, X, method="gradient_x_input"), informative)
        assert gxi < 0.6


def test_relevance_share_by_hand():
    rel = np.array([[1.0, -2.0, 3.0], [-1.0, -1.0, 0.0]])
    share = relevance_on_informative(rel, np.array([True, True, False]), per_point=True)
    assert share[0] == pytest.approx(0.25)
    assert np.isnan(share[1])
    assert relevance_on_informative(rel, np.array([True, True, False])) == pytest.approx(0.25)


def test_blur_baseline_images():
    from sklearn.cluster import KMeans

    X, _ = wc.datasets.load_digits(as_images=True)
    X = X[:60]
    model = KMeans(4, n_init=1, random_state=0).fit(X.reshape(60, -1))
    rel = wc.explain(model, X.reshape(60, -1)).relevance
    curves = deletion_curve(model, X.reshape(60, -1), rel, baseline="blur", image_shape=(8, 8))
    assert np.isfinite(curves.auc).all()
    # the blurred image is a smoothed copy of each point, per image and channel
    from whyclust.evaluation import _baseline

    blurred = _baseline("blur", X, None, 2.0)
    assert blurred.shape == (60, 64)
    np.testing.assert_allclose(blurred, _baseline("blur", X.reshape(60, -1), (1, 8, 8), 2.0))
    assert abs(blurred.mean() - X.mean()) < 0.05
    assert blurred.std(1).mean() < 0.5 * X.reshape(60, -1).std(1).mean()
    flat = np.full((2, 2, 5, 5), 0.7)
    flat[1] = 0.1
    np.testing.assert_allclose(_baseline("blur", flat, None, 1.0), flat.reshape(2, -1))
    image_curves = deletion_curve(model, X, rel.reshape(X.shape), baseline="blur")
    np.testing.assert_allclose(image_curves.curves, curves.curves, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs images"):
        deletion_curve(model, X.reshape(60, -1), rel, baseline="blur")


def test_compare_methods_table(blobs):
    model, X, _ = blobs
    methods = ["neon", "random"]
    if "gradient" in available_methods():
        methods.append("gradient")
    table = compare_methods(model, X[:80], methods, n_steps=5)
    assert list(table.index) == methods
    assert {"deletion_auc", "deletion_median", "insertion_auc", "deletion_gap"} <= set(table)
    assert table.loc["neon", "deletion_auc"] < table.loc["random", "deletion_auc"]
    assert table["deletion_gap"].min() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "sideways"}, ValueError, "kind"),
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"baseline": "median"}, ValueError, "baseline"),
        ({"baseline": np.zeros(5)}, ValueError, "baseline"),
        ({"relevance": np.zeros((1, 4))}, ValueError, "relevance"),
        ({"relevance": np.array([[np.nan, 0, 0]])}, ValueError, "NaN"),
        ({"method": "nope"}, ValueError, "unknown method"),
    ],
)
def test_bad_input(kwargs, error, match):
    kwargs = {"relevance": None, **kwargs}
    rel = kwargs.pop("relevance")
    with pytest.raises(error, match=match):
        flipping_curve(CENTERS, POINT, rel, **kwargs)


def test_bad_informative_mask():
    with pytest.raises(TypeError, match="boolean"):
        relevance_on_informative(np.ones((2, 3)), np.array([1, 0, 1]))
    with pytest.raises(ValueError, match="entries"):
        relevance_on_informative(np.ones((2, 3)), np.array([True, False]))


def test_flip_fraction_by_hand():
    # removing feature 1 first moves x = (-1, -1, 5) into cluster 2 (test above): the
    # assignment flips at the first step, 1/3 of the features
    rel = np.array([[0.0, 1.0, 0.0]])
    curve = deletion_curve(CENTERS, POINT, rel, baseline=np.array([0.0, 6.0, 5.0]), n_steps=3)
    assert curve.kept[0].tolist() == [True, False, False, False]
    assert curve.flip_fraction.tolist() == [pytest.approx(1 / 3)]
    # a baseline inside the point's own cell never flips it
    stay = deletion_curve(CENTERS, POINT, rel, baseline=np.zeros(3), n_steps=3)
    assert stay.flip_fraction.tolist() == [np.inf]
    # insertion: the first step at which the point is back in its cluster
    ins = insertion_curve(CENTERS, POINT, rel, baseline=np.array([0.0, 6.0, 5.0]), n_steps=3)
    assert ins.flip_fraction.tolist() == [pytest.approx(1 / 3)]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_steps=st.integers(1, 8))
def test_flip_fraction_equals_a_loop(seed, n_steps):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, 5)) * 3
    X = rng.normal(size=(6, 5)) * 3
    rel = rng.normal(size=X.shape)
    curve = deletion_curve(centers, X, rel, n_steps=n_steps)
    base = X.mean(0)
    for i in range(len(X)):
        c = ((X[i] - centers) ** 2).sum(1).argmin()
        order = np.argsort(-rel[i], kind="stable")
        expected = np.inf
        for s in range(n_steps + 1):
            x = X[i].copy()
            x[order[: round(s * 5 / n_steps)]] = base[order[: round(s * 5 / n_steps)]]
            if ((x - centers) ** 2).sum(1).argmin() != c:
                expected = curve.fractions[s]
                break
        assert curve.flip_fraction[i] == expected


def test_quantus_adapter_and_randomisation(blobs):
    pytest.importorskip("quantus")
    from whyclust.evaluation.quantus_metrics import center_randomisation, quantus_scores

    model, X, _ = blobs
    pts = X[:12]
    table = quantus_scores(model, pts, ["neon", "random"])
    assert list(table.index) == ["neon", "random"]
    assert set(table.columns) == {
        "FaithfulnessCorrelation", "MonotonicityCorrelation", "PixelFlipping", "MaxSensitivity"
    }  # fmt: skip
    # relevance that ignores the model correlates with nothing
    assert (
        table.loc["neon", "FaithfulnessCorrelation"]
        > table.loc["random", "FaithfulnessCorrelation"]
    )
    # PixelFlipping's area, recomputed: Quantus's own flipping of the same points is not
    # reproduced here, only that the neon ranking destroys f_c faster than a random one
    assert table.loc["neon", "PixelFlipping"] < table.loc["random", "PixelFlipping"]
    rho = center_randomisation(model, pts, "neon")
    assert rho.shape == (12,) and np.all(np.abs(rho) <= 1 + 1e-12)
    # random relevance is seeded: identical before and after randomising the centers
    np.testing.assert_allclose(center_randomisation(model, pts, "random"), 1.0)
    assert np.median(np.abs(rho)) < 0.9
