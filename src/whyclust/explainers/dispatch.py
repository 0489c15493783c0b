"""Route a fitted model to the torch-free explain function of its family (or None).

``engine_for(model)`` returns ``fn(model, X, *, target, beta, contrast, reference,
batch_size, eps, device) -> Explanation`` for scikit-learn Pipelines, ``GaussianMixture``,
``BisectingKMeans``, ``MeanShift`` and Euclidean ``AffinityPropagation``; it raises the
explanatory TypeError for clusterers without a decision function (DBSCAN,
AgglomerativeClustering, ...), and returns None for everything else (k-means models and
networks go the usual way). Nothing is imported to decide: the class name and module are
read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from whyclust.engine.kinds import model_kind, no_decision_rule_error
from whyclust.explainers.explanation import Explanation

__all__ = ["engine_for", "explain_centers", "explain_source_network", "model_reference_mean"]


def engine_for(model: Any) -> Callable[..., Explanation] | None:
    """The explain function for ``model``'s family, or None (see the module docstring)."""
    err = no_decision_rule_error(model)
    if err is not None:
        raise err
    kind = model_kind(model)
    if kind == "pipeline":
        from whyclust.explainers.pipeline import explain_pipeline

        return explain_pipeline
    if kind == "mixture":
        from whyclust.explainers.mixture import explain_mixture

        return explain_mixture
    if kind == "bisecting":
        from whyclust.explainers.bisecting import explain_bisecting

        return explain_bisecting
    if kind == "centers":
        return explain_centers
    return None


def explain_centers(
    model: Any,
    X: Any,
    *,
    target: Any = "assigned",
    beta: Any = "auto",
    contrast: Any = None,
    reference: Any = "midpoint",
    batch_size: int | None = None,
    eps: float | None = None,
    device: Any = None,
) -> Explanation:
    """NEON for a fitted model whose ``predict`` is the nearest of its ``cluster_centers_``
    (``MeanShift``, Euclidean ``AffinityPropagation``): the k-means network of those centres."""
    import numpy as np

    from whyclust._validation import as_float_array, feature_names_of
    from whyclust.explainers.kmeans import explain_kmeans

    centers = getattr(model, "cluster_centers_", None)
    if centers is None:
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"This {type(model).__name__} instance is not fitted yet.")
    centers = np.asarray(centers)
    if centers.shape[0] < 2:
        raise ValueError(
            f"this {type(model).__name__} found {centers.shape[0]} cluster: with one cluster "
            "there is no assignment to explain"
        )
    names = feature_names_of(X)
    X = as_float_array(X, n_features=centers.shape[1])
    e = explain_kmeans(
        centers, X, target=target, beta=beta, contrast=contrast, reference=reference,
        batch_size=batch_size, eps=eps, device=device,
    )  # fmt: skip
    e.feature_names = names
    return e


def explain_source_network(net: Any, X: Any, **options: Any) -> Explanation:
    """``method="neon"`` for a torch view that keeps its fitted model (``net.source``)."""
    model = net.source
    fn = engine_for(model)
    if fn is None:
        raise TypeError(f"NEON has no rule for a {type(net).__name__}")
    return fn(model, X, **options)


def model_reference_mean(model: Any) -> Any:
    """The point ``reference="mean"`` stands for when ``model`` knows its own mean, else None.

    As :func:`whyclust.explain` resolves it in memory: k-means and bisecting k-means models
    use the mean of their training data, mixtures the weighted mean of their components;
    every other model (and a bare network) uses the mean of the explained X, which callers
    that see X in pieces must compute over all of it. Torch views that keep their fitted
    model (``net.source``) answer for it.
    """
    from whyclust.explainers.kmeans import fitted_mean, kmeans_centers

    model = getattr(model, "source", model)
    kind = model_kind(model)
    if kind == "mixture":
        from whyclust.engine.fold import mixture_arrays

        arr = mixture_arrays(model)
        return arr["weights"] @ arr["means"]
    if kind == "bisecting" or (kind is None and kmeans_centers(model) is not None):
        return fitted_mean(model)
    return None
