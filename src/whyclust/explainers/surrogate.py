"""Surrogates for clusterers without a decision rule (DBSCAN, agglomerative, spectral, ...).

Such models label the points they were fitted on but cannot assign a new one, so there is
no function to neuralize. The documented path: fit a model that *does* have a rule on their
labels, check how often it agrees with them, and explain the surrogate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from whyclust._validation import as_float_array

__all__ = ["Surrogate", "surrogate_kmeans"]


@dataclass
class Surrogate:
    """A k-means surrogate and how well it reproduces the original labels.

    Attributes
    ----------
    model : sklearn.cluster.KMeans
        Fitted, started at the centroids of the original clusters (cluster j of the
        surrogate is ``labels[j]`` of the original).
    labels : ndarray of shape (K,)
        The original label of each surrogate cluster.
    agreement : float
        Fraction of the labelled points (noise excluded) the surrogate assigns to their
        original cluster.
    agrees : ndarray of bool, shape (n,)
        Per point (False for noise points, labelled -1).
    """

    model: Any
    labels: np.ndarray
    agreement: float
    agrees: np.ndarray


def surrogate_kmeans(
    model: Any, X: Any, *, labels: Any = None, max_iter: int = 300, random_state: Any = 0
) -> Surrogate:
    """Fit a KMeans started at the centroids of ``model``'s labels on ``X``.

    ``labels`` defaults to ``model.labels_`` (points labelled -1, noise, are left out of
    the fit). ``max_iter=0`` keeps the label centroids as they are (nearest-centroid rule
    of the labels). Explain ``result.model`` and read the explanations where
    ``result.agrees``.
    """
    from sklearn.cluster import KMeans

    X = as_float_array(X)
    lab = np.asarray(getattr(model, "labels_", None) if labels is None else labels)
    if lab.ndim != 1 or lab.shape[0] != X.shape[0]:
        raise ValueError(
            f"need one label per row of X ({X.shape[0]}), got labels of shape {lab.shape} "
            "(pass labels= or a model fitted on X)"
        )
    keep = lab != -1
    values = np.unique(lab[keep])
    if values.shape[0] < 2:
        raise ValueError(f"the labels have {values.shape[0]} cluster(s); at least 2 are needed")
    index = np.searchsorted(values, lab[keep])
    Xk = X[keep].astype(np.float64)
    counts = np.bincount(index, minlength=values.shape[0]).astype(np.float64)
    centroids = np.zeros((values.shape[0], X.shape[1]))
    np.add.at(centroids, index, Xk)
    centroids /= counts[:, None]
    km = KMeans(values.shape[0], init=centroids, n_init=1, max_iter=max(1, max_iter),
                random_state=random_state)  # fmt: skip
    km.fit(Xk)
    if max_iter == 0:
        km.cluster_centers_ = centroids.astype(km.cluster_centers_.dtype)
    pred = km.predict(Xk)
    agrees = np.zeros(X.shape[0], dtype=bool)
    agrees[keep] = pred == index
    return Surrogate(km, values, float(agrees[keep].mean()), agrees)
