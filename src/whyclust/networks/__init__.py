"""Torch views of fitted clusterers: exact networks of cluster logits (forward only).

:func:`neuralize` finds the converter of a model without importing model modules: a model
class that knows its network provides ``__neuralize__(self, **kwargs)`` (TELL,
KernelKMeans); k-means-type estimators, centroid arrays and ``(encoder, centers)`` pairs are
recognised here; :func:`register_neuralizer` adds a user's own converter at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from whyclust.networks.base import ClusterNetwork, EncodedClusterNetwork, L2Normalize, evaluating
from whyclust.networks.kmeans import KMeansNetwork, MinPool, PairwiseMargin, centers_of

__all__ = [
    "ClusterNetwork",
    "EncodedClusterNetwork",
    "KMeansNetwork",
    "L2Normalize",
    "MinPool",
    "PairwiseMargin",
    "evaluating",
    "neuralize",
    "register_neuralizer",
]

_Neuralizer = Callable[..., ClusterNetwork]
_USER: list[tuple[Callable[[Any], bool], _Neuralizer]] = []


def register_neuralizer(matches: type | Callable[[Any], bool]):
    """Register ``fn(model, **kwargs) -> ClusterNetwork`` for models that ``matches``.

    ``matches`` is a class (isinstance test) or a predicate. Later registrations win.
    """
    test = (lambda m: isinstance(m, matches)) if isinstance(matches, type) else matches

    def decorator(fn: _Neuralizer) -> _Neuralizer:
        _USER.insert(0, (test, fn))
        return fn

    return decorator


def neuralize(
    model: Any, *, device: str | torch.device | None = None, **kwargs: Any
) -> ClusterNetwork:
    """Rewrite a fitted clusterer as an exact network of cluster logits.

    See :func:`whyclust.neuralize` for the parameters.
    """
    if device is not None:
        return neuralize(model, **kwargs).to(device)
    if isinstance(model, ClusterNetwork):
        return model
    for test, fn in _USER:
        if test(model):
            return fn(model, **kwargs)
    convert = getattr(type(model), "__neuralize__", None)
    if convert is not None:
        return convert(model, **kwargs)
    from whyclust.engine.kinds import model_kind, no_decision_rule_error

    if (err := no_decision_rule_error(model)) is not None:
        raise err
    if (kind := model_kind(model)) is not None:  # Pipeline, GMM, BisectingKMeans, MeanShift
        from whyclust.networks.pipeline import network_of

        return network_of(model, kind)
    name, module = type(model).__name__, type(model).__module__
    from whyclust.networks.deep import is_encoder_centers_pair, neuralize_encoder_centers

    if is_encoder_centers_pair(model):
        return neuralize_encoder_centers(model, **kwargs)
    if module.startswith("dask_ml.") and name == "KMeans":
        centers = centers_of(model)  # a dask array in some dask-ml versions
        return KMeansNetwork(np.asarray(getattr(centers, "compute", lambda: centers)()))
    if hasattr(model, "cluster_centers_") or name in {"KMeans", "MiniBatchKMeans"}:
        return KMeansNetwork(centers_of(model))
    if isinstance(model, (np.ndarray, torch.Tensor, list)):
        return KMeansNetwork(model)
    raise TypeError(
        f"cannot neuralize a {type(model).__name__}: expected a fitted k-means model, "
        "a (K, d) array of centers, TELL, KernelKMeans or an (encoder, centers) pair"
    )
