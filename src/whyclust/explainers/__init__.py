"""Explanation methods for cluster networks, found through a declarative table.

A method is a function ``fn(net, X, **options) -> Explanation`` for a network type. The
table below names each one by dotted path, so nothing is imported until a method is used
and nothing registers itself by being imported. :func:`register_method` adds a user's own
method at run time. Lookup follows the network's class hierarchy: an entry for
:class:`~whyclust.networks.ClusterNetwork` serves every network.

This package imports no torch: the torch-based methods live in submodules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from whyclust.explainers.explanation import Explanation

__all__ = ["Explanation", "available_methods", "register_method", "run_method"]

_Method = Callable[..., Explanation]

_NETWORK = "whyclust.networks.base:ClusterNetwork"
_BASELINES = "whyclust.explainers.baselines"

#: method -> ((network class "module:qualname", function "module:name"), ...); a name that
#: resolves to a mapping is indexed by the method name (a family of methods in one module)
_TABLE: dict[str, tuple[tuple[str, str], ...]] = {
    "neon": (
        ("whyclust.networks.kmeans:KMeansNetwork", "whyclust.explainers.kmeans:explain_network"),
        (
            "whyclust.networks.kernel:KernelKMeansNetwork",
            "whyclust.explainers.kernel:explain_network",
        ),
        (
            "whyclust.networks.mixture:MixtureNetwork",
            "whyclust.explainers.dispatch:explain_source_network",
        ),
        (
            "whyclust.networks.bisecting:BisectingNetwork",
            "whyclust.explainers.dispatch:explain_source_network",
        ),
        (
            "whyclust.networks.pipeline:PipelineNetwork",
            "whyclust.explainers.pipeline:explain_network",
        ),
        (
            "whyclust.networks.base:EncodedClusterNetwork",
            "whyclust.explainers.deep:explain_encoded_network",
        ),
    ),
    **{
        name: ((_NETWORK, f"{_BASELINES}:BASELINE_METHODS"),)
        for name in (
            "gradient", "gradient_x_input", "integrated_gradients", "occlusion", "shap", "random"
        )
    },
}

_USER: dict[str, dict[type, _Method]] = {}


def register_method(name: str, network_type: type) -> Callable[[_Method], _Method]:
    """Add ``fn(net, X, **options) -> Explanation`` as ``method=name`` for a network type."""

    def decorator(fn: _Method) -> _Method:
        _USER.setdefault(name, {})[network_type] = fn
        return fn

    return decorator


def available_methods() -> list[str]:
    """Names accepted by ``wc.explain(..., method=...)``."""
    return sorted({*_TABLE, *_USER})


def lookup(method: str, net: Any) -> _Method:
    """The function implementing ``method`` for the network ``net``."""
    if method not in _TABLE and method not in _USER:
        raise ValueError(
            f"unknown method {method!r}; available: {', '.join(available_methods())}"
        )
    user = _USER.get(method, {})
    entries = dict(_TABLE.get(method, ()))
    for klass in type(net).__mro__:
        if klass in user:
            return user[klass]
        target = entries.get(f"{klass.__module__}:{klass.__qualname__}")
        if target is not None:
            module, _, name = target.partition(":")
            fn = getattr(importlib.import_module(module), name)
            return fn[method] if isinstance(fn, Mapping) else fn
    raise TypeError(f"method {method!r} does not support {type(net).__name__}")


def run_method(net: Any, X: np.ndarray, method: str = "neon", **options: Any) -> Explanation:
    """Run ``method`` on a network for a validated float array ``X``."""
    return lookup(method, net)(net, X, **options)
