"""Which engine a fitted model needs, read from its class name and module (no imports).

Used by both the torch views (:func:`whyclust.networks.neuralize`) and the torch-free
explainers, so that the two refuse the same models with the same words.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NO_DECISION_RULE", "model_kind", "no_decision_rule_error"]

#: scikit-learn clusterers that label the points they were fitted on but have no rule that
#: assigns a new point (no ``predict``, or a predict that is not a fixed function of x)
NO_DECISION_RULE = (
    "AgglomerativeClustering", "DBSCAN", "HDBSCAN", "OPTICS", "SpectralClustering",
    "SpectralBiclustering", "SpectralCoclustering", "FeatureAgglomeration", "Birch",
    "BayesianGaussianMixture",
)  # fmt: skip


def from_sklearn(model: Any) -> bool:
    """A scikit-learn estimator, or its fitted arrays read from a file without scikit-learn
    (:mod:`whyclust._light`, whose classes say so with ``reads_as_sklearn``)."""
    cls = type(model)
    return cls.__module__.startswith("sklearn.") or getattr(cls, "reads_as_sklearn", False)


def from_whyclust(model: Any) -> bool:
    """One of whyclust's own estimators (TELL, KernelKMeans), by module, nothing imported."""
    return type(model).__module__.startswith("whyclust.")


def model_kind(model: Any) -> str | None:
    """``"pipeline"``, ``"mixture"``, ``"bisecting"``, ``"centers"`` (MeanShift and
    Euclidean AffinityPropagation: the nearest centre) for the scikit-learn models routed
    here, else None."""
    name = type(model).__name__
    if not from_sklearn(model):
        return None
    if name == "Pipeline":
        return "pipeline"
    if name == "GaussianMixture":
        return "mixture"
    if name == "BisectingKMeans":
        return "bisecting"
    if name == "MeanShift" or (
        name == "AffinityPropagation" and getattr(model, "affinity", "") == "euclidean"
    ):
        return "centers"
    return None


def no_decision_rule_error(model: Any) -> TypeError | None:
    """The TypeError for a clusterer without a decision function, else None."""
    name, module = type(model).__name__, type(model).__module__
    if not module.startswith("sklearn.") or name not in NO_DECISION_RULE:
        return None
    if name == "BayesianGaussianMixture":
        why = (
            "its predict uses variational (digamma) terms that whyclust does not neuralize; "
            "fit a GaussianMixture with the same number of components and explain that"
        )
    elif name == "Birch":
        why = (
            "its predict maps the nearest of many subcluster centres to a final label, a "
            "max over min-pools that whyclust does not neuralize"
        )
    else:
        why = (
            "it labels the points it was fitted on but has no rule that assigns a new "
            "point, so there is no decision function to neuralize"
        )
    return TypeError(
        f"cannot explain {name} models: {why}. Explain a surrogate instead: "
        "wc.surrogate_kmeans(model, X) fits a KMeans started at the centroids of its labels "
        "and reports how often the surrogate agrees with them; explain the surrogate and "
        "read the explanations where it agrees"
    )
