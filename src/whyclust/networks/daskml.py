"""dask-ml's ``KMeans`` neuralized like scikit-learn's (DESIGN.md section 1).

dask-ml keeps ``cluster_centers_`` as a numpy array, so the network is the same
:class:`~whyclust.networks.KMeansNetwork`. The model is recognised by its module name, so
dask-ml is never imported here: it stays an optional dependency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from whyclust.networks import register_neuralizer
from whyclust.networks.kmeans import KMeansNetwork

__all__ = ["is_dask_ml_kmeans", "neuralize_dask_ml_kmeans"]


def is_dask_ml_kmeans(model: Any) -> bool:
    """True for ``dask_ml.cluster.KMeans`` (and subclasses living in dask-ml)."""
    klass = type(model)
    return klass.__module__.startswith("dask_ml.") and klass.__name__ == "KMeans"


@register_neuralizer(is_dask_ml_kmeans)
def neuralize_dask_ml_kmeans(model: Any) -> KMeansNetwork:
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "cluster_centers_")
    centers = model.cluster_centers_
    if hasattr(centers, "compute"):  # a dask array in some dask-ml versions
        centers = centers.compute()
    return KMeansNetwork(np.asarray(centers))
