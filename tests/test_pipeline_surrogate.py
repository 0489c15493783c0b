"""Clusterers without a decision rule: refused with the reason; the surrogate path works."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import (
    DBSCAN,
    AffinityPropagation,
    AgglomerativeClustering,
    BisectingKMeans,
    MeanShift,
    SpectralClustering,
)
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture

import whyclust as wc
from whyclust.explainers.dispatch import engine_for


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(240, n_features=3, centers=3, cluster_std=0.6, random_state=0)
    return X, y


@pytest.mark.parametrize(
    "model",
    [DBSCAN(eps=0.8), AgglomerativeClustering(3), SpectralClustering(3, random_state=0)],
    ids=lambda m: type(m).__name__,
)
def test_no_decision_rule_is_refused_and_surrogated(blobs, model):
    X, _ = blobs
    model.fit(X)
    with pytest.raises(TypeError, match="surrogate_kmeans"):
        wc.explain(model, X)
    with pytest.raises(TypeError, match="no rule that assigns a new point"):
        wc.neuralize(model)
    with pytest.raises(TypeError, match=type(model).__name__):
        engine_for(model)
    s = wc.surrogate_kmeans(model, X)
    labelled = model.labels_ != -1
    # oracle: the surrogate's agreement counted by hand, label by label
    pred = s.labels[s.model.predict(X)]
    np.testing.assert_allclose(s.agreement, (pred == model.labels_)[labelled].mean())
    assert s.agreement > 0.95  # well separated blobs: the labels are a Voronoi partition
    e = wc.explain(s.model, X)
    np.testing.assert_array_equal(s.labels[e.cluster], pred)


def test_surrogate_without_refit_keeps_the_label_centroids(blobs):
    X, _ = blobs
    m = AgglomerativeClustering(3).fit(X)
    s = wc.surrogate_kmeans(m, X, max_iter=0)
    want = np.stack([X[m.labels_ == v].mean(0) for v in s.labels])
    np.testing.assert_allclose(s.model.cluster_centers_, want, rtol=1e-12)
    with pytest.raises(ValueError, match="one label per row"):
        wc.surrogate_kmeans(m, X[:10])


@pytest.mark.parametrize(
    "model",
    [MeanShift(bandwidth=2.0), AffinityPropagation(random_state=0, damping=0.9)],
    ids=lambda m: type(m).__name__,
)
def test_nearest_centre_models_are_explained_as_kmeans(blobs, model):
    X, _ = blobs
    model.fit(X)
    assert len(model.cluster_centers_) >= 2
    e = wc.explain(model, X)
    np.testing.assert_array_equal(e.cluster, model.predict(X))
    assert np.abs(e.relevance.sum(1) - e.logit).max() <= 1e-9 * np.abs(e.logit).max()
    np.testing.assert_array_equal(wc.neuralize(model).predict(X), model.predict(X))


def test_single_cluster_models_are_refused(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="one cluster"):
        wc.explain(GaussianMixture(1).fit(X), X)
    with pytest.raises(ValueError, match="one cluster"):
        wc.explain(BisectingKMeans(1).fit(X), X)
