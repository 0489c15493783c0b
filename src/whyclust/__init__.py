"""whyclust: cluster data and explain, for every point, why it belongs to its cluster.

Heavy pieces (torch models, explainers, reports) load on first use, so that
``import whyclust`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {

    "neuralize": ("whyclust.api", "neuralize"),
    "explain": ("whyclust.api", "explain"),
    "Explanation": ("whyclust.explainers.explanation", "Explanation"),
    "TELL": ("whyclust.models.tell", "TELL"),
    "KernelKMeans": ("whyclust.models.kernel_kmeans", "KernelKMeans"),
    "counterfactual": ("whyclust.api", "counterfactual"),
    "surrogate_kmeans": ("whyclust.explainers.surrogate", "surrogate_kmeans"),
    "save": ("whyclust.io", "save"),
    "load": ("whyclust.io", "load"),
    "metrics": ("whyclust.metrics", None),
    "datasets": ("whyclust.datasets", None),
    "evaluation": ("whyclust.evaluation", None),
    "io": ("whyclust.io", None),
    "networks": ("whyclust.networks", None),
    "scale": ("whyclust.scale", None),
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'whyclust' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
