"""Torch view of bisecting k-means: the tree logits of :mod:`whyclust.engine.bisecting`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from whyclust.engine.bisecting import BisectingGeometry
from whyclust.engine.fold import bisecting_arrays
from whyclust.networks.base import ClusterNetwork

__all__ = ["BisectingNetwork"]


class BisectingNetwork(ClusterNetwork):
    """Neuralized ``BisectingKMeans``: f_c = min over the nodes on leaf c's path of the
    margin of its path child (n, K); ``argmax`` equals ``predict`` (the tree walk).

    Buffers: ``left``, ``right`` (J, d) children of each node, ``signs`` (K, J) path signs,
    ``divergence`` (K, K) the node where two leaves' paths part.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.source = model  # the fitted model: NEON on it runs in the array-API engine
        arr = bisecting_arrays(model)
        for name in ("left", "right", "signs"):
            self.register_buffer(name, torch.from_numpy(np.array(arr[name], dtype=np.float64)))
        self.register_buffer("divergence", torch.from_numpy(arr["divergence"]))
        self.n_clusters = int(arr["signs"].shape[0])
        self.n_features = int(arr["left"].shape[1])

    def geometry(self) -> BisectingGeometry:
        return BisectingGeometry(self.left, self.right, self.signs, self.divergence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.geometry().logits(self._flat(x))

    def extra_repr(self) -> str:
        return f"n_clusters={self.n_clusters}, n_features={self.n_features}"
