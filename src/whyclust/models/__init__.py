"""Clustering models. Each module registers its neuralizer with whyclust.networks."""

from __future__ import annotations

import importlib

for _name in ("whyclust.models.tell", "whyclust.models.kernel_kmeans"):
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _exc:  # model not present in this build
        if _exc.name != _name:
            raise
