"""Rewrite fitted clusterers exactly as networks of linear and min-pool layers.

:func:`neuralize` dispatches on the model type. Model modules register their own
converters with :func:`register_neuralizer`, so that this package needs no import of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from whyclust.networks.base import ClusterNetwork, EncodedClusterNetwork, L2Normalize
from whyclust.networks.kmeans import KMeansNetwork, MinPool, PairwiseMargin, centers_of

__all__ = [
    "ClusterNetwork",
    "EncodedClusterNetwork",
    "KMeansNetwork",
    "L2Normalize",
    "MinPool",
    "PairwiseMargin",
    "neuralize",
    "register_neuralizer",
]

_Neuralizer = Callable[..., ClusterNetwork]
_REGISTRY: list[tuple[Callable[[Any], bool], _Neuralizer]] = []


def register_neuralizer(matches: type | Callable[[Any], bool]):
    """Register ``fn(model, **kwargs) -> ClusterNetwork`` for models that ``matches``.

    ``matches`` is a class (isinstance test) or a predicate. Later registrations win.
    """
    test = (lambda m: isinstance(m, matches)) if isinstance(matches, type) else matches

    def decorator(fn: _Neuralizer) -> _Neuralizer:
        _REGISTRY.insert(0, (test, fn))
        return fn

    return decorator


def neuralize(
    model: Any, *, device: str | torch.device | None = None, **kwargs: Any
) -> ClusterNetwork:
    """Rewrite a fitted clusterer as an exact network of cluster logits.

    Parameters
    ----------
    model : object
        A fitted scikit-learn ``KMeans`` / ``MiniBatchKMeans`` (or any estimator with
        ``cluster_centers_``), a (K, d) array of centroids, a ``whyclust.TELL``, a
        ``whyclust.KernelKMeans``, an ``(encoder, centers)`` pair, or a network already.
    device : str or torch.device, optional
        Move the network there (e.g. ``"cuda"``); a network passed in is moved in place.

    Returns
    -------
    ClusterNetwork
        ``net(x)`` is the (n, K) tensor of logits f_k(x); its argmax is the assignment.
    """
    if device is not None:
        return neuralize(model, **kwargs).to(device)
    if isinstance(model, ClusterNetwork):
        return model
    from whyclust.engine.kinds import model_kind, no_decision_rule_error

    if (err := no_decision_rule_error(model)) is not None:
        raise err
    if (kind := model_kind(model)) is not None:  # Pipeline, GMM, BisectingKMeans, MeanShift
        from whyclust.networks.pipeline import network_of

        return network_of(model, kind)
    _load_model_modules()
    for test, fn in _REGISTRY:
        if test(model):
            return fn(model, **kwargs)
    if hasattr(model, "cluster_centers_") or _is_fitted_kmeans_like(model):
        return KMeansNetwork(centers_of(model))
    if isinstance(model, (np.ndarray, torch.Tensor, list)):
        return KMeansNetwork(model)
    raise TypeError(
        f"cannot neuralize a {type(model).__name__}: expected a fitted k-means model, "
        "a (K, d) array of centers, TELL, KernelKMeans or an (encoder, centers) pair"
    )


def _is_fitted_kmeans_like(model: Any) -> bool:
    name = type(model).__name__
    if name in {"KMeans", "MiniBatchKMeans"}:
        centers_of(model)  # raises NotFittedError with sklearn's message
    return False


def _load_model_modules() -> None:
    """Import the modules that register neuralizers (models stay lazily imported)."""
    import whyclust.models  # noqa: F401


import whyclust.networks.daskml  # noqa: E402  (dask-ml KMeans; dask-ml is not imported)
import whyclust.networks.deep  # noqa: E402, F401  (registers (encoder, centers) pairs)
